#!/usr/bin/env bash
# W4, memory.
# (a) Held jobs: a queue with 2 workers on the sleep handler; two jobs that sleep 10 min
#     occupy both workers, then bench/jpfill.c submits N = 1,000,000 jobs of 64 bytes
#     ("0" padded with spaces; no wait) that stay queued. The master's VmRSS is read
#     before and after (the master is the jobpoold this script started; its workers are
#     its children), and
#         bytes per queued job beyond the payload = (RSS_after - RSS_before) / N - 64.
#     The same for beanstalkd (the same N jobs put into a tube no worker watches).
# (b) Flat RSS: max_jobs = 100,000 (bounded queue), 2 workers on sleep 1 ms (~2,000
#     jobs/s), and jpfill submitting without end (far faster: it is held back by the
#     daemon's backpressure). After 1 s to fill, the master's RSS is sampled every 0.5 s
#     for 10 s: min, max, and the spread (max - min) / min; flat means spread <= 10%.
#
#   bench/w4_memory.sh [BUILD_DIR]      (BENCH_QUICK=1: 100,000 jobs, 3 s of samples, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers

W="W4 memory"
if [ "$QUICK" = 1 ]; then N=${W4_JOBS:-100000}; SAMPLES=6; else N=${W4_JOBS:-1000000}; SAMPLES=20; fi
echo "== $W: $N held jobs, $SAMPLES RSS samples, $REPS runs" >&2

overhead() {	# overhead BEFORE_KB AFTER_KB N
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) * 1024 / n - 64 }'
}

# --- (a) held jobs -----------------------------------------------------------------------
for r in $(seq "$REPS"); do
	jp_start w4a "{ name = \"hold\"; handler = \"sleep\"; workers = 2; batch = 1;
	    max_jobs = 2000000; max_bytes = 1073741824L; }"
	"$OBJ/jpfill" -s "$JP_SOCK" -q hold -n 2 -t 600000 >/dev/null
	sleep 0.3
	before=$(rss_kb "$JP_PID")
	"$OBJ/jpfill" -s "$JP_SOCK" -q hold -n "$N" -t 0 >/dev/null
	sleep 0.3
	after=$(rss_kb "$JP_PID")
	depth=$("$JOBPOOLCTL" -s "$JP_SOCK" status | awk '$1 == "hold" && $3 == "sleep" { print $5 }')
	[ "$depth" = "$N" ] || note "$W" "jobpool: queue depth $depth after submitting $N (expected $N)"
	emit "$W" "jobpool" "master RSS with $N queued" MiB "$(awk -v a="$after" 'BEGIN { printf "%.1f", a / 1024 }')"
	emit "$W" "jobpool" "bytes/job beyond payload" B/job "$(overhead "$before" "$after" "$N")"
	stop_bg "$JP_PID"
done
if command -v beanstalkd >/dev/null; then
	for r in $(seq "$REPS"); do
		bs_start "" echo 0
		before=$(rss_kb "$BS_PID")
		"$OBJ/bs_bench" fill "$BS_ADDR" "$N" >/dev/null
		sleep 0.3
		after=$(rss_kb "$BS_PID")
		emit "$W" "beanstalkd" "master RSS with $N queued" MiB "$(awk -v a="$after" 'BEGIN { printf "%.1f", a / 1024 }')"
		emit "$W" "beanstalkd" "bytes/job beyond payload" B/job "$(overhead "$before" "$after" "$N")"
		bs_stop
	done
fi

# --- (b) RSS over time under an unbounded producer ------------------------------------------
for r in $(seq "$REPS"); do
	jp_start w4b '{ name = "slow"; handler = "sleep"; workers = 2; max_jobs = 100000; }'
	start_bg PROD "$OBJ/jpfill" -s "$JP_SOCK" -q slow -n 0 -t 1
	# The daemon keeps the last keep_results (10,000) finished jobs for WAIT and STATUS:
	# a bounded cache that takes 5 s to fill at this rate. Flat is measured after it.
	sleep 6
	: >"$TMP/rss"
	for i in $(seq "$SAMPLES"); do
		rss_kb "$JP_PID" >>"$TMP/rss"
		sleep 0.5
	done
	depth=$("$JOBPOOLCTL" -s "$JP_SOCK" status | awk '$1 == "slow" && $3 == "sleep" { print $5 }')
	stop_bg "$PROD"
	stop_bg "$JP_PID"
	read -r lo hi < <(sort -n "$TMP/rss" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo, hi }')
	emit "$W" "jobpool (bounded 100k, fast producer)" "RSS min" MiB "$(awk -v a="$lo" 'BEGIN { printf "%.1f", a / 1024 }')"
	emit "$W" "jobpool (bounded 100k, fast producer)" "RSS max" MiB "$(awk -v a="$hi" 'BEGIN { printf "%.1f", a / 1024 }')"
	emit "$W" "jobpool (bounded 100k, fast producer)" "RSS spread (max-min)/min" % "$(awk -v a="$lo" -v b="$hi" 'BEGIN { printf "%.2f", 100 * (b - a) / a }')"
	echo "  W4 RSS samples (KiB), queue depth at the end $depth: $(tr '\n' ' ' <"$TMP/rss")" >&2
done
note "$W" "(a) jobpool: a queue on the sleep handler, batch = 1, both workers held by two 10-minute jobs, $N jobs of 64 bytes submitted without wait; beanstalkd: the same jobs put into a tube that no worker watches. (b) flat means the spread stays within 10%; samples every 0.5 s for $((SAMPLES / 2)) s, after 6 s of filling (the queue fills in well under 1 s; the daemon's bounded cache of finished jobs, keep_results = 10,000, fills in 5 s at this rate)."
finish_alone
