"""Fixtures: one PostgreSQL 15 server per session, tenantgate processes per test.

Environment:
  TENANTGATE_BIN     the proxy binary (default <repo>/build/proxy/tenantgate)
  TG_IT_TARGET       "direct" points the default `proxy` fixture at PostgreSQL
                     itself, to check the client-side tests without the proxy
                     (identity and refusal tests are then expected to fail)
  TG_IT_TEST_TIMEOUT seconds before a hung test's proxies are killed (default 90)
"""

from __future__ import annotations

import atexit
import faulthandler
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

_live_proxies: list[harness.Proxy] = []
_live_lock = threading.Lock()


@atexit.register
def _kill_leftover_proxies() -> None:
    # Proxies run in their own session (no terminal signals): make sure none outlives pytest.
    for p in list(_live_proxies):
        p.kill()


@pytest.fixture(scope="session", autouse=True)
def _pinned_binary():
    directory = Path(tempfile.mkdtemp(prefix="tg-it-bin-"))
    harness.pin_tenantgate_bin(directory)
    yield
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    server = harness.PgServer()
    atexit.register(server.stop)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_proxy(pg, tmp_path):
    """start_proxy(overrides=None, backend_password=..., start=True) -> Proxy.

    `overrides` is merged into the default config section by section, e.g.
    {"auth": {"mode": "trust"}, "limits": {"max_message_bytes": 65536}}.
    """
    started: list[harness.Proxy] = []
    counter = itertools.count()

    def factory(overrides: dict | None = None, *, start: bool = True, **kw) -> harness.Proxy:
        p = harness.Proxy(pg, tmp_path / f"proxy{next(counter)}", overrides, **kw)
        started.append(p)
        with _live_lock:
            _live_proxies.append(p)
        if start:
            p.start()
        return p

    yield factory
    for p in started:
        p.stop()
        with _live_lock:
            if p in _live_proxies:
                _live_proxies.remove(p)
        if p.proc is not None:
            # Shown by pytest only when the test failed.
            print(f"--- tenantgate log ({p.config_path}) exit={p.proc.returncode} ---\n{p.log()[-20000:]}")


@pytest.fixture
def proxy(start_proxy, pg, tmp_path):
    """A proxy with the default config (auth scram, no TLS, text tenant, int user)."""
    if os.environ.get("TG_IT_TARGET") == "direct":
        p = harness.Proxy(pg, tmp_path / "direct")
        p.port = pg.port
        return p
    return start_proxy()


@pytest.fixture(autouse=True)
def _watchdog(request):
    """Kills this test's proxies when it runs too long, so a hang becomes a failure."""
    limit = float(os.environ.get("TG_IT_TEST_TIMEOUT", "90"))

    def fire():
        sys.stderr.write(f"\n*** {request.node.nodeid} exceeded {limit}s: killing its tenantgate processes\n")
        faulthandler.dump_traceback(file=sys.stderr)
        with _live_lock:
            for p in list(_live_proxies):
                p.kill()

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()


@pytest.fixture
def table(pg):
    """A fresh table (id int primary key, name text) on the server, readable and writable by all roles."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg.psql(f"CREATE TABLE {name} (id int PRIMARY KEY, name text); GRANT ALL ON {name} TO PUBLIC")
    yield name
    pg.psql(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture(scope="session")
def libpq_client():
    """Builds tests/integration/libpq_client.cc with its CMakeLists.txt as a standalone project."""
    src = Path(__file__).resolve().parent
    build = Path(tempfile.mkdtemp(prefix="tg-it-libpq-"))
    atexit.register(shutil.rmtree, build, ignore_errors=True)
    for cmd in (["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug"],
                ["cmake", "--build", str(build), "-j1", "--target", "tg_libpq_client"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    yield build / "tg_libpq_client"
    shutil.rmtree(build, ignore_errors=True)
