// The protocol messages tenantgate sends when it answers a caller statement
// itself (PostgreSQL protocol, "Message Formats"): CommandComplete, and the
// RowDescription and DataRow of a one-column text SHOW result.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tenantgate::proxy {

// CommandComplete ('C') with `tag`, e.g. "SET".
[[nodiscard]] std::string command_complete(std::string_view tag);

// RowDescription ('T') of one text column named `column`, DataRow ('D') with
// `value` (NULL when absent), CommandComplete "SHOW": what PostgreSQL sends
// for SHOW.
[[nodiscard]] std::string show_result(std::string_view column,
                                      const std::optional<std::string>& value);

}  // namespace tenantgate::proxy
