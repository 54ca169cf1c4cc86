// Writes: INSERT, UPDATE and DELETE against scoped tables. Policy columns must
// carry the caller's values (filled in when missing, checked when constant,
// deferred to Bind when a parameter); the rows an UPDATE or DELETE can touch
// are limited by adding the scope predicate to its WHERE clause.
#include <utility>

#include "rewriter/statement_walker.h"

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;
using pg_query::Node;

struct PolicyColumn {
  IdentityField field;
  std::string column;
};

std::vector<PolicyColumn> policy_columns(const policy::TablePolicy& table) {
  std::vector<PolicyColumn> out;
  if (table.scope == policy::Scope::kTenant || table.scope == policy::Scope::kTenantOwner) {
    out.push_back({IdentityField::kTenant, table.tenant_column});
  }
  if (table.scope == policy::Scope::kOwner || table.scope == policy::Scope::kTenantOwner) {
    out.push_back({IdentityField::kUser, table.owner_column});
  }
  if (table.scope == policy::Scope::kPolicies) {
    // A shorthand scope next to policies keeps filling its columns.
    if (!table.tenant_column.empty()) out.push_back({IdentityField::kTenant, table.tenant_column});
    if (!table.owner_column.empty()) out.push_back({IdentityField::kUser, table.owner_column});
  }
  return out;
}

// Casts that can wrap a constant or parameter for a policy column without
// changing which value it denotes.
bool is_simple_cast(const pg_query::TypeName& type) {
  if (type.typmods_size() != 0 || type.array_bounds_size() != 0 || type.setof() ||
      type.names_size() == 0 || !type.names(type.names_size() - 1).has_string()) {
    return false;
  }
  const std::string& name = type.names(type.names_size() - 1).string().sval();
  return name == "text" || name == "varchar" || name == "int2" || name == "int4" ||
         name == "int8" || name == "uuid" || name == "numeric";
}

std::string qualifier_of(const pg_query::RangeVar& rv) {
  return rv.has_alias() ? rv.alias().aliasname() : rv.relname();
}

}  // namespace

bool StatementWalker::writable_target(const pg_query::RangeVar& rv, const char* verb, Target* out) {
  if (!resolve(rv, out)) return false;
  const policy::Resolution& res = out->resolution;
  if (res.kind != policy::Resolution::Kind::kTable) {
    return refuse("42501", std::string("permission denied: ") + verb + " on " + out->display +
                               " is not allowed");
  }
  switch (res.table->scope) {
    case policy::Scope::kShared:
      return refuse("42501", std::string("permission denied: ") + verb + " on shared table " +
                                 out->display + " is not allowed");
    case policy::Scope::kDeny:
      return refuse("42501", "permission denied for table " + out->display);
    case policy::Scope::kOwner:
    case policy::Scope::kTenantOwner:
      return require_owner_identity(*out);
    case policy::Scope::kTenant:
      return true;
    case policy::Scope::kPolicies:
      return !res.table->uses_user || require_owner_identity(*out);
  }
  return refuse("42501", "permission denied for table " + out->display);
}

void StatementWalker::qualify(pg_query::RangeVar* rv, const policy::TablePolicy& table) {
  // Write to the table the policy resolved, whatever the server's search_path
  // would find first.
  if (rv->schemaname() != table.name.schema) {
    rv->set_schemaname(table.name.schema);
    mark_changed();
  }
}

bool StatementWalker::check_policy_value(Node* value, IdentityField field, const Target& target,
                                         const std::string& column, bool allow_default_fill) {
  Node* v = value;
  std::string cast;  // checked against the identity's type when it is known
  if (v->has_type_cast() && is_simple_cast(v->type_cast().type_name()) &&
      (v->type_cast().arg().has_a_const() || v->type_cast().arg().has_param_ref())) {
    const auto& names = v->type_cast().type_name().names();
    cast = names[names.size() - 1].string().sval();
    v = v->mutable_type_cast()->mutable_arg();
  }
  const std::string where = "column " + column + " of table " + target.display;
  if (v->has_param_ref()) {
    param_checks_.push_back(
        ParamCheck{v->param_ref().number(), field, target.display, column, cast});
    return true;
  }
  if (v->has_a_const()) {
    const pg_query::A_Const& c = v->a_const();
    if (c.isnull()) {
      return refuse("42501", "permission denied: " + where + " cannot be NULL");
    }
    std::string literal;
    switch (c.val_case()) {
      case pg_query::A_Const::kIval:
        literal = std::to_string(c.ival().ival());
        break;
      case pg_query::A_Const::kFval:
        literal = c.fval().fval();
        break;
      case pg_query::A_Const::kSval:
        literal = c.sval().sval();
        break;
      default:
        return refuse("42501", "permission denied: " + where + " must be the caller's " +
                                   (field == IdentityField::kTenant ? "tenant" : "user"));
    }
    const_checks_.push_back(ConstCheck{field, std::move(literal), target.display, column, cast});
    return true;
  }
  if (v->has_set_to_default() && allow_default_fill) {
    *value = marker_const(field);
    mark_changed();
    return true;
  }
  return refuse("42501", "permission denied: " + where +
                             " may only be set to the caller's value as a constant or parameter");
}

