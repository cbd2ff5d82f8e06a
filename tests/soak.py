#!/usr/bin/env python3
"""soak.py: random traffic against jobpoold for a while, for tests/it_soak.sh.

    soak.py SOCK SECONDS SEED [CONNECTIONS]

CONNECTIONS threads (default 6) each send random requests of every kind in
lib/PROTOCOL.md (RELOAD among them), well-formed and not, to queues "echo", "slow",
"flaky" and "extra" (see it_soak.sh; "extra" comes and goes), on connections they drop
at random, abruptly or halfway through a request, and open again. A reader per
connection checks the framing of everything the daemon sends (OK, ERR, DATA and RESULT
with their bodies) and collects job ids, which later requests aim at: WAIT, STATUS,
CANCEL, RETRY, HISTORY. The same SEED gives each thread the same choices (what the
daemon answers, and when, still varies).

Prints one line "soak: requests=N replies=N results=N errors=N drops=N stalls=N"
(stalls: connections dropped after a second held back by a full queue) and exits 0, or
prints what broke and exits 1: a reply that is not well framed, an ERR code that
PROTOCOL.md does not list or this traffic cannot cause, a connection the daemon closed
without being asked.
"""
import random
import socket
import sys
import threading
import time

# PROTOCOL.md's error codes, but the ones this traffic cannot cause (denied, config,
# shutdown: no allow lists, no RELOAD, no stop while it runs).
ERR_CODES = {b"proto", b"toolarge", b"noqueue", b"busy", b"notfound", b"state",
             b"unavailable"}
QUEUES = ["echo", "slow", "flaky", "extra"]     # "extra" comes and goes with reloads

lock = threading.Lock()
ids = []
counts = {"requests": 0, "replies": 0, "results": 0, "errors": 0, "drops": 0,
          "stalls": 0}
broken = []


def note_id(i):
    with lock:
        if len(ids) < 5000:
            ids.append(i)
        else:
            ids[random.randrange(len(ids))] = i


def some_id(rng):
    with lock:
        if ids and rng.random() < 0.9:
            return ids[rng.randrange(len(ids))]
    return rng.randrange(1, 1 << 20)


def count(k, n=1):
    with lock:
        counts[k] += n


def fail(msg):
    with lock:
        broken.append(msg)


class Reader(threading.Thread):
    """Reads and checks everything the daemon sends on one connection."""

    def __init__(self, sock, expect_close):
        super().__init__(daemon=True)
        self.sock = sock
        self.buf = b""
        self.expect_close = expect_close
        self.closed_by_peer = False

    def recv(self):
        """Bytes, or b"" once the connection is over (a timeout is not an end)."""
        while True:
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                if self.expect_close.is_set():
                    return b""
            except OSError:
                return b""

    def fill(self, n):
        while len(self.buf) < n:
            d = self.recv()
            if not d:
                return False
            self.buf += d
        return True

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > 8192:
                fail("a reply line of more than 8 KiB: %r" % self.buf[:80])
                return None
            d = self.recv()
            if not d:
                return None
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln

    def body(self, size):
        """True: read; None: the connection ended first; False: not framed."""
        if not self.fill(size + 1):
            return None
        if self.buf[size:size + 1] != b"\n":
            return False
        self.buf = self.buf[size + 1:]
        return True

    def ended(self):
        """The connection ended in the middle of a message: ours to close, or not."""
        if not self.expect_close.is_set():
            self.closed_by_peer = True

    def run(self):
        while True:
            ln = self.line()
            if ln is None:
                self.ended()
                return
            w = ln.split(b" ")
            count("replies")
            try:
                if w[0] == b"OK":
                    if len(w) > 1 and w[1].isdigit():
                        note_id(int(w[1]))
                elif w[0] == b"ERR":
                    count("errors")
                    if len(w) < 2 or w[1] not in ERR_CODES:
                        fail("an ERR with an unknown code: %r" % ln[:120])
                elif w[0] == b"DATA" or w[0] == b"RESULT":
                    if len(w) != (2 if w[0] == b"DATA" else 4):
                        fail("a %s line not framed: %r" % (w[0].decode(), ln[:120]))
                        return
                    got = self.body(int(w[-1]))
                    if got is None:
                        self.ended()
                        return
                    if not got:
                        fail("a body of %s bytes not followed by newline: %r" %
                             (w[-1].decode(), ln[:120]))
                        return
                    if w[0] == b"RESULT":
                        count("results")
                        note_id(int(w[1]))
                else:
                    fail("a reply that is not OK, ERR, DATA or RESULT: %r" % ln[:120])
                    return
            except ValueError:
                fail("a number that is not one: %r" % ln[:120])
                return


