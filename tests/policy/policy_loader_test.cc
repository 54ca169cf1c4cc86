// policy.toml loading: defaults, name folding, and one test per error path,
// each checking the reported line and reason.
#include <gtest/gtest.h>

#include <fstream>

#include "policy/policy.h"

namespace tenantgate::policy {
namespace {

// Expects parse_policy(text) to fail with "p.toml:<line>: ...<reason>...".
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

const TablePolicy& table(const Policy& p, const std::string& schema, const std::string& name) {
  auto it = p.tables.find({schema, name});
  if (it == p.tables.end()) throw std::runtime_error("no table " + schema + "." + name);
  return it->second;
}

TEST(PolicyLoaderTest, EmptyFileHasDefaults) {
  auto p = parse_policy("", "p.toml");
  EXPECT_EQ(p->default_action, Scope::kDeny);
  EXPECT_EQ(p->search_path, std::vector<std::string>{"public"});
  EXPECT_TRUE(p->tables.empty());
  EXPECT_EQ(p->function_mode, FunctionMode::kAllowList);
  EXPECT_TRUE(p->denied_functions.contains("set_config"));
  EXPECT_TRUE(p->denied_functions.contains("crdb_internal.*"));
  EXPECT_TRUE(p->denied_catalog_relations.contains("pg_statistic"));
  EXPECT_TRUE(p->denied_catalog_relations.contains("pg_statistic_ext_data"));
  // Extended statistics definitions (no row values) stay readable: psql's \d reads them.
  EXPECT_FALSE(p->catalog_denied("pg_catalog", "pg_statistic_ext"));
  EXPECT_TRUE(p->catalog_denied("pg_catalog", "pg_statistic_ext_data"));
  EXPECT_EQ(p->source_file, "p.toml");
}

TEST(PolicyLoaderTest, ExampleFileLoads) {
  auto p = load_policy_file(TG_EXAMPLES_DIR "/policy.toml");
  EXPECT_EQ(p->default_action, Scope::kDeny);
  ASSERT_EQ(p->tables.size(), 4u);
  const auto& users = table(*p, "public", "users");
  EXPECT_EQ(users.scope, Scope::kTenant);
  EXPECT_EQ(users.tenant_column, "tenant_id");
  EXPECT_TRUE(users.owner_column.empty());
  const auto& records = table(*p, "public", "records");
  EXPECT_EQ(records.scope, Scope::kPolicies);
  EXPECT_EQ(records.tenant_column, "tenant_id");
  ASSERT_EQ(records.policies.size(), 2u);  // the tenant scope, then "owner or member"
  EXPECT_EQ(records.policies[1].name, "owner or member");
  EXPECT_FALSE(records.policies[1].permissive);
  EXPECT_EQ(table(*p, "public", "record_members").scope, Scope::kTenant);
  EXPECT_EQ(table(*p, "public", "countries").scope, Scope::kShared);
  EXPECT_TRUE(p->function_denied("", "pg_sleep"));
  EXPECT_EQ(p->source_file, TG_EXAMPLES_DIR "/policy.toml");
}

TEST(PolicyLoaderTest, DataFileLoadsAndMissingFileFails) {
  auto p = load_policy_file(TG_POLICY_TEST_DATA "/full.toml");
  EXPECT_EQ(p->default_action, Scope::kShared);
  EXPECT_EQ(p->search_path, (std::vector<std::string>{"app", "public"}));
  EXPECT_EQ(table(*p, "app", "notes").scope, Scope::kOwner);
  EXPECT_EQ(table(*p, "app", "notes").owner_column, "author");
  EXPECT_EQ(table(*p, "app", "notes").line, 12);
  EXPECT_EQ(table(*p, "billing", "Invoices").tenant_column, "org_id");
  EXPECT_TRUE(p->catalog_denied("pg_catalog", "pg_locks"));

  try {
    (void)load_policy_file(TG_POLICY_TEST_DATA "/does-not-exist.toml");
    FAIL() << "no error";
  } catch (const PolicyError& e) {
    EXPECT_NE(std::string(e.what()).find("does-not-exist.toml: cannot open"), std::string::npos)
        << e.what();
  }
}

TEST(PolicyLoaderTest, DataFileErrorNamesThePath) {
  const std::string path = TG_POLICY_TEST_DATA "/bad_scope.toml";
  try {
    (void)load_policy_file(path);
    FAIL() << "no error";
  } catch (const PolicyError& e) {
    EXPECT_EQ(std::string(e.what()),
              path +
                  ":5: unknown scope \"tenants\" (expected tenant | owner | tenant_owner | "
                  "shared | deny)");
  }
}

TEST(PolicyLoaderTest, NameFolding) {
  auto p = parse_policy(R"(
search_path = ["App"]

[defaults]
tenant_column = "Tenant_ID"
owner_column = '"OwnerId"'

[tables.Users]
scope = "tenant"

[tables."Sales.Orders"]
scope = "tenant_owner"

[tables.'"Sales"."Orders"']
scope = "shared"

[tables.'"we""ird".x$1']
scope = "owner"
owner_column = '"Made By"'

[tables.'"a.b".c']
scope = "deny"

[tables."zürich"]
scope = "deny"
)",
                        "p.toml");
  EXPECT_EQ(p->search_path, std::vector<std::string>{"app"});
  EXPECT_EQ(table(*p, "app", "users").tenant_column, "tenant_id");
  const auto& orders = table(*p, "sales", "orders");
  EXPECT_EQ(orders.tenant_column, "tenant_id");
  EXPECT_EQ(orders.owner_column, "OwnerId");
  EXPECT_EQ(table(*p, "Sales", "Orders").scope, Scope::kShared);
  EXPECT_EQ(table(*p, "we\"ird", "x$1").owner_column, "Made By");
  EXPECT_EQ(table(*p, "a.b", "c").scope, Scope::kDeny);
  EXPECT_EQ(table(*p, "app", "zürich").scope, Scope::kDeny);
  EXPECT_EQ(to_string(table(*p, "we\"ird", "x$1").name), "\"we\"\"ird\".x$1");
  EXPECT_EQ(p->tables.size(), 6u);
}

TEST(PolicyLoaderTest, ColumnsOnlyWhereTheScopeUsesThem) {
  auto p = parse_policy(R"(
[tables.a]
scope = "tenant"
[tables.b]
scope = "owner"
[tables.c]
scope = "shared"
[tables.d]
scope = "deny"
[tables.e]
scope = "tenant_owner"
tenant_column = "org"
)",
                        "p.toml");
  EXPECT_EQ(table(*p, "public", "a").owner_column, "");
  EXPECT_EQ(table(*p, "public", "b").tenant_column, "");
  EXPECT_EQ(table(*p, "public", "b").owner_column, "owner_id");
  EXPECT_EQ(table(*p, "public", "c").tenant_column, "");
  EXPECT_EQ(table(*p, "public", "d").owner_column, "");
  EXPECT_EQ(table(*p, "public", "e").tenant_column, "org");
  EXPECT_EQ(table(*p, "public", "e").owner_column, "owner_id");
  EXPECT_EQ(table(*p, "public", "e").line, 10);
}

