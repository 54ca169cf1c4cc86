// Reads: SELECT and everything that can appear inside a query. Every
// reference to a scoped table becomes `(SELECT * FROM t WHERE <predicate>) AS
// <alias>`, the construction row-level security uses internally.
#include <utility>
#include <vector>

#include "rewriter/leak_guard.h"
#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;
using pg_query::Node;

// Deeper than this the walker refuses rather than recursing further; the
// statement size checks keep real statements far below it.
constexpr int kMaxWalkDepth = 200000;

bool is_plain_allowed(const gp::Descriptor* d) {
  return d == pg_query::TypeName::descriptor() || d == pg_query::Alias::descriptor() ||
         d == pg_query::WindowDef::descriptor() || d == pg_query::CTESearchClause::descriptor() ||
         d == pg_query::CTECycleClause::descriptor() || d == pg_query::Integer::descriptor() ||
         d == pg_query::Float::descriptor() || d == pg_query::Boolean::descriptor() ||
         d == pg_query::String::descriptor() || d == pg_query::BitString::descriptor() ||
         d == pg_query::InferClause::descriptor() || d == pg_query::CollateClause::descriptor();
}

}  // namespace

void init_select(pg_query::SelectStmt* select, bool star) {
  select->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
  select->set_op(pg_query::SETOP_NONE);
  if (star) {
    select->add_target_list()
        ->mutable_res_target()
        ->mutable_val()
        ->mutable_column_ref()
        ->add_fields()
        ->mutable_a_star();
  }
}

std::string node_type_name(const Node& node) {
  const gp::FieldDescriptor* field =
      Node::descriptor()->FindFieldByNumber(static_cast<int>(node.node_case()));
  return field == nullptr ? std::string("empty node") : field->message_type()->name();
}

bool StatementWalker::refuse(const char* sqlstate, std::string message) {
  if (!refusal_) refusal_ = Refusal{sqlstate, std::move(message)};
  return false;
}

bool StatementWalker::is_cte_name(const pg_query::RangeVar& rv) const {
  if (!rv.schemaname().empty() || !rv.catalogname().empty()) return false;
  for (auto it = cte_scopes_.rbegin(); it != cte_scopes_.rend(); ++it) {
    if (it->count(rv.relname()) != 0) return true;
  }
  return false;
}

bool StatementWalker::resolve(const pg_query::RangeVar& rv, Target* out) {
  std::optional<policy::Resolution> r =
      policy_.resolve(rv.catalogname(), rv.schemaname(), rv.relname(), shape_.database);
  std::string written = rv.relname();
  if (!rv.schemaname().empty()) written = rv.schemaname() + "." + written;
  if (!rv.catalogname().empty()) written = rv.catalogname() + "." + written;
  if (!r) {
    return refuse("42501", "permission denied: relation " + written +
                               " is in another database or cannot be resolved");
  }
  out->resolution = *r;
  out->display = policy::to_string(r->name);
  return true;
}

bool StatementWalker::require_owner_identity(const Target& target) {
  if (shape_.has_user) return true;
  return refuse("42501", "permission denied for table " + target.display +
                             ": it is scoped by owner and the connection has no user identity");
}

Node StatementWalker::marker_const(IdentityField field) {
  Node n;
  auto* c = n.mutable_a_const();
  if (field == IdentityField::kTenant) {
    c->mutable_sval()->set_sval(markers_.tenant);
    ++tenant_markers_;
  } else {
    c->mutable_sval()->set_sval(markers_.user);
    ++user_markers_;
  }
  return n;
}

