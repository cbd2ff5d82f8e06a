#!/usr/bin/env bash
# W6, durable: W1 (200,000 echo jobs of 64 bytes, 2 workers, pipelined, 4096 in flight
# per connection) through libjobpool (jpbench) with the journal at each fsync policy
# (never, interval with journal_fsync_interval = 1, always), each with 1 producer and
# with 8 producers (jpbench -p 8: 8 processes, a connection each, the same 200,000 jobs
# in total), and the same without a journal as the reference, side by side: every run
# goes through all of them in turn. Each run starts a fresh jobpoold on an empty
# journal directory on disk (under the bench's temp dir; not tmpfs). Peer: beanstalkd
# with its binlog and an fsync on every write (-b DIR -f 0), one producer (bs_bench).
# The target (>= 100,000 jobs/s with always, many producers) is read from the row
# "journal always, 8 producers". Then recovery: 1,000,000 queued jobs after kill -9,
# the time until the daemon answers again and its RSS before and after
# (W6_RECOVER_JOBS).
#
#   bench/w6_durable.sh [BUILD_DIR] [REPS] [JOBS]   (BENCH_QUICK=1: fewer jobs and runs)
#
# W6_PRODUCERS (default "1 8"), W6_POLICIES (default "never interval always"; "" runs
# only the no-journal rows), W6_WINDOW (4096), W6_BS_JOBS (beanstalkd's jobs, default
# 10,000: it fsyncs every put), W6_DIR (the parent of the journal and binlog
# directories; default the temp dir).
# A jobpoold that rejects the journal_* settings (no journal built) fails the script
# (exit 1) after the no-journal and beanstalkd rows, with the daemon's error printed.
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
[ $# -ge 2 ] && export BENCH_REPS=$2
. "$(dirname "$0")/lib.sh"
build_helpers

# beanstalkd fsyncs each put (about 1,800 jobs/s here): fewer jobs, or a run takes minutes.
if [ "$QUICK" = 1 ]; then jobs=${3:-20000}; bs_jobs=${W6_BS_JOBS:-2000}; else jobs=${3:-200000}; bs_jobs=${W6_BS_JOBS:-10000}; fi
producers=${W6_PRODUCERS:-1 8}
policies=${W6_POLICIES-never interval always}
window=${W6_WINDOW:-4096}
W="W6 durable"
echo "== $W: $jobs jobs, producers: $producers; journal: none $policies; $REPS runs each" >&2

# The journal goes on disk: an fsync on tmpfs costs nothing and would measure nothing.
DISK=${W6_DIR:-$TMP}
mkdir -p "$DISK"
DISK=$(cd "$DISK" && pwd)
fstype=$(findmnt -n -o FSTYPE -T "$DISK" 2>/dev/null || stat -f -c %T "$DISK")
case $fstype in
tmpfs|ramfs)
	echo "bench: $W: $DISK is on $fstype; set W6_DIR to a directory on disk" >&2
	exit 1 ;;
esac
JDIR=$DISK/w6-journal

QCONF='{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }'

# journal_conf POLICY: the top-level settings for POLICY ("none": no journal).
journal_conf() {
	case $1 in
	none) ;;
	interval) printf 'journal_dir = "%s";\njournal_fsync = "interval";\njournal_fsync_interval = 1;\n' "$JDIR" ;;
	*) printf 'journal_dir = "%s";\njournal_fsync = "%s";\n' "$JDIR" "$1" ;;
	esac
}

sysname() {
	local pol=$1 p=$2 s
	[ "$p" = 1 ] && s="1 producer" || s="$p producers"
	if [ "$pol" = none ]; then echo "jobpool no journal, $s"; else echo "jobpool journal $pol, $s"; fi
}

# Which policies this jobpoold accepts (`jobpoold -t`); the others get an n/a row.
ok_policies=(none)
rejected_policies=()
rejected=0
for pol in $policies; do
	cat >"$TMP/w6check.conf" <<CONF
socket = "$TMP/w6check.sock";
$(journal_conf "$pol")
queues = ( $QCONF );
CONF
	if "$JOBPOOLD" -t -c "$TMP/w6check.conf" >"$TMP/w6check.out" 2>&1; then
		ok_policies+=("$pol")
	else
		rejected=1
		echo "bench: $W: jobpoold rejects journal_fsync = \"$pol\" (no journal in this build?):" >&2
		sed 's/^/  /' "$TMP/w6check.out" >&2
		rejected_policies+=("$pol")
		note "$W" "journal $pol: n/a, \`jobpoold -t\` said: $(grep -v 'is valid' "$TMP/w6check.out" | tail -1)"
	fi
	rm -rf "$JDIR"
done

# --- jobpool, every policy in turn in each run -----------------------------------------
for r in $(seq "$REPS"); do
	for pol in "${ok_policies[@]}"; do
		for p in $producers; do
			# A fresh daemon on an empty journal each time.
			rm -rf "$JDIR"
			jp_start w6 "$QCONF" "$(journal_conf "$pol")"
			REPS=1 tput_runs "$W" "$(sysname "$pol" "$p")" \
			    "$JPBENCH" -s "$JP_SOCK" -n "$jobs" -b 64 -j "$window" -p "$p"
			stop_bg "$JP_PID"
		done
	done
