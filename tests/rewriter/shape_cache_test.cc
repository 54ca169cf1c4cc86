// The shape cache inside RewriteCache: statements that differ only in their
// constants share one rewrite, and a shape hit means exactly what the full
// rewrite of the statement means (the argument is in rewrite_cache.h; these
// tests check it on generated ORM-style traffic and hand-picked cases).
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "rewriter/literal_scanner.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewrite_template.h"
#include "tests/rewriter/equivalence.h"
#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;

RewriteResult cached(RewriteCache& cache, const std::string& sql, const policy::Identity& id,
                     const std::shared_ptr<const policy::Policy>& policy,
                     Options options = Options{}) {
  const Rewriter rewriter{options};
  RewriteResult r = RewriteResult::refused("", "not run");
  run_with_large_stack([&] { r = cache.rewrite(rewriter, sql, id, policy); });
  return r;
}

// Rewrites `sql` through a cache that already holds its shape (built from
// `warm`, which has the same shape with other constants) and compares with the
// full rewrite. Returns what differs; `*hit` says whether the shape was used.
std::string check_equivalent(const std::string& warm, const std::string& sql,
                             const policy::Identity& id, bool* hit) {
  const auto policy = golden_policy();
  RewriteCache cache(1 << 20);
  (void)cached(cache, warm, id, policy);
  const auto before = cache.stats();
  const RewriteResult via_cache = cached(cache, sql, id, policy);
  *hit = cache.stats().shape_hits > before.shape_hits;
  std::string difference;
  run_with_large_stack([&] {
    const RewriteResult full = Rewriter(Options{}).rewrite(sql, id, *policy);
    difference = testing::difference(via_cache, full);
  });
  return difference;
}

TEST(ShapeCache, ConstantsShareOneRewrite) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  for (int i = 0; i < 50; ++i) {
    const std::string sql = "SELECT users.email FROM users WHERE users.id = " + std::to_string(i) +
                            " AND users.name = 'n" + std::to_string(i) + "'";
    const RewriteResult r = cached(cache, sql, identity("acme"), policy);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r.value().sql,
              "SELECT users.email FROM (SELECT * FROM public.users WHERE users.tenant_id = 'acme') "
              "users WHERE users.id = " +
                  std::to_string(i) + " AND users.name = 'n" + std::to_string(i) + "'");
  }
  const RewriteCache::Stats s = cache.stats();
  EXPECT_EQ(s.shape_misses, 1u);
  EXPECT_EQ(s.shape_hits, 49u);
  EXPECT_EQ(s.exact_misses, 0u);
  EXPECT_EQ(cache.entries(), 1u);
  // lookup() uses shapes too, and never parses.
  const auto hit =
      cache.lookup("SELECT users.email FROM users WHERE users.id = 7 AND users.name = 'q'",
                   identity("globex"), policy);
  ASSERT_TRUE(hit.has_value());
  ASSERT_TRUE(hit->is_ok());
  EXPECT_NE(hit->value().sql.find("'globex'"), std::string::npos);
  EXPECT_EQ(hit->value().sql.find("acme"), std::string::npos);
}

TEST(ShapeCache, UnchangedStatementsAreForwardedByteForByte) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  for (const char* sql : {"SELECT name FROM countries WHERE code = 'de'",
                          "SELECT name FROM countries WHERE code =  'fr' /* x */"}) {
    const RewriteResult r = cached(cache, sql, identity("acme"), policy);
    ASSERT_TRUE(r.is_ok());
    EXPECT_FALSE(r.value().changed);
    EXPECT_EQ(r.value().sql, sql);
  }
}

