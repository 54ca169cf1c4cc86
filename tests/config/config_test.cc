// tenantgate.toml loading: defaults, every key, path resolution, and one test
// per error path, each checking the reported line and reason.
#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace tenantgate::config {
namespace {

constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:dGVuYW50Z2F0ZS1hcHAhIQ==$pzvIcB+OcqZggvdfPAnf4ErKjqWr7gJ+pjhGonbLgmY=:"
    "uzfGjDUH+cLex8pGuojei8XXDdsFjbo9oMmsKAR5z6w=";

std::string principal(const std::string& name, const std::string& extra = "") {
  return "[[principals]]\nname = \"" + name + "\"\nscram = \"" + kVerifier + "\"\n" + extra;
}

Config parse(const std::string& text) { return parse_config(text, "/etc/tg/tenantgate.toml"); }

void expect_error(const std::string& text, int line, const std::string& reason) {
  try {
    (void)parse_config(text, "c.toml");
    ADD_FAILURE() << "no error; expected line " << line << ": " << reason << "\n" << text;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    const std::string prefix = "c.toml:" + std::to_string(line) + ": ";
    EXPECT_TRUE(what.starts_with(prefix)) << what << "\nexpected prefix " << prefix;
    EXPECT_NE(what.find(reason), std::string::npos) << what << "\nexpected " << reason;
  }
}

TEST(ConfigTest, EmptyFileHasDefaults) {
  Config c = parse("");
  EXPECT_EQ(c.source_file, "/etc/tg/tenantgate.toml");
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.listen.tls, ListenTls::kDisable);
  EXPECT_EQ(c.listen.threads, 0u);
  EXPECT_EQ(c.backend.host, "127.0.0.1");
  EXPECT_EQ(c.backend.port, 26257);
  EXPECT_EQ(c.backend.user, "tenantgate");
  EXPECT_EQ(c.backend.password_env, "TENANTGATE_BACKEND_PASSWORD");
  EXPECT_EQ(c.backend.tls, BackendTls::kDisable);
  EXPECT_EQ(c.auth_mode, AuthMode::kScram);
  EXPECT_TRUE(c.principals.empty());
  EXPECT_EQ(c.identity.tenant_param, "tenantgate.tenant");
  EXPECT_EQ(c.identity.user_param, "tenantgate.user");
  EXPECT_EQ(c.identity.tenant_type, policy::ValueType::kText);
  EXPECT_EQ(c.identity.user_type, policy::ValueType::kInt);
  EXPECT_EQ(c.policy_file, "/etc/tg/policy.toml");
  EXPECT_EQ(c.limits.max_message_bytes, 67108864u);
  EXPECT_EQ(c.limits.max_statement_bytes, 1048576u);
  EXPECT_EQ(c.limits.startup_timeout_ms, 10000u);
  EXPECT_EQ(c.limits.shutdown_grace_ms, 10000u);
  EXPECT_EQ(c.limits.rewrite_cache_bytes, 64u << 20);
  EXPECT_EQ(c.limits.max_client_connections, 10000u);
  EXPECT_EQ(c.limits.max_startups, 1000u);
  EXPECT_EQ(c.limits.max_startups_per_source, 0u);
  EXPECT_EQ(c.limits.max_connections_per_tenant, 0u);
  EXPECT_EQ(c.revoked_sessions, RevokedSessions::kTerminate);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, LogFormat::kText);
  EXPECT_FALSE(c.log.log_statement_values);
}

