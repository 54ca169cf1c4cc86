"""Attack suite: each bypass vector of docs/design.md tried over the wire as a client would.

Every test asserts a refusal (its SQLSTATE) or that only the caller's rows were
seen or touched, checked directly on PostgreSQL as the superuser where a write
is involved. After every test the proxy must still be alive and serving.

Tables per test (fresh, seeded with enforcement_support.SEED_ROWS: ids 1..18,
tenants acme/globex/initech interleaved, owners 42/7):
  acc     scope tenant
  rec     scope tenant_owner (owner_id)
  shr     scope shared
  sec     not listed: default_action deny
The caller is tenant "acme", user 42.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

import psycopg2
import psycopg2.errors
import pytest

import harness
from enforcement_support import (ME_TENANT, ME_USER, SEED_ROWS, admin_rows, bind_msg, create_seeded_table,
                                 drop_tables, errors, execute_msg, ids_for, parse_msg, pg2, policy_text,
                                 proxy_serves, read_until_ready, sqlstate, start_with_policy, sync_msg)

OWN = ids_for(ME_TENANT)
OWN_REC = ids_for(ME_TENANT, ME_USER)
GLOBEX = ids_for("globex")
POLICY_REFUSAL = {"42501"}


@dataclass
class Env:
    proxy: harness.Proxy
    pg: harness.PgServer
    conn: psycopg2.extensions.connection
    acc: str
    rec: str
    shr: str
    sec: str

    def rows(self, sql: str, params=None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def ids(self, sql: str, params=None) -> list[int]:
        return sorted(r[0] for r in self.rows(sql, params) if r[0] is not None)

    def execute(self, sql: str, params=None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount

    def refused(self, sql: str, codes=frozenset(POLICY_REFUSAL), params=None) -> str:
        """Asserts the statement fails with one of `codes` and that the session still works."""
        with pytest.raises(psycopg2.Error) as e:
            self.execute(sql, params)
        code = sqlstate(e.value)
        shown = sql if len(sql) < 300 else sql[:150] + f" ...<{len(sql)} bytes>... " + sql[-50:]
        assert code in codes, f"{shown!r}: expected SQLSTATE in {sorted(codes)}, got {code}: {str(e.value)[:300]}"
        if not self.conn.autocommit:
            self.conn.rollback()
        assert self.rows("SELECT 1") == [(1,)]
        return str(e.value)

    def table_state(self, table: str) -> list[tuple]:
        return admin_rows(self.pg, f"SELECT * FROM {table} ORDER BY id")


@pytest.fixture
def env(pg, start_proxy):
    acc, rec, shr, sec = (create_seeded_table(pg, p) for p in ("atk_acc", "atk_rec", "atk_shr", "atk_sec"))
    proxy = start_with_policy(start_proxy, policy_text({acc: "tenant", rec: "tenant_owner", shr: "shared"}))
    conn = pg2(proxy)
    e = Env(proxy, pg, conn, acc, rec, shr, sec)
    before = {t: e.table_state(t) for t in (shr, sec)}
    try:
        yield e
    finally:
        conn.close()
        try:
            assert proxy_serves(proxy), "the proxy is not serving after the attack"
            for t, rows in before.items():
                assert e.table_state(t) == rows, f"{t} changed"
        finally:
            drop_tables(pg, [acc, rec, shr, sec])


# --------------------------------------------------------------------------
# Reads.


def test_forgotten_predicate(env):
    assert env.ids(f"SELECT id FROM {env.acc}") == OWN
    for other in GLOBEX:
        assert env.rows(f"SELECT id, tenant_id, body FROM {env.acc} WHERE id = %s", (other,)) == []
    assert env.ids(f"SELECT id FROM {env.rec}") == OWN_REC
    env.refused(f"SELECT * FROM {env.sec}")


def test_tautologies(env):
    for where in ("id = 1 OR 1 = 1", "true", "tenant_id = 'globex' OR true", "tenant_id <> 'acme'",
                  "NOT (tenant_id = 'acme')", "tenant_id IS NOT NULL OR id > 0", "1 = 1 IS TRUE"):
        got = env.ids(f"SELECT id FROM {env.acc} WHERE {where}")
        assert set(got) <= set(OWN), (where, got)
    # libpg_query 15-4.0.0 deparses "(a OR b) IS TRUE" without its parentheses: refused (0A000) or right.
    for where in ("(tenant_id = 'acme' OR tenant_id = 'globex') IS TRUE", "(id > 0 OR true) IS NOT FALSE"):
        try:
            got = env.ids(f"SELECT id FROM {env.acc} WHERE {where}")
        except psycopg2.Error as e:
            assert sqlstate(e) == "0A000", e
        else:
            assert set(got) <= set(OWN), (where, got)
    assert env.rows(f"SELECT count(*) FROM {env.acc} WHERE tenant_id <> 'acme'") == [(0,)]


def test_union_with_other_tenant(env):
    for op in ("UNION", "UNION ALL", "INTERSECT", "EXCEPT"):
        rows = env.rows(f"SELECT id, tenant_id FROM {env.acc} WHERE tenant_id = 'globex' {op} "
                        f"SELECT id, tenant_id FROM {env.rec} WHERE tenant_id = 'initech'")
        assert rows == [], (op, rows)
    rows = env.rows(f"SELECT id, tenant_id FROM (SELECT * FROM {env.acc} UNION ALL TABLE {env.acc}) u "
                    f"UNION ALL SELECT id, tenant_id FROM {env.rec}")
    assert {r[1] for r in rows} == {ME_TENANT} and len(rows) == 2 * len(OWN) + len(OWN_REC)


def test_subqueries_and_ctes(env):
    a = env.acc
    assert env.rows(f"SELECT (SELECT count(*) FROM {a})") == [(len(OWN),)]
    assert env.rows(f"SELECT 1 WHERE EXISTS (SELECT 1 FROM {a} WHERE tenant_id = 'globex')") == []
    assert env.ids(f"SELECT g FROM generate_series(1, 18) g WHERE g IN (SELECT id FROM {a})") == OWN
    assert env.ids(f"WITH x AS (SELECT * FROM {a}) SELECT id FROM x") == OWN
    assert env.ids(f"WITH x AS MATERIALIZED (SELECT * FROM {a} WHERE tenant_id <> 'acme') SELECT id FROM x") == []
    assert env.ids(f"SELECT s.id FROM (SELECT * FROM (SELECT * FROM {a}) i) s") == OWN
    assert env.rows(f"SELECT g, (SELECT body FROM {a} WHERE id = g) FROM generate_series(1, 18) g "
                    f"WHERE (SELECT tenant_id FROM {a} WHERE id = g) IS NOT NULL ORDER BY g") == \
        [(r[0], r[3]) for r in SEED_ROWS if r[1] == ME_TENANT]
    assert env.rows(f"SELECT count(*) FROM generate_series(1, 18) g "
                    f"HAVING count(*) > (SELECT count(*) FROM {a})") == [(18,)]
    assert env.rows(f"SELECT ARRAY(SELECT id FROM {a} ORDER BY id)") == [(OWN,)]
    assert env.rows(f"SELECT id FROM {a} ORDER BY (SELECT max(id) FROM {env.rec} r WHERE r.tenant_id <> 'acme') "
                    "NULLS FIRST, id LIMIT 1") == [(OWN[0],)]


def test_recursive_cte(env):
    a = env.acc
    assert env.ids(f"WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < 20) "
                   f"SELECT x.id FROM r JOIN {a} x ON x.id = r.n") == OWN
    # The recursive term walks the table itself, one row at a time.
    assert env.ids(f"WITH RECURSIVE r(id) AS (SELECT 0 UNION ALL "
                   f"SELECT (SELECT min(t.id) FROM {a} t WHERE t.id > r.id) FROM r WHERE r.id IS NOT NULL) "
                   "SELECT id FROM r WHERE id > 0") == OWN
    assert env.ids(f"WITH RECURSIVE r AS (SELECT id, tenant_id FROM {a} WHERE id = 2 UNION "
                   f"SELECT t.id, t.tenant_id FROM {a} t JOIN r ON t.id = r.id + 1) SELECT id FROM r") == []


def test_lateral(env):
    a = env.acc
    assert env.ids(f"SELECT x.id FROM generate_series(1, 18) g, LATERAL (SELECT id FROM {a} WHERE id = g) x") == OWN
    assert env.ids(f"SELECT x.id FROM generate_series(1, 18) g "
                   f"LEFT JOIN LATERAL (SELECT * FROM {a} WHERE id = g) x ON true") == OWN
    assert env.ids(f"SELECT DISTINCT y.id FROM {a} x, LATERAL (SELECT * FROM {env.rec} r WHERE r.id > x.id - 100) y") \
        == OWN_REC


def test_outer_joins_null_supplying_side(env):
    a = env.acc
    rows = env.rows(f"SELECT g, x.id, x.tenant_id FROM generate_series(1, 18) g LEFT JOIN {a} x ON x.id = g")
    assert len(rows) == 18  # a WHERE on the null-supplying side would drop the other tenants' g values
    assert sorted(r[1] for r in rows if r[1] is not None) == OWN
    assert {r[2] for r in rows} == {ME_TENANT, None}
    rows = env.rows(f"SELECT x.id, g FROM {a} x RIGHT JOIN generate_series(1, 18) g ON x.id = g")
    assert len(rows) == 18 and sorted(r[0] for r in rows if r[0] is not None) == OWN
    rows = env.rows(f"SELECT x.id, g FROM {a} x FULL JOIN generate_series(1, 18) g ON x.id = g")
    assert len(rows) == 18 and sorted(r[0] for r in rows if r[0] is not None) == OWN
    rows = env.rows(f"SELECT x.id, y.id FROM {a} x FULL JOIN {env.rec} y ON x.id = y.id")
    assert {r[0] for r in rows} - {None} == set(OWN) and {r[1] for r in rows} - {None} == set(OWN_REC)


def test_self_join_and_alias_confusion(env):
    a, r = env.acc, env.rec
    assert env.rows(f"SELECT x.id, y.id FROM {a} x JOIN {a} y ON x.id <> y.id WHERE y.tenant_id = 'globex'") == []
    assert env.rows(f"SELECT {a}.id FROM {a}, {a} AS o WHERE o.tenant_id = 'initech'") == []
    # A table aliased with the other table's name is still scoped by its own policy.
    assert env.ids(f"SELECT {a}.id FROM {r} AS {a}") == OWN_REC
    assert env.ids(f"SELECT {r}.id FROM {a} AS {r}") == OWN


def test_cte_shadowing_table_name(env):
    a = env.acc
    assert env.ids(f"WITH {a} AS (SELECT * FROM {a}) SELECT id FROM {a}") == OWN
    assert env.rows(f"WITH {a} AS (SELECT 99 AS id) SELECT id FROM {a}") == [(99,)]
    # A CTE's name only hides the table inside its own query level, not in siblings.
    rows = env.rows(f"SELECT s1.id, s2.id FROM (WITH {a} AS (SELECT 99 AS id) SELECT id FROM {a}) s1, "
                    f"(SELECT id FROM {a}) s2")
    assert sorted(r[1] for r in rows) == OWN and {r[0] for r in rows} == {99}
    # Schema-qualified names never refer to a CTE.
    assert env.ids(f"WITH {a} AS (SELECT 99 AS id) SELECT id FROM public.{a}") == OWN
    assert env.ids(f"WITH x AS (SELECT 1) SELECT id FROM (WITH y AS (SELECT * FROM {a}) SELECT id FROM y) z") == OWN


def test_qualified_and_quoted_names(env, pg):
    a, u = env.acc, env.acc.upper()
    for ref in (f"public.{a}", f'"{a}"', f'"public"."{a}"', f"{u}", f"PUBLIC.{u}", f"{harness.DATABASE}.public.{a}",
                f'"{harness.DATABASE}"."public"."{a}"', f"ONLY {a}", f"{a} *"):
        assert env.ids(f"SELECT id FROM {ref}") == OWN, ref
    # A quoted upper-case name is a different table, not listed: denied.
    quoted = f'"{u}"'
    pg.psql(f"CREATE TABLE {quoted} (id int, tenant_id text); INSERT INTO {quoted} VALUES (1, 'globex');"
            f"GRANT ALL ON {quoted} TO PUBLIC")
    try:
        env.refused(f"SELECT * FROM {quoted}")
        env.refused(f'SELECT * FROM public.{quoted}')
    finally:
        pg.psql(f"DROP TABLE {quoted}")
    # A view over a scoped table is a different relation: unlisted, denied.
    view = f"{a}_v"
    pg.psql(f"CREATE VIEW {view} AS SELECT * FROM {a}; GRANT ALL ON {view} TO PUBLIC")
    try:
        env.refused(f"SELECT * FROM {view}")
    finally:
        pg.psql(f"DROP VIEW {view}")


def test_three_part_name_other_database(env):
    for ref in (f"postgres.public.{env.acc}", f"template1.public.{env.acc}", f"other.public.{env.sec}"):
        env.refused(f"SELECT * FROM {ref}", codes={"42501", "0A000"})


def test_session_state_and_identity_changes(env):
    for sql in ("SELECT set_config('tenantgate.tenant', 'globex', false)",
                "SELECT pg_catalog.set_config('role', 'admin', false)",
                "SELECT \"set_config\"('search_path', 'pg_temp', false)",
                f"SELECT id FROM {env.acc} WHERE set_config('tenantgate.user', '7', true) IS NOT NULL",
                "SET tenantgate.tenant = 'globex'", "SET SESSION tenantgate.tenant TO 'globex'",
                "SET LOCAL tenantgate.tenant = 'globex'", "SET tenantgate.\"user\" = '7'", "RESET tenantgate.tenant",
                "SET ROLE admin", "SET ROLE postgres", "SET SESSION AUTHORIZATION postgres",
                "SET search_path = pg_temp, public",
                "SET search_path TO DEFAULT", "SET LOCAL search_path = other",
                "SET client_encoding = 'SJIS'", "SET NAMES 'BIG5'", "SET row_security = off",
                "SET session_replication_role = replica"):
        env.refused(sql)
    # RESET ALL may run (the identity is not a server setting) but must not change who we are.
    try:
        env.execute("RESET ALL")
    except psycopg2.Error as e:
        assert sqlstate(e) == "42501", e
    assert env.rows("SELECT current_user, current_setting('search_path')") == [
        # tenantgate pins the backend's search_path to the policy's at login.
        (harness.SERVICE_USER, 'public')]
    assert env.ids(f"SELECT id FROM {env.acc}") == OWN


def test_search_path_in_startup_options(env, pg):
    """A startup search_path that makes an unqualified name resolve elsewhere than the policy assumes."""
    schema = f"atk_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.{env.shr} (id int, tenant_id text, owner_id int, "
            f"body text); INSERT INTO {schema}.{env.shr} VALUES (1000, 'globex', 7, 'private-copy');"
            f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC; GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO PUBLIC")
    try:
        opts = f"-c search_path={schema},public -c tenantgate.tenant=acme -c tenantgate.user=42"
        try:
            conn = psycopg2.connect(env.proxy.dsn(options=opts))
        except psycopg2.OperationalError as e:
            assert "28000" in str(e) or "search_path" in str(e), e
            return
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT body FROM {env.shr}")
                bodies = {r[0] for r in cur.fetchall()}
                assert "private-copy" not in bodies
                cur.execute(f"SELECT id FROM {env.acc}")
                assert sorted(r[0] for r in cur.fetchall()) == OWN
        finally:
            conn.close()
    finally:
        pg.psql(f"DROP SCHEMA {schema} CASCADE")


def test_denied_functions(env):
    for sql in ("SELECT pg_read_file('/etc/passwd')", "SELECT pg_catalog.pg_read_file('/etc/hostname', 0, 10)",
                "SELECT PG_READ_BINARY_FILE('/etc/passwd')", "SELECT * FROM pg_ls_dir('.')",
                "SELECT lo_import('/etc/passwd')", "SELECT lo_export(1, '/tmp/x')", "SELECT lo_get(1)",
                "SELECT pg_notify('chan', 'x')", "SELECT 1 WHERE pg_read_file('/etc/passwd') IS NOT NULL",
                f"SELECT id FROM {env.acc} ORDER BY length(pg_read_file('/etc/passwd'))"):
        env.refused(sql)


def test_functions_reaching_other_sessions(env):
    """Every tenant's backend session runs as the same service role: signalling one reaches other tenants."""
    victim = pg2(env.proxy, tenant="globex", user_id=7)
    try:
        with victim.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        for sql in (f"SELECT pg_terminate_backend({pid})", f"SELECT pg_cancel_backend({pid})",
                    "SELECT pg_terminate_backend(pid) FROM pg_locks",
                    "SELECT pg_stat_get_backend_activity(1)"):
            env.refused(sql)
        with victim.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        victim.close()


