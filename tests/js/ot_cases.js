#!/usr/bin/env node
'use strict';
// Random OT test-case generator for otsync's differential tests.
//
// Every case is one JSON line whose expected "result" (or "error") is computed
// by the reference implementation, ot-text-unicode@4.0.0. The C++ tool
// `otsync-ot check` reads these lines on stdin and checks each one.
//
// Line formats (a "kind" key is always present):
//   apply              {"kind","str","op","result"|"error"}
//   compose            {"kind","op1","op2","result"|"error"}
//   transform          {"kind","op","otherOp","side","result"|"error"}
//   transformPosition  {"kind","pos","op","result"}
//   transformSelection {"kind","sel","op","result"}
//   transformPresence  {"kind","value","op","own","result"}   (clients/js: the presence rule)
//   normalize          {"kind","op","result"}
//   makeInvertible     {"kind","op","str","result"}
//   invert             {"kind","op","result"|"error"}
//
// Usage as a CLI:
//   node tests/js/ot_cases.js --seed S --count N [--kinds apply,compose,...]
//                             [--profile small] [--no-noncanonical]
//                             [--out FILE] [--stats]
// Usage as a module:
//   const {generateCases} = require('./ot_cases');
//   const cases = generateCases({seed: 42, count: 1000});   // array of objects
//
// Only plain CommonJS and node built-ins (runs on node >= 18).

const fs = require('fs');
const {type} = require('ot-text-unicode');
const {transformPresence} = require('../../clients/js');

const ALL_KINDS = [
  'apply', 'compose', 'transform', 'transformPosition', 'transformSelection',
  'normalize', 'makeInvertible', 'invert', 'transformPresence',
];

// Relative frequency of each kind in the default profile. Lines are dealt
// round-robin from a list with this many copies of each kind, so the spread is
// exact, not random.
const DEFAULT_WEIGHTS = {
  apply: 3, compose: 3, transform: 4, transformPosition: 1,
  transformSelection: 1, normalize: 2, makeInvertible: 1, invert: 1, transformPresence: 1,
};

// ---------------------------------------------------------------------------
// Seeded PRNG (mulberry32) and helpers.

/** Turn a seed given as a number or string into a uint32. Decimal strings
 *  below 2^32 map to themselves, anything else is hashed (FNV-1a). */
function parseSeed(seed) {
  if (typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed < 4294967296) return seed;
  const s = String(seed);
  if (/^[0-9]+$/.test(s) && Number(s) < 4294967296) return Number(s);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function makeRng(seed) {
  let a = parseSeed(seed) >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n); // 0 .. n-1
  const range = (lo, hi) => lo + int(hi - lo + 1); // inclusive
  const chance = (p) => next() < p;
  const pick = (arr) => arr[int(arr.length)];
  return {next, int, range, chance, pick};
}

const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));

// ---------------------------------------------------------------------------
// Text.

// Mostly ASCII (incl. characters that need JSON escaping), then 2-byte,
// 3-byte (incl. BMP characters above the surrogate range, U+E000..U+FFFF,
// which a sloppy "code >= 0xD800" surrogate test gets wrong) and astral.
const ASCII = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789      ';
const ASCII_SPECIAL = ['\n', '\t', '"', '\\', '/', '\u0001', '\u007f'];
const TWO_BYTE = ['é', 'ß', 'ñ', 'Ω'];
const THREE_BYTE = ['中', '€', '\uE000', '\uFB00', '\uFFFD'];
const ASTRAL = ['😀', '🤟', '💃', '𝄞'];

function randChar(rng) {
  const r = rng.next();
  if (r < 0.62) return ASCII[rng.int(ASCII.length)];
  if (r < 0.66) return rng.pick(ASCII_SPECIAL);
  if (r < 0.76) return rng.pick(TWO_BYTE);
  if (r < 0.86) return rng.pick(THREE_BYTE);
  return rng.pick(ASTRAL);
}

/** Array of n random code points (each a JS string of 1 or 2 UTF-16 units). */
function randChars(rng, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(randChar(rng));
  return out;
}
const randText = (rng, n) => randChars(rng, n).join('');

/** A random document as an array of code points. */
function genDoc(rng, minLen, maxLen) {
  let n;
  if (minLen === 0 && rng.chance(0.05)) n = 0;
  else n = rng.range(minLen, maxLen);
  return randChars(rng, n);
}

