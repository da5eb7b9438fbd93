'use strict';
// The collaborative editor page otsyncd serves at /: CodeMirror 6 bound to the unmodified sharedb
// client (text-unicode documents, through @otsync/text-unicode-presence so remote cursors follow the
// text), remote cursors and selections in each author's colour with their name, who is here, the
// connection state with automatic reconnect (exponential backoff) and, when the server runs with
// --auth jwt, a bearer token fetched from the URL the operator configured (--editor-token-url) and
// renewed before it expires.
//
// Positions: CodeMirror counts UTF-16 code units, text-unicode ops and presence count Unicode code
// points. Every conversion goes through the helpers below; an astral character (emoji) is 2 units
// and 1 code point.

const ShareDB = require('sharedb/lib/client');
const otText = require('ot-text-unicode');
const {register} = require('@otsync/text-unicode-presence');
const {EditorState, StateField, StateEffect, Annotation, Transaction, Compartment} = require('@codemirror/state');
const {EditorView, Decoration, WidgetType, keymap, drawSelection, highlightActiveLine, lineNumbers} =
  require('@codemirror/view');
const {defaultKeymap, history, historyKeymap} = require('@codemirror/commands');

const textType = register(ShareDB, otText);
const TYPE = textType.name || 'text-unicode';

// ---------------------------------------------------------------------------------------------
// Settings from the URL and localStorage.

const params = new URLSearchParams(location.search);
const DEFAULT_DOC = 'notes/welcome';

/** `?doc=collection/id` (split at the first '/'); default notes/welcome. */
function docFromUrl() {
  const raw = params.get('doc') || DEFAULT_DOC;
  const slash = raw.indexOf('/');
  if (slash <= 0 || slash === raw.length - 1) return {collection: 'notes', id: raw.replace(/\//g, '') || 'welcome'};
  return {collection: raw.slice(0, slash), id: raw.slice(slash + 1)};
}

const ADJECTIVES = ['Brave', 'Calm', 'Eager', 'Gentle', 'Jolly', 'Keen', 'Lucky', 'Quick', 'Quiet', 'Witty'];
const ANIMALS = ['Otter', 'Heron', 'Lynx', 'Badger', 'Falcon', 'Marmot', 'Panda', 'Puffin', 'Walrus', 'Yak'];
const pick = (list) => list[Math.floor(Math.random() * list.length)];

function storage(key, make) {
  let value = null;
  try { value = localStorage.getItem(key); } catch (_) { /* no storage (private mode, file:) */ }
  if (!value) {
    value = make();
    try { localStorage.setItem(key, value); } catch (_) { /* not kept */ }
  }
  return value;
}

function userName() {
  const fromUrl = (params.get('name') || '').trim().slice(0, 64);
  if (fromUrl) {
    try { localStorage.setItem('otsync-editor-name', fromUrl); } catch (_) { /* not kept */ }
    return fromUrl;
  }
  return storage('otsync-editor-name', () => `${pick(ADJECTIVES)} ${pick(ANIMALS)}`);
}

const NAME = userName();
const HUE = Number(storage('otsync-editor-hue', () => String(Math.floor(Math.random() * 360)))) % 360;
const COLOR = `hsl(${HUE}, 70%, 42%)`;
const {collection: COLLECTION, id: DOC_ID} = docFromUrl();

// ---------------------------------------------------------------------------------------------
// UTF-16 <-> code points.

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/** Code points in `s` (a lone surrogate counts as one). */
function cpLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    n++;
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
  }
  return n;
}

/** The UTF-16 offset in `s` of code point `cp` (clamped to the end). */
function utf16Offset(s, cp) {
  let i = 0;
  for (let n = 0; n < cp && i < s.length; n++) {
    i += isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1)) ? 2 : 1;
  }
  return i;
}

/** True when UTF-16 offset `pos` of `s` falls between the halves of a surrogate pair. */
function splitsPair(s, pos) {
  return pos > 0 && pos < s.length && isHigh(s.charCodeAt(pos - 1)) && isLow(s.charCodeAt(pos));
}

