// Logging set-up: spdlog with a text or JSON line format chosen in the config.
//
// Session log lines carry the session's context (peer, principal, tenant,
// user) as key=value fields in text mode and as JSON members in JSON mode.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "config/config.h"

namespace tenantgate::proxy {

// Installs the process-wide logger (stderr) for the given level and format.
// Returns false when level is not a spdlog level name.
[[nodiscard]] bool init_logging(std::string_view level, config::LogFormat format);

// Escapes s for inclusion inside a JSON string literal.
[[nodiscard]] std::string json_escape(std::string_view s);

// The fields that identify a session in every line it logs.
class LogContext {
 public:
  void set(std::string_view key, std::string_view value);
  // "k=v k=v" (text) or "\"k\":\"v\",..." (JSON) ready to prefix a message.
  [[nodiscard]] const std::string& rendered() const { return rendered_; }

 private:
  std::string rendered_;
};

// Writes one log line with the session context and a message.
void log_line(spdlog::level::level_enum level, const LogContext& context, std::string_view message);

}  // namespace tenantgate::proxy
