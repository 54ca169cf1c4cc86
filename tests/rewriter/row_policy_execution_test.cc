// Execution tests for row policies ([[tables."s.t".policies]]): the same
// policies are created with CREATE POLICY, the identity functions mapped to
// current_setting, and the rewritten statement (run by the superuser, which
// bypasses RLS) must return what the original statement returns under
// row-level security (run by a role without BYPASSRLS against FORCE ROW
// LEVEL SECURITY tables).
//
// Reads: same multiset of rows. Writes: run in a transaction that is rolled
// back; both sides must succeed or both fail, and the rows returned and
// every table afterwards must be the same. A refusal by tenantgate is
// counted and fails the test unless the case expects it.
//
// Random part: policy sets drawn from a pool of expressions (permissive and
// restrictive, per command), each loaded into tenantgate and created in the
// database, then the fixed statements for several callers.
//   TENANTGATE_SEED=n          rerun a random stream (the seed is printed)
//   TENANTGATE_POLICY_SETS=n   random policy sets (default 25)
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "policy/identity.h"
#include "policy/policy.h"
#include "rewriter/rewrite_cache.h"
#include "rewriter/rewriter.h"
#include "tests/support/pg_server.h"

namespace tenantgate::rewriter {
namespace {

using tenantgate::testing::PgServer;

struct Outcome {
  bool ok = false;
  std::string sqlstate;
  std::string error;
  std::vector<std::string> rows;
};

std::string describe(const Outcome& o) {
  if (!o.ok) return "ERROR " + o.sqlstate + ": " + o.error;
  std::vector<std::string> rows = o.rows;
  std::sort(rows.begin(), rows.end());
  std::string out = std::to_string(rows.size()) + " row(s)";
  for (std::size_t i = 0; i < rows.size() && i < 30; ++i) out += "\n    " + rows[i];
  return out;
}

class Conn {
 public:
  explicit Conn(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error("connect failed: " + msg);
    }
  }
  ~Conn() { PQfinish(conn_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  Outcome run(const std::string& sql) {
    PGresult* res = PQexec(conn_, sql.c_str());
    Outcome out;
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      out.ok = true;
      for (int i = 0; i < PQntuples(res); ++i) {
        std::string row;
        for (int j = 0; j < PQnfields(res); ++j) {
          if (j) row += " | ";
          row += PQgetisnull(res, i, j) ? "<NULL>" : PQgetvalue(res, i, j);
        }
        out.rows.push_back(std::move(row));
      }
    } else {
      const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
      out.sqlstate = state ? state : "?????";
      out.error = PQresultErrorMessage(res);
      while (!out.error.empty() && out.error.back() == '\n') out.error.pop_back();
    }
    PQclear(res);
    return out;
  }
  void must(const std::string& sql) {
    Outcome o = run(sql);
    if (!o.ok) throw std::runtime_error("statement failed: " + o.error + "\n" + sql);
  }

 private:
  PGconn* conn_;
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

constexpr const char* kSchema = R"(
CREATE ROLE rls_user LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
CREATE TABLE records (
  id int NOT NULL,
  tenant_id text NOT NULL DEFAULT current_setting('app.tenant'),
  owner_id int,
  title text,
  level int,
  country_code text,
  PRIMARY KEY (tenant_id, id));
CREATE TABLE record_members (
  tenant_id text NOT NULL DEFAULT current_setting('app.tenant'),
  record_id int NOT NULL,
  user_id int NOT NULL,
  PRIMARY KEY (tenant_id, record_id, user_id));
CREATE TABLE docs (
  id int PRIMARY KEY,
  tenant_id text NOT NULL,
  owner_id int,
  published boolean NOT NULL DEFAULT false,
  body text);
INSERT INTO countries VALUES ('US', 'United States'), ('DE', 'Germany'), ('FR', 'France');
GRANT SELECT ON countries TO rls_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON records, record_members, docs TO rls_user;
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
ALTER TABLE record_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_members FORCE ROW LEVEL SECURITY;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs FORCE ROW LEVEL SECURITY;
CREATE POLICY scope ON record_members USING (tenant_id = current_setting('app.tenant'))
  WITH CHECK (tenant_id = current_setting('app.tenant'));
CREATE FUNCTION tg_snapshot() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER AS $$
  SELECT 'records ' || x::text FROM records x
  UNION ALL SELECT 'record_members ' || x::text FROM record_members x
  UNION ALL SELECT 'docs ' || x::text FROM docs x
$$;
)";

std::string data_sql() {
  std::ostringstream out;
  const std::vector<std::string> tenants = {"acme", "globex", "it's"};
  for (std::size_t ti = 0; ti < tenants.size(); ++ti) {
    const std::string t = quote(tenants[ti]);
    for (int id = 1; id <= 12; ++id) {
      const int owner = static_cast<int>((id + ti) % 5);  // 0: no owner (NULL)
      out << "INSERT INTO records VALUES (" << id << ", " << t << ", "
          << (owner == 0 ? "NULL" : std::to_string(owner)) << ", 'r" << id << "', "
          << (id % 4 == 0 ? "NULL" : std::to_string(id % 3)) << ", "
          << (id % 3 == 0   ? "'US'"
              : id % 3 == 1 ? "'DE'"
                            : "NULL")
          << ");\n";
      // Members: users 1..4 on some records, and one member row in another tenant.
      if (id % 3 != 0) {
        out << "INSERT INTO record_members VALUES (" << t << ", " << id << ", "
            << (id * 2 + ti) % 4 + 1 << ");\n";
      }
    }
    for (int id = 1; id <= 8; ++id) {
      out << "INSERT INTO docs VALUES (" << ti * 100 + id << ", " << t << ", " << (id % 4) + 1
          << ", " << (id % 3 == 0 ? "true" : "false") << ", "
          << (id % 5 == 0 ? "NULL" : "'b" + std::to_string(id) + "'") << ");\n";
    }
  }
  return out.str();
}

// The RLS side of an expression: identity functions as current_setting.
std::string to_rls(std::string e) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (std::size_t p = e.find(from); p != std::string::npos; p = e.find(from, p + to.size())) {
      e.replace(p, from.size(), to);
    }
  };
  replace_all("tenantgate.tenant()", "current_setting('app.tenant')");
  replace_all("tenantgate.user_id()", "current_setting('app.user')::int");
  for (const char* claim : {"role", "level"}) {
    replace_all(std::string("tenantgate.claim('") + claim + "')",
                std::string("nullif(current_setting('app.claim_") + claim + "', true), '')");
  }
  return e;
}

