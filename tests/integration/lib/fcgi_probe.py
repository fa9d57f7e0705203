#!/usr/bin/env python3
"""fcgi_probe.py -- a hand-written FastCGI client for the connection tests (test_fastcgi_conns.sh)

  fcgi_probe.py HOST:PORT SCENARIO [ARG]

Each scenario prints "key=value" lines for the test to check; times are integer milliseconds.
Everything waits with a bound (socket timeouts), so a server that stalls makes a scenario
report it, never hang. Scenarios:

  flood N MS      N idle, N one-byte and N slow-trickle connections held for MS ms, while a
                  normal request is sent every 50 ms on a new connection: how many were answered,
                  the slowest, and when the server closed the hostile connections
  pipeline N      N keep-conn requests written back to back on one connection (ids 1..N)
  mpx             a second request id while the first is active: FCGI_CANT_MPX_CONN
  mpx-body        the same while the first one's body is being read (admin test POST)
  admin-trickle   an admin test POST whose body trickles in for ever
  values          FCGI_GET_VALUES: MPXS_CONNS and MAX_CONNS
  unknown         an unknown management record type, then a request on the same connection
  badversion      a record of version 2
  filterrole      a request in the FILTER role
  bigparams       parameters of 200 KiB
  endless-params  parameters that never end (1 KiB every 100 ms)
  endless-stdin   a body that never ends (1 KiB every 100 ms) on a keep-conn request
  short-record    a record that announces 65535 bytes and sends 10
  cut             connections closed mid-header and mid-record, then a normal request
  noread          keep-conn requests pipelined without end, no answer ever read
  kept-idle       one keep-conn request, then nothing: when the server closes it
  busy-sibling    a request on a second connection while the only process answers at length
"""
import socket
import struct
import sys
import threading
import time

BEGIN, ABORT, END, PARAMS, STDIN, STDOUT, STDERR, DATA, GET_VALUES, VALUES_RESULT, UNKNOWN = range(1, 12)


def now_ms():
    return int(time.monotonic() * 1000)


def rec(rtype, rid, content=b"", version=1):
    return struct.pack(">BBHHBB", version, rtype, rid, len(content), 0, 0) + content


def pair(name, value):
    out = b""
    for s in (name, value):
        n = len(s)
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return out + name + value


def params_bytes(d):
    return b"".join(pair(k.encode(), v.encode()) for k, v in d.items())


def stream(rtype, rid, data):
    out = b""
    for i in range(0, len(data), 65535):
        out += rec(rtype, rid, data[i:i + 65535])
    return out + rec(rtype, rid)


def request(rid, client="192.0.2.1", path="/p", keep=False, role=1, stdin=b""):
    p = {"REQUEST_METHOD": "GET", "REQUEST_URI": path, "REMOTE_ADDR": client,
         "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example"}
    begin = rec(BEGIN, rid, struct.pack(">HB5x", role, 1 if keep else 0))
    return begin + stream(PARAMS, rid, params_bytes(p)) + stream(STDIN, rid, stdin)


class Reader:
    """Records from a socket, each wait bounded by the socket's timeout."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def record(self):
        self.need(8)
        ver, rtype, rid, clen, plen, _ = struct.unpack(">BBHHBB", self.buf[:8])
        self.need(8 + clen + plen)
        content = self.buf[8:8 + clen]
        self.buf = self.buf[8 + clen + plen:]
        return rtype, rid, content

    def answer(self):
        """(id, status code or None, protocol status, stdout) of the next ended request."""
        out = b""
        while True:
            rtype, rid, content = self.record()
            if rtype == STDOUT:
                out += content
            elif rtype == END:
                code = None
                for line in out.split(b"\r\n"):
                    if line.startswith(b"Status: "):
                        code = int(line[8:11])
                        break
                return rid, code, content[4], out


def connect(addr, timeout=10.0):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s


def closed_within(sock, limit_s):
    """ms until the server closes sock (reading and dropping anything), or -1."""
    t0 = now_ms()
    sock.settimeout(limit_s)
    try:
        while sock.recv(65536):
            pass
        return now_ms() - t0
    except (socket.timeout, OSError):
        return -1
    except ConnectionResetError:
        return now_ms() - t0


def one_request(addr, client="192.0.2.1", path="/free"):
    s = connect(addr)
    try:
        s.sendall(request(1, client=client, path=path))
        return Reader(s).answer()
    finally:
        s.close()


class Prober(threading.Thread):
    """Sends a normal request every 50 ms until stopped: answered count, slowest, failures."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr, self.stop, self.ok, self.failed, self.worst = addr, False, 0, 0, 0
        self.errors = []

    def run(self):
        i = 0
        while not self.stop:
            i += 1
            t0 = now_ms()
            try:
                _, code, _, _ = one_request(self.addr, client="198.51.100.%d" % (1 + i % 200))
                if code == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(str(code))
            except Exception as e:  # a stall shows as a timeout here
                self.failed += 1
                self.errors.append(type(e).__name__)
            self.worst = max(self.worst, now_ms() - t0)
            time.sleep(0.05)


