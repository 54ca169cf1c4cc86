#include "proxy/statement_tracker.h"

#include <fmt/format.h>

#include <utility>

namespace tenantgate::proxy {

using Kind = rewriter::PreparedName::Kind;

std::optional<std::string> StatementTracker::refuse_execute(const std::string& name,
                                                            bool known) const {
  if (!known) {
    return fmt::format(
        "permission denied: prepared statement \"{}\" was not prepared in this session through "
        "tenantgate (or was deallocated since), so EXECUTE of it is not allowed",
        name);
  }
  const Checks checks = checks_for(name);
  if (!checks.empty()) {
    const auto& c = checks.front();
    return fmt::format(
        "permission denied: prepared statement \"{}\" sets column {} of table {} from parameter "
        "${}, which is checked at Bind; run it with Bind, not with SQL EXECUTE",
        name, c.column, c.table, c.param_number);
  }
  return std::nullopt;
}

std::optional<std::string> StatementTracker::refuse_name(std::string_view name) {
  if (name.size() <= kMaxStatementNameBytes) return std::nullopt;
  return fmt::format(
      "permission denied: statement names longer than {} bytes are not supported (PostgreSQL "
      "would truncate the name and use another statement)",
      kMaxStatementNameBytes);
}

std::optional<std::string> StatementTracker::refuse_query(const Names& names) const {
  for (const auto& use : names) {
    if (auto why = refuse_name(use.name)) return why;
  }
  // The names this query string prepares or deallocates before each EXECUTE.
  std::unordered_set<std::string> added;
  std::unordered_set<std::string> removed;
  bool all_removed = false;
  for (const auto& use : names) {
    switch (use.kind) {
      case Kind::kPrepare:
        added.insert(use.name);
        removed.erase(use.name);
        break;
      case Kind::kDeallocate:
        removed.insert(use.name);
        added.erase(use.name);
        break;
      case Kind::kDeallocateAll:
        all_removed = true;
        added.clear();
        removed.clear();
        break;
      default:  // cursors and transaction ends are not prepared statements
        break;
      case Kind::kExecute: {
        const bool known =
            added.contains(use.name) ||
            (!all_removed && !removed.contains(use.name) && known_.contains(use.name));
        if (auto why = refuse_execute(use.name, known)) return why;
        break;
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> StatementTracker::refuse_parse(std::string_view statement,
                                                          const Checks& checks,
                                                          const Names& names) const {
  if (auto why = refuse_name(statement)) return why;
  for (const auto& use : names) {
    if (auto why = refuse_name(use.name)) return why;
  }
  const std::string name(statement);
  if (!checks.empty() && executed_by_parse_.contains(name)) {
    return fmt::format(
        "permission denied: a statement whose parameters are checked at Bind cannot be named "
        "\"{}\": a statement prepared in this session runs that name with SQL EXECUTE",
        name);
  }
  for (const auto& use : names) {
    if (use.kind != Kind::kExecute) continue;
    if (executed_by_parse_.size() >= kMaxKnownNames && !executed_by_parse_.contains(use.name)) {
      return std::string("permission denied: too many statement names run with SQL EXECUTE");
    }
    if (auto why = refuse_execute(use.name, known_.contains(use.name))) return why;
  }
  return std::nullopt;
}

StatementTracker::Checks StatementTracker::checks_for(std::string_view statement) const {
  using Op = PendingOp::Kind;
  // Which statement the backend will bind under the name is certain only
  // within the Bind's own batch: there, the newest Parse (or Close) of the
  // name decides, because if it failed the backend skips this Bind as well.
  // Before an unanswered Sync it is not known whether a Parse succeeded (a
  // Parse of an existing name fails), so every candidate's checks apply:
  // checking too much can only refuse, never let a value through.
  Checks checks;
  bool crossed_sync = false;
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    if (it->kind == Op::kSync) {
      crossed_sync = true;
      continue;
    }
    if (it->name != statement) continue;
    if (it->kind == Op::kParse) {
      checks.insert(checks.end(), it->checks.begin(), it->checks.end());
      if (!crossed_sync) return checks;
    } else if (it->kind == Op::kCloseStatement && !crossed_sync) {
      return checks;  // closed in this batch: the backend refuses the Bind
    }
  }
  if (auto found = checks_.find(std::string(statement)); found != checks_.end()) {
    checks.insert(checks.end(), found->second.begin(), found->second.end());
  }
  return checks;
}

void StatementTracker::apply(const Names& names, bool from_parse) {
  for (const auto& use : names) {
    switch (use.kind) {
      case Kind::kPrepare:
        // Past the bound a name stays unknown: its EXECUTE is refused.
        if (known_.size() < kMaxKnownNames) known_.insert(use.name);
        break;
      case Kind::kDeallocate:
        known_.erase(use.name);
        break;
      case Kind::kDeallocateAll:
        known_.clear();
        break;
      case Kind::kExecute:
        if (from_parse) executed_by_parse_.insert(use.name);
        break;
      default:  // cursors and transaction ends are not prepared statements
        break;
    }
  }
}

bool StatementTracker::push(PendingOp op) {
  if (pending_.size() >= kMaxPendingOps || op.name.size() > kMaxStatementName) return false;
  pending_.push_back(std::move(op));
  return true;
}

bool StatementTracker::query_sent(const Names& names) {
  apply(names, /*from_parse=*/false);
  return push({PendingOp::Kind::kSync, {}, {}});
}

bool StatementTracker::parse_sent(std::string_view statement, Checks checks, const Names& names) {
  if (statement.size() > kMaxStatementName) return false;
  apply(names, /*from_parse=*/true);
  // The unnamed statement cannot be EXECUTEd (EXECUTE needs a name).
  if (!statement.empty() && known_.size() < kMaxKnownNames) known_.emplace(statement);
  return push({PendingOp::Kind::kParse, std::string(statement), std::move(checks)});
}

bool StatementTracker::close_sent(char kind, std::string_view name) {
  if (kind == 'S') known_.erase(std::string(name));
  return push({kind == 'S' ? PendingOp::Kind::kCloseStatement : PendingOp::Kind::kClosePortal,
               std::string(name),
               {}});
}

bool StatementTracker::sync_sent() { return push({PendingOp::Kind::kSync, {}, {}}); }

std::optional<uint64_t> StatementTracker::refusal_sent(rewriter::Refusal refusal) {
  const uint64_t seq = ++refusal_seq_;
  if (!push({PendingOp::Kind::kRefusal, {}, {}, seq})) return std::nullopt;
  refusals_.emplace(seq, std::move(refusal));
  return seq;
}

uint64_t StatementTracker::copy_fail_sent(rewriter::Refusal refusal) {
  const uint64_t seq = ++refusal_seq_;
  refusals_.emplace(seq, std::move(refusal));
  return seq;
}

std::optional<rewriter::Refusal> StatementTracker::take_refusal(uint64_t seq) {
  auto found = refusals_.find(seq);
  if (found == refusals_.end()) return std::nullopt;
  rewriter::Refusal refusal = std::move(found->second);
  refusals_.erase(found);
  return refusal;
}

bool StatementTracker::on_backend_ack(char type) {
  using Op = PendingOp::Kind;
  if (type == 'Z') {
    // Everything up to this Sync that was not confirmed was skipped; the
    // errors of substituted messages before it have come back (or never will).
    while (!pending_.empty()) {
      PendingOp op = std::move(pending_.front());
      pending_.pop_front();
      if (op.kind == Op::kRefusal) refusals_.erase(op.seq);
      if (op.kind == Op::kSync) return true;
    }
    return true;
  }
  // A substituted message fails: it is never what ParseComplete or
  // CloseComplete answers.
  while (!pending_.empty() && pending_.front().kind == Op::kRefusal) {
    refusals_.erase(pending_.front().seq);
    pending_.pop_front();
  }
  const bool parse = type == '1';
  if (pending_.empty() || (parse ? pending_.front().kind != Op::kParse
                                 : (pending_.front().kind != Op::kCloseStatement &&
                                    pending_.front().kind != Op::kClosePortal))) {
    return false;
  }
  PendingOp op = std::move(pending_.front());
  pending_.pop_front();
  if (op.kind == Op::kParse) {
    if (op.checks.empty()) {
      checks_.erase(op.name);
    } else {
      checks_[op.name] = std::move(op.checks);
    }
  } else if (op.kind == Op::kCloseStatement) {
    checks_.erase(op.name);
  }
  return true;
}

}  // namespace tenantgate::proxy
