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
           {"", "pg_settings"}}) {
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
           {"", "pg_stat_user_tables"},
           {"pg_catalog", "pg_statio_user_tables"},
           {"", "pg_backend_memory_contexts"},
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
           {"", "txid_current"},
           {"", "xpath"},
           {"", "nextval"},
           {"", "currval"},
           {"", "lastval"},
           {"", "pg_get_viewdef"},
           {"information_schema", "_pg_expandarray"}}) {
    EXPECT_FALSE(p->function_denied(schema, name)) << schema << "." << name;
  }
  // Denied by builtin_functions.tsv, not by a pattern.
  for (const char* name : {"pg_sleep", "pg_advisory_lock", "pg_try_advisory_xact_lock", "setseed",
                           "setval", "pg_relation_size", "pg_blocking_pids", "currtid2",
                           "gin_clean_pending_list", "pg_mcv_list_items", "pg_cursor"}) {
    EXPECT_TRUE(p->function_denied("", name)) << name;
    EXPECT_TRUE(p->function_denied("pg_catalog", name)) << name;
    EXPECT_EQ(p->function_rule("", name), FunctionRule::kDenied) << name;
  }
  // Neither a built-in nor named: refused in allow-list mode (the default).
  EXPECT_EQ(p->function_rule("", "lower_bound"), FunctionRule::kNotListed);
  EXPECT_TRUE(p->function_denied("", "lower_bound"));
  EXPECT_TRUE(p->function_denied("public", "records_of"));
  EXPECT_TRUE(p->function_denied("pg_catalog", "no_such_builtin"));
  // A built-in name qualified with another schema is that schema's function.
  EXPECT_EQ(p->function_rule("public", "lower"), FunctionRule::kNotListed);
}

TEST(FunctionTest, BuiltinTableIsSortedAndComplete) {
  const auto all = builtin_functions();
  ASSERT_GT(all.size(), 2500u);
  std::size_t allowed = 0;
  for (const BuiltinFunction& f : all) {
    EXPECT_TRUE(f.schema == "pg_catalog" || f.schema == "information_schema") << f.name;
    EXPECT_FALSE(f.reason.empty()) << f.name;
    EXPECT_EQ(find_builtin_function(f.schema, f.name), &f) << f.name;
    allowed += f.allowed ? 1 : 0;
  }
  EXPECT_GT(allowed, 2000u);
  EXPECT_EQ(find_builtin_function("pg_catalog", "no_such_function"), nullptr);
  EXPECT_EQ(find_builtin_function("public", "lower"), nullptr);
  // No built-in pattern denies a name the table allows (the table says
  // what happens to each built-in).
  Policy p;
  for (const BuiltinFunction& f : all) {
    const FunctionRule expected = f.allowed ? FunctionRule::kAllowed : FunctionRule::kDenied;
    EXPECT_EQ(p.function_rule(f.schema, f.name), expected) << f.schema << "." << f.name;
  }
  for (const char* name :
       {"ts_stat", "ts_rewrite", "query_to_xml", "cursor_to_xml", "database_to_xml", "table_to_xml",
        "schema_to_xml", "pg_read_file", "lo_import", "pg_ls_dir", "pg_stat_get_live_tuples",
        "pg_terminate_backend", "pg_cancel_backend", "set_config"}) {
    const BuiltinFunction* f = find_builtin_function("pg_catalog", name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_FALSE(f->allowed) << name;
  }
}

TEST(FunctionTest, AppFunctionsNamedByThePolicy) {
  auto p = parse_policy(R"(
search_path = ["app", "public"]
[functions."public.slugify"]
reads = "none"
[functions.count_mine]
reads = "rls"
reason = "SECURITY INVOKER over the RLS view public.my_records"
)",
                        "n.toml");
  ASSERT_EQ(p->app_functions.size(), 2u);
  const AppFunctionPolicy& f = p->app_functions.at({"app", "count_mine"});
  EXPECT_EQ(f.reads, FunctionReads::kRls);
  EXPECT_EQ(f.line, 5);
  EXPECT_EQ(p->function_rule("public", "slugify"), FunctionRule::kAllowed);
  EXPECT_EQ(p->function_rule("", "slugify"), FunctionRule::kAllowed);  // public is on the path
  EXPECT_EQ(p->function_rule("app", "slugify"), FunctionRule::kNotListed);
  EXPECT_EQ(p->function_rule("", "count_mine"), FunctionRule::kAllowed);
  EXPECT_TRUE(p->function_denied("other", "count_mine"));
  EXPECT_TRUE(p->app_function_named("public", "slugify"));
  EXPECT_FALSE(p->app_function_named("public", "SLUGIFY"));
}

