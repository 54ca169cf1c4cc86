// RewriteCache: identity-free templates, substitution, isolation between
// identities and policy snapshots, the byte bound, and concurrent use.
#include "rewriter/rewrite_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "tests/rewriter/test_support.h"

namespace tenantgate::rewriter {
namespace {

using testing::golden_policy;
using testing::identity;

RewriteResult cached(RewriteCache& cache, const std::string& sql, const policy::Identity& id,
                     const std::shared_ptr<const policy::Policy>& policy) {
  const Rewriter rewriter{Options{}};
  RewriteResult r = RewriteResult::refused("", "not run");
  run_with_large_stack([&] { r = cache.rewrite(rewriter, sql, id, policy); });
  return r;
}

TEST(RewriteCache, HitSubstitutesTheCallersIdentity) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  const std::string sql = "SELECT * FROM records r JOIN users u ON u.id = r.created_by";
  const RewriteResult a = cached(cache, sql, identity("acme", "1"), policy);
  EXPECT_EQ(cache.entries(), 1u);
  const RewriteResult b = cached(cache, sql, identity("globex", "2"), policy);
  EXPECT_EQ(cache.entries(), 1u);
  ASSERT_TRUE(a.is_ok());
  ASSERT_TRUE(b.is_ok());
  EXPECT_NE(a.value().sql.find("'acme'"), std::string::npos);
  EXPECT_EQ(a.value().sql.find("globex"), std::string::npos);
  EXPECT_NE(b.value().sql.find("'globex'"), std::string::npos);
  EXPECT_EQ(b.value().sql.find("acme"), std::string::npos);
  EXPECT_EQ(b.value().sql, testing::rewrite(sql, identity("globex", "2"), *policy).value().sql);
}

TEST(RewriteCache, LookupNeverParses) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  EXPECT_FALSE(cache.lookup("SELECT * FROM users", identity("acme"), policy).has_value());
  (void)cached(cache, "SELECT * FROM users", identity("acme"), policy);
  const std::optional<RewriteResult> hit =
      cache.lookup("SELECT * FROM users", identity("o'hare"), policy);
  ASSERT_TRUE(hit.has_value());
  ASSERT_TRUE(hit->is_ok());
  EXPECT_NE(hit->value().sql.find("'o''hare'"), std::string::npos);
}

TEST(RewriteCache, ConstantChecksAreEvaluatedPerIdentity) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  const std::string sql = "INSERT INTO public.users (id, tenant_id) VALUES (1, 'acme')";
  const RewriteResult own = cached(cache, sql, identity("acme"), policy);
  ASSERT_TRUE(own.is_ok());
  EXPECT_FALSE(own.value().changed);
  const RewriteResult other = cached(cache, sql, identity("globex"), policy);
  ASSERT_FALSE(other.is_ok());
  EXPECT_EQ(other.refusal().sqlstate, "42501");
  // One shape entry: the constant is checked against each caller when the
  // shape is instantiated.
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.stats().shape_hits, 1u);
}

TEST(RewriteCache, RefusalsAreCached) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  for (int i = 0; i < 2; ++i) {
    const RewriteResult r = cached(cache, "SELECT * FROM secrets", identity("acme"), policy);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.refusal().sqlstate, "42501");
  }
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(RewriteCache, MissingUserIsPartOfTheKey) {
  RewriteCache cache(1 << 20);
  const auto policy = golden_policy();
  EXPECT_TRUE(cached(cache, "SELECT * FROM notes", identity("acme", "5"), policy).is_ok());
  const RewriteResult none =
      cached(cache, "SELECT * FROM notes", identity("acme", std::nullopt), policy);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.refusal().sqlstate, "42501");
  EXPECT_EQ(cache.entries(), 2u);
}

