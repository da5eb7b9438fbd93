'use strict';
// wss:// for the unmodified sharedb client: scripts/cluster.sh with
// CLUSTER_TLS_CERT (HAProxy terminating TLS with docker/haproxy.cfg, in front
// of one otsyncd on Redis), a throwaway CA and certificate made by
// tests/support/make_test_certs.sh (the openssl CLI). The client trusts the
// CA through `ws`'s `ca` option: it creates, edits and fetches; without the
// CA it is refused. The plain HTTP port answers the probes, passes ACME
// challenges to the ACME client (a stand-in here) and redirects everything
// else to HTTPS; HTTPS answers carry HSTS.
//
// Then otsyncd's own TLS listener (--tls-cert, no proxy; certificates from the
// same script): the client over wss:// directly, refused without the CA, HTTPS
// probes, plain ws:// and http:// on the TLS port refused while it serves on;
// the certificate file replaced and SIGHUP under load from 6 clients (no socket
// closed, every acknowledged insert in the text, replicas equal, new handshakes
// get the new certificate, otsync_tls_reloads_total), garbage and a mismatched
// key refused on SIGHUP (the old certificate stays); --tls-client-ca refusing
// clients without a certificate from the CA.
//
// Hostile clients against that listener (each closed by the server within a
// bounded time and counted once in otsync_tls_handshake_failures_total, the
// process up, fds back, other clients editing): 200 sockets that never start a
// handshake, dropped at --tls-handshake-timeout-ms (500 ms) while a wss://
// client edits; random bytes, cut, corrupted and byte-by-byte ClientHellos (a
// real one caught from Node's client; seeded, OTSYNC_FUZZ_SEED); the TLS policy
// with EC and RSA certificates (TLS 1.0/1.1, CBC, static-RSA and DHE suites
// refused, each probe shown to work against a permissive Node server first;
// the ECDHE AEAD suites and TLS 1.3 taken); TLS 1.2 renegotiation refused.
//
// Bounded: every wait has a timeout; processes are stopped by PID (cluster.sh stop).

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {execFileSync} = require('child_process');
const fs = require('fs');
const http = require('http');
const https = require('https');
const os = require('os');
const path = require('path');
const S = require('./support');

const ROOT = path.resolve(__dirname, '..', '..');
const CLUSTER = path.join(ROOT, 'scripts', 'cluster.sh');
const MAKE_CERTS = path.join(ROOT, 'tests', 'support', 'make_test_certs.sh');
let dir;
let env;
let ca;
let acme;  // stands in for an ACME client answering HTTP-01 challenges

function haproxyLog() {
  try { return fs.readFileSync(path.join(dir, 'haproxy.log'), 'utf8').slice(-3000); } catch (_) { return ''; }
}

/** A sharedb client over wss://, trusting the test CA (or nothing but the system's store). */
async function connectWss({trustCa = true} = {}) {
  const socket = new S.WebSocket(env.HAPROXY_WSS_URL, trustCa ? {ca} : {});
  const connection = new S.ShareDB.Connection(socket);
  connection.errors = [];
  connection.on('error', (e) => connection.errors.push(e));
  connection.on('connection error', () => {});
  await S.waitState(connection, 'connected', 10000);
  return connection;
}

/** GET over http or https (bounded): {status, headers, body}. */
function get(url, options = {}) {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, options, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body}));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

