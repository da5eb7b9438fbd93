'use strict';
// The editor page otsyncd serves at / (clients/editor: CodeMirror 6 + the unmodified sharedb client +
// @otsync/text-unicode-presence), in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core), loaded from otsyncd itself (the built files next to the binary, or
// $OTSYNC_EDITOR_DIR, or clients/editor/dist).
//
// - Two pages open /?doc=notes/ID and type concurrently with the real keyboard (page.keyboard) at
//   random places, emoji and newlines included; both converge to the server's REST snapshot; each page
//   shows the other's cursor at the right character: the caret element (.cm-remote-caret, with the
//   author's name) sits in the editor's DOM at the line and column where its owner's cursor is, and
//   the list of who is here names the other.
// - A page whose connection is cut (a TCP proxy between it and otsyncd drops every socket and refuses
//   new ones) keeps typing, shows "offline, N edits queued", and catches up by itself (backoff
//   reconnect) when the network comes back; everything converges.
// - --auth jwt with --editor-token-url: the page fetches its token (with its cookie, cross-origin)
//   from a token endpoint in the test, connects with it, renews it before it expires and keeps editing
//   past the first token's expiry.
// - Through HAProxy to two otsyncd on Redis (scripts/cluster.sh): one page on each instance; the texts
//   converge, and each shows the other's cursor (presence crosses instances over Redis).
//
// Screenshots of the pages go to $OTSYNC_ARTIFACTS_DIR (CTest: build/tests/artifacts/editor), else a
// temp directory; the paths are printed. Without Chromium or the built editor the file is skipped,
// unless OTSYNC_REQUIRE_BROWSER=1. Seed: OTSYNC_FUZZ_SEED.

const fs = require('fs');
const os = require('os');
const net = require('net');
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const {execFileSync} = require('child_process');
const {describe, it, before, after} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');
const H = require('./browser/harness');
const J = require('./support/tokens');

const REPO = path.resolve(__dirname, '..', '..');
const OTSYNCD = process.env.OTSYNCD || path.join(REPO, 'build', 'bin', 'otsyncd');
const CLUSTER = path.join(REPO, 'scripts', 'cluster.sh');
const ROUNDS = Number(process.env.OTSYNC_EDITOR_ROUNDS || 12);
const WAIT_MS = 20000;

/** The editor's built files otsyncd will serve: null (default, next to the binary) or a directory. */
function editorDir() {
  if (process.env.OTSYNC_EDITOR_DIR) return {dir: process.env.OTSYNC_EDITOR_DIR, flag: true};
  if (fs.existsSync(path.join(path.dirname(OTSYNCD), 'editor', 'index.html'))) {
    return {dir: path.join(path.dirname(OTSYNCD), 'editor'), flag: false};
  }
  const dist = path.join(REPO, 'clients', 'editor', 'dist');
  if (fs.existsSync(path.join(dist, 'index.html'))) return {dir: dist, flag: true};
  return null;
}

function unavailable() {
  const browser = H.unavailable();
  if (browser) return browser;
  if (S.serverKind() !== 'otsyncd') return 'the editor page is otsyncd\'s (OTSYNC_SERVER=sharedb has none)';
  if (!editorDir()) {
    return 'the editor is not built: npm ci && npm run build in clients/editor (scripts/run.sh and ' +
      'scripts/test.sh do it), then the CMake build copies it next to otsyncd';
  }
  return null;
}

const ARTIFACTS = process.env.OTSYNC_ARTIFACTS_DIR || path.join(os.tmpdir(), 'otsync-editor-artifacts');
async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  const file = path.join(ARTIFACTS, `${name}.png`);
  await S.withTimeout(page.screenshot({path: file}), 15000, `screenshot ${name}`);
  console.log(`  screenshot: ${file}`);
  return file;
}

const editorArgs = () => {
  const e = editorDir();
  return e && e.flag ? ['--editor-dir', e.dir] : [];
};

// Chromium logs this when the page sends on a socket that is closing (the sharedb client learns
// of the close only from onclose and resends after the reconnect); and failed reconnect attempts.
const EXPECTED_CONSOLE = [/WebSocket is already in CLOSING or CLOSED state/, /WebSocket connection to .* failed/,
  /ERR_CONNECTION_(RESET|REFUSED|CLOSED)/, /net::ERR_/];

