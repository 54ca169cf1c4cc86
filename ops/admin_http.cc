#include "ops/admin_http.h"

#include <CivetServer.h>

#include <stdexcept>
#include <string_view>

namespace tenantgate::ops {

class AdminHttp::Handler : public CivetHandler {
 public:
  enum class Kind { kMetrics, kHealth, kReady };
  Handler(Kind kind, const Metrics& metrics, const Readiness& readiness)
      : kind_(kind), metrics_(metrics), readiness_(readiness) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    switch (kind_) {
      case Kind::kMetrics:
        reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render());
        break;
      case Kind::kHealth:
        reply(conn, 200, "text/plain", "ok\n");
        break;
      case Kind::kReady: {
        auto problem = readiness_ ? readiness_() : std::nullopt;
        if (problem) {
          reply(conn, 503, "text/plain", "not ready: " + *problem + "\n");
        } else {
          reply(conn, 200, "text/plain", "ready\n");
        }
        break;
      }
    }
    return true;
  }

 private:
  static void reply(mg_connection* conn, int status, std::string_view type,
                    const std::string& body) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
              status, status == 200 ? "OK" : "Service Unavailable", static_cast<int>(type.size()),
              type.data(), body.size());
    mg_write(conn, body.data(), body.size());
  }

  Kind kind_;
  const Metrics& metrics_;
  const Readiness& readiness_;
};

AdminHttp::AdminHttp(const std::string& host, uint16_t port, const Metrics& metrics,
                     Readiness readiness)
    : readiness_(std::move(readiness)) {
  const std::string address =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  const std::vector<std::string> options = {
      "listening_ports",    address, "num_threads",       "2",
      "request_timeout_ms", "5000",  "enable_keep_alive", "no"};
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    throw std::runtime_error("admin listener on " + address + ": " + e.what());
  }
  metrics_handler_ = std::make_unique<Handler>(Handler::Kind::kMetrics, metrics, readiness_);
  health_handler_ = std::make_unique<Handler>(Handler::Kind::kHealth, metrics, readiness_);
  ready_handler_ = std::make_unique<Handler>(Handler::Kind::kReady, metrics, readiness_);
  server_->addHandler("/metrics$", metrics_handler_.get());
  server_->addHandler("/healthz$", health_handler_.get());
  server_->addHandler("/readyz$", ready_handler_.get());
  const auto ports = server_->getListeningPorts();
  port_ = ports.empty() ? port : static_cast<uint16_t>(ports.front());
}

AdminHttp::~AdminHttp() {
  if (server_) server_->close();
}

}  // namespace tenantgate::ops
