'use strict';
// Everything the test files use, plus `useServer`, which starts one server for
// a test file (before) and stops it by PID (after).

const {before, after} = require('node:test');
const util = require('./util');
const server = require('./server');
const client = require('./client');
const raw = require('./raw');
const edits = require('./edits');

let counter = 0;
/** A document id unique within the process (and readable in logs). */
const uid = (prefix = 'doc') => `${prefix}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Registers before/after hooks that start and stop a server; returns a holder
 * whose `.server` is the running server. `opts` as for startServer.
 */
function useServer(opts = {}) {
  const holder = {server: null};
  before(async () => {
    holder.server = await server.startServer(opts);
  });
  after(async () => {
    if (!holder.server) return;
    const s = holder.server;
    const exit = await s.stop();
    s.cleanup();
    // A graceful SIGTERM must end with exit 0 (the contract); anything else is a server bug.
    if (!(exit.code === 0 || (s.kind === 'sharedb' && exit.signal === 'SIGTERM'))) {
      throw new Error(`${s.kind} did not exit cleanly on SIGTERM: ${JSON.stringify(exit)}\n${s.logs().slice(-4000)}`);
    }
  });
  return holder;
}

/** Wraps a test body so that a failure shows the server's log tail. */
const logged = (holder, fn) => (t) => server.withServerLog(() => holder.server, () => fn(t));

module.exports = {...util, ...server, ...client, ...raw, ...edits, uid, useServer, logged};