describe('sharedb over wss:// through HAProxy', () => {
  before(async () => {
    acme = http.createServer((req, res) => {
      res.writeHead(200, {'content-type': 'text/plain'});
      res.end(`challenge answer for ${req.url}`);
    });
    await new Promise((resolve) => acme.listen(0, '127.0.0.1', resolve));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-tls-js-'));
    execFileSync(MAKE_CERTS, [path.join(dir, 'certs')], {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
    ca = fs.readFileSync(path.join(dir, 'certs', 'ca.pem'));
    const args = ['start', dir];
    if (process.env.OTSYNCD) args.push(process.env.OTSYNCD);
    execFileSync(CLUSTER, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 60000,
      env: {
        ...process.env,
        OTSYNC_INSTANCES: '1',
        CLUSTER_TLS_CERT: path.join(dir, 'certs', 'server.pem'),
        HAPROXY_ACME_BACKEND: `127.0.0.1:${acme.address().port}`,
      },
    });
    env = Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
      .map((l) => l.split('=')));
  });

  after(() => {
    if (acme) acme.close();
    if (!dir) return;
    execFileSync(CLUSTER, ['stop', dir], {stdio: 'inherit', timeout: 60000});
    fs.rmSync(dir, {recursive: true, force: true});
  });

  it('writes the wss:// URL and no plain one', () => {
    assert.match(env.HAPROXY_WSS_URL || '', /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.equal(env.HAPROXY_URL, undefined);
  });

  it('creates, edits and fetches', {timeout: 60000}, async () => {
    const writer = await connectWss();
    const reader = await connectWss();
    try {
      const id = S.uid('tls');
      const doc = S.getDoc(writer, 'tls', id);
      await S.create(doc, 'hello');
      await S.submitOp(doc, [5, ', wss 😀']);
      await S.submitOp(doc, [0, '>']);
      const fetched = S.getDoc(reader, 'tls', id);
      await S.fetch(fetched);
      assert.equal(fetched.data, '>hello, wss 😀');
      assert.equal(fetched.version, 3);
      assert.deepEqual(writer.errors, []);
      assert.deepEqual(doc.errors, []);
    } catch (e) {
      e.message += `\n${haproxyLog()}`;
      throw e;
    } finally {
      S.closeAll([writer, reader]);
    }
  });

  it('refuses a server whose CA the client does not trust', {timeout: 30000}, async () => {
    const socket = new S.WebSocket(env.HAPROXY_WSS_URL);
    const error = await S.withTimeout(new Promise((resolve) => {
      socket.on('error', resolve);
      socket.on('open', () => resolve(new Error('opened')));
    }), 10000, 'a TLS error');
    // Node's name for a chain that ends at a CA it does not know (OpenSSL's X509_V_ERR_… of a lone leaf).
    assert.ok(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'].includes(error.code),
      `${error.code}: ${error}`);
    socket.terminate();
  });

  it('answers HTTPS with HSTS', async () => {
    const base = env.HAPROXY_WSS_URL.replace(/^wss:/, 'https:').replace(/\/ws$/, '');
    const res = await get(`${base}/healthz`, {ca});
    assert.equal(res.status, 200);
    assert.match(res.headers['strict-transport-security'] || '', /^max-age=\d{7,}/);
  });

  it('redirects plain HTTP to HTTPS, except the probes and ACME challenges', async () => {
    const httpBase = `http://127.0.0.1:${env.HAPROXY_HTTP_PORT}`;
    const httpsPort = new URL(env.HAPROXY_WSS_URL).port;
    for (const probe of ['/healthz', '/readyz']) {
      const res = await get(httpBase + probe);
      assert.equal(res.status, 200, probe);
      assert.equal(res.headers['strict-transport-security'], undefined, `${probe}: no HSTS over plain HTTP`);
    }
    for (const target of ['/ws', '/api/v1/docs/tls?limit=1', '/metrics']) {
      const res = await get(httpBase + target);
      assert.equal(res.status, 301, target);
      assert.equal(res.headers.location, `https://127.0.0.1:${httpsPort}${target}`);
    }
    // ACME challenges reach the ACME client over plain HTTP (the CA cannot use HTTPS before the certificate).
    const challenge = await get(`${httpBase}/.well-known/acme-challenge/t0ken`);
    assert.equal(challenge.status, 200);
    assert.equal(challenge.body, 'challenge answer for /.well-known/acme-challenge/t0ken');
    // A WebSocket upgrade over plain HTTP is refused (redirected), never proxied in the clear.
    const socket = new S.WebSocket(`ws://127.0.0.1:${env.HAPROXY_HTTP_PORT}/ws`);
    const error = await S.withTimeout(new Promise((resolve) => {
      socket.on('error', resolve);
      socket.on('open', () => resolve(new Error('opened')));
    }), 10000, 'the plain upgrade refused');
    assert.match(String(error), /301/);
    socket.terminate();
  });
});

// ---------------------------------------------------------------------------
// otsyncd's own TLS listener (--tls-cert, --tls-key, --tls-client-ca), no proxy:
// wss:// and https:// on the one port; SIGHUP re-reads the certificate files
// (new connections get the new certificate, open ones are untouched, a failed
// reload keeps the old one); client certificates when --tls-client-ca is given.
// Then hostile clients: stalled and garbage handshakes, the TLS policy, renegotiation.

const crypto = require('crypto');
const tls = require('tls');

/** The value of one Prometheus sample in /metrics text (labels: a subset to match), or undefined. */
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const [, k, v] of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[k] = v;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function metrics(server) {
  const r = await server.get('/metrics');
  assert.equal(r.status, 200, `/metrics: HTTP ${r.status}`);
  return r.text;
}

/** A counter's value (0 while the server has not shown it yet). */
async function counter(server, name, labels = {}) {
  return sample(await metrics(server), name, labels) || 0;
}

/** Waits until the counter reaches `value`, then checks that it is exactly `value` (bounded). */
async function expectCounter(server, name, labels, value, what) {
  let last;
  try {
    await S.waitUntil(async () => (last = await counter(server, name, labels)) >= value, 5000, what, 50);
  } catch (e) {
    e.message += ` (${name}${JSON.stringify(labels)} = ${last}, expected ${value})`;
    throw e;
  }
  assert.equal(last, value, `${what}: ${name}${JSON.stringify(labels)}`);
}

/** A TLS connection (no session reuse): resolves to the server's certificate, as Node reports it. */
function peerCertificate(port, options) {
  return S.withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({host: '127.0.0.1', port, ...options}, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert);
    });
    socket.on('error', reject);
  }), 10000, `a TLS handshake with 127.0.0.1:${port}`);
}

/** A WebSocket that must not open: resolves to its error (bounded). */
function refusedSocket(url, options) {
  const socket = new S.WebSocket(url, options);
  return S.withTimeout(new Promise((resolve) => {
    socket.on('error', resolve);
    socket.on('open', () => resolve(new Error('opened')));
  }), 10000, `${url} refused`).finally(() => socket.terminate());
}

/** A sharedb client over wss:// to `server` with the TLS options (ca, cert, key) given. */
async function connectTls(server, options = server.tls) {
  const socket = new S.WebSocket(server.wsUrl, options);
  const connection = new S.ShareDB.Connection(socket);
  connection.errors = [];
  connection.on('error', (e) => connection.errors.push(e));
  connection.on('connection error', () => {});
  await S.waitState(connection, 'connected', 10000);
  return connection;
}

/** Fetch of c/id through a fresh wss:// client: {v, data}. */
async function freshFetchTls(server, collection, id) {
  const connection = await connectTls(server);
  try {
    const doc = S.getDoc(connection, collection, id);
    await S.fetch(doc);
    return {v: doc.version, data: doc.data};
  } finally {
    connection.close();
  }
}

/** The certificate in a cert+key PEM file: {serial, fingerprint256, notAfter (Unix seconds)}. */
function certOf(file) {
  const x = new crypto.X509Certificate(fs.readFileSync(file));
  return {serial: x.serialNumber, fingerprint256: x.fingerprint256, notAfter: Date.parse(x.validTo) / 1000};
}

/** Replaces `file` atomically (a rename over it), as a certificate renewal should. */
function replaceFile(file, content) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

// ---- hostile clients: raw TCP sockets, ClientHellos, TLS policy probes ----

const net = require('net');

const HANDSHAKE_TIMEOUT_MS = 500;  // the hostile server's --tls-handshake-timeout-ms

