#include "proxy/server.h"

#include <fmt/ranges.h>
#include <pthread.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "identity/token_authority.h"
#include "ops/admin_console.h"
#include "ops/admin_http.h"
#include "ops/audit_sink.h"
#include "ops/backend_probe.h"
#include "ops/metrics.h"
#include "ops/operations.h"
#include "ops/policy_version.h"
#include "proxy/analysis_pool.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
#include "proxy/connection_limits.h"
#include "proxy/frame_decoder.h"
#include "proxy/log.h"
#include "proxy/messages.h"
#include "proxy/policy_store.h"
#include "proxy/principal_store.h"
#include "proxy/read_buffer.h"
#include "proxy/scram.h"
#include "proxy/session.h"
#include "proxy/session_slots.h"
#include "proxy/startup_packet.h"
#include "proxy/stream.h"
#include "proxy/tenant_rate_limit.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

rewriter::Options rewriter_options(const config::Config& config) {
  rewriter::Options options;
  options.max_statement_bytes = config.limits.max_statement_bytes;
  options.dialect = config.backend.dialect == config::BackendDialect::kPostgreSQL
                        ? rewriter::Dialect::kPostgreSQL
                        : rewriter::Dialect::kCockroachDB;
  return options;
}

namespace {

using namespace asio::experimental::awaitable_operators;

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

// A message that can repeat thousands of times a second under attack (accept
// failures, refused connections): logged at most once per interval, with the
// number of occurrences that were not logged. Used from one thread.
class ThrottledLog {
 public:
  explicit ThrottledLog(std::chrono::steady_clock::duration interval) : interval_(interval) {}

  void note(spdlog::level::level_enum level, std::string_view message) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < interval_) {
      ++suppressed_;
      return;
    }
    if (suppressed_ > 0) {
      log_server(level, fmt::format("{} (and {} more like it since the last such line)", message,
                                    suppressed_));
    } else {
      log_server(level, message);
    }
    last_ = now;
    suppressed_ = 0;
  }

 private:
  const std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  uint64_t suppressed_ = 0;
};

// Refused connections answered after their TLS negotiation at a time; more
// get the error at once.
constexpr int kMaxLingeringRefusals = 64;
// Descriptors that are not sessions': the listener, event loops, signals,
// the log, cancel requests in flight.
constexpr uint64_t kReservedDescriptors = 64;

// The soft open-file limit after raising it to the hard limit, as servers do:
// the default soft limit (often 1024) is far below what max_client_connections
// needs. RLIM_INFINITY when there is none.
rlim_t raise_descriptor_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return RLIM_INFINITY;
  const rlim_t before = limit.rlim_cur;
  rlim_t target = limit.rlim_max;
  if (target == RLIM_INFINITY) {
    // The kernel caps descriptors at fs.nr_open even without a hard limit.
    unsigned long nr_open = 1048576;
    if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
      if (std::fscanf(f, "%lu", &nr_open) != 1) nr_open = 1048576;
      std::fclose(f);
    }
    target = nr_open;
  }
  if (limit.rlim_cur < target) {
    rlimit raised = limit;
    raised.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
      log_server(spdlog::level::info,
                 fmt::format("raised the open-file limit (RLIMIT_NOFILE) from {} to {}", before,
                             limit.rlim_cur));
    }
  }
  return limit.rlim_cur;
}

// The connection limits, with max_client_connections lowered to what the
// open-file limit can hold (two descriptors per session: client and backend),
// so that a flood is refused with 53300 instead of running out of
// descriptors, which leaves every new client waiting in the listen backlog.
ConnectionLimits::Settings fit_limits(const config::Limits& limits) {
  ConnectionLimits::Settings settings{limits.max_client_connections, limits.max_startups,
                                      limits.max_startups_per_source,
                                      limits.max_connections_per_tenant};
  const rlim_t descriptors = raise_descriptor_limit();
  if (descriptors == RLIM_INFINITY) return settings;
  const uint64_t reserved = kReservedDescriptors + kMaxLingeringRefusals;
  const uint64_t fit = descriptors > reserved + 2 ? (descriptors - reserved) / 2 : 1;
  if (settings.max_client_connections == 0 || settings.max_client_connections > fit) {
    log_server(spdlog::level::warn,
               fmt::format("limits.max_client_connections lowered from {} to {}: the open-file "
                           "limit of {} holds no more sessions (two descriptors each); raise the "
                           "limit (ulimit -n, LimitNOFILE=) to allow more",
                           settings.max_client_connections == 0
                               ? std::string("0 (no limit)")
                               : std::to_string(settings.max_client_connections),
                           fit, descriptors));
    settings.max_client_connections = static_cast<uint32_t>(fit);
  }
  return settings;
}

