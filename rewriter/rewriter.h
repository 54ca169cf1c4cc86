// The SQL rewriter: (SQL text, identity, policy snapshot) in, the text to
// forward or a refusal out. Pure: no I/O, no globals that change behaviour.
//
// Every reference to a scoped table becomes `(SELECT * FROM t WHERE <scope
// predicate>) <alias>`; UPDATE/DELETE targets get the predicate in WHERE;
// INSERT fills or checks the policy columns; anything not understood is
// refused. Files: pg_tree (libpg_query parse/deparse/verify),
// statement_limits (54001 pre-checks), statement_walker.h with
// scope_injector (reads), write_checks (writes), row_policies (tables with
// row policies and column masks) and utility_statements (everything else),
// identity_literal (constants), rewrite_template (identity-free rewrites),
// rewrite_cache (RewriteCache).
//
// Where tenantgate deliberately differs from row-level security (it refuses
// or behaves differently where RLS would run the statement):
//   - INSERT into a scoped table needs a column list (the rewriter has no
//     schema to know where the policy columns are); DEFAULT VALUES is fine.
//   - INSERT ... SELECT may not supply a policy column (0A000): omit it and it
//     is filled in. (Tables with row policies verify written rows instead;
//     their differences are listed in README.md.) A policy column may only be given as a constant,
//     a $n parameter (checked at Bind) or DEFAULT (filled), not an expression.
//   - PREPARE of a statement that would need a Bind-time parameter check is
//     refused (EXECUTE's parameters cannot be checked). The proxy refuses
//     EXECUTE (also under EXPLAIN) of a statement name that carries
//     parameter checks or that the session never saw prepared
//     (Rewritten::prepared_names tells it which names a query string uses).
//   - UPDATE/INSERT ... ON CONFLICT may assign a policy column only the
//     caller's own value (constant or $n), never DEFAULT or an expression.
//   - ON CONFLICT DO UPDATE on another tenant's row does nothing (RLS raises
//     an error), for tables with only a scope.
//   - UPDATE/DELETE ... WHERE CURRENT OF gets no extra predicate (PostgreSQL
//     allows none); the cursor was declared through the rewriter, so the row
//     it points at is already in scope.
//   - COPY FROM into scoped tables is refused (interim: rows not validated);
//     COPY to/from files or programs, and COPY with FORCE_* * options, are
//     refused; COPY t TO becomes COPY (SELECT ... FROM ONLY t WHERE ...) TO.
//   - TABLESAMPLE on a scoped table is refused.
//   - System columns (ctid, xmin, ...) of a scoped table and schema-qualified
//     column references (public.t.col) no longer resolve (server error).
//   - A whole-row reference to a scoped table (`SELECT u FROM users u`) has
//     type record instead of users.
//   - A scoped reference or write target is qualified with the schema the
//     policy resolved (`users` -> `public.users`): an unlisted table that
//     shadows it on the server's search_path is not what tenantgate reads.
//   - CockroachDB-only syntax is refused (42601): libpg_query parses
//     PostgreSQL's grammar. Under Dialect::kCockroachDB the constructs of
//     dialect.h (UPSERT, AS OF SYSTEM TIME, hints, ...) are carried through.
//   - Statements that libpg_query 15-4.0.0 deparses wrongly are refused
//     (0A000) when they need rewriting; unchanged ones pass byte for byte.
//   - DDL, TRUNCATE, GRANT/REVOKE, DO, CREATE FUNCTION, CALL, MERGE, SELECT
//     INTO, LISTEN/NOTIFY, ALTER SYSTEM, LOAD, VACUUM/ANALYZE, CLUSTER,
//     REINDEX, CHECKPOINT, LOCK, two-phase commit, SET ROLE/SESSION
//     AUTHORIZATION, SET of anything off an allow-list (search_path
//     included), SHOW of anything off an allow-list, and denied functions
//     are refused for non-bypass callers.
//
// Thread-safety: Rewriter is immutable after construction and may be used from
// many threads at once. rewrite() must run on a thread whose stack is at least
// kRequiredStackBytes (libpg_query recurses without a depth check); use
// run_with_large_stack() from threads you do not create yourself.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"

