#include "proxy/startup_settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

#include "proxy/startup_identity.h"

namespace tenantgate::proxy {
namespace {

// Settings that change nothing about which rows a statement sees or how the
// server reads a rewritten statement (the SET allow-list of the rewriter,
// without the transaction pseudo-settings).
constexpr std::array<std::string_view, 16> kAllowedSettings = {
    "application_name",
    "client_encoding",
    "datestyle",
    "intervalstyle",
    "timezone",
    "extra_float_digits",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "standard_conforming_strings",
    "bytea_output",
    "client_min_messages",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_transaction_deferrable",
    "geqo",
};

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
  if (std::find(kAllowedSettings.begin(), kAllowedSettings.end(), name) ==
      kAllowedSettings.end()) {
    return fmt::format("the start-up setting \"{}\" is not allowed through tenantgate", name);
  }
  const std::string v = fold(value, false);
  if (name == "client_encoding") {
    // Encoding names compare as PostgreSQL compares them: letters and digits
    // only. SQL_ASCII is accepted because the server then converts nothing
    // and checks the bytes as UTF-8; multi-byte client encodings whose
    // characters can contain a quote or backslash byte (SJIS, BIG5, GBK...)
    // are what this refuses.
    std::string clean;
    for (char c : v) {
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) clean += c;
    }
    if (clean != "utf8" && clean != "unicode" && clean != "sqlascii") {
      return std::string("client_encoding must be UTF8 through tenantgate");
    }
  }
  if (name == "standard_conforming_strings" && v != "on" && v != "true" && v != "1" &&
      v != "yes") {
    return std::string("standard_conforming_strings must be on through tenantgate");
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
