// Rewriter microbenchmarks: what tenantgate adds per statement, for three
// statement sizes, next to the raw libpg_query costs it is built from.
//
//   tg_rewriter_bench [--benchmark_filter=...]
//
// Not part of the test suite. Runs on the main thread: these statements nest
// a few levels deep, far inside an 8 MB stack (rewriter.h asks for a large
// stack only because client SQL may nest arbitrarily).
#include <benchmark/benchmark.h>
#include <pg_query.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "pg_query.pb.h"
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
[tables."public.secrets"]
scope = "deny"
)";

// 41 bytes: a point lookup.
const std::string kPoint = "SELECT id, email FROM users WHERE id = 1";

// 166 bytes: an ORM-style join.
const std::string kJoin =
    "SELECT records.id, records.data, records.amount, users.email FROM records JOIN users ON "
    "users.id = records.created_by WHERE records.amount >= 1000 ORDER BY records.id";

// 837 bytes: SQLAlchemy's rendering of a 20-column joined SELECT.
const std::string kOrm =
    "SELECT users.id AS users_id, users.tenant_id AS users_tenant_id, users.email AS users_email, "
    "users.name AS users_name, users.role AS users_role, users.is_active AS users_is_active, "
    "users.manager_id AS users_manager_id, users.created_at AS users_created_at, users.updated_at "
    "AS users_updated_at, users.last_login AS users_last_login, records.id AS records_id, "
    "records.tenant_id AS records_tenant_id, records.created_by AS records_created_by, "
    "records.title AS records_title, records.data AS records_data, records.amount AS "
    "records_amount, records.status AS records_status, records.parent_id AS records_parent_id, "
    "records.created_at AS records_created_at, records.updated_at AS records_updated_at \n"
    "FROM users JOIN records ON users.id = records.created_by \n"
    "WHERE users.email = 'alice1@example.com' AND records.status = 'pending' \n LIMIT 1000";

const std::string& query(int which) {
  switch (which) {
    case 0:
      return kPoint;
    case 1:
      return kJoin;
    default:
      return kOrm;
  }
}

const std::shared_ptr<const policy::Policy>& bench_policy_ptr() {
  static const std::shared_ptr<const policy::Policy> p = policy::parse_policy(kPolicy, "bench");
  return p;
}

const policy::Policy& bench_policy() { return *bench_policy_ptr(); }

policy::Identity bench_identity(const char* tenant = "acme") {
  policy::Identity id;
  id.tenant = {tenant, policy::ValueType::kText};
  id.user = policy::TypedValue{"42", policy::ValueType::kInt};
  id.database = "appdb";
  return id;
}

void label(benchmark::State& state, const std::string& sql) {
  state.counters["bytes"] = static_cast<double>(sql.size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * sql.size()));
}

