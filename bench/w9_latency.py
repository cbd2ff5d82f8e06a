#!/usr/bin/python3
"""bench/w9_latency.py: W9's end-to-end latency through Redis at a fixed rate.

    w9_latency.py PORT STREAM RATE SECONDS

A producer XADDs one 64-byte entry every 1/RATE s (on a schedule, not back to back)
to STREAM, which a jobpoold queue reads with `result_ttl` set; the daemon SETs
STREAM:result:<id> when the job ends, before its XACK. A second connection hears each
SET as a keyspace notification (notify-keyspace-events, turned on here), so the
latency of a job is from just before its XADD to the notification of its result: what
a producer on another host would see, less its own polling. Prints
"jobs=N p50_us=... p99_us=... max_us=...".
"""
import sys
import threading
import time

import redis


def main():
    port, stream, rate, secs = (int(sys.argv[1]), sys.argv[2], float(sys.argv[3]),
                                float(sys.argv[4]))
    n = int(rate * secs)
    r = redis.Redis(port=port)
    r.config_set("notify-keyspace-events", "K$")
    sent = {}
    got = {}
    ps = r.pubsub()
    prefix = "__keyspace@0__:%s:result:" % stream
    ps.psubscribe(prefix + "*")
    while ps.get_message(timeout=1) is None:
        pass

    def listen():
        while len(got) < n:
            m = ps.get_message(timeout=1)
            if m is None or m["type"] != "pmessage":
                continue
            t = time.monotonic_ns()
            got.setdefault(m["channel"].decode()[len(prefix):], t)

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        t = time.monotonic_ns()
        eid = r.xadd(stream, {"payload": "x" * 64}).decode()
        sent[eid] = t
    th.join(timeout=30)
    lat = sorted((got[k] - sent[k]) / 1000 for k in sent if k in got)
    if len(lat) < n:
        print("lost=%d" % (n - len(lat)))
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print("jobs=%d p50_us=%.0f p99_us=%.0f max_us=%.0f" % (len(lat), q(0.5), q(0.99),
                                                           lat[-1]))


if __name__ == "__main__":
    main()
