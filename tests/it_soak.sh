#!/usr/bin/env bash
# Random traffic for a while (tests/soak.py): every request of PROTOCOL.md (RELOAD of
# the same file too), well-formed and not, on six connections dropped at random
# (abruptly, halfway through a request, with QUIT), against queues whose jobs succeed,
# sleep, time out and retry, are cancelled, die and are retried again, with the journal
# on, while the file changes and is reloaded every 0.3 s (handlers, pools, limits, a
# queue added and removed) and workers are killed. Then what a user would check: every reply was well framed and the daemon closed no
# connection unasked; it still answers; every job ends (nothing stays running or
# queued); a graceful stop exits 0 with nothing from the sanitizers; the next start
# replays the journal whole (no damaged record) and brings back the dead jobs and
# nothing else; and a graceful stop in the middle of the traffic is clean too.
# SOAK_SECONDS (default 15) and SOAK_SEED (default 1, so that CI sends the same
# requests every time; printed) vary it.
. "$top_srcdir/tests/lib.sh"

SECS=${SOAK_SECONDS:-15}
SEED=${SOAK_SEED:-1}
J="$JP_TMP/journal"
# conf ECHO_HANDLER ECHO_WORKERS ECHO_MAX SLOW_MAX FLAKY_MAX [EXTRA_QUEUE]
conf() {
	printf '%s\n' "journal_dir = \"$J\";
journal_fsync = \"never\";
keep_results = 200;
dead_max = 100;
shutdown_timeout = 1;
queues = (
  { name = \"echo\"; handler = \"$1\"; workers = $2; max_jobs = $3; batch = 16; },
  { name = \"slow\"; handler = \"sleep\"; workers = 1; max_jobs = $4; },
  { name = \"flaky\"; handler = \"sleep\"; workers = 2; timeout = 0.03; grace = 0.05;
    retries = 1; backoff_base = 0.01; backoff_max = 0.05; max_jobs = $5; }${6:-}
);"
}
CONF=$(conf echo 2 2000 300 100)
jp_start "$CONF"

# Meanwhile the file changes every 0.3 s (handlers, pools, limits that make producers
# wait and let them go, a queue that comes and goes) and is reloaded, by `jobpoolctl
# reload` here and by the traffic's own RELOAD requests; and a worker is killed with
# SIGKILL about once a second.
(
	RANDOM=$SEED
	end=$(( $(date +%s) + SECS ))
	while [ "$(date +%s)" -lt "$end" ]; do
		h=echo; [ $((RANDOM % 3)) = 0 ] && h=exec:/bin/cat
		x=; [ $((RANDOM % 2)) = 0 ] && x=', { name = "extra"; handler = "echo"; workers = 1; }'
		conf "$h" $((1 + RANDOM % 3)) $((5 + RANDOM % 2000)) $((1 + RANDOM % 300)) \
			$((1 + RANDOM % 100)) "$x" >"$JP_TMP/jobpool.conf.new"
		{ echo "socket = \"$JP_SOCK\";"; cat "$JP_TMP/jobpool.conf.new"; } >"$JP_TMP/jobpool.conf.tmp"
		mv "$JP_TMP/jobpool.conf.tmp" "$JP_TMP/jobpool.conf"
		[ $((RANDOM % 2)) = 0 ] && "$JOBPOOLCTL" reload >/dev/null 2>&1
		# And now and then a worker dies, whatever it was doing.
		if [ $((RANDOM % 4)) = 0 ]; then
			w=$(pgrep -P "$JP_DPID" | shuf -n 1 --random-source=<(yes "$RANDOM"))
			[ -n "$w" ] && kill -KILL "$w" 2>/dev/null
		fi
		sleep 0.3
	done
) &
changer=$!

echo "soak: seed $SEED, $SECS s (SOAK_SEED=$SEED to run the same traffic again)"
out=$(timeout $((SECS + 60)) python3 "$top_srcdir/tests/soak.py" "$JP_SOCK" "$SECS" "$SEED"); rc=$?
echo "$out"
wait $changer
jp_eq "the traffic saw every reply well framed and no connection closed unasked" 0 "$rc"
# Back to the first file, so that the restart below finds the same queues.
jp_config "$CONF" >/dev/null
jp_eq "a last reload, to the first file" reloaded "$(jp_ctl reload 2>&1)"
jp_eq "the daemon still answers" pong "$(jp_ctl ping 2>&1 | awk '{ print $NF }')"

# Every job ends: delays are at most 0.3 s, jobs at most 0.1 s, retries 0.05 s apart;
# the queues hold at most a few hundred.
# none_busy: no queue holds a job; those that do are in $busy.
none_busy() {
	busy=$(jp_ctl status | awk '$1 ~ /^(echo|slow|flaky)$/ && $2 != "" && NF >= 11 &&
		($5 + $6 + $7) > 0 { print $1 ": depth " $5 ", delayed " $6 ", running " $7 }')
	[ -z "$busy" ]
}
jp_until 30 none_busy
jp_eq "every job ended (no queue holds one)" "" "$busy"
ndead=$(jp_ctl dead | grep -c '^[0-9]')
jp_stop

jp_start "$CONF"
if grep -q 'damaged\|is kept as' "$JP_LOG"; then
	jp_fail "the journal had a damaged record after a graceful stop: $(grep -m1 damaged "$JP_LOG")"
else
	jp_pass "the journal replays whole after the soak"
fi
jp_eq "the dead jobs are back, and nothing else" "$ndead" "$(jp_ctl dead | grep -c '^[0-9]')"
jp_eq "no job waits after the restart" 0 "$(jp_ctl status | awk '$1 ~ /^(echo|slow|flaky)$/ && NF >= 11 { n += $5 + $6 + $7 } END { print n + 0 }')"

# A graceful stop in the middle of the traffic: it exits 0 with nothing from the
# sanitizers (jp_stop), and the next start replays the journal whole. The traffic's own
# verdict does not count here: the stop closes its connections.
timeout 60 python3 "$top_srcdir/tests/soak.py" "$JP_SOCK" 4 "$((SEED + 1))" >/dev/null 2>&1 &
traffic=$!
sleep 2
LOG0=$(wc -l <"$JP_LOG")
jp_stop
wait $traffic
jp_start "$CONF"
if tail -n +$((LOG0 + 1)) "$JP_LOG" | grep -q 'damaged\|is kept as'; then
	jp_fail "the journal had a damaged record after a stop under traffic"
else
	jp_pass "after a stop under traffic, the journal replays whole"
fi
jp_eq "and the daemon answers" pong "$(jp_ctl ping 2>&1 | awk '{ print $NF }')"
jp_stop
jp_done
