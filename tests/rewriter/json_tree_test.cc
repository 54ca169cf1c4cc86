// The rewriter reads libpg_query's JSON output instead of its protobuf output
// (json_tree.h). These tests hold the two to the same tree: every statement of
// the golden corpus, its rewritten form, and constructs chosen for the JSON
// writer's special cases parse to byte-identical protobuf trees both ways.
#include "rewriter/json_tree.h"

#include <gtest/gtest.h>
#include <pg_query.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pg_query.pb.h"
#include "rewriter/pg_tree.h"

namespace tenantgate::rewriter {
namespace {

namespace fs = std::filesystem;

// Parses `sql` both ways; on success both trees must serialise identically
// (neither carries source positions), and both must refuse alike.
void expect_same_parse(const std::string& sql) {
  pg_query::ParseResult from_json;
  pg_query::ParseResult from_protobuf;
  const std::optional<Refusal> a = parse_sql(sql, &from_json);
  const std::optional<Refusal> b = parse_sql_protobuf(sql, &from_protobuf);
  ASSERT_EQ(a.has_value(), b.has_value()) << sql;
  if (a) {
    EXPECT_EQ(a->sqlstate, b->sqlstate) << sql;
    return;
  }
  EXPECT_EQ(from_json.SerializeAsString(), from_protobuf.SerializeAsString())
      << sql << "\njson:     " << from_json.ShortDebugString()
      << "\nprotobuf: " << from_protobuf.ShortDebugString();
}

// The SQL of every golden case: the input, and the expected rewrite when the
// case has one.
std::vector<std::string> golden_statements() {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(TG_REWRITER_GOLDEN_DIR)) {
    if (entry.path().extension() != ".txt") continue;
    std::ifstream in(entry.path());
    std::string line;
    std::string sql;
    bool in_sql = false;
    bool in_expected = false;
    auto flush = [&] {
      if (!sql.empty() && sql.rfind("UNCHANGED", 0) != 0 && sql.rfind("ERROR", 0) != 0) {
        out.push_back(sql);
      }
      sql.clear();
    };
    while (std::getline(in, line)) {
      if (line.rfind("== ", 0) == 0) {
        flush();
        in_sql = true;
        in_expected = false;
      } else if (line.rfind("--> ", 0) == 0) {
        flush();
        in_sql = false;
        in_expected = true;
        sql = line.substr(4);
      } else if (line.empty() || line[0] == '#' || line.rfind("params:", 0) == 0) {
        if (in_expected) flush();
        in_expected = false;
      } else if ((in_sql || in_expected) && line[0] != '@') {
        if (!sql.empty()) sql += '\n';
        sql += line;
      }
    }
    flush();
  }
  return out;
}

TEST(JsonTree, GoldenCorpusParsesAlikeBothWays) {
  const std::vector<std::string> corpus = golden_statements();
  ASSERT_GT(corpus.size(), 700u);
  for (const std::string& sql : corpus) expect_same_parse(sql);
}

TEST(JsonTree, WriterSpecialCasesParseAlike) {
  const char* const statements[] = {
      // A_Const of every kind, and the Integer values the JSON writer drops.
      "SELECT 1, -7, 0, 2147483647, -2147483648, 9223372036854775807, 1.5, -0.0, 1e300",
      "SELECT true, false, NULL, B'1010', X'ff', 'text', E'tab\\there', U&'\\0041'",
      "SELECT $1::int[], $2::text[][], $3::numeric(10, -2)",
      "SELECT * FROM users LIMIT 0 OFFSET -1",
      "SELECT * FROM users WHERE id IN (-1, 0, 1)",
      // Strings the JSON writer escapes, and non-ASCII text.
      "SELECT 'quote '' and \" and \\ backslash', '<tag> & </tag>', 'ünïcödé ☃ 𝄞'",
      "SELECT E'\\x01\\x1f control', E'line\\nbreak\\r\\f\\b'",
      "SELECT \"weird \"\" ident\", \"ü\" FROM \"Mixed Case\".\"t\"",
      "SELECT $$dollar 'quoted' \\ text$$, $tag$x$tag$",
      // Char, enum and bool fields.
      "CREATE TEMP TABLE t (a int PRIMARY KEY, b int REFERENCES u (id) MATCH FULL "
      "ON DELETE CASCADE ON UPDATE SET NULL, c text COLLATE \"C\" NOT NULL DEFAULT 'x')",
      "CREATE UNLOGGED TABLE t2 (LIKE t INCLUDING ALL)",
      "ALTER TABLE t ALTER COLUMN a SET STATISTICS -1",
      "CREATE SEQUENCE s INCREMENT BY -1 MINVALUE -100 START -5",
      "SELECT a FROM t ORDER BY a DESC NULLS LAST, b USING <",
      "SELECT DISTINCT ON (a) a, count(*) FILTER (WHERE b > 0) OVER (PARTITION BY c ROWS "
      "BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t GROUP BY ROLLUP (a, b) HAVING sum(b) < -3",
      "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n - 1 FROM r WHERE n > -5) "
      "SELECT * FROM r",
      "INSERT INTO t (a) VALUES (-1) ON CONFLICT (a) DO UPDATE SET b = EXCLUDED.b RETURNING *",
      "UPDATE t SET b = -b WHERE a = ANY('{-1,0}'::int[])",
      "DELETE FROM t USING u WHERE t.a = u.id AND u.id <> -0",
      "COPY t (a, b) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '')",
      "SET search_path = public, \"$user\"; SHOW ALL; RESET ALL",
      "SELECT x::interval second(3), '1 day'::interval day to second(-0), "
      "current_timestamp(2), localtime",
      "SELECT a[1:2], a[-1], (r).f, ROW(1, -2)::pair, ARRAY[[1, -2], [0, 4]]",
      "SELECT CASE WHEN a THEN -1 ELSE 0 END, COALESCE(a, -1), NULLIF(a, 0), GREATEST(-1, 0)",
      "SELECT a IS NOT DISTINCT FROM b, a IS TRUE, a BETWEEN SYMMETRIC -1 AND 1, "
      "a ILIKE 'x%' ESCAPE '!', a SIMILAR TO 'y'",
      "SELECT xmlelement(name x, xmlattributes(1 AS y)), xmlparse(document '<a/>')",
      "SELECT * FROM t TABLESAMPLE SYSTEM (10) REPEATABLE (-3), LATERAL "
      "generate_series(-2, 0) g, ROWS FROM (f(1), g(-1)) WITH ORDINALITY AS x(a, b)",
      "GRANT SELECT (a) ON t TO PUBLIC WITH GRANT OPTION",
      "EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1",
      "PREPARE p (int) AS SELECT -$1; EXECUTE p(-2); DEALLOCATE p",
      "SELECT 1; ; SELECT -2 /* comment */; -- trailing",
  };
  for (const char* sql : statements) expect_same_parse(sql);
}

TEST(JsonTree, AmbiguousIntegersFallBackToProtobuf) {
  // libpg_query 15-4.0.0 writes -7 and 0 alike in JSON; the trees must differ.
  pg_query::ParseResult negative;
  pg_query::ParseResult zero;
  ASSERT_FALSE(parse_sql("SELECT -7", &negative).has_value());
  ASSERT_FALSE(parse_sql("SELECT 0", &zero).has_value());
  EXPECT_NE(negative.SerializeAsString(), zero.SerializeAsString());

  PgQueryParseResult raw = pg_query_parse("SELECT -7");
  ASSERT_EQ(raw.error, nullptr);
  pg_query::ParseResult tree;
  EXPECT_EQ(read_json_tree(raw.parse_tree, &tree, JsonTreeOptions{.max_depth = 100}),
            JsonTreeStatus::kAmbiguousInteger);
  pg_query_free_parse_result(raw);
}

TEST(JsonTree, SourcePositionsAreLeftOut) {
  pg_query::ParseResult tree;
  ASSERT_FALSE(parse_sql("SELECT a FROM t; SELECT b", &tree).has_value());
  ASSERT_EQ(tree.stmts_size(), 2);
  EXPECT_EQ(tree.stmts(1).stmt_location(), 16);
  const auto& target = tree.stmts(0).stmt().select_stmt().target_list(0).res_target();
  EXPECT_EQ(target.location(), 0);
  EXPECT_EQ(target.val().column_ref().location(), 0);
  EXPECT_EQ(tree.stmts(0).stmt().select_stmt().from_clause(0).range_var().location(), 0);
}

JsonTreeStatus read(const std::string& json, int max_depth = 100) {
  pg_query::ParseResult tree;
  return read_json_tree(json, &tree, JsonTreeOptions{.max_depth = max_depth});
}

TEST(JsonTree, ReadsWhatTheWriterWrites) {
  EXPECT_EQ(read(R"({"version":150001,"stmts":[]})"), JsonTreeStatus::kOk);
  EXPECT_EQ(read(R"( { "version" : 150001 , "stmts" : [ ] } )"), JsonTreeStatus::kOk);
  pg_query::ParseResult tree;
  ASSERT_EQ(
      read_json_tree(
          R"({"stmts":[{"stmt":{"A_Const":{"sval":{"sval":"a\"\\\/\b\f\n\r\tb\u003c\u00fc\ud834\udd1e"}}}}]})",
          &tree, JsonTreeOptions{.max_depth = 100}),
      JsonTreeStatus::kOk);
  EXPECT_EQ(tree.stmts(0).stmt().a_const().sval().sval(),
            "a\"\\/\b\f\n\r\tb<\xc3\xbc\xf0\x9d\x84\x9e");
}

