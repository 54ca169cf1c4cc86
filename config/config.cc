// Loads tenantgate.toml into a Config. Every error names the file and the line
// of the offending key or value; unknown keys are errors.

#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <toml.hpp>
#include <utility>
#include <variant>

#include "policy/toml_text.h"

namespace tenantgate::config {

namespace {

namespace fs = std::filesystem;

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Startup parameters that mean something to PostgreSQL itself; an identity
// parameter with one of these names would let the client's own login choose
// its tenant.
constexpr std::string_view kReservedStartupParams[] = {
    "user",
    "database",
    "options",
    "replication",
    "application_name",
    "client_encoding",
    "tenantgate.token",  // the signed identity token
};

// Connection counts above this are configuration mistakes, not limits.
constexpr int64_t kMaxConnections = 10'000'000;

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  Config load(std::string_view text);

 private:
  using Entries = std::vector<std::pair<std::string, const toml::value*>>;

  [[noreturn]] void fail(unsigned line, const std::string& reason) const {
    throw ConfigError(file_ + ":" + std::to_string(line) + ": " + reason);
  }
  [[noreturn]] void fail(const toml::value& v, const std::string& reason) const {
    fail(v.location().line(), reason);
  }
  [[noreturn]] void unknown(const std::string& key, const toml::value& v, std::string_view section,
                            std::string_view expected) const {
    fail(v, "unknown key " + dq(key) + " in " + std::string(section) + " (expected " +
                std::string(expected) + ")");
  }

  Entries entries(const toml::value& table, std::string_view what) const;
  const std::string& str(const toml::value& v, std::string_view key) const;
  std::string nonempty(const toml::value& v, std::string_view key) const;
  bool boolean(const toml::value& v, std::string_view key) const;
  int64_t integer(const toml::value& v, std::string_view key, int64_t min, int64_t max) const;
  std::string path(const toml::value& v, std::string_view key) const;
  uint16_t port(const toml::value& v, int64_t min) const;
  policy::ValueType value_type(const toml::value& v, std::string_view key) const;

  void load_listen(const toml::value& v);
  void load_backend(const toml::value& v);
  void load_auth(const toml::value& v);
  void load_principals(const toml::value& v);
  void load_identity(const toml::value& v);
  void load_token(const toml::value& v);
  std::string env_name(const toml::value& v, std::string_view key) const;
  void load_policy(const toml::value& v);
  void load_limits(const toml::value& v);
  void load_pool(const toml::value& v);
  void load_log(const toml::value& v);
  void load_admin(const toml::value& v);
  void load_audit(const toml::value& v);
  Enforcement enforcement(const toml::value& v, std::string_view key) const;
  void validate_principals() const;

  std::string file_;
  fs::path dir_;
  Config config_;
  // Where the settings that other settings depend on were written.
  const toml::value* listen_tls_ = nullptr;
  const toml::value* backend_tls_ = nullptr;
  const toml::value* auth_mode_ = nullptr;
  const toml::value* max_statement_ = nullptr;
  std::vector<const toml::value*> principal_values_;            // the scram value, or the table
  std::vector<std::vector<const toml::value*>> tenant_values_;  // per principal
  std::vector<const toml::value*> identity_values_;             // per principal, or null
  unsigned auth_line_ = 1;
};

Loader::Entries Loader::entries(const toml::value& table, std::string_view what) const {
  if (!table.is_table()) fail(table, std::string(what) + " must be a table");
  Entries out;
  for (const auto& [k, v] : table.as_table()) out.emplace_back(k, &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto la = a.second->location(), lb = b.second->location();
    return std::pair(la.line(), la.column()) < std::pair(lb.line(), lb.column());
  });
  return out;
}

const std::string& Loader::str(const toml::value& v, std::string_view key) const {
  if (!v.is_string()) fail(v, std::string(key) + " must be a string");
  return v.as_string().str;
}

std::string Loader::nonempty(const toml::value& v, std::string_view key) const {
  const std::string& s = str(v, key);
  if (s.empty()) fail(v, std::string(key) + " is empty");
  return s;
}

