#!/usr/bin/python3
"""Token switching through tenantgate, end to end, against its alternatives.

Per request, three ways for an app to reach tenantgate as a caller:

  pooled      one open connection whose caller was set at start-up; the
              request is one query (the floor: what a pool costs)
  switch      one open connection shared by callers; the request is
              SET tenantgate.token = '<caller's token>' and then the query
  connect     a new connection per request with the token at start-up,
              the query, and close (what an app without tokens must do)

Rounds are interleaved (pooled, switch, switch-fresh in alternating chunks of
20 requests, then connect) so that load on the shared machine hits all alike; each round's mean per-request time is
recorded and the medians of the rounds are compared. Tokens of 50 callers are
minted before timing, so `switch` measures the cached verification an app
that reuses its callers' tokens sees; `switch-fresh` mints nothing either but
uses a different token for every request (a full HS256 check each time).

Starts its own PostgreSQL 15 and tenantgate (tests/integration/harness.py) in a
temp dir and removes them on exit. Not part of the test suite: it prints, it
does not judge (targets are shown as information).

    /usr/bin/python3 bench/e2e/token_bench.py [--rounds 15] [--requests 200]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import harness  # noqa: E402

SECRET = "bench-token-secret-0123456789abcdef-0123456789"
SECRET_ENV = "TG_BENCH_TOKEN_SECRET"
TENANTS = [f"t{i}" for i in range(10)]
TABLE = "tg_token_bench_items"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(tenant: str, user: int, nonce: int = 0) -> str:
    now = int(time.time())
    payload = {"tenant": tenant, "sub": str(user), "iat": now, "exp": now + 3600, "n": nonce}
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    return signing_input + "." + b64(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=200, help="requests per round and mode")
    ap.add_argument("--connect-requests", type=int, default=40, help="requests per round for connect")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tg-token-bench-"))
    harness.pin_tenantgate_bin(work)
    pg = harness.PgServer()
    proxy = None
    try:
        pg.start()
        pg.psql(f"DROP TABLE IF EXISTS {TABLE};"
                f"CREATE TABLE {TABLE} (id int PRIMARY KEY, tenant_id text NOT NULL, body text);"
                f"INSERT INTO {TABLE} SELECT g, 't' || (g % 10), 'item ' || g FROM generate_series(1, 10000) g;"
                f"GRANT ALL ON {TABLE} TO PUBLIC")
        principals = [{"name": "app", "scram": harness.scram_verifier("app-secret"), "tenants": ["*"],
                       "identity": "either"}]
        proxy = harness.Proxy(pg, work / "proxy", {"principals": principals, "log": {"level": "warn"}},
                              extra_env={SECRET_ENV: SECRET})
        (proxy.dir / "policy.toml").write_text(
            f'default_action = "deny"\n[tables."public.{TABLE}"]\nscope = "tenant"\ntenant_column = "tenant_id"\n')
        proxy.config_path.write_text(proxy.config_path.read_text() +
                                     f'\n[identity.token]\nsecret_env = "{SECRET_ENV}"\n')
        proxy.start()

        def dsn(tok: str | None) -> str:
            return harness.conninfo(host=proxy.host, port=proxy.port, user="app", password="app-secret",
                                    dbname=harness.DATABASE, sslmode="disable",
                                    options=f"-c tenantgate.token={tok}" if tok else None)

        callers = [(TENANTS[i % 10], i) for i in range(50)]
        tokens = [token(t, u) for t, u in callers]
        fresh = iter([token(callers[i % 50][0], i, nonce=i)
                      for i in range(args.rounds * args.requests + 10)])
        query = f"SELECT id, body FROM {TABLE} WHERE id = %s"

        pooled = psycopg2.connect(dsn(tokens[0]))
        pooled.autocommit = True
        shared = psycopg2.connect(dsn(None))
        shared.autocommit = True

        def run_pooled(n: int) -> float:
            cur = pooled.cursor()
            t0 = time.perf_counter()
            for i in range(n):
                cur.execute(query, (i % 10000 + 1,))
                cur.fetchall()
            return (time.perf_counter() - t0) / n

        def run_switch(n: int, fresh_tokens: bool = False) -> float:
            cur = shared.cursor()
            batch = [next(fresh) for _ in range(n)] if fresh_tokens else None
            t0 = time.perf_counter()
            for i in range(n):
                tok = batch[i] if fresh_tokens else tokens[i % len(tokens)]
                cur.execute("SET tenantgate.token = %s", (tok,))
                cur.execute(query, (i % 10000 + 1,))
                cur.fetchall()
            return (time.perf_counter() - t0) / n

        def run_connect(n: int) -> float:
            t0 = time.perf_counter()
            for i in range(n):
                c = psycopg2.connect(dsn(tokens[i % len(tokens)]))
                c.autocommit = True
                cur = c.cursor()
                cur.execute(query, (i % 10000 + 1,))
                cur.fetchall()
                c.close()
            return (time.perf_counter() - t0) / n

        # Correctness before speed: a switched connection sees its caller's rows only.
        cur = shared.cursor()
        cur.execute("SET tenantgate.token = %s", (tokens[3],))
        cur.execute(f"SELECT DISTINCT tenant_id FROM {TABLE}")
        assert cur.fetchall() == [(callers[3][0],)], "switch did not scope"

        run_pooled(50), run_switch(50), run_connect(5)  # warm-up
        samples: dict[str, list[float]] = {"pooled": [], "switch": [], "switch-fresh": [], "connect": []}
        # Within a round the modes alternate in chunks of 20 requests, so that
        # a burst of load from elsewhere on the machine hits all of them.
        chunk = 20
        for r in range(args.rounds):
            totals = {k: 0.0 for k in samples}
            for _ in range(max(1, args.requests // chunk)):
                totals["pooled"] += run_pooled(chunk)
                totals["switch"] += run_switch(chunk)
                totals["switch-fresh"] += run_switch(chunk, fresh_tokens=True)
            chunks = max(1, args.requests // chunk)
            for k in ("pooled", "switch", "switch-fresh"):
                samples[k].append(totals[k] / chunks)
            samples["connect"].append(run_connect(args.connect_requests))
        med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
        print(f"rounds={args.rounds} requests/round={args.requests} (connect {args.connect_requests}); "
              f"median of per-round mean latency per request, microseconds")
        for k in ["pooled", "switch", "switch-fresh", "connect"]:
            lo, hi = min(samples[k]) * 1e6, max(samples[k]) * 1e6
            print(f"  {k:<13} {med[k]:9.1f} us   (rounds {lo:.1f} .. {hi:.1f})")
        ratio_pool = med["switch"] / med["pooled"]
        ratio_conn = med["connect"] / med["switch"]
        print(f"switch / pooled        = {ratio_pool:.2f}x   (target <= 1.3x: "
              f"{'PASS' if ratio_pool <= 1.3 else 'FAIL'})")
        print(f"switch-fresh / pooled  = {med['switch-fresh'] / med['pooled']:.2f}x")
        print(f"connect / switch       = {ratio_conn:.1f}x   (target >= 20x: {'PASS' if ratio_conn >= 20 else 'FAIL'})")
        pooled.close()
        shared.close()
        return 0
    finally:
        if proxy is not None:
            proxy.stop()
        try:
            pg.psql(f"DROP TABLE IF EXISTS {TABLE}")
        except Exception:
            pass
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
