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
//
//   node bench/js/failover_drill.js [--drills 10] [--topology sentinel|cluster] [--json]

const path = require('path');
const {failoverDrill} = require(path.join(__dirname, '..', '..', 'tests', 'js', 'support', 'failover'));

const args = process.argv.slice(2);
const drills = Number(args[args.indexOf('--drills') + 1]) || 10;
const json = args.includes('--json');
const topology = args.includes('--topology') ? args[args.indexOf('--topology') + 1] : 'sentinel';
if (!['sentinel', 'cluster'].includes(topology)) throw new Error('--topology sentinel|cluster');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

(async () => {
  const rows = [];
  for (const minReplicas of [1, 0]) {
    const runs = [];
    for (let i = 0; i < drills; i++) {
      const r = await failoverDrill({topology, minReplicas});
      runs.push(r);
      process.stderr.write(`${topology} min-replicas ${minReplicas} drill ${i + 1}/${drills}: ${r.acked} acked, ` +
        `${r.lost.length} lost, ${r.duplicated.length} twice, converged ${r.converged}, ready ${r.readyAgainMs} ms, ` +
        `first ack ${r.firstAckAfterKillMs} ms, lost by the store ${r.putBack} put back / ${r.gone} gone\n`);
    }
    rows.push({
      topology, minReplicas, drills,
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
  console.log('| topology | --redis-min-replicas | drills | acked ops | lost | twice | diverged | lost by Redis, put back / gone | ready again (median / worst) | first ack after the kill (median) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.topology} | ${r.minReplicas} | ${r.drills} | ${r.acked} | ${r.lost} | ${r.duplicated} | ${r.diverged} | ` +
      `${r.putBack} / ${r.gone} | ` +
      `${r.readyMedianMs} / ${r.readyWorstMs} ms | ${r.firstAckMedianMs} ms |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
