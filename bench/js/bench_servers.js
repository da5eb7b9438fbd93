'use strict';
// The servers the same-run benchmarks (side_by_side.js, authors_sweep.js) compare, and how each is
// started fresh for a run: otsyncd on the memory store and on SQLite, and ShareDB 7 (the reference
// peer, bench/peer/sharedb_server.js: npm sharedb + ot-text-unicode on its in-memory DB).
const {spawn, execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const OTSYNCD = path.join(root, 'build/bin/otsyncd');
const LOAD = path.join(root, 'build/bin/otsync-load');
const PEER = path.join(root, 'bench/peer/sharedb_server.js');

// Every load connection comes from 127.0.0.1: the per-address connection limit
// (meant for the internet, 1000 by default) would refuse the idle preset's 2000.
const OTSYNCD_COMMON = ['--log-level', 'warn', '--max-connections-per-address', '0'];

/** A fresh list (callers add to it): name, command, and its arguments for a data directory. */
function baseServers() {
  return [
    {name: 'otsyncd memory', cmd: OTSYNCD, args: (dir) => ['--store', 'memory:', '--data-dir', dir, ...OTSYNCD_COMMON]},
    {name: 'otsyncd sqlite', cmd: OTSYNCD, args: (dir) => ['--store', 'sqlite:bench.db', '--data-dir', dir,
                                                           ...OTSYNCD_COMMON]},
    {name: 'sharedb memory', cmd: process.execPath, args: () => [PEER]},
  ];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `server` on a free port with `dir` for its data and log; resolves {child, url}. */
async function startServer(server, dir) {
  const portFile = path.join(dir, 'port');
  const log = fs.openSync(path.join(dir, 'server.log'), 'w');
  const child = spawn(server.cmd, [...server.args(dir), '--listen', '127.0.0.1:0', '--port-file', portFile],
    {stdio: ['ignore', log, log]});
  fs.closeSync(log);
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim()) {
      const scheme = server.tls ? 'wss' : 'ws';
      return {child, url: `${scheme}://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}/ws`};
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${server.name} did not start: ${fs.readFileSync(path.join(dir, 'server.log'), 'utf8')}`);
}

/** SIGTERM, then SIGKILL after 10 s. */
async function stopServer(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  for (let i = 0; i < 200 && child.exitCode === null; i++) await sleep(50);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** What the figures were measured on. */
function machine() {
  const cpus = os.cpus();
  let commit = null;
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], {encoding: 'utf8'}).trim();
  } catch (_) { /* not a checkout */ }
  return {cpu: cpus.length ? cpus[0].model : 'unknown', cores: cpus.length,
          memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, commit};
}

module.exports = {root, OTSYNCD, LOAD, PEER, OTSYNCD_COMMON, baseServers, startServer, stopServer, sleep, machine};
