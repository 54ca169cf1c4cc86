// tenantgate's command line: run the proxy, check a configuration, show what
// the rewriter does to a statement, make a SCRAM verifier or mint a token.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "identity/token_authority.h"
#include "identity/token_minter.h"
#include "ops/audit_report.h"
#include "ops/schema.h"
#include "policy/identity.h"
#include "policy/policy.h"
#include "proxy/check_functions.h"
#include "proxy/log.h"
#include "proxy/scram.h"
#include "proxy/server.h"
#include "rewriter/rewriter.h"
#include "tenantgate_version.h"

namespace tg = tenantgate;

namespace {

constexpr const char* kUsage = R"(usage:
  tenantgate --config FILE                 run the proxy
  tenantgate check --config FILE           validate the configuration and the policy
  tenantgate check --dsn CONNINFO [--config FILE]
                                           list the database's app functions and the policy's entries;
                                           with --config, verify the policy's tables and columns
  tenantgate policy init --dsn CONNINFO [--output FILE] [--tenant-column C] [--owner-column C]
                                           print a starting policy.toml guessed from the live schema
  tenantgate report AUDIT_FILE             missing-predicate and shadow-mode findings of an audit trail
  tenantgate rewrite --config FILE --tenant T [--user U] [--principal P] [--database D]
                     [--dialect postgresql|cockroachdb] [SQL]
                                           print the rewritten SQL (reads stdin without SQL)
  tenantgate hash-password [--iterations N]
                                           read a password on stdin, print a SCRAM-SHA-256 verifier
  tenantgate token --config FILE --tenant T [--user U] [--ttl SECONDS] [--claim NAME=VALUE ...]
                   [--alg HS256|HS384|HS512]
                                           print a token signed with [identity.token] secret_env
  tenantgate --version
)";

struct Args {
  std::string command = "run";
  std::map<std::string, std::string> options;
  std::vector<std::string> claims;  // --claim NAME=VALUE, repeatable
  std::vector<std::string> positional;
};