/** Appends a component to a text-unicode op, merging with the last one of the same kind. */
function push(op, c) {
  if (c === 0 || c === '' || (typeof c === 'object' && c.d === 0)) return;
  const last = op[op.length - 1];
  if (typeof c === 'number' && typeof last === 'number') op[op.length - 1] = last + c;
  else if (typeof c === 'string' && typeof last === 'string') op[op.length - 1] = last + c;
  else if (typeof c === 'object' && last && typeof last === 'object') last.d += c.d;
  else op.push(c);
}

function trim(op) {
  while (op.length && typeof op[op.length - 1] === 'number') op.pop();
  return op;
}

/** The text-unicode op for a CodeMirror change set applied to `before` (a string). */
function opFromChanges(changes, before) {
  const spans = [];
  let split = false;
  changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    if (splitsPair(before, fromA) || splitsPair(before, toA)) split = true;
    spans.push({fromA, toA, text: inserted.toString()});
  });
  if (split) return opFromDiff(before, changes.apply(EditorState.create({doc: before}).doc).toString());
  const op = [];
  let at = 0; // UTF-16 offset in `before` reached so far
  for (const {fromA, toA, text} of spans) {
    push(op, cpLength(before.slice(at, fromA)));
    if (toA > fromA) push(op, {d: cpLength(before.slice(fromA, toA))});
    push(op, text);
    at = toA;
  }
  return trim(op);
}

/** One replacement from `a` to `b` (common prefix and suffix in whole code points). */
function opFromDiff(a, b) {
  const ca = Array.from(a);
  const cb = Array.from(b);
  let p = 0;
  while (p < ca.length && p < cb.length && ca[p] === cb[p]) p++;
  let s = 0;
  while (s < ca.length - p && s < cb.length - p && ca[ca.length - 1 - s] === cb[cb.length - 1 - s]) s++;
  const op = [];
  push(op, p);
  push(op, {d: ca.length - p - s});
  push(op, cb.slice(p, cb.length - s).join(''));
  return trim(op);
}

/** CodeMirror changes (UTF-16, against `text`) for a text-unicode op. */
function changesFromOp(op, text) {
  const changes = [];
  let i = 0; // UTF-16 offset in `text`
  const advance = (n) => {
    const start = i;
    i = start + utf16Offset(text.slice(start), n);
    return i;
  };
  for (const c of op) {
    if (typeof c === 'number') {
      advance(c);
    } else if (typeof c === 'string') {
      changes.push({from: i, insert: c});
    } else if (c && typeof c === 'object') {
      const n = typeof c.d === 'number' ? c.d : cpLength(String(c.d));
      const from = i;
      changes.push({from, to: advance(n)});
    }
  }
  return changes;
}

// ---------------------------------------------------------------------------------------------
// Remote cursors: a state field of decorations, replaced whenever presence or the text changes.

const setRemote = StateEffect.define();
const remoteAnnotation = Annotation.define();

class CaretWidget extends WidgetType {
  constructor(id, name, color) {
    super();
    this.id = id;
    this.name = name;
    this.color = color;
  }

  eq(other) { return other.id === this.id && other.name === this.name && other.color === this.color; }

  toDOM() {
    const caret = document.createElement('span');
    caret.className = 'cm-remote-caret';
    caret.style.borderColor = this.color;
    caret.dataset.presenceId = this.id;
    caret.dataset.name = this.name;
    caret.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.className = 'cm-remote-name';
    label.style.backgroundColor = this.color;
    label.textContent = this.name;
    caret.appendChild(label);
    return caret;
  }

  ignoreEvent() { return true; }
}

/** A CSS colour for a remote value's `color` (only hsl()/#hex/rgb() from the wire; else grey). */
function safeColor(c) {
  return typeof c === 'string' && /^(#[0-9a-fA-F]{3,8}|(hsl|rgb)a?\([0-9., %]{1,40}\))$/.test(c) ? c : '#888';
}

function translucent(color) {
  if (color.startsWith('hsl(')) return color.replace(/^hsl\((.*)\)$/, 'hsla($1, 0.22)');
  return 'rgba(136, 136, 136, 0.22)';
}

const remoteField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) if (e.is(setRemote)) deco = e.value;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