def answer_in(s, buf, fallback):
    """The answer in buf (bytes already read from s) as "status:protocol_status", or fallback
    when buf holds none."""
    r = Reader(s)
    r.buf = buf
    try:
        _, code, proto, _ = r.answer()
        return "%s:%d" % (code, proto)
    except Exception:
        return fallback


def report(**kv):
    for k, v in kv.items():
        print("%s=%s" % (k, v))
    sys.stdout.flush()


def hostile_with_probe(addr, fn, *args):
    """Runs fn while a Prober runs; reports the probe's figures."""
    p = Prober(addr)
    p.start()
    try:
        fn(addr, *args)
    finally:
        p.stop = True
        p.join(15)
    report(probe_ok=p.ok, probe_failed=p.failed, probe_worst_ms=p.worst,
           probe_errors=",".join(p.errors[:5]) or "-")


def sc_flood(addr, n, hold_ms):
    n, hold_ms = int(n), int(hold_ms)
    groups = {"idle": [], "onebyte": [], "trickle": []}
    t_open = now_ms()
    for _ in range(n):
        groups["idle"].append(connect(addr))
        s = connect(addr)
        s.sendall(b"\x01")
        groups["onebyte"].append(s)
        groups["trickle"].append(connect(addr))
    for socks in groups.values():
        for s in socks:
            s.setblocking(False)
    report(opened=3 * n, open_ms=now_ms() - t_open)
    req = request(1, keep=True)
    p = Prober(addr)
    p.start()
    closed = {g: {} for g in groups}
    pos, t0 = 0, now_ms()
    # Every 100 ms: one more byte of a real request on each slow connection, and a look at
    # which connections the server closed (EOF or reset).
    while now_ms() - t0 < hold_ms:
        for g, socks in groups.items():
            for i, s in enumerate(socks):
                if i in closed[g]:
                    continue
                try:
                    if g == "trickle" and pos < len(req):
                        s.send(req[pos:pos + 1])
                    if s.recv(65536) == b"":
                        closed[g][i] = now_ms() - t_open
                except BlockingIOError:
                    pass
                except OSError:
                    closed[g][i] = now_ms() - t_open
        pos += 1
        time.sleep(0.1)
    p.stop = True
    p.join(15)
    out = {}
    for g in groups:
        out[g + "_alive"] = n - len(closed[g])
        out[g + "_closed_max_ms"] = max(closed[g].values()) if closed[g] else -1
    report(probe_ok=p.ok, probe_failed=p.failed, probe_worst_ms=p.worst,
           probe_errors=",".join(p.errors[:5]) or "-", **out)
    for socks in groups.values():
        for s in socks:
            s.close()


def sc_pipeline(addr, n):
    n = int(n)
    s = connect(addr)
    s.sendall(b"".join(request(i, client="203.0.113.7", keep=True) for i in range(1, n + 1)))
    r = Reader(s)
    ids, codes = [], []
    for _ in range(n):
        rid, code, _, _ = r.answer()
        ids.append(str(rid))
        codes.append(str(code))
    # The connection is still good for one more.
    s.sendall(request(9, client="203.0.113.8", keep=True))
    rid, code, _, _ = r.answer()
    s.close()
    report(ids=",".join(ids), codes=",".join(codes), after="%d:%s" % (rid, code))


def sc_mpx(addr):
    s = connect(addr)
    first = request(1, client="203.0.113.9", keep=True)
    begin2 = rec(BEGIN, 2, struct.pack(">HB5x", 1, 1))
    s.sendall(first[:16] + begin2 + first[16:])  # BEGIN(1), BEGIN(2), then 1's params
    r = Reader(s)
    got = []
    for _ in range(2):
        rid, code, proto, _ = r.answer()
        got.append("%d:%s:%d" % (rid, code, proto))
    s.close()
    report(answers=",".join(got))


