// ProtocolTracker without sockets: what a backend still owes after the
// frontend messages recorded, and the verdict and state after each backend
// message, for pipelines, errors mid-pipeline, substituted refusals and COPY.
#include "proxy/protocol_tracker.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/proxy/wire_builders.h"

namespace tenantgate::proxy {
namespace {

constexpr const char* kToken = "00ff00ff00ff00ff";
using Kind = Verdict::Kind;
using Copy = ProtocolTracker::BackendCopy;

StatementTracker::Checks tenant_check() {
  return {rewriter::ParamCheck{1, rewriter::IdentityField::kTenant, "public.users", "tenant_id", "",
                               25}};
}

// The syntax error PostgreSQL answers for a substituted marker statement.
std::string marker_error(const std::string& marker) {
  return wire::error("42601", "syntax error at or near \"" + marker + "\"");
}

// One backend message and what must hold after it.
struct BackendStep {
  std::string message;
  Kind kind;
  int owed;     // owed_ready_for_query() after
  bool idle;    // idle_and_owes_nothing() after
  char status;  // transaction_status() after
};

void run_steps(ProtocolTracker& t, const std::vector<BackendStep>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto& step = steps[i];
    SCOPED_TRACE(testing::Message() << "backend step " << i << " type '" << step.message[0] << "'");
    Verdict v = t.on_backend(step.message[0], wire::body_of(step.message));
    EXPECT_EQ(v.kind, step.kind) << v.sqlstate << " " << v.message;
    EXPECT_EQ(t.owed_ready_for_query(), step.owed);
    EXPECT_EQ(t.idle_and_owes_nothing(), step.idle);
    EXPECT_EQ(t.transaction_status(), step.status);
  }
}

TEST(ProtocolTrackerTest, FreshTrackerIsIdle) {
  ProtocolTracker t(kToken, false);
  EXPECT_TRUE(t.idle_and_owes_nothing());
  EXPECT_EQ(t.owed_ready_for_query(), 0);
  EXPECT_EQ(t.transaction_status(), 'I');
  EXPECT_FALSE(t.extended_open());
  EXPECT_EQ(t.backend_copy(), Copy::kNone);
}

TEST(ProtocolTrackerTest, SimpleQueryOwesReadyForQuery) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}));
  EXPECT_FALSE(t.idle_and_owes_nothing());
  run_steps(t, {
                   {wire::command_complete("SELECT 1"), Kind::kForward, 1, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 0, true, 'I'},
               });
}

TEST(ProtocolTrackerTest, InsideATransactionIsNotIdle) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}));  // BEGIN
  ASSERT_TRUE(t.query_sent({}));  // SELECT
  run_steps(t, {
                   {wire::command_complete("BEGIN"), Kind::kForward, 2, false, 'I'},
                   {wire::ready('T'), Kind::kForward, 1, false, 'T'},
                   {wire::error("22012", "division by zero"), Kind::kForward, 1, false, 'T'},
                   {wire::ready('E'), Kind::kForward, 0, false, 'E'},
               });
  ASSERT_TRUE(t.query_sent({}));  // ROLLBACK
  run_steps(t, {{wire::ready('I'), Kind::kForward, 0, true, 'I'}});
}

TEST(ProtocolTrackerTest, PipelineOfParsesIsAnsweredInOrder) {
  ProtocolTracker t(kToken, false);
  t.extended_sent();
  ASSERT_TRUE(t.statements().parse_sent("a", {}, {}));
  ASSERT_TRUE(t.statements().parse_sent("b", tenant_check(), {}));
  ASSERT_TRUE(t.statements().close_sent('S', "c"));
  EXPECT_TRUE(t.extended_open());
  EXPECT_FALSE(t.idle_and_owes_nothing());
  ASSERT_TRUE(t.sync_sent());
  EXPECT_FALSE(t.extended_open());
  run_steps(t, {
                   {wire::parse_complete(), Kind::kForward, 1, false, 'I'},
                   {wire::parse_complete(), Kind::kForward, 1, false, 'I'},
                   {wire::close_complete(), Kind::kForward, 1, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 0, true, 'I'},
               });
  EXPECT_EQ(t.statements().checks_for("b").size(), 1u);
}

