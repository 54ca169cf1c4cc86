#include "policy/identity.h"

#include <cstdint>
#include <limits>

namespace tenantgate::policy {

std::optional<ValueType> parse_value_type(std::string_view name) {
  if (name == "text") return ValueType::kText;
  if (name == "int") return ValueType::kInt;
  if (name == "uuid") return ValueType::kUuid;
  return std::nullopt;
}

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kText:
      return "text";
    case ValueType::kInt:
      return "int";
    case ValueType::kUuid:
      return "uuid";
  }
  return "unknown";
}

namespace {

// Decimal with an optional sign and nothing else: no spaces, no "0x", no
// exponent. Accumulates as a negative number so that INT64_MIN fits.
std::optional<std::string> canonical_int(std::string_view raw) {
  bool negative = false;
  if (!raw.empty() && (raw.front() == '+' || raw.front() == '-')) {
    negative = raw.front() == '-';
    raw.remove_prefix(1);
  }
  if (raw.empty()) return std::nullopt;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  int64_t acc = 0;  // always <= 0
  for (char c : raw) {
    if (c < '0' || c > '9') return std::nullopt;
    const int digit = c - '0';
    if (acc < (kMin + digit) / 10) return std::nullopt;
    acc = acc * 10 - digit;
  }
  if (!negative) {
    if (acc == kMin) return std::nullopt;
    acc = -acc;
  }
  return std::to_string(acc);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Only the hyphenated 8-4-4-4-12 form: braces, URNs and the 32-digit form are
// refused so that every accepted spelling maps to exactly one canonical one.
std::optional<std::string> canonical_uuid(std::string_view raw) {
  if (raw.size() != 36) return std::nullopt;
  std::string out(raw);
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (out[i] != '-') return std::nullopt;
      continue;
    }
    if (!is_hex(out[i])) return std::nullopt;
    if (out[i] >= 'A' && out[i] <= 'F') out[i] = static_cast<char>(out[i] - 'A' + 'a');
  }
  return out;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
// U+10FFFF. NUL is refused because PostgreSQL text cannot hold it.
bool valid_utf8_without_nul(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 == 0) return false;
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      cp = b0 & 0x1F;
      min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      cp = b0 & 0x0F;
      min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      cp = b0 & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::optional<std::string> canonical_value(ValueType type, std::string_view raw) {
  switch (type) {
    case ValueType::kInt:
      return canonical_int(raw);
    case ValueType::kUuid:
      return canonical_uuid(raw);
    case ValueType::kText:
      if (raw.empty() || raw.size() > kMaxTextValueBytes) return std::nullopt;
      if (!valid_utf8_without_nul(raw)) return std::nullopt;
      return std::string(raw);
  }
  return std::nullopt;
}

}  // namespace tenantgate::policy