TEST(ConfigTest, EveryKey) {
  Config c = parse(R"(
[listen]
host = "0.0.0.0"
port = 7000
tls = "require"
tls_cert = "certs/server.crt"
tls_key = "/abs/server.key"
threads = 4

[backend]
host = "db.internal"
port = 5432
user = "svc"
password_env = "PG_PASS"
tls = "verify-full"
tls_ca = "../ca/ca.crt"

[auth]
mode = "passthrough"
revoked_sessions = "finish"

[[principals]]
name = "app"
tenants = ["*"]
max_connections = 25

[[principals]]
name = "reporting"
tenants = ["42", "+7", "007"]

[[principals]]
name = "migrator"
bypass = true

[identity]
tenant_param = "app.tenant"
user_param = "app.user"
tenant_type = "int"
user_type = "uuid"

[policy]
file = "./rules/../policy/p.toml"

[limits]
max_message_bytes = 1000
max_statement_bytes = 1000
startup_timeout_ms = 1
shutdown_grace_ms = 2
rewrite_cache_bytes = 3
max_client_connections = 4
max_startups = 5
max_startups_per_source = 6
max_connections_per_tenant = 7

[log]
level = "debug"
format = "json"
log_statement_values = true
)");
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 7000);
  EXPECT_EQ(c.listen.tls, ListenTls::kRequire);
  EXPECT_EQ(c.listen.tls_cert, "/etc/tg/certs/server.crt");
  EXPECT_EQ(c.listen.tls_key, "/abs/server.key");
  EXPECT_EQ(c.listen.threads, 4u);
  EXPECT_EQ(c.backend.host, "db.internal");
  EXPECT_EQ(c.backend.port, 5432);
  EXPECT_EQ(c.backend.user, "svc");
  EXPECT_EQ(c.backend.password_env, "PG_PASS");
  EXPECT_EQ(c.backend.tls, BackendTls::kVerifyFull);
  EXPECT_EQ(c.backend.tls_ca, "/etc/ca/ca.crt");
  EXPECT_EQ(c.auth_mode, AuthMode::kPassthrough);
  ASSERT_EQ(c.principals.size(), 3u);
  EXPECT_EQ(c.principals[0].tenants, std::vector<std::string>{"*"});
  EXPECT_EQ(c.principals[0].line, 22);
  EXPECT_EQ(c.principals[0].max_connections, 25u);
  EXPECT_EQ(c.principals[1].max_connections, 0u);
  EXPECT_EQ(c.revoked_sessions, RevokedSessions::kFinish);
  EXPECT_EQ(c.principals[1].tenants, (std::vector<std::string>{"42", "7", "7"}));
  EXPECT_FALSE(c.principals[1].bypass);
  EXPECT_TRUE(c.principals[2].bypass);
  EXPECT_TRUE(c.principals[2].tenants.empty());
  EXPECT_EQ(c.identity.tenant_param, "app.tenant");
  EXPECT_EQ(c.identity.user_param, "app.user");
  EXPECT_EQ(c.identity.tenant_type, policy::ValueType::kInt);
  EXPECT_EQ(c.identity.user_type, policy::ValueType::kUuid);
  EXPECT_EQ(c.policy_file, "/etc/tg/policy/p.toml");
  EXPECT_EQ(c.limits.max_message_bytes, 1000u);
  EXPECT_EQ(c.limits.max_statement_bytes, 1000u);
  EXPECT_EQ(c.limits.startup_timeout_ms, 1u);
  EXPECT_EQ(c.limits.shutdown_grace_ms, 2u);
  EXPECT_EQ(c.limits.rewrite_cache_bytes, 3u);
  EXPECT_EQ(c.limits.max_client_connections, 4u);
  EXPECT_EQ(c.limits.max_startups, 5u);
  EXPECT_EQ(c.limits.max_startups_per_source, 6u);
  EXPECT_EQ(c.limits.max_connections_per_tenant, 7u);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, LogFormat::kJson);
  EXPECT_TRUE(c.log.log_statement_values);

  ASSERT_NE(c.find_principal("reporting"), nullptr);
  EXPECT_EQ(c.find_principal("reporting")->name, "reporting");
  EXPECT_EQ(c.find_principal("migrator"), &c.principals[2]);
  EXPECT_EQ(c.find_principal("nobody"), nullptr);
  EXPECT_EQ(c.find_principal("App"), nullptr);  // names are case-sensitive, like roles
  EXPECT_EQ(c.find_principal(""), nullptr);
}

