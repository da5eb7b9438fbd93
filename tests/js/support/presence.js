'use strict';
// Presence with the unmodified sharedb client and clients/js's text-unicode
// (transformPresence added): subscribe a doc presence that records what it
// receives, local presences that record their errors, and bounded waits.

const assert = require('node:assert/strict');
const {withTimeout, waitUntil} = require('./util');
const {getDoc, create, subscribe, whenNothingPending} = require('./client');

function withCallback(what, start, ms = 10000) {
  return withTimeout(new Promise((resolve, reject) => start((e, v) => (e ? reject(e) : resolve(v)))), ms, what);
}

/** A subscribed doc presence; `received` maps each remote presence id to its latest value. */
async function docPresence(connection, collection, id) {
  const presence = connection.getDocPresence(collection, id);
  presence.errors = [];
  presence.on('error', (e) => presence.errors.push(e));
  presence.received = new Map();
  presence.on('receive', (pid, value) => {
    if (value === null) presence.received.delete(pid);
    else presence.received.set(pid, value);
  });
  await withCallback('presence subscribe', (k) => presence.subscribe(k));
  return presence;
}

function localPresence(presence, id) {
  const l = presence.create(id);
  l.errors = [];
  l.on('error', (e) => l.errors.push(e));
  return l;
}

const submitPresence = (l, value) =>
  withCallback(`submit presence ${JSON.stringify(value)}`, (k) => l.submit(value, k));

/** Waits until `presence` shows `pid` with a value deep-equal to `value` (null: gone). */
async function expectShown(presence, pid, value, ms = 10000) {
  await waitUntil(() => {
    const v = presence.received.has(pid) ? presence.received.get(pid) : null;
    try {
      assert.deepEqual(v, value);
      return true;
    } catch (_) {
      return false;
    }
  }, ms, () => `presence ${pid} = ${JSON.stringify(value)} (shown: ${JSON.stringify(presence.received.get(pid) ?? null)}; ` +
    `the client's state: ${remoteState(presence, pid)})`);
}

/** What the sharedb client holds for a remote presence: why it shows what it shows. */
function remoteState(presence, pid) {
  const remote = presence._remotePresenceInstances?.[pid];
  if (!remote) return 'none';
  const cache = remote._opCache ? Object.keys(remote._opCache).join(',') : null;
  return JSON.stringify({pending: remote._pending, presenceVersion: remote.presenceVersion, value: remote.value,
    opCache: cache, docVersion: remote._doc?.version, docPending: remote._doc?.hasPending()});
}

/** Gets, optionally creates with `text`, and subscribes a document. */
async function openDoc(connection, collection, id, text) {
  const doc = getDoc(connection, collection, id);
  if (text !== undefined) await create(doc, text);
  await subscribe(doc);
  return doc;
}

/**
 * Every client types at random places and moves its cursor (`locals[i]`, shown to the others as
 * `user-i`), `opsPerRound` each per round; after each round, at quiescence, every replica is equal
 * and every client shows every other's cursor exactly where its owner holds it.
 */
async function typeWithCursors(docs, presences, locals, {rounds = 4, opsPerRound = 6, seed = 1, ms = 15000} = {}) {
  let state = seed;
  const rand = (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % n;
  };
  const len = (doc) => [...doc.data].length;
  for (let round = 0; round < rounds; round++) {
    const work = [];
    for (let i = 0; i < docs.length; i++) {
      const doc = docs[i];
      for (let k = 0; k < opsPerRound; k++) {
        const at = rand(len(doc) + 1);
        if (rand(3) === 0 && len(doc) > 2) {
          doc.submitOp([Math.min(at, len(doc) - 1), {d: 1}]);
        } else {
          doc.submitOp([at, rand(5) === 0 ? 'é😀' : 'ab']);
        }
        const caret = rand(len(doc) + 1);
        locals[i].submit({index: caret, length: rand(Math.max(1, len(doc) - caret + 1))});
      }
      work.push(whenNothingPending(doc, ms));
    }
    await Promise.all(work);
    await waitUntil(() => docs.every((d) => d.version === docs[0].version && d.data === docs[0].data), ms,
      `replicas converged in round ${round}`);
    for (let i = 0; i < docs.length; i++) {
      for (let j = 0; j < docs.length; j++) {
        if (i !== j) {
          await expectShown(presences[i], `user-${j}`, locals[j].value, ms).catch((e) => {
            e.message += ` [client ${i}, round ${round}, seed ${seed}]`;
            throw e;
          });
        }
      }
    }
  }
}

module.exports = {typeWithCursors, withCallback, docPresence, localPresence, submitPresence, expectShown, openDoc};
