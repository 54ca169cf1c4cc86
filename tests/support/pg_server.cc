#include "tests/support/pg_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";
constexpr auto kStartTimeout = std::chrono::seconds(60);
constexpr auto kStopTimeout = std::chrono::seconds(30);

bool running_as_root() { return geteuid() == 0; }

std::string runuser_path() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (access(p, X_OK) == 0) return p;
  }
  throw std::runtime_error("pg_server: running as root but runuser was not found");
}

// The command line for a PostgreSQL binary, wrapped in runuser when we are root.
std::vector<std::string> pg_command(const std::string& binary, std::vector<std::string> args) {
  std::vector<std::string> argv;
  if (running_as_root()) argv = {runuser_path(), "-u", "postgres", "--"};
  argv.push_back(std::string(kPgBin) + "/" + binary);
  for (auto& a : args) argv.push_back(std::move(a));
  return argv;
}

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

// Waits for pid to exit; returns its wait status or nullopt on timeout.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child any more
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
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
  if (running_as_root()) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("pg_server: no postgres system user");
    if (chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("pg_server: chown of the temporary directory failed");
    }
  }
  chmod(tmpl.c_str(), 0700);

  const std::string data = server->dir_ + "/data";
  const std::string initdb_log = server->dir_ + "/initdb.log";
  pid_t initdb = spawn(pg_command("initdb", {"-D", data, "-U", "postgres", "-A", "trust", "-E",
                                             "UTF8", "--locale=C", "--no-sync"}),
                       initdb_log);
  auto status = wait_for(initdb, std::chrono::seconds(120));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    if (!status) {
      kill(initdb, SIGKILL);
      waitpid(initdb, nullptr, 0);
    }
    throw std::runtime_error("pg_server: initdb failed:\n" + read_file(initdb_log));
  }

  const std::string log = server->dir_ + "/server.log";
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = free_port();
    server->pid_ =
        spawn(pg_command("postgres", {"-D", data, "-p", std::to_string(server->port_), "-k",
                                      server->dir_, "-h", "127.0.0.1", "-c", "fsync=off", "-c",
                                      "full_page_writes=off", "-c", "synchronous_commit=off", "-c",
                                      "max_connections=30", "-c", "log_min_messages=warning"}),
              log);
    const std::string ping = server->conninfo("postgres");
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    bool exited = false;
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(ping.c_str()) == PQPING_OK) {
        server->start_watchdog();
        return server;
      }
      int st = 0;
      if (waitpid(server->pid_, &st, WNOHANG) == server->pid_) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) break;  // timed out: do not retry on another port
    server->pid_ = -1;
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
  if (pid_ <= 0) return;
  // runuser forks postgres as its child, so signal the postmaster itself (its
  // pid is the first line of postmaster.pid) and then reap our child.
  const pid_t postmaster = read_postmaster_pid(dir_);
  if (postmaster > 0) kill(postmaster, SIGINT);  // fast shutdown
  kill(pid_, SIGTERM);
  if (!wait_for(pid_, kStopTimeout)) {
    if (postmaster > 0) kill(postmaster, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

}  // namespace tenantgate::testing
