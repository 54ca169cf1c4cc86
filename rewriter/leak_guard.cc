#include "rewriter/leak_guard.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace tenantgate::rewriter {
namespace {

namespace gp = google::protobuf;
using pg_query::Node;

// Calls fn on every Node directly below `message` (through plain messages
// such as CaseWhen lists or TypeName, which hold Nodes of their own).
template <typename Fn>
void for_each_child(const gp::Message& message, Fn&& fn) {
  const gp::Reflection* reflection = message.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const gp::FieldDescriptor* field : fields) {
    if (field->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const bool is_node = field->message_type() == Node::descriptor();
    auto visit = [&](const gp::Message& child) {
      if (is_node) {
        fn(static_cast<const Node&>(child));
      } else {
        for_each_child(child, fn);
      }
    };
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      for (int i = 0; i < n; ++i) visit(reflection->GetRepeatedMessage(message, field, i));
    } else {
      visit(reflection->GetMessage(message, field));
    }
  }
}

const gp::Message* node_payload(const Node& node) {
  if (node.node_case() == Node::NODE_NOT_SET) return nullptr;
  const gp::FieldDescriptor* field =
      Node::descriptor()->FindFieldByNumber(static_cast<int>(node.node_case()));
  return &node.GetReflection()->GetMessage(node, field);
}

bool contains_column_ref(const Node& node) {
  if (node.has_column_ref()) return true;
  const gp::Message* payload = node_payload(node);
  if (payload == nullptr) return false;
  bool found = false;
  for_each_child(*payload, [&](const Node& child) {
    if (!found) found = contains_column_ref(child);
  });
  return found;
}

constexpr std::array<std::string_view, 7> kComparisons = {"=", "<>", "!=", "<", ">", "<=", ">="};

// Built-in aggregates by name (pg_proc.prokind = 'a' in PostgreSQL 15).
constexpr std::array<std::string_view, 44> kAggregates = {"array_agg",
                                                          "avg",
                                                          "bit_and",
                                                          "bit_or",
                                                          "bit_xor",
                                                          "bool_and",
                                                          "bool_or",
                                                          "corr",
                                                          "count",
                                                          "covar_pop",
                                                          "covar_samp",
                                                          "cume_dist",
                                                          "dense_rank",
                                                          "every",
                                                          "json_agg",
                                                          "json_object_agg",
                                                          "jsonb_agg",
                                                          "jsonb_object_agg",
                                                          "max",
                                                          "min",
                                                          "mode",
                                                          "percent_rank",
                                                          "percentile_cont",
                                                          "percentile_disc",
                                                          "range_agg",
                                                          "range_intersect_agg",
                                                          "rank",
                                                          "regr_avgx",
                                                          "regr_avgy",
                                                          "regr_count",
                                                          "regr_intercept",
                                                          "regr_r2",
                                                          "regr_slope",
                                                          "regr_sxx",
                                                          "regr_sxy",
                                                          "regr_syy",
                                                          "stddev",
                                                          "stddev_pop",
                                                          "stddev_samp",
                                                          "string_agg",
                                                          "sum",
                                                          "var_pop",
                                                          "var_samp",
                                                          "variance"};

bool is_aggregate_call(const pg_query::FuncCall& call) {
  if (call.has_over()) return false;
  const int parts = call.funcname_size();
  if (parts == 0 || parts > 2 || !call.funcname(parts - 1).has_string()) return false;
  if (parts == 2 &&
      (!call.funcname(0).has_string() || call.funcname(0).string().sval() != "pg_catalog")) {
    return false;
  }
  const std::string& name = call.funcname(parts - 1).string().sval();
  return std::find(kAggregates.begin(), kAggregates.end(), name) != kAggregates.end();
}

}  // namespace

LeakRules::LeakRules(const policy::AppCatalog* catalog) : catalog_(catalog) {
  if (catalog_ == nullptr) return;
  for (std::string_view op : kComparisons) {
    if (catalog_->operators.count(std::string(op)) != 0) app_comparisons_ = true;
  }
}

bool LeakRules::any_child_leaky(const Node& node) const {
  const gp::Message* payload = node_payload(node);
  if (payload == nullptr) return false;
  bool leaky = false;
  for_each_child(*payload, [&](const Node& child) {
    if (!leaky) leaky = is_leaky(child);
  });
  return leaky;
}

