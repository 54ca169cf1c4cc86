#include "rewriter/rewrite_template.h"

#include <algorithm>

#include "rewriter/dialect.h"
#include "rewriter/identity_literal.h"
#include "rewriter/literal_scanner.h"
#include "rewriter/pg_tree.h"
#include "rewriter/statement_limits.h"

namespace tenantgate::rewriter {
namespace {

RewriteTemplate refused(std::string sqlstate, std::string message) {
  RewriteTemplate t;
  t.refusal = Refusal{std::move(sqlstate), std::move(message)};
  return t;
}

struct Replacement {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string text;
};

// Index of the first token at or after `i`: skips whitespace and comments so
// that a rewritten statement keeps the comments written before it.
std::size_t skip_trivia(std::string_view s, std::size_t i, std::size_t end) {
  while (i < end) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
    } else if (c == '-' && i + 1 < end && s[i + 1] == '-') {
      while (i < end && s[i] != '\n' && s[i] != '\r') ++i;
    } else if (c == '/' && i + 1 < end && s[i + 1] == '*') {
      std::size_t depth = 1;
      i += 2;
      while (i < end && depth > 0) {
        if (s[i] == '/' && i + 1 < end && s[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (s[i] == '*' && i + 1 < end && s[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      }
    } else {
      break;
    }
  }
  return std::min(i, end);
}

// The end of the (possibly qualified) name that starts at `at`: identifiers
// and quoted identifiers joined by dots. 0 when there is none.
std::size_t name_end(std::string_view sql, std::size_t at, std::size_t stop) {
  SqlScanner scanner(sql.substr(at, stop - at));
  Token t;
  std::size_t end = 0;
  bool want_name = true;
  while (scanner.next(&t) == SqlScanner::Status::kToken) {
    const bool name = t.kind == TokenKind::kIdentifier || t.kind == TokenKind::kQuotedIdentifier;
    const bool dot =
        t.kind == TokenKind::kPunctuation && t.end - t.begin == 1 && sql[at + t.begin] == '.';
    if (want_name ? !name : !dot) break;
    if (name) end = at + t.end;
    want_name = !want_name;
  }
  return want_name ? 0 : end;
}

// The statement text sql[begin, stop) with each edit's name replaced by its
// text. False when the edits cannot be placed (none, or out of order).
bool edit_statement(std::string_view sql, std::size_t begin, std::size_t stop,
                    const std::vector<TextEdit>& edits, std::string* out) {
  if (edits.empty()) return false;
  std::vector<const TextEdit*> ordered;
  ordered.reserve(edits.size());
  for (const TextEdit& e : edits) ordered.push_back(&e);
  std::sort(ordered.begin(), ordered.end(),
            [](const TextEdit* a, const TextEdit* b) { return a->position < b->position; });
  out->clear();
  std::size_t pos = begin;
  for (const TextEdit* e : ordered) {
    if (e->position < pos || e->position >= stop) return false;
    const std::size_t end = name_end(sql, e->position, stop);
    if (end == 0) return false;
    out->append(sql.substr(pos, e->position - pos));
    out->append(e->text);
    pos = end;
  }
  out->append(sql.substr(pos, stop - pos));
  return true;
}

// Cuts the identity markers and the $k parameters out of a shape's rewritten
// text, recording a slot for each. Token by token, so that a `$1` or a marker
// inside some other token is left alone. False when the scanner gives up or
// a parameter is out of range.
bool shape_slots(const std::string& assembled, std::string_view tenant_token,
                 std::string_view user_token, std::size_t lifted, RewriteTemplate* out) {
  SqlScanner scanner(assembled);
  Token t;
  SqlScanner::Status status;
  std::size_t pos = 0;
  out->text.reserve(assembled.size());
  while ((status = scanner.next(&t)) == SqlScanner::Status::kToken) {
    const std::string_view text = std::string_view(assembled).substr(t.begin, t.end - t.begin);
    RewriteTemplate::Slot slot;
    if (t.kind == TokenKind::kParam) {
      std::size_t k = 0;
      for (std::size_t i = 1; i < text.size(); ++i) {
        k = k * 10 + static_cast<std::size_t>(text[i] - '0');
        if (k > lifted) return false;
      }
      if (k == 0) return false;
      slot.param = static_cast<int>(k - 1);
    } else if (t.kind == TokenKind::kString && text == tenant_token) {
      slot.field = IdentityField::kTenant;
    } else if (t.kind == TokenKind::kString && text == user_token) {
      slot.field = IdentityField::kUser;
    } else {
      continue;
    }
    out->text.append(assembled, pos, t.begin - pos);
    slot.offset = out->text.size();
    out->slots.push_back(slot);
    pos = t.end;
  }
  if (status == SqlScanner::Status::kGiveUp) return false;
  out->text.append(assembled, pos);
  return true;
}

// The WHERE CURRENT OF cursor of an UPDATE / DELETE, or nullptr.
const std::string* current_of(const pg_query::Node& where) {
  return where.has_current_of_expr() ? &where.current_of_expr().cursor_name() : nullptr;
}

// The prepared-statement or cursor name a top-level statement uses, if any.
std::optional<PreparedName> prepared_name(const pg_query::Node& stmt) {
  using Kind = PreparedName::Kind;
  const pg_query::Node* node = &stmt;
  if (node->has_explain_stmt()) node = &node->explain_stmt().query();
  switch (node->node_case()) {
    case pg_query::Node::kPrepareStmt:
      return PreparedName{Kind::kPrepare, node->prepare_stmt().name()};
    case pg_query::Node::kExecuteStmt:
      return PreparedName{Kind::kExecute, node->execute_stmt().name()};
    case pg_query::Node::kDeallocateStmt: {
      // DEALLOCATE ALL has no name.
      const std::string& name = node->deallocate_stmt().name();
      return PreparedName{name.empty() ? Kind::kDeallocateAll : Kind::kDeallocate, name};
    }
    case pg_query::Node::kDiscardStmt:
      if (node->discard_stmt().target() == pg_query::DISCARD_ALL) {
        return PreparedName{Kind::kDeallocateAll, {}};
      }
      return std::nullopt;
    case pg_query::Node::kDeclareCursorStmt: {
      constexpr int kCursorOptHold = 0x0020;  // CURSOR_OPT_HOLD, parsenodes.h
      const auto& d = node->declare_cursor_stmt();
      return PreparedName{
          (d.options() & kCursorOptHold) != 0 ? Kind::kDeclareHoldCursor : Kind::kDeclareCursor,
          d.portalname()};
    }
    case pg_query::Node::kFetchStmt:  // FETCH and MOVE
      return PreparedName{Kind::kUseCursor, node->fetch_stmt().portalname()};
    case pg_query::Node::kClosePortalStmt: {
      // CLOSE ALL has no name.
      const std::string& name = node->close_portal_stmt().portalname();
      return PreparedName{name.empty() ? Kind::kCloseAllCursors : Kind::kCloseCursor, name};
    }
    case pg_query::Node::kUpdateStmt:
      if (const std::string* c = current_of(node->update_stmt().where_clause())) {
        return PreparedName{Kind::kUseCursor, *c};
      }
      return std::nullopt;
    case pg_query::Node::kDeleteStmt:
      if (const std::string* c = current_of(node->delete_stmt().where_clause())) {
        return PreparedName{Kind::kUseCursor, *c};
      }
      return std::nullopt;
    case pg_query::Node::kTransactionStmt:
      switch (node->transaction_stmt().kind()) {
        case pg_query::TRANS_STMT_COMMIT:
        case pg_query::TRANS_STMT_ROLLBACK:
        case pg_query::TRANS_STMT_PREPARE:
          return PreparedName{Kind::kEndTransaction, {}};
        default:
          return std::nullopt;
      }
    default:
      return std::nullopt;
  }
}

int count_slots(const RewriteTemplate& t, IdentityField field) {
  int n = 0;
  for (const auto& slot : t.slots) n += slot.param < 0 && slot.field == field ? 1 : 0;
  return n;
}

}  // namespace

std::size_t RewriteTemplate::memory_bytes() const {
  std::size_t n = sizeof(*this) + text.capacity() + slots.capacity() * sizeof(Slot) +
                  (param_checks.capacity() + literal_checks.capacity()) * sizeof(ParamCheck) +
                  const_checks.capacity() * sizeof(ConstCheck) +
                  prepared_names.capacity() * sizeof(PreparedName) +
                  reshaped.capacity() * sizeof(reshaped.front());
  for (const auto& p : prepared_names) n += p.name.capacity();
  for (const auto& c : claims) n += sizeof(c) + c.capacity();
  if (refusal) n += refusal->message.capacity() + refusal->sqlstate.capacity();
  for (const auto& c : param_checks) n += c.table.capacity() + c.column.capacity();
  for (const auto& c : literal_checks) n += c.table.capacity() + c.column.capacity();
  for (const auto& c : const_checks) {
    n += c.literal.capacity() + c.table.capacity() + c.column.capacity();
  }
  return n;
}

RewriteTemplate build_template(std::string_view sql, const IdentityShape& shape,
                               const policy::Policy& policy, const Options& options,
                               std::size_t lifted) {
  if (sql.size() > options.max_statement_bytes) {
    return refused("54001", "statement of " + std::to_string(sql.size()) +
                                " bytes exceeds the limit of " +
                                std::to_string(options.max_statement_bytes) + " bytes");
  }
  if (sql.find('\0') != std::string_view::npos) {
    return refused("42601", "statement contains a NUL byte");
  }
  if (std::optional<Refusal> r = check_statement_limits(sql, options)) {
    return refused(r->sqlstate, r->message);
  }
  // CockroachDB-only syntax: the walker reads a PostgreSQL form of it, and
  // restore_cockroach puts it back into the rewritten text (dialect.h).
  CockroachTranslation cockroach;
  std::string translated;
  if (options.dialect == Dialect::kCockroachDB) {
    if (std::optional<Refusal> r = translate_cockroach(sql, policy, shape.database, &cockroach)) {
      return refused(r->sqlstate, r->message);
    }
    translated = std::move(cockroach.analysis);
    cockroach.analysis.clear();
    sql = translated;
  }
  const std::string text(sql);
  google::protobuf::Arena arena(tree_arena_options());
  auto& tree = *google::protobuf::Arena::CreateMessage<pg_query::ParseResult>(&arena);
  RangeVarPositions range_vars;
  if (std::optional<Refusal> r = parse_sql(text, &tree, &range_vars)) {
    return refused(r->sqlstate, r->message);
  }

  const Markers markers = make_markers(sql);
  StatementWalker walker(policy, shape, markers, options.dialect);
  walker.set_range_var_positions(&range_vars);
  RewriteTemplate out;
  std::vector<Replacement> replacements;
  const int count = tree.stmts_size();
  for (int i = 0; i < count; ++i) {
    pg_query::RawStmt* raw = tree.mutable_stmts(i);
    if (auto name = prepared_name(raw->stmt())) out.prepared_names.push_back(std::move(*name));
    const bool write = raw->stmt().has_insert_stmt() || raw->stmt().has_update_stmt();
    std::optional<Refusal> r = walker.rewrite_statement(raw->mutable_stmt());
    // Only a top-level write is answered as a SELECT: under EXPLAIN or
    // PREPARE the reply is that statement's own.
    out.reshaped.push_back(write && !r ? walker.reshaped_write() : std::nullopt);
    if (!r && walker.changed()) {
      const auto begin = static_cast<std::size_t>(raw->stmt_location());
      const std::size_t end =
          raw->stmt_len() == 0 ? sql.size() : begin + static_cast<std::size_t>(raw->stmt_len());
      const std::size_t stop = std::min(end, sql.size());
      const std::size_t first = skip_trivia(sql, begin, stop);
      // The client's text with the wraps edited in, when that parses into
      // exactly the walker's tree; otherwise the deparsed tree.
      std::string rewritten;
      if (!options.edit_client_text ||
          !edit_statement(sql, first, stop, walker.text_edits(), &rewritten) ||
          !parses_to(rewritten, raw->stmt())) {
        r = deparse_verified(raw->stmt(), &rewritten);
      }
      if (!r) replacements.push_back({first, stop, std::move(rewritten)});
    }
    if (r) {
      if (count > 1) r->message = "statement " + std::to_string(i + 1) + ": " + r->message;
      return refused(r->sqlstate, r->message);
    }
  }
  if (std::none_of(out.reshaped.begin(), out.reshaped.end(),
                   [](const auto& w) { return w.has_value(); })) {
    out.reshaped.clear();
  }
  out.param_checks = std::move(walker.param_checks());
  out.const_checks = std::move(walker.const_checks());
  if (lifted > 0) {
    // $1..$lifted are the client's constants: checked at instantiation.
    std::vector<ParamCheck> params;
    for (ParamCheck& check : out.param_checks) {
      const bool constant =
          check.param_number >= 1 && static_cast<std::size_t>(check.param_number) <= lifted;
      (constant ? out.literal_checks : params).push_back(std::move(check));
    }
    out.param_checks = std::move(params);
  }
  out.copy_in = std::move(walker.copy_in());
  if (out.copy_in && count > 1) {
    // The proxy checks the rows of one COPY per query string.
    return refused("0A000",
                   "COPY FROM into a scoped table must be the only statement of its "
                   "query string");
  }
  if (replacements.empty()) {
    if (cockroach.must_forward_analysis()) {
      // Never reached for a scoped UPSERT (the walker always qualifies the
      // target); refused rather than forwarding the client's UPSERT.
      return refused("0A000", "UPSERT could not be rewritten; refused");
    }
    return out;
  }

  // Splice the rewritten statements into the original text, keeping
  // everything between them (separators, comments) byte for byte.
  std::string assembled;
  std::size_t pos = 0;
  for (const Replacement& rep : replacements) {
    assembled.append(sql.substr(pos, rep.begin - pos));
    assembled.append(rep.text);
    pos = rep.end;
  }
  assembled.append(sql.substr(pos));
  if (std::optional<Refusal> r = restore_cockroach(cockroach, policy, shape.database, &assembled)) {
    return refused(r->sqlstate, r->message);
  }

  const std::string tenant_token = quoted_marker(markers.tenant);
  const std::string user_token = quoted_marker(markers.user);
  out.claims = walker.claims();
  if (lifted > 0 && !out.claims.empty()) {
    // Shapes carry only tenant and user slots; the exact text is cached instead.
    return refused("0A000", "statement shape reads token claims");
  }
  if (lifted > 0) {
    if (!shape_slots(assembled, tenant_token, user_token, lifted, &out)) {
      return refused("0A000", "cannot locate the parameters of a statement shape");
    }
    if (count_slots(out, IdentityField::kTenant) != walker.tenant_markers() ||
        count_slots(out, IdentityField::kUser) != walker.user_markers()) {
      return refused("0A000", "statement contains text tenantgate reserves for identity values");
    }
    out.changed = true;
    return out;
  }

  // Turn the marker constants into slots.
  int tenant_found = 0;
  int user_found = 0;
  pos = 0;
  // Each token is searched for again only after it was consumed: linear in
  // the text, however many markers it holds.
  std::size_t t = assembled.find(tenant_token);
  std::size_t u = assembled.find(user_token);
  const std::string claim_token = "'" + claim_marker_prefix(markers);
  std::size_t c = out.claims.empty() ? std::string::npos : assembled.find(claim_token);
  std::size_t claims_found = 0;
  while (true) {
    const std::size_t next = std::min({t, u, c});
    if (next == std::string::npos) break;
    if (next == c) {
      // 'tg_..._claim<k>_'
      std::size_t k = 0;
      std::size_t i = next + claim_token.size();
      bool digits = false;
      while (i < assembled.size() && assembled[i] >= '0' && assembled[i] <= '9') {
        k = k * 10 + static_cast<std::size_t>(assembled[i] - '0');
        if (k >= out.claims.size()) break;
        digits = true;
        ++i;
      }
      if (!digits || k >= out.claims.size() || assembled.compare(i, 2, "_'") != 0) {
        return refused("0A000", "statement contains text tenantgate reserves for identity values");
      }
      out.text.append(assembled, pos, next - pos);
      RewriteTemplate::Slot slot;
      slot.offset = out.text.size();
      slot.claim = static_cast<int>(k);
      out.slots.push_back(slot);
      ++claims_found;
      pos = i + 2;
      c = assembled.find(claim_token, pos);
      continue;
    }
    const bool is_tenant = next == t;
    out.text.append(assembled, pos, next - pos);
    out.slots.push_back(
        {out.text.size(), is_tenant ? IdentityField::kTenant : IdentityField::kUser});
    (is_tenant ? tenant_found : user_found) += 1;
    pos = next + (is_tenant ? tenant_token.size() : user_token.size());
    if (is_tenant) {
      t = assembled.find(tenant_token, pos);
    } else {
      u = assembled.find(user_token, pos);
    }
  }
  out.text.append(assembled, pos);
  if (tenant_found != walker.tenant_markers() || user_found != walker.user_markers() ||
      claims_found != out.claims.size()) {
    // Only possible when a constant in the statement spells a marker through
    // escapes; refuse rather than guess which occurrence is ours.
    return refused("0A000", "statement contains text tenantgate reserves for identity values");
  }
  out.changed = true;
  return out;
}

namespace {

// A policy column given the constant `literal` (as the parser reads it) must
// hold the caller's own value.
std::optional<RewriteResult> check_constant(IdentityField field, const std::string& literal,
                                            const std::string& table, const std::string& column,
                                            const std::string& cast,
                                            const policy::Identity& identity) {
  const policy::TypedValue* expected = field == IdentityField::kTenant
                                           ? &identity.tenant
                                           : (identity.user ? &*identity.user : nullptr);
  const char* what = field == IdentityField::kTenant ? "tenant" : "user";
  if (expected == nullptr) {
    return RewriteResult::refused("42501",
                                  std::string("permission denied: the connection has no ") + what);
  }
  const std::optional<std::string> given = policy::canonical_value(expected->type, literal);
  if (!given || *given != expected->value || !cast_fits_identity(cast, expected->type)) {
    return RewriteResult::refused("42501", "new row violates tenant policy for table " + table +
                                               ": column " + column + " must be the caller's " +
                                               what);
  }
  return std::nullopt;
}

}  // namespace

RewriteResult instantiate(const RewriteTemplate& tmpl, std::string_view sql,
                          const policy::Identity& identity,
                          const std::vector<std::string_view>& literals) {
  if (tmpl.refusal) return RewriteResult::refused(tmpl.refusal->sqlstate, tmpl.refusal->message);
  for (const ConstCheck& check : tmpl.const_checks) {
    if (auto refusal = check_constant(check.field, check.literal, check.table, check.column,
                                      check.cast, identity)) {
      return std::move(*refusal);
    }
  }
  for (const ParamCheck& check : tmpl.literal_checks) {
    const auto k = static_cast<std::size_t>(check.param_number);
    const std::optional<std::string> value =
        k >= 1 && k <= literals.size() ? constant_value(literals[k - 1]) : std::nullopt;
    if (!value) return RewriteResult::refused("XX000", "internal error: statement shape mismatch");
    if (auto refusal =
            check_constant(check.field, *value, check.table, check.column, check.cast, identity)) {
      return std::move(*refusal);
    }
  }
  Rewritten r;
  r.param_checks = tmpl.param_checks;
  r.copy_in = tmpl.copy_in;
  r.prepared_names = tmpl.prepared_names;
  r.reshaped = tmpl.reshaped;
  if (!tmpl.changed) {
    r.sql.assign(sql);
    return RewriteResult::ok(std::move(r));
  }
  r.changed = true;
  std::string tenant = render_literal(identity.tenant);
  std::string user = identity.user ? render_literal(*identity.user) : std::string();
  std::size_t size = tmpl.text.size();
  std::vector<std::string> claims;
  claims.reserve(tmpl.claims.size());
  for (const std::string& name : tmpl.claims) claims.push_back(render_claim(identity, name));
  for (const auto& slot : tmpl.slots) {
    if (slot.claim >= 0) {
      size += claims[static_cast<std::size_t>(slot.claim)].size();
    } else if (slot.param >= 0) {
      if (static_cast<std::size_t>(slot.param) >= literals.size()) {
        return RewriteResult::refused("XX000", "internal error: statement shape mismatch");
      }
      size += literals[static_cast<std::size_t>(slot.param)].size();
    } else if (slot.field == IdentityField::kUser && !identity.user) {
      return RewriteResult::refused("42501", "permission denied: the connection has no user");
    } else {
      size += slot.field == IdentityField::kTenant ? tenant.size() : user.size();
    }
  }
  r.sql.reserve(size);
  std::size_t pos = 0;
  for (const auto& slot : tmpl.slots) {
    r.sql.append(tmpl.text, pos, slot.offset - pos);
    if (slot.claim >= 0) {
      r.sql.append(claims[static_cast<std::size_t>(slot.claim)]);
    } else if (slot.param >= 0) {
      r.sql.append(literals[static_cast<std::size_t>(slot.param)]);
    } else {
      r.sql.append(slot.field == IdentityField::kTenant ? tenant : user);
    }
    pos = slot.offset;
  }
  r.sql.append(tmpl.text, pos);
  return RewriteResult::ok(std::move(r));
}

}  // namespace tenantgate::rewriter
