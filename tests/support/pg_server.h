// A throwaway PostgreSQL 15 server for tests: started by scripts/pg_local.sh
// (the project's one PostgreSQL launcher: initdb into a fresh temporary
// directory, start on a free loopback port, wait until it accepts
// connections, as the postgres user when run as root), stopped through it on
// destruction, and the directory removed.
//
// The cluster's superuser is `postgres`; every role is trusted over the
// private socket directory and on loopback. A watchdog process stops the server and
// removes the directory if the test process dies without cleaning up.
//
// Thread-safety: start() and the destructor must not race; the accessors are
// const and safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

namespace tenantgate::testing {

class PgServer {
 public:
  // Starts a server; throws std::runtime_error with the server log on failure.
  [[nodiscard]] static std::unique_ptr<PgServer> start();

  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] const std::string& socket_dir() const { return dir_; }

  // A libpq conninfo string for `user` on `dbname` over TCP loopback.
  [[nodiscard]] std::string conninfo(std::string_view user,
                                     std::string_view dbname = "postgres") const;

 private:
  PgServer() = default;
  void stop();

  void start_watchdog();

  std::string dir_;  // temporary directory: data/, the socket, postgres.log
  int port_ = 0;
  bool started_ = false;
  pid_t watchdog_ = -1;   // stops the server if this process dies first
  int watchdog_fd_ = -1;  // write end of the pipe the watchdog waits on
};

}  // namespace tenantgate::testing
