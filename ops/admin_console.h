// The admin console, as PgBouncer has it: a principal with `admin = true`
// connects to the virtual database "tenantgate" and runs SHOW STATS, SHOW
// CLIENTS, SHOW SERVERS, SHOW POOLS, SHOW POLICY, SHOW CONFIG, RELOAD, PAUSE
// and RESUME in the simple query protocol. This file turns one Query
// message's text into the bytes to answer with; what the commands show and
// do comes from an AdminBackend (the server implements it).
//
// Pure apart from the backend calls; no sockets.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantgate::ops {

// The name of the virtual database.
inline constexpr std::string_view kAdminDatabase = "tenantgate";

struct AdminTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;  // each row as wide as columns; text values
};

class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  virtual AdminTable stats() = 0;
  virtual AdminTable clients() = 0;
  virtual AdminTable servers() = 0;
  virtual AdminTable pools() = 0;
  virtual AdminTable policy() = 0;
  virtual AdminTable config() = 0;
  // nullopt on success, otherwise why it failed.
  virtual std::optional<std::string> reload() = 0;
  virtual std::optional<std::string> pause() = 0;
  virtual std::optional<std::string> resume() = 0;
};

enum class AdminCommand {
  kShowStats,
  kShowClients,
  kShowServers,
  kShowPools,
  kShowPolicy,
  kShowConfig,
  kReload,
  kPause,
  kResume,
};

// The command a query string names (case-insensitive, surrounding spaces and
// one trailing ';' allowed), or nullopt.
[[nodiscard]] std::optional<AdminCommand> parse_admin_command(std::string_view sql);

// The reply to one Query message: RowDescription, DataRows and
// CommandComplete (or an ErrorResponse: 42601 for an unknown command, 58000
// when RELOAD/PAUSE/RESUME fail), then ReadyForQuery.
[[nodiscard]] std::string admin_execute(std::string_view sql, AdminBackend& backend);

}  // namespace tenantgate::ops
