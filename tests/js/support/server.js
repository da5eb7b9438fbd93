'use strict';
// Starts the server under test as a child process on a free loopback port:
//   OTSYNC_SERVER=otsyncd (default)  $OTSYNCD (absolute path), else <repo>/build/bin/otsyncd
//   OTSYNC_SERVER=sharedb            bench/peer/sharedb_server.js (real ShareDB 7)
// Each server gets a temporary directory, reports its port through --port-file
// (written atomically), and is stopped by PID: SIGTERM, then SIGKILL after a
// timeout. Its stdout/stderr are kept (the tail) to show when a test fails.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const {spawn} = require('child_process');
const {sleep, withTimeout} = require('./util');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const PEER = path.resolve(__dirname, '..', '..', '..', 'bench', 'peer', 'sharedb_server.js');
const LOG_TAIL_BYTES = 16 * 1024;

function serverKind() {
  const kind = process.env.OTSYNC_SERVER || 'otsyncd';
  if (kind !== 'otsyncd' && kind !== 'sharedb') {
    throw new Error(`OTSYNC_SERVER must be "otsyncd" or "sharedb", not "${kind}"`);
  }
  return kind;
}

function otsyncdPath() {
  const p = process.env.OTSYNCD || path.join(REPO_ROOT, 'build', 'bin', 'otsyncd');
  if (!fs.existsSync(p)) {
    throw new Error(`otsyncd not found at ${p}: set OTSYNCD=/abs/path/to/otsyncd, ` +
      'or OTSYNC_SERVER=sharedb to run against the ShareDB peer');
  }
  return p;
}

const live = new Set();
process.on('exit', () => {
  for (const s of live) {
    try { process.kill(s.pid, 'SIGKILL'); } catch (_) { /* already gone */ }
  }
});

class Server {
  constructor(opts) {
    this.kind = opts.kind;
    this.store = opts.store;
    this.dir = opts.dir;
    this.ownsDir = opts.ownsDir;
    this.args = opts.args;
    this.command = opts.command;
    this.log = '';
    this.exit = null; // {code, signal} once exited
    this.identitySecret = opts.identitySecret || null;
    // When the server listens with TLS: the client side's TLS options ({ca, cert, key}, as for
    // https.get and `ws`); the URLs are then wss:// and https://.
    this.tls = opts.tls || null;
  }

  /**
   * The src other clients and the REST API see for an op by `src`: otsyncd
   * shows a keyed alias (docs/security.md), ShareDB the id itself.
   */
  alias(src) {
    if (!this.identitySecret || !src) return src;
    return aliasOf(this.identitySecret, src);
  }

