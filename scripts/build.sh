#!/usr/bin/env bash
# Configures and builds one tree. Usage: scripts/build.sh BUILD_DIR [cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"
shift
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" "$@"
cmake --build "$dir" -j "$(nproc)"
