// Statement dispatch and everything that is not a query: transaction control,
// SET/SHOW, cursors, prepared statements, COPY, and the statements that are
// refused outright for non-bypass callers.
#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "rewriter/session_settings.h"
#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {
namespace {

using pg_query::Node;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Read-only settings that are also fine to SHOW.
constexpr std::array<std::string_view, 13> kShowOnlySettings = {
    "server_version",
    "server_version_num",
    "server_encoding",
    "search_path",
    "integer_datetimes",
    "max_identifier_length",
    "lc_collate",
    "lc_ctype",
    "is_superuser",
    "session_authorization",
    "all",
    "default_transaction_use_follower_reads",
    "transaction_status",
};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// The text of a SET argument that is a plain constant ("on", "UTF8", 3).
std::optional<std::string> constant_text(const Node& n) {
  if (!n.has_a_const()) return std::nullopt;
  const pg_query::A_Const& c = n.a_const();
  switch (c.val_case()) {
    case pg_query::A_Const::kSval:
      return c.sval().sval();
    case pg_query::A_Const::kIval:
      return std::to_string(c.ival().ival());
    case pg_query::A_Const::kBoolval:
      return c.boolval().boolval() ? "true" : "false";
    default:
      return std::nullopt;
  }
}

// Statements refused as a matter of policy (42501); other unknown statements
// are refused as unsupported (0A000).
const char* privileged_statement(Node::NodeCase c) {
  switch (c) {
    case Node::kTruncateStmt:
      return "TRUNCATE";
    case Node::kGrantStmt:
    case Node::kGrantRoleStmt:
      return "GRANT/REVOKE";
    case Node::kDoStmt:
      return "DO";
    case Node::kCreateFunctionStmt:
      return "CREATE FUNCTION/PROCEDURE";
    case Node::kCallStmt:
      return "CALL";
    case Node::kMergeStmt:
      return "MERGE";
    case Node::kCreateTableAsStmt:
      return "CREATE TABLE AS";
    case Node::kListenStmt:
      return "LISTEN";
    case Node::kNotifyStmt:
      return "NOTIFY";
    case Node::kUnlistenStmt:
      return "UNLISTEN";
    case Node::kAlterSystemStmt:
      return "ALTER SYSTEM";
    case Node::kLoadStmt:
      return "LOAD";
    case Node::kVacuumStmt:
      return "VACUUM/ANALYZE";
    case Node::kClusterStmt:
      return "CLUSTER";
    case Node::kReindexStmt:
      return "REINDEX";
    case Node::kCheckPointStmt:
      return "CHECKPOINT";
    case Node::kLockStmt:
      return "LOCK";
    case Node::kCommentStmt:
      return "COMMENT";
    case Node::kRefreshMatViewStmt:
      return "REFRESH MATERIALIZED VIEW";
    case Node::kSecLabelStmt:
      return "SECURITY LABEL";
    case Node::kReassignOwnedStmt:
      return "REASSIGN OWNED";
    case Node::kDropOwnedStmt:
      return "DROP OWNED";
    case Node::kConstraintsSetStmt:
      return "SET CONSTRAINTS";
    default:
      return nullptr;
  }
}

bool is_ddl(const std::string& type) {
  for (const char* prefix : {"Create", "Alter", "Drop", "Define", "Rename", "Import"}) {
    if (type.rfind(prefix, 0) == 0) return true;
  }
  return type == "IndexStmt" || type == "ViewStmt" || type == "RuleStmt" ||
         type == "CompositeTypeStmt" || type == "ReplicaIdentityStmt";
}

// `EXPLAIN (ANALYZE false)` / `(ANALYZE off)` / `(ANALYZE 0)`: anything else
// (no value, true, on, 1, or what PostgreSQL would reject) counts as on.
bool is_false_option(const pg_query::DefElem& option) {
  if (!option.has_arg()) return false;
  const Node& arg = option.arg();
  if (arg.has_boolean()) return !arg.boolean().boolval();
  if (arg.has_string()) {
    const std::string& v = arg.string().sval();
    return v == "false" || v == "off" || v == "no";
  }
  if (arg.has_integer()) return arg.integer().ival() == 0;
  return false;
}

}  // namespace