struct PolicySpec {
  std::string table;  // records | docs
  std::string name;
  std::string command = "all";
  std::string kind = "permissive";
  std::string using_expr;
  std::string check_expr;
};

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string policy_toml(const std::vector<PolicySpec>& specs) {
  std::string out = R"(default_action = "deny"
[tables."public.countries"]
scope = "shared"
[tables."public.record_members"]
scope = "tenant"
[tables."public.records"]
[tables."public.docs"]
)";
  for (const PolicySpec& p : specs) {
    out += "[[tables.\"public." + p.table + "\".policies]]\n";
    out += "name = " + toml_string(p.name) + "\ncommand = \"" + p.command + "\"\nkind = \"" +
           p.kind + "\"\n";
    if (!p.using_expr.empty()) out += "using = " + toml_string(p.using_expr) + "\n";
    if (!p.check_expr.empty()) out += "check = " + toml_string(p.check_expr) + "\n";
  }
  return out;
}

std::string rls_sql(const std::vector<PolicySpec>& specs) {
  std::string out;
  for (const char* t : {"records", "docs"}) {
    out += std::string(
               "DO $$ DECLARE p record; BEGIN FOR p IN SELECT policyname FROM pg_policies "
               "WHERE tablename = '") +
           t + "' LOOP EXECUTE format('DROP POLICY %I ON " + t +
           "', p.policyname); END LOOP; END $$;\n";
  }
  for (const PolicySpec& p : specs) {
    out += "CREATE POLICY \"" + p.name + "\" ON " + p.table + " AS " + p.kind + " FOR " + p.command;
    if (!p.using_expr.empty()) out += " USING (" + to_rls(p.using_expr) + ")";
    if (!p.check_expr.empty()) out += " WITH CHECK (" + to_rls(p.check_expr) + ")";
    out += ";\n";
  }
  return out;
}

