#!/usr/bin/env bash
# W3, latency: echo jobs of 64 bytes offered open-loop at a fixed rate (5,000/s and
# 100,000/s, 10 s each after a 0.5 s warm-up that is not counted), 2 workers.
# bench/jplat.c (libjobpool, pipelined) schedules job i at t0 + i/rate, sends it when
# that time has come, and measures each job two ways:
#   p50 ... max           submit-to-result: from the moment its SUBMIT is in the socket
#                         to its RESULT, the latency the issue names;
#   p50/p99 from due      from its *scheduled* time to its RESULT (coordinated-omission
#                         aware), which adds the load generator's own lateness;
#   client lag p50/p99    that lateness: how long after its time each job was written.
# At 5,000/s the client sleeps between jobs and its timer wakes it 30-60 us late on this
# VM (yardstick "client timer"; bench/README.md, "Where W3 at 5,000/s stands"), so lag is
# the generator's, not the system's; a system that held the client back would show in
# it. The floor (bench/floor.c) runs the same client; beanstalkd at 5,000/s with
# bench/bs_bench.c's lat mode (same schedule, same three measures, result matched by the
# index at the start of the payload); Gearman at 5,000/s with bench/gm_bench.c's lat
# mode (the same, over TCP: gearmand has no Unix socket); Python's asyncio with a
# ProcessPoolExecutor at 5,000/s (bench/py_peer.py lat: submit is the hand-over to
# run_in_executor).
# All of them stay up for the whole workload, and it runs in rounds (BENCH_REPS): each
# round runs jobpool, the peers and the floor in turn at 5,000/s, then jobpool and the
# floor at 100,000/s, and takes jobpool's p50 and p99 over the best peer's of the same
# round (rows "p50 / best peer's p50, same round"), which is what the target compares.
# BENCH_SPIN_US=N makes jplat, bs_bench and gm_bench poll instead of sleeping for the
# last N us before each send (bench/benchutil.h wait_due); the suite runs with 0.
#
#   bench/w3_latency.sh [BUILD_DIR]     (BENCH_QUICK=1: 2 s per rate, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers

W="W3 latency"
if [ "$QUICK" = 1 ]; then DUR=${W3_SECONDS:-2}; else DUR=${W3_SECONDS:-10}; fi
RATES=${W3_RATES:-"5000 100000"}
echo "== $W: rates $RATES, $DUR s each, $REPS runs" >&2

# lat_emit SYSTEM RATE LINE
lat_emit() {
	local sys="$1 @ $2/s" k
	for k in p50 p90 p99 p999 max; do
		emit "$W" "$sys" "$k" us "$(kv "send_${k}_us" "$3")"
	done
	emit "$W" "$sys" "p50 from due" us "$(kv p50_us "$3")"
	emit "$W" "$sys" "p99 from due" us "$(kv p99_us "$3")"
	emit "$W" "$sys" "client lag p50" us "$(kv lag_p50_us "$3")"
	emit "$W" "$sys" "client lag p99" us "$(kv lag_p99_us "$3")"
	emit "$W" "$sys" "achieved" jobs/s "$(kv achieved "$3")"
	[ "$(kv lost "$3")" = 0 ] || note "$W" "$sys lost $(kv lost "$3") jobs in a run"
}
# lat_once SYSTEM RATE CMD...: one run, its rows emitted; sets LAT_P50 and LAT_P99
# (submit-to-result), empty when the run failed.
lat_once() {
	local sys=$1 rate=$2 out
	shift 2
	LAT_P50='' LAT_P99=''
	if out=$("$@" 2>"$TMP/err"); then
		lat_emit "$sys" "$rate" "$out"
		LAT_P50=$(kv send_p50_us "$out") LAT_P99=$(kv send_p99_us "$out")
	else
		note "$W" "$sys @ $rate/s failed in a run: $(tail -1 "$TMP/err")"
	fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.4f", a / b }'; }

# Every system is started once and stays up, idle between its runs; then each round
# runs every system in turn, jobpool and the peers back to back, so that the ratio of
# jobpool to the best peer is taken within one round (a minute or so) and the host's
# drift over the whole workload does not fall between them.
jp_start w3 '{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }'
start_bg FPID "$OBJ/floor" "$TMP/floor.sock" 2 echo
wait_sock "$TMP/floor.sock"
have_bs=0
if command -v beanstalkd >/dev/null; then
	bs_start "" echo 2
	have_bs=1
	note "$W" "beanstalkd: no binlog, Unix socket, 2 workers as in W1; the client puts on one connection and keeps 4 reserves outstanding on the results tube (64 or more made beanstalkd's p90 hundreds of ms: deletes queue behind pending reserves)."
fi
have_gm=0
if have_gearman; then
	gm_start echo 2
	have_gm=1
	note "$W" "Gearman: gearmand -t 1 on 127.0.0.1 (it has no Unix socket), 2 libgearman workers as in W1; bench/gm_bench.c lat submits foreground echo jobs (SUBMIT_JOB) on one TCP connection with TCP_NODELAY, speaking Gearman's protocol itself (libgearman's client cannot send on a schedule), and reads WORK_COMPLETE; 5,000/s only, as the other peers."
fi
note "$W" "python asyncio: bench/py_peer.py lat, job i handed to a ProcessPoolExecutor(2) by loop.run_in_executor at its due time (loop.call_at), measured from that hand-over (and from the due time) to its future's completion in the event loop; 5,000/s only (its W1 throughput, about 7,000 jobs/s, cannot carry 100,000/s)."
bests=''
for r in $(seq "$REPS"); do
	for rate in $RATES; do
		lat_once "jobpool" "$rate" "$OBJ/jplat" -s "$JP_SOCK" -r "$rate" -d "$DUR" -w 0.5
		jp50=$LAT_P50 jp99=$LAT_P99
		# The peers at 5,000/s only: none carries 100,000/s (W1: 35,000 jobs/s at most).
		b50='' b99='' bname=''
		if [ "$rate" = 5000 ]; then
			for peer in beanstalkd Gearman python; do
				case $peer in
				beanstalkd) [ "$have_bs" = 1 ] || continue
					lat_once beanstalkd 5000 "$OBJ/bs_bench" lat "$BS_ADDR" 5000 "$DUR" 0.5 ;;
				Gearman) [ "$have_gm" = 1 ] || continue
					lat_once Gearman 5000 "$OBJ/gm_bench" lat "$GM_PORT" 5000 "$DUR" 0.5 ;;
				python) lat_once "python asyncio" 5000 "$PY" "$BENCH_DIR/py_peer.py" lat 5000 "$DUR" 0.5 2 ;;
				esac
				[ -n "$LAT_P50" ] || continue
				if [ -z "$b50" ] || awk -v a="$LAT_P50" -v b="$b50" 'BEGIN { exit !(a < b) }'; then
					b50=$LAT_P50 bname=$peer
				fi
				if [ -z "$b99" ] || awk -v a="$LAT_P99" -v b="$b99" 'BEGIN { exit !(a < b) }'; then
					b99=$LAT_P99
				fi
			done
		fi
		lat_once "floor (C relay)" "$rate" "$OBJ/jplat" -s "$TMP/floor.sock" -r "$rate" -d "$DUR" -w 0.5
		if [ -n "$b50" ] && [ -n "$jp50" ]; then
			emit "$W" "jobpool @ $rate/s" "p50 / best peer's p50, same round" ratio "$(ratio "$jp50" "$b50")"
			emit "$W" "jobpool @ $rate/s" "p99 / best peer's p99, same round" ratio "$(ratio "$jp99" "$b99")"
			bests="$bests $bname"
		fi
	done
