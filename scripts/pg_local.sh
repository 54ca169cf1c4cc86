#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL 15 server for the quick start.
# PostgreSQL refuses to run as root, so it runs as the "postgres" user.
#   scripts/pg_local.sh start DIR PORT   (initdb on first use)
#   scripts/pg_local.sh stop DIR
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
cmd=$1 dir=$2
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $cmd in
  start)
    port=$3
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
      cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -o \
      "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
