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
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::policy {

enum class Scope { kTenant, kOwner, kTenantOwner, kShared, kDeny };

[[nodiscard]] std::string_view scope_name(Scope scope);

// A relation name as PostgreSQL stores it: unquoted identifiers already folded
// to lower case, quoted ones verbatim.
struct QualifiedName {
  std::string schema;
  std::string name;
  auto operator<=>(const QualifiedName&) const = default;
};

// "schema.name" with each part quoted only where PostgreSQL would need it.
[[nodiscard]] std::string to_string(const QualifiedName& name);

struct TablePolicy {
  QualifiedName name;
  Scope scope = Scope::kDeny;
  std::string tenant_column;  // set for kTenant and kTenantOwner
  std::string owner_column;   // set for kOwner and kTenantOwner
  int line = 0;               // where it was declared in policy.toml
};

enum class FunctionMode {
  kDenyList,   // every function except the denied ones
  kAllowList,  // only the allowed ones (plus nothing else)
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
  FunctionMode function_mode = FunctionMode::kDenyList;
  std::set<std::string> denied_functions;   // built-in list plus the file's; lower-case, maybe "schema.name" or "prefix*"
  std::set<std::string> allowed_functions;  // used in kAllowList mode
  std::string source_file;                  // for messages

  // Resolves a reference as libpg_query reports it (catalog, schema and name
  // may be empty). `database` is the connection's database: a three-part name
  // whose catalog differs from it resolves to nullopt (refuse).
  [[nodiscard]] std::optional<Resolution> resolve(std::string_view catalog, std::string_view schema,
                                                  std::string_view name,
                                                  std::string_view database) const;

  // True when calling the function `schema.name` (schema may be empty) is not allowed.
  [[nodiscard]] bool function_denied(std::string_view schema, std::string_view name) const;
};

// Thrown while loading; what() is "file:line: reason".
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[nodiscard]] std::shared_ptr<const Policy> load_policy_file(const std::string& path);
[[nodiscard]] std::shared_ptr<const Policy> parse_policy(std::string_view toml_text,
                                                         const std::string& file_name);

}  // namespace tenantgate::policy
