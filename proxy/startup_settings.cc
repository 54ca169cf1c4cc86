#include "proxy/startup_settings.h"

#include <fmt/format.h>

#include <string_view>
#include <vector>

#include "proxy/startup_identity.h"
#include "rewriter/session_settings.h"

namespace tenantgate::proxy {
namespace {

std::string fold(std::string_view name, bool dashes) {
  std::string out;
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (dashes && c == '-') c = '_';
    out += c;
  }
  return out;
}

std::optional<std::string> check_setting(const std::string& name, std::string_view value) {
  // The transaction pseudo-settings of SET have no start-up spelling.
  if (!rewriter::is_settable_setting(name) || name == "TRANSACTION" ||
      name == "SESSION CHARACTERISTICS") {
    return fmt::format("the start-up setting \"{}\" is not allowed through tenantgate", name);
  }
  if (!rewriter::setting_value_allowed(name, value)) {
    return fmt::format("{} must be {} through tenantgate", name,
                       name == "client_encoding" ? "UTF8" : "on");
  }
  return std::nullopt;
}

std::optional<std::string> check_options(const std::string& options) {
  std::vector<std::string> args;
  if (!split_startup_options(options, args)) {
    return std::string("\"options\" ends with a lone backslash");
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    std::string_view setting;
    if (arg == "-c") {
      if (i + 1 == args.size()) return std::string("\"options\" ends after -c");
      setting = args[++i];
    } else if (arg.starts_with("-c")) {
      setting = std::string_view(arg).substr(2);
    } else if (arg.starts_with("--") && arg.size() > 2) {
      setting = std::string_view(arg).substr(2);
    } else {
      // Other backend switches (-B, -e, -d, ...) are server settings by
      // another name.
      return fmt::format("the option \"{}\" is not allowed through tenantgate", arg);
    }
    const auto eq = setting.find('=');
    if (eq == std::string_view::npos) {
      return fmt::format("the option \"{}\" has no value", setting);
    }
    if (auto error = check_setting(fold(setting.substr(0, eq), true), setting.substr(eq + 1))) {
      return error;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_startup_settings(const StartupParams& params) {
  for (const auto& [name, value] : params) {
    if (name == "user" || name == "database") continue;
    if (name == "options") {
      if (auto error = check_options(value)) return error;
      continue;
    }
    if (name == "replication") {
      return std::string("replication connections are not allowed through tenantgate");
    }
    if (auto error = check_setting(fold(name, false), value)) return error;
  }
  return std::nullopt;
}

}  // namespace tenantgate::proxy
