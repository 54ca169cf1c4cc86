"""Authentication modes (scram, passthrough, trust) and backend login methods."""

import time

import psycopg2
import pytest

import harness

APP_PW = harness.PRINCIPALS["app"]["password"]


def session_user(c):
    q = c.simple_query("SELECT session_user")
    assert q["errors"] == [], q["errors"]
    return q["rows"][0][0]


# --- scram -------------------------------------------------------------------

def test_scram_right_password(proxy):
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), APP_PW)
        assert r.ok, r.error
        # The proxy itself ran SCRAM-SHA-256 (and its server signature verified).
        assert r.auth_methods == [10]
        assert r.backend_key is not None
        # ... and logged into the backend with the service credentials.
        assert session_user(c) == harness.SERVICE_USER


def test_scram_with_libpq(proxy):
    conn = psycopg2.connect(proxy.dsn(user="limited"))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone() == (10,)
    conn.close()


def test_scram_wrong_password(proxy):
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), "not-the-password")
    assert r.error is not None and r.error["C"] == "28P01", r.error
    assert harness.matches(r"authentication failed", r.error["M"]), r.error


def test_scram_wrong_password_libpq_message(proxy):
    with pytest.raises(psycopg2.OperationalError) as e:
        psycopg2.connect(proxy.dsn(user="app", password="nope"))
    assert "authentication failed" in str(e.value)


def test_scram_password_of_another_principal(proxy):
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), harness.PRINCIPALS["admin"]["password"])
    assert r.error is not None and r.error["C"] == "28P01", r.error


def test_scram_unknown_principal(proxy):
    # "stranger" is a real backend role but not a principal in the config.
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user=harness.STRANGER), harness.STRANGER_PASSWORD)
    assert r.error is not None, "unknown principal was accepted"
    if r.error["C"] == "28000":
        assert harness.matches(r"principal|unknown|not (allowed|permitted|configured)", r.error["M"]), r.error
    else:
        assert r.error["C"] == "28P01", r.error
        assert harness.matches(r"authentication failed", r.error["M"]), r.error


def test_scram_no_password_sent(proxy):
    with pytest.raises(psycopg2.OperationalError) as e:
        psycopg2.connect(proxy.dsn(user="app", password=None), passfile="/dev/null")
    assert harness.matches(r"password", str(e.value)), str(e.value)


# --- passthrough --------------------------------------------------------------

def test_passthrough_right_password(start_proxy):
    proxy = start_proxy({"auth": {"mode": "passthrough"}}, backend_password=None)
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), APP_PW)
        assert r.ok, r.error
        assert session_user(c) == "app"
    conn = psycopg2.connect(proxy.dsn(user="limited", tenant="acme"))
    with conn.cursor() as cur:
        cur.execute("SELECT session_user, count(*) FROM items GROUP BY 1")
        assert cur.fetchone() == ("limited", 10)
    conn.close()


def test_passthrough_wrong_password(start_proxy):
    proxy = start_proxy({"auth": {"mode": "passthrough"}}, backend_password=None)
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), "wrong")
    assert r.error is not None and r.error["C"] == "28P01", r.error
    assert harness.matches(r"authentication failed", r.error["M"]), r.error


def test_passthrough_role_not_a_principal(start_proxy):
    proxy = start_proxy({"auth": {"mode": "passthrough"}}, backend_password=None)
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user=harness.STRANGER), harness.STRANGER_PASSWORD)
    assert r.error is not None and r.error["C"] in ("28000", "28P01"), r.error
    if r.error["C"] == "28000":
        assert harness.matches(r"principal|unknown|not (allowed|permitted|configured)", r.error["M"]), r.error


def test_passthrough_identity_still_required(start_proxy):
    proxy = start_proxy({"auth": {"mode": "passthrough"}}, backend_password=None)
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="limited", tenant="initech"), harness.PRINCIPALS["limited"]["password"])
    assert r.error is not None and r.error["C"] == "28000", r.error


# --- trust -------------------------------------------------------------------

def test_trust_on_loopback(start_proxy):
    proxy = start_proxy({"auth": {"mode": "trust"}})
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), None)
        assert r.ok, r.error
        assert r.auth_methods == []
        assert session_user(c) == harness.SERVICE_USER
    assert harness.matches(r"warn[^\n]*trust|trust[^\n]*warn", proxy.log()), "no warning about trust mode at start"


def test_trust_unknown_principal(start_proxy):
    proxy = start_proxy({"auth": {"mode": "trust"}})
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user=harness.STRANGER), None)
    assert r.error is not None and r.error["C"] == "28000", r.error
    assert harness.matches(r"principal|unknown|not (allowed|permitted|configured)", r.error["M"]), r.error


def test_trust_still_checks_identity(start_proxy):
    proxy = start_proxy({"auth": {"mode": "trust"}})
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app", tenant=None), None)
    assert r.error is not None and r.error["C"] == "28000", r.error


# --- backend login methods -------------------------------------------------------

@pytest.mark.parametrize("user,password", [
    (harness.SERVICE_USER, harness.SERVICE_PASSWORD),  # scram-sha-256
    (harness.MD5_USER, harness.MD5_PASSWORD),          # md5
    (harness.CLEAR_USER, harness.CLEAR_PASSWORD),      # password (cleartext)
])
def test_backend_login_method(start_proxy, user, password):
    proxy = start_proxy({"backend": {"user": user}}, backend_password=password)
    conn = psycopg2.connect(proxy.dsn(user="app"))
    with conn.cursor() as cur:
        cur.execute("SELECT session_user, count(*) FROM items GROUP BY 1")
        assert cur.fetchone() == (user, 10)
    conn.close()


@pytest.mark.parametrize("user", [harness.SERVICE_USER, harness.MD5_USER, harness.CLEAR_USER])
def test_backend_login_wrong_password(start_proxy, user):
    proxy = start_proxy({"backend": {"user": user}}, backend_password="wrong-service-password")
    start = time.monotonic()
    with proxy.raw() as c:
        r = c.startup(proxy.startup_params(user="app"), APP_PW)
    assert r.error is not None, "connected although the backend login must fail"
    assert r.error["C"] in ("08001", "08006", "28P01", "28000"), r.error
    assert time.monotonic() - start < 10
