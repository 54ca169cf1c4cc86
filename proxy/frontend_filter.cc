#include "proxy/frontend_filter.h"

#include <fmt/format.h>

#include <algorithm>

#include "proxy/message_io.h"
#include "proxy/param_check.h"

namespace tenantgate::proxy {
namespace {

Verdict tracker_full() {
  return Verdict::fatal("54000",
                        "too many unanswered messages, or a statement name that is too long");
}

}  // namespace

FrontendFilter::FrontendFilter(const policy::Identity& identity, bool bypass,
                               std::size_t max_message_bytes, StatementRewriter& rewriter)
    : identity_(identity),
      bypass_(bypass),
      max_message_bytes_(max_message_bytes),
      rewriter_(rewriter) {}

bool FrontendFilter::is_frontend_type(char type) {
  switch (type) {
    case 'B':  // Bind
    case 'C':  // Close
    case 'd':  // CopyData
    case 'c':  // CopyDone
    case 'f':  // CopyFail
    case 'D':  // Describe
    case 'E':  // Execute
    case 'H':  // Flush
    case 'F':  // FunctionCall
    case 'P':  // Parse
    case 'Q':  // Query
    case 'S':  // Sync
    case 'X':  // Terminate
      return true;
    default:
      return false;
  }
}

Verdict FrontendFilter::filter(char type, std::string_view body, std::string_view raw,
                               ProtocolTracker& tracker, std::string& out) {
  if (!is_frontend_type(type)) {
    return Verdict::fatal("08P01", fmt::format("invalid frontend message type {}",
                                               static_cast<int>(static_cast<unsigned char>(type))));
  }
  if (type == 'X') {
    out += terminate_message();
    return Verdict::terminate();
  }
  if (bypass_) {
    tracker.bypass_sent(type);
    out.append(raw);
    return Verdict::forward();
  }
  if (tracker.copy_in_active()) {
    // In copy-in mode PostgreSQL accepts only CopyData/Done/Fail and ignores
    // Flush and Sync (which get no reply: forwarding a Sync would break the
    // ReadyForQuery bookkeeping). Anything else could only slip a statement
    // past the row checks of a COPY still in progress.
    if (type == 'H' || type == 'S') return Verdict::forward();
    if (type != 'd' && type != 'c' && type != 'f') {
      return Verdict::fatal(
          "08P01", fmt::format("unexpected message type '{}' during COPY FROM STDIN", type));
    }
  }
  switch (type) {
    case 'Q':
      return query(body, raw, tracker, out);
    case 'P':
      return parse(body, raw, tracker, out);
    case 'B':
      return bind(body, raw, tracker, out);
    case 'C':
    case 'D':
      return describe_or_close(type, body, raw, tracker, out);
    case 'S':
      out.append(raw);
      return tracker.sync_sent() ? Verdict::forward() : tracker_full();
    case 'F':
      return function_call(tracker, out);
    case 'd':
    case 'c':
    case 'f':
      if (tracker.copy_in_active()) return copy_data(type, body, raw, tracker, out);
      // Outside a checked COPY the backend ignores these (protocol 55.2.6).
      out.append(raw);
      return Verdict::forward();
    case 'E':
      tracker.extended_sent();
      out.append(raw);
      return Verdict::forward();
    default:  // Flush
      out.append(raw);
      return Verdict::forward();
  }
}

Verdict FrontendFilter::query(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                              std::string& out) {
  auto sql = parse_query(body);
  if (!sql) return Verdict::fatal("08P01", "malformed Query message");
  if (tracker.extended_open()) {
    // A backend skipping to Sync after an error would ignore this Query and
    // never answer it; clients (libpq pipelines included) never do it.
    return Verdict::fatal("08P01", "Query inside an extended-protocol batch: send Sync first");
  }
  auto result = rewriter_.rewrite(*sql);
  if (!result) return Verdict::fatal("57P01", "the policy's search_path changed: reconnect");
  if (result->is_ok()) {
    if (auto why = tracker.statements().refuse_query(result->value().prepared_names)) {
      result = rewriter::RewriteResult::refused("42501", std::move(*why));
    }
  }
  if (!result->is_ok()) {
    Verdict verdict = substitute(result->refusal(), Substitute::kQuery, *sql, tracker, out);
    if (verdict.is_fatal()) return verdict;
    return tracker.refused_query_sent() ? verdict : tracker_full();
  }
  auto& rewritten = result->value();
  if (!tracker.query_sent(rewritten.prepared_names)) return tracker_full();
  if (rewritten.copy_in) tracker.copy_in_started(copy_in_spec(*rewritten.copy_in));
  if (rewritten.changed) {
    append_query_message(out, rewritten.sql);
  } else {
    out.append(raw);
  }
  return Verdict::forward();
}

Verdict FrontendFilter::parse(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                              std::string& out) {
  auto parse = parse_parse(body);
  if (!parse) return Verdict::fatal("08P01", "malformed Parse message");
  tracker.extended_sent();
  auto result = rewriter_.rewrite(parse->query);
  if (!result) return Verdict::fatal("57P01", "the policy's search_path changed: reconnect");
  // The server must read a checked parameter as the Bind check does: its
  // type is declared in the Parse, never left to inference.
  std::vector<int32_t>& types = parse->param_types;
  const std::size_t declared_types = types.size();
  if (result->is_ok()) {
    auto& rewritten = result->value();
    if (auto why = declare_checked_param_types(types, rewritten.param_checks, identity_)) {
      result = rewriter::RewriteResult::refused("42501", std::move(*why));
    } else if (auto refused = tracker.statements().refuse_parse(
                   parse->statement, rewritten.param_checks, rewritten.prepared_names)) {
      result = rewriter::RewriteResult::refused("42501", std::move(*refused));
    } else if (rewritten.copy_in) {
      result = rewriter::RewriteResult::refused(
          "0A000", "COPY FROM into a scoped table is supported in the simple query protocol only");
    }
  }
  if (!result->is_ok()) {
    // A refused Parse of the unnamed statement must still drop the one the
    // backend has, as PostgreSQL's own failed Parse would.
    const Substitute what =
        parse->statement.empty() ? Substitute::kUnnamedParse : Substitute::kParse;
    return substitute(result->refusal(), what, parse->query, tracker, out);
  }
  auto& rewritten = result->value();
  const bool retyped = types.size() != declared_types ||
                       std::any_of(rewritten.param_checks.begin(), rewritten.param_checks.end(),
                                   [](const auto& c) { return c.type_oid != 0; });
  if (!tracker.statements().parse_sent(parse->statement, std::move(rewritten.param_checks),
                                       rewritten.prepared_names)) {
    return tracker_full();
  }
  if (rewritten.changed || retyped) {
    append_parse(out, parse->statement, rewritten.sql, types);
  } else {
    out.append(raw);
  }
  return Verdict::forward();
}

Verdict FrontendFilter::bind(std::string_view body, std::string_view raw, ProtocolTracker& tracker,
                             std::string& out) {
  BindMessage& bind = bind_;
  if (!parse_bind(body, bind)) return Verdict::fatal("08P01", "malformed Bind message");
  tracker.extended_sent();
  std::optional<std::string> refused = StatementTracker::refuse_name(bind.statement);
  const auto checks = tracker.statements().checks_for(bind.statement);
  if (!refused && !checks.empty()) refused = check_bind_params(bind, checks, identity_);
  // Keep the vectors of an ordinary Bind; give back those of a huge one.
  constexpr std::size_t kKeptBindParams = 64;
  if (bind.params.capacity() > kKeptBindParams) bind = BindMessage{};
  if (refused) {
    return substitute(rewriter::Refusal{"42501", std::move(*refused)}, Substitute::kBind, {},
                      tracker, out);
  }
  out.append(raw);
  return Verdict::forward();
}

Verdict FrontendFilter::describe_or_close(char type, std::string_view body, std::string_view raw,
                                          ProtocolTracker& tracker, std::string& out) {
  auto target = parse_describe_or_close(body);
  if (!target) {
    return Verdict::fatal("08P01",
                          type == 'C' ? "malformed Close message" : "malformed Describe message");
  }
  if (target->kind == 'S' && StatementTracker::refuse_name(target->name)) {
    return Verdict::fatal("08P01", "statement names longer than 63 bytes are not supported");
  }
  tracker.extended_sent();
  if (type == 'C' && !tracker.statements().close_sent(target->kind, target->name)) {
    return tracker_full();
  }
  out.append(raw);
  return Verdict::forward();
}

Verdict FrontendFilter::function_call(ProtocolTracker& tracker, std::string& out) {
  // The legacy fast-path function call runs a function by OID with no SQL
  // for the rewriter to see.
  if (tracker.extended_open()) {
    return Verdict::fatal("08P01",
                          "FunctionCall inside an extended-protocol batch: send Sync first");
  }
  Verdict verdict =
      substitute(rewriter::Refusal{"42501",
                                   "the function-call protocol message is not allowed through "
                                   "tenantgate"},
                 Substitute::kQuery, {}, tracker, out);
  if (verdict.is_fatal()) return verdict;
  return tracker.refused_query_sent() ? verdict : tracker_full();
}

Verdict FrontendFilter::copy_data(char type, std::string_view body, std::string_view raw,
                                  ProtocolTracker& tracker, std::string& out) {
  if (tracker.copy_in_failed()) {
    // CopyFail already went to the backend: the rest of the client's data
    // has nowhere to go.
    if (type != 'd') tracker.copy_in_finished();
    return Verdict::forward();
  }
  CopyInValidator& copy = *tracker.copy_in();
  std::string rows;
  std::optional<std::string> refused;
  switch (type) {
    case 'd':
      refused = copy.feed(body, rows);
      break;
    case 'c':
      refused = copy.finish(rows);
      break;
    default:  // CopyFail from the client: nothing more to check
      tracker.copy_in_finished();
      out.append(raw);
      return Verdict::forward();
  }
  if (!rows.empty()) {
    MessageWriter data('d');
    data.bytes(rows);
    out += std::move(data).finish();
  }
  if (refused) {
    rewriter::Refusal refusal{"42501", *refused};
    // The backend answers CopyFail with an error quoting this message, which
    // the tracker replaces with the refusal.
    MessageWriter fail_copy('f');
    fail_copy.cstr(tracker.copy_fail_marker(refusal));
    out += std::move(fail_copy).finish();
    tracker.set_copy_in_failed();
    if (type == 'c') tracker.copy_in_finished();
    return Verdict::refused(std::move(refusal.sqlstate), std::move(refusal.message));
  }
  if (type == 'c') {
    out.append(raw);
    tracker.copy_in_finished();
  }
  return Verdict::forward();
}

Verdict FrontendFilter::substitute(rewriter::Refusal refusal, Substitute what,
                                   std::string_view statement, ProtocolTracker& tracker,
                                   std::string& out) {
  Verdict verdict = Verdict::refused(refusal.sqlstate, refusal.message, statement);
  // Not valid SQL: the backend answers with a syntax error naming this word,
  // which the tracker replaces with the refusal.
  const std::optional<std::string> marker = tracker.refusal_marker(std::move(refusal));
  if (!marker) return tracker_full();
  switch (what) {
    case Substitute::kQuery:
      append_query_message(out, *marker);
      break;
    case Substitute::kUnnamedParse:
      // PostgreSQL drops the unnamed statement before it parses the new
      // text, so this failing Parse leaves the backend without one.
      append_parse(out, "", *marker, {});
      tracker.extended_sent();
      break;
    case Substitute::kParse:
    case Substitute::kBind:
      append_parse(out, *marker, *marker, {});
      tracker.extended_sent();
      break;
  }
  return verdict;
}

CopyInSpec FrontendFilter::copy_in_spec(const rewriter::CopyIn& copy) const {
  CopyInSpec spec;
  spec.format = copy.csv ? CopyInSpec::Format::kCsv : CopyInSpec::Format::kText;
  spec.delimiter = copy.delimiter;
  spec.null_string = copy.null_string;
  spec.header = copy.header;
  spec.quote = copy.quote;
  spec.escape = copy.escape;
  spec.columns = copy.columns;
  spec.table = copy.table;
  spec.max_row_bytes = max_message_bytes_;
  // The rewriter refuses owner scopes when the connection has no user, so
  // identity_.user is set whenever a check asks for it; an empty expected
  // value (never a canonical identity) fails closed otherwise.
  auto value_of = [&](rewriter::IdentityField field) -> const policy::TypedValue* {
    if (field == rewriter::IdentityField::kTenant) return &identity_.tenant;
    return identity_.user ? &*identity_.user : nullptr;
  };
  for (const auto& check : copy.checks) {
    const auto* value = value_of(check.field);
    spec.checks.push_back({check.position, value ? value->value : std::string(),
                           value ? value->type : policy::ValueType::kText, check.column});
  }
  for (auto field : copy.appended) {
    const auto* value = value_of(field);
    spec.appended_values.push_back(value ? value->value : std::string());
  }
  return spec;
}

}  // namespace tenantgate::proxy
