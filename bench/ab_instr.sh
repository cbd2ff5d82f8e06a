#!/usr/bin/env bash
# bench/ab_instr.sh: the master's instructions per job, two builds side by side, counted
# by valgrind's callgrind: W1's shape (jpbench, 64-byte echo jobs, 2 workers, 4096 in
# flight, one producer) with or without a journal. Instruction counts do not move with
# the load of a shared host the way jobs/s do (these 2-vCPU VMs swing by 2x between
# minutes), so a change to the job's path in the master shows here when a throughput
# A/B drowns it in noise. What it does not see: system calls' cost, cache misses,
# waiting; it complements bench/ab_w6.sh, it does not replace it. Start-up and shutdown
# are counted too, spread over the jobs (a few Ir per job at the default 100,000).
#
#   bench/ab_instr.sh OLD_BUILD_DIR NEW_BUILD_DIR [POLICY ...]   (default: none;
#   POLICY: none, or a journal_fsync value). AB_JOBS (default 100,000), AB_ROUNDS (2).
# Needs valgrind; builds without sanitizers.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14p' "$0"; exit 64; }
OLD=$(cd "$1" && pwd) NEW=$(cd "$2" && pwd)
shift 2
command -v valgrind >/dev/null || { echo "bench: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
JOBS=${AB_JOBS:-100000}
ROUNDS=${AB_ROUNDS:-2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/abinstr.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# irs BUILD POLICY: the master's instructions per job.
irs() {
	local b=$1 pol=$2 d i vp out
	d=$(mktemp -d "$TMP/run.XXXX")
	{
		echo "socket = \"$d/s\";"
		echo 'log_level = "warning";'
		[ "$pol" = none ] || echo "journal_dir = \"$d/j\"; journal_fsync = \"$pol\";"
		echo 'queues = ( { name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; } );'
	} >"$d/c.conf"
	# Workers are forked, not exec'd, so they are counted too, each in its own file;
	# the master's is the one of the pid valgrind started.
	valgrind --tool=callgrind --callgrind-out-file="$d/cg.%p" \
	    "$b/daemon/jobpoold" -c "$d/c.conf" 2>"$d/vg.log" &
	vp=$!
	for i in $(seq 600); do
		"$b/cli/jobpoolctl" -s "$d/s" ping >/dev/null 2>&1 && break
		kill -0 "$vp" 2>/dev/null || { cat "$d/vg.log" >&2; exit 1; }
		sleep 0.1
	done
	"$b/bench/jpbench" -s "$d/s" -n "$JOBS" -b 64 -j 4096 >/dev/null
	kill -TERM "$vp"
	wait "$vp" || true
	out=$(awk '/^summary:/ { print $2; exit }' "$d/cg.$vp")
	awk -v ir="$out" -v n="$JOBS" 'BEGIN { printf "%.0f", ir / n }'
}

pols=("$@")
[ ${#pols[@]} -gt 0 ] || pols=(none)
for pol in "${pols[@]}"; do
	o='' n=''
	for r in $(seq "$ROUNDS"); do
		o="$o $(irs "$OLD" "$pol")"
		n="$n $(irs "$NEW" "$pol")"
	done
	echo "journal $pol, $JOBS jobs: master Ir/job old$o; new$n;" \
	    "new/old $(echo "$o|$n" | awk -F'|' '{ split($1, a, " "); split($2, b, " ");
		sa = 0; sb = 0; for (i in a) sa += a[i]; for (i in b) sb += b[i];
		printf "%.3f", sb / sa }')"
done
