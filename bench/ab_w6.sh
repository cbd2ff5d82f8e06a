#!/usr/bin/env bash
# bench/ab_w6.sh: two builds of jobpoold side by side on W6 (bench/README.md): jpbench's
# 64-byte echo jobs, 2 workers, 4096 in flight per connection, through a journal on
# disk at one fsync policy, in alternating rounds. Each round starts a fresh daemon of
# each build on an empty journal directory (old first in odd rounds, new first in even
# ones) and runs the same producers on both. Prints each round's jobs/s, the medians, the
# new build's median ratio to the old one's, and in how many rounds the new was faster.
#
#   bench/ab_w6.sh OLD_BUILD_DIR NEW_BUILD_DIR [POLICY ...]   (default: always;
#   "none": no journal, which is W1 through the C library)
#   AB_ROUNDS=N (default 7), AB_JOBS (default 200,000), AB_PRODUCERS (default "1 8"),
#   W6_DIR (the journal's parent directory; default the temp dir; not tmpfs)
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 64; }
OLDD=$(cd "$1" && pwd)/daemon/jobpoold
NEWD=$(cd "$2" && pwd)/daemon/jobpoold
shift 2
export BUILD=${OLDD%/daemon/jobpoold}
. "$(dirname "$0")/lib.sh"
build_helpers
ROUNDS=${AB_ROUNDS:-7}
JOBS=${AB_JOBS:-200000}
DISK=${W6_DIR:-$TMP}
case $(findmnt -n -o FSTYPE -T "$DISK" 2>/dev/null || stat -f -c %T "$DISK") in
tmpfs|ramfs) echo "bench: $DISK is on tmpfs; set W6_DIR to a directory on disk" >&2; exit 1 ;;
esac
QCONF='{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }'

# run DAEMON POLICY PRODUCERS: jobs/s of one fresh daemon on an empty journal.
run() {
	local out
	rm -rf "$DISK/abw6-journal"
	if [ "$2" = none ]; then
		JOBPOOLD=$1 jp_start abw6 "$QCONF"
	else
		JOBPOOLD=$1 jp_start abw6 "$QCONF" "journal_dir = \"$DISK/abw6-journal\"; journal_fsync = \"$2\"; journal_fsync_interval = 1;"
	fi
	out=$("$JPBENCH" -s "$JP_SOCK" -n "$JOBS" -b 64 -j 4096 -p "$3")
	stop_bg "$JP_PID"
	rm -rf "$DISK/abw6-journal"
	kv jobs_per_s "$out"
}

pols=("$@")
[ ${#pols[@]} -gt 0 ] || pols=(always)
for pol in "${pols[@]}"; do
	for p in ${AB_PRODUCERS:-1 8}; do
		ro='' rn='' wins=0
		for r in $(seq "$ROUNDS"); do
			if [ $((r % 2)) = 1 ]; then
				a=$(run "$OLDD" "$pol" "$p"); b=$(run "$NEWD" "$pol" "$p")
			else
				b=$(run "$NEWD" "$pol" "$p"); a=$(run "$OLDD" "$pol" "$p")
			fi
			ro="$ro $a" rn="$rn $b"
			awk -v a="$a" -v b="$b" 'BEGIN { exit !(b > a) }' && wins=$((wins + 1))
		done
		mo=$(echo "$ro" | med) mn=$(echo "$rn" | med)
		echo "journal $pol, $p producer(s), $JOBS jobs: old$ro (median $mo);" \
		    "new$rn (median $mn); new/old $(awk -v a="$mo" -v b="$mn" 'BEGIN { printf "%.3f", b / a }');" \
		    "new faster in $wins of $ROUNDS"
	done
done
