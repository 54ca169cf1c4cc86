// One client connection and its backend connection, from the first start-up
// byte to the last message: TLS negotiation, authentication, identity binding,
// backend login, then relaying messages in both directions.
//
// A session runs as one coroutine on one event-loop thread; nothing in it is
// shared with other sessions except the immutable ProxyServices and the
// internally synchronised registries they point to.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "identity/token_authority.h"
#include "policy/identity.h"
#include "proxy/analysis_pool.h"
#include "proxy/asio.h"
#include "proxy/cancel_registry.h"
#include "proxy/client_caller.h"
#include "proxy/connection_limits.h"
#include "proxy/frame_decoder.h"
#include "ops/admin_console.h"
#include "proxy/frontend_filter.h"
#include "proxy/log.h"
#include "proxy/messages.h"
#include "proxy/policy_store.h"
#include "proxy/principal_store.h"
#include "proxy/protocol_tracker.h"
#include "proxy/read_buffer.h"
#include "proxy/scram.h"
#include "proxy/session_report.h"
#include "proxy/session_slots.h"
#include "proxy/startup_packet.h"
#include "proxy/stream.h"
#include "proxy/tenant_rate_limit.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"

namespace tenantgate::proxy {

// What every session needs from the server. Owned by the server, outlives
// every session.
struct ProxyServices {
  std::shared_ptr<const config::Config> config;
  ssl::context* client_tls = nullptr;  // null when listen.tls = disable
  ssl::context* backend_tls = nullptr;
  CancelRegistry* cancels = nullptr;
  PolicyStore* policies = nullptr;
  PrincipalStore* principals = nullptr;
  ConnectionLimits* limits = nullptr;
  const rewriter::Rewriter* rewriter = nullptr;
  rewriter::RewriteCache* rewrite_cache = nullptr;
  // backend.dialect = "auto" only: what sessions whose backend did not
  // announce CockroachDB at login use instead of the two above.
  const rewriter::Rewriter* postgres_rewriter = nullptr;
  rewriter::RewriteCache* postgres_rewrite_cache = nullptr;
  // Where rewrites that miss the cache run; null: on the loop itself.
  AnalysisPool* analysis = nullptr;
  SaltedPasswordCache* salted_passwords = nullptr;  // for the backend login
  // Verifies signed identity tokens ([identity.token]); null without it.
  const identity::TokenAuthority* tokens = nullptr;
  std::string backend_password;  // from backend.password_env at start-up
  ops::Operations* operations = nullptr;            // metrics, audit, missing predicates
  ops::AdminBackend* admin = nullptr;               // the admin console's commands
  const std::atomic<bool>* paused = nullptr;        // admin console PAUSE
  // Session mode with pool.size: the slot a client holds while it has a
  // backend (session_slots.h); null: no cap.
  SessionSlots* session_slots = nullptr;
  // pool.tenant_statements_per_second; null: no limit.
  TenantRateLimit* statement_rate = nullptr;
};

class Session : public std::enable_shared_from_this<Session>, private StatementRewriter {
 public:
  // `slot` counts this connection against the connection limits; the
  // session frees its start-up part once start-up is over.
  Session(tcp::socket client, const ProxyServices& services, uint64_t id, ConnectionSlot slot);
  ~Session() override;

  // The whole life of the connection; returns when both sides are closed.
  awaitable<void> run();

  // Asks the session to end (server shutdown after the grace period): the
  // client gets FATAL 57P01. Safe to call from any thread.
  void terminate();

  // A reload replaced the principals: a session whose principal is gone, or
  // whose bypass flag or claimable tenants no longer cover it, ends with
  // FATAL 57P01 (auth.revoked_sessions = terminate). Safe from any thread.
  void on_principals_reloaded(PrincipalSnapshot principals);

  // True once start-up is over and the session relays. Any thread.
  [[nodiscard]] bool started() const { return started_; }

  // What SHOW CLIENTS shows of this session. Any thread.
  [[nodiscard]] SessionFacts facts() const { return report_.facts(); }