TEST(ProtocolTrackerTest, ErrorMidPipelineSkipsToSync) {
  ProtocolTracker t(kToken, false);
  t.extended_sent();
  ASSERT_TRUE(t.statements().parse_sent("a", {}, {}));
  ASSERT_TRUE(t.statements().parse_sent("b", tenant_check(), {}));
  ASSERT_TRUE(t.sync_sent());
  t.extended_sent();
  ASSERT_TRUE(t.statements().parse_sent("c", {}, {}));
  ASSERT_TRUE(t.sync_sent());
  run_steps(t, {
                   // "a" fails: "b" is skipped, the first Sync answers.
                   {wire::error("42601", "syntax error"), Kind::kForward, 2, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 1, false, 'I'},
                   // The second batch is answered normally.
                   {wire::parse_complete(), Kind::kForward, 1, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 0, true, 'I'},
               });
  // The skipped Parse never confirmed its checks.
  EXPECT_TRUE(t.statements().checks_for("b").empty());
}

TEST(ProtocolTrackerTest, RepliesNothingAskedForEndTheSession) {
  for (const std::string& reply : {wire::parse_complete(), wire::close_complete()}) {
    ProtocolTracker t(kToken, false);
    Verdict v = t.on_backend(reply[0], wire::body_of(reply));
    EXPECT_EQ(v.kind, Kind::kFatal);
    EXPECT_EQ(v.sqlstate, "08006");
  }
  // A ParseComplete where a CloseComplete is due.
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.statements().close_sent('P', ""));
  ASSERT_TRUE(t.sync_sent());
  EXPECT_EQ(t.on_backend('1', "").kind, Kind::kFatal);
}

TEST(ProtocolTrackerTest, BypassCountsReadyForQueryOnly) {
  ProtocolTracker t(kToken, true);
  t.bypass_sent('P');
  t.bypass_sent('S');
  EXPECT_EQ(t.owed_ready_for_query(), 1);
  run_steps(t, {
                   // Not checked in bypass mode: nothing was recorded.
                   {wire::parse_complete(), Kind::kForward, 1, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 0, true, 'I'},
               });
}

TEST(ProtocolTrackerTest, SubstitutedRefusalReplacesTheBackendErrorOnce) {
  ProtocolTracker t(kToken, false);
  auto marker = t.refusal_marker(rewriter::Refusal{"42501", "table secret is not allowed"});
  ASSERT_TRUE(marker);
  EXPECT_NE(marker->find(kToken), std::string::npos);
  ASSERT_TRUE(t.refused_query_sent());
  const std::string backend_error = marker_error(*marker);
  Verdict v = t.on_backend('E', wire::body_of(backend_error));
  ASSERT_EQ(v.kind, Kind::kReplace);
  auto messages = wire::split(v.bytes);
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_EQ(messages[0].type, 'E');
  auto fields = parse_error_fields(messages[0].body);
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->sqlstate, "42501");
  EXPECT_EQ(fields->message, "table secret is not allowed");
  // The same error again is not replaced: each refusal is shown once.
  EXPECT_EQ(t.on_backend('E', wire::body_of(backend_error)).kind, Kind::kForward);
  run_steps(t, {{wire::ready('I'), Kind::kForward, 0, true, 'I'}});
}

TEST(ProtocolTrackerTest, MarkersOfAnotherTokenAreNotReplaced) {
  ProtocolTracker t(kToken, false);
  auto marker = t.refusal_marker(rewriter::Refusal{"42501", "refused"});
  ASSERT_TRUE(marker);
  ASSERT_TRUE(t.refused_query_sent());
  // A client that guesses the sequence but not the token.
  const std::string forged = marker_error("tenantgate_refusal_0123456789abcdef_1");
  EXPECT_EQ(t.on_backend('E', wire::body_of(forged)).kind, Kind::kForward);
  EXPECT_FALSE(t.idle_and_owes_nothing());
  // The refusal is dropped with its batch once ReadyForQuery arrives.
  run_steps(t, {{wire::ready('I'), Kind::kForward, 0, true, 'I'}});
  EXPECT_FALSE(t.statements().has_refusals());
}

