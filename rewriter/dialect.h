// The CockroachDB dialect layer: recognises a curated set of CockroachDB-only
// constructs with PostgreSQL's scanner (pg_query_scan), hands the walker a
// PostgreSQL-parseable form of each statement, and puts the CockroachDB
// syntax back into the text the walker produced. Anything outside the set is
// left to the parser, which refuses it (fail closed); the CockroachDB
// statements that must never run through tenantgate are refused here with a
// message that names them.
//
// The rules, construct by construct (README "CockroachDB" has the list):
//   - UPSERT INTO t (cols) ... becomes INSERT INTO t (cols) ... ON CONFLICT
//     (<key>) DO UPDATE SET c = excluded.c for every listed column outside the
//     key and the policy columns (DO NOTHING when none is left); the key is
//     the table's `key` in the policy. The walker then fills or checks the
//     policy columns and scopes the update part, and that form is forwarded.
//   - AS OF SYSTEM TIME <expr> right after the FROM list of a top-level
//     SELECT is cut out for the analysis and put back after the rewritten
//     FROM list. <expr> may hold constants, $n, casts, INTERVAL, and the
//     functions follower_read_timestamp, with_max_staleness and
//     with_min_timestamp only. BEGIN / SET TRANSACTION with PRIORITY or AS
//     OF SYSTEM TIME are validated token by token and forwarded as written.
//   - Index hints t@idx, t@primary, t@{...} on a FROM item are cut out and
//     put back on the same table's reference in the rewritten text (inside
//     the derived table that scopes it); join hints (INNER HASH JOIN, LEFT
//     LOOKUP JOIN, MERGE, INVERTED, STRAIGHT) likewise on the same JOIN.
//   - UPDATE / DELETE ... [ORDER BY <columns>] [LIMIT <n>] and
//     RETURNING NOTHING are cut out and put back at the statement's end.
//   - SHOW TRANSACTION STATUS|PRIORITY, SHOW of the CockroachDB session
//     variables adapters read, SET of a short list of CockroachDB session
//     variables to a constant, and the introspection ORMs send (SHOW TABLES,
//     DATABASES, SCHEMAS, COLUMNS / INDEXES / CONSTRAINTS FROM t, SHOW
//     CREATE t) are forwarded as written: they reveal catalog shapes only.
//   - Refused with 42501 naming the feature: IMPORT, EXPORT, BACKUP,
//     RESTORE, CREATE CHANGEFEED, EXPERIMENTAL CHANGEFEED FOR, SET / SHOW /
//     RESET CLUSTER SETTING, square-bracket statement sources, SHOW JOBS,
//     SESSIONS, QUERIES, STATEMENTS, RANGES, STATISTICS, HISTOGRAM, LOCKS,
//     TRACE, GRANTS, USERS, ROLES, ZONE CONFIGURATIONS, column families in
//     CREATE TABLE.
//
// Restoring is verified: the restored text is translated again, and the
// statements it yields must parse into the trees the walker produced and
// carry the same CockroachDB syntax; otherwise the statement is refused.
//
// Thread-safety: plain functions over values. Needs kRequiredStackBytes of
// stack (it parses).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"
#include "rewriter/rewriter.h"

namespace tenantgate::rewriter {

// What one statement of the query string carries past the walker.
struct CockroachCarry {
  // Set when the dialect layer decided the statement itself: the walker sees
  // a placeholder, and this text is what is forwarded in its place.
  std::optional<std::string> original;
  std::string as_of;  // "AS OF SYSTEM TIME ..." as written, or empty
  struct IndexHint {
    std::string relation;  // the referenced name's last part, folded
    std::string hint;      // "@idx" or "@{...}" as written; empty: no hint
    friend bool operator==(const IndexHint&, const IndexHint&) = default;
  };
  std::vector<IndexHint> index_hints;   // every FROM reference, in order
  std::vector<std::string> join_hints;  // every JOIN, in order ("" for none)
  std::string tail;                     // "ORDER BY ... LIMIT ..." of UPDATE/DELETE
  std::string returning_nothing;        // "RETURNING NOTHING" as written, or empty
  // An UPSERT read as INSERT ... ON CONFLICT: that form, never the client's
  // UPSERT, must be forwarded (CockroachDB's UPSERT would overwrite a row of
  // another tenant).
  bool upsert = false;

  [[nodiscard]] bool empty() const;
  friend bool operator==(const CockroachCarry&, const CockroachCarry&) = default;
};

struct CockroachTranslation {
  std::string analysis;                    // the PostgreSQL-parseable text the walker reads
  std::vector<CockroachCarry> statements;  // one per ;-separated part of the text
  // True when some statement carries syntax that must be put back.
  [[nodiscard]] bool needs_restore() const;
  // True when the client's text must not be forwarded even if the rewriter
  // changed nothing (an UPSERT was translated).
  [[nodiscard]] bool must_forward_analysis() const;
};

// Translates a query string for analysis. `database` is the connection's (for
// resolving UPSERT targets). A refusal names the construct.
[[nodiscard]] std::optional<Refusal> translate_cockroach(std::string_view sql,
                                                         const policy::Policy& policy,
                                                         const std::string& database,
                                                         CockroachTranslation* out);

// Puts the carried syntax back into `text`, the walker's output for
// `translation.analysis` (statements in the same order), and verifies it.
[[nodiscard]] std::optional<Refusal> restore_cockroach(const CockroachTranslation& translation,
                                                       const policy::Policy& policy,
                                                       const std::string& database,
                                                       std::string* text);

}  // namespace tenantgate::rewriter
