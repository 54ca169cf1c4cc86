"""Processes and protocol helpers for the tenantgate integration tests.

Everything here is independent of the proxy's own code: SCRAM verifiers and the
SCRAM client are computed from RFC 5802/7677 with hashlib and hmac, the raw wire
client builds and parses PostgreSQL protocol 3.0 messages by hand, and the
PostgreSQL server, certificates and proxy processes are started and removed by
the tests themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO_ROOT = Path(__file__).resolve().parents[2]
PG_LOCAL = REPO_ROOT / "scripts" / "pg_local.sh"  # the one PostgreSQL launcher
DEFAULT_TIMEOUT = 10.0

# Backend roles created on the test server. Passwords are fixed test values.
SERVICE_USER = "tenantgate"
SERVICE_PASSWORD = "svc-secret"
MD5_USER = "svc_md5"
MD5_PASSWORD = "md5-secret"
CLEAR_USER = "svc_clear"
CLEAR_PASSWORD = "clear-secret"
TLS_ONLY_USER = "svc_tls"  # pg_hba allows it only over hostssl
TLS_ONLY_PASSWORD = "tls-secret"
BACKEND_PASSWORD_ENV = "TG_IT_BACKEND_PASSWORD"

# Principals. Each also exists as a backend role with the same password so that
# passthrough mode (the backend authenticates the client's own role) works.
# "app" may claim any tenant; "limited" only two; "admin" bypasses rewriting
# and is used by tests that write, run DDL/DO or LISTEN, which later phases
# refuse for non-bypass principals.
PRINCIPALS = {
    "app": {"password": "app-secret", "tenants": ["*"], "bypass": False},
    "limited": {"password": "limited-secret", "tenants": ["acme", "globex"], "bypass": False},
    "admin": {"password": "admin-secret", "tenants": ["*"], "bypass": True},
}
# A backend role that is not a principal in the config.
STRANGER = "stranger"
STRANGER_PASSWORD = "stranger-secret"

DATABASE = "appdb"


_pinned_bin: Path | None = None


def built_tenantgate_bin() -> Path:
    return Path(os.environ.get("TENANTGATE_BIN", REPO_ROOT / "build" / "proxy" / "tenantgate"))


def pin_tenantgate_bin(directory: Path) -> None:
    """Copies the binary so that a rebuild during the run cannot change or remove it mid-suite."""
    global _pinned_bin
    src = built_tenantgate_bin()
    if src.exists():
        dst = directory / "tenantgate"
        shutil.copy2(src, dst)
        _pinned_bin = dst


def tenantgate_bin() -> Path:
    return _pinned_bin or built_tenantgate_bin()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """Polls predicate until it returns a truthy value; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# SCRAM-SHA-256 (RFC 5802, RFC 7677), PostgreSQL verifier format.


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server_key = _hmac(salted, b"Server Key")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --------------------------------------------------------------------------
# Certificates, made with the openssl CLI at test time.


@dataclass
class CertSet:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path, name: str = "server") -> CertSet:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.crt"
    ext = directory / f"{name}.ext"
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
    _openssl("req", "-x509", *ec, "-nodes", "-days", "2", "-subj",
             f"/CN=tenantgate-it {name} CA", "-keyout", str(ca_key), "-out", str(ca_cert), cwd=directory)
    _openssl("req", *ec, "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
             "-out", str(csr), cwd=directory)
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert), cwd=directory)
    os.chmod(key, 0o600)
    return CertSet(ca_cert, ca_key, cert, key)


# --------------------------------------------------------------------------
# The PostgreSQL 15 test server.


