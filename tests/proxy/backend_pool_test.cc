// The pool's bookkeeping, as tables of steps: each step is an event at a time
// (a request, a release, a connection opened or dead) or a poll, and what the
// pool answers. Actions are written compactly: "open c1", "close c1",
// "grant c1 w2 acme", "timeout w3 acme", "fail w1 acme"; an acquire answers
// "c1" (granted at once) or "wait".
#include "proxy/backend_pool.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace tenantgate::proxy {
namespace {

using std::chrono::milliseconds;
using Kind = BackendPool::Action::Kind;

enum class Op {
  kAcquire,
  kCancel,
  kRelease,
  kReleaseBroken,
  kOpened,
  kOpenFailed,
  kIdleDied,
  kPoll
};

struct Step {
  int at_ms;
  Op op;
  std::uint64_t id = 0;  // waiter (acquire, cancel) or connection (others)
  std::string tenant;    // acquire
  std::string expect;    // acquire: "cN" | "wait"; poll: the actions; cancel: "true" | "false"
};

struct Case {
  const char* name;
  BackendPool::Settings settings;
  std::vector<Step> steps;
};

BackendPool::Settings settings(std::size_t size, std::size_t max_per_tenant = 0,
                               std::size_t min_idle = 0) {
  BackendPool::Settings s;
  s.size = size;
  s.max_per_tenant = max_per_tenant;
  s.min_idle = min_idle;
  s.idle_timeout = milliseconds(1000);
  s.max_lifetime = milliseconds(10000);
  s.acquire_timeout = milliseconds(500);
  s.retry_delay = milliseconds(100);
  return s;
}

std::string describe(const BackendPool::Action& a) {
  switch (a.kind) {
    case Kind::kOpen:
      return "open c" + std::to_string(a.connection);
    case Kind::kClose:
      return "close c" + std::to_string(a.connection);
    case Kind::kGrant:
      return "grant c" + std::to_string(a.connection) + " w" + std::to_string(a.waiter) + " " +
             a.tenant;
    case Kind::kTimeout:
      return "timeout w" + std::to_string(a.waiter) + " " + a.tenant;
    case Kind::kFail:
      return "fail w" + std::to_string(a.waiter) + " " + a.tenant;
  }
  return "?";
}

std::string describe(const std::vector<BackendPool::Action>& actions) {
  std::string out;
  for (const auto& a : actions) out += (out.empty() ? "" : ", ") + describe(a);
  return out;
}

void run(const Case& c) {
  SCOPED_TRACE(c.name);
  BackendPool pool(c.settings);
  const BackendPool::TimePoint t0{};
  int index = 0;
  for (const Step& s : c.steps) {
    SCOPED_TRACE("step " + std::to_string(index++) + " at " + std::to_string(s.at_ms) + " ms");
    const auto now = t0 + milliseconds(s.at_ms);
    switch (s.op) {
      case Op::kAcquire: {
        const auto got = pool.acquire(s.id, s.tenant, now);
        EXPECT_EQ(got.connection ? "c" + std::to_string(*got.connection) : "wait", s.expect);
        break;
      }
      case Op::kCancel:
        EXPECT_EQ(pool.cancel(s.id) ? "true" : "false", s.expect);
        break;
      case Op::kRelease:
        pool.release(s.id, true, now);
        break;
      case Op::kReleaseBroken:
        pool.release(s.id, false, now);
        break;
      case Op::kOpened:
        pool.opened(s.id, now);
        break;
      case Op::kOpenFailed:
        pool.open_failed(s.id, now);
        break;
      case Op::kIdleDied:
        pool.idle_died(s.id, now);
        break;
      case Op::kPoll:
        EXPECT_EQ(describe(pool.poll(now)), s.expect);
        break;
    }
  }
}

Step acquire(int at, std::uint64_t w, std::string tenant, std::string expect) {
  return Step{at, Op::kAcquire, w, std::move(tenant), std::move(expect)};
}
Step poll(int at, std::string expect) { return Step{at, Op::kPoll, 0, {}, std::move(expect)}; }
Step opened(int at, std::uint64_t c) { return Step{at, Op::kOpened, c, {}, {}}; }
Step release(int at, std::uint64_t c) { return Step{at, Op::kRelease, c, {}, {}}; }
Step broken(int at, std::uint64_t c) { return Step{at, Op::kReleaseBroken, c, {}, {}}; }
Step open_failed(int at, std::uint64_t c) { return Step{at, Op::kOpenFailed, c, {}, {}}; }
Step idle_died(int at, std::uint64_t c) { return Step{at, Op::kIdleDied, c, {}, {}}; }
Step cancel(int at, std::uint64_t w, std::string expect) {
  return Step{at, Op::kCancel, w, {}, std::move(expect)};
}

const std::vector<Case>& cases() {
  static const std::vector<Case> kCases = {
      {"first request opens a connection and gets it",
       settings(2),
       {acquire(0, 1, "acme", "wait"), poll(0, "open c1"), opened(5, 1),
        poll(5, "grant c1 w1 acme")}},
      {"a released connection is reused without opening another",
       settings(2),
       {acquire(0, 1, "acme", "wait"), poll(0, "open c1"), opened(1, 1),
        poll(1, "grant c1 w1 acme"), release(2, 1), poll(2, ""), acquire(3, 2, "globex", "c1"),
        poll(3, "")}},
      {"size caps the connections; the third request waits for a release",
       settings(2),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "b", "wait"), acquire(0, 3, "c", "wait"),
        poll(0, "open c1, open c2"), opened(1, 1), opened(1, 2),
        poll(1, "grant c2 w1 a, grant c1 w2 b"), release(2, 2), poll(2, "grant c2 w3 c")}},
      {"the most recently released idle connection is handed out first",
       settings(3),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "a", "wait"), poll(0, "open c1, open c2"),
        opened(1, 1), opened(1, 2), poll(1, "grant c2 w1 a, grant c1 w2 a"), release(2, 2),
        release(3, 1), acquire(4, 3, "a", "c1")}},
      {"a request that waits acquire_timeout is given up",
       settings(1),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), opened(1, 1), poll(1, "grant c1 w1 a"),
        acquire(10, 2, "b", "wait"), poll(10, ""), poll(509, ""), poll(510, "timeout w2 b"),
        release(600, 1), poll(600, "")}},
      {"a cancelled request is not served",
       settings(1),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), acquire(0, 2, "b", "wait"),
        cancel(1, 1, "true"), cancel(1, 1, "false"), opened(2, 1), poll(2, "grant c1 w2 b")}},
      {"max_per_tenant: a tenant at its cap waits even with idle connections",
       settings(3, 1),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "a", "wait"), poll(0, "open c1"), opened(1, 1),
        poll(1, "grant c1 w1 a"), acquire(2, 3, "b", "wait"), poll(2, "open c2"), opened(3, 2),
        poll(3, "grant c2 w3 b"), release(4, 2), poll(4, ""), release(5, 1),
        poll(5, "grant c1 w2 a")}},
      {"tenants take turns for the connections that come free",
       settings(1),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), opened(1, 1), poll(1, "grant c1 w1 a"),
        acquire(2, 2, "a", "wait"), acquire(2, 3, "a", "wait"), acquire(3, 4, "b", "wait"),
        acquire(4, 5, "c", "wait"), release(5, 1), poll(5, "grant c1 w2 a"), release(6, 1),
        poll(6, "grant c1 w4 b"), release(7, 1), poll(7, "grant c1 w5 c"), release(8, 1),
        poll(8, "grant c1 w3 a")}},
      {"a request queues behind others waiting, even when a connection is idle",
       settings(2),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "b", "wait"), poll(0, "open c1, open c2"),
        opened(1, 1), acquire(1, 3, "c", "wait"), poll(1, "grant c1 w1 a"), opened(2, 2),
        poll(2, "grant c2 w2 b")}},
      {"a broken release closes the connection; the next request opens a new one",
       settings(1),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), opened(1, 1), poll(1, "grant c1 w1 a"),
        acquire(2, 2, "b", "wait"), broken(3, 1), poll(3, "close c1, open c2"), opened(4, 2),
        poll(4, "grant c2 w2 b")}},
      {"idle connections above min_idle close after idle_timeout",
       settings(3, 0, 1),
       {poll(0, "open c1"), opened(1, 1), acquire(2, 1, "a", "c1"), acquire(2, 2, "a", "wait"),
        poll(2, "open c2, open c3"), opened(3, 2), opened(3, 3), poll(3, "grant c3 w2 a"),
        release(4, 1), release(5, 3), poll(1002, ""), poll(1003, "close c2"),
        poll(1004, "close c1"), poll(1005, ""), poll(9000, "")}},
      {"max_lifetime: an idle connection is retired, a held one at its release",
       settings(2),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "a", "wait"), poll(0, "open c1, open c2"),
        opened(0, 1), opened(0, 2), poll(0, "grant c2 w1 a, grant c1 w2 a"), release(900, 2),
        release(9999, 1), acquire(9999, 3, "a", "c1"), poll(10000, "close c2"), poll(10500, ""),
        release(10500, 1), poll(10500, "close c1")}},
      {"min_idle refills after an idle connection dies",
       settings(4, 0, 2),
       {poll(0, "open c1, open c2"), opened(1, 1), opened(1, 2), poll(1, ""), idle_died(5, 2),
        poll(5, "open c3"), opened(6, 3), poll(6, "")}},
      {"a dead idle connection is replaced for a waiting request",
       settings(1),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), opened(1, 1), poll(1, "grant c1 w1 a"),
        release(2, 1), idle_died(3, 1), acquire(4, 2, "a", "wait"), poll(4, "open c2"),
        opened(5, 2), poll(5, "grant c2 w2 a")}},
      {"a failed open fails the oldest request; the others retry",
       settings(1),
       {acquire(0, 1, "a", "wait"), acquire(1, 2, "b", "wait"), acquire(2, 3, "a", "wait"),
        poll(2, "open c1"), open_failed(3, 1), poll(3, "fail w1 a, open c2"), open_failed(4, 2),
        poll(4, "fail w2 b, open c3"), opened(5, 3), poll(5, "grant c3 w3 a")}},
      {"a failed open with nobody waiting fails nobody",
       settings(2),
       {acquire(0, 1, "a", "wait"), poll(0, "open c1"), cancel(1, 1, "true"), open_failed(2, 1),
        poll(2, "")}},
      {"min_idle does not retry a failed open before retry_delay",
       settings(2, 0, 1),
       {poll(0, "open c1"), open_failed(1, 1), poll(1, ""), poll(100, ""), poll(101, "open c2"),
        opened(102, 2), poll(102, "")}},
      {"no size: every request opens at once (session mode without a cap)",
       settings(0),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "a", "wait"), acquire(0, 3, "b", "wait"),
        poll(0, "open c1, open c2, open c3")}},
      {"a tenant at its cap does not make the pool open for it",
       settings(4, 1),
       {acquire(0, 1, "a", "wait"), acquire(0, 2, "a", "wait"), acquire(0, 3, "a", "wait"),
        poll(0, "open c1"), opened(1, 1), poll(1, "grant c1 w1 a"), poll(2, "")}},
  };
  return kCases;
}

