#include "proxy/tenant_rate_limit.h"

#include <algorithm>

namespace tenantgate::proxy {

namespace {
// Buckets kept before full ones (tenants that went quiet) are dropped.
constexpr std::size_t kSweepAbove = 1024;
}  // namespace

double TenantRateLimit::refilled(const Bucket& b, TimePoint now) const {
  const double seconds = std::chrono::duration<double>(now - b.refilled).count();
  if (seconds <= 0) return b.tokens;
  return std::min<double>(per_second_, b.tokens + seconds * per_second_);
}

bool TenantRateLimit::admit(std::string_view tenant, TimePoint now) {
  if (per_second_ == 0) return true;
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(tenant));
  if (it == buckets_.end()) {
    if (buckets_.size() >= kSweepAbove) {
      std::erase_if(buckets_,
                    [&](const auto& kv) { return refilled(kv.second, now) >= per_second_; });
    }
    it = buckets_.emplace(std::string(tenant), Bucket{double(per_second_), now}).first;
  }
  Bucket& b = it->second;
  b.tokens = refilled(b, now);
  if (now > b.refilled) b.refilled = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace tenantgate::proxy
