"""path.py: where the daemon's socket is, found as libjobpool and jobpoolctl find it
(jobpool_default_socket() in lib/client.c)."""

from __future__ import annotations

import os


def default_socket() -> str:
    """$JOBPOOL_SOCKET; else the system socket for root; else
    $XDG_RUNTIME_DIR/jobpool/jobpool.sock; else /tmp/jobpool-$UID/jobpool.sock."""
    env = os.environ.get("JOBPOOL_SOCKET")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/jobpool/jobpool.sock"
    env = os.environ.get("XDG_RUNTIME_DIR")
    if env:
        return env + "/jobpool/jobpool.sock"
    return f"/tmp/jobpool-{os.getuid()}/jobpool.sock"
