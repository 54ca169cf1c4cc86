// Row policies (policy::Scope::kPolicies): the predicate a table's policies
// make for a command, and the WITH CHECK verification of written rows.
//
// Reads and UPDATE/DELETE targets get the USING predicate the way scoped
// tables get theirs (scope_injector.cc, write_checks.cc). Written rows are
// verified in the statement itself: an INSERT or UPDATE becomes a
// data-modifying CTE whose RETURNING rows pass through a CASE that fails the
// statement for a row the check expressions do not accept, so nothing is
// written (the statement is atomic), as with row-level security.
// The result says which statements are so reshaped (ReshapedWrite), and the
// error carries kPolicyViolationMarker, so that the proxy can give the client
// the reply of the statement it wrote (proxy/reshaped_replies.h).
#include <set>
#include <string>
#include <utility>

#include "policy/policy_expression.h"
#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;
using pg_query::Node;

Node bool_const(bool value) {
  Node n;
  n.mutable_a_const()->mutable_boolval()->set_boolval(value);
  return n;
}

Node combine(pg_query::BoolExprType op, std::vector<Node> args) {
  if (args.size() == 1) return std::move(args.front());
  Node n;
  auto* b = n.mutable_bool_expr();
  b->set_boolop(op);
  for (Node& a : args) {
    // Flat, as the parser builds `a AND b AND c`.
    if (a.has_bool_expr() && a.bool_expr().boolop() == op) {
      for (Node& inner : *a.mutable_bool_expr()->mutable_args()) *b->add_args() = std::move(inner);
    } else {
      *b->add_args() = std::move(a);
    }
  }
  return n;
}

bool applies(const policy::RowPolicy& p, policy::PolicyCommand command) {
  return p.command == policy::PolicyCommand::kAll || p.command == command;
}

// Whether `msg` holds a column reference (an UPDATE SET value that reads the
// table needs SELECT rights, which bring in the SELECT policies).
bool has_column_ref(const gp::Message& msg) {
  if (msg.GetDescriptor() == pg_query::ColumnRef::descriptor()) return true;
  const gp::Reflection* r = msg.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(msg, f); ++i) {
        if (has_column_ref(r->GetRepeatedMessage(msg, f, i))) return true;
      }
    } else if (has_column_ref(r->GetMessage(msg, f))) {
      return true;
    }
  }
  return false;
}

std::string sql_string(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// The aliases the rewriter gives its own parts of a reshaped statement (the
// written rows, the masked derived table, the policy's subqueries): a client
// reference to one would read rows past the checks.
bool is_internal_alias(const std::string& name) {
  static const char* const kNames[] = {"tg_written", "tg_w",  "tg_row",    "tg_updated",
                                       "tg_all",     "tg_ok", "tg_masked", "tg_insert_source"};
  for (const char* k : kNames) {
    if (name == k) return true;
  }
  return name.starts_with("tg_p_");
}

// The aliases a policy expression's subqueries give their FROM items get
// rewriter-private names (tg_p_<alias>), with the references to them, so
// that a client alias of the same name for the policy's table is not
// captured by them (`UPDATE records m` with a policy reading
// `record_members m`).
void collect_aliases(gp::Message* msg, const std::string& table_name,
                     std::set<std::string>* names) {
  if (msg->GetDescriptor() == pg_query::Alias::descriptor()) {
    auto* alias = static_cast<pg_query::Alias*>(msg);
    if (alias->aliasname() != table_name) {
      names->insert(alias->aliasname());
      alias->set_aliasname("tg_p_" + alias->aliasname());
    }
    return;
  }
  const gp::Reflection* r = msg->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
        collect_aliases(r->MutableRepeatedMessage(msg, f, i), table_name, names);
      }
    } else {
      collect_aliases(r->MutableMessage(msg, f), table_name, names);
    }
  }
}

void rename_alias_refs(gp::Message* msg, const std::set<std::string>& names) {
  if (msg->GetDescriptor() == pg_query::ColumnRef::descriptor()) {
    auto* ref = static_cast<pg_query::ColumnRef*>(msg);
    if (ref->fields_size() >= 2 && ref->fields(0).has_string() &&
        names.contains(ref->fields(0).string().sval())) {
      auto* first = ref->mutable_fields(0)->mutable_string();
      first->set_sval("tg_p_" + first->sval());
    }
    return;
  }
  const gp::Reflection* r = msg->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
        rename_alias_refs(r->MutableRepeatedMessage(msg, f, i), names);
      }
    } else {
      rename_alias_refs(r->MutableMessage(msg, f), names);
    }
  }
}

