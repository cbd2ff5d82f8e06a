#!/usr/bin/python3
"""py_peer.py: the Python asyncio + ProcessPoolExecutor peer, in the two patterns that
jobpool replaces.

  gather: await asyncio.gather(*(loop.run_in_executor(pool, job, p) for p in payloads))
  queue:  an asyncio.Queue(maxsize=QMAX) filled by one producer and drained by WORKERS
          asyncio tasks, each awaiting loop.run_in_executor(pool, job, p) per item

Both use ProcessPoolExecutor(max_workers=WORKERS). The job function returns its payload
(W1) or runs a pure-Python spin loop (W2; calibrated here to a target time).

  py_peer.py w1 gather|queue N [WORKERS]          -> jobs=N seconds=S jobs_per_s=R failed=F
  py_peer.py w2 gather|queue ITERS K WORKERS      -> jobs=K seconds=S
  py_peer.py lat RATE SECONDS WARMUP [WORKERS]    -> offered=R achieved=R jobs=N lost=L
                                                     p50_us=.. p90_us=.. p99_us=..
                                                     p999_us=.. max_us=.. (W3)
  py_peer.py cal MS                               -> ITERS so that one job takes ~MS ms
  py_peer.py serial ITERS K                       -> jobs=K seconds=S (in-process)
"""
import asyncio
import sys
import time
from concurrent.futures import ProcessPoolExecutor

QMAX = 1000
FILL = ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        "abcdefghijklmnopqrstuvwxyz0123456789")


def payload(i):
    s = "%d " % i
    return (s + FILL[len(s):64]).encode()


def echo(p):
    return p


def spin(n, x):
    s = 0
    for i in range(n):
        s += i * x
    return s & 0xFFFFFFFFFFFFFFFF


async def run_gather(pool, fn, args):
    loop = asyncio.get_running_loop()
    return await asyncio.gather(*(loop.run_in_executor(pool, fn, *a) for a in args))


async def run_queue(pool, fn, args, workers):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize=QMAX)
    out = []

    async def worker():
        while True:
            a = await q.get()
            if a is None:
                q.task_done()
                return
            out.append(await loop.run_in_executor(pool, fn, *a))
            q.task_done()

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    for a in args:
        await q.put(a)
    for _ in range(workers):
        await q.put(None)
    await asyncio.gather(*tasks)
    return out


async def run_lat(pool, rate, seconds, warmup):
    """W3, open loop: job i is due at t0 + i/RATE, handed to the pool by
    run_in_executor at that time (loop.call_at), and measured from when it was due to
    when its future is done in the event loop, as jplat measures jobpool."""
    loop = asyncio.get_running_loop()
    n = int(rate * (seconds + warmup))
    nwarm = int(rate * warmup)
    lat = []
    sl = []
    lag = []
    left = [n]
    finished = loop.create_future()
    last = [0.0]
    t0 = loop.time() + 0.01

    def done(i, due, sent, fut):
        now = loop.time()
        fut.result()
        if i >= nwarm:
            lat.append(now - due)
            sl.append(now - sent)
            lag.append(sent - due)
        last[0] = now
        left[0] -= 1
        if left[0] == 0:
            finished.set_result(None)

    def send(i, due):
        sent = loop.time()
        fut = loop.run_in_executor(pool, echo, payload(i))
        fut.add_done_callback(lambda f: done(i, due, sent, f))

    for i in range(n):
        due = t0 + i / rate
        loop.call_at(due, send, i, due)
    await finished
    start = t0 + nwarm / rate
    span = max(last[0], t0 + n / rate) - start
    return (lat, sl, lag), len(lat) / span


def pcts(pre, v):
    v.sort()
    return " ".join("%s%s_us=%.1f" % (pre, k, v[int(q * (len(v) - 1) + 0.5)] * 1e6 if v else 0)
                    for k, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99),
                                 ("p999", 0.999), ("max", 1.0)))


def print_latency(rate, achieved, lats, lost):
    """The line benchutil.h's lat_log_print() prints: from the due time, from the
    hand-over to the pool (send_), and the lag between the two."""
    lat, sl, lag = lats
    lag.sort()
    print("offered=%.0f achieved=%.0f jobs=%d lost=%d %s %s lag_p50_us=%.1f "
          "lag_p99_us=%.1f" % (rate, achieved, len(lat), lost, pcts("", lat),
                               pcts("send_", sl),
                               lag[int(0.5 * (len(lag) - 1) + 0.5)] * 1e6 if lag else 0,
                               lag[int(0.99 * (len(lag) - 1) + 0.5)] * 1e6 if lag else 0))


def run(pattern, fn, args, workers):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # Start the worker processes before the clock starts.
        list(pool.map(echo, [b""] * workers))
        t0 = time.monotonic()
        if pattern == "gather":
            res = asyncio.run(run_gather(pool, fn, args))
        else:
            res = asyncio.run(run_queue(pool, fn, args, workers))
        return res, time.monotonic() - t0


def main():
    a = sys.argv[1:]
    if a[0] == "w1":
        n = int(a[2])
        workers = int(a[3]) if len(a) > 3 else 2
        args = [(payload(i),) for i in range(n)]
        res, t = run(a[1], echo, args, workers)
        failed = sum(1 for x, y in zip(sorted(res), sorted(p for (p,) in args)) if x != y)
        print("jobs=%d seconds=%.3f jobs_per_s=%.0f failed=%d" % (n, t, n / t, failed))
    elif a[0] == "w2":
        iters, k, workers = int(a[2]), int(a[3]), int(a[4])
        res, t = run(a[1], spin, [(iters, j + 1) for j in range(k)], workers)
        print("jobs=%d seconds=%.4f" % (k, t))
    elif a[0] == "lat":
        rate, seconds, warmup = float(a[1]), float(a[2]), float(a[3])
        workers = int(a[4]) if len(a) > 4 else 2
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(echo, [b""] * workers))
            lat, achieved = asyncio.run(run_lat(pool, rate, seconds, warmup))
        print_latency(rate, achieved, lat, int(rate * seconds) - len(lat[0]))
    elif a[0] == "cal":
        ms = float(a[1])
        probe = 200000
        best = min(_time(spin, probe) for _ in range(5))
        print(int(probe * ms / 1e3 / best))
    elif a[0] == "serial":
        iters, k = int(a[1]), int(a[2])
        t0 = time.monotonic()
        for j in range(k):
            spin(iters, j + 1)
        print("jobs=%d seconds=%.4f" % (k, time.monotonic() - t0))


def _time(fn, n):
    t = time.monotonic()
    fn(n, 3)
    return time.monotonic() - t


if __name__ == "__main__":
    main()
