#!/usr/bin/env bash
# Reload under load: a producer keeps submitting while the configuration is reloaded
# 100 times, alternating valid changes (more workers, fewer, a new handler) and broken
# files; every job submitted completes exactly once. Also: a removed queue finishes its
# jobs and then goes, a handler change never kills a running job, and a broken file
# leaves the daemon on the old configuration with every error logged with file:line.
# Then: a reload to a handler that cannot start keeps the previous one (jobs go on), a
# later good one switches; a reload that raises max_payload lets larger jobs through
# with no worker dying; a handler change under a running job lets it finish on the old
# handler; a queue added by a reload runs jobs.
. "$top_srcdir/tests/lib.sh"

conf() {	# $1: workers, $2: handler of "work", $3: extra queues
	jp_config "shutdown_timeout = 10;
queues = (
  { name = \"work\"; handler = \"$2\"; workers = $1; max_jobs = 500; },
  { name = \"slow\"; handler = \"sleep\"; workers = 1; }${3:-}
);" >/dev/null
}

queue_blocked() {	# $1: queue; how many producers wait for room in it
	badclient stats "$JP_SOCK" | awk -v q="$1" '$1 == "queue" && $2 == q {
		for (i = 3; i <= NF; i++) if ($i ~ /^blocked=/) { sub(/^blocked=/, "", $i); print $i } }'
}

conf 2 echo ", { name = \"gone\"; handler = \"sleep\"; workers = 1; }"
timeout --foreground -s KILL "$JP_DAEMON_TIMEOUT" "$JOBPOOLD" -c "$JP_TMP/jobpool.conf" \
	>>"$JP_LOG" 2>&1 &
JP_PID=$!
jp_until 10 jp_ctl ping >/dev/null 2>&1
JP_DPID=$(pgrep -o -P "$JP_PID")

# A removed queue keeps its jobs until they are done; a handler change spares running jobs.
# Waited for live (-w): their results would be long pushed out of keep_results later.
jp_ctl submit -w -q gone 800 >"$JP_TMP/gone1" 2>&1 &
waiters=$!
jp_ctl submit -w -q gone 300 >"$JP_TMP/gone2" 2>&1 &
waiters="$waiters $!"
jp_ctl submit -w -q slow 1500 >"$JP_TMP/slow" 2>&1 &
waiters="$waiters $!"
sleep 0.3

# The producer: maps of 2,000 lines, one after another, each checked whole and in order.
seq 1 2000 >"$JP_TMP/in"
(
	n=0
	while [ ! -e "$JP_TMP/stop" ]; do
		n=$((n + 1))
		if ! jp_ctl map -k -q work <"$JP_TMP/in" >"$JP_TMP/out.$n" 2>"$JP_TMP/err.$n"; then
			echo "map $n failed: $(cat "$JP_TMP/err.$n")" >>"$JP_TMP/producer.errors"
		elif ! cmp -s "$JP_TMP/in" "$JP_TMP/out.$n"; then
			echo "map $n: output differs from input" >>"$JP_TMP/producer.errors"
		fi
		echo "$n" >"$JP_TMP/maps"
	done
) &
producer=$!

good=0 bad=0 i=0
handlers=("echo" "exec:/bin/cat")
while [ $i -lt 100 ]; do
	i=$((i + 1))
	if [ $((i % 4)) -eq 0 ]; then
		# Broken: a syntax error one time, an unknown key the next.
		if [ $((i % 8)) -eq 0 ]; then
			printf 'queues = ( { name = "work"; handler = "echo"; workers = 2 } \n' \
				>"$JP_TMP/jobpool.conf"
		else
			jp_config 'queues = ( { name = "work"; handler = "echo"; wokers = 2; } );' >/dev/null
		fi
		if jp_ctl reload >/dev/null 2>"$JP_TMP/reload.err"; then
			jp_fail "reload $i of a broken file succeeded"
		else
			bad=$((bad + 1))
		fi
	else
		conf $(( (i % 3) + 1 )) "${handlers[$((i / 4 % 2))]}"
		if jp_ctl reload >/dev/null 2>"$JP_TMP/reload.err"; then
			good=$((good + 1))
		else
			jp_fail "reload $i failed: $(cat "$JP_TMP/reload.err")"
		fi
	fi
	sleep 0.02
done
jp_eq "75 good reloads applied, 25 broken ones refused" "75 25" "$good $bad"
conf 2 echo
jp_ctl reload >/dev/null
# Let the producer run one more map on the settled configuration, then stop it.
m=$(cat "$JP_TMP/maps" 2>/dev/null || echo 0)
maps_past() { [ "$(cat "$JP_TMP/maps" 2>/dev/null || echo 0)" -gt "$1" ]; }
jp_until 30 maps_past $((m + 1))
touch "$JP_TMP/stop"
wait $producer
maps=$(cat "$JP_TMP/maps")
echo "producer: $maps maps of 2000 jobs during 100 reloads"
if [ -s "$JP_TMP/producer.errors" ]; then
	jp_fail "producer: $(head -3 "$JP_TMP/producer.errors")"
else
	jp_pass "every one of $((maps * 2000)) jobs completed exactly once, in order"
fi
stats=$(printf 'STATS\n' | socat -t 2 - UNIX-CONNECT:"$JP_SOCK" | grep '^queue work ')
sub=$(printf '%s' "$stats" | sed 's/.* submitted=\([0-9]*\).*/\1/')
done_=$(printf '%s' "$stats" | sed 's/.* done=\([0-9]*\) .*/\1/')
jp_eq "the queue counted as many done as submitted" "$sub" "$done_"
jp_eq "... and that is every job the producer sent" "$((maps * 2000))" "$sub"
# Exactly once, also inside the daemon: no job was run twice (retried after a worker
# it ran on was killed by a reload), none failed, no worker died.
for k in retried failed worker_deaths; do
	jp_eq "the reloads cost no job an attempt: $k" 0 \
		"$(printf '%s' "$stats" | sed "s/.* $k=\([0-9]*\).*/\1/")"
done
jp_eq "no worker died under a job" "" "$(grep 'died while running it' "$JP_LOG")"

jp_match "broken files are logged with file:line" \
	"$JP_TMP/jobpool.conf:[0-9]+: unknown setting 'wokers'" "$(cat "$JP_LOG")"
jp_match "and the daemon says it keeps the old configuration" \
	'reload failed: still running on the previous configuration' "$(cat "$JP_LOG")"

wait $waiters
jp_eq "the removed queue's jobs finished (1)" 800 "$(cat "$JP_TMP/gone1")"
jp_eq "the removed queue's jobs finished (2)" 300 "$(cat "$JP_TMP/gone2")"
jp_eq "the slow job was not killed by the reloads" 1500 "$(cat "$JP_TMP/slow")"
out=$(jp_ctl submit -q gone 1 2>&1)
jp_match "the removed queue takes no new jobs" "no queue 'gone'" "$out"
jp_until 5 eval '! jp_ctl status | grep -q "^gone "'
jp_eq "once drained, the removed queue is gone from status" "" "$(jp_ctl status | grep '^gone ')"
jp_eq "its worker exited" "" "$(printf 'STATS\n' | socat -t 2 - UNIX-CONNECT:"$JP_SOCK" | grep '^worker gone ')"
jp_match "rolling restarts were logged" 'restarting worker [0-9]+ for the new settings' "$(cat "$JP_LOG")"

jp_stop

# ===== a reload whose new handler cannot start keeps the previous one =====
# The example plugin, as libtool builds it for `make check` (as it_plugin.sh finds it).
SLOW=
for f in "$top_builddir/examples/.libs/slow_plugin.so" "$top_builddir/examples/slow_plugin.so"; do
	[ -f "$f" ] && { SLOW=$f; break; }
done
[ -n "$SLOW" ] || { echo "slow_plugin.so is not built (make check builds it)" >&2; exit 99; }
# queue_line QUEUE: the queue's row of `jobpoolctl status` (its first table's: the others
# start with its name too), blanks squeezed.
queue_line() { jp_ctl status | awk -v q="$1" '$1 == q { print; exit }' | tr -s ' '; }
# workers_in QUEUE STATE: how many of the queue's workers STATS shows in that state.
workers_in() { badclient stats "$JP_SOCK" | grep -c "^worker $1 .*state=$2"; }
# poll_log WHAT REGEX: up to 10 s for the log to have a line matching REGEX.
poll_log() { jp_ok_until "$1" 10 grep -qE -- "$2" "$JP_LOG"; }
log0=$(wc -l <"$JP_LOG")
newlog() { tail -n +$((log0 + 1)) "$JP_LOG"; }
jp_start 'queues = ( { name = "work"; handler = "echo"; workers = 2; } );
max_payload = 4096;'
jp_eq "before the reloads: a job runs on echo" hello "$(jp_ctl submit -w -q work hello)"

jp_config "queues = ( { name = \"work\"; handler = \"plugin:$SLOW initfail\"; workers = 2; } );
max_payload = 4096;" >/dev/null
out=$(jp_ctl reload 2>&1); rc=$?
jp_eq "reload to a handler whose init fails: the file itself is fine" "0" "$rc"
poll_log "reload to a broken handler: the log says it cannot start" \
	"queue work: the reloaded handler 'plugin:$SLOW initfail' cannot start: .*told to fail"
poll_log "reload to a broken handler: the log says it keeps the previous one" \
	"cannot start: .*; keeping the previous one \\('echo'\\)"
jp_match_until "reload to a broken handler: status shows the old handler, running" \
	'^work running echo 2 ' 10 queue_line work
out=$(for i in $(seq 1 20); do jp_ctl submit -w -q work "job $i" || echo "job $i failed"; done 2>&1)
jp_eq "reload to a broken handler: jobs still succeed on the old handler" \
	"$(for i in $(seq 1 20); do echo "job $i"; done)" "$out"
jp_eq "reload to a broken handler: no job failed" 0 \
	"$(badclient stats "$JP_SOCK" | awk '$1 == "queue" && $2 == "work"' | sed 's/.* failed=\([0-9]*\) .*/\1/')"
jp_eq_until "reload to a broken handler: two idle workers" 2 5 workers_in work idle
jp_eq "reload to a broken handler: the queue is not failed" "" \
	"$(badclient stats "$JP_SOCK" | grep '^queue work .*state=failed')"

# A later reload with a handler that works switches to it.
jp_config "queues = ( { name = \"work\"; handler = \"plugin:$SLOW\"; workers = 2; } );
max_payload = 4096;" >/dev/null
out=$(jp_ctl reload 2>&1); rc=$?
jp_eq "reload to a working plugin: exit status" 0 "$rc"
jp_match_until "reload to a working plugin: status shows it, running" \
	"^work running plugin:$SLOW 2 " 10 queue_line work
jp_until 5 jp_out_eq 2 workers_in work idle
out=$(for i in $(seq 1 10); do jp_ctl submit -w -q work 5 || echo "job $i failed"; done 2>&1 | sort | uniq -c | tr -s ' ')
jp_eq "reload to a working plugin: jobs run on the plugin" " 10 slept 5" "$out"

# ===== a reload that raises max_payload: larger jobs then go through =====
jp_config 'queues = ( { name = "work"; handler = "echo"; workers = 2; } );
max_payload = 4096;' >/dev/null
roll0=$(wc -l <"$JP_LOG")
jp_ctl reload >/dev/null
# The plugin's workers give way to echo's one at a time: wait until both are replaced
# and the new ones idle. Read once, the roll may still be going when max_payload is
# raised below, and a 10,000-byte job then lands on the plugin, which refuses it.
rolled_to_echo() {
	local st
	[ "$(tail -n +$((roll0 + 1)) "$JP_LOG" | grep -c 'queue work: restarting worker')" -ge 2 ] ||
		return 1
	st=$(badclient stats "$JP_SOCK")
	[ "$(printf '%s\n' "$st" | grep -c '^worker work .*state=idle')" = 2 ] &&
		! printf '%s\n' "$st" | grep -q '^worker work .*state=\(retiring\|starting\)'
}
jp_until 30 rolled_to_echo || jp_fail "reload to echo: the plugin's workers were not replaced"
head -c 10000 /dev/urandom >"$JP_TMP/p10k"
jp_ctl submit -w -q work - <"$JP_TMP/p10k" >/dev/null 2>"$JP_TMP/err"; rc=$?
jp_match "max_payload = 4096: a 10,000-byte job is refused" 'toolarge' "$(cat "$JP_TMP/err")"
jp_config 'queues = ( { name = "work"; handler = "echo"; workers = 2; } );
max_payload = 65536;' >/dev/null
out=$(jp_ctl reload 2>&1); rc=$?
jp_eq "reload to max_payload = 65536: exit status" 0 "$rc"
jp_match "reload to max_payload = 65536: the log says the workers restart" \
	'reload: max_payload 4096 -> 65536: restarting' "$(newlog)"
# At once (old workers may still be there) and again once the restart is over.
restarted() {
	[ "$(workers_in work idle)" = 2 ] &&
		! grep -q 'state=retiring\|state=starting' <(badclient stats "$JP_SOCK")
}
for when in "right after the reload" "after the restart"; do
	if [ "$when" = "after the restart" ]; then
		jp_until 10 restarted
	fi
	jp_ctl submit -w --raw -q work - <"$JP_TMP/p10k" >"$JP_TMP/p10k.out"; rc=$?
	jp_eq "max_payload raised, $when: a 10,000-byte echo job succeeds" 0 "$rc"
	if cmp -s "$JP_TMP/p10k" "$JP_TMP/p10k.out"; then jp_pass "max_payload raised, $when: its result is whole"
	else jp_fail "max_payload raised, $when: $(cmp "$JP_TMP/p10k" "$JP_TMP/p10k.out" 2>&1)"; fi
done
out=$(seq 1 200 | while read -r i; do head -c 10000 /dev/zero | tr '\0' "$((i % 10))"; echo; done |
	jp_ctl map -k -q work | awk '{ print length($0) }' | sort | uniq -c | tr -s ' ')
jp_eq "max_payload raised: a map of 200 lines of 10,000 bytes" " 200 10000" "$out"
jp_eq "max_payload raised: no worker died" "" "$(newlog | grep 'exited unexpectedly')"
jp_eq "max_payload raised: STATS counts no worker death" 0 \
	"$(badclient stats "$JP_SOCK" | awk '$1 == "queue" && $2 == "work"' | sed 's/.* worker_deaths=\([0-9]*\) .*/\1/')"

# ===== a handler change while the queue runs a long job; a queue added by reload =====
jp_config 'queues = ( { name = "work"; handler = "echo"; workers = 2; },
  { name = "roll"; handler = "sleep"; workers = 1; } );
