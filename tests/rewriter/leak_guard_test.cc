// The leak classification (leak_guard.h) as a table, and the CockroachDB
// construction of evaluation_guards.cc (the golden file guards.txt holds the
// PostgreSQL one).
#include "rewriter/leak_guard.h"

#include <gtest/gtest.h>

#include <string>

#include "rewriter/pg_tree.h"
#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;

// The WHERE clause of `SELECT 1 FROM t WHERE <condition>`, classified.
bool leaky(const std::string& condition, const policy::AppCatalog* catalog = nullptr) {
  pg_query::ParseResult tree;
  RangeVarPositions positions;
  const std::string sql = "SELECT 1 FROM t WHERE " + condition;
  if (parse_sql(sql, &tree, &positions)) ADD_FAILURE() << "does not parse: " << sql;
  return LeakRules(catalog).is_leaky(tree.stmts(0).stmt().select_stmt().where_clause());
}

TEST(LeakRules, Table) {
  struct Case {
    const char* condition;
    bool leaky;
  };
  const Case cases[] = {
      {"a = 1", false},
      {"a <> $1 AND b < 'x' OR c IS NULL", false},
      {"a IN (1, 2, 3)", false},
      {"a BETWEEN 1 AND 9", false},
      {"a IS DISTINCT FROM b", false},
      {"a = ANY ('{1,2}')", false},
      {"NOT (a >= CURRENT_DATE)", false},
      {"COALESCE(a, b) = 1", false},
      {"(a, b) = (1, 2)", false},
      {"a > now() - interval '1 day'", false},  // no column below the arithmetic
      {"a::int > 0", true},
      {"to_date(a, 'YYYY') IS NOT NULL", true},
      {"a + 1 > 0", true},
      {"a / 2 = 0", true},
      {"a LIKE 'x%'", true},
      {"a ~ 'x'", true},
      {"a[1] = 1", true},
      {"EXISTS (SELECT 1)", true},
      {"a IN (SELECT 1)", true},
      {"CASE WHEN a = 1 THEN b::int ELSE 0 END = 0", true},
      {"'5'::int = 5", false},  // no column below the cast
      {"lower('X') = 'x'", false},
  };
  for (const Case& c : cases) EXPECT_EQ(leaky(c.condition), c.leaky) << c.condition;
}

TEST(LeakRules, AppComparisonOperatorsAreNotLeakproof) {
  policy::AppCatalog catalog;
  catalog.operators["="].insert(policy::QualifiedName{"public", "noisy_eq"});
  catalog.seal();
  EXPECT_TRUE(leaky("a = 1", &catalog));
  EXPECT_TRUE(leaky("a IN (1, 2)", &catalog));
  EXPECT_TRUE(leaky("NULLIF(a, 1) IS NULL", &catalog));
  EXPECT_TRUE(leaky("a BETWEEN 1 AND 2", &catalog));
  EXPECT_FALSE(leaky("a IS NULL", &catalog));
}

TEST(LeakRules, AppFunctionsNamedLikeAggregatesAreNotAggregates) {
  pg_query::ParseResult tree;
  RangeVarPositions positions;
  ASSERT_FALSE(parse_sql("SELECT max(a, 1) FROM t", &tree, &positions));
  const pg_query::Node& call = tree.stmts(0).stmt().select_stmt().target_list(0).res_target().val();
  EXPECT_TRUE(LeakRules(nullptr).calls_aggregate(call));
  policy::AppCatalog catalog;
  catalog.functions.insert(policy::QualifiedName{"public", "max"});
  catalog.seal();
  EXPECT_FALSE(LeakRules(&catalog).calls_aggregate(call));
}

std::string cockroach(const std::string& sql) {
  Options options;
  options.dialect = Dialect::kCockroachDB;
  const RewriteResult r = testing::rewrite(sql, identity("acme"), *golden_policy(), options);
  if (!r.is_ok()) return "ERROR " + r.refusal().sqlstate + " " + r.refusal().message;
  return r.value().sql;
}

const std::string kFencedUsers =
    "(WITH tg_fence AS MATERIALIZED (SELECT * FROM public.users WHERE users.tenant_id = 'acme') "
    "SELECT * FROM tg_fence)";

TEST(CockroachConstruction, TablesALeakyConditionReadsAreFenced) {
  EXPECT_EQ(cockroach("SELECT id FROM users WHERE id = 8 AND email::int > 0"),
            "SELECT id FROM " + kFencedUsers +
                " users WHERE id = 8 AND CASE WHEN users.tenant_id = 'acme' THEN email::int > 0 "
                "ELSE false END");
  // Leakproof conditions need no fence: the index still serves them.
  EXPECT_EQ(cockroach("SELECT id FROM users WHERE id = 8"),
            "SELECT id FROM (SELECT * FROM public.users WHERE users.tenant_id = 'acme') users "
            "WHERE id = 8");
}

TEST(CockroachConstruction, DerivedTablesAreFencedWithACte) {
  EXPECT_EQ(cockroach("SELECT * FROM (SELECT id, email::int AS n FROM users) s WHERE s.n > 0"),
            "SELECT * FROM (WITH tg_fence AS MATERIALIZED (SELECT id, email::int AS n FROM "
            "(SELECT * FROM public.users WHERE users.tenant_id = 'acme') users) SELECT * FROM "
            "tg_fence) s WHERE s.n > 0");
}

TEST(CockroachConstruction, WhatItCannotFenceIsRefused) {
  EXPECT_EQ(cockroach("UPDATE users SET email = 'x' WHERE email::int = 5").substr(0, 12),
            "ERROR 0A000 ");
  EXPECT_EQ(cockroach("DELETE FROM users WHERE to_date(email, 'YYYY') IS NULL").substr(0, 12),
            "ERROR 0A000 ");
  EXPECT_EQ(cockroach("SELECT u.id FROM users u, LATERAL (SELECT 1 WHERE u.email::int > 0) l")
                .substr(0, 12),
            "ERROR 0A000 ");
  // HAVING keeps its bool_and guard: CockroachDB keeps it above the GroupBy.
  EXPECT_NE(cockroach("SELECT email FROM users GROUP BY email HAVING email::int > 0")
                .find("bool_and(users.tenant_id = 'acme')"),
            std::string::npos);
}

}  // namespace
}  // namespace tenantgate::rewriter
