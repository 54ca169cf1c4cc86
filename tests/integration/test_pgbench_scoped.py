"""pgbench through tenantgate with the standard schema scoped by branch (tenant = bid, an int).

The schema (scale 2: branches 1 and 2) is created directly as the superuser in
its own database. The policy scopes pgbench_branches/tellers/accounts/history
by bid; the runs claim tenant 1. After each run, checked directly on
PostgreSQL: branch 2 is untouched, every new history row has bid 1, and branch
1 is consistent (the branch balance moved by the sum of the new history
deltas, as did its tellers and accounts).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

import harness
from enforcement_support import admin_rows, ensure_database, int_tenant_overrides, once, start_with_policy

BENCH_DB = "benchdb"
PGBENCH = shutil.which("pgbench") or str(harness.PG_BIN / "pgbench")
SEED = int(os.environ.get("TG_IT_PGBENCH_SEED", "20251126"))  # printed with each run; rerun with it
TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history")

POLICY = 'default_action = "deny"\nsearch_path = ["public"]\n\n' + "".join(
    f'[tables."public.{t}"]\nscope = "tenant"\ntenant_column = "bid"\n\n' for t in TABLES)

TPCB_BRANCH_1 = r"""
\set bid 1
\set aid random(1, 100000)
\set tid random(1, 10)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
"""

# The same transaction written carelessly: ids drawn over both branches, history without bid (filled).
TPCB_ANY_ID = r"""
\set aid random(1, 200000)
\set tid random(1, 20)
\set delta random(1, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = 2;
INSERT INTO pgbench_history (tid, aid, delta, mtime) VALUES (:tid, :aid, :delta, CURRENT_TIMESTAMP);
END;
"""

# Each lookup must find the account only when it is in branch 1; otherwise the client aborts.
SELECT_ONLY = r"""
\set aid random(1, 200000)
SELECT count(*) AS n FROM pgbench_accounts WHERE aid = :aid \gset
\set expected case when :aid <= 100000 then 1 else 0 end
\if :n != :expected
\set boom 1 / 0
\endif
"""


@pytest.fixture(scope="module")
def benchdb(pg):
    ensure_database(pg, BENCH_DB)
    r = subprocess.run([PGBENCH, "-i", "-s", "2", "-q", "-h", str(pg.dir), "-p", str(pg.port), "-U", "postgres",
                        BENCH_DB], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"pgbench -i failed:\n{r.stdout}\n{r.stderr}"
    once(pg, BENCH_DB, "grants", "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC")
    return BENCH_DB


@pytest.fixture
def bench_proxy(start_proxy, benchdb):
    return start_with_policy(start_proxy, POLICY, int_tenant_overrides({"log": {"level": "info"}}))


def snapshot(pg) -> dict:
    q = lambda sql: admin_rows(pg, sql, db=BENCH_DB)  # noqa: E731
    return {
        "branch2": q("SELECT bid, bbalance FROM pgbench_branches WHERE bid <> 1 ORDER BY bid"),
        "tellers2": q("SELECT tid, tbalance FROM pgbench_tellers WHERE bid <> 1 ORDER BY tid"),
        "accounts2": q("SELECT count(*), sum(abalance), sum(abs(abalance)), md5(string_agg(aid || ':' || abalance, "
                       "',' ORDER BY aid)) FROM pgbench_accounts WHERE bid <> 1"),
        "history": q("SELECT count(*), count(*) FILTER (WHERE bid IS DISTINCT FROM 1), coalesce(sum(delta), 0) "
                     "FROM pgbench_history")[0],
        "branch1": q("SELECT bbalance FROM pgbench_branches WHERE bid = 1")[0][0],
        "tellers1": q("SELECT sum(tbalance) FROM pgbench_tellers WHERE bid = 1")[0][0],
        "accounts1": q("SELECT sum(abalance) FROM pgbench_accounts WHERE bid = 1")[0][0],
    }


def run_pgbench(proxy, tmp_path, script: str, mode: str, *args: str) -> str:
    path = tmp_path / f"script-{mode}.sql"
    path.write_text(script)
    env = dict(os.environ, PGPASSWORD=harness.PRINCIPALS["app"]["password"],
               PGOPTIONS="-c tenantgate.tenant=1 -c tenantgate.user=1", PGSSLMODE="disable")
    cmd = [PGBENCH, "-n", "-h", proxy.host, "-p", str(proxy.port), "-U", "app", "-M", mode, "-f", str(path),
           f"--random-seed={SEED}", *args, BENCH_DB]
    print("running", " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{out[-4000:]}"
    return out


def processed(out: str) -> tuple[int, int]:
    m = re.search(r"number of transactions actually processed: (\d+)(?:/(\d+))?", out)
    assert m, out
    return int(m.group(1)), int(m.group(2) or m.group(1))


def failed(out: str) -> int:
    m = re.search(r"number of failed transactions: (\d+)", out)
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_tpcb_branch_scoped(bench_proxy, pg, tmp_path, mode):
    before = snapshot(pg)
    out = run_pgbench(bench_proxy, tmp_path, TPCB_BRANCH_1, mode, "-c", "4", "-j", "2", "-t", "150")
    done, wanted = processed(out)
    assert (done, wanted) == (600, 600) and failed(out) == 0, out
    after = snapshot(pg)
    for key in ("branch2", "tellers2", "accounts2"):
        assert after[key] == before[key], key
    new_rows = after["history"][0] - before["history"][0]
    new_delta = after["history"][2] - before["history"][2]
    assert new_rows == 600 and after["history"][1] == 0
    assert after["branch1"] - before["branch1"] == new_delta
    assert after["tellers1"] - before["tellers1"] == new_delta
    assert after["accounts1"] - before["accounts1"] == new_delta


def test_tpcb_ids_across_branches_touch_only_branch_1(bench_proxy, pg, tmp_path):
    before = snapshot(pg)
    out = run_pgbench(bench_proxy, tmp_path, TPCB_ANY_ID, "prepared", "-c", "4", "-j", "2", "-t", "100")
    assert processed(out) == (400, 400) and failed(out) == 0, out
    after = snapshot(pg)
    for key in ("branch2", "tellers2", "accounts2"):
        assert after[key] == before[key], key  # every write aimed at branch 2 hit no row
    assert after["history"][0] - before["history"][0] == 400 and after["history"][1] == 0
    moved = admin_rows(pg, "SELECT count(*) FROM pgbench_accounts WHERE bid = 1 AND abalance <> 0", db=BENCH_DB)
    assert moved[0][0] > 0


def test_select_only_scoped(bench_proxy, tmp_path):
    out = run_pgbench(bench_proxy, tmp_path, SELECT_ONLY, "prepared", "-c", "4", "-j", "2", "-t", "300")
    assert processed(out) == (1200, 1200) and failed(out) == 0, out
