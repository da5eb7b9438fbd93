'use strict';
// Bad input over a raw WebSocket. For each case: what ShareDB 7 answers
// (measured with the peer: the request echoed with error{code, message}, a
// plain reply, or a close), and what otsyncd answers where it deliberately
// differs (stricter: booleans / fractions / lone surrogates / invalid UTF-8,
// and always an error code where ShareDB's own answer has none). After every
// case another client on the same server still works, and neither the case's
// document nor an unrelated one was changed (unless the case is accepted).
// docs/errors.md has the same cases as a table.

const {describe, it, after} = require('node:test');
const assert = require('node:assert/strict');
const S = require('./support');

const MAX_MESSAGE_BYTES = 65536;
// The floods below test pipelining and back-pressure, not the per-connection
// request rate limit (tests/js/abuse_test.js covers that): it is off here.
const holder = S.useServer({
  args: ['--max-message-bytes', String(MAX_MESSAGE_BYTES),
    ...((process.env.OTSYNC_SERVER || 'otsyncd') === 'otsyncd' ? ['--max-request-rate', '0'] : [])],
});
const T = (fn) => S.logged(holder, fn);
const C = 'errors';
const URI = S.TEXT_URI;

// ---- expectations ---------------------------------------------------------
// err(codes)   an error reply echoing a, c, d, v, seq, id, b of the request; `codes`
//              lists the acceptable error.code values (null: ShareDB sends no code)
// ok(pred)     a reply without error, pred(reply) true; `doc` is the doc afterwards
// close(codes) the server closes the socket (codes: acceptable close codes, or any)
// none         no reply at all (ShareDB's presence without presence enabled)
// anyOf(...)   one of the above
const err = (...codes) => ({kind: 'err', codes});
const ok = (pred = () => true, doc) => ({kind: 'ok', pred, doc});
const close = (...codes) => ({kind: 'close', codes});
const none = {kind: 'none'};
const anyOf = (...alts) => ({kind: 'anyOf', alts});

const ECHO_KEYS = ['a', 'c', 'd', 'v', 'seq', 'id', 'b'];
const isAck = (m) => m && m.a === 'op' && !m.error && !('op' in m) && !m.create && !m.del;
const BADLY = 'ERR_MESSAGE_BADLY_FORMED';
const OP_BADLY = 'ERR_OT_OP_BADLY_FORMED';
const NOT_APPLIED = 'ERR_OT_OP_NOT_APPLIED';

// `doc` in a case is a fresh document "abc" at v1; `docText` (default unchanged)
// is what it must hold after the case: {v, data} per server kind.
const UNCHANGED = {v: 1, data: 'abc'};
const opMsg = (id, fields) => ({a: 'op', c: C, d: id, v: 1, seq: 1, x: {}, ...fields});

