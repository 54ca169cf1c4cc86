// Whether the backend accepts TCP connections: /readyz's check. Blocking,
// with a timeout; runs on the admin listener's threads, never on an event
// loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace tenantgate::ops {

// nullopt when a TCP connection to host:port opened within `timeout`,
// otherwise what failed.
[[nodiscard]] std::optional<std::string> probe_backend(const std::string& host, uint16_t port,
                                                       std::chrono::milliseconds timeout);

}  // namespace tenantgate::ops
