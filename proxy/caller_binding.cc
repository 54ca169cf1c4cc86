// The caller decisions as plain functions; see caller_binding.h.

#include "proxy/caller_binding.h"

#include <fmt/format.h>

namespace tenantgate::proxy {

namespace {

policy::Identity identity_of(const identity::VerifiedToken& token) {
  policy::Identity id;
  id.tenant = token.tenant;
  id.user = token.user;
  id.claims = token.claims;
  return id;
}

CallerRefusal refuse(std::string sqlstate, std::string message) {
  return CallerRefusal{std::move(sqlstate), std::move(message)};
}

// The token verified and allowed for the principal, or why not.
std::variant<policy::Identity, CallerRefusal> verify(const std::string& token,
                                                     const config::Principal& principal,
                                                     const config::Identity& settings,
                                                     const identity::TokenAuthority* tokens,
                                                     int64_t now_s, const std::string& sqlstate) {
  if (principal.identity == config::IdentitySource::kClaimed || tokens == nullptr) {
    return refuse(sqlstate, fmt::format("principal \"{}\" does not accept tokens (identity = "
                                        "\"claimed\")",
                                        principal.name));
  }
  auto result = tokens->verify(token, now_s);
  if (!result.ok()) {
    return refuse(sqlstate, "tenantgate.token refused: " + result.refusal().message());
  }
  policy::Identity caller = identity_of(*result.token());
  if (!tenant_allowed(principal, caller.tenant.value, settings.tenant_type)) {
    return refuse(sqlstate, fmt::format("tenantgate.token refused: principal \"{}\" may not claim "
                                        "tenant \"{}\"",
                                        principal.name, caller.tenant.value));
  }
  return caller;
}

}  // namespace

bool tenant_allowed(const config::Principal& principal, const std::string& tenant,
                    policy::ValueType type) {
  for (const auto& allowed : principal.tenants) {
    if (allowed == "*") return true;
    auto canonical = policy::canonical_value(type, allowed);
    if (canonical ? *canonical == tenant : allowed == tenant) return true;
  }
  return false;
}

std::variant<TokenCaller, ClaimedCaller, CallerRefusal> startup_caller(
    const config::Principal& principal, const config::Identity& settings,
    const StartupIdentity& given, const identity::TokenAuthority* tokens, int64_t now_s) {
  const bool claimed = given.tenant.has_value() || given.user.has_value();
  if (given.token) {
    if (claimed) {
      return refuse("28000", fmt::format("give either tenantgate.token or {} / {}, not both",
                                         settings.tenant_param, settings.user_param));
    }
    auto caller = verify(*given.token, principal, settings, tokens, now_s, "28000");
    if (auto* r = std::get_if<CallerRefusal>(&caller)) return std::move(*r);
    return TokenCaller{std::move(std::get<policy::Identity>(caller))};
  }
  switch (principal.identity) {
    case config::IdentitySource::kClaimed:
      return ClaimedCaller{};
    case config::IdentitySource::kToken:
      if (claimed) {
        return refuse("28000",
                      fmt::format("principal \"{}\" takes its caller only from a signed "
                                  "token (identity = \"token\"): set tenantgate.token, "
                                  "not {} / {}",
                                  principal.name, settings.tenant_param, settings.user_param));
      }
      return TokenCaller{};
    case config::IdentitySource::kEither:
      if (claimed) return ClaimedCaller{};
      return TokenCaller{};
  }
  return ClaimedCaller{};
}

CallerAction decide_caller_statement(const CallerStatement& statement,
                                     const CallerContext& context) {
  CallerAction action;
  auto refused = [&](std::string sqlstate, std::string message) {
    action.kind = CallerAction::Kind::kRefuse;
    action.refusal = refuse(std::move(sqlstate), std::move(message));
    return action;
  };
  if (statement.kind == CallerStatementKind::kNone) {
    return refused("XX000", "not a caller statement");
  }
  if (statement.kind == CallerStatementKind::kMisplaced) {
    return refused("42501", "tenantgate.token: " + statement.problem);
  }
  // Answered by tenantgate, so the answer must follow everything asked before.
  if (!context.backend_idle) {
    return refused("42501",
                   "tenantgate.token, tenantgate.tenant and tenantgate.user are answered after the "
                   "previous query's result only (not pipelined)");
  }
  switch (statement.kind) {
    case CallerStatementKind::kShowTenant:
    case CallerStatementKind::kShowUser: {
      const bool tenant = statement.kind == CallerStatementKind::kShowTenant;
      action.kind = CallerAction::Kind::kShow;
      action.tag = "SHOW";
      action.show_name = tenant ? "tenantgate.tenant" : "tenantgate.user";
      if (context.current) {
        if (tenant) {
          action.show_value = context.current->tenant.value;
        } else if (context.current->user) {
          action.show_value = context.current->user->value;
        }
      }
      return action;
    }
    default:
      break;
  }
  if (context.transaction_status == 'E') {
    return refused("25P02",
                   "current transaction is aborted, commands ignored until end of transaction "
                   "block");
  }
  if (statement.kind == CallerStatementKind::kReset) {
    action.kind = CallerAction::Kind::kClear;
    action.tag = "RESET";
    return action;
  }
  const bool local = statement.kind == CallerStatementKind::kSetLocal;
  if (local && context.transaction_status != 'T') {
    return refused("25P01", "SET LOCAL tenantgate.token can only be used in transaction blocks");
  }
  auto caller = verify(statement.token, *context.principal, *context.settings, context.tokens,
                       context.now_s, "42501");
  if (auto* r = std::get_if<CallerRefusal>(&caller)) {
    action.kind = CallerAction::Kind::kRefuse;
    action.refusal = std::move(*r);
    return action;
  }
  action.kind = local ? CallerAction::Kind::kSetLocal : CallerAction::Kind::kSetSession;
  action.caller = std::move(std::get<policy::Identity>(caller));
  action.tag = "SET";
  return action;
}

}  // namespace tenantgate::proxy
