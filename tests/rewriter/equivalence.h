// Whether two rewrite results mean the same: the same refusal, or the same
// checks and SQL that parses into the same trees (ignoring locations). A
// shape-cache hit (rewrite_cache.h) substitutes constants as the client wrote
// them where a full rewrite deparses them, and a statement whose only changes
// are wraps keeps the client's own text around them, so the texts may differ
// in formatting only.
#pragma once

#include <string>

#include "pg_query.pb.h"
#include "rewriter/pg_tree.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter::testing {

// Whether two query strings parse into the same statements (ignoring
// locations). Needs kRequiredStackBytes of stack. Empty when they do,
// otherwise what differs.
inline std::string sql_difference(const std::string& x, const std::string& y) {
  if (x == y) return "";
  pg_query::ParseResult tx;
  pg_query::ParseResult ty;
  if (parse_sql(x, &tx) || parse_sql(y, &ty)) return "does not parse: " + x + " | " + y;
  if (tx.stmts_size() != ty.stmts_size()) return "statement counts differ";
  for (int i = 0; i < tx.stmts_size(); ++i) {
    if (!same_tree(tx.stmts(i).stmt(), ty.stmts(i).stmt())) {
      return "trees differ:\n    " + x + "\n    " + y;
    }
  }
  return "";
}

// Needs kRequiredStackBytes of stack (it parses). Empty when equivalent,
// otherwise what differs.
inline std::string difference(const RewriteResult& a, const RewriteResult& b) {
  if (a.is_ok() != b.is_ok()) {
    auto side = [](const RewriteResult& r) {
      return r.is_ok() ? "ok: " + r.value().sql
                       : "refused " + r.refusal().sqlstate + " " + r.refusal().message;
    };
    return "one refused: " + side(a) + " | " + side(b);
  }
  if (!a.is_ok()) {
    if (a.refusal().sqlstate != b.refusal().sqlstate ||
        a.refusal().message != b.refusal().message) {
      return "different refusals: " + a.refusal().message + " | " + b.refusal().message;
    }
    return "";
  }
  const Rewritten& x = a.value();
  const Rewritten& y = b.value();
  if (x.changed != y.changed) return "changed differs: " + x.sql + " | " + y.sql;
  if (x.param_checks.size() != y.param_checks.size()) return "param checks differ";
  if (x.copy_in.has_value() != y.copy_in.has_value()) return "copy_in differs";
  return sql_difference(x.sql, y.sql);
}

}  // namespace tenantgate::rewriter::testing
