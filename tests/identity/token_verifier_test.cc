// Every attack on a token, one check each: the refusal must name the check
// that caught it.

#include "identity/token_verifier.h"

#include <gtest/gtest.h>

#include "identity/base64url.h"
#include "tests/identity/jwt_signing.h"

namespace tenantgate::identity {
namespace {

using nlohmann::json;
using testing::hs_token;
using testing::make_ec_key;
using testing::make_rsa_key;
using testing::pk_token;
using testing::public_jwk;
using testing::public_pem;

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";
const std::string kHs256 = R"({"alg":"HS256","typ":"JWT"})";

json claims(std::string tenant = "acme") {
  return {{"tenant", tenant}, {"sub", "42"}, {"exp", kNow + 300}, {"iat", kNow - 10}};
}

class VerifierTest : public ::testing::Test {
 protected:
  KeySet hs_ = std::get<KeySet>(KeySet::from_secret(kSecret));
  TokenSettings settings_;

  TokenResult verify(const std::string& token, const KeySet& keys) const {
    return verify_token(token, keys, settings_, kNow);
  }
  TokenResult verify_hs(const json& payload, const std::string& header = kHs256) const {
    return verify(hs_token(kSecret, header, payload.dump()), hs_);
  }
  static std::string check_of(const TokenResult& r) { return r.ok() ? "ok" : r.refusal().check; }
};

TEST_F(VerifierTest, AcceptsHs256AndTypesTheIdentity) {
  settings_.user_type = policy::ValueType::kInt;
  json c = claims();
  c["role"] = "admin";
  c["level"] = 3;
  c["ratio"] = 0.5;
  c["staff"] = true;
  c["groups"] = {"a", "b"};  // not a scalar: dropped
  c["jti"] = "id-1";         // registered: dropped
  c["nothing"] = nullptr;
  auto r = verify_hs(c);
  ASSERT_TRUE(r.ok()) << r.refusal().message();
  const VerifiedToken& t = *r.token();
  EXPECT_EQ(t.tenant.value, "acme");
  EXPECT_EQ(t.tenant.type, policy::ValueType::kText);
  ASSERT_TRUE(t.user);
  EXPECT_EQ(t.user->value, "42");
  EXPECT_EQ(t.user->type, policy::ValueType::kInt);
  EXPECT_EQ(t.expires_at, kNow + 300);
  const std::map<std::string, std::string, std::less<>> expected = {
      {"level", "3"},    {"ratio", "0.5"}, {"role", "admin"},
      {"staff", "true"}, {"sub", "42"},    {"tenant", "acme"}};
  EXPECT_EQ(t.claims, expected);
}

TEST_F(VerifierTest, AcceptsHs384AndHs512) {
  for (Algorithm alg : {Algorithm::kHS384, Algorithm::kHS512}) {
    const std::string header =
        R"({"alg":")" + std::string(algorithm_name(alg)) + R"(","typ":"JWT"})";
    auto r = verify(hs_token(kSecret, header, claims().dump(), alg), hs_);
    EXPECT_TRUE(r.ok()) << algorithm_name(alg);
  }
}

TEST_F(VerifierTest, AcceptsEs256AndRs256FromPemAndJwks) {
  auto ec = make_ec_key();
  auto rsa = make_rsa_key();
  const std::string es = pk_token(ec.get(), R"({"alg":"ES256","kid":"e1"})", claims().dump());
  const std::string rs = pk_token(rsa.get(), R"({"alg":"RS256","kid":"r1"})", claims().dump());
  EXPECT_TRUE(verify(es, std::get<KeySet>(KeySet::from_pem(public_pem(ec.get())))).ok());
  EXPECT_TRUE(verify(rs, std::get<KeySet>(KeySet::from_pem(public_pem(rsa.get())))).ok());
  json jwks = {{"keys", {public_jwk(ec.get(), "e1"), public_jwk(rsa.get(), "r1")}}};
  const KeySet set = std::get<KeySet>(KeySet::from_jwks(jwks.dump()));
  EXPECT_TRUE(verify(es, set).ok());
  EXPECT_TRUE(verify(rs, set).ok());
}

TEST_F(VerifierTest, BadSignature) {
  std::string token = hs_token(kSecret, kHs256, claims().dump());
  // Flip one bit of every signature byte position in turn.
  const size_t sig = token.rfind('.') + 1;
  auto raw = base64url_decode(token.substr(sig)).value();
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string bad = raw;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(check_of(verify(token.substr(0, sig) + base64url_encode(bad), hs_)), "signature");
  }
  EXPECT_EQ(check_of(verify(token.substr(0, sig), hs_)), "signature");  // empty signature
}

TEST_F(VerifierTest, PayloadChangedAfterSigning) {
  const std::string good = hs_token(kSecret, kHs256, claims("acme").dump());
  const std::string other = hs_token(kSecret, kHs256, claims("globex").dump());
  // acme's header and signature around globex's payload.
  const std::string spliced =
      good.substr(0, good.find('.') + 1) +
      other.substr(other.find('.') + 1, other.rfind('.') - other.find('.') - 1) +
      good.substr(good.rfind('.'));
  EXPECT_EQ(check_of(verify(spliced, hs_)), "signature");
}

TEST_F(VerifierTest, WrongKey) {
  const std::string token =
      hs_token("another-secret-that-is-long-enough-32+", kHs256, claims().dump());
  EXPECT_EQ(check_of(verify(token, hs_)), "signature");
  auto ec = make_ec_key();
  auto other = make_ec_key();
  const std::string es = pk_token(ec.get(), R"({"alg":"ES256"})", claims().dump());
  EXPECT_EQ(check_of(verify(es, std::get<KeySet>(KeySet::from_pem(public_pem(other.get()))))),
            "signature");
}

TEST_F(VerifierTest, AlgNone) {
  const std::string payload = claims().dump();
  for (const char* header : {R"({"alg":"none"})", R"({"alg":"None"})", R"({"alg":"NONE"})",
                             R"({"alg":""})", R"({"typ":"JWT"})", R"({"alg":null})"}) {
    const std::string input = testing::signing_input(header, payload);
    EXPECT_EQ(check_of(verify(input + ".", hs_)), "alg") << header;
    // A signature that would be valid for HS256 does not help either.
    const std::string sig = base64url_encode(hmac_sign(Algorithm::kHS256, kSecret, input).value());
    EXPECT_EQ(check_of(verify(input + "." + sig, hs_)), "alg") << header;
  }
}

TEST_F(VerifierTest, HmacSignedWithThePublicKeyAsSecret) {
  auto ec = make_ec_key();
  auto rsa = make_rsa_key();
  for (EVP_PKEY* key : {ec.get(), rsa.get()}) {
    const std::string pem = public_pem(key);
    const KeySet set = std::get<KeySet>(KeySet::from_pem(pem));
    for (std::string secret : {pem, pem.substr(0, pem.size() - 1)}) {  // with and without '\n'
      const std::string token = hs_token(secret, kHs256, claims().dump());
      const TokenResult r = verify(token, set);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.refusal().check, "alg");
      EXPECT_NE(r.refusal().detail.find("the token says HS256 but the key is"), std::string::npos);
    }
  }
}

