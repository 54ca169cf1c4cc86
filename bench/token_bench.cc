// Token verification microbenchmarks: HS256 and ES256 verified in full, and
// a cache hit (the same token again, as an app that reuses a token sends it).
//
//   build/bench/tg_token_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only

#include <benchmark/benchmark.h>

#include <ctime>

#include "identity/token_authority.h"
#include "identity/token_minter.h"
#include "identity/token_verifier.h"
#include "tests/identity/jwt_signing.h"

namespace {

namespace id = tenantgate::identity;

const std::string kSecret = "bench-secret-0123456789abcdef-0123456789";

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

nlohmann::json claims() {
  return {
      {"tenant", "acme"}, {"sub", "42"}, {"role", "member"}, {"iat", now()}, {"exp", now() + 3600}};
}

void BM_VerifyHS256(benchmark::State& state) {
  const id::KeySet keys = std::get<id::KeySet>(id::KeySet::from_secret(kSecret));
  const std::string token = id::mint_hs_token(id::Algorithm::kHS256, kSecret, claims()).value();
  const id::TokenSettings settings;
  const int64_t t = now();
  for (auto _ : state) {
    auto r = id::verify_token(token, keys, settings, t);
    if (!r.ok()) state.SkipWithError("refused");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_VerifyHS256);

void BM_VerifyES256(benchmark::State& state) {
  auto key = id::testing::make_ec_key();
  const id::KeySet keys =
      std::get<id::KeySet>(id::KeySet::from_pem(id::testing::public_pem(key.get())));
  const std::string token =
      id::testing::pk_token(key.get(), R"({"alg":"ES256","typ":"JWT"})", claims().dump());
  const id::TokenSettings settings;
  const int64_t t = now();
  for (auto _ : state) {
    auto r = id::verify_token(token, keys, settings, t);
    if (!r.ok()) state.SkipWithError("refused");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_VerifyES256);

// The authority's path for a token it has verified before: digest, lookup,
// expiry check.
void BM_VerifyCachedHit(benchmark::State& state) {
  const id::TokenAuthority authority(std::get<id::KeySet>(id::KeySet::from_secret(kSecret)),
                                     id::TokenSettings{});
  const std::string token = id::mint_hs_token(id::Algorithm::kHS256, kSecret, claims()).value();
  const int64_t t = now();
  if (!authority.verify(token, t).ok()) state.SkipWithError("refused");
  for (auto _ : state) {
    auto r = authority.verify(token, t);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_VerifyCachedHit);

}  // namespace

BENCHMARK_MAIN();