Node StatementWalker::scope_predicate(const policy::TablePolicy& table,
                                      const std::string& qualifier, policy::PolicyCommand command,
                                      bool reads) {
  if (table.scope == policy::Scope::kPolicies) {
    Node own = policy_predicate(table, qualifier, command, false);
    if (command == policy::PolicyCommand::kSelect || !reads) return own;
    // An UPDATE or DELETE that reads the table also needs its SELECT
    // policies. One flat AND, as the parser builds it.
    Node n;
    and_into(&n, std::move(own));
    and_into(&n, policy_predicate(table, qualifier, policy::PolicyCommand::kSelect, false));
    return n;
  }
  auto equals = [&](const std::string& column, IdentityField field) {
    Node n;
    auto* e = n.mutable_a_expr();
    e->set_kind(pg_query::AEXPR_OP);
    e->add_name()->mutable_string()->set_sval("=");
    auto* ref = e->mutable_lexpr()->mutable_column_ref();
    if (!qualifier.empty()) ref->add_fields()->mutable_string()->set_sval(qualifier);
    ref->add_fields()->mutable_string()->set_sval(column);
    *e->mutable_rexpr() = marker_const(field);
    return n;
  };
  switch (table.scope) {
    case policy::Scope::kTenant:
      return equals(table.tenant_column, IdentityField::kTenant);
    case policy::Scope::kOwner:
      return equals(table.owner_column, IdentityField::kUser);
    case policy::Scope::kTenantOwner: {
      Node n;
      auto* b = n.mutable_bool_expr();
      b->set_boolop(pg_query::AND_EXPR);
      *b->add_args() = equals(table.tenant_column, IdentityField::kTenant);
      *b->add_args() = equals(table.owner_column, IdentityField::kUser);
      return n;
    }
    case policy::Scope::kShared:
    case policy::Scope::kDeny:
    case policy::Scope::kPolicies:
      break;
  }
  return Node();
}

void StatementWalker::and_into(Node* where, Node predicate) {
  mark_changed();
  if (where->node_case() == Node::NODE_NOT_SET) {
    *where = std::move(predicate);
    return;
  }
  Node combined;
  auto* b = combined.mutable_bool_expr();
  b->set_boolop(pg_query::AND_EXPR);
  // Flatten ANDs: the parser builds `a AND b AND c` as one three-way AND, and
  // the deparse verification compares against what the parser would build.
  auto append = [b](Node&& n) {
    if (n.has_bool_expr() && n.bool_expr().boolop() == pg_query::AND_EXPR) {
      for (auto& arg : *n.mutable_bool_expr()->mutable_args()) *b->add_args() = std::move(arg);
    } else {
      *b->add_args() = std::move(n);
    }
  };
  append(std::move(*where));
  append(std::move(predicate));
  *where = std::move(combined);
}

bool StatementWalker::push_with(pg_query::WithClause* with) {
  cte_scopes_.emplace_back();
  tainted_ctes_.emplace_back();
  if (with == nullptr) return true;
  // By index: walking a CTE's query pushes scopes and may reallocate.
  const std::size_t scope = cte_scopes_.size() - 1;
  if (with->recursive()) {
    for (const Node& cte : with->ctes()) {
      cte_scopes_[scope].insert(cte.common_table_expr().ctename());
    }
  }
  for (Node& n : *with->mutable_ctes()) {
    if (!n.has_common_table_expr()) return refuse("0A000", "unsupported WITH item");
    auto* cte = n.mutable_common_table_expr();
    const int scoped_before = scoped_refs_;
    derived_select_ = cte->ctequery().has_select_stmt();
    ++cte_depth_;
    const bool walked = walk_statement(cte->mutable_ctequery(), false);
    --cte_depth_;
    if (!walked) return false;
    // A CTE over scoped rows may need a fence where it is used (evaluation_guards.cc).
    if (scoped_refs_ != scoped_before && cte->ctequery().has_select_stmt()) {
      tainted_ctes_[scope][cte->ctename()] = cte;
    }
    if (cte->has_search_clause() && !walk_plain_message(cte->mutable_search_clause())) return false;
    if (cte->has_cycle_clause() && !walk_plain_message(cte->mutable_cycle_clause())) return false;
    // Visible to later CTEs of a non-recursive WITH and to the statement body.
    cte_scopes_[scope].insert(cte->ctename());
  }
  return true;
}

