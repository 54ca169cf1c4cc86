"""Row policies over the wire: writes of a policy table answer as they do under row-level security.

An INSERT or UPDATE of a table with row policies reaches the backend as `WITH tg_written AS (...) SELECT ...`
(the check runs in the statement). tenantgate gives the client the reply of the statement it wrote: the command
tag `INSERT 0 n` / `UPDATE n`, no rows (and NoData for Describe) without RETURNING, and a row that fails a check
as row-level security reports it (42501 `new row violates row-level security policy for table "t"`).

The oracle: every client runs the same statements twice, through tenantgate against public.<t> under a
tenantgate policy, and directly on PostgreSQL as the non-superuser role `app` against oracle.<t> (the same
relation name, FORCE ROW LEVEL SECURITY, the same policy as CREATE POLICY over current_setting). SQLSTATE,
message, command tag, rowcount, rows and the table's contents afterwards must be equal, and are also checked
against the values PostgreSQL documents, so that two equally wrong sides cannot pass.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid

import psycopg2
import pytest

import harness
from enforcement_support import (bind_msg, describe_msg, execute_msg, parse_msg, read_until_ready,
                                 start_with_policy, sync_msg)

ME_TENANT, ME_USER = "acme", 42
# (id, tenant, owner, body). Row 2 is acme's but another owner's; row 3 another tenant's.
SEED = [(1, "acme", 42, "a1"), (2, "acme", 7, "a2"), (3, "globex", 42, "g3"), (4, "acme", 42, "a4")]
ORACLE_OPTIONS = f"-c search_path=oracle -c app.tenant={ME_TENANT} -c app.user={ME_USER}"
APP_PASSWORD = harness.PRINCIPALS["app"]["password"]


class Pair:
    """One table through tenantgate and its twin under row-level security."""

    def __init__(self, pg: harness.PgServer, proxy: harness.Proxy, name: str) -> None:
        self.pg, self.proxy, self.name = pg, proxy, name

    def dsn(self, side: str) -> str:
        if side == "proxy":
            return self.proxy.dsn()
        return harness.conninfo(host=self.pg.host, port=self.pg.port, user="app", password=APP_PASSWORD,
                                dbname=harness.DATABASE, options=ORACLE_OPTIONS, sslmode="disable",
                                connect_timeout=10)

    def contents(self, side: str) -> list[tuple]:
        schema = "public" if side == "proxy" else "oracle"
        out = self.pg.psql(f"SELECT id, tenant_id, owner_id, body FROM {schema}.{self.name} ORDER BY id")
        return [tuple(line.split("|")) for line in out.splitlines()]

    def raw(self, side: str) -> harness.RawConn:
        if side == "proxy":
            conn = self.proxy.raw()
            result = conn.startup(self.proxy.startup_params(), password=APP_PASSWORD)
        else:
            conn = harness.RawConn(self.pg.host, self.pg.port)
            result = conn.startup({"user": "app", "database": harness.DATABASE, "options": ORACLE_OPTIONS},
                                  password=APP_PASSWORD)
        assert result.ok, result.error
        return conn


def _policy(name: str) -> str:
    key = f'"public.{name}"'
    return (f'default_action = "deny"\nsearch_path = ["public"]\n\n[tables.{key}]\n\n'
            f"[[tables.{key}.policies]]\n"
            'name = "tenant"\n'
            'using = "tenant_id = tenantgate.tenant()"\n'
            'check = "tenant_id = tenantgate.tenant() AND owner_id = tenantgate.user_id()"\n')


@pytest.fixture
def pair(pg, start_proxy):
    name = f"rp_{uuid.uuid4().hex[:10]}"
    values = ",".join(f"({i}, '{t}', {o}, '{b}')" for i, t, o, b in SEED)
    columns = "(id int PRIMARY KEY, tenant_id text NOT NULL, owner_id int NOT NULL, body text)"
    pg.psql(f"CREATE SCHEMA IF NOT EXISTS oracle; GRANT USAGE ON SCHEMA oracle TO PUBLIC;"
            f"CREATE TABLE public.{name} {columns}; INSERT INTO public.{name} VALUES {values};"
            f"GRANT ALL ON public.{name} TO PUBLIC;"
            f"CREATE TABLE oracle.{name} {columns}; INSERT INTO oracle.{name} VALUES {values};"
            f"GRANT ALL ON oracle.{name} TO PUBLIC;"
            f"ALTER TABLE oracle.{name} ENABLE ROW LEVEL SECURITY;"
            f"ALTER TABLE oracle.{name} FORCE ROW LEVEL SECURITY;"
            f"CREATE POLICY tenant ON oracle.{name} USING (tenant_id = current_setting('app.tenant')) "
            f"WITH CHECK (tenant_id = current_setting('app.tenant') "
            f"AND owner_id = current_setting('app.user')::int)")
    proxy = start_with_policy(start_proxy, _policy(name))
    yield Pair(pg, proxy, name)
    pg.psql(f"DROP TABLE IF EXISTS public.{name}, oracle.{name}")


def rls_message(name: str, using: bool = False) -> str:
    middle = " (USING expression)" if using else ""
    return f'new row violates row-level security policy{middle} for table "{name}"'


# --------------------------------------------------------------------------
# psql: the whole transcript (tags, RETURNING rows, errors) must be the same.

def _psql(pair: Pair, side: str, script: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    return subprocess.run(["psql", "-X", "-d", pair.dsn(side), "-f", "-"], input=script, capture_output=True,
                          text=True, timeout=60, env=env)


def test_psql_transcript_matches_row_level_security(pair):
    t = pair.name
    script = "\n".join([
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (10, 'acme', 42, 'new');",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (11, 'acme', 42, 'r') RETURNING id, body;",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (14, 'acme', 42, 'x'), (15, 'acme', 42, 'y');",
        f"UPDATE {t} SET body = 'upd' WHERE owner_id = 42;",
        f"UPDATE {t} SET body = 'upd2' WHERE id = 1 RETURNING id, body;",
        f"UPDATE {t} SET body = 'none' WHERE id = 3;",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (12, 'acme', 7, 'bad');",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (13, 'globex', 42, 'bad');",
        f"UPDATE {t} SET owner_id = 7 WHERE id = 4;",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (1, 'acme', 42, 'dup') "
        "ON CONFLICT (id) DO UPDATE SET body = 'upserted';",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (3, 'acme', 42, 'dup') "
        "ON CONFLICT (id) DO UPDATE SET body = 'upserted';",
        f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (16, 'acme', 42, 'up') "
        "ON CONFLICT (id) DO UPDATE SET body = 'upserted' RETURNING id, body;",
        f"DELETE FROM {t} WHERE id = 10;",
        f"SELECT 1 AS one \\; INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (17, 'acme', 42, 'm');",
        "",
    ])
    oracle = _psql(pair, "oracle", script)
    proxy = _psql(pair, "proxy", script)
    assert oracle.returncode == 0, oracle.stderr
    assert proxy.stdout == oracle.stdout
    assert proxy.stderr == oracle.stderr
    # What PostgreSQL itself answers (so that the comparison is not between two equal mistakes).
    for tag in ("INSERT 0 1", "INSERT 0 2", "UPDATE 6", "UPDATE 1", "UPDATE 0", "DELETE 1"):
        assert f"\n{tag}\n" in "\n" + proxy.stdout, (tag, proxy.stdout)
    assert "SELECT" not in proxy.stdout
    assert proxy.stderr.count(f"ERROR:  {rls_message(t)}\n") == 3, proxy.stderr
    assert proxy.stderr.count(f"ERROR:  {rls_message(t, using=True)}\n") == 1, proxy.stderr
    assert "22P02" not in proxy.stderr and "tenantgate" not in proxy.stderr
    assert pair.contents("proxy") == pair.contents("oracle")


# --------------------------------------------------------------------------
# psycopg2 (simple protocol, client-side parameters): rowcount and description.

def _outcome(cur, sql: str, params=None) -> tuple:
    try:
        cur.execute(sql, params)
    except psycopg2.Error as e:
        return ("error", e.pgcode, e.diag.message_primary)
    rows = cur.fetchall() if cur.description is not None else None
    return ("ok", cur.rowcount, cur.description is None, rows, cur.statusmessage)


def _psycopg2_run(pair: Pair, side: str) -> list[tuple]:
    t = pair.name
    conn = psycopg2.connect(pair.dsn(side))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            out = [
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (%s, %s, %s, %s)",
                         (20, "acme", 42, "p1")),
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (21, 'acme', 42, 'a'), "
                              "(22, 'acme', 42, 'b')"),
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (23, 'acme', 42, 'r') "
                              "RETURNING id, body"),
                _outcome(cur, f"UPDATE {t} SET body = body || '!' WHERE owner_id = %s", (42,)),
                _outcome(cur, f"UPDATE {t} SET body = 'x' WHERE id = 3"),
                _outcome(cur, f"UPDATE {t} SET body = 'ret' WHERE id = 20 RETURNING id, body"),
                _outcome(cur, f"DELETE FROM {t} WHERE id = 21"),
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (24, 'acme', 7, 'bad')"),
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (25, 'acme', 42, 'ok'), "
                              "(26, 'globex', 42, 'bad')"),
                _outcome(cur, f"UPDATE {t} SET owner_id = 7 WHERE id = 20"),
                _outcome(cur, f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (27, 'acme', 42, 'm'); "
                              f"UPDATE {t} SET body = 'm2' WHERE id IN (27, 22)"),
            ]
    finally:
        conn.close()
    return out


def test_psycopg2_rowcount_and_errors_match_row_level_security(pair):
    oracle = _psycopg2_run(pair, "oracle")
    proxy = _psycopg2_run(pair, "proxy")
    assert proxy == oracle
    t = pair.name
    assert proxy[0] == ("ok", 1, True, None, "INSERT 0 1")
    assert proxy[1] == ("ok", 2, True, None, "INSERT 0 2")
    assert proxy[2] == ("ok", 1, False, [(23, "r")], "INSERT 0 1")
    assert proxy[3][:3] == ("ok", 6, True) and proxy[3][4] == "UPDATE 6"
    assert proxy[4] == ("ok", 0, True, None, "UPDATE 0")
    assert proxy[7] == ("error", "42501", rls_message(t))
    assert proxy[8] == ("error", "42501", rls_message(t))
    assert proxy[9] == ("error", "42501", rls_message(t))
    assert proxy[10] == ("ok", 2, True, None, "UPDATE 2")
    contents = pair.contents("proxy")
    assert contents == pair.contents("oracle")
    ids = [int(r[0]) for r in contents]
    assert 24 not in ids and 25 not in ids and 26 not in ids  # a failing statement writes nothing


# --------------------------------------------------------------------------
# psycopg 3 (extended protocol, server-side parameters, prepared statements, pipelines).

def _psycopg3_run(pair: Pair, side: str) -> list[tuple]:
    import psycopg
    t = pair.name
    ins = f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES (%s, %s, %s, %s)"
    out: list[tuple] = []

    def run(cur, sql, params=None, **kw):
        try:
            cur.execute(sql, params, **kw)
        except psycopg.Error as e:
            out.append(("error", e.sqlstate, e.diag.message_primary))
            return
        rows = cur.fetchall() if cur.description is not None else None
        out.append(("ok", cur.rowcount, cur.description is None, rows, cur.statusmessage))

    with psycopg.connect(pair.dsn(side), autocommit=True) as conn, conn.cursor() as cur:
        run(cur, ins, (30, "acme", 42, "p"))
        run(cur, ins + " RETURNING id, body", (31, "acme", 42, "r"))
        run(cur, f"UPDATE {t} SET body = %s WHERE id = %s", ("u", 30))
        run(cur, f"UPDATE {t} SET body = %s WHERE id = %s RETURNING id, body", ("u2", 31))
        # A statement prepared on the server and executed three times; the third row fails.
        for i, owner in ((32, 42), (33, 42), (34, 7)):
            run(cur, ins, (i, "acme", owner, "prep"), prepare=True)
        for i in (35, 36, 37):
            run(cur, ins + " RETURNING id", (i, "acme", 42, "prep-r"), prepare=True)
        run(cur, f"UPDATE {t} SET owner_id = %s WHERE id = %s", (7, 30))
        cur.executemany(ins, [(40, "acme", 42, "m1"), (41, "acme", 42, "m2"), (42, "acme", 42, "m3")])
        out.append(("executemany", cur.rowcount))
        try:
            cur.executemany(ins, [(43, "acme", 42, "m4"), (44, "globex", 42, "m5")])
            out.append(("executemany", cur.rowcount))
        except psycopg.Error as e:
            out.append(("error", e.sqlstate, e.diag.message_primary))
        # In a transaction: the error aborts it and nothing of it stays.
        try:
            with conn.transaction():
                cur.execute(ins, (45, "acme", 42, "tx"))
                out.append(("tx", cur.rowcount))
                cur.execute(ins, (46, "acme", 7, "tx-bad"))
        except psycopg.Error as e:
            out.append(("error", e.sqlstate, e.diag.message_primary))
    return out


def test_psycopg3_extended_protocol_matches_row_level_security(pair):
    oracle = _psycopg3_run(pair, "oracle")
    proxy = _psycopg3_run(pair, "proxy")
    assert proxy == oracle
    t = pair.name
    violation = ("error", "42501", rls_message(t))
    assert proxy[0] == ("ok", 1, True, None, "INSERT 0 1")
    assert proxy[1] == ("ok", 1, False, [(31, "r")], "INSERT 0 1")
    assert proxy[2] == ("ok", 1, True, None, "UPDATE 1")
    assert proxy[3] == ("ok", 1, False, [(31, "u2")], "UPDATE 1")
    assert proxy[4:7] == [("ok", 1, True, None, "INSERT 0 1")] * 2 + [violation]
    assert proxy[7:10] == [("ok", 1, False, [(i,)], "INSERT 0 1") for i in (35, 36, 37)]
    assert proxy[10] == violation
    assert proxy[11] == ("executemany", 3)
    assert proxy[12] == violation
    assert proxy[13:] == [("tx", 1), violation]
    contents = pair.contents("proxy")
    assert contents == pair.contents("oracle")
    assert not {34, 44, 45, 46} & {int(r[0]) for r in contents}


# --------------------------------------------------------------------------
# SQLAlchemy ORM: a flush checks the rowcount of every UPDATE and DELETE it runs.

def _orm_run(pair: Pair, side: str) -> list[tuple]:
    import sqlalchemy as sa
    from sqlalchemy import orm

    Base = orm.declarative_base()

    class Doc(Base):
        __tablename__ = pair.name
        id = sa.Column(sa.Integer, primary_key=True)
        tenant_id = sa.Column(sa.Text, nullable=False)
        owner_id = sa.Column(sa.Integer, nullable=False)
        body = sa.Column(sa.Text)

    dsn = pair.dsn(side)
    engine = sa.create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(dsn),
                              poolclass=sa.pool.NullPool)
    out: list[tuple] = []
    try:
        with orm.Session(engine) as session:
            session.add_all([Doc(id=50, tenant_id="acme", owner_id=42, body="orm"),
                             Doc(id=51, tenant_id="acme", owner_id=42, body="orm2")])
            session.commit()
            doc = session.get(Doc, 50)
            doc.body = "orm-updated"
            session.commit()  # UPDATE; a rowcount other than 1 raises StaleDataError
            session.delete(session.get(Doc, 51))
            session.commit()  # DELETE; rowcount checked too
            out.append(("ok", sorted((d.id, d.body) for d in session.query(Doc).filter(Doc.id >= 50))))
            session.add(Doc(id=52, tenant_id="acme", owner_id=7, body="orm-bad"))
            try:
                session.commit()
            except sa.exc.DBAPIError as e:
                out.append(("error", e.orig.pgcode, e.orig.diag.message_primary))
                session.rollback()
            mine = session.get(Doc, 1)
            mine.owner_id = 7
            try:
                session.commit()
            except sa.exc.DBAPIError as e:
                out.append(("error", e.orig.pgcode, e.orig.diag.message_primary))
                session.rollback()
    finally:
        engine.dispose()
    return out


def test_sqlalchemy_orm_flush_matches_row_level_security(pair):
    oracle = _orm_run(pair, "oracle")
    proxy = _orm_run(pair, "proxy")
    assert proxy == oracle
    violation = ("error", "42501", rls_message(pair.name))
    assert proxy == [("ok", [(50, "orm-updated")]), violation, violation]
    assert pair.contents("proxy") == pair.contents("oracle")


# --------------------------------------------------------------------------
# The extended protocol message by message: Describe gives NoData without RETURNING.

def _summary(msgs: list[tuple[bytes, bytes]]) -> list:
    """Messages as comparable values: tags, rows, errors, columns (name, type, from a table, attnum)."""
    out = []
    for kind, payload in msgs:
        if kind == b"C":
            out.append(("C", payload.rstrip(b"\0").decode()))
        elif kind == b"D":
            out.append(("D", harness.parse_data_row(payload)))
        elif kind == b"E":
            fields = harness.parse_error_fields(payload)
            out.append(("E", fields.get("C"), fields.get("M")))
        elif kind == b"T":
            (n,) = struct.unpack("!H", payload[:2])
            cols, i = [], 2
            for _ in range(n):
                end = payload.index(b"\0", i)
                name = payload[i:end].decode()
                table_oid, attnum, type_oid = struct.unpack("!IHI", payload[end + 1:end + 11])
                cols.append((name, type_oid, table_oid != 0, attnum))
                i = end + 19
            out.append(("T", cols))
        elif kind == b"t":
            out.append(("t", payload))
        elif kind in (b"N", b"S"):
            continue  # notices and parameter changes are not part of the reply
        else:
            out.append((kind.decode(),))
    return out


def _extended_run(pair: Pair, side: str) -> list[list]:
    t = pair.name
    ins = f"INSERT INTO {t} (id, tenant_id, owner_id, body) VALUES ($1, 'acme', $2, 'ext')"
    upd = f"UPDATE {t} SET body = $1 WHERE id = $2"
    conn = pair.raw(side)
    out = []
    try:
        def batch(*msgs: bytes) -> None:
            conn.send(b"".join(msgs) + sync_msg())
            out.append(_summary(read_until_ready(conn)))

        portal = (describe_msg(b"P"), execute_msg())
        batch(parse_msg(ins), bind_msg([b"60", b"42"]), *portal)
        batch(parse_msg(ins + " RETURNING id, body"), bind_msg([b"61", b"42"]), *portal)
        batch(parse_msg(upd), bind_msg([b"upd", b"60"]), *portal)
        batch(parse_msg(upd + " RETURNING id"), bind_msg([b"upd", b"61"]), *portal)
        batch(parse_msg(ins), bind_msg([b"62", b"7"]), *portal)
        # A named statement, described and then executed three times; the third row fails.
        batch(parse_msg(ins, name="ins3"), describe_msg(b"S", "ins3"))
        for i, owner in ((63, b"42"), (64, b"42"), (65, b"7")):
            batch(bind_msg([str(i).encode(), owner], stmt="ins3"), execute_msg())
        # Several statements in one batch, one of them a plain SELECT between the writes.
        batch(bind_msg([b"66", b"42"], stmt="ins3"), execute_msg(),
              parse_msg("SELECT 7 AS seven"), bind_msg(), *portal,
              bind_msg([b"67", b"42"], stmt="ins3"), execute_msg())
        # A row limit on a write that returns no rows.
        batch(bind_msg([b"68", b"42"], stmt="ins3"), execute_msg(max_rows=1))
    finally:
        conn.close()
    return out


def test_extended_protocol_replies_match_row_level_security(pair):
    oracle = _extended_run(pair, "oracle")
    proxy = _extended_run(pair, "proxy")
    assert proxy == oracle
    t = pair.name
    violation = ("E", "42501", rls_message(t))
    assert proxy[0] == [("1",), ("2",), ("n",), ("C", "INSERT 0 1"), ("Z",)]
    assert proxy[1] == [("1",), ("2",), ("T", [("id", 23, True, 1), ("body", 25, True, 4)]), ("D", ["61", "ext"]),
                        ("C", "INSERT 0 1"), ("Z",)]
    assert proxy[2] == [("1",), ("2",), ("n",), ("C", "UPDATE 1"), ("Z",)]
    assert proxy[3] == [("1",), ("2",), ("T", [("id", 23, True, 1)]), ("D", ["61"]), ("C", "UPDATE 1"), ("Z",)]
    assert proxy[4] == [("1",), ("2",), ("n",), violation, ("Z",)]
    assert [m[0] for m in proxy[5]] == ["1", "t", "n", "Z"]
    assert proxy[6] == proxy[7] == [("2",), ("C", "INSERT 0 1"), ("Z",)]
    assert proxy[8] == [("2",), violation, ("Z",)]
    assert proxy[9] == [("2",), ("C", "INSERT 0 1"), ("1",), ("2",), ("T", [("seven", 23, False, 0)]), ("D", ["7"]),
                        ("C", "SELECT 1"), ("2",), ("C", "INSERT 0 1"), ("Z",)]
    assert proxy[10] == [("2",), ("C", "INSERT 0 1"), ("Z",)]
    assert pair.contents("proxy") == pair.contents("oracle")
