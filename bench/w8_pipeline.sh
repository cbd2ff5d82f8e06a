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
# The fetch is real HTTP on both sides, a GET of bench/w7_httpd.c (loopback, kept
# alive, every response 5 ms after its request), 100 in flight: jobpool's http handler
# (one worker, concurrency 100), the peer aiohttp under Semaphore(100) (Debian's
# python3-aiohttp, /usr/bin/python3).
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
build_helpers
cc -O2 -g -Wall -o "$OBJ/w7_httpd" "$BENCH_DIR/w7_httpd.c"
start_bg SRV "$OBJ/w7_httpd" "$TMP/port" 5 2>"$TMP/httpd.err"
for i in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$TMP/port")/"
PLUGIN=$BUILD/examples/pipeline/.libs/compute.so
SAVE=$SRC_DIR/examples/pipeline/save.sh
if [ ! -f "$PLUGIN" ]; then
	(cd "$BUILD" && make examples/pipeline/compute.la >/dev/null) ||
	    { echo "bench: cannot build $PLUGIN" >&2; exit 1; }
fi

jp_start w8 "{ name = \"fetch\"; handler = \"http\"; workers = 1; concurrency = 100; then = \"compute\"; },
	{ name = \"compute\"; handler = \"plugin:$PLUGIN 20\"; workers = 2; batch = 1; then = \"save\"; },
	{ name = \"save\"; handler = \"exec:$SAVE $TMP/jp.out\"; workers = 2; max_jobs = 100; }" \
	'keep_results = 1000;'
for r in $(seq "$REPS"); do
	: >"$TMP/jp.out"
	rss0=$(rss_kb "$JP_PID")
	( while :; do rss_kb "$JP_PID"; sleep 0.1; done ) >"$TMP/rss" 2>/dev/null &
	watch=$!
	out=$("$PY" "$BENCH_DIR/w8_pipeline.py" jobpool "$JP_SOCK" "$items" 256 "$URL")
	kill "$watch"; wait "$watch" 2>/dev/null || true
	n=$(grep -c . "$TMP/jp.out")
	[ "$n" = "$items" ] || note "$W" "jobpool saved $n lines for $items items in a round"
	emit "$W" "jobpool" "throughput" "items/s" "$(kv items_per_s "$out")"
	emit "$W" "jobpool" "master RSS growth" "KiB" \
	    "$(( $(sort -n "$TMP/rss" | tail -1) - rss0 ))"

	: >"$TMP/py.out"
	out=$("$PY" "$BENCH_DIR/w8_pipeline.py" asyncio "$items" 100 2 20 "$TMP/py.out" "$URL")
	n=$(grep -c . "$TMP/py.out")
	[ "$n" = "$items" ] || note "$W" "asyncio saved $n lines for $items items in a round"
	emit "$W" "asyncio gather+executor" "throughput" "items/s" "$(kv items_per_s "$out")"
	for k in fetch compute save; do
		emit "$W" "asyncio gather+executor" "$k step" "s" "$(kv ${k}_s "$out")"
	done
done
stop_bg "$JP_PID"
stop_bg "$SRV"
note "$W" "Fetch: a real GET of bench/w7_httpd.c on loopback, 5 ms per response, 100 in flight (jobpool: handler http, 1 worker, concurrency 100; asyncio: aiohttp, one ClientSession, Semaphore(100)). Server: $(cat "$TMP/httpd.err"). Compute: 20 ms of CPU per item (examples/pipeline/compute.so; the peer a thread_time loop), 2 processes each. Save: jobpool examples/pipeline/save.sh (an exec per item), asyncio an append in the loop. jobpool: the Python client's map(), 256 in flight; the stages overlap. asyncio: three gathers, one after another, the pool warm before the clock."
finish_alone
