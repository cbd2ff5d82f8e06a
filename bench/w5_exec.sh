#!/usr/bin/env bash
# W5, exec handler: 2,000 jobs each running /bin/true, 2 at a time.
# Rows: the floor (bench/spawnfloor.c: posix_spawn + waitpid, 2 children alive), xargs -P2
# (`xargs -P2 -n1 /bin/true`, one argument per process), GNU parallel -j2, and jobpool
# with `handler = "exec:/bin/true"` once `jobpoold -t` accepts that (jpbench, 2,000 jobs);
# until then its row says n/a.
#
#   bench/w5_exec.sh [BUILD_DIR]        (BENCH_QUICK=1: 200 jobs, 1 run)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers

W="W5 exec"
if [ "$QUICK" = 1 ]; then N=${W5_JOBS:-200}; else N=${W5_JOBS:-2000}; fi
echo "== $W: $N x /bin/true, $REPS runs" >&2

# wall_runs SYSTEM CMD...: jobs/s = N / wall time of CMD
wall_runs() {
	local sys=$1 r t0 t1
	shift
	for r in $(seq "$REPS"); do
		t0=$(date +%s.%N)
		"$@" >/dev/null 2>"$TMP/err" || { note "$W" "$sys failed: $(tail -1 "$TMP/err")"; continue; }
		t1=$(date +%s.%N)
		emit "$W" "$sys" throughput jobs/s "$(awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN { printf "%.0f", n / (b - a) }')"
	done
}

tput_runs "$W" "floor (posix_spawn)" "$OBJ/spawnfloor" -n "$N" -P 2 /bin/true
seq "$N" >"$TMP/args"
wall_runs "xargs -P2" sh -c "xargs -P2 -n1 /bin/true <'$TMP/args'"
if command -v parallel >/dev/null; then
	wall_runs "parallel -j2" sh -c "parallel --will-cite -j2 /bin/true <'$TMP/args'"
	note "$W" "GNU parallel $(parallel --version 2>/dev/null | awk 'NR == 1 { print $3 }'), run as \`parallel --will-cite -j2 /bin/true < args\` (its Perl start-up is included, as a user would see it)."
else
	note "$W" "GNU parallel not installed (apt-get install parallel): skipped."
fi

cat >"$TMP/exec.conf" <<CONF
socket = "$TMP/exec.sock";
queues = ( { name = "exec"; handler = "exec:/bin/true"; workers = 2; } );
CONF
if "$JOBPOOLD" -t -c "$TMP/exec.conf" >/dev/null 2>&1; then
	jp_start w5 '{ name = "exec"; handler = "exec:/bin/true"; workers = 2; }'
	tput_runs "$W" "jobpool exec:/bin/true" "$JPBENCH" -s "$JP_SOCK" -q exec -n "$N" -b 64 -j 4096
	stop_bg "$JP_PID"
else
	emit "$W" "jobpool exec:/bin/true" throughput jobs/s "n/a (exec handler not built yet)"
	note "$W" "jobpool: n/a (exec handler not built yet: \`jobpoold -t\` rejects handler = \"exec:/bin/true\")."
fi
note "$W" "xargs: $(xargs --version | head -1); the jobpool target is >= 90% of the posix_spawn floor."
finish_alone
