'use strict';
// One Sentinel failover drill (scripts/cluster.sh with CLUSTER_REDIS=sentinel:
// a master, two replicas, three sentinels; three otsyncd on
// redis-sentinel://; HAProxy): unmodified sharedb clients type through
// HAProxy, each op a unique token, while the master is SIGKILLed; a replica
// is promoted. Afterwards: which acknowledged tokens are missing from the
// document (lost) or there twice, whether every client converged, and how
// long from the kill until every instance was ready and an op was acked again.
// Used by tests/js/failover_test.js and bench/js/failover_drill.js.

const http = require('http');
const S = require('.');
const {Cluster} = require('./cluster');

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

/**
 * opts: {minReplicas (0: acked once the master has it), clients (6), opsPerClient (150),
 *        killAfterMs (2500), limitMs (90000), log (function)}
 */
async function failoverDrill(opts = {}) {
  const clients = opts.clients || 6;
  const opsPerClient = opts.opsPerClient || 150;
  const log = opts.log || (() => {});
  const args = ['--redis-timeout-ms 3000'];
  if (opts.minReplicas) args.push(`--redis-min-replicas ${opts.minReplicas}`, '--redis-wait-timeout-ms 1000');
  const cluster = new Cluster({CLUSTER_REDIS: 'sentinel', REDIS_REPLICAS: '2', SENTINEL_DOWN_MS: '1000',
    OTSYNC_ARGS: args.join(' ')});
  cluster.start();
  const conns = [];
  const result = {acked: 0, lost: [], duplicated: [], errors: 0, converged: false, readyAgainMs: null,
    firstAckAfterKillMs: null};
  try {
    for (let i = 0; i < clients; i++) conns.push(await resilientClient(cluster));
    const id = S.uid('failover');
    const docs = conns.map((c) => S.getDoc(c, 'failover', id));
    await S.create(docs[0], '');
    await Promise.all(docs.map((d) => S.subscribe(d, 20000)));
    const acked = [];
    let killedAt = null;
    const deadline = Date.now() + (opts.limitMs || 90000);
    const killer = (async () => {
      await S.sleep(opts.killAfterMs || 2500);
      killedAt = Date.now();
      process.kill(Number(cluster.env.REDIS_MASTER_PID), 'SIGKILL');
      log(`master (pid ${cluster.env.REDIS_MASTER_PID}) killed`);
      await S.sleep(200);
      await S.waitUntil(async () => (await Promise.all(cluster.instances().map(readyz))).every((s) => s === 200),
        60000, 'every instance ready after the failover', 100);
      result.readyAgainMs = Date.now() - killedAt;
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
    for (const c of conns) c.stopped = true;
    S.closeAll(conns);
    cluster.stop();
  }
}

module.exports = {failoverDrill};