TEST(ConfigTest, AnalysisLimits) {
  Config defaults = parse("");
  EXPECT_EQ(defaults.limits.analysis_threads, 0u);
  EXPECT_EQ(defaults.limits.analysis_ms_per_second, 1000u);
  EXPECT_EQ(defaults.limits.analysis_queue_timeout_ms, 5000u);
  EXPECT_EQ(defaults.limits.max_pending_analyses, 64u);
  Config c = parse(R"(
[limits]
analysis_threads = 3
analysis_ms_per_second = 0
analysis_queue_timeout_ms = 250
max_pending_analyses = 2
)");
  EXPECT_EQ(c.limits.analysis_threads, 3u);
  EXPECT_EQ(c.limits.analysis_ms_per_second, 0u);
  EXPECT_EQ(c.limits.analysis_queue_timeout_ms, 250u);
  EXPECT_EQ(c.limits.max_pending_analyses, 2u);
  expect_error("[limits]\nanalysis_threads = 2000\n", 2, "out of range (0..1024)");
  expect_error("[limits]\nanalysis_queue_timeout_ms = 0\n", 2,
               "analysis_queue_timeout_ms = 0 is out of range");
  expect_error("[limits]\nmax_pending_analyses = 0\n", 2,
               "max_pending_analyses = 0 is out of range");
}

TEST(ConfigTest, RelativeConfigPathBecomesAbsolute) {
  Config c = parse_config("[policy]\nfile = \"p.toml\"\n", "conf/t.toml");
  const auto cwd = std::filesystem::current_path();
  EXPECT_EQ(c.source_file, (cwd / "conf/t.toml").lexically_normal().string());
  EXPECT_EQ(c.policy_file, (cwd / "conf/p.toml").lexically_normal().string());
}

TEST(ConfigTest, TenantsAreCanonical) {
  Config c = parse("[identity]\ntenant_type = \"uuid\"\n" +
                   principal("a", "tenants = [\"123E4567-E89B-12D3-A456-426614174000\"]\n"));
  EXPECT_EQ(c.principals[0].tenants[0], "123e4567-e89b-12d3-a456-426614174000");
}

TEST(ConfigTest, ScramIsOnlyCheckedInScramMode) {
  Config c = parse("[auth]\nmode = \"passthrough\"\n[[principals]]\nname = \"a\"\n");
  EXPECT_TRUE(c.principals[0].scram.empty());
  c = parse("[auth]\nmode = \"trust\"\n[[principals]]\nname = \"a\"\nscram = \"junk\"\n");
  EXPECT_EQ(c.auth_mode, AuthMode::kTrust);
}

TEST(ConfigTest, TrustOnLoopback) {
  for (const char* host :
       {"127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1", "localhost", "::ffff:127.0.0.1"}) {
    Config c = parse(std::string("[listen]\nhost = \"") + host + "\"\n[auth]\nmode = \"trust\"\n");
    EXPECT_EQ(c.auth_mode, AuthMode::kTrust) << host;
  }
}

TEST(ConfigTest, ListenPortZeroMeansEphemeral) {
  EXPECT_EQ(parse("[listen]\nport = 0\n").listen.port, 0);
}

TEST(ConfigTest, TlsDisabledMayKeepPaths) {
  Config c = parse("[listen]\ntls = \"disable\"\ntls_cert = \"a.crt\"\n");
  EXPECT_EQ(c.listen.tls_cert, "/etc/tg/a.crt");
}

TEST(ConfigTest, ExampleFileLoads) {
  Config c = load_config_file(TG_EXAMPLES_DIR "/tenantgate.toml");
  EXPECT_EQ(c.auth_mode, AuthMode::kScram);
  ASSERT_EQ(c.principals.size(), 2u);
  EXPECT_EQ(c.principals[0].name, "app");
  EXPECT_TRUE(c.principals[1].bypass);
  EXPECT_EQ(c.policy_file,
            std::filesystem::path(TG_EXAMPLES_DIR "/policy.toml").lexically_normal().string());
  EXPECT_EQ(c.source_file,
            std::filesystem::path(TG_EXAMPLES_DIR "/tenantgate.toml").lexically_normal().string());
}

TEST(ConfigTest, DataFileErrorAndMissingFile) {
  const std::string path = TG_CONFIG_TEST_DATA "/bad_port.toml";
  try {
    (void)load_config_file(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":4: port = 70000 is out of range (0..65535)");
  }
  try {
    (void)load_config_file(TG_CONFIG_TEST_DATA "/missing.toml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.toml: cannot open"), std::string::npos);
  }
}

