"""Function rules over the wire: every way a statement makes PostgreSQL call a function.

Runs in its own database (FN_DB) so that the app functions, operator, domain and
cast created here do not reach the catalog snapshots of other tests.

Tables (seeded with enforcement_support.SEED_ROWS, tenants acme/globex/initech):
  rec  scope tenant_owner (owner_id)
  sec  scope deny
  shr  scope shared
The caller is tenant "acme", user 42.

App objects (created once per server):
  records_of(text)      SQL, inlinable (STABLE, one SELECT): SETOF rec
  sql_count(text)       SQL, not inlinable (VOLATILE, aggregate over rec)
  plpgsql_bodies(text)  plpgsql, RETURN QUERY over rec
  definer_bodies(text)  SQL, SECURITY DEFINER
  full_body(shr)        SQL over a row of shr reading rec, for the x.f notation
  leak_eq(int, int)     implements the operator ===
  app_check(text)       in the CHECK of the domain checked_text
  int_to_pair(int)      the function of the cast int -> pair
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import psycopg2
import pytest

import harness
from enforcement_support import (ME_TENANT, ME_USER, admin_rows, create_seeded_table, ensure_database, ids_for,
                                 pg2, policy_text, proxy_serves, sqlstate, start_with_policy)

FN_DB = "fnrules"
TSV = harness.REPO_ROOT / "policy" / "builtin_functions.tsv"
APP_FUNCTIONS = ["records_of", "sql_count", "plpgsql_bodies", "definer_bodies", "full_body", "leak_eq",
                 "app_check", "int_to_pair"]


def builtin_table() -> dict[tuple[str, str], str]:
    out = {}
    for line in TSV.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        schema, name, action, _reason = line.split("\t")
        out[(schema, name)] = action
    return out


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Outcome:
    """The result of one statement: "ok" or the SQLSTATE, with the message for failures."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code, self.message = code, message

    def __repr__(self) -> str:
        return self.code if self.code == "ok" else f"{self.code} {self.message[:160]!r}"


def run(conn, sql: str) -> Outcome:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            if cur.description:
                cur.fetchall()
        return Outcome("ok")
    except psycopg2.Error as e:
        if not conn.autocommit:
            conn.rollback()
        return Outcome(sqlstate(e) or "?", str(e).strip())


@pytest.fixture(scope="module")
def schema(pg):
    ensure_database(pg, FN_DB)
    rec = create_seeded_table(pg, "fn_rec", db=FN_DB)
    sec = create_seeded_table(pg, "fn_sec", db=FN_DB)
    shr = create_seeded_table(pg, "fn_shr", db=FN_DB)
    pg.psql(f"""
        DROP FUNCTION IF EXISTS {', '.join(APP_FUNCTIONS)} CASCADE;
        DROP DOMAIN IF EXISTS checked_text CASCADE;
        DROP TYPE IF EXISTS pair CASCADE;
        CREATE FUNCTION records_of(t text) RETURNS SETOF {rec} LANGUAGE sql STABLE
            AS $$ SELECT * FROM {rec} WHERE tenant_id = t $$;
        CREATE FUNCTION sql_count(t text) RETURNS bigint LANGUAGE sql VOLATILE
            AS $$ SELECT count(*) FROM {rec} WHERE tenant_id = t $$;
        CREATE FUNCTION plpgsql_bodies(t text) RETURNS SETOF text LANGUAGE plpgsql
            AS $$ BEGIN RETURN QUERY SELECT body FROM {rec} WHERE tenant_id = t; END $$;
        CREATE FUNCTION definer_bodies(t text) RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
            AS $$ SELECT body FROM {rec} WHERE tenant_id = t $$;
        CREATE FUNCTION full_body(r {shr}) RETURNS text LANGUAGE sql
            AS $$ SELECT string_agg(body, ',') FROM {rec} WHERE tenant_id <> r.tenant_id $$;
        CREATE FUNCTION leak_eq(a int, b int) RETURNS bool LANGUAGE sql
            AS $$ SELECT a = b OR EXISTS (SELECT 1 FROM {rec} WHERE tenant_id = 'globex') $$;
        CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = leak_eq);
        CREATE FUNCTION app_check(v text) RETURNS bool LANGUAGE sql
            AS $$ SELECT v IS NOT NULL OR (SELECT count(*) FROM {rec}) > 0 $$;
        CREATE DOMAIN checked_text AS text CHECK (app_check(VALUE));
        CREATE TYPE pair AS (a int, b int);
        CREATE FUNCTION int_to_pair(i int) RETURNS pair LANGUAGE sql AS $$ SELECT ROW(i, i)::pair $$;
        CREATE CAST (int AS pair) WITH FUNCTION int_to_pair(int);
        GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
    """, db=FN_DB)
    yield {"rec": rec, "sec": sec, "shr": shr}
    pg.psql(f"DROP TABLE IF EXISTS {rec}, {sec}, {shr} CASCADE", db=FN_DB)


