// The report: findings grouped by fingerprint with count, sample, tables and
// first/last seen; correct statements do not appear.
#include "ops/audit_report.h"

#include <gtest/gtest.h>

#include <sstream>

namespace tenantgate::ops {
namespace {

AuditEvent event(int64_t t, const std::string& normalised, std::vector<AuditTable> tables) {
  AuditEvent e;
  e.time_us = t;
  e.principal = "app";
  e.normalised = normalised;
  e.fingerprint = fingerprint(normalised);
  e.tables = std::move(tables);
  return e;
}

TEST(AuditReportTest, GroupsFindingsByFingerprint) {
  const int64_t t0 = 1764720000000000;
  std::vector<AuditEvent> events = {
      event(t0 + 2, "SELECT id FROM users WHERE id = ?",
            {{"public.users", "tenant", {"tenant_id"}}}),
      event(t0 + 1, "SELECT id FROM users WHERE id = ?",
            {{"public.users", "tenant", {"tenant_id"}}}),
      event(t0 + 3, "SELECT id FROM users WHERE id = ?",
            {{"public.users", "tenant", {"tenant_id"}}}),
      event(t0, "SELECT id FROM users WHERE tenant_id = ?", {{"public.users", "tenant", {}}}),
  };
  AuditEvent refused = event(t0 + 5, "TRUNCATE users", {});
  refused.would = Decision::kRefused;
  refused.sqlstate = "0A000";
  refused.message = "TRUNCATE is not supported";
  events.push_back(refused);
  const std::string text = render_report(events);
  EXPECT_NE(text.find("Missing predicates: 1 statements"), std::string::npos) << text;
  EXPECT_NE(text.find(fingerprint("SELECT id FROM users WHERE id = ?") + "  count 3  first " +
                      format_time(t0 + 1) + "  last " + format_time(t0 + 3)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("statement:  SELECT id FROM users WHERE id = ?\n"), std::string::npos);
  EXPECT_NE(text.find("missing:    public.users (tenant_id)"), std::string::npos);
  EXPECT_EQ(text.find("tenant_id = ?"), std::string::npos);
  EXPECT_NE(text.find("Would be refused (shadow mode): 1 statements"), std::string::npos);
  EXPECT_NE(text.find("refusal:    0A000 TRUNCATE is not supported"), std::string::npos);
}

TEST(AuditReportTest, ReadsJsonLinesAndCountsFindings) {
  std::stringstream in;
  in << to_json_line(event(1, "SELECT * FROM records",
                           {{"public.records", "tenant_owner", {"tenant_id", "created_by"}}}))
     << "garbage\n"
     << to_json_line(event(2, "SELECT 1", {}));
  std::ostringstream out;
  EXPECT_EQ(report(in, out), 1u);
  EXPECT_NE(out.str().find("public.records (created_by, tenant_id)"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("(1 lines were not audit records)"), std::string::npos);
}

}  // namespace
}  // namespace tenantgate::ops
