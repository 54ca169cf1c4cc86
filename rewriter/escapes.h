// The control characters that backslash escapes name in PostgreSQL E''
// strings, JSON and the COPY text format alike: \b \f \n \r \t.
#pragma once

#include <optional>

namespace tenantgate::rewriter {

[[nodiscard]] constexpr std::optional<char> control_escape(char e) {
  switch (e) {
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return std::nullopt;
  }
}

}  // namespace tenantgate::rewriter
