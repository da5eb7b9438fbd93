'use strict';
// Three otsyncd instances on one Redis behind HAProxy (scripts/cluster.sh:
// the docker/compose.yaml topology on loopback). Unmodified sharedb clients
// connect through HAProxy, so they spread over the instances, and edit the
// same documents concurrently; every client converges and a fresh fetch
// through each instance agrees. Then one instance is SIGKILLed mid-load: its
// clients reconnect through HAProxy (as reconnecting-websocket would) and
// resend; nothing acked is lost, nothing is applied twice. Last, Redis itself
// is stopped mid-load and started again: every instance turns not-ready
// (/readyz 503) and back by itself, submits during the outage fail with an
// error instead of an ack, and the op log holds every acked op exactly once.
//
// Bounded: CLIENTS x OPS ops, every wait with a timeout.

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {execFile} = require('child_process');
const execFileAsync = require('util').promisify(execFile);
const fs = require('fs');
const http = require('http');
const path = require('path');
const S = require('./support');
const {Cluster, CLUSTER_SCRIPT: CLUSTER} = require('./support/cluster');
const CLIENTS = 9;
const OPS = 60;
const theCluster = new Cluster();

before(() => theCluster.start());
after(() => theCluster.stop());

const lb = () => theCluster.lb();
const instances = () => theCluster.instances();
const logs = () => theCluster.logs();

// A client that reconnects through HAProxy whenever its socket closes.
async function resilientClient() {
  const conn = await S.connect(lb());
  conn.reconnects = 0;
  conn.stopped = false;
  conn.on('state', (state) => {
    if (state !== 'disconnected' || conn.stopped) return;
    setTimeout(() => {
      if (conn.stopped) return;
      conn.reconnects++;
      conn.bindToSocket(new S.WebSocket(theCluster.env.HAPROXY_URL));
    }, 50 + Math.random() * 100);
  });
  return conn;
}

function getJson(wsUrl, pathname) {
  const base = wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
  return new Promise((resolve, reject) => {
    const req = http.get(base + pathname, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        try { resolve({status: res.statusCode, body: JSON.parse(body)}); } catch (e) { reject(e); }
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${pathname} timed out`)));
    req.on('error', reject);
  });
}

function getText(wsUrl, pathname) {
  const base = wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
  return new Promise((resolve, reject) => {
    const req = http.get(base + pathname, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${pathname} timed out`)));
    req.on('error', reject);
  });
}

// One series of /metrics summed over the instances, e.g. otsync_store_lost_ops_total{outcome="gone"}.
async function metricOverInstances(series) {
  let total = 0;
  for (const inst of instances()) {
    const line = (await getText(inst.wsUrl, '/metrics')).split('\n').find((l) => l.startsWith(`${series} `));
    if (line) total += Number(line.slice(series.length + 1));
  }
  return total;
}

// The op log through every instance: each acked op exactly once, no op twice, replaying to the text.
async function expectLogHolds(docs, id, acked) {
  const head = docs[0].version;
  for (const inst of instances()) {
    const {status, body} = await getJson(inst.wsUrl, `/api/v1/docs/cluster/${encodeURIComponent(id)}/ops?from=0`);
    assert.equal(status, 200);
    assert.equal(body.ops.length, head);
    assert.equal(S.replayLog(body.ops).data, docs[0].data, 'the log replays to the converged text');
    const tokens = body.ops.slice(1).map((op) => op.op.find((c) => typeof c === 'string'));
    const counts = new Map();
    for (const t of tokens) counts.set(t, (counts.get(t) || 0) + 1);
    for (const [t, n] of counts) assert.equal(n, 1, `op ${t} applied ${n} times`);
    for (const t of acked) assert.equal(counts.get(t), 1, `acked op ${t} is in the log`);
  }
}

async function readyStatuses() {
  return Promise.all(instances().map(async (inst) => {
    try { return (await getJson(inst.wsUrl, '/readyz')).status; } catch (_) { return 0; }
  }));
}