// ---------------------------------------------------------------------------
// Ops.

/** A delete component for the given code points (the actual doc text). */
function makeDel(rng, chars, style) {
  const n = chars.length;
  if (style === 'number') return {d: n};
  if (style === 'string') return {d: chars.join('')};
  const r = rng.next();
  if (r < 0.4) return {d: n};
  if (r < 0.85) return {d: chars.join('')};
  return {d: randText(rng, n)}; // wrong text, same length: the text is never checked
}

/**
 * A random valid op against doc (array of code points), in canonical form.
 * opts.deleteStyle: 'mixed' (default) | 'number' | 'string'
 * opts.overrun: null | 'delete' (a delete running past the end of the doc) |
 *               'skip' (a skip running past the end, followed by an edit)
 */
function genOp(rng, doc, opts) {
  // Empty ops are valid and worth testing, but keep them to a few percent.
  for (let attempt = 0; attempt < 20; attempt++) {
    const op = genOpOnce(rng, doc, opts || {});
    if (op.length > 0 || rng.chance(0.08)) return op;
  }
  return [];
}

function genOpOnce(rng, doc, opts) {
  const style = opts.deleteStyle || 'mixed';
  const len = doc.length;
  const comps = [];
  let i = 0;
  const stopChance = opts.stopChance === undefined ? 0.12 : opts.stopChance;
  while (i < len) {
    const r = rng.next();
    const room = len - i;
    if (r < 0.32) {
      const k = rng.range(1, Math.min(room, rng.chance(0.5) ? 4 : 24));
      comps.push(k);
      i += k;
    } else if (r < 0.57) {
      comps.push(randText(rng, rng.range(1, 8)));
    } else if (r < 0.86) {
      const k = rng.range(1, Math.min(room, rng.chance(0.7) ? 3 : 12));
      comps.push(makeDel(rng, doc.slice(i, i + k), style));
      i += k;
    } else {
      break;
    }
    if (comps.length > 0 && rng.chance(stopChance)) break;
  }
  if (opts.overrun === 'delete') {
    const s = rng.range(0, len - i);
    if (s > 0) comps.push(s);
    i += s;
    const extra = rng.range(1, 5);
    const real = doc.slice(i);
    const st = style === 'mixed' ? (rng.chance(0.5) ? 'number' : 'string') : style;
    comps.push(st === 'number' ? {d: real.length + extra} : {d: real.join('') + randText(rng, extra)});
    if (rng.chance(0.3)) comps.push(randText(rng, rng.range(1, 4)));
  } else if (opts.overrun === 'skip') {
    comps.push(len - i + rng.range(1, 4));
    if (rng.chance(0.5)) comps.push(randText(rng, rng.range(1, 4)));
    else comps.push({d: rng.range(1, 3)});
  } else if (rng.chance(i >= len ? 0.3 : 0.08)) {
    // Insert at the very end of the document (the walk above rarely does).
    if (i < len) comps.push(len - i);
    comps.push(randText(rng, rng.range(1, 6)));
  }
  return type.normalize(comps);
}

/** A small op (1..4 components) for the benchmark profile: one or two edits. */
function genSmallOp(rng, doc) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const len = doc.length;
    const nEdits = rng.chance(0.75) ? 1 : 2;
    const comps = [];
    let i = 0;
    for (let e = 0; e < nEdits; e++) {
      const p = rng.range(i, len);
      if (p > i) comps.push(p - i);
      i = p;
      const r = rng.next();
      const room = len - i;
      if (r < 0.55 || room === 0) {
        comps.push(randText(rng, rng.range(1, 4)));
      } else if (r < 0.9) {
        const k = rng.range(1, Math.min(room, 4));
        comps.push(makeDel(rng, doc.slice(i, i + k), 'mixed'));
        i += k;
      } else {
        const k = rng.range(1, Math.min(room, 4));
        comps.push(makeDel(rng, doc.slice(i, i + k), 'mixed'));
        comps.push(randText(rng, rng.range(1, 4)));
        i += k;
      }
    }
    const op = type.normalize(comps);
    if (op.length >= 1 && op.length <= 4) return op;
  }
  throw Error('genSmallOp: could not make a small op');
}