def test_dblink(env):
    # Refused by tenantgate itself (42501), not by PostgreSQL for a missing function (42883).
    env.refused(f"SELECT * FROM dblink('dbname={harness.DATABASE}', 'select id from {env.acc}') AS t(id int)")
    env.refused("SELECT dblink_connect('dbname=postgres')")
    env.refused(f"SELECT * FROM public.dblink_exec('dbname={harness.DATABASE}', 'delete from {env.acc}')")


def test_query_to_xml_and_friends(env):
    # PostgreSQL would run the inner text unscoped: tenantgate must refuse.
    for sql in (f"SELECT query_to_xml('select * from {env.acc}', true, false, '')",
                f"SELECT query_to_xml_and_xmlschema('select * from {env.acc}', true, false, '')",
                f"SELECT table_to_xml('{env.acc}', true, false, '')",
                f"SELECT table_to_xml('public.{env.sec}'::regclass, true, false, '')",
                "SELECT schema_to_xml('public', true, false, '')",
                "SELECT database_to_xml(true, false, '')",
                "SELECT cursor_to_xml('c', 10, true, false, '')",
                f"SELECT xmlelement(name x, query_to_xml('select * from {env.acc}', true, false, ''))"):
        env.refused(sql)


def test_statistics_catalogs(env):
    for sql in (f"SELECT * FROM pg_stats WHERE tablename = '{env.acc}'",
                f"SELECT most_common_vals FROM pg_catalog.pg_stats WHERE tablename = '{env.acc}'",
                "SELECT * FROM pg_statistic", "SELECT stavalues1 FROM pg_catalog.pg_statistic",
                "SELECT query FROM pg_stat_activity", "SELECT * FROM pg_catalog.pg_stat_activity",
                "SELECT * FROM pg_stat_statements", "SELECT * FROM pg_stats_ext",
                "SELECT * FROM pg_stat_get_activity(NULL)"):
        env.refused(sql)
    # Catalogs that do not hold row values stay readable for drivers and ORMs.
    assert env.rows(f"SELECT relname FROM pg_class WHERE relname = '{env.acc}'") == [(env.acc,)]
    assert env.rows("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                    "ORDER BY ordinal_position", (env.acc,)) == [("id",), ("tenant_id",), ("owner_id",), ("body",)]


def test_do_create_function_call(env):
    env.refused(f"DO $$ BEGIN PERFORM * FROM {env.acc}; END $$")
    env.refused("DO LANGUAGE plpgsql 'BEGIN NULL; END'")
    env.refused(f"CREATE FUNCTION atk_leak() RETURNS SETOF {env.acc} LANGUAGE sql AS 'SELECT * FROM {env.acc}'")
    env.refused("CREATE OR REPLACE PROCEDURE atk_p() LANGUAGE sql AS 'SELECT 1'")
    env.refused("CALL atk_p()")
    assert admin_rows(env.pg, "SELECT count(*) FROM pg_proc WHERE proname IN ('atk_leak', 'atk_p')") == [(0,)]


def test_merge(env):
    before = env.table_state(env.acc)
    env.refused(f"MERGE INTO {env.acc} t USING (SELECT {GLOBEX[0]} AS id) s ON t.id = s.id "
                "WHEN MATCHED THEN UPDATE SET body = 'merged' WHEN NOT MATCHED THEN DO NOTHING")
    env.refused(f"MERGE INTO {env.acc} t USING {env.acc} s ON t.id = s.id WHEN MATCHED THEN DELETE")
    assert env.table_state(env.acc) == before


def test_select_into_and_create_table_as(env):
    env.refused(f"SELECT * INTO atk_leak_into FROM {env.acc}")
    env.refused(f"SELECT * INTO TEMP atk_leak_tmp FROM {env.acc}")
    env.refused(f"CREATE TABLE atk_leak_ctas AS SELECT * FROM {env.acc}")
    env.refused(f"CREATE TEMP TABLE atk_leak_ctas2 AS SELECT * FROM {env.sec}")
    env.refused(f"CREATE MATERIALIZED VIEW atk_leak_mv AS SELECT * FROM {env.acc}")
    assert admin_rows(env.pg, "SELECT count(*) FROM pg_class WHERE relname LIKE 'atk_leak%%'") == [(0,)]


def test_copy_to_program_and_file(env, tmp_path):
    target = tmp_path / "leak.txt"
    for sql in (f"COPY (SELECT * FROM {env.acc}) TO PROGRAM 'cat > {target}'",
                f"COPY {env.acc} TO '{target}'", f"COPY (SELECT 1) TO '{target}'",
                f"COPY {env.acc} FROM '/etc/passwd'", f"COPY {env.acc} FROM PROGRAM 'id'"):
        env.refused(sql)
    assert not target.exists()


def test_truncate_and_ddl(env):
    before = env.table_state(env.acc)
    for sql in (f"TRUNCATE {env.acc}", f"TRUNCATE TABLE {env.sec}", f"DROP TABLE {env.acc}",
                f"ALTER TABLE {env.acc} DROP COLUMN tenant_id", f"ALTER TABLE {env.acc} RENAME TO atk_moved",
                f"CREATE INDEX atk_idx ON {env.acc} (body)", f"CREATE VIEW atk_v AS SELECT * FROM {env.acc}",
                f"GRANT ALL ON {env.acc} TO PUBLIC", f"REVOKE ALL ON {env.acc} FROM PUBLIC",
                f"COMMENT ON TABLE {env.acc} IS 'x'", "CREATE TEMP TABLE atk_tmp (x int)",
                f"CREATE RULE atk_r AS ON SELECT TO {env.acc} DO INSTEAD SELECT * FROM {env.sec}",
                "CREATE EXTENSION dblink", "VACUUM", f"ANALYZE {env.acc}",
                f"CLUSTER {env.acc}", f"LOCK TABLE {env.acc} IN ACCESS EXCLUSIVE MODE"):
        env.refused(sql)
    assert env.table_state(env.acc) == before


def test_listen_notify(env):
    for sql in ("LISTEN atk_chan", "NOTIFY atk_chan, 'x'", "UNLISTEN *"):
        env.refused(sql)


def test_alter_system(env):
    env.refused("ALTER SYSTEM SET log_statement = 'all'")
    env.refused("ALTER SYSTEM RESET ALL")
    env.refused("ALTER ROLE app SET search_path = x")
    env.refused(f"ALTER DATABASE {harness.DATABASE} SET row_security = off")


def test_standard_conforming_strings_off(env):
    for sql in ("SET standard_conforming_strings = off", "SET SESSION standard_conforming_strings TO 'off'",
                "SET standard_conforming_strings = false", "SET LOCAL standard_conforming_strings = 0",
                "SELECT set_config('standard_conforming_strings', 'off', false)"):
        env.refused(sql)
    assert env.rows("SHOW standard_conforming_strings") == [("on",)]
    # A startup option turning it off would change how tenantgate's literals read.
    try:
        conn = psycopg2.connect(env.proxy.dsn(options="-c standard_conforming_strings=off "
                                                      "-c tenantgate.tenant=acme -c tenantgate.user=42"))
    except psycopg2.OperationalError:
        return
    try:
        with conn.cursor() as cur:
            # Read with standard strings, 'x\\' ends before the comma and the rest is one $$ string;
            # read with backslash escapes, the string runs on and a second statement follows.
            smuggle = f"SELECT 'x\\' , $$' ; SELECT body FROM {env.sec}; -- $$"
            try:
                cur.execute(smuggle)
                got = [r[0] for r in cur.fetchall()]
            except psycopg2.Error:
                got = []
                conn.rollback()
            assert not any(str(v).startswith("row-") for v in got), got
            cur.execute("SHOW standard_conforming_strings")
            assert cur.fetchone() == ("on",)
    finally:
        conn.close()


def test_cursor_on_other_tenant(env):
    env.conn.autocommit = False
    try:
        env.execute(f"DECLARE c1 CURSOR FOR SELECT id FROM {env.acc} WHERE tenant_id = 'globex'")
        assert env.rows("FETCH ALL FROM c1") == []
        env.execute(f"DECLARE c2 SCROLL CURSOR WITH HOLD FOR SELECT id, tenant_id FROM {env.acc} ORDER BY id")
        env.conn.commit()
        rows = env.rows("FETCH ALL FROM c2")
        assert [r[0] for r in rows] == OWN
        assert env.rows("FETCH ABSOLUTE 1 FROM c2") == [(OWN[0], ME_TENANT)]
        env.execute("CLOSE c2")
        env.conn.commit()
        env.refused(f"DECLARE c3 CURSOR FOR SELECT * FROM {env.sec}")
    finally:
        env.conn.rollback()
        env.conn.autocommit = True


def test_update_moving_row_to_other_tenant(env):
    before = env.table_state(env.acc)
    mine = OWN[0]
    for sql in (f"UPDATE {env.acc} SET tenant_id = 'globex' WHERE id = {mine}",
                f"UPDATE {env.acc} SET tenant_id = lower('GLOBEX') WHERE id = {mine}",
                f"UPDATE {env.acc} SET (tenant_id, body) = ('globex', 'moved') WHERE id = {mine}",
                f"UPDATE {env.acc} SET tenant_id = (SELECT 'globex') WHERE id = {mine}",
                f"UPDATE {env.acc} SET tenant_id = body WHERE id = {mine}",
                f"UPDATE {env.rec} SET owner_id = 7 WHERE id = {OWN_REC[0]}"):
        env.refused(sql, codes={"42501", "0A000"})
    with pytest.raises(psycopg2.Error) as e:
        env.execute(f"UPDATE {env.acc} SET tenant_id = %s WHERE id = %s", ("globex", mine))
    assert sqlstate(e.value) == "42501"
    assert env.table_state(env.acc) == before
    # Assigning the caller's own value is allowed and harmless.
    assert env.execute(f"UPDATE {env.acc} SET tenant_id = 'acme' WHERE id = {mine}") == 1


def test_insert_select_from_other_tenant(env):
    before = env.table_state(env.acc)
    assert env.execute(f"INSERT INTO {env.acc} (id, owner_id, body) "
                       f"SELECT id + 100, owner_id, body FROM {env.acc} WHERE tenant_id = 'globex'") == 0
    assert env.execute(f"INSERT INTO {env.acc} (id, owner_id, body) SELECT id + 200, owner_id, body "
                       f"FROM {env.rec} r WHERE r.tenant_id <> 'acme' OR r.owner_id <> 42") == 0
    # The tenant column taken from the source is refused (RLS would check each row; tenantgate refuses).
    env.refused(f"INSERT INTO {env.acc} (id, tenant_id, owner_id, body) "
                f"SELECT id + 300, tenant_id, owner_id, body FROM {env.acc}", codes={"42501", "0A000"})
    env.refused(f"INSERT INTO {env.acc} SELECT id + 400, 'globex', owner_id, body FROM {env.acc}",
                codes={"42501", "0A000"})
    env.refused(f"INSERT INTO {env.acc} (id, owner_id, body) SELECT id + 500, 1, v FROM {env.sec}")
    assert env.table_state(env.acc) == before


def test_insert_on_conflict_other_tenants_row(env):
    before = env.table_state(env.acc)
    victim = GLOBEX[0]
    for sql in (f"INSERT INTO {env.acc} (id, owner_id, body) VALUES ({victim}, 42, 'x') "
                "ON CONFLICT (id) DO UPDATE SET body = 'pwned' RETURNING *",
                f"INSERT INTO {env.acc} (id, owner_id, body) VALUES ({victim}, 42, 'x') "
                "ON CONFLICT (id) DO UPDATE SET tenant_id = 'acme' RETURNING *",
                f"INSERT INTO {env.acc} (id, owner_id, body) VALUES ({victim}, 42, 'x') "
                f"ON CONFLICT (id) DO UPDATE SET body = {env.acc}.body || excluded.body RETURNING *",
                f"INSERT INTO {env.acc} (id, owner_id, body) VALUES ({victim}, 42, 'x') "
                f"ON CONFLICT ON CONSTRAINT {env.acc}_pkey DO UPDATE SET body = 'pwned' RETURNING *"):
        try:
            with env.conn.cursor() as cur:
                cur.execute(sql)
                returned = cur.fetchall()
            assert returned == [], (sql, returned)   # nothing of the other tenant's row comes back
        except psycopg2.Error as e:
            assert sqlstate(e) in ("42501", "0A000", "23505"), (sql, e)
    assert env.table_state(env.acc) == before


def test_delete_using(env):
    before = env.table_state(env.acc)
    mine = OWN[0]
    # If USING were unscoped, this would delete our own row whenever another tenant's row exists: an oracle.
    assert env.execute(f"DELETE FROM {env.acc} USING {env.acc} o WHERE o.tenant_id = 'globex' "
                       f"AND {env.acc}.id = {mine}") == 0
    assert env.rows(f"DELETE FROM {env.acc} USING {env.rec} o WHERE o.tenant_id <> 'acme' "
                    f"AND {env.acc}.id = {mine} RETURNING o.*") == []
    assert env.execute(f"DELETE FROM {env.acc} USING generate_series(1, 18) g WHERE {env.acc}.id = g "
                       "AND g IN (2, 3)") == 0
    env.refused(f"DELETE FROM {env.acc} USING {env.sec} s WHERE s.id = {env.acc}.id")
    assert env.table_state(env.acc) == before


def test_update_from(env):
    before = env.table_state(env.acc)
    mine, victim = OWN[0], GLOBEX[0]
    assert env.execute(f"UPDATE {env.acc} SET body = o.body FROM {env.acc} o "
                       f"WHERE o.id = {victim} AND {env.acc}.id = {mine}") == 0
    assert env.rows(f"UPDATE {env.acc} SET body = {env.acc}.body FROM {env.rec} o WHERE o.owner_id = 7 "
                    f"AND {env.acc}.id = {mine} RETURNING o.body") == []
    assert env.execute(f"UPDATE {env.acc} SET body = 'pwned' FROM generate_series(1, 18) g "
                       f"WHERE {env.acc}.id = g AND g = {victim}") == 0
    env.refused(f"UPDATE {env.acc} SET body = s.v FROM {env.sec} s WHERE s.id = {env.acc}.id")
    assert env.table_state(env.acc) == before


def test_data_modifying_ctes(env):
    before = env.table_state(env.acc)
    victim = GLOBEX[0]
    assert env.rows(f"WITH d AS (DELETE FROM {env.acc} WHERE id = {victim} RETURNING *) SELECT * FROM d") == []
    assert env.rows(f"WITH u AS (UPDATE {env.acc} SET body = body WHERE tenant_id <> 'acme' RETURNING id) "
                    "SELECT count(*) FROM u") == [(0,)]
    env.refused(f"WITH i AS (INSERT INTO {env.acc} (id, tenant_id, owner_id, body) "
                f"VALUES (900, 'globex', 1, 'x') RETURNING id) SELECT * FROM i")
    env.refused(f"WITH s AS (SELECT * FROM {env.sec}) INSERT INTO {env.acc} (id, owner_id, body) "
                "SELECT id + 900, 1, v FROM s")
    assert env.table_state(env.acc) == before
    rows = env.rows(f"WITH u AS (UPDATE {env.acc} SET body = body || '' RETURNING id, tenant_id) SELECT * FROM u")
    assert sorted(r[0] for r in rows) == OWN and {r[1] for r in rows} == {ME_TENANT}


# --------------------------------------------------------------------------
# Identity injection in start-up options.

HOSTILE_TENANTS = [
    "x'; DROP TABLE {acc}; --",
    "a\\' OR '1'='1",
    "back\\slash\\",
    "$$ OR true $$",
    "a$b$ OR 1=1 --",
    "ünï-çødé-日本-🙂",
    "quote\"double",
    "tab\tnew",
]


def _escape_option_value(v: str) -> str:
    # libpq's options are split on unescaped whitespace; a backslash escapes the next character.
    return "".join("\\" + c if c in " \\\t" else c for c in v)


@pytest.mark.parametrize("index", range(len(HOSTILE_TENANTS)))
def test_identity_injection_in_startup_options(env, index):
    tenant = HOSTILE_TENANTS[index].format(acc=env.acc)
    ident = 1000 + index
    admin_rows(env.pg, f"INSERT INTO {env.acc} VALUES (%s, %s, 42, 'hostile') RETURNING id", (ident, tenant))
    opts = f"-c tenantgate.tenant={_escape_option_value(tenant)} -c tenantgate.user=42"
    try:
        conn = psycopg2.connect(env.proxy.dsn(options=opts))
    except psycopg2.OperationalError as e:
        assert "28000" in str(e) or "tenant" in str(e), e
        return
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, tenant_id FROM {env.acc} ORDER BY id")
            assert cur.fetchall() == [(ident, tenant)]   # used literally: exactly the row with that value
            cur.execute(f"INSERT INTO {env.acc} (id, owner_id, body) VALUES (%s, 42, 'filled') RETURNING tenant_id",
                        (ident + 100,))
            assert cur.fetchone() == (tenant,)
    finally:
        conn.close()
    assert admin_rows(env.pg, f"SELECT count(*) FROM {env.acc} WHERE id <= 18") == [(18,)]


def test_identity_nul_byte_in_startup_packet(env):
    """A NUL inside the options value ends it early: "ac" must never become "acme"."""
    body = struct.pack("!I", harness.PROTOCOL_3)
    body += b"user\0app\0database\0" + harness.DATABASE.encode() + b"\0"
    body += b"options\0-c tenantgate.tenant=ac\0me -c tenantgate.user=42\0\0"
    with env.proxy.raw() as raw:
        send, skipped = raw.send, []

        def send_after_startup(data: bytes) -> None:
            # RawConn.startup() sends its own start-up packet first: ours replaces it.
            if not skipped:
                skipped.append(data)
                send(struct.pack("!I", len(body) + 4) + body)
            else:
                send(data)

        raw.send = send_after_startup
        try:
            res = raw.startup({"user": "app"}, password=harness.PRINCIPALS["app"]["password"])
        except ConnectionError:
            return
        raw.send = send
        if not res.ok:
            assert res.error["C"] in ("28000", "08P01"), res.error
            return
        r = raw.simple_query(f"SELECT id, tenant_id FROM {env.acc}")
        assert r["rows"] == [], r


@pytest.mark.parametrize("params", [
    {"options": "-c tenantgate.tenant=acme -c tenantgate.tenant=initech -c tenantgate.user=42"},
    {"options": "-c tenantgate.tenant=acme -c tenantgate.user=42", "tenantgate.tenant": "initech"},
    {"tenantgate.tenant": "acme", "options": "-c tenantgate.tenant=initech -c tenantgate.user=42"},
    {"options": "-c tenantgate.tenant=acme -c tenantgate.user=42 -ctenantgate.tenant=initech"},
    {"options": "--tenantgate.tenant=initech -c tenantgate.tenant=acme -c tenantgate.user=42"},
], ids=["options-twice", "param-and-options", "options-and-param", "short-c", "double-dash"])
def test_identity_given_twice(env, params):
    """The "limited" principal may claim acme and globex only: a second spelling must not smuggle initech."""
    with env.proxy.raw() as raw:
        res = raw.startup({"user": "limited", "database": harness.DATABASE, **params},
                          password=harness.PRINCIPALS["limited"]["password"])
        if not res.ok:
            assert res.error["C"] == "28000", res.error
            return
        r = raw.simple_query(f"SELECT DISTINCT tenant_id FROM {env.acc}")
        assert r["errors"] == [], r
        seen = {row[0] for row in r["rows"]}
        assert len(seen) == 1 and seen <= {"acme", "globex"}, seen
        r = raw.simple_query(f"INSERT INTO {env.acc} (id, owner_id) VALUES (1200, 42) RETURNING tenant_id")
        assert r["errors"] == [] and {row[0] for row in r["rows"]} == seen, r
    assert admin_rows(env.pg, f"SELECT count(*) FROM {env.acc} WHERE tenant_id = 'initech' AND id > 18") == [(0,)]


def test_standard_conforming_strings_with_backslash_tenant(env):
    tenant = "a\\"
    admin_rows(env.pg, f"INSERT INTO {env.acc} VALUES (1100, %s, 42, 'bs') RETURNING id", (tenant,))
    opts = (f"-c standard_conforming_strings=off -c tenantgate.tenant={_escape_option_value(tenant)} "
            "-c tenantgate.user=42")
    try:
        conn = psycopg2.connect(env.proxy.dsn(options=opts))
    except psycopg2.OperationalError:
        return
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, tenant_id FROM {env.acc} ORDER BY id")
            assert cur.fetchall() == [(1100, tenant)]
    except psycopg2.Error as e:
        assert sqlstate(e) in ("42501", "0A000"), e
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Size and depth.


def test_deep_and_large_statements(env):
    deep = "SELECT " + "(" * 20000 + "1" + ")" * 20000
    env.refused(deep, codes={"54001"})
    chain = "SELECT 1" + " + 1" * 100000
    env.refused(chain, codes={"54001"})
    nested = "SELECT * FROM " + "(SELECT * FROM " * 3000 + env.acc + ") s" * 3000
    env.refused(nested, codes={"54001"})
    big = f"SELECT id FROM {env.acc} WHERE body IN (" + ",".join(["'" + "x" * 60 + "'"] * 20000) + ")"
    env.refused(big, codes={"54001"})
    assert proxy_serves(env.proxy)
    # The same through the extended protocol.
    with env.proxy.raw() as raw:
        assert raw.startup(env.proxy.startup_params(), password=harness.PRINCIPALS["app"]["password"]).ok
        raw.send(parse_msg(deep) + bind_msg() + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [k for k, _ in msgs] == [b"E", b"Z"] and errors(msgs)[0]["C"] == "54001"
    assert env.ids(f"SELECT id FROM {env.acc}") == OWN


def test_thousands_of_union_arms(env):
    arms = 5000
    sql = " UNION ALL ".join(f"SELECT id FROM {env.acc} WHERE id = {1 + i % 18}" for i in range(arms))
    try:
        got = env.rows(sql)
    except psycopg2.Error as e:
        assert sqlstate(e) == "54001", e
    else:
        assert sorted(r[0] for r in got) == sorted(1 + i % 18 for i in range(arms) if 1 + i % 18 in OWN)
    assert proxy_serves(env.proxy)


# --------------------------------------------------------------------------
# Smuggling.


def test_multi_statement_smuggling(env):
    with env.proxy.raw() as raw:
        assert raw.startup(env.proxy.startup_params(), password=harness.PRINCIPALS["app"]["password"]).ok
        r = raw.simple_query(f"SELECT 1; SELECT id FROM {env.acc} ORDER BY id")
        assert r["errors"] == [] and [x[0] for x in r["rows"]] == ["1"] + [str(i) for i in OWN]
        r = raw.simple_query(f"SELECT 1; SELECT * FROM {env.sec}")
        assert r["kinds"] == [b"E", b"Z"] and r["errors"][0]["C"] == "42501"
        r = raw.simple_query(f"SELECT 1 /* ; */; SELECT * FROM {env.sec} -- ;")
        assert r["kinds"] == [b"E", b"Z"] and r["errors"][0]["C"] == "42501"
        # The extended protocol allows one statement per Parse.
        raw.send(parse_msg(f"SELECT 1; SELECT * FROM {env.sec}") + bind_msg() + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [k for k, _ in msgs] == [b"E", b"Z"] and errors(msgs)[0]["C"] in ("42501", "42601")
        raw.send(parse_msg(f"SELECT 1; SELECT id FROM {env.acc}") + bind_msg() + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [k for k, _ in msgs] == [b"E", b"Z"]


def test_comment_and_dollar_quote_tricks(env):
    a, s = env.acc, env.sec
    assert env.ids(f"SELECT id FROM/**/{a}/**/WHERE/**/true") == OWN
    assert env.ids(f"SELECT id FROM {a} -- ; SELECT * FROM {s}\n") == OWN
    assert env.ids(f"SELECT id FROM {a} /* nested /* ; SELECT * FROM {s} */ still comment */") == OWN
    assert env.rows(f"SELECT $$; SELECT * FROM {s}; $$") == [(f"; SELECT * FROM {s}; ",)]
    assert env.rows(f"SELECT $q$ $$ ; DELETE FROM {a}; $$ $q$") == [(f" $$ ; DELETE FROM {a}; $$ ",)]
    assert env.rows(f"SELECT E'\\'; SELECT * FROM {s}; --'") == [(f"'; SELECT * FROM {s}; --",)]
    assert env.rows("SELECT U&'\\0027; SELECT 1'") == [("'; SELECT 1",)]
    assert env.ids(f'SELECT id FROM "{a}"--\n') == OWN
    env.refused(f"SELECT 1 --\n; SELECT * FROM {s}")
    env.refused(f"SELECT 1 /* */ ; /* */ SELECT * FROM {s}")
    env.refused(f"SELECT $a$ $a$ ; SELECT * FROM {s}")
    env.refused(f"SELECT * FROM U&\"{s[:3]}\\0{ord(s[3]):03x}{s[4:]}\"")
    assert admin_rows(env.pg, f"SELECT count(*) FROM {a}") == [(len(SEED_ROWS),)]


@pytest.mark.parametrize("how", ["startup-parameter", "options"])
def test_sjis_client_encoding_smuggling(env, how):
    """In Shift-JIS 0x95 0x5c is one character (U+8868); read as UTF-8, 0x5c is a backslash escaping the quote.

    0xc2 0x95 is also valid UTF-8 (U+0095), so a UTF-8 reading sees one harmless string literal while
    the server, reading Shift-JIS, sees the literal end and a second statement begin.
    """
    params = env.proxy.startup_params()
    if how == "options":
        params["options"] = "-c client_encoding=SJIS " + params["options"]
    else:
        params["client_encoding"] = "SJIS"
    with env.proxy.raw() as raw:
        res = raw.startup(params, password=harness.PRINCIPALS["app"]["password"])
        if not res.ok:
            assert res.error["C"] in ("28000", "42501", "08P01"), res.error
            return
        for lead in (b"\x95", b"\xc2\x95"):
            raw.send(harness.message(b"Q", b"SELECT E'" + lead + b"\\'; SELECT body FROM " + env.sec.encode()
                                     + b" --'\0"))
            out = read_until_ready(raw)
            rows = [p for k, p in out if k == b"D"]
            assert all(b"row-" not in p for p in rows), out  # no row of the denied table came back


def test_rls_differences_are_refusals(env):
    """Where RLS would run a statement and check rows, tenantgate refuses the construct."""
    env.refused(f"INSERT INTO {env.acc} (id, tenant_id, owner_id, body) VALUES (950, lower('ACME'), 42, 'x')",
                codes={"42501", "0A000"})
    env.refused(f"INSERT INTO {env.acc} (id, tenant_id, owner_id, body) VALUES (951, 'ac' || 'me', 42, 'x')",
                codes={"42501", "0A000"})
    env.refused(f"UPDATE {env.acc} SET tenant_id = current_setting('tenantgate.tenant', true) WHERE id = {OWN[0]}",
                codes={"42501", "0A000"})
    env.refused(f"SELECT id FROM {env.acc} TABLESAMPLE SYSTEM (100)", codes={"42501", "0A000"})
    assert admin_rows(env.pg, f"SELECT count(*) FROM {env.acc} WHERE id >= 950") == [(0,)]