void StatementWalker::pop_with(const pg_query::WithClause*) {
  cte_scopes_.pop_back();
  tainted_ctes_.pop_back();
}

bool StatementWalker::walk_select(pg_query::SelectStmt* s) {
  if (s->has_into_clause()) {
    return refuse("42501", "permission denied: SELECT INTO creates a table and is not allowed");
  }
  if (++depth_ > kMaxWalkDepth) return refuse("54001", "statement is too deeply nested");
  const bool derived = derived_select_;
  derived_select_ = false;
  const bool has_with = s->has_with_clause();
  if (!push_with(has_with ? s->mutable_with_clause() : nullptr)) return false;
  push_guard_level();
  bool ok = true;
  if (s->op() != pg_query::SETOP_NONE) {
    // The arms of a derived UNION ALL can be pulled up one by one.
    derived_select_ = derived;
    ok = !s->has_larg() || walk_select(s->mutable_larg());
    derived_select_ = derived;
    ok = ok && (!s->has_rarg() || walk_select(s->mutable_rarg()));
    derived_select_ = false;
  }
  for (Node& item : *s->mutable_from_clause()) {
    if (!ok) break;
    ok = walk_from_item(&item);
  }
  auto walk_list = [&](gp::RepeatedPtrField<Node>* list) {
    for (Node& n : *list) {
      if (!ok) return;
      ok = walk_node(&n);
    }
  };
  walk_list(s->mutable_distinct_clause());
  walk_list(s->mutable_target_list());
  if (ok && s->has_where_clause()) {
    ok = walk_node(s->mutable_where_clause()) &&
         guard_clause(s->mutable_where_clause(), 0, ClauseKind::kWhere);
  }
  walk_list(s->mutable_group_clause());
  if (ok && s->has_having_clause()) {
    ok = walk_node(s->mutable_having_clause()) &&
         guard_clause(s->mutable_having_clause(), 0, ClauseKind::kHaving);
  }
  walk_list(s->mutable_window_clause());
  walk_list(s->mutable_values_lists());
  walk_list(s->mutable_sort_clause());
  if (ok && s->has_limit_offset()) ok = walk_node(s->mutable_limit_offset());
  if (ok && s->has_limit_count()) ok = walk_node(s->mutable_limit_count());
  for (const Node& lock : s->locking_clause()) {
    // FOR UPDATE OF names refer to FROM items by alias; nothing to scope.
    if (!lock.has_locking_clause()) ok = ok && refuse("0A000", "unsupported locking clause");
  }
  if (ok && derived) ok = guard_outputs(s);
  pop_guard_level();
  pop_with(nullptr);
  --depth_;
  return ok;
}

