// Maps the BackendKeyData tenantgate hands to clients to the backend's own
// keys, so that a CancelRequest can reach the right backend and only the
// client that holds a session's secret can cancel that session's query.
//
// Thread-safe: sessions on every event-loop thread register and look up.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace tenantgate::proxy {

struct CancelTarget {
  int32_t backend_pid = 0;
  int32_t backend_key = 0;
};

class CancelRegistry {
 public:
  // Issues a fresh (pid, key) pair for a session; the pid is unique among
  // live sessions, the key is random.
  struct Issued {
    int32_t pid = 0;
    int32_t key = 0;
  };
  [[nodiscard]] Issued issue(const CancelTarget& target);
  void remove(int32_t pid);
  // The target for (pid, key), or nullopt when the pair is unknown or the
  // key does not match (compared in constant time).
  [[nodiscard]] std::optional<CancelTarget> find(int32_t pid, int32_t key) const;

 private:
  struct Entry {
    int32_t key;
    CancelTarget target;
  };
  mutable std::mutex mutex_;
  std::unordered_map<int32_t, Entry> entries_;
  int32_t next_pid_ = 1;
};

}  // namespace tenantgate::proxy
