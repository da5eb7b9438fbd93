'use strict';
// The native client library (through its example programs) and the
// unmodified sharedb client on the same documents of one otsyncd: the typist
// replays a real trace while sharedb clients edit concurrently, and every
// replica ends equal to a fresh fetch; the minimal editor prints the sharedb
// client's changes as they arrive; the editor (--cursor) and a sharedb client
// with clients/js see each other's cursors (presence) where they are.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const {spawn} = require('child_process');
const S = require('./support');
const presenceType = require('../../clients/js');

presenceType.register(S.ShareDB, S.otText);  // the text-unicode type with transformPresence, same URI

const holder = S.useServer({store: 'sqlite'});
const T = (fn) => S.logged(holder, fn);
const BIN = process.env.OTSYNC_EXAMPLES_DIR;
const TRACES = process.env.OTSYNC_TRACES_DIR || path.resolve(__dirname, '..', '..', '..', 'shared', 'traces');

/** Starts an example program (bounded): {child, done} where done resolves {code, stdout, stderr}. */
function start(program, args, {timeoutMs = 60000} = {}) {
  const child = spawn(path.join(BIN, program), args, {stdio: ['pipe', 'pipe', 'pipe']});
  const out = {stdout: '', stderr: ''};
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${program} timed out\n${out.stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({code, ...out});
    });
  });
  return {child, out, done};
}

