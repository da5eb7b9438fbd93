'use strict';
// Dropped connections with ops in flight, with the unmodified sharedb client
// reconnecting through connection.bindToSocket(newSocket). Whatever happened to
// the op (never reached the server, committed but the ack was lost, or other
// clients committed more ops meanwhile), after the reconnect it is applied
// exactly once (op log: one entry with its src and seq), the client's callback
// succeeds and it converges with a fresh fetch.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const holder = S.useServer();
const T = (fn) => S.logged(holder, fn);
const C = 'reconnect';

/** Records the op messages a connection sends: [{d, v, src, seq, ...}]. */
function recordOps(connection) {
  const sent = [];
  connection.on('send', (m) => {
    if (m.a === 'op') sent.push({...JSON.parse(JSON.stringify(m)), src: m.src || connection.id});
  });
  return sent;
}

/** Makes the connection's current socket swallow the next outgoing op message and die. */
function loseNextOp(connection) {
  const socket = connection.socket;
  const send = socket.send.bind(socket);
  socket.send = (data) => {
    if (JSON.parse(data).a === 'op') {
      socket.terminate();
      return;
    }
    send(data);
  };
}

/** Drops the socket as soon as the ack of an op from this connection arrives, hiding the ack. */
function loseNextAck(connection) {
  let armed = true;
  const onReceive = (request) => {
    const m = request.data;
    if (!armed || !m || m.a !== 'op' || m.error || 'op' in m || m.create || m.del) return;
    if (m.src !== connection.id) return;
    armed = false;
    connection.removeListener('receive', onReceive);
    request.data = null; // the client never sees the ack
    connection.socket.terminate();
  };
  connection.on('receive', onReceive);
}

