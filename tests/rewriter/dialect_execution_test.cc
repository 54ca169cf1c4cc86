// Execution tests for the CockroachDB forms PostgreSQL also runs: UPSERT,
// which the dialect layer forwards as INSERT ... ON CONFLICT (key) DO UPDATE
// ... WHERE <scope> (rewriter/dialect.h). Each statement is rewritten with
// Dialect::kCockroachDB and run on a real PostgreSQL 15 by the superuser; the
// oracle is what CockroachDB's UPSERT means (INSERT ... ON CONFLICT (primary
// key) DO UPDATE SET <listed columns> = excluded.<column>), run as a role
// without BYPASSRLS on the same tables with FORCE ROW LEVEL SECURITY and
// policies USING / WITH CHECK (<scope predicate>).
//
// Both run in a rolled-back transaction. When row-level security accepts the
// statement, the RETURNING rows, the row count and the table afterwards must
// be equal. When it raises an error (the key belongs to another tenant or
// owner: RLS refuses the DO UPDATE), tenantgate's form must change nothing
// outside the caller's scope; it leaves that row alone (the difference
// rewriter.h lists). Independently, no rewritten statement may change a row
// of another tenant or owner.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "rewriter/rewriter.h"
#include "tests/support/pg_server.h"

namespace tenantgate::rewriter {
namespace {

struct Outcome {
  bool ok = false;
  std::string sqlstate;
  std::string rows;      // RETURNING rows, one per line
  std::string affected;  // PQcmdTuples
  std::string table;     // the table afterwards
  std::string others;    // rows outside the caller's scope afterwards
};

class Db {
 public:
  explicit Db(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
  }
  ~Db() { PQfinish(conn_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs sql; returns false with the SQLSTATE on error.
  bool run(const std::string& sql, std::string* out = nullptr, std::string* sqlstate = nullptr,
           std::string* affected = nullptr) {
    PGresult* res = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(res);
    const bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok && sqlstate != nullptr) {
      const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      *sqlstate = s ? s : "?";
    }
    if (ok && out != nullptr) {
      out->clear();
      for (int r = 0; r < PQntuples(res); ++r) {
        for (int c = 0; c < PQnfields(res); ++c) {
          *out +=
              (c ? "|" : "") + std::string(PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c));
        }
        *out += "\n";
      }
    }
    if (ok && affected != nullptr) *affected = PQcmdTuples(res);
    PQclear(res);
    return ok;
  }

 private:
  PGconn* conn_;
};

constexpr const char* kSchema = R"sql(
CREATE ROLE rls_user LOGIN NOBYPASSRLS;
CREATE TABLE u (id int PRIMARY KEY, tenant_id text NOT NULL, name text, email text);
CREATE TABLE r (id int PRIMARY KEY, tenant_id text NOT NULL, created_by int NOT NULL, data text);
CREATE TABLE a (tenant_id text NOT NULL, id int NOT NULL, balance int, PRIMARY KEY (tenant_id, id));
INSERT INTO u VALUES (1, 'acme', 'a1', 'a1@x'), (2, 'globex', 'g2', 'g2@x'),
                     (3, 'acme', 'a3', NULL), (4, 'globex', 'g4', NULL);
INSERT INTO r VALUES (1, 'acme', 42, 'mine'), (2, 'acme', 7, 'colleague'), (3, 'globex', 42, 'other');
INSERT INTO a VALUES ('acme', 1, 10), ('globex', 1, 20), ('acme', 2, 30);
ALTER TABLE u ENABLE ROW LEVEL SECURITY; ALTER TABLE u FORCE ROW LEVEL SECURITY;
ALTER TABLE r ENABLE ROW LEVEL SECURITY; ALTER TABLE r FORCE ROW LEVEL SECURITY;
ALTER TABLE a ENABLE ROW LEVEL SECURITY; ALTER TABLE a FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON u USING (tenant_id = current_setting('app.tenant'))
  WITH CHECK (tenant_id = current_setting('app.tenant'));
CREATE POLICY p ON r
  USING (tenant_id = current_setting('app.tenant') AND created_by = current_setting('app.user')::int)
  WITH CHECK (tenant_id = current_setting('app.tenant') AND created_by = current_setting('app.user')::int);
CREATE POLICY p ON a USING (tenant_id = current_setting('app.tenant'))
  WITH CHECK (tenant_id = current_setting('app.tenant'));
GRANT ALL ON u, r, a TO rls_user;
)sql";

constexpr const char* kPolicy = R"toml(
default_action = "deny"
search_path = ["public"]
[tables."public.u"]
scope = "tenant"
key = ["id"]
[tables."public.r"]
scope = "tenant_owner"
owner_column = "created_by"
key = ["id"]
[tables."public.a"]
scope = "tenant"
key = ["tenant_id", "id"]
)toml";

