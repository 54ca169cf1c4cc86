// Which start-up parameters a non-bypass client may send to the backend.
//
// Settings in the start-up packet (and "-c name=value" in "options") reach
// the server before any statement is rewritten, so they get the same
// allow-list as SET: a client that could start its session with
// client_encoding = SJIS, standard_conforming_strings = off or its own
// search_path would make the server read a rewritten statement differently
// from the rewriter.
#pragma once

#include <optional>
#include <string>

#include "proxy/startup_packet.h"

namespace tenantgate::proxy {

// nullopt when every parameter (other than user and database) and every
// "options" word is allowed; otherwise why not.
[[nodiscard]] std::optional<std::string> check_startup_settings(const StartupParams& params);

}  // namespace tenantgate::proxy
