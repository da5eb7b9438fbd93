#!/usr/bin/env node
// otsyncd on Redis, ONE vs THREE instances behind HAProxy (scripts/cluster.sh, a fresh
// cluster per run), same load: --docs documents x --writers writers, each writer its own
// WebSocket through HAProxy (with three instances a document's writers sit on different
// ones) inserting a short string at a random code-point position --ops times, closed loop
// (next op once the previous is acked) or at most --rate ops/s. The unmodified sharedb
// client runs in --procs forked Node processes.
//
//   node bench/js/cluster_load.js [--bin build/bin/otsyncd] [--reps 3] [--procs 2] [--docs 20]
//        [--writers 3] [--ops 1000] [--rate OPS_PER_S] [--timeout 180] [--json FILE]
//
// Over the timed phase (documents created and subscribed before it), per run:
//   acked ops/s     acked ops / (first submit .. last ack)
//   p50/p99/max     ms from submitOp to its ack callback, per op
//   Redis cmds/op   INFO commandstats calls, summed, per op: every command, the
//                   Lua script's own redis.call()s included, but INFO, PING and
//                   (UN)SUBSCRIBE (shown apart). Round trips: "store cmds/op"
//                   (otsync_redis_commands_total). EVAL(SHA)/op > 1: lost commit races
//   pub/sub msgs/op otsync_redis_feed_messages_total of all instances, per op
//   converged       all clients of a document agree (version = 1 + its acked ops,
//                   text), a fresh fetch through each instance's own URL agrees
//                   and otsync_ops_committed_total rose by the acked ops
//   CPU %           of one core: otsyncd (all), redis, haproxy (/proc/PID/stat), the
//                   load generator (process.cpuUsage of the workers) and the rest of
//                   the machine (/proc/stat): other work there skews the figures
// Runs alternate 1 and 3 instances, --reps times; stdout: Markdown tables, then JSON.
// A failing run keeps its DIR (logs there).
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
const ShareDB = need('sharedb/lib/client');
const WebSocket = need('ws');
ShareDB.types.register(need('ot-text-unicode').type);
function connect(url) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const c = new ShareDB.Connection(socket);
    socket.once('open', () => resolve(c));
    socket.once('error', reject);
  });
}
const cb2p = (fn) => new Promise((resolve, reject) => fn((e, v) => (e ? reject(e) : resolve(v))));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.timeOrigin + performance.now();  // epoch ms, comparable across processes
const range = (n, from = 0) => Array.from({length: n}, (_, i) => i + from);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function opt(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? fallback : typeof fallback === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
  if (typeof fallback === 'number' && !Number.isFinite(v)) throw new Error(`--${name} wants a number`);
  return v;
}

