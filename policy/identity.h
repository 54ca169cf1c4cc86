// The caller's identity as the rewriter sees it: typed tenant and user values.
//
// Values are validated and canonicalised once, at connection start-up, so that
// what the rewriter embeds in SQL is always a well-formed constant of its type.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tenantgate::policy {

enum class ValueType {
  kText,  // any UTF-8 text without NUL bytes
  kInt,   // a signed 64-bit integer in decimal
  kUuid,  // 8-4-4-4-12 hex digits, canonicalised to lower case
};

// Parses "text" | "int" | "uuid".
[[nodiscard]] std::optional<ValueType> parse_value_type(std::string_view name);
[[nodiscard]] std::string_view value_type_name(ValueType type);

// Longest text value accepted, in bytes.
inline constexpr std::size_t kMaxTextValueBytes = 1024;

// Returns the canonical spelling of `raw` as a value of `type`, or nullopt when
// `raw` is not a well-formed value of that type (including text with NUL bytes
// or invalid UTF-8, and integers out of the int64 range).
//
//   int:  optional sign and decimal digits only (no spaces), within int64;
//         canonical form has no '+' and no leading zeros ("-0" -> "0").
//   uuid: exactly 8-4-4-4-12 hex digits, either case; canonical is lower case.
//         Braces, "urn:uuid:" and the 32-digit form are refused.
//   text: strict UTF-8 without NUL, 1..kMaxTextValueBytes bytes, kept verbatim
//         (control characters are allowed: the rewriter embeds values as
//         escaped literals). Empty is refused for every type: an empty
//         identity parameter is treated as a missing one.
[[nodiscard]] std::optional<std::string> canonical_value(ValueType type, std::string_view raw);

struct TypedValue {
  std::string value;  // canonical, see canonical_value
  ValueType type = ValueType::kText;
};

struct AppCatalog;  // app_catalog.h

struct Identity {
  TypedValue tenant;
  std::optional<TypedValue> user;  // absent: statements touching owner scopes are refused
  std::string database;            // the connection's database, for three-part names
  // The app functions of that database, for the function rules; null is
  // read as an empty catalog (the proxy refuses a session whose catalog
  // could not be loaded, so it never rewrites with null).
  std::shared_ptr<const AppCatalog> catalog;
  // Claims of the caller's verified token other than the registered ones
  // (exp, nbf, iat, iss, aud, jti), scalar values as text: strings verbatim,
  // numbers and booleans in their JSON spelling. Empty without a token.
  std::map<std::string, std::string, std::less<>> claims;
};

}  // namespace tenantgate::policy
