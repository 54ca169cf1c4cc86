// Building the token authority from the configuration: the only place that
// reads the key files and the secret's environment variable.

#include "identity/token_authority.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tenantgate::identity {

namespace {

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TokenSetupError(std::string(what) + " \"" + path + "\" cannot be read");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

TokenResult TokenAuthority::verify(std::string_view token, int64_t now_s) const {
  // Over-size tokens are refused before they are hashed.
  if (token.size() > kMaxTokenBytes) return verify_token(token, keys_, settings_, now_s);
  std::string digest = token_digest(token);
  if (auto hit = cache_.find(digest, now_s, settings_.leeway_s)) return hit;
  TokenResult result = verify_token(token, keys_, settings_, now_s);
  if (result.ok()) cache_.insert(std::move(digest), result.token(), now_s, settings_.leeway_s);
  return result;
}

TokenSettings token_settings(const config::Identity& identity) {
  TokenSettings s;
  s.tenant_type = identity.tenant_type;
  s.user_type = identity.user_type;
  if (const auto& t = identity.token) {
    s.issuer = t->issuer;
    s.audience = t->audience;
    s.leeway_s = t->leeway_s;
    s.max_lifetime_s = t->max_lifetime_s;
    s.tenant_claim = t->tenant_claim;
    s.user_claim = t->user_claim;
  }
  return s;
}

std::string read_token_secret(const config::TokenConfig& token) {
  const char* secret = std::getenv(token.secret_env.c_str());
  if (!secret || !*secret) {
    throw TokenSetupError("[identity.token] secret_env: environment variable " + token.secret_env +
                          " is not set");
  }
  return secret;
}

std::unique_ptr<const TokenAuthority> load_token_authority(const config::Config& config) {
  const auto& token = config.identity.token;
  if (!token) return nullptr;
  std::variant<KeySet, KeyError> keys = KeyError{"no key source"};
  std::string where;
  if (!token->secret_env.empty()) {
    where = "secret_env " + token->secret_env;
    keys = KeySet::from_secret(read_token_secret(*token));
  } else if (!token->public_key_file.empty()) {
    where = "public_key_file " + token->public_key_file;
    keys = KeySet::from_pem(read_file(token->public_key_file, "public_key_file"));
  } else {
    where = "jwks_file " + token->jwks_file;
    keys = KeySet::from_jwks(read_file(token->jwks_file, "jwks_file"));
  }
  if (auto* e = std::get_if<KeyError>(&keys)) {
    throw TokenSetupError("[identity.token] " + where + ": " + e->reason);
  }
  return std::make_unique<const TokenAuthority>(std::move(std::get<KeySet>(keys)),
                                                token_settings(config.identity));
}

}  // namespace tenantgate::identity