def payload(rng, queue):
    if queue in ("echo", "extra", "nosuch"):
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    if queue == "slow":
        return str(rng.randrange(0, 40)).encode()
    return str(rng.randrange(10, 100)).encode()    # flaky: against a 30 ms timeout


def request(rng):
    r = rng.random()
    if r < 0.40:
        q = rng.choices(QUEUES + ["nosuch"], weights=[58, 24, 12, 4, 2])[0]
        opts = []
        if rng.random() < 0.5:
            opts.append("wait")
        if rng.random() < 0.3:
            opts.append("prio=%d" % rng.randrange(-12, 13))
        if rng.random() < 0.2:
            opts.append("delay=%.3f" % (rng.random() * 0.3))
        if rng.random() < 0.2:
            opts.append("timeout=%.3f" % (0.01 + rng.random() * 0.5))
        if rng.random() < 0.1:
            opts.append("nonblock")
        body = payload(rng, q)
        line = " ".join(["SUBMIT", q, str(len(body))] + opts).encode()
        return line + b"\n" + body + b"\n"
    if r < 0.52:
        return b"WAIT %d\n" % some_id(rng)
    if r < 0.62:
        return b"STATUS %d\n" % some_id(rng) if rng.random() < 0.8 else b"STATUS\n"
    if r < 0.72:
        return b"CANCEL %d\n" % some_id(rng)
    if r < 0.78:
        if rng.random() < 0.7:
            return b"RETRY %d\n" % some_id(rng)
        return b"RETRY all\n" if rng.random() < 0.5 else b"RETRY all flaky\n"
    if r < 0.82:
        return b"DEAD\n" if rng.random() < 0.5 else b"DEAD flaky\n"
    if r < 0.86:
        return b"HISTORY %d\n" % some_id(rng)
    if r < 0.90:
        return b"STATS\n"
    if r < 0.935:
        return b"PING\n"
    if r < 0.94:
        return b"RELOAD\n"     # of whatever the file says now (it_soak changes it)
    # Malformed, but well framed: the daemon answers ERR and carries on.
    return rng.choice([b"NOSUCH\n", b"WAIT x\n", b"SUBMIT echo\n", b"CANCEL\n",
                       b"STATUS 99999999999999999999\n", b"SUBMIT bad/name 1\nx\n",
                       b"SUBMIT echo 1 prio=x\nx\n", b"\n", b"ping\n"])


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    # A producer the daemon holds back (a full queue) stops being read: after a second
    # of that, the sender gives up on the connection.
    s.settimeout(1.0)
    return s


def client(path, deadline, seed):
    rng = random.Random(seed)
    while time.monotonic() < deadline and not broken:
        try:
            s = connect(path)
        except OSError as e:
            fail("connect: %s" % e)
            return
        closing = threading.Event()
        rd = Reader(s, closing)
        rd.start()
        n = rng.randrange(1, 200)
        try:
            for _ in range(n):
                if time.monotonic() >= deadline:
                    break
                s.sendall(request(rng))
                count("requests")
                if rng.random() < 0.3:
                    time.sleep(rng.random() * 0.005)
            how = rng.random()
            closing.set()
            if how < 0.3:
                s.sendall(b"SUBMIT echo 100\nhalf a bo")    # halfway through a request
            elif how < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            elif how < 0.7:
                s.sendall(b"QUIT\n")
                rd.join(5)
        except socket.timeout:
            count("stalls")     # held back by a full queue: drop it, as a producer might
        except OSError as e:
            if not closing.is_set():
                fail("send: %s" % e)
        closing.set()
        count("drops")
        s.close()
        rd.join(5)
        if rd.closed_by_peer:
            fail("the daemon closed a connection it was not asked to close")


def main():
    path, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    nconn = int(sys.argv[4]) if len(sys.argv) > 4 else 6
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(path, deadline, seed * 1000 + k))
               for k in range(nconn)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if broken:
        for b in broken[:10]:
            print("soak: " + b)
        return 1
    print("soak: " + " ".join("%s=%d" % kv for kv in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
