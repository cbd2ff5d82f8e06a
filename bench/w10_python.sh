#!/usr/bin/env bash
# W10, Python asyncio: 100,000 tiny jobs (W1's 64-byte payloads, echoed) from one
# asyncio process, through the jobpool Python client (bindings/python) to jobpoold with
# 2 workers, against loop.run_in_executor with a ProcessPoolExecutor of 2 processes.
# Rows: jobpool with a task per job (asyncio.gather of jp.submit()), with a future
# per job (asyncio.gather of jp.submit_future(), run_in_executor's shape), jobpool map
# (window 4096, in order), and the executor (asyncio.gather of run_in_executor), run
# in alternating rounds so the shared host's noise falls on all of them alike; the
# target (issue 16) is jobpool at 5x the executor's jobs/s or more.
#
#   bench/w10_python.sh [BUILD_DIR] [REPS] [JOBS]    (BENCH_QUICK=1: 5,000 jobs, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
[ $# -ge 2 ] && export BENCH_REPS=$2
. "$(dirname "$0")/lib.sh"

if [ "$QUICK" = 1 ]; then jobs=${3:-5000}; else jobs=${3:-100000}; fi
W="W10 python"
echo "== $W: $jobs jobs, $REPS rounds" >&2
export PYTHONPATH="$SRC_DIR/bindings/python"

jp_start w10 '{ name = "default"; handler = "echo"; workers = 2; max_jobs = 200000; batch = 64; }'
for r in $(seq "$REPS"); do
	REPS=1 tput_runs "$W" "jobpool client, gather" "$PY" "$BENCH_DIR/w10_python.py" jobpool "$JP_SOCK" "$jobs" gather
	REPS=1 tput_runs "$W" "jobpool client, futures" "$PY" "$BENCH_DIR/w10_python.py" jobpool "$JP_SOCK" "$jobs" futures
	REPS=1 tput_runs "$W" "jobpool client, map" "$PY" "$BENCH_DIR/w10_python.py" jobpool "$JP_SOCK" "$jobs" map 4096
	REPS=1 tput_runs "$W" "run_in_executor, 2 processes" "$PY" "$BENCH_DIR/w10_python.py" executor "$jobs" 2
done
stop_bg "$JP_PID"
note "$W" "one asyncio process with $("$PY" -c 'import sys; print(sys.version.split()[0])'); gather: a task per job, all $jobs outstanding at once on one connection; futures: the same with a future per job and no task; map: jp.map() with 4096 in flight; executor: asyncio.gather of loop.run_in_executor(ProcessPoolExecutor(2), echo, payload), the pool warm before the clock starts."
finish_alone
