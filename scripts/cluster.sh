#!/usr/bin/env bash
# The docker/compose.yaml topology on loopback, from Debian packages: one
# redis-server (AOF, fsync always), three otsyncd on Redis, HAProxy in front
# (docker/haproxy.cfg). Free ports, everything under DIR, stopped by PID.
#
#   scripts/cluster.sh start DIR [OTSYNCD]   # prints and writes DIR/cluster.env
#   scripts/cluster.sh stop DIR
#   scripts/cluster.sh redis-stop DIR        # SIGTERM Redis (an outage); redis-start brings it back
#   scripts/cluster.sh redis-start DIR       # on the same port and data directory (AOF replayed)
#
# OTSYNC_INSTANCES=1..3 (default 3) sets how many otsyncd run; HAProxy's
# unused server slots then point at a port nobody listens on (marked down).
# Extra otsyncd flags can go in OTSYNC_ARGS.
# CLUSTER_REDIS=sentinel starts Redis under Sentinel instead of one Redis: a
# master, a replica and three sentinels (master name "otsync",
# down-after-milliseconds SENTINEL_DOWN_MS, default 1000), and the instances
# use --store redis-sentinel://...; cluster.env then also holds
# REDIS_MASTER_PID/PORT, REDIS_REPLICA_PID/PORT, SENTINEL{1,2,3}_PID/PORT and
# REDIS_STORE_URI; REDIS_REPLICAS=2 adds a second replica (REDIS_REPLICA2_*), so
# that --redis-min-replicas 1 still holds after a failover. (redis-stop and
# redis-start act on the first master only.)
# CLUSTER_REDIS=cluster starts a Redis Cluster instead: three masters and three
# replicas (one each), every node with its own data directory (AOF as above),
# DIR/nodes-PORT.conf and its own free cluster bus port (--cluster-port), and
# cluster-node-timeout CLUSTER_NODE_TIMEOUT_MS (default 2000); the instances use
# --store redis-cluster://(the masters). cluster.env then also holds
# REDIS_CLUSTER_NODE{1..6}_PORT, _BUS_PORT and _PID, REDIS_CLUSTER_MASTERS and
# REDIS_CLUSTER_REPLICAS (ports, space-separated), REDIS_PORT (the first master)
# and REDIS_STORE_URI. (redis-stop and redis-start act on that first master only;
# redis-start brings it back as a cluster node, a replica if it was failed over.)
# CLUSTER_TLS_CERT=PEM (certificate chain and key in one file) makes HAProxy
# terminate TLS on its port (wss://, HAPROXY_WSS_URL) and listen for plain
# HTTP on a second port (HAPROXY_HTTP_PORT: /healthz and /readyz, everything
# else redirected to HTTPS; HAPROXY_ACME_BACKEND passes through, see
# docker/haproxy.cfg); without it HAProxy speaks plain HTTP (HAPROXY_URL).
#
# DIR/cluster.env holds HAPROXY_URL (or HAPROXY_WSS_URL and HAPROXY_HTTP_PORT),
# OTSYNC{1,2,3}_URL, REDIS_PORT and every PID (a later line overrides an
# earlier one, as when Redis is restarted).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"
dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop|redis-stop|redis-start DIR [OTSYNCD]" >&2; exit 2; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

free_ports() {  # free_ports N: N distinct free ports, space-separated (all held at once while picked)
  node -e 'const net=require("net"),n=+process.argv[1],ss=[];let k=0;
    for(let i=0;i<n;i++)ss.push(net.createServer().listen(0,"127.0.0.1",()=>{
      if(++k===n){console.log(ss.map(s=>s.address().port).join(" "));ss.forEach(s=>s.close())}}))' "$1"
}

