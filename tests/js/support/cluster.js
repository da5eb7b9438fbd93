'use strict';
// scripts/cluster.sh from the tests: Redis, three otsyncd and HAProxy on
// loopback (free ports, a temp dir), stopped by PID.

const {execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const CLUSTER_SCRIPT = path.resolve(__dirname, '..', '..', '..', 'scripts', 'cluster.sh');
const LOG_FILES = ['otsync1.log', 'otsync2.log', 'otsync3.log', 'haproxy.log', 'redis.log'];

/** DIR/cluster.env: NAME=VALUE lines (a later one wins), values possibly in double quotes (lists of ports). */
function readClusterEnv(dir) {
  return Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/^"(.*)"$/, '$1')]));
}

class Cluster {
  /** `env`: extra environment for cluster.sh (OTSYNC_ARGS, OTSYNC_INSTANCES, CLUSTER_TLS_CERT). */
  constructor(env = {}) {
    this.extraEnv = env;
    this.dir = null;
    this.env = {};
  }

  start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-cluster-'));
    const args = ['start', this.dir];
    if (process.env.OTSYNCD) args.push(process.env.OTSYNCD);
    execFileSync(CLUSTER_SCRIPT, args, {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000,
      env: {...process.env, ...this.extraEnv}});
    this.readEnv();
  }

  readEnv() {
    this.env = readClusterEnv(this.dir);
  }

  stop() {
    if (!this.dir) return;
    execFileSync(CLUSTER_SCRIPT, ['stop', this.dir], {stdio: 'inherit', timeout: 60000});
    fs.rmSync(this.dir, {recursive: true, force: true});
    this.dir = null;
  }

  /** The tail of every log, for a failure message. */
  logs() {
    let out = '';
    for (const f of LOG_FILES) {
      try {
        out += `--- ${f}\n${fs.readFileSync(path.join(this.dir, f), 'utf8').slice(-3000)}\n`;
      } catch (_) { /* none */ }
    }
    return out;
  }

  lb() {
    return {wsUrl: this.env.HAPROXY_URL};
  }

  /** Each instance as a server the support helpers take ({wsUrl, httpUrl}), with its pid. */
  instances() {
    return [1, 2, 3].map((i) => {
      const wsUrl = this.env[`OTSYNC${i}_URL`];
      return {wsUrl, httpUrl: wsUrl && wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, ''),
        pid: Number(this.env[`OTSYNC${i}_PID`])};
    });
  }
}

module.exports = {Cluster, CLUSTER_SCRIPT, readClusterEnv};
