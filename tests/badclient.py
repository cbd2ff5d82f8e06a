#!/usr/bin/env python3
"""badclient.py: a raw-protocol client for jobpoold's integration tests.

It speaks lib/PROTOCOL.md byte by byte, with no help from libjobpool, so the tests can
send what a well-behaved client never would and see exactly what the daemon answers.

    badclient.py raw SOCK [-t SECS] [--keep-open]
        Send stdin as is, shut down the sending side (unless --keep-open), copy every
        byte the daemon sends to stdout until it closes the connection. Exit 0 when the
        daemon closed it, 3 when SECS passed first, 2 when the connect failed.
    badclient.py stats SOCK
        Print the STATS body.
    badclient.py submit SOCK QUEUE [OPTION ...]
        Submit stdin as one job with `wait` and the options; print the RESULT body to
        stdout byte-exact and "RESULT <id> <status> <size>" to stderr.
    badclient.py delay SOCK QUEUE MS
        Submit a job with delay=MS; print STATUS right after the OK, then the RESULT and
        how long it took.
    badclient.py prio SOCK QUEUE
        Occupy the queue's only worker, then submit a low and a high priority job in one
        write; print the order in which the three finish.
    badclient.py cancel SOCK QUEUE
        A delayed job waited for on one connection and cancelled from another.
    badclient.py cancelrun SOCK QUEUE PAYLOAD
        The same with a job that is running when it is cancelled.
    badclient.py flood SOCK QUEUE N [OPTIONS]
        Pipeline N `SUBMIT QUEUE 1 OPTIONS` requests (OPTIONS default "wait", "" for
        none) without ever reading a reply, as far as the daemon takes them; print how
        many went out, then hold the connection open until SIGTERM (or a minute). If
        the daemon closes it meanwhile, print "flood: closed by the daemon".
    badclient.py abrupt SOCK QUEUE N
        Open N connections, leave each mid-request or mid-wait, and drop it (some with a
        reset). Print "abrupt: N".
    badclient.py produce SOCK QUEUE N SIZE [--sleep-ms MS] [--watch PID]
        Submit N jobs of SIZE bytes with `wait` as fast as the daemon takes them (the
        payload is MS followed by blanks, for the sleep handler, with --sleep-ms), while
        a second thread reads the replies; print the counts. With --watch, a third
        samples the queue's STATS and PID's RSS every 20 ms and prints what it saw.
    badclient.py deaf SOCK [--read-oks N] [--hold SECS]
        Send stdin on one connection, as far as the daemon takes it, and never read
        (with --read-oks, read the first N replies, printing their ids, then stop
        reading). Print "deaf: sent X of Y bytes"; then hold the connection until the
        daemon closes it ("deaf: closed by the daemon after MS ms", then what was still
        to read: "deaf: then read N bytes: K replies, R results"), SIGTERM or SECS
        (default 60) pass ("deaf: still open").
    badclient.py slowread SOCK N [--chunk BYTES] [--sleep-ms MS] [--pause-ms MS]
        Send stdin on one connection, then (after MS of --pause-ms, default 0) read
        what the daemon sends in pieces of at most BYTES (default 4096), sleeping MS
        (default 1) after each, until N RESULTs have come or the daemon closes the
        connection. Print "slowread: R results (K ok, B bytes of bodies), O replies",
        then "slowread: open" or "slowread: closed by the daemon".
    badclient.py waitonce SOCK QUEUE N
        A delayed job, and N `WAIT`s for it in one write, on one connection; then the
        same for a job submitted with `wait`. Print the replies and how many RESULTs
        came for each job.
    badclient.py maxconn SOCK N
        Open N connections (each answers PING), then one more (print what it gets and
        whether it is closed), close two of the N, wait for a new connection to be
        served, open one more (N again) and then another (refused again).
    badclient.py crowd SOCK N [--ping] [--hold SECS]
        Open N connections one after another, all kept open (this process's descriptor
        limit raised as far as it goes). With --ping each sends PING and waits up to 2 s
        for its first line; print "crowd: S served, B busy, Q silent" and each distinct
        line other than OK pong once ("crowd: got LINE"). Without --ping they send
        nothing: print "crowd: N open", then hold them until SIGTERM or SECS (default
        60) and print "crowd: C of N closed by the daemon" and each distinct line they
        got before the close.
    badclient.py watch SOCK QUEUE [PID]
        Sample STATS every 10 ms until SIGTERM (or two minutes); print "watch: started"
        after the first sample, then at the end the largest depth + delayed + running
        of QUEUE, the largest in-flight count of one of its workers, the largest sum
        over its workers, and with PID the largest RSS of that process.
    badclient.py mixshutdown SOCK PID QUEUE SHORT LONG
        Warm QUEUE up with short jobs, submit LONG jobs of 1.5 s with wait and, once they
        run, SHORT short ones in one write; as soon as a worker holds a batch (inflight
        > 1) send SIGTERM to PID; print how every job ended and whether the daemon then
        closed the connection.
    badclient.py shutdown SOCK PID SIGNAL QUEUE RUNNING QUEUED
        Submit RUNNING 1000 ms sleep jobs and, once they run, QUEUED more and a delayed
        one, all with wait; send SIGNAL to PID; once STATS says stopping, say whether the
        socket file is there and what a new connection gets for SUBMIT and PING, and
        what an open connection gets; print every RESULT.

Exit status: 0 when the scenario ran (its output says what happened), 1 when the daemon
answered something unparsable or closed too early, 2 when the connect failed.
"""

