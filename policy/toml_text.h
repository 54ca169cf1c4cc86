// Parsing TOML text for the two loaders (policy.toml and tenantgate.toml),
// with a syntax error reduced to a line number and a one-line reason.
#pragma once

#include <string>
#include <string_view>
#include <toml.hpp>
#include <variant>

namespace tenantgate::policy {

struct TomlSyntaxError {
  unsigned line = 0;
  std::string reason;  // "invalid TOML: ..."
};

[[nodiscard]] std::variant<toml::value, TomlSyntaxError> parse_toml(std::string_view text,
                                                                    const std::string& file_name);

}  // namespace tenantgate::policy
