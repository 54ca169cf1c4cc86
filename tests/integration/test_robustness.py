"""The proxy under misbehaving clients and backends: slow readers, churn, killed
backend sessions, broken TLS handshakes, SIGHUP."""

import os
import signal
import socket
import struct
import time

import psycopg2
import pytest

import harness

APP_PW = harness.PRINCIPALS["app"]["password"]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_slow_reader_does_not_make_the_proxy_buffer_everything(proxy, pg):
    with proxy.raw() as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        assert c.startup(proxy.startup_params(application_name="tg-slow-reader"), APP_PW).ok
        before = rss_kb(proxy.proc.pid)
        # About 500 MB of rows that the client does not read.
        c.send(harness.query_message("SELECT repeat('x', 1000) FROM generate_series(1, 500000)"))
        peak = before

        def backend_blocked():
            nonlocal peak
            peak = max(peak, rss_kb(proxy.proc.pid))
            return pg.psql("SELECT wait_event FROM pg_stat_activity WHERE application_name = 'tg-slow-reader'",
                           db="postgres") == "ClientWrite"

        # With back-pressure the backend ends up blocked writing to the proxy.
        harness.wait_until(backend_blocked, 10, "the backend to block in ClientWrite")
        for _ in range(20):
            peak = max(peak, rss_kb(proxy.proc.pid))
            time.sleep(0.05)
    growth_mb = (peak - before) / 1024
    assert growth_mb < 100, f"proxy RSS grew by {growth_mb:.0f} MB for a client that reads nothing"


def test_connection_churn_leaks_nothing(proxy, pg):
    def one_round():
        # A full session, an abandoned start-up, an abandoned SASL exchange.
        with proxy.raw() as c:
            assert c.startup(proxy.startup_params(), APP_PW).ok
            assert c.simple_query("SELECT 1")["rows"] == [["1"]]
            c.send(harness.message(b"X"))
        with proxy.raw() as c:
            c.send(b"\x00\x00\x00")
        with proxy.raw() as c:
            c.send(harness.startup_packet(proxy.startup_params()))
            assert c.recv_msg()[0] == b"R"

    one_round()
    harness.wait_until(lambda: harness.backend_sessions(pg, [harness.SERVICE_USER]) == 0, 5, "warm-up sessions to end")
    fds_before = fd_count(proxy.proc.pid)
    for _ in range(100):
        one_round()
    harness.wait_until(lambda: harness.backend_sessions(pg, [harness.SERVICE_USER]) == 0, 5,
                       "all backend sessions to end")
    harness.wait_until(lambda: fd_count(proxy.proc.pid) <= fds_before + 2, 5,
                       f"proxy descriptors to return to {fds_before} (now {fd_count(proxy.proc.pid)})")


def test_backend_session_killed(proxy, pg):
    conn = psycopg2.connect(proxy.dsn(application_name="tg-kill-me"))
    conn.autocommit = True
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tg-kill-me'",
            db="postgres")
    start = time.monotonic()
    with pytest.raises(psycopg2.OperationalError) as e:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    assert time.monotonic() - start < 5
    assert harness.matches(r"terminat|closed|connection", str(e.value)), str(e.value)
    conn.close()
    # Others are unaffected.
    other = psycopg2.connect(proxy.dsn())
    with other.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    other.close()


def test_backend_killed_while_idle_closes_client(proxy, pg):
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(application_name="tg-kill-idle"), APP_PW).ok
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tg-kill-idle'",
                db="postgres")
        msgs, closed = c.read_until_closed(5)
    assert closed, "client still connected 5 s after its backend session was terminated"
    errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
    assert errors and errors[0]["C"] in ("57P01", "08006"), msgs


def test_garbage_instead_of_tls_handshake(start_proxy, tmp_path):
    certs = harness.make_certs(tmp_path / "certs", "proxy")
    proxy = start_proxy({"listen": {"tls": "require", "tls_cert": str(certs.server_cert),
                                    "tls_key": str(certs.server_key)}})
    with proxy.raw() as c:
        c.send(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        assert c.recv_byte() == b"S"
        c.send(b"this is not a TLS ClientHello\r\n" * 4)
        _, closed = c.read_until_closed(5)
        assert closed
    conn = psycopg2.connect(proxy.dsn(sslmode="require"))
    conn.close()
    assert proxy.proc.poll() is None


def test_sighup_with_invalid_policy_keeps_serving(proxy):
    conn = psycopg2.connect(proxy.dsn())
    (proxy.dir / "policy.toml").write_text('default_action = "sometimes"\n[tables."public.items"\nscope =\n')
    proxy.signal(signal.SIGHUP)
    harness.wait_until(lambda: harness.matches(r"reload", proxy.log()), 5, "the reload to be logged")
    assert proxy.proc.poll() is None, "proxy exited on SIGHUP"
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone() == (10,)
    conn.close()
    conn = psycopg2.connect(proxy.dsn())
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone() == (10,)
    conn.close()
