#!/usr/bin/env bash
# it_batch.sh: batch handlers (issue 15) against the real daemon. A queue with
# batch_size hands its plugin's process_batch() batches of that size (the plugin records
# the sizes it saw); a lone job still runs, in a batch of one, once it has waited
# batch_wait_ms; a batch whose handler fails some jobs retries those and only those
# (per-job attempts in `jobpoolctl status ID`); a job that times out inside a batch ends
# alone while the others succeed; one that ignores its timeout gets the worker killed
# after the grace period, and the batch's other jobs run again with that attempt not
# counted; every job of a batch has its own events; the example bulk-insert plugin
# (examples/batch_append.c) appends records a batch at a time and fails a bad record
# alone; a batch queue whose plugin has no batch entry point does not start, and says
# where it is configured, and a reload giving one batch_size keeps its old workers;
# a reload giving a batch plugin's queue batch_size replaces its workers, and batches
# follow; batch_size on a built-in is a config error at its line.
. "$top_srcdir/tests/lib.sh"

PLUGIN="$JP_TMP/testplugin.so"
${CC:-cc} -shared -fPIC -I"$top_srcdir/lib" -o "$PLUGIN" "$top_srcdir/tests/testplugin.c" ||
	{ echo "cannot build the test plugin"; exit 99; }
BA=$(jp_example_plugin batch_append)
WC=$(jp_example_plugin wordcount)
T=$JP_TMP

# --- config errors: file:line -----------------------------------------------------------
cat >"$T/bad.conf" <<EOF
socket = "$JP_SOCK";
queues = (
  { name = "e"; handler = "echo";
    batch_size = 4; },
  { name = "w"; handler = "plugin:$PLUGIN";
    batch_wait_ms = 50; },
  { name = "big"; handler = "plugin:$PLUGIN"; batch_size = 5000; }
);
EOF
out=$("$JOBPOOLD" -t -c "$T/bad.conf" 2>&1); rc=$?
jp_eq "-t: batch_size on a built-in is refused" 78 "$rc"
jp_match "-t: it names the line and why" \
	"bad.conf:4: 'batch_size' in queue 'e' needs a plugin handler with a batch entry point .*'echo' takes one job at a time" "$out"
jp_match "-t: batch_wait_ms without batch_size, at its line" \
	"bad.conf:6: 'batch_wait_ms' in queue 'w' needs 'batch_size'" "$out"
jp_match "-t: batch_size is bounded" "bad.conf:7: 'batch_size' in queue 'big' must be .*1024" "$out"

