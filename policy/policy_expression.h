// Row-policy and mask expressions: the SQL text an operator wrote in
// policy.toml, parsed once when the policy loads and validated there, so that
// a policy that loads is one the rewriter can apply.
//
// Validation (errors are PolicyError "file:line: reason"):
//  - the text is one SQL expression (parsed as `SELECT (<text>)`) of boolean
//    shape: a comparison, AND/OR/NOT, IS [NOT] NULL/TRUE/..., EXISTS, IN,
//    ANY/ALL, BETWEEN, LIKE, a boolean constant, a column or a cast to
//    boolean;
//  - identity comes only from tenantgate.tenant(), tenantgate.user_id() and
//    tenantgate.claim('<name>') (a constant name); no parameters;
//  - every function is allowed by the policy's function rules and is not
//    volatile (random(), nextval(), now-independent clocks, current_setting,
//    ...); no window functions, no locking clauses, no WITH, no SELECT INTO;
//  - the table's own columns are named bare or qualified with the table's
//    name; inside subqueries every column is qualified (the rewriter has no
//    schema to tell which table a bare name belongs to);
//  - every relation read in a subquery is a policy table (not deny); each
//    gets its own policies where the expression is used.
//
// Thread-safety: immutable after loading, shared by every session through
// the Policy snapshot.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pg_query.pb.h"
#include "policy/policy.h"

namespace tenantgate::policy {

struct PolicyExpression {
  std::string sql;  // as written
  int line = 0;
  // The expression as libpg_query parses it (locations cleared). Column
  // references to the table are bare (`col`) or `<table name>.col`.
  pg_query::Node tree;
  std::vector<QualifiedName> tables;  // policy tables its subqueries read
  bool uses_user = false;             // calls tenantgate.user_id()
  bool uses_claims = false;           // calls tenantgate.claim(...)
  // The table's own columns it names outside subqueries.
  std::vector<std::string> columns;
};

// Parses and validates `sql` as an expression on `table` (already in
// `policy`, whose search_path and functions are loaded). `what` names the key
// for messages ("using of policy p"). Throws PolicyError.
[[nodiscard]] std::shared_ptr<const PolicyExpression> compile_policy_expression(
    std::string_view sql, const Policy& policy, const TablePolicy& table, const std::string& file,
    int line, const std::string& what, bool boolean = true);

// The text of a scope shorthand as a policy expression (`tenant_id =
// tenantgate.tenant()`, ...), or "" for kShared (true) and kDeny.
[[nodiscard]] std::string scope_expression(const TablePolicy& table);

}  // namespace tenantgate::policy
