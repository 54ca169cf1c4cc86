"""Identity from start-up parameters: each refusal (SQLSTATE 28000 naming the rule),
typed values, and identity never reaching the backend."""

import uuid

import psycopg2
import pytest

import harness


def raw_startup(proxy, params, password):
    with proxy.raw() as c:
        return c.startup(params, password)


def assert_refused(result, *patterns):
    assert result.error is not None, "connection was accepted"
    assert result.error.get("C") == "28000", result.error
    for p in patterns:
        assert harness.matches(p, result.error.get("M")), f"message {result.error.get('M')!r} does not match {p!r}"


APP_PW = harness.PRINCIPALS["app"]["password"]
LIMITED_PW = harness.PRINCIPALS["limited"]["password"]


def test_valid_identity_is_accepted(proxy):
    r = raw_startup(proxy, proxy.startup_params(user="app", tenant="acme", user_id="42"), APP_PW)
    assert r.ok, r.error


def test_missing_tenant(proxy):
    r = raw_startup(proxy, proxy.startup_params(user="app", tenant=None, user_id="42"), APP_PW)
    assert_refused(r, r"tenant", r"missing|required|no tenant|not (given|set|provided|specified)")


def test_missing_tenant_message_reaches_libpq(proxy):
    with pytest.raises(psycopg2.OperationalError) as e:
        psycopg2.connect(proxy.dsn(user="app", tenant=None))
    assert harness.matches(r"tenant", str(e.value)), str(e.value)


def test_tenant_not_allowed_for_principal(proxy):
    ok = raw_startup(proxy, proxy.startup_params(user="limited", tenant="globex"), LIMITED_PW)
    assert ok.ok, ok.error
    r = raw_startup(proxy, proxy.startup_params(user="limited", tenant="initech"), LIMITED_PW)
    assert_refused(r, r"tenant", r"not allowed|not permitted|may not|cannot claim|not authori[sz]ed")


@pytest.mark.parametrize("bad", ["abc", "42abc", "1;DROP TABLE items", "99999999999999999999999"])
def test_bad_int_user(proxy, bad):
    params = {"user": "app", "database": harness.DATABASE, "tenantgate.tenant": "acme", "tenantgate.user": bad}
    r = raw_startup(proxy, params, APP_PW)
    assert_refused(r, r"\buser\b|tenantgate\.user", r"int")


def test_uuid_tenant(start_proxy):
    good = str(uuid.uuid4())
    principals = {"app": harness.PRINCIPALS["app"],
                  "limited": dict(harness.PRINCIPALS["limited"], tenants=[good])}
    proxy = start_proxy({"identity": {"tenant_type": "uuid"},
                         "principals": harness.principal_entries("scram", principals)})
    r = raw_startup(proxy, proxy.startup_params(tenant=good), APP_PW)
    assert r.ok, r.error
    for bad in ["acme", good[:-1], good + "0", "' OR 1=1 --"]:
        params = {"user": "app", "database": harness.DATABASE, "tenantgate.tenant": bad, "tenantgate.user": "42"}
        r = raw_startup(proxy, params, APP_PW)
        assert_refused(r, r"tenant", r"uuid")


def test_identity_given_twice_with_different_values(proxy):
    params = {"user": "app", "database": harness.DATABASE, "tenantgate.tenant": "acme",
              "options": "-c tenantgate.tenant=globex -c tenantgate.user=42"}
    r = raw_startup(proxy, params, APP_PW)
    assert_refused(r, r"tenant", r"twice|more than once|different values|conflict")


def test_identity_given_twice_in_options(proxy):
    with pytest.raises(psycopg2.OperationalError) as e:
        psycopg2.connect(proxy.dsn(options="-c tenantgate.tenant=acme -c tenantgate.user=42 "
                                           "-c tenantgate.user=43"))
    assert harness.matches(r"twice|more than once|different values|conflict", str(e.value)), str(e.value)


def test_identity_given_twice_with_same_value_is_accepted(proxy):
    params = {"user": "app", "database": harness.DATABASE, "tenantgate.tenant": "acme",
              "options": "-c tenantgate.tenant=acme -c tenantgate.user=42"}
    r = raw_startup(proxy, params, APP_PW)
    assert r.ok, r.error


