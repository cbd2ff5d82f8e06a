"""test_client.py: the Python client (bindings/python/jobpool) against the real
jobpoold that tests/it_python.sh starts ($JOBPOOL_SOCKET), with its queues:

    default  echo, 2 workers
    sleep    sleep (payload: milliseconds; stops when cancelled), 2 workers, retries 0
    fail     exec:/bin/false, 1 worker, retries 1 (backoff 10 ms)
    events_ring = 200000
    max_payload = 65536

Run by it_python.sh with /usr/bin/python3 -m unittest. State that changes (a job's
state, a worker's job) is waited for with a deadline (until()), never read once.
LostConnection runs only when $JP_KILL_PID names the daemon it may kill, Restart only
when $JP_RESTART_FILE names the file that asks it.sh to restart the daemon.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import unittest
from typing import Any, Awaitable, Callable

import jobpool
from jobpool.stats import parse_stats, parse_words

DEADLINE = 30.0


async def until(what: str, check: Callable[[], Awaitable[Any]],
                secs: float = DEADLINE) -> Any:
    """Poll check() every 20 ms until it returns something true; fail after secs."""
    end = time.monotonic() + secs
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not so within {secs} s (last: {got!r})")
        await asyncio.sleep(0.02)


async def running_job(jp: jobpool.Connection, queue: str) -> int:
    """The id of a job a worker of queue runs, once one does."""
    async def check() -> int:
        st = await jp.status()
        return next((w["job"] for w in st["workers"]
                     if w["queue"] == queue and w["state"] == "busy" and w["job"]), 0)
    return int(await until(f"a worker of {queue} runs a job", check))


class Offline(unittest.TestCase):
    """What needs no daemon: parsing, the socket's path, arguments refused early."""

    def test_stats_parse(self) -> None:
        body = (b"daemon jobpoold version=0.1.0 pid=7 uptime=2 connections=1\n"
                b"queue q%20x state=failed workers=2 throughput_1m=0.080 handler=a%25b "
                b"reason=plugin /x.so: init failed: no way\n"
                b"worker q pid=9 state=idle job=0\n"
                b"journal journal.3 state=ok bytes=10 dir=/var/x%20y\n"
                b"future thing a=b\n")
        st = parse_stats(body)
        self.assertEqual(st["daemon"]["connections"], 1)
        q = st["queues"]["q%20x"]
        self.assertEqual(q["throughput_1m"], 0.08)
        self.assertEqual(q["handler"], "a%b")
        self.assertEqual(q["reason"], "plugin /x.so: init failed: no way")
        self.assertEqual(st["workers"], [{"queue": "q", "pid": 9, "state": "idle", "job": 0}])
        self.assertEqual(st["journal"]["dir"], "/var/x y")
        self.assertEqual(st["other"], [("future", "thing", {"a": "b"})])
        self.assertEqual(parse_words("id=3 state=running prio=-2"),
                         {"id": 3, "state": "running", "prio": -2})

    def test_default_socket(self) -> None:
        saved = dict(os.environ)
        try:
            os.environ["JOBPOOL_SOCKET"] = "/x/y.sock"
            self.assertEqual(jobpool.default_socket(), "/x/y.sock")
            del os.environ["JOBPOOL_SOCKET"]
            os.environ["XDG_RUNTIME_DIR"] = "/run/user/5"
            want = ("/run/jobpool/jobpool.sock" if os.geteuid() == 0
                    else "/run/user/5/jobpool/jobpool.sock")
            self.assertEqual(jobpool.default_socket(), want)
            del os.environ["XDG_RUNTIME_DIR"]
            want = ("/run/jobpool/jobpool.sock" if os.geteuid() == 0
                    else f"/tmp/jobpool-{os.getuid()}/jobpool.sock")
            self.assertEqual(jobpool.default_socket(), want)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def test_options(self) -> None:
        self.assertEqual(jobpool.submit_options(timeout=1.5, delay=0.0001, priority=-3,
                                                nonblock=True),
                         b" timeout=1500 delay=1 prio=-3 nonblock")
        self.assertEqual(jobpool.submit_options(key="example.org", priority=1),
                         b" key=example.org prio=1")
        for bad in ("", "a b", "k" * 256, "é"):
            with self.assertRaisesRegex(ValueError, "bad key"):
                jobpool.submit_options(key=bad)
        with self.assertRaises(ValueError):
            jobpool.submit_options(timeout=-1)
        self.assertEqual(jobpool.submit_options(idem="order-42:a/b+c=~_."),
                         b" idem=order-42:a/b+c=~_.")
        for bad in ("", "a b", "x" * 65, "café", "a%b"):
            with self.assertRaisesRegex(ValueError, "idem"):
                jobpool.submit_options(idem=bad)

    def test_parse_event(self) -> None:
        ev = jobpool.parse_event(
            b"EVENT seq=17 time=1733480000.123456 type=job.failed queue=default job=42 "
            b"attempt=1 pid=4123 ms=12 future=x%20y error=exit status 3 a=b 100%25", 9)
        self.assertEqual(ev, jobpool.Event(
            type="job.failed", epoch=9, seq=17, time=1733480000.123456,
            queue="default", job=42, attempt=1, pid=4123, ms=12,
            error="exit status 3 a=b 100%", extra={"future": "x y"}))
        gap = jobpool.parse_event("EVENT type=gap reason=overrun first=5 last=9", 3)
        self.assertEqual((gap.is_gap, gap.reason, gap.first, gap.last, gap.seq),
                         (True, "overrun", 5, 9, None))
        gap = jobpool.parse_event("type=gap reason=restart epoch=77 first=6", 3)
        self.assertEqual((gap.reason, gap.old_epoch, gap.first, gap.epoch),
                         ("restart", 77, 6, 3))
        ev = jobpool.parse_event("EVENT seq=2 time=1.000001 type=worker.exited "
                                 "queue=q pid=5 signal=9 reason=killed %E2%9C%93", 3)
        self.assertEqual((ev.signal, ev.exit, ev.reason), (9, None, "killed \u2713"))
        ev = jobpool.parse_event("EVENT seq=3 time=1.5 type=job.dead queue=q job=1 "
                                 "attempt=2 error_lost=1", 3)
        self.assertTrue(ev.error_lost)
        self.assertIsNone(ev.error)
        ev = jobpool.parse_event("EVENT seq=4 time=1.5 type=job.queued queue=q job=7 "
                                 "attempt=0 idem=order-7:a/b", 3)
        self.assertEqual((ev.idem, ev.idem_lost, ev.extra), ("order-7:a/b", False, {}))
        ev = jobpool.parse_event("EVENT seq=5 time=1.5 type=job.queued queue=q job=8 "
                                 "attempt=0 idem_lost=1", 3)
        self.assertEqual((ev.idem, ev.idem_lost), (None, True))
        with self.assertRaisesRegex(ValueError, "bad seq"):
            jobpool.parse_event("EVENT seq=x type=a", 1)
        with self.assertRaisesRegex(ValueError, "without a type"):
            jobpool.parse_event("EVENT seq=1", 1)

    def test_events_arguments(self) -> None:
        # Refused before connecting (there is no daemon at this path).
        for kw in ({"since": -1}, {"since": "later"}, {"since": True},
                   {"since": "now", "epoch": 3}, {"queue": "a b"},
                   {"type": "x" * 64}, {"type": "a b"}):
            with self.assertRaises(ValueError, msg=repr(kw)):
                jobpool.events(path="/nonexistent/s", **kw)  # type: ignore[arg-type]

        async def go() -> None:
            with self.assertRaisesRegex(jobpool.ConnectFailed, "/nonexistent/s"):
                async for _ in jobpool.events(path="/nonexistent/s"):
                    pass
        asyncio.run(go())

    def test_connect_failed(self) -> None:
        async def go() -> None:
            async with jobpool.connect("/nonexistent/jobpool.sock"):
                pass
        with self.assertRaisesRegex(jobpool.ConnectFailed, "/nonexistent/jobpool.sock"):
            asyncio.run(go())


