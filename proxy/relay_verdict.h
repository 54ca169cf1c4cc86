// The one result type of the relay path: what to do with one message, in
// either direction, as decided by the frontend filter (frontend_filter.h) or
// the protocol tracker (protocol_tracker.h); and Fatal, why a connection
// ended before relaying. Plain data, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace tenantgate::proxy {

// The FATAL ErrorResponse a session ends with.
struct Fatal {
  std::string sqlstate;
  std::string message;
};

struct [[nodiscard]] Verdict {
  enum class Kind {
    kForward,    // frontend: send what the filter appended to `out` (may be
                 // nothing, or a rewritten message); backend: send the message
    kReplace,    // backend: send `bytes` in place of the message
    kRefused,    // frontend: a failing substitute was appended to `out`; log
                 // the refusal (sqlstate, message, statement) and go on
    kTerminate,  // frontend: Terminate was appended to `out`; send it and end
    kFatal,      // end the session with FATAL sqlstate/message; send nothing
  };

  Kind kind = Kind::kForward;
  std::string sqlstate;        // kRefused, kFatal
  std::string message;         // kRefused, kFatal
  std::string bytes;           // kReplace
  std::string_view statement;  // kRefused: the refused SQL text (views the message), or empty

  static Verdict forward() { return {}; }
  static Verdict terminate() { return Verdict{Kind::kTerminate, {}, {}, {}, {}}; }
  static Verdict replace(std::string bytes) {
    return Verdict{Kind::kReplace, {}, {}, std::move(bytes), {}};
  }
  static Verdict refused(std::string sqlstate, std::string message,
                         std::string_view statement = {}) {
    return Verdict{Kind::kRefused, std::move(sqlstate), std::move(message), {}, statement};
  }
  static Verdict fatal(std::string sqlstate, std::string message) {
    return Verdict{Kind::kFatal, std::move(sqlstate), std::move(message), {}, {}};
  }

  [[nodiscard]] bool is_fatal() const { return kind == Kind::kFatal; }
};

}  // namespace tenantgate::proxy
