#!/bin/bash
# it_cli.sh: jobpoolctl's commands against the real jobpoold, as a user sees them:
# ping, submit (plain, -w, stdin, --json, unknown queue), status (tables, --json, one
# job), wait, cancel, --raw result bytes (submit -w, wait), usage errors (each with the
# jobpoolctl: prefix, limits named) and exit statuses, and unreachable sockets.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# expect_rc WHAT WANT: check the exit status of the last command (pass it as $3).
expect_rc() { jp_eq "$1: exit status" "$2" "$3"; }

# json_get EXPR: evaluate a Python expression over the JSON document `d` on stdin.
json_get() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# Usage errors and version need no daemon.
out=$(jp_ctl --help); rc=$?
expect_rc "--help" 0 $rc
jp_match "--help prints usage" '^usage: jobpoolctl' "$out"
out=$(jp_ctl submit --help); rc=$?
expect_rc "submit --help" 0 $rc
jp_match "submit --help prints its usage" 'usage: jobpoolctl .*submit' "$out"
out=$(jp_ctl -V); rc=$?
expect_rc "-V" 0 $rc
jp_match "-V prints the version" '^jobpoolctl [0-9]+\.[0-9]+' "$out"
jp_ctl >/dev/null 2>&1; expect_rc "no command" 2 $?
err=$(jp_ctl frobnicate 2>&1 >/dev/null); rc=$?
expect_rc "unknown command" 2 $rc
jp_match "unknown command is named" "frobnicate" "$err"
jp_ctl --bogus ping >/dev/null 2>&1; expect_rc "unknown global option" 2 $?
jp_ctl submit --bogus x >/dev/null 2>&1; expect_rc "unknown submit option" 2 $?
err=$(jp_ctl submit --delay soon x 2>&1); rc=$?
expect_rc "submit --delay soon" 2 $rc
jp_match "bad --delay is named" "soon" "$err"
# Too large: the message says what the limit is.
err=$(jp_ctl submit --delay 99999999 x 2>&1); rc=$?
expect_rc "submit --delay too large" 2 $rc
jp_match "--delay too large says the limit" \
	"^jobpoolctl: submit: bad --delay '99999999': seconds from 0 to 4294967 \\(49\\.7 days\\)" "$err"
err=$(jp_ctl map --timeout 5000000 </dev/null 2>&1); rc=$?
expect_rc "map --timeout too large" 2 $rc
jp_match "map --timeout too large says the limit" "seconds from 0 to 4294967" "$err"
jp_ctl submit --timeout -1 x >/dev/null 2>&1; expect_rc "negative --timeout" 2 $?
# getopt's complaints carry the prefix of every other error, and name the command.
err=$(jp_ctl status -1 2>&1); rc=$?
expect_rc "status -1" 2 $rc
jp_match "status -1: the error says jobpoolctl and the command" \
	"^jobpoolctl: status: invalid option -- '1'" "$err"
err=$(jp_ctl wait -x 2>&1); rc=$?
jp_match "wait -x: the error says jobpoolctl and the command" \
	"^jobpoolctl: wait: invalid option -- 'x'" "$err"
err=$(jp_ctl --bogus ping 2>&1)
jp_match "an unknown global option: the error says jobpoolctl" \
	"^jobpoolctl: unrecognized option '--bogus'" "$err"
jp_ctl submit -p high x >/dev/null 2>&1; expect_rc "submit -p high" 2 $?
jp_ctl submit a b >/dev/null 2>&1; expect_rc "submit with two payloads" 2 $?
jp_ctl wait >/dev/null 2>&1; expect_rc "wait without ids" 2 $?
jp_ctl wait 12x >/dev/null 2>&1; expect_rc "wait with a bad id" 2 $?
jp_ctl cancel 0 >/dev/null 2>&1; expect_rc "cancel 0" 2 $?
jp_ctl status 1 2 >/dev/null 2>&1; expect_rc "status with two ids" 2 $?
err=$(jp_ctl cancel -r 1 2>&1); rc=$?
expect_rc "cancel -r (--raw is for submit -w and wait)" 2 $rc
jp_match "cancel -r prints cancel's usage" 'usage: jobpoolctl .*cancel' "$err"
jp_ctl status --raw >/dev/null 2>&1; expect_rc "status --raw" 2 $?
jp_ctl ping extra >/dev/null 2>&1; expect_rc "ping with an argument" 2 $?

