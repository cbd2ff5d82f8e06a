#!/usr/bin/python3
"""w10_python.py: W10, tiny jobs from one asyncio process, through the jobpool client
(bindings/python) and through loop.run_in_executor with a ProcessPoolExecutor.

  w10_python.py jobpool SOCK N gather|futures|map [WINDOW]
      gather: asyncio.gather(*(jp.submit("default", p) for p in payloads)), a task per
      job on one connection; futures: the same with jp.submit_future(), a future per
      job and no task (run_in_executor's shape); map: async for r in jp.map("default", payloads,
      window=WINDOW) (default 4096), in order.
  w10_python.py executor N WORKERS
      asyncio.gather(*(loop.run_in_executor(pool, echo, p) for p in payloads)) with
      ProcessPoolExecutor(max_workers=WORKERS), the pool started (and warm) before the
      clock starts.

Each prints "jobs=N seconds=S jobs_per_s=R" after checking every result is its payload.
The payloads are W1's: 64 printable bytes, the job's number first. The jobpool
package is found through PYTHONPATH (w10_python.sh sets it to bindings/python).
"""

import asyncio
import sys
import time
from concurrent.futures import ProcessPoolExecutor

FILL = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh"


def payloads(n):
    return [(b"%d " % i + FILL)[:64] for i in range(n)]


def echo(p):
    return p


def report(n, secs):
    print(f"jobs={n} seconds={secs:.3f} jobs_per_s={n / secs:.0f}")


async def via_jobpool(sock, n, pattern, window):
    import jobpool
    ps = payloads(n)
    async with jobpool.connect(sock) as jp:
        await jp.submit("default", b"warm")
        t0 = time.perf_counter()
        if pattern == "gather":
            out = await asyncio.gather(*(jp.submit("default", p) for p in ps))
        elif pattern == "futures":
            out = await asyncio.gather(*(jp.submit_future("default", p) for p in ps))
        else:
            out = [r async for r in jp.map("default", ps, window=window)]
        secs = time.perf_counter() - t0
    if out != ps:
        sys.exit("w10: a result differs from its payload")
    report(n, secs)


async def via_executor(n, workers):
    ps = payloads(n)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, echo, b"warm")
                               for _ in range(workers * 4)))
        t0 = time.perf_counter()
        out = await asyncio.gather(*(loop.run_in_executor(pool, echo, p) for p in ps))
        secs = time.perf_counter() - t0
    if out != ps:
        sys.exit("w10: a result differs from its payload")
    report(n, secs)


def main():
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "jobpool":
        window = int(a[4]) if len(a) > 4 else 4096
        asyncio.run(via_jobpool(a[1], int(a[2]), a[3], window))
    elif len(a) == 3 and a[0] == "executor":
        asyncio.run(via_executor(int(a[1]), int(a[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
