// Computing and checking JWS signatures (RFC 7515 section 5, RFC 7518
// section 3) with OpenSSL. Stateless and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "identity/token_keys.h"

namespace tenantgate::identity {

// True when `signature` (the decoded third part of a compact JWS) signs
// `signing_input` ("<header>.<payload>" as sent) with `key` under `alg`.
// False when `key` does not allow `alg` (token_keys.h), whatever the bytes.
// HMAC tags are compared in constant time; ES256 signatures must be the
// 64-byte R || S form of RFC 7518 section 3.4.
[[nodiscard]] bool verify_signature(const VerificationKey& key, Algorithm alg,
                                    std::string_view signing_input, std::string_view signature);

// The HMAC tag of `signing_input` under an HS algorithm; nullopt for any
// other algorithm. Used to mint tokens (tenantgate token).
[[nodiscard]] std::optional<std::string> hmac_sign(Algorithm alg, std::string_view secret,
                                                   std::string_view signing_input);

}  // namespace tenantgate::identity
