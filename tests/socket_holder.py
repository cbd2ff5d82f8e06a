#!/usr/bin/env python3
"""socket_holder.py: hold a listening socket the way systemd's jobpool.socket does, and
hand it to successive runs of a daemon, for the socket-activation tests.

    socket_holder.py SOCK DIR -- COMMAND [ARG ...]

Binds and listens on the Unix stream socket SOCK, prints "listening", then for
i = 1, 2, ...: waits until the file DIR/go.i exists (or DIR/quit: then exits 0), forks
and runs COMMAND with the socket as fd 3 and LISTEN_FDS=1, LISTEN_PID=<its pid>,
LISTEN_FDNAMES=jobpool.sock (sd_listen_fds(3)), writes its pid to DIR/pid.i, waits for
it and writes its exit status to DIR/rc.i. The socket stays open (and its connections
queued) in between, as with a socket unit; the holder never unlinks SOCK.
"""

import os
import socket
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        print(__doc__, file=sys.stderr)
        return 64
    path, d, cmd = sys.argv[1], sys.argv[2], sys.argv[4:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(128)
    print("listening", flush=True)
    i = 0
    while True:
        i += 1
        go = os.path.join(d, "go.%d" % i)
        while not os.path.exists(go):
            if os.path.exists(os.path.join(d, "quit")):
                return 0
            time.sleep(0.02)
        pid = os.fork()
        if pid == 0:
            try:
                if s.fileno() != 3:
                    os.dup2(s.fileno(), 3)
                # Python's sockets are close-on-exec, and dup2 onto itself keeps that.
                os.set_inheritable(3, True)
                env = dict(os.environ)
                env.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                           LISTEN_FDNAMES="jobpool.sock")
                os.execvpe(cmd[0], cmd, env)
            finally:
                os._exit(127)
        with open(os.path.join(d, "pid.%d" % i), "w") as f:
            f.write("%d\n" % pid)
        _, status = os.waitpid(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        with open(os.path.join(d, "rc.%d" % i), "w") as f:
            f.write("%d\n" % rc)


if __name__ == "__main__":
    sys.exit(main())
