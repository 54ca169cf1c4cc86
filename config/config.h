// tenantgate.toml: where to listen, which backend to use, how clients
// authenticate, which principals exist, how identity is read, and limits.
//
// Loaded once at start-up into an immutable Config; errors are exceptions with
// "file:line: reason" because nothing runs until the whole file is valid.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"

namespace tenantgate::config {

enum class ListenTls { kDisable, kAllow, kRequire };
enum class BackendTls { kDisable, kPrefer, kRequire, kVerifyFull };
enum class AuthMode { kScram, kPassthrough, kTrust };
enum class LogFormat { kText, kJson };

// Whether statements are enforced or only observed. In shadow mode
// statements are forwarded as the client sent them and the audit trail
// records what enforcement would have done (refusals, missing predicates).
enum class Enforcement { kEnforce, kShadow };

// Which decisions the audit trail records.
enum class AuditMode {
  kOff,
  kRefusals,  // refused statements (and, in shadow mode, would-be refusals)
  kWrites,    // refusals and every statement that is not a plain read
  kAll,       // every statement
};

[[nodiscard]] std::string_view enforcement_name(Enforcement e);
[[nodiscard]] std::string_view audit_mode_name(AuditMode m);

struct Listen {
  std::string host = "127.0.0.1";
  uint16_t port = 6432;  // 0: an ephemeral port (tests)
  ListenTls tls = ListenTls::kDisable;
  std::string tls_cert;  // absolute path; required unless tls = disable
  std::string tls_key;
  unsigned threads = 0;  // event-loop threads; 0 means one per core

  bool operator==(const Listen&) const = default;
};

// Which database the backend is, where the rewriter's constructions differ
// (rewriter::Dialect). CockroachDB's is safe on both, so it is the default.
// kAuto reads it from the backend at login: CockroachDB announces itself
// with the ParameterStatus crdb_version; without it the session is rewritten
// for PostgreSQL.
enum class BackendDialect { kPostgreSQL, kCockroachDB, kAuto };

struct Backend {
  std::string host = "127.0.0.1";
  uint16_t port = 26257;
  std::string user = "tenantgate";
  std::string password_env = "TENANTGATE_BACKEND_PASSWORD";  // empty: no password
  BackendTls tls = BackendTls::kDisable;
  std::string tls_ca;  // absolute path; required for verify-full
  BackendDialect dialect = BackendDialect::kCockroachDB;

  bool operator==(const Backend&) const = default;
};

// How a principal's sessions name their caller.
enum class IdentitySource {
  kClaimed,  // the tenant and user start-up parameters (the default)
  kToken,    // only a signed token ([identity.token]); bare parameters are refused
  kEither,   // either; a token given on the connection replaces the caller
};

struct Principal {
  std::string name;
  // PostgreSQL-format SCRAM-SHA-256 verifier; required (and its shape checked)
  // for auth.mode = scram, ignored otherwise.
  std::string scram;
  // "*" means any tenant; others are canonical values of identity.tenant_type.
  // Empty (the default): the principal may claim no tenant, so only a bypass
  // principal can use it.
  std::vector<std::string> tenants;
  bool bypass = false;
  uint32_t max_connections = 0;  // open sessions of this principal; 0: no limit
  IdentitySource identity = IdentitySource::kClaimed;
  // May open the admin console (the virtual database "tenantgate").
  bool admin = false;
  // Overrides [policy] enforcement for this principal's sessions.
  std::optional<Enforcement> enforcement;
  int line = 0;
};

// What happens to the open sessions of a principal that a reload (SIGHUP)
// removed, or whose tenants or bypass flag it changed.
enum class RevokedSessions {
  kTerminate,  // they end with FATAL 57P01
  kFinish,     // they go on until the client disconnects
};

// [identity.token]: how signed identity tokens are verified. Exactly one key
// source: an HMAC secret read from an environment variable, a PEM public key,
// or a JWK Set file (keys chosen by "kid"). The files and the variable are
// read when the proxy starts, not here.
struct TokenConfig {
  std::string secret_env;       // environment variable holding the HS secret
  std::string public_key_file;  // absolute path
  std::string jwks_file;        // absolute path
  std::string issuer;           // empty: "iss" not checked
  std::string audience;         // empty: "aud" not checked
  int64_t leeway_s = 30;
  int64_t max_lifetime_s = 86400;  // 0: no limit
  std::string tenant_claim = "tenant";
  std::string user_claim = "sub";
  int line = 0;  // of the [identity.token] table

  bool operator==(const TokenConfig&) const = default;
};

struct Identity {
  std::string tenant_param = "tenantgate.tenant";
  std::string user_param = "tenantgate.user";
  policy::ValueType tenant_type = policy::ValueType::kText;
  policy::ValueType user_type = policy::ValueType::kInt;
  std::optional<TokenConfig> token;  // absent: tokens are refused

