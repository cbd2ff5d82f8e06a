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
sleep 0.3
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
first=$(jp_ctl submit "$big"); sleep 0.2
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
order=$(jp_ctl status | awk '$1 == "ranked" { print $8 }')
jp_eq "all four ran" 4 "$order"
jp_match "the clamped job kept its priority within the new range" 'prio: 1' "$(jp_ctl status "$b")"
jp_stop
jp_done
