// Row policies in policy.toml: the model they load into, and one test per
// validation error, each checking the reported line and reason.
#include <gtest/gtest.h>

#include "policy/policy.h"
#include "policy/policy_expression.h"

namespace tenantgate::policy {
namespace {

void expect_error(const std::string& text, int line, const std::string& reason) {
  try {
    (void)parse_policy(text, "p.toml");
    ADD_FAILURE() << "no error; expected line " << line << ": " << reason << "\n" << text;
  } catch (const PolicyError& e) {
    const std::string what = e.what();
    const std::string prefix = "p.toml:" + std::to_string(line) + ": ";
    EXPECT_TRUE(what.starts_with(prefix)) << what << "\nexpected prefix " << prefix;
    EXPECT_NE(what.find(reason), std::string::npos) << what << "\nexpected " << reason;
  }
}

constexpr const char* kBase = R"toml([tables."public.members"]
scope = "tenant"
[tables."public.countries"]
scope = "shared"
[tables."public.records"]
)toml";

std::string with_policy(const std::string& body) {
  return std::string(kBase) + "[[tables.\"public.records\".policies]]\nname = \"p\"\n" + body;
}

TEST(RowPolicyLoader, LoadsPoliciesInOrder) {
  auto p = parse_policy(std::string(kBase) + R"toml([[tables."public.records".policies]]
name = "owner or member"
using = "owner_id = tenantgate.user_id() OR EXISTS (SELECT 1 FROM members m WHERE m.record_id = records.id)"
check = "owner_id = tenantgate.user_id()"
[[tables."public.records".policies]]
name = "tenant"
command = "select"
kind = "restrictive"
using = "tenant_id = tenantgate.tenant()"
)toml",
                        "p.toml");
  const TablePolicy& t = p->tables.at({"public", "records"});
  EXPECT_EQ(t.scope, Scope::kPolicies);
  ASSERT_EQ(t.policies.size(), 2u);
  EXPECT_EQ(t.policies[0].name, "owner or member");
  EXPECT_EQ(t.policies[0].command, PolicyCommand::kAll);
  EXPECT_TRUE(t.policies[0].permissive);
  ASSERT_NE(t.policies[0].using_expr, nullptr);
  ASSERT_EQ(t.policies[0].using_expr->tables.size(), 1u);
  EXPECT_EQ(t.policies[0].using_expr->tables[0], (QualifiedName{"public", "members"}));
  EXPECT_TRUE(t.policies[0].using_expr->uses_user);
  EXPECT_EQ(t.policies[0].using_expr->line, 8);
  EXPECT_EQ(t.policies[1].command, PolicyCommand::kSelect);
  EXPECT_FALSE(t.policies[1].permissive);
  EXPECT_EQ(t.policies[1].check_expr, nullptr);
  EXPECT_TRUE(t.uses_user);
}

TEST(RowPolicyLoader, ScopeNextToPoliciesIsTheFirstPermissivePolicy) {
  auto p = parse_policy(R"toml([tables."public.records"]
scope = "tenant_owner"
owner_column = "created_by"
[[tables."public.records".policies]]
name = "admins"
using = "tenantgate.claim('role') = 'admin' AND tenant_id = tenantgate.tenant()"
)toml",
                        "p.toml");
  const TablePolicy& t = p->tables.at({"public", "records"});
  EXPECT_EQ(t.scope, Scope::kPolicies);
  ASSERT_EQ(t.policies.size(), 2u);
  EXPECT_EQ(t.policies[0].using_expr->sql,
            "tenant_id = tenantgate.tenant() AND created_by = tenantgate.user_id()");
  EXPECT_EQ(t.tenant_column, "tenant_id");
  EXPECT_EQ(t.owner_column, "created_by");
  EXPECT_TRUE(t.policies[1].using_expr->uses_claims);
}

TEST(RowPolicyLoader, TablesWithoutPoliciesKeepTheirScope) {
  auto p = parse_policy(std::string(kBase) + "scope = \"deny\"\n", "p.toml");
  EXPECT_EQ(p->tables.at({"public", "members"}).scope, Scope::kTenant);
  EXPECT_TRUE(p->tables.at({"public", "members"}).policies.empty());
}