std::optional<Refusal> StatementWalker::rewrite_statement(Node* stmt) {
  changed_ = false;
  text_editable_ = true;
  text_edits_.clear();
  refusal_.reset();
  cte_scopes_.clear();
  tainted_ctes_.clear();
  guard_levels_.clear();
  scoped_refs_ = 0;
  derived_select_ = false;
  unsafe_outputs_.clear();
  scoped_sublinks_.clear();
  wraps_.clear();
  depth_ = 0;
  pending_check_.reset();
  reshaped_write_.reset();
  cte_depth_ = 0;
  if (!walk_statement(stmt, true)) {
    if (!refusal_) refusal_ = Refusal{"0A000", "statement not supported"};
    return refusal_;
  }
  // Building a policy predicate may refuse without failing the walk.
  if (refusal_) return refusal_;
  return std::nullopt;
}

bool StatementWalker::walk_statement(Node* stmt, bool top_level) {
  switch (stmt->node_case()) {
    case Node::kSelectStmt:
      return walk_select(stmt->mutable_select_stmt());
    case Node::kInsertStmt:
    case Node::kUpdateStmt: {
      pending_check_.reset();
      const bool ok = stmt->has_insert_stmt() ? walk_insert(stmt->mutable_insert_stmt())
                                              : walk_update(stmt->mutable_update_stmt());
      if (!ok || !pending_check_) return ok;
      if (cte_depth_ > 0) {
        // PostgreSQL allows a data-modifying CTE only at the top level, and
        // the check needs one.
        pending_check_.reset();
        return refuse("0A000",
                      "INSERT or UPDATE of a table with row policies inside WITH is not "
                      "supported; run it as its own statement");
      }
      return add_write_check(stmt);
    }
    case Node::kDeleteStmt:
      return walk_delete(stmt->mutable_delete_stmt());
    default:
      break;
  }
  if (!top_level) {
    // Inside WITH, EXPLAIN, PREPARE, DECLARE or COPY only queries may stand.
    if (stmt->has_execute_stmt() || stmt->has_declare_cursor_stmt()) {
      // EXPLAIN EXECUTE p / EXPLAIN of a DECLARE: handled by the cases below.
    } else if (const char* what = privileged_statement(stmt->node_case())) {
      return refuse("42501", std::string("permission denied: ") + what + " is not allowed");
    } else {
      return refuse("0A000", "unsupported statement " + node_type_name(*stmt) + " here");
    }
  }
  switch (stmt->node_case()) {
    case Node::kExplainStmt: {
      auto* explain = stmt->mutable_explain_stmt();
      for (Node& option : *explain->mutable_options()) {
        if (!walk_node(&option)) return false;
        // ANALYZE reports how many rows each condition removed: the scope's
        // count of other tenants' rows ("Rows Removed by Filter").
        if (option.has_def_elem() && option.def_elem().defname() == "analyze" &&
            !is_false_option(option.def_elem())) {
          return refuse("42501",
                        "permission denied: EXPLAIN ANALYZE reports counts of rows outside the "
                        "caller's scope");
        }
        // Only PostgreSQL's own options: others are the backend's business
        // and may print what the plan knows of every row (CockroachDB's
        // EXPLAIN (OPT, VERBOSE | ENV) prints the table's histograms).
        static constexpr std::string_view kKnownOptions[] = {"analyze",  "verbose", "costs",
                                                             "settings", "buffers", "wal",
                                                             "timing",   "summary", "format"};
        const std::string& name = option.has_def_elem() ? option.def_elem().defname() : "";
        if (std::find(std::begin(kKnownOptions), std::end(kKnownOptions), name) ==
            std::end(kKnownOptions)) {
          return refuse("0A000", "EXPLAIN option \"" + name + "\" is not supported");
        }
      }
      return walk_statement(explain->mutable_query(), false);
    }
    case Node::kDeclareCursorStmt: {
      auto* declare = stmt->mutable_declare_cursor_stmt();
      if (!declare->query().has_select_stmt()) {
        return refuse("0A000", "unsupported cursor query");
      }
      return walk_select(declare->mutable_query()->mutable_select_stmt());
    }
    case Node::kPrepareStmt: {
      auto* prepare = stmt->mutable_prepare_stmt();
      for (Node& type : *prepare->mutable_argtypes()) {
        if (!walk_node(&type)) return false;
      }
      const std::size_t checks_before = param_checks_.size();
      if (!walk_statement(prepare->mutable_query(), false)) return false;
      if (param_checks_.size() != checks_before) {
        return refuse("0A000", "PREPARE of a statement whose parameter $" +
                                   std::to_string(param_checks_[checks_before].param_number) +
                                   " sets column " + param_checks_[checks_before].column +
                                   " of table " + param_checks_[checks_before].table +
                                   " is not supported (EXECUTE cannot be checked); use the "
                                   "extended protocol instead");
      }
      return true;
    }
    case Node::kExecuteStmt:
      for (Node& param : *stmt->mutable_execute_stmt()->mutable_params()) {
        if (!walk_node(&param)) return false;
      }
      return true;
    case Node::kDeallocateStmt:
    case Node::kFetchStmt:
    case Node::kClosePortalStmt:
    case Node::kDiscardStmt:
      return true;
    case Node::kTransactionStmt: {
      const auto& tx = stmt->transaction_stmt();
      switch (tx.kind()) {
        case pg_query::TRANS_STMT_PREPARE:
        case pg_query::TRANS_STMT_COMMIT_PREPARED:
        case pg_query::TRANS_STMT_ROLLBACK_PREPARED:
          return refuse("42501", "permission denied: two-phase commit is not allowed");
        default:
          break;
      }
      for (Node& option : *stmt->mutable_transaction_stmt()->mutable_options()) {
        if (!walk_node(&option)) return false;
      }
      return true;
    }
    case Node::kVariableSetStmt:
      return check_set(stmt->variable_set_stmt());
    case Node::kVariableShowStmt:
      return check_show(stmt->variable_show_stmt());
    case Node::kCopyStmt:
      return walk_copy(stmt);
    default:
      break;
  }
  if (const char* what = privileged_statement(stmt->node_case())) {
    return refuse("42501", std::string("permission denied: ") + what + " is not allowed");
  }
  const std::string type = node_type_name(*stmt);
  if (is_ddl(type)) {
    return refuse("42501", "permission denied: DDL (" + type + ") is not allowed");
  }
  return refuse("0A000", "statement " + type + " is not supported");
}