/** A page on the editor; its window.otsyncEditor API bounded by timeouts. */
class EditorPage {
  constructor(page, name) {
    this.page = page;
    this.name = name;
    this.consoleErrors = [];
  }

  static async open(browser, baseUrl, docName, name, {setup} = {}) {
    const context = await browser.newContext({viewport: {width: 820, height: 420}});
    if (setup) await setup(context);
    const page = await context.newPage();
    const p = new EditorPage(page, name);
    page.on('pageerror', (e) => p.consoleErrors.push(`pageerror: ${e.message}`));
    page.on('crash', () => p.consoleErrors.push('page crashed'));
    page.on('console', (m) => {
      if (m.type() === 'error' && !EXPECTED_CONSOLE.some((re) => re.test(m.text()))) {
        p.consoleErrors.push(`console.error: ${m.text()}`);
      }
    });
    page.setDefaultTimeout(WAIT_MS);
    const url = `${baseUrl}/?doc=${encodeURIComponent(docName)}&name=${encodeURIComponent(name)}`;
    try {
      await page.goto(url, {timeout: WAIT_MS});
      await page.waitForFunction(() => window.otsyncEditor && window.otsyncEditor.ready &&
        window.otsyncEditor.state() === 'connected', null, {timeout: WAIT_MS});
    } catch (e) {
      e.message += `\n${name} page errors: ${JSON.stringify(p.consoleErrors)}`;
      try {
        e.message += `\neditor errors: ${JSON.stringify(await page.evaluate(() => window.otsyncEditor &&
          window.otsyncEditor.errors))}`;
      } catch (_) { /* page gone */ }
      await context.close().catch(() => {});
      throw e;
    }
    return p;
  }

  eval(fn, arg) {
    return S.withTimeout(this.page.evaluate(fn, arg), WAIT_MS, `${this.name}: ${String(fn).slice(0, 120)}`);
  }

  api(method, ...args) {
    return this.eval(([m, a]) => {
      const v = window.otsyncEditor[m](...a);
      return v === undefined ? null : v;
    }, [method, args]);
  }

  state() {
    return this.eval(() => {
      const e = window.otsyncEditor;
      return {text: e.text(), docText: e.docText(), v: e.version(), pending: e.pending(), hasPending: e.hasPending(),
        state: e.state(), status: document.getElementById('status').textContent, errors: e.errors,
        reconnects: e.reconnects, tokenFetches: e.tokenFetches, selection: e.selection(), sel16: e.selection16()};
    });
  }

  /** Types `keys` (strings typed, {press} keys pressed) at code point `index`. */
  async typeAt(index, keys) {
    await this.api('select', index, 0);
    for (const k of keys) {
      if (typeof k === 'string') await this.page.keyboard.type(k);
      else await this.page.keyboard.press(k.press);
    }
  }

  async close() {
    await S.withTimeout(this.page.context().close(), 10000, `${this.name} close`).catch(() => {});
  }
}

/** Random keystrokes: short words, an emoji or an astral letter now and then, Enter, Backspace. */
function randomKeys(rng, tag) {
  const keys = [];
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.2) keys.push(rng.pick(['😀', '🎉', '👍', '𝄞', '🚀']));
    else if (r < 0.3) keys.push({press: 'Enter'});
    else if (r < 0.4) keys.push({press: 'Backspace'});
    else keys.push(`${tag}${rng.pick(['a', 'bc', 'dé', 'xyz', 'ж'])}`);
  }
  return keys;
}

/** Both pages type ROUNDS random bursts at random places, concurrently. */
async function typeConcurrently(pages, rng) {
  await S.withTimeout(Promise.all(pages.map(async (p, i) => {
    for (let r = 0; r < ROUNDS; r++) {
      const {text} = await p.state();
      const len = [...text].length;
      await p.typeAt(rng.int(len + 1), randomKeys(rng, String.fromCharCode(65 + i)));
      await S.sleep(rng.int(30));
    }
  })), 60000, 'pages typing');
}

