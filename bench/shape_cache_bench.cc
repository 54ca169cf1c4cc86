// Shape-cache microbenchmarks: ORM-style statements whose constants change on
// every call, through RewriteCache (a shape hit), through the full rewrite
// (what every such statement cost before shapes), and the same text repeated.
//
//   tg_shape_cache_bench [--benchmark_filter=...]
//
// Not part of the test suite. Runs on the main thread: these statements nest
// a few levels deep, far inside an 8 MB stack.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace {

using namespace tenantgate;

constexpr const char* kPolicy = R"(
default_action = "deny"
[tables."public.users"]
scope = "tenant"
[tables."public.records"]
scope = "tenant_owner"
owner_column = "created_by"
)";

// The statements of rewriter_bench.cc with the constant(s) of call `i`.
// Benchmarks take query:0 (join) or query:1 (orm); BM_ShapeHit also query:2 (insert).
// 166 bytes (at i = 1000): an ORM-style join.
std::string join(int i) {
  return "SELECT records.id, records.data, records.amount, users.email FROM records JOIN users ON "
         "users.id = records.created_by WHERE records.amount >= " +
         std::to_string(i) + " ORDER BY records.id";
}

// 837 bytes: SQLAlchemy's rendering of a 20-column joined SELECT.
std::string orm(int i) {
  return "SELECT users.id AS users_id, users.tenant_id AS users_tenant_id, users.email AS "
         "users_email, users.name AS users_name, users.role AS users_role, users.is_active AS "
         "users_is_active, users.manager_id AS users_manager_id, users.created_at AS "
         "users_created_at, users.updated_at AS users_updated_at, users.last_login AS "
         "users_last_login, records.id AS records_id, records.tenant_id AS records_tenant_id, "
         "records.created_by AS records_created_by, records.title AS records_title, records.data "
         "AS records_data, records.amount AS records_amount, records.status AS records_status, "
         "records.parent_id AS records_parent_id, records.created_at AS records_created_at, "
         "records.updated_at AS records_updated_at \nFROM users JOIN records ON users.id = "
         "records.created_by \nWHERE users.email = 'alice" +
         std::to_string(i) + "@example.com' AND records.status = 'pending' \n LIMIT " +
         std::to_string(i);
}

// 81 bytes: a TPC-B-style INSERT that writes the owner column as a constant,
// checked against the caller on every shape hit.
std::string insert(int i) {
  return "INSERT INTO records (id, created_by, title, amount) VALUES (" + std::to_string(i) +
         ", 42, 'row " + std::to_string(i) + "', " + std::to_string(i % 97) + ")";
}

// Distinct statements, built before timing. Iteration k uses statements[k % size].
std::vector<std::string> statements(int which, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    out.push_back(which == 0 ? join(1000 + i) : which == 1 ? orm(1000 + i) : insert(1000 + i));
  }
  return out;
}

const std::shared_ptr<const policy::Policy>& bench_policy() {
  static const std::shared_ptr<const policy::Policy> p = policy::parse_policy(kPolicy, "bench");
  return p;
}

policy::Identity bench_identity(const char* tenant) {
  policy::Identity id;
  id.tenant = {tenant, policy::ValueType::kText};
  id.user = policy::TypedValue{"42", policy::ValueType::kInt};
  id.database = "appdb";
  return id;
}

void label(benchmark::State& state, const std::string& sql) {
  state.counters["bytes"] = static_cast<double>(sql.size());
}

bool check(benchmark::State& state, const rewriter::RewriteResult& r) {
  if (r.is_ok()) return true;
  state.SkipWithError(("refused: " + r.refusal().message).c_str());
  return false;
}

