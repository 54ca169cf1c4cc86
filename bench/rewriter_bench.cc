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

}  // namespace

BENCHMARK_MAIN();
