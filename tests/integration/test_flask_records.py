"""The Flask app of the scenario in docs/design.md (examples/flask-records/app.py), unchanged, through tenantgate and directly.

The same IDOR-prone code is run twice over a database of three tenants:
through tenantgate, under the example policy (examples/policy.toml: records
of the caller's tenant that the caller created or is a member of), each caller
gets 200 only for those rows and 404 for everything else; pointed at
PostgreSQL directly it leaks (other tenants' profiles 200, their records 403
after crossing the wire, the list unscoped).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

import harness
from enforcement_support import ensure_database, once, start_with_policy

FLASK_DB = "flaskdb"
APP_PATH = harness.REPO_ROOT / "examples" / "flask-records" / "app.py"
SCHEMA = harness.REPO_ROOT / "examples" / "schema.sql"
POLICY = harness.REPO_ROOT / "examples" / "policy.toml"

# Beyond examples/schema.sql (users 1-4, records 1-5): more users and records, ids interleaved across tenants.
EXTRA_USERS = [(5, "initech", "erin@initech.test", "admin"), (6, "acme", "frank@acme.test", "member"),
               (7, "globex", "grace@globex.test", "member"), (8, "initech", "heidi@initech.test", "member"),
               (9, "acme", "ivan@acme.test", "member")]
EXTRA_RECORDS = [("initech", 5), ("acme", 1), ("globex", 3), ("acme", 6), ("initech", 8), ("acme", 2),
                 ("globex", 7), ("acme", 1), ("initech", 5), ("acme", 9), ("globex", 4), ("acme", 1)]
# (tenant, record, user) beyond examples/schema.sql's ('acme', 2, 2), ('globex', 5, 3). The last two name
# a record of another tenant: the membership row alone must not open it.
SCHEMA_MEMBERS = [("acme", 2, 2), ("globex", 5, 3)]
EXTRA_MEMBERS = [("acme", 9, 1), ("acme", 11, 1), ("initech", 6, 8), ("globex", 3, 3), ("acme", 16, 1)]
MEMBERS = SCHEMA_MEMBERS + EXTRA_MEMBERS


def _schema_rows():
    users = [(1, "acme"), (2, "acme"), (3, "globex"), (4, "globex")] + [(u[0], u[1]) for u in EXTRA_USERS]
    records = [("acme", 1), ("acme", 1), ("acme", 2), ("globex", 3), ("globex", 4)] + EXTRA_RECORDS
    # records.id is serial: ids follow insertion order.
    records = [(i + 1, t, c) for i, (t, c) in enumerate(records)]
    return users, records


USERS, RECORDS = _schema_rows()
MAX_USER, MAX_RECORD = len(USERS), len(RECORDS)


@pytest.fixture(scope="module")
def flaskdb(pg):
    ensure_database(pg, FLASK_DB)
    extra_users = ",".join(f"({i}, '{t}', '{e}', '{r}')" for i, t, e, r in EXTRA_USERS)
    extra_records = ",".join(f"('{t}', {c}, '{t}: record of user {c}')" for t, c in EXTRA_RECORDS)
    extra_members = ",".join(f"('{t}', {r}, {u})" for t, r, u in EXTRA_MEMBERS)
    once(pg, FLASK_DB, "schema",
         SCHEMA.read_text()
         + f"INSERT INTO users VALUES {extra_users};"
         + f"INSERT INTO records (tenant_id, created_by, data) VALUES {extra_records};"
         + f"INSERT INTO record_members VALUES {extra_members};"
         + "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;"
         + "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO PUBLIC;")
    got = pg.psql("SELECT string_agg(id || ':' || tenant_id || ':' || created_by, ',' ORDER BY id) FROM records",
                  db=FLASK_DB)
    assert got == ",".join(f"{i}:{t}:{c}" for i, t, c in RECORDS), got
    return FLASK_DB


@pytest.fixture(scope="module")
def create_app():
    spec = importlib.util.spec_from_file_location("flask_records_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.create_app


def _policy() -> str:
    return POLICY.read_text()


def visible_records(tenant: str, user: int) -> set[int]:
    """What the example policy gives a caller: its tenant's records it created or is a member of."""
    member_of = {r for t, r, u in MEMBERS if t == tenant and u == user}
    return {i for i, t, c in RECORDS if t == tenant and (c == user or i in member_of)}


