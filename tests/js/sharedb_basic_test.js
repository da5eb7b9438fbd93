'use strict';
// The unmodified sharedb@7 client against the server: create (type by name and
// by URI), fetch, subscribe, submit, remote ops, delete and re-create, missing
// documents, bulk subscribe/fetch/unsubscribe (array and versioned-map forms),
// unsubscribe, ping, create races, and the wire shapes the client depends on.
//
//   OTSYNC_SERVER=otsyncd OTSYNCD=/abs/otsyncd node --test sharedb_basic_test.js
//   OTSYNC_SERVER=sharedb node --test sharedb_basic_test.js     (the ShareDB peer)

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const holder = S.useServer();
const T = (fn) => S.logged(holder, fn);
const C = 'basic';

/** Records every message the connection sends (the 'send' event gets the message object). */
function recordSends(connection) {
  const sent = [];
  connection.on('send', (m) => sent.push(JSON.parse(JSON.stringify(m))));
  return sent;
}

async function createDoc(id, text) {
  const conn = await S.connect(holder.server);
  const doc = S.getDoc(conn, C, id);
  await S.create(doc, text);
  conn.close();
}

describe('connection', () => {
  it('connects, gets a string id, answers ping', T(async () => {
    const conn = await S.connect(holder.server);
    try {
      assert.equal(typeof conn.id, 'string');
      assert.ok(conn.id.length > 0);
      await S.ping(conn);
      await S.ping(conn);
      assert.deepEqual(conn.errors, []);
    } finally {
      conn.close();
    }
  }));

  it('the hs reply has protocol 1, the json0 default type and a string id; only a minted hs.id is adopted', T(async () => {
    const raw = await S.RawClient.open(holder.server);
    try {
      const r1 = await raw.handshake(null);
      assert.equal(r1.protocol, 1);
      assert.equal(r1.protocolMinor, 2);
      assert.equal(r1.type, 'http://sharejs.org/types/JSONv0');
      assert.equal(typeof r1.id, 'string');
      assert.ok(r1.id.length > 0);
      // A second hs (as the client sends after `init`) is answered too. ShareDB
      // adopts any truthy hs.id as the connection's src; otsyncd only one it
      // minted (docs/security.md), so a made-up id leaves the given one.
      const r2 = await raw.handshake('my-previous-id');
      const ownId = holder.server.kind === 'otsyncd' ? r1.id : 'my-previous-id';
      assert.equal(r2.id, ownId);
      const id = S.uid();
      const ack = await raw.request(
        {a: 'op', c: C, d: id, v: null, seq: 1, x: {}, create: {type: 'text-unicode', data: 'x'}},
        (m) => m.a === 'op' && m.d === id);
      assert.equal(ack.error, undefined, JSON.stringify(ack));
      assert.equal(ack.src, ownId);
      assert.equal(ack.seq, 1);
      assert.equal(ack.v, 0);
      assert.equal(await raw.request({a: 'pp'}, (m) => m.a === 'pp').then((m) => m.a), 'pp');
    } finally {
      raw.close();
    }
  }));
});