bool StatementWalker::walk_from_item(Node* item) {
  switch (item->node_case()) {
    case Node::kRangeVar:
      return scope_range_var(item);
    case Node::kRangeSubselect: {
      auto* sub = item->mutable_range_subselect();
      if (!sub->has_subquery() || !sub->subquery().has_select_stmt()) {
        return refuse("0A000", "unsupported subquery in FROM");
      }
      pg_query::SelectStmt* select = sub->mutable_subquery()->mutable_select_stmt();
      const int scoped_before = scoped_refs_;
      derived_select_ = true;
      if (!walk_select(select)) return false;
      if (sub->lateral() && scoped_refs_ != 0) {
        // Its conditions may read scoped rows of the items before it; merged
        // into this query they would run next to those items' scope.
        if (!fence(select, /*lateral=*/true)) return false;
      }
      if (scoped_refs_ != scoped_before || sub->lateral()) {
        add_guard_item(GuardItem{.alias = sub->has_alias() ? sub->alias().aliasname() : "",
                                 .derived = select,
                                 .plain_outputs = unsafe_outputs_.count(select) == 0});
      }
      return true;
    }
    case Node::kRangeFunction:
      return walk_fields(item->mutable_range_function());
    case Node::kRangeTableFunc:
      return walk_fields(item->mutable_range_table_func());
    case Node::kJoinExpr: {
      auto* join = item->mutable_join_expr();
      if ((join->using_clause_size() > 0 || join->is_natural()) && leak_rules_.app_comparisons()) {
        // The implied equality could be an app operator the planner runs on
        // every tenant's statistics and index entries; write it out in ON.
        return refuse("0A000",
                      "JOIN ... USING and NATURAL JOIN are not supported where the application "
                      "defines operators, types or casts: write the join condition in ON");
      }
      const std::size_t first_item = guard_levels_.back().items.size();
      if (!walk_from_item(join->mutable_larg())) return false;
      const std::size_t first_right = guard_levels_.back().items.size();
      if (!walk_from_item(join->mutable_rarg())) return false;
      if (join->has_quals() &&
          (!walk_node(join->mutable_quals()) ||
           !guard_clause(join->mutable_quals(), first_item, ClauseKind::kOn))) {
        return false;
      }
      // Above the join, an outer join's null-supplying side may be all NULLs.
      std::vector<GuardItem>& items = guard_levels_.back().items;
      const bool left_nullable =
          join->jointype() == pg_query::JOIN_RIGHT || join->jointype() == pg_query::JOIN_FULL;
      const bool right_nullable =
          join->jointype() == pg_query::JOIN_LEFT || join->jointype() == pg_query::JOIN_FULL;
      for (std::size_t i = first_item; i < items.size(); ++i) {
        if (i < first_right ? left_nullable : right_nullable) items[i].nullable = true;
        if (join->has_alias()) items[i].hidden = true;
      }
      return true;
    }
    case Node::kRangeTableSample: {
      auto* sample = item->mutable_range_table_sample();
      if (!sample->relation().has_range_var()) return refuse("0A000", "unsupported TABLESAMPLE");
      const pg_query::RangeVar& rv = sample->relation().range_var();
      const policy::TablePolicy* scoped = nullptr;
      if (!read_access(rv, &scoped)) return false;
      if (scoped != nullptr) {
        return refuse("0A000", "TABLESAMPLE on scoped table " + policy::to_string(scoped->name) +
                                   " is not supported");
      }
      const int parts = sample->method_size();
      if (parts == 0 || !sample->method(parts - 1).has_string()) {
        return refuse("0A000", "unsupported TABLESAMPLE method");
      }
      const std::string schema = parts >= 2 && sample->method(parts - 2).has_string()
                                     ? sample->method(parts - 2).string().sval()
                                     : "";
      if (auto refused =
              functions_.check_tablesample(schema, sample->method(parts - 1).string().sval())) {
        return refuse("42501", *refused);
      }
      for (Node& n : *sample->mutable_args()) {
        if (!walk_node(&n)) return false;
      }
      return !sample->has_repeatable() || walk_node(sample->mutable_repeatable());
    }
    default:
      return refuse("0A000", "unsupported FROM item " + node_type_name(*item));
  }
}

bool StatementWalker::read_access(const pg_query::RangeVar& rv,
                                  const policy::TablePolicy** scoped) {
  *scoped = nullptr;
  if (is_cte_name(rv)) return true;
  Target target;
  if (!resolve(rv, &target)) return false;
  const policy::Resolution& res = target.resolution;
  switch (res.kind) {
    case policy::Resolution::Kind::kCatalog:
      return true;
    case policy::Resolution::Kind::kDeniedCatalog:
      return refuse("42501", "permission denied for relation " + target.display);
    case policy::Resolution::Kind::kDefault:
      if (policy_.default_action == policy::Scope::kShared) return true;
      return refuse("42501", "permission denied for table " + target.display +
                                 ": it is not listed in the policy");
    case policy::Resolution::Kind::kTable:
      break;
  }
  switch (res.table->scope) {
    case policy::Scope::kShared:
      return true;
    case policy::Scope::kDeny:
      return refuse("42501", "permission denied for table " + target.display);
    case policy::Scope::kOwner:
    case policy::Scope::kTenantOwner:
      if (!require_owner_identity(target)) return false;
      break;
    case policy::Scope::kTenant:
      break;
    case policy::Scope::kPolicies:
      if (res.table->uses_user && !require_owner_identity(target)) return false;
      break;
  }
  *scoped = res.table;
  return true;
}

