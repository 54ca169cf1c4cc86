// The statement walker: visits one parsed statement, scopes every reference to
// a policy table, checks writes, and refuses statements and nodes it does not
// understand (fail closed: the node types it accepts are enumerated; anything
// else is a refusal).
//
// It writes identity-free trees: where an identity value belongs it inserts a
// string constant holding a marker (see identity_literal.h) that the template
// builder later turns into a substitution slot.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pg_query.pb.h"
#include "policy/app_catalog.h"
#include "policy/policy.h"
#include "rewriter/function_rules.h"
#include "rewriter/identity_literal.h"
#include "rewriter/leak_guard.h"
#include "rewriter/pg_tree.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

// What the walker needs to know about the caller; identity values themselves
// are not needed (that is what makes rewrite results cacheable).
struct IdentityShape {
  bool has_user = false;
  std::string database;
  const policy::AppCatalog* catalog = nullptr;  // null: empty (function_rules.h)
};

[[nodiscard]] IdentityShape identity_shape(const policy::Identity& identity);

// A constant written for a policy column; checked against the caller's value
// when the template is instantiated.
struct ConstCheck {
  IdentityField field = IdentityField::kTenant;
  std::string literal;  // the constant's text as the parser reports it
  std::string table;
  std::string column;
  std::string cast;  // explicit cast written on the constant ("" if none)
};

// A scoped table reference rewritten in the statement's own text: the
// qualified name at `position` (a byte offset into the query string) is
// replaced by `text`, the wrapping subquery. When every change to a statement
// is such a wrap, the rewriter edits the client's text instead of deparsing
// the whole tree (the result is verified against the tree either way).
struct TextEdit {
  std::size_t position = 0;
  std::string text;
};

class StatementWalker {
 public:
  StatementWalker(const policy::Policy& policy, const IdentityShape& shape, const Markers& markers,
                  Dialect dialect = Dialect::kPostgreSQL)
      : policy_(policy),
        shape_(shape),
        markers_(markers),
        dialect_(dialect),
        functions_(policy, shape.catalog),
        leak_rules_(shape.catalog) {}

  // Rewrites one top-level statement in place. Returns a refusal, or nullopt
  // with changed() telling whether the tree was modified.
  [[nodiscard]] std::optional<Refusal> rewrite_statement(pg_query::Node* stmt);

  [[nodiscard]] bool changed() const { return changed_; }
  [[nodiscard]] int tenant_markers() const { return tenant_markers_; }
  [[nodiscard]] int user_markers() const { return user_markers_; }
  // tenantgate.claim('name') calls substituted so far: claims()[k] is the
  // name behind the k-th claim marker (claim_marker(markers, k)).
  [[nodiscard]] const std::vector<std::string>& claims() const { return claims_; }
  [[nodiscard]] std::vector<ParamCheck>& param_checks() { return param_checks_; }
  [[nodiscard]] std::vector<ConstCheck>& const_checks() { return const_checks_; }
  [[nodiscard]] std::optional<CopyIn>& copy_in() { return copy_in_; }
  // After rewrite_statement: set when the statement became a checked write
  // (add_write_check), which reshapes it when it is the top-level statement.
  [[nodiscard]] const std::optional<ReshapedWrite>& reshaped_write() const {
    return reshaped_write_;
  }

  // The RangeVar positions parse_sql kept; without them no TextEdits are made.
  void set_range_var_positions(const RangeVarPositions* positions) {
    range_var_positions_ = positions;
  }
  // After rewrite_statement: the statement's changes as text edits, or empty
  // when some change is not a wrap (the tree must then be deparsed).
  [[nodiscard]] const std::vector<TextEdit>& text_edits() const {
    static const std::vector<TextEdit> none;
    return text_editable_ ? text_edits_ : none;
  }

 private:
  // A resolved relation reference and what the policy says about it.
  struct Target {
    policy::Resolution resolution;
    std::string display;  // schema.name for messages
  };

  // scope_injector.cc: reads.
  bool walk_statement(pg_query::Node* stmt, bool top_level);
  bool walk_select(pg_query::SelectStmt* select);
  bool walk_from_item(pg_query::Node* item);
  bool scope_range_var(pg_query::Node* item);
  void add_wrap_edit(const pg_query::RangeVar& rv, const policy::TablePolicy& table);
  // Every change but a wrap goes through here: the tree must be deparsed.
  void mark_changed() {
    changed_ = true;
    text_editable_ = false;
  }
  // Whether `rv` may be read: false on refusal; *scoped is the table's policy
  // when the reference must be scoped, nullptr when it may be read as it is.
  bool read_access(const pg_query::RangeVar& rv, const policy::TablePolicy** scoped);
  bool walk_node(pg_query::Node* node);
  bool walk_fields(google::protobuf::Message* message);
  bool walk_plain_message(google::protobuf::Message* message);
  bool walk_func_call(pg_query::FuncCall* call);
  // Function rules (function_rules.h) for the other ways a name becomes a call.
  // Names from `first` on (Strings only) as check_attribute judges them.
  bool check_attribute_names(const google::protobuf::RepeatedPtrField<pg_query::Node>& names,
                             int first);
  bool check_operator(const pg_query::A_Expr& expr);
  bool check_sublink_operator(const pg_query::SubLink& link);
  bool check_type_name(const pg_query::TypeName& type);
  bool push_with(pg_query::WithClause* with);
  void pop_with(const pg_query::WithClause* with);
  bool is_cte_name(const pg_query::RangeVar& rv) const;
  bool resolve(const pg_query::RangeVar& rv, Target* out);
  bool require_owner_identity(const Target& target);
  // The predicate rows of `table`, named `qualifier`, must satisfy to be read
  // (kSelect) or touched by an UPDATE/DELETE; for kPolicies tables see
  // policy_predicate.
  pg_query::Node scope_predicate(const policy::TablePolicy& table, const std::string& qualifier,
                                 policy::PolicyCommand command = policy::PolicyCommand::kSelect,
                                 bool reads = true);

