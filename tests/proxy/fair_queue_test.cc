#include "proxy/fair_queue.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tenantgate::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = FairQueue::Clock;

FairQueue::Limits limits(std::uint32_t ms_per_second, FairQueue::Duration timeout = 5s,
                         std::size_t max_pending = 64) {
  FairQueue::Limits l;
  l.ms_per_second = ms_per_second;
  l.queue_timeout = timeout;
  l.max_pending_per_tenant = max_pending;
  return l;
}

std::vector<std::uint64_t> drain(FairQueue& q, Clock::time_point now) {
  std::vector<std::uint64_t> order;
  while (auto pick = q.pop(now)) order.push_back(pick->job);
  return order;
}

TEST(FairQueueTest, FifoWithinATenant) {
  FairQueue q(limits(0));
  const auto t0 = Clock::now();
  ASSERT_TRUE(q.push("acme", 1, t0));
  ASSERT_TRUE(q.push("acme", 2, t0));
  ASSERT_TRUE(q.push("acme", 3, t0));
  EXPECT_EQ(drain(q, t0), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.next_event(t0).has_value());
}

TEST(FairQueueTest, TenantsTakeTurnsWhateverTheBacklog) {
  FairQueue q(limits(0));
  const auto t0 = Clock::now();
  for (std::uint64_t j = 1; j <= 4; ++j) ASSERT_TRUE(q.push("acme", j, t0));
  ASSERT_TRUE(q.push("globex", 10, t0));
  ASSERT_TRUE(q.push("initech", 20, t0));
  ASSERT_TRUE(q.push("globex", 11, t0));
  // acme's backlog of four does not keep globex and initech waiting.
  EXPECT_EQ(drain(q, t0), (std::vector<std::uint64_t>{1, 10, 20, 2, 11, 3, 4}));
}

TEST(FairQueueTest, ManyTenantsShareEvenly) {
  FairQueue q(limits(0));
  const auto t0 = Clock::now();
  const std::vector<std::string> names{"a", "b", "c", "d"};
  std::uint64_t id = 0;
  std::map<std::uint64_t, std::string> owner;
  for (int round = 0; round < 10; ++round) {
    for (const auto& n : names) {
      owner[++id] = n;
      ASSERT_TRUE(q.push(n, id, t0));
    }
  }
  // Any window of four consecutive picks holds one job of each tenant.
  auto order = drain(q, t0);
  ASSERT_EQ(order.size(), 40u);
  for (std::size_t i = 0; i + 4 <= order.size(); i += 4) {
    std::map<std::string, int> seen;
    for (std::size_t k = i; k < i + 4; ++k) ++seen[owner[order[k]]];
    EXPECT_EQ(seen.size(), 4u) << "window at " << i;
  }
}

TEST(FairQueueTest, PerTenantPendingBound) {
  FairQueue q(limits(0, 5s, 2));
  const auto t0 = Clock::now();
  EXPECT_TRUE(q.push("acme", 1, t0));
  EXPECT_TRUE(q.push("acme", 2, t0));
  EXPECT_FALSE(q.push("acme", 3, t0));
  EXPECT_EQ(q.pending("acme"), 2u);
  EXPECT_TRUE(q.push("globex", 4, t0));  // another tenant is not affected
  ASSERT_TRUE(q.pop(t0).has_value());
  EXPECT_TRUE(q.push("acme", 5, t0));  // room again once one has started
}

TEST(FairQueueTest, OverBudgetTenantWaitsOthersRun) {
  FairQueue q(limits(100));  // 100 ms per second, burst 100 ms
  const auto t0 = Clock::now();
  ASSERT_TRUE(q.push("acme", 1, t0));
  auto first = q.pop(t0);
  ASSERT_TRUE(first.has_value());
  q.charge("acme", 300ms, t0);  // 200 ms of debt
  EXPECT_DOUBLE_EQ(q.budget_ms("acme", t0), -200.0);
  ASSERT_TRUE(q.push("acme", 2, t0));
  ASSERT_TRUE(q.push("globex", 3, t0));
  auto next = q.pop(t0);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->job, 3u);  // acme's turn passes
  EXPECT_FALSE(q.pop(t0).has_value());
  // Refilled continuously at 100 ms/s: the debt is paid off after 2 s.
  auto wake = q.next_event(t0);
  ASSERT_TRUE(wake.has_value());
  EXPECT_GE(*wake - t0, 2s);
  EXPECT_LT(*wake - t0, 2s + 1ms);
  EXPECT_FALSE(q.pop(t0 + 1900ms).has_value());
  auto later = q.pop(*wake);
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->job, 2u);
}

TEST(FairQueueTest, BucketHoldsOneSecondAtMost) {
  FairQueue q(limits(250));
  const auto t0 = Clock::now();
  EXPECT_DOUBLE_EQ(q.budget_ms("acme", t0), 250.0);
  q.charge("acme", 50ms, t0);
  EXPECT_DOUBLE_EQ(q.budget_ms("acme", t0), 200.0);
  EXPECT_NEAR(q.budget_ms("acme", t0 + 100ms), 225.0, 1e-6);
  EXPECT_DOUBLE_EQ(q.budget_ms("acme", t0 + 1h), 250.0);
}

TEST(FairQueueTest, NoBudgetMeansNoWaiting) {
  FairQueue q(limits(0));
  const auto t0 = Clock::now();
  q.charge("acme", 10s, t0);
  ASSERT_TRUE(q.push("acme", 1, t0));
  auto pick = q.pop(t0);
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(pick->tenant, "acme");
}

TEST(FairQueueTest, JobsWaitingPastTheTimeoutAreTakenOut) {
  FairQueue q(limits(100, 500ms));
  const auto t0 = Clock::now();
  q.charge("acme", 10s, t0);  // deep in debt: its jobs cannot start
  ASSERT_TRUE(q.push("acme", 1, t0));
  ASSERT_TRUE(q.push("acme", 2, t0 + 200ms));
  EXPECT_TRUE(q.take_expired(t0 + 499ms).empty());
  auto wake = q.next_event(t0 + 100ms);
  ASSERT_TRUE(wake.has_value());
  EXPECT_EQ(*wake, t0 + 500ms);
  auto expired = q.take_expired(t0 + 500ms);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].job, 1u);
  EXPECT_EQ(expired[0].tenant, "acme");
  expired = q.take_expired(t0 + 700ms);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].job, 2u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.next_event(t0 + 700ms).has_value());
}

TEST(FairQueueTest, DebtOutlivesAnEmptyQueue) {
  FairQueue q(limits(1000));
  const auto t0 = Clock::now();
  ASSERT_TRUE(q.push("acme", 1, t0));
  ASSERT_TRUE(q.pop(t0).has_value());
  q.charge("acme", 3s, t0);
  // Nothing queued, but coming back does not wipe the debt.
  ASSERT_TRUE(q.push("acme", 2, t0 + 1s));
  EXPECT_FALSE(q.pop(t0 + 1s).has_value());
  EXPECT_TRUE(q.pop(t0 + 2100ms).has_value());
}

}  // namespace
}  // namespace tenantgate::proxy
