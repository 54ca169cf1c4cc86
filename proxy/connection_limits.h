// Counts client connections against the connection limits: in total, still
// in start-up (before authentication completes), still in start-up per source
// address, per principal and per tenant. A connection over a limit is refused
// with SQLSTATE 53300 and a message naming the limit.
//
// Thread-safety: one ConnectionLimits is shared by every event loop; its
// counters are guarded by a mutex. A ConnectionSlot belongs to one connection
// and is used from that connection's thread only.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tenantgate::proxy {

class ConnectionLimits;

// What one connection holds; given back when the slot is destroyed. Move-only.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& other) noexcept;
  ConnectionSlot& operator=(ConnectionSlot&& other) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot();

  // Start-up is over (authenticated, or failed): frees the start-up slots.
  void end_startup();

 private:
  friend class ConnectionLimits;
  void release();

  ConnectionLimits* limits_ = nullptr;
  bool starting_ = false;
  std::string source_;
  std::optional<std::string> principal_;
  std::optional<std::string> tenant_;
};

class ConnectionLimits {
 public:
  // A limit of 0 means no limit.
  struct Settings {
    uint32_t max_client_connections = 0;
    uint32_t max_startups = 0;
    uint32_t max_startups_per_source = 0;
    uint32_t max_connections_per_tenant = 0;
  };

  explicit ConnectionLimits(Settings settings) : settings_(settings) {}
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // A new connection from `source` (its address): counts it in total and in
  // start-up. Returns the refusal message when over a limit, and then counts
  // nothing.
  [[nodiscard]] std::optional<std::string> admit(std::string_view source, ConnectionSlot& slot);

  // An authenticated connection of `principal` (at most principal_max
  // connections, 0: no limit) for `tenant` (nullopt: not counted per tenant).
  // Returns the refusal message when over a limit, and then counts nothing.
  [[nodiscard]] std::optional<std::string> claim(ConnectionSlot& slot, std::string_view principal,
                                                 uint32_t principal_max,
                                                 std::optional<std::string_view> tenant);

 private:
  friend class ConnectionSlot;
  void end_startup(ConnectionSlot& slot);
  void release(ConnectionSlot& slot);

  const Settings settings_;
  mutable std::mutex mutex_;
  uint64_t connections_ = 0;
  uint64_t startups_ = 0;
  std::unordered_map<std::string, uint32_t> startups_by_source_;
  std::unordered_map<std::string, uint32_t> by_principal_;
  std::unordered_map<std::string, uint32_t> by_tenant_;
};

}  // namespace tenantgate::proxy
