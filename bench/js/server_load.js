#!/usr/bin/env node
// A first look at server throughput with the real sharedb client (issue 6
// brings the native load generator). D documents x W writers, each writer
// submitting its next edit when the previous one is acked, for a fixed number
// of ops; reports acked ops/s (median of --reps runs) for otsyncd on memory:
// and sqlite: and for the ShareDB 7 peer, plus otsyncd's ops per store batch
// from /metrics. The client runs in this one Node process, so on a small
// machine it is often the bottleneck: read the figures as lower bounds.
//
//   node bench/js/server_load.js [--docs 20] [--writers 2] [--ops 100] [--reps 3]
'use strict';
const path = require('path');
const http = require('http');
const support = path.join(__dirname, '..', '..', 'tests', 'js', 'support');
const {startServer} = require(path.join(support, 'server.js'));
const {connect, promisify} = (() => {
  const ShareDB = require(require.resolve('sharedb/lib/client', {paths: [path.join(support, '..')]}));
  const WebSocket = require(require.resolve('ws', {paths: [path.join(support, '..')]}));
  ShareDB.types.register(require(require.resolve('ot-text-unicode', {paths: [path.join(support, '..')]})).type);
  return {
    connect: (url) => new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const c = new ShareDB.Connection(socket);
      socket.once('open', () => resolve(c));
      socket.once('error', reject);
    }),
    promisify: (fn) => new Promise((resolve, reject) => fn((e) => (e ? reject(e) : resolve()))),
  };
})();

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const DOCS = arg('docs', 20), WRITERS = arg('writers', 2), OPS = arg('ops', 100), REPS = arg('reps', 3);

function metric(url, name) {
  return new Promise((resolve) => {
    http.get(`${url}/metrics`, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const line = body.split('\n').find((l) => l.startsWith(name + ' '));
        resolve(line ? Number(line.split(' ')[1]) : NaN);
      });
    }).on('error', () => resolve(NaN));
  });
}

async function once(kind, store) {
  const server = await startServer({kind, store});
  const conns = [];
  try {
    const docs = [];
    for (let d = 0; d < DOCS; d++) {
      for (let w = 0; w < WRITERS; w++) {
        const c = await connect(server.wsUrl);
        conns.push(c);
        const doc = c.get('bench', `d${d}`);
        await promisify((cb) => doc.fetch(cb));
        if (!doc.type) {
          try { await promisify((cb) => doc.create('', 'text-unicode', cb)); } catch (_) { /* a co-writer created it */ }
        }
        await promisify((cb) => doc.subscribe(cb));
        docs.push(doc);
      }
    }
    const t0 = process.hrtime.bigint();
    await Promise.all(docs.map(async (doc, i) => {
      for (let k = 0; k < OPS; k++) {
        const len = [...doc.data].length;
        const pos = (k * 7 + i) % (len + 1);
        await promisify((cb) => doc.submitOp(pos ? [pos, 'x'] : ['x'], cb));
      }
    }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const result = {kind: kind + (kind === 'otsyncd' ? `:${store}` : ''), ops: docs.length * OPS, seconds,
                    opsPerSecond: (docs.length * OPS) / seconds};
    if (kind === 'otsyncd') {
      const ops = await metric(server.httpUrl, 'otsync_ops_committed_total');
      const batches = await metric(server.httpUrl, 'otsync_commit_batches_total');
      result.opsPerBatch = ops / batches;
      if (store === 'sqlite') {
        result.opsPerTransaction = (await metric(server.httpUrl, 'otsync_store_commits_total')) /
                                   (await metric(server.httpUrl, 'otsync_store_transactions_total'));
      }
    }
    return result;
  } finally {
    for (const c of conns) c.close();
    await server.stop();
  }
}

(async () => {
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = {};
  for (let r = 0; r < REPS; r++) {
    for (const [kind, store] of [['otsyncd', 'memory'], ['otsyncd', 'sqlite'], ['sharedb', 'memory']]) {
      const res = await once(kind, store);
      (rows[res.kind] = rows[res.kind] || []).push(res);
      process.stderr.write(`rep ${r + 1}: ${res.kind} ${res.opsPerSecond.toFixed(0)} ops/s\n`);
    }
  }
  const out = Object.entries(rows).map(([kind, runs]) => ({
    kind, docs: DOCS, writers: WRITERS, opsPerWriter: OPS,
    medianOpsPerSecond: Math.round(median(runs.map((x) => x.opsPerSecond))),
    medianOpsPerDocumentBatch: runs[0].opsPerBatch === undefined ? null : +median(runs.map((x) => x.opsPerBatch)).toFixed(2),
    medianOpsPerSqliteTransaction: runs[0].opsPerTransaction === undefined ? null
      : +median(runs.map((x) => x.opsPerTransaction)).toFixed(2),
  }));
  console.log(JSON.stringify(out, null, 1));
})().catch((e) => { console.error(e); process.exit(1); });
