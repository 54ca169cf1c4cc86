// The pool's shell on real event loops: waiting without blocking, waking on
// the waiter's own loop, reuse, timeouts, failed opens, dead idle
// connections, withdrawn requests and sessions on two loops at once. The
// connections are plain objects (the shell only opens, checks and destroys
// them); the sockets are the backend connection's.
#include "proxy/backend_pool_shell.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "proxy/session_slots.h"

namespace tenantgate::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

struct FakeConnection {
  int serial = 0;
  bool alive = true;
};

struct Backend {
  std::atomic<int> opened{0};
  std::atomic<int> destroyed{0};
  std::atomic<bool> fail{false};
};

struct Counted : FakeConnection {
  explicit Counted(Backend& b, int n) : backend(b) { serial = n; }
  ~Counted() { ++backend.destroyed; }
  Backend& backend;
};

using Shell = BackendPoolShell<Counted>;

BackendPool::Settings settings(std::size_t size) {
  BackendPool::Settings s;
  s.size = size;
  s.acquire_timeout = milliseconds(200);
  s.idle_timeout = std::chrono::seconds(30);
  return s;
}

std::unique_ptr<Shell> make_shell(std::vector<asio::any_io_executor> executors,
                                  BackendPool::Settings s, Backend& backend) {
  return std::make_unique<Shell>(
      std::move(executors), s,
      [&backend](std::string& error) -> awaitable<std::unique_ptr<Counted>> {
        asio::steady_timer t(co_await asio::this_coro::executor, milliseconds(2));
        co_await t.async_wait(use_nothrow);  // an open takes a while
        if (backend.fail) {
          error = "connection refused";
          co_return nullptr;
        }
        co_return std::make_unique<Counted>(backend, ++backend.opened);
      },
      [](Counted& c) { return c.alive; });
}

template <class F>
void run_on(asio::io_context& io, F body) {
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await body();
        done = true;
        io.stop();  // the shell's deadline timer would keep the loop running
      },
      asio::detached);
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done);
}

TEST(BackendPoolShellTest, OpensOnceAndReuses) {
  asio::io_context io;
  Backend backend;
  auto shell = make_shell({io.get_executor()}, settings(2), backend);
  run_on(io, [&]() -> awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      Shell::Acquired got = co_await shell->acquire("acme");
      EXPECT_TRUE(got.lease) << got.message;
      EXPECT_EQ(got.lease->serial, 1);
      got.lease.release(true);
    }
  });
  EXPECT_EQ(backend.opened, 1);
  EXPECT_EQ(shell->counts(), (BackendPool::Counts{1, 0, 0, 0}));
}

TEST(BackendPoolShellTest, DroppedLeaseIsClosedNotReused) {
  asio::io_context io;
  Backend backend;
  auto shell = make_shell({io.get_executor()}, settings(1), backend);
  run_on(io, [&]() -> awaitable<void> {
    {
      Shell::Acquired got = co_await shell->acquire("acme");
      EXPECT_TRUE(got.lease);
    }  // dropped: state unknown
    Shell::Acquired again = co_await shell->acquire("acme");
    EXPECT_TRUE(again.lease);
    EXPECT_EQ(again.lease->serial, 2);
  });
  EXPECT_EQ(backend.opened, 2);
  EXPECT_EQ(backend.destroyed, 2);
}

TEST(BackendPoolShellTest, WaitsForAReleaseThenTimesOut) {
  asio::io_context io;
  Backend backend;
  auto shell = make_shell({io.get_executor()}, settings(1), backend);
  run_on(io, [&]() -> awaitable<void> {
    Shell::Acquired first = co_await shell->acquire("acme");
    EXPECT_TRUE(first.lease);
    // A second client waits; the first releases after 50 ms.
    asio::steady_timer later(io, milliseconds(50));
    auto second = co_await (shell->acquire("globex") && [&]() -> awaitable<void> {
      co_await later.async_wait(use_nothrow);
      first.lease.release(true);
    }());
    EXPECT_TRUE(second.lease);
    // A third waits past acquire_timeout while the second holds it.
    const auto t0 = std::chrono::steady_clock::now();
    Shell::Acquired third = co_await shell->acquire("initech");
    EXPECT_FALSE(third.lease);
    EXPECT_EQ(third.sqlstate, "53300");
    EXPECT_NE(third.message.find("pool.acquire_timeout_ms (200 ms)"), std::string::npos);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(200));
  });
  EXPECT_EQ(backend.opened, 1);
}

TEST(BackendPoolShellTest, FailedOpenFailsTheRequestWithTheReason) {
  asio::io_context io;
  Backend backend;
  backend.fail = true;
  auto shell = make_shell({io.get_executor()}, settings(2), backend);
  run_on(io, [&]() -> awaitable<void> {
    Shell::Acquired got = co_await shell->acquire("acme");
    EXPECT_FALSE(got.lease);
    EXPECT_EQ(got.sqlstate, "08006");
    EXPECT_EQ(got.message, "could not connect to the backend: connection refused");
    backend.fail = false;
    Shell::Acquired retry = co_await shell->acquire("acme");
    EXPECT_TRUE(retry.lease);
  });
}

