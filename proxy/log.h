// Logging set-up: spdlog with a text or JSON line format chosen in the config.
//
// Session log lines carry the session's context (peer, principal, tenant,
// user) as key=value fields in text mode and as JSON members in JSON mode.
//
// Every value and every message goes through one escaping function before it
// reaches the sink, because most of them hold text a client chose (a start-up
// user name, a claimed tenant, a quoted identifier in a refused statement).
// A text line is `<time> <level> key=value ... msg=<message>`: no value can
// hold a line break, a terminal escape or an unbalanced quote, so a client
// cannot forge a line or a field.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "config/config.h"

namespace tenantgate::proxy {

// Installs the process-wide logger (stderr) for the given level and format.
// Returns false when level is not a spdlog level name.
[[nodiscard]] bool init_logging(std::string_view level, config::LogFormat format);

// Escapes s for inclusion inside a JSON string literal. Control characters
// (C0, DEL, C1) and the Unicode line separators and bidirectional overrides
// become \uXXXX; bytes that are not valid UTF-8 become U+FFFD.
[[nodiscard]] std::string json_escape(std::string_view s);

// Escapes s for the text log: `\` and `"` get a backslash; \n, \r and \t are
// written as such; other control bytes, DEL, bytes of C1 controls, line
// separators and bidirectional overrides, and bytes that are not valid UTF-8
// are written as \xNN. Printable UTF-8 (accents, CJK) is kept.
[[nodiscard]] std::string text_escape(std::string_view s);

// A value as it appears after `key=` in the text log: text_escape(s), in
// double quotes when s is empty, holds a space, '=' or '"', or needed escaping.
[[nodiscard]] std::string text_value(std::string_view s);

// The fields that identify a session in every line it logs.
class LogContext {
 public:
  void set(std::string_view key, std::string_view value);
  // "k=v k=v " (text) or "\"k\":\"v\"," (JSON) ready to prefix a message.
  [[nodiscard]] const std::string& rendered() const { return rendered_; }

 private:
  std::string rendered_;
};

// Writes one log line with the session context and a message. The message is
// escaped like any value (text: the last field, msg=...), so it may embed
// client-supplied text.
void log_line(spdlog::level::level_enum level, const LogContext& context, std::string_view message);

}  // namespace tenantgate::proxy
