#include "proxy/session.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <variant>

#include "policy/identity.h"
#include "proxy/admin_session.h"
#include "proxy/catalog_snapshot.h"
#include "proxy/frame_decoder.h"
#include "proxy/message_io.h"
#include "proxy/messages.h"
#include "proxy/param_check.h"
#include "proxy/startup_identity.h"
#include "proxy/startup_settings.h"

namespace tenantgate::proxy {
namespace {

using namespace asio::experimental::awaitable_operators;

// Every client message before authentication completes (SASL messages, a
// password): nothing is allocated for more on behalf of a client that has not
// proven who it is. PostgreSQL allows 1024 bytes for a SASL message and 65535
// for a password; a SCRAM message is about 200 bytes.
constexpr std::size_t kMaxAuthMessage = 8192;
// The largest message PostgreSQL itself sends (a 1 GB field plus headers).
constexpr std::size_t kMaxBackendMessage = (1u << 30) + 1024;
constexpr std::size_t kReadChunk = ReadBuffer::kInitialSize;

// A rewrite on the analysis pool and the session waiting for it. The timer
// never expires: the pool thread stores the result and cancels the timer
// through the session's executor, which wakes the session. Shared by both,
// so a session that ends first leaves the pool nothing dangling.
struct AnalysisWait {
  explicit AnalysisWait(const asio::any_io_executor& executor)
      : timer(executor, asio::steady_timer::time_point::max()) {}
  asio::steady_timer timer;
  std::mutex mutex;
  std::optional<rewriter::RewriteResult> result;  // under mutex
  std::atomic<bool> abandoned{false};             // the session stopped waiting
};

rewriter::RewriteResult analysis_refusal(AnalysisPool::Refusal why, const config::Limits& limits,
                                         const std::string& tenant) {
  switch (why) {
    case AnalysisPool::Refusal::kTimedOut:
      return rewriter::RewriteResult::refused(
          "53000",
          fmt::format("tenant analysis budget exceeded: the statement waited {} ms for "
                      "analysis (tenant {} is limited to {} ms of analysis per second)",
                      limits.analysis_queue_timeout_ms, tenant, limits.analysis_ms_per_second));
    case AnalysisPool::Refusal::kTooMany:
      break;
  }
  return rewriter::RewriteResult::refused(
      "53000", fmt::format("tenant analysis budget exceeded: tenant {} already has {} statements "
                           "waiting for analysis",
                           tenant, limits.max_pending_analyses));
}

std::string endpoint_text(const tcp::socket& socket) {
  error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

Session::Session(tcp::socket client, const ProxyServices& services, uint64_t id,
                 ConnectionSlot slot)
    : services_(services),
      config_(*services.config),
      id_(id),
      client_(std::move(client)),
      slot_(std::move(slot)),
      report_(services.operations, id) {
  log_context_.set("session", std::to_string(id_));
  log_context_.set("peer", endpoint_text(client_.socket()));
  unsigned char token[8];
  if (RAND_bytes(token, sizeof token) != 1) std::abort();
  for (unsigned char c : token) refusal_token_ += fmt::format("{:02x}", c);
}

Session::~Session() {
  if (proxy_pid_) services_.cancels->remove(*proxy_pid_);
}

void Session::log(spdlog::level::level_enum level, std::string_view message) const {
  log_line(level, log_context_, message);
}

void Session::fail(std::string sqlstate, std::string message) {
  if (!fatal_) fatal_ = Fatal{std::move(sqlstate), std::move(message)};
}

void Session::terminate() {
  terminating_ = true;
  asio::post(client_.socket().get_executor(), [self = shared_from_this()] {
    self->fail("57P01", "terminating connection due to administrator command");
    error_code ignored;
    self->client_.socket().cancel(ignored);
    if (self->backend_) self->backend_->socket().cancel(ignored);
  });
}

awaitable<void> Session::run() {
  asio::steady_timer deadline(co_await asio::this_coro::executor,
                              std::chrono::milliseconds(config_.limits.startup_timeout_ms));
  auto started = co_await (startup() || deadline.async_wait(use_nothrow));
  slot_.end_startup();
  if (started.index() == 1) {
    if (phase_ == Phase::kBackendLogin) {
      fail("08001", "the backend did not complete the login within limits.startup_timeout_ms");
    } else {
      fail("08P01", "start-up did not finish within limits.startup_timeout_ms");
    }
    log(spdlog::level::info, "start-up timed out");
  } else if (std::get<0>(started) && admin_) {
    co_await serve_admin_console(client_, client_buffer_, *services_.admin, principal_name_,
                                 config_.limits.max_message_bytes);
  } else if (std::get<0>(started)) {
    phase_ = Phase::kReady;
    started_ = true;
    co_await relay();
  }
  if (!started_ && fatal_) report_.startup_refused(fatal_->sqlstate, fatal_->message);
  co_await send_fatal_and_close();
}

awaitable<void> Session::send_fatal_and_close() {
  if (fatal_) {
    log(spdlog::level::info,
        fmt::format("closing: FATAL {} {}", fatal_->sqlstate, fatal_->message));
    // Best effort within a short bound: the peer may be gone or not reading.
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::seconds(2));
    co_await (client_.write(error_response("FATAL", fatal_->sqlstate, fatal_->message)) ||
              timer.async_wait(use_nothrow));
  }
  if (backend_) {
    if (phase_ == Phase::kReady && tracker_ && tracker_->owed_ready_for_query() > 0) {
      co_await cancel_backend_query();
    }
    backend_->close();
  }
  client_.close();
}

DecodeStatus Session::next_message(ReadBuffer& buffer, bool startup, std::size_t max_bytes,
                                   bool from_client, ReadResult& out) {
  auto pending = buffer.pending();
  DecodeResult decoded =
      startup ? decode_startup_packet(pending, max_bytes) : decode_message(pending, max_bytes);
  if (decoded.status == DecodeStatus::kMessage) {
    out = ReadResult{true, decoded.frame.type, decoded.frame.body, decoded.frame.total_size};
  } else if (decoded.status == DecodeStatus::kError) {
    if (from_client) {
      fail("08P01", fmt::format("invalid message from client: {}", decoded.error));
    } else {
      fail("08006", fmt::format("invalid message from the backend: {}", decoded.error));
    }
  }
  return decoded.status;
}

asio::mutable_buffer Session::read_space(ReadBuffer& buffer) {
  auto space = buffer.prepare(kReadChunk);
  return asio::buffer(space.data(), space.size());
}

bool Session::read_done(error_code ec, std::size_t n, ReadBuffer& buffer, bool from_client) {
  if (ec) {
    // Once relaying, a backend that closes has already sent its own FATAL
    // (which was relayed); a cancelled read means the session is ending.
    if (!from_client && phase_ != Phase::kReady && ec != asio::error::operation_aborted) {
      fail("08006", "the backend closed the connection");
    }
    return false;
  }
  buffer.commit(n);
  return true;
}

awaitable<Session::ReadResult> Session::read_message(Stream& stream, ReadBuffer& buffer,
                                                     bool startup, std::size_t max_bytes,
                                                     bool from_client) {
  for (;;) {
    ReadResult message;
    switch (next_message(buffer, startup, max_bytes, from_client, message)) {
      case DecodeStatus::kMessage:
        co_return message;
      case DecodeStatus::kError:
        co_return ReadResult{};
      case DecodeStatus::kNeedMore:
        break;
    }
    auto [ec, n] = co_await stream.read_some(read_space(buffer));
    if (!read_done(ec, n, buffer, from_client)) co_return ReadResult{};
  }
}

// ---- Start-up ---------------------------------------------------------------

awaitable<bool> Session::startup() {
  StartupPacket packet;
  if (!co_await negotiate(packet)) co_return false;

  auto extracted = extract_startup_identity(packet.params, config_.identity.tenant_param,
                                            config_.identity.user_param);
  if (auto* error = std::get_if<StartupIdentityError>(&extracted)) {
    fail("28000", error->message);
    co_return false;
  }
  auto& identity = std::get<StartupIdentity>(extracted);
  raw_tenant_ = identity.tenant;
  raw_user_ = identity.user;
  raw_token_ = identity.token;
  client_params_ = std::move(identity.forwarded);

  const std::string* user = find_param(client_params_, "user");
  principal_name_ = user ? *user : "";
  const std::string* database = find_param(client_params_, "database");
  database_ = database && !database->empty() ? *database : principal_name_;
  log_context_.set("principal", principal_name_);

  if (config_.listen.tls == config::ListenTls::kRequire && !client_.tls_active()) {
    fail("28000", "tenantgate requires TLS on this listener (listen.tls = \"require\")");
    co_return false;
  }
  principals_ = services_.principals->get();
  principal_ = config::find_principal(*principals_, principal_name_);
  if (!principal_) {
    fail("28000", fmt::format("unknown principal \"{}\": it is not listed in the tenantgate "
                              "configuration",
                              principal_name_));
    co_return false;
  }

  // The admin console: an admin principal, authenticated as usual; run()
  // then serves it. (g++ 12 miscompiles co_await in a nested member
  // coroutine here and in && operands: keep these steps inline.)
  if (database_ == ops::kAdminDatabase) {
    if (!admin_allowed()) co_return false;
    phase_ = Phase::kAuthenticating;
    if (config_.auth_mode == config::AuthMode::kScram) {
      if (!co_await authenticate_client_scram()) co_return false;
    }
    co_return admin_ready();
  }
  // PAUSE (admin console): new sessions wait here, before any backend work,
  // until RESUME or the start-up deadline.
  while (services_.paused && services_.paused->load() && !terminating_) {
    asio::steady_timer wait(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
    co_await wait.async_wait(use_nothrow);
  }

  // What the backend will see: the client's parameters without identity, with
  // the database made explicit (PostgreSQL defaults it to the user name, and
  // the login user may change below).
  backend_params_ = client_params_;
  if (!database || database->empty()) {
    std::erase_if(backend_params_, [](const auto& p) { return p.first == "database"; });
    backend_params_.emplace_back("database", database_);
  }

  phase_ = Phase::kAuthenticating;
  switch (config_.auth_mode) {
    case config::AuthMode::kScram:
      if (!co_await authenticate_client_scram()) co_return false;
      if (!bind_identity()) co_return false;
      break;
    case config::AuthMode::kTrust:
      if (!bind_identity()) co_return false;
      break;
    case config::AuthMode::kPassthrough:
      // The backend authenticates the client's own role; identity is checked
      // after it has said yes, before anything else is relayed.
      break;
  }

  const bool passthrough = config_.auth_mode == config::AuthMode::kPassthrough;
  if (!passthrough) {
    for (auto& [name, value] : backend_params_) {
      if (name == "user") value = config_.backend.user;
    }
  }
  if (!principal_->bypass) pin_backend_settings();
  // Bypass principals are trusted with any setting; for everyone else a
  // start-up setting is held to the same allow-list as SET. (Checked after
  // identity so that identity problems are reported as such.)
  if (!principal_->bypass) {
    if (auto refused = check_startup_settings(client_params_)) {
      fail("42501", *refused);
      co_return false;
    }
  }
  phase_ = Phase::kBackendLogin;
  if (!co_await acquire_backend_slot()) co_return false;
  if (terminating_) co_return false;
  if (!co_await connect_backend()) co_return false;
  if (terminating_) co_return false;  // terminate() could not cancel the connect
  if (!co_await login_backend(passthrough)) co_return false;
  if (terminating_) co_return false;
  if (!principal_->bypass && !co_await load_catalog_snapshot()) co_return false;

  tracker_.emplace(refusal_token_, bypass_);
  publish_facts();
  // A shadow session's filter forwards everything; observe() records what
  // enforcement would have done.
  filter_.emplace(caller_->identity(), bypass_ || report_.shadow(),
                  config_.limits.max_message_bytes, static_cast<StatementRewriter&>(*this));

  auto issued = services_.cancels->issue(CancelTarget{backend_pid_, backend_key_});
  proxy_pid_ = issued.pid;

  std::string out;
  if (!passthrough) out += authentication_ok();
  out += startup_replies_;
  out += backend_key_data(issued.pid, issued.key);
  out += ready_for_query(login_status_);
  startup_replies_.clear();
  startup_replies_.shrink_to_fit();
  if (co_await client_.write(out)) co_return false;
  log(principal_->bypass ? spdlog::level::warn : spdlog::level::info,
      principal_->bypass ? "session started (bypass principal: statements are not rewritten)"
                         : "session started");
  co_return true;
}

awaitable<bool> Session::negotiate(StartupPacket& packet) {
  for (;;) {
    auto message = co_await read_message(client_, client_buffer_, /*startup=*/true,
                                         kMaxStartupPacketBytes, /*from_client=*/true);
    if (!message.ok) co_return false;
    auto parsed = parse_startup_packet(message.body);
    client_buffer_.consume(message.total_size);
    if (auto* error = std::get_if<StartupParseError>(&parsed)) {
      fail("08P01", "invalid start-up packet: " + error->message);
      co_return false;
    }
    packet = std::move(std::get<StartupPacket>(parsed));
    switch (packet.kind) {
      case StartupPacket::Kind::kSsl: {
        if (client_.tls_active()) {
          fail("08P01", "SSLRequest after TLS was already negotiated");
          co_return false;
        }
        // Bytes that arrived behind the SSLRequest were sent before TLS and
        // must not be read as if they had been encrypted (CVE-2021-23214).
        if (!client_buffer_.empty()) {
          fail("08P01", "received unencrypted data after SSLRequest");
          co_return false;
        }
        if (!services_.client_tls) {
          if (co_await client_.write("N")) co_return false;
          continue;
        }
        if (co_await client_.write("S")) co_return false;
        client_.start_tls(*services_.client_tls);
        if (auto ec = co_await client_.handshake(ssl::stream_base::server)) {
          log(spdlog::level::info, "TLS handshake with client failed: " + ec.message());
          co_return false;
        }
        continue;
      }
      case StartupPacket::Kind::kGssEnc:
        if (!client_buffer_.empty()) {
          fail("08P01", "received data after GSSENCRequest");
          co_return false;
        }
        if (co_await client_.write("N")) co_return false;
        continue;
      case StartupPacket::Kind::kCancel:
        co_await forward_cancel(packet.cancel_pid, packet.cancel_key);
        co_return false;
      case StartupPacket::Kind::kStartup: {
        // Protocol 3.x with x > 0, and "_pq_." options: answer as PostgreSQL
        // does, with the newest minor version and the options not understood.
        std::vector<std::string> unrecognized;
        std::erase_if(packet.params, [&](const auto& p) {
          if (!p.first.starts_with("_pq_.")) return false;
          unrecognized.push_back(p.first);
          return true;
        });
        if ((packet.protocol & 0xffff) != 0 || !unrecognized.empty()) {
          if (co_await client_.write(negotiate_protocol_version(0, unrecognized))) co_return false;
        }
        co_return true;
      }
    }
  }
}

awaitable<bool> Session::authenticate_client_scram() {
  auto verifier = parse_scram_verifier(principal_->scram);
  if (!verifier) {
    // tenantgate check refuses such a config; this guards a hand-edited one.
    fail("28000", "principal has no usable SCRAM verifier");
    co_return false;
  }
  const std::string password_failed =
      fmt::format("password authentication failed for user \"{}\"", principal_name_);
  ScramServer scram(std::move(*verifier), random_nonce());
  // (Built step by step: g++ 12 miscompiles braced string lists inside coroutines.)
  std::vector<std::string> mechanisms;
  mechanisms.emplace_back("SCRAM-SHA-256");
  if (co_await client_.write(authentication_sasl(mechanisms))) co_return false;

  auto first = co_await read_message(client_, client_buffer_, false, kMaxAuthMessage, true);
  if (!first.ok) co_return false;
  if (first.type != 'p') {
    fail("08P01", fmt::format("expected SASLInitialResponse, got message type '{}'", first.type));
    co_return false;
  }
  auto initial = parse_sasl_initial_response(first.body);
  if (!initial) {
    fail("08P01", "malformed SASLInitialResponse");
    co_return false;
  }
  if (initial->mechanism != "SCRAM-SHA-256") {
    fail("28000", fmt::format("SASL mechanism \"{}\" is not supported", initial->mechanism));
    co_return false;
  }
  ScramStep step = scram.on_client_first(initial->data);
  client_buffer_.consume(first.total_size);
  if (!step.ok) {
    fail("08P01", "malformed SCRAM client-first-message: " + step.message);
    co_return false;
  }
  if (co_await client_.write(authentication_sasl_continue(step.message))) co_return false;

  auto final_message = co_await read_message(client_, client_buffer_, false, kMaxAuthMessage, true);
  if (!final_message.ok) co_return false;
  if (final_message.type != 'p') {
    fail("08P01", "expected SASLResponse");
    co_return false;
  }
  step = scram.on_client_final(final_message.body);
  client_buffer_.consume(final_message.total_size);
  if (!step.ok) {
    log(spdlog::level::warn, "SCRAM authentication failed: " + step.message);
    fail("28P01", password_failed);
    co_return false;
  }
  if (co_await client_.write(authentication_sasl_final(step.message))) co_return false;
  co_return true;
}

void Session::pin_backend_settings() {
  // The backend must resolve unqualified names through the policy's
  // search_path (the rewriter resolves them that way) and read string
  // literals as the rewriter does. Settings given at start-up are also what
  // RESET ALL returns to.
  checked_generation_ = services_.policies->generation();
  auto policy = services_.policies->get();
  pinned_search_path_ = policy->search_path;
  checked_policy_ = policy;
  std::string search_path;
  for (const auto& schema : policy->search_path) {
    if (!search_path.empty()) search_path += ',';
    search_path += policy::quote_identifier(schema);
  }
  // Each word escaped as pg_split_opts reads it: a backslash makes the next
  // character part of the word.
  std::string escaped;
  for (const std::string& word :
       {std::string("-c"), "search_path=" + search_path, std::string("-c"),
        std::string("standard_conforming_strings=on")}) {
    if (!escaped.empty()) escaped += ' ';
    for (char c : word) {
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\\') {
        escaped += '\\';
      }
      escaped += c;
    }
  }
  for (auto& [name, value] : backend_params_) {
    if (name == "options") {
      value += " " + escaped;
      return;
    }
  }
  backend_params_.emplace_back("options", escaped);
}

const std::shared_ptr<const policy::Policy>* Session::current_policy() {
  const uint64_t generation = services_.policies->generation();
  if (generation == checked_generation_) return &checked_policy_;
  auto policy = services_.policies->get();
  if (policy != checked_policy_ && policy->search_path != pinned_search_path_) {
    // The backend resolves unqualified names through the search_path pinned
    // at login; the rewriter would now resolve them through another.
    fail("57P01", "the policy's search_path changed: reconnect");
    return nullptr;
  }
  checked_policy_ = std::move(policy);
  checked_generation_ = generation;
  return &checked_policy_;
}

bool Session::bind_identity() {
  const auto& identity = config_.identity;
  bypass_ = principal_->bypass;
  identity_.database = database_;
  caller_.emplace(config_, *principal_, services_.tokens);
  caller_->set_database(database_);
  if (!bypass_) {
    StartupIdentity given;
    given.tenant = raw_tenant_;
    given.user = raw_user_;
    given.token = raw_token_;
    auto decided = startup_caller(*principal_, identity, given, services_.tokens,
                                  static_cast<int64_t>(std::time(nullptr)));
    if (auto* refusal = std::get_if<CallerRefusal>(&decided)) {
      fail(refusal->sqlstate, refusal->message);
      return false;
    }
    if (auto* from_token = std::get_if<TokenCaller>(&decided)) {
      if (from_token->caller) {
        tenant_ = from_token->caller->tenant.value;
        log_context_.set("tenant", tenant_);
        if (from_token->caller->user) log_context_.set("user", from_token->caller->user->value);
        caller_->bind(std::move(*from_token->caller));
      }
      return claim_limits();
    }
  }
  if (raw_tenant_) log_context_.set("tenant", *raw_tenant_);
  if (raw_user_) log_context_.set("user", *raw_user_);
  if (!raw_tenant_) {
    if (principal_->bypass) return claim_limits();
    fail("28000", fmt::format("no tenant given: set the start-up parameter \"{}\" (for example "
                              "options=-c {}=<tenant>)",
                              identity.tenant_param, identity.tenant_param));
    return false;
  }
  auto tenant = policy::canonical_value(identity.tenant_type, *raw_tenant_);
  if (!tenant) {
    fail("28000", fmt::format("tenant value is not a valid {} (identity.tenant_type)",
                              policy::value_type_name(identity.tenant_type)));
    return false;
  }
  if (!principal_->bypass && !tenant_allowed(*principal_, *tenant, identity.tenant_type)) {
    fail("28000",
         fmt::format("principal \"{}\" may not claim tenant \"{}\"", principal_name_, *tenant));
    return false;
  }
  tenant_ = *tenant;
  if (raw_user_) {
    auto user = policy::canonical_value(identity.user_type, *raw_user_);
    if (!user) {
      fail("28000", fmt::format("user value is not a valid {} (identity.user_type)",
                                policy::value_type_name(identity.user_type)));
      return false;
    }
    user_ = *user;
    identity_.user = policy::TypedValue{*user, identity.user_type};
  }
  identity_.tenant = policy::TypedValue{tenant_, identity.tenant_type};
  caller_->bind(identity_);
  return claim_limits();
}

bool Session::claim_limits() {
  // A reload during the login may have revoked what it was granted.
  if (auto latest = services_.principals->get(); latest != principals_) {
    if (auto why = revocation(*latest)) {
      fail("28000", fmt::format("principal \"{}\" {} the tenantgate configuration during the login",
                                principal_name_, *why));
      return false;
    }
  }
  // Counted once authenticated, as PostgreSQL checks a role's connection
  // limit: a client without the password cannot use up a principal's slots.
  // Bypass sessions are not counted per tenant.
  std::optional<std::string_view> tenant;
  if (!bypass_ && !tenant_.empty()) tenant = tenant_;
  if (auto refused =
          services_.limits->claim(slot_, principal_name_, principal_->max_connections, tenant)) {
    fail("53300", *refused);
    return false;
  }
  return true;
}

std::optional<std::string> Session::revocation(
    const std::vector<config::Principal>& principals) const {
  const config::Principal* now = config::find_principal(principals, principal_name_);
  if (!now) return "was removed from";
  if (now->bypass != principal_->bypass) return "changed its bypass flag in";
  if (!now->bypass && !tenant_.empty() &&
      !tenant_allowed(*now, tenant_, config_.identity.tenant_type)) {
    return fmt::format("may no longer claim tenant \"{}\" in", tenant_);
  }
  return std::nullopt;
}

void Session::on_principals_reloaded(PrincipalSnapshot principals) {
  asio::post(client_.socket().get_executor(), [self = shared_from_this(),
                                               principals = std::move(principals)] {
    if (!self->principal_ || self->fatal_) return;
    auto why = self->revocation(*principals);
    if (!why) return;
    const std::string what = fmt::format("principal \"{}\" {} the tenantgate configuration",
                                         self->principal_name_, *why);
    if (self->config_.revoked_sessions == config::RevokedSessions::kFinish) {
      self->log(spdlog::level::warn, what + ": the session goes on (auth.revoked_sessions)");
      return;
    }
    self->terminating_ = true;
    self->fail("57P01", "terminating connection: " + what);
    error_code ignored;
    self->client_.socket().cancel(ignored);
    if (self->backend_) self->backend_->socket().cancel(ignored);
  });
}

// ---- Backend ----------------------------------------------------------------

awaitable<bool> Session::acquire_backend_slot() {
  if (services_.session_slots == nullptr) co_return true;
  // In passthrough mode the tenant is not yet authenticated: those clients
  // wait in one queue, so that a tenant claimed by an unauthenticated
  // client cannot take that tenant's share.
  const std::string queue =
      config_.auth_mode == config::AuthMode::kPassthrough || bypass_ ? std::string() : tenant_;
  SessionSlots::Acquired got = co_await services_.session_slots->acquire(queue);
  if (!got.lease) {
    fail(got.sqlstate, got.message);
    co_return false;
  }
  backend_slot_ = std::move(got.lease);
  co_return true;
}

awaitable<bool> Session::connect_backend() {
  auto executor = co_await asio::this_coro::executor;
  const auto& backend = config_.backend;
  tcp::resolver resolver(executor);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(backend.host, std::to_string(backend.port), use_nothrow);
  const std::string where = fmt::format("{}:{}", backend.host, backend.port);
  if (rec) {
    fail("08001", fmt::format("could not resolve the backend host {}: {}", where, rec.message()));
    co_return false;
  }
  tcp::socket socket(executor);
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, use_nothrow);
  if (cec) {
    log(spdlog::level::err, fmt::format("backend {} unreachable: {}", where, cec.message()));
    fail("08001", fmt::format("could not connect to the backend at {}: {}", where, cec.message()));
    co_return false;
  }
  socket.set_option(tcp::no_delay(true));
  backend_.emplace(std::move(socket));

