"""connection.py: one connection to jobpoold, shared by any number of tasks.

Requests are pipelined: a call writes its request into a buffer that goes out once per
pass of the event loop (thousands of submits in one write), and appends what it
expects to `_replies`, the in-order queue of replies to come (PROTOCOL.md: every
request gets exactly one reply, in order). The protocol object reads as the bytes
arrive, in data_received: a reply completes the head of `_replies`; a RESULT, which
comes in any order, completes the futures waiting for that job id in `_waiters`. A
RESULT whose `OK <id>` has not arrived yet (the daemon may send it first) waits in
`_early` until it does.

A submit's future is the job's: cancelling it (cancelling the task that awaits it, or
closing a map() early) sends CANCEL for the job, at once if its id is known, or as soon
as the `OK <id>` comes. A lost connection fails every future with ConnectionLost.
"""

from __future__ import annotations

import asyncio
import collections
import re
from collections.abc import AsyncIterable
from typing import (TYPE_CHECKING, Any, AsyncGenerator, Generator, Iterable, Optional,
                    Union)

from .errors import (ConnectFailed, ConnectionLost, JobError,
                     ProtocolError, job_error)
from .path import default_socket
from .stats import parse_stats, parse_words

if TYPE_CHECKING:
    from .events import EventStream

Payload = Union[bytes, bytearray, memoryview, str]

LINE_MAX = 1024
_QUEUE_NAME = re.compile(r"[!-~]+\Z")
_KEY = re.compile(r"[!-~]{1,255}\Z")
# An idempotency token, as the daemon takes it (lib/PROTOCOL.md, SUBMIT idem=).
_IDEM = re.compile(r"[A-Za-z0-9._:@/+=~-]{1,64}\Z")

# What a reply completes, an entry of _replies, is one of
#   a _Job          a SUBMIT with `wait`: OK <id> makes its future a waiter for <id>
#   a future        any other request: the OK text (str), the DATA body (bytes), or
#                   the ERR (ProtocolError)
#   (future, id)    a WAIT: its ERR also ends the wait for <id>
#   None            a CANCEL sent for a job nobody waits for any more: ignored
# Neither a tuple around each entry nor a list per waiter: at 100,000 jobs in flight
# every object the garbage collector tracks costs (W10, bench/README.md).


class _Job:
    """A job submitted with `wait`: its future (the result), and its id once known."""

    __slots__ = ("conn", "fut", "id")

    def __init__(self, conn: "Connection", fut: "asyncio.Future[bytes]") -> None:
        self.conn = conn
        self.fut = fut
        self.id: Optional[int] = None

    def done_cb(self, fut: "asyncio.Future[bytes]") -> None:
        # submit_future()'s: whoever cancels the future has no other way to tell us.
        if fut.cancelled() and self.id is not None:
            self.conn._cancel_quietly(self.id)

    def abandon(self) -> None:
        """Nobody waits for the job any more: stop it. Without an id yet, the reply
        that brings it does (Connection._reply_ok sees the cancelled future). Called
        where the wait ends rather than as a done callback: a callback would cost a
        pass of the event loop per job."""
        if not self.fut.cancel():
            if not self.fut.cancelled():
                self.fut.exception()	# it ended: marked retrieved, no warning
        if self.fut.cancelled() and self.id is not None:
            self.conn._cancel_quietly(self.id)


def _ms(what: str, seconds: float) -> int:
    if seconds < 0:
        raise ValueError(f"{what} must be >= 0 seconds, not {seconds!r}")
    ms = int(round(seconds * 1000))
    return 1 if ms == 0 and seconds > 0 else ms


