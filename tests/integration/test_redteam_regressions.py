"""Findings of an adversarial round against the evaluation-order guards, the
prepared-statement checks and the function rules, each kept as a test.

They run in a database of their own: the app operators created here (an `=`
and a `<` of the application's) would change what every other test's
comparisons mean.
"""

from __future__ import annotations


import psycopg2
import pytest

import harness
from enforcement_support import (bind_msg, ensure_database, execute_msg, parse_msg,
                                 pg2, policy_text, read_until_ready, start_with_policy, sync_msg)

DB = "redteam"
ME = "acme"


def _setup(pg: harness.PgServer) -> None:
    ensure_database(pg, DB)
    pg.psql(";\n".join([
        "DROP TABLE IF EXISTS rt_customers, rt_emails, rt_bookings, rt_shared CASCADE",
        "DROP OPERATOR IF EXISTS public.= (text, integer)",
        "DROP OPERATOR IF EXISTS public.< (text, bigint)",
        "DROP OPERATOR IF EXISTS public.<<< (text, text)",
        "CREATE EXTENSION IF NOT EXISTS btree_gist",
        "CREATE TABLE rt_customers (id int PRIMARY KEY, tenant_id text NOT NULL, name text NOT NULL, "
        "secret text NOT NULL)",
        "INSERT INTO rt_customers SELECT g, (ARRAY['acme','globex','initech'])[1 + g % 3], "
        "'cust-' || g, 'secret-' || (ARRAY['acme','globex','initech'])[1 + g % 3] || '-' || g "
        "FROM generate_series(1, 3000) g",
        "CREATE INDEX ON rt_customers (name)",
        "ANALYZE rt_customers",
        "CREATE TABLE rt_emails (id serial PRIMARY KEY, tenant_id text NOT NULL, email text NOT NULL)",
        "INSERT INTO rt_emails (tenant_id, email) VALUES ('acme', 'a@acme'), ('globex', 'g@globex')",
        "CREATE TABLE rt_bookings (id serial PRIMARY KEY, tenant_id text NOT NULL, room int NOT NULL, "
        "during tstzrange NOT NULL, EXCLUDE USING gist (room WITH =, during WITH &&))",
        "INSERT INTO rt_bookings (tenant_id, room, during) VALUES "
        "('globex', 101, tstzrange('2026-05-01 10:00+00', '2026-05-01 12:00+00'))",
        "CREATE TABLE rt_shared (k text NOT NULL)",
        "INSERT INTO rt_shared VALUES ('S0'), ('S1'), ('cust-3')",
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC",
        "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO PUBLIC",
        # Cheap app functions behind operators, named in the policy below.
        "CREATE OR REPLACE FUNCTION noisy_ti(t text, i int) RETURNS bool LANGUAGE plpgsql COST 0.0001 AS "
        "$$ BEGIN RAISE NOTICE 'saw %', t; RETURN false; END $$",
        "CREATE OPERATOR public.= (procedure = noisy_ti, leftarg = text, rightarg = int, restrict = eqsel)",
        "CREATE OR REPLACE FUNCTION failing_lt(t text, i bigint) RETURNS bool LANGUAGE plpgsql "
        "COST 0.0001 AS $$ BEGIN RETURN t::int < i; END $$",
        "CREATE OPERATOR public.< (procedure = failing_lt, leftarg = text, rightarg = bigint, "
        "restrict = scalarltsel)",
        "CREATE OR REPLACE FUNCTION noisy_lt(a text, b text) RETURNS bool LANGUAGE plpgsql COST 0.0001 AS "
        "$$ BEGIN RAISE NOTICE 'lt %', a; RETURN a < b; END $$",
        "CREATE OPERATOR public.<<< (procedure = noisy_lt, leftarg = text, rightarg = text, "
        "restrict = scalarltsel)",
        # A plain function named like a built-in aggregate.
        "CREATE OR REPLACE FUNCTION public.max(t text, i int) RETURNS bool LANGUAGE plpgsql IMMUTABLE "
        "COST 0.0001 AS "
        "$$ BEGIN RAISE NOTICE 'max %', t; RETURN true; END $$",
    ]), db=DB)