void privatize_aliases(Node* expression, const std::string& table_name) {
  std::set<std::string> names;
  collect_aliases(expression, table_name, &names);
  if (!names.empty()) rename_alias_refs(expression, names);
}

}  // namespace

bool update_reads_target(const pg_query::UpdateStmt& update) {
  if (update.has_where_clause() || update.returning_list_size() > 0 ||
      update.from_clause_size() > 0) {
    return true;
  }
  for (const Node& t : update.target_list()) {
    if (has_column_ref(t)) return true;
  }
  return false;
}

bool StatementWalker::instantiate_expression(Node* node, const policy::TablePolicy& table,
                                             const std::string& qualifier, int subquery_depth) {
  switch (node->node_case()) {
    case Node::kFuncCall: {
      const auto& call = node->func_call();
      const int n = call.funcname_size();
      if (n == 2 && call.funcname(0).has_string() &&
          call.funcname(0).string().sval() == "tenantgate") {
        const std::string& name = call.funcname(1).string().sval();
        if (name == "tenant") {
          *node = marker_const(IdentityField::kTenant);
          return true;
        }
        if (name == "user_id") {
          if (!shape_.has_user) {
            return refuse("42501", "permission denied for table " + policy::to_string(table.name) +
                                       ": its policy needs the caller's user and the connection "
                                       "has no user identity");
          }
          *node = marker_const(IdentityField::kUser);
          return true;
        }
        if (name == "claim") {
          const std::size_t k = claims_.size();
          claims_.push_back(call.args(0).a_const().sval().sval());
          Node cast;
          auto* tc = cast.mutable_type_cast();
          tc->mutable_arg()->mutable_a_const()->mutable_sval()->set_sval(claim_marker(markers_, k));
          auto* type = tc->mutable_type_name();
          type->add_names()->mutable_string()->set_sval("text");
          type->set_typemod(-1);
          *node = std::move(cast);
          return true;
        }
        return refuse("42501", "unknown function tenantgate." + name);
      }
      break;
    }
    case Node::kColumnRef: {
      auto* ref = node->mutable_column_ref();
      if (ref->fields_size() == 1 && subquery_depth == 0 && ref->fields(0).has_string()) {
        Node column = ref->fields(0);
        ref->clear_fields();
        ref->add_fields()->mutable_string()->set_sval(qualifier);
        *ref->add_fields() = std::move(column);
      } else if (ref->fields_size() == 2 && ref->fields(0).has_string() &&
                 ref->fields(0).string().sval() == table.name.name) {
        ref->mutable_fields(0)->mutable_string()->set_sval(qualifier);
      }
      return true;
    }
    case Node::kSelectStmt:
      return instantiate_expression_fields(node->mutable_select_stmt(), table, qualifier,
                                           subquery_depth + 1);
    default:
      break;
  }
  return instantiate_expression_fields(node, table, qualifier, subquery_depth);
}

bool StatementWalker::instantiate_expression_fields(gp::Message* msg,
                                                    const policy::TablePolicy& table,
                                                    const std::string& qualifier,
                                                    int subquery_depth) {
  const gp::Reflection* r = msg->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    auto visit = [&](gp::Message* child) {
      if (child->GetDescriptor() == Node::descriptor()) {
        return instantiate_expression(static_cast<Node*>(child), table, qualifier, subquery_depth);
      }
      return instantiate_expression_fields(child, table, qualifier, subquery_depth);
    };
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
        if (!visit(r->MutableRepeatedMessage(msg, f, i))) return false;
      }
    } else if (!visit(r->MutableMessage(msg, f))) {
      return false;
    }
  }
  return true;
}

Node StatementWalker::policy_predicate(const policy::TablePolicy& table,
                                       const std::string& qualifier, policy::PolicyCommand command,
                                       bool check) {
  std::vector<const policy::PolicyExpression*> permissive;
  std::vector<const policy::PolicyExpression*> restrictive;
  for (const policy::RowPolicy& p : table.policies) {
    if (!applies(p, command)) continue;
    const policy::PolicyExpression* e =
        check && p.check_expr != nullptr ? p.check_expr.get() : p.using_expr.get();
    if (e == nullptr) continue;
    (p.permissive ? permissive : restrictive).push_back(e);
  }
  if (permissive.empty()) return bool_const(false);
  auto build = [&](const policy::PolicyExpression* e) {
    Node n = e->tree;
    privatize_aliases(&n, table.name.name);
    if (!instantiate_expression(&n, table, qualifier, 0)) return bool_const(false);
    // The expression's subqueries read other policy tables: walk them like
    // client subqueries so that each gets its own policies. What the walker
    // keeps per query level is saved around it: this runs in the middle of
    // the walk of the client's statement.
    const int scoped_refs = scoped_refs_;
    const bool derived = derived_select_;
    derived_select_ = false;
    push_guard_level();
    if (!walk_node(&n)) n = bool_const(false);
    pop_guard_level();
    scoped_refs_ = scoped_refs;
    derived_select_ = derived;
    return n;
  };
  std::vector<Node> any;
  for (const auto* e : permissive) any.push_back(build(e));
  std::vector<Node> all;
  Node disjunction = combine(pg_query::OR_EXPR, std::move(any));
  // A bare OR inside an AND keeps its parentheses in the deparse; the tree
  // holds it as one argument either way.
  all.push_back(std::move(disjunction));
  for (const auto* e : restrictive) all.push_back(build(e));
  return combine(pg_query::AND_EXPR, std::move(all));
}

