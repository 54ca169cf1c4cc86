// The start-up phase packets a client sends before authentication:
// StartupMessage, SSLRequest, GSSENCRequest and CancelRequest
// (protocol 55.7, "StartupMessage", "SSLRequest", "GSSENCRequest", "CancelRequest").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tenantgate::proxy {

inline constexpr int32_t kProtocolVersion3 = 196608;  // 3.0
inline constexpr int32_t kCancelRequestCode = 80877102;
inline constexpr int32_t kSslRequestCode = 80877103;
inline constexpr int32_t kGssEncRequestCode = 80877104;
// PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
inline constexpr std::size_t kMaxStartupPacketBytes = 10000;

using StartupParams = std::vector<std::pair<std::string, std::string>>;

struct StartupPacket {
  enum class Kind { kStartup, kSsl, kGssEnc, kCancel };
  Kind kind = Kind::kStartup;
  // kStartup only: the version asked for, any 3.x. Above 3.0 the caller answers
  // with NegotiateProtocolVersion (messages.h) and speaks 3.0, as PostgreSQL does.
  int32_t protocol = kProtocolVersion3;
  StartupParams params;    // kStartup only, in the client's order
  int32_t cancel_pid = 0;  // kCancel only
  int32_t cancel_key = 0;  // kCancel only
};

struct StartupParseError {
  std::string message;  // says exactly what was wrong
};

// Parses the body of a start-up packet (everything after the length word).
// Rejects: unknown codes, protocol majors other than 3, a missing final NUL,
// a parameter name without value, duplicate parameter names, empty names,
// a missing "user" parameter.
[[nodiscard]] std::variant<StartupPacket, StartupParseError> parse_startup_packet(
    std::string_view body);

// Encodes a StartupMessage (protocol 3.0) with these parameters.
[[nodiscard]] std::string encode_startup_message(const StartupParams& params);
[[nodiscard]] std::string encode_cancel_request(int32_t pid, int32_t key);

// The value of a parameter, or nullptr.
[[nodiscard]] const std::string* find_param(const StartupParams& params, std::string_view name);

}  // namespace tenantgate::proxy
