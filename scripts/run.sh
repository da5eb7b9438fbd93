#!/usr/bin/env bash
# Installs dependencies, builds otsync and starts otsyncd on its durable
# default: SQLite in ./data, listening on 127.0.0.1:8080 (WebSocket at /ws, the editor page at /).
# Extra arguments go to otsyncd (see `build/bin/otsyncd --help`), e.g.
#   scripts/run.sh --listen 0.0.0.0:8080 --data-dir /var/lib/otsync
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what running needs: the build tools and libraries (Node and npm for the editor page), the
# editor page (clients/editor/dist, from its lockfile) and the otsyncd target, which copies the
# page next to the binary (build/bin/editor): open http://127.0.0.1:8080/ once it runs.
scripts/install-deps.sh --run
scripts/build-editor.sh
scripts/build.sh build --target otsyncd -DCMAKE_BUILD_TYPE=Release -DOTSYNC_BUILD_TESTS=OFF -DOTSYNC_BUILD_BENCH=OFF
echo "run.sh: starting build/bin/otsyncd (Ctrl-C or SIGTERM stops it gracefully)"
exec build/bin/otsyncd --data-dir "${OTSYNC_DATA_DIR:-$PWD/data}" "$@"