bool StatementWalker::check_assignments(gp::RepeatedPtrField<Node>* targets, const Target& target,
                                        const char* verb) {
  const std::vector<PolicyColumn> columns = policy_columns(*target.resolution.table);
  const Node* multi_source = nullptr;
  for (Node& n : *targets) {
    if (!n.has_res_target()) return refuse("0A000", std::string("unsupported ") + verb + " target");
    auto* rt = n.mutable_res_target();
    for (const PolicyColumn& pc : columns) {
      if (rt->name() != pc.column) continue;
      if (rt->indirection_size() != 0 || !rt->has_val() || rt->val().has_multi_assign_ref() ||
          rt->val().has_set_to_default()) {
        return refuse("42501", "permission denied: " + std::string(verb) + " of column " +
                                   pc.column + " of table " + target.display +
                                   " may only assign the caller's value");
      }
      if (!check_policy_value(rt->mutable_val(), pc.field, target, pc.column, false)) return false;
    }
    if (rt->has_val() && rt->val().has_multi_assign_ref()) {
      // SET (a, b) = (SELECT ...): the parser shares one source between the
      // targets and the deparser prints it once, so walk it once and copy the
      // result to the other targets (keeping the marker count exact).
      auto* multi = rt->mutable_val()->mutable_multi_assign_ref();
      if (multi->colno() == 1) {
        if (!walk_node(multi->mutable_source())) return false;
        multi_source = &multi->source();
      } else if (multi_source != nullptr) {
        *multi->mutable_source() = *multi_source;
      } else {
        return refuse("0A000", "unsupported multiple-column assignment");
      }
      continue;
    }
    if (rt->has_val() && !walk_node(rt->mutable_val())) return false;
  }
  return true;
}

