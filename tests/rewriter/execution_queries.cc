#include "tests/rewriter/execution_queries.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tenantgate::rewriter {

// ---------------------------------------------------------------------------
// Hand-written cases. Each runs for every test caller (execution_test.cc).

const std::vector<std::string>& hand_read_cases() {
  static const std::vector<std::string> cases = {
      // single tables, spellings of names
      "SELECT * FROM users",
      "SELECT id, email FROM users WHERE id = 1",
      "SELECT * FROM records",
      "SELECT * FROM notes",
      "SELECT * FROM countries",
      "SELECT * FROM public.users",
      "SELECT * FROM \"users\"",
      "SELECT * FROM USERS",
      "SELECT * FROM ONLY users",
      "SELECT users.id, users.email FROM users",
      "SELECT public.users.id FROM public.users",
      "SELECT id FROM users WHERE tenant_id <> 'acme'",
      "SELECT * FROM users WHERE true OR tenant_id = 'globex'",
      "SELECT * FROM users WHERE id = 1 OR 1 = 1",
      "SELECT count(*) FROM records WHERE created_by = 1 OR created_by = 2",
      "SELECT * FROM users ORDER BY email LIMIT 3 OFFSET 1",
      "SELECT count(*) FILTER (WHERE role = 'admin'), count(role) FROM users",
      "SELECT role, count(*) FROM users GROUP BY ROLLUP (role)",
      "SELECT array_agg(id ORDER BY id) FROM users",
      "SELECT row_to_json(u) FROM users u",
      "SELECT u FROM users u",
      "SELECT u.* FROM users AS u WHERE u.manager_id IS NULL",
      "SELECT count(*) FROM secrets",
      "SELECT * FROM users WHERE email = 'u1@globex.example'",
      "SELECT EXISTS (SELECT 1 FROM users WHERE email = 'u1@globex.example')",
      // joins
      "SELECT r.id, u.email FROM records r JOIN users u ON u.id = r.created_by",
      "SELECT r.id, u.email FROM records r LEFT JOIN users u ON u.id = r.created_by",
      "SELECT u.id, r.id FROM users u LEFT JOIN records r ON r.created_by = u.id",
      "SELECT u.id, r.id FROM records r RIGHT JOIN users u ON r.created_by = u.id",
      "SELECT u.id, r.id FROM users u RIGHT JOIN records r ON r.created_by = u.id",
      "SELECT u.id, r.id FROM users u FULL JOIN records r ON r.created_by = u.id",
      "SELECT u.id, c.id FROM users u FULL OUTER JOIN comments c ON c.author_id = u.id "
      "AND c.tenant_id = u.tenant_id",
      "SELECT c.code, r.id FROM countries c LEFT JOIN records r ON r.country_code = c.code",
      "SELECT c.code, r.id FROM records r RIGHT JOIN countries c ON r.country_code = c.code",
      "SELECT a.id, b.id FROM users a JOIN users b ON a.manager_id = b.id",
      "SELECT a.id, b.email FROM users a LEFT JOIN users b ON b.id = a.manager_id",
      "SELECT a.id, b.id FROM records a LEFT JOIN records b ON b.id = a.parent_id",
      "SELECT u1.id, u3.id FROM users u1 JOIN users u2 ON u1.email = u2.email "
      "LEFT JOIN users u3 ON u3.id = u2.manager_id",
      "SELECT count(*) FROM users, records",
      "SELECT count(*) FROM users u, comments c WHERE c.author_id = u.id",
      "SELECT count(*) FROM users CROSS JOIN tags",
      "SELECT u.id, c.id FROM users u JOIN (comments c JOIN records r ON r.id = c.record_id) "
      "ON u.id = c.author_id",
      "SELECT u.id, c.id FROM users u LEFT JOIN (comments c JOIN records r ON r.id = c.record_id) "
      "ON u.id = c.author_id",
      "SELECT * FROM users NATURAL JOIN comments",
      "SELECT u.id, r.id FROM users u JOIN records r USING (tenant_id)",
      "SELECT id, tenant_id FROM users JOIN tags USING (id, tenant_id)",
      "SELECT count(*) FROM comments c JOIN records r ON r.id = c.record_id AND r.tenant_id = "
      "c.tenant_id",
      "SELECT r.id, t.name FROM records r JOIN tags t ON t.record_id = r.id WHERE t.name LIKE "
      "'b%'",
      "SELECT n.body, u.email FROM notes n JOIN users u ON u.id = n.owner_id",
      "SELECT n.id, u.id FROM notes n FULL JOIN users u ON u.id = n.owner_id",
      "SELECT * FROM (VALUES (1), (2), (3)) v(id) JOIN users u USING (id)",
      "SELECT * FROM (VALUES (1), (2), (9)) v(id) LEFT JOIN users u USING (id)",
      "SELECT u.id, count(c.id) FROM users u LEFT JOIN comments c ON c.author_id = u.id GROUP BY "
      "u.id",
      // subqueries
      "SELECT id, (SELECT count(*) FROM comments c WHERE c.record_id = r.id) FROM records r",
      "SELECT id, (SELECT name FROM countries c WHERE c.code = r.country_code) FROM records r",
      "SELECT (SELECT max(amount) FROM records), (SELECT count(*) FROM users)",
      "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM notes)",
      "SELECT * FROM users WHERE id IN (SELECT created_by FROM records)",
      "SELECT * FROM users WHERE id NOT IN (SELECT author_id FROM comments WHERE author_id IS NOT "
      "NULL)",
      "SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM comments c WHERE c.author_id = u.id)",
      "SELECT * FROM users u WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.created_by = u.id)",
      "SELECT * FROM users WHERE id = ANY (SELECT author_id FROM comments)",
      "SELECT * FROM records WHERE amount > ALL (SELECT amount FROM records WHERE amount IS NOT "
      "NULL AND id < 3)",
      "SELECT * FROM records WHERE id IN (SELECT record_id FROM comments WHERE author_id IN "
      "(SELECT id FROM users WHERE role = 'admin'))",
      "SELECT u.email FROM users u WHERE u.id = (SELECT max(created_by) FROM records)",
      "SELECT id FROM users u WHERE u.manager_id IS NOT DISTINCT FROM (SELECT min(id) FROM users)",
      "SELECT * FROM (SELECT * FROM users) s WHERE s.role IS NULL",
      "SELECT * FROM (SELECT u.id, r.amount FROM users u JOIN records r ON r.created_by = u.id) s",
      "SELECT count(*) FROM users WHERE (SELECT count(*) FROM notes) > 0",
      "SELECT * FROM records r WHERE r.parent_id IN (SELECT id FROM records)",
      "SELECT created_by, count(*), sum(amount) FROM records GROUP BY created_by HAVING count(*) "
      ">= "
      "(SELECT count(*) FROM tags) / 8",
      "SELECT role, count(*) FROM users GROUP BY role HAVING max(id) > (SELECT min(id) FROM "
      "comments)",
      "SELECT u.role, (SELECT string_agg(c.body, ',' ORDER BY c.body) FROM comments c WHERE "
      "c.author_id = min(u.id)) FROM users u GROUP BY u.role",
      "SELECT u.id FROM users u WHERE u.id IN (SELECT r.created_by FROM records r WHERE r.id IN "
      "(SELECT t.record_id FROM tags t))",
      // CTEs
      "WITH r AS (SELECT * FROM records) SELECT count(*) FROM r",
      "WITH r AS (SELECT * FROM records) SELECT a.id, b.id FROM r a JOIN r b ON a.parent_id = b.id",
      "WITH users AS (SELECT id, data AS email FROM records) SELECT * FROM users",
      "WITH users AS (SELECT * FROM users WHERE role = 'admin') SELECT * FROM users",
      "WITH tags AS (SELECT 1 AS id) SELECT t.id FROM tags t JOIN comments c ON c.id = t.id",
      "WITH x AS (SELECT id FROM comments) SELECT * FROM x WHERE id IN (SELECT id FROM tags)",
      "WITH d AS MATERIALIZED (SELECT * FROM comments) SELECT count(*) FROM d",
      "WITH a AS (SELECT id, email FROM users), b AS (SELECT a.id, r.amount FROM a JOIN records "
      "r ON r.created_by = a.id) SELECT count(*), sum(amount) FROM b",
      "WITH RECURSIVE chain(id, manager_id, depth) AS (SELECT id, manager_id, 0 FROM users WHERE "
      "id = 5 UNION ALL SELECT u.id, u.manager_id, c.depth + 1 FROM users u JOIN chain c ON u.id "
      "= c.manager_id WHERE c.depth < 5) SELECT * FROM chain",
      "WITH RECURSIVE t(id, parent_id) AS (SELECT id, parent_id FROM records WHERE parent_id IS "
      "NULL UNION SELECT r.id, r.parent_id FROM records r JOIN t ON r.parent_id = t.id) SELECT * "
      "FROM t",
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8) SELECT n.i, "
      "u.email FROM n LEFT JOIN users u ON u.id = n.i",
      // LATERAL
      "SELECT u.id, x.n FROM users u CROSS JOIN LATERAL (SELECT count(*) AS n FROM comments c "
      "WHERE c.author_id = u.id) x",
      "SELECT u.id, x.id FROM users u LEFT JOIN LATERAL (SELECT r.id FROM records r WHERE "
      "r.created_by = u.id ORDER BY r.id LIMIT 1) x ON true",
      "SELECT u.id, x.e FROM users u, LATERAL (SELECT u.email AS e) x",
      "SELECT c.code, x.id FROM countries c, LATERAL (SELECT r.id FROM records r WHERE "
      "r.country_code = c.code) x",
      // set operations
      "SELECT id FROM users UNION SELECT id FROM records",
      "SELECT id, tenant_id FROM users INTERSECT SELECT created_by, tenant_id FROM records",
      "SELECT id FROM comments EXCEPT SELECT record_id FROM tags",
      "SELECT id FROM comments EXCEPT ALL SELECT record_id FROM tags",
      "SELECT id FROM users UNION ALL SELECT id FROM notes UNION ALL SELECT 1",
      "(SELECT id FROM users ORDER BY id LIMIT 2) UNION ALL (SELECT id FROM records ORDER BY id "
      "DESC LIMIT 2)",
      "SELECT code FROM countries UNION SELECT country_code FROM records",
      // window functions, DISTINCT
      "SELECT id, sum(amount) OVER (PARTITION BY created_by), rank() OVER (ORDER BY amount) FROM "
      "records",
      "SELECT id, count(*) OVER (), dense_rank() OVER (PARTITION BY role ORDER BY id) FROM users",
      "SELECT DISTINCT ON (created_by) created_by, id, amount FROM records ORDER BY created_by, "
      "amount DESC NULLS LAST, id",
      "SELECT DISTINCT role FROM users",
      "SELECT DISTINCT tenant_id FROM comments",
      // TABLE, VALUES, locking
      "TABLE users",
      "TABLE countries",
      "TABLE notes",
      "VALUES (1, 'a'), (2, 'b')",
      "SELECT id FROM records FOR UPDATE",
      "SELECT id FROM users FOR UPDATE SKIP LOCKED",
      // names and spellings that could confuse scoping
      "SELECT * FROM postgres.public.users",
      "SELECT * FROM \"public\".\"users\"",
      "SELECT records.id FROM users AS records",
      "SELECT users.id, records.email FROM records AS users JOIN users AS records ON records.id = "
      "users.created_by",
      "SELECT users FROM users",
      "SELECT count(*) FROM users WHERE users IS NOT NULL",
      "SELECT json_agg(u ORDER BY u.id) FROM users u",
      "SELECT count(*) FROM users TABLESAMPLE SYSTEM (100)",
      "SELECT * FROM users u WHERE u.tenant_id = 'globex'",
      "SELECT * FROM users WHERE (id, tenant_id) IN (SELECT created_by, tenant_id FROM records)",
      "SELECT * FROM users WHERE id = ANY (ARRAY(SELECT created_by FROM records))",
      "SELECT ARRAY(SELECT email FROM users ORDER BY email)",
      "VALUES ((SELECT count(*) FROM users)), ((SELECT count(*) FROM records))",
      "SELECT id FROM users ORDER BY (SELECT count(*) FROM comments c WHERE c.author_id = "
      "users.id), id",
      "SELECT id FROM users ORDER BY id LIMIT (SELECT count(*) FROM tags) / 4",
      "SELECT * FROM generate_series(1, (SELECT count(*) FROM users)) g",
      "SELECT g, u.email FROM generate_series(1, 4) g LEFT JOIN users u ON u.id = g",
      "SELECT * FROM users u1 NATURAL FULL JOIN users u2",
      "SELECT u.id FROM users u WHERE u.id IN (SELECT u.manager_id FROM users)",
      "SELECT (SELECT u.email FROM users WHERE users.id = u.manager_id) FROM users u",
      "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'users'",
      // column aliases that rename a policy column
      "SELECT * FROM users AS x(tenant_id)",
      "SELECT x.tenant_id FROM users AS x(tenant_id, other) WHERE x.other = 'acme'",
      "SELECT r.tenant_id, r.created_by, r.c FROM records AS r(tenant_id, created_by, c)",
      "SELECT n.a FROM notes n(owner_id, a)",
      // CTE names: scope and visibility
      "WITH a AS (SELECT * FROM users), users AS (SELECT 1 AS id) SELECT count(*) FROM a",
      "WITH RECURSIVE a AS (SELECT * FROM users), users AS (SELECT 1 AS id) SELECT * FROM a",
      "WITH RECURSIVE users(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM users WHERE id < 3) "
      "SELECT * FROM users",
      "SELECT u.id FROM (WITH users AS (SELECT 100 AS id) SELECT id FROM users) s, users u",
      "SELECT count(*) FROM (WITH users AS (SELECT 1 AS id) SELECT * FROM users) a CROSS JOIN "
      "users",
      "SELECT * FROM users WHERE id IN (WITH users AS (SELECT 1 AS id) SELECT id FROM users)",
      "SELECT (WITH records AS (SELECT 1 AS x) SELECT count(*) FROM records), (SELECT count(*) "
      "FROM records)",
      "WITH users AS (SELECT 1 AS id) SELECT (SELECT count(*) FROM public.users), (SELECT count(*) "
      "FROM users)",
      "WITH c AS (SELECT * FROM comments) SELECT * FROM c WHERE EXISTS (WITH c AS (SELECT * FROM "
      "tags) SELECT 1 FROM c WHERE c.id = 1)",
      // several statements, PREPARE, cursors, COPY
      "SELECT * FROM notes; SELECT * FROM users",
      "DEALLOCATE ALL; PREPARE q AS SELECT * FROM users WHERE id > $1; EXECUTE q(2)",
      "CLOSE ALL; DECLARE c CURSOR WITH HOLD FOR SELECT id, email FROM users; FETCH ALL FROM c",
      "COPY users TO STDOUT",
      "COPY (SELECT r.id, u.email FROM records r JOIN users u ON u.id = r.created_by) TO STDOUT",
      "COPY records (id, data) TO STDOUT",
      "SELECT query_to_xml('SELECT * FROM users', true, false, '')",
      // subqueries in less common places
      "SELECT count(*) FILTER (WHERE id IN (SELECT author_id FROM comments)) FROM users",
      "SELECT * FROM (VALUES ((SELECT count(*) FROM users))) v(n)",
      "SELECT ROW((SELECT count(*) FROM users), 1)::text",
      "SELECT * FROM (TABLE users) t",
      "SELECT count(*) FROM (TABLE records) r",
      "SELECT * FROM users WHERE id IN (VALUES (1), (3))",
      "SELECT string_agg(email, ',' ORDER BY (SELECT count(*) FROM records r WHERE r.created_by = "
      "u.id), email) FROM users u",
      "SELECT id, count(*) OVER (PARTITION BY (SELECT count(*) FROM tags t WHERE t.record_id = "
      "r.id)) FROM records r",
      "SELECT CASE WHEN EXISTS (SELECT 1 FROM records) THEN 'yes' ELSE 'no' END",
      "SELECT coalesce((SELECT max(email) FROM users WHERE role = 'nobody'), (SELECT min(email) "
      "FROM users))",
      "SELECT id, rank() OVER w, count(*) OVER w FROM users WINDOW w AS (PARTITION BY role ORDER "
      "BY id)",
      "SELECT role, manager_id, count(*) FROM users GROUP BY CUBE (role, manager_id)",
      "SELECT role, count(*) FROM users GROUP BY GROUPING SETS ((role), ())",
      "SELECT id FROM users ORDER BY id FETCH FIRST 2 ROWS WITH TIES",
      "SELECT id FROM users ORDER BY id USING > LIMIT ALL",
      "SELECT * FROM unnest(ARRAY(SELECT id FROM users)) x",
      "SELECT * FROM ROWS FROM (generate_series(1, (SELECT count(*)::int FROM records))) g",
      "SELECT u.id, s.n FROM users u, LATERAL generate_series(1, (SELECT count(*)::int FROM "
      "comments c WHERE c.author_id = u.id)) s(n)",
      "SELECT * FROM users WHERE id IN (SELECT generate_series(1, (SELECT count(*)::int FROM "
      "tags)))",
      // functions that run a query given as text, or read other sessions
      "SELECT table_to_xml('users', true, false, '')",
      "SELECT schema_to_xml('public', true, false, '')",
      "SELECT database_to_xml(true, false, '')",
      "SELECT * FROM ts_stat('SELECT to_tsvector(email) FROM users')",
      "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%globex%'",
      "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'users'",
      // aliases and inheritance spellings
      "SELECT \"U\".id FROM users \"U\"",
      "SELECT \"select\".id FROM users AS \"select\"",
      "SELECT \"ü\".email FROM users AS \"ü\"",
      "SELECT a234567890123456789012345678901234567890123456789012345678901234567890.id FROM users "
      "AS "
      "a234567890123456789012345678901234567890123456789012345678901234567890",
      "SELECT count(*) FROM users*",
      "SELECT count(*) FROM ONLY (users)",
      "SELECT * FROM comments AS users, LATERAL (SELECT u2.email FROM users u2 WHERE u2.id = "
      "users.author_id) x",
      // lexical corners
      "SELECT * FROM /* comment */ users -- trailing comment",
      "SELECT $$FROM users$$, id FROM notes",
      "SELECT * FROM users WHERE email LIKE E'u1\\%' OR email LIKE 'u2%'",
      "SELECT * FROM U&\"users\"",
      "SELECT email(u) FROM users u",
      "SELECT (u).email, (u).* FROM users u",
      "SELECT set_config('app.tenant', 'globex', false)",
      // libpg_query 15-4.0.0 deparse defects (docs/design.md): output must keep meaning
      "SELECT id FROM users WHERE (role = 'admin' OR id = 2) IS TRUE",
      "SELECT id FROM users WHERE (role = 'admin' AND id = 2) IS NULL",
      "SELECT id, (role IS NULL OR manager_id IS NULL) IS NOT TRUE FROM users",
      "SELECT (ARRAY[id, 2])[1] FROM users",
      "SELECT (timestamp '2020-01-01' + interval '1 day') AT TIME ZONE 'UTC' FROM users",
      "SELECT id FROM records FOR UPDATE OF records NOWAIT",
      "SELECT count(*) FROM information_schema.tables WHERE table_name = 'records'",
      // schemas, search_path order, quoted mixed-case names, other tenant columns
      "SELECT * FROM public.invoices",
      "SELECT * FROM app.invoices",
      "SELECT * FROM postgres.app.invoices",
      "SELECT i.id, i.amount, u.email FROM app.invoices i JOIN users u ON u.id = i.id",
      "SELECT i.id, p.amount FROM app.invoices i LEFT JOIN public.invoices p ON p.id = i.id",
      "SELECT * FROM \"AuditLog\"",
      "SELECT * FROM app.\"AuditLog\" a WHERE a.\"TenantId\" IS NOT NULL",
      "SELECT count(*) FROM app.AuditLog",
      "SELECT count(*) FROM \"app\".\"AuditLog\" a JOIN app.invoices i ON i.id = a.id",
      "WITH invoices AS (SELECT * FROM app.invoices) SELECT * FROM invoices",
      // catalogs: readable, but never statistics that hold row values
      "SELECT count(*) FROM pg_stats WHERE tablename = 'users'",
      "SELECT most_common_vals::text FROM pg_catalog.pg_stats WHERE tablename = 'users' AND "
      "attname = 'email'",
      "SELECT count(*) FROM pg_catalog.pg_statistic",
      "SELECT relname FROM pg_class WHERE relname IN ('users', 'records') ORDER BY 1",
      "SELECT u.id FROM users u JOIN records r ON r.created_by = u.id FOR SHARE OF u",
  };
  return cases;
}

