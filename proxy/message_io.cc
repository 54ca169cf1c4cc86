#include "proxy/message_io.h"

#include <utility>

namespace tenantgate::proxy {

std::optional<uint8_t> MessageReader::u8() {
  auto b = bytes(1);
  if (!b) return std::nullopt;
  return static_cast<uint8_t>((*b)[0]);
}

std::optional<int16_t> MessageReader::i16() {
  auto b = bytes(2);
  if (!b) return std::nullopt;
  const auto u =
      static_cast<uint16_t>((static_cast<uint8_t>((*b)[0]) << 8) | static_cast<uint8_t>((*b)[1]));
  return static_cast<int16_t>(u);
}

std::optional<int32_t> MessageReader::i32() {
  auto b = bytes(4);
  if (!b) return std::nullopt;
  uint32_t u = 0;
  for (char c : *b) u = (u << 8) | static_cast<uint8_t>(c);
  return static_cast<int32_t>(u);
}

std::optional<std::string_view> MessageReader::cstr() {
  if (!ok_) return std::nullopt;
  const auto nul = rest_.find('\0');
  if (nul == std::string_view::npos) {
    ok_ = false;
    return std::nullopt;
  }
  const auto s = rest_.substr(0, nul);
  rest_.remove_prefix(nul + 1);
  return s;
}

std::optional<std::string_view> MessageReader::bytes(std::size_t n) {
  if (!ok_ || rest_.size() < n) {
    ok_ = false;
    return std::nullopt;
  }
  const auto s = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return s;
}

MessageWriter::MessageWriter(char type) : MessageWriter(type, std::string()) {}

MessageWriter::MessageWriter(char type, std::string prefix) : buf_(std::move(prefix)) {
  if (type != 0) buf_.push_back(type);
  length_at_ = buf_.size();
  buf_.append(4, '\0');
}

MessageWriter& MessageWriter::u8(uint8_t v) {
  buf_.push_back(static_cast<char>(v));
  return *this;
}

MessageWriter& MessageWriter::i16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  buf_.push_back(static_cast<char>(u >> 8));
  buf_.push_back(static_cast<char>(u & 0xff));
  return *this;
}

MessageWriter& MessageWriter::i32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    buf_.push_back(static_cast<char>((u >> shift) & 0xff));
  return *this;
}

MessageWriter& MessageWriter::cstr(std::string_view s) {
  // A NUL inside s would end the field early on the reader's side and let the
  // rest be read as further fields; cut it there instead.
  buf_.append(s.substr(0, s.find('\0')));
  buf_.push_back('\0');
  return *this;
}

MessageWriter& MessageWriter::bytes(std::string_view s) {
  buf_.append(s);
  return *this;
}

std::string MessageWriter::finish() && {
  // The length counts itself and the body, not the type byte.
  const auto length = static_cast<uint32_t>(buf_.size() - length_at_);
  for (int i = 0; i < 4; ++i) {
    buf_[length_at_ + i] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
  }
  return std::move(buf_);
}

}  // namespace tenantgate::proxy
