// Statements about the caller that the proxy answers itself, never the
// backend: SET [SESSION | LOCAL] tenantgate.token, RESET tenantgate.token,
// SHOW tenantgate.tenant / tenantgate.user. Also whether a query string ends
// the caller (RESET ALL, DISCARD ALL).
//
// Pure functions over a simple Query's text; they read tokens with the
// rewriter's scanner (rewriter/literal_scanner.h), never parse, so they are
// cheap and safe on the event loop. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "proxy/startup_identity.h"  // kTokenSetting

namespace tenantgate::proxy {

enum class CallerStatementKind {
  kNone,        // nothing about the caller: the query goes to the rewriter
  kSetToken,    // SET [SESSION] tenantgate.token = '<jwt>' (also TO)
  kSetLocal,    // SET LOCAL tenantgate.token = '<jwt>'
  kReset,       // RESET tenantgate.token, SET [LOCAL] tenantgate.token TO DEFAULT
  kShowTenant,  // SHOW tenantgate.tenant
  kShowUser,    // SHOW tenantgate.user
  kMisplaced,   // names tenantgate.token in a way the proxy does not take
                // (another statement in the same string, a value that is not
                // one plain string constant, unreadable text): refused, and
                // the connection is left with no caller
};

struct CallerStatement {
  CallerStatementKind kind = CallerStatementKind::kNone;
  std::string token;    // kSetToken / kSetLocal: the string constant's value
  std::string problem;  // kMisplaced: why, for the client's error message
};

// Classifies one simple Query message's text.
[[nodiscard]] CallerStatement classify_caller_statement(std::string_view query);

// True when the query string holds RESET ALL or DISCARD ALL, which leave the
// connection with no caller; also true when the text mentions RESET or
// DISCARD and cannot be read (failing towards no caller).
[[nodiscard]] bool ends_caller(std::string_view query);

}  // namespace tenantgate::proxy
