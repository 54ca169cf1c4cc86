// FrontendFilter and ProtocolTracker together, without sockets: scenarios of
// client messages (as bytes) and backend replies, each step checked for its
// verdict, the messages sent on, and the SQLSTATE of a refusal; the tracker's
// state is checked at the end. The rewriter and policy are the real ones.
// The scenarios of tests/integration/test_review_regressions.py appear here
// as "review_*".
#include "proxy/frontend_filter.h"

#include <gtest/gtest.h>

#include <map>

#include "policy/policy.h"
#include "rewriter/rewriter.h"
#include "tests/proxy/wire_builders.h"

namespace tenantgate::proxy {
namespace {

using Kind = Verdict::Kind;
constexpr const char* kToken = "5eed5eed5eed5eed";
const std::string kInsert = "INSERT INTO rv_users (tenant_id, name) VALUES ($1, $2)";

std::shared_ptr<const policy::Policy> test_policy() {
  static const auto policy = policy::parse_policy(
      "default_action = \"deny\"\nsearch_path = [\"public\"]\n"
      "[tables.\"public.rv_users\"]\nscope = \"tenant\"\n",
      "policy.toml");
  return policy;
}

// The real rewriter under the test policy; `policy_changed` stands for a
// reload that changed the pinned search_path.
class TestRewriter : public StatementRewriter {
 public:
  explicit TestRewriter(const policy::Identity& identity) : identity_(identity) {}
  std::optional<rewriter::RewriteResult> rewrite(std::string_view sql) override {
    if (policy_changed) return std::nullopt;
    // Memoised as the session's rewrite cache would: the bound test sends
    // the same Parse tens of thousands of times.
    auto found = memo_.find(std::string(sql));
    if (found != memo_.end()) return found->second;
    std::optional<rewriter::RewriteResult> result;
    rewriter::run_with_large_stack(
        [&] { result = rewriter_.rewrite(sql, identity_, *test_policy()); });
    memo_.emplace(std::string(sql), *result);
    return result;
  }
  bool policy_changed = false;

