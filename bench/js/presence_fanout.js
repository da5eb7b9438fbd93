#!/usr/bin/env node
// Presence fan-out, otsyncd (memory store) vs ShareDB 7 (the reference peer,
// bench/peer/sharedb_server.js --presence: `new ShareDB({presence: true})` with
// the clients/js type, transformPresence included, registered on its server),
// in the same run, interleaved: every repetition runs each server once, on a
// fresh process, the order alternating from one repetition to the next.
//
//   node bench/js/presence_fanout.js [--reps 3] [--subscribers 50] [--hz 10] [--duration 10]
//        [--warmup 2] [--procs K] [--typing-hz 0] [--servers otsyncd,sharedb] [--json FILE]
//
// Load: one document (2000 characters of ASCII text), --subscribers clients on
// it, each the unmodified sharedb@7 client on its own `ws` WebSocket, with the
// clients/js type registered (the same shim on both servers' clients). Every
// client subscribes to the document, then to its presence, then moves its own
// cursor (`{index, length, t, s}`: a random range in the text, the send time,
// a sequence number) --hz times a second. The sends are spread evenly: client
// i of N sends at start + (i/N + k) / hz, so the server sees a steady stream,
// not bursts. The text stays as it is, unless --typing-hz H: then H ops a
// second in all (one character inserted, then one deleted, in turn), the k-th
// by client k mod N, so presences go stale and get moved through the ops.
// The clients run in --procs forked Node processes (the load generator must
// not be what limits the figure; see the loadgen columns and the warnings).
//
// Timed phase: --warmup s, then --duration s measured. Per run:
//   sent/s            cursor updates submitted in the window
//   delivered/s       'receive' events with a non-null value, on a client, for
//                     another client's cursor, in the window, each update once (the
//                     client emits 'receive' again when it moves a remote cursor
//                     through an op: not counted); what an editor sees: the sharedb
//                     client shows only the latest of updates for the same presence
//                     that arrive together, so it can be below the frames
//   frames/s          `p` frames with a value for another client's presence (wire), each
//                     update once; (repeats/s): the same update received again (a
//                     sharedb client that cannot catch a stale presence up asks all
//                     to send theirs again; seen with ShareDB under --typing-hz)
//   expected/s        N * hz * (N - 1): every update to every other client
//   delivered/expected
//   server CPU %      of one core, /proc/PID/stat over the window
//   server CPU µs/delivered update
//   latency p50/p99   ms from the sender's clock reading just before submit to the
//                     'receive' event on the receiver, same machine, CLOCK_MONOTONIC
//                     (process.hrtime, shared by all processes), over every delivery
//   loadgen CPU %     per client process (the busiest one) and in all
//   send lateness p99 how late the sends fire against their schedule (ms): a
//                     saturated load generator (or machine) shows here first
//   machine busy %    all CPUs, of one core (100 x cores less /proc/stat's idle and
//                     iowait): server and load generator share them
// otsyncd's coalesced presences (otsync_presence_coalesced_total; its
// --max-presence-rate, 20/s per connection by default, is above 10 Hz) are shown too.
// Medians over --reps; stdout: a Markdown table, ratios otsyncd / ShareDB (for CPU
// per update and latency below 1 means otsyncd lower). --json FILE: everything.
//
// Bounded: every step has a timeout, the whole run a deadline; the servers and
// the client processes are stopped by PID (SIGKILL on any exit).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const {spawn, fork, execFileSync} = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const OTSYNCD = path.join(ROOT, 'build', 'bin', 'otsyncd');
const PEER = path.join(ROOT, 'bench', 'peer', 'sharedb_server.js');
const COLLECTION = 'bench';
const DOC_ID = 'presence-fanout';

const monoUs = () => Number(process.hrtime.bigint() / 1000n);  // CLOCK_MONOTONIC: the same in every process
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  })]).finally(() => clearTimeout(timer));
}
const cb2p = (what, fn, ms = 20000) =>
  withTimeout(new Promise((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v)))), ms, what);