TEST(FunctionTest, DenyListModeIsAnOptIn) {
  auto p = parse_policy("[functions]\nmode = \"deny_list\"\n", "d.toml");
  EXPECT_EQ(p->function_mode, FunctionMode::kDenyList);
  EXPECT_FALSE(p->function_denied("public", "records_of"));
  EXPECT_FALSE(p->function_denied("", "anything"));
  EXPECT_FALSE(p->function_denied("", "lower"));
  // The built-in deny entries apply in both modes.
  EXPECT_TRUE(p->function_denied("", "ts_stat"));
  EXPECT_TRUE(p->function_denied("", "pg_sleep"));
  EXPECT_TRUE(p->function_denied("", "setval"));
  EXPECT_TRUE(p->function_denied("any", "dblink"));
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
  EXPECT_EQ(p->function_rule("util", "safe"), FunctionRule::kNotListed);
  EXPECT_EQ(p->function_rule("app", "danger"), FunctionRule::kNotListed);
  EXPECT_EQ(p->function_rule("", "danger"), FunctionRule::kNotListed);  // util: not on the path
  EXPECT_TRUE(p->function_denied("pg_catalog", "md5"));
  EXPECT_TRUE(p->function_denied("", "md5"));  // pg_catalog is searched implicitly
  EXPECT_EQ(p->function_rule("app", "md5"), FunctionRule::kNotListed);
  EXPECT_EQ(p->function_rule("", "f"), FunctionRule::kNotListed);
  EXPECT_EQ(p->function_rule("other", "f"), FunctionRule::kDenied);
  EXPECT_TRUE(p->denied_functions.contains("util.danger*"));
  EXPECT_TRUE(p->denied_functions.contains("set_config"));  // built-ins are listed too

  auto q = parse_policy("search_path = [\"app\"]\n[functions]\ndeny = [\"app.f\"]\n", "g.toml");
  EXPECT_EQ(q->function_rule("", "f"), FunctionRule::kDenied);  // app is on the search_path
  EXPECT_EQ(q->function_rule("app", "f"), FunctionRule::kDenied);
  EXPECT_EQ(q->function_rule("x", "f"), FunctionRule::kNotListed);
}

TEST(FunctionTest, AllowListMode) {
  auto p = parse_policy(R"(
[functions]
mode = "allow_list"
allow = ["lower", "count", "pg_catalog.now", "json_*"]
[functions."app.my_fn"]
reads = "none"
)",
                        "a.toml");
  EXPECT_EQ(p->function_mode, FunctionMode::kAllowList);
  EXPECT_FALSE(p->function_denied("", "lower"));
  EXPECT_FALSE(p->function_denied("pg_catalog", "lower"));
  EXPECT_TRUE(p->function_denied("", "LOWER"));  // quoted "LOWER": no such built-in
  EXPECT_TRUE(p->function_denied("evil", "lower"));
  EXPECT_FALSE(p->function_denied("", "now"));
  EXPECT_FALSE(p->function_denied("pg_catalog", "now"));
  EXPECT_FALSE(p->function_denied("app", "my_fn"));
  EXPECT_TRUE(p->function_denied("", "my_fn"));  // app is not on the search_path
  EXPECT_FALSE(p->function_denied("", "json_build_object"));
  EXPECT_TRUE(p->function_denied("", "upper"));
  EXPECT_TRUE(p->function_denied("", "set_config"));
  EXPECT_TRUE(p->function_denied("crdb_internal", "x"));

  auto q = parse_policy("[functions]\nmode = \"allow_list\"\nallow = [\"lo_*\"]\n", "b.toml");
  EXPECT_TRUE(q->function_denied("", "lo_import"));  // built-in deny still applies
}

}  // namespace
}  // namespace tenantgate::policy
