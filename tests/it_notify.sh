#!/usr/bin/env bash
# it_notify.sh: the systemd notify protocol, against a fake $NOTIFY_SOCKET
# (tests/notify_listener.py). The exact sequence: READY=1 once the socket answers and
# every worker is idle (checked by a client the moment READY=1 arrives), STATUS= kept
# current, WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC= then
# READY=1 around a good reload and around a broken one (which leaves the daemon running
# and logs why with file:line), STOPPING=1 then EXTEND_TIMEOUT_USEC= while a long job
# drains, and exit 0. Every datagram comes from the master. Then: $WATCHDOG_PID naming
# another process turns the pings off, and an abstract "@name" socket works.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is missing"; exit 77; }
LISTENER_PY="$top_srcdir/tests/notify_listener.py"
NSOCK="$JP_TMP/notify.sock"
NOUT="$JP_TMP/notify.out"
LPID=
trap '[ -n "$LPID" ] && kill "$LPID" 2>/dev/null; jp_cleanup' EXIT

# listen SOCK: start the fake notify socket (recording into $NOUT), wait until it is bound.
listen() {
	: >"$NOUT"
	python3 "$LISTENER_PY" "$1" "$NOUT" --check "$JP_SOCK" >"$JP_TMP/listener.out" 2>&1 &
	LPID=$!
	for _ in $(seq 100); do grep -q listening "$JP_TMP/listener.out" && return 0; sleep 0.05; done
	echo "the notify listener did not start: $(cat "$JP_TMP/listener.out")" >&2
	exit 99
}
unlisten() { kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null; LPID=; }
# The datagrams so far, without the watchdog pings: "<fields>" per line.
msgs() { grep -v '^CHECK' "$NOUT" | grep -v ' WATCHDOG=1$' | cut -d' ' -f3-; }
# wait_for REGEX [SECS]: until a datagram (fields) matches; 1 on timeout.
wait_for() {
	local i
	for i in $(seq $(( ${2:-10} * 20 ))); do
		msgs | grep -qE -- "$1" && return 0
		sleep 0.05
	done
	return 1
}
count() { msgs | grep -cE -- "$1"; }
stat_workers() {
	printf 'STATS\n' | python3 "$top_srcdir/tests/badclient.py" raw -t 5 "$JP_SOCK" |
		awk -v q="$1" -v s="$2" '$1 == "worker" && $2 == q && $4 == "state=" s' | wc -l
}

CONF='shutdown_timeout = 10;
queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "sleep"; handler = "sleep"; workers = 1; batch = 1; retries = 0; }
);'

# ----- start: READY=1 once the socket answers and every worker is idle -----
listen "$NSOCK"
NOTIFY_SOCKET="$NSOCK" WATCHDOG_USEC=500000 jp_start "$CONF"
if wait_for '^READY=1' 10; then jp_pass "READY=1 arrives"; else jp_fail "no READY=1"; fi
first=$(msgs | head -1)
jp_eq "the first message is READY=1 with the counts" \
	"READY=1|STATUS=queued 0, running 0/3, done 0, failed 0" "$first"
jp_eq "at READY=1 a client gets its PING answered and finds all 3 workers idle" \
	"CHECK ping=ok workers=3 idle=3 states=idle,idle,idle" "$(grep '^CHECK' "$NOUT")"
pids=$(grep -v '^CHECK' "$NOUT" | cut -d' ' -f2 | sort -u | tr '\n' ' ')
jp_eq "every datagram comes from the master (SO_PASSCRED)" "$JP_DPID " "$pids"

# ----- STATUS= follows the counts, at most once a second, only when they change -----
for i in 1 2 3 4 5; do jp_ctl submit -w -q default "job $i" >/dev/null; done
if wait_for '^STATUS=queued 0, running 0/3, done 5, failed 0$' 5; then
	jp_pass "STATUS= shows the 5 finished jobs"
else
	jp_fail "no STATUS= with done 5: $(msgs | tail -3 | tr '\n' ' ')"
