// What the proxy reports about each statement, and what becomes of it:
// metrics, the missing-predicate analysis, and the audit trail. This is the
// one interface a session calls (once per statement); everything behind it is
// pure or queued, so it never waits for I/O.
//
// Thread-safety: statement() from any event loop at once; set_policy_version()
// from the reload path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.h"
#include "ops/audit_sink.h"
#include "ops/metrics.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/predicate_coverage.h"
#include "rewriter/rewriter.h"

namespace tenantgate::ops {

struct StatementReport {
  uint64_t session = 0;
  std::string_view principal;
  const policy::Identity* identity = nullptr;
  std::string_view sql;  // as the client sent it
  Protocol protocol = Protocol::kSimple;
  config::Enforcement enforcement = config::Enforcement::kEnforce;
  // What enforcement decided (in shadow mode: would have decided).
  const rewriter::RewriteResult* result = nullptr;
  const std::shared_ptr<const policy::Policy>* policy = nullptr;
  std::chrono::nanoseconds analysis{0};
  // Text values bound to $1..$n (extended protocol, at Bind); nullopt for
  // NULL or binary values.
  std::span<const std::optional<std::string>> params;
};

class Operations {
 public:
  // `sink` null: audit.mode = off. Both outlive this object.
  Operations(const config::Config& config, Metrics& metrics, AuditSink* sink);

  void set_policy_version(std::string version);
  [[nodiscard]] std::string policy_version() const;

  // Counts the statement, finds the scoped tables it does not restrict to the
  // caller, and queues its audit record when audit.mode asks for it. Must run
  // on a thread with kRequiredStackBytes of stack (the event loops have it):
  // the analysis parses, on statements the rewriter's limits already let
  // through (54001 refusals are not analysed).
  void statement(const StatementReport& report);

  // A Bind of an extended-protocol statement: its parameters are known now,
  // so a comparison of a scope column with $n can be judged. Records a
  // missing-predicate finding (metrics, and the audit trail unless off);
  // report.result is not read.
  void bound(const StatementReport& report);

  [[nodiscard]] Metrics& metrics() { return metrics_; }

  // Whether statements are analysed for missing predicates at all (audit on);
  // shadow sessions analyse theirs regardless.
  [[nodiscard]] bool judges_statements() const { return mode_ != config::AuditMode::kOff; }

 private:
  // The coverage shape of `sql`, from the cache or analysed now; constants
  // lifted out of the text come back in `lifted` as parameter values.
  // Queues one audit record; decision and would are Decision values (would
  // -1: not shadow mode).
  void record(const StatementReport& r, const rewriter::CoverageShape* shape,
              const std::vector<rewriter::MissingPredicate>& missing, bool refused, int decision,
              int would);
  std::shared_ptr<const rewriter::CoverageShape> coverage(
      std::string_view sql, const std::shared_ptr<const policy::Policy>& policy,
      std::string_view database, std::vector<std::optional<std::string>>& lifted);

  const config::AuditMode mode_;
  const bool log_values_;
  Metrics& metrics_;
  AuditSink* sink_;
  mutable std::mutex mutex_;
  std::string policy_version_;
  // Coverage shapes by lifted statement text, for one policy snapshot.
  const policy::Policy* cached_policy_ = nullptr;
  std::unordered_map<std::string, std::shared_ptr<const rewriter::CoverageShape>> shapes_;
};

}  // namespace tenantgate::ops