  if (backend.tls == config::BackendTls::kDisable) co_return true;
  MessageWriter request(0);
  request.i32(kSslRequestCode);
  if (co_await backend_->write(std::move(request).finish())) {
    fail("08006", "the backend closed the connection during TLS negotiation");
    co_return false;
  }
  char answer = 0;
  auto [aec, n] =
      co_await asio::async_read(backend_->socket(), asio::buffer(&answer, 1), use_nothrow);
  if (aec) {
    fail("08006", "the backend closed the connection during TLS negotiation");
    co_return false;
  }
  if (answer != 'S') {
    if (backend.tls == config::BackendTls::kPrefer && answer == 'N') co_return true;
    fail("08001",
         fmt::format("the backend at {} does not accept TLS (backend.tls requires it)", where));
    co_return false;
  }
  auto& tls = backend_->start_tls(*services_.backend_tls);
  SSL* ssl = tls.native_handle();
  if (backend.tls == config::BackendTls::kVerifyFull) {
    tls.set_verify_mode(ssl::verify_peer);
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl, backend.host.c_str()) != 1) {
      fail("08001", "could not set the backend host name for certificate verification");
      co_return false;
    }
  } else {
    tls.set_verify_mode(ssl::verify_none);
  }
  error_code addr_ec;
  asio::ip::make_address(backend.host, addr_ec);
  if (addr_ec) SSL_set_tlsext_host_name(ssl, backend.host.c_str());  // SNI for names only
  if (auto ec = co_await backend_->handshake(ssl::stream_base::client)) {
    fail("08001",
         fmt::format("TLS handshake with the backend at {} failed: {}", where, ec.message()));
    co_return false;
  }
  co_return true;
}

