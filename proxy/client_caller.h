// The client connection's caller, whole: the caller bound at start-up, the
// caller statements tenantgate answers itself (SET / SET LOCAL / RESET
// tenantgate.token, SHOW tenantgate.tenant / user; RESET ALL and DISCARD ALL,
// forwarded, end the caller of a principal that takes tokens),
// the identity and policy the rewriter is given, and the guard that keeps a
// statement or portal prepared under one caller from running under another
// (its rewritten SQL embeds that caller's values), and the same for SQL
// cursors, which share one namespace with protocol portals. A name that is
// already taken under another caller is never taken over: the backend keeps
// the old statement, portal or cursor when the new one fails (42P05, 42P03),
// so its use stays refused until Close / DEALLOCATE / CLOSE. Names are kept
// as PostgreSQL keeps them, cut to NAMEDATALEN - 1 bytes.
//
// Belongs to the client connection, never to a backend. No I/O: each hook
// returns what the connection must send or refuse. Not thread-safe (one per
// connection, used on its loop).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "identity/token_authority.h"
#include "policy/app_catalog.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "proxy/caller_binding.h"
#include "proxy/caller_state.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

class ClientCaller {
 public:
  // `config`, `principal` and `tokens` (null without [identity.token]) must
  // outlive this object.
  ClientCaller(const config::Config& config, const config::Principal& principal,
               const identity::TokenAuthority* tokens)
      : config_(config), principal_(principal), tokens_(tokens) {}

  // The connection's database and app catalog, kept across caller changes.
  void set_database(std::string database);
  void set_catalog(std::shared_ptr<const policy::AppCatalog> catalog);

  // Start-up: the caller named by a token or claimed parameters.
  void bind(policy::Identity caller);

  // The identity to rewrite with: the caller's tenant, user and claims plus
  // the connection's database and catalog. Without a caller the tenant is
  // empty and policy_for() denies every scoped table, so it is never embedded.
  [[nodiscard]] const policy::Identity& identity() const { return effective_; }
  [[nodiscard]] bool has_caller() const { return state_.current() != nullptr; }
  [[nodiscard]] std::shared_ptr<const policy::Policy> policy_for(
      const std::shared_ptr<const policy::Policy>& policy) const;
  [[nodiscard]] uint64_t generation() const { return state_.generation(); }

  // A simple Query.
  struct QueryOutcome {
    enum class Kind {
      kRewrite,  // not a caller statement: rewrite and forward as usual
      kAnswer,   // answered here: send `answer`, then ReadyForQuery
      kRefuse,   // refused with `refusal`; the connection has no caller now,
                 // except for a transaction end followed by more statements
                 // under a local caller (nothing was sent; it stays)
    };
    Kind kind = Kind::kRewrite;
    std::string answer;
    CallerRefusal refusal;
    std::string log;  // for the connection's log (never the token); may be empty
  };
  [[nodiscard]] QueryOutcome on_query(std::string_view sql, char transaction_status,
                                      bool backend_idle, int64_t now_s);

  // A Parse: token statements are taken only as a simple Query. A refusal
  // leaves no caller. DISCARD ALL ends the caller.
  [[nodiscard]] std::optional<CallerRefusal> on_parse(std::string_view statement,
                                                      std::string_view sql);

  // The prepared-statement guard. Each returns why the message is refused
  // (42501), or nullopt.
  [[nodiscard]] std::optional<std::string> on_bind(std::string_view statement,
                                                   std::string_view portal);
  [[nodiscard]] std::optional<std::string> on_execute(std::string_view portal) const;
  void on_close(char kind, std::string_view name);
  // SQL PREPARE / EXECUTE / DEALLOCATE, DECLARE / FETCH / MOVE / CLOSE /
  // WHERE CURRENT OF, and transaction ends of a Query (or Parse) about to be
  // forwarded. A COMMIT or ROLLBACK (AND CHAIN too) in a Query ends a local
  // caller.
  [[nodiscard]] std::optional<std::string> on_prepared_names(
      const std::vector<rewriter::PreparedName>& names);

  // ReadyForQuery from the backend: a local caller ends with its transaction.
  void on_ready_for_query(char status);

 private:
  // Principals with identity = "claimed" keep the caller they started with
  // for the connection's life: RESET ALL and DISCARD ALL do not end it.
  [[nodiscard]] bool takes_tokens() const {
    return principal_.identity != config::IdentitySource::kClaimed;
  }
  void refresh();
  // A use of `name` (portal or cursor) made under another caller, if any.
  std::optional<std::string> stale_cursor(const std::string& name) const;
  // Records `name` under the current caller unless another caller holds it.
  void record(std::unordered_map<std::string, uint64_t>& map, const std::string& name);
  void clear(std::string_view why);
  std::optional<std::string> stale(const std::unordered_map<std::string, uint64_t>& map,
                                   std::string_view name, std::string_view what) const;

  const config::Config& config_;
  const config::Principal& principal_;
  const identity::TokenAuthority* tokens_;
  CallerState state_;
  std::string database_;
  std::shared_ptr<const policy::AppCatalog> catalog_;
  policy::Identity effective_;
  // The caller generation each prepared statement and portal was made under.
  std::unordered_map<std::string, uint64_t> statements_;
  std::unordered_map<std::string, uint64_t> portals_;
  // SQL cursors by DECLARE; WITH HOLD ones outlive their transaction.
  std::unordered_map<std::string, uint64_t> cursors_;
  std::unordered_map<std::string, uint64_t> hold_cursors_;
  // The last message filtered was a simple Query (not a Parse).
  bool in_query_ = false;
};

// A statement, portal or cursor name as PostgreSQL keeps it: at most
// NAMEDATALEN - 1 = 63 bytes, cut at a UTF-8 character boundary.
[[nodiscard]] std::string backend_name(std::string_view name);

// Whether a statement other than the last of `sql` ends the transaction
// (COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION): the statements after it
// would run after a local caller ended. A scanner error counts as true.
[[nodiscard]] bool ends_transaction_before_last(std::string_view sql);

}  // namespace tenantgate::proxy
