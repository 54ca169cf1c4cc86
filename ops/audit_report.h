// `tenantgate report AUDIT_FILE`: the findings of an audit trail, grouped by
// statement fingerprint. Missing-predicate findings (statements that read a
// scoped table without restricting it to the caller: the application's IDOR
// bugs) come first, then the statements shadow mode forwarded that
// enforcement would have refused. Pure: events in, text out.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "ops/audit_event.h"

namespace tenantgate::ops {

[[nodiscard]] std::string render_report(const std::vector<AuditEvent>& events);

// Reads JSON lines from `in` (lines that are not audit records are counted
// and skipped) and writes render_report. Returns the number of findings.
std::size_t report(std::istream& in, std::ostream& out);

}  // namespace tenantgate::ops