TEST(ProtocolTrackerTest, ExclusionViolationDetailIsRedacted) {
  ProtocolTracker t(kToken, false);
  const std::string violation = error_response(
      "ERROR", "23P01", "conflicting key value violates exclusion constraint \"no_overlap\"",
      "Key (room)=(42) conflicts with existing key (room)=(42).");
  Verdict v = t.on_backend('E', wire::body_of(violation));
  ASSERT_EQ(v.kind, Kind::kReplace);
  auto fields = parse_error_fields(wire::body_of(v.bytes));
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->detail.find("(42)"), std::string::npos) << fields->detail;
  // A bypass principal sees the database's own error.
  ProtocolTracker bypass(kToken, true);
  EXPECT_EQ(bypass.on_backend('E', wire::body_of(violation)).kind, Kind::kForward);
}

TEST(ProtocolTrackerTest, CheckedCopyInLastsUntilItsOwnReadyForQuery) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}));  // an earlier Query, still unanswered
  ASSERT_TRUE(t.query_sent({}));  // COPY users FROM STDIN
  t.copy_in_started(CopyInSpec{});
  ASSERT_TRUE(t.copy_in_active());
  run_steps(t, {
                   {wire::ready('I'), Kind::kForward, 1, false, 'I'},  // the earlier Query's
                   {wire::message('G', std::string("\0\0\0", 3)), Kind::kForward, 1, false, 'I'},
               });
  EXPECT_TRUE(t.copy_in_active());
  EXPECT_EQ(t.backend_copy(), Copy::kIn);
  run_steps(t, {
                   {wire::command_complete("COPY 1"), Kind::kForward, 1, false, 'I'},
                   {wire::ready('I'), Kind::kForward, 0, true, 'I'},
               });
  EXPECT_FALSE(t.copy_in_active());
  EXPECT_EQ(t.backend_copy(), Copy::kNone);
}

TEST(ProtocolTrackerTest, CopyFailRefusalIsReplacedWithinTheCopyReply) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}));
  t.copy_in_started(CopyInSpec{});
  const std::string marker = t.copy_fail_marker(rewriter::Refusal{"42501", "row of tenant b"});
  t.set_copy_in_failed();
  EXPECT_TRUE(t.copy_in_failed());
  const std::string backend_error = wire::error("57014", "COPY from stdin failed: " + marker);
  Verdict v = t.on_backend('E', wire::body_of(backend_error));
  ASSERT_EQ(v.kind, Kind::kReplace);
  EXPECT_EQ(parse_error_fields(wire::body_of(v.bytes))->sqlstate, "42501");
  run_steps(t, {{wire::ready('I'), Kind::kForward, 0, true, 'I'}});
}

TEST(ProtocolTrackerTest, CopyOutIsNotIdleUntilReadyForQuery) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}));
  run_steps(t, {
                   {wire::message('H', std::string("\0\0\0", 3)), Kind::kForward, 1, false, 'I'},
                   {wire::copy_data("1\tacme\n"), Kind::kForward, 1, false, 'I'},
                   {wire::copy_done(), Kind::kForward, 1, false, 'I'},
                   {wire::command_complete("COPY 1"), Kind::kForward, 1, false, 'I'},
               });
  EXPECT_EQ(t.backend_copy(), Copy::kOut);
  run_steps(t, {{wire::ready('I'), Kind::kForward, 0, true, 'I'}});
}

TEST(ProtocolTrackerTest, PendingRepliesAreBounded) {
  ProtocolTracker t(kToken, false);
  bool ok = true;
  std::size_t sent = 0;
  while (ok && sent <= StatementTracker::kMaxPendingOps) {
    ok = t.statements().parse_sent("x", {}, {});
    ++sent;
  }
  EXPECT_FALSE(ok);
  EXPECT_EQ(sent, StatementTracker::kMaxPendingOps + 1);
  EXPECT_FALSE(t.refusal_marker(rewriter::Refusal{"42501", "x"}).has_value());
}

// ---- Reshaped writes (reshaped_replies.h) ----

using Write = rewriter::ReshapedWrite;
constexpr Write kInsert{Write::Command::kInsert, false};
constexpr Write kUpdateReturning{Write::Command::kUpdate, true};

std::string between_markers(const std::string& text) {
  const std::string m(rewriter::kPolicyViolationMarker);
  return m + text + m;
}

