// Checks, at Bind, the parameter values that the rewriter said must equal the
// caller's identity (an INSERT's tenant column given as $1, for example).
// Text and binary parameter formats ("Bind", protocol 55.7) are both read.
//
// The server must read a checked parameter exactly as the check does, so the
// proxy fixes its type in the Parse it forwards (declare_checked_param_types):
// otherwise PostgreSQL infers it from wherever else the statement uses it
// (`$2::int4` in a CTE) and decodes the same bytes as another value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/identity.h"
#include "proxy/messages.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// pg_type OIDs of the types a checked parameter may be declared with.
inline constexpr int32_t kInt8Oid = 20;
inline constexpr int32_t kInt2Oid = 21;
inline constexpr int32_t kInt4Oid = 23;
inline constexpr int32_t kTextOid = 25;
inline constexpr int32_t kVarcharOid = 1043;
inline constexpr int32_t kUuidOid = 2950;

// The type a checked parameter is declared with when the client leaves it
// unspecified: text, int8 or uuid.
[[nodiscard]] int32_t identity_type_oid(policy::ValueType type);

// Makes the type of every checked parameter fully determined before the
// Parse goes to the server: a type the client left unspecified (0, or beyond
// the end of the list) becomes identity_type_oid of the identity it must
// equal, extending `param_types` with zeros (unspecified) as needed; each
// check records its parameter's type in type_oid. Returns the refusal
// message (42501) when a declared type or an explicit cast on the parameter
// does not fit the identity's type (a parameter checked against both a text
// tenant and an int user, for one), or the parameter number is past what a
// Bind can carry. Checks of a field the caller has no value for keep
// type_oid 0: check_bind_params refuses them.
[[nodiscard]] std::optional<std::string> declare_checked_param_types(
    std::vector<int32_t>& param_types, std::vector<rewriter::ParamCheck>& checks,
    const policy::Identity& identity);

// nullopt when every check passes; otherwise the refusal message (42501).
// A binary value is decoded as the check's type_oid says (int2/int4/int8 of
// exactly 2/4/8 bytes, 16-byte uuid, text as its bytes); a binary value for
// a check without a type is refused.
[[nodiscard]] std::optional<std::string> check_bind_params(
    const BindMessage& bind, const std::vector<rewriter::ParamCheck>& checks,
    const policy::Identity& identity);

}  // namespace tenantgate::proxy
