#!/usr/bin/python3
"""bench/w7_aiohttp.py: W7's peer (bench/w7_fetch.sh): the pattern jobpool's http queue
replaces, N GETs of URL with asyncio, aiohttp (one ClientSession, kept-alive
connections) and a Semaphore(C). Prints "jobs_per_s=R cpu_s=S per_req_us=U".

    /usr/bin/python3 w7_aiohttp.py URL N C      (Debian's python3-aiohttp)
"""

import asyncio
import resource
import sys
import time

import aiohttp


async def main(url, n, c):
    sem = asyncio.Semaphore(c)
    failed = 0
    conn = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def get():
            nonlocal failed
            async with sem:
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        failed += 1

        t0 = time.monotonic()
        await asyncio.gather(*(get() for _ in range(n)))
        return time.monotonic() - t0, failed


url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
secs, failed = asyncio.run(main(url, n, c))
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime
print("jobs_per_s=%.0f cpu_s=%.3f per_req_us=%.1f failed=%d" % (n / secs, cpu, cpu * 1e6 / n, failed))
sys.exit(1 if failed else 0)
