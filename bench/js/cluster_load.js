#!/usr/bin/env node
// otsyncd on Redis: ONE instance vs THREE instances, both behind HAProxy
// (scripts/cluster.sh, fresh cluster per run), under the same load: --docs
// documents x --writers writers each (every writer its own WebSocket through
// HAProxy, so with three instances a document's writers sit on different
// instances), each writer inserting a short string at a random code-point
// position, --ops times, closed loop (next op when the previous is acked) or
// capped at --rate ops/s per writer. The unmodified sharedb client runs in
// --procs forked Node processes (one would bound the figures on its own).
//
//   node bench/js/cluster_load.js [--bin build/bin/otsyncd] [--reps 3] [--procs 2]
//        [--docs 20] [--writers 3] [--ops 1000] [--rate OPS_PER_S] [--timeout 180] [--json FILE]
//
// Per run, over the timed phase (all documents created and subscribed before):
//   acked ops/s      acked ops / (first submit .. last ack)
//   p50/p99/max ms   per op, from submitOp to its ack callback
//   Redis cmds/op    INFO commandstats calls delta, all commands (Lua's redis.call
//                    count too) but INFO, PING, (UN)SUBSCRIBE (listed apart)
//   EVAL(SHA)/op     commits as Lua scripts: > 1 means lost commit races, retried
//   pub/sub msgs/op  otsync_redis_feed_messages (all instances) / op
//   converged        every client of a document has the same version and text,
//                    version = 1 + its acked ops, and a fresh fetch through each
//                    instance's own URL agrees; otsync_ops_committed_total = acked
//   CPU %            of one core: otsyncd (all), redis, haproxy (/proc/PID/stat),
//                    load generator (process.cpuUsage of the workers)
// Runs alternate 1 and 3 instances --reps times; stdout gets the Markdown table
// of medians, the raw runs, then JSON. A failing run keeps its DIR (logs there).
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const http = require('http');
const {fork, execFileSync} = require('child_process');

const ROOT = path.join(__dirname, '..', '..');
const CLUSTER = path.join(ROOT, 'scripts', 'cluster.sh');
const COLLECTION = 'bench';
const need = (m) => require(require.resolve(m, {paths: [path.join(ROOT, 'tests', 'js')]}));
let client = null;
function sharedb() {
  if (client) return client;
  const ShareDB = need('sharedb/lib/client');
  ShareDB.types.register(need('ot-text-unicode').type);
  return (client = {ShareDB, WebSocket: need('ws')});
}
const cb2p = (fn) => new Promise((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();  // epoch ms, comparable across processes
const range = (n, from = 0) => Array.from({length: n}, (_, i) => i + from);
function connect(url) {
  const {ShareDB, WebSocket} = sharedb();
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const c = new ShareDB.Connection(socket);
    socket.once('open', () => resolve(c));
    socket.once('error', reject);
  });
}

function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (typeof fallback === 'string' || fallback === null) return v;
  if (!Number.isFinite(Number(v))) throw new Error(`--${name} wants a number`);
  return Number(v);
}

