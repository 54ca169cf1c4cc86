"""Operating tenantgate: the admin HTTP listener (/metrics, /healthz,
/readyz), policy init and check --dsn against a live schema, and the sidecar
packaging (image built with podman, run under chroot; systemd unit verified).

Real parts throughout: PostgreSQL 15 started by the tests, psycopg2 and psql as
clients, podman and systemd-analyze from Debian.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

import harness

SCHEMA = (harness.REPO_ROOT / "examples" / "schema.sql").read_text()


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text; KeyError when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if found == labels:
            return float(m.group(4))
    raise KeyError(f"{name}{labels} not in /metrics")


def admin_proxy(start_proxy, **overrides):
    port = harness.free_port()
    p = start_proxy({"admin": {"listen": f"127.0.0.1:{port}"}, **overrides})
    p.admin_port = port
    return p


def test_admin_listener_is_off_without_the_section(start_proxy):
    p = start_proxy()
    assert "admin listener" not in p.log()


def test_metrics_move_as_traffic_flows(start_proxy):
    p = admin_proxy(start_proxy)
    status, before = http_get(p.admin_port, "/metrics")
    assert status == 200
    assert metric(before, "tenantgate_client_connections", state="active") == 0
    misses0 = metric(before, "tenantgate_rewrite_cache_misses_total")
    hits0 = metric(before, "tenantgate_rewrite_cache_hits_total")
    version = re.search(r'tenantgate_policy_info\{version="([0-9a-f]{12})"\} 1', before)
    assert version, before

    conns = [psycopg2.connect(p.dsn(tenant=t)) for t in ("acme", "globex")]
    try:
        for c in conns:
            cur = c.cursor()
            for i in range(1, 6):
                cur.execute(f"SELECT name FROM items WHERE id = {i}")
                assert cur.fetchone() == (f"item {i}",)
        _, during = http_get(p.admin_port, "/metrics")
        assert metric(during, "tenantgate_client_connections", state="active") == 2
        assert metric(during, "tenantgate_backend_connections") == 2
        # One shape per session's identity-free template; the rest are hits.
        assert metric(during, "tenantgate_rewrite_cache_misses_total") > misses0
        assert metric(during, "tenantgate_rewrite_cache_hits_total") >= hits0 + 8
        assert metric(during, "tenantgate_rewrite_cache_bytes") > 0
    finally:
        for c in conns:
            c.close()
    harness.wait_until(
        lambda: metric(http_get(p.admin_port, "/metrics")[1], "tenantgate_client_connections",
                       state="active") == 0, 10, "sessions to end")


def test_policy_reload_is_counted_with_its_version(start_proxy):
    p = admin_proxy(start_proxy)
    _, before = http_get(p.admin_port, "/metrics")
    old = re.search(r'tenantgate_policy_info\{version="(\w+)"\}', before).group(1)
    (p.dir / "policy.toml").write_text('default_action = "shared"\nsearch_path = ["public"]\n')
    p.signal(signal.SIGHUP)
    harness.wait_until(lambda: metric(http_get(p.admin_port, "/metrics")[1],
                                      "tenantgate_policy_reloads_total", result="ok") == 1,
                       10, "the reload to be counted")
    _, after = http_get(p.admin_port, "/metrics")
    new = re.search(r'tenantgate_policy_info\{version="(\w+)"\}', after).group(1)
    assert new != old
    (p.dir / "policy.toml").write_text('default_action = "sometimes"\n')
    p.signal(signal.SIGHUP)
    harness.wait_until(lambda: metric(http_get(p.admin_port, "/metrics")[1],
                                      "tenantgate_policy_reloads_total", result="failed") == 1,
                       10, "the failed reload to be counted")
    _, last = http_get(p.admin_port, "/metrics")
    assert f'tenantgate_policy_info{{version="{new}"}} 1' in last


def test_refused_startups_are_counted_by_reason(start_proxy):
    p = admin_proxy(start_proxy, limits={"max_client_connections": 1, "shutdown_grace_ms": 2000})
    # The harness's own readiness probe was a connection too: wait until it is gone.
    harness.wait_until(lambda: metric(http_get(p.admin_port, "/metrics")[1],
                                      "tenantgate_client_connections", state="startup") == 0,
                       10, "the probe connection to close")
    keep = psycopg2.connect(p.dsn())
    try:
        with pytest.raises(psycopg2.OperationalError, match="too many clients"):
            psycopg2.connect(p.dsn())
        _, text = http_get(p.admin_port, "/metrics")
        assert metric(text, "tenantgate_startups_refused_total", reason="max_client_connections") == 1
    finally:
        keep.close()


def test_health_and_readiness_follow_the_backend(tmp_path):
    pg = harness.PgServer()
    pg.start()
    p = None
    try:
        port = harness.free_port()
        p = harness.Proxy(pg, tmp_path / "proxy", {"admin": {"listen": f"127.0.0.1:{port}"}})
        p.start()
        assert http_get(port, "/healthz") == (200, "ok\n")
        assert http_get(port, "/readyz") == (200, "ready\n")
        pg.stop()
        status, body = http_get(port, "/readyz")
        assert status == 503
        assert "not ready: backend 127.0.0.1:" in body and "refused" in body
        # The process itself is still up.
        assert http_get(port, "/healthz") == (200, "ok\n")
    finally:
        if p:
            p.stop()
        pg.stop()


def test_readiness_fails_while_draining(start_proxy):
    p = admin_proxy(start_proxy, limits={"shutdown_grace_ms": 5000})
    conn = psycopg2.connect(p.dsn())
    try:
        p.signal(signal.SIGTERM)
        harness.wait_until(lambda: http_get(p.admin_port, "/readyz")[0] == 503, 5, "readyz to fail")
        assert "shutting down" in http_get(p.admin_port, "/readyz")[1]
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# policy init and check --dsn


@pytest.fixture
def schema_db(pg):
    name = "opsschema"
    pg.psql(f"DROP DATABASE IF EXISTS {name}", db="postgres")
    pg.psql(f"CREATE DATABASE {name}", db="postgres")
    pg.psql(SCHEMA, db=name)
    yield f"host={pg.dir} port={pg.port} user=postgres dbname={name}", name
    pg.psql(f"DROP DATABASE IF EXISTS {name}", db="postgres")


def tg(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(harness.tenantgate_bin()), *args], capture_output=True, text=True,
                          timeout=60, **kw)


def write_config(directory: Path, policy_text: str, tenant_type: str = "text") -> Path:
    (directory / "policy.toml").write_text(policy_text)
    config = directory / "tenantgate.toml"
    config.write_text(f'[auth]\nmode = "trust"\n[identity]\ntenant_type = "{tenant_type}"\n'
                      'user_type = "int"\n')
    return config


def test_policy_init_output_passes_check(schema_db, tmp_path):
    dsn, _ = schema_db
    r = tg("policy", "init", "--dsn", dsn)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert '[tables."public.users"]\nscope = "tenant"\n' in text
    assert '[tables."public.records"]\nscope = "tenant_owner"\n' in text
    assert 'owner_column = "created_by"' in text
    assert '# [tables."public.countries"]' in text
    assert "Guesses:" in text
    config = write_config(tmp_path, text)
    checked = tg("check", "--config", str(config), "--dsn", dsn)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "note: table public.countries is not in the policy: refused (default_action = deny)" \
        in checked.stdout
    assert "ok: the policy fits the database" in checked.stdout
    # --output writes the same text.
    out = tmp_path / "generated.toml"
    assert tg("policy", "init", "--dsn", dsn, "--output", str(out)).returncode == 0
    assert out.read_text() == text


def test_check_reports_what_does_not_fit(schema_db, tmp_path):
    dsn, _ = schema_db
    config = write_config(tmp_path, """
