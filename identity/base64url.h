// Base64url without padding (RFC 7515 section 2, RFC 4648 section 5), the
// encoding of every part of a compact JWS and of JWK key material.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tenantgate::identity {

// Decodes strictly: only the 64 URL-safe characters, no '=' padding, no white
// space, a length that is not 1 mod 4, and unused trailing bits zero, so that
// every byte string has exactly one accepted spelling. nullopt otherwise.
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);

// The canonical spelling that base64url_decode accepts.
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

}  // namespace tenantgate::identity
