"""psycopg2 through the proxy."""

import io
import select
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

import harness


def connect(proxy, **kw):
    conn = psycopg2.connect(proxy.dsn(**kw))
    return conn


def test_simple_query(proxy):
    with connect(proxy) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name FROM items ORDER BY id LIMIT 2")
        assert cur.fetchall() == [(1, "item 1"), (2, "item 2")]
        assert [d.name for d in cur.description] == ["id", "name"]
    conn.close()


def test_parameters_and_types(proxy):
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute("SELECT %s::int + 1, %s, %s::numeric * 2, %s IS NULL, %s::text[]",
                    (41, "it's \"quoted\"", "1.25", None, ["a", "b"]))
        assert cur.fetchone() == (42, "it's \"quoted\"", pytest.approx(2.5), True, ["a", "b"])
    conn.close()


def test_large_result(proxy):
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute("SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
        rows = cur.fetchall()
    assert len(rows) == 20000 and rows[-1] == (20000, "x" * 100)
    conn.close()


def test_transactions_commit_and_rollback(proxy, table):
    conn = connect(proxy, user="admin")
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (1, 'kept')")
    conn.commit()
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (2, 'dropped')")
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name FROM {table} ORDER BY id")
        assert cur.fetchall() == [(1, "kept")]
    conn.close()


def test_error_in_transaction_then_rollback_keeps_session(proxy, table):
    conn = connect(proxy, user="admin")
    cur = conn.cursor()
    cur.execute(f"INSERT INTO {table} VALUES (1, 'a')")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute(f"INSERT INTO {table} VALUES (1, 'again')")
    assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INERROR
    with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
        cur.execute("SELECT 1")
    conn.rollback()
    cur.execute(f"SELECT count(*) FROM {table}")
    assert cur.fetchone() == (0,)
    conn.close()


def test_server_errors_keep_session_usable(proxy):
    conn = connect(proxy)
    conn.autocommit = True
    cur = conn.cursor()
    for sql, exc, state in [("SELECT 1/0", psycopg2.errors.DivisionByZero, "22012"),
                            ("SELECT * FROM no_such_table", psycopg2.errors.UndefinedTable, "42P01"),
                            ("SELEC 1", psycopg2.errors.SyntaxError, "42601")]:
        with pytest.raises(exc) as e:
            cur.execute(sql)
        assert e.value.pgcode == state
        cur.execute("SELECT 'ok'")
        assert cur.fetchone() == ("ok",)
    conn.close()


def test_copy_from_stdin_and_to_stdout(proxy, table):
    conn = connect(proxy, user="admin")
    data = "".join(f"{i}\tname {i}\n" for i in range(1, 3001))
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(data))
        assert cur.rowcount == 3000
    conn.commit()
    out = io.StringIO()
    with conn.cursor() as cur:
        cur.copy_expert(f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT", out)
        cur.execute(f"SELECT sum(id) FROM {table}")
        assert cur.fetchone() == (3000 * 3001 // 2,)
    assert out.getvalue() == data
    conn.close()


def test_notices(proxy):
    conn = connect(proxy, user="admin")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; RAISE WARNING 'careful'; END $$")
    assert any("NOTICE:  hello from plpgsql" in n for n in conn.notices), conn.notices
    assert any("WARNING:  careful" in n for n in conn.notices), conn.notices
    conn.close()


def test_listen_notify_delivered_while_idle(proxy):
    listener = connect(proxy, user="admin")
    listener.autocommit = True
    notifier = connect(proxy, user="admin")
    notifier.autocommit = True
    with listener.cursor() as cur:
        cur.execute("LISTEN tg_channel")
    with notifier.cursor() as cur:
        cur.execute("NOTIFY tg_channel, 'payload-1'")
        cur.execute("SELECT pg_notify('tg_channel', 'payload-2')")
    # The listener sends nothing: the notifications must arrive on their own.
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        if select.select([listener], [], [], 0.5)[0]:
            listener.poll()
            while listener.notifies:
                got.append(listener.notifies.pop(0).payload)
    assert got == ["payload-1", "payload-2"]
    notifier.close()
    listener.close()


def test_cancel_own_query_only(proxy):
    """conn.cancel() ends the caller's own query with 57014; another session's query runs on."""
    victim = connect(proxy)
    bystander = connect(proxy)
    results = {}

    def run(name, conn, sql):
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                results[name] = cur.fetchone()
        except Exception as e:  # noqa: BLE001 - recorded and asserted below
            results[name] = e

    t1 = threading.Thread(target=run, args=("victim", victim, harness.sleep_sql(30) + " /* tg-cancel-victim */"))
    t2 = threading.Thread(target=run, args=("bystander", bystander,
                                            harness.sleep_sql(1.5, "''", "'done'") + " /* tg-cancel-bystander */"))
    t1.start()
    t2.start()
    harness.wait_until(lambda: harness.active_queries(proxy.pg, "tg-cancel-") == 2, 10, "both queries running")
    start = time.monotonic()
    victim.cancel()
    t1.join(10)
    assert not t1.is_alive(), "query still running 10 s after cancel"
    assert isinstance(results["victim"], psycopg2.errors.QueryCanceled), results["victim"]
    assert time.monotonic() - start < 5
    t2.join(10)
    assert results["bystander"] == ("", "done")
    victim.rollback()
    with victim.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    victim.close()
    bystander.close()


def test_bogus_cancel_request_cancels_nothing(proxy):
    conn = connect(proxy)
    result = {}

    def run():
        with conn.cursor() as cur:
            cur.execute(harness.sleep_sql(1, "''", "'finished'") + " /* tg-bogus-cancel */")
            result["row"] = cur.fetchone()

    t = threading.Thread(target=run)
    t.start()
    harness.wait_until(lambda: harness.active_queries(proxy.pg, "tg-bogus-cancel") == 1, 10, "query running")
    harness.send_cancel(proxy.host, proxy.port, 12345, 67890)
    # A cancel for the real backend's pid with a wrong key must not work either.
    backend_pid = int(proxy.pg.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE '%tg-bogus-cancel%' "
                                    "AND query NOT LIKE '%pg_stat_activity%'", db="postgres"))
    harness.send_cancel(proxy.host, proxy.port, backend_pid, 0)
    t.join(15)
    assert result.get("row") == ("", "finished")
    conn.close()