wait_for() {  # wait_for SECONDS COMMAND...: retry until it succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "cluster.sh: timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

stop_pid() {  # SIGTERM, then SIGKILL after 10 s
  local pid="$1"
  ((pid > 0)) || return 0  # unset (kill 0 would signal our own process group)
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

start_redis() {  # start_redis PORT [DATA_DIR [EXTRA...]]: AOF with fsync on every write, as docker/compose.yaml
  local port="$1" data="${2:-$dir/redis}"
  shift $(($# < 2 ? $# : 2))
  mkdir -p "$data"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$data" --save "" \
    --appendonly yes --appendfsync always --daemonize no "$@" >>"$dir/redis.log" 2>&1 &
  echo "REDIS_PID=$!" >>"$dir/cluster.env"
  wait_for 20 redis-cli -p "$port" ping
}

start_cluster_node() {  # start_cluster_node I: node I of the Redis Cluster, ports from cluster.env
  local i="$1" port bus
  port="$(grep "^REDIS_CLUSTER_NODE${i}_PORT=" "$dir/cluster.env" | tail -1 | cut -d= -f2)"
  bus="$(grep "^REDIS_CLUSTER_NODE${i}_BUS_PORT=" "$dir/cluster.env" | tail -1 | cut -d= -f2)"
  # The bus port is given (not PORT+10000, past 65535 for a high free port). Replicas
  # sync at once (not after diskless replication's 5 s delay).
  start_redis "$port" "$dir/redis-cluster$i" --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" \
    --cluster-node-timeout "${CLUSTER_NODE_TIMEOUT_MS:-2000}" --cluster-port "$bus" --repl-diskless-sync-delay 0
  echo "REDIS_CLUSTER_NODE${i}_PID=$(grep '^REDIS_PID=' "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
}

start_redis_cluster() {  # three masters, three replicas; sets store_uri
  local ports i port role masters="" replicas="" uri="" addrs=()
  read -r -a ports <<<"$(free_ports 12)"  # six client ports, then six bus ports
  for i in 1 2 3 4 5 6; do
    echo "REDIS_CLUSTER_NODE${i}_PORT=${ports[i - 1]}" >>"$dir/cluster.env"
    echo "REDIS_CLUSTER_NODE${i}_BUS_PORT=${ports[i + 5]}" >>"$dir/cluster.env"
    start_cluster_node "$i"
    addrs+=("127.0.0.1:${ports[i - 1]}")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
    </dev/null >"$dir/redis-cluster-create.log" 2>&1 \
    || { echo "cluster.sh: redis-cli --cluster create failed:" >&2; cat "$dir/redis-cluster-create.log" >&2; return 1; }
  for i in 1 2 3 4 5 6; do
    wait_for 30 bash -c "redis-cli -p ${ports[i - 1]} cluster info | grep -q '^cluster_state:ok' && \
      redis-cli -p ${ports[i - 1]} cluster info | grep -q '^cluster_known_nodes:6'"
  done
  # redis-cli chose the roles: ask each node.
  for i in 1 2 3 4 5 6; do
    port="${ports[i - 1]}"
    role="$(redis-cli -p "$port" role | head -1)"
    case "$role" in
    master) masters+="${masters:+ }$port"; uri+="${uri:+,}127.0.0.1:$port" ;;
    slave)
      replicas+="${replicas:+ }$port"
      wait_for 30 bash -c "redis-cli -p $port info replication | grep -q '^master_link_status:up'"
      ;;
    *) echo "cluster.sh: Redis Cluster node on port $port has role '$role'" >&2; return 1 ;;
    esac
  done
  [[ "$masters" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]] || { echo "cluster.sh: expected three masters, got '$masters'" >&2; return 1; }
  echo "REDIS_CLUSTER_MASTERS=\"$masters\"" >>"$dir/cluster.env"
  echo "REDIS_CLUSTER_REPLICAS=\"$replicas\"" >>"$dir/cluster.env"
  # REDIS_PORT and REDIS_PID (what redis-stop acts on) are the first master's.
  for i in 1 2 3 4 5 6; do
    [[ "${ports[i - 1]}" == "${masters%% *}" ]] || continue
    echo "REDIS_PORT=${ports[i - 1]}" >>"$dir/cluster.env"
    echo "REDIS_PID=$(grep "^REDIS_CLUSTER_NODE${i}_PID=" "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
  done
  store_uri="redis-cluster://$uri"
}

start_sentinels() {  # a master, a replica and three sentinels; sets store_uri
  local master_port replica_port second_port="" uri="" i port
  master_port="$(free_port)"
  replica_port="$(free_port)"
  # Replicas sync at once (not after diskless replication's 5 s delay).
  start_redis "$master_port" "$dir/redis" --repl-diskless-sync-delay 0
  echo "REDIS_PORT=$master_port" >>"$dir/cluster.env"
  echo "REDIS_MASTER_PORT=$master_port" >>"$dir/cluster.env"
  echo "REDIS_MASTER_PID=$(grep '^REDIS_PID=' "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
  # REDIS_REPLICA_PRIORITY: the first replica's replica-priority (lower: Sentinel promotes it first,
  # even when it is behind the other; the drill of a lagging replica promoted).
  start_redis "$replica_port" "$dir/redis-replica" --replicaof 127.0.0.1 "$master_port" \
    ${REDIS_REPLICA_PRIORITY:+--replica-priority "$REDIS_REPLICA_PRIORITY"}
  echo "REDIS_REPLICA_PORT=$replica_port" >>"$dir/cluster.env"
  echo "REDIS_REPLICA_PID=$(grep '^REDIS_PID=' "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
  if [[ "${REDIS_REPLICAS:-1}" == 2 ]]; then
    second_port="$(free_port)"
    start_redis "$second_port" "$dir/redis-replica2" --replicaof 127.0.0.1 "$master_port"
    echo "REDIS_REPLICA2_PORT=$second_port" >>"$dir/cluster.env"
    echo "REDIS_REPLICA2_PID=$(grep '^REDIS_PID=' "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
  fi
  # The master's REDIS_PID line stays the one redis-stop acts on.
  echo "REDIS_PID=$(grep '^REDIS_MASTER_PID=' "$dir/cluster.env" | cut -d= -f2)" >>"$dir/cluster.env"
  for i in 1 2 3; do
    port="$(free_port)"
    cat >"$dir/sentinel$i.conf" <<CONF
port $port
bind 127.0.0.1
daemonize no
dir $dir
sentinel monitor otsync 127.0.0.1 $master_port 2
sentinel down-after-milliseconds otsync ${SENTINEL_DOWN_MS:-1000}
sentinel failover-timeout otsync 10000
sentinel parallel-syncs otsync 1
CONF
    redis-server "$dir/sentinel$i.conf" --sentinel >>"$dir/sentinel$i.log" 2>&1 &
    echo "SENTINEL${i}_PID=$!" >>"$dir/cluster.env"
    echo "SENTINEL${i}_PORT=$port" >>"$dir/cluster.env"
    uri+="${uri:+,}127.0.0.1:$port"
  done
  for port in "$replica_port" ${second_port:-}; do
    wait_for 30 bash -c "redis-cli -p $port info replication | grep -q 'master_link_status:up'"
  done
  for i in 1 2 3; do
    port="$(grep "^SENTINEL${i}_PORT=" "$dir/cluster.env" | cut -d= -f2)"
    wait_for 20 redis-cli -p "$port" ping
    # Ready for a failover once every sentinel knows the replica and the other sentinels.
    wait_for 30 bash -c "redis-cli -p $port sentinel replicas otsync | grep -q $replica_port && \
      [[ \$(redis-cli -p $port sentinel master otsync | grep -A1 '^num-other-sentinels\$' | tail -1) == 2 ]]"
  done
  store_uri="redis-sentinel://$uri/otsync"
}

case "$cmd" in
start)
  otsyncd="${3:-$here/build/bin/otsyncd}"
  instances="${OTSYNC_INSTANCES:-3}"
  [[ "$instances" =~ ^[123]$ ]] || { echo "cluster.sh: OTSYNC_INSTANCES must be 1, 2 or 3" >&2; exit 2; }
  mkdir -p "$dir/redis"
  : > "$dir/cluster.env"
  case "${CLUSTER_REDIS:-single}" in
  sentinel) start_sentinels ;;
  cluster) start_redis_cluster ;;
  single)
    redis_port="$(free_port)"
    echo "REDIS_PORT=$redis_port" >>"$dir/cluster.env"
    start_redis "$redis_port"
    store_uri="redis://127.0.0.1:$redis_port"
    ;;
  *) echo "cluster.sh: CLUSTER_REDIS must be single, sentinel or cluster" >&2; exit 2 ;;
  esac
  echo "REDIS_STORE_URI=$store_uri" >>"$dir/cluster.env"
  # One identity secret for every instance: a client that reconnects through
  # HAProxy to another instance keeps its connection id (docs/security.md).
  if [[ ! -s "$dir/identity-secret" ]]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/identity-secret")
  fi
  echo "IDENTITY_SECRET_FILE=$dir/identity-secret" >>"$dir/cluster.env"
  for i in $(seq "$instances"); do
    rm -f "$dir/otsync$i.port"
    # HAProxy speaks plain HTTP to the instances: an OTSYNC_TLS_* meant for a lone otsyncd must not reach them.
    # shellcheck disable=SC2086
    env -u OTSYNC_TLS_CERT -u OTSYNC_TLS_KEY -u OTSYNC_TLS_CLIENT_CA "$otsyncd" --listen 127.0.0.1:0 --port-file "$dir/otsync$i.port" --store "$store_uri" \
      --identity-secret-file "$dir/identity-secret" --data-dir "$dir/otsync$i" --drain-delay-ms 1500 --max-connections-per-address 0 --log-level "${OTSYNC_LOG_LEVEL:-warn}" ${OTSYNC_ARGS:-} >"$dir/otsync$i.log" 2>&1 &
    echo "OTSYNC${i}_PID=$!" >>"$dir/cluster.env"
  done
  for i in 1 2 3; do
    if ((i > instances)); then
      export "OTSYNC$i=127.0.0.1:1"  # nothing listens: the health check keeps it down
      continue
    fi
    wait_for 20 test -s "$dir/otsync$i.port"
    port="$(cat "$dir/otsync$i.port")"
    echo "OTSYNC${i}_URL=ws://127.0.0.1:$port/ws" >>"$dir/cluster.env"
    export "OTSYNC$i=127.0.0.1:$port"
  done
  haproxy_port="$(free_port)"
  export HAPROXY_BIND="127.0.0.1:$haproxy_port"
  http_port="$haproxy_port"  # where /readyz answers over plain HTTP
  unset HAPROXY_TLS_CERT HAPROXY_HTTP_BIND HAPROXY_HTTPS_PORT  # only CLUSTER_TLS_CERT turns TLS on
  if [[ -n "${CLUSTER_TLS_CERT:-}" ]]; then
    [[ -r "$CLUSTER_TLS_CERT" ]] || { echo "cluster.sh: cannot read CLUSTER_TLS_CERT=$CLUSTER_TLS_CERT" >&2; exit 2; }
    http_port="$(free_port)"
    export HAPROXY_TLS_CERT="$CLUSTER_TLS_CERT" HAPROXY_HTTP_BIND="127.0.0.1:$http_port" HAPROXY_HTTPS_PORT="$haproxy_port"
  fi
  haproxy -f "$here/docker/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  haproxy_pid=$!
  echo "HAPROXY_PID=$haproxy_pid" >>"$dir/cluster.env"
  sleep 0.2
  kill -0 "$haproxy_pid" 2>/dev/null || { echo "cluster.sh: haproxy exited:" >&2; cat "$dir/haproxy.log" >&2; exit 1; }
  if [[ -n "${CLUSTER_TLS_CERT:-}" ]]; then
    echo "HAPROXY_WSS_URL=wss://127.0.0.1:$haproxy_port/ws" >>"$dir/cluster.env"
    echo "HAPROXY_HTTP_PORT=$http_port" >>"$dir/cluster.env"
  else
    echo "HAPROXY_URL=ws://127.0.0.1:$haproxy_port/ws" >>"$dir/cluster.env"
  fi
  # Ready once HAProxy routes to an instance that is ready.
  wait_for 20 node -e "require('http').get('http://127.0.0.1:$http_port/readyz',r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
  # HAProxy starts every server as up: give the health checks (2 x 500 ms)
  # time to mark the empty slots down before anyone connects.
  ((instances == 3)) || sleep 1.5
  cat "$dir/cluster.env"
  ;;
