#!/usr/bin/env bash
# bench/ab_events.sh: the event stream's cost and speed (bench/README.md, "Events").
#
#   bench/ab_events.sh BUILD_DIR
#
#   1. W1 (jpbench: 64-byte echo jobs, 2 workers, 4096 in flight, AB_PRODUCERS
#      producers) with 0, 1 and 8 subscribers following every event (bench/evsub.c),
#      and with 1 subscriber that never reads, side by side: each round runs every
#      case on a fresh daemon, in a rotated order; medians and ratios to none. A
#      follower's line says whether it lost events (gaps) and how many it got.
#   2. One subscriber's delivery rate: the ring filled by W1 (EV_FILL jobs), then read
#      whole by one subscriber (since=all until=now): events/s.
#   3. Delivery latency at EV_RATE jobs/s (jplat, open loop) with one follower: p50,
#      p99, max of (received - published), by the wall clock.
#
#   AB_ROUNDS (default 5), AB_JOBS (default 300,000), AB_PRODUCERS (default 1),
#   EV_FILL (default 400,000), EV_RATE (default 100,000), EV_SECONDS (default 5)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,20p' "$0"; exit 64; }
export BUILD=$(cd "$1" && pwd)
. "$(dirname "$0")/lib.sh"
build_helpers
cc -O2 -g -Wall -o "$OBJ/evsub" "$BENCH_DIR/evsub.c"
EVSUB=$OBJ/evsub
ROUNDS=${AB_ROUNDS:-5}
JOBS=${AB_JOBS:-300000}
PRODUCERS=${AB_PRODUCERS:-1}
QCONF='{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }'

med() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# run CASE: jobs/s of W1 on a fresh daemon with CASE's subscribers (none, 1, 8, stalled).
run() {
	local c=$1 k n=0 pids=() out
	jp_start abev "$QCONF"
	case $c in
	none) n=0 ;;
	stalled) "$EVSUB" -s "$JP_SOCK" -x & pids+=($!) ;;
	*) n=$c ;;
	esac
	for k in $(seq "$n"); do
		"$EVSUB" -s "$JP_SOCK" -t 600 >"$TMP/sub.$k" &
		pids+=($!)
	done
	# Every subscriber is in before the jobs start.
	until [ "$("$JOBPOOLCTL" -s "$JP_SOCK" status --json 2>/dev/null | grep -o '"subscribers":[0-9]*' | cut -d: -f2)" = "${#pids[@]}" ]; do
		sleep 0.05
	done
	out=$("$JPBENCH" -s "$JP_SOCK" -n "$JOBS" -b 64 -j 4096 -p "$PRODUCERS")
	sleep 0.2
	for k in "${pids[@]}"; do kill -TERM "$k" 2>/dev/null; done
	for k in "${pids[@]}"; do wait "$k" 2>/dev/null || true; done
	for k in $(seq "$n"); do
		echo "    $c subscribers, #$k: $(cat "$TMP/sub.$k")" >&2
	done
	stop_bg "$JP_PID"
	kv jobs_per_s "$out"
}

cases=(none 1 8 stalled)
declare -A res
for c in "${cases[@]}"; do res[$c]=''; done
for r in $(seq "$ROUNDS"); do
	for i in $(seq 0 3); do
		c=${cases[$(( (i + r) % 4 ))]}
		v=$(run "$c")
		res[$c]="${res[$c]} $v"
		echo "round $r: $c: $v jobs/s" >&2
	done
done
m0=$(echo "${res[none]}" | med)
for c in "${cases[@]}"; do
	m=$(echo "${res[$c]}" | med)
	echo "W1, $PRODUCERS producer(s), $JOBS jobs, subscribers $c:${res[$c]} (median $m;" \
	    "$(awk -v a="$m0" -v b="$m" 'BEGIN { printf "%.3f", b / a }') of none)"
done

# 2. One subscriber reading a full ring.
jp_start abev "$QCONF" "events_ring = 4194304;"
"$JPBENCH" -s "$JP_SOCK" -n "${EV_FILL:-400000}" -b 64 -j 4096 >/dev/null
for r in 1 2 3; do
	echo "ring read whole by one subscriber: $("$EVSUB" -s "$JP_SOCK" -a -t 60)"
done
stop_bg "$JP_PID"

# 3. Latency at a steady rate.
jp_start abev "$QCONF"
"$EVSUB" -s "$JP_SOCK" -t "$(( ${EV_SECONDS:-5} + 3 ))" >"$TMP/lat" &
sp=$!
sleep 0.3
lo=$("$OBJ/jplat" -s "$JP_SOCK" -r "${EV_RATE:-100000}" -d "${EV_SECONDS:-5}" 2>&1 | tail -1)
kill -TERM "$sp" 2>/dev/null; wait "$sp" || true
echo "latency at ${EV_RATE:-100000} jobs/s: jplat: $lo"
echo "latency at ${EV_RATE:-100000} jobs/s: subscriber: $(cat "$TMP/lat")"
stop_bg "$JP_PID"
