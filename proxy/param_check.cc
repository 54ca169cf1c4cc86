#include "proxy/param_check.h"

#include <fmt/format.h>

#include <cstdint>

namespace tenantgate::proxy {
namespace {

// Decodes a binary-format parameter of type `oid` (the type the server reads
// it as) into the canonical text of `type`: big-endian integers of exactly
// the type's width, 16-byte uuids, text as its bytes. nullopt for a type
// outside `type`'s family or a value of the wrong size.
std::optional<std::string> decode_binary(policy::ValueType type, int32_t oid,
                                         std::string_view raw) {
  switch (type) {
    case policy::ValueType::kInt: {
      const std::size_t width = oid == kInt2Oid ? 2 : oid == kInt4Oid ? 4 : oid == kInt8Oid ? 8 : 0;
      if (width == 0 || raw.size() != width) return std::nullopt;
      uint64_t v = 0;
      for (unsigned char c : raw) v = (v << 8) | c;
      int64_t value;
      if (width == 2) {
        value = static_cast<int16_t>(v);
      } else if (width == 4) {
        value = static_cast<int32_t>(v);
      } else {
        value = static_cast<int64_t>(v);
      }
      return std::to_string(value);
    }
    case policy::ValueType::kUuid: {
      if (oid != kUuidOid || raw.size() != 16) return std::nullopt;
      std::string out;
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += fmt::format("{:02x}", static_cast<unsigned char>(raw[i]));
      }
      return out;
    }
    case policy::ValueType::kText:
      if (oid != kTextOid && oid != kVarcharOid) return std::nullopt;
      return policy::canonical_value(type, raw);
  }
  return std::nullopt;
}

const policy::TypedValue* expected_value(const rewriter::ParamCheck& check,
                                         const policy::Identity& identity) {
  if (check.field == rewriter::IdentityField::kTenant) return &identity.tenant;
  return identity.user ? &*identity.user : nullptr;
}

}  // namespace

int32_t identity_type_oid(policy::ValueType type) {
  switch (type) {
    case policy::ValueType::kText:
      return kTextOid;
    case policy::ValueType::kInt:
      return kInt8Oid;
    case policy::ValueType::kUuid:
      return kUuidOid;
  }
  return 0;
}

std::optional<std::string> declare_checked_param_types(std::vector<int32_t>& param_types,
                                                       std::vector<rewriter::ParamCheck>& checks,
                                                       const policy::Identity& identity) {
  // A Bind carries at most 65535 parameters (an Int16 count).
  constexpr int kMaxParams = 65535;
  for (auto& check : checks) {
    const policy::TypedValue* value = expected_value(check, identity);
    if (value == nullptr) continue;  // check_bind_params refuses it at Bind
    const auto refuse = [&] {
      return fmt::format(
          "permission denied: parameter ${} for column {} of table {} must have the type of the "
          "caller's {} ({})",
          check.param_number, check.column, check.table,
          check.field == rewriter::IdentityField::kTenant ? "tenant" : "user",
          policy::value_type_name(value->type));
    };
    if (check.param_number < 1 || check.param_number > kMaxParams) return refuse();
    const auto index = static_cast<std::size_t>(check.param_number - 1);
    if (index >= param_types.size()) param_types.resize(index + 1, 0);
    if (param_types[index] == 0) param_types[index] = identity_type_oid(value->type);
    if (!rewriter::declared_type_fits_identity(param_types[index], value->type) ||
        !rewriter::cast_fits_identity(check.cast, value->type)) {
      return refuse();
    }
    check.type_oid = param_types[index];
  }
  return std::nullopt;
}

std::optional<std::string> check_bind_params(const BindMessage& bind,
                                             const std::vector<rewriter::ParamCheck>& checks,
                                             const policy::Identity& identity) {
  for (const auto& check : checks) {
    const bool tenant = check.field == rewriter::IdentityField::kTenant;
    const policy::TypedValue* expected = expected_value(check, identity);
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
    std::optional<std::string> canonical =
        format == 0 ? policy::canonical_value(expected->type, *value)
                    : decode_binary(expected->type, check.type_oid, *value);
    if (!canonical || *canonical != expected->value) {
      return refuse(tenant ? "the value is not the caller's tenant"
                           : "the value is not the caller's user");
    }
  }
  return std::nullopt;
}

}  // namespace tenantgate::proxy
