#include "rewriter/rewrite_cache.h"

#include <functional>

#include "policy/app_catalog.h"
#include "rewriter/literal_scanner.h"
#include "rewriter/rewrite_template.h"

namespace tenantgate::rewriter {
namespace {

// Bookkeeping per entry beyond the strings and the template: list node, hash
// node, weak pointer control.
constexpr std::size_t kEntryOverhead = 128;

enum class KeyKind : char { kExact = 'E', kShape = 'S' };

std::string make_key(KeyKind kind, std::string_view sql, const policy::Identity& identity) {
  // has_user, database and the app catalog change the rewrite; the identity
  // values do not. The kind keeps a shape apart from an exact text that
  // happens to spell it (a Parse message with real $n parameters).
  std::string key;
  key.reserve(sql.size() + identity.database.size() + 24);
  key += static_cast<char>(kind);
  key += identity.user ? 'U' : 'N';
  key += std::to_string(identity.catalog ? identity.catalog->id : 0);
  key += ':';
  key += identity.database;
  key += '\0';  // database names cannot contain NUL
  key += sql;
  return key;
}

// A shape template is usable when its rewrite did not depend on the values
// of the lifted constants (see rewrite_cache.h).
bool usable_shape(const RewriteTemplate& t) {
  return !t.refusal && t.param_checks.empty() && t.const_checks.empty() && !t.copy_in;
}

}  // namespace

struct RewriteCache::Entry {
  std::string key;
  std::weak_ptr<const policy::Policy> policy;
  RewriteTemplate tmpl;
  // Shape entries: false remembers that statements of this shape take the
  // exact path (tmpl is then empty).
  bool usable = true;
  // Shape entries: the limit the shape was built under; a longer statement
  // takes the exact path, which refuses it.
  std::size_t max_statement_bytes = 0;
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

void RewriteCache::insert(Shard& shard, std::string key,
                          const std::shared_ptr<const policy::Policy>& policy, RewriteTemplate tmpl,
                          bool usable, std::size_t max_statement_bytes) {
  const std::size_t bytes = kEntryOverhead + 2 * key.size() + tmpl.memory_bytes();
  std::lock_guard lock(shard.mutex);
  // Built outside the lock: two threads missing on the same statement both
  // build it, and the second insert is dropped.
  if (bytes > shard.max_bytes || shard.find(key, policy) != nullptr) return;
  while (shard.bytes + bytes > shard.max_bytes && !shard.lru.empty()) {
    shard.erase(std::prev(shard.lru.end()));
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
  shard.lru.push_front(
      Entry{std::move(key), policy, std::move(tmpl), usable, max_statement_bytes, bytes});
  shard.index.emplace(shard.lru.front().key, shard.lru.begin());
  shard.bytes += bytes;
}

std::optional<RewriteResult> RewriteCache::exact(
    const Rewriter* rewriter, std::string_view sql, const policy::Identity& identity,
    const std::shared_ptr<const policy::Policy>& policy) {
  std::string key = make_key(KeyKind::kExact, sql, identity);
  Shard& shard = shard_for(std::hash<std::string>{}(key));
  {
    std::lock_guard lock(shard.mutex);
    if (Entry* e = shard.find(key, policy)) {
      exact_hits_.fetch_add(1, std::memory_order_relaxed);
      return instantiate(e->tmpl, sql, identity);
    }
  }
  if (rewriter == nullptr) return std::nullopt;
  exact_misses_.fetch_add(1, std::memory_order_relaxed);
  RewriteTemplate tmpl =
      build_template(sql, identity_shape(identity), *policy, rewriter->options());
  RewriteResult result = instantiate(tmpl, sql, identity);
  insert(shard, std::move(key), policy, std::move(tmpl), true, 0);
  return result;
}

std::optional<RewriteResult> RewriteCache::lookup(
    std::string_view sql, const policy::Identity& identity,
    const std::shared_ptr<const policy::Policy>& policy) {
  if (const std::optional<StatementShape> shape = lift_constants(sql)) {
    const std::string key = make_key(KeyKind::kShape, shape->text, identity);
    Shard& shard = shard_for(std::hash<std::string>{}(key));
    std::lock_guard lock(shard.mutex);
    Entry* e = shard.find(key, policy);
    if (e != nullptr && e->usable && sql.size() <= e->max_statement_bytes) {
      shape_hits_.fetch_add(1, std::memory_order_relaxed);
      return instantiate(e->tmpl, sql, identity, shape->literals);
    }
  }
  return exact(nullptr, sql, identity, policy);
}

RewriteResult RewriteCache::rewrite(const Rewriter& rewriter, std::string_view sql,
                                    const policy::Identity& identity,
                                    const std::shared_ptr<const policy::Policy>& policy) {
  const Options& options = rewriter.options();
  std::optional<StatementShape> shape;
  if (sql.size() <= options.max_statement_bytes) shape = lift_constants(sql);
  if (shape) {
    std::string key = make_key(KeyKind::kShape, shape->text, identity);
    Shard& shard = shard_for(std::hash<std::string>{}(key));
    bool known = false;
    {
      std::lock_guard lock(shard.mutex);
      if (Entry* e = shard.find(key, policy)) {
        known = true;
        if (e->usable && sql.size() <= e->max_statement_bytes) {
          shape_hits_.fetch_add(1, std::memory_order_relaxed);
          return instantiate(e->tmpl, sql, identity, shape->literals);
        }
      }
    }
    if (!known) {
      shape_misses_.fetch_add(1, std::memory_order_relaxed);
      RewriteTemplate tmpl = build_template(shape->text, identity_shape(identity), *policy, options,
                                            shape->literals.size());
      const bool usable = usable_shape(tmpl);
      RewriteResult result = usable ? instantiate(tmpl, sql, identity, shape->literals)
                                    : RewriteResult::refused("", "");
      insert(shard, std::move(key), policy, usable ? std::move(tmpl) : RewriteTemplate{}, usable,
             options.max_statement_bytes);
      if (usable) return result;
    }
    shape_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  }
  return *exact(&rewriter, sql, identity, policy);
}

RewriteCache::Stats RewriteCache::stats() const {
  Stats s;
  s.exact_hits = exact_hits_.load(std::memory_order_relaxed);
  s.exact_misses = exact_misses_.load(std::memory_order_relaxed);
  s.shape_hits = shape_hits_.load(std::memory_order_relaxed);
  s.shape_misses = shape_misses_.load(std::memory_order_relaxed);
  s.shape_fallbacks = shape_fallbacks_.load(std::memory_order_relaxed);
  s.evictions = evictions_.load(std::memory_order_relaxed);
  return s;
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
