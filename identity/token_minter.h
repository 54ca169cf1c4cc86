// Making HS-signed identity tokens (tenantgate token): the counterpart of
// token_verifier for apps and tests that hold the shared secret.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "identity/token_keys.h"

namespace tenantgate::identity {

// "<header>.<payload>.<signature>" with header {"alg": <alg>, "typ": "JWT"}
// and `claims` (a JSON object) as the payload. nullopt when `alg` is not an
// HS algorithm or `claims` is not an object.
[[nodiscard]] std::optional<std::string> mint_hs_token(Algorithm alg, std::string_view secret,
                                                       const nlohmann::json& claims);

}  // namespace tenantgate::identity