// ---- worker: its share of the documents, all writers of each ------------------------------
function worker() {
  const INSERTS = ['ab', 'ü', '😀x', ' ', 'otsync'];  // code points: 2, 1, 2, 1, 6
  const docs = [];
  const errors = [];
  const fail = (what) => (e) => errors.push(`${what}: ${(e && (e.code || e.message)) || e}`);
  let cfg;
  const handlers = {
    async setup(m) {
      cfg = m;
      for (const id of m.ids) {
        const d = {id, copies: [], acked: 0, inserted: 0};
        for (let w = 0; w < m.writers; w++) {  // one at a time: HAProxy's leastconn spreads them
          const c = await connect(m.url);
          c.on('error', fail('connection'));
          const doc = c.get(COLLECTION, id);
          doc.on('error', fail(`doc ${id}`));
          if (w === 0) {
            await cb2p((cb) => doc.fetch(cb));
            if (!doc.type) {
              await cb2p((cb) => doc.create('', 'text-unicode', cb)).catch((e) => {
                if (e.code !== 'ERR_DOC_ALREADY_CREATED') throw e;
              });
            }
          }
          d.copies.push(doc);
        }
        docs.push(d);
      }
      await Promise.all(docs.flatMap((d) => d.copies.map((doc) => cb2p((cb) => doc.subscribe(cb)))));
      return {};
    },
    async go() {
      const lat = [];
      const cpu0 = process.cpuUsage();
      const start = now();
      let end = start;
      const writer = async (d, doc, seed) => {
        let s = seed >>> 0;  // mulberry32
        const rand = () => {
          s = (s + 0x6d2b79f5) >>> 0;
          let t = Math.imul(s ^ (s >>> 15), 1 | s);
          t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
          return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
        };
        const t0 = performance.now();
        for (let k = 0; k < cfg.ops; k++) {
          const wait = cfg.rate > 0 ? t0 + (k * 1000) / cfg.rate - performance.now() : 0;
          if (wait > 0) await sleep(wait);
          const pos = Math.floor(rand() * ([...doc.data].length + 1));
          const text = INSERTS[Math.floor(rand() * INSERTS.length)];
          const t = performance.now();
          try {
            await cb2p((cb) => doc.submitOp(pos ? [pos, text] : [text], cb));
            lat.push(Math.round((performance.now() - t) * 1000) / 1000);
            d.acked++;
            d.inserted += [...text].length;
            end = now();
          } catch (e) {
            fail(`submit ${d.id}`)(e);
          }
        }
      };
      await Promise.all(docs.flatMap((d, i) => d.copies.map((doc, w) => writer(d, doc, cfg.seed * 7919 + i * 31 + w))));
      const cpu = process.cpuUsage(cpu0);
      return {lat, start, end, cpuUs: cpu.user + cpu.system};
    },
    async settle(m) {  // wait until every copy has every acked op of its document
      const deadline = Date.now() + m.ms;
      const done = () => docs.every((d) => d.copies.every((doc) => !doc.hasPending() && doc.version === 1 + d.acked));
      while (!done() && Date.now() < deadline) await sleep(20);
      return {errors, docs: docs.map((d) => ({id: d.id, acked: d.acked, inserted: d.inserted,
                                               copies: d.copies.map((doc) => ({v: doc.version, text: doc.data}))}))};
    },
  };
  process.on('message', (m) => handlers[m.cmd](m).then((r) => process.send(r),
    (e) => process.send({error: String((e && e.stack) || e)})));
}

// ---- parent: clusters, measurements, report ----------------------------------------------
function spawnWorker() {
  const child = fork(__filename, ['--worker'], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']});
  let waiter = null;
  const settle = (fn, v) => { const w = waiter; waiter = null; if (w) w[fn](v); };
  child.on('message', (m) => settle(m.error ? 'reject' : 'resolve', m.error ? new Error(`worker: ${m.error}`) : m));
  child.on('exit', (code, sig) => settle('reject', new Error(`worker exited (${code ?? sig})`)));
  child.ask = (msg) => new Promise((resolve, reject) => { waiter = {resolve, reject}; child.send(msg); });
  return child;
}

function procTicks(pid) {  // utime + stime, clock ticks (100/s)
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // f[0] is field 3 (state)
    return Number(f[11]) + Number(f[12]);
  } catch (_) { return NaN; }
}

function getText(url, statusOnly = false) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(statusOnly ? res.statusCode : b));
    })
      .on('error', reject).setTimeout(5000, function () { this.destroy(new Error(`timeout: ${url}`)); });
  });
}

