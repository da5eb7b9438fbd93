#!/usr/bin/env bash
# Configures and builds one tree.
# Usage: scripts/build.sh BUILD_DIR [--target TARGET]... [cmake -D options...]
# With --target, only those targets (and what they need) are built.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"
shift
targets=()
options=()
while (($#)); do
  if [[ "$1" == "--target" ]]; then
    targets+=(--target "$2")
    shift 2
  else
    options+=("$1")
    shift
  fi
done
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" "${options[@]}"
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