bool Loader::boolean(const toml::value& v, std::string_view key) const {
  if (!v.is_boolean()) fail(v, std::string(key) + " must be true or false");
  return v.as_boolean();
}

int64_t Loader::integer(const toml::value& v, std::string_view key, int64_t min,
                        int64_t max) const {
  if (!v.is_integer()) fail(v, std::string(key) + " must be an integer");
  const int64_t n = v.as_integer();
  if (n < min || n > max) {
    fail(v, std::string(key) + " = " + std::to_string(n) + " is out of range (" +
                std::to_string(min) + ".." + std::to_string(max) + ")");
  }
  return n;
}

// Relative paths are relative to the config file's directory, so that the
// proxy finds the same files whatever its working directory.
std::string Loader::path(const toml::value& v, std::string_view key) const {
  const fs::path p(nonempty(v, key));
  return (p.is_absolute() ? p : dir_ / p).lexically_normal().string();
}

// An environment variable name (letters, digits, '_', not starting with a
// digit), or empty.
std::string Loader::env_name(const toml::value& v, std::string_view key) const {
  const std::string& s = str(v, key);
  const bool ok = std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!ok || (!s.empty() && s[0] >= '0' && s[0] <= '9')) {
    fail(v, std::string(key) + " " + dq(s) + " is not an environment variable name");
  }
  return s;
}

uint16_t Loader::port(const toml::value& v, int64_t min) const {
  return static_cast<uint16_t>(integer(v, "port", min, 65535));
}

policy::ValueType Loader::value_type(const toml::value& v, std::string_view key) const {
  const std::string& s = str(v, key);
  std::optional<policy::ValueType> t = policy::parse_value_type(s);
  if (!t) fail(v, "unknown " + std::string(key) + " " + dq(s) + " (expected text | int | uuid)");
  return *t;
}

void Loader::load_listen(const toml::value& v) {
  Listen& l = config_.listen;
  for (const auto& [key, value] : entries(v, "[listen]")) {
    if (key == "host") {
      l.host = nonempty(*value, key);
    } else if (key == "port") {
      l.port = port(*value, 0);  // 0: an ephemeral port (tests)
    } else if (key == "tls") {
      const std::string& s = str(*value, key);
      if (s == "disable") {
        l.tls = ListenTls::kDisable;
      } else if (s == "allow") {
        l.tls = ListenTls::kAllow;
      } else if (s == "require") {
        l.tls = ListenTls::kRequire;
      } else {
        fail(*value, "unknown listen.tls " + dq(s) + " (expected disable | allow | require)");
      }
      listen_tls_ = value;
    } else if (key == "tls_cert") {
      l.tls_cert = path(*value, key);
    } else if (key == "tls_key") {
      l.tls_key = path(*value, key);
    } else if (key == "threads") {
      l.threads = static_cast<unsigned>(integer(*value, key, 0, 1024));
    } else {
      unknown(key, *value, "[listen]", "host, port, tls, tls_cert, tls_key, threads");
    }
  }
  if (l.tls != ListenTls::kDisable) {
    const std::string mode = l.tls == ListenTls::kAllow ? "allow" : "require";
    if (l.tls_cert.empty()) fail(*listen_tls_, "listen.tls = \"" + mode + "\" needs tls_cert");
    if (l.tls_key.empty()) fail(*listen_tls_, "listen.tls = \"" + mode + "\" needs tls_key");
  }
}

