#!/usr/bin/env node
// One otsyncd on Redis vs three, both behind HAProxy (scripts/cluster.sh),
// under the same load from the native generator (build/bin/otsync-load).
// Each repetition runs both setups, interleaved, on a fresh cluster; the
// table gives medians. Besides throughput and ack latency it reads from
// Redis what a committed op costs there: script calls (EVALSHA/EVAL), all
// commands, and pub/sub messages delivered to the instances.
//
//   node bench/js/redis_scaleout.js [--reps 3] [--preset spread] [--duration 10] [--warmup 2]
//                                   [--otsyncd build/bin/otsyncd] [--load build/bin/otsync-load]
//                                   [--json FILE] [-- extra otsync-load flags]
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const {parseArgs, median} = require('./bench_args');
const {arg, extra} = parseArgs();
const REPS = Number(arg('reps', 3));
const PRESET = arg('preset', 'spread');
const DURATION = arg('duration', '10');
const WARMUP = arg('warmup', '2');
const OTSYNCD = path.resolve(arg('otsyncd', path.join(root, 'build/bin/otsyncd')));
const LOAD = path.resolve(arg('load', path.join(root, 'build/bin/otsync-load')));
const JSON_OUT = arg('json', null);
const CLUSTER = path.join(root, 'scripts', 'cluster.sh');

