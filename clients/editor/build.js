'use strict';
// Builds the editor page into dist/: index.html, editor.js (one bundle: CodeMirror 6, the
// unmodified sharedb client, @otsync/text-unicode-presence, ot-text-unicode) and editor.css.
// otsyncd serves dist/ at / (index.html) and /editor/NAME (the rest); CMake copies it next to
// the binary (build/bin/editor). Nothing is fetched at run time.
//   node build.js            (npm run build)
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const here = __dirname;
const out = path.join(here, 'dist');

async function main() {
  fs.rmSync(out, {recursive: true, force: true});
  fs.mkdirSync(out, {recursive: true});
  await esbuild.build({
    entryPoints: [path.join(here, 'src', 'main.js')],
    outfile: path.join(out, 'editor.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    legalComments: 'linked',
    logLevel: 'warning',
    // The sharedb client requires Node's `events` (the `events` package stands in) and
    // checks `process.env` in a few places.
    define: {'process.env.NODE_DEBUG': 'false', 'process.env.NODE_ENV': '"production"'},
  });
  for (const f of ['index.html', 'editor.css']) fs.copyFileSync(path.join(here, 'src', f), path.join(out, f));
  const files = fs.readdirSync(out).map((f) => `${f} (${fs.statSync(path.join(out, f)).size} B)`);
  console.log(`editor built into ${out}: ${files.join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
