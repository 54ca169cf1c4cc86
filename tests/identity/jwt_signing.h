// Signing helpers for token tests and benchmarks: fresh EC P-256 and RSA key
// pairs, ES256 and RS256 signatures, hand-built compact tokens. The product
// only verifies these; making them is the test's job.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "identity/base64url.h"
#include "identity/jws_signature.h"
#include "identity/token_keys.h"

namespace tenantgate::identity::testing {

using PrivateKey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

inline PrivateKey make_ec_key() {
  return PrivateKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

inline PrivateKey make_rsa_key(unsigned bits = 2048) {
  return PrivateKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
}

inline std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

inline std::string bn_param(EVP_PKEY* key, const char* name, size_t pad_to = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("no bn param");
  std::string out(std::max<size_t>(pad_to, static_cast<size_t>(BN_num_bytes(bn))), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

// The public JWK of `key` (EC P-256 or RSA).
inline nlohmann::json public_jwk(EVP_PKEY* key, const std::string& kid) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    return {{"kty", "EC"},
            {"crv", "P-256"},
            {"kid", kid},
            {"use", "sig"},
            {"x", base64url_encode(bn_param(key, "qx", 32))},
            {"y", base64url_encode(bn_param(key, "qy", 32))}};
  }
  return {{"kty", "RSA"},
          {"kid", kid},
          {"n", base64url_encode(bn_param(key, "n"))},
          {"e", base64url_encode(bn_param(key, "e"))}};
}

// ES256 (raw R || S) or RS256 signature of `input` with a private key.
inline std::string sign_public(EVP_PKEY* key, std::string_view input) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  sig.resize(len);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* ec = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(ec), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(ec), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(ec);
  return raw;
}

// "<b64 header>.<b64 payload>" from JSON texts given verbatim.
inline std::string signing_input(std::string_view header_json, std::string_view payload_json) {
  return base64url_encode(header_json) + "." + base64url_encode(payload_json);
}

inline std::string hs_token(std::string_view secret, std::string_view header_json,
                            std::string_view payload_json, Algorithm alg = Algorithm::kHS256) {
  const std::string input = signing_input(header_json, payload_json);
  return input + "." + base64url_encode(hmac_sign(alg, secret, input).value());
}

inline std::string pk_token(EVP_PKEY* key, std::string_view header_json,
                            std::string_view payload_json) {
  const std::string input = signing_input(header_json, payload_json);
  return input + "." + base64url_encode(sign_public(key, input));
}

}  // namespace tenantgate::identity::testing
