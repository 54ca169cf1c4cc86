"""Many concurrent sessions, and pgbench in each query mode."""

import asyncio
import os
import re
import subprocess

import psycopg
import pytest

import harness

SESSIONS = 200


@pytest.fixture(params=["plain", "tls"])
def load_proxy(request, start_proxy, tmp_path):
    if request.param == "plain":
        return request.getfixturevalue("proxy"), "disable"
    certs = harness.make_certs(tmp_path / "certs", "proxy")
    return start_proxy({"listen": {"tls": "require", "tls_cert": str(certs.server_cert),
                                   "tls_key": str(certs.server_key)}}), "require"


def test_concurrent_sessions(load_proxy, pg):
    proxy, sslmode = load_proxy

    async def session(i, all_connected, connected_count):
        conn = await psycopg.AsyncConnection.connect(proxy.dsn(user="app", tenant=f"tenant{i % 17}", user_id=str(i),
                                                               sslmode=sslmode), autocommit=True)
        try:
            connected_count.append(i)
            if len(connected_count) == SESSIONS:
                all_connected.set()
            await asyncio.wait_for(all_connected.wait(), 60)
            for j in range(5):
                cur = await conn.execute("SELECT %s::int * 1000 + %s::int, (SELECT count(*) FROM items)", (i, j))
                assert await cur.fetchone() == (i * 1000 + j, 10)
            return i
        finally:
            await conn.close()

    async def main():
        all_connected = asyncio.Event()
        connected: list = []
        tasks = [session(i, all_connected, connected) for i in range(SESSIONS)]

        async def peak():
            await asyncio.wait_for(all_connected.wait(), 60)
            return await asyncio.to_thread(harness.backend_sessions, pg, [harness.SERVICE_USER, "app"])

        results = await asyncio.wait_for(asyncio.gather(peak(), *tasks, return_exceptions=True), 120)
        return results[0], results[1:]

    open_at_peak, results = asyncio.run(main())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {SESSIONS} sessions failed, first: {failures[0]!r}"
    assert sorted(results) == list(range(SESSIONS))
    assert open_at_peak >= SESSIONS


@pytest.fixture(scope="module")
def pgbench_db(pg):
    subprocess.run([str(harness.PG_BIN / "pgbench"), "-i", "-s", "1", "-q", "-h", str(pg.dir), "-p", str(pg.port),
                    "-U", "postgres", harness.DATABASE], check=True, capture_output=True, timeout=120)
    pg.psql("GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC")
    yield
    pg.psql("DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history")


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_select_only(proxy, pgbench_db, mode):
    env = dict(os.environ, PGPASSWORD=harness.PRINCIPALS["app"]["password"], PGSSLMODE="disable",
               PGOPTIONS="-c tenantgate.tenant=acme -c tenantgate.user=42", PGCONNECT_TIMEOUT="10")
    r = subprocess.run([str(harness.PG_BIN / "pgbench"), "-n", "-S", "-c", "4", "-j", "2", "-T", "3", "-M", mode,
                        "-h", proxy.host, "-p", str(proxy.port), "-U", "app", harness.DATABASE],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    processed = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    assert processed and failed, r.stdout
    assert int(failed.group(1)) == 0, r.stdout
    assert int(processed.group(1)) > 100, r.stdout
