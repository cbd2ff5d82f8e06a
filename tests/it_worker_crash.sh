#!/bin/bash
# it_worker_crash.sh: workers killed under the daemon's feet. A job whose worker is
# killed mid-run is retried and completes (or, with retries = 0, fails with a message
# naming the worker); the worker is replaced; the log names the dead worker's pid and
# signal; workers killed again and again (also during a stream of jobs) leave the
# daemon serving, with every job answered; every worker, first or replacement, holds
# only fds 0-4 and no blocked or ignored signal.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

# poll_pid QUEUE STATE [NOT]: wait (up to 10 s) for a worker of QUEUE in STATE whose pid
# is not NOT; print its pid.
poll_pid() { jp_until 10 jp_out_match '^[0-9]+$' other_pid "$@" && echo "$JP_UNTIL_OUT"; }
other_pid() { local p; p=$(worker_pid "$1" "$2"); [ "$p" != "${3:-}" ] && echo "$p"; }

jp_start 'queues = (
	{ name = "slow"; handler = "sleep"; workers = 1; batch = 1; retries = 3; },
	{ name = "fragile"; handler = "sleep"; workers = 1; batch = 1; retries = 0; },
	{ name = "stream"; handler = "sleep"; workers = 2; retries = 10; }
);
shutdown_timeout = 1;
kill_timeout = 1;'

# ----- retries = 3: the job killed mid-run is run again and completes -----
# 3 s rather than 2: the kill must land while it runs, also on a loaded machine.
t0=$(now_ms)
printf '3000' | badclient submit "$JP_SOCK" slow >"$JP_TMP/slow.out" 2>"$JP_TMP/slow.hdr" &
sub=$!
BG="$BG $sub"
w1=$(poll_pid slow busy)
jp_match "slow: the busy worker's pid from STATS" '^[0-9]+$' "$w1"
sleep 0.3
kill -KILL "$w1"
killed_at=$(now_ms)
wait "$sub"; rc=$?
BG=
dt=$(( $(now_ms) - t0 ))
jp_eq "slow: the waiting client's exit status" 0 "$rc"
jp_match "slow: the job still completes ok" '^RESULT [0-9]+ ok 4$' "$(cat "$JP_TMP/slow.hdr")"
jp_eq "slow: with its output" 3000 "$(cat "$JP_TMP/slow.out")"
id=$(cut -d' ' -f2 "$JP_TMP/slow.hdr")
if [ "$(( $(now_ms) - killed_at ))" -ge 3000 ]; then
	jp_pass "slow: it ran again in full after the kill ($dt ms in all)"
else
	jp_fail "slow: done only $(( $(now_ms) - killed_at )) ms after its worker was killed"
fi
jp_match "slow: STATUS says done after 2 attempts" \
	"^OK id=$id queue=slow state=done prio=0 attempts=2" \
	"$(printf 'STATUS %s\n' "$id" | raw)"
w2=$(poll_pid slow idle "$w1")
jp_match "slow: a new worker replaces the dead one" '^[0-9]+$' "$w2"
jp_eq "slow: the dead worker is gone from STATS" "" \
	"$(badclient stats "$JP_SOCK" | grep "^worker slow pid=$w1 ")"
jp_eq "slow: STATS counts the death" 1 "$(jp_stat queue slow worker_deaths)"
jp_eq "slow: STATS counts the retry" 1 "$(jp_stat queue slow retried)"
jp_match "slow: the log names the dead worker's pid and signal" \
	"queue slow: worker $w1 exited unexpectedly: killed by signal 9 \\(Killed\\)" \
	"$(cat "$JP_LOG")"
jp_match "slow: the log names the job it was running" \
	"queue slow: job $id: worker $w1 died while running it \\(killed by signal 9 \\(Killed\\)\\); attempt 1 of 4" \
	"$(cat "$JP_LOG")"
out=$(jp_ctl submit -w -q slow 10); rc=$?
jp_eq "slow: the new worker runs jobs" "0 10" "$rc $out"

# ----- retries = 0: the killed job fails, and the message names the worker -----
printf '10000' | badclient submit "$JP_SOCK" fragile >"$JP_TMP/frag.out" 2>"$JP_TMP/frag.hdr" &
sub=$!
BG="$BG $sub"
f1=$(poll_pid fragile busy)
jp_match "fragile: the busy worker's pid" '^[0-9]+$' "$f1"
kill -KILL "$f1"
wait "$sub"; rc=$?
BG=
jp_eq "fragile: the waiting client's exit status" 0 "$rc"
jp_match "fragile: RESULT failed" '^RESULT [0-9]+ failed [1-9][0-9]*$' \
	"$(cat "$JP_TMP/frag.hdr")"
jp_eq "fragile: the message names the worker and the signal" \
	"worker $f1 died while running it: killed by signal 9 (Killed)" "$(cat "$JP_TMP/frag.out")"
id=$(cut -d' ' -f2 "$JP_TMP/frag.hdr")
# PROTOCOL.md: a job with no attempts left is dead.
jp_match "fragile: STATUS says dead after 1 attempt" \
	"^OK id=$id queue=fragile state=dead prio=0 attempts=1 " \
	"$(printf 'STATUS %s\n' "$id" | raw)"
f2=$(poll_pid fragile idle "$f1")
jp_match "fragile: a new worker replaces the dead one" '^[0-9]+$' "$f2"

