// [identity.token] and a principal's identity source: defaults, every key,
// and one test per error path with its line.
#include <gtest/gtest.h>

#include "config/config.h"

namespace tenantgate::config {
namespace {

Config parse(const std::string& text) { return parse_config(text, "/etc/tg/tenantgate.toml"); }

void expect_error(const std::string& text, int line, const std::string& reason) {
  try {
    (void)parse_config(text, "c.toml");
    ADD_FAILURE() << "no error; expected line " << line << ": " << reason << "\n" << text;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    const std::string prefix = "c.toml:" + std::to_string(line) + ": ";
    EXPECT_TRUE(what.starts_with(prefix)) << what << "\nexpected prefix " << prefix;
    EXPECT_NE(what.find(reason), std::string::npos) << what << "\nexpected " << reason;
  }
}

const std::string kAuth = "[auth]\nmode = \"passthrough\"\n";

TEST(TokenConfigTest, AbsentByDefault) {
  Config c = parse(kAuth + "[[principals]]\nname = \"app\"\n");
  EXPECT_FALSE(c.identity.token);
  EXPECT_EQ(c.principals.at(0).identity, IdentitySource::kClaimed);
}

TEST(TokenConfigTest, Defaults) {
  Config c = parse("[identity.token]\nsecret_env = \"TG_SECRET\"\n");
  ASSERT_TRUE(c.identity.token);
  const TokenConfig& t = *c.identity.token;
  EXPECT_EQ(t.secret_env, "TG_SECRET");
  EXPECT_EQ(t.public_key_file, "");
  EXPECT_EQ(t.jwks_file, "");
  EXPECT_EQ(t.issuer, "");
  EXPECT_EQ(t.audience, "");
  EXPECT_EQ(t.leeway_s, 30);
  EXPECT_EQ(t.max_lifetime_s, 86400);
  EXPECT_EQ(t.tenant_claim, "tenant");
  EXPECT_EQ(t.user_claim, "sub");
  EXPECT_EQ(t.line, 1);
}

TEST(TokenConfigTest, EveryKey) {
  Config c = parse(kAuth + R"(
[identity]
tenant_type = "int"

[identity.token]
jwks_file = "keys/jwks.json"
issuer = "https://idp.example"
audience = "tenantgate"
leeway_s = 5
max_lifetime_s = 600
tenant_claim = "org_id"
user_claim = "uid"

[[principals]]
name = "app"
tenants = ["*"]
identity = "token"

[[principals]]
name = "svc"
identity = "either"

[[principals]]
name = "old"
identity = "claimed"
)");
  ASSERT_TRUE(c.identity.token);
  const TokenConfig& t = *c.identity.token;
  EXPECT_EQ(t.jwks_file, "/etc/tg/keys/jwks.json");
  EXPECT_EQ(t.issuer, "https://idp.example");
  EXPECT_EQ(t.audience, "tenantgate");
  EXPECT_EQ(t.leeway_s, 5);
  EXPECT_EQ(t.max_lifetime_s, 600);
  EXPECT_EQ(t.tenant_claim, "org_id");
  EXPECT_EQ(t.user_claim, "uid");
  EXPECT_EQ(c.principals.at(0).identity, IdentitySource::kToken);
  EXPECT_EQ(c.principals.at(1).identity, IdentitySource::kEither);
  EXPECT_EQ(c.principals.at(2).identity, IdentitySource::kClaimed);

  Config pem = parse("[identity.token]\npublic_key_file = \"/k/pub.pem\"\n");
  EXPECT_EQ(pem.identity.token->public_key_file, "/k/pub.pem");
}

TEST(TokenConfigTest, Errors) {
  expect_error("[identity.token]\nissuer = \"x\"\n", 1, "needs exactly one of secret_env");
  expect_error("[identity.token]\nsecret_env = \"S\"\njwks_file = \"j.json\"\n", 1,
               "needs exactly one of secret_env");
  expect_error("[identity.token]\nsecret_env = \"1S\"\n", 2, "not an environment variable name");
  expect_error("[identity.token]\nsecret_env = \"\"\n", 2, "secret_env is empty");
  expect_error("[identity.token]\nsecret_env = \"S\"\nkey = \"x\"\n", 3,
               "unknown key \"key\" in [identity.token]");
  expect_error("[identity.token]\nsecret_env = \"S\"\nleeway_s = -1\n", 3, "out of range");
  expect_error("[identity.token]\nsecret_env = \"S\"\nmax_lifetime_s = \"1h\"\n", 3,
               "must be an integer");
  expect_error("[identity.token]\nsecret_env = \"S\"\nissuer = \"\"\n", 3, "issuer is empty");
  expect_error("[identity.token]\nsecret_env = \"S\"\ntenant_claim = \"exp\"\n", 3,
               "registered JWT claim");
  expect_error("[identity.token]\nsecret_env = \"S\"\nuser_claim = \"tenant\"\n", 3,
               "tenant_claim and user_claim are the same claim");
  expect_error("[identity]\ntoken = 1\n", 2, "[identity.token] must be a table");
  expect_error(kAuth + "[[principals]]\nname = \"a\"\nidentity = \"jwt\"\n", 5,
               "unknown principal identity \"jwt\" (expected claimed | token | either)");
  expect_error(kAuth + "[[principals]]\nname = \"a\"\nidentity = \"token\"\n", 5,
               "needs an [identity.token] table");
}

}  // namespace
}  // namespace tenantgate::config
