// Row policies in the rewriter: the predicates they make, claims and the
// cache (one caller's claim never reaches another's statement), and the
// refusals around written rows. What the predicates mean is tested by
// execution against CREATE POLICY (row_policy_execution_test.cc).
#include <gtest/gtest.h>

#include "rewriter/rewrite_cache.h"
#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::identity;

std::shared_ptr<const policy::Policy> membership_policy() {
  static const auto policy = policy::parse_policy(R"toml(
default_action = "deny"
[tables."public.members"]
scope = "tenant"
[tables."public.countries"]
scope = "shared"
[tables."public.records"]
scope = "tenant"
[[tables."public.records".policies]]
name = "owner or member"
kind = "restrictive"
using = "owner_id = tenantgate.user_id() OR EXISTS (SELECT 1 FROM members m WHERE m.record_id = records.id AND m.user_id = tenantgate.user_id())"
check = "owner_id = tenantgate.user_id()"
[[tables."public.records".policies]]
name = "admins"
command = "select"
using = "tenantgate.claim('role') = 'admin'"
[tables."public.docs"]
[[tables."public.docs".policies]]
name = "read"
command = "select"
using = "tenant_id = tenantgate.tenant()"
)toml",
                                                  "m.toml");
  return policy;
}

policy::Identity with_claims(policy::Identity id,
                             std::map<std::string, std::string, std::less<>> claims) {
  id.claims = std::move(claims);
  return id;
}

RewriteResult cached(RewriteCache& cache, const std::string& sql, const policy::Identity& id) {
  const Rewriter rewriter{Options{}};
  RewriteResult r = RewriteResult::refused("", "not run");
  run_with_large_stack([&] { r = cache.rewrite(rewriter, sql, id, membership_policy()); });
  return r;
}

TEST(RowPolicies, ReadsGetPermissiveOrRestrictiveAndScopedSubqueries) {
  const RewriteResult r = testing::rewrite("SELECT id FROM records WHERE id = 2",
                                           identity("acme", "7"), *membership_policy());
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  EXPECT_EQ(r.value().sql,
            "SELECT id FROM (SELECT * FROM public.records WHERE (records.tenant_id = 'acme' OR "
            "NULL::text = 'admin') AND (records.owner_id = 7 OR EXISTS (SELECT 1 FROM (SELECT * "
            "FROM public.members WHERE members.tenant_id = 'acme') tg_p_m WHERE tg_p_m.record_id = "
            "records.id AND tg_p_m.user_id = 7))) records WHERE id = 2");
}

TEST(RowPolicies, ClaimsAreSlotsNeverCachedValues) {
  RewriteCache cache(1 << 20);
  const std::string sql = "SELECT count(*) FROM records";
  const RewriteResult admin =
      cached(cache, sql, with_claims(identity("acme", "1"), {{"role", "admin"}}));
  const RewriteResult member =
      cached(cache, sql, with_claims(identity("acme", "1"), {{"role", "member"}}));
  const RewriteResult none = cached(cache, sql, identity("acme", "1"));
  const RewriteResult quoted =
      cached(cache, sql, with_claims(identity("acme", "1"), {{"role", "o'brien\\"}}));
  ASSERT_TRUE(admin.is_ok() && member.is_ok() && none.is_ok() && quoted.is_ok());
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_NE(admin.value().sql.find("'admin'::text = 'admin'"), std::string::npos)
      << admin.value().sql;
  EXPECT_EQ(member.value().sql.find("'admin'::text"), std::string::npos) << member.value().sql;
  EXPECT_NE(member.value().sql.find("'member'::text = 'admin'"), std::string::npos);
  EXPECT_NE(none.value().sql.find("NULL::text = 'admin'"), std::string::npos) << none.value().sql;
  EXPECT_NE(quoted.value().sql.find("E'o''brien\\\\'::text"), std::string::npos)
      << quoted.value().sql;
  // A shape (constants lifted) falls back to the exact text and still substitutes.
  const RewriteResult lifted = cached(cache, "SELECT id FROM records WHERE id = 5",
                                      with_claims(identity("acme", "1"), {{"role", "admin"}}));
  const RewriteResult lifted2 = cached(cache, "SELECT id FROM records WHERE id = 6",
                                       with_claims(identity("acme", "1"), {{"role", "x"}}));
  ASSERT_TRUE(lifted.is_ok() && lifted2.is_ok());
  EXPECT_NE(lifted.value().sql.find("'admin'::text"), std::string::npos);
  EXPECT_NE(lifted2.value().sql.find("'x'::text"), std::string::npos);
  EXPECT_EQ(lifted2.value().sql.find("admin'::text"), std::string::npos);
}

