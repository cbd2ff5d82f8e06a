#!/usr/bin/env bash
# it_lifecycle_edges.sh: the edges of a job's lifecycle, as a user sees them.
#   - a fast job's result is not held behind a slow job sent in the same batch, and
#     with a timeout the fast jobs neither time out nor get their worker killed;
#   - a job cancelled while batched behind another ends "cancelled before it started",
#     with 0 attempts;
#   - a user cancel during a timeout's grace period is final: cancelled, not retried;
#   - STATUS says due_in_ms for a retry_wait job; `jobpoolctl status ID` says which
#     attempts are no longer kept;
#   - cleanup hooks run, last pushed first, when a handler fails (not only on cancel);
#     fini() runs when a worker exits (recycled, or at shutdown);
#   - cancelling a queued and a retry_wait job, `cancel ID1 ID2`, `retry --all`;
#   - an exec program's process group does not outlive its SIGKILLed worker, nor the
#     second SIGTERM of a shutdown;
#   - a running job of a queue a reload removed still runs after its worker is killed,
#     then the queue goes;
#   - a queue whose handler cannot start: its waiting jobs end dead with the reason,
#     RETRY refuses, a reload once it is fixed brings it back and RETRY works;
#   - the DEAD count follows dead_max;
#   - a crash-looping queue shows state backoff with the reason, with growing delays.
# Uses tests/testplugin.c, compiled here.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
command -v pgrep >/dev/null 2>&1 || { echo "pgrep is missing"; exit 77; }

T=$JP_TMP
# Every process of the exec programs here has this in its command line, and nothing
# else does (the daemon's is "-c $T/jobpool.conf").
MARK="$T/mark"
BG=
# The programs' processes, by pid: none should be left, but a failing test must not
# leave any either.
marked() { pgrep -f -- "$MARK-" | tr '\n' ' '; }
kill_marked() { local p; for p in $(marked); do kill -KILL "$p" 2>/dev/null; done; }
show_marked() {
	local p
	p=$(marked)
	[ -n "$p" ] && ps -o pid,ppid,pgid,stat,args -p "$(echo $p | tr ' ' ,)"
}
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; kill_marked; jp_cleanup' EXIT

PLUGIN="$T/testplugin.so"
${CC:-cc} -shared -fPIC -I"$top_srcdir/lib" -o "$PLUGIN" "$top_srcdir/tests/testplugin.c" ||
	{ echo "cannot build the test plugin"; exit 99; }

# A command that should end but does not (a regression) fails its check, not the run.
jp_ctl() { timeout -k 5 60 "$JOBPOOLCTL" "$@"; }
# start WHAT CONFIG: a daemon; LOG0 is where its part of the log starts.
start() {
	LOG0=0
	[ -e "$JP_LOG" ] && LOG0=$(wc -l <"$JP_LOG")
	echo "=== $1"
	jp_start "$2" -d
}
newlog() { tail -n +$((LOG0 + 1)) "$JP_LOG"; }
# status_of ID KEY: one key of `jobpoolctl status ID`.
status_of() { jp_ctl status "$1" | awk -F': ' -v k="$2" '$1 == k { print $2; exit }'; }
# A queue's column in `jobpoolctl status`, by its title.
q_col() {
	jp_ctl status | awk -v q="$1" -v c="$2" '
		$1 == "QUEUE" && !hdr { for (i = 1; i <= NF; i++) col[$i] = i; hdr = 1; next }
		hdr && $1 == q && NF >= col[c] { print $(col[c]); exit }'
}
# log_has REGEX: the daemon's part of the log matches.
log_has() { newlog | grep -qE -- "$1"; }
# A monotonic-enough clock in ms without forking (bash 5), else date.
clock_ms() {
	if [ -n "${EPOCHREALTIME:-}" ]; then
		local t=${EPOCHREALTIME/[.,]/}
		echo $((t / 1000))
	else
		now_ms
	fi
}
# stamp: each line of stdin prefixed with the time (ms) it arrived.
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "$(clock_ms)" "$l"; done; }