// The operator's name when it is a comparison PostgreSQL's and CockroachDB's
// built-in types implement without failing on any value: unqualified or in
// pg_catalog, and no app function implements an operator of that symbol.
bool LeakRules::is_comparison(const gp::RepeatedPtrField<Node>& name) const {
  if (app_comparisons_) return false;
  if (name.empty() || name.size() > 2) return false;
  if (name.size() == 2 && (!name[0].has_string() || name[0].string().sval() != "pg_catalog")) {
    return false;
  }
  const Node& op = name[name.size() - 1];
  return op.has_string() && std::find(kComparisons.begin(), kComparisons.end(),
                                      op.string().sval()) != kComparisons.end();
}

bool LeakRules::leaky_a_expr(const Node& node) const {
  const pg_query::A_Expr& e = node.a_expr();
  switch (e.kind()) {
    case pg_query::AEXPR_OP:
    case pg_query::AEXPR_OP_ANY:
    case pg_query::AEXPR_OP_ALL:
    case pg_query::AEXPR_DISTINCT:
    case pg_query::AEXPR_NOT_DISTINCT:
    case pg_query::AEXPR_NULLIF:
    case pg_query::AEXPR_IN:
      // A binary comparison (IN and IS DISTINCT FROM compare with = / <>).
      if (!e.has_lexpr() || !is_comparison(e.name())) return contains_column_ref(node);
      return any_child_leaky(node);
    case pg_query::AEXPR_BETWEEN:
    case pg_query::AEXPR_NOT_BETWEEN:
    case pg_query::AEXPR_BETWEEN_SYM:
    case pg_query::AEXPR_NOT_BETWEEN_SYM:
      // x BETWEEN a AND b is x >= a AND x <= b.
      if (app_comparisons_) return contains_column_ref(node);
      return any_child_leaky(node);
    default:
      // LIKE, ILIKE, SIMILAR TO and anything added later.
      return contains_column_ref(node);
  }
}

bool LeakRules::is_leaky(const Node& node) const {
  switch (node.node_case()) {
    case Node::kColumnRef:
    case Node::kAConst:
    case Node::kParamRef:
    case Node::kSqlvalueFunction:
    case Node::NODE_NOT_SET:
      return false;
    case Node::kBoolExpr:
    case Node::kNullTest:
    case Node::kBooleanTest:
    case Node::kCaseWhen:
    case Node::kCoalesceExpr:
    case Node::kRowExpr:
    case Node::kAArrayExpr:
    case Node::kList:
    case Node::kCollateClause:
      return any_child_leaky(node);
    case Node::kCaseExpr:    // CASE x WHEN v compares with =
    case Node::kMinMaxExpr:  // GREATEST / LEAST compare with < and >
      if (app_comparisons_ && (node.has_min_max_expr() || node.case_expr().has_arg())) {
        return contains_column_ref(node);
      }
      return any_child_leaky(node);
    case Node::kAExpr:
      return leaky_a_expr(node);
    case Node::kSubLink:
      // As in PostgreSQL: a subquery is never known leakproof, and guarding
      // it also keeps it from being pulled up into a join whose conditions
      // would be evaluated next to the scope predicate.
      return true;
    default:
      // Casts, function calls, subscripts, field selection, and anything
      // else: leaky when a column value reaches it.
      return contains_column_ref(node);
  }
}

namespace {

// The names a query's FROM items bind: table aliases (or names), subquery
// and function aliases, join aliases.
void add_from_names(const Node& item, std::vector<std::string>* names) {
  switch (item.node_case()) {
    case Node::kRangeVar:
      names->push_back(item.range_var().has_alias() ? item.range_var().alias().aliasname()
                                                    : item.range_var().relname());
      break;
    case Node::kRangeSubselect:
      if (item.range_subselect().has_alias()) {
        names->push_back(item.range_subselect().alias().aliasname());
      }
      break;
    case Node::kRangeFunction:
      if (item.range_function().has_alias()) {
        names->push_back(item.range_function().alias().aliasname());
      }
      break;
    case Node::kJoinExpr:
      add_from_names(item.join_expr().larg(), names);
      add_from_names(item.join_expr().rarg(), names);
      if (item.join_expr().has_alias()) names->push_back(item.join_expr().alias().aliasname());
      break;
    default:
      break;
  }
}

void collect(const Node& node, std::vector<std::string>* bound, ColumnQualifiers* out) {
  if (node.has_column_ref()) {
    const auto& fields = node.column_ref().fields();
    if (fields.size() >= 2 && fields[0].has_string()) {
      const std::string& qualifier = fields[0].string().sval();
      if (std::find(bound->begin(), bound->end(), qualifier) == bound->end()) {
        out->qualifiers.push_back(qualifier);
      }
    } else {
      out->unqualified = true;
    }
    return;
  }
  const std::size_t bound_before = bound->size();
  if (node.has_select_stmt()) {
    // A subquery's own FROM items bind the qualifiers that name them (an
    // unqualified name inside it may still reach out: it counts).
    for (const Node& item : node.select_stmt().from_clause()) add_from_names(item, bound);
  }
  const gp::Message* payload = node_payload(node);
  if (payload != nullptr) {
    for_each_child(*payload, [&](const Node& child) { collect(child, bound, out); });
  }
  bound->resize(bound_before);
}

}  // namespace

