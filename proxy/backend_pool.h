// The bookkeeping of one pool of backend connections (one database and
// backend user): which connections exist, which are idle, which clients wait
// for one, and what to open, close or hand out next.
//
// Clients ask for a connection with acquire(); one that cannot be served at
// once waits in its tenant's FIFO queue, and tenants with waiting clients
// take turns (round robin), so one tenant's backlog waits behind its own
// requests, never in front of other tenants'. A tenant holds at most
// `max_per_tenant` connections at once; its requests beyond that wait even
// while connections are idle. A request still waiting after
// `acquire_timeout` is given up (the session answers 53300 with nothing run).
//
// Between uses a connection is idle. Idle connections above `min_idle` are
// closed after `idle_timeout`; a connection older than `max_lifetime` is
// closed when it is released (never while a client holds it, so never in
// the middle of a transaction) or while idle; a connection found dead while
// idle is forgotten and, where demand or `min_idle` asks for one, replaced.
// The most recently released idle connection is handed out first, so that
// the others can reach their idle timeout when demand falls.
//
// Pure: no sockets and no clock (callers pass `now`). The shell that holds
// the real connections reports events (opened, open failed, released, dead)
// and carries out the actions poll() returns (open, close, grant, give up).
// Not thread-safe: the shell serialises calls.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tenantgate::proxy {

class BackendPool {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;
  using ConnectionId = std::uint64_t;  // chosen by the pool, in Action::kOpen
  using WaiterId = std::uint64_t;      // chosen by the caller of acquire()

  struct Settings {
    std::size_t size = 0;  // connections open or opening at once; 0: no cap
    std::size_t min_idle = 0;
    Duration idle_timeout = std::chrono::minutes(10);
    Duration max_lifetime = std::chrono::hours(1);
    Duration acquire_timeout = std::chrono::seconds(5);
    std::size_t max_per_tenant = 0;  // 0: no cap beyond size
    // After a failed open, connections for min_idle alone are not attempted
    // again before this (requests of clients still open at once).
    Duration retry_delay = std::chrono::seconds(1);
  };

  explicit BackendPool(Settings settings) : settings_(settings) {}

  // ---- Requests of clients ----

  struct Acquired {
    // Set: the client holds this idle connection now. Unset: the request
    // waits; poll() grants it, gives it up, or fails it later.
    std::optional<ConnectionId> connection;
  };
  // Asks for a connection for `waiter` of `tenant`. An idle connection is
  // granted at once only when no other request waits that fairness would
  // serve first. A waiter id must not be in use already.
  [[nodiscard]] Acquired acquire(WaiterId waiter, std::string_view tenant, TimePoint now);
  // The client went away while waiting. False when the waiter is unknown
  // (already granted, given up or failed).
  bool cancel(WaiterId waiter);
  // The client is done with `connection`. `reusable` is false when its state
  // is unknown (the client left mid-transaction, a protocol error, the
  // socket failed): the connection is then closed (an Action::kClose in the
  // next poll()).
  void release(ConnectionId connection, bool reusable, TimePoint now);

  // ---- Events of connections ----

  // An Action::kOpen finished: the connection is logged in and idle.
  void opened(ConnectionId connection, TimePoint now);
  // An Action::kOpen failed. The oldest waiting request (if any) is failed
  // with it (Action::kFail), as a client without a pool would get the error
  // of its own connection attempt; other waiters keep waiting.
  void open_failed(ConnectionId connection, TimePoint now);
  // An idle connection closed or failed on its own (the backend restarted, a
  // network timeout): it is forgotten, and replaced if needed.
  void idle_died(ConnectionId connection, TimePoint now);

  // ---- What to do now ----

  struct Action {
    enum class Kind {
      kOpen,     // open and log in a new connection `connection`; report opened/open_failed
      kClose,    // close the idle `connection` (idle timeout, lifetime, not reusable)
      kGrant,    // give `connection` to `waiter`
      kTimeout,  // `waiter` waited acquire_timeout: refuse it (53300)
      kFail,     // `waiter`'s connection attempt failed: refuse it with that error
    };
    Kind kind;
    ConnectionId connection = 0;
    WaiterId waiter = 0;
    std::string tenant;  // the waiter's tenant (kGrant, kTimeout, kFail)

    bool operator==(const Action&) const = default;
  };
  // Everything due at `now`, in the order to carry it out: closes, give-ups
  // and failures, grants, then opens.
  [[nodiscard]] std::vector<Action> poll(TimePoint now);
  // When poll() next has something to do without any other event (a request
  // reaching its timeout, an idle connection reaching its idle timeout or
  // lifetime); nullopt when nothing is timed.
  [[nodiscard]] std::optional<TimePoint> next_deadline() const;

  // ---- Numbers (SHOW POOLS) ----

  struct Counts {
    std::size_t idle = 0;
    std::size_t active = 0;   // held by clients
    std::size_t opening = 0;  // kOpen issued, not yet reported
    std::size_t waiting = 0;  // requests queued
    bool operator==(const Counts&) const = default;
  };
  [[nodiscard]] Counts counts() const;
  [[nodiscard]] std::size_t held_by(std::string_view tenant) const;
  [[nodiscard]] std::size_t waiting_for(std::string_view tenant) const;

 private:
  enum class State {
    kOpening,  // kOpen issued
    kIdle,     // logged in, in idle_
    kActive,   // held by a client
    kClosing,  // to be closed by the next poll()
  };
  struct Connection {
    State state = State::kOpening;
    TimePoint created;
    TimePoint idle_since;
    std::string tenant;  // holder's tenant while kActive
  };
  struct Waiter {
    WaiterId id;
    TimePoint since;
  };
  struct Tenant {
    std::deque<Waiter> queue;
    std::size_t held = 0;
    bool in_turn = false;  // listed in turns_
  };

  [[nodiscard]] std::size_t cap() const;
  [[nodiscard]] bool under_cap(const Tenant& t) const { return t.held < cap(); }
  [[nodiscard]] bool others_waiting_first(std::string_view tenant) const;
  // Requests that an idle or opening connection could serve now: those of
  // tenants under their cap, at most (cap - held) per tenant.
  [[nodiscard]] std::size_t servable_waiters() const;
  [[nodiscard]] std::size_t open_or_opening() const { return connections_.size(); }
  ConnectionId begin_open(std::vector<Action>& out);
  void grant(ConnectionId id, const std::string& tenant, TimePoint now);
  void remove_idle(ConnectionId id);
  void close(ConnectionId id);
  void forget_tenant_if_unused(const std::string& name);
  void drop_from_turns(const std::string& name);
  // The next tenant in turn with a servable request; moves it to the back of
  // the turns. nullptr when none.
  Tenant* next_in_turn(std::string& name);
  void expire_waiters(TimePoint now, std::vector<Action>& out);
  void retire_idle(TimePoint now, std::vector<Action>& out);

  Settings settings_;
  std::unordered_map<ConnectionId, Connection> connections_;
  std::deque<ConnectionId> idle_;  // most recently released at the back
  std::unordered_map<std::string, Tenant> tenants_;
  std::deque<std::string> turns_;  // tenants with waiting requests, in turn order
  std::unordered_map<WaiterId, std::string> waiter_tenant_;
  std::deque<WaiterId> failed_;            // waiters whose connection attempt failed
  std::optional<TimePoint> refill_after_;  // set by a failed open
  std::size_t waiting_ = 0;
  ConnectionId next_id_ = 1;
};

}  // namespace tenantgate::proxy