void Loader::load_backend(const toml::value& v) {
  Backend& b = config_.backend;
  for (const auto& [key, value] : entries(v, "[backend]")) {
    if (key == "host") {
      b.host = nonempty(*value, key);
    } else if (key == "port") {
      b.port = port(*value, 1);
    } else if (key == "user") {
      b.user = nonempty(*value, key);
    } else if (key == "password_env") {
      // Empty: the service login needs no password.
      b.password_env = env_name(*value, key);
    } else if (key == "tls") {
      const std::string& s = str(*value, key);
      if (s == "disable") {
        b.tls = BackendTls::kDisable;
      } else if (s == "prefer") {
        b.tls = BackendTls::kPrefer;
      } else if (s == "require") {
        b.tls = BackendTls::kRequire;
      } else if (s == "verify-full") {
        b.tls = BackendTls::kVerifyFull;
      } else {
        fail(*value, "unknown backend.tls " + dq(s) +
                         " (expected disable | prefer | require | verify-full)");
      }
      backend_tls_ = value;
    } else if (key == "tls_ca") {
      b.tls_ca = path(*value, key);
    } else if (key == "dialect") {
      const std::string& s = str(*value, key);
      if (s == "postgresql") {
        b.dialect = BackendDialect::kPostgreSQL;
      } else if (s == "cockroachdb") {
        b.dialect = BackendDialect::kCockroachDB;
      } else if (s == "auto") {
        b.dialect = BackendDialect::kAuto;
      } else {
        fail(*value,
             "unknown backend.dialect " + dq(s) + " (expected postgresql | cockroachdb | auto)");
      }
    } else {
      unknown(key, *value, "[backend]", "host, port, user, password_env, tls, tls_ca, dialect");
    }
  }
  if (b.tls == BackendTls::kVerifyFull && b.tls_ca.empty()) {
    fail(*backend_tls_, "backend.tls = \"verify-full\" needs tls_ca");
  }
}

void Loader::load_auth(const toml::value& v) {
  auth_line_ = v.location().line();
  for (const auto& [key, value] : entries(v, "[auth]")) {
    if (key == "mode") {
      const std::string& s = str(*value, key);
      if (s == "scram") {
        config_.auth_mode = AuthMode::kScram;
      } else if (s == "passthrough") {
        config_.auth_mode = AuthMode::kPassthrough;
      } else if (s == "trust") {
        config_.auth_mode = AuthMode::kTrust;
      } else {
        fail(*value, "unknown auth.mode " + dq(s) + " (expected scram | passthrough | trust)");
      }
      auth_mode_ = value;
    } else if (key == "revoked_sessions") {
      const std::string& s = str(*value, key);
      if (s == "terminate") {
        config_.revoked_sessions = RevokedSessions::kTerminate;
      } else if (s == "finish") {
        config_.revoked_sessions = RevokedSessions::kFinish;
      } else {
        fail(*value, "unknown auth.revoked_sessions " + dq(s) + " (expected terminate | finish)");
      }
    } else {
      unknown(key, *value, "[auth]", "mode, revoked_sessions");
    }
  }
}

void Loader::load_principals(const toml::value& v) {
  if (!v.is_array()) fail(v, "principals must be an array of tables ([[principals]])");
  for (const toml::value& pv : v.as_array()) {
    Principal p;
    p.line = static_cast<int>(pv.location().line());
    std::vector<const toml::value*> tenants;
    const toml::value* where = &pv;
    const toml::value* identity = nullptr;
    for (const auto& [key, value] : entries(pv, "[[principals]]")) {
      if (key == "name") {
        p.name = nonempty(*value, "principal name");
      } else if (key == "scram") {
        p.scram = str(*value, key);
        where = value;
      } else if (key == "tenants") {
        if (!value->is_array()) fail(*value, "tenants must be an array of strings");
        for (const toml::value& t : value->as_array()) {
          p.tenants.push_back(str(t, "tenants entries"));
          tenants.push_back(&t);
        }
      } else if (key == "bypass") {
        p.bypass = boolean(*value, key);
      } else if (key == "max_connections") {
        p.max_connections = static_cast<uint32_t>(integer(*value, key, 0, kMaxConnections));
      } else if (key == "identity") {
        const std::string& s = str(*value, key);
        if (s == "claimed") {
          p.identity = IdentitySource::kClaimed;
        } else if (s == "token") {
          p.identity = IdentitySource::kToken;
        } else if (s == "either") {
          p.identity = IdentitySource::kEither;
        } else {
          fail(*value,
               "unknown principal identity " + dq(s) + " (expected claimed | token | either)");
        }
        identity = value;
      } else if (key == "admin") {
        p.admin = boolean(*value, key);
      } else if (key == "enforcement") {
        p.enforcement = enforcement(*value, key);
      } else {
        unknown(key, *value, "[[principals]]",
                "name, scram, tenants, bypass, max_connections, identity, admin, enforcement");
      }
    }
    if (p.name.empty()) fail(pv, "principal has no name");
    if (const Principal* other = config_.find_principal(p.name)) {
      fail(pv, "principal " + dq(p.name) + " is declared twice (also at line " +
                   std::to_string(other->line) + ")");
    }
    config_.principals.push_back(std::move(p));
    principal_values_.push_back(where);
    tenant_values_.push_back(std::move(tenants));
    identity_values_.push_back(identity);
  }
}

