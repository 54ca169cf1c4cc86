// Loading keys: a secret, a PEM public key, or a JWK Set. Runs at start-up
// only; every problem is a KeyError that names the key.

#include "identity/token_keys.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <set>

#include "identity/base64url.h"
#include "identity/jose_json.h"

namespace tenantgate::identity {

namespace {

using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// The kind of a loaded public key, or an error naming what is wrong with it.
std::variant<KeyKind, std::string> classify(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &len) != 1) {
        return std::string("EC key without a named curve");
      }
      if (std::string_view(group, len) != "prime256v1" && std::string_view(group, len) != "P-256") {
        return "EC key on curve " + std::string(group, len) + " (only P-256 is supported: ES256)";
      }
      return KeyKind::kEcP256;
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return "RSA key of " + std::to_string(EVP_PKEY_get_bits(key)) +
               " bits (at least 2048 are required)";
      }
      return KeyKind::kRsa;
    default:
      return std::string("unsupported key type (expected EC P-256 or RSA)");
  }
}

std::optional<std::string> member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::variant<Pkey, std::string> ec_from_jwk(const nlohmann::json& jwk) {
  const auto crv = member(jwk, "crv");
  if (crv != "P-256") return "EC key on curve " + crv.value_or("(none)") + " (only P-256)";
  const auto x = member(jwk, "x");
  const auto y = member(jwk, "y");
  const auto xb = x ? base64url_decode(*x) : std::nullopt;
  const auto yb = y ? base64url_decode(*y) : std::nullopt;
  if (!xb || !yb || xb->size() != 32 || yb->size() != 32) {
    return std::string("EC key without 32-byte base64url \"x\" and \"y\"");
  }
  std::string point = "\x04" + *xb + *yb;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  const bool ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
                  EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) return std::string("EC key whose point is not on P-256");
  Pkey owned(key);
  // fromdata does not check that the point is on the curve; a check context does.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr);
  const bool on_curve = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!on_curve) return std::string("EC key whose point is not on P-256");
  return owned;
}

std::variant<Pkey, std::string> rsa_from_jwk(const nlohmann::json& jwk) {
  const auto n = member(jwk, "n");
  const auto e = member(jwk, "e");
  const auto nb = n ? base64url_decode(*n) : std::nullopt;
  const auto eb = e ? base64url_decode(*e) : std::nullopt;
  if (!nb || !eb || nb->empty() || eb->empty()) {
    return std::string("RSA key without base64url \"n\" and \"e\"");
  }
  BIGNUM* bn_n = BN_bin2bn(reinterpret_cast<const unsigned char*>(nb->data()),
                           static_cast<int>(nb->size()), nullptr);
  BIGNUM* bn_e = BN_bin2bn(reinterpret_cast<const unsigned char*>(eb->data()),
                           static_cast<int>(eb->size()), nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM* params = nullptr;
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = nullptr;
  bool ok = bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1 &&
            (params = OSSL_PARAM_BLD_to_param(bld)) != nullptr;
  if (ok) {
    ctx = EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr);
    ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
         EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn_n);
  BN_free(bn_e);
  if (!ok) return std::string("RSA key that OpenSSL does not accept");
  return Pkey(key);
}

}  // namespace

void PkeyDeleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
void MacCtxDeleter::operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  if (name == "HS256") return Algorithm::kHS256;
  if (name == "HS384") return Algorithm::kHS384;
  if (name == "HS512") return Algorithm::kHS512;
  if (name == "ES256") return Algorithm::kES256;
  if (name == "RS256") return Algorithm::kRS256;
  return std::nullopt;
}

std::string_view algorithm_name(Algorithm alg) {
  switch (alg) {
    case Algorithm::kHS256:
      return "HS256";
    case Algorithm::kHS384:
      return "HS384";
    case Algorithm::kHS512:
      return "HS512";
    case Algorithm::kES256:
      return "ES256";
    case Algorithm::kRS256:
      return "RS256";
  }
  return "?";
}

std::string_view key_kind_name(KeyKind kind) {
  switch (kind) {
    case KeyKind::kHmac:
      return "an HMAC secret (HS256, HS384, HS512)";
    case KeyKind::kEcP256:
      return "an EC P-256 public key (ES256)";
    case KeyKind::kRsa:
      return "an RSA public key (RS256)";
  }
  return "?";
}

bool key_allows(KeyKind kind, Algorithm alg) {
  switch (kind) {
    case KeyKind::kHmac:
      return alg == Algorithm::kHS256 || alg == Algorithm::kHS384 || alg == Algorithm::kHS512;
    case KeyKind::kEcP256:
      return alg == Algorithm::kES256;
    case KeyKind::kRsa:
      return alg == Algorithm::kRS256;
  }
  return false;
}