stop)
  [[ -f "$dir/cluster.env" ]] || exit 0
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  stop_pid "${HAPROXY_PID:-0}"
  for pid in "${OTSYNC1_PID:-0}" "${OTSYNC2_PID:-0}" "${OTSYNC3_PID:-0}"; do stop_pid "$pid" & done
  wait
  for pid in "${SENTINEL1_PID:-0}" "${SENTINEL2_PID:-0}" "${SENTINEL3_PID:-0}"; do stop_pid "$pid" & done
  wait
  for i in 1 2 3 4 5 6; do pid_var="REDIS_CLUSTER_NODE${i}_PID"; stop_pid "${!pid_var:-0}" & done
  wait
  stop_pid "${REDIS_REPLICA_PID:-0}"
  stop_pid "${REDIS_REPLICA2_PID:-0}"
  stop_pid "${REDIS_MASTER_PID:-0}"
  stop_pid "${REDIS_PID:-0}"
  ;;
redis-stop)
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  stop_pid "${REDIS_PID:-0}"
  ;;
redis-start)
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  kill -0 "${REDIS_PID:-0}" 2>/dev/null && { echo "cluster.sh: Redis is running" >&2; exit 1; }
  if [[ -n "${REDIS_CLUSTER_MASTERS:-}" ]]; then
    for i in 1 2 3 4 5 6; do
      port_var="REDIS_CLUSTER_NODE${i}_PORT"
      [[ "${!port_var}" == "$REDIS_PORT" ]] || continue
      start_cluster_node "$i"  # its own data directory and nodes file: it rejoins the cluster
      echo "REDIS_PID=$(grep "^REDIS_CLUSTER_NODE${i}_PID=" "$dir/cluster.env" | tail -1 | cut -d= -f2)" >>"$dir/cluster.env"
    done
  else
    start_redis "$REDIS_PORT"
  fi
  ;;
*)
  echo "usage: $0 start|stop|redis-stop|redis-start DIR [OTSYNCD]" >&2
  exit 2
  ;;
esac
