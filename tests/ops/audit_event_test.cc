// Audit records: normalisation hides every constant, the JSON line has every
// field, and parse_audit_line reads back what to_json_line wrote.
#include "ops/audit_event.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tenantgate::ops {
namespace {

TEST(AuditEventTest, NormalisationReplacesEveryConstant) {
  EXPECT_EQ(normalise_statement("SELECT id,  email FROM users WHERE id = 42 AND name = 'bob'"),
            "SELECT id, email FROM users WHERE id = ? AND name = ?");
  EXPECT_EQ(normalise_statement("select f(x)::int from t where d = date '2020-01-01' -- c\n"),
            "select f (x)::int from t where d = date ?");
  EXPECT_EQ(normalise_statement("SELECT $1, E'a\\nb', $$x$$, B'01', 1.5e3"),
            "SELECT $1, ?, ?, ?, ?");
  EXPECT_EQ(normalise_statement("SELECT 'unterminated"), "");
  EXPECT_EQ(fingerprint("SELECT ?"), fingerprint("SELECT ?"));
  EXPECT_NE(fingerprint("SELECT ?"), fingerprint("SELECT ? "));
  EXPECT_EQ(fingerprint("x").size(), 16u);
}

AuditEvent sample() {
  AuditEvent e;
  e.time_us = 1764720000123456;
  e.session = 12;
  e.principal = "app";
  e.tenant = "acme";
  e.user = "7";
  e.protocol = "simple";
  e.enforcement = "shadow";
  e.normalised = "SELECT id FROM users WHERE id = ?";
  e.fingerprint = fingerprint(e.normalised);
  e.tables = {{"public.users", "tenant", {"tenant_id"}}, {"public.countries", "shared", {}}};
  e.decision = Decision::kForwarded;
  e.would = Decision::kRewritten;
  e.policy_version = "0123456789ab";
  e.duration_us = 35;
  return e;
}

TEST(AuditEventTest, JsonLineHasEveryField) {
  const std::string line = to_json_line(sample());
  ASSERT_TRUE(line.ends_with("\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2025-12-03T00:00:00.123456Z");
  EXPECT_EQ(j["session"], 12);
  EXPECT_EQ(j["principal"], "app");
  EXPECT_EQ(j["tenant"], "acme");
  EXPECT_EQ(j["user"], "7");
  EXPECT_EQ(j["fingerprint"], sample().fingerprint);
  EXPECT_EQ(j["tables"][0]["table"], "public.users");
  EXPECT_EQ(j["tables"][0]["policy"], "tenant");
  EXPECT_EQ(j["tables"][0]["missing_predicate"][0], "tenant_id");
  EXPECT_EQ(j["decision"], "forwarded");
  EXPECT_EQ(j["would"], "rewritten");
  EXPECT_TRUE(j["sqlstate"].is_null());
  EXPECT_EQ(j["policy_version"], "0123456789ab");
  EXPECT_EQ(j["duration_us"], 35);
  EXPECT_FALSE(j.contains("statement"));
}

TEST(AuditEventTest, RoundTrip) {
  AuditEvent e = sample();
  e.statement = "SELECT id FROM users WHERE id = 5";
  e.decision = Decision::kRefused;
  e.would.reset();
  e.sqlstate = "42501";
  e.message = "permission denied";
  auto back = parse_audit_line(to_json_line(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->time_us, e.time_us);
  EXPECT_EQ(back->session, e.session);
  EXPECT_EQ(back->statement, e.statement);
  EXPECT_EQ(back->decision, Decision::kRefused);
  EXPECT_FALSE(back->would);
  EXPECT_EQ(back->sqlstate, "42501");
  EXPECT_EQ(back->tables.size(), 2u);
  EXPECT_EQ(back->tables[0].missing, std::vector<std::string>{"tenant_id"});
  EXPECT_TRUE(back->has_missing_predicate());
}

TEST(AuditEventTest, ClientTextCannotBreakTheLine) {
  AuditEvent e = sample();
  e.tenant = "a\"b\nc";
  e.statement = std::string("SELECT '\xff\xfe'\n;");
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  auto back = parse_audit_line(line);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->tenant, "a\"b\nc");
  EXPECT_EQ(*back->statement, "SELECT '\xEF\xBF\xBD\xEF\xBF\xBD'\n;");
}

TEST(AuditEventTest, OtherLinesAreNotRecords) {
  EXPECT_FALSE(parse_audit_line(""));
  EXPECT_FALSE(parse_audit_line("not json"));
  EXPECT_FALSE(parse_audit_line("{\"time\": 1}"));
  EXPECT_FALSE(parse_audit_line("[1,2]"));
}

}  // namespace
}  // namespace tenantgate::ops
