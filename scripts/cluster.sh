#!/usr/bin/env bash
# The docker/compose.yaml topology on loopback, from Debian packages: one
# redis-server (AOF, fsync always), three otsyncd on Redis, HAProxy in front
# (docker/haproxy.cfg). Free ports, everything under DIR, stopped by PID.
#
#   scripts/cluster.sh start DIR [OTSYNCD]   # prints and writes DIR/cluster.env
#   scripts/cluster.sh stop DIR
#
# DIR/cluster.env holds HAPROXY_URL, OTSYNC{1,2,3}_URL, REDIS_PORT and every PID.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [OTSYNCD]" >&2; exit 2; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

wait_for() {  # wait_for SECONDS COMMAND...: retry until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "cluster.sh: timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

stop_pid() {  # SIGTERM, then SIGKILL after 10 s
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
start)
  otsyncd="${3:-$here/build/bin/otsyncd}"
  mkdir -p "$dir/redis"
  : > "$dir/cluster.env"
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --save "" \
    --appendonly yes --appendfsync always --daemonize no >"$dir/redis.log" 2>&1 &
  echo "REDIS_PID=$!" >>"$dir/cluster.env"
  echo "REDIS_PORT=$redis_port" >>"$dir/cluster.env"
  wait_for 20 redis-cli -p "$redis_port" ping
  for i in 1 2 3; do
    rm -f "$dir/otsync$i.port"
    "$otsyncd" --listen 127.0.0.1:0 --port-file "$dir/otsync$i.port" --store "redis://127.0.0.1:$redis_port" \
      --drain-delay-ms 1500 --log-level "${OTSYNC_LOG_LEVEL:-warn}" >"$dir/otsync$i.log" 2>&1 &
    echo "OTSYNC${i}_PID=$!" >>"$dir/cluster.env"
  done
  for i in 1 2 3; do
    wait_for 20 test -s "$dir/otsync$i.port"
    port="$(cat "$dir/otsync$i.port")"
    echo "OTSYNC${i}_URL=ws://127.0.0.1:$port/ws" >>"$dir/cluster.env"
    export "OTSYNC$i=127.0.0.1:$port"
  done
  haproxy_port="$(free_port)"
  HAPROXY_BIND="127.0.0.1:$haproxy_port" haproxy -f "$here/docker/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  haproxy_pid=$!
  echo "HAPROXY_PID=$haproxy_pid" >>"$dir/cluster.env"
  sleep 0.2
  kill -0 "$haproxy_pid" 2>/dev/null || { echo "cluster.sh: haproxy exited:" >&2; cat "$dir/haproxy.log" >&2; exit 1; }
  echo "HAPROXY_URL=ws://127.0.0.1:$haproxy_port/ws" >>"$dir/cluster.env"
  # Ready once HAProxy routes to an instance that is ready.
  wait_for 20 node -e "require('http').get('http://127.0.0.1:$haproxy_port/readyz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
  cat "$dir/cluster.env"
  ;;
stop)
  [[ -f "$dir/cluster.env" ]] || exit 0
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  stop_pid "${HAPROXY_PID:-0}"
  for pid in "${OTSYNC1_PID:-0}" "${OTSYNC2_PID:-0}" "${OTSYNC3_PID:-0}"; do stop_pid "$pid" & done
  wait
  stop_pid "${REDIS_PID:-0}"
  ;;
*)
  echo "usage: $0 start|stop DIR [OTSYNCD]" >&2
  exit 2
  ;;
esac
