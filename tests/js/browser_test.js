'use strict';
// The unmodified sharedb@7 client in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) loads browser/entry.js, bundled
// by esbuild at test time (sharedb/lib/client + ot-text-unicode), which talks
// to the server with the browser's native WebSocket. Each page is its own
// sharedb Connection; a Node sharedb client joins them.
//
// - Pages and the Node client type random edits (code points, emoji / astral)
//   concurrently into the same documents; afterwards every page's text and
//   version equal a fresh fetch from a new Node connection, the REST snapshot
//   and the replay of the REST op log, which holds each sent op exactly once.
// - A page loses its socket with an op in flight (closed right after the
//   submit, the op frame dropped before the server, the ack hidden after the
//   commit, repeated drops while everyone types), reconnects with
//   connection.bindToSocket(new WebSocket(url)) and converges; the op is in the
//   log exactly once.
//
// Runs on otsyncd with the memory and the SQLite store, or on the ShareDB peer
// (OTSYNC_SERVER=sharedb). Without Chromium (or playwright-core / esbuild) the
// file is skipped, unless OTSYNC_REQUIRE_BROWSER=1 (set by CTest when
// OTSYNC_REQUIRE_ALL_TESTS is on): then it fails. Sizes: OTSYNC_BROWSER_PAGES
// (3), OTSYNC_BROWSER_OPS (100 per client); seed OTSYNC_FUZZ_SEED.

const fs = require('fs');
const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');
const H = require('./browser/harness');

const C = 'browser';
const PAGES = Number(process.env.OTSYNC_BROWSER_PAGES || 3);
const OPS_PER_CLIENT = Number(process.env.OTSYNC_BROWSER_OPS || 100);
const DOCS = 2;
const LIMIT_MS = 120000;
const CALL_MS = 20000;

/** A page and its window.otsync API; every call is bounded. */
class BrowserClient {
  constructor(page, name) {
    this.page = page;
    this.name = name;
  }

  call(fn, ...args) {
    return S.withTimeout(
      this.page.evaluate(([f, a]) => window.otsync[f](...a), [fn, args]),
      CALL_MS, `${this.name}: otsync.${fn}(${JSON.stringify(args).slice(0, 200)})`);
  }

  async close() {
    try {
      await S.withTimeout(this.page.evaluate(() => window.otsync.close()), 5000, `${this.name} close`);
    } catch (_) { /* page already gone */ }
    await S.withTimeout(this.page.context().close(), 10000, `${this.name} context close`);
  }

  /** Uncaught page errors, console errors and the client's own error events. */
  async errors() {
    const status = await this.call('status');
    return [...this.page.otsyncErrors, ...status.errors];
  }
}

const browserState = {browser: null, site: null, dir: null};

async function openBrowserClient(server, name, seed) {
  const page = await H.openPage(browserState.browser, browserState.site.url);
  const client = new BrowserClient(page, name);
  try {
    await client.call('connect', server.wsUrl, seed);
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}

async function closeAllClients(browsers, nodeConns) {
  S.closeAll(nodeConns);
  for (const b of browsers) {
    try { await b.close(); } catch (_) { /* best effort */ }
  }
}

const sentKey = (o) => `${o.src}/${o.seq}`;

/**
 * Waits until nothing is pending anywhere, then checks that every browser page
 * and Node doc equals a fresh fetch (new Node connection), the REST snapshot
 * and the replay of the REST op log; every op message sent is in the log
 * exactly once (resends share src/seq) and nothing else is. Returns {head, log}.
 */
async function checkConverged(server, id, browsers, nodeDocs, nodeSent, {expected} = {}) {
  for (const b of browsers) await b.call('whenNothingPending', C, id, CALL_MS - 1000);
  for (const d of nodeDocs) await S.whenNothingPending(d, CALL_MS);

  const head = await S.freshFetch(server, C, id);
  assert.equal(head.type, S.TEXT_URI, `${id} exists as text-unicode`);
  const rest = await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}`);
  assert.deepEqual({v: rest.v, type: rest.type, data: rest.data}, head, `REST snapshot of ${id} = fresh fetch`);
  if (expected !== undefined) assert.equal(head.data, expected, `text of ${id}`);

  let snaps = [];
  try {
    await S.waitUntil(async () => {
      snaps = await Promise.all(browsers.map((b) => b.call('snapshot', C, id)));
      return snaps.every((s) => s.v === head.v) && nodeDocs.every((d) => d.version === head.v);
    }, 20000, `every client at ${id}@${head.v}`, 25);
  } catch (e) {
    e.message += `: pages at ${snaps.map((s) => s.v)}, node at ${nodeDocs.map((d) => d.version)}`;
    throw e;
  }
  for (const [i, s] of snaps.entries()) {
    assert.equal(s.data, head.data, `${browsers[i].name} text of ${id}`);
    assert.equal(s.v, head.v, `${browsers[i].name} version of ${id}`);
    assert.equal(s.type, head.type, `${browsers[i].name} type of ${id}`);
    assert.equal(s.pending, false);
  }
  for (const d of nodeDocs) {
    assert.equal(d.data, head.data, `node text of ${id}`);
    assert.deepEqual(d.errors, []);
  }

  const log = (await server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0&to=${head.v}`)).ops;
  assert.equal(log.length, head.v, 'one op log entry per version');
  assert.deepEqual(S.replayLog(log), head, `replay of the op log of ${id}`);
  const logged = log.filter((o) => 'op' in o).map(sentKey);
  assert.equal(new Set(logged).size, logged.length, `a (src, seq) twice in the op log of ${id}`);
  const statuses = await Promise.all(browsers.map((b) => b.call('status')));
  const sent = new Set([
    ...statuses.flatMap((s) => s.sent.filter((o) => o.d === id && o.kind === 'op')),
    ...nodeSent.filter((o) => o.d === id && o.kind === 'op'),
  ].map((o) => sentKey({...o, src: server.alias(o.src)})));  // the log shows authors by alias
  assert.deepEqual([...logged].sort(), [...sent].sort(), `op log of ${id} = the ops sent (each once)`);
  return {head, log, statuses};
}