awaitable<bool> Session::login_backend(bool passthrough) {
  if (co_await backend_->write(encode_startup_message(backend_params_))) {
    fail("08006", "the backend closed the connection during start-up");
    co_return false;
  }
  const std::size_t client_max = kMaxAuthMessage;
  std::optional<ScramClient> scram;
  bool authenticated = false;

  // Relays one client message of the authentication exchange to the backend.
  auto relay_client_reply = [&]() -> awaitable<bool> {
    auto reply = co_await read_message(client_, client_buffer_, false, client_max, true);
    if (!reply.ok) co_return false;
    if (reply.type != 'p') {
      fail("08P01",
           fmt::format("expected an authentication response, got message type '{}'", reply.type));
      co_return false;
    }
    std::string raw(client_buffer_.pending().substr(0, reply.total_size));
    client_buffer_.consume(reply.total_size);
    if (co_await backend_->write(raw)) {
      fail("08006", "the backend closed the connection during authentication");
      co_return false;
    }
    co_return true;
  };

  for (;;) {
    auto message =
        co_await read_message(*backend_, backend_buffer_, false, kMaxBackendMessage, false);
    if (!message.ok) co_return false;
    const std::string raw(backend_buffer_.pending().substr(0, message.total_size));
    const char type = message.type;
    const std::string body(message.body);
    backend_buffer_.consume(message.total_size);

    switch (type) {
      case 'R': {
        if (authenticated) {
          fail("08006", "the backend sent an authentication request after AuthenticationOk");
          co_return false;
        }
        auto request = parse_auth_request(body);
        if (!request) {
          fail("08006", "malformed authentication request from the backend");
          co_return false;
        }
        if (request->code == 0) {
          authenticated = true;
          if (passthrough) {
            if (!bind_identity()) co_return false;
            startup_replies_ += raw;
          }
          continue;
        }
        if (passthrough) {
          std::string forward = raw;
          if (request->code == 10) {
            // Channel binding cannot cross a proxy: offer only plain SCRAM.
            std::vector<std::string> mechanisms;
            for (auto m : request->mechanisms) {
              if (!m.ends_with("-PLUS")) mechanisms.emplace_back(m);
            }
            forward = authentication_sasl(mechanisms);
          }
          if (co_await client_.write(forward)) co_return false;
          if (request->code == 12) continue;  // SASL final: nothing to answer
          if (request->code != 3 && request->code != 5 && request->code != 10 &&
              request->code != 11) {
            fail("08P01",
                 fmt::format("backend authentication method {} is not supported", request->code));
            co_return false;
          }
          if (!co_await relay_client_reply()) co_return false;
          continue;
        }
        const std::string& password = services_.backend_password;
        const std::string& login = config_.backend.user;
        std::string reply;
        switch (request->code) {
          case 3:
            reply = password_message(password);
            break;
          case 5:
            reply = password_message(md5_password_response(login, password, request->data));
            break;
          case 10: {
            auto& mechs = request->mechanisms;
            if (std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256") == mechs.end()) {
              fail("08006", "the backend offers no supported SASL mechanism");
              co_return false;
            }
            scram.emplace(password, random_nonce());
            scram->use_cache(services_.salted_passwords);
            reply = sasl_initial_response("SCRAM-SHA-256", scram->client_first());
            break;
          }
          case 11: {
            if (!scram) {
              fail("08006", "SASLContinue from the backend without SASL");
              co_return false;
            }
            auto step = scram->on_server_first(request->data);
            if (!step.ok) {
              fail("08006", "backend SCRAM exchange failed: " + step.message);
              co_return false;
            }
            reply = sasl_response(step.message);
            break;
          }
          case 12: {
            auto step = scram ? scram->on_server_final(request->data) : ScramStep{};
            if (!step.ok) {
              fail("08006", "the backend's SCRAM server signature is invalid");
              co_return false;
            }
            continue;
          }
          default:
            fail("08006",
                 fmt::format("backend authentication method {} is not supported", request->code));
            co_return false;
        }
        if (co_await backend_->write(reply)) {
          fail("08006", "the backend closed the connection during authentication");
          co_return false;
        }
        continue;
      }
      case 'E': {
        auto fields = parse_error_fields(body);
        if (!authenticated && !passthrough) {
          // The service login failed: the client's own credentials were fine.
          log(spdlog::level::err, "backend login as the service user failed: " +
                                      (fields ? fields->message : std::string("?")));
          fail("08006", "tenantgate could not log into the backend: " +
                            (fields ? fields->message : std::string("unreadable error")));
          co_return false;
        }
        // Errors the client would have seen from PostgreSQL itself (a wrong
        // password in passthrough mode, an unknown database): relay as they are.
        if (passthrough && !authenticated && fields && client_.tls_active() &&
            backend_->tls_active() &&
            fields->message.find("channel binding") != std::string::npos) {
          // The client signed "I could bind to a TLS channel" into its proof,
          // and the backend, seeing TLS, takes that as a downgrade. No relay
          // can change a signed message: say what to do instead.
          fail(fields->sqlstate, fields->message +
                                     " (tenantgate: channel binding cannot cross a proxy; connect "
                                     "with channel_binding=disable, or use auth.mode = \"scram\")");
          co_return false;
        }
        co_await client_.write(raw);
        co_return false;
      }
      case 'S': {
        // The backend's login is tenantgate's business: the client is told
        // it is its principal, and not a superuser.
        auto status = parse_parameter_status(body);
        if (status && status->name == "crdb_version") cockroach_backend_ = true;
        if (status && status->name == "crdb_version" && !bypass_ &&
            config_.backend.dialect == config::BackendDialect::kPostgreSQL) {
          // The guards written for PostgreSQL do not hold on CockroachDB.
          fail("08006",
               "the backend is CockroachDB but backend.dialect = \"postgresql\": refusing to "
               "rewrite for the wrong database");
          co_return false;
        }
        if (status && status->name == "session_authorization") {
          startup_replies_ += parameter_status(status->name, principal_name_);
        } else if (status && status->name == "is_superuser") {
          startup_replies_ += parameter_status(status->name, "off");
        } else {
          startup_replies_ += raw;
        }
        continue;
      }
      case 'N':
        startup_replies_ += raw;
        continue;
      case 'K': {
        auto key = parse_backend_key_data(body);
        if (!key) {
          fail("08006", "malformed BackendKeyData from the backend");
          co_return false;
        }
        backend_pid_ = key->pid;
        backend_key_ = key->key;
        continue;
      }
      case 'v':  // NegotiateProtocolVersion: tenantgate asked for 3.0 only
        continue;
      case 'Z': {
        auto status = parse_ready_for_query(body);
        if (!authenticated || !status) {
          fail("08006", "unexpected ReadyForQuery from the backend");
          co_return false;
        }
        login_status_ = *status;
        co_return true;
      }
      default:
        fail("08006",
             fmt::format("unexpected message type '{}' from the backend during start-up", type));
        co_return false;
    }
  }
}

