'use strict';
// Crash durability (otsyncd on SQLite only): several sharedb clients write to
// several documents; every op whose submit callback succeeded (acknowledged)
// is recorded with its (src, seq). The server is SIGKILLed mid-load and
// restarted on the same database file, a few times; the clients reconnect
// (bindToSocket) and resend what was in flight. Afterwards every acknowledged
// op is in the op log exactly once (matched by src and seq), no (src, seq)
// appears twice, and each document's text equals the replay of its op log
// (ot-text-unicode), a fresh fetch and the REST snapshot.
//
// OTSYNC_CRASH_NO_KILL=1 runs the same load and checks without killing (to
// check the test itself against the in-memory ShareDB peer).

const {describe, it, after} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const NO_KILL = process.env.OTSYNC_CRASH_NO_KILL === '1';
const kind = S.serverKind();
const skip = kind !== 'otsyncd' && !NO_KILL ? 'needs otsyncd with SQLite (or OTSYNC_CRASH_NO_KILL=1)' : false;

const C = 'crash';
const CLIENTS = 4;
const DOCS = 3;
const KILLS = Number(process.env.OTSYNC_CRASH_KILLS || 3);
const MAX_OPS_PER_LOOP = 2000;

let server = null;
after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

describe('crash durability', {skip}, () => {
  it(`${KILLS} SIGKILLs under load lose no acknowledged op and duplicate none`, {timeout: 240000}, async () => {
    server = await S.startServer(kind === 'otsyncd' ? {store: 'sqlite'} : {});
    await S.withServerLog(() => server, async () => {
      const seed = S.fuzzSeed();
      console.log(`crash seed ${seed}`);
      const rng = S.makeRng(seed);
      const docIds = Array.from({length: DOCS}, () => S.uid('crash'));
      const setup = await S.connect(server);
      for (const id of docIds) await S.create(S.getDoc(setup, C, id), 'start 😀');
      setup.close();

      const acked = []; // {d, src, seq}
      const failures = [];
      let stopping = false;
      const clients = [];
      for (let i = 0; i < CLIENTS; i++) {
        const conn = await S.connect(server);
        const lastSent = new Map(); // doc id -> {src, seq} of the last op message sent
        conn.on('send', (m) => {
          if (m.a === 'op' && 'op' in m) lastSent.set(m.d, {src: m.src || conn.id, seq: m.seq});
        });
        const docs = docIds.map((id) => S.getDoc(conn, C, id));
        for (const d of docs) await S.subscribe(d);
        clients.push({conn, docs, lastSent});
      }

      // One loop per (client, doc): one op in flight at a time, so each
      // successful callback belongs to the last op message sent for that doc.
      const loops = [];
      for (const client of clients) {
        for (const doc of client.docs) {
          loops.push((async () => {
            for (let n = 0; n < MAX_OPS_PER_LOOP && !stopping; n++) {
              try {
                await S.submitOp(doc, S.randomOp(rng, doc.data), 60000);
                const sent = client.lastSent.get(doc.id);
                acked.push({d: doc.id, src: server.alias(sent.src), seq: sent.seq});  // the log shows aliases
              } catch (e) {
                failures.push(`${doc.id}: ${e.code || ''} ${e.message}`);
              }
              await S.sleep(rng.int(3));
            }
          })());
        }
      }

      for (let k = 0; k < KILLS; k++) {
        await S.sleep(300 + rng.int(500));
        const before = acked.length;
        if (!NO_KILL) {
          await server.kill();
          await Promise.all(clients.map((c) => S.waitState(c.conn, 'disconnected', 10000)));
          server = await server.restart();
          for (const c of clients) await S.reconnect(c.conn, server);
        }
        console.log(`  kill ${k + 1}: ${before} ops acknowledged before it`);
      }
      await S.sleep(300);
      stopping = true;
      await S.withTimeout(Promise.all(loops), 90000, 'the load loops finishing');
      assert.deepEqual(failures, [], 'no submit failed');
      assert.ok(acked.length > 50, `enough load: ${acked.length} ops acknowledged`);

      // Clients converged with the restarted server.
      for (const [di, id] of docIds.entries()) {
        const head = await S.freshFetch(server, C, id);
        await S.waitUntil(() => clients.every((c) => c.docs[di].version === head.v), 20000, `clients at v${head.v}`);
        for (const c of clients) assert.equal(c.docs[di].data, head.data);
      }
      S.closeAll(clients.map((c) => c.conn));

      // One more crash with nothing in flight, then check the store.
      if (!NO_KILL) {
        await server.kill();
        server = await server.restart();
      }
      for (const id of docIds) {
        const head = await S.freshFetch(server, C, id);
        const log = (await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0`)).ops;
        assert.equal(log.length, head.v, `op log length of ${id}`);
        const keys = log.map((o) => `${o.src}/${o.seq}`);
        const dup = keys.filter((k, i) => keys.indexOf(k) !== i);
        assert.deepEqual(dup, [], `(src, seq) twice in the op log of ${id}`);
        const inLog = new Set(keys);
        const missing = acked.filter((a) => a.d === id && !inLog.has(`${a.src}/${a.seq}`));
        assert.deepEqual(missing, [], `acknowledged ops missing from the op log of ${id}`);
        assert.deepEqual(S.replayLog(log), head, `replay of the op log of ${id} = a fresh fetch`);
        const rest = await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}`);
        assert.deepEqual({v: rest.v, type: rest.type, data: rest.data}, head);
      }
      console.log(`  ${acked.length} acknowledged ops verified across ${NO_KILL ? 0 : KILLS + 1} kills`);
    });
  });
});
