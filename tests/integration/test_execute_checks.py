"""Checked parameters cannot be sidestepped: SQL EXECUTE, type inference, sequences.

A statement whose tenant (or owner) column is given as a parameter ($2) is
checked when the value arrives in a Bind. These tests try every other way to
run such a statement or to make the server read the checked value as another
value, as the caller acme (user 42), over the wire with psycopg 3 and with raw
protocol messages, for tenant identities of every type (text, int, uuid).

Each attack is also run directly on PostgreSQL against an RLS twin: a copy of
the table with ENABLE + FORCE ROW LEVEL SECURITY and a policy
USING/WITH CHECK (tenant_id = current_setting('app.tenant')::<type>), as a
role without BYPASSRLS. The tests assert what RLS does as well, and, after
each attack, with a superuser query, that no row of another tenant was
written through tenantgate.

Tables per test: <p>_u (id, tenant_id, email), scope tenant; for text
tenants also <p>_n (id, tenant_id, owner_id, body), scope tenant_owner, and
<p>_s (id serial, tenant_id, body), scope tenant.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

import psycopg
import psycopg.errors
import pytest

import harness
from enforcement_support import (admin_rows, bind_msg, errors, execute_msg, once, parse_msg, policy_text,
                                 read_until_ready, start_with_policy, sync_msg)

TWIN_ROLE, TWIN_PASSWORD = "tg_rls_twin", "twin-secret"
ME_USER = 42

# (own tenant, another tenant, SQL type of the tenant column) per identity type.
TENANTS = {
    "text": ("acme", "globex", "text"),
    "int": ("1", "2", "int"),
    "uuid": ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "uuid"),
}


def literal(kind: str, value: str) -> str:
    return value if kind == "int" else f"'{value}'"


def encode(kind: str, value: str, binary: bool, int_format: str = "!q") -> bytes:
    """A Bind value of the identity's own canonical type (int8 for int, unless int_format says)."""
    if not binary:
        return value.encode()
    if kind == "int":
        return struct.pack(int_format, int(value))
    if kind == "uuid":
        return uuid.UUID(value).bytes
    return value.encode()


@dataclass
class World:
    """One proxy and its tables, plus the RLS twin of each table on the same server."""

    kind: str
    pg: harness.PgServer
    proxy: harness.Proxy
    users: str
    notes: str | None = None
    seqt: str | None = None
    tables: list[str] = field(default_factory=list)

    @property
    def own(self) -> str:
        return TENANTS[self.kind][0]

    @property
    def other(self) -> str:
        return TENANTS[self.kind][1]

    def lit(self, value: str) -> str:
        return literal(self.kind, value)

    def twin(self, table: str) -> str:
        return table + "_rls"

    # -- connections -----------------------------------------------------

    def tg(self, **kw) -> psycopg.Connection:
        """psycopg 3 through tenantgate as the caller."""
        return psycopg.connect(self.proxy.dsn(tenant=self.own, user_id=str(ME_USER)), autocommit=True, **kw)

    def rls(self, **kw) -> psycopg.Connection:
        """psycopg 3 directly to PostgreSQL as the RLS twin role with the caller's identity."""
        return psycopg.connect(harness.conninfo(host=self.pg.host, port=self.pg.port, user=TWIN_ROLE,
                                                password=TWIN_PASSWORD, dbname=harness.DATABASE,
                                                options=f"-c app.tenant={self.own} -c app.user={ME_USER}"),
                               autocommit=True, **kw)

    def tg_raw(self) -> harness.RawConn:
        raw = self.proxy.raw()
        res = raw.startup(self.proxy.startup_params(tenant=self.own, user_id=str(ME_USER)),
                          password=harness.PRINCIPALS["app"]["password"])
        assert res.ok, res.error
        return raw

    def rls_raw(self) -> harness.RawConn:
        raw = harness.RawConn(self.pg.host, self.pg.port)
        res = raw.startup({"user": TWIN_ROLE, "database": harness.DATABASE,
                           "options": f"-c app.tenant={self.own} -c app.user={ME_USER}"}, password=TWIN_PASSWORD)
        assert res.ok, res.error
        return raw

    # -- checks ------------------------------------------------------------

    def foreign_rows(self, table: str) -> list[tuple]:
        """Rows of `table` whose tenant is not one of the seeded ones of their id (superuser, no proxy)."""
        return admin_rows(self.pg, f"SELECT id, tenant_id::text FROM {table} WHERE id >= 900 "
                                   f"AND tenant_id::text <> %s ORDER BY id", (self.own,))

    def assert_nothing_foreign(self) -> None:
        for t in [self.users] + ([self.notes] if self.notes else []):
            assert self.foreign_rows(t) == [], f"another tenant's row was written into {t}"


