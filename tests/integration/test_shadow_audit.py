"""The audit trail, shadow mode and the admin console, with real clients.

- shadow mode forwards what enforce refuses and records what it would have
  done; the report of examples/flask-records run in shadow mode names exactly
  the three vulnerable routes' queries;
- the audit file has its fields, follows audit.mode, and survives rotation
  (rename + SIGUSR1);
- statement metrics move with traffic;
- the admin console answers admin principals over psql and refuses others.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import psycopg2
import pytest

import harness
from enforcement_support import ensure_database, once, policy_text, start_with_policy

APP_PATH = harness.REPO_ROOT / "examples" / "flask-records" / "app.py"
SCHEMA = harness.REPO_ROOT / "examples" / "schema.sql"
OPS_DB = "opsdb"

ADMIN_PRINCIPAL = {"name": "ops", "password": "ops-secret"}


@pytest.fixture(scope="module")
def opsdb(pg):
    ensure_database(pg, OPS_DB)
    once(pg, OPS_DB, "schema", SCHEMA.read_text()
         + "CREATE TABLE secrets (id int, value text);"
         + "INSERT INTO secrets VALUES (1, 'not for tenants');"
         + "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;"
         + "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO PUBLIC;")
    return OPS_DB


def _policy() -> str:
    return policy_text({"users": "tenant",
                        "records": {"scope": "tenant_owner", "owner_column": "created_by"},
                        "countries": "shared"})


def principals(auth_mode: str = "scram", **app_extra) -> list[dict]:
    entries = harness.principal_entries(auth_mode)
    for e in entries:
        if e["name"] == "app":
            e.update(app_extra)
    entries.append({"name": ADMIN_PRINCIPAL["name"],
                    "scram": harness.scram_verifier(ADMIN_PRINCIPAL["password"]),
                    "admin": True, "bypass": True})
    return entries


def start(start_proxy, tmp_path, *, audit: str = "all", enforcement: str = "enforce",
          admin_port: int | None = None, app_extra: dict | None = None, **more) -> harness.Proxy:
    tmp_path.mkdir(parents=True, exist_ok=True)
    overrides = {"policy": {"file": "policy.toml", "enforcement": enforcement},
                 "principals": principals(**(app_extra or {}))}
    if audit != "off":
        overrides["audit"] = {"mode": audit, "file": str(tmp_path / "audit.jsonl")}
    if admin_port:
        overrides["admin"] = {"listen": f"127.0.0.1:{admin_port}"}
    overrides.update(more)
    return start_with_policy(start_proxy, _policy(), overrides)


def connect(proxy, db=OPS_DB, tenant="acme", user_id="1", user="app"):
    conn = psycopg2.connect(proxy.dsn(user=user, tenant=tenant, user_id=user_id, dbname=db))
    conn.autocommit = True
    return conn


def audit_lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def wait_for_audit(path, predicate, what):
    harness.wait_until(lambda: predicate(audit_lines(path)), 10, what)
    return audit_lines(path)


def report(path) -> str:
    r = subprocess.run([str(harness.tenantgate_bin()), "report", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---------------------------------------------------------------------------
# Shadow mode


def test_shadow_forwards_what_enforce_refuses(start_proxy, opsdb, tmp_path):
    enforce = start(start_proxy, tmp_path / "e", audit="refusals")
    conn = connect(enforce)
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        conn.cursor().execute("SELECT value FROM secrets")
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM users")
    assert cur.fetchone() == (2,)  # acme's two users: rewritten
    conn.close()

    shadow = start(start_proxy, tmp_path / "s", audit="refusals", enforcement="shadow")
    conn = connect(shadow)
    cur = conn.cursor()
    cur.execute("SELECT value FROM secrets")
    assert cur.fetchall() == [("not for tenants",)]
    cur.execute("SELECT count(*) FROM users")
    assert cur.fetchone() == (4,)  # forwarded as sent: every tenant's users
    conn.close()

    events = wait_for_audit(tmp_path / "s" / "audit.jsonl", lambda ev: len(ev) >= 2, "shadow events")
    refused = [e for e in events if e.get("would") == "refused"]
    assert len(refused) == 1
    e = refused[0]
    assert e["decision"] == "forwarded" and e["enforcement"] == "shadow"
    assert e["sqlstate"] == "42501"
    assert e["tables"] == [{"table": "public.secrets", "policy": "default", "missing_predicate": []}]
    missing = [e for e in events if e["tables"] and e["tables"][0]["missing_predicate"]]
    assert missing and missing[0]["normalised"] == "SELECT count (*) FROM users"
    assert missing[0]["tables"][0]["missing_predicate"] == ["tenant_id"]

    # Enforce mode records the missing predicate too (and the refusal).
    enforced = audit_lines(tmp_path / "e" / "audit.jsonl")
    assert any(e["decision"] == "refused" and e["sqlstate"] == "42501" for e in enforced)
    assert any(e["decision"] == "rewritten" and e["tables"][0]["missing_predicate"] == ["tenant_id"]
               for e in enforced)


def test_shadow_per_principal(start_proxy, opsdb, tmp_path):
    proxy = start(start_proxy, tmp_path, audit="refusals", app_extra={"enforcement": "shadow"})
    app = connect(proxy)
    cur = app.cursor()
    cur.execute("SELECT count(*) FROM users")
    assert cur.fetchone() == (4,)
    app.close()
    limited = connect(proxy, user="limited", tenant="acme")
    cur = limited.cursor()
    cur.execute("SELECT count(*) FROM users")
    assert cur.fetchone() == (2,)
    limited.close()


@pytest.fixture(scope="module")
def create_app():
    spec = importlib.util.spec_from_file_location("flask_records_app_ops", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.create_app


VULNERABLE = [
    "SELECT id, email, role FROM users WHERE id = ?",
    "SELECT id, tenant_id, data FROM records WHERE id = ?",
    "SELECT id, tenant_id, created_by, data FROM records ORDER BY id LIMIT ? OFFSET ?",
]
CORRECT = [
    "SELECT id, email, role FROM users WHERE tenant_id = ? AND id = ?",
    "SELECT id, data FROM records WHERE tenant_id = ? AND created_by = ? ORDER BY id",
    "SELECT code, name FROM countries ORDER BY code",
]


def test_flask_app_in_shadow_mode_report(start_proxy, opsdb, tmp_path, create_app):
    proxy = start(start_proxy, tmp_path, audit="all", enforcement="shadow")
    dsn = f"postgresql+psycopg2://app:{harness.PRINCIPALS['app']['password']}@{proxy.host}:{proxy.port}/{opsdb}"
    app = create_app(dsn, send_identity=True)
    client = app.test_client()
    for tenant, user in (("acme", 1), ("globex", 3)):
        h = {"X-Tenant": tenant, "X-User": str(user)}
        for i in range(1, 5):
            client.get(f"/api/users/{i}", headers=h)
            client.get(f"/api/records/{i}", headers=h)
        assert client.get("/api/records", headers=h).status_code == 200
        assert client.get("/api/records?limit=2&offset=1", headers=h).status_code == 200
        assert client.get("/api/me", headers=h).status_code == 200
        assert client.get("/api/my/records", headers=h).status_code == 200
        assert client.get("/api/countries", headers=h).status_code == 200
    # Shadow mode forwards as sent: the vulnerable route leaks, as without tenantgate.
    h = {"X-Tenant": "acme", "X-User": "1"}
    assert client.get("/api/users/3", headers=h).status_code == 200  # globex's carol

    path = tmp_path / "audit.jsonl"
    wait_for_audit(path, lambda ev: sum(1 for e in ev if e["normalised"] == CORRECT[2]) >= 2,
                   "the last requests' audit events")
    text = report(path)
    print(text)
    assert "Missing predicates: 3 statements" in text, text
    for sql in VULNERABLE:
        assert f"statement:  {sql}\n" in text, sql
    for sql in CORRECT:
        assert sql not in text, sql
    assert "missing:    public.users (tenant_id)" in text
    assert "missing:    public.records (created_by, tenant_id)" in text
    # Every vulnerable query ran 8 (users, records by id) or 4 (list) times.
    pairs = re.findall(r"count (\d+)  first [^\n]*\n  statement:  ([^\n]*)\n", text)
    counts = {sql: n for n, sql in pairs}
    assert counts == {VULNERABLE[0]: "9", VULNERABLE[1]: "8", VULNERABLE[2]: "4"}, counts


# ---------------------------------------------------------------------------
# The audit file


def test_audit_fields_modes_and_rotation(start_proxy, opsdb, tmp_path):
    proxy = start(start_proxy, tmp_path, audit="writes")
    path = tmp_path / "audit.jsonl"
    conn = connect(proxy)
    cur = conn.cursor()
    cur.execute("SELECT id FROM users WHERE tenant_id = 'acme' ORDER BY id")  # a correct read
    cur.execute("UPDATE records SET data = data WHERE id = 1")  # a write
    events = wait_for_audit(path, lambda ev: len(ev) >= 1, "the write's event")
    assert len(events) == 1, events  # the correct read is not a write and has no finding
    e = events[0]
    for key in ("time", "session", "principal", "tenant", "user", "fingerprint", "normalised",
                "tables", "decision", "sqlstate", "policy_version", "duration_us", "protocol",
                "enforcement"):
        assert key in e, key
    assert e["principal"] == "app" and e["tenant"] == "acme" and e["user"] == "1"
    assert e["decision"] == "rewritten"
    assert e["normalised"] == "UPDATE records SET data = data WHERE id = ?"
    assert "statement" not in e  # log_statement_values is off: no text, no constants
    assert re.fullmatch(r"[0-9a-f]{16}", e["fingerprint"])
    assert re.fullmatch(r"[0-9a-f]{12}", e["policy_version"])
    assert e["tables"] == [{"table": "public.records", "policy": "tenant_owner",
                            "missing_predicate": ["tenant_id", "created_by"]}]

    # Rotation: rename, SIGUSR1, and the next events go to a new file.
    rotated = tmp_path / "audit.jsonl.1"
    path.rename(rotated)
    proxy.signal(signal.SIGUSR1)
    harness.wait_until(lambda: path.exists(), 10, "the audit file to be reopened")
    cur.execute("DELETE FROM records WHERE id = 0")
    new = wait_for_audit(path, lambda ev: len(ev) >= 1, "an event in the new file")
    assert new[0]["normalised"] == "DELETE FROM records WHERE id = ?"
    assert len(audit_lines(rotated)) == 1
    conn.close()


def test_audit_statement_values_only_when_asked(start_proxy, opsdb, tmp_path):
    proxy = start(start_proxy, tmp_path, audit="all", log={"level": "debug", "format": "text",
                                                            "log_statement_values": True})
    conn = connect(proxy)
    conn.cursor().execute("SELECT id FROM users WHERE id = 4242")
    events = wait_for_audit(tmp_path / "audit.jsonl",
                            lambda ev: any("4242" in e.get("statement", "") for e in ev), "text")
    assert any(e.get("statement") == "SELECT id FROM users WHERE id = 4242" for e in events)
    conn.close()


# ---------------------------------------------------------------------------
# Metrics of statements


def test_statement_metrics_move(start_proxy, opsdb, tmp_path):
    port = harness.free_port()
    # audit "refusals": refused statements are analysed, which names the table label.
    proxy = start(start_proxy, tmp_path, audit="refusals", admin_port=port)
    conn = connect(proxy)
    cur = conn.cursor()
    for i in range(5):
        cur.execute(f"SELECT email FROM users WHERE id = {i}")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute("SELECT * FROM secrets")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    rewritten = float(re.search(r'tenantgate_statements_total\{outcome="rewritten",protocol="simple"\} (\S+)',
                                text).group(1))
    assert rewritten >= 5
    assert 'tenantgate_refusals_total{sqlstate="42501",table="(not in policy)"} 1' in text
    assert float(re.search(r"tenantgate_rewrite_duration_seconds_count (\S+)", text).group(1)) >= 6
    conn.close()
    # A refusal decided at Bind (a parameter for the tenant column that is not
    # the caller's) is counted too, without a table.
    import psycopg
    with psycopg.connect(proxy.dsn(tenant="acme", user_id="1", dbname=OPS_DB), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("INSERT INTO users (id, tenant_id, email, role) VALUES (%s, %s, %s, %s)",
                      ("77", "globex", "x@globex.test", "member"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'tenantgate_refusals_total{sqlstate="42501",table=""} 1' in text
    # A refused start-up is counted by reason.
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(proxy.dsn(user="limited", tenant="initech", dbname=OPS_DB))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'tenantgate_startups_refused_total{reason="identity"} 1' in text


# ---------------------------------------------------------------------------
# The admin console


def psql(proxy, user, password, sql, db="tenantgate"):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    return subprocess.run(["psql", "-X", "-A", "-F", "|", "-t", "-h", proxy.host, "-p", str(proxy.port),
                           "-U", user, "-d", db, "-c", sql], capture_output=True, text=True,
                          env=env, timeout=30)


def test_admin_console(start_proxy, opsdb, tmp_path):
    proxy = start(start_proxy, tmp_path, audit="off")
    app = connect(proxy)
    app.cursor().execute("SELECT 1")
    user, pw = ADMIN_PRINCIPAL["name"], ADMIN_PRINCIPAL["password"]

    clients = psql(proxy, user, pw, "SHOW CLIENTS")
    assert clients.returncode == 0, clients.stderr
    rows = [r.split("|") for r in clients.stdout.strip().splitlines()]
    assert any(r[1] == "app" and r[2] == "acme" and r[4] == OPS_DB for r in rows), rows

    stats = psql(proxy, user, pw, "SHOW STATS")
    assert 'tenantgate_statements_total{outcome="rewritten",protocol="simple"}' in stats.stdout \
        or "tenantgate_statements_total" in stats.stdout
    policy = psql(proxy, user, pw, "SHOW POLICY")
    assert "table public.records|tenant_owner (tenant tenant_id, owner created_by)" in policy.stdout
    assert re.search(r"^version\|[0-9a-f]{12}$", policy.stdout, re.M)
    config = psql(proxy, user, pw, "show config;")
    assert f"listen|127.0.0.1:{proxy.port}" in config.stdout
    pools = psql(proxy, user, pw, "SHOW POOLS")
    assert f"{OPS_DB}|app|1|1|session" in pools.stdout, pools.stdout
    servers = psql(proxy, user, pw, "SHOW SERVERS")
    assert servers.returncode == 0

    # RELOAD picks up a new policy file.
    (proxy.dir / "policy.toml").write_text(_policy() + '\n[tables."public.secrets"]\nscope = "shared"\n')
    assert psql(proxy, user, pw, "RELOAD").returncode == 0
    cur = app.cursor()
    cur.execute("SELECT value FROM secrets")
    assert cur.fetchall() == [("not for tenants",)]
    (proxy.dir / "policy.toml").write_text("default_action = 3\n")
    bad = psql(proxy, user, pw, "RELOAD")
    assert bad.returncode != 0 and "policy reload failed" in bad.stderr

    # PAUSE holds new sessions (not the admin console) until RESUME.
    assert psql(proxy, user, pw, "PAUSE").returncode == 0
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(proxy.dsn(dbname=OPS_DB, connect_timeout=2))
    assert psql(proxy, user, pw, "RESUME").returncode == 0
    connect(proxy).close()

    unknown = psql(proxy, user, pw, "SELECT 1")
    assert unknown.returncode != 0 and "does not know this command" in unknown.stderr
    app.close()


def test_admin_console_refuses_other_principals(start_proxy, opsdb, tmp_path):
    proxy = start(start_proxy, tmp_path, audit="off")
    r = psql(proxy, "app", harness.PRINCIPALS["app"]["password"], "SHOW STATS")
    assert r.returncode != 0
    assert "admin console" in r.stderr and "not an admin" in r.stderr, r.stderr
    # A wrong password for the admin principal is an ordinary authentication failure.
    r = psql(proxy, ADMIN_PRINCIPAL["name"], "wrong", "SHOW STATS")
    assert r.returncode != 0 and "password authentication failed" in r.stderr, r.stderr


def test_parameters_are_judged_by_their_bound_values(start_proxy, opsdb, tmp_path):
    import psycopg

    proxy = start(start_proxy, tmp_path, audit="refusals")
    dsn = proxy.dsn(tenant="acme", user_id="1", dbname=OPS_DB)
    with psycopg.connect(dsn, autocommit=True) as c:
        # Extended protocol, the tenant as a bound text parameter: the caller's own.
        assert c.execute("SELECT id FROM users WHERE tenant_id = %s ORDER BY id", ("acme",)).fetchall() \
            == [(1,), (2,)]
        # Another tenant's value: tenantgate still scopes the rows, and reports the statement.
        assert c.execute("SELECT id FROM users WHERE tenant_id = %s AND id > %s",
                         ("globex", "0")).fetchall() == []
    events = wait_for_audit(tmp_path / "audit.jsonl", lambda ev: len(ev) >= 1, "the finding")
    assert len(events) == 1, events
    e = events[0]
    assert e["protocol"] == "extended"
    assert e["normalised"] == "SELECT id FROM users WHERE tenant_id = $1 AND id > $2"
    assert e["tables"][0]["missing_predicate"] == ["tenant_id"]