struct Caller {
  std::string tenant;
  int user = 1;
  std::map<std::string, std::string, std::less<>> claims;
};

std::string caller_name(const Caller& c) {
  std::string s = c.tenant + "/" + std::to_string(c.user);
  for (const auto& [k, v] : c.claims) s += " " + k + "=" + v;
  return s;
}

const std::vector<Caller>& callers() {
  static const std::vector<Caller> all = {
      {"acme", 1, {}},
      {"acme", 2, {{"role", "admin"}}},
      {"globex", 3, {{"role", "member"}, {"level", "1"}}},
      {"it's", 4, {{"level", "2"}}},
  };
  return all;
}

const std::vector<std::string>& reads() {
  static const std::vector<std::string> all = {
      "SELECT id, tenant_id, owner_id, title FROM records",
      "SELECT * FROM records WHERE id = 3",
      "SELECT r.id, c.name FROM records r LEFT JOIN countries c ON c.code = r.country_code",
      "SELECT r.id, m.user_id FROM records r JOIN record_members m ON m.record_id = r.id",
      "SELECT c.code, r.id FROM countries c LEFT JOIN records r ON r.country_code = c.code",
      "SELECT count(*), sum(level) FROM records",
      "SELECT id FROM records WHERE id IN (SELECT record_id FROM record_members)",
      "SELECT id FROM records r WHERE EXISTS (SELECT 1 FROM docs d WHERE d.owner_id = r.owner_id)",
      "SELECT * FROM record_members",
      "SELECT id, owner_id, published, body FROM docs",
      "SELECT d.id FROM docs d WHERE d.body LIKE 'b%' ORDER BY d.id",
      "WITH x AS (SELECT id FROM records) SELECT count(*) FROM x",
      "SELECT id FROM records UNION SELECT id FROM docs",
      "SELECT (SELECT count(*) FROM docs) AS n, id FROM records WHERE id < 4",
      // Conditions that can fail are guarded with the policy predicate.
      "SELECT id FROM records r WHERE 12 / (r.owner_id + 1) > 2",
      "SELECT r.id, d.id FROM records r JOIN docs d ON d.owner_id = r.owner_id "
      "WHERE d.body::text LIKE 'b%' AND r.title::text <> 'x'",
      "SELECT id FROM records r WHERE r.title::text IN (SELECT d.body FROM docs d)",
  };
  return all;
}