def _twin_role(pg: harness.PgServer) -> None:
    once(pg, "postgres", "tg_rls_twin",
         f"CREATE ROLE {TWIN_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{TWIN_PASSWORD}'")


def _rls(table: str, predicate: str) -> str:
    return (f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
            f"CREATE POLICY p ON {table} USING ({predicate}) WITH CHECK ({predicate});"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {TWIN_ROLE};")


def make_world(pg, start_proxy, kind: str) -> World:
    _twin_role(pg)
    prefix = f"xe_{uuid.uuid4().hex[:8]}"
    own, _, col = TENANTS[kind]
    tenant_is = f"tenant_id = current_setting('app.tenant')::{col}"
    users = f"{prefix}_u"
    sql = []
    for t in (users, users + "_rls"):
        sql.append(f"CREATE TABLE {t} (id int PRIMARY KEY, tenant_id {col} NOT NULL, email text);"
                   f"INSERT INTO {t} VALUES (1, {literal(kind, own)}, 'seed');"
                   f"GRANT ALL ON {t} TO PUBLIC;")
    sql.append(_rls(users + "_rls", tenant_is))
    tables = {users: "tenant"}
    notes = seqt = None
    if kind == "text":
        notes, seqt = f"{prefix}_n", f"{prefix}_s"
        for t in (notes, notes + "_rls"):
            sql.append(f"CREATE TABLE {t} (id int PRIMARY KEY, tenant_id text NOT NULL, owner_id int NOT NULL, "
                       f"body text); INSERT INTO {t} VALUES (900, 'acme', {ME_USER}, 'mine');"
                       f"GRANT ALL ON {t} TO PUBLIC;")
        sql.append(_rls(notes + "_rls", f"{tenant_is} AND owner_id = current_setting('app.user')::int"))
        for t in (seqt, seqt + "_rls"):
            sql.append(f"CREATE TABLE {t} (id serial PRIMARY KEY, tenant_id text NOT NULL, body text);")
        # tenantgate's service login may move the sequence: only tenantgate stands in the way.
        sql.append(f"GRANT ALL ON {seqt} TO PUBLIC; GRANT ALL ON SEQUENCE {seqt}_id_seq TO PUBLIC;")
        # The RLS role may take ids (USAGE), as an app role would, but not set the sequence (UPDATE).
        sql.append(_rls(seqt + "_rls", tenant_is) + f"GRANT USAGE ON SEQUENCE {seqt}_rls_id_seq TO {TWIN_ROLE};")
        tables.update({notes: "tenant_owner", seqt: "tenant"})
    pg.psql("\n".join(sql))
    principals = {k: v for k, v in harness.PRINCIPALS.items() if k != "limited"}
    overrides = {"identity": {"tenant_type": kind}, "principals": harness.principal_entries("scram", principals)}
    proxy = start_with_policy(start_proxy, policy_text(tables), overrides)
    names = [users, users + "_rls"] + ([notes, notes + "_rls", seqt, seqt + "_rls"] if notes else [])
    return World(kind, pg, proxy, users, notes, seqt, names)


@pytest.fixture(params=list(TENANTS))
def world(request, pg, start_proxy):
    w = make_world(pg, start_proxy, request.param)
    try:
        yield w
        w.assert_nothing_foreign()
    finally:
        pg.psql("DROP TABLE IF EXISTS " + ", ".join(w.tables) + " CASCADE")


@pytest.fixture
def text_world(pg, start_proxy):
    w = make_world(pg, start_proxy, "text")
    try:
        yield w
        w.assert_nothing_foreign()
    finally:
        pg.psql("DROP TABLE IF EXISTS " + ", ".join(w.tables) + " CASCADE")


def codes(msgs) -> list[str]:
    return [e.get("C") for e in errors(msgs)]


def batch(raw: harness.RawConn, *msgs: bytes, syncs: int = 1):
    raw.send(b"".join(msgs))
    return read_until_ready(raw, syncs)


def query(raw: harness.RawConn, sql: str) -> dict:
    return raw.simple_query(sql)


def pg3_statement_name(conn: psycopg.Connection) -> str:
    names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]
    mine = [n for n in names if n.startswith("_pg3_")]
    assert len(mine) == 1, names
    return mine[0]