awaitable<bool> Session::load_catalog_snapshot() {
  auto refuse = [&](const std::string& why) {
    log(spdlog::level::err, "could not load the app catalog snapshot: " + why);
    fail("08006", "tenantgate could not read the database's functions (" + why +
                      "); the function rules need them");
  };
  if (co_await backend_->write(query_message(catalog_snapshot_query()))) {
    refuse("the backend closed the connection");
    co_return false;
  }
  CatalogSnapshotBuilder builder;
  std::optional<std::string> error;
  for (;;) {
    auto message =
        co_await read_message(*backend_, backend_buffer_, false, kMaxBackendMessage, false);
    if (!message.ok) co_return false;
    const char type = message.type;
    const std::string body(message.body);
    backend_buffer_.consume(message.total_size);
    switch (type) {
      case 'T':  // RowDescription
      case 'C':  // CommandComplete
      case 'N':  // NoticeResponse
      case 'S':  // ParameterStatus
        break;
      case 'D':
        if (!builder.add_row(body) && !error) error = "unexpected row";
        break;
      case 'E': {
        auto fields = parse_error_fields(body);
        if (!error) error = fields ? fields->message : std::string("unreadable error");
        break;
      }
      case 'Z': {
        auto status = parse_ready_for_query(body);
        if (!status) error = "malformed ReadyForQuery";
        if (error) {
          refuse(*error);
          co_return false;
        }
        login_status_ = *status;
        identity_.catalog = builder.finish();
        caller_->set_catalog(identity_.catalog);
        co_return true;
      }
      default:
        refuse(fmt::format("unexpected message type '{}'", type));
        co_return false;
    }
  }
}