void collect_column_qualifiers(const Node& node, ColumnQualifiers* out) {
  std::vector<std::string> bound;
  collect(node, &bound, out);
}

bool LeakRules::calls_aggregate(const Node& node) const {
  if (node.has_func_call() && is_aggregate_call(node.func_call())) {
    // An app function of that name may be what the call resolves to.
    const std::string& name =
        node.func_call().funcname(node.func_call().funcname_size() - 1).string().sval();
    bool app_named = false;
    if (catalog_ != nullptr) {
      for (const policy::QualifiedName& f : catalog_->functions) {
        if (f.name == name) app_named = true;
      }
    }
    if (!app_named) return true;
  }
  if (node.has_sub_link() || node.has_select_stmt()) return false;
  const gp::Message* payload = node_payload(node);
  if (payload == nullptr) return false;
  bool found = false;
  for_each_child(*payload, [&](const Node& child) {
    if (!found) found = calls_aggregate(child);
  });
  return found;
}

bool calls_window_function(const Node& node) {
  if (node.has_func_call() && node.func_call().has_over()) return true;
  if (node.has_sub_link() || node.has_select_stmt()) return false;
  const gp::Message* payload = node_payload(node);
  if (payload == nullptr) return false;
  bool found = false;
  for_each_child(*payload, [&](const Node& child) {
    if (!found) found = calls_window_function(child);
  });
  return found;
}

std::optional<std::string> LeakRules::app_operator(const Node& node) const {
  if (catalog_ == nullptr || catalog_->operators.empty()) return std::nullopt;
  if (node.has_a_expr()) {
    const auto& name = node.a_expr().name();
    if (!name.empty() && name[name.size() - 1].has_string()) {
      std::string op = name[name.size() - 1].string().sval();
      if (op == "!=") op = "<>";
      const pg_query::A_Expr_Kind kind = node.a_expr().kind();
      if (kind == pg_query::AEXPR_BETWEEN || kind == pg_query::AEXPR_NOT_BETWEEN ||
          kind == pg_query::AEXPR_BETWEEN_SYM || kind == pg_query::AEXPR_NOT_BETWEEN_SYM) {
        for (const char* implied : {">=", "<="}) {
          if (catalog_->operators.count(implied) != 0) return std::string(implied);
        }
      } else if (catalog_->operators.count(op) != 0) {
        return op;
      }
    }
  }
  if (app_comparisons_ &&
      (node.has_min_max_expr() || (node.has_case_expr() && node.case_expr().has_arg()))) {
    return std::string("=");
  }
  const gp::Message* payload = node_payload(node);
  if (payload == nullptr) return std::nullopt;
  std::optional<std::string> found;
  for_each_child(*payload, [&](const Node& child) {
    if (!found) found = app_operator(child);
  });
  return found;
}

Node case_guard_value(Node guard, Node value) {
  Node n;
  auto* when = n.mutable_case_expr()->add_args()->mutable_case_when();
  *when->mutable_expr() = std::move(guard);
  *when->mutable_result() = std::move(value);
  return n;
}

Node case_guard(Node guard, Node condition) {
  Node n;
  auto* c = n.mutable_case_expr();
  auto* when = c->add_args()->mutable_case_when();
  *when->mutable_expr() = std::move(guard);
  *when->mutable_result() = std::move(condition);
  c->mutable_defresult()->mutable_a_const()->mutable_boolval()->set_boolval(false);
  return n;
}

std::vector<Node*> conjuncts(Node* clause) {
  std::vector<Node*> out;
  if (clause->node_case() == Node::NODE_NOT_SET) return out;
  if (clause->has_bool_expr() && clause->bool_expr().boolop() == pg_query::AND_EXPR) {
    for (Node& arg : *clause->mutable_bool_expr()->mutable_args()) out.push_back(&arg);
  } else {
    out.push_back(clause);
  }
  return out;
}

}  // namespace tenantgate::rewriter