def submit_options(timeout: Optional[float] = None, priority: Optional[int] = None,
                   delay: Optional[float] = None, nonblock: bool = False,
                   key: Optional[str] = None, idem: Optional[str] = None) -> bytes:
    """The option words of a SUBMIT line (timeout and delay in seconds)."""
    words = []
    if key is not None:
        # One word of printable ASCII, 1 to 255 bytes (PROTOCOL.md, key=): anything
        # else is refused here, before it could cost the connection its framing.
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"bad key {key!r}: 1 to 255 bytes of printable ASCII, "
                             f"no space")
        words.append(b" key=" + key.encode("ascii"))
    if idem is not None:
        if not isinstance(idem, str) or not _IDEM.match(idem):
            raise ValueError(f"bad idem token {idem!r}: 1 to 64 of A-Z a-z 0-9 "
                             f"and . _ - : @ / + = ~")
        words.append(b" idem=" + idem.encode("ascii"))
    if timeout is not None:
        words.append(b" timeout=%d" % _ms("timeout", timeout))
    if delay is not None:
        words.append(b" delay=%d" % _ms("delay", delay))
    if priority is not None:
        if not isinstance(priority, int):
            raise TypeError(f"priority must be an int, not {priority!r}")
        words.append(b" prio=%d" % priority)
    if nonblock:
        words.append(b" nonblock")
    return b"".join(words)


def _queue_word(queue: str) -> bytes:
    # A name the daemon cannot read as one ASCII word would cost the connection
    # (framing is lost on a non-ASCII byte), and every other waiter on it.
    if not isinstance(queue, str) or not _QUEUE_NAME.match(queue):
        raise ValueError(f"bad queue name {queue!r}: one word of printable ASCII")
    return queue.encode("ascii")


def _body(data: Payload) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"a job's data is bytes or str, not {type(data).__name__}")


