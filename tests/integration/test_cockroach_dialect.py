"""CockroachDB SQL through tenantgate with backend.dialect = "cockroachdb".

The backend here is PostgreSQL 15 (no CockroachDB server can be installed on
the test machines), so these tests run the forms PostgreSQL also runs:

  - UPSERT, which tenantgate forwards as INSERT ... ON CONFLICT (key) DO
    UPDATE ... WHERE <scope>: a new key, the caller's own key, and another
    tenant's key, each compared with row-level security (the oracle: the
    same INSERT ... ON CONFLICT on an RLS twin table, as a role without
    BYPASSRLS);
  - the SAVEPOINT cockroach_restart retry loop of cockroach-go and
    sqlalchemy-cockroachdb, with a 40001 from the server passed through
    untouched;
  - CockroachDB statements tenantgate decides itself: refused ones (42501
    from tenantgate, nothing reaches the server) and allowed ones (forwarded
    as written: PostgreSQL then answers with its own error, which shows they
    were not refused by tenantgate).

With TENANTGATE_TEST_BACKEND=cockroach and a `cockroach` binary on the PATH,
the tests at the end of this file (test_on_cockroachdb_*) also start an
insecure single CockroachDB node and run the forms PostgreSQL cannot run
(AS OF SYSTEM TIME, index and join hints, DELETE ... LIMIT, RETURNING
NOTHING, BEGIN PRIORITY) and UPSERT through tenantgate against it. Without
that variable they are skipped: no CockroachDB binary can be installed on
the machines these tests were written on, so that path has never run.

Tables: cr_u (id primary key, tenant_id, name), scope tenant, key ["id"];
cr_u_twin, the same rows with FORCE ROW LEVEL SECURITY.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest

import harness
from enforcement_support import admin_rows, pg2, policy_text, sqlstate, start_with_policy

TWIN_ROLE, TWIN_PASSWORD = "tg_cr_twin", "twin-secret"

SETUP = f"""
DROP TABLE IF EXISTS cr_u, cr_u_twin;
CREATE TABLE cr_u (id int PRIMARY KEY, tenant_id text NOT NULL, name text);
CREATE TABLE cr_u_twin (id int PRIMARY KEY, tenant_id text NOT NULL, name text);
INSERT INTO cr_u VALUES (1, 'acme', 'a1'), (2, 'globex', 'g2'), (3, 'acme', 'a3');
INSERT INTO cr_u_twin SELECT * FROM cr_u;
GRANT ALL ON cr_u TO PUBLIC;
ALTER TABLE cr_u_twin ENABLE ROW LEVEL SECURITY;
ALTER TABLE cr_u_twin FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON cr_u_twin USING (tenant_id = current_setting('app.tenant'))
  WITH CHECK (tenant_id = current_setting('app.tenant'));
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{TWIN_ROLE}') THEN
    CREATE ROLE {TWIN_ROLE} LOGIN PASSWORD '{TWIN_PASSWORD}' NOBYPASSRLS;
  END IF;
END $$;
GRANT ALL ON cr_u_twin TO {TWIN_ROLE};
CREATE OR REPLACE FUNCTION cr_retry_once(k text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM cr_attempts WHERE key = k) THEN
    RAISE EXCEPTION 'restart transaction' USING ERRCODE = '40001';
  END IF;
  RETURN 1;
