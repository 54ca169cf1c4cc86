// Connection limits: total, start-up, per source, per principal, per tenant.

#include "proxy/connection_limits.h"

#include <gtest/gtest.h>

#include <vector>

namespace tenantgate::proxy {
namespace {

ConnectionLimits::Settings settings(uint32_t total, uint32_t startups, uint32_t per_source = 0,
                                    uint32_t per_tenant = 0) {
  return {total, startups, per_source, per_tenant};
}

TEST(ConnectionLimits, TotalLimitRefusesAndFreesOnRelease) {
  ConnectionLimits limits(settings(2, 0));
  ConnectionSlot a, b, c;
  EXPECT_FALSE(limits.admit("10.0.0.1", a));
  EXPECT_FALSE(limits.admit("10.0.0.1", b));
  auto refused = limits.admit("10.0.0.2", c);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("limits.max_client_connections = 2"), std::string::npos) << *refused;
  a = ConnectionSlot();  // released
  EXPECT_FALSE(limits.admit("10.0.0.2", c));
}

TEST(ConnectionLimits, StartupLimitCountsOnlyConnectionsStillStarting) {
  ConnectionLimits limits(settings(0, 2));
  ConnectionSlot a, b, c;
  EXPECT_FALSE(limits.admit("h", a));
  EXPECT_FALSE(limits.admit("h", b));
  auto refused = limits.admit("h", c);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("limits.max_startups = 2"), std::string::npos) << *refused;
  a.end_startup();
  a.end_startup();  // twice is harmless
  EXPECT_FALSE(limits.admit("h", c));
  ConnectionSlot d;
  EXPECT_TRUE(limits.admit("h", d));
  c = ConnectionSlot();  // released while still starting
  EXPECT_FALSE(limits.admit("h", d));
}

TEST(ConnectionLimits, PerSourceStartupLimit) {
  ConnectionLimits limits(settings(0, 0, 1));
  ConnectionSlot a, b, c;
  EXPECT_FALSE(limits.admit("10.0.0.1", a));
  auto refused = limits.admit("10.0.0.1", b);
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("limits.max_startups_per_source = 1"), std::string::npos) << *refused;
  EXPECT_FALSE(limits.admit("10.0.0.2", c));  // another source is not affected
  a.end_startup();
  EXPECT_FALSE(limits.admit("10.0.0.1", b));
}

TEST(ConnectionLimits, PerPrincipal) {
  ConnectionLimits limits(settings(0, 0));
  std::vector<ConnectionSlot> slots(3);
  for (auto& s : slots) ASSERT_FALSE(limits.admit("h", s));
  EXPECT_FALSE(limits.claim(slots[0], "app", 2, "acme"));
  EXPECT_FALSE(limits.claim(slots[1], "app", 2, "globex"));
  auto refused = limits.claim(slots[2], "app", 2, "acme");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("principal \"app\" (max_connections = 2)"), std::string::npos)
      << *refused;
  EXPECT_FALSE(limits.claim(slots[2], "other", 2, "acme"));
  slots[0] = ConnectionSlot();
  ConnectionSlot again;
  ASSERT_FALSE(limits.admit("h", again));
  EXPECT_FALSE(limits.claim(again, "app", 2, "acme"));
}

TEST(ConnectionLimits, ZeroMeansNoLimit) {
  ConnectionLimits limits(settings(0, 0));
  std::vector<ConnectionSlot> slots(100);
  for (auto& s : slots) {
    ASSERT_FALSE(limits.admit("h", s));
    ASSERT_FALSE(limits.claim(s, "app", 0, "acme"));
  }
}

TEST(ConnectionLimits, PerTenant) {
  ConnectionLimits limits(settings(0, 0, 0, 1));
  std::vector<ConnectionSlot> slots(4);
  for (auto& s : slots) ASSERT_FALSE(limits.admit("h", s));
  EXPECT_FALSE(limits.claim(slots[0], "app", 0, "acme"));
  auto refused = limits.claim(slots[1], "limited", 0, "acme");
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("tenant \"acme\" (limits.max_connections_per_tenant = 1)"),
            std::string::npos)
      << *refused;
  EXPECT_FALSE(limits.claim(slots[1], "app", 0, "globex"));
  EXPECT_FALSE(limits.claim(slots[2], "admin", 0, std::nullopt));  // not counted per tenant
  slots[0] = ConnectionSlot();
  EXPECT_FALSE(limits.claim(slots[3], "limited", 0, "acme"));
}

TEST(ConnectionLimits, RefusedClaimCountsNothing) {
  ConnectionLimits limits(settings(0, 0, 0, 1));
  std::vector<ConnectionSlot> slots(3);
  for (auto& s : slots) ASSERT_FALSE(limits.admit("h", s));
  ASSERT_FALSE(limits.claim(slots[0], "app", 1, "acme"));
  ASSERT_TRUE(limits.claim(slots[1], "app", 1, "globex"));  // principal full
  // The refused claim did not count globex.
  EXPECT_FALSE(limits.claim(slots[2], "other", 0, "globex"));
}

TEST(ConnectionLimits, MovedSlotReleasesOnce) {
  ConnectionLimits limits(settings(1, 0));
  {
    ConnectionSlot a;
    ASSERT_FALSE(limits.admit("h", a));
    ConnectionSlot b(std::move(a));
    ConnectionSlot c;
    EXPECT_TRUE(limits.admit("h", c));
  }
  ConnectionSlot d;
  EXPECT_FALSE(limits.admit("h", d));
}

}  // namespace
}  // namespace tenantgate::proxy
