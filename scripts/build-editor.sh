#!/usr/bin/env bash
# Builds the editor page otsyncd serves at / (clients/editor -> clients/editor/dist) from its
# lockfile: `npm ci` when node_modules is missing or older than package-lock.json, `npm run build`
# when dist/ is missing or older than a source. A second run does nothing. The CMake build of
# otsyncd then copies dist/ next to the binary (build/bin/editor). Needs node and npm
# (scripts/install-deps.sh installs Debian's).
set -euo pipefail
cd "$(dirname "$0")/../clients/editor"
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  echo "build-editor: npm ci in clients/editor"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [[ ! -f dist/index.html ]] ||
  [[ -n "$(find src build.js package.json package-lock.json ../js/index.js -newer dist/index.html -print -quit)" ]]; then
  npm run build --silent
else
  echo "build-editor: clients/editor/dist is up to date"
fi