/** The remote cursors as decorations on `text` (which the values' code points index). */
function remoteDecorations(cursors) {
  const ranges = [];
  for (const c of cursors) {
    const from = Math.min(c.anchor16, c.head16);
    const to = Math.max(c.anchor16, c.head16);
    if (to > from) {
      ranges.push(Decoration.mark({
        attributes: {style: `background-color: ${translucent(c.color)}`, 'data-presence-id': c.id},
        class: 'cm-remote-selection',
      }).range(from, to));
    }
    ranges.push(Decoration.widget({widget: new CaretWidget(c.id, c.name, c.color), side: 1}).range(c.head16));
  }
  return Decoration.set(ranges, true);
}

// ---------------------------------------------------------------------------------------------
// The page.

const statusEl = document.getElementById('status');
const peopleEl = document.getElementById('people');
document.getElementById('doc-name').textContent = `${COLLECTION}/${DOC_ID}`;
document.title = `${DOC_ID} · otsync`;

const api = {
  name: NAME,
  color: COLOR,
  collection: COLLECTION,
  id: DOC_ID,
  ready: false,
  errors: [],
  reconnects: 0,
  tokenFetches: 0,
};
window.otsyncEditor = api;

const logError = (where, e) => {
  const msg = `${where}: ${e && (e.code || '')} ${e && e.message ? e.message : e}`;
  api.errors.push(msg);
  console.warn(msg);
};

const editable = new Compartment();
let connection = null;
let doc = null;
let localPresence = null;
let docPresence = null;
let queued = 0; // local edits submitted and not yet acknowledged

const view = new EditorView({
  parent: document.getElementById('editor'),
  state: EditorState.create({
    doc: '',
    extensions: [
      lineNumbers(),
      history(),
      drawSelection(),
      highlightActiveLine(),
      EditorView.lineWrapping,
      keymap.of([...defaultKeymap, ...historyKeymap]),
      remoteField,
      editable.of([EditorState.readOnly.of(true), EditorView.editable.of(false)]),
    ],
  }),
  dispatchTransactions(trs, v) {
    const changed = trs.some((tr) => tr.docChanged);
    let text = changed ? v.state.doc.toString() : '';
    v.update(trs);
    for (const tr of trs) {
      if (!tr.docChanged) continue;
      if (tr.annotation(remoteAnnotation)) {
        text = tr.newDoc.toString();
        continue;
      }
      submitLocal(opFromChanges(tr.changes, text));
      text = tr.newDoc.toString();
    }
    if (trs.some((tr) => tr.selection || tr.docChanged)) schedulePresence();
    if (changed) scheduleCursors();
  },
});

function submitLocal(op) {
  if (!op.length || !doc || !doc.type) return;
  queued++;
  updateStatus();
  try {
    doc.submitOp(op, (err) => {
      queued = Math.max(0, queued - 1);
      if (err) logError('submitOp', err);
      updateStatus();
    });
  } catch (e) {
    queued = Math.max(0, queued - 1);
    logError('submitOp', e);
    resync();
  }
}

/** Replaces the editor's text with the document's (load, hard rollback, a mismatch). */
function resync() {
  const data = doc && typeof doc.data === 'string' ? doc.data : '';
  const current = view.state.doc.toString();
  if (current !== data) {
    view.dispatch({
      changes: {from: 0, to: current.length, insert: data},
      annotations: [remoteAnnotation.of(true), Transaction.addToHistory.of(false)],
    });
  }
  view.dispatch({effects: editable.reconfigure(doc && doc.type ? [] :
    [EditorState.readOnly.of(true), EditorView.editable.of(false)])});
  scheduleCursors();
}

function applyRemote(op) {
  const text = view.state.doc.toString();
  let changes;
  try {
    changes = changesFromOp(op, text);
    view.dispatch({changes, annotations: [remoteAnnotation.of(true), Transaction.addToHistory.of(false)]});
  } catch (e) {
    logError('remote op', e);
  }
  // The editor must now hold exactly the document's text; if not, start again from it.
  if (view.state.doc.length !== doc.data.length || view.state.doc.toString() !== doc.data) {
    logError('sync', new Error('editor text differed from the document; reloaded'));
    resync();
  }
}

