// The keys that tokens are verified with, and the algorithm each key allows.
//
// The key decides the algorithm, never the token's header: an HMAC secret
// verifies HS256/HS384/HS512, an EC P-256 public key ES256 only, an RSA
// public key RS256 only. A token whose header names another algorithm is
// refused before any signature is computed, which closes the "HS256 signed
// with the public key as the secret" confusion and "alg": "none".
//
// A KeySet is immutable after loading and safe to share between threads.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tenantgate::identity {

enum class Algorithm { kHS256, kHS384, kHS512, kES256, kRS256 };

// The JWA name ("HS256", ...) or nullopt for any other, "none" included.
[[nodiscard]] std::optional<Algorithm> parse_algorithm(std::string_view name);
[[nodiscard]] std::string_view algorithm_name(Algorithm alg);

enum class KeyKind {
  kHmac,    // a shared secret: HS256, HS384, HS512
  kEcP256,  // an EC public key on P-256: ES256
  kRsa,     // an RSA public key of at least 2048 bits: RS256
};

[[nodiscard]] std::string_view key_kind_name(KeyKind kind);
[[nodiscard]] bool key_allows(KeyKind kind, Algorithm alg);

// Shortest HMAC secret accepted, in bytes (RFC 7518 section 3.2: at least
// the hash size; HS256's is 32).
inline constexpr size_t kMinSecretBytes = 32;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const;
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const;
};

struct VerificationKey {
  std::string kid;  // empty: the key has no id (a secret or a PEM file)
  KeyKind kind = KeyKind::kHmac;
  std::string secret;  // kHmac only
  // kHmac: HMAC contexts keyed with `secret` for HS256, HS384, HS512, which
  // each verification copies (EVP_MAC_CTX_dup) instead of fetching the
  // digest and setting the key again. Read-only after loading.
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> hmac[3];
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey;  // kEcP256 and kRsa
};

struct KeyError {
  std::string reason;  // e.g. "jwks: key 2 (kid \"old\"): EC key is not on P-256"
};

class KeySet {
 public:
  // An HMAC secret of at least kMinSecretBytes.
  [[nodiscard]] static std::variant<KeySet, KeyError> from_secret(std::string secret);
  // A PEM "PUBLIC KEY" (SubjectPublicKeyInfo), EC P-256 or RSA >= 2048 bits.
  [[nodiscard]] static std::variant<KeySet, KeyError> from_pem(std::string_view pem);
  // A JWK Set (RFC 7517 section 5): EC P-256 and RSA public keys, each with a
  // distinct "kid". Keys marked "use": "enc" are skipped; a key's "alg",
  // when present, must be the algorithm its type allows; private members
  // ("d", ...) are refused, as are other key types, so that a set never
  // verifies with a key the operator did not mean.
  [[nodiscard]] static std::variant<KeySet, KeyError> from_jwks(std::string_view json);

  // The key for a token's "kid" (nullopt: the header named none). A set of
  // one key without an id serves every token; with ids, "kid" must match
  // one. Returns nullptr when no key fits.
  [[nodiscard]] const VerificationKey* select(const std::optional<std::string>& kid) const;

  [[nodiscard]] size_t size() const { return keys_.size(); }

 private:
  std::vector<VerificationKey> keys_;
};

}  // namespace tenantgate::identity