void Loader::load_identity(const toml::value& v) {
  Identity& id = config_.identity;
  const toml::value* tenant_param = nullptr;
  const toml::value* user_param = nullptr;
  for (const auto& [key, value] : entries(v, "[identity]")) {
    if (key == "tenant_param") {
      id.tenant_param = nonempty(*value, key);
      tenant_param = value;
    } else if (key == "user_param") {
      id.user_param = nonempty(*value, key);
      user_param = value;
    } else if (key == "tenant_type") {
      id.tenant_type = value_type(*value, key);
    } else if (key == "user_type") {
      id.user_type = value_type(*value, key);
    } else if (key == "token") {
      load_token(*value);
    } else {
      unknown(key, *value, "[identity]", "tenant_param, user_param, tenant_type, user_type, token");
    }
  }
  for (auto [param, value] :
       {std::pair{&id.tenant_param, tenant_param}, std::pair{&id.user_param, user_param}}) {
    const unsigned line = value ? value->location().line() : v.location().line();
    for (char c : *param) {
      if (c == '=' || c == ' ' || c == '\t' || c == '\n' || c == '\\' || c == '\0') {
        fail(line, "identity parameter " + dq(*param) +
                       " cannot contain spaces, '=' or '\\' (it must survive \"-c name=value\")");
      }
    }
    for (std::string_view reserved : kReservedStartupParams) {
      if (*param == reserved) {
        fail(line, "identity parameter " + dq(*param) + " is a PostgreSQL startup parameter");
      }
    }
  }
  if (id.tenant_param == id.user_param) {
    fail(user_param ? *user_param : v,
         "tenant_param and user_param are the same parameter " + dq(id.tenant_param));
  }
}

void Loader::load_token(const toml::value& v) {
  TokenConfig t;
  t.line = static_cast<int>(v.location().line());
  const toml::value* tenant_claim = nullptr;
  const toml::value* user_claim = nullptr;
  int sources = 0;
  for (const auto& [key, value] : entries(v, "[identity.token]")) {
    if (key == "secret_env") {
      t.secret_env = env_name(*value, key);
      if (t.secret_env.empty()) fail(*value, "secret_env is empty");
      ++sources;
    } else if (key == "public_key_file") {
      t.public_key_file = path(*value, key);
      ++sources;
    } else if (key == "jwks_file") {
      t.jwks_file = path(*value, key);
      ++sources;
    } else if (key == "issuer") {
      t.issuer = nonempty(*value, key);
    } else if (key == "audience") {
      t.audience = nonempty(*value, key);
    } else if (key == "leeway_s") {
      t.leeway_s = integer(*value, key, 0, 3600);
    } else if (key == "max_lifetime_s") {
      t.max_lifetime_s = integer(*value, key, 0, 366LL * 86400);
    } else if (key == "tenant_claim") {
      t.tenant_claim = nonempty(*value, key);
      tenant_claim = value;
    } else if (key == "user_claim") {
      t.user_claim = nonempty(*value, key);
      user_claim = value;
    } else {
      unknown(key, *value, "[identity.token]",
              "secret_env, public_key_file, jwks_file, issuer, audience, leeway_s, "
              "max_lifetime_s, tenant_claim, user_claim");
    }
  }
  if (sources != 1) {
    fail(v,
         "[identity.token] needs exactly one of secret_env, public_key_file, jwks_file (the "
         "key type decides the algorithm, so one table holds one kind of key)");
  }
  for (auto [claim, value] :
       {std::pair{&t.tenant_claim, tenant_claim}, std::pair{&t.user_claim, user_claim}}) {
    for (std::string_view registered : {"exp", "nbf", "iat", "iss", "aud", "jti"}) {
      if (*claim == registered) {
        fail(value ? *value : v, "claim " + dq(*claim) + " is a registered JWT claim");
      }
    }
  }
  if (t.tenant_claim == t.user_claim) {
    fail(user_claim ? *user_claim : v,
         "tenant_claim and user_claim are the same claim " + dq(t.tenant_claim));
  }
  config_.identity.token = std::move(t);
}