bool StatementWalker::add_write_check(Node* stmt) {
  const PendingCheck pending = std::move(*pending_check_);
  pending_check_.reset();
  const policy::TablePolicy& table = *pending.table;
  const std::string q = pending.qualifier;

  // Row-level security's messages (PostgreSQL's ExecWithCheckOptions), with
  // the relation's bare name, behind the marker the proxy recognises.
  const std::string relation = "for table \"" + table.name.name + "\"";
  const std::string marker(kPolicyViolationMarker);
  const std::string message =
      marker + "new row violates row-level security policy " + relation + marker;
  const std::string conflict_message =
      marker + "new row violates row-level security policy (USING expression) " + relation + marker;
  const std::string qi = policy::quote_identifier(q);
  auto failure = [&](const std::string& text, const std::string& row) {
    // Row-dependent, so that the planner cannot fold it into a constant error.
    return "pg_catalog.int4(pg_catalog.concat(" + sql_string(text) +
           ", pg_catalog.left(pg_catalog.concat(" + row + "), 0))) = 0";
  };
  auto with_select = [&](Node n) {
    if (!pending.reads) return n;
    std::vector<Node> parts;
    parts.push_back(std::move(n));
    parts.push_back(policy_predicate(table, q, policy::PolicyCommand::kSelect, false));
    return combine(pg_query::AND_EXPR, std::move(parts));
  };

  if (pending.on_conflict) {
    // RLS holds the proposed row (EXCLUDED) to the INSERT checks even when it
    // turns into an update: the DO UPDATE's WHERE fails the statement first.
    pg_query::ParseResult guard;
    if (parse_sql("SELECT CASE WHEN true THEN true ELSE " + failure(message, "excluded") + " END",
                  &guard)) {
      return refuse("0A000", "cannot build the policy check");
    }
    Node proposed = guard.stmts(0).stmt().select_stmt().target_list(0).res_target().val();
    std::vector<Node> parts;
    parts.push_back(policy_predicate(table, "excluded", policy::PolicyCommand::kInsert, true));
    if (pending.reads) {
      parts.push_back(policy_predicate(table, "excluded", policy::PolicyCommand::kSelect, false));
    }
    *proposed.mutable_case_expr()->mutable_args(0)->mutable_case_when()->mutable_expr() =
        combine(pg_query::AND_EXPR, std::move(parts));
    and_into(stmt->mutable_insert_stmt()->mutable_on_conflict_clause()->mutable_where_clause(),
             std::move(proposed));
  }

  std::string written = qi + ".*";
  std::string from = "tg_written AS " + qi;
  std::string row_check = "true";
  if (pending.on_conflict) {
    // Which written rows were updated (xmax set) and which inserted: each is
    // held to its own command's checks.
    written = qi + " AS tg_row, " + qi + ".xmax::text <> '0' AS tg_updated";
    from = "tg_written AS tg_w, LATERAL (SELECT (tg_w.tg_row).*) AS " + qi;
    row_check = "CASE WHEN tg_w.tg_updated THEN true ELSE true END";
  }
  if (pending.expected_rows >= 0) {
    // The aggregate always yields its one row (or the error), and the
    // LATERAL reference with OFFSET 0 keeps it the outer side of the join,
    // so it runs even when nothing was written.
    from = "(SELECT true AS tg_ok FROM tg_written HAVING CASE WHEN count(*) = " +
           std::to_string(pending.expected_rows) + " THEN true ELSE " +
           failure(conflict_message, "count(*)") +
           " END) AS tg_all, LATERAL (SELECT * FROM tg_written WHERE tg_all.tg_ok OFFSET 0) AS "
           "tg_w, LATERAL (SELECT (tg_w.tg_row).*) AS " +
           qi;
  }
  const std::string text = "WITH tg_written AS (DELETE FROM tg_written RETURNING " + written +
                           ") SELECT FROM " + from + " WHERE CASE WHEN " + row_check +
                           " THEN true ELSE " + failure(message, qi) + " END";
  pg_query::ParseResult parsed;
  if (auto r = parse_sql(text, &parsed)) return refuse("0A000", "cannot build the policy check");
  Node outer = parsed.stmts(0).stmt();
  auto* select = outer.mutable_select_stmt();
  auto* when =
      select->mutable_where_clause()->mutable_case_expr()->mutable_args(0)->mutable_case_when();
  if (pending.on_conflict) {
    auto* by_command = when->mutable_expr()->mutable_case_expr();
    *by_command->mutable_args(0)->mutable_case_when()->mutable_result() =
        with_select(policy_predicate(table, q, policy::PolicyCommand::kUpdate, true));
    *by_command->mutable_defresult() =
        with_select(policy_predicate(table, q, policy::PolicyCommand::kInsert, true));
  } else {
    *when->mutable_expr() = with_select(policy_predicate(table, q, pending.command, true));
  }
  if (refusal_) return false;

  // The client's own WITH goes to the outer statement, ahead of tg_written.
  gp::RepeatedPtrField<Node>* returning = nullptr;
  pg_query::WithClause* client_with = nullptr;
  if (stmt->has_insert_stmt()) {
    auto* ins = stmt->mutable_insert_stmt();
    returning = ins->mutable_returning_list();
    if (ins->has_with_clause()) client_with = ins->mutable_with_clause();
  } else {
    auto* upd = stmt->mutable_update_stmt();
    returning = upd->mutable_returning_list();
    if (upd->has_with_clause()) client_with = upd->mutable_with_clause();
  }
  gp::RepeatedPtrField<Node> client_returning = *returning;
  reshaped_write_ = ReshapedWrite{
      stmt->has_insert_stmt() ? ReshapedWrite::Command::kInsert : ReshapedWrite::Command::kUpdate,
      !client_returning.empty()};
  returning->Clear();
  for (const Node& r : select->with_clause()
                           .ctes(0)
                           .common_table_expr()
                           .ctequery()
                           .delete_stmt()
                           .returning_list()) {
    *returning->Add() = r;
  }
  pg_query::WithClause with = select->with_clause();
  if (client_with != nullptr) {
    for (const Node& cte : client_with->ctes()) {
      if (cte.common_table_expr().ctename() == "tg_written") {
        return refuse("0A000", "the CTE name tg_written is reserved by tenantgate");
      }
    }
    pg_query::WithClause merged = *client_with;
    *merged.add_ctes() = with.ctes(0);
    with = std::move(merged);
    if (stmt->has_insert_stmt()) {
      stmt->mutable_insert_stmt()->clear_with_clause();
    } else {
      stmt->mutable_update_stmt()->clear_with_clause();
    }
  }
  auto* cte = with.mutable_ctes(with.ctes_size() - 1)->mutable_common_table_expr();
  *cte->mutable_ctequery() = *stmt;
  *select->mutable_with_clause() = std::move(with);
  for (const Node& r : client_returning) {
    Node* target = select->add_target_list();
    *target = r;
    // RETURNING * names the written row, not the helper columns beside it.
    auto* val = target->mutable_res_target()->mutable_val();
    if (val->has_column_ref() && val->column_ref().fields_size() == 1 &&
        val->column_ref().fields(0).has_a_star()) {
      val->mutable_column_ref()->clear_fields();
      val->mutable_column_ref()->add_fields()->mutable_string()->set_sval(q);
      val->mutable_column_ref()->add_fields()->mutable_a_star();
    }
  }
  *stmt = std::move(outer);
  mark_changed();
  return true;
}