const std::vector<std::string>& writes() {
  static const std::vector<std::string> all = {
      "INSERT INTO records (id, tenant_id, owner_id, title) VALUES (50, 'acme', 1, 'new')",
      "INSERT INTO records (id, tenant_id, owner_id, title) VALUES (51, 'globex', 3, 'n') "
      "RETURNING id, title",
      "INSERT INTO records (id, tenant_id, owner_id, title) VALUES (52, 'acme', 2, 'x'), "
      "(53, 'acme', 1, 'y')",
      "INSERT INTO records (id, tenant_id, owner_id) SELECT id + 100, tenant_id, owner_id FROM "
      "records WHERE id < 3",
      "INSERT INTO records (id, tenant_id, owner_id, title) VALUES (1, 'acme', 1, 'dup') "
      "ON CONFLICT (tenant_id, id) DO UPDATE SET title = excluded.title",
      "UPDATE records SET title = 'changed' WHERE id < 6",
      "UPDATE records SET owner_id = 4 WHERE id = 2",
      "UPDATE records SET tenant_id = 'globex' WHERE id = 1",
      "UPDATE records SET title = title || '!' RETURNING id, title",
      "DELETE FROM records WHERE id > 9",
      "DELETE FROM records RETURNING id",
      "INSERT INTO docs (id, tenant_id, owner_id, body) VALUES (900, 'acme', 1, 'b')",
      "INSERT INTO docs (id, tenant_id, owner_id, body) SELECT id + 1000, tenant_id, owner_id, "
      "title FROM records WHERE id < 4",
      "INSERT INTO docs (id, tenant_id, owner_id) VALUES (902, 'acme', 1), (903, 'acme', 1) "
      "ON CONFLICT (id) DO UPDATE SET body = 'u' RETURNING id, body",
      "INSERT INTO docs (id, tenant_id, owner_id) VALUES (1, 'acme', 1) "
      "ON CONFLICT (id) DO UPDATE SET body = 'u'",
      "WITH src AS (SELECT 904 AS id) INSERT INTO docs (id, tenant_id, owner_id) "
      "SELECT id, 'acme', 1 FROM src RETURNING *",
      "UPDATE docs d SET body = r.title FROM records r WHERE r.id = d.id AND r.owner_id = "
      "d.owner_id",
      "INSERT INTO docs (id, tenant_id, owner_id, body) VALUES (901, 'acme', 2, 'b')",
      "UPDATE docs SET body = NULL WHERE id < 300",
      "UPDATE docs SET published = true WHERE id = 1",
      "DELETE FROM docs WHERE id < 300",
  };
  return all;
}

class Harness {
 public:
  Harness() {
    server_ = PgServer::start();
    owner_ = std::make_unique<Conn>(server_->conninfo("postgres"));
    owner_->must(kSchema);
    owner_->must(data_sql());
    rls_ = std::make_unique<Conn>(server_->conninfo("rls_user"));
  }

  // Loads `specs` on both sides; returns the policy load error, if any.
  std::string load(const std::vector<PolicySpec>& specs, const std::string& extra = "") {
    try {
      policy_ = policy::parse_policy(policy_toml(specs) + extra, "policy.toml");
    } catch (const std::exception& e) {
      return e.what();
    }
    owner_->must(rls_sql(specs));
    return "";
  }

  void set_caller(const Caller& c) {
    std::string sql = "SELECT set_config('app.tenant', " + quote(c.tenant) +
                      ", false), set_config('app.user', '" + std::to_string(c.user) + "', false)";
    for (const char* claim : {"role", "level"}) {
      auto it = c.claims.find(claim);
      sql += std::string(", set_config('app.claim_") + claim + "', " +
             (it == c.claims.end() ? std::string("''") : quote(it->second)) + ", false)";
    }
    rls_->must(sql);
  }

  policy::Identity identity(const Caller& c) const {
    policy::Identity id;
    id.tenant = {c.tenant, policy::ValueType::kText};
    id.user = policy::TypedValue{std::to_string(c.user), policy::ValueType::kInt};
    id.database = "postgres";
    id.claims = c.claims;
    return id;
  }

