"""Error, notice and side-effect channels: a client expression must never run on
another tenant's row.

Each case aims an expression that fails (or signals) on a column value at rows
of other tenants, through tenantgate as acme/42, and compares what the client
sees (rows, or the error's SQLSTATE and message, and every NOTICE) with the
same statement under PostgreSQL row-level security (a copy of the tables with
RLS enabled, read by a role without BYPASSRLS). The comparison runs under several
forced plan shapes (ALTER DATABASE ... SET enable_*; new connections pick
them up) on a small table and on a large indexed one, so that a guard that
only holds for one plan fails here.

A control runs the old construction (the scoped table wrapped, the client's
condition left as it is) directly on PostgreSQL and must leak under at least
one of the shapes: it shows these tests can see the leak they guard against.
"""

from __future__ import annotations

import itertools
import re

import psycopg2
import pytest

import harness
from enforcement_support import ensure_database, pg2, policy_text, start_with_policy

DB = "errchan"
TENANTS = ("acme", "globex", "initech")
ME, ME_USER = "acme", 42
SMALL_ROWS = 18
LARGE_ROWS = 6000
RLS_ROLE = "ec_rls_reader"

# Forced plan shapes: (name, settings).
SHAPES = [
    ("default", {}),
    ("index", {"enable_seqscan": "off", "enable_bitmapscan": "off"}),
    ("bitmap", {"enable_seqscan": "off", "enable_indexscan": "off"}),
    ("seqscan", {"enable_indexscan": "off", "enable_bitmapscan": "off", "enable_indexonlyscan": "off"}),
    ("nestloop", {"enable_hashjoin": "off", "enable_mergejoin": "off"}),
    ("hash-merge", {"enable_nestloop": "off"}),
]


def owner_of(i: int) -> int:
    return ME_USER if i % 2 == 0 else 7


def tenant_of(i: int) -> str:
    return TENANTS[(i - 1) % 3]


def other_ids(limit: int) -> list[int]:
    return [i for i in range(1, limit + 1) if (tenant_of(i), owner_of(i)) != (ME, ME_USER)][:6]


OWN_ID = 4  # acme, owner 42


def _table_sql(schema: str, table: str, rows: int, rls: bool) -> list[str]:
    t = f"{schema}.{table}"
    tenant = "(ARRAY['acme','globex','initech'])[1 + (g - 1) % 3]"
    out = [
        f"CREATE TABLE {t} (id int PRIMARY KEY, tenant_id text NOT NULL, owner_id int NOT NULL, "
        f"body text NOT NULL, amount numeric NOT NULL, born date NOT NULL, doc text NOT NULL, "
        f"tags text[] NOT NULL)",
        f"INSERT INTO {t} SELECT g, {tenant}, CASE WHEN g % 2 = 0 THEN {ME_USER} ELSE 7 END, "
        f"'row-' || g || '-' || {tenant}, g * 1.5, date '2001-01-01' + g, "
        f"'{{\"k\": \"' || {tenant} || g || '\"}}' || CASE WHEN g % 3 = 1 THEN '' ELSE ' trailing-' || g END, "
        f"ARRAY['tag-' || g, {tenant}] FROM generate_series(1, {rows}) g",
        f"CREATE INDEX ON {t} (tenant_id)",
        f"CREATE INDEX ON {t} (body)",
        f"GRANT ALL ON {t} TO PUBLIC",
        f"ANALYZE {t}",
    ]
    if rls:
        out += [f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
                f"CREATE POLICY p ON {t} USING (tenant_id = current_setting('ec.tenant') "
                f"AND owner_id = current_setting('ec.uid')::int)"]
    return out


