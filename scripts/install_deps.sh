#!/usr/bin/env bash
# Installs the Debian packages tenantgate needs to build, run and test.
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config git
  libboost1.81-dev libssl-dev libspdlog-dev libfmt-dev libtoml11-dev
  libpg-query-dev protobuf-compiler libprotobuf-dev
  libgtest-dev libgmock-dev libbenchmark-dev libpq-dev nlohmann-json3-dev
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer openssl
  python3 python3-pytest python3-psycopg2 python3-psycopg python3-sqlalchemy
  python3-flask python3-flask-sqlalchemy
  prometheus-cpp-dev libcivetweb-dev nlohmann-json3-dev podman systemd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages and not root; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Debian postgresql package may start a cluster of its own; tenantgate's
# scripts and tests start their own servers and never use it.