bool StatementWalker::walk_insert(pg_query::InsertStmt* insert) {
  if (!push_with(insert->has_with_clause() ? insert->mutable_with_clause() : nullptr)) return false;
  bool ok = [&]() -> bool {
    Target target;
    if (!writable_target(insert->relation(), "INSERT", &target)) return false;
    qualify(insert->mutable_relation(), *target.resolution.table);
    const std::vector<PolicyColumn> columns = policy_columns(*target.resolution.table);
    // Row policies verify every written row (row_policies.cc): the policy
    // columns may then hold any expression.
    const bool with_check = target.resolution.table->scope == policy::Scope::kPolicies;

    // Where each policy column stands in the column list (-1: missing).
    std::vector<int> index(columns.size(), -1);
    for (int i = 0; i < insert->cols_size(); ++i) {
      const pg_query::ResTarget& col = insert->cols(i).res_target();
      for (std::size_t k = 0; k < columns.size(); ++k) {
        if (col.name() != columns[k].column) continue;
        if (col.indirection_size() != 0) {
          return refuse("42501", "permission denied: INSERT into a part of column " +
                                     columns[k].column + " of table " + target.display);
        }
        index[k] = i;
      }
    }
    auto append_missing_columns = [&]() {
      for (std::size_t k = 0; k < columns.size(); ++k) {
        if (index[k] >= 0) continue;
        insert->add_cols()->mutable_res_target()->set_name(columns[k].column);
      }
    };

    if (!insert->has_select_stmt() && columns.empty()) {
      // DEFAULT VALUES with nothing to fill (row policies verify the row).
    } else if (!insert->has_select_stmt()) {
      // DEFAULT VALUES: the same row with the policy columns filled in.
      Node values;
      auto* select = values.mutable_select_stmt();
      select->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
      select->set_op(pg_query::SETOP_NONE);
      auto* row = select->add_values_lists()->mutable_list();
      for (const PolicyColumn& pc : columns) *row->add_items() = marker_const(pc.field);
      append_missing_columns();
      *insert->mutable_select_stmt() = std::move(values);
      mark_changed();
    } else {
      if (!insert->select_stmt().has_select_stmt()) {
        return refuse("0A000", "unsupported INSERT source");
      }
      if (insert->cols_size() == 0) {
        return refuse("0A000", "INSERT into scoped table " + target.display +
                                   " needs an explicit column list");
      }
      auto* select = insert->mutable_select_stmt()->mutable_select_stmt();
      const bool plain_values = select->values_lists_size() > 0 &&
                                select->op() == pg_query::SETOP_NONE &&
                                !select->has_with_clause() && select->sort_clause_size() == 0 &&
                                !select->has_limit_count() && !select->has_limit_offset() &&
                                select->locking_clause_size() == 0;
      if (plain_values) {
        bool any_missing = false;
        for (Node& row_node : *select->mutable_values_lists()) {
          if (!row_node.has_list()) return refuse("0A000", "unsupported VALUES row");
          auto* row = row_node.mutable_list();
          for (std::size_t k = 0; k < columns.size(); ++k) {
            if (index[k] < 0) {
              any_missing = true;
              *row->add_items() = marker_const(columns[k].field);
              mark_changed();
            } else if (index[k] >= row->items_size()) {
              return refuse("0A000", "INSERT has more target columns than expressions");
            } else if (!with_check &&
                       !check_policy_value(row->mutable_items(index[k]), columns[k].field, target,
                                           columns[k].column, true)) {
              return false;
            } else if (with_check && row->items(index[k]).has_set_to_default()) {
              *row->mutable_items(index[k]) = marker_const(columns[k].field);
              mark_changed();
            }
          }
          for (Node& item : *row->mutable_items()) {
            if (!walk_node(&item)) return false;
          }
        }
        if (any_missing) append_missing_columns();
      } else {
        for (std::size_t k = 0; k < columns.size() && !with_check; ++k) {
          if (index[k] >= 0) {
            return refuse("0A000", "INSERT ... SELECT that supplies column " + columns[k].column +
                                       " of scoped table " + target.display +
                                       " is not supported; omit the column and it is filled in");
          }
        }
        if (!walk_select(select)) return false;
        if (select->op() == pg_query::SETOP_NONE && select->values_lists_size() == 0) {
          // INSERT INTO t (cols..., policy columns) SELECT <targets>, <values> ...:
          // a constant appended to the target list changes neither DISTINCT,
          // GROUP BY nor ORDER BY positions, and stays an untyped literal
          // that the INSERT coerces to the column's type.
          for (std::size_t k = 0; k < columns.size(); ++k) {
            if (index[k] >= 0) continue;
            *select->add_target_list()->mutable_res_target()->mutable_val() =
                marker_const(columns[k].field);
          }
        } else if (select->op() == pg_query::SETOP_NONE) {
          // VALUES ... ORDER BY / LIMIT: one more value per row.
          for (Node& row : *select->mutable_values_lists()) {
            if (!row.has_list()) return refuse("0A000", "unsupported VALUES row");
            for (std::size_t k = 0; k < columns.size(); ++k) {
              if (index[k] >= 0) continue;
              *row.mutable_list()->add_items() = marker_const(columns[k].field);
            }
          }
        } else {
          // A set operation: SELECT *, <values> FROM (<select>) AS tg_insert_source.
          Node outer;
          auto* wrapper = outer.mutable_select_stmt();
          wrapper->set_limit_option(pg_query::LIMIT_OPTION_DEFAULT);
          wrapper->set_op(pg_query::SETOP_NONE);
          wrapper->add_target_list()
              ->mutable_res_target()
              ->mutable_val()
              ->mutable_column_ref()
              ->add_fields()
              ->mutable_a_star();
          for (std::size_t k = 0; k < columns.size(); ++k) {
            if (index[k] >= 0) continue;
            *wrapper->add_target_list()->mutable_res_target()->mutable_val() =
                marker_const(columns[k].field);
          }
          auto* source = wrapper->add_from_clause()->mutable_range_subselect();
          source->mutable_alias()->set_aliasname("tg_insert_source");
          *source->mutable_subquery() = std::move(*insert->mutable_select_stmt());
          *insert->mutable_select_stmt() = std::move(outer);
        }
        append_missing_columns();
        mark_changed();
      }
    }

    if (target.resolution.table->scope == policy::Scope::kPolicies) {
      const std::string target_alias = qualifier_of(insert->relation());
      for (const Node& n : insert->returning_list()) {
        if (!check_masked_reads(*target.resolution.table, n, target_alias, "RETURNING"))
          return false;
      }
      if (insert->has_on_conflict_clause() &&
          !check_masked_reads(*target.resolution.table, insert->on_conflict_clause(), target_alias,
                              "ON CONFLICT")) {
        return false;
      }
    }
    const bool client_conflict_where =
        insert->has_on_conflict_clause() && insert->on_conflict_clause().has_where_clause();
    if (insert->has_on_conflict_clause()) {
      auto* conflict = insert->mutable_on_conflict_clause();
      if (conflict->has_infer() && !walk_plain_message(conflict->mutable_infer())) return false;
      if (conflict->action() == pg_query::ONCONFLICT_UPDATE) {
        if (!with_check &&
            !check_assignments(conflict->mutable_target_list(), target, "ON CONFLICT DO UPDATE")) {
          return false;
        }
        if (conflict->has_where_clause() && !walk_node(conflict->mutable_where_clause())) {
          return false;
        }
        // The WHERE runs on the conflicting row, which may be another tenant's.
        push_guard_level();
        add_guard_item(
            GuardItem{.alias = qualifier_of(insert->relation()), .table = target.resolution.table});
        const bool guarded = guard_clause(conflict->mutable_where_clause(), 0, ClauseKind::kWhere);
        pop_guard_level();
        if (!guarded) return false;
        // Only a conflicting row in the caller's scope may be updated.
        and_into(conflict->mutable_where_clause(),
                 scope_predicate(*target.resolution.table, qualifier_of(insert->relation()),
                                 policy::PolicyCommand::kUpdate, true));
      } else if (conflict->action() != pg_query::ONCONFLICT_NOTHING) {
        return refuse("0A000", "unsupported ON CONFLICT action");
      }
    }
    for (Node& n : *insert->mutable_returning_list()) {
      if (!walk_node(&n)) return false;
    }
    if (with_check) {
      const bool counted = insert->has_on_conflict_clause() &&
                           insert->on_conflict_clause().action() == pg_query::ONCONFLICT_UPDATE &&
                           !client_conflict_where && insert->has_select_stmt() &&
                           insert->select_stmt().select_stmt().values_lists_size() > 0 &&
                           insert->select_stmt().select_stmt().op() == pg_query::SETOP_NONE &&
                           !insert->select_stmt().select_stmt().has_limit_count() &&
                           !insert->select_stmt().select_stmt().has_limit_offset();
      pending_check_ = PendingCheck{
          .table = target.resolution.table,
          .qualifier = qualifier_of(insert->relation()),
          .command = policy::PolicyCommand::kInsert,
          // DO UPDATE reads the conflicting row (its conflict target needs
          // SELECT rights), which brings in the SELECT policies, as in RLS.
          .reads = insert->returning_list_size() > 0 ||
                   (insert->has_on_conflict_clause() &&
                    insert->on_conflict_clause().action() == pg_query::ONCONFLICT_UPDATE),
          .on_conflict = insert->has_on_conflict_clause() &&
                         insert->on_conflict_clause().action() == pg_query::ONCONFLICT_UPDATE,
          .expected_rows = counted ? insert->select_stmt().select_stmt().values_lists_size() : -1};
    }
    return true;
  }();
  pop_with(nullptr);
  return ok;
}

