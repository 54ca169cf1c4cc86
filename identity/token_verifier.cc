// The token checks. Each check returns a TokenRefusal naming itself; the
// header is read before the signature only as far as choosing the key.

#include "identity/token_verifier.h"

#include <cmath>

#include "identity/base64url.h"
#include "identity/jose_json.h"
#include "identity/jws_signature.h"

namespace tenantgate::identity {

namespace {

using nlohmann::json;

TokenRefusal refuse(std::string check, std::string detail) {
  return TokenRefusal{std::move(check), std::move(detail)};
}

std::string_view json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_float:
      return "a fractional number";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unexpected value";
  }
}

// Dates past this (year 9999) are refused, so that date arithmetic cannot
// overflow.
constexpr int64_t kMaxNumericDate = 253402300799;

// A NumericDate (RFC 7519 section 2): seconds, possibly fractional; the
// fraction is dropped. nullopt when not a number in 0..kMaxNumericDate.
std::optional<int64_t> numeric_date(const json& v) {
  double d = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxNumericDate)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0 || i > kMaxNumericDate) return std::nullopt;
    return i;
  }
  if (!v.is_number_float()) return std::nullopt;
  d = v.get<double>();
  if (!std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxNumericDate)) return std::nullopt;
  return static_cast<int64_t>(std::floor(d));
}

// The text of a scalar claim: strings verbatim, numbers and booleans in their
// JSON spelling; nullopt for null, arrays and objects.
std::optional<std::string> scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return std::nullopt;
}

// The identity value of a claim: a string or an integer, valid for `type`.
std::variant<policy::TypedValue, TokenRefusal> identity_claim(const json& v, std::string_view check,
                                                              std::string_view name,
                                                              policy::ValueType type) {
  std::string raw;
  if (v.is_string()) {
    raw = v.get<std::string>();
  } else if (v.is_number_integer()) {
    raw = v.dump();
  } else {
    return refuse(std::string(check), "claim \"" + std::string(name) + "\" is " +
                                          std::string(json_kind(v)) +
                                          ", expected a string or an integer");
  }
  auto canonical = policy::canonical_value(type, raw);
  if (!canonical) {
    return refuse(std::string(check), "claim \"" + std::string(name) + "\" is not a valid " +
                                          std::string(policy::value_type_name(type)));
  }
  return policy::TypedValue{std::move(*canonical), type};
}

bool is_registered(std::string_view name) {
  return name == "exp" || name == "nbf" || name == "iat" || name == "iss" || name == "aud" ||
         name == "jti";
}

}  // namespace