// Latency histogram: 10 µs buckets up to 500 ms, the rest kept as they are.
const BUCKET_US = 10;
const BUCKETS = 50000;
function newHist() {
  return {counts: new Uint32Array(BUCKETS), over: [], n: 0, negative: 0};
}
function histAdd(h, us) {
  if (us < 0) {
    h.negative++;
    us = 0;
  }
  const b = Math.floor(us / BUCKET_US);
  if (b < BUCKETS) h.counts[b]++;
  else h.over.push(us);
  h.n++;
}
/** Sparse form for IPC: [[bucket, count], ...]. */
const histOut = (h) => ({buckets: [...h.counts.entries()].filter(([, c]) => c > 0), over: h.over, n: h.n,
                         negative: h.negative});
function histMerge(hs) {
  const counts = new Map();
  const over = [];
  let n = 0;
  let negative = 0;
  for (const h of hs) {
    for (const [b, c] of h.buckets) counts.set(b, (counts.get(b) || 0) + c);
    over.push(...h.over);
    n += h.n;
    negative += h.negative;
  }
  return {buckets: [...counts.entries()].sort((a, b) => a[0] - b[0]), over: over.sort((a, b) => a - b), n, negative};
}
/** The q-quantile in ms (bucket midpoints), null when empty. */
function histQuantile(h, q) {
  if (!h.n) return null;
  const rank = Math.min(h.n, Math.max(1, Math.ceil(q * h.n)));
  let seen = 0;
  for (const [b, c] of h.buckets) {
    seen += c;
    if (seen >= rank) return ((b + 0.5) * BUCKET_US) / 1000;
  }
  return h.over[rank - seen - 1] / 1000;
}