def _setup(pg: harness.PgServer) -> None:
    """The same tables twice: in public (read through tenantgate, whose service
    login is subject to nothing) and in schema rls (row-level security, read
    by a role without BYPASSRLS with search_path rls)."""
    ensure_database(pg, DB)
    stmts = ["DROP SCHEMA IF EXISTS rls CASCADE",
             "DROP TABLE IF EXISTS ec_small, ec_large, ec_users, ec_log CASCADE",
             f"DROP ROLE IF EXISTS {RLS_ROLE}",
             f"CREATE ROLE {RLS_ROLE} NOLOGIN",
             "CREATE SCHEMA rls",
             f"GRANT USAGE ON SCHEMA rls TO {RLS_ROLE}"]
    for schema, rls in (("public", False), ("rls", True)):
        for table, rows in (("ec_small", SMALL_ROWS), ("ec_large", LARGE_ROWS)):
            stmts += _table_sql(schema, table, rows, rls)
        stmts += [
            f"CREATE TABLE {schema}.ec_users (id int PRIMARY KEY, tenant_id text NOT NULL, email text NOT NULL)",
            f"INSERT INTO {schema}.ec_users SELECT g, (ARRAY['acme','globex','initech'])[1 + (g - 1) % 3], "
            "'u' || g || '@' || (ARRAY['acme','globex','initech'])[1 + (g - 1) % 3] FROM generate_series(1, 18) g",
            f"GRANT ALL ON {schema}.ec_users TO PUBLIC",
        ]
        if rls:
            stmts += ["ALTER TABLE rls.ec_users ENABLE ROW LEVEL SECURITY",
                      "CREATE POLICY p ON rls.ec_users USING (tenant_id = current_setting('ec.tenant'))"]
    stmts += [
        # Functions that already exist in the database and signal by NOTICE, by
        # ERROR or by a side effect, declared cheap so that the planner runs
        # them first.
        "CREATE TABLE ec_log (seen text)",
        "GRANT ALL ON ec_log TO PUBLIC",
        "CREATE OR REPLACE FUNCTION ec_notice(t text) RETURNS bool LANGUAGE plpgsql COST 0.0001 AS "
        "$$ BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$",
        "CREATE OR REPLACE FUNCTION ec_fail(t text) RETURNS bool LANGUAGE plpgsql COST 0.0001 AS "
        "$$ BEGIN IF t NOT LIKE '%acme' THEN RAISE EXCEPTION 'failed on %', t; END IF; RETURN true; END $$",
        "CREATE OR REPLACE FUNCTION ec_record(t text) RETURNS bool LANGUAGE plpgsql COST 0.0001 AS "
        "$$ BEGIN INSERT INTO ec_log VALUES (t); RETURN true; END $$",
    ]
    pg.psql(";\n".join(stmts), db=DB)


def _policy() -> str:
    # The app's functions are named, as an operator who trusts them would:
    # they read no tables, yet still see only the rows they are given.
    functions = "".join(f'\n[functions."public.{f}"]\nreads = "none"\n'
                        for f in ("ec_notice", "ec_fail", "ec_record"))
    return policy_text({
        "ec_small": {"scope": "tenant_owner"},
        "ec_large": {"scope": "tenant_owner"},
        "ec_users": {"scope": "tenant"},
        "ec_log": "shared",
    }, extra=functions)


@pytest.fixture(scope="module")
def env(pg, tmp_path_factory):
    _setup(pg)
    yield pg
    pg.psql(f"ALTER DATABASE {DB} RESET ALL", db="postgres")


@pytest.fixture(params=["postgresql", "cockroachdb"])
def tg(env, start_proxy, request):
    """tenantgate with either construction: CockroachDB's (fences) must be as
    safe, run here on PostgreSQL."""
    proxy = start_with_policy(start_proxy, _policy(), {"backend": {"dialect": request.param}})
    proxy.dialect = request.param
    return proxy


def _set_shape(pg: harness.PgServer, settings: dict) -> None:
    pg.psql(f"ALTER DATABASE {DB} RESET ALL", db="postgres")
    for k, v in settings.items():
        pg.psql(f"ALTER DATABASE {DB} SET {k} = {v}", db="postgres")