bool StatementWalker::scope_range_var(Node* item) {
  const pg_query::RangeVar& rv = item->range_var();
  const policy::TablePolicy* scoped = nullptr;
  if (!read_access(rv, &scoped)) return false;
  const std::string alias = rv.has_alias() ? rv.alias().aliasname() : rv.relname();
  if (scoped == nullptr) {
    if (pg_query::CommonTableExpr* cte = tainted_cte(rv)) {
      ++scoped_refs_;
      add_guard_item(
          GuardItem{.alias = alias,
                    .cte = cte,
                    .plain_outputs = unsafe_outputs_.count(&cte->ctequery().select_stmt()) == 0});
    }
    return true;
  }
  const policy::TablePolicy& table = *scoped;
  ++scoped_refs_;
  add_guard_item(GuardItem{.alias = alias,
                           .table = scoped,
                           .column_aliases = rv.has_alias() && rv.alias().colnames_size() > 0});
  // Built on the tree's arena and swapped in: assigning a heap-built node to
  // an arena-owned one copies it.
  Node* wrapped = gp::Arena::CreateMessage<Node>(item->GetArena());
  auto* sub = wrapped->mutable_range_subselect();
  if (rv.has_alias()) {
    *sub->mutable_alias() = rv.alias();
  } else {
    sub->mutable_alias()->set_aliasname(rv.relname());
  }
  auto* select = sub->mutable_subquery()->mutable_select_stmt();
  init_select(select, /*star=*/true);
  pg_query::RangeVar* inner = select->add_from_clause()->mutable_range_var();
  *inner = rv;
  inner->clear_alias();
  // Name the table the policy resolved, not whatever the server's
  // search_path would find first.
  inner->set_schemaname(table.name.schema);
  // Qualified with the table's own name so that a missing policy column is an
  // error instead of silently binding to a column of an outer query.
  *select->mutable_where_clause() = scope_predicate(table, rv.relname());
  if (!table.masks.empty()) {
    Node masked;
    if (!mask_wrap(table, *inner, std::move(*select->mutable_where_clause()), &masked)) {
      return false;
    }
    *sub->mutable_subquery() = std::move(masked);
    select = sub->mutable_subquery()->mutable_select_stmt();
  }
  add_wrap_edit(rv, table);
  if (item->GetArena() != nullptr) {
    item->UnsafeArenaSwap(wrapped);
  } else {
    item->Swap(wrapped);
    delete wrapped;
  }
  guard_levels_.back().items.back().wrap =
      item->mutable_range_subselect()->mutable_subquery()->mutable_select_stmt();
  wraps_.insert(guard_levels_.back().items.back().wrap);
  changed_ = true;
  return true;
}