class WithConnection(unittest.IsolatedAsyncioTestCase):
    """A connection to the daemon per test, self.jp."""

    async def asyncSetUp(self) -> None:
        self.jp = await jobpool.connect()

    async def asyncTearDown(self) -> None:
        await self.jp.close()


class Daemon(WithConnection):
    """Against the daemon: one connection per test, and a second where it helps."""

    async def test_submit_result(self) -> None:
        self.assertEqual(await self.jp.submit("default", b"hello\0\r\n\xff"),
                         b"hello\0\r\n\xff")
        self.assertEqual(await self.jp.submit("default", "ünïcode"), "ünïcode".encode())
        self.assertEqual(await self.jp.submit("default", b""), b"")
        self.assertEqual(await self.jp.submit("default", b"x", timeout=5, priority=3,
                                              delay=0.05), b"x")

    async def test_nowait_wait_status(self) -> None:
        job = await self.jp.submit_nowait("default", b"later")
        self.assertIsInstance(job, int)
        self.assertEqual(await self.jp.wait(job), b"later")
        # Once finished, a WAIT gets the result again, on this or another connection.
        async with jobpool.connect() as other:
            self.assertEqual(await other.wait(job), b"later")
        st = await self.jp.job_status(job)
        self.assertEqual((st["id"], st["queue"], st["state"]), (job, "default", "done"))
        stats = await self.jp.status()
        self.assertGreaterEqual(stats["queues"]["default"]["done"], 1)
        self.assertGreaterEqual(stats["daemon"]["connections"], 1)
        self.assertEqual({w["queue"] for w in stats["workers"]},
                         {"default", "sleep", "fail"})

    async def test_idem_resend(self) -> None:
        # A resend with the token gets the first job: its id, and its result, from
        # this connection or another (after a lost connection, say), never a second job.
        token = f"py-{os.getpid()}-{time.monotonic_ns()}"
        first = await self.jp.submit_nowait("default", b"first", idem=token, delay=0.3)
        self.assertEqual(await self.jp.submit_nowait("default", b"2nd", idem=token),
                         first)
        async with jobpool.connect() as other:
            got = await asyncio.gather(other.submit("default", b"3rd", idem=token),
                                       self.jp.submit("default", b"4th", idem=token))
            self.assertEqual(got, [b"first", b"first"])
            self.assertEqual(await other.submit_nowait("default", b"5th", idem=token),
                             first)
        st = await self.jp.job_status(first)
        self.assertEqual(st["state"], "done")
        # Another token, or none, is another job.
        self.assertNotEqual(await self.jp.submit_nowait("default", b"x",
                                                        idem=token + "b"), first)
        self.assertNotEqual(await self.jp.submit_nowait("default", b"x"), first)

    async def test_job_failed(self) -> None:
        with self.assertRaises(jobpool.JobFailed) as cm:
            await self.jp.submit("sleep", b"not a number")
        e = cm.exception
        self.assertIsInstance(e, jobpool.JobDead)
        self.assertEqual(e.status, "failed")
        self.assertIn("sleep: the payload must be milliseconds", e.text)
        st = await self.jp.job_status(e.job_id)
        self.assertEqual(st["state"], "dead")

    async def test_job_timeout(self) -> None:
        with self.assertRaises(jobpool.JobTimeout) as cm:
            await self.jp.submit("sleep", b"10000", timeout=0.2)
        self.assertIsInstance(cm.exception, jobpool.JobDead)
        self.assertEqual(cm.exception.status, "timeout")
        self.assertIn("200 ms", cm.exception.text)

    async def test_job_cancelled_by_another(self) -> None:
        # A delayed job, waited for here and cancelled from another connection.
        job = await self.jp.submit_nowait("default", b"x", delay=60)
        waiter = asyncio.create_task(self.jp.wait(job))
        async with jobpool.connect() as other:
            self.assertEqual(await other.cancel(job), "cancelled")
            with self.assertRaises(jobpool.ProtocolError) as cm:
                await other.cancel(job)
            self.assertEqual(cm.exception.code, "state")
        with self.assertRaises(jobpool.JobCancelled) as jc:
            await waiter
        self.assertEqual(jc.exception.job_id, job)
        # And a running job submitted with submit(): the RESULT says it was stopped.
        task = asyncio.create_task(self.jp.submit("sleep", b"60000"))
        job = await running_job(self.jp, "sleep")
        async with jobpool.connect() as other:
            self.assertEqual(await other.cancel(job), "cancelling")
        with self.assertRaises(jobpool.JobCancelled) as jc:
            await task
        self.assertEqual(jc.exception.job_id, job)
        self.assertIn("cancelled while running", jc.exception.text)

    async def test_protocol_errors(self) -> None:
        with self.assertRaises(jobpool.ProtocolError) as cm:
            await self.jp.submit("nosuchqueue", b"x")
        self.assertEqual(cm.exception.code, "noqueue")
        self.assertIn("nosuchqueue", cm.exception.message)
        with self.assertRaises(jobpool.ProtocolError) as cm:
            await self.jp.submit("default", b"x" * 70000)
        self.assertEqual(cm.exception.code, "toolarge")
        with self.assertRaises(jobpool.ProtocolError) as cm:
            await self.jp.submit("default", b"x", priority=99)
        self.assertEqual(cm.exception.code, "proto")
        self.assertIn("prio=99", cm.exception.message)
        with self.assertRaises(jobpool.ProtocolError) as cm:
            await self.jp.wait(999999999)
        self.assertEqual(cm.exception.code, "notfound")
        # A name that would break the framing is refused before anything is sent.
        with self.assertRaises(ValueError):
            await self.jp.submit("dé faut", b"x")
        with self.assertRaises(ValueError):
            await self.jp.submit("default", b"x", idem="not one word")
        # A job with a key (the daemon takes key=; a bad one never leaves the client).
        jid = await self.jp.submit_nowait("default", b"keyed", key="host.example")
        self.assertEqual(await self.jp.wait(jid), b"keyed")
        # The connection carries on after all of them.
        self.assertEqual(await self.jp.submit("default", b"still"), b"still")

    async def test_map_ordered_window(self) -> None:
        for window in (1, 3, 64):
            pulled = 0
            got: list[bytes] = []

            def items() -> Any:
                nonlocal pulled
                for i in range(300):
                    pulled += 1
                    yield str(i)

            async for r in self.jp.map("default", items(), window=window):
                # At most `window` jobs are out when a result comes back.
                self.assertLessEqual(pulled - len(got), window)
                got.append(r)  # type: ignore[arg-type]
            self.assertEqual(got, [str(i).encode() for i in range(300)])

    async def test_map_unordered_async_source(self) -> None:
        pulled = 0

        async def items() -> Any:
            nonlocal pulled
            for i in range(500):
                pulled += 1
                yield b"%d" % i

        got: list[bytes] = []
        async for r in self.jp.map("default", items(), ordered=False, window=5):
            self.assertLessEqual(pulled - len(got), 5)
            got.append(r)  # type: ignore[arg-type]
        self.assertEqual(sorted(got, key=int), [b"%d" % i for i in range(500)])

    async def test_map_errors(self) -> None:
        out = [r async for r in self.jp.map("sleep", ["1", "bad", "2"],
                                            return_exceptions=True)]
        self.assertEqual(out[0], b"1")
        self.assertIsInstance(out[1], jobpool.JobFailed)
        self.assertEqual(out[2], b"2")
        with self.assertRaises(jobpool.JobFailed):
            async for r in self.jp.map("sleep", ["1", "bad", "2"]):
                pass

    async def test_map_leaving_cancels(self) -> None:
        # Leaving the loop early cancels what is in flight: a running job stops.
        for ordered in (True, False):
            agen = self.jp.map("sleep", ["0", "60000", "60000"], window=3,
                               ordered=ordered)
            self.assertEqual(await agen.__anext__(), b"0")
            job = await running_job(self.jp, "sleep")
            await agen.aclose()

            async def cancelled() -> bool:
                return bool((await self.jp.job_status(job))["state"] == "cancelled")
            await until(f"job {job} cancelled (ordered={ordered})", cancelled)

            async def idle() -> bool:
                q = (await self.jp.status())["queues"]["sleep"]
                return bool(q["running"] == 0 and q["depth"] == 0)
            await until("queue sleep idle again", idle)

    async def test_many_concurrent_submits(self) -> None:
        # 10,000 tasks on one connection, all outstanding at once.
        n = 10000
        results = await asyncio.gather(*(self.jp.submit("default", b"job %d" % i)
                                         for i in range(n)))
        self.assertEqual(results, [b"job %d" % i for i in range(n)])

    async def test_cancel_task_cancels_running_job(self) -> None:
        task = asyncio.create_task(self.jp.submit("sleep", b"60000"))
        job = await running_job(self.jp, "sleep")
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task

        async def state() -> bool:
            return bool((await self.jp.job_status(job))["state"] == "cancelled")
        await until(f"job {job} cancelled", state)
        # Its result says it was stopped while running, with its cleanup.
        with self.assertRaises(jobpool.JobCancelled) as cm:
            await self.jp.wait(job)
        self.assertIn("cancelled while running", cm.exception.text)
        # Cancelled before its OK came (same pass of the loop): stopped too.
        task = asyncio.create_task(self.jp.submit("sleep", b"60000"))
        await asyncio.sleep(0)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task

        async def idle() -> bool:
            st = await self.jp.status()
            q = st["queues"]["sleep"]
            return bool(q["running"] == 0 and q["depth"] == 0)
        await until("queue sleep idle again", idle)

    async def test_after_close(self) -> None:
        jp = await jobpool.connect()
        pending = asyncio.create_task(jp.submit("default", b"x", delay=60))
        await asyncio.sleep(0)
        await jp.close()
        for call in (pending, jp.submit("default", b"x"), jp.status()):
            with self.assertRaisesRegex(jobpool.ConnectionLost, "closed by the client"):
                await call

    async def test_submit_future(self) -> None:
        futs = [self.jp.submit_future("default", b"f%d" % i) for i in range(1000)]
        self.assertEqual(await asyncio.gather(*futs), [b"f%d" % i for i in range(1000)])
        with self.assertRaises(jobpool.JobFailed):
            await self.jp.submit_future("sleep", b"nope")
        # Cancelling the future cancels the running job.
        fut = self.jp.submit_future("sleep", b"60000")
        job = await running_job(self.jp, "sleep")
        fut.cancel()

        async def cancelled() -> bool:
            return bool((await self.jp.job_status(job))["state"] == "cancelled")
        await until(f"job {job} cancelled", cancelled)

    async def test_wait_for_timeout_cancels_job(self) -> None:
        async def cancelled() -> int:
            return int((await self.jp.status())["queues"]["sleep"]["cancelled"])
        before = await cancelled()
        with self.assertRaises(TimeoutError):
            await asyncio.wait_for(self.jp.submit("sleep", b"60000"), 0.3)

        async def one_more() -> bool:
            return await cancelled() > before
        await until("the timed-out submit's job cancelled", one_more)

    async def test_wait_cancel_does_not_cancel_job(self) -> None:
        job = await self.jp.submit_nowait("default", b"w", delay=0.5)
        t = asyncio.create_task(self.jp.wait(job))
        await asyncio.sleep(0.05)
        t.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await t
        self.assertEqual(await self.jp.wait(job), b"w")


