'use strict';
// Real keystroke traces (shared/traces/sequential) typed through the
// unmodified sharedb client into otsyncd on SQLite, as fast as the client
// goes: the client composes edits while one is in flight, a second client
// subscribed to the same document receives every op, and a third types its
// own edits into a second document at the same time. At the end the typist's,
// the watcher's, a fresh fetch's and the REST text all equal the trace's
// endContent, and the version equals the op log's length.
//
// Bounded: traces whose ot-text-unicode replay is quick (the JS client
// applies every keystroke to a flat string); OTSYNC_TRACE_LIMIT patches at
// most per trace (default: all), a time limit per trace.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const http = require('http');
const S = require('./support');

const holder = S.useServer({store: 'sqlite'});
const T = (fn) => S.logged(holder, fn);
const TRACES = path.resolve(__dirname, '..', '..', '..', 'shared', 'traces', 'sequential');
const LIMIT = Number(process.env.OTSYNC_TRACE_LIMIT || Infinity);
const TIME_LIMIT_MS = 120000;

function loadTrace(name) {
  const dir = process.env.OTSYNC_TRACES_DIR ? path.join(process.env.OTSYNC_TRACES_DIR, 'sequential') : TRACES;
  const file = path.join(dir, `${name}.json.gz`);
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8'));
}

// [pos, delCount, insStr] in code points -> a text-unicode op.
function patchOp([pos, del, ins]) {
  const op = [];
  if (pos > 0) op.push(pos);
  if (del > 0) op.push({d: del});
  if (ins.length > 0) op.push(ins);
  return op;
}

function restGet(server, p) {
  return new Promise((resolve, reject) => {
    http.get(`${server.httpUrl}${p}`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, body: JSON.parse(body)}));
    }).on('error', reject);
  });
}

async function typeTrace(name) {
  const server = holder.server;
  const trace = loadTrace(name);
  const patches = trace.txns.flatMap((t) => t.patches).slice(0, LIMIT);
  let expected = trace.endContent;
  if (patches.length < trace.txns.reduce((n, t) => n + t.patches.length, 0)) {
    // A prefix: compute its text with a code-point array.
    const cps = [];
    for (const [pos, del, ins] of patches) cps.splice(pos, del, ...Array.from(ins));
    expected = cps.join('');
  }
  const typist = await S.connect(server);
  const watcher = await S.connect(server);
  const other = await S.connect(server);
  try {
    const id = S.uid(name);
    const doc = S.getDoc(typist, 'traces', id);
    await S.create(doc, '');
    const watched = S.getDoc(watcher, 'traces', id);
    await S.subscribe(watched);
    const side = S.getDoc(other, 'traces', S.uid(`${name}-side`));
    await S.create(side, '');

    const started = Date.now();
    let sideOps = 0;
    for (let i = 0; i < patches.length; i++) {
      doc.submitOp(patchOp(patches[i]));
      if (i % 200 === 199) side.submitOp([`${sideOps++ % 10}`]);
      if (i % 20 === 19) {
        // Let acks and broadcasts flow; the client keeps composing meanwhile.
        await new Promise((r) => setTimeout(r, 0));
        assert.ok(Date.now() - started < TIME_LIMIT_MS, `${name}: typing took over ${TIME_LIMIT_MS} ms`);
      }
    }
    await S.whenNothingPending(doc, TIME_LIMIT_MS);
    await S.whenNothingPending(side, TIME_LIMIT_MS);
    assert.equal(doc.data, expected, `${name}: the typist's text`);
    await S.waitUntil(() => watched.version === doc.version, TIME_LIMIT_MS, `${name}: watcher catches up`);
    assert.equal(watched.data, expected, `${name}: the watcher's text`);

    const fresh = await S.freshFetch(server, 'traces', id);
    assert.equal(fresh.data, expected);
    assert.equal(fresh.v, doc.version);
    const rest = await restGet(server, `/api/v1/docs/traces/${encodeURIComponent(id)}`);
    assert.equal(rest.status, 200);
    assert.equal(rest.body.data, expected);
    assert.equal(rest.body.v, doc.version);
    assert.equal(side.data.length, sideOps);
    return {patches: patches.length, version: doc.version, ms: Date.now() - started};
  } finally {
    S.closeAll([typist, watcher, other]);
  }
}

describe('editing traces typed through the sharedb client', () => {
  for (const name of ['friendsforever_flat', 'clownschool_flat', 'sveltecomponent', 'json-crdt-patch']) {
    it(`${name} ends at its endContent on every replica`, T(async () => {
      const r = await typeTrace(name);
      console.log(`# ${name}: ${r.patches} patches -> ${r.version} versions in ${r.ms} ms`);
    }));
  }
});
