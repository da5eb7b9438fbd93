'use strict';
// The Docker deployment, really run (podman or Docker: scripts/container.sh).
// The shipped docker/Dockerfile is built (Debian base images made locally when
// no registry is reachable), then:
//   - one otsyncd container: runs as a non-root user, answers /readyz, keeps its
//     SQLite data in a volume across a stop and a new container, and stops
//     cleanly on SIGTERM (exit 0, every WebSocket closed with 1001);
//   - the shipped docker/compose.yaml with podman-compose (or docker compose):
//     Redis, three otsyncd and HAProxy with the shipped docker/haproxy.cfg
//     (Redis and HAProxy from Debian's packages where their official images
//     cannot be pulled: docker/test/), published on loopback only. Unmodified
//     sharedb clients on several connections through HAProxy type and converge,
//     and stay converged with nothing acknowledged lost when one otsyncd
//     container is killed and when one is stopped gracefully;
//   - the shipped docker/compose.sentinel.yaml: the master killed, a replica
//     promoted by the sentinels, every instance ready again by itself, the
//     document still there and writable.
//
// Skipped without a container engine, unless OTSYNC_REQUIRE_CONTAINERS=1 (CI).
// Bounded: every wait has a timeout; every container, network and volume made
// here is removed at the end (names carry this run's id).

const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {execFile, execFileSync, spawnSync} = require('child_process');
const execFileAsync = require('util').promisify(execFile);
const http = require('http');
const net = require('net');
const path = require('path');
const S = require('./support');
const {RawClient} = require('./support/raw');

const ROOT = path.resolve(__dirname, '..', '..');
const CONTAINER_SCRIPT = path.join(ROOT, 'scripts', 'container.sh');
const RUN_ID = `${process.pid}-${Math.random().toString(36).slice(2, 7)}`;

function hasEngine() {
  for (const [cmd, args] of [['podman', ['--version']], ['docker', ['info']]]) {
    if (spawnSync(cmd, args, {stdio: 'ignore', timeout: 20000}).status === 0) return cmd;
  }
  return null;
}
const engine = process.env.CONTAINER_ENGINE || hasEngine();
const required = process.env.OTSYNC_REQUIRE_CONTAINERS === '1';
const skip = S.serverKind() === 'sharedb' ? 'the ShareDB peer has no image' :
  !engine && !required ? 'no container engine (podman or a Docker engine)' : false;

// podman here needs runc and ulimits within the machine's limits (docker/podman-containers.conf).
const ENV = {...process.env,
  ...(engine === 'podman' ? {CONTAINERS_CONF: path.join(ROOT, 'docker', 'podman-containers.conf')} : {})};

function run(args, {timeout = 60000, allowFail = false, withStderr = false} = {}) {
  const r = spawnSync(engine, args, {env: ENV, encoding: 'utf8', timeout});
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${engine} ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  }
  return ((r.stdout || '') + (withStderr ? r.stderr || '' : '')).trim();
}

// The same without blocking the event loop (clients must answer close frames meanwhile).
async function runAsync(args, {timeout = 60000} = {}) {
  const {stdout} = await execFileAsync(engine, args, {env: ENV, timeout});
  return stdout.trim();
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

function httpGet(url, ms = 3000) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({status: res.statusCode, body}));
    });
    req.setTimeout(ms, () => req.destroy());
    req.on('error', () => resolve({status: 0, body: ''}));
  });
}

const server = (port) => ({wsUrl: `ws://127.0.0.1:${port}/ws`, httpUrl: `http://127.0.0.1:${port}`});

async function waitReady(port, ms, what) {
  await S.waitUntil(async () => (await httpGet(`http://127.0.0.1:${port}/readyz`)).status === 200, ms,
    `${what}: /readyz 200 on 127.0.0.1:${port}`, 250);
}

