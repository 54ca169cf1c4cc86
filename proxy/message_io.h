// Reading and writing the primitive fields of protocol messages: Int8/16/32,
// NUL-terminated String, and raw bytes ("Message Data Types", protocol 55.6).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tenantgate::proxy {

// Reads fields from a message body. Every read fails (returns nullopt) once
// the body is exhausted or malformed, and the reader stays failed.
class MessageReader {
 public:
  explicit MessageReader(std::string_view body) : rest_(body) {}

  [[nodiscard]] std::optional<uint8_t> u8();
  [[nodiscard]] std::optional<int16_t> i16();
  [[nodiscard]] std::optional<int32_t> i32();
  // A NUL-terminated string; the view excludes the NUL.
  [[nodiscard]] std::optional<std::string_view> cstr();
  [[nodiscard]] std::optional<std::string_view> bytes(std::size_t n);

  [[nodiscard]] std::size_t remaining() const { return rest_.size(); }
  [[nodiscard]] bool at_end() const { return ok_ && rest_.empty(); }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

// Builds one message: MessageWriter w('Q'); w.cstr(sql); std::string m = w.finish();
// type 0 builds an untyped start-up packet.
class MessageWriter {
 public:
  explicit MessageWriter(char type);
  // Builds the message after the bytes already in `prefix`, which finish()
  // returns with it: appending a message to an outgoing batch this way copies
  // neither the batch nor the message.
  MessageWriter(char type, std::string prefix);

  MessageWriter& u8(uint8_t v);
  MessageWriter& i16(int16_t v);
  MessageWriter& i32(int32_t v);
  // Appends s and a NUL. s is cut at its first NUL, so that text from elsewhere
  // can never smuggle extra fields into a message.
  MessageWriter& cstr(std::string_view s);
  MessageWriter& bytes(std::string_view s);

  // Fills in the length word and returns the whole message.
  [[nodiscard]] std::string finish() &&;

 private:
  std::string buf_;
  std::size_t length_at_;
};

}  // namespace tenantgate::proxy