  // A statement through tenantgate (via the cache, as the proxy does) and
  // under RLS. Returns "" when they agree; `refused` is set when tenantgate
  // refused (which agrees with nothing and is reported by the caller).
  std::string compare(const std::string& sql, const Caller& c, bool write, bool* refused,
                      std::string* refusal = nullptr) {
    set_caller(c);
    RewriteResult r = RewriteResult::refused("XX000", "not run");
    run_with_large_stack([&] { r = cache_.rewrite(rewriter_, sql, identity(c), policy_); });
    *refused = !r.is_ok();
    if (!r.is_ok()) {
      if (refusal != nullptr) *refusal = r.refusal().sqlstate + " " + r.refusal().message;
      return "";
    }
    const std::string& rewritten = r.value().sql;
    Outcome mine;
    Outcome theirs;
    if (!write) {
      mine = owner_->run(rewritten);
      theirs = rls_->run(sql);
      std::vector<std::string> a = mine.rows;
      std::vector<std::string> b = theirs.rows;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (mine.ok && theirs.ok && a == b) {
        ++both_ok_;
        return "";
      }
      if (!mine.ok && !theirs.ok) {
        ++both_failed_;
        return "";
      }
    } else {
      Outcome mine_after;
      Outcome theirs_after;
      run_write(*owner_, rewritten, &mine, &mine_after);
      run_write(*rls_, sql, &theirs, &theirs_after);
      std::vector<std::string> a = mine.rows;
      std::vector<std::string> b = theirs.rows;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      std::sort(mine_after.rows.begin(), mine_after.rows.end());
      std::sort(theirs_after.rows.begin(), theirs_after.rows.end());
      const bool same_state = mine_after.rows == theirs_after.rows;
      // A write without RETURNING returns no rows under RLS; through the
      // check it returns one empty row per written row.
      const bool no_returning = sql.find("RETURNING") == std::string::npos;
      if (mine.ok == theirs.ok && same_state && (!mine.ok || no_returning || a == b)) {
        ++(mine.ok ? both_ok_ : both_failed_);
        return "";
      }
    }
    return "caller " + caller_name(c) + "\n  SQL:       " + sql + "\n  rewritten: " + rewritten +
           "\n  tenantgate: " + describe(mine) + "\n  RLS:        " + describe(theirs);
  }

  Conn& owner() { return *owner_; }
  Conn& rls() { return *rls_; }
  void rls_search_path(const std::string& path) { rls_->must("SET search_path = " + path); }
  // Agreements so far: both sides succeeded (same rows) or both failed.
  [[nodiscard]] std::string agreements() const {
    return std::to_string(both_ok_) + " both succeeded, " + std::to_string(both_failed_) +
           " both failed";
  }

 private:
  static void run_write(Conn& conn, const std::string& sql, Outcome* result, Outcome* after) {
    conn.must("BEGIN");
    conn.must("SAVEPOINT s");
    *result = conn.run(sql);
    if (!result->ok) conn.must("ROLLBACK TO SAVEPOINT s");
    *after = conn.run("SELECT * FROM tg_snapshot()");
    conn.must("ROLLBACK");
  }

  std::unique_ptr<PgServer> server_;
  std::unique_ptr<Conn> owner_;
  std::unique_ptr<Conn> rls_;
  std::shared_ptr<const policy::Policy> policy_;
  Rewriter rewriter_{Options{}};
  RewriteCache cache_{16u << 20};
  int both_ok_ = 0;
  int both_failed_ = 0;
};

Harness& harness() {
  static Harness h;
  return h;
}

// Runs every statement for every caller; returns the number of
// disagreements (each printed) and counts refusals.
int run_all(const std::string& label, int* refusals, bool allow_refusals = false) {
  int disagreements = 0;
  for (const Caller& c : callers()) {
    for (int pass = 0; pass < 2; ++pass) {
      const auto& statements = pass == 0 ? reads() : writes();
      for (const std::string& sql : statements) {
        bool refused = false;
        std::string why;
        std::string diff = harness().compare(sql, c, pass == 1, &refused, &why);
        if (refused) {
          ++*refusals;
          if (!allow_refusals) {
            ADD_FAILURE() << label << ": refused for " << caller_name(c) << ": " << sql << "\n  "
                          << why;
          }
        }
        if (!diff.empty()) {
          ++disagreements;
          ADD_FAILURE() << label << ": disagreement with RLS\n" << diff;
        }
      }
    }
  }
  return disagreements;
}

// The hand-written policy forms.
const std::string kTenant = "tenant_id = tenantgate.tenant()";
const std::string kOwnerOrMember =
    "tenant_id = tenantgate.tenant() AND (owner_id = tenantgate.user_id() OR EXISTS (SELECT 1 "
    "FROM record_members m WHERE m.record_id = records.id AND m.user_id = tenantgate.user_id()))";
const std::string kAdmin = "tenant_id = tenantgate.tenant() AND tenantgate.claim('role') = 'admin'";

struct Case {
  const char* label;
  std::vector<PolicySpec> specs;
};