/** Pre-positions (in the input document) where op inserts text. */
function insertPrePositions(op) {
  const out = [];
  let pre = 0;
  for (const c of op) {
    if (typeof c === 'number') pre += c;
    else if (typeof c === 'string') out.push(pre);
    else pre += typeof c.d === 'number' ? c.d : Array.from(c.d).length;
  }
  return out;
}

/** An op on doc that inserts (and maybe deletes) exactly where `other` inserts:
 *  exercises the left/right tie-break of transform. */
function genTieOp(rng, doc, other) {
  const ps = insertPrePositions(other);
  if (ps.length === 0) return genOp(rng, doc);
  const p = Math.min(rng.pick(ps), doc.length);
  const comps = [];
  if (rng.chance(0.3) && p > 0) {
    const k = rng.range(1, Math.min(p, 3));
    if (p - k > 0) comps.push(p - k);
    comps.push(makeDel(rng, doc.slice(p - k, p), 'mixed'));
  } else if (p > 0) {
    comps.push(p);
  }
  comps.push(randText(rng, rng.range(1, 4)));
  if (rng.chance(0.3) && p < doc.length) {
    const k = rng.range(1, Math.min(doc.length - p, 3));
    comps.push(makeDel(rng, doc.slice(p, p + k), 'mixed'));
  }
  return type.normalize(comps);
}

/**
 * A valid but non-canonical version of op: an insert or delete is split in
 * two (adjacent inserts / adjacent deletes pass checkOp). Returns null if op
 * has nothing to split.
 */
function splitComponent(rng, op) {
  const idx = [];
  op.forEach((c, i) => {
    if (typeof c === 'string' && Array.from(c).length >= 2) idx.push(i);
    else if (typeof c === 'object' && (typeof c.d === 'number' ? c.d : Array.from(c.d).length) >= 2) idx.push(i);
  });
  if (idx.length === 0) return null;
  const i = rng.pick(idx);
  const c = op[i];
  const out = clone(op);
  let parts;
  if (typeof c === 'string') {
    const cp = Array.from(c);
    const k = rng.range(1, cp.length - 1);
    parts = [cp.slice(0, k).join(''), cp.slice(k).join('')];
  } else if (typeof c.d === 'number') {
    const k = rng.range(1, c.d - 1);
    parts = [{d: k}, {d: c.d - k}];
  } else {
    const cp = Array.from(c.d);
    const k = rng.range(1, cp.length - 1);
    const a = cp.slice(0, k).join('');
    const b = cp.slice(k).join('');
    const r = rng.next();
    if (r < 0.5) parts = [{d: a}, {d: b}];
    else if (r < 0.75) parts = [{d: k}, {d: b}];
    else parts = [{d: a}, {d: cp.length - k}];
  }
  out.splice(i, 1, parts[0], parts[1]);
  return out;
}

// Defects that checkOp rejects. Only JSON-ordinary values: no booleans, null,
// non-integer numbers or lone surrogates (the C++ side deliberately differs).
const DEFECTS = [
  'adjacentSkips', 'trailingSkip', 'zeroSkip', 'negativeSkip', 'emptyInsert',
  'dZero', 'dEmpty', 'dNegative', 'dArray', 'emptyObject',
];

/** A copy of op with one defect that checkOp rejects. */
function corruptOp(rng, op) {
  const out = clone(op);
  const defect = rng.pick(DEFECTS);
  const at = rng.int(out.length + 1);
  switch (defect) {
    case 'adjacentSkips': {
      const skips = [];
      out.forEach((c, i) => { if (typeof c === 'number' && c >= 2) skips.push(i); });
      if (skips.length > 0 && rng.chance(0.7)) {
        const i = rng.pick(skips);
        const k = rng.range(1, out[i] - 1);
        out.splice(i, 1, k, out[i] - k);
      } else {
        out.splice(at, 0, rng.range(1, 3), rng.range(1, 3));
      }
      break;
    }
    case 'trailingSkip': out.push(rng.range(1, 5)); break;
    case 'zeroSkip': out.splice(at, 0, 0); break;
    case 'negativeSkip': out.splice(at, 0, -rng.range(1, 3)); break;
    case 'emptyInsert': out.splice(at, 0, ''); break;
    case 'dZero': out.splice(at, 0, {d: 0}); break;
    case 'dEmpty': out.splice(at, 0, {d: ''}); break;
    case 'dNegative': out.splice(at, 0, {d: -rng.range(1, 2)}); break;
    case 'dArray': out.splice(at, 0, {d: [1]}); break;
    case 'emptyObject': out.splice(at, 0, {}); break;
  }
  return out;
}

