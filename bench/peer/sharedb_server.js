#!/usr/bin/env node
'use strict';
// Reference peer: a real, unmodified ShareDB 7 server with ot-text-unicode
// registered, on the same command line and HTTP surface as otsyncd (the parts
// the tests use). It is what the JS suite is validated against, so that every
// expectation in tests/js/*_test.js is what ShareDB really does.
//
//   node bench/peer/sharedb_server.js --listen 127.0.0.1:0 --port-file FILE
//        [--max-message-bytes N] [--log-level warn|info|debug] [--presence]
//
// --presence: ShareDB 7's presence on (`new ShareDB({presence: true})`), with
// the text-unicode type of clients/js (ot-text-unicode plus transformPresence)
// registered in place of the plain one, as ShareDB's server transforms a stale
// presence itself (bench/js/presence_fanout.js). Without it: no presence, as
// the JS suite expects of the peer.
//
// WebSocket: ws://HOST:PORT/ws (one JSON object per text frame, via
// @teamwork/websocket-json-stream as ShareDB's docs recommend). Frames over
// --max-message-bytes (default 1 MiB) close the socket with 1009 (ws maxPayload).
// HTTP: GET /healthz, /readyz, and the read-only REST API of otsyncd:
//   GET /api/v1/docs/{c}                 {"documents":[{"id","v","type"}]}
//   GET /api/v1/docs/{c}/{id}[?v=N]      {"collection","id","v","type","data"}
//   GET /api/v1/docs/{c}/{id}/ops?from=A&to=B
//                                         {"ops":[{"v","src","seq","op"|"create"|"del","ts"}]}
// (computed from ShareDB's in-memory DB; the peer's own interpretation of the
// contract, used to validate the tests, not a ShareDB feature).
// SIGTERM/SIGINT: close and exit 0.

const fs = require('fs');
const http = require('http');
const path = require('path');
// The npm packages are the JS test suite's, pinned by tests/js/package-lock.json (npm ci there).
const requireDep = require('module').createRequire(path.join(__dirname, '..', '..', 'tests', 'js', 'package.json'));
const ShareDB = requireDep('sharedb');
const WebSocket = requireDep('ws');
const WebSocketJSONStream = requireDep('@teamwork/websocket-json-stream');
const otText = requireDep('ot-text-unicode');

ShareDB.types.register(otText.type);

function parseArgs(argv) {
  const opts = {listen: '127.0.0.1:0', portFile: null, maxMessageBytes: 1 << 20, logLevel: 'warn', presence: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--listen') opts.listen = next();
    else if (a === '--port-file') opts.portFile = next();
    else if (a === '--max-message-bytes') opts.maxMessageBytes = Number(next());
    else if (a === '--log-level') opts.logLevel = next();
    else if (a === '--presence') opts.presence = true;
    else if (a === '--store' || a === '--data-dir') next(); // accepted, ignored: always in memory
    else if (a === '--help') {
      process.stdout.write('usage: sharedb_server.js --listen HOST:PORT [--port-file FILE] [--max-message-bytes N] ' +
                           '[--presence]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`sharedb_server: ${e.message}\n`);
  process.exit(2);
}

const levels = {debug: 0, info: 1, warn: 2, error: 3};
const level = levels[opts.logLevel] ?? 2;
ShareDB.logger.setMethods({
  info: (...args) => { if (level <= 1) console.error('[info]', ...args); },
  warn: (...args) => { if (level <= 2) console.error('[warn]', ...args); },
  error: (...args) => { if (level <= 3) console.error('[error]', ...args); },
});

if (opts.presence) {
  // The same type object the clients register (clients/js): the server checks
  // types.map[t].transformPresence and moves a stale presence through the ops since.
  require(path.join(__dirname, '..', '..', 'clients', 'js')).register(ShareDB, otText);
}
const backend = opts.presence ? new ShareDB({presence: true, doNotForwardSendPresenceErrorsToClient: true}) : new ShareDB();
const db = backend.db;
let draining = false;

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text)});
  res.end(text);
}
function httpError(res, status, code, message) {
  sendJson(res, status, {error: {code, message}});
}

function getOps(c, id, from, to) {
  return new Promise((resolve, reject) => {
    db.getOps(c, id, from, to, {metadata: true}, (err, ops) => (err ? reject(err) : resolve(ops)));
  });
}
function getSnapshot(c, id) {
  return new Promise((resolve, reject) => {
    db.getSnapshot(c, id, null, null, (err, s) => (err ? reject(err) : resolve(s)));
  });
}
function opToRest(op) {
  const out = {v: op.v, src: op.src, seq: op.seq};
  if (op.create) out.create = {type: op.create.type, data: op.create.data};
  else if (op.del) out.del = true;
  else out.op = op.op;
  out.ts = op.m && op.m.ts;
  return out;
}
function replay(ops, version) {
  let type = null;
  let data;
  for (const op of ops) {
    if (op.v >= version) break;
    if (op.create) {
      type = op.create.type;
      data = otText.type.create(op.create.data);
    } else if (op.del) {
      type = null;
      data = undefined;
    } else if (type) {
      data = otText.type.apply(data, op.op);
    }
  }
  return {type, data};
}
const NUM = /^(0|[1-9][0-9]{0,15})$/;