void StatementWalker::add_wrap_edit(const pg_query::RangeVar& rv,
                                    const policy::TablePolicy& table) {
  if (!text_editable_) return;
  const int* position = nullptr;
  if (range_var_positions_ != nullptr) {
    for (const auto& [message, at] : *range_var_positions_) {
      if (message == &rv) position = &at;
    }
  }
  if (position == nullptr || *position < 0 || !rv.catalogname().empty()) {
    text_editable_ = false;
    return;
  }
  // The text scope_predicate's tree deparses to (the verification holds the
  // edited statement to the tree).
  const std::string qualifier = policy::quote_identifier(rv.relname()) + ".";
  auto equals = [&](const std::string& column, const std::string& marker) {
    return qualifier + policy::quote_identifier(column) + " = " + quoted_marker(marker);
  };
  std::string predicate;
  switch (table.scope) {
    case policy::Scope::kTenant:
      predicate = equals(table.tenant_column, markers_.tenant);
      break;
    case policy::Scope::kOwner:
      predicate = equals(table.owner_column, markers_.user);
      break;
    case policy::Scope::kTenantOwner:
      predicate = equals(table.tenant_column, markers_.tenant) + " AND " +
                  equals(table.owner_column, markers_.user);
      break;
    case policy::Scope::kShared:
    case policy::Scope::kDeny:
    case policy::Scope::kPolicies:
      text_editable_ = false;
      return;
  }
  std::string text = "(SELECT * FROM " + policy::quote_identifier(table.name.schema) + "." +
                     policy::quote_identifier(rv.relname()) + " WHERE " + predicate + ")";
  if (!rv.has_alias()) text += " " + policy::quote_identifier(rv.relname());
  text_edits_.push_back(TextEdit{static_cast<std::size_t>(*position), std::move(text)});
}

bool StatementWalker::walk_func_call(pg_query::FuncCall* call) {
  std::string schema;
  std::string name;
  const int parts = call->funcname_size();
  if (parts == 0 || !call->funcname(parts - 1).has_string()) {
    return refuse("0A000", "unsupported function name");
  }
  name = call->funcname(parts - 1).string().sval();
  if (parts >= 2 && call->funcname(parts - 2).has_string()) {
    schema = call->funcname(parts - 2).string().sval();
  }
  if (auto refused = functions_.check_call(schema, name)) return refuse("42501", *refused);
  return walk_fields(call);
}

bool StatementWalker::check_attribute_names(const gp::RepeatedPtrField<Node>& names, int first) {
  for (int i = first; i < names.size(); ++i) {
    const Node& n = names.Get(i);
    if (!n.has_string()) continue;  // A_Star, A_Indices
    if (auto refused = functions_.check_attribute(n.string().sval())) {
      return refuse("42501", *refused);
    }
  }
  return true;
}

bool StatementWalker::check_operator(const pg_query::A_Expr& expr) {
  std::string schema;
  std::string op;
  const int parts = expr.name_size();
  if (parts == 0 || !expr.name(parts - 1).has_string()) {
    return refuse("0A000", "unsupported operator name");
  }
  op = expr.name(parts - 1).string().sval();
  if (parts >= 2 && expr.name(parts - 2).has_string())
    schema = expr.name(parts - 2).string().sval();
  std::vector<std::string_view> ops = {op};
  switch (expr.kind()) {
    case pg_query::AEXPR_BETWEEN:
    case pg_query::AEXPR_NOT_BETWEEN:
    case pg_query::AEXPR_BETWEEN_SYM:
    case pg_query::AEXPR_NOT_BETWEEN_SYM:
      // parse_expr.c transformAExprBetween builds >= and <= (< and > negated).
      ops = {">=", "<=", "<", ">"};
      break;
    default:
      // IN, LIKE, ILIKE, SIMILAR, DISTINCT FROM and NULLIF carry the operator
      // they apply in their name (gram.y).
      break;
  }
  for (std::string_view o : ops) {
    if (auto refused = functions_.check_operator(schema, o)) return refuse("42501", *refused);
  }
  return true;
}

bool StatementWalker::check_sublink_operator(const pg_query::SubLink& link) {
  // x op ANY/ALL (subquery) and row comparisons name their operator; IN
  // (subquery) has none and applies = (parse_expr.c transformSubLink).
  const auto type = link.sub_link_type();
  if (type != pg_query::ANY_SUBLINK && type != pg_query::ALL_SUBLINK &&
      type != pg_query::ROWCOMPARE_SUBLINK) {
    return true;
  }
  const int parts = link.oper_name_size();
  std::string schema;
  std::string op = "=";
  if (parts > 0) {
    if (!link.oper_name(parts - 1).has_string()) {
      return refuse("0A000", "unsupported operator name");
    }
    op = link.oper_name(parts - 1).string().sval();
    if (parts >= 2 && link.oper_name(parts - 2).has_string()) {
      schema = link.oper_name(parts - 2).string().sval();
    }
  }
  if (auto refused = functions_.check_operator(schema, op)) return refuse("42501", *refused);
  return true;
}

