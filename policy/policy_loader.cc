// Loads policy.toml into an immutable Policy. Every error names the file and
// the line of the offending key or value.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <toml.hpp>
#include <utility>
#include <variant>

#include "policy/policy.h"
#include "policy/policy_expression.h"
#include "policy/toml_text.h"

namespace tenantgate::policy {

namespace {

// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), so a longer name
// in the policy could never match what the parser reports.
constexpr size_t kMaxIdentifierBytes = 63;

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  std::shared_ptr<const Policy> load(std::string_view text);

 private:
  [[noreturn]] void fail(unsigned line, const std::string& reason) const {
    throw PolicyError(file_ + ":" + std::to_string(line) + ": " + reason);
  }
  [[noreturn]] void fail(const toml::value& v, const std::string& reason) const {
    fail(v.location().line(), reason);
  }

  const std::string& string_of(const toml::value& v, std::string_view key) const;
  std::vector<std::pair<std::string, const toml::value*>> entries(const toml::value& table,
                                                                  std::string_view what) const;
  std::vector<std::string> identifiers(const std::string& text, unsigned line,
                                       std::string_view what, bool allow_star) const;
  std::vector<std::string> identifiers(const toml::value& v, std::string_view what,
                                       bool allow_star) const {
    return identifiers(v.as_string().str, v.location().line(), what, allow_star);
  }
  std::string column(const toml::value& v, std::string_view key) const;
  std::vector<std::string> patterns(const toml::value& v, std::string_view key) const;

  void load_search_path(const toml::value& v);
  void load_defaults(const toml::value& v);
  void load_tables(const toml::value& v);
  void load_table(const std::string& key, const toml::value& v);
  void load_functions(const toml::value& v);
  void load_app_function(const std::string& key, const toml::value& v);
  void load_catalogs(const toml::value& v);
  void load_row_policy(TablePolicy* tp, const toml::value& v);
  // After every table is known: compiles the expressions, turns shorthand
  // scopes next to policies into policies, and refuses cycles.
  void compile_row_policies();

  // A [[tables."s.t".policies]] entry before its expressions are compiled.
  struct PendingPolicy {
    QualifiedName table;
    RowPolicy policy;
    std::string using_sql;
    std::string check_sql;
    int using_line = 0;
    int check_line = 0;
  };
  std::vector<PendingPolicy> pending_policies_;
  // A [tables."s.t".columns.<column>] entry before its expressions are compiled.
  struct PendingMask {
    QualifiedName table;
    std::string column;
    std::string mask_sql;
    std::string unless_sql;
    int line = 0;
    int mask_line = 0;
    int unless_line = 0;
  };
  std::vector<PendingMask> pending_masks_;
  void load_masks(const TablePolicy& tp, const toml::value& v);

  std::string file_;
  std::shared_ptr<Policy> policy_ = std::make_shared<Policy>();
  std::string default_tenant_column_ = "tenant_id";
  std::string default_owner_column_ = "owner_id";
  int default_tenant_line_ = 0;
  int default_owner_line_ = 0;
};

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

const std::string& Loader::string_of(const toml::value& v, std::string_view key) const {
  if (!v.is_string()) fail(v, std::string(key) + " must be a string");
  return v.as_string().str;
}

// A table's keys in file order, so that the first error in the file is the
// one reported.
std::vector<std::pair<std::string, const toml::value*>> Loader::entries(
    const toml::value& table, std::string_view what) const {
  if (!table.is_table()) fail(table, std::string(what) + " must be a table");
  std::vector<std::pair<std::string, const toml::value*>> out;
  for (const auto& [k, v] : table.as_table()) out.emplace_back(k, &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto la = a.second->location(), lb = b.second->location();
    return std::pair(la.line(), la.column()) < std::pair(lb.line(), lb.column());
  });
  return out;
}