TEST_F(VerifierTest, OtherAlgorithmConfusions) {
  auto ec = make_ec_key();
  auto rsa = make_rsa_key();
  // An RSA signature presented to an EC key, and ES256 to a secret.
  const std::string rs = pk_token(rsa.get(), R"({"alg":"RS256"})", claims().dump());
  EXPECT_EQ(check_of(verify(rs, std::get<KeySet>(KeySet::from_pem(public_pem(ec.get()))))), "alg");
  const std::string es = pk_token(ec.get(), R"({"alg":"ES256"})", claims().dump());
  EXPECT_EQ(check_of(verify(es, hs_)), "alg");
  // An ES256 signature relabelled RS256 for an EC key.
  const std::string relabelled =
      testing::signing_input(R"({"alg":"RS256"})", claims().dump()) + es.substr(es.rfind('.'));
  EXPECT_EQ(check_of(verify(relabelled, std::get<KeySet>(KeySet::from_pem(public_pem(ec.get()))))),
            "alg");
}

TEST_F(VerifierTest, KidSelection) {
  auto a = make_ec_key();
  auto b = make_ec_key();
  json jwks = {{"keys", {public_jwk(a.get(), "a"), public_jwk(b.get(), "b")}}};
  const KeySet set = std::get<KeySet>(KeySet::from_jwks(jwks.dump()));
  EXPECT_TRUE(verify(pk_token(a.get(), R"({"alg":"ES256","kid":"a"})", claims().dump()), set).ok());
  // Signed by a, claiming to be b.
  EXPECT_EQ(
      check_of(verify(pk_token(a.get(), R"({"alg":"ES256","kid":"b"})", claims().dump()), set)),
      "signature");
  EXPECT_EQ(
      check_of(verify(pk_token(a.get(), R"({"alg":"ES256","kid":"c"})", claims().dump()), set)),
      "kid");
  EXPECT_EQ(check_of(verify(pk_token(a.get(), R"({"alg":"ES256"})", claims().dump()), set)), "kid");
  EXPECT_EQ(check_of(verify(pk_token(a.get(), R"({"alg":"ES256","kid":7})", claims().dump()), set)),
            "kid");
}

