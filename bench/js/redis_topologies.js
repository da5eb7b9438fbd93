#!/usr/bin/env node
// Three otsyncd behind HAProxy (scripts/cluster.sh) on three Redis topologies, under the
// native load generator (build/bin/otsync-load through HAProxy), for each preset:
//   single          one Redis (AOF, fsync always)
//   sentinel-wait1  Redis under Sentinel (a master, two replicas, three sentinels) and
//                   --redis-min-replicas 1: every commit waits for WAIT 1
//   cluster         a Redis Cluster, three masters with a replica each
// Each repetition starts every topology once, in that order, on a fresh DIR, and runs
// every preset on it; the tables give medians over the repetitions.
//
//   node bench/js/redis_topologies.js [--reps 3] [--duration 10] [--warmup 2] [--bin-dir build/bin]
//        [--topologies single,sentinel-wait1,cluster] [--presets spread,contention] [--json FILE]
//        [-- extra otsync-load flags]
//
// Per run:
//   acked ops/s, ack p50/p99   otsync-load's report (measured window)
//   round trips/op             otsync_redis_commands_total of all instances (requests the store
//                              sent to Redis: commits, WAITs, loads, catch-ups) over
//                              otsync_ops_committed_total of all instances, both deltas over the
//                              whole otsync-load run (connecting, warmup, window, settling)
//   commit batches/op          otsync_commit_batches_total over the committed ops: each store
//                              commit attempt counts, a lost commit race (the document moved on
//                              in Redis) too; above 1 with one op per batch (spread) is lost
//                              races, with grouped ops (contention) it understates them
//   EVALSHA/op, WAIT/op        INFO commandstats of the Redis master(s), summed (EVALSHA: the
//                              commit and load scripts; WAIT: only with --redis-min-replicas)
//   CPU %                      of one core, from otsync-load's --pid sampling: the three otsyncd,
//                              every redis-server holding data (replicas too; not the sentinels),
//                              HAProxy, and the load generator itself
// Progress on stderr; stdout: Markdown tables. A topology that fails to start or a run that fails
// is reported (and the tail of its logs printed on stderr) and the others go on.
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const {parseArgs, median} = require('./bench_args');
const {readClusterEnv} = require(path.join(root, 'tests', 'js', 'support', 'cluster'));
const {arg, extra} = parseArgs();
const num = (name, fallback) => {
  const v = Number(arg(name, fallback));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} wants a positive number`);
  return v;
};
const REPS = num('reps', 3);
const DURATION = num('duration', 10);
const WARMUP = Number(arg('warmup', 2));
if (!Number.isFinite(WARMUP) || WARMUP < 0) throw new Error('--warmup wants a number >= 0');
const BIN_DIR = path.resolve(arg('bin-dir', path.join(root, 'build', 'bin')));
const OTSYNCD = path.join(BIN_DIR, 'otsyncd');
const LOAD = path.join(BIN_DIR, 'otsync-load');
const JSON_OUT = arg('json', null);
const CLUSTER = path.join(root, 'scripts', 'cluster.sh');
const CLUSTER_TIMEOUT_MS = 120000;  // cluster.sh start / stop
const LOAD_TIMEOUT_MS = (DURATION + WARMUP + 60) * 1000;
const REDIS_CLI_TIMEOUT_MS = 10000;

// Each topology: cluster.sh's environment (every variable set, so nothing leaks in from ours),
// and which redis-server processes hold data (CPU) and which are masters (commandstats).
const TOPOLOGIES = {
  single: {
    env: {CLUSTER_REDIS: 'single'},
    redisPids: (e) => [e.REDIS_PID],
    masterPorts: (e) => [e.REDIS_PORT],
  },
  'sentinel-wait1': {
    env: {CLUSTER_REDIS: 'sentinel', REDIS_REPLICAS: '2', OTSYNC_ARGS: '--redis-min-replicas 1'},
    redisPids: (e) => [e.REDIS_MASTER_PID, e.REDIS_REPLICA_PID, e.REDIS_REPLICA2_PID],
    masterPorts: (e) => [e.REDIS_MASTER_PORT],
  },
  cluster: {
    env: {CLUSTER_REDIS: 'cluster'},
    redisPids: (e) => [1, 2, 3, 4, 5, 6].map((i) => e[`REDIS_CLUSTER_NODE${i}_PID`]),
    masterPorts: (e) => e.REDIS_CLUSTER_MASTERS.split(' '),
  },
};
const PRESET_SHAPES = {spread: '200 docs x 2 writers', contention: '1 doc x 20 writers',
                       fanout: '1 writer + 200 readers per doc', idle: '2000 idle connections'};
const pick = (name, fallback, known) => {
  const list = arg(name, fallback).split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of list) if (!known.includes(x)) throw new Error(`--${name}: unknown '${x}' (${known.join(', ')})`);
  return list;
};
const TOPOS = pick('topologies', Object.keys(TOPOLOGIES).join(','), Object.keys(TOPOLOGIES));
const PRESETS = pick('presets', 'spread,contention', Object.keys(PRESET_SHAPES));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const log = (s) => process.stderr.write(`${s}\n`);

function httpGet(url) {  // -> {status, body}
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, body}));
    }).on('error', reject).setTimeout(5000, function () { this.destroy(new Error(`timeout: ${url}`)); });
  });
}

async function metrics(httpUrl) {  // metric name (labels summed) -> value
  const {status, body} = await httpGet(`${httpUrl}/metrics`);
  if (status !== 200) throw new Error(`${httpUrl}/metrics: HTTP ${status}`);
  const out = {};
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[{ ]/));
    out[name] = (out[name] || 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

function commandCalls(ports) {  // {command: calls} from INFO commandstats, summed over the ports
  const calls = {};
  for (const port of ports) {
    const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'],
                              {encoding: 'utf8', timeout: REDIS_CLI_TIMEOUT_MS});
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = (calls[m[1]] || 0) + Number(m[2]);
  }
  return calls;
}

// Every instance answers /readyz 200 (cluster.sh waits for one of them through HAProxy).
async function ready(inst) {
  for (const deadline = Date.now() + 20000; ; await sleep(100)) {
    const ok = await Promise.all(inst.map((i) => httpGet(`${i.httpUrl}/readyz`).then((r) => r.status === 200,
                                                                                       () => false)));
    if (ok.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error('instances not ready after 20 s');
  }
}

function logTails(dir) {
  let out = '';
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.log')) : []) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8').trim();
    if (text) out += `--- ${f}\n${text.slice(-1500)}\n`;
  }
  return out;
}

function stopCluster(dir) {
  try {
    execFileSync(CLUSTER, ['stop', dir], {stdio: ['ignore', 'ignore', 'inherit'], timeout: CLUSTER_TIMEOUT_MS});
  } catch (e) { log(`cluster.sh stop ${dir}: ${e.message}`); }
}

async function measure(topo, preset, rep, dir, env, inst) {
  const T = TOPOLOGIES[topo];
  const masters = T.masterPorts(env);
  const redisPids = T.redisPids(env).filter(Boolean);
  const before = await Promise.all(inst.map((i) => metrics(i.httpUrl)));
  const callsBefore = commandCalls(masters);
  const file = path.join(dir, `load-${preset}.json`);
  const args = ['--preset', preset, '--url', env.HAPROXY_URL, '--duration', String(DURATION),
                '--warmup', String(WARMUP), '--quiet', '--json', file,
                ...[...inst.map((i) => i.pid), ...redisPids, env.HAPROXY_PID].flatMap((p) => ['--pid', String(p)]),
                ...extra];
  execFileSync(LOAD, args, {stdio: ['ignore', 'ignore', 'inherit'], timeout: LOAD_TIMEOUT_MS});
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  const after = await Promise.all(inst.map((i) => metrics(i.httpUrl)));
  const callsAfter = commandCalls(masters);
  const delta = (name) => sum(after.map((m) => m[name] || 0)) - sum(before.map((m) => m[name] || 0));
  const calls = (c) => (callsAfter[c] || 0) - (callsBefore[c] || 0);
  const committed = delta('otsync_ops_committed_total');
  const perOp = (x) => (committed > 0 ? +(x / committed).toFixed(3) : null);
  const cpu = (pids) => +sum(pids.map((p) => (report.server && report.server[p] ? report.server[p].cpu_percent : 0)))
    .toFixed(1);
  const errors = sum(Object.values(report.errors || {}));
  return {
    topology: topo, preset, rep,
    ackedOpsPerSec: Math.round(report.acked_ops_per_s), p50: report.ack_latency_ms.p50,
    p99: report.ack_latency_ms.p99, max: report.ack_latency_ms.max,
    committed, totalAcked: report.total_acked_ops,
    roundTripsPerOp: perOp(delta('otsync_redis_commands_total')),
    commitBatchesPerOp: perOp(delta('otsync_commit_batches_total')),
    evalshaPerOp: perOp(calls('evalsha') + calls('eval')), waitPerOp: perOp(calls('wait')),
    // Every command the master(s) ran per committed op, the scripts' own redis.call()s included.
    redisCommandsPerOp: Object.fromEntries(Object.keys(callsAfter).filter((c) => calls(c))
      .map((c) => [c, perOp(calls(c))])),
    unreplicatedCommits: delta('otsync_redis_unreplicated_commits_total'),
    redisTimeouts: delta('otsync_redis_timeouts_total'), redirects: delta('otsync_redis_redirects_total'),
    serverErrorReplies: delta('otsync_errors_total'),
    converged: report.converged, errors, errorsByCode: report.errors || {}, disconnects: report.disconnects,
    loadgenSaturated: Boolean(report.loadgen_saturated),
    cpu: {otsyncd: cpu(inst.map((i) => i.pid)), redis: cpu(redisPids), haproxy: cpu([env.HAPROXY_PID]),
          loadgen: report.loadgen ? +Number(report.loadgen.cpu_percent).toFixed(1) : null},
  };
}

let active = null;  // the DIR of the topology running, for SIGINT/SIGTERM
async function runTopology(topo, rep) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otsync-topo-${topo}-`));
  active = dir;
  const results = [];
  let failed = false;
  try {
    const env = {...process.env, OTSYNC_INSTANCES: '3', ...TOPOLOGIES[topo].env};
    for (const k of ['REDIS_REPLICAS', 'OTSYNC_ARGS', 'CLUSTER_TLS_CERT']) {
      if (!(k in TOPOLOGIES[topo].env)) delete env[k];
    }
    log(`rep ${rep}/${REPS} ${topo}: starting (${dir})`);
    try {
      execFileSync(CLUSTER, ['start', dir, OTSYNCD], {env, stdio: ['ignore', 'ignore', 'inherit'],
                                                     timeout: CLUSTER_TIMEOUT_MS});
      const cenv = readClusterEnv(dir);
      const inst = [1, 2, 3].map((i) => ({pid: Number(cenv[`OTSYNC${i}_PID`]),
        httpUrl: cenv[`OTSYNC${i}_URL`].replace(/^ws:/, 'http:').replace(/\/ws$/, '')}));
      await ready(inst);
      for (const preset of PRESETS) {
        try {
          const r = await measure(topo, preset, rep, dir, cenv, inst);
          results.push(r);
          if (!r.converged || r.errors) failed = true;
          log(`rep ${rep}/${REPS} ${topo} ${preset}: ${r.ackedOpsPerSec} acked ops/s, p50 ${r.p50} p99 ${r.p99} ms, ` +
              `${r.roundTripsPerOp} round trips/op, ${r.commitBatchesPerOp} commit batches/op, ` +
              `WAIT/op ${r.waitPerOp}, converged ${r.converged}, errors ${r.errors}, CPU ${JSON.stringify(r.cpu)}`);
        } catch (e) {
          failed = true;
          results.push({topology: topo, preset, rep, error: e.message.split('\n')[0]});
          log(`rep ${rep}/${REPS} ${topo} ${preset}: FAILED: ${e.message}`);
        }
      }
    } catch (e) {  // the topology did not start
      failed = true;
      for (const preset of PRESETS.filter((p) => !results.some((r) => r.preset === p))) {
        results.push({topology: topo, preset, rep, error: `start: ${e.message.split('\n')[0]}`});
      }
      log(`rep ${rep}/${REPS} ${topo}: FAILED to start: ${e.message}`);
    }
  } finally {
    if (failed) log(`logs of ${topo} rep ${rep}:\n${logTails(dir)}`);
    stopCluster(dir);
    fs.rmSync(dir, {recursive: true, force: true});
    active = null;
  }
  return results;
}