// Splits `text` into dot-separated SQL identifiers: unquoted parts fold to
// lower case, "double-quoted" parts keep their case with "" for a quote. With
// `allow_star`, the last part may be an unquoted prefix ending in '*'.
std::vector<std::string> Loader::identifiers(const std::string& text, unsigned line,
                                             std::string_view what, bool allow_star) const {
  std::vector<std::string> parts;
  size_t i = 0;
  auto malformed = [&](const std::string& why) {
    fail(line, "malformed " + std::string(what) + " " + dq(text) + ": " + why);
  };
  if (text.empty()) malformed("empty name");
  for (;;) {
    std::string part;
    if (i < text.size() && text[i] == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) malformed("unterminated quoted identifier");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            part += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\0') malformed("NUL in identifier");
        part += text[i++];
      }
      if (part.empty()) malformed("zero-length quoted identifier");
    } else {
      while (i < text.size() && text[i] != '.') {
        const auto c = static_cast<unsigned char>(text[i]);
        const bool first = part.empty();
        if (c == '*' && allow_star) {
          part += '*';
          ++i;
          if (i != text.size()) malformed("'*' may only end the last part");
          break;
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80 ||
                        (!first && ((c >= '0' && c <= '9') || c == '$'));
        if (!ok) {
          malformed(std::string("unexpected character '") + text[i] +
                    "' (quote the identifier with \"...\" to use it)");
        }
        part += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : text[i];
        ++i;
      }
      if (part.empty()) malformed("empty part");
    }
    if (part.size() > kMaxIdentifierBytes) {
      malformed("identifier longer than 63 bytes (PostgreSQL would truncate it)");
    }
    parts.push_back(std::move(part));
    if (i == text.size()) break;
    if (text[i] != '.') malformed("expected '.' after a quoted identifier");
    if (!parts.back().empty() && parts.back().back() == '*')
      malformed("'*' may only end the last part");
    ++i;
    if (i == text.size()) malformed("empty part");
  }
  return parts;
}

std::string Loader::column(const toml::value& v, std::string_view key) const {
  const std::string& text = string_of(v, key);
  if (text.empty()) fail(v, std::string(key) + " is empty");
  std::vector<std::string> parts = identifiers(v, key, false);
  if (parts.size() != 1)
    fail(v, std::string(key) + " must be a single column name, not " + dq(text));
  return parts[0];
}