TEST(RowPolicies, StatementTextThatSpellsAClaimMarkerIsRefused) {
  const RewriteResult r = testing::rewrite(
      "SELECT id FROM records WHERE 'tg_tenant_value_claim0_' = E'tg_tenant_value_claim0_'",
      identity("acme", "1"), *membership_policy());
  // The markers are chosen to avoid the text, so the statement rewrites normally.
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  EXPECT_NE(r.value().sql.find("NULL::text"), std::string::npos) << r.value().sql;
}

TEST(RowPolicies, WritesAreVerifiedInTheStatement) {
  const RewriteResult r =
      testing::rewrite("INSERT INTO records (id, owner_id) VALUES (1, 7) RETURNING *",
                       identity("acme", "7"), *membership_policy());
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  const std::string& sql = r.value().sql;
  EXPECT_TRUE(
      sql.starts_with("WITH tg_written AS (INSERT INTO public.records (id, owner_id, "
                      "tenant_id) VALUES (1, 7, 'acme') RETURNING records.*) SELECT "
                      "records.* FROM tg_written records WHERE CASE WHEN "))
      << sql;
  const std::string marker(kPolicyViolationMarker);
  EXPECT_NE(sql.find(marker + "new row violates row-level security policy for table \"records\"" +
                     marker),
            std::string::npos)
      << sql;
}

// Which statements of a query string are sent reshaped, and how the proxy
// must answer them (ReshapedWrite).
TEST(RowPolicies, ReshapedWritesAreReportedPerStatement) {
  using Write = ReshapedWrite;
  using Shapes = std::vector<std::optional<Write>>;
  const Write insert{Write::Command::kInsert, false};
  const Write insert_returning{Write::Command::kInsert, true};
  const Write update{Write::Command::kUpdate, false};
  const Write update_returning{Write::Command::kUpdate, true};
  struct Case {
    std::string sql;
    Shapes reshaped;
  };
  const std::vector<Case> cases = {
      {"INSERT INTO records (id, owner_id) VALUES (1, 7)", {insert}},
      {"INSERT INTO records (id, owner_id) VALUES (1, 7) RETURNING id", {insert_returning}},
      {"INSERT INTO records (id, owner_id) VALUES (1, 7) ON CONFLICT (id) DO UPDATE SET "
       "owner_id = 7",
       {insert}},
      {"UPDATE records SET owner_id = 7 WHERE id = 1", {update}},
      {"UPDATE records SET owner_id = 7 RETURNING *", {update_returning}},
      {"SELECT 1; INSERT INTO records (id, owner_id) VALUES (1, 7); UPDATE records SET owner_id "
       "= 7 RETURNING id; SELECT 2",
       {std::nullopt, insert, update_returning, std::nullopt}},
      // Answered as written: reads, DELETE, and a write that is not the
      // statement the client runs (its reply is EXPLAIN's, or PREPARE's).
      {"SELECT id FROM records", {}},
      {"DELETE FROM records WHERE id = 1", {}},
      {"EXPLAIN INSERT INTO records (id, owner_id) VALUES (1, 7)", {}},
      {"SELECT 1; DELETE FROM records", {}},
  };
  for (const auto& c : cases) {
    const RewriteResult r = testing::rewrite(c.sql, identity("acme", "7"), *membership_policy());
    ASSERT_TRUE(r.is_ok()) << c.sql << ": " << r.refusal().message;
    EXPECT_EQ(r.value().reshaped, c.reshaped) << c.sql;
  }
}

TEST(RowPolicies, Refusals) {
  const auto& p = *membership_policy();
  auto refused = [&](const std::string& sql, const std::string& sqlstate, const std::string& why,
                     std::optional<std::string> user = std::string("7")) {
    const RewriteResult r = testing::rewrite(sql, identity("acme", user), p);
    ASSERT_FALSE(r.is_ok()) << sql << "\n" << r.value().sql;
    EXPECT_EQ(r.refusal().sqlstate, sqlstate) << sql;
    EXPECT_NE(r.refusal().message.find(why), std::string::npos) << r.refusal().message;
  };
  refused(
      "WITH x AS (INSERT INTO records (id, owner_id) VALUES (1, 7) RETURNING id) SELECT * FROM x",
      "0A000", "inside WITH");
  refused("COPY records FROM STDIN", "0A000", "row policies");
  refused("SELECT * FROM records", "42501", "no user identity", std::nullopt);
  refused("UPDATE records SET (id, owner_id) = (SELECT 1, 2)", "0A000", "SET (a, b)");
  refused("WITH tg_written AS (SELECT 1) UPDATE records SET id = 1", "0A000", "reserved");
  // A table without a permissive policy for a command gives no rows (false), not an error.
  const RewriteResult del = testing::rewrite("DELETE FROM docs", identity("acme"), p);
  ASSERT_TRUE(del.is_ok());
  EXPECT_EQ(del.value().sql, "DELETE FROM public.docs WHERE false");
}

