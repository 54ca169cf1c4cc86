"""Shared helpers for the enforcement, attack, ORM, Flask and pgbench integration tests.

Everything here builds on harness.py and conftest.py (not edited): seeded
tenant tables on the session PostgreSQL, policy files written into a proxy's
directory before it starts, client connections with an identity, superuser
checks that bypass the proxy, and a few raw extended-protocol messages.
"""

from __future__ import annotations

import struct
import threading
import uuid
from typing import Any, Iterable

import psycopg2
import psycopg2.extensions
import pytest

import harness

# The tenants and users of the seeded tables. The default identity of
# harness.Proxy.dsn() is tenant "acme", user 42.
TENANTS = ("acme", "globex", "initech")
ME_TENANT, ME_USER = "acme", 42
OTHER_USER = 7

_created: set[tuple[str, str, str]] = set()
_created_lock = threading.Lock()


def once(pg: harness.PgServer, db: str, key: str, sql: str) -> None:
    """Runs setup SQL once per PostgreSQL server (session) and database."""
    with _created_lock:
        k = (str(pg.dir), db, key)
        if k in _created:
            return
        pg.psql(sql, db=db)
        _created.add(k)


def ensure_database(pg: harness.PgServer, db: str) -> None:
    with _created_lock:
        k = (str(pg.dir), "postgres", "db:" + db)
        if k in _created:
            return
        exists = pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'", db="postgres")
        if not exists:
            pg.psql(f"CREATE DATABASE {db}", db="postgres")
        pg.psql("GRANT ALL ON SCHEMA public TO PUBLIC", db=db)
        _created.add(k)


# --------------------------------------------------------------------------
# Seeded tables. Each row: (id, tenant, owner, body). Ids interleave tenants so
# that walking the ids crosses tenants at every step.

SEED_ROWS = [
    (i, TENANTS[(i - 1) % 3], ME_USER if i % 2 == 0 else OTHER_USER, f"row-{i}-{TENANTS[(i - 1) % 3]}")
    for i in range(1, 19)
]


def rows_for(tenant: str, owner: int | None = None) -> list[tuple]:
    return [r for r in SEED_ROWS if r[1] == tenant and (owner is None or r[2] == owner)]


def ids_for(tenant: str, owner: int | None = None) -> list[int]:
    return [r[0] for r in rows_for(tenant, owner)]


