#include "ops/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <vector>

namespace tenantgate::ops {

namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_value(MetricFamily& f, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kForwarded:
      return "forwarded";
    case Outcome::kRewritten:
      return "rewritten";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kWouldRefuse:
      return "would_refuse";
  }
  return "refused";
}

std::string_view startup_refusal_name(StartupRefusal r) {
  switch (r) {
    case StartupRefusal::kMaxClientConnections:
      return "max_client_connections";
    case StartupRefusal::kMaxStartups:
      return "max_startups";
    case StartupRefusal::kMaxStartupsPerSource:
      return "max_startups_per_source";
    case StartupRefusal::kIdentity:
      return "identity";
    case StartupRefusal::kAuthentication:
      return "authentication";
    case StartupRefusal::kPrincipalLimit:
      return "principal_limit";
    case StartupRefusal::kTenantLimit:
      return "tenant_limit";
    case StartupRefusal::kBackend:
      return "backend";
    case StartupRefusal::kProtocol:
      return "protocol";
    case StartupRefusal::kAdmin:
      return "admin";
  }
  return "protocol";
}

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& statements = prometheus::BuildCounter()
                         .Name("tenantgate_statements_total")
                         .Help("Statements by protocol and outcome")
                         .Register(*registry_);
  for (int p = 0; p < 2; ++p) {
    for (int o = 0; o < 4; ++o) {
      statements_[p][o] =
          &statements.Add({{"protocol", p == 0 ? "simple" : "extended"},
                           {"outcome", std::string(outcome_name(static_cast<Outcome>(o)))}});
    }
  }
  refusals_ = &prometheus::BuildCounter()
                   .Name("tenantgate_refusals_total")
                   .Help(
                       "Refused statements (or would-be refusals in shadow mode) by SQLSTATE "
                       "and the first policy table they touch")
                   .Register(*registry_);
  missing_ = &prometheus::BuildCounter()
                  .Name("tenantgate_missing_predicate_total")
                  .Help(
                      "Statements that read a scoped table without restricting it to the "
                      "caller themselves, by table")
                  .Register(*registry_);
  startup_refusals_ = &prometheus::BuildCounter()
                           .Name("tenantgate_startups_refused_total")
                           .Help("Connections refused before they became sessions, by reason")
                           .Register(*registry_);
  for (int r = 0; r <= static_cast<int>(StartupRefusal::kAdmin); ++r) {
    startup_refusals_->Add(
        {{"reason", std::string(startup_refusal_name(static_cast<StartupRefusal>(r)))}});
  }
  rewrite_seconds_ =
      &prometheus::BuildHistogram()
           .Name("tenantgate_rewrite_duration_seconds")
           .Help(
               "Time the event loop spent deciding a statement: a rewrite cache hit, or taking "
               "the analysis pool's result (the pool's own analysis time is "
               "not included)")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.00001, 0.000025, 0.00005, 0.0001,
                                                            0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                            0.01, 0.1, 1.0});
  auto& reloads = prometheus::BuildCounter()
                      .Name("tenantgate_policy_reloads_total")
                      .Help("Policy reloads by result")
                      .Register(*registry_);
  reloads_ok_ = &reloads.Add({{"result", "ok"}});
  reloads_failed_ = &reloads.Add({{"result", "failed"}});
  policy_info_ = &prometheus::BuildGauge()
                      .Name("tenantgate_policy_info")
                      .Help("The policy in force; version is a hash of its text")
                      .Register(*registry_);
}

Metrics::~Metrics() = default;

void Metrics::set_sources(Sources sources) { sources_ = std::move(sources); }

void Metrics::statement(Protocol protocol, Outcome outcome) {
  statements_[protocol == Protocol::kSimple ? 0 : 1][static_cast<int>(outcome)]->Increment();
}

void Metrics::refusal(std::string_view sqlstate, std::string_view table) {
  refusals_->Add({{"sqlstate", std::string(sqlstate)}, {"table", std::string(table)}}).Increment();
}

void Metrics::missing_predicate(std::string_view table) {
  missing_->Add({{"table", std::string(table)}}).Increment();
}

void Metrics::rewrite_seconds(double seconds) { rewrite_seconds_->Observe(seconds); }

void Metrics::startup_refused(StartupRefusal reason) {
  startup_refusals_->Add({{"reason", std::string(startup_refusal_name(reason))}}).Increment();
}

void Metrics::policy_reload(bool ok) { (ok ? reloads_ok_ : reloads_failed_)->Increment(); }

void Metrics::set_policy_version(const std::string& version) {
  std::lock_guard lock(version_mutex_);
  if (!policy_version_.empty())
    policy_info_->Remove(&policy_info_->Add({{"version", policy_version_}}));
  policy_version_ = version;
  policy_info_->Add({{"version", version}}).Set(1);
}

std::string Metrics::render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  if (sources_.clients) {
    const ClientCounts c = sources_.clients();
    auto f = family("tenantgate_client_connections", "Open client connections by state",
                    MetricType::Gauge);
    add_value(f, static_cast<double>(c.startup), {{"state", "startup"}});
    add_value(f, static_cast<double>(c.active), {{"state", "active"}});
    add_value(f, static_cast<double>(c.admin), {{"state", "admin"}});
    families.push_back(std::move(f));
    auto b =
        family("tenantgate_backend_connections", "Open backend connections", MetricType::Gauge);
    add_value(b, static_cast<double>(c.backends));
    families.push_back(std::move(b));
  }
  if (sources_.cache) {
    const CacheCounts c = sources_.cache();
    auto hits =
        family("tenantgate_rewrite_cache_hits_total", "Rewrite cache hits", MetricType::Counter);
    add_value(hits, static_cast<double>(c.hits));
    auto misses = family("tenantgate_rewrite_cache_misses_total",
                         "Rewrite cache misses (full rewrites)", MetricType::Counter);
    add_value(misses, static_cast<double>(c.misses));
    auto evictions = family("tenantgate_rewrite_cache_evictions_total",
                            "Rewrite cache entries dropped to make room", MetricType::Counter);
    add_value(evictions, static_cast<double>(c.evictions));
    auto bytes = family("tenantgate_rewrite_cache_bytes", "Memory held by rewrite cache entries",
                        MetricType::Gauge);
    add_value(bytes, static_cast<double>(c.bytes));
    auto entries =
        family("tenantgate_rewrite_cache_entries", "Rewrite cache entries", MetricType::Gauge);
    add_value(entries, static_cast<double>(c.entries));
    for (auto* f : {&hits, &misses, &evictions, &bytes, &entries})
      families.push_back(std::move(*f));
  }
  if (sources_.audit) {
    const AuditCounts a = sources_.audit();
    auto written =
        family("tenantgate_audit_events_total", "Audit events written", MetricType::Counter);
    add_value(written, static_cast<double>(a.written));
    auto dropped =
        family("tenantgate_audit_events_dropped_total",
               "Audit events dropped because the sink could not keep up", MetricType::Counter);
    add_value(dropped, static_cast<double>(a.dropped));
    auto reopened = family("tenantgate_audit_reopens_total", "Audit file reopened (SIGUSR1)",
                           MetricType::Counter);
    add_value(reopened, static_cast<double>(a.reopened));
    for (auto* f : {&written, &dropped, &reopened}) families.push_back(std::move(*f));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace tenantgate::ops
