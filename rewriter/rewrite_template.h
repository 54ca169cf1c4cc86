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
  // A place in `text` where the caller's identity literal goes or, in a
  // shape template (literal_scanner.h), the client's constant for $param+1.
  struct Slot {
    std::size_t offset = 0;  // into text
    IdentityField field = IdentityField::kTenant;
    int param = -1;  // >= 0: a lifted constant, `field` unused
    int claim = -1;  // >= 0: the caller's value of claims[claim] (text or NULL)
  };
  std::optional<Refusal> refusal;
  bool changed = false;
  std::string text;  // empty when !changed: the input is forwarded as it is
  std::vector<Slot> slots;
  std::vector<ParamCheck> param_checks;
  std::vector<ConstCheck> const_checks;
  // Shape templates: policy columns given one of the lifted constants ($k,
  // param_number = k). Checked like const_checks at instantiation, on the
  // value the parser reads from the client's constant (constant_value()).
  std::vector<ParamCheck> literal_checks;
  std::optional<CopyIn> copy_in;
  std::vector<PreparedName> prepared_names;
  // Names of the token claims row policies read (tenantgate.claim('name')).
  std::vector<std::string> claims;

  [[nodiscard]] std::size_t memory_bytes() const;
};

// Parses, walks, deparses and verifies. Needs kRequiredStackBytes of stack.
//
// `lifted` > 0 builds a shape template: `sql` is a StatementShape's text with
// $1..$lifted standing for constants, and every $k token of the rewritten
// text (found with SqlScanner, so never one inside a string or an
// identifier) becomes a slot. The rewritten text of a shape must be scanned;
// when the scanner gives up, or finds a $n that is not 1..lifted, the
// result is a refusal (the caller then uses the exact text).
[[nodiscard]] RewriteTemplate build_template(std::string_view sql, const IdentityShape& shape,
                                             const policy::Policy& policy, const Options& options,
                                             std::size_t lifted = 0);

// Substitutes the caller's identity, and for a shape template the client's
// constants (`literals[k-1]` for $k, verbatim). `sql` is the statement the
// client sent: what is forwarded when the template did not change it. Cheap:
// no parsing, any stack.
[[nodiscard]] RewriteResult instantiate(const RewriteTemplate& tmpl, std::string_view sql,
                                        const policy::Identity& identity,
                                        const std::vector<std::string_view>& literals = {});

}  // namespace tenantgate::rewriter