# --------------------------------------------------------------------------
# SQL EXECUTE of a statement prepared over the extended protocol.


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_psycopg3_execute_of_a_checked_statement(world, binary):
    """The issue's reproduction: prepare=True, then EXECUTE _pg3_0(..., 'globex', ...)."""
    ph = "%b" if binary else "%s"
    ins = "INSERT INTO {t} (id, tenant_id, email) VALUES (" + ", ".join([ph] * 3) + ")"
    tenant_param = uuid.UUID(world.own) if world.kind == "uuid" else (
        int(world.own) if world.kind == "int" else world.own)

    def attacks(conn, table):
        conn.execute(ins.format(t=table), (950, tenant_param, "ok"), prepare=True)
        name = pg3_statement_name(conn)
        other = world.lit(world.other)
        outcomes = {}
        for label, sql in [
                ("execute", f"EXECUTE {name}(951, {other}, 'pwned')"),
                ("explain analyze", f"EXPLAIN ANALYZE EXECUTE {name}(952, {other}, 'pwned')"),
                ("own tenant", f"EXECUTE {name}(953, {world.lit(world.own)}, 'mine')")]:
            try:
                conn.execute(sql)  # no parameters: psycopg sends a simple Query
                outcomes[label] = "ok"
            except psycopg.Error as e:
                outcomes[label] = e.sqlstate
            try:  # in a pipeline psycopg uses the extended protocol
                with conn.pipeline():
                    conn.execute(sql.replace("95", "96"))
                outcomes[label + " pipeline"] = "ok"
            except psycopg.Error as e:
                outcomes[label + " pipeline"] = e.sqlstate
        try:  # inside a transaction block
            with conn.transaction():
                conn.execute(f"EXECUTE {name}(954, {other}, 'pwned')")
            outcomes["transaction"] = "ok"
        except psycopg.Error as e:
            outcomes["transaction"] = e.sqlstate
        return outcomes

    with world.tg() as conn:
        got = attacks(conn, world.users)
    # tenantgate refuses every SQL EXECUTE of a statement with a checked parameter, whatever the values.
    assert set(got.values()) == {"42501"}, got
    with world.rls() as conn:
        rls = attacks(conn, world.twin(world.users))
    # RLS refuses the other tenant's rows and lets the caller's own through.
    assert rls == {"execute": "42501", "execute pipeline": "42501", "explain analyze": "42501",
                   "explain analyze pipeline": "42501", "own tenant": "ok", "own tenant pipeline": "ok",
                   "transaction": "42501"}, rls
    assert admin_rows(world.pg, f"SELECT id, tenant_id::text FROM {world.users} WHERE id >= 900") == [
        (950, world.own)]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_raw_execute_of_a_checked_statement(world, binary):
    """Parse("rins", INSERT ... $2), then EXECUTE rins(...) every way the protocol allows."""
    own, other = world.own, world.other
    fmt = [1 if binary else 0]
    lit = world.lit(other)

    def run(raw, table, int_format):
        out = {}
        msgs = batch(raw, parse_msg(f"INSERT INTO {table} (id, tenant_id, email) VALUES ($1, $2, $3)", "rins"),
                     sync_msg())
        assert codes(msgs) == [] and msgs[0][0] == b"1", msgs
        # Bind: the caller's own tenant is written, another tenant's is refused (text or binary format).
        own_bind = [b"970", encode(world.kind, own, binary, int_format), b"bind-own"]
        if binary:
            own_bind[0] = struct.pack("!i", 970)
        out["bind own"] = codes(batch(raw, bind_msg(own_bind, stmt="rins", param_formats=[fmt[0], fmt[0], 0]),
                                      execute_msg(), sync_msg()))
        bad = [b"971", encode(world.kind, other, binary, int_format), b"bind-other"]
        out["bind other"] = codes(batch(raw, bind_msg(bad, stmt="rins", param_formats=[0, fmt[0], 0]),
                                        execute_msg(), sync_msg()))
        out["simple"] = [e["C"] for e in query(raw, f"EXECUTE rins(972, {lit}, 'x')")["errors"]]
        out["explain analyze"] = [e["C"] for e in
                                  query(raw, f"EXPLAIN ANALYZE EXECUTE rins(973, {lit}, 'x')")["errors"]]
        out["extended"] = codes(batch(raw, parse_msg(f"EXECUTE rins(974, {lit}, 'x')"), bind_msg(),
                                      execute_msg(), sync_msg()))
        out["extended params"] = codes(batch(raw, parse_msg("EXECUTE rins($1, $2, $3)"),
                                             bind_msg([b"975", other.encode(), b"x"]), execute_msg(), sync_msg()))
        # Pipeline: the Parse is still unanswered when the EXECUTE is sent.
        out["pipeline"] = codes(batch(
            raw, parse_msg(f"INSERT INTO {table} (id, tenant_id, email) VALUES ($1, $2, $3)", "rins2"), sync_msg(),
            parse_msg(f"EXECUTE rins2(976, {lit}, 'x')"), bind_msg(), execute_msg(), sync_msg(), syncs=2))
        begin = query(raw, "BEGIN")
        assert begin["status"] == "T"
        tx = query(raw, f"EXECUTE rins(977, {lit}, 'x')")
        out["transaction"] = [e["C"] for e in tx["errors"]] + [tx["status"]]
        assert query(raw, "ROLLBACK")["status"] == "I"
        return out

    with world.tg_raw() as raw:
        got = run(raw, world.users, "!q")  # tenantgate declares an int tenant parameter as int8
    assert got == {"bind own": [], "bind other": ["42501"], "simple": ["42501"], "explain analyze": ["42501"],
                   "extended": ["42501"], "extended params": ["42501"], "pipeline": ["42501"],
                   "transaction": ["42501", "E"]}, got
    with world.rls_raw() as raw:
        rls = run(raw, world.twin(world.users), "!i")  # PostgreSQL infers int4 from the column
    # RLS checks every row the statement writes, however it is run. PostgreSQL gives a utility
    # statement no parameters at Parse, so EXECUTE rins($1, $2, $3) fails at Bind there (08P01).
    assert rls == {**got, "extended params": ["08P01"]}, rls
    assert admin_rows(world.pg, f"SELECT id, tenant_id::text FROM {world.users} WHERE id >= 900") == [
        (970, world.own)]


