#!/usr/bin/env node
// Turns Google Benchmark JSON (with --benchmark_repetitions) into the rows
// shape bench/js/ot_bench_table.js reads: {"rows":[{key, unit, median, runs}]}.
// Usage: node bench/js/gbench_rows.js gbench.json > otsync.json
'use strict';
const fs = require('fs');

const renames = { 'compose_fold/100000': 'compose_fold_100k' };

function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: gbench_rows.js GBENCH_JSON');
    process.exit(2);
  }
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  const rows = new Map();
  for (const b of report.benchmarks) {
    const name = b.run_name || b.name;
    if (b.error_occurred) throw Error(`${name}: ${b.error_message}`);
    // Complexity fits (BigO, RMS) are not timings.
    if (!b.time_unit || b.aggregate_name === 'BigO' || b.aggregate_name === 'RMS' || /_(BigO|RMS)$/.test(b.name)) continue;
    const key = renames[name] || name;
    if (!rows.has(key)) rows.set(key, { key, unit: b.time_unit, median: null, runs: [] });
    const row = rows.get(key);
    if (b.run_type === 'aggregate') {
      if (b.aggregate_name === 'median') row.median = b.real_time;
    } else {
      row.runs.push(b.real_time);
    }
  }
  for (const row of rows.values()) {
    if (row.median === null) {
      const sorted = [...row.runs].sort((a, b) => a - b);
      row.median = sorted[Math.floor(sorted.length / 2)];
    }
  }
  process.stdout.write(JSON.stringify({ context: report.context, rows: [...rows.values()] }, null, 1) + '\n');
}

main();
