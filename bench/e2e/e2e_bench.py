#!/usr/bin/python3
"""End-to-end benchmark of tenantgate against its alternatives, with pgbench.

Starts a throw-away PostgreSQL 15, PgBouncer (session pooling) and tenantgate
(SCRAM, pgbench tables scoped by bid), loads the pgbench schema, adds a
row-level-security role, then runs the same pgbench scripts against four
targets: PostgreSQL directly, PgBouncer, tenantgate, and PostgreSQL directly as
the RLS role. Prints TPS, latency percentiles (from pgbench's per-transaction
logs), errors and ratios as a table, writes them as JSON, checks the
performance targets (informational) and measures tenantgate's memory per idle
connection. Everything it starts is stopped and removed on exit, Ctrl-C
included. Not part of the test suite: it measures, it does not judge.

Call it through bench/e2e/run.sh, which builds and installs what is missing.
"""

import argparse
import base64
import datetime
import glob
import hashlib
import hmac
import json
import os
import platform
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
PGBENCH = os.path.join(PG_BIN, "pgbench")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# The project's one PostgreSQL launcher.
PG_LOCAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                        "pg_local.sh")

DB = "bench"
SERVICE_ROLE, SERVICE_PASSWORD = "tgbench", "tgbench-e2e"  # owner, BYPASSRLS
RLS_ROLE, RLS_PASSWORD = "rls_app", "rls-app-e2e"  # no BYPASSRLS, not owner
PRINCIPAL, PRINCIPAL_PASSWORD = "app", "app-e2e-secret"  # tenantgate principal
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]

TARGETS = ["direct", "pgbouncer", "tenantgate", "rls"]
TARGET_NOTES = {
    "direct": "PostgreSQL, service role (owner, BYPASSRLS)",
    "pgbouncer": "PgBouncer session pooling -> PostgreSQL, service role",
    "tenantgate": "tenantgate (SCRAM principal 'app') -> PostgreSQL as service role",
    "rls": "PostgreSQL as rls_app with FORCE ROW LEVEL SECURITY",
}

RSS_CONNECTIONS = 100


# ----------------------------------------------------------------------------
# pgbench scripts


def orm_small_sql(aid):
    """SQLAlchemy-style SELECT with aliases and a join: about 166 bytes."""
    return ("SELECT a.aid AS a_aid, a.abalance AS a_abalance, b.bbalance AS b_bbalance "
            "FROM pgbench_accounts AS a JOIN pgbench_branches AS b ON b.bid = a.bid "
            f"WHERE a.aid = {aid}")


def orm_large_sql(aid):
    """A 20-column SELECT (the columns of both tables, aliased again and again):
    about 837 bytes."""
    ta, tb = "account", "branches"
    cols = [(ta, c) for c in ("aid", "bid", "abalance", "filler")] + \
           [(tb, c) for c in ("bid", "bbalance", "filler")]
    items = []
    for i in range(20):
        t, c = cols[i % len(cols)]
        items.append(f"{t}.{c} AS {t}_{c}_{i // len(cols) + 1}")
    return (f"SELECT {', '.join(items)} FROM pgbench_accounts AS {ta} "
            f"JOIN pgbench_branches AS {tb} ON {tb}.bid = {ta}.bid WHERE {ta}.aid = {aid}")


def tenant_aid(tenant):
    return f"\\set aid ({tenant} - 1) * 100000 + random(1, 100000)\n"


def scripts(tenant):
    """name -> (description, script text, sample statement for size reports)."""
    select = ("\\set aid random(1, 100000 * :scale)\n"
              "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n")
    tpcb = (f"\\set bid {tenant}\n"
            "\\set aid (:bid - 1) * 100000 + random(1, 100000)\n"
            "\\set tid (:bid - 1) * 10 + random(1, 10)\n"
            "\\set delta random(-5000, 5000)\n"
            "BEGIN;\n"
            "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
            "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
            "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n"
            "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
            "VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n"
            "END;\n")
    sample_aid = (tenant - 1) * 100000 + 12345
    return {
        "select": ("select-only by aid (aid over all branches)", select,
                   "SELECT abalance FROM pgbench_accounts WHERE aid = 512345;"),
        "tpcb": (f"TPC-B-like read-write, branch fixed to bid {tenant}", tpcb, None),
        "orm166": ("ORM-like SELECT, join, new literal per call (~166 B)",
                   tenant_aid(tenant) + orm_small_sql(":aid") + ";\n",
                   orm_small_sql(sample_aid)),
        "orm837": ("ORM-like 20-column SELECT, new literal per call (~837 B)",
                   tenant_aid(tenant) + orm_large_sql(":aid") + ";\n",
                   orm_large_sql(sample_aid)),
    }


# (workload label, script name, pgbench -M mode)
WORKLOADS = [
    ("select/simple", "select", "simple"),
    ("select/extended", "select", "extended"),
    ("select/prepared", "select", "prepared"),
    ("tpcb/prepared", "tpcb", "prepared"),
    ("tpcb/simple", "tpcb", "simple"),
    ("orm166/simple", "orm166", "simple"),
    ("orm837/simple", "orm837", "simple"),
]


