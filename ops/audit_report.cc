#include "ops/audit_report.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace tenantgate::ops {

namespace {

struct Group {
  std::string fingerprint;
  std::string sample;
  uint64_t count = 0;
  int64_t first = 0;
  int64_t last = 0;
  std::map<std::string, std::set<std::string>> missing;  // table -> columns
  std::set<std::string> refusals;                        // "SQLSTATE message"
  std::set<std::string> principals;
};

void note(Group& g, const AuditEvent& e) {
  if (g.count == 0) {
    g.fingerprint = e.fingerprint;
    g.first = e.time_us;
    g.last = e.time_us;
  }
  ++g.count;
  g.first = std::min(g.first, e.time_us);
  g.last = std::max(g.last, e.time_us);
  if (g.sample.empty()) g.sample = !e.normalised.empty() ? e.normalised : e.statement.value_or("");
  g.principals.insert(e.principal);
}

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::vector<const Group*> ordered(const std::map<std::string, Group>& groups) {
  std::vector<const Group*> out;
  for (const auto& [k, g] : groups) out.push_back(&g);
  std::sort(out.begin(), out.end(), [](const Group* a, const Group* b) {
    return a->count != b->count ? a->count > b->count : a->first < b->first;
  });
  return out;
}

void header(std::ostringstream& out, const Group& g) {
  out << "\n"
      << g.fingerprint << "  count " << g.count << "  first " << format_time(g.first) << "  last "
      << format_time(g.last) << "\n";
  out << "  statement:  " << (g.sample.empty() ? "(not scannable)" : g.sample) << "\n";
  out << "  principals: " << join(g.principals) << "\n";
}

}  // namespace

std::string render_report(const std::vector<AuditEvent>& events) {
  std::map<std::string, Group> missing;
  std::map<std::string, Group> refused;
  for (const auto& e : events) {
    if (e.has_missing_predicate()) {
      Group& g = missing[e.fingerprint];
      note(g, e);
      for (const auto& t : e.tables) {
        for (const auto& c : t.missing) g.missing[t.table].insert(c);
      }
    }
    if (e.would == Decision::kRefused) {
      Group& g = refused[e.fingerprint];
      note(g, e);
      g.refusals.insert(e.sqlstate + " " + e.message);
    }
  }
  std::ostringstream out;
  out << "Missing predicates: " << missing.size()
      << " statements read scoped tables without restricting them to the caller\n";
  for (const Group* g : ordered(missing)) {
    header(out, *g);
    for (const auto& [table, columns] : g->missing) {
      out << "  missing:    " << table << " (" << join(columns) << ")\n";
    }
  }
  out << "\nWould be refused (shadow mode): " << refused.size() << " statements\n";
  for (const Group* g : ordered(refused)) {
    header(out, *g);
    for (const auto& r : g->refusals) out << "  refusal:    " << r << "\n";
  }
  return out.str();
}

std::size_t report(std::istream& in, std::ostream& out) {
  std::vector<AuditEvent> events;
  std::string line;
  std::size_t skipped = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (auto e = parse_audit_line(line)) {
      events.push_back(std::move(*e));
    } else {
      ++skipped;
    }
  }
  out << render_report(events);
  if (skipped > 0) out << "\n(" << skipped << " lines were not audit records)\n";
  std::size_t findings = 0;
  for (const auto& e : events) {
    if (e.has_missing_predicate() || e.would == Decision::kRefused) ++findings;
  }
  return findings;
}

}  // namespace tenantgate::ops
