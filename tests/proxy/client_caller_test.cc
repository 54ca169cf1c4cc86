// The client connection's caller: answers, refusals, the no-caller policy and
// the prepared-statement guard across caller changes.
#include "proxy/client_caller.h"

#include <gtest/gtest.h>

#include <ctime>

#include "identity/token_minter.h"
#include "proxy/caller_reply.h"

namespace tenantgate::proxy {
namespace {

using rewriter::PreparedName;

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

TEST_F(ClientCallerTest, NamesAreCutAsPostgreSQLCutsThem) {
  EXPECT_EQ(backend_name("short"), "short");
  EXPECT_EQ(backend_name(std::string(63, 'A') + "X"), std::string(63, 'A'));
  // A two-byte character across byte 63 is dropped whole.
  EXPECT_EQ(backend_name(std::string(62, 'A') + "\xc3\xa9Z"), std::string(62, 'A'));
  EXPECT_EQ(backend_name(std::string(61, 'A') + "\xc3\xa9Z"), std::string(61, 'A') + "\xc3\xa9");

  (void)query("SET tenantgate.token = '" + token("globex") + "'");
  EXPECT_FALSE(caller_.on_parse("s", "SELECT 1"));
  EXPECT_FALSE(caller_.on_bind("s", std::string(63, 'A') + "X"));
  (void)query("SET tenantgate.token = '" + token("acme") + "'");
  EXPECT_TRUE(caller_.on_execute(std::string(63, 'A') + "Y"));
}

TEST_F(ClientCallerTest, CursorsBelongToTheirCaller) {
  using K = PreparedName::Kind;
  (void)query("SET tenantgate.token = '" + token("acme") + "'");
  const std::string globex = "SET LOCAL tenantgate.token = '" + token("globex") + "'";
  // WITH HOLD outlives the transaction and the local caller.
  ASSERT_EQ(query(globex, 'T').kind, ClientCaller::QueryOutcome::Kind::kAnswer);
  EXPECT_FALSE(caller_.on_prepared_names({{K::kDeclareHoldCursor, "leak"}}));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kDeclareCursor, "plain"}}));
  caller_.on_ready_for_query('I');
  EXPECT_EQ(caller_.identity().tenant.value, "acme");
  EXPECT_TRUE(caller_.on_prepared_names({{K::kUseCursor, "leak"}}));
  EXPECT_TRUE(caller_.on_execute("leak"));  // protocol Execute of a cursor
  EXPECT_TRUE(caller_.on_prepared_names({{K::kCloseCursor, "leak"}}));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kUseCursor, "plain"}}));  // ended with it
  // A failed DECLARE over the name does not take the cursor over.
  EXPECT_FALSE(caller_.on_prepared_names({{K::kDeclareHoldCursor, "leak"}}));
  EXPECT_TRUE(caller_.on_prepared_names({{K::kUseCursor, "leak"}}));
  caller_.on_close('P', "leak");  // protocol Close of the cursor
  EXPECT_FALSE(caller_.on_prepared_names({{K::kUseCursor, "leak"}}));

  // A protocol portal read with FETCH, a cursor used by WHERE CURRENT OF.
  ASSERT_EQ(query(globex, 'T').kind, ClientCaller::QueryOutcome::Kind::kAnswer);
  EXPECT_FALSE(caller_.on_parse("s", "SELECT 1"));
  EXPECT_FALSE(caller_.on_bind("s", "p1"));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kDeclareCursor, "c"}}));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kUseCursor, "c"}}));
  ASSERT_EQ(query("SET LOCAL tenantgate.token = '" + token("acme") + "'", 'T').kind,
            ClientCaller::QueryOutcome::Kind::kAnswer);
  EXPECT_TRUE(caller_.on_prepared_names({{K::kUseCursor, "p1"}}));
  EXPECT_TRUE(caller_.on_prepared_names({{K::kUseCursor, "c"}}));
  EXPECT_TRUE(caller_.on_execute("c"));
  // CLOSE ALL drops every portal and cursor.
  EXPECT_FALSE(caller_.on_prepared_names({{K::kCloseAllCursors, ""}}));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kUseCursor, "c"}}));
  EXPECT_FALSE(caller_.on_execute("p1"));
}

