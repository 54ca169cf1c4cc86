"""SIGTERM: stop accepting, let sessions finish within shutdown_grace_ms, then close."""

import signal
import threading
import time

import psycopg2

import harness


def run_in_thread(conn, sql):
    result = {}

    def run():
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                result["row"] = cur.fetchone()
        except Exception as e:  # noqa: BLE001 - asserted by the caller
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def test_graceful_shutdown_lets_running_query_finish(start_proxy, pg):
    grace_ms = 4000
    proxy = start_proxy({"limits": {"shutdown_grace_ms": grace_ms}})
    conn = psycopg2.connect(proxy.dsn())
    t, result = run_in_thread(conn, harness.sleep_sql(1.5, "''", "'finished'") + " /* tg-graceful */")
    harness.wait_until(lambda: harness.active_queries(pg, "tg-graceful") == 1, 10, "the query to run")
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    # New connections are refused while the running query goes on.
    def refused():
        try:
            psycopg2.connect(proxy.dsn(connect_timeout=2)).close()
            return False
        except psycopg2.OperationalError:
            return True

    harness.wait_until(refused, 2, "new connections to be refused")
    t.join(10)
    assert result.get("row") == ("", "finished"), result
    proxy.proc.wait(grace_ms / 1000 + 3)
    elapsed = time.monotonic() - start
    assert elapsed <= grace_ms / 1000 + 1.5, f"exited {elapsed:.2f}s after SIGTERM"
    assert proxy.proc.returncode == 0, proxy.proc.returncode
    conn.close()


def test_shutdown_closes_sessions_after_grace(start_proxy, pg):
    grace_ms = 1000
    proxy = start_proxy({"limits": {"shutdown_grace_ms": grace_ms}})
    conn = psycopg2.connect(proxy.dsn())
    t, result = run_in_thread(conn, harness.sleep_sql(30) + " /* tg-outlasts-grace */")
    harness.wait_until(lambda: harness.active_queries(pg, "tg-outlasts-grace") == 1, 10, "the query to run")
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    proxy.proc.wait(grace_ms / 1000 + 5)
    assert time.monotonic() - start <= grace_ms / 1000 + 2
    t.join(5)
    assert not t.is_alive() and "error" in result, result
    harness.wait_until(lambda: harness.active_queries(pg, "tg-outlasts-grace") == 0, 5,
                       "the backend query to be ended")
    conn.close()


def test_shutdown_when_idle_is_quick(start_proxy):
    proxy = start_proxy({"limits": {"shutdown_grace_ms": 10000}})
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    proxy.proc.wait(5)
    assert time.monotonic() - start < 2
    assert proxy.proc.returncode == 0
