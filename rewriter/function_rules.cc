#include "rewriter/function_rules.h"

namespace tenantgate::rewriter {

namespace {

std::string display(std::string_view schema, std::string_view name) {
  if (schema.empty()) return policy::quote_identifier(name);
  return policy::quote_identifier(schema) + "." + policy::quote_identifier(name);
}

std::string display(const policy::QualifiedName& name) { return policy::to_string(name); }

}  // namespace

FunctionRules::FunctionRules(const policy::Policy& policy, const policy::AppCatalog* catalog)
    : policy_(policy), catalog_(catalog) {}

std::optional<std::string> FunctionRules::unnamed_of(
    const std::set<policy::QualifiedName>& functions) const {
  for (const policy::QualifiedName& f : functions) {
    if (!policy_.app_function_named(f.schema, f.name)) return display(f);
  }
  return std::nullopt;
}

std::optional<std::string> FunctionRules::unnamed_app_function(std::string_view schema,
                                                               std::string_view name) const {
  if (catalog_ == nullptr) return std::nullopt;
  auto unnamed_in = [&](std::string_view s) -> std::optional<std::string> {
    policy::QualifiedName q{std::string(s), std::string(name)};
    if (catalog_->functions.contains(q) && !policy_.app_function_named(s, name)) return display(q);
    return std::nullopt;
  };
  if (!schema.empty()) return unnamed_in(schema);
  // An unqualified name may resolve to a function in any search_path schema
  // (namespace.c FuncnameGetCandidates collects them all; the best argument
  // match wins, pg_catalog's built-in included).
  for (const std::string& s : policy_.search_path) {
    if (auto found = unnamed_in(s)) return found;
  }
  return std::nullopt;
}

std::optional<std::string> FunctionRules::check_call(std::string_view schema,
                                                     std::string_view name) const {
  const policy::FunctionRule rule = policy_.function_rule(schema, name);
  const std::string shown = display(schema, name);
  if (rule == policy::FunctionRule::kDenied) return "permission denied for function " + shown;
  if (policy_.function_mode == policy::FunctionMode::kDenyList) return std::nullopt;
  if (rule == policy::FunctionRule::kNotListed) {
    // type(x) with a cast from x's type is that cast (parse_func.c
    // func_get_detail, FUNCDETAIL_COERCION): fine when the policy names
    // every app function that makes values of the type.
    if (catalog_ != nullptr && (schema.empty() || schema != "pg_catalog")) {
      auto it = catalog_->types.find(std::string(name));
      if (it != catalog_->types.end()) {
        if (auto app = unnamed_of(it->second)) {
          return "permission denied for type " + shown + ": making a value of it may run the " +
                 "app function " + *app + ", which the policy does not name";
        }
        return std::nullopt;
      }
    }
    return "permission denied for function " + shown +
           ": it is neither an allowed built-in nor an app function the policy names";
  }
  if (auto app = unnamed_app_function(schema, name)) {
    return "permission denied for function " + shown + ": it may resolve to the app function " +
           *app + ", which the policy does not name";
  }
  if (schema.empty() || (schema != "pg_catalog" && schema != "information_schema")) {
    if (auto type = check_type(schema, name)) return type;
  }
  return std::nullopt;
}

std::optional<std::string> FunctionRules::check_attribute(std::string_view name) const {
  const policy::FunctionRule rule = policy_.function_rule("", name);
  const std::string shown = display("", name);
  if (rule == policy::FunctionRule::kDenied) {
    return "permission denied for function " + shown + " (x." + shown + " and (x)." + shown +
           " call " + shown + "(x))";
  }
  if (policy_.function_mode == policy::FunctionMode::kDenyList) return std::nullopt;
  if (auto app = unnamed_app_function("", name)) {
    return "permission denied for function " + *app + " (x." + shown + " and (x)." + shown +
           " call " + shown + "(x)): the policy does not name it";
  }
  if (auto type = check_type("", name)) return type;
  return std::nullopt;
}

std::optional<std::string> FunctionRules::check_operator(std::string_view schema,
                                                         std::string_view op) const {
  if (policy_.function_mode == policy::FunctionMode::kDenyList || catalog_ == nullptr) {
    return std::nullopt;
  }
  if (schema == "pg_catalog") return std::nullopt;
  auto it = catalog_->operators.find(std::string(op));
  if (it == catalog_->operators.end()) return std::nullopt;
  if (auto app = unnamed_of(it->second)) {
    return "permission denied for operator " + std::string(op) + ": it may be implemented by the " +
           "app function " + *app + ", which the policy does not name";
  }
  return std::nullopt;
}

std::optional<std::string> FunctionRules::check_type(std::string_view schema,
                                                     std::string_view name) const {
  if (policy_.function_mode == policy::FunctionMode::kDenyList || catalog_ == nullptr) {
    return std::nullopt;
  }
  if (schema == "pg_catalog") return std::nullopt;
  auto it = catalog_->types.find(std::string(name));
  if (it == catalog_->types.end()) return std::nullopt;
  if (auto app = unnamed_of(it->second)) {
    return "permission denied for type " + display(schema, name) + ": making a value of it may " +
           "run the app function " + *app + ", which the policy does not name";
  }
  return std::nullopt;
}

std::optional<std::string> FunctionRules::check_tablesample(std::string_view schema,
                                                            std::string_view name) const {
  if ((schema.empty() || schema == "pg_catalog") && (name == "system" || name == "bernoulli")) {
    return std::nullopt;
  }
  if (policy_.function_denied(schema, name)) {
    return "permission denied for TABLESAMPLE method " + display(schema, name);
  }
  if (policy_.function_mode == policy::FunctionMode::kAllowList) {
    if (auto app = unnamed_app_function(schema, name)) {
      return "permission denied for TABLESAMPLE method " + *app + ": the policy does not name it";
    }
  }
  return std::nullopt;
}

}  // namespace tenantgate::rewriter
