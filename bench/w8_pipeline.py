"""W8, a pipeline: fetch -> compute -> save, end to end (bench/w8_pipeline.sh).

    w8_pipeline.py jobpool SOCK ITEMS WINDOW
        submit ITEMS jobs to the chain's first queue ("fetch") through the Python
        client's map() with WINDOW in flight, and wait for every last-stage result.
    w8_pipeline.py asyncio ITEMS CONCURRENCY WORKERS CPU_MS OUT
        the same three steps the asyncio way: gather of the fetches (under a
        Semaphore(CONCURRENCY)), gather of run_in_executor(ProcessPoolExecutor(WORKERS))
        for the compute, gather of the saves (appends to OUT).

THE FETCH IS A STAND-IN on both sides until the http handler lands: a 5 ms wait per
item (jobpool: the built-in sleep handler, payload "5", one worker per request in
flight; asyncio: asyncio.sleep under the semaphore), whose page is "5" on both sides. Compute is CPU_MS of CPU per item on
the worker's own clock (compute.so's budget; here thread_time), save appends a line.
Prints "items=N secs=S items_per_s=R" (one line).
"""

import asyncio
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def compute(page: bytes, cpu_ms: int) -> str:
    """examples/pipeline/compute.c's work: a summary, and CPU_MS of stirring."""
    h = 14695981039346656037
    for b in page:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    until = time.thread_time() + cpu_ms / 1000.0
    stir = h
    while time.thread_time() < until:
        for _ in range(256):
            stir = ((stir ^ (stir >> 29)) * 0xbf58476d1ce4e5b9) & 0xFFFFFFFFFFFFFFFF
    return "bytes=%d words=%d fnv=%016x" % (len(page), len(page.split()), h)


def warm(_: int) -> int:
    return 0


async def peer(items: int, conc: int, workers: int, cpu_ms: int, out: str) -> None:
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(conc)
    lock = asyncio.Lock()

    async def fetch(i: int) -> bytes:
        async with sem:
            await asyncio.sleep(0.005)		# the stand-in for one GET
            return b"5"

    async def save(line: str) -> None:
        async with lock:
            with open(out, "a") as f:
                f.write(line + "\n")

    with ProcessPoolExecutor(workers) as pool:
        # The pool warm before the clock starts, as jobpool's workers are.
        await asyncio.gather(*(loop.run_in_executor(pool, warm, i) for i in range(workers)))
        t0 = time.monotonic()
        pages = await asyncio.gather(*(fetch(i) for i in range(items)))
        lines = await asyncio.gather(*(loop.run_in_executor(pool, compute, p, cpu_ms)
                                       for p in pages))
        await asyncio.gather(*(save(l) for l in lines))
        secs = time.monotonic() - t0
    print("items=%d secs=%.3f items_per_s=%.1f" % (items, secs, items / secs))


async def jobpool_run(sock: str, items: int, window: int) -> None:
    import jobpool
    async with jobpool.connect(sock) as jp:
        t0 = time.monotonic()
        n = 0
        async for res in jp.map("fetch", (b"5" for _ in range(items)), window=window):
            if not res.startswith(b"saved "):
                raise SystemExit("unexpected result: %r" % res[:80])
            n += 1
        secs = time.monotonic() - t0
    if n != items:
        raise SystemExit("%d results for %d items" % (n, items))
    print("items=%d secs=%.3f items_per_s=%.1f" % (items, secs, items / secs))


def main() -> None:
    if sys.argv[1] == "jobpool":
        asyncio.run(jobpool_run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        asyncio.run(peer(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                         int(sys.argv[5]), sys.argv[6]))


if __name__ == "__main__":
    main()