const std::vector<std::string>& hand_known_difference_cases() {
  // README.md, "Known differences from row-level security": system columns
  // and whole-row references of a scoped table are those of the derived table.
  static const std::vector<std::string> cases = {
      "SELECT pg_typeof(u)::text FROM users u",
      "SELECT ctid, id FROM users",
      "SELECT tableoid::regclass::text, id FROM users",
      "SELECT xmin IS NOT NULL FROM users",
      // An unqualified name means the first search_path schema whose policy
      // lists it (app.invoices), although the server would find the unlisted
      // public.invoices first.
      "SELECT * FROM invoices",
      "SELECT count(*) FROM invoices i JOIN users u ON u.id = i.id",
  };
  return cases;
}

const std::vector<std::string>& hand_write_cases() {
  static const std::vector<std::string> cases = {
      // INSERT
      "INSERT INTO users (id, email, role) VALUES (100, 'new@x.example', 'member') RETURNING *",
      "INSERT INTO users (id, tenant_id, email) VALUES (101, 'acme', 'n2@x.example') RETURNING id",
      "INSERT INTO users (id, email) VALUES (80, 'a@x.example'), (81, 'b@x.example') RETURNING id, "
      "tenant_id",
      "INSERT INTO users VALUES (82, 'globex', 'c@x.example', NULL, NULL)",
      "INSERT INTO records (id, data, amount) VALUES (200, 'new', 5) RETURNING *",
      "INSERT INTO records (id, tenant_id, created_by, data) VALUES (201, 'globex', 2, 'x') "
      "RETURNING *",
      "INSERT INTO records (id, created_by, data) VALUES (202, 1, 'x') RETURNING id",
      "INSERT INTO comments (id, record_id, author_id, body) SELECT id + 1000, id, created_by, "
      "'copy' FROM records RETURNING id, record_id",
      "INSERT INTO comments (id, tenant_id, record_id, author_id, body) SELECT id + 2000, "
      "tenant_id, record_id, author_id, body FROM comments",
      "INSERT INTO tags (id, record_id, name) SELECT 900 + r.id, r.id, c.name FROM records r JOIN "
      "countries c ON c.code = r.country_code RETURNING *",
      "INSERT INTO notes (id, body) VALUES (500, 'mine') RETURNING *",
      "INSERT INTO notes (id, owner_id, body) VALUES (501, 2, 'for 2') RETURNING *",
      "INSERT INTO countries VALUES ('XX', 'Nowhere')",
      "INSERT INTO secrets VALUES (3, 'x')",
      // CTE names never apply to the target of INSERT, UPDATE or DELETE
      "WITH users AS (SELECT 1 AS id) DELETE FROM users WHERE id IN (SELECT id FROM users) "
      "RETURNING *",
      "WITH records AS (SELECT 1 AS x) UPDATE records SET data = 'cte' RETURNING id",
      "WITH users AS (SELECT 1 AS id) INSERT INTO users (id, email) SELECT id + 300, 'cte@x' FROM "
      "users RETURNING *",
      "WITH tags AS (SELECT * FROM tags) DELETE FROM tags WHERE id IN (SELECT id FROM tags) "
      "RETURNING id",
      "UPDATE users SET tenant_id = DEFAULT WHERE id = 1",
      "INSERT INTO users (\"id\", \"tenant_id\", \"email\") VALUES (120, 'globex', "
      "'q120@x.example') RETURNING *",
      "INSERT INTO users (id, email, Tenant_Id) VALUES (121, 'q121@x.example', 'globex') RETURNING "
      "*",
      "INSERT INTO users (id, tenant_id, email) VALUES (122, (SELECT 'acme'), 'q122@x.example')",
      "UPDATE users SET (tenant_id) = ROW('globex') WHERE id = 1",
      "UPDATE users SET tenant_id = tenant_id || '' WHERE id = 1",
      "INSERT INTO app.invoices (id, amount) VALUES (50, 1) RETURNING *",
      "INSERT INTO app.invoices (id, org_id, amount) VALUES (51, 'globex', 1) RETURNING *",
      "INSERT INTO \"AuditLog\" (id, msg) VALUES (9, 'x') RETURNING *",
      "INSERT INTO app.\"AuditLog\" (id, \"TenantId\", msg) VALUES (10, 'acme', 'x') RETURNING *",
      "UPDATE app.invoices SET amount = amount + 1 RETURNING *",
      "UPDATE app.invoices SET org_id = 'globex' WHERE id = 1",
      "DELETE FROM \"AuditLog\" WHERE id = 2 RETURNING *",
      // (Unqualified "invoices" resolves to app.invoices by the policy, not to
      // the unlisted public.invoices the server would pick: a README-listed
      // difference, so the writes here name the schema.)
      "DELETE FROM app.invoices WHERE id = 1",
      "INSERT INTO app.invoices (id, amount) VALUES (60, 1) RETURNING *",
      "UPDATE app.invoices SET amount = 0 RETURNING *",
      "UPDATE app.invoices i SET amount = 0 FROM public.invoices p WHERE p.id = i.id",
      // aliases that name another table
      "DELETE FROM users AS u USING records AS users WHERE u.id = users.created_by RETURNING u.id",
      "UPDATE users AS u SET role = 'x' FROM comments AS users WHERE users.author_id = u.id "
      "RETURNING u.id",
      "UPDATE records AS users SET data = 'alias' RETURNING users.id",
      "INSERT INTO users AS x (id, email) VALUES (77, 'u1@globex.example') ON CONFLICT (email) DO "
      "UPDATE SET role = 'hacked' RETURNING *",
      "INSERT INTO users AS x (id, email) VALUES (77, 'u1@acme.example') ON CONFLICT (email) DO "
      "UPDATE SET role = x.role || '+' RETURNING *",
      "INSERT INTO users (id, email) VALUES (1, 'zz@x.example') ON CONFLICT (tenant_id, id) DO "
      "UPDATE SET tenant_id = excluded.tenant_id RETURNING *",
      "INSERT INTO users (id, email) VALUES (3, 'u3@globex.example') ON CONFLICT (email) DO UPDATE "
      "SET role = 'z' WHERE EXISTS (SELECT 1 FROM comments) RETURNING *",
      // subqueries in RETURNING and SET
      "UPDATE users SET role = 'x' WHERE id = 1 RETURNING (SELECT count(*) FROM records)",
      "DELETE FROM comments WHERE id = 2 RETURNING (SELECT max(email) FROM users)",
      "INSERT INTO tags (id, record_id, name) VALUES (70, 1, 'r') RETURNING (SELECT count(*) FROM "
      "comments)",
      "UPDATE users SET role = (SELECT max(data) FROM records) RETURNING id, role",
      "UPDATE tags SET name = (SELECT u.email FROM users u WHERE u.id = tags.id) RETURNING *",
      // writes wrapped in EXPLAIN ANALYZE, PREPARE/EXECUTE, COPY
      "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) DELETE FROM comments WHERE author_id "
      "= "
      "1",
      "EXPLAIN ANALYZE UPDATE users SET role = 'e'",
      "DEALLOCATE ALL; PREPARE w AS DELETE FROM comments WHERE author_id = 1 RETURNING id; EXECUTE "
      "w",
      "DEALLOCATE ALL; PREPARE w(int) AS UPDATE users SET role = 'p' WHERE id = $1 RETURNING id; "
      "EXECUTE w(2)",
      "DEALLOCATE ALL; PREPARE w(int, text) AS INSERT INTO users (id, tenant_id, email) VALUES "
      "($1, "
      "$2, 'pp@x.example') RETURNING *; EXECUTE w(130, 'globex')",
      "DEALLOCATE ALL; PREPARE w(text) AS UPDATE users SET tenant_id = $1 WHERE id = 1 RETURNING "
      "*; "
      "EXECUTE w('globex')",
      "DEALLOCATE ALL; PREPARE w(int) AS UPDATE records SET created_by = $1 RETURNING id; EXECUTE "
      "w(3)",
      "COPY (DELETE FROM comments WHERE author_id = 1 RETURNING *) TO STDOUT",
      "COPY (UPDATE users SET role = 'c' RETURNING id, role) TO STDOUT",
      "COPY (INSERT INTO tags (id, record_id, name) VALUES (80, 1, 'cp') RETURNING *) TO STDOUT",
      // refused for non-bypass callers
      "MERGE INTO users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN MATCHED THEN UPDATE SET "
      "role = 'm'",
      "TRUNCATE comments",
      "UPDATE records SET created_by = DEFAULT WHERE id = 2 RETURNING id",
      "INSERT INTO users (id, tenant_id, email) VALUES (102, DEFAULT, 'def@x.example') RETURNING "
      "*",
      "INSERT INTO users (id, email, tenant_id) VALUES (104, 'y@x.example', 'acme'::text) "
      "RETURNING *",
      "INSERT INTO users (id, email, tenant_id) VALUES (105, 'z@x.example', 'ACME')",
      "INSERT INTO users (id, email, tenant_id) VALUES (106, 'w@x.example', lower('ACME'))",
      "INSERT INTO users (id, email, tenant_id) SELECT 107, 'v@x.example', 'globex'",
      "INSERT INTO users (id, email) SELECT id + 100, email || '.copy' FROM users WHERE role IS "
      "NULL RETURNING *",
      "INSERT INTO users (email, id) SELECT 'sel' || g || '@x.example', g FROM "
      "generate_series(200, "
      "202) g RETURNING id, tenant_id",
      "INSERT INTO comments (id, record_id, author_id, body) VALUES (300, (SELECT max(id) FROM "
      "records), 1, 'sub') RETURNING *",
      "INSERT INTO tags (id, record_id, name) VALUES (60, 1, 'x'), (61, 2, 'y') RETURNING "
      "tenant_id",
      "INSERT INTO records (id, data) VALUES (203, 'a'), (204, 'b') ON CONFLICT DO NOTHING "
      "RETURNING id",
      // ON CONFLICT
      "INSERT INTO users (id, email, role) VALUES (1, 'dup@x.example', 'admin') ON CONFLICT "
      "(tenant_id, id) DO UPDATE SET role = excluded.role RETURNING *",
      "INSERT INTO users (id, email, role) VALUES (77, 'u1@globex.example', 'admin') ON CONFLICT "
      "(email) DO UPDATE SET role = 'hacked' RETURNING *",
      "INSERT INTO users (id, email) VALUES (95, 'new95@x.example'), (96, 'u1@globex.example') ON "
      "CONFLICT (email) DO UPDATE SET role = 'x' RETURNING id",
      "INSERT INTO users (id, email) VALUES (78, 'u2@initech.example') ON CONFLICT DO NOTHING "
      "RETURNING *",
      "INSERT INTO users (id, email) VALUES (79, 'u3@acme.example') ON CONFLICT (email) DO UPDATE "
      "SET email = excluded.email || '.dup' RETURNING id, email",
      "INSERT INTO records (id, data) VALUES (2, 'upsert') ON CONFLICT (tenant_id, id) DO UPDATE "
      "SET data = excluded.data RETURNING id, data, created_by",
      "INSERT INTO notes (id, body) VALUES (3, 'taken') ON CONFLICT (id) DO UPDATE SET body = "
      "excluded.body RETURNING *",
      "INSERT INTO notes (id, body) VALUES (1, 'x') ON CONFLICT (id) DO NOTHING RETURNING *",
      "INSERT INTO users (id, email) VALUES (2, 'q@x.example') ON CONFLICT (tenant_id, id) DO "
      "UPDATE SET tenant_id = 'globex' RETURNING *",
      "INSERT INTO users (id, email) VALUES (90, 'u4@globex.example') ON CONFLICT ON CONSTRAINT "
      "users_email_key DO UPDATE SET role = 'c' RETURNING *",
      "INSERT INTO users (id, email) VALUES (91, 'u5@acme.example') ON CONFLICT (email) DO UPDATE "
      "SET role = 'w' WHERE users.role IS NOT NULL RETURNING *",
      "INSERT INTO records (id, data) VALUES (5, 'r') ON CONFLICT (tenant_id, id) DO UPDATE SET "
      "amount = (SELECT max(amount) FROM records) RETURNING id, amount",
      // UPDATE
      "UPDATE users SET role = 'x' WHERE id = 1 RETURNING *",
      "UPDATE users SET role = 'y' RETURNING id",
      "UPDATE records SET amount = amount + 1 WHERE amount IS NOT NULL RETURNING id, amount",
      "UPDATE users SET tenant_id = 'globex' WHERE id = 2",
      "UPDATE users SET tenant_id = 'acme' WHERE id = 3 RETURNING id",
      "UPDATE records SET created_by = 3 WHERE id = 1 RETURNING id",
      "UPDATE records r SET data = u.email FROM users u WHERE u.id = r.created_by RETURNING r.id, "
      "r.data",
      "UPDATE comments c SET body = 'edited' WHERE c.record_id IN (SELECT id FROM records WHERE "
      "amount > 100) RETURNING c.id",
      "UPDATE users SET manager_id = (SELECT max(id) FROM users) RETURNING id, manager_id",
      "UPDATE comments SET body = body || '!' FROM tags WHERE tags.record_id = comments.record_id "
      "RETURNING comments.id",
      "UPDATE notes SET body = 'z' RETURNING id",
      "UPDATE notes SET owner_id = 4 WHERE id = 4 RETURNING *",
      "UPDATE users SET role = 'z' WHERE id IN (SELECT author_id FROM comments) RETURNING id",
      "UPDATE records SET amount = 0 WHERE tenant_id = 'globex' RETURNING id",
      "UPDATE users u SET manager_id = m.id FROM users m WHERE m.email = u.email RETURNING u.id, "
      "u.manager_id",
      "UPDATE users SET (role, manager_id) = ('r', 1) WHERE id = 2 RETURNING *",
      "UPDATE users SET (tenant_id, role) = ('globex', 'r') WHERE id = 2",
      "UPDATE users SET (role, tenant_id) = (SELECT 'r', 'globex') WHERE id = 2",
      "UPDATE comments SET tenant_id = tenant_id WHERE id = 1 RETURNING id",
      "UPDATE records SET created_by = NULL WHERE id = 1",
      "UPDATE records SET data = 'x' WHERE created_by = 2 OR true RETURNING id",
      "UPDATE countries SET name = 'x'",
      // DELETE
      "DELETE FROM comments WHERE author_id = 1 RETURNING *",
      "DELETE FROM tags t USING records r WHERE r.id = t.record_id AND r.amount > 50 RETURNING "
      "t.id",
      "DELETE FROM records RETURNING id",
      "DELETE FROM users WHERE id NOT IN (SELECT author_id FROM comments WHERE author_id IS NOT "
      "NULL) RETURNING id",
      "DELETE FROM users u WHERE EXISTS (SELECT 1 FROM records r WHERE r.created_by = u.id) "
      "RETURNING u.id",
      "DELETE FROM comments c USING users u WHERE u.id = c.author_id AND u.role = 'admin' "
      "RETURNING c.id",
      "DELETE FROM notes WHERE id IN (SELECT id FROM notes) RETURNING id",
      "DELETE FROM comments WHERE record_id IN (SELECT id FROM records) RETURNING id",
      "DELETE FROM users WHERE tenant_id = 'globex' OR true RETURNING id",
      "DELETE FROM users USING comments WHERE comments.author_id = users.id AND comments.body LIKE "
      "'c1%' RETURNING users.id",
      "DELETE FROM records WHERE created_by = 2 RETURNING id, tenant_id",
      "DELETE FROM tags WHERE record_id = ANY (SELECT parent_id FROM records) RETURNING *",
      // data-modifying CTEs
      "WITH d AS (DELETE FROM comments WHERE body IS NULL RETURNING *) SELECT count(*) FROM d",
      "WITH u AS (UPDATE records SET data = 'w' WHERE id < 4 RETURNING id) SELECT * FROM u",
      "WITH users AS (SELECT 5 AS id), d AS (DELETE FROM comments WHERE author_id IN (SELECT id "
      "FROM users) RETURNING id) SELECT count(*) FROM d",
      "WITH d AS (DELETE FROM comments RETURNING *), users AS (SELECT * FROM d) SELECT count(*) "
      "FROM users",
      "WITH users AS (SELECT 140 AS id, 'w@x.example' AS email) INSERT INTO users (id, email) "
      "SELECT id, email FROM users RETURNING *",
      "WITH d AS (DELETE FROM tags RETURNING record_id) SELECT count(*) FROM d JOIN records r ON "
      "r.id = d.record_id",
      "WITH src AS (SELECT id FROM records) INSERT INTO tags (id, record_id, name) SELECT 700 + "
      "id, "
      "id, 'cte' FROM src RETURNING id",
      "WITH m AS (SELECT max(id) AS id FROM users) UPDATE comments SET author_id = m.id FROM m "
      "RETURNING comments.id, comments.author_id",
      "WITH i AS (INSERT INTO tags (id, record_id, name) VALUES (50, 1, 'new') RETURNING *) "
      "SELECT i.id, t.id FROM i LEFT JOIN tags t ON t.id = i.record_id",
  };
  return cases;
}

