// Which client expressions could report values of rows outside the caller's
// scope, and the guard that keeps them from running on such rows.
//
// A scoped table reaches the database as `(SELECT * FROM t WHERE <scope>) t`.
// The database is free to merge that derived table into the client's query
// and to evaluate the client's own conditions before the scope predicate (in
// PostgreSQL the scan's quals are ordered by cost, see order_qual_clauses in
// optimizer/plan/createplan.c). A condition that can fail or signal on a
// column value (`name::int > 0`, `to_date(name, 'YYYY')`, a function raising
// a NOTICE) would then run on other tenants' rows and report their values in
// an error message. Such a condition is "leaky" and gets a guard that carries
// the scope predicate: `CASE WHEN <scope> THEN <condition> ELSE false END`.
// A CASE evaluates its THEN branch only on rows for which the WHEN holds,
// wherever the planner places it. The classification follows PostgreSQL's own
// contain_leaked_vars (optimizer/util/clauses.c), the test that decides what
// may be evaluated below a security barrier.
//
// Pure functions over parse trees; no state, safe from any thread. They
// recurse as deep as the tree: call them on a thread with the rewriter's
// large stack.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pg_query.pb.h"
#include "policy/app_catalog.h"

namespace tenantgate::rewriter {

// The classification, with what the application defined in its database
// (policy/app_catalog.h): an app function can stand behind a comparison
// operator's symbol or an aggregate's name.
class LeakRules {
 public:
  // `catalog` null: an empty catalog. It must outlive the rules.
  explicit LeakRules(const policy::AppCatalog* catalog);

  // True when evaluating `expr` on a row could fail or signal depending on a
  // column value of that row: some node that is not known leakproof has a
  // column reference below it. Known leakproof: column references,
  // constants, parameters, SQL value functions (CURRENT_DATE, ...), boolean
  // logic, IS [NOT] NULL / TRUE / FALSE, CASE, COALESCE, row and array
  // constructors, and comparisons (=, <>, <, >, <=, >=, IN, BETWEEN, IS
  // DISTINCT FROM, ANY/ALL) whose operands are themselves not leaky, unless
  // the application implements an operator of a comparison's symbol.
  // Everything else with a column below it is leaky: casts, function calls,
  // arithmetic, LIKE and regular expressions, subscripts, field selection,
  // subqueries (always), and any node this function does not recognise.
  [[nodiscard]] bool is_leaky(const pg_query::Node& expr) const;

  // True when `expr` calls a built-in aggregate (outside any subquery): a
  // name the application also defines does not count. PostgreSQL moves a
  // HAVING condition without aggregates into WHERE (subquery_planner in
  // optimizer/plan/planner.c); one with an aggregate stays above the
  // aggregation, where every row is already in scope.
  [[nodiscard]] bool calls_aggregate(const pg_query::Node& expr) const;

  // The symbol of an operator in `expr` (subqueries included) that an app
  // function implements, if any. The planner runs such an operator on the
  // statistics of every tenant's rows to estimate a condition's selectivity
  // (selfuncs.c: var_eq_const on the most common values, the histogram in
  // scalarineqsel), unless the condition hides it inside a guard.
  [[nodiscard]] std::optional<std::string> app_operator(const pg_query::Node& expr) const;

 private:
  bool leaky_a_expr(const pg_query::Node& node) const;
  bool any_child_leaky(const pg_query::Node& node) const;
  bool is_comparison(const google::protobuf::RepeatedPtrField<pg_query::Node>& name) const;

  const policy::AppCatalog* catalog_;
  bool app_comparisons_ = false;  // the app implements a comparison symbol
};

// The column references in `expr`, subqueries included: the table qualifier
// of each qualified reference (`r` of `r.name`), and whether any reference is
// unqualified (it may name a column of any table in scope).
struct ColumnQualifiers {
  std::vector<std::string> qualifiers;
  bool unqualified = false;
};
void collect_column_qualifiers(const pg_query::Node& expr, ColumnQualifiers* out);

// True when `expr` calls a window function (outside any subquery): it is
// computed above the scan, and conditions on it stay above too.
[[nodiscard]] bool calls_window_function(const pg_query::Node& expr);

// `CASE WHEN <guard> THEN <condition> ELSE false END`, as the parser builds it.
[[nodiscard]] pg_query::Node case_guard(pg_query::Node guard, pg_query::Node condition);

// `CASE WHEN <guard> THEN <value> END` (NULL outside the guard).
[[nodiscard]] pg_query::Node case_guard_value(pg_query::Node guard, pg_query::Node value);

// The top-level conjuncts of a WHERE / ON / HAVING clause: the arguments of
// a top-level AND, or the clause itself.
[[nodiscard]] std::vector<pg_query::Node*> conjuncts(pg_query::Node* clause);

}  // namespace tenantgate::rewriter
