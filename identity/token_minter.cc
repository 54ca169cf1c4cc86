// Minting: serialise, encode, sign.

#include "identity/token_minter.h"

#include "identity/base64url.h"
#include "identity/jws_signature.h"

namespace tenantgate::identity {

std::optional<std::string> mint_hs_token(Algorithm alg, std::string_view secret,
                                         const nlohmann::json& claims) {
  if (!key_allows(KeyKind::kHmac, alg) || !claims.is_object()) return std::nullopt;
  const nlohmann::json header = {{"alg", std::string(algorithm_name(alg))}, {"typ", "JWT"}};
  std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  auto tag = hmac_sign(alg, secret, input);
  if (!tag) return std::nullopt;
  return input + "." + base64url_encode(*tag);
}

}  // namespace tenantgate::identity