/** Waits until every page is connected with nothing pending at one version; returns the REST snapshot. */
async function converged(pages, getJson, docName) {
  let states = [];
  let rest = null;
  try {
    await S.waitUntil(async () => {
      states = await Promise.all(pages.map((p) => p.state()));
      if (!states.every((s) => s.state === 'connected' && s.pending === 0 && !s.hasPending)) return false;
      rest = await getJson(`/api/v1/docs/${docName}`);
      return states.every((s) => s.v === rest.v && s.text === rest.data);
    }, WAIT_MS, 'pages converged with the REST snapshot', 100);
  } catch (e) {
    e.message += `\nREST: ${JSON.stringify(rest)}\npages: ${JSON.stringify(states.map((s) =>
      ({v: s.v, state: s.state, pending: s.pending, status: s.status, text: s.text, errors: s.errors})))}`;
    throw e;
  }
  for (const [i, s] of states.entries()) {
    assert.equal(s.text, rest.data, `${pages[i].name}: editor text = REST snapshot`);
    assert.equal(s.docText, rest.data, `${pages[i].name}: sharedb doc = REST snapshot`);
    assert.equal(s.v, rest.v, `${pages[i].name}: version`);
    assert.equal(rest.type, S.TEXT_URI);
  }
  return rest;
}

/**
 * In `viewer`'s DOM: the remote caret named `name`: its line (index among .cm-line) and column
 * (UTF-16 units of text before it in that line, other carets' labels excluded), or null.
 */
function caretInDom(viewer, name) {
  return viewer.eval((who) => {
    const caret = [...document.querySelectorAll('.cm-content .cm-remote-caret')].find((e) => e.dataset.name === who);
    if (!caret) return null;
    const line = caret.closest('.cm-line');
    const lines = [...document.querySelectorAll('.cm-content .cm-line')];
    let column = 0;
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (caret.compareDocumentPosition(n) & (Node.DOCUMENT_POSITION_FOLLOWING | Node.DOCUMENT_POSITION_CONTAINED_BY)) {
        break;
      }
      if (n.parentElement.closest('.cm-remote-caret')) continue;
      column += n.data.length;
    }
    const label = caret.querySelector('.cm-remote-name');
    const box = caret.getBoundingClientRect();
    return {line: lines.indexOf(line), column, label: label && label.textContent, color: caret.style.borderColor,
      visible: box.height > 0};
  }, name);
}

/** Line and column (UTF-16) of offset `at` in `text`. */
function lineColumn(text, at) {
  const before = text.slice(0, at);
  const line = before.split('\n').length - 1;
  return {line, column: at - (before.lastIndexOf('\n') + 1)};
}

/** Every page shows every other page's cursor where its owner has it: in the data and in the DOM. */
async function checkCursors(pages, ms = WAIT_MS) {
  let last = '';
  await S.waitUntil(async () => {
    const owners = await Promise.all(pages.map((p) => p.state()));
    for (const [i, viewer] of pages.entries()) {
      const remote = await viewer.api('remoteCursors');
      for (const [j, owner] of pages.entries()) {
        if (i === j) continue;
        const own = owners[j].selection;
        const seen = remote.filter((c) => c.name === owner.name);
        if (seen.length !== 1 || seen[0].index !== own.index || seen[0].length !== own.length) {
          last = `${viewer.name} sees ${owner.name} at ${JSON.stringify(seen)}, owner at ${JSON.stringify(own)}`;
          return false;
        }
        const dom = await caretInDom(viewer, owner.name);
        const want = lineColumn(owners[j].text, owners[j].sel16.head);
        if (!dom || dom.line !== want.line || dom.column !== want.column || dom.label !== owner.name || !dom.visible) {
          last = `${viewer.name}'s DOM shows ${owner.name}'s caret at ${JSON.stringify(dom)}, want ${JSON.stringify(want)}`;
          return false;
        }
        const people = await viewer.eval(() => [...document.querySelectorAll('#people li.remote')]
          .map((li) => li.dataset.name));
        if (!people.includes(owner.name)) {
          last = `${viewer.name}'s list of who is here: ${JSON.stringify(people)}`;
          return false;
        }
      }
    }
    return true;
  }, ms, 'every page shows the others\' cursors', 100).catch(async (e) => {
    e.message += `: ${last}`;
    for (const p of pages) e.message += `\n${p.name} presence: ${JSON.stringify(await p.api('presenceDebug'))}`;
    throw e;
  });
}

async function noErrors(pages) {
  for (const p of pages) {
    const {errors} = await p.state();
    assert.deepEqual(p.consoleErrors, [], `${p.name}: console errors`);
    assert.deepEqual(errors.filter((e) => !/^(reconnect|connect|connection):/.test(e)), [], `${p.name}: editor errors`);
  }
}

