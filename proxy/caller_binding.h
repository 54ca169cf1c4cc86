// Deciding who the caller is: at start-up (a signed token, or the claimed
// parameters) and for each statement about the caller (caller_statement.h).
//
// Pure decisions: the token authority verifies (thread-safe, no I/O) and the
// clock is a parameter. The client connection applies what they return to its
// CallerState and answers the client; nothing here touches a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "config/config.h"
#include "identity/token_authority.h"
#include "policy/identity.h"
#include "proxy/caller_statement.h"
#include "proxy/startup_identity.h"

namespace tenantgate::proxy {

struct CallerRefusal {
  std::string sqlstate;  // 28000 at start-up; 42501, 25P01, 25P02 on SET
  std::string message;   // names the check; never contains the token
};

// Start-up, decided from a token or from its absence.
struct TokenCaller {
  std::optional<policy::Identity> caller;  // nullopt: no caller until a token is set
};
// Start-up without a token for a principal that claims its caller: the
// claimed parameters decide, as before tokens existed.
struct ClaimedCaller {};

[[nodiscard]] std::variant<TokenCaller, ClaimedCaller, CallerRefusal> startup_caller(
    const config::Principal& principal, const config::Identity& settings,
    const StartupIdentity& given, const identity::TokenAuthority* tokens, int64_t now_s);

// What to do with a caller statement.
struct CallerAction {
  enum class Kind {
    kSetSession,  // SET tenantgate.token: `caller` for the session
    kSetLocal,    // SET LOCAL: `caller` until the transaction ends
    kClear,       // RESET: no caller
    kShow,        // SHOW tenantgate.tenant / user: one row, `show_value`
    kRefuse,      // `refusal`; the connection is left with no caller
  };
  Kind kind = Kind::kRefuse;
  policy::Identity caller;
  std::string tag;  // CommandComplete: "SET", "RESET", "SHOW"
  std::string show_name;
  std::optional<std::string> show_value;  // NULL without a caller
  CallerRefusal refusal;
};

struct CallerContext {
  const config::Principal* principal = nullptr;
  const config::Identity* settings = nullptr;
  const identity::TokenAuthority* tokens = nullptr;  // null: no [identity.token]
  char transaction_status = 'I';                     // of the last ReadyForQuery: I, T or E
  bool backend_idle = true;                          // every earlier query has been answered
  const policy::Identity* current = nullptr;         // the caller in force
  int64_t now_s = 0;
};

// `statement.kind` must not be kNone.
[[nodiscard]] CallerAction decide_caller_statement(const CallerStatement& statement,
                                                   const CallerContext& context);

// Whether `principal` may act for `tenant` (canonical, of `type`).
[[nodiscard]] bool tenant_allowed(const config::Principal& principal, const std::string& tenant,
                                  policy::ValueType type);

}  // namespace tenantgate::proxy