import errno
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

DEFAULT_TIMEOUT = 10.0


class Closed(Exception):
    pass


class Conn:
    """One connection, with a buffer for what has been read but not consumed."""

    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.results = []       # RESULTs read while looking for a reply

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def _fill(self):
        d = self.s.recv(1 << 16)
        if not d:
            raise Closed("the daemon closed the connection")
        self.buf += d

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode("latin-1")

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def message(self):
        """The next message: (line, body or None)."""
        line = self.line()
        w = line.split()
        if w and w[0] in ("DATA", "RESULT"):
            size = int(w[-1])
            body = self.exact(size + 1)
            if body[-1:] != b"\n":
                raise Closed("body of %d bytes not followed by newline" % size)
            return line, body[:-1]
        return line, None

    def reply(self):
        """The next reply (OK, ERR, DATA), keeping RESULTs that come first."""
        while True:
            line, body = self.message()
            if line.startswith("RESULT "):
                self.results.append((line, body))
                continue
            return line, body

    def result(self):
        """The next RESULT: (id, status, body)."""
        if self.results:
            line, body = self.results.pop(0)
        else:
            line, body = self.message()
        w = line.split()
        if w[0] != "RESULT":
            raise Closed("expected a RESULT, got %r" % line)
        return int(w[1]), w[2], body

    def request(self, text):
        self.send(text)
        return self.reply()

    def submit(self, queue, payload, opts=""):
        if isinstance(payload, str):
            payload = payload.encode()
        line, _ = self.request(b"SUBMIT %s %d %s\n" % (queue.encode(), len(payload),
                                                      opts.encode()) + payload + b"\n")
        w = line.split()
        if w[0] != "OK":
            raise Closed("SUBMIT refused: %s" % line)
        return int(w[1])

    def close(self):
        self.s.close()


def out(*words):
    print(*words, flush=True)


def stats_body(path):
    c = Conn(path)
    line, body = c.request("STATS\n")
    c.close()
    if not line.startswith("DATA "):
        raise Closed("STATS: %s" % line)
    return body.decode()


def stats_queue(path, queue):
    """The key=value words of one queue's STATS line."""
    for line in stats_body(path).splitlines():
        w = line.split()
        if len(w) >= 2 and w[0] == "queue" and w[1] == queue:
            return dict(x.split("=", 1) for x in w[2:] if "=" in x)
    raise Closed("no queue %s in STATS" % queue)