describe('native client with sharedb clients', {skip: !BIN && 'OTSYNC_EXAMPLES_DIR not set'}, () => {
  it('a native typist and two sharedb clients editing one document converge', T(async () => {
    const server = holder.server;
    const id = S.uid('native');
    const typist = start('otsync-example-typist', [
      '--url', server.wsUrl, '--doc', id, '--alone', 'false', '--print-text',
      '--trace', path.join(TRACES, 'sequential', 'sveltecomponent.json.gz'),
      '--limit', '400', '--keys-per-second', '100',
    ]);
    typist.child.stdin.end();
    const connections = [await S.connect(server), await S.connect(server)];
    try {
      const docs = connections.map((c) => c.get('docs', id));
      // The typist creates the document; the sharedb clients join once it exists.
      await S.waitUntil(async () => {
        await Promise.all(docs.map((d) => S.fetch(d)));
        return docs.every((d) => d.type);
      }, 20000, 'the typist created the document');
      await Promise.all(docs.map((d) => S.subscribe(d)));
      const rng = S.makeRng(S.fuzzSeed());
      // The sharedb clients only insert: the typist replays a trace whose positions assume the
      // trace's own text, so deletes by others could leave one of its patches past the end of the
      // document (refused locally: "The op is too long for this document"), a race, not a bug.
      const insertOp = (text) => {
        for (let i = 0; i < 100; i++) {
          const op = S.randomOp(rng, text);
          if (!op.some((c) => typeof c === 'object')) return op;
        }
        return ['x'];
      };
      for (let round = 0; round < 60; round++) {
        for (const d of docs) d.submitOp(insertOp(d.data));
        await S.sleep(15);
      }
      await Promise.all(docs.map((d) => S.whenNothingPending(d)));
      const result = await typist.done;
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout.trim().split('\n').pop());
      assert.equal(summary.patches_typed, 400);
      assert.equal(summary.synchronised, true);
      assert.equal(summary.errors, 0);
      const fresh = await S.freshFetch(server, 'docs', id);
      // The sharedb clients stopped before the typist: its last state is the final one.
      assert.equal(summary.version, fresh.v);
      assert.equal(summary.text, fresh.data);
      await S.waitUntil(() => docs.every((d) => d.version === fresh.v), 10000, 'sharedb clients caught up');
      for (const d of docs) assert.equal(d.data, fresh.data);
      for (const c of connections) assert.deepEqual(c.errors, []);
    } finally {
      S.closeAll(connections);
    }
  }));

  it('the typist at typing pace, alone, ends with the trace\'s text, watched by a sharedb client', T(async () => {
    const server = holder.server;
    const id = S.uid('pace');
    const typist = start('otsync-example-typist', [
      '--url', server.wsUrl, '--doc', id, '--print-text', '--keys-per-second', '6', '--limit', '24',
      '--trace', path.join(TRACES, 'sequential', 'sveltecomponent.json.gz'),
    ]);
    typist.child.stdin.end();
    const watcher = await S.connect(server);
    try {
      const doc = watcher.get('docs', id);
      await S.waitUntil(async () => {
        await S.fetch(doc);
        return doc.type;
      }, 20000, 'the typist created the document');
      await S.subscribe(doc);
      const versions = [];
      doc.on('op', () => versions.push(Date.now()));
      const result = await typist.done;
      assert.equal(result.code, 0, result.stderr);  // exit 0: the text matched the trace
      const summary = JSON.parse(result.stdout.trim().split('\n').pop());
      assert.equal(summary.matches_trace, true);
      assert.equal(summary.patches_typed, 24);
      assert.ok(summary.typing_seconds >= 3.5, `24 keystrokes at 6/s take about 4 s, took ${summary.typing_seconds}`);
      await S.waitUntil(() => doc.version === summary.version, 10000, 'the watcher caught up');
      assert.equal(doc.data, summary.text);
      // At typing pace each keystroke is its own op (nothing to compose behind an ack that takes ms).
      assert.ok(versions.length >= 20, `the watcher saw ${versions.length} ops`);
    } finally {
      watcher.close();
    }
  }));

  it('the minimal editor prints what a sharedb client types and types what it reads', T(async () => {
    const server = holder.server;
    const id = S.uid('editor');
    const js = await S.connect(server);
    try {
      const doc = js.get('docs', id);
      await S.subscribe(doc);
      await S.create(doc, 'from js\n');
      const editor = start('otsync-example-editor', ['--url', server.wsUrl, '--doc', id]);
      await S.waitUntil(() => editor.out.stdout.includes('loaded v1'), 20000, 'the editor loaded the document');
      doc.submitOp([8, '😀 js again\n']);
      await S.whenNothingPending(doc);
      await S.waitUntil(() => editor.out.stdout.includes(`remote ${server.alias(js.id)} v2: [8,"😀 js again\\n"]`), 10000,
          'the editor printed the sharedb client\'s op');
      editor.child.stdin.end('from native\n');
      const result = await editor.done;
      assert.equal(result.code, 0, result.stderr);
      const expected = 'from js\n😀 js again\nfrom native\n';
      assert.ok(result.stdout.includes(`text: ${JSON.stringify(expected)}`), result.stdout);
      await S.waitUntil(() => doc.data === expected, 10000, 'the sharedb client received the native edit');
      const fresh = await S.freshFetch(server, 'docs', id);
      assert.equal(fresh.data, expected);
      assert.equal(fresh.v, 3);
      assert.deepEqual(js.errors, []);
    } finally {
      js.close();
    }
  }));

  it('the minimal editor and a sharedb client see each other\'s cursors where they are', T(async () => {
    const server = holder.server;
    const id = S.uid('cursors');
    const js = await S.connect(server);
    let editor = null;
    try {
      const doc = js.get('docs', id);
      await S.subscribe(doc);
      await S.create(doc, 'hello world\n');
      const presence = js.getDocPresence('docs', id);
      const shown = new Map();  // presence id -> value, as the sharedb client shows them
      const errors = [];
      presence.on('error', (e) => errors.push(e));
      presence.on('receive', (pid, value) => (value === null ? shown.delete(pid) : shown.set(pid, value)));
      const done = (what, start) => S.withTimeout(new Promise((resolve, reject) =>
        start((e) => (e ? reject(e) : resolve()))), 10000, what);
      await done('presence subscribe', (k) => presence.subscribe(k));
      const mine = presence.create('js-cursor');
      await done('presence submit', (k) => mine.submit({index: 6, length: 5}, k));  // "world"

      editor = start('otsync-example-editor', ['--url', server.wsUrl, '--doc', id, '--cursor']);
      const out = editor.out;
      // The editor subscribes late: its ps makes the sharedb client send its cursor again.
      await S.waitUntil(() => out.stdout.includes(`presence joined ${server.alias(js.id)} js-cursor 6,11`), 20000,
        'the editor shows the sharedb client\'s selection');
      const nativeId = /presence id (\S+)/.exec(out.stdout)[1];
      // The sharedb client types before its selection: the editor's view of it moves with the text.
      doc.submitOp(['¡']);
      await S.whenNothingPending(doc);
      await S.waitUntil(() => out.stdout.includes('cursor js-cursor 7,12'), 10000, 'the selection moved in the editor');
      // The editor types a line at the end and puts its caret after it: the sharedb client shows it there.
      editor.child.stdin.write('from native 😀\n');
      const expected = '¡hello world\nfrom native 😀\n';
      await S.waitUntil(() => doc.data === expected, 10000, 'the sharedb client has the editor\'s line');
      const end = [...expected].length;
      await S.waitUntil(() => shown.has(nativeId) && shown.get(nativeId).index === end, 10000,
        `the editor's caret at ${end} (shown: ${JSON.stringify(shown.get(nativeId))})`);
      assert.deepEqual(shown.get(nativeId), {index: end, length: 0});
      // The sharedb client types at the editor's caret: not the editor's op, so its caret stays; ours moves.
      doc.submitOp([end, 'js']);
      await S.whenNothingPending(doc);
      await done('presence submit', (k) => mine.submit({index: end + 2, length: 0}, k));
      const moved = `presence updated ${server.alias(js.id)} js-cursor ${end + 2},${end + 2}`;
      await S.waitUntil(() => out.stdout.includes(moved), 10000, 'the editor shows the new caret');
      assert.deepEqual(shown.get(nativeId), {index: end, length: 0});
      editor.child.stdin.end();
      const result = await editor.done;
      editor = null;
      assert.equal(result.code, 0, result.stderr);
      // Its connection closed: the server clears its cursor.
      await S.waitUntil(() => !shown.has(nativeId), 10000, 'the editor\'s cursor left with its connection');
      assert.deepEqual(errors, []);
      assert.deepEqual(js.errors, []);
    } finally {
      if (editor) editor.child.kill('SIGKILL');
      js.close();
    }
  }));
});
