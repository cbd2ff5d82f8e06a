#!/usr/bin/env bash
# it_notify.sh: the systemd notify protocol, against a fake $NOTIFY_SOCKET
# (tests/notify_listener.py). The exact sequence: READY=1 once the socket answers and
# every worker is idle (checked by a client the moment READY=1 arrives), STATUS= kept
# current, WATCHDOG=1 at half of $WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC= then
# READY=1 around a good reload and around a broken one (which leaves the daemon running
# and logs why with file:line), STOPPING=1 then EXTEND_TIMEOUT_USEC= while a long job
# drains, and exit 0. Every datagram comes from the master. Then: $WATCHDOG_PID naming
# another process turns the pings off, and an abstract "@name" socket works; a queue
# whose handler cannot start is named by READY=1's STATUS= and by the start-up log
# line, and a notify socket that goes away is logged once, as a warning with the
# message; a handler that takes 1.5 s to start holds READY=1 back until it is up (but
# a reload that removes its queue before then does not), and
# without $WATCHDOG_USEC there is no WATCHDOG=1 at all.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 is missing"; exit 77; }
# tests/testplugin.c: "initfail" makes its init fail, "initsleep MS FILE" makes it slow.
PLUGIN="$JP_TMP/testplugin.so"
${CC:-cc} -shared -fPIC -I"$top_srcdir/lib" -o "$PLUGIN" "$top_srcdir/tests/testplugin.c" ||
	{ echo "cannot build the test plugin" >&2; exit 99; }
LISTENER_PY="$top_srcdir/tests/notify_listener.py"
NSOCK="$JP_TMP/notify.sock"
NOUT="$JP_TMP/notify.out"
LPID=
trap '[ -n "$LPID" ] && kill "$LPID" 2>/dev/null; jp_cleanup' EXIT

# listen SOCK: start the fake notify socket (recording into $NOUT), wait until it is bound.
listen() {
	: >"$NOUT"
	# Emptied here, not by the redirection below: that happens in the child, and the
	# loop could first see the last listener's "listening" and let the daemon send its
	# READY=1 to a socket nobody has bound yet.
	: >"$JP_TMP/listener.out"
	python3 "$LISTENER_PY" "$1" "$NOUT" --check "$JP_SOCK" >>"$JP_TMP/listener.out" 2>&1 &
	LPID=$!
	jp_until 5 grep -q listening "$JP_TMP/listener.out" && return 0
	echo "the notify listener did not start: $(cat "$JP_TMP/listener.out")" >&2
	exit 99
}
unlisten() { kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null; LPID=; }
# The datagrams so far, without the watchdog pings: "<fields>" per line.
msgs() { grep -v '^CHECK' "$NOUT" | grep -v ' WATCHDOG=1$' | grep -v ' JPTEST_SYNC=' | cut -d' ' -f3-; }
# notify_sync: once every datagram sent to $NSOCK so far is in $NOUT. A datagram
# socket keeps order, so a marker of our own is written after all of them; reading
# the file once after a sleep would race the listener.
notify_sync() {
	local mark="JPTEST_SYNC=$$.$RANDOM"
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(sys.argv[2].encode(), sys.argv[1])' "$NSOCK" "$mark" || return 1
	jp_until 10 grep -q " $mark\$" "$NOUT"
}
# has_msg REGEX: a datagram (fields) matches.
has_msg() { msgs | grep -qE -- "$1"; }
count() { msgs | grep -cE -- "$1"; }
# CLOCK_MONOTONIC in ms, the listener's clock.
mono_ms() { python3 -c 'import time; print(int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000))'; }
# The daemon's log since line $1.
log_since() { tail -n +$(($1 + 1)) "$JP_LOG"; }
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
if jp_until 10 has_msg '^READY=1'; then jp_pass "READY=1 arrives"; else jp_fail "no READY=1"; fi
first=$(msgs | head -1)
jp_eq "the first message is READY=1 with the counts" \
	"READY=1|STATUS=queued 0, running 0/3, done 0, failed 0" "$first"
# The listener writes CHECK after READY=1's line, once its client is answered.
jp_eq_until "at READY=1 a client gets its PING answered and finds all 3 workers idle" \
	"CHECK ping=ok workers=3 idle=3 states=idle,idle,idle" 10 grep '^CHECK' "$NOUT"
pids=$(grep -v '^CHECK' "$NOUT" | cut -d' ' -f2 | sort -u | tr '\n' ' ')
jp_eq "every datagram comes from the master (SO_PASSCRED)" "$JP_DPID " "$pids"