// Rewriter::rewrite, no cache: parse, walk, deparse, verify.
void BM_RewriteUncached(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  const auto& policy = bench_policy();
  const auto identity = bench_identity();
  rewriter::Rewriter rw(rewriter::Options{});
  {
    auto r = rw.rewrite(sql, identity, policy);
    if (!r.is_ok()) {
      state.SkipWithError(("refused: " + r.refusal().message).c_str());
      return;
    }
  }
  for (auto _ : state) {
    auto r = rw.rewrite(sql, identity, policy);
    benchmark::DoNotOptimize(r);
  }
  label(state, sql);
}
BENCHMARK(BM_RewriteUncached)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// RewriteCache::rewrite on a hit: the cached template with the caller's
// identity substituted. Callers alternate between two tenants, as sessions do.
void BM_RewriteCached(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  const auto& policy = bench_policy_ptr();
  const policy::Identity identities[] = {bench_identity("acme"), bench_identity("globex")};
  rewriter::Rewriter rw(rewriter::Options{});
  rewriter::RewriteCache cache(16u << 20);
  {
    auto r = cache.rewrite(rw, sql, identities[0], policy);
    if (!r.is_ok()) {
      state.SkipWithError(("refused: " + r.refusal().message).c_str());
      return;
    }
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = cache.rewrite(rw, sql, identities[i++ & 1], policy);
    benchmark::DoNotOptimize(r);
  }
  label(state, sql);
}
BENCHMARK(BM_RewriteCached)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// The same hit path under contention from two threads (the machine has 2 cores).
BENCHMARK(BM_RewriteCached)
    ->Name("BM_RewriteCached/threads:2")
    ->ArgName("query")
    ->Arg(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Hostile statements, one shape each, as an attacker would size them: the
// whole pipeline on a large-stack thread (the process's own thread, as the
// analysis pool does), from text to refusal or rewrite. Records what one
// statement costs the proxy; statement_limits.h quotes the figures.
std::string hostile(int shape, int n) {
  std::string s;
  auto repeat = [&](const char* piece) {
    for (int i = 0; i < n; ++i) s += piece;
  };
  switch (shape) {
    case 0:  // wide UNION ending in a denied table
      s = "SELECT 0 AS c";
      repeat(" UNION SELECT 1 AS c");
      s += " UNION SELECT id FROM secrets";
      break;
    case 1:  // operator chain
      s = "SELECT 1";
      repeat("+1");
      break;
    case 2:  // OR chain on a scoped table
      s = "SELECT id FROM users WHERE id = 0";
      repeat(" OR id = 1");
      break;
    case 3:  // long IN list
      s = "SELECT id FROM users WHERE id IN (0";
      repeat(",1");
      s += ")";
      break;
    case 4:  // many statements in one Query
      s = "SELECT id FROM users";
      repeat(";SELECT id FROM users");
      break;
    case 5:  // CASE with many arms
      s = "SELECT CASE";
      repeat(" WHEN id = 1 THEN 1");
      s += " END FROM users";
      break;
    default:  // UNION ALL of scoped reads (rewritten, not refused)
      s = "SELECT id FROM users";
      repeat(" UNION ALL SELECT id FROM users");
      break;
  }
  return s;
}

// Arguments: shape, n, and whether the caps on set operations and statements
// apply (1, the default Options) or not (0, as before they existed).
void BM_RewriteHostile(benchmark::State& state) {
  const std::string sql =
      hostile(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const auto& policy = bench_policy();
  const auto identity = bench_identity();
  rewriter::Options options;
  if (state.range(2) == 0) {
    options.max_set_operations = SIZE_MAX;
    options.max_statements = SIZE_MAX;
  }
  rewriter::Rewriter rw(options);
  std::string outcome;
  for (auto _ : state) {
    rewriter::run_with_large_stack([&] {
      auto r = rw.rewrite(sql, identity, policy);
      outcome = r.is_ok() ? "ok" : r.refusal().sqlstate;
    });
  }
  label(state, sql);
  state.SetLabel(outcome);
}
BENCHMARK(BM_RewriteHostile)
    ->ArgNames({"shape", "n", "capped"})
    ->ArgsProduct({{0, 4, 6}, {500, 999, 4990}, {0, 1}})
    ->ArgsProduct({{1, 2, 3, 5}, {1000, 4990, 19990}, {1}})
    ->Args({3, 100000, 1})
    ->Args({3, 500000, 1})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// pg_query_parse_protobuf alone (C parser plus protobuf-c packing).
void BM_PgQueryParseProtobuf(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql.c_str());
    benchmark::DoNotOptimize(r.parse_tree.data);
    pg_query_free_protobuf_parse_result(r);
  }
  label(state, sql);
}
BENCHMARK(BM_PgQueryParseProtobuf)
    ->ArgName("query")
    ->DenseRange(0, 2)
    ->Unit(benchmark::kMicrosecond);

