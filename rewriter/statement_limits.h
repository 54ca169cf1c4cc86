// Cheap checks that run before libpg_query sees a statement: libpg_query
// recurses once per level of nesting without a stack-depth check, so anything
// that could nest deeper than the rewrite thread's stack allows is refused
// with 54001 before it is parsed.
#pragma once

#include <cstddef>
#include <string_view>

#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

// An upper bound on how deeply a statement can nest once parsed: every level
// of a parse tree needs at least one keyword/identifier, operator character or
// bracket, while literals, commas and dots build flat lists. Computed by a
// small scanner that follows PostgreSQL's lexical rules for comments, quoted
// identifiers, string constants (standard_conforming_strings = on), E'' and
// dollar-quoted strings.
struct NestingEstimate {
  std::size_t words = 0;           // identifiers and keywords
  std::size_t operator_chars = 0;  // each of + - * / < > = ~ ! @ # % ^ & | ` ? :
  std::size_t max_brackets = 0;    // deepest nesting of ( and [
  [[nodiscard]] std::size_t units() const { return words + operator_chars + max_brackets; }
};

[[nodiscard]] NestingEstimate estimate_nesting(std::string_view sql);

}  // namespace tenantgate::rewriter