TEST(PolicyLoaderTest, InlineAndDottedForms) {
  auto p = parse_policy(
      "tables = { t1 = { scope = \"tenant\" } }\n"
      "default_action = \"shared\"\n",
      "p.toml");
  EXPECT_EQ(table(*p, "public", "t1").scope, Scope::kTenant);
  EXPECT_EQ(p->default_action, Scope::kShared);
  auto q = parse_policy("tables.\"s.t\".scope = \"owner\"\n", "p.toml");
  EXPECT_EQ(table(*q, "s", "t").scope, Scope::kOwner);
}

TEST(PolicyLoaderTest, SearchPathDeclaredAfterTablesStillApplies) {
  auto p = parse_policy("[tables.t]\nscope = \"deny\"\n", "p.toml");
  EXPECT_TRUE(p->tables.contains({"public", "t"}));
  // TOML puts top-level keys before the first table, but order within the
  // root must not matter: search_path qualifies every table.
  auto q = parse_policy("tables.t.scope = \"deny\"\nsearch_path = [\"s\"]\n", "p.toml");
  EXPECT_TRUE(q->tables.contains({"s", "t"}));
}

// ---- error paths ---------------------------------------------------------

TEST(PolicyLoaderErrorTest, InvalidToml) {
  expect_error("default_action = \"deny\"\nsearch_path = [\n", 3, "invalid TOML");
  expect_error("a = \n", 1, "invalid TOML: missing value");
  expect_error("[tables.t]\nscope = \"tenant\"\n[tables.t]\nscope = \"shared\"\n", 3,
               "invalid TOML");  // exact duplicate key: TOML itself refuses
}

