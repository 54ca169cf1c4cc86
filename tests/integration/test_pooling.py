"""[pool] as the proxy applies it today: the keys are validated by
`tenantgate check`; session mode with one backend per client is the default
and what a session does; settings the sessions do not act on yet stop the
proxy at start instead of being ignored (fail closed).
"""

from __future__ import annotations

import subprocess

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
    ({"size": 8}, "pool.size"),
    ({"min_idle": 1, "size": 8}, "pool.size"),
    ({"max_per_tenant": 2}, "pool.max_per_tenant"),
    ({"tenant_statements_per_second": 50}, "pool.tenant_statements_per_second"),
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
