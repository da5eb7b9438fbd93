#!/usr/bin/env bash
# Installs everything otsync needs to build, test and benchmark on Debian 12;
# with --run, only what building and running otsyncd needs (scripts/run.sh).
# Run as root. Idempotent: apt runs only when a package is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

run_only=false
[[ "${1:-}" == "--run" ]] && run_only=true

# Building and running otsyncd.
packages=(
  cmake ninja-build g++ pkg-config ca-certificates
  nlohmann-json3-dev zlib1g-dev libcli11-dev libsqlite3-dev libjemalloc-dev
  libboost1.81-dev libspdlog-dev prometheus-cpp-dev libhiredis-dev
)
# Testing and benchmarking.
$run_only || packages+=(
  gzip redis-server haproxy
  docker-compose
  libgtest-dev libgmock-dev libbenchmark-dev
  chromium
  clang libclang-rt-14-dev
)
# Debian's redis-server package starts a system service (port 6379) on install.
# Nothing here uses it: the Redis tests and the loopback topology start their
# own redis-server on a free port with their own directory, and stop it by PID.
# docker-compose (1.29, no engine needed) only validates docker/compose.yaml in the tests.
# clang and libclang-rt-14-dev (its libFuzzer and sanitizer runtimes) build the
# fuzz targets (OTSYNC_FUZZ, tests/fuzz, scripts/fuzz.sh); GCC builds everything else.
# Node.js runs the JS-side tests and peers; a machine may already have a newer one.
if ! $run_only && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

$run_only && exit 0

# JS test and benchmark dependencies, exactly as locked.
here="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$here/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
