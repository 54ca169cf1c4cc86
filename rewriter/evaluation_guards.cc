// Evaluation order: a client condition that could fail or signal on a column
// value (leak_guard.h) must never run on a row outside the caller's scope,
// whatever plan the database chooses.
//
// - A leaky conjunct of WHERE, JOIN ... ON or ON CONFLICT ... WHERE that can
//   see a scoped table becomes `CASE WHEN <scope of each such table> THEN
//   <conjunct> ELSE false END`. For rows in scope the CASE has the
//   conjunct's value; other rows are filtered out by the scope anyway.
// - In HAVING the guard is `CASE WHEN bool_and(<scope>) IS NOT FALSE THEN ...`:
//   the aggregate keeps PostgreSQL from moving the condition into WHERE,
//   below the scope (and bool_and over rows already in scope is true; NULL,
//   for no rows, does not change the result either).
// - A derived table or CTE whose rows come from scoped tables cannot name the
//   scope of those tables in the outer query. When the outer query filters it
//   with a leaky condition (or with any condition on outputs that are not
//   plain columns, which the planner substitutes into the condition), it is
//   fenced: `OFFSET 0` on the derived table (PostgreSQL neither pulls up such
//   a subquery nor pushes conditions into it: is_simple_subquery in
//   prep/prepjointree.c, subquery_is_pushdown_safe in path/allpaths.c) and
//   `AS MATERIALIZED` on the CTE.
// - Leakproof conjuncts stay as they are, so indexes keep serving them.
//
// Expressions evaluated above the scan (the select list, GROUP BY, ORDER BY,
// window functions, aggregate FILTER, RETURNING, the SET of UPDATE) only see
// rows that passed every condition of the scan, the scope included.
#include "rewriter/leak_guard.h"
#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {

using pg_query::Node;

namespace {

constexpr std::string_view kFenceName = "tg_fence";

// `<scope> OR ROW(alias.*) IS NULL`: true also for the all-NULL row an outer
// join supplies. A stored row with every column NULL holds nothing to leak.
Node or_null_extended(Node scope, const std::string& alias) {
  Node is_null;
  auto* test = is_null.mutable_null_test();
  test->set_nulltesttype(pg_query::IS_NULL);
  auto* row = test->mutable_arg()->mutable_row_expr();
  row->set_row_format(pg_query::COERCE_EXPLICIT_CALL);
  auto* ref = row->add_args()->mutable_column_ref();
  ref->add_fields()->mutable_string()->set_sval(alias);
  ref->add_fields()->mutable_a_star();
  Node either;
  auto* any = either.mutable_bool_expr();
  any->set_boolop(pg_query::OR_EXPR);
  *any->add_args() = std::move(scope);
  *any->add_args() = std::move(is_null);
  return either;
}

}  // namespace

bool StatementWalker::fence(pg_query::SelectStmt* select, bool lateral) {
  if (dialect_ == Dialect::kPostgreSQL) {
    if (select->has_limit_offset() || select->has_limit_count()) return true;  // already one
    select->mutable_limit_offset()->mutable_a_const()->mutable_ival();
    select->set_limit_option(pg_query::LIMIT_OPTION_COUNT);
    mark_changed();
    return true;
  }
  // CockroachDB removes OFFSET 0 (EliminateOffset) but never inlines a
  // MATERIALIZED CTE (CanInlineWith): `WITH tg_fence AS MATERIALIZED
  // (<select>) SELECT * FROM tg_fence`.
  if (lateral) {
    return refuse("0A000",
                  "a LATERAL subquery over scoped rows that a condition could leak is not "
                  "supported on CockroachDB");
  }
  if (select->has_with_clause() && select->with_clause().ctes_size() == 1 &&
      select->with_clause().ctes(0).common_table_expr().ctename() == kFenceName) {
    return true;  // already fenced
  }
  pg_query::SelectStmt inner = std::move(*select);
  select->Clear();
  init_select(select, /*star=*/true);
  pg_query::RangeVar* from = select->add_from_clause()->mutable_range_var();
  from->set_relname(std::string(kFenceName));
  from->set_inh(true);
  from->set_relpersistence("p");
  auto* cte = select->mutable_with_clause()->add_ctes()->mutable_common_table_expr();
  cte->set_ctename(std::string(kFenceName));
  cte->set_ctematerialized(pg_query::CTEMaterializeAlways);
  *cte->mutable_ctequery()->mutable_select_stmt() = std::move(inner);
  mark_changed();
  return true;
}