describe('documents', () => {
  it('creates with the type by name and fetches it from another connection', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid();
      const docA = S.getDoc(a, C, id);
      await S.create(docA, 'héllo 😀', 'text-unicode');
      assert.equal(docA.version, 1);
      assert.equal(docA.type.uri, S.TEXT_URI);
      const docB = S.getDoc(b, C, id);
      await S.fetch(docB);
      assert.equal(docB.version, 1);
      assert.equal(docB.type.uri, S.TEXT_URI);
      assert.equal(docB.data, 'héllo 😀');
      const rest = await holder.server.getJson(`/api/v1/docs/${C}/${id}`);
      assert.deepEqual({v: rest.v, type: rest.type, data: rest.data}, {v: 1, type: S.TEXT_URI, data: 'héllo 😀'});
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('creates with the type by URI', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid();
      const docA = S.getDoc(a, C, id);
      await S.create(docA, '𝄞 music', S.TEXT_URI);
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      assert.equal(docB.type.uri, S.TEXT_URI);
      assert.equal(docB.data, '𝄞 music');
      assert.equal(docB.version, 1);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('creates an empty document and one without data', T(async () => {
    const a = await S.connect(holder.server);
    try {
      const d1 = S.getDoc(a, C, S.uid());
      await S.create(d1, '');
      const d2 = S.getDoc(a, C, S.uid());
      await S.create(d2, undefined); // the type's create() default: ''
      for (const d of [d1, d2]) {
        const f = await S.freshFetch(holder.server, C, d.id);
        assert.deepEqual(f, {v: 1, type: S.TEXT_URI, data: ''});
      }
    } finally {
      a.close();
    }
  }));

  it('fetch and subscribe of a missing document: type null, version 0, no data', T(async () => {
    const a = await S.connect(holder.server);
    try {
      const d1 = S.getDoc(a, C, S.uid('missing'));
      await S.fetch(d1);
      assert.equal(d1.type, null);
      assert.equal(d1.version, 0);
      assert.equal(d1.data, undefined);
      const d2 = S.getDoc(a, C, S.uid('missing'));
      await S.subscribe(d2);
      assert.equal(d2.type, null);
      assert.equal(d2.version, 0);
      // The raw snapshot carries an explicit "type": null (a missing type would mean json0).
      const raw = await S.rawConnect(holder.server);
      try {
        const id = S.uid('missing');
        const r = await raw.request({a: 'f', c: C, d: id, v: null}, (m) => m.a === 'f' && m.d === id);
        assert.equal(r.error, undefined);
        assert.equal(r.data.v, 0);
        assert.ok('type' in r.data, `snapshot without "type": ${JSON.stringify(r)}`);
        assert.equal(r.data.type, null);
        assert.ok(r.data.data === undefined || r.data.data === null, JSON.stringify(r));
      } finally {
        raw.close();
      }
    } finally {
      a.close();
    }
  }));

  it('subscribe, submit, and the remote op reaches a second client', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid();
      const docA = S.getDoc(a, C, id);
      await S.create(docA, 'héllo 😀');
      await S.subscribe(docA);
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      const got = S.once(docB, 'op');
      await S.submitOp(docA, [7, ' wörld 🎉']);
      const [op, source] = await got;
      assert.deepEqual(op, [7, ' wörld 🎉']);
      assert.equal(source, false);
      assert.equal(docB.data, 'héllo 😀 wörld 🎉');
      assert.equal(docB.version, 2);
      assert.equal(docA.version, 2);
      // and back: a delete by count and by text
      const gotA = S.once(docA, 'op');
      await S.submitOp(docB, [{d: 'héllo '}]);
      await gotA;
      assert.equal(docA.data, '😀 wörld 🎉');
      await S.submitOp(docB, [1, {d: 7}]);
      await S.waitUntil(() => docA.version === 4, 5000, 'A at v4');
      assert.equal(docA.data, '😀🎉');
      assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 4, type: S.TEXT_URI, data: '😀🎉'});
      assert.deepEqual([a.errors, b.errors, docA.errors, docB.errors], [[], [], [], []]);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('the ack carries src, seq and the commit version and no body; broadcasts carry src, seq, v and op', T(async () => {
    const id = S.uid();
    const ra = await S.rawConnect(holder.server);
    const rb = await S.rawConnect(holder.server);
    // Others see an author's alias; a connection sees its own ops under its own id.
    const alias = (src) => holder.server.alias(src);
    try {
      const create = {a: 'op', c: C, d: id, v: 0, seq: 1, x: {}, create: {type: 'text-unicode', data: 'abc'}};
      const ack0 = await ra.request(create, (m) => m.a === 'op' && m.d === id);
      assert.deepEqual(ack0, {a: 'op', c: C, d: id, src: ra.id, seq: 1, v: 0});
      const subA = await ra.request({a: 's', c: C, d: id, v: 1}, (m) => m.a === 's');
      assert.deepEqual(subA, {a: 's', c: C, d: id}, 'a versioned subscribe is answered without data');
      const sub = await rb.request({a: 's', c: C, d: id, v: null}, (m) => m.a === 's');
      assert.deepEqual(sub, {a: 's', c: C, d: id, data: {v: 1, data: 'abc', type: S.TEXT_URI}});
      const ack1 = await ra.request({a: 'op', c: C, d: id, v: 1, seq: 2, x: {}, op: [3, 'd']},
        (m) => m.a === 'op' && m.d === id);
      assert.deepEqual(ack1, {a: 'op', c: C, d: id, src: ra.id, seq: 2, v: 1});
      const bc = await rb.next((m) => m.a === 'op' && m.v === 1);
      assert.deepEqual(bc, {a: 'op', c: C, d: id, v: 1, src: alias(ra.id), seq: 2, op: [3, 'd']});
      // B submits at v1 (behind): first the op it was transformed against, then the ack at v2.
      rb.send({a: 'op', c: C, d: id, v: 1, seq: 1, x: {}, op: ['X']});
      const missing = await rb.next((m) => m.a === 'op' && m.d === id, 5000, 'missing op or ack');
      assert.deepEqual(missing, {a: 'op', c: C, d: id, v: 1, src: alias(ra.id), seq: 2, op: [3, 'd']},
        'the op B was transformed against must come before its ack');
      const ack2 = await rb.next((m) => m.a === 'op' && m.d === id);
      assert.deepEqual(ack2, {a: 'op', c: C, d: id, src: rb.id, seq: 1, v: 2});
      // A never gets its own op back as a broadcast, and gets B's transformed op.
      const bcA = await ra.next((m) => m.a === 'op' && m.d === id);
      assert.deepEqual(bcA, {a: 'op', c: C, d: id, v: 2, src: alias(rb.id), seq: 1, op: ['X']});
      // Versioned fetch: the ops from v, then a reply without data.
      const fr = await ra.request({a: 'f', c: C, d: id, v: 1}, (m) => m.a === 'f');
      assert.deepEqual(fr, {a: 'f', c: C, d: id});
      const ops = ra.inbox.filter((m) => m.a === 'op' && m.d === id);
      ra.inbox = [];
      assert.deepEqual(ops, [
        {a: 'op', c: C, d: id, v: 1, src: ra.id, seq: 2, op: [3, 'd']},
        {a: 'op', c: C, d: id, v: 2, src: alias(rb.id), seq: 1, op: ['X']},
      ]);
      const snap = await ra.request({a: 'f', c: C, d: id, v: null}, (m) => m.a === 'f');
      assert.deepEqual(snap, {a: 'f', c: C, d: id, data: {v: 3, data: 'Xabcd', type: S.TEXT_URI}});
    } finally {
      ra.close();
      rb.close();
    }
  }));

  it('a submitter behind by several versions gets exactly the ops [v, commit v) before its ack', T(async () => {
    const id = S.uid();
    const ra = await S.rawConnect(holder.server);
    const rb = await S.rawConnect(holder.server); // not subscribed: it only sees what the submit sends
    try {
      await ra.request({a: 'op', c: C, d: id, v: 0, seq: 1, x: {}, create: {type: 'text-unicode', data: 'abc'}},
        (m) => m.a === 'op');
      for (let v = 1; v <= 3; v++) {
        await ra.request({a: 'op', c: C, d: id, v, seq: v + 1, x: {}, op: [String(v)]}, (m) => m.a === 'op');
      }
      rb.send({a: 'op', c: C, d: id, v: 1, seq: 1, x: {}, op: ['X']});
      const got = [];
      for (let i = 0; i < 4; i++) got.push(await rb.next((m) => m.a === 'op' && m.d === id));
      assert.deepEqual(got, [
        {a: 'op', c: C, d: id, v: 1, src: holder.server.alias(ra.id), seq: 2, op: ['1']},
        {a: 'op', c: C, d: id, v: 2, src: holder.server.alias(ra.id), seq: 3, op: ['2']},
        {a: 'op', c: C, d: id, v: 3, src: holder.server.alias(ra.id), seq: 4, op: ['3']},
        {a: 'op', c: C, d: id, src: rb.id, seq: 1, v: 4},
      ]);
      await rb.expectNone((m) => m.a === 'op', 100);
      assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 5, type: S.TEXT_URI, data: 'X321abc'}); // the submitted op is 'left': it wins the ties
    } finally {
      ra.close();
      rb.close();
    }
  }));

  it('deletes and re-creates a document; a subscriber follows', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid();
      const docA = S.getDoc(a, C, id);
      await S.create(docA, 'first');
      await S.subscribe(docA);
      await S.submitOp(docA, [5, '!']);
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      assert.equal(docB.data, 'first!');
      const gotDel = S.once(docB, 'del');
      await S.del(docA);
      assert.equal(docA.type, null);
      assert.equal(docA.version, 3);
      await gotDel;
      assert.equal(docB.type, null);
      assert.equal(docB.data, undefined);
      assert.equal(docB.version, 3);
      assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 3, type: null, data: undefined});
      // Editing a deleted document fails with ERR_DOC_DOES_NOT_EXIST.
      const raw = await S.rawConnect(holder.server);
      try {
        const r = await raw.request({a: 'op', c: C, d: id, v: 3, seq: 1, x: {}, op: ['x']}, (m) => m.a === 'op');
        assert.equal(r.error && r.error.code, 'ERR_DOC_DOES_NOT_EXIST', JSON.stringify(r));
      } finally {
        raw.close();
      }
      const gotCreate = S.once(docB, 'create');
      await S.create(docA, 'second 😀');
      assert.equal(docA.version, 4);
      await gotCreate;
      assert.equal(docB.type.uri, S.TEXT_URI);
      assert.equal(docB.data, 'second 😀');
      assert.equal(docB.version, 4);
      await S.submitOp(docB, [6, {d: 2}]);
      await S.waitUntil(() => docA.version === 5, 5000, 'A at v5');
      assert.equal(docA.data, 'second');
      const rest = await holder.server.getJson(`/api/v1/docs/${C}/${id}/ops?from=0&to=5`);
      assert.deepEqual(rest.ops.map((o) => (o.create ? 'create' : o.del ? 'del' : 'op')),
        ['create', 'op', 'del', 'create', 'op']);
      assert.deepEqual(rest.ops.map((o) => o.v), [0, 1, 2, 3, 4]);
      assert.deepEqual([a.errors, b.errors, docA.errors, docB.errors], [[], [], [], []]);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('two clients racing a create: one wins, the other gets ERR_DOC_ALREADY_CREATED and converges', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid('race');
      const docA = S.getDoc(a, C, id);
      const docB = S.getDoc(b, C, id);
      const results = await Promise.allSettled([S.create(docA, 'from A'), S.create(docB, 'from B')]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.equal(lost.length, 1);
      assert.equal(lost[0].reason.code, 'ERR_DOC_ALREADY_CREATED', String(lost[0].reason));
      const winner = results[0].status === 'fulfilled' ? docA : docB;
      const loser = winner === docA ? docB : docA;
      // The loser's hard rollback re-fetches the winner's document.
      await S.waitUntil(() => loser.version === 1 && loser.type, 5000, 'the loser refetched');
      assert.equal(loser.data, winner.data);
      assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 1, type: S.TEXT_URI, data: winner.data});
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('an op from a future version gets ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT', T(async () => {
    const raw = await S.rawConnect(holder.server);
    try {
      const id = S.uid();
      await raw.request({a: 'op', c: C, d: id, v: 0, seq: 1, x: {}, create: {type: 'text-unicode', data: 'ab'}},
        (m) => m.a === 'op');
      const req = {a: 'op', c: C, d: id, v: 5, seq: 2, x: {}, op: [1, 'x']};
      const r = await raw.request(req, (m) => m.a === 'op');
      // The fields a client matches the reply by are echoed (otsyncd echoes only those, never the op).
      for (const k of ['a', 'c', 'd', 'v', 'seq']) assert.deepEqual(r[k], req[k], `"${k}" is echoed`);
      assert.equal(r.error.code, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT');
      assert.equal(typeof r.error.message, 'string');
      assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 1, type: S.TEXT_URI, data: 'ab'});
    } finally {
      raw.close();
    }
  }));
});

