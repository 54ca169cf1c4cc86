#!/usr/bin/env bash
# The one launcher of throw-away PostgreSQL 15 servers: the quick start, the
# C++ tests (tests/support/pg_server.cc), the integration tests
# (tests/integration/harness.py) and the benchmarks (bench/e2e) all start and
# stop their servers through it.
#
#   scripts/pg_local.sh start DIR PORT [--hba FILE] [-c NAME=VALUE]...
#   scripts/pg_local.sh stop DIR [--immediate] [--remove]
#
# start: initdb into DIR/data on first use (superuser postgres, trust, UTF8,
# C locale), then start the server on 127.0.0.1:PORT with its socket in DIR,
# fsync and synchronous commit off, and wait until it accepts connections.
# --hba replaces pg_hba.conf with FILE (default: trust over the socket and for
# postgres on loopback, scram-sha-256 for everyone else on loopback). Each -c
# is written to DIR/data/launcher.conf, which the server reads last, so it
# overrides the defaults above. Exits 0 once the server accepts connections;
# 1 with the end of the server log on stderr when it does not start (a port
# taken meanwhile: start again with another PORT, initdb is not repeated).
# The log is DIR/postgres.log; the postmaster's pid is the first line of
# DIR/data/postmaster.pid.
#
# stop: a fast shutdown (--immediate: an immediate one), waiting for it;
# --remove then deletes DIR. Stopping a server that does not run is not an
# error.
#
# PostgreSQL refuses to run as root: as root, the server runs as the postgres
# system user, and DIR is given to that user.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
usage() {
  echo "usage: $0 start DIR PORT [--hba FILE] [-c NAME=VALUE]... | stop DIR [--immediate] [--remove]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
root=0
[ "$(id -u)" -eq 0 ] && root=1
as_pg() { if [ $root -eq 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# A value for postgresql.conf: single quotes, with ' and \ escaped.
conf_value() { local v=${1//\\/\\\\}; printf "'%s'" "${v//\'/\'\'}"; }

case $cmd in
  start)
    [ $# -ge 1 ] || usage
    port=$1
    shift
    hba=
    settings=()
    while [ $# -gt 0 ]; do
      case $1 in
        --hba) [ $# -ge 2 ] || usage; hba=$2; shift 2 ;;
        -c) [ $# -ge 2 ] || usage; settings+=("$2"); shift 2 ;;
        *) usage ;;
      esac
    done
    mkdir -p "$dir"
    [ $root -eq 1 ] && chown postgres:postgres "$dir"
    chmod 0755 "$dir"
    data=$dir/data
    if [ ! -f "$data/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
      echo "include_if_exists = 'launcher.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
    fi
    if [ -n "$hba" ]; then
      as_pg tee "$data/pg_hba.conf" <"$hba" >/dev/null
    else
      printf '%s\n' "local all all trust" "host all postgres 127.0.0.1/32 trust" \
        "host all all 127.0.0.1/32 scram-sha-256" | as_pg tee "$data/pg_hba.conf" >/dev/null
    fi
    {
      echo "port = $port"
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = $(conf_value "$dir")"
      echo "fsync = off"
      echo "full_page_writes = off"
      echo "synchronous_commit = off"
      for s in "${settings[@]}"; do
        case $s in
          *=*) echo "${s%%=*} = $(conf_value "${s#*=}")" ;;
          *) echo "pg_local.sh: -c $s is not NAME=VALUE" >&2; exit 2 ;;
        esac
      done
    } | as_pg tee "$data/launcher.conf" >/dev/null
    if ! as_pg "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
      echo "pg_local.sh: PostgreSQL did not start on port $port; the end of $dir/postgres.log:" >&2
      tail -n 30 "$dir/postgres.log" >&2 || true
      as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
      exit 1
    fi
    ;;
  stop)
    mode=fast remove=0
    while [ $# -gt 0 ]; do
      case $1 in
        --immediate) mode=immediate ;;
        --remove) remove=1 ;;
        *) usage ;;
      esac
      shift
    done
    if [ -f "$dir/data/postmaster.pid" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 30 stop >/dev/null 2>&1 ||
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    [ $remove -eq 1 ] && rm -rf "$dir"
    ;;
  *) usage ;;
esac
exit 0