fi
sleep 1.5
jp_eq "an unchanged STATUS= is not sent again" 1 "$(count '^STATUS=queued 0, running 0/3, done 5,')"
jp_ctl submit -w -q sleep --timeout 0.1 1000 >/dev/null 2>&1
if wait_for '^STATUS=queued 0, running 0/3, done 5, failed 1$' 5; then
	jp_pass "STATUS= counts a job that failed for good once"
else
	jp_fail "no STATUS= with failed 1: $(msgs | tail -3 | tr '\n' ' ')"
fi

# ----- the watchdog: WATCHDOG=1 every 250 ms (half of 500 ms) -----
sleep 1
pings=$(grep ' WATCHDOG=1$' "$NOUT" | cut -d' ' -f1)
n=$(printf '%s\n' "$pings" | grep -c .)
gaps=$(printf '%s\n' "$pings" | awk 'NR > 1 { print $1 - p } { p = $1 }' | sort -n)
min=$(printf '%s\n' "$gaps" | head -1)
max=$(printf '%s\n' "$gaps" | tail -1)
echo "watchdog: $n pings, gaps $min..$max ms"
if [ "$n" -ge 8 ] && [ "$min" -ge 150 ] && [ "$max" -le 450 ]; then
	jp_pass "WATCHDOG=1 at about 250 ms, never missing the 500 ms deadline"
else
	jp_fail "watchdog pings: $n, gaps $min..$max ms (want ~250)"
fi

# ----- a good reload: RELOADING=1 with MONOTONIC_USEC=, then READY=1 -----
CONF2='shutdown_timeout = 10;
queues = (
	{ name = "default"; handler = "echo"; workers = 3; },
	{ name = "sleep"; handler = "sleep"; workers = 1; batch = 1; retries = 0; }
);'
jp_config "$CONF2" >/dev/null
before=$(msgs | wc -l)
kill -HUP "$JP_DPID"
wait_for '^READY=1\|STATUS=.*/4' 5 || true
new=$(msgs | tail -n +$((before + 1)) | tr '\n' '~')
jp_match "SIGHUP: RELOADING=1 with MONOTONIC_USEC=, then READY=1 with the new pool" \
	'^RELOADING=1\|STATUS=[^|~]*\|MONOTONIC_USEC=[0-9]+~READY=1\|STATUS=queued 0, running 0/4, done 5, failed 1~$' "$new"
# MONOTONIC_USEC is CLOCK_MONOTONIC now: within a second before the datagram arrived.
line=$(grep -v '^CHECK' "$NOUT" | grep 'RELOADING=1' | tail -1)
recv=$(echo "$line" | cut -d' ' -f1)
usec=$(echo "$line" | sed 's/.*MONOTONIC_USEC=\([0-9]*\).*/\1/')
d=$(( recv - usec / 1000 ))
if [ "$d" -ge 0 ] && [ "$d" -le 1000 ]; then
	jp_pass "MONOTONIC_USEC is the daemon's CLOCK_MONOTONIC (${d} ms before arrival)"
else
	jp_fail "MONOTONIC_USEC=$usec is $d ms off the listener's clock ($recv ms)"
fi
jp_eq "the reload took effect" 3 "$(stat_workers default idle)"

# The same through `jobpoolctl reload`.
before=$(msgs | wc -l)
jp_eq "jobpoolctl reload" "reloaded" "$(jp_ctl reload 2>&1 | sed 's/^OK //')"
wait_for '^READY=1' 2 || true
jp_match "jobpoolctl reload: RELOADING=1, then READY=1" \
	'^RELOADING=1\|[^~]*MONOTONIC_USEC=[0-9]+~READY=1\|[^~]*~$' \
	"$(msgs | tail -n +$((before + 1)) | tr '\n' '~')"

# ----- a broken reload: RELOADING=1, READY=1, still running on the old config -----
printf 'socket = "%s";\nqueues = ( { name = "default"; handler = "echo"; workers = 1; } )\nbogus = ;\n' \
	"$JP_SOCK" >"$JP_TMP/jobpool.conf"
