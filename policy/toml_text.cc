#include "policy/toml_text.h"

#include <algorithm>
#include <sstream>

namespace tenantgate::policy {

std::variant<toml::value, TomlSyntaxError> parse_toml(std::string_view text,
                                                      const std::string& file_name) {
  try {
    std::istringstream in{std::string(text)};
    return toml::parse(in, file_name);
  } catch (const toml::syntax_error& e) {
    // what() is a multi-line report; its first line is the reason.
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (what.starts_with("[error] ")) what.erase(0, 8);
    if (what.starts_with("toml::")) what.erase(0, std::min(what.size(), what.find(": ") + 2));
    return TomlSyntaxError{static_cast<unsigned>(e.location().line()), "invalid TOML: " + what};
  }
}

}  // namespace tenantgate::policy