# conf ONE WCQ: the queues, "one" and "wcq" with these extra settings (a reload's).
conf() {
	echo "
queues = (
  { name = \"b\"; handler = \"plugin:$PLUGIN sizes=$T/sizes\"; workers = 1;
    batch_size = 4; batch_wait_ms = 1000; retries = 10; backoff_base = 0.05;
    backoff_jitter = 0.0; },
  { name = \"t\"; handler = \"plugin:$PLUGIN sizes=$T/tsizes\"; workers = 1;
    batch_size = 3; batch_wait_ms = 1000; timeout = 5; grace = 0.3; retries = 0; },
  { name = \"ins\"; handler = \"plugin:$BA $T/records\"; workers = 1;
    batch_size = 8; batch_wait_ms = 200; },
  { name = \"one\"; handler = \"plugin:$BA $T/records1\"; workers = 1; $1 },
  { name = \"nobatch\"; handler = \"plugin:$WC\"; workers = 1;
    batch_size = 4; },
  { name = \"wcq\"; handler = \"plugin:$WC\"; workers = 1;
    $2 }
);"
}
jp_start "$(conf "" "")"

status_of() { jp_ctl status "$1" | awk -F': ' -v k="$2" '$1 == k { print $2 }'; }

# --- batches of the configured size --------------------------------------------------------
out=$(seq 1 8 | sed 's/.*/ok/' | jp_ctl map -q b 2>&1)
jp_eq "8 jobs through map: each answered from a batch of 4" 8 "$(grep -c ' batch=4$' <<<"$out")"
jp_eq "the plugin saw two batches of 4" "4 4" "$(tr '\n' ' ' <"$T/sizes" | sed 's/ $//')"

# --- the wait bound: a lone job runs, in a batch of one --------------------------------------
out=$(jp_ctl submit -w -q b ok 2>&1); rc=$?
jp_eq "a lone job still runs" 0 "$rc"
jp_match "in a batch of one, cut at batch_wait_ms" ' batch=1$' "$out"
jp_eq "the plugin saw it alone" 1 "$(tail -1 "$T/sizes")"

# --- partial failure: only the failed jobs run again --------------------------------------------
: >"$T/sizes"
ids=""
for p in ok "failunless $T/flag" ok "failunless $T/flag"; do
	ids="$ids $(jp_ctl submit -q b "$p")"
done
set -- $ids
ok1=$1 bad1=$2 ok2=$3 bad2=$4
jp_eq_until "the jobs that succeeded are done" "done done" 10 \
	eval 'echo $(status_of '"$ok1"' state) $(status_of '"$ok2"' state)'
jp_eq "the four went as one batch" 4 "$(head -1 "$T/sizes")"
jp_eq "each ran once" "1 1" "$(status_of "$ok1" attempts) $(status_of "$ok2" attempts)"
jp_match_until "the failed ones are retried" '^(queued|running|retry_wait) (queued|running|retry_wait)$' 5 \
	eval 'echo $(status_of '"$bad1"' state) $(status_of '"$bad2"' state)'
touch "$T/flag"
jp_eq_until "then they succeed" "done done" 15 \
	eval 'echo $(status_of '"$bad1"' state) $(status_of '"$bad2"' state)'
a1=$(status_of "$bad1" attempts) a2=$(status_of "$bad2" attempts)
if [ "$a1" -ge 2 ] && [ "$a2" -ge 2 ]; then
	jp_pass "the failed jobs took more attempts ($a1, $a2)"
else
	jp_fail "the failed jobs took $a1 and $a2 attempts (want 2 or more)"
fi
jp_match "a failed job's history has its failed attempt" 'the flag file is missing' \
	"$(jp_ctl status "$bad1")"
jp_eq "the jobs that succeeded did not run again" "1 1" \
	"$(status_of "$ok1" attempts) $(status_of "$ok2" attempts)"
jp_match "the retries went in batches without them" '^[12]$' "$(sed -n 2p "$T/sizes")"

# --- events per job ------------------------------------------------------------------------------
for id in $ok1 $bad1 $ok2 $bad2; do
	ev=$(jp_ctl events -q b | grep " job=$id\\b" | sed 's/.*type=\([^ ]*\).*/\1/' | tr '\n' ' ')
	case $id in
	"$ok1"|"$ok2") want="job.queued job.started job.succeeded $" ;;
	*) want="job.queued job.started job.failed job.retrying job.started (.* )?job.succeeded $" ;;
	esac
	jp_match "job $id has its own events" "^$want" "$ev"
done

# --- a timeout inside a batch ends that job alone -------------------------------------------------
# Each job has its own timeout, from the start of its batch: 0.5 s for this one, the
# queue's 5 s for the others, which the plugin runs after it.
w=$(jp_ctl submit --timeout 0.5 -q t wait); o1=$(jp_ctl submit -q t ok); o2=$(jp_ctl submit -q t ok)
jp_eq_until "the job that timed out is dead (retries = 0)" dead 10 status_of "$w" state
jp_match "as a timeout" 'timed out after 500 ms' "$(jp_ctl status "$w")"
jp_eq_until "the rest of its batch succeeded" "done done" 10 \
	eval 'echo $(status_of '"$o1"' state) $(status_of '"$o2"' state)'
jp_eq "it was one batch of 3" 3 "$(tail -1 "$T/tsizes")"
jp_match "events: the timed-out job has its timeout" 'type=job.timeout' \
	"$(jp_ctl events -q t | grep " job=$w\\b")"
jp_eq "events: no other job of its batch timed out" "" \
	"$(jp_ctl events -q t --type job.timeout | grep -E " job=($o1|$o2)\\b")"

