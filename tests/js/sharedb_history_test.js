'use strict';
// Read-only history: connection.fetchSnapshot (nf) at every version of a
// document that was created, edited, deleted, re-created and edited again;
// fetchSnapshotByTimestamp (nt) at recorded times; versions beyond the head;
// missing documents; and the REST ?v=N snapshot agrees with nf.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const holder = S.useServer();
const T = (fn) => S.logged(holder, fn);
const C = 'history';

/**
 * Builds a history on a fresh doc. Returns {id, states, times}: states[v] is
 * {type, data} at version v; times[v] a wall-clock ms at which v was the head
 * (ops are spaced so that no two share a millisecond).
 */
async function buildHistory(rng) {
  const conn = await S.connect(holder.server);
  const id = S.uid('hist');
  const doc = S.getDoc(conn, C, id);
  const states = [{type: null, data: undefined}];
  const times = [];
  const mark = async () => {
    await S.sleep(3);
    times[doc.version || 0] = Date.now();
    await S.sleep(3);
  };
  try {
    await S.fetch(doc);
    await mark();
    await S.create(doc, 'first 😀');
    states.push({type: S.TEXT_URI, data: doc.data});
    await mark();
    for (let i = 0; i < 12; i++) {
      await S.submitOp(doc, S.randomOp(rng, doc.data));
      states.push({type: S.TEXT_URI, data: doc.data});
      await mark();
    }
    await S.del(doc);
    states.push({type: null, data: undefined});
    await mark();
    await S.create(doc, 'second 𝄞');
    states.push({type: S.TEXT_URI, data: doc.data});
    await mark();
    for (let i = 0; i < 5; i++) {
      await S.submitOp(doc, S.randomOp(rng, doc.data));
      states.push({type: S.TEXT_URI, data: doc.data});
      await mark();
    }
    assert.equal(doc.version, states.length - 1);
    return {id, states, times};
  } finally {
    conn.close();
  }
}

