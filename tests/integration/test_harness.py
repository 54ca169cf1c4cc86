"""Checks of the harness itself against PostgreSQL directly: the SCRAM verifier
and the raw protocol client must be right before they judge the proxy."""

import psycopg2
import pytest

import harness


def test_scram_verifier_is_accepted_by_postgresql(pg):
    # PostgreSQL stores a pre-computed verifier as is; logging in with the
    # plain password then succeeds only if the verifier was computed correctly.
    verifier = harness.scram_verifier("verifier-check", salt=b"0123456789abcdef", iterations=4096)
    pg.psql(f"CREATE ROLE verifier_check LOGIN PASSWORD '{verifier}'")
    try:
        assert pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'verifier_check'") == verifier
        conn = psycopg2.connect(harness.conninfo(host=pg.host, port=pg.port, user="verifier_check",
                                                 password="verifier-check", dbname=harness.DATABASE))
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(harness.conninfo(host=pg.host, port=pg.port, user="verifier_check",
                                              password="wrong", dbname=harness.DATABASE))
    finally:
        pg.psql("DROP ROLE verifier_check")


@pytest.mark.parametrize("user,password,method", [
    (harness.SERVICE_USER, harness.SERVICE_PASSWORD, 10),
    (harness.MD5_USER, harness.MD5_PASSWORD, 5),
    (harness.CLEAR_USER, harness.CLEAR_PASSWORD, 3),
])
def test_raw_client_authenticates_against_postgresql(pg, user, password, method):
    with harness.RawConn(pg.host, pg.port) as c:
        r = c.startup({"user": user, "database": harness.DATABASE}, password)
        assert r.ok, r.error
        assert r.auth_methods[0] == method
        assert c.simple_query("SELECT session_user")["rows"] == [[user]]


def test_raw_client_reads_postgresql_auth_failure(pg):
    with harness.RawConn(pg.host, pg.port) as c:
        r = c.startup({"user": "app", "database": harness.DATABASE}, "wrong")
        assert r.error["C"] == "28P01"


def test_tls_only_role_is_refused_without_tls(pg):
    with pytest.raises(psycopg2.OperationalError, match="pg_hba.conf rejects"):
        psycopg2.connect(harness.conninfo(host=pg.host, port=pg.port, user=harness.TLS_ONLY_USER,
                                          password=harness.TLS_ONLY_PASSWORD, dbname=harness.DATABASE,
                                          sslmode="disable"))
    conn = psycopg2.connect(harness.conninfo(host=pg.host, port=pg.port, user=harness.TLS_ONLY_USER,
                                             password=harness.TLS_ONLY_PASSWORD, dbname=harness.DATABASE,
                                             sslmode="verify-full", sslrootcert=pg.certs.ca_cert))
    conn.close()