// ---- error paths ---------------------------------------------------------

TEST(ConfigErrorTest, InvalidToml) {
  expect_error("[listen]\nport = \n", 2, "invalid TOML: missing value");
  expect_error("[listen]\nport = 1\n[listen]\n", 3, "invalid TOML");
}

TEST(ConfigErrorTest, UnknownKeys) {
  expect_error("\n[server]\nport = 1\n", 2, "unknown key \"server\"");
  expect_error("[listen]\nhost = \"x\"\nprot = 1\n", 3, "unknown key \"prot\" in [listen]");
  expect_error("[backend]\npassword = \"x\"\n", 2, "unknown key \"password\" in [backend]");
  expect_error("[auth]\nmethod = \"scram\"\n", 2, "unknown key \"method\" in [auth]");
  expect_error(principal("a", "tenant = [\"x\"]\n"), 4, "unknown key \"tenant\" in [[principals]]");
  expect_error("[identity]\ntenant = \"x\"\n", 2, "unknown key \"tenant\" in [identity]");
  expect_error("[policy]\npath = \"p.toml\"\n", 2, "unknown key \"path\" in [policy]");
  expect_error("[limits]\nmax_rows = 1\n", 2, "unknown key \"max_rows\" in [limits]");
  expect_error("[log]\nfile = \"x.log\"\n", 2, "unknown key \"file\" in [log]");
  expect_error("[log.sub]\nx = 1\n", 1, "unknown key \"sub\" in [log]");
}

TEST(ConfigErrorTest, WrongTypes) {
  expect_error("listen = 1\n", 1, "[listen] must be a table");
  expect_error("[listen]\nport = \"6432\"\n", 2, "port must be an integer");
  expect_error("[listen]\nhost = 127\n", 2, "host must be a string");
  expect_error("[listen]\nthreads = 1.5\n", 2, "threads must be an integer");
  expect_error("[[principals]]\nname = \"a\"\nbypass = \"yes\"\n", 3,
               "bypass must be true or false");
  expect_error("[[principals]]\nname = \"a\"\ntenants = \"*\"\n", 3, "tenants must be an array");
  expect_error("[[principals]]\nname = \"a\"\ntenants = [1]\n", 3,
               "tenants entries must be a string");
  expect_error("[principals]\nname = \"a\"\n", 1, "principals must be an array of tables");
  expect_error("principals = [1]\n", 1, "[[principals]] must be a table");
  expect_error("[log]\nlog_statement_values = 1\n", 2,
               "log_statement_values must be true or false");
  expect_error("[limits]\nmax_message_bytes = \"64MB\"\n", 2,
               "max_message_bytes must be an integer");
}

TEST(ConfigErrorTest, ConnectionLimits) {
  expect_error("[limits]\nmax_client_connections = -1\n", 2,
               "max_client_connections = -1 is out of range (0..10000000)");
  expect_error("[limits]\nmax_startups = \"many\"\n", 2, "max_startups must be an integer");
  expect_error("[limits]\nmax_startups_per_source = 20000000\n", 2, "out of range");
  expect_error("[limits]\nmax_connections_per_tenant = 1.5\n", 2,
               "max_connections_per_tenant must be an integer");
  expect_error(principal("a", "max_connections = -2\n"), 4,
               "max_connections = -2 is out of range (0..10000000)");
  expect_error("[auth]\nrevoked_sessions = \"kill\"\n", 2,
               "unknown auth.revoked_sessions \"kill\" (expected terminate | finish)");
}

TEST(ConfigErrorTest, Ports) {
  expect_error("[listen]\nport = 65536\n", 2, "port = 65536 is out of range (0..65535)");
  expect_error("[listen]\nport = -1\n", 2, "out of range");
  expect_error("[backend]\nport = 0\n", 2, "port = 0 is out of range (1..65535)");
  expect_error("[backend]\n\nport = 100000\n", 3, "out of range");
}

