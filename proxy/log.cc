#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>

namespace tenantgate::proxy {
namespace {

std::atomic<bool> g_json{false};

}  // namespace

bool init_logging(std::string_view level, config::LogFormat format) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_logger_mt("tenantgate");
  logger->set_level(lvl);
  const bool json = format == config::LogFormat::kJson;
  g_json = json;
  // In JSON mode the message itself is already a sequence of JSON members.
  logger->set_pattern(
      json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})" : "%Y-%m-%dT%H:%M:%S.%fZ %l %v",
      spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

void LogContext::set(std::string_view key, std::string_view value) {
  if (g_json) {
    rendered_ += fmt::format("\"{}\":\"{}\",", key, json_escape(value));
  } else {
    // Values are quoted when they could be confused with the separator.
    const bool quote = value.empty() || value.find_first_of(" =\"") != std::string_view::npos;
    rendered_ += quote ? fmt::format("{}=\"{}\" ", key, json_escape(value))
                       : fmt::format("{}={} ", key, value);
  }
}

void log_line(spdlog::level::level_enum level, const LogContext& context,
              std::string_view message) {
  if (!spdlog::should_log(level)) return;
  if (g_json) {
    spdlog::log(level, "{}\"msg\":\"{}\"", context.rendered(), json_escape(message));
  } else {
    spdlog::log(level, "{}{}", context.rendered(), message);
  }
}

}  // namespace tenantgate::proxy
