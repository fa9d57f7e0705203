"""scripted_backend.py -- what the scripted HTTP/1.1 test backends share (framing_backend.py,
hostile_backend.py): the log a test reads ("conn N" per accepted connection, "req N METHOD
TARGET" per request, and any line a backend adds), reading a request head, and the server on
127.0.0.1 with one thread per connection reading its requests in turn."""
import socket
import threading

_lock = threading.Lock()


class Log:
    def __init__(self, path):
        self.path = path

    def __call__(self, line):
        with _lock:
            with open(self.path, "a") as f:
                f.write(line + "\n")


def read_head(f):
    """(method, target, headers with lowercase names), or None at the end of the connection."""
    line = f.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _serve(conn, n, log, handle):
    """The requests of one connection, each logged, until handle says to close it or the
    client does; a socket error ends the connection quietly."""
    f = conn.makefile("rb")
    try:
        while True:
            head = read_head(f)
            if head is None:
                break
            method, target, headers = head
            log("req %d %s %s" % (n, method, target))
            if handle(conn, f, method, target, headers, target.partition("?")[2]):
                break
    except (OSError, ValueError):
        pass
    finally:
        f.close()
        conn.close()


def serve_forever(port, log, handle):
    """Accepts on 127.0.0.1:port for ever, a thread per connection; for each request
    handle(conn, f, method, target, headers, mode) answers it (mode: the query) and returns
    True to close the connection."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    conns = 0
    while True:
        c, _ = s.accept()
        conns += 1
        log("conn %d" % conns)
        threading.Thread(target=_serve, args=(c, conns, log, handle), daemon=True).start()
