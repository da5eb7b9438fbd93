'use strict';
// JWTs for the tests, signed with Node's crypto (no JWT package): HS256 with a
// shared secret, RS256 and ES256 with keys made here, and the JWKS otsyncd
// reads the public halves from.

const crypto = require('crypto');

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** header.payload.signature, signed by `sign(signingInput) -> Buffer`. */
function jwt(header, claims, sign) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign(input))}`;
}

function hs256(secret, claims, header = {}) {
  return jwt({alg: 'HS256', typ: 'JWT', ...header}, claims,
    (input) => crypto.createHmac('sha256', secret).update(input).digest());
}

function rs256(privateKey, claims, header = {}) {
  return jwt({alg: 'RS256', typ: 'JWT', ...header}, claims, (input) => crypto.sign('sha256', Buffer.from(input), privateKey));
}

function es256(privateKey, claims, header = {}) {
  return jwt({alg: 'ES256', typ: 'JWT', ...header}, claims,
    (input) => crypto.sign('sha256', Buffer.from(input), {key: privateKey, dsaEncoding: 'ieee-p1363'}));
}

/** `alg: none` with an empty signature. */
function none(claims) {
  return `${b64url(JSON.stringify({alg: 'none', typ: 'JWT'}))}.${b64url(JSON.stringify(claims))}.`;
}

/** Key pairs and their JWKS: {rsa, ec, jwks}. */
function makeKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', {modulusLength: 2048});
  const ec = crypto.generateKeyPairSync('ec', {namedCurve: 'P-256'});
  const jwks = {keys: [
    {...rsa.publicKey.export({format: 'jwk'}), kid: 'rsa-1', alg: 'RS256', use: 'sig'},
    {...ec.publicKey.export({format: 'jwk'}), kid: 'ec-1', alg: 'ES256', use: 'sig'},
  ]};
  return {rsa, ec, jwks};
}

const nowS = () => Math.floor(Date.now() / 1000);

module.exports = {hs256, rs256, es256, none, makeKeys, nowS};