// ---- worker: its share of the clients ------------------------------------------------------
function worker() {
  const need = (m) => require(require.resolve(m, {paths: [path.join(ROOT, 'tests', 'js')]}));
  const ShareDB = need('sharedb/lib/client');
  const WebSocket = need('ws');
  const otText = need('ot-text-unicode');
  require(path.join(ROOT, 'clients', 'js')).register(ShareDB, otText);
  ShareDB.logger.setMethods({info: () => {}});

  const subs = [];
  const errors = {};
  const fail = (what) => (e) => {
    const key = `${what}: ${(e && (e.code || e.message)) || e}`;
    errors[key] = (errors[key] || 0) + 1;
  };
  // The measurement window, in monotonic µs; nothing counts outside it.
  let winStart = Infinity;
  let winEnd = -Infinity;
  const inWindow = (t) => t >= winStart && t < winEnd;
  const stats = {sent: 0, acked: 0, delivered: 0, frames: 0, staleFrames: 0, typed: 0, lat: newHist(), late: newHist()};

  function connect(url) {
    return withTimeout(new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const c = new ShareDB.Connection(socket);
      c.on('error', fail('connection'));
      c.on('connection error', fail('connection error'));
      if (c.state === 'connected') return resolve(c);
      const onState = (s) => {
        if (s === 'connected') {
          c.removeListener('state', onState);
          resolve(c);
        } else if (s === 'closed' || s === 'stopped') {
          reject(new Error(`connection ${s}`));
        }
      };
      c.on('state', onState);
    }), 20000, `connect ${url}`);
  }

  function lcg(seed) {
    let s = seed >>> 0;
    return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  }

  const handlers = {
    async create(m) {  // the document, from a connection of its own
      const c = await connect(m.url);
      const doc = c.get(COLLECTION, DOC_ID);
      await cb2p('fetch', (k) => doc.fetch(k));
      if (!doc.type) await cb2p('create', (k) => doc.create(m.text, otText.type.uri, k));
      c.close();
      return {v: doc.version};
    },
    async setup(m) {
      for (const i of m.indices) {
        const conn = await connect(m.url);
        const doc = conn.get(COLLECTION, DOC_ID);
        doc.on('error', fail('doc'));
        await cb2p(`subscribe ${i}`, (k) => doc.subscribe(k));  // the document first, then its presence
        const presence = conn.getDocPresence(COLLECTION, DOC_ID);
        presence.on('error', fail('presence'));
        await cb2p(`presence subscribe ${i}`, (k) => presence.subscribe(k));
        const pid = `cursor-${i}`;
        const local = presence.create(pid);
        local.on('error', fail('local presence'));
        // The client emits 'receive' again for every remote presence it moves through an op
        // (typing): only the first event for each update (its sequence number) is a delivery.
        const seenEvent = new Map();  // presence id -> latest sequence number shown
        const seenFrame = new Map();  // presence id -> latest sequence number received
        presence.on('receive', (id, value) => {
          if (value === null || typeof value !== 'object' || id === pid) return;
          if (!(value.s > (seenEvent.get(id) || 0))) return;
          seenEvent.set(id, value.s);
          const now = monoUs();
          if (!inWindow(now)) return;
          stats.delivered++;
          histAdd(stats.lat, now - value.t);
        });
        conn.on('receive', (request) => {  // every frame, before the client handles it
          const d = request.data;
          if (!(d && d.a === 'p' && d.p != null && d.id !== pid)) return;
          const fresh = d.p.s > (seenFrame.get(d.id) || 0);
          if (fresh) seenFrame.set(d.id, d.p.s);
          if (!inWindow(monoUs())) return;
          if (fresh) stats.frames++;
          else stats.staleFrames++;
        });
        subs.push({i, conn, doc, local, pid, seq: 0, rand: lcg(m.seed * 7919 + i)});
      }
      return {ready: subs.length};
    },
    async go(m) {
      const start = m.start;
      winStart = start + m.warmupMs * 1000;
      winEnd = winStart + m.durationMs * 1000;
      const period = 1e6 / m.hz;
      let pending = 1;  // timer chains still running, and this setup until it is over
      let allDone;
      const done = new Promise((r) => (allDone = r));
      const chainEnd = () => {
        if (--pending === 0) allDone();
      };
      const cursorOf = (s) => {
        const len = typeof s.doc.data === 'string' ? s.doc.data.length : 0;  // ASCII: code units = code points
        const index = Math.floor(s.rand() * (len + 1));
        return {index, length: Math.min(len - index, Math.floor(s.rand() * 8))};
      };
      const send = (s, due) => {
        const t = monoUs();
        if (inWindow(t)) {
          stats.sent++;
          histAdd(stats.late, t - due);
        }
        const value = Object.assign(cursorOf(s), {t, s: ++s.seq});
        s.local.submit(value, (e) => (e ? fail('submit')(e) : stats.acked++));
      };
      const type = (s, k) => {
        const len = s.doc.data.length;
        const pos = Math.floor(s.rand() * (k % 2 === 0 || len === 0 ? len + 1 : len));
        const op = k % 2 === 0 || len === 0 ? (pos ? [pos, 'x'] : ['x']) : (pos ? [pos, {d: 1}] : [{d: 1}]);
        if (inWindow(monoUs())) stats.typed++;
        s.doc.submitOp(op, (e) => e && fail('submitOp')(e));
      };
      // One timer chain per client (and one per typist): the k-th event at an absolute time.
      const chain = (due, fire) => {
        pending++;
        const step = (k) => {
          const at = due(k);
          if (at >= winEnd) return chainEnd();
          setTimeout(() => {
            try {
              fire(k, at);
            } catch (e) {
              fail('send')(e);
            }
            step(k + 1);
          }, Math.max(0, (at - monoUs()) / 1000));
        };
        step(0);
      };
      for (const s of subs) chain((k) => start + (s.i / m.n) * period + k * period, (k, at) => send(s, at));
      if (m.typingHz > 0) {
        const typePeriod = 1e6 / m.typingHz;
        for (const s of subs) {
          // Ops k with k mod N = s.i, at start + (k + 0.5) * typePeriod (between cursor moves).
          chain((j) => start + (s.i + j * m.n + 0.5) * typePeriod, (j) => type(s, s.i + j * m.n));
        }
      }
      chainEnd();
      await done;
      await sleep(m.graceMs);  // what is still in flight arrives (outside the window: not counted)
      return {sent: stats.sent, acked: stats.acked, delivered: stats.delivered, frames: stats.frames,
              staleFrames: stats.staleFrames,
              typed: stats.typed, lat: histOut(stats.lat), late: histOut(stats.late), errors,
              versions: [...new Set(subs.map((s) => s.doc.version))]};
    },
  };
  process.on('message', (m) => handlers[m.cmd](m).then((r) => process.send(r),
    (e) => process.send({error: String((e && e.stack) || e)})));
  process.on('disconnect', () => process.exit(0));  // the parent went away
}