// Presence -------------------------------------------------------------------------------------

let presenceTimer = null;
let lastSent = null;

function localSelection() {
  const text = view.state.doc.toString();
  const sel = view.state.selection.main;
  const anchor = cpLength(text.slice(0, sel.anchor));
  const head = cpLength(text.slice(0, sel.head));
  // {index, length}: the caret (head) is at index + length; a negative length extends backwards.
  return {index: anchor, length: head - anchor};
}

function schedulePresence() {
  if (presenceTimer) return;
  presenceTimer = setTimeout(() => {
    presenceTimer = null;
    sendPresence();
  }, 40);
}

function sendPresence() {
  if (!localPresence || !doc || !doc.type) return;
  const sel = localSelection();
  const value = {index: sel.index, length: sel.length, name: NAME, color: COLOR};
  const key = JSON.stringify(value);
  if (key === lastSent) return;
  lastSent = key;
  localPresence.submit(value, (err) => {
    if (err) {
      lastSent = null;
      if (err.code !== 'ERR_DOC_DOES_NOT_EXIST' && err.code !== 'ERR_DOC_IN_HARD_ROLLBACK') logError('presence', err);
    }
  });
}

// Once remote ops stop arriving, our presence goes out again even if unchanged. A receiver whose own
// op was in flight when our presence reached it can hold that presence as stale for good: the sharedb
// client (7.x) files its own ops in the cache it catches stale presence up with under the version
// before the ack (RemoteDocPresence._cacheOp), so the catch-up misses the op and waits for the next
// update from us. That op reaches us too, so a fresh copy sent when things settle ends the wait.
let settleTimer = null;
function scheduleSettledPresence() {
  clearTimeout(settleTimer);
  settleTimer = setTimeout(() => {
    lastSent = null;
    sendPresence();
  }, 400);
}

let cursorsQueued = false;
function scheduleCursors() {
  if (cursorsQueued) return;
  cursorsQueued = true;
  // After the current event: sharedb moves remote presences through an op in its own listener.
  Promise.resolve().then(() => {
    cursorsQueued = false;
    refreshCursors();
  });
}

function remoteCursors() {
  if (!docPresence) return [];
  const text = view.state.doc.toString();
  const cps = cpLength(text);
  const out = [];
  for (const [id, value] of Object.entries(docPresence.remotePresences)) {
    if (!value || typeof value !== 'object' || !Number.isInteger(value.index)) continue;
    const length = Number.isInteger(value.length) ? value.length : 0;
    const anchor = Math.max(0, Math.min(cps, value.index));
    const head = Math.max(0, Math.min(cps, value.index + length));
    out.push({
      id,
      name: typeof value.name === 'string' ? value.name.slice(0, 64) : 'anonymous',
      color: safeColor(value.color),
      index: anchor,
      length: head - anchor,
      anchor16: utf16Offset(text, anchor),
      head16: utf16Offset(text, head),
    });
  }
  return out;
}

function refreshCursors() {
  const cursors = remoteCursors();
  view.dispatch({effects: setRemote.of(remoteDecorations(cursors))});
  renderPeople(cursors);
}

function renderPeople(cursors) {
  peopleEl.textContent = '';
  const add = (name, color, me) => {
    const li = document.createElement('li');
    li.className = me ? 'me' : 'remote';
    li.dataset.name = name;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.style.backgroundColor = color;
    li.appendChild(dot);
    li.appendChild(document.createTextNode(me ? `${name} (you)` : name));
    peopleEl.appendChild(li);
  };
  add(NAME, COLOR, true);
  for (const c of cursors) add(c.name, c.color, false);
}

// Connection, reconnect and tokens ---------------------------------------------------------------

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 4000;
let attempt = 0;
let reconnectTimer = null;
let state = 'connecting';
let config = {tokenUrl: null};
let token = null; // {value, exp (ms), fetchedAt (ms)}
let refreshTimer = null;
let renewing = false; // the socket was closed to reconnect with a renewed token