async function metrics(wsUrl) {  // metric name (labels summed) -> value
  const body = await getText(wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '/metrics'));
  const out = {};
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[{ ]/));
    out[name] = (out[name] || 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function snapshot(env, inst) {
  const redis = (section) => execFileSync('redis-cli', ['-p', env.REDIS_PORT, 'INFO', section], {encoding: 'utf8'});
  const cmd = {};
  for (const m of redis('commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) cmd[m[1]] = Number(m[2]);
  const total = Number(/total_commands_processed:(\d+)/.exec(redis('stats'))[1]);
  const met = await Promise.all(inst.map((i) => metrics(i.url)));
  return {cmd, total, met};
}

function cpuTicks(env, inst) {
  return {otsyncd: inst.reduce((s, i) => s + procTicks(i.pid), 0), redis: procTicks(env.REDIS_PID),
          haproxy: procTicks(env.HAPROXY_PID), t: now()};
}

async function fetchAll(url, ids) {
  const c = await connect(url);
  try {
    const out = {};
    for (const id of ids) {
      const doc = c.get(COLLECTION, id);
      await cb2p((cb) => doc.fetch(cb));
      out[id] = {v: doc.version, text: doc.data};
    }
    return out;
  } finally { c.close(); }
}

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const APART = ['info', 'ping', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe'];

async function measure(L, n, rep, env, inst, workers) {
  const ids = range(L.docs).map((d) => `d${d}`);
  const start = await snapshot(env, inst);
  for (const [k, w] of workers.entries()) {
    await w.ask({cmd: 'setup', url: env.HAPROXY_URL, ids: ids.filter((_, d) => d % workers.length === k),
                 writers: L.writers, ops: L.ops, rate: L.rate, seed: rep});
  }
  const before = await snapshot(env, inst);
  const cpu0 = cpuTicks(env, inst);
  const ran = await Promise.all(workers.map((w) => w.ask({cmd: 'go'})));
  const cpu1 = cpuTicks(env, inst);
  const settled = await Promise.all(workers.map((w) => w.ask({cmd: 'settle', ms: 20000})));
  const after = await snapshot(env, inst);
  const fresh = await Promise.all(inst.map((i) => fetchAll(i.url, ids)));

  const lat = ran.flatMap((r) => r.lat).sort((a, b) => a - b);
  const acked = lat.length;
  const seconds = (Math.max(...ran.map((r) => r.end)) - Math.min(...ran.map((r) => r.start))) / 1000;
  const delta = (name) => sum(after.met.map((m) => m[name] || 0)) - sum(before.met.map((m) => m[name] || 0));
  const diff = (a, b) => Object.fromEntries(Object.keys(b.cmd).map((c) => [c, b.cmd[c] - (a.cmd[c] || 0)]).filter(([, d]) => d));
  const cmds = diff(before, after);
  const perOp = (x) => (acked ? +(x / acked).toFixed(3) : NaN);
  const problems = [];
  for (const d of settled.flatMap((s) => s.docs)) {
    const ref = d.copies[0];
    if (d.copies.some((c) => c.v !== ref.v || c.text !== ref.text)) {
      problems.push(`${d.id}: writers differ (versions ${d.copies.map((c) => c.v)})`);
    }
    if (ref.v !== 1 + d.acked) problems.push(`${d.id}: version ${ref.v}, expected 1 + ${d.acked} acked`);
    if ([...(ref.text || '')].length !== d.inserted) problems.push(`${d.id}: ${[...ref.text].length} code points, inserted ${d.inserted}`);
    fresh.forEach((f, i) => {
      if (f[d.id].v !== ref.v || f[d.id].text !== ref.text) problems.push(`${d.id}: fetch via otsync${i + 1} v${f[d.id].v}, clients v${ref.v}`);
    });
  }
  const committed = delta('otsync_ops_committed_total');
  if (committed !== acked) problems.push(`otsync_ops_committed_total +${committed}, acked ${acked}`);
  const errors = settled.flatMap((s) => s.errors);
  const wall = (cpu1.t - cpu0.t) / 1000;
  const cpu = (k) => +((100 * (cpu1[k] - cpu0[k])) / 100 / wall).toFixed(1);
  const loadgen = ran.map((r) => +(r.cpuUs / 1e4 / wall).toFixed(1));
  return {
    setup: `${n} instance${n > 1 ? 's' : ''}`, instances: n, rep, acked, seconds: +seconds.toFixed(3),
    opsPerSec: Math.round(acked / seconds), p50: pct(lat, 0.5), p99: pct(lat, 0.99), max: lat[lat.length - 1],
    committed, redisCmdsPerOp: perOp(sum(Object.entries(cmds).filter(([c]) => !APART.includes(c)).map(([, v]) => v))),
    evalPerOp: perOp((cmds.evalsha || 0) + (cmds.eval || 0)),
    totalCommandsProcessedPerOp: perOp(after.total - before.total),
    storeCommandsPerOp: perOp(delta('otsync_redis_commands')),  // round trips the store sent (pub/sub feed apart)
    pubsubMsgsPerOp: perOp(delta('otsync_redis_feed_messages')),
    apart: Object.fromEntries(APART.filter((c) => cmds[c]).map((c) => [c, cmds[c]])),
    setupCommands: diff(start, before),  // connect, create, subscribe (before the timed phase)
    commandsPerOp: Object.fromEntries(Object.entries(cmds).filter(([c]) => !APART.includes(c)).map(([c, v]) => [c, perOp(v)])),
    serverErrorReplies: delta('otsync_errors_total'),
    connectionsPerInstance: after.met.map((m) => m.otsync_connections),
    converged: problems.length === 0, problems: problems.slice(0, 20), errors: errors.length, errorSamples: errors.slice(0, 10),
    cpu: {otsyncd: cpu('otsyncd'), redis: cpu('redis'), haproxy: cpu('haproxy'), loadgen: +sum(loadgen).toFixed(1), loadgenPerProc: loadgen},
  };
}

// cluster.sh returns once HAProxy routes to one ready instance, but HAProxy starts every slot as up:
// wait until each instance answers /readyz and HAProxy has marked the unused slots down (else 503s).
async function clusterReady(dir, inst) {
  const deadline = Date.now() + 20000;
  const ready = async (i) => (await getText(i.url.replace(/^ws:/, 'http:').replace(/\/ws$/, '/readyz'), true)) === 200;
  const down = (i) => fs.readFileSync(path.join(dir, 'haproxy.log'), 'utf8').includes(`Server otsyncd/otsync${i} is DOWN`);
  for (;;) {
    const ok = (await Promise.all(inst.map((i) => ready(i).catch(() => false)))).every(Boolean) &&
               range(3 - inst.length, inst.length + 1).every(down);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`cluster in ${dir} not ready after 20 s`);
    await sleep(100);
  }
}

let active = null;  // {dir, workers} of the run in progress, for SIGINT
function stopCluster(dir) {
  // cluster.sh stop runs `kill -TERM ${OTSYNCi_PID:-0}`: for a slot not started that is kill 0, the whole
  // process group (this one too). Slots 2 and 3 default to instance 1's PID here; cluster.env overrides.
  let pid1 = '';
  try { pid1 = /^OTSYNC1_PID=(\d+)$/m.exec(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8'))[1]; } catch (_) { /* none */ }
  try {
    execFileSync(CLUSTER, ['stop', dir], {env: {...process.env, OTSYNC2_PID: pid1, OTSYNC3_PID: pid1},
                                          stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
  } catch (e) {
    process.stderr.write(`cluster.sh stop ${dir}: ${e.message}\n`);
  }
}

async function run(L, n, rep) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otsync-bench-${n}i-`));
  active = {dir, workers: []};
  let ok = false;
  try {
    execFileSync(CLUSTER, ['start', dir, L.bin], {env: {...process.env, OTSYNC_INSTANCES: String(n)},
                                                  stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
    const env = Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));  // a later line wins
    const inst = range(n, 1).map((i) => ({url: env[`OTSYNC${i}_URL`], pid: Number(env[`OTSYNC${i}_PID`])}));
    await clusterReady(dir, inst);
    active.workers = range(Math.min(L.procs, L.docs)).map(spawnWorker);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`run timed out after ${L.timeout} s (${n} instances, rep ${rep}); kept ${dir}`)), L.timeout * 1000);
    });
    const res = await Promise.race([measure(L, n, rep, env, inst, active.workers), timeout]).finally(() => clearTimeout(timer));
    ok = res.converged && res.errors === 0;
    res.dir = ok ? null : dir;
    return res;
  } finally {
    for (const w of active.workers) w.kill();
    stopCluster(dir);
    if (ok) fs.rmSync(dir, {recursive: true, force: true});
    active = null;
  }
}

function report(L, runs) {
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const cols = ['setup', 'acked ops/s', 'p50 ms', 'p99 ms', 'max ms', 'Redis cmds/op (all)', 'EVAL(SHA)/op',
                'pub/sub msgs/op', 'converged', 'errors'];
  const row = (r) => [r.setup, r.opsPerSec, r.p50, r.p99, r.max, r.redisCmdsPerOp, r.evalPerOp, r.pubsubMsgsPerOp,
                      r.converged ? 'yes' : 'no', r.errors];
  const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`,
                                 ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const setups = [...new Set(runs.map((r) => r.setup))];
  const med = setups.map((s) => {
    const rs = runs.filter((r) => r.setup === s);
    const m = (f) => +median(rs.map(f)).toFixed(3);
    return {setup: s, runs: rs.length, opsPerSec: m((r) => r.opsPerSec), p50: m((r) => r.p50), p99: m((r) => r.p99),
            max: m((r) => r.max), redisCmdsPerOp: m((r) => r.redisCmdsPerOp), evalPerOp: m((r) => r.evalPerOp),
            pubsubMsgsPerOp: m((r) => r.pubsubMsgsPerOp), converged: rs.every((r) => r.converged),
            errors: sum(rs.map((r) => r.errors)),
            cpu: Object.fromEntries(['otsyncd', 'redis', 'haproxy', 'loadgen'].map((k) => [k, m((r) => r.cpu[k])]))};
  });
  const load = `${L.docs} docs x ${L.writers} writers x ${L.ops} ops, ${L.rate ? `${L.rate} ops/s per writer` : 'closed loop'}, ${L.procs} client procs, ${os.cpus().length} cores`;
  console.log(`## otsyncd on Redis behind HAProxy: 1 vs 3 instances\n\n${load}; medians of ${L.reps} runs (errors: total)\n`);
  console.log(table(cols, med.map(row)));
  console.log('\nCPU, % of one core over the timed phase (medians):\n');
  console.log(table(['setup', 'otsyncd (all)', 'redis', 'haproxy', 'load generator'],
                    med.map((r) => [r.setup, r.cpu.otsyncd, r.cpu.redis, r.cpu.haproxy, r.cpu.loadgen])));
  console.log('\nRaw runs:\n');
  console.log(table(['rep', ...cols, 'committed', 'INFO total_cmds/op', 'store cmds/op', 'not in cmds/op',
                     'CPU otsyncd/redis/haproxy/loadgen %'],
                    runs.map((r) => [r.rep, ...row(r), r.committed, r.totalCommandsProcessedPerOp, r.storeCommandsPerOp,
                                     `timed ${JSON.stringify(r.apart)}, setup {"subscribe":${r.setupCommands.subscribe || 0}}`, `${r.cpu.otsyncd}/${r.cpu.redis}/${r.cpu.haproxy}/${r.cpu.loadgen}`])));
  const busy = runs.filter((r) => r.cpu.loadgenPerProc.some((c) => c >= 90));
  console.log(busy.length
    ? `\nLoad generator saturated (a client proc >= 90% of a core) in ${busy.length} of ${runs.length} runs: figures are lower bounds.`
    : '\nLoad generator below 90% of a core per proc in every run.');
  for (const r of runs.filter((x) => !x.converged || x.errors)) {
    console.log(`\n${r.setup} rep ${r.rep} FAILED (kept ${r.dir}):\n  ${[...r.problems, ...r.errorSamples].join('\n  ')}`);
  }
  const json = JSON.stringify({load: L, medians: med, runs}, null, 1);
  console.log('\n```json\n' + json + '\n```');
  if (L.json) fs.writeFileSync(L.json, json + '\n');
}

async function main() {
  const L = {bin: path.resolve(opt('bin', path.join(ROOT, 'build', 'bin', 'otsyncd'))), reps: opt('reps', 3),
             procs: opt('procs', 2), docs: opt('docs', 20), writers: opt('writers', 3), ops: opt('ops', 1000),
             rate: opt('rate', 0), timeout: opt('timeout', 180), json: opt('json', null)};
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      process.stderr.write(`${sig}: stopping\n`);
      if (active) {
        active.workers.forEach((w) => w.kill());
        stopCluster(active.dir);
        process.stderr.write(`kept ${active.dir}\n`);
      }
      process.exit(130);
    });
  }
  const runs = [];
  for (let rep = 1; rep <= L.reps; rep++) {
    for (const n of [1, 3]) {
      process.stderr.write(`rep ${rep}/${L.reps}, ${n} instance(s): `);
      const r = await run(L, n, rep);
      runs.push(r);
      process.stderr.write(`${r.opsPerSec} ops/s, p50 ${r.p50} p99 ${r.p99} ms, ${r.evalPerOp} EVAL/op, ` +
                           `converged ${r.converged}, errors ${r.errors}, CPU ${JSON.stringify(r.cpu)}\n`);
    }
  }
  report(L, runs);
  if (runs.some((r) => !r.converged || r.errors)) process.exitCode = 1;
}

if (process.argv.includes('--worker')) worker();
else main().catch((e) => { console.error(e); process.exit(1); });