TEST(ConfigErrorTest, EnumValues) {
  expect_error("[listen]\ntls = \"on\"\n", 2,
               "unknown listen.tls \"on\" (expected disable | allow | require)");
  expect_error(
      "[backend]\ntls = \"verify-ca\"\n", 2,
      "unknown backend.tls \"verify-ca\" (expected disable | prefer | require | verify-full)");
  expect_error("[auth]\nmode = \"md5\"\n", 2,
               "unknown auth.mode \"md5\" (expected scram | passthrough | trust)");
  expect_error("[identity]\ntenant_type = \"string\"\n", 2,
               "unknown tenant_type \"string\" (expected text | int | uuid)");
  expect_error("[identity]\nuser_type = \"bigint\"\n", 2, "unknown user_type \"bigint\"");
  expect_error("[log]\nlevel = \"warning\"\n", 2, "unknown log.level \"warning\"");
  expect_error("[log]\nformat = \"logfmt\"\n", 2,
               "unknown log.format \"logfmt\" (expected text | json)");
}

TEST(ConfigTest, BackendDialect) {
  // CockroachDB's constructions are safe on both databases: the default.
  EXPECT_EQ(parse("").backend.dialect, BackendDialect::kCockroachDB);
  EXPECT_EQ(parse("[backend]\ndialect = \"postgresql\"\n").backend.dialect,
            BackendDialect::kPostgreSQL);
  EXPECT_EQ(parse("[backend]\ndialect = \"cockroachdb\"\n").backend.dialect,
            BackendDialect::kCockroachDB);
  EXPECT_EQ(parse("[backend]\ndialect = \"auto\"\n").backend.dialect, BackendDialect::kAuto);
  expect_error("[backend]\ndialect = \"mysql\"\n", 2,
               "unknown backend.dialect \"mysql\" (expected postgresql | cockroachdb | auto)");
}

TEST(ConfigErrorTest, TlsNeedsFiles) {
  expect_error("[listen]\ntls = \"require\"\ntls_key = \"k\"\n", 2,
               "listen.tls = \"require\" needs tls_cert");
  expect_error("[listen]\ntls = \"allow\"\ntls_cert = \"c\"\n", 2,
               "listen.tls = \"allow\" needs tls_key");
  expect_error("[backend]\n\ntls = \"verify-full\"\n", 3,
               "backend.tls = \"verify-full\" needs tls_ca");
  expect_error("[listen]\ntls = \"require\"\ntls_cert = \"\"\ntls_key = \"k\"\n", 3,
               "tls_cert is empty");
  // require/prefer do not need a CA.
  EXPECT_EQ(parse("[backend]\ntls = \"require\"\n").backend.tls, BackendTls::kRequire);
}

TEST(ConfigErrorTest, Scram) {
  const std::string salt = "dGVuYW50Z2F0ZS1hcHAhIQ==";
  const std::string key = "pzvIcB+OcqZggvdfPAnf4ErKjqWr7gJ+pjhGonbLgmY=";
  struct Case {
    std::string verifier;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"", "is missing"},
           {"md5abcdef", "does not start with \"SCRAM-SHA-256$\""},
           {"SCRAM-SHA-1$4096:" + salt + "$" + key + ":" + key, "does not start with"},
           {"SCRAM-SHA-256$4096", "has no \"<iterations>:\""},
           {"SCRAM-SHA-256$:" + salt + "$" + key + ":" + key, "has an invalid iteration count"},
           {"SCRAM-SHA-256$0:" + salt + "$" + key + ":" + key, "has an invalid iteration count"},
           {"SCRAM-SHA-256$-1:" + salt + "$" + key + ":" + key, "has an invalid iteration count"},
           {"SCRAM-SHA-256$4096:" + salt, "has no \"$<StoredKey>:<ServerKey>\""},
           {"SCRAM-SHA-256$4096:<salt>$" + key + ":" + key, "has a salt that is not base64"},
           {"SCRAM-SHA-256$4096:$" + key + ":" + key, "has a salt that is not base64"},
           {"SCRAM-SHA-256$4096:" + salt + "$" + key, "has no \":<ServerKey>\""},
           {"SCRAM-SHA-256$4096:" + salt + "$<storedkey>:" + key,
            "has a StoredKey that is not 32 bytes"},
           {"SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key.substr(4),
            "has a ServerKey that is not 32 bytes"},
           {"SCRAM-SHA-256$4096:" + salt + "$" + key + ":...", "has a ServerKey"},
       }) {
    expect_error("[auth]\nmode = \"scram\"\n\n[[principals]]\nname = \"app\"\nscram = \"" +
                     c.verifier + "\"\n",
                 6, "principal \"app\": scram verifier " + c.reason);
  }
  expect_error("[[principals]]\nname = \"app\"\n", 1,
               "auth.mode = \"scram\" needs a SCRAM-SHA-256 verifier for every principal");
}

