"""[pool] as the proxy applies it today: the keys are validated by
`tenantgate check`; session mode with one backend per client is the default;
pool.size caps the clients holding a backend, fairly per tenant, with 53300
for a client that waits too long; the per-tenant statement rate refuses with
53300 and keeps the session; settings the sessions do not act on yet stop
the proxy at start instead of being ignored (fail closed).
"""

from __future__ import annotations

import subprocess
import threading
import time

import psycopg2
import pytest

import harness


def test_check_accepts_every_pool_key(start_proxy):
    proxy = start_proxy({"pool": {"mode": "transaction", "size": 10, "min_idle": 2,
                                  "idle_timeout_ms": 30000, "max_lifetime_ms": 600000,
                                  "acquire_timeout_ms": 250, "max_per_tenant": 4,
                                  "tenant_statements_per_second": 100}}, start=False)
    r = harness.run_check(proxy.config_path)
    assert r.returncode == 0, f"{proxy.config_path.read_text()}\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("pool,reason", [
    ({"mode": "statement"}, 'unknown pool.mode "statement" (expected session | transaction)'),
    ({"mode": "transaction"}, 'pool.mode = "transaction" needs pool.size >= 1'),
    ({"size": 4, "min_idle": 5}, "pool.min_idle (5) is larger than pool.size (4)"),
    ({"size": 4, "max_per_tenant": 8}, "pool.max_per_tenant (8) is larger than pool.size (4)"),
    ({"acquire_timeout_ms": 0}, "acquire_timeout_ms = 0 is out of range"),
    ({"waiting": 1}, 'unknown key "waiting" in [pool]'),
])
def test_check_names_the_line_and_reason(start_proxy, pool, reason):
    proxy = start_proxy({"pool": pool}, start=False)
    r = harness.run_check(proxy.config_path)
    assert r.returncode != 0
    lines = proxy.config_path.read_text().splitlines()
    out = r.stdout + r.stderr
    assert reason in out, out
    # "file:line: reason", the line inside [pool]
    line = int(out.split(str(proxy.config_path) + ":", 1)[1].split(":", 1)[0])
    assert lines.index("[pool]") < line <= len(lines), out


@pytest.mark.parametrize("pool,key", [
    ({"mode": "transaction", "size": 8}, 'pool.mode = "transaction"'),
    ({"min_idle": 1, "size": 8}, "pool.min_idle"),
])
def test_settings_sessions_do_not_apply_stop_the_proxy(start_proxy, pool, key):
    proxy = start_proxy({"pool": pool}, start=False)
    r = subprocess.run([str(harness.tenantgate_bin()), "--config", str(proxy.config_path)],
                       capture_output=True, text=True, timeout=30, env=proxy.env)
    assert r.returncode == 1
    assert f"tenantgate: cannot start: {key}" in r.stderr, r.stderr
    assert "is not supported by this version of tenantgate yet" in r.stderr
    assert not harness.port_accepts(proxy.host, proxy.port)


def test_session_mode_is_one_backend_per_client(start_proxy, pg):
    # Timeouts of the pool do not change what session mode does.
    proxy = start_proxy({"pool": {"mode": "session", "idle_timeout_ms": 1000,
                                  "acquire_timeout_ms": 100}})
    before = harness.backend_sessions(pg, [harness.SERVICE_USER])
    conns = [psycopg2.connect(proxy.dsn(tenant=t)) for t in ("acme", "globex", "acme")]
    try:
        harness.wait_until(lambda: harness.backend_sessions(pg, [harness.SERVICE_USER]) == before + 3,
                           10, "one backend per client")
        pids = set()
        for c in conns:
            with c.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
        assert len(pids) == 3
    finally:
        for c in conns:
            c.close()
    harness.wait_until(lambda: harness.backend_sessions(pg, [harness.SERVICE_USER]) == before,
                       10, "backends closed with their clients")


# --------------------------------------------------------------------------
# Session mode with a size: a capped, fair admission per tenant.


def connect(proxy, tenant, **kw):
    return psycopg2.connect(proxy.dsn(tenant=tenant), **kw)


def test_size_caps_backends_and_a_client_waiting_too_long_gets_53300(start_proxy, pg):
    proxy = start_proxy({"pool": {"size": 2, "acquire_timeout_ms": 300}})
    before = harness.backend_sessions(pg, [harness.SERVICE_USER])
    a, b = connect(proxy, "acme"), connect(proxy, "globex")
    try:
        t0 = time.monotonic()
        with pytest.raises(psycopg2.OperationalError) as e:
            connect(proxy, "initech")
        waited = time.monotonic() - t0
        assert "no backend connection came free within pool.acquire_timeout_ms (300 ms)" in str(e.value)
        assert waited >= 0.3
        assert harness.backend_sessions(pg, [harness.SERVICE_USER]) == before + 2
        b.close()
        c = connect(proxy, "initech")
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        c.close()
    finally:
        a.close()
        b.close()
    assert "53300" in proxy.log()


def test_a_waiting_client_gets_in_when_another_leaves(start_proxy):
    proxy = start_proxy({"pool": {"size": 1, "acquire_timeout_ms": 10000}})
    first = connect(proxy, "acme")
    result = {}

    def second():
        try:
            c = connect(proxy, "globex")
            result["at"] = time.monotonic()
            c.close()
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert "at" not in result and "error" not in result  # still waiting
    left = time.monotonic()
    first.close()
    t.join(10)
    assert "error" not in result, result
    assert left <= result["at"] < left + 5


def test_max_per_tenant_leaves_room_for_other_tenants(start_proxy):
    proxy = start_proxy({"pool": {"size": 3, "max_per_tenant": 1, "acquire_timeout_ms": 300}})
    acme = connect(proxy, "acme")
    try:
        with pytest.raises(psycopg2.OperationalError, match="pool.acquire_timeout_ms"):
            connect(proxy, "acme")
        other = connect(proxy, "globex")
        other.close()
    finally:
        acme.close()


# --------------------------------------------------------------------------
# The per-tenant statement rate.


def test_tenant_statement_rate_refuses_with_53300_and_keeps_the_session(start_proxy):
    proxy = start_proxy({"pool": {"tenant_statements_per_second": 5}})
    acme = connect(proxy, "acme")
    acme.autocommit = True
    globex = connect(proxy, "globex")
    globex.autocommit = True
    try:
        ok, refused = 0, []
        t0 = time.monotonic()
        for _ in range(20):
            try:
                with acme.cursor() as cur:
                    cur.execute("SELECT 1")
                ok += 1
            except psycopg2.Error as e:
                refused.append(e)
        elapsed = time.monotonic() - t0
        # One second's burst, then 5 per second.
        assert 5 <= ok <= 5 + int(elapsed * 5) + 1, (ok, elapsed)
        assert refused and all(e.pgcode == "53300" for e in refused)
        assert "pool.tenant_statements_per_second" in str(refused[0])
        # Another tenant has a bucket of its own.
        for _ in range(5):
            with globex.cursor() as cur:
                cur.execute("SELECT 2")
                assert cur.fetchone() == (2,)
        # The refused session goes on once its bucket refills.
        time.sleep(0.5)
        with acme.cursor() as cur:
            cur.execute("SELECT 3")
            assert cur.fetchone() == (3,)
    finally:
        acme.close()
        globex.close()
