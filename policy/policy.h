// The policy model: which tables are scoped how, which functions and catalog
// relations may be used, and how names in SQL resolve to policy entries.
//
// A Policy is immutable once loaded; sessions share it through
// std::shared_ptr<const Policy>, and a reload swaps the pointer.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::policy {

// kPolicies: the table carries row policies (RowPolicy); a scope written next
// to them became one permissive policy.
enum class Scope { kTenant, kOwner, kTenantOwner, kShared, kDeny, kPolicies };

[[nodiscard]] std::string_view scope_name(Scope scope);
// Parses "tenant" | "owner" | "tenant_owner" | "shared" | "deny".
[[nodiscard]] std::optional<Scope> parse_scope(std::string_view name);

// A relation name as PostgreSQL stores it: unquoted identifiers already folded
// to lower case, quoted ones verbatim.
struct QualifiedName {
  std::string schema;
  std::string name;
  auto operator<=>(const QualifiedName&) const = default;
};

// "schema.name" with each part quoted only where PostgreSQL would need it
// (just "name" when schema is empty).
[[nodiscard]] std::string to_string(const QualifiedName& name);

// `ident` as is when it matches [a-z_][a-z0-9_$]*, otherwise double-quoted with
// embedded quotes doubled. Keywords are not quoted: callers use this for
// messages and for qualified names, where PostgreSQL accepts them bare.
[[nodiscard]] std::string quote_identifier(std::string_view ident);

// The commands a row policy applies to, as in CREATE POLICY ... FOR.
enum class PolicyCommand { kAll, kSelect, kInsert, kUpdate, kDelete };
[[nodiscard]] std::string_view policy_command_name(PolicyCommand command);

struct PolicyExpression;  // policy_expression.h: a parsed, validated expression

// `[[tables."s.t".policies]]`: one CREATE POLICY. Expressions are SQL boolean
// expressions over the table's columns that may call tenantgate.tenant(),
// tenantgate.user_id() and tenantgate.claim('name') and may read other policy
// tables in subqueries (which get their own policies).
struct RowPolicy {
  std::string name;
  PolicyCommand command = PolicyCommand::kAll;
  bool permissive = true;  // false: restrictive
  // Null when absent. A missing check uses the using expression, as in RLS.
  std::shared_ptr<const PolicyExpression> using_expr;
  std::shared_ptr<const PolicyExpression> check_expr;
  int line = 0;
};

// `[tables."s.t".columns.<column>]`: reads see `mask` in place of the
// column's value unless `unless` holds (for the row and the caller).
struct ColumnMask {
  std::string column;
  std::shared_ptr<const PolicyExpression> mask;
  std::shared_ptr<const PolicyExpression> unless;  // null: always masked
  int line = 0;
};

struct TablePolicy {
  QualifiedName name;
  Scope scope = Scope::kDeny;
  std::string tenant_column;  // set for kTenant and kTenantOwner (and a kPolicies
                              // table whose shorthand scope used it)
  std::string owner_column;   // set for kOwner and kTenantOwner (likewise)
  int line = 0;               // where it was declared in policy.toml
  // kPolicies only: the row policies, the shorthand scope's first.
  std::vector<RowPolicy> policies;
  // kPolicies only: column masks, in file order.
  std::vector<ColumnMask> masks;
  // kPolicies only: whether some expression calls tenantgate.user_id().
  bool uses_user = false;
};

enum class FunctionMode {
  // The default: built-ins on the allow-list of builtin_functions.tsv and the
  // app functions the policy names; everything else is refused.
  kAllowList,
  // Opt-in (`[functions] mode = "deny_list"`), for policies whose principals
  // are all trusted: every function except the denied ones (the built-in
  // deny entries of builtin_functions.tsv, the built-in patterns and the
  // file's deny list). App functions run unscoped.
  kDenyList,
};

// A PostgreSQL 15 built-in function name (one row of
// policy/builtin_functions.tsv, compiled in): every overload of the name is
// allowed or denied together.
struct BuiltinFunction {
  std::string_view schema;  // pg_catalog or information_schema
  std::string_view name;
  bool allowed = false;
  std::string_view reason;  // the category (allowed) or why it is denied
};

// All rows, sorted by (schema, name).
[[nodiscard]] std::span<const BuiltinFunction> builtin_functions();
// The row for schema.name (exact, case-sensitive: names as the parser reports
// them), or nullptr.
[[nodiscard]] const BuiltinFunction* find_builtin_function(std::string_view schema,
                                                           std::string_view name);

// What an app function the policy names may read; the policy records the
// claim of whoever wrote it (tenantgate cannot see inside a function).
enum class FunctionReads {
  kNone,    // reads no tables
  kShared,  // reads only tables every tenant may read (scope shared, catalogs)
  kRls,     // SECURITY INVOKER, reads scoped data only through tables or
            // views with their own row-level security
};
[[nodiscard]] std::string_view function_reads_name(FunctionReads reads);

// `[functions."schema.name"]`: an app function (every overload of the name)
// that callers may use.
struct AppFunctionPolicy {
  QualifiedName name;
  FunctionReads reads = FunctionReads::kNone;
  std::string reason;  // optional free text
  int line = 0;
};

// How the function rules see a function name.
enum class FunctionRule {
  kAllowed,    // an allowed built-in or an app function the policy names
  kDenied,     // denied whatever the context
  kNotListed,  // neither a built-in nor named by the policy (an app function
               // or no function at all): refused when called in allow-list mode
};