# The exec program: record its process group, then sleep in the foreground (its
# children carry the marker too: a copy of sleep under a marked name).
cp "$(command -v sleep)" "$MARK-sleep"
cat >"$MARK-fg.sh" <<'EOF'
#!/bin/sh
# $1: the marker. Payload: a tag.
read -r tag
echo $$ >"$1-pgid.$tag.tmp" && mv "$1-pgid.$tag.tmp" "$1-pgid.$tag"
"$1-sleep" 300
echo "not killed"
EOF
chmod +x "$MARK-fg.sh"

##########################################################################################
start "main" "
shutdown_timeout = 10;
queues = (
  { name = \"fast\"; handler = \"sleep\"; workers = 1; },
  { name = \"pair\"; handler = \"sleep\"; workers = 1; },
  { name = \"fastt\"; handler = \"sleep\"; workers = 1; timeout = 1; grace = 0.5;
    retries = 0; },
  { name = \"graced\"; handler = \"plugin:$PLUGIN\"; workers = 1; timeout = 0.3; grace = 5;
    retries = 2; backoff_base = 0.05; backoff_jitter = 0.0; },
  { name = \"due\"; handler = \"plugin:$PLUGIN\"; workers = 1; retries = 3;
    backoff_base = 10; backoff_jitter = 0.0; },
  { name = \"many\"; handler = \"plugin:$PLUGIN\"; workers = 1; retries = 10;
    backoff_base = 0.01; backoff_max = 0.01; backoff_jitter = 0.0; },
  { name = \"hooks\"; handler = \"plugin:$PLUGIN fini=$T/fini.hooks\"; workers = 1;
    retries = 0; grace = 5; },
  { name = \"recyc\"; handler = \"plugin:$PLUGIN fini=$T/fini.recyc\"; workers = 1;
    max_jobs_per_worker = 1; },
  { name = \"again\"; handler = \"plugin:$PLUGIN\"; workers = 1; retries = 0; },
  { name = \"cq\"; handler = \"sleep\"; workers = 1; batch = 1; },
  { name = \"exec\"; handler = \"exec:$MARK-fg.sh $MARK\"; workers = 1; retries = 0; }
);"

# ----- 1. a fast job's result is not held behind a slow one in the same batch -----
# Warm the service-time average so the queue batches, then 30 fast jobs and a slow one
# in one map: the fast results come at once, long before the slow one ends.
for q in fast fastt pair; do
	seq 300 | sed 's/.*/0/' | jp_ctl map -q "$q" >/dev/null ||
		jp_fail "$q: the 300 warm-up jobs did not all succeed"
done
{ for i in $(seq 30); do echo 0; done; echo 3000; } >"$T/batch.in"
t0=$(clock_ms)
jp_ctl map -q fast <"$T/batch.in" | stamp >"$T/batch.out"
n_fast=$(awk '$2 == "0"' "$T/batch.out" | wc -l)
jp_eq "batch: 30 fast results and the slow one" "30 1" \
	"$n_fast $(awk '$2 == "3000"' "$T/batch.out" | wc -l)"
jp_eq "batch: the slow result comes last" 3000 "$(tail -1 "$T/batch.out" | awk '{ print $2 }')"
last_fast=$(awk '$2 == "0" { t = $1 } END { print t - '"$t0"' }' "$T/batch.out")
slow=$(awk '$2 == "3000" { print $1 - '"$t0"' }' "$T/batch.out")
echo "batch: last fast result at $last_fast ms, the slow one at $slow ms"
if [ "${last_fast:-99999}" -le 1000 ]; then
	jp_pass "batch: all 30 fast results within 1 s of the start ($last_fast ms)"
else
	jp_fail "batch: the fast results took until $last_fast ms (the slow job ended at $slow ms)"
fi
if [ $(( ${slow:-0} - ${last_fast:-99999} )) -ge 1500 ]; then
	jp_pass "batch: the fast results came $((slow - last_fast)) ms before the slow one"
else
	jp_fail "batch: the fast results were held until $last_fast ms, the slow one came at $slow ms"
fi

# The same with timeout = 1 (grace 0.5 s): the slow job times out and stops; no fast job
# times out, no worker is killed.
w1=$(worker_pid fastt)
jp_ctl --json map -q fastt <"$T/batch.in" >"$T/batcht.out" 2>"$T/batcht.err"; rc=$?
jp_eq "batch + timeout: map says a job failed (the slow one timed out)" 1 "$rc"
jp_eq "batch + timeout: the 30 fast jobs succeed" 30 \
	"$(grep -c '"status":"ok"' "$T/batcht.out")"
jp_match "batch + timeout: only line 31, the slow job, timed out" \
	'^\{"line":31,"id":[0-9]+,"status":"timeout"' "$(grep -v '"status":"ok"' "$T/batcht.out")"
jp_eq "batch + timeout: nothing else failed" 1 "$(grep -vc '"status":"ok"' "$T/batcht.out")"
jp_eq "batch + timeout: no worker was killed" "" "$(newlog | grep 'killing worker')"
jp_eq "batch + timeout: the worker is the same" "$w1" "$(worker_pid fastt)"
jp_eq "batch + timeout: no fast job was retried or timed out (FAILED 1, the slow job)" \
	"1" "$(q_col fastt FAILED)"

# ----- 4. a job cancelled while batched behind another never starts -----
# Two jobs in one write to a warm queue (of short jobs only): its worker gets both.
# (socat, not badclient raw: it writes what it reads as it comes.)
printf 'SUBMIT pair 4 wait\n1500\nSUBMIT pair 1 wait\n0\n' |
	socat -t 20 - UNIX-CONNECT:"$JP_SOCK" >"$T/pair.out" 2>&1 &
pairc=$!
BG="$BG $pairc"
jp_until 10 eval '[ "$(grep -c "^OK " "$T/pair.out")" -ge 2 ]'
a=$(awk '$1 == "OK" { print $2 }' "$T/pair.out" | sed -n 1p)
b=$(awk '$1 == "OK" { print $2 }' "$T/pair.out" | sed -n 2p)
jp_match "batched: both jobs accepted" '^[0-9]+ [0-9]+$' "$a $b"
jp_eq "batched: the second is sent along with the first (state running)" \
	"running running" "$(status_of "$a" state) $(status_of "$b" state)"
jp_eq "batched: cancelling it says cancelling" "cancelling $b" "$(jp_ctl cancel "$b" 2>&1)"
out=$(jp_ctl wait "$b" 2>&1); rc=$?
jp_eq "batched: wait exits 1 (cancelled)" 1 "$rc"
jp_match "batched: it was cancelled before it started" \
	"cancelled.*cancelled before it started" "$out"
jp_eq "batched: its state is cancelled" cancelled "$(status_of "$b" state)"
jp_eq "batched: it made no attempt" 0 "$(status_of "$b" attempts)"
out=$(jp_ctl wait "$a" 2>&1); rc=$?
jp_eq "batched: the first job ran to the end" "0 1500" "$rc $out"
wait "$pairc"
jp_match "batched: the submitting connection got RESULT cancelled for it" \
	"RESULT $b cancelled " "$(cat "$T/pair.out")"

# ----- 3. a user cancel during a timeout's grace period is final -----
# The job ignores its cancel for 1.5 s; it times out at 0.3 s (grace 5 s, retries 2).
id=$(jp_ctl submit -q graced "ignore 1500 $T/graced.starts")
if jp_until 10 eval 'status_of "$id" cancelling | grep -q 1'; then
	jp_pass "grace: the job timed out and is being stopped (cancelling: 1)"
else
	jp_fail "grace: job $id never showed cancelling: $(jp_ctl status "$id")"
fi
jp_eq "grace: still running in its grace period" running "$(status_of "$id" state)"
jp_eq "grace: a user cancel now says cancelling" "cancelling $id" "$(jp_ctl cancel "$id" 2>&1)"
out=$(jp_ctl wait "$id" 2>&1); rc=$?
echo "grace: wait said: $out"
jp_eq "grace: wait exits 1" 1 "$rc"
jp_match "grace: the job ends cancelled" "cancelled" "$out"
jp_eq "grace: its state is cancelled (not retry_wait, not timeout)" cancelled \
	"$(status_of "$id" state)"
jp_eq "grace: one attempt" 1 "$(status_of "$id" attempts)"
sleep 0.3	# a retry would be due after 50 ms
jp_eq "grace: it never ran again" 1 "$(wc -l <"$T/graced.starts")"
jp_eq "grace: still cancelled, one attempt" "cancelled 1" \
	"$(status_of "$id" state) $(status_of "$id" attempts)"

# ----- 8. due_in_ms for a retry_wait job; attempts that are not kept -----
id=$(jp_ctl submit -q due "fail $T/due.times")
jp_until 10 jp_out_eq retry_wait status_of "$id" state || jp_fail "due: job $id is not in retry_wait: $(jp_ctl status "$id")"
due=$(status_of "$id" due_in_ms)
jp_match "due: status shows due_in_ms" '^[0-9]+$' "$due"
if [ -n "$due" ] && [ "$due" -gt 0 ] && [ "$due" -le 10000 ]; then
	jp_pass "due: due_in_ms = $due (backoff 10 s)"
else
	jp_fail "due: due_in_ms = '$due', want 1..10000"
fi
jp_eq "due: no due_in_ms for a finished job" "" "$(status_of "$a" due_in_ms)"
# 9: a retry_wait job is cancelled at once.
jp_eq "cancel retry_wait: cancelled at once" "cancelled $id" "$(jp_ctl cancel "$id" 2>&1)"
jp_eq "cancel retry_wait: its state" cancelled "$(status_of "$id" state)"
out=$(jp_ctl wait "$id" 2>&1); rc=$?
jp_eq "cancel retry_wait: wait exits 1" 1 "$rc"
jp_match "cancel retry_wait: the waiter hears cancelled" cancelled "$out"
jp_eq "cancel retry_wait: it ran once" 1 "$(wc -l <"$T/due.times")"

out=$(jp_ctl submit -w -q many "fail $T/many.times" 2>&1); rc=$?
jp_eq "history: a job failing 11 times ends failed" 1 "$rc"
id=$(jp_ctl dead -q many | awk 'NR == 2 { print $1 }')
jp_eq "history: it ran retries + 1 = 11 times" 11 "$(wc -l <"$T/many.times")"
st=$(jp_ctl status "$id")
jp_eq "history: attempts: 11" 11 "$(status_of "$id" attempts)"
jp_match "history: status says attempts 1-3 are not kept" \
	'^attempts 1-3: not kept \(the daemon keeps the last 8\)$' \
	"$(printf '%s\n' "$st" | grep '^attempts ')"
jp_eq "history: the 8 kept are attempts 4 to 11" "4 5 6 7 8 9 10 11 " \
	"$(printf '%s\n' "$st" | awk '/^attempt [0-9]+:/ { sub(":", "", $2); printf "%s ", $2 }')"
jp_eq "history: --json status says nothing of it in text" "" \
	"$(jp_ctl --json status "$id" | grep 'not kept')"

# ----- 9. cleanup hooks on failure, LIFO; dropped on success; fini at worker exit -----
out=$(jp_ctl submit -w -q hooks "hooks 3 $T/h.fail fail" 2>&1); rc=$?
jp_eq "hooks: the failing job fails" 1 "$rc"
jp_match "hooks: with its own error" 'hooks: failing on purpose' "$out"
jp_eq "hooks: its 3 hooks ran on failure, last pushed first" "hook 3
hook 2
hook 1" "$(cat "$T/h.fail" 2>/dev/null)"
out=$(jp_ctl submit -w -q hooks "hooks 2 $T/h.perm permanent" 2>&1); rc=$?
jp_eq "hooks: a permanent failure runs them too, LIFO" "1 hook 2
hook 1" "$rc $(cat "$T/h.perm" 2>/dev/null)"
out=$(jp_ctl submit -w -q hooks "hooks 2 $T/h.ok ok" 2>&1); rc=$?
jp_match "hooks: a successful job succeeds" '^ok [0-9]+$' "$out"
if [ -e "$T/h.ok" ]; then jp_fail "hooks: a successful job's hooks ran: $(cat "$T/h.ok")"
else jp_pass "hooks: a successful job's hooks are dropped without running"; fi
id=$(jp_ctl submit -q hooks "hooks 4 $T/h.cancel wait")
jp_until 10 jp_out_eq running status_of "$id" state || jp_fail "hooks: job $id does not run"
jp_eq "hooks: cancel says cancelling" "cancelling $id" "$(jp_ctl cancel "$id" 2>&1)"
out=$(jp_ctl wait "$id" 2>&1)
jp_match "hooks: cancelled: the result says 4 hooks ran" 'cleanup ran \(4 hooks\)' "$out"
jp_eq "hooks: cancelled: they ran last pushed first" "hook 4 hook 3 hook 2 hook 1 " \
	"$(tr '\n' ' ' <"$T/h.cancel" 2>/dev/null)"

p=$(jp_ctl submit -w -q recyc ok | awk '{ print $2 }')
jp_match "fini: the job ran on worker $p" '^[0-9]+$' "$p"
if jp_until 10 grep -qx "fini $p" "$T/fini.recyc"; then
	jp_pass "fini: the plugin's fini() ran when recycled worker $p exited"
else
	jp_fail "fini: no 'fini $p' in $T/fini.recyc: $(cat "$T/fini.recyc" 2>/dev/null)"
fi
HOOKS_WORKER=$(worker_pid hooks)

# ----- 9. cancel a queued job; cancel several ids at once -----
r=$(jp_ctl submit -q cq 20000)
jp_until 10 jp_out_eq running status_of "$r" state || jp_fail "cq: job $r does not run"
q1=$(jp_ctl submit -q cq 10)
q2=$(jp_ctl submit -q cq 10)
q3=$(jp_ctl submit -q cq 10)
jp_eq "cancel queued: the job waits" queued "$(status_of "$q1" state)"
jp_eq "cancel queued: cancelled at once" "cancelled $q1" "$(jp_ctl cancel "$q1" 2>&1)"
out=$(jp_ctl wait "$q1" 2>&1); rc=$?
jp_match "cancel queued: the waiter hears cancelled" "cancelled" "$out"
jp_eq "cancel queued: state cancelled, no attempt" "cancelled 0" \
	"$(status_of "$q1" state) $(status_of "$q1" attempts)"
out=$(jp_ctl cancel "$q3" 999999999 2>"$T/cancel.err"); rc=$?
jp_eq "cancel with an unknown id: the known one is cancelled" "cancelled $q3" "$out"
jp_eq "cancel with an unknown id: exit 1" 1 "$rc"
jp_match "cancel with an unknown id: it says which" 'cancel 999999999: notfound' \
	"$(cat "$T/cancel.err")"
out=$(jp_ctl cancel "$q2" "$r" 2>&1); rc=$?
jp_eq "cancel ID1 ID2: one line per job, exit 0" "0 cancelled $q2
cancelling $r" "$rc $out"
jp_match "cancel ID1 ID2: the running one ends cancelled" "cancelled while running" \
	"$(jp_ctl wait "$r" 2>&1)"
jp_eq "cancel ID1 ID2: both cancelled" "cancelled cancelled" \
	"$(status_of "$r" state) $(status_of "$q2" state)"

# ----- 9. retry --all -----
ids=
for i in 1 2 3; do
	jp_ctl submit -w -q again "failunless $T/again.flag" >/dev/null 2>&1
done
ids=$(jp_ctl dead -q again | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
jp_match "retry --all: three dead jobs on the queue" '^[0-9]+ [0-9]+ [0-9]+ $' "$ids"
others=$(jp_ctl dead | awk 'NR > 1 && $2 != "again"' | wc -l)
jp_match "retry --all: other queues have dead jobs too" '^[1-9]' "$others"
touch "$T/again.flag"
jp_eq "retry --all -q: says how many" "3 dead jobs queued again" \
	"$(jp_ctl retry --all -q again 2>&1)"
ok=0
for i in $ids; do jp_until 10 jp_out_eq done status_of "$i" state && ok=$((ok + 1)); done
jp_eq "retry --all -q: all three ran again and succeeded" 3 "$ok"
jp_eq "retry --all -q: none is dead now" "" "$(jp_ctl dead -q again)"
jp_eq "retry --all -q: the other queues' dead jobs stay" "$others" \
	"$(jp_ctl dead | awk 'NR > 1' | wc -l)"
jp_eq "retry --all: every dead job is queued again" "$others dead jobs queued again" \
	"$(jp_ctl retry --all 2>&1)"
jp_eq "retry --all -q: a queue with no dead job queues none" "0 dead jobs queued again" \
	"$(jp_ctl retry --all -q again 2>&1)"

# ----- 2. an exec program's process group does not outlive its killed worker -----
id=$(printf 'k1' | jp_ctl submit -q exec -)
jp_until 10 test -s "$MARK-pgid.k1" || jp_fail "exec kill: the program did not start"
jp_until 10 eval '[ "$(marked | wc -w)" -ge 2 ]'
jp_eq "exec kill: the program and its sleep run" 2 "$(marked | wc -w)"
w=$(worker_pid exec busy)
jp_match "exec kill: the worker is busy" '^[0-9]+$' "$w"
kill -KILL "$w"
if jp_until 10 eval '[ -z "$(marked)" ]'; then
	jp_pass "exec kill: nothing of the program is left after its worker was killed"
else
	jp_fail "exec kill: left behind: $(show_marked)"
fi
jp_until 10 log_has "queue exec: killed process group $(cat "$MARK-pgid.k1"), left behind by worker $w"
jp_match "exec kill: the log says the master killed the group" \
	"queue exec: killed process group $(cat "$MARK-pgid.k1"), left behind by worker $w" "$(newlog)"
out=$(jp_ctl wait "$id" 2>&1); rc=$?
jp_eq "exec kill: the job failed (retries = 0)" 1 "$rc"
jp_match "exec kill: its error says the worker died" "$w" "$out"
kill_marked

jp_stop
# fini at shutdown: the hooks queue's worker ran fini() as it exited.
jp_eq "fini: at shutdown the worker ran fini()" "fini $HOOKS_WORKER" \
	"$(grep -x "fini $HOOKS_WORKER" "$T/fini.hooks" 2>/dev/null)"

##########################################################################################
# ----- 2. the second SIGTERM of a shutdown leaves nothing of an exec program either -----
start "exec shutdown" "
shutdown_timeout = 30;
kill_timeout = 2;
queues = ( { name = \"exec\"; handler = \"exec:$MARK-fg.sh $MARK\"; workers = 1; retries = 0; } );"
id=$(printf 's1' | jp_ctl submit -q exec -)
jp_until 10 eval '[ "$(marked | wc -w)" -ge 2 ]'
jp_eq "exec shutdown: the program and its sleep run" 2 "$(marked | wc -w)"
kill -TERM "$JP_DPID"
jp_until 10 log_has 'SIGTERM: shutting down' || jp_fail "exec shutdown: no shutdown in the log"
sleep 0.2
jp_eq "exec shutdown: the first SIGTERM lets the program run" 2 "$(marked | wc -w)"
kill -TERM "$JP_DPID"
if ! jp_until 15 eval '! kill -0 "$JP_PID" 2>/dev/null'; then
	jp_fail "exec shutdown: the daemon does not exit 15 s after the second SIGTERM"
	kill -KILL "$JP_DPID"
fi
wait "$JP_PID"; rc=$?
JP_PID=
jp_eq "exec shutdown: jobpoold exits 0" 0 "$rc"
jp_check_sanitizers
jp_match "exec shutdown: the log says the second signal stops the workers" \
	'SIGTERM again: stopping workers now' "$(newlog)"
if jp_until 10 eval '[ -z "$(marked)" ]'; then
	jp_pass "exec shutdown: nothing of the program is left"
else
	jp_fail "exec shutdown: left behind: $(show_marked)"
fi
kill_marked

##########################################################################################
# ----- 5. a removed queue's running job survives its worker's death -----
start "removed queue" "
queues = (
  { name = \"keep\"; handler = \"echo\"; workers = 1; },
  { name = \"gone\"; handler = \"sleep\"; workers = 1; retries = 2; backoff_base = 0.05;
    backoff_jitter = 0.0; }
);"
id=$(jp_ctl submit -q gone 1500)
jp_until 10 jp_out_eq running status_of "$id" state || jp_fail "removed: job $id does not run"
w=$(worker_pid gone busy)
jp_config 'queues = ( { name = "keep"; handler = "echo"; workers = 1; } );' >/dev/null
jp_eq "removed: reload" reloaded "$(jp_ctl reload 2>&1)"
jp_eq "removed: the queue is removing" removing "$(q_col gone STATE)"
kill -KILL "$w"
out=$(jp_ctl wait "$id" 2>&1); rc=$?
jp_eq "removed: the job still ends done, with its result" "0 1500" "$rc $out"
jp_eq "removed: it took a second attempt on a new worker" "done 2" \
	"$(status_of "$id" state) $(status_of "$id" attempts)"
jp_match "removed: the log says the worker died" "queue gone: worker $w exited unexpectedly" \
	"$(newlog)"
if jp_until 10 eval '! jp_ctl status | grep -q "^gone "'; then
	jp_pass "removed: then the queue is gone from status"
else
	jp_fail "removed: still in status: $(jp_ctl status | grep '^gone ')"
fi
jp_eq "removed: and so is its worker" "" "$(worker_pid gone)"
jp_eq "removed: the other queue works" "hi" "$(jp_ctl submit -w -q keep hi 2>&1)"
jp_stop

##########################################################################################
# ----- 6. a queue whose handler cannot start -----
# Its worker is recycled after each job; the flag file goes while the first job runs,
# so the next worker's init fails with jobs waiting.
touch "$T/flag"
start "failed queue" "
queues = ( { name = \"flagged\"; handler = \"plugin:$PLUGIN flag=$T/flag\"; workers = 1;
    max_jobs_per_worker = 1; retries = 0; } );"
# The first worker must have read the flag (it is READY) before the flag goes: jp_start
# returns once the master answers, which can be before a worker under load is up.
jp_until 10 eval '[ -n "$(worker_pid flagged idle)" ]' ||
	jp_fail "failed: the first worker never came up"
rm -f "$T/flag"
printf 'ok\nok\nok\n' | jp_ctl --json map -q flagged >"$T/flagged.out" 2>"$T/flagged.err"; rc=$?
jp_eq "failed: map ends (nothing waits forever), exit 1" 1 "$rc"
jp_eq "failed: the first job ran" 1 "$(grep -c '"status":"ok"' "$T/flagged.out")"
jp_eq "failed: the two waiting jobs failed" 2 "$(grep -c '"status":"failed"' "$T/flagged.out")"
jp_match "failed: their error gives the reason" \
	"queue flagged cannot run its handler: .*testplugin: flag file $T/flag is missing" \
	"$(grep '"status":"failed"' "$T/flagged.out" | head -1)"
dead=$(jp_ctl dead -q flagged | awk 'NR > 1 { print $1 }' | tr '\n' ' ')
jp_match "failed: both are dead" '^[0-9]+ [0-9]+ $' "$dead"
set -- $dead
d1=${1:-0} d2=${2:-0}
jp_eq "failed: status says dead" dead "$(status_of "$d1" state)"
jp_eq "failed: the queue's state" failed "$(q_col flagged STATE)"
jp_match "failed: status gives the reason" \
	"^queue flagged: failed: .*flag file $T/flag is missing" "$(jp_ctl status | grep '^queue flagged:')"
jp_match "failed: the log says the jobs were made dead" \
	'queue flagged: 2 waiting jobs made dead' "$(newlog)"
out=$(jp_ctl retry "$d1" 2>&1); rc=$?
jp_eq "failed: retry refuses while the queue is failed (exit 1)" 1 "$rc"
jp_match "failed: and says why" "cannot be retried: its queue's handler cannot start" "$out"
jp_eq "failed: the job is still dead" dead "$(status_of "$d1" state)"
touch "$T/flag"
jp_eq "failed: reload without a config change" reloaded "$(jp_ctl reload 2>&1)"
if jp_until 10 eval '[ "$(q_col flagged STATE)" = running ] && [ -n "$(worker_pid flagged idle)" ]'; then
	jp_pass "failed: the reload brought the queue back (running, a worker idle)"
else
	jp_fail "failed: after the reload: $(jp_ctl status)"
fi
jp_eq "failed: now retry works" "queued $d1" "$(jp_ctl retry "$d1" 2>&1)"
out=$(jp_ctl wait "$d1" 2>&1); rc=$?
jp_match "failed: the retried job succeeds" '^ok [0-9]+$' "$out"
jp_eq "failed: its state is done" done "$(status_of "$d1" state)"
jp_eq "failed: retry --all takes the other" "1 dead job queued again" \
	"$(jp_ctl retry --all -q flagged 2>&1)"
jp_until 10 jp_out_eq done status_of "$d2" state && jp_pass "failed: the other one is done too" ||
	jp_fail "failed: job $d2: $(jp_ctl status "$d2")"
jp_stop

##########################################################################################
# ----- 7. the DEAD count follows dead_max -----
start "dead_max" "
dead_max = 2;
queues = ( { name = \"perm\"; handler = \"plugin:$PLUGIN\"; workers = 1; } );"
printf 'permanent\npermanent\npermanent\npermanent\n' | jp_ctl --json map -q perm >"$T/perm.out" 2>&1
jp_eq "dead_max: 4 permanent failures" 4 "$(grep -c '"status":"failed"' "$T/perm.out")"
jp_eq "dead_max: jobpoolctl dead lists 2" 2 "$(jp_ctl dead | awk 'NR > 1' | wc -l)"
jp_eq "dead_max: status's DEAD says 2" 2 "$(q_col perm DEAD)"
jp_eq "dead_max: FAILED counts all 4" 4 "$(q_col perm FAILED)"
jp_eq "dead_max: the two dropped are logged" 2 "$(newlog | grep -c 'dropped: more than dead_max (2)')"
last2=$(grep -o '"id":[0-9]*' "$T/perm.out" | cut -d: -f2 | sort -n | tail -2 | tr '\n' ' ')
jp_eq "dead_max: the newest two are kept" "$last2" \
	"$(jp_ctl dead | awk 'NR > 1 { print $1 }' | sort -n | tr '\n' ' ')"
jp_eq "dead_max: retry --all queues those 2" "2 dead jobs queued again" "$(jp_ctl retry --all 2>&1)"
jp_until 10 eval '[ "$(q_col perm DEAD)" = 2 ] && [ "$(q_col perm FAILED)" = 6 ]'
jp_eq "dead_max: dead again, DEAD still 2" "2 6" "$(q_col perm DEAD) $(q_col perm FAILED)"
jp_stop

##########################################################################################
# ----- 10. crash-loop protection -----
start "crash loop" "
queues = (
  { name = \"ok\"; handler = \"echo\"; workers = 1; },
  { name = \"crashy\"; handler = \"plugin:$PLUGIN abort\"; workers = 1; }
);"
# Between two starts: the state and, under the table, why.
crashy_status() {
	st=$(jp_ctl status)
	[ "$(printf '%s\n' "$st" | awk '$1 == "crashy" { print $2; exit }')" = backoff ]
}
if jp_until 15 crashy_status; then
	jp_pass "crash loop: status shows the queue in backoff"
else
	jp_fail "crash loop: the queue's state: $(q_col crashy STATE)"
fi
jp_match "crash loop: status gives the reason" \
	'^queue crashy: backoff: workers keep dying young \([0-9]+ in a row; next start in [0-9]+ ms\); last: worker [0-9]+ killed by signal 6' \
	"$(printf '%s\n' "$st" | grep '^queue crashy:')"
jp_until 20 eval '[ "$(newlog | grep -c "queue crashy: workers keep dying young")" -ge 4 ]'
delays=$(newlog | sed -n 's/.*queue crashy: workers keep dying young ([0-9]* in a row); next start in \([0-9]*\) ms.*/\1/p' |
	head -4 | tr '\n' ' ')
echo "crash loop: delays $delays"
jp_match "crash loop: four restarts delayed" '^[0-9]+ [0-9]+ [0-9]+ [0-9]+ $' "$delays"
grow=$(echo "$delays" | awk '{ for (i = 2; i <= NF; i++) if ($i <= $(i - 1)) { print "no"; exit } print "yes" }')
jp_eq "crash loop: each delay is longer than the one before ($delays)" yes "$grow"
jp_eq "crash loop: the other queue works" "hi" "$(jp_ctl submit -w -q ok hi 2>&1)"
jp_stop

jp_done
