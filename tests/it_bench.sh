#!/bin/bash
# it_bench.sh: the benchmark suite (bench/run, issue 5) still runs. `bench/run --quick`
# against this build, every workload once with few jobs, its helpers compiled into
# this test's temp dir with the build's sanitizer flags, its table written there too.
# It checks what a user of bench/run would see: the run ends well, the table has
# jobpool's and the floor's rows for every workload with figures in them, and no run
# failed or lost a job. It times nothing: the figures of a sanitizer build under
# `make check` mean nothing, and the targets are read from a real run
# (bench/README.md). Peers that are not installed are skipped by the suite itself.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

export BENCH_OBJ="$JP_TMP/obj" BENCH_RESULTS="$JP_TMP/results"
# Short and light: a sanitizer build under a parallel `make check` on 2 CPUs.
export W3_SECONDS=1 W3_RATES="5000 20000" W4_JOBS=20000 W5_JOBS=50 W6_RECOVER_JOBS=20000
timeout -k 10 600 "$top_srcdir/bench/run" --quick "$top_builddir" \
	>"$JP_TMP/run.out" 2>"$JP_TMP/run.err"
rc=$?
jp_eq "bench/run --quick: exit status" 0 "$rc"
[ "$rc" = 0 ] || tail -30 "$JP_TMP/run.err" >&2

table=$(ls "$BENCH_RESULTS"/*.md 2>/dev/null | head -1)
if [ -z "$table" ]; then
	jp_fail "bench/run wrote no table into $BENCH_RESULTS"
	jp_done
fi
jp_pass "the table is written ($(basename "$table")), with its raw runs beside it"
[ -f "${table%.md}.tsv" ] || jp_fail "no ${table%.md}.tsv beside the table"
jp_match "the table names the machine" '^- machine: [0-9]+ CPUs' "$(grep '^- machine:' "$table")"

# row W SYSTEM METRIC: the median of one row of the table, or nothing.
row() {
	awk -F' \\| ' -v w="$1" -v s="$2" -v m="$3" '
		{ sub(/^\| /, "") }
		$1 == w && $2 == s && index($3, m) == 1 { print $4; exit }' "$table"
}
# positive WHAT VALUE: VALUE is a number above zero.
positive() {
	if awk -v v="$2" 'BEGIN { exit !(v ~ /^[0-9.]+$/ && v + 0 > 0) }'; then
		jp_pass "$1: $2"
	else
		jp_fail "$1: no figure above zero (got '$2')"
	fi
}
positive "W1 jobpool, C library" "$(row 'W1 tiny' 'jobpool C library' throughput)"
positive "W1 jobpool, map" "$(row 'W1 tiny' 'jobpool map' throughput)"
positive "W1 floor" "$(row 'W1 tiny' 'floor (C relay)' throughput)"
positive "W1 Python gather" "$(row 'W1 tiny' 'python gather' throughput)"
positive "W2 jobpool efficiency" "$(row 'W2 cpu' jobpool 'efficiency vs 1 worker')"
positive "W2 floor efficiency" "$(row 'W2 cpu' 'floor (C relay)' 'efficiency vs 1 worker')"
positive "W2 the machine's own" "$(row 'W2 cpu' 'machine (2 processes, no IPC)' 'efficiency vs 1 process')"
positive "W3 jobpool p99 at 5,000/s" "$(row 'W3 latency' 'jobpool @ 5000/s' 'p99 (us)')"
positive "W3 jobpool achieved at 20,000/s" "$(row 'W3 latency' 'jobpool @ 20000/s' 'achieved')"
positive "W3 floor p99 at 5,000/s" "$(row 'W3 latency' 'floor (C relay) @ 5000/s' 'p99 (us)')"
positive "W4 bytes per queued job" "$(row 'W4 memory' 'jobpool' 'bytes/job')"
positive "W5 jobpool exec" "$(row 'W5 exec' 'jobpool exec:/bin/true' throughput)"
positive "W5 floor" "$(row 'W5 exec' 'floor (posix_spawn)' throughput)"
positive "W6 jobpool, journal always, 8 producers" "$(row 'W6 durable' 'jobpool journal always, 8 producers' throughput)"
positive "W6 recovery" "$(row 'W6 durable' 'jobpool recovery, 20000 queued jobs' 'time to ready')"

# What the suite says went wrong, it says in its notes.
bad=$(grep -E 'exited with an error|failed in a run|lost [0-9]+ jobs|did not' "$table")
if [ -n "$bad" ]; then
	jp_fail "the table's notes report failures:"
	printf '%s\n' "$bad" >&2
else
	jp_pass "no workload, run or job failed"
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$JP_TMP/run.err"; then
	jp_fail "sanitizer report during the run"
	grep -A20 -E 'Sanitizer|runtime error' "$JP_TMP/run.err" | head -60 >&2
fi
jp_done
