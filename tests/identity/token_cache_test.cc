#include "identity/token_cache.h"

#include <gtest/gtest.h>

#include "identity/token_authority.h"
#include "identity/token_minter.h"
#include "tests/identity/jwt_signing.h"

namespace tenantgate::identity {
namespace {

constexpr int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-cache";

std::shared_ptr<const VerifiedToken> token_expiring(int64_t exp) {
  auto t = std::make_shared<VerifiedToken>();
  t->tenant = {"acme", policy::ValueType::kText};
  t->expires_at = exp;
  return t;
}

TEST(TokenCacheTest, HitsUntilExpiry) {
  TokenCache cache(4);
  auto t = token_expiring(kNow + 10);
  cache.insert(token_digest("tok"), t, kNow, 0);
  EXPECT_EQ(cache.find(token_digest("tok"), kNow, 0), t);
  EXPECT_EQ(cache.find(token_digest("tok"), kNow + 9, 0), t);
  EXPECT_EQ(cache.find(token_digest("tok"), kNow + 10, 0), nullptr);
  EXPECT_EQ(cache.find(token_digest("tok"), kNow + 10, 5), t);  // leeway
  EXPECT_EQ(cache.find(token_digest("other"), kNow, 0), nullptr);
}

TEST(TokenCacheTest, Bounded) {
  TokenCache cache(8);
  for (int i = 0; i < 100; ++i) {
    cache.insert(token_digest(std::to_string(i)), token_expiring(kNow + 100), kNow, 0);
    EXPECT_LE(cache.size(), 8u);
  }
  EXPECT_NE(cache.find(token_digest("99"), kNow, 0), nullptr);  // the newest stays
  EXPECT_EQ(cache.find(token_digest("0"), kNow, 0), nullptr);   // the oldest went
}

TEST(TokenCacheTest, ExpiredGoFirst) {
  TokenCache cache(4);
  cache.insert(token_digest("keep"), token_expiring(kNow + 1000), kNow, 0);
  for (int i = 0; i < 3; ++i) {
    cache.insert(token_digest("old" + std::to_string(i)), token_expiring(kNow + 1), kNow, 0);
  }
  cache.insert(token_digest("new"), token_expiring(kNow + 1000), kNow + 5, 0);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_NE(cache.find(token_digest("keep"), kNow + 5, 0), nullptr);
}

TEST(TokenAuthorityTest, CachesSuccessesOnly) {
  TokenAuthority authority(std::get<KeySet>(KeySet::from_secret(kSecret)), TokenSettings{});
  nlohmann::json claims = {{"tenant", "acme"}, {"sub", "1"}, {"exp", kNow + 60}};
  const std::string token = mint_hs_token(Algorithm::kHS256, kSecret, claims).value();
  auto first = authority.verify(token, kNow);
  ASSERT_TRUE(first.ok()) << first.refusal().message();
  auto second = authority.verify(token, kNow + 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first.token(), second.token());  // the same cached object
  // After expiry the cache does not answer; the full check refuses.
  auto late = authority.verify(token, kNow + 60 + 30);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.refusal().check, "exp");
  // A refusal is not remembered as anything.
  const std::string bad = token.substr(0, token.size() - 2) + "AA";
  EXPECT_FALSE(authority.verify(bad, kNow).ok());
  EXPECT_FALSE(authority.verify(bad, kNow).ok());
}

TEST(TokenMinterTest, MintsWhatTheVerifierAccepts) {
  nlohmann::json claims = {{"tenant", "acme"}, {"sub", 7}, {"exp", kNow + 60}, {"plan", "gold"}};
  const KeySet keys = std::get<KeySet>(KeySet::from_secret(kSecret));
  for (Algorithm alg : {Algorithm::kHS256, Algorithm::kHS384, Algorithm::kHS512}) {
    auto token = mint_hs_token(alg, kSecret, claims);
    ASSERT_TRUE(token);
    auto r = verify_token(*token, keys, TokenSettings{}, kNow);
    ASSERT_TRUE(r.ok()) << r.refusal().message();
    EXPECT_EQ(r.token()->claims.at("plan"), "gold");
  }
  EXPECT_FALSE(mint_hs_token(Algorithm::kES256, kSecret, claims));
  EXPECT_FALSE(mint_hs_token(Algorithm::kHS256, kSecret, nlohmann::json::array()));
}

TEST(TokenAuthorityTest, LoadsFromConfig) {
  const std::string toml = R"(
[identity]
tenant_type = "int"
[identity.token]
secret_env = "TG_TOKEN_TEST_SECRET"
issuer = "me"
leeway_s = 5
tenant_claim = "org"
)";
  const config::Config config = config::parse_config(toml, "/tmp/tenantgate.toml");
  unsetenv("TG_TOKEN_TEST_SECRET");
  EXPECT_THROW((void)load_token_authority(config), TokenSetupError);
  setenv("TG_TOKEN_TEST_SECRET", "short", 1);
  EXPECT_THROW((void)load_token_authority(config), TokenSetupError);
  setenv("TG_TOKEN_TEST_SECRET", kSecret.c_str(), 1);
  auto authority = load_token_authority(config);
  ASSERT_TRUE(authority);
  EXPECT_EQ(authority->settings().issuer, "me");
  EXPECT_EQ(authority->settings().leeway_s, 5);
  EXPECT_EQ(authority->settings().tenant_type, policy::ValueType::kInt);
  nlohmann::json claims = {{"org", 12}, {"iss", "me"}, {"exp", kNow + 60}};
  auto r = authority->verify(mint_hs_token(Algorithm::kHS256, kSecret, claims).value(), kNow);
  ASSERT_TRUE(r.ok()) << r.refusal().message();
  EXPECT_EQ(r.token()->tenant.value, "12");
  unsetenv("TG_TOKEN_TEST_SECRET");

  EXPECT_EQ(load_token_authority(config::parse_config("", "/tmp/t.toml")), nullptr);
}

}  // namespace
}  // namespace tenantgate::identity
