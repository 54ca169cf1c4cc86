#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>

namespace tenantgate::proxy {
namespace {

std::atomic<bool> g_json{false};

// One UTF-8 sequence at the front of s: its code point and length, or a
// length of 0 when the first byte does not start a valid sequence (overlong
// forms, surrogates and values above U+10FFFF are invalid).
struct CodePoint {
  char32_t value = 0;
  std::size_t length = 0;
};

CodePoint decode_utf8(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return {b0, 1};
  std::size_t length;
  char32_t value;
  char32_t min;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2, value = b0 & 0x1f, min = 0x80;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3, value = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return {};
  }
  if (s.size() < length) return {};
  for (std::size_t i = 1; i < length; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if ((b & 0xc0) != 0x80) return {};
    value = (value << 6) | (b & 0x3f);
  }
  if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return {};
  return {value, length};
}

// Code points that a terminal or an editor acts on instead of showing: C0 and
// C1 controls, DEL, line and paragraph separators, bidirectional embeddings,
// overrides and isolates, and the byte-order mark.
bool is_hidden(char32_t c) {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x200b && c <= 0x200f) ||
         (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

void append_hex_bytes(std::string& out, std::string_view bytes) {
  for (unsigned char b : bytes) out += fmt::format("\\x{:02x}", b);
}

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
  while (!s.empty()) {
    const CodePoint cp = decode_utf8(s);
    if (cp.length == 0) {
      out += "\\ufffd";
      s.remove_prefix(1);
      continue;
    }
    switch (cp.value) {
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
        if (is_hidden(cp.value)) {
          out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp.value));
        } else {
          out.append(s.substr(0, cp.length));
        }
    }
    s.remove_prefix(cp.length);
  }
  return out;
}

std::string text_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  while (!s.empty()) {
    const CodePoint cp = decode_utf8(s);
    if (cp.length == 0) {
      append_hex_bytes(out, s.substr(0, 1));
      s.remove_prefix(1);
      continue;
    }
    switch (cp.value) {
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
        if (is_hidden(cp.value)) {
          append_hex_bytes(out, s.substr(0, cp.length));
        } else {
          out.append(s.substr(0, cp.length));
        }
    }
    s.remove_prefix(cp.length);
  }
  return out;
}

std::string text_value(std::string_view s) {
  std::string escaped = text_escape(s);
  const bool quote =
      s.empty() || escaped.size() != s.size() || s.find_first_of(" =\"") != std::string_view::npos;
  if (!quote) return escaped;
  return "\"" + escaped + "\"";
}

void LogContext::set(std::string_view key, std::string_view value) {
  if (g_json) {
    rendered_ += fmt::format("\"{}\":\"{}\",", json_escape(key), json_escape(value));
  } else {
    rendered_ += fmt::format("{}={} ", text_escape(key), text_value(value));
  }
}

void log_line(spdlog::level::level_enum level, const LogContext& context,
              std::string_view message) {
  if (!spdlog::should_log(level)) return;
  if (g_json) {
    spdlog::log(level, "{}\"msg\":\"{}\"", context.rendered(), json_escape(message));
  } else {
    spdlog::log(level, "{}msg={}", context.rendered(), text_value(message));
  }
}

}  // namespace tenantgate::proxy
