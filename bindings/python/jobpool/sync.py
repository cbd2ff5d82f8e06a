"""sync.py: jobpool.Client, the same connection for scripts without asyncio.

It runs a private event loop; each call runs until its answer is in. Not for use
inside a running event loop (use jobpool.connect() there), nor from several threads.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Iterable, Iterator, Optional, TypeVar, Union

from .connection import Connection, Payload, open_connection
from .errors import JobError
from .events import Event

T = TypeVar("T")


class Client:
    """``with jobpool.Client() as jp: print(jp.submit("default", b"hi"))``.

    The methods are Connection's, synchronous. Ctrl-C (KeyboardInterrupt) during
    submit() cancels the job in the daemon before it is raised, as cancelling the
    task does with the asyncio API."""

    def __init__(self, path: Optional[str] = None) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._conn: Connection = self._loop.run_until_complete(open_connection(path))
        except BaseException:
            self._loop.close()
            raise

    def _run(self, aw: Awaitable[T]) -> T:
        task = asyncio.ensure_future(aw, loop=self._loop)
        try:
            return self._loop.run_until_complete(task)
        except KeyboardInterrupt:
            # Cancel what the call waited for (a submit sends CANCEL), then let the
            # CANCEL out before the interrupt goes on.
            task.cancel()
            try:
                self._loop.run_until_complete(task)
            except BaseException:
                pass
            self._loop.run_until_complete(asyncio.sleep(0))
            raise

    def submit(self, queue: str, data: Payload, **options: Any) -> bytes:
        return self._run(self._conn.submit(queue, data, **options))

    def submit_nowait(self, queue: str, data: Payload, **options: Any) -> int:
        return self._run(self._conn.submit_nowait(queue, data, **options))

    def wait(self, job_id: int) -> bytes:
        return self._run(self._conn.wait(job_id))

    def cancel(self, job_id: int) -> str:
        return self._run(self._conn.cancel(job_id))

    def job_status(self, job_id: int) -> dict[str, Any]:
        return self._run(self._conn.job_status(job_id))

    def status(self) -> dict[str, Any]:
        return self._run(self._conn.status())

    def ping(self) -> None:
        self._run(self._conn.ping())

    def map(self, queue: str, items: Iterable[Payload],
            **options: Any) -> Iterator[Union[bytes, JobError]]:
        agen = self._conn.map(queue, items, **options)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def events(self, since: Union[None, int, str] = None,
               **options: Any) -> Iterator[Event]:
        """Connection.events() as a generator; closing it (or leaving the loop and
        dropping it) closes the stream's connection."""
        stream = self._conn.events(since, **options)
        try:
            while True:
                try:
                    yield self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._run(stream.aclose())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._conn.close())
            self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
