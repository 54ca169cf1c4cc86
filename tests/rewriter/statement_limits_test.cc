// Size and nesting limits: statements that could overflow the parser's stack
// are refused with 54001 before parsing, and statements just inside the
// limits are rewritten without crashing.
#include "rewriter/statement_limits.h"

#include <gtest/gtest.h>

#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;
using testing::rewrite;

TEST(EstimateNesting, CountsWordsOperatorsAndBrackets) {
  const NestingEstimate e = estimate_nesting("SELECT a + b FROM t WHERE (x = (1))");
  EXPECT_EQ(e.words, 7u);           // SELECT a b FROM t WHERE x
  EXPECT_EQ(e.operator_chars, 2u);  // + =
  EXPECT_EQ(e.max_brackets, 2u);
}

TEST(EstimateNesting, LiteralsCommasAndParametersAreFree) {
  const NestingEstimate e = estimate_nesting("1, 2.5e-3, 'a,b', $1, $22, 7");
  EXPECT_EQ(e.units(), 0u);
}

TEST(EstimateNesting, SkipsStringsCommentsAndQuotedText) {
  EXPECT_EQ(estimate_nesting("'+ + + ((('").units(), 0u);
  EXPECT_EQ(estimate_nesting("'it''s + +'").units(), 0u);
  EXPECT_EQ(estimate_nesting("E'\\' + + '").units(), 0u);
  EXPECT_EQ(estimate_nesting("-- + + +\n").units(), 0u);
  EXPECT_EQ(estimate_nesting("/* + /* nested + */ + */").units(), 0u);
  EXPECT_EQ(estimate_nesting("$$ + + $$").units(), 0u);
  EXPECT_EQ(estimate_nesting("$tag$ + $$ + $tag$").units(), 0u);
  EXPECT_EQ(estimate_nesting("\"a + b\"").units(), 1u);  // one identifier
}

TEST(EstimateNesting, PlainStringsHaveNoBackslashEscapes) {
  // With standard_conforming_strings on, 'a\' ends at the second quote, so the
  // operators after it are code and must be counted.
  EXPECT_EQ(estimate_nesting("'a\\' + 1 + 1").operator_chars, 2u);
}

TEST(EstimateNesting, NumberFollowedByLetterStartsAWord) {
  EXPECT_EQ(estimate_nesting("1a").words, 1u);
  EXPECT_EQ(estimate_nesting("1e5").words, 0u);
}

TEST(EstimateNesting, UnterminatedConstructsEndTheScan) {
  EXPECT_EQ(estimate_nesting("'abc").units(), 0u);
  EXPECT_EQ(estimate_nesting("/* abc").units(), 0u);
  EXPECT_EQ(estimate_nesting("$$ abc").units(), 0u);
}

std::string chain(const std::string& head, const std::string& link, int n,
                  const std::string& tail) {
  std::string s = head;
  s.reserve(head.size() + link.size() * n + tail.size());
  for (int i = 0; i < n; ++i) s += link;
  return s + tail;
}

TEST(EstimateNesting, CountsSetOperationsAndStatements) {
  const NestingEstimate e = estimate_nesting(
      "SELECT 1 union SELECT 2 INTERSECT SELECT 3 Except SELECT 4;; SELECT 'UNION' ; -- x\n"
      "SELECT \"union\" FROM unions; /* ; */ ;  ");
  EXPECT_EQ(e.set_operations, 3u);  // not the string, the quoted name or `unions`
  EXPECT_EQ(e.statements, 3u);      // empty statements and comments do not count
  EXPECT_EQ(estimate_nesting("").statements, 0u);
  EXPECT_EQ(estimate_nesting("  ;  ").statements, 0u);
  EXPECT_EQ(estimate_nesting("SELECT ';'").statements, 1u);
}

TEST(StatementLimits, WideSetOperationsAreRefusedBeforeParsing) {
  // 4,990 arms fit the nesting estimate but cost the parse about 0.2 s.
  const std::string wide = chain("SELECT 0 AS c", " UNION SELECT 1 AS c", 4990, "");
  ASSERT_LE(estimate_nesting(wide).units(), kMaxNestingUnits);
  const RewriteResult r = rewrite(wide, identity("acme"), *golden_policy());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.refusal().sqlstate, "54001");
  EXPECT_NE(r.refusal().message.find("UNION/INTERSECT/EXCEPT"), std::string::npos)
      << r.refusal().message;
  // At the cap the statement is analysed as usual.
  const std::string at_cap =
      chain("SELECT 0 AS c", " UNION SELECT 1 AS c", static_cast<int>(kMaxSetOperations), "");
  const RewriteResult ok = rewrite(at_cap, identity("acme"), *golden_policy());
  EXPECT_TRUE(ok.is_ok()) << ok.refusal().message;
}

