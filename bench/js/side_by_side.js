#!/usr/bin/env node
// otsyncd (memory and SQLite stores) vs ShareDB 7 (the reference peer,
// bench/peer/sharedb_server.js: npm sharedb + ot-text-unicode on its
// in-memory DB), under the same native load generator (build/bin/otsync-load),
// interleaved: every repetition runs every server once per preset, each on a
// fresh process. Prints medians and ratios against ShareDB as Markdown, and
// everything as JSON (--json FILE).
//
//   node bench/js/side_by_side.js [--reps 3] [--presets contention,spread,fanout,idle,contention@rate=40]
//                                 [--duration 5] [--warmup 1] [--json FILE] [--baseline OTSYNCD [--baseline-store sqlite]]
//                                 [--servers memory,sqlite,sharedb] [--tls] [-- extra otsync-load flags]
//
// Figures: acked ops/s, ack p50/p99 (ms), deliveries/s, server CPU %, and for
// idle the server's RSS growth per connection. `PRESET@rate=R` runs a preset
// at a fixed offered load (R ops/s per writer) instead of closed loop: the
// p99 ack latency at the same load is compared there. Each server runs alone with the
// load generator on this machine; the load generator reports when it is
// saturated (then the figure is a lower bound).
//
// --tls (or a --servers word naming `tls`) adds "otsyncd memory tls": otsyncd on the memory store
// with its own TLS listener (--tls-cert; a throwaway CA and certificate made once per run by
// tests/support/make_test_certs.sh), the load generator on wss:// trusting that CA
// (--tls-ca-file). A "TLS vs plain" table then sets it against "otsyncd memory": acked ops/s,
// server CPU per op, p99 and idle RSS per connection, each as TLS / plain.
'use strict';
const {execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const {parseArgs, median} = require('./bench_args');
const {arg, extra} = parseArgs();
const REPS = Number(arg('reps', 3));
const PRESETS = arg('presets', 'contention,spread,fanout,idle,contention@rate=40,spread@rate=10').split(',');
const DURATION = arg('duration', '5');
const WARMUP = arg('warmup', '1');
const JSON_OUT = arg('json', null);
const MAKE_CERTS = path.join(root, 'tests/support/make_test_certs.sh');
const {OTSYNCD, LOAD, OTSYNCD_COMMON, baseServers, startServer, stopServer, machine} = require('./bench_servers');
const SERVERS = baseServers();
// --baseline PATH: another otsyncd build (say, the previous commit's) on the memory store (or the
// store --baseline-store names: `sqlite`), in the same interleaved run, to measure what a change
// costs. --servers A,B keeps the servers whose names contain one of the words (e.g. `--servers memory`).
const BASELINE = arg('baseline', null);
const BASELINE_STORE = arg('baseline-store', 'memory');
if (BASELINE) {
  // Builds older than the per-address limit do not know its flag.
  const help = require('child_process').spawnSync(path.resolve(BASELINE), ['--help'], {encoding: 'utf8'}).stdout || '';
  const common = help.includes('--max-connections-per-address') ? OTSYNCD_COMMON : ['--log-level', 'warn'];
  if (!['memory', 'sqlite'].includes(BASELINE_STORE)) throw new Error('--baseline-store: memory or sqlite');
  SERVERS.splice(1, 0, {name: `otsyncd ${BASELINE_STORE} (baseline)`, cmd: path.resolve(BASELINE),
    args: (dir) => ['--store', BASELINE_STORE === 'sqlite' ? 'sqlite:bench.db' : 'memory:', '--data-dir', dir,
                    ...common]});
}
const ONLY = arg('servers', null);
// --tls is a bare flag (before `--`): parseArgs only reads flags with values.
const OWN_ARGS = process.argv.slice(2, process.argv.includes('--') ? process.argv.indexOf('--') : undefined);
const TLS_SERVER = 'otsyncd memory tls';
const PLAIN_SERVER = 'otsyncd memory';
let certDir = null;  // made below when the TLS server runs; removed on exit
if (OWN_ARGS.includes('--tls') || (ONLY && ONLY.split(',').some((w) => w.includes('tls')))) {
  // Next to its plain twin, so that each repetition runs them one after the other.
  SERVERS.splice(SERVERS.findIndex((s) => s.name === PLAIN_SERVER) + 1, 0, {
    name: TLS_SERVER, cmd: OTSYNCD, tls: true,
    args: (dir) => ['--store', 'memory:', '--data-dir', dir, ...OTSYNCD_COMMON,
                    '--tls-cert', path.join(certDir, 'server.pem'), '--max-tls-handshakes-per-address', '0'],
  });
}
if (ONLY) {
  const words = ONLY.split(',');
  for (let i = SERVERS.length - 1; i >= 0; i--) {
    if (!words.some((w) => SERVERS[i].name.includes(w))) SERVERS.splice(i, 1);
  }
}

if (SERVERS.some((s) => s.tls)) {
  // server.pem: DNS:localhost and IP:127.0.0.1, certificate then key; ca.pem: its CA.
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-sbs-certs-'));
  process.on('exit', () => fs.rmSync(certDir, {recursive: true, force: true}));
  execFileSync(MAKE_CERTS, [certDir], {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000});
}

async function runOnce(server, preset) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-sbs-'));
  const {child, url} = await startServer(server, dir);
  try {
    const [name, rate] = preset.split('@rate=');
    const args = ['--preset', name, ...(rate ? ['--rate', rate] : []), '--url', url, '--pid', String(child.pid), '--duration', DURATION,
                  '--warmup', WARMUP, '--quiet', ...(server.tls ? ['--tls-ca-file', path.join(certDir, 'ca.pem')] : []),
                  ...extra];
    const report = JSON.parse(execFileSync(LOAD, args, {encoding: 'utf8', timeout: 900000}));
    const srv = report.server[String(child.pid)] || {};
    return {
      acked: report.acked_ops_per_s, p50: report.ack_latency_ms.p50, p99: report.ack_latency_ms.p99,
      // A writer's send to a reader applying the op (fan-out's figure); none when nobody else reads.
      deliveryP50: report.delivery_latency_ms?.p50, deliveryP99: report.delivery_latency_ms?.p99,
      deliveries: report.deliveries_per_s, cpu: srv.cpu_percent, kernelCpu: srv.kernel_cpu_percent,
      rssPerConnection: report.rss_per_connection_bytes,
      converged: report.converged, errors: Object.values(report.errors || {}).reduce((a, b) => a + b, 0),
      loadgenSaturated: report.loadgen.saturated, loadgenCpu: report.loadgen.cpu_percent,
    };
  } finally {
    await stopServer(child);
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

const fmt = (x, digits = 0) => (x === null || x === undefined ? '—' : Number(x).toFixed(digits));

(async () => {
  const runs = {};
  for (let rep = 1; rep <= REPS; rep++) {
    for (const preset of PRESETS) {
      for (const server of SERVERS) {
        const r = await runOnce(server, preset);
        ((runs[preset] = runs[preset] || {})[server.name] = runs[preset][server.name] || []).push(r);
        process.stderr.write(`rep ${rep}/${REPS} ${preset} ${server.name}: ${fmt(r.acked)} ops/s, ` +
          `${fmt(r.deliveries)} deliveries/s, p99 ${fmt(r.p99, 2)} ms, delivery p99 ${fmt(r.deliveryP99, 2)} ms, ` +
          `converged ${r.converged}` +
          `${r.loadgenSaturated ? ' (load generator saturated)' : ''}\n`);
      }
    }
  }
  const summary = {};
  const peer = 'sharedb memory';
  console.log(`${REPS} reps, ${DURATION} s measured per run, medians; ratio = otsyncd / ShareDB ` +
              `(latency and CPU per op: ShareDB / otsyncd)\n`);
  console.log('| preset | server | acked ops/s | ratio | deliveries/s | ratio | ack p50 ms | ack p99 ms | p99 ratio | ' +
              'delivery p50 / p99 ms | RSS/conn bytes | ratio | server CPU % | server CPU µs/op | ratio | ' +
              'user / kernel µs/op | user ratio | kernel ratio | loadgen CPU % | ' +
              'converged | errors | loadgen saturated |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|');
  for (const preset of PRESETS) {
    summary[preset] = {};
    for (const server of SERVERS) {
      const rs = runs[preset][server.name];
      summary[preset][server.name] = {
        ackedOpsPerSecond: median(rs.map((r) => r.acked)), deliveriesPerSecond: median(rs.map((r) => r.deliveries)),
        p50Ms: median(rs.map((r) => r.p50)), p99Ms: median(rs.map((r) => r.p99)),
        deliveryP50Ms: median(rs.map((r) => r.deliveryP50 ?? null)),
        deliveryP99Ms: median(rs.map((r) => r.deliveryP99 ?? null)),
        rssPerConnection: median(rs.map((r) => r.rssPerConnection)), cpuPercent: median(rs.map((r) => r.cpu)),
        converged: rs.every((r) => r.converged), errors: rs.reduce((a, r) => a + r.errors, 0),
        loadgenSaturated: rs.some((r) => r.loadgenSaturated), loadgenCpuPercent: median(rs.map((r) => r.loadgenCpu)),
        // Server CPU time per acked op: what each op costs the server, whatever bounds the throughput.
        cpuMicrosPerOp: median(rs.map((r) => (r.acked > 0 && r.cpu != null ? (r.cpu / 100) * 1e6 / r.acked : null))),
        // Its two parts: the server's own code, and the kernel on its behalf (sockets, polling,
        // wake-ups, fsync), which no server on this machine avoids.
        userMicrosPerOp: median(rs.map((r) => (r.acked > 0 && r.cpu != null && r.kernelCpu != null
          ? ((r.cpu - r.kernelCpu) / 100) * 1e6 / r.acked : null))),
        kernelMicrosPerOp: median(rs.map((r) => (r.acked > 0 && r.kernelCpu != null
          ? (r.kernelCpu / 100) * 1e6 / r.acked : null))),
      };
    }
    const base = summary[preset][peer] || {};  // without the peer (--servers): no ratios
    for (const server of SERVERS) {
      const s = summary[preset][server.name];
      const ratio = (a, b) => (a && b ? a / b : null);
      s.ratios = {acked: ratio(s.ackedOpsPerSecond, base.ackedOpsPerSecond),
                  deliveries: ratio(s.deliveriesPerSecond, base.deliveriesPerSecond),
                  p99: ratio(base.p99Ms, s.p99Ms), rssPerConnection: ratio(s.rssPerConnection, base.rssPerConnection),
                  cpuPerOp: ratio(base.cpuMicrosPerOp, s.cpuMicrosPerOp),
                  userCpuPerOp: ratio(base.userMicrosPerOp, s.userMicrosPerOp),
                  kernelCpuPerOp: ratio(base.kernelMicrosPerOp, s.kernelMicrosPerOp)};
      console.log(`| ${preset} | ${server.name} | ${fmt(s.ackedOpsPerSecond)} | ${fmt(s.ratios.acked, 2)} | ` +
        `${fmt(s.deliveriesPerSecond)} | ${fmt(s.ratios.deliveries, 2)} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ` +
        `${fmt(s.ratios.p99, 2)} | ${fmt(s.deliveryP50Ms, 2)} / ${fmt(s.deliveryP99Ms, 2)} | ` +
        `${fmt(s.rssPerConnection)} | ${fmt(s.ratios.rssPerConnection, 2)} | ` +
        `${fmt(s.cpuPercent)} | ${fmt(s.cpuMicrosPerOp, 1)} | ${fmt(s.ratios.cpuPerOp, 2)} | ` +
        `${fmt(s.userMicrosPerOp, 1)} / ${fmt(s.kernelMicrosPerOp, 1)} | ${fmt(s.ratios.userCpuPerOp, 2)} | ` +
        `${fmt(s.ratios.kernelCpuPerOp, 2)} | ${fmt(s.loadgenCpuPercent)} | ` +
        `${s.converged ? 'yes' : 'NO'} | ${s.errors} | ${s.loadgenSaturated ? 'YES' : 'no'} |`);
    }
  }
  // What otsyncd's own TLS listener costs: the TLS server against its plain twin, preset by preset.
  let tlsVsPlain = null;
  if (SERVERS.some((s) => s.name === TLS_SERVER) && SERVERS.some((s) => s.name === PLAIN_SERVER)) {
    tlsVsPlain = {};
    const ratio = (a, b) => (a != null && b ? a / b : null);
    console.log(`\nTLS vs plain: "${TLS_SERVER}" (wss://, --tls-cert) against "${PLAIN_SERVER}" (ws://), ` +
                'medians; ratio = TLS / plain (ops/s below 1 and CPU per op above 1: what TLS costs)\n');
    console.log('| preset | acked ops/s plain | acked ops/s TLS | TLS/plain | server CPU µs/op plain | ' +
                'server CPU µs/op TLS | TLS/plain | ack p99 ms plain | ack p99 ms TLS | TLS/plain | ' +
                'RSS/conn bytes plain | RSS/conn bytes TLS | TLS/plain | TLS − plain bytes/conn |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const preset of PRESETS) {
      const p = summary[preset][PLAIN_SERVER];
      const t = summary[preset][TLS_SERVER];
      const row = tlsVsPlain[preset] = {
        acked: ratio(t.ackedOpsPerSecond, p.ackedOpsPerSecond), cpuPerOp: ratio(t.cpuMicrosPerOp, p.cpuMicrosPerOp),
        p99: ratio(t.p99Ms, p.p99Ms), rssPerConnection: ratio(t.rssPerConnection, p.rssPerConnection),
        rssPerConnectionDelta: t.rssPerConnection != null && p.rssPerConnection != null
          ? t.rssPerConnection - p.rssPerConnection : null,
      };
      console.log(`| ${preset} | ${fmt(p.ackedOpsPerSecond)} | ${fmt(t.ackedOpsPerSecond)} | ${fmt(row.acked, 2)} | ` +
        `${fmt(p.cpuMicrosPerOp, 1)} | ${fmt(t.cpuMicrosPerOp, 1)} | ${fmt(row.cpuPerOp, 2)} | ` +
        `${fmt(p.p99Ms, 2)} | ${fmt(t.p99Ms, 2)} | ${fmt(row.p99, 2)} | ` +
        `${fmt(p.rssPerConnection)} | ${fmt(t.rssPerConnection)} | ${fmt(row.rssPerConnection, 2)} | ` +
        `${fmt(row.rssPerConnectionDelta)} |`);
    }
  }
  if (JSON_OUT) {
    fs.writeFileSync(JSON_OUT, JSON.stringify({machine: machine(), reps: REPS, duration: Number(DURATION), extra,
                                               presets: PRESETS, summary, runs,
                                               ...(tlsVsPlain ? {tlsVsPlain} : {})}, null, 1));
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
