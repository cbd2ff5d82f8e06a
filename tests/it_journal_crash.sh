#!/usr/bin/env bash
# A job whose RESULT a client received never runs again after a crash (issue 14): with
# journal_fsync = "always", jobs stream through `jobpoolctl map` while the daemon is
# killed with SIGKILL three times; each job's handler appends its payload to a file
# before answering. After the last restart has run every job the journal kept, each
# payload whose result map printed was run exactly once. (Jobs whose result nobody
# heard may run twice: delivery is at least once.) The deterministic form of the same
# rule is check_server's test_journal_holds_results; this one checks it under real
# crashes.
. "$top_srcdir/tests/lib.sh"

RUNS="$JP_TMP/runs"
cat >"$JP_TMP/rec.sh" <<SH
#!/bin/sh
x=\$(cat)
printf '%s\n' "\$x" >>"$RUNS"
printf '%s' "\$x"
SH
chmod +x "$JP_TMP/rec.sh"
: >"$RUNS"
CONF="journal_dir = \"$JP_TMP/journal\";
journal_fsync = \"always\";
shutdown_timeout = 5;
queues = ( { name = \"rec\"; handler = \"exec:$JP_TMP/rec.sh\"; workers = 2; } );"

# lines_at_least FILE N: FILE has N lines or more.
lines_at_least() { [ "$(wc -l <"$1")" -ge "$2" ]; }
# rec_idle: nothing of queue rec is queued or running.
rec_idle() {
	[ "$("$JOBPOOLCTL" status 2>/dev/null |
		awk '$1 == "rec" && NF >= 11 { print $5 + $6 + $7; exit }')" = 0 ]
}

for r in 1 2 3; do
	jp_start "$CONF"
	seq 1 3000 | sed "s/^/r$r-/" >"$JP_TMP/in$r"
	"$JOBPOOLCTL" map -q rec -j 64 <"$JP_TMP/in$r" >"$JP_TMP/out$r" 2>"$JP_TMP/err$r" &
	mp=$!
	jp_until 60 lines_at_least "$JP_TMP/runs" $((r * 150)) || jp_fail "round $r: jobs did not run"
	jp_kill9
	wait "$mp" 2>/dev/null
	jp_pass "round $r: killed after $(wc -l <"$JP_TMP/out$r") results heard"
done

# The last start runs what the journal kept; wait until nothing is queued or running.
jp_start "$CONF"
jp_until 60 rec_idle || jp_fail "the recovered jobs did not finish"
jp_stop

cat "$JP_TMP"/out1 "$JP_TMP"/out2 "$JP_TMP"/out3 | sort -u >"$JP_TMP/heard"
sort "$RUNS" | uniq -c | awk '$1 > 1 { print $2 }' | sort >"$JP_TMP/twice"
sort -u "$RUNS" >"$JP_TMP/ran"
heard=$(wc -l <"$JP_TMP/heard")
[ "$heard" -gt 0 ] || jp_fail "no result was heard before the kills"
jp_eq "no job whose result was heard ($heard of them) ran twice" "" \
    "$(comm -12 "$JP_TMP/heard" "$JP_TMP/twice" | head -5 | tr '\n' ' ')"
jp_eq "every job whose result was heard ran" "" \
    "$(comm -23 "$JP_TMP/heard" "$JP_TMP/ran" | head -5 | tr '\n' ' ')"
jp_pass "jobs whose result nobody heard that ran twice (allowed): $(wc -l <"$JP_TMP/twice")"
jp_done
