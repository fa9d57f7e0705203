#!/usr/bin/env python3
"""hostile_backend.py PORT LOG -- an HTTP/1.1 backend on 127.0.0.1:PORT that answers each
request the way its query names: broken framing, smuggling attempts, endless heads, drips,
junk after an answer, a close in the middle of a body (see MODES). Anything else gets
"200 hello" with a Content-Length, on a connection kept open. One thread per connection.
Writes "conn N" to LOG for each accepted connection and "req N METHOD TARGET" for each
request, so a test can count connections and requests, and "junk sent" once the late junk is
(so a test waits for it rather than guessing how long a loaded machine takes)."""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scripted_backend import Log, serve_forever  # noqa: E402

PORT, LOG = int(sys.argv[1]), sys.argv[2]
log = Log(LOG)

OK = b"HTTP/1.1 200 OK\r\n"
HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

# mode -> (bytes, close after): sent at once.
MODES = {
    "chunk-overflow": (OK + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc", True),
    "cl-negative": (OK + b"Content-Length: -1\r\n\r\nhello", True),
    "cl-huge": (OK + b"Content-Length: 99999999999999999999\r\n\r\nhello", True),
    "cl-dup-equal": (OK + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", False),
    "cl-dup-diff": (OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", True),
    "cl-space": (OK + b"Content-Length : 5\r\n\r\nhello", True),
    # TE wins; the Content-Length is a lie that must not reach the web server, and the rest
    # (a second answer hidden where the Content-Length says the body goes on) must never
    # reach another client.
    "cl-te": (OK + b"Content-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSMUGGL", False),
    "obs-fold": (OK + b"Content-Length: 5\r\nX-Folded: a\r\n b\r\n\r\nhello", True),
    "bare-lf": (b"HTTP/1.1 200 OK\nContent-Length: 7\nX-Lf: yes\n\nbare-lf", False),
    "bare-cr": (OK + b"Content-Length: 5\r\nX-A: b\rSet-Cookie: evil=1\r\n\r\nhello", True),
    "ctl-byte": (OK + b"Content-Length: 5\r\nX-A: b\x0bc\r\n\r\nhello", True),
    "status-600": (b"HTTP/1.1 600 Beyond\r\nContent-Length: 5\r\n\r\nhello", True),
    "status-none": (b"HTTP/1.1 \r\nContent-Length: 5\r\n\r\nhello", True),
    "status-short": (b"HTTP/1.1 20 OK\r\nContent-Length: 5\r\n\r\nhello", True),
    "interim-flood": (b"HTTP/1.1 100 Continue\r\n\r\n" * 20000 + HELLO, True),
    "switch": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
               + HELLO, True),
    "long-connection": (OK + b"Content-Length: 5\r\n"
                        + b"Connection: " + b",".join(b"X-H%d" % i for i in range(1000)) + b"\r\n"
                        + b"\r\nhello", True),
    "hop-by-hop": (OK + b"Connection: X-First\r\nX-First: 1\r\nKeep-Alive: timeout=5\r\n"
                   b"Proxy-Thing: 1\r\nTrailer: X-T\r\nUpgrade: h2c\r\nRateLimit: fake\r\n"
                   b"Connection: X-Second\r\nX-Second: 2\r\nX-Kept: 1\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: t\r\n\r\n", False),
}




def drip(conn, data, seconds):
    """data a byte every 0.1 s, for at most seconds; False when the peer went away."""
    end = time.monotonic() + seconds
    for i in range(len(data)):
        if time.monotonic() > end:
            break
        try:
            conn.sendall(data[i:i + 1])
        except OSError:
            return False
        time.sleep(0.1)
    return True


def handle(conn, f, method, target, headers, mode):
    if mode in MODES:
        data, close = MODES[mode]
        conn.sendall(data)
        if close:
            return True
    elif mode == "head-forever":  # a header line after another, without end
        conn.sendall(OK)
        try:
            for _ in range(100000):
                conn.sendall(b"X-More: " + b"m" * 1000 + b"\r\n")
        except OSError:
            pass
        return True
    elif mode == "drip-head":  # the head a byte every 0.1 s: never silent for long
        drip(conn, OK + b"X-Drip: " + b"d" * 10000 + b"\r\n\r\n", 60)
        return True
    elif mode == "drip-body":
        conn.sendall(OK + b"Content-Length: 100000\r\n\r\n")
        drip(conn, b"b" * 100000, 60)
        return True
    elif mode == "wait-body":  # takes the body as it comes and never answers
        while conn.recv(65536):
            pass
        return True
    elif mode == "late-junk":  # a whole answer, then a second one nobody asked for
        conn.sendall(HELLO)
        time.sleep(0.3)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSMUGGL")
        log("junk sent")
    elif mode == "cut-cl":  # dies in the middle of a Content-Length body
        conn.sendall(OK + b"Content-Length: 100000\r\n\r\n" + b"c" * 20000)
        time.sleep(0.2)
        return True
    elif mode == "cut-chunked":
        conn.sendall(OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"4e20\r\n"
                     + b"c" * 20000 + b"\r\n" + b"4e20\r\n" + b"c" * 100)
        time.sleep(0.2)
        return True
    else:
        conn.sendall(HELLO)
    return False


serve_forever(PORT, log, handle)
