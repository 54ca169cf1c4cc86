// The live schema as tenantgate's policy sees it, and the two things done
// with it: `tenantgate policy init` (a starting policy.toml guessed from the
// columns) and `tenantgate check --dsn` (the policy verified against the
// tables). Pure cores; read_schema() is the libpq shell.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"

namespace tenantgate::ops {

struct SchemaColumn {
  std::string name;
  std::string type;  // pg_type.typname of the column (or of a domain's base type)
};

struct SchemaTable {
  policy::QualifiedName name;
  char kind = 'r';  // pg_class.relkind: r table, p partitioned, v view, m matview, f foreign
  std::vector<SchemaColumn> columns;
  [[nodiscard]] const SchemaColumn* column(std::string_view name) const;
};

// Tables, views and their columns outside the system schemas; nullopt and
// `error` set when the database cannot be read.
[[nodiscard]] std::optional<std::vector<SchemaTable>> read_schema(const std::string& conninfo,
                                                                  std::string* error);

// Whether a column of type `typname` can hold identity values of `type`.
[[nodiscard]] bool column_type_fits(std::string_view typname, policy::ValueType type);

struct InitOptions {
  std::vector<std::string> tenant_columns = {"tenant_id", "tenant"};
  std::vector<std::string> owner_columns = {"owner_id", "created_by", "user_id", "owner"};
};

// A policy.toml for `tables`: a table with a tenant column is scoped tenant,
// with an owner column as well tenant_owner (owner column named where it is
// not the default), every other table listed in a comment as denied. Says in
// comments what it guessed and why.
[[nodiscard]] std::string policy_init(const std::vector<SchemaTable>& tables,
                                      const InitOptions& options = {});

struct SchemaFinding {
  enum class Severity { kError, kNote };
  Severity severity = Severity::kError;
  std::string message;
};

// The policy against the schema: every listed table exists, its scope
// columns exist and their types fit the identity types; tables the policy
// does not list are noted with what default_action does to them.
[[nodiscard]] std::vector<SchemaFinding> check_schema(const policy::Policy& policy,
                                                      const std::vector<SchemaTable>& tables,
                                                      policy::ValueType tenant_type,
                                                      policy::ValueType user_type);

}  // namespace tenantgate::ops
