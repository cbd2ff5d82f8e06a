#!/bin/bash
# it_shutdown.sh: jobpoold's graceful shutdown, on SIGTERM and on SIGINT. Running jobs
# finish (RESULT ok), queued and delayed ones are answered cancelled; the socket file
# stays until the exit, and new connections as well as open ones get ERR shutdown for
# SUBMIT (and answers to the rest); a job longer than shutdown_timeout is cancelled cooperatively
# (its handler stops, cleanup runs) and one that will not stop has its worker killed
# after the queue's grace period; either way its waiter gets RESULT, never silence; a
# second signal stops the workers at once; a producer held on a full queue is answered;
# a client that never reads does not keep the daemon. Every time: exit 0, a clean log.
#
# The signal goes to jobpoold itself, not to the `timeout` that lib.sh runs it under:
# that one would also pass it to the whole process group, workers included.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
BG=
STOPPED=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done
	[ -n "$STOPPED" ] && kill -KILL "$STOPPED" 2>/dev/null; jp_cleanup' EXIT

# busy_worker QUEUE: wait (up to 10 s) for a busy worker of QUEUE; print its pid.
busy_worker() {
	jp_until 10 jp_out_match '^[0-9]+$' worker_pid "$1" busy && echo "$JP_UNTIL_OUT"
}
# start WHAT CONFIG: start a daemon; DPID is jobpoold's own pid, LOG0 where its log starts.
start() {
	LOG0=0
	[ -e "$JP_LOG" ] && LOG0=$(wc -l <"$JP_LOG")
	jp_start "$2"
	DPID=$(jp_stat daemon "" pid)
	jp_match "$1: jobpoold's pid from STATS" '^[0-9]+$' "$DPID"
}
newlog() { tail -n +$((LOG0 + 1)) "$JP_LOG"; }
# stopped WHAT SECS: wait for the signalled daemon to exit within SECS; check exit 0, the
# log and the socket file.
stopped() {
	local rc
	jp_until "$2" eval '! kill -0 "$JP_PID" 2>/dev/null'
	if kill -0 "$JP_PID" 2>/dev/null; then
		jp_fail "$1: jobpoold still runs $2 s after the signal"
		kill -KILL "$DPID"
	fi
	wait "$JP_PID"; rc=$?
	JP_PID=
	jp_eq "$1: jobpoold exits 0" 0 "$rc"
	jp_check_sanitizers
	if [ -e "$JP_SOCK" ]; then jp_fail "$1: the socket file is left behind"
	else jp_pass "$1: the socket file is removed"; fi
}

CONF='queues = (
	{ name = "sleep"; handler = "sleep"; workers = 2; batch = 1; retries = 3; }
);
shutdown_timeout = 5;
kill_timeout = 2;'

# ----- running jobs finish, queued and delayed ones are cancelled -----
for sig in SIGTERM SIGINT; do
	start "$sig" "$CONF"
	t0=$(now_ms)
	out=$(badclient shutdown "$JP_SOCK" "$DPID" "$sig" sleep 2 3); rc=$?
	jp_eq "$sig: the client scenario ran" 0 "$rc"
	stopped "$sig" 10
	dt=$(( $(now_ms) - t0 ))
	jp_eq "$sig: an open connection still gets PING" "probe_before: OK pong" \
		"$(printf '%s\n' "$out" | grep '^probe_before:')"
	jp_eq "$sig: STATS says stopping" "stopping: yes" \
		"$(printf '%s\n' "$out" | grep '^stopping:')"
	# jobpoold(8): the socket file stays until the exit, so a client connecting
	# during the drain is told ERR shutdown rather than "No such file".
	jp_eq "$sig: the socket file stays during the drain" "socket_file: there" \
		"$(printf '%s\n' "$out" | grep '^socket_file:')"
	jp_eq "$sig: a new connection during the drain is accepted" \
		"new_connection: accepted" "$(printf '%s\n' "$out" | grep '^new_connection:')"
	jp_eq "$sig: SUBMIT on a new connection gets ERR shutdown" \
		"new_submit: ERR shutdown the daemon is shutting down" \
		"$(printf '%s\n' "$out" | grep '^new_submit:')"
	jp_eq "$sig: PING on a new connection is answered" "new_ping: OK pong" \
		"$(printf '%s\n' "$out" | grep '^new_ping:')"
	jp_eq "$sig: SUBMIT on an open connection gets ERR shutdown" \
		"probe_submit: ERR shutdown the daemon is shutting down" \
		"$(printf '%s\n' "$out" | grep '^probe_submit:')"
	jp_eq "$sig: other requests on an open connection are answered" \
		"probe_ping: OK pong" "$(printf '%s\n' "$out" | grep '^probe_ping:')"
	jp_eq "$sig: every job gets its RESULT" \
