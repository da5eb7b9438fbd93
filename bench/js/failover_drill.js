'use strict';
// Sentinel failover drills for the figures of docs/server.md (*Redis under
// Sentinel*): --drills N (default 10) drills with --redis-min-replicas 1 and
// N without, each as tests/js/failover_test.js runs one (a master, two
// replicas, three sentinels; three otsyncd behind HAProxy; 6 sharedb clients
// typing about 20 edits/s each; the master SIGKILLed 2.5 s in). Prints, per
// setting, the acknowledged ops lost and duplicated in all, and the median
// and worst time from the kill until every instance was ready again and until
// the first op was acknowledged again. --topology cluster runs the drills on a
// Redis Cluster instead (three masters with a replica each; the document's
// master is killed and started again once every instance is ready).
// --disruption lagging (Sentinel) freezes the preferred replica for a second
// before the kill, so that the replica behind the other is promoted (see
// tests/js/support/failover.js); --min-replicas 1 runs one setting only.
//
//   node bench/js/failover_drill.js [--drills 10] [--topology sentinel|cluster]
//        [--disruption kill|lagging] [--min-replicas 0|1] [--otsyncd-args '...'] [--json]

const path = require('path');
const {failoverDrill} = require(path.join(__dirname, '..', '..', 'tests', 'js', 'support', 'failover'));

const args = process.argv.slice(2);
const drills = Number(args[args.indexOf('--drills') + 1]) || 10;
const json = args.includes('--json');
const topology = args.includes('--topology') ? args[args.indexOf('--topology') + 1] : 'sentinel';
if (!['sentinel', 'cluster'].includes(topology)) throw new Error('--topology sentinel|cluster');
const disruption = args.includes('--disruption') ? args[args.indexOf('--disruption') + 1] : 'kill';
if (!['kill', 'lagging'].includes(disruption)) throw new Error('--disruption kill|lagging');
const otsyncdArgs = args.includes('--otsyncd-args') ? args[args.indexOf('--otsyncd-args') + 1] : '';
const settings = args.includes('--min-replicas') ? [Number(args[args.indexOf('--min-replicas') + 1])] : [1, 0];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

(async () => {
  const rows = [];
  for (const minReplicas of settings) {
    const runs = [];
    for (let i = 0; i < drills; i++) {
      const r = await failoverDrill({topology, minReplicas, disruption, otsyncdArgs});
      runs.push(r);
      process.stderr.write(`${topology} min-replicas ${minReplicas} drill ${i + 1}/${drills}: ${r.acked} acked, ` +
        `${r.lost.length} lost, ${r.duplicated.length} twice, converged ${r.converged}, ready ${r.readyAgainMs} ms, ` +
        `first ack ${r.firstAckAfterKillMs} ms, lost by the store ${r.putBack} put back / ${r.gone} gone` +
        `${disruption === 'lagging' ? `, lagging replica promoted: ${r.promotedLagging}` : ''}\n`);
    }
    rows.push({
      topology, disruption, minReplicas, drills,
      laggingPromoted: runs.filter((r) => r.promotedLagging).length,
      acked: runs.reduce((n, r) => n + r.acked, 0),
      lost: runs.reduce((n, r) => n + r.lost.length, 0),
      duplicated: runs.reduce((n, r) => n + r.duplicated.length, 0),
      diverged: runs.filter((r) => !r.converged).length,
      putBack: runs.reduce((n, r) => n + r.putBack, 0),
      gone: runs.reduce((n, r) => n + r.gone, 0),
      readyMedianMs: median(runs.map((r) => r.readyAgainMs)),
      readyWorstMs: Math.max(...runs.map((r) => r.readyAgainMs)),
      firstAckMedianMs: median(runs.map((r) => r.firstAckAfterKillMs)),
    });
  }
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  console.log('| topology | disruption | --redis-min-replicas | drills | acked ops | lost | twice | diverged | lost by Redis, put back / gone | ready again (median / worst) | first ack after the kill (median) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const what = r.disruption === 'lagging' ? `lagging replica promoted in ${r.laggingPromoted}` : 'master killed';
    console.log(`| ${r.topology} | ${what} | ${r.minReplicas} | ${r.drills} | ${r.acked} | ${r.lost} | ${r.duplicated} | ${r.diverged} | ` +
      `${r.putBack} / ${r.gone} | ` +
      `${r.readyMedianMs} / ${r.readyWorstMs} ms | ${r.firstAckMedianMs} ms |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
