"""The front door under attack: log injection, limits before authentication,
connection limits per principal and tenant, principals that reload on SIGHUP,
and what the client learns about the backend's account.

Flood tests are bounded (a few hundred loopback connections at most) and sized
for a 2-core machine.
"""

import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import time

import psycopg2
import pytest

import harness

APP_PW = harness.PRINCIPALS["app"]["password"]
LIMITED_PW = harness.PRINCIPALS["limited"]["password"]
ADMIN_PW = harness.PRINCIPALS["admin"]["password"]

# The forged line of the issue: a genuine-looking "bypass session started".
FORGED = ("evil\n2026-12-03T13:43:00.000000Z info session=99 peer=127.0.0.1:1 principal=admin "
          "tenant=globex msg=\"session started (bypass principal: statements are not rewritten)\"")
FORGED_TS = "2026-12-03T13:43:00.000000Z"

# --------------------------------------------------------------------------
# A strict reader of the text log: `<time> <level> key=value ... msg=value`.

_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (trace|debug|info|warning|error|critical) (.*)$")
_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^ "=\\]+)(?: |$)')
_UNESCAPE = re.compile(r'\\(x[0-9a-f]{2}|[nrt"\\])')


def _unescape(value: str) -> bytes:
    if value.startswith('"'):
        value = value[1:-1]
    out = bytearray()
    pos = 0
    for m in _UNESCAPE.finditer(value):
        out += value[pos:m.start()].encode()
        e = m.group(1)
        out += {"n": b"\n", "r": b"\r", "t": b"\t", '"': b'"', "\\": b"\\"}.get(e) or bytes([int(e[1:], 16)])
        pos = m.end()
    out += value[pos:].encode()
    return bytes(out)


def parse_text_log(text: str) -> list[dict]:
    """Every line as {field: raw bytes}; fails the test on a line that is not well formed."""
    lines = []
    for line in text.splitlines():
        m = _LINE.match(line)
        assert m, f"log line not in the tenantgate format: {line!r}"
        rest, fields, pos = m.group(3), {"time": m.group(1), "level": m.group(2)}, 0
        while pos < len(rest):
            f = _FIELD.match(rest, pos)
            assert f and f.start() == pos, f"malformed field at {pos} in {line!r}"
            assert f.group(1) not in fields, f"field {f.group(1)} twice in {line!r}"
            fields[f.group(1)] = _unescape(f.group(2))
            pos = f.end()
        assert "msg" in fields, f"no msg field: {line!r}"
        assert list(fields)[-1] == "msg", f"msg is not the last field: {line!r}"
        lines.append(fields)
    return lines


def assert_no_forgery(proxy, evil: str) -> list[dict]:
    raw = proxy.log_path.read_bytes()
    # No terminal control byte reaches the file: ESC, BEL, C1 CSI (as UTF-8), DEL.
    for byte in (b"\x1b", b"\x07", b"\xc2\x9b", b"\x7f", b"\x00"):
        assert byte not in raw, f"{byte!r} written to the log"
    text = raw.decode()  # valid UTF-8
    lines = parse_text_log(text)
    assert not any(line.startswith(FORGED_TS) for line in text.splitlines()), "forged line in the log"
    for fields in lines:
        if fields.get("principal") == b"admin":
            raise AssertionError(f"a line claims principal=admin: {fields}")
    # The client's value is there, whole, inside one field or message.
    assert any(evil.encode() in v for f in lines for v in f.values() if isinstance(v, bytes)), \
        "the client's value is not in the log at all"
    return lines


def startup_raw(proxy, params: dict, password: str | None):
    with proxy.raw() as c:
        return c.startup(params, password)


def wait_log(proxy, needle: str, timeout: float = 5) -> None:
    harness.wait_until(lambda: needle in proxy.log(), timeout, f"{needle!r} in the log")


# --------------------------------------------------------------------------
# 1. Log lines that cannot be forged.


def test_forged_line_in_startup_user(proxy):
    r = startup_raw(proxy, {"user": FORGED, "database": harness.DATABASE,
                            "options": "-c tenantgate.tenant=acme"}, "x")
    assert r.error and r.error["C"] == "28000", r.error
    wait_log(proxy, "unknown principal")
    lines = assert_no_forgery(proxy, FORGED)
    refused = [f for f in lines if b"unknown principal" in f["msg"]]
    assert refused and refused[0]["principal"] == FORGED.encode(), refused