 private:
  // Start-up phase states, in order.
  enum class Phase {
    kNegotiating,     // reading SSLRequest / GSSENCRequest / StartupMessage
    kAuthenticating,  // client authentication (or relaying it, in passthrough)
    kBackendLogin,    // logging into the backend and waiting for its ReadyForQuery
    kReady,           // relaying
  };

  struct Fatal {
    std::string sqlstate;
    std::string message;
  };

  awaitable<bool> startup();
  // The virtual database "tenantgate": whether the admin console can
  // authenticate here, and whether the authenticated principal may use it
  // (fatal_ set when not); run() then serves the console.
  bool admin_allowed();
  bool admin_ready();
  // Once start-up has bound the caller: the reporter's identity, SHOW CLIENTS.
  void publish_facts();
  // Before the filter sees a client message: remembers its protocol, and for
  // shadow sessions (whose filter forwards everything) records what
  // enforcement would do; judges Binds' parameters. False sets fatal_.
  bool observe(char type, std::string_view body);
  awaitable<bool> negotiate(StartupPacket& packet);
  awaitable<bool> authenticate_client_scram();
  bool bind_identity();
  bool claim_limits();
  [[nodiscard]] std::optional<std::string> revocation(
      const std::vector<config::Principal>& principals) const;
  void pin_backend_settings();
  // The policy snapshot for the next statement; nullptr (and fatal_ set) when
  // a reload changed the search_path pinned on the backend at login. Points
  // at checked_policy_: valid until the next call.
  const std::shared_ptr<const policy::Policy>* current_policy();
  // Waits for a slot of session_slots (session mode with pool.size); false
  // (fatal_ set: 53300 when it waited too long) when none came.
  awaitable<bool> acquire_backend_slot();
  awaitable<bool> connect_backend();
  awaitable<bool> login_backend(bool passthrough);
  // Runs catalog_snapshot.h's query on the fresh backend connection and puts
  // the result in identity_.catalog; false (session refused) when it fails.
  awaitable<bool> load_catalog_snapshot();
  awaitable<void> relay();
  awaitable<void> client_to_backend();
  awaitable<void> backend_to_client();
  awaitable<void> forward_cancel(int32_t pid, int32_t key);
  awaitable<void> cancel_backend_query();

  // Reads one whole message (typed, or a start-up packet) into the buffer.
  // On kMessage the returned frame views the buffer until the next consume.
  struct ReadResult {
    bool ok = false;
    char type = 0;
    std::string_view body;
    std::size_t total_size = 0;
  };
  awaitable<ReadResult> read_message(Stream& stream, ReadBuffer& buffer, bool startup,
                                     std::size_t max_bytes, bool from_client);
  // The parts of read_message, for the relay loops, which read inline rather
  // than through a nested coroutine per message. next_message decodes the
  // front of the buffer (kError sets fatal_); read_done takes the outcome of
  // a read into read_space(buffer) and says whether the stream is still open.
  DecodeStatus next_message(ReadBuffer& buffer, bool startup, std::size_t max_bytes,
                            bool from_client, ReadResult& out);
  static asio::mutable_buffer read_space(ReadBuffer& buffer);
  bool read_done(error_code ec, std::size_t n, ReadBuffer& buffer, bool from_client);