TokenResult verify_token(std::string_view token, const KeySet& keys, const TokenSettings& settings,
                         int64_t now_s) {
  if (token.empty()) return refuse("format", "the token is empty");
  if (token.size() > kMaxTokenBytes) {
    return refuse("size", "the token has " + std::to_string(token.size()) + " bytes; at most " +
                              std::to_string(kMaxTokenBytes) + " are accepted");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return refuse("format", "not a compact JWS (three base64url parts separated by '.')");
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature_b64 = token.substr(dot2 + 1);

  const auto header_text = base64url_decode(header_b64);
  if (!header_text || header_b64.empty()) {
    return refuse("base64url", "the header is not base64url");
  }
  const auto payload_text = base64url_decode(payload_b64);
  if (!payload_text || payload_b64.empty()) {
    return refuse("base64url", "the payload is not base64url");
  }
  const auto signature = base64url_decode(signature_b64);
  if (!signature) return refuse("base64url", "the signature is not base64url");

  auto header_parsed = parse_json_object(*header_text);
  if (auto* e = std::get_if<JsonError>(&header_parsed)) return refuse("header", e->reason);
  const json& header = std::get<json>(header_parsed);
  if (header.contains("crit")) {
    return refuse("header", "\"crit\" names extensions tenantgate does not implement");
  }
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) {
    return refuse("alg", "the header has no \"alg\"");
  }
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  const auto alg = parse_algorithm(alg_name);
  if (!alg) {
    return refuse("alg", "algorithm \"" + alg_name +
                             "\" is not accepted (HS256, HS384, HS512, ES256, RS256)");
  }
  std::optional<std::string> kid;
  if (auto kid_it = header.find("kid"); kid_it != header.end()) {
    if (!kid_it->is_string()) return refuse("kid", "\"kid\" is not a string");
    kid = kid_it->get<std::string>();
  }
  const VerificationKey* key = keys.select(kid);
  if (!key) {
    return refuse("kid", kid ? "no key has kid \"" + *kid + "\""
                             : std::string("the header names no \"kid\" and the key set has ") +
                                   std::to_string(keys.size()) + " keys");
  }
  if (!key_allows(key->kind, *alg)) {
    return refuse("alg", "the token says " + alg_name + " but the key is " +
                             std::string(key_kind_name(key->kind)));
  }
  if (!verify_signature(*key, *alg, token.substr(0, dot2), *signature)) {
    return refuse("signature", "the signature does not match the key");
  }

  auto payload_parsed = parse_json_object(*payload_text);
  if (auto* e = std::get_if<JsonError>(&payload_parsed)) return refuse("payload", e->reason);
  const json& claims = std::get<json>(payload_parsed);

  const int64_t leeway = settings.leeway_s;
  auto exp_it = claims.find("exp");
  if (exp_it == claims.end()) return refuse("exp", "the token has no \"exp\" claim");
  const auto exp = numeric_date(*exp_it);
  if (!exp) return refuse("exp", "\"exp\" is not a NumericDate");
  if (now_s >= *exp + leeway) {
    return refuse("exp", "the token expired " + std::to_string(now_s - *exp) + " s ago");
  }
  if (auto it = claims.find("nbf"); it != claims.end()) {
    const auto nbf = numeric_date(*it);
    if (!nbf) return refuse("nbf", "\"nbf\" is not a NumericDate");
    if (now_s + leeway < *nbf) {
      return refuse("nbf",
                    "the token is not valid for another " + std::to_string(*nbf - now_s) + " s");
    }
  }
  std::optional<int64_t> iat;
  if (auto it = claims.find("iat"); it != claims.end()) {
    iat = numeric_date(*it);
    if (!iat) return refuse("iat", "\"iat\" is not a NumericDate");
    if (now_s + leeway < *iat) return refuse("iat", "the token was issued in the future");
  }
  if (settings.max_lifetime_s > 0) {
    const int64_t from = iat.value_or(now_s);
    if (*exp - from > settings.max_lifetime_s) {
      return refuse("lifetime", "the token is valid for " + std::to_string(*exp - from) +
                                    " s; at most " + std::to_string(settings.max_lifetime_s) +
                                    " s are accepted");
    }
  }
  if (!settings.issuer.empty()) {
    auto it = claims.find("iss");
    if (it == claims.end()) return refuse("iss", "the token has no \"iss\" claim");
    if (!it->is_string() || it->get_ref<const std::string&>() != settings.issuer) {
      return refuse("iss", "the token's issuer is not the configured one");
    }
  }
  if (!settings.audience.empty()) {
    auto it = claims.find("aud");
    if (it == claims.end()) return refuse("aud", "the token has no \"aud\" claim");
    bool found = false;
    if (it->is_string()) {
      found = it->get_ref<const std::string&>() == settings.audience;
    } else if (it->is_array()) {
      for (const json& a : *it) {
        if (a.is_string() && a.get_ref<const std::string&>() == settings.audience) found = true;
      }
    }
    if (!found) return refuse("aud", "the token is not meant for the configured audience");
  }

  auto verified = std::make_shared<VerifiedToken>();
  verified->expires_at = *exp;
  auto tenant_it = claims.find(settings.tenant_claim);
  if (tenant_it == claims.end()) {
    return refuse("tenant", "the token has no \"" + settings.tenant_claim + "\" claim");
  }
  auto tenant = identity_claim(*tenant_it, "tenant", settings.tenant_claim, settings.tenant_type);
  if (auto* r = std::get_if<TokenRefusal>(&tenant)) return std::move(*r);
  verified->tenant = std::move(std::get<policy::TypedValue>(tenant));
  if (auto it = claims.find(settings.user_claim); it != claims.end()) {
    auto user = identity_claim(*it, "user", settings.user_claim, settings.user_type);
    if (auto* r = std::get_if<TokenRefusal>(&user)) return std::move(*r);
    verified->user = std::move(std::get<policy::TypedValue>(user));
  }
  for (const auto& [name, value] : claims.items()) {
    if (is_registered(name)) continue;
    auto text = scalar_text(value);
    if (!text) continue;
    if (text->find('\0') != std::string::npos) {
      return refuse("payload", "claim \"" + name + "\" holds a NUL character");
    }
    verified->claims.emplace(name, std::move(*text));
  }
  return std::shared_ptr<const VerifiedToken>(std::move(verified));
}

}  // namespace tenantgate::identity
