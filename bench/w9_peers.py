#!/usr/bin/python3
"""bench/w9_peers.py: W9's peers on the same kind of Redis (bench/w9_redis.sh):
Celery with its Redis broker and RQ, 64-byte echo jobs, 2 worker processes.

    w9_peers.py celery|rq PORT N

Like W9, the jobs are queued first (not timed), then the workers start, and the time
is from their start until every job has run: each job INCRs a counter in Redis, which
is polled every 20 ms. Prints "system=... jobs=N jobs_per_s=R".

Celery: `celery worker --pool prefork -c 2`, acks_late (an entry is acked once its
task ran, as jobpoold acks), prefetch multiplier 64 (as W9's 64-job batches), results
ignored. RQ: two `rq worker --worker-class rq.SimpleWorker` (no fork per job; the
default Worker forks a work horse per job and is slower still).
"""
import os
import subprocess
import sys
import tempfile
import time

import redis

TASKS = '''
import redis
from celery import Celery
app = Celery("w9", broker="redis://127.0.0.1:%(port)d/1")
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 64
app.conf.task_ignore_result = True
r = redis.Redis(port=%(port)d, db=2)
@app.task
def echo(p):
    r.incr("w9:done")
    return p

def rq_echo(p):
    r.incr("w9:done")
    return p
'''


def wait_done(r, n):
    while int(r.get("w9:done") or 0) < n:
        time.sleep(0.02)


def main():
    system, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    d = tempfile.mkdtemp(prefix="w9peer.")
    with open(os.path.join(d, "w9tasks.py"), "w") as f:
        f.write(TASKS % {"port": port})
    sys.path.insert(0, d)
    import w9tasks  # noqa: E402
    r = redis.Redis(port=port, db=2)
    r.flushdb()
    redis.Redis(port=port, db=1).flushdb()
    payload = "x" * 64
    env = dict(os.environ, PYTHONPATH=d)
    if system == "celery":
        for _ in range(n):
            w9tasks.echo.delay(payload)
        t0 = time.time()
        procs = [subprocess.Popen(
            ["/usr/bin/python3", "-m", "celery", "-A", "w9tasks", "worker",
             "--pool", "prefork", "-c", "2", "--loglevel", "warning",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    else:
        from rq import Queue
        q = Queue("w9", connection=redis.Redis(port=port, db=1))
        for _ in range(n):
            q.enqueue(w9tasks.rq_echo, payload)
        t0 = time.time()
        procs = [subprocess.Popen(
            ["/usr/bin/python3", "-m", "rq.cli", "worker", "--burst",
             "--worker-class", "rq.SimpleWorker", "--url",
             "redis://127.0.0.1:%d/1" % port, "w9"],
            cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(2)]
    wait_done(r, n)
    t1 = time.time()
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    print("system=%s jobs=%d jobs_per_s=%.0f" % (system, n, n / (t1 - t0)))


if __name__ == "__main__":
    main()