"result: delayed cancelled daemon is shutting down
result: queued0 cancelled daemon is shutting down
result: queued1 cancelled daemon is shutting down
result: queued2 cancelled daemon is shutting down
result: running0 ok 1000
result: running1 ok 1000" "$(printf '%s\n' "$out" | grep '^result:' | sort)"
	jp_eq "$sig: nothing more, then the daemon closes the connection" \
		"jobs_connection: closed" \
		"$(printf '%s\n' "$out" | grep -E '^(extra|error|jobs_connection):')"
	if [ "$dt" -lt 5000 ]; then jp_pass "$sig: stopped in $dt ms, before shutdown_timeout"
	else jp_fail "$sig: took $dt ms to stop"; fi
	log=$(newlog)
	jp_match "$sig: the log says why it stops" "notice: $sig: shutting down" "$log"
	jp_eq "$sig: no worker died unexpectedly" "" \
		"$(printf '%s\n' "$log" | grep -E 'unexpectedly|died while|\(TERM\)|KILL')"
done

# ----- the default batching (batch = 64): batches in flight, long jobs, SIGTERM -----
# Two 1.5 s jobs run on two of four workers; 50,000 short jobs go through the other two
# in batches. SIGTERM once a worker holds a batch: every job accepted gets one RESULT
# (the long ones ok, the short ones ok or cancelled), what came after the signal gets ERR
# shutdown, and the daemon exits 0.
start "batched" 'queues = ( { name = "mixed"; handler = "sleep"; workers = 4; } );
shutdown_timeout = 10;
kill_timeout = 2;'
out=$(badclient mixshutdown "$JP_SOCK" "$DPID" mixed 50000 2); rc=$?
jp_eq "batched: the client scenario ran" 0 "$rc"
stopped "batched" 20
printf '%s\n' "$out" | sed 's/^/batched: /'
jp_match "batched: a worker held a batch at the signal" '^at_signal: batch in flight: yes ' "$out"
jp_match "batched: every job accepted gets exactly one RESULT" \
	'^jobs: ([0-9]+), results: \1, duplicates: 0, missing: 0$' "$out"
outcomes=$(printf '%s\n' "$out" | sed -n 's/^outcomes: //p')
jp_match "batched: the long jobs finish ok" '(^| )long:ok=2( |$)' "$outcomes"
jp_eq "batched: the short jobs end ok or cancelled, nothing else" "" \
	"$(printf '%s\n' $outcomes | grep -v -E '^(long:ok|short:ok|short:cancelled)=')"
jp_eq "batched: SUBMITs after the signal get ERR shutdown" "" \
	"$(printf '%s\n' "$out" | grep '^short jobs refused: ' | grep -v ' x ERR shutdown the daemon is shutting down$')"
jp_eq "batched: then the daemon closes the connection" "jobs_connection: closed" \
	"$(printf '%s\n' "$out" | grep -E '^(extra|error|jobs_connection):')"
log=$(newlog)
jp_eq "batched: no worker died unexpectedly" "" \
	"$(printf '%s\n' "$log" | grep -E 'unexpectedly|died while|KILL')"