void Loader::load_policy(const toml::value& v) {
  for (const auto& [key, value] : entries(v, "[policy]")) {
    if (key == "file") {
      config_.policy_file = path(*value, key);
      config_.policy_file_line = static_cast<int>(value->location().line());
    } else if (key == "enforcement") {
      config_.enforcement = enforcement(*value, key);
    } else {
      unknown(key, *value, "[policy]", "file, enforcement");
    }
  }
}

Enforcement Loader::enforcement(const toml::value& v, std::string_view key) const {
  const std::string& s = str(v, key);
  if (s == "enforce") return Enforcement::kEnforce;
  if (s == "shadow") return Enforcement::kShadow;
  fail(v, "unknown " + std::string(key) + " " + dq(s) + " (expected enforce | shadow)");
}

void Loader::load_admin(const toml::value& v) {
  Admin& a = config_.admin;
  for (const auto& [key, value] : entries(v, "[admin]")) {
    if (key == "listen") {
      // "host:port"; an IPv6 host in brackets ("[::1]:9187").
      const std::string s = nonempty(*value, key);
      const size_t colon = s.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
        fail(*value, "admin.listen " + dq(s) + " is not \"host:port\"");
      }
      std::string host = s.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
      }
      const std::string port_text = s.substr(colon + 1);
      if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                               [](char c) { return c >= '0' && c <= '9'; })) {
        fail(*value, "admin.listen " + dq(s) + " has an invalid port");
      }
      const long port_number = std::stol(port_text);
      if (port_number > 65535) fail(*value, "admin.listen " + dq(s) + " has an invalid port");
      a.enabled = true;
      a.host = std::move(host);
      a.port = static_cast<uint16_t>(port_number);
    } else {
      unknown(key, *value, "[admin]", "listen");
    }
  }
}

void Loader::load_audit(const toml::value& v) {
  Audit& a = config_.audit;
  for (const auto& [key, value] : entries(v, "[audit]")) {
    if (key == "mode") {
      const std::string& s = str(*value, key);
      if (s == "off") {
        a.mode = AuditMode::kOff;
      } else if (s == "refusals") {
        a.mode = AuditMode::kRefusals;
      } else if (s == "writes") {
        a.mode = AuditMode::kWrites;
      } else if (s == "all") {
        a.mode = AuditMode::kAll;
      } else {
        fail(*value, "unknown audit.mode " + dq(s) + " (expected off | refusals | writes | all)");
      }
    } else if (key == "file") {
      a.file = path(*value, key);
    } else if (key == "queue_events") {
      a.queue_events = static_cast<uint32_t>(integer(*value, key, 1, 16'777'216));
    } else {
      unknown(key, *value, "[audit]", "mode, file, queue_events");
    }
  }
}

