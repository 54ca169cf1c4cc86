"""`tenantgate --version`, `tenantgate check` on good and bad configs, and start-up refusals."""

import re
import subprocess

import pytest

import harness


def project_version():
    text = (harness.REPO_ROOT / "CMakeLists.txt").read_text()
    return re.search(r"project\(tenantgate\s+VERSION\s+([0-9.]+)", text).group(1)


def test_version():
    r = subprocess.run([str(harness.tenantgate_bin()), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert project_version() in r.stdout + r.stderr


@pytest.mark.parametrize("mode", ["scram", "passthrough", "trust"])
def test_check_good_config(start_proxy, mode):
    proxy = start_proxy({"auth": {"mode": mode}}, start=False)
    r = harness.run_check(proxy.config_path)
    assert r.returncode == 0, f"{proxy.config_path.read_text()}\n{r.stdout}{r.stderr}"


def test_check_good_tls_config(start_proxy, tmp_path, pg):
    certs = harness.make_certs(tmp_path / "certs", "proxy")
    proxy = start_proxy({"listen": {"tls": "require", "tls_cert": str(certs.server_cert),
                                    "tls_key": str(certs.server_key)},
                         "backend": {"tls": "verify-full", "tls_ca": str(pg.certs.ca_cert)}}, start=False)
    r = harness.run_check(proxy.config_path)
    assert r.returncode == 0, f"{proxy.config_path.read_text()}\n{r.stdout}{r.stderr}"


def edit(lines, section, key, new_line):
    """Replaces `key = ...` in [section] (or inserts new_line after the header when key is None).
    Returns the 1-based line number of new_line."""
    header = lines.index(f"[{section}]")
    if key is None:
        lines.insert(header + 1, new_line)
        return header + 2
    for i in range(header + 1, len(lines)):
        if lines[i].startswith("["):
            break
        if lines[i].split("=")[0].strip() == key:
            lines[i] = new_line
            return i + 1
    raise KeyError(f"{section}.{key}")


BAD = {
    "unknown key": ("listen", None, "prot = 6432"),
    "unknown section key": ("limits", None, "max_bananas = 3"),
    "listen.tls value": ("listen", "tls", 'tls = "sometimes"'),
    "listen.port range": ("listen", "port", "port = 70000"),
    "listen.port type": ("listen", "port", 'port = "6432"'),
    "auth.mode value": ("auth", "mode", 'mode = "kerberos"'),
    "backend.tls value": ("backend", "tls", 'tls = "always"'),
    "tenant_type value": ("identity", "tenant_type", 'tenant_type = "float"'),
    "user_type value": ("identity", "user_type", 'user_type = "bigint"'),
    "toml syntax": ("log", "level", "level = "),
    "policy file missing": ("policy", "file", 'file = "no-such-policy.toml"'),
    "log level": ("log", "level", 'level = "loud"'),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_bad_config_names_file_and_line(start_proxy, case):
    proxy = start_proxy(start=False)
    lines = proxy.config_path.read_text().splitlines()
    line = edit(lines, *BAD[case])
    proxy.config_path.write_text("\n".join(lines) + "\n")
    r = harness.run_check(proxy.config_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0, f"check accepted:\n{proxy.config_path.read_text()}"
    assert re.search(rf"tenantgate\.toml:{line}: \S", out), f"expected 'tenantgate.toml:{line}: <reason>' in {out!r}"


def test_check_bad_principal_verifier(start_proxy):
    proxy = start_proxy(start=False)
    text = proxy.config_path.read_text()
    lines = text.splitlines()
    idx = next(i for i, l in enumerate(lines) if l.startswith("scram = "))
    lines[idx] = 'scram = "SCRAM-SHA-256$4096:bm90LWEtc2FsdA==$broken"'
    proxy.config_path.write_text("\n".join(lines) + "\n")
    header = max(i for i in range(idx) if lines[i] == "[[principals]]")
    r = harness.run_check(proxy.config_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    # The scram line, or the [[principals]] header of the entry that holds it.
    assert f"tenantgate.toml:{idx + 1}" in out or f"tenantgate.toml:{header + 1}" in out, out


def test_check_refuses_trust_on_non_loopback(start_proxy):
    proxy = start_proxy({"auth": {"mode": "trust"}, "listen": {"host": "0.0.0.0"}}, start=False)
    lines = proxy.config_path.read_text().splitlines()
    host_line = lines.index('host = "0.0.0.0"') + 1
    mode_line = lines.index('mode = "trust"') + 1
    r = harness.run_check(proxy.config_path)
    out = r.stdout + r.stderr
    assert r.returncode != 0, "trust accepted on 0.0.0.0"
    assert f"tenantgate.toml:{host_line}" in out or f"tenantgate.toml:{mode_line}" in out, out
    assert harness.matches("trust", out) and harness.matches("loopback", out), out


def test_run_refuses_bad_config(start_proxy):
    proxy = start_proxy({"auth": {"mode": "trust"}, "listen": {"host": "0.0.0.0"}}, start=False)
    r = subprocess.run([str(harness.tenantgate_bin()), "--config", str(proxy.config_path)], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode != 0
    assert "tenantgate.toml:" in r.stdout + r.stderr


def test_check_policy_relative_to_config(start_proxy, tmp_path):
    # policy.file is resolved against the config's folder, not the working directory.
    proxy = start_proxy(start=False)
    r = subprocess.run([str(harness.tenantgate_bin()), "check", "--config", str(proxy.config_path)],
                       capture_output=True, text=True, timeout=10, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
