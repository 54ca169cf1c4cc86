// SqlScanner and lift_constants: every token kind, the give-up cases, what is
// lifted and what stays, and random input (no over-read: run under
// -DTENANTGATE_SANITIZE=ON).
#include "rewriter/literal_scanner.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace tenantgate::rewriter {
namespace {

struct Scanned {
  bool gave_up = false;
  std::vector<std::pair<TokenKind, std::string>> tokens;
};

Scanned scan(std::string_view sql) {
  Scanned out;
  SqlScanner scanner(sql);
  Token t;
  SqlScanner::Status status;
  while ((status = scanner.next(&t)) == SqlScanner::Status::kToken) {
    EXPECT_LT(t.begin, t.end);
    EXPECT_LE(t.end, sql.size());
    out.tokens.emplace_back(t.kind, std::string(sql.substr(t.begin, t.end - t.begin)));
  }
  out.gave_up = status == SqlScanner::Status::kGiveUp;
  // Sticky at the end.
  EXPECT_EQ(scanner.next(&t), status);
  return out;
}

// The one token `sql` scans to.
std::pair<TokenKind, std::string> one(std::string_view sql) {
  const Scanned s = scan(sql);
  EXPECT_FALSE(s.gave_up) << sql;
  EXPECT_EQ(s.tokens.size(), 1u) << sql;
  return s.tokens.empty() ? std::pair<TokenKind, std::string>{} : s.tokens[0];
}

using K = TokenKind;

TEST(SqlScanner, EveryTokenKind) {
  EXPECT_EQ(one("users"), std::make_pair(K::kIdentifier, std::string("users")));
  EXPECT_EQ(one("_a$1é"), std::make_pair(K::kIdentifier, std::string("_a$1é")));
  EXPECT_EQ(one("\"we\"\"ird\""),
            std::make_pair(K::kQuotedIdentifier, std::string("\"we\"\"ird\"")));
  EXPECT_EQ(one("U&\"d\\0061t\""),
            std::make_pair(K::kUnicodeIdentifier, std::string("U&\"d\\0061t\"")));
  EXPECT_EQ(one("'it''s'"), std::make_pair(K::kString, std::string("'it''s'")));
  EXPECT_EQ(one("'a\\'"), std::make_pair(K::kString, std::string("'a\\'")));  // no escapes
  EXPECT_EQ(one("E'a\\'b'"), std::make_pair(K::kEscapeString, std::string("E'a\\'b'")));
  EXPECT_EQ(one("e'a''b\\\\'"), std::make_pair(K::kEscapeString, std::string("e'a''b\\\\'")));
  EXPECT_EQ(one("B'1010'"), std::make_pair(K::kBitString, std::string("B'1010'")));
  EXPECT_EQ(one("x'1F'"), std::make_pair(K::kBitString, std::string("x'1F'")));
  EXPECT_EQ(one("U&'d\\0061t'"), std::make_pair(K::kUnicodeString, std::string("U&'d\\0061t'")));
  EXPECT_EQ(one("$$a'b$$"), std::make_pair(K::kDollarString, std::string("$$a'b$$")));
  EXPECT_EQ(one("$fn$ $$ $x$ $fn$"),
            std::make_pair(K::kDollarString, std::string("$fn$ $$ $x$ $fn$")));
  for (const char* n : {"0", "42", "3.14", ".5", "5.", "1e5", "1.5E-3", "2e+10", "00012"}) {
    EXPECT_EQ(one(n), std::make_pair(K::kNumber, std::string(n)));
  }
  EXPECT_EQ(one("$12"), std::make_pair(K::kParam, std::string("$12")));
  for (const char* op : {"=", "<>", "!=", "<=", ">=", "||", "->>", "@>", "~*", "!~~*", "=>", "*"}) {
    EXPECT_EQ(one(op), std::make_pair(K::kOperator, std::string(op)));
  }
  for (const char* p : {",", "(", ")", "[", "]", ";", ".", "..", ":", "::", ":="}) {
    EXPECT_EQ(one(p), std::make_pair(K::kPunctuation, std::string(p)));
  }
}

TEST(SqlScanner, CommentsAndWhitespace) {
  const Scanned s = scan(" \t\r\n\fa -- one ' \" $$\n /* two /* nested ' */ still */ b--end");
  ASSERT_FALSE(s.gave_up);
  ASSERT_EQ(s.tokens.size(), 2u);
  EXPECT_EQ(s.tokens[0].second, "a");
  EXPECT_EQ(s.tokens[1].second, "b");
}

TEST(SqlScanner, OperatorsFollowScanL) {
  // Trailing + and - are not part of a multi-character operator unless it
  // holds one of ~ ! @ # ^ & | ` ? %.
  Scanned s = scan("a=-1");
  ASSERT_EQ(s.tokens.size(), 4u);
  EXPECT_EQ(s.tokens[1].second, "=");
  EXPECT_EQ(s.tokens[2].second, "-");
  EXPECT_EQ(s.tokens[3], std::make_pair(K::kNumber, std::string("1")));
  s = scan("a@-1");
  ASSERT_EQ(s.tokens.size(), 3u);
  EXPECT_EQ(s.tokens[1].second, "@-");
  // A comment start ends an operator.
  s = scan("a=--x\n1");
  ASSERT_EQ(s.tokens.size(), 3u);
  EXPECT_EQ(s.tokens[1].second, "=");
  s = scan("a</*x*/1");
  ASSERT_EQ(s.tokens.size(), 3u);
  EXPECT_EQ(s.tokens[1].second, "<");
  // N'...' is the keyword NCHAR followed by a string.
  s = scan("N'abc'");
  ASSERT_EQ(s.tokens.size(), 2u);
  EXPECT_EQ(s.tokens[0].first, K::kIdentifier);
  EXPECT_EQ(s.tokens[1].first, K::kString);
}

TEST(SqlScanner, GivesUpWhenUnsure) {
  for (const char* sql : {
           "'unterminated",
           "E'unterminated\\'",
           "\"unterminated",
           "/* unterminated",
           "/* nested /* */",
           "$$unterminated",
           "$tag$x$other$",
           "\"\"",
           "123abc",
           "0x1F",
           "1..2",
           "1e",
           "1e+",
           "1.5.3",
           "$1abc",
           "$foo",
           "$",
           "a \\ b",
           "a { b",
           "a\vb",
           "B'10''11'",
           "X'1F",
           "U&'x",
           "E'\\",
           "1.e",
           "5.x",
       }) {
    EXPECT_TRUE(scan(sql).gave_up) << sql;
  }
  EXPECT_TRUE(scan(std::string_view("a\0b", 3)).gave_up);
}

// lift_constants: the shape text, or "none".
std::string shape_of(std::string_view sql) {
  const std::optional<StatementShape> s = lift_constants(sql);
  if (!s) return "none";
  std::string out = s->text;
  for (const auto& l : s->literals) out += " | " + std::string(l);
  return out;
}

TEST(LiftConstants, LiftsExpressionOperands) {
  EXPECT_EQ(shape_of("SELECT * FROM users WHERE users.id = 4711"),
            "SELECT * FROM users WHERE users.id = $1 | 4711");
  EXPECT_EQ(
      shape_of("SELECT a FROM t WHERE b IN (1, 'x', 2.5) AND c LIKE 'a%' LIMIT 10 OFFSET 20"),
      "SELECT a FROM t WHERE b IN ($1, $2, $3) AND c LIKE $4 LIMIT $5 OFFSET $6 | 1 | 'x' | 2.5 "
      "| 'a%' | 10 | 20");
  EXPECT_EQ(shape_of("UPDATE notes SET body = 'it''s' WHERE id = 5"),
            "UPDATE notes SET body = $1 WHERE id = $2 | 'it''s' | 5");
  EXPECT_EQ(shape_of("DELETE FROM t WHERE a BETWEEN 1 AND 2 OR NOT 'x' = b"),
            "DELETE FROM t WHERE a BETWEEN $1 AND $2 OR NOT $3 = b | 1 | 2 | 'x'");
  EXPECT_EQ(shape_of("select 1, e'a\\nb' from t where a=-5"),
            "select $1, $2 from t where a=-$3 | 1 | e'a\\nb' | 5");
  EXPECT_EQ(shape_of("INSERT INTO t (a, b) VALUES (1, 'x') RETURNING 1"),
            "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING $3 | 1 | 'x' | 1");
  EXPECT_EQ(shape_of("SELECT CASE WHEN a THEN 1 ELSE 2 END FROM t"),
            "SELECT CASE WHEN a THEN $1 ELSE $2 END FROM t | 1 | 2");
  EXPECT_EQ(shape_of("SELECT a[1] FROM t WHERE b @> '{1}' AND x ->> 'k' = 'v'"),
            "SELECT a[$1] FROM t WHERE b @> $2 AND x ->> $3 = $4 | 1 | '{1}' | 'k' | 'v'");
  EXPECT_EQ(shape_of("WITH a AS (SELECT 1) SELECT * FROM a; TABLE t; VALUES (2);"),
            "WITH a AS (SELECT $1) SELECT * FROM a; TABLE t; VALUES ($2); | 1 | 2");
  EXPECT_EQ(shape_of("SELECT 1e5, .5, 5., 00012"), "SELECT $1, $2, $3, $4 | 1e5 | .5 | 5. | 00012");
}

TEST(LiftConstants, LeavesOtherConstants) {
  // Typed literals, positions, string continuations, subscripts of constants.
  EXPECT_EQ(shape_of("SELECT date '2020-01-01', interval '1 day', text 'x' FROM t"), "none");
  EXPECT_EQ(shape_of("SELECT a FROM t ORDER BY 1"), "none");
  EXPECT_EQ(shape_of("SELECT a FROM t GROUP BY 1 HAVING count(*) > 2"),
            "SELECT a FROM t GROUP BY 1 HAVING count(*) > $1 | 2");
  EXPECT_EQ(shape_of("SELECT 'a'\n'b'"), "none");
  EXPECT_EQ(shape_of("SELECT 'a' -- c\n'b'"), "none");
  EXPECT_EQ(shape_of("SELECT '{1,2}'[1]"), "SELECT '{1,2}'[$1] | 1");
  EXPECT_EQ(shape_of("SELECT 'x'.y"), "none");
  EXPECT_EQ(shape_of("SELECT'a'"), "none");
  EXPECT_EQ(shape_of("SELECT a FROM t WHERE b = 'x'AND c"), "none");
  EXPECT_EQ(shape_of("SELECT B'101', X'1F', U&'x', $$y$$ FROM t"), "none");
  EXPECT_EQ(shape_of("SELECT E'\\101', E'\\x41', E'\\u0041', E'tg\\_tenant_value'"), "none");
  EXPECT_EQ(shape_of("SELECT a::int FROM t WHERE b = c"), "none");
  EXPECT_EQ(shape_of("SELECT a FROM t WHERE b = 'x' || 'y'"),
            "SELECT a FROM t WHERE b = $1 || $2 | 'x' | 'y'");
}

TEST(LiftConstants, OnlyPlainStatements) {
  for (const char* sql : {
           "SET work_mem = 64",
           "SHOW work_mem",
           "COPY t FROM STDIN",
           "EXPLAIN SELECT 1",
           "PREPARE p AS SELECT 1",
           "DECLARE c CURSOR FOR SELECT 1",
           "FETCH 5 FROM c",
           "SELECT 1; SET x = 1",
           "SELECT * FROM t WHERE a = $1 AND b = 2",
           "(SELECT 1)",
           "CREATE TABLE t AS SELECT 1",
           "DO $$ SELECT 1 $$",
           "",
       }) {
    EXPECT_EQ(shape_of(sql), "none") << sql;
  }
}

TEST(LiftConstants, AdversarialLiterals) {
  // Constants that look like parameters, comments or quotes stay whole.
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE a = '$1' AND b = '--' AND c = '/*' AND d = ''''"),
            "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3 AND d = $4 | '$1' | '--' | '/*' | "
            "''''");
  EXPECT_EQ(shape_of("SELECT /* 5 */ 1 -- 'x'\n, 2"), "SELECT /* 5 */ $1 -- 'x'\n, $2 | 1 | 2");
  EXPECT_EQ(shape_of("SELECT 'héllo ☃', 'x' FROM t"), "SELECT $1, $2 FROM t | 'héllo ☃' | 'x'");
  EXPECT_EQ(shape_of("SELECT 1 FROM t WHERE a = $$x$$"), "SELECT $1 FROM t WHERE a = $$x$$ | 1");
}

// Random bytes from a small alphabet that hits every scanner branch, and
// random cuts of real statements: never crashes, never reads outside the
// input (ASan), and every lifted constant is a token of the input.
TEST(SqlScanner, RandomInput) {
  const unsigned seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  std::mt19937 rng(seed);
  const std::string alphabet =
      "aeEbBxXuUnN_0159.$'\"\\&-/*+=<>!@#%^|`?~:;,()[]{} \n\t\v\r\f\x80\xff";
  const std::vector<std::string> seeds = {
      "SELECT * FROM users WHERE id = 4711 AND name = E'a\\'b' -- x\n",
      "UPDATE t SET a = 'x''y', b = 1.5e3 WHERE c IN (1, 2) /* c /* n */ */",
      "SELECT $tag$ x $tag$, U&'a', B'1', 1::int, a[1], $1",
  };
  for (int iter = 0; iter < 20000; ++iter) {
    std::string sql;
    if (iter % 2 == 0) {
      const std::size_t len = rng() % 40;
      for (std::size_t i = 0; i < len; ++i) sql += alphabet[rng() % alphabet.size()];
    } else {
      const std::string& s = seeds[rng() % seeds.size()];
      sql = s.substr(rng() % s.size());
      sql = sql.substr(0, rng() % (sql.size() + 1));
    }
    // An exact-size heap copy so that ASan sees any read past the end.
    std::unique_ptr<char[]> buf(new char[sql.size()]);
    std::copy(sql.begin(), sql.end(), buf.get());
    const std::string_view view(buf.get(), sql.size());
    (void)scan(view);
    if (const auto shape = lift_constants(view)) {
      for (const std::string_view l : shape->literals) {
        ASSERT_GE(l.data(), view.data());
        ASSERT_LE(l.data() + l.size(), view.data() + view.size());
      }
    }
  }
}

}  // namespace
}  // namespace tenantgate::rewriter