async def mark(jp: jobpool.Connection) -> tuple[int, int]:
    """The daemon's epoch and its last event's seq (STATS): a stream since then."""
    d = (await jp.status())["daemon"]
    return int(d["events_epoch"]), int(d["events_seq"])


async def job_events(stream: jobpool.EventStream, jobs: set[int],
                     ends: int) -> dict[int, list[jobpool.Event]]:
    """The events of jobs read from stream, by job, until ends of them have ended
    (job.succeeded or job.dead), within the deadline."""
    got: dict[int, list[jobpool.Event]] = {j: [] for j in jobs}
    done = 0
    async with asyncio.timeout(DEADLINE):
        async for ev in stream:
            if ev.job in jobs:
                got[ev.job].append(ev)
                done += ev.type in ("job.succeeded", "job.dead")
                if done == ends:
                    break
    return got


class Events(WithConnection):
    """jp.events(): the daemon's EVENTS as Event objects."""

    async def test_jobs_in_order(self) -> None:
        epoch, seq = await mark(self.jp)
        async with self.jp.events(since=seq, epoch=epoch) as stream:
            ok = await self.jp.submit_nowait("default", b"fine")
            bad = await self.jp.submit_nowait("fail", b"")
            got = await job_events(stream, {ok, bad}, 2)
        self.assertEqual([e.type for e in got[ok]],
                         ["job.queued", "job.started", "job.succeeded"])
        self.assertEqual([e.type for e in got[bad]],
                         ["job.queued", "job.started", "job.failed", "job.retrying",
                          "job.started", "job.failed", "job.dead"])
        self.assertEqual([e.attempt for e in got[bad]], [0, 1, 1, 1, 2, 2, 2])
        for e in got[ok] + got[bad]:
            self.assertEqual(e.epoch, epoch)
            self.assertGreater(e.seq or 0, seq)
            self.assertIsInstance(e.time, float)
        self.assertEqual(got[ok][0].queue, "default")
        self.assertEqual(got[bad][0].queue, "fail")
        done = got[ok][2]
        self.assertIsInstance(done.ms, int)
        self.assertEqual(done.pid, got[ok][1].pid)
        self.assertGreater(done.pid or 0, 0)
        failed = got[bad][2]
        self.assertIn("exit status 1", failed.error or "")
        self.assertIsInstance(got[bad][3].delay_ms, int)
        self.assertIn("exit status 1", got[bad][6].error or "")
        # Sequence numbers grow along the stream.
        seqs = [e.seq or 0 for e in got[ok] + got[bad]]
        self.assertEqual(len(set(seqs)), len(seqs))
        self.assertEqual(sorted(seqs[:3]), seqs[:3])
        self.assertEqual(sorted(seqs[3:]), seqs[3:])

    async def test_filters(self) -> None:
        epoch, seq = await mark(self.jp)
        ok = await self.jp.submit_nowait("default", b"x")
        bad = await self.jp.submit_nowait("fail", b"")
        self.assertEqual(await self.jp.wait(ok), b"x")
        with self.assertRaises(jobpool.JobFailed):
            await self.jp.wait(bad)
        evs = [e async for e in self.jp.events(since=seq, epoch=epoch, queue="fail",
                                                   follow=False)]
        self.assertEqual({e.queue for e in evs}, {"fail"})
        self.assertIn(bad, {e.job for e in evs})
        evs = [e async for e in self.jp.events(since=seq, epoch=epoch,
                                                   type="job.s*", follow=False)]
        mine = [e.type for e in evs if e.job == ok]
        self.assertEqual(mine, ["job.started", "job.succeeded"])
        self.assertEqual({e.type for e in evs} - {"job.started", "job.succeeded"}, set())
        evs = [e async for e in self.jp.events(since=seq, epoch=epoch, queue="default",
                                                   type="*.queued", follow=False)]
        self.assertEqual([(e.job, e.type) for e in evs if e.job in (ok, bad)],
                         [(ok, "job.queued")])
        with self.assertRaises(jobpool.ProtocolError) as cm:
            async for _ in self.jp.events(queue="nosuchqueue"):
                pass
        self.assertEqual(cm.exception.code, "noqueue")

    async def test_since_resumes_exactly(self) -> None:
        epoch, seq = await mark(self.jp)
        await self.jp.submit("default", b"1")
        await self.jp.submit("default", b"2")
        with self.assertRaises(jobpool.JobFailed):
            await self.jp.submit("fail", b"")
        stream = self.jp.events(since=seq, epoch=epoch, follow=False)
        evs = [e async for e in stream]
        # Every event after seq, none left out, none twice (the ring holds them all).
        self.assertGreaterEqual(len(evs), 13)
        self.assertEqual([e.seq for e in evs], list(range(seq + 1, seq + 1 + len(evs))))
        self.assertEqual((stream.epoch, stream.seq), (epoch, evs[-1].seq))
        # From the middle: exactly what followed.
        k = evs[4].seq
        assert k is not None
        again = [e async for e in self.jp.events(since=k, epoch=epoch, follow=False)]
        self.assertEqual(again[:len(evs) - 5], evs[5:])
        # A follower read partly, closed, and resumed where it stopped.
        f = self.jp.events(since=seq, epoch=epoch)
        first = [await f.__anext__() for _ in range(3)]
        await f.aclose()
        with self.assertRaises(StopAsyncIteration):
            await f.__anext__()
        self.assertEqual(first, evs[:3])
        async with self.jp.events(since=f.seq, epoch=f.epoch) as g:
            self.assertEqual(await g.__anext__(), evs[3])
        # since=all starts at the oldest the ring holds: these are among them.
        alls = [e async for e in self.jp.events(since="all", follow=False)]
        self.assertLessEqual({e.seq for e in evs}, {e.seq for e in alls})
        self.assertEqual(alls[0].seq, 1)	# the ring is large enough for the whole run
        # Another epoch: the daemon says what was lost to its restart, a gap.
        stale = [e async for e in self.jp.events(since=k, epoch=epoch - 1,
                                                     follow=False)]
        self.assertEqual((stale[0].type, stale[0].reason, stale[0].old_epoch,
                          stale[0].first), ("gap", "restart", epoch - 1, k + 1))
        self.assertEqual(stale[1].seq, 1)

    async def test_follow_now(self) -> None:
        # since="now" (the default): the events from the request on, as they happen.
        stream = self.jp.events(type="job.succeeded")
        reader = asyncio.create_task(stream.__anext__())
        had = int((await self.jp.status())["daemon"]["subscribers"])

        async def subscribed() -> bool:
            return int((await self.jp.status())["daemon"]["subscribers"]) > had
        await until("the stream is subscribed", subscribed)
        job = await self.jp.submit_nowait("default", b"now")
        async with asyncio.timeout(DEADLINE):
            ev = await reader
            while ev.job != job:
                ev = await stream.__anext__()
        self.assertEqual((ev.type, ev.queue), ("job.succeeded", "default"))
        await stream.aclose()


