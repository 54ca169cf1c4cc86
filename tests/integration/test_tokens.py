"""Signed identity tokens over the wire: the token at start-up, SET / SET LOCAL /
RESET tenantgate.token, SHOW tenantgate.tenant / tenantgate.user, and every
attack on a token or on the way it is set. Tokens are made here by hand
(hmac, cryptography), independently of the proxy's own code.

A refused token never falls back: the connection is left with no caller, and
every statement touching a scoped table is refused (42501) until a new token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import psycopg
import psycopg.sql
import psycopg2
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

import harness
from enforcement_support import (ME_TENANT, bind_msg, errors, execute_msg, ids_for, parse_msg, policy_text,
                                 read_until_ready, seeded, sqlstate, sync_msg)  # noqa: F401

SECRET = "it-token-secret-0123456789abcdef-0123456789"
SECRET_ENV = "TG_IT_TOKEN_SECRET"

# Principals of the token tests: "app" takes a claimed identity or a token,
# "tok" only tokens, "limited" either but only two tenants, "claimed" never
# tokens (the default), "admin" bypasses rewriting.
PRINCIPALS = {
    "app": {"password": "app-secret", "tenants": ["*"], "identity": "either"},
    "tok": {"password": "tok-secret", "tenants": ["*"], "identity": "token"},
    "limited": {"password": "limited-secret", "tenants": ["acme", "globex"], "identity": "either"},
    "claimed": {"password": "claimed-secret", "tenants": ["*"], "identity": "claimed"},
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(tenant: str | None = "acme", sub: str | None = "42", ttl: int = 300, **extra) -> dict:
    now = int(time.time())
    c = {"iat": now - 5, "exp": now + ttl}
    if tenant is not None:
        c["tenant"] = tenant
    if sub is not None:
        c["sub"] = sub
    c.update(extra)
    return c


def hs_token(payload: dict | str, secret: str | bytes = SECRET, header: dict | str | None = None,
             digest=hashlib.sha256) -> str:
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    h = header if isinstance(header, str) else json.dumps(header)
    p = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = b64(h.encode()) + "." + b64(p.encode())
    key = secret.encode() if isinstance(secret, str) else secret
    return signing_input + "." + b64(hmac.new(key, signing_input.encode(), digest).digest())


def es_token(key: ec.EllipticCurvePrivateKey, payload: dict, header: dict | None = None) -> str:
    header = header or {"alg": "ES256", "typ": "JWT"}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def start_token_proxy(start_proxy, table: str, token_keys: dict, principals: dict = PRINCIPALS,
                      scope: str = "tenant") -> harness.Proxy:
    """A proxy with [identity.token] `token_keys` and `table` scoped by tenant."""
    entries = []
    for name, p in principals.items():
        entries.append({"name": name, "scram": harness.scram_verifier(p["password"]),
                        "tenants": p["tenants"], "identity": p["identity"]})
    entries.append({"name": "admin", "scram": harness.scram_verifier(harness.PRINCIPALS["admin"]["password"]),
                    "tenants": ["*"], "bypass": True})
    proxy = start_proxy({"principals": entries}, start=False, extra_env={SECRET_ENV: SECRET})
    (proxy.dir / "policy.toml").write_text(policy_text({table: scope}))
    text = proxy.config_path.read_text()
    text += "\n[identity.token]\n" + "".join(f"{k} = {harness._toml_value(v)}\n" for k, v in token_keys.items())
    proxy.config_path.write_text(text)
    return proxy.start()


@pytest.fixture
def tp(start_proxy, seeded):
    """(proxy, table): HS256 tokens from SECRET_ENV, issuer and audience checked."""
    table = seeded("tok")
    proxy = start_token_proxy(start_proxy, table, {"secret_env": SECRET_ENV, "issuer": "it-issuer",
                                                     "audience": "tenantgate-it"})
    return proxy, table


def good(tenant: str = "acme", sub: str = "42", **extra) -> dict:
    return claims(tenant, sub, iss="it-issuer", aud="tenantgate-it", **extra)


def connect(proxy: harness.Proxy, user: str = "tok", token: str | None = None, tenant: str | None = None,
            user_id: str | None = None, **kw) -> psycopg2.extensions.connection:
    parts = []
    if token is not None:
        parts.append(f"-c tenantgate.token={token}")
    if tenant is not None:
        parts.append(f"-c tenantgate.tenant={tenant}")
    if user_id is not None:
        parts.append(f"-c tenantgate.user={user_id}")
    dsn = harness.conninfo(host=proxy.host, port=proxy.port, user=user, password=PRINCIPALS[user]["password"],
                           dbname=harness.DATABASE, options=" ".join(parts) or None, sslmode="disable",
                           connect_timeout=10, **kw)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def raw_session(proxy: harness.Proxy, user: str = "tok", **params: str) -> harness.RawConn:
    raw = proxy.raw()
    r = raw.startup({"user": user, "database": harness.DATABASE, **params}, PRINCIPALS[user]["password"])
    assert r.ok, r.error
    return raw


def ids(cur, table: str) -> list[int]:
    cur.execute(f"SELECT id FROM {table} ORDER BY id")
    return [r[0] for r in cur.fetchall()]


def show(cur, what: str):
    cur.execute(f"SHOW tenantgate.{what}")
    return cur.fetchone()[0]


def refused(cur, sql: str) -> psycopg2.Error:
    with pytest.raises(psycopg2.Error) as e:
        cur.execute(sql)
    return e.value


def assert_no_caller(cur, table: str) -> None:
    e = refused(cur, f"SELECT id FROM {table}")
    assert sqlstate(e) == "42501", e
    assert show(cur, "tenant") is None


# --------------------------------------------------------------------------
# The token at start-up.


def test_token_at_startup_in_options(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("globex", "7")))
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("globex")
        assert show(cur, "tenant") == "globex"
        assert show(cur, "user") == "7"
    conn.close()


def test_token_as_own_startup_parameter(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("initech"))}) as raw:
        out = raw.simple_query(f"SELECT id FROM {table} ORDER BY id")
        assert not out["errors"], out["errors"]
        assert [int(r[0]) for r in out["rows"]] == ids_for("initech")


@pytest.mark.parametrize("case,check", [
    ("bad_signature", "signature"),
    ("expired", "exp"),
    ("wrong_issuer", "iss"),
    ("alg_none", "alg"),
])
def test_bad_token_at_startup_is_28000(tp, case, check):
    proxy, _ = tp
    token = {
        "bad_signature": hs_token(good(), secret=SECRET + "x"),
        "expired": hs_token(dict(good(), exp=int(time.time()) - 120)),
        "wrong_issuer": hs_token(dict(good(), iss="someone-else")),
        "alg_none": b64(b'{"alg":"none"}') + "." + b64(json.dumps(good()).encode()) + ".",
    }[case]
    with proxy.raw() as raw:
        r = raw.startup({"user": "tok", "database": harness.DATABASE, "tenantgate.token": token},
                        PRINCIPALS["tok"]["password"])
    assert r.error is not None, "a bad token was accepted"
    assert r.error["C"] == "28000", r.error
    assert f"{check} check failed" in r.error["M"], r.error
    assert token not in proxy.log()


def test_token_principal_refuses_bare_parameters(tp):
    proxy, _ = tp
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(proxy, user="tok", tenant="acme", user_id="42")
    assert "token" in str(e.value), str(e.value)


def test_claimed_principal_refuses_tokens(tp):
    proxy, table = tp
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(proxy, user="claimed", token=hs_token(good()))
    assert "token" in str(e.value)
    conn = connect(proxy, user="claimed", tenant="acme", user_id="42")
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("acme")
        e = refused(cur, f"SET tenantgate.token = '{hs_token(good('globex'))}'")
        assert sqlstate(e) == "42501"
        assert_no_caller(cur, table)
    conn.close()


def test_token_and_parameters_together_refused(tp):
    proxy, _ = tp
    with pytest.raises(psycopg2.OperationalError):
        connect(proxy, user="app", token=hs_token(good()), tenant="acme")


# --------------------------------------------------------------------------
# SET / SET LOCAL / RESET / SHOW.


def test_set_token_switches_the_caller(tp):
    proxy, table = tp
    conn = connect(proxy)  # no caller yet: a pool connects first, then sets tokens
    with conn.cursor() as cur:
        assert_no_caller(cur, table)
        for tenant in ["acme", "globex", "acme", "initech"]:
            cur.execute(f"SET tenantgate.token = '{hs_token(good(tenant))}'")
            assert cur.statusmessage == "SET"
            assert ids(cur, table) == ids_for(tenant)
            assert show(cur, "tenant") == tenant
            assert show(cur, "user") == "42"
    conn.close()


def test_set_local_holds_until_the_transaction_ends(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        for end in ["COMMIT", "ROLLBACK"]:
            cur.execute("BEGIN")
            cur.execute(f"SET LOCAL tenantgate.token = '{hs_token(good('globex'))}'")
            assert ids(cur, table) == ids_for("globex")
            cur.execute(end)
            assert ids(cur, table) == ids_for("acme"), end
    conn.close()


def test_set_local_outside_a_transaction_leaves_no_caller(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        e = refused(cur, f"SET LOCAL tenantgate.token = '{hs_token(good('globex'))}'")
        assert sqlstate(e) == "25P01", e
        assert_no_caller(cur, table)
    conn.close()


@pytest.mark.parametrize("reset", ["RESET tenantgate.token", "RESET ALL", "DISCARD ALL",
                                   "SET tenantgate.token TO DEFAULT"])
def test_reset_leaves_no_caller(tp, reset):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("acme")
        cur.execute(reset)
        assert_no_caller(cur, table)
        cur.execute("SELECT 1")  # statements on no scoped table still run
        assert cur.fetchone() == (1,)
        cur.execute(f"SET tenantgate.token = '{hs_token(good('globex'))}'")
        assert ids(cur, table) == ids_for("globex")
    conn.close()


def test_set_is_answered_by_the_proxy_not_the_backend(tp):
    proxy, _ = tp
    token = hs_token(good("acme"))
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute(f"SET tenantgate.token = '{token}'")
        # Had the SET reached the backend, it would hold the token as a
        # placeholder setting.
        cur.execute("SELECT current_setting('tenantgate.token', true)")
        assert cur.fetchone()[0] in (None, "")
    conn.close()
    assert token not in proxy.log()


# --------------------------------------------------------------------------
# Attacks on the token itself (each refused 42501 naming its check, leaving no caller).


def attack_tokens() -> dict[str, tuple[str, str]]:
    now = int(time.time())
    g = good("globex")
    return {
        "bad_signature": (hs_token(g)[:-3] + ("AAA" if not hs_token(g).endswith("AAA") else "BBB"), "signature"),
        "wrong_key": (hs_token(g, secret="another-secret-0123456789abcdef-0123"), "signature"),
        "alg_none": (b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(g).encode()) + ".", "alg"),
        "alg_none_signed": (hs_token(g, header={"alg": "none"}), "alg"),
        "hs384_header_hs256_tag": (hs_token(g, header={"alg": "HS384"}), "signature"),
        "expired": (hs_token(dict(g, exp=now - 300, iat=now - 600)), "exp"),
        "no_exp": (hs_token({k: v for k, v in g.items() if k != "exp"}), "exp"),
        "not_yet_valid": (hs_token(dict(g, nbf=now + 600)), "nbf"),
        "issued_in_future": (hs_token(dict(g, iat=now + 600, exp=now + 900)), "iat"),
        "too_long_lived": (hs_token(dict(g, exp=now + 10 * 86400)), "lifetime"),
        "wrong_issuer": (hs_token(dict(g, iss="evil")), "iss"),
        "wrong_audience": (hs_token(dict(g, aud="other-app")), "aud"),
        "missing_tenant": (hs_token({k: v for k, v in g.items() if k != "tenant"}), "tenant"),
        "tenant_is_object": (hs_token(dict(g, tenant={"id": "globex"})), "tenant"),
        "tenant_is_bool": (hs_token(dict(g, tenant=True)), "tenant"),
        "user_not_int": (hs_token(dict(g, sub="alice")), "user"),
        "over_size": (hs_token(dict(g, pad="x" * 9000)), "size"),
        "padded_base64": (hs_token(g).replace(".", "=.", 1), "base64url"),
        "standard_base64": (hs_token(g)[:10] + "+" + hs_token(g)[11:], "base64url"),
        "two_parts": (hs_token(g).rsplit(".", 1)[0], "format"),
        "malformed_json": (hs_token('{"tenant": "globex", "exp": ' + str(now + 60)), "payload"),
        "duplicate_tenant": (hs_token('{"tenant":"acme","exp":%d,"iss":"it-issuer","aud":"tenantgate-it",'
                                      '"tenant":"globex"}' % (now + 60)), "payload"),
        "crit_header": (hs_token(g, header={"alg": "HS256", "crit": ["exp"]}), "header"),
    }


@pytest.mark.parametrize("name", sorted(attack_tokens()))
def test_attack_token_refused_and_leaves_no_caller(tp, name):
    proxy, table = tp
    token, check = attack_tokens()[name]
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("acme")
        e = refused(cur, f"SET tenantgate.token = '{token}'")
        assert sqlstate(e) == "42501", e
        assert f"{check} check failed" in str(e), str(e)
        assert_no_caller(cur, table)
    conn.close()
    lines = [line for line in proxy.log().splitlines() if f"{check} check failed" in line]
    assert lines, "the refusal is not in the log"
    assert any("principal=tok" in line and "session=" in line for line in lines), lines
    assert token not in proxy.log()


def test_tenant_the_principal_may_not_claim(tp):
    proxy, table = tp
    conn = connect(proxy, user="limited", token=hs_token(good("acme")))
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("acme")
        e = refused(cur, f"SET tenantgate.token = '{hs_token(good('initech'))}'")
        assert sqlstate(e) == "42501"
        assert "may not claim tenant" in str(e)
        assert_no_caller(cur, table)
    conn.close()
    with pytest.raises(psycopg2.OperationalError) as e:
        connect(proxy, user="limited", token=hs_token(good("initech")))
    assert "may not claim tenant" in str(e.value)


# --------------------------------------------------------------------------
# Attacks on the way the token is set.


def test_set_inside_a_multi_statement_query(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        for sql in [f"SET tenantgate.token = '{hs_token(good('globex'))}'; SELECT id FROM {table}",
                    f"SELECT 1; SET tenantgate.token = '{hs_token(good('globex'))}'"]:
            out = raw.simple_query(sql)
            assert [e["C"] for e in out["errors"]] == ["42501"], out
            assert not out["rows"], out  # all or nothing: the SELECT did not run
            out = raw.simple_query(f"SELECT id FROM {table}")
            assert out["errors"] and out["errors"][0]["C"] == "42501", out
            raw.simple_query(f"SET tenantgate.token = '{hs_token(good('acme'))}'")


def test_set_in_an_aborted_transaction(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        refused(cur, "SELECT 1/0")
        e = refused(cur, f"SET LOCAL tenantgate.token = '{hs_token(good('globex'))}'")
        assert sqlstate(e) == "25P02", e
        cur.execute("ROLLBACK")
        assert_no_caller(cur, table)
    conn.close()


def test_set_through_the_extended_protocol(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        raw.send(parse_msg(f"SET tenantgate.token = '{hs_token(good('globex'))}'") + bind_msg() +
                 execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [e["C"] for e in errors(msgs)] == ["42501"], msgs
        out = raw.simple_query(f"SELECT id FROM {table}")
        assert out["errors"] and out["errors"][0]["C"] == "42501", out


def test_set_through_psycopg3_extended_protocol(tp):
    proxy, table = tp
    dsn = harness.conninfo(host=proxy.host, port=proxy.port, user="tok", password=PRINCIPALS["tok"]["password"],
                           dbname=harness.DATABASE, options=f"-c tenantgate.token={hs_token(good('acme'))}",
                           sslmode="disable")
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as e:
            # With a parameter psycopg 3 sends Parse/Bind/Execute.
            conn.execute("SET tenantgate.token = %s", [hs_token(good("globex"))])
        assert e.value.sqlstate == "42501"
        with pytest.raises(psycopg.Error) as e:
            conn.execute(f"SELECT id FROM {table}")
        assert e.value.sqlstate == "42501"
        # A client-side cursor sends a simple Query, which is how a token is set.
        with psycopg.ClientCursor(conn) as cur:
            cur.execute("SET tenantgate.token = %s", [hs_token(good("globex"))])
            cur.execute(f"SELECT id FROM {table} ORDER BY id")
            assert [r[0] for r in cur.fetchall()] == ids_for("globex")
        # So does a statement without parameters, composed on the client.
        conn.execute(psycopg.sql.SQL("SET tenantgate.token = {}").format(hs_token(good("initech"))))
        rows = conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()
        assert [r[0] for r in rows] == ids_for("initech")


def test_set_through_sql_prepare(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        e = refused(cur, f"PREPARE p AS SET tenantgate.token = '{hs_token(good('globex'))}'")
        assert sqlstate(e) in ("42501", "42601"), e
        assert_no_caller(cur, table)
    conn.close()


def test_prepared_statement_does_not_outlive_its_caller(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        cur.execute(f"PREPARE mine AS SELECT id FROM {table} ORDER BY id")
        cur.execute("EXECUTE mine")
        assert [r[0] for r in cur.fetchall()] == ids_for("acme")
        cur.execute(f"SET tenantgate.token = '{hs_token(good('globex'))}'")
        e = refused(cur, "EXECUTE mine")  # prepared with acme's predicate
        assert sqlstate(e) == "42501", e
        cur.execute("DEALLOCATE mine")
        cur.execute(f"PREPARE mine AS SELECT id FROM {table} ORDER BY id")
        cur.execute("EXECUTE mine")
        assert [r[0] for r in cur.fetchall()] == ids_for("globex")
    conn.close()


def test_protocol_prepared_statement_does_not_outlive_its_caller(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s1") + sync_msg())
        assert not errors(read_until_ready(raw))
        raw.simple_query(f"SET tenantgate.token = '{hs_token(good('globex'))}'")
        raw.send(bind_msg(stmt="s1") + execute_msg() + sync_msg())
        msgs = read_until_ready(raw)
        assert [e["C"] for e in errors(msgs)] == ["42501"], msgs
        assert not [m for m in msgs if m[0] == b"D"], "rows of the previous caller's statement"


def test_set_config_is_denied(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        e = refused(cur, f"SELECT set_config('tenantgate.token', '{hs_token(good('globex'))}', false)")
        assert sqlstate(e) == "42501", e
        assert ids(cur, table) == ids_for("acme")  # not a token statement: the caller stays
    conn.close()


def test_claimed_identity_parameters_cannot_be_set(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        e = refused(cur, "SET tenantgate.tenant = 'globex'")
        assert sqlstate(e) == "42501"
    conn.close()


# --------------------------------------------------------------------------
# Public keys: ES256 from a PEM file; an HS256 token signed with that public key.


def test_es256_public_key_and_hmac_confusion(start_proxy, seeded, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "pub.pem").write_bytes(pem)
    table = seeded("tok")
    proxy = start_token_proxy(start_proxy, table, {"public_key_file": str(tmp_path / "pub.pem")})
    conn = connect(proxy, token=es_token(key, claims("globex")))
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("globex")
        for secret in [pem, pem.strip()]:
            e = refused(cur, f"SET tenantgate.token = '{hs_token(claims('acme'), secret=secret)}'")
            assert sqlstate(e) == "42501"
            assert "alg check failed" in str(e), str(e)
            assert_no_caller(cur, table)
        other = ec.generate_private_key(ec.SECP256R1())
        e = refused(cur, f"SET tenantgate.token = '{es_token(other, claims('acme'))}'")
        assert "signature check failed" in str(e)
        cur.execute(f"SET tenantgate.token = '{es_token(key, claims('acme'))}'")
        assert ids(cur, table) == ids_for("acme")
    conn.close()


# --------------------------------------------------------------------------
# tenantgate token: minted tokens are accepted; misuse is refused.


def test_token_subcommand_mints_what_the_proxy_accepts(tp):
    import os
    import subprocess
    proxy, table = tp
    env = dict(os.environ, **{SECRET_ENV: SECRET})
    cmd = [str(harness.tenantgate_bin()), "token", "--config", str(proxy.config_path), "--tenant", "globex",
           "--user", "9", "--ttl", "120", "--claim", "plan=gold"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["tenant"] == "globex" and payload["sub"] == "9" and payload["plan"] == "gold"
    assert payload["iss"] == "it-issuer" and payload["aud"] == "tenantgate-it"
    assert 0 < payload["exp"] - payload["iat"] <= 120
    conn = connect(proxy, token=token)
    with conn.cursor() as cur:
        assert ids(cur, table) == ids_for("globex")
        assert show(cur, "user") == "9"
    conn.close()

    no_secret = dict(os.environ)
    no_secret.pop(SECRET_ENV, None)
    r = subprocess.run(cmd, capture_output=True, text=True, env=no_secret, timeout=30)
    assert r.returncode == 1 and SECRET_ENV in r.stderr
    r = subprocess.run(cmd[:-2] + ["--ttl", "999999"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2 and "max_lifetime_s" in r.stderr
    r = subprocess.run(cmd[:4] + ["--tenant", "x", "--user", "not-an-int"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 2 and "identity.user_type" in r.stderr


def test_bypass_principal_never_forwards_a_token(tp):
    proxy, _ = tp
    dsn = harness.conninfo(host=proxy.host, port=proxy.port, user="admin",
                           password=harness.PRINCIPALS["admin"]["password"], dbname=harness.DATABASE,
                           sslmode="disable")
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    token = hs_token(good("globex"))
    with conn.cursor() as cur:
        with pytest.raises(psycopg2.Error):
            cur.execute(f"SET tenantgate.token = '{token}'")
    assert "FATAL 42501 bypass principals do not take tenantgate.token" in proxy.log()
    assert token not in proxy.log()
    # The backend never held it.
    rows = proxy.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%" + token[-20:] + "%' "
                         "AND pid <> pg_backend_pid()")
    assert rows.strip() == "0", rows


# --------------------------------------------------------------------------
# Cursors, portals and transaction ends across caller changes on one connection.


def local(tenant: str) -> str:
    return f"SET LOCAL tenantgate.token = '{hs_token(good(tenant))}'"


def row_ids(result: dict) -> list[int]:
    return [int(r[0]) for r in result["rows"]]


def test_hold_cursor_does_not_outlive_its_caller(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        # Control: a cursor of the caller in force is read as usual.
        cur.execute("BEGIN")
        cur.execute(f"DECLARE mine CURSOR WITH HOLD FOR SELECT id FROM {table} ORDER BY id")
        cur.execute("COMMIT")
        cur.execute("FETCH ALL mine")
        assert [r[0] for r in cur.fetchall()] == ids_for("acme")
        cur.execute("BEGIN")
        cur.execute(local("globex"))
        cur.execute(f"DECLARE leak CURSOR WITH HOLD FOR SELECT id FROM {table} ORDER BY id")
        cur.execute("COMMIT")
        for sql in ("FETCH ALL leak", "MOVE 1 IN leak", "FETCH ALL \"leak\""):
            e = refused(cur, sql)
            assert sqlstate(e) == "42501", (sql, e)
        cur.execute("RESET tenantgate.token")  # no caller at all
        assert sqlstate(refused(cur, "FETCH ALL leak")) == "42501"
        # A failed DECLARE over the name (42P03) does not take it over.
        cur.execute(f"SET tenantgate.token = '{hs_token(good('acme'))}'")
        cur.execute("BEGIN")
        assert sqlstate(refused(cur, "DECLARE leak CURSOR WITH HOLD FOR SELECT 1")) == "42P03"
        cur.execute("ROLLBACK")
        assert sqlstate(refused(cur, "FETCH ALL leak")) == "42501"
    conn.close()


def test_hold_cursor_close_all_frees_the_name(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("acme")))
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(local("globex"))
        cur.execute(f"DECLARE leak CURSOR WITH HOLD FOR SELECT id FROM {table} ORDER BY id")
        cur.execute("COMMIT")
        assert sqlstate(refused(cur, "CLOSE leak")) == "42501"
        cur.execute("CLOSE ALL")
        cur.execute("BEGIN")
        cur.execute(f"DECLARE leak CURSOR WITH HOLD FOR SELECT id FROM {table} ORDER BY id")
        cur.execute("COMMIT")
        cur.execute("FETCH ALL leak")
        assert [r[0] for r in cur.fetchall()] == ids_for("acme")
    conn.close()


def test_protocol_portal_not_fetched_by_another_caller(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s1") +
                 bind_msg(stmt="s1", portal="p1") + sync_msg())
        assert not errors(read_until_ready(raw))
        assert not raw.simple_query(local("acme"))["errors"]
        r = raw.simple_query("FETCH ALL p1")
        assert [e["C"] for e in r["errors"]] == ["42501"], r
        assert not r["rows"]


def test_sql_cursor_not_executed_as_a_portal_by_another_caller(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        assert not raw.simple_query(f"DECLARE cur CURSOR FOR SELECT id FROM {table} ORDER BY id")["errors"]
        assert not raw.simple_query(local("acme"))["errors"]
        raw.send(execute_msg("cur") + sync_msg())
        msgs = []
        while (m := raw.recv_msg()) is not None:  # the proxy ends the connection
            msgs.append(m)
            if m[0] == b"Z":
                break
        assert [e["C"] for e in errors(msgs)] == ["42501"], msgs
        assert not [m for m in msgs if m[0] == b"D"], "rows of the previous caller's cursor"


def test_where_current_of_another_callers_cursor(tp, pg):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        r = raw.simple_query(f"DECLARE c CURSOR FOR SELECT * FROM {table} ORDER BY id FOR UPDATE")
        assert not r["errors"], r
        r = raw.simple_query("FETCH NEXT c")
        assert row_ids(r) == ids_for("acme")[:1], r
        assert not raw.simple_query(local("globex"))["errors"]
        r = raw.simple_query(f"UPDATE {table} SET body = 'taken' WHERE CURRENT OF c")
        assert [e["C"] for e in r["errors"]] == ["42501"], r
        raw.simple_query("COMMIT")
    assert pg.psql(f"SELECT count(*) FROM {table} WHERE body = 'taken'") == "0"


def test_portal_names_are_cut_as_postgresql_cuts_them(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s1") +
                 bind_msg(stmt="s1", portal="A" * 63 + "X") + sync_msg())
        assert not errors(read_until_ready(raw))
        assert not raw.simple_query(local("acme"))["errors"]
        raw.send(execute_msg("A" * 63 + "Y") + sync_msg())
        msgs = []
        while (m := raw.recv_msg()) is not None:
            msgs.append(m)
            if m[0] == b"Z":
                break
        assert [e["C"] for e in errors(msgs)] == ["42501"], msgs
        assert not [m for m in msgs if m[0] == b"D"]


def test_failed_re_prepare_keeps_the_old_caller(tp):
    proxy, table = tp
    conn = connect(proxy, token=hs_token(good("globex")))
    with conn.cursor() as cur:
        cur.execute(f"PREPARE mine AS SELECT id FROM {table} ORDER BY id")
        cur.execute(f"SET tenantgate.token = '{hs_token(good('acme'))}'")
        assert sqlstate(refused(cur, f"PREPARE mine AS SELECT id FROM {table} ORDER BY id")) == "42P05"
        assert sqlstate(refused(cur, "EXECUTE mine")) == "42501"
    conn.close()


def test_failed_re_parse_and_re_bind_keep_the_old_caller(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s1") +
                 bind_msg(stmt="s1", portal="p") + sync_msg())
        assert not errors(read_until_ready(raw))
        assert not raw.simple_query(local("acme"))["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s1") + sync_msg())
        assert [e["C"] for e in errors(read_until_ready(raw))] == ["42P05"]
        raw.send(bind_msg(stmt="s1") + sync_msg())
        assert [e["C"] for e in errors(read_until_ready(raw))] == ["42501"]
        assert not raw.simple_query("ROLLBACK")["errors"]
        assert not raw.simple_query("BEGIN")["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s2") +
                 bind_msg(stmt="s2", portal="p") + sync_msg())
        assert not errors(read_until_ready(raw))
        assert not raw.simple_query(local("globex"))["errors"]
        raw.send(parse_msg(f"SELECT id FROM {table} ORDER BY id", name="s3") + sync_msg())
        assert not errors(read_until_ready(raw))
        raw.send(bind_msg(stmt="s3", portal="p") + sync_msg())  # 42P03: the backend keeps acme's
        assert [e["C"] for e in errors(read_until_ready(raw))] == ["42P03"]
        raw.send(execute_msg("p") + sync_msg())
        msgs = []
        while (m := raw.recv_msg()) is not None:
            msgs.append(m)
            if m[0] == b"Z":
                break
        assert [e["C"] for e in errors(msgs)] == ["42501"], msgs
        assert not [m for m in msgs if m[0] == b"D"]


@pytest.mark.parametrize("end", ["COMMIT AND CHAIN", "ROLLBACK AND CHAIN"])
def test_local_caller_ends_with_a_chained_transaction(tp, end):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        assert row_ids(raw.simple_query(f"SELECT id FROM {table} ORDER BY id")) == ids_for("globex")
        r = raw.simple_query(end)
        assert not r["errors"] and r["status"] == "T", r
        assert row_ids(raw.simple_query(f"SELECT id FROM {table} ORDER BY id")) == ids_for("acme")
        assert raw.simple_query("SHOW tenantgate.tenant")["rows"] == [["acme"]]


def test_statements_after_commit_in_one_query_are_refused_under_a_local_caller(tp):
    proxy, table = tp
    with raw_session(proxy, **{"tenantgate.token": hs_token(good("acme"))}) as raw:
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        r = raw.simple_query(f"COMMIT; BEGIN; SELECT id FROM {table} ORDER BY id")
        assert [e["C"] for e in r["errors"]] == ["0A000"], r
        assert not r["rows"]
        assert r["status"] == "E", r  # refused like a failing statement: the transaction is aborted
        assert raw.simple_query("ROLLBACK")["status"] == "I"
        assert row_ids(raw.simple_query(f"SELECT id FROM {table} ORDER BY id")) == ids_for("acme")
        assert not raw.simple_query("BEGIN")["errors"]
        assert not raw.simple_query(local("globex"))["errors"]
        r = raw.simple_query(f"SELECT id FROM {table} ORDER BY id; COMMIT")
        assert not r["errors"] and row_ids(r) == ids_for("globex"), r
        # Without a local caller the same Query runs.
        r = raw.simple_query(f"BEGIN; COMMIT; BEGIN; SELECT id FROM {table} ORDER BY id; COMMIT")
        assert not r["errors"] and row_ids(r) == ids_for("acme"), r
