#!/usr/bin/env python3
"""framing_backend.py PORT LOG -- an HTTP/1.1 backend on 127.0.0.1:PORT that answers with
the framing the query names (?cl, ?interim, ?chunked, ?until-close, ?http10, ?conn-close,
?idle-close, ?garbage, ?two-cl, ?nocontent, ?echo; HEAD gets a Content-Length and no body),
or answers early to an upload (?continue-upload: "100 Continue" at once, then it waits 0.5 s
before reading the body, then answers its length and SHA-256; ?refuse-upload: 413 at once
without reading the body, then a lingering close),
one thread per connection, keeping it open unless the framing ends it. Writes "conn N" to LOG
for each accepted connection and "req N METHOD TARGET" for each request, so a test can count
connections."""
import hashlib
import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scripted_backend import Log, serve_forever  # noqa: E402

PORT, LOG = int(sys.argv[1]), sys.argv[2]
log = Log(LOG)


def read_body(f, headers):
    body = b""
    if "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    return body


def answer(method, target, headers, body):
    """The bytes to send and whether to close after."""
    mode = target.partition("?")[2]
    if method == "HEAD":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Mode: head\r\n\r\n", False
    if mode == "interim":
        return (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nafter-interim"), False
    if mode == "chunked":
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
                b"7;ext=1\r\nchunked\r\n5\r\n body\r\n0\r\nX-T: t\r\n\r\n"), False
    if mode == "until-close":
        return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", True
    if mode == "http10":
        return b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhttp10", True
    if mode == "conn-close":
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 10\r\n\r\nconn-close", True
    if mode == "idle-close":  # a kept connection the backend then closes without saying so
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nidle-close", True
    if mode == "garbage":
        return b"HELLO WORLD\r\n\r\n", True
    if mode == "two-cl":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", True
    if mode == "nocontent":
        return b"HTTP/1.1 204 No Content\r\nX-Mode: nocontent\r\n\r\n", False
    if mode == "echo":
        return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Host: %s\r\n\r\n"
                % (len(body), headers.get("host", "").encode()) + body), False
    return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", False


def handle(conn, f, method, target, headers, mode):
    if mode == "refuse-upload":
        conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
                     b"Content-Length: 10\r\n\r\ntoo large\n")
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(5)
        while conn.recv(65536):  # lingering: the client's bytes are not reset
            pass
        return True
    if mode == "continue-upload":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.5)
        body = read_body(f, headers)
        text = b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text) + text)
        return False
    data, close = answer(method, target, headers, read_body(f, headers))
    conn.sendall(data)
    return close


serve_forever(PORT, log, handle)