def test_forged_line_in_claimed_tenant(proxy):
    # A real principal with its right password, claiming a forged tenant.
    params = {"user": "limited", "database": harness.DATABASE, "tenantgate.tenant": FORGED}
    r = startup_raw(proxy, params, LIMITED_PW)
    assert r.error and r.error["C"] == "28000", r.error
    wait_log(proxy, "may not claim tenant")
    lines = assert_no_forgery(proxy, FORGED)
    refused = [f for f in lines if b"may not claim tenant" in f["msg"]]
    assert refused and refused[0]["tenant"] == FORGED.encode(), refused


@pytest.mark.parametrize("log_values", [False, True], ids=["fingerprint", "log_statement_values"])
def test_forged_line_in_quoted_identifier_of_refused_statement(start_proxy, log_values):
    proxy = start_proxy({"log": {"log_statement_values": log_values}}, start=False)
    (proxy.dir / "policy.toml").write_text('default_action = "deny"\n')
    proxy.start()
    # Identifiers are cut at 63 bytes: a short forged line.
    ident = f"x\n{FORGED_TS} info principal=admin msg=forged"
    with proxy.raw() as c:
        assert c.startup(proxy.startup_params(), APP_PW).ok
        q = c.simple_query(f'SELECT * FROM "{ident}"')
        assert q["errors"] and q["errors"][0]["C"] == "42501", q
    wait_log(proxy, "refused")
    lines = assert_no_forgery(proxy, ident)
    refused = [f for f in lines if f["msg"].startswith(b"refused")]
    assert len(refused) == 1 and ident.encode() in refused[0]["msg"], refused


def test_terminal_escapes_are_escaped(proxy):
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u009b1m\u202eevil\x7f"
    r = startup_raw(proxy, {"user": evil, "database": harness.DATABASE}, "x")
    assert r.error and r.error["C"] == "28000", r.error
    wait_log(proxy, "unknown principal")
    lines = assert_no_forgery(proxy, evil)
    refused = [f for f in lines if b"unknown principal" in f["msg"]]
    assert refused[0]["principal"] == evil.encode()
    assert "\\x1b]0;owned\\x07" in proxy.log()


def test_invalid_utf8_in_startup_user(proxy):
    with proxy.raw() as c:
        body = struct.pack("!I", harness.PROTOCOL_3) + b"user\0bad\xff\xfe\nname\0database\0appdb\0\0"
        c.send(struct.pack("!I", len(body) + 4) + body)
        msgs, _ = c.read_until_closed(5)
    assert any(k == b"E" for k, _ in msgs)
    wait_log(proxy, "unknown principal")
    raw = proxy.log_path.read_bytes()
    assert b"\xff" not in raw and b"bad\\xff\\xfe\\nname" in raw
    lines = parse_text_log(raw.decode())
    assert any(f.get("principal") == b"bad\xff\xfe\nname" for f in lines)


def test_json_log_stays_valid(start_proxy):
    proxy = start_proxy({"log": {"format": "json"}})
    r = startup_raw(proxy, {"user": FORGED + "\x1b[2J\u009b", "database": harness.DATABASE}, "x")
    assert r.error and r.error["C"] == "28000"
    # Bytes that are not UTF-8: JSON text must stay UTF-8.
    with proxy.raw() as c:
        body = struct.pack("!I", harness.PROTOCOL_3) + b"user\0bad\xff\xc3name\0database\0appdb\0\0"
        c.send(struct.pack("!I", len(body) + 4) + body)
        c.read_until_closed(5)
    harness.wait_until(lambda: proxy.log().count("unknown principal") >= 2, 5, "two refusals in the log")
    raw = proxy.log_path.read_bytes()
    assert b"\x1b" not in raw and b"\xc2\x9b" not in raw
    records = [json.loads(line) for line in raw.decode().splitlines()]  # UTF-8, one object a line
    refused = [r for r in records if "unknown principal" in r["msg"]]
    assert refused[0]["principal"] == FORGED + "\x1b[2J\u009b", refused
    assert refused[1]["principal"] == "bad\ufffd\ufffdname", refused
    assert not any(r.get("principal") == "admin" for r in records)