# An unreachable socket says which, and exits 3.
err=$(jp_ctl -s "$JP_TMP/nowhere.sock" ping 2>&1); rc=$?
expect_rc "-s bad path" 3 $rc
jp_match "-s bad path is named" "cannot connect to $JP_TMP/nowhere.sock" "$err"
err=$(JOBPOOL_SOCKET="$JP_TMP/elsewhere.sock" jp_ctl ping 2>&1); rc=$?
expect_rc "bad JOBPOOL_SOCKET" 3 $rc
jp_match "bad JOBPOOL_SOCKET is named" "$JP_TMP/elsewhere.sock" "$err"

# The sleep handler fails a payload that is not a number of milliseconds.
jp_start 'queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "counted"; handler = "echo"; workers = 1; },
	{ name = "sleep"; handler = "sleep"; workers = 1; retries = 0; }
);'
# Counts in messages agree with their nouns.
jp_match "the start log: 1 worker, not 1 workers" \
	'queue counted: handler echo, 1 worker, max 100000 jobs / ' "$(cat "$JP_LOG")"
jp_match "the start log: 2 workers" 'queue default: handler echo, 2 workers, ' "$(cat "$JP_LOG")"

out=$(jp_ctl ping); rc=$?
expect_rc "ping" 0 $rc
jp_eq "ping prints pong" "pong" "$out"
out=$(jp_ctl -s "$JP_SOCK" ping)
jp_eq "ping with -s" "pong" "$out"

# submit
id=$(jp_ctl submit hello); rc=$?
expect_rc "submit" 0 $rc
jp_match "submit prints an id" '^[1-9][0-9]*$' "$id"
out=$(jp_ctl submit -w "hello world"); rc=$?
expect_rc "submit -w" 0 $rc
jp_eq "submit -w returns the payload" "hello world" "$out"
out=$(printf 'from stdin' | jp_ctl submit -w -)
jp_eq "submit -w - reads stdin" "from stdin" "$out"
out=$(printf 'no dash' | jp_ctl submit -w)
jp_eq "submit -w without data reads stdin" "no dash" "$out"
out=$(jp_ctl submit -w --delay 0.2 --timeout 5 -p 0 delayed)
jp_eq "submit -w --delay 0.2" "delayed" "$out"
out=$(jp_ctl --json submit -w "$(printf 'q"b\\s\tt')" | json_get 'd["status"], repr(d["result"]), type(d["id"]).__name__')
jp_eq "submit -w --json" "ok 'q\"b\\\\s\\tt' int" "$out"
out=$(jp_ctl submit --json x | json_get 'type(d["id"]).__name__')
jp_eq "submit --json prints the id" "int" "$out"
err=$(jp_ctl submit -q nosuchqueue x 2>&1); rc=$?
expect_rc "submit to an unknown queue" 3 $rc
jp_match "the unknown queue is named" "noqueue.*nosuchqueue" "$err"

# --raw: a result's bytes exactly, with no newline added (a binary payload that ends
# without one, NULs and all).
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 4 + b"\n\0end")' \
	>"$JP_TMP/bin"
jp_ctl submit -w --raw - <"$JP_TMP/bin" >"$JP_TMP/bin.out"; rc=$?
expect_rc "submit -w --raw" 0 $rc
if cmp -s "$JP_TMP/bin" "$JP_TMP/bin.out"; then jp_pass "submit -w --raw prints the result's bytes exactly"
else jp_fail "submit -w --raw: $(cmp "$JP_TMP/bin" "$JP_TMP/bin.out" 2>&1)"; fi
jp_ctl submit -w -r - <"$JP_TMP/bin" >"$JP_TMP/bin.out"; rc=$?
expect_rc "submit -w -r" 0 $rc
if cmp -s "$JP_TMP/bin" "$JP_TMP/bin.out"; then jp_pass "submit -w -r is the same"
else jp_fail "submit -w -r: $(cmp "$JP_TMP/bin" "$JP_TMP/bin.out" 2>&1)"; fi
jp_ctl submit -w - <"$JP_TMP/bin" >"$JP_TMP/bin.out"
jp_eq "submit -w without --raw adds a newline" "$(( $(wc -c <"$JP_TMP/bin") + 1 ))" \
	"$(wc -c <"$JP_TMP/bin.out")"
