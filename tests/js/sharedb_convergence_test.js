'use strict';
// Many unmodified sharedb clients typing random text-unicode edits (emoji and
// other astral characters included, positions in code points) concurrently on
// the same documents, some composing several edits before the ack. Afterwards
// every client's text and version equal a fresh fetch, the REST snapshot and
// the replay of the REST op log, and the op log holds each sent op once.
//
// Bounded: CLIENTS x OPS_PER_CLIENT ops (env OTSYNC_CONVERGENCE_CLIENTS / _OPS),
// an overall time limit, seed from OTSYNC_FUZZ_SEED (printed).

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

// Three I/O threads (more than CI's cores): the clients' connections, and so the documents they
// open first, are spread over all of them, and each op crosses between threads.
const holder = S.useServer(S.serverKind() === 'sharedb' ? {} : {args: ['--threads', '3']});
const T = (fn) => S.logged(holder, fn);
const C = 'conv';

const CLIENTS = Number(process.env.OTSYNC_CONVERGENCE_CLIENTS || 8);
const OPS_PER_CLIENT = Number(process.env.OTSYNC_CONVERGENCE_OPS || 150);
const DOCS = 3;
const LIMIT_MS = 120000;

async function typeConcurrently(rng, docIds, {skew}) {
  const server = holder.server;
  const creator = await S.connect(server);
  for (const id of docIds) {
    await S.create(S.getDoc(creator, C, id), S.randomText(rng, 0, 20));
  }
  creator.close();

  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const conn = await S.connect(server);
    const sentOps = []; // {d, src, seq} of every op message this client sent
    conn.on('send', (m) => {
      if (m.a === 'op') sentOps.push({d: m.d, src: m.src || conn.id, seq: m.seq});
    });
    const docs = docIds.map((id) => S.getDoc(conn, C, id));
    conn.startBulk();
    const subs = docs.map((d) => S.subscribe(d));
    conn.endBulk();
    await Promise.all(subs);
    clients.push({conn, docs, sentOps, acks: []});
  }

  const pickDoc = () => {
    if (!skew) return rng.int(DOCS);
    const r = rng();
    return r < 0.6 ? 0 : r < 0.85 ? 1 : 2;
  };

  // Each client: bursts of 1-4 submits without waiting (the client composes
  // those behind its in-flight op), then yields for 0-3 ms.
  const typing = clients.map(async (client) => {
    let done = 0;
    while (done < OPS_PER_CLIENT) {
      const burst = Math.min(OPS_PER_CLIENT - done, 1 + rng.int(rng() < 0.3 ? 4 : 1));
      for (let k = 0; k < burst; k++) {
        const doc = client.docs[pickDoc()];
        const op = S.randomOp(rng, doc.data);
        client.acks.push(new Promise((resolve, reject) => {
          doc.submitOp(op, (err) => (err ? reject(err) : resolve()));
        }));
      }
      done += burst;
      const pause = rng.int(4);
      await (pause === 0 ? new Promise(setImmediate) : S.sleep(pause));
    }
  });
  await S.withTimeout(Promise.all(typing), LIMIT_MS, 'all clients typing');
  await S.withTimeout(Promise.all(clients.flatMap((c) => c.acks)), LIMIT_MS, 'every submitted op acknowledged');

  try {
    for (let di = 0; di < DOCS; di++) {
      const id = docIds[di];
      const head = await S.freshFetch(server, C, id);
      await S.waitUntil(() => clients.every((c) => c.docs[di].version === head.v), 20000,
        `every client at the head version ${head.v} of ${id}: ` +
        JSON.stringify(clients.map((c) => c.docs[di].version)));
      for (const [ci, c] of clients.entries()) {
        assert.equal(c.docs[di].data, head.data, `client ${ci} text of ${id}`);
        assert.equal(c.docs[di].version, head.v);
        assert.deepEqual(c.docs[di].errors, [], `client ${ci} doc errors`);
      }
      const rest = await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}`);
      assert.deepEqual({v: rest.v, type: rest.type, data: rest.data}, head, `REST snapshot of ${id}`);
      const log = await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0&to=${head.v}`);
      assert.equal(log.ops.length, head.v, 'one op log entry per version');
      assert.deepEqual(S.replayLog(log.ops), head, `replay of the op log of ${id}`);
      // Every op message sent is in the log exactly once, and nothing else is.
      const sent = clients.flatMap((c) => c.sentOps.filter((o) => o.d === id)).map((o) => `${server.alias(o.src)}/${o.seq}`);
      const logged = log.ops.slice(1).map((o) => `${o.src}/${o.seq}`);
      assert.equal(new Set(sent).size, sent.length, 'no op message was sent twice (no reconnects here)');
      assert.deepEqual([...logged].sort(), [...sent].sort(), `op log of ${id} = the ops sent`);
      assert.equal(typeof log.ops[0].ts, 'number');
    }
    for (const c of clients) assert.deepEqual(c.conn.errors, []);
    const submitted = clients.reduce((n, c) => n + c.acks.length, 0);
    const sent = clients.reduce((n, c) => n + c.sentOps.length, 0);
    console.log(`  ${submitted} edits submitted, sent as ${sent} op messages (the rest composed while in flight)`);
    assert.ok(sent < submitted, 'some edits were composed before the ack');
  } finally {
    S.closeAll(clients.map((c) => c.conn));
  }
}

describe('convergence', () => {
  it(`${CLIENTS} clients x ${OPS_PER_CLIENT} random edits on ${DOCS} documents converge`, {timeout: 240000},
    T(async () => {
      const seed = S.fuzzSeed();
      console.log(`convergence seed ${seed} (OTSYNC_FUZZ_SEED=${seed} to repeat)`);
      const rng = S.makeRng(seed);
      await typeConcurrently(rng, [S.uid('c'), S.uid('c'), S.uid('c')], {skew: false});
    }));

  it(`${CLIENTS} clients contending mostly on one document converge`, {timeout: 240000}, T(async () => {
    const seed = (S.fuzzSeed() + 1) >>> 0;
    console.log(`contention seed ${seed}`);
    const rng = S.makeRng(seed);
    await typeConcurrently(rng, [S.uid('hot'), S.uid('warm'), S.uid('cold')], {skew: true});
  }));
});