# ----- killed again and again: replaced each time (with a backoff), still serving -----
# A worker that dies less than a second after its start counts as a crash loop.
young=0 last_kill=0
for sig in KILL TERM KILL INT KILL; do
	p=$(poll_pid slow idle)
	kill -"$sig" "$p"
	[ $(( $(now_ms) - last_kill )) -lt 900 ] && young=$((young + 1))
	last_kill=$(now_ms)
	n=$(poll_pid slow idle "$p")
	if [ -n "$n" ]; then
		jp_pass "slow: worker $p killed with SIG$sig, replaced by $n"
	else
		jp_fail "slow: worker $p killed with SIG$sig was not replaced"
	fi
	jp_eq "slow: the daemon answers after SIG$sig" "OK pong" "$(printf 'PING\n' | raw)"
done
jp_match "slow: the log names a worker killed by SIGTERM" \
	'queue slow: worker [0-9]+ exited unexpectedly: killed by signal 15' "$(cat "$JP_LOG")"
# Only if some worker surely died young (a slow machine may not get there in time).
if [ "$young" -gt 0 ]; then
	jp_match "slow: the log says workers keep dying" \
		'queue slow: workers keep dying young \([0-9]+ in a row\); next start in [0-9]+ ms' "$(cat "$JP_LOG")"
else
	echo "slow: no worker was killed within 0.9 s of the previous kill; backoff not checked"
fi
out=$(jp_ctl submit -w -q slow 20); rc=$?
jp_eq "slow: a job after the kills" "0 20" "$rc $out"

# ----- workers killed while a stream of jobs goes through: every job comes back -----
# 3000 jobs of 0 to 2 ms on two workers, batched; five kills while they run.
seq 1 3000 | awk '{ print $1 % 3 }' >"$JP_TMP/in"
jp_ctl map -k -q stream <"$JP_TMP/in" >"$JP_TMP/map.out" 2>"$JP_TMP/map.err" &
map=$!
BG="$BG $map"
kills=0
for i in $(seq 1 5); do
	sleep 0.1
	kill -0 "$map" 2>/dev/null || break
	p=$(worker_pid stream busy)
	[ -n "$p" ] || p=$(worker_pid stream)
	[ -n "$p" ] && kill -KILL "$p" && kills=$((kills + 1))
done
wait "$map"; rc=$?
BG=
echo "map: $kills workers killed mid-stream"
[ "$kills" -gt 0 ] || jp_fail "map: the stream ended before a worker could be killed"
jp_eq "map with workers killed under it: exit status" 0 "$rc"
if cmp -s "$JP_TMP/in" "$JP_TMP/map.out"; then
	jp_pass "map with workers killed under it: every line back, in order"
else
	jp_fail "map with workers killed under it: output differs: $(cmp "$JP_TMP/in" "$JP_TMP/map.out" 2>&1); $(head -3 "$JP_TMP/map.err")"
fi
idle_workers() { badclient stats "$JP_SOCK" | grep -c "^worker $1 .*state=idle"; }
jp_eq_until "stream: both workers back" 2 6 idle_workers stream
jp_eq "stream: nothing left queued or running" "0 0" \
	"$(jp_stat queue stream depth) $(jp_stat queue stream running)"
jp_match "stream: the killed jobs were retried" '^[1-9]' "$(jp_stat queue stream retried)"
jp_eq "stream: no job failed" 0 "$(jp_stat queue stream failed)"
out=$(jp_ctl status); rc=$?
jp_eq "jobpoolctl status after all the kills: exit status" 0 "$rc"

# ----- what a worker holds: fds 0-4 only, no signal blocked or ignored -----
# Every worker, those started with the daemon and those that replaced killed ones; idle,
# since a handler may block signals while it runs (sleep blocks SIGUSR1 outside ppoll).
# The flusher thread blocks every signal for itself; the mask that counts is the main
# thread's, which /proc/PID/status shows.
pids=$(badclient stats "$JP_SOCK" | awk '$1 == "worker" { sub(/^pid=/, "", $3); print $3 }')
jp_match "workers from STATS" '^[0-9]+' "$pids"
jp_eq "the workers are children of the daemon" "$(printf '%s\n' $pids | sort -n)" \
	"$(pgrep -P "$JP_DPID" | sort -n)"
# Under valgrind (JP_VALGRIND=1) the top 12 descriptors of the limit are valgrind's own.
wfds() {
	local top=2147483647
	[ "$JP_VALGRIND" = 1 ] &&
		top=$(( $(awk '/^Max open files/ { print $4 }' /proc/"$1"/limits) - 12 ))
	ls /proc/"$1"/fd | sort -n | awk -v t="$top" '$1 < t' | tr '\n' ' ' | sed 's/ $//'
}
for p in $pids; do
	jp_eq "worker $p: its descriptors are 0-4" "0 1 2 3 4" "$(wfds "$p")"
	jp_eq "worker $p: no signal blocked or ignored" "SigBlk: 0000000000000000 SigIgn: 0000000000000000" \
		"$(awk '$1 == "SigBlk:" || $1 == "SigIgn:" { printf "%s%s %s", sep, $1, $2; sep = " " }' /proc/"$p"/status)"
	echo "worker $p: $(ls /proc/"$p"/task | wc -l) threads"
done

jp_stop
jp_done
