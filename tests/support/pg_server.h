// A throwaway PostgreSQL 15 server for tests: initdb into a fresh temporary
// directory, start on a free loopback port, wait until it accepts connections,
// and on destruction stop it and remove the directory.
//
// initdb and postgres refuse to run as root, so when the test runs as root they
// are started through `runuser -u postgres --` in a directory that user owns.
// The cluster's superuser is `postgres`, authentication is `trust` (loopback
// and the private socket directory only). A watchdog process stops the server
// and removes the directory if the test process dies without cleaning up.
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

  std::string dir_;  // temporary directory: data/, the socket, server.log
  int port_ = 0;
  pid_t pid_ = -1;        // the runuser (or postgres) child we forked
  pid_t watchdog_ = -1;   // stops the server if this process dies first
  int watchdog_fd_ = -1;  // write end of the pipe the watchdog waits on
};

}  // namespace tenantgate::testing
