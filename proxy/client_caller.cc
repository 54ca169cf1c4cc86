// The client connection's caller; see client_caller.h.

#include "proxy/client_caller.h"

#include <fmt/format.h>

#include "proxy/caller_reply.h"
#include "proxy/no_caller_policy.h"
#include "rewriter/dialect_tokens.h"

namespace tenantgate::proxy {

std::string backend_name(std::string_view name) {
  constexpr std::size_t kMaxName = 63;  // NAMEDATALEN - 1
  if (name.size() <= kMaxName) return std::string(name);
  std::size_t cut = kMaxName;
  // Back off over UTF-8 continuation bytes (10xxxxxx) to a character start.
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return std::string(name.substr(0, cut));
}

bool ends_transaction_before_last(std::string_view sql) {
  const std::string text(sql);
  std::vector<rewriter::SqlToken> tokens;
  if (rewriter::scan_tokens(text, &tokens)) return true;
  const rewriter::TokenView view(text, tokens);
  const std::vector<rewriter::TokenRange> statements = rewriter::split_statements(view);
  bool ended = false;
  for (const auto& r : statements) {
    if (r.first >= r.last) continue;  // empty statement
    if (ended) return true;
    const std::size_t i = r.first;
    ended = view.is(i, "COMMIT") || view.is(i, "END") || view.is(i, "ROLLBACK") ||
            view.is(i, "ABORT") ||
            (view.is(i, "PREPARE") && i + 1 < r.last && view.is(i + 1, "TRANSACTION"));
  }
  return false;
}

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
  in_query_ = true;
  const CallerStatement statement = classify_caller_statement(sql);
  if (statement.kind == CallerStatementKind::kNone) {
    // The statements after a COMMIT / ROLLBACK would be rewritten for the
    // local caller, which ends with that transaction.
    if (state_.has_local() && ends_transaction_before_last(sql)) {
      out.kind = QueryOutcome::Kind::kRefuse;
      out.refusal = CallerRefusal{
          "0A000",
          "under SET LOCAL tenantgate.token a COMMIT or ROLLBACK ends the Query: send the "
          "statements after it in a Query of their own"};
      out.log = "refused: statements after a transaction end under a local caller";
      return out;
    }
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
  in_query_ = false;
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
  // The unnamed statement is dropped before its Parse runs, a named one is
  // kept when the new Parse fails (42P05).
  const std::string name = backend_name(statement);
  if (name.empty()) {
    statements_[name] = state_.generation();
  } else {
    record(statements_, name);
  }
  return std::nullopt;
}

std::optional<std::string> ClientCaller::stale(const std::unordered_map<std::string, uint64_t>& map,
                                               std::string_view name, std::string_view what) const {
  auto it = map.find(backend_name(name));
  if (it == map.end() || it->second == state_.generation()) return std::nullopt;
  return fmt::format(
      "{} \"{}\" was prepared for another caller (the caller changed since); "
      "prepare it again",
      what, name);
}

void ClientCaller::record(std::unordered_map<std::string, uint64_t>& map, const std::string& name) {
  // Another caller's entry stays: the backend keeps its statement, portal or
  // cursor when the new one fails over the name.
  auto [it, added] = map.try_emplace(name, state_.generation());
  (void)it;
  (void)added;
}

std::optional<std::string> ClientCaller::stale_cursor(const std::string& name) const {
  if (auto why = stale(portals_, name, "portal")) return why;
  if (auto why = stale(cursors_, name, "cursor")) return why;
  return stale(hold_cursors_, name, "cursor");
}

std::optional<std::string> ClientCaller::on_bind(std::string_view statement,
                                                 std::string_view portal) {
  if (auto why = stale(statements_, statement, "prepared statement")) return why;
  const std::string name = backend_name(portal);
  // A Bind over a cursor's name fails; the cursor stays (42P03).
  if (cursors_.contains(name) || hold_cursors_.contains(name)) return std::nullopt;
  // PostgreSQL keeps the old unnamed portal too when a Bind fails before
  // making the new one.
  record(portals_, name);
  return std::nullopt;
}

std::optional<std::string> ClientCaller::on_execute(std::string_view portal) const {
  return stale_cursor(backend_name(portal));
}

void ClientCaller::on_close(char kind, std::string_view name) {
  const std::string key = backend_name(name);
  if (kind == 'S') {
    statements_.erase(key);
    return;
  }
  // Close 'P' closes a SQL cursor of that name as well.
  portals_.erase(key);
  cursors_.erase(key);
  hold_cursors_.erase(key);
}

std::optional<std::string> ClientCaller::on_prepared_names(
    const std::vector<rewriter::PreparedName>& names) {
  using Kind = rewriter::PreparedName::Kind;
  for (const auto& n : names) {
    if (n.kind == Kind::kExecute) {
      if (auto why = stale(statements_, n.name, "prepared statement")) return why;
    }
    if (n.kind == Kind::kUseCursor || n.kind == Kind::kCloseCursor) {
      if (auto why = stale_cursor(backend_name(n.name))) return why;
    }
  }
  bool ends = false;
  for (const auto& n : names) {
    const std::string name = backend_name(n.name);
    switch (n.kind) {
      case Kind::kPrepare:
        record(statements_, name);
        break;
      case Kind::kDeallocate:
        statements_.erase(name);
        break;
      case Kind::kDeallocateAll:
        statements_.clear();
        break;
      case Kind::kExecute:
      case Kind::kUseCursor:
        break;
      case Kind::kDeclareCursor:
      case Kind::kDeclareHoldCursor:
        // DECLARE over an existing portal or cursor fails (42P03).
        if (!portals_.contains(name) && !cursors_.contains(name) && !hold_cursors_.contains(name)) {
          (n.kind == Kind::kDeclareHoldCursor ? hold_cursors_ : cursors_)[name] =
              state_.generation();
        }
        break;
      case Kind::kCloseCursor:
        portals_.erase(name);
        cursors_.erase(name);
        hold_cursors_.erase(name);
        break;
      case Kind::kCloseAllCursors:
        portals_.clear();
        cursors_.clear();
        hold_cursors_.clear();
        break;
      case Kind::kEndTransaction:
        ends = true;
        break;
    }
  }
  // A Query's COMMIT / ROLLBACK, AND CHAIN too, ends a local caller (the
  // statements after it in the Query were refused by on_query). A Parse's
  // waits for its ReadyForQuery.
  if (ends && in_query_ && state_.has_local()) {
    state_.end_transaction();
    refresh();
  }
  return std::nullopt;
}

void ClientCaller::on_ready_for_query(char status) {
  if (status != 'I') return;
  const uint64_t before = state_.generation();
  state_.end_transaction();
  if (state_.generation() != before) refresh();
  // Portals and cursors without WITH HOLD end with their transaction.
  portals_.clear();
  cursors_.clear();
}

}  // namespace tenantgate::proxy
