// What one client's backend session holds and still owes in prepared
// statements: the Bind-time parameter checks of each statement name, the
// names SQL EXECUTE may run, and the messages sent whose answers
// (ParseComplete, CloseComplete, ReadyForQuery, the error of a substituted
// message) have not come back. No I/O: the session tells it what it sends
// and receives, in order, and asks it what to allow.
//
// The rule for SQL EXECUTE (also under EXPLAIN): a statement whose
// parameters are checked at Bind can only ever run through Bind. EXECUTE of
// a name is refused when any statement the backend may hold under that name
// carries checks (confirmed or pending), or when the name is unknown (never
// prepared through this tracker, or closed, deallocated or discarded since).
// PREPARE of a checked statement is refused by the rewriter, so a checked
// statement only ever comes from a Parse, which this tracker sees. In the
// extended protocol an EXECUTE runs when its portal is executed, possibly
// after later messages have redefined the name; so a name that a Parse'd
// statement EXECUTEs can never again be Parsed with checks in this session.
//
// Checks are dropped only when the backend confirms (ParseComplete of a
// checkless statement under the name, CloseComplete of a Close): a message
// the backend skipped after an error, or a DEALLOCATE that failed, must not
// drop the checks of the statement the backend still has.
//
// Not thread-safe: owned by one session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

class StatementTracker {
 public:
  using Checks = std::vector<rewriter::ParamCheck>;
  using Names = std::vector<rewriter::PreparedName>;

  // Bounds on what a client can make the tracker remember.
  static constexpr std::size_t kMaxPendingOps = 1 << 16;
  static constexpr std::size_t kMaxStatementName = 4096;
  static constexpr std::size_t kMaxKnownNames = 1 << 16;

  // ---- Decisions (no state change) ----

  // PostgreSQL keeps statement names to NAMEDATALEN - 1 bytes: a longer name
  // would reach another statement than the one tracked under it, so it is
  // refused wherever it appears.
  static constexpr std::size_t kMaxStatementNameBytes = 63;
  [[nodiscard]] static std::optional<std::string> refuse_name(std::string_view name);

  // Why a Query whose statements use `names` must be refused (42501), or
  // nullopt. Names are taken in statement order: `PREPARE p ...; EXECUTE p`
  // is fine, `DEALLOCATE p; EXECUTE p` is not.
  [[nodiscard]] std::optional<std::string> refuse_query(const Names& names) const;
  // The same for a Parse of `statement` whose rewrite has `checks` and uses
  // `names`.
  [[nodiscard]] std::optional<std::string> refuse_parse(std::string_view statement,
                                                        const Checks& checks,
                                                        const Names& names) const;
  // The checks a Bind of `statement` must pass: those of every statement the
  // backend may bind under the name (see the .cc for which are candidates).
  [[nodiscard]] Checks checks_for(std::string_view statement) const;

  // ---- What the session sent, in order ----
  // Each returns false when a bound above is exceeded; the session must then
  // end (54000) because the bookkeeping is incomplete.

  // A Query (answered by ReadyForQuery) whose statements use `names`.
  [[nodiscard]] bool query_sent(const Names& names);
  // A Parse with its (type-annotated) checks and the names its statement uses.
  [[nodiscard]] bool parse_sent(std::string_view statement, Checks checks, const Names& names);
  // A Close: kind 'S' (statement) or 'P' (portal).
  [[nodiscard]] bool close_sent(char kind, std::string_view name);
  // A Sync, or a message the backend answers with ReadyForQuery only (the
  // function-call message's substitute).
  [[nodiscard]] bool sync_sent();
  // A message substituted for a refused one: the backend answers it with an
  // error naming the returned sequence number, to be replaced by `refusal`.
  // nullopt when a bound is exceeded.
  [[nodiscard]] std::optional<uint64_t> refusal_sent(rewriter::Refusal refusal);
  // A CopyFail whose error the backend sends within the COPY's own reply.
  [[nodiscard]] uint64_t copy_fail_sent(rewriter::Refusal refusal);

  // ---- What the backend answered ----

  // ParseComplete ('1'), CloseComplete ('3') or ReadyForQuery ('Z'). False
  // when the backend confirmed something that was not sent: the tracker can
  // no longer be trusted and the session must end.
  [[nodiscard]] bool on_backend_ack(char type);
  // The refusal to show in place of the backend's error for substituted
  // message `seq`, once.
  [[nodiscard]] std::optional<rewriter::Refusal> take_refusal(uint64_t seq);
  [[nodiscard]] bool has_refusals() const { return !refusals_.empty(); }
  // No reply owed for anything sent, and no substituted refusal outstanding.
  [[nodiscard]] bool owes_nothing() const { return pending_.empty() && refusals_.empty(); }

 private:
  struct PendingOp {
    enum class Kind {
      kParse,           // answered by ParseComplete, or skipped after an error
      kCloseStatement,  // answered by CloseComplete, or skipped
      kClosePortal,
      kRefusal,  // a substituted message; its error is replaced (seq)
      kSync,     // Sync or Query: answered by ReadyForQuery
    };
    Kind kind;
    std::string name;
    Checks checks;
    uint64_t seq = 0;
  };

  [[nodiscard]] bool push(PendingOp op);
  // Why EXECUTE of `name` must be refused when `known` says whether the
  // name is prepared at that point; nullopt when it may run.
  [[nodiscard]] std::optional<std::string> refuse_execute(const std::string& name,
                                                          bool known) const;
  // PREPARE adds a name, DEALLOCATE and DISCARD ALL remove them; EXECUTE in
  // a Parse'd statement (from_parse) marks the name executed_by_parse_.
  void apply(const Names& names, bool from_parse);

  // Confirmed checks by statement name ("" is the unnamed statement).
  std::unordered_map<std::string, Checks> checks_;
  // Names the client may EXECUTE as far as definition goes (their checks
  // still decide): prepared, and not closed or deallocated since.
  std::unordered_set<std::string> known_;
  // Names a Parse'd statement EXECUTEs: never again Parsed with checks.
  std::unordered_set<std::string> executed_by_parse_;
  std::deque<PendingOp> pending_;
  std::unordered_map<uint64_t, rewriter::Refusal> refusals_;
  uint64_t refusal_seq_ = 0;
};

}  // namespace tenantgate::proxy
