// The few facts a session reports to ops::Operations (metrics, the
// missing-predicate analysis, the audit trail), gathered in one place so that
// the session's own code calls one function per event.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "ops/metrics.h"
#include "ops/operations.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// Why a start-up ended with an error, for tenantgate_startups_refused_total.
[[nodiscard]] ops::StartupRefusal startup_refusal_reason(std::string_view sqlstate,
                                                         std::string_view message);

// The enforcement of a principal's sessions: its own, or [policy]'s.
[[nodiscard]] config::Enforcement enforcement_of(const config::Config& config,
                                                 const config::Principal& principal);

// What SHOW CLIENTS shows of a session, published once its start-up has
// bound them.
struct SessionFacts {
  std::string principal;
  std::string tenant;
  std::string user;
  std::string database;
  std::string peer;
  std::string enforcement;
  bool admin = false;  // an admin console connection
};

// One session's reporter; null operations: nothing is reported.
class SessionReport {
 public:
  SessionReport() = default;
  SessionReport(ops::Operations* operations, uint64_t session)
      : ops_(operations), session_(session) {}

  // Once the identity is bound.
  void bind(std::string principal, const policy::Identity* identity,
            config::Enforcement enforcement) {
    principal_ = std::move(principal);
    identity_ = identity;
    enforcement_ = enforcement;
  }
  [[nodiscard]] bool shadow() const { return enforcement_ == config::Enforcement::kShadow; }

  // Set from the session's loop; read from any thread (the admin console).
  void publish(SessionFacts facts) {
    std::lock_guard lock(facts_mutex_);
    facts_ = std::move(facts);
  }
  [[nodiscard]] SessionFacts facts() const {
    std::lock_guard lock(facts_mutex_);
    return facts_;
  }

  // Whether anything is reported (a non-bypass caller is bound).
  [[nodiscard]] bool active() const { return ops_ != nullptr && identity_ != nullptr; }
  // Whether Binds are judged (audit on, or shadow mode).
  [[nodiscard]] bool judges_binds() const {
    return active() && (ops_->judges_statements() || shadow());
  }

  // The type of the client message being filtered: 'Q' is the simple
  // protocol, anything else the extended one.
  void message(char type) {
    protocol_ = type == 'Q' ? ops::Protocol::kSimple : ops::Protocol::kExtended;
    rewrite_refused_ = false;
  }

  // The filter refused the current message: counted in
  // tenantgate_refusals_total unless the rewrite already reported it
  // (refusals decided after it: Bind parameter checks, prepared-statement
  // names; tenantgate_statements_total keeps the rewrite's outcome).
  void refused(std::string_view sqlstate) const;

  // The enforcement decision about one statement of the current message.
  void statement(std::string_view sql, const rewriter::RewriteResult& result,
                 const std::shared_ptr<const policy::Policy>& policy,
                 std::chrono::nanoseconds analysis) const;

  // Extended protocol: remembers a Parse's text by statement name, so that
  // its Binds can be judged with their parameter values.
  void parsed(std::string_view statement, std::string_view sql);
  void bound(std::string_view statement, const std::vector<int16_t>& formats,
             const std::vector<std::optional<std::string_view>>& params,
             const std::shared_ptr<const policy::Policy>& policy) const;

  void startup_refused(std::string_view sqlstate, std::string_view message) const;

 private:
  ops::Operations* ops_ = nullptr;
  uint64_t session_ = 0;
  std::string principal_;
  const policy::Identity* identity_ = nullptr;
  config::Enforcement enforcement_ = config::Enforcement::kEnforce;
  ops::Protocol protocol_ = ops::Protocol::kSimple;
  mutable bool rewrite_refused_ = false;  // statement() reported a refusal for this message
  mutable std::mutex facts_mutex_;
  SessionFacts facts_;
  // Statement name -> text, only while audit or shadow mode needs it.
  std::map<std::string, std::string, std::less<>> statements_;
};

}  // namespace tenantgate::proxy
