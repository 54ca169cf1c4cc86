"""The flask-records app with one pooled engine (5 connections) and signed tokens.

A threaded Flask server is driven by concurrent, interleaved callers of three
tenants; each request's token is set with SET LOCAL at the start of its
transaction. Every response is checked against the caller's own rows: a
pooled connection must never answer with the caller of a previous request.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event
from werkzeug.serving import make_server

import harness
from test_flask_records import RECORDS, USERS, create_app, flaskdb, url  # noqa: F401
from test_tokens import SECRET, SECRET_ENV, claims, hs_token

from enforcement_support import policy_text

CALLERS = [("acme", 1), ("acme", 2), ("globex", 3), ("globex", 4), ("initech", 8)]


def start_flask_proxy(start_proxy):
    entries = [{"name": "app", "scram": harness.scram_verifier(harness.PRINCIPALS["app"]["password"]),
                "tenants": ["*"], "identity": "token"}]
    proxy = start_proxy({"principals": entries}, start=False, extra_env={SECRET_ENV: SECRET})
    (proxy.dir / "policy.toml").write_text(policy_text(
        {"users": "tenant", "records": {"scope": "tenant_owner", "owner_column": "created_by"},
         "countries": "shared"}))
    proxy.config_path.write_text(proxy.config_path.read_text() +
                                 f'\n[identity.token]\nsecret_env = "{SECRET_ENV}"\n')
    return proxy.start()


def get(port: int, path: str, tenant: str, user: int, token: str | None) -> tuple[int, object]:
    headers = {"X-Tenant": tenant, "X-User": str(user)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, None


@pytest.fixture
def flask_server(start_proxy, flaskdb, create_app):
    proxy = start_flask_proxy(start_proxy)
    app = create_app(url(proxy.host, proxy.port, flaskdb), send_token=True)
    app.connects = []
    with app.app_context():
        from flask_records_app import db
        event.listen(db.engine, "connect", lambda dbapi_conn, rec: app.connects.append(1))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, app, proxy
    server.shutdown()
    thread.join(10)
    with app.app_context():
        from flask_records_app import db
        db.engine.dispose()


def test_pooled_engine_interleaved_callers(flask_server):
    port, app, proxy = flask_server
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    rng = random.Random(seed)
    tokens = {(t, u): hs_token(claims(t, str(u), ttl=600)) for t, u in CALLERS}
    plan = []
    for _ in range(150):
        tenant, user = rng.choice(CALLERS)
        kind = rng.choice(["list", "record", "user"])
        plan.append((tenant, user, kind, rng.randint(1, len(RECORDS) if kind == "record" else len(USERS))))

    def run(step):
        tenant, user, kind, target = step
        token = tokens[(tenant, user)]
        if kind == "list":
            return step, get(port, "/api/records", tenant, user, token)
        path = f"/api/records/{target}" if kind == "record" else f"/api/users/{target}"
        return step, get(port, path, tenant, user, token)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(run, plan))

    checked = 0
    for (tenant, user, kind, target), (status, body) in results:
        own_records = sorted(i for i, t, c in RECORDS if t == tenant and c == user)
        own_users = {i for i, t in USERS if t == tenant}
        if kind == "list":
            assert status == 200, (tenant, user, status)
            assert [r["id"] for r in body] == own_records, (seed, tenant, user, body)
            assert {(r["tenant_id"], r["created_by"]) for r in body} <= {(tenant, user)}
        elif kind == "record":
            expected = 200 if target in own_records else 404
            assert status == expected, (seed, tenant, user, target, status)
            if status == 200:
                assert body["tenant_id"] == tenant and body["id"] == target
        else:
            expected = 200 if target in own_users else 404
            assert status == expected, (seed, tenant, user, target, status)
        checked += 1
    assert checked == len(plan)
    # The pool really was shared: at most 5 connections to tenantgate served
    # 150 requests, and more than one served them concurrently.
    assert 2 <= len(app.connects) <= 5, len(app.connects)


def test_request_without_token_gets_nothing(flask_server):
    port, app, _ = flask_server
    status, _ = get(port, "/api/records", "acme", 1, None)
    assert status == 401
    # A forged token: tenantgate refuses it, the request fails, nothing leaks.
    forged = hs_token(claims("globex", "3"), secret="not-the-secret-0123456789abcdef-01")
    status, body = get(port, "/api/records", "globex", 3, forged)
    assert status == 500 and body is None
    # The pool goes on serving good tokens afterwards.
    status, body = get(port, "/api/records", "globex", 3, hs_token(claims("globex", "3")))
    assert status == 200
    assert [r["id"] for r in body] == sorted(i for i, t, c in RECORDS if t == "globex" and c == 3)