async function handleApi(req, res, url) {
  const parts = url.pathname.split('/').slice(4).map(decodeURIComponent); // after /api/v1/docs
  if (parts.length === 0 || parts[0] === '' || parts.length > 3) {
    return httpError(res, 404, 'ERR_NOT_FOUND', 'No such resource');
  }
  const c = parts[0];
  if (parts.length === 1) {
    const docs = (db.docs && db.docs[c]) || {};
    const documents = Object.keys(docs).sort().map((id) => ({id, v: docs[id].v, type: docs[id].type}));
    return sendJson(res, 200, {documents});
  }
  const id = parts[1];
  const snapshot = await getSnapshot(c, id);
  if (parts.length === 3) {
    if (parts[2] !== 'ops') return httpError(res, 404, 'ERR_NOT_FOUND', 'No such resource');
    const fromS = url.searchParams.get('from');
    const toS = url.searchParams.get('to');
    if ((fromS != null && !NUM.test(fromS)) || (toS != null && !NUM.test(toS))) {
      return httpError(res, 400, 'ERR_BAD_REQUEST', 'from and to must be non-negative integers');
    }
    const from = fromS == null ? 0 : Number(fromS);
    const to = toS == null ? snapshot.v : Math.min(Number(toS), snapshot.v);
    if (from > to) return httpError(res, 400, 'ERR_BAD_REQUEST', 'from must not exceed to');
    const ops = await getOps(c, id, from, to);
    return sendJson(res, 200, {ops: ops.map(opToRest)});
  }
  const vS = url.searchParams.get('v');
  if (vS == null) {
    return sendJson(res, 200, {collection: c, id, v: snapshot.v, type: snapshot.type, data: snapshot.data});
  }
  if (!NUM.test(vS)) return httpError(res, 400, 'ERR_BAD_REQUEST', 'v must be a non-negative integer');
  const v = Number(vS);
  if (v > snapshot.v) {
    return httpError(res, 400, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT', 'Requested version exceeds latest snapshot version');
  }
  const ops = await getOps(c, id, 0, v);
  const s = replay(ops, v);
  return sendJson(res, 200, {collection: c, id, v, type: s.type, data: s.data});
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET') return httpError(res, 405, 'ERR_METHOD_NOT_ALLOWED', 'Only GET');
  if (url.pathname === '/healthz') return sendJson(res, 200, {status: 'ok'});
  if (url.pathname === '/readyz') return sendJson(res, draining ? 503 : 200, {status: draining ? 'draining' : 'ready'});
  if (url.pathname === '/metrics') {
    res.writeHead(200, {'content-type': 'text/plain; version=0.0.4'});
    return res.end(`sharedb_peer_agents ${backend.agentsCount}\n`);
  }
  if (url.pathname.startsWith('/api/v1/docs/') || url.pathname === '/api/v1/docs') {
    return handleApi(req, res, url).catch((e) => httpError(res, 500, 'ERR_INTERNAL', String(e && e.message)));
  }
  return httpError(res, 404, 'ERR_NOT_FOUND', 'No such resource');
});

const wss = new WebSocket.Server({server, path: '/ws', maxPayload: opts.maxMessageBytes});
wss.on('connection', (ws, req) => {
  // ws reports protocol violations (invalid UTF-8: close 1007, frame over
  // maxPayload: close 1009) as 'error' events after closing the socket.
  ws.on('error', (e) => {
    if (level <= 1) console.error('[info] websocket error:', e.message);
  });
  const stream = new WebSocketJSONStream(ws);
  // A frame that is not JSON (or is JSON null) destroys the stream with an
  // error, which closes the socket with 1011; without a listener the error
  // would crash the whole process.
  stream.on('error', (e) => {
    if (level <= 1) console.error('[info] client stream error:', e.message);
  });
  backend.listen(stream, req);
});

const m = /^(.*):(\d+)$/.exec(opts.listen);
if (!m) {
  process.stderr.write(`sharedb_server: bad --listen ${opts.listen}\n`);
  process.exit(2);
}
server.listen(Number(m[2]), m[1].replace(/^\[|\]$/g, ''), () => {
  const port = server.address().port;
  if (opts.portFile) {
    fs.writeFileSync(opts.portFile + '.tmp', `${port}\n`);
    fs.renameSync(opts.portFile + '.tmp', opts.portFile);
  }
  if (level <= 1) console.error(`[info] sharedb peer listening on ${m[1]}:${port}`);
});

function shutdown() {
  if (draining) return;
  draining = true;
  for (const ws of wss.clients) ws.close(1001, 'going away');
  wss.close();
  server.close(() => backend.close(() => process.exit(0)));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