/** A raw, non-normalised op for the normalize cases. */
function genRawOp(rng, doc) {
  if (rng.chance(0.5)) {
    // Start from a valid op, split components and sprinkle no-ops.
    let op = genOp(rng, doc);
    const nSplits = rng.int(3);
    for (let s = 0; s < nSplits; s++) {
      const t = splitComponent(rng, op);
      if (t) op = t;
    }
    // Split a skip into two.
    const skips = [];
    op.forEach((c, i) => { if (typeof c === 'number' && c >= 2) skips.push(i); });
    if (skips.length > 0 && rng.chance(0.5)) {
      const i = rng.pick(skips);
      const k = rng.range(1, op[i] - 1);
      op.splice(i, 1, k, op[i] - k);
    }
    const nNoise = rng.int(4);
    const noise = [() => 0, () => '', () => ({d: 0}), () => ({d: ''})];
    for (let s = 0; s < nNoise; s++) op.splice(rng.int(op.length + 1), 0, rng.pick(noise)());
    if (rng.chance(0.3)) op.push(rng.range(1, 5));
    if (rng.chance(0.1)) op.push(rng.range(1, 5));
    return op;
  }
  // Purely random sequence of components.
  const n = rng.int(10);
  const op = [];
  for (let k = 0; k < n; k++) {
    const r = rng.next();
    if (r < 0.3) op.push(rng.chance(0.2) ? 0 : rng.range(1, 6));
    else if (r < 0.6) op.push(rng.chance(0.2) ? '' : randText(rng, rng.range(1, 4)));
    else {
      const q = rng.next();
      if (q < 0.1) op.push({d: 0});
      else if (q < 0.2) op.push({d: ''});
      else if (q < 0.6) op.push({d: rng.range(1, 6)});
      else op.push({d: randText(rng, rng.range(1, 4))});
    }
  }
  return op;
}

// ---------------------------------------------------------------------------
// Running the reference and recording a case.

/** Run fn on deep copies of the inputs; return {result} or {error}. */
function runRef(fn) {
  try {
    const result = fn();
    return {result: clone(result)};
  } catch (e) {
    const msg = e && typeof e.message === 'string' ? e.message : String(e);
    const out = {error: msg};
    if (!(e instanceof Error) || e.constructor !== Error) {
      // Not a plain Error (e.g. a TypeError from the reference's internals).
      Object.defineProperty(out, 'errorType', {value: e && e.constructor ? e.constructor.name : typeof e, enumerable: false});
    }
    return out;
  }
}

function finish(line, outcome) {
  if ('error' in outcome) line.error = outcome.error;
  else line.result = outcome.result;
  if (outcome.errorType) Object.defineProperty(line, 'errorType', {value: outcome.errorType, enumerable: false});
  return line;
}

// ---- per-kind generators. Each takes (rng, ctx, opts) and returns one line.

const INVALID_RATE = 0.05;
const NONCANONICAL_RATE = 0.03;

function genApply(rng, ctx, opts) {
  const doc = genDoc(rng, 0, 60);
  const str = doc.join('');
  let op;
  const r = rng.next();
  if (!opts.small && r < INVALID_RATE) op = corruptOp(rng, genOp(rng, doc));
  else if (!opts.small && r < 0.12) op = genOp(rng, doc, {overrun: 'delete'});
  else if (!opts.small && r < 0.17) op = genOp(rng, doc, {overrun: 'skip'});
  else {
    op = genOp(rng, doc);
    if (opts.noncanonical && rng.chance(NONCANONICAL_RATE)) op = splitComponent(rng, op) || op;
  }
  const rec = {kind: 'apply', str, op: clone(op)};
  return finish(rec, runRef(() => type.apply(str, clone(op))));
}

