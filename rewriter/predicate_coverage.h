// Whether a statement's own SQL already restricts each scoped table it reads
// to the caller: the analysis behind shadow mode's missing-predicate findings
// (an application's IDOR bugs), independent of what the rewriter adds.
//
// A reference to a table whose policy scope is tenant, owner or tenant_owner
// is restricted when the WHERE clause or the JOIN ... ON conditions of the
// query level that reads it hold, as top-level AND conjuncts, `column =
// value` for each of the scope's columns, where the column is the table's
// (qualified with its alias or name, or unqualified) and the value is a
// constant equal to the caller's value (compared canonically, as identity
// values are) or a parameter whose bound value is. Anything else (an OR, a
// condition in another query level, a comparison with an expression) leaves
// the reference unrestricted: the finding errs towards reporting.
//
// Two steps so that a prepared statement is analysed once and judged at each
// Bind: analyse_coverage() reads the tree (identity-free), evaluate_coverage()
// compares with the caller and the bound values.
//
// Pure; analyse_coverage parses, so it needs kRequiredStackBytes of stack and
// text that passed the rewriter's statement limits.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"

namespace tenantgate::rewriter {

// A value a statement compares a policy column with.
struct CoverageValue {
  std::string constant;  // as the parser reads it (when param == 0)
  int param = 0;         // $n, 1-based; 0 for a constant
  friend bool operator==(const CoverageValue&, const CoverageValue&) = default;
};

// One table a statement touches.
struct TableReference {
  policy::QualifiedName table;
  // The policy applied: a scope name (tenant, owner, tenant_owner, shared,
  // deny), "default" (not listed: default_action), "catalog" or
  // "denied_catalog".
  std::string policy;
  bool written = false;   // an UPDATE/DELETE target (read through its WHERE)
  bool inserted = false;  // an INSERT target (checked by the write rules, not read)
  // For tenant/owner scopes: the values the statement compares each scope
  // column with in the reading query level.
  std::string tenant_column;
  std::vector<CoverageValue> tenant_values;
  std::string owner_column;
  std::vector<CoverageValue> owner_values;
};

struct CoverageShape {
  std::vector<TableReference> tables;  // in the order they appear
};

// nullopt when the text does not parse.
[[nodiscard]] std::optional<CoverageShape> analyse_coverage(std::string_view sql,
                                                            const policy::Policy& policy,
                                                            std::string_view database);

// A scoped reference the statement does not restrict to the caller.
struct MissingPredicate {
  std::string table;                 // schema.name
  std::vector<std::string> columns;  // the scope columns without a caller condition
  friend bool operator==(const MissingPredicate&, const MissingPredicate&) = default;
};

// The scoped references of `shape` that are not restricted to `identity`.
// `params` holds the text values bound to $1..$n (nullopt: NULL, binary or
// unknown, which never matches); a statement judged without its parameters
// passes an empty span. INSERT targets are not reads and never missing.
[[nodiscard]] std::vector<MissingPredicate> evaluate_coverage(
    const CoverageShape& shape, const policy::Identity& identity,
    std::span<const std::optional<std::string>> params = {});

}  // namespace tenantgate::rewriter
