'use strict';
// Hostile clients against otsyncd's limits (otsyncd only: the flags and the
// codes are otsyncd's; the ShareDB peer has none of them, so the file is
// skipped with OTSYNC_SERVER=sharedb).
//
// Each describe block starts its own otsyncd with small limits (they conflict:
// one server has a request rate limit, another none, ...). In every block an
// honest, unmodified sharedb client edits a document the whole time (a small
// op every 25 ms); after every case it still gets an edit acked within 5 s, and
// at the end of the block its text and version equal a fresh fetch and every
// one of its edits was acked. For every case:
//   - the documented error code, close code or HTTP status;
//   - the server process still alive (and a clean exit 0 on SIGTERM at the end);
//   - the server's RSS (/proc/PID/status VmRSS, sampled every 10 ms) under a
//     stated bound during the attack, and within AFTER_SLACK of the baseline
//     afterwards; open fds (/proc/PID/fd) back near the baseline once the
//     attackers' connections are closed (figures printed with "[abuse]");
//   - otsync_errors_total{code} / otsync_limit_hits_total{limit} in /metrics
//     moved by exactly the number of refusals the attacker saw.
// Every loop is bounded in count and time; everything is on 127.0.0.1 (the
// connection-limit block also binds client sockets to 127.0.0.2 / 127.0.0.3,
// loopback addresses, to play other client addresses).

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const crypto = require('crypto');
const S = require('./support');

const KIND = S.serverKind();
const skip = KIND !== 'otsyncd' ? 'the abuse limits are otsyncd flags; the ShareDB peer has none' : false;

const C = 'abuse';
const URI = S.TEXT_URI;
const KiB = 1024;
const MiB = 1024 * 1024;
// Under ASan (OTSYNC_SANITIZED=1, set by the sanitizer build's ctest) RSS is ASan's, not otsyncd's:
// the memory bounds are checked in the release build only.
const SANITIZED = process.env.OTSYNC_SANITIZED === '1';
const AFTER_SLACK = 64 * MiB; // RSS allowed above the case's baseline once the attack is over
const FD_SLACK = 2; // fds allowed above the case's baseline once the attackers are gone
const BADLY = 'ERR_MESSAGE_BADLY_FORMED';
const errCounter = (code) => `otsync_errors_total{code="${code}"}`;
const limitCounter = (limit) => `otsync_limit_hits_total{limit="${limit}"}`;
const isAck = (m) => m && m.a === 'op' && !m.error && !('op' in m) && !m.create && !m.del;
const opMsg = (id, fields) => ({a: 'op', c: C, d: id, v: 1, seq: 1, ...fields});
const mb = (bytes) => (bytes / MiB).toFixed(1);

// ---- the server process ------------------------------------------------------

function rssBytes(server) {
  const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  assert.ok(m, `VmRSS in /proc/${server.pid}/status`);
  return Number(m[1]) * KiB;
}

const fdCount = (server) => fs.readdirSync(`/proc/${server.pid}/fd`).length;

function assertAlive(server) {
  assert.equal(server.exit, null, `the server exited: ${JSON.stringify(server.exit)}`);
  process.kill(server.pid, 0); // throws if the process is gone
}

/** Samples RSS and fds every `interval` ms until stop(). */
function sampler(server, interval = 10) {
  const s = {peakRss: rssBytes(server), peakFds: fdCount(server)};
  const timer = setInterval(() => {
    try {
      s.peakRss = Math.max(s.peakRss, rssBytes(server));
      s.peakFds = Math.max(s.peakFds, fdCount(server));
    } catch (_) { /* the process is gone: assertAlive says so */ }
  }, interval);
  s.stop = () => {
    clearInterval(timer);
    try {
      s.peakRss = Math.max(s.peakRss, rssBytes(server));
    } catch (_) { /* gone */ }
  };
  return s;
}

/** /metrics as {"name{labels}": value}. */
async function metrics(server) {
  const r = await server.get('/metrics');
  assert.equal(r.status, 200, `/metrics: HTTP ${r.status}`);
  const out = {};
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** Asserts that each counter moved by exactly the given amount since `before`. */
async function assertMetricDeltas(server, before, deltas) {
  const now = await metrics(server);
  const moved = {};
  for (const [name, want] of Object.entries(deltas)) {
    moved[name] = (now[name] || 0) - (before[name] || 0);
  }
  for (const [name, want] of Object.entries(deltas)) {
    assert.equal(moved[name], want, `${name} moved by ${moved[name]}, expected ${want} (all: ${JSON.stringify(moved)})`);
  }
  return now;
}

// ---- the honest client ---------------------------------------------------------

const HONEST_INTERVAL_MS = 25;
const HONEST_MAX_OPS = 4000; // bound on the background edits of one block

/** An unmodified sharedb client typing into one document in the background. */
class Honest {
  static async start(server) {
    const h = new Honest();
    h.server = server;
    h.conn = await S.connect(server);
    h.doc = S.getDoc(h.conn, C, S.uid('honest'));
    await S.create(h.doc, 'honest');
    await S.subscribe(h.doc);
    h.rng = S.makeRng(0x5eed);
    h.sent = 0;
    h.acked = 0;
    h.failed = [];
    h.maxLatency = 0;
    h.timer = setInterval(() => h.edit(), HONEST_INTERVAL_MS);
    return h;
  }

  submit(op) {
    const t0 = Date.now();
    this.sent++;
    return new Promise((resolve) => {
      this.doc.submitOp(op, (err) => {
        if (err) this.failed.push(err);
        else this.acked++;
        this.maxLatency = Math.max(this.maxLatency, Date.now() - t0);
        resolve(err);
      });
    });
  }

  edit() {
    if (this.stopped || this.sent >= HONEST_MAX_OPS || !this.doc.type) return;
    const len = this.doc.data.length; // ASCII only: code points = UTF-16 units
    const pos = this.rng.int(len + 1);
    if (len > 200 && pos < len) this.submit(pos ? [pos, {d: 1}] : [{d: 1}]);
    else this.submit(pos ? [pos, 'h'] : ['h']);
  }

  /** An edit acked within `ms` (the server still serves this client promptly). */
  async probe(ms = 5000) {
    const t0 = Date.now();
    const err = await S.withTimeout(this.submit(['.']), ms, 'the honest client\'s edit acked');
    assert.equal(err, undefined, `honest edit failed: ${err && err.message}`);
    return Date.now() - t0;
  }

  async verify() {
    this.stopped = true;
    clearInterval(this.timer);
    await S.whenNothingPending(this.doc, 10000);
    const f = await S.freshFetch(this.server, C, this.doc.id);
    assert.deepEqual({v: f.v, data: f.data}, {v: this.doc.version, data: this.doc.data}, 'honest client converged');
    assert.deepEqual(this.failed.map((e) => e.code || e.message), [], 'honest edits refused');
    assert.equal(this.acked, this.sent, 'every honest edit acked');
    assert.deepEqual(this.conn.errors, []);
    assert.deepEqual(this.doc.errors, []);
    console.log(`[abuse] honest client: ${this.acked}/${this.sent} edits acked, v${this.doc.version}, ` +
      `slowest ack ${this.maxLatency} ms`);
  }

  close() {
    this.stopped = true;
    clearInterval(this.timer);
    try { this.conn.close(); } catch (_) { /* closed */ }
  }
}

// ---- blocks and cases -----------------------------------------------------------

/** A describe block with its own otsyncd (extra `args`) and an honest client editing throughout. */
function block(name, args, body) {
  describe(name, {skip}, () => {
    const ctx = {holder: null, honest: null};
    after(() => ctx.honest && ctx.honest.close()); // (registered first: runs before the server stops)
    ctx.holder = S.useServer({args: ['--ws-idle-timeout-ms', '600000', ...args]});
    before(async () => {
      ctx.honest = await Honest.start(ctx.holder.server);
    });
    body(ctx);
    it('the honest client converged with the server and all its edits were acked', {timeout: 30000},
      S.logged(ctx.holder, async () => {
        assertAlive(ctx.holder.server);
        await ctx.honest.verify();
      }));
  });
}

/**
 * One attack. `fn(server, metricsBefore)` runs while RSS / fds are sampled;
 * it must close its own connections. Then: the server is alive, RSS rose at
 * most `peak` bytes over the baseline during the attack and is within
 * AFTER_SLACK of it afterwards, fds are back within FD_SLACK, and the honest
 * client gets an edit acked within 5 s.
 */
function abuseCase(ctx, name, {peak, timeout = 30000, todo}, fn) {
  it(name, {timeout, todo}, S.logged(ctx.holder, async () => {
    const server = ctx.holder.server;
    assertAlive(server);
    const m0 = await metrics(server);
    const base = {rss: rssBytes(server), fds: fdCount(server)};
    const samples = sampler(server);
    const t0 = Date.now();
    try {
      await fn(server, m0);
    } finally {
      samples.stop();
    }
    const ms = Date.now() - t0;
    assertAlive(server);
    const probeMs = await ctx.honest.probe();
    // Freed memory and closed sockets are given up to 3 s to come back.
    await S.waitUntil(() => fdCount(server) <= base.fds + FD_SLACK && rssBytes(server) <= base.rss + AFTER_SLACK,
      3000, 'fds and RSS back near the baseline', 50).catch(() => {});
    const afterRss = rssBytes(server);
    const afterFds = fdCount(server);
    console.log(`[abuse] ${name}: ${ms} ms; RSS baseline ${mb(base.rss)} MiB, peak ${mb(samples.peakRss)} MiB ` +
      `(+${mb(samples.peakRss - base.rss)}, bound +${mb(peak)}), after ${mb(afterRss)} MiB; ` +
      `fds baseline ${base.fds}, peak ${samples.peakFds}, after ${afterFds}; honest edit acked in ${probeMs} ms`);
    if (!SANITIZED) {
      assert.ok(samples.peakRss - base.rss <= peak,
        `RSS rose ${mb(samples.peakRss - base.rss)} MiB during the attack (bound ${mb(peak)} MiB)`);
      assert.ok(afterRss - base.rss <= AFTER_SLACK, `RSS ${mb(afterRss - base.rss)} MiB above the baseline afterwards`);
    }
    assert.ok(afterFds <= base.fds + FD_SLACK, `${afterFds} fds open afterwards (baseline ${base.fds})`);
    assertAlive(server);
  }));
}

/** Opens a raw (protocol-level) client and completes the handshake. */
const raw = (server) => S.rawConnect(server);

/** Waits (bounded) until `pred()` or the socket closes. */
async function until(rc, pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred() && !rc.closeInfo && Date.now() < deadline) await S.sleep(10);
  assert.ok(pred(), `${what} within ${ms} ms (received ${rc.received}, close ${JSON.stringify(rc.closeInfo)})`);
}

