"""Malformed and hostile input over raw sockets, limits, timeouts, unreachable backends
and clients that vanish."""

import os
import signal
import socket
import struct
import subprocess
import threading
import time

import psycopg2
import pytest

import harness

APP_PW = harness.PRINCIPALS["app"]["password"]


def expect_error_then_close(conn, states=("08P01",), timeout=5.0):
    msgs, closed = conn.read_until_closed(timeout)
    errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
    assert errors, f"no ErrorResponse; got {[k for k, _ in msgs]}, closed={closed}"
    assert errors[0].get("C") in states, errors[0]
    assert errors[0].get("S") in ("FATAL", "ERROR"), errors[0]
    assert closed, "connection still open after the error"
    assert [k for k, _ in msgs if k == b"Z"] == [], "ReadyForQuery after a fatal protocol error"
    return errors[0]


@pytest.fixture
def ready_result(proxy):
    """A raw, authenticated session with the default principal, and its start-up result."""
    c = proxy.raw()
    r = c.startup(proxy.startup_params(), APP_PW)
    assert r.ok, r.error
    yield c, r
    c.close()


@pytest.fixture
def ready(ready_result):
    return ready_result[0]


# --- start-up packet -----------------------------------------------------------

def test_garbage_startup_packet(proxy):
    with proxy.raw() as c:
        c.send(b"GET / HTTP/1.1\r\nHost: tenantgate\r\n\r\n")
        expect_error_then_close(c)


def test_startup_length_too_short(proxy):
    with proxy.raw() as c:
        c.send(struct.pack("!I", 4) + struct.pack("!I", harness.PROTOCOL_3))
        expect_error_then_close(c)


def test_startup_length_too_large_fails_without_waiting_for_body(proxy):
    with proxy.raw() as c:
        c.send(struct.pack("!II", 0x7FFFFFF0, harness.PROTOCOL_3) + b"user\0app\0")
        start = time.monotonic()
        expect_error_then_close(c, timeout=3.0)
        assert time.monotonic() - start < 3.0


def test_startup_missing_terminator(proxy):
    body = struct.pack("!I", harness.PROTOCOL_3) + b"user\0app\0database\0appdb"
    with proxy.raw() as c:
        c.send(struct.pack("!I", len(body) + 4) + body)
        expect_error_then_close(c)


def test_startup_unknown_protocol_version(proxy):
    with proxy.raw() as c:
        c.send(harness.startup_packet({"user": "app", "database": "appdb"}, protocol=0x00090000))
        expect_error_then_close(c, states=("08P01", "0A000"))


def test_startup_odd_parameter_list(proxy):
    # A name without a value.
    body = struct.pack("!I", harness.PROTOCOL_3) + b"user\0app\0orphan\0"
    with proxy.raw() as c:
        c.send(struct.pack("!I", len(body) + 4) + body)
        expect_error_then_close(c)


# --- after authentication ----------------------------------------------------------

def test_message_length_below_minimum(ready):
    ready.send(b"Q" + struct.pack("!I", 2))
    expect_error_then_close(ready)


def test_unknown_message_type(ready):
    ready.send(harness.message(b"\x01", b"junk"))
    expect_error_then_close(ready)


def test_query_without_terminator(ready):
    ready.send(b"Q" + struct.pack("!I", 4 + 8) + b"SELECT 1")
    expect_error_then_close(ready, states=("08P01",))


def test_oversized_message(start_proxy):
    limit = 65536
    proxy = start_proxy({"limits": {"max_message_bytes": limit, "max_statement_bytes": limit}})
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(), APP_PW).ok
        # Under the limit still works.
        literal = "x" * (limit - 1000)
        q = c.simple_query(f"SELECT length('{literal}')")
        assert q["errors"] == [] and q["rows"] == [[str(len(literal))]]
        # Over the limit: refused from the header alone, then closed.
        c.send(b"Q" + struct.pack("!I", limit + 1000) + b"SELECT '")
        start = time.monotonic()
        expect_error_then_close(c, timeout=3.0)
        assert time.monotonic() - start < 3.0