bool StatementWalker::check_set(const pg_query::VariableSetStmt& set) {
  const std::string& name = set.name();
  if (set.kind() == pg_query::VAR_RESET_ALL) {
    // Identity is not a server setting (tenantgate strips it from the startup
    // packet), so RESET ALL cannot change it.
    return true;
  }
  if (name.rfind("tenantgate.", 0) == 0) {
    return refuse("42501", "permission denied: the identity parameter " + name +
                               " cannot be changed inside a session");
  }
  if (name == "role" || name == "session_authorization") {
    return refuse("42501",
                  "permission denied: SET ROLE / SET SESSION AUTHORIZATION is not allowed");
  }
  if (!is_settable_setting(name)) {
    return refuse("42501", "permission denied: setting " + name + " cannot be changed");
  }
  if (name == "TRANSACTION" || name == "SESSION CHARACTERISTICS") {
    for (const Node& item : set.args()) {
      if (!item.has_def_elem()) return refuse("0A000", "unsupported transaction mode");
      const std::string& option = item.def_elem().defname();
      if (option != "transaction_isolation" && option != "transaction_read_only" &&
          option != "transaction_deferrable") {
        return refuse("42501", "permission denied: transaction option " + option);
      }
    }
    return true;
  }
  if (set.kind() != pg_query::VAR_SET_VALUE) {
    // RESET / SET ... TO DEFAULT / FROM CURRENT: fine except for the settings
    // whose value tenantgate relies on.
    if (name == "standard_conforming_strings" || name == "client_encoding") {
      return refuse("42501", "permission denied: " + name + " must stay as it is");
    }
    return true;
  }
  if (name == "standard_conforming_strings" || name == "client_encoding") {
    // The rewriter reads statements as the server does only with
    // standard_conforming_strings on and a client encoding that keeps quotes
    // and backslashes single bytes.
    if (set.args_size() != 1) return refuse("42501", "permission denied: " + name);
    const std::optional<std::string> value = constant_text(set.args(0));
    if (!value || !setting_value_allowed(name, *value)) {
      return refuse("42501", "permission denied: " + name + " may only be set to " +
                                 (name == "client_encoding" ? "UTF8" : "on"));
    }
  }
  if (name == "client_min_messages") {
    const std::optional<std::string> value =
        set.args_size() == 1 ? constant_text(set.args(0)) : std::nullopt;
    if (!value || !setting_value_allowed(name, *value)) {
      return refuse("42501",
                    "permission denied: client_min_messages may not be set to a DEBUG level");
    }
  }
  for (const Node& arg : set.args()) {
    if (!arg.has_a_const() && !arg.has_type_cast()) {
      return refuse("0A000", "unsupported value for setting " + name);
    }
  }
  return true;
}

