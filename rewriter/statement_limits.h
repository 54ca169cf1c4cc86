// Cheap checks that run before libpg_query sees a statement: libpg_query
// recurses once per level of nesting without a stack-depth check, so anything
// that could nest deeper than the rewrite thread's stack allows is refused
// with 54001 before it is parsed.
#pragma once

#include <cstddef>
#include <string_view>

namespace tenantgate::rewriter {

// An upper bound on how deeply a statement can nest once parsed: every level
// of a parse tree needs at least one keyword/identifier, operator character or
// bracket, while literals, commas and dots build flat lists. Computed by a
// small scanner that follows PostgreSQL's lexical rules for comments, quoted
// identifiers, string constants (standard_conforming_strings = on), E'' and
// dollar-quoted strings.
struct NestingEstimate {
  std::size_t words = 0;          // identifiers and keywords
  std::size_t operator_chars = 0; // each of + - * / < > = ~ ! @ # % ^ & | ` ? :
  std::size_t max_brackets = 0;   // deepest nesting of ( and [
  [[nodiscard]] std::size_t units() const { return words + operator_chars + max_brackets; }
};

[[nodiscard]] NestingEstimate estimate_nesting(std::string_view sql);

// Measured on this machine (see the report in tests/rewriter/README or the
// commit message): libpg_query's parse-to-protobuf needs about 2 KB of stack
// per unit in the worst case (a chain of `+1`), so 8 MB of stack crashes at
// about 4,300 units. kMaxNestingUnits keeps the whole pipeline (parse, C++
// decode, walk, deparse, verify) within kRequiredStackBytes with a safety
// factor of at least 4.
inline constexpr std::size_t kMaxNestingUnits = 20000;

}  // namespace tenantgate::rewriter