std::vector<Case> hand_written() {
  return {
      {"tenant only",
       {{"records", "tenant", "all", "permissive", kTenant, ""},
        {"docs", "tenant", "all", "permissive", kTenant, ""}}},
      {"owner or member",
       {{"records", "owner or member", "all", "permissive", kOwnerOrMember,
         "tenant_id = tenantgate.tenant() AND owner_id = tenantgate.user_id()"},
        {"docs", "tenant", "all", "permissive", kTenant, ""}}},
      {"tenant admins by claim",
       {{"records", "owner or member", "all", "permissive", kOwnerOrMember, ""},
        {"records", "admins", "all", "permissive", kAdmin, ""},
        {"docs", "admins", "all", "permissive", kAdmin, ""}}},
      {"restrictive policies",
       {{"records", "tenant", "all", "permissive", kTenant, ""},
        {"records", "level", "select", "restrictive",
         "level IS NULL OR level <= coalesce(tenantgate.claim('level')::int, 0)", ""},
        {"docs", "published or own", "select", "permissive",
         "published OR owner_id = tenantgate.user_id()", ""},
        {"docs", "tenant", "all", "restrictive", kTenant, ""}}},
      {"per-command differences",
       {{"records", "read", "select", "permissive", kTenant, ""},
        {"records", "insert own", "insert", "permissive", "",
         "tenant_id = tenantgate.tenant() AND owner_id = tenantgate.user_id()"},
        {"records", "update own", "update", "permissive",
         "tenant_id = tenantgate.tenant() AND owner_id = tenantgate.user_id()",
         "tenant_id = tenantgate.tenant()"},
        {"docs", "read", "select", "permissive", "published OR owner_id = tenantgate.user_id()",
         ""},
        {"docs", "tenant", "all", "restrictive", kTenant, ""},
        {"docs", "insert", "insert", "permissive", "", "owner_id = tenantgate.user_id()"},
        {"docs", "update", "update", "permissive", "owner_id = tenantgate.user_id()",
         "owner_id = tenantgate.user_id() AND body IS NOT NULL"},
        {"docs", "delete", "delete", "permissive",
         "owner_id = tenantgate.user_id() AND NOT published", ""}}},
      {"no permissive policy",
       {{"records", "restrict", "all", "restrictive", kTenant, ""},
        {"docs", "read only", "select", "permissive", kTenant, ""}}},
  };
}