  // row_policies.cc: tables with row policies (policy::Scope::kPolicies).
  //
  // The permissive policies of `command` (and `all`) OR-ed, AND-ed with its
  // restrictive ones; false when no permissive policy applies. `check`: the
  // WITH CHECK expressions (a policy without one uses its USING). Identity
  // calls become markers, column references are qualified with `qualifier`,
  // and subqueries are walked (so the tables they read get their own
  // policies). A refusal is recorded in refusal_.
  pg_query::Node policy_predicate(const policy::TablePolicy& table, const std::string& qualifier,
                                  policy::PolicyCommand command, bool check);
  bool instantiate_expression(pg_query::Node* node, const policy::TablePolicy& table,
                              const std::string& qualifier, int subquery_depth);
  bool instantiate_expression_fields(google::protobuf::Message* message,
                                     const policy::TablePolicy& table, const std::string& qualifier,
                                     int subquery_depth);
  // A top-level INSERT or UPDATE of a kPolicies table becomes
  // `WITH tg_written AS (<stmt> RETURNING q.*) SELECT <returning> FROM
  // tg_written AS q WHERE CASE WHEN <check> THEN true ELSE <error> END`, so
  // that a row that fails the check aborts the statement. With
  // expected_rows, a one-row aggregate over tg_written first fails the
  // statement when fewer rows were written.
  bool add_write_check(pg_query::Node* stmt);
  // The derived table of a table with column masks: `SELECT tg_masked.*
  // FROM t CROSS JOIN LATERAL jsonb_populate_record(t, jsonb_build_object(
  // 'col', CASE WHEN <unless> THEN t.col::text ELSE (<mask>)::text END, ...))
  // AS tg_masked WHERE <predicate>`: every column of t, in t's order and
  // types, the masked ones replaced. Refusals go to refusal_.
  bool mask_wrap(const policy::TablePolicy& table, const pg_query::RangeVar& inner,
                 pg_query::Node predicate, pg_query::Node* out);
  // Refuses a write whose conditions, SET values or RETURNING name a masked
  // column of `table` or its whole row (by its name or `alias`, `t.*`,
  // `(t).col`, a function of the row), which would see the value the mask
  // hides, and any reference to the rewriter's own aliases (tg_w, tg_row...).
  bool check_masked_reads(const policy::TablePolicy& table, const google::protobuf::Message& part,
                          const std::string& alias, const char* where);
  struct PendingCheck {
    const policy::TablePolicy* table = nullptr;
    std::string qualifier;
    policy::PolicyCommand command = policy::PolicyCommand::kInsert;
    bool reads = false;        // SELECT policies apply to the new rows too
    bool on_conflict = false;  // INSERT ... ON CONFLICT DO UPDATE
    // ON CONFLICT DO UPDATE without a WHERE of the client's, from VALUES:
    // every proposed row is inserted or updated, so fewer written rows means
    // a conflicting row the caller may not update (RLS raises an error).
    int expected_rows = -1;
  };
  std::optional<PendingCheck> pending_check_;
  std::optional<ReshapedWrite> reshaped_write_;
  int cte_depth_ = 0;
  std::vector<std::string> claims_;
  pg_query::Node marker_const(IdentityField field);
  void and_into(pg_query::Node* where, pg_query::Node predicate);

  // write_checks.cc: INSERT, UPDATE, DELETE.
  bool walk_insert(pg_query::InsertStmt* insert);
  bool walk_update(pg_query::UpdateStmt* update);
  bool walk_delete(pg_query::DeleteStmt* del);
  bool writable_target(const pg_query::RangeVar& rv, const char* verb, Target* out);
  void qualify(pg_query::RangeVar* rv, const policy::TablePolicy& table);
  bool check_assignments(google::protobuf::RepeatedPtrField<pg_query::Node>* targets,
                         const Target& target, const char* verb);
  bool check_policy_value(pg_query::Node* value, IdentityField field, const Target& target,
                          const std::string& column, bool allow_default_fill);