# ----- STATUS= follows the counts, at most once a second, only when they change -----
for i in 1 2 3 4 5; do jp_ctl submit -w -q default "job $i" >/dev/null; done
if jp_until 5 has_msg '^STATUS=queued 0, running 0/3, done 5, failed 0$'; then
	jp_pass "STATUS= shows the 5 finished jobs"
else
	jp_fail "no STATUS= with done 5: $(msgs | tail -3 | tr '\n' ' ')"
fi
sleep 1.5
jp_eq "an unchanged STATUS= is not sent again" 1 "$(count '^STATUS=queued 0, running 0/3, done 5,')"
jp_ctl submit -w -q sleep --timeout 0.1 1000 >/dev/null 2>&1
if jp_until 5 has_msg '^STATUS=queued 0, running 0/3, done 5, failed 1$'; then
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
jp_until 5 has_msg '^READY=1\|STATUS=.*/4' || true
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
jp_until 2 has_msg '^READY=1' || true
jp_match "jobpoolctl reload: RELOADING=1, then READY=1" \
	'^RELOADING=1\|[^~]*MONOTONIC_USEC=[0-9]+~READY=1\|[^~]*~$' \
	"$(msgs | tail -n +$((before + 1)) | tr '\n' '~')"

# ----- a broken reload: RELOADING=1, READY=1, still running on the old config -----
printf 'socket = "%s";\nqueues = ( { name = "default"; handler = "echo"; workers = 1; } )\nbogus = ;\n' \
	"$JP_SOCK" >"$JP_TMP/jobpool.conf"
before=$(msgs | wc -l)
log0=$(wc -l <"$JP_LOG")
kill -HUP "$JP_DPID"
ready_since() { msgs | tail -n +$(($1 + 1)) | grep -q '^READY=1'; }
jp_until 10 ready_since "$before" || true
notify_sync
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
jp_until 5 jp_out_eq 1 stat_workers sleep busy
# The once-a-second STATUS= reports the running job first, so that no update of the
# counts from before the stop can come between the count taken here and the stop.
last_msg_has() { msgs | tail -1 | grep -q -- "$1"; }
jp_until 3 last_msg_has 'running 1/'
before=$(msgs | wc -l)
t0=$(date +%s%N)
jp_stop 20
t1=$(date +%s%N)
wait "$long"
jp_eq "the long job finished during the drain" 3000 "$(cat "$JP_TMP/long.out")"
echo "stop took $(( (t1 - t0) / 1000000 )) ms"
notify_sync || jp_fail "the notify listener did not catch up"
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
jp_until 10 has_msg '^READY=1' || true
sleep 0.7
jp_eq "abstract socket: READY=1 arrives" 1 "$(count '^READY=1')"
jp_eq "WATCHDOG_PID of another process: no WATCHDOG=1" 0 "$(grep -c ' WATCHDOG=1$' "$NOUT")"
jp_stop 20
unlisten

