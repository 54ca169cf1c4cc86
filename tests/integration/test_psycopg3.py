"""psycopg 3 through the proxy: extended protocol, prepared statements, pipelines, binary, COPY."""

import psycopg
import psycopg.errors
import pytest
from psycopg.pq import TransactionStatus


def connect(proxy, user="app", **kw):
    return psycopg.connect(proxy.dsn(user=user), **kw)


def prepared_names(conn):
    return conn.execute("SELECT name FROM pg_prepared_statements ORDER BY name", prepare=False).fetchall()


def test_unnamed_extended_protocol(proxy):
    with connect(proxy, autocommit=True) as conn:
        cur = conn.execute("SELECT %s::int * 2, %s::text || '!', %s::int IS NULL", (21, "hi", None), prepare=False)
        assert cur.fetchone() == (42, "hi!", True)
        assert prepared_names(conn) == []


def test_named_prepared_statement_per_call(proxy):
    with connect(proxy, autocommit=True) as conn:
        for i in range(3):
            row = conn.execute("SELECT name FROM items WHERE id = %s", (i + 1,), prepare=True).fetchone()
            assert row == (f"item {i + 1}",)
        names = [r[0] for r in prepared_names(conn)]
        assert len(names) == 1 and names[0].startswith("_pg3_"), names


def test_prepare_threshold_zero(proxy):
    with connect(proxy, autocommit=True, prepare_threshold=0) as conn:
        assert conn.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
        assert conn.execute("SELECT %s::int + 1", (2,)).fetchone() == (3,)
        assert conn.execute("SELECT %s::text", ("x",)).fetchone() == ("x",)
        assert len(conn.execute("SELECT name FROM pg_prepared_statements").fetchall()) >= 2


def test_prepared_statement_error_keeps_session(proxy):
    with connect(proxy, autocommit=True, prepare_threshold=0) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / %s::int", (0,))
        assert conn.execute("SELECT 1 / %s::int", (1,)).fetchone() == (1,)
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT %s::int", ("nope",))
        assert conn.execute("SELECT 'fine'").fetchone() == ("fine",)


def test_binary_parameters_and_results(proxy):
    with connect(proxy, autocommit=True) as conn:
        cur = conn.cursor(binary=True)
        cur.execute("SELECT %b::int8 + 1, %b::bytea, %b::float8, %b::text",
                    (2**40, b"\x00\x01\xff", 1.5, "ünïcode"))
        assert cur.fetchone() == (2**40 + 1, b"\x00\x01\xff", 1.5, "ünïcode")
        assert cur.pgresult.fformat(0) == 1


def test_pipeline(proxy, table):
    with connect(proxy, user="admin") as conn:
        with conn.pipeline():
            cur = conn.cursor()
            for i in range(1, 51):
                cur.execute(f"INSERT INTO {table} VALUES (%s, %s)", (i, f"n{i}"))
            c2 = conn.execute(f"SELECT count(*), sum(id) FROM {table}")
            c3 = conn.execute("SELECT %s::text", ("last",))
        assert c2.fetchone() == (50, 1275)
        assert c3.fetchone() == ("last",)
        conn.commit()
    with connect(proxy) as conn:
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (50,)


def test_pipeline_error_skips_to_sync_then_recovers(proxy):
    with connect(proxy, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.pipeline():
                c1 = conn.execute("SELECT %s::int", (1,))
                conn.execute("SELECT 1 / %s::int", (0,))
                conn.execute("SELECT 'skipped'")
        assert c1.fetchone() == (1,)
        with conn.pipeline():
            c4 = conn.execute("SELECT %s::text", ("after",))
        assert c4.fetchone() == ("after",)
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_copy_both_ways(proxy, table):
    rows = [(i, f"name {i}" if i % 7 else None) for i in range(1, 2001)]
    with connect(proxy, user="admin") as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY {table} (id, name) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            assert cur.rowcount == 2000
        conn.commit()
        with conn.cursor() as cur:
            with cur.copy(f"COPY (SELECT id, name FROM {table} ORDER BY id) TO STDOUT") as copy:
                copy.set_types(["int4", "text"])
                got = list(copy.rows())
        assert got == rows
        with conn.cursor() as cur:
            with cur.copy(f"COPY (SELECT id FROM {table} ORDER BY id LIMIT 3) TO STDOUT (FORMAT binary)") as copy:
                copy.set_types(["int4"])
                assert list(copy.rows()) == [(1,), (2,), (3,)]


def test_server_side_cursor(proxy):
    with connect(proxy) as conn:
        with conn.cursor(name="tg_cursor") as cur:
            cur.itersize = 100
            cur.execute("SELECT g FROM generate_series(1, 1000) g")
            assert sum(r[0] for r in cur) == 500500


def test_copy_from_aborted_by_client(proxy, table):
    with connect(proxy, user="admin") as conn:
        with pytest.raises(psycopg.errors.QueryCanceled):
            with conn.cursor() as cur:
                with cur.copy(f"COPY {table} (id, name) FROM STDIN") as copy:
                    copy.write_row((1, "a"))
                    raise RuntimeError("client gives up")  # psycopg sends CopyFail
        conn.rollback()
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
