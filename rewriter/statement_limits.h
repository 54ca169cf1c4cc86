// Cheap checks that run before libpg_query sees a statement: libpg_query
// recurses once per level of nesting without a stack-depth check, so anything
// that could nest deeper than the rewrite thread's stack allows is refused
// with 54001 before it is parsed.
#pragma once

#include <cstddef>
#include <optional>
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
  // Counted by the same scan, for the caps below: the keywords UNION,
  // INTERSECT and EXCEPT (unquoted, any case), and statements (runs of
  // tokens between semicolons; an empty statement does not count).
  std::size_t set_operations = 0;
  std::size_t statements = 0;
  [[nodiscard]] std::size_t units() const { return words + operator_chars + max_brackets; }
};

[[nodiscard]] NestingEstimate estimate_nesting(std::string_view sql);

// The 54001 refusal for a query string over one of Options' caps
// (max_nesting_units, max_set_operations, max_statements), or nullopt.
// Linear in the text and allocation-free unless it refuses: it runs before
// the parse so that a refusal costs microseconds, not the parse's seconds.
[[nodiscard]] std::optional<Refusal> check_statement_limits(std::string_view sql,
                                                            const Options& options);

// Measurements behind kMaxNestingUnits (rewriter.h), on this machine, with
// /tmp throwaway drivers calling pg_query_parse_protobuf and Rewriter::rewrite
// on a pthread of a given stack size:
//   - `SELECT 1+1+...` and `'a'||'a'||...`: the parse crashes an 8 MB stack
//     at ~4,350 levels (~1.9 KB per unit); the whole pipeline crashes at the
//     same depth, so the parse dominates. 64 MB: ~35,000 levels.
//   - `NOT NOT ...`: ~5,000 levels on 8 MB (~1.6 KB per unit).
//   - `... UNION SELECT ...`: ~8,700 arms on 8 MB (4 units per arm).
//   - nested parentheses, function calls, CASE, subqueries: bison's own stack
//     limit ("memory exhausted", 42601) comes first, at ~10,000 levels.
//   - At 20,000 units every shape above runs through the pipeline on 48 MB.
// CPU, whole pipeline (bench/rewriter_bench.cc BM_RewriteHostile, this
// machine, quiet; a loaded machine doubles them), a typical statement ~25 us:
//   - 4,990-arm UNION ending in a denied table (just under the nesting
//     limit): 56 ms before the set-operation cap, 0.2 ms refused by it;
//     500 arms: 8 ms. 999 statements in one query string: 23 ms; 4,990: 76 ms.
//   - `+1` chain of 19,990: 33 ms. CASE with 4,990 arms: 26 ms. `OR id = 1`
//     chain of 4,990 (about the most the nesting limit allows): 86 ms.
//   - Flat literal lists are free in the nesting estimate and cost ~3.8 us
//     per element: IN (...) of 100,000: 0.42 s; of 500,000 (1 MB, the
//     default max_statement_bytes): 1.9 s. Only the byte limit bounds them;
//     their cost falls on the tenant's own analysis budget (proxy/
//     analysis_pool.h), off the event loops.

}  // namespace tenantgate::rewriter