function genCompose(rng, ctx, opts) {
  const doc = opts.small ? genDoc(rng, 20, 100) : genDoc(rng, 0, 60);
  let op1, op2;
  if (opts.small) {
    op1 = genSmallOp(rng, doc);
    const doc2 = Array.from(type.apply(doc.join(''), clone(op1)));
    op2 = genSmallOp(rng, doc2);
  } else {
    op1 = genOp(rng, doc, rng.chance(0.05) ? {overrun: 'delete'} : undefined);
    let doc2;
    if (rng.chance(0.05)) doc2 = genDoc(rng, 0, 60); // unrelated: lengths need not match
    else doc2 = Array.from(type.apply(doc.join(''), clone(op1)));
    op2 = genOp(rng, doc2);
    const r = rng.next();
    if (r < INVALID_RATE) {
      const w = rng.int(3);
      if (w !== 1) op1 = corruptOp(rng, op1);
      if (w !== 0) op2 = corruptOp(rng, op2);
    } else if (opts.noncanonical && r < INVALID_RATE + NONCANONICAL_RATE) {
      if (rng.chance(0.5)) op1 = splitComponent(rng, op1) || op1;
      else op2 = splitComponent(rng, op2) || op2;
    }
  }
  const rec = {kind: 'compose', op1: clone(op1), op2: clone(op2)};
  return finish(rec, runRef(() => type.compose(clone(op1), clone(op2))));
}

function genTransform(rng, ctx, opts) {
  // Transform cases come in pairs: the same (op, otherOp) with both sides.
  if (ctx.pendingTransform) {
    const p = ctx.pendingTransform;
    ctx.pendingTransform = null;
    const rec = {kind: 'transform', op: clone(p.op), otherOp: clone(p.otherOp), side: p.side};
    return finish(rec, runRef(() => type.transform(clone(p.op), clone(p.otherOp), p.side)));
  }
  const doc = opts.small ? genDoc(rng, 20, 100) : genDoc(rng, 0, 60);
  let op, otherOp;
  if (opts.small) {
    op = genSmallOp(rng, doc);
    otherOp = genSmallOp(rng, doc);
  } else {
    op = genOp(rng, doc, rng.chance(0.04) ? {overrun: 'delete'} : undefined);
    const q = rng.next();
    if (q < 0.2) otherOp = genTieOp(rng, doc, op);
    else if (q < 0.25) otherOp = genOp(rng, genDoc(rng, 0, 60)); // unrelated doc
    else otherOp = genOp(rng, doc, rng.chance(0.04) ? {overrun: 'delete'} : undefined);
    if (rng.chance(0.5)) { const t = op; op = otherOp; otherOp = t; }
    const r = rng.next();
    if (r < INVALID_RATE) {
      const w = rng.int(3);
      if (w !== 1) op = corruptOp(rng, op);
      if (w !== 0) otherOp = corruptOp(rng, otherOp);
    } else if (opts.noncanonical && r < INVALID_RATE + NONCANONICAL_RATE) {
      if (rng.chance(0.5)) op = splitComponent(rng, op) || op;
      else otherOp = splitComponent(rng, otherOp) || otherOp;
    }
  }
  const side = rng.chance(0.5) ? 'left' : 'right';
  ctx.pendingTransform = {op: clone(op), otherOp: clone(otherOp), side: side === 'left' ? 'right' : 'left'};
  const rec = {kind: 'transform', op: clone(op), otherOp: clone(otherOp), side};
  return finish(rec, runRef(() => type.transform(clone(op), clone(otherOp), side)));
}

function genOpMaybeOverrun(rng, doc) {
  return genOp(rng, doc, rng.chance(0.1) ? {overrun: 'delete'} : undefined);
}

function genTransformPosition(rng) {
  const doc = genDoc(rng, 0, 60);
  const op = genOpMaybeOverrun(rng, doc);
  const pos = rng.range(0, doc.length + 2);
  const rec = {kind: 'transformPosition', pos, op: clone(op)};
  return finish(rec, runRef(() => type.transformPosition(pos, clone(op))));
}

function genTransformSelection(rng) {
  const doc = genDoc(rng, 0, 60);
  const op = genOpMaybeOverrun(rng, doc);
  const sel = rng.chance(0.3)
    ? rng.range(0, doc.length + 2)
    : [rng.range(0, doc.length + 2), rng.range(0, doc.length + 2)];
  const rec = {kind: 'transformSelection', sel: clone(sel), op: clone(op)};
  return finish(rec, runRef(() => type.transformSelection(clone(sel), clone(op))));
}

