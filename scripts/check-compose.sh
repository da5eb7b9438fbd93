#!/usr/bin/env bash
# Validates docker/compose.yaml and docker/compose.sentinel.yaml with whichever
# Compose is installed: the Docker CLI's `docker compose` plugin, else the
# standalone `docker-compose` (Debian 12 ships 1.29). Exits 77 (skipped) when
# neither is present.
set -euo pipefail
docker_dir="$(cd "$(dirname "$0")/.." && pwd)/docker"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose) version=""
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose) version=" ($(docker-compose version --short 2>/dev/null || true))"
else
  echo "neither 'docker compose' nor 'docker-compose' is installed: the Compose files are not checked" >&2
  exit 77
fi
for file in "$docker_dir/compose.yaml" "$docker_dir/compose.sentinel.yaml"; do
  echo "${compose[*]} config -q -f $file$version"
  "${compose[@]}" -f "$file" config -q
done
