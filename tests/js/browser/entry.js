'use strict';
// Browser side of browser_test.js: the unmodified sharedb@7 client
// (sharedb/lib/client) with ot-text-unicode registered, over the browser's
// native WebSocket. Bundled by esbuild at test time (harness.js) into a temp
// dir; index.html loads it. One page = one sharedb Connection, driven by the
// test through the functions on `window.otsync` (page.evaluate). Random edits
// are made in the page, from the page's own copy of the text, with the same
// generator as the Node tests (support/edits.js: code points, emoji / astral).

const ShareDB = require('sharedb/lib/client');
const otText = require('ot-text-unicode');
const {makeRng} = require('../support/util');
const {randomOp} = require('../support/edits');

ShareDB.types.register(otText.type);
ShareDB.logger.setMethods({info: () => {}});

const state = {
  connection: null,
  rng: makeRng(1),
  errors: [],     // 'error' events of the connection and its docs, failed submit callbacks
  sent: [],       // every op message sent: {d, src, seq, v, kind}
  submitted: 0,   // submitOp calls
  acked: 0,       // submitOp callbacks without error
  docs: new Map(),
};

const errText = (e) => (e && (e.code || e.message) ? `${e.code || ''} ${e.message || ''}`.trim() : String(e));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

function waitState(want, ms) {
  const c = state.connection;
  if (c.state === want) return Promise.resolve();
  return withTimeout(new Promise((resolve) => {
    const on = (s) => {
      if (s === want) { c.removeListener('state', on); resolve(); }
    };
    c.on('state', on);
  }), ms, `connection state ${want} (now ${c.state})`);
}

function doc(c, id) {
  const key = `${c}/${id}`;
  let d = state.docs.get(key);
  if (!d) {
    d = state.connection.get(c, id);
    d.on('error', (e) => state.errors.push(`doc ${key}: ${errText(e)}`));
    state.docs.set(key, d);
  }
  return d;
}

function cb(what, ms, start) {
  return withTimeout(new Promise((resolve, reject) => {
    start((err, value) => (err ? reject(new Error(`${what}: ${errText(err)}`)) : resolve(value)));
  }), ms, what);
}

function submit(d, op) {
  state.submitted++;
  d.submitOp(op, (err) => {
    if (err) state.errors.push(`submitOp ${d.collection}/${d.id}: ${errText(err)}`);
    else state.acked++;
  });
}

const api = {
  /** Opens the page's Connection on `url` with a native WebSocket; resolves once connected. */
  async connect(url, seed, ms = 10000) {
    const connection = new ShareDB.Connection(new WebSocket(url));
    state.connection = connection;
    state.rng = makeRng(seed >>> 0);
    connection.on('error', (e) => state.errors.push(`connection: ${errText(e)}`));
    connection.on('connection error', () => {});
    connection.on('send', (m) => {
      if (m.a !== 'op') return;
      const kind = m.create ? 'create' : m.del ? 'del' : 'op';
      state.sent.push({d: m.d, src: m.src || connection.id, seq: m.seq, v: m.v, kind});
    });
    await waitState('connected', ms);
    document.getElementById('status').textContent = `connected as ${connection.id}`;
    return connection.id;
  },

  /** Subscribes to c/id; creates it with `text` if it does not exist and `text` is a string. */
  async open(c, id, text, ms = 10000) {
    const d = doc(c, id);
    await cb(`subscribe ${c}/${id}`, ms, (k) => d.subscribe(k));
    if (!d.type && typeof text === 'string') {
      try {
        await cb(`create ${c}/${id}`, ms, (k) => d.create(text, 'text-unicode', k));
      } catch (e) {
        // Another client created it first: the subscription delivers its create.
        if (!/ERR_DOC_ALREADY_CREATED/.test(e.message)) throw e;
      }
    }
    return api.snapshot(c, id);
  },

  /** `count` random edits of c/id, submitted back to back (the client composes them behind its in-flight op). */
  edit(c, id, count) {
    const d = doc(c, id);
    const ops = [];
    for (let i = 0; i < count; i++) {
      const op = randomOp(state.rng, d.data);
      ops.push(op);
      submit(d, op);
    }
    return ops;
  },

  /** Submits one given op (no wait). */
  submit(c, id, op) { submit(doc(c, id), op); },

  snapshot(c, id) {
    const d = doc(c, id);
    return {
      v: d.version,
      data: d.data,
      type: d.type ? d.type.uri : null,
      pending: d.hasPending(),
      inflight: d.inflightOp ? true : false,
    };
  },

  status() {
    const c = state.connection;
    return {
      id: c && c.id, state: c && c.state, errors: state.errors.slice(), sent: state.sent.slice(),
      submitted: state.submitted, acked: state.acked,
    };
  },

  /** Resolves when c/id has no in-flight or pending op ('nothing pending'). */
  whenNothingPending(c, id, ms = 10000) {
    const d = doc(c, id);
    return withTimeout(new Promise((resolve) => d.whenNothingPending(resolve)), ms,
      `nothing pending on ${c}/${id} (state ${state.connection.state})`).then(() => api.snapshot(c, id));
  },

  /** Closes the socket (a clean close from the browser) and waits for 'disconnected'. */
  async dropSocket(ms = 10000) {
    state.connection.socket.close();
    await waitState('disconnected', ms);
  },

  /**
   * Submits `op` to c/id and closes the socket right after the op frame is handed to it: the
   * frame goes out before the close frame, and the ack, arriving after close(), is dropped by
   * the browser. Waits for 'disconnected'.
   */
  async submitAndDrop(c, id, op, ms = 10000) {
    const connection = state.connection;
    const onSend = (m) => {
      if (m.a !== 'op') return;
      connection.removeListener('send', onSend);
      const socket = connection.socket;
      queueMicrotask(() => socket.close()); // after this socket.send() returns
    };
    connection.on('send', onSend);
    submit(doc(c, id), op);
    await waitState('disconnected', ms);
  },

  /** The next op message is not sent: the socket closes instead (the op never reaches the server). */
  loseNextOp() {
    const socket = state.connection.socket;
    const send = socket.send.bind(socket);
    socket.send = (data) => {
      if (JSON.parse(data).a === 'op') {
        socket.close();
        return;
      }
      send(data);
    };
  },

  /** When the ack of this connection's next edit arrives, it is hidden from the client and the socket closes. */
  loseNextAck() {
    const connection = state.connection;
    const onReceive = (request) => {
      const m = request.data;
      if (!m || m.a !== 'op' || m.error || 'op' in m || m.create || m.del) return;
      if (m.src !== connection.id) return;
      connection.removeListener('receive', onReceive);
      request.data = null;
      connection.socket.close();
    };
    connection.on('receive', onReceive);
  },

  waitState(want, ms = 10000) { return waitState(want, ms); },

  /** Binds the Connection to a new native WebSocket on `url` and waits for 'connected'. */
  async reconnect(url, ms = 10000) {
    state.connection.bindToSocket(new WebSocket(url));
    await waitState('connected', ms);
    return state.connection.id;
  },

  close() { if (state.connection) state.connection.close(); },
};

window.otsync = api;
document.getElementById('status').textContent = 'ready';