// The limit a ConnectionLimits::admit refusal names, as a metrics reason.
ops::StartupRefusal limit_refusal(const std::string& message) {
  if (message.find("max_startups_per_source") != std::string::npos) {
    return ops::StartupRefusal::kMaxStartupsPerSource;
  }
  if (message.find("max_startups") != std::string::npos) return ops::StartupRefusal::kMaxStartups;
  return ops::StartupRefusal::kMaxClientConnections;
}

// The [pool] settings the sessions act on today: session mode, where
// pool.size caps the clients that hold a backend at once (session_slots.h),
// and the tenant statement rate. Transaction mode and idle backends kept
// open would be silently ignored, so the server refuses to start with them
// instead (fail closed) until sessions take their backends from the pool.
void refuse_inactive_pool_settings(const config::Pool& pool) {
  const char* key = nullptr;
  if (pool.mode != config::PoolMode::kSession) {
    key = "mode = \"transaction\"";
  } else if (pool.min_idle != 0) {
    key = "min_idle";
  }
  if (key != nullptr) {
    throw std::runtime_error(fmt::format(
        "pool.{} is not supported by this version of tenantgate yet (sessions open a backend "
        "each at login; backends are not handed from one client to the next); remove it from "
        "[pool]",
        key));
  }
}

}  // namespace

class Server::Impl {
 public:
  Impl(std::shared_ptr<const config::Config> config, std::shared_ptr<const policy::Policy> policy)
      : config_(std::move(config)),
        policies_(std::move(policy)),
        principals_(principals_of(config_)),
        limits_(fit_limits(config_->limits)),
        rewriter_(rewriter_options(*config_)),
        rewrite_cache_(config_->limits.rewrite_cache_bytes),
        analysis_pool_(analysis_options(config_->limits)),
        statement_rate_(config_->pool.tenant_statements_per_second),
        tokens_(identity::load_token_authority(*config_)),
        audit_(config_->audit.mode == config::AuditMode::kOff
                   ? nullptr
                   : std::make_unique<ops::AuditSink>(config_->audit.file,
                                                      config_->audit.queue_events)),
        operations_(*config_, metrics_, audit_.get()) {
    if (config_->backend.dialect == config::BackendDialect::kAuto) {
      rewriter::Options options = rewriter_options(*config_);
      options.dialect = rewriter::Dialect::kPostgreSQL;
      postgres_rewriter_.emplace(options);
      postgres_rewrite_cache_ =
          std::make_unique<rewriter::RewriteCache>(config_->limits.rewrite_cache_bytes);
    }
    operations_.set_policy_version(
        ops::policy_file_version(config_->policy_file).value_or("unknown"));
    metrics_.set_sources({[this] { return client_counts(); },
                          [this] {
                            const auto s = rewrite_cache_.stats();
                            return ops::CacheCounts{
                                s.exact_hits + s.shape_hits, s.exact_misses + s.shape_misses,
                                s.evictions, rewrite_cache_.bytes(), rewrite_cache_.entries()};
                          },
                          [this] { return audit_ ? audit_->counts() : ops::AuditCounts{}; }});
    unsigned threads = config_->listen.threads;
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<asio::any_io_executor> executors;
    for (unsigned i = 0; i < threads; ++i) {
      contexts_.push_back(std::make_unique<asio::io_context>(1));
      executors.push_back(contexts_.back()->get_executor());
    }
    session_slots_ = make_session_slots(std::move(executors), config_->pool);
    setup_tls();
    services_.config = config_;
    services_.cancels = &cancels_;
    services_.policies = &policies_;
    services_.principals = &principals_;
    services_.limits = &limits_;
    services_.rewriter = &rewriter_;
    services_.rewrite_cache = &rewrite_cache_;
    if (postgres_rewriter_) {
      services_.postgres_rewriter = &*postgres_rewriter_;
      services_.postgres_rewrite_cache = postgres_rewrite_cache_.get();
    }
    services_.analysis = &analysis_pool_;
    services_.salted_passwords = &salted_passwords_;
    services_.tokens = tokens_.get();
    services_.operations = &operations_;
    services_.admin = &admin_console_;
    services_.paused = &paused_;
    services_.session_slots = session_slots_.get();
    if (statement_rate_.per_second() != 0) services_.statement_rate = &statement_rate_;
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
    admin_.reset();
    grace_timer_.reset();
    audit_signal_.reset();
    reload_signal_.reset();
    signals_.reset();
    acceptor_.reset();
    // Its timer lives on the first loop; sessions give their slots back
    // while the loops are destroyed below, and the slots outlive them.
    if (session_slots_) session_slots_->stop();
    contexts_.clear();
  }