@pytest.mark.parametrize("principal", ["app", "admin"])
def test_identity_in_options_not_forwarded(proxy, principal):
    conn = psycopg2.connect(proxy.dsn(user=principal, tenant="acme", user_id="42"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('tenantgate.tenant', true), current_setting('tenantgate.user', true)")
        assert cur.fetchone() == (None, None)
    conn.close()


def test_show_identity_reaches_backend_as_unknown(proxy):
    # The bypass principal's SHOW is not rewritten: the backend itself must not know the parameter.
    conn = psycopg2.connect(proxy.dsn(user="admin", tenant="acme", user_id="42"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in ("tenantgate.tenant", '"tenantgate.user"'):
            with pytest.raises(psycopg2.errors.UndefinedObject) as e:
                cur.execute(f"SHOW {name}")
            assert e.value.pgcode == "42704"
    conn.close()


def test_identity_as_startup_parameters_not_forwarded(proxy):
    params = {"user": "admin", "database": harness.DATABASE, "tenantgate.tenant": "acme", "tenantgate.user": "7"}
    with proxy.raw() as c:
        r = c.startup(params, harness.PRINCIPALS["admin"]["password"])
        assert r.ok, r.error
        q = c.simple_query("SELECT current_setting('tenantgate.tenant', true) IS NULL, "
                           "current_setting('tenantgate.user', true) IS NULL")
        assert q["errors"] == [] and q["rows"] == [["t", "t"]]
        q = c.simple_query('SHOW "tenantgate.user"')
        assert [e["C"] for e in q["errors"]] == ["42704"]


def test_other_options_are_still_forwarded(proxy):
    options = r"-c tenantgate.tenant=acme -c statement_timeout=1234 -c application_name=tg\ app -c tenantgate.user=42"
    conn = psycopg2.connect(proxy.dsn(options=options))
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('statement_timeout'), current_setting('application_name'), "
                    "current_setting('tenantgate.tenant', true)")
        assert cur.fetchone() == ("1234ms", "tg app", None)
    conn.close()


def test_configured_parameter_names(start_proxy):
    proxy = start_proxy({"identity": {"tenant_param": "app.tenant", "user_param": "app.uid"}})
    conn = psycopg2.connect(proxy.dsn(options="-c app.tenant=acme -c app.uid=5"))
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('app.tenant', true), current_setting('app.uid', true)")
        assert cur.fetchone() == (None, None)
    conn.close()
    # The default names mean nothing to this proxy: the tenant is missing.
    params = {"user": "app", "database": harness.DATABASE,
              "options": "-c tenantgate.tenant=acme -c app.uid=5"}
    r = raw_startup(proxy, params, APP_PW)
    assert_refused(r, r"tenant")


# --- settings that statements may not change must not arrive through start-up either ---

@pytest.fixture
def shadow(pg):
    """A schema with its own `items` and a role the service user may switch to."""
    pg.psql("CREATE SCHEMA tg_shadow; CREATE TABLE tg_shadow.items (id int); INSERT INTO tg_shadow.items VALUES (1);"
            "GRANT USAGE ON SCHEMA tg_shadow TO PUBLIC; GRANT SELECT ON tg_shadow.items TO PUBLIC;"
            f"CREATE ROLE tg_elevated NOLOGIN; GRANT tg_elevated TO {harness.SERVICE_USER}")
    yield
    pg.psql("DROP SCHEMA tg_shadow CASCADE; DROP ROLE tg_elevated")


def _refused_or_not_applied(proxy, params, check_sql, expected):
    with proxy.raw() as c:
        r = c.startup(params, APP_PW)
        if not r.ok:
            assert r.error["C"] in ("28000", "42501", "08P01"), r.error
            return
        q = c.simple_query(check_sql)
    assert q["errors"] == [], q["errors"]
    assert q["rows"] == [expected], f"start-up parameters changed what `{check_sql}` sees: {q['rows']}"


@pytest.mark.parametrize("spelling", ["options", "parameter"])
def test_startup_cannot_set_search_path(proxy, shadow, spelling):
    # `SET search_path` is refused; the same setting in the start-up packet must not
    # change how the backend resolves the names the rewriter resolved through the policy's search_path.
    params = proxy.startup_params()
    if spelling == "options":
        params["options"] += " -c search_path=tg_shadow,public"
    else:
        params["search_path"] = "tg_shadow,public"
    _refused_or_not_applied(proxy, params, "SELECT count(*) FROM items", ["10"])


@pytest.mark.parametrize("spelling", ["options", "parameter"])
def test_startup_cannot_set_role(proxy, shadow, spelling):
    # `SET ROLE` is refused; `-c role=...` at start-up must not switch the backend role either.
    params = proxy.startup_params()
    if spelling == "options":
        params["options"] += " -c role=tg_elevated"
    else:
        params["role"] = "tg_elevated"
    _refused_or_not_applied(proxy, params, "SELECT current_user::text", [harness.SERVICE_USER])


@pytest.mark.parametrize("spelling", ["options", "parameter"])
def test_startup_cannot_turn_off_standard_conforming_strings(proxy, spelling):
    # DESIGN refuses `SET standard_conforming_strings = off`: with it off the backend would
    # read backslashes in literals differently from the rewriter's parser.
    params = proxy.startup_params()
    if spelling == "options":
        params["options"] += " -c standard_conforming_strings=off"
    else:
        params["standard_conforming_strings"] = "off"
    _refused_or_not_applied(proxy, params, "SELECT current_setting('standard_conforming_strings')", ["on"])


def test_int_tenant(start_proxy):
    principals = {"app": harness.PRINCIPALS["app"], "limited": dict(harness.PRINCIPALS["limited"], tenants=["7"])}
    proxy = start_proxy({"identity": {"tenant_type": "int"},
                         "principals": harness.principal_entries("scram", principals)})
    assert raw_startup(proxy, proxy.startup_params(tenant="1234"), APP_PW).ok
    assert raw_startup(proxy, proxy.startup_params(user="limited", tenant="7"), LIMITED_PW).ok
    for bad in ["acme", "7.0", "0x10", "7 OR 1=1"]:
        params = {"user": "app", "database": harness.DATABASE, "tenantgate.tenant": bad, "tenantgate.user": "42"}
        assert_refused(raw_startup(proxy, params, APP_PW), r"tenant", r"int")
