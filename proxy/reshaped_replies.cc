#include "proxy/reshaped_replies.h"

#include <utility>

#include "proxy/message_io.h"
#include "proxy/messages.h"

namespace tenantgate::proxy {

std::optional<std::string> reshaped_command_complete(std::string_view body,
                                                     const rewriter::ReshapedWrite& write) {
  constexpr std::string_view kSelect = "SELECT ";
  if (body.empty() || body.back() != '\0') return std::nullopt;
  body.remove_suffix(1);
  if (!body.starts_with(kSelect)) return std::nullopt;
  const std::string_view rows = body.substr(kSelect.size());
  if (rows.empty() || rows.size() > 20) return std::nullopt;
  for (char c : rows) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  std::string tag =
      write.command == rewriter::ReshapedWrite::Command::kInsert ? "INSERT 0 " : "UPDATE ";
  tag += rows;
  MessageWriter complete('C');
  complete.cstr(tag);
  return std::move(complete).finish();
}

std::optional<std::string> policy_violation_error(std::string_view body) {
  auto fields = parse_error_fields(body);
  if (!fields || fields->sqlstate != "22P02") return std::nullopt;
  const std::string_view marker = rewriter::kPolicyViolationMarker;
  const std::string& text = fields->message;
  const std::size_t open = text.find(marker);
  if (open == std::string::npos) return std::nullopt;
  const std::size_t begin = open + marker.size();
  const std::size_t close = text.find(marker, begin);
  if (close == std::string::npos || close == begin) return std::nullopt;
  return error_response("ERROR", "42501", std::string_view(text).substr(begin, close - begin));
}

bool ReshapedReplies::push(Owed op) {
  if (owed_.size() >= kMaxOwed) return false;
  owed_.push_back(std::move(op));
  return true;
}

bool ReshapedReplies::query_sent(std::vector<Shape> statements) {
  Owed op;
  op.kind = Owed::Kind::kQuery;
  op.statements = std::move(statements);
  return push(std::move(op));
}

bool ReshapedReplies::sync_sent() { return push(Owed{}); }

bool ReshapedReplies::parse_sent(std::string_view statement, Shape shape) {
  Owed op;
  op.kind = Owed::Kind::kParse;
  op.name = statement;
  op.shape = shape;
  return push(std::move(op));
}

bool ReshapedReplies::bind_sent(std::string_view portal, std::string_view statement) {
  Owed op;
  op.kind = Owed::Kind::kBind;
  op.name = portal;
  op.statement = statement;
  return push(std::move(op));
}

bool ReshapedReplies::describe_sent(char kind, std::string_view name) {
  Owed op;
  op.kind = Owed::Kind::kDescribe;
  op.target = kind;
  op.name = name;
  return push(std::move(op));
}

bool ReshapedReplies::close_sent(char kind, std::string_view name) {
  Owed op;
  op.kind = Owed::Kind::kClose;
  op.target = kind;
  op.name = name;
  return push(std::move(op));
}

bool ReshapedReplies::execute_sent(std::string_view portal) {
  Owed op;
  op.kind = Owed::Kind::kExecute;
  op.target = 'P';
  op.name = portal;
  return push(std::move(op));
}

bool ReshapedReplies::runs_write_without_rows(std::string_view portal) const {
  auto without_rows = [](const Shape& shape) { return shape && !shape->returning; };
  auto bind = owed_.rbegin();
  while (bind != owed_.rend() && !(bind->kind == Owed::Kind::kBind && bind->name == portal)) ++bind;
  if (bind == owed_.rend()) {
    auto found = portals_.find(std::string(portal));
    return found != portals_.end() && !found->second.returning;
  }
  for (auto parse = bind; parse != owed_.rend(); ++parse) {
    if (parse->kind == Owed::Kind::kParse && parse->name == bind->statement) {
      return without_rows(parse->shape);
    }
  }
  auto found = statements_.find(bind->statement);
  return found != statements_.end() && !found->second.returning;
}

ReshapedReplies::Shape ReshapedReplies::current() {
  if (owed_.empty()) return std::nullopt;
  Owed& op = owed_.front();
  switch (op.kind) {
    case Owed::Kind::kQuery:
      return op.next < op.statements.size() ? op.statements[op.next] : std::nullopt;
    case Owed::Kind::kExecute:
    case Owed::Kind::kDescribe:
      if (!op.resolved) {
        // Looked up when the backend answers: every Parse, Bind and Close
        // sent before this message has been confirmed (or skipped) by then.
        const auto& names = op.target == 'S' ? statements_ : portals_;
        if (auto found = names.find(op.name); found != names.end()) op.shape = found->second;
        op.resolved = true;
      }
      return op.shape;
    default:
      return std::nullopt;
  }
}

void ReshapedReplies::skip_after_error() {
  while (!owed_.empty() && owed_.front().kind != Owed::Kind::kSync &&
         owed_.front().kind != Owed::Kind::kQuery) {
    owed_.pop_front();
  }
  // The statements of a Query after the failing one do not run.
  if (!owed_.empty() && owed_.front().kind == Owed::Kind::kQuery) {
    owed_.front().next = owed_.front().statements.size();
  }
}

Verdict ReshapedReplies::on_backend(char type, std::string_view body) {
  using K = Owed::Kind;
  const K head = owed_.empty() ? K::kSync : owed_.front().kind;
  const bool head_owed = !owed_.empty();
  switch (type) {
    case '1':  // ParseComplete
      if (head_owed && head == K::kParse) {
        Owed& op = owed_.front();
        if (op.shape) {
          statements_[op.name] = *op.shape;
        } else {
          statements_.erase(op.name);
        }
        owed_.pop_front();
      }
      return Verdict::forward();
    case '2':  // BindComplete
      if (head_owed && head == K::kBind) {
        Owed& op = owed_.front();
        auto found = statements_.find(op.statement);
        if (found == statements_.end()) {
          portals_.erase(op.name);
        } else {
          if (portals_.size() >= kMaxPortals && !portals_.contains(op.name)) {
            return Verdict::fatal("54000", "too many open portals of checked writes");
          }
          portals_[op.name] = found->second;
        }
        owed_.pop_front();
      }
      return Verdict::forward();
    case '3':  // CloseComplete
      if (head_owed && head == K::kClose) {
        Owed& op = owed_.front();
        (op.target == 'S' ? statements_ : portals_).erase(op.name);
        owed_.pop_front();
      }
      return Verdict::forward();
    case 'T': {  // RowDescription
      if (!head_owed || (head != K::kDescribe && head != K::kQuery)) return Verdict::forward();
      const Shape shape = current();
      if (head == K::kDescribe) owed_.pop_front();
      if (!shape || shape->returning) return Verdict::forward();
      // The client's statement returns no rows: PostgreSQL answers its
      // Describe with NoData and sends no RowDescription when it runs.
      if (head == K::kDescribe) return Verdict::replace(std::string("n\0\0\0\4", 5));
      return Verdict::replace({});
    }
    case 'n':  // NoData
      if (head_owed && head == K::kDescribe) owed_.pop_front();
      return Verdict::forward();
    case 'D': {  // DataRow
      if (!head_owed || (head != K::kExecute && head != K::kQuery)) return Verdict::forward();
      const Shape shape = current();
      if (shape && !shape->returning) return Verdict::replace({});
      return Verdict::forward();
    }
    case 'C': {  // CommandComplete
      if (!head_owed || (head != K::kExecute && head != K::kQuery)) return Verdict::forward();
      const Shape shape = current();
      if (head == K::kExecute) {
        owed_.pop_front();
      } else {
        ++owed_.front().next;
      }
      if (!shape) return Verdict::forward();
      if (auto complete = reshaped_command_complete(body, *shape)) {
        return Verdict::replace(std::move(*complete));
      }
      return Verdict::forward();
    }
    case 'I':  // EmptyQueryResponse
    case 's':  // PortalSuspended
      if (head_owed && head == K::kExecute) owed_.pop_front();
      return Verdict::forward();
    case 'E': {  // ErrorResponse
      Verdict verdict = Verdict::forward();
      if (head_owed && (head == K::kExecute || head == K::kQuery)) {
        if (current()) {
          if (auto error = policy_violation_error(body))
            verdict = Verdict::replace(std::move(*error));
        }
      }
      skip_after_error();
      return verdict;
    }
    case 'Z': {  // ReadyForQuery
      while (!owed_.empty()) {
        const K kind = owed_.front().kind;
        owed_.pop_front();
        if (kind == K::kSync || kind == K::kQuery) break;
      }
      // Outside a transaction block no portal survives (protocol portals
      // are never holdable).
      if (auto status = parse_ready_for_query(body); status && *status == 'I') portals_.clear();
      return Verdict::forward();
    }
    default:
      return Verdict::forward();
  }
}

}  // namespace tenantgate::proxy
