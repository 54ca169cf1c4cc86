"""Wire-level enforcement: how refusals, rewrites and checks look to real clients.

Each test starts a tenantgate with its own policy over freshly seeded tables
(enforcement_support.SEED_ROWS: 18 rows over acme/globex/initech, owners 42
and 7). The default caller is tenant "acme", user 42.
"""

from __future__ import annotations

import json
import signal
import struct

import psycopg
import psycopg.errors
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from psycopg.pq import TransactionStatus

import harness
from enforcement_support import (ME_TENANT, ME_USER, SEED_ROWS, admin_rows, bind_msg, data_rows,
                                 describe_msg, errors, execute_msg, ids_for, int_tenant_overrides, parse_msg, pg2, pg3, policy_text,
                                 proxy_serves, read_until_ready, seeded, sqlstate, start_with_policy,
                                 sync_msg)

__all__ = ["seeded"]  # the fixture, imported for pytest

SECRET_ROWS = 3


@pytest.fixture
def secret(pg):
    """A table the policies leave unlisted (default_action deny)."""
    name = "enf_secret"
    pg.psql(f"CREATE TABLE IF NOT EXISTS {name} (id int PRIMARY KEY, v text);"
            f"INSERT INTO {name} SELECT g, 'secret ' || g FROM generate_series(1, {SECRET_ROWS}) g "
            f"ON CONFLICT DO NOTHING; GRANT ALL ON {name} TO PUBLIC")
    return name


def scoped(start_proxy, tables: dict, overrides: dict | None = None, **kw):
    return start_with_policy(start_proxy, policy_text(tables, **kw), overrides)


def ids(rows) -> list[int]:
    return sorted(int(r[0]) for r in rows)


def login(proxy, **kw) -> harness.RawConn:
    raw = proxy.raw()
    res = raw.startup(proxy.startup_params(**kw), password=harness.PRINCIPALS[kw.get("user", "app")]["password"])
    assert res.ok, res.error
    return raw


# --------------------------------------------------------------------------
# Simple-protocol refusals.