END $$;
DROP TABLE IF EXISTS cr_attempts;
CREATE TABLE cr_attempts (key text PRIMARY KEY);
GRANT ALL ON cr_attempts TO PUBLIC;
"""

POLICY = policy_text({"public.cr_u": {"scope": "tenant", "key": ["id"]},
                      "public.cr_attempts": "shared"},
                     extra='\n[functions."public.cr_retry_once"]\nreads = "shared"\n')


@pytest.fixture
def crdb_proxy(pg, start_proxy):
    pg.psql(SETUP)
    return start_with_policy(start_proxy, POLICY, {"backend": {"dialect": "cockroachdb"}})


def rows(pg, table: str) -> list[tuple]:
    return admin_rows(pg, f"SELECT id, tenant_id, name FROM {table} ORDER BY id")


def twin_run(pg, sql: str, tenant: str = "acme") -> tuple[int, str | None]:
    """Runs `sql` on the RLS twin as a role without BYPASSRLS: (rowcount, sqlstate)."""
    dsn = harness.conninfo(host=pg.host, port=pg.port, user=TWIN_ROLE, password=TWIN_PASSWORD,
                           dbname=harness.DATABASE)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('app.tenant', %s, false)", (tenant,))
            try:
                cur.execute(sql)
                return cur.rowcount, None
            except psycopg2.Error as e:
                return -1, e.pgcode
    finally:
        conn.close()


def proxy_run(proxy, sql: str) -> tuple[int, str | None]:
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(sql)
                return cur.rowcount, None
            except psycopg2.Error as e:
                return -1, sqlstate(e)
    finally:
        conn.close()


def test_upsert_new_key_inserts_with_the_callers_tenant(crdb_proxy, pg):
    assert proxy_run(crdb_proxy, "UPSERT INTO cr_u (id, name) VALUES (10, 'new')") == (1, None)
    assert twin_run(pg, "INSERT INTO cr_u_twin (id, tenant_id, name) VALUES (10, 'acme', 'new') "
                        "ON CONFLICT (id) DO UPDATE SET name = excluded.name") == (1, None)
    assert rows(pg, "cr_u") == rows(pg, "cr_u_twin")
    assert (10, "acme", "new") in rows(pg, "cr_u")


def test_upsert_own_key_updates_like_rls(crdb_proxy, pg):
    assert proxy_run(crdb_proxy, "UPSERT INTO cr_u (id, name) VALUES (1, 'changed')") == (1, None)
    assert twin_run(pg, "INSERT INTO cr_u_twin (id, tenant_id, name) VALUES (1, 'acme', 'changed') "
                        "ON CONFLICT (id) DO UPDATE SET name = excluded.name") == (1, None)
    assert rows(pg, "cr_u") == rows(pg, "cr_u_twin")
    assert (1, "acme", "changed") in rows(pg, "cr_u")


def test_upsert_of_another_tenants_key_does_nothing(crdb_proxy, pg):
    before = rows(pg, "cr_u")
    # tenantgate: the update part is scoped, so the conflicting row of globex
    # is neither changed nor replaced, and nothing is inserted (INSERT 0 0).
    assert proxy_run(crdb_proxy, "UPSERT INTO cr_u (id, name) VALUES (2, 'stolen')") == (0, None)
    assert rows(pg, "cr_u") == before
    # Row-level security raises an error instead (a listed difference); the
    # other tenant's row is untouched either way.
    count, state = twin_run(pg, "INSERT INTO cr_u_twin (id, tenant_id, name) VALUES (2, 'acme', "
                                "'stolen') ON CONFLICT (id) DO UPDATE SET name = excluded.name")
    assert (count, state) == (-1, "42501")
    assert rows(pg, "cr_u_twin") == before


def test_upsert_naming_another_tenant_is_refused(crdb_proxy, pg):
    before = rows(pg, "cr_u")
    assert proxy_run(crdb_proxy,
                     "UPSERT INTO cr_u (id, tenant_id, name) VALUES (11, 'globex', 'x')") == (-1, "42501")
    assert rows(pg, "cr_u") == before


def test_upsert_mixed_rows_touch_only_the_callers(crdb_proxy, pg):
    sql = "UPSERT INTO cr_u (id, name) VALUES (1, 'm1'), (2, 'm2'), (12, 'm12')"
    twin = ("INSERT INTO cr_u_twin (id, tenant_id, name) VALUES (1, 'acme', 'm1'), (12, 'acme', 'm12') "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name")
    assert proxy_run(crdb_proxy, sql) == (2, None)
    assert twin_run(pg, twin) == (2, None)
    assert rows(pg, "cr_u") == rows(pg, "cr_u_twin")
    assert (2, "globex", "g2") in rows(pg, "cr_u")


def test_upsert_with_a_bound_tenant_is_checked_at_bind(crdb_proxy, pg):
    import psycopg
    with psycopg.connect(crdb_proxy.dsn(), autocommit=True) as conn:
        conn.execute("UPSERT INTO cr_u (id, tenant_id, name) VALUES (%s, %s, %s)", (20, "acme", "ok"))
        with pytest.raises(psycopg.Error) as err:
            conn.execute("UPSERT INTO cr_u (id, tenant_id, name) VALUES (%s, %s, %s)", (21, "globex", "no"))
        assert sqlstate(err.value) == "42501"
    ids = [r[0] for r in rows(pg, "cr_u")]
    assert 20 in ids and 21 not in ids


def test_savepoint_retry_loop_passes_40001_through(crdb_proxy, pg):
    conn = pg2(crdb_proxy, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("SAVEPOINT cockroach_restart")
            attempts = 0
            while True:
                attempts += 1
                try:
                    cur.execute("SELECT cr_retry_once('k1')")
                    cur.execute("UPSERT INTO cr_u (id, name) VALUES (30, 'retried')")
                    cur.execute("RELEASE SAVEPOINT cockroach_restart")
                    break
                except psycopg2.Error as e:
                    assert sqlstate(e) == "40001", e
                    cur.execute("ROLLBACK TO SAVEPOINT cockroach_restart")
                    admin_rows(pg, "INSERT INTO cr_attempts VALUES ('k1') ON CONFLICT DO NOTHING")
                    assert attempts < 3
        conn.commit()
    finally:
        conn.close()
    assert attempts == 2
    assert (30, "acme", "retried") in rows(pg, "cr_u")


@pytest.mark.parametrize("sql", [
    "IMPORT INTO cr_u (id, name) CSV DATA ('nodelocal://1/x.csv')",
    "BACKUP DATABASE appdb INTO 'nodelocal://1/b'",
    "CREATE CHANGEFEED FOR TABLE cr_u INTO 'kafka://k:9092'",
    "SET CLUSTER SETTING sql.defaults.autocommit_before_ddl.enabled = false",
    "SHOW JOBS",
    "SHOW SESSIONS",
    "SELECT * FROM [SHOW TABLES]",
    "SELECT crdb_internal.force_panic('x')",
    "UPSERT INTO cr_attempts (key) VALUES ('x')",
])
def test_cockroachdb_features_refused_by_tenantgate(crdb_proxy, sql):
    conn = pg2(crdb_proxy)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.Error) as err:
                cur.execute(sql)
            assert sqlstate(err.value) == "42501", err.value
            # The connection stays usable.
            cur.execute("SELECT name FROM cr_u WHERE id = 2")
            assert cur.fetchall() == []
    finally:
        conn.close()


@pytest.mark.parametrize("sql,forwarded", [
    ("SHOW crdb_version", "SHOW crdb_version"),
    ("SHOW TRANSACTION STATUS", "SHOW TRANSACTION STATUS"),
    ("BEGIN PRIORITY HIGH", "BEGIN PRIORITY HIGH"),
    ("SHOW TABLES", "SHOW TABLES"),
    ("SELECT * FROM cr_u@cr_u_pkey WHERE id = 1",
     "SELECT * FROM (SELECT * FROM public.cr_u@cr_u_pkey WHERE cr_u.tenant_id = 'acme') cr_u WHERE id = 1"),
    ("SELECT * FROM cr_u AS OF SYSTEM TIME '-1s'",
     "SELECT * FROM (SELECT * FROM public.cr_u WHERE cr_u.tenant_id = 'acme') cr_u AS OF SYSTEM TIME '-1s'"),
    ("DELETE FROM cr_u WHERE name = 'a1' LIMIT 1",
     "DELETE FROM public.cr_u WHERE name = 'a1' AND cr_u.tenant_id = 'acme' LIMIT 1"),
])
def test_cockroachdb_forms_are_forwarded_as_cockroachdb_text(crdb_proxy, pg, sql, forwarded):
    """PostgreSQL cannot run these; its log shows the text tenantgate
    forwarded (the CockroachDB syntax put back into the rewritten statement)
    and its own error reaches the client."""
    before = rows(pg, "cr_u")
    log_start = pg.log_path.stat().st_size
    conn = pg2(crdb_proxy)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.Error) as err:
                cur.execute(sql)
            assert sqlstate(err.value) in ("42704", "42601"), err.value
    finally:
        conn.close()

    def logged_since() -> str:
        with open(pg.log_path, "rb") as f:
            f.seek(log_start)
            return f.read().decode(errors="replace")

    harness.wait_until(lambda: f"STATEMENT:  {forwarded}" in logged_since(), 5,
                       f"PostgreSQL to log {forwarded!r}")
    assert rows(pg, "cr_u") == before


def test_auto_dialect_reads_a_postgresql_backend_as_postgresql(pg, start_proxy):
    """backend.dialect = "auto": PostgreSQL sends no crdb_version at login, so
    the session is rewritten for PostgreSQL: reads are scoped, and
    CockroachDB syntax is refused by tenantgate instead of being carried."""
    pg.psql(SETUP)
    proxy = start_with_policy(start_proxy, POLICY, {"backend": {"dialect": "auto"}})
    before = rows(pg, "cr_u")
    log_start = pg.log_path.stat().st_size
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM cr_u ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == [1, 3]
            with pytest.raises(psycopg2.Error) as err:
                cur.execute("UPSERT INTO cr_u (id, name) VALUES (2, 'x')")
            assert sqlstate(err.value) == "42601"
            cur.execute("INSERT INTO cr_u (id, name) VALUES (40, 'pg') ON CONFLICT (id) DO NOTHING")
    finally:
        conn.close()
    with open(pg.log_path, "rb") as f:
        f.seek(log_start)
        assert b"UPSERT" not in f.read()
    assert rows(pg, "cr_u") == before + [(40, "acme", "pg")]


# --------------------------------------------------------------------------
# Against a real CockroachDB (TENANTGATE_TEST_BACKEND=cockroach).

COCKROACH = os.environ.get("TENANTGATE_TEST_BACKEND") == "cockroach"


class CockroachServer:
    """An insecure single CockroachDB node on a free loopback port (no passwords)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tg-it-crdb-"))
        self.host = "127.0.0.1"
        self.port = harness.free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CockroachServer":
        log = open(self.dir / "cockroach.log", "wb")
        self.proc = subprocess.Popen(
            ["cockroach", "start-single-node", "--insecure", f"--store={self.dir / 'store'}",
             f"--listen-addr={self.host}:{self.port}", "--http-addr=127.0.0.1:0"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        harness.wait_until(lambda: harness.port_accepts(self.host, self.port), 60, "CockroachDB to listen")
        harness.wait_until(self._ready, 60, "CockroachDB to accept SQL")
        self.sql(f"CREATE DATABASE IF NOT EXISTS {harness.DATABASE}", db="defaultdb")
        self.sql(f"CREATE USER IF NOT EXISTS {harness.SERVICE_USER}", db="defaultdb")
        self.sql(f"GRANT ALL ON DATABASE {harness.DATABASE} TO {harness.SERVICE_USER}", db="defaultdb")
        return self

    def _ready(self) -> bool:
        try:
            self.sql("SELECT 1", db="defaultdb")
            return True
        except psycopg2.Error:
            return False

    def dsn(self, db: str = harness.DATABASE) -> str:
        return f"host={self.host} port={self.port} user=root dbname={db} sslmode=disable"

    def sql(self, statement: str, db: str = harness.DATABASE) -> list[tuple]:
        conn = psycopg2.connect(self.dsn(db))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def crdb():
    if not COCKROACH:
        pytest.skip("TENANTGATE_TEST_BACKEND=cockroach is not set")
    if shutil.which("cockroach") is None:
        pytest.fail("TENANTGATE_TEST_BACKEND=cockroach but no cockroach binary on the PATH")
    server = CockroachServer().start()
    yield server
    server.stop()


@pytest.fixture
def crdb_tables(crdb):
    crdb.sql("DROP TABLE IF EXISTS cr_u")
    crdb.sql("CREATE TABLE cr_u (id INT PRIMARY KEY, tenant_id STRING NOT NULL, name STRING, "
             "INDEX cr_u_name_idx (name))")
    crdb.sql("INSERT INTO cr_u VALUES (1, 'acme', 'a1'), (2, 'globex', 'g2'), (3, 'acme', 'a3')")
    crdb.sql(f"GRANT ALL ON TABLE cr_u TO {harness.SERVICE_USER}")
    time.sleep(0.5)  # AS OF SYSTEM TIME '-100ms' must see the table
    return crdb


@pytest.fixture
def crdb_proxy_on_cockroach(crdb_tables, tmp_path):
    proxy = harness.Proxy(crdb_tables, tmp_path / "proxy", {"backend": {"dialect": "cockroachdb"}})
    (proxy.dir / "policy.toml").write_text(policy_text({"public.cr_u": {"scope": "tenant", "key": ["id"]}}))
    proxy.start()
    yield proxy
    proxy.stop()


def crdb_rows(crdb) -> list[tuple]:
    return crdb.sql("SELECT id, tenant_id, name FROM cr_u ORDER BY id")


@pytest.mark.parametrize("sql,ids", [
    ("SELECT id FROM cr_u@cr_u_name_idx ORDER BY id", [1, 3]),
    ("SELECT id FROM cr_u@{FORCE_INDEX=cr_u_name_idx} ORDER BY id", [1, 3]),
    ("SELECT id FROM cr_u AS OF SYSTEM TIME '-100ms' ORDER BY id", [1, 3]),
    ("SELECT u.id FROM cr_u u INNER HASH JOIN cr_u v ON u.id = v.id ORDER BY u.id", [1, 3]),
])
def test_on_cockroachdb_reads_stay_scoped(crdb_proxy_on_cockroach, sql, ids):
    conn = pg2(crdb_proxy_on_cockroach)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            assert [r[0] for r in cur.fetchall()] == ids
    finally:
        conn.close()


def test_on_cockroachdb_writes_stay_scoped(crdb_proxy_on_cockroach, crdb_tables):
    conn = pg2(crdb_proxy_on_cockroach)
    try:
        with conn.cursor() as cur:
            cur.execute("UPSERT INTO cr_u (id, name) VALUES (2, 'stolen')")
            assert cur.rowcount == 0
            cur.execute("UPSERT INTO cr_u (id, name) VALUES (1, 'changed'), (10, 'new') RETURNING NOTHING")
            cur.execute("DELETE FROM cr_u WHERE name LIKE '%' ORDER BY id LIMIT 1")
            assert cur.rowcount == 1
            cur.execute("BEGIN PRIORITY HIGH")
            cur.execute("UPDATE cr_u SET name = 'p' WHERE id > 0 LIMIT 5")
            cur.execute("COMMIT")
    finally:
        conn.close()
    assert crdb_rows(crdb_tables) == [(2, "globex", "g2"), (3, "acme", "p"), (10, "acme", "p")]