struct Case {
  std::string table;
  std::string upsert;  // CockroachDB SQL sent through tenantgate
  // What it means in PostgreSQL, as the RLS role runs it; {T} and {U} are the
  // caller's tenant and user as literals.
  std::string oracle;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"u", "UPSERT INTO u (id, name) VALUES (10, 'n')",
       "INSERT INTO u (id, name, tenant_id) VALUES (10, 'n', {T}) ON CONFLICT (id) DO UPDATE SET "
       "name = excluded.name"},
      {"u", "UPSERT INTO u (id, name) VALUES (1, 'x')",
       "INSERT INTO u (id, name, tenant_id) VALUES (1, 'x', {T}) ON CONFLICT (id) DO UPDATE SET "
       "name = excluded.name"},
      {"u", "UPSERT INTO u (id, name) VALUES (2, 'x')",
       "INSERT INTO u (id, name, tenant_id) VALUES (2, 'x', {T}) ON CONFLICT (id) DO UPDATE SET "
       "name = excluded.name"},
      {"u",
       "UPSERT INTO u (id, name, email) VALUES (3, 'x', 'e'), (5, 'y', 'f') RETURNING id, name",
       "INSERT INTO u (id, name, email, tenant_id) VALUES (3, 'x', 'e', {T}), (5, 'y', 'f', {T}) "
       "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email RETURNING id, "
       "name"},
      {"u", "UPSERT INTO u (id, name) SELECT id + 100, name FROM u WHERE id < 4",
       "INSERT INTO u (id, name, tenant_id) SELECT id + 100, name, {T} FROM u WHERE id < 4 ON "
       "CONFLICT (id) DO UPDATE SET name = excluded.name"},
      {"u", "UPSERT INTO u (id) VALUES (4)",
       "INSERT INTO u (id, tenant_id) VALUES (4, {T}) ON CONFLICT (id) DO NOTHING"},
      {"u", "UPSERT INTO u (id, tenant_id, name) VALUES (6, 'acme', 'z')",
       "INSERT INTO u (id, tenant_id, name) VALUES (6, 'acme', 'z') ON CONFLICT (id) DO UPDATE "
       "SET name = excluded.name"},
      {"u", "UPSERT INTO u (id, name) VALUES (1, 'x') RETURNING id, tenant_id, name",
       "INSERT INTO u (id, name, tenant_id) VALUES (1, 'x', {T}) ON CONFLICT (id) DO UPDATE SET "
       "name = excluded.name RETURNING id, tenant_id, name"},
      {"r", "UPSERT INTO r (id, data) VALUES (1, 'd')",
       "INSERT INTO r (id, data, tenant_id, created_by) VALUES (1, 'd', {T}, {U}) ON CONFLICT "
       "(id) DO UPDATE SET data = excluded.data"},
      {"r", "UPSERT INTO r (id, data) VALUES (9, 'd') RETURNING id, created_by",
       "INSERT INTO r (id, data, tenant_id, created_by) VALUES (9, 'd', {T}, {U}) ON CONFLICT "
       "(id) DO UPDATE SET data = excluded.data RETURNING id, created_by"},
      {"a", "UPSERT INTO a (id, balance) VALUES (1, 500), (3, 1)",
       "INSERT INTO a (id, balance, tenant_id) VALUES (1, 500, {T}), (3, 1, {T}) ON CONFLICT "
       "(tenant_id, id) DO UPDATE SET balance = excluded.balance"},
  };
  return all;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

std::string scope_condition(const std::string& table, const std::string& tenant, int user) {
  std::string c = "tenant_id = '" + tenant + "'";
  if (table == "r") c += " AND created_by = " + std::to_string(user);
  return c;
}

