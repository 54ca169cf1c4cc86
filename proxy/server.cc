#include "proxy/server.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/analysis_pool.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
#include "proxy/log.h"
#include "proxy/policy_store.h"
#include "proxy/session.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {
namespace {

AnalysisPool::Options analysis_options(const config::Limits& limits) {
  AnalysisPool::Options options;
  // By default half the cores: the other half stays free for the event
  // loops (and the clients and database on the same machine) however much
  // analysis is waiting.
  options.threads = limits.analysis_threads != 0
                        ? limits.analysis_threads
                        : std::max(1u, std::thread::hardware_concurrency() / 2);
  options.limits.ms_per_second = limits.analysis_ms_per_second;
  options.limits.queue_timeout = std::chrono::milliseconds(limits.analysis_queue_timeout_ms);
  options.limits.max_pending_per_tenant = limits.max_pending_analyses;
  return options;
}

void log_server(spdlog::level::level_enum level, std::string_view message) {
  static const LogContext kNoContext;
  log_line(level, kNoContext, message);
}

}  // namespace

class Server::Impl {
 public:
  Impl(std::shared_ptr<const config::Config> config, std::shared_ptr<const policy::Policy> policy)
      : config_(std::move(config)),
        policies_(std::move(policy)),
        rewriter_(rewriter::Options{config_->limits.max_statement_bytes}),
        rewrite_cache_(config_->limits.rewrite_cache_bytes),
        analysis_pool_(analysis_options(config_->limits)) {
    unsigned threads = config_->listen.threads;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < threads; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
    }
    setup_tls();
    services_.config = config_;
    services_.cancels = &cancels_;
    services_.policies = &policies_;
    services_.rewriter = &rewriter_;
    services_.rewrite_cache = &rewrite_cache_;
    services_.analysis = &analysis_pool_;
    services_.salted_passwords = &salted_passwords_;
    services_.client_tls = client_tls_ ? &*client_tls_ : nullptr;
    services_.backend_tls = &backend_tls_;
    if (const char* pw = std::getenv(config_->backend.password_env.c_str())) {
      services_.backend_password = pw;
    }
  }

  ~Impl() {
    // Queued analyses hold timers of the loops: they go before the loops.
    analysis_pool_.stop();
    // Sessions still on the loops are destroyed with them and unregister from
    // cancels_ and sessions_: the loops (and the I/O objects on them) go first.
    grace_timer_.reset();
    reload_signal_.reset();
    signals_.reset();
    acceptor_.reset();
    contexts_.clear();
  }

  int run() {
    auto& main_context = *contexts_.front();
    tcp::endpoint endpoint(asio::ip::make_address(config_->listen.host), config_->listen.port);
    acceptor_.emplace(main_context);
    acceptor_->open(endpoint.protocol());
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(endpoint);
    acceptor_->listen(asio::socket_base::max_listen_connections);

    signals_.emplace(main_context, SIGINT, SIGTERM);
    signals_->async_wait([this](const error_code& ec, int signo) {
      if (!ec) begin_shutdown(signo);
    });
    reload_signal_.emplace(main_context, SIGHUP);
    wait_for_reload();
    asio::co_spawn(main_context, accept_loop(), asio::detached);

    if (config_->auth_mode == config::AuthMode::kTrust) {
      log_server(spdlog::level::warn,
                 "auth.mode = \"trust\": clients are not authenticated (loopback listener only)");
    }
    log_server(spdlog::level::info,
               fmt::format("tenantgate listening on {}:{} with {} event loops, backend {}:{}",
                           config_->listen.host, acceptor_->local_endpoint().port(),
                           contexts_.size(), config_->backend.host, config_->backend.port));

    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& ctx : contexts_) guards.emplace_back(ctx->get_executor());
    work_guards_ = &guards;
    std::vector<pthread_t> threads;
    for (auto& ctx : contexts_) {
      threads.push_back(rewriter::start_large_stack_thread([ctx = ctx.get()] { ctx->run(); }));
    }
    for (auto t : threads) pthread_join(t, nullptr);
    log_server(spdlog::level::info, "tenantgate stopped");
    return 0;
  }

 private:
  void setup_tls() {
    const auto& listen = config_->listen;
    if (listen.tls != config::ListenTls::kDisable) {
      client_tls_.emplace(ssl::context::tls_server);
      client_tls_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                               ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                               ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      client_tls_->use_certificate_chain_file(listen.tls_cert);
      client_tls_->use_private_key_file(listen.tls_key, ssl::context::pem);
    }
    backend_tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1);
    if (!config_->backend.tls_ca.empty()) backend_tls_.load_verify_file(config_->backend.tls_ca);
  }

  awaitable<void> accept_loop() {
    std::size_t next = 0;
    for (;;) {
      auto& ctx = *contexts_[next];
      next = (next + 1) % contexts_.size();
      auto [ec, socket] = co_await acceptor_->async_accept(ctx, use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
        log_server(spdlog::level::warn, "accept failed: " + ec.message());
        // Out of descriptors and similar: do not spin.
        asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_nothrow);
        continue;
      }
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      const uint64_t id = ++next_session_id_;
      auto session = std::make_shared<Session>(std::move(socket), services_, id);
      {
        std::lock_guard lock(sessions_mutex_);
        sessions_.emplace(id, session);
      }
      asio::co_spawn(ctx, session->run(), [this, id, session](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            log_server(spdlog::level::err,
                       fmt::format("session {} ended with an internal error: {}", id, ex.what()));
          }
        }
        session_ended(id);
      });
    }
  }

  void wait_for_reload() {
    reload_signal_->async_wait([this](const error_code& ec, int) {
      if (ec) return;
      reload_policy();
      wait_for_reload();
    });
  }

  void reload_policy() {
    try {
      auto next = policy::load_policy_file(config_->policy_file);
      const auto tables = next->tables.size();
      policies_.set(std::move(next));
      // Entries are keyed by snapshot, so old ones could never hit again.
      rewrite_cache_.clear();
      log_server(spdlog::level::info,
                 fmt::format("policy reloaded from {} ({} tables)", config_->policy_file, tables));
    } catch (const std::exception& e) {
      log_server(spdlog::level::err,
                 fmt::format("policy reload failed, keeping the policy in force: {}", e.what()));
    }
  }

  void session_ended(uint64_t id) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(id);
    if (draining_ && sessions_.empty()) stop_all();
  }

  void begin_shutdown(int signo) {
    log_server(spdlog::level::info,
               fmt::format("received signal {}: no new connections; waiting up to {} ms for "
                           "sessions to finish",
                           signo, config_->limits.shutdown_grace_ms));
    error_code ignored;
    acceptor_->close(ignored);
    std::lock_guard lock(sessions_mutex_);
    draining_ = true;
    if (sessions_.empty()) {
      stop_all();
      return;
    }
    // Connections still starting up have no work to finish: end them now.
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock(); s && !s->started()) s->terminate();
    }
    grace_timer_.emplace(*contexts_.front(),
                         std::chrono::milliseconds(config_->limits.shutdown_grace_ms));
    grace_timer_->async_wait([this](const error_code& ec) {
      if (ec) return;
      std::lock_guard lock(sessions_mutex_);
      log_server(spdlog::level::info,
                 fmt::format("grace period over: terminating {} sessions", sessions_.size()));
      for (auto& [id, weak] : sessions_) {
        if (auto s = weak.lock()) s->terminate();
      }
      // Sessions get a moment to say goodbye; then the loops stop regardless.
      grace_timer_->expires_after(std::chrono::seconds(3));
      grace_timer_->async_wait([this](const error_code& ec) {
        if (ec) return;
        std::lock_guard lock(sessions_mutex_);
        stop_all();
      });
    });
  }

  // Called with sessions_mutex_ held.
  void stop_all() {
    if (stopped_) return;
    stopped_ = true;
    asio::post(*contexts_.front(), [this] {
      if (grace_timer_) grace_timer_->cancel();
      error_code ignored;
      if (acceptor_) acceptor_->close(ignored);
      if (signals_) signals_->cancel();
      if (reload_signal_) reload_signal_->cancel();
      for (auto& g : *work_guards_) g.reset();
      for (auto& ctx : contexts_) ctx->stop();
    });
  }

  std::shared_ptr<const config::Config> config_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::optional<ssl::context> client_tls_;
  ssl::context backend_tls_{ssl::context::tls_client};
  CancelRegistry cancels_;
  PolicyStore policies_;
  rewriter::Rewriter rewriter_;
  rewriter::RewriteCache rewrite_cache_;
  AnalysisPool analysis_pool_;
  SaltedPasswordCache salted_passwords_;
  ProxyServices services_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::signal_set> reload_signal_;
  std::optional<asio::steady_timer> grace_timer_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>>* work_guards_ = nullptr;

  std::mutex sessions_mutex_;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;
  std::atomic<uint64_t> next_session_id_{0};
  bool draining_ = false;
  bool stopped_ = false;
};

Server::Server(std::shared_ptr<const config::Config> config,
               std::shared_ptr<const policy::Policy> policy)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(policy))) {}
Server::~Server() = default;
int Server::run() { return impl_->run(); }

}  // namespace tenantgate::proxy