namespace tenantgate::rewriter {

// Stack every thread calling Rewriter::rewrite (or RewriteCache::rewrite on a
// miss) must have. Address space only: pages are touched as deep statements
// need them.
inline constexpr std::size_t kRequiredStackBytes = 256u << 20;

// Default nesting limit (Options::max_nesting_units, statement_limits.h).
// Measured: libpg_query's parse needs up to ~1.9 KB of stack per unit (a chain
// of `+1`), the rest of the pipeline less; 20,000 units need < 64 MB, a
// fourfold margin within kRequiredStackBytes.
inline constexpr std::size_t kMaxNestingUnits = 20000;

// Defaults of Options::max_set_operations and max_statements (measured in
// statement_limits.h).
inline constexpr std::size_t kMaxSetOperations = 500;
inline constexpr std::size_t kMaxStatements = 1000;

// Runs fn on a fresh thread with kRequiredStackBytes of stack and waits for it.
void run_with_large_stack(const std::function<void()>& fn);

// Starts fn on a thread with kRequiredStackBytes of stack; the caller joins it
// (pthread_join). Throws std::runtime_error when no thread can be started.
pthread_t start_large_stack_thread(std::function<void()> fn);

// A refusal: an ordinary PostgreSQL error the client will see.
struct Refusal {
  std::string sqlstate;  // 42501 policy, 42601 syntax, 0A000 unsupported, 54001 too large/deep
  std::string message;   // names the table or construct
};

enum class IdentityField { kTenant, kUser };

// A bound parameter whose value must equal an identity value. The proxy checks
// it at Bind, before anything executes: parameter $param_number, in text
// format, must canonicalise (policy::canonical_value with the identity's type)
// to the caller's value; in binary format it must decode, as the type the
// proxy declared for it in the Parse (type_oid), to that value. A mismatch,
// NULL, or a missing parameter is refused with 42501 naming table/column.
// Only produced for the extended protocol's Parse: a simple Query has no
// parameters to bind, PREPARE of such a statement is refused, and the proxy
// refuses SQL EXECUTE of a statement that has such checks.
struct ParamCheck {
  int param_number = 0;  // $n, 1-based
  IdentityField field = IdentityField::kTenant;
  std::string table;  // for the refusal message
  std::string column;
  std::string cast;  // type of an explicit cast written on the parameter ("" if none)
  // The type OID the proxy declares for the parameter in the Parse it
  // forwards, which is how the server reads the value (0 until it does).
  int32_t type_oid = 0;
};

// A prepared-statement name a statement uses. PostgreSQL keeps statements
// prepared with SQL PREPARE and with the protocol's Parse in one namespace,
// so the proxy tracks both to decide what SQL EXECUTE may run.
struct PreparedName {
  enum class Kind {
    kPrepare,        // PREPARE name AS ...
    kExecute,        // EXECUTE name, also under EXPLAIN [ANALYZE]
    kDeallocate,     // DEALLOCATE [PREPARE] name
    kDeallocateAll,  // DEALLOCATE ALL, DISCARD ALL (name empty)
    // Cursors (which share one namespace with protocol portals):
    kDeclareCursor,      // DECLARE name CURSOR ... (without WITH HOLD)
    kDeclareHoldCursor,  // DECLARE name CURSOR WITH HOLD ...
    kUseCursor,          // FETCH / MOVE name, WHERE CURRENT OF name
    kCloseCursor,        // CLOSE name
    kCloseAllCursors,    // CLOSE ALL (name empty)
    // COMMIT / END / ROLLBACK / ABORT (with or without AND CHAIN), PREPARE
    // TRANSACTION: the transaction ends (name empty).
    kEndTransaction,
  };
  Kind kind = Kind::kExecute;
  std::string name;
  friend bool operator==(const PreparedName&, const PreparedName&) = default;
};

// Whether a value written as `... ::cast` denotes the same value for a column
// holding identities of `type`: "" (no cast) and casts within the type's own
// family. A cast across families ('01'::int8 into a text tenant column) or to
// a lossy type ("char") could store another tenant's value after the check.
[[nodiscard]] bool cast_fits_identity(std::string_view cast, policy::ValueType type);

// The same for a parameter type the client declared in Parse (a type OID;
// 0 means "let the server infer it from the column").
[[nodiscard]] bool declared_type_fits_identity(int32_t type_oid, policy::ValueType type);

// COPY <scoped table> (columns) FROM STDIN: what the proxy must check in every
// row the client sends, because the rows never pass through the rewriter.
struct CopyIn {
  std::string table;  // schema.name, for messages
  bool csv = false;   // text format otherwise (binary is refused)
  char delimiter = '\t';
  std::string null_string = "\\N";
  bool header = false;
  char quote = '"';
  char escape = '"';
  std::size_t columns = 0;  // fields in each row the client sends
  struct Check {
    std::size_t position = 0;  // 0-based field in the client's rows
    IdentityField field = IdentityField::kTenant;
    std::string column;
  };
  std::vector<Check> checks;  // policy columns the client's column list names
  // Policy columns the client left out: the rewrite appended them to the
  // column list, and the proxy appends the caller's value to every row.
  std::vector<IdentityField> appended;
};

// An INSERT or UPDATE of a table with row policies is sent as `WITH
// tg_written AS (<statement> RETURNING ...) SELECT ... FROM tg_written WHERE
// <check or error>` (row_policies.cc): the backend answers it as a SELECT.
// The proxy restores the reply the client's statement gets from PostgreSQL:
// the command tag `INSERT 0 n` / `UPDATE n` in place of `SELECT n`, no
// RowDescription or DataRow (NoData for Describe) when the client wrote no
// RETURNING, and the check's error as row-level security's own (42501).
struct ReshapedWrite {
  enum class Command { kInsert, kUpdate };
  Command command = Command::kInsert;
  bool returning = false;  // the client's statement has RETURNING: its rows pass
  friend bool operator==(const ReshapedWrite&, const ReshapedWrite&) = default;
};

// A reshaped write that fails a policy check raises, from its CASE, the
// error `invalid input syntax for type integer: "<marker><message><marker>"`
// (SQLSTATE 22P02; CockroachDB words it differently but quotes the text
// too): <message> is the one row-level security reports, e.g. `new row
// violates row-level security policy for table "t"`. The proxy turns it into
// 42501 with that message, for reshaped writes only.
inline constexpr std::string_view kPolicyViolationMarker = "tenantgate_policy_violation:";

struct Rewritten {
  std::string sql;                       // what to forward
  bool changed = false;                  // false: sql is the input byte for byte
  std::vector<ParamCheck> param_checks;  // in statement order; may repeat a parameter
  // Set for COPY ... FROM STDIN into a scoped table, which is then the only
  // statement of the query string (simple protocol only).
  std::optional<CopyIn> copy_in;
  // Prepared-statement names the statements use, in statement order.
  std::vector<PreparedName> prepared_names;
  // One entry per statement of the query string, in order: how a reshaped
  // write was sent, nullopt for a statement answered as the client wrote it.
  // Empty when no statement is reshaped.
  std::vector<std::optional<ReshapedWrite>> reshaped;
};

class [[nodiscard]] RewriteResult {
 public:
  static RewriteResult ok(Rewritten r);
  static RewriteResult refused(std::string sqlstate, std::string message);

