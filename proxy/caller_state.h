// Who the client connection is acting for: the caller its statements are
// rewritten for, as start-up, SET tenantgate.token and SET LOCAL leave it.
//
// Belongs to the client connection (never to a backend: in a transaction
// pool one backend serves many callers). A pure value with no I/O.
//
//   session caller  from start-up (claimed or token) or SET tenantgate.token
//   local caller    from SET LOCAL tenantgate.token, until the transaction ends
//   no caller       after a refused token, RESET tenantgate.token, RESET ALL,
//                   DISCARD ALL: statements touching scoped tables are refused
//
// Every change of caller bumps generation(), so that what was prepared under
// one caller (a rewritten prepared statement embeds its tenant) is never
// executed under another.
#pragma once

#include <cstdint>
#include <optional>

#include "policy/identity.h"

namespace tenantgate::proxy {

class CallerState {
 public:
  CallerState() = default;
  explicit CallerState(policy::Identity session) : session_(std::move(session)) {}

  // The caller in force: the local one inside its transaction, else the
  // session one; nullptr when there is none.
  [[nodiscard]] const policy::Identity* current() const {
    if (local_) return &*local_;
    return session_ ? &*session_ : nullptr;
  }

  // SET tenantgate.token: replaces the session caller and ends a local one.
  void set_session(policy::Identity caller) {
    session_ = std::move(caller);
    local_.reset();
    ++generation_;
  }
  // SET LOCAL tenantgate.token (inside a transaction block).
  void set_local(policy::Identity caller) {
    local_ = std::move(caller);
    ++generation_;
  }
  // A refused token, RESET, DISCARD ALL: no caller at all, never the previous
  // one.
  void clear() {
    session_.reset();
    local_.reset();
    ++generation_;
  }
  // The transaction ended (ReadyForQuery 'I'): a local caller ends with it.
  void end_transaction() {
    if (local_) {
      local_.reset();
      ++generation_;
    }
  }

  [[nodiscard]] uint64_t generation() const { return generation_; }
  [[nodiscard]] bool has_local() const { return local_.has_value(); }

 private:
  std::optional<policy::Identity> session_;
  std::optional<policy::Identity> local_;
  uint64_t generation_ = 0;
};

}  // namespace tenantgate::proxy