max_payload = 65536;' >/dev/null
jp_ctl reload >/dev/null
jp_until 5 jp_out_eq 1 workers_in roll idle
jp_ctl submit -w -q roll 1500 >"$JP_TMP/roll" 2>&1 &
rollw=$!
jp_until 5 jp_out_eq 1 workers_in roll busy
old=$(badclient stats "$JP_SOCK" | sed -n 's/^worker roll pid=\([0-9]*\) .*/\1/p')
jp_config 'queues = ( { name = "work"; handler = "echo"; workers = 2; },
  { name = "roll"; handler = "exec:/bin/cat"; workers = 1; },
  { name = "added"; handler = "sha256"; workers = 1; } );
max_payload = 65536;' >/dev/null
jp_eq "reload changing roll's handler under a running job, adding a queue" reloaded \
	"$(jp_ctl reload 2>&1)"
wait $rollw; rc=$?
jp_eq "the job running on the old handler finished, not killed" "0 1500" "$rc $(cat "$JP_TMP/roll")"
jp_eq "... on its old worker" "" "$(newlog | grep "worker $old exited unexpectedly")"
jp_eq "then jobs run on the new handler" "hello" "$(jp_ctl submit -w -q roll hello)"
jp_eq "the added queue runs jobs" \
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" \
	"$(jp_ctl submit -w -q added hello)"
