#!/usr/bin/env bash
# Quick start: installs what is missing, builds tenantgate, starts a local
# database with the example schema (PostgreSQL 15, or a CockroachDB single
# node when a `cockroach` binary is on the PATH), starts tenantgate in front
# of it and prints the psql command to connect, the admin console and the
# metrics address.
#   scripts/quickstart.sh          start (again) everything
#   scripts/quickstart.sh stop     stop tenantgate and the database
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=$root/.run
db_port=${TENANTGATE_DEMO_DB_PORT:-54329}
proxy_port=${TENANTGATE_DEMO_PORT:-6432}
admin_port=${TENANTGATE_DEMO_ADMIN_PORT:-9187}
service_password=tenantgate-demo

stop() {
  if [ -f "$run/tenantgate.pid" ]; then
    kill "$(cat "$run/tenantgate.pid")" 2>/dev/null || true
    rm -f "$run/tenantgate.pid"
  fi
  if [ -f "$run/cockroach.pid" ]; then
    kill "$(cat "$run/cockroach.pid")" 2>/dev/null || true
    rm -f "$run/cockroach.pid"
  fi
  [ -d "$run/pg" ] && "$root/scripts/pg_local.sh" stop "$run/pg"
  return 0
}

if [ "${1:-}" = stop ]; then
  stop
  echo "stopped"
  exit 0
fi

echo "[1/4] checking packages (scripts/install_deps.sh)"
"$root/scripts/install_deps.sh"
# The build takes minutes on a fresh clone: show its progress on one line
# (cmake's "[ 42%]" markers), and the whole output if it fails.
echo "[2/4] building tenantgate (build/, ccache)"
build_log=$(mktemp)
if ! "$root/scripts/build.sh" "$root/build" 2>&1 | tee "$build_log" |
  while IFS= read -r line; do
    if [[ $line =~ ^\[\ *([0-9]+)%\]\ (.*)$ ]]; then
      printf '\r      %3s%%  %-70.70s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    fi
  done; then
  printf '\n'
  echo "build failed:" >&2
  tail -40 "$build_log" >&2
  rm -f "$build_log"
  exit 1
fi
printf '\r%100s\r' ''
rm -f "$build_log"
echo "      built $("$root/build/proxy/tenantgate" --version)"
bin=$root/build/proxy/tenantgate
stop
mkdir -p "$run"

echo "[3/4] starting the database"
if command -v cockroach >/dev/null 2>&1; then
  dialect=cockroachdb
  echo "starting CockroachDB single node on 127.0.0.1:$db_port"
  rm -rf "$run/crdb"
  cockroach start-single-node --insecure --store="$run/crdb" --listen-addr="127.0.0.1:$db_port" \
    --http-addr=127.0.0.1:0 --pid-file="$run/cockroach.pid" --background >/dev/null 2>&1
  sql() { cockroach sql --insecure --host="127.0.0.1:$db_port" "$@"; }
  sql -e "CREATE USER IF NOT EXISTS tenantgate; CREATE DATABASE appdb; GRANT ALL ON DATABASE appdb TO tenantgate;"
  sql -d appdb -e "SET ROLE tenantgate" -f "$root/examples/schema.sql" >/dev/null
else
  dialect=postgresql
  echo "starting PostgreSQL 15 on 127.0.0.1:$db_port"
  rm -rf "$run/pg"
  "$root/scripts/pg_local.sh" start "$run/pg" "$db_port"
  psql -qX -h 127.0.0.1 -p "$db_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE tenantgate LOGIN PASSWORD '$service_password'" \
    -c "CREATE DATABASE appdb OWNER tenantgate" >/dev/null
  PGPASSWORD=$service_password psql -qX -h 127.0.0.1 -p "$db_port" -U tenantgate -d appdb \
    -v ON_ERROR_STOP=1 -f "$root/examples/schema.sql" >/dev/null
fi

app_verifier=$(echo secret | "$bin" hash-password)
migrator_verifier=$(echo migrate | "$bin" hash-password)
ops_verifier=$(echo operate | "$bin" hash-password)
cat >"$run/tenantgate.toml" <<TOML
# Written by scripts/quickstart.sh: the example configuration.
[listen]
host = "127.0.0.1"
port = $proxy_port

[backend]
host = "127.0.0.1"
port = $db_port
user = "tenantgate"
password_env = "TENANTGATE_BACKEND_PASSWORD"
dialect = "$dialect"

[auth]
mode = "scram"

[[principals]]            # the application server: may act for any tenant
name = "app"
scram = "$app_verifier"   # password: secret
tenants = ["*"]

[[principals]]            # migrations and administration: not rewritten
name = "migrator"
scram = "$migrator_verifier"   # password: migrate
bypass = true

[[principals]]            # operators: the admin console (database "tenantgate")
name = "ops"
scram = "$ops_verifier"   # password: operate
admin = true

[identity]
tenant_type = "text"
user_type = "int"

[policy]
file = "$root/examples/policy.toml"

[admin]
listen = "127.0.0.1:$admin_port"

[audit]
mode = "refusals"
file = "$run/audit.jsonl"
TOML

echo "[4/4] starting tenantgate"
"$bin" check --config "$run/tenantgate.toml" >/dev/null
TENANTGATE_BACKEND_PASSWORD=$service_password nohup "$bin" --config "$run/tenantgate.toml" \
  >"$run/tenantgate.log" 2>&1 &
echo $! >"$run/tenantgate.pid"
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
  sleep 0.1
done
if ! (echo >"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null; then
  echo "tenantgate did not start; see $run/tenantgate.log" >&2
  tail -20 "$run/tenantgate.log" >&2
  exit 1
fi

cat <<MSG

tenantgate is running on 127.0.0.1:$proxy_port (log: $run/tenantgate.log).

  app (user 1 of tenant acme):
    psql "postgresql://app:secret@127.0.0.1:$proxy_port/appdb?options=-c%20tenantgate.tenant%3Dacme%20-c%20tenantgate.user%3D1"
  admin console (SHOW STATS, SHOW CLIENTS, SHOW POLICY, RELOAD, ...):
    psql "postgresql://ops:operate@127.0.0.1:$proxy_port/tenantgate"
  metrics and health:
    http://127.0.0.1:$admin_port/metrics   http://127.0.0.1:$admin_port/healthz   http://127.0.0.1:$admin_port/readyz
  audit trail (refusals, missing predicates):
    $run/audit.jsonl     report: $bin report $run/audit.jsonl

Try: SELECT * FROM users;   SELECT * FROM records;
Stop everything with: scripts/quickstart.sh stop
MSG