# ----- a job longer than shutdown_timeout is cancelled; the waiter hears so -----
CONF='queues = ( { name = "sleep"; handler = "sleep"; workers = 1; batch = 1; grace = 0.5; } );
shutdown_timeout = 1;
kill_timeout = 1;'
start "long job" "$CONF"
printf '10000' | badclient submit "$JP_SOCK" sleep >"$JP_TMP/long.out" 2>"$JP_TMP/long.hdr" &
sub=$!
BG="$BG $sub"
w=$(busy_worker sleep)
jp_match "long job: it runs" '^[0-9]+$' "$w"
t0=$(now_ms)
kill -TERM "$DPID"
wait "$sub"; rc=$?
BG=
dt=$(( $(now_ms) - t0 ))
stopped "long job" 10
jp_eq "long job: the waiting client's exit status" 0 "$rc"
jp_match "long job: the waiter gets RESULT cancelled" '^RESULT [0-9]+ cancelled [1-9][0-9]*$' \
	"$(cat "$JP_TMP/long.hdr")"
jp_eq "long job: the message says it was cancelled at shutdown and cleanup ran" \
	"cancelled while running, at shutdown: sleep interrupted; cleanup ran (0 hooks)" \
	"$(cat "$JP_TMP/long.out")"
if [ "$dt" -ge 900 ] && [ "$dt" -lt 3000 ]; then
	jp_pass "long job: answered $dt ms after SIGTERM (shutdown_timeout 1 s)"
else
	jp_fail "long job: answered $dt ms after SIGTERM (want about 1000)"
fi
log=$(newlog)
jp_match "long job: the log says the job outlived shutdown_timeout" \
	'shutdown: jobs still running after 1000 ms; cancelling them' "$log"

# ----- a worker that does not stop (stopped) is killed after the grace period -----
start "stuck worker" "$CONF"
printf '10000' | badclient submit "$JP_SOCK" sleep >"$JP_TMP/stuck.out" 2>"$JP_TMP/stuck.hdr" &
sub=$!
BG="$BG $sub"
w=$(busy_worker sleep)
jp_match "stuck worker: the job runs" '^[0-9]+$' "$w"
# A stopped process cannot see its cancellation; only KILL ends it.
kill -STOP "$w"
STOPPED=$w
t0=$(now_ms)
kill -TERM "$DPID"
wait "$sub"; rc=$?
BG=
dt=$(( $(now_ms) - t0 ))
stopped "stuck worker" 10
STOPPED=
jp_eq "stuck worker: the waiting client's exit status" 0 "$rc"
jp_match "stuck worker: the waiter gets RESULT cancelled" '^RESULT [0-9]+ cancelled [1-9][0-9]*$' \
	"$(cat "$JP_TMP/stuck.hdr")"
jp_eq "stuck worker: the message says the worker was killed after the grace period" \
	"cancelled while running, at shutdown: the handler did not stop within the grace period (500 ms); worker $w was killed, cleanup did not finish" \
	"$(cat "$JP_TMP/stuck.out")"
if [ "$dt" -ge 2000 ] && [ "$dt" -lt 4500 ]; then
	jp_pass "stuck worker: answered $dt ms after SIGTERM (1 s + grace 0.5 s + 1 s to report)"
else
	jp_fail "stuck worker: answered $dt ms after SIGTERM (want about 2500)"
fi
# The kill comes after the grace period and the second to report: the log says 1500 ms.
jp_match "stuck worker: the log says it was killed" \
	'still running 1500 ms after it was asked to stop \(grace 500 ms, then 1000 ms to report\); killing worker' "$(newlog)"
if kill -0 "$w" 2>/dev/null; then jp_fail "stuck worker: $w is still there"
else jp_pass "stuck worker: the worker is gone"; fi

