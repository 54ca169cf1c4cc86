#!/usr/bin/python3
"""Pooling benchmark: tenantgate against PgBouncer with the same pool size.

Not part of the test suite. Run through `bench/e2e/run.sh --pooling [options]`
(which raises the open-file limit and installs what is missing) or directly
with /usr/bin/python3. It reuses e2e_bench.py's stack (PostgreSQL through
scripts/pg_local.sh, pgbench -i, PgBouncer, tenantgate) and its pgbench runner.

Workloads (pgbench select-only, `SELECT abalance FROM pgbench_accounts WHERE
aid = :aid`, -c clients over a pool of -P backends):

  select/simple    -M simple      PgBouncer pool_mode=transaction
  select/extended  -M extended    PgBouncer pool_mode=transaction
  select/prepared  -M prepared    PgBouncer pool_mode=session: PgBouncer 1.18
                                  has no prepared statements in transaction mode,
                                  and a session pool smaller than the clients
                                  would leave the extra clients waiting for
                                  the whole run, so its pool is the client count
  select/connect   -M simple -C   a new connection per transaction, transaction mode

tenantgate runs with [pool] mode = --tg-pool-mode and size = -P (session mode
with size 0 when --tg-pool-mode=session, which is one backend per client). The
rounds are interleaved (every workload on both targets, in alternating order,
then the next round); the reported ratio is the median over rounds of the
per-round TPS ratio tenantgate/PgBouncer.

Memory: VmRSS of each proxy before and after opening 100 idle clients, and
with 10,000 idle clients held (each proxy fresh; clients are psycopg2
connections that log in and then stay idle).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_bench as eb  # noqa: E402

WORKLOADS = [
    # (label, pgbench -M, extra pgbench args, PgBouncer target)
    ("select/simple", "simple", (), "pgbouncer-tx"),
    ("select/extended", "extended", (), "pgbouncer-tx"),
    ("select/prepared", "prepared", (), "pgbouncer-session"),
    ("select/connect", "simple", ("-C",), "pgbouncer-tx"),
]


def parse_args():
    p = argparse.ArgumentParser(prog="bench/e2e/run.sh --pooling",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), help=argparse.SUPPRESS)
    p.add_argument("--build", default=None, help="build directory (default <root>/build)")
    p.add_argument("-c", "--clients", type=int, default=64)
    p.add_argument("-j", "--threads", type=int, default=2)
    p.add_argument("-P", "--pool-size", type=int, default=8)
    p.add_argument("-T", "--duration", type=int, default=10, help="seconds per pgbench run")
    p.add_argument("-r", "--rounds", type=int, default=3)
    p.add_argument("-s", "--scale", type=int, default=10)
    p.add_argument("--tenant", type=int, default=3)
    p.add_argument("--tg-threads", type=int, default=0)
    p.add_argument("--tg-pool-mode", default="session", choices=["session", "transaction"],
                   help="tenantgate's pool.mode (default session: one backend per client)")
    p.add_argument("--workloads", default=",".join(w for w, *_ in WORKLOADS))
    p.add_argument("--idle", default="100,10000",
                   help="comma list of idle-client counts for the memory check ('' to skip)")
    p.add_argument("--results", default=None)
    a = p.parse_args()
    a.build = a.build or os.path.join(a.root, "build")
    a.workloads = [w for w in a.workloads.split(",") if w]
    a.idle = [int(n) for n in a.idle.split(",") if n]
    if a.rounds < 3:
        p.error("--rounds must be at least 3 (ratios are medians of interleaved rounds)")
    if a.results is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        a.results = os.path.join(a.root, "bench", "e2e", "results", f"pool-{stamp}.json")
    return a


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def tg_pool(args):
    if args.tg_pool_mode == "session":
        return {"mode": "session"}
    return {"mode": "transaction", "size": args.pool_size}


def hold_idle(stack, target, n, tenant):
    """Opens n idle psycopg2 clients to `target` and reports the proxy's VmRSS."""
    import psycopg2

    port, user, extra = eb.target_conn(stack, target, tenant)
    pid = eb.proxy_pid(stack, target)
    options = extra.get("PGOPTIONS", "")

    def connect():
        return psycopg2.connect(host="127.0.0.1", port=port, user=user,
                                password=extra["PGPASSWORD"], dbname=eb.DB, options=options,
                                connect_timeout=30)

    warm = connect()  # the first connection's one-time costs are not per client
    with warm.cursor() as c:
        c.execute("SELECT 1")
    warm.close()
    time.sleep(0.5)
    before = eb.rss_kib(pid)
    conns, err = [], None
    t0 = time.time()
    try:
        for _ in range(n):
            conns.append(connect())
    except Exception as e:  # report how far it got
        err = f"{type(e).__name__}: {str(e).strip()[:300]}"
    seconds = time.time() - t0
    time.sleep(1.0)
    held = eb.rss_kib(pid)
    backends = int(eb.run([f"{eb.PG_BIN}/psql", "-XAt", "-h", stack.pgdir, "-p",
                           str(stack.pg_port), "-U", "postgres", "-d", "postgres", "-c",
                           "SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                           "'client backend' AND datname = 'bench'"],
                          env=eb.clean_env()).stdout.strip())
    for c in conns:
        c.close()
    return {"target": target, "requested": n, "opened": len(conns), "error": err,
            "connect_s": round(seconds, 1), "rss_kib_before": before, "rss_kib_held": held,
            "mib_per_100": round((held - before) / 1024.0 * 100.0 / len(conns), 2)
            if conns else None,
            "backend_connections": backends}


def main():
    args = parse_args()
    nofile = raise_nofile()
    started = time.time()
    tg_src = os.path.join(args.build, "proxy", "tenantgate")
    eb.log("== tenantgate pooling benchmark against PgBouncer")
    eb.log(f"command: {shlex.join([sys.executable] + sys.argv)}")
    eb.log(f"settings: clients={args.clients} pool={args.pool_size} threads={args.threads} "
           f"duration={args.duration}s rounds={args.rounds} scale={args.scale} "
           f"tenantgate pool={tg_pool(args)} open files={nofile[0]}")
    eb.wait_stable(tg_src)
    info = eb.versions(tg_src, args.root)
    for k, v in info.items():
        eb.log(f"  {k}: {v}")
    stack = eb.Stack(args)
    doc = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": [sys.executable] + sys.argv, "versions": info,
           "settings": {k: v for k, v in vars(args).items() if k not in ("root",)}}
    runs, memory = [], []
    try:
        stack.start_postgres()
        stack.load_schema(args.scale)
        stack.start_pgbouncer(args.pool_size, "transaction", "pgbouncer-tx",
                              max_client_conn=max(args.idle + [args.clients]) + 100)
        stack.start_pgbouncer(args.clients, "session", "pgbouncer-session",
                              max_client_conn=args.clients + 100)
        stack.configure_tenantgate(tg_src, args.tg_threads, tg_pool(args))
        stack.start_tenantgate()
        script = stack.write("select.sql", eb.scripts(args.tenant)["select"][1])
        logdir = stack.path("pgbench-logs")
        os.makedirs(logdir)
        plan = [w for w in WORKLOADS if w[0] in args.workloads]
        for rnd in range(args.rounds):
            for label, mode, extra, bouncer in plan:
                order = [bouncer, "tenantgate"] if rnd % 2 == 0 else ["tenantgate", bouncer]
                for target in order:
                    r = eb.run_pgbench(stack, args, label, script, mode, target, logdir, extra)
                    if target == "tenantgate" and not stack.tenantgate_alive(label):
                        r["status"] = "CRASH: " + r["status"]
                    r["round"] = rnd
                    runs.append(r)
                    eb.log(f"round {rnd + 1} {label:16} {target:18} {eb.fmt_num(r['tps']):>9} tps "
                           f"p99 {eb.fmt_num(r['latency_ms']['p99'], 2):>7} ms "
                           f"cpu {eb.fmt_num(r['proxy_cpu_us_per_txn'])} us/txn "
                           f"load {r['loadavg_1m_before']:.1f} {r['status'][:120]}")
        eb.log("\n== medians over rounds")
        summary = []
        for label, _, _, bouncer in plan:
            tg = [r for r in runs if r["workload"] == label and r["target"] == "tenantgate"]
            pb = [r for r in runs if r["workload"] == label and r["target"] == bouncer]
            ratios = [t["tps"] / b["tps"] for t, b in zip(tg, pb) if t["tps"] and b["tps"]]
            row = {"workload": label, "pgbouncer": bouncer,
                   "tps_tenantgate": statistics.median([r["tps"] or 0 for r in tg]),
                   "tps_pgbouncer": statistics.median([r["tps"] or 0 for r in pb]),
                   "ratio_median": statistics.median(ratios) if ratios else None,
                   "ratios": [round(x, 3) for x in ratios],
                   "failed_tenantgate": sum(r["failed_transactions"] + r["aborted_clients"]
                                            for r in tg),
                   "failed_pgbouncer": sum(r["failed_transactions"] + r["aborted_clients"]
                                           for r in pb)}
            summary.append(row)
            eb.log(f"{label:16} tenantgate {eb.fmt_num(row['tps_tenantgate']):>9} tps  "
                   f"{bouncer} {eb.fmt_num(row['tps_pgbouncer']):>9} tps  ratio "
                   f"{eb.fmt_num(row['ratio_median'], 3)} (rounds {row['ratios']})  failures "
                   f"tg={row['failed_tenantgate']} pgb={row['failed_pgbouncer']}")
        for n in args.idle:
            for target in ("pgbouncer-tx", "tenantgate"):
                if target == "tenantgate":
                    stack.stop_tenantgate()
                    stack.start_tenantgate()  # fresh process
                m = hold_idle(stack, target, n, args.tenant)
                memory.append(m)
                eb.log(f"idle {n:6} {target:14} opened {m['opened']:6} in {m['connect_s']}s "
                       f"VmRSS {m['rss_kib_before']} -> {m['rss_kib_held']} KiB "
                       f"({m['mib_per_100']} MiB per 100), backends {m['backend_connections']}"
                       + (f"; error: {m['error']}" if m["error"] else ""))
        doc.update({"runs": runs, "summary": summary, "memory": memory})
    finally:
        doc["elapsed_s"] = round(time.time() - started, 1)
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, "w") as f:
            json.dump(doc, f, indent=2)
        eb.log(f"\nresults: {args.results}")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
