#!/usr/bin/env bash
# bench/ab_batch.sh: batch handlers (issue 15), the same plugin a batch at a time and one
# job at a time, side by side in alternating rounds. The plugin is the example bulk
# insert (examples/batch_append.c): each job a 64-byte record appended to a file, on
# disk. Two shapes:
#   nosync  tiny jobs: a record is a write() to the page cache, so what a batch saves is
#           the per-job cost of the handler call, the write and the frames around it;
#   sync    each call ends with an fdatasync, the reason to batch: one flush a batch
#           against one a record.
# One worker, jpbench with one producer and 4096 jobs in flight (W1's shape). The one-
# at-a-time queue keeps the daemon's own adaptive framing (`batch = 64` jobs in flight
# to a worker), so the comparison is the handler's batch entry point and nothing else.
# Prints each round's jobs/s and the worker's CPU time per job (utime + stime from
# /proc: what the handler and its frames cost, apart from the master), the medians
# and their ratios.
#
#   bench/ab_batch.sh [BUILD_DIR]   (default build/: configure without sanitizers)
#   AB_ROUNDS=N (default 5), AB_JOBS (nosync, default 200,000), AB_SYNC_JOBS (sync,
#   default 20,000), AB_BATCH (batch_size, default 64), AB_SHAPES (default "nosync sync"),
#   BATCH_DIR (where the records go; default the temp dir; not tmpfs for sync)
set -euo pipefail
export BUILD=${1:-${BUILD:-$(dirname "$0")/../build}}
. "$(dirname "$0")/lib.sh"
build_helpers
make -C "$BUILD" -s examples/batch_append.la >/dev/null
SO=$BUILD/examples/.libs/batch_append.so
[ -f "$SO" ] || { echo "bench: $SO was not built" >&2; exit 1; }
ROUNDS=${AB_ROUNDS:-5}
BS=${AB_BATCH:-64}
DISK=${BATCH_DIR:-$TMP}

TCK=$(getconf CLK_TCK)

# run MODE SHAPE JOBS: "jobs/s worker-us/job" of one fresh daemon (MODE one or batch).
run() {
	local q out opt="" wpid cpu
	[ "$2" = nosync ] && opt=" nosync"
	rm -f "$DISK/abbatch.records"
	q="{ name = \"default\"; workers = 1; max_jobs = 100000; batch = 64;
	    handler = \"plugin:$SO $DISK/abbatch.records$opt\";"
	[ "$1" = batch ] && q="$q batch_size = $BS; batch_wait_ms = 10;"
	jp_start abbatch "$q }"
	out=$("$JPBENCH" -s "$JP_SOCK" -n "$3" -b 64 -j 4096 -p 1)
	wpid=$(pgrep -P "$JP_PID" | head -1)
	# utime + stime (fields 14, 15; the name in field 2 has no blanks: jp:default).
	cpu=$(awk '{ print $14 + $15 }' "/proc/$wpid/stat")
	stop_bg "$JP_PID"
	[ "$(wc -l <"$DISK/abbatch.records")" = "$3" ] ||
		{ echo "bench: $1 $2: not every record was written" >&2; exit 1; }
	rm -f "$DISK/abbatch.records"
	echo "$(kv jobs_per_s "$out") $(awk -v c="$cpu" -v t="$TCK" -v n="$3" \
	    'BEGIN { printf "%.2f", c / t * 1e6 / n }')"
}

for shape in ${AB_SHAPES:-nosync sync}; do
	if [ "$shape" = sync ]; then
		jobs=${AB_SYNC_JOBS:-20000}
		case $(findmnt -n -o FSTYPE -T "$DISK" 2>/dev/null || stat -f -c %T "$DISK") in
		tmpfs|ramfs) echo "bench: $DISK is on tmpfs; set BATCH_DIR to a directory on disk" >&2
			exit 1 ;;
		esac
	else
		jobs=${AB_JOBS:-200000}
	fi
	ro='' rb='' co='' cb=''
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			a=$(run one "$shape" "$jobs"); b=$(run batch "$shape" "$jobs")
		else
			b=$(run batch "$shape" "$jobs"); a=$(run one "$shape" "$jobs")
		fi
		ro="$ro ${a% *}" rb="$rb ${b% *}" co="$co ${a#* }" cb="$cb ${b#* }"
	done
	mo=$(echo "$ro" | med) mb=$(echo "$rb" | med)
	mco=$(echo "$co" | med) mcb=$(echo "$cb" | med)
	echo "$shape, $jobs jobs of 64 bytes, 1 worker: one at a time$ro jobs/s (median $mo)," \
	    "worker$co us/job (median $mco); batch_size $BS$rb (median $mb), worker$cb" \
	    "us/job (median $mcb); batch/one: jobs/s" \
	    "$(awk -v a="$mo" -v b="$mb" 'BEGIN { printf "%.2f", b / a }'), worker CPU" \
	    "$(awk -v a="$mco" -v b="$mcb" 'BEGIN { printf "%.2f", b / a }')"
done