TEST(ConfigErrorTest, Principals) {
  expect_error("[[principals]]\nname = \"\"\n", 2, "principal name is empty");
  expect_error("[[principals]]\nbypass = true\n", 1, "principal has no name");
  expect_error(principal("app") + "\n" + principal("app"), 5,
               "principal \"app\" is declared twice (also at line 1)");
}

TEST(ConfigErrorTest, TenantsMustMatchTheType) {
  expect_error(
      "[identity]\ntenant_type = \"int\"\n" + principal("a", "tenants = [\"1\",\n \"acme\"]\n"), 7,
      "principal \"a\": tenant \"acme\" is not a valid int (identity.tenant_type)");
  expect_error(principal("a", "tenants = [\"\"]\n"), 4, "tenant \"\" is not a valid text");
  expect_error("[identity]\ntenant_type = \"uuid\"\n" + principal("a", "tenants = [\"{x}\"]\n"), 6,
               "is not a valid uuid");
}

TEST(ConfigErrorTest, TrustNeedsLoopback) {
  for (const char* host :
       {"0.0.0.0", "::", "10.0.0.1", "example.com", "128.0.0.1", "localhost.evil"}) {
    expect_error(
        std::string("[listen]\nhost = \"") + host + "\"\n\n[auth]\nmode = \"trust\"\n", 5,
        "auth.mode = \"trust\" lets anyone who can connect claim any principal; it is only "
        "allowed when listen.host is a loopback address (127.0.0.0/8, ::1, localhost), not \"" +
            std::string(host) + "\"");
  }
}

TEST(ConfigErrorTest, Identity) {
  expect_error("[identity]\ntenant_param = \"\"\n", 2, "tenant_param is empty");
  expect_error("[identity]\ntenant_param = \"user\"\n", 2,
               "identity parameter \"user\" is a PostgreSQL startup parameter");
  expect_error("[identity]\nuser_param = \"options\"\n", 2, "is a PostgreSQL startup parameter");
  expect_error("[identity]\ntenant_param = \"a b\"\n", 2, "cannot contain spaces");
  expect_error("[identity]\ntenant_param = \"a=b\"\n", 2, "cannot contain spaces, '='");
  expect_error("[identity]\ntenant_param = \"x\"\nuser_param = \"x\"\n", 3,
               "tenant_param and user_param are the same parameter \"x\"");
  expect_error("[identity]\nuser_param = \"tenantgate.tenant\"\n", 2, "the same parameter");
}

TEST(ConfigErrorTest, Backend) {
  expect_error("[backend]\nuser = \"\"\n", 2, "user is empty");
  expect_error("[backend]\nhost = \"\"\n", 2, "host is empty");
  expect_error("[backend]\npassword_env = \"MY-PASS\"\n", 2,
               "password_env \"MY-PASS\" is not an environment variable name");
  expect_error("[backend]\npassword_env = \"1PASS\"\n", 2, "not an environment variable name");
  EXPECT_EQ(parse("[backend]\npassword_env = \"\"\n").backend.password_env, "");
}

TEST(ConfigErrorTest, Limits) {
  expect_error("[limits]\nmax_message_bytes = 0\n", 2, "max_message_bytes = 0 is out of range");
  expect_error("[limits]\nmax_statement_bytes = -5\n", 2,
               "max_statement_bytes = -5 is out of range");
  expect_error("[limits]\nstartup_timeout_ms = 0\n", 2, "startup_timeout_ms = 0 is out of range");
  expect_error("[limits]\nstartup_timeout_ms = 4294967296\n", 2, "out of range (1..4294967295)");
  expect_error("[limits]\nshutdown_grace_ms = 0\n", 2, "shutdown_grace_ms = 0 is out of range");
  expect_error("[limits]\nrewrite_cache_bytes = 0\n", 2, "rewrite_cache_bytes = 0 is out of range");
  expect_error("[limits]\nmax_message_bytes = 100\nmax_statement_bytes = 200\n", 3,
               "max_statement_bytes (200) is larger than max_message_bytes (100)");
  expect_error("[listen]\nthreads = -1\n", 2, "threads = -1 is out of range (0..1024)");
  expect_error("[listen]\nthreads = 5000\n", 2, "out of range");
  EXPECT_EQ(parse("[limits]\nstartup_timeout_ms = 4294967295\n").limits.startup_timeout_ms,
            4294967295u);
}

