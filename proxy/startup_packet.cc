#include "proxy/startup_packet.h"

#include <string>
#include <utility>

#include "proxy/message_io.h"

namespace tenantgate::proxy {
namespace {

StartupParseError fail(std::string message) { return StartupParseError{std::move(message)}; }

}  // namespace

std::variant<StartupPacket, StartupParseError> parse_startup_packet(std::string_view body) {
  MessageReader r(body);
  auto code = r.i32();
  if (!code) return fail("start-up packet is shorter than its 4-byte code");
  StartupPacket out;
  switch (*code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      if (!r.at_end()) {
        return fail(*code == kSslRequestCode ? "SSLRequest has bytes after its code"
                                             : "GSSENCRequest has bytes after its code");
      }
      out.kind =
          *code == kSslRequestCode ? StartupPacket::Kind::kSsl : StartupPacket::Kind::kGssEnc;
      return out;
    case kCancelRequestCode: {
      auto pid = r.i32();
      auto key = r.i32();
      if (!pid || !key || !r.at_end()) return fail("CancelRequest is not exactly 16 bytes long");
      out.kind = StartupPacket::Kind::kCancel;
      out.cancel_pid = *pid;
      out.cancel_key = *key;
      return out;
    }
    default:
      break;
  }
  // As PostgreSQL's ProcessStartupPacket: any 3.x is accepted here (minor
  // versions above what the server knows are negotiated down by the caller);
  // other majors are refused.
  const auto major = static_cast<uint32_t>(*code) >> 16;
  const auto minor = static_cast<uint32_t>(*code) & 0xffff;
  if (major != 3) {
    return fail("unsupported frontend protocol " + std::to_string(major) + "." +
                std::to_string(minor) + ": tenantgate supports 3.0 to 3.x");
  }
  out.kind = StartupPacket::Kind::kStartup;
  out.protocol = *code;
  for (;;) {
    auto name = r.cstr();
    if (!name) return fail("start-up packet is missing its final terminator");
    if (name->empty()) break;
    auto value = r.cstr();
    if (!value)
      return fail("start-up packet parameter \"" + std::string(*name) + "\" has no value");
    if (find_param(out.params, *name) != nullptr) {
      return fail("start-up packet parameter \"" + std::string(*name) + "\" is given twice");
    }
    out.params.emplace_back(std::string(*name), std::string(*value));
  }
  if (!r.at_end()) {
    return fail("invalid start-up packet layout: expected terminator as last byte");
  }
  const std::string* user = find_param(out.params, "user");
  if (user == nullptr || user->empty()) return fail("no user name specified in start-up packet");
  return out;
}

std::string encode_startup_message(const StartupParams& params) {
  MessageWriter w(0);
  w.i32(kProtocolVersion3);
  for (const auto& [name, value] : params) w.cstr(name).cstr(value);
  w.u8(0);
  return std::move(w).finish();
}

std::string encode_cancel_request(int32_t pid, int32_t key) {
  MessageWriter w(0);
  w.i32(kCancelRequestCode).i32(pid).i32(key);
  return std::move(w).finish();
}

const std::string* find_param(const StartupParams& params, std::string_view name) {
  for (const auto& [n, v] : params) {
    if (n == name) return &v;
  }
  return nullptr;
}

}  // namespace tenantgate::proxy