// A presence value as an editor sends it (a caret, a selection either way, extra members), or
// one the rule leaves alone (null, a string, a fractional or negative index).
function genPresenceValue(rng, length) {
  const r = rng.next();
  if (r < 0.05) return null;
  if (r < 0.08) return 'elsewhere';
  if (r < 0.1) return {index: 1.5, length: 0};
  if (r < 0.12) return {index: -1};
  const index = rng.range(0, length + 2);
  const value = {index};
  const shape = rng.next();
  if (shape < 0.4) value.length = 0;
  else if (shape < 0.7) value.length = rng.range(0, length + 2);
  else if (shape < 0.9) value.length = -rng.range(0, index + 2);
  if (rng.chance(0.2)) value.name = 'Ada';
  return value;
}

function genTransformPresence(rng) {
  const doc = genDoc(rng, 0, 60);
  const op = genOpMaybeOverrun(rng, doc);
  const value = genPresenceValue(rng, doc.length);
  const own = rng.chance(0.5);
  const rec = {kind: 'transformPresence', value: clone(value), op: clone(op), own};
  return finish(rec, runRef(() => transformPresence(clone(value), clone(op), own)));
}

function genNormalize(rng) {
  const doc = genDoc(rng, 0, 40);
  const op = genRawOp(rng, doc);
  const rec = {kind: 'normalize', op: clone(op)};
  return finish(rec, runRef(() => type.normalize(clone(op))));
}

function genMakeInvertible(rng) {
  const doc = genDoc(rng, 0, 60);
  const str = doc.join('');
  const r = rng.next();
  const deleteStyle = rng.chance(0.7) ? 'number' : 'mixed';
  let op;
  if (r < 0.25) op = genOp(rng, doc, {deleteStyle, overrun: 'delete'});
  else if (r < 0.3) op = genOp(rng, doc, {deleteStyle, overrun: 'skip'});
  else op = genOp(rng, doc, {deleteStyle});
  const rec = {kind: 'makeInvertible', op: clone(op), str};
  return finish(rec, runRef(() => type.makeInvertible(clone(op), str)));
}

function genInvert(rng) {
  const doc = genDoc(rng, 0, 60);
  const op = genOp(rng, doc, {deleteStyle: rng.chance(0.75) ? 'string' : 'mixed'});
  const rec = {kind: 'invert', op: clone(op)};
  return finish(rec, runRef(() => type.invert(clone(op))));
}

const GENERATORS = {
  apply: genApply,
  compose: genCompose,
  transform: genTransform,
  transformPosition: genTransformPosition,
  transformSelection: genTransformSelection,
  normalize: genNormalize,
  makeInvertible: genMakeInvertible,
  invert: genInvert,
  transformPresence: genTransformPresence,
};

// ---------------------------------------------------------------------------

/**
 * Generate `count` cases.
 * options: {seed, count, kinds?: string[] | 'a,b', profile?: 'default'|'small',
 *           noncanonical?: boolean (default true; ignored by profile small)}
 * Returns an array of plain objects (one per JSON line).
 */
function generateCases(options) {
  const seed = options.seed === undefined ? 1 : options.seed;
  const count = options.count === undefined ? 1000 : options.count;
  const profile = options.profile || 'default';
  if (profile !== 'default' && profile !== 'small') throw Error('unknown profile: ' + profile);
  const small = profile === 'small';
  let kinds = options.kinds;
  if (typeof kinds === 'string') kinds = kinds.split(',').map((s) => s.trim()).filter(Boolean);
  if (!kinds || kinds.length === 0) kinds = small ? ['transform', 'compose'] : ALL_KINDS.slice();
  for (const k of kinds) {
    if (!GENERATORS[k]) throw Error('unknown kind: ' + k + ' (known: ' + ALL_KINDS.join(',') + ')');
  }
  if (small) {
    kinds = kinds.filter((k) => k === 'transform' || k === 'compose');
    if (kinds.length === 0) throw Error('profile small only has the kinds transform and compose');
  }
  const schedule = [];
  for (const k of kinds) {
    const w = small ? 1 : DEFAULT_WEIGHTS[k];
    for (let i = 0; i < w; i++) schedule.push(k);
  }
  const rng = makeRng(seed);
  const ctx = {pendingTransform: null};
  const opts = {small, noncanonical: !small && options.noncanonical !== false};
  const out = [];
  for (let i = 0; i < count; i++) {
    const kind = schedule[i % schedule.length];
    const line = GENERATORS[kind](rng, ctx, opts);
    if (small && 'error' in line) throw Error('internal: profile small produced an error case');
    out.push(line);
  }
  return out;
}

