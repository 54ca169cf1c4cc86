// The shell around BackendPool (backend_pool.h): holds the real backend
// connections of one pool, opens and closes them as the core decides, and
// lets sessions on any event loop wait for one without blocking their loop.
//
// `Connection` is the backend connection type (BackendConnection: connect,
// TLS, login, pinned settings, catalog snapshot); the shell needs only that
// it can be opened by `Opener`, checked while idle by `IsAlive`, and closed
// by destroying it. A Lease is a connection held by one session; dropping a
// Lease without release() tells the pool the connection's state is unknown,
// and the pool closes it rather than hand it to another client.
//
// Threads: sessions of every event loop call acquire() and release(); one
// mutex guards the core and the idle connections. A connection is used by
// one session at a time, so handing it from a session on one loop to a
// session on another needs nothing more. A waiting session is woken on its
// own executor. New connections are opened on the executors given to the
// constructor in turn, so that their I/O is spread over the loops.
//
// Lifetime: the shell must outlive every Lease and every acquire() in
// progress; stop() (on shutdown, while the event loops still exist) closes
// the idle connections, refuses the waiting requests and new ones (57P01),
// and destroys the deadline timer. Leases given back after stop() are
// closed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/asio.h"
#include "proxy/backend_pool.h"

namespace tenantgate::proxy {

template <class Connection>
class BackendPoolShell {
 public:
  // Opens and logs in one connection; nullptr with `error` set (the reason,
  // for the client's 08006) when it fails.
  using Opener = std::function<awaitable<std::unique_ptr<Connection>>(std::string& error)>;
  // Whether an idle connection can still be used (the backend has not closed
  // it and sent nothing unasked). Called with the mutex held: must not block.
  using IsAlive = std::function<bool(Connection&)>;

  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        drop();
        shell_ = std::exchange(other.shell_, nullptr);
        id_ = other.id_;
        connection_ = std::move(other.connection_);
      }
      return *this;
    }
    ~Lease() { drop(); }

    [[nodiscard]] Connection& operator*() const { return *connection_; }
    [[nodiscard]] Connection* operator->() const { return connection_.get(); }
    [[nodiscard]] explicit operator bool() const { return connection_ != nullptr; }
    [[nodiscard]] BackendPool::ConnectionId id() const { return id_; }

    // Gives the connection back. `reusable`: the backend is idle and owes
    // nothing (ReadyForQuery 'I', no pending replies), and the session
    // settings are back at the pool's baseline.
    void release(bool reusable) {
      if (shell_ != nullptr) std::exchange(shell_, nullptr)->give_back(*this, reusable);
    }

   private:
    friend class BackendPoolShell;
    void drop() { release(false); }

    BackendPoolShell* shell_ = nullptr;
    BackendPool::ConnectionId id_ = 0;
    std::unique_ptr<Connection> connection_;
  };

  struct Acquired {
    Lease lease;           // set on success
    std::string sqlstate;  // otherwise: 53300 (waited too long), 08006 (the
    std::string message;   // connection attempt failed), 57P01 (shutdown)
  };

  BackendPoolShell(std::vector<asio::any_io_executor> executors, BackendPool::Settings settings,
                   Opener open, IsAlive is_alive)
      : executors_(std::move(executors)),
        settings_(settings),
        core_(settings),
        open_(std::move(open)),
        is_alive_(std::move(is_alive)),
        timer_(std::in_place, executors_.front()) {}

  BackendPoolShell(const BackendPoolShell&) = delete;
  BackendPoolShell& operator=(const BackendPoolShell&) = delete;

  // A connection for a client of `tenant`. Resumes on the caller's executor.
  // When the caller is cancelled while waiting, its request is withdrawn.
  [[nodiscard]] awaitable<Acquired> acquire(std::string tenant) {
    auto executor = co_await asio::this_coro::executor;
    auto waiter = std::make_shared<Waiter>(executor);
    {
      std::lock_guard lock(mutex_);
      if (stopped_) co_return shutdown_refusal();
      waiter->id = next_waiter_++;
      waiter->tenant = tenant;
      waiters_.emplace(waiter->id, waiter);
      request(*waiter, now());
      pump();
    }
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (waiter->result) {
          waiters_.erase(waiter->id);
          co_return std::move(*waiter->result);
        }
      }
      waiter->wake.expires_at(asio::steady_timer::time_point::max());
      // Ends (operation_aborted) when woken or when the caller is cancelled.
      (void)co_await waiter->wake.async_wait(use_nothrow);
      std::lock_guard lock(mutex_);
      if (waiter->result) continue;
      // Cancelled by the caller (its session is ending).
      core_.cancel(waiter->id);
      waiters_.erase(waiter->id);
      pump();
      co_return Acquired{{}, "57P01", "the client went away while waiting for a backend"};
    }
  }

  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    idle_.clear();
    for (auto& [id, waiter] : waiters_) {
      // A lease granted but not yet picked up stays: overwriting it here
      // would give it back under the mutex. Its session releases it.
      if (waiter->result) continue;
      core_.cancel(id);
      finish(*waiter, shutdown_refusal());
    }
    // The timer is bound to the first loop: it goes while that loop exists.
    timer_.reset();
  }

  [[nodiscard]] BackendPool::Counts counts() const {
    std::lock_guard lock(mutex_);
    return core_.counts();
  }

 private:
  struct Waiter {
    explicit Waiter(asio::any_io_executor executor) : wake(executor) {}
    BackendPool::WaiterId id = 0;
    std::string tenant;
    asio::steady_timer wake;
    std::optional<Acquired> result;
  };

  static BackendPool::TimePoint now() { return BackendPool::Clock::now(); }
  static Acquired shutdown_refusal() {
    return Acquired{{}, "57P01", "terminating connection: tenantgate is shutting down"};
  }

  // Asks the core for a connection; on an immediate grant, hands it over.
  // Mutex held.
  void request(Waiter& waiter, BackendPool::TimePoint at) {
    const BackendPool::Acquired got = core_.acquire(waiter.id, waiter.tenant, at);
    if (got.connection) hand_over(waiter, *got.connection);
  }

  // Gives idle connection `id` to `waiter`, or, when it died while idle,
  // closes it and asks again. Mutex held.
  void hand_over(Waiter& waiter, BackendPool::ConnectionId id) {
    auto it = idle_.find(id);
    if (it == idle_.end() || !is_alive_(*it->second)) {
      if (it != idle_.end()) idle_.erase(it);
      core_.release(id, false, now());
      repoll_ = true;  // the close, and an open for the request
      request(waiter, now());
      return;
    }
    Lease lease;
    lease.shell_ = this;
    lease.id_ = id;
    lease.connection_ = std::move(it->second);
    idle_.erase(it);
    finish(waiter, Acquired{std::move(lease), {}, {}});
  }

  // Sets `waiter`'s result and wakes it on its own executor. Mutex held.
  void finish(Waiter& waiter, Acquired result) {
    waiter.result = std::move(result);
    wake(waiter);
  }

  void wake(Waiter& waiter) {
    asio::post(waiter.wake.get_executor(), [w = waiters_.at(waiter.id)] { w->wake.cancel(); });
  }

  void give_back(Lease& lease, bool reusable) {
    std::lock_guard lock(mutex_);
    if (reusable && !stopped_) idle_.emplace(lease.id_, std::move(lease.connection_));
    lease.connection_.reset();
    core_.release(lease.id_, reusable && !stopped_, now());
    pump();
  }

  // Carries out what the core says is due, then sets the timer for the
  // next deadline. Mutex held.
  void pump() {
    if (stopped_) return;
    do {
      repoll_ = false;
      carry_out(core_.poll(now()));
    } while (repoll_);
    if (const auto deadline = core_.next_deadline(); deadline && timer_) {
      timer_->expires_at(*deadline);
      timer_->async_wait([this](error_code ec) {
        if (ec) return;
        std::lock_guard lock(mutex_);
        pump();
      });
    }
  }

  void carry_out(std::vector<BackendPool::Action> actions) {
    for (BackendPool::Action& a : actions) {
      using Kind = BackendPool::Action::Kind;
      switch (a.kind) {
        case Kind::kOpen: {
          // Posted: co_spawn may start the coroutine at once on this thread,
          // and it takes the mutex held here.
          auto executor = executors_[next_executor_++ % executors_.size()];
          asio::post(executor, [this, executor, id = a.connection] {
            asio::co_spawn(executor, open_one(id), asio::detached);
          });
        } break;
        case Kind::kClose:
          idle_.erase(a.connection);
          break;
        case Kind::kGrant:
          if (auto w = waiters_.find(a.waiter); w != waiters_.end()) {
            hand_over(*w->second, a.connection);
          } else {
            core_.release(a.connection, true, now());  // withdrawn meanwhile
            repoll_ = true;
          }
          break;
        case Kind::kTimeout:
          if (auto w = waiters_.find(a.waiter); w != waiters_.end()) {
            finish(
                *w->second,
                Acquired{{},
                         "53300",
                         "no backend connection came free within pool.acquire_timeout_ms (" +
                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                settings_.acquire_timeout)
                                                .count()) +
                             " ms); nothing was run"});
          }
          break;
        case Kind::kFail:
          if (auto w = waiters_.find(a.waiter); w != waiters_.end()) {
            finish(*w->second,
                   Acquired{{}, "08006", "could not connect to the backend: " + last_open_error_});
          }
          break;
      }
    }
  }

  awaitable<void> open_one(BackendPool::ConnectionId id) {
    std::string error;
    std::unique_ptr<Connection> connection = co_await open_(error);
    std::lock_guard lock(mutex_);
    if (stopped_) co_return;
    if (connection) {
      idle_.emplace(id, std::move(connection));
      core_.opened(id, now());
    } else {
      last_open_error_ = error.empty() ? std::string("unknown error") : std::move(error);
      core_.open_failed(id, now());
    }
    pump();
  }

  const std::vector<asio::any_io_executor> executors_;
  const BackendPool::Settings settings_;
  mutable std::mutex mutex_;
  BackendPool core_;
  Opener open_;
  IsAlive is_alive_;
  std::optional<asio::steady_timer> timer_;  // reset by stop()
  std::unordered_map<BackendPool::ConnectionId, std::unique_ptr<Connection>> idle_;
  std::unordered_map<BackendPool::WaiterId, std::shared_ptr<Waiter>> waiters_;
  BackendPool::WaiterId next_waiter_ = 1;
  std::size_t next_executor_ = 0;
  std::string last_open_error_;
  bool repoll_ = false;  // carry_out changed the core: poll again
  bool stopped_ = false;
};

}  // namespace tenantgate::proxy