if (process.argv[2] === '--worker') {
  worker();
  return;
}

// ---- parent: servers, workers, measurements, report ----------------------------------------
function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const raw = process.argv[i + 1];
  if (raw === undefined) throw new Error(`--${name} needs a value`);
  if (typeof fallback === 'number') {
    const v = Number(raw);
    if (!Number.isFinite(v)) throw new Error(`--${name} wants a number, not ${raw}`);
    return v;
  }
  return raw;
}
const KNOWN = new Set(['reps', 'subscribers', 'hz', 'duration', 'warmup', 'procs', 'typing-hz', 'servers', 'json',
                       'grace']);
for (let i = 2; i < process.argv.length; i += 2) {
  const a = process.argv[i];
  if (a === '--help' || a === '-h') {
    process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 9).map((l) => l.slice(3)).join('\n') + '\n');
    process.exit(0);
  }
  if (!a.startsWith('--') || !KNOWN.has(a.slice(2))) {
    console.error(`presence_fanout: unknown argument ${a} (--help)`);
    process.exit(2);
  }
}
const REPS = opt('reps', 3);
const N = opt('subscribers', 50);
const HZ = opt('hz', 10);
const DURATION = opt('duration', 10);
const WARMUP = opt('warmup', 2);
const TYPING_HZ = opt('typing-hz', 0);
const GRACE = opt('grace', 1);
// Client processes: about 13 clients each by default (50: 4). Measured on 2 cores at 50 x 10 Hz
// (24,500 deliveries/s): the clients take 35-45% of a core in all, one process alone 38%, four
// about 10% each, with a lower p99; see the "loadgen CPU % (max proc)" column and the warnings.
const PROCS = Math.max(1, Math.min(N, opt('procs', Math.ceil(N / 13))));
const JSON_OUT = opt('json', null);
const ONLY = opt('servers', null);
if (!(N >= 2 && HZ > 0 && DURATION > 0 && WARMUP >= 0 && REPS >= 1 && TYPING_HZ >= 0)) {
  console.error('presence_fanout: need --subscribers >= 2, --hz > 0, --duration > 0, --warmup >= 0, --reps >= 1');
  process.exit(2);
}
if (N > 101) {
  console.error(`presence_fanout: warning: each client shows ${N - 1} presences, over otsyncd's --max-presences (100)`);
}
const CORES = os.cpus().length;
let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100;
} catch (_) { /* 100 */ }

const SERVERS = [
  {name: 'otsyncd memory', kind: 'otsyncd', cmd: OTSYNCD,
   args: (dir) => ['--store', 'memory:', '--data-dir', dir, '--max-connections-per-address', '0', '--log-level', 'warn']},
  {name: 'sharedb memory', kind: 'sharedb', cmd: process.execPath,
   args: () => [PEER, '--presence', '--log-level', 'warn']},
].filter((s) => !ONLY || ONLY.split(',').some((w) => s.name.includes(w)));
if (!SERVERS.length) {
  console.error(`presence_fanout: --servers ${ONLY} matches neither "otsyncd memory" nor "sharedb memory"`);
  process.exit(2);
}

