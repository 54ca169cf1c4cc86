// A connection to the admin console (the virtual database "tenantgate")
// after it has authenticated as a principal with `admin = true`: tenantgate
// answers it itself, without a backend connection. Simple query protocol
// only; ops/admin_console.h builds the replies.
#pragma once

#include <cstdint>
#include <string>

#include "ops/admin_console.h"
#include "proxy/asio.h"
#include "proxy/read_buffer.h"
#include "proxy/stream.h"

namespace tenantgate::proxy {

// What a client learns at login: the same ParameterStatus messages a
// PostgreSQL server would send, so that psql and drivers are content.
[[nodiscard]] std::string admin_login_replies(std::string_view principal);

// Sends AuthenticationOk and the login replies, then answers Query messages
// until the client sends Terminate or closes. Any other message gets 0A000
// and ends the connection (the console speaks only the simple protocol).
// `buffer` holds whatever the client sent after its start-up.
awaitable<void> serve_admin_console(Stream& client, ReadBuffer& buffer, ops::AdminBackend& backend,
                                    std::string principal, std::size_t max_message_bytes);

}  // namespace tenantgate::proxy