# ----- a queue whose handler cannot start: READY=1, STATUS= and the log say so -----
BADCONF="shutdown_timeout = 10;
queues = (
	{ name = \"default\"; handler = \"echo\"; workers = 2; },
	{ name = \"bad\"; handler = \"plugin:$PLUGIN initfail\"; workers = 1; }
);"
listen "$NSOCK"
log0=$(wc -l <"$JP_LOG")
NOTIFY_SOCKET="$NSOCK" WATCHDOG_USEC=200000 jp_start "$BADCONF"
jp_until 10 has_msg '^READY=1' || true
jp_eq "a failed queue: READY=1's STATUS= names it and counts only the live workers" \
	"READY=1|STATUS=queued 0, running 0/2, done 0, failed 0; queue bad failed" "$(msgs | head -1)"
jp_match "a failed queue: the start-up line names it, as a warning" \
	' warning: ready; 1 queue failed: bad$' "$(log_since "$log0")"
jp_ctl submit -w -q default one >/dev/null
if jp_until 5 has_msg '^STATUS=queued 0, running 0/2, done 1, failed 0; queue bad failed$'; then
	jp_pass "a failed queue: STATUS= keeps naming it as the counts change"
else
	jp_fail "no STATUS= with done 1 and the failed queue: $(msgs | tail -3 | tr '\n' ' ')"
fi

# ----- the notify socket goes away: one warning with the message, not one per ping -----
unlisten
sleep 1		# about 10 pings (every 100 ms) fail
jp_ctl submit -w -q default two >/dev/null
sleep 1.2	# and a STATUS= with done 2
jp_stop 20	# and STOPPING=1
warns=$(log_since "$log0" | grep 'notify: cannot send')
jp_eq "a vanished notify socket: logged once" 1 "$(printf '%s\n' "$warns" | grep -c .)"
jp_match "... as a warning, with the message and the error" \
	" warning: notify: cannot send \"(WATCHDOG=1|STATUS=queued [^\"]*)\" to $NSOCK: No such file or directory" \
	"$warns"

# ----- a handler that takes 1.5 s to start: READY=1 only once it is up -----
# And no $WATCHDOG_USEC at all: no WATCHDOG=1, ever.
unset WATCHDOG_USEC WATCHDOG_PID
SLOWCONF="queues = (
	{ name = \"default\"; handler = \"echo\"; workers = 2; },
	{ name = \"slow\"; handler = \"plugin:$PLUGIN initsleep 1500 $JP_TMP/init.done\"; workers = 1; }
);"
listen "$NSOCK"
log0=$(wc -l <"$JP_LOG")
t0=$(mono_ms)
NOTIFY_SOCKET="$NSOCK" jp_start "$SLOWCONF"
# (Unless this machine stalled past the slow init, nothing can have been sent yet.)
if [ $(($(mono_ms) - t0)) -lt 1200 ]; then
	jp_eq "slow init: the socket answers before READY=1, and nothing was sent yet" 0 \
		"$(msgs | grep -c .)"
fi
jp_until 10 has_msg '^READY=1' || true
ready=$(grep -v '^CHECK' "$NOUT" | grep ' READY=1' | head -1 | cut -d' ' -f1)
inited=$(cat "$JP_TMP/init.done" 2>/dev/null)
echo "slow init: its init ended $((inited - t0)) ms after the start, READY=1 came at $((ready - t0)) ms"
jp_eq "slow init: the first datagram is READY=1 with the counts" \
	"READY=1|STATUS=queued 0, running 0/3, done 0, failed 0" "$(msgs | head -1)"
if [ -n "$ready" ] && [ -n "$inited" ] && [ "$ready" -ge "$inited" ] &&
    [ $((ready - t0)) -ge 1500 ]; then
	jp_pass "slow init: READY=1 comes after the slow handler's init, 1.5 s or more in"
else
	jp_fail "slow init: READY=1 at '$ready', init done at '$inited', start at $t0"
fi
jp_eq "slow init: at READY=1 all 3 workers are idle, the slow one too" \
	"CHECK ping=ok workers=3 idle=3 states=idle,idle,idle" "$(grep '^CHECK' "$NOUT")"
jp_ctl submit -w -q slow ok >/dev/null
if jp_until 5 has_msg '^STATUS=queued 0, running 0/3, done 1, failed 0$'; then
	jp_pass "slow init: then STATUS= follows the counts"
else
	jp_fail "slow init: no STATUS= with done 1: $(msgs | tail -3 | tr '\n' ' ')"
fi
jp_eq "no \$WATCHDOG_USEC: not one WATCHDOG=1" 0 "$(grep -c ' WATCHDOG=1$' "$NOUT")"
jp_eq "no \$WATCHDOG_USEC: no watchdog timer" "" "$(log_since "$log0" | grep 'watchdog:')"
jp_stop 20
unlisten

# ----- a reload before start-up ends removes the queue start-up waits for -----
# READY=1 must still come, at the end of that reload, not after the 6 s init (it used to
# never come: start-up waited for a worker of a queue that no longer existed).
REMCONF="queues = (
	{ name = \"default\"; handler = \"echo\"; workers = 1; },
	{ name = \"slow\"; handler = \"plugin:$PLUGIN initsleep 6000 $JP_TMP/init2.done\"; workers = 1; }
);"
listen "$NSOCK"
t0=$(mono_ms)
NOTIFY_SOCKET="$NSOCK" jp_start "$REMCONF"
jp_config 'queues = ( { name = "default"; handler = "echo"; workers = 1; } );' >/dev/null
kill -HUP "$JP_DPID"
if jp_until 5 has_msg '^READY=1'; then
	ready=$(grep -v '^CHECK' "$NOUT" | grep ' READY=1' | head -1 | cut -d' ' -f1)
	jp_pass "a reload that removes the starting queue: READY=1 at $((ready - t0)) ms"
	if [ $((ready - t0)) -lt 5500 ]; then jp_pass "... before the removed queue's init would end"
	else jp_fail "... only after the removed queue's init (at $((ready - t0)) ms)"; fi
else
	jp_fail "a reload that removes the starting queue: no READY=1 within 5 s"
fi
jp_eq "... and jobs run" hi "$(jp_ctl submit -w -q default hi)"
jp_stop 20
unlisten

# ----- no $NOTIFY_SOCKET: nothing changes -----
jp_start "$CONF"
jp_eq "without NOTIFY_SOCKET it runs as before" "plain" "$(jp_ctl submit -w -q default plain)"
jp_stop 20

jp_done