TEST(ShapeCache, PolicyColumnConstantsAreCheckedPerCall) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  // The tenant column given as a constant: one shape, the constant checked
  // against each caller on every hit, as the full rewrite checks it.
  const std::string own = "INSERT INTO users (id, tenant_id) VALUES (1, 'acme')";
  const std::string other = "INSERT INTO users (id, tenant_id) VALUES (2, 'globex')";
  const std::string own_escaped = R"(INSERT INTO users (id, tenant_id) VALUES (3, E'ac\\me'))";
  EXPECT_TRUE(cached(cache, own, identity("acme"), policy).is_ok());
  const RewriteResult refused = cached(cache, other, identity("acme"), policy);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.refusal().sqlstate, "42501");
  EXPECT_TRUE(cached(cache, other, identity("globex"), policy).is_ok());
  EXPECT_FALSE(cached(cache, own_escaped, identity("acme"), policy).is_ok());
  EXPECT_TRUE(cached(cache, own_escaped, identity(R"(ac\me)"), policy).is_ok());
  RewriteCache::Stats s = cache.stats();
  EXPECT_EQ(s.shape_misses, 1u);
  EXPECT_EQ(s.shape_hits, 4u);
  EXPECT_EQ(s.shape_fallbacks, 0u);
  EXPECT_EQ(s.exact_misses, 0u);
  // Integer owners: the parser's reading of the number counts.
  const auto records = [&](const std::string& created_by) {
    return cached(cache, "INSERT INTO records (id, created_by) VALUES (1, " + created_by + ")",
                  identity("acme", "42"), policy);
  };
  EXPECT_TRUE(records("42").is_ok());
  EXPECT_TRUE(records("0042").is_ok());
  EXPECT_FALSE(records("43").is_ok());
  EXPECT_FALSE(records("42.5").is_ok());
  EXPECT_FALSE(records("4294967338").is_ok());

  // A refused shape (a typed-literal position that takes no parameter) is
  // remembered as unusable, and the exact text still works.
  const std::string typed = "SELECT * FROM users WHERE created_at > timestamp(3) '2020-01-01'";
  const RewriteResult t1 = cached(cache, typed, identity("acme"), policy);
  const RewriteResult t2 = cached(cache, typed, identity("acme"), policy);
  ASSERT_TRUE(t1.is_ok()) << t1.refusal().message;
  ASSERT_TRUE(t2.is_ok());
  s = cache.stats();
  EXPECT_EQ(s.exact_hits, 1u);
}

TEST(ShapeCache, ConstantValueReadsLikeTheParser) {
  EXPECT_EQ(constant_value("42"), "42");
  EXPECT_EQ(constant_value("0042"), "42");
  EXPECT_EQ(constant_value("0"), "0");
  EXPECT_EQ(constant_value("2147483647"), "2147483647");
  EXPECT_EQ(constant_value("2147483648"), "2147483648");
  EXPECT_EQ(constant_value("99999999999999999999999"), "99999999999999999999999");
  EXPECT_EQ(constant_value("1.50"), "1.50");
  EXPECT_EQ(constant_value(".5"), ".5");
  EXPECT_EQ(constant_value("1e-3"), "1e-3");
  EXPECT_EQ(constant_value("'acme'"), "acme");
  EXPECT_EQ(constant_value("''"), "");
  EXPECT_EQ(constant_value("'it''s'"), "it's");
  EXPECT_EQ(constant_value(R"('a\b')"), R"(a\b)");
  EXPECT_EQ(constant_value(R"(E'a\'b\\c\n\t\q''')"), "a'b\\c\n\tq'");
  EXPECT_EQ(constant_value("e'x'"), "x");
  EXPECT_EQ(constant_value(R"(E'\101')"), std::nullopt);
  EXPECT_EQ(constant_value(R"(E'\x41')"), std::nullopt);
  EXPECT_EQ(constant_value("'a'b'"), std::nullopt);
  EXPECT_EQ(constant_value("'abc"), std::nullopt);
  EXPECT_EQ(constant_value("$$x$$"), std::nullopt);
  EXPECT_EQ(constant_value("B'101'"), std::nullopt);
  EXPECT_EQ(constant_value(""), std::nullopt);
}

