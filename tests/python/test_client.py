"""test_client.py: the Python client (bindings/python/jobpool) against the real
jobpoold that tests/it_python.sh starts ($JOBPOOL_SOCKET), with its queues:

    default  echo, 2 workers
    sleep    sleep (payload: milliseconds; stops when cancelled), 2 workers, retries 0
    max_payload = 65536

Run by it_python.sh with /usr/bin/python3 -m unittest. State that changes (a job's
state, a worker's job) is waited for with a deadline (until()), never read once.
LostConnection runs only when $JP_KILL_PID names the daemon it may kill.
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
        kws: list[dict[str, Any]] = [{"key": "k"}, {"idem": "t"}, {"attempts": 3}]
        for kw in kws:
            with self.assertRaisesRegex(jobpool.NotSupported, "not supported"):
                jobpool.submit_options(**kw)
        with self.assertRaises(ValueError):
            jobpool.submit_options(timeout=-1)

    def test_connect_failed(self) -> None:
        async def go() -> None:
            async with jobpool.connect("/nonexistent/jobpool.sock"):
                pass
        with self.assertRaisesRegex(jobpool.ConnectFailed, "/nonexistent/jobpool.sock"):
            asyncio.run(go())


class Daemon(unittest.IsolatedAsyncioTestCase):
    """Against the daemon: one connection per test, and a second where it helps."""

    async def asyncSetUp(self) -> None:
        self.jp = await jobpool.connect()

    async def asyncTearDown(self) -> None:
        await self.jp.close()

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
        self.assertEqual({w["queue"] for w in stats["workers"]}, {"default", "sleep"})

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
        with self.assertRaises(jobpool.NotSupported):
            await self.jp.submit("default", b"x", idem="t1")
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


if __name__ == "__main__":
    unittest.main()