  bool operator==(const Identity&) const = default;
};

struct Limits {
  uint64_t max_message_bytes = 64ull << 20;
  uint64_t max_statement_bytes = 1ull << 20;
  uint32_t startup_timeout_ms = 10000;
  uint32_t shutdown_grace_ms = 10000;
  uint64_t rewrite_cache_bytes = 64ull << 20;
  // Rewrites that miss the cache run on a pool of analysis threads, shared
  // fairly between tenants (proxy/analysis_pool.h). 0: half the cores (at
  // least one).
  uint32_t analysis_threads = 0;
  // Each tenant's analysis CPU budget: a token bucket refilled continuously
  // at this rate, holding at most one second's worth. 0: no budget.
  uint32_t analysis_ms_per_second = 1000;
  // A statement still waiting for analysis after this long is refused (53000).
  uint32_t analysis_queue_timeout_ms = 5000;
  // Statements of one tenant waiting for analysis at once; more are refused
  // (53000).
  uint32_t max_pending_analyses = 64;
  // Connection limits; 0 means no limit. A connection over one is refused
  // with SQLSTATE 53300.
  uint32_t max_client_connections = 10000;  // open client connections
  uint32_t max_startups = 1000;             // connections not yet authenticated
  uint32_t max_startups_per_source = 0;     // the same, per client address
  uint32_t max_connections_per_tenant = 0;  // sessions per tenant

  bool operator==(const Limits&) const = default;
};

// How backend connections are shared between client connections ([pool]).
enum class PoolMode {
  kSession,      // a client keeps one backend connection for its whole life
  kTransaction,  // a client holds a backend only inside a transaction
};

// The [pool] section. Backend connections are pooled per (database, backend
// user); the sizes below are per such pool. In session mode a client's
// backend is its own from login to disconnect, as without a pool; `size`
// then caps the backends open at once and the other keys act on the idle
// backends kept for the next client.
struct Pool {
  PoolMode mode = PoolMode::kSession;
  // Backend connections per pool; 0 (the default, session mode only): no
  // cap, every client gets a backend of its own at once.
  uint32_t size = 0;
  uint32_t min_idle = 0;               // idle backends kept open (refilled)
  uint32_t idle_timeout_ms = 600000;   // an idle backend above min_idle is closed after this
  uint32_t max_lifetime_ms = 3600000;  // a backend is retired at its next release after this
  uint32_t acquire_timeout_ms = 5000;  // waiting for a backend longer: 53300, nothing run
  uint32_t max_per_tenant = 0;         // backends one tenant holds at once; 0: size
  // Statements one tenant may start per second (token bucket, one second's
  // burst); over it a statement is refused with 53300. 0: no limit.
  uint32_t tenant_statements_per_second = 0;

  bool operator==(const Pool&) const = default;
};

struct Log {
  std::string level = "info";  // trace | debug | info | warn | error | critical | off
  LogFormat format = LogFormat::kText;
  bool log_statement_values = false;  // refusals log only a fingerprint unless set

  bool operator==(const Log&) const = default;
};

// [admin]: the HTTP listener for /metrics, /healthz and /readyz. Off unless
// `listen = "host:port"` is given.
struct Admin {
  bool enabled = false;
  std::string host;
  uint16_t port = 0;  // 0: an ephemeral port (tests)

  bool operator==(const Admin&) const = default;
};

// [audit]: JSON lines of enforcement decisions.
struct Audit {
  AuditMode mode = AuditMode::kOff;
  std::string file;  // absolute path; empty: stdout
  // Events waiting for the writer thread; past this the event is dropped and
  // counted (tenantgate_audit_events_dropped_total): the event loops never
  // wait for the sink.
  uint32_t queue_events = 65536;

  bool operator==(const Audit&) const = default;
};

struct Config {
  std::string source_file;  // absolute path of the loaded file
  Listen listen;
  Backend backend;
  AuthMode auth_mode = AuthMode::kScram;
  RevokedSessions revoked_sessions = RevokedSessions::kTerminate;
  std::vector<Principal> principals;
  Identity identity;
  std::string policy_file;   // absolute path, resolved relative to source_file
  int policy_file_line = 0;  // where [policy] file was given (0: the default);
                             // default "policy.toml" next to it
  Enforcement enforcement = Enforcement::kEnforce;  // [policy] enforcement
  Admin admin;
  Audit audit;
  Limits limits;
  Pool pool;
  Log log;

  [[nodiscard]] const Principal* find_principal(std::string_view name) const;
};

// The principal called `name` in `principals`, or nullptr.
[[nodiscard]] const Principal* find_principal(const std::vector<Principal>& principals,
                                              std::string_view name);

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws ConfigError("file:line: reason"). Unknown keys are errors. Files named
// in the config (TLS, policy) are not opened here; their loaders report them.
// `file_name` is used in messages and, made absolute, as source_file.
[[nodiscard]] Config load_config_file(const std::string& path);
[[nodiscard]] Config parse_config(std::string_view toml_text, const std::string& file_name);

}  // namespace tenantgate::config
