// The metrics registry: every event shows up in the exposition under its
// Prometheus name and labels, and pulled sources are read at render time.
#include "ops/metrics.h"

#include <gtest/gtest.h>

namespace tenantgate::ops {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

TEST(MetricsTest, EventsAppearWithTheirLabels) {
  Metrics m;
  m.statement(Protocol::kSimple, Outcome::kRewritten);
  m.statement(Protocol::kSimple, Outcome::kRewritten);
  m.statement(Protocol::kExtended, Outcome::kWouldRefuse);
  m.refusal("42501", "public.users");
  m.missing_predicate("public.records");
  m.rewrite_seconds(0.00003);
  m.startup_refused(StartupRefusal::kIdentity);
  m.policy_reload(true);
  m.policy_reload(false);
  m.policy_reload(false);
  m.set_policy_version("abc");
  m.set_policy_version("def");
  const std::string text = m.render();
  EXPECT_TRUE(
      has_line(text, "tenantgate_statements_total{outcome=\"rewritten\",protocol=\"simple\"} 2"))
      << text;
  EXPECT_TRUE(has_line(
      text, "tenantgate_statements_total{outcome=\"would_refuse\",protocol=\"extended\"} 1"));
  EXPECT_TRUE(
      has_line(text, "tenantgate_statements_total{outcome=\"refused\",protocol=\"simple\"} 0"));
  EXPECT_TRUE(
      has_line(text, "tenantgate_refusals_total{sqlstate=\"42501\",table=\"public.users\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_missing_predicate_total{table=\"public.records\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_duration_seconds_count 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_duration_seconds_bucket{le=\"5e-05\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_duration_seconds_bucket{le=\"2.5e-05\"} 0"));
  EXPECT_TRUE(has_line(text, "tenantgate_startups_refused_total{reason=\"identity\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_startups_refused_total{reason=\"max_startups\"} 0"));
  EXPECT_TRUE(has_line(text, "tenantgate_policy_reloads_total{result=\"ok\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_policy_reloads_total{result=\"failed\"} 2"));
  EXPECT_TRUE(has_line(text, "tenantgate_policy_info{version=\"def\"} 1"));
  EXPECT_EQ(text.find("version=\"abc\""), std::string::npos);
}

TEST(MetricsTest, SourcesAreReadAtRenderTime) {
  Metrics m;
  uint64_t hits = 1;
  m.set_sources({[] {
                   return ClientCounts{2, 3, 1, 3};
                 },
                 [&] {
                   return CacheCounts{hits, 4, 5, 600, 7};
                 },
                 [] {
                   return AuditCounts{8, 9, 1};
                 }});
  EXPECT_TRUE(has_line(m.render(), "tenantgate_rewrite_cache_hits_total 1"));
  hits = 10;
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_cache_hits_total 10"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_cache_misses_total 4"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_cache_evictions_total 5"));
  EXPECT_TRUE(has_line(text, "tenantgate_rewrite_cache_bytes 600"));
  EXPECT_TRUE(has_line(text, "tenantgate_client_connections{state=\"startup\"} 2"));
  EXPECT_TRUE(has_line(text, "tenantgate_client_connections{state=\"active\"} 3"));
  EXPECT_TRUE(has_line(text, "tenantgate_client_connections{state=\"admin\"} 1"));
  EXPECT_TRUE(has_line(text, "tenantgate_backend_connections 3"));
  EXPECT_TRUE(has_line(text, "tenantgate_audit_events_total 8"));
  EXPECT_TRUE(has_line(text, "tenantgate_audit_events_dropped_total 9"));
  EXPECT_NE(text.find("# TYPE tenantgate_rewrite_cache_hits_total counter"), std::string::npos);
}

}  // namespace
}  // namespace tenantgate::ops