TEST(PolicyLoaderErrorTest, UnknownKeys) {
  expect_error("\n\ndefault_actoin = \"deny\"\n", 3, "unknown key \"default_actoin\"");
  expect_error("[defaults]\ntenant_column = \"t\"\nuser_column = \"u\"\n", 3,
               "unknown key \"user_column\" in [defaults]");
  expect_error("[tables.t]\nscope = \"tenant\"\ncolumn = \"x\"\n", 3,
               "unknown key \"column\" in [tables.\"t\"]");
  expect_error("[functions]\ndeny = []\nallowed = []\n", 3,
               "unknown key \"allowed\" in [functions]");
  expect_error("[catalogs]\nallow = [\"pg_stats\"]\n", 2, "unknown key \"allow\" in [catalogs]");
  expect_error("\n[extra]\nx = 1\n", 2, "unknown key \"extra\"");
}

TEST(PolicyLoaderErrorTest, WrongTypes) {
  expect_error("default_action = 1\n", 1, "default_action must be a string");
  expect_error("search_path = \"public\"\n", 1, "search_path must be an array");
  expect_error("search_path = [\"a\",\n 2]\n", 2, "search_path entries must be a string");
  expect_error("defaults = 3\n", 1, "[defaults] must be a table");
  expect_error("tables = [1]\n", 1, "[tables] must be a table");
  expect_error("tables = { t = 1 }\n", 1, "[tables.\"t\"] must be a table");
  expect_error("[tables.t]\nscope = [\"tenant\"]\n", 2, "scope must be a string");
  expect_error("[tables.t]\nscope = \"tenant\"\ntenant_column = 5\n", 3,
               "tenant_column must be a string");
  expect_error("[functions]\ndeny = \"pg_sleep\"\n", 2, "deny must be an array of strings");
  expect_error("[functions]\ndeny = [\"a\",\n  1]\n", 3, "deny entries must be a string");
  expect_error("[functions]\nmode = true\n", 2, "mode must be a string");
  expect_error("catalogs = 1\n", 1, "[catalogs] must be a table");
  expect_error("functions = 1\n", 1, "[functions] must be a table");
}

TEST(PolicyLoaderErrorTest, EnumValues) {
  expect_error("default_action = \"tenant\"\n", 1,
               "unknown default_action \"tenant\" (expected deny | shared)");
  expect_error("default_action = \"DENY\"\n", 1, "unknown default_action \"DENY\"");
  expect_error("\n[tables.t]\nscope = \"tenants\"\n", 3, "unknown scope \"tenants\"");
  expect_error("[tables.t]\nscope = \"\"\n", 2, "unknown scope \"\"");
  expect_error("[functions]\nmode = \"allowlist\"\n", 2, "unknown functions mode \"allowlist\"");
}

TEST(PolicyLoaderErrorTest, MissingScope) {
  expect_error("\n[tables.t]\ntenant_column = \"x\"\n", 2, "[tables.\"t\"] has no scope");
  expect_error("[tables.public.users]\nscope = \"tenant\"\n", 1,
               "a schema-qualified name is one quoted key: [tables.\"public.users\"]");
}

