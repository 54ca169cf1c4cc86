// The replies of reshaped writes (rewriter.h ReshapedWrite), restored to
// those of the statement the client wrote: an INSERT or UPDATE of a table
// with row policies reaches the backend as `WITH tg_written AS (...) SELECT
// ...`, so the backend answers it as a SELECT. For such a statement this
// replaces CommandComplete's `SELECT n` with `INSERT 0 n` / `UPDATE n`
// (protocol 55.7, CommandComplete), drops RowDescription and DataRow when
// the client wrote no RETURNING and answers Describe with NoData instead,
// and turns the policy check's error into row-level security's 42501.
//
// To know which statement a backend message belongs to, it keeps, in order,
// every message sent whose replies it must follow (Parse, Bind, Describe,
// Execute, Close, Sync, Query: protocol 55.2.3, "Extended Query") and which
// statement names and portals hold reshaped writes, as the backend confirms
// them (ParseComplete, BindComplete, CloseComplete). A reply is changed only
// when the statement it answers is known to be reshaped; the error of any
// other statement passes as it is, whatever its text, so a client can make
// only its own reshaped write's error look like a policy violation (it sees
// a 42501 of its own making, and nothing else changes).
//
// Pure: no I/O. Not thread-safe: owned by one ProtocolTracker.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/relay_verdict.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

class ReshapedReplies {
 public:
  using Shape = std::optional<rewriter::ReshapedWrite>;  // nullopt: a statement as written

  // Bound on messages sent whose replies have not come back, and on named
  // portals remembered within a transaction; past it the session must end.
  static constexpr std::size_t kMaxOwed = 1 << 18;
  static constexpr std::size_t kMaxPortals = 1 << 16;

  // ---- What the frontend sent, in order; false past a bound ----
  // `statements`: Rewritten::reshaped (one entry per statement, or empty).
  [[nodiscard]] bool query_sent(std::vector<Shape> statements);
  [[nodiscard]] bool sync_sent();
  [[nodiscard]] bool parse_sent(std::string_view statement, Shape shape);
  [[nodiscard]] bool bind_sent(std::string_view portal, std::string_view statement);
  // kind: 'S' (statement) or 'P' (portal), as in the Describe/Close message.
  [[nodiscard]] bool describe_sent(char kind, std::string_view name);
  [[nodiscard]] bool close_sent(char kind, std::string_view name);
  [[nodiscard]] bool execute_sent(std::string_view portal);

  // ---- What the backend answered ----
  // What to do with one backend message: forward it, replace it (a new
  // CommandComplete, NoData, the 42501 error) or drop it (replace with
  // nothing). Every backend message must pass through here, in order.
  Verdict on_backend(char type, std::string_view body);

  // Whether an Execute of `portal` sent now runs a reshaped write that the
  // client wrote without RETURNING, as far as the messages sent tell (the
  // newest Bind of the portal and the newest Parse of its statement, whether
  // or not the backend has confirmed them yet). Such an Execute must not
  // carry a row limit: the client expects CommandComplete, not
  // PortalSuspended, and PostgreSQL runs its write to completion anyway.
  [[nodiscard]] bool runs_write_without_rows(std::string_view portal) const;

  // No reply owed for anything sent.
  [[nodiscard]] bool owes_nothing() const { return owed_.empty(); }

 private:
  struct Owed {
    enum class Kind { kParse, kBind, kDescribe, kExecute, kClose, kSync, kQuery };
    Kind kind = Kind::kSync;
    char target = 'S';              // Describe, Close: 'S' statement, 'P' portal
    std::string name;               // statement (Parse, Describe/Close 'S') or portal
    std::string statement;          // Bind: the statement it binds
    Shape shape;                    // Parse: the new statement's; Execute/Describe: resolved
    bool resolved = false;          // Execute/Describe: shape looked up at the first reply
    std::vector<Shape> statements;  // Query: per statement
    std::size_t next = 0;           // Query: the statement now answering
  };

  [[nodiscard]] bool push(Owed op);
  // The shape of the statement the head of the queue is answering now.
  [[nodiscard]] Shape current();
  // After an ErrorResponse the backend skips to the next Sync (extended
  // protocol) or ends the Query: drop what it will not answer.
  void skip_after_error();

  std::deque<Owed> owed_;
  // Reshaped statements and portals only: a name absent here is answered as
  // written.
  std::unordered_map<std::string, rewriter::ReshapedWrite> statements_;
  std::unordered_map<std::string, rewriter::ReshapedWrite> portals_;
};

// Pure helpers, exposed for their tests.
// CommandComplete body `SELECT n` -> the whole message with the write's tag;
// nullopt when the body is not `SELECT n`.
[[nodiscard]] std::optional<std::string> reshaped_command_complete(
    std::string_view body, const rewriter::ReshapedWrite& write);
// The ErrorResponse body of a failed policy check -> the whole 42501 message
// row-level security sends; nullopt for any other error.
[[nodiscard]] std::optional<std::string> policy_violation_error(std::string_view body);

}  // namespace tenantgate::proxy