def poll(cond, secs=10.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def cmd_raw(a):
    timeout, keep_open, path = 10.0, False, None
    i = 0
    while i < len(a):
        if a[i] == "-t":
            timeout = float(a[i + 1])
            i += 1
        elif a[i] == "--keep-open":
            keep_open = True
        else:
            path = a[i]
        i += 1
    data = sys.stdin.buffer.read()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        print("connect: %s" % e.strerror, file=sys.stderr)
        return 2
    s.setblocking(False)
    end = time.monotonic() + timeout
    off, got, closed = 0, [], False
    if not data and not keep_open:
        s.shutdown(socket.SHUT_WR)
    while time.monotonic() < end:
        want_w = [s] if off < len(data) else []
        r, w, _ = select.select([s], want_w, [], max(0.0, end - time.monotonic()))
        if w:
            try:
                off += s.send(data[off:off + 65536])
            except (BrokenPipeError, ConnectionResetError):
                off = len(data)
            if off >= len(data) and not keep_open:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if r:
            try:
                d = s.recv(1 << 16)
            except ConnectionResetError:
                d = b""
            if not d:
                closed = True
                break
            got.append(d)
    sys.stdout.buffer.write(b"".join(got))
    sys.stdout.flush()
    return 0 if closed else 3


def cmd_stats(a):
    sys.stdout.write(stats_body(a[0]))
    return 0


def cmd_submit(a):
    path, queue, opts = a[0], a[1], a[2:]
    payload = sys.stdin.buffer.read()
    c = Conn(path, timeout=30)
    c.submit(queue, payload, " ".join(["wait"] + opts))
    jid, status, body = c.result()
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    print("RESULT %d %s %d" % (jid, status, len(body)), file=sys.stderr)
    return 0


def cmd_delay(a):
    path, queue, ms = a[0], a[1], int(a[2])
    c = Conn(path)
    t0 = time.monotonic()
    jid = c.submit(queue, "x", "delay=%d wait" % ms)
    line, _ = c.request("STATUS %d\n" % jid)
    out("status:", line)
    rid, status, body = c.result()
    elapsed = (time.monotonic() - t0) * 1000
    out("result:", rid == jid, status, body.decode())
    out("elapsed_ms: %d" % elapsed)
    line, _ = c.request("STATUS %d\n" % jid)
    out("status_after:", line)
    line, _ = c.request("WAIT %d\n" % jid)
    rid, status, body = c.result()
    out("wait_after:", line, rid == jid, status, body.decode())
    return 0


def cmd_prio(a):
    path, queue = a[0], a[1]
    c = Conn(path)
    names = {}
    names[c.submit(queue, "400", "wait")] = "occupy"
    # The occupying job must be running before the others arrive.
    st = {}

    def running():
        line, _ = c.request("STATUS %d\n" % min(names))
        st["line"] = line
        return "state=running" in line
    if not poll(running, 5):
        out("occupy never ran:", st.get("line"))
        return 1
    c.send("SUBMIT %s 2 prio=-5 wait\n50\nSUBMIT %s 2 prio=5 wait\n50\n" % (queue, queue))
    for name in ("low", "high"):
        line, _ = c.reply()
        names[int(line.split()[1])] = name
    order = []
    for _ in range(3):
        jid, status, _ = c.result()
        order.append("%s:%s" % (names.get(jid, jid), status))
    out("order:", " ".join(order))
    return 0


def cmd_cancel(a):
    path, queue = a[0], a[1]
    waiter, other = Conn(path), Conn(path)
    jid = waiter.submit(queue, "late", "delay=20000 wait")
    out("status_before:", other.request("STATUS %d\n" % jid)[0])
    out("cancel:", other.request("CANCEL %d\n" % jid)[0])
    rid, status, body = waiter.result()
    out("waiter_result:", rid == jid, status, body.decode())
    out("status_after:", other.request("STATUS %d\n" % jid)[0])
    out("cancel_again:", other.request("CANCEL %d\n" % jid)[0])
    # A second waiter on the finished job gets its RESULT at once.
    line, _ = other.request("WAIT %d\n" % jid)
    rid, status, body = other.result()
    out("wait_after:", line, rid == jid, status, body.decode())
    return 0


def cmd_cancelrun(a):
    path, queue, payload = a[0], a[1], a[2]
    waiter, other = Conn(path, timeout=30), Conn(path)
    t0 = time.monotonic()
    jid = waiter.submit(queue, payload, "wait")
    st = {}

    def running():
        st["line"] = other.request("STATUS %d\n" % jid)[0]
        return "state=running" in st["line"]
    poll(running, 10)
    out("status_before:", st.get("line"))
    # "running" means sent to the worker, which starts it once it has read the frame:
    # a CANCEL before that skips the job ("cancelled before it started"), seen once
    # under load. The job sleeps for seconds; give the worker a moment to begin it.
    time.sleep(0.3)
    out("cancel:", other.request("CANCEL %d\n" % jid)[0])
    rid, status, body = waiter.result()
    out("waiter_result:", rid == jid, status, body.decode("latin-1"))
    out("elapsed_ms: %d" % ((time.monotonic() - t0) * 1000))
    out("status_after:", other.request("STATUS %d\n" % jid)[0])
    return 0


def cmd_flood(a):
    path, queue, n = a[0], a[1], int(a[2])
    opts = a[3] if len(a) > 3 else "wait"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    # A small receive buffer makes the daemon's output back up sooner.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    req = ("SUBMIT %s 1%s\nx\n" % (queue, " " + opts if opts else "")).encode()
    data = req * n
    off, stalled_since, closed = 0, None, False
    while off < len(data):
        try:
            off += s.send(data[off:off + 65536])
            stalled_since = None
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        except BlockingIOError:
            now = time.monotonic()
            if stalled_since is None:
                stalled_since = now
            elif now - stalled_since > 1.0:
                break
            time.sleep(0.01)
    out("flood: sent %d of %d requests" % (off // len(req), n))
    if closed:
        out("flood: closed by the daemon")
    # Hold on, reading nothing, until told to go (at most a minute).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(60)
    return 0


def cmd_abrupt(a):
    path, queue, n = a[0], a[1], int(a[2])
    partial = [
        b"SUBMIT %s 100 wait\nonly part of the body" % queue.encode(),
        b"SUBMIT %s 5 wait\nhello\n" % queue.encode(),      # wait, then go away
        b"PING",                                              # half a line
        b"STATS\nPING\nSUBMIT %s" % queue.encode(),
        b"SUBMIT %s 1048576\n" % queue.encode() + b"z" * 5000,  # mid-discard
        b"",
    ]
    linger_rst = struct.pack("ii", 1, 0)
    opened = []
    for i in range(n):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.sendall(partial[i % len(partial)])
        except OSError as e:
            out("abrupt: connection %d: %s" % (i, e.strerror))
            return 1
        if i % 3 == 0:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_rst)
        # Close some at once, let others pile up and go together.
        if i % 2 == 0:
            s.close()
        else:
            opened.append(s)
        if len(opened) >= 100:
            for x in opened:
                x.close()
            opened = []
    for x in opened:
        x.close()
    out("abrupt: %d" % n)
    return 0


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_produce(a):
    path, queue, n, size = a[0], a[1], int(a[2]), int(a[3])
    sleep_ms, watch = None, None
    i = 4
    while i + 1 < len(a):
        if a[i] == "--sleep-ms":
            sleep_ms = a[i + 1]
        elif a[i] == "--watch":
            watch = int(a[i + 1])
        i += 2
    if sleep_ms is not None:
        payload = sleep_ms.encode().ljust(size, b" ")
    else:
        payload = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    req = b"SUBMIT %s %d wait\n" % (queue.encode(), size) + payload + b"\n"
    c = Conn(path, timeout=60)
    counts = {"ok": 0, "err": 0, "result_ok": 0, "result_other": 0, "bad_body": 0}
    errors = []

    def reader():
        try:
            while counts["ok"] + counts["err"] < n or \
                    counts["result_ok"] + counts["result_other"] < counts["ok"]:
                line, body = c.message()
                w = line.split()
                if w[0] == "OK":
                    counts["ok"] += 1
                elif w[0] == "ERR":
                    counts["err"] += 1
                    if len(errors) < 5:
                        errors.append(line)
                elif w[0] == "RESULT" and w[2] == "ok":
                    counts["result_ok"] += 1
                    if body != payload:
                        counts["bad_body"] += 1
                else:
                    counts["result_other"] += 1
                    if len(errors) < 5:
                        errors.append(line)
        except (Closed, OSError) as e:
            errors.append("reader: %s" % e)

    # The watcher samples the queue's STATS and the daemon's RSS while the producer runs.
    watched = {"samples": 0, "blocked": 0, "rss_max_blocked": 0, "rss_max": 0}
    done = threading.Event()

    def watcher():
        try:
            w = Conn(path)
            while not done.is_set():
                line, body = w.request("STATS\n")
                q = {}
                for sl in body.decode().splitlines():
                    f = sl.split()
                    if len(f) >= 2 and f[0] == "queue" and f[1] == queue:
                        q = dict(x.split("=", 1) for x in f[2:] if "=" in x)
                rss = rss_kib(watch)
                watched["samples"] += 1
                watched["rss_max"] = max(watched["rss_max"], rss)
                if q.get("blocked", "0") != "0":
                    watched["blocked"] += 1
                    watched["rss_max_blocked"] = max(watched["rss_max_blocked"], rss)
                time.sleep(0.02)
            w.close()
        except (Closed, OSError) as e:
            errors.append("watcher: %s" % e)

    t = threading.Thread(target=reader)
    t.start()
    wt = threading.Thread(target=watcher) if watch else None
    if wt:
        wt.start()
    t0 = time.monotonic()
    try:
        for _ in range(n):
            c.send(req)
    except OSError as e:
        errors.append("writer: %s" % e)
    out("produce: written %d in %.2f s" % (n, time.monotonic() - t0))
    t.join()
    done.set()
    if wt:
        wt.join()
        out("watch: %d samples, %d blocked, RSS at most %d KiB while blocked, %d KiB in all"
            % (watched["samples"], watched["blocked"], watched["rss_max_blocked"],
               watched["rss_max"]))
    for k in ("ok", "err", "result_ok", "result_other", "bad_body"):
        out("%s: %d" % (k, counts[k]))
    for e in errors:
        out("error:", e)
    out("elapsed_ms: %d" % ((time.monotonic() - t0) * 1000))
    return 0


def cmd_shutdown(a):
    path, pid, signame, queue = a[0], int(a[1]), a[2], a[3]
    nrun, nqueued = int(a[4]), int(a[5])
    sig = getattr(signal, signame)
    jobs, probe = Conn(path, timeout=30), Conn(path)
    names = {}
    for i in range(nrun):
        names[jobs.submit(queue, "1000", "wait")] = "running%d" % i
    if not poll(lambda: int(stats_queue(path, queue)["running"]) == nrun, 5):
        out("the first jobs never ran:", stats_queue(path, queue))
        return 1
    for i in range(nqueued):
        names[jobs.submit(queue, "1000", "wait")] = "queued%d" % i
    names[jobs.submit(queue, "1000", "delay=60000 wait")] = "delayed"
    out("probe_before:", probe.request("PING\n")[0])
    os.kill(pid, sig)
    t0 = time.monotonic()

    def stopping():
        body = probe.request("STATS\n")[1].decode("latin-1")
        return "stopping=1" in body.split("\n", 1)[0].split()
    out("stopping:", "yes" if poll(stopping, 5) else "no")
    # The drain has begun: the socket file is still there, and a new client is told.
    out("socket_file:", "there" if os.path.exists(path) else "gone")
    try:
        late = Conn(path, timeout=5)
        out("new_connection: accepted")
        out("new_submit:", late.request("SUBMIT %s 1\n5\n" % queue)[0])
        out("new_ping:", late.request("PING\n")[0])
        late.close()
    except (Closed, OSError) as e:
        out("new_connection: refused", errno.errorcode.get(getattr(e, "errno", None), e))
    out("probe_submit:", probe.request("SUBMIT %s 1\n5\n" % queue)[0])
    out("probe_ping:", probe.request("PING\n")[0])
    try:
        for _ in range(nrun + nqueued + 1):
            jid, status, body = jobs.result()
            out("result:", names.get(jid, jid), status, body.decode("latin-1"))
    except (Closed, OSError) as e:
        out("error:", e)
    out("results_after_ms: %d" % ((time.monotonic() - t0) * 1000))
    # The daemon then closes every connection as it exits.
    try:
        jobs.s.settimeout(10)
        while True:
            line, _ = jobs.message()
            out("extra:", line)
    except Closed:
        out("jobs_connection: closed")
    except OSError as e:
        out("jobs_connection:", e)
    return 0


def cmd_deaf(a):
    path, read_oks, hold = a[0], 0, 60.0
    i = 1
    while i + 1 < len(a):
        if a[i] == "--read-oks":
            read_oks = int(a[i + 1])
        elif a[i] == "--hold":
            hold = float(a[i + 1])
        i += 2
    data = sys.stdin.buffer.read()
    c = Conn(path, timeout=30)
    s = c.s
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    off, stalled_since = 0, None
    while off < len(data):
        try:
            off += s.send(data[off:off + 65536])
            stalled_since = None
        except BlockingIOError:
            now = time.monotonic()
            if stalled_since is None:
                stalled_since = now
            elif now - stalled_since > 1.0:
                break
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break
    out("deaf: sent %d of %d bytes" % (off, len(data)))
    if read_oks:
        s.settimeout(30)
        ids = []
        for _ in range(read_oks):
            line, _ = c.reply()
            w = line.split()
            ids.append(w[1] if w[0] == "OK" and len(w) > 1 else line)
        out("deaf: ids", " ".join(ids))
        out("deaf: results read with them: %d" % len(c.results))
        s.setblocking(False)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    p = select.poll()
    p.register(s, select.POLLRDHUP | select.POLLHUP)
    t0, end = time.monotonic(), time.monotonic() + hold
    while not stop["now"] and time.monotonic() < end:
        ev = p.poll(50)
        if ev and ev[0][1] & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
            out("deaf: closed by the daemon after %d ms" % ((time.monotonic() - t0) * 1000))
            rest = c.buf
            s.setblocking(True)
            s.settimeout(10)
            try:
                while True:
                    d = s.recv(1 << 16)
                    if not d:
                        break
                    rest += d
            except OSError:
                pass
            words = [ln.split(b" ", 1)[0] for ln in rest.split(b"\n")]
            out("deaf: then read %d bytes: %d replies, %d results" % (
                len(rest), sum(1 for w in words if w in (b"OK", b"ERR", b"DATA")),
                rest.count(b"RESULT ")))
            return 0
    out("deaf: still open")
    return 0


def cmd_slowread(a):
    path, n = a[0], int(a[1])
    chunk, sleep_ms, pause_ms = 4096, 1.0, 0.0
    i = 2
    while i + 1 < len(a):
        if a[i] == "--chunk":
            chunk = int(a[i + 1])
        elif a[i] == "--sleep-ms":
            sleep_ms = float(a[i + 1])
        elif a[i] == "--pause-ms":
            pause_ms = float(a[i + 1])
        i += 2
    data = sys.stdin.buffer.read()
    c = Conn(path, timeout=60)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # Sent from a thread: the replies must not wait for the whole of stdin to go.
    t = threading.Thread(target=c.s.sendall, args=(data,), daemon=True)
    t.start()
    time.sleep(pause_ms / 1000.0)
    buf, results, ok, body_bytes, replies, closed = b"", 0, 0, 0, 0, False
    while results < n:
        d = c.s.recv(chunk)
        if not d:
            closed = True
            break
        buf += d
        # Whole messages off the front of buf.
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            w = buf[:nl].split()
            if w and w[0] in (b"RESULT", b"DATA"):
                size = int(w[-1])
                if len(buf) < nl + 1 + size + 1:
                    break
                if w[0] == b"RESULT":
                    results += 1
                    ok += w[2] == b"ok"
                    body_bytes += size
                else:
                    replies += 1
                buf = buf[nl + 1 + size + 1:]
            else:
                replies += 1
                buf = buf[nl + 1:]
        time.sleep(sleep_ms / 1000.0)
    out("slowread: %d results (%d ok, %d bytes of bodies), %d replies" % (
        results, ok, body_bytes, replies))
    if not closed:
        c.s.settimeout(0.2)
        try:
            closed = c.s.recv(1 << 16) == b""
        except socket.timeout:
            pass
    out("slowread: closed by the daemon" if closed else "slowread: open")
    return 0


def cmd_waitonce(a):
    path, queue, n = a[0], a[1], int(a[2])
    c = Conn(path, timeout=30)
    for name, opts in (("plain", "delay=500"), ("submitted_with_wait", "delay=500 wait")):
        jid = c.submit(queue, name, opts)
        c.send(("WAIT %d\n" % jid) * n)
        replies = {}
        for _ in range(n):
            line, _ = c.reply()
            replies[line] = replies.get(line, 0) + 1
        out("%s: replies:" % name, ", ".join("%d x %s" % (k, r) for r, k in
                                            sorted(replies.items())))
        rid, status, body = c.result()
        results = [(rid, status)]
        # Every RESULT for the job is written when it finishes, before this reply.
        line, _ = c.request("STATUS %d\n" % jid)
        out("%s: status:" % name, line)
        line, _ = c.request("PING\n")
        results += [tuple(r[0].split()[1:3]) for r in c.results]
        c.results = []
        out("%s: results: %d, first: %s %s" % (name, len(results), status,
                                                body.decode("latin-1")))
        out("%s: ping after them:" % name, line)
    return 0


def cmd_maxconn(a):
    path, n = a[0], int(a[1])
    held = []
    for i in range(n):
        c = Conn(path, timeout=5)
        held.append(c)
        out("conn %d:" % (i + 1), c.request("PING\n")[0])

    def extra(what):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        got = b""
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                got += d
            closed = "closed"
        except socket.timeout:
            closed = "still open"
        except ConnectionResetError:
            closed = "reset"
        s.close()
        out("%s:" % what, got.decode("latin-1").rstrip("\n"), "|", closed)

    extra("extra")
    held.pop(0).close()
    held.pop(0).close()

    def served():
        try:
            c = Conn(path, timeout=5)
            c.send("PING\n")
            line = c.line()
        except OSError:
            return False
        if line == "OK pong":
            held.append(c)
            return True
        c.close()
        return False
    # The daemon notices the two closes soon, not at once: poll.
    out("after closing two:", "served" if poll(served, 10) else "still refused")
    out("another one:", "served" if poll(served, 10) else "still refused")
    out("open now: %d" % len(held))
    extra("extra again")
    for c in held:
        c.close()
    return 0


def cmd_crowd(a):
    import resource
    path, n = a[0], int(a[1])
    ping = "--ping" in a
    hold = float(a[a.index("--hold") + 1]) if "--hold" in a else 60.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks, lines = [], []
    served = busy = silent = 0
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        # A full backlog fails a connect with a timeout at once (EAGAIN): retry.
        end = time.monotonic() + 10
        while True:
            try:
                s.connect(path)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.01)
        socks.append(s)
        if not ping:
            continue
        s.settimeout(2)
        got = b""
        try:
            s.sendall(b"PING\n")
        except OSError:
            pass        # refused and closed already: what it said is still there
        try:
            while b"\n" not in got:
                d = s.recv(4096)
                if not d:
                    break
                got += d
        except socket.timeout:
            pass
        except OSError:
            pass
        line = got.partition(b"\n")[0].decode("latin-1")
        if line == "OK pong":
            served += 1
        elif line.startswith("ERR busy"):
            busy += 1
        else:
            silent += 1
        if line and line != "OK pong" and line not in lines:
            lines.append(line)
    if ping:
        out("crowd: %d served, %d busy, %d silent" % (served, busy, silent))
        for line in lines:
            out("crowd: got", line)
        return 0
    out("crowd: %d open" % n)
    stop = []
    signal.signal(signal.SIGTERM, lambda *x: stop.append(1))
    got = {s: b"" for s in socks}
    closed = set()
    end = time.monotonic() + hold
    while not stop and len(closed) < n and time.monotonic() < end:
        live = [s for s in socks if s not in closed]
        r = []
        # select() cannot watch descriptors past 1023: poll in turn.
        p = select.poll()
        for s in live:
            p.register(s, select.POLLIN)
        for fd, _ in p.poll(200):
            r.append(fd)
        byfd = {s.fileno(): s for s in live}
        for fd in r:
            s = byfd[fd]
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d:
                got[s] += d
            else:
                closed.add(s)
    out("crowd: %d of %d closed by the daemon" % (len(closed), n))
    for s in socks:
        line = got[s].partition(b"\n")[0].decode("latin-1")
        if line and line not in lines:
            lines.append(line)
    for line in lines:
        out("crowd: got", line)
    return 0


def cmd_watch(a):
    path, queue = a[0], a[1]
    pid = int(a[2]) if len(a) > 2 else None
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    c = Conn(path)
    seen = {"samples": 0, "held": 0, "inflight": 0, "inflight_sum": 0, "rss": 0}
    end = time.monotonic() + 120
    while not stop["now"] and time.monotonic() < end:
        line, body = c.request("STATS\n")
        held = inflight_sum = 0
        for sl in body.decode().splitlines():
            f = sl.split()
            if len(f) < 2 or f[1] != queue:
                continue
            kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
            if f[0] == "queue":
                held = int(kv["depth"]) + int(kv["delayed"]) + int(kv["running"])
            elif f[0] == "worker":
                k = int(kv["inflight"])
                inflight_sum += k
                seen["inflight"] = max(seen["inflight"], k)
        seen["held"] = max(seen["held"], held)
        seen["inflight_sum"] = max(seen["inflight_sum"], inflight_sum)
        if pid:
            seen["rss"] = max(seen["rss"], rss_kib(pid))
        seen["samples"] += 1
        if seen["samples"] == 1:
            out("watch: started")
        time.sleep(0.01)
    out("watch: %d samples" % seen["samples"])
    out("watch: most held (depth + delayed + running): %d" % seen["held"])
    out("watch: most in flight to one worker: %d" % seen["inflight"])
    out("watch: most in flight to all workers: %d" % seen["inflight_sum"])
    if pid:
        out("watch: largest RSS: %d KiB" % seen["rss"])
    return 0


def cmd_mixshutdown(a):
    path, pid, queue, nshort, nlong = a[0], int(a[1]), a[2], int(a[3]), int(a[4])
    jobs, probe = Conn(path, timeout=60), Conn(path)
    # Warm-up: the queue measures its jobs' service time before it batches them.
    jobs.send(("SUBMIT %s 1 wait\n0\n" % queue) * 500)
    for _ in range(500):
        jobs.reply()
    for _ in range(500):
        jobs.result()
    names = {}
    for _ in range(nlong):
        names[jobs.submit(queue, "1500", "wait")] = "long"
    longs = list(names)
    if not poll(lambda: all("state=running" in probe.request("STATUS %d\n" % j)[0]
                            for j in longs), 10):
        out("error: the long jobs never ran")
        return 1
    # Let them run a while: batching then gives their workers nothing more (a batch sent
    # to a worker whose job has only just begun would wait behind it).
    time.sleep(0.3)
    # The short ones in one write; their OKs are read after the signal.
    jobs.send((b"SUBMIT %s 1 wait\n0\n" % queue.encode()) * nshort)
    seen = {}

    def batched():
        q, inflight = {}, []
        for sl in stats_body(path).splitlines():
            f = sl.split()
            if len(f) < 2 or f[1] != queue:
                continue
            kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
            if f[0] == "queue":
                q = kv
            elif f[0] == "worker":
                inflight.append(int(kv["inflight"]))
        seen["inflight"], seen["queue"] = inflight, q
        return max(inflight or [0]) > 1
    ok = poll(batched, 10)
    os.kill(pid, signal.SIGTERM)
    out("at_signal: batch in flight:", "yes" if ok else "no", "inflight=%s depth=%s" % (
        ",".join(map(str, seen.get("inflight", []))), seen.get("queue", {}).get("depth")))
    refused = {}
    for _ in range(nshort):
        line, _ = jobs.reply()
        w = line.split()
        if w[0] == "OK":
            names[int(w[1])] = "short"
        else:
            refused[line] = refused.get(line, 0) + 1
    out("short jobs accepted: %d" % (nshort - sum(refused.values())))
    for line, k in sorted(refused.items()):
        out("short jobs refused: %d x %s" % (k, line))
    got, dup, bad = {}, 0, []
    try:
        while len(got) < len(names):
            jid, status, body = jobs.result()
            if jid in got:
                dup += 1
            elif jid not in names:
                bad.append("unknown job %d" % jid)
            got[jid] = status
    except (Closed, OSError) as e:
        bad.append(str(e))
    counts = {}
    for jid, status in got.items():
        k = "%s:%s" % (names.get(jid, "?"), status)
        counts[k] = counts.get(k, 0) + 1
    out("jobs: %d, results: %d, duplicates: %d, missing: %d" % (
        len(names), len(got), dup, len(set(names) - set(got))))
    out("outcomes:", " ".join("%s=%d" % kv for kv in sorted(counts.items())))
    for e in bad[:5]:
        out("error:", e)
    try:
        jobs.s.settimeout(20)
        while True:
            line, _ = jobs.message()
            out("extra:", line)
    except Closed:
        out("jobs_connection: closed")
    except OSError as e:
        out("jobs_connection:", e)
    return 0


COMMANDS = {
    "raw": cmd_raw, "stats": cmd_stats, "submit": cmd_submit, "delay": cmd_delay,
    "prio": cmd_prio, "cancel": cmd_cancel, "cancelrun": cmd_cancelrun,
    "flood": cmd_flood,
    "abrupt": cmd_abrupt, "produce": cmd_produce, "shutdown": cmd_shutdown,
    "deaf": cmd_deaf, "slowread": cmd_slowread, "waitonce": cmd_waitonce,
    "maxconn": cmd_maxconn, "crowd": cmd_crowd,
    "watch": cmd_watch, "mixshutdown": cmd_mixshutdown,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 64
    try:
        return COMMANDS[sys.argv[1]](sys.argv[2:])
    except (FileNotFoundError, ConnectionRefusedError) as e:
        print("badclient: connect: %s" % e.strerror, file=sys.stderr)
        return 2
    except (Closed, OSError, ValueError, IndexError) as e:
        print("badclient: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