def policy_for(schema: dict, extra: str = "") -> str:
    return policy_text({schema["rec"]: "tenant_owner", schema["sec"]: "deny", schema["shr"]: "shared"},
                       extra=extra)


def naming_all(reads: str = "rls") -> str:
    return "".join(f'\n[functions."public.{f}"]\nreads = "{reads}"\n' for f in APP_FUNCTIONS)


@pytest.fixture(scope="module")
def proxies(schema, pg, tmp_path_factory):
    """Three proxies on the same server: no app function named, all named, deny_list mode."""
    made = []

    def make(policy: str) -> harness.Proxy:
        p = harness.Proxy(pg, tmp_path_factory.mktemp("fnproxy"), None)
        (p.dir / "policy.toml").write_text(policy)
        made.append(p)
        return p.start()

    try:
        yield {
            "default": make(policy_for(schema)),
            "named": make(policy_for(schema, naming_all())),
            "deny_list": make(policy_for(schema, '\n[functions]\nmode = "deny_list"\n')),
        }
    finally:
        for p in made:
            p.stop()


@pytest.fixture
def conn(proxies):
    c = pg2(proxies["default"], dbname=FN_DB)
    yield c
    c.close()
    assert proxy_serves(proxies["default"])


def direct(pg) -> psycopg2.extensions.connection:
    """The service role straight to PostgreSQL: what the proxy's backend connection can do."""
    c = psycopg2.connect(host=pg.host, port=pg.port, user=harness.SERVICE_USER, password=harness.SERVICE_PASSWORD,
                         dbname=FN_DB)
    c.autocommit = True
    return c


def refused(conn, sql: str) -> str:
    got = run(conn, sql)
    assert got.code == "42501", f"{sql!r}: expected 42501, got {got!r}"
    assert run(conn, "SELECT 1").code == "ok"
    return got.message


# --------------------------------------------------------------------------
# The reproductions of the issue.


def test_ts_stat_in_attribute_notation_over_deny_and_scoped_tables(conn, schema, pg):
    for table in (schema["sec"], schema["rec"]):
        leak = (f"select ('select array_to_tsvector(array[row_to_json(s)::text]) from public.{table} s'::text)"
                ".ts_stat")
        # PostgreSQL itself runs it: the statement is a real leak without tenantgate.
        with direct(pg) as d:
            assert run(d, leak).code == "ok"
        assert "ts_stat" in refused(conn, leak)
        refused(conn, f"select * from ts_stat('select to_tsvector(body) from public.{table}')")


def test_pg_read_file_in_attribute_notation(conn):
    assert "pg_read_file" in refused(conn, "select ('/etc/hostname'::text).pg_read_file")
    refused(conn, "select t.pg_read_file from (select '/etc/hostname'::text) t(x)")


def test_pg_terminate_backend_in_attribute_notation(conn, proxies):
    victim = pg2(proxies["default"], tenant="globex", user_id=7, dbname=FN_DB)
    try:
        with victim.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        refused(conn, f"select ({pid}).pg_terminate_backend")
        refused(conn, f"select ({pid}).pg_cancel_backend")
        refused(conn, f"select p.pg_terminate_backend from (select {pid} as x) p")
        with victim.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        victim.close()


