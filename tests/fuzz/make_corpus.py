#!/usr/bin/env python3
"""Writes the seed corpus of each libFuzzer target under tests/fuzz/corpus/<target>/.

Deterministic: running it again rewrites the same files (every file it owns is
named seed-*; other files in the directories are left alone). The seeds are
ordinary inputs plus the hostile cases of issue 12: 100,000-deep nesting
(`[` in an op, in a message with an unknown action, `{"a":` objects), 1 MiB
ids, huge counts and numbers, control characters, `from=18446744073709551615`,
fragmented WebSocket messages with pings between the fragments, and frame
lengths out of range.

Input layouts (see each target's header comment):
  fuzz_ws_frame  byte 0 message limit (n * 64 bytes, 0xFF: 64 MiB), byte 1 read pattern, then the client stream
  fuzz_message   the frame text
  fuzz_op_codec  byte 0 even: JSON text of an op follows; odd: bytes that build a document and ops
  fuzz_http      byte 0 even: byte 1 read size, then the request stream; odd: bytes that build a target

Usage: tests/fuzz/make_corpus.py [CORPUS_DIR]   (default: the corpus/ beside this script)
"""

import json
import os
import random
import struct
import sys

DEEP = 100_000
MIB = 1 << 20


def write_all(root, target, seeds):
    directory = os.path.join(root, target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith("seed-"):
            os.remove(os.path.join(directory, name))
    for name, data in seeds.items():
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        with open(os.path.join(directory, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seeds)} seeds, {sum(len(d) for d in seeds.values())} bytes")


# --------------------------------------------------------------------------
# WebSocket frames


def frame(opcode, payload=b"", fin=True, mask=b"\x12\x34\x56\x78", rsv=0, length=None):
    """A client frame; `length` overrides the encoded payload length (for lies)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    out = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        out += bytes([mask_bit | n])
    elif n <= 0xFFFF:
        out += bytes([mask_bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([mask_bit | 127]) + struct.pack(">Q", n)
    if mask:
        out += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return out + payload


TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0


def ws_seeds():
    big = 0xFF  # 64 MiB limit
    s = {}

    def add(name, stream, limit=big, split=0):
        s[name] = bytes([limit, split]) + stream

    hs = '{"a":"hs","id":null,"protocol":1,"protocolMinor":2}'
    add("text", frame(TEXT, hs))
    add("text-split1", frame(TEXT, hs), split=1)
    add("two-messages", frame(TEXT, hs) + frame(TEXT, '{"a":"pp"}'), split=7)
    add("empty-text", frame(TEXT, ""))
    add("fragmented-pings-between",
        frame(TEXT, '{"a":"s",', fin=False) + frame(PING, "p1") + frame(CONT, '"c":"docs",', fin=False)
        + frame(PONG, "") + frame(PING, "") + frame(CONT, '"d":"x","v":null}'), split=5)
    add("fragmented-empty-fragments",
        frame(TEXT, "", fin=False) + frame(CONT, "", fin=False) + frame(CONT, "é", fin=False) + frame(CONT, ""))
    add("fragment-splits-utf8", frame(TEXT, b"\xf0\x9f", fin=False) + frame(CONT, b"\x98\x80"), split=3)
    add("close-with-reason", frame(CLOSE, struct.pack(">H", 1000) + b"bye"))
    add("close-empty", frame(CLOSE, b""))
    add("close-one-byte", frame(CLOSE, b"\x03"))
    add("close-code-1005", frame(CLOSE, struct.pack(">H", 1005)))
    add("close-code-4999", frame(CLOSE, struct.pack(">H", 4999) + "ok".encode()))
    add("close-bad-utf8", frame(CLOSE, struct.pack(">H", 1000) + b"\xc3"))
    add("close-reason-123", frame(CLOSE, struct.pack(">H", 1001) + b"r" * 123))
    add("ping-125", frame(PING, b"x" * 125))
    add("ping-126", frame(PING, b"x" * 126))
    add("ping-fragmented", frame(PING, b"x", fin=False))
    add("unmasked", frame(TEXT, hs, mask=None))
    add("reserved-bits", frame(TEXT, hs, rsv=4))
    add("unknown-opcode", frame(3, "x") + frame(11, "y"))
    add("binary", frame(BINARY, b"\x00\x01"))
    add("continuation-alone", frame(CONT, "x"))
    add("text-inside-fragmented", frame(TEXT, "a", fin=False) + frame(TEXT, "b"))
    add("bad-utf8", frame(TEXT, b"\xed\xa0\x80"))
    add("bad-utf8-fragmented", frame(TEXT, b"\xc3", fin=False) + frame(CONT, b"("))
    # Lengths: out of range, not minimal, over the limit, lying.
    add("length-2^63", frame(TEXT, b"", length=1 << 63))
    add("length-2^64-1", frame(TEXT, b"", length=(1 << 64) - 1))
    add("length-2^62", frame(TEXT, b"abc", length=1 << 62))
    add("length-16bit-not-minimal", bytes([0x81, 0x80 | 126, 0, 5]) + b"\x00" * 4 + b"hello")
    add("length-64bit-not-minimal", bytes([0x81, 0x80 | 127]) + struct.pack(">Q", 200) + b"\x00" * 4)
    add("over-limit", frame(TEXT, "x" * 100), limit=1)
    add("fragments-over-limit", frame(TEXT, "x" * 40, fin=False) + frame(CONT, "y" * 40), limit=1)
    add("limit-zero", frame(TEXT, ""), limit=0)
    add("header-only-16bit", bytes([0x81, 0x80 | 126, 0x01]), split=1)
    # Deep nesting inside fragments, cut so the decoder reassembles it.
    deep = '{"a":"op","c":"x","d":"y","v":0,"seq":1,"op":' + "[" * 3000 + "]" * 3000 + "}"
    pieces = [deep[i:i + 1000] for i in range(0, len(deep), 1000)]
    stream = b"".join(frame(TEXT if i == 0 else CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces))
    add("deep-nesting-fragmented", stream, split=13)
    add("many-small-frames", b"".join(frame(PING, str(i)) for i in range(200)), split=9)
    return s


# --------------------------------------------------------------------------
# Client messages


def msg(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def message_seeds():
    s = {}
    s["hs"] = msg({"a": "hs", "id": None, "protocol": 1, "protocolMinor": 2})
    s["hs-id"] = msg({"a": "hs", "id": "abc", "protocol": 1, "protocolMinor": 2})
    s["fetch"] = msg({"a": "f", "c": "docs", "d": "x", "v": None})
    s["subscribe-at"] = msg({"a": "s", "c": "docs", "d": "x", "v": 3})
    s["unsubscribe"] = msg({"a": "u", "c": "docs", "d": "x"})
    s["bulk-fetch"] = msg({"a": "bf", "c": "docs", "b": ["a", "b"]})
    s["bulk-subscribe-map"] = msg({"a": "bs", "c": "docs", "b": {"a": 1, "b": 0}})
    s["bulk-unsubscribe"] = msg({"a": "bu", "c": "docs", "b": ["a"]})
    s["create"] = msg({"a": "op", "c": "docs", "d": "x", "v": None, "seq": 1,
                       "create": {"type": "http://sharejs.org/types/text-unicode", "data": "héllo"}})
    s["create-by-name"] = msg({"a": "op", "c": "docs", "d": "x", "v": 0, "seq": 1,
                               "create": {"type": "text-unicode"}})
    s["edit"] = msg({"a": "op", "c": "docs", "d": "x", "v": 1, "seq": 2, "src": "abc",
                     "op": [5, " 😀", {"d": 2}, 1, {"d": "é"}]})
    s["delete"] = msg({"a": "op", "c": "docs", "d": "x", "v": 2, "seq": 3, "del": True})
    s["snapshot-version"] = msg({"a": "nf", "c": "docs", "d": "x", "v": 1})
    s["snapshot-timestamp"] = msg({"a": "nt", "c": "docs", "d": "x", "ts": 1700000000000})
    s["ping"] = msg({"a": "pp"})
    s["query"] = msg({"a": "qf", "id": 1, "c": "docs", "q": {}})
    s["query-unsubscribe"] = msg({"a": "qu", "id": 1})
    s["presence"] = msg({"a": "p", "ch": "x", "id": "y", "p": None, "pv": 0})
    # Rejected and unreadable.
    s["unknown-action"] = msg({"a": "zz", "c": "docs"})
    s["no-action"] = msg({"c": "docs"})
    s["not-object"] = "[1,2,3]"
    s["not-json"] = '{"a":"f",'
    s["empty"] = ""
    s["lone-surrogate-id"] = '{"a":"f","c":"docs","d":"\\ud800"}'
    s["lone-surrogate-op"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":1,"op":["\\udfff"]}'
    s["surrogate-pair"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":1,"op":["\\ud83d\\ude00"]}'
    s["proto-collection"] = msg({"a": "f", "c": "__proto__", "d": "x"})
    s["proto-bulk"] = msg({"a": "bs", "c": "docs", "b": {"constructor": 1}})
    s["error-field"] = msg({"a": "zz", "error": {"code": "x"}})
    s["bad-op"] = msg({"a": "op", "c": "docs", "d": "x", "v": 1, "seq": 1, "op": [0, None, True, 1.5, -1, {}]})
    s["op-and-create"] = msg({"a": "op", "c": "docs", "d": "x", "v": 1, "seq": 1, "op": [], "create": {}})
    # Numbers at and past the edges.
    s["version-2^53"] = '{"a":"f","c":"docs","d":"x","v":9007199254740992}'
    s["version-2^53-1"] = '{"a":"f","c":"docs","d":"x","v":9007199254740991}'
    s["version-u64max"] = '{"a":"s","c":"docs","d":"x","v":18446744073709551615}'
    s["version-1e308"] = '{"a":"f","c":"docs","d":"x","v":1e308}'
    s["version-1e400"] = '{"a":"f","c":"docs","d":"x","v":1e400}'
    s["version-negative"] = '{"a":"f","c":"docs","d":"x","v":-1}'
    s["version-fraction"] = '{"a":"f","c":"docs","d":"x","v":0.5}'
    s["seq-u64max"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":18446744073709551615,"op":[1]}'
    s["seq-2^53-float"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":9007199254740992.0,"op":["a"]}'
    s["timestamp-huge"] = '{"a":"nt","c":"docs","d":"x","ts":-1e300}'
    s["skip-huge"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":1,"op":[9007199254740991,"a"]}'
    s["delete-huge"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":1,"op":[{"d":18446744073709551615}]}'
    # Control characters, escaped and raw (raw ones are not JSON).
    s["control-escaped"] = msg({"a": "f", "c": "\u0000\u0001\u001f", "d": "\u007f\n\t"})
    s["control-raw"] = '{"a":"f","c":"\x01","d":"\x00"}'
    s["control-in-op"] = msg({"a": "op", "c": "docs", "d": "x", "v": 1, "seq": 1, "op": ["\u0000" * 64]})
    # Huge counts.
    s["bulk-10000-ids"] = msg({"a": "bf", "c": "docs", "b": [f"d{i}" for i in range(10000)]})
    s["bulk-same-id-1000"] = msg({"a": "bs", "c": "docs", "b": ["same"] * 1000})
    s["op-50000-components"] = msg({"a": "op", "c": "docs", "d": "x", "v": 1, "seq": 1,
                                    "op": [1, "a"] * 25000})
    # 1 MiB ids.
    s["id-1mib"] = msg({"a": "s", "c": "docs", "d": "x" * MIB, "v": None})
    s["collection-1mib"] = msg({"a": "f", "c": "c" * MIB, "d": "x"})
    # Deep nesting: 100,000 levels.
    s["deep-op"] = '{"a":"op","c":"docs","d":"x","v":1,"seq":1,"op":' + "[" * DEEP + "]" * DEEP + "}"
    s["deep-unknown-action"] = '{"a":"zz","x":' + "[" * DEEP + "]" * DEEP + "}"
    s["deep-objects"] = '{"a":' * DEEP + "1" + "}" * DEEP
    s["deep-unterminated"] = '{"a":"f","c":' + "[" * DEEP
    return s


# --------------------------------------------------------------------------
# Op codec and OT


def op_seeds():
    s = {}

    def js(name, text):
        s["json-" + name] = b"\x00" + text.encode("utf-8", "surrogatepass")

    js("empty", "[]")
    js("skip-insert", '[1,"a"]')
    js("insert-astral", '["😀𝄞"]')
    js("delete-n", '[{"d":1}]')
    js("delete-text", '[2,{"d":"é"}]')
    js("mixed", '[3,"abc",{"d":2},1,{"d":"x"},"y"]')
    js("adjacent-inserts", '["a","b"]')
    js("zero-skip", "[0]")
    js("negative", "[-1]")
    js("fraction", "[1.5]")
    js("null", "[null]")
    js("bool", "[true]")
    js("nested", "[[1]]")
    js("adjacent-skips", "[1,1]")
    js("trailing-skip", '["a",3]')
    js("max-skip", '[9007199254740991,"x"]')
    js("over-max-skip", '[9007199254740992,"x"]')
    js("delete-1e300", '[{"d":1e300}]')
    js("delete-object", '[{"d":{"d":1}}]')
    js("empty-insert", '[""]')
    js("lone-surrogate", '["\\ud800"]')
    js("selection", "[1,2]")
    js("not-array", '{"d":1}')
    js("many-max-deletes", "[" + ",".join(['{"d":9007199254740991}'] * 3000) + "]")
    js("deep-nesting", "[" * DEEP + "]" * DEEP)
    js("deep-unterminated", "[" * DEEP)
    rng = random.Random(12)
    for i in range(16):
        s[f"structured-{i:02}"] = b"\x01" + bytes(rng.randrange(256) for _ in range(rng.randrange(16, 160)))
    return s


# --------------------------------------------------------------------------
# HTTP


def get(target, extra=""):
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"


def http_seeds():
    s = {}

    def add(name, stream, split=0):
        if isinstance(stream, str):
            stream = stream.encode("latin-1")
        s["http-" + name] = bytes([0, split]) + stream

    add("healthz", get("/healthz"))
    add("readyz-split", get("/readyz"), split=3)
    add("metrics", get("/metrics"))
    add("list", get("/api/v1/docs/docs?after=a&limit=10"))
    add("list-limit-0", get("/api/v1/docs/docs?limit=0"))
    add("list-limit-huge", get("/api/v1/docs/docs?limit=18446744073709551616"))
    add("document", get("/api/v1/docs/docs/d1"))
    add("document-at", get("/api/v1/docs/docs/d1?v=1"))
    add("document-v-2^53", get("/api/v1/docs/docs/d1?v=9007199254740992"))
    add("document-v-u64max", get("/api/v1/docs/docs/d1?v=18446744073709551615"))
    add("document-v-over-u64", get("/api/v1/docs/docs/d1?v=18446744073709551616"))
    add("document-v-negative", get("/api/v1/docs/docs/d1?v=-1"))
    add("ops", get("/api/v1/docs/docs/d1/ops?from=1&to=2"))
    add("ops-from-u64max", get("/api/v1/docs/docs/d1/ops?from=18446744073709551615"))
    add("ops-from-2^53-1", get("/api/v1/docs/docs/d1/ops?from=9007199254740991"))
    add("ops-to-before-from", get("/api/v1/docs/docs/d1/ops?from=5&to=1"))
    add("ops-repeated-params", get("/api/v1/docs/docs/d1/ops?from=1&from=x&to=&to=3"))
    add("ops-extra-segment", get("/api/v1/docs/docs/d1/ops/extra"))
    add("id-slash", get("/api/v1/docs/c/a%2Fb"))
    add("id-nul", get("/api/v1/docs/c/a%00b/ops"))
    add("id-control", get("/api/v1/docs/%01%1F/%7F"))
    add("id-bad-utf8", get("/api/v1/docs/c/%FF%FE"))
    add("id-utf8", get("/api/v1/docs/c/%F0%9F%98%80"))
    add("bad-escape", get("/api/v1/docs/c/%zz"))
    add("cut-escape", get("/api/v1/docs/c/%4"))
    add("double-slashes", get("//api//v1/docs//c//d"))
    add("query-only-ampersands", get("/healthz?&&=&"))
    add("no-leading-slash", get("api/v1/docs"))
    add("absolute-form", get("http://127.0.0.1/healthz"))
    add("asterisk", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    add("head", "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    add("post-body", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    add("body-over-limit", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n" + "b" * 65537)
    add("chunked", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", split=4)
    add("chunked-huge-size", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n")
    add("content-length-huge", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\n")
    add("pipelined", get("/healthz") + get("/api/v1/docs/docs/d1?v=1") + get("/metrics", "Connection: close\r\n"),
        split=17)
    add("http10", "GET /healthz HTTP/1.0\r\n\r\n")
    add("upgrade", get("/ws", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"))
    add("upgrade-elsewhere", get("/other?x=1", "Connection: Upgrade\r\nUpgrade: websocket\r\n"))
    add("header-8k", get("/healthz", "X-Big: " + "h" * 9000 + "\r\n"))
    add("target-60k", get("/api/v1/docs/c/" + "i" * 60000))
    add("garbage", "\x00\x01\x02 / HTTP/9.9\r\n\r\n")
    rng = random.Random(34)
    for i in range(8):
        s[f"parts-{i:02}"] = b"\x01" + bytes(rng.randrange(256) for _ in range(rng.randrange(16, 200)))
    return s


# The HS256 secret fuzz_jwt's verifier holds (tests/fuzz/fuzz_jwt.cpp): seeds signed with it are valid.
JWT_SECRET = b"fuzz-jwt-secret-fuzz-jwt-secret-0123"


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_seeds():
    import hashlib
    import hmac

    def token(header, claims, secret=JWT_SECRET):
        head = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = hmac.new(secret, head.encode(), hashlib.sha256).digest()
        return (head + "." + b64url(sig)).encode()

    grant = {"read": ["notes/*"], "write": ["notes/a-*", "*/x"]}
    s = {
        "valid": token({"alg": "HS256", "typ": "JWT"}, {"sub": "u", "exp": 4102444800, "otsync": grant}),
        "valid-kid": token({"alg": "HS256", "kid": "k"}, {"sub": "u", "nbf": 0, "otsync": grant, "aud": ["a", "b"]}),
        "expired": token({"alg": "HS256"}, {"sub": "u", "exp": 1, "otsync": grant}),
        "wrong-secret": token({"alg": "HS256"}, {"sub": "u", "otsync": grant}, secret=b"x" * 32),
        "alg-none": (b64url(b'{"alg":"none"}') + "." + b64url(b'{"sub":"u"}') + ".").encode(),
        "es256-junk": (b64url(b'{"alg":"ES256","kid":"ec"}') + "." + b64url(b'{"sub":"u"}') + "." +
                       b64url(bytes(64))).encode(),
        "deep-header": (b64url(b"[" * 3000 + b"]" * 3000) + ".e30.AAAA").encode(),
        "bad-claims": token({"alg": "HS256"}, {"otsync": {"read": [1, {"x": []}], "write": "notes/*"}}),
        "many-patterns": token({"alg": "HS256"}, {"otsync": {"read": ["a*b*c*/" + "*x" * 200] * 300}}),
        "two-parts": b"eyJhbGciOiJIUzI1NiJ9.e30",
        "padding": b"eyJhbGciOiJIUzI1NiJ9==.e30=.AA==",
    }
    return s


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    write_all(root, "fuzz_ws_frame", ws_seeds())
    write_all(root, "fuzz_message", message_seeds())
    write_all(root, "fuzz_op_codec", op_seeds())
    write_all(root, "fuzz_http", http_seeds())
    write_all(root, "fuzz_jwt", jwt_seeds())


if __name__ == "__main__":
    main()