TEST(DialectExecution, UpsertMatchesRowLevelSecurity) {
  const auto server = testing::PgServer::start();
  Db owner(server->conninfo("postgres"));
  ASSERT_TRUE(owner.run(kSchema));
  Db rls(server->conninfo("rls_user"));
  const auto policy = policy::parse_policy(kPolicy, "dialect_execution.toml");
  Options options;
  options.dialect = Dialect::kCockroachDB;
  const Rewriter rewriter(options);

  int compared = 0;
  int rls_refused = 0;
  for (const auto& [tenant, user] :
       std::vector<std::pair<std::string, int>>{{"acme", 42}, {"globex", 42}, {"acme", 7}}) {
    policy::Identity id;
    id.tenant = {tenant, policy::ValueType::kText};
    id.user = policy::TypedValue{std::to_string(user), policy::ValueType::kInt};
    id.database = "postgres";
    ASSERT_TRUE(rls.run("SELECT set_config('app.tenant', '" + tenant +
                        "', false), set_config('app.user', '" + std::to_string(user) +
                        "', false)"));
    for (const Case& c : cases()) {
      const std::string where = c.upsert + " as " + tenant + "/" + std::to_string(user);
      RewriteResult rewritten = RewriteResult::refused("", "");
      run_with_large_stack([&] { rewritten = rewriter.rewrite(c.upsert, id, *policy); });
      const std::string select = "SELECT * FROM " + c.table + " ORDER BY 1, 2";
      const std::string others = "SELECT * FROM " + c.table + " WHERE NOT (" +
                                 scope_condition(c.table, tenant, user) + ") ORDER BY 1, 2";

      auto run_side = [&](Db& db, const std::string& sql) {
        Outcome o;
        EXPECT_TRUE(db.run("BEGIN"));
        o.ok = db.run(sql, &o.rows, &o.sqlstate, &o.affected);
        if (o.ok) {
          EXPECT_TRUE(db.run(select, &o.table));
          if (&db == &owner) {
            EXPECT_TRUE(owner.run(others, &o.others));
          }
        }
        EXPECT_TRUE(db.run("ROLLBACK"));
        return o;
      };
      std::string before_others;
      ASSERT_TRUE(owner.run(others, &before_others));

      const std::string oracle = replace_all(replace_all(c.oracle, "{T}", "'" + tenant + "'"),
                                             "{U}", std::to_string(user));
      const Outcome expected = run_side(rls, oracle);
      if (!rewritten.is_ok()) {
        // tenantgate refuses: only acceptable where RLS refuses too.
        EXPECT_FALSE(expected.ok) << where << ": refused (" << rewritten.refusal().message
                                  << ") but RLS runs it";
        continue;
      }
      const Outcome actual = run_side(owner, rewritten.value().sql);
      ASSERT_TRUE(actual.ok) << where << "\n  rewritten: " << rewritten.value().sql
                             << "\n  error: " << actual.sqlstate;
      EXPECT_EQ(actual.others, before_others)
          << where
          << ": a row outside the caller's scope changed\n  rewritten: " << rewritten.value().sql;
      if (expected.ok) {
        ++compared;
        EXPECT_EQ(actual.rows, expected.rows)
            << where << "\n  rewritten: " << rewritten.value().sql;
        EXPECT_EQ(actual.affected, expected.affected) << where;
        // The RLS side sees only its own rows; compare the caller's slice.
        std::string mine;
        ASSERT_TRUE(owner.run("BEGIN"));
        ASSERT_TRUE(owner.run(rewritten.value().sql));
        ASSERT_TRUE(owner.run("SELECT * FROM " + c.table + " WHERE " +
                                  scope_condition(c.table, tenant, user) + " ORDER BY 1, 2",
                              &mine));
        ASSERT_TRUE(owner.run("ROLLBACK"));
        EXPECT_EQ(mine, expected.table) << where << "\n  rewritten: " << rewritten.value().sql;
      } else {
        ++rls_refused;
        EXPECT_EQ(expected.sqlstate, "42501") << where;
      }
    }
  }
  // Both paths ran: agreements, and keys of another tenant or owner.
  EXPECT_GE(compared, 20);
  EXPECT_GE(rls_refused, 3);
  std::cout << "compared with RLS: " << compared
            << ", RLS refused (tenantgate left the row alone): " << rls_refused << "\n";
}

}  // namespace
}  // namespace tenantgate::rewriter
