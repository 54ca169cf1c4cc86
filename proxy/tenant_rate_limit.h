// A per-tenant limit on statements started per second (pool.
// tenant_statements_per_second): a token bucket per tenant, refilled
// continuously at the rate and holding at most one second's worth, so a
// tenant may burst up to the rate and then runs at it. A statement over the
// limit is refused by the session (53300) before anything reaches the
// backend.
//
// No clock (callers pass `now`). Thread-safe: one limit is shared by the
// sessions of every event loop, so that a tenant's rate does not depend on
// how its connections are spread over the loops; one mutex, held for a
// lookup and a few arithmetic operations.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tenantgate::proxy {

class TenantRateLimit {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  // 0: no limit (admit() is always true and remembers nothing).
  explicit TenantRateLimit(std::uint32_t per_second) : per_second_(per_second) {}

  // Takes one statement out of `tenant`'s bucket; false (and nothing taken)
  // when the bucket holds less than one.
  [[nodiscard]] bool admit(std::string_view tenant, TimePoint now);

  [[nodiscard]] std::size_t tenants() const {
    std::lock_guard lock(mutex_);
    return buckets_.size();
  }
  [[nodiscard]] std::uint32_t per_second() const { return per_second_; }

 private:
  struct Bucket {
    double tokens = 0;
    TimePoint refilled;
  };
  [[nodiscard]] double refilled(const Bucket& b, TimePoint now) const;

  const std::uint32_t per_second_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tenantgate::proxy