TEST(ShapeCache, IdentitiesAndKeysNeverMix) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  const std::string a = "SELECT * FROM records WHERE id = 1";
  const std::string b = "SELECT * FROM records WHERE id = 2";
  const RewriteResult ra = cached(cache, a, identity("acme", "1"), policy);
  const RewriteResult rb = cached(cache, b, identity("globex", "2"), policy);
  ASSERT_TRUE(ra.is_ok());
  ASSERT_TRUE(rb.is_ok());
  EXPECT_EQ(rb.value().sql.find("acme"), std::string::npos);
  EXPECT_NE(rb.value().sql.find("'globex'"), std::string::npos);
  EXPECT_NE(rb.value().sql.find("created_by = 2"), std::string::npos);
  EXPECT_NE(rb.value().sql.find("id = 2"), std::string::npos);
  EXPECT_EQ(cache.stats().shape_hits, 1u);
  // No user: a different key, and refused.
  const RewriteResult none = cached(cache, a, identity("acme", std::nullopt), policy);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.refusal().sqlstate, "42501");
  // A Parse message whose text is the shape itself is an exact text, not a
  // shape hit.
  const RewriteResult param =
      cached(cache, "SELECT * FROM records WHERE id = $1", identity("acme", "1"), policy);
  ASSERT_TRUE(param.is_ok());
  EXPECT_NE(param.value().sql.find("id = $1"), std::string::npos);
  // The no-user statement and the Parse text: both exact.
  EXPECT_EQ(cache.stats().exact_misses, 2u);
}

TEST(ShapeCache, NewPolicySnapshotAndClear) {
  RewriteCache cache(1 << 20);
  const auto a = testing::users_policy(false);
  const auto b = testing::users_policy(true);
  const RewriteResult ra = cached(cache, "SELECT * FROM users WHERE id = 1", identity("acme"), a);
  const RewriteResult rb = cached(cache, "SELECT * FROM users WHERE id = 2", identity("acme"), b);
  ASSERT_TRUE(ra.is_ok());
  ASSERT_TRUE(rb.is_ok());
  EXPECT_NE(rb.value().sql.find("users.org ="), std::string::npos);
  EXPECT_EQ(cache.stats().shape_misses, 2u);
  cache.clear();
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  (void)cached(cache, "SELECT * FROM users WHERE id = 3", identity("acme"), a);
  EXPECT_EQ(cache.stats().shape_misses, 3u);
}

TEST(ShapeCache, ByteBoundCoversShapes) {
  const std::size_t bound = 16 * 1024;
  RewriteCache cache(bound, 2);
  const auto policy = golden_policy();
  for (int i = 0; i < 500; ++i) {
    const std::string sql = "SELECT * FROM users AS u" + std::to_string(i) + " WHERE u" +
                            std::to_string(i) + ".id = " + std::to_string(i);
    ASSERT_TRUE(cached(cache, sql, identity("acme"), policy).is_ok());
    ASSERT_LE(cache.bytes(), bound);
  }
  EXPECT_LT(cache.entries(), 500u);
  EXPECT_EQ(cache.stats().shape_misses, 500u);
}

TEST(ShapeCache, StatementOverTheLimitIsRefusedOnAHit) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  Options small;
  small.max_statement_bytes = 100;
  ASSERT_TRUE(cached(cache, "SELECT * FROM users WHERE name = 'x'", identity("acme"), policy, small)
                  .is_ok());
  const std::string big = "SELECT * FROM users WHERE name = '" + std::string(200, 'x') + "'";
  const RewriteResult r = cached(cache, big, identity("acme"), policy, small);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.refusal().sqlstate, "54001");
  // lookup() finds the refusal the exact path cached, not the shape.
  const auto again = cache.lookup(big, identity("acme"), policy);
  ASSERT_TRUE(again.has_value());
  ASSERT_FALSE(again->is_ok());
  EXPECT_EQ(again->refusal().sqlstate, "54001");
}

TEST(ShapeCache, DollarOneInsideTheOutputIsNotAParameter) {
  // The constant '$1' comes back verbatim; the shape's own $1 is replaced once.
  bool hit = false;
  EXPECT_EQ(check_equivalent("SELECT * FROM users WHERE name = 'a' AND email = 'b'",
                             "SELECT * FROM users WHERE name = '$1' AND email = '$2 -- /*'",
                             identity("acme"), &hit),
            "");
  EXPECT_TRUE(hit);
}