// A document id whose Redis Cluster slot is on the first master (the one redis-stop restarts), so
// that the outage below always hits the document; any id on one Redis.
async function idOnRestartedRedis(prefix) {
  const env = theCluster.env;
  if (!env.REDIS_CLUSTER_MASTERS) return S.uid(prefix);
  const cli = async (...args) => (await execFileAsync('redis-cli', ['-p', env.REDIS_PORT, ...args])).stdout;
  // CLUSTER NODES: "<id> <addr> myself,master - 0 0 1 connected 0-5460 [...]"
  const mine = (await cli('CLUSTER', 'NODES')).split('\n').find((line) => line.includes('myself'));
  const ranges = mine.trim().split(' ').slice(8).filter((r) => /^\d+(-\d+)?$/.test(r))
    .map((r) => r.split('-').map(Number));
  for (let tries = 0; tries < 200; tries++) {
    const id = S.uid(prefix);
    // The store's keys share the hash tag {<collection length>:<collection>/<id>} (src/redis/keys.cpp).
    const slot = Number((await cli('CLUSTER', 'KEYSLOT', `{7:cluster/${id}}`)).trim());
    if (ranges.some(([a, b = a]) => slot >= a && slot <= b)) return id;
  }
  throw new Error(`no id on the first master's slots ${JSON.stringify(ranges)}`);
}

// Every connection opens document `id`, the first creates it with "start:", and all subscribe.
async function createAndSubscribe(conns, id) {
  const docs = conns.map((c) => S.getDoc(c, 'cluster', id));
  await S.create(docs[0], 'start:');
  await Promise.all(docs.map((d) => S.subscribe(d)));
  return docs;
}

// `tag` tells apart the tokens of several rounds on one document.
async function typeTogether(docs, ops, during, tag = '') {
  const acked = [];
  await Promise.all(docs.map(async (d, i) => {
    for (let k = 0; k < ops; k++) {
      await S.sleep(Math.random() * 3);
      if (k === Math.floor(ops / 2) && i === 0 && during) during();
      const len = [...d.data].length;
      const pos = (k * 7 + i) % (len + 1);
      const text = `${tag}${i}.${k};`;
      await S.submitOp(d, pos ? [pos, text] : [text], 30000);
      acked.push(text);
    }
  }));
  await Promise.all(docs.map((d) => S.whenNothingPending(d, 30000)));
  return acked;
}

async function expectConverged(docs, id) {
  await S.waitUntil(async () => {
    const v = docs[0].version;
    return docs.every((d) => d.version === v);
  }, 20000, 'every client reaches the same version');
  for (const inst of instances().filter((x) => x.alive !== false)) {
    const fresh = await S.freshFetch(inst, 'cluster', id);
    for (const d of docs) {
      assert.equal(d.version, fresh.v, `version via ${inst.wsUrl}`);
      assert.equal(d.data, fresh.data, `text via ${inst.wsUrl}`);
    }
  }
}