TEST(RowPolicyLoader, Errors) {
  expect_error(with_policy("using = \"tenant_id = \"\n"), 8, "does not parse");
  expect_error(with_policy("using = \"tenant_id\"\ncheck = \"1 + 1\"\n"), 9,
               "is not a boolean expression");
  expect_error(with_policy("using = \"random() > 0.5\"\n"), 8, "volatile");
  expect_error(with_policy("using = \"current_setting('app.tenant') = tenant_id\"\n"), 8,
               "volatile or reads session state");
  expect_error(with_policy("using = \"pg_sleep(1) IS NULL\"\n"), 8,
               "not allowed by the function rules");
  expect_error(with_policy("using = \"EXISTS (SELECT 1 FROM secrets s)\"\n"), 8,
               "relation secrets is not a table of this policy");
  expect_error(with_policy("using = \"EXISTS (SELECT 1 FROM members m WHERE record_id = 1)\"\n"), 8,
               "must be qualified");
  expect_error(with_policy("using = \"other.x = 1\"\n"), 8, "name the table's own columns");
  expect_error(with_policy("using = \"tenantgate.claim(name) = 'x'\"\n"), 8, "one string constant");
  expect_error(with_policy("using = \"tenantgate.whoami() = 'x'\"\n"), 8,
               "unknown function tenantgate.whoami");
  expect_error(with_policy("using = \"id = $1\"\n"), 8, "parameters");
  expect_error(with_policy("using = \"true) FROM members WHERE (true\"\n"), 8,
               "is not one SQL expression");
  expect_error(with_policy("command = \"insert\"\nusing = \"true\"\n"), 9,
               "an insert policy has only a check expression");
  expect_error(with_policy("command = \"select\"\ncheck = \"true\"\n"), 9,
               "a select policy has only a using expression");
  expect_error(with_policy("command = \"merge\"\n"), 8, "unknown command \"merge\"");
  expect_error(with_policy("kind = \"strict\"\n"), 8, "unknown kind");
  expect_error(with_policy("colour = \"red\"\n"), 8, "unknown key \"colour\"");
  expect_error(std::string(kBase) + "[[tables.\"public.records\".policies]]\nusing = \"true\"\n", 6,
               "has no name");
  expect_error(with_policy(""), 6, "has neither using nor check");
}

TEST(RowPolicyLoader, ColumnMasks) {
  auto p = parse_policy(R"toml([tables."public.users"]
scope = "tenant"
[tables."public.users".columns.email]
mask = "left(email, 1) || '***'"
unless = "id = tenantgate.user_id() OR tenantgate.claim('role') = 'admin'"
)toml",
                        "p.toml");
  const TablePolicy& t = p->tables.at({"public", "users"});
  EXPECT_EQ(t.scope, Scope::kPolicies);  // the tenant scope became a policy
  ASSERT_EQ(t.masks.size(), 1u);
  EXPECT_EQ(t.masks[0].column, "email");
  ASSERT_NE(t.masks[0].unless, nullptr);
  EXPECT_TRUE(t.uses_user);

  const std::string base = "[tables.\"public.users\"]\nscope = \"tenant\"\n";
  expect_error(base + "[tables.\"public.users\".columns.email]\nunless = \"true\"\n", 3,
               "has no mask");
  expect_error(base + "[tables.\"public.users\".columns.email]\nmask = \"'x'\"\nhide = 1\n", 5,
               "unknown key \"hide\"");
  expect_error(base + "[tables.\"public.users\".columns.email]\nmask = \"random()::text\"\n", 4,
               "volatile");
  expect_error(base +
                   "[tables.\"public.users\".columns.email]\nmask = \"'x'\"\n"
                   "unless = \"email ||\"\n",
               5, "does not parse");
  expect_error(
      "[tables.\"public.users\"]\nscope = \"shared\"\n"
      "[tables.\"public.users\".columns.email]\nmask = \"'x'\"\n",
      1, "column masks need a scope other than shared");
  expect_error(
      "[tables.\"public.users\"]\n[[tables.\"public.users\".policies]]\nname = \"p\"\n"
      "using = \"email LIKE '%@acme.test'\"\n"
      "[tables.\"public.users\".columns.email]\nmask = \"'x'\"\n",
      4, "reads column email, which is masked");
}

TEST(RowPolicyLoader, CyclesAreErrors) {
  expect_error(R"toml([tables."public.a"]
[[tables."public.a".policies]]
name = "via b"
using = "EXISTS (SELECT 1 FROM b WHERE b.id = a.id)"
[tables."public.b"]
[[tables."public.b".policies]]
name = "via a"
using = "EXISTS (SELECT 1 FROM a WHERE a.id = b.id)"
)toml",
               8, "makes a cycle of policies: public.a -> public.b -> public.a");
  expect_error(R"toml([tables."public.a"]
[[tables."public.a".policies]]
name = "self"
using = "EXISTS (SELECT 1 FROM a x WHERE x.id = a.id)"
)toml",
               4, "cycle");
}

}  // namespace
}  // namespace tenantgate::policy
