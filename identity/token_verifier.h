// Verifying a signed identity token (a JWT in compact JWS form, RFC 7519)
// into the caller it names: a pure function of (token, keys, settings, now).
//
// Checks, in order, each refusal naming its check: size, format (three
// base64url parts), header (a JSON object; no "crit"), alg (known, and the
// one the selected key allows), kid, signature, payload (a JSON object
// without duplicate members), exp (required), nbf, iat, lifetime, iss, aud,
// tenant, user. Nothing of the payload is read before the signature holds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "identity/token_keys.h"
#include "policy/identity.h"

namespace tenantgate::identity {

// Longest token accepted, in bytes; larger ones are refused unread.
inline constexpr size_t kMaxTokenBytes = 8192;

struct TokenSettings {
  std::string issuer;              // empty: "iss" is not checked
  std::string audience;            // empty: "aud" is not checked
  int64_t leeway_s = 30;           // clock skew allowed on exp, nbf and iat
  int64_t max_lifetime_s = 86400;  // exp - iat (or exp - now without iat); 0: no limit
  std::string tenant_claim = "tenant";
  std::string user_claim = "sub";
  policy::ValueType tenant_type = policy::ValueType::kText;
  policy::ValueType user_type = policy::ValueType::kInt;
};

// The caller a token names.
struct VerifiedToken {
  policy::TypedValue tenant;
  std::optional<policy::TypedValue> user;  // absent when the token has no user claim
  // As policy::Identity::claims: scalar claims other than the registered ones.
  std::map<std::string, std::string, std::less<>> claims;
  int64_t expires_at = 0;  // "exp", seconds since the epoch
};

struct TokenRefusal {
  std::string check;   // "signature", "exp", ...
  std::string detail;  // what was wrong; never contains the token itself

  // "<check> check failed: <detail>"
  [[nodiscard]] std::string message() const { return check + " check failed: " + detail; }
};

class [[nodiscard]] TokenResult {
 public:
  TokenResult(std::shared_ptr<const VerifiedToken> token) : v_(std::move(token)) {}
  TokenResult(TokenRefusal refusal) : v_(std::move(refusal)) {}

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  // Requires ok().
  [[nodiscard]] const std::shared_ptr<const VerifiedToken>& token() const {
    return std::get<0>(v_);
  }
  // Requires !ok().
  [[nodiscard]] const TokenRefusal& refusal() const { return std::get<1>(v_); }

 private:
  std::variant<std::shared_ptr<const VerifiedToken>, TokenRefusal> v_;
};

// Verifies `token` against `keys` and `settings` at time `now_s` (seconds
// since the epoch). Thread-safe; does no I/O.
[[nodiscard]] TokenResult verify_token(std::string_view token, const KeySet& keys,
                                       const TokenSettings& settings, int64_t now_s);

}  // namespace tenantgate::identity
