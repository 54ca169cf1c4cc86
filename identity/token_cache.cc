// The verified-token cache: a map from digest to verified token plus an
// insertion-order queue for eviction.

#include "identity/token_cache.h"

#include <openssl/sha.h>

#include <algorithm>

namespace tenantgate::identity {

std::string token_digest(std::string_view token) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

std::shared_ptr<const VerifiedToken> TokenCache::find(std::string_view digest, int64_t now_s,
                                                      int64_t leeway_s) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(digest));
  if (it == entries_.end() || now_s >= it->second->expires_at + leeway_s) return nullptr;
  return it->second;
}

void TokenCache::insert(std::string digest, std::shared_ptr<const VerifiedToken> token,
                        int64_t now_s, int64_t leeway_s) {
  if (max_entries_ == 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= max_entries_) {
    // Expired entries first; the queue is rebuilt without them.
    std::deque<std::string> kept;
    for (std::string& d : order_) {
      auto it = entries_.find(d);
      if (it == entries_.end()) continue;
      if (now_s >= it->second->expires_at + leeway_s) {
        entries_.erase(it);
      } else {
        kept.push_back(std::move(d));
      }
    }
    order_ = std::move(kept);
    // Then the oldest, an eighth at a time, so that a full cache does not
    // scan on every insert.
    const size_t target = max_entries_ - std::max<size_t>(1, max_entries_ / 8);
    while (entries_.size() > target && !order_.empty()) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
  }
  auto [it, inserted] = entries_.insert_or_assign(std::move(digest), std::move(token));
  if (inserted) order_.push_back(it->first);
}

size_t TokenCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace tenantgate::identity
