#include "policy/policy_expression.h"

#include <google/protobuf/io/coded_stream.h>
#include <pg_query.h>

#include <array>

namespace tenantgate::policy {
namespace {

namespace gp = google::protobuf;
using pg_query::Node;

// Policy expressions are short; this bounds the parser's recursion too.
constexpr std::size_t kMaxExpressionBytes = 16384;

// Built-ins whose value changes from one call to the next or that read
// session state: a policy must give the same answer for the same row and
// caller, and identity comes only from the tenantgate.* functions.
constexpr std::array<std::string_view, 18> kVolatile = {"random",
                                                        "random_normal",
                                                        "setseed",
                                                        "clock_timestamp",
                                                        "timeofday",
                                                        "gen_random_uuid",
                                                        "nextval",
                                                        "currval",
                                                        "lastval",
                                                        "setval",
                                                        "current_setting",
                                                        "set_config",
                                                        "txid_current",
                                                        "txid_current_if_assigned",
                                                        "pg_current_xact_id",
                                                        "pg_current_xact_id_if_assigned",
                                                        "uuid_generate_v1",
                                                        "uuid_generate_v4"};

std::string field_string(const Node& n) { return n.has_string() ? n.string().sval() : ""; }

void clear_locations(gp::Message* msg) {
  const gp::Reflection* r = msg->GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(*msg, &fields);
  for (const gp::FieldDescriptor* f : fields) {
    if (f->cpp_type() == gp::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(*msg, f); ++i) {
          clear_locations(r->MutableRepeatedMessage(msg, f, i));
        }
      } else {
        clear_locations(r->MutableMessage(msg, f));
      }
    } else if (f->name() == "location") {
      r->ClearField(msg, f);
    }
  }
}

class Validator {
 public:
  Validator(const Policy& policy, const TablePolicy& table, std::string prefix,
            PolicyExpression* out)
      : policy_(policy), table_(table), prefix_(std::move(prefix)), out_(out) {}

  void walk(const gp::Message& msg) {
    const gp::Descriptor* d = msg.GetDescriptor();
    if (d == pg_query::FuncCall::descriptor()) {
      if (func_call(static_cast<const pg_query::FuncCall&>(msg))) return;
    } else if (d == pg_query::RangeVar::descriptor()) {
      range_var(static_cast<const pg_query::RangeVar&>(msg));
    } else if (d == pg_query::ColumnRef::descriptor()) {
      column_ref(static_cast<const pg_query::ColumnRef&>(msg));
    } else if (d == pg_query::ParamRef::descriptor()) {
      fail("parameters ($n) are not allowed");
    } else if (d == pg_query::WithClause::descriptor()) {
      fail("WITH is not allowed");
    } else if (d == pg_query::SelectStmt::descriptor()) {
      const auto& s = static_cast<const pg_query::SelectStmt&>(msg);
      if (s.has_into_clause()) fail("SELECT INTO is not allowed");
      if (s.locking_clause_size() > 0) fail("locking clauses are not allowed");
      ++subquery_depth_;
      walk_fields(msg);
      --subquery_depth_;
      return;
    } else if (d == pg_query::InsertStmt::descriptor() || d == pg_query::UpdateStmt::descriptor() ||
               d == pg_query::DeleteStmt::descriptor() || d == pg_query::MergeStmt::descriptor()) {
      fail("data-modifying statements are not allowed");
    } else if (d == pg_query::RangeTableSample::descriptor()) {
      fail("TABLESAMPLE is not allowed");
    }
    walk_fields(msg);
  }

  [[noreturn]] void fail(const std::string& reason) const { throw PolicyError(prefix_ + reason); }

