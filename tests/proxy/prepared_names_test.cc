// The prepared-statement names the rewriter reports, which the session hands
// to StatementTracker: every way a query string can prepare, run or drop a
// statement name, through the rewrite cache's exact and shape paths alike.
#include <gtest/gtest.h>

#include "policy/policy.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {
namespace {

using rewriter::PreparedName;
using Kind = PreparedName::Kind;

std::vector<PreparedName> names_of(const std::string& sql) {
  static const auto policy = policy::parse_policy(
      "default_action = \"deny\"\n[tables.\"public.users\"]\nscope = \"tenant\"\n", "p.toml");
  static rewriter::RewriteCache cache(1 << 20);
  policy::Identity id;
  id.tenant = {"acme", policy::ValueType::kText};
  id.database = "appdb";
  const rewriter::Rewriter rw(rewriter::Options{});
  std::vector<PreparedName> out;
  rewriter::run_with_large_stack([&] {
    // Twice: a miss, then a hit (a shape hit for statements with constants).
    for (int i = 0; i < 2; ++i) {
      auto result = cache.rewrite(rw, sql, id, policy);
      EXPECT_TRUE(result.is_ok()) << sql << ": "
                                  << (result.is_ok() ? "" : result.refusal().message);
      if (!result.is_ok()) return;
      if (i == 1) {
        EXPECT_EQ(out, result.value().prepared_names) << sql;
      }
      out = result.value().prepared_names;
    }
  });
  return out;
}

TEST(PreparedNamesTest, EveryStatementThatUsesAName) {
  EXPECT_EQ(names_of("EXECUTE p(1, 'globex')"), (std::vector<PreparedName>{{Kind::kExecute, "p"}}));
  EXPECT_EQ(names_of("EXPLAIN EXECUTE p(2, 'globex')"),
            (std::vector<PreparedName>{{Kind::kExecute, "p"}}));
  EXPECT_EQ(names_of("EXPLAIN (VERBOSE, COSTS false) EXECUTE \"Q\""),
            (std::vector<PreparedName>{{Kind::kExecute, "Q"}}));
  EXPECT_EQ(names_of("PREPARE s AS SELECT * FROM users WHERE id = $1"),
            (std::vector<PreparedName>{{Kind::kPrepare, "s"}}));
  EXPECT_EQ(names_of("DEALLOCATE s"), (std::vector<PreparedName>{{Kind::kDeallocate, "s"}}));
  EXPECT_EQ(names_of("DEALLOCATE PREPARE s"),
            (std::vector<PreparedName>{{Kind::kDeallocate, "s"}}));
  EXPECT_EQ(names_of("DEALLOCATE ALL"), (std::vector<PreparedName>{{Kind::kDeallocateAll, ""}}));
  EXPECT_EQ(names_of("DISCARD ALL"), (std::vector<PreparedName>{{Kind::kDeallocateAll, ""}}));
  EXPECT_TRUE(names_of("DISCARD PLANS").empty());
  EXPECT_TRUE(names_of("SELECT * FROM users WHERE id = 3").empty());
  EXPECT_TRUE(names_of("EXPLAIN SELECT 1").empty());
}

TEST(PreparedNamesTest, CursorsAndTransactionEnds) {
  EXPECT_EQ(names_of("DECLARE c CURSOR FOR SELECT 1"),
            (std::vector<PreparedName>{{Kind::kDeclareCursor, "c"}}));
  EXPECT_EQ(names_of("DECLARE \"Leak\" CURSOR WITH HOLD FOR SELECT 1"),
            (std::vector<PreparedName>{{Kind::kDeclareHoldCursor, "Leak"}}));
  EXPECT_EQ(names_of("FETCH ALL leak"), (std::vector<PreparedName>{{Kind::kUseCursor, "leak"}}));
  EXPECT_EQ(names_of("FETCH NEXT FROM leak"),
            (std::vector<PreparedName>{{Kind::kUseCursor, "leak"}}));
  EXPECT_EQ(names_of("MOVE 3 IN leak"), (std::vector<PreparedName>{{Kind::kUseCursor, "leak"}}));
  EXPECT_EQ(names_of("CLOSE leak"), (std::vector<PreparedName>{{Kind::kCloseCursor, "leak"}}));
  EXPECT_EQ(names_of("CLOSE ALL"), (std::vector<PreparedName>{{Kind::kCloseAllCursors, ""}}));
  EXPECT_EQ(names_of("UPDATE users SET name = 'x' WHERE CURRENT OF c"),
            (std::vector<PreparedName>{{Kind::kUseCursor, "c"}}));
  EXPECT_EQ(names_of("DELETE FROM users WHERE CURRENT OF c"),
            (std::vector<PreparedName>{{Kind::kUseCursor, "c"}}));
  // (PREPARE TRANSACTION is refused: two-phase commit is not allowed.)
  for (const char* end :
       {"COMMIT", "END", "ROLLBACK", "ABORT", "COMMIT AND CHAIN", "ROLLBACK AND CHAIN"}) {
    EXPECT_EQ(names_of(end), (std::vector<PreparedName>{{Kind::kEndTransaction, ""}})) << end;
  }
  EXPECT_TRUE(names_of("ROLLBACK TO SAVEPOINT a").empty());
  EXPECT_TRUE(names_of("BEGIN").empty());
}

TEST(PreparedNamesTest, InStatementOrder) {
  EXPECT_EQ(names_of("PREPARE a AS SELECT 1; EXECUTE a; SELECT 2; DEALLOCATE a; EXECUTE b(5)"),
            (std::vector<PreparedName>{{Kind::kPrepare, "a"},
                                       {Kind::kExecute, "a"},
                                       {Kind::kDeallocate, "a"},
                                       {Kind::kExecute, "b"}}));
}

}  // namespace
}  // namespace tenantgate::proxy