void Loader::load_limits(const toml::value& v) {
  Limits& l = config_.limits;
  constexpr int64_t kU32 = std::numeric_limits<uint32_t>::max();
  constexpr int64_t kI64 = std::numeric_limits<int64_t>::max();
  for (const auto& [key, value] : entries(v, "[limits]")) {
    if (key == "max_message_bytes") {
      l.max_message_bytes = static_cast<uint64_t>(integer(*value, key, 1, kI64));
    } else if (key == "max_statement_bytes") {
      l.max_statement_bytes = static_cast<uint64_t>(integer(*value, key, 1, kI64));
      max_statement_ = value;
    } else if (key == "startup_timeout_ms") {
      l.startup_timeout_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "shutdown_grace_ms") {
      l.shutdown_grace_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "rewrite_cache_bytes") {
      l.rewrite_cache_bytes = static_cast<uint64_t>(integer(*value, key, 1, kI64));
    } else if (key == "analysis_threads") {
      l.analysis_threads = static_cast<uint32_t>(integer(*value, key, 0, 1024));
    } else if (key == "analysis_ms_per_second") {
      l.analysis_ms_per_second = static_cast<uint32_t>(integer(*value, key, 0, 1000000));
    } else if (key == "analysis_queue_timeout_ms") {
      l.analysis_queue_timeout_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "max_pending_analyses") {
      l.max_pending_analyses = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "max_client_connections") {
      l.max_client_connections = static_cast<uint32_t>(integer(*value, key, 0, kMaxConnections));
    } else if (key == "max_startups") {
      l.max_startups = static_cast<uint32_t>(integer(*value, key, 0, kMaxConnections));
    } else if (key == "max_startups_per_source") {
      l.max_startups_per_source = static_cast<uint32_t>(integer(*value, key, 0, kMaxConnections));
    } else if (key == "max_connections_per_tenant") {
      l.max_connections_per_tenant =
          static_cast<uint32_t>(integer(*value, key, 0, kMaxConnections));
    } else {
      unknown(key, *value, "[limits]",
              "max_message_bytes, max_statement_bytes, startup_timeout_ms, shutdown_grace_ms, "
              "rewrite_cache_bytes, max_client_connections, max_startups, "
              "max_startups_per_source, max_connections_per_tenant, analysis_threads, "
              "analysis_ms_per_second, analysis_queue_timeout_ms, max_pending_analyses");
    }
  }
  if (l.max_statement_bytes > l.max_message_bytes) {
    fail(max_statement_ ? *max_statement_ : v,
         "max_statement_bytes (" + std::to_string(l.max_statement_bytes) +
             ") is larger than max_message_bytes (" + std::to_string(l.max_message_bytes) +
             "): a statement arrives inside one message");
  }
}

void Loader::load_pool(const toml::value& v) {
  Pool& p = config_.pool;
  constexpr int64_t kU32 = std::numeric_limits<uint32_t>::max();
  // Backend connections per pool: more than any database accepts.
  constexpr int64_t kMaxPoolSize = 100000;
  const toml::value* mode = nullptr;
  const toml::value* size = nullptr;
  const toml::value* min_idle = nullptr;
  const toml::value* max_per_tenant = nullptr;
  for (const auto& [key, value] : entries(v, "[pool]")) {
    if (key == "mode") {
      const std::string& s = str(*value, key);
      if (s == "session") {
        p.mode = PoolMode::kSession;
      } else if (s == "transaction") {
        p.mode = PoolMode::kTransaction;
      } else {
        fail(*value, "unknown pool.mode " + dq(s) + " (expected session | transaction)");
      }
      mode = value;
    } else if (key == "size") {
      p.size = static_cast<uint32_t>(integer(*value, key, 0, kMaxPoolSize));
      size = value;
    } else if (key == "min_idle") {
      p.min_idle = static_cast<uint32_t>(integer(*value, key, 0, kMaxPoolSize));
      min_idle = value;
    } else if (key == "idle_timeout_ms") {
      p.idle_timeout_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "max_lifetime_ms") {
      p.max_lifetime_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "acquire_timeout_ms") {
      p.acquire_timeout_ms = static_cast<uint32_t>(integer(*value, key, 1, kU32));
    } else if (key == "max_per_tenant") {
      p.max_per_tenant = static_cast<uint32_t>(integer(*value, key, 0, kMaxPoolSize));
      max_per_tenant = value;
    } else if (key == "tenant_statements_per_second") {
      p.tenant_statements_per_second = static_cast<uint32_t>(integer(*value, key, 0, kU32));
    } else {
      unknown(key, *value, "[pool]",
              "mode, size, min_idle, idle_timeout_ms, max_lifetime_ms, acquire_timeout_ms, "
              "max_per_tenant, tenant_statements_per_second");
    }
  }
  if (p.mode == PoolMode::kTransaction && p.size == 0) {
    fail(size ? *size : (mode ? *mode : v),
         "pool.mode = \"transaction\" needs pool.size >= 1 (the backend connections clients "
         "share)");
  }
  if (p.size != 0 && p.min_idle > p.size) {
    fail(*min_idle, "pool.min_idle (" + std::to_string(p.min_idle) +
                        ") is larger than pool.size (" + std::to_string(p.size) + ")");
  }
  if (p.size != 0 && p.max_per_tenant > p.size) {
    fail(*max_per_tenant, "pool.max_per_tenant (" + std::to_string(p.max_per_tenant) +
                              ") is larger than pool.size (" + std::to_string(p.size) + ")");
  }
}