[tables."public.users"]
scope = "tenant"
tenant_column = "tenant_id"
[tables."public.records"]
scope = "tenant_owner"
tenant_column = "tenant_id"
owner_column = "owner_id"
[tables."public.invoices"]
scope = "tenant"
tenant_column = "tenant_id"
""", tenant_type="uuid")
    r = tg("check", "--config", str(config), "--dsn", dsn)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "table public.invoices does not exist in the database" in r.stdout
    assert "public.records: user column owner_id does not exist" in r.stdout
    assert "public.users: tenant column tenant_id has type text, which cannot hold uuid" in r.stdout
    assert "note: table public.countries is not in the policy" in r.stdout


def test_policy_init_without_a_database_fails_cleanly():
    r = tg("policy", "init", "--dsn", "host=127.0.0.1 port=1 dbname=x connect_timeout=2")
    assert r.returncode == 2
    assert "cannot connect" in r.stderr


# ---------------------------------------------------------------------------
# Packaging


def test_systemd_unit_verifies(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is not installed (scripts/install_deps.sh installs systemd)")
    unit = (harness.REPO_ROOT / "deploy" / "tenantgate.service").read_text()
    # verify checks that ExecStart's binary exists: point it at the built one.
    unit = unit.replace("/usr/local/bin/tenantgate", str(harness.tenantgate_bin()))
    path = tmp_path / "tenantgate.service"
    path.write_text(unit)
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes",
                "CapabilityBoundingSet=", "KillSignal=SIGTERM"):
        assert key in unit


def test_manifests_parse():
    import yaml

    compose = yaml.safe_load((harness.REPO_ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    assert set(compose["services"]) == {"app", "tenantgate", "db"}
    assert compose["services"]["tenantgate"]["read_only"] is True
    k8s = yaml.safe_load((harness.REPO_ROOT / "deploy" / "kubernetes" / "sidecar.yaml").read_text())
    sidecar = [c for c in k8s["spec"]["template"]["spec"]["containers"] if c["name"] == "tenantgate"][0]
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert all(m["readOnly"] for m in sidecar["volumeMounts"])
    # The compose example's own config is valid.
    r = tg("check", "--config", str(harness.REPO_ROOT / "deploy" / "compose" / "tenantgate.toml"))
    assert "tenantgate.toml" in r.stderr or r.returncode == 0


def test_image_builds_and_runs_under_chroot(pg, tmp_path):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed (scripts/install_deps.sh installs it)")
    tag = f"localhost/tenantgate-test:{os.getpid()}"
    r = subprocess.run([str(harness.REPO_ROOT / "deploy" / "build-image.sh"),
                        str(harness.tenantgate_bin()), "--tag", tag],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        inspect = subprocess.run(["podman", "image", "inspect", tag, "--format",
                                  "{{.Config.User}}|{{.Config.StopSignal}}|{{.Config.Entrypoint}}"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        assert inspect == "65532:65532|SIGTERM|[/usr/local/bin/tenantgate]"
        cid = subprocess.run(["podman", "create", tag], capture_output=True, text=True, timeout=60,
                             check=True).stdout.strip()
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        try:
            export = subprocess.Popen(["podman", "export", cid], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True,
                           timeout=120)
            assert export.wait(60) == 0
        finally:
            subprocess.run(["podman", "rm", cid], capture_output=True, timeout=60)
        # Nothing but the binary, its libraries and a few files of /etc.
        assert not (rootfs / "bin" / "sh").exists()
        as_user = ["chroot", "--userspec=65532:65532", str(rootfs)]
        version = subprocess.run([*as_user, "/usr/local/bin/tenantgate", "--version"],
                                 capture_output=True, text=True, timeout=30)
        assert version.returncode == 0, version.stderr
        assert version.stdout.startswith("tenantgate ")
        # The configuration as it would be mounted read-only, checked by the image's binary,
        # against the live database over the host's loopback.
        conf = rootfs / "etc" / "tenantgate"
        (conf / "policy.toml").write_text((harness.REPO_ROOT / "examples" / "policy.toml").read_text())
        (conf / "tenantgate.toml").write_text('[auth]\nmode = "trust"\n')
        os.chmod(conf, 0o555)
        check = subprocess.run([*as_user, "/usr/local/bin/tenantgate", "check", "--config",
                                "/etc/tenantgate/tenantgate.toml"], capture_output=True, text=True,
                               timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "ok: /etc/tenantgate/tenantgate.toml" in check.stdout
        bad = subprocess.run([*as_user, "/usr/local/bin/tenantgate", "check", "--config",
                              "/etc/tenantgate/missing.toml"], capture_output=True, text=True,
                             timeout=30)
        assert bad.returncode == 1
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, timeout=120)