const std::vector<ParamCase>& hand_param_cases() {
  static const std::vector<ParamCase> cases = {
      {"SELECT * FROM users WHERE id = $1", {"2"}, false},
      {"SELECT * FROM records WHERE created_by = $1 OR tenant_id = $2", {"1", "globex"}, false},
      {"SELECT count(*) FROM users WHERE tenant_id = $1", {"{T}"}, false},
      {"INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, $3) RETURNING *",
       {"110", "{T}", "p110@x.example"},
       true},
      {"INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, $3) RETURNING *",
       {"111", "globex", "p111@x.example"},
       true},
      {"INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, $3) RETURNING *",
       {"116", "{T} ", "p116@x.example"},
       true},
      {"INSERT INTO users (id, tenant_id, email) VALUES ($1, $2::text, $3) RETURNING *",
       {"112", "{T}", "p112@x.example"},
       true},
      {"INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'a@p.example'), ($3, $4, "
       "'b@p.example') RETURNING *",
       {"113", "{T}", "114", "globex"},
       true},
      {"INSERT INTO users (id, tenant_id, email) SELECT $1::int, $2, $3 RETURNING *",
       {"115", "{T}", "p115@x.example"},
       true},
      {"INSERT INTO records (id, tenant_id, created_by, data) VALUES ($1, $2, $3, 'p') RETURNING *",
       {"210", "{T}", "{U}"},
       true},
      {"INSERT INTO records (id, tenant_id, created_by, data) VALUES ($1, $2, $3, 'p') RETURNING *",
       {"211", "{T}", "2"},
       true},
      {"INSERT INTO records (id, tenant_id, created_by, data) VALUES ($1, $2, $3, 'p') RETURNING *",
       {"212", "{T}", "0{U}"},
       true},
      {"INSERT INTO notes (id, owner_id, body) VALUES ($1, $2, 'n') RETURNING *",
       {"600", "{U}"},
       true},
      {"INSERT INTO notes (id, owner_id, body) VALUES ($1, $2, 'n') RETURNING *",
       {"601", "1"},
       true},
      {"UPDATE users SET tenant_id = $1 WHERE id = 1 RETURNING *", {"{T}"}, true},
      {"UPDATE users SET tenant_id = $1 WHERE id = 1 RETURNING *", {"globex"}, true},
      {"UPDATE records SET created_by = $1 WHERE id < 5 RETURNING id", {"{U}"}, true},
      {"UPDATE records SET created_by = $1 WHERE id < 5 RETURNING id", {"4"}, true},
      {"UPDATE users SET role = $1 WHERE email = $2 RETURNING id",
       {"p", "u1@globex.example"},
       true},
      {"DELETE FROM comments WHERE author_id = $1 RETURNING id", {"{U}"}, true},
      {"INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT (tenant_id, id) DO UPDATE SET "
       "tenant_id = $3 RETURNING *",
       {"1", "pc@x.example", "globex"},
       true},
      {"INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT (tenant_id, id) DO UPDATE SET "
       "tenant_id = $3 RETURNING *",
       {"1", "pd@x.example", "{T}"},
       true},
  };
  return cases;
}

