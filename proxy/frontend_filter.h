// The enforcement decision for each message a client sends once the session
// relays (protocol 55.7, "Message Formats"): Query and Parse are rewritten
// under the policy, Bind parameters are checked, statement names are
// bounded, checked COPY ... FROM STDIN rows are validated, the function-call
// message is refused, and a message tenantgate does not know ends the
// session. No I/O and no logging: the caller logs refusals and performs the
// verdict.
//
// A refused Query, Parse or Bind is not answered by tenantgate itself: a
// failing substitute goes to the backend in its place, so that the backend's
// own error handling (ReadyForQuery status, skipping to Sync) is what the
// client sees; the protocol tracker replaces the backend's error with the
// refusal on the way back.
//
// Not thread-safe: one filter per session.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/identity.h"
#include "proxy/messages.h"
#include "proxy/protocol_tracker.h"
#include "proxy/relay_verdict.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// Where the filter gets the rewrite of a statement from (the session: its
// analysis pool result, the rewrite cache or the rewriter).
class StatementRewriter {
 public:
  virtual ~StatementRewriter() = default;
  // The rewrite of `sql` under the policy in force for this connection, or
  // nullopt when that policy can no longer be used with this backend (a
  // reload changed the search_path pinned at login): the session must end.
  [[nodiscard]] virtual std::optional<rewriter::RewriteResult> rewrite(std::string_view sql) = 0;
};

class FrontendFilter {
 public:
  // `identity` and `rewriter` must outlive the filter. `bypass`: forward
  // everything unchanged (only ReadyForQuery is counted).
  FrontendFilter(const policy::Identity& identity, bool bypass, std::size_t max_message_bytes,
                 StatementRewriter& rewriter);

  // Decides one whole client message of `type` with `body`; `raw` is the
  // whole message (type, length, body). Appends to `out` what to send the
  // backend and records it in `tracker`.
  Verdict filter(char type, std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                 std::string& out);

  // The message types valid after start-up (protocol 55.7).
  [[nodiscard]] static bool is_frontend_type(char type);

 private:
  enum class Substitute { kQuery, kParse, kUnnamedParse, kBind };

  Verdict query(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                std::string& out);
  Verdict parse(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                std::string& out);
  Verdict bind(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
               std::string& out);
  Verdict describe_or_close(char type, std::string_view body, std::string_view raw,
                            ProtocolTracker& tracker, std::string& out);
  Verdict function_call(ProtocolTracker& tracker, std::string& out);
  Verdict copy_data(char type, std::string_view body, std::string_view raw,
                    ProtocolTracker& tracker, std::string& out);
  // Appends the failing substitute for `refusal` and returns kRefused (or
  // kFatal when the tracker is full).
  Verdict substitute(rewriter::Refusal refusal, Substitute what, std::string_view statement,
                     ProtocolTracker& tracker, std::string& out);
  [[nodiscard]] CopyInSpec copy_in_spec(const rewriter::CopyIn& copy) const;

  const policy::Identity& identity_;
  const bool bypass_;
  const std::size_t max_message_bytes_;
  StatementRewriter& rewriter_;
  BindMessage bind_;  // the Bind being checked; kept for its vectors' memory
};

}  // namespace tenantgate::proxy