bool StatementWalker::check_type_name(const pg_query::TypeName& type) {
  const int parts = type.names_size();
  if (parts == 0 || !type.names(parts - 1).has_string()) return true;  // %TYPE, pct_type: none
  std::string schema;
  if (parts >= 2 && type.names(parts - 2).has_string())
    schema = type.names(parts - 2).string().sval();
  if (auto refused = functions_.check_type(schema, type.names(parts - 1).string().sval())) {
    return refuse("42501", *refused);
  }
  return true;
}

bool StatementWalker::walk_node(Node* node) {
  if (++depth_ > kMaxWalkDepth) return refuse("54001", "statement is too deeply nested");
  bool ok = true;
  switch (node->node_case()) {
    case Node::kSubLink: {
      auto* link = node->mutable_sub_link();
      ok = check_sublink_operator(*link);
      if (ok && link->has_testexpr()) ok = walk_node(link->mutable_testexpr());
      if (ok && link->has_subselect()) {
        if (!link->subselect().has_select_stmt()) {
          ok = refuse("0A000", "unsupported subquery");
        } else {
          const int scoped_before = scoped_refs_;
          ok = walk_select(link->mutable_subselect()->mutable_select_stmt());
          if (scoped_refs_ != scoped_before) scoped_sublinks_.insert(link);
        }
      }
      break;
    }
    case Node::kFuncCall:
      ok = walk_func_call(node->mutable_func_call());
      break;
    case Node::kSelectStmt:
      ok = walk_select(node->mutable_select_stmt());
      break;
    case Node::kColumnRef:
      // schema.table.column names a FROM item by its schema, which the
      // derived table that scopes the item no longer has. (A ColumnRef holds
      // only String and A_Star fields: nothing below it to walk.)
      if (node->column_ref().fields_size() >= 3) {
        ok = refuse("0A000",
                    "column references qualified with a schema (schema.table.column) are not "
                    "supported; write table.column");
      } else if (node->column_ref().fields_size() == 2) {
        // x.f is the call f(x) when x is not a FROM item with a column f
        // (parse_expr.c transformColumnRef, case of two names: relation.column,
        // else column.field, which ParseFuncOrColumn may make f(column)).
        // The first name is a relation or column, never a call.
        ok = check_attribute_names(node->column_ref().fields(), 1);
      }
      break;
    case Node::kAIndirection: {
      // (x).f is the call f(x) when x has no field f (parse_expr.c
      // transformIndirection -> ParseFuncOrColumn with is_column).
      auto* ind = node->mutable_a_indirection();
      ok = check_attribute_names(ind->indirection(), 0) && walk_fields(ind);
      break;
    }
    // Leaves: nothing below them can name a relation or call a function.
    case Node::kAConst:
    case Node::kParamRef:
    case Node::kString:
    case Node::kInteger:
    case Node::kFloat:
    case Node::kBoolean:
    case Node::kBitString:
    case Node::kAStar:
    case Node::kSqlvalueFunction:
    case Node::kSetToDefault:
    case Node::kCurrentOfExpr:
      break;
    // The most common inner nodes, walked without reflection.
    case Node::kAExpr: {
      auto* e = node->mutable_a_expr();
      ok = check_operator(*e) && (!e->has_lexpr() || walk_node(e->mutable_lexpr())) &&
           (!e->has_rexpr() || walk_node(e->mutable_rexpr()));
      break;
    }
    case Node::kBoolExpr:
      for (Node& arg : *node->mutable_bool_expr()->mutable_args()) {
        if (!(ok = walk_node(&arg))) break;
      }
      break;
    case Node::kResTarget: {
      auto* rt = node->mutable_res_target();
      for (Node& n : *rt->mutable_indirection()) {
        if (!(ok = walk_node(&n))) break;
      }
      if (ok && rt->has_val()) ok = walk_node(rt->mutable_val());
      break;
    }
    case Node::kTypeCast: {
      auto* cast = node->mutable_type_cast();
      ok = (!cast->has_type_name() || check_type_name(cast->type_name())) &&
           (!cast->has_arg() || walk_node(cast->mutable_arg())) &&
           (!cast->has_type_name() || walk_fields(cast->mutable_type_name()));
      break;
    }
    case Node::kNullTest:
      ok = !node->null_test().has_arg() || walk_node(node->mutable_null_test()->mutable_arg());
      break;
    case Node::kSortBy:
      ok = !node->sort_by().has_node() || walk_node(node->mutable_sort_by()->mutable_node());
      break;
    case Node::kCaseExpr:
      // CASE x WHEN v compares with = (parse_expr.c transformCaseExpr).
      if (node->case_expr().has_arg()) {
        if (auto refused = functions_.check_operator("", "=")) {
          ok = refuse("42501", *refused);
          break;
        }
      }
      ok = walk_fields(node->mutable_case_expr());
      break;
    // Expressions and the pieces of clauses: walk every child.
    case Node::kTypeName:
    case Node::kNamedArgExpr:
    case Node::kCaseWhen:
    case Node::kCoalesceExpr:
    case Node::kMinMaxExpr:
    case Node::kBooleanTest:
    case Node::kAArrayExpr:
    case Node::kAIndices:
    case Node::kRowExpr:
    case Node::kWindowDef:
    case Node::kCollateClause:
    case Node::kList:
    case Node::kGroupingFunc:
    case Node::kGroupingSet:
    case Node::kMultiAssignRef:
    case Node::kDefElem:
    case Node::kXmlExpr:
    case Node::kXmlSerialize:
    case Node::kAlias:
    case Node::kIndexElem:
    case Node::kColumnDef:
    case Node::kRangeTableFuncCol:
    case Node::kLockingClause:
      ok = walk_fields(node->GetReflection()->MutableMessage(
          node, Node::descriptor()->FindFieldByNumber(static_cast<int>(node->node_case()))));
      break;
    case Node::NODE_NOT_SET:  // NULL inside a list, e.g. a function without a column list
      break;
    case Node::kRangeVar:
      ok = refuse("0A000", "unsupported relation reference to " + node->range_var().relname());
      break;
    default:
      ok = refuse("0A000", "unsupported construct " + node_type_name(*node));
      break;
  }
  --depth_;
  return ok;
}

bool StatementWalker::walk_plain_message(gp::Message* message) {
  if (!is_plain_allowed(message->GetDescriptor())) {
    return refuse("0A000", "unsupported construct " + message->GetDescriptor()->name());
  }
  return walk_fields(message);
}

bool StatementWalker::walk_fields(gp::Message* message) {
  const gp::Reflection* reflection = message->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const gp::FieldDescriptor* field : fields) {
    if (field->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    // LockingClause.locked_rels names FROM items by alias: not relation references.
    if (message->GetDescriptor() == pg_query::LockingClause::descriptor()) continue;
    const bool is_node = field->message_type() == Node::descriptor();
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(*message, field);
      for (int i = 0; i < n; ++i) {
        gp::Message* child = reflection->MutableRepeatedMessage(message, field, i);
        if (!(is_node ? walk_node(static_cast<Node*>(child)) : walk_plain_message(child))) {
          return false;
        }
      }
    } else {
      gp::Message* child = reflection->MutableMessage(message, field);
      if (!(is_node ? walk_node(static_cast<Node*>(child)) : walk_plain_message(child))) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace tenantgate::rewriter
