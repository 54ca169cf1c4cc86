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

}  // namespace
}  // namespace tenantgate::proxy
