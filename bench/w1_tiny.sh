#!/usr/bin/env bash
# W1, tiny jobs: 200,000 jobs of 64 printable bytes through the echo handler, 2 workers,
# one pipelined producer; jobs/s from first submit to last result, for `jobpoolctl map`
# and for the C library (jpbench). Runs REPS times each and prints every run.
#
#   bench/w1_tiny.sh [BUILD_DIR] [REPS] [JOBS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
reps=${2:-5}
jobs=${3:-200000}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT

cat >"$tmp/jobpool.conf" <<CONF
socket = "$tmp/jobpool.sock";
log_level = "warning";
queues = ( { name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; } );
CONF
"$build/daemon/jobpoold" -c "$tmp/jobpool.conf" &
pid=$!
export JOBPOOL_SOCKET="$tmp/jobpool.sock"
for _ in $(seq 100); do "$build/cli/jobpoolctl" ping >/dev/null 2>&1 && break; sleep 0.05; done

# The input: line i is 64 printable bytes (the newline is the separator, not payload).
awk -v n="$jobs" 'BEGIN { for (i = 0; i < n; i++) printf "%-64.64s\n", sprintf("job %d %s", i, "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz") }' >"$tmp/input"

for r in $(seq "$reps"); do
	t0=$(date +%s.%N)
	"$build/cli/jobpoolctl" map -k <"$tmp/input" >"$tmp/out"
	t1=$(date +%s.%N)
	cmp -s "$tmp/input" "$tmp/out" || { echo "W1 map: output differs from input" >&2; exit 1; }
	awk -v a="$t0" -v b="$t1" -v n="$jobs" 'BEGIN { printf "w1 map run=%d jobs=%d seconds=%.3f jobs_per_s=%.0f\n", '"$r"', n, b - a, n / (b - a) }'
done
for r in $(seq "$reps"); do
	printf 'w1 lib run=%d ' "$r"
	"$build/bench/jpbench" -n "$jobs" -b 64
done
