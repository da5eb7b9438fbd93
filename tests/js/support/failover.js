'use strict';
// One Sentinel failover drill (scripts/cluster.sh with CLUSTER_REDIS=sentinel:
// a master, two replicas, three sentinels; three otsyncd on
// redis-sentinel://; HAProxy): unmodified sharedb clients type through
// HAProxy, each op a unique token, while the master is SIGKILLed; a replica
// is promoted. Afterwards: which acknowledged tokens are missing from the
// document (lost) or there twice, whether every client converged, and how
// long from the kill until every instance was ready and an op was acked again.
// With topology 'cluster' the same on a Redis Cluster (CLUSTER_REDIS=cluster:
// three masters, a replica each, redis-cluster://): the document is put on the
// first master's shard, that master is SIGKILLed, its replica takes over, and
// once every instance is ready the old master is started again (it rejoins as
// the new master's replica, so --redis-min-replicas 1 can confirm again).
// With disruption 'migrate' (cluster only) nothing is killed: the document's
// slot is moved to another master and back, twice, while the clients type
// (CLUSTER SETSLOT MIGRATING/IMPORTING, MIGRATE two keys at a time with pauses,
// so commits meet a half-moved document, then SETSLOT NODE on every master).
// With disruption 'lagging' (sentinel only): the first replica has the lower
// replica-priority and is frozen (SIGSTOP) for a second before the master is
// killed, so Sentinel promotes the replica that is *behind* the other one;
// the other then needs a full resynchronisation (after Redis's 5 s
// repl-diskless-sync-delay) and, with --redis-min-replicas 1, no commit is
// confirmed meanwhile: reconnecting clients' resubscriptions must wait for
// the store, not fail (the sharedb client never retries them).
// Used by tests/js/failover_test.js and bench/js/failover_drill.js.

const {execFile, execFileSync} = require('child_process');
const execFileAsync = require('util').promisify(execFile);
const http = require('http');
const S = require('.');
const {Cluster, CLUSTER_SCRIPT} = require('./cluster');