jp_match "the log says the queue was added" 'reload: queue added added: handler sha256, 1 worker$' "$(newlog)"

# A RELOAD pipelined behind a SUBMIT that waits for room. The reload that makes room lets
# that producer go on, and its RELOAD runs once the first one is done (it used to run
# inside the first, which then freed the configuration a second time: found by it_soak).
tight() {
	jp_config "queues = ( { name = \"work\"; handler = \"echo\"; workers = 2; },
  { name = \"roll\"; handler = \"exec:/bin/cat\"; workers = 1; },
  { name = \"added\"; handler = \"sha256\"; workers = 1; },
  { name = \"tight\"; handler = \"sleep\"; workers = 1; max_jobs = $1; } );
max_payload = 65536;" >/dev/null
}
tight 1
jp_eq "reload adding a queue that holds one waiting job" reloaded "$(jp_ctl reload 2>&1)"
jp_ctl submit -q tight 4000 >/dev/null	# runs (long enough for the steps below)
jp_ctl submit -q tight 10 >/dev/null	# waits: the queue is full
printf 'SUBMIT tight 2\n10\nRELOAD\n' | badclient raw "$JP_SOCK" -t 10 >"$JP_TMP/pipelined" &
pipelined=$!
jp_eq_until "the producer waits for room" 1 5 queue_blocked tight
tight 10
jp_eq "the reload that makes room" reloaded "$(jp_ctl reload 2>&1)"
wait $pipelined
jp_match "the producer's SUBMIT, then its own RELOAD, are answered" "^OK [0-9]+ OK reloaded$" \
	"$(tr '\n' ' ' <"$JP_TMP/pipelined" | sed 's/ $//')"
jp_eq "and the daemon still answers" pong "$(jp_ctl ping 2>&1 | awk '{ print $NF }')"

jp_stop
jp_done