# ----------------------------------------------------------------------------
# small helpers


def log(msg=""):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def is_root():
    return os.geteuid() == 0


def scram_verifier(password, iterations=4096):
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def clean_env(**extra):
    """The environment for client programs: no inherited PG* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {shlex.join(cmd)}\n"
                           f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    """utime + stime of a process (all threads), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def fmt_num(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ----------------------------------------------------------------------------
# the servers


class Stack:
    """PostgreSQL, PgBouncer and tenantgate in one temp dir; stop() undoes all."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tg-e2e-")
        os.chmod(self.tmp, 0o755)
        if is_root():
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        self.pgdir = os.path.join(self.tmp, "pg")  # data/, the socket, postgres.log
        self.pg_port = self.bouncer_port = self.tg_port = None
        self.pg_started = False
        self.bouncer = None
        self.bouncer_pid = None
        self.bouncers = {}  # name -> port, pid, proc, mode, pool_size
        self.tg = None
        self.tg_log = None
        self.tg_bin = None
        self.tg_starts = 0
        self.tg_crashes = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        if is_root():
            pw = pwd.getpwnam("postgres")
            os.chown(p, pw.pw_uid, pw.pw_gid)
        return p

    # -- PostgreSQL --------------------------------------------------------

    def start_postgres(self):
        # scripts/pg_local.sh is the project's one PostgreSQL launcher; its
        # default pg_hba (trust for postgres, scram-sha-256 for the rest) is
        # what the benchmark needs.
        for attempt in range(5):
            self.pg_port = free_port()
            r = run([PG_LOCAL, "start", self.pgdir, str(self.pg_port), "-c", "max_connections=200",
                     "-c", "shared_buffers=256MB"], check=False)
            if r.returncode == 0:
                break
            if attempt == 4:
                raise RuntimeError(f"PostgreSQL did not start:\n{r.stderr}")
        self.pg_started = True

    def psql(self, sql, user="postgres", db="postgres"):
        return run([f"{PG_BIN}/psql", "-qX", "-v", "ON_ERROR_STOP=1", "-h", self.pgdir, "-p",
                    str(self.pg_port), "-U", user, "-d", db, "-c", sql], env=clean_env()).stdout

    def load_schema(self, scale):
        self.psql(f"CREATE ROLE {SERVICE_ROLE} LOGIN BYPASSRLS PASSWORD '{SERVICE_PASSWORD}'")
        self.psql(f"CREATE ROLE {RLS_ROLE} LOGIN PASSWORD '{RLS_PASSWORD}'")
        self.psql(f"CREATE DATABASE {DB} OWNER {SERVICE_ROLE}")
        t0 = time.time()
        run([PGBENCH, "-i", "-q", "-s", str(scale), "-h", "127.0.0.1", "-p", str(self.pg_port),
             "-U", SERVICE_ROLE, DB], env=clean_env(PGPASSWORD=SERVICE_PASSWORD))
        stmts = [f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TABLES)} TO {RLS_ROLE}"]
        for t in TABLES:
            stmts += [f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
                      f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
                      f"CREATE POLICY tenant_isolation ON {t} "
                      "USING (bid = current_setting('app.tenant')::int) "
                      "WITH CHECK (bid = current_setting('app.tenant')::int)"]
        self.psql("; ".join(stmts), db=DB)
        return time.time() - t0

    # -- PgBouncer ---------------------------------------------------------

    def start_pgbouncer(self, pool_size, pool_mode="session", name="pgbouncer",
                        max_client_conn=None):
        """Starts a PgBouncer called `name` (a target of target_conn). The
        first one started is also self.bouncer_port / self.bouncer_pid."""
        port = free_port()
        self.write("userlist.txt", f'"{SERVICE_ROLE}" "{SERVICE_PASSWORD}"\n', 0o600)
        ini = self.write(f"{name}.ini", f"""[databases]
{DB} = host=127.0.0.1 port={self.pg_port} dbname={DB}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {self.path("userlist.txt")}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = {max_client_conn or pool_size + 50}
max_db_connections = 0
logfile = {self.path(name + ".log")}
pidfile = {self.path(name + ".pid")}
log_connections = 0
log_disconnections = 0
""" + ("user = postgres\n" if is_root() else ""))
        # As root, PgBouncer drops to `user` itself (it refuses to run as
        # root) and keeps this process's open-file limit, which runuser's
        # login session would lower.
        proc = subprocess.Popen([PGBOUNCER, ini], stdout=subprocess.DEVNULL,
                                stderr=open(self.path(name + ".stderr"), "w"),
                                start_new_session=True)
        self._wait_port(port, proc, name, self.path(name + ".log"))
        with open(self.path(name + ".pid")) as f:
            pid = int(f.read().strip())
        self.bouncers[name] = {"port": port, "pid": pid, "proc": proc, "mode": pool_mode,
                               "pool_size": pool_size}
        if self.bouncer is None:
            self.bouncer, self.bouncer_port, self.bouncer_pid = proc, port, pid

    # -- tenantgate --------------------------------------------------------

    def configure_tenantgate(self, binary, listen_threads=0, pool=None):
        """`pool`: the keys of tenantgate's [pool] section (default: none, session mode)."""
        # A private copy: other engineers relink build/proxy/tenantgate while we run.
        self.tg_bin = self.path("tenantgate")
        shutil.copy2(binary, self.tg_bin)
        self.tg_port = free_port()
        self.write("policy.toml", "default_action = \"deny\"\nsearch_path = [\"public\"]\n\n" + "".join(
            f'[tables."public.{t}"]\nscope = "tenant"\ntenant_column = "bid"\n\n' for t in TABLES))
        self.tg_config = self.write("tenantgate.toml", f"""# written by bench/e2e/e2e_bench.py
[listen]
host = "127.0.0.1"
port = {self.tg_port}
threads = {listen_threads}

[backend]
host = "127.0.0.1"
port = {self.pg_port}
user = "{SERVICE_ROLE}"
password_env = "TENANTGATE_BACKEND_PASSWORD"
dialect = "postgresql"

[auth]
mode = "scram"

[[principals]]
name = "{PRINCIPAL}"
scram = "{scram_verifier(PRINCIPAL_PASSWORD)}"
tenants = ["*"]

[identity]
tenant_type = "int"

[policy]
file = "policy.toml"

[limits]
max_client_connections = 20000

[log]
level = "info"
""" + ("\n[pool]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in pool.items())
       if pool else ""))
        r = run([self.tg_bin, "check", "--config", self.tg_config], check=False)
        out = (r.stdout + r.stderr).strip()
        log(f"tenantgate check --config {self.tg_config}: exit {r.returncode}"
            + (f"\n  {out}" if out else ""))
        if r.returncode != 0:
            raise RuntimeError("tenantgate check rejected the generated configuration")

    def start_tenantgate(self):
        self.tg_starts += 1
        self.tg_log = self.path(f"tenantgate.{self.tg_starts}.log")
        self.tg = subprocess.Popen([self.tg_bin, "--config", self.tg_config],
                                   stdout=open(self.tg_log, "w"), stderr=subprocess.STDOUT,
                                   env=clean_env(TENANTGATE_BACKEND_PASSWORD=SERVICE_PASSWORD),
                                   start_new_session=True)
        self._wait_port(self.tg_port, self.tg, "tenantgate", self.tg_log)

    def stop_tenantgate(self):
        if self.tg and self.tg.poll() is None:
            self.tg.send_signal(signal.SIGTERM)
            try:
                self.tg.wait(10)
            except subprocess.TimeoutExpired:
                self.tg.kill()
                self.tg.wait()
        self.tg = None

    def tenantgate_alive(self, where):
        """Notes a crash (and restarts) if tenantgate exited; returns False then."""
        if self.tg and self.tg.poll() is None:
            return True
        rc = self.tg.returncode if self.tg else None
        tail = tail_file(self.tg_log, 30)
        self.tg_crashes.append({"after": where, "exit_code": rc, "log_tail": tail})
        log(f"!! tenantgate exited (code {rc}) during {where}; last log lines:\n{tail}")
        log("!! restarting tenantgate for the remaining runs")
        self.start_tenantgate()
        return False

    def tg_log_summary(self):
        """Counts of log lines by level and the most frequent refusals/errors."""
        levels, messages = {}, {}
        for p in sorted(glob.glob(self.path("tenantgate.*.log"))):
            with open(p, errors="replace") as f:
                for line in f:
                    # "<timestamp> <level> <message>" (text) or JSON with "level"
                    m = re.match(r"\S+\s+\[?(trace|debug|info|warning|warn|error|critical)\]?\s",
                                 line) or re.search(r'"level"\s*:\s*"(\w+)"', line)
                    lvl = m.group(1) if m else "other"
                    levels[lvl] = levels.get(lvl, 0) + 1
                    if "session started" in line or "listening on" in line:
                        continue
                    key = re.sub(r"^\S+\s+", "", line.strip())
                    key = re.sub(r"(session|peer|pid)=\S+", r"\1=*", key)[:300]
                    messages[key] = messages.get(key, 0) + 1
        top = sorted(messages.items(), key=lambda kv: -kv[1])[:8]
        return levels, top

    # -- shared ------------------------------------------------------------

    def _wait_port(self, port, proc, name, logfile, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} at start:\n"
                                   + tail_file(logfile, 20))
            if port_open(port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not listen on {port} within {timeout}s:\n"
                           + tail_file(logfile, 20))

    def stop(self):
        try:
            self.stop_tenantgate()
        except Exception as e:  # keep cleaning up
            log(f"cleanup: tenantgate: {e}")
        for b in self.bouncers.values():
            try:
                os.kill(b["pid"], signal.SIGTERM)
                b["proc"].wait(10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(b["proc"].pid, signal.SIGKILL)
                except OSError:
                    pass
        self.bouncers = {}
        self.bouncer = None
        if self.pg_started:
            run([PG_LOCAL, "stop", self.pgdir, "--immediate"], check=False)
            self.pg_started = False
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_stable(path, quiet_s=3.0, timeout_s=300):
    """Waits until a file's size and mtime have not changed for quiet_s: the
    binary may be being relinked by someone else's build."""
    deadline = time.time() + timeout_s
    last, since = None, time.time()
    while time.time() < deadline:
        try:
            st = os.stat(path)
            cur = (st.st_size, st.st_mtime_ns)
        except OSError:
            cur = None
        if cur != last:
            last, since = cur, time.time()
        elif cur is not None and time.time() - since >= quiet_s:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{path} did not settle within {timeout_s}s (missing or being rebuilt)")


def tail_file(path, n):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return "(no log)"


# ----------------------------------------------------------------------------
# pgbench


def target_conn(stack, target, tenant):
    """(port, user, extra environment) for one target."""
    if target == "direct":
        return stack.pg_port, SERVICE_ROLE, {"PGPASSWORD": SERVICE_PASSWORD}
    if target in stack.bouncers:
        return stack.bouncers[target]["port"], SERVICE_ROLE, {"PGPASSWORD": SERVICE_PASSWORD}
    if target == "tenantgate":
        return stack.tg_port, PRINCIPAL, {"PGPASSWORD": PRINCIPAL_PASSWORD,
                                          "PGOPTIONS": f"-c tenantgate.tenant={tenant}"}
    if target == "rls":
        return stack.pg_port, RLS_ROLE, {"PGPASSWORD": RLS_PASSWORD,
                                         "PGOPTIONS": f"-c app.tenant={tenant}"}
    raise ValueError(target)


def proxy_pid(stack, target):
    """The process whose CPU a run of `target` is charged to, or None."""
    if target == "tenantgate":
        return stack.tg.pid
    if target in stack.bouncers:
        return stack.bouncers[target]["pid"]
    return None


def read_latencies(prefix):
    """Per-transaction latencies (microseconds) from pgbench -l logs."""
    lat, failed = [], 0
    for p in glob.glob(prefix + ".*"):
        with open(p) as f:
            for line in f:
                cols = line.split()
                if len(cols) < 3:
                    continue
                if cols[2].isdigit():
                    lat.append(int(cols[2]))
                elif cols[2] != "skipped":  # "failed", "serialization", "deadlock"
                    failed += 1
    lat.sort()
    return lat, failed


def summarize_errors(stderr):
    """The distinct error messages of a pgbench run, most frequent first."""
    counts = {}
    for line in stderr.splitlines():
        if "error" not in line.lower() and "fatal" not in line.lower():
            continue
        if "Run was aborted" in line:
            continue
        msg = re.sub(r"client \d+", "client N", line.strip())
        msg = re.sub(r"\b\d{6,}\b", "#", msg)  # literals (aid) differ per call
        counts[msg] = counts.get(msg, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def run_pgbench(stack, args, workload, script_path, mode, target, logdir, extra_args=()):
    port, user, extra = target_conn(stack, target, args.tenant)
    prefix = os.path.join(logdir, f"{workload.replace('/', '_')}.{target}")
    cmd = [PGBENCH, "-n", "-c", str(args.clients), "-j", str(args.threads), "-T",
           str(args.duration), "-M", mode, "-D", f"scale={args.scale}", "-f", script_path,
           *extra_args, "-l", f"--log-prefix={prefix}", "-h", "127.0.0.1", "-p", str(port),
           "-U", user, DB]
    env = clean_env(**extra)
    pid = proxy_pid(stack, target)
    cpu0 = cpu_seconds(pid) if pid else None
    load0 = loadavg()
    t0 = time.time()
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=args.duration + 120)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", (e.stdout or b"").decode(errors="replace"), \
            (e.stderr or b"").decode(errors="replace") + "\npgbench timed out"
    wall = time.time() - t0
    cpu1 = cpu_seconds(pid) if pid else None

    # -C (a connection per transaction) reports "including reconnection times".
    m = re.search(r"tps = ([\d.]+) \((?:without initial connection time|including reconnection "
                  r"times)\)", out)
    tps = float(m.group(1)) if m else None
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    processed = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    failed = int(m.group(1)) if m else 0
    aborted = len(re.findall(r"client \d+ (?:script \d+ )?aborted", err))
    lat, log_failed = read_latencies(prefix)
    errors = summarize_errors(err)
    status = "ok"
    if rc != 0 or aborted or failed or log_failed or errors:
        first = errors[0][0] if errors else f"pgbench exit {rc}"
        status = (f"ERROR ({aborted}/{args.clients} clients aborted, {failed} failed): "
                  f"{first}")
    result = {
        "workload": workload, "mode": mode, "target": target,
        "command": shlex.join(cmd),
        "env": {k: v for k, v in extra.items() if k != "PGPASSWORD"},
        "exit_code": rc, "tps": tps, "transactions": processed,
        "failed_transactions": max(failed, log_failed), "aborted_clients": aborted,
        "latency_ms": {
            "p50": percentile(lat, 50) / 1000.0 if lat else None,
            "p90": percentile(lat, 90) / 1000.0 if lat else None,
            "p99": percentile(lat, 99) / 1000.0 if lat else None,
            "max": lat[-1] / 1000.0 if lat else None,
            "mean": sum(lat) / len(lat) / 1000.0 if lat else None,
            "samples": len(lat),
        },
        "proxy_cpu_pct": (100.0 * (cpu1 - cpu0) / wall) if cpu0 is not None and cpu1 is not None
        else None,
        # CPU the proxy spent per transaction: less sensitive to machine load than TPS
        "proxy_cpu_us_per_txn": (1e6 * (cpu1 - cpu0) / processed)
        if cpu0 is not None and cpu1 is not None and processed else None,
        "loadavg_1m_before": load0, "loadavg_1m_after": loadavg(), "wall_s": wall,
        "status": status, "errors": errors[:5],
        "stdout_tail": out.strip().splitlines()[-12:] if status != "ok" else [],
    }
    for p in glob.glob(prefix + ".*"):
        os.remove(p)  # logs grow large; the percentiles are kept
    return result


# ----------------------------------------------------------------------------
# memory per idle connection


def measure_rss(stack, tenant, n):
    import psycopg2  # Debian's python3-psycopg2, for /usr/bin/python3

    def connect():
        return psycopg2.connect(host="127.0.0.1", port=stack.tg_port, user=PRINCIPAL,
                                password=PRINCIPAL_PASSWORD, dbname=DB,
                                options=f"-c tenantgate.tenant={tenant}", connect_timeout=10)

    stack.stop_tenantgate()
    stack.start_tenantgate()  # fresh process: earlier runs do not hide the growth
    pid = stack.tg.pid
    warm = connect()
    with warm.cursor() as c:
        c.execute("SELECT abalance FROM pgbench_accounts WHERE aid = 1")
        c.fetchall()
    warm.close()
    time.sleep(0.5)
    before = rss_kib(pid)
    conns, err = [], None
    t0 = time.time()
    try:
        for _ in range(n):
            conns.append(connect())
    except Exception as e:  # report how far it got
        err = f"{type(e).__name__}: {str(e).strip()}"
    connect_s = time.time() - t0
    time.sleep(1.0)
    idle = rss_kib(pid)
    for c in conns:  # one statement each: per-session state after first use
        try:
            with c.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        except Exception as e:
            err = err or f"{type(e).__name__}: {str(e).strip()}"
    time.sleep(0.5)
    used = rss_kib(pid)
    for c in conns:
        c.close()
    time.sleep(1.0)
    after_close = rss_kib(pid)
    opened = len(conns)
    per100 = (idle - before) / 1024.0 * (100.0 / opened) if opened else None
    return {
        "connections_requested": n, "connections_opened": opened, "error": err,
        "connect_seconds": connect_s, "rss_kib_before": before, "rss_kib_idle": idle,
        "rss_kib_after_one_statement_each": used, "rss_kib_after_close": after_close,
        "growth_mib_per_100_idle": per100,
        "growth_mib_per_100_after_statement": (used - before) / 1024.0 * (100.0 / opened)
        if opened else None,
    }


# ----------------------------------------------------------------------------
# reporting


def print_table(rows, headers, aligns):
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, aligns)).rstrip()

    log(line(headers))
    log("  ".join("-" * w for w in widths))
    for r in rows:
        log(line(r))


