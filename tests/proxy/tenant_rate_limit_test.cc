// The per-tenant statement rate: burst, refill, tenants independent, off.
#include "proxy/tenant_rate_limit.h"

#include <gtest/gtest.h>

namespace tenantgate::proxy {
namespace {

using std::chrono::milliseconds;

int admitted(TenantRateLimit& limit, const char* tenant, int tries,
             TenantRateLimit::TimePoint now) {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += limit.admit(tenant, now) ? 1 : 0;
  return n;
}

TEST(TenantRateLimitTest, BurstOfOneSecondThenTheRate) {
  TenantRateLimit limit(10);
  const TenantRateLimit::TimePoint t{};
  EXPECT_EQ(admitted(limit, "acme", 15, t), 10);
  EXPECT_FALSE(limit.admit("acme", t + milliseconds(99)));
  EXPECT_TRUE(limit.admit("acme", t + milliseconds(100)));  // one token per 100 ms
  EXPECT_FALSE(limit.admit("acme", t + milliseconds(150)));
  EXPECT_EQ(admitted(limit, "acme", 20, t + milliseconds(5000)), 10);  // never above the burst
}

TEST(TenantRateLimitTest, TenantsHaveTheirOwnBuckets) {
  TenantRateLimit limit(3);
  const TenantRateLimit::TimePoint t{};
  EXPECT_EQ(admitted(limit, "acme", 5, t), 3);
  EXPECT_EQ(admitted(limit, "globex", 5, t), 3);
  EXPECT_EQ(limit.tenants(), 2u);
}

TEST(TenantRateLimitTest, ZeroIsNoLimit) {
  TenantRateLimit limit(0);
  EXPECT_EQ(admitted(limit, "acme", 100000, {}), 100000);
  EXPECT_EQ(limit.tenants(), 0u);
}

TEST(TenantRateLimitTest, QuietTenantsAreForgotten) {
  TenantRateLimit limit(1);
  TenantRateLimit::TimePoint t{};
  for (int i = 0; i < 5000; ++i) {
    EXPECT_TRUE(limit.admit("t" + std::to_string(i), t));
    t += milliseconds(10);
  }
  EXPECT_LT(limit.tenants(), 1200u);
}

}  // namespace
}  // namespace tenantgate::proxy
