#include "proxy/cancel_registry.h"

#include <openssl/rand.h>

#include <cstdlib>

namespace tenantgate::proxy {

CancelRegistry::Issued CancelRegistry::issue(const CancelTarget& target) {
  int32_t key = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&key), sizeof key) != 1) std::abort();
  std::lock_guard lock(mutex_);
  int32_t pid;
  do {
    pid = next_pid_;
    next_pid_ = next_pid_ == INT32_MAX ? 1 : next_pid_ + 1;
  } while (entries_.contains(pid));
  entries_.emplace(pid, Entry{key, target});
  return {pid, key};
}

void CancelRegistry::remove(int32_t pid) {
  std::lock_guard lock(mutex_);
  entries_.erase(pid);
}

std::optional<CancelTarget> CancelRegistry::find(int32_t pid, int32_t key) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(pid);
  if (it == entries_.end()) return std::nullopt;
  // The pid is not secret; the key is, so compare it without early exit.
  volatile int32_t diff = it->second.key ^ key;
  if (diff != 0) return std::nullopt;
  return it->second.target;
}

}  // namespace tenantgate::proxy