struct TagCase {
  std::string body;  // CommandComplete body, NUL included
  Write write;
  std::optional<std::string> tag;  // nullopt: not a reshaped write's tag
};

TEST(ReshapedRepliesTest, CommandTags) {
  const std::vector<TagCase> cases = {
      {std::string("SELECT 5\0", 9), kInsert, "INSERT 0 5"},
      {std::string("SELECT 0\0", 9), kInsert, "INSERT 0 0"},
      {std::string("SELECT 12\0", 10), kUpdateReturning, "UPDATE 12"},
      {std::string("SELECT\0", 7), kInsert, std::nullopt},
      {std::string("SELECT \0", 8), kInsert, std::nullopt},
      {std::string("SELECT 1x\0", 10), kInsert, std::nullopt},
      {std::string("INSERT 0 1\0", 11), kInsert, std::nullopt},
      {std::string("SELECT 1", 8), kInsert, std::nullopt},  // no terminator
      {std::string("SELECT 123456789012345678901\0", 29), kInsert, std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto complete = reshaped_command_complete(c.body, c.write);
    ASSERT_EQ(complete.has_value(), c.tag.has_value());
    if (c.tag) {
      EXPECT_EQ(*complete, wire::command_complete(*c.tag));
    }
  }
}

struct ErrorCase {
  std::string name;
  std::string error;                   // the backend's ErrorResponse
  std::optional<std::string> message;  // the 42501 message, or nullopt: not a check violation
};

TEST(ReshapedRepliesTest, CheckViolations) {
  const std::string rls = "new row violates row-level security policy for table \"docs\"";
  const std::vector<ErrorCase> cases = {
      {"postgresql",
       wire::error("22P02",
                   "invalid input syntax for type integer: \"" + between_markers(rls) + "\""),
       rls},
      {"cockroachdb wording",
       wire::error("22P02", "could not parse \"" + between_markers(rls) +
                                "\" as type int: strconv.ParseInt: parsing \"" +
                                between_markers(rls) + "\": invalid syntax"),
       rls},
      {"other sqlstate", wire::error("23505", between_markers(rls)), std::nullopt},
      {"no closing marker",
       wire::error("22P02", "invalid input syntax for type integer: \"" +
                                std::string(rewriter::kPolicyViolationMarker) + rls + "\""),
       std::nullopt},
      {"nothing between the markers", wire::error("22P02", between_markers("")), std::nullopt},
      {"plain 22P02", wire::error("22P02", "invalid input syntax for type integer: \"x\""),
       std::nullopt},
      {"malformed body", std::string("E\0\0\0\x05X", 6), std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto error = policy_violation_error(wire::body_of(c.error));
    ASSERT_EQ(error.has_value(), c.message.has_value());
    if (!c.message) continue;
    auto fields = parse_error_fields(wire::body_of(*error));
    ASSERT_TRUE(fields);
    EXPECT_EQ(fields->sqlstate, "42501");
    EXPECT_EQ(fields->message, *c.message);
    EXPECT_EQ(fields->severity, "ERROR");
  }
}

// One backend message through the tracker and the bytes sent on: the
// message itself (kForward), or `replaced` ("" drops it).
struct ReplyStep {
  std::string message;
  Kind kind;
  std::string replaced = "";
};

void run_replies(ProtocolTracker& t, const std::vector<ReplyStep>& steps) {
  for (std::size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE(testing::Message()
                 << "backend step " << i << " type '" << steps[i].message[0] << "'");
    Verdict v = t.on_backend(steps[i].message[0], wire::body_of(steps[i].message));
    ASSERT_EQ(v.kind, steps[i].kind) << v.sqlstate << " " << v.message;
    if (v.kind == Kind::kReplace) {
      EXPECT_EQ(v.bytes, steps[i].replaced);
    }
  }
}

std::string empty_row() { return wire::message('D', std::string("\0\0", 2)); }
std::string no_columns() { return wire::message('T', std::string("\0\0", 2)); }

TEST(ReshapedRepliesTest, QueryStatementsAnswerInOrder) {
  ProtocolTracker t(kToken, false);
  // SELECT; INSERT (reshaped, no RETURNING); UPDATE (reshaped, RETURNING)
  ASSERT_TRUE(t.query_sent({}, {std::nullopt, kInsert, kUpdateReturning}));
  const std::string rls = "new row violates row-level security policy for table \"docs\"";
  run_replies(t, {
                     {no_columns(), Kind::kForward},
                     {empty_row(), Kind::kForward},
                     {wire::command_complete("SELECT 1"), Kind::kForward},
                     {no_columns(), Kind::kReplace, ""},
                     {empty_row(), Kind::kReplace, ""},
                     {wire::command_complete("SELECT 1"), Kind::kReplace,
                      wire::command_complete("INSERT 0 1")},
                     {no_columns(), Kind::kForward},
                     {empty_row(), Kind::kForward},
                     {wire::error("22P02", between_markers(rls)), Kind::kReplace,
                      wire::error("42501", rls)},
                     {wire::ready('I'), Kind::kForward},
                 });
  EXPECT_TRUE(t.idle_and_owes_nothing());
  // The next Query is answered as written.
  ASSERT_TRUE(t.query_sent({}));
  run_replies(t, {
                     {empty_row(), Kind::kForward},
                     {wire::error("22P02", between_markers(rls)), Kind::kForward},
                     {wire::ready('I'), Kind::kForward},
                 });
  EXPECT_TRUE(t.idle_and_owes_nothing());
}

TEST(ReshapedRepliesTest, QueryAndSyncStayInStep) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.query_sent({}, {kInsert}));
  ASSERT_TRUE(t.sync_sent());
  run_replies(t, {{wire::command_complete("SELECT 3"), Kind::kReplace,
                   wire::command_complete("INSERT 0 3")},
                  {wire::ready('I'), Kind::kForward}});
  EXPECT_FALSE(t.idle_and_owes_nothing());  // the Sync's ReadyForQuery is owed
  run_replies(t, {{wire::ready('I'), Kind::kForward}});
  EXPECT_TRUE(t.idle_and_owes_nothing());
}