def create_seeded_table(pg: harness.PgServer, prefix: str = "enf", db: str = harness.DATABASE,
                        tenant_type: str = "text") -> str:
    """A fresh table (id, tenant_id, owner_id, body) with SEED_ROWS, granted to PUBLIC.

    tenant_type "int" maps the tenants to 1, 2, 3.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    col_type = "int" if tenant_type == "int" else "text"
    values = ",".join(
        f"({i}, {TENANTS.index(t) + 1 if tenant_type == 'int' else repr(t)}, {o}, '{b}')"
        for i, t, o, b in SEED_ROWS)
    pg.psql(f"CREATE TABLE {name} (id int PRIMARY KEY, tenant_id {col_type} NOT NULL, "
            f"owner_id int NOT NULL, body text);"
            f"INSERT INTO {name} VALUES {values};"
            f"GRANT ALL ON {name} TO PUBLIC", db=db)
    return name


def drop_tables(pg: harness.PgServer, names: Iterable[str], db: str = harness.DATABASE) -> None:
    names = list(names)
    if names:
        pg.psql("DROP TABLE IF EXISTS " + ", ".join(names) + " CASCADE", db=db)


# --------------------------------------------------------------------------
# Policies.


def _toml_key(name: str) -> str:
    qualified = name if "." in name else f"public.{name}"
    if '"' in qualified:
        return "'" + qualified + "'"
    return '"' + qualified + '"'


def policy_text(tables: dict[str, Any], default_action: str = "deny", functions_deny: list[str] | None = None,
                extra: str = "") -> str:
    """policy.toml text. tables maps a name to a scope string or a dict of table keys."""
    lines = [f'default_action = "{default_action}"', 'search_path = ["public"]', "",
             "[defaults]", 'tenant_column = "tenant_id"', 'owner_column = "owner_id"', ""]
    for name, spec in tables.items():
        spec = {"scope": spec} if isinstance(spec, str) else dict(spec)
        lines.append(f"[tables.{_toml_key(name)}]")
        lines += [f"{k} = {harness._toml_value(v)}" for k, v in spec.items()]
        lines.append("")
    if functions_deny:
        lines += ["[functions]", f"deny = {harness._toml_value(functions_deny)}", ""]
    return "\n".join(lines) + extra


def start_with_policy(start_proxy, policy: str, overrides: dict | None = None) -> harness.Proxy:
    proxy = start_proxy(overrides, start=False)
    (proxy.dir / "policy.toml").write_text(policy)
    return proxy.start()


# --------------------------------------------------------------------------
# Connections.


def pg2(proxy: harness.Proxy, tenant: str | None = ME_TENANT, user_id: Any = ME_USER, user: str = "app",
        autocommit: bool = True, **kw) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(proxy.dsn(user=user, tenant=tenant, user_id=None if user_id is None else str(user_id),
                                      **kw))
    conn.autocommit = autocommit
    return conn


def pg3(proxy: harness.Proxy, tenant: str | None = ME_TENANT, user_id: Any = ME_USER, user: str = "app",
        autocommit: bool = True, dbname: str = harness.DATABASE, **kw):
    import psycopg
    return psycopg.connect(proxy.dsn(user=user, tenant=tenant, user_id=None if user_id is None else str(user_id),
                                     dbname=dbname),
                           autocommit=autocommit, **kw)


def admin_rows(pg: harness.PgServer, sql: str, params: Any = None, db: str = harness.DATABASE) -> list[tuple]:
    """Runs a query as the superuser directly on PostgreSQL (no proxy)."""
    with psycopg2.connect(pg.admin_dsn(db)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def sqlstate(exc: BaseException) -> str | None:
    """SQLSTATE of a psycopg2 or psycopg 3 error (also when wrapped by SQLAlchemy)."""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        exc = orig
    code = getattr(exc, "pgcode", None)
    if code:
        return code
    diag = getattr(exc, "diag", None)
    return getattr(diag, "sqlstate", None)


def proxy_serves(proxy: harness.Proxy) -> bool:
    """The proxy process is alive and answers a fresh connection."""
    if proxy.proc is None or proxy.proc.poll() is not None:
        return False
    conn = pg2(proxy)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Extended-protocol messages (PostgreSQL protocol, "Message Formats").


def parse_msg(sql: str, name: str = "", param_types: Iterable[int] = ()) -> bytes:
    types = list(param_types)
    body = name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", len(types))
    body += b"".join(struct.pack("!I", t) for t in types)
    return harness.message(b"P", body)


def bind_msg(params: Iterable[bytes | None] = (), portal: str = "", stmt: str = "",
             param_formats: Iterable[int] = (), result_formats: Iterable[int] = ()) -> bytes:
    params = list(params)
    pf, rf = list(param_formats), list(result_formats)
    body = portal.encode() + b"\0" + stmt.encode() + b"\0"
    body += struct.pack("!H", len(pf)) + b"".join(struct.pack("!H", f) for f in pf)
    body += struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    body += struct.pack("!H", len(rf)) + b"".join(struct.pack("!H", f) for f in rf)
    return harness.message(b"B", body)


def describe_msg(kind: bytes = b"S", name: str = "") -> bytes:
    return harness.message(b"D", kind + name.encode() + b"\0")


def execute_msg(portal: str = "", max_rows: int = 0) -> bytes:
    return harness.message(b"E", portal.encode() + b"\0" + struct.pack("!I", max_rows))


def sync_msg() -> bytes:
    return harness.message(b"S")


def read_until_ready(raw: harness.RawConn, count: int = 1) -> list[tuple[bytes, bytes]]:
    """Messages up to and including the count-th ReadyForQuery."""
    out = []
    while count:
        m = raw.recv_msg()
        if m is None:
            raise ConnectionError(f"connection closed; got {[k for k, _ in out]}")
        out.append(m)
        if m[0] == b"Z":
            count -= 1
    return out


def data_rows(msgs: list[tuple[bytes, bytes]]) -> list[list[str | None]]:
    return [harness.parse_data_row(payload) for kind, payload in msgs if kind == b"D"]


def errors(msgs: list[tuple[bytes, bytes]]) -> list[dict]:
    return [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]


# --------------------------------------------------------------------------
# Fixtures (import them into a test module to use them).

@pytest.fixture
def seeded(pg):
    """seeded(prefix="enf", tenant_type="text") -> a fresh seeded table name, dropped after the test."""
    made: list[str] = []

    def make(prefix: str = "enf", tenant_type: str = "text") -> str:
        name = create_seeded_table(pg, prefix=prefix, tenant_type=tenant_type)
        made.append(name)
        return name

    yield make
    drop_tables(pg, made)


def int_tenant_overrides(extra: dict | None = None) -> dict:
    """Config overrides for identity.tenant_type = "int" (the harness's "limited" principal claims text tenants)."""
    principals = {k: v for k, v in harness.PRINCIPALS.items() if k != "limited"}
    out = {"identity": {"tenant_type": "int"}, "principals": harness.principal_entries("scram", principals)}
    out.update(extra or {})
    return out
