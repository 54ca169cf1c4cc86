#include "rewriter/identity_literal.h"

namespace tenantgate::rewriter {

Markers make_markers(std::string_view sql) {
  // Deterministic: the same statement always gets the same markers, so that
  // rewrites are reproducible; the suffix only changes when the statement
  // itself contains the marker text.
  for (unsigned nonce = 0;; ++nonce) {
    const std::string suffix = nonce == 0 ? "" : std::to_string(nonce);
    Markers m{"tg_tenant_value" + suffix, "tg_user_value" + suffix};
    if (sql.find(m.tenant) == std::string_view::npos &&
        sql.find(m.user) == std::string_view::npos) {
      return m;
    }
  }
}

std::string claim_marker_prefix(const Markers& markers) { return markers.tenant + "_claim"; }

std::string claim_marker(const Markers& markers, std::size_t k) {
  return claim_marker_prefix(markers) + std::to_string(k) + "_";
}

std::string render_claim(const policy::Identity& identity, std::string_view name) {
  auto it = identity.claims.find(name);
  if (it == identity.claims.end()) return "NULL";
  std::optional<std::string> text = policy::canonical_value(policy::ValueType::kText, it->second);
  if (!text) return "NULL";  // empty, NUL bytes or invalid UTF-8: no usable value
  return render_literal(policy::TypedValue{*text, policy::ValueType::kText});
}

std::string quoted_marker(std::string_view marker) {
  std::string out;
  out.reserve(marker.size() + 2);
  out += '\'';
  out += marker;
  out += '\'';
  return out;
}

std::string render_literal(const policy::TypedValue& value) {
  if (value.type == policy::ValueType::kInt) return value.value;
  const bool backslash = value.value.find('\\') != std::string::npos;
  std::string out;
  out.reserve(value.value.size() + 4);
  if (backslash) out += 'E';
  out += '\'';
  for (const char c : value.value) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

}  // namespace tenantgate::rewriter
