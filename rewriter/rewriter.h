// The SQL rewriter: (SQL text, identity, policy snapshot) in, the text to
// forward or a refusal out. Pure: no I/O, no globals that change behaviour.
//
// Thread-safety: Rewriter is immutable after construction and may be used from
// many threads at once. rewrite() must run on a thread whose stack is at least
// kRequiredStackBytes (libpg_query recurses without a depth check); use
// run_with_large_stack() from threads you do not create yourself.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"

namespace tenantgate::rewriter {

// Stack every thread calling Rewriter::rewrite must have.
inline constexpr std::size_t kRequiredStackBytes = 256u << 20;

// Default nesting limit (Options::max_nesting_units, statement_limits.h).
// Measured: libpg_query's parse needs up to ~1.9 KB of stack per unit (a chain
// of `+1`), the rest of the pipeline less; 20,000 units need < 64 MB, a
// fourfold margin within kRequiredStackBytes.
inline constexpr std::size_t kMaxNestingUnits = 20000;

// Runs fn on a fresh thread with kRequiredStackBytes of stack and waits for it.
void run_with_large_stack(const std::function<void()>& fn);

// A refusal: an ordinary PostgreSQL error the client will see.
struct Refusal {
  std::string sqlstate;  // 42501 policy, 42601 syntax, 0A000 unsupported, 54001 too large/deep
  std::string message;   // names the table or construct
};

enum class IdentityField { kTenant, kUser };

// A bound parameter whose value must equal an identity value. The proxy checks
// it at Bind, before anything executes: parameter $param_number, in text
// format, must canonicalise (policy::canonical_value with the identity's type)
// to the caller's value; in binary format it must decode to that value. A
// mismatch, NULL, or a missing parameter is refused with 42501 naming
// table/column. Only produced for the extended protocol's Parse: a simple
// Query has no parameters to bind (and PREPARE of such a statement is refused).
struct ParamCheck {
  int param_number = 0;  // $n, 1-based
  IdentityField field = IdentityField::kTenant;
  std::string table;  // for the refusal message
  std::string column;
};

struct Rewritten {
  std::string sql;                       // what to forward
  bool changed = false;                  // false: sql is the input byte for byte
  std::vector<ParamCheck> param_checks;  // in statement order; may repeat a parameter
};

class [[nodiscard]] RewriteResult {
 public:
  static RewriteResult ok(Rewritten r);
  static RewriteResult refused(std::string sqlstate, std::string message);

  [[nodiscard]] bool is_ok() const { return !refusal_.has_value(); }
  [[nodiscard]] const Rewritten& value() const { return value_; }
  [[nodiscard]] Rewritten& value() { return value_; }
  [[nodiscard]] const Refusal& refusal() const { return *refusal_; }

 private:
  Rewritten value_;
  std::optional<Refusal> refusal_;
};

struct Options {
  // Longer query strings are refused with 54001 (config: limits.max_statement_bytes).
  std::size_t max_statement_bytes = 1u << 20;
  // Query strings whose nesting estimate (statement_limits.h) exceeds this are
  // refused with 54001 before parsing. The default is what kRequiredStackBytes
  // supports with a wide margin; raising it needs a larger stack.
  std::size_t max_nesting_units = kMaxNestingUnits;
};

class Rewriter {
 public:
  explicit Rewriter(Options options) : options_(options) {}

  // Rewrites a query string (one or more statements; all or nothing) for a
  // non-bypass caller.
  //
  // Steps: statements over max_statement_bytes or nesting deeper than the
  // stack allows are refused with 54001 before parsing; the text is parsed
  // with libpg_query; every statement is walked (scoping reads, checking
  // writes, refusing what is not understood); a changed statement is deparsed
  // and verified by parsing the output again; a query string with no changed
  // statement is returned byte for byte (changed = false). Identity values
  // are embedded as constants (render_literal in identity_literal.h).
  //
  // Needs kRequiredStackBytes of stack. Costs tens of microseconds per
  // statement: use RewriteCache (rewrite_cache.h) on the per-query path.
  [[nodiscard]] RewriteResult rewrite(std::string_view sql, const policy::Identity& identity,
                                      const policy::Policy& policy) const;

  [[nodiscard]] const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace tenantgate::rewriter