// ---- worker: its share of the documents, every writer of each --------------------------
function worker() {
  const INSERTS = ['ab', 'ü', '😀x', ' ', 'otsync'];
  const docs = [], errors = [];
  const fail = (what) => (e) => errors.push(`${what}: ${(e && (e.code || e.message)) || e}`);
  let cfg;
  const handlers = {
    async setup(m) {
      cfg = m;
      for (const id of m.ids) {
        const d = {id, copies: [], acked: 0, inserted: 0};
        for (let w = 0; w < m.writers; w++) {  // one at a time, so HAProxy's leastconn alternates instances
          const c = await connect(m.url);
          c.on('error', fail('connection'));
          const doc = c.get(COLLECTION, id);
          doc.on('error', fail(`doc ${id}`));
          if (w === 0) await cb2p((cb) => doc.fetch(cb));  // the first writer creates it
          if (w === 0 && !doc.type) {
            await cb2p((cb) => doc.create('', 'text-unicode', cb))
              .catch((e) => { if (e.code !== 'ERR_DOC_ALREADY_CREATED') throw e; });
          }
          d.copies.push(doc);
        }
        docs.push(d);
      }
      await Promise.all(docs.flatMap((d) => d.copies.map((doc) => cb2p((cb) => doc.subscribe(cb)))));
      return {};
    },
    async go() {
      const lat = [], cpu0 = process.cpuUsage(), start = now();
      let end = start;
      const writer = async (d, doc, seed) => {
        let s = seed >>> 0;
        const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;  // LCG: repeatable runs
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
    async settle(m) {  // until every copy has every acked op of its document (or m.ms passed)
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

// ---- parent: clusters, measurements, report ------------------------------------------------
function spawnWorker() {
  const child = fork(__filename, ['--worker'], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']});
  let waiter = null;
  const answer = (fn, v) => { const w = waiter; waiter = null; if (w) w[fn](v); };
  child.on('message', (m) => (m.error ? answer('reject', new Error(`worker: ${m.error}`)) : answer('resolve', m)));
  child.on('exit', (code, sig) => answer('reject', new Error(`worker exited (${code ?? sig})`)));
  child.ask = (msg) => new Promise((resolve, reject) => { waiter = {resolve, reject}; child.send(msg); });
  return child;
}

function procTicks(pid) {  // utime + stime (fields 14, 15) in clock ticks, 100/s
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');  // f[0] is field 3
  return Number(f[11]) + Number(f[12]);
}

function httpGet(wsUrl, pathname) {  // -> {status, body}, on the instance's ws host:port
  const url = wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, pathname);
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, body}));
    }).on('error', reject).setTimeout(5000, function () { this.destroy(new Error(`timeout: ${url}`)); });
  });
}

