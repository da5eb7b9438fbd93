#!/usr/bin/env node
// Writes docs/benchmarks.md and its plots (docs/benchmarks/*.svg) from the JSON of the same-run
// benchmarks:
//
//   node bench/js/side_by_side.js --reps 3 --json side_by_side.json
//   node bench/js/authors_sweep.js --json authors.json
//   node bench/js/benchmarks_doc.js --side-by-side side_by_side.json --authors authors.json
//                                   [--out docs/benchmarks.md] [--commands "how they were run"]
//
// The page says what ran, on which machine, with which commands; every figure in it comes from
// those files (nothing is typed in by hand). Sections measured by other scripts (the Redis
// topologies, the failover drills) follow KEPT_MARKER in the existing page and are kept as they are.
'use strict';
const fs = require('fs');
const path = require('path');
const {parseArgs} = require('./bench_args');
const {lineChart, barChart} = require('./svg_chart');

const {arg} = parseArgs();
const root = path.resolve(__dirname, '..', '..');
const OUT = path.resolve(arg('out', path.join(root, 'docs/benchmarks.md')));
const PLOTS = path.join(path.dirname(OUT), 'benchmarks');
const sbsFile = arg('side-by-side', null);
const authorsFile = arg('authors', null);
const COMMANDS = arg('commands', null);
if (!sbsFile && !authorsFile) {
  console.error('benchmarks_doc.js: give --side-by-side FILE and/or --authors FILE');
  process.exit(2);
}
const sbs = sbsFile ? JSON.parse(fs.readFileSync(sbsFile, 'utf8')) : null;
const authors = authorsFile ? JSON.parse(fs.readFileSync(authorsFile, 'utf8')) : null;
fs.mkdirSync(PLOTS, {recursive: true});

// Everything from this line on in the existing page is carried over unchanged.
const KEPT_MARKER = '<!-- Measured by other scripts; benchmarks_doc.js keeps what follows as it is. -->';
const previous = fs.existsSync(OUT) ? fs.readFileSync(OUT, 'utf8') : '';
const kept = previous.includes(KEPT_MARKER) ? previous.slice(previous.indexOf(KEPT_MARKER)) : `${KEPT_MARKER}\n`;

const fmt = (x, digits = 0) => (x === null || x === undefined ? '—' : Number(x).toFixed(digits));
const rel = (file) => path.relative(path.dirname(OUT), file);
const lines = [];
const out = (s = '') => lines.push(s);

function machineLine(m) {
  if (!m) return 'machine not recorded';
  return `${m.cores} × ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}` +
         `${m.commit ? `, otsync at \`${m.commit}\`` : ''}`;
}

out('# Benchmarks');
out();
out('Written by `bench/js/benchmarks_doc.js` from the JSON of the same-run benchmarks; do not edit by hand');
out('(the sections after the Redis heading come from the scripts they name and are kept as they are).');
out('Every server runs alone with the native load generator (`build/bin/otsync-load`) on the same machine,');
out('one fresh process per run, interleaved; ShareDB is the reference peer (`bench/peer/sharedb_server.js`:');
out('npm `sharedb` 7 with `ot-text-unicode` on its in-memory database). Ratios are against ShareDB in the same');
out('run. The load generator shares the machine\'s cores with the server: where it saturates, its figures are');
out('lower bounds and the tables say so.');
out();
if (COMMANDS) {
  out('Made with:');
  out();
  out('```sh');
  for (const c of COMMANDS.split(';;')) out(c.trim());
  out('```');
  out();
}