// Everything this process starts, by PID: killed on any exit.
const live = new Map();  // pid -> ChildProcess
function track(child) {
  live.set(child.pid, child);
  child.on('exit', () => live.delete(child.pid));
  return child;
}
process.on('exit', () => {
  for (const pid of live.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (_) { /* gone */ }
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

async function startServer(server, dir) {
  const portFile = path.join(dir, 'port');
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'w');
  const child = track(spawn(server.cmd, [...server.args(dir), '--listen', '127.0.0.1:0', '--port-file', portFile],
    {stdio: ['ignore', log, log]}));
  fs.closeSync(log);
  for (let i = 0; i < 300; i++) {
    if (fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim()) {
      const port = fs.readFileSync(portFile, 'utf8').trim();
      return {child, url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}`, logPath};
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${server.name} did not start: ${fs.readFileSync(logPath, 'utf8').slice(-4000)}`);
}

async function stopChild(child, ms = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  for (let i = 0; i < ms / 50 && child.exitCode === null && child.signalCode === null; i++) await sleep(50);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function spawnWorker() {
  const child = track(fork(__filename, ['--worker'], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']}));
  let waiter = null;
  const answer = (fn, v) => {
    const w = waiter;
    waiter = null;
    if (w) w[fn](v);
  };
  child.on('message', (m) => (m.error ? answer('reject', new Error(`worker ${child.pid}: ${m.error}`)) : answer('resolve', m)));
  child.on('exit', (code, sig) => answer('reject', new Error(`worker ${child.pid} exited (${code ?? sig})`)));
  child.ask = (msg, ms, what) => withTimeout(new Promise((resolve, reject) => {
    waiter = {resolve, reject};
    child.send(msg);
  }), ms, `${what} (worker ${child.pid})`);
  return child;
}

function procTicks(pid) {  // utime + stime (fields 14, 15)
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // f[0] is field 3
  return Number(f[11]) + Number(f[12]);
}
// All CPUs' idle and iowait time. The machine's busy time is the rest of the wall-clock time:
// the busy columns of /proc/stat are sampled at ticks, which a tickless kernel skips while
// idle, and they miss or overcount short bursts of work like these (seen here: 15% busy
// against 52% in the processes' own, exact, /proc/PID/stat).
function machineIdleTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return f[3] + f[4];
}
function sample(serverPid, workers) {
  return {t: monoUs(), server: procTicks(serverPid), workers: workers.map((w) => procTicks(w.pid)),
          self: procTicks(process.pid), machineIdle: machineIdleTicks()};
}

function httpGet(url, ms = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, body}));
    });
    req.on('error', reject);
    req.setTimeout(ms, () => req.destroy(new Error(`timeout: ${url}`)));
  });
}
async function presenceMetrics(base) {  // otsyncd's presence counters (labels summed)
  const out = {};
  for (const line of (await httpGet(`${base}/metrics`)).body.split('\n')) {
    const m = /^(otsync_presence_[a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m) out[m[1]] = (out[m[1]] || 0) + Number(m[3]);
  }
  return out;
}

// 2000 characters of ASCII text (code units = code points): where the cursors move.
const TEXT = (() => {
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur', 'adipiscing', 'elit', 'sed', 'do'];
  let s = '';
  for (let i = 0; s.length < 2000; i++) s += words[(i * 7) % words.length] + (i % 12 === 11 ? '\n' : ' ');
  return s.slice(0, 2000);
})();

async function runOnce(server, rep) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-presence-'));
  const srv = await startServer(server, dir);
  const workers = [];
  try {
    for (let k = 0; k < PROCS; k++) workers.push(spawnWorker());
    await workers[0].ask({cmd: 'create', url: srv.url, text: TEXT}, 30000, 'create the document');
    const indices = Array.from({length: N}, (_, i) => i);
    await Promise.all(workers.map((w, k) => w.ask({cmd: 'setup', url: srv.url, seed: rep,
      indices: indices.filter((i) => i % PROCS === k)}, 60000 + N * 1000, 'connect and subscribe')));
    const start = monoUs() + 500000;
    const winStart = start + WARMUP * 1e6;
    const winEnd = winStart + DURATION * 1e6;
    const results = Promise.all(workers.map((w) => w.ask({cmd: 'go', start, warmupMs: WARMUP * 1000,
      durationMs: DURATION * 1000, hz: HZ, n: N, typingHz: TYPING_HZ, graceMs: GRACE * 1000},
      (WARMUP + DURATION + GRACE) * 1000 + 60000, 'the timed phase')));
    results.catch(() => {});  // awaited below
    const at = async (t) => sleep(Math.max(0, (t - monoUs()) / 1000));
    await at(winStart);
    const s0 = sample(srv.child.pid, workers);
    const m0 = server.kind === 'otsyncd' ? await presenceMetrics(srv.http).catch(() => null) : null;
    await at(winEnd);
    const s1 = sample(srv.child.pid, workers);
    const m1 = server.kind === 'otsyncd' ? await presenceMetrics(srv.http).catch(() => null) : null;
    const rs = await results;
    if (srv.child.exitCode !== null || srv.child.signalCode !== null) {
      throw new Error(`${server.name} exited during the run: ${fs.readFileSync(srv.logPath, 'utf8').slice(-4000)}`);
    }
    const secs = (s1.t - s0.t) / 1e6;
    const pct = (ticks) => (100 * ticks) / CLK_TCK / secs;  // % of one core
    const workerCpu = workers.map((_, k) => pct(s1.workers[k] - s0.workers[k]));
    const lat = histMerge(rs.map((r) => r.lat));
    const late = histMerge(rs.map((r) => r.late));
    const errors = {};
    for (const r of rs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] || 0) + v;
    const delivered = sum(rs.map((r) => r.delivered)) / DURATION;
    const serverCpu = pct(s1.server - s0.server);
    const metricsDelta = m0 && m1 ? Object.fromEntries(Object.keys(m1).map((k) => [k, m1[k] - (m0[k] || 0)])) : null;
    return {
      sentPerS: sum(rs.map((r) => r.sent)) / DURATION,
      ackedTotal: sum(rs.map((r) => r.acked)),
      deliveredPerS: delivered,
      framesPerS: sum(rs.map((r) => r.frames)) / DURATION,
      staleFramesPerS: sum(rs.map((r) => r.staleFrames)) / DURATION,
      typedPerS: sum(rs.map((r) => r.typed)) / DURATION,
      expectedPerS: N * HZ * (N - 1),
      deliveredRatio: delivered / (N * HZ * (N - 1)),
      serverCpuPercent: serverCpu,
      serverCpuUsPerDelivered: delivered > 0 ? ((serverCpu / 100) * 1e6) / delivered : null,
      latencyP50Ms: histQuantile(lat, 0.5), latencyP99Ms: histQuantile(lat, 0.99),
      latencyMaxMs: lat.over.length ? lat.over[lat.over.length - 1] / 1000
        : lat.buckets.length ? ((lat.buckets[lat.buckets.length - 1][0] + 1) * BUCKET_US) / 1000 : null,
      latencySamples: lat.n, negativeLatencies: lat.negative,
      sendLatenessP99Ms: histQuantile(late, 0.99),
      loadgenCpuPercent: sum(workerCpu), loadgenMaxProcCpuPercent: Math.max(...workerCpu), loadgenProcCpuPercent: workerCpu,
      machineBusyPercent: Math.max(0, 100 * CORES - pct(s1.machineIdle - s0.machineIdle)), parentCpuPercent: pct(s1.self - s0.self),
      windowSeconds: secs, docVersions: [...new Set(rs.flatMap((r) => r.versions))],
      presenceMetrics: metricsDelta, errors,
    };
  } catch (e) {
    e.message += `\n(server log: ${fs.readFileSync(srv.logPath, 'utf8').slice(-2000)})`;
    throw e;
  } finally {
    for (const w of workers) w.kill('SIGKILL');
    await stopChild(srv.child);
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

const fmt = (x, digits = 0) => (x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(digits));
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : null;
};

