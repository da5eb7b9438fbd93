'use strict';
// Redis under Sentinel (a master, two replicas, three sentinels on loopback;
// scripts/cluster.sh CLUSTER_REDIS=sentinel): three otsyncd on
// redis-sentinel:// behind HAProxy while unmodified sharedb clients type and
// the master is SIGKILLed. A replica is promoted; every instance finds it and
// turns ready by itself; every client converges; no acknowledged op is there
// twice. With --redis-min-replicas 1 no acknowledged op is lost; without it
// the count is reported (asynchronous replication may lose the last ones).
// The same on a Redis Cluster (three masters with a replica each): the
// document's master is SIGKILLed, its replica takes over; and the document's
// slot migrated to another master and back under the same load. And the
// replica *behind* the other promoted (it has the lower replica-priority and
// was frozen for a second before the kill): with --redis-min-replicas 1 no
// commit is confirmed until the other has resynchronised in full, so the
// clients' resubscriptions meanwhile must wait for the store (the sharedb
// client never retries one answered with an error: it would stay
// unsubscribed and never converge).
// bench/js/failover_drill.js repeats the drill for figures.
//
// Bounded: every wait has a timeout; every process is stopped by PID.

const {describe, it} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');
const {failoverDrill} = require('./support/failover');

const skip = S.serverKind() === 'sharedb' ? 'the ShareDB peer has no Redis' : false;

describe('Sentinel and Redis Cluster failover under load', {skip}, () => {
  for (const [topology, minReplicas, disruption] of [['sentinel', 1, 'kill'], ['sentinel', 0, 'kill'],
    ['sentinel', 1, 'lagging'], ['cluster', 1, 'kill'], ['cluster', 0, 'migrate']]) {
    const what = {kill: 'master SIGKILLed', lagging: 'master SIGKILLed, the lagging replica promoted',
      migrate: 'the document\'s slot migrated there and back twice'}[disruption];
    it(`${topology}: ${what} mid-load, --redis-min-replicas ${minReplicas}`, {timeout: 240000}, async () => {
      const r = await failoverDrill({topology, minReplicas, disruption, log: (m) => console.log(`  ${m}`)});
      console.log(`  ${topology} ${disruption}, min-replicas ${minReplicas}: ${r.acked} acked, ${r.lost.length} lost, ` +
        `${r.duplicated.length} twice, ${r.errors} errors ${JSON.stringify(r.errorCodes)}; ready again ${r.readyAgainMs} ms after the kill, ` +
        `first ack after it ${r.firstAckAfterKillMs} ms, ${r.redirects} redirections followed; ` +
        `ops the store lost: ${r.putBack} put back by an instance, ${r.gone} gone`);
      assert.ok(r.converged, 'every client and instance converged');
      assert.deepEqual(r.duplicated, []);
      assert.ok(r.readyAgainMs !== null, 'every instance ready again by itself');
      assert.ok(r.firstAckAfterKillMs !== null, 'acks resumed after the failover');
      assert.ok(r.acked > 100, `${r.acked} ops acked`);
      if (minReplicas > 0 || disruption === 'migrate') assert.deepEqual(r.lost, [], 'no acknowledged op lost');
      if (disruption === 'migrate') assert.ok(r.redirects > 0, 'the instances followed MOVED/ASK redirections');
      if (disruption === 'lagging') console.log(`  the lagging replica was promoted: ${r.promotedLagging}`);
    });
  }
});
