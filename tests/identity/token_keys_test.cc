#include "identity/token_keys.h"

#include <gtest/gtest.h>

#include "tests/identity/jwt_signing.h"

namespace tenantgate::identity {
namespace {

using testing::make_ec_key;
using testing::make_rsa_key;
using testing::public_jwk;
using testing::public_pem;

std::string error_of(const std::variant<KeySet, KeyError>& r) {
  return std::holds_alternative<KeyError>(r) ? std::get<KeyError>(r).reason : "";
}

TEST(AlgorithmTest, NoneAndUnknownAreNotAlgorithms) {
  EXPECT_FALSE(parse_algorithm("none"));
  EXPECT_FALSE(parse_algorithm("None"));
  EXPECT_FALSE(parse_algorithm("hs256"));
  EXPECT_FALSE(parse_algorithm("PS256"));
  EXPECT_FALSE(parse_algorithm(""));
  EXPECT_EQ(parse_algorithm("ES256"), Algorithm::kES256);
}

TEST(AlgorithmTest, TheKeyTypeDecides) {
  EXPECT_TRUE(key_allows(KeyKind::kHmac, Algorithm::kHS512));
  EXPECT_FALSE(key_allows(KeyKind::kHmac, Algorithm::kES256));
  EXPECT_FALSE(key_allows(KeyKind::kEcP256, Algorithm::kHS256));
  EXPECT_FALSE(key_allows(KeyKind::kEcP256, Algorithm::kRS256));
  EXPECT_FALSE(key_allows(KeyKind::kRsa, Algorithm::kHS256));
  EXPECT_TRUE(key_allows(KeyKind::kRsa, Algorithm::kRS256));
}

TEST(KeySetTest, SecretMustBeLongEnough) {
  EXPECT_NE(error_of(KeySet::from_secret(std::string(31, 'x'))).find("at least 32"),
            std::string::npos);
  EXPECT_EQ(error_of(KeySet::from_secret(std::string(32, 'x'))), "");
}

TEST(KeySetTest, PemKeys) {
  auto ec = make_ec_key();
  auto r = KeySet::from_pem(public_pem(ec.get()));
  ASSERT_EQ(error_of(r), "");
  const VerificationKey* k = std::get<KeySet>(r).select(std::nullopt);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->kind, KeyKind::kEcP256);
  // A kid in the token does not matter for a single unnamed key.
  EXPECT_EQ(std::get<KeySet>(r).select("anything"), k);

  auto rsa = make_rsa_key();
  auto rr = KeySet::from_pem(public_pem(rsa.get()));
  ASSERT_EQ(error_of(rr), "");
  EXPECT_EQ(std::get<KeySet>(rr).select(std::nullopt)->kind, KeyKind::kRsa);

  EXPECT_NE(error_of(KeySet::from_pem("not a key")), "");
  auto weak = make_rsa_key(1024);
  EXPECT_NE(error_of(KeySet::from_pem(public_pem(weak.get()))).find("at least 2048"),
            std::string::npos);
  testing::PrivateKey p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  EXPECT_NE(error_of(KeySet::from_pem(public_pem(p384.get()))).find("only P-256"),
            std::string::npos);
}

TEST(KeySetTest, JwksSelectsByKid) {
  auto a = make_ec_key();
  auto b = make_rsa_key();
  nlohmann::json jwks = {{"keys", {public_jwk(a.get(), "a"), public_jwk(b.get(), "b")}}};
  auto r = KeySet::from_jwks(jwks.dump());
  ASSERT_EQ(error_of(r), "");
  const KeySet& set = std::get<KeySet>(r);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.select("a")->kind, KeyKind::kEcP256);
  EXPECT_EQ(set.select("b")->kind, KeyKind::kRsa);
  EXPECT_EQ(set.select("c"), nullptr);
  EXPECT_EQ(set.select(std::nullopt), nullptr);
}

TEST(KeySetTest, JwksRefusals) {
  auto a = make_ec_key();
  nlohmann::json jwk = public_jwk(a.get(), "a");
  auto with = [&](const nlohmann::json& keys) { return error_of(KeySet::from_jwks(keys.dump())); };

  EXPECT_NE(with({{"keys", {jwk, jwk}}}).find("kid is used twice"), std::string::npos);
  nlohmann::json priv = jwk;
  priv["d"] = "AAAA";
  EXPECT_NE(with({{"keys", {priv}}}).find("private"), std::string::npos);
  nlohmann::json oct = {{"kty", "oct"}, {"kid", "s"}, {"k", "c2VjcmV0"}};
  EXPECT_NE(with({{"keys", {oct}}}), "");
  nlohmann::json nokid = jwk;
  nokid.erase("kid");
  EXPECT_NE(with({{"keys", {nokid}}}).find("no \"kid\""), std::string::npos);
  nlohmann::json wrong_alg = jwk;
  wrong_alg["alg"] = "HS256";
  EXPECT_NE(with({{"keys", {wrong_alg}}}).find("does not fit"), std::string::npos);
  nlohmann::json off_curve = jwk;
  off_curve["y"] = off_curve["x"];
  EXPECT_NE(with({{"keys", {off_curve}}}).find("not on P-256"), std::string::npos);
  nlohmann::json enc = jwk;
  enc["use"] = "enc";
  EXPECT_NE(with({{"keys", {enc}}}).find("no signature key"), std::string::npos);
  EXPECT_NE(error_of(KeySet::from_jwks("{\"keys\": [")), "");
  EXPECT_NE(error_of(KeySet::from_jwks("{}")), "");
}

}  // namespace
}  // namespace tenantgate::identity
