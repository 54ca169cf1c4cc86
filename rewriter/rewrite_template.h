// A rewrite without identity values: the rewritten text with slots where the
// caller's tenant/user literals go, plus the checks that depend on them. Built
// once per (policy, identity shape, statement) and instantiated per call, so
// that a cached rewrite can never carry one session's identity into another's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewriter.h"
#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {

struct RewriteTemplate {
  struct Slot {
    std::size_t offset = 0;  // into text
    IdentityField field = IdentityField::kTenant;
  };
  std::optional<Refusal> refusal;
  bool changed = false;
  std::string text;  // empty when !changed: the input is forwarded as it is
  std::vector<Slot> slots;
  std::vector<ParamCheck> param_checks;
  std::vector<ConstCheck> const_checks;
  std::optional<CopyIn> copy_in;

  [[nodiscard]] std::size_t memory_bytes() const;
};

// Parses, walks, deparses and verifies. Needs kRequiredStackBytes of stack.
[[nodiscard]] RewriteTemplate build_template(std::string_view sql, const IdentityShape& shape,
                                             const policy::Policy& policy, const Options& options);

// Substitutes the caller's identity. `sql` is the statement the template was
// built from. Cheap: no parsing, any stack.
[[nodiscard]] RewriteResult instantiate(const RewriteTemplate& tmpl, std::string_view sql,
                                        const policy::Identity& identity);

}  // namespace tenantgate::rewriter
