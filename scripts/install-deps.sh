#!/usr/bin/env bash
# Installs what otsync needs on Debian 12. Run as root. Idempotent: apt runs
# only when a package is missing.
#   scripts/install-deps.sh          everything to build, test and benchmark (scripts/test.sh)
#   scripts/install-deps.sh --run    only what building and running otsyncd needs (scripts/run.sh),
#                                    Node and npm included (they build the editor page)
#   scripts/install-deps.sh --bench  --run plus Google Benchmark, Node and the JS modules
#                                    (scripts/run_ot_bench.sh)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

mode=all
case "${1:-}" in
  "") ;;
  --run) mode=run ;;
  --bench) mode=bench ;;
  *) echo "usage: $0 [--run|--bench]" >&2; exit 2 ;;
esac

# Building and running otsyncd (the configuration needs every one of these,
# CLI11 and zlib included, even when only the otsyncd target is built).
packages=(
  cmake ninja-build g++ pkg-config ca-certificates
  nlohmann-json3-dev zlib1g-dev libcli11-dev libsqlite3-dev libjemalloc-dev
  libboost1.81-dev libspdlog-dev prometheus-cpp-dev libhiredis-dev libssl-dev
)
# The OT benchmark (bench/, scripts/run_ot_bench.sh).
[[ "$mode" != run ]] && packages+=(libbenchmark-dev)
# Testing.
[[ "$mode" == all ]] && packages+=(
  gzip redis-server haproxy openssl
  docker-compose
  podman runc netavark aardvark-dns iptables debootstrap podman-compose
  libgtest-dev libgmock-dev
  python3 python3-prometheus-client python3-jwt
  chromium
  clang libclang-rt-14-dev
)
# Debian's redis-server and haproxy packages enable and start system services
# (Redis on port 6379) on install. Nothing here uses them: the Redis tests and
# the loopback topology start their own redis-server on a free port with their
# own directory, and stop it by PID; HAProxy too is started by the tests (on
# free ports, from docker/haproxy.cfg). They are disabled and stopped below
# when this run installed them.
# The openssl CLI makes the TLS tests' throwaway CA and certificates.
# docker-compose (1.29, no engine needed) only validates docker/compose.yaml in the tests.
# podman (rootful, with runc: docker/podman-containers.conf; netavark and aardvark-dns for the
# compose network and its service names, iptables for published ports), debootstrap (the Debian
# base images where no registry is reachable) and podman-compose build and run the image and the
# compose topology in the tests (scripts/container.sh, tests/js/container_test.js).
# python3-prometheus-client parses /metrics in the tests (tests/integration/check_metrics.py);
# python3-jwt (PyJWT) runs the Python token-issuing example (examples/tokens) in tests/js/auth_test.js.
# clang and libclang-rt-14-dev (its libFuzzer and sanitizer runtimes) build the
# fuzz targets (OTSYNC_FUZZ, tests/fuzz, scripts/fuzz.sh); GCC builds everything else.
# Node.js and npm build the editor page otsyncd serves (clients/editor, scripts/build-editor.sh: every
# mode) and run the JS-side tests, peers and benchmarks; a machine may already have a newer one.
if ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
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

# Services of packages installed just now: disabled and stopped (systemd, or
# SysV init without it); a service someone had set up before is left alone.
for service in redis-server haproxy; do
  [[ " ${missing[*]} " == *" $service "* ]] || continue
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now "$service" 2>/dev/null || true
  elif command -v service >/dev/null 2>&1; then
    service "$service" stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null 2>&1 && { update-rc.d "$service" disable >/dev/null 2>&1 || true; }
  fi
done

[[ "$mode" == run ]] && exit 0

# JS test and benchmark dependencies, exactly as locked.
here="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$here/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