// ---------------------------------------------------------------------------
// The random SELECT generator.

namespace {

enum class Ty { kInt, kText, kNum };

struct Column {
  std::string ref;  // qualified: "t3.amount"
  Ty type;
  std::string key = {};  // what the value identifies ("user", "record", ...), for join keys
};

// Joins on these are the ones applications write, and they match rows.
std::string key_of(const std::string& table, const std::string& column) {
  if (column == "id") {
    if (table == "users") return "user";
    if (table == "records") return "record";
    return "";
  }
  if (column == "created_by" || column == "author_id" || column == "manager_id" ||
      column == "owner_id") {
    return "user";
  }
  if (column == "record_id" || column == "parent_id") return "record";
  if (column == "code" || column == "country_code") return "country";
  if (column == "tenant_id" || column == "org_id" || column == "\"TenantId\"") return "tenant";
  return "";
}

struct RelDef {
  std::string name;
  std::vector<std::pair<std::string, Ty>> cols;
};

const std::vector<RelDef>& base_tables() {
  static const std::vector<RelDef> t = {
      {"users",
       {{"id", Ty::kInt},
        {"tenant_id", Ty::kText},
        {"email", Ty::kText},
        {"role", Ty::kText},
        {"manager_id", Ty::kInt}}},
      {"records",
       {{"id", Ty::kInt},
        {"tenant_id", Ty::kText},
        {"created_by", Ty::kInt},
        {"data", Ty::kText},
        {"amount", Ty::kNum},
        {"parent_id", Ty::kInt},
        {"country_code", Ty::kText}}},
      {"comments",
       {{"id", Ty::kInt},
        {"tenant_id", Ty::kText},
        {"record_id", Ty::kInt},
        {"author_id", Ty::kInt},
        {"body", Ty::kText}}},
      {"tags",
       {{"id", Ty::kInt}, {"tenant_id", Ty::kText}, {"record_id", Ty::kInt}, {"name", Ty::kText}}},
      {"notes", {{"id", Ty::kInt}, {"owner_id", Ty::kInt}, {"body", Ty::kText}}},
      {"countries", {{"code", Ty::kText}, {"name", Ty::kText}}},
      // in schema app (second on the search_path), other tenant column names
      {"app.invoices", {{"id", Ty::kInt}, {"org_id", Ty::kText}, {"amount", Ty::kNum}}},
      {"\"AuditLog\"", {{"id", Ty::kInt}, {"\"TenantId\"", Ty::kText}, {"msg", Ty::kText}}},
  };
  return t;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Generator {
  struct Scope {
    std::vector<Column> outer;  // enclosing queries' columns, for correlation
    std::vector<RelDef> ctes;   // CTEs visible here
    int depth = 0;
  };

 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  std::string statement() {
    Scope s;
    std::string sql = with_clause(s, /*top=*/true);
    if (chance(20)) {
      std::vector<Ty> shape = random_shape();
      const char* ops[] = {"UNION",         "UNION ALL", "INTERSECT",
                           "INTERSECT ALL", "EXCEPT",    "EXCEPT ALL"};
      std::string op = ops[pick(6)];
      sql += "(" + select(s, &shape, nullptr, chance(15)) + ") " + op + " (" +
             select(s, &shape, nullptr, chance(15)) + ")";
      if (chance(25))
        sql += std::string(" ") + ops[pick(6)] + " (" + select(s, &shape, nullptr, false) + ")";
      if (chance(15)) sql += order_all(shape.size()) + " LIMIT " + std::to_string(1 + pick(6));
      return sql;
    }
    sql += select(s, nullptr, nullptr, chance(20));
    return sql;
  }

  // A random INSERT ... SELECT, UPDATE or DELETE on a scoped table. Only
  // non-policy columns are written, and every value written or returned is a
  // function of the target row alone, so the outcome is deterministic.
  std::string write_statement() {
    Scope s;
    std::string with = with_clause(s, true);
    int kind = pick(3);
    if (kind == 0) return with + insert_select(s);
    static const std::vector<std::string> targets = {
        "users",   "records",  "comments", "tags",  "notes",        "users",
        "records", "comments", "tags",     "notes", "app.invoices", "\"AuditLog\""};
    const std::string& table = one_of(targets);
    const RelDef* def = nullptr;
    for (const auto& t : base_tables()) {
      if (t.name == table) def = &t;
    }
    std::string a = alias("w");
    std::vector<Column> target;
    for (const auto& [name, type] : def->cols)
      target.push_back({a + "." + name, type, key_of(table, name)});
    std::vector<Column> from_cols;
    std::string from;
    if (chance(35)) from = from_clause(s, from_cols, 2);
    std::vector<Column> all = target;
    all.insert(all.end(), from_cols.begin(), from_cols.end());
    std::vector<std::string> conj;
    if (!from.empty()) {
      std::string on = equality(target, from_cols);
      if (!on.empty()) conj.push_back(on);
    }
    if (chance(80)) conj.push_back(predicate(s, all, 2));
    std::string where;
    for (std::size_t i = 0; i < conj.size(); ++i) where += (i ? " AND " : " WHERE ") + conj[i];
    std::string returning = " RETURNING " + a + ".*";
    if (kind == 1) {
      // SET a non-policy column from the target row only.
      std::vector<Column> settable;
      for (const auto& c : target) {
        std::string col = c.ref.substr(c.ref.find('.') + 1);
        if (col != "tenant_id" && col != "owner_id" && col != "created_by" && col != "id" &&
            col != "org_id" && col != "\"TenantId\"") {
          settable.push_back(c);
        }
      }
      const Column& c = one_of(settable);
      std::string col = c.ref.substr(c.ref.find('.') + 1);
      Scope local;  // no subqueries that could see FROM items
      local.depth = 3;
      return wrap(with, "UPDATE " + table + " AS " + a + " SET " + col + " = " +
                            expr(local, target, c.type, 1) + (from.empty() ? "" : " FROM " + from) +
                            where + returning);
    }
    return wrap(with, "DELETE FROM " + table + " AS " + a + (from.empty() ? "" : " USING " + from) +
                          where + returning);
  }

  // Sometimes runs the statement as a data-modifying CTE whose RETURNING rows
  // the main query correlates with scoped tables (which see the rows as they
  // were before the statement). Schema-qualified: a CTE may shadow the names.
  std::string wrap(const std::string& with, const std::string& dml) {
    if (!chance(20)) return with + dml;
    std::string head = with.empty() ? "WITH " : with.substr(0, with.size() - 1) + ", ";
    return head + "m AS (" + dml +
           ") SELECT m.*, (SELECT count(*) FROM public.comments c WHERE c.author_id = m.id), "
           "(SELECT "
           "max(r.amount) FROM public.records r WHERE r.id = m.id) FROM m";
  }

  std::string insert_select(Scope& s) {
    struct Target {
      const char* table;
      const char* columns;  // after the generated id
      std::vector<Ty> shape;
      const char* id;  // expression for the new id, from row_number() rn
    };
    static const std::vector<Target> targets = {
        {"tags", "record_id, name", {Ty::kInt, Ty::kText}, "1000 + rn"},
        {"comments", "record_id, author_id, body", {Ty::kInt, Ty::kInt, Ty::kText}, "1000 + rn"},
        {"records", "data, amount, parent_id", {Ty::kText, Ty::kNum, Ty::kInt}, "1000 + rn"},
        {"notes", "body", {Ty::kText}, "1000 + rn"},
    };
    const Target& t = one_of(targets);
    std::vector<Ty> shape = t.shape;
    std::string src = select(s, &shape, nullptr, chance(20));
    std::string names, order;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      names += (i ? ", x" : "x") + std::to_string(i);
      order += (i ? ", x" : "x") + std::to_string(i);
    }
    // Sometimes reuse existing ids so that ON CONFLICT has work to do. For
    // the tenant tables the key includes tenant_id, so every conflict is
    // with the caller's own row; notes conflict across owners, DO NOTHING.
    bool upsert = chance(35);
    std::string id = upsert ? "rn" : t.id;
    std::string on_conflict;
    if (upsert) {
      std::string first = t.columns;
      first = first.substr(0, first.find(','));
      if (std::string(t.table) == "notes") {
        on_conflict = " ON CONFLICT (id) DO NOTHING";
      } else if (chance(30)) {
        on_conflict = " ON CONFLICT DO NOTHING";
      } else {
        on_conflict =
            " ON CONFLICT (tenant_id, id) DO UPDATE SET " + first + " = excluded." + first;
      }
    }
    // Numbering rows in the order of all their values: rows that tie are
    // identical, so which gets which id does not matter.
    std::string sql = std::string("INSERT INTO ") + t.table + " (id, " + t.columns + ") SELECT " +
                      id + ", " + names + " FROM (SELECT " + names +
                      ", row_number() OVER (ORDER BY " + order + ") AS rn FROM (" + src +
                      ") AS src(" + names + ")) AS numbered" + on_conflict + " RETURNING *";
    return sql;
  }

  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }
  bool chance(int percent) { return pick(100) < percent; }