def _policy() -> str:
    functions = "".join(f'\n[functions."public.{f}"]\nreads = "none"\n'
                        for f in ("noisy_ti", "failing_lt", "noisy_lt", "max"))
    return policy_text({"rt_customers": "tenant", "rt_emails": "tenant", "rt_bookings": "tenant",
                        "rt_shared": "shared"},
                       extra=functions)


@pytest.fixture(scope="module")
def env(pg):
    _setup(pg)
    return pg


@pytest.fixture
def tg(env, start_proxy):
    return start_with_policy(start_proxy, _policy())


def _conn(proxy):
    return pg2(proxy, tenant=ME, user_id="1", dbname=DB)


def _outcome(conn, sql):
    """(rows or None, (sqlstate, message, detail) or None, notices)."""
    del conn.notices[:]
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else None
            return rows, None, list(conn.notices)
        except psycopg2.Error as e:
            return None, (e.pgcode, e.diag.message_primary, e.diag.message_detail), list(conn.notices)


def _once(proxy, sql):
    """_outcome on a fresh connection of acme, closed afterwards."""
    conn = _conn(proxy)
    try:
        return _outcome(conn, sql)
    finally:
        conn.close()


def _other_tenant_values(text: str) -> list[str]:
    return [t for t in ("globex", "initech") if t in text]


# F2: an app operator spelled like a comparison is not leakproof.
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM rt_customers WHERE secret = 5",
    "SELECT count(*) FROM rt_customers WHERE secret IN (5, 6)",
    "SELECT count(*) FROM rt_customers WHERE secret IS DISTINCT FROM 5",
    "SELECT count(*) FROM rt_customers WHERE secret = ANY (ARRAY[5])",
    "SELECT count(*) FROM rt_customers WHERE NULLIF(secret, 5) IS NULL",
    "SELECT count(*) FROM rt_customers WHERE id = 2 AND secret < 5::bigint",
    "DELETE FROM rt_customers WHERE id = 2 AND secret = 5",
    "UPDATE rt_customers SET name = 'x' WHERE id = 2 AND secret < 5::bigint",
])
def test_app_comparison_operator_runs_only_on_own_rows(tg, sql):
    rows, error, notices = _once(tg, sql)
    assert not _other_tenant_values(repr((rows, error, notices))), (sql, rows, error, notices[:5])
    # It did run on the caller's own rows (the test can see a leak).
    if "id = 2" not in sql:
        assert any("acme" in n for n in notices) or (error and "acme" in repr(error)), (sql, notices[:3], error)


# F3: a plain app function named like a built-in aggregate is not an aggregate.
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM (SELECT secret FROM rt_customers GROUP BY secret HAVING max(secret, 1)) s",
    "SELECT count(*) FROM (SELECT max(secret, 1) AS m FROM rt_customers) s WHERE s.m",
])
def test_app_function_named_like_an_aggregate(tg, sql):
    rows, error, notices = _once(tg, sql)
    assert not _other_tenant_values(repr((rows, error, notices))), (sql, error, notices[:5])
    assert error is None and any("acme" in n for n in notices), (sql, error, notices[:3])


# F4: the planner would run an app operator on every tenant's statistics.
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM (SELECT name FROM rt_customers) s WHERE s.name <<< 'zzzz'",
    "EXPLAIN SELECT count(*) FROM (SELECT secret FROM rt_customers) s WHERE s.secret <<< 'zzzz'",
    "SELECT count(*) FROM (SELECT name FROM rt_customers) a JOIN (SELECT name FROM rt_customers) b "
    "ON a.name <<< b.name",
])
def test_app_operator_on_derived_table_is_refused(tg, sql):
    rows, error, notices = _once(tg, sql)
    assert error is not None and error[0] == "0A000", (sql, rows, error)
    assert not notices, notices[:5]


def test_app_operator_on_a_table_is_guarded_also_from_the_planner(tg):
    rows, error, notices = _once(tg, "EXPLAIN SELECT count(*) FROM rt_customers WHERE secret <<< 'zzzz'")
    assert error is None and not notices, (error, notices[:5])


