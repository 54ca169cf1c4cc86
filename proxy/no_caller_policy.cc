// Deriving and remembering the no-caller policy.

#include "proxy/no_caller_policy.h"

#include <mutex>

namespace tenantgate::proxy {

namespace {

std::shared_ptr<policy::Policy> derive(const policy::Policy& from) {
  auto out = std::make_shared<policy::Policy>(from);
  for (auto& [name, table] : out->tables) {
    // Every scope that reads the caller (tenant, owner, row policies) is
    // denied; its row policies and masks go with it.
    if (table.scope != policy::Scope::kShared) {
      table.scope = policy::Scope::kDeny;
      table.policies.clear();
      table.masks.clear();
      table.uses_user = false;
    }
  }
  // Tables not listed follow default_action, which is kDeny or kShared: both
  // hold without a caller.
  return out;
}

}  // namespace

std::shared_ptr<const policy::Policy> policy_without_caller(
    const std::shared_ptr<const policy::Policy>& policy) {
  static std::mutex mu;
  static std::weak_ptr<const policy::Policy> last_in;
  static std::shared_ptr<const policy::Policy> last_out;
  std::lock_guard lock(mu);
  if (last_out && !last_in.expired() && last_in.lock() == policy) return last_out;
  last_in = policy;
  last_out = derive(*policy);
  return last_out;
}

}  // namespace tenantgate::proxy
