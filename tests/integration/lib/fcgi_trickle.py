#!/usr/bin/env python3
"""fcgi_trickle.py HOST:PORT PATH LENGTH FIRST -- a FastCGI client (responder role) whose POST
body of LENGTH bytes comes FIRST bytes at once (past what the server reads whole before it
serves a request), then trickles in, a byte every 100 ms, until the server answers or closes
(at most 60 s). Prints "status=NNN ms=T sent=N": the answer's status (0: none), the milliseconds from
the request's start to the end of the answer, the body bytes sent. Records are built with
fcgi_probe.py's helpers."""
import os
import select
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi_probe import BEGIN, END, PARAMS, STDIN, STDOUT, connect, now_ms, params_bytes, rec, stream  # noqa: E402

addr, path, length, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
p = {"REQUEST_METHOD": "POST", "REQUEST_URI": path, "REMOTE_ADDR": "192.0.2.9",
     "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example", "CONTENT_LENGTH": str(length),
     "CONTENT_TYPE": "application/octet-stream"}
s = connect(addr)
t0 = now_ms()
s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 0)) + stream(PARAMS, 1, params_bytes(p))
          + rec(STDIN, 1, b"f" * first))
buf, out, sent, ended = b"", b"", first, False
while not ended and now_ms() - t0 < 60000:
    r, _, _ = select.select([s], [], [], 0.1)
    if r:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 8:
            _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", buf[:8])
            if len(buf) < 8 + clen + plen:
                break
            if rtype == STDOUT:
                out += buf[8:8 + clen]
            elif rtype == END:
                ended = True
            buf = buf[8 + clen + plen:]
    elif sent < length:
        try:
            s.sendall(rec(STDIN, 1, b"a"))
        except OSError:
            break
        sent += 1
status = 0
for line in out.split(b"\r\n"):
    if line.startswith(b"Status: "):
        status = int(line[8:11])
        break
print("status=%d ms=%d sent=%d" % (status, now_ms() - t0, sent))