TEST(PolicyLoaderErrorTest, EmptyColumns) {
  expect_error("[tables.t]\nscope = \"tenant\"\ntenant_column = \"\"\n", 3,
               "tenant_column is empty");
  expect_error("[tables.t]\nscope = \"owner\"\nowner_column = \"\"\n", 3, "owner_column is empty");
  expect_error("[defaults]\ntenant_column = \"\"\n\n[tables.t]\nscope = \"tenant_owner\"\n", 4,
               "needs a tenant column but [defaults] tenant_column is empty");
  expect_error("[defaults]\nowner_column = \"\"\n\n[tables.t]\nscope = \"owner\"\n", 4,
               "needs an owner column but [defaults] owner_column is empty");
  // An empty default is fine when nothing needs it.
  auto p =
      parse_policy("[defaults]\nowner_column = \"\"\n[tables.t]\nscope = \"tenant\"\n", "p.toml");
  EXPECT_EQ(p->tables.size(), 1u);
}

TEST(PolicyLoaderErrorTest, ColumnsTheScopeDoesNotUse) {
  expect_error("[tables.t]\nscope = \"tenant\"\nowner_column = \"created_by\"\n", 3,
               "owner_column is set but scope \"tenant\" does not use it");
  expect_error("[tables.t]\nscope = \"shared\"\ntenant_column = \"x\"\n", 3,
               "tenant_column is set but scope \"shared\" does not use it");
  expect_error("[tables.t]\nscope = \"tenant_owner\"\nowner_column = \"tenant_id\"\n", 1,
               "tenant_column and owner_column are the same column \"tenant_id\"");
}

TEST(PolicyLoaderErrorTest, MalformedColumns) {
  expect_error("[tables.t]\nscope = \"tenant\"\ntenant_column = \"a.b\"\n", 3,
               "tenant_column must be a single column name");
  expect_error("[tables.t]\nscope = \"tenant\"\ntenant_column = \"tenant id\"\n", 3,
               "malformed tenant_column \"tenant id\": unexpected character ' '");
  expect_error("[defaults]\nowner_column = \"1st\"\n", 2, "malformed owner_column \"1st\"");
  expect_error("[defaults]\nowner_column = '\"abc'\n", 2, "unterminated quoted identifier");
}

TEST(PolicyLoaderErrorTest, MalformedTableNames) {
  expect_error("\n[tables.\"db.public.users\"]\nscope = \"tenant\"\n", 2,
               "three-part names (database.schema.table) are not allowed");
  expect_error("[tables.\"a.b.c.d\"]\nscope = \"tenant\"\n", 1, "too many parts");
  expect_error("[tables.\"public.\"]\nscope = \"tenant\"\n", 1,
               "malformed table name \"public.\": empty part");
  expect_error("[tables.\".users\"]\nscope = \"tenant\"\n", 1, "empty part");
  expect_error("[tables.\"\"]\nscope = \"tenant\"\n", 1, "empty name");
  expect_error("[tables.'\"\"']\nscope = \"tenant\"\n", 1, "zero-length quoted identifier");
  expect_error("[tables.'\"ab\"c']\nscope = \"tenant\"\n", 1,
               "expected '.' after a quoted identifier");
  expect_error("[tables.\"my table\"]\nscope = \"tenant\"\n", 1, "unexpected character ' '");
  expect_error("[tables.\"users*\"]\nscope = \"tenant\"\n", 1, "unexpected character '*'");
  expect_error("[tables.\"public. users\"]\nscope = \"tenant\"\n", 1, "unexpected character ' '");
  expect_error("[tables.\"" + std::string(64, 'a') + "\"]\nscope = \"tenant\"\n", 1,
               "longer than 63 bytes");
  // 63 bytes is fine.
  auto p =
      parse_policy("[tables.\"" + std::string(63, 'a') + "\"]\nscope = \"tenant\"\n", "p.toml");
  EXPECT_EQ(p->tables.size(), 1u);
}

