#include "policy/policy.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

namespace tenantgate::policy {

namespace {

// Functions no tenant-scoped caller may use: they read outside the statement
// (files, other sessions, query text run by the server itself), change session
// or server state, or move data through side channels. Patterns are lower
// case; a trailing '*' is a prefix match; no schema means any schema, so they
// also catch extensions installed in app schemas (dblink, adminpack). The
// pg_catalog built-ins are judged one by one in builtin_functions.tsv (which
// denies pg_sleep, pg_advisory_*, setval, ... as well).
constexpr std::string_view kBuiltinDeniedFunctions[] = {
    // session and server state
    "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_rotate_logfile*", "pg_promote", "pg_switch_wal",
    "pg_create_*",  // restore points, replication slots
    "pg_drop_replication_slot",
    "pg_copy_*",  // replication slot copies
    "pg_replication_origin_*", "pg_logical_slot_*", "pg_logical_emit_message", "pg_backup_*",
    "pg_start_backup", "pg_stop_backup", "pg_wal_replay_*", "pg_stat_reset*",
    "pg_import_system_collations", "pg_notify", "pg_log_backend_memory_contexts",
    "pg_get_backend_memory_contexts",
    "setval",  // moves a sequence every tenant's inserts share
    // server files
    "pg_read_*",  // pg_read_file, pg_read_binary_file
    "pg_ls_*", "pg_stat_file",
    "pg_file_*",  // adminpack
    "pg_logdir_ls", "pg_current_logfile", "pg_show_all_file_settings", "pg_hba_file_rules",
    "pg_ident_file_mappings",
    // large objects: unscoped storage shared by every tenant
    "lo_*", "loread", "lowrite",
    // other sessions, statistics and query text
    "pg_stat_get_*", "pg_stat_statements*",
    // functions that run SQL text the rewriter never sees
    "dblink*",
    "query_to_xml*",  // also query_to_xmlschema, query_to_xml_and_xmlschema
    "table_to_xml*", "cursor_to_xml*", "schema_to_xml*", "database_to_xml*",
    "ts_stat",          // ts_stat('SELECT ...')
    "ts_rewrite",       // ts_rewrite(query, 'SELECT ...')
    "crdb_internal.*",  // CockroachDB internals: cluster-wide state and data
};

// PostgreSQL 15's built-in functions, one row per name (builtin_functions.tsv
// through policy/CMakeLists.txt). Looked up by binary search.
constexpr BuiltinFunction kBuiltinFunctions[] = {
#include "builtin_functions.inc"
};
static_assert(std::is_sorted(std::begin(kBuiltinFunctions), std::end(kBuiltinFunctions),
                             [](const BuiltinFunction& a, const BuiltinFunction& b) {
                               return std::pair(a.schema, a.name) < std::pair(b.schema, b.name);
                             }),
              "builtin_functions.tsv must be sorted by (schema, name)");

// Relations that may never be read, whatever the policy says. No schema means
// any schema: extensions such as pg_stat_statements install their views in a
// user schema, and over-refusing a user table with such a name is harmless.
constexpr std::string_view kBuiltinDeniedRelations[] = {
    "pg_statistic",           // sampled column values of every row
    "pg_statistic_ext_data",  // extended statistics' sampled values (pg_statistic_ext,
                              // the definitions that psql's \d reads, stays readable)
    "pg_stats*",              // most common values and histograms
    "pg_stat_statements*",    // query text (with constants) of every session
    // Every pg_stat_* and pg_statio_* view: other sessions' query text,
    // connection strings and certificates, and every tenant's row counts and
    // write activity (n_live_tup, n_tup_upd, ...).
    "pg_stat_*",
    "pg_statio_*",
    "pg_backend_memory_contexts",
    "pg_subscription",  // subconninfo holds connection strings
    "pg_authid",        // password hashes
    "pg_shadow",
    "pg_user_mapping*",  // foreign-server credentials
    "pg_largeobject*",   // large object contents, not tenant-scoped
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_file_settings",
    "information_schema.user_mapping*",
};

// PostgreSQL 15 pg_catalog tables and system views (postgres.bki and
// system_views.sql). PostgreSQL searches pg_catalog before the search_path,
// so an unqualified one of these names is the catalog relation.
constexpr std::string_view kPgCatalogRelations[] = {
    "pg_aggregate",
    "pg_am",
    "pg_amop",
    "pg_amproc",
    "pg_attrdef",
    "pg_attribute",
    "pg_auth_members",
    "pg_authid",
    "pg_available_extension_versions",
    "pg_available_extensions",
    "pg_backend_memory_contexts",
    "pg_cast",
    "pg_class",
    "pg_collation",
    "pg_config",
    "pg_constraint",
    "pg_conversion",
    "pg_cursors",
    "pg_database",
    "pg_db_role_setting",
    "pg_default_acl",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_event_trigger",
    "pg_extension",
    "pg_file_settings",
    "pg_foreign_data_wrapper",
    "pg_foreign_server",
    "pg_foreign_table",
    "pg_group",
    "pg_hba_file_rules",
    "pg_ident_file_mappings",
    "pg_index",
    "pg_indexes",
    "pg_inherits",
    "pg_init_privs",
    "pg_language",
    "pg_largeobject",
    "pg_largeobject_metadata",
    "pg_locks",
    "pg_matviews",
    "pg_namespace",
    "pg_opclass",
    "pg_operator",
    "pg_opfamily",
    "pg_parameter_acl",
    "pg_partitioned_table",
    "pg_policies",
    "pg_policy",
    "pg_prepared_statements",
    "pg_prepared_xacts",
    "pg_proc",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_publication_tables",
    "pg_range",
    "pg_replication_origin",
    "pg_replication_origin_status",
    "pg_replication_slots",
    "pg_rewrite",
    "pg_roles",
    "pg_rules",
    "pg_seclabel",
    "pg_seclabels",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_shadow",
    "pg_shdepend",
    "pg_shdescription",
    "pg_shmem_allocations",
    "pg_shseclabel",
    "pg_stat_activity",
    "pg_stat_all_indexes",
    "pg_stat_all_tables",
    "pg_stat_archiver",
    "pg_stat_bgwriter",
    "pg_stat_database",
    "pg_stat_database_conflicts",
    "pg_stat_gssapi",
    "pg_stat_progress_analyze",
    "pg_stat_progress_basebackup",
    "pg_stat_progress_cluster",
    "pg_stat_progress_copy",
    "pg_stat_progress_create_index",
    "pg_stat_progress_vacuum",
    "pg_stat_recovery_prefetch",
    "pg_stat_replication",
    "pg_stat_replication_slots",
    "pg_stat_slru",
    "pg_stat_ssl",
    "pg_stat_subscription",
    "pg_stat_subscription_stats",
    "pg_stat_sys_indexes",
    "pg_stat_sys_tables",
    "pg_stat_user_functions",
    "pg_stat_user_indexes",
    "pg_stat_user_tables",
    "pg_stat_wal",
    "pg_stat_wal_receiver",
    "pg_stat_xact_all_tables",
    "pg_stat_xact_sys_tables",
    "pg_stat_xact_user_functions",
    "pg_stat_xact_user_tables",
    "pg_statio_all_indexes",
    "pg_statio_all_sequences",
    "pg_statio_all_tables",
    "pg_statio_sys_indexes",
    "pg_statio_sys_sequences",
    "pg_statio_sys_tables",
    "pg_statio_user_indexes",
    "pg_statio_user_sequences",
    "pg_statio_user_tables",
    "pg_statistic",
    "pg_statistic_ext",
    "pg_statistic_ext_data",
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_subscription",
    "pg_subscription_rel",
    "pg_tables",
    "pg_tablespace",
    "pg_timezone_abbrevs",
    "pg_timezone_names",
    "pg_transform",
    "pg_trigger",
    "pg_ts_config",
    "pg_ts_config_map",
    "pg_ts_dict",
    "pg_ts_parser",
    "pg_ts_template",
    "pg_type",
    "pg_user",
    "pg_user_mapping",
    "pg_user_mappings",
    "pg_views",
};

constexpr std::string_view kPgCatalog = "pg_catalog";
constexpr std::string_view kInformationSchema = "information_schema";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct Pattern {
  std::string_view schema;  // empty: any schema
  std::string_view name;    // may end in '*'
};

constexpr Pattern split_pattern(std::string_view pattern) {
  const size_t dot = pattern.rfind('.');
  if (dot == std::string_view::npos) return {{}, pattern};
  return {pattern.substr(0, dot), pattern.substr(dot + 1)};
}

constexpr Pattern split_pattern(const Pattern& pattern) { return pattern; }

// The built-in lists, split once: they are consulted for every relation and
// function a statement names.
template <std::size_t N>
constexpr std::array<Pattern, N> split_patterns(const std::string_view (&patterns)[N]) {
  std::array<Pattern, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = split_pattern(patterns[i]);
  return out;
}
constexpr auto kBuiltinDeniedFunctionPatterns = split_patterns(kBuiltinDeniedFunctions);
constexpr auto kBuiltinDeniedRelationPatterns = split_patterns(kBuiltinDeniedRelations);

bool name_matches(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') {
    return name.starts_with(pattern.substr(0, pattern.size() - 1));
  }
  return pattern == name;
}

// Whether any of `patterns` matches the relation or function schema.name, with
// `schema_ok` deciding whether a pattern's schema applies to the reference.
template <typename Patterns, typename SchemaOk>
bool any_matches(const Patterns& patterns, std::string_view name, SchemaOk schema_ok) {
  for (const auto& p : patterns) {
    const Pattern pat = split_pattern(p);
    if (name_matches(pat.name, name) && schema_ok(pat.schema)) return true;
  }
  return false;
}

bool is_catalog_relation(std::string_view name) {
  return std::find(std::begin(kPgCatalogRelations), std::end(kPgCatalogRelations), name) !=
         std::end(kPgCatalogRelations);
}

}  // namespace

