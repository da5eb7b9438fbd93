#!/usr/bin/env node
'use strict';
// Peer benchmark: the same workloads as otsync's C++ OT benchmark, run on the
// reference JS implementation ot-text-unicode@4.0.0.
//
// Usage:
//   node bench/js/ot_peer_bench.js [--reps R] [--only KEY,KEY,...] [--skip KEY,...]
//        [--traces DIR] [--small-ops FILE] [--out FILE] [--list]
//
//   --reps R         runs per row; the row's median is over these (default 3)
//   --only / --skip  comma-separated row keys; '*' is a wildcard, e.g.
//                    --only 'replay:*,transform_small' or --skip replay:automerge-paper
//   --traces DIR     trace root (default: ../../../shared/traces from this file)
//   --small-ops FILE cases for transform_small / compose_small, made by
//                    node tests/js/ot_cases.js --profile small --seed 1 --count 2000
//                    (if omitted, the same cases are generated in-process)
//   --out FILE       also write the JSON result to FILE
//   --list           print the row keys and exit
//
// Rows:
//   replay:<trace>     ms: apply every patch of a sequential trace, from "".
//   transform_small    ns per type.transform call over the small-profile cases
//   compose_small      ns per type.compose call over the small-profile cases
//   compose_fold_100k  ms: acc = compose(acc, op) over the first 100,000
//                      patches of automerge-paper
//
// stdout: {"peer":"ot-text-unicode@4.0.0","node":"v..","rows":[{"key","unit","median","runs"}]}
// Progress goes to stderr. Needs `npm ci` in tests/js (the modules live there).

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const TESTS_JS = path.join(__dirname, '../../tests/js');

function requirePeer() {
  let p;
  try {
    p = require.resolve('ot-text-unicode', {paths: [TESTS_JS]});
  } catch (e) {
    process.stderr.write('ot_peer_bench: ot-text-unicode is not installed; run `npm ci` in ' + TESTS_JS + '\n');
    process.exit(2);
  }
  return require(p);
}
const {type} = requirePeer();
const {parseArgs} = require(path.join(TESTS_JS, 'ot_cases.js'));

const PEER = 'ot-text-unicode@4.0.0';
const FOLD_PATCHES = 100000;
const SMALL_MIN_MS = 200;

const log = (s) => process.stderr.write(s + '\n');

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return null;
  return n % 2 ? s[(n - 1) >> 1] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

const round = (x, digits) => {
  const f = Math.pow(10, digits);
  return Math.round(x * f) / f;
};