class PgServer:
    """A throwaway PostgreSQL 15 cluster run as the postgres system user."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tg-it-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.started = False
        self.log_path = self.dir / "postgres.log"
        self.certs: CertSet | None = None

    def start(self) -> None:
        """Starts the server through scripts/pg_local.sh, the project's one launcher."""
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        self.certs = make_certs(self.dir / "certs", "backend")
        for p in (self.dir / "certs").iterdir():
            os.chown(p, pw.pw_uid, pw.pw_gid)
        hba = self.dir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            f"host all {SERVICE_USER} 127.0.0.1/32 scram-sha-256\n"
            f"host all {MD5_USER} 127.0.0.1/32 md5\n"
            f"host all {CLEAR_USER} 127.0.0.1/32 password\n"
            f"hostssl all {TLS_ONLY_USER} 127.0.0.1/32 scram-sha-256\n"
            f"hostnossl all {TLS_ONLY_USER} 127.0.0.1/32 reject\n"
            "host all postgres 127.0.0.1/32 reject\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        settings = ["max_connections=400", "ssl=on", f"ssl_cert_file={self.certs.server_cert}",
                    f"ssl_key_file={self.certs.server_key}", "shared_buffers=32MB",
                    "log_connections=on"]
        args = [arg for s in settings for arg in ("-c", s)]
        # Another process may take the free port before the server binds it.
        for attempt in range(5):
            r = subprocess.run([str(PG_LOCAL), "start", str(self.dir), str(self.port), "--hba", str(hba), *args],
                               capture_output=True, text=True, timeout=180)
            if r.returncode == 0:
                break
            if attempt == 4:
                raise RuntimeError(f"PostgreSQL did not start: {r.stderr[-3000:]}")
            self.port = free_port()
        self.started = True
        self._bootstrap()

    def _bootstrap(self) -> None:
        self.psql(f"CREATE DATABASE {DATABASE}", db="postgres")
        roles = [
            f"CREATE ROLE {SERVICE_USER} LOGIN PASSWORD '{SERVICE_PASSWORD}'",
            f"SET password_encryption = 'md5'; CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}'",
            f"CREATE ROLE {CLEAR_USER} LOGIN PASSWORD '{CLEAR_PASSWORD}'",
            f"CREATE ROLE {TLS_ONLY_USER} LOGIN PASSWORD '{TLS_ONLY_PASSWORD}'",
            f"CREATE ROLE {STRANGER} LOGIN PASSWORD '{STRANGER_PASSWORD}'",
        ] + [f"CREATE ROLE {n} LOGIN PASSWORD '{p['password']}'" for n, p in PRINCIPALS.items()]
        for sql in roles:
            self.psql(sql, db="postgres")
        self.psql(
            "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g;"
            "GRANT ALL ON SCHEMA public TO PUBLIC;"
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;")

    def psql(self, sql: str, db: str = DATABASE) -> str:
        """Runs SQL as the postgres superuser over the Unix socket; returns unaligned output."""
        r = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {sql!r}: {r.stderr}")
        return r.stdout.strip()

    def admin_dsn(self, db: str = DATABASE) -> str:
        return f"host={self.dir} port={self.port} user=postgres dbname={db}"

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.started:
            subprocess.run([str(PG_LOCAL), "stop", str(self.dir)], capture_output=True, timeout=120)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# A tiny TOML writer: nested dicts become tables, a list of dicts an array of
# tables. Enough for tenantgate.toml, written here so tests can state exactly
# which lines a config has.


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def toml_dumps(doc: dict) -> str:
    lines: list[str] = []
    for section, body in doc.items():
        if isinstance(body, list):
            for item in body:
                lines.append(f"[[{section}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
                lines.append("")
        else:
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
            lines.append("")
    return "\n".join(lines)


def merge(base: dict, override: dict | None) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def principal_entries(auth_mode: str, principals: dict = PRINCIPALS) -> list[dict]:
    entries = []
    for name, p in principals.items():
        e: dict[str, Any] = {"name": name}
        if auth_mode == "scram":
            e["scram"] = scram_verifier(p["password"])
        e["tenants"] = p["tenants"]
        e["bypass"] = p["bypass"]
        entries.append(e)
    return entries


# --------------------------------------------------------------------------
# The proxy process.


def conninfo(**kw: Any) -> str:
    """libpq key=value conninfo with quoting."""
    def q(v: Any) -> str:
        s = str(v)
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join(f"{k}={q(v)}" for k, v in kw.items() if v is not None)


def identity_options(tenant: str | None = "acme", user: str | None = "42",
                     tenant_param: str = "tenantgate.tenant", user_param: str = "tenantgate.user") -> str:
    parts = []
    if tenant is not None:
        parts.append(f"-c {tenant_param}={tenant}")
    if user is not None:
        parts.append(f"-c {user_param}={user}")
    return " ".join(parts)


class Proxy:
    """A running tenantgate with its config, log and connection-string builders."""

    def __init__(self, pg: PgServer, workdir: Path, overrides: dict | None = None, *,
                 backend_password: str | None = SERVICE_PASSWORD, extra_env: dict | None = None) -> None:
        self.pg = pg
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        overrides = dict(overrides or {})
        auth_mode = overrides.get("auth", {}).get("mode", "scram")
        principals = overrides.pop("principals", None)
        (self.dir / "policy.toml").write_text('default_action = "shared"\n')
        base = {
            "listen": {"host": self.host, "port": self.port, "tls": "disable", "threads": 2},
            "backend": {"host": pg.host, "port": pg.port, "user": SERVICE_USER,
                        "password_env": BACKEND_PASSWORD_ENV, "tls": "disable",
                        "dialect": "postgresql"},
            "auth": {"mode": auth_mode},
            "identity": {"tenant_param": "tenantgate.tenant", "user_param": "tenantgate.user",
                         "tenant_type": "text", "user_type": "int"},
            "policy": {"file": "policy.toml"},
            "limits": {"startup_timeout_ms": 10000, "shutdown_grace_ms": 2000},
            "log": {"level": "debug", "format": "text"},
        }
        self.config = merge(base, overrides)
        self.config["principals"] = principals if principals is not None else principal_entries(auth_mode)
        # Keep [[principals]] last so that following tables are not swallowed by it.
        ordered = {k: v for k, v in self.config.items() if k != "principals"}
        ordered["principals"] = self.config["principals"]
        self.config_path = self.dir / "tenantgate.toml"
        self.config_path.write_text(toml_dumps(ordered))
        self.log_path = self.dir / "tenantgate.log"
        self.env = dict(os.environ)
        if backend_password is not None:
            self.env[BACKEND_PASSWORD_ENV] = backend_password
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen | None = None

    @property
    def tenant_param(self) -> str:
        return self.config["identity"]["tenant_param"]

    @property
    def user_param(self) -> str:
        return self.config["identity"]["user_param"]

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> "Proxy":
        binary = tenantgate_bin()
        if not binary.exists():
            raise RuntimeError(f"tenantgate binary not found at {built_tenantgate_bin()} (set TENANTGATE_BIN)")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(binary), "--config", str(self.config_path)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                     start_new_session=True)
        log.close()

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tenantgate exited with {self.proc.returncode} during start:\n"
                                   f"{self.config_path.read_text()}\n--- log ---\n{self.log()}")
            return port_accepts(self.host, self.port)

        wait_until(ready, timeout, f"tenantgate to listen on {self.port}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def dsn(self, user: str = "app", password: str | None = "__principal__", tenant: str | None = "acme",
            user_id: str | None = "42", options: str | None = None, dbname: str = DATABASE, **extra: Any) -> str:
        if password == "__principal__":
            password = PRINCIPALS[user]["password"] if user in PRINCIPALS else None
        if options is None:
            options = identity_options(tenant, user_id, self.tenant_param, self.user_param) or None
        return conninfo(host=self.host, port=self.port, user=user, password=password, dbname=dbname,
                        options=options, connect_timeout=extra.pop("connect_timeout", 10),
                        sslmode=extra.pop("sslmode", "disable"), **extra)

    def startup_params(self, user: str = "app", tenant: str | None = "acme", user_id: str | None = "42",
                       **extra: str) -> dict:
        params = {"user": user, "database": DATABASE}
        opts = identity_options(tenant, user_id, self.tenant_param, self.user_param)
        if opts:
            params["options"] = opts
        params.update(extra)
        return params

    def raw(self, timeout: float = DEFAULT_TIMEOUT) -> "RawConn":
        return RawConn(self.host, self.port, timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def run_check(config_path: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(tenantgate_bin()), "check", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------
# A raw PostgreSQL protocol 3.0 client, for what drivers will not send and for
# reading SQLSTATEs of start-up refusals exactly.

PROTOCOL_3 = 196608
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


def startup_packet(params: dict, protocol: int = PROTOCOL_3) -> bytes:
    body = struct.pack("!I", protocol)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!I", len(payload) + 4) + payload


def query_message(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def parse_data_row(payload: bytes) -> list[str | None]:
    """A DataRow body as text values (None for SQL NULL)."""
    (n,) = struct.unpack("!H", payload[:2])
    row, i = [], 2
    for _ in range(n):
        (ln,) = struct.unpack("!i", payload[i:i + 4])
        i += 4
        if ln < 0:
            row.append(None)
        else:
            row.append(payload[i:i + ln].decode())
            i += ln
    return row


def parse_error_fields(payload: bytes) -> dict:
    """ErrorResponse/NoticeResponse body -> {'S': 'ERROR', 'C': '28000', 'M': ...}."""
    fields: dict = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[code] = payload[i + 1:end].decode(errors="replace")
        i = end + 1
    return fields


@dataclass
class StartupResult:
    error: dict | None = None
    parameters: dict = field(default_factory=dict)
    backend_key: tuple[int, int] | None = None
    auth_methods: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class RawConn:
    def __init__(self, host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> bool:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_byte(self) -> bytes | None:
        if not self._fill(1):
            return None
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def recv_msg(self) -> tuple[bytes, bytes] | None:
        """The next backend message as (type, payload); None on EOF."""
        if not self._fill(5):
            return None
        kind = self.buf[:1]
        (length,) = struct.unpack("!I", self.buf[1:5])
        if length < 4 or length > 1 << 30:
            raise ValueError(f"bad length {length} from server for {kind!r}")
        if not self._fill(1 + length):
            return None
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return kind, payload

    def read_until_closed(self, timeout: float) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Reads messages until EOF/reset. Returns (messages, closed_within_timeout)."""
        msgs = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                m = self.recv_msg()
                if m is None:
                    return msgs, True
                msgs.append(m)
        except (ConnectionResetError, BrokenPipeError):
            return msgs, True
        except (socket.timeout, TimeoutError):
            return msgs, False

    def startup(self, params: dict, password: str | None = None) -> StartupResult:
        """Sends a StartupMessage and answers cleartext, MD5 or SCRAM-SHA-256 requests."""
        self.send(startup_packet(params))
        result = StartupResult()
        scram: ScramClient | None = None
        while True:
            m = self.recv_msg()
            if m is None:
                raise ConnectionError("server closed the connection during start-up")
            kind, payload = m
            if kind == b"E":
                result.error = parse_error_fields(payload)
                return result
            if kind == b"R":
                (code,) = struct.unpack("!I", payload[:4])
                if code == 0:
                    continue
                if code in (3, 5, 10):  # the methods requested, not SASL continuations
                    result.auth_methods.append(code)
                if code == 3:
                    self.send(message(b"p", (password or "").encode() + b"\0"))
                elif code == 5:
                    salt = payload[4:8]
                    inner = hashlib.md5((password or "").encode() + params["user"].encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(message(b"p", b"md5" + outer.encode() + b"\0"))
                elif code == 10:
                    mechs = [x.decode() for x in payload[4:].split(b"\0") if x]
                    if "SCRAM-SHA-256" not in mechs:
                        raise AssertionError(f"server offered SASL mechanisms {mechs}")
                    scram = ScramClient(password or "")
                    first = scram.client_first()
                    self.send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
                elif code == 11:
                    self.send(message(b"p", scram.client_final(payload[4:])))
                elif code == 12:
                    scram.verify_server_final(payload[4:])
                else:
                    raise AssertionError(f"unexpected authentication request {code}")
            elif kind == b"S":
                k, v, _ = payload.split(b"\0", 2)
                result.parameters[k.decode()] = v.decode()
            elif kind == b"K":
                result.backend_key = struct.unpack("!II", payload[:8])
            elif kind == b"N":
                continue
            elif kind == b"Z":
                return result
            else:
                raise AssertionError(f"unexpected message {kind!r} during start-up")

    def simple_query(self, sql: str) -> dict:
        """Runs one simple Query; returns rows (text), command tags, errors, notices, status."""
        self.send(query_message(sql))
        out: dict = {"rows": [], "tags": [], "errors": [], "notices": [], "status": None, "kinds": []}
        while True:
            m = self.recv_msg()
            if m is None:
                raise ConnectionError("server closed the connection during a query")
            kind, payload = m
            out["kinds"].append(kind)
            if kind == b"D":
                out["rows"].append(parse_data_row(payload))
            elif kind == b"C":
                out["tags"].append(payload.rstrip(b"\0").decode())
            elif kind == b"E":
                out["errors"].append(parse_error_fields(payload))
            elif kind == b"N":
                out["notices"].append(parse_error_fields(payload))
            elif kind == b"Z":
                out["status"] = payload.decode()
                return out


class ScramClient:
    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"

    def client_first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise AssertionError("server nonce does not extend the client nonce")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{sf},{without_proof}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, _hmac(stored_key, self.auth_message)))
        self.server_key = _hmac(salted, b"Server Key")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        text = server_final.decode()
        if not text.startswith("v="):
            raise AssertionError(f"SCRAM server-final is not a verifier: {text!r}")
        expected = _hmac(self.server_key, self.auth_message)
        if base64.b64decode(text[2:]) != expected:
            raise AssertionError("SCRAM server signature does not verify")


def send_cancel(host: str, port: int, pid: int, key: int) -> None:
    with socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT) as s:
        s.sendall(struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid, key))
        s.settimeout(DEFAULT_TIMEOUT)
        try:
            s.recv(1)  # the server closes without answering
        except OSError:
            pass


def sleep_sql(seconds: float, *columns: str) -> str:
    """A SELECT that runs for `seconds` and returns one row of `columns` (default one empty string,
    as pg_sleep's void does). pg_sleep holds a backend and is denied by the function rules; this
    busy wait uses allowed built-ins only (generate_series in the select list streams, and the
    volatile qual stays above it)."""
    cols = ", ".join(columns) if columns else "''"
    return (f"SELECT {cols} FROM (SELECT generate_series(1, 1000000000000) AS g) s "
            f"WHERE clock_timestamp() >= statement_timestamp() + interval '{seconds} seconds' LIMIT 1")


def active_queries(pg: PgServer, marker: str) -> int:
    """How many server sessions are running a statement containing `marker`."""
    out = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                  f"AND query LIKE '%{marker}%' AND query NOT LIKE '%pg_stat_activity%'", db="postgres")
    return int(out)


def backend_sessions(pg: PgServer, usenames: Iterable[str]) -> int:
    names = ",".join(f"'{u}'" for u in usenames)
    return int(pg.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename IN ({names})", db="postgres"))


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text or "", re.IGNORECASE) is not None