// Column masks: the oracle is a security_invoker view over the table that
// applies the mask (RLS still filters its rows), found first on the RLS
// session's search_path.
TEST(RowPolicyExecution, ColumnMasksAgreeWithAMaskingViewUnderRls) {
  const std::string mask = "left(title, 1) || '***'";
  const std::string unless =
      "owner_id = tenantgate.user_id() OR tenantgate.claim('role') = 'admin'";
  std::vector<PolicySpec> specs = hand_written()[1].specs;  // owner or member
  ASSERT_EQ(harness().load(
                specs, "[tables.\"public.records\".columns.title]\nmask = " + toml_string(mask) +
                           "\nunless = " + toml_string(unless) + "\n"),
            "");
  harness().owner().must(
      "DROP SCHEMA IF EXISTS masked CASCADE; CREATE SCHEMA masked; "
      "CREATE VIEW masked.records WITH (security_invoker = true) AS SELECT id, tenant_id, "
      "owner_id, CASE WHEN " +
      to_rls(unless) + " THEN title ELSE " + mask +
      " END AS title, level, country_code FROM public.records; "
      "GRANT USAGE ON SCHEMA masked TO rls_user; GRANT SELECT ON masked.records TO rls_user");
  harness().rls_search_path("masked, public");
  const std::vector<std::string> masked_reads = {
      "SELECT id, title FROM records",
      "SELECT id, title FROM records WHERE title LIKE 'r1%' ORDER BY title",
      "SELECT r.id, r.title, m.user_id FROM records r JOIN record_members m ON m.record_id = r.id",
      "SELECT title, count(*) FROM records GROUP BY title",
      "SELECT id FROM records WHERE title = 'r***'",
      "SELECT * FROM (SELECT title FROM records) s WHERE s.title IS NOT NULL",
      "SELECT d.id, (SELECT r.title FROM records r WHERE r.id = d.id) FROM docs d",
  };
  int disagreements = 0;
  int masked_rows = 0;
  for (const Caller& c : callers()) {
    for (const std::string& sql : masked_reads) {
      bool refused = false;
      std::string why;
      const std::string diff = harness().compare(sql, c, false, &refused, &why);
      EXPECT_FALSE(refused) << sql << "\n  " << why;
      if (!diff.empty()) {
        ++disagreements;
        ADD_FAILURE() << "masks: disagreement with the masking view\n" << diff;
      }
    }
    harness().set_caller(c);
    masked_rows += static_cast<int>(
        harness().rls().run("SELECT 1 FROM records WHERE title LIKE '%***'").rows.size());
  }
  harness().rls_search_path("public");
  std::cout << "[policy] masks: " << disagreements << " disagreement(s); " << masked_rows
            << " masked row(s) seen over all callers" << std::endl;
  EXPECT_GT(masked_rows, 0);  // the callers do see masked values
  EXPECT_EQ(disagreements, 0);
  // Writes may not read a masked column; COPY TO of the table is refused.
  for (const char* sql :
       {"UPDATE records SET level = 1 WHERE title = 'r1'", "DELETE FROM records RETURNING title",
        "COPY records TO STDOUT", "UPDATE records SET title = title || 'x'",
        // The whole row, by the table's name or an alias, holds the title too.
        "UPDATE records SET level = 1 RETURNING records",
        "UPDATE records r SET level = 1 WHERE (r).title = 'r1'",
        "DELETE FROM records r WHERE r::text LIKE '%r1%'",
        "UPDATE records SET level = 1 RETURNING row_to_json(records)"}) {
    bool refused = false;
    (void)harness().compare(sql, callers()[0], true, &refused);
    EXPECT_TRUE(refused) << sql;
  }
  // Writing a masked column is allowed.
  bool refused = false;
  EXPECT_EQ(harness().compare("UPDATE records SET title = 'new' WHERE id = 1", callers()[0], true,
                              &refused),
            "");
  EXPECT_FALSE(refused);
}

TEST(RowPolicyExecution, HandWrittenPoliciesAgreeWithRls) {
  int total = 0;
  for (const Case& c : hand_written()) {
    const std::string error = harness().load(c.specs);
    ASSERT_EQ(error, "") << c.label;
    int refusals = 0;
    const int d = run_all(c.label, &refusals);
    std::cout << "[policy] " << c.label << ": " << d << " disagreement(s), " << refusals
              << " refusal(s); so far " << harness().agreements() << std::endl;
    total += d;
  }
  EXPECT_EQ(total, 0);
}

// A violation of WITH CHECK aborts the statement and writes nothing.
TEST(RowPolicyExecution, CheckViolationWritesNothing) {
  ASSERT_EQ(harness().load(hand_written()[1].specs), "");
  Caller c{"acme", 1, {}};
  for (const char* sql :
       {"INSERT INTO records (id, tenant_id, owner_id) VALUES (60, 'acme', 1), (61, 'acme', 2)",
        "INSERT INTO records (id, tenant_id, owner_id) VALUES (62, 'globex', 1)",
        "UPDATE records SET owner_id = 3 WHERE id = 1"}) {
    bool refused = false;
    EXPECT_EQ(harness().compare(sql, c, true, &refused), "") << sql;
    EXPECT_FALSE(refused) << sql;
  }
  // The same statement, outside the comparison: it fails and the row is not there.
  const std::string before = describe(harness().owner().run("SELECT * FROM tg_snapshot()"));
  policy::Identity id;
  id.tenant = {"acme", policy::ValueType::kText};
  id.user = policy::TypedValue{"1", policy::ValueType::kInt};
  id.database = "postgres";
  const auto policy = policy::parse_policy(policy_toml(hand_written()[1].specs), "p.toml");
  RewriteResult r = RewriteResult::refused("XX000", "not run");
  run_with_large_stack([&] {
    r = Rewriter(Options{}).rewrite(
        "INSERT INTO records (id, tenant_id, owner_id) VALUES (60, 'acme', 1), (61, 'acme', 2)", id,
        *policy);
  });
  ASSERT_TRUE(r.is_ok()) << r.refusal().message;
  Outcome o = harness().owner().run(r.value().sql);
  EXPECT_FALSE(o.ok);
  // The text the proxy turns into row-level security's own 42501.
  const std::string marker(kPolicyViolationMarker);
  EXPECT_NE(
      o.error.find(marker + "new row violates row-level security policy for table \"records\"" +
                   marker),
      std::string::npos)
      << o.error;
  EXPECT_EQ(describe(harness().owner().run("SELECT * FROM tg_snapshot()")), before);
}