namespace {

// The text of a COPY option's argument (String, Boolean or Integer node), or
// nullopt for anything else.
std::optional<std::string> copy_option_text(const pg_query::DefElem& option) {
  if (!option.has_arg()) return std::nullopt;
  const Node& arg = option.arg();
  if (arg.has_string()) return arg.string().sval();
  if (arg.has_boolean()) return arg.boolean().boolval() ? "true" : "false";
  if (arg.has_integer()) return std::to_string(arg.integer().ival());
  return std::nullopt;
}

}  // namespace

bool StatementWalker::walk_copy_from_scoped(pg_query::CopyStmt* copy, const Target& target) {
  const policy::TablePolicy& table = *target.resolution.table;
  if (copy->has_where_clause()) {
    return refuse("0A000",
                  "COPY FROM with WHERE into scoped table " + target.display + " is not supported");
  }
  if (copy->attlist_size() == 0) {
    return refuse("0A000", "COPY FROM into scoped table " + target.display +
                               " needs a column list, so that tenantgate can check each row");
  }
  CopyIn spec;
  spec.table = target.display;
  std::optional<std::string> delimiter, null_string, quote, escape;
  for (const Node& node : copy->options()) {
    const pg_query::DefElem& option = node.def_elem();
    const std::string& name = option.defname();
    const std::optional<std::string> value = copy_option_text(option);
    if (name == "format") {
      const std::string format = value ? lower(*value) : "";
      if (format == "binary") {
        return refuse("0A000", "binary COPY FROM into scoped table " + target.display +
                                   " is not supported; use text or CSV");
      }
      if (format != "text" && format != "csv") return refuse("0A000", "unsupported COPY format");
      spec.csv = format == "csv";
    } else if (name == "header") {
      const std::string v = value ? lower(*value) : "true";
      if (v == "true" || v == "on" || v == "1") {
        spec.header = true;
      } else if (v != "false" && v != "off" && v != "0") {
        return refuse("0A000", "unsupported COPY HEADER " + v);
      }
    } else if (name == "delimiter" || name == "null" || name == "quote" || name == "escape") {
      if (!value) return refuse("0A000", "unsupported COPY option " + name);
      (name == "delimiter" ? delimiter
       : name == "null"    ? null_string
       : name == "quote"   ? quote
                           : escape) = *value;
    } else if (name != "freeze") {
      // ENCODING would change how the server reads the rows tenantgate
      // checked; FORCE_* would change which values are NULL.
      return refuse(
          "0A000", "COPY option " + name + " is not supported into scoped table " + target.display);
    }
  }
  for (const auto* single : {&delimiter, &quote, &escape}) {
    if (*single && single->value().size() != 1) {
      return refuse("0A000", "COPY delimiter, quote and escape must be single bytes");
    }
  }
  spec.delimiter = delimiter ? (*delimiter)[0] : (spec.csv ? ',' : '\t');
  spec.null_string = null_string ? *null_string : (spec.csv ? "" : "\\N");
  spec.quote = quote ? (*quote)[0] : '"';
  spec.escape = escape ? (*escape)[0] : spec.quote;
  if (!spec.csv && (quote || escape)) return refuse("0A000", "COPY QUOTE and ESCAPE need CSV");

  spec.columns = static_cast<std::size_t>(copy->attlist_size());
  auto policy_column = [&](const std::string& column, IdentityField field) {
    for (int i = 0; i < copy->attlist_size(); ++i) {
      const Node& name = copy->attlist(i);
      if (name.has_string() && name.string().sval() == column) {
        spec.checks.push_back({static_cast<std::size_t>(i), field, column});
        return;
      }
    }
    copy->add_attlist()->mutable_string()->set_sval(column);
    spec.appended.push_back(field);
  };
  if (table.scope == policy::Scope::kTenant || table.scope == policy::Scope::kTenantOwner) {
    policy_column(table.tenant_column, IdentityField::kTenant);
  }
  if (table.scope == policy::Scope::kOwner || table.scope == policy::Scope::kTenantOwner) {
    policy_column(table.owner_column, IdentityField::kUser);
  }
  qualify(copy->mutable_relation(), table);
  copy->mutable_relation()->set_inh(true);
  mark_changed();
  copy_in_ = std::move(spec);
  return true;
}

