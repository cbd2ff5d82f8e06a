#!/usr/bin/env bash
# bench/ab_spin.sh: two builds of jobpoold side by side on in-process CPU jobs of a given
# length, each against the floor, in alternating rounds (bench/README.md, "What moved
# the figures": the job sent ahead). For each job length MS (ms), 2,000 ms of work in
# jobs of ~MS ms (spin handler, calibrated by spincal), 2 workers, run through
# `jobpoolctl map -k` on an old and a new jobpoold and on the floor; each round runs
# old and new (in turn first) and then the floor, and gives each build's throughput as
# a fraction of the floor's of the same round. Prints the rounds, their medians, and in
# how many rounds the new build was the faster.
#
#   bench/ab_spin.sh OLD_BUILD_DIR NEW_BUILD_DIR [MS ...]    (default MS: 0.5 2 5)
#   AB_ROUNDS=N (default 8)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 64; }
OLDD=$(cd "$1" && pwd)/daemon/jobpoold
NEWD=$(cd "$2" && pwd)/daemon/jobpoold
shift 2
export BUILD=${OLDD%/daemon/jobpoold}
. "$(dirname "$0")/lib.sh"
build_helpers
ROUNDS=${AB_ROUNDS:-8}

ns() { local t0; t0=$(date +%s%N); "$@" >/dev/null; echo $(($(date +%s%N) - t0)); }
frac() { awk -v f="$1" -v t="$2" 'BEGIN { printf "%.3f", f / t }'; }
map_on() { "$JOBPOOLCTL" -s "$1" map -k -q cpu2 <"$TMP/spin.in"; }

mss=("$@")
[ ${#mss[@]} -gt 0 ] || mss=(0.5 2 5)
for MS in "${mss[@]}"; do
	N=$("$OBJ/spincal" -c "$MS")
	K=$(awk -v m="$MS" 'BEGIN { printf "%d", 2000 / m }')
	seq "$K" | awk -v n="$N" '{ print n, $1 }' >"$TMP/spin.in"
	JOBPOOLD=$OLDD jp_start old '{ name = "cpu2"; handler = "spin"; workers = 2; }'
	OS=$JP_SOCK OP=$JP_PID
	JOBPOOLD=$NEWD jp_start new '{ name = "cpu2"; handler = "spin"; workers = 2; }'
	NS=$JP_SOCK NP=$JP_PID
	start_bg FP "$OBJ/floor" "$TMP/floor.sock" 2 spin
	wait_sock "$TMP/floor.sock"
	# Warm both daemons: their job-time averages are measured by then.
	for s in "$OS" "$NS"; do head -50 "$TMP/spin.in" | "$JOBPOOLCTL" -s "$s" map -q cpu2 >/dev/null; done
	ro='' rn='' wins=0
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			a=$(ns map_on "$OS"); b=$(ns map_on "$NS")
		else
			b=$(ns map_on "$NS"); a=$(ns map_on "$OS")
		fi
		f=$(ns "$JOBPOOLCTL" -s "$TMP/floor.sock" map -k <"$TMP/spin.in")
		ro="$ro $(frac "$f" "$a")" rn="$rn $(frac "$f" "$b")"
		[ "$b" -lt "$a" ] && wins=$((wins + 1))
	done
	echo "jobs of $MS ms ($K): of the floor: old$ro (median $(echo "$ro" | med));" \
	    "new$rn (median $(echo "$rn" | med)); new faster in $wins of $ROUNDS"
	stop_bg "$OP"; stop_bg "$NP"; stop_bg "$FP"
done