function redisInfo(port, section) {
  const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', section], {encoding: 'utf8'});
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(/^([a-z_]+):(.*)$/);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// {command: calls} from INFO commandstats.
function commandCalls(port) {
  const calls = {};
  for (const [key, value] of Object.entries(redisInfo(port, 'commandstats'))) {
    const m = value.match(/calls=(\d+)/);
    if (key.startsWith('cmdstat_') && m) calls[key.slice(8)] = Number(m[1]);
  }
  return calls;
}

function metric(url, name) {
  const base = url.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
  const text = execFileSync('curl', ['-fsS', `${base}/metrics`], {encoding: 'utf8'});
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : 0;
}

function runOnce(instances) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-scaleout-'));
  try {
    execFileSync(CLUSTER, ['start', dir, OTSYNCD], {
      stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000,
      env: {...process.env, OTSYNC_INSTANCES: String(instances)},
    });
    const env = Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
      .map((l) => l.split('=')));
    const urls = [1, 2, 3].slice(0, instances).map((i) => env[`OTSYNC${i}_URL`]);
    const pids = [1, 2, 3].slice(0, instances).map((i) => env[`OTSYNC${i}_PID`]);
    const before = {calls: commandCalls(env.REDIS_PORT), stats: redisInfo(env.REDIS_PORT, 'stats')};
    const sum = (name) => urls.reduce((n, u) => n + metric(u, name), 0);
    const feedBefore = sum('otsync_redis_feed_messages_total');
    const sentBefore = sum('otsync_redis_commands_total');
    const args = ['--preset', PRESET, '--duration', DURATION, '--warmup', WARMUP, '--url', env.HAPROXY_URL,
                  '--quiet', ...pids.flatMap((p) => ['--pid', p]), '--pid', env.REDIS_PID,
                  '--pid', env.HAPROXY_PID, ...extra];
    const report = JSON.parse(execFileSync(LOAD, args, {encoding: 'utf8', timeout: 600000}));
    const after = {calls: commandCalls(env.REDIS_PORT), stats: redisInfo(env.REDIS_PORT, 'stats')};
    const feedAfter = sum('otsync_redis_feed_messages_total');
    const sentAfter = sum('otsync_redis_commands_total');
    const committed = sum('otsync_ops_committed_total');
    const delta = (name) => (after.calls[name] || 0) - (before.calls[name] || 0);
    const scripts = delta('evalsha') + delta('eval');
    const commands = Number(after.stats.total_commands_processed) - Number(before.stats.total_commands_processed);
    const cpu = (pid) => (report.server && report.server[pid] ? report.server[pid].cpu_percent : NaN);
    return {
      instances, acked: report.acked_ops_per_s, p50: report.ack_latency_ms.p50, p99: report.ack_latency_ms.p99,
      max: report.ack_latency_ms.max, converged: report.converged,
      errors: Object.values(report.errors || {}).reduce((a, b) => a + b, 0), disconnects: report.disconnects,
      // Whole-run Redis counters (warmup, measured window and settling) over all committed ops.
      // Round trips: commands the instances sent (commits, lost races, loads, catch-ups); each is one
      // request/reply on a pipelined connection. Executed: every command Redis ran, inside scripts too.
      committed, roundTripsPerOp: (sentAfter - sentBefore) / committed, scriptsPerOp: scripts / committed,
      commandsPerOp: commands / committed,
      pubsubPerOp: (feedAfter - feedBefore) / committed,
      cpu: {otsyncd: pids.reduce((s, p) => s + cpu(p), 0), redis: cpu(env.REDIS_PID), haproxy: cpu(env.HAPROXY_PID),
            loadgen: report.loadgen.cpu_percent},
    };
  } finally {
    try { execFileSync(CLUSTER, ['stop', dir], {stdio: 'inherit', timeout: 60000}); } catch (_) { /* reported */ }
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

const runs = {1: [], 3: []};
for (let rep = 1; rep <= REPS; rep++) {
  for (const n of [1, 3]) {
    const r = runOnce(n);
    runs[n].push(r);
    process.stderr.write(`rep ${rep}/${REPS}: ${n} instance(s): ${Math.round(r.acked)} acked ops/s, ` +
      `p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.scriptsPerOp.toFixed(3)} scripts/op, converged ${r.converged}\n`);
  }
}
const summary = [1, 3].map((n) => {
  const rs = runs[n];
  const m = (f) => median(rs.map(f));
  return {
    instances: n, ackedOpsPerSecond: Math.round(m((r) => r.acked)), p50Ms: m((r) => r.p50), p99Ms: m((r) => r.p99),
    maxMs: m((r) => r.max), roundTripsPerOp: +m((r) => r.roundTripsPerOp).toFixed(3), scriptCallsPerOp: +m((r) => r.scriptsPerOp).toFixed(3),
    redisCommandsPerOp: +m((r) => r.commandsPerOp).toFixed(3), pubsubMessagesPerOp: +m((r) => r.pubsubPerOp).toFixed(3),
    cpuPercent: {otsyncd: Math.round(m((r) => r.cpu.otsyncd)), redis: Math.round(m((r) => r.cpu.redis)),
                 haproxy: Math.round(m((r) => r.cpu.haproxy)), loadgen: Math.round(m((r) => r.cpu.loadgen))},
    allConverged: rs.every((r) => r.converged), errors: rs.reduce((a, r) => a + r.errors, 0),
  };
});
console.log(`preset ${PRESET}, ${DURATION} s measured, ${REPS} reps (medians), otsync-load via HAProxy ${extra.join(' ')}\n`);
console.log('| instances | acked ops/s | ack p50 ms | ack p99 ms | round trips/op | script calls/op | ' +
            'commands Redis ran/op | pub/sub msgs/op | CPU % otsyncd / redis / haproxy / loadgen | converged | errors |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|');
for (const s of summary) {
  console.log(`| ${s.instances} | ${s.ackedOpsPerSecond} | ${s.p50Ms} | ${s.p99Ms} | ${s.roundTripsPerOp} | ` +
    `${s.scriptCallsPerOp} | ` +
    `${s.redisCommandsPerOp} | ${s.pubsubMessagesPerOp} | ${s.cpuPercent.otsyncd} / ${s.cpuPercent.redis} / ` +
    `${s.cpuPercent.haproxy} / ${s.cpuPercent.loadgen} | ${s.allConverged ? 'yes' : 'NO'} | ${s.errors} |`);
}
const result = {preset: PRESET, duration: Number(DURATION), reps: REPS, extra, summary, runs};
if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(result, null, 1));
