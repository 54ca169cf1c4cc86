#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the C++ unit,
# golden and execution tests (CTest), the fast tests again under AddressSanitizer
# and UBSan, and the integration tests with real clients (pytest).
# Every test starts the servers it needs itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$root/scripts/install_deps.sh"
echo "== build"
"$root/scripts/build.sh" "$root/build"

echo "== C++ tests (ctest)"
ctest --test-dir "$root/build" --output-on-failure -j2 --timeout 600 | tee -a "$log"

if [ "${TENANTGATE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== C++ unit and golden tests under AddressSanitizer + UBSan"
  "$root/scripts/build.sh" "$root/build-asan" -DTENANTGATE_SANITIZE=ON -DTENANTGATE_BENCH=OFF >/dev/null
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$root/build-asan" --output-on-failure -j2 \
    --timeout 900 -LE execution | tee -a "$log"
fi

echo "== integration tests (pytest, real PostgreSQL 15 and clients)"
TENANTGATE_BIN="$root/build/proxy/tenantgate" /usr/bin/python3 -m pytest -p no:cacheprovider \
  "$root/tests/integration" -q -ra | tee -a "$log"

# One summary line for all three runs (any failure has already stopped the
# script: set -e with pipefail).
cpp=$(grep -oE "tests failed out of [0-9]+" "$log" | awk '{n += $5} END {print n + 0}')
py=$(grep -oE "^[0-9]+ passed" "$log" | tail -1 | awk '{print $1 + 0}')
echo "== all tests passed in $(( $(date +%s) - start )) s"
echo "tests: $((cpp + py)) passed, 0 failed"
