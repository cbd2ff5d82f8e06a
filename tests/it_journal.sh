#!/usr/bin/env bash
# The journal against the real daemon, as a user sees it: jobs acknowledged before a
# `kill -9` are there after the restart (queued, delayed with what is left of their
# delay, dead with their reason), finished and cancelled ones are not, ids go on; a
# graceful stop keeps waiting and interrupted jobs for the next start; a torn tail is
# set aside with an error that says where; a byte flipped in the middle costs one job
# (not every one after it), and jobpoolctl status says so; dead jobs keep their
# attempts; two daemons cannot share a journal; jobs of
# a queue the config lost are kept until a reload brings it back; reload changes the
# fsync policy; config errors name file:line; journal_dir = "" is no journal, and one
# that cannot be made stops the start (exit 73); and when the journal cannot be written
# (a file size limit), new jobs are refused with the reason, and every job that was
# acknowledged is recovered afterwards.
. "$top_srcdir/tests/lib.sh"

J="$JP_TMP/journal"
QUEUES='{ name = "default"; handler = "echo"; workers = 1; },
  { name = "slow"; handler = "sleep"; workers = 1; grace = 0.2; },
  { name = "short"; handler = "sleep"; workers = 1; timeout = 0.1; retries = 0; grace = 0.2; }'
# conf POLICY [QUEUES]
conf() {
	printf 'journal_dir = "%s";\njournal_fsync = "%s";\nshutdown_timeout = 0.5;\nqueues = ( %s );\n' \
		"$J" "$1" "${2:-$QUEUES}"
}
newlog() { tail -n +$((LOG0 + 1)) "$JP_LOG"; }
# waiting IDS...: how many of the jobs are queued or running.
waiting() {
	local id n=0
	for id in "$@"; do
		case $(jp_state "$id") in queued|running) n=$((n + 1));; esac
	done
	echo "$n"
}
start() {
	LOG0=0
	[ -e "$JP_LOG" ] && LOG0=$(wc -l <"$JP_LOG")
	jp_start "$1"
}

# --- acknowledged jobs survive kill -9 -------------------------------------------------
start "$(conf always)"
jp_eq "a job runs with the journal on" hello "$(jp_ctl submit -w hello)"
DONE_ID=$(jp_ctl submit hello2)
SLOW_IDS=
for i in $(seq 1 20); do SLOW_IDS="$SLOW_IDS $(jp_ctl submit -q slow 30000)"; done
CANCEL_ID=$(jp_ctl submit -q slow 30000)
jp_eq "a queued job is cancelled" "cancelled $CANCEL_ID" "$(jp_ctl cancel "$CANCEL_ID")"
DELAY_ID=$(jp_ctl submit --delay 600 "later")
DEAD_ID=$(jp_ctl submit -q short 5000)
jp_ctl wait "$DEAD_ID" >/dev/null 2>&1
jp_eq "the short job is dead" dead "$(jp_state "$DEAD_ID")"
jp_match "STATS has a journal line" '^ok$' "$(jp_stat journal state)"
jp_eq "STATS says the policy" always "$(jp_stat journal fsync)"
jp_match "fsyncs are counted" '^[1-9][0-9]*$' "$(jp_stat journal fsyncs)"
jp_match "jobpoolctl status shows the journal" "^journal: $J, fsync always" "$(jp_ctl status | grep '^journal:')"
jp_match "--json status has the journal" '"journal":\{"name":"journal\.[0-9]+","state":"ok"' "$(jp_ctl --json status)"
jp_kill9

start "$(conf always)"
jp_match "the restart says what it recovered" "journal: $J, fsync always; [0-9]+ records read from 1 file in [0-9]+ ms: 21 jobs queued again, 1 dead job kept" "$(newlog)"
jp_eq "every acknowledged slow job is back" 20 "$(waiting $SLOW_IDS)"
jp_eq "the cancelled job is not" notfound "$(jp_state "$CANCEL_ID")"
jp_eq "a finished job is not (its result was not journalled)" notfound "$(jp_state "$DONE_ID")"
jp_eq "the delayed job is still delayed" delayed "$(jp_state "$DELAY_ID")"
due=$(jp_ctl status "$DELAY_ID" | awk -F': ' '$1 == "due_in_ms" { print $2 }')
if [ -n "$due" ] && [ "$due" -gt 500000 ] && [ "$due" -le 600000 ]; then
	jp_pass "it keeps what was left of its delay ($due ms)"