pg_query::CommonTableExpr* StatementWalker::tainted_cte(const pg_query::RangeVar& rv) const {
  if (!rv.schemaname().empty() || !rv.catalogname().empty()) return nullptr;
  for (std::size_t i = cte_scopes_.size(); i-- > 0;) {
    if (cte_scopes_[i].count(rv.relname()) == 0) continue;
    // The innermost WITH that names it decides.
    auto found = tainted_ctes_[i].find(rv.relname());
    return found == tainted_ctes_[i].end() ? nullptr : found->second;
  }
  return nullptr;
}

void StatementWalker::resolve_guard_items(const Node& conjunct, std::size_t first_item,
                                          ClauseKind kind,
                                          std::vector<const GuardItem*>* out) const {
  // Only this level's items: a condition of this level that reaches a table
  // of an enclosing query is inside a subquery, and the condition of the
  // enclosing query that holds the subquery is guarded itself (a subquery
  // is leaky) or runs above the scan; LATERAL subqueries are fenced.
  const std::vector<GuardItem>& items = guard_levels_.back().items;
  auto add = [out](const GuardItem& item) {
    for (const GuardItem* seen : *out) {
      if (seen == &item) return;
    }
    out->push_back(&item);
  };
  auto add_all = [&]() {
    for (std::size_t i = first_item; i < items.size(); ++i) add(items[i]);
  };
  if (kind == ClauseKind::kHaving) {
    add_all();
    return;
  }
  ColumnQualifiers refs;
  collect_column_qualifiers(conjunct, &refs);
  bool unresolved = refs.unqualified;
  for (const std::string& qualifier : refs.qualifiers) {
    const GuardItem* match = nullptr;
    for (std::size_t i = first_item; i < items.size() && match == nullptr; ++i) {
      if (items[i].alias == qualifier && !items[i].hidden) match = &items[i];
    }
    if (match != nullptr) {
      add(*match);
    } else {
      // A qualifier that names no item holding scoped rows may still name a
      // composite column of one (`address.city`), a join alias, or a table
      // of an enclosing query: treat it as unqualified.
      unresolved = true;
    }
  }
  if (unresolved) add_all();
}

bool StatementWalker::scope_guard(const std::vector<const GuardItem*>& scoped, Node* out) {
  Node guard;
  for (const GuardItem* item : scoped) {
    if (item->hidden) {
      return refuse("0A000", "a condition that can fail on column values of " +
                                 policy::to_string(item->table->name) +
                                 " is not supported outside the aliased join that holds it");
    }
    if (item->column_aliases) {
      return refuse("0A000", "a condition that can fail on column values of " +
                                 policy::to_string(item->table->name) +
                                 " is not supported when its columns are renamed (" + item->alias +
                                 "(...))");
    }
    Node predicate = scope_predicate(*item->table, item->alias);
    if (item->nullable) predicate = or_null_extended(std::move(predicate), item->alias);
    and_into(&guard, std::move(predicate));  // one flat AND, as the parser builds it
  }
  *out = std::move(guard);
  return true;
}

