#!/usr/bin/env bash
# W1, tiny jobs: 200,000 jobs of 64 printable bytes, the handler returns its payload,
# 2 workers, one pipelined producer; jobs/s from the first submit to the last result.
# Rows: jobpool through `jobpoolctl map -k` and through libjobpool (jpbench, window
# 4096); the floor (bench/floor.c, same client, same window); Python asyncio +
# ProcessPoolExecutor (gather, Queue); beanstalkd with and without its binlog; Gearman.
#
#   bench/w1_tiny.sh [BUILD_DIR] [REPS] [JOBS]      (BENCH_QUICK=1: fewer jobs and runs)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
[ $# -ge 2 ] && export BENCH_REPS=$2
. "$(dirname "$0")/lib.sh"
build_helpers

if [ "$QUICK" = 1 ]; then jobs=${3:-20000}; pyjobs=${W1_PY_JOBS:-5000}; else jobs=${3:-200000}; pyjobs=${W1_PY_JOBS:-$jobs}; fi
W="W1 tiny"
echo "== $W: $jobs jobs, $REPS runs each" >&2

# --- jobpool -------------------------------------------------------------------------
jp_start w1 '{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }'
# The input of map: line i is job i's 64 bytes (the newline separates, it is not payload).
awk -v n="$jobs" 'BEGIN { for (i = 0; i < n; i++) printf "%-64.64s\n", sprintf("%d %s", i, "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123") }' >"$TMP/input"
for r in $(seq "$REPS"); do
	t0=$(date +%s.%N)
	"$JOBPOOLCTL" -s "$JP_SOCK" map -k <"$TMP/input" >"$TMP/out"
	t1=$(date +%s.%N)
	cmp -s "$TMP/input" "$TMP/out" || { echo "W1 map: output differs from input" >&2; exit 1; }
	emit "$W" "jobpool map" throughput jobs/s "$(awk -v a="$t0" -v b="$t1" -v n="$jobs" 'BEGIN { printf "%.0f", n / (b - a) }')"
done
tput_runs "$W" "jobpool C library" "$JPBENCH" -s "$JP_SOCK" -n "$jobs" -b 64 -j 4096
stop_bg "$JP_PID"
note "$W" "jobpool map time includes jobpoolctl's start and reading/writing the 13 MB of lines (-k, in order); the C library row is jpbench with 4096 jobs in flight."

# --- floor ---------------------------------------------------------------------------
start_bg FPID "$OBJ/floor" "$TMP/floor.sock" 2 echo
wait_sock "$TMP/floor.sock"
tput_runs "$W" "floor (C relay)" "$JPBENCH" -s "$TMP/floor.sock" -n "$jobs" -b 64 -j 4096
stop_bg "$FPID"

# --- Python asyncio + ProcessPoolExecutor --------------------------------------------
for pat in gather queue; do
	tput_runs "$W" "python $pat" "$PY" "$BENCH_DIR/py_peer.py" w1 "$pat" "$pyjobs" 2
done
[ "$pyjobs" != "$jobs" ] && note "$W" "python rows ran $pyjobs jobs (not $jobs) to stay within the time budget."

# --- beanstalkd ------------------------------------------------------------------------
if command -v beanstalkd >/dev/null; then
	for mode in nobinlog binlog; do
		for r in $(seq "$REPS"); do
			# A fresh server each run, so the binlog starts empty.
			if [ "$mode" = binlog ]; then
				bs_start "$TMP/binlog"; sys="beanstalkd -b (fsync 50ms)"
			else
				bs_start ""; sys="beanstalkd"
			fi
			REPS=1 tput_runs "$W" "$sys" "$OBJ/bs_bench" tput "$BS_ADDR" "$jobs" 4096
			bs_stop
		done
	done
	note "$W" "beanstalkd $(bs_version) on a Unix socket; 2 worker processes reserve from tube jobs, delete, put the result into tube results (delete+put+next reserve in one write); the client puts pipelined (4096 unfinished) on one connection and reserves+deletes results on another (16 reserves outstanding). Binlog: -b DIR with the default fsync policy (at most every 50 ms)."
else
	note "$W" "beanstalkd not installed (apt-get install beanstalkd): skipped."
fi

# --- Gearman ---------------------------------------------------------------------------
if have_gearman; then
	gm_start echo 2
	tput_runs "$W" "gearmand -t 1" "$OBJ/gm_bench" tput "$GM_PORT" "$jobs" 1024
	gm_stop
	note "$W" "gearmand $(gm_version) -t 1 on 127.0.0.1 (TCP: it has no Unix socket); 2 libgearman workers; the client adds 1024 foreground tasks and runs them concurrently with gearman_client_run_tasks(), repeatedly (batches of 256..16384 measured within 10% of each other; background jobs would not return results)."
else
	note "$W" "gearmand or libgearman-dev not installed (apt-get install gearman-job-server libgearman-dev): skipped."
fi
note "$W" "xargs -P2 and GNU parallel start a process per job; they are measured in W5, not here."
finish_alone
