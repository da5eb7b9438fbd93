#!/usr/bin/env node
'use strict';
// Merge otsync's OT benchmark JSON with the ot-text-unicode peer JSON
// (bench/js/ot_peer_bench.js) into a Markdown table.
//
// Usage:
//   node bench/js/ot_bench_table.js --otsync otsync.json --peer peer.json
//        [--md out.md] [--json out.json]
//
// Both inputs have the shape {"rows":[{"key","unit","median","runs"}, ...]}.
// The table: key | unit | otsync median | ot-text-unicode median |
// speed-up (peer / otsync) | target | met. A row missing on one side shows "—".
// If the two sides use different time units (ns/us/ms/s) the peer value is
// converted to otsync's unit. The table goes to stdout (and to --md);
// --json writes the merged rows.

const fs = require('fs');
const path = require('path');
const {parseArgs} = require(path.join(__dirname, '../../tests/js/ot_cases.js'));

// Targets for otsync, by row key: the otsync median must be <= value (in unit).
const TARGETS = {
  'replay:automerge-paper': {max: 20, unit: 'ms'},
  'replay:egwalker-paper': {max: 100, unit: 'ms'},
  'transform_small': {max: 60, unit: 'ns'},
  'compose_fold_100k': {max: 50, unit: 'ms'},
};

const DASH = '—';
const UNIT_NS = {ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9};

function convert(value, from, to) {
  if (value === null || value === undefined || from === to) return value;
  if (!(from in UNIT_NS) || !(to in UNIT_NS)) return null; // not comparable
  return value * UNIT_NS[from] / UNIT_NS[to];
}

function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return DASH;
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

function readRows(file, what) {
  let obj;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw Error(`cannot read the ${what} JSON ${file}: ${e.message}`);
  }
  if (!obj || !Array.isArray(obj.rows)) throw Error(`${file}: no "rows" array`);
  const map = new Map();
  for (const r of obj.rows) {
    if (!r || typeof r.key !== 'string') throw Error(`${file}: a row has no "key"`);
    map.set(r.key, r);
  }
  return {obj, map};
}

function merge(otsync, peer) {
  const keys = [];
  const seen = new Set();
  for (const k of otsync.map.keys()) { keys.push(k); seen.add(k); }
  for (const k of peer.map.keys()) if (!seen.has(k)) { keys.push(k); seen.add(k); }
  return keys.map((key) => {
    const o = otsync.map.get(key);
    const p = peer.map.get(key);
    const unit = o ? o.unit : p.unit;
    const om = o && typeof o.median === 'number' ? o.median : null;
    const pm = p && typeof p.median === 'number' ? convert(p.median, p.unit, unit) : null;
    const speedup = om !== null && pm !== null && om > 0 ? pm / om : null;
    const t = TARGETS[key] || null;
    let target = null, met = null;
    if (t) {
      target = t;
      const tv = convert(t.max, t.unit, unit);
      if (om !== null && tv !== null) met = om <= tv;
    }
    return {
      key, unit,
      otsync: om, peer: pm,
      speedup: speedup === null ? null : Math.round(speedup * 10) / 10,
      target: target ? {max: target.max, unit: target.unit} : null,
      met,
      otsyncRuns: o ? o.runs : null,
      peerRuns: p ? p.runs : null,
      peerUnit: p ? p.unit : null, // unit of peerRuns (peer is converted to unit)
    };
  });
}

function markdown(rows, meta) {
  const head = ['key', 'unit', 'otsync median', 'ot-text-unicode median',
    'speed-up', 'target', 'met'];
  const align = ['---', '---', '---:', '---:', '---:', '---', '---'];
  const lines = ['| ' + head.join(' | ') + ' |', '|' + align.join('|') + '|'];
  for (const r of rows) {
    lines.push('| ' + [
      '`' + r.key + '`',
      r.unit,
      fmt(r.otsync),
      fmt(r.peer),
      r.speedup === null ? DASH : r.speedup.toFixed(1) + 'x',
      r.target ? `≤ ${r.target.max} ${r.target.unit}` : DASH,
      r.met === null ? DASH : (r.met ? 'yes' : 'no'),
    ].join(' | ') + ' |');
  }
  const notes = [];
  if (meta.node) notes.push(`peer: ${meta.peerName || 'ot-text-unicode'} on node ${meta.node}`);
  notes.push('speed-up = peer median / otsync median');
  return lines.join('\n') + '\n\n' + notes.join('; ') + '\n';
}

const USAGE = `usage: node bench/js/ot_bench_table.js --otsync otsync.json --peer peer.json
       [--md out.md] [--json out.json]
`;

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {otsync: 'string', peer: 'string', md: 'string', json: 'string'});
  } catch (e) {
    process.stderr.write(e.message + '\n' + USAGE);
    return 2;
  }
  if (args.help) { process.stdout.write(USAGE); return 0; }
  if (!args.otsync || !args.peer) {
    process.stderr.write('--otsync and --peer are required\n' + USAGE);
    return 2;
  }
  let otsync, peer;
  try {
    otsync = readRows(args.otsync, 'otsync');
    peer = readRows(args.peer, 'peer');
  } catch (e) {
    process.stderr.write('ot_bench_table: ' + e.message + '\n');
    return 1;
  }
  const rows = merge(otsync, peer);
  const md = markdown(rows, {peerName: peer.obj.peer, node: peer.obj.node});
  process.stdout.write(md);
  if (args.md) fs.writeFileSync(args.md, md);
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify({
      peer: peer.obj.peer || null, node: peer.obj.node || null, rows,
    }, null, 2) + '\n');
  }
  return 0;
}

module.exports = {TARGETS, merge, markdown, convert};

if (require.main === module) process.exitCode = main();
