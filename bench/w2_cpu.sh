#!/usr/bin/env bash
# W2, CPU scaling: K = 40 jobs of about 50 ms of CPU each (the spin handler, "N X": the
# sum of i*X for i < N; N calibrated on this machine by bench/spincal.c so one job takes
# ~50 ms), through each system with 1 worker and with 2 workers.
#   efficiency (vs 1 worker)  = T1 / (2 x T2)   T1, T2: wall time, first submit to last
#                                               result, of the same K jobs through the
#                                               same system with 1 and with 2 workers
#   efficiency (vs CPU time)  = Tcpu / (2 x T2) Tcpu: the K jobs run back to back in one
#                                               process (spincal -p 1), no IPC at all
#   machine's own efficiency  = Tcpu / (2 x Tp2) Tp2: the K jobs split over 2 processes
#                                               (spincal -p 2), no IPC: the yardstick
# jobpool and the floor run in rounds with the machine (below), peers in blocks after.
#
#   bench/w2_cpu.sh [BUILD_DIR]        (BENCH_QUICK=1: 8 jobs, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers

W="W2 cpu"
if [ "$QUICK" = 1 ]; then K=8; else K=40; fi
MS=${W2_MS:-50}
N=$("$OBJ/spincal" -c "$MS")
echo "== $W: $K jobs of ~$MS ms (spin N=$N), $REPS runs each" >&2
seq "$K" | awk -v n="$N" '{ print n, $1 }' >"$TMP/spin.in"

elapsed() {		# elapsed CMD...: run it, print its wall time in seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
}
eff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / (2 * b) }'; }	# eff T1 T2
# pair SYSTEM T1 T2 [TCPU MACHINE_EFF]
pair() {
	local e
	e=$(eff "$2" "$3")
	emit "$W" "$1" "efficiency vs 1 worker" ratio "$e"
	if [ -n "${4:-}" ]; then
		emit "$W" "$1" "efficiency vs CPU time" ratio "$(eff "$4" "$3")"
		emit "$W" "$1" "of the machine's, same round" ratio \
		    "$(awk -v a="$e" -v b="$5" 'BEGIN { printf "%.4f", a / b }')"
	fi
	emit "$W" "$1" "T2 (2 workers)" s "$3"
}

# --- the machine, jobpool and the floor, in rounds -------------------------------------
# Each round runs, back to back: the machine's own scaling (the K jobs in 1 process,
# then split over 2 processes, no IPC: spincal -p; its 1-process time is Tcpu), jobpool
# and the floor. Their efficiencies over the machine's of the same round are the rows
# "of the machine's, same round": what a system loses itself, with the host's speed of
# that minute taken out as far as a few seconds apart allows. (This VM's CPU speed
# moves by a third from one second to the next; see bench/README.md.)
# jobpool: one daemon for all rounds, warmed by 4 untimed jobs per queue (a fresh
# daemon per run was slower in some first runs: T2 1.15-1.48 s against 1.02-1.03 warm).
jp_start w2 '{ name = "cpu1"; handler = "spin"; workers = 1; },
    { name = "cpu2"; handler = "spin"; workers = 2; }'
head -4 "$TMP/spin.in" | "$JOBPOOLCTL" -s "$JP_SOCK" map -q cpu1 >/dev/null
head -4 "$TMP/spin.in" | "$JOBPOOLCTL" -s "$JP_SOCK" map -q cpu2 >/dev/null
start_bg F1 "$OBJ/floor" "$TMP/f1.sock" 1 spin
start_bg F2 "$OBJ/floor" "$TMP/f2.sock" 2 spin
wait_sock "$TMP/f1.sock"; wait_sock "$TMP/f2.sock"
for r in $(seq "$REPS"); do
	m1=$(kv seconds "$("$OBJ/spincal" -p 1 "$N" "$K")")
	me=$(eff "$m1" "$(kv seconds "$("$OBJ/spincal" -p 2 "$N" "$K")")")
	emit "$W" "machine (2 processes, no IPC)" "efficiency vs 1 process" ratio "$me"
	t1=$(elapsed "$JOBPOOLCTL" -s "$JP_SOCK" map -k -q cpu1 <"$TMP/spin.in")
	t2=$(elapsed "$JOBPOOLCTL" -s "$JP_SOCK" map -k -q cpu2 <"$TMP/spin.in")
	pair "jobpool" "$t1" "$t2" "$m1" "$me"
	t1=$(elapsed "$JOBPOOLCTL" -s "$TMP/f1.sock" map -k <"$TMP/spin.in")
	t2=$(elapsed "$JOBPOOLCTL" -s "$TMP/f2.sock" map -k <"$TMP/spin.in")
	pair "floor (C relay)" "$t1" "$t2" "$m1" "$me"