// A sharedb connection that reconnects through `port` whenever its socket closes.
async function resilientClient(port) {
  const conn = await S.connect(server(port), {timeout: 20000});
  conn.stopped = false;
  conn.reconnects = 0;
  conn.on('state', (state) => {
    if (state !== 'disconnected' || conn.stopped) return;
    conn.reconnects++;
    setTimeout(() => {
      if (!conn.stopped) conn.bindToSocket(new S.WebSocket(server(port).wsUrl));
    }, 100 + Math.random() * 200);
  });
  return conn;
}

function submit(doc, op, ms = 20000) {
  return S.withTimeout(new Promise((resolve) => doc.submitOp(op, (e) => resolve(e || null))), ms, 'submit')
    .catch((e) => e);
}

// Each client types `count` unique tokens between existing ones; returns the acked tokens.
async function typeTokens(docs, count, tag) {
  const acked = [];
  await Promise.all(docs.map(async (doc, i) => {
    for (let k = 0; k < count; k++) {
      const token = `<${tag}${i}.${k}>`;
      const text = doc.data || '';
      const boundaries = [0];
      for (let p = text.indexOf('>'); p !== -1; p = text.indexOf('>', p + 1)) boundaries.push(p + 1);
      const at = boundaries[Math.floor(Math.random() * boundaries.length)];
      const error = await submit(doc, at ? [at, token] : [token]);
      if (error) {
        await S.sleep(200);
        continue;
      }
      acked.push(token);
      await S.sleep(20 + Math.random() * 20);
    }
  }));
  return acked;
}

async function expectConverged(docs, port, collection, id, acked) {
  await Promise.all(docs.map((d) => S.whenNothingPending(d, 30000)));
  const fresh = await S.freshFetch(server(port), collection, id);
  await S.waitUntil(() => docs.every((d) => d.version === fresh.v && d.data === fresh.data), 30000,
    'every client converged with a fresh fetch', 50);
  for (const token of acked) {
    assert.equal(fresh.data.split(token).length - 1, 1, `acknowledged ${token} is in the document exactly once`);
  }
  return fresh;
}

