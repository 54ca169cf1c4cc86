"""Malformed and hostile input over raw sockets, limits, timeouts, unreachable backends
and clients that vanish."""

import os
import signal
import struct
import subprocess
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
def ready(proxy):
    """A raw, authenticated session with the default principal."""
    c = proxy.raw()
    r = c.startup(proxy.startup_params(), APP_PW)
    assert r.ok, r.error
    yield c
    c.close()


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
    proxy = start_proxy({"limits": {"max_message_bytes": limit}})
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


def test_client_disconnect_mid_query_frees_backend(proxy, pg):
    marker = f"tg-vanish-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    client = subprocess.Popen([str(harness.PG_BIN / "psql"), "-X", proxy.dsn(), "-c",
                               f"SELECT pg_sleep(30) /* {marker} */"], env=env,
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
