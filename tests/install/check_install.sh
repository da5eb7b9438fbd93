#!/usr/bin/env bash
# `cmake --install` of a build tree into a temporary prefix, then the consumer
# project (tests/install/consumer) configured against that prefix only, built
# and run: find_package(otsync CONFIG REQUIRED) and otsync::client work for a
# program outside the tree.
# Usage: check_install.sh BUILD_DIR CONSUMER_SOURCE_DIR CXX_COMPILER [extra cmake -D options...]
set -euo pipefail
build="$1"
consumer="$2"
cxx="$3"
shift 3
work="$(mktemp -d "${TMPDIR:-/tmp}/otsync-install-test-XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }
for f in bin/otsyncd include/otsync/client/connection.hpp include/otsync/client/ot_client.hpp; do
  [[ -e "$prefix/$f" ]] || { echo "missing after install: $f"; exit 1; }
done
config="$(find "$prefix" -name otsyncConfig.cmake -print -quit)"
[[ -n "$config" ]] || { echo "no otsyncConfig.cmake under $prefix"; exit 1; }
echo "installed: $config"

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
echo "== consumer: configure and build against $prefix"
cmake -S "$consumer" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON "$@"
cmake --build "$work/build"
echo "== consumer: run"
"$work/build/otsync_consumer"