TEST_F(ClientCallerTest, FailedRedefinitionKeepsTheOldCaller) {
  using K = PreparedName::Kind;
  (void)query("SET tenantgate.token = '" + token("globex") + "'");
  EXPECT_FALSE(caller_.on_parse("s", "SELECT 1"));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kPrepare, "p"}}));
  EXPECT_FALSE(caller_.on_bind("s", "named"));
  EXPECT_FALSE(caller_.on_bind("s", ""));
  (void)query("SET tenantgate.token = '" + token("acme") + "'");
  // The backend answers 42P05 / 42P03 and keeps globex's: still refused.
  EXPECT_FALSE(caller_.on_parse("s", "SELECT 2"));
  EXPECT_TRUE(caller_.on_bind("s", "x"));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kPrepare, "p"}}));
  EXPECT_TRUE(caller_.on_prepared_names({{K::kExecute, "p"}}));
  EXPECT_FALSE(caller_.on_parse("t", "SELECT 3"));
  EXPECT_FALSE(caller_.on_bind("t", "named"));
  EXPECT_TRUE(caller_.on_execute("named"));
  EXPECT_FALSE(caller_.on_bind("t", ""));
  EXPECT_TRUE(caller_.on_execute(""));
  // Closed, the names are free again.
  caller_.on_close('S', "s");
  caller_.on_close('P', "named");
  EXPECT_FALSE(caller_.on_prepared_names({{K::kDeallocate, "p"}, {K::kPrepare, "p"}}));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kExecute, "p"}}));
  EXPECT_FALSE(caller_.on_parse("s", "SELECT 2"));
  EXPECT_FALSE(caller_.on_bind("s", "named"));
  EXPECT_FALSE(caller_.on_execute("named"));
  // The unnamed statement is dropped before each Parse: taken over.
  EXPECT_FALSE(caller_.on_parse("", "SELECT 4"));
  EXPECT_FALSE(caller_.on_bind("", "named2"));
}

TEST_F(ClientCallerTest, TransactionEndEndsTheLocalCaller) {
  using K = PreparedName::Kind;
  using Q = ClientCaller::QueryOutcome::Kind;
  (void)query("SET tenantgate.token = '" + token("acme") + "'");
  const std::string globex = "SET LOCAL tenantgate.token = '" + token("globex") + "'";
  for (const std::string end : {"COMMIT AND CHAIN", "ROLLBACK AND CHAIN", "END"}) {
    ASSERT_EQ(query(globex, 'T').kind, Q::kAnswer);
    EXPECT_EQ(caller_.identity().tenant.value, "globex");
    ASSERT_EQ(query(end, 'T').kind, Q::kRewrite) << end;
    EXPECT_FALSE(caller_.on_prepared_names({{K::kEndTransaction, ""}}));
    EXPECT_EQ(caller_.identity().tenant.value, "acme") << end;
  }
  // Statements after the end in the same Query are refused, nothing is sent.
  ASSERT_EQ(query(globex, 'T').kind, Q::kAnswer);
  auto both = query("COMMIT; BEGIN; SELECT * FROM t", 'T');
  EXPECT_EQ(both.kind, Q::kRefuse);
  EXPECT_EQ(both.refusal.sqlstate, "0A000");
  EXPECT_EQ(caller_.identity().tenant.value, "globex");
  EXPECT_EQ(query("SELECT 1; COMMIT;", 'T').kind, Q::kRewrite);
  EXPECT_EQ(query("ROLLBACK; SELECT 1", 'T').kind, Q::kRefuse);
  EXPECT_EQ(query("PREPARE TRANSACTION 'x'; SELECT 1", 'T').kind, Q::kRefuse);
  // A Parse's COMMIT waits for ReadyForQuery.
  EXPECT_FALSE(caller_.on_parse("", "COMMIT AND CHAIN"));
  EXPECT_FALSE(caller_.on_prepared_names({{K::kEndTransaction, ""}}));
  EXPECT_EQ(caller_.identity().tenant.value, "globex");
  caller_.on_ready_for_query('I');
  EXPECT_EQ(caller_.identity().tenant.value, "acme");
  // Without a local caller a multi-statement Query passes.
  EXPECT_EQ(query("COMMIT; SELECT 1", 'T').kind, Q::kRewrite);

  EXPECT_TRUE(ends_transaction_before_last("commit; select 1"));
  EXPECT_TRUE(ends_transaction_before_last("ABORT;;BEGIN"));
  EXPECT_FALSE(ends_transaction_before_last("SELECT 'COMMIT; x'; COMMIT"));
  EXPECT_FALSE(ends_transaction_before_last("COMMIT;"));
  EXPECT_FALSE(ends_transaction_before_last("SELECT 1 AS commit; SELECT 2"));
}

}  // namespace
}  // namespace tenantgate::proxy