TEST(RewriteCache, NewPolicySnapshotMisses) {
  RewriteCache cache(1 << 20);
  const auto a = testing::users_policy(false);
  const auto b = testing::users_policy(true);
  const RewriteResult ra = cached(cache, "SELECT * FROM users", identity("acme"), a);
  const RewriteResult rb = cached(cache, "SELECT * FROM users", identity("acme"), b);
  ASSERT_TRUE(ra.is_ok());
  ASSERT_TRUE(rb.is_ok());
  EXPECT_NE(ra.value().sql.find("users.tenant_id ="), std::string::npos);
  EXPECT_NE(rb.value().sql.find("users.org ="), std::string::npos);
}

TEST(RewriteCache, ByteBoundIsRespected) {
  const std::size_t bound = 64 * 1024;
  RewriteCache cache(bound, 4);
  const auto policy = golden_policy();
  for (int i = 0; i < 2000; ++i) {
    // Different aliases: statements that differ in constants would share a shape.
    const std::string sql = "SELECT * FROM users AS u" + std::to_string(i);
    const RewriteResult r = cached(cache, sql, identity("acme"), policy);
    ASSERT_TRUE(r.is_ok());
    ASSERT_LE(cache.bytes(), bound);
  }
  EXPECT_GT(cache.entries(), 10u);
  EXPECT_LT(cache.entries(), 2000u);
  // The most recent statement is still there, the first long gone.
  EXPECT_TRUE(cache.lookup("SELECT * FROM users AS u1999", identity("x"), policy));
  EXPECT_FALSE(cache.lookup("SELECT * FROM users AS u0", identity("x"), policy));
}

TEST(RewriteCache, EntryLargerThanTheBoundIsNotCached) {
  RewriteCache cache(1024, 1);
  const std::string sql = "SELECT * FROM users /* " + std::string(4000, 'x') + " */";
  EXPECT_TRUE(cached(cache, sql, identity("acme"), golden_policy()).is_ok());
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(RewriteCache, ClearEmpties) {
  RewriteCache cache(1 << 20);
  (void)cached(cache, "SELECT * FROM users", identity("acme"), golden_policy());
  cache.clear();
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// Many threads, many identities, a small cache (so entries are evicted and
// rebuilt while others read them): every answer equals the uncached rewrite
// for that thread's identity.
TEST(RewriteCache, ConcurrentUseNeverMixesIdentities) {
  const auto policy = golden_policy();
  const std::vector<std::string> statements = {
      "SELECT * FROM users WHERE id = 1",
      "SELECT * FROM records",
      "INSERT INTO users (id) VALUES (1)",
      "UPDATE notes SET body = 'x' WHERE id = 2",
      "SELECT * FROM secrets",
      "SELECT 1",
      "INSERT INTO users (id, tenant_id) VALUES (1, 't1')",
      "WITH a AS (SELECT * FROM users) SELECT * FROM a JOIN records r ON true",
  };
  const int kThreads = 4;
  std::vector<policy::Identity> ids;
  std::vector<std::vector<std::string>> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    ids.push_back(identity("t" + std::to_string(t), std::to_string(100 + t)));
    for (const std::string& sql : statements) {
      const RewriteResult r = testing::rewrite(sql, ids[t], *policy);
      expected[t].push_back(r.is_ok() ? r.value().sql : "ERROR " + r.refusal().sqlstate);
    }
  }
  RewriteCache cache(4096, 2);
  const Rewriter rewriter{Options{}};
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      run_with_large_stack([&] {
        std::mt19937 rng(static_cast<unsigned>(t));
        for (int i = 0; i < 400; ++i) {
          const std::size_t k = rng() % statements.size();
          const RewriteResult r = cache.rewrite(rewriter, statements[k], ids[t], policy);
          const std::string got = r.is_ok() ? r.value().sql : "ERROR " + r.refusal().sqlstate;
          if (got != expected[t][k]) ++mismatches;
        }
      });
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_LE(cache.bytes(), 4096u);
}

}  // namespace
}  // namespace tenantgate::rewriter