async function opLog(id) {
  return (await holder.server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0`)).ops;
}

// The log names authors by alias (the real id is its owner's alone).
function countInLog(log, src, seq) {
  return log.filter((o) => o.src === holder.server.alias(src) && o.seq === seq).length;
}

async function setup(text) {
  const id = S.uid();
  const a = await S.connect(holder.server);
  const docA = S.getDoc(a, C, id);
  await S.create(docA, text);
  await S.subscribe(docA);
  const sent = recordOps(a);
  return {id, a, docA, sent};
}

async function checkConverged(id, docs, expectedText) {
  const head = await S.freshFetch(holder.server, C, id);
  await S.waitUntil(() => docs.every((d) => d.version === head.v), 10000,
    `clients at v${head.v}: ${docs.map((d) => d.version)}`);
  for (const d of docs) assert.equal(d.data, head.data);
  if (expectedText !== undefined) assert.equal(head.data, expectedText);
  const log = await opLog(id);
  assert.equal(log.length, head.v);
  assert.deepEqual(S.replayLog(log), head);
  const keys = log.map((o) => `${o.src}/${o.seq}`);
  assert.equal(new Set(keys).size, keys.length, `a (src, seq) twice in the op log: ${keys}`);
  return {head, log};
}

describe('reconnect with an op in flight', () => {
  it('socket closed right after submit: the op is applied exactly once', T(async () => {
    const {id, a, docA, sent} = await setup('hello');
    try {
      const srcBefore = a.id;
      const acked = S.submitOp(docA, [5, ' 😀 world']);
      a.socket.terminate(); // the frame may or may not have left
      await S.waitState(a, 'disconnected');
      await S.reconnect(a, holder.server);
      assert.equal(a.id, srcBefore, 'the server adopts hs.id: the connection keeps its id');
      await acked;
      const op = sent.find((m) => m.op);
      const {log} = await checkConverged(id, [docA], 'hello 😀 world');
      assert.equal(countInLog(log, srcBefore, op.seq), 1);
      assert.deepEqual(a.errors, []);
    } finally {
      a.close();
    }
  }));

  it('the op never reached the server: it is sent again and applied once', T(async () => {
    const {id, a, docA, sent} = await setup('abc');
    try {
      loseNextOp(a);
      const acked = S.submitOp(docA, [3, 'd']);
      await S.waitState(a, 'disconnected');
      assert.equal((await opLog(id)).length, 1, 'the server has not seen the op');
      await S.reconnect(a, holder.server);
      await acked;
      const resend = sent.filter((m) => m.op);
      assert.equal(resend.length, 2, 'sent twice (lost, then resent)');
      assert.equal(resend[0].seq, resend[1].seq, 'the resend keeps its seq');
      assert.equal(resend[1].src, a.id, 'the resend carries an explicit src');
      const {log} = await checkConverged(id, [docA], 'abcd');
      assert.equal(countInLog(log, a.id, resend[0].seq), 1);
    } finally {
      a.close();
    }
  }));

  it('the server committed the op but the ack was lost: the resend is acked, not applied twice', T(async () => {
    const {id, a, docA, sent} = await setup('abc');
    try {
      loseNextAck(a);
      const acked = S.submitOp(docA, [1, '𝄞']);
      await S.waitState(a, 'disconnected');
      const seq = sent.find((m) => m.op).seq;
      let log = await opLog(id);
      assert.equal(log.length, 2, 'committed before the ack was lost');
      assert.equal(countInLog(log, a.id, seq), 1);
      await S.reconnect(a, holder.server);
      await acked;
      assert.equal(sent.filter((m) => m.op).length, 2, 'the op was resent');
      ({log} = await checkConverged(id, [docA], 'a𝄞bc'));
      assert.equal(countInLog(log, a.id, seq), 1);
      // The document keeps working.
      await S.submitOp(docA, ['!']);
      await checkConverged(id, [docA], '!a𝄞bc');
    } finally {
      a.close();
    }
  }));

  it('ack lost, then other clients committed more ops: still exactly once, and converges', T(async () => {
    const {id, a, docA, sent} = await setup('0123456789');
    const b = await S.connect(holder.server);
    try {
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      loseNextAck(a);
      const acked = S.submitOp(docA, [5, '«A»']);
      await S.waitState(a, 'disconnected');
      await S.waitUntil(() => docB.version === 2, 5000, 'B saw the op');
      for (let i = 0; i < 3; i++) await S.submitOp(docB, ['b']);
      await S.reconnect(a, holder.server);
      await acked;
      const seq = sent.find((m) => m.op).seq;
      const {log} = await checkConverged(id, [docA, docB], 'bbb01234«A»56789');
      assert.equal(countInLog(log, a.id, seq), 1);
      assert.deepEqual([a.errors, b.errors], [[], []]);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('op lost before the server, other clients committed more: the resend is transformed and applied once',
    T(async () => {
      const {id, a, docA, sent} = await setup('0123456789');
      const b = await S.connect(holder.server);
      try {
        const docB = S.getDoc(b, C, id);
        await S.subscribe(docB);
        loseNextOp(a);
        const acked = S.submitOp(docA, [5, '«A»']);
        await S.waitState(a, 'disconnected');
        for (let i = 0; i < 3; i++) await S.submitOp(docB, ['b']);
        await S.submitOp(docB, [9, {d: 1}]); // deletes '6' (bbb012345|6)
        await S.reconnect(a, holder.server);
        await acked;
        const seq = sent.find((m) => m.op).seq;
        const {log} = await checkConverged(id, [docA, docB], 'bbb01234«A»5789');
        assert.equal(countInLog(log, a.id, seq), 1);
        const entry = log.find((o) => o.src === holder.server.alias(a.id) && o.seq === seq);
        assert.equal(entry.v, 5, 'committed after the create and B\'s four ops');
        assert.deepEqual(entry.op, [8, '«A»'], 'transformed against B\'s inserts');
      } finally {
        S.closeAll([a, b]);
      }
    }));

  it('an in-flight op and pending ops at the disconnect are all applied once', T(async () => {
    const {id, a, docA, sent} = await setup('');
    try {
      loseNextAck(a);
      const acks = [S.submitOp(docA, ['a']), S.submitOp(docA, [1, 'b']), S.submitOp(docA, [2, 'c'])];
      await S.waitState(a, 'disconnected');
      await S.reconnect(a, holder.server);
      await Promise.all(acks);
      const seqs = [...new Set(sent.filter((m) => m.op).map((m) => m.seq))];
      const {log} = await checkConverged(id, [docA], 'abc');
      for (const seq of seqs) assert.equal(countInLog(log, a.id, seq), 1, `seq ${seq}`);
    } finally {
      a.close();
    }
  }));

  it('a create with v null whose ack was lost is acked on resend (creator record), not refused', T(async () => {
    const a = await S.connect(holder.server);
    const b = await S.connect(holder.server);
    try {
      const sent = recordOps(a);
      const id = S.uid('create');
      const docA = S.getDoc(a, C, id);
      loseNextAck(a);
      const created = S.create(docA, 'made by A');
      await S.waitState(a, 'disconnected');
      assert.equal(sent[0].v, null, 'the client sends a create for a never-fetched doc with v null');
      // Another client edits the document before A comes back.
      const docB = S.getDoc(b, C, id);
      await S.fetch(docB);
      await S.submitOp(docB, [4, '!']);
      await S.reconnect(a, holder.server);
      await created;
      assert.equal(sent.length, 2);
      assert.equal(sent[1].v, null);
      assert.equal(sent[1].seq, sent[0].seq);
      await S.fetch(docA);
      const {log} = await checkConverged(id, [docA], 'made! by A');
      assert.equal(countInLog(log, a.id, sent[0].seq), 1);
      assert.ok(log[0].create);
    } finally {
      S.closeAll([a, b]);
    }
  }));

  it('repeated drops under load: every op lands once (bounded)', {timeout: 120000}, T(async () => {
    const seed = S.fuzzSeed();
    console.log(`reconnect load seed ${seed}`);
    const rng = S.makeRng(seed);
    const {id, a, docA, sent} = await setup('start');
    const b = await S.connect(holder.server);
    try {
      const docB = S.getDoc(b, C, id);
      await S.subscribe(docB);
      const acks = [];
      for (let round = 0; round < 20; round++) {
        for (let k = 0; k < 1 + rng.int(4); k++) acks.push(S.submitOp(docA, S.randomOp(rng, docA.data), 60000));
        acks.push(S.submitOp(docB, S.randomOp(rng, docB.data), 60000));
        const how = rng.int(3);
        if (how === 0) loseNextAck(a);
        else if (how === 1) loseNextOp(a);
        if (how === 2) a.socket.terminate();
        await S.waitState(a, 'disconnected');
        if (rng() < 0.5) acks.push(S.submitOp(docA, S.randomOp(rng, docA.data), 60000)); // typed while offline
        await S.sleep(rng.int(5));
        await S.reconnect(a, holder.server);
      }
      await S.withTimeout(Promise.all(acks), 60000, 'all ops acknowledged');
      const {log} = await checkConverged(id, [docA, docB]);
      const seqs = [...new Set(sent.filter((m) => m.op).map((m) => m.seq))];
      for (const seq of seqs) assert.equal(countInLog(log, a.id, seq), 1, `seq ${seq}`);
      assert.deepEqual([a.errors, b.errors, docA.errors, docB.errors], [[], [], [], []]);
    } finally {
      S.closeAll([a, b]);
    }
  }));
});