describe('history', () => {
  let history;
  const getHistory = async () => {
    if (!history) {
      const seed = S.fuzzSeed();
      console.log(`history seed ${seed}`);
      history = await buildHistory(S.makeRng(seed));
    }
    return history;
  };

  it('fetchSnapshot (nf) at every version', T(async () => {
    const {id, states} = await getHistory();
    const conn = await S.connect(holder.server);
    try {
      for (let v = 0; v < states.length; v++) {
        const snap = await S.fetchSnapshot(conn, C, id, v);
        assert.equal(snap.v, v);
        assert.equal(snap.id, id);
        assert.equal(snap.type, states[v].type, `type at v${v}`);
        assert.equal(snap.data, states[v].data, `data at v${v}`);
      }
      const latest = await S.fetchSnapshot(conn, C, id, null);
      assert.equal(latest.v, states.length - 1);
      assert.equal(latest.data, states[states.length - 1].data);
      assert.deepEqual(conn.errors, []);
    } finally {
      conn.close();
    }
  }));

  it('fetchSnapshot beyond the head is an error', T(async () => {
    const {id, states} = await getHistory();
    const conn = await S.connect(holder.server);
    try {
      for (const v of [states.length, states.length + 100]) {
        await assert.rejects(S.fetchSnapshot(conn, C, id, v), (e) => {
          // ShareDB's in-memory DB fails with "Missing ops" and no code; otsyncd says which.
          if (holder.server.kind === 'otsyncd') assert.equal(e.code, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT');
          return true;
        });
      }
      // The connection still works.
      assert.equal((await S.fetchSnapshot(conn, C, id, 1)).v, 1);
    } finally {
      conn.close();
    }
  }));

  it('fetchSnapshot of a missing document: v 0, type null', T(async () => {
    const conn = await S.connect(holder.server);
    try {
      const id = S.uid('nohist');
      for (const v of [null, 0]) {
        const snap = await S.fetchSnapshot(conn, C, id, v);
        assert.equal(snap.v, 0);
        assert.equal(snap.type, null);
        assert.equal(snap.data, undefined);
      }
      const byTs = await S.fetchSnapshotByTimestamp(conn, C, id, Date.now());
      assert.equal(byTs.v, 0);
      assert.equal(byTs.type, null);
    } finally {
      conn.close();
    }
  }));

  it('fetchSnapshotByTimestamp (nt) at recorded times', T(async () => {
    const {id, states, times} = await getHistory();
    const conn = await S.connect(holder.server);
    try {
      for (let v = 0; v < states.length; v++) {
        const snap = await S.fetchSnapshotByTimestamp(conn, C, id, times[v]);
        assert.equal(snap.v, v, `version at ts ${times[v]}`);
        assert.equal(snap.type, states[v].type);
        assert.equal(snap.data, states[v].data);
      }
      const latest = await S.fetchSnapshotByTimestamp(conn, C, id, null);
      assert.equal(latest.v, states.length - 1);
      const future = await S.fetchSnapshotByTimestamp(conn, C, id, Date.now() + 3600e3);
      assert.equal(future.v, states.length - 1);
      const past = await S.fetchSnapshotByTimestamp(conn, C, id, times[0] - 3600e3);
      assert.equal(past.v, 0);
      assert.equal(past.type, null);
    } finally {
      conn.close();
    }
  }));

  it('the raw nf/nt replies', T(async () => {
    const {id, states} = await getHistory();
    const raw = await S.rawConnect(holder.server);
    try {
      const r = await raw.request({a: 'nf', id: 7, c: C, d: id, v: 1}, (m) => m.a === 'nf');
      assert.equal(r.id, 7);
      assert.equal(r.v, 1);
      assert.equal(r.type, S.TEXT_URI);
      assert.equal(r.data, states[1].data);
      const t = await raw.request({a: 'nt', id: 8, c: C, d: id, ts: null}, (m) => m.a === 'nt');
      assert.equal(t.id, 8);
      assert.equal(t.v, states.length - 1);
      const e = await raw.request({a: 'nf', id: 9, c: C, d: id, v: states.length + 5}, (m) => m.a === 'nf');
      assert.ok(e.error, JSON.stringify(e));
      assert.equal(e.id, 9);
      if (holder.server.kind === 'otsyncd') assert.equal(e.error.code, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT');
    } finally {
      raw.close();
    }
  }));

  it('REST GET ?v=N agrees at every version; the op log has ts', T(async () => {
    const {id, states, times} = await getHistory();
    for (let v = 0; v < states.length; v++) {
      const r = await holder.server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}?v=${v}`);
      assert.equal(r.v, v);
      assert.equal(r.id, id);
      assert.equal(r.collection, C);
      assert.equal(r.type, states[v].type, `REST type at v${v}`);
      assert.equal(r.data == null ? undefined : r.data, states[v].data, `REST data at v${v}`);
    }
    const log = (await holder.server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0`)).ops;
    assert.equal(log.length, states.length - 1);
    for (const op of log) {
      assert.equal(typeof op.ts, 'number');
      assert.ok(op.ts > times[op.v] && op.ts <= times[op.v + 1], `ts of v${op.v} within its window`);
    }
    // A range.
    const mid = (await holder.server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=3&to=6`)).ops;
    assert.deepEqual(mid.map((o) => o.v), [3, 4, 5]);
    // A missing document over REST: version 0, no type.
    const missing = await holder.server.getJson(`/api/v1/docs/${C}/${S.uid('nope')}`);
    assert.equal(missing.v, 0);
    assert.equal(missing.type, null);
    // The list has the document.
    const list = await holder.server.getJson(`/api/v1/docs/${C}`);
    const entry = list.documents.find((d) => d.id === id);
    assert.deepEqual(entry, {id, v: states.length - 1, type: S.TEXT_URI});
  }));
});