async function metrics(wsUrl) {  // metric name (labels summed) -> value
  const out = {};
  for (const line of (await httpGet(wsUrl, '/metrics')).body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[{ ]/));
    out[name] = (out[name] || 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function snapshot(env, inst) {
  const info = (section) => execFileSync('redis-cli', ['-p', env.REDIS_PORT, 'INFO', section], {encoding: 'utf8'});
  const cmd = {};
  for (const m of info('commandstats').matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) cmd[m[1]] = Number(m[2]);
  const total = Number(/total_commands_processed:(\d+)/.exec(info('stats'))[1]);
  return {cmd, total, met: await Promise.all(inst.map((i) => metrics(i.url)))};
}

const busyTicks = () => {  // the whole machine: all but idle and iowait in /proc/stat's cpu line
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return sum(f) - f[3] - f[4];
};
const cpuTicks = (env, inst) => ({otsyncd: sum(inst.map((i) => procTicks(i.pid))), redis: procTicks(env.REDIS_PID),
                                  haproxy: procTicks(env.HAPROXY_PID), machine: busyTicks(), t: now()});

async function fetchAll(url, ids) {  // a fresh client's view, through one instance
  const c = await connect(url);
  const docs = ids.map((id) => c.get(COLLECTION, id));
  await Promise.all(docs.map((doc) => cb2p((cb) => doc.fetch(cb)))).finally(() => c.close());
  return Object.fromEntries(docs.map((doc) => [doc.id, {v: doc.version, text: doc.data}]));
}

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
  const after = await snapshot(env, inst);  // after settling: pub/sub deliveries may trail the last ack
  const fresh = await Promise.all(inst.map((i) => fetchAll(i.url, ids)));

  const lat = ran.flatMap((r) => r.lat).sort((a, b) => a - b);
  const acked = lat.length;
  const pct = (q) => lat[Math.min(acked - 1, Math.max(0, Math.ceil(q * acked) - 1))];
  const seconds = (Math.max(...ran.map((r) => r.end)) - Math.min(...ran.map((r) => r.start))) / 1000;
  const delta = (name) => sum(after.met.map((m) => m[name] || 0)) - sum(before.met.map((m) => m[name] || 0));
  const diff = (a, b) => Object.fromEntries(Object.keys(b.cmd).map((c) => [c, b.cmd[c] - (a.cmd[c] || 0)])
    .filter(([, d]) => d));
  const cmds = diff(before, after);
  const counted = Object.entries(cmds).filter(([c]) => !APART.includes(c));
  const perOp = (x) => +(x / acked).toFixed(3);
  const meanMs = (h) => +((1000 * delta(`${h}_sum`)) / delta(`${h}_count`)).toFixed(3);
  const problems = [];
  const same = (a, b) => a.v === b.v && a.text === b.text;
  for (const d of settled.flatMap((s) => s.docs)) {
    const ref = d.copies[0];
    const cps = [...(ref.text || '')].length;
    if (!d.copies.every((c) => same(c, ref))) problems.push(`${d.id}: writers differ, v ${d.copies.map((c) => c.v)}`);
    if (ref.v !== 1 + d.acked) problems.push(`${d.id}: version ${ref.v}, expected 1 + ${d.acked} acked`);
    if (cps !== d.inserted) problems.push(`${d.id}: ${cps} code points, ${d.inserted} inserted`);
    fresh.forEach((f, i) => {
      if (!same(f[d.id], ref)) problems.push(`${d.id}: fetch via otsync${i + 1} v${f[d.id].v}, clients v${ref.v}`);
    });
  }
  const committed = delta('otsync_ops_committed_total');
  if (committed !== acked) problems.push(`otsync_ops_committed_total +${committed}, acked ${acked}`);
  const errors = settled.flatMap((s) => s.errors);
  const wall = (cpu1.t - cpu0.t) / 1000;
  const cpu = (k) => +((cpu1[k] - cpu0[k]) / wall).toFixed(1);  // ticks/s = % of a core
  const loadgen = ran.map((r) => +(r.cpuUs / 1e4 / wall).toFixed(1));
  const other = +(cpu('machine') - cpu('otsyncd') - cpu('redis') - cpu('haproxy') - sum(loadgen)).toFixed(1);
  return {
    setup: `${n} instance${n > 1 ? 's' : ''}`, rep, acked, seconds: +seconds.toFixed(3),
    opsPerSec: Math.round(acked / seconds), p50: pct(0.5), p99: pct(0.99), max: lat[acked - 1], committed,
    redisCmdsPerOp: perOp(sum(counted.map(([, v]) => v))), evalPerOp: perOp((cmds.evalsha || 0) + (cmds.eval || 0)),
    totalCommandsProcessedPerOp: perOp(after.total - before.total),
    storeCmdsPerOp: perOp(delta('otsync_redis_commands_total')), pubsubMsgsPerOp: perOp(delta('otsync_redis_feed_messages_total')),
    commandsPerOp: Object.fromEntries(counted.map(([c, v]) => [c, perOp(v)])),
    apart: Object.fromEntries(APART.filter((c) => cmds[c]).map((c) => [c, cmds[c]])),
    setupCommands: diff(start, before),  // connecting, creating, subscribing
    opsPerCommitBatch: +(committed / delta('otsync_commit_batches_total')).toFixed(3),
    serverSubmitMeanMs: meanMs('otsync_submit_latency_seconds'), commitMeanMs: meanMs('otsync_commit_latency_seconds'),
    serverErrorReplies: delta('otsync_errors_total'),
    connectionsPerInstance: after.met.map((m) => m.otsync_connections_open), converged: problems.length === 0,
    problems: problems.slice(0, 20), errors: errors.length, errorSamples: errors.slice(0, 10),
    cpu: {otsyncd: cpu('otsyncd'), redis: cpu('redis'), haproxy: cpu('haproxy'), loadgen: +sum(loadgen).toFixed(1),
          other, loadgenPerProc: loadgen},
  };
}

// Before connecting: every instance answers /readyz 200 and HAProxy has marked the unused slots down
// (it starts them up; a connection routed to one fails with a 503 after 3 s).
async function clusterReady(dir, inst) {
  const ready = (i) => httpGet(i.url, '/readyz').then((r) => r.status === 200, () => false);
  const log = () => fs.readFileSync(path.join(dir, 'haproxy.log'), 'utf8');
  const unused = range(3 - inst.length, inst.length + 1);
  for (const deadline = Date.now() + 20000; ; await sleep(100)) {
    const up = (await Promise.all(inst.map(ready))).every(Boolean);
    if (up && unused.every((i) => log().includes(`Server otsyncd/otsync${i} is DOWN`))) return;
    if (Date.now() > deadline) throw new Error(`cluster in ${dir} not ready after 20 s`);
  }
}

function stopCluster(dir) {
  try {
    execFileSync(CLUSTER, ['stop', dir], {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
  } catch (e) { process.stderr.write(`cluster.sh stop ${dir}: ${e.message}\n`); }
}

let active = null;  // {dir, workers} of the run in progress, for SIGINT
async function run(L, n, rep) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otsync-bench-${n}i-`));
  active = {dir, workers: []};
  let ok = false;
  let timer;
  try {
    execFileSync(CLUSTER, ['start', dir, L.bin], {env: {...process.env, OTSYNC_INSTANCES: String(n)},
                                                  stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
    const env = Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));  // a later line wins
    const inst = range(n, 1).map((i) => ({url: env[`OTSYNC${i}_URL`], pid: Number(env[`OTSYNC${i}_PID`])}));
    await clusterReady(dir, inst);
    active.workers = range(Math.min(L.procs, L.docs)).map(spawnWorker);
    const timeout = new Promise((_, reject) => {
      const fail = () => reject(new Error(`${n} instance(s), rep ${rep}: no result after ${L.timeout} s`));
      timer = setTimeout(fail, L.timeout * 1000);
    });
    const res = await Promise.race([measure(L, n, rep, env, inst, active.workers), timeout]);
    ok = res.converged && res.errors === 0;
    return {...res, dir: ok ? null : dir};
  } catch (e) {
    throw Object.assign(e, {message: `${e.message} (kept ${dir}, logs there)`});
  } finally {
    clearTimeout(timer);
    for (const w of active.workers) w.kill();
    stopCluster(dir);
    if (ok) fs.rmSync(dir, {recursive: true, force: true});
    active = null;
  }
}

function report(L, runs) {
  const CPU_KINDS = ['otsyncd', 'redis', 'haproxy', 'loadgen', 'other'];
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const table = (head, rows) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`,
                                 ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const cols = ['setup', 'acked ops/s', 'p50 ms', 'p99 ms', 'max ms', 'Redis cmds/op (all)', 'EVAL(SHA)/op',
                'pub/sub msgs/op', 'converged', 'errors'];
  const row = (r) => [r.setup, r.opsPerSec, r.p50, r.p99, r.max, r.redisCmdsPerOp, r.evalPerOp, r.pubsubMsgsPerOp,
                      r.converged ? 'yes' : 'no', r.errors];
  const keys = ['opsPerSec', 'p50', 'p99', 'max', 'redisCmdsPerOp', 'evalPerOp', 'pubsubMsgsPerOp', 'storeCmdsPerOp',
                'totalCommandsProcessedPerOp', 'opsPerCommitBatch', 'serverSubmitMeanMs', 'commitMeanMs'];
  const medians = [...new Set(runs.map((r) => r.setup))].map((setup) => {
    const rs = runs.filter((r) => r.setup === setup);
    const m = (f) => +median(rs.map(f)).toFixed(3);
    return {setup, runs: rs.length, ...Object.fromEntries(keys.map((k) => [k, m((r) => r[k])])),
            converged: rs.every((r) => r.converged), errors: sum(rs.map((r) => r.errors)),
            cpu: Object.fromEntries(CPU_KINDS.map((k) => [k, m((r) => r.cpu[k])]))};
  });
  const cpuCell = (c) => `${c.otsyncd} / ${c.redis} / ${c.haproxy} / ${c.loadgen} / ${c.other}`;
  console.log(`## otsyncd on Redis behind HAProxy: 1 vs 3 instances\n\n${L.docs} docs x ${L.writers} writers x ` +
              `${L.ops} ops, ${L.rate ? `at most ${L.rate} ops/s per writer` : 'closed loop'}, ${L.procs} client ` +
              `processes, ${os.cpus().length} cores. Medians of ${L.reps} runs (errors: total).\n`);
  console.log(table(cols, medians.map(row)));
  console.log('\nTimed phase, medians: CPU in % of one core; Redis round trips and otsyncd\'s own view:\n');
  console.log(table(['setup', 'CPU otsyncd (all) / redis / haproxy / load gen / rest of machine', 'store cmds/op',
                     'INFO total_commands/op', 'ops/commit batch', 'server submit mean ms', 'commit mean ms'],
                    medians.map((r) => [r.setup, cpuCell(r.cpu), r.storeCmdsPerOp, r.totalCommandsProcessedPerOp,
                                        r.opsPerCommitBatch, r.serverSubmitMeanMs, r.commitMeanMs])));
  console.log('\nEvery run:\n');
  console.log(table(['rep', ...cols, 'committed', 'store cmds/op', 'CPU % (as above)', 'not in cmds/op (timed; setup)',
                     'conns/instance'],
                    runs.map((r) => [r.rep, ...row(r), r.committed, r.storeCmdsPerOp, cpuCell(r.cpu),
                                     `${JSON.stringify(r.apart)}; subscribe ${r.setupCommands.subscribe || 0}`,
                                     r.connectionsPerInstance.join(' ')])));
  const noisy = runs.filter((r) => r.cpu.other >= 20).map((r) => `${r.setup} rep ${r.rep} (${r.cpu.other}%)`);
  if (noisy.length) console.log(`\nOTHER LOAD on the machine (>= 20% of a core) during: ${noisy.join(', ')}.`);
  const busy = runs.filter((r) => r.cpu.loadgenPerProc.some((c) => c >= 90));
  console.log(busy.length ? `\nLOAD GENERATOR SATURATED (a client process >= 90% of a core) in ${busy.length} of ` +
                            `${runs.length} runs: read those figures as lower bounds (try more --procs).`
                          : '\nLoad generator below 90% of a core in every client process and run.');
  for (const r of runs.filter((x) => !x.converged || x.errors)) {
    console.log(`\n${r.setup} rep ${r.rep} FAILED (kept ${r.dir}):`);
    console.log(`  ${[...r.problems, ...r.errorSamples].join('\n  ')}`);
  }
  const json = JSON.stringify({load: L, medians, runs}, null, 1);
  console.log('\n```json\n' + json + '\n```');
  if (L.json) fs.writeFileSync(L.json, json + '\n');
}

async function main() {
  const L = {bin: path.resolve(opt('bin', path.join(ROOT, 'build', 'bin', 'otsyncd'))), reps: opt('reps', 3),
             procs: opt('procs', 2), docs: opt('docs', 20), writers: opt('writers', 3), ops: opt('ops', 1000),
             rate: opt('rate', 0), timeout: opt('timeout', 180), json: opt('json', undefined)};
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      process.stderr.write(`${sig}: stopping${active ? `; keeping ${active.dir}` : ''}\n`);
      if (active) { active.workers.forEach((w) => w.kill()); stopCluster(active.dir); }
      process.exit(130);
    });
  }
  const runs = [];
  for (let rep = 1; rep <= L.reps; rep++) {
    for (const n of [1, 3]) {
      process.stderr.write(`rep ${rep}/${L.reps}, ${n} instance(s): `);
      const r = await run(L, n, rep);
      runs.push(r);
      process.stderr.write(`${r.opsPerSec} ops/s, p50 ${r.p50} p99 ${r.p99} ms, ${r.evalPerOp} EVAL(SHA)/op, ` +
                           `converged ${r.converged}, errors ${r.errors}, CPU ${JSON.stringify(r.cpu)}\n`);
    }
  }
  report(L, runs);
  if (runs.some((r) => !r.converged || r.errors)) process.exitCode = 1;
}

if (process.argv.includes('--worker')) worker();
else main().catch((e) => { console.error(e); process.exit(1); });