 private:
  std::mt19937_64 rng_;
  int next_alias_ = 0;

  std::string alias(const char* prefix) { return prefix + std::to_string(++next_alias_); }

  template <typename T>
  const T& one_of(const std::vector<T>& v) {
    return v[pick(static_cast<int>(v.size()))];
  }

  static std::string order_all(std::size_t n) {
    std::string s = " ORDER BY ";
    for (std::size_t i = 1; i <= n; ++i) s += (i > 1 ? ", " : "") + std::to_string(i);
    return s;
  }

  std::vector<Ty> random_shape() {
    std::vector<Ty> shape;
    int n = 1 + pick(3);
    for (int i = 0; i < n; ++i)
      shape.push_back(static_cast<Ty>(pick(10) < 5 ? 0 : pick(10) < 7 ? 1 : 2));
    return shape;
  }

  std::string constant(Ty t) {
    static const std::vector<std::string> ints = {"0", "1", "2", "3", "4", "5", "6", "8", "10"};
    static const std::vector<std::string> texts = {
        "'admin'", "'member'",  "'viewer'", "'acme'",  "'globex'",          "'initech'",
        "'US'",    "'DE'",      "'ZZ'",     "'alpha'", "'u1@acme.example'", "'u2@globex.example'",
        "'d1a'",   "'c3-acme'", "'n4'",     "'beta'"};
    static const std::vector<std::string> nums = {"0", "50.5", "100", "150.25", "200", "299.99"};
    switch (t) {
      case Ty::kInt:
        return one_of(ints);
      case Ty::kText:
        return one_of(texts);
      case Ty::kNum:
        return one_of(nums);
    }
    return "NULL";
  }

