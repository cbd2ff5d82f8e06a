#!/usr/bin/env bash
# W5, exec handler: 2,000 jobs each running /bin/true, 2 at a time.
# Rows: the floor (bench/spawnfloor.c: posix_spawn + waitpid, 2 children alive), xargs -P2
# (`xargs -P2 -n1 /bin/true`, one argument per process), GNU parallel -j2, and jobpool
# with `handler = "exec:/bin/true"` once `jobpoold -t` accepts that (jpbench, 2,000 jobs);
# until then its row says n/a. Each round runs them all in turn, and gives jobpool's
# rate over the floor's of the same round (row "of the floor, same round").
#
#   bench/w5_exec.sh [BUILD_DIR]        (BENCH_QUICK=1: 200 jobs, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers

W="W5 exec"
if [ "$QUICK" = 1 ]; then N=${W5_JOBS:-200}; else N=${W5_JOBS:-2000}; fi
echo "== $W: $N x /bin/true, $REPS runs" >&2

# run_once SYSTEM wall|tput CMD...: one run, its row emitted; sets RATE (jobs/s, empty
# when it failed). wall: N / the wall time of CMD; tput: CMD prints jobs_per_s=.
run_once() {
	local sys=$1 how=$2 t0 t1 out
	shift 2
	RATE=''
	t0=$(date +%s.%N)
	if ! out=$("$@" 2>"$TMP/err"); then
		note "$W" "$sys failed in a run: $(tail -1 "$TMP/err")"
		return 0
	fi
	t1=$(date +%s.%N)
	if [ "$how" = wall ]; then
		RATE=$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f", n / (b - a) }')
	else
		RATE=$(kv jobs_per_s "$out")
	fi
	emit "$W" "$sys" throughput jobs/s "$RATE"
}

seq "$N" >"$TMP/args"
have_par=0
if command -v parallel >/dev/null; then
	have_par=1
	note "$W" "GNU parallel $(parallel --version 2>/dev/null | awk 'NR == 1 { print $3 }'), run as \`parallel --will-cite -j2 /bin/true < args\` (its Perl start-up is included, as a user would see it)."
else
	note "$W" "GNU parallel not installed (apt-get install parallel): skipped."
fi
cat >"$TMP/exec.conf" <<CONF
socket = "$TMP/exec.sock";
queues = ( { name = "exec"; handler = "exec:/bin/true"; workers = 2; } );
CONF
have_jp=0
if "$JOBPOOLD" -t -c "$TMP/exec.conf" >/dev/null 2>&1; then
	jp_start w5 '{ name = "exec"; handler = "exec:/bin/true"; workers = 2; }'
	have_jp=1
else
	emit "$W" "jobpool exec:/bin/true" throughput jobs/s "n/a (exec handler not built yet)"
	note "$W" "jobpool: n/a (exec handler not built yet: \`jobpoold -t\` rejects handler = \"exec:/bin/true\")."
fi
# In rounds, as W3: the floor and jobpool back to back, so that their ratio (the
# target) is taken within a round and the host's drift over the workload falls on both.
for r in $(seq "$REPS"); do
	run_once "floor (posix_spawn)" tput "$OBJ/spawnfloor" -n "$N" -P 2 /bin/true
	fl=$RATE
	if [ "$have_jp" = 1 ]; then
		run_once "jobpool exec:/bin/true" tput "$JPBENCH" -s "$JP_SOCK" -q exec -n "$N" -b 64 -j 4096
		if [ -n "$RATE" ] && [ -n "$fl" ]; then
			emit "$W" "jobpool exec:/bin/true" "of the floor, same round" ratio \
			    "$(awk -v a="$RATE" -v b="$fl" 'BEGIN { printf "%.4f", a / b }')"
		fi
	fi
	run_once "xargs -P2" wall sh -c "xargs -P2 -n1 /bin/true <'$TMP/args'"
	[ "$have_par" = 0 ] ||
		run_once "parallel -j2" wall sh -c "parallel --will-cite -j2 /bin/true <'$TMP/args'"
done
[ "$have_jp" = 0 ] || stop_bg "$JP_PID"
note "$W" "xargs: $(xargs --version | head -1); the jobpool target is >= 90% of the posix_spawn floor."
finish_alone