# --- one that ignores its timeout: the worker is killed, the others run again -------------------
pid=$(worker_pid t)
i=$(jp_ctl submit --timeout 0.5 -q t "ignore 5000"); o1=$(jp_ctl submit -q t ok)
o2=$(jp_ctl submit -q t ok)
jp_eq_until "the stubborn job ends dead" dead 15 status_of "$i" state
jp_match "killed after the grace period" 'did not stop within the grace period \(300 ms\)' \
	"$(jp_ctl status "$i")"
jp_eq_until "its batch's other jobs succeed in a later batch" "done done" 15 \
	eval 'echo $(status_of '"$o1"' state) $(status_of '"$o2"' state)'
jp_eq "that attempt is not counted against them" "1 1" \
	"$(status_of "$o1" attempts) $(status_of "$o2" attempts)"
jp_match "and they ran in a new worker" "^ok [0-9]+ batch=2$" "$(jp_ctl wait "$o1")"
[ "$(jp_ctl wait "$o1" | awk '{ print $2 }')" != "$pid" ] &&
	jp_pass "the new worker is not $pid" || jp_fail "the result came from the killed worker"

# --- the example: a bulk insert ---------------------------------------------------------------
out=$(seq 1 20 | sed 's/^/record /' | jp_ctl map -q ins 2>&1)
jp_eq "20 records appended" 20 "$(wc -l <"$T/records")"
jp_eq "each record once, in order" "$(seq 1 20 | sed 's/^/record /')" "$(cat "$T/records")"
n=$(grep -c '^appended [0-9]*/[0-9]*$' <<<"$out")
jp_eq "each job says where it went" 20 "$n"
if grep -qE '^appended [0-9]+/([2-9]|[1-9][0-9])$' <<<"$out"; then
	jp_pass "records went in batches"
else
	jp_fail "no batch had more than one record: $out"
fi
out=$(jp_ctl submit -w -q ins "$(printf 'two\nlines')" 2>&1); rc=$?
jp_eq "a bad record fails" 1 "$rc"
jp_match "alone, permanently, saying why" 'a record is one line' "$out"
jp_eq "nothing of it was written" 20 "$(wc -l <"$T/records")"
out=$(jp_ctl submit -w -q one single 2>&1)
jp_eq "the same plugin without batch_size: process(), one record a call" "appended 1/1" "$out"
jp_eq "written" single "$(cat "$T/records1")"

# --- a plugin without a batch entry point ------------------------------------------------------
jp_match_until "the queue without a batch entry point fails, naming its line" \
	"queue 'nobatch' sets batch_size = 4, but its handler '[^']*wordcount.so' has no batch entry point" \
	10 jp_log
jp_match "the message has the config file and line" "jobpool.conf:12: queue 'nobatch'" "$(jp_log)"
jp_match_until "status shows it failed" 'state=failed' 5 eval 'badclient stats "$JP_SOCK" | grep "^queue nobatch "'

# --- reloads -----------------------------------------------------------------------------------
# batch_size given to a queue whose plugin has process_batch: its workers are replaced
# by batch workers, one at a time, and batches follow.
jp_config "$(conf "batch_size = 4; batch_wait_ms = 2000;" "batch_size = 2;")" >/dev/null
jp_eq "reload setting batch_size" reloaded "$(jp_ctl reload 2>&1)"
# batch_size given to a queue whose plugin has none: the new worker cannot start, and
# the queue keeps what worked, without batches, saying where.
jp_match_until "the reloaded queue without a batch entry point keeps its old workers" \
	"queue wcq: the reloaded handler '[^']*wordcount.so' cannot start: .*jobpool.conf:14: queue 'wcq' sets batch_size = 2, but its handler .* has no batch entry point.*; keeping the previous one" \
	10 jp_log
jp_eq "and still runs jobs, one at a time" "0 3 5" "$(jp_ctl submit -w -q wcq 'a b c' 2>&1)"
jp_eq "the other queue's jobs go as one batch, to its new worker" \
	"appended 1/4 appended 2/4 appended 3/4 appended 4/4" \
	"$(seq 1 4 | sed 's/^/r/' | jp_ctl map -q one | sort | tr '\n' ' ' | sed 's/ $//')"
jp_eq "its records all went in" 5 "$(wc -l <"$T/records1")"

jp_stop
jp_done