void Loader::load_log(const toml::value& v) {
  Log& l = config_.log;
  for (const auto& [key, value] : entries(v, "[log]")) {
    if (key == "level") {
      const std::string& s = str(*value, key);
      if (std::find(std::begin(kLogLevels), std::end(kLogLevels), s) == std::end(kLogLevels)) {
        fail(*value, "unknown log.level " + dq(s) +
                         " (expected trace | debug | info | warn | error | critical | off)");
      }
      l.level = s;
    } else if (key == "format") {
      const std::string& s = str(*value, key);
      if (s == "text") {
        l.format = LogFormat::kText;
      } else if (s == "json") {
        l.format = LogFormat::kJson;
      } else {
        fail(*value, "unknown log.format " + dq(s) + " (expected text | json)");
      }
    } else if (key == "log_statement_values") {
      l.log_statement_values = boolean(*value, key);
    } else {
      unknown(key, *value, "[log]", "level, format, log_statement_values");
    }
  }
}

bool is_base64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  size_t pad = 0;
  while (pad < 2 && s[s.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i < s.size() - pad; ++i) {
    const char c = s[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// The shape of a PostgreSQL SCRAM-SHA-256 verifier,
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" with base64
// salt and 32-byte keys. The proxy decodes it fully at start-up; this only
// catches placeholders and copy-paste damage with a line number.
std::optional<std::string> scram_problem(std::string_view v) {
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (v.empty()) return "is missing";
  if (!v.starts_with(kPrefix)) return "does not start with \"SCRAM-SHA-256$\"";
  v.remove_prefix(kPrefix.size());
  const size_t colon = v.find(':');
  if (colon == std::string_view::npos) return "has no \"<iterations>:\"";
  const std::string_view iter = v.substr(0, colon);
  if (iter.empty() || iter.size() > 9 ||
      !std::all_of(iter.begin(), iter.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(std::string(iter)) == 0) {
    return "has an invalid iteration count";
  }
  v.remove_prefix(colon + 1);
  const size_t dollar = v.find('$');
  if (dollar == std::string_view::npos) return "has no \"$<StoredKey>:<ServerKey>\"";
  if (!is_base64(v.substr(0, dollar))) return "has a salt that is not base64";
  v.remove_prefix(dollar + 1);
  const size_t colon2 = v.find(':');
  if (colon2 == std::string_view::npos) return "has no \":<ServerKey>\"";
  const std::string_view stored = v.substr(0, colon2);
  const std::string_view server = v.substr(colon2 + 1);
  auto key_ok = [](std::string_view k) { return k.size() == 44 && k[43] == '=' && is_base64(k); };
  if (!key_ok(stored)) return "has a StoredKey that is not 32 bytes of base64";
  if (!key_ok(server)) return "has a ServerKey that is not 32 bytes of base64";
  return std::nullopt;
}

void Loader::validate_principals() const {
  for (size_t i = 0; i < config_.principals.size(); ++i) {
    const Principal& p = config_.principals[i];
    if (p.identity != IdentitySource::kClaimed && !config_.identity.token) {
      fail(*identity_values_[i], "principal " + dq(p.name) +
                                     ": identity = \"token\" or \"either\" needs an "
                                     "[identity.token] table");
    }
    if (config_.auth_mode == AuthMode::kScram) {
      if (auto problem = scram_problem(p.scram)) {
        fail(*principal_values_[i], "principal " + dq(p.name) + ": scram verifier " + *problem +
                                        " (auth.mode = \"scram\" needs a SCRAM-SHA-256 verifier "
                                        "for every principal)");
      }
    }
  }
}

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;
  }
  return false;
}

Config Loader::load(std::string_view text) {
  auto parsed = policy::parse_toml(text, file_);
  if (auto* error = std::get_if<policy::TomlSyntaxError>(&parsed)) fail(error->line, error->reason);
  const toml::value root = std::move(std::get<toml::value>(parsed));

  const fs::path source = fs::absolute(fs::path(file_)).lexically_normal();
  config_.source_file = source.string();
  dir_ = source.parent_path();
  config_.policy_file = (dir_ / "policy.toml").string();

  // [identity] first: principals' tenants are checked against tenant_type.
  const Entries top = entries(root, "the file");
  for (const auto& [key, value] : top) {
    if (key == "identity") load_identity(*value);
  }
  for (const auto& [key, value] : top) {
    if (key == "listen") {
      load_listen(*value);
    } else if (key == "backend") {
      load_backend(*value);
    } else if (key == "auth") {
      load_auth(*value);
    } else if (key == "principals") {
      load_principals(*value);
    } else if (key == "policy") {
      load_policy(*value);
    } else if (key == "limits") {
      load_limits(*value);
    } else if (key == "pool") {
      load_pool(*value);
    } else if (key == "log") {
      load_log(*value);
    } else if (key == "admin") {
      load_admin(*value);
    } else if (key == "audit") {
      load_audit(*value);
    } else if (key != "identity") {
      fail(*value, "unknown key " + dq(key) +
                       " (expected listen, backend, auth, principals, identity, policy, limits, "
                       "pool, log, admin, audit)");
    }
  }

  // Tenants are stored canonically, so that a session compares canonical
  // values with canonical values.
  const policy::ValueType tenant_type = config_.identity.tenant_type;
  for (size_t i = 0; i < config_.principals.size(); ++i) {
    Principal& p = config_.principals[i];
    for (size_t k = 0; k < p.tenants.size(); ++k) {
      if (p.tenants[k] == "*") continue;
      std::optional<std::string> c = policy::canonical_value(tenant_type, p.tenants[k]);
      if (!c) {
        fail(*tenant_values_[i][k],
             "principal " + dq(p.name) + ": tenant " + dq(p.tenants[k]) + " is not a valid " +
                 std::string(policy::value_type_name(tenant_type)) + " (identity.tenant_type)");
      }
      p.tenants[k] = std::move(*c);
    }
  }
  validate_principals();

  if (config_.auth_mode == AuthMode::kTrust && !is_loopback(config_.listen.host)) {
    fail(auth_mode_ ? auth_mode_->location().line() : auth_line_,
         "auth.mode = \"trust\" lets anyone who can connect claim any principal; it is only "
         "allowed when listen.host is a loopback address (127.0.0.0/8, ::1, localhost), not " +
             dq(config_.listen.host));
  }
  return std::move(config_);
}

}  // namespace

std::string_view enforcement_name(Enforcement e) {
  return e == Enforcement::kShadow ? "shadow" : "enforce";
}

std::string_view audit_mode_name(AuditMode m) {
  switch (m) {
    case AuditMode::kOff:
      return "off";
    case AuditMode::kRefusals:
      return "refusals";
    case AuditMode::kWrites:
      return "writes";
    case AuditMode::kAll:
      return "all";
  }
  return "off";
}

const Principal* find_principal(const std::vector<Principal>& principals, std::string_view name) {
  for (const Principal& p : principals) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Principal* Config::find_principal(std::string_view name) const {
  return config::find_principal(principals, name);
}

Config parse_config(std::string_view toml_text, const std::string& file_name) {
  return Loader(file_name).load(toml_text);
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return parse_config(buf.str(), path);
}

}  // namespace tenantgate::config
