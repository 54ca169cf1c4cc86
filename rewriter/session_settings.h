// The session settings a tenant may change, with SET or in the start-up
// packet: the one list both paths use.
#pragma once

#include <string_view>

namespace tenantgate::rewriter {

// True for a setting (lower-case name) that changes nothing about which rows
// a statement sees or how the server reads a rewritten statement. Includes
// the SET TRANSACTION / SESSION CHARACTERISTICS pseudo-names.
[[nodiscard]] bool is_settable_setting(std::string_view name);

// False when `value` would change how the server reads the statements the
// rewriter checked: client_encoding other than UTF8 (or SQL_ASCII, which
// converts nothing), standard_conforming_strings other than on. True for
// every other setting.
[[nodiscard]] bool setting_value_allowed(std::string_view name, std::string_view value);

}  // namespace tenantgate::rewriter