  int run() {
    refuse_inactive_pool_settings(config_->pool);
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
    if (audit_) {
      audit_signal_.emplace(main_context, SIGUSR1);
      wait_for_audit_reopen();
    }
    if (config_->admin.enabled) start_admin();
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
    ThrottledLog accept_errors(std::chrono::seconds(5));
    ThrottledLog refusals(std::chrono::seconds(5));
    auto backoff = std::chrono::milliseconds(10);
    for (;;) {
      auto& ctx = *contexts_[next];
      next = (next + 1) % contexts_.size();
      auto [ec, socket] = co_await acceptor_->async_accept(ctx, use_nothrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
        short_of_descriptors_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        accept_errors.note(spdlog::level::warn, fmt::format("accept failed: {}; retrying in {} ms",
                                                            ec.message(), backoff.count()));
        // Out of descriptors and similar: the pending connection stays in the
        // backlog, so retrying at once would spin. Back off, up to 100 ms.
        asio::steady_timer pause(co_await asio::this_coro::executor, backoff);
        co_await pause.async_wait(use_nothrow);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
        continue;
      }
      backoff = std::chrono::milliseconds(10);
      error_code ignored;
      const auto peer = socket.remote_endpoint(ignored);
      ConnectionSlot slot;
      if (auto refused = limits_.admit(peer.address().to_string(), slot)) {
        metrics_.startup_refused(limit_refusal(*refused));
        refusals.note(spdlog::level::warn, fmt::format("refused a connection from {}: {}",
                                                       peer.address().to_string(), *refused));
        refuse(std::move(socket), *refused);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ignored);
      const uint64_t id = ++next_session_id_;
      auto session = std::make_shared<Session>(std::move(socket), services_, id, std::move(slot));
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

  // Over a limit: FATAL 53300 and close. The client gets the error after its
  // TLS negotiation, as PostgreSQL answers "too many clients": libpq does not
  // show an error sent in reply to an SSLRequest (its default, sslmode=prefer,
  // sends one). That exchange runs for at most kMaxLingeringRefusals
  // connections at a time, each within 2 seconds; beyond that, or while short
  // of descriptors, the error is written at once and the connection closed,
  // as PostgreSQL's postmaster does when it cannot start a backend.
  void refuse(tcp::socket socket, const std::string& message) {
    std::string reply = error_response("FATAL", "53300", message);
    bool answer_later = false;
    if (std::chrono::steady_clock::now() >= short_of_descriptors_until_) {
      if (lingering_refusals_.fetch_add(1) < kMaxLingeringRefusals) {
        answer_later = true;
      } else {
        --lingering_refusals_;
      }
    }
    if (answer_later) {
      auto executor = socket.get_executor();
      asio::co_spawn(executor, answer_refused(std::move(socket), std::move(reply)), asio::detached);
      return;
    }
    error_code ignored;
    socket.non_blocking(true, ignored);
    // A fresh socket's send buffer holds a short message: this does not block.
    socket.write_some(asio::buffer(reply), ignored);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    // What already arrived is read so that closing does not reset the connection.
    char sink[4096];
    socket.read_some(asio::buffer(sink), ignored);
    socket.close(ignored);
  }

  awaitable<void> answer_refused(tcp::socket socket, std::string reply) {
    Stream stream(std::move(socket));
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(2));
    bool replied = false;
    co_await (refusal_exchange(stream, reply, replied) || timer.async_wait(use_nothrow));
    if (!replied && !stream.tls_active()) {
      // A client that sent nothing usable still gets the reason, best effort.
      std::string_view rest = reply;
      error_code ignored;
      stream.try_write(rest, ignored);
    }
    stream.close();
    --lingering_refusals_;
  }

  // Negotiates TLS (or declines it) as a session would, reads the
  // StartupMessage, sends `reply`, and waits for the client to close.
  awaitable<void> refusal_exchange(Stream& stream, const std::string& reply, bool& replied) {
    ReadBuffer buffer;
    for (int packets = 0; packets < 3; ++packets) {
      DecodeResult decoded;
      for (;;) {
        decoded = decode_startup_packet(buffer.pending(), kMaxStartupPacketBytes);
        if (decoded.status != DecodeStatus::kNeedMore) break;
        auto space = buffer.prepare(ReadBuffer::kInitialSize);
        auto [ec, n] = co_await stream.read_some(asio::buffer(space.data(), space.size()));
        if (ec) co_return;
        buffer.commit(n);
      }
      if (decoded.status == DecodeStatus::kError) break;
      auto parsed = parse_startup_packet(decoded.frame.body);
      buffer.consume(decoded.frame.total_size);
      const auto* packet = std::get_if<StartupPacket>(&parsed);
      if (!packet || packet->kind == StartupPacket::Kind::kStartup) break;
      if (packet->kind == StartupPacket::Kind::kCancel) co_return;
      if (packet->kind == StartupPacket::Kind::kSsl && client_tls_ && !stream.tls_active() &&
          buffer.empty()) {
        if (co_await stream.write("S")) co_return;
        stream.start_tls(*client_tls_);
        if (co_await stream.handshake(ssl::stream_base::server)) co_return;
        continue;
      }
      if (co_await stream.write("N")) co_return;  // SSLRequest without TLS, GSSENCRequest
    }
    replied = true;
    if (co_await stream.write(reply)) co_return;
    char byte;
    co_await stream.read_some(asio::buffer(&byte, 1));
  }

  // The admin HTTP listener: /metrics, /healthz, /readyz (ops/admin_http.h).
  // Ready means a policy is loaded, the server is not draining, and the
  // backend accepts TCP connections.
  void start_admin() {
    admin_ = std::make_unique<ops::AdminHttp>(
        config_->admin.host, config_->admin.port, metrics_, [this]() -> std::optional<std::string> {
          if (!policies_.get()) return "no policy loaded";
          if (draining_flag_.load()) return "shutting down";
          if (paused_.load()) return "paused (admin console PAUSE)";
          return ops::probe_backend(config_->backend.host, config_->backend.port,
                                    std::chrono::seconds(1));
        });
    log_server(spdlog::level::info,
               fmt::format("admin listener on http://{}:{} (/metrics, /healthz, /readyz)",
                           config_->admin.host, admin_->port()));
  }

  ops::ClientCounts client_counts() {
    ops::ClientCounts counts;
    std::lock_guard lock(sessions_mutex_);
    for (auto& [id, weak] : sessions_) {
      auto s = weak.lock();
      if (!s) continue;
      if (s->started()) {
        ++counts.active;
      } else if (s->facts().admin) {
        ++counts.admin;
      } else {
        ++counts.startup;
      }
    }
    // In session pooling every relaying session holds one backend connection.
    counts.backends = counts.active;
    return counts;
  }

  // What the admin console shows and does (ops/admin_console.h). Called from
  // the admin session's loop thread.
  class Admin : public ops::AdminBackend {
   public:
    explicit Admin(Impl& server) : s_(server) {}

    ops::AdminTable stats() override {
      // Every sample of /metrics but the histogram's buckets.
      ops::AdminTable t{{"metric", "value"}, {}};
      const std::string text = s_.metrics_.render();
      std::size_t i = 0;
      while (i < text.size()) {
        std::size_t end = text.find('\n', i);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + i, end - i);
        i = end + 1;
        if (line.empty() || line.front() == '#' || line.find("_bucket{") != line.npos) continue;
        const std::size_t space = line.rfind(' ');
        if (space == line.npos) continue;
        t.rows.push_back({std::string(line.substr(0, space)), std::string(line.substr(space + 1))});
      }
      return t;
    }
    ops::AdminTable clients() override { return s_.session_table(false); }
    ops::AdminTable servers() override { return s_.session_table(true); }
    ops::AdminTable pools() override {
      // Session pooling: one pool per database and principal, one backend
      // connection per relaying client.
      std::map<std::pair<std::string, std::string>, std::array<uint64_t, 2>> pools;
      for (const auto& row : s_.session_table(false).rows) {
        auto& p = pools[{row[4], row[1]}];
        ++p[0];
        if (row[6] == "active") ++p[1];
      }
      ops::AdminTable t{{"database", "principal", "clients", "servers", "pool_mode"}, {}};
      for (const auto& [key, counts] : pools) {
        t.rows.push_back({key.first, key.second, std::to_string(counts[0]),
                          std::to_string(counts[1]), "session"});
      }
      return t;
    }
    ops::AdminTable policy() override {
      auto policy = s_.policies_.get();
      ops::AdminTable t{{"key", "value"}, {}};
      t.rows.push_back({"version", s_.operations_.policy_version()});
      t.rows.push_back({"file", s_.config_->policy_file});
      t.rows.push_back(
          {"enforcement", std::string(config::enforcement_name(s_.config_->enforcement))});
      t.rows.push_back({"default_action", std::string(policy::scope_name(policy->default_action))});
      t.rows.push_back({"search_path", fmt::format("{}", fmt::join(policy->search_path, ", "))});
      for (const auto& [name, table] : policy->tables) {
        std::string columns;
        if (!table.tenant_column.empty()) columns += "tenant " + table.tenant_column;
        if (!table.owner_column.empty()) {
          columns += (columns.empty() ? "" : ", ") + std::string("owner ") + table.owner_column;
        }
        t.rows.push_back({"table " + policy::to_string(name),
                          std::string(policy::scope_name(table.scope)) +
                              (columns.empty() ? "" : " (" + columns + ")")});
      }
      return t;
    }
    ops::AdminTable config() override {
      const config::Config& c = *s_.config_;
      ops::AdminTable t{{"key", "value"}, {}};
      auto add = [&](std::string k, std::string v) {
        t.rows.push_back({std::move(k), std::move(v)});
      };
      add("file", c.source_file);
      add("listen", fmt::format("{}:{}", c.listen.host, c.listen.port));
      add("listen.threads", std::to_string(s_.contexts_.size()));
      add("backend", fmt::format("{}:{}", c.backend.host, c.backend.port));
      add("backend.user", c.backend.user);
      add("backend.dialect",
          c.backend.dialect == config::BackendDialect::kPostgreSQL ? "postgresql" : "cockroachdb");
      add("auth.mode", c.auth_mode == config::AuthMode::kScram         ? "scram"
                       : c.auth_mode == config::AuthMode::kPassthrough ? "passthrough"
                                                                       : "trust");
      add("principals", std::to_string(s_.principals_.get()->size()));
      add("policy.file", c.policy_file);
      add("policy.enforcement", std::string(config::enforcement_name(c.enforcement)));
      add("admin.listen",
          c.admin.enabled ? fmt::format("{}:{}", c.admin.host, c.admin.port) : "off");
      add("audit.mode", std::string(config::audit_mode_name(c.audit.mode)));
      add("audit.file", c.audit.file.empty() ? "stdout" : c.audit.file);
      add("limits.max_client_connections", std::to_string(c.limits.max_client_connections));
      add("limits.max_connections_per_tenant", std::to_string(c.limits.max_connections_per_tenant));
      add("limits.rewrite_cache_bytes", std::to_string(c.limits.rewrite_cache_bytes));
      add("limits.shutdown_grace_ms", std::to_string(c.limits.shutdown_grace_ms));
      add("log.level", c.log.level);
      add("log.log_statement_values", c.log.log_statement_values ? "on" : "off");
      return t;
    }
    std::optional<std::string> reload() override {
      s_.reload_principals();
      return s_.reload_policy();
    }
    std::optional<std::string> pause() override {
      s_.paused_ = true;
      log_server(spdlog::level::info,
                 "PAUSE: new sessions wait before their backend login until RESUME (at most "
                 "limits.startup_timeout_ms); the admin console stays open");
      return std::nullopt;
    }
    std::optional<std::string> resume() override {
      s_.paused_ = false;
      log_server(spdlog::level::info, "RESUME: new sessions go on");
      return std::nullopt;
    }

   private:
    Impl& s_;
  };