 private:
  void walk_fields(const gp::Message& msg) {
    const gp::Reflection* r = msg.GetReflection();
    std::vector<const gp::FieldDescriptor*> fields;
    r->ListFields(msg, &fields);
    for (const gp::FieldDescriptor* f : fields) {
      if (f->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(msg, f); ++i) walk(r->GetRepeatedMessage(msg, f, i));
      } else {
        walk(r->GetMessage(msg, f));
      }
    }
  }

  // True when the call is one of the identity functions (nothing below it to walk).
  bool func_call(const pg_query::FuncCall& call) {
    const int n = call.funcname_size();
    const std::string name = n > 0 ? field_string(call.funcname(n - 1)) : "";
    const std::string schema = n > 1 ? field_string(call.funcname(n - 2)) : "";
    if (n > 2) fail("function name " + name + " has too many parts");
    if (call.has_over()) fail("window functions are not allowed");
    if (schema == "tenantgate") {
      if (name == "tenant" || name == "user_id") {
        if (call.args_size() != 0) fail("tenantgate." + name + "() takes no arguments");
        if (name == "user_id") out_->uses_user = true;
        return true;
      }
      if (name == "claim") {
        if (call.args_size() != 1 || !call.args(0).has_a_const() ||
            !call.args(0).a_const().has_sval()) {
          fail("tenantgate.claim() takes one string constant, the claim's name");
        }
        out_->uses_claims = true;
        return true;
      }
      fail("unknown function tenantgate." + name +
           " (expected tenantgate.tenant(), tenantgate.user_id(), tenantgate.claim('name'))");
    }
    for (std::string_view v : kVolatile) {
      if (name == v) fail("function " + name + " is volatile or reads session state");
    }
    if (policy_.function_denied(schema, name)) {
      fail("function " + (schema.empty() ? name : schema + "." + name) +
           " is not allowed by the function rules");
    }
    return false;
  }

  void range_var(const pg_query::RangeVar& rv) {
    std::optional<Resolution> r = policy_.resolve("", rv.schemaname(), rv.relname(), "");
    const std::string written =
        rv.schemaname().empty() ? rv.relname() : rv.schemaname() + "." + rv.relname();
    if (!rv.catalogname().empty() || !r || r->kind != Resolution::Kind::kTable) {
      fail("relation " + written + " is not a table of this policy");
    }
    if (r->table->scope == Scope::kDeny && r->table->policies.empty()) {
      fail("relation " + written + " has scope deny");
    }
    out_->tables.push_back(r->name);
  }

  void column_ref(const pg_query::ColumnRef& ref) {
    const int n = ref.fields_size();
    if (n > 0 && ref.fields(n - 1).has_a_star()) return;  // `*` of a subquery's target list
    if (subquery_depth_ == 0) {
      if (n == 1) {
        out_->columns.push_back(field_string(ref.fields(0)));
        return;
      }
      if (n == 2 && field_string(ref.fields(0)) == table_.name.name) {
        out_->columns.push_back(field_string(ref.fields(1)));
        return;
      }
      fail("column reference " + describe(ref) + ": name the table's own columns bare or as " +
           quote_identifier(table_.name.name) + ".column");
    }
    if (n < 2) {
      fail("column reference " + describe(ref) +
           " inside a subquery must be qualified (alias.column or " +
           quote_identifier(table_.name.name) + ".column)");
    }
  }

  static std::string describe(const pg_query::ColumnRef& ref) {
    std::string s;
    for (const Node& f : ref.fields()) s += (s.empty() ? "" : ".") + field_string(f);
    return s;
  }

  const Policy& policy_;
  const TablePolicy& table_;
  std::string prefix_;
  PolicyExpression* out_;
  int subquery_depth_ = 0;
};