else
	jp_fail "due_in_ms after the restart: '$due' (want 500000..600000)"
fi
jp_match "the dead job is listed with its reason" "^$DEAD_ID .*timed out" "$(jp_ctl dead -q short | tail -n +2)"
# issue 14: dead jobs showed attempts 0 after a restart.
jp_eq "the dead job keeps its attempts" 1 "$(jp_ctl status "$DEAD_ID" | awk -F': ' '$1 == "attempts" { print $2 }')"
NEW_ID=$(jp_ctl submit hello3)
if [ "$NEW_ID" -gt "$DEAD_ID" ] && [ "$NEW_ID" -gt "$DELAY_ID" ]; then
	jp_pass "ids go on after the restart ($NEW_ID)"
else
	jp_fail "new id $NEW_ID is not above the old ones ($DEAD_ID, $DELAY_ID)"
fi
jp_eq "a recovered dead job can be retried" "queued $DEAD_ID" "$(jp_ctl retry "$DEAD_ID")"
jp_ctl wait "$DEAD_ID" >/dev/null 2>&1

# --- a graceful stop keeps what did not run -------------------------------------------
jp_stop
jp_match "the stop says the jobs are kept" "shutdown: ([0-9]+ waiting jobs are kept in the journal and run|1 waiting job is kept in the journal and runs) after the restart" "$(newlog)"
start "$(conf always)"
jp_eq "after a graceful stop, the waiting and the interrupted jobs are back" 20 "$(waiting $SLOW_IDS)"

# --- a torn tail is set aside, with a warning that says where --------------------------
jp_stop
f=$(ls "$J" | grep -E '^journal\.[0-9]+$')
jp_eq "one journal file after a clean stop" 1 "$(echo "$f" | wc -l)"
printf '\x40\x00\x00\x00\x11\x22\x33\x44\x01' >>"$J/$f"
start "$(conf always)"
jp_match "the damage is logged with file and offset" "error: journal: $J/$f is damaged: a record cut short at offset [0-9]+; 1 damaged region \(9 bytes\) skipped, [0-9]+ records recovered around it; the file is kept as $f.damaged" "$(newlog)"
[ -e "$J/$f.damaged" ] && jp_pass "the damaged file is kept aside" || jp_fail "no $f.damaged"
jp_eq "the jobs before the damage are back" 20 "$(waiting $SLOW_IDS)"

# --- two daemons, one journal ---------------------------------------------------------
printf 'socket = "%s/other.sock";\njournal_dir = "%s";\nqueues = ( { name = "default"; handler = "echo"; } );\n' \
	"$JP_TMP" "$J" >"$JP_TMP/other.conf"
out=$(timeout 10 "$JOBPOOLD" -c "$JP_TMP/other.conf" 2>&1); rc=$?
jp_eq "a second daemon on the same journal exits 74" 74 "$rc"
jp_match "and says why" "journal_dir: $J is in use by another jobpoold" "$out"

# --- reload: the fsync policy changes, journal_dir waits for a restart ----------------
conf never >"$JP_TMP/jobpool.conf"
sed -i "1s|.*|socket = \"$JP_SOCK\";\njournal_dir = \"$J.other\";|" "$JP_TMP/jobpool.conf"
jp_eq "reload" reloaded "$(jp_ctl reload)"
jp_eq "the new policy is in force" never "$(jp_stat journal fsync)"
jp_match "a new journal_dir waits for a restart" "reload: journal_dir changed; it takes effect at the next restart \($J\)" "$(newlog)"
# journal_compact_size: 3,000 finished jobs are well past 64 KiB of records, far below
# the default 64 MiB; once a reload lowers it, the next write compacts the file.
seq 1 3000 | jp_ctl map >/dev/null
c0=$(jp_stat journal compactions)
b0=$(jp_stat journal bytes)
[ "${b0:-0}" -gt 65536 ] && jp_pass "the file is past 64 KiB ($b0 bytes)" ||
	jp_fail "the file is only ${b0:-?} bytes"