  // A column of type t, or nullptr when there is none.
  const Column* column(const std::vector<Column>& cols, Ty t) {
    std::vector<const Column*> m;
    for (const auto& c : cols) {
      if (c.type == t) m.push_back(&c);
    }
    if (m.empty()) return nullptr;
    return m[pick(static_cast<int>(m.size()))];
  }

  std::string column_or_constant(const std::vector<Column>& cols, Ty t) {
    const Column* c = column(cols, t);
    return c ? c->ref : constant(t);
  }

  // Local columns mostly, outer ones (correlation) sometimes.
  std::vector<Column> available(const Scope& s, const std::vector<Column>& cols) {
    if (s.outer.empty() || !chance(15)) return cols;
    std::vector<Column> all = cols;
    all.insert(all.end(), s.outer.begin(), s.outer.end());
    return all;
  }

  std::string expr(const Scope& s, const std::vector<Column>& cols, Ty t, int budget) {
    std::vector<Column> av = available(s, cols);
    int k = pick(12);
    if (budget <= 0) k = k < 9 ? 0 : 1;
    switch (k) {
      case 1:
        return constant(t);
      case 2:
      case 3: {
        std::string c = column_or_constant(av, t);
        switch (t) {
          case Ty::kInt: {
            const char* f[] = {"coalesce(%, 0)", "% + 1", "abs(% - 3)", "% * 2"};
            std::string r = f[pick(4)];
            if (chance(30)) return "length(" + column_or_constant(av, Ty::kText) + ")";
            return r.replace(r.find('%'), 1, c);
          }
          case Ty::kText: {
            const char* f[] = {"upper(%)", "coalesce(%, 'none')", "substr(%, 1, 3)", "% || '-x'",
                               "lower(%)"};
            std::string r = f[pick(5)];
            return r.replace(r.find('%'), 1, c);
          }
          case Ty::kNum: {
            const char* f[] = {"coalesce(%, 0)", "round(%, 0)", "% * 2", "% + 1.5"};
            std::string r = f[pick(4)];
            if (chance(25)) return column_or_constant(av, Ty::kInt) + "::numeric";
            return r.replace(r.find('%'), 1, c);
          }
        }
        return c;
      }
      case 4:
        return "CASE WHEN " + predicate(s, cols, budget - 1) + " THEN " +
               expr(s, cols, t, budget - 1) + " ELSE " + expr(s, cols, t, budget - 1) + " END";
      case 5:
        if (s.depth < 3) return "(" + scalar_subquery(s, cols, t) + ")";
        return column_or_constant(av, t);
      default:
        return column_or_constant(av, t);
    }
  }

  std::string aggregate(const std::vector<Column>& cols, Ty t) {
    const Column* c = column(cols, t);
    switch (t) {
      case Ty::kInt: {
        int k = pick(5);
        if (k == 0 || !c) return "count(*)";
        if (k == 1) return "count(" + c->ref + ")";
        if (k == 2) return "max(" + c->ref + ")";
        if (k == 3) return "min(" + c->ref + ")";
        return "sum(" + c->ref + ")";
      }
      case Ty::kText: {
        if (!c) return "max('x'::text)";
        int k = pick(3);
        if (k == 0) return "max(" + c->ref + ")";
        if (k == 1) return "min(" + c->ref + ")";
        return "string_agg(" + c->ref + ", ',' ORDER BY " + c->ref + ")";
      }
      case Ty::kNum: {
        if (!c) return "sum(0.5)";
        int k = pick(4);
        if (k == 0) return "sum(" + c->ref + ")";
        if (k == 1) return "max(" + c->ref + ")";
        if (k == 2) return "min(" + c->ref + ")";
        return "avg(" + c->ref + ")";
      }
    }
    return "count(*)";
  }

  std::string window(const std::vector<Column>& cols, Ty t) {
    auto part = [&]() -> std::string {
      if (cols.empty() || chance(25)) return "";
      return "PARTITION BY " + one_of(cols).ref;
    };
    auto order = [&]() -> std::string {
      if (cols.empty()) return "";
      return "ORDER BY " + one_of(cols).ref;
    };
    auto over = [](const std::string& a, const std::string& b) {
      return " OVER (" + a + (a.empty() || b.empty() ? "" : " ") + b + ")";
    };
    switch (t) {
      case Ty::kInt: {
        int k = pick(3);
        if (k == 0) return "count(*)" + over(part(), "");
        if (k == 1) return "rank()" + over(part(), order());
        return "dense_rank()" + over(part(), order());
      }
      case Ty::kText:
        return (chance(50) ? "max(" : "min(") + column_or_constant(cols, Ty::kText) + ")" +
               over(part(), "");
      case Ty::kNum: {
        const Column* c = column(cols, Ty::kNum);
        std::string arg = c ? c->ref : "1.5";
        return (chance(50) ? "sum(" : "max(") + arg + ")" + over(part(), chance(40) ? order() : "");
      }
    }
    return "count(*) OVER ()";
  }

  std::string compare_op() {
    const char* ops[] = {"=", "<>", "<", "<=", ">", ">="};
    return ops[pick(6)];
  }

  Ty random_type(const std::vector<Column>& cols) {
    if (!cols.empty() && chance(85)) return one_of(cols).type;
    return static_cast<Ty>(pick(3));
  }