# --------------------------------------------------------------------------
# 2. Limits before authentication.


def open_idle(proxy, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection((proxy.host, proxy.port), timeout=5)
        socks.append(s)
    return socks


STARTUP = harness.startup_packet({"user": "app", "database": harness.DATABASE})


def refusal_of(sock: socket.socket, timeout: float, send_startup: bool = True) -> dict | None:
    """The ErrorResponse the proxy answers a StartupMessage with (or, with send_startup=False,
    sends unasked), or None when it sent nothing within timeout."""
    sock.settimeout(timeout)
    if send_startup:
        try:
            sock.sendall(STARTUP)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed at once: the error is still there to read
    try:
        data = b""
        while len(data) < 5 or len(data) < 1 + struct.unpack("!I", data[1:5])[0]:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        return {"reset": True}
    if not data:
        return {"closed": True}
    assert data[:1] == b"E", data
    return harness.parse_error_fields(data[5:])


def close_all(socks) -> None:
    for s in socks:
        s.close()


def test_max_client_connections_refuses_and_keeps_accepting(start_proxy):
    proxy = start_proxy({"limits": {"max_client_connections": 50, "max_startups": 1000}})
    admitted = open_idle(proxy, 50)
    try:
        time.sleep(0.3)
        flood = open_idle(proxy, 250)
        try:
            refusals = [refusal_of(s, 3) for s in flood]
            assert all(r and r.get("C") == "53300" for r in refusals), refusals[:3]
            assert "max_client_connections = 50" in refusals[0]["M"]
            assert refusals[0]["S"] == "FATAL"
            # What a libpq client shows.
            with pytest.raises(psycopg2.OperationalError) as e:
                psycopg2.connect(proxy.dsn())
            assert "too many clients" in str(e.value)
        finally:
            close_all(flood)
        # None of the first 50 was refused: they are still waiting for a start-up packet.
        assert all(refusal_of(s, 0.05, send_startup=False) is None for s in admitted[:5])
    finally:
        close_all(admitted)
    # Freed slots are reused: the listener kept accepting.
    harness.wait_until(lambda: _connects(proxy), 5, "a session after the flood")
    # The refusals were logged, but not once per connection.
    refused_lines = [x for x in proxy.log().splitlines() if "refused a connection" in x]
    assert 1 <= len(refused_lines) <= 3, refused_lines


@pytest.mark.parametrize("sslmode", ["disable", "prefer", "require"])
def test_refused_libpq_client_sees_the_reason_with_tls(start_proxy, tmp_path, sslmode):
    # libpq does not show an error sent in reply to its SSLRequest: the refusal
    # comes after the TLS negotiation, as PostgreSQL's "too many clients" does.
    certs = harness.make_certs(tmp_path / "certs", "proxy")
    proxy = start_proxy({"limits": {"max_client_connections": 2},
                         "listen": {"tls": "allow", "tls_cert": str(certs.server_cert),
                                    "tls_key": str(certs.server_key)}})
    time.sleep(0.3)  # the start-up probe's connection is gone
    held = open_idle(proxy, 2)
    try:
        time.sleep(0.3)
        with pytest.raises(psycopg2.OperationalError) as e:
            psycopg2.connect(proxy.dsn(sslmode=sslmode))
        assert "too many clients already (limits.max_client_connections = 2)" in str(e.value), str(e.value)
    finally:
        close_all(held)


def test_refusal_without_a_startup_packet_still_says_why(start_proxy):
    proxy = start_proxy({"limits": {"max_client_connections": 1}})
    time.sleep(0.3)
    held = open_idle(proxy, 1)
    try:
        time.sleep(0.3)
        silent = socket.create_connection((proxy.host, proxy.port), timeout=5)
        start = time.monotonic()
        r = refusal_of(silent, 5, send_startup=False)
        silent.close()
        assert r and r["C"] == "53300", r
        assert time.monotonic() - start < 4
    finally:
        close_all(held)


def _connects(proxy) -> bool:
    try:
        conn = psycopg2.connect(proxy.dsn())
    except psycopg2.OperationalError:
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        ok = cur.fetchone() == (1,)
    conn.close()
    return ok


def test_max_startups_counts_only_unauthenticated(start_proxy):
    proxy = start_proxy({"limits": {"max_startups": 10}})
    sessions = [psycopg2.connect(proxy.dsn()) for _ in range(5)]  # authenticated: not counted
    idle = open_idle(proxy, 10)
    try:
        time.sleep(0.3)
        extra = socket.create_connection((proxy.host, proxy.port), timeout=5)
        r = refusal_of(extra, 3)
        extra.close()
        assert r and r["C"] == "53300" and "max_startups = 10" in r["M"], r
        for conn in sessions:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        close_all(idle)
        for conn in sessions:
            conn.close()
    harness.wait_until(lambda: _connects(proxy), 5, "a session once the idle start-ups closed")


class RawConnFrom(harness.RawConn):
    """A RawConn from a chosen loopback source address."""

    def __init__(self, source: str, host: str, port: int, timeout: float = harness.DEFAULT_TIMEOUT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
        self.sock.settimeout(timeout)
        self.buf = b""


def test_max_startups_per_source(start_proxy):
    proxy = start_proxy({"limits": {"max_startups_per_source": 3}})
    idle = open_idle(proxy, 3)
    try:
        time.sleep(0.2)
        extra = socket.create_connection((proxy.host, proxy.port), timeout=5)
        r = refusal_of(extra, 3)
        extra.close()
        assert r and r["C"] == "53300" and "max_startups_per_source = 3" in r["M"], r
        # A client from another address is not affected.
        with RawConnFrom("127.0.0.2", proxy.host, proxy.port) as c:
            assert c.startup(proxy.startup_params(), APP_PW).ok
    finally:
        close_all(idle)
    harness.wait_until(lambda: _connects(proxy), 5, "a session once the idle start-ups closed")


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_oversized_sasl_message_before_authentication(proxy):
    """The issue's reproduction: 8 connections each announcing and sending 59 MiB of SASL response."""
    size = 59 << 20
    chunk = b"x" * (1 << 20)
    before = rss_kb(proxy.proc.pid)
    peak = before
    results = []
    for _ in range(8):
        with proxy.raw(timeout=10) as c:
            c.send(harness.startup_packet(proxy.startup_params()))
            kind, _ = c.recv_msg()
            assert kind == b"R"
            c.send(b"p" + struct.pack("!I", size + 4))
            sent = 0
            try:
                while sent < size:
                    c.sock.sendall(chunk)
                    sent += len(chunk)
                    peak = max(peak, rss_kb(proxy.proc.pid))
            except (BrokenPipeError, ConnectionResetError):
                pass
            msgs, closed = c.read_until_closed(5)
            results.append((sent, msgs, closed))
    peak = max(peak, rss_kb(proxy.proc.pid))
    for sent, msgs, closed in results:
        errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
        assert closed
        # The error may be lost to a reset when the client is still sending; when it arrives it says why.
        for e in errors:
            assert e["C"] == "08P01" and "maximum message size" in e["M"], e
        assert sent < size, "the proxy read a whole 59 MiB message before authentication"
    growth_mb = (peak - before) / 1024
    assert growth_mb < 32, f"RSS grew by {growth_mb:.0f} MB"
    assert _connects(proxy)


def test_oversized_password_in_passthrough(start_proxy):
    proxy = start_proxy({"auth": {"mode": "passthrough"}}, backend_password=None)
    with proxy.raw() as c:
        c.send(harness.startup_packet(proxy.startup_params()))
        kind, payload = c.recv_msg()
        assert kind == b"R"
        c.send(b"p" + struct.pack("!I", 100_000 + 4) + b"x" * 1000)
        msgs, closed = c.read_until_closed(5)
    errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
    assert closed and errors and errors[0]["C"] == "08P01", msgs


def test_passthrough_backend_connections_bounded_by_max_startups(start_proxy, pg):
    # In passthrough mode the backend chooses and runs the challenge, so the
    # backend connection is opened before the client answers it; max_startups
    # bounds how many such connections clients that never answer can hold.
    proxy = start_proxy({"auth": {"mode": "passthrough"}, "limits": {"max_startups": 5}},
                        backend_password=None)
    conns = []
    try:
        for _ in range(5):
            c = proxy.raw()
            c.send(harness.startup_packet(proxy.startup_params(application_name="tg-never-answers")))
            assert c.recv_msg()[0] == b"R"  # the backend's challenge, relayed
            conns.append(c)
        extra = socket.create_connection((proxy.host, proxy.port), timeout=5)
        r = refusal_of(extra, 3)
        extra.close()
        assert r and r["C"] == "53300" and "max_startups = 5" in r["M"], r
        waiting = int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                              "AND usename IS NULL", db="postgres") or 0)
        assert waiting <= 5, waiting
    finally:
        for c in conns:
            c.close()