TEST(BackendPoolShellTest, DeadIdleConnectionIsReplacedSilently) {
  asio::io_context io;
  Backend backend;
  auto shell = make_shell({io.get_executor()}, settings(1), backend);
  run_on(io, [&]() -> awaitable<void> {
    Shell::Acquired got = co_await shell->acquire("acme");
    got.lease->alive = false;  // the backend will have gone while idle
    got.lease.release(true);
    Shell::Acquired next = co_await shell->acquire("acme");
    EXPECT_TRUE(next.lease) << next.message;
    EXPECT_EQ(next.lease->serial, 2);
    EXPECT_TRUE(next.lease->alive);
    EXPECT_EQ(backend.destroyed, 1);  // the dead one
  });
}

TEST(BackendPoolShellTest, CancelledWaiterIsWithdrawn) {
  asio::io_context io;
  Backend backend;
  auto s = settings(1);
  s.acquire_timeout = std::chrono::seconds(5);
  auto shell = make_shell({io.get_executor()}, s, backend);
  run_on(io, [&]() -> awaitable<void> {
    Shell::Acquired holder = co_await shell->acquire("acme");
    asio::steady_timer give_up(io, milliseconds(20));
    auto raced = co_await (shell->acquire("globex") || give_up.async_wait(use_nothrow));
    EXPECT_EQ(raced.index(), 1u);  // the session ended first
    EXPECT_EQ(shell->counts().waiting, 0u);
    holder.lease.release(true);
    EXPECT_EQ(shell->counts(), (BackendPool::Counts{1, 0, 0, 0}));
  });
}

// Sessions on two event loops (two threads) share a pool of two: never more
// than two connections out, every request served, each lease used by one
// session at a time.
TEST(BackendPoolShellTest, TwoLoopsShareThePool) {
  asio::io_context a, b;
  Backend backend;
  auto s = settings(2);
  s.acquire_timeout = std::chrono::seconds(10);
  auto shell = make_shell({a.get_executor(), b.get_executor()}, s, backend);
  std::atomic<int> out{0}, max_out{0}, served{0}, finished{0};
  auto session = [&](std::string tenant) -> awaitable<void> {
    for (int i = 0; i < 200; ++i) {
      Shell::Acquired got = co_await shell->acquire(tenant);
      EXPECT_TRUE(got.lease) << got.message;
      const int now_out = ++out;
      int seen = max_out.load();
      while (now_out > seen && !max_out.compare_exchange_weak(seen, now_out)) {
      }
      ++served;
      --out;
      got.lease.release(true);
    }
    if (++finished == 8) {
      a.stop();
      b.stop();
    }
  };
  for (int i = 0; i < 4; ++i) {
    asio::co_spawn(a, session("acme"), asio::detached);
    asio::co_spawn(b, session("globex"), asio::detached);
  }
  std::thread tb([&] { b.run_for(std::chrono::seconds(20)); });
  a.run_for(std::chrono::seconds(20));
  tb.join();
  EXPECT_EQ(served, 1600);
  EXPECT_LE(max_out, 2);
  EXPECT_LE(backend.opened, 2);
}

}  // namespace
}  // namespace tenantgate::proxy

namespace tenantgate::proxy {
namespace {

TEST(SessionSlotsTest, OnlySessionModeWithASizeHasSlots) {
  asio::io_context io;
  config::Pool pool;
  EXPECT_EQ(make_session_slots({io.get_executor()}, pool), nullptr);
  pool.mode = config::PoolMode::kTransaction;
  pool.size = 4;
  EXPECT_EQ(make_session_slots({io.get_executor()}, pool), nullptr);
}

TEST(SessionSlotsTest, ATenantAtItsCapWaitsWhileAnotherLogsIn) {
  asio::io_context io;
  config::Pool pool;
  pool.size = 2;
  pool.max_per_tenant = 1;
  pool.acquire_timeout_ms = 100;
  auto slots = make_session_slots({io.get_executor()}, pool);
  ASSERT_NE(slots, nullptr);
  run_on(io, [&]() -> awaitable<void> {
    SessionSlots::Acquired first = co_await slots->acquire("acme");
    EXPECT_TRUE(first.lease);
    SessionSlots::Acquired second = co_await slots->acquire("acme");
    EXPECT_FALSE(second.lease);
    EXPECT_EQ(second.sqlstate, "53300");
    SessionSlots::Acquired other = co_await slots->acquire("globex");
    EXPECT_TRUE(other.lease);
    first.lease.release(true);
    SessionSlots::Acquired third = co_await slots->acquire("acme");
    EXPECT_TRUE(third.lease);
  });
}

}  // namespace
}  // namespace tenantgate::proxy

namespace tenantgate::proxy {
namespace {

TEST(BackendPoolShellTest, StopRefusesWaitersAndNewRequests) {
  asio::io_context io;
  Backend backend;
  auto s = settings(1);
  s.acquire_timeout = std::chrono::seconds(5);
  auto shell = make_shell({io.get_executor()}, s, backend);
  run_on(io, [&]() -> awaitable<void> {
    Shell::Acquired holder = co_await shell->acquire("acme");
    EXPECT_TRUE(holder.lease);
    asio::steady_timer later(io, milliseconds(20));
    auto waiting = co_await (shell->acquire("globex") && [&]() -> awaitable<void> {
      co_await later.async_wait(use_nothrow);
      shell->stop();
    }());
    EXPECT_FALSE(waiting.lease);
    EXPECT_EQ(waiting.sqlstate, "57P01");
    Shell::Acquired after = co_await shell->acquire("acme");
    EXPECT_EQ(after.sqlstate, "57P01");
    holder.lease.release(true);  // closed, not kept
  });
  EXPECT_EQ(backend.destroyed, 1);
}

}  // namespace
}  // namespace tenantgate::proxy