class Outcome:
    """What a client sees: rows or an error, and the notices."""

    def __init__(self, rows=None, error=None, notices=()):
        self.rows = rows
        self.error = error
        self.notices = sorted(n.strip() for n in notices)

    def key(self):
        return (self.rows, self.error, self.notices)

    def __repr__(self):
        return f"Outcome(rows={self.rows}, error={self.error}, notices={self.notices})"

    def text(self) -> str:
        return repr(self)


def _run(conn, sql: str) -> Outcome:
    del conn.notices[:]
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
            rows = sorted(map(tuple, cur.fetchall())) if cur.description else None
            conn.commit()
            return Outcome(rows=rows, notices=list(conn.notices))
        except psycopg2.Error as e:
            conn.rollback()
            return Outcome(error=(e.pgcode, e.diag.message_primary), notices=list(conn.notices))


def _proxy_conn(proxy: harness.Proxy):
    conn = pg2(proxy, tenant=ME, user_id=ME_USER, autocommit=False, dbname=DB)
    return conn


def _rls_conn(pg: harness.PgServer):
    conn = psycopg2.connect(pg.admin_dsn(DB))
    with conn.cursor() as cur:
        cur.execute(f"SET ROLE {RLS_ROLE}")
        cur.execute("SET search_path = rls, public")
        cur.execute(f"SET ec.tenant = '{ME}'")
        cur.execute(f"SET ec.uid = '{ME_USER}'")
    conn.commit()
    return conn


def _leaks(outcome: Outcome) -> bool:
    """Whether the outcome shows a value of a row outside acme/42's scope: another
    tenant's name, or a row id of acme's other user (row-7-acme, tag-7, "acme7")."""
    text = outcome.text()
    if any(t in text for t in TENANTS if t != ME):
        return True
    for m in re.finditer(r"(?:row-|tag-|acme)(\d+)", text):
        if owner_of(int(m.group(1))) != ME_USER:
            return True
    return False


