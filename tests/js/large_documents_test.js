'use strict';
// Every document the server accepted can be read back by every client: a
// snapshot or a catch-up larger than the send-queue budget is paced (reading
// pauses while replies drain), never refused with 1013. Here the budget is
// 1 MiB and the document's JSON is 13 MB (control characters are escaped to
// six bytes each), and a catch-up is 3 MB of ops; both used to close the
// connection with 1013 every time. Runs against otsyncd only (ShareDB has no
// send-queue budget).

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const isOtsyncd = (process.env.OTSYNC_SERVER || 'otsyncd') === 'otsyncd';
const QUEUE = 1 << 20;
const OP_BYTES = 160 * 1024;
const holder = S.useServer({
  // The queue must hold the largest broadcast: an op of --max-op-bytes, six times that in JSON.
  args: isOtsyncd ? ['--max-send-queue-bytes', String(QUEUE), '--max-op-bytes', String(OP_BYTES),
    '--max-request-rate', '0'] : [],
});
const T = (fn) => S.logged(holder, fn);
const C = 'large';

describe('documents and catch-ups larger than the send queue', {skip: !isOtsyncd && 'otsyncd only'}, () => {
  it('a 2 MB document of control characters (13 MB of JSON) is fetched and subscribed by sharedb clients',
    {timeout: 60000}, T(async () => {
      // Built from ops each within --max-op-bytes (every broadcast fits the queue), the whole
      // document's snapshot does not.
      const piece = '\u0001'.repeat(150 * 1024);
      const text = piece.repeat(14);
      const writer = await S.connect(holder.server);
      const reader = await S.connect(holder.server);
      try {
        const id = S.uid('ctl');
        const w = S.getDoc(writer, C, id);
        await S.create(w, piece);
        for (let i = 1; i < 14; i++) await S.submitOp(w, [piece]);
        const r = S.getDoc(reader, C, id);
        await S.fetch(r, 30000);
        assert.equal(r.data.length, text.length);
        assert.equal(r.data, text);
        await S.subscribe(r, 30000);
        // Live edits still flow to the reader after its huge reply.
        await S.submitOp(w, ['hello']);
        await S.waitUntil(() => r.version === 15, 10000, 'the reader got the edit');
        assert.equal(r.data, 'hello' + text);
        assert.deepEqual(r.errors, []);
        assert.equal(reader.state, 'connected');
      } finally {
        S.closeAll([writer, reader]);
      }
    }));

  it('a catch-up of 3 MB of ops arrives whole and in order', {timeout: 60000}, T(async () => {
    const writer = await S.connect(holder.server);
    const raw = await S.rawConnect(holder.server);
    try {
      const id = S.uid('catchup');
      const w = S.getDoc(writer, C, id);
      await S.create(w, '');
      const N = 300;
      const chunk = 'x'.repeat(10000);
      for (let i = 0; i < N; i++) w.submitOp([chunk]);
      await S.whenNothingPending(w, 30000);
      const version = w.version;
      raw.inbox = [];
      const reply = await raw.request({a: 's', c: C, d: id, v: 1}, (m) => m.a === 's' && m.d === id, 30000);
      assert.equal(reply.error, undefined, JSON.stringify(reply.error));
      const ops = raw.inbox.filter((m) => m.a === 'op' && m.d === id);
      // Every op from v1 on, once, in version order, before the reply.
      assert.equal(ops.length, version - 1);
      ops.forEach((m, i) => assert.equal(m.v, i + 1));
      assert.equal(raw.closeInfo, null);
      // The connection still works.
      const pong = await raw.request({a: 'pp'}, (m) => m.a === 'pp');
      assert.deepEqual(pong, {a: 'pp'});
    } finally {
      S.closeAll([writer]);
      raw.close();
    }
  }));
});