// Function or relation patterns: "name", "prefix*", "schema.name",
// "schema.prefix*", matched case-insensitively, so stored in lower case.
std::vector<std::string> Loader::patterns(const toml::value& v, std::string_view key) const {
  if (!v.is_array()) fail(v, std::string(key) + " must be an array of strings");
  std::vector<std::string> out;
  for (const toml::value& e : v.as_array()) {
    string_of(e, std::string(key) + " entries");
    std::vector<std::string> parts = identifiers(e, "name", true);
    if (parts.size() > 2)
      fail(e, "malformed name " + dq(e.as_string().str) + ": at most schema.name");
    std::string p;
    for (const std::string& part : parts) {
      if (!p.empty()) p += '.';
      for (char c : part) p += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    out.push_back(std::move(p));
  }
  return out;
}

void Loader::load_search_path(const toml::value& v) {
  if (!v.is_array()) fail(v, "search_path must be an array of schema names");
  if (v.as_array().empty()) fail(v, "search_path is empty");
  std::vector<std::string> path;
  for (const toml::value& e : v.as_array()) {
    string_of(e, "search_path entries");
    std::vector<std::string> parts = identifiers(e, "schema name", false);
    if (parts.size() != 1)
      fail(e, "search_path entry " + dq(e.as_string().str) + " is not a single schema name");
    path.push_back(std::move(parts[0]));
  }
  policy_->search_path = std::move(path);
}

void Loader::load_defaults(const toml::value& v) {
  for (const auto& [key, value] : entries(v, "[defaults]")) {
    if (key == "tenant_column") {
      default_tenant_column_ = string_of(*value, key).empty() ? "" : column(*value, key);
      default_tenant_line_ = static_cast<int>(value->location().line());
    } else if (key == "owner_column") {
      default_owner_column_ = string_of(*value, key).empty() ? "" : column(*value, key);
      default_owner_line_ = static_cast<int>(value->location().line());
    } else {
      fail(*value,
           "unknown key " + dq(key) + " in [defaults] (expected tenant_column, owner_column)");
    }
  }
}

void Loader::load_tables(const toml::value& v) {
  for (const auto& [key, value] : entries(v, "[tables]")) load_table(key, *value);
}

void Loader::load_table(const std::string& key, const toml::value& v) {
  const std::string where = "[tables." + dq(key) + "]";
  if (!v.is_table()) fail(v, where + " must be a table");
  const auto& t = v.as_table();
  if (!t.contains("scope") && !t.contains("policies") && !t.contains("columns")) {
    const bool nested = !t.empty() && std::all_of(t.begin(), t.end(), [](const auto& kv) {
      return kv.second.is_table();
    });
    if (nested) {
      fail(v, where + " has no scope; a schema-qualified name is one quoted key: [tables.\"" + key +
                  "." + t.begin()->first + "\"]");
    }
    fail(v, where + " has no scope (tenant | owner | tenant_owner | shared | deny)");
  }

  // The key is parsed as SQL names; re-wrap it as a value for line numbers.
  std::vector<std::string> parts = identifiers(key, v.location().line(), "table name", false);
  if (parts.size() == 3) {
    // A three-part name would tie the policy to one database name; the
    // database part is only dropped (when it matches) in SQL references.
    fail(v, "malformed table name " + dq(key) +
                ": three-part names (database.schema.table) are not allowed; write schema.table");
  }
  if (parts.size() > 3) fail(v, "malformed table name " + dq(key) + ": too many parts");

  TablePolicy tp;
  tp.line = static_cast<int>(v.location().line());
  tp.name = parts.size() == 2 ? QualifiedName{parts[0], parts[1]}
                              : QualifiedName{policy_->search_path.front(), parts[0]};

  const toml::value* tenant_override = nullptr;
  const toml::value* owner_override = nullptr;
  for (const auto& [k, value] : entries(v, where)) {
    if (k == "scope") {
      const std::string& s = string_of(*value, "scope");
      std::optional<Scope> scope = parse_scope(s);
      if (!scope)
        fail(*value, "unknown scope " + dq(s) +
                         " (expected tenant | owner | tenant_owner | shared | deny)");
      tp.scope = *scope;
    } else if (k == "tenant_column") {
      tp.tenant_column = column(*value, k);
      tenant_override = value;
    } else if (k == "owner_column") {
      tp.owner_column = column(*value, k);
      owner_override = value;
    } else if (k == "columns") {
      load_masks(tp, *value);
    } else if (k == "policies") {
      if (!value->is_array()) fail(*value, where + ".policies must be [[...policies]] tables");
      for (const toml::value& p : value->as_array()) load_row_policy(&tp, p);
    } else {
      fail(*value, "unknown key " + dq(k) + " in " + where +
                       " (expected scope, tenant_column, owner_column, policies, columns)");
    }
  }
  // Policies without a scope: nothing but the policies grants rows.
  if (!t.contains("scope")) tp.scope = Scope::kPolicies;
  if (tp.scope == Scope::kShared && t.contains("columns")) {
    fail(v, where + ": column masks need a scope other than shared, or policies");
  }

  const bool uses_tenant = tp.scope == Scope::kTenant || tp.scope == Scope::kTenantOwner;
  if (tp.scope == Scope::kPolicies && (tenant_override || owner_override)) {
    fail(tenant_override ? *tenant_override : *owner_override,
         "tenant_column and owner_column need a scope; in policies write the column itself");
  }
  const bool uses_owner = tp.scope == Scope::kOwner || tp.scope == Scope::kTenantOwner;
  const std::string scope_str = dq(scope_name(tp.scope));
  if (tenant_override && !uses_tenant) {
    fail(*tenant_override, "tenant_column is set but scope " + scope_str + " does not use it");
  }
  if (owner_override && !uses_owner) {
    fail(*owner_override, "owner_column is set but scope " + scope_str + " does not use it");
  }
  if (uses_tenant && !tenant_override) {
    if (default_tenant_column_.empty()) {
      fail(v, where + ": scope " + scope_str +
                  " needs a tenant column but [defaults] tenant_column is empty");
    }
    tp.tenant_column = default_tenant_column_;
  }
  if (uses_owner && !owner_override) {
    if (default_owner_column_.empty()) {
      fail(v, where + ": scope " + scope_str +
                  " needs an owner column but [defaults] owner_column is empty");
    }
    tp.owner_column = default_owner_column_;
  }
  if (tp.scope == Scope::kTenantOwner && tp.tenant_column == tp.owner_column) {
    fail(v, where + ": tenant_column and owner_column are the same column " + dq(tp.tenant_column));
  }

  if (auto it = policy_->tables.find(tp.name); it != policy_->tables.end()) {
    fail(v, "table " + to_string(tp.name) + " is declared twice (also at line " +
                std::to_string(it->second.line) + ")");
  }
  policy_->tables.emplace(tp.name, std::move(tp));
}

void Loader::load_functions(const toml::value& v) {
  const toml::value* allow = nullptr;
  for (const auto& [key, value] : entries(v, "[functions]")) {
    if (key == "deny") {
      for (std::string& p : patterns(*value, key)) policy_->denied_functions.insert(std::move(p));
    } else if (key == "allow") {
      allow = value;
    } else if (key == "mode") {
      const std::string& m = string_of(*value, key);
      if (m == "deny_list") {
        policy_->function_mode = FunctionMode::kDenyList;
      } else if (m == "allow_list") {
        policy_->function_mode = FunctionMode::kAllowList;
      } else {
        fail(*value, "unknown functions mode " + dq(m) + " (expected allow_list | deny_list)");
      }
    } else if (value->is_table()) {
      load_app_function(key, *value);
    } else {
      fail(*value, "unknown key " + dq(key) +
                       " in [functions] (expected deny, allow, mode, or an app function "
                       "[functions.\"schema.name\"])");
    }
  }
  if (!allow) return;
  if (policy_->function_mode != FunctionMode::kAllowList) {
    fail(*allow, "allow has no effect with mode = \"deny_list\"");
  }
  const std::vector<std::string> allowed = patterns(*allow, "allow");
  for (size_t i = 0; i < allowed.size(); ++i) {
    const std::string& p = allowed[i];
    const size_t dot = p.rfind('.');
    const std::string schema = dot == std::string::npos ? "" : p.substr(0, dot);
    if (!schema.empty() && schema != "pg_catalog") {
      fail(allow->as_array()[i],
           dq(p) +
               ": allow narrows the built-in allow-list; name an app function with "
               "[functions.\"" +
               p + "\"] and reads = \"none\" | \"shared\" | \"rls\"");
    }
    const std::string name = dot == std::string::npos ? p : p.substr(dot + 1);
    Policy probe;  // built-in lists only
    if (!name.ends_with('*') && probe.function_rule(schema, name) == FunctionRule::kDenied) {
      fail(allow->as_array()[i], dq(p) + " is on the built-in deny list and cannot be allowed");
    }
    policy_->allowed_functions.insert(p);
  }
}

void Loader::load_app_function(const std::string& key, const toml::value& v) {
  const std::string where = "[functions." + dq(key) + "]";
  const auto& t = v.as_table();
  if (!t.contains("reads")) {
    const bool nested = !t.empty() && std::all_of(t.begin(), t.end(), [](const auto& kv) {
      return kv.second.is_table();
    });
    if (nested) {
      fail(v, where + " has no reads; a schema-qualified name is one quoted key: [functions.\"" +
                  key + "." + t.begin()->first + "\"]");
    }
    fail(v, where + " has no reads (none | shared | rls): say what the function reads");
  }
  std::vector<std::string> parts = identifiers(key, v.location().line(), "function name", false);
  if (parts.size() > 2) fail(v, "malformed function name " + dq(key) + ": at most schema.name");
  AppFunctionPolicy f;
  f.line = static_cast<int>(v.location().line());
  f.name = parts.size() == 2 ? QualifiedName{parts[0], parts[1]}
                             : QualifiedName{policy_->search_path.front(), parts[0]};
  if (f.name.schema == "pg_catalog" || f.name.schema == "information_schema" ||
      f.name.schema == "crdb_internal") {
    fail(v, where + ": built-in functions follow the built-in list, not the policy");
  }
  for (const auto& [k, value] : entries(v, where)) {
    if (k == "reads") {
      const std::string& r = string_of(*value, k);
      if (r == "none") {
        f.reads = FunctionReads::kNone;
      } else if (r == "shared") {
        f.reads = FunctionReads::kShared;
      } else if (r == "rls") {
        f.reads = FunctionReads::kRls;
      } else {
        fail(*value, "unknown reads " + dq(r) +
                         " (expected none: reads no tables | shared: reads only shared tables "
                         "| rls: SECURITY INVOKER, reads scoped data only through tables or "
                         "views with their own row-level security)");
      }
    } else if (k == "reason") {
      f.reason = string_of(*value, k);
    } else {
      fail(*value, "unknown key " + dq(k) + " in " + where + " (expected reads, reason)");
    }
  }
  if (auto it = policy_->app_functions.find(f.name); it != policy_->app_functions.end()) {
    fail(v, "function " + to_string(f.name) + " is declared twice (also at line " +
                std::to_string(it->second.line) + ")");
  }
  policy_->app_functions.emplace(f.name, std::move(f));
}

void Loader::load_catalogs(const toml::value& v) {
  for (const auto& [key, value] : entries(v, "[catalogs]")) {
    if (key == "deny") {
      for (std::string& p : patterns(*value, key))
        policy_->denied_catalog_relations.insert(std::move(p));
    } else {
      fail(*value, "unknown key " + dq(key) + " in [catalogs] (expected deny)");
    }
  }
}

void Loader::load_row_policy(TablePolicy* tp, const toml::value& v) {
  const std::string where = "policy of table " + to_string(tp->name);
  if (!v.is_table()) fail(v, where + " must be a table ([[tables.\"s.t\".policies]])");
  PendingPolicy p;
  p.table = tp->name;
  p.policy.line = static_cast<int>(v.location().line());
  bool named = false;
  for (const auto& [k, value] : entries(v, where)) {
    if (k == "name") {
      p.policy.name = string_of(*value, k);
      if (p.policy.name.empty()) fail(*value, "policy name is empty");
      named = true;
    } else if (k == "command") {
      const std::string& c = string_of(*value, k);
      bool found = false;
      for (PolicyCommand pc : {PolicyCommand::kAll, PolicyCommand::kSelect, PolicyCommand::kInsert,
                               PolicyCommand::kUpdate, PolicyCommand::kDelete}) {
        if (policy_command_name(pc) == c) {
          p.policy.command = pc;
          found = true;
        }
      }
      if (!found) {
        fail(*value,
             "unknown command " + dq(c) + " (expected all | select | insert | update | delete)");
      }
    } else if (k == "kind") {
      const std::string& c = string_of(*value, k);
      if (c != "permissive" && c != "restrictive") {
        fail(*value, "unknown kind " + dq(c) + " (expected permissive | restrictive)");
      }
      p.policy.permissive = c == "permissive";
    } else if (k == "using") {
      p.using_sql = string_of(*value, k);
      p.using_line = static_cast<int>(value->location().line());
      if (p.using_sql.empty()) fail(*value, "using is empty");
    } else if (k == "check") {
      p.check_sql = string_of(*value, k);
      p.check_line = static_cast<int>(value->location().line());
      if (p.check_sql.empty()) fail(*value, "check is empty");
    } else {
      fail(*value, "unknown key " + dq(k) + " in " + where +
                       " (expected name, command, using, check, kind)");
    }
  }
  if (!named) fail(v, where + " has no name");
  for (const PendingPolicy& other : pending_policies_) {
    if (other.table == p.table && other.policy.name == p.policy.name) {
      fail(v, "policy " + dq(p.policy.name) + " of table " + to_string(tp->name) +
                  " is declared twice (also at line " + std::to_string(other.policy.line) + ")");
    }
  }
  const PolicyCommand c = p.policy.command;
  if (c == PolicyCommand::kInsert && !p.using_sql.empty()) {
    fail(p.using_line, "policy " + dq(p.policy.name) +
                           ": an insert policy has only a check expression (as in CREATE POLICY)");
  }
  if ((c == PolicyCommand::kSelect || c == PolicyCommand::kDelete) && !p.check_sql.empty()) {
    fail(p.check_line, "policy " + dq(p.policy.name) + ": a " +
                           std::string(policy_command_name(c)) +
                           " policy has only a using expression (as in CREATE POLICY)");
  }
  if (p.using_sql.empty() && p.check_sql.empty()) {
    fail(v, "policy " + dq(p.policy.name) + " has neither using nor check");
  }
  pending_policies_.push_back(std::move(p));
}

void Loader::load_masks(const TablePolicy& tp, const toml::value& v) {
  const std::string where = "[tables." + dq(to_string(tp.name)) + ".columns]";
  for (const auto& [column, spec] : entries(v, where)) {
    const std::vector<std::string> parts =
        identifiers(column, spec->location().line(), "column name", false);
    if (parts.size() != 1) fail(*spec, "malformed column name " + dq(column));
    PendingMask m;
    m.table = tp.name;
    m.column = parts[0];
    m.line = static_cast<int>(spec->location().line());
    for (const auto& [k, value] : entries(*spec, where + "." + column)) {
      if (k == "mask") {
        m.mask_sql = string_of(*value, k);
        m.mask_line = static_cast<int>(value->location().line());
      } else if (k == "unless") {
        m.unless_sql = string_of(*value, k);
        m.unless_line = static_cast<int>(value->location().line());
      } else {
        fail(*value,
             "unknown key " + dq(k) + " in " + where + "." + column + " (expected mask, unless)");
      }
    }
    if (m.mask_sql.empty()) fail(*spec, "column " + dq(column) + " has no mask");
    pending_masks_.push_back(std::move(m));
  }
}

void Loader::compile_row_policies() {
  if (pending_policies_.empty() && pending_masks_.empty()) return;
  // Shorthand scopes next to policies become the first permissive policy.
  for (auto& [name, table] : policy_->tables) {
    const bool has_policies =
        std::any_of(pending_policies_.begin(), pending_policies_.end(),
                    [&](const PendingPolicy& p) { return p.table == name; }) ||
        std::any_of(pending_masks_.begin(), pending_masks_.end(),
                    [&](const PendingMask& m) { return m.table == name; });
    if (!has_policies || table.scope == Scope::kPolicies) continue;
    if (table.scope != Scope::kDeny) {
      RowPolicy scope_policy;
      scope_policy.name = "scope " + std::string(scope_name(table.scope));
      scope_policy.line = table.line;
      scope_policy.using_expr =
          compile_policy_expression(scope_expression(table), *policy_, table, file_, table.line,
                                    "scope of table " + to_string(name));
      table.uses_user = table.uses_user || scope_policy.using_expr->uses_user;
      table.policies.push_back(std::move(scope_policy));
    }
    table.scope = Scope::kPolicies;
  }
  for (PendingPolicy& p : pending_policies_) {
    TablePolicy& table = policy_->tables.at(p.table);
    const std::string what = "policy " + dq(p.policy.name) + " of table " + to_string(p.table);
    if (!p.using_sql.empty()) {
      p.policy.using_expr = compile_policy_expression(p.using_sql, *policy_, table, file_,
                                                      p.using_line, "using of " + what);
      table.uses_user = table.uses_user || p.policy.using_expr->uses_user;
    }
    if (!p.check_sql.empty()) {
      p.policy.check_expr = compile_policy_expression(p.check_sql, *policy_, table, file_,
                                                      p.check_line, "check of " + what);
      table.uses_user = table.uses_user || p.policy.check_expr->uses_user;
    }
    table.policies.push_back(std::move(p.policy));
  }
  for (PendingMask& m : pending_masks_) {
    TablePolicy& table = policy_->tables.at(m.table);
    ColumnMask mask;
    mask.column = m.column;
    mask.line = m.line;
    const std::string what = "mask of column " + m.column + " of table " + to_string(m.table);
    mask.mask = compile_policy_expression(m.mask_sql, *policy_, table, file_, m.mask_line, what,
                                          /*boolean=*/false);
    if (!m.unless_sql.empty()) {
      mask.unless = compile_policy_expression(m.unless_sql, *policy_, table, file_, m.unless_line,
                                              "unless of " + what);
    }
    for (const auto* e : {mask.mask.get(), mask.unless.get()}) {
      if (e != nullptr) table.uses_user = table.uses_user || e->uses_user;
    }
    table.masks.push_back(std::move(mask));
  }
  // Policy predicates are also evaluated where only masked values are in
  // reach (conditions guarded with them): they may not read masked columns.
  for (const auto& [name, table] : policy_->tables) {
    for (const ColumnMask& mask : table.masks) {
      for (const RowPolicy& rp : table.policies) {
        for (const auto* e : {rp.using_expr.get(), rp.check_expr.get()}) {
          if (e == nullptr) continue;
          if (std::find(e->columns.begin(), e->columns.end(), mask.column) != e->columns.end()) {
            fail(static_cast<unsigned>(e->line), "policy " + dq(rp.name) + " of table " +
                                                     to_string(name) + " reads column " +
                                                     mask.column + ", which is masked");
          }
        }
      }
    }
  }
  // A table read inside its own policies, directly or through others', would
  // recurse forever (PostgreSQL reports "infinite recursion detected in
  // policy"); refuse it here.
  std::map<QualifiedName, int> state;  // 1: on the path, 2: done
  std::vector<QualifiedName> path;
  std::function<void(const QualifiedName&)> visit = [&](const QualifiedName& name) {
    state[name] = 1;
    path.push_back(name);
    const TablePolicy& table = policy_->tables.at(name);
    std::vector<RowPolicy> with_masks = table.policies;
    for (const ColumnMask& m : table.masks) {
      RowPolicy as_policy;
      as_policy.name = "mask of " + m.column;
      as_policy.using_expr = m.mask;
      as_policy.check_expr = m.unless;
      with_masks.push_back(std::move(as_policy));
    }
    for (const RowPolicy& rp : with_masks) {
      for (const auto* e : {rp.using_expr.get(), rp.check_expr.get()}) {
        if (e == nullptr) continue;
        for (const QualifiedName& next : e->tables) {
          if (state[next] == 1) {
            std::string cycle;
            bool on = false;
            for (const QualifiedName& n : path) {
              if (n == next) on = true;
              if (on) cycle += to_string(n) + " -> ";
            }
            fail(static_cast<unsigned>(e->line),
                 "policy " + dq(rp.name) + " of table " + to_string(name) +
                     " makes a cycle of policies: " + cycle + to_string(next));
          }
          if (state[next] == 0) visit(next);
        }
      }
    }
    path.pop_back();
    state[name] = 2;
  };
  for (const auto& [name, table] : policy_->tables) {
    if (state[name] == 0) visit(name);
  }
}

std::shared_ptr<const Policy> Loader::load(std::string_view text) {
  auto parsed = parse_toml(text, file_);
  if (auto* error = std::get_if<TomlSyntaxError>(&parsed)) fail(error->line, error->reason);
  const toml::value root = std::move(std::get<toml::value>(parsed));
  policy_->source_file = file_;

  // search_path and [defaults] shape every table entry, so they go first.
  const auto top = entries(root, "the file");
  for (const auto& [key, value] : top) {
    if (key == "search_path") load_search_path(*value);
    if (key == "defaults") load_defaults(*value);
  }
  for (const auto& [key, value] : top) {
    if (key == "default_action") {
      const std::string& a = string_of(*value, key);
      if (a == "deny") {
        policy_->default_action = Scope::kDeny;
      } else if (a == "shared") {
        policy_->default_action = Scope::kShared;
      } else {
        fail(*value, "unknown default_action " + dq(a) + " (expected deny | shared)");
      }
    } else if (key == "tables") {
      load_tables(*value);
    } else if (key == "functions") {
      load_functions(*value);
    } else if (key == "catalogs") {
      load_catalogs(*value);
    } else if (key != "search_path" && key != "defaults") {
      fail(*value,
           "unknown key " + dq(key) +
               " (expected default_action, search_path, defaults, tables, functions, catalogs)");
    }
  }
  for (std::string_view f : builtin_denied_functions()) policy_->denied_functions.emplace(f);
  for (std::string_view r : builtin_denied_relations())
    policy_->denied_catalog_relations.emplace(r);
  compile_row_policies();
  return policy_;
}

}  // namespace

std::shared_ptr<const Policy> parse_policy(std::string_view toml_text,
                                           const std::string& file_name) {
  return Loader(file_name).load(toml_text);
}

std::shared_ptr<const Policy> load_policy_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PolicyError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw PolicyError(path + ": cannot read: " + std::strerror(errno));
  return parse_policy(buf.str(), path);
}

}  // namespace tenantgate::policy
