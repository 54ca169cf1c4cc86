#include "proxy/admin_session.h"

#include "proxy/frame_decoder.h"
#include "proxy/messages.h"
#include "tenantgate_version.h"

namespace tenantgate::proxy {

std::string admin_login_replies(std::string_view principal) {
  std::string out = authentication_ok();
  out +=
      parameter_status("server_version", "15.0 (tenantgate " TENANTGATE_VERSION " admin console)");
  out += parameter_status("server_encoding", "UTF8");
  out += parameter_status("client_encoding", "UTF8");
  out += parameter_status("DateStyle", "ISO, MDY");
  out += parameter_status("integer_datetimes", "on");
  out += parameter_status("standard_conforming_strings", "on");
  out += parameter_status("application_name", "");
  out += parameter_status("session_authorization", principal);
  out += parameter_status("is_superuser", "off");
  out += ready_for_query('I');
  return out;
}

awaitable<void> serve_admin_console(Stream& client, ReadBuffer& buffer, ops::AdminBackend& backend,
                                    std::string principal, std::size_t max_message_bytes) {
  if (co_await client.write(admin_login_replies(principal))) co_return;
  for (;;) {
    DecodeResult decoded = decode_message(buffer.pending(), max_message_bytes);
    if (decoded.status == DecodeStatus::kError) {
      (void)co_await client.write(error_response("FATAL", "08P01", std::string(decoded.error)));
      co_return;
    }
    if (decoded.status == DecodeStatus::kNeedMore) {
      auto space = buffer.prepare(ReadBuffer::kInitialSize);
      auto [ec, n] = co_await client.read_some(asio::buffer(space.data(), space.size()));
      if (ec) co_return;
      buffer.commit(n);
      continue;
    }
    const Frame frame = decoded.frame;
    std::string reply;
    bool end = false;
    switch (frame.type) {
      case 'Q':
        if (auto sql = parse_query(frame.body)) {
          reply = ops::admin_execute(*sql, backend);
        } else {
          reply = error_response("FATAL", "08P01", "malformed Query message");
          end = true;
        }
        break;
      case 'X':
        co_return;
      default:
        reply = error_response("FATAL", "0A000",
                               "the tenantgate admin console supports only the simple query "
                               "protocol");
        end = true;
    }
    buffer.consume(frame.total_size);
    if (co_await client.write(reply) || end) co_return;
  }
}

}  // namespace tenantgate::proxy