TEST(BackendPoolTest, Table) {
  for (const Case& c : cases()) run(c);
}

TEST(BackendPoolTest, CountsFollowTheConnections) {
  BackendPool pool(settings(2));
  const BackendPool::TimePoint t{};
  EXPECT_FALSE(pool.acquire(1, "a", t).connection);
  EXPECT_FALSE(pool.acquire(2, "a", t).connection);
  EXPECT_FALSE(pool.acquire(3, "b", t).connection);
  EXPECT_EQ(pool.counts(), (BackendPool::Counts{0, 0, 0, 3}));
  EXPECT_EQ(describe(pool.poll(t)), "open c1, open c2");
  EXPECT_EQ(pool.counts(), (BackendPool::Counts{0, 0, 2, 3}));
  pool.opened(1, t);
  EXPECT_EQ(pool.counts(), (BackendPool::Counts{1, 0, 1, 3}));
  EXPECT_EQ(describe(pool.poll(t)), "grant c1 w1 a");
  EXPECT_EQ(pool.counts(), (BackendPool::Counts{0, 1, 1, 2}));
  EXPECT_EQ(pool.held_by("a"), 1u);
  EXPECT_EQ(pool.waiting_for("a"), 1u);
  EXPECT_EQ(pool.waiting_for("b"), 1u);
  EXPECT_EQ(pool.held_by("nobody"), 0u);
}

