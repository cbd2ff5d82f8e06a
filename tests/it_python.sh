#!/bin/bash
# it_python.sh: the Python client (bindings/python/jobpool) against the real jobpoold,
# with the system's /usr/bin/python3: mypy --strict over the package (when Debian's
# python3-mypy is there), tests/python/test_client.py (submit and results,
# errors of each kind, map with a window, 10,000 submits on one connection, cancelling a
# task stops its running job, jobpool.Client, python3 -m jobpool, jp.events()), then,
# on a second daemon it kills, a lost connection raising in every waiter, and on a
# third, which it restarts, jp.events() following across the restart.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

PY=/usr/bin/python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
	echo "skip: $PY is missing or older than 3.11"
	exit 77
fi
export PYTHONPATH="$top_srcdir/bindings/python"
export PYTHONDONTWRITEBYTECODE=1
CONF='max_payload = 65536;
events_ring = 200000;
queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "sleep"; handler = "sleep"; workers = 2; retries = 0; },
	{ name = "fail"; handler = "exec:/bin/false"; workers = 1; retries = 1;
	  backoff_base = 0.01; backoff_max = 0.01; }
);'
pyunit() { (cd "$top_srcdir/tests/python" && timeout 240 "$PY" -m unittest -v "$@" 2>&1); }

# The annotations hold (py.typed promises them): mypy --strict over the package, where
# Debian's python3-mypy is installed.
if "$PY" -m mypy --version >/dev/null 2>&1; then
	out=$(cd "$top_srcdir/bindings/python" && "$PY" -m mypy --strict --cache-dir="$JP_TMP/mypy" jobpool 2>&1); rc=$?
	jp_eq "mypy --strict jobpool: exit status ($out)" 0 "$rc"
else
	echo "note: python3-mypy is not installed: the annotations are not checked"
fi

jp_start "$CONF"
out=$(pyunit test_client); rc=$?
printf '%s\n' "$out"
jp_eq "test_client.py: exit status" 0 "$rc"
jp_match "test_client.py ran its tests" '^Ran [0-9]+ tests' "$out"
jp_stop

# The lost connection: the test kills this daemon itself once its jobs run.
jp_start "$CONF"
out=$(JP_KILL_PID=$JP_DPID pyunit test_client.LostConnection); rc=$?
printf '%s\n' "$out"
jp_eq "LostConnection: exit status" 0 "$rc"
jp_match "LostConnection ran, not skipped" '^OK$' "$out"
wait "$JP_PID" 2>/dev/null
JP_PID=
JP_DPID=
jp_check_sanitizers

# A restart while jp.events() follows: the test writes $JP_RESTART_FILE once it is
# following; the daemon is stopped and started again on the same socket; the stream
# goes on with a gap of reason restart (the test waits for it with a deadline).
jp_start "$CONF"
rm -f "$JP_TMP/restart"
JP_RESTART_FILE=$JP_TMP/restart pyunit test_client.Restart >"$JP_TMP/restart.out" &
pyrun=$!
jp_ok_until "the Restart test follows and asks for a restart" 60 test -s "$JP_TMP/restart"
jp_stop
jp_start "$CONF"
wait "$pyrun"; rc=$?
cat "$JP_TMP/restart.out"
jp_eq "Restart: exit status" 0 "$rc"
jp_match "Restart ran, not skipped" '^OK$' "$(cat "$JP_TMP/restart.out")"
jp_stop
jp_done
