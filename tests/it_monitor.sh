#!/usr/bin/env bash
# it_monitor.sh: the monitoring data in STATS and jobpoolctl status against the real
# daemon: the wait and run percentiles of `sleep` jobs of known lengths (500 and 20 ms), the age of the
# oldest waiting job growing while its queue is stopped up, a worker's running job and
# its age, and the throughput rates appearing once jobs end.
#
# The bounds. A quantile is the midpoint of a bucket at most 1/32 of its start wide:
# within HIST_REL_ERROR (1/64) of the exact value. Below, the exact value is what the
# jobs' lengths make it: one worker runs a queue's jobs one after the other, so the
# k-th job (from 0) waits k lengths and runs one. Lower bounds allow the histogram's
# error only, and for waits the time the producer took to hand the jobs in (20 ms),
# since a sleep never ends early and the master starts its clock before the worker can
# start the job. Upper bounds add scheduling slack: on the 2-vCPU CI host, under
# sanitizers, beside the other tests of `make check -j2` and other builds, a process
# can be kept off the CPU for a long time (one 200 ms job of a full run was measured at
# 301 ms), and a job's wait adds up the delays of every job before it. So: 100 ms on a
# median run, where one late job cannot weigh; 300 ms on a wait, or on the longest run.
# The 500 ms jobs keep each bound tight enough to tell the right measure from its
# neighbours: a run that included the wait, a wait that included the run, or one
# measured from the dispatch, is off by a whole job (500 ms) or more.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

jp_start '
queues = (
  { name = "long"; handler = "sleep"; workers = 1; },
  { name = "short"; handler = "sleep"; workers = 1; },
  { name = "stuck"; handler = "sleep"; workers = 1; },
  { name = "echo"; handler = "echo"; workers = 2; }
);'

ERR=64		# 1 / HIST_REL_ERROR

# within WHAT KEY QUEUE EXACT_US MINUS_US PLUS_US: the STATS value of KEY within
# [EXACT - EXACT/ERR - MINUS, EXACT + EXACT/ERR + PLUS].
within() {
	local what=$1 key=$2 q=$3 exact=$4 minus=$5 plus=$6 v lo hi
	v=$(jp_stat queue "$q" "$key")
	lo=$((exact - exact / ERR - minus))
	hi=$((exact + exact / ERR + plus))
	if [ -n "$v" ] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then
		jp_pass "$what: $key=$v in [$lo, $hi]"
	else
		jp_fail "$what: $key='$v', want [$lo, $hi] (exactly $exact us)"
	fi
}

# --- 5 jobs of 500 ms on one worker: waits 0, 0.5, 1, 1.5, 2 s; runs 500 ms ---------
yes 500 | head -5 | jp_ctl map -q long >/dev/null ||
	jp_fail "5 sleep jobs of 500 ms did not all succeed"
jp_eq_until "long: 5 starts counted" 5 5 jp_stat queue long wait_count
jp_eq_until "long: 5 runs counted" 5 5 jp_stat queue long run_count
within "long: the median run took 500 ms" run_p50_us long 500000 0 100000
for k in p90 p99 p999 max; do
	within "long: every run took 500 ms" "run_${k}_us" long 500000 0 300000
done
# p50 is the 3rd of 5 (ceil(0.5 * 5)): it waited 2 jobs; p90 the 5th: 4 jobs.
within "long: the median wait is 2 jobs" wait_p50_us long 1000000 20000 300000
within "long: p90 waited 4 jobs" wait_p90_us long 2000000 20000 300000
within "long: the longest wait is 4 jobs" wait_max_us long 2000000 20000 300000
jp_eq "long: no quantile passes the max" 1 \
	"$(( $(jp_stat queue long wait_p999_us) <= $(jp_stat queue long wait_max_us) ))"

# --- 20 jobs of 20 ms: waits 0, 20, ..., 380 ms; runs 20 ms -----------------------------
yes 20 | head -20 | jp_ctl map -q short >/dev/null ||
	jp_fail "20 sleep jobs of 20 ms did not all succeed"
jp_eq_until "short: 20 runs counted" 20 5 jp_stat queue short run_count
within "short: the median run took 20 ms" run_p50_us short 20000 0 100000
# p90 is the 18th of 20: two late jobs do not move it.
within "short: the p90 run took 20 ms" run_p90_us short 20000 0 100000
# p50 is the 10th of 20: it waited 9 jobs (180 ms).
within "short: the median wait is 9 jobs" wait_p50_us short 180000 20000 300000

