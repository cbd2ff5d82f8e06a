"""python3 -m jobpool: a tiny CLI over jobpool.Client, for checks.

    python3 -m jobpool [-s SOCKET] submit QUEUE DATA [-w] [--timeout S] [--delay S]
                                                       [--priority N] [--idem TOKEN]
    python3 -m jobpool [-s SOCKET] wait ID
    python3 -m jobpool [-s SOCKET] cancel ID
    python3 -m jobpool [-s SOCKET] status [--job ID]

submit prints the job id, or with -w the result (its bytes as they are); status
prints STATS (or a job's STATUS) as JSON. Exit status: 0 done, 1 the job failed, timed
out or was cancelled (the daemon's text on stderr), 2 the daemon refused the request
or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from .errors import JobError, JobpoolError
from .sync import Client


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m jobpool",
                                 description="Talk to jobpoold (a tiny CLI for checks).")
    ap.add_argument("-s", "--socket", help="the daemon's socket (default: as jobpoolctl)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("submit", help="submit a job")
    p.add_argument("queue")
    p.add_argument("data")
    p.add_argument("-w", "--wait", action="store_true", help="wait for the result")
    p.add_argument("--timeout", type=float, help="per-attempt timeout, seconds")
    p.add_argument("--delay", type=float, help="seconds before it may run")
    p.add_argument("--priority", type=int)
    p.add_argument("--idem", help="an idempotency token: a resend gets the first job")
    p = sub.add_parser("wait", help="wait for a job's result")
    p.add_argument("id", type=int)
    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("id", type=int)
    p = sub.add_parser("status", help="STATS (or a job's STATUS) as JSON")
    p.add_argument("--job", type=int)
    args = ap.parse_args(argv)

    try:
        with Client(args.socket) as jp:
            if args.cmd == "submit":
                opts = {"timeout": args.timeout, "delay": args.delay,
                        "priority": args.priority, "idem": args.idem}
                if args.wait:
                    sys.stdout.buffer.write(jp.submit(args.queue, args.data, **opts))
                else:
                    print(jp.submit_nowait(args.queue, args.data, **opts))
            elif args.cmd == "wait":
                sys.stdout.buffer.write(jp.wait(args.id))
            elif args.cmd == "cancel":
                print(jp.cancel(args.id))
            else:
                st = jp.job_status(args.job) if args.job else jp.status()
                json.dump(st, sys.stdout, indent=1, sort_keys=True)
                print()
    except JobError as e:
        print(f"jobpool: {e}", file=sys.stderr)
        return 1
    except (JobpoolError, ValueError) as e:	# ValueError: a bad --idem token
        print(f"jobpool: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