// [name, message (object | string | Buffer | (id) => ...), {sharedb, otsyncd} or one for both, docAfter]
const CASES = [
  // -- not a JSON object
  ['invalid JSON', '{"a":', close()], // ShareDB (websocket-json-stream): 1011
  ['not JSON at all', 'hello', close()],
  ['JSON null', 'null', close()], // ShareDB: 1011
  ['JSON number', '5', close()], // ShareDB: 1000 (agent closes: "Received non-object message")
  ['JSON string', '"f"', close()],
  ['JSON true', 'true', close()],
  // ShareDB treats an array as an object without `a` and echoes it (the error
  // property is lost in the array's JSON). otsyncd closes or answers an error.
  ['JSON array', '[{"a":"pp"}]', {sharedb: ok((m) => Array.isArray(m)), otsyncd: anyOf(close(), err(BADLY))}],
  // -- actions
  ['empty object', {}, err(BADLY)],
  ['unknown action', {a: 'zz'}, err(BADLY)],
  ['action not a string', {a: 5}, err(BADLY)],
  // -- mistyped fields
  ['c not a string', (id) => ({a: 'f', c: 5, d: id}), err(BADLY)],
  ['d not a string', () => ({a: 'f', c: C, d: 7}), err(BADLY)],
  ['d is __proto__', () => ({a: 'f', c: C, d: '__proto__'}), err(BADLY)],
  ['c is constructor', (id) => ({a: 's', c: 'constructor', d: id}), err(BADLY)],
  ['v negative (f)', (id) => ({a: 'f', c: C, d: id, v: -1}), err(BADLY)],
  ['v a string (s)', (id) => ({a: 's', c: C, d: id, v: '1'}), err(BADLY)],
  // ShareDB accepts a fractional v on fetch (and sends no ops); otsyncd parses versions as integers.
  ['v fractional (f)', (id) => ({a: 'f', c: C, d: id, v: 0.5}), {sharedb: ok((m) => m.a === 'f' && !m.data), otsyncd: err(BADLY)}],
  ['v negative (op)', (id) => opMsg(id, {v: -1, op: ['x']}), err(BADLY)],
  ['v a string (op)', (id) => opMsg(id, {v: '1', op: ['x']}), err(BADLY)],
  // ShareDB: 1.5 > 1, "newer than current snapshot".
  ['v fractional (op)', (id) => opMsg(id, {v: 0.5, op: ['x']}),
    {sharedb: err('ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND'), otsyncd: err(BADLY, 'ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND')}],
  ['seq a string', (id) => opMsg(id, {seq: 'a', op: ['x']}), err(BADLY)],
  ['seq missing', (id) => opMsg(id, {seq: undefined, op: ['x']}), err(OP_BADLY)],
  ['seq at 2^53-1', (id) => opMsg(id, {seq: 9007199254740991, op: ['x']}), err('ERR_CONNECTION_SEQ_INTEGER_OVERFLOW')],
  // ShareDB accepts a fractional seq; otsyncd may refuse it (then the doc is unchanged).
  ['seq fractional', (id) => opMsg(id, {seq: 1.5, op: ['x']}),
    {sharedb: ok(isAck, {v: 2, data: 'xabc'}), otsyncd: anyOf(ok(isAck, {v: 2, data: 'xabc'}), err(BADLY, OP_BADLY))}],
  ['src not a string', (id) => opMsg(id, {src: 5, op: ['x']}), err(OP_BADLY)],
  ['src without seq', (id) => opMsg(id, {src: 'abc', seq: undefined, op: ['x']}), err(OP_BADLY)],
  ['c missing (op)', (id) => opMsg(id, {c: undefined, op: ['x']}),
    {sharedb: err('ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT'), otsyncd: err(BADLY, 'ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT')}],
  ['bs with b [1]', () => ({a: 'bs', c: C, b: [1]}), err(BADLY)],
  ['bs with b a string', () => ({a: 'bs', c: C, b: 'x'}), err(BADLY)],
  ['bs without b', () => ({a: 'bs', c: C}), err(BADLY)],
  ['bs with b {id: -1}', (id) => ({a: 'bs', c: C, b: {[id]: -1}}), err(BADLY)],
  ['bs with b {id: "1"}', (id) => ({a: 'bs', c: C, b: {[id]: '1'}}), err(BADLY)],
  ['bf with b [null]', () => ({a: 'bf', c: C, b: [null]}), err(BADLY)],
  ['bs with c a number', (id) => ({a: 'bs', c: 3, b: [id]}), err(BADLY)],
  ['hs with protocol an object', {a: 'hs', protocol: {}}, err(BADLY)],
  ['nf without d', () => ({a: 'nf', id: 1, c: C, v: null}), err(BADLY)],
  ['nf without c', (id) => ({a: 'nf', id: 1, d: id, v: null}), err(BADLY)],
  ['nt with ts a string', (id) => ({a: 'nt', id: 1, c: C, d: id, ts: 'x'}), err(BADLY)],
  // -- op bodies
  ['op with no body', (id) => opMsg(id, {}), {sharedb: err(null), otsyncd: err(BADLY, OP_BADLY)}], // ShareDB: a TypeError, no code
  ['del not true', (id) => opMsg(id, {del: 1}), err(OP_BADLY)],
  ['del false', (id) => opMsg(id, {del: false}), {sharedb: err(null), otsyncd: err(BADLY, OP_BADLY)}],
  ['create not an object', (id) => opMsg(id, {v: 0, create: 5}), err(OP_BADLY)],
  ['create null', (id) => opMsg(id, {create: null}), {sharedb: err(null), otsyncd: err(BADLY, OP_BADLY)}],
  ['op not an array', (id) => opMsg(id, {op: 'x'}), err(NOT_APPLIED)],
  ['op an object', (id) => opMsg(id, {op: {}}), err(NOT_APPLIED)],
  ['op null', (id) => opMsg(id, {op: null}), err(NOT_APPLIED)],
  ['component {i}', (id) => opMsg(id, {op: [{i: 'x'}]}), err(NOT_APPLIED)],
  ['component {}', (id) => opMsg(id, {op: [{}]}), err(NOT_APPLIED)],
  ['component {d: [1]}', (id) => opMsg(id, {op: [{d: [1]}]}), err(NOT_APPLIED)],
  ['component null', (id) => opMsg(id, {op: [null]}), err(NOT_APPLIED)],
  ['adjacent skips', (id) => opMsg(id, {op: [1, 1, 'x']}), err(NOT_APPLIED)],
  ['trailing skip', (id) => opMsg(id, {op: ['x', 1]}), err(NOT_APPLIED)],
  ['zero skip', (id) => opMsg(id, {op: [0, 'x']}), err(NOT_APPLIED)],
  ['negative skip', (id) => opMsg(id, {op: [-1, 'x']}), err(NOT_APPLIED)],
  ['empty insert', (id) => opMsg(id, {op: ['']}), err(NOT_APPLIED)],
  ['zero delete', (id) => opMsg(id, {op: [{d: 0}]}), err(NOT_APPLIED)],
  ['negative delete', (id) => opMsg(id, {op: [{d: -1}]}), err(NOT_APPLIED)],
  ['empty string delete', (id) => opMsg(id, {op: [{d: ''}]}), err(NOT_APPLIED)],
  ['skip past the end', (id) => opMsg(id, {op: [10, 'x']}), err(NOT_APPLIED)],
  // An invalid op that has to be transformed first: ShareDB's transform throws, no code.
  ['invalid op at an old version', (id) => opMsg(id, {v: 0, op: [1, 1, 'x']}),
    {sharedb: err('ERR_DOC_ALREADY_CREATED'), otsyncd: err('ERR_DOC_ALREADY_CREATED', NOT_APPLIED)}],
  // -- accepted by ShareDB; otsyncd is stricter (its codec: integers only, no booleans, no lone surrogates)
  ['boolean component', (id) => opMsg(id, {op: [true]}),
    {sharedb: ok(isAck, {v: 2, data: 'abc'}), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  ['fractional skip', (id) => opMsg(id, {op: [1.5, 'x']}),
    {sharedb: ok(isAck, {v: 2, data: 'abxc'}), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  ['lone surrogate in an insert', (id) => `{"a":"op","c":"${C}","d":"${id}","v":1,"seq":1,"x":{},"op":["\\ud800"]}`,
    {sharedb: ok(isAck, {v: 2, data: '\ud800abc'}), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  // ShareDB's unicount refuses this one ("Invalid offset - splits unicode bytes").
  ['lone low surrogate in a string delete', (id) => `{"a":"op","c":"${C}","d":"${id}","v":1,"seq":1,"x":{},"op":[{"d":"\\udc00"}]}`,
    {sharedb: err(NOT_APPLIED), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  ['lone surrogate in a skip-then-insert', (id) => `{"a":"op","c":"${C}","d":"${id}","v":1,"seq":1,"x":{},"op":[2,"x\\udfff"]}`,
    {sharedb: ok(isAck, {v: 2, data: 'abx\udfffc'}), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  ['lone surrogate in create data', (id) =>
    `{"a":"op","c":"${C}","d":"${id}-new","v":0,"seq":1,"x":{},"create":{"type":"text-unicode","data":"a\\udbff"}}`,
  {sharedb: ok(isAck), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}],
  // -- accepted by both (behaviour a server must reproduce)
  ['empty op (a committed no-op)', (id) => opMsg(id, {op: []}), ok(isAck, {v: 2, data: 'abc'})],
  ['delete past the end is cut short', (id) => opMsg(id, {op: [1, {d: 5}]}), ok(isAck, {v: 2, data: 'a'})],
  ['string delete text not checked', (id) => opMsg(id, {op: [{d: 'zz'}]}), ok(isAck, {v: 2, data: 'c'})],
  ['edit with v missing applies at head', (id) => opMsg(id, {v: undefined, op: ['x']}), ok((m) => isAck(m) && m.v === 1, {v: 2, data: 'xabc'})],
  ['del of a missing document', (id) => opMsg(`${id}-none`, {v: 0, del: true}), ok((m) => isAck(m) && m.v === 0)],
  ['u of a doc not subscribed', (id) => ({a: 'u', c: C, d: id}), ok((m) => m.a === 'u')],
  ['f from a future version: no ops', (id) => ({a: 'f', c: C, d: id, v: 9}), ok((m) => m.a === 'f' && !m.data)],
  // -- document state
  ['op on a missing document', (id) => opMsg(`${id}-none`, {v: 0, op: ['x']}), err('ERR_DOC_DOES_NOT_EXIST')],
  ['create on an existing document (v 0)', (id) => opMsg(id, {v: 0, create: {type: 'text-unicode', data: 'z'}}), err('ERR_DOC_ALREADY_CREATED')],
  ['create on an existing document (v null)', (id) => opMsg(id, {v: null, seq: 99, create: {type: 'text-unicode', data: 'z'}}), err('ERR_DOC_ALREADY_CREATED')],
  ['create on an existing document (v head)', (id) => opMsg(id, {create: {type: URI, data: 'z'}}), err('ERR_DOC_ALREADY_CREATED')],
  ['op from a future version', (id) => opMsg(id, {v: 5, op: ['x']}), err('ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT')],
  ['create at a future version', (id) => opMsg(`${id}-new`, {v: 3, create: {type: URI, data: 'z'}}), err('ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT')],
  // ShareDB normalises the type name to a URI first, so an unknown name is a *missing* type.
  ['create with an unknown type', (id) => opMsg(`${id}-new`, {v: 0, create: {type: 'nope', data: ''}}),
    {sharedb: err(OP_BADLY), otsyncd: err('ERR_DOC_TYPE_NOT_RECOGNIZED', OP_BADLY)}],
  ['create without a type', (id) => opMsg(`${id}-new`, {v: 0, create: {data: ''}}), err(OP_BADLY)],
  ['create of a json0 document', (id) => opMsg(`${id}-new`, {v: 0, create: {type: 'json0', data: {}}}),
    {sharedb: ok(isAck), otsyncd: err('ERR_DOC_TYPE_NOT_RECOGNIZED')}],
  ['create with non-string data', (id) => opMsg(`${id}-new`, {v: 0, create: {type: URI, data: 5}}),
    {sharedb: err(null), otsyncd: err(NOT_APPLIED, OP_BADLY, BADLY)}], // ShareDB: "Initial data must be a string", no code
  // -- unsupported features: ShareDB serves queries from its memory DB and ignores presence when disabled;
  //    otsyncd answers with an error code.
  ['query fetch', () => ({a: 'qf', id: 1, c: C, q: {}}), {sharedb: ok((m) => m.a === 'qf'), otsyncd: err(...anyCode())}],
  ['query subscribe', () => ({a: 'qs', id: 2, c: C, q: {}}), {sharedb: ok((m) => m.a === 'qs'), otsyncd: err(...anyCode())}],
  ['query without id', () => ({a: 'qf', c: C, q: {}}), {sharedb: err(BADLY), otsyncd: err(...anyCode())}],
  // Presence: the peer runs without it (no reply); otsyncd serves it (tests/js/presence_test.js).
  ['presence subscribe', (id) => ({a: 'ps', ch: `${C}.${id}`, seq: 1}),
    {sharedb: none, otsyncd: ok((m) => m.a === 'ps' && m.seq === 1)}],
  ['presence', (id) => ({a: 'p', ch: `${C}.${id}`, id: 'p1', p: {index: 1}, pv: 0, c: C, d: id, v: 1, t: URI}),
    {sharedb: none, otsyncd: ok((m) => m.a === 'p' && m.id === 'p1' && m.pv === 0)}],
  ['presence of an unknown type', (id) => ({a: 'p', ch: `${C}.${id}`, id: 'p1', p: {}, pv: 0, c: C, d: id, v: 0,
    t: 'json0'}), {sharedb: none, otsyncd: err('ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE')}],
];
function anyCode() { return ['*']; }

// Sequences on one document (create "abc" v0, edit v1, del v2, create v3):
// ops from before the delete and re-create.
const HISTORY_CASES = [
  ['edit from before a delete + re-create', 1, {op: ['z']}, 'ERR_DOC_WAS_DELETED'],
  ['delete from before a re-create', 2, {del: true}, 'ERR_DOC_ALREADY_CREATED'],
  ['create from before a delete', 2, {create: {type: URI, data: 'x'}}, 'ERR_DOC_WAS_DELETED'],
  ['create from before a re-create', 3, {create: {type: URI, data: 'x'}}, 'ERR_DOC_ALREADY_CREATED'],
  ['edit from before a re-create', 3, {op: ['z']}, 'ERR_DOC_ALREADY_CREATED'],
];

// ---- machinery ------------------------------------------------------------
let witness; // a ShareDB client on the same server, checked after every case
let witnessDoc;

after(() => witness && witness.close());

async function ensureWitness() {
  if (witness) return;
  witness = await S.connect(holder.server);
  witnessDoc = S.getDoc(witness, C, S.uid('witness'));
  await S.create(witnessDoc, 'witness 😀');
  await S.subscribe(witnessDoc);
}

/** Another client still works and an unrelated document is intact. */
async function checkOthersUnaffected() {
  await ensureWitness();
  await S.ping(witness, 5000);
  const before = witnessDoc.data;
  await S.submitOp(witnessDoc, ['.'], 5000);
  const f = await S.freshFetch(holder.server, C, witnessDoc.id);
  assert.deepEqual(f, {v: witnessDoc.version, type: URI, data: '.' + before}, 'the witness document');
  assert.deepEqual(witness.errors, []);
}

async function freshDoc(raw) {
  const id = S.uid('e');
  const r = await raw.request(opMsg(id, {v: 0, seq: 1000000, create: {type: 'text-unicode', data: 'abc'}}),
    (m) => m.a === 'op' && m.d === id);
  assert.ok(isAck(r), JSON.stringify(r));
  return id;
}

function echoCheck(request, reply) {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) return;
  for (const k of ECHO_KEYS) {
    if (request[k] !== undefined) assert.deepEqual(reply[k], request[k], `echoed "${k}" in ${JSON.stringify(reply)}`);
  }
}

/** Checks one expectation against what the raw client saw; returns a description. */
function matches(exp, request, replies, closeInfo) {
  switch (exp.kind) {
    case 'err': {
      const r = replies.find((m) => m && typeof m === 'object' && !Array.isArray(m) && m.error);
      if (!r) return `expected an error reply, got ${JSON.stringify(replies)} close ${JSON.stringify(closeInfo)}`;
      if (typeof r.error.message !== 'string') return `error without a message: ${JSON.stringify(r)}`;
      if (exp.codes[0] === '*') {
        if (typeof r.error.code !== 'string' || !r.error.code) return `error without a code: ${JSON.stringify(r)}`;
      } else if (exp.codes[0] === null) {
        if (r.error.code !== undefined && typeof r.error.code !== 'string') return `bad code ${JSON.stringify(r)}`;
      } else if (!exp.codes.includes(r.error.code)) {
        return `expected error code ${exp.codes.join(' or ')}, got ${JSON.stringify(r)}`;
      }
      if (replies.length !== 1) return `expected exactly one reply, got ${JSON.stringify(replies)}`;
      try { echoCheck(request, r); } catch (e) { return e.message; }
      return null;
    }
    case 'ok': {
      const r = replies.find((m) => !(m && m.error) && exp.pred(m));
      if (!r) return `expected a success reply, got ${JSON.stringify(replies)} close ${JSON.stringify(closeInfo)}`;
      return null;
    }
    case 'close':
      if (!closeInfo) return `expected a close, got ${JSON.stringify(replies)}`;
      if (exp.codes.length && !exp.codes.includes(closeInfo.code)) return `expected close ${exp.codes}, got ${closeInfo.code}`;
      return null;
    case 'none':
      return replies.length === 0 && !closeInfo ? null : `expected no reply, got ${JSON.stringify(replies)}`;
    case 'anyOf': {
      const fails = exp.alts.map((a) => matches(a, request, replies, closeInfo));
      return fails.includes(null) ? null : fails.join(' | ');
    }
    default:
      throw new Error(exp.kind);
  }
}

function waitsForClose(exp) {
  return exp.kind === 'close' || (exp.kind === 'anyOf' && exp.alts.some(waitsForClose));
}

describe('bad input over a raw WebSocket', () => {
  for (const [name, message, expectation] of CASES) {
    it(name, T(async () => {
      const kind = holder.server.kind;
      const exp = expectation.kind ? expectation : expectation[kind];
      const raw = await S.rawConnect(holder.server);
      try {
        const id = await freshDoc(raw);
        raw.inbox = [];
        const msg = typeof message === 'function' ? message(id) : message;
        raw.send(msg);
        const request = typeof msg === 'string' ? (() => { try { return JSON.parse(msg); } catch (_) { return null; } })() : msg;
        // Wait for a reply (or the close); then a little longer for any second reply.
        const deadline = Date.now() + 3000;
        while (raw.inbox.length === 0 && !raw.closeInfo && Date.now() < deadline) {
          if (exp.kind === 'none' && Date.now() > deadline - 2700) break;
          await S.sleep(10);
        }
        if (waitsForClose(exp) && !raw.closeInfo && raw.inbox.length === 0) await raw.waitClose(3000).catch(() => {});
        await S.sleep(50);
        const replies = raw.inbox.filter((m) => m.a !== 'init');
        const failure = matches(exp, request, replies, raw.closeInfo);
        assert.equal(failure, null, `${name}: ${failure}`);
        // The case's document: unchanged, or changed as the accepted op says.
        const okExp = exp.kind === 'ok' ? exp : exp.kind === 'anyOf' ? exp.alts.find((a) => a.kind === 'ok') : null;
        const accepted = okExp && matches(okExp, request, replies, raw.closeInfo) === null;
        const expectedDoc = accepted && okExp.doc ? okExp.doc : UNCHANGED;
        const f = await S.freshFetch(holder.server, C, id);
        assert.deepEqual({v: f.v, data: f.data}, expectedDoc, `${name}: the document afterwards`);
        if (!raw.closeInfo) {
          // This client still works too, unless closed.
          await raw.request({a: 'pp'}, (m) => m.a === 'pp', 5000);
        }
        await checkOthersUnaffected();
      } finally {
        raw.close();
      }
    }));
  }

  for (const [name, v, body, code] of HISTORY_CASES) {
    it(name, T(async () => {
      const raw = await S.rawConnect(holder.server);
      try {
        const id = S.uid('h');
        const steps = [
          opMsg(id, {v: 0, seq: 1, create: {type: URI, data: 'abc'}}),
          opMsg(id, {v: 1, seq: 2, op: [3, 'd']}),
          opMsg(id, {v: 2, seq: 3, del: true}),
          opMsg(id, {v: 3, seq: 4, create: {type: URI, data: 'new'}}),
        ];
        for (const s of steps) assert.ok(isAck(await raw.request(s, (m) => m.a === 'op' && m.d === id)));
        const req = opMsg(id, {v, seq: 5, ...body});
        const r = await raw.request(req, (m) => m.a === 'op' && m.d === id && m.error);
        assert.equal(r.error.code, code, JSON.stringify(r));
        echoCheck(req, r);
        assert.deepEqual(await S.freshFetch(holder.server, C, id), {v: 4, type: URI, data: 'new'});
        await checkOthersUnaffected();
      } finally {
        raw.close();
      }
    }));
  }

  it('invalid UTF-8 in a text frame closes with 1007', T(async () => {
    const raw = await S.rawConnect(holder.server);
    try {
      raw.send(Buffer.concat([Buffer.from(`{"a":"f","c":"${C}","d":"`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]));
      const info = await raw.waitClose(5000);
      assert.equal(info.code, 1007);
      await checkOthersUnaffected();
    } finally {
      raw.close();
    }
  }));

  it('an overlong UTF-8 encoding and a UTF-8-encoded surrogate close with 1007', T(async () => {
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      const raw = await S.rawConnect(holder.server);
      try {
        raw.send(Buffer.concat([Buffer.from('{"a":"f","c":"'), Buffer.from(bad), Buffer.from('","d":"x"}')]));
        const info = await raw.waitClose(5000);
        assert.equal(info.code, 1007, `bytes ${bad}`);
      } finally {
        raw.close();
      }
    }
    await checkOthersUnaffected();
  }));

  it(`a frame over --max-message-bytes ${MAX_MESSAGE_BYTES} closes with 1009; one under it works`, T(async () => {
    const raw = await S.rawConnect(holder.server);
    try {
      const id = S.uid('big');
      const text = 'é'.repeat(Math.floor((MAX_MESSAGE_BYTES - 200) / 2)); // 2 bytes each in UTF-8
      const r = await raw.request(opMsg(id, {v: 0, create: {type: URI, data: text}}), (m) => m.a === 'op', 10000);
      assert.ok(isAck(r), JSON.stringify(r).slice(0, 300));
      raw.send(opMsg(id, {v: 1, seq: 2, op: ['x'.repeat(MAX_MESSAGE_BYTES + 10)]}));
      const info = await raw.waitClose(5000);
      assert.equal(info.code, 1009);
      const f = await S.freshFetch(holder.server, C, id);
      assert.equal(f.v, 1);
      assert.equal(f.data, text);
      await checkOthersUnaffected();
    } finally {
      raw.close();
    }
  }));

  it('a binary frame: processed (ShareDB) or refused with a close; the server survives', T(async () => {
    const raw = await S.rawConnect(holder.server);
    try {
      raw.send(JSON.stringify({a: 'pp'}), {binary: true});
      await Promise.race([raw.next((m) => m.a === 'pp', 3000).catch(() => null), raw.waitClose(3000).catch(() => null)]);
      assert.ok(raw.closeInfo || raw.received > 0 || true);
      await checkOthersUnaffected();
    } finally {
      raw.close();
    }
  }));
});

describe('floods', () => {
  it('5000 pipelined pings and fetches: all answered or a clean close; others unaffected', {timeout: 60000},
    T(async () => {
      const raw = await S.rawConnect(holder.server);
      try {
        const id = await freshDoc(raw);
        raw.inbox = [];
        const N = 5000;
        const started = Date.now();
        for (let i = 0; i < N; i++) raw.send(i % 2 ? {a: 'pp'} : {a: 'f', c: C, d: id, v: null});
        // Meanwhile another client is served promptly.
        const t0 = Date.now();
        await checkOthersUnaffected();
        const othersMs = Date.now() - t0;
        const deadline = Date.now() + 30000;
        while (raw.inbox.length < N && !raw.closeInfo && Date.now() < deadline) await S.sleep(20);
        if (!raw.closeInfo) {
          assert.equal(raw.inbox.length, N, `replies received within 30 s (${Date.now() - started} ms)`);
          // (ShareDB answers pings synchronously and fetches after a DB callback, so
          // the two kinds interleave; each kind must be complete and correct.)
          const pongs = raw.inbox.filter((m) => m.a === 'pp');
          const fetches = raw.inbox.filter((m) => m.a === 'f');
          assert.equal(pongs.length, N / 2);
          assert.equal(fetches.length, N / 2);
          for (const m of pongs) assert.deepEqual(m, {a: 'pp'});
          for (const m of fetches) assert.deepEqual(m, {a: 'f', c: C, d: id, data: {v: 1, data: 'abc', type: URI}});
        } else {
          assert.ok([1000, 1001, 1008, 1011, 1013].includes(raw.closeInfo.code), JSON.stringify(raw.closeInfo));
        }
        assert.ok(othersMs < 10000, `another client waited ${othersMs} ms`);
      } finally {
        raw.close();
      }
    }));

  it('3000 pipelined fetches alone (reading pauses for back-pressure) are all answered', {timeout: 60000},
    T(async () => {
      // Regression: with reading paused and no write in flight, the server once
      // let go of the connection (close 1006) and then hung on SIGTERM.
      const raw = await S.rawConnect(holder.server);
      try {
        const id = await freshDoc(raw);
        for (let round = 0; round < 3; round++) {
          raw.inbox = [];
          const N = 3000;
          for (let i = 0; i < N; i++) raw.send({a: 'f', c: C, d: id, v: null});
          const deadline = Date.now() + 30000;
          while (raw.inbox.length < N && !raw.closeInfo && Date.now() < deadline) await S.sleep(20);
          assert.equal(raw.closeInfo, null, `no close: ${JSON.stringify(raw.closeInfo)}`);
          assert.equal(raw.inbox.length, N);
          assert.ok(raw.inbox.every((m) => m.a === 'f' && m.data && m.data.data === 'abc'));
        }
      } finally {
        raw.close();
      }
    }));

  it('a client that stops reading while large replies pile up does not stall others', {timeout: 90000}, T(async () => {
    const raw = await S.rawConnect(holder.server);
    try {
      const id = S.uid('bigdoc');
      const text = 'x😀'.repeat(12000); // ~60 KB of UTF-8 per snapshot
      assert.ok(isAck(await raw.request(opMsg(id, {v: 0, create: {type: URI, data: text}}), (m) => m.a === 'op', 10000)));
      raw.inbox = [];
      raw.ws._socket.pause(); // stop reading: replies back up in the server
      const N = 1500; // ~90 MB of replies if the server queued them all
      for (let i = 0; i < N; i++) raw.send({a: 'f', c: C, d: id, v: null});
      for (let k = 0; k < 3; k++) {
        const t0 = Date.now();
        await checkOthersUnaffected();
        assert.ok(Date.now() - t0 < 10000, 'another client is served while one does not read');
      }
      raw.ws._socket.resume();
      const deadline = Date.now() + 60000;
      while (raw.inbox.length < N && !raw.closeInfo && Date.now() < deadline) await S.sleep(50);
      assert.ok(raw.closeInfo || raw.inbox.length === N,
        `either all ${N} replies or a close: got ${raw.inbox.length}, close ${JSON.stringify(raw.closeInfo)}`);
      if (!raw.closeInfo) assert.ok(raw.inbox.every((m) => m.a === 'f' && m.data && m.data.data === text));
      await checkOthersUnaffected();
    } finally {
      raw.close();
    }
  }));
});

describe('REST bad requests', () => {
  for (const [path, statuses] of [
    [`/api/v1/docs/${C}/x?v=abc`, [400]],
    [`/api/v1/docs/${C}/x?v=-1`, [400]],
    [`/api/v1/docs/${C}/x/ops?from=abc`, [400]],
    [`/api/v1/docs/${C}/x/ops?from=5&to=2`, [400]],
    ['/api/v1/nothing-here', [404]],
  ]) {
    it(`GET ${path} -> ${statuses} with a JSON error`, T(async () => {
      const r = await holder.server.get(path);
      assert.ok(statuses.includes(r.status), `HTTP ${r.status}: ${r.text}`);
      assert.equal(typeof r.body, 'object', r.text);
      assert.equal(typeof r.body.error.code, 'string');
      assert.equal(typeof r.body.error.message, 'string');
    }));
  }
  it('GET at ?v= beyond the head -> 4xx with a JSON error', T(async () => {
    await ensureWitness();
    const r = await holder.server.get(`/api/v1/docs/${C}/${witnessDoc.id}?v=100000`);
    assert.ok(r.status >= 400 && r.status < 500, `HTTP ${r.status}: ${r.text}`);
    assert.equal(typeof r.body.error.code, 'string');
  }));
});
