"""libpq from C++ through the proxy: tests/integration/libpq_client.cc."""

import subprocess

import pytest


@pytest.mark.parametrize("step", ["simple", "prepared", "copy", "cancel"])
def test_libpq_client(proxy, libpq_client, step):
    # COPY uses a temporary table (DDL): run as the bypass principal.
    r = subprocess.run([str(libpq_client), proxy.dsn(user="admin"), step], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"stdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stdout.strip() == f"ok {step}"