TEST(StatementLimits, ManyStatementsAreRefusedBeforeParsing) {
  const std::string many =
      chain("SELECT 1", "; SELECT 1", static_cast<int>(kMaxStatements), "");  // one too many
  const RewriteResult r = rewrite(many, identity("acme"), *golden_policy());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.refusal().sqlstate, "54001");
  EXPECT_NE(r.refusal().message.find("too many statements"), std::string::npos);
  const std::string at_cap =
      chain("SELECT 1", "; SELECT 1", static_cast<int>(kMaxStatements) - 1, ";");
  const RewriteResult ok = rewrite(at_cap, identity("acme"), *golden_policy());
  EXPECT_TRUE(ok.is_ok()) << ok.refusal().message;
}

TEST(StatementLimits, TooLongIsRefused) {
  Options options;
  options.max_statement_bytes = 100;
  const std::string sql = "SELECT * FROM countries WHERE code = '" + std::string(100, 'x') + "'";
  const RewriteResult r = rewrite(sql, identity("acme"), *golden_policy(), options);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.refusal().sqlstate, "54001");
}

TEST(StatementLimits, NulByteIsRefused) {
  const RewriteResult r =
      rewrite(std::string("SELECT 1\0; DROP TABLE users", 27), identity("acme"), *golden_policy());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.refusal().sqlstate, "42601");
}

// Each of these would crash libpg_query on an 8 MB stack (measured: `+1`
// chains at ~4,300 levels, UNION at ~8,700 arms) and many on any stack.
TEST(StatementLimits, BombsAreRefusedBeforeParsing) {
  const std::vector<std::string> bombs = {
      chain("SELECT 1", "+1", 100000, " FROM users"),
      chain("SELECT 'a'", "||'a'", 50000, ""),
      chain("SELECT 1", " UNION SELECT 1", 30000, ""),
      chain("SELECT ", "NOT ", 40000, "true"),
      chain("SELECT ", "(", 30000, "1") + std::string(30000, ')'),
      chain("SELECT ", "ARRAY[", 30000, "1") + std::string(30000, ']'),
      chain("SELECT 1", "::int", 30000, ""),
      chain("SELECT * FROM users WHERE a = 1", " AND a = 1", 30000, ""),
      chain("SELECT ", "- ", 60000, "1"),
  };
  for (const std::string& sql : bombs) {
    const RewriteResult r = rewrite(sql, identity("acme"), *golden_policy());
    ASSERT_FALSE(r.is_ok()) << sql.substr(0, 60);
    EXPECT_EQ(r.refusal().sqlstate, "54001") << sql.substr(0, 60);
  }
}

// The worst case per nesting unit measured (a `+1` chain, ~1.9 KB of stack
// per unit in the parser) just under the limit: parses, walks, deparses and
// verifies (or refuses) without crashing on kRequiredStackBytes.
TEST(StatementLimits, DeepestAllowedStatementDoesNotCrash) {
  const std::string sql =
      chain("SELECT 1", "+1", static_cast<int>(kMaxNestingUnits) - 10, " FROM users");
  ASSERT_LE(estimate_nesting(sql).units(), kMaxNestingUnits);
  const RewriteResult r = rewrite(sql, identity("acme"), *golden_policy());
  if (!r.is_ok()) {
    EXPECT_NE(r.refusal().sqlstate, "54001");
  }
}

TEST(StatementLimits, LongFlatStatementsAreFine) {
  // 20,000 rows of literals: flat lists cost no nesting units.
  const std::string sql =
      chain("INSERT INTO users (id, email) VALUES (0, 'a')", ", (1, 'a')", 20000, "");
  EXPECT_LT(estimate_nesting(sql).units(), 20u);
  const RewriteResult r = rewrite(sql, identity("acme"), *golden_policy());
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  EXPECT_TRUE(r.value().changed);
}

}  // namespace
}  // namespace tenantgate::rewriter
