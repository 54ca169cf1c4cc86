"""End-to-end: a membership read through tenantgate against the same read
under row-level security in the database.

One PostgreSQL 15 (started here, as e2e_bench.py does), a schema of records
and record_members (10 tenants x 10,000 records, about two members per
record), and one policy written twice: as a tenantgate row policy
(tenant scope plus a restrictive "owner or member" policy whose predicate is
an EXISTS over record_members) and as CREATE POLICY with current_setting.
pgbench runs `SELECT id, data FROM records WHERE id = :rid` (rid over all
tenants, a new literal per call, simple protocol) for one caller, against
tenantgate (service role, policy rewritten into the SQL) and against
PostgreSQL as a role without BYPASSRLS; rounds alternate between the two and
the medians are printed. Not part of the test suite.

    /usr/bin/python3 bench/e2e/membership_bench.py [--rounds 3] [-T 10] [-c 8] [-j 2]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_bench as e2e  # noqa: E402

TENANTS, RECORDS_PER_TENANT = 10, 10000
TENANT, USER = 3, 7

SCHEMA = f"""
CREATE TABLE records (id int PRIMARY KEY, tenant_id int NOT NULL, owner_id int NOT NULL, data text);
CREATE TABLE record_members (tenant_id int NOT NULL, record_id int NOT NULL, user_id int NOT NULL,
                             PRIMARY KEY (record_id, user_id));
CREATE INDEX ON records (tenant_id);
INSERT INTO records SELECT i, i % {TENANTS}, (i * 7919) % 50, 'record ' || i
  FROM generate_series(1, {TENANTS * RECORDS_PER_TENANT}) i;
INSERT INTO record_members SELECT r.tenant_id, r.id, u FROM records r,
  LATERAL (VALUES ((r.id * 31) % 50), ((r.id * 17 + 3) % 50)) AS m(u) ON CONFLICT DO NOTHING;
ANALYZE;
"""

OWNER_OR_MEMBER = ("owner_id = tenantgate.user_id() OR EXISTS (SELECT 1 FROM record_members m "
                   "WHERE m.record_id = records.id AND m.user_id = tenantgate.user_id())")

POLICY = f"""default_action = "deny"
search_path = ["public"]
[tables."public.record_members"]
scope = "tenant"
[tables."public.records"]
scope = "tenant"
[[tables."public.records".policies]]
name = "owner or member"
kind = "restrictive"
using = "{OWNER_OR_MEMBER}"
"""


def rls_sql(role):
    expr = (OWNER_OR_MEMBER.replace("tenantgate.user_id()", "current_setting('app.user')::int"))
    return f"""
GRANT SELECT ON records, record_members TO {role};
ALTER TABLE records ENABLE ROW LEVEL SECURITY; ALTER TABLE records FORCE ROW LEVEL SECURITY;
ALTER TABLE record_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON records USING (tenant_id = current_setting('app.tenant')::int);
CREATE POLICY "owner or member" ON records AS RESTRICTIVE USING ({expr});
CREATE POLICY tenant ON record_members USING (tenant_id = current_setting('app.tenant')::int);
"""


def pgbench(stack, args, target, script):
    if target == "tenantgate":
        port, user = stack.tg_port, e2e.PRINCIPAL
        env = e2e.clean_env(PGPASSWORD=e2e.PRINCIPAL_PASSWORD,
                            PGOPTIONS=f"-c tenantgate.tenant={TENANT} -c tenantgate.user={USER}")
    else:
        port, user = stack.pg_port, e2e.RLS_ROLE
        env = e2e.clean_env(PGPASSWORD=e2e.RLS_PASSWORD,
                            PGOPTIONS=f"-c app.tenant={TENANT} -c app.user={USER}")
    cmd = [e2e.PGBENCH, "-n", "-c", str(args.clients), "-j", str(args.threads), "-T",
           str(args.duration), "-M", "simple", "-f", script, "-h", "127.0.0.1", "-p", str(port),
           "-U", user, e2e.DB]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       timeout=args.duration + 120)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout)
    if r.returncode != 0 or not m or "aborted" in r.stderr:
        raise RuntimeError(f"pgbench against {target} failed:\n{r.stdout}\n{r.stderr}")
    return float(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-T", "--duration", type=int, default=10)
    p.add_argument("-c", "--clients", type=int, default=8)
    p.add_argument("-j", "--threads", type=int, default=2)
    p.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "..", "build"))
    args = p.parse_args()
    binary = os.path.join(args.build, "proxy", "tenantgate")
    stack = e2e.Stack(args)
    try:
        stack.start_postgres()
        stack.psql(f"CREATE ROLE {e2e.SERVICE_ROLE} LOGIN BYPASSRLS PASSWORD '{e2e.SERVICE_PASSWORD}'")
        stack.psql(f"CREATE ROLE {e2e.RLS_ROLE} LOGIN PASSWORD '{e2e.RLS_PASSWORD}'")
        stack.psql(f"CREATE DATABASE {e2e.DB} OWNER {e2e.SERVICE_ROLE}")
        stack.psql(f"SET ROLE {e2e.SERVICE_ROLE};" + SCHEMA + rls_sql(e2e.RLS_ROLE), db=e2e.DB)
        stack.configure_tenantgate(binary)
        stack.write("policy.toml", POLICY)
        r = e2e.run([stack.tg_bin, "check", "--config", stack.tg_config], check=False)
        if r.returncode != 0:
            raise RuntimeError("tenantgate check: " + r.stdout + r.stderr)
        stack.start_tenantgate()
        script = stack.write("read.sql", f"\\set rid random(1, {TENANTS * RECORDS_PER_TENANT})\n"
                                         "SELECT id, data FROM records WHERE id = :rid;\n")
        # The same rows both ways, for every id of a sample.
        for rid in range(1, 200):
            sql = f"SELECT id, data FROM records WHERE id = {rid}"
            a = e2e.run([f"{e2e.PG_BIN}/psql", "-AtX", "-h", "127.0.0.1", "-p", str(stack.tg_port),
                         "-U", e2e.PRINCIPAL, "-d", e2e.DB, "-c", sql],
                        env=e2e.clean_env(PGPASSWORD=e2e.PRINCIPAL_PASSWORD,
                                          PGOPTIONS=f"-c tenantgate.tenant={TENANT} "
                                                    f"-c tenantgate.user={USER}")).stdout
            b = e2e.run([f"{e2e.PG_BIN}/psql", "-AtX", "-h", "127.0.0.1", "-p", str(stack.pg_port),
                         "-U", e2e.RLS_ROLE, "-d", e2e.DB, "-c", sql],
                        env=e2e.clean_env(PGPASSWORD=e2e.RLS_PASSWORD,
                                          PGOPTIONS=f"-c app.tenant={TENANT} -c app.user={USER}")).stdout
            if a != b:
                raise RuntimeError(f"id {rid}: tenantgate {a!r} != RLS {b!r}")
        print("rows agree for ids 1..199", flush=True)
        tps = {"tenantgate": [], "rls": []}
        for i in range(args.rounds):
            for target in ("tenantgate", "rls") if i % 2 == 0 else ("rls", "tenantgate"):
                t = pgbench(stack, args, target, script)
                tps[target].append(t)
                print(f"round {i + 1} {target:10s} {t:10.1f} tps  load {e2e.loadavg()}", flush=True)
        med = {k: statistics.median(v) for k, v in tps.items()}
        print(f"median tps: tenantgate {med['tenantgate']:.1f}, rls {med['rls']:.1f}, "
              f"tenantgate/rls {med['tenantgate'] / med['rls']:.2f}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
