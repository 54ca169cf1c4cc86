// Caller decisions at start-up and for SET / SET LOCAL / RESET / SHOW.
#include "proxy/caller_binding.h"

#include <gtest/gtest.h>

#include "identity/token_minter.h"

namespace tenantgate::proxy {
namespace {

const std::string kSecret = "caller-binding-secret-0123456789abcdef";
constexpr int64_t kNow = 1'800'000'000;

class CallerBindingTest : public ::testing::Test {
 protected:
  identity::TokenAuthority tokens_{
      std::get<identity::KeySet>(identity::KeySet::from_secret(kSecret)),
      identity::TokenSettings{}};
  config::Identity settings_;
  config::Principal principal_ = make_principal(config::IdentitySource::kEither, {"*"});

  static config::Principal make_principal(config::IdentitySource source,
                                          std::vector<std::string> tenants) {
    config::Principal p;
    p.name = "app";
    p.identity = source;
    p.tenants = std::move(tenants);
    return p;
  }
  static std::string token(const std::string& tenant, int64_t exp = kNow + 60) {
    return identity::mint_hs_token(
               identity::Algorithm::kHS256, kSecret,
               {{"tenant", tenant}, {"sub", "7"}, {"exp", exp}, {"plan", "gold"}})
        .value();
  }
  std::variant<TokenCaller, ClaimedCaller, CallerRefusal> start(
      std::optional<std::string> tok, std::optional<std::string> tenant = std::nullopt) {
    StartupIdentity given;
    given.token = std::move(tok);
    given.tenant = std::move(tenant);
    return startup_caller(principal_, settings_, given, &tokens_, kNow);
  }
  CallerAction decide(const std::string& sql, char status = 'I', bool idle = true,
                      const policy::Identity* current = nullptr) {
    CallerContext c;
    c.principal = &principal_;
    c.settings = &settings_;
    c.tokens = &tokens_;
    c.transaction_status = status;
    c.backend_idle = idle;
    c.current = current;
    c.now_s = kNow;
    return decide_caller_statement(classify_caller_statement(sql), c);
  }
};

TEST_F(CallerBindingTest, StartupWithToken) {
  auto r = start(token("acme"));
  ASSERT_TRUE(std::holds_alternative<TokenCaller>(r));
  const auto& caller = std::get<TokenCaller>(r).caller;
  ASSERT_TRUE(caller);
  EXPECT_EQ(caller->tenant.value, "acme");
  EXPECT_EQ(caller->user->value, "7");
  EXPECT_EQ(caller->claims.at("plan"), "gold");
}

TEST_F(CallerBindingTest, StartupRefusals) {
  auto expired = start(token("acme", kNow - 100));
  ASSERT_TRUE(std::holds_alternative<CallerRefusal>(expired));
  EXPECT_EQ(std::get<CallerRefusal>(expired).sqlstate, "28000");
  EXPECT_EQ(std::get<CallerRefusal>(expired).message,
            "tenantgate.token refused: exp check failed: the token expired 100 s ago");

  auto both = start(token("acme"), "acme");
  ASSERT_TRUE(std::holds_alternative<CallerRefusal>(both));

  principal_ = make_principal(config::IdentitySource::kEither, {"globex"});
  auto other = start(token("acme"));
  ASSERT_TRUE(std::holds_alternative<CallerRefusal>(other));
  EXPECT_NE(std::get<CallerRefusal>(other).message.find("may not claim tenant \"acme\""),
            std::string::npos);

  principal_ = make_principal(config::IdentitySource::kClaimed, {"*"});
  auto claimed = start(token("acme"));
  ASSERT_TRUE(std::holds_alternative<CallerRefusal>(claimed));
  EXPECT_NE(std::get<CallerRefusal>(claimed).message.find("does not accept tokens"),
            std::string::npos);
}

TEST_F(CallerBindingTest, StartupWithoutToken) {
  EXPECT_TRUE(std::holds_alternative<ClaimedCaller>(start(std::nullopt, "acme")));
  auto none = start(std::nullopt);
  ASSERT_TRUE(std::holds_alternative<TokenCaller>(none));
  EXPECT_FALSE(std::get<TokenCaller>(none).caller);

  principal_ = make_principal(config::IdentitySource::kToken, {"*"});
  auto bare = start(std::nullopt, "acme");
  ASSERT_TRUE(std::holds_alternative<CallerRefusal>(bare));
  EXPECT_NE(std::get<CallerRefusal>(bare).message.find("only from a signed token"),
            std::string::npos);

  principal_ = make_principal(config::IdentitySource::kClaimed, {"*"});
  EXPECT_TRUE(std::holds_alternative<ClaimedCaller>(start(std::nullopt)));
}

TEST_F(CallerBindingTest, Statements) {
  using K = CallerAction::Kind;
  auto set = decide("SET tenantgate.token = '" + token("globex") + "'");
  ASSERT_EQ(set.kind, K::kSetSession);
  EXPECT_EQ(set.caller.tenant.value, "globex");
  EXPECT_EQ(set.tag, "SET");

  EXPECT_EQ(decide("SET LOCAL tenantgate.token = '" + token("globex") + "'", 'T').kind,
            K::kSetLocal);
  auto outside = decide("SET LOCAL tenantgate.token = '" + token("globex") + "'", 'I');
  EXPECT_EQ(outside.kind, K::kRefuse);
  EXPECT_EQ(outside.refusal.sqlstate, "25P01");
  auto aborted = decide("SET LOCAL tenantgate.token = '" + token("globex") + "'", 'E');
  EXPECT_EQ(aborted.refusal.sqlstate, "25P02");
  auto pipelined = decide("SET tenantgate.token = '" + token("globex") + "'", 'I', false);
  EXPECT_EQ(pipelined.kind, K::kRefuse);
  EXPECT_EQ(pipelined.refusal.sqlstate, "42501");

  auto bad = decide("SET tenantgate.token = '" + token("globex") + "x'");
  EXPECT_EQ(bad.kind, K::kRefuse);
  EXPECT_EQ(bad.refusal.sqlstate, "42501");
  EXPECT_NE(bad.refusal.message.find("signature check failed"), std::string::npos);
  EXPECT_EQ(bad.refusal.message.find(token("globex")), std::string::npos);

  EXPECT_EQ(decide("RESET tenantgate.token").kind, K::kClear);
  auto misplaced = decide("SET tenantgate.token = 'x'; SELECT 1");
  EXPECT_EQ(misplaced.kind, K::kRefuse);
  EXPECT_EQ(misplaced.refusal.sqlstate, "42501");

  auto show_none = decide("SHOW tenantgate.tenant");
  EXPECT_EQ(show_none.kind, K::kShow);
  EXPECT_FALSE(show_none.show_value);
  policy::Identity who;
  who.tenant = {"acme", policy::ValueType::kText};
  auto show = decide("SHOW tenantgate.tenant", 'E', true, &who);
  EXPECT_EQ(show.show_value, "acme");
  EXPECT_EQ(decide("SHOW tenantgate.tenant", 'I', false, &who).kind, K::kRefuse);  // pipelined
  EXPECT_FALSE(decide("SHOW tenantgate.user", 'I', true, &who).show_value);
}

}  // namespace
}  // namespace tenantgate::proxy