class Sync(unittest.TestCase):
    """jobpool.Client and python3 -m jobpool."""

    def test_client(self) -> None:
        with jobpool.Client() as jp:
            self.assertEqual(jp.submit("default", b"sync"), b"sync")
            job = jp.submit_nowait("default", "later")
            self.assertEqual(jp.wait(job), b"later")
            self.assertEqual(list(jp.map("default", ["a", "b", "c"], window=2)),
                             [b"a", b"b", b"c"])
            self.assertIn("default", jp.status()["queues"])
            with self.assertRaises(jobpool.JobFailed):
                jp.submit("sleep", "nope")

    def test_client_events(self) -> None:
        with jobpool.Client() as jp:
            d = jp.status()["daemon"]
            epoch, seq = int(d["events_epoch"]), int(d["events_seq"])
            job = jp.submit_nowait("default", "sync events")
            self.assertEqual(jp.wait(job), b"sync events")
            evs = [e for e in jp.events(since=seq, epoch=epoch, follow=False)
                   if e.job == job]
            self.assertEqual([e.type for e in evs],
                             ["job.queued", "job.started", "job.succeeded"])
            # Following: leaving the loop closes the stream; the client goes on.
            gen = jp.events(since=seq, epoch=epoch)
            self.assertEqual(next(gen).seq, seq + 1)
            gen.close()
            self.assertEqual(jp.submit("default", "after"), b"after")

    def test_ctrl_c_cancels_job(self) -> None:
        # A script's submit() interrupted by SIGINT cancels its job in the daemon.
        script = ("import jobpool\n"
                  "with jobpool.Client() as jp:\n"
                  "    jp.submit('sleep', '60000')\n")
        proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
        try:
            with jobpool.Client() as jp:
                end = time.monotonic() + DEADLINE
                job = 0
                while not job and time.monotonic() < end:
                    job = next((w["job"] for w in jp.status()["workers"]
                                if w["queue"] == "sleep" and w["state"] == "busy"), 0)
                    time.sleep(0.02)
                self.assertTrue(job, "the script's job never ran")
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=DEADLINE)
                self.assertIn(b"KeyboardInterrupt", err)
                state = ""
                while state != "cancelled" and time.monotonic() < end:
                    state = str(jp.job_status(job)["state"])
                    time.sleep(0.02)
                self.assertEqual(state, "cancelled")
        finally:
            proc.kill()
            proc.wait()

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "jobpool", *args],
                              capture_output=True, timeout=60)

    def test_cli(self) -> None:
        r = self.run_cli("submit", "default", "hi there", "-w")
        self.assertEqual((r.returncode, r.stdout), (0, b"hi there"), r.stderr)
        r = self.run_cli("submit", "default", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        job = int(r.stdout)
        r = self.run_cli("wait", str(job))
        self.assertEqual((r.returncode, r.stdout), (0, b"x"))
        r = self.run_cli("submit", "sleep", "bad", "-w")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"failed: sleep: the payload must be milliseconds", r.stderr)
        r = self.run_cli("submit", "nosuch", "x")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"noqueue", r.stderr)
        r = self.run_cli("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sleep", json.loads(r.stdout)["queues"])
        r = self.run_cli("-s", "/nonexistent/s", "status")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"cannot connect to /nonexistent/s", r.stderr)