def test_giving_a_row_away_through_execute(text_world):
    """UPDATE notes SET owner_id = $1 prepared, then EXECUTE upd(7, 900): the caller's note moves to user 7."""
    w = text_world

    def run(raw, table):
        msgs = batch(raw, parse_msg(f"UPDATE {table} SET owner_id = $1 WHERE id = $2", "upd"), sync_msg())
        assert codes(msgs) == [], msgs
        return ([e["C"] for e in query(raw, "EXECUTE upd(7, 900)")["errors"]],
                [e["C"] for e in query(raw, "EXPLAIN ANALYZE EXECUTE upd(7, 900)")["errors"]],
                codes(batch(raw, bind_msg([b"7", b"900"], stmt="upd"), execute_msg(), sync_msg())))

    with w.tg_raw() as raw:
        assert run(raw, w.notes) == (["42501"], ["42501"], ["42501"])
    with w.rls_raw() as raw:
        assert run(raw, w.twin(w.notes)) == (["42501"], ["42501"], ["42501"])  # WITH CHECK on owner_id
    with w.tg() as conn:
        conn.execute(f"UPDATE {w.notes} SET body = %s WHERE id = %s", ("psycopg", 900), prepare=True)
        conn.execute(f"UPDATE {w.notes} SET owner_id = %s WHERE id = %s", (ME_USER, 900), prepare=True)
        name = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name").fetchall()][-1]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"EXECUTE {name}(7, 900)")
    assert admin_rows(w.pg, f"SELECT owner_id, body FROM {w.notes} WHERE id = 900") == [(ME_USER, "psycopg")]