# --- timeouts -------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["nothing", "half a length", "startup then silence"])
def test_startup_timeout(start_proxy, what):
    timeout_ms = 800
    proxy = start_proxy({"limits": {"startup_timeout_ms": timeout_ms}})
    with proxy.raw() as c:
        start = time.monotonic()
        if what == "half a length":
            c.send(b"\x00\x00")
        elif what == "startup then silence":
            c.send(harness.startup_packet(proxy.startup_params()))  # never answers the SASL request
        _, closed = c.read_until_closed(timeout=8.0)
        elapsed = time.monotonic() - start
    assert closed, "connection still open 8 s after a start-up timeout of 0.8 s"
    assert 0.5 <= elapsed <= 5.0, f"closed after {elapsed:.2f}s"


def test_session_past_startup_is_not_timed_out(start_proxy):
    proxy = start_proxy({"limits": {"startup_timeout_ms": 500}})
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(), APP_PW).ok
        time.sleep(1.2)
        assert c.simple_query("SELECT 'alive'")["rows"] == [["alive"]]


# --- backend ------------------------------------------------------------------------

def test_backend_down(start_proxy):
    dead_port = harness.free_port()
    proxy = start_proxy({"backend": {"port": dead_port}})
    start = time.monotonic()
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(), APP_PW)
    assert r.error is not None, "connected with no backend"
    assert r.error["C"] in ("08001", "08006"), r.error
    assert time.monotonic() - start < 5
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(proxy.dsn())
    assert time.monotonic() - start < 10
    # The proxy itself is still running and accepting.
    assert proxy.proc.poll() is None and harness.port_accepts(proxy.host, proxy.port)


def test_backend_accepts_but_never_answers(start_proxy):
    # A hung backend: TCP accepts, the start-up is never answered. The client gets a
    # connection error (not a protocol-violation error: it did nothing wrong) within the start-up timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        proxy = start_proxy({"backend": {"port": silent.getsockname()[1]}, "limits": {"startup_timeout_ms": 1500}})
        start = time.monotonic()
        with proxy.raw() as c:
            r = c.startup(proxy.startup_params(), APP_PW)
        assert time.monotonic() - start < 5, "client waited past the start-up timeout"
        assert r.error is not None
        assert r.error["C"] in ("08001", "08006"), r.error


def test_client_disconnect_mid_query_frees_backend(proxy, pg):
    marker = f"tg-vanish-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    client = subprocess.Popen([str(harness.PG_BIN / "psql"), "-X", proxy.dsn(), "-c",
                               f"{harness.sleep_sql(30)} /* {marker} */"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        harness.wait_until(lambda: harness.active_queries(pg, marker) == 1, 10, "the query to run on the server")
        client.send_signal(signal.SIGKILL)
        client.wait(5)
        harness.wait_until(lambda: harness.active_queries(pg, marker) == 0, 5,
                           "the backend to stop running the abandoned query")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(5)


def test_client_terminate_closes_backend_session(proxy, pg):
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(application_name="tg-terminate-check"), APP_PW).ok
        count = lambda: int(pg.psql("SELECT count(*) FROM pg_stat_activity "  # noqa: E731
                                    "WHERE application_name = 'tg-terminate-check'", db="postgres"))
        assert count() == 1
        c.send(harness.message(b"X"))
        _, closed = c.read_until_closed(5)
        assert closed
    harness.wait_until(lambda: count() == 0, 5, "the backend session to end")


# --- well-formed edge cases ----------------------------------------------------------