@unittest.skipUnless(os.environ.get("JP_KILL_PID"), "needs $JP_KILL_PID (it_python.sh)")
class LostConnection(unittest.IsolatedAsyncioTestCase):
    """The daemon dies (SIGKILL): every waiter on the connection raises."""

    async def test_every_waiter_raises(self) -> None:
        jp = await jobpool.connect()
        tasks = [asyncio.create_task(jp.submit("sleep", b"60000")) for _ in range(20)]
        job = await jp.submit_nowait("default", b"x", delay=60)
        tasks.append(asyncio.create_task(jp.wait(job)))
        await running_job(jp, "sleep")
        os.kill(int(os.environ["JP_KILL_PID"]), signal.SIGKILL)
        results = await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), DEADLINE)
        self.assertEqual([type(r) for r in results], [jobpool.ConnectionLost] * 21)
        self.assertIn("lost", str(results[0]))
        with self.assertRaises(jobpool.ConnectionLost):
            await jp.submit("default", b"after")
        await jp.close()


@unittest.skipUnless(os.environ.get("JP_RESTART_FILE"), "needs $JP_RESTART_FILE "
                     "(it_python.sh)")
class Restart(unittest.IsolatedAsyncioTestCase):
    """A follower across a restart of the daemon: it_python.sh restarts it once this
    test has written $JP_RESTART_FILE; the stream goes on with a gap of reason restart."""

    async def test_gap_on_restart(self) -> None:
        async with jobpool.connect() as jp:
            epoch, seq = await mark(jp)
            stream = jp.events(since=seq, epoch=epoch)
            job = await jp.submit_nowait("default", b"before")
            got = await job_events(stream, {job}, 1)
        self.assertEqual(got[job][-1].type, "job.succeeded")
        with open(os.environ["JP_RESTART_FILE"], "w") as f:
            f.write("restart\n")
        before: list[jobpool.Event] = []
        async with asyncio.timeout(90):
            async for ev in stream:
                if ev.is_gap:
                    gap = ev
                    break
                before.append(ev)
            after = await stream.__anext__()
        last = before[-1].seq if before else got[job][-1].seq
        assert last is not None
        self.assertEqual((gap.reason, gap.old_epoch, gap.first),
                         ("restart", epoch, last + 1))
        self.assertNotEqual(gap.epoch, epoch)
        self.assertEqual((after.epoch, after.seq), (gap.epoch, 1))
        # The new daemon's events keep coming on the same stream.
        async with jobpool.connect() as jp:
            job = await jp.submit_nowait("default", b"after")
            got = await job_events(stream, {job}, 1)
        self.assertEqual([e.type for e in got[job]],
                         ["job.queued", "job.started", "job.succeeded"])
        self.assertEqual({e.epoch for e in got[job]}, {gap.epoch})
        await stream.aclose()


if __name__ == "__main__":
    unittest.main()
