#include "proxy/frame_decoder.h"

#include <cstdint>

namespace tenantgate::proxy {
namespace {

// The length word is a signed Int32 on the wire; anything with the top bit set
// is negative and therefore below every minimum.
int64_t read_length(std::string_view buf, std::size_t at) {
  const auto b = [&](std::size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(buf[at + i]));
  };
  const uint32_t u = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  return static_cast<int32_t>(u);
}

DecodeResult error(std::string_view why) {
  DecodeResult r;
  r.status = DecodeStatus::kError;
  r.error = why;
  return r;
}

}  // namespace

DecodeResult decode_message(std::string_view buf, std::size_t max_message_bytes) {
  if (buf.size() < 5) return {};
  const int64_t length = read_length(buf, 1);
  if (length < 4) return error("message length is below the minimum 4");
  // The type byte is not counted by the length word but is part of the frame.
  const uint64_t total = static_cast<uint64_t>(length) + 1;
  if (total > max_message_bytes) return error("message length exceeds the maximum message size");
  if (buf.size() < total) return {};
  DecodeResult r;
  r.status = DecodeStatus::kMessage;
  r.frame.type = buf[0];
  r.frame.body = buf.substr(5, static_cast<std::size_t>(length) - 4);
  r.frame.total_size = static_cast<std::size_t>(total);
  return r;
}

DecodeResult decode_startup_packet(std::string_view buf, std::size_t max_bytes) {
  if (buf.size() < 4) return {};
  const int64_t length = read_length(buf, 0);
  if (length < 8) return error("start-up packet length is below the minimum 8");
  if (static_cast<uint64_t>(length) > max_bytes) {
    return error("start-up packet length exceeds the maximum start-up packet size");
  }
  if (buf.size() < static_cast<uint64_t>(length)) return {};
  DecodeResult r;
  r.status = DecodeStatus::kMessage;
  r.frame.type = 0;
  r.frame.body = buf.substr(4, static_cast<std::size_t>(length) - 4);
  r.frame.total_size = static_cast<std::size_t>(length);
  return r;
}

}  // namespace tenantgate::proxy