def test_gssenc_request_is_declined_then_startup_proceeds(proxy):
    # libpq sends GSSENCRequest first when it has Kerberos credentials; a 'N' lets it go on.
    with proxy.raw() as c:
        c.send(struct.pack("!II", 8, harness.GSSENC_REQUEST_CODE))
        assert c.recv_byte() == b"N"
        r = c.startup(proxy.startup_params(), APP_PW)
        assert r.ok, r.error
        assert c.simple_query("SELECT 1")["rows"] == [["1"]]


def test_startup_parameter_status_reaches_client(ready_result):
    _, r = ready_result
    for name in ("server_version", "client_encoding", "standard_conforming_strings", "integer_datetimes",
                 "DateStyle", "TimeZone"):
        assert name in r.parameters, sorted(r.parameters)
    assert r.parameters["client_encoding"] == "UTF8"
    assert r.backend_key is not None


def test_empty_query(ready):
    q = ready.simple_query("")
    assert q["kinds"] == [b"I", b"Z"] and q["status"] == "I"


def test_error_in_middle_of_multi_statement_query(ready):
    q = ready.simple_query("SELECT 1; SELECT 1/0; SELECT 3")
    assert q["rows"] == [["1"]]
    assert [e["C"] for e in q["errors"]] == ["22012"]
    assert q["status"] == "I"
    assert ready.simple_query("SELECT 'next'")["rows"] == [["next"]]


def test_transaction_status_in_ready_for_query(proxy):
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(user="admin"), harness.PRINCIPALS["admin"]["password"]).ok
        assert c.simple_query("BEGIN")["status"] == "T"
        assert c.simple_query("SELECT 1/0")["status"] == "E"
        assert c.simple_query("ROLLBACK")["status"] == "I"


def test_byte_at_a_time(proxy):
    with proxy.raw() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in harness.startup_packet({"user": "admin", "database": harness.DATABASE,
                                         "options": "-c tenantgate.tenant=acme -c tenantgate.user=1"}):
            c.send(bytes([b]))
        # Authentication goes through the normal path; the query below is sent byte by byte.
        scram = harness.ScramClient(harness.PRINCIPALS["admin"]["password"])
        kind, payload = c.recv_msg()
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 10
        first = scram.client_first()
        for b in harness.message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first):
            c.send(bytes([b]))
        kind, payload = c.recv_msg()
        for b in harness.message(b"p", scram.client_final(payload[4:])):
            c.send(bytes([b]))
        while True:
            kind, payload = c.recv_msg()
            assert kind != b"E", harness.parse_error_fields(payload)
            if kind == b"Z":
                break
        for b in harness.query_message("SELECT 'slow' || 'ly'"):
            c.send(bytes([b]))
        msgs = []
        while not msgs or msgs[-1][0] != b"Z":
            msgs.append(c.recv_msg())
        assert [k for k, _ in msgs] == [b"T", b"D", b"C", b"Z"]


def test_many_queries_in_one_write(ready):
    n = 200
    ready.send(b"".join(harness.query_message(f"SELECT {i}") for i in range(n)))
    got = []
    while len(got) < n:
        kind, payload = ready.recv_msg()
        assert kind != b"E", harness.parse_error_fields(payload)
        if kind == b"D":
            got.append(int(payload[6:].decode()))
    assert got == list(range(n))


def _parse(name, sql):
    return harness.message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))


def _bind(portal, stmt, params):
    body = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!I", len(p)) + p
    return harness.message(b"B", body + struct.pack("!H", 0))


def test_extended_protocol_flush_without_sync(ready):
    # Results must be relayed on Flush; a proxy that waits for Sync would hang here.
    ready.send(_parse("", "SELECT $1::int + 1") + _bind("", "", [b"41"]) + harness.message(b"D", b"P\0")
               + harness.message(b"E", b"\0" + struct.pack("!I", 0)) + harness.message(b"H"))
    kinds = []
    while b"C" not in kinds:
        kind, payload = ready.recv_msg()
        assert kind != b"E", harness.parse_error_fields(payload)
        kinds.append(kind)
        if kind == b"D":
            assert payload[6:] == b"42"
    assert kinds == [b"1", b"2", b"T", b"D", b"C"]
    ready.send(harness.message(b"S"))
    assert ready.recv_msg() == (b"Z", b"I")


