"""Regression tests for bypasses found in review, each driven over a raw socket
as an attacker would: Bind checks outliving a skipped Parse, parameter types
that change the stored value, COPY rows that PostgreSQL splits differently from
the validator, and unbounded bookkeeping."""

import struct

import pytest

import harness

TABLE = "rv_users"
POLICY = f'''default_action = "deny"
search_path = ["public"]
[tables."public.{TABLE}"]
scope = "tenant"
'''


@pytest.fixture(scope="module")
def rv_table(pg):
    pg.psql(f"DROP TABLE IF EXISTS {TABLE}; "
            f"CREATE TABLE {TABLE} (id serial PRIMARY KEY, tenant_id text NOT NULL, name text);"
            f"INSERT INTO {TABLE} (tenant_id, name) VALUES ('acme', 'a1'), ('globex', 'g1');"
            f"GRANT ALL ON {TABLE} TO PUBLIC; GRANT ALL ON SEQUENCE {TABLE}_id_seq TO PUBLIC;")
    return TABLE


@pytest.fixture
def rv_proxy(start_proxy, rv_table):
    proxy = start_proxy(start=False)
    (proxy.dir / "policy.toml").write_text(POLICY)
    return proxy.start()


def connect(proxy, tenant="acme"):
    conn = proxy.raw()
    result = conn.startup(proxy.startup_params(user="app", tenant=tenant),
                          harness.PRINCIPALS["app"]["password"])
    assert result.ok, result.error
    return conn


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def parse(name, sql, types=()):
    return harness.message(b"P", cstr(name) + cstr(sql) + struct.pack("!H", len(types)) +
                           b"".join(struct.pack("!I", t) for t in types))


def bind(stmt, params, formats=()):
    body = cstr("") + cstr(stmt) + struct.pack("!H", len(formats))
    body += b"".join(struct.pack("!h", f) for f in formats) + struct.pack("!H", len(params))
    for p in params:
        p = p.encode() if isinstance(p, str) else p
        body += struct.pack("!i", len(p)) + p
    return harness.message(b"B", body + struct.pack("!H", 0))


EXECUTE = harness.message(b"E", cstr("") + struct.pack("!I", 0))
SYNC = harness.message(b"S")


def replies(conn, ready=1):
    """Messages up to the `ready`-th ReadyForQuery: (type, SQLSTATE or None)."""
    out = []
    while ready:
        msg = conn.recv_msg()
        if msg is None:
            out.append(("EOF", None))
            break
        kind, payload = msg
        code = harness.parse_error_fields(payload).get("C") if kind == b"E" else None
        out.append((kind.decode(), code))
        ready -= kind == b"Z"
    return out


def tenants_of(pg, name):
    return pg.psql(f"SELECT tenant_id FROM {TABLE} WHERE name = '{name}'").split()


INSERT = f"INSERT INTO {TABLE} (tenant_id, name) VALUES ($1, $2)"


def test_failed_reparse_in_an_earlier_batch_does_not_drop_bind_checks(rv_proxy, pg):
    conn = connect(rv_proxy)
    conn.send(parse("s", INSERT) + SYNC)
    assert [kind for kind, _ in replies(conn)] == ["1", "Z"]
    # Re-parsing "s" fails at the backend (it exists), but its answer is not
    # back when the next batch binds "s": the INSERT's check must still apply.
    conn.send(parse("s", "SELECT 1") + SYNC + bind("s", ["globex", "pipelined"]) + EXECUTE + SYNC)
    first, second = replies(conn), replies(conn)
    assert ("E", "42P05") in first
    assert ("E", "42501") in second, second
    assert tenants_of(pg, "pipelined") == []


def test_query_inside_an_unsynced_extended_batch_ends_the_session(rv_proxy, pg):
    conn = connect(rv_proxy)
    # A backend skipping to Sync would ignore the Query without answering it.
    conn.send(parse("", "SELECT * FROM secret_table") + harness.query_message("SELECT 1") + SYNC)
    msgs, closed = conn.read_until_closed(timeout=5)
    codes = [harness.parse_error_fields(p).get("C") for k, p in msgs if k == b"E"]
    assert "08P01" in codes and closed