// Hand-picked cases: each is rewritten through a cache warmed with a
// same-shaped statement (so that a usable shape is hit) and compared with the
// full rewrite.
TEST(ShapeCache, AdversarialCasesMatchTheFullRewrite) {
  struct Case {
    std::string warm;
    std::string sql;
  };
  const std::vector<Case> cases = {
      {"SELECT * FROM users WHERE name = 'a'",
       "SELECT * FROM users WHERE name = 'it''s $1 -- /* x'"},
      {"SELECT * FROM users WHERE name = E'a'",
       "SELECT * FROM users WHERE name = E'a\\'b\\\\c\\n'"},
      {"SELECT * FROM users WHERE id = 1", "SELECT * FROM users WHERE id = 1e5"},
      {"SELECT * FROM users WHERE id = 1", "SELECT * FROM users WHERE id = .5"},
      {"SELECT * FROM users WHERE id = 1", "SELECT * FROM users WHERE id = 5."},
      {"SELECT * FROM users WHERE id = 1", "SELECT * FROM users WHERE id = 99999999999999999999"},
      {"SELECT * FROM users WHERE id = -1", "SELECT * FROM users WHERE id = -2147483648"},
      {"SELECT * FROM users WHERE id = - 1", "SELECT * FROM users WHERE id = - 2.5"},
      {"SELECT -1 ^ 2 FROM users", "SELECT -3 ^ 2 FROM users"},
      {"SELECT -1::int FROM users", "SELECT -3::int FROM users"},
      {"SELECT * FROM users /* c */ WHERE /* 1 */ id = 1 -- x",
       "SELECT * FROM users /* c */ WHERE /* 1 */ id = 2 -- x"},
      {"SELECT * FROM users WHERE name = 'a'", "SELECT * FROM users WHERE name = 'héllo ☃ 日本'"},
      {"SELECT * FROM users WHERE d > date '2020-01-01' AND id = 1",
       "SELECT * FROM users WHERE d > date '2021-01-01' AND id = 2"},
      {"SELECT 'a'::date FROM users", "SELECT '2020-02-02'::date FROM users"},
      {"SELECT 'a' FROM users; SELECT * FROM records WHERE id = 1",
       "SELECT 'b' FROM users; SELECT * FROM records WHERE id = 2"},
      {"SELECT 1; SELECT 2", "SELECT 3; SELECT 4"},
      {"UPDATE records SET title = 'a', amount = 1 WHERE id = 2",
       "UPDATE records SET title = E'x\\ty', amount = 1.25 WHERE id = 3"},
      {"DELETE FROM notes WHERE id IN (1, 2) AND body LIKE 'a%'",
       "DELETE FROM notes WHERE id IN (7, 8) AND body LIKE '%''%'"},
      {"INSERT INTO notes (id, body) VALUES (1, 'a')",
       "INSERT INTO notes (id, body) VALUES (2, 'b')"},
      {"INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = 'a'",
       "INSERT INTO users (id) VALUES (2) ON CONFLICT (id) DO UPDATE SET name = 'b'"},
      {"SELECT * FROM users u JOIN records r ON r.created_by = u.id AND r.amount > 1 LIMIT 1 "
       "OFFSET 1",
       "SELECT * FROM users u JOIN records r ON r.created_by = u.id AND r.amount > 9 LIMIT 5 "
       "OFFSET 10"},
      {"SELECT * FROM users WHERE id = (SELECT 1 FROM records WHERE amount BETWEEN 1 AND 2)",
       "SELECT * FROM users WHERE id = (SELECT 3 FROM records WHERE amount BETWEEN 4 AND 5)"},
      {"SELECT CAST('1' AS numeric(10, 2)) FROM users",
       "SELECT CAST('2' AS numeric(12, 4)) FROM users"},
      {"SELECT x FROM users ORDER BY 1 OFFSET 1 ROWS",
       "SELECT x FROM users ORDER BY 1 OFFSET 2 ROWS"},
      {"SELECT * FROM users WHERE tenant_id = 'x'", "SELECT * FROM users WHERE tenant_id = 'acme'"},
      {"SELECT * FROM users WHERE name = 'tg_tenant_value'",
       "SELECT * FROM users WHERE name = 'tg_tenant_value'"},
      {"SELECT * FROM users WHERE name = 'a'",
       "SELECT * FROM users WHERE name = 'tg_tenant_value'"},
      {"SELECT pg_sleep(1)", "SELECT pg_sleep(2)"},
      {"SELECT * FROM secrets WHERE id = 1", "SELECT * FROM secrets WHERE id = 2"},
      {"SELECT extract('year' FROM now())", "SELECT extract('month' FROM now())"},
      {"SELECT * FROM users WHERE id = 1", "SELECT * FROM users WHERE id = 1; SET x = 1"},
      {"UPDATE users SET tenant_id = 'x' WHERE id = 1",
       "UPDATE users SET tenant_id = 'acme' WHERE id = 1"},
      {"INSERT INTO records (id, created_by) VALUES (1, 42)",
       "INSERT INTO records (id, created_by) VALUES (1, 43)"},
      {"INSERT INTO records (id, created_by) VALUES (1, 43)",
       "INSERT INTO records (id, created_by) VALUES (1, 42)"},
      {"INSERT INTO records (id, created_by) VALUES (1, 1)",
       "INSERT INTO records (id, created_by) VALUES (1, 0042)"},
      {"INSERT INTO records (id, created_by) VALUES (1, 1)",
       "INSERT INTO records (id, created_by) VALUES (1, 42.0)"},
      {"INSERT INTO records (id, created_by) VALUES (1, 1)",
       "INSERT INTO records (id, created_by) VALUES (1, 4294967338)"},
      {"INSERT INTO records (id, created_by) VALUES (1, '1')",
       "INSERT INTO records (id, created_by) VALUES (1, '42')"},
      {"INSERT INTO records (id, created_by) VALUES (1, '1'::int)",
       "INSERT INTO records (id, created_by) VALUES (1, '42'::int)"},
      {"INSERT INTO records (id, created_by) VALUES (1, '1'::text)",
       "INSERT INTO records (id, created_by) VALUES (1, '42'::text)"},
      {"INSERT INTO records (id, created_by) VALUES (1, 1::bigint)",
       "INSERT INTO records (id, created_by) VALUES (1, 42::bigint)"},
      {"INSERT INTO records (id, created_by) VALUES (1, - 1)",
       "INSERT INTO records (id, created_by) VALUES (1, -42)"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x'), (2, 'y')",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'acme'), (2, 'acme')"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x'), (2, 'y')",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'acme'), (2, 'globex')"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x')",
       R"(INSERT INTO users (id, tenant_id) VALUES (1, E'ac\me'))"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x')",
       R"(INSERT INTO users (id, tenant_id) VALUES (1, E'\acme'))"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x')",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'ACME')"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x')",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'acme ')"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x') RETURNING id",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'acme') RETURNING id"},
      {"UPDATE users SET tenant_id = 'x', name = 'n' WHERE id = 1",
       "UPDATE users SET tenant_id = 'globex', name = 'n' WHERE id = 1"},
      {"UPDATE records SET created_by = 1 WHERE id = 1",
       "UPDATE records SET created_by = 42 WHERE id = 1"},
      {"INSERT INTO users (id, tenant_id) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET "
       "tenant_id = 'y'",
       "INSERT INTO users (id, tenant_id) VALUES (1, 'acme') ON CONFLICT (id) DO UPDATE SET "
       "tenant_id = 'acme'"},
  };
  int hits = 0;
  for (const Case& c : cases) {
    bool hit = false;
    EXPECT_EQ(check_equivalent(c.warm, c.sql, identity("acme"), &hit), "") << c.sql;
    hits += hit ? 1 : 0;
  }
  EXPECT_GE(hits, 15);
}