def report(results, targets):
    by = {(r["workload"], r["target"]): r for r in results}
    workloads = [w for w, _, _ in WORKLOADS if any(k[0] == w for k in by)]
    rows = []
    for w in workloads:
        for t in targets:
            r = by.get((w, t))
            if not r:
                continue
            lat = r["latency_ms"]
            rows.append([w, t, fmt_num(r["tps"]), fmt_num(lat["p50"], 3), fmt_num(lat["p99"], 3),
                         str(r["transactions"]), str(r["failed_transactions"]),
                         str(r["aborted_clients"]),
                         fmt_num(r["proxy_cpu_pct"], 0) if r["proxy_cpu_pct"] is not None else "",
                         fmt_num(r["proxy_cpu_us_per_txn"], 0)
                         if r["proxy_cpu_us_per_txn"] is not None else "",
                         f"{r['loadavg_1m_before']:.1f}",
                         r["status"] if r["status"] == "ok" else r["status"][:110]])
    log("")
    log("== results (latency from pgbench per-transaction logs; proxy cpu% = CPU of the proxy "
        "process over the run, all threads; us/txn = proxy CPU per transaction; load = 1-min "
        "loadavg before the run)")
    print_table(rows, ["workload", "target", "TPS", "p50 ms", "p99 ms", "txns", "failed",
                       "aborted", "proxy cpu%", "us/txn", "load", "status"],
                ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "l"])

    ratios = {}
    rrows = []
    for w in workloads:
        g = lambda t, k="tps": (by.get((w, t)) or {}).get(k)
        p50 = lambda t: ((by.get((w, t)) or {}).get("latency_ms") or {}).get("p50")
        ratios[w] = {
            "tenantgate/direct": ratio(g("tenantgate"), g("direct")),
            "tenantgate/pgbouncer": ratio(g("tenantgate"), g("pgbouncer")),
            "rls/direct": ratio(g("rls"), g("direct")),
            "pgbouncer/direct": ratio(g("pgbouncer"), g("direct")),
            "p50 tenantgate-direct ms": (p50("tenantgate") - p50("direct"))
            if p50("tenantgate") is not None and p50("direct") is not None else None,
        }
        tg_ok = (by.get((w, "tenantgate")) or {}).get("status", "ok") == "ok"
        rr = ratios[w]
        rrows.append([w, fmt_num(rr["tenantgate/direct"], 3),
                      fmt_num(rr["tenantgate/pgbouncer"], 3), fmt_num(rr["rls/direct"], 3),
                      fmt_num(rr["pgbouncer/direct"], 3), fmt_num(rr["p50 tenantgate-direct ms"], 3),
                      "" if tg_ok else "tenantgate had errors: ratio is not meaningful"])
    log("")
    log("== TPS ratios (same run)")
    print_table(rrows, ["workload", "tg/direct", "tg/pgbouncer", "rls/direct", "pgb/direct",
                        "p50 tg-direct ms", "note"], ["l", "r", "r", "r", "r", "r", "l"])
    return ratios