// ---- Relay ------------------------------------------------------------------

awaitable<void> Session::relay() { co_await (client_to_backend() || backend_to_client()); }

awaitable<void> Session::client_to_backend() {
  const std::size_t max = config_.limits.max_message_bytes;
  std::string out;
  ReadResult message;
  for (;;) {
    switch (next_message(client_buffer_, false, max, true, message)) {
      case DecodeStatus::kMessage:
        break;
      case DecodeStatus::kError:
        co_return;
      case DecodeStatus::kNeedMore: {
        auto [ec, n] = co_await client_.read_some(read_space(client_buffer_));
        if (!read_done(ec, n, client_buffer_, true)) co_return;  // client gone, or fatal_ set
        continue;
      }
    }
    // Forward every whole message already buffered in one write.
    out.clear();
    for (;;) {
      if (!bypass_) {
        const CallerStep step = co_await filter_caller(message.type, message.body, out);
        if (step == CallerStep::kEnd) co_return;
        if (step == CallerStep::kHandled) {
          client_buffer_.consume(message.total_size);
          auto next = decode_message(client_buffer_.pending(), max);
          if (next.status != DecodeStatus::kMessage) break;
          message = ReadResult{true, next.frame.type, next.frame.body, next.frame.total_size};
          continue;
        }
      } else if (message.type == 'Q' || message.type == 'P') {
        // Bypass sessions are relayed unread, but a token never reaches a
        // backend (where it would sit in a setting and in pg_stat_activity).
        std::optional<std::string_view> sql;
        if (message.type == 'Q') {
          sql = parse_query(message.body);
        } else if (auto parse = parse_parse(message.body)) {
          sql = parse->query;
        }
        if (sql) {
          const CallerStatementKind kind = classify_caller_statement(*sql).kind;
          if (kind != CallerStatementKind::kNone && kind != CallerStatementKind::kShowTenant &&
              kind != CallerStatementKind::kShowUser) {
            fail("42501", "bypass principals do not take tenantgate.token");
            co_return;
          }
        }
      }
      if (auto sql = needs_analysis(message.type, message.body)) {
        // A cache miss: send what is batched, then let the loop serve other
        // sessions while the pool analyses. The message stays in the buffer,
        // which nothing else reads meanwhile.
        if (!out.empty()) {
          if (co_await backend_->write(out)) {
            fail("08006", "the backend closed the connection");
            co_return;
          }
          out.clear();
        }
        if (!co_await analyse(*sql)) co_return;
      }
      if (!observe(message.type, message.body)) co_return;
      const Verdict verdict =
          filter_->filter(message.type, message.body,
                          client_buffer_.pending().substr(0, message.total_size), *tracker_, out);
      if (verdict.kind == Verdict::Kind::kTerminate) {
        co_await backend_->write(out);
        co_return;
      }
      if (!apply(verdict)) co_return;
      client_buffer_.consume(message.total_size);
      auto next = decode_message(client_buffer_.pending(), max);
      if (next.status != DecodeStatus::kMessage) break;
      message = ReadResult{true, next.frame.type, next.frame.body, next.frame.total_size};
    }
    // try_write first: a write() coroutine per batch only when the socket
    // did not take it all.
    std::string_view rest = out;
    error_code ec;
    if (backend_->try_write(rest, ec) && !rest.empty()) ec = co_await backend_->write(rest);
    if (ec) {
      fail("08006", "the backend closed the connection");
      co_return;
    }
  }
}