TEST(PolicyLoaderErrorTest, DuplicateTablesAfterCanonicalisation) {
  expect_error(
      "[tables.\"public.users\"]\nscope = \"tenant\"\n\n[tables.users]\nscope = \"shared\"\n", 4,
      "table public.users is declared twice (also at line 1)");
  expect_error(
      "[tables.\"Public.Users\"]\nscope = \"tenant\"\n[tables.\"public.users\"]\nscope = "
      "\"shared\"\n",
      3, "table public.users is declared twice (also at line 1)");
  expect_error(
      "search_path = [\"app\"]\n[tables.\"app.t\"]\nscope = \"tenant\"\n[tables.T]\nscope = "
      "\"shared\"\n",
      4, "table app.t is declared twice (also at line 2)");
  expect_error(
      "[tables.'\"public\".\"users\"']\nscope = \"tenant\"\n[tables.USERS]\nscope = \"deny\"\n", 3,
      "declared twice");
  // Quoting keeps case apart: these are two different tables.
  auto p = parse_policy(
      "[tables.'\"Users\"']\nscope = \"tenant\"\n[tables.users]\nscope = \"deny\"\n", "p.toml");
  EXPECT_EQ(p->tables.size(), 2u);
}

TEST(PolicyLoaderErrorTest, SearchPath) {
  expect_error("search_path = []\n", 1, "search_path is empty");
  expect_error("search_path = [\"a.b\"]\n", 1, "is not a single schema name");
  expect_error("search_path = [\"\"]\n", 1, "malformed schema name \"\": empty name");
  expect_error("search_path = [\"a b\"]\n", 1, "malformed schema name");
}

TEST(PolicyLoaderErrorTest, FunctionsAndCatalogPatterns) {
  expect_error("[functions]\ndeny = [\"\"]\n", 2, "malformed name \"\": empty name");
  expect_error("[functions]\ndeny = [\"a.b.c\"]\n", 2, "at most schema.name");
  expect_error("[functions]\ndeny = [\"pg_*x\"]\n", 2, "'*' may only end the last part");
  expect_error("[functions]\ndeny = [\"sch*.f\"]\n", 2, "'*' may only end the last part");
  expect_error("[functions]\ndeny = [\"f(int)\"]\n", 2, "unexpected character '('");
  expect_error("[functions]\nmode = \"deny_list\"\nallow = [\"lower\"]\n", 3,
               "allow has no effect with mode = \"deny_list\"");
  expect_error("[functions]\nmode = \"nope\"\n", 2,
               "unknown functions mode \"nope\" (expected allow_list | deny_list)");
  expect_error(
      "[functions]\nmode = \"allow_list\"\nallow = [\"lower\",\n \"pg_catalog.set_config\"]\n", 4,
      "\"pg_catalog.set_config\" is on the built-in deny list and cannot be allowed");
  expect_error("[functions]\nmode = \"allow_list\"\nallow = [\"crdb_internal.f\"]\n", 3,
               "allow narrows the built-in allow-list; name an app function with "
               "[functions.\"crdb_internal.f\"]");
  expect_error("[functions]\nallow = [\"app.my_fn\"]\n", 2,
               "allow narrows the built-in allow-list");
  expect_error("[functions.\"public.f\"]\nreason = \"x\"\n", 1,
               "[functions.\"public.f\"] has no reads (none | shared | rls)");
  expect_error("[functions.public.f]\nreads = \"none\"\n", 1,
               "a schema-qualified name is one quoted key: [functions.\"public.f\"]");
  expect_error("[functions.\"public.f\"]\nreads = \"all\"\n", 2, "unknown reads \"all\"");
  expect_error("[functions.\"public.f\"]\nreads = \"none\"\nwhy = 1\n", 3,
               "unknown key \"why\" in [functions.\"public.f\"] (expected reads, reason)");
  expect_error("[functions.\"pg_catalog.lower\"]\nreads = \"none\"\n", 1,
               "built-in functions follow the built-in list");
  expect_error("[functions.\"a.b.c\"]\nreads = \"none\"\n", 1, "at most schema.name");
  expect_error("[functions]\nlimit = 3\n", 2, "unknown key \"limit\" in [functions]");
  expect_error("[catalogs]\ndeny = [1]\n", 2, "deny entries must be a string");
  expect_error("[catalogs]\ndeny = [\"a.b.c\"]\n", 2, "at most schema.name");
}

TEST(PolicyLoaderErrorTest, FirstErrorInFileOrderWins) {
  expect_error("[tables.b]\nscope = \"nope\"\n[tables.a]\nscope = \"nope2\"\n", 2, "\"nope\"");
}

}  // namespace
}  // namespace tenantgate::policy