def test_statement_names_tenantgate_never_saw_prepared(text_world):
    """Unknown, deallocated and discarded names are refused; names PREPAREd in SQL work, as in PostgreSQL."""
    w = text_world
    with w.tg_raw() as raw:
        r = query(raw, "EXECUTE nosuch(1)")
        assert [e["C"] for e in r["errors"]] == ["42501"]
        # A checkless statement prepared with SQL runs, also through the extended protocol.
        r = query(raw, f"PREPARE sel AS SELECT count(*) FROM {w.users}; EXECUTE sel")
        assert r["errors"] == [] and r["rows"] == [["1"]], r
        msgs = batch(raw, parse_msg("EXECUTE sel"), bind_msg(), execute_msg(), sync_msg())
        assert codes(msgs) == [] and [m for m in msgs if m[0] == b"D"], msgs
        # PREPARE is not transactional: a rolled-back PREPARE still exists, and is still known.
        assert query(raw, "BEGIN; PREPARE kept AS SELECT 2; ROLLBACK")["errors"] == []
        assert query(raw, "EXECUTE kept")["rows"] == [["2"]]
        for forget in ("DEALLOCATE sel", "DEALLOCATE PREPARE kept"):
            assert query(raw, forget)["errors"] == []
        for name in ("sel", "kept"):
            assert [e["C"] for e in query(raw, f"EXECUTE {name}")["errors"]] == ["42501"]
        assert query(raw, "PREPARE a AS SELECT 1; PREPARE b AS SELECT 2; DEALLOCATE ALL")["errors"] == []
        assert [e["C"] for e in query(raw, "EXECUTE a")["errors"]] == ["42501"]
        assert query(raw, "PREPARE c AS SELECT 3")["errors"] == []
        assert query(raw, "DISCARD ALL")["errors"] == []
        assert [e["C"] for e in query(raw, "EXECUTE c")["errors"]] == ["42501"]
        # Close of a protocol statement forgets it as well.
        assert codes(batch(raw, parse_msg("SELECT 4", "four"), sync_msg())) == []
        assert query(raw, "EXECUTE four")["rows"] == [["4"]]
        assert codes(batch(raw, harness.message(b"C", b"Sfour\0"), sync_msg())) == []
        assert [e["C"] for e in query(raw, "EXECUTE four")["errors"]] == ["42501"]
        # SQL PREPARE of a statement with a checked parameter was already refused.
        r = query(raw, f"PREPARE ins AS INSERT INTO {w.users} (id, tenant_id, email) VALUES ($1, $2, $3)")
        assert [e["C"] for e in r["errors"]] == ["0A000"]
    with w.rls_raw() as raw:
        # PostgreSQL: unknown names are errors of their own; the rest behaves as above.
        assert [e["C"] for e in query(raw, "EXECUTE nosuch(1)")["errors"]] == ["26000"]
        assert query(raw, "BEGIN; PREPARE kept AS SELECT 2; ROLLBACK")["errors"] == []
        assert query(raw, "EXECUTE kept")["rows"] == [["2"]]
        r = query(raw, f"PREPARE ins AS INSERT INTO {w.twin(w.users)} (id, tenant_id, email) VALUES ($1, $2, $3)")
        assert r["errors"] == []
        assert [e["C"] for e in query(raw, "EXECUTE ins(980, 'globex', 'x')")["errors"]] == ["42501"]