def test_refusal_psycopg2_outside_and_inside_transaction(start_proxy, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    conn = pg2(proxy)
    try:
        cur = conn.cursor()
        with pytest.raises(psycopg2.errors.InsufficientPrivilege) as e:
            cur.execute(f"SELECT * FROM {secret}")
        assert secret in e.value.pgerror
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        cur.execute(f"SELECT id FROM {t}")
        assert ids(cur.fetchall()) == ids_for(ME_TENANT)

        conn.autocommit = False
        cur.execute(f"SELECT count(*) FROM {t}")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(f"SELECT * FROM {secret}")
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INERROR
        with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
            cur.execute("SELECT 1")
        conn.rollback()
        cur.execute(f"SELECT id FROM {t}")
        assert ids(cur.fetchall()) == ids_for(ME_TENANT)
        conn.commit()
    finally:
        conn.close()


def test_refusal_raw_message_sequence_and_status(start_proxy, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    with login(proxy) as raw:
        r = raw.simple_query(f"SELECT * FROM {secret}")
        assert r["kinds"] == [b"E", b"Z"] and r["status"] == "I"
        assert r["errors"][0]["C"] == "42501" and r["errors"][0]["S"] == "ERROR"

        assert raw.simple_query("BEGIN")["status"] == "T"
        r = raw.simple_query(f"SELECT * FROM {secret}")
        assert r["kinds"] == [b"E", b"Z"] and r["status"] == "E"
        r = raw.simple_query("SELECT 1")
        assert r["errors"][0]["C"] == "25P02" and r["status"] == "E"
        assert raw.simple_query("ROLLBACK")["status"] == "I"

        r = raw.simple_query("SELEC broken")
        assert r["kinds"] == [b"E", b"Z"] and r["errors"][0]["C"] == "42601" and r["status"] == "I"

        r = raw.simple_query(f"SELECT id FROM {t} ORDER BY id")
        assert r["errors"] == [] and r["status"] == "I"
        assert [int(x[0]) for x in r["rows"]] == ids_for(ME_TENANT)


def test_multi_statement_string_is_all_or_nothing(start_proxy, pg, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    with login(proxy) as raw:
        r = raw.simple_query(f"INSERT INTO {t} (id, owner_id, body) VALUES (100, 42, 'multi'); "
                             f"SELECT * FROM {secret}")
        assert r["kinds"] == [b"E", b"Z"] and r["errors"][0]["C"] == "42501", r
        r = raw.simple_query(f"INSERT INTO {t} (id, owner_id, body) VALUES (101, 42, 'multi'); "
                             f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (102, 'globex', 42, 'multi')")
        assert r["kinds"] == [b"E", b"Z"] and r["errors"][0]["C"] == "42501", r
        # Both allowed: both run.
        r = raw.simple_query(f"INSERT INTO {t} (id, owner_id, body) VALUES (103, 42, 'multi'); "
                             f"SELECT count(*) FROM {t}")
        assert r["errors"] == [] and r["tags"] == ["INSERT 0 1", "SELECT 1"]
        assert r["rows"] == [[str(len(ids_for(ME_TENANT)) + 1)]]
    assert admin_rows(pg, f"SELECT id, tenant_id FROM {t} WHERE body = 'multi'") == [(103, "acme")]


# --------------------------------------------------------------------------
# Extended protocol.


def test_refused_parse_skips_until_sync(start_proxy, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    with login(proxy) as raw:
        raw.send(parse_msg(f"SELECT * FROM {secret}") + bind_msg() + execute_msg() + sync_msg()
                 + parse_msg(f"SELECT id FROM {t} ORDER BY id") + bind_msg() + describe_msg(b"P")
                 + execute_msg() + sync_msg())
        first = read_until_ready(raw)
        assert [k for k, _ in first] == [b"E", b"Z"]
        assert errors(first)[0]["C"] == "42501" and first[-1][1] == b"I"
        second = read_until_ready(raw)
        own = ids_for(ME_TENANT)
        assert [k for k, _ in second] == [b"1", b"2", b"T"] + [b"D"] * len(own) + [b"C", b"Z"]
        assert [int(r[0]) for r in data_rows(second)] == own

        # Inside a transaction block the refusal leaves it failed ('E').
        raw.send(parse_msg("BEGIN") + bind_msg() + execute_msg() + sync_msg())
        assert read_until_ready(raw)[-1][1] == b"T"
        raw.send(parse_msg(f"SELECT * FROM {secret}") + bind_msg() + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [k for k, _ in msgs] == [b"E", b"Z"] and msgs[-1][1] == b"E"
        assert raw.simple_query("ROLLBACK")["status"] == "I"


def test_psycopg3_server_side_prepared_crud(start_proxy, pg, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    other = ids_for("globex")[0]
    with pg3(proxy, prepare_threshold=0) as conn:
        assert ids(conn.execute(f"SELECT id FROM {t} WHERE id > %s", (0,)).fetchall()) == ids_for(ME_TENANT)
        assert conn.execute(f"SELECT id FROM {t} WHERE id = %s", (other,)).fetchall() == []
        conn.execute(f"INSERT INTO {t} (id, owner_id, body) VALUES (%s, %s, %s)", (200, 42, "prepared"))
        assert conn.execute(f"UPDATE {t} SET body = %s WHERE id = %s", ("upd", 200)).rowcount == 1
        assert conn.execute(f"UPDATE {t} SET body = %s WHERE id = %s", ("pwned", other)).rowcount == 0
        assert conn.execute(f"DELETE FROM {t} WHERE id = %s", (other,)).rowcount == 0
        assert conn.execute(f"DELETE FROM {t} WHERE id = %s", (ids_for(ME_TENANT)[0],)).rowcount == 1
        names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]
        assert any(n.startswith("_pg3_") for n in names), names
    assert admin_rows(pg, f"SELECT tenant_id, body FROM {t} WHERE id = 200") == [("acme", "upd")]
    assert admin_rows(pg, f"SELECT body FROM {t} WHERE id = %s", (other,)) == [(SEED_ROWS[other - 1][3],)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("prepared", [False, True], ids=["unnamed", "prepared"])
def test_bind_checks_tenant_and_owner_parameters(start_proxy, pg, seeded, binary, prepared):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant_owner"})
    ph = "%b" if binary else "%s"
    sql = f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES ({ph}, {ph}, {ph}, {ph})"
    with pg3(proxy, prepare_threshold=0 if prepared else None) as conn:
        conn.execute(sql, (300, "acme", 42, "bind-ok"), prepare=prepared)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql, (301, "globex", 42, "bind-bad-tenant"), prepare=prepared)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql, (302, "acme", 7, "bind-bad-owner"), prepare=prepared)
        conn.execute(sql, (303, "acme", 42, "bind-ok"), prepare=prepared)
        assert conn.info.transaction_status == TransactionStatus.IDLE
    assert admin_rows(pg, f"SELECT id, tenant_id, owner_id FROM {t} WHERE id >= 300 ORDER BY id") == [
        (300, "acme", 42), (303, "acme", 42)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_bind_check_int_tenant(start_proxy, pg, seeded, binary):
    t = seeded(tenant_type="int")
    proxy = scoped(start_proxy, {t: "tenant"}, int_tenant_overrides())
    ph = "%b" if binary else "%s"
    with pg3(proxy, tenant="1", prepare_threshold=0) as conn:
        assert ids(conn.execute(f"SELECT id FROM {t}").fetchall()) == ids_for("acme")
        conn.execute(f"INSERT INTO {t} (id, tenant_id, owner_id) VALUES ({ph}, {ph}, {ph})", (400, 1, 42))
        for bad in (2, 1000000, -1):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"INSERT INTO {t} (id, tenant_id, owner_id) VALUES ({ph}, {ph}, {ph})", (401, bad, 42))
        # The same value as an int8 parameter is still the caller's tenant.
        conn.execute(f"INSERT INTO {t} (id, tenant_id, owner_id) VALUES ({ph}, {ph}::int8, {ph})",
                     (402, 1, 42))
    assert admin_rows(pg, f"SELECT id, tenant_id FROM {t} WHERE id >= 400 ORDER BY id") == [(400, 1), (402, 1)]


def test_pipeline_mixing_allowed_and_refused(start_proxy, pg, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    ins = f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (%s, %s, 42, 'pipe')"
    with pg3(proxy) as conn:
        with conn.pipeline():
            c1 = conn.execute(f"SELECT id FROM {t} ORDER BY id")
            conn.execute(ins, (500, "acme"))
            c3 = conn.execute(f"SELECT count(*) FROM {t} WHERE body = 'pipe'")
        assert ids(c1.fetchall()) == ids_for(ME_TENANT)
        assert c3.fetchone() == (1,)

        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.pipeline() as p:
                conn.execute(ins, (501, "acme"))
                p.sync()
                conn.execute(ins, (502, "acme"))       # same implicit transaction as the refusal
                conn.execute(ins, (503, "globex"))     # refused at Bind
                conn.execute(ins, (504, "acme"))       # skipped until Sync
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with conn.pipeline():
                conn.execute(f"SELECT * FROM {secret}")
                conn.execute(ins, (505, "acme"))
        assert conn.info.transaction_status == TransactionStatus.IDLE
        with conn.pipeline():
            c = conn.execute(f"SELECT id FROM {t} WHERE body = 'pipe' ORDER BY id")
        assert ids(c.fetchall()) == [500, 501]
    assert admin_rows(pg, f"SELECT id FROM {t} WHERE body = 'pipe' ORDER BY id") == [(500,), (501,)]


def test_descriptions_identical_to_direct(start_proxy, pg, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant_owner"})
    select = f"SELECT id, tenant_id, owner_id, body, id::numeric(10,2) AS n FROM {t} WHERE id > %s"
    via = pg2(proxy)
    direct = psycopg2.connect(pg.admin_dsn())
    try:
        descs = []
        for conn in (via, direct):
            with conn.cursor() as cur:
                cur.execute(select, (0,))
                descs.append([(d.name, d.type_code, d.precision, d.scale) for d in cur.description])
        assert descs[0] == descs[1]
    finally:
        via.close()
        direct.close()

    statements = [
        f"SELECT id, body FROM {t} WHERE id > $1 AND body <> $2",
        f"INSERT INTO {t} (id, tenant_id, body) VALUES ($1, $2, $3) RETURNING id, owner_id",
        f"UPDATE {t} SET body = $1 WHERE id = $2 RETURNING tenant_id",
        f"DELETE FROM {t} WHERE id = $1",
    ]
    results = []
    for dsn in (proxy.dsn(), pg.admin_dsn()):
        with psycopg.connect(dsn, autocommit=True) as conn:
            shapes = []
            for i, sql in enumerate(statements):
                name = f"tg_desc_{i}".encode()
                res = conn.pgconn.prepare(name, sql.encode())
                assert res.status == psycopg.pq.ExecStatus.COMMAND_OK, res.error_message
                d = conn.pgconn.describe_prepared(name)
                shapes.append((d.nparams, [d.param_type(j) for j in range(d.nparams)],
                               [(d.fname(j), d.ftype(j), d.fmod(j)) for j in range(d.nfields)]))
            results.append(shapes)
    assert results[0] == results[1]
    assert results[0][1][0] == 3  # the INSERT keeps its 3 parameters (owner filled with a constant)


# --------------------------------------------------------------------------
# COPY.


def test_copy_to_stdout_scoped(start_proxy, seeded):
    import io
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant_owner"})
    mine = [r for r in SEED_ROWS if r[1] == ME_TENANT and r[2] == ME_USER]
    assert mine
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            buf = io.StringIO()
            cur.copy_expert(f"COPY {t} TO STDOUT", buf)
            lines = buf.getvalue().splitlines()
            assert sorted(int(x.split("\t")[0]) for x in lines) == [r[0] for r in mine]
            assert all(x.split("\t")[1] == ME_TENANT for x in lines)
            buf = io.StringIO()
            cur.copy_expert(f"COPY {t} (id, body) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
            lines = buf.getvalue().splitlines()
            assert lines[0] == "id,body" and len(lines) == 1 + len(mine)
            buf = io.StringIO()
            cur.copy_expert(f"COPY (SELECT id FROM {t} ORDER BY id) TO STDOUT", buf)
            assert [int(x) for x in buf.getvalue().split()] == [r[0] for r in mine]
    finally:
        conn.close()


def test_copy_from_stdin_validates_rows(start_proxy, pg, seeded):
    import io
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant_owner"})
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            cur.copy_expert(f"COPY {t} (id, tenant_id, owner_id, body) FROM STDIN",
                            io.StringIO("600\tacme\t42\ttext-ok\n601\tacme\t42\ttext-ok\n"))
            cur.copy_expert(f"COPY {t} (id, tenant_id, owner_id, body) FROM STDIN WITH (FORMAT csv)",
                            io.StringIO('602,acme,42,"csv, ok"\n'))
            # Tenant and owner columns absent from the list: filled with the caller's values.
            cur.copy_expert(f"COPY {t} (id, body) FROM STDIN WITH (FORMAT csv)", io.StringIO("603,filled\n"))
            for data, fmt in (("610\tacme\t42\tx\n611\tglobex\t42\tCOPYLEAK\n", ""),
                              ("612,acme,42,x\n613,acme,7,COPYLEAK\n", " WITH (FORMAT csv)")):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.copy_expert(f"COPY {t} (id, tenant_id, owner_id, body) FROM STDIN{fmt}", io.StringIO(data))
            binary = (b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0) + struct.pack("!h", 2)
                      + struct.pack("!i", 4) + struct.pack("!i", 620) + struct.pack("!i", 4) + b"acme"
                      + struct.pack("!h", -1))
            with pytest.raises(psycopg2.Error) as e:
                cur.copy_expert(f"COPY {t} (id, tenant_id) FROM STDIN WITH (FORMAT binary)", io.BytesIO(binary))
            assert sqlstate(e.value) in ("42501", "0A000"), e.value
            cur.execute("SELECT 1")
    finally:
        conn.close()
    assert admin_rows(pg, f"SELECT id, tenant_id, owner_id FROM {t} WHERE id >= 600 ORDER BY id") == [
        (600, "acme", 42), (601, "acme", 42), (602, "acme", 42), (603, "acme", 42)]


# --------------------------------------------------------------------------
# Other protocol paths.


def test_function_call_message_refused(start_proxy, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    with login(proxy) as raw:
        # FunctionCall (F): int4pl (oid 177) with two text-format args.
        body = struct.pack("!IH", 177, 0) + struct.pack("!H", 2)
        for arg in (b"1", b"2"):
            body += struct.pack("!i", len(arg)) + arg
        body += struct.pack("!H", 0)
        raw.send(harness.message(b"F", body))
        msgs = read_until_ready(raw)
        assert [k for k, _ in msgs] == [b"E", b"Z"], msgs
        assert errors(msgs)[0]["C"] == "42501" and msgs[-1][1] == b"I"
        r = raw.simple_query(f"SELECT count(*) FROM {t}")
        assert r["rows"] == [[str(len(ids_for(ME_TENANT)))]]


def test_sql_prepare_execute_cursor_explain(start_proxy, pg, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    own = ids_for(ME_TENANT)
    other = ids_for("globex")[0]
    conn = pg2(proxy)
    try:
        cur = conn.cursor()
        cur.execute(f"PREPARE p1 AS SELECT id FROM {t} ORDER BY id")
        cur.execute("EXECUTE p1")
        assert ids(cur.fetchall()) == own
        cur.execute(f"PREPARE p2(text) AS SELECT id FROM {t} WHERE tenant_id = $1")
        cur.execute("EXECUTE p2('globex')")
        assert cur.fetchall() == []
        cur.execute(f"PREPARE p3(int, text) AS UPDATE {t} SET body = $2 WHERE id = $1")
        cur.execute("EXECUTE p3(%s, 'prepared-pwn')", (other,))
        assert cur.rowcount == 0

        cur.execute("BEGIN")
        cur.execute(f"DECLARE c1 CURSOR FOR SELECT id FROM {t} ORDER BY id")
        cur.execute("FETCH ALL FROM c1")
        assert ids(cur.fetchall()) == own
        cur.execute("COMMIT")

        cur.execute(f"EXPLAIN SELECT * FROM {t}")
        plan = "\n".join(r[0] for r in cur.fetchall())
        assert "tenant_id = 'acme'" in plan, plan
        # EXPLAIN ANALYZE would count the rows the scope removed: refused, and
        # so nothing it would have executed runs.
        for sql in (f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM {t}",
                    f"EXPLAIN ANALYZE UPDATE {t} SET body = 'explain-pwn' WHERE id = {other}"):
            with pytest.raises(psycopg2.Error) as refused:
                cur.execute(sql)
            assert refused.value.pgcode == "42501"
    finally:
        conn.close()
    assert admin_rows(pg, f"SELECT count(*) FROM {t} WHERE body LIKE '%%pwn'") == [(0,)]


def test_bypass_principal_passes_through_and_is_logged(start_proxy, seeded, secret):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    conn = pg2(proxy, user="admin")
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {t}")
            assert ids(cur.fetchall()) == [r[0] for r in SEED_ROWS]
            cur.execute(f"SELECT count(*) FROM {secret}")
            assert cur.fetchone() == (SECRET_ROWS,)
            cur.execute(f"INSERT INTO {t} VALUES (700, 'globex', 1, 'admin write')")
            assert cur.rowcount == 1
    finally:
        conn.close()
    harness.wait_until(lambda: "bypass" in proxy.log(), 5, "the bypass session start in the log")
    line = next(x for x in proxy.log().splitlines() if "bypass" in x)
    assert "principal=admin" in line and "session started" in line, line


@pytest.mark.parametrize("log_values", [False, True], ids=["fingerprint-only", "log_statement_values"])
def test_refusals_logged_with_context_not_values(start_proxy, seeded, secret, log_values):
    t = seeded()
    overrides = {"log": {"log_statement_values": True}} if log_values else None
    proxy = scoped(start_proxy, {t: "tenant"}, overrides)
    marker = "UNIQ-b7e1c0de-value"
    conn = pg2(proxy, tenant="globex", user_id=7)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"SELECT * FROM {secret} WHERE v = '{marker}'")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (701, 'acme', 7, '{marker}2')")
    finally:
        conn.close()
    harness.wait_until(lambda: proxy.log().count("refused") >= 2, 5, "two refusals in the log")
    refusals = [x for x in proxy.log().splitlines() if "refused" in x]
    assert len(refusals) == 2, refusals
    for line in refusals:
        for needle in ("principal=app", "tenant=globex", "user=7", "42501", "statement_fingerprint="):
            assert needle in line, (needle, line)
    assert secret in refusals[0] and t in refusals[1]
    if log_values:
        assert marker in refusals[0] and marker + "2" in refusals[1]
    else:
        assert marker not in proxy.log()


def test_policy_reload_on_sighup(start_proxy, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant"})
    policy = proxy.dir / "policy.toml"
    before = pg2(proxy)
    try:
        def count(conn):
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM {t}")
                return ids(cur.fetchall())

        assert count(before) == ids_for(ME_TENANT)
        policy.write_text('default_action = "deny"\n[tables."public.broken"\nscope = ')
        proxy.signal(signal.SIGHUP)
        harness.wait_until(lambda: "reload failed" in proxy.log(), 5, "the failed reload in the log")
        assert count(before) == ids_for(ME_TENANT)
        fresh = pg2(proxy)
        assert count(fresh) == ids_for(ME_TENANT)
        fresh.close()

        policy.write_text(policy_text({t: "deny"}))
        proxy.signal(signal.SIGHUP)
        harness.wait_until(lambda: "policy reloaded" in proxy.log(), 5, "the reload in the log")
        fresh = pg2(proxy)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            count(fresh)
        fresh.close()
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            count(before)  # an open session follows the new policy too
    finally:
        before.close()


def test_rewrite_cache_never_mixes_identities(start_proxy, seeded):
    t = seeded()
    proxy = scoped(start_proxy, {t: "tenant_owner"})
    conns = {
        ("acme", 42): pg3(proxy, tenant="acme", user_id=42, prepare_threshold=0),
        ("globex", 42): pg3(proxy, tenant="globex", user_id=42, prepare_threshold=0),
        ("acme", 7): pg3(proxy, tenant="acme", user_id=7),
    }
    simple = {("globex", 7): pg2(proxy, tenant="globex", user_id=7), ("acme", 42): pg2(proxy)}
    sql = f"SELECT id, tenant_id, owner_id FROM {t} ORDER BY id"
    try:
        for _ in range(40):
            for (tenant, user), conn in conns.items():
                rows = conn.execute(sql).fetchall()
                assert [r[0] for r in rows] == ids_for(tenant, user), (tenant, user)
            for (tenant, user), conn in simple.items():
                with conn.cursor() as cur:
                    cur.execute(sql)
                    assert [r[0] for r in cur.fetchall()] == ids_for(tenant, user), (tenant, user)
    finally:
        for c in list(conns.values()) + list(simple.values()):
            c.close()
    assert proxy_serves(proxy)