def check_targets(results, rss):
    by = {(r["workload"], r["target"]): r for r in results}
    checks = []

    def tps_check(name, workload, other, factor):
        tg, ot = by.get((workload, "tenantgate")), by.get((workload, other))
        if not tg or not ot:
            checks.append((name, None, "not run"))
            return
        if tg["tps"] is None or ot["tps"] is None:
            checks.append((name, False, f"no TPS (tenantgate: {tg['status'][:80]})"))
            return
        r = tg["tps"] / ot["tps"] if ot["tps"] else 0.0
        ok = tg["status"] == "ok" and r >= factor
        detail = f"tenantgate {tg['tps']:.1f} vs {other} {ot['tps']:.1f} tps = {r:.3f} (need >= {factor})"
        if tg["status"] != "ok":
            detail += f"; tenantgate errors: {tg['status'][:80]}"
        checks.append((name, ok, detail))

    for mode in ("simple", "extended", "prepared"):
        tps_check(f"select-only {mode}: tenantgate >= PgBouncer", f"select/{mode}", "pgbouncer", 1.0)
    tps_check("select-only prepared: tenantgate >= 0.75 x direct", "select/prepared", "direct", 0.75)
    tps_check("ORM-like 166 B simple: tenantgate >= 0.7 x PgBouncer", "orm166/simple", "pgbouncer", 0.7)
    tps_check("ORM-like 837 B simple: tenantgate >= 0.7 x PgBouncer", "orm837/simple", "pgbouncer", 0.7)
    if rss is None:
        checks.append(("RSS growth <= 4 MiB per 100 idle connections", None, "not run"))
    elif rss.get("growth_mib_per_100_idle") is None:
        checks.append(("RSS growth <= 4 MiB per 100 idle connections", False,
                       f"no connection opened: {rss.get('error')}"))
    else:
        g = rss["growth_mib_per_100_idle"]
        detail = (f"{g:.2f} MiB per 100 idle connections ({rss['connections_opened']} opened; "
                  f"VmRSS {rss['rss_kib_before']} -> {rss['rss_kib_idle']} KiB)")
        if rss.get("error"):
            detail += f"; error: {rss['error']}"
        checks.append(("RSS growth <= 4 MiB per 100 idle connections",
                       g <= 4.0 and rss["connections_opened"] == rss["connections_requested"],
                       detail))
    log("")
    log("== targets (informational)")
    for name, ok, detail in checks:
        word = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        log(f"{word}  {name}: {detail}")
    return [{"target": n, "result": ("SKIP" if ok is None else "PASS" if ok else "FAIL"),
             "detail": d} for n, ok, d in checks]


