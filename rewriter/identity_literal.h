// Identity values as SQL constants.
//
// Rewrites are built once with markers in place of identity values, so that a
// cached rewrite never contains any session's identity; render_literal() turns
// the caller's value into the constant that replaces a marker.
#pragma once

#include <string>
#include <string_view>

#include "policy/identity.h"

namespace tenantgate::rewriter {

// The string-constant values that stand for the tenant and the user in a tree
// under construction. Chosen so that neither occurs in the statement's text.
struct Markers {
  std::string tenant;
  std::string user;
};

[[nodiscard]] Markers make_markers(std::string_view sql);

// The SQL constant for `value`: an integer literal for kInt, otherwise a string
// literal ('...' with quotes doubled, or E'...' with backslashes doubled when
// the value contains a backslash) that reads the same whatever
// standard_conforming_strings says. `value` is canonical (canonical_value).
[[nodiscard]] std::string render_literal(const policy::TypedValue& value);

// The marker for the k-th claim a statement uses (a string constant cast to
// text in the tree); its prefix never occurs in the statement's text.
[[nodiscard]] std::string claim_marker(const Markers& markers, std::size_t k);
[[nodiscard]] std::string claim_marker_prefix(const Markers& markers);

// A claim's value as a text constant: render_literal of the text, or NULL.
[[nodiscard]] std::string render_claim(const policy::Identity& identity, std::string_view name);

// The marker as it appears in deparsed SQL.
[[nodiscard]] std::string quoted_marker(std::string_view marker);

}  // namespace tenantgate::rewriter
