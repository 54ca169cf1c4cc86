// The policy a connection with no caller is rewritten under: the same policy
// with every table scoped by tenant or owner denied, so that any statement
// touching one is refused (42501) while shared tables, catalogs and
// transaction control still work.
#pragma once

#include <memory>

#include "policy/policy.h"

namespace tenantgate::proxy {

// The no-caller form of `policy`. The last result is remembered, so that
// every session without a caller gets the same snapshot (the rewrite cache is
// keyed by snapshot) until the policy is reloaded. Thread-safe.
[[nodiscard]] std::shared_ptr<const policy::Policy> policy_without_caller(
    const std::shared_ptr<const policy::Policy>& policy);

}  // namespace tenantgate::proxy
