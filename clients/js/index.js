'use strict';
// text-unicode with presence: the `ot-text-unicode` type plus `transformPresence`,
// so that the unmodified sharedb client (Node and browsers) can show remote
// cursors and selections. Registered under the type's own name and URI, it
// replaces the plain type for documents of that type.
//
//   const ShareDB = require('sharedb/lib/client');
//   const {register} = require('@otsync/text-unicode-presence');
//   register(ShareDB, require('ot-text-unicode'));
//
// A presence value is `{index, length, ...}` in Unicode code points (`length`
// 0: a caret; negative: a selection extending backwards from `index`); other
// members travel unchanged. Any other value (a string, an object without an
// integer `index`) is passed through untouched, and null stays null.
//
// The rule is otsyncd's (src/ot/position.cpp, `transform_caret`), checked
// against it on random ops by tests: each end of the range moves as
// ot-text-unicode's `transformPosition` moves a cursor, except that an insert
// exactly at it moves it past the inserted text when the op is the
// presence owner's own (the author's caret follows what they type).

/** Code points in a string. */
function codePoints(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** Where `cursor` ends up after `op`; `isOwnOp`: an insert at the cursor moves it. */
function transformCaret(cursor, op, isOwnOp) {
  let pos = 0;
  for (const c of op) {
    if (cursor < pos || (cursor === pos && !isOwnOp)) break;
    if (typeof c === 'number') {
      pos += c;
    } else if (typeof c === 'string') {
      const n = codePoints(c);
      pos += n;
      cursor += n;
    } else if (c && typeof c === 'object' && c.d !== undefined) {
      const n = typeof c.d === 'number' ? c.d : codePoints(c.d);
      cursor -= Math.min(n, cursor - pos);
    }
  }
  return cursor;
}

const MAX = Number.MAX_SAFE_INTEGER;

function isRange(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) &&
    Number.isInteger(value.index) && value.index >= 0 && value.index <= MAX &&
    (value.length === undefined || (Number.isInteger(value.length) && Math.abs(value.length) <= MAX));
}

/** The presence `value` after `op`. */
function transformPresence(value, op, isOwnOp) {
  if (!isRange(value)) return value;
  const start = value.index;
  const length = value.length || 0;
  const end = length < 0 ? start - Math.min(start, -length) : start + length;
  const newStart = transformCaret(start, op, !!isOwnOp);
  const newEnd = transformCaret(end, op, !!isOwnOp);
  if (newStart === start && newEnd === end) return value;
  return Object.assign({}, value, {index: newStart, length: newEnd - newStart});
}

/** The `ot-text-unicode` type `base` (its `.type`, or the module) with `transformPresence` added. */
function withPresence(base) {
  const type = base && base.type ? base.type : base;
  if (!type || type.uri !== 'http://sharejs.org/types/text-unicode') {
    throw new TypeError('withPresence expects the ot-text-unicode type (or module)');
  }
  return Object.assign({}, type, {transformPresence});
}

/** Registers the type with presence in `ShareDB` (the sharedb client module), replacing the plain one. */
function register(ShareDB, base) {
  const type = withPresence(base);
  ShareDB.types.register(type);
  return type;
}

module.exports = {withPresence, register, transformPresence, transformCaret};