  // SHOW CLIENTS (servers = false) or SHOW SERVERS.
  ops::AdminTable session_table(bool servers) {
    ops::AdminTable t;
    if (servers) {
      t.columns = {"session", "state"};
    } else {
      t.columns = {"session", "principal", "tenant", "user", "database", "peer", "state"};
    }
    std::lock_guard lock(sessions_mutex_);
    for (auto& [id, weak] : sessions_) {
      auto s = weak.lock();
      if (!s) continue;
      const SessionFacts f = s->facts();
      const std::string state = s->started() ? "active" : f.admin ? "admin" : "startup";
      if (servers) {
        if (s->started()) t.rows.push_back({std::to_string(id), state});
      } else {
        t.rows.push_back(
            {std::to_string(id), f.principal, f.tenant, f.user, f.database, f.peer, state});
      }
    }
    return t;
  }

  void wait_for_audit_reopen() {
    audit_signal_->async_wait([this](const error_code& ec, int) {
      if (ec) return;
      audit_->reopen();
      log_server(spdlog::level::info, "SIGUSR1: reopening the audit file");
      wait_for_audit_reopen();
    });
  }

  void wait_for_reload() {
    reload_signal_->async_wait([this](const error_code& ec, int) {
      if (ec) return;
      reload_principals();
      (void)reload_policy();
      wait_for_reload();
    });
  }