id=$(jp_ctl submit - <"$JP_TMP/bin")
jp_ctl wait --raw "$id" >"$JP_TMP/bin.out"; rc=$?
expect_rc "wait --raw" 0 $rc
if cmp -s "$JP_TMP/bin" "$JP_TMP/bin.out"; then jp_pass "wait --raw prints the result's bytes exactly"
else jp_fail "wait --raw: $(cmp "$JP_TMP/bin" "$JP_TMP/bin.out" 2>&1)"; fi
id2=$(printf 'second' | jp_ctl submit -)
out=$(jp_ctl wait -r "$id2" "$id2" | od -An -c | tr -s ' ')
jp_eq "wait -r of two results: the bytes one after the other" " s e c o n d s e c o n d" "$out"
out=$(printf '' | jp_ctl submit -w --raw - | wc -c)
jp_eq "submit -w --raw of an empty result prints nothing" 0 "$out"

# A job that fails: exit 1, nothing on stdout, status and error on stderr.
out=$(jp_ctl submit -w -q sleep oops 2> "$JP_TMP/err"); rc=$?
expect_rc "submit -w of a failing job" 1 $rc
jp_eq "submit -w of a failing job prints nothing" "" "$out"
jp_match "submit -w of a failing job says why" '^jobpoolctl: job [0-9]+ failed: .*oops' "$(cat "$JP_TMP/err")"
out=$(jp_ctl --json submit -w -q sleep oops 2>/dev/null | json_get 'd["status"]')
jp_eq "submit -w --json of a failing job" "failed" "$out"
id=$(jp_ctl submit -q sleep oops)
jp_ctl wait "$id" >/dev/null 2>&1; expect_rc "wait for a failed job" 1 $?
out=$(jp_ctl status "$id")
jp_match "status of a failed job (out of attempts: dead)" '^state: dead$' "$out"

# wait on a job submitted without -w
id=$(jp_ctl submit "later")
out=$(jp_ctl wait "$id"); rc=$?
expect_rc "wait" 0 $rc
jp_eq "wait returns the result" "later" "$out"
id2=$(jp_ctl submit "second")
out=$(jp_ctl wait "$id" "$id2")
jp_eq "wait for two jobs" "later
second" "$out"
out=$(jp_ctl wait --json "$id" | json_get 'd["id"] == '"$id"' and d["status"] == "ok" and d["result"]')
jp_eq "wait --json" "later" "$out"
err=$(jp_ctl wait 999999999 2>&1); rc=$?
expect_rc "wait for an unknown job" 3 $rc
jp_match "wait for an unknown job says why" "999999999.*notfound" "$err"

# status of one job
out=$(jp_ctl status "$id"); rc=$?
expect_rc "status ID" 0 $rc
jp_match "status ID says done" '^state: done$' "$out"
jp_match "status ID names the queue" '^queue: default$' "$out"
jp_match "status ID names the id" "^id: $id\$" "$out"
out=$(jp_ctl status --json "$id" | json_get 'd["id"] == '"$id"' and d["state"]')
jp_eq "status ID --json" "done" "$out"
jp_ctl status 999999999 >/dev/null 2>&1; expect_rc "status of an unknown job" 3 $?