if (authors) {
  out('## Authors on one document');
  out();
  out(`Machine: ${machineLine(authors.machine)}. Run ${authors.started}.`);
  out();
  out(`N people type into one document, about 5 edits/s each (\`otsync-load --preset authors --writers N\`:`);
  out('paced, intervals jittered ±50%, every writer at its own phase; every author subscribed and seeing');
  out('everyone else\'s edits, so each edit is delivered N − 1 times). Ack latency: an author\'s send to its');
  out('ack; delivery latency: an author\'s send to another author applying it. ' +
      `${authors.duration_s} s measured per step after ${authors.warmup_s} s of warm-up, a fresh server per step; a server's`);
  out(`sweep stops once a p95 passes ${authors.stop_ms} ms, errors appear, or the load generator (or the machine:`);
  out('server and load generator together at 90% of the cores) saturates.');
  out();
  const series = [];
  for (const [name, mine] of Object.entries(authors.servers)) {
    const pts = (key) => mine.steps.filter((s) => s[key].p95 > 0).map((s) => [s.authors, s[key].p95]);
    series.push({name: `${name}: delivery p95`, points: pts('delivery')});
    series.push({name: `${name}: ack p95`, points: pts('ack'), dash: true});
  }
  const colorOf = {};
  Object.keys(authors.servers).forEach((n, i) => { colorOf[n] = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'][i % 4]; });
  for (const s of series) s.color = colorOf[s.name.split(':')[0]];
  const latencyPlot = path.join(PLOTS, 'authors-latency.svg');
  fs.writeFileSync(latencyPlot, lineChart({
    title: 'p95 latency against authors on one document (5 edits/s each)', xLabel: 'authors on the document',
    yLabel: 'p95 latency (ms, log scale)', series, xLog: true, yLog: true, marks: [{y: 100, label: '100 ms'}],
  }));
  const cpuPlot = path.join(PLOTS, 'authors-cpu.svg');
  fs.writeFileSync(cpuPlot, lineChart({
    title: 'Server CPU against authors on one document', xLabel: 'authors on the document',
    yLabel: 'server CPU (% of one core)', xLog: true,
    series: Object.entries(authors.servers).map(([name, mine]) => ({
      name, color: colorOf[name], points: mine.steps.filter((s) => s.serverCpuPercent != null)
        .map((s) => [s.authors, s.serverCpuPercent]),
    })),
  }));
  out(`![p95 latency against authors](${rel(latencyPlot)})`);
  out();
  out(`![server CPU against authors](${rel(cpuPlot)})`);
  out();
  out('| server | largest N with p95 ack and delivery ≤ 100 ms | × ShareDB | sweep ended |');
  out('|---|---:|---:|---|');
  for (const [name, mine] of Object.entries(authors.servers)) {
    out(`| ${name} | ${mine.largestAuthorsWithin100ms ?? 'none'} | ${fmt(mine.ratioToShareDb, 2)} | ` +
        `${mine.stoppedBecause ?? 'after the last step'} |`);
  }
  out();
  out('| server | authors | acked ops/s | deliveries/s | ack p50 / p95 / p99 ms | delivery p50 / p95 / p99 ms | ' +
      'server CPU % | server RSS MB | load generator CPU % | errors |');
  out('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, mine] of Object.entries(authors.servers)) {
    for (const s of mine.steps) {
      out(`| ${name} | ${s.authors} | ${fmt(s.ackedOpsPerSecond)} | ${fmt(s.deliveriesPerSecond)} | ` +
          `${fmt(s.ack.p50, 1)} / ${fmt(s.ack.p95, 1)} / ${fmt(s.ack.p99, 1)} | ` +
          `${fmt(s.delivery.p50, 1)} / ${fmt(s.delivery.p95, 1)} / ${fmt(s.delivery.p99, 1)} | ` +
          `${fmt(s.serverCpuPercent)} | ${fmt(s.serverRssBytes / 1048576, 1)} | ` +
          `${fmt(s.loadgenCpuPercent)}${s.loadgenSaturated ? ' (saturated)' : ''}` +
          `${s.machineSaturated ? ' (machine saturated)' : ''} | ${s.errors} |`);
    }
  }
  out();
}

if (sbs) {
  out('## Presets side by side');
  out();
  out(`Machine: ${machineLine(sbs.machine)}. ${sbs.reps} repetitions of ${sbs.duration} s per preset and ` +
      'server, medians (`bench/js/side_by_side.js`; the presets are in [load.md](load.md)).');
  out('Server CPU per acked op is split into user space (the server\'s own code) and kernel (its system time:');
  out('socket reads and writes, polling, waking threads, fsync), each with ShareDB\'s ratio.');
  out();
  const presets = sbs.presets || Object.keys(sbs.summary);
  const names = Object.keys(sbs.summary[presets[0]]);
  out('| preset | server | acked ops/s | × ShareDB | deliveries/s | × ShareDB | ack p50 / p99 ms | ' +
      'delivery p50 / p99 ms | server CPU µs/op | ShareDB ÷ this | of it user / kernel µs/op | ' +
      'ShareDB ÷ this, user / kernel | RSS/conn bytes | errors | converged | load generator saturated |');
  out('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const preset of presets) {
    for (const name of names) {
      const s = sbs.summary[preset][name];
      if (!s) continue;
      out(`| ${preset} | ${name} | ${fmt(s.ackedOpsPerSecond)} | ${fmt(s.ratios?.acked, 2)} | ` +
          `${fmt(s.deliveriesPerSecond)} | ${fmt(s.ratios?.deliveries, 2)} | ${fmt(s.p50Ms, 2)} / ${fmt(s.p99Ms, 2)} | ` +
          `${fmt(s.deliveryP50Ms, 2)} / ${fmt(s.deliveryP99Ms, 2)} | ${fmt(s.cpuMicrosPerOp, 1)} | ${fmt(s.ratios?.cpuPerOp, 2)} | ` +
          `${fmt(s.userMicrosPerOp, 1)} / ${fmt(s.kernelMicrosPerOp, 1)} | ` +
          `${fmt(s.ratios?.userCpuPerOp, 2)} / ${fmt(s.ratios?.kernelCpuPerOp, 2)} | ${fmt(s.rssPerConnection)} | ${s.errors} | ` +
          `${s.converged ? 'yes' : 'NO'} | ${s.loadgenSaturated ? 'yes' : 'no'} |`);
    }
  }
  out();
  const throughput = path.join(PLOTS, 'presets-throughput.svg');
  const closedLoop = presets.filter((p) => !p.includes('@') && p !== 'idle');
  fs.writeFileSync(throughput, barChart({
    title: 'Acked ops/s per preset (closed loop)', yLabel: 'acked ops/s', groups: closedLoop,
    series: names.map((name) => ({name, values: closedLoop.map((p) => sbs.summary[p][name]?.ackedOpsPerSecond ?? null)})),
  }));
  const cpu = path.join(PLOTS, 'presets-cpu-per-op.svg');
  fs.writeFileSync(cpu, barChart({
    title: 'Server CPU per acked op', yLabel: 'server CPU µs per acked op', groups: closedLoop,
    series: names.map((name) => ({name, values: closedLoop.map((p) => sbs.summary[p][name]?.cpuMicrosPerOp ?? null)})),
  }));
  out(`![acked ops/s per preset](${rel(throughput)})`);
  out();
  out(`![server CPU per acked op](${rel(cpu)})`);
  out();
  if (closedLoop.includes('fanout')) {
    const fanout = path.join(PLOTS, 'fanout-deliveries.svg');
    fs.writeFileSync(fanout, barChart({
      title: 'Fan-out: deliveries/s (1 writer, 200 readers)', yLabel: 'deliveries/s', groups: ['fanout'],
      series: names.map((name) => ({name, values: [sbs.summary.fanout[name]?.deliveriesPerSecond ?? null]})),
    }));
    out(`![fan-out deliveries per second](${rel(fanout)})`);
    out();
  }
}

fs.writeFileSync(OUT, `${lines.join('\n')}\n${kept}`);
console.error(`wrote ${path.relative(process.cwd(), OUT)} and ${path.relative(process.cwd(), PLOTS)}/*.svg`);
