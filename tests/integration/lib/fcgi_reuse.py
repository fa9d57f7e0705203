#!/usr/bin/env python3
"""fcgi_reuse.py -- connections in a row on one filter process (test_fastcgi_reuse.sh)

  fcgi_reuse.py HOST:PORT SCENARIO

The server keeps its last closed connection, buffers included, for the next one it accepts.
Each scenario prints "key=value" lines; every wait is bounded by socket timeouts.

  cut MODE   a connection sending X-Key: used (keep-conn, id 7) that ends MODE -- mid-header,
             mid-params (a record cut), params-open (records whole, no empty PARAMS), mid-body
             (a responder's body cut), abort (FCGI_ABORT_REQUEST before the params end),
             answered (a whole request) -- then shuts its side and waits for the server to
             close it; then a request with no X-Key (must be 401) and one with X-Key: fresh-N
             (must be 200): their own parameters only
  params     duplicate, prefix, other-case and very many parameters: which value decides
  problem    a refusal's problem+json body for a path with quotes, backslashes, non-ASCII
             bytes, longer than the 1024 bytes shown
"""
import json
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi_probe import (ABORT, BEGIN, PARAMS, STDIN, Reader, connect, pair, rec,  # noqa: E402
                        report, stream)


def begin(rid, keep=False, role=2):
    return rec(BEGIN, rid, struct.pack(">HB5x", role, 1 if keep else 0))


def base(path="/k"):
    return [("REQUEST_METHOD", "GET"), ("REQUEST_URI", path), ("REMOTE_ADDR", "192.0.2.9"),
            ("SERVER_PROTOCOL", "HTTP/1.1"), ("HTTP_HOST", "example")]


def enc(pairs):
    return b"".join(pair(k.encode(), v.encode()) for k, v in pairs)


def ask(addr, pairs, role=2, rid=1):
    """(status, stdout) of one request with exactly these parameters, on a new connection."""
    s = connect(addr)
    try:
        s.sendall(begin(rid, role=role) + stream(PARAMS, rid, enc(pairs)) + stream(STDIN, rid, b""))
        _, code, _, out = Reader(s).answer()
        return code, out
    finally:
        s.close()


def wait_closed(s):
    """Reads until the server closes s: 'closed', or 'open' when it did not in 10 s."""
    try:
        while s.recv(65536):
            pass
        return "closed"
    except (socket.timeout, OSError):
        return "open"


def sc_cut(addr, mode, n=[0]):
    key = enc(base() + [("HTTP_X_KEY", "used")])
    s = connect(addr)
    rid = 7
    if mode == "mid-header":
        out = begin(rid, keep=True) + rec(PARAMS, rid, key)[:5]
    elif mode == "mid-params":
        out = begin(rid, keep=True) + rec(PARAMS, rid, key)[:-5]
    elif mode == "params-open":
        out = begin(rid, keep=True) + rec(PARAMS, rid, key)
    elif mode == "mid-body":
        full = rec(STDIN, rid, b"x" * 100)
        out = begin(rid, keep=True, role=1) + stream(PARAMS, rid, key) + full[:60]
    elif mode == "abort":
        out = begin(rid, keep=True) + rec(PARAMS, rid, key) + rec(ABORT, rid)
    elif mode == "answered":
        out = begin(rid, keep=True) + stream(PARAMS, rid, key) + stream(STDIN, rid, b"")
    else:
        raise SystemExit("unknown mode " + mode)
    s.sendall(out)
    s.shutdown(socket.SHUT_WR)
    first = wait_closed(s)
    s.close()
    missing, _ = ask(addr, base())
    fresh, _ = ask(addr, base() + [("HTTP_X_KEY", "fresh-" + mode)])
    report(first=first, missing=missing, fresh=fresh)


def sc_params(addr):
    r = {}
    # Two X-Key parameters: the first decides (as FCGX_GetParam found it), both times.
    r["dup"] = ask(addr, base() + [("HTTP_X_KEY", "dup-a"), ("HTTP_X_KEY", "dup-b")])[0]
    r["dup_first"] = ask(addr, base() + [("HTTP_X_KEY", "dup-a")])[0]
    r["dup_second"] = ask(addr, base() + [("HTTP_X_KEY", "dup-b")])[0]
    # A longer name with X-Key's as prefix, and X-Key's in another case, are other parameters.
    r["prefix"] = ask(addr, base() + [("HTTP_X_KEY2", "p"), ("HTTP_X_KEYS", "p")])[0]
    r["othercase"] = ask(addr, base() + [("HTTP_x_key", "c"), ("HTTP_X_Key", "c")])[0]
    # Empty names and values, then the key: still found.
    r["empty"] = ask(addr, base() + [("", "v"), ("HTTP_EMPTY", ""), ("HTTP_X_KEY", "empty-k")])[0]
    # 3000 other parameters (about 70 KiB, four-byte lengths among them) before the key.
    junk = [("HTTP_JUNK_%d" % i, "j" * (200 if i % 100 == 0 else 10)) for i in range(3000)]
    r["many"] = ask(addr, base() + junk + [("HTTP_X_KEY", "many-k")])[0]
    r["many_again"] = ask(addr, base() + [("HTTP_X_KEY", "many-k")])[0]
    report(**r)


def sc_problem(addr):
    path = "/k/%22q%22%5Cb%5Ct%C3%A9" + "z" * 1100
    pairs = base(path) + [("HTTP_X_KEY", "problem")]
    ask(addr, pairs)
    code, out = ask(addr, pairs)
    head, _, body = out.partition(b"\r\n\r\n")
    try:
        doc = json.loads(body)
        want = '/k/"q"\\b\\t\ufffd\ufffd'
        inst = doc["instance"]
        ok = "ok" if (doc["status"] == code and inst.startswith(want) and inst.endswith("...")
                      and doc["retry_after"] >= 1) else "wrong(%r)" % inst[:20]
    except (ValueError, KeyError) as e:
        ok = "invalid(%s)" % type(e).__name__
    report(code=code, json=ok)

def main():
    addr, sc = sys.argv[1], sys.argv[2]
    if sc == "cut":
        sc_cut(addr, sys.argv[3])
    elif sc == "params":
        sc_params(addr)
    elif sc == "problem":
        sc_problem(addr)
    else:
        raise SystemExit("unknown scenario " + sc)


if __name__ == "__main__":
    main()