bool StatementWalker::check_show(const pg_query::VariableShowStmt& show) {
  const std::string& name = show.name();
  if (is_settable_setting(name) || contains(kShowOnlySettings, name)) return true;
  return refuse("42501", "permission denied: SHOW " + name + " is not allowed");
}

bool StatementWalker::walk_copy(Node* stmt) {
  auto* copy = stmt->mutable_copy_stmt();
  if (!copy->filename().empty() || copy->is_program()) {
    return refuse("42501", "permission denied: COPY to or from a file or program is not allowed");
  }
  for (const Node& option : copy->options()) {
    if (!option.has_def_elem()) return refuse("0A000", "unsupported COPY option");
    // libpg_query 15-4.0.0 crashes deparsing `FORCE_NULL *` (and friends):
    // such a COPY is refused unless it is forwarded unchanged, which only a
    // COPY of an unscoped relation is; refuse it always, the simple rule.
    if (option.def_elem().has_arg() && option.def_elem().arg().has_a_star()) {
      return refuse("0A000", "COPY option " + option.def_elem().defname() +
                                 " * is not supported; list the columns");
    }
  }
  if (copy->has_query()) {
    if (copy->is_from()) return refuse("0A000", "unsupported COPY");
    return walk_statement(copy->mutable_query(), false);
  }
  if (!copy->has_relation()) return refuse("0A000", "unsupported COPY");
  Target target;
  if (copy->is_from()) {
    if (!resolve(copy->relation(), &target)) return false;
    const auto& res = target.resolution;
    if (res.kind == policy::Resolution::Kind::kTable &&
        (res.table->scope == policy::Scope::kTenant || res.table->scope == policy::Scope::kOwner ||
         res.table->scope == policy::Scope::kTenantOwner)) {
      if (!writable_target(copy->relation(), "COPY FROM", &target)) return false;
      return walk_copy_from_scoped(copy, target);
    }
    if (res.kind == policy::Resolution::Kind::kTable &&
        res.table->scope == policy::Scope::kPolicies) {
      return refuse("0A000", "COPY FROM into table " + target.display +
                                 ", which has row policies, is not supported; use INSERT");
    }
    return writable_target(copy->relation(), "COPY FROM", &target);
  }
  // COPY t TO: a scoped table becomes COPY (SELECT <cols> FROM ONLY t WHERE <predicate>) TO.
  const policy::TablePolicy* scoped = nullptr;
  if (!read_access(copy->relation(), &scoped)) return false;
  if (scoped == nullptr) return true;  // unscoped: forwarded as it is
  if (!scoped->masks.empty()) {
    return refuse("0A000", "COPY " + policy::to_string(scoped->name) +
                               " TO, a table with column masks, is not supported; use COPY "
                               "(SELECT ...) TO");
  }
  pg_query::RangeVar rv = copy->relation();
  rv.set_inh(false);  // COPY t TO copies only t itself, never child tables
  rv.set_schemaname(scoped->name.schema);
  Node query;
  auto* select = query.mutable_select_stmt();
  init_select(select, /*star=*/copy->attlist_size() == 0);
  for (const Node& column : copy->attlist()) {
    if (!column.has_string()) return refuse("0A000", "unsupported COPY column list");
    *select->add_target_list()
         ->mutable_res_target()
         ->mutable_val()
         ->mutable_column_ref()
         ->add_fields() = column;
  }
  *select->mutable_where_clause() = scope_predicate(*scoped, rv.relname());
  *select->add_from_clause()->mutable_range_var() = std::move(rv);
  copy->clear_relation();
  copy->clear_attlist();
  *copy->mutable_query() = std::move(query);
  mark_changed();
  return true;
}

}  // namespace tenantgate::rewriter
