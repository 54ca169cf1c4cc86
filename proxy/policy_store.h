// The policy in force: an immutable snapshot that sessions read per statement
// and that a reload (SIGHUP) replaces by swapping one pointer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "policy/policy.h"

namespace tenantgate::proxy {

class PolicyStore {
 public:
  explicit PolicyStore(std::shared_ptr<const policy::Policy> initial)
      : current_(std::move(initial)) {}

  [[nodiscard]] std::shared_ptr<const policy::Policy> get() const { return current_.load(); }
  void set(std::shared_ptr<const policy::Policy> next) {
    current_.store(std::move(next));
    generation_.fetch_add(1, std::memory_order_release);
  }

  // Changes after every set(). A session that remembers the generation it
  // last read get() at can keep its snapshot while the generation is the same:
  // one plain load per statement instead of a locked shared_ptr copy whose
  // reference count every event-loop thread would write. Once a reader sees
  // a new generation, get() returns that set()'s snapshot or a later one.
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::shared_ptr<const policy::Policy>> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace tenantgate::proxy
