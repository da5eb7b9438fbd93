'use strict';
// The package on its own: the rule on hand-checked examples, and registration.
// (Its agreement with otsyncd on random ops is checked by tests/js/ot_fuzz.js,
// kind transformPresence, against `otsync-ot check`.)
const {test} = require('node:test');
const assert = require('node:assert/strict');
const {transformPresence, transformCaret, withPresence, register} = require('..');

test('a caret moves as ot-text-unicode moves a cursor, except past its owner\'s own insert', () => {
  const insertAt1 = [1, 'x😀'];
  assert.equal(transformCaret(1, insertAt1, false), 1);
  assert.equal(transformCaret(1, insertAt1, true), 3);  // code points, not UTF-16 units
  assert.equal(transformCaret(3, insertAt1, false), 5);
  assert.equal(transformCaret(4, [2, {d: 3}], false), 2);
  assert.equal(transformCaret(4, [2, {d: 'abc'}], true), 2);
  assert.equal(transformCaret(2, [2, {d: 1}, 'yz'], true), 4);
});

test('a range keeps its direction and its other members; anything else passes through', () => {
  assert.deepEqual(transformPresence({index: 1, length: 2, name: 'Ada'}, ['ab'], false),
    {index: 3, length: 2, name: 'Ada'});
  assert.deepEqual(transformPresence({index: 3, length: -2}, [1, 'XY'], false), {index: 5, length: -4});
  const same = {index: 0, length: 0};
  assert.equal(transformPresence(same, [5, 'z'], false), same);  // unchanged: the same object
  assert.equal(transformPresence(null, ['a'], true), null);
  assert.equal(transformPresence('here', ['a'], true), 'here');
  assert.deepEqual(transformPresence({index: 1.5}, ['a'], true), {index: 1.5});
});

test('withPresence and register take the ot-text-unicode type or module', () => {
  const base = {name: 'text-unicode', uri: 'http://sharejs.org/types/text-unicode', apply: () => {}};
  const type = withPresence({type: base});
  assert.equal(type.uri, base.uri);
  assert.equal(type.transformPresence, transformPresence);
  assert.equal(base.transformPresence, undefined, 'the base type is left as it was');
  const registered = [];
  register({types: {register: (t) => registered.push(t)}}, base);
  assert.equal(registered[0].transformPresence, transformPresence);
  assert.throws(() => withPresence({uri: 'json0'}), TypeError);
});