bool StatementWalker::guard_outputs(pg_query::SelectStmt* select) {
  bool safe = true;
  if (select->op() != pg_query::SETOP_NONE) {
    safe =
        unsafe_outputs_.count(&select->larg()) == 0 && unsafe_outputs_.count(&select->rarg()) == 0;
  } else {
    // Guarding an output of a grouped or DISTINCT query would change what
    // GROUP BY, HAVING and DISTINCT ON match; such a query is fenced instead.
    bool grouped = select->group_clause_size() > 0 || select->has_having_clause() ||
                   select->distinct_clause_size() > 0;
    for (const Node& target : select->target_list()) {
      if (target.has_res_target() && target.res_target().has_val() &&
          leak_rules_.calls_aggregate(target.res_target().val())) {
        grouped = true;
      }
    }
    for (Node& target : *select->mutable_target_list()) {
      if (!target.has_res_target() || !target.res_target().has_val()) continue;
      Node* value = target.mutable_res_target()->mutable_val();
      // Computed above the scan, and so is any condition on it.
      if (!leak_rules_.is_leaky(*value) || leak_rules_.calls_aggregate(*value) ||
          calls_window_function(*value)) {
        continue;
      }
      std::vector<const GuardItem*> items;
      resolve_guard_items(*value, 0, ClauseKind::kWhere, &items);
      if (items.empty()) continue;  // reads no scoped rows
      // On CockroachDB a guarded output is folded like a guarded condition.
      bool only_tables = !grouped && dialect_ == Dialect::kPostgreSQL;
      for (const GuardItem* item : items) {
        if (item->table == nullptr || item->hidden || item->column_aliases) only_tables = false;
      }
      if (!only_tables) {
        safe = false;
        continue;
      }
      // The enclosing query may substitute this output into a condition it
      // evaluates next to the scope: the output carries its own guard.
      Node guard;
      if (!scope_guard(items, &guard)) return false;
      *value = case_guard_value(std::move(guard), std::move(*value));
      mark_changed();
    }
  }
  if (!safe) unsafe_outputs_.insert(select);
  return true;
}

bool StatementWalker::gate_exists(Node* conjunct, const std::vector<const GuardItem*>& items) {
  // A guarded EXISTS is no longer turned into a semi-join, and PostgreSQL
  // then runs it as a subplan over the inner tables' whole scope. Instead the
  // subquery gets the outer tables' scope as one more condition. It refers
  // to outer columns only, so PostgreSQL evaluates it before anything else
  // of the subquery when the EXISTS stays a subplan (a pseudoconstant qual:
  // create_gating_plan in plan/createplan.c), and pushes it to the outer
  // scan when the EXISTS becomes a join (convert_EXISTS_sublink_to_join in
  // plan/subselect.c keeps the outer references of WHERE). The subquery's
  // own conditions that read outer columns were guarded with its scoped
  // tables (its level resolves outer names to all of them), so in a join
  // they stay join conditions, on outer rows in scope.
  if (dialect_ != Dialect::kPostgreSQL || items.empty()) return false;
  Node* node = conjunct;
  if (node->has_bool_expr() && node->bool_expr().boolop() == pg_query::NOT_EXPR &&
      node->bool_expr().args_size() == 1) {
    node = node->mutable_bool_expr()->mutable_args(0);
  }
  if (!node->has_sub_link() || node->sub_link().sub_link_type() != pg_query::EXISTS_SUBLINK ||
      !node->sub_link().subselect().has_select_stmt()) {
    return false;
  }
  pg_query::SelectStmt* sub = node->mutable_sub_link()->mutable_subselect()->mutable_select_stmt();
  if (sub->op() != pg_query::SETOP_NONE) return false;
  bool inner_scoped = false;
  for (const Node& item : sub->from_clause()) {
    inner_scoped = inner_scoped || contains_node(item, [&](const Node& n) {
                     return n.has_range_subselect() &&
                            n.range_subselect().subquery().has_select_stmt() &&
                            wraps_.count(&n.range_subselect().subquery().select_stmt()) != 0;
                   });
  }
  if (!inner_scoped) return false;
  const std::vector<std::string> bound = from_names(*sub);
  for (const GuardItem* item : items) {
    if (item->table == nullptr || item->hidden || item->column_aliases) return false;
    if (std::find(bound.begin(), bound.end(), item->alias) != bound.end()) return false;
  }
  Node gate;
  if (!scope_guard(items, &gate)) return false;
  and_into(sub->mutable_where_clause(), std::move(gate));
  return true;
}