def test_redefining_a_name_that_a_parsed_execute_runs(text_world):
    """Parse("e", "EXECUTE p(...)") while p is harmless; then Close p and Parse p as the checked INSERT.

    The EXECUTE runs when e's portal is executed, after the redefinition: a name a
    Parse'd statement EXECUTEs can no longer be given a checked statement.
    """
    w = text_world

    def run(raw, table):
        out = []
        out.append(codes(batch(raw, parse_msg("SELECT 1", "p"), sync_msg())))
        out.append(codes(batch(raw, parse_msg("EXECUTE p(981, 'globex', 'x')", "e"), sync_msg())))
        out.append(codes(batch(raw, harness.message(b"C", b"Sp\0"),
                               parse_msg(f"INSERT INTO {table} (id, tenant_id, email) VALUES ($1, $2, $3)", "p"),
                               sync_msg())))
        out.append(codes(batch(raw, bind_msg(stmt="e"), execute_msg(), sync_msg())))
        return out

    with w.tg_raw() as raw:
        # The checked Parse is refused; e then finds no p.
        assert run(raw, w.users) == [[], [], ["42501"], ["26000"]]
    with w.rls_raw() as raw:
        # PostgreSQL runs the INSERT; RLS refuses the row.
        assert run(raw, w.twin(w.users)) == [[], [], [], ["42501"]]


# --------------------------------------------------------------------------
# Type confusion: the server infers the checked parameter's type elsewhere.

CONTEXTS = {
    # Each statement writes $2 into tenant_id and also uses it where PostgreSQL would infer another type.
    "cte int4": "WITH x AS (SELECT $2::int4 AS v) INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, $3)",
    "cte int4 used": "WITH x AS (SELECT $2::int4 AS v) INSERT INTO {t} (id, tenant_id, email) "
                     "VALUES ($1, $2, (SELECT $3 || v::text FROM x))",
    "cte float8": "WITH x AS (SELECT $2::float8 AS v) INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, $3)",
    "cte tsvector": "WITH x AS (SELECT $2::tsvector AS v) INSERT INTO {t} (id, tenant_id, email) "
                    "VALUES ($1, $2, $3)",
    "subquery": "INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, (SELECT $3 WHERE $2 > 0))",
    "case": "INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, CASE WHEN $2 = 1 THEN $3 ELSE $3 END)",
    "coalesce": "WITH x AS (SELECT COALESCE($2, 0) AS v) INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, $3)",
    "union": "WITH x AS (SELECT $2 AS v UNION SELECT 1) INSERT INTO {t} (id, tenant_id, email) VALUES ($1, $2, $3)",
    "function argument": "WITH x AS (SELECT chr($2) AS v) INSERT INTO {t} (id, tenant_id, email) "
                         "VALUES ($1, $2, $3)",
}


def _bind_value(kind: str, value: str, binary: bool, attack: bool) -> bytes:
    """The caller's own tenant as Bind bytes; `attack` sends the bytes the issue used for each type."""
    if attack and binary and kind == "int":
        return struct.pack("!i", int(value))  # 4 bytes: an int4 to a server that inferred int4
    return encode(kind, value, binary)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("context", list(CONTEXTS))