/** Node client recording its op messages as {d, src, seq, kind}. */
async function nodeClient(server) {
  const conn = await S.connect(server);
  conn.sentOps = [];
  conn.on('send', (m) => {
    if (m.a !== 'op') return;
    conn.sentOps.push({d: m.d, src: m.src || conn.id, seq: m.seq, kind: m.create ? 'create' : m.del ? 'del' : 'op'});
  });
  return conn;
}

// Chromium logs this when a page sends on a socket it has closed but whose close has not completed
// yet: the sharedb client only learns of the close from onclose, and resends after the reconnect.
const CLOSING_SEND = 'console.error: WebSocket is already in CLOSING or CLOSED state.';

async function assertNoClientErrors(browsers, nodeConns, {dropped = false} = {}) {
  for (const b of browsers) {
    const errors = (await b.errors()).filter((e) => !(dropped && e === CLOSING_SEND));
    assert.deepEqual(errors, [], `${b.name} errors`);
    const st = await b.call('status');
    assert.equal(st.acked, st.submitted, `${b.name}: every submitted edit acknowledged`);
  }
  for (const c of nodeConns) assert.deepEqual(c.errors, [], 'node client errors');
}

function serverTests(store) {
  const holder = S.useServer({store});
  const T = (fn) => S.logged(holder, fn);

  it(`${PAGES} browser pages + 1 Node client x ${OPS_PER_CLIENT} random edits on ${DOCS} documents converge`,
    {timeout: 240000}, T(async () => {
      const server = holder.server;
      const seed = S.fuzzSeed();
      console.log(`browser convergence seed ${seed} (OTSYNC_FUZZ_SEED=${seed} to repeat)`);
      const rng = S.makeRng(seed);
      const ids = Array.from({length: DOCS}, () => S.uid('b'));
      const browsers = [];
      const nodeConns = [];
      try {
        for (let i = 0; i < PAGES; i++) browsers.push(await openBrowserClient(server, `page${i}`, seed + i + 1));
        // Page 0 creates the documents; the others (and the Node client) subscribe.
        for (const id of ids) await browsers[0].call('open', C, id, S.randomText(rng, 0, 20));
        for (const b of browsers.slice(1)) for (const id of ids) await b.call('open', C, id, null);
        const node = await nodeClient(server);
        nodeConns.push(node);
        const nodeDocs = ids.map((id) => S.getDoc(node, C, id));
        for (const d of nodeDocs) await S.subscribe(d);

        const burstSize = (left) => Math.min(left, 1 + rng.int(rng() < 0.3 ? 4 : 1));
        const pause = () => {
          const ms = rng.int(4);
          return ms === 0 ? new Promise(setImmediate) : S.sleep(ms);
        };
        const typing = browsers.map(async (b) => {
          for (let done = 0; done < OPS_PER_CLIENT;) {
            const n = burstSize(OPS_PER_CLIENT - done);
            await b.call('edit', C, rng.pick(ids), n);
            done += n;
            await pause();
          }
        });
        const nodeAcks = [];
        typing.push((async () => {
          for (let done = 0; done < OPS_PER_CLIENT;) {
            const n = burstSize(OPS_PER_CLIENT - done);
            const doc = rng.pick(nodeDocs);
            for (let k = 0; k < n; k++) {
              const op = S.randomOp(rng, doc.data);
              nodeAcks.push(new Promise((resolve, reject) => doc.submitOp(op, (e) => (e ? reject(e) : resolve()))));
            }
            done += n;
            await pause();
          }
        })());
        const t0 = Date.now();
        await S.withTimeout(Promise.all(typing), LIMIT_MS, 'all clients typing');
        await S.withTimeout(Promise.all(nodeAcks), LIMIT_MS, 'every Node edit acknowledged');

        let versions = 0;
        for (const id of ids) {
          const {head, statuses} = await checkConverged(server, id, browsers,
            nodeDocs.filter((d) => d.id === id), node.sentOps);
          versions += head.v;
          if (id === ids[ids.length - 1]) {
            const submitted = statuses.reduce((n, s) => n + s.submitted, 0);
            const sent = statuses.reduce((n, s) => n + s.sent.filter((o) => o.kind === 'op').length, 0);
            console.log(`  pages: ${submitted} edits sent as ${sent} op messages; ` +
              `${versions} versions in ${Date.now() - t0} ms`);
          }
        }
        await assertNoClientErrors(browsers, nodeConns);
      } finally {
        await closeAllClients(browsers, nodeConns);
      }
    }));

  describe('a page loses its socket with an op in flight and reconnects', () => {
    /**
     * Node creates `text`; the page subscribes; `lose(page, id)` submits the
     * page's op and loses the socket somehow; then the Node client commits an
     * op the page has not seen; the page reconnects and must converge to
     * `expected` with its op applied exactly once.
     */
    async function dropCase(text, pageOp, nodeOp, expected, lose, checkDuring) {
      const server = holder.server;
      const id = S.uid('drop');
      const browsers = [];
      const nodeConns = [];
      try {
        const node = await nodeClient(server);
        nodeConns.push(node);
        const nodeDoc = S.getDoc(node, C, id);
        await S.create(nodeDoc, text);
        await S.subscribe(nodeDoc);
        const page = await openBrowserClient(server, 'page', 1);
        browsers.push(page);
        await page.call('open', C, id, null);
        const srcBefore = (await page.call('status')).id;

        await lose(page, id, pageOp);
        assert.equal((await page.call('status')).state, 'disconnected');
        // Disconnected, the client keeps its unacknowledged op as the first pending one (same seq).
        assert.equal((await page.call('snapshot', C, id)).pending, true, 'the op is still unacknowledged');
        if (checkDuring) await checkDuring(id);
        await S.submitOp(nodeDoc, nodeOp); // committed while the page is away

        const srcAfter = await page.call('reconnect', server.wsUrl);
        assert.equal(srcAfter, srcBefore, 'the server adopts hs.id: the connection keeps its id');
        const {log, statuses} = await checkConverged(server, id, [page], [nodeDoc], node.sentOps, {expected});
        const pageOps = statuses[0].sent.filter((o) => o.d === id && o.kind === 'op');
        assert.ok(pageOps.length >= 1);
        assert.ok(pageOps.every((o) => o.seq === pageOps[0].seq && o.src === srcBefore), 'resends keep src and seq');
        assert.equal(log.filter((o) => o.src === server.alias(srcBefore) && o.seq === pageOps[0].seq).length, 1,
          'the page\'s op is in the log exactly once');
        await assertNoClientErrors(browsers, nodeConns, {dropped: true});
        return {pageOps, log};
      } finally {
        await closeAllClients(browsers, nodeConns);
      }
    }

    const opLog = async (id) =>
      (await holder.server.getJson(`/api/v1/docs/${C}/${encodeURIComponent(id)}/ops?from=0`)).ops;

    // The Node client's edits insert at 0, so the expected text does not depend on whether it has
    // seen the page's op when it submits.
    it('socket closed right after the op frame: applied once', {timeout: 60000}, T(async () => {
      const {pageOps} = await dropCase('hello', [5, ' 😀 wörld'], ['🎉'], '🎉hello 😀 wörld',
        (page, id, op) => page.call('submitAndDrop', C, id, op),
        async (id) => {
          // Whether the server committed the op before it saw the close is up to it; either way
          // the resend must end with the op applied once.
          const n = (await opLog(id)).length;
          console.log(`  op ${n === 2 ? 'committed' : 'not committed'} before the reconnect`);
        });
      // The browser sends the op frame before the close frame and drops what arrives after
      // close(), so the ack is lost and the op is resent (and must be recognised as a resend).
      assert.equal(pageOps.length, 2, 'sent, then resent after the reconnect');
    }));

    it('the op frame never reaches the server: resent, applied once', {timeout: 60000}, T(async () => {
      const {pageOps} = await dropCase('abc', [3, '𝄞d'], ['ж'], 'жabc𝄞d', async (page, id, op) => {
        await page.call('loseNextOp');
        await page.call('submit', C, id, op);
        await page.call('waitState', 'disconnected');
      }, async (id) => {
        assert.equal((await opLog(id)).length, 1, 'the server has not seen the op');
      });
      assert.equal(pageOps.length, 2, 'sent twice (lost, then resent)');
    }));

    it('the ack is lost after the commit: the resend is acknowledged, not applied again', {timeout: 60000},
      T(async () => {
        const {pageOps} = await dropCase('👍 ok', [1, '🏽'], ['!'], '!👍🏽 ok', async (page, id, op) => {
          await page.call('loseNextAck');
          await page.call('submit', C, id, op);
          await page.call('waitState', 'disconnected');
        }, async (id) => {
          assert.equal((await opLog(id)).length, 2, 'the op was committed before the socket closed');
        });
        assert.equal(pageOps.length, 2, 'sent twice (committed, ack lost, resent)');
      }));

    it('repeated drops while pages and Node type: every op applied once', {timeout: 180000}, T(async () => {
      const server = holder.server;
      const seed = (S.fuzzSeed() + 7) >>> 0;
      console.log(`browser drop seed ${seed}`);
      const rng = S.makeRng(seed);
      const id = S.uid('drops');
      const OPS = Math.max(10, Math.round(OPS_PER_CLIENT * 0.6));
      const browsers = [];
      const nodeConns = [];
      try {
        for (let i = 0; i < 2; i++) browsers.push(await openBrowserClient(server, `page${i}`, seed + i + 1));
        await browsers[0].call('open', C, id, 'start ✓');
        await browsers[1].call('open', C, id, null);
        const node = await nodeClient(server);
        nodeConns.push(node);
        const nodeDoc = S.getDoc(node, C, id);
        await S.subscribe(nodeDoc);

        let typingDone = false;
        let drops = 0;
        // page0 loses its socket every 30-150 ms (mostly with ops in flight) and reconnects at once.
        const dropper = (async () => {
          while (!typingDone && drops < 20) {
            await S.sleep(30 + rng.int(120));
            if (typingDone) break;
            await browsers[0].call('dropSocket');
            drops++;
            await browsers[0].call('reconnect', server.wsUrl);
          }
        })();
        const typing = browsers.map(async (b) => {
          for (let done = 0; done < OPS; done++) {
            await b.call('edit', C, id, 1);
            await S.sleep(rng.int(6));
          }
        });
        const nodeAcks = [];
        typing.push((async () => {
          for (let done = 0; done < OPS; done++) {
            const op = S.randomOp(rng, nodeDoc.data);
            nodeAcks.push(new Promise((resolve, reject) => nodeDoc.submitOp(op, (e) => (e ? reject(e) : resolve()))));
            await S.sleep(rng.int(6));
          }
        })());
        await S.withTimeout(Promise.all(typing), LIMIT_MS, 'all clients typing');
        typingDone = true;
        await S.withTimeout(dropper, CALL_MS * 2, 'the dropping loop');
        await S.withTimeout(Promise.all(nodeAcks), LIMIT_MS, 'every Node edit acknowledged');
        const {statuses} = await checkConverged(server, id, browsers, [nodeDoc], node.sentOps);
        const s0 = statuses[0].sent.filter((o) => o.kind === 'op');
        console.log(`  ${drops} drops; page0 sent ${s0.length} op messages, ${new Set(s0.map(sentKey)).size} distinct`);
        assert.ok(drops > 0, 'the socket was dropped at least once');
        await assertNoClientErrors(browsers, nodeConns, {dropped: true});
      } finally {
        await closeAllClients(browsers, nodeConns);
      }
    }));
  });
}

const missing = H.unavailable();
if (missing && process.env.OTSYNC_REQUIRE_BROWSER === '1') {
  it('a browser is available (OTSYNC_REQUIRE_BROWSER=1)', () => {
    assert.fail(`OTSYNC_REQUIRE_BROWSER=1 but the browser test cannot run: ${missing}`);
  });
} else if (missing) {
  it('browser client tests', {skip: missing}, () => {});
} else {
  describe('unmodified sharedb client in headless Chromium', () => {
    before(async () => {
      browserState.dir = await H.bundle();
      browserState.site = await H.serve(browserState.dir);
      browserState.browser = await S.withTimeout(H.launch(), 90000, `launch of ${H.CHROMIUM}`);
    });
    after(async () => {
      if (browserState.browser) await S.withTimeout(browserState.browser.close(), 20000, 'browser close');
      if (browserState.site) await browserState.site.close();
      if (browserState.dir) fs.rmSync(browserState.dir, {recursive: true, force: true});
    });

    const kind = S.serverKind();
    const stores = kind === 'otsyncd' ? ['memory', 'sqlite'] : ['memory'];
    for (const store of stores) describe(`${kind}, ${store} store`, () => serverTests(store));
  });
}