def attack_cases(table: str) -> list[tuple[str, str]]:
    """(name, SQL) aimed at rows of other tenants of `table`, plus a few at the caller's own row."""
    cases = []
    rows = SMALL_ROWS if table == "ec_small" else LARGE_ROWS
    for victim in other_ids(rows)[:3] + [OWN_ID]:
        w = f"id = {victim}"
        cases += [
            (f"text-to-int {victim}", f"SELECT id FROM {table} WHERE {w} AND body::int > 0"),
            (f"text-to-numeric {victim}", f"SELECT id FROM {table} WHERE {w} AND body::numeric > 0"),
            (f"to_date {victim}", f"SELECT id FROM {table} WHERE {w} AND to_date(body, 'YYYY') IS NOT NULL"),
            (f"text-to-date {victim}", f"SELECT id FROM {table} WHERE {w} AND body::date IS NOT NULL"),
            (f"division {victim}", f"SELECT id FROM {table} WHERE {w} AND 1 / (id - {victim}) = 0"),
            (f"int overflow {victim}", f"SELECT id FROM {table} WHERE {w} AND id + 2147483647 > 0"),
            (f"numeric overflow {victim}", f"SELECT id FROM {table} WHERE {w} AND (amount * 1e131071)::float8 > 0"),
            (f"regex from column {victim}", f"SELECT id FROM {table} WHERE {w} AND 'x' ~ (body || '(')"),
            (f"json cast {victim}", f"SELECT id FROM {table} WHERE {w} AND doc::json IS NOT NULL"),
            (f"array subscript cast {victim}", f"SELECT id FROM {table} WHERE {w} AND tags[2]::int > 0"),
            (f"chr {victim}", f"SELECT id FROM {table} WHERE {w} AND chr(length(body) * 100000000) <> ''"),
            (f"make_date {victim}", f"SELECT id FROM {table} WHERE {w} AND make_date(2020, length(body), 1) IS NOT NULL"),
            (f"date arithmetic {victim}", f"SELECT id FROM {table} WHERE {w} AND to_char(born, 'YYYY')::int / (extract(day FROM born)::int - extract(day FROM born)::int) > 0"),
            (f"inside CASE {victim}", f"SELECT id FROM {table} WHERE {w} AND CASE WHEN id > 0 THEN body::int ELSE 0 END > 0"),
            (f"inside COALESCE {victim}", f"SELECT id FROM {table} WHERE {w} AND COALESCE(body::int, 0) > 0"),
            (f"inside OR {victim}", f"SELECT id FROM {table} WHERE {w} AND (id < 0 OR body::int > 0)"),
            (f"scalar subquery {victim}", f"SELECT id FROM {table} t WHERE {w} AND (SELECT t.body::int) > 0"),
            (f"exists subquery {victim}", f"SELECT id FROM {table} t WHERE {w} AND EXISTS (SELECT 1 FROM ec_users u WHERE u.id::text = t.body::int::text)"),
            (f"in subquery {victim}", f"SELECT id FROM {table} t WHERE {w} AND t.body::int IN (SELECT id FROM ec_users)"),
            (f"inner join ON {victim}", f"SELECT a.id FROM {table} a JOIN {table} b ON b.id = a.id AND b.body::int > 0 WHERE a.{w}"),
            (f"join to users ON {victim}", f"SELECT a.id FROM {table} a JOIN ec_users u ON u.id = a.id AND u.email::int > 0 WHERE a.{w}"),
            (f"left join ON {victim}", f"SELECT a.id, b.id FROM ec_users a LEFT JOIN {table} b ON b.id = a.id AND b.body::int > 0 WHERE a.id = {victim}"),
            (f"where on outer join {victim}", f"SELECT a.id FROM ec_users a LEFT JOIN {table} b ON b.id = a.id WHERE b.{w} AND b.body::int > 0"),
            (f"having {victim}", f"SELECT body FROM {table} WHERE {w} GROUP BY body HAVING body::int > 0"),
            (f"derived table {victim}", f"SELECT * FROM (SELECT id, body::int AS v FROM {table}) s WHERE s.{w} AND s.v > 0"),
            (f"derived table, outer cast {victim}", f"SELECT * FROM (SELECT id, body FROM {table}) s WHERE s.{w} AND s.body::int > 0"),
            (f"cte {victim}", f"WITH s AS (SELECT * FROM {table}) SELECT id FROM s WHERE {w} AND body::int > 0"),
            (f"lateral {victim}", f"SELECT a.id FROM {table} a, LATERAL (SELECT a.body::int AS v) l WHERE a.{w} AND l.v > 0"),
            (f"lateral where {victim}", f"SELECT a.id FROM {table} a, LATERAL (SELECT 1 AS one WHERE a.body::int > 0) l WHERE a.{w}"),
            (f"aggregate filter {victim}", f"SELECT count(*) FILTER (WHERE body::int > 0) FROM {table} WHERE {w}"),
            (f"window {victim}", f"SELECT sum(id) OVER (ORDER BY body::int) FROM {table} WHERE {w}"),
            (f"notice function {victim}", f"SELECT id FROM {table} WHERE {w} AND ec_notice(body)"),
            (f"error function {victim}", f"SELECT id FROM {table} WHERE {w} AND ec_fail(body)"),
            (f"users email cast {victim}", f"SELECT id FROM ec_users WHERE {w} AND to_date(email, 'YYYY') IS NOT NULL"),
        ]
    # Without a point lookup: every row of the table is a target.
    cases += [
        ("notice function, whole table", f"SELECT id FROM {table} WHERE ec_notice(body)"),
        ("cast, whole table", f"SELECT id FROM {table} WHERE body::int > 0"),
        ("like, whole table", f"SELECT id FROM {table} WHERE ec_notice(body) AND body LIKE '%acme'"),
    ]
    return cases


def _fence_difference(tg, got: Outcome, want: Outcome) -> bool:
    """The CockroachDB construction reads a fenced table or derived table
    whole, so it may refuse (0A000: LATERAL) or fail on one of the caller's
    own rows that RLS never reached. Neither shows another tenant's value
    (_leaks already said so); wrong rows never count as a difference."""
    if tg.dialect != "cockroachdb" or got.error is None:
        return False
    return got.error[0] == "0A000" or (want.error is None and got.notices == want.notices)


