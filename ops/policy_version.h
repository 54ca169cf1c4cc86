// The policy's version as operators see it in metrics, the audit trail and
// SHOW POLICY: the first 12 hex digits of the SHA-256 of the policy file's
// text, so that two hosts with the same file report the same version.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tenantgate::ops {

[[nodiscard]] std::string policy_version(std::string_view text);

// The version of the file at `path`; nullopt when it cannot be read.
[[nodiscard]] std::optional<std::string> policy_file_version(const std::string& path);

}  // namespace tenantgate::ops
