// A thin wrapper over libpg_query 15-4.0.0: parse SQL into the C++ protobuf
// tree (read from libpg_query's JSON output, see json_tree.h), deparse a statement tree back into
// SQL, and verify a deparse by parsing it again and comparing trees (ignoring source locations).
//
// All functions recurse over the tree: call them on a thread with
// kRequiredStackBytes of stack, and only on text that passed
// estimate_nesting().
#pragma once

#include <google/protobuf/arena.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg_query.pb.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

// Parses `sql` (NUL-free). On a syntax error returns a 42601 refusal with
// libpg_query's message. The tree has no source positions ("location" fields
// are left unset); RawStmt.stmt_location and stmt_len are kept.
//
// With `range_vars`, the positions of the tree's RangeVar nodes are kept there
// (left empty for the few statements parsed through the protobuf output).
using RangeVarPositions = std::vector<std::pair<const google::protobuf::Message*, int>>;
[[nodiscard]] std::optional<Refusal> parse_sql(const std::string& sql, pg_query::ParseResult* out,
                                               RangeVarPositions* range_vars = nullptr);

// parse_sql through libpg_query's protobuf output (slower; parse_sql uses it
// for the statements whose JSON output is ambiguous). Same tree, same refusals.
[[nodiscard]] std::optional<Refusal> parse_sql_protobuf(const std::string& sql,
                                                        pg_query::ParseResult* out);

// Deparses one statement, then re-parses the text and compares the result with
// `stmt`; any difference (a known deparse defect) is a 0A000 refusal.
// On success *out is SQL that parses back into exactly `stmt`.
[[nodiscard]] std::optional<Refusal> deparse_verified(const pg_query::Node& stmt, std::string* out);

// True when `text` parses into exactly one statement equal to `stmt`: the
// check deparse_verified makes, for text the rewriter edited itself.
[[nodiscard]] bool parses_to(const std::string& text, const pg_query::Node& stmt);

// Arena settings for a statement's trees: parsing, walking and verifying
// allocate thousands of small messages that all die together.
[[nodiscard]] google::protobuf::ArenaOptions tree_arena_options();

// True when the two trees are equal ignoring location, stmt_location and stmt_len.
[[nodiscard]] bool same_tree(const google::protobuf::Message& a,
                             const google::protobuf::Message& b);

}  // namespace tenantgate::rewriter