function readyz(server) {
  return new Promise((resolve) => {
    const req = http.get(`${server.httpUrl}/readyz`, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.setTimeout(2000, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function resilientClient(cluster) {
  const conn = await S.connect(cluster.lb());
  conn.stopped = false;
  conn.on('state', (state) => {
    if (state !== 'disconnected' || conn.stopped) return;
    setTimeout(() => {
      if (!conn.stopped) conn.bindToSocket(new S.WebSocket(cluster.env.HAPROXY_URL));
    }, 50 + Math.random() * 100);
  });
  return conn;
}

function submit(doc, op, ms) {
  return S.withTimeout(new Promise((resolve) => doc.submitOp(op, (e) => resolve(e || null))), ms, 'submit')
    .catch((e) => e);
}

// A document id whose keys live on the shard of the master at `port` (it answers without MOVED).
function idOnShard(port) {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const id = S.uid('failover');
    const key = `otsync:{8:failover/${id}}:head`;
    const out = execFileSync('redis-cli', ['-p', String(port), 'EXISTS', key], {encoding: 'utf8', timeout: 5000});
    if (!out.includes('MOVED')) return id;
  }
  throw new Error(`no document id on the shard of port ${port} in 1000 tries`);
}

// The sum of one counter over every instance's /metrics.
async function metricSum(cluster, name) {
  let total = 0;
  for (const server of cluster.instances()) {
    const text = await new Promise((resolve) => {
      const req = http.get(`${server.httpUrl}/metrics`, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.setTimeout(5000, () => req.destroy());
      req.on('error', () => resolve(''));
    });
    // `name` may carry labels: otsync_store_lost_ops_total{outcome="put_back"}
    const escaped = name.replace(/[{}"=]/g, (c) => `\\${c}`);
    const match = text.match(new RegExp(`^${escaped} (\\d+)`, 'm'));
    if (match) total += Number(match[1]);
  }
  return total;
}

function redisCli(port, ...args) {
  return execFileAsync('redis-cli', ['-p', String(port), ...args], {timeout: 10000}).then((r) => r.stdout.trim());
}

// Moves `key`'s slot from the master that serves it to another one; returns [from, to] ports.
async function migrateSlot(masters, key) {
  const slot = await redisCli(masters[0], 'CLUSTER', 'KEYSLOT', key);
  let source = null;
  for (const port of masters) {
    if (!(await redisCli(port, 'EXISTS', key)).includes('MOVED')) source = port;
  }
  if (!source) throw new Error(`no master serves ${key}`);
  const target = masters.find((p) => p !== source);
  const sourceId = await redisCli(source, 'CLUSTER', 'MYID');
  const targetId = await redisCli(target, 'CLUSTER', 'MYID');
  const must = async (port, ...args) => {
    const out = await redisCli(port, ...args);
    if (out !== 'OK' && !out.startsWith('NOKEY')) throw new Error(`${args.join(' ')} on ${port}: ${out}`);
  };
  await must(target, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId);
  await must(source, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
  for (let round = 0; round < 1000; round++) {
    const keys = (await redisCli(source, 'CLUSTER', 'GETKEYSINSLOT', slot, '2')).split('\n').filter((k) => k);
    if (!keys.length) break;
    await must(source, 'MIGRATE', '127.0.0.1', String(target), '', '0', '5000', 'KEYS', ...keys);
    await S.sleep(50);
  }
  for (const port of masters) await must(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
  return [source, target];
}

/**
 * opts: {topology ('sentinel' or 'cluster'), disruption ('kill', or 'migrate' on a cluster), minReplicas (0: acked once the master has it), clients (6),
 *        opsPerClient (150), killAfterMs (2500), limitMs (90000), log (function)}
 */
async function failoverDrill(opts = {}) {
  const clients = opts.clients || 6;
  const opsPerClient = opts.opsPerClient || 150;
  const log = opts.log || (() => {});
  const args = ['--redis-timeout-ms 3000'];
  if (opts.minReplicas) args.push(`--redis-min-replicas ${opts.minReplicas}`, '--redis-wait-timeout-ms 1000');
  if (opts.otsyncdArgs) args.push(opts.otsyncdArgs);  // e.g. '--max-store-wait-ms 0', to see what it prevents
  const onCluster = opts.topology === 'cluster';
  const lagging = opts.disruption === 'lagging';
  if (lagging && onCluster) throw new Error('the lagging-replica drill runs on Sentinel');
  const cluster = new Cluster(onCluster ?
    {CLUSTER_REDIS: 'cluster', CLUSTER_NODE_TIMEOUT_MS: '1000', OTSYNC_ARGS: args.join(' ')} :
    {CLUSTER_REDIS: 'sentinel', REDIS_REPLICAS: '2', SENTINEL_DOWN_MS: '1000', OTSYNC_ARGS: args.join(' '),
      ...(lagging ? {REDIS_REPLICA_PRIORITY: '1'} : {})});
  cluster.start();
  const conns = [];
  const result = {acked: 0, lost: [], duplicated: [], errors: 0, errorCodes: {}, converged: false, readyAgainMs: null,
    firstAckAfterKillMs: null};
  let thaw = () => {};
  try {
    for (let i = 0; i < clients; i++) conns.push(await resilientClient(cluster));
    const id = onCluster ? idOnShard(cluster.env.REDIS_PORT) : S.uid('failover');
    const masterPid = Number(onCluster ? cluster.env.REDIS_PID : cluster.env.REDIS_MASTER_PID);
    const docs = conns.map((c) => S.getDoc(c, 'failover', id));
    await S.create(docs[0], '');
    await Promise.all(docs.map((d) => S.subscribe(d, 20000)));
    const acked = [];
    let killedAt = null;
    const deadline = Date.now() + (opts.limitMs || 90000);
    const migrating = opts.disruption === 'migrate';
    const key = `otsync:{8:failover/${id}}:head`;
    let frozenPid = 0;  // the lagging drill's frozen replica, thawed whatever happens
    thaw = () => {
      if (frozenPid) try { process.kill(frozenPid, 'SIGCONT'); } catch (_) { /* gone */ }
    };
    const killer = migrating ? (async () => {
      await S.sleep(opts.killAfterMs || 2500);
      killedAt = Date.now();
      const masters = cluster.env.REDIS_CLUSTER_MASTERS.split(' ');
      for (let i = 0; i < 4; i++) {
        const [from, to] = await migrateSlot(masters, key);
        log(`slot of the document moved from ${from} to ${to}`);
        await S.sleep(700);
      }
      result.readyAgainMs = 0;
    })() : (async () => {
      if (lagging) {
        frozenPid = Number(cluster.env.REDIS_REPLICA_PID);
        await S.sleep(Math.max(0, (opts.killAfterMs || 2500) - 1000));
        process.kill(frozenPid, 'SIGSTOP');  // it falls behind the other replica
        log(`replica (pid ${frozenPid}) frozen`);
        await S.sleep(1000);
      } else {
        await S.sleep(opts.killAfterMs || 2500);
      }
      killedAt = Date.now();
      process.kill(masterPid, 'SIGKILL');
      log(`master (pid ${masterPid}) killed`);
      if (lagging) {
        await S.sleep(300);
        process.kill(frozenPid, 'SIGCONT');
        log(`replica (pid ${frozenPid}) thawed`);
      }
      await S.sleep(200);
      await S.waitUntil(async () => (await Promise.all(cluster.instances().map(readyz))).every((s) => s === 200),
        60000, 'every instance ready after the failover', 100);
      result.readyAgainMs = Date.now() - killedAt;
      if (lagging) {
        const port = execFileSync('redis-cli', ['-p', cluster.env.SENTINEL1_PORT, 'SENTINEL',
          'get-master-addr-by-name', 'otsync'], {encoding: 'utf8', timeout: 5000}).trim().split('\n')[1];
        result.promotedLagging = port === String(cluster.env.REDIS_REPLICA_PORT);
        log(`promoted: port ${port} (${result.promotedLagging ? 'the lagging replica' : 'the other replica'})`);
      }
      if (onCluster) {
        // A supervisor restarts it: back as a replica of the promoted one.
        execFileSync(CLUSTER_SCRIPT, ['redis-start', cluster.dir], {stdio: ['ignore', 'ignore', 'inherit'],
          timeout: 30000});
        cluster.readEnv();
        log('old master started again');
      }
    })();
    await Promise.all(docs.map(async (doc, i) => {
      for (let k = 0; k < opsPerClient && Date.now() < deadline; k++) {
        const token = `<${i}.${k}>`;
        // Between two tokens (ASCII: code points are string indices), so no token splits another.
        const text = doc.data || '';
        const boundaries = [0];
        for (let p = text.indexOf('>'); p !== -1; p = text.indexOf('>', p + 1)) boundaries.push(p + 1);
        const at = boundaries[Math.floor(Math.random() * boundaries.length)];
        const error = await submit(doc, at ? [at, token] : [token], 20000);
        if (error) {
          result.errors++;
          const code = error.code || error.message;
          result.errorCodes[code] = (result.errorCodes[code] || 0) + 1;
          await S.sleep(100);
          continue;
        }
        acked.push(token);
        if (killedAt && result.firstAckAfterKillMs === null) result.firstAckAfterKillMs = Date.now() - killedAt;
        await S.sleep(30 + Math.random() * 30);  // about 20 edits/s per client
      }
    }));
    await killer;
    // Quiescence: every client caught up with what the new master holds.
    await Promise.all(docs.map((d) => S.whenNothingPending(d, 30000)));
    const fresh = await S.freshFetch(cluster.instances()[0], 'failover', id);
    await S.waitUntil(() => docs.every((d) => d.version === fresh.v && d.data === fresh.data), 30000,
      'every client converged', 50).then(() => { result.converged = true; }, () => {});
    for (const server of cluster.instances().slice(1)) {
      const other = await S.freshFetch(server, 'failover', id);
      if (other.data !== fresh.data || other.v !== fresh.v) result.converged = false;
    }
    result.acked = acked.length;
    result.redirects = await metricSum(cluster, 'otsync_redis_redirects_total');
    // Ops the store lost in the failover that an instance committed again (or could not).
    result.putBack = await metricSum(cluster, 'otsync_store_lost_ops_total{outcome="put_back"}');
    result.gone = await metricSum(cluster, 'otsync_store_lost_ops_total{outcome="gone"}');
    result.version = fresh.v;
    result.length = typeof fresh.data === 'string' ? [...fresh.data].length : null;
    if (opts.inspect) await opts.inspect(cluster, id, fresh);
    const text = typeof fresh.data === 'string' ? fresh.data : '';  // the document itself may be gone
    for (const token of acked) {
      const count = text.split(token).length - 1;
      if (count === 0) result.lost.push(token);
      if (count > 1) result.duplicated.push(token);
    }
    return result;
  } catch (e) {
    e.message += `\n${cluster.logs()}`;
    throw e;
  } finally {
    thaw();
    for (const c of conns) c.stopped = true;
    S.closeAll(conns);
    cluster.stop();
  }
}

module.exports = {failoverDrill};