describe('three instances behind HAProxy on one Redis', () => {
  it('clients spread over the instances converge, and every instance agrees', {timeout: 120000}, async () => {
    const conns = [];
    try {
      for (let i = 0; i < CLIENTS; i++) conns.push(await S.connect(lb()));
      const id = S.uid('spread');
      const docs = await createAndSubscribe(conns, id);
      const acked = await typeTogether(docs, OPS);
      await expectConverged(docs, id);
      // Each client awaited every ack (nothing composed): one version per op, none lost, none twice.
      assert.equal(acked.length, CLIENTS * OPS);
      assert.equal(docs[0].version, 1 + CLIENTS * OPS);
    } catch (e) {
      e.message += `\n${logs()}`;
      throw e;
    } finally {
      S.closeAll(conns);
    }
  });

  it('one instance SIGKILLed mid-load: clients reconnect, resend, lose nothing, converge', {timeout: 120000},
    async () => {
      const conns = [];
      try {
        for (let i = 0; i < CLIENTS; i++) conns.push(await resilientClient());
        const id = S.uid('kill');
        const docs = await createAndSubscribe(conns, id);
        const victim = instances()[1];
        const acked = await typeTogether(docs, OPS, () => process.kill(victim.pid, 'SIGKILL'));
        victim.alive = false;
        const survivors = instances().filter((x) => x.pid !== victim.pid);
        await S.waitUntil(() => docs.every((d) => d.version === docs[0].version), 20000, 'versions agree');
        for (const inst of survivors) {
          const fresh = await S.freshFetch(inst, 'cluster', id);
          for (const d of docs) {
            assert.equal(d.data, fresh.data, `text via ${inst.wsUrl}`);
            assert.equal(d.version, fresh.v);
          }
        }
        // Every op was acked, and each is one version: none lost, none applied twice.
        assert.equal(acked.length, CLIENTS * OPS);
        assert.equal(docs[0].version, 1 + CLIENTS * OPS);
        assert.ok(conns.some((c) => c.reconnects > 0), 'some clients were on the killed instance');
      } catch (e) {
        e.message += `\n${logs()}`;
        throw e;
      } finally {
        // No reconnect loop may outlive the test.
        for (const c of conns) c.stopped = true;
        S.closeAll(conns);
      }
    });

  it('Redis restarted mid-load: instances go not-ready and recover; every acked op is in the log once',
    {timeout: 180000}, async () => {
      // Restart the cluster: the previous test killed an instance.
      theCluster.stop();
      theCluster.start();
      const conns = [];
      try {
        for (let i = 0; i < CLIENTS; i++) conns.push(await resilientClient());
        const id = await idOnRestartedRedis('redis-restart');
        const docs = await createAndSubscribe(conns, id);

        let outage;
        let outageOver = false;
        const seen = {notReady: null, readyAgain: null};
        const cluster = (...args) => execFileAsync(CLUSTER, args, {timeout: 30000});
        const restartRedis = async () => {
          await cluster('redis-stop', theCluster.dir);
          await S.waitUntil(async () => (await readyStatuses()).every((s) => s === 503), 10000,
            'every instance reports not ready');
          seen.notReady = await readyStatuses();
          await S.sleep(1000);  // submits meet the outage
          await cluster('redis-start', theCluster.dir);
          await S.waitUntil(async () => (await readyStatuses()).every((s) => s === 200), 20000,
            'every instance ready again');
          seen.readyAgain = await readyStatuses();
          outageOver = true;
        };
        const acked = [];
        const failed = [];
        // Paced typing that goes on through the outage and a little after it
        // (bounded: at most MAX_OPS per client).
        const MAX_OPS = 600;
        let submitted = 0;
        let ackedAfterRecovery = 0;
        await Promise.all(docs.map(async (d, i) => {
          let afterRecovery = 0;  // ops this client started once the cluster was ready again
          for (let k = 0; k < MAX_OPS && (k < OPS || afterRecovery < 10); k++) {
            if (outageOver) afterRecovery++;
            await S.sleep(5 + Math.random() * 10);
            if (k === Math.floor(OPS / 3) && i === 0) outage = restartRedis();
            submitted++;
            const len = [...d.data].length;
            const pos = (k * 7 + i) % (len + 1);
            const token = `${i}.${k};`;
            try {
              const before = outageOver;
              await S.submitOp(d, pos ? [pos, token] : [token], 60000);
              acked.push(token);
              if (before) ackedAfterRecovery++;
            } catch (e) {
              // The client rolled the op back; the server may or may not hold it (a reply lost with Redis).
              assert.ok(e.code, `an error with a code, not ${e.message}`);
              failed.push({token, code: e.code});
            }
          }
        }));
        await outage;
        assert.deepEqual(seen.notReady, [503, 503, 503]);
        assert.deepEqual(seen.readyAgain, [200, 200, 200]);
        await Promise.all(docs.map((d) => S.whenNothingPending(d, 30000)));
        await expectConverged(docs, id);

        // The op log, through every instance: each acked op exactly once, no op twice.
        await expectLogHolds(docs, id, acked);
        const reconnects = conns.reduce((n, c) => n + c.reconnects, 0);
        console.log(`redis restart: ${acked.length} acked (${ackedAfterRecovery} after recovery), ` +
                    `${failed.length} failed, ${reconnects} reconnects`);
        assert.ok(outageOver, 'the typing outlasted the outage');
        assert.equal(acked.length + failed.length, submitted);
        for (const f of failed) assert.equal(f.code, 'ERR_DATABASE_UNAVAILABLE', JSON.stringify(f));
        // Once every instance is ready again, edits go through again on every client.
        assert.ok(ackedAfterRecovery >= CLIENTS * 5, `acked after recovery: ${ackedAfterRecovery}`);
      } catch (e) {
        e.message += `\n${logs()}`;
        throw e;
      } finally {
        for (const c of conns) c.stopped = true;
        S.closeAll(conns);
      }
    });

  // What a Sentinel failover without --redis-min-replicas can do: the new master is a replica that
  // had not received the last acknowledged commits. Here Redis comes back from an older copy of its
  // data: the instances still hold the ops it lacks and put them back, unasked; the clients (which
  // never go back a version) stay in step, and nothing acknowledged is lost.
  it('Redis back with an older copy of its data: the instances put the lost ops back; nothing acked is lost',
    {timeout: 180000, skip: process.env.CLUSTER_REDIS ? 'one Redis data directory' : false}, async () => {
      theCluster.stop();
      theCluster.start();
      const conns = [];
      try {
        for (let i = 0; i < CLIENTS; i++) conns.push(await resilientClient());
        const id = S.uid('older-copy');
        const docs = await createAndSubscribe(conns, id);
        const acked = await typeTogether(docs, 10, null, 'a');
        // Every ack is in (appendfsync always): the copy a replica that fell behind here would hold.
        const data = path.join(theCluster.dir, 'redis');
        const older = path.join(theCluster.dir, 'redis-older');
        fs.cpSync(data, older, {recursive: true});
        const versionOfCopy = 1 + CLIENTS * 10;  // the create, then every acked op
        acked.push(...await typeTogether(docs, 5, null, 'b'));
        const versionSeen = versionOfCopy + CLIENTS * 5;
        await S.waitUntil(() => docs.every((d) => d.version === versionSeen), 20000, 'every client has every op');

        const cluster = (...args) => execFileAsync(CLUSTER, args, {timeout: 30000});
        await cluster('redis-stop', theCluster.dir);
        fs.rmSync(data, {recursive: true, force: true});
        fs.renameSync(older, data);
        await cluster('redis-start', theCluster.dir);
        await S.waitUntil(async () => (await readyStatuses()).every((s) => s === 200), 20000,
          'every instance ready again');
        // Nobody types: the instances find the shorter log when their feeds resubscribe.
        await S.waitUntil(async () => (await S.freshFetch(instances()[0], 'cluster', id)).v === versionSeen, 20000,
          'the lost ops are back in the store');
        await expectConverged(docs, id);
        assert.equal(docs[0].version, versionSeen, 'no client went back or forward');
        assert.equal(await metricOverInstances('otsync_store_lost_ops_total{outcome="put_back"}'),
          versionSeen - versionOfCopy);
        assert.equal(await metricOverInstances('otsync_store_lost_ops_total{outcome="gone"}'), 0);
        // Editing goes on from there.
        acked.push(...await typeTogether(docs, 3, null, 'c'));
        await expectConverged(docs, id);
        await expectLogHolds(docs, id, acked);
      } catch (e) {
        e.message += `\n${logs()}`;
        throw e;
      } finally {
        for (const c of conns) c.stopped = true;
        S.closeAll(conns);
      }
    });
});
