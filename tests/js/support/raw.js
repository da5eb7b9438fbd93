'use strict';
// A raw WebSocket client for protocol-level tests: send any frame, collect
// every reply, wait (bounded) for the reply matching a predicate, see the close.

const WebSocket = require('ws');
const {withTimeout, sleep} = require('./util');

class RawClient {
  /** Opens a socket; resolves once open. */
  static async open(server, {timeout = 5000, maxPayload} = {}) {
    const c = new RawClient(server, maxPayload);
    await withTimeout(c.opened, timeout, `raw socket open to ${server.wsUrl}`);
    return c;
  }

  constructor(server, maxPayload) {
    this.server = server;
    this.ws = new WebSocket(server.wsUrl, maxPayload ? {maxPayload} : undefined);
    this.inbox = []; // received and not yet taken by next()
    this.received = 0; // total frames received
    this.waiters = [];
    this.closeInfo = null;
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.ws.on('error', () => {}); // surfaced through `closed`
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = {code, reason: reason.toString()};
        resolve(this.closeInfo);
        this._wake();
      });
    });
    this.ws.on('message', (data, isBinary) => {
      this.received++;
      let msg;
      if (isBinary) msg = {binary: data};
      else {
        const text = data.toString();
        try { msg = JSON.parse(text); } catch (_) { msg = {unparsable: text}; }
      }
      this.inbox.push(msg);
      this._wake();
    });
  }

  _wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Sends an object as JSON, or a string / Buffer as is (a text frame unless binary). */
  send(msg, {binary = false} = {}) {
    const data = (typeof msg === 'string' || Buffer.isBuffer(msg)) ? msg : JSON.stringify(msg);
    this.ws.send(data, {binary});
  }

  /** Takes (removes and returns) the first received message matching `pred`, waiting at most `ms`. */
  async next(pred = () => true, ms = 5000, what = 'a matching message') {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex((m) => { try { return pred(m); } catch (_) { return false; } });
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      if (this.closeInfo) {
        throw new Error(`socket closed (${JSON.stringify(this.closeInfo)}) before ${what}; inbox: ${this.dump()}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}; inbox: ${this.dump()}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Sends `msg` and takes the first reply matching `pred`. */
  async request(msg, pred, ms = 5000) {
    this.send(msg);
    return this.next(pred, ms, `reply to ${typeof msg === 'string' ? msg : JSON.stringify(msg).slice(0, 200)}`);
  }

  /** Asserts that no message matching `pred` arrives within `ms`. */
  async expectNone(pred, ms = 200) {
    await sleep(ms);
    const found = this.inbox.find(pred);
    if (found) throw new Error(`unexpected message: ${JSON.stringify(found)}`);
  }

  /** Waits for the close; resolves {code, reason}. */
  waitClose(ms = 5000) { return withTimeout(this.closed, ms, 'server closing the socket'); }

  /** hs with an optional id; resolves the hs reply. Drops a leading `init`. */
  async handshake(id = null) {
    const reply = await this.request({a: 'hs', id, protocol: 1, protocolMinor: 2}, (m) => m.a === 'hs');
    this.inbox = this.inbox.filter((m) => m.a !== 'init');
    this.id = reply.id;
    return reply;
  }

  dump() { return JSON.stringify(this.inbox).slice(0, 2000); }

  close() {
    try { this.ws.terminate(); } catch (_) { /* closed */ }
  }
}

/** Opens a raw socket and completes the handshake. */
async function rawConnect(server, opts) {
  const c = await RawClient.open(server, opts);
  await c.handshake(opts && opts.id);
  return c;
}

module.exports = {RawClient, rawConnect};
