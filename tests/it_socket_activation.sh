#!/usr/bin/env bash
# it_socket_activation.sh: jobpoold serves the socket it is handed (LISTEN_FDS=1), as
# under jobpool.socket. Producers that connect and send their jobs before the daemon
# runs lose nothing: each gets its RESULT once the daemon is up. The daemon never
# unlinks or replaces the socket file it was handed, so a restart keeps the socket and
# the connections queued on it. Two ways in: tests/socket_holder.py (which holds the
# socket across daemon restarts, like systemd does) and systemd-socket-activate.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is missing"; exit 77; }
HOLDER_PY="$top_srcdir/tests/socket_holder.py"
HPID=
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done
	[ -n "$HPID" ] && { touch "$JP_TMP/quit"; for f in "$JP_TMP"/pid.*; do
		[ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done; kill "$HPID" 2>/dev/null; }
	jp_cleanup' EXIT

inode() { stat -c %i "$1" 2>/dev/null || echo none; }
# stop_run N: SIGTERM the holder's Nth daemon; check it exits 0.
stop_run() {
	kill -TERM "$(cat "$JP_TMP/pid.$1")"
	if jp_until 20 test -s "$JP_TMP/rc.$1"; then
		jp_eq "daemon $1 exits 0 on SIGTERM" 0 "$(cat "$JP_TMP/rc.$1")"
	else
		jp_fail "daemon $1 did not stop"
	fi
}

# The config names the same path, as the packaged one does: a daemon that ignored the
# socket it was handed would unlink that path and bind its own.
jp_config 'queues = ( { name = "default"; handler = "echo"; workers = 2; } );' >/dev/null

# ----- producers first, then the daemon -----
python3 "$HOLDER_PY" "$JP_SOCK" "$JP_TMP" -- "$JOBPOOLD" -c "$JP_TMP/jobpool.conf" \
	>"$JP_TMP/holder.out" 2>>"$JP_LOG" &
HPID=$!
jp_until 5 grep -q listening "$JP_TMP/holder.out"
ino=$(inode "$JP_SOCK")
jp_match "the holder's socket exists" '^[0-9]+$' "$ino"

seq 1 300 >"$JP_TMP/in"
# Each producer is bounded: a lost job must fail the test, not hang it.
timeout 30 "$JOBPOOLCTL" map -k -q default <"$JP_TMP/in" >"$JP_TMP/map.out" 2>"$JP_TMP/map.err" &
map=$!
timeout 30 "$JOBPOOLCTL" submit -w -q default "sent before the daemon ran" >"$JP_TMP/early.out" 2>&1 &
early=$!
BG="$map $early"
sleep 1
if kill -0 "$map" 2>/dev/null && kill -0 "$early" 2>/dev/null; then
	jp_pass "with no daemon yet, the producers wait (connected, jobs written)"
else
	jp_fail "a producer finished before any daemon ran: $(cat "$JP_TMP/map.err" "$JP_TMP/early.out")"
fi

touch "$JP_TMP/go.1"
jp_until 5 test -s "$JP_TMP/pid.1" || jp_fail "the holder did not start the daemon"
wait "$map"; rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$JP_TMP/in" "$JP_TMP/map.out"; then
	jp_pass "all 300 jobs of the map sent before the daemon ran came back, in order"
else
	jp_fail "map: exit $rc, $(wc -l <"$JP_TMP/map.out") lines; $(head -3 "$JP_TMP/map.err")"
fi
wait "$early"
jp_eq "the job sent before the daemon ran got its RESULT" "sent before the daemon ran" \
	"$(cat "$JP_TMP/early.out")"
BG=
jp_match "the daemon says where its socket came from" \
	'listening on the socket passed by systemd' "$(cat "$JP_LOG")"
jp_eq "the daemon did not replace the socket file" "$ino" "$(inode "$JP_SOCK")"

# ----- a restart: the socket stays, a job sent in between is served by the next -----
stop_run 1
jp_eq "after the daemon stopped, the handed socket file is still there" "$ino" "$(inode "$JP_SOCK")"
timeout 30 "$JOBPOOLCTL" submit -w -q default "sent between two daemons" >"$JP_TMP/between.out" 2>&1 &
between=$!
BG=$between
sleep 0.5
touch "$JP_TMP/go.2"
wait "$between"
BG=
jp_eq "the job sent while no daemon ran was served by the next one" \
	"sent between two daemons" "$(cat "$JP_TMP/between.out")"
jp_eq "PING through the same socket" "pong" "$("$JOBPOOLCTL" ping 2>&1 | sed 's/^OK //')"
stop_run 2
jp_eq "the socket file is still the holder's" "$ino" "$(inode "$JP_SOCK")"
touch "$JP_TMP/quit"
wait "$HPID"
HPID=
jp_check_sanitizers

# ----- systemd-socket-activate: it execs the daemon on the first connection -----
SSA=$(command -v systemd-socket-activate || true)
if [ -z "$SSA" ]; then
	echo "SKIP (part): systemd-socket-activate is missing (package systemd)"
else
	rm -f "$JP_SOCK"
	timeout --foreground -s KILL "$JP_DAEMON_TIMEOUT" "$SSA" -l "$JP_SOCK" \
		"$JOBPOOLD" -c "$JP_TMP/jobpool.conf" >>"$JP_LOG" 2>&1 &
	JP_PID=$!
	jp_until 5 test -S "$JP_SOCK"
	ino=$(inode "$JP_SOCK")
	# The first connection starts the daemon; its job is already written by then.
	out=$(printf 'first\nsecond\nthird\n' | timeout 30 "$JOBPOOLCTL" map -k -q default 2>&1)
	jp_eq "systemd-socket-activate: the first producer's jobs all come back" \
		"first second third" "$(echo $out)"
	JP_DPID=$(pgrep -o -P "$JP_PID")
	jp_eq "systemd-socket-activate: jobpoold runs in its place" "jobpoold" \
		"$(cat /proc/"$JP_DPID"/comm 2>/dev/null)"
	jp_eq "systemd-socket-activate: the socket file is untouched" "$ino" "$(inode "$JP_SOCK")"
	jp_stop 20
	jp_eq "systemd-socket-activate: still there after the daemon stopped" "$ino" \
		"$(inode "$JP_SOCK")"
fi

jp_done
