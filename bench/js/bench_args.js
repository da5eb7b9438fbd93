'use strict';
// What the load benchmarks (side_by_side.js, redis_scaleout.js) share: their
// own flags before `--`, the otsync-load flags after it, and medians.

/** Splits process.argv: `arg(name, fallback)` reads `--name VALUE` before `--`; `extra` is what follows it. */
function parseArgs(argv = process.argv.slice(2)) {
  const dashdash = argv.indexOf('--');
  const own = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const extra = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  const arg = (name, fallback) => {
    const i = own.indexOf(`--${name}`);
    return i >= 0 ? own[i + 1] : fallback;
  };
  return {arg, extra};
}

/** The median of the numbers in `xs` (others are skipped); null when there are none. */
function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : null;
}

module.exports = {parseArgs, median};
