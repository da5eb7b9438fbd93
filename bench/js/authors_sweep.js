#!/usr/bin/env node
// How many people can type into one document before it feels slow: N authors on one document, each
// typing about 5 edits/s (otsync-load's `authors` preset: paced, jittered, every author subscribed
// and seeing everyone else's edits), N stepped up (25, 50, 100, 200, 400, ...) against otsyncd
// (memory and SQLite stores) and the ShareDB peer (bench/peer/sharedb_server.js) in the same run.
// Each step runs on a fresh server process; a server's sweep ends at the first step where the p95
// ack or delivery latency passes --stop-ms, errors appear, the replicas do not converge or the
// load generator saturates (its figures would then measure the generator).
//
//   node bench/js/authors_sweep.js [--steps 25,50,100,200,400,800] [--reps 1] [--duration 8]
//        [--warmup 3] [--threads 2] [--stop-ms 1000] [--servers memory,sqlite,sharedb]
//        [--json FILE] [-- extra otsync-load flags]
//
// Prints a Markdown table per server and, per server, the largest N whose p95 ack and delivery
// latency both stay within 100 ms (with the ratio against ShareDB's). --json keeps everything for
// bench/js/benchmarks_doc.js (docs/benchmarks.md and its plots).
'use strict';
const {execFile} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const {promisify} = require('util');
const {parseArgs, median} = require('./bench_args');
const {baseServers, startServer, stopServer, LOAD, machine} = require('./bench_servers');

const {arg, extra} = parseArgs();
const STEPS = arg('steps', '25,50,100,200,400,800').split(',').map(Number);
const REPS = Number(arg('reps', 1));
const DURATION = arg('duration', '8');
const WARMUP = arg('warmup', '3');
const THREADS = arg('threads', '2');
const STOP_MS = Number(arg('stop-ms', 1000));
const GOOD_MS = 100;  // the "still feels live" bound the targets use
const JSON_OUT = arg('json', null);
const ONLY = arg('servers', 'memory,sqlite,sharedb').split(',');
const servers = baseServers().filter((s) => ONLY.some((w) => s.name.includes(w)));

const run = promisify(execFile);

async function step(server, authors) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-authors-'));
  const {child, url} = await startServer(server, dir);
  try {
    const args = ['--preset', 'authors', '--writers', String(authors), '--url', url, '--pid', String(child.pid),
                  '--duration', DURATION, '--warmup', WARMUP, '--threads', THREADS, '--timeout', '60', '--quiet',
                  ...extra];
    let report;
    try {
      const {stdout} = await run(LOAD, args, {encoding: 'utf8', timeout: 600000, maxBuffer: 16 << 20});
      report = JSON.parse(stdout);
    } catch (e) {
      // otsync-load exits non-zero when the run failed (no convergence, connections refused): keep its report.
      if (!e.stdout) throw e;
      report = JSON.parse(e.stdout);
    }
    const srv = report.server[String(child.pid)] || {};
    return {
      authors,
      ackedOpsPerSecond: report.acked_ops_per_s,
      deliveriesPerSecond: report.deliveries_per_s,
      ack: report.ack_latency_ms,
      delivery: report.delivery_latency_ms,
      serverCpuPercent: srv.cpu_percent,
      serverRssBytes: srv.rss_bytes,
      loadgenCpuPercent: report.loadgen.cpu_percent,
      loadgenSaturated: report.loadgen.saturated,
      // The server and the load generator share the cores: together at 90% of them, both are short of CPU.
      machineSaturated: (srv.cpu_percent || 0) + report.loadgen.cpu_percent >= 90 * os.cpus().length,
      converged: report.converged,
      errors: Object.values(report.errors || {}).reduce((a, b) => a + b, 0) + (report.disconnects || 0),
    };
  } finally {
    await stopServer(child);
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

/** The median run of a step, by p95 delivery latency (the figures of one run stay together). */
function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => (a.delivery.p95 ?? Infinity) - (b.delivery.p95 ?? Infinity));
  return {...sorted[Math.floor(sorted.length / 2)], reps: runs.length,
          ackedOpsPerSecondMedian: median(runs.map((r) => r.ackedOpsPerSecond))};
}

const fmt = (x, digits = 0) => (x === null || x === undefined ? '—' : Number(x).toFixed(digits));

