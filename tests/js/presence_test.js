'use strict';
// Presence (ShareDB 7's protocol) against otsyncd, with the unmodified sharedb
// client and the text-unicode type from clients/js (transformPresence added):
// subscribe, submit (the echo resolves the callback), receive, the `pr`
// re-send to late subscribers, `p: null` on destroy, on unsubscribe and on
// disconnect, the reconnecting client's cursor coming back; the server moving
// a stale presence through the ops committed since (own op: the caret follows
// the text); cursors staying right under concurrent typing (randomised, every
// client's view of every remote cursor equals what its owner holds); and
// hostile presence messages (limits, mismatched channels, unknown types).
//
// Bounded: every wait has a timeout; the server is stopped by PID.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');
const presenceType = require('../../clients/js');

presenceType.register(S.ShareDB, S.otText);

const C = 'presence';
// Against the ShareDB peer (OTSYNC_SERVER=sharedb: ShareDB 7 with presence on and the same type) the
// behaviour ShareDB defines runs too; what is otsyncd's own (the server-side transform, limits) is skipped.
const onPeer = S.serverKind() === 'sharedb';
const otsyncOnly = onPeer ? {skip: 'otsyncd\'s own behaviour'} : {};

const P = require('./support/presence');
const {withCallback, expectShown} = P;
const docPresence = (connection, id) => P.docPresence(connection, C, id);
const local = P.localPresence;
const submit = P.submitPresence;
const openDoc = (connection, id, text) => P.openDoc(connection, C, id, text);

