"""psql through the proxy: simple queries, several statements, \\copy both ways, errors."""

import os
import subprocess

import pytest

import harness

PSQL = str(harness.PG_BIN / "psql")


def psql(dsn, *args, stdin=None):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    env.pop("PGOPTIONS", None)
    return subprocess.run([PSQL, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, *args], input=stdin,
                          capture_output=True, text=True, timeout=60, env=env)


def test_simple_query(proxy):
    r = psql(proxy.dsn(), "-c", "SELECT id, name FROM items WHERE id <= 3 ORDER BY id")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1|item 1", "2|item 2", "3|item 3"]


def test_several_statements_in_one_command(proxy):
    r = psql(proxy.dsn(), "-c", "SELECT 1; SELECT 'two'; SELECT count(*) FROM items")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["1", "two", "10"]


def test_script_with_transaction(proxy, table):
    script = (f"BEGIN;\nINSERT INTO {table} VALUES (1, 'a');\nINSERT INTO {table} VALUES (2, 'b');\nCOMMIT;\n"
              f"BEGIN;\nINSERT INTO {table} VALUES (3, 'c');\nROLLBACK;\n"
              f"SELECT string_agg(name, ',' ORDER BY id) FROM {table};\n")
    r = psql(proxy.dsn(user="admin"), "-q", "-f", "-", stdin=script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "a,b"


def test_copy_from_and_to_files(proxy, table, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("".join(f"{i},\"name, {i}\"\n" for i in range(1, 501)))
    r = psql(proxy.dsn(user="admin"), "-c", f"\\copy {table} FROM '{src}' WITH (FORMAT csv)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "COPY 500"
    dst = tmp_path / "out.csv"
    r = psql(proxy.dsn(user="admin"), "-c", f"\\copy (SELECT * FROM {table} ORDER BY id) TO '{dst}' WITH (FORMAT csv)")
    assert r.returncode == 0, r.stderr
    assert dst.read_text() == src.read_text()


def test_error_is_displayed_and_exit_code_set(proxy):
    r = psql(proxy.dsn(), "-c", "SELECT 1/0")
    assert r.returncode == 1
    assert "ERROR:  division by zero" in r.stderr


def test_error_then_more_statements_without_on_error_stop(proxy):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    r = subprocess.run([PSQL, "-X", "-A", "-t", proxy.dsn(), "-f", "-"],
                       input="SELECT no_such_column FROM items;\nSELECT 'after';\n",
                       capture_output=True, text=True, timeout=60, env=env)
    assert 'column "no_such_column" does not exist' in r.stderr
    assert r.stdout.strip() == "after"


@pytest.mark.parametrize("command,expected", [
    (r"\dt items", "items"),
    (r"\d items", "id"),
    (r"\l", harness.DATABASE),
    (r"\dn", "public"),
    (r"\du app", "app"),
])
def test_describe_commands(proxy, command, expected):
    # Catalog introspection stays readable for ordinary principals (DESIGN: Policy).
    r = psql(proxy.dsn(), "-c", command)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout
