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