  std::string predicate(const Scope& s, const std::vector<Column>& cols, int budget) {
    std::vector<Column> av = available(s, cols);
    int k = pick(budget > 0 ? 16 : 8);
    Ty t = random_type(av);
    switch (k) {
      case 0:
      case 1:
        return column_or_constant(av, t) + " " + compare_op() + " " + constant(t);
      case 2:
        return column_or_constant(av, t) + " " + compare_op() + " " + column_or_constant(av, t);
      case 3:
        return column_or_constant(av, t) + (chance(50) ? " IS NULL" : " IS NOT NULL");
      case 4:
        return column_or_constant(av, t) + (chance(70) ? " IN (" : " NOT IN (") + constant(t) +
               ", " + constant(t) + ")";
      case 5:
        return column_or_constant(av, t) + " BETWEEN " + constant(t) + " AND " + constant(t);
      case 6: {
        const char* pats[] = {"'u1%'", "'%acme%'", "'d%'", "'%a'", "'c1%'", "'%e%'"};
        return column_or_constant(av, Ty::kText) + (chance(80) ? " LIKE " : " NOT LIKE ") +
               pats[pick(6)];
      }
      case 7:
        return column_or_constant(av, t) + " IS DISTINCT FROM " + constant(t);
      case 8:
      case 9:
        return "(" + predicate(s, cols, budget - 1) + (chance(60) ? " AND " : " OR ") +
               predicate(s, cols, budget - 1) + ")";
      case 10:
        return "NOT (" + predicate(s, cols, budget - 1) + ")";
      case 11:
        return expr(s, cols, t, budget - 1) + " " + compare_op() + " " +
               expr(s, cols, t, budget - 1);
      default:
        break;
    }
    if (s.depth >= 3) return column_or_constant(av, t) + " IS NOT NULL";
    switch (k) {
      case 12:
        return (chance(70) ? "EXISTS (" : "NOT EXISTS (") + subquery(s, cols, nullptr, true) + ")";
      case 13: {
        std::vector<Ty> shape{t};
        return column_or_constant(av, t) + (chance(75) ? " IN (" : " NOT IN (") +
               subquery(s, cols, &shape, chance(50)) + ")";
      }
      case 14: {
        std::vector<Ty> shape{t};
        return column_or_constant(av, t) + " " + compare_op() + (chance(60) ? " ANY (" : " ALL (") +
               subquery(s, cols, &shape, chance(50)) + ")";
      }
      default:
        return column_or_constant(av, t) + " " + compare_op() + " (" + scalar_subquery(s, cols, t) +
               ")";
    }
  }

  Scope child(const Scope& s, const std::vector<Column>& cols) {
    Scope c;
    c.outer = cols;
    c.outer.insert(c.outer.end(), s.outer.begin(), s.outer.end());
    c.ctes = s.ctes;
    c.depth = s.depth + 1;
    return c;
  }

  // A correlation conjunct tying an inner column to an outer one.
  std::string correlation(const std::vector<Column>& inner, const std::vector<Column>& outer) {
    for (int tries = 0; tries < 6 && !inner.empty() && !outer.empty(); ++tries) {
      const Column& o = one_of(outer);
      if (const Column* i = column(inner, o.type)) return i->ref + " = " + o.ref;
    }
    return "";
  }

  // One-row subquery: an aggregate over a (maybe correlated) FROM.
  std::string scalar_subquery(const Scope& s, const std::vector<Column>& cols, Ty t) {
    Scope c = child(s, cols);
    std::vector<Column> inner;
    std::string from = from_clause(c, inner, 2);
    std::string sql = "SELECT " + aggregate(inner, t) + " FROM " + from;
    std::vector<std::string> conj;
    if (chance(70)) {
      std::string corr = correlation(inner, c.outer);
      if (!corr.empty()) conj.push_back(corr);
    }
    if (chance(50)) conj.push_back(predicate(c, inner, 1));
    for (std::size_t i = 0; i < conj.size(); ++i) sql += (i ? " AND " : " WHERE ") + conj[i];
    return sql;
  }

  // A subquery for IN / ANY / EXISTS (shape nullptr: SELECT 1).
  std::string subquery(const Scope& s, const std::vector<Column>& cols,
                       const std::vector<Ty>* shape, bool correlate) {
    Scope c = child(s, cols);
    if (shape == nullptr || chance(40)) {
      std::vector<Column> inner;
      std::string from = from_clause(c, inner, 2);
      std::string item = shape ? column_or_constant(inner, (*shape)[0]) : "1";
      std::string sql = "SELECT " + item + " FROM " + from;
      std::vector<std::string> conj;
      if (correlate) {
        std::string corr = correlation(inner, c.outer);
        if (!corr.empty()) conj.push_back(corr);
      }
      if (chance(50)) conj.push_back(predicate(c, inner, 1));
      for (std::size_t i = 0; i < conj.size(); ++i) sql += (i ? " AND " : " WHERE ") + conj[i];
      return sql;
    }
    return select(c, shape, nullptr, false);
  }

  // Makes a relation visible; its columns go to `out`. Usually under a fresh
  // alias, sometimes under its own name or another table's name (which a
  // rewriter must not confuse with that table). `used` holds the names taken
  // at this FROM level.
  std::string relation(const Scope& s, std::vector<Column>& out, std::set<std::string>& used) {
    std::vector<const RelDef*> choices;
    for (const auto& c : s.ctes) choices.push_back(&c);
    for (const auto& t : base_tables()) {
      bool shadowed = std::any_of(s.ctes.begin(), s.ctes.end(),
                                  [&](const RelDef& c) { return c.name == t.name; });
      if (shadowed) continue;
      // notes, countries and the app schema's tables: less often.
      int copies = (t.name == "notes" || t.name == "countries" ||
                    t.name.find_first_of(".\"") != std::string::npos)
                       ? 1
                       : 3;
      for (int i = 0; i < copies; ++i) choices.push_back(&t);
    }
    const RelDef& r = *choices[pick(static_cast<int>(choices.size()))];
    // What the relation is called when it has no alias: its last name part.
    auto bare = [](const std::string& name) { return name.substr(name.rfind('.') + 1); };
    // A name is free if nothing at this level or outside uses it as a qualifier.
    auto free = [&](const std::string& name) {
      if (used.count(name)) return false;
      return std::none_of(s.outer.begin(), s.outer.end(), [&](const Column& c) {
        return c.ref.compare(0, name.size() + 1, name + ".") == 0;
      });
    };
    int how = pick(100);
    std::string a;
    std::string sql;
    if (how < 15 && free(bare(r.name))) {
      a = bare(r.name);
      sql = r.name;
    } else if (how < 30) {
      const std::string other = bare(one_of(base_tables()).name);
      if (free(other)) {
        a = other;
        sql = r.name + (chance(50) ? " AS " : " ") + a;
      }
    }
    if (a.empty()) {
      a = alias("t");
      sql = r.name + (chance(50) ? " AS " : " ") + a;
    }
    used.insert(a);
    for (const auto& [name, type] : r.cols) {
      out.push_back({a + "." + name, type, key_of(r.name, name)});
    }
    return sql;
  }

  std::string column_list(std::size_t n) {
    std::string s = "(";
    for (std::size_t i = 0; i < n; ++i) s += (i ? ", c" : "c") + std::to_string(i);
    return s + ")";
  }

  // A derived table, maybe LATERAL and correlated with `left`.
  std::string derived(const Scope& s, const std::vector<Column>& left, bool lateral,
                      std::vector<Column>& out) {
    // A plain derived table may still reference enclosing queries (s.outer),
    // but not the FROM items beside it.
    Scope c = child(s, lateral ? left : std::vector<Column>{});
    std::vector<Ty> shape;
    std::string body = select(c, nullptr, &shape, chance(30), lateral);
    std::string a = alias(lateral ? "l" : "d");
    for (std::size_t i = 0; i < shape.size(); ++i) {
      out.push_back({a + ".c" + std::to_string(i), shape[i]});
    }
    return std::string(lateral ? "LATERAL " : "") + "(" + body + ") AS " + a +
           column_list(shape.size());
  }

  std::string from_item(const Scope& s, std::vector<Column>& out, std::set<std::string>& used) {
    if (s.depth < 2 && chance(12)) return derived(s, {}, false, out);
    if (s.depth < 2 && chance(5)) {
      // a parenthesised join
      std::vector<Column> l, r;
      std::string a = relation(s, l, used);
      std::string b = relation(s, r, used);
      std::string on = equality(l, r);
      out.insert(out.end(), l.begin(), l.end());
      out.insert(out.end(), r.begin(), r.end());
      if (on.empty()) return "(" + a + " CROSS JOIN " + b + ")";
      return "(" + a + (chance(50) ? " JOIN " : " LEFT JOIN ") + b + " ON " + on + ")";
    }
    return relation(s, out, used);
  }

  std::string equality(const std::vector<Column>& left, const std::vector<Column>& right) {
    if (chance(75)) {
      std::vector<std::string> keyed;
      for (const auto& l : left) {
        for (const auto& r : right) {
          if (!l.key.empty() && l.key == r.key) keyed.push_back(l.ref + " = " + r.ref);
        }
      }
      if (!keyed.empty()) return one_of(keyed);
    }
    for (int tries = 0; tries < 8 && !left.empty() && !right.empty(); ++tries) {
      const Column& r = one_of(right);
      if (const Column* l = column(left, r.type)) return l->ref + " = " + r.ref;
    }
    return "";
  }