describe('the Docker deployment (container engine: ' + (engine || 'none') + ')', {skip}, () => {
  let imageBuilt = false;

  before(() => {
    if (!engine) throw new Error('OTSYNC_REQUIRE_CONTAINERS=1 but no container engine: apt-get install podman runc');
    const started = Date.now();
    const out = execFileSync(CONTAINER_SCRIPT, ['build'], {env: ENV, encoding: 'utf8', timeout: 40 * 60000,
      stdio: ['ignore', 'pipe', 'inherit']});
    console.log(`  ${out.trim().split('\n').pop()} (${Math.round((Date.now() - started) / 1000)} s with the base)`);
    imageBuilt = true;
  });

  it('one container: non-root, ready, data kept in a volume, clean stop on SIGTERM', {timeout: 240000}, async () => {
    assert.ok(imageBuilt);
    const name = `otsync-test-single-${RUN_ID}`;
    const volume = `otsync-test-data-${RUN_ID}`;
    const port = await freePort();
    const start = (n) => run(['run', '-d', '--name', n, '-p', `127.0.0.1:${port}:8080`, '-v', `${volume}:/var/lib/otsync`,
      '-e', 'OTSYNC_DRAIN_DELAY_MS=300', 'otsyncd']);
    try {
      start(name);
      await waitReady(port, 60000, 'the container');
      // The process runs as the image's otsync user, never root.
      const uid = run(['exec', name, 'sh', '-c', 'stat -c %u /proc/1']);
      assert.notEqual(uid, '0', 'otsyncd runs as a non-root user');
      assert.equal(run(['exec', name, 'id', '-un']), 'otsync');

      const conn = await S.connect(server(port));
      const id = S.uid('volume');
      const doc = S.getDoc(conn, 'notes', id);
      await S.create(doc, 'kept ');
      await S.submitOp(doc, [5, 'across restarts']);
      const version = doc.version;
      conn.close();

      // SIGTERM: exit 0, open WebSockets closed with 1001 (going away).
      const raw = await RawClient.open(server(port));
      const closed = raw.closed;
      const stopped = Date.now();
      await runAsync(['stop', '--time', '20', name], {timeout: 40000});
      const info = await S.withTimeout(closed, 20000, 'the WebSocket close');
      assert.equal(info.code, 1001, `close code ${info.code} ${info.reason}`);
      assert.equal(run(['inspect', '--format', '{{.State.ExitCode}}', name]), '0', 'exit status 0 on SIGTERM');
      const stopMs = Date.now() - stopped;
      console.log(`  stopped in ${stopMs} ms`);
      assert.ok(stopMs < 10000, `a graceful stop took ${stopMs} ms`);

      // A new container on the same volume has the document.
      run(['rm', name]);
      start(name);
      await waitReady(port, 60000, 'the new container');
      const fresh = await S.freshFetch(server(port), 'notes', id);
      assert.equal(fresh.v, version);
      assert.equal(fresh.data, 'kept across restarts');
    } finally {
      run(['rm', '-f', name], {allowFail: true});
      run(['volume', 'rm', '-f', volume], {allowFail: true});
    }
  });

  describe('the compose topology: Redis, three otsyncd, HAProxy', () => {
    const project = `otsynctest${RUN_ID.replace(/[^a-z0-9]/g, '')}`;
    let port = 0;
    let compose = null;
    let composeEnv = null;
    const containerOf = (service) => `${project}_${service}_1`;

    before(async () => {
      execFileSync(CONTAINER_SCRIPT, ['test-images'], {env: ENV, timeout: 20 * 60000,
        stdio: ['ignore', 'inherit', 'inherit']});
      port = await freePort();
      compose = engine === 'podman' ? ['podman-compose'] : ['docker', 'compose'];
      // Official redis/haproxy images where they can be pulled: OTSYNC_TEST_OFFICIAL_IMAGES=1.
      const official = process.env.OTSYNC_TEST_OFFICIAL_IMAGES === '1';
      composeEnv = {...ENV, OTSYNC_PUBLISH: `127.0.0.1:${port}`, OTSYNC_IMAGE: 'otsyncd',
        ...(official ? {} : {OTSYNC_REDIS_IMAGE: 'otsync-test-redis', OTSYNC_HAPROXY_IMAGE: 'otsync-test-haproxy'})};
      await execFileAsync(compose[0], [...compose.slice(1), '-p', project, '-f', path.join(ROOT, 'docker', 'compose.yaml'),
        'up', '-d'], {env: composeEnv, timeout: 180000});
      await waitReady(port, 90000, 'HAProxy in front of the instances');
    });

    after(async () => {
      if (!compose) return;
      await execFileAsync(compose[0], [...compose.slice(1), '-p', project, '-f', path.join(ROOT, 'docker', 'compose.yaml'),
        'down', '-v'], {env: composeEnv, timeout: 180000}).catch((e) => console.log(`  down: ${e.message}`));
      // Whatever down left (a failed start).
      const left = run(['ps', '-aq', '--filter', `label=io.podman.compose.project=${project}`], {allowFail: true});
      if (left) run(['rm', '-f', ...left.split('\n')], {allowFail: true});
      run(['volume', 'rm', '-f', `${project}_redis-data`, `${project}_otsync-shared`], {allowFail: true});
      run(['network', 'rm', '-f', `${project}_default`], {allowFail: true});
    });

    it('sharedb clients through HAProxy converge, and stay converged when an instance is killed and when one is ' +
       'stopped gracefully', {timeout: 300000}, async () => {
      const conns = [];
      try {
        for (let i = 0; i < 6; i++) conns.push(await resilientClient(port));
        const id = S.uid('compose');
        const docs = conns.map((c) => S.getDoc(c, 'notes', id));
        await S.create(docs[0], '');
        await Promise.all(docs.map((d) => S.subscribe(d, 20000)));
        const acked = [];
        acked.push(...await typeTokens(docs, 15, 'a'));
        await expectConverged(docs, port, 'notes', id, acked);

        // SIGKILL one instance mid-typing: its clients reconnect through HAProxy and resend.
        const typing = typeTokens(docs, 20, 'k');
        await S.sleep(400);
        await runAsync(['kill', '--signal', 'KILL', containerOf('otsync1')]);
        acked.push(...await typing);
        await expectConverged(docs, port, 'notes', id, acked);
        const afterKill = conns.reduce((n, c) => n + c.reconnects, 0);
        assert.ok(afterKill > 0, 'the killed instance had clients, which reconnected through HAProxy');

        // A graceful stop (SIGTERM): readiness drops, HAProxy drains it, nothing acknowledged is lost.
        const typing2 = typeTokens(docs, 20, 's');
        await S.sleep(400);
        await runAsync(['stop', '--time', '20', containerOf('otsync2')], {timeout: 60000});
        assert.equal(run(['inspect', '--format', '{{.State.ExitCode}}', containerOf('otsync2')]), '0',
          'a gracefully stopped instance exits 0');
        // It drained: not ready first (HAProxy stops routing to it), then its connections closed.
        const stopLog = run(['logs', containerOf('otsync2')], {withStderr: true});  // otsyncd logs to stderr
        for (const event of ['"signal"', '"draining"', '"closing_connections"', '"stopped"']) {
          assert.ok(stopLog.includes(event), `otsync2's log has ${event}: ${stopLog.slice(-1500)}`);
        }
        acked.push(...await typing2);
        const fresh = await expectConverged(docs, port, 'notes', id, acked);
        const afterStop = conns.reduce((n, c) => n + c.reconnects, 0);
        assert.ok(afterStop > afterKill, 'the stopped instance had clients, which reconnected through HAProxy');
        assert.ok(acked.length > 60, `${acked.length} ops acknowledged`);
        console.log(`  ${acked.length} ops acknowledged over 6 connections; document at v${fresh.v}; ` +
          `${afterKill} reconnections after the kill, ${afterStop - afterKill} after the graceful stop`);
      } finally {
        for (const c of conns) c.stopped = true;
        S.closeAll(conns);
      }
    });
  });

  describe('the Sentinel variant: a master, a replica, three sentinels, three otsyncd, HAProxy', () => {
    const project = `otsyncsent${RUN_ID.replace(/[^a-z0-9]/g, '')}`;
    const file = path.join(ROOT, 'docker', 'compose.sentinel.yaml');
    let port = 0;
    let compose = null;
    let composeEnv = null;

    before(async () => {
      port = await freePort();
      compose = engine === 'podman' ? ['podman-compose'] : ['docker', 'compose'];
      const official = process.env.OTSYNC_TEST_OFFICIAL_IMAGES === '1';
      composeEnv = {...ENV, OTSYNC_PUBLISH: `127.0.0.1:${port}`, OTSYNC_IMAGE: 'otsyncd',
        ...(official ? {} : {OTSYNC_REDIS_IMAGE: 'otsync-test-redis', OTSYNC_HAPROXY_IMAGE: 'otsync-test-haproxy'})};
      await execFileAsync(compose[0], [...compose.slice(1), '-p', project, '-f', file, 'up', '-d'],
        {env: composeEnv, timeout: 180000});
      await waitReady(port, 90000, 'HAProxy in front of the instances on Sentinel');
    });

    after(async () => {
      if (!compose) return;
      await execFileAsync(compose[0], [...compose.slice(1), '-p', project, '-f', file, 'down', '-v'],
        {env: composeEnv, timeout: 180000}).catch((e) => console.log(`  down: ${e.message}`));
      const left = run(['ps', '-aq', '--filter', `label=io.podman.compose.project=${project}`], {allowFail: true});
      if (left) run(['rm', '-f', ...left.split('\n')], {allowFail: true});
      const volumes = ['redis-master-data', 'redis-replica-data', 'sentinel1-data', 'sentinel2-data', 'sentinel3-data',
        'otsync-shared'].map((v) => `${project}_${v}`);
      run(['volume', 'rm', '-f', ...volumes], {allowFail: true});
      run(['network', 'rm', '-f', `${project}_default`], {allowFail: true});
    });

    const sentinels = ['sentinel1', 'sentinel2', 'sentinel3'];
    const sentinelCli = (name, ...args) =>
      run(['exec', `${project}_${name}_1`, 'redis-cli', '-p', '26379', ...args], {allowFail: true});

    // What each container said, for a failure here (a failover that never comes is otherwise silent).
    function printLogs() {
      for (const service of ['redis-master', 'redis-replica', ...sentinels, 'otsync1', 'otsync2', 'otsync3']) {
        const log = run(['logs', '--tail', '40', `${project}_${service}_1`], {allowFail: true, withStderr: true});
        console.log(`  --- ${service}, its last lines:\n${log}`);
      }
      for (const name of sentinels) {
        console.log(`  --- ${name}: SENTINEL master otsync\n${sentinelCli(name, 'sentinel', 'master', 'otsync')}`);
      }
    }

    // A failover needs sentinels that know the replica and each other, and none in TILT mode (where a
    // sentinel that was held up acts on nothing for 30 s): what a master killed in service meets.
    async function waitSentinelsSettled() {
      const settled = (name) => {
        const master = sentinelCli(name, 'sentinel', 'master', 'otsync').split('\n');
        const field = (key) => master[master.indexOf(key) + 1];
        return master.includes('num-slaves') && field('num-slaves') === '1' && field('num-other-sentinels') === '2' &&
          /sentinel_tilt:0/.test(sentinelCli(name, 'info', 'sentinel'));
      };
      await S.waitUntil(() => sentinels.every(settled), 90000, 'every sentinel knows the replica and the others',
        500);
    }

    it('the master killed: the sentinels promote the replica, every instance is ready again by itself, and ' +
       'the document is still there and writable', {timeout: 300000}, async (t) => {
      let passed = false;
      t.after(() => {
        if (!passed) printLogs();
      });
      await waitSentinelsSettled();
      const conn = await S.connect(server(port), {timeout: 20000});
      const id = S.uid('sentinel');
      const doc = S.getDoc(conn, 'notes', id);
      await S.create(doc, 'before ');
      await S.submitOp(doc, [7, 'the failover']);
      conn.close();
      const killed = Date.now();
      await runAsync(['kill', '--signal', 'KILL', `${project}_redis-master_1`]);
      // Not ready while no master is known (HAProxy answers 503 when no instance is ready).
      await S.waitUntil(async () => (await httpGet(`http://127.0.0.1:${port}/readyz`)).status !== 200, 30000,
        'not ready after the master died', 100);
      // The sentinels need down-after-milliseconds (10 s) and a quorum; then every instance follows.
      await waitReady(port, 150000, 'ready again after the failover');
      const readyMs = Date.now() - killed;
      // A sentinel that did not lead the failover learns the new master from the others' hello
      // messages, a moment later: the instances may be ready first (they ask every sentinel).
      let master = '';
      await S.waitUntil(() => {
        master = run(['exec', `${project}_sentinel1_1`, 'redis-cli', '-p', '26379', 'sentinel',
          'get-master-addr-by-name', 'otsync']);
        return /^redis-replica/.test(master);
      }, 20000, 'every sentinel names the replica as the master', 250).catch(() => {});
      assert.match(master, /^redis-replica/, `the replica is the master now: ${master}`);
      const again = await S.connect(server(port), {timeout: 20000});
      try {
        const after = S.getDoc(again, 'notes', id);
        await S.subscribe(after, 20000);
        assert.equal(after.data, 'before the failover');
        await S.submitOp(after, [0, '> '], 20000);
        assert.equal(after.data, '> before the failover');
      } finally {
        again.close();
      }
      console.log(`  ready again ${readyMs} ms after the master was killed (the sentinels' agreement dominates)`);
      passed = true;
    });
  });
});
