"""events.py: the daemon's event stream (lib/PROTOCOL.md, EVENTS) as typed Events.

EVENTS turns a connection into a stream, so an EventStream has a connection of its
own, read line by line (asyncio streams: the lines are short and nothing else is
pipelined on it). It keeps where it is, the epoch and the last seq it read, so that
following, it connects again after a lost connection and resumes with `since=<seq>
epoch=<e>` as `jobpoolctl events -f` does: a restart of the daemon then arrives as
the daemon's own gap event (reason "restart"), never as a silent hole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any, Optional, Union

from .connection import _queue_word
from .errors import ConnectFailed, ConnectionLost, ProtocolError
from .path import default_socket

# How long a follower waits between attempts to connect to a daemon that is away
# (jobpoolctl events -f waits as long, EVENTS_RETRY_MS).
RETRY_SECONDS = 0.5

_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
_GLOB = re.compile(r"[!-~]{1,63}\Z")

# The keys whose values are numbers (everything else is kept as text).
_INTS = ("seq", "job", "attempt", "pid", "ms", "delay_ms", "exit", "signal",
         "first", "last")
_FLAGS = ("recovered", "error_lost", "reason_lost", "idem_lost")


@dataclasses.dataclass
class Event:
    """One EVENT line. ``epoch`` is the epoch of the daemon that sent it (the OK line's:
    with ``seq`` it says where a stream resumes); every other field is the line's key
    of the same name (PROTOCOL.md, "The fields"), None (or False) where the line has
    none. A gap (``type == "gap"``) has no seq nor time but ``reason`` ("overrun" or
    "restart"), ``first``, ``last`` (overrun) and ``old_epoch`` (restart: the line's
    ``epoch=``, the epoch of the stream that was cut). Keys this client does not know
    are kept, as text, in ``extra``."""

    type: str
    epoch: int
    seq: Optional[int] = None
    time: Optional[float] = None
    queue: Optional[str] = None
    job: Optional[int] = None
    attempt: Optional[int] = None
    pid: Optional[int] = None
    ms: Optional[int] = None
    delay_ms: Optional[int] = None
    exit: Optional[int] = None
    signal: Optional[int] = None
    recovered: bool = False
    error: Optional[str] = None
    reason: Optional[str] = None
    error_lost: bool = False
    reason_lost: bool = False
    idem: Optional[str] = None
    idem_lost: bool = False
    first: Optional[int] = None
    last: Optional[int] = None
    old_epoch: Optional[int] = None
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_gap(self) -> bool:
        return self.type == "gap"


def _text(raw: bytes) -> str:
    return _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), raw).decode("utf-8", "replace")


def parse_event(line: Union[bytes, str], epoch: int) -> Event:
    """An EVENT line (without ``EVENT `` or with it, without its newline) of the
    stream of ``epoch``. ValueError, naming the field, on what is not one."""
    raw = line.encode("ascii") if isinstance(line, str) else bytes(line)
    if raw.startswith(b"EVENT "):
        raw = raw[6:]
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    rest = raw
    while rest:
        word, _, after = rest.lstrip(b" ").partition(b" ")
        if not word:
            break
        key_b, eq, val = word.partition(b"=")
        key = key_b.decode("ascii", "replace")
        # error= and reason= run to the end of the line, except on a gap, whose
        # reason is a word and is followed by first= and last=.
        if key in ("error", "reason") and eq and fields.get("type") != "gap":
            fields[key] = _text(rest.lstrip(b" ")[len(key_b) + 1:])
            break
        rest = after
        if not eq:
            extra[key] = ""
        elif key == "type":
            fields["type"] = val.decode("ascii", "replace")
        elif key == "time":
            try:
                fields["time"] = float(val)
            except ValueError:
                raise ValueError(f"EVENT: bad time '{val[:40]!r}'") from None
        elif key == "epoch":
            fields["old_epoch"] = _int(key, val)
        elif key in _INTS:
            fields[key] = _int(key, val)
        elif key in _FLAGS:
            fields[key] = val == b"1"
        elif key in ("queue", "idem"):
            fields[key] = val.decode("ascii", "replace")
        elif key in ("error", "reason"):
            fields[key] = _text(val)
        else:
            extra[key] = _text(val)
    if "type" not in fields:
        raise ValueError(f"EVENT without a type: {raw[:80]!r}")
    return Event(epoch=epoch, extra=extra, **fields)


def _int(key: str, val: bytes) -> int:
    try:
        return int(val)
    except ValueError:
        raise ValueError(f"EVENT: bad {key}= '{val[:40]!r}'") from None


def _words(line: bytes) -> dict[str, int]:
    out = {}
    for word in line.split()[2:]:
        k, _, v = word.partition(b"=")
        if v.isdigit():
            out[k.decode("ascii")] = int(v)
    return out


class EventStream:
    """``async for ev in jp.events(...)`` (or ``jobpool.events(...)``): see
    Connection.events(). ``epoch`` and ``seq`` say where the stream is: the epoch of
    the daemon and the last seq read (also past a gap); with ``events(since=seq,
    epoch=epoch)`` a later stream resumes exactly there."""

    def __init__(self, path: Optional[str] = None,
                 since: Union[None, int, str] = None, *, epoch: Optional[int] = None,
                 queue: Optional[str] = None, type: Optional[str] = None,
                 follow: bool = True) -> None:
        if since is None:
            since = "now" if follow else "all"
        if isinstance(since, bool) or not (
                (isinstance(since, int) and since >= 0) or since in ("now", "all")):
            raise ValueError(f"events: since is a sequence number (>= 0), 'now' or "
                             f"'all', not {since!r}")
        if epoch is not None and not isinstance(since, int):
            raise ValueError("events: epoch= goes with since=<seq>")
        words = []
        if queue is not None:
            words.append(b" queue=" + _queue_word(queue))
        if type is not None:
            if not isinstance(type, str) or not _GLOB.match(type):
                raise ValueError(f"events: bad type pattern {type!r}: one word of "
                                 f"printable ASCII, at most 63 characters")
            words.append(b" type=" + type.encode("ascii"))
        if not follow:
            words.append(b" until=now")
        self.path = path or default_socket()
        self.follow = follow
        self.epoch: Optional[int] = epoch
        self.seq: Optional[int] = since if isinstance(since, int) else None
        self._since = since
        self._opts = b"".join(words)
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._connected_once = False
        self._ended = False

    def _request(self) -> bytes:
        if self.seq is not None:
            line = b"EVENTS since=%d" % self.seq
            if self.epoch is not None:
                line += b" epoch=%d" % self.epoch
        else:
            line = b"EVENTS since=" + str(self._since).encode("ascii")
        return line + self._opts + b"\n"

    async def _open(self) -> None:
        """Connect and send EVENTS, until its OK; raises what the first attempt
        meets (ConnectFailed, ProtocolError), while following later ones retry."""
        while True:
            try:
                await self._open_once()
                self._connected_once = True
                return
            except (ConnectFailed, ConnectionLost):
                if not (self.follow and self._connected_once):
                    raise
            except ProtocolError as e:
                # The daemon is full (busy) or stopping: wait for it. Anything else
                # (noqueue after a restart with another config) is the caller's.
                if not (self.follow and self._connected_once and
                        e.code in ("busy", "shutdown")):
                    raise
            await asyncio.sleep(RETRY_SECONDS)

    async def _open_once(self) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError as e:
            raise ConnectFailed(
                f"cannot connect to {self.path}: {e.strerror or e} (is jobpoold "
                f"running?)") from None
        try:
            writer.write(self._request())
            line = await reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionLost(f"connection to {self.path} lost before the "
                                     f"reply to EVENTS")
            line = line.rstrip(b"\r\n")
            if line.startswith(b"ERR "):
                code, _, msg = line[4:].decode("ascii", "replace").partition(" ")
                raise ProtocolError(code, msg)
            if not line.startswith(b"OK events "):
                raise ProtocolError("client", f"EVENTS: unexpected reply {line[:80]!r}")
        except OSError as e:
            writer.close()
            raise ConnectionLost(f"connection to {self.path} lost: {e}") from None
        except BaseException:
            writer.close()
            raise
        w = _words(line)
        new_epoch = w.get("epoch", 0)
        last, oldest = w.get("seq", 0), w.get("oldest", 1)
        if self.seq is None:
            # since=now or all: the stream starts after last, or before oldest.
            self.seq = last if self._since == "now" else oldest - 1
        elif self.epoch is None or self.epoch == new_epoch:
            self.seq = min(self.seq, last)	# a seq not published yet: from now
        else:
            self.seq = 0	# a restart: the gap comes first, then the new epoch's 1
        self.epoch = new_epoch
        self._reader, self._writer = reader, writer

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._ended:
                raise StopAsyncIteration
            if self._reader is None:
                await self._open()
            assert self._reader is not None and self.epoch is not None
            try:
                line = await self._reader.readline()
            except OSError:
                line = b""
            if not line.endswith(b"\n"):
                self._drop()
                if not self.follow:
                    self._ended = True
                    raise ConnectionLost(f"connection to {self.path} lost before the "
                                         f"end of the events")
                continue	# connect again, resuming after self.seq
            line = line.rstrip(b"\r\n")
            if line.startswith(b"END"):
                self._ended = True
                self._drop()
                raise StopAsyncIteration
            if not line.startswith(b"EVENT "):
                continue	# later versions may send more: ignored
            try:
                ev = parse_event(line, self.epoch)
            except ValueError as e:
                self._ended = True
                self._drop()
                raise ProtocolError("client", str(e)) from None
            if ev.seq is not None:
                self.seq = ev.seq
            elif ev.is_gap:
                self.seq = ev.last if ev.last is not None else 0
            return ev

    async def aclose(self) -> None:
        """Close the stream's connection; the iteration ends."""
        self._ended = True
        writer = self._writer
        self._drop()
        if writer is not None:
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def __aenter__(self) -> "EventStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def events(since: Union[None, int, str] = None, *, epoch: Optional[int] = None,
           queue: Optional[str] = None, type: Optional[str] = None,
           follow: bool = True, path: Optional[str] = None) -> EventStream:
    """The event stream of the daemon at path (default_socket()), without a
    Connection: ``async for ev in jobpool.events(): ...``."""
    return EventStream(path, since, epoch=epoch, queue=queue, type=type, follow=follow)
