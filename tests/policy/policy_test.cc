// Name resolution, quoting and the function/catalog deny rules.
#include "policy/policy.h"

#include <gtest/gtest.h>

namespace tenantgate::policy {
namespace {

using Kind = Resolution::Kind;

std::shared_ptr<const Policy> example() {
  return parse_policy(R"(
default_action = "deny"
search_path = ["app", "public"]

[tables."app.users"]
scope = "tenant"

[tables."public.users"]
scope = "shared"

[tables."public.records"]
scope = "tenant_owner"
owner_column = "created_by"

[tables.'"Mixed"."CaseTable"']
scope = "owner"

[tables."public.pg_data"]
scope = "tenant"
)",
                      "example.toml");
}

TEST(ScopeTest, NamesRoundTrip) {
  for (Scope s :
       {Scope::kTenant, Scope::kOwner, Scope::kTenantOwner, Scope::kShared, Scope::kDeny}) {
    EXPECT_EQ(parse_scope(scope_name(s)), s);
  }
  EXPECT_EQ(scope_name(Scope::kTenantOwner), "tenant_owner");
  EXPECT_FALSE(parse_scope("Tenant"));
  EXPECT_FALSE(parse_scope("allow"));
}

TEST(QuoteTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(quote_identifier("users"), "users");
  EXPECT_EQ(quote_identifier("_x$1"), "_x$1");
  EXPECT_EQ(quote_identifier("Users"), "\"Users\"");
  EXPECT_EQ(quote_identifier("1abc"), "\"1abc\"");
  EXPECT_EQ(quote_identifier("$x"), "\"$x\"");
  EXPECT_EQ(quote_identifier("a b"), "\"a b\"");
  EXPECT_EQ(quote_identifier("a.b"), "\"a.b\"");
  EXPECT_EQ(quote_identifier("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(quote_identifier("zürich"), "\"zürich\"");
  EXPECT_EQ(quote_identifier(""), "\"\"");
  EXPECT_EQ(to_string(QualifiedName{"public", "users"}), "public.users");
  EXPECT_EQ(to_string(QualifiedName{"Mixed", "CaseTable"}), "\"Mixed\".\"CaseTable\"");
  EXPECT_EQ(to_string(QualifiedName{"", "users"}), "users");
}

TEST(ResolveTest, QualifiedPolicyTables) {
  auto p = example();
  auto r = p->resolve("", "app", "users", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  ASSERT_NE(r->table, nullptr);
  EXPECT_EQ(r->table->scope, Scope::kTenant);
  EXPECT_EQ(r->table->tenant_column, "tenant_id");
  EXPECT_EQ(r->name, (QualifiedName{"app", "users"}));

  r = p->resolve("", "public", "users", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->table->scope, Scope::kShared);

  r = p->resolve("", "Mixed", "CaseTable", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->table->scope, Scope::kOwner);
  EXPECT_EQ(r->table->owner_column, "owner_id");
  EXPECT_TRUE(r->table->tenant_column.empty());

  // Case matters: the parser has already folded unquoted names.
  r = p->resolve("", "mixed", "casetable", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kDefault);
}

TEST(ResolveTest, UnlistedQualifiedIsDefault) {
  auto r = example()->resolve("", "app", "orders", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kDefault);
  EXPECT_EQ(r->table, nullptr);
  EXPECT_EQ(r->name, (QualifiedName{"app", "orders"}));
}

TEST(ResolveTest, UnqualifiedFollowsSearchPath) {
  auto p = example();
  auto r = p->resolve("", "", "users", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->name, (QualifiedName{"app", "users"}));  // first schema wins
  EXPECT_EQ(r->table->scope, Scope::kTenant);

  r = p->resolve("", "", "records", "appdb");  // only in the second schema
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->name, (QualifiedName{"public", "records"}));
  EXPECT_EQ(r->table->owner_column, "created_by");
  EXPECT_EQ(r->table->tenant_column, "tenant_id");

  r = p->resolve("", "", "orders", "appdb");  // unlisted: first schema, default
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kDefault);
  EXPECT_EQ(r->name, (QualifiedName{"app", "orders"}));
}

TEST(ResolveTest, ThreePartNames) {
  auto p = example();
  auto r = p->resolve("appdb", "public", "records", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->name, (QualifiedName{"public", "records"}));
  EXPECT_FALSE(p->resolve("otherdb", "public", "records", "appdb"));
  EXPECT_FALSE(p->resolve("otherdb", "pg_catalog", "pg_class", "appdb"));
  EXPECT_FALSE(p->resolve("Appdb", "public", "records", "appdb"));
  EXPECT_FALSE(p->resolve("appdb", "public", "records", ""));
  EXPECT_FALSE(p->resolve("", "public", "", "appdb"));
}

TEST(ResolveTest, CatalogsReadable) {
  auto p = example();
  for (auto [schema, name] : std::initializer_list<std::pair<const char*, const char*>>{
           {"pg_catalog", "pg_class"},
           {"pg_catalog", "pg_type"},
           {"pg_catalog", "pg_some_future_view"},
           {"information_schema", "tables"},
           {"information_schema", "columns"},
           {"", "pg_class"},
           {"", "pg_namespace"},
           {"", "pg_settings"},
           {"", "pg_stat_user_tables"}}) {
    auto r = p->resolve("", schema, name, "appdb");
    ASSERT_TRUE(r) << schema << "." << name;
    EXPECT_EQ(r->kind, Kind::kCatalog) << schema << "." << name;
    EXPECT_EQ(r->name.schema, *schema ? schema : "pg_catalog");
    EXPECT_EQ(r->name.name, name);
  }
}

TEST(ResolveTest, DeniedCatalogs) {
  auto p = example();
  for (auto [schema, name] : std::initializer_list<std::pair<const char*, const char*>>{
           {"pg_catalog", "pg_statistic"},
           {"pg_catalog", "pg_statistic_ext_data"},
           {"pg_catalog", "pg_stats"},
           {"pg_catalog", "pg_stats_ext_exprs"},
           {"pg_catalog", "pg_stat_activity"},
           {"pg_catalog", "pg_stat_statements"},
           {"pg_catalog", "pg_authid"},
           {"pg_catalog", "pg_shadow"},
           {"pg_catalog", "pg_user_mapping"},
           {"pg_catalog", "pg_user_mappings"},
           {"pg_catalog", "pg_largeobject"},
           {"pg_catalog", "pg_stat_wal_receiver"},
           {"information_schema", "user_mapping_options"},
           {"public", "pg_stat_statements"},  // the extension lives in a user schema
           {"crdb_internal", "node_statement_statistics"},
           {"crdb_internal", "cluster_queries"},
           {"system", "users"},
           {"", "pg_stats"},
           {"", "pg_statistic"},
           {"", "pg_stat_activity"},
           {"", "pg_stat_statements_info"},
           {"", "pg_authid"}}) {
    auto r = p->resolve("", schema, name, "appdb");
    ASSERT_TRUE(r) << schema << "." << name;
    EXPECT_EQ(r->kind, Kind::kDeniedCatalog) << schema << "." << name;
  }
  // information_schema.tables is fine, a user table called user_mappings too.
  EXPECT_EQ(p->resolve("", "public", "user_mappings", "appdb")->kind, Kind::kDefault);
}

TEST(ResolveTest, ListedTableShadowingPgPrefixIsScoped) {
  auto p = example();
  // A listed user table whose name starts with pg_ is scoped, never read as
  // a catalog relation.
  auto r = p->resolve("", "", "pg_data", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kTable);
  EXPECT_EQ(r->name, (QualifiedName{"public", "pg_data"}));
  // An unlisted pg_ name that is not a PostgreSQL catalog follows default_action.
  r = p->resolve("", "", "pg_unlisted", "appdb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Kind::kDefault);
  EXPECT_EQ(r->name, (QualifiedName{"app", "pg_unlisted"}));
}

TEST(ResolveTest, ExtraCatalogDenies) {
  auto p = parse_policy(R"(
[catalogs]
deny = ["pg_locks", "information_schema.role_*", "public.audit*"]
)",
                        "c.toml");
  EXPECT_EQ(p->resolve("", "pg_catalog", "pg_locks", "db")->kind, Kind::kDeniedCatalog);
  EXPECT_EQ(p->resolve("", "", "pg_locks", "db")->kind, Kind::kDeniedCatalog);
  EXPECT_EQ(p->resolve("", "information_schema", "role_table_grants", "db")->kind,
            Kind::kDeniedCatalog);
  EXPECT_EQ(p->resolve("", "information_schema", "tables", "db")->kind, Kind::kCatalog);
  EXPECT_EQ(p->resolve("", "public", "audit_log", "db")->kind, Kind::kDeniedCatalog);
  EXPECT_EQ(p->resolve("", "", "audit_log", "db")->kind, Kind::kDeniedCatalog);
  EXPECT_EQ(p->resolve("", "other", "audit_log", "db")->kind, Kind::kDefault);
  EXPECT_TRUE(p->catalog_denied("pg_catalog", "pg_locks"));
  EXPECT_TRUE(p->catalog_denied("pg_catalog", "PG_STATS"));
  EXPECT_FALSE(p->catalog_denied("pg_catalog", "pg_class"));
}

TEST(ResolveTest, DefaultConstructedPolicyStillDeniesBuiltins) {
  Policy p;
  EXPECT_EQ(p.resolve("", "pg_catalog", "pg_statistic", "db")->kind, Kind::kDeniedCatalog);
  EXPECT_EQ(p.resolve("", "", "t", "db")->name, (QualifiedName{"public", "t"}));
  EXPECT_TRUE(p.function_denied("", "set_config"));
}

TEST(FunctionTest, BuiltinDenyList) {
  auto p = example();
  for (auto [schema, name] : std::initializer_list<std::pair<const char*, const char*>>{
           {"", "set_config"},
           {"pg_catalog", "set_config"},
           {"", "SET_CONFIG"},
           {"PG_CATALOG", "Set_Config"},
           {"", "pg_read_file"},
           {"", "pg_read_binary_file"},
           {"", "pg_ls_dir"},
           {"", "pg_ls_waldir"},
           {"", "pg_stat_file"},
           {"", "lo_import"},
           {"", "lo_export"},
           {"", "lo_get"},
           {"", "lo_open"},
           {"", "loread"},
           {"", "lowrite"},
           {"", "dblink"},
           {"public", "dblink_exec"},  // any schema: extensions install anywhere
           {"", "query_to_xml"},
           {"", "query_to_xmlschema"},
           {"", "query_to_xml_and_xmlschema"},
           {"", "table_to_xml"},
           {"", "cursor_to_xml"},
           {"", "schema_to_xml_and_xmlschema"},
           {"", "database_to_xml"},
           {"", "pg_terminate_backend"},
           {"", "pg_cancel_backend"},
           {"", "pg_reload_conf"},
           {"", "pg_rotate_logfile"},
           {"", "pg_promote"},
           {"", "pg_stat_get_activity"},
           {"", "pg_stat_get_backend_activity"},
           {"", "pg_get_backend_memory_contexts"},
           {"", "pg_file_write"},
           {"", "pg_notify"},
           {"", "pg_logical_emit_message"},
           {"", "ts_stat"},
           {"crdb_internal", "force_error"},
           {"crdb_internal", "anything"},
           {"CRDB_INTERNAL", "x"}}) {
    EXPECT_TRUE(p->function_denied(schema, name)) << schema << "." << name;
  }
  for (auto [schema, name] : std::initializer_list<std::pair<const char*, const char*>>{
           {"", "lower"},
           {"pg_catalog", "lower"},
           {"", "now"},
           {"", "current_setting"},
           {"", "pg_sleep"},  // not built in: the example policy adds it
           {"", "pg_advisory_lock"},
           {"", "txid_current"},
           {"", "xpath"},
           {"", "nextval"},
           {"", "pg_get_viewdef"},
           {"", "lower_bound"},
           {"", "setseed"}}) {
    EXPECT_FALSE(p->function_denied(schema, name)) << schema << "." << name;
  }
}

TEST(FunctionTest, FileDenyPatterns) {
  auto p = parse_policy(R"(
search_path = ["app"]
[functions]
deny = ["pg_sleep", "Util.Danger*", "pg_catalog.md5", "other.f"]
)",
                        "f.toml");
  EXPECT_TRUE(p->function_denied("", "pg_sleep"));
  EXPECT_TRUE(p->function_denied("pg_catalog", "pg_sleep"));
  EXPECT_TRUE(p->function_denied("anyschema", "pg_sleep"));
  EXPECT_TRUE(p->function_denied("util", "danger"));
  EXPECT_TRUE(p->function_denied("util", "dangerous_thing"));
  EXPECT_FALSE(p->function_denied("util", "safe"));
  EXPECT_FALSE(p->function_denied("app", "danger"));
  EXPECT_FALSE(p->function_denied("", "danger"));  // util is not on the search_path
  EXPECT_TRUE(p->function_denied("pg_catalog", "md5"));
  EXPECT_TRUE(p->function_denied("", "md5"));  // pg_catalog is searched implicitly
  EXPECT_FALSE(p->function_denied("app", "md5"));
  EXPECT_FALSE(p->function_denied("", "f"));
  EXPECT_TRUE(p->function_denied("other", "f"));
  EXPECT_TRUE(p->denied_functions.contains("util.danger*"));
  EXPECT_TRUE(p->denied_functions.contains("set_config"));  // built-ins are listed too

