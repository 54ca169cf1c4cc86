#include "rewriter/predicate_coverage.h"

#include <google/protobuf/arena.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>

#include "rewriter/pg_tree.h"

namespace tenantgate::rewriter {

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// A reference to a table in one query level's FROM (or an UPDATE/DELETE target).
struct LevelRef {
  std::size_t index = 0;  // into CoverageShape::tables
  std::string name;       // how columns qualify it: the alias, or the table's name
};

// `column = value` conjuncts of one query level.
struct Equality {
  std::vector<std::string> column;  // ColumnRef fields
  CoverageValue value;
};

class Analyser {
 public:
  Analyser(const policy::Policy& policy, std::string_view database)
      : policy_(policy), database_(database) {}

  void walk(const Message& m) {
    const auto* d = m.GetDescriptor();
    if (d == pg_query::SelectStmt::descriptor()) {
      const auto& s = static_cast<const pg_query::SelectStmt&>(m);
      level(s.from_clause(), s.has_where_clause() ? &s.where_clause() : nullptr, nullptr, {});
    } else if (d == pg_query::UpdateStmt::descriptor()) {
      const auto& s = static_cast<const pg_query::UpdateStmt&>(m);
      level(s.from_clause(), s.has_where_clause() ? &s.where_clause() : nullptr,
            s.has_relation() ? &s.relation() : nullptr, {});
    } else if (d == pg_query::DeleteStmt::descriptor()) {
      const auto& s = static_cast<const pg_query::DeleteStmt&>(m);
      level(s.using_clause(), s.has_where_clause() ? &s.where_clause() : nullptr,
            s.has_relation() ? &s.relation() : nullptr, {});
    } else if (d == pg_query::InsertStmt::descriptor()) {
      const auto& s = static_cast<const pg_query::InsertStmt&>(m);
      if (s.has_relation()) {
        if (auto index = add(s.relation())) shape_.tables[*index].inserted = true;
      }
    }
    const auto* r = m.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(m, &fields);
    for (const auto* f : fields) {
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
      if (f->is_repeated()) {
        const int n = r->FieldSize(m, f);
        for (int i = 0; i < n; ++i) walk(r->GetRepeatedMessage(m, f, i));
      } else {
        walk(r->GetMessage(m, f));
      }
    }
  }

  CoverageShape take() { return std::move(shape_); }

 private:
  // One query level: its FROM items (and UPDATE/DELETE target) and the
  // conditions that hold for all of its rows.
  void level(const google::protobuf::RepeatedPtrField<pg_query::Node>& from,
             const pg_query::Node* where, const pg_query::RangeVar* target,
             std::vector<const pg_query::Node*> conditions) {
    std::vector<LevelRef> refs;
    if (target) {
      if (auto index = add(*target)) {
        shape_.tables[*index].written = true;
        refs.push_back({*index, ref_name(*target)});
      }
    }
    for (const auto& item : from) collect(item, refs, conditions);
    if (where) conditions.push_back(where);
    std::vector<Equality> equalities;
    for (const auto* c : conditions) conjuncts(*c, equalities);
    for (const auto& ref : refs) {
      auto& t = shape_.tables[ref.index];
      for (const auto& e : equalities) {
        const bool mine =
            (e.column.size() == 1) || (e.column.size() == 2 && e.column[0] == ref.name);
        if (!mine) continue;
        const std::string& column = e.column.back();
        if (!t.tenant_column.empty() && column == t.tenant_column)
          t.tenant_values.push_back(e.value);
        if (!t.owner_column.empty() && column == t.owner_column) t.owner_values.push_back(e.value);
      }
    }
  }

  void collect(const pg_query::Node& item, std::vector<LevelRef>& refs,
               std::vector<const pg_query::Node*>& conditions) {
    if (item.has_range_var()) {
      if (auto index = add(item.range_var())) refs.push_back({*index, ref_name(item.range_var())});
    } else if (item.has_join_expr()) {
      const auto& j = item.join_expr();
      if (j.has_larg()) collect(j.larg(), refs, conditions);
      if (j.has_rarg()) collect(j.rarg(), refs, conditions);
      if (j.has_quals()) conditions.push_back(&j.quals());
    }
    // Subqueries, functions and VALUES in FROM are query levels of their own
    // (walk() reaches them) or read no table.
  }

  static std::string ref_name(const pg_query::RangeVar& rv) {
    return rv.has_alias() && !rv.alias().aliasname().empty() ? rv.alias().aliasname()
                                                             : rv.relname();
  }

