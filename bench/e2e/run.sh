#!/usr/bin/env bash
# End-to-end benchmark: pgbench against PostgreSQL directly, through PgBouncer,
# through tenantgate and directly as a row-level-security role, with ratios.
# Not part of the test suite. Usage: bench/e2e/run.sh [--quick] [options]
# (bench/e2e/run.sh --help lists them). bench/e2e/run.sh --pooling [options]
# runs the pooling benchmark instead (pool_bench.py: tenantgate against
# PgBouncer with the same pool size, and idle clients held). Builds tenantgate only when
# build/proxy/tenantgate is missing; installs pgbouncer/pgbench when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
bench=e2e_bench.py
if [ "${1:-}" = --pooling ]; then
  bench=pool_bench.py
  shift
  # 10,000 idle clients need as many descriptors in the client and in each proxy.
  ulimit -n "$(ulimit -Hn)"
fi
prev=
for arg in "$@"; do
  case $arg in
    -h|--help) exec /usr/bin/python3 "$root/bench/e2e/$bench" --help ;;
    --build=*) build=${arg#--build=} ;;
  esac
  [ "$prev" = --build ] && build=$arg
  prev=$arg
done

# Someone else's build may be relinking it right now: give that a moment.
for _ in $(seq 20); do [ -x "$build/proxy/tenantgate" ] && break; sleep 1; done
if [ ! -x "$build/proxy/tenantgate" ]; then
  echo "== $build/proxy/tenantgate is missing: installing dependencies and building"
  "$root/scripts/install_deps.sh"
  "$root/scripts/build.sh" "$build"
fi

missing=()
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
[ -x /usr/lib/postgresql/15/bin/pgbench ] || missing+=(postgresql-contrib)
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || missing+=(python3-psycopg2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

exec /usr/bin/python3 "$root/bench/e2e/$bench" --root "$root" "$@" --build "$build"