/** Like generateCases, but returns the JSON lines (strings, no newline). */
function generateLines(options) {
  return generateCases(options).map((c) => JSON.stringify(c));
}

/** Per-kind counts of results and of each error message. */
function caseStats(cases) {
  const stats = {};
  for (const c of cases) {
    const s = stats[c.kind] || (stats[c.kind] = {total: 0, results: 0, errors: {}});
    s.total++;
    if ('error' in c) {
      const key = (c.errorType ? c.errorType + ': ' : '') + c.error;
      s.errors[key] = (s.errors[key] || 0) + 1;
    } else {
      s.results++;
    }
  }
  return stats;
}

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv, spec) {
  // spec: {name: 'string'|'number'|'bool'}
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { out.help = true; continue; }
    if (!a.startsWith('--')) throw Error('unexpected argument: ' + a);
    let name = a.slice(2);
    let val;
    const eq = name.indexOf('=');
    if (eq >= 0) { val = name.slice(eq + 1); name = name.slice(0, eq); }
    if (name.startsWith('no-') && spec[name.slice(3)] === 'bool') { out[name.slice(3)] = false; continue; }
    if (!(name in spec)) throw Error('unknown option: --' + name);
    if (spec[name] === 'bool') { out[name] = true; continue; }
    if (val === undefined) {
      if (i + 1 >= argv.length) throw Error('missing value for --' + name);
      val = argv[++i];
    }
    if (spec[name] === 'number') {
      const n = Number(val);
      if (!Number.isFinite(n)) throw Error('--' + name + ' needs a number, got ' + val);
      out[name] = n;
    } else {
      out[name] = val;
    }
  }
  return out;
}

const USAGE = `usage: node tests/js/ot_cases.js --seed S --count N [options]
  --seed S            PRNG seed (uint32, or any string, which is hashed)
  --count N           number of JSON lines to write (default 1000)
  --kinds a,b,...     only these kinds (${ALL_KINDS.join(',')})
  --profile small     benchmark profile: docs of 20-100 code points, ops of
                      1-4 components, valid transform/compose cases only
  --no-noncanonical   no valid-but-unnormalised ops (split inserts/deletes)
  --out FILE          write to FILE instead of stdout
  --stats             print per-kind result/error counts to stderr
`;

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), {
      seed: 'string', count: 'number', kinds: 'string', profile: 'string',
      noncanonical: 'bool', out: 'string', stats: 'bool',
    });
  } catch (e) {
    process.stderr.write(e.message + '\n' + USAGE);
    process.exit(2);
  }
  if (args.help) { process.stdout.write(USAGE); return; }
  if (args.seed === undefined) {
    process.stderr.write('--seed is required\n' + USAGE);
    process.exit(2);
  }
  const count = args.count === undefined ? 1000 : args.count;
  if (!Number.isInteger(count) || count < 0) {
    process.stderr.write('--count must be a non-negative integer\n');
    process.exit(2);
  }
  let cases;
  try {
    cases = generateCases({
      seed: args.seed, count, kinds: args.kinds, profile: args.profile,
      noncanonical: args.noncanonical,
    });
  } catch (e) {
    process.stderr.write(e.message + '\n');
    process.exit(2);
  }
  const text = cases.map((c) => JSON.stringify(c) + '\n').join('');
  if (args.stats) process.stderr.write(JSON.stringify(caseStats(cases), null, 2) + '\n');
  if (args.out) {
    fs.writeFileSync(args.out, text);
  } else {
    process.stdout.on('error', (e) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
    process.stdout.write(text);
  }
}

module.exports = {
  ALL_KINDS, DEFAULT_WEIGHTS, DEFECTS,
  parseSeed, makeRng, clone,
  genDoc, genOp, genSmallOp, genTieOp, genRawOp, corruptOp, splitComponent,
  generateCases, generateLines, caseStats, parseArgs,
  type,
};

if (require.main === module) main();