function globToRegExp(g) {
  return new RegExp('^' + g.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

function makeFilter(only, skip) {
  const inc = only ? only.split(',').filter(Boolean).map(globToRegExp) : null;
  const exc = skip ? skip.split(',').filter(Boolean).map(globToRegExp) : [];
  return (key) => (!inc || inc.some((r) => r.test(key))) && !exc.some((r) => r.test(key));
}

function loadTrace(file) {
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
}

/** Trace patches as text-unicode ops: [pos?, {d: del}?, ins?]. */
function patchesToOps(trace, limit) {
  const ops = [];
  for (const txn of trace.txns) {
    for (const p of txn.patches) {
      if (limit !== undefined && ops.length >= limit) return ops;
      const pos = p[0], del = p[1], ins = p[2];
      const op = [];
      if (pos > 0) op.push(pos);
      if (del > 0) op.push({d: del});
      if (ins !== '') op.push(ins);
      ops.push(op);
    }
  }
  return ops;
}

function replayOps(ops) {
  let doc = '';
  for (let i = 0; i < ops.length; i++) doc = type.apply(doc, ops[i]);
  return doc;
}

const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(nowNs() - t0) / 1e6;

// ---- rows

function benchReplay(name, file, reps) {
  const trace = loadTrace(file);
  const ops = patchesToOps(trace);
  const runs = [];
  for (let r = 0; r < reps; r++) {
    const t0 = nowNs();
    const doc = replayOps(ops);
    const ms = msSince(t0);
    if (doc !== trace.endContent) {
      throw Error(`replay:${name}: final document differs from endContent ` +
                  `(got ${doc.length} UTF-16 units, want ${trace.endContent.length})`);
    }
    runs.push(round(ms, 3));
    log(`  replay:${name} run ${r + 1}/${reps}: ${ms.toFixed(1)} ms (${ops.length} ops)`);
  }
  return {key: 'replay:' + name, unit: 'ms', median: median(runs), runs};
}

function loadSmallCases(file) {
  let lines;
  if (file) {
    let buf = fs.readFileSync(file);
    if (file.endsWith('.gz')) buf = zlib.gunzipSync(buf);
    lines = buf.toString('utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  } else {
    log('  (no --small-ops: generating the profile-small cases, seed 1, count 2000, in-process)');
    const {generateCases} = require(path.join(TESTS_JS, 'ot_cases.js'));
    lines = generateCases({seed: 1, count: 2000, profile: 'small'}).map((c) => JSON.parse(JSON.stringify(c)));
  }
  const transform = [], compose = [];
  for (const c of lines) {
    if ('error' in c) continue;
    const kind = c.kind || ('op1' in c ? 'compose' : 'otherOp' in c ? 'transform' : null);
    if (kind === 'transform') transform.push(c);
    else if (kind === 'compose') compose.push(c);
  }
  return {transform, compose};
}

/** Time fn(pass) (one pass over n calls) repeated to >= SMALL_MIN_MS; ns per call. */
function benchSmall(key, n, pass, verify, reps) {
  if (n === 0) throw Error(key + ': no cases');
  verify();
  // Warm up and calibrate.
  let sink = 0;
  for (let i = 0; i < 3; i++) sink += pass();
  let iters = 1;
  for (;;) {
    const t0 = nowNs();
    for (let i = 0; i < iters; i++) sink += pass();
    const ms = msSince(t0);
    if (ms >= SMALL_MIN_MS) break;
    iters = ms <= 0 ? iters * 10 : Math.max(iters + 1, Math.ceil(iters * SMALL_MIN_MS * 1.1 / ms));
  }
  const runs = [];
  for (let r = 0; r < reps; r++) {
    const t0 = nowNs();
    for (let i = 0; i < iters; i++) sink += pass();
    const ns = Number(nowNs() - t0) / (iters * n);
    runs.push(round(ns, 1));
    log(`  ${key} run ${r + 1}/${reps}: ${ns.toFixed(1)} ns/call (${iters} x ${n} calls)`);
  }
  verify(); // the inputs must not have been changed by the calls
  if (sink === -1) log(''); // keep `sink` alive
  return {key, unit: 'ns', median: median(runs), runs};
}

function benchTransformSmall(cases, reps) {
  const ops = cases.map((c) => c.op), others = cases.map((c) => c.otherOp), sides = cases.map((c) => c.side);
  const n = cases.length;
  const pass = () => {
    let s = 0;
    for (let i = 0; i < n; i++) s += type.transform(ops[i], others[i], sides[i]).length;
    return s;
  };
  const verify = () => {
    for (let i = 0; i < n; i++) {
      const got = JSON.stringify(type.transform(ops[i], others[i], sides[i]));
      if (got !== JSON.stringify(cases[i].result)) throw Error(`transform_small: case ${i} gives ${got}, file says ${JSON.stringify(cases[i].result)}`);
    }
  };
  return benchSmall('transform_small', n, pass, verify, reps);
}

function benchComposeSmall(cases, reps) {
  const a = cases.map((c) => c.op1), b = cases.map((c) => c.op2);
  const n = cases.length;
  const pass = () => {
    let s = 0;
    for (let i = 0; i < n; i++) s += type.compose(a[i], b[i]).length;
    return s;
  };
  const verify = () => {
    for (let i = 0; i < n; i++) {
      const got = JSON.stringify(type.compose(a[i], b[i]));
      if (got !== JSON.stringify(cases[i].result)) throw Error(`compose_small: case ${i} gives ${got}, file says ${JSON.stringify(cases[i].result)}`);
    }
  };
  return benchSmall('compose_small', n, pass, verify, reps);
}

function benchComposeFold(file, reps) {
  const trace = loadTrace(file);
  const ops = patchesToOps(trace, FOLD_PATCHES);
  if (ops.length < FOLD_PATCHES) throw Error(`compose_fold_100k: ${file} has only ${ops.length} patches`);
  const expected = replayOps(ops);
  const runs = [];
  for (let r = 0; r < reps; r++) {
    const t0 = nowNs();
    let acc = [];
    for (let i = 0; i < ops.length; i++) acc = type.compose(acc, ops[i]);
    const ms = msSince(t0);
    const doc = type.apply('', acc);
    if (doc !== expected) throw Error('compose_fold_100k: apply("", acc) differs from the replayed document');
    runs.push(round(ms, 3));
    log(`  compose_fold_100k run ${r + 1}/${reps}: ${ms.toFixed(1)} ms (final op: ${acc.length} components)`);
  }
  return {key: 'compose_fold_100k', unit: 'ms', median: median(runs), runs};
}

// ---- main

const USAGE = `usage: node bench/js/ot_peer_bench.js [--reps R] [--only KEYS] [--skip KEYS]
       [--traces DIR] [--small-ops FILE] [--out FILE] [--list]
`;

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {
      reps: 'number', only: 'string', skip: 'string', traces: 'string',
      'small-ops': 'string', out: 'string', list: 'bool',
    });
  } catch (e) {
    log(e.message);
    process.stderr.write(USAGE);
    return 2;
  }
  if (args.help) { process.stdout.write(USAGE); return 0; }
  const reps = args.reps === undefined ? 3 : args.reps;
  if (!Number.isInteger(reps) || reps < 1) { log('--reps must be a positive integer'); return 2; }
  const tracesDir = path.resolve(args.traces || path.resolve(__dirname, '../../../shared/traces'));
  const seqDir = path.join(tracesDir, 'sequential');

  let traceNames = [];
  try {
    traceNames = fs.readdirSync(seqDir).filter((f) => f.endsWith('.json.gz'))
      .map((f) => f.slice(0, -'.json.gz'.length)).sort();
  } catch (e) {
    log(`ot_peer_bench: cannot read ${seqDir}: ${e.message}`);
  }
  const allKeys = traceNames.map((n) => 'replay:' + n)
    .concat(['transform_small', 'compose_small', 'compose_fold_100k']);
  if (args.list) { process.stdout.write(allKeys.join('\n') + '\n'); return 0; }

  const want = makeFilter(args.only, args.skip);
  const keys = allKeys.filter(want);
  if (keys.length === 0) { log('ot_peer_bench: no rows selected (see --list)'); return 2; }
  log(`ot_peer_bench: ${PEER} on node ${process.version}, reps=${reps}, rows: ${keys.join(' ')}`);

  const rows = [];
  let small = null;
  for (const key of keys) {
    const t0 = nowNs();
    log(`${key}:`);
    if (key.startsWith('replay:')) {
      const name = key.slice('replay:'.length);
      rows.push(benchReplay(name, path.join(seqDir, name + '.json.gz'), reps));
    } else if (key === 'transform_small' || key === 'compose_small') {
      if (!small) small = loadSmallCases(args['small-ops']);
      rows.push(key === 'transform_small'
        ? benchTransformSmall(small.transform, reps)
        : benchComposeSmall(small.compose, reps));
    } else if (key === 'compose_fold_100k') {
      rows.push(benchComposeFold(path.join(seqDir, 'automerge-paper.json.gz'), reps));
    }
    const r = rows[rows.length - 1];
    log(`  => ${key}: median ${r.median} ${r.unit} (${(msSince(t0) / 1000).toFixed(1)} s)`);
  }
  const out = JSON.stringify({peer: PEER, node: process.version, rows});
  if (args.out) fs.writeFileSync(args.out, out + '\n');
  process.stdout.write(out + '\n');
  return 0;
}

try {
  process.exitCode = main();
} catch (e) {
  log('ot_peer_bench: FAIL: ' + (e && e.message ? e.message : e));
  process.exitCode = 1;
}