def _compare_all(env, tg, table: str) -> list[str]:
    """Runs every case under every shape; returns the disagreements."""
    failures = []
    cases = attack_cases(table)
    for shape, settings in SHAPES:
        _set_shape(env, settings)
        proxy, rls = _proxy_conn(tg), _rls_conn(env)
        try:
            for name, sql in cases:
                got, want = _run(proxy, sql), _run(rls, sql)
                if _leaks(got):
                    failures.append(f"[{shape}] {name}: LEAK {got} for {sql}")
                elif got.key() != want.key() and not _fence_difference(tg, got, want):
                    failures.append(f"[{shape}] {name}: tenantgate {got} but RLS {want} for {sql}")
        finally:
            proxy.close()
            rls.close()
    return failures


@pytest.mark.parametrize("table", ["ec_small", "ec_large"])
def test_error_channel_matches_rls(env, tg, table):
    failures = _compare_all(env, tg, table)
    assert not failures, "\n".join(failures)


def test_side_effect_function_sees_only_own_rows(env, tg):
    for shape, settings in SHAPES:
        _set_shape(env, settings)
        env.psql("TRUNCATE ec_log", db=DB)
        conn = _proxy_conn(tg)
        try:
            out = _run(conn, "SELECT id FROM ec_small WHERE ec_record(body)")
        finally:
            conn.close()
        seen = env.psql("SELECT string_agg(seen, ',' ORDER BY seen) FROM ec_log", db=DB)
        assert out.error is None, (shape, out)
        assert seen and all(s.endswith("-acme") for s in seen.split(",")), (shape, seen)
        own = [i for i in range(1, SMALL_ROWS + 1) if (tenant_of(i), owner_of(i)) == (ME, ME_USER)]
        assert sorted(r[0] for r in out.rows) == own


def test_unguarded_construction_leaks_somewhere(env):
    """Control: the wrap alone, without the guard, leaks under some shape."""
    leaked = []
    for (shape, settings), table in itertools.product(SHAPES, ("ec_small", "ec_large")):
        _set_shape(env, settings)
        conn = psycopg2.connect(harness.PgServer.admin_dsn(env, DB))
        try:
            victim = 2  # globex
            wrapped = (f"(SELECT * FROM {table} WHERE {table}.tenant_id = '{ME}' "
                       f"AND {table}.owner_id = {ME_USER}) {table}")
            out = _run(conn, f"SELECT id FROM {wrapped} WHERE id = {victim} AND ec_notice(body)")
            if _leaks(out):
                leaked.append(shape)
        finally:
            conn.close()
    assert leaked, "the unguarded construction never leaked: the suite could not see a leak"


@pytest.fixture
def tg_pg(env, start_proxy):
    return start_with_policy(start_proxy, _policy(), {"backend": {"dialect": "postgresql"}})


def test_guarded_plans_keep_index_lookups(env, tg_pg):
    """A leakproof point lookup keeps its index; the guard stays in the filter."""
    _set_shape(env, {})
    conn = _proxy_conn(tg_pg)
    try:
        with conn.cursor() as cur:
            cur.execute("EXPLAIN SELECT id FROM ec_large WHERE id = 5 AND body::int > 0")
            plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()
    assert "Index Cond: (id = 5)" in plan, plan
    assert "CASE WHEN" in plan, plan


def test_explain_analyze_is_refused(env, tg_pg):
    """EXPLAIN ANALYZE counts rows the scope removed ("Rows Removed by Filter")."""
    conn = _proxy_conn(tg_pg)
    try:
        out = _run(conn, "EXPLAIN ANALYZE SELECT * FROM ec_small")
        assert out.error and out.error[0] == "42501", out
        out = _run(conn, "EXPLAIN (ANALYZE false) SELECT * FROM ec_small")
        assert out.error is None and "Rows Removed" not in str(out.rows), out
    finally:
        conn.close()
