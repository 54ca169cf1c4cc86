#include "ops/audit_event.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "rewriter/literal_scanner.h"

namespace tenantgate::ops {

namespace {

using json = nlohmann::json;

std::optional<Decision> parse_decision(std::string_view s) {
  if (s == "forwarded") return Decision::kForwarded;
  if (s == "rewritten") return Decision::kRewritten;
  if (s == "refused") return Decision::kRefused;
  return std::nullopt;
}

// Inverse of format_time for the form it writes.
std::optional<int64_t> parse_time(const std::string& s) {
  std::tm tm{};
  int micros = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000000 + micros;
}

}  // namespace

std::string_view decision_name(Decision d) {
  switch (d) {
    case Decision::kForwarded:
      return "forwarded";
    case Decision::kRewritten:
      return "rewritten";
    case Decision::kRefused:
      return "refused";
  }
  return "refused";
}

bool AuditEvent::has_missing_predicate() const {
  for (const auto& t : tables) {
    if (!t.missing.empty()) return true;
  }
  return false;
}

std::string normalise_statement(std::string_view sql) {
  rewriter::SqlScanner scanner(sql);
  rewriter::Token token;
  std::string out;
  std::string_view previous;
  for (;;) {
    const auto status = scanner.next(&token);
    if (status == rewriter::SqlScanner::Status::kGiveUp) return "";
    if (status == rewriter::SqlScanner::Status::kEnd) break;
    const std::string_view text = sql.substr(token.begin, token.end - token.begin);
    // Spaces where a reader expects them: none inside "f(x)", "t.c", "x::int", "a, b".
    const bool tight = token.kind == rewriter::TokenKind::kPunctuation &&
                       (text == "," || text == ")" || text == "." || text == "::" || text == "]" ||
                        text == "[" || text == ";");
    const bool after_tight =
        previous == "(" || previous == "." || previous == "::" || previous == "[";
    if (!out.empty() && !tight && !after_tight) out += ' ';
    previous = token.kind == rewriter::TokenKind::kPunctuation ? text : std::string_view();
    switch (token.kind) {
      case rewriter::TokenKind::kString:
      case rewriter::TokenKind::kEscapeString:
      case rewriter::TokenKind::kBitString:
      case rewriter::TokenKind::kUnicodeString:
      case rewriter::TokenKind::kDollarString:
      case rewriter::TokenKind::kNumber:
        out += '?';
        break;
      default:
        out.append(text);
    }
  }
  return out;
}

std::string fingerprint(std::string_view normalised) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : normalised) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string format_time(int64_t time_us) {
  const std::time_t seconds = static_cast<std::time_t>(time_us / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(((time_us % 1000000) + 1000000) % 1000000));
  return buf;
}

std::string to_json_line(const AuditEvent& e) {
  json j;
  j["time"] = format_time(e.time_us);
  j["session"] = e.session;
  j["principal"] = e.principal;
  j["tenant"] = e.tenant;
  j["user"] = e.user ? json(*e.user) : json(nullptr);
  j["protocol"] = e.protocol;
  j["enforcement"] = e.enforcement;
  j["fingerprint"] = e.fingerprint;
  j["normalised"] = e.normalised;
  if (e.statement) j["statement"] = *e.statement;
  json tables = json::array();
  for (const auto& t : e.tables) {
    tables.push_back({{"table", t.table}, {"policy", t.policy}, {"missing_predicate", t.missing}});
  }
  j["tables"] = std::move(tables);
  j["decision"] = decision_name(e.decision);
  if (e.would) j["would"] = decision_name(*e.would);
  j["sqlstate"] = e.sqlstate.empty() ? json(nullptr) : json(e.sqlstate);
  if (!e.message.empty()) j["message"] = e.message;
  j["policy_version"] = e.policy_version;
  j["duration_us"] = e.duration_us;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<AuditEvent> parse_audit_line(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  AuditEvent e;
  auto time = text("time");
  auto decision = text("decision");
  auto fp = text("fingerprint");
  if (!time || !decision || !fp) return std::nullopt;
  auto t = parse_time(*time);
  auto d = parse_decision(*decision);
  if (!t || !d) return std::nullopt;
  e.time_us = *t;
  e.decision = *d;
  e.fingerprint = *fp;
  if (auto it = j.find("session"); it != j.end() && it->is_number_unsigned()) {
    e.session = it->get<uint64_t>();
  }
  e.principal = text("principal").value_or("");
  e.tenant = text("tenant").value_or("");
  e.user = text("user");
  e.protocol = text("protocol").value_or("");
  e.enforcement = text("enforcement").value_or("");
  e.normalised = text("normalised").value_or("");
  e.statement = text("statement");
  if (auto w = text("would")) e.would = parse_decision(*w);
  e.sqlstate = text("sqlstate").value_or("");
  e.message = text("message").value_or("");
  e.policy_version = text("policy_version").value_or("");
  if (auto it = j.find("duration_us"); it != j.end() && it->is_number_unsigned()) {
    e.duration_us = it->get<uint64_t>();
  }
  if (auto it = j.find("tables"); it != j.end() && it->is_array()) {
    for (const auto& t : *it) {
      if (!t.is_object()) return std::nullopt;
      AuditTable table;
      if (auto n = t.find("table"); n != t.end() && n->is_string()) table.table = *n;
      if (auto p = t.find("policy"); p != t.end() && p->is_string()) table.policy = *p;
      if (auto m = t.find("missing_predicate"); m != t.end() && m->is_array()) {
        for (const auto& c : *m) {
          if (c.is_string()) table.missing.push_back(c.get<std::string>());
        }
      }
      e.tables.push_back(std::move(table));
    }
  }
  return e;
}

}  // namespace tenantgate::ops
