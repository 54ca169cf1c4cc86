// Missing-predicate analysis: which scoped references a statement's own SQL
// restricts to the caller. A table of statements, each with the findings it
// must produce for the caller (tenant acme, user 7).
#include "rewriter/predicate_coverage.h"

#include <gtest/gtest.h>

#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {
namespace {

constexpr const char* kPolicy = R"(
default_action = "deny"
search_path = ["public"]
[defaults]
tenant_column = "tenant_id"
owner_column = "owner_id"
[tables."public.users"]
scope = "tenant"
[tables."public.records"]
scope = "tenant_owner"
owner_column = "created_by"
[tables."public.countries"]
scope = "shared"
)";

policy::Identity caller() {
  policy::Identity id;
  id.tenant = {"acme", policy::ValueType::kText};
  id.user = policy::TypedValue{"7", policy::ValueType::kInt};
  id.database = "appdb";
  return id;
}

struct Case {
  const char* sql;
  std::vector<MissingPredicate> missing;
};

std::vector<MissingPredicate> findings(const std::string& sql,
                                       std::vector<std::optional<std::string>> params = {}) {
  auto policy = policy::parse_policy(kPolicy, "policy.toml");
  std::vector<MissingPredicate> out;
  bool parsed = false;
  run_with_large_stack([&] {
    auto shape = analyse_coverage(sql, *policy, "appdb");
    if (!shape) return;
    parsed = true;
    out = evaluate_coverage(*shape, caller(), params);
  });
  EXPECT_TRUE(parsed) << sql;
  return out;
}

TEST(PredicateCoverageTest, Table) {
  const std::vector<Case> cases = {
      // The three routes of the scenario: nothing ties the rows to the caller.
      {"SELECT id, email, role FROM users WHERE id = 5", {{"public.users", {"tenant_id"}}}},
      {"SELECT id, tenant_id, data FROM records WHERE id = 5",
       {{"public.records", {"tenant_id", "created_by"}}}},
      {"SELECT id FROM records ORDER BY id LIMIT 100 OFFSET 0",
       {{"public.records", {"tenant_id", "created_by"}}}},
      // Correct ones.
      {"SELECT id FROM users WHERE tenant_id = 'acme' AND id = 5", {}},
      {"SELECT id FROM users u WHERE u.tenant_id = 'acme'", {}},
      {"SELECT id FROM users WHERE users.tenant_id = 'acme'::text", {}},
      {"SELECT id FROM records WHERE tenant_id = 'acme' AND created_by = 7", {}},
      {"SELECT id FROM records WHERE 'acme' = tenant_id AND 7 = created_by AND id > 3", {}},
      {"SELECT r.id FROM records r JOIN users u ON u.tenant_id = 'acme' "
       "WHERE r.tenant_id = 'acme' AND r.created_by = '7'",
       {}},
      {"SELECT code FROM countries", {}},
      // Another tenant's constant, or the user id where the tenant belongs.
      {"SELECT id FROM users WHERE tenant_id = 'globex'", {{"public.users", {"tenant_id"}}}},
      {"SELECT id FROM users WHERE tenant_id = '7'", {{"public.users", {"tenant_id"}}}},
      // Only the owner, not the tenant.
      {"SELECT id FROM records WHERE created_by = 7", {{"public.records", {"tenant_id"}}}},
      // An OR, or the condition on the wrong alias, restricts nothing.
      {"SELECT id FROM users WHERE tenant_id = 'acme' OR id = 1",
       {{"public.users", {"tenant_id"}}}},
      {"SELECT u.id FROM users u JOIN users v ON v.tenant_id = 'acme'",
       {{"public.users", {"tenant_id"}}}},
      // Each query level on its own: the subquery's table is unrestricted.
      {"SELECT id FROM users WHERE tenant_id = 'acme' AND id IN (SELECT created_by FROM records)",
       {{"public.records", {"tenant_id", "created_by"}}}},
      {"SELECT * FROM (SELECT * FROM users) s WHERE s.tenant_id = 'acme'",
       {{"public.users", {"tenant_id"}}}},
      // Both arms of a UNION.
      {"SELECT id FROM users WHERE tenant_id = 'acme' UNION SELECT id FROM users",
       {{"public.users", {"tenant_id"}}}},
      // Writes: UPDATE and DELETE targets are read through their WHERE;
      // INSERT targets are the write rules' business.
      {"UPDATE users SET name = 'x' WHERE id = 1", {{"public.users", {"tenant_id"}}}},
      {"DELETE FROM users WHERE tenant_id = 'acme' AND id = 1", {}},
      {"INSERT INTO users (name) VALUES ('x')", {}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(findings(c.sql), c.missing) << c.sql;
  }
}

TEST(PredicateCoverageTest, ParametersAreJudgedByTheirBoundValues) {
  const std::string sql = "SELECT id FROM records WHERE tenant_id = $1 AND created_by = $2";
  EXPECT_EQ(findings(sql, {"acme", "7"}), std::vector<MissingPredicate>{});
  EXPECT_EQ(findings(sql, {"acme", "8"}),
            (std::vector<MissingPredicate>{{"public.records", {"created_by"}}}));
  EXPECT_EQ(findings(sql, {std::nullopt, "7"}),
            (std::vector<MissingPredicate>{{"public.records", {"tenant_id"}}}));
  // Not bound (judged without parameters): not shown to be the caller's.
  EXPECT_EQ(findings(sql),
            (std::vector<MissingPredicate>{{"public.records", {"tenant_id", "created_by"}}}));
}

TEST(PredicateCoverageTest, TablesTouchedCarryTheirPolicy) {
  auto policy = policy::parse_policy(kPolicy, "policy.toml");
  std::optional<CoverageShape> shape;
  run_with_large_stack([&] {
    shape = analyse_coverage(
        "SELECT * FROM users u JOIN countries c ON true JOIN secrets s ON true, pg_class", *policy,
        "appdb");
  });
  ASSERT_TRUE(shape);
  ASSERT_EQ(shape->tables.size(), 4u);
  EXPECT_EQ(policy::to_string(shape->tables[0].table), "public.users");
  EXPECT_EQ(shape->tables[0].policy, "tenant");
  EXPECT_EQ(shape->tables[1].policy, "shared");
  EXPECT_EQ(shape->tables[2].policy, "default");
  EXPECT_EQ(shape->tables[3].policy, "catalog");
}

TEST(PredicateCoverageTest, TextThatDoesNotParseHasNoShape) {
  auto policy = policy::parse_policy(kPolicy, "policy.toml");
  bool parsed = true;
  run_with_large_stack([&] { parsed = analyse_coverage("SELEC 1", *policy, "appdb").has_value(); });
  EXPECT_FALSE(parsed);
}

}  // namespace
}  // namespace tenantgate::rewriter
