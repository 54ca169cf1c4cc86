// The client connection's caller; see client_caller.h.

#include "proxy/client_caller.h"

#include <fmt/format.h>

#include "proxy/caller_reply.h"
#include "proxy/no_caller_policy.h"

namespace tenantgate::proxy {

void ClientCaller::set_database(std::string database) {
  database_ = std::move(database);
  refresh();
}

void ClientCaller::set_catalog(std::shared_ptr<const policy::AppCatalog> catalog) {
  catalog_ = std::move(catalog);
  refresh();
}

void ClientCaller::bind(policy::Identity caller) {
  state_.set_session(std::move(caller));
  refresh();
}

void ClientCaller::refresh() {
  if (const policy::Identity* caller = state_.current()) {
    effective_ = *caller;
  } else {
    effective_ = policy::Identity{};
    effective_.tenant.type = config_.identity.tenant_type;
  }
  effective_.database = database_;
  effective_.catalog = catalog_;
}

void ClientCaller::clear(std::string_view) {
  state_.clear();
  refresh();
}

std::shared_ptr<const policy::Policy> ClientCaller::policy_for(
    const std::shared_ptr<const policy::Policy>& policy) const {
  if (state_.current() || !policy) return policy;
  return policy_without_caller(policy);
}

ClientCaller::QueryOutcome ClientCaller::on_query(std::string_view sql, char transaction_status,
                                                  bool backend_idle, int64_t now_s) {
  QueryOutcome out;
  const CallerStatement statement = classify_caller_statement(sql);
  if (statement.kind == CallerStatementKind::kNone) {
    if (takes_tokens() && ends_caller(sql) && state_.current()) {
      clear("RESET ALL / DISCARD ALL");
      out.log = "caller ended by RESET ALL or DISCARD ALL";
    }
    return out;
  }
  CallerContext context;
  context.principal = &principal_;
  context.settings = &config_.identity;
  context.tokens = tokens_;
  context.transaction_status = transaction_status;
  context.backend_idle = backend_idle;
  context.current = state_.current();
  context.now_s = now_s;
  CallerAction action = decide_caller_statement(statement, context);
  switch (action.kind) {
    case CallerAction::Kind::kShow:
      out.kind = QueryOutcome::Kind::kAnswer;
      out.answer = show_result(action.show_name, action.show_value);
      return out;
    case CallerAction::Kind::kRefuse:
      clear(action.refusal.message);
      out.kind = QueryOutcome::Kind::kRefuse;
      out.log = "caller cleared: " + action.refusal.message;
      out.refusal = std::move(action.refusal);
      return out;
    case CallerAction::Kind::kClear:
      clear("RESET");
      out.log = "caller cleared by RESET tenantgate.token";
      break;
    case CallerAction::Kind::kSetSession:
    case CallerAction::Kind::kSetLocal: {
      const bool local = action.kind == CallerAction::Kind::kSetLocal;
      out.log = fmt::format("caller set{} by token: tenant={} user={}", local ? " locally" : "",
                            action.caller.tenant.value,
                            action.caller.user ? action.caller.user->value : "(none)");
      if (local) {
        state_.set_local(std::move(action.caller));
      } else {
        state_.set_session(std::move(action.caller));
      }
      refresh();
      break;
    }
  }
  out.kind = QueryOutcome::Kind::kAnswer;
  out.answer = command_complete(action.tag);
  return out;
}

std::optional<CallerRefusal> ClientCaller::on_parse(std::string_view statement,
                                                    std::string_view sql) {
  const CallerStatement caller_statement = classify_caller_statement(sql);
  if (caller_statement.kind != CallerStatementKind::kNone &&
      caller_statement.kind != CallerStatementKind::kShowTenant &&
      caller_statement.kind != CallerStatementKind::kShowUser) {
    clear("extended protocol");
    return CallerRefusal{"42501",
                         "tenantgate.token is set with a simple Query, not through the extended "
                         "protocol; the connection has no caller now"};
  }
  if (takes_tokens() && ends_caller(sql) && state_.current()) clear("DISCARD ALL");
  statements_[std::string(statement)] = state_.generation();
  return std::nullopt;
}

std::optional<std::string> ClientCaller::stale(const std::unordered_map<std::string, uint64_t>& map,
                                               std::string_view name, std::string_view what) const {
  auto it = map.find(std::string(name));
  if (it == map.end() || it->second == state_.generation()) return std::nullopt;
  return fmt::format(
      "{} \"{}\" was prepared for another caller (the caller changed since); "
      "prepare it again",
      what, name);
}

std::optional<std::string> ClientCaller::on_bind(std::string_view statement,
                                                 std::string_view portal) {
  if (auto why = stale(statements_, statement, "prepared statement")) return why;
  portals_[std::string(portal)] = state_.generation();
  return std::nullopt;
}

std::optional<std::string> ClientCaller::on_execute(std::string_view portal) const {
  return stale(portals_, portal, "portal");
}

void ClientCaller::on_close(char kind, std::string_view name) {
  (kind == 'S' ? statements_ : portals_).erase(std::string(name));
}

std::optional<std::string> ClientCaller::on_prepared_names(
    const std::vector<rewriter::PreparedName>& names) {
  using Kind = rewriter::PreparedName::Kind;
  for (const auto& n : names) {
    if (n.kind == Kind::kExecute) {
      if (auto why = stale(statements_, n.name, "prepared statement")) return why;
    }
  }
  for (const auto& n : names) {
    switch (n.kind) {
      case Kind::kPrepare:
        statements_[n.name] = state_.generation();
        break;
      case Kind::kDeallocate:
        statements_.erase(n.name);
        break;
      case Kind::kDeallocateAll:
        statements_.clear();
        break;
      case Kind::kExecute:
        break;
    }
  }
  return std::nullopt;
}

void ClientCaller::on_ready_for_query(char status) {
  if (status != 'I') return;
  const uint64_t before = state_.generation();
  state_.end_transaction();
  if (state_.generation() != before) refresh();
  // Portals end with their transaction.
  portals_.clear();
}

}  // namespace tenantgate::proxy
