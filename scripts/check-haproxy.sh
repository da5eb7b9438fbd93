#!/usr/bin/env bash
# Validates docker/haproxy.cfg with `haproxy -c` as it is used with TLS: a
# throwaway certificate (tests/support/make_test_certs.sh; HAProxy loads the
# file while checking), the HTTPS bind, the HTTP redirect bind, with and
# without the HTTPS port the redirect names. Loopback addresses stand in for
# the real ones. Exits 77 (skipped) without haproxy or openssl.
#   scripts/check-haproxy.sh [HAPROXY]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
haproxy="${1:-$(command -v haproxy || echo /usr/sbin/haproxy)}"
[[ -x "$haproxy" ]] || { echo "haproxy not found: docker/haproxy.cfg not checked" >&2; exit 77; }
command -v openssl >/dev/null || { echo "openssl not found: no certificate to check with" >&2; exit 77; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$here/tests/support/make_test_certs.sh" "$dir"
export HAPROXY_BIND=127.0.0.1:18000 OTSYNC1=127.0.0.1:18001 OTSYNC2=127.0.0.1:18002 OTSYNC3=127.0.0.1:18003
check() {  # check DESCRIPTION: haproxy -c with the current environment; warnings fail too
  echo "haproxy -c: $1"
  local out
  out="$("$haproxy" -c -f "$here/docker/haproxy.cfg" 2>&1)" || { echo "$out" >&2; exit 1; }
  if grep -q WARNING <<<"$out"; then echo "$out" >&2; exit 1; fi
}
check "plain HTTP"
export HAPROXY_TLS_CERT="$dir/server.pem"
check "TLS"
export HAPROXY_HTTP_BIND=127.0.0.1:18004
check "TLS and the HTTP redirect to the default port"
export HAPROXY_HTTPS_PORT=18000
check "TLS and the HTTP redirect to port 18000"
export HAPROXY_ACME_BACKEND=127.0.0.1:18005
check "TLS, the HTTP redirect and ACME challenges"
