// Helpers shared by the rewriter's unit tests.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter::testing {

inline std::shared_ptr<const policy::Policy> golden_policy() {
  static const auto policy =
      policy::load_policy_file(std::string(TG_REWRITER_GOLDEN_DIR) + "/policy.toml");
  return policy;
}

// Two policies scoping public.users by tenant, by tenant_id and by org.
inline std::shared_ptr<const policy::Policy> users_policy(bool org_column) {
  std::string text = "default_action = \"deny\"\n[tables.\"public.users\"]\nscope = \"tenant\"\n";
  if (org_column) text += "tenant_column = \"org\"\n";
  return policy::parse_policy(text, org_column ? "b.toml" : "a.toml");
}

inline policy::Identity identity(const std::string& tenant,
                                 std::optional<std::string> user = std::string("42"),
                                 policy::ValueType tenant_type = policy::ValueType::kText) {
  policy::Identity id;
  id.tenant = {*policy::canonical_value(tenant_type, tenant), tenant_type};
  if (user) id.user = policy::TypedValue{*user, policy::ValueType::kInt};
  id.database = "appdb";
  return id;
}

// Rewriter::rewrite on a thread with kRequiredStackBytes of stack.
inline RewriteResult rewrite(const std::string& sql, const policy::Identity& id,
                             const policy::Policy& policy, Options options = Options{}) {
  const Rewriter rewriter(options);
  RewriteResult result = RewriteResult::refused("", "not run");
  run_with_large_stack([&] { result = rewriter.rewrite(sql, id, policy); });
  return result;
}

}  // namespace tenantgate::rewriter::testing