bool StatementWalker::guard_clause(Node* clause, std::size_t first_item, ClauseKind kind) {
  if (clause == nullptr || clause->node_case() == Node::NODE_NOT_SET) return true;
  const GuardLevel& level = guard_levels_.back();
  bool fence_candidates = false;
  for (std::size_t i = first_item; i < level.items.size(); ++i) {
    if (level.items[i].table == nullptr) fence_candidates = true;
  }
  for (Node* conjunct : conjuncts(clause)) {
    const bool leaky = leak_rules_.is_leaky(*conjunct);
    if (!leaky && !fence_candidates) continue;
    std::vector<const GuardItem*> items;
    resolve_guard_items(*conjunct, first_item, kind, &items);
    std::vector<const GuardItem*> scoped;
    std::optional<std::string> app_op;
    if (leaky) app_op = leak_rules_.app_operator(*conjunct);
    if (app_op && items.empty() && contains_node(*conjunct, [this](const Node& n) {
          return n.has_sub_link() && scoped_sublinks_.count(&n.sub_link()) != 0;
        })) {
      // No table of this level to guard with, and the subquery may be
      // pulled up into a join the planner estimates with the operator.
      return refuse("0A000", "the application's operator " + *app_op +
                                 " is not supported with a subquery in a condition that no "
                                 "scoped table of its query guards");
    }
    for (const GuardItem* item : items) {
      if (item->table == nullptr && app_op) {
        // Only a guard keeps the planner from running the operator on the
        // statistics of every tenant's rows; a fence does not.
        return refuse("0A000", "the application's operator " + *app_op +
                                   " is not supported in a condition on a derived table or CTE "
                                   "over scoped rows");
      }
      if (item->table != nullptr) {
        scoped.push_back(item);
      } else if (leaky || !item->plain_outputs) {
        if (item->derived != nullptr && !fence(item->derived)) return false;
        if (item->cte != nullptr &&
            item->cte->ctematerialized() != pg_query::CTEMaterializeAlways) {
          item->cte->set_ctematerialized(pg_query::CTEMaterializeAlways);
          mark_changed();
        }
      }
    }
    if (!leaky || scoped.empty()) continue;
    if (kind == ClauseKind::kHaving && leak_rules_.calls_aggregate(*conjunct)) continue;
    if (kind != ClauseKind::kHaving && !app_op && scoped.size() == items.size() &&
        gate_exists(conjunct, scoped)) {
      continue;
    }
    if (dialect_ == Dialect::kCockroachDB && kind != ClauseKind::kHaving) {
      // Next to the scope predicate CockroachDB folds the guard away: read
      // the table through a fence instead (the guard stays, harmless).
      for (const GuardItem* item : scoped) {
        if (item->wrap == nullptr) {
          return refuse("0A000", "a condition that can fail on column values of " +
                                     policy::to_string(item->table->name) +
                                     " is not supported here on CockroachDB");
        }
        if (!fence(item->wrap)) return false;
      }
    }
    Node guard;
    if (!scope_guard(scoped, &guard)) return false;
    if (kind == ClauseKind::kHaving) {
      Node aggregate;
      auto* call = aggregate.mutable_func_call();
      call->add_funcname()->mutable_string()->set_sval("bool_and");
      *call->add_args() = std::move(guard);
      call->set_funcformat(pg_query::COERCE_EXPLICIT_CALL);
      Node test;
      auto* bt = test.mutable_boolean_test();
      *bt->mutable_arg() = std::move(aggregate);
      bt->set_booltesttype(pg_query::IS_NOT_FALSE);
      guard = std::move(test);
    }
    *conjunct = case_guard(std::move(guard), std::move(*conjunct));
    mark_changed();
  }
  return true;
}

}  // namespace tenantgate::rewriter