std::span<const std::string_view> builtin_denied_functions() { return kBuiltinDeniedFunctions; }

std::span<const std::string_view> builtin_denied_relations() { return kBuiltinDeniedRelations; }

std::string_view scope_name(Scope scope) {
  switch (scope) {
    case Scope::kTenant:
      return "tenant";
    case Scope::kOwner:
      return "owner";
    case Scope::kTenantOwner:
      return "tenant_owner";
    case Scope::kShared:
      return "shared";
    case Scope::kDeny:
      return "deny";
    case Scope::kPolicies:
      return "policies";
  }
  return "unknown";
}

std::string_view policy_command_name(PolicyCommand command) {
  switch (command) {
    case PolicyCommand::kAll:
      return "all";
    case PolicyCommand::kSelect:
      return "select";
    case PolicyCommand::kInsert:
      return "insert";
    case PolicyCommand::kUpdate:
      return "update";
    case PolicyCommand::kDelete:
      return "delete";
  }
  return "unknown";
}

std::optional<Scope> parse_scope(std::string_view name) {
  for (Scope s :
       {Scope::kTenant, Scope::kOwner, Scope::kTenantOwner, Scope::kShared, Scope::kDeny}) {
    if (scope_name(s) == name) return s;
  }
  return std::nullopt;
}

