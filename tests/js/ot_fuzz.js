#!/usr/bin/env node
'use strict';
// Differential fuzz driver: ot-text-unicode@4.0.0 (the reference) vs otsync.
//
// Generates random cases with ot_cases.js (expected results computed by the
// reference), pipes them into `<checker> check` (otsync-ot), and checks what
// the checker says.
//
// Usage:
//   node tests/js/ot_fuzz.js --checker /path/to/otsync-ot [--seed S] [--count N]
//        [--kinds apply,compose,...] [--cases FILE[.gz]] [--save FILE]
//        [--timeout SECONDS] [--show N] [--quiet]
//
//   --seed     default: $OTSYNC_FUZZ_SEED, else random (always printed)
//   --count    default: $OTSYNC_FUZZ_CASES, else 4000
//   --cases    send the lines of this JSONL file (optionally gzipped) instead
//              of generating (e.g. a saved failing run, or a conformance file)
//   --save     also write the generated cases to FILE
//   --timeout  kill the checker after this many seconds (default 600)
//   --show     how many failing lines to print (default 20)
//
// Checker protocol: one JSON line per input line,
//   {"line":n,"kind":"...","ok":true|false, ...}
// then a final line {"summary":true,"total":N,"passed":N,"failed":N}.
// `line` may count from 1 (expected) or from 0 (detected).
//
// Exit status: 0 only if the checker exited 0, printed one result line per
// input, every result is ok, and its summary agrees (total = lines sent,
// passed + failed = total, failed = 0). 1 on a failure, 2 on a usage error.

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const {spawn} = require('child_process');
const {generateCases, parseArgs} = require('./ot_cases');

const USAGE = `usage: node tests/js/ot_fuzz.js --checker PATH [--seed S] [--count N]
       [--kinds a,b,...] [--cases FILE[.gz]] [--save FILE] [--timeout SEC]
       [--show N] [--quiet]
  seed defaults to $OTSYNC_FUZZ_SEED or a random one; count to
  $OTSYNC_FUZZ_CASES or 4000.
`;

const log = (s) => process.stderr.write(s + '\n');

function readCasesFile(file) {
  let buf = fs.readFileSync(file);
  if (file.endsWith('.gz')) buf = zlib.gunzipSync(buf);
  return buf.toString('utf8').split('\n').filter((l) => l.trim() !== '');
}

