#!/usr/bin/env node
'use strict';
// Issues an otsync bearer token (HS256 JWT) the way a Node backend would after
// its own login: Node's crypto only, no package. The secret is the content of
// otsyncd's --jwt-secret-file; `read`/`write` are COLLECTION/DOC patterns.
//
//   node issue_token.js SECRET_FILE SUBJECT [--read notes/*] [--write notes/alice-*] [--ttl 3600]
//       [--issuer ISS] [--audience AUD]
//
// A browser then connects with:
//   new WebSocket('wss://HOST/ws', ['otsync', 'otsync.bearer.' + token])
// and a Node client with `new WebSocket(url, {headers: {Authorization: 'Bearer ' + token}})`.

const crypto = require('crypto');
const fs = require('fs');

function issueToken({secret, subject, read = [], write = [], ttlSeconds = 3600, issuer, audience}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {sub: subject, iat: now, exp: now + ttlSeconds, otsync: {read, write}};
  if (issuer) claims.iss = issuer;
  if (audience) claims.aud = audience;
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode({alg: 'HS256', typ: 'JWT'})}.${encode(claims)}`;
  const signature = crypto.createHmac('sha256', secret).update(input).digest('base64url');
  return `${input}.${signature}`;
}

if (require.main === module) {
  const [secretFile, subject, ...rest] = process.argv.slice(2);
  if (!secretFile || !subject) {
    console.error('usage: issue_token.js SECRET_FILE SUBJECT [--read P]... [--write P]... [--ttl S] ' +
      '[--issuer ISS] [--audience AUD]');
    process.exit(2);
  }
  const opts = {secret: fs.readFileSync(secretFile, 'utf8').trimEnd(), subject, read: [], write: []};
  for (let i = 0; i < rest.length; i += 2) {
    const value = rest[i + 1];
    if (value === undefined) throw new Error(`${rest[i]} needs a value`);
    if (rest[i] === '--read') opts.read.push(value);
    else if (rest[i] === '--write') opts.write.push(value);
    else if (rest[i] === '--ttl') opts.ttlSeconds = Number(value);
    else if (rest[i] === '--issuer') opts.issuer = value;
    else if (rest[i] === '--audience') opts.audience = value;
    else throw new Error(`unknown option ${rest[i]}`);
  }
  process.stdout.write(`${issueToken(opts)}\n`);
}

module.exports = {issueToken};
