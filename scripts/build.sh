#!/usr/bin/env bash
# Configures and builds tenantgate into build/ (persistent, ccache-backed).
# Usage: scripts/build.sh [build-dir] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
export CCACHE_BASEDIR=$root
# Debug info would otherwise put the build directory into every hash, and a
# fresh clone (as CI makes) would never hit the cache.
export CCACHE_NOHASHDIR=1
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/tenantgate-ccache}
jobs=${TENANTGATE_JOBS:-$(nproc)}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
else
  cmake "$build" "$@" >/dev/null
fi
cmake --build "$build" -j "$jobs"