def sc_mpx_body(addr):
    """A second request id arrives while the first one's body is being read (admin test)."""
    body = b'{"client":"192.0.2.50","path":"/p/x","method":"GET"}'
    p = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/health/rate-limiter/test",
         "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
         "CONTENT_TYPE": "application/json"}
    s = connect(addr)
    s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)) + stream(PARAMS, 1, params_bytes(p)) +
              rec(STDIN, 1, body[:10]))
    time.sleep(0.3)
    s.sendall(rec(BEGIN, 2, struct.pack(">HB5x", 1, 1)))
    time.sleep(0.3)
    s.sendall(rec(STDIN, 1, body[10:]) + rec(STDIN, 1))
    r = Reader(s)
    got = []
    for _ in range(2):
        rid, code, proto, out = r.answer()
        got.append("%d:%s:%d" % (rid, code, proto))
    s.close()
    report(answers=",".join(got), body_ok=int(b'"allowed":true' in out))


def sc_admin_trickle(addr):
    """An admin test POST whose body trickles in, a byte every 100 ms: when is it answered?"""
    def run(a):
        p = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/health/rate-limiter/test",
             "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": "1000"}
        s = connect(a)
        s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)) + stream(PARAMS, 1, params_bytes(p)))
        s.settimeout(0.1)
        t0, buf = now_ms(), b""
        while now_ms() - t0 < 15000:
            try:
                s.sendall(rec(STDIN, 1, b"x"))
            except OSError:
                break
            try:
                chunk = s.recv(65536)
                if chunk == b"":
                    break
                buf += chunk
                if b"\x01\x03\x00\x01" in buf:  # its END_REQUEST
                    break
            except socket.timeout:
                pass
            except OSError:
                break
        ms = now_ms() - t0
        answered = answer_in(s, buf, "-")
        s.close()
        report(answered=answered, answered_ms=ms)
    hostile_with_probe(addr, run)


def sc_values(addr):
    s = connect(addr)
    q = pair(b"FCGI_MPXS_CONNS", b"") + pair(b"FCGI_MAX_CONNS", b"") + pair(b"FOO", b"")
    s.sendall(rec(GET_VALUES, 0, q))
    rtype, rid, content = Reader(s).record()
    s.close()
    vals, i = {}, 0
    while i < len(content):
        nl, vl = content[i], content[i + 1]
        vals[content[i + 2:i + 2 + nl].decode()] = content[i + 2 + nl:i + 2 + nl + vl].decode()
        i += 2 + nl + vl
    report(type=rtype, mpxs=vals.get("FCGI_MPXS_CONNS", "-"),
           max_conns=vals.get("FCGI_MAX_CONNS", "-"), foo=vals.get("FOO", "absent"))


def sc_unknown(addr):
    s = connect(addr)
    s.sendall(rec(99, 0, b"12345678") + rec(DATA, 1, b"ignored") + request(1, client="203.0.113.10"))
    r = Reader(s)
    rtype, rid, content = r.record()
    _, code, _, _ = r.answer()
    s.close()
    report(reply_type=rtype, unknown_of=content[0], then=code)


def sc_badversion(addr):
    def run(a):
        worst = 0
        for _ in range(10):  # for a second, so that the probe runs beside it
            s = connect(a)
            s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1), version=2) + b"x" * 100)
            ms = closed_within(s, 10)
            worst = -1 if ms < 0 or worst < 0 else max(worst, ms)
            s.close()
            time.sleep(0.1)
        report(closed_ms=worst)
    hostile_with_probe(addr, run)


def sc_filterrole(addr):
    s = connect(addr)
    s.sendall(request(1, role=3))
    rid, code, proto, _ = Reader(s).answer()
    report(answer="%d:%s:%d" % (rid, code, proto), closed_ms=closed_within(s, 10))
    s.close()


def sc_bigparams(addr):
    s = connect(addr)
    p = params_bytes({"REMOTE_ADDR": "192.0.2.1", "REQUEST_URI": "/p", "HTTP_X_BIG": "x" * 200000})
    s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 0)) + stream(PARAMS, 1, p) + stream(STDIN, 1, b""))
    rid, code, proto, _ = Reader(s).answer()
    s.close()
    report(answer="%d:%s:%d" % (rid, code, proto))