TEST(BackendPoolTest, NextDeadline) {
  BackendPool pool(settings(1));
  const BackendPool::TimePoint t{};
  EXPECT_EQ(pool.next_deadline(), std::nullopt);
  EXPECT_FALSE(pool.acquire(1, "a", t).connection);
  EXPECT_EQ(pool.next_deadline(), t + milliseconds(500));  // acquire_timeout
  EXPECT_EQ(describe(pool.poll(t)), "open c1");
  pool.opened(1, t + milliseconds(10));
  EXPECT_EQ(describe(pool.poll(t + milliseconds(10))), "grant c1 w1 a");
  EXPECT_EQ(pool.next_deadline(), std::nullopt);  // a held connection is not timed
  pool.release(1, true, t + milliseconds(20));
  // The idle timeout (1000 ms after release) comes before the lifetime.
  EXPECT_EQ(pool.next_deadline(), t + milliseconds(1020));
}

// One tenant floods the pool with requests; another keeps getting served
// within one turn, whatever the flood's size. Random arrival order; the seed
// is printed.
TEST(BackendPoolTest, FloodingTenantDoesNotStarveAnother) {
  const unsigned seed = std::random_device{}();
  std::printf("BackendPoolTest.FloodingTenantDoesNotStarveAnother seed=%u\n", seed);
  std::mt19937 rng(seed);
  auto s = settings(4);
  s.acquire_timeout = std::chrono::hours(1);
  BackendPool pool(s);
  BackendPool::TimePoint now{};
  std::uint64_t next_waiter = 1;
  std::vector<BackendPool::ConnectionId> held;
  std::vector<std::uint64_t> quiet_waiting;
  std::size_t quiet_served = 0;
  std::size_t flood_served = 0;
  std::size_t max_grants_while_quiet_waits = 0;
  std::size_t grants_since_quiet_queued = 0;
  auto carry_out = [&](const std::vector<BackendPool::Action>& actions) {
    for (const auto& a : actions) {
      if (a.kind == Kind::kOpen) pool.opened(a.connection, now);
      if (a.kind == Kind::kGrant) {
        held.push_back(a.connection);
        if (a.tenant == "quiet") {
          ++quiet_served;
          std::erase(quiet_waiting, a.waiter);
          max_grants_while_quiet_waits =
              std::max(max_grants_while_quiet_waits, grants_since_quiet_queued);
        } else {
          ++flood_served;
          if (!quiet_waiting.empty()) ++grants_since_quiet_queued;
        }
      }
      ASSERT_NE(a.kind, Kind::kTimeout);
      ASSERT_NE(a.kind, Kind::kFail);
    }
  };
  auto flood = [&](int n) {
    for (int i = 0; i < n; ++i) {
      if (auto c = pool.acquire(next_waiter++, "flood", now).connection) {
        held.push_back(*c);
        ++flood_served;
      }
    }
  };
  flood(2000);
  for (int round = 0; round < 400; ++round) {
    now += milliseconds(1);
    if (rng() % 4 == 0 && quiet_waiting.empty()) {
      const std::uint64_t w = next_waiter++;
      grants_since_quiet_queued = 0;
      if (auto c = pool.acquire(w, "quiet", now).connection) {
        held.push_back(*c);
        ++quiet_served;
      } else {
        quiet_waiting.push_back(w);
      }
    }
    flood(5);
    carry_out(pool.poll(now));
    // Release one held connection at random.
    if (!held.empty()) {
      const std::size_t k = rng() % held.size();
      pool.release(held[k], true, now);
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
    }
    carry_out(pool.poll(now));
    EXPECT_LE(pool.counts().active + pool.counts().idle + pool.counts().opening, 4u);
  }
  EXPECT_GT(quiet_served, 50u);
  EXPECT_GT(flood_served, 300u);
  // Round robin between two tenants: the quiet tenant waits behind at most
  // one of the flood's grants.
  EXPECT_LE(max_grants_while_quiet_waits, 1u);
  EXPECT_GT(pool.waiting_for("flood"), 1000u);
}

}  // namespace
}  // namespace tenantgate::proxy