TEST(ConfigTest, PoolDefaultsKeepSessionsAsTheyAre) {
  const Pool p = parse("").pool;
  EXPECT_EQ(p.mode, PoolMode::kSession);
  EXPECT_EQ(p.size, 0u);  // no cap: one backend per client, at once
  EXPECT_EQ(p.min_idle, 0u);
  EXPECT_EQ(p.idle_timeout_ms, 600000u);
  EXPECT_EQ(p.max_lifetime_ms, 3600000u);
  EXPECT_EQ(p.acquire_timeout_ms, 5000u);
  EXPECT_EQ(p.max_per_tenant, 0u);
  EXPECT_EQ(p.tenant_statements_per_second, 0u);
}

TEST(ConfigTest, PoolEveryKey) {
  const Pool p = parse(R"(
[pool]
mode = "transaction"
size = 10
min_idle = 2
idle_timeout_ms = 30000
max_lifetime_ms = 900000
acquire_timeout_ms = 250
max_per_tenant = 4
tenant_statements_per_second = 500
)")
                     .pool;
  EXPECT_EQ(p.mode, PoolMode::kTransaction);
  EXPECT_EQ(p.size, 10u);
  EXPECT_EQ(p.min_idle, 2u);
  EXPECT_EQ(p.idle_timeout_ms, 30000u);
  EXPECT_EQ(p.max_lifetime_ms, 900000u);
  EXPECT_EQ(p.acquire_timeout_ms, 250u);
  EXPECT_EQ(p.max_per_tenant, 4u);
  EXPECT_EQ(p.tenant_statements_per_second, 500u);
  // Session mode may cap its backends too.
  EXPECT_EQ(parse("[pool]\nmode = \"session\"\nsize = 3\n").pool.size, 3u);
}

TEST(ConfigErrorTest, Pool) {
  expect_error("[pool]\nmode = \"statement\"\n", 2,
               "unknown pool.mode \"statement\" (expected session | transaction)");
  expect_error("[pool]\nmode = \"transaction\"\n", 2,
               "pool.mode = \"transaction\" needs pool.size >= 1");
  expect_error("[pool]\nmode = \"transaction\"\nsize = 0\n", 3, "needs pool.size >= 1");
  expect_error("[pool]\nsize = 4\nmin_idle = 5\n", 3,
               "pool.min_idle (5) is larger than pool.size (4)");
  expect_error("[pool]\nmax_per_tenant = 9\nsize = 8\n", 2,
               "pool.max_per_tenant (9) is larger than pool.size (8)");
  expect_error("[pool]\nsize = -1\n", 2, "size = -1 is out of range (0..100000)");
  expect_error("[pool]\nacquire_timeout_ms = 0\n", 2, "acquire_timeout_ms = 0 is out of range");
  expect_error("[pool]\nidle_timeout_ms = 0\n", 2, "idle_timeout_ms = 0 is out of range");
  expect_error("[pool]\nmax_lifetime_ms = 0\n", 2, "max_lifetime_ms = 0 is out of range");
  expect_error("[pool]\nmode = 1\n", 2, "mode must be a string");
  expect_error("[pool]\nsize = 2\nwait = 1\n", 3, "unknown key \"wait\" in [pool]");
  expect_error("pool = 3\n", 1, "[pool] must be a table");
}

TEST(ConfigErrorTest, PolicyFile) {
  expect_error("[policy]\nfile = \"\"\n", 2, "file is empty");
  expect_error("[policy]\nfile = 1\n", 2, "file must be a string");
}

}  // namespace
}  // namespace tenantgate::config