def test_type_fixing_contexts(world, context, binary):
    """Refused or harmless: whatever runs stores exactly the caller's tenant."""
    sql = CONTEXTS[context]
    outcome = {}
    for who, table, connect in (("tenantgate", world.users, world.tg_raw),
                                ("rls", world.twin(world.users), world.rls_raw)):
        with connect() as raw:
            for attack in (False, True):
                row_id = 990 + attack
                msgs = batch(raw, parse_msg(sql.format(t=table)),
                             bind_msg([str(row_id).encode(), _bind_value(world.kind, world.own, binary, attack),
                                       b"ctx"], param_formats=[0, 1 if binary else 0, 0]),
                             execute_msg(), sync_msg())
                stored = admin_rows(world.pg, f"SELECT tenant_id::text FROM {table} WHERE id = %s", (row_id,))
                assert stored in ([], [(world.own,)]), f"{who}: {context} stored {stored}"
                outcome[(who, attack)] = (codes(msgs), stored)
                admin_rows(world.pg, f"DELETE FROM {table} WHERE id = %s AND tenant_id::text = %s",
                           (row_id, world.own))
        stored = world.foreign_rows(table)
        assert stored == [], f"{who}: {context} stored another tenant: {stored} ({outcome})"
    # The case: 'acme' in binary, read as int4 by a server that infers int4 from the CTE,
    # was stored as 1633906021. tenantgate declares $2 as text: the row holds 'acme' (the CTE is
    # never evaluated). RLS refuses the row 1633906021.
    if context == "cte int4" and binary and world.kind == "text":
        assert outcome[("tenantgate", True)] == ([], [("acme",)]), outcome
        assert outcome[("rls", True)] == (["42501"], []), outcome
    # Where the cast is evaluated, the text 'acme' is no int4: an error, nothing stored.
    if context == "cte int4 used" and world.kind == "text":
        assert outcome[("tenantgate", True)] == (["22P02"], []), outcome
    # The float8 case: an int8 tenant 1 in binary, read as float8 (4.9e-324), stored 0.
    if context == "cte float8" and binary and world.kind == "int":
        assert outcome[("tenantgate", False)] == ([], [("1",)]), outcome
        assert outcome[("rls", False)] == (["42501"], []), outcome


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_owner_parameter_read_as_float8(text_world, binary):
    """The issue's owner case: the owner 42 bound as int8, read as float8 by an inferring server, stored 0."""
    w = text_world
    sql = ("WITH x AS (SELECT $3::float8 AS v) INSERT INTO {t} (id, tenant_id, owner_id, body) "
           "VALUES ($1, $2, $3, $4)")
    owner = struct.pack("!q", ME_USER) if binary else str(ME_USER).encode()
    got = {}
    for who, table, connect in (("tenantgate", w.notes, w.tg_raw), ("rls", w.twin(w.notes), w.rls_raw)):
        with connect() as raw:
            msgs = batch(raw, parse_msg(sql.format(t=table)),
                         bind_msg([b"901", b"acme", owner, b"f8"], param_formats=[0, 0, 1 if binary else 0, 0]),
                         execute_msg(), sync_msg())
            got[who] = (codes(msgs), admin_rows(w.pg, f"SELECT owner_id FROM {table} WHERE id = 901"))
    # tenantgate declares $3 as int8: the row holds 42. PostgreSQL alone infers float8: in binary the
    # bytes of 42 are 2.1e-322, stored as 0, which RLS refuses; in text '42' is 42 either way.
    assert got["tenantgate"] == ([], [(ME_USER,)]), got
    assert got["rls"] == ((["42501"], []) if binary else ([], [(ME_USER,)])), got


def test_declared_types_in_parse_stay_checked(text_world):
    """A client that declares the checked parameter as another type is refused at Parse."""
    w = text_world
    with w.tg_raw() as raw:
        for oid in (23, 20, 701, 3614, 1042, 17):  # int4, int8, float8, tsvector, bpchar, bytea
            msgs = batch(raw, parse_msg(f"INSERT INTO {w.users} (id, tenant_id, email) VALUES ($1, $2, $3)",
                                        param_types=[0, oid]), sync_msg())
            assert codes(msgs) == ["42501"], (oid, msgs)
        # The type tenantgate declares is what Describe reports.
        msgs = batch(raw, parse_msg(f"INSERT INTO {w.users} (id, tenant_id, email) VALUES ($1, $2, $3)", "d"),
                     harness.message(b"D", b"Sd\0"), sync_msg())
        desc = [p for k, p in msgs if k == b"t"]
        assert desc, msgs
        n = struct.unpack("!H", desc[0][:2])[0]
        oids = struct.unpack(f"!{n}I", desc[0][2:2 + 4 * n])
        assert oids == (23, 25, 25), oids  # id int4 inferred, tenant_id declared text, email inferred


# --------------------------------------------------------------------------
# Sequences.