// RewriteCache::rewrite, a different constant on every call: a shape hit.
void BM_ShapeHit(benchmark::State& state) {
  const auto sqls = statements(static_cast<int>(state.range(0)), 4096);
  const policy::Identity identities[] = {bench_identity("acme"), bench_identity("globex")};
  const rewriter::Rewriter rw(rewriter::Options{});
  rewriter::RewriteCache cache(16u << 20);
  if (!check(state, cache.rewrite(rw, sqls[0], identities[0], bench_policy()))) return;
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = cache.rewrite(rw, sqls[i % sqls.size()], identities[i & 1], bench_policy());
    benchmark::DoNotOptimize(r);
    ++i;
  }
  const auto s = cache.stats();
  state.counters["shape_hit_ratio"] =
      static_cast<double>(s.shape_hits) / static_cast<double>(s.shape_hits + s.shape_misses);
  label(state, sqls[0]);
}
BENCHMARK(BM_ShapeHit)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// Rewriter::rewrite, a different constant on every call: what the exact-text
// cache costs on such traffic (every call misses).
void BM_ExactMiss(benchmark::State& state) {
  const auto sqls = statements(static_cast<int>(state.range(0)), 4096);
  const policy::Identity identity = bench_identity("acme");
  const rewriter::Rewriter rw(rewriter::Options{});
  if (!check(state, rw.rewrite(sqls[0], identity, *bench_policy()))) return;
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = rw.rewrite(sqls[i++ % sqls.size()], identity, *bench_policy());
    benchmark::DoNotOptimize(r);
  }
  label(state, sqls[0]);
}
BENCHMARK(BM_ExactMiss)->ArgName("query")->DenseRange(0, 1)->Unit(benchmark::kMicrosecond);

// RewriteCache::rewrite on a shape miss: a new shape on every call (the alias
// changes), so each call rewrites the shape and substitutes its constants.
void BM_ShapeMiss(benchmark::State& state) {
  std::vector<std::string> sqls;
  for (int i = 0; i < 4096; ++i) {
    std::string s = state.range(0) == 0 ? join(1000 + i) : orm(1000 + i);
    s.insert(7, "records.id AS c" + std::to_string(i) + ", ");  // after "SELECT "
    sqls.push_back(std::move(s));
  }
  const policy::Identity identity = bench_identity("acme");
  const rewriter::Rewriter rw(rewriter::Options{});
  rewriter::RewriteCache cache(1u << 30);
  if (!check(state, cache.rewrite(rw, sqls[0], identity, bench_policy()))) return;
  cache.clear();
  std::size_t i = 0;
  for (auto _ : state) {
    if (i == sqls.size()) {
      state.PauseTiming();
      cache.clear();
      i = 0;
      state.ResumeTiming();
    }
    auto r = cache.rewrite(rw, sqls[i++], identity, bench_policy());
    benchmark::DoNotOptimize(r);
  }
  label(state, sqls[0]);
}
BENCHMARK(BM_ShapeMiss)->ArgName("query")->DenseRange(0, 1)->Unit(benchmark::kMicrosecond);

// RewriteCache::rewrite of one text repeated (what the exact-text cache was
// built for): with constants in it, this is a shape hit too.
// One text rewritten over and over by callers of two tenants.
void repeat_text(benchmark::State& state, const std::string& sql) {
  const policy::Identity identities[] = {bench_identity("acme"), bench_identity("globex")};
  const rewriter::Rewriter rw(rewriter::Options{});
  rewriter::RewriteCache cache(16u << 20);
  if (!check(state, cache.rewrite(rw, sql, identities[0], bench_policy()))) return;
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = cache.rewrite(rw, sql, identities[i++ & 1], bench_policy());
    benchmark::DoNotOptimize(r);
  }
  label(state, sql);
}

void BM_SameTextHit(benchmark::State& state) {
  repeat_text(state, state.range(0) == 0 ? join(1000) : orm(1000));
}
BENCHMARK(BM_SameTextHit)->ArgName("query")->DenseRange(0, 1)->Unit(benchmark::kMicrosecond);

// An exact-text hit: a statement without constants never has a shape.
void BM_ExactHit(benchmark::State& state) {
  repeat_text(state,
              "SELECT records.id, records.data, records.amount, users.email FROM records JOIN "
              "users ON users.id = records.created_by WHERE records.amount >= users.limit ORDER BY "
              "records.id");
}
BENCHMARK(BM_ExactHit)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
