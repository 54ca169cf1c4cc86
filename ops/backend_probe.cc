#include "ops/backend_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tenantgate::ops {

std::optional<std::string> probe_backend(const std::string& host, uint16_t port,
                                         std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return "backend " + host + ":" + service + ": " + gai_strerror(rc);
  }
  std::string problem = "backend " + host + ":" + service + ": no address";
  for (addrinfo* a = found; a; a = a->ai_next) {
    const int fd =
        socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      problem = "backend " + host + ":" + service + ": " + std::strerror(errno);
      continue;
    }
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int n = poll(&p, 1, static_cast<int>(timeout.count()));
        if (n == 1) {
          socklen_t len = sizeof err;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        } else {
          err = n == 0 ? ETIMEDOUT : errno;
        }
      }
    }
    close(fd);
    if (err == 0) {
      freeaddrinfo(found);
      return std::nullopt;
    }
    problem = "backend " + host + ":" + service + ": " + std::strerror(err);
  }
  freeaddrinfo(found);
  return problem;
}

}  // namespace tenantgate::ops