@pytest.mark.parametrize("types,values,formats", [
    ([18, 0], ["acme", "char"], ()),             # "char" keeps only the first letter
    ([23, 0], [b"acme", "int4"], (1, 0)),         # the bytes of 'acme' as an integer
    ([17, 0], [b"acme", "bytea"], (1, 0)),        # bytea stored as \x61636d65
])
def test_declared_parameter_type_must_be_the_identity_type(rv_proxy, pg, types, values, formats):
    conn = connect(rv_proxy)
    conn.send(parse("", INSERT, types) + bind("", values, formats) + EXECUTE + SYNC)
    assert ("E", "42501") in replies(conn)
    assert tenants_of(pg, values[1]) == []
    # The identity's own type is fine.
    ok_name = f"{values[1]}-typed-ok"
    conn.send(parse("", INSERT, [25, 0]) + bind("", ["acme", ok_name]) + EXECUTE + SYNC)
    assert not [m for m in replies(conn) if m[0] == "E"]
    assert tenants_of(pg, ok_name) == ["acme"]


@pytest.mark.parametrize("sql", [
    f"INSERT INTO {TABLE} (tenant_id, name) VALUES ($1::int8, $2)",
    f"INSERT INTO {TABLE} (tenant_id, name) VALUES ('01'::int8, $2)",
])
def test_cast_across_type_families_is_refused(rv_proxy, pg, sql):
    conn = connect(rv_proxy, tenant="01")
    params = ["01", "cast"] if "$1" in sql else ["cast"]
    conn.send(parse("", sql.replace("$2", f"${len(params)}")) + bind("", params) + EXECUTE + SYNC)
    assert ("E", "42501") in replies(conn)
    assert tenants_of(pg, "cast") == []


def copy_in(conn, sql, data):
    conn.send(harness.query_message(sql))
    kind, _ = conn.recv_msg()
    assert kind == b"G"
    conn.send(harness.message(b"d", data) + harness.message(b"c"))
    return replies(conn)


def test_copy_header_with_bare_carriage_returns_is_refused(rv_proxy, pg):
    conn = connect(rv_proxy)
    for options, data in [("HEADER true", b"hdr\rcr-text\tglobex\r"),
                          ("FORMAT csv, HEADER true", b"hdr\rcr-csv,globex\r")]:
        got = copy_in(conn, f"COPY {TABLE} (name, tenant_id) FROM STDIN WITH ({options})", data)
        assert ("E", "42501") in got, got
    assert tenants_of(pg, "cr-text") == [] and tenants_of(pg, "cr-csv") == []


def test_copy_end_marker_inside_a_line_is_refused(rv_proxy, pg):
    conn = connect(rv_proxy, tenant="acme.")
    got = copy_in(conn, f"COPY {TABLE} (name, tenant_id) FROM STDIN",
                  b"legit\tacme.\nsneaky\tacme\\.\n")
    assert ("E", "42501") in got, got
    assert tenants_of(pg, "sneaky") == [] and tenants_of(pg, "legit") == []


def test_unanswered_messages_are_bounded(rv_proxy):
    # A statement name longer than PostgreSQL keeps (63 bytes) is refused
    # before anything is recorded for it.
    conn = connect(rv_proxy)
    conn.send(parse("n" * 100_000, "SELECT 1") + SYNC)
    assert replies(conn) == [("E", "42501"), ("Z", None)]
    conn = connect(rv_proxy)
    conn.send(parse("", "SELECT * FROM secret_table") +
              b"".join(parse("x", "SELECT 1") for _ in range(70_000)))
    msgs, closed = conn.read_until_closed(timeout=20)
    codes = [harness.parse_error_fields(p).get("C") for k, p in msgs if k == b"E"]
    assert "54000" in codes and closed


def test_reload_that_changes_search_path_ends_open_sessions(rv_proxy):
    # The backend session's search_path was pinned at login: after a reload
    # that changes it, the rewriter and the backend would resolve names
    # differently, so the open session ends and a new one gets the new path.
    import signal

    conn = connect(rv_proxy)
    # Only acme's seed row, whatever other tests inserted for acme.
    assert conn.simple_query(f"SELECT name FROM {TABLE} WHERE name IN ('a1', 'g1')")["rows"] == [["a1"]]
    (rv_proxy.dir / "policy.toml").write_text(
        POLICY.replace('search_path = ["public"]', 'search_path = ["public", "pg_temp"]'))
    rv_proxy.signal(signal.SIGHUP)
    harness.wait_until(lambda: "policy reloaded" in rv_proxy.log(), 5, "the reload in the log")
    conn.send(harness.query_message(f"SELECT count(*) FROM {TABLE}"))
    msgs, closed = conn.read_until_closed(timeout=5)
    codes = [harness.parse_error_fields(p).get("C") for k, p in msgs if k == b"E"]
    assert codes == ["57P01"] and closed
    fresh = connect(rv_proxy)
    assert fresh.simple_query("SHOW search_path")["rows"] == [["public,pg_temp"]]
