// Strict JSON objects through nlohmann::json's callback parser: the callback
// only records problems (duplicates, depth), the verdict is taken after the
// parse, so no exception is thrown on any input.

#include "identity/jose_json.h"

#include <set>
#include <vector>

namespace tenantgate::identity {

std::variant<nlohmann::json, JsonError> parse_json_object(std::string_view text) {
  using nlohmann::json;
  std::vector<std::set<std::string>> keys;  // member names per open object
  std::string problem;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (!problem.empty()) return true;
    if (depth > kMaxJsonDepth) {
      problem = "nested deeper than " + std::to_string(kMaxJsonDepth);
      return true;
    }
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get_ref<const std::string&>()).second) {
          problem = "duplicate member \"" + parsed.get_ref<const std::string&>() + "\"";
        }
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false,
                           /*ignore_comments=*/false);
  if (value.is_discarded()) return JsonError{"not valid JSON"};
  if (!problem.empty()) return JsonError{problem};
  if (!value.is_object()) return JsonError{"not a JSON object"};
  return value;
}

}  // namespace tenantgate::identity
