// The function rules: judges every name a statement may make the server call
// as a function, with the policy (built-in allow/deny list, named app
// functions) and the app catalog snapshot (which app functions exist).
//
// Each check returns nullopt when the name may be used, or the refusal
// message (SQLSTATE 42501). Pure; holds references to the policy and catalog,
// which must outlive it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/app_catalog.h"
#include "policy/policy.h"

namespace tenantgate::rewriter {

class FunctionRules {
 public:
  // `catalog` null: an empty catalog.
  FunctionRules(const policy::Policy& policy, const policy::AppCatalog* catalog);

  // An ordinary call schema.name(...) (schema empty: unqualified), also as an
  // aggregate, a window function, a set-returning function in FROM or ROWS
  // FROM, or a function-style cast type(x) (parse_func.c ParseFuncOrColumn:
  // func_get_detail returns FUNCDETAIL_COERCION when the name is a type with
  // a cast from the argument).
  [[nodiscard]] std::optional<std::string> check_call(std::string_view schema,
                                                      std::string_view name) const;

  // A name used as a field: the String of an A_Indirection `(x).name`, or the
  // last name of a ColumnRef `x.name`. PostgreSQL resolves it as the call
  // name(x) when x has no column of that name (parse_expr.c
  // transformIndirection and transformColumnRef call ParseFuncOrColumn with
  // is_column = true; parse_func.c tries the field first, then the function).
  // Refused when the name is a denied built-in, or an app function on the
  // search_path the policy does not name; other names are columns.
  [[nodiscard]] std::optional<std::string> check_attribute(std::string_view name) const;

  // An operator written as `a OP b`, `OP a`, OPERATOR(schema.OP), or implied
  // by IN, LIKE, BETWEEN, DISTINCT FROM, NULLIF (parse_oper.c make_op and
  // parse_expr.c transformAExpr*): refused when an app function the policy
  // does not name implements an operator of that name.
  [[nodiscard]] std::optional<std::string> check_operator(std::string_view schema,
                                                          std::string_view op) const;

  // A cast or typed literal to the type schema.name (parse_expr.c
  // transformTypeCast; parse_coerce.c coerce_type runs the type's input
  // function on a literal and find_coercion_pathway's cast function on a
  // value): refused when an app function the policy does not name makes
  // values of that type.
  [[nodiscard]] std::optional<std::string> check_type(std::string_view schema,
                                                      std::string_view name) const;

  // A TABLESAMPLE method (parse_clause.c transformRangeTableSample looks up
  // a function of that name returning tsm_handler): the built-in system and
  // bernoulli, or an app function the policy names.
  [[nodiscard]] std::optional<std::string> check_tablesample(std::string_view schema,
                                                             std::string_view name) const;

 private:
  // An app function of that name on the search_path (or in `schema`) that
  // the policy does not name, as "schema.name"; nullopt when there is none.
  std::optional<std::string> unnamed_app_function(std::string_view schema,
                                                  std::string_view name) const;
  std::optional<std::string> unnamed_of(const std::set<policy::QualifiedName>& functions) const;

  const policy::Policy& policy_;
  const policy::AppCatalog* catalog_;
};

}  // namespace tenantgate::rewriter