TEST_F(VerifierTest, Expiry) {
  json c = claims();
  c.erase("exp");
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = "1900000000";
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = true;
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = -5;
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = 1e300;
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = kNow - 31;  // past the 30 s leeway
  c["iat"] = kNow - 100;
  auto r = verify_hs(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.refusal().check, "exp");
  EXPECT_EQ(r.refusal().message(), "exp check failed: the token expired 31 s ago");
  c["exp"] = kNow - 29;  // within the leeway
  EXPECT_TRUE(verify_hs(c).ok());
  settings_.leeway_s = 0;
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = kNow;
  EXPECT_EQ(check_of(verify_hs(c)), "exp");
  c["exp"] = kNow + 1.5;  // fractional NumericDate
  EXPECT_TRUE(verify_hs(c).ok());
}

TEST_F(VerifierTest, NotYetValidAndIssuedInTheFuture) {
  json c = claims();
  c["nbf"] = kNow + 60;
  EXPECT_EQ(check_of(verify_hs(c)), "nbf");
  c["nbf"] = kNow + 20;  // within the leeway
  EXPECT_TRUE(verify_hs(c).ok());
  c["nbf"] = "soon";
  EXPECT_EQ(check_of(verify_hs(c)), "nbf");
  c = claims();
  c["iat"] = kNow + 120;
  EXPECT_EQ(check_of(verify_hs(c)), "iat");
  c["iat"] = "now";
  EXPECT_EQ(check_of(verify_hs(c)), "iat");
}

TEST_F(VerifierTest, MaxLifetime) {
  settings_.max_lifetime_s = 3600;
  json c = claims();
  c["iat"] = kNow - 10;
  c["exp"] = kNow - 10 + 3601;
  EXPECT_EQ(check_of(verify_hs(c)), "lifetime");
  c["exp"] = kNow - 10 + 3600;
  EXPECT_TRUE(verify_hs(c).ok());
  c.erase("iat");  // measured from now instead
  c["exp"] = kNow + 7200;
  EXPECT_EQ(check_of(verify_hs(c)), "lifetime");
  settings_.max_lifetime_s = 0;
  EXPECT_TRUE(verify_hs(c).ok());
}

TEST_F(VerifierTest, IssuerAndAudience) {
  settings_.issuer = "https://idp.example";
  settings_.audience = "tenantgate";
  json c = claims();
  EXPECT_EQ(check_of(verify_hs(c)), "iss");
  c["iss"] = "https://evil.example";
  EXPECT_EQ(check_of(verify_hs(c)), "iss");
  c["iss"] = "https://idp.example";
  EXPECT_EQ(check_of(verify_hs(c)), "aud");
  c["aud"] = "other";
  EXPECT_EQ(check_of(verify_hs(c)), "aud");
  c["aud"] = {"other", 7};
  EXPECT_EQ(check_of(verify_hs(c)), "aud");
  c["aud"] = {"other", "tenantgate"};
  EXPECT_TRUE(verify_hs(c).ok());
  c["aud"] = "tenantgate";
  EXPECT_TRUE(verify_hs(c).ok());
  c["iss"] = {"https://idp.example"};
  EXPECT_EQ(check_of(verify_hs(c)), "iss");
}

TEST_F(VerifierTest, TenantAndUserClaims) {
  json c = claims();
  c.erase("tenant");
  EXPECT_EQ(check_of(verify_hs(c)), "tenant");
  for (json bad : {json(true), json(nullptr), json(1.5), json::array({"acme"}),
                   json::object({{"id", "acme"}}), json("")}) {
    c["tenant"] = bad;
    EXPECT_EQ(check_of(verify_hs(c)), "tenant") << bad.dump();
  }
  settings_.tenant_type = policy::ValueType::kInt;
  c["tenant"] = "acme";
  EXPECT_EQ(check_of(verify_hs(c)), "tenant");
  c["tenant"] = 7;
  auto r = verify_hs(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.token()->tenant.value, "7");
  c["tenant"] = "007";  // canonicalised like a start-up parameter
  EXPECT_EQ(verify_hs(c).token()->tenant.value, "7");
  settings_.tenant_type = policy::ValueType::kUuid;
  c["tenant"] = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
  EXPECT_EQ(verify_hs(c).token()->tenant.value, "6f9619ff-8b86-d011-b42d-00c04fc964ff");
  c["tenant"] = "not-a-uuid";
  EXPECT_EQ(check_of(verify_hs(c)), "tenant");

  settings_.tenant_type = policy::ValueType::kText;
  c = claims();
  c["sub"] = "alice";  // user_type int
  EXPECT_EQ(check_of(verify_hs(c)), "user");
  c["sub"] = false;
  EXPECT_EQ(check_of(verify_hs(c)), "user");
  c.erase("sub");
  r = verify_hs(c);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.token()->user);

  settings_.tenant_claim = "org";
  settings_.user_claim = "uid";
  c = claims();
  EXPECT_EQ(check_of(verify_hs(c)), "tenant");
  c["org"] = "initech";
  c["uid"] = 9;
  r = verify_hs(c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.token()->tenant.value, "initech");
  EXPECT_EQ(r.token()->user->value, "9");
}

