#include "ops/admin_console.h"

#include <cctype>

#include "proxy/message_io.h"
#include "proxy/messages.h"

namespace tenantgate::ops {

namespace {

constexpr std::string_view kCommands =
    "SHOW STATS | SHOW CLIENTS | SHOW SERVERS | SHOW POOLS | SHOW POLICY | SHOW CONFIG | RELOAD "
    "| PAUSE | RESUME";

// The words of a command in upper case, separated by single spaces.
std::string words(std::string_view sql) {
  std::string out;
  bool space = false;
  std::size_t end = sql.size();
  while (end > 0 && std::isspace(static_cast<unsigned char>(sql[end - 1]))) --end;
  if (end > 0 && sql[end - 1] == ';') --end;
  for (std::size_t i = 0; i < end; ++i) {
    const unsigned char c = static_cast<unsigned char>(sql[i]);
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::toupper(c));
  }
  return out;
}

// RowDescription (protocol "Message Formats"): every column text (OID 25).
std::string row_description(const std::vector<std::string>& columns) {
  proxy::MessageWriter w('T');
  w.i16(static_cast<int16_t>(columns.size()));
  for (const auto& c : columns) {
    w.cstr(c).i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0);
  }
  return std::move(w).finish();
}

std::string data_row(const std::vector<std::string>& values) {
  proxy::MessageWriter w('D');
  w.i16(static_cast<int16_t>(values.size()));
  for (const auto& v : values) {
    w.i32(static_cast<int32_t>(v.size())).bytes(v);
  }
  return std::move(w).finish();
}

std::string command_complete(std::string_view tag) {
  proxy::MessageWriter w('C');
  w.cstr(tag);
  return std::move(w).finish();
}

std::string table_reply(const AdminTable& t) {
  std::string out = row_description(t.columns);
  for (const auto& row : t.rows) out += data_row(row);
  out += command_complete("SHOW");
  return out;
}

std::string action_reply(const std::optional<std::string>& problem, std::string_view tag) {
  if (problem) return proxy::error_response("ERROR", "58000", *problem);
  return command_complete(tag);
}

}  // namespace

std::optional<AdminCommand> parse_admin_command(std::string_view sql) {
  const std::string w = words(sql);
  if (w == "SHOW STATS") return AdminCommand::kShowStats;
  if (w == "SHOW CLIENTS") return AdminCommand::kShowClients;
  if (w == "SHOW SERVERS") return AdminCommand::kShowServers;
  if (w == "SHOW POOLS") return AdminCommand::kShowPools;
  if (w == "SHOW POLICY") return AdminCommand::kShowPolicy;
  if (w == "SHOW CONFIG") return AdminCommand::kShowConfig;
  if (w == "RELOAD") return AdminCommand::kReload;
  if (w == "PAUSE") return AdminCommand::kPause;
  if (w == "RESUME") return AdminCommand::kResume;
  return std::nullopt;
}

std::string admin_execute(std::string_view sql, AdminBackend& backend) {
  std::string out;
  if (words(sql).empty()) {
    out = proxy::MessageWriter('I').finish();  // EmptyQueryResponse
  } else if (auto command = parse_admin_command(sql)) {
    switch (*command) {
      case AdminCommand::kShowStats:
        out = table_reply(backend.stats());
        break;
      case AdminCommand::kShowClients:
        out = table_reply(backend.clients());
        break;
      case AdminCommand::kShowServers:
        out = table_reply(backend.servers());
        break;
      case AdminCommand::kShowPools:
        out = table_reply(backend.pools());
        break;
      case AdminCommand::kShowPolicy:
        out = table_reply(backend.policy());
        break;
      case AdminCommand::kShowConfig:
        out = table_reply(backend.config());
        break;
      case AdminCommand::kReload:
        out = action_reply(backend.reload(), "RELOAD");
        break;
      case AdminCommand::kPause:
        out = action_reply(backend.pause(), "PAUSE");
        break;
      case AdminCommand::kResume:
        out = action_reply(backend.resume(), "RESUME");
        break;
    }
  } else {
    out =
        proxy::error_response("ERROR", "42601",
                              "the tenantgate admin console does not know this command (expected " +
                                  std::string(kCommands) + ")");
  }
  out += proxy::ready_for_query('I');
  return out;
}

}  // namespace tenantgate::ops
