#!/usr/bin/env bash
# Bounded memory for finished jobs (keep_results, keep_results_bytes: older results are
# dropped and WAIT/STATUS say so), a queue's own priority range (refused outside it,
# honoured inside it), and a reload that narrows the range while jobs wait: they are
# moved to the new levels, clamped, in order, and none is lost.
. "$top_srcdir/tests/lib.sh"

jp_start '
keep_results = 3;
keep_results_bytes = 1000000;
queues = (
  { name = "default"; handler = "echo"; workers = 1; },
  { name = "ranked"; handler = "sleep"; workers = 1; batch = 1; priority_min = 0; priority_max = 3; }
);'

# --- keep_results = 3: only the last three finished jobs are known ----------------------
for i in 1 2 3 4 5; do ids[$i]=$(jp_ctl submit -w "r$i" >/dev/null; jp_ctl submit "x$i"); done
# Once the last has finished, at least three finished after the first.
jp_ctl wait "${ids[5]}" >/dev/null
out=$(jp_ctl status "${ids[1]}" 2>&1); rc=$?
jp_eq "an old result is dropped: status exits 3" 3 "$rc"
jp_match "... saying the job is not known" "no job ${ids[1]}" "$out"
jp_eq "the newest result is kept" x5 "$(jp_ctl wait "${ids[5]}")"

# --- keep_results_bytes: payload + result bytes bound the kept jobs too ----------------
jp_config '
keep_results = 1000;
keep_results_bytes = 300;
queues = (
  { name = "default"; handler = "echo"; workers = 1; },
  { name = "ranked"; handler = "sleep"; workers = 1; batch = 1; priority_min = 0; priority_max = 3; }
);' >/dev/null
jp_eq "reload with a byte bound" reloaded "$(jp_ctl reload)"
big=$(head -c 100 /dev/zero | tr '\0' 'b')
first=$(jp_ctl submit "$big"); jp_ctl wait "$first" >/dev/null
for i in 1 2; do jp_ctl submit -w "$big" >/dev/null; done
out=$(jp_ctl status "$first" 2>&1); rc=$?
jp_eq "200 bytes per job, 300 kept: the oldest is dropped" 3 "$rc"

# --- a queue's own priority range ----------------------------------------------------------
out=$(jp_ctl submit -q ranked -p 5 100 2>&1); rc=$?
jp_eq "a priority above the queue's range is refused" 3 "$rc"
jp_match "... naming the range" "outside queue 'ranked' range 0..3" "$out"
# The worker busy; then jobs at 0, 3 and 1 wait (it_handlers checks the order itself).
occ=$(jp_ctl submit -q ranked 600)
sleep 0.2
a=$(jp_ctl submit -q ranked -p 0 1)
b=$(jp_ctl submit -q ranked -p 3 2)
c=$(jp_ctl submit -q ranked -p 1 3)
# Narrow the range to 0..1 while they wait: 3 is clamped to 1.
jp_config '
keep_results = 1000;
queues = (
  { name = "default"; handler = "echo"; workers = 1; },
  { name = "ranked"; handler = "sleep"; workers = 1; batch = 1; priority_min = 0; priority_max = 1; }
);' >/dev/null
jp_eq "reload narrowing the range" reloaded "$(jp_ctl reload)"
jp_eq "waiting jobs survive the new range (1)" 2 "$(jp_ctl wait "$b")"
jp_eq "waiting jobs survive the new range (2)" 3 "$(jp_ctl wait "$c")"
jp_eq "waiting jobs survive the new range (3)" 1 "$(jp_ctl wait "$a")"
order=$(jp_ctl status | awk '$1 == "ranked" { print $8; exit }')
jp_eq "all four ran" 4 "$order"
jp_match "the clamped job kept its priority within the new range" 'prio: 1' "$(jp_ctl status "$b")"
# --- SIGUSR1 logs the daemon's counts and changes nothing ------------------------------
kill -USR1 "$JP_DPID"
jp_until 2 grep -q 'SIGUSR1: [0-9]* connections\?, [0-9]* jobs\? known' "$JP_LOG"
jp_match "SIGUSR1 logs the counts" 'SIGUSR1: [0-9]+ connections?, [0-9]+ jobs? known' "$(cat "$JP_LOG")"
jp_eq "and the daemon goes on" pong "$(jp_ctl ping)"

# --- out of descriptors: the daemon pauses accepting instead of spinning, and recovers --
if command -v prlimit >/dev/null && command -v python3 >/dev/null; then
	prlimit --pid "$JP_DPID" --nofile=40:40
	python3 - "$JP_SOCK" "$JP_TMP/holding" <<'PY' &
import os, socket, sys, time
conns = []
for _ in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError:
        break
    conns.append(s)
open(sys.argv[2], "w").write(str(len(conns)))
time.sleep(3)
PY
	holder=$!
	jp_until 5 test -s "$JP_TMP/holding"
	cpu() { awk '{ print $14 + $15 }' "/proc/$JP_DPID/stat"; }
	c0=$(cpu); sleep 1; c1=$(cpu)
	ticks=$((c1 - c0))
	echo "out of descriptors: $(cat "$JP_TMP/holding") connections held, master used $ticks ticks in 1 s"
	if [ "$ticks" -lt 30 ]; then jp_pass "no busy loop while out of descriptors ($ticks/100 ticks)"
	else jp_fail "the master spins while out of descriptors: $ticks/100 ticks in 1 s"; fi
	jp_match "it says why it stops accepting" 'accept: Too many open files .* not accepting for 100 ms' "$(cat "$JP_LOG")"
	wait $holder
	prlimit --pid "$JP_DPID" --nofile=1024:1024
	jp_until 3 jp_ctl ping >/dev/null 2>&1
	jp_eq "it serves again once descriptors are free" pong "$(jp_ctl ping 2>&1)"
else
	echo "note: prlimit or python3 missing: the descriptor-exhaustion check is skipped"
fi

jp_stop
jp_done