function report(runs) {
  const table = (head, align, rows) => [`| ${head.join(' | ')} |`,
                                        `|${head.map((_, i) => (align[i] === 'r' ? '---:' : '---')).join('|')}|`,
                                        ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const fmt = (x, digits) => (x === null || x === undefined ? '–' : digits === undefined ? String(x) : x.toFixed(digits));
  const summary = [];
  console.log(`## Redis topologies: 3 otsyncd behind HAProxy, otsync-load through HAProxy\n\n` +
              `${DURATION} s measured after ${WARMUP} s warmup, medians of ${REPS} repetition(s), ` +
              `${os.cpus().length} cores${extra.length ? `, otsync-load ${extra.join(' ')}` : ''}. ` +
              'Round trips/op: requests the instances sent to Redis per committed op (whole run). ' +
              'Commit batches/op above 1: lost commit races (retried). CPU % of one core.');
  console.log('\nA committed op costs its commit script (EVALSHA, one per batch, a lost race included), ' +
              'and a lost race a catch-up read too. With --redis-min-replicas 1 the script does not publish: ' +
              'the store then sends WAIT (one per batch, awaited) and, once confirmed, PUBLISH (one per op, ' +
              'not awaited); both are in round trips/op. Per-command counts of the master(s): --json.');
  for (const preset of PRESETS) {
    const rows = [];
    for (const topo of TOPOS) {
      const all = runs.filter((r) => r.topology === topo && r.preset === preset);
      const ok = all.filter((r) => !r.error);
      const m = (f) => median(ok.map(f));
      const s = {
        preset, topology: topo, runs: all.length, failedRuns: all.length - ok.length,
        ackedOpsPerSec: m((r) => r.ackedOpsPerSec), p50: m((r) => r.p50), p99: m((r) => r.p99),
        roundTripsPerOp: m((r) => r.roundTripsPerOp), commitBatchesPerOp: m((r) => r.commitBatchesPerOp),
        evalshaPerOp: m((r) => r.evalshaPerOp), waitPerOp: m((r) => r.waitPerOp),
        cpu: Object.fromEntries(['otsyncd', 'redis', 'haproxy', 'loadgen'].map((k) => [k, m((r) => r.cpu[k])])),
        allConverged: ok.length > 0 && ok.every((r) => r.converged), errors: sum(ok.map((r) => r.errors)),
        opsPerSecPerRun: all.map((r) => (r.error ? null : r.ackedOpsPerSec)),
      };
      summary.push(s);
      rows.push([topo, fmt(s.ackedOpsPerSec), fmt(s.p50), fmt(s.p99), fmt(s.roundTripsPerOp, 2),
                 fmt(s.commitBatchesPerOp, 2), fmt(s.evalshaPerOp, 2), fmt(s.waitPerOp, 2),
                 ['otsyncd', 'redis', 'haproxy', 'loadgen'].map((k) => fmt(s.cpu[k], 0)).join(' / '),
                 s.allConverged ? 'yes' : 'NO', s.errors,
                 s.opsPerSecPerRun.map((x) => (x === null ? 'failed' : x)).join(', ')]);
    }
    console.log(`\n### ${preset} (${PRESET_SHAPES[preset]})\n`);
    console.log(table(['topology', 'acked ops/s', 'ack p50 ms', 'ack p99 ms', 'round trips/op', 'commit batches/op',
                       'EVALSHA/op', 'WAIT/op', 'CPU % otsyncd / redis / haproxy / loadgen', 'converged', 'errors',
                       'ops/s per run'], 'lrrrrrrrllrl', rows));
  }
  const failures = runs.filter((r) => r.error);
  if (failures.length) {
    console.log(`\nFAILED runs: ${failures.map((r) => `${r.topology} ${r.preset} rep ${r.rep}: ${r.error}`).join('; ')}`);
  }
  const saturated = runs.filter((r) => r.loadgenSaturated);
  if (saturated.length) {
    console.log(`\nLoad generator saturated in ${saturated.map((r) => `${r.topology} ${r.preset} rep ${r.rep}`)
      .join(', ')}: those figures are lower bounds.`);
  }
  const unreplicated = runs.filter((r) => r.unreplicatedCommits);
  if (unreplicated.length) {
    console.log(`\nCommits not confirmed by WAIT in time: ${unreplicated.map((r) => `${r.topology} ${r.preset} ` +
      `rep ${r.rep}: ${r.unreplicatedCommits}`).join(', ')}.`);
  }
  if (JSON_OUT) {
    fs.writeFileSync(JSON_OUT, JSON.stringify({duration: DURATION, warmup: WARMUP, reps: REPS, topologies: TOPOS,
                                               presets: PRESETS, extra, cores: os.cpus().length, summary, runs},
                                              null, 1) + '\n');
  }
  return failures.length > 0 || runs.some((r) => !r.error && (!r.converged || r.errors));
}

async function main() {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      log(`${sig}: stopping`);
      if (active) { stopCluster(active); fs.rmSync(active, {recursive: true, force: true}); }
      process.exit(130);
    });
  }
  for (const f of [OTSYNCD, LOAD]) if (!fs.existsSync(f)) throw new Error(`${f} not found (--bin-dir)`);
  const runs = [];
  for (let rep = 1; rep <= REPS; rep++) {
    for (const topo of TOPOS) runs.push(...await runTopology(topo, rep));
  }
  if (report(runs)) process.exitCode = 1;
}

main().catch((e) => { console.error(e); process.exit(1); });