function wsUrl() {
  const u = new URL('ws', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  u.hash = '';
  return u.toString();
}

function setState(s) {
  state = s;
  updateStatus();
}

function updateStatus() {
  let text = state;
  if (state === 'reconnecting' && attempt > 1) text = `reconnecting (attempt ${attempt})`;
  if (state !== 'connected' && queued > 0) text += `, ${queued} ${queued === 1 ? 'edit' : 'edits'} queued`;
  statusEl.textContent = text;
  statusEl.dataset.state = state;
  statusEl.dataset.queued = String(queued);
}

/** exp of a JWT in ms, or null. */
function tokenExpiry(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch (_) {
    return null;
  }
}

async function fetchToken() {
  const res = await fetch(config.tokenUrl, {credentials: 'include', cache: 'no-store'});
  if (!res.ok) throw new Error(`token URL answered HTTP ${res.status}`);
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : {token: (await res.text()).trim()};
  const value = typeof body === 'string' ? body : body.token || body.access_token;
  if (typeof value !== 'string' || !value) throw new Error('token URL gave no token');
  api.tokenFetches++;
  token = {value, exp: tokenExpiry(value), fetchedAt: Date.now()};
  scheduleRefresh();
  return token;
}

/** Renews the token when 3/4 of its life has passed, then reconnects with it. */
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!token || !token.exp) return;
  const life = Math.max(0, token.exp - token.fetchedAt);
  const delay = Math.max(1000, token.fetchedAt + life * 0.75 - Date.now());
  refreshTimer = setTimeout(async () => {
    try {
      await fetchToken();
      api.tokenRenewals = (api.tokenRenewals || 0) + 1;
      // A connection is authenticated at its upgrade: open a new one with the new token (the same
      // Connection: unacknowledged ops and presence are sent again). Closed first, as sharedb's
      // client binds a new socket only once the old one is down.
      if (connection && connection.state === 'connected') {
        renewing = true;
        connection.socket.close();
      }
    } catch (e) {
      logError('token refresh', e);
      refreshTimer = setTimeout(scheduleRefresh, 2000);
    }
  }, delay);
}

function newSocket() {
  if (!config.tokenUrl) return new WebSocket(wsUrl());
  // Browsers cannot set headers on a WebSocket: the token goes in a subprotocol (docs/security.md).
  return new WebSocket(wsUrl(), ['otsync', `otsync.bearer.${token.value}`]);
}

async function openSocket() {
  if (config.tokenUrl && (!token || (token.exp && token.exp - Date.now() < 5000))) await fetchToken();
  return newSocket();
}

function scheduleReconnect() {
  if (reconnectTimer) return;
  attempt++;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempt - 1));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  setState(navigator.onLine === false || attempt > 1 ? 'offline' : 'reconnecting');
  reconnectTimer = setTimeout(reconnect, delay);
}

async function reconnect() {
  reconnectTimer = null;
  if (connection && (connection.state === 'connected' || connection.state === 'connecting')) return;
  setState('reconnecting');
  api.reconnects++;
  try {
    connection.bindToSocket(await openSocket());
  } catch (e) {
    logError('reconnect', e);
    scheduleReconnect();
  }
}

window.addEventListener('online', () => {
  if (reconnectTimer) {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    reconnect();
  }
});

async function loadConfig() {
  try {
    const res = await fetch('editor-config.json', {cache: 'no-store'});
    if (res.ok) config = {...config, ...(await res.json())};
  } catch (_) { /* defaults: no token */ }
}

function onConnectionState(s) {
  if (s === 'connected') {
    attempt = 0;
    setState('connected');
  } else if (s === 'connecting') {
    setState(attempt > 0 ? 'reconnecting' : 'connecting');
  } else if (s === 'disconnected' && renewing) {
    renewing = false;
    reconnect(); // at once: nothing is wrong with the network
  } else if (s === 'disconnected' || s === 'stopped') {
    renewing = false;
    scheduleReconnect();
  } else if (s === 'closed') {
    setState('offline');
  }
}