awaitable<void> Session::backend_to_client() {
  std::string replaced;  // used only when a message had to be replaced
  ReadResult message;
  for (;;) {
    switch (next_message(backend_buffer_, false, kMaxBackendMessage, false, message)) {
      case DecodeStatus::kMessage:
        break;
      case DecodeStatus::kError:
        co_return;
      case DecodeStatus::kNeedMore: {
        auto [ec, n] = co_await backend_->read_some(read_space(backend_buffer_));
        if (!read_done(ec, n, backend_buffer_, false)) co_return;
        continue;
      }
    }
    // Forward the run of whole messages straight from the buffer, unless one
    // of them is the backend's error for a substituted (refused) message.
    auto pending = backend_buffer_.pending();
    std::size_t run = 0;
    std::size_t copied = 0;  // bytes of `pending` already appended to `replaced`
    replaced.clear();
    for (;;) {
      Verdict verdict = tracker_->on_backend(message.type, message.body);
      if (message.type == 'Z' && !bypass_) {
        // A local caller (SET LOCAL tenantgate.token) ends with its transaction.
        if (auto status = parse_ready_for_query(message.body)) caller_->on_ready_for_query(*status);
      }
      if (verdict.kind == Verdict::Kind::kFatal) {
        fail(std::move(verdict.sqlstate), std::move(verdict.message));
        co_return;
      }
      if (verdict.kind == Verdict::Kind::kReplace) {
        replaced.append(pending.substr(copied, run - copied));
        replaced += verdict.bytes;
        copied = run + message.total_size;
      }
      run += message.total_size;
      auto next = decode_message(pending.substr(run), kMaxBackendMessage);
      if (next.status != DecodeStatus::kMessage) break;
      message = ReadResult{true, next.frame.type, next.frame.body, next.frame.total_size};
    }
    std::string_view rest = pending.substr(0, run);
    if (copied != 0) {
      replaced.append(pending.substr(copied, run - copied));
      rest = replaced;
    }
    error_code ec;  // as in client_to_backend: write() only what try_write left
    if (client_.try_write(rest, ec) && !rest.empty()) ec = co_await client_.write(rest);
    if (ec) co_return;
    backend_buffer_.consume(run);
  }
}

// ---- Enforcement ------------------------------------------------------------

