// Checks, at Bind, the parameter values that the rewriter said must equal the
// caller's identity (an INSERT's tenant column given as $1, for example).
// Text and binary parameter formats ("Bind", protocol 55.7) are both read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/identity.h"
#include "proxy/messages.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// nullopt when every check passes; otherwise the refusal message (42501).
[[nodiscard]] std::optional<std::string> check_bind_params(
    const BindMessage& bind, const std::vector<rewriter::ParamCheck>& checks,
    const policy::Identity& identity);

}  // namespace tenantgate::proxy
