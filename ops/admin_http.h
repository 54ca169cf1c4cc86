// The admin HTTP listener ([admin] listen): /metrics in the Prometheus text
// format, /healthz (the process is up) and /readyz (a policy is loaded and
// the backend accepts connections). Served by civetweb on its own threads,
// never on the proxy's event loops.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ops/metrics.h"

class CivetServer;

namespace tenantgate::ops {

class AdminHttp {
 public:
  // nullopt when ready, otherwise why not (the body of a 503).
  using Readiness = std::function<std::optional<std::string>()>;

  // Binds host:port (port 0: an ephemeral port) and starts serving. `metrics`
  // must outlive this object. Throws std::runtime_error when it cannot bind.
  AdminHttp(const std::string& host, uint16_t port, const Metrics& metrics, Readiness readiness);
  ~AdminHttp();
  AdminHttp(const AdminHttp&) = delete;
  AdminHttp& operator=(const AdminHttp&) = delete;

  [[nodiscard]] uint16_t port() const { return port_; }

 private:
  class Handler;
  Readiness readiness_;
  std::unique_ptr<Handler> metrics_handler_;
  std::unique_ptr<Handler> health_handler_;
  std::unique_ptr<Handler> ready_handler_;
  std::unique_ptr<CivetServer> server_;
  uint16_t port_ = 0;
};

}  // namespace tenantgate::ops
