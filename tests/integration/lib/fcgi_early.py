#!/usr/bin/env python3
"""fcgi_early.py -- a FastCGI client that leaves things unread, for test_proxy_unread.sh

  fcgi_early.py early HOST:PORT TARGET CLIENT CLIENT2
  fcgi_early.py cutwait PATH WAIT_MS
  fcgi_early.py get HOST:PORT TARGET CLIENT     one GET on its own connection: prints code=

early: on one kept connection (FCGI_KEEP_CONN), a POST of TARGET from CLIENT announcing a 4 MiB
body that is sent slowly (16 KiB every 20 ms) until its answer comes, then at full speed. Every
byte of that body is a forged FastCGI request (BEGIN_REQUEST id 1, PARAMS "GET /forged", an
empty STDIN), repeated: taken as records instead of body, it would be answered. Then a GET of
/second?cl from CLIENT2 on the same connection. Prints the first answer's id, status and
protocol status, how many body bytes were sent when it came, the second answer's id, status and
body, and the bytes that came after it within 1 s (none expected).

cutwait: on the unix socket PATH, a GET of /cut; reads 100000 bytes of the answer, then nothing
for WAIT_MS ms, then everything until the server closes. Prints the bytes read in each part,
whether an FCGI_END_REQUEST came, and how the connection ended; then, on a new connection, the
status of a second GET of /cut from the same client (refused by a 1-request rule: answered by
the filter itself, which shows the process still serves).

Every wait is bounded (socket timeouts). Output: "key=value" lines.
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fcgi_probe import (BEGIN, END, PARAMS, STDIN, STDOUT, Reader, connect, now_ms,  # noqa: E402
                        params_bytes, rec, report, request, stream)

BODY = 4 * 1024 * 1024


def forged_body():
    one = request(1, client="203.0.113.9", path="/forged", keep=True)
    n = BODY // len(one)
    return one * n


def sc_early(addr, target, client, client2):
    body = forged_body()
    p = {"REQUEST_METHOD": "POST", "REQUEST_URI": target, "REMOTE_ADDR": client,
         "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example",
         "CONTENT_TYPE": "application/octet-stream", "CONTENT_LENGTH": str(len(body))}
    s = connect(addr, timeout=20.0)
    s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)) + stream(PARAMS, 1, params_bytes(p)))
    state = {"sent": 0, "answered": False, "at_answer": -1, "error": ""}

    def send_body():
        try:
            off = 0
            while off < len(body):
                n = 16384 if not state["answered"] else 65535
                piece = body[off:off + min(n, 65535)]
                s.sendall(rec(STDIN, 1, piece))
                off += len(piece)
                state["sent"] = off
                if not state["answered"]:
                    time.sleep(0.02)
            s.sendall(rec(STDIN, 1))
        except OSError as e:
            state["error"] = type(e).__name__
    t = threading.Thread(target=send_body, daemon=True)
    t.start()
    r = Reader(s)
    try:
        rid, code, pstatus, _ = r.answer()
        state["at_answer"] = state["sent"]
        state["answered"] = True
        report(first_id=rid, first_code=code, first_pstatus=pstatus)
    except Exception as e:
        state["answered"] = True
        report(first_code="none", first_error=type(e).__name__)
    t.join(60)
    report(body_total=len(body), sent_at_answer=state["at_answer"], body_sent=state["sent"],
           send_error=state["error"] or "none")
    try:
        s.sendall(request(1, client=client2, path="/second?cl", keep=True))
        rid, code, pstatus, out = r.answer()
        head, _, content = out.partition(b"\r\n\r\n")
        report(second_id=rid, second_code=code, second_body=content.decode("latin-1").strip())
    except Exception as e:
        report(second_code="none", second_error=type(e).__name__)
    s.settimeout(1.0)
    extra = len(r.buf)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            extra += len(chunk)
    except (socket.timeout, OSError):
        pass
    report(extra=extra)
    s.close()


def sc_cutwait(path, wait_ms):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20.0)
    s.connect(path)
    s.sendall(request(1, client="198.51.100.3", path="/cut", keep=True))
    got = b""
    while len(got) < 100000:
        chunk = s.recv(100000 - len(got))
        if not chunk:
            break
        got += chunk
    first = len(got)
    time.sleep(int(wait_ms) / 1000.0)
    t0 = now_ms()
    how = "eof"
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        how = "timeout"
    except OSError as e:
        how = type(e).__name__
    # walk the records: any FCGI_END_REQUEST? how many STDOUT content bytes?
    off, ends, stdout = 0, 0, 0
    while off + 8 <= len(got):
        _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", got[off:off + 8])
        if rtype == END:
            ends += 1
        elif rtype == STDOUT:
            stdout += clen
        off += 8 + clen + plen
    report(before_pause=first, after_pause=len(got) - first, total=len(got), stdout=stdout,
           end_records=ends, ended=how, close_ms=now_ms() - t0)
    s.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20.0)
    s.connect(path)
    s.sendall(request(1, client="198.51.100.3", path="/cut"))
    try:
        _, code, _, _ = Reader(s).answer()
        report(after_code=code)
    except Exception as e:
        report(after_code="none", after_error=type(e).__name__)
    s.close()


def sc_get(addr, target, client):
    s = connect(addr)
    s.sendall(request(1, client=client, path=target))
    _, code, _, _ = Reader(s).answer()
    report(code=code)
    s.close()


def main():
    scenario, args = sys.argv[1], sys.argv[2:]
    fn = globals().get("sc_" + scenario)
    if fn is None:
        sys.exit("fcgi_early.py: unknown scenario %s" % scenario)
    fn(*args)


if __name__ == "__main__":
    main()
