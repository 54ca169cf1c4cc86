#include "rewriter/session_settings.h"

#include <algorithm>
#include <array>
#include <string>

namespace tenantgate::rewriter {
namespace {

constexpr std::array<std::string_view, 20> kSettableSettings = {
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
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
    "TRANSACTION",
    "SESSION CHARACTERISTICS",
};

}  // namespace

bool is_settable_setting(std::string_view name) {
  return std::find(kSettableSettings.begin(), kSettableSettings.end(), name) !=
         kSettableSettings.end();
}

bool setting_value_allowed(std::string_view name, std::string_view value) {
  // Compared as PostgreSQL compares these names and values: case-insensitive,
  // encoding names by their letters and digits only.
  std::string clean;
  for (char c : value) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (name != "client_encoding" || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      clean += c;
    }
  }
  if (name == "client_encoding") {
    // Multi-byte client encodings whose characters can hold a quote or
    // backslash byte (SJIS, BIG5, GBK...) would make the server split a
    // statement where the rewriter did not.
    return clean == "utf8" || clean == "unicode" || clean == "sqlascii";
  }
  if (name == "standard_conforming_strings") {
    return clean == "on" || clean == "true" || clean == "1" || clean == "yes";
  }
  if (name == "client_min_messages") {
    // DEBUG messages describe the server's work (plans, statistics checks,
    // other transactions), not the caller's statement.
    return clean.rfind("debug", 0) != 0;
  }
  return true;
}

}  // namespace tenantgate::rewriter
