// Strict parsing of the JSON objects inside a token (JOSE header, claims set)
// and a JWKS file.
//
// RFC 7515 section 4 and RFC 7519 section 4 let a parser reject duplicate
// member names; tenantgate does, at every depth, because two parsers that pick
// different duplicates see different claims in the same signed bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

namespace tenantgate::identity {

// Deepest nesting accepted; claims that matter are at depth 1.
inline constexpr int kMaxJsonDepth = 16;

struct JsonError {
  std::string reason;  // e.g. "duplicate member \"tenant\""
};

// Parses `text` as one JSON object (strict RFC 8259: no comments, valid UTF-8,
// nothing after the value). Exceptions are not used.
[[nodiscard]] std::variant<nlohmann::json, JsonError> parse_json_object(std::string_view text);

}  // namespace tenantgate::identity