std::optional<std::string_view> Session::needs_analysis(char type, std::string_view body) {
  if (bypass_ || tracker_->copy_in_active() || services_.analysis == nullptr) return std::nullopt;
  std::optional<std::string_view> sql;
  if (type == 'Q') {
    if (tracker_->extended_open()) return std::nullopt;
    sql = parse_query(body);
  } else if (type == 'P') {
    if (auto parse = parse_parse(body)) sql = parse->query;
  }
  if (!sql) return std::nullopt;
  auto policy = current_policy();
  if (!policy) return std::nullopt;
  if (auto hit =
          session_rewrite_cache().lookup(*sql, caller_->identity(), caller_->policy_for(*policy))) {
    analysed_ = std::move(*hit);
    analysed_sql_ = sql->data();
    return std::nullopt;
  }
  return sql;
}

awaitable<bool> Session::analyse(std::string_view sql) {
  auto wait = std::make_shared<AnalysisWait>(co_await asio::this_coro::executor);
  services_.analysis->submit(
      caller_->identity().tenant.value,
      [wait, sql = std::string(sql), identity = caller_->identity(),
       policy = caller_->policy_for(checked_policy_), rewriter = &session_rewriter(),
       cache = &session_rewrite_cache(), limits = config_.limits,
       tenant =
           caller_->identity().tenant.value](std::optional<AnalysisPool::Refusal> refusal) mutable {
        std::optional<rewriter::RewriteResult> result;
        if (refusal) {
          result = analysis_refusal(*refusal, limits, tenant);
        } else if (!wait->abandoned) {
          try {
            result = cache->rewrite(*rewriter, sql, identity, policy);
          } catch (const std::exception& e) {
            // On the loop this ended the session; here it must not end the pool.
            result = rewriter::RewriteResult::refused(
                "XX000", fmt::format("internal error while analysing the statement: {}", e.what()));
          }
        }
        // The last reference may be the posted handler's: the timer is then
        // destroyed on its own loop.
        auto done = std::move(wait);
        {
          std::lock_guard lock(done->mutex);
          done->result = std::move(result);
        }
        auto executor = done->timer.get_executor();
        asio::post(executor, [done = std::move(done)] { done->timer.cancel(); });
      });
  co_await wait->timer.async_wait(use_nothrow);
  std::optional<rewriter::RewriteResult> result;
  {
    std::lock_guard lock(wait->mutex);
    result = std::move(wait->result);
  }
  if (!result) {
    wait->abandoned = true;
    co_return false;
  }
  analysed_ = std::move(*result);
  analysed_sql_ = sql.data();
  co_return true;
}

std::optional<rewriter::RewriteResult> Session::rewrite(std::string_view sql) {
  auto policy = current_policy();
  if (!policy) return std::nullopt;
  if (services_.statement_rate != nullptr &&
      !services_.statement_rate->admit(caller_->identity().tenant.value,
                                       std::chrono::steady_clock::now())) {
    analysed_.reset();
    return rewriter::RewriteResult::refused(
        "53300",
        fmt::format("tenant \"{}\" is over its statement rate "
                    "(pool.tenant_statements_per_second = {}); the statement was not run",
                    caller_->identity().tenant.value, services_.statement_rate->per_second()));
  }
  const auto started = std::chrono::steady_clock::now();
  std::optional<rewriter::RewriteResult> result;
  if (analysed_ && analysed_sql_ == sql.data()) {
    result = std::move(*analysed_);
  } else {
    result = session_rewrite_cache().rewrite(session_rewriter(), sql, caller_->identity(),
                                             caller_->policy_for(*policy));
  }
  analysed_.reset();
  // SQL EXECUTE of a statement PREPAREd for another caller would run that
  // caller's predicate.
  if (result->is_ok()) {
    if (auto why = caller_->on_prepared_names(result->value().prepared_names)) {
      result = rewriter::RewriteResult::refused("42501", std::move(*why));
    }
  }
  report_.statement(sql, *result, *policy, std::chrono::steady_clock::now() - started);
  return result;
}

awaitable<Session::CallerStep> Session::filter_caller(char type, std::string_view body,
                                                      std::string& out) {
  switch (type) {
    case 'Q': {
      auto sql = parse_query(body);
      if (!sql || tracker_->extended_open() || tracker_->copy_in_active())
        co_return CallerStep::kPass;
      const bool idle = tracker_->owed_ready_for_query() == 0 && out.empty();
      auto outcome = caller_->on_query(*sql, tracker_->transaction_status(), idle,
                                       static_cast<int64_t>(std::time(nullptr)));
      if (!outcome.log.empty()) {
        // The log names the caller in force; a refusal is logged (warn) with
        // the caller it left, none.
        const auto* now = caller_->has_caller() ? &caller_->identity() : nullptr;
        log_context_.set("tenant", now ? now->tenant.value : std::string("(none)"));
        log_context_.set("user", now && now->user ? now->user->value : std::string("(none)"));
        if (outcome.kind != ClientCaller::QueryOutcome::Kind::kRefuse) {
          log(spdlog::level::debug, outcome.log);
        }
      }
      switch (outcome.kind) {
        case ClientCaller::QueryOutcome::Kind::kRewrite:
          co_return CallerStep::kPass;
        case ClientCaller::QueryOutcome::Kind::kAnswer: {
          outcome.answer += ready_for_query(tracker_->transaction_status());
          if (co_await client_.write(outcome.answer)) co_return CallerStep::kEnd;
          co_return CallerStep::kHandled;
        }
        case ClientCaller::QueryOutcome::Kind::kRefuse:
          if (!substitute_caller_refusal(outcome.refusal, 'Q', {}, out)) co_return CallerStep::kEnd;
          co_return CallerStep::kHandled;
      }
      co_return CallerStep::kPass;
    }
    case 'P': {
      auto parse = parse_parse(body);
      if (!parse) co_return CallerStep::kPass;  // the filter ends the session
      if (auto refusal = caller_->on_parse(parse->statement, parse->query)) {
        if (!substitute_caller_refusal(*refusal, 'P', parse->statement, out)) {
          co_return CallerStep::kEnd;
        }
        co_return CallerStep::kHandled;
      }
      co_return CallerStep::kPass;
    }
    case 'B': {
      // Bind starts with the portal and statement names (NUL-terminated); the
      // filter reads the rest.
      const std::size_t end_portal = body.find('\0');
      const std::size_t end_statement =
          end_portal == std::string_view::npos ? end_portal : body.find('\0', end_portal + 1);
      if (end_statement == std::string_view::npos) co_return CallerStep::kPass;
      const std::string_view portal = body.substr(0, end_portal);
      const std::string_view statement =
          body.substr(end_portal + 1, end_statement - end_portal - 1);
      if (auto why = caller_->on_bind(statement, portal)) {
        if (!substitute_caller_refusal(CallerRefusal{"42501", *why}, 'B', {}, out)) {
          co_return CallerStep::kEnd;
        }
        co_return CallerStep::kHandled;
      }
      co_return CallerStep::kPass;
    }
    case 'E': {
      const std::string_view portal = body.substr(0, body.find('\0'));
      if (auto why = caller_->on_execute(portal)) {
        fail("42501", *why);
        co_return CallerStep::kEnd;
      }
      co_return CallerStep::kPass;
    }
    case 'C': {
      if (auto close = parse_describe_or_close(body)) caller_->on_close(close->kind, close->name);
      co_return CallerStep::kPass;
    }
    default:
      co_return CallerStep::kPass;
  }
}