jp_eq "no compaction under the default journal_compact_size" 0 "$c0"
sed -i "1a journal_compact_size = 65536;" "$JP_TMP/jobpool.conf"
jp_eq "reload with journal_compact_size = 65536" reloaded "$(jp_ctl reload)"
jp_ctl submit after-reload >/dev/null
jp_eq_until "the next write compacts" 1 5 jp_stat journal compactions
b1=$(jp_stat journal bytes)
[ "${b1:-$b0}" -lt "$b0" ] && jp_pass "the file shrank ($b0 to $b1 bytes)" ||
	jp_fail "the file did not shrink ($b0 to ${b1:-?} bytes)"

# --- jobs of a queue the config lost are kept until it is back ------------------------
jp_stop
start "$(conf always '{ name = "default"; handler = "echo"; workers = 1; }')"
jp_match "the start says which queue they wait for" "journal: 20 jobs of queue 'slow', which the configuration does not have, are kept in the journal; add the queue back and reload to run them" "$(newlog)"
# 20 of slow and the dead one of short.
jp_eq "STATS counts them" 21 "$(jp_stat journal unknown_queue)"
jp_stop
start "$(conf always '{ name = "default"; handler = "echo"; workers = 1; }')"
jp_eq "they are kept over another restart" 21 "$(jp_stat journal unknown_queue)"
conf always >"$JP_TMP/jobpool.conf.new"
{ echo "socket = \"$JP_SOCK\";"; cat "$JP_TMP/jobpool.conf.new"; } >"$JP_TMP/jobpool.conf"
jp_eq "reload with the queue back" reloaded "$(jp_ctl reload)"
jp_eq "they are queued again" 0 "$(jp_stat journal unknown_queue)"
jp_eq "all of them" 20 "$(waiting $SLOW_IDS)"
jp_stop

# --- config errors name file:line -----------------------------------------------------
printf 'queues = ( { name = "q"; handler = "echo"; } );\njournal_fsync = "sometimes";\njournal_dir = "relative/dir";\njournal_fsync_interval = 0;\njournal_compact_size = 4096;\n' >"$JP_TMP/bad.conf"
out=$("$JOBPOOLD" -t -c "$JP_TMP/bad.conf" 2>&1); rc=$?
jp_eq "jobpoold -t rejects the bad journal settings" 78 "$rc"
jp_match "a bad policy, at its line" "bad.conf:2: 'journal_fsync' must be one of never, interval, always; not 'sometimes'" "$out"
jp_match "a relative directory, at its line" "bad.conf:3: 'journal_dir' must be an absolute path" "$out"
jp_match "a zero interval, at its line" "bad.conf:4: 'journal_fsync_interval' must be more than 0 seconds" "$out"
jp_match "a compaction size too small, at its line" "bad.conf:5: 'journal_compact_size' must be at least 65536, not 4096" "$out"

# --- journal_dir = "": no journal; one that cannot be made: exit 73 --------------------
start "$(conf always | sed 's|^journal_dir = .*|journal_dir = "";|')"
jp_eq "journal_dir = \"\": no journal line in STATS" "" "$(jp_stat journal state)"
jp_ctl submit -q slow 30000 >/dev/null
jp_stop
if newlog | grep -q 'kept in the journal'; then
	jp_fail "without a journal, the stop says it keeps jobs"
else
	jp_pass "... and the stop keeps nothing (it has no journal)"
fi
: >"$JP_TMP/a-file"
printf 'socket = "%s/other.sock";\njournal_dir = "%s/a-file/journal";\nqueues = ( { name = "default"; handler = "echo"; } );\n' \
	"$JP_TMP" "$JP_TMP" >"$JP_TMP/nodir.conf"
out=$(timeout 10 "$JOBPOOLD" -c "$JP_TMP/nodir.conf" 2>&1); rc=$?
jp_eq "a journal_dir that cannot be made: exit 73" 73 "$rc"
jp_match "and it says which directory and why" "journal_dir: mkdir $JP_TMP/a-file/journal: Not a directory" "$out"