bool StatementWalker::mask_wrap(const policy::TablePolicy& table, const pg_query::RangeVar& inner,
                                Node predicate, Node* out) {
  const std::string rel = policy::quote_identifier(inner.relname());
  std::string values;
  for (const policy::ColumnMask& m : table.masks) {
    const std::string col = policy::quote_identifier(m.column);
    if (!values.empty()) values += ", ";
    values += sql_string(m.column) + ", CASE WHEN false THEN " + rel + "." + col +
              "::text ELSE NULL::text END";
  }
  const std::string text =
      "SELECT tg_masked.* FROM " + policy::quote_identifier(table.name.schema) + "." + rel +
      " CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(" + rel +
      ", pg_catalog.jsonb_build_object(" + values + ")) AS tg_masked WHERE true";
  pg_query::ParseResult parsed;
  if (parse_sql(text, &parsed)) return refuse("0A000", "cannot build the column masks");
  *out = parsed.stmts(0).stmt();
  auto* select = out->mutable_select_stmt();
  // The scanned relation is the client's reference (ONLY, inheritance) with
  // the schema the policy resolved.
  auto* join = select->mutable_from_clause(0)->mutable_join_expr();
  pg_query::RangeVar scanned = inner;
  *join->mutable_larg()->mutable_range_var() = std::move(scanned);
  auto* build = join->mutable_rarg()
                    ->mutable_range_function()
                    ->mutable_functions(0)
                    ->mutable_list()
                    ->mutable_items(0)
                    ->mutable_func_call()
                    ->mutable_args(1)
                    ->mutable_func_call();
  for (std::size_t i = 0; i < table.masks.size(); ++i) {
    const policy::ColumnMask& m = table.masks[i];
    auto* value = build->mutable_args(static_cast<int>(2 * i + 1))->mutable_case_expr();
    auto instantiate = [&](const policy::PolicyExpression& e) {
      Node n = e.tree;
      privatize_aliases(&n, table.name.name);
      if (!instantiate_expression(&n, table, inner.relname(), 0)) return Node();
      const int scoped_refs = scoped_refs_;
      const bool derived = derived_select_;
      derived_select_ = false;
      push_guard_level();
      if (!walk_node(&n)) n = Node();
      pop_guard_level();
      scoped_refs_ = scoped_refs;
      derived_select_ = derived;
      return n;
    };
    if (m.unless != nullptr) {
      *value->mutable_args(0)->mutable_case_when()->mutable_expr() = instantiate(*m.unless);
    }
    // ELSE (<mask>)::text
    *value->mutable_defresult()->mutable_type_cast()->mutable_arg() = instantiate(*m.mask);
  }
  *select->mutable_where_clause() = std::move(predicate);
  return !refusal_;
}

