'use strict';
// --auth jwt end to end: bearer tokens on the WebSocket upgrade (header,
// subprotocol, query parameter) and on REST, every kind of bad token refused
// with 401 and counted, permissions per collection and per document over
// WebSocket (the unmodified sharedb client) and REST, a token expiring on an
// open connection (close 4001), and the operator endpoints.

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const WebSocket = require('ws');
const ShareDB = require('sharedb/lib/client');
const S = require('./support');
const J = require('./support/tokens');

const ISS = 'https://issuer.test';
const AUD = 'otsync-test';
const SECRET = crypto.randomBytes(32).toString('hex');
const METRICS_TOKEN = crypto.randomBytes(16).toString('hex');

let server;
let keys;
let keyDir;

/** Claims granting `read` and `write` patterns, valid for `ttl` seconds. */
function claims(read, write, extra = {}) {
  const now = J.nowS();
  return {sub: 'user-1', iss: ISS, aud: AUD, iat: now, exp: now + 600, otsync: {read, write}, ...extra};
}
const token = (read = [], write = [], extra = {}) => J.hs256(SECRET, claims(read, write, extra));
const admin = () => token([], ['*']);

/** Upgrade with `opts` ({headers, protocols, query}); resolves to {status, body} or {open: ws}. */
function tryUpgrade({headers = {}, protocols, query = ''} = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.wsUrl}${query}`, protocols, {headers});
    ws.on('open', () => resolve({open: ws, protocol: ws.protocol}));
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: JSON.parse(text)}));
    });
    ws.on('error', () => {});
  });
}

/** The unmodified sharedb client, its token in the Authorization header. */
async function connectWith(tok) {
  const socket = new WebSocket(server.wsUrl, {headers: {Authorization: `Bearer ${tok}`}});
  const connection = new ShareDB.Connection(socket);
  connection.errors = [];
  connection.on('error', (e) => connection.errors.push(e));
  connection.on('connection error', () => {});
  await S.waitState(connection, 'connected');
  return connection;
}

function get(urlPath, tok) {
  return new Promise((resolve, reject) => {
    const http = require('http');
    const req = http.get(server.httpUrl + urlPath, {headers: tok ? {Authorization: `Bearer ${tok}`} : {}}, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body = text;
        try { body = JSON.parse(text); } catch (_) { /* text */ }
        resolve({status: res.statusCode, headers: res.headers, body, text});
      });
    });
    req.on('error', reject);
  });
}

async function failures() {
  const r = await get('/metrics', METRICS_TOKEN);
  assert.equal(r.status, 200);
  const out = {};
  for (const line of r.text.split('\n')) {
    const m = /^otsync_auth_failures_total\{reason="([^"]+)"\} (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Submits through a callback and resolves to the error (or null). */
const settle = (fn) => new Promise((resolve) => fn((err) => resolve(err || null)));

describe('--auth jwt', () => {
  before(async () => {
    keys = J.makeKeys();
    keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-js-keys-'));
    fs.writeFileSync(path.join(keyDir, 'jwt-secret'), SECRET);
    fs.writeFileSync(path.join(keyDir, 'jwks.json'), JSON.stringify(keys.jwks));
    fs.writeFileSync(path.join(keyDir, 'metrics-token'), METRICS_TOKEN);
    server = await S.startServer({store: 'sqlite', args: ['--auth', 'jwt',
      '--jwt-secret-file', path.join(keyDir, 'jwt-secret'), '--jwt-public-keys', path.join(keyDir, 'jwks.json'),
      '--jwt-issuer', ISS, '--jwt-audience', AUD, '--jwt-clock-skew-s', '1',
      '--metrics-token-file', path.join(keyDir, 'metrics-token')]});
    // Documents to read: made by an admin.
    const c = await connectWith(admin());
    for (const [coll, id, text] of [['notes', 'a', 'note a'], ['notes', 'b', 'note b'], ['other', 'x', 'other x']]) {
      await S.create(S.getDoc(c, coll, id), text);
    }
    c.close();
  });
  after(async () => {
    if (keyDir) fs.rmSync(keyDir, {recursive: true, force: true});
    if (!server) return;
    await server.stop();
    server.cleanup();
  });

  it('an upgrade without a valid token is refused with 401 and a JSON error; each reason is counted', async () => {
    const before = await failures();
    const now = J.nowS();
    const base = claims(['*'], []);
    const cases = [
      ['missing', {}],
      ['malformed', {headers: {Authorization: 'Basic dXNlcjpwYXNz'}}],
      ['expired', {headers: {Authorization: `Bearer ${J.hs256(SECRET, {...base, exp: now - 30})}`}}],
      ['not_yet_valid', {headers: {Authorization: `Bearer ${J.hs256(SECRET, {...base, nbf: now + 30})}`}}],
      ['wrong_issuer', {headers: {Authorization: `Bearer ${J.hs256(SECRET, {...base, iss: 'https://evil.test'})}`}}],
      ['wrong_audience', {headers: {Authorization: `Bearer ${J.hs256(SECRET, {...base, aud: 'someone-else'})}`}}],
      ['bad_signature', {headers: {Authorization: `Bearer ${J.hs256('x'.repeat(32), base)}`}}],
      ['unsupported_algorithm', {headers: {Authorization: `Bearer ${J.none(base)}`}}],
      // Algorithm confusion: HS256 "signed" with the RSA public key's PEM as the secret.
      ['bad_signature', {headers: {Authorization: `Bearer ${J.hs256(
        keys.rsa.publicKey.export({type: 'spki', format: 'pem'}), base, {kid: 'rsa-1'})}`}}],
      ['unknown_key', {headers: {Authorization: `Bearer ${J.rs256(crypto.generateKeyPairSync('rsa',
        {modulusLength: 2048}).privateKey, base, {kid: 'rsa-unknown'})}`}}],
      ['malformed', {headers: {Authorization: 'Bearer not.a.jwt'}}],
      ['missing', {protocols: ['otsync']}],
      ['expired', {query: `?access_token=${J.hs256(SECRET, {...base, exp: now - 30})}`}],
    ];
    const counted = {};
    for (const [reason, opts] of cases) {
      const r = await tryUpgrade(opts);
      assert.equal(r.open, undefined, `${reason}: connected`);
      assert.equal(r.status, 401, reason);
      assert.equal(r.body.error.code, 'ERR_UNAUTHORIZED', reason);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      const tok = (opts.headers?.Authorization || '').replace(/^Bearer /, '');
      if (tok.length > 20) assert.ok(!r.body.error.message.includes(tok.slice(-20)), 'the error never echoes the token');
      counted[reason] = (counted[reason] || 0) + 1;
    }
    const after = await failures();
    for (const [reason, n] of Object.entries(counted)) {
      assert.equal((after[reason] || 0) - (before[reason] || 0), n, `otsync_auth_failures_total{reason="${reason}"}`);
    }
    assert.ok(!server.logs().includes(SECRET));
  });

  it('hostile tokens: huge, deeply nested, many subprotocols, a flood of bad upgrades; the server carries on', async () => {
    const b64 = (s) => Buffer.from(s).toString('base64url');
    const deep = `${b64('{"alg":"HS256"}')}.${b64('['.repeat(2000) + ']'.repeat(2000))}.${b64('x')}`;
    const huge = `${b64('{"alg":"HS256"}')}.${'A'.repeat(7000)}.${b64('x')}`;
    for (const [what, opts] of [
      ['deeply nested payload', {headers: {Authorization: `Bearer ${deep}`}}],
      ['7 KB token', {headers: {Authorization: `Bearer ${huge}`}}],
      ['200 subprotocols, a forged bearer among them', {protocols: [...Array.from({length: 199}, (_, i) => `p${i}`),
        `otsync.bearer.${J.hs256('y'.repeat(32), claims(['*'], []))}`]}],
      ['an empty bearer', {headers: {Authorization: 'Bearer '}}],
    ]) {
      const r = await tryUpgrade(opts);
      assert.equal(r.status, 401, what);
      assert.equal(r.body.error.code, 'ERR_UNAUTHORIZED', what);
    }
    // Headers past the HTTP parser's limit (8 KiB in all) are a 400 with a JSON error, before any token is read.
    const tooBig = await tryUpgrade({headers: {Authorization: `Bearer ${'A'.repeat(20000)}`}});
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.body.error.code, 'ERR_BAD_REQUEST');
    // The header wins over a subprotocol or query token: a read-only header with a writer's query token stays read-only.
    const readOnly = token(['notes/*'], []);
    const socket = new WebSocket(`${server.wsUrl}?access_token=${admin()}`, {headers: {Authorization: `Bearer ${readOnly}`}});
    const c = new ShareDB.Connection(socket);
    c.on('error', () => {});
    await S.waitState(c, 'connected');
    const doc = S.getDoc(c, 'notes', 'a');
    await S.fetch(doc);
    const err = await settle((k) => doc.submitOp([0, '?'], k));
    assert.equal(err && err.code, 'ERR_FORBIDDEN');
    c.close();
    // A flood of refused upgrades, then an honest client is served.
    const results = await Promise.all(Array.from({length: 200}, () => tryUpgrade({headers: {Authorization: 'Bearer x.y.z'}})));
    assert.ok(results.every((r) => r.status === 401));
    const honest = await connectWith(token(['notes/*']));
    const d = S.getDoc(honest, 'notes', 'a');
    await S.fetch(d);
    assert.ok(d.data.length > 0);
    honest.close();
  });

  it('a valid token is accepted in the Authorization header, as a subprotocol and as access_token', async () => {
    const tok = token(['notes/*']);
    const rs = J.rs256(keys.rsa.privateKey, claims(['notes/*'], []), {kid: 'rsa-1'});
    const es = J.es256(keys.ec.privateKey, claims(['notes/*'], []), {kid: 'ec-1'});
    for (const opts of [{headers: {Authorization: `Bearer ${tok}`}}, {headers: {Authorization: `Bearer ${rs}`}},
      {headers: {Authorization: `Bearer ${es}`}}, {protocols: ['otsync', `otsync.bearer.${tok}`]},
      {query: `?access_token=${tok}`}]) {
      const r = await tryUpgrade(opts);
      assert.ok(r.open, `refused: ${JSON.stringify(r.body)}`);
      if (opts.protocols) assert.equal(r.protocol, 'otsync', 'the server selects "otsync", never the token');
      r.open.close();
    }
  });

  it('permissions: none / read / write on the collection and on one document, over WebSocket and REST', async () => {
    const grants = {
      none: [[], []],
      readCollection: [['notes/*'], []],
      readDoc: [['notes/a'], []],
      writeCollection: [[], ['notes/*']],
      writeDoc: [['notes/*'], ['notes/a']],
    };
    const expect = {  // [read notes/a, write notes/a, read notes/b, write notes/b, read other/x]
      none: [false, false, false, false, false],
      readCollection: [true, false, true, false, false],
      readDoc: [true, false, false, false, false],
      writeCollection: [true, true, true, true, false],
      writeDoc: [true, true, true, false, false],
    };
    for (const [name, [read, write]] of Object.entries(grants)) {
      const tok = token(read, write);
      const c = await connectWith(tok);
      try {
        const [ra, wa, rb, wb, rx] = expect[name];
        for (const [coll, id, mayRead, mayWrite] of [['notes', 'a', ra, wa], ['notes', 'b', rb, wb],
          ['other', 'x', rx, false]]) {
          const what = `${name}: ${coll}/${id}`;
          const doc = S.getDoc(c, coll, id);
          const fetchErr = await settle((k) => doc.fetch(k));
          assert.equal(fetchErr ? fetchErr.code : null, mayRead ? null : 'ERR_FORBIDDEN', `${what} fetch`);
          const subErr = await settle((k) => doc.subscribe(k));
          assert.equal(subErr ? subErr.code : null, mayRead ? null : 'ERR_FORBIDDEN', `${what} subscribe`);
          const rest = await get(`/api/v1/docs/${coll}/${id}`, tok);
          assert.equal(rest.status, mayRead ? 200 : 403, `${what} REST`);
          if (!mayRead) assert.equal(rest.body.error.code, 'ERR_FORBIDDEN');
          const ops = await get(`/api/v1/docs/${coll}/${id}/ops`, tok);
          assert.equal(ops.status, mayRead ? 200 : 403, `${what} REST ops`);
          if (!mayRead) continue;
          const opErr = await settle((k) => doc.submitOp([0, '!'], k));
          assert.equal(opErr ? opErr.code : null, mayWrite ? null : 'ERR_FORBIDDEN', `${what} op`);
        }
        const list = await get('/api/v1/docs/notes', tok);
        if (name === 'none') {
          assert.deepEqual(list.body.documents, []);
        } else {
          assert.deepEqual(list.body.documents.map((d) => d.id).sort(), name === 'readDoc' ? ['a'] : ['a', 'b']);
        }
      } finally {
        c.close();
      }
    }
    // A read-only connection's op was never applied: only the writers' ops are in the log.
    const rest = await get('/api/v1/docs/notes/a/ops?from=0', admin());
    assert.equal(rest.status, 200);
    assert.equal(rest.body.ops.length, 3, 'create + writeCollection\'s and writeDoc\'s ops');
    // "Who wrote this": every op records its author's token subject.
    assert.deepEqual(rest.body.ops.map((o) => o.author), ['user-1', 'user-1', 'user-1']);
    const b = await get('/api/v1/docs/notes/b', admin());
    assert.equal(b.body.data, '!note b', 'only writeCollection wrote notes/b');
    assert.equal((await get('/api/v1/docs/notes/a')).status, 401, 'REST without a token');
  });

  it('the REST list pages through readable documents only: hidden ones neither show nor leave gaps', async () => {
    const c = await connectWith(admin());
    for (const id of ['m1', 'm2', 'm3', 'm4', 'm5', 'zz']) await S.create(S.getDoc(c, 'listing', id), id);
    await S.create(S.getDoc(c, 'listing', 'aa'), 'aa');
    c.close();
    const tok = token(['listing/aa', 'listing/zz'], []);
    const pages = [];
    let after = '';
    for (let i = 0; i < 5; i++) {
      const r = await get(`/api/v1/docs/listing?limit=1${after ? `&after=${after}` : ''}`, tok);
      assert.equal(r.status, 200);
      assert.equal(r.body.incomplete, undefined);
      const ids = r.body.documents.map((d) => d.id);
      pages.push(ids);
      if (ids.length === 0) break;
      after = ids[ids.length - 1];
    }
    // Each page the next readable document, whatever lies between: no empty page before the end.
    assert.deepEqual(pages, [['aa'], ['zz'], []]);
    const between = await get('/api/v1/docs/listing?after=aa&limit=1', tok);
    const before = await get('/api/v1/docs/listing?after=m3&limit=1', tok);
    assert.deepEqual(between.body, before.body, 'the answer does not depend on the hidden documents in between');
  });

  it('a token that expires on an open connection closes it with 4001; acked ops stay', async () => {
    const now = J.nowS();
    const tok = J.hs256(SECRET, {...claims([], ['notes/*']), exp: now + 2});
    const socket = new WebSocket(server.wsUrl, {headers: {Authorization: `Bearer ${tok}`}});
    const closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({code, reason: String(reason)})));
    const connection = new ShareDB.Connection(socket);
    connection.on('error', () => {});
    await S.waitState(connection, 'connected');
    const doc = S.getDoc(connection, 'notes', 'a');
    await S.subscribe(doc);
    await S.submitOp(doc, [0, 'E']);
    const {code, reason} = await S.withTimeout(closed, 8000, 'the close after expiry');
    assert.equal(code, 4001);
    assert.equal(reason, 'token expired');
    const fresh = await get('/api/v1/docs/notes/a', admin());
    assert.ok(fresh.body.data.startsWith('E'), 'the acknowledged op is in the document');
  });

  it('tokens issued by the Node and Python examples (examples/tokens) are accepted, and name the author', async () => {
    const {execFileSync} = require('child_process');
    const examples = path.resolve(__dirname, '..', '..', 'examples', 'tokens');
    const python = process.env.OTSYNC_PYTHON3 || '/usr/bin/python3';
    const pem = path.join(keyDir, 'rsa-private.pem');
    fs.writeFileSync(pem, keys.rsa.privateKey.export({type: 'pkcs8', format: 'pem'}), {mode: 0o600});
    const common = ['--write', 'notes/*', '--issuer', ISS, '--audience', AUD];
    const issued = {
      'node-user': execFileSync(process.execPath, [path.join(examples, 'issue_token.js'),
        path.join(keyDir, 'jwt-secret'), 'node-user', ...common]),
      'python-hs-user': execFileSync(python, [path.join(examples, 'issue_token.py'), '--secret-file',
        path.join(keyDir, 'jwt-secret'), 'python-hs-user', ...common]),
      'python-rs-user': execFileSync(python, [path.join(examples, 'issue_token.py'), '--private-key', pem,
        '--alg', 'RS256', '--kid', 'rsa-1', 'python-rs-user', ...common]),
    };
    for (const [subject, out] of Object.entries(issued)) {
      const tok = String(out).trim();
      const c = await connectWith(tok);
      try {
        const doc = S.getDoc(c, 'notes', 'b');
        await S.subscribe(doc);
        await S.submitOp(doc, [0, '+']);
        const ops = await get(`/api/v1/docs/notes/b/ops?from=${doc.version - 1}`, tok);
        assert.equal(ops.status, 200);
        assert.equal(ops.body.ops[0].author, subject);
      } finally {
        c.close();
      }
    }
  });

  it('presence: a channel must name documents the token may read, under every reading of its dots', async () => {
    const ws = new WebSocket(server.wsUrl, {headers: {Authorization: `Bearer ${token(['notes/*'], [])}`}});
    const inbox = [];
    ws.on('message', (d) => inbox.push(JSON.parse(d)));
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    const ask = async (msg, pred) => {
      ws.send(JSON.stringify(msg));
      await S.waitUntil(() => inbox.some(pred), 5000, JSON.stringify(msg));
      return inbox.splice(inbox.findIndex(pred), 1)[0];
    };
    try {
      await ask({a: 'hs', protocol: 1, protocolMinor: 2}, (m) => m.a === 'hs');
      const ok = await ask({a: 'ps', ch: 'notes.a', seq: 1}, (m) => m.a === 'ps' && m.ch === 'notes.a');
      assert.equal(ok.error, undefined);
      // "notes.secret.plan" is notes/"secret.plan" but also "notes.secret"/plan, which the token may not read.
      for (const ch of ['notes.secret.plan', 'other.x', 'nodots']) {
        const refused = await ask({a: 'ps', ch, seq: 2}, (m) => m.ch === ch);
        assert.equal(refused.error && refused.error.code, 'ERR_FORBIDDEN', ch);
      }
      const p = await ask({a: 'p', ch: 'notes.secret.plan', c: 'notes.secret', d: 'plan', id: 'x', pv: 0, v: 0,
        p: null}, (m) => m.id === 'x');
      assert.equal(p.error && p.error.code, 'ERR_FORBIDDEN');
      assert.equal(p.v, 0, 'a refusal tells nothing of the document');
    } finally {
      ws.close();
    }
  });

  it('operators: /healthz and /readyz need no token; /metrics needs the metrics token', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/readyz')).status, 200);
    assert.equal((await get('/metrics')).status, 401);
    assert.equal((await get('/metrics', 'wrong')).status, 401);
    assert.equal((await get('/metrics', admin())).status, 401, 'a user token is not the metrics token');
    assert.equal((await get('/metrics', METRICS_TOKEN)).status, 200);
  });
});
