#include "tests/support/pg_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tenantgate::testing {
namespace {

#ifndef TG_PG_LOCAL
#error "TG_PG_LOCAL must name scripts/pg_local.sh"
#endif
constexpr const char* kLauncher = TG_PG_LOCAL;
constexpr auto kStartTimeout = std::chrono::seconds(180);
constexpr auto kStopTimeout = std::chrono::seconds(60);
// Settings on top of the launcher's defaults: the tests open few connections.
constexpr const char* kSettings[] = {"max_connections=30", "log_min_messages=warning"};

// Forks and execs argv with stdout and stderr appended to log_path.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("pg_server: fork: ") + std::strerror(errno));
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  return pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t read_postmaster_pid(const std::string& dir) {
  std::ifstream in(dir + "/data/postmaster.pid");
  long v = 0;
  if (in >> v && v > 0) return static_cast<pid_t>(v);
  return -1;
}

// Asks the kernel for a free loopback port. Another process may take it before
// postgres binds it; start() retries when the server fails to come up.
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("pg_server: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("pg_server: cannot bind a loopback port");
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// Runs the launcher with `args` and waits for it; its exit code, or nullopt
// when it did not finish within `timeout` (it is then killed).
std::optional<int> run_launcher(std::vector<std::string> args, const std::string& log,
                                std::chrono::seconds timeout) {
  args.insert(args.begin(), kLauncher);
  const pid_t pid = spawn(args, log);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    if (r < 0 && errno != EINTR) return 128;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::unique_ptr<PgServer> PgServer::start() {
  std::unique_ptr<PgServer> server(new PgServer());
  std::string tmpl = "/tmp/tg-pg-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    throw std::runtime_error(std::string("pg_server: mkdtemp: ") + std::strerror(errno));
  }
  server->dir_ = tmpl;
  const std::string log = server->dir_ + "/launcher.log";
  // Every role is trusted on loopback: the tests log in as roles without
  // passwords.
  const std::string hba = server->dir_ + "/pg_hba.conf";
  {
    std::ofstream out(hba);
    out << "local all all trust\nhost all all 127.0.0.1/32 trust\n";
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = free_port();
    std::vector<std::string> args = {"start", server->dir_, std::to_string(server->port_), "--hba",
                                     hba};
    for (const char* setting : kSettings) {
      args.push_back("-c");
      args.push_back(setting);
    }
    const std::optional<int> code = run_launcher(args, log, kStartTimeout);
    if (code == 0) {
      server->started_ = true;
      server->start_watchdog();
      return server;
    }
    if (!code) break;  // timed out: do not retry on another port
  }
  std::string text = read_file(log);
  server->stop();
  throw std::runtime_error("pg_server: postgres did not start:\n" + text);
}

PgServer::~PgServer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PgServer::conninfo(std::string_view user, std::string_view dbname) const {
  std::string s = "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + std::string(user) +
                  " dbname=" + std::string(dbname) + " connect_timeout=10";
  return s;
}

// The watchdog is a forked child blocked reading a pipe whose only write end
// this process holds: the read returns when this process exits, however it
// exits. A normal stop() kills the watchdog first.
void PgServer::start_watchdog() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;  // best effort
  const pid_t postmaster = read_postmaster_pid(dir_);
  const std::string dir = dir_;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    close(fds[1]);
    char byte;
    while (read(fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
    if (postmaster > 0) kill(postmaster, SIGQUIT);  // immediate shutdown
    for (int i = 0; i < 100 && postmaster > 0 && kill(postmaster, 0) == 0; ++i) usleep(50000);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    _exit(0);
  }
  close(fds[0]);
  watchdog_ = pid;
  watchdog_fd_ = fds[1];
}

void PgServer::stop() {
  if (watchdog_ > 0) {
    kill(watchdog_, SIGKILL);
    waitpid(watchdog_, nullptr, 0);
    watchdog_ = -1;
  }
  if (watchdog_fd_ >= 0) {
    close(watchdog_fd_);
    watchdog_fd_ = -1;
  }
  if (!started_) return;
  if (!run_launcher({"stop", dir_}, dir_ + "/launcher.log", kStopTimeout)) {
    const pid_t postmaster = read_postmaster_pid(dir_);
    if (postmaster > 0) kill(postmaster, SIGKILL);
  }
  started_ = false;
}

}  // namespace tenantgate::testing