TEST_F(VerifierTest, OverSize) {
  json c = claims();
  c["padding"] = std::string(kMaxTokenBytes, 'x');
  const TokenResult r = verify_hs(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.refusal().check, "size");
  EXPECT_EQ(check_of(verify(std::string(kMaxTokenBytes + 1, 'a'), hs_)), "size");
}

TEST_F(VerifierTest, MalformedStructureAndBase64) {
  const std::string token = hs_token(kSecret, kHs256, claims().dump());
  const size_t d1 = token.find('.');
  const size_t d2 = token.rfind('.');
  EXPECT_EQ(check_of(verify("", hs_)), "format");
  EXPECT_EQ(check_of(verify(token.substr(0, d2), hs_)), "format");
  EXPECT_EQ(check_of(verify(token + ".x", hs_)), "format");
  EXPECT_EQ(check_of(verify(token + ".", hs_)), "format");
  EXPECT_EQ(check_of(verify("..", hs_)), "base64url");
  EXPECT_EQ(check_of(verify(token.substr(0, d1) + "=" + token.substr(d1), hs_)), "base64url");
  EXPECT_EQ(check_of(verify(token.substr(0, d2) + "+" + token.substr(d2), hs_)), "base64url");
  EXPECT_EQ(check_of(verify(token + "=", hs_)), "base64url");
  EXPECT_EQ(check_of(verify(" " + token, hs_)), "base64url");
  std::string with_nul = token;
  with_nul.insert(d1 + 3, 1, '\0');
  EXPECT_EQ(check_of(verify(with_nul, hs_)), "base64url");
}

TEST_F(VerifierTest, MalformedJson) {
  // Correctly signed, but the payload or header is not a JSON object.
  for (std::string payload :
       {std::string("{\"tenant\":\"acme\""), std::string("[1,2]"), std::string("\"acme\""),
        std::string("{\"tenant\":\"a\xff\"}"), std::string("{} {}"), std::string("{/*c*/}")}) {
    EXPECT_EQ(check_of(verify(hs_token(kSecret, kHs256, payload), hs_)), "payload") << payload;
  }
  EXPECT_EQ(check_of(verify(hs_token(kSecret, "{\"alg\":\"HS256\"", claims().dump()), hs_)),
            "header");
  EXPECT_EQ(check_of(verify(hs_token(kSecret, "[\"HS256\"]", claims().dump()), hs_)), "header");
}

TEST_F(VerifierTest, DuplicateMembersAreRefused) {
  const std::string payload = R"({"tenant":"acme","sub":"42","exp":)" + std::to_string(kNow + 300) +
                              R"(,"tenant":"globex"})";
  auto r = verify(hs_token(kSecret, kHs256, payload), hs_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.refusal().check, "payload");
  EXPECT_NE(r.refusal().detail.find("duplicate member \"tenant\""), std::string::npos);
  EXPECT_EQ(
      check_of(verify(hs_token(kSecret, R"({"alg":"HS256","alg":"none"})", claims().dump()), hs_)),
      "header");
  // Nested duplicates too, and deep nesting.
  EXPECT_EQ(
      check_of(verify(
          hs_token(kSecret, kHs256, R"({"tenant":"a","exp":1900000000,"x":{"k":1,"k":2}})"), hs_)),
      "payload");
  std::string deep =
      R"({"tenant":"a","exp":1900000000,"x":)" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_EQ(check_of(verify(hs_token(kSecret, kHs256, deep), hs_)), "payload");
}

TEST_F(VerifierTest, CritAndNulClaims) {
  EXPECT_EQ(check_of(verify_hs(claims(), R"({"alg":"HS256","crit":["b64"],"b64":false})")),
            "header");
  json c = claims();
  c["note"] = std::string("a\0b", 3);
  EXPECT_EQ(check_of(verify_hs(c)), "payload");
}

TEST_F(VerifierTest, RefusalsNeverEchoTheToken) {
  const std::string token = hs_token(kSecret, kHs256, claims().dump());
  const std::string sig = token.substr(token.rfind('.') + 1);
  for (const std::string& t : {token + "x", token.substr(0, token.rfind('.') + 1) + "AAAA"}) {
    auto r = verify(t, hs_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.refusal().message().find(sig.substr(0, 10)), std::string::npos);
    EXPECT_EQ(r.refusal().message().find(token.substr(0, 10)), std::string::npos);
  }
}

}  // namespace
}  // namespace tenantgate::identity