def test_extended_protocol_error_skips_until_sync(ready):
    ready.send(_parse("", "SELECT 1/$1::int") + _bind("", "", [b"0"])
               + harness.message(b"E", b"\0" + struct.pack("!I", 0))
               + _parse("", "SELECT 'skipped'") + _bind("", "", [])
               + harness.message(b"E", b"\0" + struct.pack("!I", 0)) + harness.message(b"S")
               + _parse("", "SELECT 'after'") + _bind("", "", [])
               + harness.message(b"E", b"\0" + struct.pack("!I", 0)) + harness.message(b"S"))
    msgs = []
    while [k for k, _ in msgs].count(b"Z") < 2:
        msgs.append(ready.recv_msg())
    kinds = [k for k, _ in msgs]
    first = kinds[:kinds.index(b"Z") + 1]
    # PostgreSQL folds 1/0 while planning at Bind: the error comes after ParseComplete,
    # and nothing of the skipped statements follows it.
    assert first in ([b"1", b"E", b"Z"], [b"1", b"2", b"E", b"Z"]), kinds
    error = next(p for k, p in msgs if k == b"E")
    assert harness.parse_error_fields(error)["C"] == "22012"
    assert kinds[len(first):] == [b"1", b"2", b"D", b"C", b"Z"], kinds
    assert msgs[-3][1][6:] == b"after"


def test_large_values_both_ways(proxy):
    conn = psycopg2.connect(proxy.dsn())
    with conn.cursor() as cur:
        cur.execute("SELECT repeat('x', 8 * 1024 * 1024)")
        assert len(cur.fetchone()[0]) == 8 * 1024 * 1024
        big = "y" * (900 * 1024)  # under the default max_statement_bytes of 1 MiB
        cur.execute("SELECT length(%s)", (big,))
        assert cur.fetchone() == (len(big),)
    conn.close()


@pytest.mark.parametrize("options", ["-ctenantgate.tenant=acme -ctenantgate.user=42",
                                     "--tenantgate.tenant=acme --tenantgate.user=42",
                                     "-c tenantgate.tenant=acme  -c  tenantgate.user=42"])
def test_identity_option_spellings(proxy, options):
    conn = psycopg2.connect(proxy.dsn(options=options))
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('tenantgate.tenant', true), current_setting('tenantgate.user', true)")
        assert cur.fetchone() == (None, None)
    conn.close()


def test_statement_over_max_statement_bytes_is_refused_not_fatal(start_proxy):
    proxy = start_proxy({"limits": {"max_message_bytes": 65536, "max_statement_bytes": 4096}})
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(), APP_PW).ok
        q = c.simple_query(f"SELECT '{'z' * 8000}'")
        assert [e["C"] for e in q["errors"]] == ["54001"], q["errors"]
        assert q["rows"] == [] and q["status"] == "I"
        assert c.simple_query("SELECT 'still here'")["rows"] == [["still here"]]


def test_large_pipeline_written_while_reading(ready):
    # The client writes 20000 queries without waiting while it reads results on another
    # thread; a proxy that stops reading one side while the other is blocked would deadlock.
    n = 20000
    payload = b"".join(harness.query_message(f"SELECT {i}") for i in range(n))
    writer = threading.Thread(target=ready.send, args=(payload,), daemon=True)
    writer.start()
    seen = 0
    last = -1
    while seen < n:
        kind, body = ready.recv_msg()
        assert kind != b"E", harness.parse_error_fields(body)
        if kind == b"D":
            value = int(body[6:].decode())
            assert value == last + 1
            last = value
        elif kind == b"Z":
            seen += 1
    writer.join(10)
    assert not writer.is_alive()