// Generated ORM-style statements: a few hundred, each compared with its full
// rewrite after the cache was warmed with the same shape.
TEST(ShapeCache, GeneratedOrmStatementsMatchTheFullRewrite) {
  const unsigned seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  std::mt19937 rng(seed);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  auto integer = [&] { return std::to_string(rng() % 100000); };
  auto number = [&] {
    switch (rng() % 6) {
      case 0:
        return integer();
      case 1:
        return integer() + "." + std::to_string(rng() % 100);
      case 2:
        return "." + std::to_string(rng() % 1000);
      case 3:
        return integer() + "e" + std::to_string(rng() % 20);
      case 4:
        return "- " + integer();
      default:
        return "-" + integer() + ".5";
    }
  };
  auto string = [&] {
    const std::vector<std::string> parts = {"a", "b c", "''", "$1", "--", "/*", "*/", "\\",
                                            "é", "%",   "_",  ";",  "\"", "$$", "E'"};
    std::string body;
    const std::size_t n = rng() % 5;
    for (std::size_t i = 0; i < n; ++i) body += pick(parts);
    if (rng() % 3 == 0) {
      // An E'' string: double the backslashes, escape quotes with \'.
      std::string e = "E'";
      for (char ch : body) {
        if (ch == '\\')
          e += "\\\\";
        else
          e += ch;
      }
      return e + (rng() % 2 ? "\\n'" : "\\''");
    }
    return "'" + body + "'";
  };
  auto value = [&] { return rng() % 2 ? number() : string(); };
  auto generate = [&](unsigned kind) -> std::string {
    switch (kind) {
      case 0:
        return "SELECT users.id AS users_id, users.email AS users_email FROM users WHERE users.id "
               "= " +
               integer() + " AND users.name = " + string() + " LIMIT " + integer();
      case 1:
        return "SELECT records.id, records.amount FROM records JOIN users ON users.id = "
               "records.created_by WHERE records.amount >= " +
               number() + " AND records.status IN (" + string() + ", " + string() + ", " +
               string() + ") ORDER BY records.id LIMIT " + integer() + " OFFSET " + integer();
      case 2:
        return "UPDATE records SET title = " + string() + ", amount = " + number() +
               " WHERE records.id = " + integer();
      case 3:
        return "DELETE FROM notes WHERE notes.id = " + integer() + " OR notes.body LIKE " +
               string();
      case 4:
        return "INSERT INTO notes (id, body) VALUES (" + integer() + ", " + value() +
               ") RETURNING notes.id";
      case 5:
        return "SELECT count(*) FROM users LEFT JOIN records r ON r.created_by = users.id AND "
               "r.amount > " +
               number() + " WHERE users.created_at > date '2020-0" + std::to_string(1 + rng() % 9) +
               "-01' AND users.id <> " + integer() + " GROUP BY users.id HAVING count(*) > " +
               integer();
      case 7:
        // Policy columns given constants, the caller's own or not.
        return "INSERT INTO records (id, created_by, title) VALUES (" + integer() + ", " +
               (rng() % 2 ? std::string("42") : integer()) + ", " + string() +
               "); UPDATE users SET tenant_id = " + (rng() % 2 ? std::string("'acme'") : string()) +
               " WHERE users.id = " + integer();
      default:
        return "SELECT CASE WHEN users.id = " + integer() + " THEN " + value() + " ELSE " +
               value() + " END, " + string() + "::text FROM users WHERE users.email ILIKE " +
               string() + " AND users.id BETWEEN " + integer() + " AND " + integer();
    }
  };
  int hits = 0;
  const int kCases = 300;
  for (int i = 0; i < kCases; ++i) {
    // Two statements of the same template: the first warms the shape.
    const unsigned kind = rng() % 8;
    const std::string warm = generate(kind);
    const std::string sql = generate(kind);
    bool hit = false;
    const std::string diff = check_equivalent(warm, sql, identity("acme"), &hit);
    EXPECT_EQ(diff, "") << "seed " << seed << " case " << i << "\n  warm: " << warm
                        << "\n  sql:  " << sql;
    hits += hit ? 1 : 0;
  }
  std::cout << hits << " of " << kCases << " statements were shape hits\n";
  EXPECT_GT(hits, kCases / 4);
}

}  // namespace
}  // namespace tenantgate::rewriter