// Parses "[command] --name value ... [positional]"; returns nullopt on misuse.
std::optional<Args> parse_args(int argc, char** argv) {
  Args args;
  int i = 1;
  if (i < argc && argv[i][0] != '-') args.command = argv[i++];
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--version" || arg == "--help" || arg == "-h") {
      args.options[arg] = "";
    } else if (arg.starts_with("--")) {
      auto eq = arg.find('=');
      std::string name, value;
      if (eq != std::string::npos) {
        name = arg.substr(2, eq - 2);
        value = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        name = arg.substr(2);
        value = argv[++i];
      } else {
        return std::nullopt;
      }
      if (name == "claim") {
        args.claims.push_back(std::move(value));
      } else {
        args.options[name] = std::move(value);
      }
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

// Loads and checks the configuration and its policy; prints "file:line: reason"
// and returns nullptr on the first problem.
std::shared_ptr<const tg::config::Config> load_checked(
    const std::string& path, std::shared_ptr<const tg::policy::Policy>* policy) {
  try {
    auto config = std::make_shared<tg::config::Config>(tg::config::load_config_file(path));
    if (config->auth_mode == tg::config::AuthMode::kScram) {
      for (const auto& p : config->principals) {
        if (!tg::proxy::parse_scram_verifier(p.scram)) {
          std::cerr << config->source_file << ":" << p.line << ": principal \"" << p.name
                    << "\": scram is not a valid SCRAM-SHA-256 verifier\n";
          return nullptr;
        }
      }
    }
    if (access(config->policy_file.c_str(), R_OK) != 0) {
      std::cerr << config->source_file << ":" << config->policy_file_line << ": policy file \""
                << config->policy_file << "\" cannot be read: " << std::strerror(errno) << "\n";
      return nullptr;
    }
    auto loaded = tg::policy::load_policy_file(config->policy_file);
    if (policy) *policy = loaded;
    return config;
  } catch (const tg::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
  } catch (const tg::policy::PolicyError& e) {
    std::cerr << e.what() << "\n";
  }
  return nullptr;
}

int run_proxy(const Args& args) {
  auto it = args.options.find("config");
  if (it == args.options.end()) {
    std::cerr << kUsage;
    return 2;
  }
  std::shared_ptr<const tg::policy::Policy> policy;
  auto config = load_checked(it->second, &policy);
  if (!config) return 1;
  if (!tg::proxy::init_logging(config->log.level, config->log.format)) {
    std::cerr << "invalid log.level\n";
    return 1;
  }
  try {
    tg::proxy::Server server(config, policy);
    return server.run();
  } catch (const std::exception& e) {
    std::cerr << "tenantgate: cannot start: " << e.what() << "\n";
    return 1;
  }
}

int check(const Args& args) {
  auto it = args.options.find("config");
  auto dsn = args.options.find("dsn");
  if (it == args.options.end() && dsn == args.options.end()) {
    std::cerr << kUsage;
    return 2;
  }
  std::shared_ptr<const tg::policy::Policy> policy;
  std::shared_ptr<const tg::config::Config> config;
  if (it != args.options.end()) {
    config = load_checked(it->second, &policy);
    if (!config) return 1;
  }
  if (dsn != args.options.end()) {
    int status = tg::proxy::check_functions(dsn->second, policy.get(), std::cout, std::cerr);
    if (status == 2 || !config) return status;
    std::string error;
    auto tables = tg::ops::read_schema(dsn->second, &error);
    if (!tables) {
      std::cerr << error;
      return 2;
    }
    std::cout << "\n" << tables->size() << " tables and views\n";
    for (const auto& f : tg::ops::check_schema(*policy, *tables, config->identity.tenant_type,
                                               config->identity.user_type)) {
      const bool is_error = f.severity == tg::ops::SchemaFinding::Severity::kError;
      std::cout << (is_error ? "error: " : "note: ") << f.message << "\n";
      if (is_error) status = 1;
    }
    if (status == 0) std::cout << "ok: the policy fits the database\n";
    return status;
  }
  try {
    (void)tg::identity::load_token_authority(*config);
  } catch (const tg::identity::TokenSetupError& e) {
    std::cerr << config->source_file << ":" << config->identity.token->line << ": " << e.what()
              << "\n";
    return 1;
  }
  std::cout << "ok: " << config->source_file << " and " << config->policy_file << " ("
            << policy->tables.size() << " tables)\n";
  return 0;
}

int rewrite(const Args& args) {
  auto config_it = args.options.find("config");
  auto tenant_it = args.options.find("tenant");
  if (config_it == args.options.end() || tenant_it == args.options.end() ||
      args.positional.size() > 1) {
    std::cerr << kUsage;
    return 2;
  }
  std::shared_ptr<const tg::policy::Policy> policy;
  auto config = load_checked(config_it->second, &policy);
  if (!config) return 1;

  std::string sql;
  if (args.positional.empty()) {
    sql.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    sql = args.positional.front();
  }

  if (auto p = args.options.find("principal"); p != args.options.end()) {
    const auto* principal = config->find_principal(p->second);
    if (!principal) {
      std::cout << "ERROR 28000: unknown principal \"" << p->second << "\"\n";
      return 1;
    }
    if (principal->bypass) {  // bypass principals are not rewritten
      std::cout << sql << "\n";
      return 0;
    }
  }

  tg::policy::Identity identity;
  auto tenant = tg::policy::canonical_value(config->identity.tenant_type, tenant_it->second);
  if (!tenant) {
    std::cout << "ERROR 28000: tenant value is not a valid "
              << tg::policy::value_type_name(config->identity.tenant_type) << "\n";
    return 1;
  }
  identity.tenant = {*tenant, config->identity.tenant_type};
  if (auto u = args.options.find("user"); u != args.options.end()) {
    auto user = tg::policy::canonical_value(config->identity.user_type, u->second);
    if (!user) {
      std::cout << "ERROR 28000: user value is not a valid "
                << tg::policy::value_type_name(config->identity.user_type) << "\n";
      return 1;
    }
    identity.user = tg::policy::TypedValue{*user, config->identity.user_type};
  }
  if (auto d = args.options.find("database"); d != args.options.end()) {
    identity.database = d->second;
  }

  tg::rewriter::Options options = tg::proxy::rewriter_options(*config);
  if (auto d = args.options.find("dialect"); d != args.options.end()) {
    if (d->second == "postgresql") {
      options.dialect = tg::rewriter::Dialect::kPostgreSQL;
    } else if (d->second == "cockroachdb") {
      options.dialect = tg::rewriter::Dialect::kCockroachDB;
    } else {
      std::cerr << "unknown --dialect " << d->second << " (expected postgresql | cockroachdb)\n";
      return 2;
    }
  }
  tg::rewriter::Rewriter rewriter(options);
  int status = 0;
  tg::rewriter::run_with_large_stack([&] {
    auto result = rewriter.rewrite(sql, identity, *policy);
    if (result.is_ok()) {
      std::cout << result.value().sql << "\n";
      for (const auto& check : result.value().param_checks) {
        std::cout << "-- $" << check.param_number << " must equal the caller's "
                  << (check.field == tg::rewriter::IdentityField::kTenant ? "tenant" : "user")
                  << " (" << check.table << "." << check.column << ")\n";
      }
    } else {
      std::cout << "ERROR " << result.refusal().sqlstate << ": " << result.refusal().message
                << "\n";
      status = 1;
    }
  });
  return status;
}

// `tenantgate policy init --dsn DSN`: a starting policy.toml from the schema.
int policy_command(const Args& args) {
  auto dsn = args.options.find("dsn");
  if (args.positional.size() != 1 || args.positional.front() != "init" ||
      dsn == args.options.end()) {
    std::cerr << kUsage;
    return 2;
  }
  tg::ops::InitOptions options;
  if (auto c = args.options.find("tenant-column"); c != args.options.end()) {
    options.tenant_columns = {c->second};
  }
  if (auto c = args.options.find("owner-column"); c != args.options.end()) {
    options.owner_columns = {c->second};
  }
  std::string error;
  auto tables = tg::ops::read_schema(dsn->second, &error);
  if (!tables) {
    std::cerr << error;
    return 2;
  }
  const std::string text = tg::ops::policy_init(*tables, options);
  if (auto o = args.options.find("output"); o != args.options.end()) {
    std::ofstream out(o->second, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) {
      std::cerr << "cannot write " << o->second << ": " << std::strerror(errno) << "\n";
      return 1;
    }
    std::cerr << "wrote " << o->second << " (" << tables->size() << " tables)\n";
    return 0;
  }
  std::cout << text;
  return 0;
}

// `tenantgate report AUDIT_FILE` ("-": stdin).
int report(const Args& args) {
  if (args.positional.size() != 1) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string& path = args.positional.front();
  if (path == "-") {
    (void)tg::ops::report(std::cin, std::cout);
    return 0;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot open " << path << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  (void)tg::ops::report(in, std::cout);
  return 0;
}

int hash_password(const Args& args) {
  int iterations = 4096;
  if (auto it = args.options.find("iterations"); it != args.options.end()) {
    iterations = std::atoi(it->second.c_str());
    if (iterations < 1) {
      std::cerr << "--iterations must be a positive integer\n";
      return 2;
    }
  }
  std::string password;
  std::getline(std::cin, password);
  if (password.empty()) {
    std::cerr << "empty password\n";
    return 1;
  }
  unsigned char salt[16];
  FILE* urandom = std::fopen("/dev/urandom", "rb");
  if (!urandom || std::fread(salt, 1, sizeof salt, urandom) != sizeof salt) {
    std::cerr << "cannot read /dev/urandom\n";
    return 1;
  }
  std::fclose(urandom);
  std::cout << tg::proxy::make_scram_verifier(
                   password, std::string_view(reinterpret_cast<char*>(salt), sizeof salt),
                   iterations)
            << "\n";
  return 0;
}

// Mints an HS token from the configured secret, for scripts, tests and apps
// that share the secret with the proxy.
int token(const Args& args) {
  auto config_it = args.options.find("config");
  auto tenant_it = args.options.find("tenant");
  if (config_it == args.options.end() || tenant_it == args.options.end() ||
      !args.positional.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  std::shared_ptr<const tg::config::Config> config;
  try {
    config = std::make_shared<tg::config::Config>(tg::config::load_config_file(config_it->second));
  } catch (const tg::config::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  const auto& settings = config->identity.token;
  if (!settings || settings->secret_env.empty()) {
    std::cerr << "tenantgate token: " << config->source_file
              << " has no [identity.token] secret_env (only HS tokens can be minted here)\n";
    return 1;
  }
  auto alg = tg::identity::Algorithm::kHS256;
  if (auto a = args.options.find("alg"); a != args.options.end()) {
    auto parsed = tg::identity::parse_algorithm(a->second);
    if (!parsed || !tg::identity::key_allows(tg::identity::KeyKind::kHmac, *parsed)) {
      std::cerr << "--alg must be HS256, HS384 or HS512\n";
      return 2;
    }
    alg = *parsed;
  }
  int64_t ttl = 3600;
  if (auto t = args.options.find("ttl"); t != args.options.end()) {
    char* end = nullptr;
    ttl = std::strtoll(t->second.c_str(), &end, 10);
    if (t->second.empty() || *end != '\0' || ttl < 1) {
      std::cerr << "--ttl must be a positive number of seconds\n";
      return 2;
    }
  }
  if (settings->max_lifetime_s > 0 && ttl > settings->max_lifetime_s) {
    std::cerr << "--ttl " << ttl << " is longer than max_lifetime_s " << settings->max_lifetime_s
              << ": the proxy would refuse the token\n";
    return 2;
  }
  if (!tg::policy::canonical_value(config->identity.tenant_type, tenant_it->second)) {
    std::cerr << "--tenant is not a valid "
              << tg::policy::value_type_name(config->identity.tenant_type)
              << " (identity.tenant_type)\n";
    return 2;
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  nlohmann::json claims = nlohmann::json::object();
  for (const std::string& c : args.claims) {
    const auto eq = c.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "--claim must be NAME=VALUE\n";
      return 2;
    }
    const std::string name = c.substr(0, eq);
    if (name == "exp" || name == "nbf" || name == "iat" || name == "iss" || name == "aud" ||
        name == settings->tenant_claim || name == settings->user_claim) {
      std::cerr << "--claim " << name << " is set by tenantgate token itself\n";
      return 2;
    }
    claims[name] = c.substr(eq + 1);
  }
  claims[settings->tenant_claim] = tenant_it->second;
  if (auto u = args.options.find("user"); u != args.options.end()) {
    if (!tg::policy::canonical_value(config->identity.user_type, u->second)) {
      std::cerr << "--user is not a valid "
                << tg::policy::value_type_name(config->identity.user_type)
                << " (identity.user_type)\n";
      return 2;
    }
    claims[settings->user_claim] = u->second;
  }
  claims["iat"] = now;
  claims["exp"] = now + ttl;
  if (!settings->issuer.empty()) claims["iss"] = settings->issuer;
  if (!settings->audience.empty()) claims["aud"] = settings->audience;
  std::string secret;
  try {
    secret = tg::identity::read_token_secret(*settings);
  } catch (const tg::identity::TokenSetupError& e) {
    std::cerr << "tenantgate token: " << e.what() << "\n";
    return 1;
  }
  if (secret.size() < tg::identity::kMinSecretBytes) {
    std::cerr << "tenantgate token: the secret in " << settings->secret_env << " is shorter than "
              << tg::identity::kMinSecretBytes << " bytes\n";
    return 1;
  }
  auto minted = tg::identity::mint_hs_token(alg, secret, claims);
  if (!minted) {
    std::cerr << "tenantgate token: cannot sign\n";
    return 1;
  }
  std::cout << *minted << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv);
  if (!args) {
    std::cerr << kUsage;
    return 2;
  }
  if (args->options.contains("--version")) {
    std::cout << "tenantgate " << TENANTGATE_VERSION << "\n";
    return 0;
  }
  if (args->options.contains("--help") || args->options.contains("-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args->command == "run") return run_proxy(*args);
  if (args->command == "check") return check(*args);
  if (args->command == "rewrite") return rewrite(*args);
  if (args->command == "hash-password") return hash_password(*args);
  if (args->command == "token") return token(*args);
  if (args->command == "policy") return policy_command(*args);
  if (args->command == "report") return report(*args);
  std::cerr << "unknown command \"" << args->command << "\"\n" << kUsage;
  return 2;
}
