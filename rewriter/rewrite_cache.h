// A thread-safe, byte-bounded LRU cache of rewrites.
//
// Entries are keyed by (policy snapshot, whether the caller has a user, the
// app catalog snapshot's id (policy/app_catalog.h), the connection's
// database, statement text) and hold identity-free templates
// (rewrite_template.h): a hit substitutes the caller's tenant/user literals
// into the cached text, so one session's identity can never appear in another
// session's statement. Refusals are cached too.
//
// Shapes: ORM traffic in the simple protocol inlines constants that change on
// every call (`WHERE users.id = 4711`), so the exact text rarely repeats. The
// cache therefore first lifts the constants out of the text (lift_constants,
// literal_scanner.h) and looks up the resulting shape (`WHERE users.id =
// $1`). A shape is rewritten once with the normal pipeline, where $k is an
// opaque parameter, and a hit substitutes the client's constants back,
// verbatim, into the positions of the $k tokens of the rewritten text.
//
// Why a shape hit gives the rewrite of the exact text (up to formatting):
//   1. In PostgreSQL's grammar a parameter and a constant are both atoms of
//      c_expr, so the exact text parses into the shape's tree with each
//      ParamRef replaced by the constant (and `- $k` folded into a negative
//      constant, as the grammar folds `- 5`). Where the grammar accepts a
//      constant but not a parameter (typed literals, type modifiers such as
//      timestamp(3), EXTRACT('year' ...)), the shape does not parse, which is
//      a refusal and sends the statement down the exact path.
//   2. The walker treats ParamRef and A_Const alike as opaque leaves, except
//      where a value decides the outcome: a policy column given a constant or
//      a parameter (ConstCheck / ParamCheck) or an expression (refused). A
//      shape whose rewrite has any ParamCheck, ConstCheck, COPY or refusal is
//      remembered as unusable, and such statements always take the exact
//      path. Otherwise the walker made the same decisions it makes on the
//      exact text, so its output is the shape's output with constants for
//      parameters.
//   3. The shape's output was deparsed and verified (re-parsed into the same
//      tree); $k tokens are found with the scanner, so only real parameters
//      are replaced, and replacing a parameter token by a constant token in
//      the deparsed text parses into the tree of step 2 (by 1).
// Statements over max_statement_bytes never use a shape (the exact path
// refuses them), and the nesting estimate ignores constants, so a shape and
// its statements share it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
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

  // Counters since construction, for metrics. Relaxed: each is exact, the
  // set is not a snapshot.
  struct Stats {
    std::uint64_t exact_hits = 0;       // an exact text's template was reused
    std::uint64_t exact_misses = 0;     // an exact text was rewritten in full
    std::uint64_t shape_hits = 0;       // a usable shape's template was reused
    std::uint64_t shape_misses = 0;     // a shape was rewritten
    std::uint64_t shape_fallbacks = 0;  // a statement with a shape took the exact path
    std::uint64_t evictions = 0;        // entries dropped to make room
  };
  [[nodiscard]] Stats stats() const;

  // Empties both the exact and the shape entries.
  void clear();
  [[nodiscard]] std::size_t bytes() const;
  [[nodiscard]] std::size_t entries() const;
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry;
  struct Shard;
  Shard& shard_for(std::size_t hash);
  // The exact-text path of rewrite() and lookup(); `rewriter` null: lookup only.
  std::optional<RewriteResult> exact(const Rewriter* rewriter, std::string_view sql,
                                     const policy::Identity& identity,
                                     const std::shared_ptr<const policy::Policy>& policy);
  void insert(Shard& shard, std::string key, const std::shared_ptr<const policy::Policy>& policy,
              RewriteTemplate tmpl, bool usable, std::size_t max_statement_bytes);

  std::size_t max_bytes_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<std::uint64_t> exact_hits_{0};
  std::atomic<std::uint64_t> exact_misses_{0};
  std::atomic<std::uint64_t> shape_hits_{0};
  std::atomic<std::uint64_t> shape_misses_{0};
  std::atomic<std::uint64_t> shape_fallbacks_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace tenantgate::rewriter
