"""errors.py: what the client raises.

Every exception is a JobpoolError. A job that ended badly raises a JobError carrying
the job's id and the daemon's text; a request the daemon refused raises ProtocolError
with the daemon's code (lib/PROTOCOL.md, "Error codes"); a connection that went away
raises ConnectionLost in everything that was waiting on it.
"""

from __future__ import annotations


class JobpoolError(Exception):
    """The base of every exception this package raises."""


class JobError(JobpoolError):
    """A job ended without a result: ``job_id``, the RESULT ``status`` and the
    daemon's ``text`` (the body of the RESULT)."""

    def __init__(self, job_id: int, status: str, text: str) -> None:
        self.job_id = job_id
        self.status = status
        self.text = text
        super().__init__(f"job {job_id} {status}: {text}")


class JobDead(JobError):
    """The job is dead: it failed or timed out with no attempts left (or failed
    permanently). It is on the daemon's DEAD list; ``jobpoolctl retry`` queues it
    again. JobFailed and JobTimeout are the two ways to get here."""


class JobFailed(JobDead):
    """The handler failed (RESULT status ``failed``); ``text`` is its error."""


class JobTimeout(JobDead):
    """The last attempt ran past its timeout (RESULT status ``timeout``)."""


class JobCancelled(JobError):
    """The daemon cancelled the job (RESULT status ``cancelled``): another client's
    CANCEL, or the daemon shutting down (then ``text`` says whether the job is kept
    in the journal and runs after the restart). Cancelling the awaiting task raises
    asyncio.CancelledError instead, as for any task."""


class ProtocolError(JobpoolError):
    """The daemon answered ``ERR <code> <message>``: ``code`` is one of PROTOCOL.md's
    (``proto``, ``toolarge``, ``noqueue``, ``busy``, ``notfound``, ``state``,
    ``shutdown``, ``unavailable``, ``denied``, ``config``, ``timeout``), or the
    client could not make sense of what the daemon sent (code ``client``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class ConnectionLost(JobpoolError, ConnectionError):
    """The connection to the daemon is gone (closed by the daemon, which may have said
    why, or broken). Every request and every wait on it raises this; jobs already
    accepted go on in the daemon, and ``wait(job_id)`` on a new connection finds them
    while their results are kept."""


RESULT_ERRORS: dict[str, type[JobError]] = {
    "failed": JobFailed,
    "timeout": JobTimeout,
    "cancelled": JobCancelled,
}


def job_error(job_id: int, status: str, body: bytes) -> JobError:
    """The exception for a RESULT that is not ``ok``."""
    cls = RESULT_ERRORS.get(status, JobError)
    return cls(job_id, status, body.decode("utf-8", "replace"))


class ConnectFailed(JobpoolError, ConnectionError):
    """No connection could be made to the daemon's socket; the message names the
    socket and says why."""
