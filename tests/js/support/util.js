'use strict';
// Small promise helpers: every wait in the suite is bounded.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves/rejects like `promise`, or rejects after `ms` with `what` in the message. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `predicate` (sync or async) every `interval` ms until true, at most `ms`. */
async function waitUntil(predicate, ms, what, interval = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${typeof what === 'function' ? what() : what}`);
    await sleep(interval);
  }
}

/** Seeded PRNG (mulberry32): a function returning floats in [0, 1). */
function makeRng(seed) {
  let a = seed >>> 0;
  const rng = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  rng.int = (n) => Math.floor(rng() * n); // [0, n)
  rng.pick = (arr) => arr[rng.int(arr.length)];
  return rng;
}

/** The seed for randomised tests: $OTSYNC_FUZZ_SEED or a random one (printed by the caller). */
function fuzzSeed() {
  const env = process.env.OTSYNC_FUZZ_SEED;
  if (env && /^\d+$/.test(env)) return Number(env) >>> 0;
  return (Math.random() * 0xffffffff) >>> 0;
}

module.exports = {sleep, withTimeout, waitUntil, makeRng, fuzzSeed};