def test_descriptor_exhaustion_backs_off_and_recovers(proxy):
    pid = proxy.proc.pid
    base = len(os.listdir(f"/proc/{pid}/fd"))
    limit = base + 20
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))

    def cpu_seconds() -> float:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    idle = open_idle(proxy, 60)  # far more than the proxy has descriptors for
    try:
        wait_log(proxy, "Too many open files")
        cpu_before = cpu_seconds()
        time.sleep(2)
        cpu = cpu_seconds() - cpu_before
        assert cpu < 0.5, f"the proxy used {cpu:.2f} s of CPU in 2 s while out of descriptors"
        failures = [x for x in proxy.log().splitlines() if "accept failed" in x]
        assert 1 <= len(failures) <= 3, failures[:5]
        assert "retrying in" in failures[0]
    finally:
        close_all(idle)
    # Descriptors came back: new clients are served again.
    harness.wait_until(lambda: _connects(proxy), 10, "a session after descriptors came back")
    assert proxy.proc.poll() is None


def test_descriptor_limit_raised_at_start(pg, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, hard // 2, 1024)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # inherited by the proxy
    try:
        p = harness.Proxy(pg, tmp_path / "p").start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert f"from {low} to {hard}" in p.log()
        assert resource.prlimit(p.proc.pid, resource.RLIMIT_NOFILE)[0] == hard
    finally:
        p.stop()


def start_with_descriptor_limit(proxy, limit: int):
    """Starts the proxy with RLIMIT_NOFILE = limit (soft and hard) set in the child only."""
    real_popen = subprocess.Popen

    def popen(*args, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        return real_popen(*args, **kw)

    subprocess.Popen = popen
    try:
        return proxy.start()
    finally:
        subprocess.Popen = real_popen


def test_client_limit_fitted_to_a_low_descriptor_limit(pg, tmp_path):
    # Started with at most 300 descriptors, the proxy lowers max_client_connections
    # to what they hold, so that a flood is refused with 53300 instead of
    # exhausting descriptors (which leaves every new client in the backlog).
    p = start_with_descriptor_limit(harness.Proxy(pg, tmp_path / "p"), 300)
    try:
        expected = (300 - 128) // 2
        assert f"limits.max_client_connections lowered from 10000 to {expected}" in p.log()
        idle = open_idle(p, expected)
        try:
            time.sleep(0.3)
            flood = open_idle(p, 150)
            try:
                refusals = [refusal_of(s, 3) for s in flood]
                assert all(r and r.get("C") == "53300" for r in refusals), refusals[:3]
                assert f"max_client_connections = {expected}" in refusals[0]["M"]
            finally:
                close_all(flood)
        finally:
            close_all(idle)
        assert "accept failed" not in p.log()
        harness.wait_until(lambda: _connects(p), 5, "a session after the flood")
    finally:
        p.stop()


# --------------------------------------------------------------------------
# 3. Connection limits per principal and per tenant.


def principals_with(**changes) -> dict:
    out = {k: dict(v) for k, v in harness.PRINCIPALS.items()}
    for name, change in changes.items():
        if change is None:
            out.pop(name)
        else:
            out[name].update(change)
    return out


def entries(auth_mode: str, principals: dict, max_connections: dict | None = None) -> list[dict]:
    es = harness.principal_entries(auth_mode, principals)
    for e in es:
        if max_connections and e["name"] in max_connections:
            e["max_connections"] = max_connections[e["name"]]
    return es


@pytest.mark.parametrize("mode", ["scram", "passthrough"])
def test_principal_max_connections(start_proxy, mode):
    proxy = start_proxy({"auth": {"mode": mode},
                         "principals": entries(mode, harness.PRINCIPALS, {"limited": 3})},
                        backend_password=None if mode == "passthrough" else harness.SERVICE_PASSWORD)
    held = [psycopg2.connect(proxy.dsn(user="limited")) for _ in range(3)]
    try:
        with proxy.raw() as c:
            r = c.startup(proxy.startup_params(user="limited"), LIMITED_PW)
        assert r.error and r.error["C"] == "53300", r.error
        assert 'principal "limited" (max_connections = 3)' in r.error["M"], r.error
        with pytest.raises(psycopg2.OperationalError) as e:
            psycopg2.connect(proxy.dsn(user="limited"))
        assert "max_connections = 3" in str(e.value)
        # Other principals, bypass included, are not affected.
        assert _connects(proxy)
        conn = psycopg2.connect(proxy.dsn(user="admin"))
        conn.close()
        # A wrong password does not learn about the limit: authentication comes first.
        with proxy.raw() as c:
            r = c.startup(proxy.startup_params(user="limited"), "wrong")
        assert r.error and r.error["C"] == "28P01", r.error
    finally:
        held.pop().close()
    conn = psycopg2.connect(proxy.dsn(user="limited"))  # a slot came free
    conn.close()
    for h in held:
        h.close()


def test_max_connections_per_tenant(start_proxy):
    proxy = start_proxy({"limits": {"max_connections_per_tenant": 2}})
    held = [psycopg2.connect(proxy.dsn(user="limited", tenant="acme")),
            psycopg2.connect(proxy.dsn(user="app", tenant="acme"))]
    try:
        with proxy.raw() as c:
            r = c.startup(proxy.startup_params(user="app", tenant="acme"), APP_PW)
        assert r.error and r.error["C"] == "53300", r.error
        assert 'tenant "acme" (limits.max_connections_per_tenant = 2)' in r.error["M"], r.error
        # Another tenant, and a bypass principal, still get in.
        psycopg2.connect(proxy.dsn(user="app", tenant="globex")).close()
        psycopg2.connect(proxy.dsn(user="admin", tenant="acme")).close()
    finally:
        held.pop().close()
    psycopg2.connect(proxy.dsn(user="app", tenant="acme")).close()
    for h in held:
        h.close()


# --------------------------------------------------------------------------
# 4. Principals reload on SIGHUP.


def rewrite_config(proxy, principals: dict | None = None, *, raw_text: str | None = None,
                   auth_extra: dict | None = None) -> None:
    if raw_text is not None:
        proxy.config_path.write_text(raw_text)
        return
    config = dict(proxy.config)
    config["auth"] = dict(config["auth"], **(auth_extra or {}))
    config["principals"] = harness.principal_entries(config["auth"]["mode"], principals)
    ordered = {k: v for k, v in config.items() if k != "principals"}
    ordered["principals"] = config["principals"]
    proxy.config_path.write_text(harness.toml_dumps(ordered))


def reload(proxy, needle: str) -> None:
    count = proxy.log().count(needle)
    proxy.signal(signal.SIGHUP)
    harness.wait_until(lambda: proxy.log().count(needle) > count, 5, f"{needle!r} after SIGHUP")


def test_removed_principal_is_refused_and_its_sessions_end(start_proxy):
    proxy = start_proxy()
    victim = proxy.raw()
    assert victim.startup(proxy.startup_params(user="limited"), LIMITED_PW).ok
    survivor = proxy.raw()
    assert survivor.startup(proxy.startup_params(user="app"), APP_PW).ok
    try:
        rewrite_config(proxy, principals_with(limited=None))
        reload(proxy, "principals reloaded")
        msgs, closed = victim.read_until_closed(5)
        assert closed, "the removed principal's session is still open"
        errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
        assert errors and errors[0]["C"] == "57P01", msgs
        assert 'principal "limited" was removed' in errors[0]["M"], errors
        # New connections: refused for the removed principal, fine for the others
        # (whose verifiers changed: new salts, same passwords).
        r = startup_raw(proxy, proxy.startup_params(user="limited"), LIMITED_PW)
        assert r.error and r.error["C"] == "28000" and "unknown principal" in r.error["M"], r.error
        assert survivor.simple_query("SELECT 1")["rows"] == [["1"]]
        assert _connects(proxy)
    finally:
        victim.close()
        survivor.close()


def test_narrowed_tenants_end_only_the_sessions_they_no_longer_cover(start_proxy):
    proxy = start_proxy()
    acme = proxy.raw()
    assert acme.startup(proxy.startup_params(user="limited", tenant="acme"), LIMITED_PW).ok
    globex = proxy.raw()
    assert globex.startup(proxy.startup_params(user="limited", tenant="globex"), LIMITED_PW).ok
    try:
        rewrite_config(proxy, principals_with(limited={"tenants": ["acme"]}))
        reload(proxy, "principals reloaded")
        msgs, closed = globex.read_until_closed(5)
        assert closed
        errors = [harness.parse_error_fields(p) for k, p in msgs if k == b"E"]
        assert errors and errors[0]["C"] == "57P01" and 'tenant "globex"' in errors[0]["M"], errors
        assert acme.simple_query("SELECT 1")["rows"] == [["1"]]
        r = startup_raw(proxy, proxy.startup_params(user="limited", tenant="globex"), LIMITED_PW)
        assert r.error and r.error["C"] == "28000", r.error
    finally:
        acme.close()
        globex.close()


def test_revoked_sessions_finish_when_configured(start_proxy):
    proxy = start_proxy({"auth": {"mode": "scram", "revoked_sessions": "finish"}})
    victim = proxy.raw()
    assert victim.startup(proxy.startup_params(user="limited"), LIMITED_PW).ok
    try:
        rewrite_config(proxy, principals_with(limited=None))
        reload(proxy, "principals reloaded")
        wait_log(proxy, "the session goes on")
        assert victim.simple_query("SELECT 1")["rows"] == [["1"]]
        r = startup_raw(proxy, proxy.startup_params(user="limited"), LIMITED_PW)
        assert r.error and r.error["C"] == "28000", r.error
    finally:
        victim.close()


def test_invalid_config_on_reload_keeps_the_principals(start_proxy):
    proxy = start_proxy()
    conn = proxy.raw()
    assert conn.startup(proxy.startup_params(user="limited"), LIMITED_PW).ok
    try:
        rewrite_config(proxy, raw_text="[listen]\nport = \"not a port\"\n")
        reload(proxy, "principals reload failed")
        assert conn.simple_query("SELECT 1")["rows"] == [["1"]]
        assert startup_raw(proxy, proxy.startup_params(user="limited"), LIMITED_PW).ok
        # A verifier that does not parse is refused too.
        rewrite_config(proxy, principals_with())
        text = proxy.config_path.read_text()
        proxy.config_path.write_text(re.sub(r'scram = "SCRAM-SHA-256\$4096:', 'scram = "SCRAM-SHA-256$0:', text, count=1))
        reload(proxy, "principals reload failed")
        assert startup_raw(proxy, proxy.startup_params(user="app"), APP_PW).ok
        assert proxy.proc.poll() is None
    finally:
        conn.close()


# --------------------------------------------------------------------------
# 5. What the client learns about the backend's account.


@pytest.mark.parametrize("mode", ["scram", "passthrough"])
def test_parameter_status_shows_the_principal_not_the_backend_login(start_proxy, mode):
    proxy = start_proxy({"auth": {"mode": mode}},
                        backend_password=None if mode == "passthrough" else harness.SERVICE_PASSWORD)
    for user, pw in (("app", APP_PW), ("admin", ADMIN_PW)):
        r = startup_raw(proxy, proxy.startup_params(user=user), pw)
        assert r.ok, r.error
        assert r.parameters.get("session_authorization") == user, r.parameters
        assert r.parameters.get("is_superuser") == "off", r.parameters
        assert r.parameters.get("server_version", "").startswith("15"), r.parameters