  // A Query or Parse whose rewrite misses the cache: its SQL text (viewing
  // `body`), to be analysed off the loop before filter_frontend sees the
  // message. A cache hit is kept in analysed_ and gives nullopt, as does any
  // message filter_frontend decides without the rewriter.
  std::optional<std::string_view> needs_analysis(char type, std::string_view body);
  // Runs the rewrite of `sql` on the analysis pool and keeps the result in
  // analysed_ while the loop serves other sessions. False when the wait was
  // cancelled (the session is ending); the pool then drops the result.
  awaitable<bool> analyse(std::string_view sql);
  // The rewrite for filter_frontend: analysed_ when it was made for `sql`,
  // otherwise the cache (and on a miss the rewriter) on this thread.
  // (StatementRewriter, for the filter; nullopt sets fatal_.)
  std::optional<rewriter::RewriteResult> rewrite(std::string_view sql) override;
  // Performs a frontend filter verdict; false when the session must end.
  bool apply(const Verdict& verdict);
  // The caller's part of a client message, before the frontend filter:
  // caller statements answered or refused here (client_caller.h), and the
  // guard on statements prepared under another caller.
  enum class CallerStep {
    kPass,     // the filter decides the message
    kHandled,  // done here (answered, or a refusal's substitute is in `out`)
    kEnd,      // the session ends (fatal_ set)
  };
  awaitable<CallerStep> filter_caller(char type, std::string_view body, std::string& out);
  // Appends the failing substitute of a refused caller message to `out`.
  bool substitute_caller_refusal(const CallerRefusal& refusal, char type,
                                 std::string_view statement, std::string& out);

  void log_refusal(const rewriter::Refusal& refusal, std::string_view statement) const;
  // The rewriter and cache for this session's backend (backend.dialect).
  [[nodiscard]] const rewriter::Rewriter& session_rewriter() const;
  [[nodiscard]] rewriter::RewriteCache& session_rewrite_cache() const;

  awaitable<void> send_fatal_and_close();
  void fail(std::string sqlstate, std::string message);
  void log(spdlog::level::level_enum level, std::string_view message) const;

  const ProxyServices& services_;
  const config::Config& config_;
  const uint64_t id_;
  Stream client_;
  // Held while the backend connection is open (declared before it, so that
  // it is given back after the connection is closed).
  SessionSlots::Lease backend_slot_;
  std::optional<Stream> backend_;
  ReadBuffer client_buffer_;
  ReadBuffer backend_buffer_;
  Phase phase_ = Phase::kNegotiating;
  std::optional<Fatal> fatal_;
  LogContext log_context_;
  std::atomic<bool> terminating_{false};
  std::atomic<bool> started_{false};
  ConnectionSlot slot_;
  SessionReport report_;
  bool admin_ = false;  // an admin console connection: no backend, no relay

  // Bound at start-up.
  StartupParams client_params_;
  StartupParams backend_params_;
  PrincipalSnapshot principals_;  // the snapshot principal_ points into
  const config::Principal* principal_ = nullptr;
  std::string principal_name_;
  std::string database_;
  std::optional<std::string> raw_tenant_;
  std::optional<std::string> raw_user_;
  std::optional<std::string> raw_token_;  // tenantgate.token at start-up, not logged
  std::string tenant_;
  std::optional<std::string> user_;
  policy::Identity identity_;
  bool bypass_ = false;
  // The backend announced itself as CockroachDB at login (ParameterStatus
  // crdb_version); with backend.dialect = "auto" this picks the rewriter.
  bool cockroach_backend_ = false;
  std::vector<std::string> pinned_search_path_;
  std::shared_ptr<const policy::Policy> checked_policy_;  // last snapshot seen to match it
  uint64_t checked_generation_ = 0;                       // PolicyStore generation it was read at

  // Backend identity for cancel routing.
  int32_t backend_pid_ = 0;
  int32_t backend_key_ = 0;
  std::optional<int32_t> proxy_pid_;
  std::string startup_replies_;  // ParameterStatus/notices to pass on once ready
  char login_status_ = 'I';      // the backend's ReadyForQuery status after login

  // Relay state.
  std::optional<rewriter::RewriteResult> analysed_;  // see needs_analysis
  const char* analysed_sql_ = nullptr;               // the text it was made for
  std::string refusal_token_;  // random per session: marks substituted messages
  // What the backend still owes (protocol_tracker.h) and the enforcement of
  // client messages (frontend_filter.h); both exist once start-up is over.
  std::optional<ProtocolTracker> tracker_;
  std::optional<FrontendFilter> filter_;
  // Who this client connection acts for (never the backend's): set at
  // start-up, changed by tenantgate.token. Exists once identity is bound.
  std::optional<ClientCaller> caller_;
};

}  // namespace tenantgate::proxy
