'use strict';
// Random text-unicode edits. Positions and lengths are in code points, as the
// type counts them; texts mix ASCII, Latin-1, CJK, Cyrillic and astral
// characters (emoji, musical symbols) so that UTF-16 / UTF-8 / code-point
// counts all differ.

const otText = require('ot-text-unicode');

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyz      \n',
  'é', 'ß', 'ñ', 'ø', '中', '文', 'ж', 'Ω', 'ÿ',
  '😀', '🎉', '𝄞', '🚀', '👍', '🏽', '𐍈', '🀄',
];

const codePoints = (s) => Array.from(s);
const cpLength = (s) => codePoints(s).length;

function randomText(rng, minLen = 1, maxLen = 6) {
  const n = minLen + rng.int(maxLen - minLen + 1);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(ALPHABET);
  return s;
}

/** One random op against `text`: an insert, a numeric delete or a string delete. */
function randomOp(rng, text) {
  const cps = codePoints(text);
  const len = cps.length;
  let pos;
  let comp;
  if (len === 0 || rng() < 0.55) {
    pos = rng.int(len + 1);
    comp = randomText(rng);
  } else {
    pos = rng.int(len);
    const n = 1 + rng.int(Math.min(5, len - pos));
    comp = rng() < 0.3 ? {d: cps.slice(pos, pos + n).join('')} : {d: n};
  }
  return pos > 0 ? [pos, comp] : [comp];
}

/** Applies an op with the reference type. */
const apply = (text, op) => otText.type.apply(text, op);

/** Replays a REST op log ({v, create|op|del}) from version 0: {v, type, data}. */
function replayLog(ops) {
  let type = null;
  let data;
  let v = 0;
  for (const op of ops) {
    if (op.v !== v) throw new Error(`op log gap: expected v ${v}, got ${op.v}`);
    if (op.create) {
      type = op.create.type;
      data = otText.type.create(op.create.data);
    } else if (op.del) {
      type = null;
      data = undefined;
    } else if ('op' in op) {
      if (!type) throw new Error(`op at v ${op.v} on a document with no type`);
      data = apply(data, op.op);
    } else {
      throw new Error(`op at v ${op.v} has no body: ${JSON.stringify(op)}`);
    }
    v++;
  }
  return {v, type, data};
}

module.exports = {ALPHABET, codePoints, cpLength, randomText, randomOp, apply, replayLog};
