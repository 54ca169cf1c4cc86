// A per-tenant limit on statements started per second (pool.
// tenant_statements_per_second): a token bucket per tenant, refilled
// continuously at the rate and holding at most one second's worth, so a
// tenant may burst up to the rate and then runs at it. A statement over the
// limit is refused by the session (53300) before anything reaches the
// backend.
//
// Pure: no clock (callers pass `now`). Not thread-safe: one per event loop,
// or behind the caller's mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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

  [[nodiscard]] std::size_t tenants() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    TimePoint refilled;
  };
  [[nodiscard]] double refilled(const Bucket& b, TimePoint now) const;

  std::uint32_t per_second_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tenantgate::proxy