# --- a journal that cannot be written: refused, and nothing acknowledged is lost -------
if command -v prlimit >/dev/null 2>&1; then
	rm -rf "$J"
	# A stand-in for systemd's notify socket: STATUS= says when the journal fails.
	python3 "$top_srcdir/tests/notify_listener.py" "$JP_TMP/notify.sock" "$JP_TMP/notify.out" \
		>"$JP_TMP/listener.out" 2>&1 &
	LISTENER=$!
	jp_until 5 grep -qs listening "$JP_TMP/listener.out"
	export NOTIFY_SOCKET="$JP_TMP/notify.sock"
	start "$(conf always)"
	unset NOTIFY_SOCKET
	# 1 MiB per file: past it, every write fails with EFBIG.
	prlimit --pid "$JP_DPID" --fsize=1048576 ||
		{ jp_fail "prlimit"; }
	# The sleep handler's payload: a number of ms, then blanks.
	{ printf 30000; head -c 59995 /dev/zero | tr '\0' ' '; } >"$JP_TMP/big"
	acked=
	refused=
	for i in $(seq 1 40); do
		out=$(timeout 3 "$JOBPOOLCTL" submit -q slow - <"$JP_TMP/big" 2>&1); rc=$?
		case $rc in
		0) acked="$acked $out";;
		124) ;;	# accepted, but its OK waits for a write that fails
		*) refused=$out; break;;
		esac
	done
	jp_match "new jobs are refused with the reason" "unavailable: the journal cannot be written: write $J/journal\.1: File too large" "$refused"
	jp_eq "STATS says the journal is failing" failing "$(jp_stat journal state)"
	jp_match "the log says so once" "error: journal: write $J/journal\.1: File too large; new jobs are refused until it can be written" "$(newlog)"
	jp_until 5 grep -q 'journal failing' "$JP_TMP/notify.out"
	jp_match "STATUS= (systemctl status) says so" "STATUS=queued [0-9]+, running [0-9]+/[0-9]+, done [0-9]+, failed [0-9]+; journal failing, new jobs refused" "$(cat "$JP_TMP/notify.out")"
	kill "$LISTENER" 2>/dev/null
	nacked=$(echo $acked | wc -w)
	[ "$nacked" -gt 5 ] && jp_pass "$nacked jobs were acknowledged first" || jp_fail "only $nacked acknowledged"
	jp_kill9
	start "$(conf always)"
	# shellcheck disable=SC2086
	jp_eq "every acknowledged job is recovered" "$nacked" "$(waiting $acked)"
	jp_stop
else
	echo "prlimit is missing: the write-failure checks are skipped"
fi

# --- a flipped byte in the middle costs one job, and the damage is visible -------------
# issue 14: a flipped byte in the middle of a file of 1,000 jobs recovered 499.
rm -rf "$J"
start "$(conf always)"
MID_IDS=
for i in $(seq 1 60); do MID_IDS="$MID_IDS $(jp_ctl submit -q slow 30000)"; done
jp_stop
f=$(ls "$J" | grep -E '^journal\.[0-9]+$')
python3 - "$J/$f" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0x10
    f.seek(0)
    f.write(data)
PY
start "$(conf always)"
jp_match "the damage is logged once, at error level, with what was recovered" \
	"error: journal: $J/$f is damaged: a record whose checksum does not match at offset [0-9]+; 1 damaged region \([0-9]+ bytes\) skipped, [0-9]+ records recovered around it; the file is kept as $f.damaged" "$(newlog)"
jp_eq "one line" 1 "$(newlog | grep -c 'is damaged')"
jp_eq "every job but the one hit is back" 59 "$(waiting $MID_IDS)"
jp_eq "STATS counts the damaged region" 1 "$(jp_stat journal damaged)"
jp_eq "and names the file kept aside" "$f.damaged" "$(jp_stat journal damaged_file)"
jp_match "jobpoolctl status shows it" "^journal_damaged: 1 region \([0-9]+ bytes\) skipped at the start, kept as $J/$f.damaged" "$(jp_ctl status | grep '^journal_damaged:')"
jp_match "--json status has it" '"damaged":1,"damaged_bytes":[0-9]+,"dir":"[^"]*","damaged_file":"journal\.[0-9]+\.damaged"' "$(jp_ctl --json status)"
jp_stop
start "$(conf always)"
jp_eq "the next start finds nothing damaged" 0 "$(jp_stat journal damaged)"
jp_eq "and the same jobs" 59 "$(waiting $MID_IDS)"
if jp_ctl status | grep -q '^journal_damaged:'; then
	jp_fail "jobpoolctl status still says damaged"
else
	jp_pass "jobpoolctl status no longer says damaged"
fi
jp_stop

jp_done
