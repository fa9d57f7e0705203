"""scripted_backend.py -- what the scripted HTTP/1.1 test backends share (framing_backend.py,
hostile_backend.py): the log a test reads ("conn N" per accepted connection, "req N METHOD
TARGET" per request, and any line a backend adds), reading a request head, and the server on
127.0.0.1 with one thread per connection."""
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


def serve_forever(port, log, serve):
    """Accepts on 127.0.0.1:port for ever; serve(conn, n) runs in a thread per connection."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    conns = 0
    while True:
        c, _ = s.accept()
        conns += 1
        log("conn %d" % conns)
        threading.Thread(target=serve, args=(c, conns), daemon=True).start()