  // utility_statements.cc: everything that is not a query.
  bool walk_copy(pg_query::Node* stmt);
  bool walk_copy_from_scoped(pg_query::CopyStmt* copy, const Target& target);
  bool check_set(const pg_query::VariableSetStmt& set);
  bool check_show(const pg_query::VariableShowStmt& show);

  // evaluation_guards.cc: client conditions that could run on rows outside
  // the scope (leak_guard.h) are guarded with the scope predicate, and
  // derived tables and CTEs that hold scoped rows are fenced.
  //
  // A FROM item of one query level that holds scoped rows.
  struct GuardItem {
    std::string alias;                           // how the query's columns name it
    const policy::TablePolicy* table = nullptr;  // a scoped table: guard with its predicate
    bool column_aliases = false;                 // `t AS x(a, b)`: its columns are renamed
    pg_query::SelectStmt* wrap = nullptr;        // its wrap (CockroachDB fences it)
    pg_query::SelectStmt* derived = nullptr;     // a derived table: fence it
    pg_query::CommonTableExpr* cte = nullptr;    // a CTE reference: fence with MATERIALIZED
    bool plain_outputs = true;  // derived/CTE: no output computes on scoped rows unguarded
    bool hidden = false;        // inside a join with an alias: its name is out of reach
    bool nullable = false;      // on the null-supplying side of an outer join below
  };
  struct GuardLevel {
    std::vector<GuardItem> items;  // in FROM order, as they are walked
  };
  enum class ClauseKind { kWhere, kOn, kHaving };
  void push_guard_level() { guard_levels_.emplace_back(); }
  void pop_guard_level() { guard_levels_.pop_back(); }
  // Keeps the database from merging `select` into the enclosing query;
  // `lateral`: it may refer to items before it (no CTE can hold it).
  bool fence(pg_query::SelectStmt* select, bool lateral = false);
  void add_guard_item(GuardItem item) { guard_levels_.back().items.push_back(std::move(item)); }
  // Guards the conjuncts of `clause` of the innermost level; for ON, only
  // the items from `first_item` on (the join's own) are in reach.
  bool guard_clause(pg_query::Node* clause, std::size_t first_item, ClauseKind kind);
  // The AND of the scope predicates of `scoped` (refused for items it cannot name).
  bool scope_guard(const std::vector<const GuardItem*>& scoped, pg_query::Node* out);
  // For a derived table or CTE query: guards outputs that an enclosing query
  // could substitute into its conditions; records a query whose outputs stay
  // unsafe (in unsafe_outputs_), so that conditions on it fence it.
  bool guard_outputs(pg_query::SelectStmt* select);
  // EXISTS / NOT EXISTS whose subquery can carry the scope of the outer
  // tables it reads as a gate, instead of being guarded as a whole.
  bool gate_exists(pg_query::Node* conjunct, const std::vector<const GuardItem*>& items);
  void resolve_guard_items(const pg_query::Node& conjunct, std::size_t first_item, ClauseKind kind,
                           std::vector<const GuardItem*>* out) const;
  pg_query::CommonTableExpr* tainted_cte(const pg_query::RangeVar& rv) const;

  bool refuse(const char* sqlstate, std::string message);

  const policy::Policy& policy_;
  const IdentityShape& shape_;
  const Markers& markers_;
  const Dialect dialect_;
  FunctionRules functions_;
  LeakRules leak_rules_;
  std::vector<std::set<std::string>> cte_scopes_;
  // Parallel to cte_scopes_: the CTEs of each WITH whose rows come from scoped tables.
  std::vector<std::map<std::string, pg_query::CommonTableExpr*>> tainted_ctes_;
  std::vector<GuardLevel> guard_levels_;
  int scoped_refs_ = 0;          // scoped tables and tainted CTEs referenced so far
  bool derived_select_ = false;  // the next walk_select is a derived table or CTE query
  std::set<const pg_query::SelectStmt*> unsafe_outputs_;
  std::set<const pg_query::SubLink*> scoped_sublinks_;  // subqueries that read scoped rows
  std::set<const pg_query::SelectStmt*> wraps_;         // the scoped tables' derived tables
  bool changed_ = false;
  int tenant_markers_ = 0;
  int user_markers_ = 0;
  int depth_ = 0;
  std::vector<ParamCheck> param_checks_;
  std::vector<ConstCheck> const_checks_;
  std::optional<CopyIn> copy_in_;
  std::optional<Refusal> refusal_;
  const RangeVarPositions* range_var_positions_ = nullptr;
  std::vector<TextEdit> text_edits_;
  bool text_editable_ = true;
};

// Whether an UPDATE needs SELECT rights on its target (WHERE, FROM,
// RETURNING, or a SET value that reads a column), which brings in the
// target's SELECT policies, as in row-level security.
[[nodiscard]] bool update_reads_target(const pg_query::UpdateStmt& update);

// Sets up `select` as the parser builds a plain SELECT; with `star`, its
// target list is `*`.
void init_select(pg_query::SelectStmt* select, bool star);

// Message naming a node type for refusals ("CreateStmt", "MergeStmt", ...).
[[nodiscard]] std::string node_type_name(const pg_query::Node& node);

}  // namespace tenantgate::rewriter