  std::string from_clause(const Scope& s, std::vector<Column>& cols, int max_items) {
    std::set<std::string> used;
    std::string sql = from_item(s, cols, used);
    std::vector<Column> on_cols = cols;  // what an ON condition or LATERAL may reference
    int extra = pick(100);
    int joins = extra < 35 ? 0 : extra < 75 ? 1 : extra < 95 ? 2 : 3;
    joins = std::min(joins, max_items - 1);
    for (int j = 0; j < joins; ++j) {
      std::vector<Column> right;
      int kind = pick(100);
      if (kind < 8 && s.depth < 2) {
        // LATERAL, correlated with what is on its left
        std::string item = derived(s, on_cols, true, right);
        int how = pick(3);
        if (how == 0) {
          sql += " CROSS JOIN " + item;
          on_cols.insert(on_cols.end(), right.begin(), right.end());
        } else if (how == 1) {
          sql += " LEFT JOIN " + item + " ON true";
          on_cols.insert(on_cols.end(), right.begin(), right.end());
        } else {
          sql += ", " + item;
          on_cols = right;
        }
      } else if (kind < 16) {
        std::string item = from_item(s, right, used);
        sql += ", " + item;
        on_cols = right;  // a later JOIN binds to this item only
      } else if (kind < 22) {
        sql += " CROSS JOIN " + from_item(s, right, used);
        on_cols.insert(on_cols.end(), right.begin(), right.end());
      } else {
        std::string item = from_item(s, right, used);
        const char* types[] = {"JOIN",           "INNER JOIN", "LEFT JOIN", "LEFT OUTER JOIN",
                               "RIGHT JOIN",     "FULL JOIN",  "LEFT JOIN", "RIGHT JOIN",
                               "FULL OUTER JOIN"};
        std::string type = types[pick(9)];
        bool full = type.rfind("FULL", 0) == 0;
        std::string on = equality(on_cols, right);
        if (on.empty()) {
          sql += " CROSS JOIN " + item;
        } else {
          if (full) {
            if (chance(30)) {
              std::string more = equality(on_cols, right);
              if (!more.empty()) on += " AND " + more;
            }
          } else if (chance(35)) {
            std::vector<Column> both = on_cols;
            both.insert(both.end(), right.begin(), right.end());
            Scope inner = s;
            inner.depth = std::max(inner.depth, 2);  // keep ON conditions cheap
            on += " AND " + predicate(inner, both, 1);
          }
          sql += " " + type + " " + item + " ON " + on;
        }
        on_cols.insert(on_cols.end(), right.begin(), right.end());
      }
      cols.insert(cols.end(), right.begin(), right.end());
    }
    return sql;
  }

  // WITH [RECURSIVE] ...; adds the CTEs to s.
  std::string with_clause(Scope& s, bool top) {
    if (top && chance(8)) return recursive_cte(s);
    if (!chance(top ? 22 : 6)) return "";
    std::string sql = "WITH ";
    int n = 1 + (chance(30) ? 1 : 0);
    for (int i = 0; i < n; ++i) {
      std::vector<Ty> shape;
      std::string body = select(s, nullptr, &shape, chance(20));
      static const std::vector<std::string> shadows = {"users", "records", "comments", "tags",
                                                       "notes"};
      std::string name = chance(25) ? one_of(shadows) : alias("cte");
      if (sql.find(" " + name + "(") != std::string::npos) name = alias("cte");
      RelDef def{name, {}};
      for (std::size_t k = 0; k < shape.size(); ++k) {
        def.cols.push_back({"c" + std::to_string(k), shape[k]});
      }
      if (i) sql += ", ";
      sql += name + column_list(shape.size()) + (chance(15) ? " AS MATERIALIZED (" : " AS (") +
             body + ")";
      std::erase_if(s.ctes, [&](const RelDef& c) { return c.name == name; });
      s.ctes.push_back(def);
    }
    return sql + " ";
  }

  std::string recursive_cte(Scope& s) {
    std::string name = alias("rc");
    std::string sql;
    RelDef def{name, {}};
    std::string a = alias("t"), b = alias("t");
    std::vector<Column> acols;
    if (chance(50)) {
      for (const auto& [col, ty] : base_tables()[0].cols) acols.push_back({a + "." + col, ty});
      sql = "WITH RECURSIVE " + name + "(id, manager_id, lvl) AS (SELECT " + a + ".id, " + a +
            ".manager_id, 0 FROM users " + a + " WHERE " + predicate(s, acols, 1) +
            (chance(50) ? " UNION ALL " : " UNION ") + "SELECT " + b + ".id, " + b +
            ".manager_id, r.lvl + 1 FROM users " + b + " JOIN " + name + " r ON " + b +
            ".id = r.manager_id WHERE r.lvl < 4) ";
      def.cols = {{"id", Ty::kInt}, {"manager_id", Ty::kInt}, {"lvl", Ty::kInt}};
    } else {
      for (const auto& [col, ty] : base_tables()[1].cols) acols.push_back({a + "." + col, ty});
      bool down = chance(50);
      sql = "WITH RECURSIVE " + name + "(id, parent_id, amount, lvl) AS (SELECT " + a + ".id, " +
            a + ".parent_id, " + a + ".amount, 0 FROM records " + a + " WHERE " +
            (chance(50) ? a + ".parent_id IS NULL" : predicate(s, acols, 1)) +
            " UNION ALL SELECT " + b + ".id, " + b + ".parent_id, " + b +
            ".amount, r.lvl + 1 FROM records " + b + " JOIN " + name + " r ON " +
            (down ? b + ".parent_id = r.id" : b + ".id = r.parent_id") + " WHERE r.lvl < 4) ";
      def.cols = {
          {"id", Ty::kInt}, {"parent_id", Ty::kInt}, {"amount", Ty::kNum}, {"lvl", Ty::kInt}};
    }
    s.ctes.push_back(def);
    return sql;
  }

  // A SELECT. shape: required output types (nullptr: choose); got: receives
  // the output types. limit: end with ORDER BY <all outputs> LIMIT k, which is
  // deterministic as a multiset. correlate: add a correlation to s.outer.
  std::string select(const Scope& outer_scope, const std::vector<Ty>* shape, std::vector<Ty>* got,
                     bool limit, bool correlate = false) {
    Scope s = outer_scope;
    std::string with = s.depth > 0 ? with_clause(s, false) : "";
    std::vector<Column> cols;
    std::string from = from_clause(s, cols, s.depth == 0 ? 4 : 3);
    std::vector<Ty> types;
    if (shape) {
      types = *shape;
    } else {
      int n = 1 + pick(4);
      for (int i = 0; i < n; ++i) types.push_back(random_type(cols));
    }
    if (got) *got = types;

    int mode = pick(100);  // <50 plain, <72 aggregate, <84 window, <93 distinct, else distinct on
    std::vector<std::string> items;
    std::string group_by, having;
    if (mode >= 50 && mode < 72) {
      std::vector<Column> groups;
      int ng = pick(3);
      for (int i = 0; i < ng && !cols.empty(); ++i) groups.push_back(one_of(cols));
      for (Ty t : types) {
        const Column* g = column(groups, t);
        if (g && chance(60)) {
          items.push_back(g->ref);
        } else if (t == Ty::kInt && chance(15)) {
          // FILTER may hold subqueries; no outer references, which would
          // make the aggregate belong to the outer query.
          Scope f = s;
          f.outer.clear();
          items.push_back("count(*) FILTER (WHERE " + predicate(f, cols, 1) + ")");
        } else {
          items.push_back(aggregate(cols, t));
        }
      }
      bool rollup = !groups.empty() && chance(12);
      for (std::size_t i = 0; i < groups.size(); ++i) {
        group_by += (i ? ", " : (rollup ? " GROUP BY ROLLUP (" : " GROUP BY ")) + groups[i].ref;
      }
      if (rollup) group_by += ")";
      if (chance(35)) {
        int k = pick(3);
        if (k == 0) {
          having = " HAVING count(*) > " + std::to_string(pick(3));
        } else if (k == 1) {
          Ty t = random_type(cols);
          having = " HAVING " + aggregate(cols, t) + " " + compare_op() + " " + constant(t);
        } else if (s.depth < 3) {
          Scope c = s;
          c.outer.clear();
          having =
              " HAVING count(*) " + compare_op() + " (" + scalar_subquery(c, {}, Ty::kInt) + ")";
        }
      }
    } else {
      for (Ty t : types) {
        if (mode >= 72 && mode < 84 && chance(50)) {
          items.push_back(window(cols, t));
        } else {
          items.push_back(expr(s, cols, t, 1));
        }
      }
    }

    std::string sql = with + "SELECT ";
    // DISTINCT ON a constant is an error (or a position); use plain DISTINCT.
    bool distinct_on = mode >= 93 && items[0].find_first_of("'0123456789") != 0;
    if (mode >= 93 && !distinct_on) mode = 84;
    if (mode >= 84 && mode < 93) sql += "DISTINCT ";
    if (distinct_on) sql += "DISTINCT ON (" + items[0] + ") ";
    for (std::size_t i = 0; i < items.size(); ++i) sql += (i ? ", " : "") + items[i];
    sql += " FROM " + from;

    std::vector<std::string> conj;
    if (correlate) {
      std::string corr = correlation(cols, s.outer);
      if (!corr.empty()) conj.push_back(corr);
    }
    if (chance(45)) conj.push_back(predicate(s, cols, 2));
    for (std::size_t i = 0; i < conj.size(); ++i) sql += (i ? " AND " : " WHERE ") + conj[i];
    sql += group_by + having;
    if (distinct_on || limit) sql += order_all(items.size());
    if (limit) sql += " LIMIT " + std::to_string(1 + pick(5));
    return sql;
  }
};

}  // namespace

RandomCase random_select(std::uint64_t seed, std::uint64_t index) {
  Generator g(splitmix64(seed ^ splitmix64(index)));
  RandomCase c;
  c.tenant_index = g.pick(4);
  c.user = 1 + g.pick(7);
  c.sql = g.statement();
  return c;
}

RandomCase random_write(std::uint64_t seed, std::uint64_t index) {
  Generator g(splitmix64(~seed ^ splitmix64(index)));
  RandomCase c;
  c.tenant_index = g.pick(4);
  c.user = 1 + g.pick(7);
  c.sql = g.write_statement();
  return c;
}

}  // namespace tenantgate::rewriter