def test_lo_import_in_attribute_notation(conn, pg):
    before = admin_rows(pg, "SELECT count(*) FROM pg_largeobject_metadata", db=FN_DB)
    refused(conn, "select ('/etc/passwd'::text).lo_import")
    refused(conn, "select lo_import('/etc/passwd')")
    assert admin_rows(pg, "SELECT count(*) FROM pg_largeobject_metadata", db=FN_DB) == before


def test_pg_stat_get_live_tuples_in_attribute_notation(conn, schema, pg):
    sql = f"select (oid).pg_stat_get_live_tuples from pg_class where relname = '{schema['rec']}'"
    with direct(pg) as d:
        assert run(d, sql).code == "ok"
    refused(conn, sql)
    # Three names (table.column.function) are refused before the function rules (0A000).
    assert run(conn, "select c.oid.pg_stat_get_live_tuples from pg_class c").code == "0A000"
    refused(conn, f"select oid.pg_stat_get_live_tuples from pg_class")


# --------------------------------------------------------------------------
# Every denied built-in, in both attribute notations, in both modes.


@pytest.mark.parametrize("mode", ["default", "deny_list"])
def test_attribute_notation_on_every_denied_builtin(proxies, mode):
    denied = sorted(name for (schema, name), action in builtin_table().items()
                    if action == "deny" and schema == "pg_catalog")
    assert len(denied) > 250
    c = pg2(proxies[mode], dbname=FN_DB)
    try:
        wrong = []
        for name in denied:
            for sql in (f"select (null::text).{quote(name)}",
                        f"select t.{quote(name)} from (select 1 as a) t",
                        f"select {quote(name)}(null)"):
                got = run(c, sql)
                if got.code != "42501" or "permission denied for function" not in got.message:
                    wrong.append((sql, got))
        assert not wrong, f"{len(wrong)} not refused: {wrong[:20]}"
    finally:
        c.close()


# --------------------------------------------------------------------------
# Every pg_proc function with callable argument types, in ordinary and (one
# argument) attribute notation: each follows its allow or deny entry.


def callable_functions(pg) -> tuple[list[tuple[str, str, list[str]]], int]:
    """(schema, name, argument types) of every function and aggregate of pg_catalog and
    information_schema whose arguments are all of ordinary types, and how many were skipped.

    Skipped: procedures (CALL is refused whatever the function rules say) and functions
    with a pseudo-type argument (internal, cstring, any*, record, trigger, ...), which no
    client value can have, so no call could reach them meaningfully."""
    rows = admin_rows(pg, """
        SELECT n.nspname, p.proname, p.prokind,
               array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, o)
                     ORDER BY o),
               EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) u(t) JOIN pg_type y ON y.oid = u.t
                       WHERE y.typtype = 'p')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('pg_catalog', 'information_schema')
        ORDER BY 1, 2""", db=FN_DB)
    out, skipped = [], 0
    for schema, name, kind, args, pseudo in rows:
        if kind == "p" or pseudo:
            skipped += 1
            continue
        out.append((schema, name, list(args)))
    return out, skipped


def test_every_builtin_follows_its_entry_in_both_notations(proxies, pg):
    table = builtin_table()
    functions, skipped = callable_functions(pg)
    assert len(functions) > 2000, len(functions)
    print(f"{len(functions)} overloads called, {skipped} skipped (procedures or pseudo-type arguments)")
    via = pg2(proxies["default"], dbname=FN_DB)
    d = direct(pg)
    wrong = []
    calls = 0
    try:
        for schema, name, args in functions:
            action = table.get((schema, name))
            assert action in ("allow", "deny"), f"{schema}.{name} is in neither list"
            nulls = ", ".join(f"NULL::{a}" for a in args)
            prefix = "information_schema." if schema == "information_schema" else ""
            statements = [f"SELECT {prefix}{quote(name)}({nulls})"]
            if len(args) == 1 and schema == "pg_catalog":
                statements.append(f"SELECT (NULL::{args[0]}).{quote(name)}")
            for sql in statements:
                calls += 1
                got = run(via, sql)
                if action == "deny":
                    if got.code != "42501":
                        wrong.append((sql, "deny", got))
                else:
                    # Allowed: tenantgate forwards it, so the outcome is PostgreSQL's own.
                    expected = run(d, sql)
                    if got.code != expected.code:
                        wrong.append((sql, "allow", got, expected))
    finally:
        via.close()
        d.close()
    print(f"{calls} calls")
    assert not wrong, f"{len(wrong)} calls did not follow their entry: {wrong[:25]}"