bool Session::substitute_caller_refusal(const CallerRefusal& refusal, char type,
                                        std::string_view statement, std::string& out) {
  log_refusal(rewriter::Refusal{refusal.sqlstate, refusal.message}, {});
  // As the frontend filter substitutes a refused message: a failing statement
  // whose error the tracker replaces with the refusal, in order.
  auto marker = tracker_->refusal_marker(rewriter::Refusal{refusal.sqlstate, refusal.message});
  if (!marker) {
    fail("54000", "too many unanswered messages");
    return false;
  }
  if (type == 'Q') {
    append_query_message(out, *marker);
    if (!tracker_->refused_query_sent()) {
      fail("54000", "too many unanswered messages");
      return false;
    }
    return true;
  }
  // Parse and Bind: a failing Parse (of the unnamed statement for an unnamed
  // Parse, which PostgreSQL drops first, as a real failed Parse would).
  if (type == 'P' && statement.empty()) {
    append_parse(out, "", *marker, {});
  } else {
    append_parse(out, *marker, *marker, {});
  }
  tracker_->extended_sent();
  return true;
}

const rewriter::Rewriter& Session::session_rewriter() const {
  const bool postgres = services_.postgres_rewriter != nullptr && !cockroach_backend_;
  return postgres ? *services_.postgres_rewriter : *services_.rewriter;
}

rewriter::RewriteCache& Session::session_rewrite_cache() const {
  const bool postgres = services_.postgres_rewrite_cache != nullptr && !cockroach_backend_;
  return postgres ? *services_.postgres_rewrite_cache : *services_.rewrite_cache;
}

bool Session::observe(char type, std::string_view body) {
  if (bypass_ || !report_.active()) return true;
  report_.message(type);
  if (type == 'B') {
    if (report_.judges_binds()) {
      auto policy = current_policy();
      if (!policy) return false;
      if (auto bind = parse_bind(body)) {
        report_.bound(bind->statement, bind->param_formats, bind->params, *policy);
      }
    }
    return true;
  }
  if (type != 'Q' && type != 'P') return true;
  std::optional<std::string_view> sql;
  if (type == 'Q') {
    sql = parse_query(body);
  } else if (auto parse = parse_parse(body)) {
    sql = parse->query;
    report_.parsed(parse->statement, parse->query);
  }
  // In enforce mode the filter's rewrite reports the statement; a shadow
  // session's filter forwards it without one.
  if (sql && report_.shadow() && !rewrite(*sql)) return false;
  return true;
}

bool Session::admin_allowed() {
  if (config_.auth_mode == config::AuthMode::kPassthrough || !services_.admin) {
    fail("0A000", "the admin console needs auth.mode = \"scram\" or \"trust\"");
    return false;
  }
  return true;
}

bool Session::admin_ready() {
  if (!principal_->admin) {
    fail("42501", fmt::format("admin console: principal \"{}\" is not an admin (admin = true)",
                              principal_name_));
    return false;
  }
  admin_ = true;
  publish_facts();
  log(spdlog::level::info, "admin console session started");
  return true;
}

// Not a coroutine: g++ 12 miscompiles braced string lists inside coroutines.
void Session::publish_facts() {
  SessionFacts facts;
  facts.principal = principal_name_;
  facts.database = database_;
  facts.peer = endpoint_text(client_.socket());
  facts.admin = admin_;
  if (!admin_) {
    const config::Enforcement enforcement = enforcement_of(config_, *principal_);
    if (!principal_->bypass && caller_) {
      report_.bind(principal_name_, &caller_->identity(), enforcement);
    }
    facts.tenant = tenant_;
    facts.user = user_.value_or("");
    facts.enforcement =
        principal_->bypass ? "bypass" : std::string(config::enforcement_name(enforcement));
  }
  report_.publish(std::move(facts));
}

bool Session::apply(const Verdict& verdict) {
  switch (verdict.kind) {
    case Verdict::Kind::kForward:
    case Verdict::Kind::kReplace:
    case Verdict::Kind::kTerminate:
      return true;
    case Verdict::Kind::kRefused:
      log_refusal(rewriter::Refusal{verdict.sqlstate, verdict.message}, verdict.statement);
      report_.refused(verdict.sqlstate);
      return true;
    case Verdict::Kind::kFatal:
      fail(verdict.sqlstate, verdict.message);
      return false;
  }
  return false;
}

void Session::log_refusal(const rewriter::Refusal& refusal, std::string_view statement) const {
  std::string message = fmt::format("refused: {} {}", refusal.sqlstate, refusal.message);
  if (!statement.empty()) {
    message +=
        fmt::format(" statement_fingerprint={:016x}", std::hash<std::string_view>{}(statement));
    if (config_.log.log_statement_values) message += fmt::format(" statement=\"{}\"", statement);
  }
  log(spdlog::level::warn, message);
}

// ---- Cancel -------------------------------------------------------------------

awaitable<void> Session::forward_cancel(int32_t pid, int32_t key) {
  auto target = services_.cancels->find(pid, key);
  if (!target) {
    log(spdlog::level::info, "cancel request for an unknown session ignored");
    co_return;
  }
  backend_pid_ = target->backend_pid;
  backend_key_ = target->backend_key;
  co_await cancel_backend_query();
}

awaitable<void> Session::cancel_backend_query() {
  auto executor = co_await asio::this_coro::executor;
  const auto& backend = config_.backend;
  asio::steady_timer timer(executor, std::chrono::seconds(5));
  auto send = [&]() -> awaitable<void> {
    tcp::resolver resolver(executor);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(backend.host, std::to_string(backend.port), use_nothrow);
    if (rec) co_return;
    Stream stream{tcp::socket(executor)};
    auto [cec, ep] = co_await asio::async_connect(stream.socket(), endpoints, use_nothrow);
    if (cec) co_return;
    // PostgreSQL accepts a CancelRequest in clear text even when it requires
    // TLS for sessions, so no TLS negotiation here.
    co_await stream.write(encode_cancel_request(backend_pid_, backend_key_));
    // Wait for the backend to close the connection, which it does after acting.
    char byte;
    co_await stream.read_some(asio::buffer(&byte, 1));
    stream.close();
  };
  co_await (send() || timer.async_wait(use_nothrow));
  log(spdlog::level::info, "cancel request forwarded to the backend");
}

}  // namespace tenantgate::proxy