std::variant<KeySet, KeyError> KeySet::from_secret(std::string secret) {
  if (secret.size() < kMinSecretBytes) {
    return KeyError{"the secret has " + std::to_string(secret.size()) + " bytes; at least " +
                    std::to_string(kMinSecretBytes) + " are required"};
  }
  KeySet set;
  VerificationKey key;
  key.kind = KeyKind::kHmac;
  key.secret = std::move(secret);
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!mac) return KeyError{"OpenSSL has no HMAC"};
  const char* digests[3] = {"SHA256", "SHA384", "SHA512"};
  for (int i = 0; i < 3; ++i) {
    key.hmac[i].reset(EVP_MAC_CTX_new(mac));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digests[i]), 0),
        OSSL_PARAM_construct_end()};
    if (!key.hmac[i] ||
        EVP_MAC_init(key.hmac[i].get(), reinterpret_cast<const unsigned char*>(key.secret.data()),
                     key.secret.size(), params) != 1) {
      EVP_MAC_free(mac);
      return KeyError{std::string("OpenSSL cannot key HMAC-") + digests[i]};
    }
  }
  EVP_MAC_free(mac);
  set.keys_.push_back(std::move(key));
  return set;
}

std::variant<KeySet, KeyError> KeySet::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  Pkey pkey(bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr);
  BIO_free(bio);
  if (!pkey) return KeyError{"not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")"};
  auto kind = classify(pkey.get());
  if (auto* reason = std::get_if<std::string>(&kind)) return KeyError{*reason};
  KeySet set;
  VerificationKey key;
  key.kind = std::get<KeyKind>(kind);
  key.pkey = std::move(pkey);
  set.keys_.push_back(std::move(key));
  return set;
}

std::variant<KeySet, KeyError> KeySet::from_jwks(std::string_view json) {
  auto parsed = parse_json_object(json);
  if (auto* e = std::get_if<JsonError>(&parsed)) return KeyError{"jwks: " + e->reason};
  const nlohmann::json& root = std::get<nlohmann::json>(parsed);
  auto keys = root.find("keys");
  if (keys == root.end() || !keys->is_array()) return KeyError{"jwks: no \"keys\" array"};
  KeySet set;
  std::set<std::string> kids;
  size_t index = 0;
  for (const nlohmann::json& jwk : *keys) {
    ++index;
    std::string where = "jwks: key " + std::to_string(index);
    if (!jwk.is_object()) return KeyError{where + " is not an object"};
    const auto kid = member(jwk, "kid");
    if (kid) where += " (kid \"" + *kid + "\")";
    if (member(jwk, "use") == "enc") continue;
    for (const char* secret_member : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
      if (jwk.contains(secret_member)) {
        return KeyError{where + " holds private or secret material (\"" +
                        std::string(secret_member) + "\"); a key set holds public keys only"};
      }
    }
    const auto kty = member(jwk, "kty");
    std::variant<Pkey, std::string> made;
    if (kty == "EC") {
      made = ec_from_jwk(jwk);
    } else if (kty == "RSA") {
      made = rsa_from_jwk(jwk);
    } else {
      return KeyError{where + ": unsupported kty \"" + kty.value_or("") +
                      "\" (expected EC or RSA)"};
    }
    if (auto* reason = std::get_if<std::string>(&made)) return KeyError{where + ": " + *reason};
    Pkey pkey = std::move(std::get<Pkey>(made));
    auto kind = classify(pkey.get());
    if (auto* reason = std::get_if<std::string>(&kind)) return KeyError{where + ": " + *reason};
    if (const auto alg = member(jwk, "alg")) {
      const auto a = parse_algorithm(*alg);
      if (!a || !key_allows(std::get<KeyKind>(kind), *a)) {
        return KeyError{where + ": \"alg\" \"" + *alg + "\" does not fit " +
                        std::string(key_kind_name(std::get<KeyKind>(kind)))};
      }
    }
    if (!kid || kid->empty()) return KeyError{where + " has no \"kid\""};
    if (!kids.insert(*kid).second) return KeyError{where + ": kid is used twice"};
    VerificationKey key;
    key.kid = *kid;
    key.kind = std::get<KeyKind>(kind);
    key.pkey = std::move(pkey);
    set.keys_.push_back(std::move(key));
  }
  if (set.keys_.empty()) return KeyError{"jwks: no signature key"};
  return set;
}

const VerificationKey* KeySet::select(const std::optional<std::string>& kid) const {
  if (keys_.size() == 1 && keys_.front().kid.empty()) return &keys_.front();
  if (!kid) return nullptr;
  for (const VerificationKey& key : keys_) {
    if (key.kid == *kid) return &key;
  }
  return nullptr;
}

}  // namespace tenantgate::identity
