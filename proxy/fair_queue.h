// The scheduling decision of the analysis pool (analysis_pool.h): which
// waiting statement is analysed next, which ones waited too long, and which
// tenants are over their CPU budget.
//
// Fairness: each tenant has its own FIFO queue; tenants with work take turns
// (round robin), so one tenant's backlog waits behind its own statements, not
// in front of other tenants'. Budget: each tenant has a token bucket of CPU
// milliseconds, refilled continuously at `ms_per_second` and holding at most
// one second's worth (the burst). A tenant may start a statement while its
// bucket is above zero; the CPU the statement measured is then taken out,
// which may leave the bucket in debt, and the tenant waits until the refill
// pays the debt off. A tenant with no budget left is skipped by the round
// robin, so others run meanwhile.
//
// Pure: no threads and no clock (callers pass `now`). Not thread-safe: the
// pool holds its mutex around every call.
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

class FairQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  using Duration = Clock::duration;

  struct Limits {
    std::uint32_t ms_per_second = 1000;  // 0: no budget
    Duration queue_timeout = std::chrono::seconds(5);
    std::size_t max_pending_per_tenant = 64;
  };

  explicit FairQueue(Limits limits) : limits_(limits) {}

  // Queues `job` for `tenant`. False when the tenant already has
  // max_pending_per_tenant jobs waiting (the job is not queued).
  [[nodiscard]] bool push(std::string_view tenant, std::uint64_t job, TimePoint now);

  struct Pick {
    std::string tenant;
    std::uint64_t job = 0;
  };
  // Jobs that have waited longer than queue_timeout, removed from the queue
  // (oldest first within a tenant).
  [[nodiscard]] std::vector<Pick> take_expired(TimePoint now);
  // The next job to run: the next tenant in turn that has a job and budget
  // left. nullopt when none may run now.
  [[nodiscard]] std::optional<Pick> pop(TimePoint now);
  // Takes the CPU a job of `tenant` used out of its bucket.
  void charge(std::string_view tenant, Duration cpu, TimePoint now);

  // When pop() or take_expired() could next return something they would not
  // return now (a bucket out of debt, a job reaching its timeout); nullopt
  // when nothing is queued.
  [[nodiscard]] std::optional<TimePoint> next_event(TimePoint now) const;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t pending(std::string_view tenant) const;
  // Remaining budget of a tenant in ms (capacity for an unknown one); may be
  // negative (debt). Infinity-free: with no budget configured, 0.
  [[nodiscard]] double budget_ms(std::string_view tenant, TimePoint now) const;

 private:
  struct Waiting {
    std::uint64_t job;
    TimePoint enqueued;
  };
  struct Tenant {
    std::deque<Waiting> queue;
    double tokens_ms = 0;
    TimePoint refilled;
    bool in_turn = false;  // listed in turns_
  };

  [[nodiscard]] double capacity_ms() const { return limits_.ms_per_second; }
  [[nodiscard]] double refilled_tokens(const Tenant& t, TimePoint now) const;
  void refill(Tenant& t, TimePoint now) const;
  Tenant& tenant(std::string_view name, TimePoint now);
  // Forgets a tenant with nothing queued and a full bucket: it is exactly
  // what an unseen tenant would be.
  void maybe_forget(const std::string& name, TimePoint now);

  Limits limits_;
  std::unordered_map<std::string, Tenant> tenants_;
  std::deque<std::string> turns_;  // tenants with queued jobs, in turn order
  std::size_t size_ = 0;
};

}  // namespace tenantgate::proxy