/** Sends `msg` (string or object) and takes the first reply with an error. */
async function expectError(rc, msg, code, ms = 5000) {
  rc.send(msg);
  const r = await rc.next((m) => m.error, ms, `an error reply (${code})`);
  assert.equal(r.error.code, code, JSON.stringify(r).slice(0, 500));
  assert.equal(typeof r.error.message, 'string');
  return r;
}

/** A document created through the raw client; returns its id. */
async function createDoc(rc, data, id = S.uid('d')) {
  const r = await rc.request(opMsg(id, {v: 0, seq: 1, create: {type: URI, data}}), (m) => m.a === 'op' && m.d === id,
    10000);
  assert.ok(isAck(r), JSON.stringify(r).slice(0, 300));
  return id;
}

async function docState(rc, id) {
  const r = await rc.request({a: 'f', c: C, d: id}, (m) => m.a === 'f' && m.d === id && !m.error, 10000);
  return r.data;
}

/**
 * A client that never reads sends `n` small requests, each answered with an
 * error or a pong: the server holds at most --max-send-queue-bytes of replies
 * for it (then it stops reading and paces them, or closes it with 1013, the
 * slow-consumer close), the honest client is served meanwhile, and once the
 * client reads again it gets every reply (unless closed). Resolves a summary.
 */
async function nonReadingFlood(ctx, server, n, msg, isAnswer) {
  const rc = await raw(server);
  try {
    rc.ws._socket.pause();
    const text = JSON.stringify(msg);
    for (let i = 0; i < n; i++) rc.send(text);
    for (let k = 0; k < 3; k++) {
      await ctx.honest.probe(5000);
      await S.sleep(300);
    }
    assertAlive(server);
    rc.ws._socket.resume();
    await until(rc, () => rc.inbox.length >= n || rc.closeInfo, 30000, `${n} replies or a close`);
    assert.ok(rc.inbox.every(isAnswer), JSON.stringify(rc.inbox.find((m) => !isAnswer(m))));
    if (rc.closeInfo) {
      assert.equal(rc.closeInfo.code, 1013, 'a slow-consumer close');
    } else {
      assert.equal(rc.inbox.length, n);
    }
    const summary = rc.closeInfo ? `closed ${rc.closeInfo.code} after ${rc.inbox.length} replies` :
      `all ${n} answered (paced)`;
    console.log(`[abuse]   ${text} ×${n}, not reading: ${summary}`);
    return summary;
  } finally {
    rc.close();
  }
}

// ---- a WebSocket client over a raw TCP socket (handcrafted frames) --------------

/** A client-side frame header (masked), announcing `length` payload bytes. */
function frameHeader(length, {fin = true, opcode = 1, mask}) {
  let head;
  if (length < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | length]);
  } else if (length < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  return Buffer.concat([head, mask]);
}

/** `payload` masked as if it began at byte `offset` of the frame's payload. */
function masked(payload, mask, offset = 0) {
  const out = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i] ^ mask[(offset + i) & 3];
  return out;
}

/** A text payload of exactly `n` bytes that is a ping: {"a":"pp","x":"xxx..."}. */
function pingPayload(n) {
  const head = '{"a":"pp","x":"';
  return Buffer.from(head + 'x'.repeat(n - head.length - 2) + '"}');
}

class FrameSocket {
  /** Connects, sends a handcrafted upgrade; resolves once the 101 arrives. */
  static async open(server, {localAddress} = {}) {
    const fsock = new FrameSocket();
    const sock = net.connect({host: '127.0.0.1', port: server.port, localAddress});
    fsock.sock = sock;
    fsock.buf = Buffer.alloc(0);
    fsock.upgraded = false;
    fsock.closeCode = null; // the code of the server's close frame
    fsock.ended = false; // the TCP connection is closed
    fsock.frames = [];
    fsock.endedAt = null;
    sock.on('error', () => {});
    sock.on('close', () => { fsock.ended = true; fsock.endedAt = fsock.endedAt || Date.now(); });
    const upgraded = new Promise((resolve, reject) => {
      sock.on('data', (d) => {
        fsock.buf = Buffer.concat([fsock.buf, d]);
        if (!fsock.upgraded) {
          const end = fsock.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = fsock.buf.slice(0, end).toString();
          fsock.buf = fsock.buf.slice(end + 4);
          if (!/^HTTP\/1\.1 101 /.test(head)) {
            reject(new Error(`upgrade refused: ${head}`));
            return;
          }
          fsock.upgraded = true;
          resolve();
        }
        fsock.parse();
      });
      sock.on('close', () => reject(new Error('closed before the upgrade')));
    });
    await S.withTimeout(new Promise((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    }), 5000, 'TCP connect');
    const key = crypto.randomBytes(16).toString('base64');
    sock.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await S.withTimeout(upgraded, 5000, 'WebSocket upgrade (101)');
    return fsock;
  }