def trickle_records(addr, rtype, expect_answer):
    s = connect(addr)
    if rtype == PARAMS:
        s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)))
    else:
        s.sendall(request(1, client="203.0.113.11", keep=True)[:-8])  # all but STDIN's end
    answered, t0 = "-", now_ms()
    s.settimeout(0.1)
    buf = b""
    while now_ms() - t0 < 15000:
        try:
            s.sendall(rec(rtype, 1, b"a=" * 512))
        except OSError:
            break
        try:
            chunk = s.recv(65536)
            if chunk == b"":
                break
            buf += chunk
        except socket.timeout:
            pass
        except OSError:
            break
    closed = now_ms() - t0
    if expect_answer and len(buf) >= 8:
        answered = answer_in(s, buf, "partial")
    s.close()
    report(closed_ms=closed if closed < 15000 else -1, answered=answered)


def sc_endless_params(addr):
    hostile_with_probe(addr, trickle_records, PARAMS, False)


def sc_endless_stdin(addr):
    hostile_with_probe(addr, trickle_records, STDIN, True)


def sc_short_record(addr):
    def run(a):
        s = connect(a)
        s.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)) +
                  struct.pack(">BBHHBB", 1, PARAMS, 1, 65535, 0, 0) + b"0123456789")
        report(closed_ms=closed_within(s, 15))
        s.close()
    hostile_with_probe(addr, run)


def sc_cut(addr):
    for cut in (3, 8 + 5, 40):
        s = connect(addr)
        s.sendall(request(1, client="203.0.113.12")[:cut])
        s.close()
    _, code, _, _ = one_request(addr, client="203.0.113.13")
    report(after=code)


def sc_noread(addr):
    """Pipelines keep-conn requests as fast as it can and never reads an answer."""
    def run(a):
        s = connect(a)
        s.setblocking(False)
        blob = request(1, client="203.0.113.20", path="/free", keep=True) * 1000
        sent, t0 = 0, now_ms()
        last = t0
        closed = -1
        while now_ms() - t0 < 20000:
            try:
                sent += s.send(blob[sent % len(blob):])
                last = now_ms()
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                closed = now_ms() - last
                break
        s.close()
        report(sent=sent, stalled_closed_ms=closed)
    hostile_with_probe(addr, run)


def sc_kept_idle(addr):
    s = connect(addr)
    s.sendall(request(1, client="203.0.113.14", keep=True))
    _, code, _, _ = Reader(s).answer()
    report(code=code, closed_ms=closed_within(s, 30))
    s.close()


def sc_busy_sibling(addr):
    """One process: a connection is opened (and accepted), then an admin test POST announcing
    40000 bytes sends 17000 at once (past the 16 KiB the loop buffers, so the answer reads the
    rest) and trickles, keeping the process busy until the answer's read deadline; meanwhile
    the first connection sends a normal request, within its own read deadline. Its outcome
    must be an answer, however late -- not a reset for the time the process spent busy."""
    p = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/api/health/rate-limiter/test",
         "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": "40000"}
    b = connect(addr)
    time.sleep(0.2)  # accepted: its read deadline runs from here
    a = connect(addr)
    a.sendall(rec(BEGIN, 1, struct.pack(">HB5x", 1, 1)) + stream(PARAMS, 1, params_bytes(p)))
    for _ in range(17):
        a.sendall(rec(STDIN, 1, b"x" * 1000))
    stop = [False]

    def trickle():
        while not stop[0]:
            try:
                a.sendall(rec(STDIN, 1, b"x"))
            except OSError:
                return
            time.sleep(0.1)
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = now_ms()
    try:
        b.sendall(request(1, client="198.51.100.77", path="/free"))
        _, code, _, _ = Reader(b).answer()
        sib = str(code)
    except Exception as e:
        sib = type(e).__name__
    report(sibling=sib, sibling_ms=now_ms() - t0)
    stop[0] = True
    a.close()
    b.close()


def main():
    addr, scenario, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    fn = globals().get("sc_" + scenario.replace("-", "_"))
    if fn is None:
        sys.exit("fcgi_probe.py: unknown scenario %s" % scenario)
    fn(addr, *args)


if __name__ == "__main__":
    main()
