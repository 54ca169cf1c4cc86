// Splits a byte stream into PostgreSQL protocol messages without touching a
// socket: bytes in, one message or "need more" or an error out.
//
// Implements the framing of "Message Formats" (PostgreSQL docs, protocol
// section 55.7): a typed message is Byte1 type, Int32 length (counting
// itself), body; the start-up phase packets have no type byte.
#pragma once

#include <cstddef>
#include <string_view>

namespace tenantgate::proxy {

enum class DecodeStatus {
  kMessage,   // frame is valid; consume frame.total_size bytes
  kNeedMore,  // not a whole message yet; read more and call again
  kError,     // the stream is malformed or too large; error says why
};

// frame.body views the caller's buffer: it is valid while that buffer is alive
// and unmodified, so parse (or copy) it before consuming frame.total_size bytes.
struct Frame {
  char type = 0;               // 0 for start-up phase packets
  std::string_view body;       // the bytes after the length word
  std::size_t total_size = 0;  // bytes this frame occupies in the buffer
};

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  Frame frame;
  std::string_view error;  // static text, set for kError
};

// A typed message at the front of buf. Lengths below 4 or above
// max_message_bytes (counting the type byte and length) are errors.
[[nodiscard]] DecodeResult decode_message(std::string_view buf, std::size_t max_message_bytes);

// An untyped start-up packet (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest) at the front of buf. Lengths below 8 or above max_bytes are
// errors.
[[nodiscard]] DecodeResult decode_startup_packet(std::string_view buf, std::size_t max_bytes);

}  // namespace tenantgate::proxy
