#!/usr/bin/env python3
"""notify_listener.py: a stand-in for systemd's notify socket, for the integration tests.

    notify_listener.py NOTIFY_SOCK OUT [--check JOBPOOL_SOCK]

Binds an AF_UNIX datagram socket at NOTIFY_SOCK (a path; "@name" for an abstract one)
and appends one line to OUT per datagram received:

    <monotonic ms> <sender pid or -> <field>|<field>|...

(the datagram's lines joined by "|"; the clock is CLOCK_MONOTONIC, the one
MONOTONIC_USEC= uses). With --check, at the first READY=1 it connects to JOBPOOL_SOCK
at once, sends PING and STATS, and appends

    CHECK ping=<ok|failed> workers=<n> idle=<n> states=<state,...>

so a test can see what a client found the moment the daemon said it was ready. Runs
until SIGTERM or SIGINT, then exits 0. Prints "listening" on stdout once bound.
"""

import argparse
import os
import signal
import socket
import struct
import sys
import time

SCM_CREDENTIALS = 2


def mono_ms():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000)


def check_daemon(path):
    """PING and STATS on the daemon's socket: what a client sees right now."""
    ping = "failed"
    states = []
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"PING\nSTATS\n")
        buf = b""
        # "OK pong\n" then "DATA <n>\n" and n bytes and "\n".
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            lines = buf.split(b"\n", 2)
            if len(lines) == 3 and lines[1].startswith(b"DATA "):
                size = int(lines[1].split()[1])
                if len(lines[2]) >= size:
                    break
        s.close()
        lines = buf.split(b"\n", 2)
        if lines[0] == b"OK pong":
            ping = "ok"
        if len(lines) == 3:
            for line in lines[2].decode(errors="replace").splitlines():
                words = line.split()
                if len(words) >= 4 and words[0] == "worker":
                    for w in words[2:]:
                        if w.startswith("state="):
                            states.append(w[6:])
    except OSError as e:
        ping = "failed(%s)" % e.strerror
    idle = sum(1 for st in states if st == "idle")
    return "CHECK ping=%s workers=%d idle=%d states=%s" % (
        ping, len(states), idle, ",".join(states) or "-")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sock")
    ap.add_argument("out")
    ap.add_argument("--check")
    a = ap.parse_args()

    addr = a.sock
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    elif os.path.exists(addr):
        os.unlink(addr)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(addr)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    s.settimeout(0.1)
    checked = False
    out = open(a.out, "a", buffering=1)
    print("listening", flush=True)
    while not stop:
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        pid = "-"
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == SCM_CREDENTIALS and len(cdata) >= 12:
                pid = str(struct.unpack("iII", cdata[:12])[0])
        fields = data.decode(errors="replace").strip("\n").split("\n")
        out.write("%d %s %s\n" % (mono_ms(), pid, "|".join(fields)))
        if a.check and not checked and "READY=1" in fields:
            checked = True
            out.write(check_daemon(a.check) + "\n")
    out.close()
    if not a.sock.startswith("@"):
        try:
            os.unlink(a.sock)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