  std::optional<std::size_t> add(const pg_query::RangeVar& rv) {
    auto resolved = policy_.resolve(rv.catalogname(), rv.schemaname(), rv.relname(), database_);
    if (!resolved) return std::nullopt;
    TableReference t;
    t.table = resolved->name;
    switch (resolved->kind) {
      case policy::Resolution::Kind::kTable: {
        const auto& tp = *resolved->table;
        t.policy = std::string(policy::scope_name(tp.scope));
        t.tenant_column = tp.tenant_column;
        t.owner_column = tp.owner_column;
        break;
      }
      case policy::Resolution::Kind::kDefault:
        t.policy = "default";
        break;
      case policy::Resolution::Kind::kCatalog:
        t.policy = "catalog";
        break;
      case policy::Resolution::Kind::kDeniedCatalog:
        t.policy = "denied_catalog";
        break;
    }
    shape_.tables.push_back(std::move(t));
    return shape_.tables.size() - 1;
  }

  static void conjuncts(const pg_query::Node& n, std::vector<Equality>& out) {
    if (n.has_bool_expr() && n.bool_expr().boolop() == pg_query::AND_EXPR) {
      for (const auto& a : n.bool_expr().args()) conjuncts(a, out);
      return;
    }
    if (!n.has_a_expr()) return;
    const auto& e = n.a_expr();
    if (e.kind() != pg_query::AEXPR_OP || e.name_size() != 1 || !e.name(0).has_string() ||
        e.name(0).string().sval() != "=" || !e.has_lexpr() || !e.has_rexpr()) {
      return;
    }
    auto add = [&](const pg_query::Node& col, const pg_query::Node& val) {
      auto column = column_fields(col);
      auto value = value_of(val);
      if (column && value) out.push_back({std::move(*column), std::move(*value)});
    };
    add(e.lexpr(), e.rexpr());
    add(e.rexpr(), e.lexpr());
  }

  static std::optional<std::vector<std::string>> column_fields(const pg_query::Node& n) {
    if (!n.has_column_ref()) return std::nullopt;
    std::vector<std::string> fields;
    for (const auto& f : n.column_ref().fields()) {
      if (!f.has_string()) return std::nullopt;
      fields.push_back(f.string().sval());
    }
    if (fields.empty() || fields.size() > 2) return std::nullopt;
    return fields;
  }

  static std::optional<CoverageValue> value_of(const pg_query::Node& n) {
    if (n.has_type_cast() && n.type_cast().has_arg()) return value_of(n.type_cast().arg());
    if (n.has_param_ref()) return CoverageValue{"", n.param_ref().number()};
    if (!n.has_a_const() || n.a_const().isnull()) return std::nullopt;
    const auto& c = n.a_const();
    if (c.has_ival()) return CoverageValue{std::to_string(c.ival().ival()), 0};
    if (c.has_sval()) return CoverageValue{c.sval().sval(), 0};
    if (c.has_fval()) return CoverageValue{c.fval().fval(), 0};
    return std::nullopt;
  }

  const policy::Policy& policy_;
  std::string_view database_;
  CoverageShape shape_;
};

bool matches(const std::vector<CoverageValue>& values, const policy::TypedValue& caller,
             std::span<const std::optional<std::string>> params) {
  for (const auto& v : values) {
    std::optional<std::string> text;
    if (v.param == 0) {
      text = v.constant;
    } else if (v.param >= 1 && static_cast<std::size_t>(v.param) <= params.size()) {
      text = params[v.param - 1];
    }
    if (!text) continue;
    auto canonical = policy::canonical_value(caller.type, *text);
    if (canonical && *canonical == caller.value) return true;
  }
  return false;
}

}  // namespace

std::optional<CoverageShape> analyse_coverage(std::string_view sql, const policy::Policy& policy,
                                              std::string_view database) {
  google::protobuf::Arena arena(tree_arena_options());
  auto* tree = google::protobuf::Arena::CreateMessage<pg_query::ParseResult>(&arena);
  if (parse_sql(std::string(sql), tree)) return std::nullopt;
  Analyser analyser(policy, database);
  analyser.walk(*tree);
  return analyser.take();
}

std::vector<MissingPredicate> evaluate_coverage(
    const CoverageShape& shape, const policy::Identity& identity,
    std::span<const std::optional<std::string>> params) {
  std::vector<MissingPredicate> out;
  for (const auto& t : shape.tables) {
    if (t.tenant_column.empty() && t.owner_column.empty()) continue;
    if (t.inserted) continue;
    MissingPredicate m{policy::to_string(t.table), {}};
    if (!t.tenant_column.empty() && !matches(t.tenant_values, identity.tenant, params)) {
      m.columns.push_back(t.tenant_column);
    }
    if (!t.owner_column.empty() &&
        !(identity.user && matches(t.owner_values, *identity.user, params))) {
      m.columns.push_back(t.owner_column);
    }
    if (!m.columns.empty()) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace tenantgate::rewriter
