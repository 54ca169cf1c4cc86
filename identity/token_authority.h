// The configured token verifier: keys and checks from [identity.token] plus
// the cache of verified tokens. One per proxy, shared by every session.
//
// Built once at start-up (reads the secret's environment variable and the key
// files; throws TokenSetupError naming the file or variable); afterwards
// verify() is thread-safe and does no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string_view>

#include "config/config.h"
#include "identity/token_cache.h"
#include "identity/token_keys.h"
#include "identity/token_verifier.h"

namespace tenantgate::identity {

// Verified tokens remembered at most (token_cache.h).
inline constexpr size_t kTokenCacheEntries = 10000;

class TokenSetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TokenAuthority {
 public:
  TokenAuthority(KeySet keys, TokenSettings settings, size_t cache_entries = kTokenCacheEntries)
      : keys_(std::move(keys)), settings_(std::move(settings)), cache_(cache_entries) {}

  // Verifies `token` at `now_s`, answering from the cache when the same token
  // was verified before and has not expired.
  [[nodiscard]] TokenResult verify(std::string_view token, int64_t now_s) const;

  [[nodiscard]] const TokenSettings& settings() const { return settings_; }

 private:
  const KeySet keys_;
  const TokenSettings settings_;
  mutable TokenCache cache_;
};

// The authority for `config`'s [identity.token], or nullptr when the table is
// absent. Throws TokenSetupError.
[[nodiscard]] std::unique_ptr<const TokenAuthority> load_token_authority(
    const config::Config& config);

// The settings of a [identity.token] table with the identity types of its
// [identity]; reads nothing.
[[nodiscard]] TokenSettings token_settings(const config::Identity& identity);

// The HS secret named by secret_env. Throws TokenSetupError when unset.
[[nodiscard]] std::string read_token_secret(const config::TokenConfig& token);

}  // namespace tenantgate::identity
