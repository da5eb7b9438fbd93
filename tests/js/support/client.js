'use strict';
// The unmodified sharedb@7 client over `ws` sockets, and promise wrappers with
// timeouts around its callback API.

const WebSocket = require('ws');
const ShareDB = require('sharedb/lib/client');
const otText = require('ot-text-unicode');
const {withTimeout} = require('./util');

ShareDB.types.register(otText.type);
// The client's info logs are noise; warnings (e.g. "Invalid version from server") stay on stderr.
ShareDB.logger.setMethods({info: () => {}});

const TEXT_URI = otText.type.uri; // http://sharejs.org/types/text-unicode
const DEFAULT_TIMEOUT = 10000;

function waitState(connection, state, ms = DEFAULT_TIMEOUT) {
  if (connection.state === state) return Promise.resolve();
  return withTimeout(new Promise((resolve) => {
    const onState = (s) => {
      if (s === state) {
        connection.removeListener('state', onState);
        resolve();
      }
    };
    connection.on('state', onState);
  }), ms, `connection state ${state} (now ${connection.state})`);
}

/**
 * A connected ShareDB client. `connection.errors` collects 'error' events
 * (which would otherwise throw) so tests can assert there were none.
 */
async function connect(server, {timeout = DEFAULT_TIMEOUT} = {}) {
  const socket = new WebSocket(server.wsUrl);
  const connection = new ShareDB.Connection(socket);
  connection.errors = [];
  connection.on('error', (e) => connection.errors.push(e));
  connection.on('connection error', () => {});
  await waitState(connection, 'connected', timeout);
  return connection;
}

/** Rebinds an existing connection to a new socket on `server` and waits for 'connected'. */
async function reconnect(connection, server, {timeout = DEFAULT_TIMEOUT} = {}) {
  const socket = new WebSocket(server.wsUrl);
  connection.bindToSocket(socket);
  await waitState(connection, 'connected', timeout);
  return connection;
}

/** Closes the connection's socket abruptly (no close handshake) and waits for 'disconnected'. */
async function dropSocket(connection, {timeout = DEFAULT_TIMEOUT} = {}) {
  connection.socket.terminate();
  await waitState(connection, 'disconnected', timeout);
}

function closeAll(connections) {
  for (const c of connections) {
    try { c.close(); } catch (_) { /* already closed */ }
  }
}

/** Gets a Doc and records its 'error' events in doc.errors. */
function getDoc(connection, collection, id) {
  const doc = connection.get(collection, id);
  if (!doc.errors) {
    doc.errors = [];
    doc.on('error', (e) => doc.errors.push(e));
  }
  return doc;
}

function cb(what, ms, start) {
  return withTimeout(new Promise((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value)));
  }), ms, what);
}

const fetch = (doc, ms = DEFAULT_TIMEOUT) => cb(`fetch ${doc.id}`, ms, (k) => doc.fetch(k));
const subscribe = (doc, ms = DEFAULT_TIMEOUT) => cb(`subscribe ${doc.id}`, ms, (k) => doc.subscribe(k));
const unsubscribe = (doc, ms = DEFAULT_TIMEOUT) => cb(`unsubscribe ${doc.id}`, ms, (k) => doc.unsubscribe(k));
const create = (doc, data, type = 'text-unicode', ms = DEFAULT_TIMEOUT) =>
  cb(`create ${doc.id}`, ms, (k) => doc.create(data, type, k));
const submitOp = (doc, op, ms = DEFAULT_TIMEOUT) => cb(`submitOp ${doc.id}`, ms, (k) => doc.submitOp(op, k));
const del = (doc, ms = DEFAULT_TIMEOUT) => cb(`del ${doc.id}`, ms, (k) => doc.del(k));
const fetchSnapshot = (connection, c, id, v, ms = DEFAULT_TIMEOUT) =>
  cb(`fetchSnapshot ${c}/${id}@${v}`, ms, (k) => connection.fetchSnapshot(c, id, v, k));
const fetchSnapshotByTimestamp = (connection, c, id, ts, ms = DEFAULT_TIMEOUT) =>
  cb(`fetchSnapshotByTimestamp ${c}/${id}@${ts}`, ms, (k) => connection.fetchSnapshotByTimestamp(c, id, ts, k));

/** connection.ping() and wait for 'pong'. */
function ping(connection, ms = DEFAULT_TIMEOUT) {
  return withTimeout(new Promise((resolve) => {
    connection.once('pong', resolve);
    connection.ping();
  }), ms, 'pong');
}

/** Waits until the doc has no in-flight or pending ops. */
function whenNothingPending(doc, ms = DEFAULT_TIMEOUT) {
  return withTimeout(new Promise((resolve) => doc.whenNothingPending(resolve)), ms, `nothing pending on ${doc.id}`);
}

/** Waits for the next event `name` on `emitter` (optionally one matching `pred`). */
function once(emitter, name, ms = DEFAULT_TIMEOUT, pred = () => true) {
  return withTimeout(new Promise((resolve) => {
    const h = (...args) => {
      if (!pred(...args)) return;
      emitter.removeListener(name, h);
      resolve(args);
    };
    emitter.on(name, h);
  }), ms, `event ${name}`);
}

/** Fetch of c/id through a fresh connection: {v, type, data}. */
async function freshFetch(server, collection, id) {
  const connection = await connect(server);
  try {
    const doc = connection.get(collection, id);
    await fetch(doc);
    return {v: doc.version, type: doc.type ? doc.type.uri : null, data: doc.data};
  } finally {
    connection.close();
  }
}

module.exports = {
  ShareDB, otText, TEXT_URI, WebSocket,
  connect, reconnect, dropSocket, closeAll, waitState, getDoc,
  fetch, subscribe, unsubscribe, create, submitOp, del, fetchSnapshot, fetchSnapshotByTimestamp,
  ping, whenNothingPending, once, freshFetch,
};