bool boolean_shape(const Node& n) {
  switch (n.node_case()) {
    case Node::kBoolExpr:
    case Node::kNullTest:
    case Node::kBooleanTest:
    case Node::kColumnRef:
      return true;
    case Node::kSubLink:
      return n.sub_link().sub_link_type() == pg_query::EXISTS_SUBLINK ||
             n.sub_link().sub_link_type() == pg_query::ANY_SUBLINK ||
             n.sub_link().sub_link_type() == pg_query::ALL_SUBLINK;
    case Node::kAConst:
      return n.a_const().has_boolval();
    case Node::kTypeCast: {
      const auto& names = n.type_cast().type_name().names();
      const std::string t = names.empty() ? "" : field_string(names[names.size() - 1]);
      return t == "bool" || t == "boolean";
    }
    case Node::kAExpr: {
      const auto& e = n.a_expr();
      if (e.kind() != pg_query::AEXPR_OP && e.kind() != pg_query::AEXPR_OP_ANY &&
          e.kind() != pg_query::AEXPR_OP_ALL) {
        return e.kind() != pg_query::AEXPR_NULLIF;
      }
      if (e.name_size() == 0) return false;
      const std::string op = field_string(e.name(e.name_size() - 1));
      static constexpr std::array<std::string_view, 16> kBoolOps = {
          "=",   "<>",  "!=",   "<", ">",  "<=", ">=", "~~",
          "!~~", "~~*", "!~~*", "~", "~*", "!~", "@>", "<@"};
      for (std::string_view b : kBoolOps) {
        if (op == b) return true;
      }
      return op == "&&" || op == "!~*";
    }
    default:
      return false;
  }
}

}  // namespace

std::shared_ptr<const PolicyExpression> compile_policy_expression(
    std::string_view sql, const Policy& policy, const TablePolicy& table, const std::string& file,
    int line, const std::string& what, bool boolean) {
  const std::string prefix = file + ":" + std::to_string(line) + ": " + what + ": ";
  if (sql.empty()) throw PolicyError(prefix + "is empty");
  if (sql.size() > kMaxExpressionBytes) throw PolicyError(prefix + "is too long");
  if (sql.find('\0') != std::string_view::npos) throw PolicyError(prefix + "contains NUL");
  const std::string text = "SELECT (" + std::string(sql) + "\n)";
  PgQueryProtobufParseResult result = pg_query_parse_protobuf(text.c_str());
  pg_query::ParseResult tree;
  std::string error;
  if (result.error != nullptr) {
    error = std::string("does not parse: ") + result.error->message;
  } else {
    gp::io::CodedInputStream input(reinterpret_cast<const std::uint8_t*>(result.parse_tree.data),
                                   static_cast<int>(result.parse_tree.len));
    input.SetRecursionLimit(10000);
    if (!tree.ParseFromCodedStream(&input)) error = "is too deeply nested";
  }
  pg_query_free_protobuf_parse_result(result);
  if (!error.empty()) throw PolicyError(prefix + error);
  clear_locations(&tree);
  const bool one_expression =
      tree.stmts_size() == 1 && tree.stmts(0).stmt().has_select_stmt() &&
      tree.stmts(0).stmt().select_stmt().target_list_size() == 1 &&
      tree.stmts(0).stmt().select_stmt().from_clause_size() == 0 &&
      !tree.stmts(0).stmt().select_stmt().has_where_clause() &&
      tree.stmts(0).stmt().select_stmt().op() == pg_query::SETOP_NONE &&
      tree.stmts(0).stmt().select_stmt().target_list(0).has_res_target() &&
      tree.stmts(0).stmt().select_stmt().target_list(0).res_target().name().empty();
  if (!one_expression) throw PolicyError(prefix + "is not one SQL expression");
  auto out = std::make_shared<PolicyExpression>();
  out->sql = std::string(sql);
  out->line = line;
  out->tree = tree.stmts(0).stmt().select_stmt().target_list(0).res_target().val();
  if (boolean && !boolean_shape(out->tree)) {
    throw PolicyError(prefix +
                      "is not a boolean expression (a comparison, AND/OR/NOT, IS, "
                      "EXISTS, IN, ANY/ALL, a boolean column or a cast to boolean)");
  }
  Validator(policy, table, prefix, out.get()).walk(out->tree);
  return out;
}

std::string scope_expression(const TablePolicy& table) {
  const std::string tenant = quote_identifier(table.tenant_column) + " = tenantgate.tenant()";
  const std::string owner = quote_identifier(table.owner_column) + " = tenantgate.user_id()";
  switch (table.scope) {
    case Scope::kTenant:
      return tenant;
    case Scope::kOwner:
      return owner;
    case Scope::kTenantOwner:
      return tenant + " AND " + owner;
    case Scope::kShared:
      return "true";
    case Scope::kDeny:
    case Scope::kPolicies:
      break;
  }
  return "";
}

}  // namespace tenantgate::policy
