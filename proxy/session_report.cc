#include "proxy/session_report.h"

namespace tenantgate::proxy {

ops::StartupRefusal startup_refusal_reason(std::string_view sqlstate, std::string_view message) {
  if (sqlstate == "28P01") return ops::StartupRefusal::kAuthentication;
  if (sqlstate == "28000") return ops::StartupRefusal::kIdentity;
  if (sqlstate == "53300") {
    if (message.find("max_startups_per_source") != std::string_view::npos) {
      return ops::StartupRefusal::kMaxStartupsPerSource;
    }
    if (message.find("max_startups") != std::string_view::npos) {
      return ops::StartupRefusal::kMaxStartups;
    }
    if (message.find("for principal") != std::string_view::npos) {
      return ops::StartupRefusal::kPrincipalLimit;
    }
    if (message.find("for tenant") != std::string_view::npos) {
      return ops::StartupRefusal::kTenantLimit;
    }
    return ops::StartupRefusal::kMaxClientConnections;
  }
  if (sqlstate == "42501" && message.find("admin console") != std::string_view::npos) {
    return ops::StartupRefusal::kAdmin;
  }
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "0A000") {
    return ops::StartupRefusal::kProtocol;
  }
  return ops::StartupRefusal::kBackend;
}

config::Enforcement enforcement_of(const config::Config& config,
                                   const config::Principal& principal) {
  return principal.enforcement.value_or(config.enforcement);
}

void SessionReport::statement(std::string_view sql, const rewriter::RewriteResult& result,
                              const std::shared_ptr<const policy::Policy>& policy,
                              std::chrono::nanoseconds analysis) const {
  if (!ops_ || !identity_) return;
  if (!result.is_ok()) rewrite_refused_ = true;
  ops::StatementReport r;
  r.session = session_;
  r.principal = principal_;
  r.identity = identity_;
  r.sql = sql;
  r.protocol = protocol_;
  r.enforcement = enforcement_;
  r.result = &result;
  r.policy = &policy;
  r.analysis = analysis;
  ops_->statement(r);
}

void SessionReport::parsed(std::string_view statement, std::string_view sql) {
  if (!ops_ || (!ops_->judges_statements() && !shadow())) return;
  // A session with thousands of named statements keeps only the latest ones.
  constexpr std::size_t kMaxStatements = 1024;
  if (statements_.size() >= kMaxStatements && !statements_.contains(statement)) {
    statements_.clear();
  }
  statements_.insert_or_assign(std::string(statement), std::string(sql));
}

void SessionReport::bound(std::string_view statement, const std::vector<int16_t>& formats,
                          const std::vector<std::optional<std::string_view>>& params,
                          const std::shared_ptr<const policy::Policy>& policy) const {
  if (!ops_ || !identity_) return;
  auto it = statements_.find(statement);
  if (it == statements_.end()) return;
  std::vector<std::optional<std::string>> values;
  values.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int16_t format = formats.size() == 1 ? formats[0] : i < formats.size() ? formats[i] : 0;
    if (params[i] && format == 0) {
      values.emplace_back(std::string(*params[i]));
    } else {
      values.emplace_back(std::nullopt);  // NULL or binary: never the caller's value
    }
  }
  ops::StatementReport r;
  r.session = session_;
  r.principal = principal_;
  r.identity = identity_;
  r.sql = it->second;
  r.protocol = ops::Protocol::kExtended;
  r.enforcement = enforcement_;
  r.policy = &policy;
  r.params = values;
  ops_->bound(r);
}

void SessionReport::refused(std::string_view sqlstate) const {
  if (!active() || rewrite_refused_) return;
  ops_->metrics().refusal(sqlstate, "");
}

void SessionReport::startup_refused(std::string_view sqlstate, std::string_view message) const {
  if (ops_) ops_->metrics().startup_refused(startup_refusal_reason(sqlstate, message));
}

}  // namespace tenantgate::proxy