# status: five jobs through the queue "counted" show up in its row.
for i in 1 2 3 4 5; do jp_ctl submit -q counted -w "job $i" >/dev/null; done
counted_row_is() {
	out=$(jp_ctl status)
	row=$(printf '%s\n' "$out" | awk '$1 == "counted" && NF == 12 { print $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }')
	[ "$row" = "$1" ]
}
jp_until 5 counted_row_is "running echo 1 0 0 0 5 0 0 0 0"
jp_match "status has a queue table" '^QUEUE +STATE +HANDLER +WORKERS +DEPTH +DELAYED +RUNNING +DONE +FAILED +DEAD +CANCELLED +RETRY_WAIT$' "$out"
jp_match "status has a flow table" '^QUEUE +JOBS/S_1M +JOBS/S_5M +JOBS/S_15M +OLDEST_WAIT$' "$out"
jp_match "status: nothing of 'counted' waits" '^counted +[0-9.]+ +[0-9.]+ +[0-9.]+ +0us$' "$out"
jp_match "status has a latency table" '^QUEUE +LATENCY +P50 +P90 +P99 +P99\.9 +MAX +COUNT$' "$out"
jp_match "status shows the run times of 'counted'" '^counted +run +[0-9.]+(us|ms|s) .* 5$' "$out"
jp_match "status has a worker table" '^QUEUE +PID +STATE +JOB +AGE +JOBS +INFLIGHT +RSS +CPU$' "$out"
jp_eq "status counts the jobs of 'counted'" "running echo 1 0 0 0 5 0 0 0 0" "$row"
jp_match "status shows the default queue" '^default +running +echo +2 ' "$out"
jp_match "status counts the failed (and dead) jobs of 'sleep'" '^sleep +running +sleep +1 +0 +0 +0 +0 +3 +3 +0 +0$' "$out"
jp_ctl status --json > "$JP_TMP/status.json"; rc=$?
expect_rc "status --json" 0 $rc
if python3 -m json.tool "$JP_TMP/status.json" >/dev/null; then
	jp_pass "status --json is valid JSON"
else
	jp_fail "status --json is not valid JSON: $(cat "$JP_TMP/status.json")"
fi
out=$(json_get '[(q["handler"], q["workers"], q["done"]) for q in d["queues"] if q["name"] == "counted"]' < "$JP_TMP/status.json")
jp_eq "status --json counts the jobs of 'counted'" "[('echo', 1, 5)]" "$out"
out=$(json_get 'len([w for w in d["workers"] if w["queue"] == "default" and type(w["pid"]) is int])' < "$JP_TMP/status.json")
jp_eq "status --json lists the workers" "2" "$out"
out=$(json_get 'type(d["daemon"]["pid"]).__name__' < "$JP_TMP/status.json")
jp_eq "status --json has the daemon's pid" "int" "$out"
jp_ctl --json status | python3 -m json.tool >/dev/null 2>&1
expect_rc "--json status" 0 $?

# cancel a delayed job; waiting for it then reports the cancellation.
id=$(jp_ctl submit --delay 30 sleepy)
out=$(jp_ctl status "$id")
jp_match "a delayed job is delayed" '^state: delayed$' "$out"
out=$(jp_ctl cancel "$id"); rc=$?
expect_rc "cancel" 0 $rc
jp_eq "cancel prints cancelled" "cancelled $id" "$out"
out=$(jp_ctl status "$id")
jp_match "a cancelled job is cancelled" '^state: cancelled$' "$out"
err=$(jp_ctl wait "$id" 2>&1 >/dev/null); rc=$?
expect_rc "wait for a cancelled job" 1 $rc
jp_match "wait reports the cancellation" "job $id cancelled" "$err"
out=$(jp_ctl wait --json "$id" 2>/dev/null | json_get 'd["status"]')
jp_eq "wait --json reports the cancellation" "cancelled" "$out"
done_id=$(jp_ctl submit "done already")
jp_ctl wait "$done_id" >/dev/null
err=$(jp_ctl cancel "$done_id" 2>&1); rc=$?
expect_rc "cancel a finished job" 1 $rc
jp_match "cancel a finished job says why" "cancel $done_id: state" "$err"
err=$(jp_ctl cancel 999999999 2>&1); rc=$?
expect_rc "cancel an unknown job" 1 $rc
jp_match "cancel an unknown job says why" "notfound" "$err"

# wait for a job that is cancelled meanwhile: exit 1 and a message.
id=$(jp_ctl submit --delay 30 "to cancel")
(sleep 0.5; jp_ctl cancel "$id" >/dev/null 2>&1) &
canceller=$!
err=$(jp_ctl wait "$id" 2>&1 >/dev/null); rc=$?
wait "$canceller"
expect_rc "wait for a job cancelled meanwhile" 1 $rc
jp_match "wait for a job cancelled meanwhile says so" "job $id cancelled" "$err"

jp_stop
jp_done