// Random policy sets over a pool of expressions.
TEST(RowPolicyExecution, RandomPolicySetsAgreeWithRls) {
  const char* seed_env = std::getenv("TENANTGATE_SEED");
  const unsigned seed =
      seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10))
               : static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  const char* sets_env = std::getenv("TENANTGATE_POLICY_SETS");
  const int sets = sets_env ? std::atoi(sets_env) : 25;
  std::cout << "[policy] random policy sets: TENANTGATE_SEED=" << seed << " sets=" << sets
            << std::endl;
  std::mt19937 rng(seed);
  const std::vector<std::string> records_pool = {
      kTenant,
      kOwnerOrMember,
      kAdmin,
      "owner_id = tenantgate.user_id()",
      "level IS NULL OR level <= coalesce(tenantgate.claim('level')::int, 0)",
      "country_code IN (SELECT c.code FROM countries c WHERE c.name <> 'France')",
      "tenant_id = tenantgate.tenant() AND id % 2 = 0",
      "EXISTS (SELECT 1 FROM docs d WHERE d.owner_id = records.owner_id AND d.published)",
      "tenantgate.claim('role') IS NOT NULL",
      "NOT (title LIKE 'r1%')",
  };
  const std::vector<std::string> docs_pool = {
      kTenant,
      "published",
      "owner_id = tenantgate.user_id()",
      "body IS NOT NULL AND tenant_id = tenantgate.tenant()",
      "tenantgate.claim('role') = 'admin' OR owner_id = tenantgate.user_id()",
      "id IN (SELECT m.record_id FROM record_members m WHERE m.user_id = tenantgate.user_id())",
  };
  const std::vector<std::string> commands = {"all", "select", "insert", "update", "delete"};
  int total = 0;
  int refusals = 0;
  for (int s = 0; s < sets; ++s) {
    std::vector<PolicySpec> specs;
    for (const std::string table : {"records", "docs"}) {
      const auto& pool = table == "records" ? records_pool : docs_pool;
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int i = 0; i < n; ++i) {
        PolicySpec p;
        p.table = table;
        p.name = "p" + std::to_string(i);
        p.command = commands[rng() % commands.size()];
        p.kind = rng() % 3 == 0 ? "restrictive" : "permissive";
        const std::string u = pool[rng() % pool.size()];
        const std::string k = pool[rng() % pool.size()];
        if (p.command != "insert") p.using_expr = u;
        if (p.command != "select" && p.command != "delete" &&
            (rng() % 2 == 0 || p.using_expr.empty())) {
          p.check_expr = k;
        }
        specs.push_back(std::move(p));
      }
    }
    const std::string error = harness().load(specs);
    ASSERT_EQ(error, "") << "set " << s << "\n" << policy_toml(specs);
    const int d = run_all("seed " + std::to_string(seed) + " set " + std::to_string(s), &refusals);
    if (d != 0) std::cout << policy_toml(specs) << std::endl;
    total += d;
  }
  std::cout << "[policy] random: " << total << " disagreement(s), " << refusals
            << " refusal(s); so far " << harness().agreements() << std::endl;
  EXPECT_EQ(total, 0);
}

}  // namespace
}  // namespace tenantgate::rewriter
