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

namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// A JSON string literal: quotes, backslashes and control characters escaped,
// bytes that are not valid UTF-8 replaced by U+FFFD.
void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c < 0x20 || c == 0x7F) {
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

void append_key(std::string& out, std::string_view key) {
  if (out.size() > 1) out += ',';
  out += '"';
  out += key;
  out += "\":";
}

void field(std::string& out, std::string_view key, std::string_view value) {
  append_key(out, key);
  append_string(out, value);
}

void field(std::string& out, std::string_view key, uint64_t value) {
  append_key(out, key);
  out += std::to_string(value);
}

void null_field(std::string& out, std::string_view key) {
  append_key(out, key);
  out += "null";
}

}  // namespace

// Written by hand rather than through a JSON library: it runs on the event
// loops for every audited statement (a tree-building serializer cost about
// 8 us a line here, this well under 1 us).
std::string to_json_line(const AuditEvent& e) {
  std::string out;
  out.reserve(384 + e.normalised.size() + (e.statement ? e.statement->size() : 0));
  out += '{';
  field(out, "time", format_time(e.time_us));
  field(out, "session", e.session);
  field(out, "principal", e.principal);
  field(out, "tenant", e.tenant);
  if (e.user) {
    field(out, "user", *e.user);
  } else {
    null_field(out, "user");
  }
  field(out, "protocol", e.protocol);
  field(out, "enforcement", e.enforcement);
  field(out, "fingerprint", e.fingerprint);
  field(out, "normalised", e.normalised);
  if (e.statement) field(out, "statement", *e.statement);
  append_key(out, "tables");
  out += '[';
  for (std::size_t i = 0; i < e.tables.size(); ++i) {
    const auto& t = e.tables[i];
    if (i) out += ',';
    out += "{\"table\":";
    append_string(out, t.table);
    out += ",\"policy\":";
    append_string(out, t.policy);
    out += ",\"missing_predicate\":[";
    for (std::size_t k = 0; k < t.missing.size(); ++k) {
      if (k) out += ',';
      append_string(out, t.missing[k]);
    }
    out += "]}";
  }
  out += ']';
  field(out, "decision", decision_name(e.decision));
  if (e.would) field(out, "would", decision_name(*e.would));
  if (e.sqlstate.empty()) {
    null_field(out, "sqlstate");
  } else {
    field(out, "sqlstate", e.sqlstate);
  }
  if (!e.message.empty()) field(out, "message", e.message);
  field(out, "policy_version", e.policy_version);
  field(out, "duration_us", e.duration_us);
  out += "}\n";
  return out;
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
