'use strict';
// wss:// for the unmodified sharedb client: scripts/cluster.sh with
// OTSYNC_TLS_CERT (HAProxy terminating TLS with docker/haproxy.cfg, in front
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
        OTSYNC_TLS_CERT: path.join(dir, 'certs', 'server.pem'),
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

describe('sharedb over wss:// to otsyncd\'s own TLS listener', {
  skip: S.serverKind() !== 'otsyncd' && 'otsyncd only (the ShareDB peer has no TLS listener)',
}, () => {
  let certDir;
  let caPem;
  const servers = {};  // plain: --tls-cert; reload: the certificate reloaded; mutual: --tls-client-ca

  before(async () => {
    certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-tls-native-'));
    execFileSync(MAKE_CERTS, [certDir], {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
    caPem = fs.readFileSync(path.join(certDir, 'ca.pem'));
    // The reloaded server reads a copy of server.pem that the test replaces.
    fs.copyFileSync(path.join(certDir, 'server.pem'), path.join(certDir, 'live.pem'));
    const clientPem = fs.readFileSync(path.join(certDir, 'client.pem'));
    const [plain, reload, mutual] = await Promise.all([
      S.startServer({kind: 'otsyncd', args: ['--tls-cert', path.join(certDir, 'server.pem')], tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd', args: ['--tls-cert', path.join(certDir, 'live.pem')], tls: {ca: caPem}}),
      S.startServer({kind: 'otsyncd',
        args: ['--tls-cert', path.join(certDir, 'server.pem'), '--tls-client-ca', path.join(certDir, 'ca.pem')],
        tls: {ca: caPem, cert: clientPem, key: clientPem}}),
    ].map((p) => p.catch((e) => e)));
    Object.assign(servers, {plain, reload, mutual});
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
});
