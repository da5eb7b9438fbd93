'use strict';
// No client can speak for another (docs/security.md, "Identity"). Client A is
// the unmodified sharedb client; client B is an attacker on a raw socket who
// sees A's ops and tries, with what it sees, the attacks that work on ShareDB:
// adopting A's id in its handshake, naming A as the src of its own ops,
// hiding its edits from A, and creating the document A is about to create
// under A's next (src, seq). On memory, SQLite, and two instances sharing
// Redis (A on one, B on the other). Every acknowledged edit of A's must be in
// the document exactly once, and every replica must match a fresh fetch.

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const {spawn} = require('child_process');
const S = require('./support');

const C = 'identity';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A throwaway redis-server on loopback, stopped by PID. */
async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-js-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'no'], {stdio: 'ignore'});
  await S.waitUntil(() => new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => { sock.destroy(); resolve(true); });
    sock.on('error', () => resolve(false));
  }), 10000, 'redis-server listening');
  return {
    uri: `redis://127.0.0.1:${port}`,
    stop: () => {
      try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ }
      fs.rmSync(dir, {recursive: true, force: true});
    },
  };
}

const hs = (id) => ({a: 'hs', id, protocol: 1, protocolMinor: 2});
const opMsg = (d, v, seq, body, extra = {}) => ({a: 'op', c: C, d, v, seq, x: {}, ...body, ...extra});