TEST(JsonTree, RefusesAnythingElse) {
  const char* const malformed[] = {
      "",
      "{",
      "[]",
      R"({"version":150001,"stmts":[]} x)",
      R"({"version":150001,"unknown":1})",
      R"({"version":"150001"})",
      R"({"version":1.5})",
      R"({"version":99999999999})",
      R"({"version":1,"version":2})",
      R"({"stmts":[{"stmt":{"SelectStmt":{},"UpdateStmt":{}}}]})",
      R"({"stmts":[{"stmt":{"NoSuchNode":{}}}]})",
      R"({"stmts":[{"stmt":null}]})",
      R"({"stmts":{}})",
      R"({"stmts":[{"stmt":{"SelectStmt":{"op":"NO_SUCH_OP"}}}]})",
      R"({"stmts":[{"stmt":{"SelectStmt":{"all":1}}}]})",
      R"({"stmts":[{"stmt":{"String":{"sval":"a\q"}}}]})",
      R"({"stmts":[{"stmt":{"String":{"sval":"a\u00"}}}]})",
      R"({"stmts":[{"stmt":{"String":{"sval":"\u0000"}}}]})",
      R"({"stmts":[{"stmt":{"String":{"sval":"\udc00"}}}]})",
      R"({"stmts":[{"stmt":{"String":{"sval":"\ud800x"}}}]})",
      "{\"stmts\":[{\"stmt\":{\"String\":{\"sval\":\"a\nb\"}}}]}",
      R"({"stmts":[{"stmt":{"String":{"sval":"unterminated}}}]})",
  };
  for (const char* json : malformed) {
    EXPECT_EQ(read(json), JsonTreeStatus::kMalformed) << json;
  }
  EXPECT_EQ(read("{\"stmts\":[{\"stmt\":{\"String\":{\"sval\":\"\xff\"}}}]}"),
            JsonTreeStatus::kInvalidUtf8);
  EXPECT_EQ(read("{\"stmts\":[{\"stmt\":{\"String\":{\"sval\":\"\xc0\xaf\"}}}]}"),
            JsonTreeStatus::kInvalidUtf8);
  EXPECT_EQ(read("{\"stmts\":[{\"stmt\":{\"String\":{\"sval\":\"\xed\xa0\x80\"}}}]}"),
            JsonTreeStatus::kInvalidUtf8);
}

TEST(JsonTree, DepthIsBounded) {
  std::string deep = R"({"stmts":[{"stmt":)";
  for (int i = 0; i < 60; ++i) deep += R"({"List":{"items":[)";
  deep += "{}";
  for (int i = 0; i < 60; ++i) deep += "]}}";
  deep += "}]}";
  EXPECT_EQ(read(deep, 1000), JsonTreeStatus::kOk);
  EXPECT_EQ(read(deep, 100), JsonTreeStatus::kTooDeep);
}

TEST(JsonTree, InvalidUtf8IsRefusedAs22021) {
  pg_query::ParseResult tree;
  const std::optional<Refusal> r = parse_sql("SELECT '\xff\xfe'", &tree);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->sqlstate, "22021");
}

}  // namespace
}  // namespace tenantgate::rewriter
