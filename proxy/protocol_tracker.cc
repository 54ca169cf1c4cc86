#include "proxy/protocol_tracker.h"

#include <fmt/format.h>

#include "proxy/messages.h"

namespace tenantgate::proxy {

ProtocolTracker::ProtocolTracker(std::string refusal_token, bool bypass)
    : refusal_token_(std::move(refusal_token)), bypass_(bypass) {}

bool ProtocolTracker::query_sent(const StatementTracker::Names& names) {
  ++pending_syncs_;
  return statements_.query_sent(names);
}

bool ProtocolTracker::sync_sent() {
  extended_open_ = false;
  ++pending_syncs_;
  return statements_.sync_sent();
}

bool ProtocolTracker::refused_query_sent() {
  ++pending_syncs_;
  return statements_.sync_sent();
}

void ProtocolTracker::bypass_sent(char type) {
  if (type == 'Q' || type == 'S' || type == 'F') ++pending_syncs_;
}

std::string ProtocolTracker::marker(uint64_t seq) const {
  return fmt::format("tenantgate_refusal_{}_{}", refusal_token_, seq);
}

std::optional<std::string> ProtocolTracker::refusal_marker(rewriter::Refusal refusal) {
  const std::optional<uint64_t> seq = statements_.refusal_sent(std::move(refusal));
  if (!seq) return std::nullopt;
  return marker(*seq);
}

std::string ProtocolTracker::copy_fail_marker(rewriter::Refusal refusal) {
  return marker(statements_.copy_fail_sent(std::move(refusal)));
}

void ProtocolTracker::copy_in_started(CopyInSpec spec) {
  copy_in_.emplace(std::move(spec));
  copy_in_failed_ = false;
  copy_in_zs_before_ = pending_syncs_ - 1;  // ReadyForQuery of earlier messages
}

Verdict ProtocolTracker::on_backend(char type, std::string_view body) {
  switch (type) {
    case 'G':  // CopyInResponse
      backend_copy_ = BackendCopy::kIn;
      return Verdict::forward();
    case 'H':  // CopyOutResponse
      backend_copy_ = BackendCopy::kOut;
      return Verdict::forward();
    case 'W':  // CopyBothResponse
      backend_copy_ = BackendCopy::kBoth;
      return Verdict::forward();
    case 'Z':  // ReadyForQuery
      backend_copy_ = BackendCopy::kNone;
      if (auto status = parse_ready_for_query(body)) transaction_status_ = *status;
      if (copy_in_) {
        if (copy_in_zs_before_ > 0) {
          --copy_in_zs_before_;
        } else {
          copy_in_.reset();  // the COPY's own ReadyForQuery: it is over
        }
      }
      if (pending_syncs_ > 0) --pending_syncs_;
      [[fallthrough]];
    case '1':  // ParseComplete
    case '3':  // CloseComplete
      if (!bypass_ && !statements_.on_backend_ack(type)) {
        // The backend confirmed something tenantgate did not send: the
        // statement bookkeeping can no longer be trusted.
        return Verdict::fatal("08006",
                              fmt::format("unexpected {} from the backend",
                                          type == '1' ? "ParseComplete" : "CloseComplete"));
      }
      return Verdict::forward();
    case 'E':  // ErrorResponse
      if (statements_.has_refusals()) {
        if (auto reply = refusal_reply(body)) return Verdict::replace(std::move(*reply));
      }
      if (!bypass_) {
        if (auto redacted = redact_exclusion_detail(body)) {
          return Verdict::replace(std::move(*redacted));
        }
      }
      return Verdict::forward();
    default:
      return Verdict::forward();
  }
}

std::optional<std::string> ProtocolTracker::refusal_reply(std::string_view body) {
  auto fields = parse_error_fields(body);
  if (!fields) return std::nullopt;
  const std::string prefix = "tenantgate_refusal_" + refusal_token_ + "_";
  auto at = fields->message.find(prefix);
  if (at == std::string::npos) return std::nullopt;
  uint64_t seq = 0;
  for (std::size_t i = at + prefix.size();
       i < fields->message.size() && fields->message[i] >= '0' && fields->message[i] <= '9'; ++i) {
    seq = seq * 10 + static_cast<uint64_t>(fields->message[i] - '0');
  }
  auto refusal = statements_.take_refusal(seq);
  if (!refusal) return std::nullopt;
  return error_response("ERROR", refusal->sqlstate, refusal->message);
}

bool ProtocolTracker::idle_and_owes_nothing() const {
  return transaction_status_ == 'I' && pending_syncs_ == 0 && !extended_open_ && !copy_in_ &&
         backend_copy_ == BackendCopy::kNone && statements_.owes_nothing();
}

}  // namespace tenantgate::proxy