  /** Server frames (unmasked); a close frame sets closeCode. */
  parse() {
    for (;;) {
      if (this.buf.length < 2) return;
      let len = this.buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      const opcode = this.buf[0] & 0x0f;
      const payload = this.buf.slice(at, at + len);
      this.buf = this.buf.slice(at + len);
      if (opcode === 8) {
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closedAt = Date.now();
      } else {
        this.frames.push({opcode, text: payload.toString()});
      }
    }
  }

  write(buf) {
    if (!this.startedAt) this.startedAt = Date.now(); // the first bytes after the upgrade
    return new Promise((resolve) => {
      if (this.ended) return resolve(false);
      this.sock.write(buf, (err) => resolve(!err));
    });
  }

  /** Waits for the server's close frame (or the TCP close); resolves the close code. */
  async waitClose(ms) {
    const deadline = Date.now() + ms;
    while (this.closeCode === null && !this.ended && Date.now() < deadline) await S.sleep(10);
    return this.closeCode;
  }

  destroy() { this.sock.destroy(); }
}

// ---- blocks ---------------------------------------------------------------------

block('hostile messages (default message limits, no request rate limit)',
  ['--max-subscriptions', '50', '--max-create-rate', '5', '--max-request-rate', '0'], (ctx) => {
    const N = 100000; // levels of nesting that used to crash the parser (SIGSEGV)
    // [name, message(id), the reply without its error: only the top-level scalars]
    const DEEP_CASES = [
      ['100,000 levels of [ in an op field', (id) =>
        `{"a":"op","c":"${C}","d":"${id}","v":1,"seq":1,"op":${'['.repeat(N)}${']'.repeat(N)}}`,
      (id) => ({a: 'op', c: C, d: id, v: 1, seq: 1})],
      ['100,000 levels of [ in a message with an unknown action', (id) =>
        `{"a":"zz","c":"${C}","d":"${id}","x":${'['.repeat(N)}${']'.repeat(N)}}`, (id) => ({a: 'zz', c: C, d: id})],
      ['100,000 levels of {"a":…} (the whole message)', () => `${'{"a":'.repeat(N)}1${'}'.repeat(N)}`, () => ({})],
      ['100,000 levels of [ in a create', (id) =>
        `{"a":"op","c":"${C}","d":"${id}","v":0,"seq":1,"create":{"type":"${URI}","data":${'['.repeat(N)}${']'.repeat(N)}}}`,
      (id) => ({a: 'op', c: C, d: id, v: 0, seq: 1})],
      ['100,000 levels of [ in a bulk fetch', () => `{"a":"bf","c":"${C}","b":${'['.repeat(N)}${']'.repeat(N)}}`,
        () => ({a: 'bf', c: C})],
    ];
    for (const [name, make, echo] of DEEP_CASES) {
      abuseCase(ctx, `${name}: ERR_MESSAGE_BADLY_FORMED, scalars echoed, no crash`, {peak: 32 * MiB},
        async (server, m0) => {
          const rc = await raw(server);
          try {
            const id = await createDoc(rc, 'abc');
            const r = await expectError(rc, make(id), BADLY);
            assert.match(r.error.message, /nested deeper than 64 levels/);
            const {error, ...rest} = r;
            assert.deepEqual(rest, echo(id), 'only the top-level scalar fields are echoed');
            assert.ok(JSON.stringify(r).length < 512, 'a small reply');
            assert.deepEqual(await docState(rc, id), {v: 1, type: URI, data: 'abc'}, 'the document is unchanged');
            await rc.request({a: 'pp'}, (m) => m.a === 'pp');
            await assertMetricDeltas(server, m0, {[errCounter(BADLY)]: 1});
          } finally {
            rc.close();
          }
        });
    }

    abuseCase(ctx, '100,000 unclosed [ (not JSON): an error then close 1007, no crash', {peak: 32 * MiB},
      async (server, m0) => {
        const rc = await raw(server);
        try {
          const r = await expectError(rc, `{"a":"op","c":"${C}","d":"x","v":1,"seq":1,"op":${'['.repeat(N)}`, BADLY);
          assert.match(r.error.message, /not valid JSON/);
          assert.equal((await rc.waitClose(5000)).code, 1007);
          await assertMetricDeltas(server, m0, {[errCounter(BADLY)]: 1});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, 'depth 64 is parsed, depth 65 refused', {peak: 16 * MiB}, async (server, m0) => {
      const rc = await raw(server);
      try {
        const id = await createDoc(rc, 'abc');
        const nest = (levels) => `{"a":"f","c":"${C}","d":"${id}","x":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;
        const ok = await rc.request(nest(64), (m) => m.a === 'f');
        assert.equal(ok.error, undefined, JSON.stringify(ok));
        assert.equal(ok.data.data, 'abc');
        const r = await expectError(rc, nest(65), BADLY);
        assert.match(r.error.message, /nested deeper than 64 levels/);
        await assertMetricDeltas(server, m0, {[errCounter(BADLY)]: 1});
      } finally {
        rc.close();
      }
    });

    abuseCase(ctx, 'error replies never echo the op, the create or other payload (1 MiB each)', {peak: 48 * MiB},
      async (server, m0) => {
        const rc = await raw(server);
        try {
          const id = await createDoc(rc, 'abc');
          const big = 'y'.repeat(MiB);
          const cases = [
            [opMsg(id, {src: 'me', op: [1, 1, big], x: {big}}), 'ERR_OT_OP_NOT_APPLIED', // adjacent skips
              {a: 'op', c: C, d: id, v: 1, seq: 1, src: 'me'}],
            [opMsg(`${id}-n`, {v: 0, create: {type: 'nope', data: big}, id: 7, ch: 'q', pv: 2}), 'ERR_DOC_TYPE_NOT_RECOGNIZED',
              {a: 'op', c: C, d: `${id}-n`, v: 0, seq: 1, id: 7, ch: 'q', pv: 2}],
            [opMsg(id, {seq: 1, op: [0, {d: big}], meta: [big]}), 'ERR_OT_OP_NOT_APPLIED', // a zero skip
              {a: 'op', c: C, d: id, v: 1, seq: 1}],
          ];
          for (const [msg, code, echo] of cases) {
            const r = await expectError(rc, msg, code, 10000);
            const {error, ...rest} = r;
            assert.deepEqual(rest, echo, 'only the addressing scalars are echoed');
            assert.ok(JSON.stringify(r).length < 1024, `reply of ${JSON.stringify(r).length} bytes`);
          }
          assert.deepEqual(await docState(rc, id), {v: 1, type: URI, data: 'abc'});
          await assertMetricDeltas(server, m0,
            {[errCounter('ERR_OT_OP_NOT_APPLIED')]: 2, [errCounter('ERR_DOC_TYPE_NOT_RECOGNIZED')]: 1});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, 'huge and control-character ids: ERR_MESSAGE_BADLY_FORMED; 256 bytes is accepted',
      {peak: 48 * MiB}, async (server, m0) => {
        const rc = await raw(server);
        let badly = 0;
        const refuse = async (msg, re) => {
          const r = await expectError(rc, msg, BADLY, 10000);
          assert.match(r.error.message, re);
          badly++;
          return r;
        };
        try {
          const huge = 'i'.repeat(MiB);
          const tooLong = /^Invalid (id|collection): longer than 256 bytes$/;
          const control = /^Invalid (id|collection): contains control characters$/;
          // 1 MiB ids, used to be accepted (and stored, logged and sent with every op)
          await refuse(opMsg(huge, {v: 0, create: {type: URI, data: 'x'}}), tooLong);
          await refuse({a: 'f', c: C, d: huge}, tooLong);
          await refuse({a: 's', c: huge, d: 'x'}, tooLong);
          await refuse({a: 'bf', c: C, b: ['ok', huge]}, tooLong);
          await refuse({a: 'bs', c: C, b: {[huge]: 0}}, tooLong);
          // 257 bytes; 129 × "é" is 258 bytes in 129 characters
          await refuse(opMsg('x'.repeat(257), {v: 0, create: {type: URI, data: 'x'}}), tooLong);
          await refuse({a: 'f', c: C, d: 'é'.repeat(129)}, tooLong);
          await refuse({a: 'f', c: 'c'.repeat(257), d: 'x'}, tooLong);
          // control characters U+0000-U+001F and U+007F, in c, d and bulk ids
          for (const ch of ['\u0000', '\u0001', '\n', '\u001b', '\u001f', '\u007f']) {
            await refuse(opMsg(`a${ch}b`, {v: 0, create: {type: URI, data: 'x'}}), control);
            await refuse({a: 'f', c: `c${ch}`, d: 'x'}, control);
          }
          await refuse({a: 'bf', c: C, b: ['ok', 'x\u0002']}, control);
          // the limits themselves are accepted: a 256-byte id, 128 × "é" (256 bytes)
          for (const id of ['x'.repeat(256), 'é'.repeat(128)]) {
            await createDoc(rc, 'fine', id);
            assert.deepEqual(await docState(rc, id), {v: 1, type: URI, data: 'fine'});
          }
          const f = await S.freshFetch(server, C, 'é'.repeat(128)); // and the sharedb client reads it
          assert.equal(f.data, 'fine');
          // hs ids: too long or with control characters are not adopted (the fresh id stays)
          for (const bad of ['h'.repeat(257), 'h'.repeat(MiB), 'h\u0001']) {
            const hs = await rc.request({a: 'hs', id: bad, protocol: 1, protocolMinor: 2}, (m) => m.a === 'hs');
            assert.notEqual(hs.id, bad);
            assert.match(hs.id, /^[A-Za-z0-9_-]{44}$/, 'a server-minted connection id');
            const did = S.uid('src');
            const ack = await rc.request(opMsg(did, {v: 0, seq: 5, create: {type: URI, data: 'q'}}), (m) => m.d === did);
            assert.ok(isAck(ack));
            assert.equal(ack.src, hs.id, 'ops go out under the fresh id');
          }
          // A well-formed id is still adopted only if the server minted it.
          const hs256 = await rc.request({a: 'hs', id: 'h'.repeat(256)}, (m) => m.a === 'hs');
          assert.notEqual(hs256.id, 'h'.repeat(256), 'a made-up 256-byte hs id is not adopted');
          await assertMetricDeltas(server, m0, {[errCounter(BADLY)]: badly});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, 'bulk requests naming more than 1000 documents: ERR_BULK_LIMIT_EXCEEDED; 1000 are served',
      {peak: 32 * MiB}, async (server, m0) => {
        const rc = await raw(server);
        try {
          const names = (n) => Array.from({length: n}, (_, i) => `bulk-${i}`);
          await expectError(rc, {a: 'bf', c: C, b: names(1001)}, 'ERR_BULK_LIMIT_EXCEEDED');
          await expectError(rc, {a: 'bs', c: C, b: names(1001)}, 'ERR_BULK_LIMIT_EXCEEDED');
          await expectError(rc, {a: 'bs', c: C, b: Object.fromEntries(names(1001).map((n) => [n, 0]))},
            'ERR_BULK_LIMIT_EXCEEDED');
          await expectError(rc, {a: 'bu', c: C, b: names(50000)}, 'ERR_BULK_LIMIT_EXCEEDED');
          const ok = await rc.request({a: 'bf', c: C, b: names(1000)}, (m) => m.a === 'bf', 10000);
          assert.equal(ok.error, undefined);
          assert.equal(Object.keys(ok.data).length, 1000);
          await assertMetricDeltas(server, m0, {[errCounter('ERR_BULK_LIMIT_EXCEEDED')]: 4});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, '2,000 subscriptions on one connection (limit 50): 50 accepted, 1,950 ERR_SUBSCRIPTION_LIMIT_EXCEEDED',
      {peak: 32 * MiB}, async (server, m0) => {
        const rc = await raw(server);
        let refused = 0;
        try {
          const ids = Array.from({length: 2000}, () => S.uid('sub'));
          for (const id of ids) rc.send({a: 's', c: C, d: id});
          await until(rc, () => rc.inbox.filter((m) => m.a === 's').length >= 2000, 20000, '2000 subscribe replies');
          const replies = rc.inbox.splice(0);
          const ok = replies.filter((m) => m.a === 's' && !m.error);
          const errs = replies.filter((m) => m.a === 's' && m.error);
          assert.equal(ok.length, 50);
          // Replies for different documents come from different document actors, so
          // their order is not fixed (nor is it in ShareDB); which ones were accepted is.
          assert.deepEqual(ok.map((m) => m.d).sort(), ids.slice(0, 50).sort(), 'the first 50 accepted');
          assert.equal(errs.length, 1950);
          for (const e of errs) {
            assert.equal(e.error.code, 'ERR_SUBSCRIPTION_LIMIT_EXCEEDED');
            assert.equal(e.c, C);
          }
          refused += errs.length;
          // A bulk subscribe that would pass the limit is refused whole.
          const fresh = Array.from({length: 11}, () => S.uid('bsub'));
          await expectError(rc, {a: 'bs', c: C, b: fresh.slice(0, 1)}, 'ERR_SUBSCRIPTION_LIMIT_EXCEEDED');
          refused++;
          const bu = await rc.request({a: 'bu', c: C, b: ids.slice(0, 10)}, (m) => m.a === 'bu');
          assert.equal(bu.error, undefined);
          await expectError(rc, {a: 'bs', c: C, b: fresh}, 'ERR_SUBSCRIPTION_LIMIT_EXCEEDED'); // 11 > 10 free
          refused++;
          const bs = await rc.request({a: 'bs', c: C, b: fresh.slice(0, 10)}, (m) => m.a === 'bs');
          assert.equal(bs.error, undefined, 'the refused bulk took no slot');
          assert.equal(Object.keys(bs.data).length, 10);
          // At the limit: re-subscribing a subscribed document is fine, a new one is not.
          const again = await rc.request({a: 's', c: C, d: ids[20]}, (m) => m.a === 's');
          assert.equal(again.error, undefined);
          await expectError(rc, {a: 's', c: C, d: fresh[10]}, 'ERR_SUBSCRIPTION_LIMIT_EXCEEDED');
          refused++;
          // The unmodified sharedb client gets the error in its subscribe callback.
          const conn = await S.connect(server);
          try {
            const results = await Promise.all(Array.from({length: 53}, (_, i) =>
              S.subscribe(conn.get(C, S.uid(`cs${i}`))).then(() => 'ok', (e) => e.code)));
            assert.equal(results.filter((r) => r === 'ok').length, 50);
            assert.deepEqual(results.filter((r) => r !== 'ok'), Array(3).fill('ERR_SUBSCRIPTION_LIMIT_EXCEEDED'));
            refused += 3;
          } finally {
            conn.close();
          }
          await assertMetricDeltas(server, m0, {[errCounter('ERR_SUBSCRIPTION_LIMIT_EXCEEDED')]: refused});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, '200 rapid creates (5/s, burst 50): ~50 acked, the rest ERR_CREATE_RATE_LIMITED and not created',
      {peak: 32 * MiB}, async (server, m0) => {
        const rc = await raw(server);
        try {
          const ids = Array.from({length: 200}, () => S.uid('cr'));
          const t0 = Date.now();
          ids.forEach((id, i) => rc.send(opMsg(id, {v: 0, seq: i + 1, create: {type: URI, data: 'c'}})));
          await until(rc, () => rc.inbox.filter((m) => m.a === 'op').length >= 200, 20000, '200 create replies');
          const elapsed = (Date.now() - t0) / 1000;
          const replies = rc.inbox.splice(0);
          const acked = replies.filter(isAck);
          const limited = replies.filter((m) => m.error);
          assert.ok(limited.every((m) => m.error.code === 'ERR_CREATE_RATE_LIMITED'), JSON.stringify(limited[0]));
          assert.equal(acked.length + limited.length, 200);
          const most = 50 + Math.ceil(5 * elapsed) + 1;
          console.log(`[abuse] creates: ${acked.length} acked, ${limited.length} refused in ${elapsed.toFixed(2)} s`);
          assert.ok(acked.length >= 50 && acked.length <= most, `${acked.length} acked (50..${most})`);
          const refusedId = limited[0].d;
          assert.deepEqual(await docState(rc, refusedId), {v: 0, type: null}, 'a refused create left nothing');
          // Tokens come back at 5/s; another connection is not limited by this one.
          await S.sleep(1100);
          await createDoc(rc, 'later');
          const other = S.getDoc(ctx.honest.conn, C, S.uid('honest-create'));
          await S.create(other, 'mine', 'text-unicode', 5000);
          await assertMetricDeltas(server, m0, {[errCounter('ERR_CREATE_RATE_LIMITED')]: limited.length});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, 'a bf naming one 2 MiB document 100 times: answered once, RSS does not grow ~100×',
      {peak: 48 * MiB}, async (server, m0) => {
        const rc = await raw(server);
        try {
          const text = 'abcdefghijklmnop'.repeat(2 * MiB / 16);
          const id = await createDoc(rc, text);
          await S.sleep(200);
          for (const action of ['bf', 'bf', 'bs', 'bf']) {
            const before = rssBytes(server);
            let size = 0;
            const got = new Promise((resolve) => rc.ws.once('message', (d) => { size = d.length; resolve(); }));
            const r = await rc.request({a: action, c: C, b: Array(100).fill(id)}, (m) => m.a === action, 15000);
            await got;
            assert.equal(r.error, undefined);
            assert.deepEqual(Object.keys(r.data), [id], 'the document once');
            assert.equal(r.data[id].data, text);
            assert.ok(size < text.length + 4096, `reply of ${size} bytes`);
            console.log(`[abuse]   ${action} ×100 of a 2 MiB doc: reply ${mb(size)} MiB, RSS ${mb(before)} -> ` +
              `${mb(rssBytes(server))} MiB`);
          }
          // The map form names a document once per key; the same key 100 times in the JSON text
          // (a parser keeps one) subscribes once and sends the create op (2 MiB) once.
          const received = rc.received;
          const mapText = `{"a":"bs","c":"${C}","b":{${Array(100).fill(`"${id}":0`).join(',')}}}`;
          const bsMap = await rc.request(mapText, (m) => m.a === 'bs', 15000);
          assert.equal(bsMap.error, undefined, JSON.stringify(bsMap).slice(0, 300));
          await S.sleep(100);
          const ops = rc.inbox.filter((m) => m.a === 'op' && m.d === id);
          rc.inbox = [];
          assert.equal(ops.length, 1, 'the create op once');
          assert.equal(rc.received - received, 2, 'two frames: the op and the reply');
          const bu = await rc.request({a: 'bu', c: C, b: Array(100).fill(id)}, (m) => m.a === 'bu');
          assert.equal(bu.error, undefined);
          await assertMetricDeltas(server, m0, {[errCounter(BADLY)]: 0});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, 'an op of 20,000 components and ops over 8 MiB of text: ERR_OP_TOO_LARGE; 10,000 components apply',
      {peak: 96 * MiB, timeout: 40000}, async (server, m0) => {
        const rc = await raw(server);
        try {
          const id = await createDoc(rc, 'a'.repeat(10000));
          const comps = (n) => {
            const op = [];
            for (let i = 0; i < n / 2; i++) op.push(1, 'x');
            return op;
          };
          const r = await expectError(rc, opMsg(id, {op: comps(20000)}), 'ERR_OP_TOO_LARGE', 10000);
          assert.match(r.error.message, /20000 components; the limit is 10000/);
          assert.equal(r.op, undefined);
          const huge = 'z'.repeat(8 * MiB + 1);
          await expectError(rc, opMsg(id, {seq: 2, op: [huge]}), 'ERR_OP_TOO_LARGE', 15000);
          await expectError(rc, opMsg(id, {seq: 3, op: [{d: huge}]}), 'ERR_OP_TOO_LARGE', 15000);
          await expectError(rc, opMsg(S.uid('big'), {v: 0, seq: 4, create: {type: URI, data: huge}}),
            'ERR_OP_TOO_LARGE', 15000);
          assert.deepEqual(await docState(rc, id), {v: 1, type: URI, data: 'a'.repeat(10000)}, 'unchanged');
          const ack = await rc.request(opMsg(id, {seq: 5, op: comps(10000)}), (m) => m.a === 'op', 10000);
          assert.ok(isAck(ack), JSON.stringify(ack).slice(0, 300));
          const after = await docState(rc, id);
          assert.equal(after.v, 2);
          assert.equal(after.data, 'ax'.repeat(5000) + 'a'.repeat(5000));
          await assertMetricDeltas(server, m0, {[errCounter('ERR_OP_TOO_LARGE')]: 4});
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, '20,000 pipelined pings from a client that does not read: others served, all answered later',
      {peak: 64 * MiB, timeout: 40000}, async (server) => {
        const rc = await raw(server);
        try {
          rc.ws._socket.pause(); // never reads (until the end)
          for (let i = 0; i < 20000; i++) rc.send({a: 'pp'});
          for (let k = 0; k < 3; k++) {
            const ms = await ctx.honest.probe(5000);
            assert.ok(ms < 5000);
            await S.sleep(200);
          }
          assertAlive(server);
          rc.ws._socket.resume();
          await until(rc, () => rc.inbox.length >= 20000, 20000, '20000 pongs');
          assert.ok(rc.inbox.every((m) => m.a === 'pp' && !m.error));
        } finally {
          rc.close();
        }
      });

    // docs/server.md: "Every bad REST parameter is a 400 with a JSON error, never a 5xx."
    // Before the fix otsyncd answered from=2^64-1 (and 2^64-2) with 503 ERR_DATABASE_UNAVAILABLE
    // ("The document store failed: Invalid store request"), a server error for a bad request.
    abuseCase(ctx, 'GET /api/v1/docs/c/d/ops?from=18446744073709551615: 4xx with a JSON error',
      {peak: 16 * MiB},
      async (server) => {
        for (const q of ['from=18446744073709551615', 'from=18446744073709551614',
          'from=18446744073709551615&to=18446744073709551615', 'from=0&to=18446744073709551615']) {
          const r = await server.get(`/api/v1/docs/${C}/d/ops?${q}`);
          if (r.status === 200) {
            assert.deepEqual(r.body, {ops: []}, q); // an empty range is a fine answer too
            continue;
          }
          assert.ok(r.status >= 400 && r.status < 500, `${q}: HTTP ${r.status} ${r.text}`);
          assert.equal(typeof r.body.error.code, 'string', r.text);
          assert.equal(typeof r.body.error.message, 'string', r.text);
        }
      });
  });

block('request rate limit (1000 messages/s per connection, burst 2000)',
  ['--max-request-rate', '1000'], (ctx) => {
    abuseCase(ctx, '20,000 pipelined pings: each answered, a pong or ERR_RATE_LIMITED (not a stall)',
      {peak: 32 * MiB, timeout: 40000}, async (server, m0) => {
        const rc = await raw(server);
        try {
          const t0 = Date.now();
          for (let i = 0; i < 20000; i++) rc.send({a: 'pp'});
          await until(rc, () => rc.inbox.length >= 20000, 20000, '20000 replies');
          const elapsed = (Date.now() - t0) / 1000;
          const replies = rc.inbox.splice(0);
          const pongs = replies.filter((m) => m.a === 'pp' && !m.error);
          const limited = replies.filter((m) => m.error);
          assert.equal(pongs.length + limited.length, 20000);
          for (const m of limited) {
            assert.equal(m.error.code, 'ERR_RATE_LIMITED');
            assert.equal(m.a, 'pp', 'the request is echoed');
          }
          const most = 2000 + Math.ceil(1000 * elapsed) + 10;
          console.log(`[abuse] rate: ${pongs.length} pongs, ${limited.length} ERR_RATE_LIMITED in ${elapsed.toFixed(2)} s`);
          assert.ok(pongs.length >= 1000 && pongs.length <= most, `${pongs.length} pongs (1000..${most})`);
          await assertMetricDeltas(server, m0, {[errCounter('ERR_RATE_LIMITED')]: limited.length});
          // The bucket refills: after 2.1 s idle, a burst of 1900 is served whole.
          await S.sleep(2100);
          for (let i = 0; i < 1900; i++) rc.send({a: 'pp'});
          await until(rc, () => rc.inbox.length >= 1900, 10000, '1900 replies');
          assert.equal(rc.inbox.filter((m) => m.error).length, 0, 'no refusal within the refilled burst');
        } finally {
          rc.close();
        }
      });

    abuseCase(ctx, '20,000 pipelined pings from a client that does not read: others served, all answered later',
      {peak: 64 * MiB, timeout: 40000}, async (server, m0) => {
        const rc = await raw(server);
        try {
          rc.ws._socket.pause();
          for (let i = 0; i < 20000; i++) rc.send({a: 'pp'});
          for (let k = 0; k < 3; k++) {
            await ctx.honest.probe(5000);
            await S.sleep(200);
          }
          assertAlive(server);
          rc.ws._socket.resume();
          await until(rc, () => rc.inbox.length >= 20000, 20000, '20000 replies');
          const limited = rc.inbox.filter((m) => m.error);
          assert.ok(limited.every((m) => m.error.code === 'ERR_RATE_LIMITED' && m.a === 'pp'));
          assert.equal(rc.inbox.length, 20000);
          console.log(`[abuse] rate, not reading: ${20000 - limited.length} pongs, ${limited.length} ERR_RATE_LIMITED`);
          await assertMetricDeltas(server, m0, {[errCounter('ERR_RATE_LIMITED')]: limited.length});
        } finally {
          rc.close();
        }
      });
  });

// The send queue is small here so that "bounded" is a few MiB: a client that never
// reads may cost the server --max-send-queue-bytes of replies (plus the frames'
// bookkeeping), not more. (Measured with the default 64 MiB: 1,000,000 such
// requests make the server hold 64 MiB counted, ~140 MiB of RSS, for one
// connection; the per-frame bookkeeping is not counted.)
block('clients that never read (send queue 4 MiB, 1000 requests/s)',
  ['--max-send-queue-bytes', String(4 * MiB), '--max-op-bytes', String(512 * 1024), '--max-request-rate', '1000'],
  (ctx) => {
    abuseCase(ctx, '300,000 pings over the rate from a client that does not read: ERR_RATE_LIMITED replies bounded by the send queue',
      {peak: 24 * MiB, timeout: 60000}, async (server) => {
        await nonReadingFlood(ctx, server, 300000, {a: 'pp'},
          (m) => m.a === 'pp' && (!m.error || m.error.code === 'ERR_RATE_LIMITED'));
      });

    abuseCase(ctx, '300,000 unknown-action messages from a client that does not read: error replies bounded by the send queue',
      {peak: 24 * MiB, timeout: 60000}, async (server) => {
        await nonReadingFlood(ctx, server, 300000, {a: 'zz'},
          (m) => m.a === 'zz' && m.error && [BADLY, 'ERR_RATE_LIMITED'].includes(m.error.code));
      });
  });

// Amplification within every per-message limit: found while writing this file.
block('memory amplification within the message limits (no request rate limit, idle eviction 1 s)',
  ['--max-request-rate', '0', '--idle-eviction-ms', '1000'], (ctx) => {
    // A ShareDB message needs a few dozen JSON values (an op: up to --max-op-components).
    // 15 MiB of "[]," is 5.2 million values at depth 2, under --max-json-depth and
    // --max-message-bytes; building the DOM of it cost ~400 MiB for about a second
    // (+260 MiB with numbers, +380 MiB with {}), per message being parsed at once.
    // --max-json-values (100,000) refuses it before any tree is built.
    for (const [what, filler] of [['empty arrays', '[]'], ['empty objects', '{}'], ['numbers', '0']]) {
      abuseCase(ctx, `a 15 MiB message of millions of ${what} (depth 2) is refused unparsed: RSS within 4x the message`,
        {peak: 64 * MiB, timeout: 30000}, async (server) => {
          const rc = await raw(server);
          try {
            const n = Math.floor(15 * MiB / (filler.length + 1));
            const text = `{"a":"pp","x":[${`${filler},`.repeat(n - 1)}${filler}]}`;
            const r = await rc.request(text, (m) => m.a === 'pp' || m.error, 15000);
            console.log(`[abuse]   ${mb(text.length)} MiB of ${filler}: reply ${JSON.stringify(r).slice(0, 160)}`);
            assert.equal(r.a, 'pp');
            assert.equal(r.error && r.error.code, BADLY, JSON.stringify(r));
            assert.equal(r.error.message, 'Message holds more than 100000 values');
            assert.equal(r.x, undefined);
            // The connection carries on.
            assert.deepEqual(await rc.request({a: 'pp'}, (m) => m.a === 'pp'), {a: 'pp'});
          } finally {
            rc.close();
          }
        });
    }
    // A top-level object of millions of members: same (the reply is built from the known fields alone).
    abuseCase(ctx, 'a 15 MiB message of a million top-level members is refused unparsed',
      {peak: 64 * MiB, timeout: 30000}, async (server) => {
        const rc = await raw(server);
        try {
          const members = [];
          for (let i = 0; i < 1000000; i++) members.push(`"k${i}":0`);
          const text = `{"a":"pp",${members.join(',')}}`;
          const r = await rc.request(text, (m) => m.a === 'pp' || m.error, 15000);
          assert.equal(r.error && r.error.code, BADLY, JSON.stringify(r).slice(0, 200));
          assert.deepEqual(Object.keys(r).sort(), ['a', 'error']);
        } finally {
          rc.close();
        }
      });

    // --max-bulk-ids bounds one message and the request rate the messages, not the
    // documents a connection opens: each fetched document, even a missing one, stays
    // open (an actor of ~2 KB) until idle eviction, and no budget counts it.
    abuseCase(ctx, '100,000 distinct missing documents in 100 bulk fetches: RSS bounded',
      {peak: 64 * MiB, timeout: 40000}, async (server) => {
        const rc = await raw(server);
        try {
          const R = 100;
          for (let i = 0; i < R; i++) {
            rc.send({a: 'bf', c: C, b: Array.from({length: 1000}, (_, k) => `missing-${i}-${k}`)});
          }
          await until(rc, () => rc.inbox.length >= R, 30000, `${R} bulk replies`);
          assert.ok(rc.inbox.every((m) => m.a === 'bf' && !m.error && Object.keys(m.data).length === 1000));
          const open = (await metrics(server)).otsync_documents_open;
          console.log(`[abuse]   ${R * 1000} missing documents fetched: otsync_documents_open ${open}, RSS ${mb(rssBytes(server))} MiB`);
          // Idle eviction (1 s here) unloads them.
          await S.waitUntil(async () => (await metrics(server)).otsync_documents_open < 100, 15000,
            'the fetched documents evicted', 200);
          console.log(`[abuse]   after eviction: RSS ${mb(rssBytes(server))} MiB`);
        } finally {
          rc.close();
        }
      });
  });

block('connection limits (20 per address, 40 in total)',
  ['--max-connections-per-address', '20', '--max-connections', '40'], (ctx) => {
    /** Opens a WebSocket; resolves {ws} when open or {status, headers, body} when refused. */
    function tryConnect(server, localAddress) {
      return S.withTimeout(new Promise((resolve, reject) => {
        const ws = new S.WebSocket(server.wsUrl, {localAddress});
        ws.on('open', () => resolve({ws}));
        ws.on('unexpected-response', (req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => { body += d; });
          res.on('end', () => {
            let json = null;
            try { json = JSON.parse(body); } catch (_) { /* not JSON */ }
            resolve({status: res.statusCode, headers: res.headers, body: json, text: body});
            req.destroy();
          });
        });
        ws.on('error', (e) => { if (e.code) reject(e); });
      }), 5000, `WebSocket connect from ${localAddress}`);
    }

    function assertRefused(r, limitText) {
      assert.equal(r.ws, undefined, 'the upgrade was refused');
      assert.equal(r.status, 503, r.text);
      assert.match(String(r.headers['retry-after']), /^\d+$/, 'Retry-After');
      assert.equal(r.body && r.body.error && r.body.error.code, 'ERR_TOO_MANY_CONNECTIONS', r.text);
      assert.match(r.body.error.message, limitText);
    }

    abuseCase(ctx, 'connections beyond 20 per address and 40 in total: HTTP 503 + Retry-After, slots released',
      {peak: 32 * MiB, timeout: 40000}, async (server, m0) => {
        const open = [];
        try {
          // 127.0.0.1 holds the honest client's connection: 19 more are accepted.
          for (let i = 0; i < 25; i++) {
            const r = await tryConnect(server, '127.0.0.1');
            if (!r.ws) {
              assertRefused(r, /from this address/);
              break;
            }
            open.push(r.ws);
          }
          assert.equal(open.length, 19, 'accepted from 127.0.0.1 besides the honest client');
          for (let i = 0; i < 5; i++) assertRefused(await tryConnect(server, '127.0.0.1'), /from this address/);
          await ctx.honest.probe(); // the honest client's open connection is unaffected
          // Another address still gets in, up to the total of 40.
          for (let i = 0; i < 20; i++) {
            const r = await tryConnect(server, '127.0.0.2');
            assert.ok(r.ws, `connection ${i + 1} from 127.0.0.2: ${r.status} ${r.text}`);
            open.push(r.ws);
          }
          for (let i = 0; i < 3; i++) assertRefused(await tryConnect(server, '127.0.0.3'), /as many connections/);
          await assertMetricDeltas(server, m0,
            {[limitCounter('connections_per_address')]: 6, [limitCounter('connections')]: 3});
          // The accepted ones work.
          const pongs = await Promise.all(open.slice(0, 5).map((ws) => new Promise((resolve) => {
            ws.once('message', (d) => resolve(JSON.parse(d.toString())));
            ws.send('{"a":"pp"}');
          })));
          assert.deepEqual(pongs, Array(5).fill({a: 'pp'}));
          // Closing them releases the slots (a leaked count would refuse these).
          for (const ws of open.splice(0)) ws.terminate();
          const deadline = Date.now() + 5000;
          for (let i = 0; i < 19; i++) {
            let r = await tryConnect(server, '127.0.0.1');
            while (!r.ws && Date.now() < deadline) { // the server may not have seen every close yet
              await S.sleep(50);
              r = await tryConnect(server, '127.0.0.1');
            }
            assert.ok(r.ws, `connection ${i + 1} after the others closed: ${r.status} ${r.text}`);
            open.push(r.ws);
          }
        } finally {
          for (const ws of open) ws.terminate();
        }
      });
  });

block('partly received messages: message timeout (1 s)',
  ['--message-timeout-ms', '1000'], (ctx) => {
    // The server checks message deadlines on its connection sweep, every
    // min(ws-idle-timeout / 10, 5 s): a stalled message is closed between 1 s
    // and ~6 s after it began here (ws-idle-timeout is 600 s).
    const LATEST_MS = 1000 + 5000 + 2000;
    const closeTimes = []; // ms from a stalled message's first bytes to the server's close frame

    abuseCase(ctx, 'stalled senders (half a 1 MiB frame, a partial header, an unfinished fragmented message, ' +
      'a 1-byte-per-100-ms drip) are closed with 1008', {peak: 32 * MiB, timeout: 30000}, async (server, m0) => {
      const socks = [];
      let drip = null;
      try {
        const t0 = Date.now();
        const mask = crypto.randomBytes(4);
        // half of a 1 MiB frame
        const half = await FrameSocket.open(server);
        socks.push(half);
        const payload = pingPayload(MiB);
        await half.write(Buffer.concat([frameHeader(MiB, {mask}), masked(payload.subarray(0, MiB / 2), mask)]));
        // the first byte of a frame header
        const header = await FrameSocket.open(server);
        socks.push(header);
        await header.write(Buffer.from([0x81]));
        // a complete first fragment (FIN=0) and no more
        const frag = await FrameSocket.open(server);
        socks.push(frag);
        const first = Buffer.from('{"a":"pp"');
        await frag.write(Buffer.concat([frameHeader(first.length, {fin: false, mask}), masked(first, mask)]));
        // a frame of 200 bytes sent 1 byte every 100 ms (each byte resets an idle timer, not this one)
        const dripper = await FrameSocket.open(server);
        socks.push(dripper);
        const dripPayload = masked(pingPayload(200), mask);
        await dripper.write(frameHeader(200, {mask}));
        let sent = 0;
        drip = setInterval(() => {
          if (sent < dripPayload.length && !dripper.ended && dripper.closeCode === null) {
            dripper.write(dripPayload.subarray(sent, sent + 1));
            sent++;
          }
        }, 100);
        const codes = await Promise.all(socks.map((s) => s.waitClose(LATEST_MS + 1000)));
        clearInterval(drip);
        const times = socks.map((s) => (s.closedAt || s.endedAt || Date.now()) - s.startedAt);
        console.log(`[abuse] message timeout: close codes ${codes}, after ${times.join(', ')} ms; ` +
          `the drip sent ${sent} of 200 bytes; setup ${Date.now() - t0} ms in all`);
        assert.deepEqual(codes, [1008, 1008, 1008, 1008]);
        closeTimes.push(...times);
        for (const ms of times) assert.ok(ms >= 900 && ms <= LATEST_MS, `closed after ${ms} ms`);
        assert.ok(sent < 200, 'the drip was cut off before it finished');
        await S.waitUntil(() => socks.every((s) => s.ended), 3000, 'the server closes the TCP connections');
        const m = await assertMetricDeltas(server, m0, {[limitCounter('message_timeout')]: 4});
        // (Each open connection counts its decoder's empty buffer, 15 bytes of std::string's
        // inline capacity: compare with the figure before the attack.)
        assert.equal(m.otsync_partial_message_bytes, m0.otsync_partial_message_bytes, 'no partly received bytes held');
      } finally {
        clearInterval(drip);
        for (const s of socks) s.destroy();
      }
    });

    // The close comes on the sweep after the deadline; the sweep runs at least every quarter
    // of --message-timeout-ms, so a 1 s timeout closes within about 1.25 s.
    it('the stalled senders were closed within 2 s of their first bytes (message timeout 1 s)', () => {
        assert.equal(closeTimes.length, 4, 'measured by the previous case');
        for (const ms of closeTimes) assert.ok(ms <= 2000, `closed ${ms} ms after the message began`);
      });

    abuseCase(ctx, 'a frame announcing more than --max-message-bytes (16 MiB) closes with 1009 at its header; ' +
      'so do fragments adding up to more', {peak: 48 * MiB}, async (server, m0) => {
      const socks = [];
      try {
        const mask = crypto.randomBytes(4);
        const one = await FrameSocket.open(server);
        socks.push(one);
        const t0 = Date.now();
        await one.write(frameHeader(16 * MiB + 1, {mask}));
        assert.equal(await one.waitClose(3000), 1009);
        const headerMs = Date.now() - t0;
        // 9 MiB in a first fragment, then a continuation frame announcing 8 MiB more
        const two = await FrameSocket.open(server);
        socks.push(two);
        const first = masked(Buffer.concat([Buffer.from('{"a":"pp","x":"'), Buffer.alloc(9 * MiB - 15, 0x78)]), mask);
        await two.write(Buffer.concat([frameHeader(first.length, {fin: false, mask}), first]));
        await S.sleep(100);
        assert.equal(two.closeCode, null, 'the first fragment is within the limit');
        await two.write(frameHeader(8 * MiB, {fin: true, opcode: 0, mask}));
        assert.equal(await two.waitClose(5000), 1009);
        console.log(`[abuse] 16 MiB + 1 announced: closed 1009 after ${headerMs} ms (no payload sent)`);
        await assertMetricDeltas(server, m0, {[errCounter('FRAME_TOO_LARGE')]: 2});
      } finally {
        for (const s of socks) s.destroy();
      }
    });

    abuseCase(ctx, 'a 1 MiB message sent in 8 pieces within the timeout is answered', {peak: 32 * MiB},
      async (server, m0) => {
        const s = await FrameSocket.open(server);
        try {
          const mask = crypto.randomBytes(4);
          const payload = masked(pingPayload(MiB), mask);
          await s.write(frameHeader(MiB, {mask}));
          for (let i = 0; i < 8; i++) {
            await s.write(payload.subarray(i * MiB / 8, (i + 1) * MiB / 8));
            await S.sleep(50);
          }
          await S.waitUntil(() => s.frames.length > 0 || s.ended, 5000, 'a reply');
          assert.deepEqual(s.frames.map((f) => f.text), ['{"a":"pp"}']);
          await assertMetricDeltas(server, m0, {[limitCounter('message_timeout')]: 0});
        } finally {
          s.destroy();
        }
      });
  });

block('partly received messages: 4 MiB budget over all connections',
  ['--max-partial-bytes', String(4 * MiB), '--message-timeout-ms', '60000'], (ctx) => {
    abuseCase(ctx, 'stalled senders of 1 MiB each beyond 4 MiB in total: the one passing it is closed with 1013',
      {peak: 48 * MiB, timeout: 30000}, async (server, m0) => {
        const senders = [];
        const mask = crypto.randomBytes(4);
        const FRAME = 2 * MiB;
        const SENT = MiB;
        const payload = masked(pingPayload(FRAME), mask);
        try {
          let gaugeMax = 0; // settled
          let transientMax = 0;
          const gauges = [];
          for (let i = 0; i < 8; i++) {
            const s = await FrameSocket.open(server);
            senders.push(s);
            await s.write(Buffer.concat([frameHeader(FRAME, {mask}), payload.subarray(0, SENT)]));
            // Until the server has read it all (the gauge holds still) or closed the sender. The
            // gauge is read between reads too: a read is accounted after it is buffered, so a
            // scrape can see the crossing connection's bytes for an instant before its close
            // gives them back (printed as "transient").
            const started = Date.now();
            let gauge = -1;
            for (;;) {
              await S.sleep(40);
              const g = (await metrics(server)).otsync_partial_message_bytes;
              transientMax = Math.max(transientMax, g);
              if (s.closeCode !== null || s.ended || g === gauge || Date.now() - started > 3000) break;
              gauge = g;
            }
            await S.sleep(40);
            gauge = (await metrics(server)).otsync_partial_message_bytes;
            gaugeMax = Math.max(gaugeMax, gauge);
            gauges.push(`${mb(gauge)}${s.closeCode !== null ? ` (closed ${s.closeCode})` : ''}`);
          }
          await S.sleep(200);
          const closed = senders.filter((s) => s.closeCode !== null || s.ended);
          const codes = closed.map((s) => s.closeCode);
          console.log(`[abuse] partial budget: ${senders.length} senders of ${mb(SENT)} MiB, closed: ${codes}; ` +
            `settled gauge at most ${mb(gaugeMax)} MiB (transient ${mb(transientMax)}); after each sender (MiB): ` +
            gauges.join(', '));
          assert.ok(closed.length >= 4, `at least 4 of 8 closed (got ${closed.length})`);
          assert.ok(codes.every((c) => c === 1013), `close codes ${codes}`);
          assert.ok(gaugeMax <= 4 * MiB, `gauge ${gaugeMax} within the budget`);
          assert.ok(gaugeMax >= 2 * MiB, `gauge ${gaugeMax} counted the held bytes`);
          await assertMetricDeltas(server, m0, {[limitCounter('partial_bytes')]: closed.length});
          // The senders still open finish their message and are answered. One at a time: two 2 MiB
          // messages completing at once on two I/O threads fill the 4 MiB budget, and a close of
          // the second (1013) would be right.
          const open = senders.filter((s) => s.closeCode === null && !s.ended);
          assert.ok(open.length >= 1);
          for (const s of open) {
            await s.write(payload.subarray(SENT));
            await S.waitUntil(() => s.frames.length > 0 || s.ended, 10000, 'the pong');
            assert.deepEqual(s.frames.map((f) => f.text), ['{"a":"pp"}'], `closed ${s.closeCode}`);
          }
          const m = await metrics(server);
          // (15 bytes per open connection: an empty decoder buffer's inline capacity)
          assert.ok(m.otsync_partial_message_bytes <= m0.otsync_partial_message_bytes + 16 * open.length,
            `nothing held once every message completed (gauge ${m.otsync_partial_message_bytes})`);
          // And a new large message passes again.
          const late = await FrameSocket.open(server);
          senders.push(late);
          await late.write(Buffer.concat([frameHeader(FRAME, {mask}), payload]));
          await S.waitUntil(() => late.frames.length > 0 || late.ended, 10000, 'a pong for a 2 MiB message');
          assert.deepEqual(late.frames.map((f) => f.text), ['{"a":"pp"}']);
        } finally {
          for (const s of senders) s.destroy();
        }
      });

    abuseCase(ctx, '20 connections announcing 16 MiB frames and sending 1 byte: nothing reserved', {peak: 32 * MiB},
      async (server) => {
        const socks = [];
        try {
          const mask = crypto.randomBytes(4);
          for (let i = 0; i < 20; i++) {
            const s = await FrameSocket.open(server);
            socks.push(s);
            await s.write(Buffer.concat([frameHeader(16 * MiB - 64, {mask}), masked(Buffer.from('{'), mask)]));
          }
          await S.sleep(300);
          assert.ok(socks.every((s) => s.closeCode === null && !s.ended), 'all still open');
          const m = await metrics(server);
          assert.ok(m.otsync_partial_message_bytes <= 20 * 4096, `gauge ${m.otsync_partial_message_bytes}`);
        } finally {
          for (const s of socks) s.destroy();
        }
      });
  });

function closedCount(socks) {
  return socks.filter((s) => s.closeCode !== null || s.ended).length;
}
