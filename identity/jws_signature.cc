// JWS signatures over OpenSSL's one-shot HMAC and EVP_DigestVerify.

#include "identity/jws_signature.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace tenantgate::identity {

namespace {

const EVP_MD* digest_of(Algorithm alg) {
  switch (alg) {
    case Algorithm::kHS256:
    case Algorithm::kES256:
    case Algorithm::kRS256:
      return EVP_sha256();
    case Algorithm::kHS384:
      return EVP_sha384();
    case Algorithm::kHS512:
      return EVP_sha512();
  }
  return nullptr;
}

// ES256 signatures travel as R || S (32 bytes each); OpenSSL verifies DER.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw) {
  if (raw.size() != 64) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (!r || !s || !sig || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_public(EVP_PKEY* pkey, std::string_view input, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace

std::optional<std::string> hmac_sign(Algorithm alg, std::string_view secret,
                                     std::string_view signing_input) {
  if (!key_allows(KeyKind::kHmac, alg)) return std::nullopt;
  unsigned char tag[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(digest_of(alg), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), tag,
            &len)) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<char*>(tag), len);
}

bool verify_signature(const VerificationKey& key, Algorithm alg, std::string_view signing_input,
                      std::string_view signature) {
  if (!key_allows(key.kind, alg)) return false;
  switch (key.kind) {
    case KeyKind::kHmac: {
      const int index = alg == Algorithm::kHS256 ? 0 : alg == Algorithm::kHS384 ? 1 : 2;
      if (!key.hmac[index]) return false;
      EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(key.hmac[index].get());
      unsigned char tag[EVP_MAX_MD_SIZE];
      size_t len = 0;
      const bool ok =
          ctx &&
          EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(signing_input.data()),
                         signing_input.size()) == 1 &&
          EVP_MAC_final(ctx, tag, &len, sizeof tag) == 1;
      EVP_MAC_CTX_free(ctx);
      return ok && len == signature.size() && CRYPTO_memcmp(tag, signature.data(), len) == 0;
    }
    case KeyKind::kEcP256: {
      const auto der = ecdsa_raw_to_der(signature);
      return der && key.pkey && verify_public(key.pkey.get(), signing_input, *der);
    }
    case KeyKind::kRsa:
      return key.pkey && !signature.empty() &&
             verify_public(key.pkey.get(), signing_input, signature);
  }
  return false;
}

}  // namespace tenantgate::identity
