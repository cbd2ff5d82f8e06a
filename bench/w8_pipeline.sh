#!/usr/bin/env bash
# W8, a pipeline: 2,000 items through fetch -> compute (20 ms of CPU) -> save, end to
# end, jobpool's chained queues against the asyncio pattern they replace (gather of
# the fetches, gather of run_in_executor(ProcessPoolExecutor(2)), gather of the saves),
# in alternating rounds. jobpool: queues fetch -> compute -> save (`then`), the compute
# stage examples/pipeline's plugin on 2 workers, the save stage its exec handler
# (save.sh, appending a line to a file); the producer is the Python client's map()
# with 256 in flight. Reported: items/s end to end, and the master's largest RSS while
# the chain ran against its RSS before (the target: flat).
#
# THE FETCH STAGE IS A STAND-IN until the http handler lands (issue 15): a 5 ms wait,
# 32 in flight (jobpool: the built-in sleep handler with 32 workers; asyncio:
# asyncio.sleep under Semaphore(32)). Its rows say so.
#
#   bench/w8_pipeline.sh [BUILD_DIR] [REPS] [ITEMS]   (BENCH_QUICK=1: 200 items, 1 round)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
[ $# -ge 2 ] && export BENCH_REPS=$2
. "$(dirname "$0")/lib.sh"

if [ "$QUICK" = 1 ]; then items=${3:-200}; else items=${3:-2000}; fi
W="W8 pipeline"
echo "== $W: $items items, $REPS rounds" >&2
export PYTHONPATH="$SRC_DIR/bindings/python"
PLUGIN=$BUILD/examples/pipeline/.libs/compute.so
SAVE=$SRC_DIR/examples/pipeline/save.sh
if [ ! -f "$PLUGIN" ]; then
	(cd "$BUILD" && make examples/pipeline/compute.la >/dev/null) ||
	    { echo "bench: cannot build $PLUGIN" >&2; exit 1; }
fi

jp_start w8 "{ name = \"fetch\"; handler = \"sleep\"; workers = 32; batch = 1; then = \"compute\"; },
	{ name = \"compute\"; handler = \"plugin:$PLUGIN 20\"; workers = 2; batch = 1; then = \"save\"; },
	{ name = \"save\"; handler = \"exec:$SAVE $TMP/jp.out\"; workers = 2; max_jobs = 100; }" \
	'keep_results = 1000;'
for r in $(seq "$REPS"); do
	: >"$TMP/jp.out"
	rss0=$(rss_kb "$JP_PID")
	( while :; do rss_kb "$JP_PID"; sleep 0.1; done ) >"$TMP/rss" 2>/dev/null &
	watch=$!
	out=$("$PY" "$BENCH_DIR/w8_pipeline.py" jobpool "$JP_SOCK" "$items" 256)
	kill "$watch"; wait "$watch" 2>/dev/null || true
	n=$(grep -c . "$TMP/jp.out")
	[ "$n" = "$items" ] || note "$W" "jobpool saved $n lines for $items items in a round"
	emit "$W" "jobpool (fetch stand-in)" "throughput" "items/s" "$(kv items_per_s "$out")"
	emit "$W" "jobpool (fetch stand-in)" "master RSS growth" "KiB" \
	    "$(( $(sort -n "$TMP/rss" | tail -1) - rss0 ))"

	: >"$TMP/py.out"
	out=$("$PY" "$BENCH_DIR/w8_pipeline.py" asyncio "$items" 32 2 20 "$TMP/py.out")
	n=$(grep -c . "$TMP/py.out")
	[ "$n" = "$items" ] || note "$W" "asyncio saved $n lines for $items items in a round"
	emit "$W" "asyncio gather+executor (fetch stand-in)" "throughput" "items/s" "$(kv items_per_s "$out")"
done
stop_bg "$JP_PID"
note "$W" "THE FETCH IS A STAND-IN until the http handler lands: a 5 ms wait with 32 in flight (jobpool: built-in sleep, 32 workers; asyncio: asyncio.sleep under Semaphore(32)). Compute: 20 ms of CPU per item (examples/pipeline/compute.so; the peer a thread_time loop), 2 processes each. Save: jobpool examples/pipeline/save.sh (an exec per item), asyncio an append in the loop. jobpool: the Python client's map(), 256 in flight; the stages overlap. asyncio: three gathers, one after another, the pool warm before the clock."
finish_alone
