#!/usr/bin/env python3
"""What the audit trail costs: pgbench select-only through tenantgate with
audit.mode = "off" and "all", side by side in one run, rounds interleaved,
medians reported. Not part of the test suite.

    /usr/bin/python3 bench/ops/audit_cost.py [--rounds 5] [--seconds 5] [--clients 8]

Starts its own PostgreSQL 15 (tests/integration/harness.py) and two tenantgate
processes that differ only in [audit]; pgbench connects as principal "app"
with tenant acme. pgbench_accounts is scoped by a tenant column added to it,
so every statement is rewritten and analysed for missing predicates.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import harness  # noqa: E402

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", type=int, default=5)
    ap.add_argument("--protocol", default="simple", choices=["simple", "extended", "prepared"])
    ap.add_argument("--modes", default="off,all", help="audit modes to compare (first is the base)")
    ap.add_argument("--scoped", action="store_true",
                    help="pgbench's select-only statement with the caller's tenant predicate "
                         "(no missing-predicate findings) instead of the stock one (every "
                         "statement is a finding)")
    args = ap.parse_args()

    pg = harness.PgServer()
    pg.start()
    work = Path(tempfile.mkdtemp(prefix="tg-audit-bench-"))
    proxies = {}
    try:
        subprocess.run([PGBENCH, "-i", "-q", "-s", str(args.scale), "-h", str(pg.dir), "-p", str(pg.port),
                        "-U", "postgres", harness.DATABASE], check=True, capture_output=True)
        pg.psql("ALTER TABLE pgbench_accounts ADD COLUMN tenant_id text NOT NULL DEFAULT 'acme';"
                "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;")
        policy = ('default_action = "deny"\nsearch_path = ["public"]\n'
                  '[tables."public.pgbench_accounts"]\nscope = "tenant"\ntenant_column = "tenant_id"\n'
                  # pgbench counts the branches before it starts.
                  '[tables."public.pgbench_branches"]\nscope = "shared"\n')
        modes = args.modes.split(",")
        for mode in modes:
            overrides = {"log": {"level": "warn"}, "listen": {"threads": 1},
                         "limits": {"analysis_threads": 1}}
            if mode != "off":
                overrides["audit"] = {"mode": mode, "file": str(work / f"audit-{mode}.jsonl")}
            p = harness.Proxy(pg, work / f"proxy-{mode}", overrides)
            (p.dir / "policy.toml").write_text(policy)
            proxies[mode] = p.start()

        def tps(p: harness.Proxy) -> float:
            conn = (f"host={p.host} port={p.port} user=app dbname={harness.DATABASE} "
                    f"options='-c tenantgate.tenant=acme -c tenantgate.user=1'")
            env = dict(os.environ, PGPASSWORD=harness.PRINCIPALS["app"]["password"])
            workload = ["-S"]
            if args.scoped:
                script = work / "scoped.sql"
                script.write_text("\\set aid random(1, 100000 * :scale)\n"
                                  "SELECT abalance FROM pgbench_accounts WHERE aid = :aid "
                                  "AND tenant_id = 'acme';\n")
                workload = ["-f", str(script)]
            r = subprocess.run([PGBENCH, "-n", *workload, "-M", args.protocol, "-c", str(args.clients),
                                "-j", str(args.threads), "-T", str(args.seconds), conn],
                               capture_output=True, text=True, env=env)
            m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"pgbench failed: {r.stdout}\n{r.stderr}")
            return float(m.group(1))

        results = {m: [] for m in modes}
        print(f"pgbench {'scoped select' if args.scoped else '-S'} -M {args.protocol} -c {args.clients} -j {args.threads} -T {args.seconds}, "
              f"{args.rounds} rounds, order rotating", flush=True)
        for i in range(args.rounds):
            order = modes[i % len(modes):] + modes[:i % len(modes)]
            for mode in order:
                results[mode].append(tps(proxies[mode]))
            print(f"round {i + 1}: " + ", ".join(f"{m} {results[m][-1]:.0f}" for m in modes) + " tps",
                  flush=True)
        base = statistics.median(results[modes[0]])
        for m in modes:
            med = statistics.median(results[m])
            lines = ""
            if m != "off":
                path = work / f"audit-{m}.jsonl"
                lines = f"; {sum(1 for _ in open(path)) if path.exists() else 0} audit lines"
            print(f"median audit {m}: {med:.0f} tps, ratio to {modes[0]} {med / base:.3f}{lines}")
        return 0
    finally:
        for p in proxies.values():
            p.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