done
[ -z "$bests" ] || note "$W" "best peer at 5,000/s by p50, round by round:$bests (the p99 ratio takes the lowest peer p99 of its round, whichever peer had it)."
stop_bg "$JP_PID"
stop_bg "$FPID"
[ "$have_bs" = 0 ] || bs_stop
[ "$have_gm" = 0 ] || gm_stop
# Yardsticks (bench/wakeup.c): what one wake-up costs here, how late the client's own
# timer fires, and how often the host takes a vCPU from a process that never blocks;
# every system above pays these alike.
for r in $(seq "$REPS"); do
	if out=$("$OBJ/wakeup" stall "$([ "$QUICK" = 1 ] && echo 1 || echo 5)" 2>/dev/null); then
		what="yardstick: CPU taken from a spinning process (both CPUs)"
		emit "$W" "$what" "gaps of 100 us or more" "per s" "$(kv gaps_100us_per_s "$out")"
		emit "$W" "$what" "gaps of 1 ms or more" "per s" "$(kv gaps_1ms_per_s "$out")"
		emit "$W" "$what" "longest gap" us "$(kv max_us "$out")"
		emit "$W" "$what" "time lost in gaps of 20 us or more" % "$(kv lost_pct "$out")"
	fi
	for m in "pipe same" "pipe cross" "timer" "timer 20000 40" "timer 20000 160"; do
		# shellcheck disable=SC2086
		out=$("$OBJ/wakeup" $m 2>/dev/null) || continue
		case $m in
		"pipe same") what="wake-up through a pipe, same CPU" ;;
		"pipe cross") what="wake-up through a pipe, to the other (idle) CPU" ;;
		"timer") what="client timer (ppoll) lateness" ;;
		*) what="client timer lateness after a ${m##* } us sleep" ;;
		esac
		emit "$W" "yardstick: $what" p50 us "$(kv p50_us "$out")"
		emit "$W" "yardstick: $what" p90 us "$(kv p90_us "$out")"
		emit "$W" "yardstick: $what" p99 us "$(kv p99_us "$out")"
	done
done
note "$W" "p50 ... max: submit-to-result, from the moment the job's request was in the socket (jobpool, floor, beanstalkd, Gearman: the write that carried it returned; python: run_in_executor was called) to the moment its result was read. 'from due': from the job's scheduled time instead, which adds the client's own lateness ('client lag': how late the client's timer woke it to send; a system that held the client back would show there). The 0.5 s warm-up is excluded; achieved = measured results / offered window (or until the last result if later)."
finish_alone