function runChecker(checker, input, timeoutSec) {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(checker, ['check'], {stdio: ['pipe', 'pipe', 'pipe']});
    } catch (e) {
      resolve({spawnError: e.message});
      return;
    }
    const out = [];
    let err = '';
    let timedOut = false;
    let stdinError = null;
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => {
      err += d.toString('utf8');
      if (err.length > 200000) err = err.slice(-100000);
    });
    child.stdin.on('error', (e) => { stdinError = e.code || e.message; });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutSec * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({spawnError: e.message});
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: err, timedOut, stdinError});
    });
    child.stdin.end(input);
  });
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {
      checker: 'string', seed: 'string', count: 'number', kinds: 'string',
      cases: 'string', save: 'string', timeout: 'number', show: 'number', quiet: 'bool',
    });
  } catch (e) {
    log(e.message);
    process.stderr.write(USAGE);
    return 2;
  }
  if (args.help) { process.stdout.write(USAGE); return 0; }
  if (!args.checker) {
    log('--checker is required');
    process.stderr.write(USAGE);
    return 2;
  }
  const show = args.show === undefined ? 20 : args.show;
  const timeoutSec = args.timeout === undefined ? 600 : args.timeout;

  let lines;
  let seed = null;
  let count;
  const t0 = process.hrtime.bigint();
  if (args.cases) {
    lines = readCasesFile(args.cases);
    count = lines.length;
    log(`ot_fuzz: ${count} cases from ${args.cases}`);
  } else {
    seed = args.seed !== undefined ? args.seed
      : process.env.OTSYNC_FUZZ_SEED ? process.env.OTSYNC_FUZZ_SEED
        : String(crypto.randomBytes(4).readUInt32LE(0));
    count = args.count !== undefined ? args.count
      : process.env.OTSYNC_FUZZ_CASES ? Number(process.env.OTSYNC_FUZZ_CASES) : 4000;
    if (!Number.isInteger(count) || count < 0) {
      log('ot_fuzz: bad case count: ' + count);
      return 2;
    }
    log(`ot_fuzz: seed=${seed} count=${count}` + (args.kinds ? ` kinds=${args.kinds}` : ''));
    try {
      lines = generateCases({seed, count, kinds: args.kinds}).map((c) => JSON.stringify(c));
    } catch (e) {
      log('ot_fuzz: ' + e.message);
      return 2;
    }
  }
  const genMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!args.quiet) log(`ot_fuzz: prepared ${lines.length} cases in ${genMs.toFixed(0)} ms`);
  if (args.save) fs.writeFileSync(args.save, lines.join('\n') + (lines.length ? '\n' : ''));

  const input = lines.join('\n') + (lines.length ? '\n' : '');
  const t1 = process.hrtime.bigint();
  const res = await runChecker(args.checker, input, timeoutSec);
  const runMs = Number(process.hrtime.bigint() - t1) / 1e6;

  const problems = [];
  if (res.spawnError) {
    log(`ot_fuzz: FAIL: cannot run ${args.checker}: ${res.spawnError}`);
    if (seed !== null) log(`ot_fuzz: seed=${seed}`);
    return 1;
  }
  if (res.timedOut) problems.push(`checker timed out after ${timeoutSec} s and was killed`);
  if (res.signal) problems.push(`checker was killed by signal ${res.signal}`);
  else if (res.code !== 0) problems.push(`checker exited with status ${res.code}`);
  if (res.stdinError) problems.push(`writing the checker's stdin failed (${res.stdinError}): it stopped reading early`);

  // Parse the checker's output.
  const results = [];
  let summary = null;
  let junk = 0;
  const outLines = res.stdout.split('\n');
  for (const l of outLines) {
    if (l.trim() === '') continue;
    let obj;
    try {
      obj = JSON.parse(l);
    } catch (e) {
      if (junk++ < 5) problems.push('checker printed a line that is not JSON: ' + l.slice(0, 200));
      continue;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      problems.push('checker printed a JSON line that is not an object: ' + l.slice(0, 200));
    } else if (obj.summary === true) {
      if (summary) problems.push('checker printed more than one summary line');
      summary = obj;
    } else {
      if (summary) problems.push('checker printed a result line after its summary');
      results.push({obj, raw: l});
    }
  }

  // Map result lines onto input lines. 1-based unless a line 0 shows up.
  let base = 1;
  for (const r of results) if (r.obj.line === 0) base = 0;
  const byLine = new Map();
  let badLineNo = 0;
  for (const r of results) {
    const n = r.obj.line;
    if (!Number.isInteger(n) || n - base < 0 || n - base >= lines.length) {
      if (badLineNo++ < 5) problems.push('result with a bad line number: ' + r.raw.slice(0, 200));
      continue;
    }
    if (byLine.has(n - base)) {
      if (badLineNo++ < 5) problems.push('two results for line ' + n);
      continue;
    }
    byLine.set(n - base, r);
  }
  if (results.length !== lines.length) {
    problems.push(`checker printed ${results.length} result lines for ${lines.length} input lines`);
  }
  const missing = [];
  for (let i = 0; i < lines.length && missing.length < 10; i++) if (!byLine.has(i)) missing.push(i + base);
  if (missing.length) problems.push('no result for input line(s) ' + missing.join(', ') + (missing.length === 10 ? ', ...' : ''));

  const failed = [];
  for (const [idx, r] of byLine) if (r.obj.ok !== true) failed.push(idx);
  failed.sort((a, b) => a - b);
  if (failed.length) problems.push(`${failed.length} case(s) failed`);

  if (!summary) {
    problems.push('checker printed no summary line');
  } else {
    if (summary.total !== lines.length) {
      problems.push(`summary total is ${summary.total}, but ${lines.length} lines were sent`);
    }
    if (summary.passed + summary.failed !== summary.total) {
      problems.push(`summary passed (${summary.passed}) + failed (${summary.failed}) != total (${summary.total})`);
    }
    if (summary.failed !== 0) problems.push(`summary reports ${summary.failed} failed`);
    if (summary.failed !== failed.length && results.length === lines.length) {
      problems.push(`summary reports ${summary.failed} failed, result lines say ${failed.length}`);
    }
  }

  const perKind = {};
  for (const l of lines) {
    let k = '?';
    try {
      const o = JSON.parse(l);
      // Conformance-vector files have no "kind": tell them by their keys.
      k = o.kind || ('str' in o ? 'apply' : 'op1' in o ? 'compose' : 'otherOp' in o ? 'transform' : '?');
    } catch (e) { /* counted as '?' */ }
    perKind[k] = (perKind[k] || 0) + 1;
  }

  if (problems.length === 0) {
    const kinds = Object.keys(perKind).map((k) => `${k}=${perKind[k]}`).join(' ');
    log(`ot_fuzz: OK ${lines.length} cases (${kinds}); checker took ${runMs.toFixed(0)} ms` +
        (seed !== null ? `; seed=${seed}` : ''));
    // A line runners recognise.
    log(`ot_fuzz: ${summary.passed} passed, ${summary.failed} failed`);
    return 0;
  }

  // ---- failure report
  log('');
  log('ot_fuzz: FAIL');
  if (seed !== null) log(`ot_fuzz: seed=${seed} count=${count}` + (args.kinds ? ` kinds=${args.kinds}` : ''));
  for (const p of problems) log('  - ' + p);
  for (const idx of failed.slice(0, show)) {
    log('');
    log(`--- input line ${idx + base}:`);
    log(lines[idx]);
    log('--- checker:');
    log(byLine.get(idx).raw);
  }
  if (failed.length > show) log(`\n(${failed.length - show} more failing lines not shown)`);
  if (res.stderr && res.stderr.trim() !== '') {
    const tail = res.stderr.length > 4000 ? '...' + res.stderr.slice(-4000) : res.stderr;
    log('\n--- checker stderr (tail):\n' + tail.replace(/\s+$/, ''));
  }
  let saved = args.save;
  if (!saved) {
    saved = path.join(os.tmpdir(), `ot_fuzz_cases_${seed !== null ? String(seed).replace(/[^A-Za-z0-9_-]/g, '_') : 'file'}_${process.pid}.jsonl`);
    try {
      fs.writeFileSync(saved, input);
    } catch (e) {
      saved = null;
    }
  }
  log('');
  if (saved) log(`ot_fuzz: all ${lines.length} input lines saved to ${saved}`);
  if (seed !== null) {
    log(`ot_fuzz: reproduce: node ${path.relative(process.cwd(), __filename) || __filename} --checker ${args.checker} --seed ${seed} --count ${count}` +
        (args.kinds ? ` --kinds ${args.kinds}` : ''));
  }
  if (saved) log(`ot_fuzz: or: ${args.checker} check < ${saved}`);
  if (summary) log(`ot_fuzz: ${summary.passed} passed, ${summary.failed} failed`);
  return 1;
}

main().then((code) => {
  process.exitCode = code;
}, (e) => {
  log('ot_fuzz: internal error: ' + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
});
