// The listener and its event loops: accepts client connections, starts a
// Session for each, and runs the graceful shutdown on SIGTERM/SIGINT.
//
// SIGHUP reloads the policy file; an invalid file keeps the policy in force.
//
// Threads: one event loop per configured thread, each on its own thread with
// a stack large enough for the rewriter; a session lives entirely on the loop
// that accepted it.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// The rewriter's options the configuration sets (statement size, dialect).
[[nodiscard]] rewriter::Options rewriter_options(const config::Config& config);

class Server {
 public:
  Server(std::shared_ptr<const config::Config> config,
         std::shared_ptr<const policy::Policy> policy);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, serves until a shutdown signal, then drains. Returns the process
  // exit code. Throws std::runtime_error when start-up fails (bind, TLS files).
  int run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tenantgate::proxy
