"""jobpool: an asyncio client for jobpoold (lib/PROTOCOL.md), pure standard library.

    async with jobpool.connect() as jp:
        result = await jp.submit("default", b"hello", timeout=5)
        async for r in jp.map("default", lines, ordered=True, window=256):
            ...
        async for ev in jp.events(since="all", follow=False):
            print(ev.seq, ev.type, ev.job)

One connection carries any number of concurrent requests from any number of tasks.
bindings/python/README.md has the whole API.
"""

from .connection import Connection, connect, open_connection, submit_options
from .errors import (ConnectFailed, ConnectionLost, JobCancelled, JobDead, JobError,
                     JobFailed, JobTimeout, JobpoolError, ProtocolError)
from .events import Event, EventStream, events, parse_event
from .path import default_socket
from .stats import parse_stats
from .sync import Client

__version__ = "0.1.0"

__all__ = [
    "Client", "ConnectFailed", "Connection", "ConnectionLost", "Event", "EventStream",
    "JobCancelled",
    "JobDead", "JobError", "JobFailed", "JobTimeout", "JobpoolError",
    "ProtocolError", "connect", "default_socket", "events", "open_connection",
    "parse_event", "parse_stats",
    "submit_options",
]
