'use strict';
// Node side of the browser test: bundles entry.js with esbuild into a temp dir,
// serves it from a tiny HTTP server on 127.0.0.1:0, and launches Debian's
// Chromium headless through playwright-core (never a downloaded browser).

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const {withTimeout} = require('../support/util');

const CHROMIUM = process.env.OTSYNC_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Why the browser test cannot run here (a sentence), or null. */
function unavailable() {
  if (!fs.existsSync(CHROMIUM)) {
    return `Chromium not found at ${CHROMIUM} (Debian: apt-get install -y --no-install-recommends chromium, ` +
      'or scripts/install-deps.sh)';
  }
  for (const mod of ['playwright-core', 'esbuild', 'events', 'inherits', 'sharedb', 'ot-text-unicode']) {
    try {
      require.resolve(mod);
    } catch (_) {
      return `npm package ${mod} missing (run npm ci in tests/js)`;
    }
  }
  return null;
}

/** Bundles entry.js + index.html into a new temp dir; returns its path. */
async function bundle() {
  const esbuild = require('esbuild');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otsync-browser-'));
  await withTimeout(esbuild.build({
    entryPoints: [path.join(__dirname, 'entry.js')],
    outfile: path.join(dir, 'bundle.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    sourcemap: 'inline',
    logLevel: 'error',
  }), 60000, 'esbuild bundle of browser/entry.js');
  fs.copyFileSync(path.join(__dirname, 'index.html'), path.join(dir, 'index.html'));
  return dir;
}

const TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8'};

/** Serves the files of `dir` (flat) on 127.0.0.1:0; resolves to {url, close()}. */
async function serve(dir) {
  const files = new Map(fs.readdirSync(dir).map((f) => [`/${f}`, path.join(dir, f)]));
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://127.0.0.1').pathname;
    const file = files.get(p === '/' ? '/index.html' : p);
    if (req.method !== 'GET' || !file) {
      res.writeHead(404, {'content-type': 'text/plain'});
      res.end('not found');
      return;
    }
    res.writeHead(200, {'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store'});
    fs.createReadStream(file).pipe(res);
  });
  await withTimeout(new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  }), 5000, 'static HTTP server listening');
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => withTimeout(new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }), 5000, 'static HTTP server close'),
  };
}

/** Launches Chromium (headless, loopback only). */
async function launch() {
  const {chromium} = require('playwright-core');
  return chromium.launch({executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60000});
}

/**
 * Opens a page (its own browser context) on `siteUrl`, waits for window.otsync,
 * and records uncaught page errors in page.otsyncErrors. Close it with
 * page.context().close().
 */
async function openPage(browser, siteUrl) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.otsyncErrors = [];
  page.on('pageerror', (e) => page.otsyncErrors.push(`pageerror: ${e.message}`));
  page.on('crash', () => page.otsyncErrors.push('page crashed'));
  page.on('console', (m) => {
    if (m.type() === 'error') page.otsyncErrors.push(`console.error: ${m.text()}`);
  });
  page.setDefaultTimeout(20000);
  try {
    await page.goto(siteUrl, {timeout: 20000});
    await page.waitForFunction(() => window.otsync !== undefined, null, {timeout: 20000});
  } catch (e) {
    e.message += `\npage errors: ${JSON.stringify(page.otsyncErrors)}`;
    await context.close().catch(() => {});
    throw e;
  }
  return page;
}

module.exports = {CHROMIUM, CHROMIUM_ARGS, unavailable, bundle, serve, launch, openPage};