  get wsUrl() { return `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.port}/ws`; }
  get httpUrl() { return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`; }

  /** The tail of the server's stdout+stderr. */
  logs() { return this.log; }

  async _start(timeoutMs) {
    const portFile = path.join(this.dir, `port-${Date.now()}-${Math.random().toString(16).slice(2)}`);
    const args = [...this.command.slice(1), '--listen', '127.0.0.1:0', '--port-file', portFile, ...this.args];
    this.child = spawn(this.command[0], args, {stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir});
    this.pid = this.child.pid;
    live.add(this);
    const append = (chunk) => {
      this.log += chunk.toString();
      if (this.log.length > LOG_TAIL_BYTES) this.log = this.log.slice(-LOG_TAIL_BYTES);
    };
    this.child.stdout.on('data', append);
    this.child.stderr.on('data', append);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = {code, signal};
        live.delete(this);
        resolve(this.exit);
      });
    });
    this.child.on('error', (e) => append(`spawn error: ${e.message}\n`));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exit) {
        throw new Error(`${this.describe()} exited before listening (${JSON.stringify(this.exit)})\n${this.log}`);
      }
      if (fs.existsSync(portFile)) {
        const text = fs.readFileSync(portFile, 'utf8').trim();
        if (/^\d+$/.test(text) && Number(text) > 0) {
          this.port = Number(text);
          return;
        }
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.describe()} wrote no port file within ${timeoutMs} ms\n${this.log}`);
      }
      await sleep(20);
    }
  }

  describe() { return `${this.kind} [${this.command.join(' ')} ${this.args.join(' ')}] pid ${this.pid}`; }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves to {code, signal}. */
  async stop(graceMs = 5000) {
    if (this.exit) return this.exit;
    try { process.kill(this.pid, 'SIGTERM'); } catch (_) { /* gone */ }
    const timer = setTimeout(() => {
      try { process.kill(this.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }, graceMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  /** SIGKILL (a crash). */
  async kill() {
    if (this.exit) return this.exit;
    try { process.kill(this.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    return withTimeout(this.exited, 10000, `exit of ${this.describe()} after SIGKILL`);
  }

  /** Removes the temporary directory (if this server made it). */
  cleanup() {
    if (this.ownsDir) fs.rmSync(this.dir, {recursive: true, force: true});
  }

  /** Starts a new process on the same data directory / store (e.g. after kill()). */
  async restart(timeoutMs = 15000) {
    if (!this.exit) await this.stop();
    const next = new Server({
      kind: this.kind, store: this.store, dir: this.dir, ownsDir: this.ownsDir,
      args: this.args, command: this.command, identitySecret: this.identitySecret, tls: this.tls,
    });
    this.ownsDir = false;
    await next._start(timeoutMs);
    return next;
  }

  /** GET a path on the HTTP side; resolves to {status, headers, body (parsed JSON or text)}. */
  get(urlPath, timeoutMs = 5000) {
    return withTimeout(new Promise((resolve, reject) => {
      const onResponse = (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => {
          let body = text;
          try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
          resolve({status: res.statusCode, headers: res.headers, body, text});
        });
      };
      const req = this.tls ? https.get(this.httpUrl + urlPath, this.tls, onResponse)
        : http.get(this.httpUrl + urlPath, onResponse);
      req.on('error', reject);
    }), timeoutMs, `GET ${urlPath}`);
  }

  /** GET returning the JSON body, asserting status 200. */
  async getJson(urlPath) {
    const r = await this.get(urlPath);
    if (r.status !== 200) throw new Error(`GET ${urlPath}: HTTP ${r.status} ${r.text}`);
    return r.body;
  }
}

/** otsyncd's alias of `src` under `secret`: "~" and base64url of the first 16 bytes of HMAC-SHA256. */
function aliasOf(secret, src) {
  const mac = crypto.createHmac('sha256', secret).update(`otsync-alias\0${src}`).digest();
  return `~${mac.subarray(0, 16).toString('base64url')}`;
}

/**
 * Starts a server.
 * opts.kind      'otsyncd' | 'sharedb' (default: $OTSYNC_SERVER or otsyncd)
 * opts.store     'memory' (default) | 'sqlite' (otsyncd only)
 * opts.storeUri  otsyncd's --store as given (e.g. redis://...), instead of `store`
 * opts.identitySecret  otsyncd's identity secret (instances sharing a store share it); default random
 * opts.args      extra command-line arguments
 * opts.tls       the server listens with TLS (its flags are in opts.args): the client side's TLS
 *                options ({ca, cert, key}) for server.get(); wsUrl and httpUrl become wss:// and https://
 * opts.timeoutMs how long to wait for the port file (default 15 s)
 */
async function startServer(opts = {}) {
  const kind = opts.kind || serverKind();
  const store = opts.store || 'memory';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `otsync-js-${kind}-`));
  let command;
  const args = [];
  let identitySecret = null;
  if (kind === 'otsyncd') {
    command = [otsyncdPath()];
    // A known secret, so the tests can tell which alias is whose.
    identitySecret = opts.identitySecret || crypto.randomBytes(32).toString('hex');
    const secretFile = path.join(dir, 'identity-secret');
    fs.writeFileSync(secretFile, identitySecret, {mode: 0o600});
    args.push('--identity-secret-file', secretFile);
    args.push('--store', opts.storeUri || (store === 'sqlite' ? `sqlite:${path.join(dir, 'otsync.db')}` : 'memory:'));
    args.push('--data-dir', dir);
    args.push('--log-level', process.env.OTSYNC_LOG_LEVEL || 'warn');
  } else {
    if (store !== 'memory') throw new Error('the ShareDB peer has only an in-memory store');
    command = [process.execPath, PEER];
    args.push('--log-level', process.env.OTSYNC_LOG_LEVEL || 'error');
  }
  args.push(...(opts.args || []));
  const server = new Server({kind, store, dir, ownsDir: true, args, command, identitySecret, tls: opts.tls});
  try {
    await server._start(opts.timeoutMs || 15000);
  } catch (e) {
    server.cleanup();
    throw e;
  }
  return server;
}

/** Runs `fn`; on failure appends the server's log tail to the error message. */
async function withServerLog(getServer, fn) {
  try {
    return await fn();
  } catch (e) {
    const server = typeof getServer === 'function' ? getServer() : getServer;
    if (server && e && typeof e === 'object') {
      const tail = server.logs().slice(-4000);
      if (tail) e.message += `\n--- ${server.kind} log tail (pid ${server.pid}) ---\n${tail}`;
      if (server.exit) e.message += `\n--- server exited: ${JSON.stringify(server.exit)}`;
    }
    throw e;
  }
}

module.exports = {startServer, serverKind, withServerLog, Server, aliasOf};