bool StatementWalker::walk_update(pg_query::UpdateStmt* update) {
  if (!push_with(update->has_with_clause() ? update->mutable_with_clause() : nullptr)) return false;
  bool ok = [&]() -> bool {
    Target target;
    if (!writable_target(update->relation(), "UPDATE", &target)) return false;
    qualify(update->mutable_relation(), *target.resolution.table);
    push_guard_level();
    add_guard_item(GuardItem{.alias = qualifier_of(update->relation()),
                             .table = target.resolution.table,
                             .column_aliases = false});
    for (Node& item : *update->mutable_from_clause()) {
      if (!walk_from_item(&item)) return false;
    }
    const bool with_check = target.resolution.table->scope == policy::Scope::kPolicies;
    const bool reads = update_reads_target(*update);
    if (target.resolution.table->scope == policy::Scope::kPolicies) {
      const std::string target_alias = qualifier_of(update->relation());
      for (const Node& n : update->target_list()) {
        if (n.has_res_target() && n.res_target().has_val() &&
            !check_masked_reads(*target.resolution.table, n.res_target().val(), target_alias,
                                "UPDATE")) {
          return false;
        }
      }
      if (update->has_where_clause() &&
          !check_masked_reads(*target.resolution.table, update->where_clause(), target_alias,
                              "UPDATE")) {
        return false;
      }
      for (const Node& n : update->returning_list()) {
        if (!check_masked_reads(*target.resolution.table, n, target_alias, "RETURNING"))
          return false;
      }
    }
    if (with_check) {
      for (Node& n : *update->mutable_target_list()) {
        if (!n.has_res_target()) return refuse("0A000", "unsupported UPDATE target");
        if (n.res_target().has_val() && n.res_target().val().has_multi_assign_ref()) {
          return refuse("0A000", "UPDATE ... SET (a, b) = (...) is not supported on table " +
                                     target.display + ", which has row policies");
        }
        if (n.res_target().has_val() && !walk_node(n.mutable_res_target()->mutable_val())) {
          return false;
        }
      }
    } else if (!check_assignments(update->mutable_target_list(), target, "UPDATE")) {
      return false;
    }
    if (update->has_where_clause()) {
      if (!walk_node(update->mutable_where_clause())) return false;
      if (!guard_clause(update->mutable_where_clause(), 0, ClauseKind::kWhere)) return false;
    }
    // WHERE CURRENT OF admits no other condition; the cursor itself was
    // declared through the rewriter, so its rows are already in scope.
    if (!update->where_clause().has_current_of_expr()) {
      and_into(update->mutable_where_clause(),
               scope_predicate(*target.resolution.table, qualifier_of(update->relation()),
                               policy::PolicyCommand::kUpdate, reads));
    }
    for (Node& n : *update->mutable_returning_list()) {
      if (!walk_node(&n)) return false;
    }
    if (with_check) {
      pending_check_ = PendingCheck{.table = target.resolution.table,
                                    .qualifier = qualifier_of(update->relation()),
                                    .command = policy::PolicyCommand::kUpdate,
                                    .reads = reads};
    }
    return true;
  }();
  if (ok) pop_guard_level();  // pushed once the target resolved; a refusal ends the walk
  pop_with(nullptr);
  return ok;
}

