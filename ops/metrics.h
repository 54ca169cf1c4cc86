// tenantgate's Prometheus metrics: one registry per process, a typed method
// for each event the proxy reports, and the text exposition served at
// /metrics (admin_http.h).
//
// Counters that other components already keep (the rewrite cache's, the
// audit sink's, the open sessions) are not copied on every event: they are
// read through Sources when /metrics is scraped.
//
// Thread-safety: every method may be called from any thread. Counters with a
// fixed label set are resolved once at construction, so the per-statement
// methods take no lock; refusals (rare) resolve their labels per call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace tenantgate::ops {

enum class Protocol { kSimple, kExtended };

// What happened to a statement.
enum class Outcome {
  kForwarded,    // sent as the client wrote it
  kRewritten,    // sent rewritten
  kRefused,      // refused (enforce mode)
  kWouldRefuse,  // shadow mode: forwarded as sent, enforcement would refuse it
};

// Why a connection was refused before it became a session.
enum class StartupRefusal {
  kMaxClientConnections,  // limits.max_client_connections
  kMaxStartups,           // limits.max_startups
  kMaxStartupsPerSource,  // limits.max_startups_per_source
  kIdentity,              // 28000: unknown principal, tenant missing or not allowed
  kAuthentication,        // 28P01: wrong password
  kPrincipalLimit,        // a principal's max_connections
  kTenantLimit,           // limits.max_connections_per_tenant
  kBackend,               // the backend refused or could not be reached
  kProtocol,              // malformed start-up, timeout
  kAdmin,                 // the admin console refused a non-admin principal
};

[[nodiscard]] std::string_view outcome_name(Outcome o);
[[nodiscard]] std::string_view startup_refusal_name(StartupRefusal r);

// Values read when /metrics is scraped.
struct ClientCounts {
  uint64_t startup = 0;   // connections not yet relaying
  uint64_t active = 0;    // relaying sessions
  uint64_t admin = 0;     // admin console sessions
  uint64_t backends = 0;  // open backend connections
};
struct CacheCounts {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint64_t bytes = 0;
  uint64_t entries = 0;
};
struct AuditCounts {
  uint64_t written = 0;
  uint64_t dropped = 0;
  uint64_t reopened = 0;
};
struct Sources {
  std::function<ClientCounts()> clients;
  std::function<CacheCounts()> cache;
  std::function<AuditCounts()> audit;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Set once, before the admin listener starts.
  void set_sources(Sources sources);

  void statement(Protocol protocol, Outcome outcome);
  // `table` must come from the policy (or be empty): client-chosen names
  // would make the label set unbounded.
  void refusal(std::string_view sqlstate, std::string_view table);
  // A scoped table a statement reads without its own tenant/owner condition.
  void missing_predicate(std::string_view table);
  void rewrite_seconds(double seconds);
  void startup_refused(StartupRefusal reason);
  void policy_reload(bool ok);
  // The policy in force: a short hash of its text.
  void set_policy_version(const std::string& version);

  // The whole registry in the Prometheus text format (version 0.0.4).
  [[nodiscard]] std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  Sources sources_;
  prometheus::Counter* statements_[2][4] = {};
  prometheus::Family<prometheus::Counter>* refusals_ = nullptr;
  prometheus::Family<prometheus::Counter>* missing_ = nullptr;
  prometheus::Family<prometheus::Counter>* startup_refusals_ = nullptr;
  prometheus::Histogram* rewrite_seconds_ = nullptr;
  prometheus::Counter* reloads_ok_ = nullptr;
  prometheus::Counter* reloads_failed_ = nullptr;
  prometheus::Family<prometheus::Gauge>* policy_info_ = nullptr;
  std::mutex version_mutex_;
  std::string policy_version_;
};

}  // namespace tenantgate::ops