(async () => {
  // The whole run's deadline: setup, the timed phases, the stops, with room to spare.
  const perRun = 60 + N * 1.5 + 0.5 + WARMUP + DURATION + GRACE + 15;
  setTimeout(() => {
    console.error('presence_fanout: the run took too long; stopping');
    process.exit(1);
  }, (REPS * SERVERS.length * perRun * 2 + 120) * 1000).unref();

  process.stderr.write(`presence_fanout: ${N} clients on 1 document, ${HZ} Hz each, typing ${TYPING_HZ} ops/s, ` +
    `${WARMUP} s warm-up + ${DURATION} s measured, ${REPS} reps, ${PROCS} client processes, ${CORES} cores\n`);
  const runs = Object.fromEntries(SERVERS.map((s) => [s.name, []]));
  for (let rep = 1; rep <= REPS; rep++) {
    const order = rep % 2 ? SERVERS : [...SERVERS].reverse();
    for (const server of order) {
      const r = await runOnce(server, rep);
      runs[server.name].push(r);
      const nerr = sum(Object.values(r.errors));
      process.stderr.write(`rep ${rep}/${REPS} ${server.name}: sent ${fmt(r.sentPerS)}/s, delivered ${fmt(r.deliveredPerS)}/s ` +
        `(${fmt(100 * r.deliveredRatio, 1)}% of expected), server CPU ${fmt(r.serverCpuPercent)}%, ` +
        `${fmt(r.serverCpuUsPerDelivered, 2)} µs/update, p50 ${fmt(r.latencyP50Ms, 2)} ms, p99 ${fmt(r.latencyP99Ms, 2)} ms, ` +
        `loadgen ${fmt(r.loadgenCpuPercent)}% (max proc ${fmt(r.loadgenMaxProcCpuPercent)}%), ` +
        `send lateness p99 ${fmt(r.sendLatenessP99Ms, 2)} ms, machine ${fmt(r.machineBusyPercent)}%, ` +
        `frames ${fmt(r.framesPerS)}/s + ${fmt(r.staleFramesPerS)}/s repeated` +
        `${nerr ? `, ${nerr} errors: ${JSON.stringify(r.errors)}` : ''}\n`);
    }
  }

  const summary = {};
  const warnings = [];
  for (const server of SERVERS) {
    const rs = runs[server.name];
    const med = (k) => median(rs.map((r) => r[k]));
    const s = summary[server.name] = {
      sentPerS: med('sentPerS'), deliveredPerS: med('deliveredPerS'), framesPerS: med('framesPerS'),
      repeatedFramesPerS: med('staleFramesPerS'),
      expectedPerS: N * HZ * (N - 1), deliveredRatio: med('deliveredRatio'),
      serverCpuPercent: med('serverCpuPercent'), serverCpuUsPerDelivered: med('serverCpuUsPerDelivered'),
      latencyP50Ms: med('latencyP50Ms'), latencyP99Ms: med('latencyP99Ms'),
      loadgenCpuPercent: med('loadgenCpuPercent'), loadgenMaxProcCpuPercent: med('loadgenMaxProcCpuPercent'),
      sendLatenessP99Ms: med('sendLatenessP99Ms'), machineBusyPercent: med('machineBusyPercent'),
      coalesced: server.kind === 'otsyncd'
        ? sum(rs.map((r) => (r.presenceMetrics && r.presenceMetrics.otsync_presence_coalesced_total) || 0)) : null,
      errors: sum(rs.map((r) => sum(Object.values(r.errors)))),
      negativeLatencies: sum(rs.map((r) => r.negativeLatencies)),
    };
    // The load generator (or the machine) as the limit: then the figures are bounds.
    const period = 1000 / HZ;
    for (const [i, r] of rs.entries()) {
      const where = `${server.name}, rep ${i + 1}`;
      if (r.loadgenMaxProcCpuPercent > 85) {
        warnings.push(`${where}: a client process used ${fmt(r.loadgenMaxProcCpuPercent)}% of a core ` +
                      '(near saturation; try more --procs)');
      }
      if (r.sendLatenessP99Ms > period / 4) {
        warnings.push(`${where}: sends fired late (p99 ${fmt(r.sendLatenessP99Ms, 1)} ms against a ` +
                      `${fmt(period)} ms period): the load generator did not keep its schedule`);
      }
      if (r.machineBusyPercent > 0.95 * 100 * CORES) {
        warnings.push(`${where}: the machine was busy (${fmt(r.machineBusyPercent)}% of ${100 * CORES}%): ` +
                      'server and clients competed for CPU');
      }
    }
  }
  const ot = summary['otsyncd memory'];
  const sd = summary['sharedb memory'];
  const ratio = (k) => (ot && sd && ot[k] != null && sd[k] ? ot[k] / sd[k] : null);
  const ratios = {deliveredPerS: ratio('deliveredPerS'), serverCpuPercent: ratio('serverCpuPercent'),
                  serverCpuUsPerDelivered: ratio('serverCpuUsPerDelivered'), latencyP50Ms: ratio('latencyP50Ms'),
                  latencyP99Ms: ratio('latencyP99Ms')};

  console.log(`Presence fan-out: 1 document × ${N} subscribers, each moving a cursor at ${HZ} Hz (evenly spread)` +
    `${TYPING_HZ > 0 ? `, typing ${TYPING_HZ} ops/s` : ', text unchanged'}; ${PROCS} client processes (sharedb@7 client ` +
    `+ clients/js transformPresence on both); ${DURATION} s measured after ${WARMUP} s warm-up; median of ${REPS} reps; ` +
    `${CORES} cores shared by server and clients. Ratio = otsyncd / ShareDB (CPU per update and latency: below 1 = ` +
    'otsyncd lower).\n');
  console.log('| server | sent/s | delivered/s | expected/s | delivered/expected | server CPU % | server CPU µs/update | ' +
              'latency p50 ms | latency p99 ms | frames/s (repeats/s) | loadgen CPU % (max proc) | send lateness p99 ms | ' +
              'machine busy % | coalesced | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const server of SERVERS) {
    const s = summary[server.name];
    console.log(`| ${server.name} | ${fmt(s.sentPerS)} | ${fmt(s.deliveredPerS)} | ${fmt(s.expectedPerS)} | ` +
      `${fmt(100 * s.deliveredRatio, 1)}% | ${fmt(s.serverCpuPercent, 1)} | ${fmt(s.serverCpuUsPerDelivered, 2)} | ` +
      `${fmt(s.latencyP50Ms, 2)} | ${fmt(s.latencyP99Ms, 2)} | ${fmt(s.framesPerS)} (${fmt(s.repeatedFramesPerS)}) | ` +
      `${fmt(s.loadgenCpuPercent)} (${fmt(s.loadgenMaxProcCpuPercent)}) | ` +
      `${fmt(s.sendLatenessP99Ms, 2)} | ${fmt(s.machineBusyPercent)} | ${s.coalesced === null ? '—' : s.coalesced} | ` +
      `${s.errors} |`);
  }
  if (ot && sd) {
    console.log(`| **otsyncd / ShareDB** | | ${fmt(ratios.deliveredPerS, 2)} | | | ${fmt(ratios.serverCpuPercent, 2)} | ` +
      `${fmt(ratios.serverCpuUsPerDelivered, 2)} | ${fmt(ratios.latencyP50Ms, 2)} | ${fmt(ratios.latencyP99Ms, 2)} | | | | | | |`);
  }
  if (warnings.length) {
    console.log('\nWarnings:\n');
    for (const w of warnings) console.log(`- ${w}`);
  }
  if (JSON_OUT) {
    fs.writeFileSync(JSON_OUT, JSON.stringify({
      config: {subscribers: N, hz: HZ, typingHz: TYPING_HZ, duration: DURATION, warmup: WARMUP, reps: REPS, procs: PROCS,
               cores: CORES, servers: SERVERS.map((s) => s.name)},
      summary, ratios, warnings, runs,
    }, null, 1));
  }
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