  auto q = parse_policy("search_path = [\"app\"]\n[functions]\ndeny = [\"app.f\"]\n", "g.toml");
  EXPECT_TRUE(q->function_denied("", "f"));  // app is on the search_path
  EXPECT_TRUE(q->function_denied("app", "f"));
  EXPECT_FALSE(q->function_denied("x", "f"));
}

TEST(FunctionTest, AllowListMode) {
  auto p = parse_policy(R"(
[functions]
mode = "allow_list"
allow = ["lower", "count", "pg_catalog.now", "app.my_fn", "json_*"]
)",
                        "a.toml");
  EXPECT_EQ(p->function_mode, FunctionMode::kAllowList);
  EXPECT_FALSE(p->function_denied("", "lower"));
  EXPECT_FALSE(p->function_denied("pg_catalog", "lower"));
  EXPECT_FALSE(p->function_denied("", "LOWER"));
  EXPECT_TRUE(p->function_denied("evil", "lower"));
  EXPECT_FALSE(p->function_denied("", "now"));
  EXPECT_FALSE(p->function_denied("pg_catalog", "now"));
  EXPECT_FALSE(p->function_denied("app", "my_fn"));
  EXPECT_TRUE(p->function_denied("", "my_fn"));
  EXPECT_FALSE(p->function_denied("", "json_build_object"));
  EXPECT_TRUE(p->function_denied("", "upper"));
  EXPECT_TRUE(p->function_denied("", "set_config"));
  EXPECT_TRUE(p->function_denied("crdb_internal", "x"));

  auto q = parse_policy("[functions]\nmode = \"allow_list\"\nallow = [\"lo_*\"]\n", "b.toml");
  EXPECT_TRUE(q->function_denied("", "lo_import"));  // built-in deny still applies
}

}  // namespace
}  // namespace tenantgate::policy
