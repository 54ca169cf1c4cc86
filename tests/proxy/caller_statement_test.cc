// The statements about the caller that the proxy answers itself, as a table.
#include "proxy/caller_statement.h"

#include <gtest/gtest.h>

#include "proxy/caller_state.h"

namespace tenantgate::proxy {
namespace {

using K = CallerStatementKind;

struct Case {
  const char* sql;
  K kind;
  const char* token = "";
};

TEST(CallerStatementTest, Table) {
  const Case cases[] = {
      {"SELECT 1", K::kNone},
      {"SELECT 'tenantgate.token'", K::kNone},
      {"SET tenantgate.token = 'a.b.c'", K::kSetToken, "a.b.c"},
      {"set TenantGate.Token to 'a.b.c';", K::kSetToken, "a.b.c"},
      {"SET SESSION tenantgate.token = 'x'", K::kSetToken, "x"},
      {"  /* c */ SET \"tenantgate\".\"token\" = 'x' -- trailing\n", K::kSetToken, "x"},
      {"SET LOCAL tenantgate.token = 'x'", K::kSetLocal, "x"},
      {"SET tenantgate.token = 'it''s'", K::kSetToken, "it's"},
      {"RESET tenantgate.token", K::kReset},
      {"SET tenantgate.token TO DEFAULT", K::kReset},
      {"SET LOCAL tenantgate.token = DEFAULT", K::kReset},
      {"SHOW tenantgate.tenant", K::kShowTenant},
      {"show TENANTGATE.USER;", K::kShowUser},
      {"SHOW tenantgate.token", K::kMisplaced},
      {"PREPARE p AS SET tenantgate.token = 'x'", K::kMisplaced},
      {"ALTER ROLE app SET tenantgate.token = 'x'", K::kMisplaced},
      {"SET tenantgate.tenant = 'globex'", K::kNone},  // the rewriter refuses it
      // Misplaced: refused, and the connection is left with no caller.
      {"SET tenantgate.token = 'x'; SELECT 1", K::kMisplaced},
      {"SELECT 1; SET tenantgate.token = 'x'", K::kMisplaced},
      {"BEGIN; SET LOCAL tenantgate.token = 'x'; COMMIT", K::kMisplaced},
      {"SET tenantgate.token = E'x'", K::kMisplaced},
      {"SET tenantgate.token = $$x$$", K::kMisplaced},
      {"SET tenantgate.token = 'a' 'b'", K::kMisplaced},
      {"SET tenantgate.token = x", K::kMisplaced},
      {"SET tenantgate.token", K::kMisplaced},
      {"RESET tenantgate.token x", K::kMisplaced},
      {"SET tenantgate.token = 'x", K::kMisplaced},  // unterminated: unreadable
  };
  for (const Case& c : cases) {
    const CallerStatement s = classify_caller_statement(c.sql);
    EXPECT_EQ(s.kind, c.kind) << c.sql;
    EXPECT_EQ(s.token, c.token) << c.sql;
    EXPECT_EQ(s.problem.empty(), c.kind != K::kMisplaced) << c.sql;
  }
}

TEST(CallerStatementTest, EndsCaller) {
  EXPECT_TRUE(ends_caller("RESET ALL"));
  EXPECT_TRUE(ends_caller("discard all;"));
  EXPECT_TRUE(ends_caller("SELECT 1; DISCARD ALL"));
  EXPECT_FALSE(ends_caller("DISCARD PLANS"));
  EXPECT_FALSE(ends_caller("RESET search_path"));
  EXPECT_FALSE(ends_caller("SELECT 'reset all'"));
  EXPECT_FALSE(ends_caller("SELECT 1"));
  EXPECT_TRUE(ends_caller("RESET ALL; SELECT 'x"));  // unreadable: fail towards no caller
}

policy::Identity who(const char* tenant) {
  policy::Identity id;
  id.tenant = {tenant, policy::ValueType::kText};
  return id;
}

TEST(CallerStateTest, Transitions) {
  CallerState none;
  EXPECT_EQ(none.current(), nullptr);

  CallerState s(who("acme"));
  uint64_t g = s.generation();
  ASSERT_NE(s.current(), nullptr);
  EXPECT_EQ(s.current()->tenant.value, "acme");

  s.set_local(who("globex"));
  EXPECT_EQ(s.current()->tenant.value, "globex");
  EXPECT_GT(s.generation(), g);
  g = s.generation();
  s.end_transaction();
  EXPECT_EQ(s.current()->tenant.value, "acme");
  EXPECT_GT(s.generation(), g);
  g = s.generation();
  s.end_transaction();  // nothing local: no change
  EXPECT_EQ(s.generation(), g);

  s.set_session(who("initech"));
  EXPECT_EQ(s.current()->tenant.value, "initech");
  s.set_local(who("globex"));
  s.clear();  // a refused token inside the transaction: nobody, not initech
  EXPECT_EQ(s.current(), nullptr);
  s.end_transaction();
  EXPECT_EQ(s.current(), nullptr);
}

}  // namespace
}  // namespace tenantgate::proxy