done
stop_bg "$JP_PID"
stop_bg "$F1"; stop_bg "$F2"
note "$W" "machine: the $K jobs in one process, then in two forked at once (\`spincal -p\`), nothing shared: the scaling this VM gives at that minute, which no system can beat for long. jobpool's and the floor's rows \"of the machine's, same round\" divide their efficiency by it."

# --- Python (its own pure-Python loop, calibrated to the same ~50 ms) ------------------
PYN=$("$PY" "$BENCH_DIR/py_peer.py" cal "$MS")
for pat in gather queue; do
	for r in $(seq "$REPS"); do
		t1=$(kv seconds "$("$PY" "$BENCH_DIR/py_peer.py" w2 "$pat" "$PYN" "$K" 1)")
		t2=$(kv seconds "$("$PY" "$BENCH_DIR/py_peer.py" w2 "$pat" "$PYN" "$K" 2)")
		pair "python $pat" "$t1" "$t2"
	done
done
note "$W" "python rows run a pure-Python loop calibrated to ~$MS ms (N=$PYN), timed from the first submit with the pool's processes already started."

# --- beanstalkd, Gearman (the same C loop in their workers) ----------------------------
if command -v beanstalkd >/dev/null; then
	for r in $(seq "$REPS"); do
		bs_start "" spin 1
		t1=$(kv seconds "$("$OBJ/bs_bench" tput "$BS_ADDR" "$K" 4096 "$N 3")"); bs_stop
		bs_start "" spin 2
		t2=$(kv seconds "$("$OBJ/bs_bench" tput "$BS_ADDR" "$K" 4096 "$N 3")"); bs_stop
		pair "beanstalkd" "$t1" "$t2"
	done
fi
if have_gearman; then
	for r in $(seq "$REPS"); do
		gm_start spin 1
		t1=$(kv seconds "$("$OBJ/gm_bench" tput "$GM_PORT" "$K" 1024 "$N 3")"); gm_stop
		gm_start spin 2
		t2=$(kv seconds "$("$OBJ/gm_bench" tput "$GM_PORT" "$K" 1024 "$N 3")"); gm_stop
		pair "gearmand -t 1" "$t1" "$t2"
	done
fi

# --- xargs -P, GNU parallel (a process per job: bench/spincal N X) ---------------------
for r in $(seq "$REPS"); do
	t1=$(elapsed sh -c "xargs -P1 -n2 '$OBJ/spincal' <'$TMP/spin.in'")
	t2=$(elapsed sh -c "xargs -P2 -n2 '$OBJ/spincal' <'$TMP/spin.in'")
	pair "xargs -P2" "$t1" "$t2"
done
if command -v parallel >/dev/null; then
	for r in $(seq "$REPS"); do
		t1=$(elapsed sh -c "parallel --will-cite -j1 --colsep ' ' '$OBJ/spincal' {1} {2} <'$TMP/spin.in'")
		t2=$(elapsed sh -c "parallel --will-cite -j2 --colsep ' ' '$OBJ/spincal' {1} {2} <'$TMP/spin.in'")
		pair "parallel -j2" "$t1" "$t2"
	done
else
	note "$W" "GNU parallel not installed (apt-get install parallel): skipped."
fi
note "$W" "spin N=$N calibrated by bench/spincal.c (best of 5) for ~$MS ms per job; a 2-core shared machine: any other load lands directly on T2."
finish_alone