async function start() {
  updateStatus();
  renderPeople([]);
  await loadConfig();
  if (config.auth === 'jwt' && !config.tokenUrl) {
    // Without a token every upgrade is refused (401): say so instead of retrying for ever.
    logError('config', new Error('the server requires a token (--auth jwt) and gives no --editor-token-url'));
    statusEl.textContent = 'the server requires a token: start otsyncd with --editor-token-url';
    statusEl.dataset.state = 'error';
    state = 'error';
    return;
  }
  let socket = null;
  while (!socket) {
    try {
      socket = await openSocket();
    } catch (e) {
      logError('connect', e);
      attempt++;
      setState('offline');
      await new Promise((r) => setTimeout(r, Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt)));
    }
  }
  connection = new ShareDB.Connection(socket);
  connection.on('state', onConnectionState);
  connection.on('error', (e) => logError('connection', e));
  onConnectionState(connection.state);

  doc = connection.get(COLLECTION, DOC_ID);
  doc.on('op', (op, source) => {
    if (source) return; // our own, already in the editor
    applyRemote(op);
    scheduleSettledPresence();
  });
  doc.on('load', resync);
  doc.on('create', (source) => { if (!source) resync(); });
  doc.on('del', () => resync());
  doc.on('error', (e) => logError('doc', e));
  doc.on('nothing pending', updateStatus);

  await new Promise((resolve) => {
    doc.subscribe((err) => {
      if (err) logError('subscribe', err);
      resolve();
    });
  });
  if (!doc.type) {
    await new Promise((resolve) => {
      doc.create('', TYPE, (err) => {
        if (err && err.code !== 'ERR_DOC_ALREADY_CREATED') logError('create', err);
        resolve();
      });
    });
  }
  resync();

  docPresence = connection.getDocPresence(COLLECTION, DOC_ID);
  docPresence.on('receive', scheduleCursors);
  docPresence.on('error', (e) => logError('presence', e));
  docPresence.subscribe((err) => { if (err) logError('presence subscribe', err); });
  localPresence = docPresence.create();
  localPresence.on('error', (e) => logError('local presence', e));
  sendPresence();
  // Remote presences move with remote ops inside sharedb; redraw after each.
  doc.on('op', scheduleCursors);
  api.ready = true;
  view.focus();
}

// The test and debugging API (window.otsyncEditor). Positions in code points unless marked 16.
Object.assign(api, {
  view,
  text: () => view.state.doc.toString(),
  docText: () => (doc && typeof doc.data === 'string' ? doc.data : null),
  version: () => (doc ? doc.version : null),
  pending: () => queued,
  hasPending: () => !!(doc && doc.hasPending()),
  state: () => state,
  connectionState: () => (connection ? connection.state : null),
  connectionId: () => (connection ? connection.id : null),
  selection: () => localSelection(),
  selection16: () => ({anchor: view.state.selection.main.anchor, head: view.state.selection.main.head}),
  remoteCursors: () => remoteCursors(),
  /** Puts the selection at code points [index, index + length] (a caret when 0) and focuses the editor. */
  select: (index, length = 0) => {
    const text = view.state.doc.toString();
    const anchor = utf16Offset(text, index);
    view.dispatch({selection: {anchor, head: utf16Offset(text, index + length)}});
    view.focus();
  },
  /** Closes the socket as a network failure would (the page then reconnects by itself). */
  dropSocket: () => { if (connection && connection.socket) connection.socket.close(); },
  cpLength,
  utf16Offset,
  /** sharedb's view of the remote presences (debugging). */
  presenceDebug: () => {
    if (!docPresence) return null;
    const out = {};
    for (const [id, r] of Object.entries(docPresence._remotePresenceInstances)) {
      out[id] = {value: r.value, pv: r.presenceVersion, pending: r._pending, cache: !!r._opCache, src: r.src};
    }
    return {remote: out, local: localPresence && {value: localPresence.value, pv: localPresence.presenceVersion,
      pending: localPresence._pendingMessages}, version: doc.version, lastSent};
  },
});

start().catch((e) => {
  logError('start', e);
  setState('error');
});
