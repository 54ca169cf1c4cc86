// Takes the tenant, the user and a signed identity token out of a client's
// start-up parameters.
//
// Each may arrive as its own parameter ("tenantgate.tenant=acme") or inside the
// "options" parameter as "-c tenantgate.tenant=acme" (also "-ctenantgate.tenant=acme"
// and "--tenantgate.tenant=acme"), which is how libpq URLs pass it. Both
// spellings are removed from what is forwarded to the backend; the rest of
// "options" is re-encoded with PostgreSQL's backslash escaping (pg_split_opts).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/startup_packet.h"

namespace tenantgate::proxy {

// The setting that carries a signed identity token (a JWT), at start-up and
// with SET; verified by identity/token_authority.h.
inline constexpr std::string_view kTokenSetting = "tenantgate.token";

struct StartupIdentity {
  std::optional<std::string> tenant;  // raw, not yet validated
  std::optional<std::string> user;
  std::optional<std::string> token;  // tenantgate.token, not yet verified
  StartupParams forwarded;           // the parameters without any identity spelling
};

struct StartupIdentityError {
  std::string message;  // e.g. "tenantgate.tenant given twice with different values"
};

// Names match as PostgreSQL matches setting names: case-insensitively, and in
// "options" with '-' read as '_' in the name (ParseLongOption), so
// "-c TenantGate.Tenant=x" and, for a configured "app.tenant_id",
// "--app.tenant-id=x" are identity spellings. Switch clusters are read as the
// backend's getopt reads them ("-ec name=v" is -e then -c). A setting that
// names an identity without '=' is an error; an empty value is returned as "".
// "options" is forwarded byte for byte when nothing was taken out of it, and
// dropped when nothing is left.
//
// Fails when a name is given twice with different values, or "options" is
// malformed (a trailing lone backslash).
[[nodiscard]] std::variant<StartupIdentity, StartupIdentityError> extract_startup_identity(
    const StartupParams& params, std::string_view tenant_param, std::string_view user_param);

// Splits "options" into words as PostgreSQL's pg_split_opts does: white space
// separates, a backslash escapes the next character. False when the value
// ends with a lone backslash.
[[nodiscard]] bool split_startup_options(std::string_view options, std::vector<std::string>& args);

}  // namespace tenantgate::proxy