TEST(ReshapedRepliesTest, PortalsEndWithTheTransaction) {
  ProtocolTracker t(kToken, false);
  ASSERT_TRUE(t.statements().parse_sent("w", {}, {}));
  ASSERT_TRUE(t.parse_sent("w", kInsert));
  ASSERT_TRUE(t.bind_sent("p", "w"));
  ASSERT_TRUE(t.execute_sent("p"));
  ASSERT_TRUE(t.sync_sent());
  run_replies(t, {{wire::parse_complete(), Kind::kForward},
                  {wire::bind_complete(), Kind::kForward},
                  {empty_row(), Kind::kReplace, ""},
                  {wire::message('s'), Kind::kForward},
                  {wire::ready('T'), Kind::kForward}});
  // Inside the transaction the portal is still the reshaped write's.
  ASSERT_TRUE(t.execute_sent("p"));
  ASSERT_TRUE(t.sync_sent());
  run_replies(t, {{empty_row(), Kind::kReplace, ""},
                  {wire::command_complete("SELECT 2"), Kind::kReplace,
                   wire::command_complete("INSERT 0 2")},
                  {wire::ready('I'), Kind::kForward}});
  // After it, a portal of that name (a cursor, say) is not.
  ASSERT_TRUE(t.execute_sent("p"));
  ASSERT_TRUE(t.sync_sent());
  run_replies(t, {{empty_row(), Kind::kForward},
                  {wire::command_complete("SELECT 1"), Kind::kForward},
                  {wire::ready('I'), Kind::kForward}});
  EXPECT_TRUE(t.idle_and_owes_nothing());
}

TEST(ReshapedRepliesTest, BypassChangesNothing) {
  ProtocolTracker t(kToken, true);
  t.bypass_sent('Q');
  run_replies(t, {{empty_row(), Kind::kForward},
                  {wire::command_complete("SELECT 1"), Kind::kForward},
                  {wire::ready('I'), Kind::kForward}});
  EXPECT_TRUE(t.idle_and_owes_nothing());
}

TEST(ReshapedRepliesTest, UnansweredMessagesAreBounded) {
  ProtocolTracker t(kToken, false);
  std::size_t sent = 0;
  while (sent <= ReshapedReplies::kMaxOwed && t.execute_sent("")) ++sent;
  EXPECT_EQ(sent, ReshapedReplies::kMaxOwed);
}

}  // namespace
}  // namespace tenantgate::proxy
