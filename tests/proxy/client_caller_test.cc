// The client connection's caller: answers, refusals, the no-caller policy and
// the prepared-statement guard across caller changes.
#include "proxy/client_caller.h"

#include <gtest/gtest.h>

#include <ctime>

#include "identity/token_minter.h"
#include "proxy/caller_reply.h"

namespace tenantgate::proxy {
namespace {

const std::string kSecret = "client-caller-secret-0123456789abcdef";

class ClientCallerTest : public ::testing::Test {
 protected:
  ClientCallerTest() {
    principal_.name = "app";
    principal_.tenants = {"*"};
    principal_.identity = config::IdentitySource::kEither;
  }
  int64_t now_ = static_cast<int64_t>(std::time(nullptr));
  config::Config config_;
  config::Principal principal_;
  identity::TokenAuthority tokens_{
      std::get<identity::KeySet>(identity::KeySet::from_secret(kSecret)),
      identity::TokenSettings{}};
  ClientCaller caller_{config_, principal_, &tokens_};

  std::string token(const std::string& tenant) const {
    return identity::mint_hs_token(identity::Algorithm::kHS256, kSecret,
                                   {{"tenant", tenant}, {"sub", "7"}, {"exp", now_ + 60}})
        .value();
  }
  ClientCaller::QueryOutcome query(const std::string& sql, char status = 'I') {
    return caller_.on_query(sql, status, true, now_);
  }
};

TEST_F(ClientCallerTest, SetShowReset) {
  using K = ClientCaller::QueryOutcome::Kind;
  caller_.set_database("appdb");
  EXPECT_FALSE(caller_.has_caller());
  EXPECT_EQ(query("SELECT 1").kind, K::kRewrite);

  auto set = query("SET tenantgate.token = '" + token("acme") + "'");
  ASSERT_EQ(set.kind, K::kAnswer);
  EXPECT_EQ(set.answer, command_complete("SET"));
  EXPECT_EQ(set.log.find(token("acme")), std::string::npos);
  EXPECT_EQ(caller_.identity().tenant.value, "acme");
  EXPECT_EQ(caller_.identity().database, "appdb");
  EXPECT_EQ(query("SHOW tenantgate.tenant").answer, show_result("tenantgate.tenant", "acme"));

  auto local = query("SET LOCAL tenantgate.token = '" + token("globex") + "'", 'T');
  ASSERT_EQ(local.kind, K::kAnswer);
  EXPECT_EQ(caller_.identity().tenant.value, "globex");
  caller_.on_ready_for_query('T');
  EXPECT_EQ(caller_.identity().tenant.value, "globex");
  caller_.on_ready_for_query('I');
  EXPECT_EQ(caller_.identity().tenant.value, "acme");

  EXPECT_EQ(query("DISCARD ALL").kind, K::kRewrite);  // forwarded, and the caller ends
  EXPECT_FALSE(caller_.has_caller());
  // A principal that only claims keeps its caller: RESET ALL is a server reset.
  config::Principal claimed = principal_;
  claimed.identity = config::IdentitySource::kClaimed;
  ClientCaller fixed(config_, claimed, &tokens_);
  fixed.bind(policy::Identity{{"acme", policy::ValueType::kText}, {}, "", nullptr, {}});
  EXPECT_EQ(fixed.on_query("RESET ALL", 'I', true, now_).kind, K::kRewrite);
  EXPECT_TRUE(fixed.has_caller());
  EXPECT_EQ(caller_.identity().tenant.value, "");
  EXPECT_EQ(caller_.identity().database, "appdb");
  EXPECT_EQ(query("SHOW tenantgate.tenant").answer, show_result("tenantgate.tenant", std::nullopt));
}

TEST_F(ClientCallerTest, RefusalLeavesNoCaller) {
  caller_.bind(policy::Identity{{"acme", policy::ValueType::kText}, {}, "", nullptr, {}});
  ASSERT_TRUE(caller_.has_caller());
  auto bad = query("SET tenantgate.token = '" + token("globex") + "x'");
  EXPECT_EQ(bad.kind, ClientCaller::QueryOutcome::Kind::kRefuse);
  EXPECT_EQ(bad.refusal.sqlstate, "42501");
  EXPECT_FALSE(caller_.has_caller());

  caller_.bind(policy::Identity{{"acme", policy::ValueType::kText}, {}, "", nullptr, {}});
  auto parsed = caller_.on_parse("", "SET tenantgate.token = '" + token("globex") + "'");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->sqlstate, "42501");
  EXPECT_FALSE(caller_.has_caller());
}

TEST_F(ClientCallerTest, NoCallerPolicyDeniesScopedTables) {
  auto policy = std::make_shared<policy::Policy>();
  policy::TablePolicy scoped;
  scoped.name = {"public", "t"};
  scoped.scope = policy::Scope::kTenant;
  policy::TablePolicy shared;
  shared.name = {"public", "c"};
  shared.scope = policy::Scope::kShared;
  policy->tables[scoped.name] = scoped;
  policy->tables[shared.name] = shared;
  std::shared_ptr<const policy::Policy> p = policy;
  auto none = caller_.policy_for(p);
  EXPECT_NE(none, p);
  EXPECT_EQ(none->tables.at(scoped.name).scope, policy::Scope::kDeny);
  EXPECT_EQ(none->tables.at(shared.name).scope, policy::Scope::kShared);
  EXPECT_EQ(caller_.policy_for(p), none);  // the same snapshot again (rewrite cache key)
  caller_.bind(policy::Identity{{"acme", policy::ValueType::kText}, {}, "", nullptr, {}});
  EXPECT_EQ(caller_.policy_for(p), p);
}

TEST_F(ClientCallerTest, PreparedUnderAnotherCaller) {
  using rewriter::PreparedName;
  (void)query("SET tenantgate.token = '" + token("acme") + "'");
  EXPECT_FALSE(caller_.on_parse("s1", "SELECT 1"));
  EXPECT_FALSE(caller_.on_prepared_names({{PreparedName::Kind::kPrepare, "p1"}}));
  EXPECT_FALSE(caller_.on_bind("s1", ""));
  EXPECT_FALSE(caller_.on_prepared_names({{PreparedName::Kind::kExecute, "p1"}}));

  (void)query("SET tenantgate.token = '" + token("globex") + "'");
  EXPECT_TRUE(caller_.on_bind("s1", ""));
  EXPECT_TRUE(caller_.on_execute(""));
  EXPECT_TRUE(caller_.on_prepared_names({{PreparedName::Kind::kExecute, "p1"}}));

  caller_.on_close('S', "s1");
  EXPECT_FALSE(caller_.on_bind("s1", ""));  // unknown to the guard: the backend decides
  EXPECT_FALSE(caller_.on_prepared_names(
      {{PreparedName::Kind::kDeallocate, "p1"}, {PreparedName::Kind::kPrepare, "p1"}}));
  EXPECT_FALSE(caller_.on_prepared_names({{PreparedName::Kind::kExecute, "p1"}}));
}

}  // namespace
}  // namespace tenantgate::proxy