describe('presence', () => {
  const h = S.useServer({args: onPeer ? ['--presence'] : []});
  // No ops cached at all: every op older than the head is out of the cache.
  const uncached = S.useServer({args: onPeer ? ['--presence'] : ['--op-cache-bytes', '0']});

  it('relays a cursor to the other subscribers with the sender\'s src, echoes it as the ack, and clears it on destroy',
    S.logged(h, async () => {
      const id = S.uid('basic');
      const a = await S.connect(h.server);
      const b = await S.connect(h.server);
      try {
        const docA = await openDoc(a, id, 'hello');
        const docB = await openDoc(b, id);
        const pa = await docPresence(a, id);
        const pb = await docPresence(b, id);
        const cursor = local(pa, 'cursor-a');
        await submit(cursor, {index: 2, length: 1});  // resolves on the server's echo
        await expectShown(pb, 'cursor-a', {index: 2, length: 1});
        // The owner's own typing at the caret moves it; another author's insert before it too.
        await S.submitOp(docA, [2, 'XY']);
        await expectShown(pb, 'cursor-a', {index: 4, length: 1});
        await S.submitOp(docB, ['😀']);
        await expectShown(pb, 'cursor-a', {index: 5, length: 1});
        await S.waitUntil(() => docA.data === docB.data, 10000, 'A has B\'s insert');
        assert.equal(docA.data, '😀heXYllo');
        await withCallback('destroy', (k) => cursor.destroy(k));
        await expectShown(pb, 'cursor-a', null);
        assert.deepEqual(pa.errors, []);
        assert.deepEqual(pb.errors, []);
        assert.deepEqual(cursor.errors, []);
      } finally {
        S.closeAll([a, b]);
      }
    }));

  it('brings existing cursors to a late subscriber (pr) and clears a dropped client\'s cursor', S.logged(h, async () => {
    const id = S.uid('late');
    const a = await S.connect(h.server);
    const b = await S.connect(h.server);
    let c;
    try {
      await openDoc(a, id, 'abcdef');
      const pa = await docPresence(a, id);
      await submit(local(pa, 'early'), {index: 3, length: 0, name: 'Ada'});
      await openDoc(b, id);
      const pb = await docPresence(b, id);  // its ps makes the others send theirs again
      await expectShown(pb, 'early', {index: 3, length: 0, name: 'Ada'});
      // A third client subscribes, then drops: the others see its cursor go.
      c = await S.connect(h.server);
      await openDoc(c, id);
      const pc = await docPresence(c, id);
      await submit(local(pc, 'dropper'), {index: 1, length: 2});
      await expectShown(pb, 'dropper', {index: 1, length: 2});
      await expectShown(pa, 'dropper', {index: 1, length: 2});
      c.close();
      await expectShown(pb, 'dropper', null);
      await expectShown(pa, 'dropper', null);
      assert.deepEqual(pb.received.get('early'), {index: 3, length: 0, name: 'Ada'});
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('clears cursors on unsubscribe, and restores a reconnecting client\'s cursor', S.logged(h, async () => {
    const id = S.uid('reconnect');
    const a = await S.connect(h.server);
    const b = await S.connect(h.server);
    try {
      await openDoc(a, id, 'some text');
      await openDoc(b, id);
      const pa = await docPresence(a, id);
      const pb = await docPresence(b, id);
      await submit(local(pa, 'mover'), {index: 4, length: 0});
      await expectShown(pb, 'mover', {index: 4, length: 0});
      // The socket drops: B sees the cursor go; A reconnects and sends it again (pr to itself).
      await S.dropSocket(a);
      await expectShown(pb, 'mover', null);
      await S.reconnect(a, h.server);
      await expectShown(pb, 'mover', {index: 4, length: 0});
      await withCallback('unsubscribe', (k) => pa.unsubscribe(k));
      await expectShown(pb, 'mover', null);
      assert.deepEqual(pb.errors, []);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('moves a presence sent at an old version through the ops since, the author\'s own op carrying the caret', otsyncOnly,
    S.logged(h, async () => {
      const id = S.uid('stale');
      const ch = `${C}.${id}`;
      const author = await S.RawClient.open(h.server);
      const watcher = await S.RawClient.open(h.server);
      try {
        await author.handshake();
        await watcher.handshake();
        await author.request({a: 's', c: C, d: id}, (m) => m.a === 's');
        await author.request({a: 'op', c: C, d: id, v: 0, seq: 1, create: {type: S.TEXT_URI, data: 'abc'}},
          (m) => m.a === 'op' && m.seq === 1);
        await watcher.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
        await author.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
        // v1 -> v2: the author inserts "XY" at 1; v2 -> v3: it deletes the first character.
        await author.request({a: 'op', c: C, d: id, v: 1, seq: 2, op: [1, 'XY']}, (m) => m.a === 'op' && m.seq === 2);
        await author.request({a: 'op', c: C, d: id, v: 2, seq: 3, op: [{d: 1}]}, (m) => m.a === 'op' && m.seq === 3);
        // A caret at 1 (right where "XY" went in) and a selection over "bc", both sent as of v1.
        const base = {a: 'p', ch, c: C, d: id, v: 1, t: S.TEXT_URI};
        const echo = await author.request({...base, id: 'caret', pv: 0, p: {index: 1, length: 0}},
          (m) => m.a === 'p' && m.id === 'caret');
        assert.deepEqual(echo.p, {index: 2, length: 0});  // 1 -> 3 (own insert) -> 2 (delete before it)
        assert.equal(echo.v, 3);
        const seen = await watcher.next((m) => m.a === 'p' && m.id === 'caret');
        assert.deepEqual(seen.p, {index: 2, length: 0});
        assert.equal(seen.v, 3);
        assert.equal(typeof seen.src, 'string');
        assert.notEqual(seen.src, author.id, 'the real id never reaches another client');
        await author.request({...base, id: 'sel', pv: 0, p: {index: 1, length: 2, color: '#c00'}},
          (m) => m.a === 'p' && m.id === 'sel');
        const sel = await watcher.next((m) => m.a === 'p' && m.id === 'sel');
        assert.deepEqual(sel.p, {index: 2, length: 2, color: '#c00'});  // "bc" is at 2..4 in "XYbc"... moved with it
        // Another author's op does not carry the caret: a presence from the watcher at the same spot.
        await watcher.request({a: 'ps', ch, seq: 2}, (m) => m.a === 'ps');
        const other = await watcher.request({...base, id: 'w', pv: 0, p: {index: 1, length: 0}},
          (m) => m.a === 'p' && m.id === 'w');
        assert.deepEqual(other.p, {index: 0, length: 0});  // 1 -> 1 (not its insert) -> 0
        // A delete of the document clears presence at versions before it.
        await author.request({a: 'op', c: C, d: id, v: 3, seq: 4, del: true}, (m) => m.a === 'op' && m.seq === 4);
        const gone = await author.request({...base, id: 'caret', pv: 1, v: 3, p: {index: 1, length: 0}},
          (m) => m.a === 'p' && m.id === 'caret');
        assert.equal(gone.p, null);
        assert.equal(gone.v, 4);
      } finally {
        author.close();
        watcher.close();
      }
    }));

  // Not on the ShareDB peer: ShareDB relays a cursor at the version it was sent at, and the sharedb
  // client, which files its own unacknowledged ops under the wrong version in its presence cache, now
  // and then keeps such a cursor stale for good (seen in CI). otsyncd moves it to the head first.
  it('keeps every remote cursor where its owner has it while everyone types (randomised)', otsyncOnly,
    S.logged(h, async () => {
    const id = S.uid('concurrent');
    const N = 3;
    const connections = [];
    try {
      for (let i = 0; i < N; i++) connections.push(await S.connect(h.server));
      const docs = [await openDoc(connections[0], id, 'the quick brown fox')];
      for (let i = 1; i < N; i++) docs.push(await openDoc(connections[i], id));
      const presences = [];
      for (let i = 0; i < N; i++) presences.push(await docPresence(connections[i], id));
      const locals = presences.map((p, i) => local(p, `user-${i}`));
      await P.typeWithCursors(docs, presences, locals, {rounds: 4, seed: 12345});
      for (const p of presences) assert.deepEqual(p.errors, []);
      for (const l of locals) assert.deepEqual(l.errors, []);
      const fresh = await S.freshFetch(h.server, C, id);
      assert.equal(fresh.data, docs[0].data);
    } finally {
      S.closeAll(connections);
    }
  }));

  it('leaves no ghost when owners leave while others type (a removal the client took for stale is given again)',
    otsyncOnly, S.logged(h, async () => {
      // The sharedb client handles a `p: null` only once its own edits are acknowledged; if the
      // document moved on meanwhile it takes the removal for stale and asks (`pr`) for a resend that
      // nobody who left answers. The server keeps recent removals and gives them again on `pr`.
      const id = S.uid('leave-race');
      const ch = `${C}.${id}`;
      const rng = S.makeRng(S.fuzzSeed());
      const watchers = [];
      const typers = [];
      try {
        const docs = [];
        for (let i = 0; i < 2; i++) watchers.push(await S.connect(h.server));
        docs.push(await openDoc(watchers[0], id, 'x'.repeat(40)));
        docs.push(await openDoc(watchers[1], id));
        const seen = [];
        for (const w of watchers) seen.push(await docPresence(w, id));
        for (let i = 0; i < 2; i++) typers.push(await S.connect(h.server));
        const typing = [];
        for (const t of typers) typing.push(await openDoc(t, id));
        let busy = true;
        // The watchers type too: a removal then waits behind their own unacknowledged edits.
        const loops = [...typing, ...docs].map(async (d) => {
          while (busy) {
            d.submitOp([rng.int([...d.data].length + 1), 'ab']);
            await S.sleep(5);
          }
        });
        const modes = ['close', 'pu', 'null'];
        for (let batch = 0; batch < 4; batch++) {
          await Promise.all(Array.from({length: 12}, async (_, k) => {
            const owner = await S.RawClient.open(h.server);
            await owner.handshake();
            await owner.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
            const v = Math.max(1, docs[0].version - rng.int(4));
            const base = {a: 'p', ch, c: C, d: id, v, t: S.TEXT_URI, id: `owner-${batch}-${k}`};
            owner.send({...base, pv: 0, p: {index: 3, length: 1}});
            await S.sleep(rng.int(20));
            const mode = modes[k % modes.length];
            if (mode === 'pu') owner.send({a: 'pu', ch, seq: 2});
            if (mode === 'null') owner.send({...base, pv: 1, p: null});
            if (mode !== 'close') await S.sleep(rng.int(30));
            owner.close();
          }));
        }
        busy = false;
        await Promise.all(loops);
        await Promise.all([...typing, ...docs].map((d) => S.whenNothingPending(d)));
        try {
          await S.waitUntil(() => seen.every((p) => [...p.received.keys()].every((k) => !k.startsWith('owner-'))),
            25000, 'no owner\'s cursor left');
        } catch (e) {
          const stuck = seen.flatMap((p, i) => [...p.received.keys()].map((k) => {
            const r = p._remotePresenceInstances && p._remotePresenceInstances[k];
            return `${i}:${k} pending=${JSON.stringify(r && r._pending)} pv=${r && r.presenceVersion} ` +
              `cache=${r && r._opCache ? r._opCache.length : r && r._opCache} setPending=${r && r._pendingSetPending} docv=${docs[i].version}`;
          }));
          e.message += `\n${stuck.slice(0, 6).join('\n')}`;
          throw e;
        }
      } finally {
        S.closeAll([...watchers, ...typers]);
      }
    }));

  it('acks every update past --max-presence-rate at once and sends the others only the latest', otsyncOnly, S.logged(h, async () => {
    const id = S.uid('flood');
    const ch = `${C}.${id}`;
    const sender = await S.RawClient.open(h.server);
    const watcher = await S.RawClient.open(h.server);
    try {
      await sender.handshake();
      await watcher.handshake();
      await watcher.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
      const COUNT = 300;
      const started = Date.now();
      for (let pv = 0; pv < COUNT; pv++) sender.send({a: 'p', ch, id: 'jittery', pv, p: {index: pv}});
      for (let pv = 0; pv < COUNT; pv++) await sender.next((m) => m.a === 'p' && m.pv === pv, 5000, `ack of pv ${pv}`);
      const ackMs = Date.now() - started;
      // The latest arrives; far fewer than COUNT went out (20/s, bursts of 40), never an older after a newer.
      await watcher.next((m) => m.a === 'p' && m.pv === COUNT - 1, 5000, 'the latest update');
      await S.sleep(300);
      const got = [...watcher.inbox].filter((m) => m.a === 'p' && m.id === 'jittery');
      const pvs = got.map((m) => m.pv);
      assert.ok(pvs.length + 1 < COUNT / 2, `${pvs.length + 1} of ${COUNT} updates broadcast`);
      for (let i = 1; i < pvs.length; i++) assert.ok(pvs[i] > pvs[i - 1], `pv went back: ${pvs}`);
      assert.ok(ackMs < 3000, `acks took ${ackMs} ms`);
      const metrics = await (await fetch(`${h.server.httpUrl}/metrics`)).text();
      const coalesced = Number(/^otsync_presence_coalesced_total (\d+)/m.exec(metrics)[1]);
      assert.ok(coalesced > 0, metrics.slice(0, 400));
    } finally {
      sender.close();
      watcher.close();
    }
  }));

  it('clears a cursor whose owner leaves after the others typed past the op cache', otsyncOnly, S.logged(uncached, async () => {
    const id = S.uid('past-cache');
    const a = await S.connect(uncached.server);
    const b = await S.connect(uncached.server);
    try {
      await openDoc(a, id, 'xyz');
      const docB = await openDoc(b, id);
      const pa = await docPresence(a, id);
      const pb = await docPresence(b, id);
      await submit(local(pa, 'idle'), {index: 1, length: 0});
      await expectShown(pb, 'idle', {index: 1, length: 0});
      for (let i = 0; i < 5; i++) await S.submitOp(docB, [0, 'b']);
      await expectShown(pb, 'idle', {index: 6, length: 0});  // moved by B's client itself
      a.close();  // its removal, sent at A's old version, must still reach B at the head
      await expectShown(pb, 'idle', null);
      assert.deepEqual(pb.errors, []);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('leaves no cursor behind an unsubscribe while updates wait for the rate', otsyncOnly, S.logged(h, async () => {
    const id = S.uid('held');
    const ch = `${C}.${id}`;
    const sender = await S.RawClient.open(h.server);
    const watcher = await S.RawClient.open(h.server);
    try {
      await sender.handshake();
      await watcher.handshake();
      await watcher.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
      await sender.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
      for (let pv = 0; pv < 60; pv++) sender.send({a: 'p', ch, id: 'c', pv, p: {index: pv}});
      await sender.request({a: 'pu', ch, seq: 2}, (m) => m.a === 'pu');
      await S.sleep(400);  // past several flush intervals
      const seen = watcher.inbox.filter((m) => m.a === 'p' && m.id === 'c');
      assert.ok(seen.length > 0);
      assert.equal(seen[seen.length - 1].p, null, `the last word is the removal: ${JSON.stringify(seen.slice(-3))}`);
    } finally {
      sender.close();
      watcher.close();
    }
  }));

  it('bounds what one client makes the others receive: pr floods, removals of unknown ids, many ids', otsyncOnly,
    S.logged(h, async () => {
      const id = S.uid('amplify');
      const ch = `${C}.${id}`;
      const attacker = await S.RawClient.open(h.server);
      const victim = await S.RawClient.open(h.server);
      try {
        await attacker.handshake();
        await victim.handshake();
        await victim.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
        await attacker.request({a: 'ps', ch, seq: 1}, (m) => m.a === 'ps');
        victim.inbox = [];
        // 500 pr: each would make every member send its presence again.
        for (let i = 0; i < 500; i++) attacker.send({a: 'pr', ch});
        // 2000 removals of presences never shown: nothing to remove.
        for (let i = 0; i < 2000; i++) attacker.send({a: 'p', ch, id: `ghost-${i}`, pv: 0, p: null});
        // 100 ids, 3 updates each: one connection's broadcasts stay within its rate, whatever the ids.
        const started = Date.now();
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 100; i++) attacker.send({a: 'p', ch, id: `id-${i}`, pv: round, p: {index: round}});
        }
        await attacker.request({a: 'pp'}, (m) => m.a === 'pp', 10000);
        await S.sleep(500);
        const elapsed = (Date.now() - started) / 1000;
        const prs = victim.inbox.filter((m) => m.a === 'pr').length;
        const removals = victim.inbox.filter((m) => m.a === 'p' && m.p === null).length;
        const updates = victim.inbox.filter((m) => m.a === 'p' && m.p !== null).length;
        assert.ok(prs <= 60, `${prs} pr relayed`);
        assert.equal(removals, 0);
        assert.ok(updates <= 40 + 20 * elapsed + 5, `${updates} updates in ${elapsed} s`);
        const pong = await victim.request({a: 'pp'}, (m) => m.a === 'pp');
        assert.equal(pong.a, 'pp');
      } finally {
        attacker.close();
        victim.close();
      }
    }));

  it('refuses hostile presence messages with a clear error and carries on', otsyncOnly, S.logged(h, async () => {
    const id = S.uid('hostile');
    const ch = `${C}.${id}`;
    const raw = await S.RawClient.open(h.server);
    try {
      await raw.handshake();
      const err = async (msg, code) => {
        const reply = await raw.request(msg, (m) => m.error !== undefined || (m.a === msg.a && m.id === msg.id));
        assert.ok(reply.error, `no error for ${JSON.stringify(msg).slice(0, 200)}: ${JSON.stringify(reply)}`);
        assert.equal(reply.error.code, code, JSON.stringify(reply));
      };
      await err({a: 'p', ch, id: 'x', pv: 0, p: {index: 0, pad: 'x'.repeat(5000)}}, 'ERR_PRESENCE_TOO_LARGE');
      await err({a: 'p', ch: 'elsewhere', c: C, d: id, id: 'x', pv: 0, v: 0, p: null}, 'ERR_MESSAGE_BADLY_FORMED');
      await err({a: 'p', ch, c: C, d: id, id: 'x', pv: 0, v: 0, t: 'json0', p: {}}, 'ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE');
      await err({a: 'p', ch, id: 'x', pv: -1, p: 1}, 'ERR_MESSAGE_BADLY_FORMED');
      await err({a: 'p', ch, id: 7, pv: 0, p: 1}, 'ERR_MESSAGE_BADLY_FORMED');
      await err({a: 'p', ch, id: '__proto__', pv: 0, p: 1}, 'ERR_MESSAGE_BADLY_FORMED');
      await err({a: 'ps', ch, seq: 'one'}, 'ERR_MESSAGE_BADLY_FORMED');
      await err({a: 'ps', ch: 'x'.repeat(300), seq: 1}, 'ERR_MESSAGE_BADLY_FORMED');
      const deep = JSON.stringify({a: 'p', ch, c: C, d: id, id: 'y', pv: 0, v: 0, p: {index: 0}})
        .replace('{"index":0}', `${'['.repeat(100)}1${']'.repeat(100)}`);
      const deepReply = await raw.request(deep, (m) => m.error !== undefined);
      assert.equal(deepReply.error.code, 'ERR_MESSAGE_BADLY_FORMED');
      // More presence ids than --max-presences (100): the 101st is refused; a null one frees a slot.
      for (let i = 0; i < 100; i++) {
        await raw.request({a: 'p', ch, id: `many-${i}`, pv: 0, p: {index: i}}, (m) => m.a === 'p' && m.id === `many-${i}`);
      }
      await err({a: 'p', ch, id: 'one-too-many', pv: 0, p: {index: 0}}, 'ERR_PRESENCE_LIMIT_EXCEEDED');
      await raw.request({a: 'p', ch, id: 'many-0', pv: 1, p: null}, (m) => m.a === 'p' && m.id === 'many-0');
      const ok = await raw.request({a: 'p', ch, id: 'one-too-many', pv: 0, p: {index: 0}},
        (m) => m.a === 'p' && m.id === 'one-too-many');
      assert.equal(ok.error, undefined);
      // Still serving.
      const pong = await raw.request({a: 'pp'}, (m) => m.a === 'pp');
      assert.equal(pong.a, 'pp');
    } finally {
      raw.close();
    }
  }));
});
