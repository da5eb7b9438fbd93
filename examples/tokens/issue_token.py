#!/usr/bin/env python3
"""Issues an otsync bearer token (a JWT) the way a Python backend would after its
own login, with PyJWT (Debian: python3-jwt).

HS256 with the content of otsyncd's --jwt-secret-file, or RS256/ES256 with a
private key whose public half is in otsyncd's --jwt-public-keys (JWKS or PEM):

  issue_token.py --secret-file FILE SUBJECT [--read notes/*] [--write notes/alice-*] [--ttl 3600]
  issue_token.py --private-key key.pem --alg RS256 --kid rsa-1 SUBJECT ...
"""
import argparse
import pathlib
import sys
import time

import jwt  # PyJWT


def issue_token(key, subject, read=(), write=(), ttl=3600, alg="HS256", kid=None, issuer=None, audience=None):
    now = int(time.time())
    claims = {"sub": subject, "iat": now, "exp": now + ttl, "otsync": {"read": list(read), "write": list(write)}}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("subject")
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--secret-file", type=pathlib.Path)
    key.add_argument("--private-key", type=pathlib.Path)
    parser.add_argument("--alg", default=None, choices=["HS256", "RS256", "ES256"])
    parser.add_argument("--kid")
    parser.add_argument("--read", action="append", default=[])
    parser.add_argument("--write", action="append", default=[])
    parser.add_argument("--ttl", type=int, default=3600)
    parser.add_argument("--issuer")
    parser.add_argument("--audience")
    args = parser.parse_args()
    if args.secret_file:
        key_material, alg = args.secret_file.read_text().rstrip(), args.alg or "HS256"
    else:
        key_material, alg = args.private_key.read_text(), args.alg or "RS256"
    sys.stdout.write(issue_token(key_material, args.subject, args.read, args.write, args.ttl, alg, args.kid,
                                 args.issuer, args.audience) + "\n")


if __name__ == "__main__":
    main()