// How a reference in SQL resolved.
struct Resolution {
  enum class Kind {
    kTable,          // a table with a policy entry (table points at it)
    kDefault,        // not listed: default_action applies
    kCatalog,        // pg_catalog / information_schema relation that may be read
    kDeniedCatalog,  // a statistics or system relation that may never be read
  };
  Kind kind = Kind::kDefault;
  const TablePolicy* table = nullptr;
  QualifiedName name;  // the resolved, schema-qualified name
};

class Policy {
 public:
  Scope default_action = Scope::kDeny;  // kDeny or kShared
  std::vector<std::string> search_path{"public"};
  std::map<QualifiedName, TablePolicy> tables;
  FunctionMode function_mode = FunctionMode::kAllowList;
  std::set<std::string> denied_functions;  // built-in list plus the file's; lower-case, maybe
                                           // "schema.name" or "prefix*"
  // `[functions] allow`: when not empty, built-ins must also match one of
  // these patterns (lower-case "name", "pg_catalog.name", "prefix*").
  std::set<std::string> allowed_functions;
  std::map<QualifiedName, AppFunctionPolicy> app_functions;
  // Relations that may never be read: the built-in list plus the file's
  // [catalogs] deny; lower-case "name", "prefix*", "schema.name" or
  // "schema.prefix*" (no schema: any schema).
  std::set<std::string> denied_catalog_relations;
  std::string source_file;  // for messages

  // Resolves a reference as libpg_query reports it (catalog, schema and name
  // may be empty). `database` is the connection's database: a three-part name
  // whose catalog differs from it resolves to nullopt (refuse).
  //
  // Resolution cannot see which tables exist in the database, so it resolves
  // by the policy alone:
  //  - schema pg_catalog / information_schema: kCatalog, or kDeniedCatalog for
  //    a denied relation (statistics, other sessions' query text, password
  //    hashes, FDW credentials, large objects). Schemas crdb_internal and
  //    system (CockroachDB) are kDeniedCatalog.
  //  - another schema: kTable when listed, else kDefault.
  //  - unqualified: a denied catalog relation name is kDeniedCatalog; a name
  //    listed on the search_path is kTable (first search_path schema wins);
  //    a PostgreSQL 15 pg_catalog relation name (PostgreSQL searches
  //    pg_catalog before the search_path) is kCatalog with schema pg_catalog;
  //    anything else is kDefault qualified with the first search_path schema,
  //    i.e. an unlisted name follows default_action even if the table does
  //    not exist or exists only in a later search_path schema.
  // A listed user table whose name shadows a catalog relation resolves to
  // kTable: if the backend in fact reads the catalog relation, the scope
  // predicate names a column it lacks and the statement fails (closed).
  // Returns nullopt also for an empty name.
  [[nodiscard]] std::optional<Resolution> resolve(std::string_view catalog, std::string_view schema,
                                                  std::string_view name,
                                                  std::string_view database) const;

  // The rule for the function `schema.name` (schema empty: unqualified, as
  // PostgreSQL resolves it: pg_catalog first, then the search_path).
  //  - kDenied: any function in crdb_internal; a name matching a deny pattern
  //    (the built-in patterns of policy.cc and the file's deny, compared in
  //    lower case; a pattern without a schema matches any schema, "s.f"
  //    matches calls qualified with s and unqualified calls when s is
  //    pg_catalog or on the search_path); a built-in (unqualified, or
  //    qualified with its schema) whose builtin_functions.tsv entry is deny,
  //    or, with `[functions] allow`, that matches none of its patterns.
  //  - kAllowed: a built-in whose entry is allow; an app function named by
  //    the policy (an unqualified name: named in a search_path schema).
  //  - kNotListed: anything else.
  // The built-in rules apply in both modes and on a default-constructed
  // Policy. An unqualified name that is an allowed built-in is kAllowed even
  // if an app function of that name exists on the search_path; the rewriter
  // checks that with the catalog snapshot (policy::AppCatalog).
  [[nodiscard]] FunctionRule function_rule(std::string_view schema, std::string_view name) const;

  // Whether calling `schema.name` is refused: kDenied, or kNotListed in
  // kAllowList mode.
  [[nodiscard]] bool function_denied(std::string_view schema, std::string_view name) const;

  // Whether the policy names the app function schema.name (exact names).
  [[nodiscard]] bool app_function_named(std::string_view schema, std::string_view name) const;

  // True when the relation schema.name (schema may be empty: any schema
  // matches only patterns without one) may never be read; built-in list
  // included.
  [[nodiscard]] bool catalog_denied(std::string_view schema, std::string_view name) const;
};

// The built-in lists (lower case; trailing '*' is a prefix; no schema means
// any schema). They apply whatever the policy file says.
[[nodiscard]] std::span<const std::string_view> builtin_denied_functions();
[[nodiscard]] std::span<const std::string_view> builtin_denied_relations();

// Thrown while loading; what() is "file:line: reason".
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[nodiscard]] std::shared_ptr<const Policy> load_policy_file(const std::string& path);
[[nodiscard]] std::shared_ptr<const Policy> parse_policy(std::string_view toml_text,
                                                         const std::string& file_name);

}  // namespace tenantgate::policy
