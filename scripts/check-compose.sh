#!/usr/bin/env bash
# Validates docker/compose.yaml with whichever Compose is installed: the
# Docker CLI's `docker compose` plugin, else the standalone `docker-compose`
# (Debian 12 ships 1.29). Exits 77 (skipped) when neither is present.
set -euo pipefail
file="$(cd "$(dirname "$0")/.." && pwd)/docker/compose.yaml"
if docker compose version >/dev/null 2>&1; then
  echo "docker compose config -q -f $file"
  exec docker compose -f "$file" config -q
elif command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose config -q -f $file ($(docker-compose version --short 2>/dev/null || true))"
  exec docker-compose -f "$file" config -q
fi
echo "neither 'docker compose' nor 'docker-compose' is installed: compose.yaml not checked" >&2
exit 77
