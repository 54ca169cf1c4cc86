// One audit record: what tenantgate decided about one statement, for whom,
// under which policy version, and which tables the statement touched. Written
// as one JSON line (to_json_line) and read back by `tenantgate report`
// (parse_audit_line).
//
// Statement text appears only when log.log_statement_values is on; otherwise
// a record carries the statement's normalised form (every constant replaced
// by ?) and its fingerprint (a hash of that form), so that the trail never
// holds the values an application sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::ops {

enum class Decision { kForwarded, kRewritten, kRefused };

[[nodiscard]] std::string_view decision_name(Decision d);

struct AuditTable {
  std::string table;   // schema.name
  std::string policy;  // scope name, "default", "catalog" or "denied_catalog"
  // The scope columns the statement does not restrict to the caller (empty:
  // restricted, or not a scoped read).
  std::vector<std::string> missing;
};

struct AuditEvent {
  int64_t time_us = 0;  // Unix time, microseconds
  uint64_t session = 0;
  std::string principal;
  std::string tenant;
  std::optional<std::string> user;
  std::string protocol;     // simple | extended
  std::string enforcement;  // enforce | shadow
  std::string fingerprint;  // 16 hex digits of the normalised statement
  std::string normalised;   // constants replaced by ?; empty when it could not be scanned
  std::optional<std::string> statement;  // only with log_statement_values
  std::vector<AuditTable> tables;
  Decision decision = Decision::kForwarded;  // what happened to the statement
  // Shadow mode: what enforcement would have done (Decision of the rewrite).
  std::optional<Decision> would;
  std::string sqlstate;  // of the refusal (done or, in shadow mode, not done)
  std::string message;   // the refusal's message
  std::string policy_version;
  uint64_t duration_us = 0;  // tenantgate's own time on the statement (analysis)

  [[nodiscard]] bool has_missing_predicate() const;
};

// The statement with every constant (numbers, strings, bit strings, dollar
// quotes) replaced by ?, whitespace and comments collapsed to one space; empty
// when the scanner gives up (literal_scanner.h).
[[nodiscard]] std::string normalise_statement(std::string_view sql);

// 16 hex digits identifying a normalised statement (FNV-1a, stable across
// processes and builds).
[[nodiscard]] std::string fingerprint(std::string_view normalised);

// One line of JSON, with a trailing newline. Invalid UTF-8 becomes U+FFFD.
[[nodiscard]] std::string to_json_line(const AuditEvent& event);

// nullopt when the line is not an audit record.
[[nodiscard]] std::optional<AuditEvent> parse_audit_line(std::string_view line);

// RFC 3339 UTC with microseconds, as written in "time".
[[nodiscard]] std::string format_time(int64_t time_us);

}  // namespace tenantgate::ops