(async () => {
  const results = {machine: machine(), started: new Date().toISOString(), duration_s: Number(DURATION),
                   warmup_s: Number(WARMUP), loadgen_threads: Number(THREADS), stop_ms: STOP_MS, servers: {}};
  for (const server of servers) results.servers[server.name] = {steps: [], stoppedBecause: null};
  // Interleaved: every server runs step N before any runs step 2N (the machine drifts over a run).
  for (const authors of STEPS) {
    for (const server of servers) {
      const mine = results.servers[server.name];
      if (mine.stoppedBecause) continue;
      const runs = [];
      for (let rep = 0; rep < REPS; rep++) runs.push(await step(server, authors));
      const r = medianRun(runs);
      mine.steps.push(r);
      process.stderr.write(`${server.name} ${authors} authors: ${fmt(r.ackedOpsPerSecond)} ops/s, ` +
        `${fmt(r.deliveriesPerSecond)} deliveries/s, ack p95 ${fmt(r.ack.p95, 1)} ms, delivery p95 ` +
        `${fmt(r.delivery.p95, 1)} ms, server CPU ${fmt(r.serverCpuPercent)}%, load generator CPU ` +
        `${fmt(r.loadgenCpuPercent)}%${r.loadgenSaturated ? ' (SATURATED)' : ''}` +
        `${r.machineSaturated ? ' (machine saturated)' : ''}, errors ${r.errors}\n`);
      if (r.ack.p95 > STOP_MS || r.delivery.p95 > STOP_MS) mine.stoppedBecause = `p95 past ${STOP_MS} ms at ${authors}`;
      else if (r.errors > 0) mine.stoppedBecause = `errors at ${authors}`;
      else if (!r.converged) mine.stoppedBecause = `no convergence at ${authors}`;
      else if (r.loadgenSaturated) mine.stoppedBecause = `load generator saturated at ${authors}`;
      else if (r.machineSaturated) mine.stoppedBecause = `machine saturated at ${authors} (server and load generator)`;
    }
  }
  const largestGood = (name) => {
    let best = null;
    for (const s of results.servers[name].steps) {
      if (s.ack.p95 <= GOOD_MS && s.delivery.p95 <= GOOD_MS && s.errors === 0 && s.converged) best = s.authors;
    }
    return best;
  };
  const peer = results.servers['sharedb memory'] ? largestGood('sharedb memory') : null;
  console.log(`N authors on one document at about 5 edits/s each; ${DURATION} s measured per step, ` +
              `${REPS} rep(s) per step (median by delivery p95); load generator: ${THREADS} thread(s)\n`);
  console.log('| server | authors | acked ops/s | deliveries/s | ack p50 / p95 / p99 ms | delivery p50 / p95 / p99 ms | ' +
              'server CPU % | server RSS MB | loadgen CPU % | errors | converged |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [name, mine] of Object.entries(results.servers)) {
    for (const s of mine.steps) {
      console.log(`| ${name} | ${s.authors} | ${fmt(s.ackedOpsPerSecond)} | ${fmt(s.deliveriesPerSecond)} | ` +
        `${fmt(s.ack.p50, 1)} / ${fmt(s.ack.p95, 1)} / ${fmt(s.ack.p99, 1)} | ` +
        `${fmt(s.delivery.p50, 1)} / ${fmt(s.delivery.p95, 1)} / ${fmt(s.delivery.p99, 1)} | ` +
        `${fmt(s.serverCpuPercent)} | ${fmt(s.serverRssBytes / 1048576, 1)} | ` +
        `${fmt(s.loadgenCpuPercent)}${s.loadgenSaturated ? ' (saturated)' : ''}` +
        `${s.machineSaturated ? ' (machine saturated)' : ''} | ${s.errors} | ` +
        `${s.converged ? 'yes' : 'NO'} |`);
    }
  }
  console.log('');
  for (const [name, mine] of Object.entries(results.servers)) {
    const good = largestGood(name);
    mine.largestAuthorsWithin100ms = good;
    mine.ratioToShareDb = good && peer ? good / peer : null;
    console.log(`${name}: largest N with p95 ack and delivery ≤ ${GOOD_MS} ms: ${good ?? 'none'}` +
                `${mine.ratioToShareDb ? ` (${fmt(mine.ratioToShareDb, 2)}× ShareDB)` : ''}; ` +
                `sweep ended: ${mine.stoppedBecause ?? `after the last step (${STEPS[STEPS.length - 1]})`}`);
  }
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(results, null, 2));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
