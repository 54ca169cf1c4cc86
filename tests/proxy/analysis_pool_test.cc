#include "proxy/analysis_pool.h"

#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <future>
#include <optional>

#include "rewriter/rewriter.h"

namespace tenantgate::proxy {
namespace {

using namespace std::chrono_literals;
using Outcome = std::optional<AnalysisPool::Refusal>;

AnalysisPool::Options options(unsigned threads, std::uint32_t ms_per_second,
                              std::chrono::milliseconds timeout, std::size_t max_pending) {
  AnalysisPool::Options o;
  o.threads = threads;
  o.limits.ms_per_second = ms_per_second;
  o.limits.queue_timeout = timeout;
  o.limits.max_pending_per_tenant = max_pending;
  return o;
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

TEST(AnalysisPoolTest, RunsTasksOnALargeStack) {
  AnalysisPool pool(options(2, 0, 5s, 8));
  std::promise<std::size_t> ran;
  pool.submit("acme", [&](Outcome refusal) {
    ASSERT_FALSE(refusal.has_value());
    pthread_attr_t attr;
    std::size_t stack = 0;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstacksize(&attr, &stack);
    pthread_attr_destroy(&attr);
    ran.set_value(stack);
  });
  auto future = ran.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_GE(future.get(), rewriter::kRequiredStackBytes);
}

TEST(AnalysisPoolTest, TenantQueueBoundRefusesAtOnce) {
  AnalysisPool pool(options(1, 0, 5s, 1));
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  pool.submit("acme", [&](Outcome) {
    started.set_value();
    released.wait();
  });
  started.get_future().wait();
  std::promise<Outcome> second, third;
  pool.submit("acme", [&](Outcome r) { second.set_value(r); });  // waits: the thread is busy
  pool.submit("acme", [&](Outcome r) { third.set_value(r); });   // over the bound
  auto refused = third.get_future();
  ASSERT_EQ(refused.wait_for(0s), std::future_status::ready);  // inline, in submit()
  EXPECT_EQ(refused.get(), AnalysisPool::Refusal::kTooMany);
  std::promise<Outcome> other;
  pool.submit("globex", [&](Outcome r) { other.set_value(r); });  // its own bound
  release.set_value();
  auto ran = second.get_future();
  ASSERT_EQ(ran.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(ran.get().has_value());
  auto other_ran = other.get_future();
  ASSERT_EQ(other_ran.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(other_ran.get().has_value());
}

TEST(AnalysisPoolTest, TenantOverBudgetTimesOutWhileOthersRun) {
  // 1 ms of CPU per second: a task that burns 30 ms leaves acme ~29 s in debt.
  AnalysisPool pool(options(1, 1, 200ms, 8));
  std::promise<void> burnt;
  pool.submit("acme", [&](Outcome) {
    const double start = thread_cpu_ms();
    while (thread_cpu_ms() - start < 30) {
    }
    burnt.set_value();
  });
  burnt.get_future().wait();
  std::promise<Outcome> waiting, other;
  const auto t0 = std::chrono::steady_clock::now();
  pool.submit("acme", [&](Outcome r) { waiting.set_value(r); });
  pool.submit("globex", [&](Outcome r) { other.set_value(r); });
  auto other_ran = other.get_future();
  ASSERT_EQ(other_ran.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(other_ran.get().has_value());  // globex has its own budget
  auto refused = waiting.get_future();
  ASSERT_EQ(refused.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(refused.get(), AnalysisPool::Refusal::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
}

TEST(AnalysisPoolTest, StopDropsQueuedTasksWithoutCallingThem) {
  bool called = false;
  {
    AnalysisPool pool(options(1, 1, 60s, 8));
    std::promise<void> burnt;
    pool.submit("acme", [&](Outcome) {
      const double start = thread_cpu_ms();
      while (thread_cpu_ms() - start < 20) {
      }
      burnt.set_value();
    });
    burnt.get_future().wait();
    pool.submit("acme", [&](Outcome) { called = true; });  // in debt: stays queued
  }
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace tenantgate::proxy