/** A TCP proxy to 127.0.0.1:`port` that can cut every connection and refuse new ones (a dead network). */
async function tcpProxy(port) {
  const sockets = new Set();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await S.withTimeout(new Promise((resolve) => server.listen(0, '127.0.0.1', resolve)), 5000, 'proxy listen');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() { cut = false; },
    close: () => S.withTimeout(new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }), 5000, 'proxy close'),
  };
}

const missing = unavailable();
const browserState = {browser: null};

if (missing && process.env.OTSYNC_REQUIRE_BROWSER === '1') {
  it('the editor page can be tested (OTSYNC_REQUIRE_BROWSER=1)', () => {
    assert.fail(`OTSYNC_REQUIRE_BROWSER=1 but the editor test cannot run: ${missing}`);
  });
} else if (missing) {
  it('editor page tests', {skip: missing}, () => {});
} else {
  describe('the editor page in headless Chromium', () => {
    before(async () => {
      browserState.browser = await S.withTimeout(H.launch(), 90000, `launch of ${H.CHROMIUM}`);
      console.log(`  editor files: ${editorDir().dir}; screenshots in ${ARTIFACTS}`);
    });
    after(async () => {
      if (browserState.browser) await S.withTimeout(browserState.browser.close(), 20000, 'browser close');
    });

    describe('one otsyncd', () => {
      const holder = S.useServer({args: editorArgs()});
      const T = (fn) => S.logged(holder, fn);

      it('serves the page, its assets and its config', {timeout: 20000}, T(async () => {
        const server = holder.server;
        const index = await server.get('/');
        assert.equal(index.status, 200);
        assert.match(index.headers['content-type'], /^text\/html/);
        assert.match(index.text, /editor\/editor\.js/);
        assert.match(index.headers['content-security-policy'], /default-src 'self'/);
        const js = await server.get('/editor/editor.js');
        assert.equal(js.status, 200);
        assert.match(js.headers['content-type'], /^text\/javascript/);
        assert.equal(js.headers['x-content-type-options'], 'nosniff');
        assert.equal((await server.get('/editor/editor.css')).headers['content-type'], 'text/css; charset=utf-8');
        assert.deepEqual((await server.get('/editor-config.json')).body, {tokenUrl: null, auth: 'none'});
        for (const bad of ['/editor/../CMakeCache.txt', '/editor/%2e%2e%2fCMakeCache.txt', '/editor/..%5cx',
          '/editor/.x', '/editor/nope.js', '/editor/%00']) {
          const r = await server.get(bad);
          assert.equal(r.status, 404, bad);
          assert.equal(r.body.error.code, 'ERR_NOT_FOUND', bad);
        }
      }));

      it('two pages type concurrently, converge, and show each other\'s cursors', {timeout: 90000}, T(async () => {
        const server = holder.server;
        const seed = S.fuzzSeed();
        console.log(`  editor seed ${seed} (OTSYNC_FUZZ_SEED=${seed} to repeat)`);
        const rng = S.makeRng(seed);
        const docName = `notes/${S.uid('ed')}`;
        const pages = [];
        try {
          pages.push(await EditorPage.open(browserState.browser, server.httpUrl, docName, 'Ada'));
          pages.push(await EditorPage.open(browserState.browser, server.httpUrl, docName, 'Grace'));
          // A start both see, then real typing at random places from both at once.
          await pages[0].typeAt(0, ['Hello 😀 world', {press: 'Enter'}, 'second line']);
          await converged(pages, (p) => server.getJson(p), docName);
          await typeConcurrently(pages, rng);
          const rest = await converged(pages, (p) => server.getJson(p), docName);
          console.log(`  converged at v${rest.v}: ${JSON.stringify(rest.data).slice(0, 160)}`);
          assert.ok([...rest.data].some((c) => c.codePointAt(0) > 0xffff), 'the text holds astral characters');

          // Cursors where their owners have them: after the typing, then on a line and column
          // chosen here (after an emoji), and a selection.
          await checkCursors(pages);
          const text = rest.data;
          const afterEmoji = [...text].findIndex((c) => c.codePointAt(0) > 0xffff) + 1;
          await pages[0].api('select', afterEmoji, 0);
          await pages[1].api('select', [...text].length, -3);
          await checkCursors(pages);
          const dom = await caretInDom(pages[1], 'Ada');
          const want = lineColumn(text, S_utf16(text, afterEmoji));
          assert.deepEqual({line: dom.line, column: dom.column}, want, 'Ada\'s caret in Grace\'s DOM right after the emoji');
          const selected = await pages[0].eval(() => document.querySelectorAll('.cm-remote-selection').length);
          assert.ok(selected >= 1, 'Grace\'s selection is drawn in Ada\'s page');
          await screenshot(pages[0].page, 'editor-ada');
          await screenshot(pages[1].page, 'editor-grace');
          await noErrors(pages);
        } finally {
          for (const p of pages) await p.close();
        }
      }));

      it('a page whose network drops keeps typing offline, shows its queue and catches up', {timeout: 90000},
        T(async () => {
          const server = holder.server;
          const proxy = await tcpProxy(server.port);
          const docName = `notes/${S.uid('off')}`;
          const pages = [];
          try {
            const away = await EditorPage.open(browserState.browser, proxy.url, docName, 'Away');
            pages.push(away);
            const here = await EditorPage.open(browserState.browser, server.httpUrl, docName, 'Here');
            pages.push(here);
            await away.typeAt(0, ['start 👋 ']);
            await converged(pages, (p) => server.getJson(p), docName);

            proxy.cut();
            await S.waitUntil(async () => (await away.state()).state !== 'connected', 10000, 'the page sees the drop');
            const typed = ['offline ', '🚀', ' edits', {press: 'Enter'}, 'more'];
            await away.typeAt(0, typed);
            await here.typeAt(3, ['[online]']);
            let st;
            await S.waitUntil(async () => {
              st = await away.state();
              return st.state === 'offline' && /offline, \d+ edits? queued/.test(st.status);
            }, 15000, 'the page shows it is offline with its edits queued').catch((e) => {
              e.message += `: ${JSON.stringify(st)}`;
              throw e;
            });
            const queued = Number(/(\d+) edits? queued/.exec(st.status)[1]);
            assert.equal(queued, st.pending);
            assert.ok(queued >= 5, `every offline keystroke is queued (${st.status})`);
            const statusAttr = await away.eval(() => document.getElementById('status').dataset.state);
            assert.equal(statusAttr, 'offline');
            await screenshot(away.page, 'editor-offline');
            assert.ok(!(await server.getJson(`/api/v1/docs/${docName}`)).data.includes('offline'),
              'nothing typed offline reached the server');

            proxy.restore(); // the page reconnects by itself (backoff: at most 4 s between attempts)
            const rest = await converged(pages, (p) => server.getJson(p), docName);
            assert.match(rest.data, /offline 🚀 edits\nmore/);
            assert.match(rest.data, /\[online\]/);
            const back = await away.state();
            assert.equal(back.status, 'connected');
            assert.ok(back.reconnects >= 1);
            await checkCursors(pages);
            await screenshot(away.page, 'editor-reconnected');
            await noErrors(pages);
          } finally {
            for (const p of pages) await p.close();
            await proxy.close();
          }
        }));
    });

    describe('--auth jwt with --editor-token-url', () => {
      const secret = crypto.randomBytes(32).toString('hex');
      const secretFile = path.join(os.tmpdir(), `otsync-editor-jwt-${process.pid}`);
      fs.writeFileSync(secretFile, secret, {mode: 0o600});
      const TTL_S = 6;
      const tokenServer = {server: null, url: null, issued: 0, refused: 0, origin: null};
      before(async () => {
        // The operator's token endpoint: another origin, answers only with the session cookie (CORS with credentials).
        tokenServer.server = http.createServer((req, res) => {
          const origin = req.headers.origin || '';
          res.setHeader('Access-Control-Allow-Origin', origin);
          res.setHeader('Access-Control-Allow-Credentials', 'true');
          res.setHeader('Vary', 'Origin');
          if (!/(^|;\s*)session=editor-test(;|$)/.test(req.headers.cookie || '')) {
            tokenServer.refused++;
            res.writeHead(401, {'content-type': 'application/json'});
            res.end('{"error":"no session"}');
            return;
          }
          tokenServer.issued++;
          const now = J.nowS();
          const token = J.hs256(secret, {sub: `user-${tokenServer.issued}`, iat: now, exp: now + TTL_S,
            otsync: {read: ['notes/*'], write: ['notes/*']}});
          res.writeHead(200, {'content-type': 'application/json', 'cache-control': 'no-store'});
          res.end(JSON.stringify({token}));
        });
        await new Promise((resolve) => tokenServer.server.listen(0, '127.0.0.1', resolve));
        tokenServer.url = `http://127.0.0.1:${tokenServer.server.address().port}/token`;
        serverArgs.push('--editor-token-url', tokenServer.url);
      });
      after(async () => {
        if (tokenServer.server) {
          tokenServer.server.closeAllConnections();
          await new Promise((resolve) => tokenServer.server.close(resolve));
        }
        fs.rmSync(secretFile, {force: true});
      });
      // Filled in by the before hook above (which runs first) once the token endpoint has its port.
      const serverArgs = [...editorArgs(), '--auth', 'jwt', '--jwt-secret-file', secretFile, '--jwt-clock-skew-s', '0'];
      const holder = S.useServer({args: serverArgs});
      const T = (fn) => S.logged(holder, fn);

      it('the page fetches its token, connects with it and renews it before it expires', {timeout: 60000},
        T(async () => {
          const server = holder.server;
          assert.deepEqual((await server.get('/editor-config.json')).body, {tokenUrl: tokenServer.url, auth: 'jwt'});
          assert.equal((await server.get('/')).status, 200, 'the page itself needs no token');
          const docName = `notes/${S.uid('auth')}`;
          const cookie = (context) => context.addCookies([{name: 'session', value: 'editor-test',
            domain: '127.0.0.1', path: '/'}]);
          const page = await EditorPage.open(browserState.browser, server.httpUrl, docName, 'Token', {setup: cookie});
          try {
            await page.typeAt(0, ['with a token ✓']);
            const started = Date.now();
            // Past the first token's expiry (and the server's close 4001), still editing.
            for (let i = 0; Date.now() - started < (TTL_S + 2) * 1000; i++) {
              await page.typeAt(0, [`${i % 10}`]);
              await S.sleep(400);
            }
            const st = await page.state();
            assert.ok(st.tokenFetches >= 2, `the token was renewed (${st.tokenFetches} fetched)`);
            assert.equal(tokenServer.refused, 0, 'the token endpoint always got the cookie');
            const authHeader = {Authorization: `Bearer ${J.hs256(secret, {sub: 'reader', exp: J.nowS() + 60,
              otsync: {read: ['*'], write: []}})}`};
            const getJson = (p) => new Promise((resolve, reject) => {
              http.get(server.httpUrl + p, {headers: authHeader}, (res) => {
                let body = '';
                res.on('data', (d) => { body += d; });
                res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body))
                  : reject(new Error(`GET ${p}: ${res.statusCode} ${body}`))));
              }).on('error', reject);
            });
            const rest = await converged([page], getJson, docName);
            assert.match(rest.data, /with a token ✓/);
            const authors = new Set((await getJson(`/api/v1/docs/${docName}/ops?from=0`)).ops.map((o) => o.author));
            assert.ok(authors.size >= 2, `ops written under more than one token (${[...authors]})`);
            await noErrors([page]);
          } finally {
            await page.close();
          }
        }));
    });

    describe('--auth jwt without --editor-token-url', () => {
      const secretFile = path.join(os.tmpdir(), `otsync-editor-jwt2-${process.pid}`);
      fs.writeFileSync(secretFile, crypto.randomBytes(32).toString('hex'), {mode: 0o600});
      after(() => fs.rmSync(secretFile, {force: true}));
      const holder = S.useServer({args: [...editorArgs(), '--auth', 'jwt', '--jwt-secret-file', secretFile]});
      it('the page says it needs a token instead of retrying', {timeout: 30000}, S.logged(holder, async () => {
        const context = await browserState.browser.newContext();
        try {
          const page = await context.newPage();
          await page.goto(`${holder.server.httpUrl}/?doc=notes/x`, {timeout: WAIT_MS});
          await page.waitForFunction(() => document.getElementById('status').dataset.state === 'error', null,
            {timeout: WAIT_MS});
          assert.match(await page.textContent('#status'), /requires a token.*--editor-token-url/);
        } finally {
          await S.withTimeout(context.close(), 10000, 'context close');
        }
      }));
    });

    describe('through HAProxy to two otsyncd on Redis', () => {
      let dir = null;
      let env = null;
      before(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-editor-cluster-'));
        const args = ['start', dir, OTSYNCD];
        const extra = editorArgs().join(' ');
        execFileSync(CLUSTER, args, {stdio: ['ignore', 'ignore', 'inherit'], timeout: 60000,
          env: {...process.env, OTSYNC_INSTANCES: '2', OTSYNC_ARGS: `${process.env.OTSYNC_ARGS || ''} ${extra}`.trim()}});
        env = Object.fromEntries(fs.readFileSync(path.join(dir, 'cluster.env'), 'utf8').trim().split('\n')
          .map((l) => l.split('=')));
      });
      after(() => {
        if (!dir) return;
        execFileSync(CLUSTER, ['stop', dir], {stdio: 'inherit', timeout: 60000});
        fs.rmSync(dir, {recursive: true, force: true});
      });

      const httpOf = (wsUrl) => wsUrl.replace(/^ws:/, 'http:').replace(/\/ws$/, '');
      const getJson = (base, p) => new Promise((resolve, reject) => {
        const req = http.get(base + p, (res) => {
          let body = '';
          res.on('data', (d) => { body += d; });
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new Error(`GET ${p}: HTTP ${res.statusCode} ${body}`));
            else resolve(JSON.parse(body));
          });
        });
        req.setTimeout(5000, () => req.destroy(new Error(`GET ${p} timed out`)));
        req.on('error', reject);
      });
      const openConnections = async (i) => {
        const text = await new Promise((resolve, reject) => {
          http.get(`${httpOf(env[`OTSYNC${i}_URL`])}/metrics`, (res) => {
            let body = '';
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve(body));
          }).on('error', reject);
        });
        const m = /^otsync_connections_open (\d+)/m.exec(text);
        return m ? Number(m[1]) : 0;
      };
      const shared = {pages: [], docName: null};

      it('a page on each instance: the texts converge', {timeout: 90000}, async () => {
        const lb = httpOf(env.HAPROXY_URL);
        shared.docName = `notes/${S.uid('cl')}`;
        const rng = S.makeRng(S.fuzzSeed());
        shared.pages.push(await EditorPage.open(browserState.browser, lb, shared.docName, 'North'));
        shared.pages.push(await EditorPage.open(browserState.browser, lb, shared.docName, 'South'));
        // One WebSocket on each instance (HAProxy balances by least connections; retried if not).
        for (let attempt = 0; ; attempt++) {
          const counts = [await openConnections(1), await openConnections(2)];
          if (counts[0] === 1 && counts[1] === 1) break;
          assert.ok(attempt < 10, `pages not spread over the instances: ${counts}`);
          await shared.pages[1].api('dropSocket');
          await S.waitUntil(async () => (await shared.pages[1].state()).state === 'connected', 15000, 'reconnected');
          await S.sleep(200);
        }
        await shared.pages[0].typeAt(0, ['cluster 🌍 ']);
        await typeConcurrently(shared.pages, rng);
        const viaEach = (i) => (p) => getJson(httpOf(env[`OTSYNC${i}_URL`]), p);
        const rest = await converged(shared.pages, viaEach(1), shared.docName);
        const other = await viaEach(2)(`/api/v1/docs/${shared.docName}`);
        assert.deepEqual({v: other.v, data: other.data}, {v: rest.v, data: rest.data}, 'both instances agree');
        await screenshot(shared.pages[0].page, 'editor-cluster-north');
        await screenshot(shared.pages[1].page, 'editor-cluster-south');
        await noErrors(shared.pages);
      });

      it('... and show each other\'s cursors across instances', {timeout: 30000},
      async () => {
        try {
          assert.equal(shared.pages.length, 2, 'the pages of the previous test');
          await shared.pages[0].api('select', 3, 0);
          await shared.pages[1].api('select', 1, 2);
          await checkCursors(shared.pages, WAIT_MS);
        } finally {
          for (const p of shared.pages) await p.close();
          shared.pages = [];
        }
      });
    });
  });
}

/** UTF-16 offset of code point `cp` in `text`. */
function S_utf16(text, cp) {
  return [...text].slice(0, cp).join('').length;
}