# ----- a second signal stops the workers at once -----
CONF='queues = ( { name = "sleep"; handler = "sleep"; workers = 1; batch = 1; } );
shutdown_timeout = 30;
kill_timeout = 2;'
start "second signal" "$CONF"
printf '10000' | badclient submit "$JP_SOCK" sleep >"$JP_TMP/two.out" 2>"$JP_TMP/two.hdr" &
sub=$!
BG="$BG $sub"
w=$(busy_worker sleep)
jp_match "second signal: the job runs" '^[0-9]+$' "$w"
t0=$(now_ms)
kill -TERM "$DPID"
sleep 0.2
kill -INT "$DPID"
wait "$sub"; rc=$?
BG=
dt=$(( $(now_ms) - t0 ))
stopped "second signal" 10
jp_match "second signal: the waiter gets RESULT failed" '^RESULT [0-9]+ failed ' \
	"$(cat "$JP_TMP/two.hdr")"
if [ "$dt" -lt 2000 ]; then jp_pass "second signal: answered $dt ms after the first"
else jp_fail "second signal: answered only $dt ms after the first"; fi
jp_match "second signal: the log says so" 'SIGINT again: stopping workers now' "$(newlog)"

# ----- a producer held on a full queue gets ERR shutdown for what was held back -----
CONF='queues = ( { name = "held"; handler = "sleep"; workers = 1; batch = 1; max_jobs = 2; } );
shutdown_timeout = 1;
kill_timeout = 1;'
start "held producer" "$CONF"
first=$(jp_ctl submit -q held 5000)
job_running() { printf 'STATUS %s\n' "$1" | raw | grep -q 'state=running'; }
jp_until 5 job_running "$first"
printf 'SUBMIT held 2 wait\n10\nSUBMIT held 2 wait\n10\nSUBMIT held 2 wait\n10\nPING\n' |
	raw >"$JP_TMP/held.out" &
sub=$!
BG="$BG $sub"
jp_eq_until "held producer: blocked before the signal" 1 5 jp_stat queue held blocked
kill -TERM "$DPID"
wait "$sub"; rc=$?
BG=
stopped "held producer" 10
jp_eq "held producer: the client is answered and closed" 0 "$rc"
jp_eq "held producer: queued jobs cancelled, the held SUBMIT refused" \
"ERR shutdown the daemon is shutting down
OK *
OK *
OK pong
RESULT * cancelled 23
RESULT * cancelled 23
daemon is shutting down
daemon is shutting down" "$(sed 's/[0-9][0-9]*/*/' "$JP_TMP/held.out" | sort)"

# ----- a client that never reads its answers does not hold the exit up for long -----
CONF='queues = ( { name = "echo"; handler = "echo"; workers = 1; } );
max_output = 65536;'
start "deaf client" "$CONF"
# Without wait: only OKs pile up, so the daemon holds them (stops reading) and never
# reaches 4 x max_output, past which it would close the connection. With wait, the
# results of the jobs it took could go past that (on a loaded machine they did).
python3 "$BADCLIENT_PY" flood "$JP_SOCK" echo 200000 "" >"$JP_TMP/flood.out" 2>&1 &
flood=$!
BG="$BG $flood"
jp_until 5 grep -q '^flood:' "$JP_TMP/flood.out"
jp_match "deaf client: stuck with unread answers" '^flood: sent [0-9]+ of 200000 requests$' \
	"$(cat "$JP_TMP/flood.out")"
t0=$(now_ms)
kill -TERM "$DPID"
stopped "deaf client" 10
dt=$(( $(now_ms) - t0 ))
kill "$flood" 2>/dev/null
wait "$flood" 2>/dev/null
BG=
if [ "$dt" -lt 5000 ]; then jp_pass "deaf client: the daemon stopped in $dt ms anyway"
else jp_fail "deaf client: the daemon took $dt ms to stop"; fi
jp_match "deaf client: the log says so" 'shutdown: some clients did not read their answers' \
	"$(newlog)"

jp_done
