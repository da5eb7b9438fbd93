'use strict';
// Presence across instances: three otsyncd on one Redis (scripts/cluster.sh),
// each client on its own instance, with the unmodified sharedb client and
// clients/js's text-unicode. A cursor published on one instance reaches the
// clients of the others; after a Redis restart every cursor shows again; a late subscriber on another instance gets every
// cursor (its `pr` crosses); under concurrent typing every client shows every
// other's cursor where its owner holds it (randomised); an instance that is
// SIGKILLed leaves no ghost cursor (the others clear its presences when its
// heartbeat stops, --presence-lease-ms); one that is stopped says goodbye and
// its cursors go at once.
//
// Bounded: every wait has a timeout; the processes are stopped by PID.

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');
const P = require('./support/presence');
const {execFileSync} = require('child_process');
const {Cluster, CLUSTER_SCRIPT} = require('./support/cluster');
const presenceType = require('../../clients/js');

presenceType.register(S.ShareDB, S.otText);

const C = 'presence';
const LEASE_MS = 1000;
const skip = S.serverKind() === 'sharedb' ? 'the ShareDB peer has no instances' : false;

async function metric(server, name) {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const found = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return found ? Number(found[1]) : null;
}

async function readyz(server) {
  try {
    return (await fetch(`${server.httpUrl}/readyz`)).status;
  } catch (_) {
    return 0;
  }
}

