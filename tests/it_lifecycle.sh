#!/usr/bin/env bash
# Job lifecycle against the real daemon: retries with exponential backoff (the gaps are
# measured), dead jobs listed and retried, permanent errors not retried, a poison job
# quarantined while other jobs flow, max_running and rate held under load, workers
# recycled after N jobs and above max_worker_rss (never mid-job), a job that ignores
# cancellation killed after its grace period, and cancelling a running job.
. "$top_srcdir/tests/lib.sh"

PLUGIN="$JP_TMP/testplugin.so"
${CC:-cc} -shared -fPIC -I"$top_srcdir/lib" -o "$PLUGIN" "$top_srcdir/tests/testplugin.c" ||
	{ echo "cannot build the test plugin"; exit 99; }

jp_start "
shutdown_timeout = 5;
queues = (
  { name = \"flaky\"; handler = \"plugin:$PLUGIN\"; workers = 1; retries = 3;
    backoff_base = 0.2; backoff_max = 0.5; backoff_jitter = 0.0; },
  { name = \"poison\"; handler = \"plugin:$PLUGIN\"; workers = 2; retries = 10;
    poison_after = 2; backoff_base = 0.01; },
  { name = \"limited\"; handler = \"plugin:$PLUGIN\"; workers = 4; max_running = 2; },
  { name = \"rated\"; handler = \"plugin:$PLUGIN\"; workers = 4; rate = 20.0; burst = 1; },
  { name = \"recycled\"; handler = \"plugin:$PLUGIN\"; workers = 1; max_jobs_per_worker = 5; },
  { name = \"fat\"; handler = \"plugin:$PLUGIN\"; workers = 1; max_worker_rss = 134217728L; },
  { name = \"stubborn\"; handler = \"plugin:$PLUGIN\"; workers = 1; timeout = 0.3; grace = 0.5;
    retries = 0; },
  { name = \"sleep\"; handler = \"sleep\"; workers = 1; }
);"

status_of() { jp_ctl status "$1" | awk -F': ' -v k="$2" '$1 == k { print $2 }'; }

# --- retries with backoff: attempts at 0, +200, +400 (200*2), +500 (capped) ms -------
F="$JP_TMP/flaky.times"
out=$(jp_ctl submit -w -q flaky "fail $F" 2>&1); rc=$?
jp_eq "a job that always fails ends failed" 1 "$rc"
jp_match "its error is the handler's" 'failing on purpose' "$out"
jp_eq "it ran retries + 1 = 4 times" 4 "$(wc -l <"$F")"
gaps=$(awk 'NR > 1 { printf "%d ", $1 - prev } { prev = $1 }' "$F")
echo "backoff gaps (ms): $gaps (want 200 400 500)"
set -- $gaps
g1=${1:-0} g2=${2:-0}
for want in 200 400 500; do
	got=$1; shift
	if [ "$got" -lt $((want - 20)) ] || [ "$got" -gt $((want + 150)) ]; then
		jp_fail "backoff gap $got ms, want about $want ms"
	else
		jp_pass "backoff gap $got ms (want $want)"
	fi
done
# The doubling itself: whatever a slow machine adds to each gap, it adds to both.
if [ $((g2 - g1)) -ge 130 ] && [ $((g2 - g1)) -le 270 ]; then
	jp_pass "the second gap is about twice the first ($g1, $g2 ms)"
else
	jp_fail "the second gap is not twice the first ($g1, $g2 ms)"
fi
id=$(jp_ctl dead -q flaky | awk 'NR == 2 { print $1 }')
jp_match "the job is listed as dead" '^[0-9]+$' "$id"
jp_eq "its state is dead" dead "$(status_of "$id" state)"
jp_eq "with 4 attempts" 4 "$(status_of "$id" attempts)"
jp_eq "history shows every attempt" 4 "$(jp_ctl status "$id" | grep -c '^attempt ')"
: >"$F"
jp_eq "retry queues it again" "queued $id" "$(jp_ctl retry "$id")"
jp_until 6 jp_out_eq dead status_of "$id" state
jp_eq "retried: it ran 4 more times" 4 "$(wc -l <"$F")"
jp_eq "retry of a job that is not dead fails" 1 "$(jp_ctl retry 999999 >/dev/null 2>&1; echo $?)"

# --- a permanent error is not retried --------------------------------------------------
out=$(jp_ctl submit -w -q flaky permanent 2>&1)
pid=$(jp_ctl dead -q flaky | awk '$0 ~ /cannot work/ { print $1 }' | tail -1)
jp_eq "a permanent failure ran once" 1 "$(status_of "$pid" attempts)"

# --- a poison job is quarantined while other jobs keep flowing ------------------------
poison=$(jp_ctl submit -q poison crash)
seq 1 200 | sed 's/.*/ok/' | jp_ctl map -q poison >"$JP_TMP/poison.out" 2>&1; rc=$?
jp_eq "other jobs on the poison job's queue all succeed" "0 200" "$rc $(grep -c '^ok' "$JP_TMP/poison.out")"
out=$(jp_ctl wait "$poison" 2>&1)
jp_match "the poison job fails" 'failed' "$out"
jp_match "the dead list says it is a poison job" 'poison job: it killed 2 workers in a row' \
	"$(jp_ctl status "$poison"; jp_ctl dead -q poison)"
jp_eq "it was tried exactly poison_after times" 2 "$(status_of "$poison" attempts)"
# Two young deaths in a row put the queue in crash-loop backoff briefly; then it runs.
poison_line() { printf 'STATS\n' | socat -t 2 - UNIX-CONNECT:"$JP_SOCK" | grep '^queue poison'; }
jp_match_until "the queue runs again after its backoff" 'state=running' 5 poison_line

# --- max_running = 2 on a queue of 4 workers --------------------------------------------
R="$JP_TMP/limited.times"
for i in $(seq 12); do echo "run 150 $R"; done | jp_ctl map -q limited >/dev/null
peak=$(awk '{ print $1, 1; print $2, -1 }' "$R" | sort -n -k1,1 -k2,2n |
	awk '{ n += $2; if (n > m) m = n } END { print m }')
jp_eq "max_running = 2 holds: at most 2 jobs ran at once" 2 "$peak"

# --- rate = 20 jobs/s with burst 1 --------------------------------------------------------
R="$JP_TMP/rated.times"
t0=$(now_ms)
for i in $(seq 30); do echo "run 1 $R"; done | jp_ctl map -q rated >/dev/null
t1=$(now_ms)
span=$(awk 'NR == 1 { a = $1 } { b = $1 } END { print b - a }' "$R")
echo "rate: 30 starts spread over $span ms (29 intervals at 20/s = 1450 ms), map took $((t1 - t0)) ms"
if [ "$span" -ge 1300 ]; then jp_pass "rate holds: 30 starts take >= 1.3 s"; else jp_fail "rate not held: 30 starts in $span ms"; fi
max1s=$(awk '{ print $1 }' "$R" | awk '{ t[NR] = $1 } END { m = 0; for (i = 1; i <= NR; i++) { c = 0; for (j = i; j <= NR && t[j] - t[i] < 1000; j++) c++; if (c > m) m = c } print m }')
if [ "$max1s" -le 21 ]; then jp_pass "at most 20 (+1 burst) starts in any second: $max1s"; else jp_fail "$max1s starts in one second"; fi

# --- recycling after max_jobs_per_worker = 5 -------------------------------------------
seq 12 | sed 's/.*/ok/' | jp_ctl map -k -q recycled >"$JP_TMP/rec.out"
pids=$(awk '{ print $2 }' "$JP_TMP/rec.out" | uniq -c | awk '{ print $1 }' | tr '\n' ' ')
jp_eq "12 jobs ran on workers of 5, 5 and 2 jobs" "5 5 2 " "$pids"
jp_match "the recycling is logged" 'recycled after 5 jobs' "$(cat "$JP_LOG")"

# --- recycling above max_worker_rss, between jobs --------------------------------------
p1=$(jp_ctl submit -w -q fat "leak 160")
p2=$(jp_ctl submit -w -q fat ok | awk '{ print $2 }')
jp_match "the job that grew the worker still succeeded" '^[0-9]+$' "$p1"
if [ -n "$p1" ] && [ "$p1" != "$p2" ]; then jp_pass "the next job ran on a new worker ($p1 -> $p2)"; else jp_fail "worker not recycled ($p1 -> $p2)"; fi
jp_match "the RSS recycling is logged" 'above max_worker_rss' "$(cat "$JP_LOG")"

# --- a job that ignores cancellation is killed after its grace period ------------------
t0=$(now_ms)
out=$(jp_ctl submit -w -q stubborn "ignore 10000" 2>&1); rc=$?
t1=$(now_ms)
jp_eq "it ends as a timeout" 1 "$rc"
jp_match "the worker was killed after the grace period" 'did not stop within the grace period \(500 ms\)' "$out"
jp_match "the log gives the time since it was asked to stop: grace and report" \
	'job [0-9]+: still running 1500 ms after it was asked to stop \(grace 500 ms, then 1000 ms to report\); killing worker' \
	"$(cat "$JP_LOG")"
took=$((t1 - t0))
if [ "$took" -ge 1500 ] && [ "$took" -le 4000 ]; then
	jp_pass "timeout 0.3 s + grace 0.5 s + 1 s to report: took $took ms"
else
	jp_fail "stubborn job took $took ms (want about 1800)"
fi

# --- cancel a running built-in job ---------------------------------------------------------
id=$(jp_ctl submit -q sleep 20000)
jp_until 3 jp_out_eq running status_of "$id" state
jp_eq "cancel of a running job says cancelling" "cancelling $id" "$(jp_ctl cancel "$id")"
out=$(jp_ctl wait "$id" 2>&1)
jp_match "its waiter hears it was cancelled while running, cleanup ran" \
	'cancelled while running: sleep interrupted; cleanup ran' "$out"

jp_stop
jp_done
