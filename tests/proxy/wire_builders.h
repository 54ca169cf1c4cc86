// Builders for protocol messages as bytes, and a reader that splits a byte
// string back into messages, for the tests of the relay's pure parts
// (protocol_tracker_test.cc, frontend_filter_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/frame_decoder.h"
#include "proxy/message_io.h"
#include "proxy/messages.h"

namespace tenantgate::proxy::wire {

inline std::string message(char type, std::string_view body = {}) {
  MessageWriter w(type);
  w.bytes(body);
  return std::move(w).finish();
}

inline std::string query(std::string_view sql) { return query_message(sql); }

inline std::string parse(std::string_view name, std::string_view sql,
                         const std::vector<int32_t>& types = {}) {
  std::string out;
  append_parse(out, name, sql, types);
  return out;
}

// Bind of the unnamed portal; params in text unless `formats` says otherwise.
inline std::string bind(std::string_view statement, const std::vector<std::string>& params,
                        const std::vector<int16_t>& formats = {}) {
  MessageWriter w('B');
  w.cstr("");
  w.cstr(statement);
  w.i16(static_cast<int16_t>(formats.size()));
  for (int16_t f : formats) w.i16(f);
  w.i16(static_cast<int16_t>(params.size()));
  for (const auto& p : params) {
    w.i32(static_cast<int32_t>(p.size()));
    w.bytes(p);
  }
  w.i16(0);
  return std::move(w).finish();
}

inline std::string describe_or_close(char type, char kind, std::string_view name) {
  MessageWriter w(type);
  w.u8(static_cast<uint8_t>(kind));
  w.cstr(name);
  return std::move(w).finish();
}

inline std::string execute() {
  MessageWriter w('E');
  w.cstr("");
  w.i32(0);
  return std::move(w).finish();
}

inline std::string sync() { return message('S'); }
inline std::string flush() { return message('H'); }
inline std::string copy_data(std::string_view rows) { return message('d', rows); }
inline std::string copy_done() { return message('c'); }
inline std::string copy_fail(std::string_view why) {
  MessageWriter w('f');
  w.cstr(why);
  return std::move(w).finish();
}
inline std::string function_call() {
  MessageWriter w('F');
  w.i32(1234);  // function OID
  w.i16(0);
  w.i16(0);
  w.i16(0);
  return std::move(w).finish();
}

// Backend messages.
inline std::string parse_complete() { return message('1'); }
inline std::string bind_complete() { return message('2'); }
inline std::string close_complete() { return message('3'); }
inline std::string command_complete(std::string_view tag) {
  MessageWriter w('C');
  w.cstr(tag);
  return std::move(w).finish();
}
inline std::string error(std::string_view sqlstate, std::string_view text) {
  return error_response("ERROR", sqlstate, text);
}
inline std::string ready(char status) { return ready_for_query(status); }

struct Message {
  char type = 0;
  std::string body;
};

// Splits whole messages; a trailing partial message fails the caller's test
// through an empty result with a type of '?'.
inline std::vector<Message> split(std::string_view bytes) {
  std::vector<Message> out;
  while (!bytes.empty()) {
    auto decoded = decode_message(bytes, 1u << 30);
    if (decoded.status != DecodeStatus::kMessage) {
      out.push_back({'?', {}});
      break;
    }
    out.push_back({decoded.frame.type, std::string(decoded.frame.body)});
    bytes.remove_prefix(decoded.frame.total_size);
  }
  return out;
}

inline std::string types_of(std::string_view bytes) {
  std::string types;
  for (const auto& m : split(bytes)) types += m.type;
  return types;
}

// The body of a whole message (after type and length).
inline std::string_view body_of(std::string_view whole) { return whole.substr(5); }

}  // namespace tenantgate::proxy::wire
