// What one backend connection still owes its client, without I/O: the
// replies due for the messages sent (ParseComplete, CloseComplete, the
// errors of substituted refusals, ReadyForQuery), the transaction status of
// the last ReadyForQuery, whether an extended-protocol batch is open (no Sync
// yet), the COPY mode the backend is in, and the state of a checked
// COPY ... FROM STDIN.
//
// The frontend filter (frontend_filter.h) records here what it sends, in
// order; the relay feeds every backend message to on_backend(), which says
// whether to forward it, replace it (the backend's error for a substituted
// refusal becomes the refusal) or end the session (a reply nothing asked
// for). idle_and_owes_nothing() is the point where a backend could be given
// to another client.
//
// Prepared-statement names and their Bind-time checks are kept by the
// StatementTracker inside (statement_tracker.h).
//
// Not thread-safe: owned by one session (later: by one pooled backend).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/copy_in_validator.h"
#include "proxy/relay_verdict.h"
#include "proxy/statement_tracker.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

class ProtocolTracker {
 public:
  // The COPY sub-protocol the backend entered (protocol 55.2.6): from its
  // CopyInResponse / CopyOutResponse / CopyBothResponse to the next
  // ReadyForQuery.
  enum class BackendCopy { kNone, kIn, kOut, kBoth };

  // `refusal_token` marks the failing statements substituted for refused
  // messages (random per session, so that a client cannot forge one).
  // `bypass`: statements are not checked; only ReadyForQuery is counted.
  ProtocolTracker(std::string refusal_token, bool bypass);

  // ---- What the frontend sent (called by the frontend filter) ----
  // The bool results are false when a bound of the StatementTracker is
  // exceeded; the session must then end (54000).

  // A message that opens or continues an extended-protocol batch.
  void extended_sent() { extended_open_ = true; }
  // A Query whose statements use `names` (answered by ReadyForQuery).
  [[nodiscard]] bool query_sent(const StatementTracker::Names& names);
  // A Sync (closes the batch).
  [[nodiscard]] bool sync_sent();
  // A message answered by ReadyForQuery only, carrying no statements: a
  // refused Query's or FunctionCall's substitute.
  [[nodiscard]] bool refused_query_sent();
  // In bypass mode: any message; counts those answered by ReadyForQuery.
  void bypass_sent(char type);
  // Registers `refusal` and returns the marker text of the failing statement
  // to send in its place (the backend's error will name it); nullopt when a
  // bound is exceeded.
  [[nodiscard]] std::optional<std::string> refusal_marker(rewriter::Refusal refusal);
  // The same for a CopyFail whose error arrives within the COPY's reply.
  [[nodiscard]] std::string copy_fail_marker(rewriter::Refusal refusal);
  // A Query starting COPY ... FROM STDIN whose rows must be checked; call
  // after query_sent() of that Query.
  void copy_in_started(CopyInSpec spec);
  // The client ended or aborted the COPY (or the tracker gave up on its data).
  void copy_in_finished() { copy_in_.reset(); }

  // ---- What the backend answered ----

  // Updates the state for one backend message and says what to do with it.
  Verdict on_backend(char type, std::string_view body);

  // ---- Queries ----

  [[nodiscard]] bool bypass() const { return bypass_; }
  [[nodiscard]] bool extended_open() const { return extended_open_; }
  // The status of the last ReadyForQuery: 'I', 'T' or 'E'.
  [[nodiscard]] char transaction_status() const { return transaction_status_; }
  // Query/Sync/FunctionCall sent whose ReadyForQuery has not come back.
  [[nodiscard]] int owed_ready_for_query() const { return pending_syncs_; }
  // The checked COPY in progress, or null.
  [[nodiscard]] CopyInValidator* copy_in() { return copy_in_ ? &*copy_in_ : nullptr; }
  [[nodiscard]] bool copy_in_active() const { return copy_in_.has_value(); }
  // A row was refused: CopyFail went to the backend, the rest is dropped.
  [[nodiscard]] bool copy_in_failed() const { return copy_in_failed_; }
  void set_copy_in_failed() { copy_in_failed_ = true; }
  [[nodiscard]] BackendCopy backend_copy() const { return backend_copy_; }
  // Outside any transaction with no reply owed, no batch open, no COPY.
  [[nodiscard]] bool idle_and_owes_nothing() const;

  [[nodiscard]] StatementTracker& statements() { return statements_; }
  [[nodiscard]] const StatementTracker& statements() const { return statements_; }

 private:
  // The refusal replacing the backend's error `body`, if it is the error of
  // a substituted message.
  [[nodiscard]] std::optional<std::string> refusal_reply(std::string_view body);
  [[nodiscard]] std::string marker(uint64_t seq) const;

  const std::string refusal_token_;
  const bool bypass_;
  StatementTracker statements_;
  int pending_syncs_ = 0;
  char transaction_status_ = 'I';
  // True while extended-protocol messages have been sent without a Sync.
  bool extended_open_ = false;
  // COPY ... FROM STDIN into a scoped table: from the Query until the
  // backend's ReadyForQuery for it.
  std::optional<CopyInValidator> copy_in_;
  bool copy_in_failed_ = false;
  int copy_in_zs_before_ = 0;  // ReadyForQuery messages due before the COPY's own
  BackendCopy backend_copy_ = BackendCopy::kNone;
};

}  // namespace tenantgate::proxy