std::string quote_identifier(std::string_view ident) {
  bool plain = !ident.empty() && ((ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_');
  for (char c : ident) {
    if (!plain) break;
    plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
  }
  if (plain) return std::string(ident);
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string to_string(const QualifiedName& name) {
  if (name.schema.empty()) return quote_identifier(name.name);
  return quote_identifier(name.schema) + "." + quote_identifier(name.name);
}

bool Policy::catalog_denied(std::string_view schema, std::string_view name) const {
  const std::string s = lower(schema);
  const std::string n = lower(name);
  auto schema_ok = [&](std::string_view ps) { return ps.empty() || ps == s; };
  return any_matches(kBuiltinDeniedRelationPatterns, n, schema_ok) ||
         any_matches(denied_catalog_relations, n, schema_ok);
}

std::optional<Resolution> Policy::resolve(std::string_view catalog, std::string_view schema,
                                          std::string_view name, std::string_view database) const {
  if (!catalog.empty() && catalog != database) return std::nullopt;
  if (name.empty()) return std::nullopt;

  Resolution r;
  if (!schema.empty()) {
    r.name = {std::string(schema), std::string(name)};
    if (schema == "crdb_internal" || schema == "system" || catalog_denied(schema, name)) {
      r.kind = Resolution::Kind::kDeniedCatalog;
    } else if (schema == kPgCatalog || schema == kInformationSchema) {
      r.kind = Resolution::Kind::kCatalog;
    } else if (auto it = tables.find(r.name); it != tables.end()) {
      r.kind = Resolution::Kind::kTable;
      r.table = &it->second;
    } else {
      r.kind = Resolution::Kind::kDefault;
    }
    return r;
  }

  // Unqualified. A denied name is denied whichever schema it would come from.
  bool denied = catalog_denied(kPgCatalog, name);
  for (const std::string& s : search_path) denied = denied || catalog_denied(s, name);
  if (denied) {
    r.kind = Resolution::Kind::kDeniedCatalog;
    r.name = {std::string(kPgCatalog), std::string(name)};
    return r;
  }
  for (const std::string& s : search_path) {
    QualifiedName q{s, std::string(name)};
    if (auto it = tables.find(q); it != tables.end()) {
      r.kind = Resolution::Kind::kTable;
      r.table = &it->second;
      r.name = std::move(q);
      return r;
    }
  }
  if (is_catalog_relation(name)) {
    r.kind = Resolution::Kind::kCatalog;
    r.name = {std::string(kPgCatalog), std::string(name)};
    return r;
  }
  r.kind = Resolution::Kind::kDefault;
  r.name = {search_path.empty() ? std::string("public") : search_path.front(), std::string(name)};
  return r;
}

FunctionRule Policy::function_rule(std::string_view schema, std::string_view name) const {
  const std::string s = lower(schema);
  const std::string n = lower(name);
  if (s == "crdb_internal") return FunctionRule::kDenied;

  auto on_search_path = [&](std::string_view ps) {
    return ps == kPgCatalog ||
           std::find(search_path.begin(), search_path.end(), ps) != search_path.end();
  };
  auto deny_schema_ok = [&](std::string_view ps) {
    if (ps.empty()) return true;
    if (s.empty()) return on_search_path(ps);
    return ps == s;
  };
  if (any_matches(kBuiltinDeniedFunctionPatterns, n, deny_schema_ok) ||
      any_matches(denied_functions, n, deny_schema_ok)) {
    return FunctionRule::kDenied;
  }

  // PostgreSQL looks in pg_catalog first (namespace.c, recomputeNamespacePath
  // puts it ahead of the search_path unless the path names it later).
  const bool builtin_schema =
      schema.empty() || schema == kPgCatalog || schema == kInformationSchema;
  if (builtin_schema) {
    const BuiltinFunction* b = find_builtin_function(schema.empty() ? kPgCatalog : schema, name);
    if (b != nullptr) {
      if (!b->allowed) return FunctionRule::kDenied;
      if (allowed_functions.empty()) return FunctionRule::kAllowed;
      auto allow_schema_ok = [&](std::string_view ps) {
        return ps.empty() || ps == (s.empty() ? kPgCatalog : std::string_view(s));
      };
      return any_matches(allowed_functions, n, allow_schema_ok) ? FunctionRule::kAllowed
                                                                : FunctionRule::kDenied;
    }
  }
  return app_function_named(schema, name) ? FunctionRule::kAllowed : FunctionRule::kNotListed;
}

bool Policy::function_denied(std::string_view schema, std::string_view name) const {
  switch (function_rule(schema, name)) {
    case FunctionRule::kAllowed:
      return false;
    case FunctionRule::kDenied:
      return true;
    case FunctionRule::kNotListed:
      return function_mode == FunctionMode::kAllowList;
  }
  return true;
}

bool Policy::app_function_named(std::string_view schema, std::string_view name) const {
  if (!schema.empty()) {
    return app_functions.contains(QualifiedName{std::string(schema), std::string(name)});
  }
  for (const std::string& s : search_path) {
    if (app_functions.contains(QualifiedName{s, std::string(name)})) return true;
  }
  return false;
}

std::span<const BuiltinFunction> builtin_functions() { return kBuiltinFunctions; }

const BuiltinFunction* find_builtin_function(std::string_view schema, std::string_view name) {
  auto key = [](const BuiltinFunction& f) { return std::pair(f.schema, f.name); };
  const auto* it = std::lower_bound(
      std::begin(kBuiltinFunctions), std::end(kBuiltinFunctions), std::pair(schema, name),
      [&](const BuiltinFunction& f, const auto& k) { return key(f) < k; });
  if (it == std::end(kBuiltinFunctions) || key(*it) != std::pair(schema, name)) return nullptr;
  return it;
}

std::string_view function_reads_name(FunctionReads reads) {
  switch (reads) {
    case FunctionReads::kNone:
      return "none";
    case FunctionReads::kShared:
      return "shared";
    case FunctionReads::kRls:
      return "rls";
  }
  return "unknown";
}

}  // namespace tenantgate::policy