describe('subscriptions', () => {
  it('unsubscribe stops the ops', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const id = S.uid();
      const docA = S.getDoc(a, C, id);
      await S.create(docA, 'abc');
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      await S.submitOp(docA, [3, 'd']);
      await S.waitUntil(() => docB.version === 2, 5000, 'B at v2');
      await S.unsubscribe(docB);
      assert.equal(docB.subscribed, false);
      let got = 0;
      docB.on('op', () => got++);
      await S.submitOp(docA, [4, 'e']);
      await S.sleep(300);
      assert.equal(got, 0, 'no op after unsubscribe');
      assert.equal(docB.version, 2);
      // Re-subscribing from the known version catches up.
      await S.subscribe(docB);
      assert.equal(docB.version, 3);
      assert.equal(docB.data, 'abcde');
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('bulk subscribe (array form), then bulk unsubscribe', T(async () => {
    const ids = [S.uid('bulk'), S.uid('bulk'), S.uid('bulk'), S.uid('bulk-missing')];
    await createDoc(ids[0], 'zero');
    await createDoc(ids[1], 'one 😀');
    await createDoc(ids[2], 'two');
    const c = await S.connect(holder.server);
    const w = await S.connect(holder.server);
    try {
      const sent = recordSends(c);
      const docs = ids.map((id) => S.getDoc(c, C, id));
      c.startBulk();
      const subs = docs.map((d) => S.subscribe(d));
      c.endBulk();
      await Promise.all(subs);
      const bs = sent.filter((m) => m.a === 'bs');
      assert.equal(bs.length, 1, JSON.stringify(sent));
      assert.ok(Array.isArray(bs[0].b));
      assert.deepEqual([...bs[0].b].sort(), [...ids].sort());
      assert.deepEqual(docs.map((d) => d.data), ['zero', 'one 😀', 'two', undefined]);
      assert.deepEqual(docs.map((d) => d.version), [1, 1, 1, 0]);
      assert.deepEqual(docs.map((d) => d.type && d.type.uri), [S.TEXT_URI, S.TEXT_URI, S.TEXT_URI, null]);
      // All subscribed: edits from another client arrive.
      for (let i = 0; i < 3; i++) {
        const dw = S.getDoc(w, C, ids[i]);
        await S.fetch(dw);
        await S.submitOp(dw, ['>']);
      }
      await S.waitUntil(() => docs.slice(0, 3).every((d) => d.version === 2), 5000, 'all at v2');
      assert.deepEqual(docs.map((d) => d.data), ['>zero', '>one 😀', '>two', undefined]);
      // Bulk unsubscribe.
      c.startBulk();
      const unsubs = docs.map((d) => S.unsubscribe(d));
      c.endBulk();
      await Promise.all(unsubs);
      const bu = sent.filter((m) => m.a === 'bu');
      assert.equal(bu.length, 1, JSON.stringify(sent.slice(-3)));
      assert.deepEqual([...bu[0].b].sort(), [...ids].sort());
      await S.submitOp(S.getDoc(w, C, ids[0]), ['<']);
      await S.sleep(300);
      assert.equal(docs[0].version, 2, 'no op after bulk unsubscribe');
      assert.deepEqual([c.errors, w.errors], [[], []]);
    } finally {
      S.closeAll([c, w]);
    }
  }));

  it('bulk subscribe with versions (map form) on reconnect catches up with the ops', T(async () => {
    const ids = [S.uid('bmap'), S.uid('bmap'), S.uid('bmap')];
    for (const id of ids) await createDoc(id, `text of ${id.slice(-6)}`);
    const c = await S.connect(holder.server);
    const w = await S.connect(holder.server);
    try {
      const sent = recordSends(c);
      const docs = ids.map((id) => S.getDoc(c, C, id));
      c.startBulk();
      const subs = docs.map((d) => S.subscribe(d));
      c.endBulk();
      await Promise.all(subs);
      const before = docs.map((d) => d.data);
      await S.dropSocket(c);
      // While c is away, w edits two documents (the first twice).
      const w0 = S.getDoc(w, C, ids[0]);
      const w1 = S.getDoc(w, C, ids[1]);
      await S.fetch(w0);
      await S.fetch(w1);
      await S.submitOp(w0, ['A']);
      await S.submitOp(w0, [1, '𐍈']);
      await S.submitOp(w1, [{d: 2}]);
      sent.length = 0;
      await S.reconnect(c, holder.server);
      await S.waitUntil(() => docs[0].version === 3 && docs[1].version === 2 && docs[2].subscribed,
        5000, 'caught up after reconnect');
      const bs = sent.filter((m) => m.a === 'bs');
      assert.equal(bs.length, 1, JSON.stringify(sent));
      assert.ok(!Array.isArray(bs[0].b) && typeof bs[0].b === 'object', JSON.stringify(bs[0]));
      assert.deepEqual(bs[0].b, {[ids[0]]: 1, [ids[1]]: 1, [ids[2]]: 1});
      assert.equal(docs[0].data, `A𐍈${before[0]}`);
      assert.equal(docs[1].data, before[1].slice(2));
      assert.equal(docs[2].data, before[2]);
      assert.equal(docs[2].version, 1);
      // Still subscribed to all three.
      const w2 = S.getDoc(w, C, ids[2]);
      await S.fetch(w2);
      await S.submitOp(w2, ['#']);
      await S.waitUntil(() => docs[2].version === 2, 5000, 'third doc at v2');
      assert.deepEqual([c.errors, w.errors, ...docs.map((d) => d.errors)], [[], [], [], [], []]);
    } finally {
      S.closeAll([c, w]);
    }
  }));

  it('bulk fetch: array form for new docs, map form for docs at known versions', T(async () => {
    const ids = [S.uid('bf'), S.uid('bf'), S.uid('bf')];
    for (const id of ids) await createDoc(id, id.slice(-4));
    const c = await S.connect(holder.server);
    const w = await S.connect(holder.server);
    try {
      const sent = recordSends(c);
      const docs = ids.map((id) => S.getDoc(c, C, id));
      c.startBulk();
      let fetches = docs.map((d) => S.fetch(d));
      c.endBulk();
      await Promise.all(fetches);
      let bf = sent.filter((m) => m.a === 'bf');
      assert.equal(bf.length, 1, JSON.stringify(sent));
      assert.ok(Array.isArray(bf[0].b));
      assert.deepEqual(docs.map((d) => d.data), ids.map((id) => id.slice(-4)));
      // Edit two, then fetch again inside a bulk: the client sends the map form.
      for (const id of ids.slice(0, 2)) {
        const dw = S.getDoc(w, C, id);
        await S.fetch(dw);
        await S.submitOp(dw, [{d: 1}]);
      }
      sent.length = 0;
      c.startBulk();
      fetches = docs.map((d) => S.fetch(d));
      c.endBulk();
      await Promise.all(fetches);
      bf = sent.filter((m) => m.a === 'bf');
      assert.equal(bf.length, 1, JSON.stringify(sent));
      assert.deepEqual(bf[0].b, {[ids[0]]: 1, [ids[1]]: 1, [ids[2]]: 1});
      assert.deepEqual(docs.map((d) => d.version), [2, 2, 1]);
      assert.deepEqual(docs.map((d) => d.data), ids.map((id, i) => (i < 2 ? id.slice(-3) : id.slice(-4))));
    } finally {
      S.closeAll([c, w]);
    }
  }));

  it('raw bs/bf: replies and per-doc snapshots', T(async () => {
    const ids = [S.uid('rb'), S.uid('rb')];
    await createDoc(ids[0], 'ü');
    const raw = await S.rawConnect(holder.server);
    try {
      const bs = await raw.request({a: 'bs', c: C, b: ids}, (m) => m.a === 'bs');
      assert.deepEqual(bs, {a: 'bs', c: C, data: {
        [ids[0]]: {v: 1, data: 'ü', type: S.TEXT_URI},
        [ids[1]]: {v: 0, type: null},
      }});
      const bf = await raw.request({a: 'bf', c: C, b: {[ids[0]]: 0, [ids[1]]: 0}}, (m) => m.a === 'bf');
      assert.deepEqual(bf, {a: 'bf', c: C, b: {[ids[0]]: 0, [ids[1]]: 0}});
      const ops = raw.inbox.filter((m) => m.a === 'op');
      assert.equal(ops.length, 1, raw.dump());
      assert.deepEqual(ops[0], {a: 'op', c: C, d: ids[0], v: 0, src: ops[0].src, seq: 1,
        create: {type: S.TEXT_URI, data: 'ü'}});
      const bu = await raw.request({a: 'bu', c: C, b: ids}, (m) => m.a === 'bu');
      assert.deepEqual(bu, {a: 'bu', c: C, b: ids});
    } finally {
      raw.close();
    }
  }));
});