def test_every_server_builtin_is_in_the_list(pg):
    """Fails when the PostgreSQL server in use has a built-in the reviewed list does not cover."""
    table = builtin_table()
    names = admin_rows(pg, """
        SELECT DISTINCT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('pg_catalog', 'information_schema')""", db=FN_DB)
    missing = sorted(f"{s}.{n}" for s, n in names if (s, n) not in table)
    assert not missing, f"built-ins neither allowed nor denied in {TSV}: {missing}"


# --------------------------------------------------------------------------
# App functions: refused unless the policy names them.

APP_CALLS = {
    "sql inlinable, ordinary": "SELECT count(*) FROM records_of('globex')",
    "sql inlinable, attribute": "SELECT (('globex'::text).records_of).id",
    "sql inlinable, qualified in FROM": "SELECT id FROM public.records_of('globex')",
    "sql inlinable, ROWS FROM": "SELECT * FROM ROWS FROM (records_of('globex')) t",
    "sql": "SELECT sql_count('globex')",
    "sql, attribute": "SELECT ('globex'::text).sql_count",
    "plpgsql": "SELECT plpgsql_bodies('globex')",
    "security definer": "SELECT definer_bodies('globex')",
    "security definer, attribute": "SELECT ('globex'::text).definer_bodies",
    "row function, x.f": "SELECT s.full_body FROM {shr} s",
    "row function, (x).f": "SELECT (s).full_body FROM {shr} s",
    "operator": "SELECT 1 === 2",
    "operator, qualified": "SELECT 1 OPERATOR(public.===) 2",
    "operator, ALL (subquery)": "SELECT 1 WHERE 1 === ALL (SELECT 1)",
    "operator, ANY (array)": "SELECT 1 WHERE 1 === ANY (ARRAY[1, 2])",
    "domain check": "SELECT 'x'::checked_text",
    "cast": "SELECT (5::pair).a",
    "function-style cast": "SELECT checked_text('x')",
}


@pytest.mark.parametrize("case", sorted(APP_CALLS))
def test_app_function_refused_unless_named(proxies, schema, case):
    sql = APP_CALLS[case].format(shr=schema["shr"])
    c = pg2(proxies["default"], dbname=FN_DB)
    try:
        message = refused(c, sql)
        assert re.search(r"permission denied for (function|operator|type)", message), message
    finally:
        c.close()
    named = pg2(proxies["named"], dbname=FN_DB)
    try:
        got = run(named, sql)
        assert got.code == "ok", f"{sql!r} with every app function named: {got!r}"
    finally:
        named.close()


