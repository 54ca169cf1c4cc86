// The policy in force: an immutable snapshot that sessions read per statement
// and that a reload (SIGHUP) replaces by swapping one pointer.
#pragma once

#include <atomic>
#include <memory>

#include "policy/policy.h"

namespace tenantgate::proxy {

class PolicyStore {
 public:
  explicit PolicyStore(std::shared_ptr<const policy::Policy> initial)
      : current_(std::move(initial)) {}

  [[nodiscard]] std::shared_ptr<const policy::Policy> get() const { return current_.load(); }
  void set(std::shared_ptr<const policy::Policy> next) { current_.store(std::move(next)); }

 private:
  std::atomic<std::shared_ptr<const policy::Policy>> current_;
};

}  // namespace tenantgate::proxy