bool StatementWalker::check_masked_reads(const policy::TablePolicy& table, const gp::Message& part,
                                         const std::string& alias, const char* where) {
  if (part.GetDescriptor() == pg_query::ColumnRef::descriptor()) {
    const auto& ref = static_cast<const pg_query::ColumnRef&>(part);
    const int n = ref.fields_size();
    for (const Node& f : ref.fields()) {
      if (f.has_string() && is_internal_alias(f.string().sval())) {
        return refuse("0A000", std::string(where) + " may not refer to " + f.string().sval() +
                                   ", a name reserved by tenantgate");
      }
    }
    if (table.masks.empty()) return true;
    const std::string denied = std::string(where) + " may not read all columns of " +
                               policy::to_string(table.name) + ", which has column masks";
    if (n == 0 || ref.fields(n - 1).has_a_star()) return refuse("0A000", denied);
    if (!ref.fields(n - 1).has_string()) return refuse("0A000", denied);
    const std::string& name = ref.fields(n - 1).string().sval();
    for (const policy::ColumnMask& m : table.masks) {
      if (name == m.column) {
        return refuse("0A000", std::string(where) + " may not read masked column " + m.column +
                                   " of " + policy::to_string(table.name));
      }
    }
    auto names_target = [&](const std::string& s) { return s == alias || s == table.name.name; };
    // A lone name that is the target's is its whole row (PostgreSQL falls
    // back to the row when no column has that name).
    if (n == 1 && names_target(name)) return refuse("0A000", denied);
    if (n >= 2) {
      // `t.f` is f(t) when t has no column f: a function of the whole row.
      // Unsure which it is, a name that is also a function's is refused.
      bool qualified_by_target = false;
      for (int i = 0; i < n - 1; ++i) {
        if (ref.fields(i).has_string() && names_target(ref.fields(i).string().sval())) {
          qualified_by_target = true;
        }
      }
      bool function_name = policy::find_builtin_function("pg_catalog", name) != nullptr ||
                           policy::find_builtin_function("information_schema", name) != nullptr ||
                           names_target(name);
      for (const auto& fn : policy_.app_functions) {
        if (fn.first.name == name) function_name = true;
      }
      // Any function may run in deny-list mode: only unqualified columns.
      if (policy_.function_mode == policy::FunctionMode::kDenyList) function_name = true;
      if (qualified_by_target && function_name) {
        return refuse("0A000", denied);
      }
    }
    return true;
  }
  const gp::Reflection* r = part.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(part, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(part, f); ++i) {
        if (!check_masked_reads(table, r->GetRepeatedMessage(part, f, i), alias, where)) {
          return false;
        }
      }
    } else if (!check_masked_reads(table, r->GetMessage(part, f), alias, where)) {
      return false;
    }
  }
  return true;
}

}  // namespace tenantgate::rewriter