std::shared_ptr<const policy::Policy> masked_policy() {
  static const auto policy = policy::parse_policy(R"toml(
default_action = "deny"
[tables."public.users"]
[[tables."public.users".policies]]
name = "tenant"
using = "tenant_id = tenantgate.tenant()"
[tables."public.users".columns.salary]
mask = "0"
unless = "tenantgate.claim('role') = 'admin'"
)toml",
                                                  "masks.toml");
  return policy;
}

// A write that reads the whole row of a table with masks (by its name or
// alias, `t.*`, `(t).col`, a function of the row) would see the masked
// values: refused, as are references to the rewriter's own aliases.
TEST(RowPolicies, WholeRowReadsOfAMaskedTargetAreRefused) {
  const auto& p = *masked_policy();
  for (const char* sql : {
           "UPDATE users SET role = role WHERE true RETURNING users",
           "UPDATE users SET role = role WHERE true RETURNING (users).*",
           "UPDATE users SET role = role WHERE true RETURNING row_to_json(users)",
           "UPDATE users SET role = role WHERE id = 2 AND (users).salary > 150 RETURNING id",
           "DELETE FROM users WHERE id = 2 RETURNING (users).salary",
           "INSERT INTO users (id,email,role) VALUES (1,'x','y') ON CONFLICT (id) DO UPDATE SET "
           "role = users.role RETURNING (users).salary",
           "INSERT INTO users (id,email,role) VALUES (1,'x','y') ON CONFLICT (id) DO UPDATE SET "
           "role = users.role RETURNING tg_w.tg_row",
           "UPDATE users SET role = (users).salary::text WHERE id = 2",
           "UPDATE users x SET role = role RETURNING x",
           "UPDATE users SET role = role RETURNING to_jsonb(users)",
           "UPDATE users SET role = role RETURNING array[users]",
           "UPDATE users SET role = role RETURNING users::text",
           "UPDATE users SET role = role RETURNING users.row_to_json",
           "UPDATE users SET role = role RETURNING public.users.to_jsonb",
           "UPDATE users SET role = role RETURNING salary(users)",
           "DELETE FROM users x WHERE x::text LIKE '%2%'",
           "UPDATE users SET role = role WHERE EXISTS (SELECT 1 WHERE users.salary > 1)",
           "UPDATE users SET role = role RETURNING tg_row",
           "COPY (UPDATE users SET role = role RETURNING users) TO STDOUT",
       }) {
    const RewriteResult r = testing::rewrite(sql, identity("acme", "1"), p);
    ASSERT_FALSE(r.is_ok()) << sql << "\n" << r.value().sql;
    EXPECT_EQ(r.refusal().sqlstate, "0A000") << sql << ": " << r.refusal().message;
  }
  // Unmasked columns, qualified by the name or an alias, still go through.
  for (const char* sql : {
           "UPDATE users SET role = upper(role) WHERE id = 2 RETURNING id, role",
           "UPDATE users x SET email = x.email WHERE x.id = 1 RETURNING x.id, users.id",
           "UPDATE users SET salary = 5 WHERE id = 1",
       }) {
    const RewriteResult r = testing::rewrite(sql, identity("acme", "1"), p);
    EXPECT_TRUE(r.is_ok()) << sql << ": " << (r.is_ok() ? "" : r.refusal().message);
  }
}

// In deny-list mode any function may be `t.f`: only unqualified columns.
TEST(RowPolicies, DenyListModeAllowsOnlyUnqualifiedColumnsOfAMaskedTarget) {
  const auto policy = policy::parse_policy(R"toml(
default_action = "deny"
[functions]
mode = "deny_list"
[tables."public.users"]
[[tables."public.users".policies]]
name = "tenant"
using = "tenant_id = tenantgate.tenant()"
[tables."public.users".columns.salary]
mask = "0"
)toml",
                                           "deny.toml");
  const RewriteResult qualified = testing::rewrite(
      "UPDATE users x SET role = role RETURNING x.my_row_fn", identity("acme", "1"), *policy);
  ASSERT_FALSE(qualified.is_ok()) << qualified.value().sql;
  EXPECT_EQ(qualified.refusal().sqlstate, "0A000");
  const RewriteResult plain = testing::rewrite("UPDATE users SET role = role RETURNING id, role",
                                               identity("acme", "1"), *policy);
  EXPECT_TRUE(plain.is_ok()) << plain.refusal().message;
}

// The policy's subquery aliases are the rewriter's own (tg_p_<alias>), so a
// client alias `m` for the target is not captured by the policy's `members m`.
TEST(RowPolicies, ClientAliasIsNotCapturedByThePolicysAlias) {
  const RewriteResult r = testing::rewrite("DELETE FROM records m WHERE m.id = 1",
                                           identity("acme", "7"), *membership_policy());
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  EXPECT_NE(r.value().sql.find("FROM (SELECT * FROM public.members WHERE members.tenant_id = "
                               "'acme') tg_p_m WHERE tg_p_m.record_id = m.id"),
            std::string::npos)
      << r.value().sql;
}

}  // namespace
}  // namespace tenantgate::rewriter