  [[nodiscard]] bool is_ok() const { return !refusal_.has_value(); }
  [[nodiscard]] const Rewritten& value() const { return value_; }
  [[nodiscard]] Rewritten& value() { return value_; }
  [[nodiscard]] const Refusal& refusal() const { return *refusal_; }

 private:
  Rewritten value_;
  std::optional<Refusal> refusal_;
};

// The database behind tenantgate, as far as the rewriter's constructions
// differ. PostgreSQL honours the CASE guards of evaluation_guards.cc and
// OFFSET 0 fences; CockroachDB's optimizer folds a CASE guard away next to the
// scope predicate (it inlines `tenant_id = 'acme'` into the CASE and folds it
// to true) and removes OFFSET 0, so there a table that a condition could leak
// is read through a MATERIALIZED CTE, which it never inlines.
enum class Dialect { kPostgreSQL, kCockroachDB };

struct Options {
  // Longer query strings are refused with 54001 (config: limits.max_statement_bytes).
  std::size_t max_statement_bytes = 1u << 20;
  // Query strings whose nesting estimate (statement_limits.h) exceeds this are
  // refused with 54001 before parsing. The default is what kRequiredStackBytes
  // supports with a wide margin; raising it needs a larger stack.
  std::size_t max_nesting_units = kMaxNestingUnits;
  // Caps on the shapes whose analysis costs most per byte (statement_limits.h
  // has the measurements), far above what applications send: UNION /
  // INTERSECT / EXCEPT operations in a query string, and statements in one.
  std::size_t max_set_operations = kMaxSetOperations;
  std::size_t max_statements = kMaxStatements;
  // A statement whose only changes are scoped-table wraps is written as the
  // client's text with the wraps edited in (skipping the deparse); false
  // deparses every changed statement. Both are verified against the tree.
  bool edit_client_text = true;
  Dialect dialect = Dialect::kPostgreSQL;
};

class Rewriter {
 public:
  explicit Rewriter(Options options) : options_(options) {}

  // Rewrites a query string (one or more statements; all or nothing) for a
  // non-bypass caller.
  //
  // Steps: statements over max_statement_bytes or nesting deeper than the
  // stack allows are refused with 54001 before parsing; the text is parsed
  // with libpg_query; every statement is walked (scoping reads, checking
  // writes, refusing what is not understood); a changed statement is deparsed
  // and verified by parsing the output again; a query string with no changed
  // statement is returned byte for byte (changed = false). Identity values
  // are embedded as constants (render_literal in identity_literal.h).
  //
  // Needs kRequiredStackBytes of stack. Costs tens of microseconds per
  // statement: use RewriteCache (rewrite_cache.h) on the per-query path.
  [[nodiscard]] RewriteResult rewrite(std::string_view sql, const policy::Identity& identity,
                                      const policy::Policy& policy) const;

  [[nodiscard]] const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace tenantgate::rewriter