def url(host: str, port: int, db: str) -> str:
    return f"postgresql+psycopg2://app:{harness.PRINCIPALS['app']['password']}@{host}:{port}/{db}"


CALLERS = [("acme", 1), ("acme", 2), ("globex", 3), ("initech", 8)]
# Every caller above is a member of some record it did not create.
assert all(visible_records(t, u) - {i for i, rt, c in RECORDS if rt == t and c == u} for t, u in CALLERS)


def walk(client, tenant: str, user: int, kind: str, upto: int) -> dict[int, int]:
    headers = {"X-Tenant": tenant, "X-User": str(user)}
    return {i: client.get(f"/api/{kind}/{i}", headers=headers).status_code for i in range(1, upto + 4)}


@pytest.mark.parametrize("tenant,user", CALLERS, ids=[f"{t}-{u}" for t, u in CALLERS])
def test_through_tenantgate_only_own_rows(start_proxy, flaskdb, create_app, tenant, user):
    proxy = start_with_policy(start_proxy, _policy())
    app = create_app(url(proxy.host, proxy.port, flaskdb), send_identity=True)
    client = app.test_client()
    headers = {"X-Tenant": tenant, "X-User": str(user)}

    own_users = {i for i, t in USERS if t == tenant}
    own_records = visible_records(tenant, user)
    created = {i for i, t, c in RECORDS if t == tenant and c == user}
    assert own_users and own_records

    users = walk(client, tenant, user, "users", MAX_USER)
    assert {i for i, s in users.items() if s == 200} == own_users
    assert {i for i, s in users.items() if s != 200} == set(users) - own_users
    assert set(users.values()) <= {200, 404}, users

    records = walk(client, tenant, user, "records", MAX_RECORD)
    assert {i for i, s in records.items() if s == 200} == own_records
    assert set(records.values()) <= {200, 404}, records  # never 403: no other row reaches the app

    body = client.get(f"/api/records/{min(own_records)}", headers=headers).get_json()
    assert body["tenant_id"] == tenant and body["id"] == min(own_records)
    profile = client.get(f"/api/users/{min(own_users)}", headers=headers).get_json()
    assert profile["id"] == min(own_users)

    listed = client.get("/api/records", headers=headers).get_json()
    assert [r["id"] for r in listed] == sorted(own_records)
    assert {r["tenant_id"] for r in listed} == {tenant}
    # Rows of others appear exactly where the caller is a member.
    assert {r["id"] for r in listed if r["created_by"] != user} == own_records - created
    page = client.get("/api/records?limit=1&offset=1", headers=headers).get_json()
    assert [r["id"] for r in page] == sorted(own_records)[1:2]


def test_direct_to_database_leaks(pg, flaskdb, create_app):
    app = create_app(url(pg.host, pg.port, flaskdb), send_identity=False)
    client = app.test_client()
    tenant, user = "acme", 1
    headers = {"X-Tenant": tenant, "X-User": str(user)}

    users = walk(client, tenant, user, "users", MAX_USER)
    assert {i for i, s in users.items() if s == 200} == {i for i, _ in USERS}  # every profile of every tenant
    other_profile = next(i for i, t in USERS if t != tenant)
    assert client.get(f"/api/users/{other_profile}", headers=headers).status_code == 200

    records = walk(client, tenant, user, "records", MAX_RECORD)
    other_tenant = {i for i, t, _ in RECORDS if t != tenant}
    assert {i for i, s in records.items() if s == 403} == other_tenant  # the row crossed the wire
    same_tenant_other_owner = {i for i, t, c in RECORDS if t == tenant and c != user}
    assert same_tenant_other_owner and all(records[i] == 200 for i in same_tenant_other_owner)

    listed = client.get("/api/records", headers=headers).get_json()
    assert [r["id"] for r in listed] == [i for i, _, _ in RECORDS]
    assert {r["tenant_id"] for r in listed} == {"acme", "globex", "initech"}