before=$(msgs | wc -l)
log0=$(wc -l <"$JP_LOG")
kill -HUP "$JP_DPID"
sleep 0.5
new=$(msgs | tail -n +$((before + 1)) | grep -v '^STATUS=')
jp_eq "broken config: RELOADING=1 then READY=1, nothing else" "RELOADING=1 READY=1" \
	"$(printf '%s\n' "$new" | cut -d'|' -f1 | tr '\n' ' ' | sed 's/ $//')"
if kill -0 "$JP_DPID" 2>/dev/null && jp_ctl ping >/dev/null 2>&1; then
	jp_pass "broken config: the daemon keeps running"
else
	jp_fail "broken config: the daemon is gone"
fi
jp_match "broken config: the log says why, with file:line" \
	"$JP_TMP/jobpool.conf:[0-9]+: " "$(tail -n +$((log0 + 1)) "$JP_LOG")"
jp_eq "broken config: the old pool stays" 3 "$(stat_workers default idle)"
jp_eq "broken config: jobs still run" "still here" "$(jp_ctl submit -w -q default 'still here')"
jp_config "$CONF2" >/dev/null

# ----- stop: STOPPING=1, EXTEND_TIMEOUT_USEC= while a 3 s job drains, exit 0 -----
jp_ctl submit -w -q sleep 3000 >"$JP_TMP/long.out" 2>&1 &
long=$!
for _ in $(seq 100); do [ "$(stat_workers sleep busy)" = 1 ] && break; sleep 0.05; done
before=$(msgs | wc -l)
t0=$(date +%s%N)
jp_stop 20
t1=$(date +%s%N)
wait "$long"
jp_eq "the long job finished during the drain" 3000 "$(cat "$JP_TMP/long.out")"
echo "stop took $(( (t1 - t0) / 1000000 )) ms"
sleep 0.2
new=$(msgs | tail -n +$((before + 1)))
jp_match "STOPPING=1 first" '^STOPPING=1\|STATUS=stopping: ' "$(printf '%s\n' "$new" | head -1)"
n=$(printf '%s\n' "$new" | grep -c '^EXTEND_TIMEOUT_USEC=[1-9][0-9]*$')
if [ "$n" -ge 1 ]; then jp_pass "EXTEND_TIMEOUT_USEC= while draining ($n)"
else jp_fail "no EXTEND_TIMEOUT_USEC= during the drain: $(printf '%s' "$new" | tr '\n' ' ')"; fi
ext=$(grep -v '^CHECK' "$NOUT" | grep ' EXTEND_TIMEOUT_USEC=' | cut -d' ' -f1)
mingap=$(printf '%s\n' "$ext" | awk 'NR > 1 && (m == "" || $1 - p < m) { m = $1 - p } { p = $1 } END { print m == "" ? 1000 : m }')
if [ "$mingap" -ge 990 ]; then jp_pass "EXTEND_TIMEOUT_USEC= at most once a second"
else jp_fail "EXTEND_TIMEOUT_USEC= $mingap ms apart"; fi
jp_eq "no READY=1 or RELOADING=1 after STOPPING=1" 0 "$(printf '%s\n' "$new" | grep -cE '^(READY|RELOADING)=1')"
unlisten

# ----- $WATCHDOG_PID naming another process: no pings; an abstract socket works -----
ASOCK="@jobpool-test-notify-$$"
listen "$ASOCK"
NOTIFY_SOCKET="$ASOCK" WATCHDOG_USEC=200000 WATCHDOG_PID=1 jp_start "$CONF"
wait_for '^READY=1' 10 || true
sleep 0.7
jp_eq "abstract socket: READY=1 arrives" 1 "$(count '^READY=1')"
jp_eq "WATCHDOG_PID of another process: no WATCHDOG=1" 0 "$(grep -c ' WATCHDOG=1$' "$NOUT")"
jp_stop 20
unlisten

# ----- no $NOTIFY_SOCKET: nothing changes -----
jp_start "$CONF"
jp_eq "without NOTIFY_SOCKET it runs as before" "plain" "$(jp_ctl submit -w -q default plain)"
jp_stop 20

jp_done