done
for pol in "${rejected_policies[@]}"; do
	for p in $producers; do
		emit "$W" "$(sysname "$pol" "$p")" throughput jobs/s "n/a (jobpoold rejects the journal settings)"
	done
done
rm -rf "$JDIR"
note "$W" "jobpool: jpbench, $jobs jobs in total, $window in flight per connection; with -p P, P processes with a connection each do $jobs/P jobs, started together, timed from the start to the last one's last result. A fresh jobpoold for every run."
if [ ${#ok_policies[@]} -gt 1 ]; then
	note "$W" "journal: a fresh, empty journal_dir on $fstype (${W6_DIR:-under the bench temp dir}) for every run; journal_fsync_interval = 1 (s) for interval. The target (>= 100,000 jobs/s with always, many producers sharing group commits) is read from the median of \"jobpool journal always, 8 producers\"."
fi

# --- recovery: a backlog of queued jobs back after kill -9 ------------------------------
# Two 10-minute jobs hold both workers; RJOBS jobs of 64 bytes wait behind them; the
# daemon is killed with SIGKILL and started again on the same journal. Measured: time
# from the start to the first answer to PING (the journal is replayed before the event
# loop runs), and the master's RSS before the kill and once the jobs are back.
if [ ${#ok_policies[@]} -gt 1 ]; then
	if [ "$QUICK" = 1 ]; then rjobs=${W6_RECOVER_JOBS:-100000}; else rjobs=${W6_RECOVER_JOBS:-1000000}; fi
	RQ='{ name = "hold"; handler = "sleep"; workers = 2; batch = 1; max_jobs = 2000000; }'
	rsys="jobpool recovery, $rjobs queued jobs"
	for r in $(seq "$REPS"); do
		rm -rf "$JDIR"
		jp_start w6r "$RQ" "$(journal_conf interval)"
		"$OBJ/jpfill" -s "$JP_SOCK" -q hold -n 2 -t 600000 >/dev/null
		"$OBJ/jpfill" -s "$JP_SOCK" -q hold -n "$rjobs" -t 0 >/dev/null
		before=$(rss_kb "$JP_PID")
		kill -KILL "$JP_PID"
		stop_bg "$JP_PID"
		t0=$(date +%s%N)
		start_bg JP_PID "$JOBPOOLD" -c "$TMP/w6r.conf"
		until "$JOBPOOLCTL" -s "$JP_SOCK" ping >/dev/null 2>&1; do
			kill -0 "$JP_PID" 2>/dev/null || break
			sleep 0.01
		done
		t1=$(date +%s%N)
		depth=$("$JOBPOOLCTL" -s "$JP_SOCK" status | awk '$1 == "hold" && $3 == "sleep" { print $5 }')
		if [ "${depth:-0}" -ne "$rjobs" ]; then
			note "$W" "$rsys: a run recovered ${depth:-none} of $rjobs waiting jobs"
		fi
		emit "$W" "$rsys" "time to ready after kill -9" ms "$(( (t1 - t0) / 1000000 ))"
		emit "$W" "$rsys" "master RSS before the kill" MiB "$(awk -v k="$before" 'BEGIN { printf "%.1f", k / 1024 }')"
		emit "$W" "$rsys" "master RSS once recovered" MiB "$(awk -v k="$(rss_kb "$JP_PID")" 'BEGIN { printf "%.1f", k / 1024 }')"
		stop_bg "$JP_PID"
	done
	rm -rf "$JDIR"
	note "$W" "recovery: $rjobs jobs of 64 bytes queued behind two running ones (journal_fsync interval), the daemon killed with SIGKILL and started again on its journal; time from the start to the first PING answer, which comes once the journal is replayed, the jobs are queued again and a fresh file holds them."
fi

# --- beanstalkd, binlog with an fsync on every write -----------------------------------
if command -v beanstalkd >/dev/null; then
	for r in $(seq "$REPS"); do
		bs_start "$DISK/w6-binlog" echo 2 -f 0
		REPS=1 tput_runs "$W" "beanstalkd -b -f 0 (fsync always), 1 producer" \
		    "$OBJ/bs_bench" tput "$BS_ADDR" "$bs_jobs" 4096
		bs_stop
	done
	rm -rf "$DISK/w6-binlog"
	note "$W" "beanstalkd $(bs_version) -b DIR -f 0 (binlog, fsync on every write), $bs_jobs jobs, the W1 client (one producer connection, 4096 unfinished; bs_bench has no producer option), a fresh server and binlog each run."
else
	note "$W" "beanstalkd not installed (apt-get install beanstalkd): skipped."
fi
finish_alone
if [ "$rejected" = 1 ]; then
	echo "bench: $W: jobpoold rejected the journal settings of: ${rejected_policies[*]} (see above); their rows are n/a" >&2
	exit 1
fi