# F5: an exclusion violation's DETAIL names the other tenant's booking.
def test_exclusion_violation_detail_is_redacted(tg):
    rows, error, notices = _once(tg, "INSERT INTO rt_bookings (room, during) VALUES "
                  "(101, tstzrange('2026-05-01 00:00+00', '2026-05-02 00:00+00'))")
    assert error is not None and error[0] == "23P01", error
    assert error[2] == "Key conflicts with existing key.", error


# F1: PostgreSQL truncates statement names to 63 bytes.
def _raw(tg):
    raw = tg.raw()
    result = raw.startup(tg.startup_params(tenant=ME, user_id="1") | {"database": DB},
                         password=harness.PRINCIPALS["app"]["password"])
    assert result.ok, result
    return raw


def test_long_statement_names_are_refused(tg, env):
    long63, long64 = "a" * 63, "a" * 63 + "Z"
    conn = _conn(tg)
    try:
        # In SQL the parser truncates the name as PostgreSQL does (the two agree).
        rows, error, _ = _outcome(conn, f"PREPARE {long63}(text, text) AS SELECT $1, $2")
        assert error is None, error
    finally:
        conn.close()
    raw = _raw(tg)
    try:
        # The protocol does not truncate for tenantgate: Close under a 64-byte
        # name (which would close the 63-byte one) ends the connection.
        raw.send(harness.message(b"C", b"S" + long64.encode() + b"\0") + sync_msg())
        assert raw.recv_msg()[0] == b"E"
        raw.close()
        raw = _raw(tg)
        # A Parse under a 64-byte name of a statement with a checked parameter.
        raw.send(parse_msg("INSERT INTO rt_emails (tenant_id, email) VALUES ($1, $2)", name=long64)
                 + sync_msg())
        msgs = read_until_ready(raw)
        assert any(k == b"E" for k, _ in msgs), msgs
        # A Bind of a 64-byte name, after the 63-byte one was prepared with checks.
        raw.send(parse_msg("INSERT INTO rt_emails (tenant_id, email) VALUES ($1, $2)", name=long63)
                 + sync_msg())
        assert not [k for k, _ in read_until_ready(raw) if k == b"E"]
        raw.send(bind_msg([b"globex", b"pwned@globex"], stmt=long64) + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert any(k == b"E" for k, _ in msgs), msgs
    finally:
        raw.close()
    rows = env.psql("SELECT count(*) FROM rt_emails WHERE email LIKE 'pwned%'", db=DB)
    assert rows.strip() == "0", rows


# Round 2: operators nobody writes out. Where the application defines
# comparison operators (or types and casts), JOIN ... USING / NATURAL imply an
# equality that could be the app's, and a subquery pulled up into a semi-join
# lets the planner run the app's operator on the scoped table's statistics or
# derive a condition (equivalence classes) that runs next to the scope.
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM rt_customers a JOIN rt_emails b USING (tenant_id)",
    "SELECT count(*) FROM rt_customers NATURAL JOIN rt_emails",
    "SELECT count(*) FROM rt_shared WHERE rt_shared.k IN (SELECT name FROM rt_customers)",
    "SELECT count(*) FROM rt_shared WHERE rt_shared.k <<< ANY (SELECT name FROM rt_customers)",
    "SELECT 1 FROM (SELECT name FROM rt_customers) x WHERE x.name IN (SELECT k FROM rt_shared)",
])
def test_implied_and_pulled_up_app_operators_are_refused(tg, sql):
    rows, error, notices = _once(tg, sql)
    assert error is not None and error[0] == "0A000", (sql, rows, error)
    assert not notices, notices[:5]


@pytest.mark.parametrize("sql", [
    "SELECT n_live_tup FROM pg_stat_user_tables",
    "SELECT * FROM pg_catalog.pg_stat_all_tables",
    "SELECT * FROM pg_statio_user_tables",
    "SELECT * FROM pg_stat_database",
    "SELECT * FROM pg_backend_memory_contexts",
    "SET client_min_messages = debug5",
])
def test_statistics_views_and_debug_messages_are_refused(tg, sql):
    rows, error, notices = _once(tg, sql)
    assert error is not None and error[0] == "42501", (sql, rows, error)