 private:
  const policy::Identity& identity_;
  const rewriter::Rewriter rewriter_{rewriter::Options{}};
  std::map<std::string, rewriter::RewriteResult> memo_;
};

enum class Side {
  kClient,        // a client message through the filter
  kBackend,       // a backend message through the tracker
  kMarkerError,   // the backend's syntax error for the last substituted marker
  kPolicyChange,  // a reload changes the pinned search_path (no message)
};

struct Step {
  Side side;
  std::string message;
  Kind kind;
  std::string sent;           // kClient: types of the messages sent on
  std::string sqlstate = "";  // kRefused / kFatal / kReplace: expected SQLSTATE
};

struct Scenario {
  std::string name;
  std::vector<Step> steps;
  bool idle_at_end;  // idle_and_owes_nothing() after the last step
  std::string tenant = "acme";
  bool bypass = false;
};

void PrintTo(const Scenario& scenario, std::ostream* os) { *os << scenario.name; }

Step client(std::string message, Kind kind, std::string sent, std::string sqlstate = "") {
  return {Side::kClient, std::move(message), kind, std::move(sent), std::move(sqlstate)};
}
Step backend(std::string message, Kind kind = Kind::kForward, std::string sqlstate = "") {
  return {Side::kBackend, std::move(message), kind, "", std::move(sqlstate)};
}
Step marker_replaced(std::string sqlstate = "42501") {
  return {Side::kMarkerError, "", Kind::kReplace, "", std::move(sqlstate)};
}
Step ready(char status = 'I') { return backend(wire::ready(status)); }

std::string last_marker(std::string_view out, std::string previous) {
  const std::string prefix = std::string("tenantgate_refusal_") + kToken + "_";
  auto at = out.rfind(prefix);
  if (at == std::string_view::npos) return previous;
  std::size_t end = at + prefix.size();
  while (end < out.size() && out[end] >= '0' && out[end] <= '9') ++end;
  return std::string(out.substr(at, end - at));
}

void run(const Scenario& scenario) {
  policy::Identity identity;
  identity.tenant = {scenario.tenant, policy::ValueType::kText};
  identity.database = "appdb";
  TestRewriter rewriter(identity);
  ProtocolTracker tracker(kToken, scenario.bypass);
  FrontendFilter filter(identity, scenario.bypass, 1 << 20, rewriter);
  std::string marker;
  for (std::size_t i = 0; i < scenario.steps.size(); ++i) {
    const Step& step = scenario.steps[i];
    SCOPED_TRACE(testing::Message() << scenario.name << " step " << i);
    Verdict verdict;
    switch (step.side) {
      case Side::kPolicyChange:
        rewriter.policy_changed = true;
        continue;
      case Side::kClient: {
        std::string out;
        verdict =
            filter.filter(step.message[0], wire::body_of(step.message), step.message, tracker, out);
        EXPECT_EQ(wire::types_of(out), step.sent);
        marker = last_marker(out, marker);
        break;
      }
      case Side::kBackend:
        verdict = tracker.on_backend(step.message[0], wire::body_of(step.message));
        break;
      case Side::kMarkerError: {
        ASSERT_FALSE(marker.empty()) << "no substituted message to answer";
        const std::string error =
            wire::error("42601", "syntax error at or near \"" + marker + "\"");
        verdict = tracker.on_backend('E', wire::body_of(error));
        break;
      }
    }
    ASSERT_EQ(verdict.kind, step.kind) << verdict.sqlstate << " " << verdict.message;
    if (verdict.kind == Kind::kReplace) {
      auto fields = parse_error_fields(wire::body_of(verdict.bytes));
      ASSERT_TRUE(fields);
      EXPECT_EQ(fields->sqlstate, step.sqlstate) << fields->message;
    } else if (verdict.kind == Kind::kRefused || verdict.kind == Kind::kFatal) {
      EXPECT_EQ(verdict.sqlstate, step.sqlstate) << verdict.message;
      EXPECT_FALSE(verdict.message.empty());
    }
    if (verdict.kind == Kind::kFatal || verdict.kind == Kind::kTerminate) {
      ASSERT_EQ(i + 1, scenario.steps.size()) << "steps after the session ended";
    }
  }
  EXPECT_EQ(tracker.idle_and_owes_nothing(), scenario.idle_at_end);
}

std::vector<Scenario> scenarios() {
  using wire::bind;
  using wire::parse;
  using wire::query;
  const auto E = wire::execute();
  const auto S = wire::sync();
  const std::string copy_in_response("G\0\0\0\x07\0\0\0", 8);
  return {
      {"simple_query_is_scoped",
       {client(query("SELECT name FROM rv_users"), Kind::kForward, "Q"),
        backend(wire::command_complete("SELECT 1")), ready()},
       true},
      {"refused_query_is_substituted_and_replaced",
       {client(query("SELECT * FROM secret_table"), Kind::kRefused, "Q", "42501"),
        marker_replaced(), ready()},
       true},
      {"answer_outstanding_is_not_idle", {client(query("SELECT 1"), Kind::kForward, "Q")}, false},
      {"pipeline_parse_bind_execute_sync",
       {client(parse("s", kInsert), Kind::kForward, "P"),
        client(bind("s", {"acme", "ok"}), Kind::kForward, "B"), client(E, Kind::kForward, "E"),
        client(wire::flush(), Kind::kForward, "H"), client(S, Kind::kForward, "S"),
        backend(wire::parse_complete()), backend(wire::bind_complete()),
        backend(wire::command_complete("INSERT 0 1")), ready()},
       true},
      {"extended_batch_without_sync_is_not_idle",
       {client(parse("", "SELECT 1"), Kind::kForward, "P"), backend(wire::parse_complete())},
       false},
      {"refused_bind_mid_pipeline_skips_to_sync",
       {client(parse("s", kInsert), Kind::kForward, "P"),
        client(bind("s", {"globex", "x"}), Kind::kRefused, "P", "42501"),
        client(E, Kind::kForward, "E"), client(S, Kind::kForward, "S"),
        backend(wire::parse_complete()), marker_replaced(), ready()},
       true},
      {"refused_named_parse",
       {client(parse("q", "SELECT * FROM secret_table"), Kind::kRefused, "P", "42501"),
        client(bind("q", {}), Kind::kForward, "B"), client(E, Kind::kForward, "E"),
        client(S, Kind::kForward, "S"), marker_replaced(), ready()},
       true},
      {"bind_checks_survive_a_skipped_close",
       {client(parse("s", kInsert), Kind::kForward, "P"), client(S, Kind::kForward, "S"),
        backend(wire::parse_complete()), ready(),
        client(query("SELECT * FROM secret_table"), Kind::kRefused, "Q", "42501"),
        client(wire::describe_or_close('C', 'S', "s"), Kind::kForward, "C"),
        client(S, Kind::kForward, "S"), marker_replaced(), ready(),
        backend(wire::error("XX000", "close failed")), ready(),
        client(bind("s", {"globex", "x"}), Kind::kRefused, "P", "42501")},
       false},
      {"function_call_is_refused",
       {client(wire::function_call(), Kind::kRefused, "Q", "42501"), marker_replaced(), ready()},
       true},
      {"function_call_inside_a_batch_ends_the_session",
       {client(parse("", "SELECT 1"), Kind::kForward, "P"),
        client(wire::function_call(), Kind::kFatal, "", "08P01")},
       false},
      {"unknown_message_type_ends_the_session",
       {client(wire::message('Z', "I"), Kind::kFatal, "", "08P01")},
       true},
      {"terminate", {client(wire::message('X'), Kind::kTerminate, "X")}, true},
      {"malformed_bind_ends_the_session",
       {client(wire::message('B', "x"), Kind::kFatal, "", "08P01")},
       true},
      {"long_statement_name_in_describe_ends_the_session",
       {client(wire::describe_or_close('D', 'S', std::string(64, 'n')), Kind::kFatal, "", "08P01")},
       true},
      {"long_statement_name_in_close_ends_the_session",
       {client(wire::describe_or_close('C', 'S', std::string(64, 'n')), Kind::kFatal, "", "08P01")},
       true},
      {"copy_data_outside_copy_is_passed_on",
       {client(wire::copy_data("x"), Kind::kForward, "d")},
       true},
      {"checked_copy_in",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kForward, "Q"),
        backend(copy_in_response), client(wire::flush(), Kind::kForward, ""),
        client(S, Kind::kForward, ""), client(wire::copy_data("a\tacme\n"), Kind::kForward, "d"),
        client(wire::copy_done(), Kind::kForward, "c"), backend(wire::command_complete("COPY 1")),
        ready()},
       true},
      {"copy_in_row_of_another_tenant_fails_the_copy",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kForward, "Q"),
        backend(copy_in_response),
        client(wire::copy_data("a\tacme\nb\tglobex\n"), Kind::kRefused, "df", "42501"),
        client(wire::copy_data("c\tacme\n"), Kind::kForward, ""),
        client(wire::copy_done(), Kind::kForward, ""), marker_replaced(), ready()},
       true},
      {"client_copy_fail_is_passed_on",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kForward, "Q"),
        backend(copy_in_response), client(wire::copy_fail("stop"), Kind::kForward, "f"),
        backend(wire::error("57014", "COPY from stdin failed: stop")), ready()},
       true},
      {"query_during_copy_in_ends_the_session",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kForward, "Q"),
        client(query("SELECT 1"), Kind::kFatal, "", "08P01")},
       false},
      {"copy_from_in_extended_protocol_is_refused",
       {client(parse("", "COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kRefused, "P",
               "0A000"),
        client(S, Kind::kForward, "S"), marker_replaced("0A000"), ready()},
       true},
      {"copy_out_is_scoped_and_relayed",
       {client(query("COPY rv_users TO STDOUT"), Kind::kForward, "Q"),
        backend(std::string("H\0\0\0\x07\0\0\0", 8)), backend(wire::copy_data("1\tacme\ta1\n")),
        backend(wire::copy_done()), backend(wire::command_complete("COPY 1")), ready()},
       true},
      {"bypass_forwards_everything",
       {client(query("SELECT * FROM secret_table"), Kind::kForward, "Q"),
        client(wire::function_call(), Kind::kForward, "F"), ready(), ready()},
       true,
       "acme",
       true},
      // ---- test_review_regressions.py ----
      {"review_failed_reparse_in_an_earlier_batch_does_not_drop_bind_checks",
       {client(parse("s", kInsert), Kind::kForward, "P"), client(S, Kind::kForward, "S"),
        backend(wire::parse_complete()), ready(),
        client(parse("s", "SELECT 1"), Kind::kForward, "P"), client(S, Kind::kForward, "S"),
        client(bind("s", {"globex", "pipelined"}), Kind::kRefused, "P", "42501"),
        client(E, Kind::kForward, "E"), client(S, Kind::kForward, "S"),
        backend(wire::error("42P05", "prepared statement \"s\" already exists")), ready(),
        marker_replaced(), ready()},
       true},
      {"review_query_inside_an_unsynced_extended_batch_ends_the_session",
       {client(parse("", "SELECT * FROM secret_table"), Kind::kRefused, "P", "42501"),
        client(query("SELECT 1"), Kind::kFatal, "", "08P01")},
       false},
      {"review_declared_char_type_is_refused",
       {client(parse("", kInsert, {18, 0}), Kind::kRefused, "P", "42501"),
        client(bind("", {"acme", "char"}), Kind::kForward, "B"), client(E, Kind::kForward, "E"),
        client(S, Kind::kForward, "S"), marker_replaced(), ready()},
       true},
      {"review_declared_int4_type_is_refused",
       {client(parse("", kInsert, {23, 0}), Kind::kRefused, "P", "42501"),
        client(bind("", {"acme", "int4"}, {1, 0}), Kind::kForward, "B"),
        client(E, Kind::kForward, "E"), client(S, Kind::kForward, "S"), marker_replaced(), ready()},
       true},
      {"review_declared_bytea_type_is_refused",
       {client(parse("", kInsert, {17, 0}), Kind::kRefused, "P", "42501"),
        client(bind("", {"acme", "bytea"}, {1, 0}), Kind::kForward, "B"),
        client(E, Kind::kForward, "E"), client(S, Kind::kForward, "S"), marker_replaced(), ready()},
       true},
      {"review_declared_identity_type_is_accepted",
       {client(parse("", kInsert, {25, 0}), Kind::kForward, "P"),
        client(bind("", {"acme", "ok"}), Kind::kForward, "B"), client(E, Kind::kForward, "E"),
        client(S, Kind::kForward, "S"), backend(wire::parse_complete()),
        backend(wire::bind_complete()), backend(wire::command_complete("INSERT 0 1")), ready()},
       true},
      {"review_cast_of_parameter_across_type_families_is_refused",
       {client(parse("", "INSERT INTO rv_users (tenant_id, name) VALUES ($1::int8, $2)"),
               Kind::kRefused, "P", "42501")},
       false,
       "01"},
      {"review_cast_of_constant_across_type_families_is_refused",
       {client(parse("", "INSERT INTO rv_users (tenant_id, name) VALUES ('01'::int8, $1)"),
               Kind::kRefused, "P", "42501")},
       false,
       "01"},
      {"review_copy_text_header_with_bare_carriage_returns_is_refused",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN WITH (HEADER true)"),
               Kind::kForward, "Q"),
        backend(copy_in_response),
        client(wire::copy_data("hdr\rcr-text\tglobex\r"), Kind::kForward, ""),
        client(wire::copy_done(), Kind::kRefused, "f", "42501"), marker_replaced(), ready()},
       true},
      {"review_copy_csv_header_with_bare_carriage_returns_is_refused",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN WITH (FORMAT csv, HEADER true)"),
               Kind::kForward, "Q"),
        backend(copy_in_response),
        client(wire::copy_data("hdr\rcr-csv,globex\r"), Kind::kForward, ""),
        client(wire::copy_done(), Kind::kRefused, "f", "42501"), marker_replaced(), ready()},
       true},
      {"review_copy_end_marker_inside_a_line_is_refused",
       {client(query("COPY rv_users (name, tenant_id) FROM STDIN"), Kind::kForward, "Q"),
        backend(copy_in_response),
        // The valid first row goes on; the CopyFail after it aborts the COPY.
        client(wire::copy_data("legit\tacme.\nsneaky\tacme\\.\n"), Kind::kRefused, "df", "42501"),
        client(wire::copy_done(), Kind::kForward, ""), marker_replaced(), ready()},
       true,
       "acme."},
      {"review_statement_name_longer_than_postgresql_keeps_is_refused",
       {client(parse(std::string(100'000, 'n'), "SELECT 1"), Kind::kRefused, "P", "42501"),
        client(S, Kind::kForward, "S"), marker_replaced(), ready()},
       true},
      {"review_reload_that_changes_search_path_ends_the_session",
       {client(query("SELECT name FROM rv_users"), Kind::kForward, "Q"),
        ready(),
        {Side::kPolicyChange, "", Kind::kForward, ""},
        client(query("SELECT count(*) FROM rv_users"), Kind::kFatal, "", "57P01")},
       true},
  };
}

class FrontendFilterScenario : public testing::TestWithParam<Scenario> {};

TEST_P(FrontendFilterScenario, StepByStep) { run(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Table, FrontendFilterScenario, testing::ValuesIn(scenarios()),
                         [](const testing::TestParamInfo<Scenario>& info) {
                           return info.param.name;
                         });

// test_review_regressions.py's unanswered-messages bound: Parses without a
// Sync until the tracker refuses to remember more, which ends the session.
TEST(FrontendFilterTest, ReviewUnansweredMessagesAreBounded) {
  policy::Identity identity;
  identity.tenant = {"acme", policy::ValueType::kText};
  identity.database = "appdb";
  TestRewriter rewriter(identity);
  ProtocolTracker tracker(kToken, false);
  FrontendFilter filter(identity, false, 1 << 20, rewriter);
  std::string out;
  const std::string refused = wire::parse("", "SELECT * FROM secret_table");
  ASSERT_EQ(filter.filter('P', wire::body_of(refused), refused, tracker, out).kind, Kind::kRefused);
  const std::string p = wire::parse("x", "SELECT 1");
  std::size_t sent = 0;
  Verdict last;
  for (; sent < StatementTracker::kMaxPendingOps + 10; ++sent) {
    out.clear();
    last = filter.filter('P', wire::body_of(p), p, tracker, out);
    if (last.kind != Kind::kForward) break;
  }
  EXPECT_EQ(last.kind, Kind::kFatal);
  EXPECT_EQ(last.sqlstate, "54000");
  // The refused Parse holds one place; every other place is one Parse.
  EXPECT_EQ(sent, StatementTracker::kMaxPendingOps - 1);
}

// A changed statement is forwarded rewritten; an unchanged one byte for byte.
TEST(FrontendFilterTest, RewrittenQueryCarriesTheTenantPredicate) {
  policy::Identity identity;
  identity.tenant = {"acme", policy::ValueType::kText};
  identity.database = "appdb";
  TestRewriter rewriter(identity);
  ProtocolTracker tracker(kToken, false);
  FrontendFilter filter(identity, false, 1 << 20, rewriter);
  std::string out;
  const std::string scoped = wire::query("SELECT name FROM rv_users WHERE id = 1");
  ASSERT_EQ(filter.filter('Q', wire::body_of(scoped), scoped, tracker, out).kind, Kind::kForward);
  auto sql = parse_query(wire::body_of(out));
  ASSERT_TRUE(sql);
  EXPECT_NE(sql->find("tenant_id = 'acme'"), std::string_view::npos) << *sql;
  out.clear();
  const std::string plain = wire::query("SELECT 1");
  ASSERT_EQ(filter.filter('Q', wire::body_of(plain), plain, tracker, out).kind, Kind::kForward);
  EXPECT_EQ(out, plain);
}

}  // namespace
}  // namespace tenantgate::proxy
