// Verified tokens remembered by digest until they expire, so that an app that
// sends the same token with every request pays for one signature check.
//
// Keyed by the SHA-256 of the token text; only successful verifications are
// stored (a refusal is recomputed each time, so a key change is never
// masked). Bounded: when full, expired entries go first, then the oldest.
// Thread-safe (one mutex); shared by all sessions of a verifier.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "identity/token_verifier.h"

namespace tenantgate::identity {

class TokenCache {
 public:
  explicit TokenCache(size_t max_entries) : max_entries_(max_entries) {}

  // The token verified earlier under `digest`, or nullptr when absent or no
  // longer valid at `now_s` (its exp plus `leeway_s` has passed).
  [[nodiscard]] std::shared_ptr<const VerifiedToken> find(std::string_view digest, int64_t now_s,
                                                          int64_t leeway_s) const;
  void insert(std::string digest, std::shared_ptr<const VerifiedToken> token, int64_t now_s,
              int64_t leeway_s);

  [[nodiscard]] size_t size() const;

 private:
  const size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const VerifiedToken>> entries_;
  std::deque<std::string> order_;  // insertion order, for eviction
};

// SHA-256 of `token`, 32 raw bytes.
[[nodiscard]] std::string token_digest(std::string_view token);

}  // namespace tenantgate::identity
