#include "ops/operations.h"

#include <algorithm>
#include <cctype>

#include "ops/audit_event.h"
#include "rewriter/literal_scanner.h"

namespace tenantgate::ops {

namespace {

// Shapes kept per policy snapshot; an application has far fewer distinct
// statements. Past it the cache starts over (a hostile client sending endless
// new shapes costs one parse each, as it does in the rewriter).
constexpr std::size_t kMaxShapes = 4096;

// Longer statements are not analysed for missing predicates (their audit
// records list no tables): ORM statements are far shorter, and a parse on the
// event loop must stay cheap whatever a client sends.
constexpr std::size_t kMaxAnalysedBytes = 16 * 1024;

bool starts_with_keyword(std::string_view sql, std::string_view keyword) {
  std::size_t i = 0;
  while (i < sql.size() && (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(')) {
    ++i;
  }
  if (sql.size() - i < keyword.size()) return false;
  for (std::size_t k = 0; k < keyword.size(); ++k) {
    if (std::toupper(static_cast<unsigned char>(sql[i + k])) != keyword[k]) return false;
  }
  return sql.size() - i == keyword.size() ||
         !std::isalnum(static_cast<unsigned char>(sql[i + keyword.size()]));
}

// A statement that only reads: what audit.mode = "writes" leaves out.
bool read_only(std::string_view sql, const rewriter::CoverageShape* shape) {
  if (shape) {
    for (const auto& t : shape->tables) {
      if (t.written || t.inserted) return false;
    }
  }
  for (std::string_view k : {"SELECT", "WITH", "TABLE", "VALUES", "SHOW", "EXPLAIN", "BEGIN",
                             "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "FETCH",
                             "CLOSE", "DISCARD", "DEALLOCATE", "SET", "RESET"}) {
    if (starts_with_keyword(sql, k)) return true;
  }
  return false;
}

// The first table a statement touches, for the refusals' table label: its
// name when the policy lists it (a bounded set), otherwise a fixed word, so
// that clients cannot create label values.
std::string first_table(const rewriter::CoverageShape* shape) {
  if (!shape || shape->tables.empty()) return "";
  const auto& t = shape->tables.front();
  if (t.policy == "default") return "(not in policy)";
  if (t.policy == "catalog" || t.policy == "denied_catalog") return "(catalog)";
  return policy::to_string(t.table);
}

bool has_parameters(const rewriter::CoverageShape& shape) {
  for (const auto& t : shape.tables) {
    for (const auto* values : {&t.tenant_values, &t.owner_values}) {
      for (const auto& v : *values) {
        if (v.param != 0) return true;
      }
    }
  }
  return false;
}

}  // namespace

Operations::Operations(const config::Config& config, Metrics& metrics, AuditSink* sink)
    : mode_(sink ? config.audit.mode : config::AuditMode::kOff),
      log_values_(config.log.log_statement_values),
      metrics_(metrics),
      sink_(sink) {}

void Operations::set_policy_version(std::string version) {
  metrics_.set_policy_version(version);
  std::lock_guard lock(mutex_);
  policy_version_ = std::move(version);
}

std::string Operations::policy_version() const {
  std::lock_guard lock(mutex_);
  return policy_version_;
}

std::shared_ptr<const rewriter::CoverageShape> Operations::coverage(
    std::string_view sql, const std::shared_ptr<const policy::Policy>& policy,
    std::string_view database, std::vector<std::optional<std::string>>& lifted) {
  std::string key;
  auto shape_text = rewriter::lift_constants(sql);
  if (shape_text) {
    for (auto literal : shape_text->literals) {
      lifted.push_back(rewriter::constant_value(literal));
    }
    key = std::move(shape_text->text);
  } else {
    key = std::string(sql);
  }
  key.append(1, '\0').append(database);
  {
    std::lock_guard lock(mutex_);
    if (cached_policy_ != policy.get()) {
      shapes_.clear();
      cached_policy_ = policy.get();
    }
    if (auto it = shapes_.find(key); it != shapes_.end()) return it->second;
  }
  const std::string_view text(key.data(), key.find('\0'));
  auto analysed = rewriter::analyse_coverage(text, *policy, database);
  if (!analysed) return nullptr;
  auto shared = std::make_shared<const rewriter::CoverageShape>(std::move(*analysed));
  std::lock_guard lock(mutex_);
  if (cached_policy_ == policy.get()) {
    if (shapes_.size() >= kMaxShapes) shapes_.clear();
    shapes_.emplace(std::move(key), shared);
  }
  return shared;
}

void Operations::statement(const StatementReport& r) {
  const auto& result = *r.result;
  const bool shadow = r.enforcement == config::Enforcement::kShadow;
  const bool refused = !result.is_ok();
  Decision enforced = refused                  ? Decision::kRefused
                      : result.value().changed ? Decision::kRewritten
                                               : Decision::kForwarded;
  Outcome outcome = shadow && refused                  ? Outcome::kWouldRefuse
                    : shadow                           ? Outcome::kForwarded
                    : refused                          ? Outcome::kRefused
                    : enforced == Decision::kRewritten ? Outcome::kRewritten
                                                       : Outcome::kForwarded;
  metrics_.statement(r.protocol, outcome);
  metrics_.rewrite_seconds(std::chrono::duration<double>(r.analysis).count());

  // Statements over the analysis limits are not parsed again.
  const bool analysable =
      !refused || (result.refusal().sqlstate != "54001" && result.refusal().sqlstate != "53000" &&
                   result.refusal().sqlstate != "42601");
  // Only with the audit trail or in shadow mode: the analysis parses on the
  // event loop (shapes are cached), outside the analysis pool's per-tenant
  // budget, so it is also skipped for long statements.
  const bool analyse = (mode_ != config::AuditMode::kOff || shadow) && analysable &&
                       r.sql.size() <= kMaxAnalysedBytes;
  std::shared_ptr<const rewriter::CoverageShape> shape;
  std::vector<rewriter::MissingPredicate> missing;
  if (analyse) {
    std::vector<std::optional<std::string>> params(r.params.begin(), r.params.end());
    std::vector<std::optional<std::string>> lifted;
    shape = coverage(r.sql, *r.policy, r.identity->database, lifted);
    // A statement with parameters is judged at each Bind (bound()), when
    // their values are known.
    if (shape && !(r.protocol == Protocol::kExtended && has_parameters(*shape))) {
      missing = rewriter::evaluate_coverage(*shape, *r.identity, lifted.empty() ? params : lifted);
      for (const auto& m : missing) metrics_.missing_predicate(m.table);
    }
  }
  if (refused) metrics_.refusal(result.refusal().sqlstate, first_table(shape.get()));

  bool write = false;
  switch (mode_) {
    case config::AuditMode::kOff:
      break;
    case config::AuditMode::kRefusals:
      write = refused || !missing.empty();
      break;
    case config::AuditMode::kWrites:
      write = refused || !missing.empty() || !read_only(r.sql, shape.get());
      break;
    case config::AuditMode::kAll:
      write = true;
      break;
  }
  if (!write) return;
  record(r, shape.get(), missing, refused,
         static_cast<int>(shadow ? Decision::kForwarded : enforced),
         shadow ? static_cast<int>(enforced) : -1);
}

void Operations::bound(const StatementReport& r) {
  std::vector<std::optional<std::string>> lifted;
  auto shape = coverage(r.sql, *r.policy, r.identity->database, lifted);
  if (!shape) return;
  const auto missing = rewriter::evaluate_coverage(*shape, *r.identity, r.params);
  if (missing.empty()) return;
  for (const auto& m : missing) metrics_.missing_predicate(m.table);
  if (mode_ == config::AuditMode::kOff) return;
  // What was decided about the statement was recorded at its Parse.
  record(r, shape.get(), missing, false, static_cast<int>(Decision::kForwarded), -1);
}

void Operations::record(const StatementReport& r, const rewriter::CoverageShape* shape,
                        const std::vector<rewriter::MissingPredicate>& missing, bool refused,
                        int decision, int would) {
  AuditEvent e;
  e.time_us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  e.session = r.session;
  e.principal = std::string(r.principal);
  e.tenant = r.identity->tenant.value;
  if (r.identity->user) e.user = r.identity->user->value;
  e.protocol = r.protocol == Protocol::kSimple ? "simple" : "extended";
  e.enforcement = std::string(config::enforcement_name(r.enforcement));
  e.normalised = normalise_statement(r.sql);
  e.fingerprint = fingerprint(e.normalised.empty() ? r.sql : e.normalised);
  if (log_values_) e.statement = std::string(r.sql);
  if (shape) {
    for (const auto& t : shape->tables) {
      AuditTable table{policy::to_string(t.table), t.policy, {}};
      for (const auto& m : missing) {
        if (m.table == table.table) table.missing = m.columns;
      }
      e.tables.push_back(std::move(table));
    }
  }
  e.decision = static_cast<Decision>(decision);
  if (would >= 0) e.would = static_cast<Decision>(would);
  if (refused) {
    e.sqlstate = r.result->refusal().sqlstate;
    e.message = r.result->refusal().message;
  }
  e.policy_version = policy_version();
  e.duration_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(r.analysis).count());
  sink_->submit(to_json_line(e));
}

}  // namespace tenantgate::ops