// Decoding libpg_query's protobuf into the generated C++ classes.
void BM_ProtobufDecode(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql.c_str());
  for (auto _ : state) {
    pg_query::ParseResult tree;
    bool ok = tree.ParseFromArray(r.parse_tree.data, static_cast<int>(r.parse_tree.len));
    benchmark::DoNotOptimize(ok);
  }
  pg_query_free_protobuf_parse_result(r);
  label(state, sql);
}
BENCHMARK(BM_ProtobufDecode)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// pg_query_deparse_protobuf of an unmodified tree.
void BM_PgQueryDeparse(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql.c_str());
  for (auto _ : state) {
    PgQueryDeparseResult d = pg_query_deparse_protobuf(r.parse_tree);
    benchmark::DoNotOptimize(d.query);
    pg_query_free_deparse_result(d);
  }
  pg_query_free_protobuf_parse_result(r);
  label(state, sql);
}
BENCHMARK(BM_PgQueryDeparse)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// pg_query_parse (JSON output), for comparison with the protobuf path.
void BM_PgQueryParseJson(benchmark::State& state) {
  const std::string& sql = query(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    PgQueryParseResult r = pg_query_parse(sql.c_str());
    benchmark::DoNotOptimize(r.parse_tree);
    pg_query_free_parse_result(r);
  }
  label(state, sql);
}
BENCHMARK(BM_PgQueryParseJson)->ArgName("query")->DenseRange(0, 2)->Unit(benchmark::kMicrosecond);

// Row policies: the same two statements against records scoped as
// tenant_owner (arg policy=0) and against records under a membership policy
// whose predicate holds a subquery over another scoped table (policy=1).
// Miss: Rewriter::rewrite; hit: RewriteCache with two alternating callers
// (and, for the membership policy, a claim).
constexpr const char* kMembershipPolicy = R"toml(
default_action = "deny"
[tables."public.users"]
scope = "tenant"
[tables."public.record_members"]
scope = "tenant"
[tables."public.records"]
scope = "tenant"
[[tables."public.records".policies]]
name = "owner or member"
kind = "restrictive"
using = "created_by = tenantgate.user_id() OR EXISTS (SELECT 1 FROM record_members m WHERE m.record_id = records.id AND m.user_id = tenantgate.user_id())"
check = "created_by = tenantgate.user_id()"
[[tables."public.records".policies]]
name = "admins"
command = "select"
using = "tenantgate.claim('role') = 'admin'"
)toml";

const std::shared_ptr<const policy::Policy>& policy_for(int which) {
  static const std::shared_ptr<const policy::Policy> membership =
      policy::parse_policy(kMembershipPolicy, "membership");
  return which == 0 ? bench_policy_ptr() : membership;
}

const std::string& policy_query(int which) {
  static const std::string point = "SELECT id, data FROM records WHERE id = 7";
  return which == 0 ? point : kJoin;
}

void BM_PolicyRewriteMiss(benchmark::State& state) {
  const std::string& sql = policy_query(static_cast<int>(state.range(1)));
  const auto& policy = *policy_for(static_cast<int>(state.range(0)));
  auto identity = bench_identity();
  identity.claims = {{"role", "member"}};
  rewriter::Rewriter rw(rewriter::Options{});
  {
    auto r = rw.rewrite(sql, identity, policy);
    if (!r.is_ok()) {
      state.SkipWithError(("refused: " + r.refusal().message).c_str());
      return;
    }
  }
  for (auto _ : state) {
    auto r = rw.rewrite(sql, identity, policy);
    benchmark::DoNotOptimize(r);
  }
  label(state, sql);
}
BENCHMARK(BM_PolicyRewriteMiss)
    ->ArgNames({"policy", "query"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

void BM_PolicyRewriteHit(benchmark::State& state) {
  const std::string& sql = policy_query(static_cast<int>(state.range(1)));
  const auto& policy = policy_for(static_cast<int>(state.range(0)));
  policy::Identity identities[] = {bench_identity("acme"), bench_identity("globex")};
  identities[0].claims = {{"role", "admin"}};
  identities[1].claims = {{"role", "member"}};
  rewriter::Rewriter rw(rewriter::Options{});
  rewriter::RewriteCache cache(16u << 20);
  (void)cache.rewrite(rw, sql, identities[0], policy);
  std::size_t i = 0;
  for (auto _ : state) {
    auto r = cache.rewrite(rw, sql, identities[i++ & 1], policy);
    benchmark::DoNotOptimize(r);
  }
  label(state, sql);
}
BENCHMARK(BM_PolicyRewriteHit)
    ->ArgNames({"policy", "query"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