describe('presence across three instances on one Redis', {skip}, () => {
  const cluster = new Cluster({OTSYNC_ARGS: `--presence-lease-ms ${LEASE_MS}`});
  before(() => cluster.start());
  after(() => cluster.stop());

  /** One client per instance (instance i: client i), on one document with `text`. */
  async function spread(id, text) {
    const servers = cluster.instances();
    const connections = [];
    for (const server of servers) connections.push(await S.connect(server));
    const docs = [await P.openDoc(connections[0], C, id, text)];
    for (let i = 1; i < connections.length; i++) docs.push(await P.openDoc(connections[i], C, id));
    const presences = [];
    for (const connection of connections) presences.push(await P.docPresence(connection, C, id));
    return {servers, connections, docs, presences};
  }

  const withLogs = (fn) => async () => {
    try {
      await fn();
    } catch (e) {
      e.message += `\n${cluster.logs()}`;
      throw e;
    }
  };

  it('relays cursors between instances, and brings them to a late subscriber on another instance', withLogs(async () => {
    const id = S.uid('relay');
    const {servers, connections, docs, presences} = await spread(id, 'hello world');
    let late;
    try {
      const caret = P.localPresence(presences[0], 'on-1');
      await P.submitPresence(caret, {index: 5, length: 0});
      await P.expectShown(presences[1], 'on-1', {index: 5, length: 0});
      await P.expectShown(presences[2], 'on-1', {index: 5, length: 0});
      // An edit on instance 3 before the caret: the cursor follows on every instance.
      await S.submitOp(docs[2], ['>> ']);
      await S.waitUntil(() => docs.every((d) => d.data === '>> hello world'), 10000, 'every replica has the insert');
      await P.submitPresence(caret, {index: 8, length: 0});
      await P.expectShown(presences[1], 'on-1', {index: 8, length: 0});
      await P.expectShown(presences[2], 'on-1', {index: 8, length: 0});
      const selection = P.localPresence(presences[1], 'on-2');
      await P.submitPresence(selection, {index: 0, length: 2, name: 'Grace'});
      // A client that subscribes later on instance 3 asks everyone (`pr`), across instances too.
      late = await S.connect(servers[2]);
      await P.openDoc(late, C, id);
      const watcher = await P.docPresence(late, C, id);
      await P.expectShown(watcher, 'on-1', {index: 8, length: 0});
      await P.expectShown(watcher, 'on-2', {index: 0, length: 2, name: 'Grace'});
      // Destroyed on instance 2: gone everywhere.
      await P.withCallback('destroy', (k) => selection.destroy(k));
      await P.expectShown(watcher, 'on-2', null);
      await P.expectShown(presences[0], 'on-2', null);
      for (const p of [...presences, watcher]) assert.deepEqual(p.errors, []);
      assert.ok(await metric(servers[0], 'otsync_presence_relayed_out_total') > 0);
      assert.ok(await metric(servers[2], 'otsync_presence_relayed_in_total') > 0);
      assert.equal(await metric(servers[1], 'otsync_redis_presence_up'), 1);
    } finally {
      S.closeAll(late ? [...connections, late] : connections);
    }
  }));

  it('keeps every remote cursor where its owner has it while clients on three instances type (randomised)',
    withLogs(async () => {
      const id = S.uid('concurrent');
      const {connections, docs, presences} = await spread(id, 'the quick brown fox');
      try {
        const locals = presences.map((p, i) => P.localPresence(p, `user-${i}`));
        await P.typeWithCursors(docs, presences, locals, {rounds: 10, seed: S.fuzzSeed()});
        for (const p of presences) assert.deepEqual(p.errors, []);
        for (const l of locals) assert.deepEqual(l.errors, []);
      } finally {
        S.closeAll(connections);
      }
    }));

  it('shows every cursor again after Redis restarts (subscriptions renewed: cleared, then asked again)',
    withLogs(async () => {
      const id = S.uid('redis-restart');
      const {servers, connections, docs, presences} = await spread(id, 'abcdef');
      try {
        const locals = presences.map((p, i) => P.localPresence(p, `user-${i}`));
        for (let i = 0; i < 3; i++) await P.submitPresence(locals[i], {index: i, length: 1});
        const expectAll = async (ms) => {
          for (let i = 0; i < 3; i++) {
            for (let j = 0; j < 3; j++) {
              if (i !== j) await P.expectShown(presences[i], `user-${j}`, locals[j].value, ms);
            }
          }
        };
        await expectAll(10000);
        execFileSync(CLUSTER_SCRIPT, ['redis-stop', cluster.dir], {stdio: 'ignore', timeout: 30000});
        await S.sleep(2 * LEASE_MS);  // past the lease: every instance takes the others for lost
        execFileSync(CLUSTER_SCRIPT, ['redis-start', cluster.dir], {stdio: 'ignore', timeout: 30000});
        // The presence bus and the store reconnect each on its own backoff: wait for both.
        await S.waitUntil(async () => {
          const ups = await Promise.all(servers.map((s) => metric(s, 'otsync_redis_presence_up').catch(() => 0)));
          return ups.every((u) => u === 1);
        }, 20000, 'every instance reconnected its presence bus');
        await S.waitUntil(async () => {
          const ready = await Promise.all(servers.map((s) => readyz(s)));
          return ready.every((status) => status === 200);
        }, 20000, 'every instance ready again (its store reconnected)');
        await expectAll(15000);
        // And they keep following: a move and an edit after the restart.
        await P.submitPresence(locals[0], {index: 4, length: 0});
        await S.submitOp(docs[1], ['__']);
        await S.waitUntil(() => docs.every((d) => d.data === '__abcdef'), 10000, 'every replica has the insert');
        await P.expectShown(presences[2], 'user-0', {index: 6, length: 0});
        await P.expectShown(presences[1], 'user-0', {index: 6, length: 0});
        for (const p of presences) assert.deepEqual(p.errors, []);
      } finally {
        S.closeAll(connections);
      }
    }));

  it('clears the cursors of an instance that dies (SIGKILL: its heartbeat stops) and of one that stops (goodbye)',
    withLogs(async () => {
      const id = S.uid('dies');
      const {servers, connections, presences} = await spread(id, 'abcdef');
      try {
        for (let i = 0; i < 3; i++) await P.submitPresence(P.localPresence(presences[i], `user-${i}`), {index: i, length: 0});
        for (const [i, j] of [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1]]) {
          await P.expectShown(presences[i], `user-${j}`, {index: j, length: 0});
        }
        // Instance 2 dies without a word: the others clear its client's cursor after the lease.
        const killed = Date.now();
        process.kill(servers[1].pid, 'SIGKILL');
        await P.expectShown(presences[0], 'user-1', null, 4 * LEASE_MS + 5000);
        await P.expectShown(presences[2], 'user-1', null, 4 * LEASE_MS + 5000);
        const clearedMs = Date.now() - killed;
        assert.ok(clearedMs >= LEASE_MS / 2, `cleared after ${clearedMs} ms: before the lease could have run out`);
        assert.ok(await metric(servers[0], 'otsync_presence_instances_lost_total') >= 1);
        assert.equal(await metric(servers[0], 'otsync_presence_remote'), 1);  // user-2's, on instance 3
        // The survivors still see each other.
        await P.expectShown(presences[0], 'user-2', {index: 2, length: 0});
        // Instance 3 is stopped: its connections' presences go with it.
        process.kill(servers[2].pid, 'SIGTERM');
        await P.expectShown(presences[0], 'user-2', null, 10000);
        assert.deepEqual(presences[0].errors, []);
      } finally {
        S.closeAll(connections);
      }
    }));
});
