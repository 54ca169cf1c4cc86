// The admin HTTP listener, over real TCP: /metrics, /healthz, and /readyz
// following its readiness check.
#include "ops/admin_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "ops/backend_probe.h"

namespace tenantgate::ops {
namespace {

std::string get(uint16_t port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, n);
  close(fd);
  return response;
}

TEST(AdminHttpTest, ServesMetricsHealthAndReadiness) {
  Metrics metrics;
  metrics.statement(Protocol::kSimple, Outcome::kForwarded);
  std::atomic<bool> ready{false};
  AdminHttp http("127.0.0.1", 0, metrics, [&]() -> std::optional<std::string> {
    if (ready) return std::nullopt;
    return "backend down";
  });
  ASSERT_NE(http.port(), 0);
  const std::string m = get(http.port(), "/metrics");
  EXPECT_TRUE(m.starts_with("HTTP/1.1 200")) << m;
  EXPECT_NE(m.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(m.find("tenantgate_statements_total{outcome=\"forwarded\",protocol=\"simple\"} 1"),
            std::string::npos);
  EXPECT_TRUE(get(http.port(), "/healthz").starts_with("HTTP/1.1 200"));
  const std::string not_ready = get(http.port(), "/readyz");
  EXPECT_TRUE(not_ready.starts_with("HTTP/1.1 503")) << not_ready;
  EXPECT_NE(not_ready.find("not ready: backend down"), std::string::npos);
  ready = true;
  EXPECT_TRUE(get(http.port(), "/readyz").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(get(http.port(), "/other").starts_with("HTTP/1.1 404"));
}

TEST(AdminHttpTest, ABusyPortIsAnError) {
  Metrics metrics;
  AdminHttp first("127.0.0.1", 0, metrics, nullptr);
  EXPECT_THROW(AdminHttp("127.0.0.1", first.port(), metrics, nullptr), std::runtime_error);
}

TEST(BackendProbeTest, OpenAndClosedPorts) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = ntohs(addr.sin_port);
  // Bound but not listening: refused.
  auto refused = probe_backend("127.0.0.1", port, std::chrono::milliseconds(500));
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->find("refused"), std::string::npos) << *refused;
  ASSERT_EQ(listen(fd, 1), 0);
  EXPECT_EQ(probe_backend("127.0.0.1", port, std::chrono::milliseconds(500)), std::nullopt);
  close(fd);
}

}  // namespace
}  // namespace tenantgate::ops
