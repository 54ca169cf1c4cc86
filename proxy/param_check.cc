#include "proxy/param_check.h"

#include <fmt/format.h>

#include <cstdint>

namespace tenantgate::proxy {
namespace {

// Decodes a binary-format parameter into the canonical text of `type`:
// int2/int4/int8 big-endian integers, 16-byte uuids, text as its bytes.
std::optional<std::string> decode_binary(policy::ValueType type, std::string_view raw) {
  switch (type) {
    case policy::ValueType::kInt: {
      if (raw.size() != 2 && raw.size() != 4 && raw.size() != 8) return std::nullopt;
      uint64_t v = 0;
      for (unsigned char c : raw) v = (v << 8) | c;
      int64_t value;
      if (raw.size() == 2) {
        value = static_cast<int16_t>(v);
      } else if (raw.size() == 4) {
        value = static_cast<int32_t>(v);
      } else {
        value = static_cast<int64_t>(v);
      }
      return std::to_string(value);
    }
    case policy::ValueType::kUuid: {
      if (raw.size() != 16) return std::nullopt;
      std::string out;
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += fmt::format("{:02x}", static_cast<unsigned char>(raw[i]));
      }
      return out;
    }
    case policy::ValueType::kText:
      return policy::canonical_value(type, raw);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> check_bind_params(const BindMessage& bind,
                                             const std::vector<rewriter::ParamCheck>& checks,
                                             const policy::Identity& identity) {
  for (const auto& check : checks) {
    const bool tenant = check.field == rewriter::IdentityField::kTenant;
    const policy::TypedValue* expected =
        tenant ? &identity.tenant : (identity.user ? &*identity.user : nullptr);
    const auto refuse = [&](std::string_view why) {
      return fmt::format(
          "new row violates tenantgate policy for table \"{}\": {} (${} for column "
          "\"{}\")",
          check.table, why, check.param_number, check.column);
    };
    if (!expected) return refuse("the connection has no user identity");
    const auto index = static_cast<std::size_t>(check.param_number - 1);
    if (check.param_number < 1 || index >= bind.params.size()) return refuse("parameter missing");
    const auto& value = bind.params[index];
    if (!value) return refuse("NULL is not the caller's value");
    int16_t format = 0;
    if (bind.param_formats.size() == 1) {
      format = bind.param_formats[0];
    } else if (index < bind.param_formats.size()) {
      format = bind.param_formats[index];
    }
    std::optional<std::string> canonical = format == 0
                                               ? policy::canonical_value(expected->type, *value)
                                               : decode_binary(expected->type, *value);
    if (!canonical || *canonical != expected->value) {
      return refuse(tenant ? "the value is not the caller's tenant"
                           : "the value is not the caller's user");
    }
  }
  return std::nullopt;
}

}  // namespace tenantgate::proxy