class Connection(asyncio.Protocol):
    """A connection to jobpoold. Make one with ``jobpool.connect()``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._loop = asyncio.get_running_loop()
        self._transport: Optional[asyncio.Transport] = None
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._flush_soon = False
        self._paused = False
        self._drainers: collections.deque[asyncio.Future[None]] = collections.deque()
        self._replies: collections.deque[Any] = collections.deque()
        # A future, or a list of them when more than one waits for the job.
        self._waiters: dict[int, Any] = {}
        self._early: dict[int, tuple[bytes, bytes]] = {}
        self._lost: Optional[str] = None	# why, once the connection is gone
        self._said: Optional[str] = None	# an ERR the daemon sent on its own
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._words: dict[str, bytes] = {}	# queue names checked and encoded

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        while self._drainers:
            fut = self._drainers.popleft()
            if not fut.done():
                fut.set_result(None)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        why = self._said or (f"{exc}" if exc else "the daemon closed the connection")
        self._lost = f"connection to {self.path} lost: {why}"
        replies, self._replies = self._replies, collections.deque()
        waiters, self._waiters = self._waiters, {}
        self._early.clear()
        for obj in replies:
            fut = (obj.fut if type(obj) is _Job else obj[0] if type(obj) is tuple
                   else obj)
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionLost(self._lost))
        for futs in waiters.values():
            for fut in (futs if type(futs) is list else (futs,)):
                if not fut.done():
                    fut.set_exception(ConnectionLost(self._lost))
        while self._drainers:
            fut = self._drainers.popleft()
            if not fut.done():
                fut.set_exception(ConnectionLost(self._lost))
        if not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos, end = 0, len(buf)
        try:
            while pos < end:
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    break
                line = bytes(buf[pos:nl])
                if line.endswith(b"\r"):
                    line = line[:-1]
                kind, _, rest = line.partition(b" ")
                if kind == b"OK":
                    pos = nl + 1
                    self._reply_ok(rest)
                elif kind == b"RESULT" or kind == b"DATA":
                    words = rest.split(b" ")
                    size = int(words[-1])
                    start = nl + 1
                    if end - start < size + 1:
                        break
                    stop = start + size
                    if buf[stop] == 13:	# \r\n after the body
                        if end - stop < 2:
                            break
                        pos = stop + 2
                    else:
                        pos = stop + 1
                    body = bytes(buf[start:stop])
                    if kind == b"DATA":
                        self._reply(body)
                    else:
                        self._result(int(words[0]), words[1], body)
                elif kind == b"ERR":
                    pos = nl + 1
                    self._reply_err(rest.decode("ascii", "replace"))
                else:
                    raise ValueError(f"unexpected line {line[:80]!r}")
        except (ValueError, IndexError) as e:
            self._said = f"the daemon sent what the client cannot read: {e}"
            if self._transport is not None:
                self._transport.abort()
            return
        del buf[:pos]

    # -- replies ----------------------------------------------------------------------

    def _reply_ok(self, rest: bytes) -> None:
        if not self._replies:
            raise ValueError(f"a reply 'OK {rest[:40]!r}' to no request")
        obj = self._replies.popleft()
        if type(obj) is _Job:
            try:
                job_id = int(rest)
            except ValueError:		# OK <id> dup: a resend with an idem token
                job_id = int(rest.split()[0])
            obj.id = job_id
            early = self._early.pop(job_id, None) if self._early else None
            if obj.fut.cancelled():
                self._cancel_quietly(job_id)
                if early is None:
                    self._add_waiter(job_id, obj.fut)	# takes its RESULT
            elif early is not None:
                self._resolve(obj.fut, job_id, *early)
            else:
                self._add_waiter(job_id, obj.fut)
        elif obj is not None and type(obj) is not tuple:
            if not obj.done():
                obj.set_result(rest.decode("ascii", "replace"))

    def _reply(self, body: bytes) -> None:
        if not self._replies:
            raise ValueError("a DATA reply to no request")
        obj = self._replies.popleft()
        if type(obj) is _Job or type(obj) is tuple:
            raise ValueError("a DATA reply to a SUBMIT or WAIT")
        if obj is not None and not obj.done():
            obj.set_result(body)

    def _reply_err(self, text: str) -> None:
        code, _, message = text.partition(" ")
        # ERR timeout is never a reply (PROTOCOL.md): the daemon is about to close
        # the connection. An ERR with no request outstanding is the same kind.
        if code == "timeout" or not self._replies:
            self._said = f"ERR {text}"
            return
        obj = self._replies.popleft()
        if obj is None:
            return
        if type(obj) is _Job:
            fut = obj.fut
        elif type(obj) is tuple:
            fut, job_id = obj
            self._remove_waiter(job_id, fut)
        else:
            fut = obj
        if not fut.done():
            fut.set_exception(ProtocolError(code, message))

    def _result(self, job_id: int, status: bytes, body: bytes) -> None:
        futs = self._waiters.pop(job_id, None)
        if futs is None:
            self._early[job_id] = (status, body)
        elif type(futs) is list:
            for fut in futs:
                self._resolve(fut, job_id, status, body)
        else:
            self._resolve(futs, job_id, status, body)

    def _add_waiter(self, job_id: int, fut: "asyncio.Future[bytes]") -> None:
        had = self._waiters.setdefault(job_id, fut)
        if had is fut:
            return
        if type(had) is list:
            had.append(fut)
        else:
            self._waiters[job_id] = [had, fut]

    def _remove_waiter(self, job_id: int, fut: "asyncio.Future[bytes]") -> None:
        had = self._waiters.get(job_id)
        if had is fut:
            del self._waiters[job_id]
        elif type(had) is list and fut in had:
            had.remove(fut)
            if not had:
                del self._waiters[job_id]

    @staticmethod
    def _resolve(fut: "asyncio.Future[bytes]", job_id: int, status: bytes,
                 body: bytes) -> None:
        if fut.done():
            return
        if status == b"ok":
            fut.set_result(body)
        else:
            fut.set_exception(job_error(job_id, status.decode("ascii", "replace"),
                                        body))

    def _word(self, queue: str) -> bytes:
        word = _queue_word(queue)
        if len(self._words) < 1024:
            self._words[queue] = word
        return word

    # -- sending ----------------------------------------------------------------------

    def _check(self) -> None:
        if self._lost is not None:
            raise ConnectionLost(self._lost)

    def _send(self, data: bytes, obj: Any) -> None:
        # The request and what its reply completes go in together, in order.
        self._out.append(data)
        self._replies.append(obj)
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        out, self._out = self._out, []
        if self._transport is not None and self._lost is None:
            self._transport.write(b"".join(out))

    async def _drain(self) -> None:
        """Wait while the socket's buffer is full (the daemon reads no more: a full
        queue holds producers back, PROTOCOL.md "Backpressure")."""
        while self._paused:
            self._check()
            fut = self._loop.create_future()
            self._drainers.append(fut)
            await fut

    def _request(self, line: bytes) -> "asyncio.Future[Any]":
        self._check()
        fut = self._loop.create_future()
        self._send(line, fut)
        return fut

    def _cancel_quietly(self, job_id: int) -> None:
        if self._lost is None:
            self._send(b"CANCEL %d\n" % job_id, None)

    def _submit_job(self, queue: bytes, body: bytes, opts: bytes) -> _Job:
        # The per-job path of submit() and map(): _send() inlined.
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        job = _Job(self, self._loop.create_future())
        self._out.append(b"SUBMIT %s %d wait%s\n%s\n" % (queue, len(body), opts, body))
        self._replies.append(job)
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        return job

    # -- the API ----------------------------------------------------------------------

    async def submit(self, queue: str, data: Payload, *, timeout: Optional[float] = None,
                     priority: Optional[int] = None, delay: Optional[float] = None,
                     nonblock: bool = False, key: Optional[str] = None,
                     idem: Optional[str] = None) -> bytes:
        """Submit a job and wait for it: its result, or JobFailed, JobTimeout
        (both JobDead) or JobCancelled with the job id and the daemon's text;
        ProtocolError when the daemon refuses it (unknown queue: code ``noqueue``;
        too large: ``toolarge``; full queue with nonblock: ``busy``).

        timeout and delay are in seconds (the daemon counts milliseconds; timeout=0
        means none); priority within the queue's range. Cancelling the task that
        awaits this sends CANCEL: a running job is stopped and its cleanup runs.

        key= is the job's key (a queue may limit each key: max_running_per_key,
        rate_per_key). idem= is an idempotency token (1 to 64 of A-Z a-z 0-9
        . _ - : @ / + = ~): while the daemon holds it for this queue and user (the
        first job with it waits, runs, or ended less than idempotency_window ago), a
        submit with it makes no new job and gets the first job's result; so a resend
        after ConnectionLost is safe. Cancelling the task then cancels that first
        job."""
        if (timeout is None and priority is None and delay is None and not nonblock
                and key is None and idem is None):
            opts = b""
        else:
            opts = submit_options(timeout, priority, delay, nonblock, key, idem)
        body = data if type(data) is bytes else _body(data)
        word = self._words.get(queue) or self._word(queue)
        if self._paused:
            await self._drain()
        job = self._submit_job(word, body, opts)
        try:
            return await job.fut
        except asyncio.CancelledError:
            job.abandon()
            raise

    def submit_future(self, queue: str, data: Payload, *,
                      timeout: Optional[float] = None, priority: Optional[int] = None,
                      delay: Optional[float] = None, nonblock: bool = False,
                      key: Optional[str] = None,
                      idem: Optional[str] = None) -> "asyncio.Future[bytes]":
        """submit() without a coroutine: the job's future, at once (the shape of
        loop.run_in_executor, and without the cost of a task per job when gathering
        thousands). Cancelling the future cancels the job. It does not wait for the
        socket to drain: a producer of an unbounded stream wants map() (or submit(),
        which waits)."""
        opts = submit_options(timeout, priority, delay, nonblock, key, idem)
        body = data if type(data) is bytes else _body(data)
        job = self._submit_job(self._words.get(queue) or self._word(queue), body, opts)
        job.fut.add_done_callback(job.done_cb)
        return job.fut

    async def submit_nowait(self, queue: str, data: Payload, *,
                            timeout: Optional[float] = None,
                            priority: Optional[int] = None,
                            delay: Optional[float] = None, nonblock: bool = False,
                            key: Optional[str] = None,
                            idem: Optional[str] = None) -> int:
        """Submit a job without waiting for it to run: its id, once the daemon has
        accepted it (with a journal, once it is recorded). ``wait(id)`` gets the
        result later, from this connection or another."""
        opts = submit_options(timeout, priority, delay, nonblock, key, idem)
        body = _body(data)
        word = self._words.get(queue) or self._word(queue)
        if self._paused:
            await self._drain()
        line = b"SUBMIT %s %d%s\n" % (word, len(body), opts)
        # OK <id>, or OK <id> dup when idem= named a job the daemon has.
        return int((await self._request(line + body + b"\n")).split()[0])

    async def wait(self, job_id: int) -> bytes:
        """Wait for a job by id: its result, or the JobError submit() would raise;
        ProtocolError ``notfound`` if the daemon knows no such job (or no longer
        keeps its result). Cancelling the waiting task stops the wait, not the job
        (use cancel())."""
        self._check()
        job_id = int(job_id)
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._add_waiter(job_id, fut)
        early = self._early.pop(job_id, None)
        if early is not None:
            self._result(job_id, *early)
            return await fut
        # Cancelled, fut stays a waiter: it takes the RESULT that the WAIT still brings.
        self._send(b"WAIT %d\n" % job_id, (fut, job_id))
        return await fut

    async def cancel(self, job_id: int) -> str:
        """Cancel a job: ``"cancelled"`` (it had not started) or ``"cancelling"``
        (it runs and is being stopped; its waiters get JobCancelled once its
        cleanup ran). ProtocolError ``state`` if it has finished or is dead."""
        return str(await self._request(b"CANCEL %d\n" % int(job_id)))

    async def job_status(self, job_id: int) -> dict[str, Any]:
        """STATUS of a job: {"id": 1, "queue": "default", "state": "done", ...}."""
        return parse_words(await self._request(b"STATUS %d\n" % int(job_id)))

    async def status(self) -> dict[str, Any]:
        """STATS, parsed (jobpool.stats.parse_stats): the daemon, every queue by
        name, the workers, the journal."""
        return parse_stats(await self._request(b"STATS\n"))

    async def ping(self) -> None:
        """PING: returns when the daemon has answered."""
        await self._request(b"PING\n")

    async def map(self, queue: str, items: Union[Iterable[Payload], AsyncIterable[Payload]],
                  *, ordered: bool = True, window: int = 1024,
                  return_exceptions: bool = False, timeout: Optional[float] = None,
                  priority: Optional[int] = None) -> AsyncGenerator[Union[bytes, JobError], None]:
        """Submit a job per item and yield the results: in the items' order
        (ordered=True, as ``jobpoolctl map -k``) or as they finish. At most
        ``window`` jobs are in flight; the next item is read only when one is done,
        so a huge or endless iterable costs ``window`` jobs of memory.

        A job that fails raises its JobError (ending the map; the jobs still in
        flight are cancelled), or is yielded as the exception with
        return_exceptions=True. Leaving the loop early cancels the jobs in flight."""
        if window < 1:
            raise ValueError(f"map: window must be >= 1, not {window!r}")
        word = _queue_word(queue)
        opts = submit_options(timeout, priority)
        sync_it = None if isinstance(items, AsyncIterable) else iter(items)
        async_it = items.__aiter__() if isinstance(items, AsyncIterable) else None
        # In order: the jobs in flight, oldest first. Unordered: the same by future
        # (any may end first), and the futures that ended, in the order they did.
        inflight: collections.deque[_Job] = collections.deque()
        pending: dict[asyncio.Future[bytes], _Job] = {}
        finished: collections.deque[asyncio.Future[bytes]] = collections.deque()
        wake = asyncio.Event()
        more = True

        def done_cb(fut: "asyncio.Future[bytes]") -> None:
            finished.append(fut)
            wake.set()

        try:
            while True:
                while more and len(inflight) + len(pending) < window:
                    try:
                        if sync_it is not None:
                            item = next(sync_it)
                        else:
                            item = await async_it.__anext__()  # type: ignore[union-attr]
                    except (StopIteration, StopAsyncIteration):
                        more = False
                        break
                    if self._paused:
                        await self._drain()
                    job = self._submit_job(word, _body(item), opts)
                    if ordered:
                        inflight.append(job)
                    else:
                        pending[job.fut] = job
                        job.fut.add_done_callback(done_cb)
                if not inflight and not pending:
                    return
                if ordered:
                    job = inflight[0]
                    try:
                        res: Union[bytes, JobError] = await job.fut
                    except JobError as e:
                        if not return_exceptions:
                            raise
                        res = e
                    inflight.popleft()
                    yield res
                    continue
                while not finished:
                    wake.clear()
                    await wake.wait()
                while finished:
                    fut = finished.popleft()
                    del pending[fut]
                    exc = fut.exception()
                    if exc is None:
                        yield fut.result()
                    elif return_exceptions and isinstance(exc, JobError):
                        yield exc
                    else:
                        raise exc
        finally:
            for job in inflight:
                job.abandon()
            for job in pending.values():
                job.abandon()
            for fut in finished:
                if not fut.cancelled():
                    fut.exception()	# retrieved: no "never retrieved" warning

    def events(self, since: Union[None, int, str] = None, *, epoch: Optional[int] = None,
               queue: Optional[str] = None, type: Optional[str] = None,
               follow: bool = True) -> "EventStream":
        """The daemon's events, as ``jobpool.Event`` objects: ``async for ev in
        jp.events(since=...)``. On a connection of its own (EVENTS turns a connection
        into a stream), to the same socket.

        since: None (``"now"`` following, ``"all"`` without), ``"now"``, ``"all"``
        (what the daemon's ring holds), or a seq: the events after it, with epoch= the
        epoch it came from (a different one starts with a gap of reason ``restart``).
        queue=, type= (a glob such as ``"job.*"``): the daemon's filters.
        follow=True: go on until closed, connecting again (every 0.5 s) after a lost
        connection and resuming after the last event read, so a restart of the daemon
        is a gap event; follow=False: what the ring holds now, then the end."""
        from .events import EventStream
        return EventStream(self.path, since, epoch=epoch, queue=queue, type=type,
                           follow=follow)

    async def close(self) -> None:
        """Close the connection; what still waits on it gets ConnectionLost (the
        jobs go on in the daemon)."""
        if self._transport is not None and self._lost is None:
            self._said = self._said or "closed by the client (close())"
            self._flush()
            self._transport.close()
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def open_connection(path: Optional[str] = None) -> Connection:
    """Connect to the daemon (path: default_socket()) and check that it answers: a
    daemon that refuses the connection (ERR busy, ERR denied) raises ProtocolError."""
    where = path or default_socket()
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_unix_connection(lambda: Connection(where), where)
    except OSError as e:
        raise ConnectFailed(
            f"cannot connect to {where}: {e.strerror or e} (is jobpoold running? "
            f"the socket is $JOBPOOL_SOCKET or connect(path=...))") from None
    try:
        await conn.ping()
    except ConnectionLost:
        # The daemon said why (ERR busy, ERR denied) and closed.
        if conn._said is not None:
            code, _, msg = conn._said[4:].partition(" ")
            raise ProtocolError(code, msg) from None
        raise
    except BaseException:
        await conn.close()
        raise
    return conn


class connect:
    """``async with jobpool.connect(path=None) as jp:`` or ``jp = await
    jobpool.connect()`` (then ``await jp.close()``)."""

    def __init__(self, path: Optional[str] = None) -> None:
        self._path = path
        self._conn: Optional[Connection] = None

    def __await__(self) -> Generator[Any, None, Connection]:
        return open_connection(self._path).__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await open_connection(self._path)
        return self._conn

    async def __aexit__(self, *exc: Any) -> None:
        if self._conn is not None:
            await self._conn.close()
