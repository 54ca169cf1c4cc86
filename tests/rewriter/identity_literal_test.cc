// Identity literals: whatever an identity value holds, the rewritten SQL
// parses back to a constant with exactly that value.
#include "rewriter/identity_literal.h"

#include <gtest/gtest.h>

#include "rewriter/pg_tree.h"
#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;
using testing::rewrite;

TEST(RenderLiteral, Text) {
  EXPECT_EQ(render_literal({"acme", policy::ValueType::kText}), "'acme'");
  EXPECT_EQ(render_literal({"o'hare", policy::ValueType::kText}), "'o''hare'");
  EXPECT_EQ(render_literal({"a\\b", policy::ValueType::kText}), "E'a\\\\b'");
  EXPECT_EQ(render_literal({"a\\'", policy::ValueType::kText}), "E'a\\\\'''");
  EXPECT_EQ(render_literal({"", policy::ValueType::kText}), "''");
}

TEST(RenderLiteral, IntAndUuid) {
  EXPECT_EQ(render_literal({"42", policy::ValueType::kInt}), "42");
  EXPECT_EQ(render_literal({"-9223372036854775808", policy::ValueType::kInt}),
            "-9223372036854775808");
  EXPECT_EQ(render_literal({"0e9a7b1c-1234-4abc-8def-00112233aabb", policy::ValueType::kUuid}),
            "'0e9a7b1c-1234-4abc-8def-00112233aabb'");
}

TEST(Markers, AvoidTextInTheStatement) {
  const Markers plain = make_markers("SELECT 1");
  const Markers avoided = make_markers("SELECT '" + plain.tenant + "'");
  EXPECT_NE(avoided.tenant, plain.tenant);
  EXPECT_EQ(std::string("SELECT '" + plain.tenant + "'").find(avoided.tenant), std::string::npos);
}

// The constant the scope predicate compares with, read back from the output.
pg_query::A_Const scope_constant(const std::string& sql) {
  pg_query::ParseResult tree;
  EXPECT_FALSE(parse_sql(sql, &tree).has_value()) << sql;
  const auto& where = tree.stmts(0)
                          .stmt()
                          .select_stmt()
                          .from_clause(0)
                          .range_subselect()
                          .subquery()
                          .select_stmt()
                          .where_clause();
  return where.a_expr().rexpr().a_const();
}

TEST(IdentityLiteral, HostileTextValuesStayInsideTheirLiteral) {
  const std::vector<std::string> values = {
      "o'hare",
      "x' OR '1'='1",
      "a\\",
      "a\\'; DROP TABLE users; --",
      "$$",
      "$x$ $x$",
      "zürich 東京 🙂",
      "line\nbreak\ttab",
      "'",
      "\\\\'\\",
      "/* c",
      "-- c",
      "tg_tenant_value",
      "E'",
      "U&'\\0041'",
      "';SELECT 1;'",
  };
  for (const std::string& v : values) {
    const RewriteResult r = rewrite("SELECT * FROM users", identity(v), *golden_policy());
    ASSERT_TRUE(r.is_ok()) << v << ": " << r.refusal().message;
    const pg_query::A_Const c = scope_constant(r.value().sql);
    ASSERT_TRUE(c.has_sval()) << r.value().sql;
    EXPECT_EQ(c.sval().sval(), v) << r.value().sql;
  }
}

TEST(IdentityLiteral, IntegersAcrossTheInt64Range) {
  for (const std::string v : {"0", "7", "-7", "2147483647", "2147483648", "-2147483649",
                              "9223372036854775807", "-9223372036854775808"}) {
    const RewriteResult r =
        rewrite("SELECT * FROM users", identity(v, "1", policy::ValueType::kInt), *golden_policy());
    ASSERT_TRUE(r.is_ok()) << v;
    const pg_query::A_Const c = scope_constant(r.value().sql);
    const std::string got = c.has_ival() ? std::to_string(c.ival().ival()) : c.fval().fval();
    EXPECT_EQ(got, v) << r.value().sql;
  }
}

TEST(IdentityLiteral, Uuid) {
  const RewriteResult r =
      rewrite("SELECT * FROM users",
              identity("0E9A7B1C-1234-4ABC-8DEF-00112233AABB", "1", policy::ValueType::kUuid),
              *golden_policy());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(scope_constant(r.value().sql).sval().sval(), "0e9a7b1c-1234-4abc-8def-00112233aabb");
}

}  // namespace
}  // namespace tenantgate::rewriter