def test_app_function_reads_unscoped_which_is_why_it_must_be_named(proxies, schema):
    """What naming a function claims: records_of reads rec without the caller's scope."""
    named = pg2(proxies["named"], dbname=FN_DB)
    try:
        with named.cursor() as cur:
            cur.execute("SELECT id FROM records_of('globex') ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ids_for("globex")
            cur.execute(f"SELECT id FROM {schema['rec']} ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ids_for(ME_TENANT, ME_USER)
    finally:
        named.close()


def test_deny_list_mode_runs_app_functions(proxies):
    c = pg2(proxies["deny_list"], dbname=FN_DB)
    try:
        assert run(c, "SELECT sql_count('globex')").code == "ok"
        assert run(c, "SELECT ('globex'::text).sql_count").code == "ok"
        refused(c, "SELECT ('/etc/hostname'::text).pg_read_file")
    finally:
        c.close()


def test_columns_that_are_not_functions_still_work(conn, schema):
    with conn.cursor() as cur:
        cur.execute(f"SELECT r.id, r.body, (r).tenant_id FROM {schema['rec']} r ORDER BY r.id")
        assert [row[0] for row in cur.fetchall()] == ids_for(ME_TENANT, ME_USER)
        cur.execute("SELECT ('Abc'::text).lower, (s.x).length FROM (SELECT 'ab'::text AS x) s")
        assert cur.fetchall() == [("abc", 2)]


def test_new_app_function_is_seen_by_a_new_connection(proxies, pg):
    name = f"late_{uuid.uuid4().hex[:8]}"
    pg.psql(f"CREATE FUNCTION {name}(t text) RETURNS text LANGUAGE sql AS $$ SELECT t $$;"
            f"GRANT EXECUTE ON FUNCTION {name}(text) TO PUBLIC", db=FN_DB)
    try:
        c = pg2(proxies["default"], dbname=FN_DB)
        try:
            refused(c, f"SELECT ('x'::text).{name}")
            refused(c, f"SELECT t.{name} FROM (SELECT 'x'::text) t(x)")
        finally:
            c.close()
    finally:
        pg.psql(f"DROP FUNCTION {name}(text)", db=FN_DB)


# --------------------------------------------------------------------------
# tenantgate check --dsn


def check_dsn(pg, *extra: str) -> subprocess.CompletedProcess:
    dsn = (f"host={pg.host} port={pg.port} user={harness.SERVICE_USER} password={harness.SERVICE_PASSWORD} "
           f"dbname={FN_DB}")
    return subprocess.run([str(harness.tenantgate_bin()), "check", "--dsn", dsn, *extra], capture_output=True,
                          text=True, timeout=30)


def test_check_dsn_lists_app_functions(schema, pg):
    r = check_dsn(pg)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(re.match(r"public\.records_of\(t text\)  function, stable, language sql, security invoker$", l)
               for l in lines), r.stdout
    assert any(l.startswith("public.plpgsql_bodies(t text)  function, volatile, language plpgsql") for l in lines)
    assert any(l.startswith("public.definer_bodies(t text)") and "SECURITY DEFINER" in l for l in lines)
    assert '# [functions."public.leak_eq"]' in lines


def test_check_dsn_with_the_policy(proxies, pg):
    r = check_dsn(pg, "--config", str(proxies["default"].config_path))
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("public.sql_count(t text)") and l.endswith("policy: not named (refused)")
               for l in r.stdout.splitlines()), r.stdout
    # The "named" policy says reads = "rls" of a SECURITY DEFINER function: a claim that cannot hold.
    r = check_dsn(pg, "--config", str(proxies["named"].config_path))
    assert r.returncode == 1, r.stdout + r.stderr
    problem = [l for l in r.stdout.splitlines() if "PROBLEM" in l]
    assert len(problem) == 1 and problem[0].startswith("public.definer_bodies"), r.stdout


def test_check_dsn_unreachable(tmp_path):
    r = subprocess.run([str(harness.tenantgate_bin()), "check", "--dsn",
                        f"host=127.0.0.1 port={harness.free_port()} connect_timeout=3"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot connect" in r.stderr


def test_session_refused_when_the_catalog_cannot_be_read(proxies, pg):
    """Fail closed: without the snapshot x.f could not be told from a column."""
    db = "fnrules_closed"
    ensure_database(pg, db)
    pg.psql("REVOKE SELECT ON pg_catalog.pg_operator FROM PUBLIC", db=db)
    with pytest.raises(psycopg2.OperationalError) as e:
        pg2(proxies["default"], dbname=db).close()
    assert "could not read the database's functions" in str(e.value)
    assert proxy_serves(proxies["default"])
    # Bypass principals are not rewritten and need no snapshot.
    admin = pg2(proxies["default"], user="admin", dbname=db)
    admin.close()