# status shows the same, readably, and --json carries the numbers.
out=$(jp_ctl status)
jp_match "status: a latency line for long's runs" '^long +run +(49[0-9]|5[0-9][0-9])ms ' "$out"
jp_match "status: a latency line for long's waits, with 5 counted" '^long +wait +.* 5$' "$out"
out=$(jp_ctl --json status | python3 -c '
import json, sys
d = json.load(sys.stdin)
q = [q for q in d["queues"] if q["name"] == "long"][0]
print(type(q["wait_p50_us"]).__name__, q["run_count"], q["wait_max_us"] >= 1950000)')
jp_eq "status --json: the latencies as numbers" "int 5 True" "$out"

# --- a stopped-up queue: its oldest waiting job ages; the worker shows its job --------
jp_eq "stuck: nothing waits yet" 0 "$(jp_stat queue stuck oldest_wait_us)"
# The running job is cancelled below, so its length costs nothing: a minute, so that
# no load on the host can end it before the checks of a busy worker are made.
running=$(jp_ctl submit -q stuck 60000)
waiting=$(jp_ctl submit -q stuck 10)
jp_eq_until "stuck: the worker runs the first job" "$running" 5 \
	jp_stat worker stuck job
oldest_at_least() { [ "$(jp_stat queue stuck oldest_wait_us)" -ge "$1" ]; }
jp_ok_until "stuck: the waiting job's age passes 0.5 s" 5 oldest_at_least 500000
first=$(jp_stat queue stuck oldest_wait_us)
jp_ok_until "stuck: and grows past $first us + 1 s" 5 oldest_at_least $((first + 1000000))
age_at_least() { [ "$(jp_stat worker stuck age_us)" -ge "$1" ]; }
jp_ok_until "stuck: the running job's age passes 1.5 s" 5 age_at_least 1500000
jp_eq "stuck: the worker is busy" busy "$(jp_stat worker stuck state)"
out=$(jp_ctl status)
jp_match "status: the worker's line shows its job and age" \
	"^stuck +[0-9]+ +busy +$running +[0-9.]+s " "$out"
jp_match "status: stuck's oldest wait is shown in seconds" '^stuck +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+s$' "$out"
jp_ctl cancel "$running" >/dev/null
jp_eq_until "stuck: once the long job is cancelled, nothing waits" 0 5 \
	jp_stat queue stuck oldest_wait_us
jp_eq_until "stuck: and the worker is idle, with no job" 0 5 jp_stat worker stuck job
jp_eq "stuck: the waiting job ran" "done" \
	"$(jp_ctl --json wait "$waiting" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"] == "ok" and "done")')"

# --- throughput: 2,000 jobs end; the decayed rates appear at the next tick (5 s) -------
seq 2000 | jp_ctl map -q echo >/dev/null || jp_fail "2,000 echo jobs"
# The rates take the ends in at the tick after them: once every end is in, the 1-minute
# rate is 2000 / 5 s folded in once, 400 * (1 - exp(-5/60)) = 31.98/s, or, the ends
# split between two ticks, a little less (at least 29.43/s, all in the first), until the
# next tick without any decays it.
rate_at_least() { awk -v r="$(jp_stat queue echo throughput_1m)" -v m="$1" 'BEGIN { exit !(r >= m) }'; }
jp_ok_until "echo: the 1-minute rate appears, and reaches 29/s" 15 rate_at_least 29
r1=$(jp_stat queue echo throughput_1m) r5=$(jp_stat queue echo throughput_5m)
r15=$(jp_stat queue echo throughput_15m)
jp_eq "echo: 2,000 jobs make at most 32/s of the 1-minute rate ($r1)" 1 \
	"$(awk -v a="$r1" 'BEGIN { print (a <= 32.0) }')"
jp_eq "echo: 1m >= 5m >= 15m > 0 ($r1 $r5 $r15)" 1 \
	"$(awk -v a="$r1" -v b="$r5" -v c="$r15" 'BEGIN { print (a >= b && b >= c && c > 0) }')"
out=$(jp_ctl status)
jp_match "status: echo's rates" '^echo +[1-9][0-9.]* +[1-9][0-9.]* +[0-9.]+ +[0-9.]+(us|ms|s)$' "$out"

jp_stop
jp_done
