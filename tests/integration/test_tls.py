"""TLS from clients to the proxy (listen.tls) and from the proxy to PostgreSQL (backend.tls)."""

import struct
import threading
import time

import psycopg
import psycopg2
import psycopg2.errors
import pytest

import harness


@pytest.fixture
def proxy_certs(tmp_path):
    return harness.make_certs(tmp_path / "proxy-certs", "proxy")


def tls_listen(certs, mode):
    return {"listen": {"tls": mode, "tls_cert": str(certs.server_cert), "tls_key": str(certs.server_key)}}


def ssl_in_use(proxy, sslmode, **kw):
    with psycopg.connect(proxy.dsn(sslmode=sslmode, **kw)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        return conn.pgconn.ssl_in_use


def ssl_request_answer(proxy):
    with proxy.raw() as c:
        c.send(struct.pack("!II", 8, harness.SSL_REQUEST_CODE))
        return c.recv_byte()


def test_listen_require(start_proxy, proxy_certs):
    proxy = start_proxy(tls_listen(proxy_certs, "require"))
    assert ssl_in_use(proxy, "require") is True
    # The certificate presented is the one generated for this test.
    assert ssl_in_use(proxy, "verify-full", sslrootcert=str(proxy_certs.ca_cert)) is True
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(proxy.dsn(sslmode="disable"))
    # A plaintext start-up never reaches ReadyForQuery.
    with proxy.raw() as c:
        try:
            r = c.startup(proxy.startup_params(), harness.PRINCIPALS["app"]["password"])
            assert not r.ok, "plaintext session accepted with listen.tls = require"
        except ConnectionError:
            pass


def test_listen_require_wrong_ca_is_rejected_by_client(start_proxy, proxy_certs, tmp_path):
    proxy = start_proxy(tls_listen(proxy_certs, "require"))
    other = harness.make_certs(tmp_path / "other", "other")
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        psycopg2.connect(proxy.dsn(sslmode="verify-full", sslrootcert=str(other.ca_cert)))


def test_listen_allow(start_proxy, proxy_certs):
    proxy = start_proxy(tls_listen(proxy_certs, "allow"))
    assert ssl_request_answer(proxy) == b"S"
    assert ssl_in_use(proxy, "require") is True
    assert ssl_in_use(proxy, "disable") is False


def test_listen_disable(start_proxy):
    proxy = start_proxy()
    assert ssl_request_answer(proxy) == b"N"
    assert ssl_in_use(proxy, "prefer") is False
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(proxy.dsn(sslmode="require"))


def test_tls_large_result(start_proxy, proxy_certs):
    proxy = start_proxy(tls_listen(proxy_certs, "require"))
    conn = psycopg2.connect(proxy.dsn(sslmode="require"))
    with conn.cursor() as cur:
        cur.execute("SELECT g, repeat('y', 1000) FROM generate_series(1, 2000) g")
        assert len(cur.fetchall()) == 2000
    conn.close()


def backend_ssl(proxy):
    # pg_stat_ssl is session statistics, refused to non-bypass principals: ask as admin.
    with psycopg.connect(proxy.dsn(user="admin")) as conn:
        return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]


@pytest.mark.parametrize("mode", ["require", "prefer"])
def test_backend_tls(start_proxy, mode):
    proxy = start_proxy({"backend": {"user": harness.TLS_ONLY_USER, "tls": mode}},
                        backend_password=harness.TLS_ONLY_PASSWORD)
    assert backend_ssl(proxy) is True


def test_backend_verify_full(start_proxy, pg):
    proxy = start_proxy({"backend": {"user": harness.TLS_ONLY_USER, "tls": "verify-full",
                                     "tls_ca": str(pg.certs.ca_cert)}},
                        backend_password=harness.TLS_ONLY_PASSWORD)
    assert backend_ssl(proxy) is True


def test_backend_verify_full_wrong_ca(start_proxy, tmp_path):
    other = harness.make_certs(tmp_path / "other", "other")
    proxy = start_proxy({"backend": {"user": harness.TLS_ONLY_USER, "tls": "verify-full",
                                     "tls_ca": str(other.ca_cert)}},
                        backend_password=harness.TLS_ONLY_PASSWORD)
    start = time.monotonic()
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(), harness.PRINCIPALS["app"]["password"])
    assert r.error is not None, "connected to a backend whose certificate does not verify"
    assert r.error["C"] in ("08001", "08006"), r.error
    assert time.monotonic() - start < 10


def test_backend_tls_disable_reaches_plaintext_only(start_proxy):
    # The TLS-only role is refused over plaintext: proves the two tests above used TLS.
    proxy = start_proxy({"backend": {"user": harness.TLS_ONLY_USER, "tls": "disable"}},
                        backend_password=harness.TLS_ONLY_PASSWORD)
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(), harness.PRINCIPALS["app"]["password"])
    assert r.error is not None
    assert backend_ssl(start_proxy({"backend": {"tls": "disable"}})) is False


def test_cancel_with_tls_listener(start_proxy, proxy_certs):
    # libpq sends CancelRequest in plaintext on a new connection, even when the session uses TLS.
    proxy = start_proxy(tls_listen(proxy_certs, "require"))
    conn = psycopg2.connect(proxy.dsn(sslmode="require"))
    result = {}

    def run():
        try:
            with conn.cursor() as cur:
                cur.execute(harness.sleep_sql(30) + " /* tg-tls-cancel */")
        except Exception as e:  # noqa: BLE001 - asserted below
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    harness.wait_until(lambda: harness.active_queries(proxy.pg, "tg-tls-cancel") == 1, 10, "query running")
    conn.cancel()
    t.join(10)
    assert isinstance(result.get("error"), psycopg2.errors.QueryCanceled), result
    conn.close()


@pytest.mark.parametrize("client_sslmode", ["disable", "require"])
def test_passthrough_over_tls_both_sides(start_proxy, proxy_certs, client_sslmode):
    # The backend offers SCRAM-SHA-256-PLUS over its TLS; tenantgate offers the client only
    # SCRAM-SHA-256, because channel binding to the backend's certificate cannot be done by a
    # client that sees the proxy's. A client on TLS that supports channel binding signs "y" (I
    # could bind) into its proof, which a TLS backend rejects as a downgrade, and no relay can
    # change a signed message: such clients must say channel_binding=disable (README).
    proxy = start_proxy({**tls_listen(proxy_certs, "allow"), "auth": {"mode": "passthrough"},
                         "backend": {"tls": "require"}}, backend_password=None)
    conn = psycopg2.connect(proxy.dsn(user="app", sslmode=client_sslmode) + " channel_binding=disable")
    with conn.cursor() as cur:
        cur.execute("SELECT session_user, count(*) FROM items GROUP BY 1")
        assert cur.fetchone() == ("app", 10)
    conn.close()
    if client_sslmode != "disable":
        with pytest.raises(psycopg2.OperationalError, match="channel_binding=disable"):
            psycopg2.connect(proxy.dsn(user="app", sslmode=client_sslmode))