  // Reads the config file again and puts its principals in force; the rest of
  // the file needs a restart (a change is logged). A file that does not load,
  // or that changes how principals are read (auth.mode, [identity]), keeps
  // the principals in force.
  void reload_principals() {
    std::lock_guard reloading(reload_mutex_);
    const std::string& file = config_->source_file;
    std::shared_ptr<const config::Config> next;
    try {
      next = std::make_shared<const config::Config>(config::load_config_file(file));
    } catch (const std::exception& e) {
      log_server(
          spdlog::level::err,
          fmt::format("principals reload failed, keeping the principals in force: {}", e.what()));
      return;
    }
    if (next->auth_mode != config_->auth_mode || !(next->identity == config_->identity)) {
      log_server(
          spdlog::level::err,
          fmt::format("principals reload refused, keeping the principals in force: {} "
                      "changed in {}, which needs a restart",
                      next->auth_mode != config_->auth_mode ? "auth.mode" : "[identity]", file));
      return;
    }
    if (next->auth_mode == config::AuthMode::kScram) {
      for (const auto& p : next->principals) {
        if (!parse_scram_verifier(p.scram)) {
          log_server(spdlog::level::err,
                     fmt::format("principals reload failed, keeping the principals in force: "
                                 "{}:{}: principal \"{}\": scram is not a valid SCRAM-SHA-256 "
                                 "verifier",
                                 file, p.line, p.name));
          return;
        }
      }
    }
    std::vector<std::string> restart;
    if (!(next->listen == config_->listen)) restart.emplace_back("[listen]");
    if (!(next->backend == config_->backend)) restart.emplace_back("[backend]");
    if (next->revoked_sessions != config_->revoked_sessions) restart.emplace_back("[auth]");
    if (next->policy_file != config_->policy_file) restart.emplace_back("[policy]");
    if (!(next->limits == config_->limits)) restart.emplace_back("[limits]");
    if (!(next->log == config_->log)) restart.emplace_back("[log]");
    if (!restart.empty()) {
      log_server(spdlog::level::warn,
                 fmt::format("{} changed in {}: only [[principals]] is reloaded, the rest needs "
                             "a restart",
                             fmt::join(restart, ", "), file));
    }
    const auto count = next->principals.size();
    auto snapshot = principals_of(std::move(next));
    principals_.set(snapshot);
    log_server(spdlog::level::info,
               fmt::format("principals reloaded from {} ({} principals)", file, count));
    std::lock_guard lock(sessions_mutex_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) s->on_principals_reloaded(snapshot);
    }
  }

  // nullopt when the new policy is in force, otherwise why the old one stays.
  std::optional<std::string> reload_policy() {
    std::lock_guard reloading(reload_mutex_);
    try {
      auto next = policy::load_policy_file(config_->policy_file);
      const auto tables = next->tables.size();
      policies_.set(std::move(next));
      operations_.set_policy_version(
          ops::policy_file_version(config_->policy_file).value_or("unknown"));
      metrics_.policy_reload(true);
      // Entries are keyed by snapshot, so old ones could never hit again.
      rewrite_cache_.clear();
      if (postgres_rewrite_cache_) postgres_rewrite_cache_->clear();
      log_server(spdlog::level::info,
                 fmt::format("policy reloaded from {} ({} tables)", config_->policy_file, tables));
      return std::nullopt;
    } catch (const std::exception& e) {
      metrics_.policy_reload(false);
      log_server(spdlog::level::err,
                 fmt::format("policy reload failed, keeping the policy in force: {}", e.what()));
      return std::string("policy reload failed, keeping the policy in force: ") + e.what();
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
    draining_flag_ = true;
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
      if (audit_signal_) audit_signal_->cancel();
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
  PrincipalStore principals_;
  ConnectionLimits limits_;
  std::atomic<int> lingering_refusals_{0};
  // Used by the accept loop only.
  std::chrono::steady_clock::time_point short_of_descriptors_until_{};
  rewriter::Rewriter rewriter_;
  rewriter::RewriteCache rewrite_cache_;
  // backend.dialect = "auto": sessions whose backend is PostgreSQL.
  std::optional<rewriter::Rewriter> postgres_rewriter_;
  std::unique_ptr<rewriter::RewriteCache> postgres_rewrite_cache_;
  AnalysisPool analysis_pool_;
  TenantRateLimit statement_rate_;
  // Outlives the sessions: ~Impl destroys the loops (and their sessions) first.
  std::unique_ptr<SessionSlots> session_slots_;
  SaltedPasswordCache salted_passwords_;
  // [identity.token]'s keys and cache; null without the table. Keys are read
  // once, here: a reload does not change them.
  std::unique_ptr<const identity::TokenAuthority> tokens_;
  ops::Metrics metrics_;
  std::unique_ptr<ops::AuditSink> audit_;
  ops::Operations operations_;
  std::unique_ptr<ops::AdminHttp> admin_;
  std::atomic<bool> draining_flag_{false};  // draining_, for the admin threads
  std::atomic<bool> paused_{false};         // admin console PAUSE
  std::mutex reload_mutex_;                 // SIGHUP and RELOAD one at a time
  Admin admin_console_{*this};
  ProxyServices services_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::signal_set> signals_;
  std::optional<asio::signal_set> reload_signal_;
  std::optional<asio::signal_set> audit_signal_;
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