const fdCount = (server) => fs.readdirSync(`/proc/${server.pid}/fd`).length;
function rssKiB(server) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${server.pid}/status`, 'utf8'));
  assert.ok(m, `VmRSS in /proc/${server.pid}/status`);
  return Number(m[1]);
}
function assertAlive(server) {
  assert.equal(server.exit, null, `otsyncd exited: ${JSON.stringify(server.exit)}`);
  process.kill(server.pid, 0);  // throws if the process is gone
}

/**
 * A raw TCP connection to `port` that never ends by itself: `onConnect(socket, r)` sends what it likes.
 * The record tells when it was opened (before connect, so never later than the server's accept), when
 * the server closed it, what arrived and how it ended. Only `destroyRaw` (in a finally) closes it from here.
 */
function openRaw(port, label, onConnect = () => {}) {
  const r = {label, startedAt: Date.now(), connectedAt: null, closedAt: null, received: 0, events: []};
  r.socket = net.connect({host: '127.0.0.1', port}, () => {
    r.connectedAt = Date.now();
    onConnect(r.socket, r);
  });
  r.socket.on('data', (chunk) => { r.received += chunk.length; });
  r.socket.on('end', () => r.events.push('end'));
  r.socket.on('error', (e) => r.events.push(e.code || e.message));
  r.socket.on('close', () => {
    r.closedAt = Date.now();
    if (r.timer) clearInterval(r.timer);
  });
  return r;
}

function destroyRaw(records) {
  for (const r of records) {
    if (r.timer) clearInterval(r.timer);
    r.socket.destroy();
  }
}

/** Waits (bounded) until the server has closed every raw socket; the failure names the ones still open. */
async function expectAllClosed(records, ms, what) {
  try {
    await S.waitUntil(() => records.every((r) => r.closedAt !== null), ms, what, 10);
  } catch (e) {
    const open = records.filter((r) => r.closedAt === null);
    e.message += `: ${open.length} of ${records.length} still open after ${ms} ms ` +
      `(${[...new Set(open.map((r) => r.label))].slice(0, 20).join('; ')})`;
    throw e;
  }
  for (const r of records) {
    assert.ok(r.connectedAt !== null, `${r.label}: never connected (${r.events.join(',')})`);
  }
}

/** The ClientHello record Node's TLS client sends (TLS 1.2 and 1.3 offered), caught by a plain TCP server. */
async function captureClientHello() {
  const catcher = net.createServer();
  await new Promise((resolve) => catcher.listen(0, '127.0.0.1', resolve));
  let client;
  try {
    return await S.withTimeout(new Promise((resolve) => {
      catcher.once('connection', (c) => {
        let buf = Buffer.alloc(0);
        c.on('error', () => {});
        c.on('data', (chunk) => {
          buf = Buffer.concat([buf, chunk]);
          if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
            c.destroy();
            resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
          }
        });
      });
      client = tls.connect({host: '127.0.0.1', port: catcher.address().port, rejectUnauthorized: false});
      client.on('error', () => {});
    }), 5000, 'a ClientHello');
  } finally {
    if (client) client.destroy();
    catcher.close();
  }
}

/**
 * GET /healthz over a TLS connection made with `options` (minVersion, maxVersion, ciphers, ...), no
 * connection reuse. {protocol, cipher} once the server answered 200 (so it finished its side of the
 * handshake), or {error} (the client's error code).
 */
function httpsProbe(port, options) {
  let req;
  return S.withTimeout(new Promise((resolve) => {
    req = https.get({host: '127.0.0.1', port, path: '/healthz', agent: false, ...options}, (res) => {
      const protocol = res.socket.getProtocol();
      const cipher = res.socket.getCipher().name;
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? {protocol, cipher} : {error: `HTTP ${res.statusCode}`}));
    });
    req.on('error', (e) => resolve({error: e.code || e.message}));
  }), 5000, `GET /healthz on 127.0.0.1:${port} with ${JSON.stringify(options)}`).finally(() => req.destroy());
}

/**
 * The control for a refused probe: a Node TLS server with the same certificate that allows everything
 * (TLS 1.0+, every cipher at security level 0, DHE, client renegotiation). The probe must succeed there,
 * or its refusal by otsyncd would prove nothing (e.g. a static-RSA suite can never be agreed with an EC
 * certificate). Runs fn(port) and closes the server and its connections.
 */
async function withPermissiveServer(pem, fn) {
  const sockets = new Set();
  const options = {cert: pem, key: pem, minVersion: 'TLSv1', ciphers: 'ALL@SECLEVEL=0', dhparam: 'auto'};
  const server = tls.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  });
  server.on('tlsClientError', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await fn(server.address().port);
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
  }
}

/**
 * A TLS handshake with `options`: {protocol, cipher} or {error} (the client's error code, which names
 * the alert the server sent: https.get would report some of those as a bare EPROTO).
 */
function tlsHandshake(port, options) {
  let socket;
  return S.withTimeout(new Promise((resolve) => {
    socket = tls.connect({host: '127.0.0.1', port, ...options},
      () => resolve({protocol: socket.getProtocol(), cipher: socket.getCipher().name}));
    socket.on('error', (e) => resolve({error: e.code || e.message}));
  }), 5000, `a TLS handshake with 127.0.0.1:${port} (${JSON.stringify(options)})`).finally(() => socket.destroy());
}

/** A TLS handshake with `options` against a permissive server with `pem`: {protocol, cipher} or {error}. */
function permissiveProbe(pem, options) {
  return withPermissiveServer(pem, (port) => tlsHandshake(port, {rejectUnauthorized: false, ...options}));
}

/**
 * A TLS 1.2 connection that sends one HTTP request (keep-alive) and, once answered, asks for a
 * renegotiation. {status (of the request), renegotiated (the callback said yes), error, closed}.
 */
function renegotiateProbe(port, options) {
  let socket;
  return S.withTimeout(new Promise((resolve) => {
    const result = {status: null, renegotiated: false, error: null, closed: false};
    const settle = () => resolve(result);
    socket = tls.connect({host: '127.0.0.1', port, maxVersion: 'TLSv1.2', ...options}, () => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      socket.on('data', () => {});
      result.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const asked = socket.renegotiate({rejectUnauthorized: options.rejectUnauthorized !== false}, (err) => {
        if (err) result.error = result.error || err.code || err.message;
        else result.renegotiated = true;
        settle();
      });
      if (!asked) {
        result.error = 'renegotiate() returned false';
        settle();
      }
    };
    socket.on('data', onData);
    socket.on('error', (e) => {
      result.error = result.error || e.code || e.message;
      settle();
    });
    socket.on('close', () => {
      result.closed = true;
      settle();
    });
  }), 5000, `a renegotiation on 127.0.0.1:${port}`).finally(() => socket.destroy());
}

/** A wss:// sharedb client connects, creates and edits (bounded); closed afterwards. */
async function honestEdit(server, what) {
  const c = await connectTls(server);
  try {
    const doc = S.getDoc(c, 'tls', S.uid(what));
    await S.create(doc, 'honest');
    await S.submitOp(doc, [6, ' edit']);
    assert.equal(doc.data, 'honest edit');
    assert.equal(doc.version, 2);
    assert.deepEqual(c.errors, [], `${what}: connection errors`);
    assert.deepEqual(doc.errors, [], `${what}: doc errors`);
  } finally {
    c.close();
  }
}

describe('sharedb over wss:// to otsyncd\'s own TLS listener', {
  skip: S.serverKind() !== 'otsyncd' && 'otsyncd only (the ShareDB peer has no TLS listener)',
}, () => {
  let certDir;
  let caPem;
  // plain: --tls-cert; reload: the certificate reloaded; mutual: --tls-client-ca; hostile: a short
  // --tls-handshake-timeout-ms for the hostile clients; rsa: an RSA certificate (the TLS policy's RSA side)
  const servers = {};

  before(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-tls-native-'));
    execFileSync(MAKE_CERTS, [certDir], {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
    caPem = fs.readFileSync(path.join(certDir, 'ca.pem'));
    // The reloaded server reads a copy of server.pem that the test replaces.
    fs.copyFileSync(path.join(certDir, 'server.pem'), path.join(certDir, 'live.pem'));
    const clientPem = fs.readFileSync(path.join(certDir, 'client.pem'));
    const [plain, reload, mutual, hostile, rsa, capped] = await Promise.all([
      S.startServer({kind: 'otsyncd', args: ['--tls-cert', path.join(certDir, 'server.pem')], tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd', args: ['--tls-cert', path.join(certDir, 'live.pem')], tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd',
        args: ['--tls-cert', path.join(certDir, 'server.pem'), '--tls-client-ca', path.join(certDir, 'ca.pem')],
        tls: {ca: caPem, cert: clientPem, key: clientPem}}),
      S.startServer({kind: 'otsyncd',
        args: ['--tls-cert', path.join(certDir, 'server.pem'),
          '--tls-handshake-timeout-ms', String(HANDSHAKE_TIMEOUT_MS), '--max-tls-handshakes-per-address', '300'],
        tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd', args: ['--tls-cert', path.join(certDir, 'server-rsa.pem')], tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd',
        args: ['--tls-cert', path.join(certDir, 'server.pem'),
          '--tls-handshake-timeout-ms', String(HANDSHAKE_TIMEOUT_MS), '--max-tls-handshakes-per-address', '20'],
        tls: {ca: caPem}}),
    ].map((p) => p.catch((e) => e)));
    Object.assign(servers, {plain, reload, mutual, hostile, rsa, capped});
    for (const s of Object.values(servers)) if (s instanceof Error) throw s;
  });

  after(async () => {
    const problems = [];
    for (const [name, s] of Object.entries(servers)) {
      if (!s || s instanceof Error) continue;
      const exit = await s.stop();
      if (exit.code !== 0) problems.push(`${name}: ${JSON.stringify(exit)}\n${s.logs().slice(-4000)}`);
      s.cleanup();
    }
    if (certDir) fs.rmSync(certDir, {recursive: true, force: true});
    // A graceful SIGTERM must end with exit 0 (the contract); anything else is a server bug.
    if (problems.length) throw new Error(`otsyncd did not exit cleanly on SIGTERM: ${problems.join('\n')}`);
  });

  const logged = (name, fn) => (t) => S.withServerLog(() => servers[name], () => fn(t));

  it('creates, edits and fetches over wss://', {timeout: 30000}, logged('plain', async () => {
    const server = servers.plain;
    assert.match(server.wsUrl, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    const writer = await connectTls(server);
    const reader = await connectTls(server);
    try {
      const id = S.uid('tls-native');
      const doc = S.getDoc(writer, 'tls', id);
      await S.create(doc, 'hello');
      await S.submitOp(doc, [5, ', wss 😀']);
      await S.submitOp(doc, [0, '>']);
      const fetched = S.getDoc(reader, 'tls', id);
      await S.fetch(fetched);
      assert.equal(fetched.data, '>hello, wss 😀');
      assert.equal(fetched.version, 3);
      assert.deepEqual(writer.errors, []);
      assert.deepEqual(doc.errors, []);
    } finally {
      S.closeAll([writer, reader]);
    }
  }));

  it('is refused by a client that does not trust its CA', {timeout: 30000}, logged('plain', async () => {
    const server = servers.plain;
    const before = await counter(server, 'otsync_tls_handshake_failures_total');
    const error = await refusedSocket(server.wsUrl);
    assert.ok(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'].includes(error.code),
      `${error.code}: ${error}`);
    // The client aborts the handshake (an alert): a handshake failure on the server's side.
    await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + 1, 'the refused handshake counted');
  }));

  it('answers /healthz, /readyz, /metrics and REST over https://', {timeout: 30000}, logged('plain', async () => {
    const server = servers.plain;
    assert.match(server.httpUrl, /^https:\/\//);
    for (const probe of ['/healthz', '/readyz']) assert.equal((await server.get(probe)).status, 200, probe);
    const rest = await server.get('/api/v1/docs/tls?limit=1');
    assert.equal(rest.status, 200, rest.text);
    // The serving certificate's notAfter, as Unix seconds.
    const text = await metrics(server);
    assert.equal(sample(text, 'otsync_tls_certificate_not_after_seconds'),
      certOf(path.join(certDir, 'server.pem')).notAfter, 'otsync_tls_certificate_not_after_seconds');
    for (const result of ['ok', 'failed']) {
      assert.equal(sample(text, 'otsync_tls_reloads_total', {result}) || 0, 0, `reloads ${result} before any SIGHUP`);
    }
  }));

  it('refuses plain ws:// and http:// on the TLS port, and serves on', {timeout: 30000}, logged('plain', async () => {
    const server = servers.plain;
    const plainUrl = server.wsUrl.replace(/^wss:/, 'ws:');
    const before = await counter(server, 'otsync_tls_handshake_failures_total');
    const error = await refusedSocket(plainUrl);
    assert.notEqual(error.message, 'opened', 'a plain WebSocket opened on the TLS port');
    await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + 1, 'the plain upgrade counted');
    // Plain HTTP: a 400 in the clear naming the problem (never the probe's 200).
    const plainHttp = await S.withTimeout(new Promise((resolve) => {
      const req = http.get(`http://127.0.0.1:${server.port}/healthz`, {agent: false}, (res) => {
        let body = '';
        res.on('data', (chunk) => { body += chunk; });
        res.on('end', () => resolve({status: res.statusCode, body}));
      });
      req.on('error', (error) => resolve({error: error.message}));
    }), 10000, 'plain HTTP refused');
    assert.equal(plainHttp.status, 400, `plain HTTP on the TLS port: ${JSON.stringify(plainHttp)}`);
    assert.equal(JSON.parse(plainHttp.body).error.code, 'ERR_TLS_REQUIRED');
    // The server still serves.
    assert.equal(server.exit, null, 'otsyncd exited');
    assert.equal((await server.get('/healthz')).status, 200);
    const c = await connectTls(server);
    try {
      const doc = S.getDoc(c, 'tls', S.uid('after-plain'));
      await S.create(doc, 'still here');
      await S.submitOp(doc, [10, '!']);
      assert.equal(doc.data, 'still here!');
    } finally {
      c.close();
    }
  }));

  it('reloads its certificate on SIGHUP under load: nothing lost, no connection dropped, a bad file keeps the old one',
    {timeout: 60000}, logged('reload', async () => {
      const server = servers.reload;
      const live = path.join(certDir, 'live.pem');
      const first = certOf(path.join(certDir, 'server.pem'));
      const second = certOf(path.join(certDir, 'server2.pem'));
      assert.notEqual(first.serial, second.serial);
      assert.equal((await peerCertificate(server.port, {ca: caPem})).fingerprint256, first.fingerprint256);

      const CLIENTS = 6;
      const RUN_MS = 3000;
      const MAX_OPS = 1500;  // per client (paced: about 500 in RUN_MS)
      const PAUSE_MS = 3;  // between an ack and the next insert
      const id = S.uid('reload');
      const clients = [];
      const closed = [];  // sockets closed (or connections not 'connected') during the run
      try {
        for (let i = 0; i < CLIENTS; i++) {
          const connection = await connectTls(server);
          connection.socket.on('close', (code) => closed.push(`client ${i}: socket closed (${code})`));
          connection.on('state', (state) => {
            if (state !== 'connected') closed.push(`client ${i}: connection ${state}`);
          });
          const doc = S.getDoc(connection, 'tls', id);
          await S.subscribe(doc);
          if (i === 0) await S.create(doc, '');
          clients.push({i, connection, doc, acked: [], afterReload: 0});
        }
        // Each client inserts its own tokens, one in flight at a time, only between tokens (never inside
        // one), so every acknowledged token must stay whole in the text. They go on until RUN_MS and
        // the reload's checks are both over.
        let reloaded = false;
        let reloadChecked = false;
        const deadline = Date.now() + RUN_MS;
        const typist = async (c) => {
          for (let n = 0; n < MAX_OPS && (Date.now() < deadline || !reloadChecked); n++) {
            const token = `[c${c.i}-${n}]`;
            const text = c.doc.data;
            const at = text.length ? text.indexOf(']', Math.floor(Math.random() * text.length)) + 1 : 0;
            await S.submitOp(c.doc, [at, token]);
            c.acked.push(token);
            if (reloaded) c.afterReload++;
            await S.sleep(PAUSE_MS);
          }
        };
        const reload = async () => {
          await S.sleep(RUN_MS / 3);
          replaceFile(live, fs.readFileSync(path.join(certDir, 'server2.pem')));
          process.kill(server.pid, 'SIGHUP');
          await expectCounter(server, 'otsync_tls_reloads_total', {result: 'ok'}, 1, 'the reload counted');
          reloaded = true;
          // A new connection, while the load goes on, gets the new certificate.
          const cert = await peerCertificate(server.port, {ca: caPem});
          assert.equal(cert.serialNumber, second.serial, 'the certificate after the reload');
          assert.equal(cert.fingerprint256, second.fingerprint256);
          reloadChecked = true;
        };
        // (a failed reload check ends the load at once)
        await Promise.all([...clients.map(typist), reload().finally(() => { reloadChecked = true; })]);
        for (const c of clients) await S.whenNothingPending(c.doc);

        assert.deepEqual(closed, [], 'connections dropped during the reload');
        for (const c of clients) {
          assert.ok(c.acked.length > 0, `client ${c.i} acknowledged nothing`);
          assert.ok(c.afterReload > 0, `client ${c.i} acknowledged nothing after the reload`);
          assert.deepEqual(c.connection.errors, [], `client ${c.i} errors`);
          assert.deepEqual(c.doc.errors, [], `client ${c.i} doc errors`);
        }
        const final = await freshFetchTls(server, 'tls', id);
        const total = clients.reduce((a, c) => a + c.acked.length, 0);
        assert.equal(final.v, 1 + total, 'one version per acknowledged insert (after the create)');
        for (const c of clients) {
          for (const token of c.acked) {
            const at = final.data.indexOf(token);
            assert.ok(at >= 0, `acknowledged ${token} missing from the server's text`);
            assert.equal(final.data.indexOf(token, at + 1), -1, `${token} twice`);
          }
        }
        assert.equal(final.data.length, clients.reduce((a, c) => a + c.acked.join('').length, 0));
        await S.waitUntil(() => clients.every((c) => c.doc.version === final.v), 10000, 'every replica at the head', 20);
        for (const c of clients) assert.equal(c.doc.data, final.data, `client ${c.i}'s replica`);
        const gauge = sample(await metrics(server), 'otsync_tls_certificate_not_after_seconds');
        assert.equal(gauge, second.notAfter, 'otsync_tls_certificate_not_after_seconds after the reload');
        console.log(`[tls] reload under load: ${CLIENTS} clients, ${total} inserts acknowledged, ` +
          `${clients.reduce((a, c) => a + c.afterReload, 0)} after the reload`);

        // Garbage in the certificate file: the reload fails, the old (second) certificate stays.
        fs.writeFileSync(live, 'this is not a PEM file\n');
        process.kill(server.pid, 'SIGHUP');
        await expectCounter(server, 'otsync_tls_reloads_total', {result: 'failed'}, 1, 'the failed reload counted');
        await S.waitUntil(() => server.logs().includes('tls_reload_failed'), 5000, 'tls_reload_failed in the log', 20);
        assert.equal((await peerCertificate(server.port, {ca: caPem})).fingerprint256, second.fingerprint256,
          'the certificate after a failed reload');
        // A certificate with another certificate's key: refused as well.
        const pemBlocks = (file) => fs.readFileSync(path.join(certDir, file), 'utf8')
          .match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----\n?/g);
        const [serverCert, serverKey] = pemBlocks('server.pem');
        const [cert2] = pemBlocks('server2.pem');
        assert.match(serverKey, /PRIVATE KEY/);
        replaceFile(live, cert2 + serverKey);
        process.kill(server.pid, 'SIGHUP');
        await expectCounter(server, 'otsync_tls_reloads_total', {result: 'failed'}, 2, 'the mismatched key refused');
        assert.equal((await peerCertificate(server.port, {ca: caPem})).fingerprint256, second.fingerprint256,
          'the certificate after a reload with a key that does not match');
        assert.equal(await counter(server, 'otsync_tls_reloads_total', {result: 'ok'}), 1);
        assert.equal(sample(await metrics(server), 'otsync_tls_certificate_not_after_seconds'), second.notAfter);
        assert.equal(server.exit, null, 'otsyncd exited');

        // The connections opened before every reload still work, and so do new ones.
        for (const c of clients) await S.submitOp(c.doc, [0, `[c${c.i}-last]`]);
        const fresh = await connectTls(server);
        try {
          const doc = S.getDoc(fresh, 'tls', id);
          await S.fetch(doc);
          assert.equal(doc.version, final.v + CLIENTS);
        } finally {
          fresh.close();
        }
        assert.deepEqual(closed, [], 'connections dropped by the failed reloads');

        // And a good file again is taken.
        replaceFile(live, serverCert + serverKey);
        process.kill(server.pid, 'SIGHUP');
        await expectCounter(server, 'otsync_tls_reloads_total', {result: 'ok'}, 2, 'the second good reload');
        assert.equal((await peerCertificate(server.port, {ca: caPem})).fingerprint256, first.fingerprint256);
      } finally {
        S.closeAll(clients.map((c) => c.connection));
      }
    }));

  it('with --tls-client-ca, refuses clients without a certificate from that CA', {timeout: 30000},
    logged('mutual', async () => {
      const server = servers.mutual;
      const before = await counter(server, 'otsync_tls_handshake_failures_total');
      // No client certificate: refused in the TLS handshake (TLS 1.3: an alert after the client's Finished).
      const none = await refusedSocket(server.wsUrl, {ca: caPem});
      // (TLS 1.3: certificate_required; TLS 1.2: handshake_failure)
      assert.match(String(none.code), /^ERR_SSL_.*_ALERT_(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)$/,
        `no client certificate: ${none.code}: ${none}`);
      // A client certificate from a CA the server does not trust: refused as well.
      const otherPem = fs.readFileSync(path.join(certDir, 'client-unknown-ca.pem'));
      const other = await refusedSocket(server.wsUrl, {ca: caPem, cert: otherPem, key: otherPem});
      assert.match(String(other.code), /^ERR_SSL_.*_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE)$/, `unknown CA: ${other.code}: ${other}`);
      await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + 2, 'both refusals counted');

      // With a certificate the CA signed: connects and edits (server.tls carries it).
      const a = await connectTls(server);
      const b = await connectTls(server);
      try {
        const id = S.uid('mtls');
        const doc = S.getDoc(a, 'tls', id);
        await S.create(doc, 'mutual');
        await S.submitOp(doc, [6, ' TLS']);
        const fetched = S.getDoc(b, 'tls', id);
        await S.fetch(fetched);
        assert.equal(fetched.data, 'mutual TLS');
        assert.equal(fetched.version, 2);
        assert.deepEqual(a.errors, []);
      } finally {
        S.closeAll([a, b]);
      }
      assert.equal((await server.get('/healthz')).status, 200);
    }));

  // ---- hostile clients (each: the server closes them within a bounded time, counts each failed
  // handshake once, stays up, and other clients carry on) ----

  it('drops 200 connections that never start a handshake after --tls-handshake-timeout-ms, while a wss:// client edits',
    {timeout: 30000}, logged('hostile', async () => {
      const server = servers.hostile;
      const COUNT = 200;
      const before = await counter(server, 'otsync_tls_handshake_failures_total');
      const fds0 = fdCount(server);
      const rss0 = rssKiB(server);
      const raws = [];
      let honest;
      try {
        for (let i = 0; i < COUNT; i++) raws.push(openRaw(server.port, `silent socket ${i}`));
        // Every one accepted by the server (each holds an fd there) before the honest client starts.
        await S.waitUntil(() => fdCount(server) >= fds0 + COUNT, 3000, `the server holding ${COUNT} more fds`, 5);
        const fdsPeak = fdCount(server);
        const rssPeak = rssKiB(server);

        const t0 = Date.now();
        honest = await connectTls(server);
        const doc = S.getDoc(honest, 'tls', S.uid('beside-silent'));
        await S.create(doc, 'beside');
        await S.submitOp(doc, [6, ' 200 silent sockets']);
        const editMs = Date.now() - t0;
        const openWhenEdited = raws.filter((r) => r.closedAt === null).length;
        assert.equal(openWhenEdited, COUNT,
          `the wss:// client took ${editMs} ms to connect and edit: some silent sockets were closed before that`);

        await expectAllClosed(raws, 5000, 'the server closing every silent socket');
        const lives = raws.map((r) => r.closedAt - r.startedAt);
        for (const [i, r] of raws.entries()) {
          // Opened before the server accepted it, so never closed before the timeout (25 ms for clock rounding).
          assert.ok(lives[i] >= HANDSHAKE_TIMEOUT_MS - 25,
            `${r.label} closed after ${lives[i]} ms, before the timeout`);
          assert.ok(lives[i] < 5000, `${r.label} closed after ${lives[i]} ms`);
          assert.equal(r.received, 0, `${r.label}: the server sent ${r.received} bytes to a client that said nothing`);
        }
        await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + COUNT,
          'every timed-out handshake counted');

        // The honest client's connection is untouched; the server's fds are back (the honest client's one left).
        await S.submitOp(doc, [0, '>']);
        assert.equal(doc.data, '>beside 200 silent sockets');
        assert.deepEqual(honest.errors, []);
        assert.deepEqual(doc.errors, []);
        await S.waitUntil(() => fdCount(server) <= fds0 + 2, 3000, `fds back near ${fds0}`, 10);
        assertAlive(server);
        console.log(`[tls] ${COUNT} silent sockets: closed by the server ` +
          `${Math.min(...lives)}-${Math.max(...lives)} ms ` +
          `after opening; a wss:// client connected and edited in ${editMs} ms meanwhile; server fds ${fds0} -> ` +
          `${fdsPeak} -> ${fdCount(server)}, RSS ${rss0} -> ${rssPeak} KiB`);
      } finally {
        destroyRaw(raws);
        if (honest) honest.close();
      }
    }));

  it('closes handshakes past --max-tls-handshakes-per-address at once, counts them, and serves once they end',
    {timeout: 30000}, logged('capped', async () => {
      const server = servers.capped;
      const COUNT = 50;
      const LIMIT = 20;
      const labels = {limit: 'tls_handshakes_per_address'};
      const before = await counter(server, 'otsync_limit_hits_total', labels);
      const raws = [];
      let honest;
      try {
        for (let i = 0; i < COUNT; i++) raws.push(openRaw(server.port, `silent socket ${i}`));
        // The ones past the limit are closed at accept, well before the handshake timeout.
        await S.waitUntil(() => raws.filter((r) => r.closedAt !== null).length >= COUNT - LIMIT,
          HANDSHAKE_TIMEOUT_MS - 100, `${COUNT - LIMIT} sockets closed at once`, 5);
        await expectCounter(server, 'otsync_limit_hits_total', labels, before + COUNT - LIMIT,
          'every refused handshake counted');
        await expectAllClosed(raws, 5000, 'the rest closed at the handshake timeout');
        for (const r of raws) assert.equal(r.received, 0, `${r.label}: the server sent bytes`);
        // Their slots are free again: an honest client from the same address connects and edits.
        honest = await connectTls(server);
        const doc = S.getDoc(honest, 'tls', S.uid('after-cap'));
        await S.create(doc, 'capped');
        await S.submitOp(doc, [6, '!']);
        assert.equal(doc.data, 'capped!');
        assertAlive(server);
      } finally {
        destroyRaw(raws);
        if (honest) honest.close();
      }
    }));

  it('closes connections sending garbage, cut or corrupted ClientHellos, or a ClientHello byte by byte; serves on',
    {timeout: 30000}, logged('hostile', async () => {
      const server = servers.hostile;
      const seed = S.fuzzSeed();
      const rng = S.makeRng(seed);
      const randomBytes = (n) => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = rng.int(256);
        return b;
      };
      const hello = await captureClientHello();
      assert.equal(hello[0], 0x16, 'a handshake record');
      assert.equal(hello[5], 0x01, 'a ClientHello');
      const header = (length) => Buffer.from([0x16, 0x03, 0x01, length >> 8, length & 0xff]);
      const cases = [];  // [label, bytes sent at once]
      for (let i = 0; i < 8; i++) cases.push([`random bytes ${i}`, randomBytes(1024 + rng.int(4096))]);
      cases.push(['256 KiB of random bytes', randomBytes(256 * 1024)]);
      cases.push(['a handshake record header, then random bytes', Buffer.concat([header(4096), randomBytes(4096)])]);
      cases.push(['a ClientHello header, then random bytes',
        Buffer.concat([header(4096), Buffer.from([0x01, 0x00, 0x0f, 0xfc]), randomBytes(4092)])]);
      cases.push(['a record header claiming 65535 bytes', header(0xffff)]);
      for (const cut of [1, 3, 5, 6, 9, 11, 43, hello.length >> 1, hello.length - 1]) {
        cases.push([`the ClientHello cut to ${cut} of ${hello.length} bytes`, hello.subarray(0, cut)]);
      }
      cases.push(['a whole ClientHello, then silence', hello]);
      cases.push(['a ClientHello, then random bytes', Buffer.concat([hello, randomBytes(2048)])]);
      cases.push(['two ClientHellos', Buffer.concat([hello, hello])]);
      const recordTooLong = Buffer.from(hello);
      recordTooLong.writeUInt16BE(hello.length - 5 + 1, 3);
      cases.push(['a ClientHello whose record length is one too long', recordTooLong]);
      const recordTooShort = Buffer.from(hello);
      recordTooShort.writeUInt16BE(hello.length - 5 - 1, 3);
      cases.push(['a ClientHello whose record length is one too short', recordTooShort]);
      const flips = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 43, 44, hello.length - 1];
      for (let i = 0; i < 16; i++) flips.push(rng.int(hello.length));
      for (const at of flips) {
        const corrupted = Buffer.from(hello);
        corrupted[at] ^= 1 + rng.int(255);
        const change = `0x${hello[at].toString(16)} -> 0x${corrupted[at].toString(16)}`;
        cases.push([`the ClientHello with byte ${at} changed (${change})`, corrupted]);
      }

      const before = await counter(server, 'otsync_tls_handshake_failures_total');
      const fds0 = fdCount(server);
      const raws = [];
      try {
        for (const [label, bytes] of cases) raws.push(openRaw(server.port, label, (socket) => socket.write(bytes)));
        // A ClientHello one byte every 20 ms (7 s for all of it): the timeout is a deadline, not an idle time.
        raws.push(openRaw(server.port, 'a ClientHello one byte every 20 ms', (socket, r) => {
          let at = 0;
          r.timer = setInterval(() => {
            if (at < hello.length && !socket.destroyed) socket.write(hello.subarray(at, ++at));
          }, 20);
        }));
        await expectAllClosed(raws, 3000, `the server closing every hostile socket (seed ${seed})`);
        const lives = raws.map((r) => r.closedAt - r.startedAt);
        const drip = raws[raws.length - 1];
        assert.ok(drip.closedAt - drip.startedAt < HANDSHAKE_TIMEOUT_MS + 1000,
          `the dripping ClientHello lasted ${drip.closedAt - drip.startedAt} ms`);
        await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + raws.length,
          `one handshake failure per hostile socket (seed ${seed})`);

        assertAlive(server);
        assert.equal((await server.get('/healthz')).status, 200);
        await honestEdit(server, 'after-garbage');
        await S.waitUntil(() => fdCount(server) <= fds0 + 2, 3000, `fds back near ${fds0}`, 10);
        const atOnce = lives.filter((ms) => ms < HANDSHAKE_TIMEOUT_MS / 2).length;
        console.log(`[tls] ${raws.length} hostile sockets (seed ${seed}, ClientHello ${hello.length} bytes): ` +
          `${atOnce} refused at once, ${raws.length - atOnce} at the handshake timeout; ` +
          `the longest ${Math.max(...lives)} ms`);
      } finally {
        destroyRaw(raws);
      }
    }));

  // Node's OpenSSL 3 offers TLS 1.0/1.1 only at security level 0 (at its default level 1 it refuses the
  // server's SHA-1 signature by itself, which would test nothing): those probes carry DEFAULT@SECLEVEL=0.
  const OLD = {minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0'};
  const TLS12 = (ciphers) => ({maxVersion: 'TLSv1.2', ciphers});
  const PROTOCOL_VERSION = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';  // the server's alert, as Node's client names it
  const HANDSHAKE_FAILURE = 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE';

  /**
   * Each refused probe: negotiates with a permissive server holding the same certificate (so it can be
   * agreed at all), is refused by otsyncd with the given alert, and is counted; each accepted one gets
   * /healthz with the expected protocol and cipher.
   */
  async function checkPolicy(server, pemFile, refused, accepted) {
    const pem = fs.readFileSync(path.join(certDir, pemFile));
    const before = await counter(server, 'otsync_tls_handshake_failures_total');
    for (const [what, options, alert] of refused) {
      const control = await permissiveProbe(pem, options);
      assert.ok(control.protocol, `${what}: the probe fails even against a permissive server (${control.error})`);
      const got = await tlsHandshake(server.port, {ca: caPem, ...options});
      assert.equal(got.error, alert, `${what} (${JSON.stringify(options)}; elsewhere ${control.protocol} ` +
        `${control.cipher}): ${JSON.stringify(got)}`);
    }
    for (const [what, options, protocol, cipher] of accepted) {
      const got = await httpsProbe(server.port, {ca: caPem, ...options});
      assert.deepEqual(got, {protocol, cipher}, `${what} (${JSON.stringify(options)})`);
    }
    await expectCounter(server, 'otsync_tls_handshake_failures_total', {}, before + refused.length,
      'one handshake failure per refused probe, none for the accepted ones');
    assertAlive(server);
  }

  it('TLS policy, EC certificate: refuses TLS 1.0/1.1 and CBC suites; takes the ECDHE-ECDSA AEAD suites and TLS 1.3',
    {timeout: 30000}, logged('plain', () => checkPolicy(servers.plain, 'server.pem', [
      ['TLS 1.1', {...OLD, maxVersion: 'TLSv1.1'}, PROTOCOL_VERSION],
      ['TLS 1.0', {...OLD, maxVersion: 'TLSv1'}, PROTOCOL_VERSION],
      ['TLS 1.2, CBC', TLS12('ECDHE-ECDSA-AES128-SHA'), HANDSHAKE_FAILURE],
      ['TLS 1.2, CBC with SHA-384', TLS12('ECDHE-ECDSA-AES256-SHA384'), HANDSHAKE_FAILURE],
    ], [
      ['TLS 1.2, AES-128-GCM', TLS12('ECDHE-ECDSA-AES128-GCM-SHA256'), 'TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
      ['TLS 1.2, AES-256-GCM', TLS12('ECDHE-ECDSA-AES256-GCM-SHA384'), 'TLSv1.2', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
      ['TLS 1.2, ChaCha20-Poly1305', TLS12('ECDHE-ECDSA-CHACHA20-POLY1305'),
        'TLSv1.2', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
      ['TLS 1.2, CBC offered first', TLS12('ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384'),
        'TLSv1.2', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
      ['TLS 1.3', {minVersion: 'TLSv1.3'}, 'TLSv1.3', 'TLS_AES_256_GCM_SHA384'],
      ['TLS 1.3, ChaCha20-Poly1305', {minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256'},
        'TLSv1.3', 'TLS_CHACHA20_POLY1305_SHA256'],
    ])));

  it('TLS policy, RSA certificate: refuses TLS 1.1, static-RSA (not forward-secret), CBC, DHE; takes ECDHE-RSA AEAD',
    {timeout: 30000}, logged('rsa', () => checkPolicy(servers.rsa, 'server-rsa.pem', [
      ['TLS 1.1', {...OLD, maxVersion: 'TLSv1.1'}, PROTOCOL_VERSION],
      ['TLS 1.2, static RSA key exchange, AES-128-GCM', TLS12('AES128-GCM-SHA256'), HANDSHAKE_FAILURE],
      ['TLS 1.2, static RSA key exchange, CBC', TLS12('AES256-SHA256'), HANDSHAKE_FAILURE],
      ['TLS 1.2, ECDHE, CBC', TLS12('ECDHE-RSA-AES128-SHA'), HANDSHAKE_FAILURE],
      ['TLS 1.2, DHE (forward-secret, but not ECDHE)', TLS12('DHE-RSA-AES128-GCM-SHA256'), HANDSHAKE_FAILURE],
    ], [
      ['TLS 1.2, AES-128-GCM', TLS12('ECDHE-RSA-AES128-GCM-SHA256'), 'TLSv1.2', 'ECDHE-RSA-AES128-GCM-SHA256'],
      ['TLS 1.2, AES-256-GCM', TLS12('ECDHE-RSA-AES256-GCM-SHA384'), 'TLSv1.2', 'ECDHE-RSA-AES256-GCM-SHA384'],
      ['TLS 1.2, ChaCha20-Poly1305', TLS12('ECDHE-RSA-CHACHA20-POLY1305'), 'TLSv1.2', 'ECDHE-RSA-CHACHA20-POLY1305'],
      ['TLS 1.2, static RSA offered first', TLS12('AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'),
        'TLSv1.2', 'ECDHE-RSA-AES128-GCM-SHA256'],
      ['TLS 1.3', {minVersion: 'TLSv1.3'}, 'TLSv1.3', 'TLS_AES_256_GCM_SHA384'],
    ])));

  it('refuses TLS 1.2 renegotiation (20 clients asking at once) and serves on', {timeout: 30000},
    logged('plain', async () => {
      const server = servers.plain;
      // The control: a server that allows it renegotiates with this probe.
      const control = await withPermissiveServer(fs.readFileSync(path.join(certDir, 'server.pem')),
        (port) => renegotiateProbe(port, {rejectUnauthorized: false}));
      assert.equal(control.renegotiated, true,
        `the renegotiation probe against a permissive server: ${JSON.stringify(control)}`);

      const results = await Promise.all(Array.from({length: 20}, () => renegotiateProbe(server.port, {ca: caPem})));
      for (const [i, r] of results.entries()) {
        assert.equal(r.status, 200, `client ${i}: the request before the renegotiation: ${JSON.stringify(r)}`);
        assert.equal(r.renegotiated, false, `client ${i} renegotiated: ${JSON.stringify(r)}`);
        assert.ok(r.error || r.closed, `client ${i}: neither refused nor closed: ${JSON.stringify(r)}`);
      }
      assertAlive(server);
      assert.equal((await server.get('/healthz')).status, 200);
      await honestEdit(server, 'after-renegotiation');
      console.log(`[tls] renegotiation refused: ${[...new Set(results.map((r) => r.error || 'closed'))].join(', ')}`);
    }));
});
