#include "rewriter/rewrite_cache.h"

#include <functional>

#include "rewriter/rewrite_template.h"

namespace tenantgate::rewriter {
namespace {

// Bookkeeping per entry beyond the strings and the template: list node, hash
// node, weak pointer control.
constexpr std::size_t kEntryOverhead = 128;

std::string make_key(std::string_view sql, const policy::Identity& identity) {
  // has_user and database change the rewrite; the identity values do not.
  std::string key;
  key.reserve(sql.size() + identity.database.size() + 2);
  key += identity.user ? 'U' : 'N';
  key += identity.database;
  key += '\0';  // database names cannot contain NUL
  key += sql;
  return key;
}

}  // namespace

struct RewriteCache::Entry {
  std::string key;
  std::weak_ptr<const policy::Policy> policy;
  RewriteTemplate tmpl;
  std::size_t bytes = 0;
};

struct RewriteCache::Shard {
  mutable std::mutex mutex;
  std::list<Entry> lru;  // most recently used first
  std::unordered_multimap<std::string_view, std::list<Entry>::iterator> index;
  std::size_t bytes = 0;
  std::size_t max_bytes = 0;

  // Requires mutex. Finds the entry for (key, policy) and moves it to the front.
  Entry* find(const std::string& key, const std::shared_ptr<const policy::Policy>& p) {
    auto [begin, end] = index.equal_range(key);
    for (auto it = begin; it != end; ++it) {
      Entry& e = *it->second;
      // Owner equivalence: the same snapshot, even if another snapshot now
      // lives at the same address.
      if (!e.policy.owner_before(p) && !p.owner_before(e.policy)) {
        lru.splice(lru.begin(), lru, it->second);
        return &e;
      }
    }
    return nullptr;
  }

  void erase(std::list<Entry>::iterator victim) {
    auto [begin, end] = index.equal_range(victim->key);
    for (auto it = begin; it != end; ++it) {
      if (it->second == victim) {
        index.erase(it);
        break;
      }
    }
    bytes -= victim->bytes;
    lru.erase(victim);
  }
};

RewriteCache::RewriteCache(std::size_t max_bytes, std::size_t shards) : max_bytes_(max_bytes) {
  if (shards == 0) shards = 1;
  for (std::size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->max_bytes = max_bytes / shards;
  }
}

RewriteCache::~RewriteCache() = default;

RewriteCache::Shard& RewriteCache::shard_for(std::size_t hash) {
  return *shards_[hash % shards_.size()];
}

std::optional<RewriteResult> RewriteCache::lookup(
    std::string_view sql, const policy::Identity& identity,
    const std::shared_ptr<const policy::Policy>& policy) {
  const std::string key = make_key(sql, identity);
  Shard& shard = shard_for(std::hash<std::string>{}(key));
  std::lock_guard lock(shard.mutex);
  Entry* e = shard.find(key, policy);
  if (e == nullptr) return std::nullopt;
  return instantiate(e->tmpl, sql, identity);
}

RewriteResult RewriteCache::rewrite(const Rewriter& rewriter, std::string_view sql,
                                    const policy::Identity& identity,
                                    const std::shared_ptr<const policy::Policy>& policy) {
  const std::string key = make_key(sql, identity);
  Shard& shard = shard_for(std::hash<std::string>{}(key));
  {
    std::lock_guard lock(shard.mutex);
    if (Entry* e = shard.find(key, policy)) return instantiate(e->tmpl, sql, identity);
  }
  // Built outside the lock: two threads missing on the same statement both
  // build it, and the second insert is dropped.
  RewriteTemplate tmpl = build_template(sql, identity_shape(identity), *policy, rewriter.options());
  RewriteResult result = instantiate(tmpl, sql, identity);
  const std::size_t bytes = kEntryOverhead + 2 * key.size() + tmpl.memory_bytes();
  std::lock_guard lock(shard.mutex);
  if (bytes > shard.max_bytes || shard.find(key, policy) != nullptr) return result;
  while (shard.bytes + bytes > shard.max_bytes && !shard.lru.empty()) {
    shard.erase(std::prev(shard.lru.end()));
  }
  shard.lru.push_front(Entry{key, policy, std::move(tmpl), bytes});
  shard.index.emplace(shard.lru.front().key, shard.lru.begin());
  shard.bytes += bytes;
  return result;
}

void RewriteCache::clear() {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    shard->index.clear();
    shard->lru.clear();
    shard->bytes = 0;
  }
}

std::size_t RewriteCache::bytes() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    n += shard->bytes;
  }
  return n;
}

std::size_t RewriteCache::entries() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    n += shard->lru.size();
  }
  return n;
}

}  // namespace tenantgate::rewriter