def test_setval_refused_nextval_allowed(text_world):
    w = text_world
    seq, twin_seq = f"{w.seqt}_id_seq", f"{w.seqt}_rls_id_seq"
    attempts = [f"SELECT setval('{{s}}', 1000)", f"SELECT pg_catalog.setval('{{s}}', 1000, false)",
                f"SELECT setval('{{s}}'::regclass, 1000) FROM {{t}}", f"SELECT 1 WHERE setval('{{s}}', 1000) > 0"]
    with w.tg() as conn:
        assert conn.execute(f"SELECT nextval('{seq}')").fetchone() == (1,)
        conn.execute(f"INSERT INTO {w.seqt} (body) VALUES ('a')")
        assert conn.execute(f"SELECT currval('{seq}')").fetchone() == (2,)
        for sql in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.format(s=seq, t=w.seqt))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # extended protocol
                conn.execute(sql.format(s=seq, t=w.seqt).replace("1000", "%s"), (1000,))
    with w.rls() as conn:
        assert conn.execute(f"SELECT nextval('{twin_seq}')").fetchone() == (1,)
        conn.execute(f"INSERT INTO {w.twin(w.seqt)} (tenant_id, body) VALUES ('acme', 'a')")
        for sql in attempts:
            # RLS set-ups: a role without UPDATE on the sequence gets "permission denied for sequence".
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.format(s=twin_seq, t=w.twin(w.seqt)))
    assert admin_rows(w.pg, f"SELECT last_value FROM {seq}") == [(2,)]
    assert admin_rows(w.pg, f"SELECT tenant_id, body FROM {w.seqt}") == [("acme", "a")]


# --------------------------------------------------------------------------
# A refused Parse of the unnamed statement.


def test_refused_unnamed_parse_drops_the_unnamed_statement(text_world):
    w = text_world
    with w.tg_raw() as raw:
        assert codes(batch(raw, parse_msg("SELECT 'old unnamed'"), sync_msg())) == []
        refused = parse_msg(f"INSERT INTO {w.users} (id, tenant_id, email) VALUES (985, 'globex', 'x')")
        msgs = batch(raw, refused, sync_msg())
        assert [k for k, _ in msgs] == [b"E", b"Z"] and codes(msgs) == ["42501"], msgs
        # As after PostgreSQL's own failed Parse, there is no unnamed statement left to bind.
        msgs = batch(raw, bind_msg(), execute_msg(), sync_msg())
        assert codes(msgs) == ["26000"], msgs
        assert not [m for m in msgs if m[0] == b"D"]
        # In one batch: exactly one error, the rest skipped until Sync.
        assert codes(batch(raw, parse_msg("SELECT 'old unnamed'"), sync_msg())) == []
        msgs = batch(raw, refused, bind_msg(), execute_msg(), sync_msg())
        assert [k for k, _ in msgs] == [b"E", b"Z"] and codes(msgs) == ["42501"], msgs
        msgs = batch(raw, bind_msg(), execute_msg(), sync_msg())
        assert codes(msgs) == ["26000"], msgs
        # A refused named Parse leaves the unnamed statement alone, as PostgreSQL does.
        assert codes(batch(raw, parse_msg("SELECT 'old unnamed'"), sync_msg())) == []
        named = parse_msg(f"INSERT INTO {w.users} (id, tenant_id, email) VALUES (986, 'globex', 'x')", "named")
        assert codes(batch(raw, named, sync_msg())) == ["42501"]
        msgs = batch(raw, bind_msg(), execute_msg(), sync_msg())
        assert codes(msgs) == [] and [m for m in msgs if m[0] == b"D"], msgs
    with w.rls_raw() as raw:
        # PostgreSQL: a Parse of the unnamed statement that fails still drops the old one.
        assert codes(batch(raw, parse_msg("SELECT 'old unnamed'"), sync_msg())) == []
        assert codes(batch(raw, parse_msg("SELECT * FROM no_such_table_xe"), sync_msg())) == ["42P01"]
        assert codes(batch(raw, bind_msg(), execute_msg(), sync_msg())) == ["26000"]