bool StatementWalker::walk_delete(pg_query::DeleteStmt* del) {
  if (!push_with(del->has_with_clause() ? del->mutable_with_clause() : nullptr)) return false;
  bool ok = [&]() -> bool {
    Target target;
    if (!writable_target(del->relation(), "DELETE", &target)) return false;
    qualify(del->mutable_relation(), *target.resolution.table);
    push_guard_level();
    add_guard_item(GuardItem{.alias = qualifier_of(del->relation()),
                             .table = target.resolution.table,
                             .column_aliases = false});
    if (target.resolution.table->scope == policy::Scope::kPolicies) {
      const std::string target_alias = qualifier_of(del->relation());
      if (del->has_where_clause() &&
          !check_masked_reads(*target.resolution.table, del->where_clause(), target_alias,
                              "DELETE")) {
        return false;
      }
      for (const Node& n : del->returning_list()) {
        if (!check_masked_reads(*target.resolution.table, n, target_alias, "RETURNING"))
          return false;
      }
    }
    for (Node& item : *del->mutable_using_clause()) {
      if (!walk_from_item(&item)) return false;
    }
    if (del->has_where_clause()) {
      if (!walk_node(del->mutable_where_clause())) return false;
      if (!guard_clause(del->mutable_where_clause(), 0, ClauseKind::kWhere)) return false;
    }
    if (!del->where_clause().has_current_of_expr()) {
      const bool reads =
          del->has_where_clause() || del->using_clause_size() > 0 || del->returning_list_size() > 0;
      and_into(del->mutable_where_clause(),
               scope_predicate(*target.resolution.table, qualifier_of(del->relation()),
                               policy::PolicyCommand::kDelete, reads));
    }
    for (Node& n : *del->mutable_returning_list()) {
      if (!walk_node(&n)) return false;
    }
    return true;
  }();
  if (ok) pop_guard_level();  // pushed once the target resolved; a refusal ends the walk
  pop_with(nullptr);
  return ok;
}

}  // namespace tenantgate::rewriter