def run_microbench(build, quick):
    exe = os.path.join(build, "bench", "tg_rewriter_bench")
    log("")
    if not os.access(exe, os.X_OK):
        log(f"== rewriter microbenchmarks: {exe} not built; skipped")
        return None
    cmd = [exe] + (["--benchmark_min_time=0.05"] if quick else [])
    log(f"== rewriter microbenchmarks: {shlex.join(cmd)}")
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        out = r.stdout
        if r.returncode != 0:
            out += f"\n(exit code {r.returncode})"
    except subprocess.TimeoutExpired:
        out = "(timed out after 600 s)"
    log(out.rstrip())
    return out


def versions(tg_bin, root):
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=10)
            return r.stdout.strip().splitlines()[0] if r.stdout.strip() else ""
        except Exception as e:
            return f"? ({e})"
    git = first_line(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return {
        "tenantgate": first_line([tg_bin, "--version"]),
        "tenantgate_binary_mtime": datetime.datetime.fromtimestamp(
            os.path.getmtime(tg_bin)).isoformat(timespec="seconds"),
        "git": git + (f" (+{len(dirty.splitlines())} modified tracked files)" if dirty else ""),
        "postgres": first_line([f"{PG_BIN}/postgres", "--version"]),
        "pgbench": first_line([PGBENCH, "--version"]),
        "pgbouncer": first_line([PGBOUNCER, "--version"]),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }


# ----------------------------------------------------------------------------


def parse_args():
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="bench/e2e/run.sh",
        description="End-to-end pgbench: direct vs PgBouncer vs tenantgate vs RLS. "
                    "Defaults come from TG_BENCH_CLIENTS, TG_BENCH_THREADS, TG_BENCH_DURATION, "
                    "TG_BENCH_SCALE, TG_BENCH_TENANT when set.")
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), help=argparse.SUPPRESS)
    p.add_argument("--build", default=None, help="build directory (default <root>/build)")
    p.add_argument("-c", "--clients", type=int, default=int(env("TG_BENCH_CLIENTS", 8)))
    p.add_argument("-j", "--threads", type=int, default=int(env("TG_BENCH_THREADS", 2)))
    p.add_argument("-T", "--duration", type=int, default=None,
                   help="seconds per pgbench run (default 15, or 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="3-second runs")
    p.add_argument("-s", "--scale", type=int, default=int(env("TG_BENCH_SCALE", 10)))
    p.add_argument("--tenant", type=int, default=int(env("TG_BENCH_TENANT", 3)),
                   help="the tenant (bid) for tenantgate and RLS runs (default 3)")
    p.add_argument("--workloads", default=None,
                   help="comma list of workloads to run, e.g. select/prepared,orm166/simple "
                        "(default: all)")
    p.add_argument("--targets", default=",".join(TARGETS), help="comma list (default: all four)")
    p.add_argument("--no-rss", action="store_true", help="skip the idle-connection memory check")
    p.add_argument("--tg-threads", type=int, default=0,
                   help="tenantgate's listen.threads (default 0: one per core)")
    p.add_argument("--results", default=None,
                   help="JSON results file (default bench/e2e/results/e2e-<time>.json)")
    a = p.parse_args()
    if a.duration is None:
        a.duration = 3 if a.quick else int(env("TG_BENCH_DURATION", 15))
    a.build = a.build or os.path.join(a.root, "build")
    a.targets = [t for t in a.targets.split(",") if t]
    for t in a.targets:
        if t not in TARGETS:
            p.error(f"unknown target {t} (expected {', '.join(TARGETS)})")
    known = [w for w, _, _ in WORKLOADS]
    a.workloads = a.workloads.split(",") if a.workloads else known
    for w in a.workloads:
        if w not in known:
            p.error(f"unknown workload {w} (expected {', '.join(known)})")
    if not 1 <= a.tenant <= a.scale:
        p.error(f"--tenant must be a bid between 1 and the scale ({a.scale})")
    if a.results is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        a.results = os.path.join(a.root, "bench", "e2e", "results", f"e2e-{stamp}.json")
    return a


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def main():
    args = parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = time.time()
    tg_src = os.path.join(args.build, "proxy", "tenantgate")

    log("== tenantgate end-to-end benchmark")
    log(f"command: {shlex.join([sys.executable] + sys.argv)}")
    shown_env = {k: v for k, v in sorted(os.environ.items())
                 if k.startswith(("TG_BENCH_", "TENANTGATE_", "PG"))}
    log(f"environment: {shown_env if shown_env else '(no TG_BENCH_*, TENANTGATE_*, PG* set)'}")
    log(f"settings: clients={args.clients} threads={args.threads} duration={args.duration}s "
        f"scale={args.scale} tenant(bid)={args.tenant} targets={','.join(args.targets)}")
    log(f"workloads: {', '.join(args.workloads)}")
    wait_stable(tg_src)
    info = versions(tg_src, args.root)
    for k, v in info.items():
        log(f"  {k}: {v}")
    log(f"  loadavg: {open('/proc/loadavg').read().strip()}")

    stack = Stack(args)
    results, rss, crashed = [], None, False
    doc = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": [sys.executable] + sys.argv, "environment": shown_env,
           "settings": {"clients": args.clients, "threads": args.threads,
                        "duration_s": args.duration, "scale": args.scale,
                        "tenant": args.tenant, "quick": args.quick},
           "versions": info, "targets": {t: TARGET_NOTES[t] for t in args.targets}}
    try:
        log(f"\n== setup in {stack.tmp}")
        stack.start_postgres()
        log(f"PostgreSQL 15 on 127.0.0.1:{stack.pg_port} (fsync=off, max_connections=200, "
            "shared_buffers=256MB)")
        secs = stack.load_schema(args.scale)
        log(f"pgbench -i -s {args.scale} + RLS role/policies: {secs:.1f}s")
        stack.start_pgbouncer(pool_size=max(args.clients, 8) + 4)
        log(f"PgBouncer on 127.0.0.1:{stack.bouncer_port} (session pooling, scram-sha-256)")
        stack.configure_tenantgate(tg_src, args.tg_threads)
        stack.start_tenantgate()
        log(f"tenantgate on 127.0.0.1:{stack.tg_port} (pid {stack.tg.pid}, config "
            f"{stack.tg_config})")

        all_scripts = scripts(args.tenant)
        script_paths = {}
        for name, (desc, text, sample) in all_scripts.items():
            script_paths[name] = stack.write(f"{name}.sql", text)
        log("\n== workloads (custom pgbench scripts, -n)")
        for name, (desc, text, sample) in all_scripts.items():
            log(f"-- {name}: {desc}")
            for l in text.rstrip().splitlines():
                log(f"   {l}")
            if sample:
                log(f"   final statement text with a substituted literal: "
                    f"{len(sample.encode())} bytes")
        doc["scripts"] = {n: {"description": d, "text": t,
                              "sample_statement_bytes": len(s.encode()) if s else None}
                          for n, (d, t, s) in all_scripts.items()}

        logdir = stack.path("pgbench-logs")
        os.makedirs(logdir)
        plan = [(w, s, m, t) for w, s, m in WORKLOADS if w in args.workloads
                for t in args.targets]
        log(f"\n== {len(plan)} runs of {args.duration}s "
            f"(-c {args.clients} -j {args.threads})")
        for i, (w, s, m, t) in enumerate(plan, 1):
            r = run_pgbench(stack, args, w, script_paths[s], m, t, logdir)
            if t == "tenantgate" and not stack.tenantgate_alive(f"{w} {t}"):
                r["status"] = "CRASH: tenantgate exited during this run; " + r["status"]
                crashed = True
            results.append(r)
            lat = r["latency_ms"]
            log(f"[{i:2}/{len(plan)}] {w:16} {t:10} {fmt_num(r['tps']):>9} tps  "
                f"p50 {fmt_num(lat['p50'], 3):>7} ms  p99 {fmt_num(lat['p99'], 3):>7} ms  "
                f"load {r['loadavg_1m_before']:.1f}  {r['status'][:160]}")

        ratios = report(results, args.targets)
        if "tenantgate" in args.targets and not args.no_rss:
            log("")
            log(f"== tenantgate memory: {RSS_CONNECTIONS} idle connections (psycopg2), "
                "fresh tenantgate process")
            rss = measure_rss(stack, args.tenant, RSS_CONNECTIONS)
            log(f"VmRSS before {rss['rss_kib_before']} KiB, with {rss['connections_opened']} "
                f"idle connections {rss['rss_kib_idle']} KiB, after one SELECT 1 each "
                f"{rss['rss_kib_after_one_statement_each']} KiB, after closing "
                f"{rss['rss_kib_after_close']} KiB (connect took {rss['connect_seconds']:.1f}s)")
            log(f"growth: {fmt_num(rss['growth_mib_per_100_idle'], 2)} MiB per 100 idle "
                f"connections; {fmt_num(rss['growth_mib_per_100_after_statement'], 2)} MiB "
                "after one statement each" + (f"; error: {rss['error']}" if rss["error"] else ""))
        checks = check_targets(results, rss)

        levels, top = stack.tg_log_summary()
        log("")
        log(f"== tenantgate log: lines by level {levels}; starts: {stack.tg_starts}, "
            f"crashes: {len(stack.tg_crashes)}")
        for msg, n in top:
            log(f"  {n:6}x {msg}")

        micro = run_microbench(args.build, args.quick)
        doc.update({"runs": results, "ratios": ratios, "rss": rss, "checks": checks,
                    "tenantgate_log_levels": levels,
                    "tenantgate_log_top": [{"count": n, "line": m} for m, n in top],
                    "tenantgate_crashes": stack.tg_crashes, "microbench_output": micro})
        crashed = crashed or bool(stack.tg_crashes)
    finally:
        doc["runs"] = doc.get("runs", results)
        doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        doc["elapsed_s"] = round(time.time() - started, 1)
        try:
            if results:
                os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
                with open(args.results, "w") as f:
                    json.dump(doc, f, indent=2)
                log(f"\nresults: {args.results}")
        finally:
            stack.stop()
            log(f"cleaned up {stack.tmp}; elapsed {time.time() - started:.0f}s")
    return 1 if crashed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
