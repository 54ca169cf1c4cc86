// A thread-safe, byte-bounded LRU cache of rewrites.
//
// Entries are keyed by (policy snapshot, whether the caller has a user, the
// connection's database, statement text) and hold identity-free templates
// (rewrite_template.h): a hit substitutes the caller's tenant/user literals
// into the cached text, so one session's identity can never appear in another
// session's statement. Refusals are cached too.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

struct RewriteTemplate;

class RewriteCache {
 public:
  // `max_bytes` bounds the memory held by entries (keys, templates and
  // bookkeeping), split evenly over the shards.
  explicit RewriteCache(std::size_t max_bytes, std::size_t shards = 16);
  ~RewriteCache();
  RewriteCache(const RewriteCache&) = delete;
  RewriteCache& operator=(const RewriteCache&) = delete;

  // The cached rewrite for this caller, or nullopt on a miss. Never parses,
  // so it may run on any thread (no large stack needed).
  [[nodiscard]] std::optional<RewriteResult> lookup(
      std::string_view sql, const policy::Identity& identity,
      const std::shared_ptr<const policy::Policy>& policy);

  // lookup(), and on a miss the full rewrite with `rewriter`'s options, which
  // is then cached. A miss parses: call on a thread with kRequiredStackBytes
  // of stack (run_with_large_stack), or use lookup() first and go to such a
  // thread only on a miss. The result equals rewriter.rewrite(...).
  [[nodiscard]] RewriteResult rewrite(const Rewriter& rewriter, std::string_view sql,
                                      const policy::Identity& identity,
                                      const std::shared_ptr<const policy::Policy>& policy);

  void clear();
  [[nodiscard]] std::size_t bytes() const;
  [[nodiscard]] std::size_t entries() const;
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry;
  struct Shard;
  Shard& shard_for(std::size_t hash);

  std::size_t max_bytes_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace tenantgate::rewriter