function attacks(setup) {
  let env;
  before(async () => { env = await setup(); });
  after(async () => { if (env) await env.stop(); });

  it('B cannot take over A\'s id, speak as A, hide its edits from A or hijack A\'s create', async () => {
    const {serverA, serverB} = env;
    await S.withServerLog(serverA, async () => {
      const a = await S.connect(serverA);
      const b = await S.RawClient.open(serverB);
      try {
        const bHs = await b.handshake(null);
        // --- Create hijack: B creates the document A is about to create, as A (A's next seq).
        const id = S.uid('spoof');
        const docA = S.getDoc(a, C, id);
        const aliasA = serverB.alias(a.id);
        for (const src of [aliasA, 'made-up-id', a.id.slice(0, -1) + (a.id.endsWith('A') ? 'B' : 'A')]) {
          const r = await b.request(opMsg(id, null, a.seq, {create: {type: S.TEXT_URI, data: 'B owns this'}},
            {src}), (m) => m.a === 'op' && m.d === id);
          assert.equal(r.error && r.error.code, 'ERR_SRC_NOT_OWNED', JSON.stringify(r));
        }
        await S.create(docA, 'A: ');
        await S.subscribe(docA);
        assert.equal(docA.data, 'A: ');

        // --- Handshake takeover: B names what it sees of A (the alias in A's broadcasts) in its handshake.
        const sub = await b.request({a: 's', c: C, d: id, v: null}, (m) => m.a === 's' && m.d === id);
        assert.equal(sub.error, undefined, JSON.stringify(sub));
        await S.submitOp(docA, [3, 'x']);
        const seen = await b.next((m) => m.a === 'op' && m.d === id && 'op' in m);
        assert.notEqual(seen.src, a.id, 'A\'s real id never reaches B');
        assert.equal(seen.src, aliasA);
        for (const stolen of [seen.src, seen.src.slice(1), 'made-up-id']) {
          const r = await b.request(hs(stolen), (m) => m.a === 'hs');
          assert.equal(r.id, bHs.id, `B keeps its own id after naming ${stolen}`);
        }
        // B tries to commit 20 edits as A (seq 25..44, A's next seqs): refused, nothing applied.
        const v = seen.v + 1;
        for (let seq = 25; seq < 45; seq++) {
          const forged = await b.request(opMsg(id, v, seq, {op: ['z']}, {src: aliasA}),
            (m) => m.a === 'op' && m.d === id && m.seq === seq && ('error' in m || !('op' in m)));
          assert.equal(forged.error && forged.error.code, 'ERR_SRC_NOT_OWNED');
        }
        // --- A's next 20 edits are all acknowledged and all in the document.
        for (let i = 0; i < 20; i++) await S.submitOp(docA, [docA.data.length, String(i % 10)]);
        const expected = 'A: x' + Array.from({length: 20}, (_, i) => String(i % 10)).join('');
        assert.equal(docA.data, expected);

        // --- Broadcast suppression: B's insert reaches A, idle and subscribed.
        const before = docA.version;
        const head = await S.freshFetch(serverB, C, id);
        const bAck = await b.request(opMsg(id, head.v, 100, {op: ['B>']}),
          (m) => m.a === 'op' && m.d === id && m.seq === 100 && !('op' in m));
        assert.equal(bAck.error, undefined, JSON.stringify(bAck));
        await S.waitUntil(() => docA.version > before && docA.data.startsWith('B>'), 5000, 'A receives B\'s edit');

        // Every replica matches a fresh fetch from each instance; the log holds each of A's ops once.
        const freshA = await S.freshFetch(serverA, C, id);
        const freshB = await S.freshFetch(serverB, C, id);
        assert.deepEqual(freshA, freshB);
        assert.equal(docA.data, freshA.data);
        assert.equal(freshA.data, 'B>' + expected);
        const log = (await serverA.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0`)).ops;
        assert.equal(log.length, freshA.v);
        assert.ok(log.every((o) => o.src !== a.id), 'the REST API shows aliases, never ids');
        const byA = log.filter((o) => o.src === aliasA).map((o) => o.seq);
        assert.equal(byA.length, 22, 'A\'s create, its first edit and its 20 edits, each once');
        assert.equal(new Set(byA).size, byA.length);
        assert.deepEqual(a.errors, []);
      } finally {
        b.close();
        a.close();
      }
    });
  });

  it('a reconnecting sharedb client keeps its id (one server secret) and its op in flight is applied once', async () => {
    const {serverA, serverB} = env;
    const a = await S.connect(serverA);
    try {
      const id = S.uid('resume');
      const docA = S.getDoc(a, C, id);
      await S.create(docA, 'abc');
      await S.subscribe(docA);
      const before = a.id;
      const acked = S.submitOp(docA, [3, 'd']);
      a.socket.terminate(); // the frame may or may not have left
      await S.waitState(a, 'disconnected');
      await S.reconnect(a, serverB); // the other instance, where there are two
      assert.equal(a.id, before, 'the minted id is honoured by every instance sharing the secret');
      await acked;
      const fresh = await S.freshFetch(serverB, C, id);
      assert.equal(fresh.data, 'abcd');
      await S.waitUntil(() => docA.version === fresh.v, 5000, 'A at the head');
      assert.equal(docA.data, 'abcd');
      assert.deepEqual(a.errors, []);
    } finally {
      a.close();
    }
  });
}

async function stopAll(servers) {
  for (const s of servers) {
    await s.stop();
    s.cleanup();
  }
}

describe('identity: memory store', () => attacks(async () => {
  const server = await S.startServer({store: 'memory'});
  return {serverA: server, serverB: server, stop: () => stopAll([server])};
}));

describe('identity: sqlite store', () => attacks(async () => {
  const server = await S.startServer({store: 'sqlite'});
  return {serverA: server, serverB: server, stop: () => stopAll([server])};
}));

describe('identity: two instances on Redis', () => attacks(async () => {
  const redis = await startRedis();
  const secret = crypto.randomBytes(32).toString('hex');
  const opts = {storeUri: redis.uri, args: ['--redis-prefix', `id${process.pid}:`], identitySecret: secret};
  const serverA = await S.startServer(opts);
  const serverB = await S.startServer(opts);
  return {serverA, serverB, stop: async () => { await stopAll([serverA, serverB]); redis.stop(); }};
}));
