// Wire-compatibility check for restructures: sends the same scripted messages (edits, resends,
// conflicts, errors, reads of the past, bulk requests, hostile frames) to two otsyncd binaries, on
// the memory and the SQLite store, and compares every reply byte for byte (the connection id
// normalised). Usage: node scripts/wire_diff.js OLD_OTSYNCD NEW_OTSYNCD  (needs npm ci in tests/js)
const { spawn } = require('child_process');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'tests', 'js', 'node_modules', 'ws'));
function freePort() { return new Promise(r => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); }); }
async function start(bin, store) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wd-'));
  const args = ['--listen', `127.0.0.1:${port}`, '--max-request-rate', '0'];
  if (store === 'sqlite') args.push('--store', 'sqlite:' + dir + '/o.db'); else args.push('--store', 'memory:');
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'ignore'] });
  for (let i = 0; i < 100; i++) { try { await new Promise((res, rej) => { const s = net.connect(port, '127.0.0.1', res); s.on('error', rej); }); break; } catch { await new Promise(r => setTimeout(r, 50)); } }
  return { child, port };
}
const script = [
  '{"a":"hs","id":null}',
  '{"a":"f","c":"docs","d":"x"}',
  '{"a":"s","c":"docs","d":"x"}',
  '{"a":"op","c":"docs","d":"x","v":0,"src":"S","seq":1,"create":{"type":"text-unicode","data":"héllo 😀"}}',
  '{"a":"op","c":"docs","d":"x","v":1,"src":"S","seq":2,"op":[3,"abc"]}',
  '{"a":"op","c":"docs","d":"x","v":1,"src":"S","seq":3,"op":[2,{"d":1}]}',
  '{"a":"op","c":"docs","d":"x","v":1,"src":"S","seq":2,"op":[3,"abc"]}',
  '{"a":"op","c":"docs","d":"x","v":9,"src":"S","seq":4,"op":[1]}',
  '{"a":"op","c":"docs","d":"x","v":0,"src":"S","seq":5,"create":{"type":"text-unicode","data":"again"}}',
  '{"a":"op","c":"docs","d":"x","v":3,"src":"S","seq":6,"op":[100,{"d":5}]}',
  '{"a":"op","c":"docs","d":"x","v":3,"src":"S","seq":7,"op":"bad"}',
  '{"a":"f","c":"docs","d":"x","v":1}',
  '{"a":"nf","c":"docs","d":"x","v":2,"id":7}',
  '{"a":"nf","c":"docs","d":"x","v":99,"id":8}',
  '{"a":"nt","c":"docs","d":"x","ts":1,"id":9}',
  '{"a":"nt","c":"docs","d":"x","id":10}',
  '{"a":"bf","c":"docs","b":["x","y","z"]}',
  '{"a":"bs","c":"docs","b":{"x":1,"y":null}}',
  '{"a":"bu","c":"docs","b":["x","y"]}',
  '{"a":"pp"}',
  '{"a":"qu","id":3}',
  '{"a":"qf","id":4,"c":"docs","q":{}}',
  '{"a":"zz"}',
  '{"a":"op","c":"docs","d":"x","v":4,"src":"S","seq":8,"del":true}',
  '{"a":"op","c":"docs","d":"x","v":4,"src":"S","seq":9,"op":[1]}',
  '{"a":"f","c":"docs","d":"x"}',
  '{"a":"s","c":"docs","d":"' + 'i'.repeat(300) + '"}',
  '[' .repeat(80) + ']'.repeat(80),
  '{"a":"u","c":"docs","d":"x"}',
  'not json',
];
async function run(bin, store) {
  const { child, port } = await start(bin, store);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  const got = [];
  ws.on('message', m => got.push(String(m)));
  await new Promise(r => ws.on('open', r));
  for (const m of script) { ws.send(m); await new Promise(r => setTimeout(r, 60)); }
  await new Promise(r => setTimeout(r, 300));
  ws.close(); child.kill('SIGTERM');
  const id = (JSON.parse(got[0]) || {}).id;
  return got.map(s => s.split(id).join('<ID>'));
}
(async () => {
  for (const store of ['memory', 'sqlite']) {
    const a = await run(process.argv[2], store), b = await run(process.argv[3], store);
    let same = a.length === b.length;
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) { same = false; console.log(store, 'DIFF', i, '\n  old:', a[i], '\n  new:', b[i]); }
    console.log(store, same ? 'identical' : 'DIFFERENT', a.length, 'replies');
    if (!same) process.exitCode = 1;
  }
})();
