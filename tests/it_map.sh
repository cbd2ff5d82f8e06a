#!/bin/bash
# it_map.sh: `jobpoolctl map` against the real jobpoold: order with and without -k,
# windows from 1 up, edge cases of the input (empty, no final newline, empty lines),
# --json, failed jobs, a line over max_payload (not submitted, map goes on), an unknown
# queue, a slow producer on a pipe; batches in flight during a large map, -j 3 as the
# daemon sees it, and the progress line on a terminal (under script(1)).

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# The sleep handler fails a payload that is not a number of milliseconds.
jp_start 'queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "sleep"; handler = "sleep"; workers = 2; retries = 0; },
	{ name = "batched"; handler = "echo"; workers = 2; batch = 64; }
);'

out=$(printf '%s\n' a b c | jp_ctl map -k); rc=$?
jp_eq "map -k a b c: exit status" 0 "$rc"
jp_eq "map -k a b c" "a
b
c" "$out"

# 10,000 lines come back identical and in order with -k.
seq 1 10000 > "$JP_TMP/in"
jp_ctl map -k < "$JP_TMP/in" > "$JP_TMP/out"; rc=$?
jp_eq "map -k 10000 lines: exit status" 0 "$rc"
if cmp -s "$JP_TMP/in" "$JP_TMP/out"; then
	jp_pass "map -k 10000 lines come back in order"
else
	jp_fail "map -k 10000 lines differ: $(cmp "$JP_TMP/in" "$JP_TMP/out" 2>&1)"
fi

# Without -k the same lines come back, in any order.
jp_ctl map < "$JP_TMP/in" > "$JP_TMP/out"; rc=$?
jp_eq "map 10000 lines: exit status" 0 "$rc"
if sort -n "$JP_TMP/out" | cmp -s "$JP_TMP/in" -; then
	jp_pass "map 10000 lines come back, sorted equal"
else
	jp_fail "map 10000 lines: sorted output differs from the input"
fi

# Small windows, a window that wraps the reorder ring many times, a huge window.
seq 1 200 > "$JP_TMP/in200"
for args in "-j 1" "-k -j 1" "-k -j 3" "-k -j 7" "-k -j 100000"; do
	# shellcheck disable=SC2086
	jp_ctl map $args < "$JP_TMP/in200" > "$JP_TMP/out"; rc=$?
	jp_eq "map $args: exit status" 0 "$rc"
	if cmp -s "$JP_TMP/in200" "$JP_TMP/out"; then
		jp_pass "map $args returns the input"
	else
		jp_fail "map $args: output differs from the input"
	fi
done

# Edge cases of the input.
: | jp_ctl map -k > "$JP_TMP/out"; rc=$?
jp_eq "map of empty stdin: exit status" 0 "$rc"
jp_eq "map of empty stdin prints nothing" "0" "$(wc -c < "$JP_TMP/out" | tr -d ' ')"
out=$(jp_ctl map < /dev/null | wc -c | tr -d ' ')
jp_eq "map of /dev/null prints nothing" "0" "$out"
out=$(printf 'x\ny' | jp_ctl map -k | od -An -c | tr -s ' ')
jp_eq "map: a last line without newline is a job" " x \n y \n" "$out"
out=$(printf 'a\n\n\nb\n' | jp_ctl map -k | od -An -c | tr -s ' ')
jp_eq "map: empty lines are jobs" " a \n \n \n b \n" "$out"
out=$(printf 'a b\tc  \n' | jp_ctl map -k | od -An -c | tr -s ' ')
jp_eq "map keeps spaces and tabs" " a b \t c \n" "$out"

# A producer that is slow: results of early lines do not wait for later input.
out=$( (echo first; sleep 0.5; echo second) | jp_ctl map -k)
jp_eq "map from a slow pipe" "first
second" "$out"

# Interactive: each result comes back before the next line is written.
coproc MAP { "$JOBPOOLCTL" map -k; }
map_pid=$MAP_PID	# bash unsets MAP_PID as soon as it reaps the coprocess
got=
for word in one two three; do
	echo "$word" >&"${MAP[1]}"
	IFS= read -r -t 10 line <&"${MAP[0]}" || line="(nothing within 10s)"
	got="$got$line "
done
map_in=${MAP[1]}
exec {map_in}>&-
wait "$map_pid"; rc=$?
jp_eq "map answers each line before the next" "one two three " "$got"
jp_eq "map as a coprocess: exit status" 0 "$rc"

# --json: one object per line, in order with -k.
out=$(printf '%s\n' one 'two"2' | jp_ctl --json map -k |
	python3 -c 'import json, sys; print(" ".join("%d:%s:%s" % (d["line"], d["status"], d["result"]) for d in map(json.loads, sys.stdin)))')
jp_eq "map --json" '1:ok:one 2:ok:two"2' "$out"

# A failed job: a message naming its line on stderr, an empty line in its place, exit 1.
printf '30\nbad\n0\n' | jp_ctl map -k -q sleep > "$JP_TMP/out" 2> "$JP_TMP/err"; rc=$?
jp_eq "map with a failed job: exit status" 1 "$rc"
jp_eq "map with a failed job: its line is empty" "30||0|" "$(tr '\n' '|' < "$JP_TMP/out")"
jp_match "map with a failed job: stderr names line and job" \
	'^jobpoolctl: line 2: job [0-9]+ failed: .*bad' "$(cat "$JP_TMP/err")"
out=$(printf 'bad\n' | jp_ctl map --json -q sleep 2>/dev/null |
	python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["line"], d["status"])')
jp_eq "map --json with a failed job" "1 failed" "$out"

# Without a terminal on stderr there is no progress line.
jp_eq "map without a terminal: no progress line on stderr" "" \
	"$(grep -E 'done, [0-9]+ failed' "$JP_TMP/err")"

# A line larger than max_payload (1 MiB) is not submitted: reported with its line number,
# an empty line in its place, the lines after it still run, exit 1.
{ seq 1 1000; head -c 1500000 /dev/zero | tr '\0' x; echo; seq 1001 2000; } >"$JP_TMP/big.in"
{ seq 1 1000; echo; seq 1001 2000; } >"$JP_TMP/big.want"
jp_ctl map -k <"$JP_TMP/big.in" >"$JP_TMP/out" 2>"$JP_TMP/err"; rc=$?
jp_eq "map with a line over max_payload: exit status" 1 "$rc"
if cmp -s "$JP_TMP/big.want" "$JP_TMP/out"; then
	jp_pass "map with a line over max_payload: an empty line in its place, the rest in order"
else
	jp_fail "map with a line over max_payload: output differs: $(cmp "$JP_TMP/big.want" "$JP_TMP/out" 2>&1)"
fi
jp_eq "map with a line over max_payload: stderr names the line and why" \
	"jobpoolctl: line 1001: not submitted: toolarge SUBMIT: size 1500000 exceeds the limit of 1048576 bytes" \
	"$(cat "$JP_TMP/err")"
jp_ctl map <"$JP_TMP/big.in" >"$JP_TMP/out" 2>/dev/null; rc=$?
jp_eq "map (any order) with a line over max_payload: exit status" 1 "$rc"
if sort -n "$JP_TMP/out" | cmp -s <(sort -n "$JP_TMP/big.want") -; then
	jp_pass "map (any order) with a line over max_payload: the other lines come back"
else
	jp_fail "map (any order) with a line over max_payload: output differs"
fi
{ echo one; head -c 1500000 /dev/zero | tr '\0' x; echo; echo three; } >"$JP_TMP/big3.in"
out=$(jp_ctl --json map -k <"$JP_TMP/big3.in" 2>/dev/null |
	python3 -c 'import json, sys; print(" ".join("%d:%s:%d:%s" % (d["line"], d["status"], d["id"] != 0, d["result"][:18]) for d in map(json.loads, sys.stdin)))')
jp_eq "map --json with a line over max_payload: its object says refused" \
	"1:ok:1:one 2:refused:0:toolarge SUBMIT: s 3:ok:1:three" "$out"

# Batching: during a large map through a queue with batch = 64, a worker is sent more
# than one job at a time (STATS inflight > 1).
python3 "$BADCLIENT_PY" watch "$JP_SOCK" batched >"$JP_TMP/watch.out" 2>&1 &
watch=$!
jp_until 5 grep -q '^watch: started' "$JP_TMP/watch.out"
seq 1 200000 >"$JP_TMP/in200k"
jp_ctl map -k -q batched <"$JP_TMP/in200k" >"$JP_TMP/out"; rc=$?
kill "$watch"
wait "$watch"
jp_eq "map of 200000 lines on a batching queue: exit status" 0 "$rc"
if cmp -s "$JP_TMP/in200k" "$JP_TMP/out"; then jp_pass "map of 200000 lines: all back in order"
else jp_fail "map of 200000 lines: output differs"; fi
sed 's/^/batched: /' "$JP_TMP/watch.out"
n=$(sed -n 's/^watch: most in flight to one worker: //p' "$JP_TMP/watch.out")
if [ "${n:-0}" -gt 1 ]; then jp_pass "batching: STATS showed a worker with $n jobs in flight"
else jp_fail "batching: STATS never showed a worker with more than ${n:-?} job in flight"; fi

# The window: map -j 3 never has more than 3 jobs in the daemon (queued + running).
python3 "$BADCLIENT_PY" watch "$JP_SOCK" sleep >"$JP_TMP/watch.out" 2>&1 &
watch=$!
jp_until 5 grep -q '^watch: started' "$JP_TMP/watch.out"
for i in $(seq 1 40); do echo 30; done >"$JP_TMP/in40"
jp_ctl map -k -j 3 -q sleep <"$JP_TMP/in40" >"$JP_TMP/out"; rc=$?
kill "$watch"
wait "$watch"
jp_eq "map -j 3 on the sleep queue: exit status" 0 "$rc"
if cmp -s "$JP_TMP/in40" "$JP_TMP/out"; then jp_pass "map -j 3: all back in order"
else jp_fail "map -j 3: output differs"; fi
sed 's/^/window: /' "$JP_TMP/watch.out"
n=$(sed -n 's/^watch: most held (depth + delayed + running): //p' "$JP_TMP/watch.out")
if [ -n "$n" ] && [ "$n" -ge 1 ] && [ "$n" -le 3 ]; then
	jp_pass "map -j 3: at most $n jobs queued + running at a time"
else
	jp_fail "map -j 3: STATS showed ${n:-?} jobs queued + running (want 1 to 3)"
fi
n=$(sed -n 's/^watch: most in flight to all workers: //p' "$JP_TMP/watch.out")
if [ "${n:-9}" -le 3 ]; then jp_pass "map -j 3: at most $n jobs in flight to the workers"
else jp_fail "map -j 3: $n jobs in flight to the workers"; fi

# The progress line, when stderr is a terminal (script(1) gives it one): "N/M done, F
# failed" on one line, rewritten in place, cleared for a message, erased at the end.
if script -qec true /dev/null >/dev/null 2>&1; then
	printf '%s\n' 100 100 100 bad 100 100 100 100 100 100 >"$JP_TMP/in10"
	# One at a time (-j 1), so the progress line is up when line 4 fails.
	script -qec "'$JOBPOOLCTL' map -k -j 1 -q sleep <'$JP_TMP/in10' >'$JP_TMP/out'" /dev/null \
		>"$JP_TMP/tty" 2>&1; rc=$?
	jp_eq "map on a terminal: exit status (one line failed)" 1 "$rc"
	jp_eq "map on a terminal: stdout as without one" "100|100|100||100|100|100|100|100|100|" \
		"$(tr '\n' '|' <"$JP_TMP/out")"
	tty=$(tr '\r\033' 'RE' <"$JP_TMP/tty")
	jp_match "map on a terminal: a progress line" 'R[0-9]+/[0-9]+ done, [01] failed' "$tty"
	jp_match "map on a terminal: it counts the failed line" 'R[0-9]+/10 done, 1 failed' "$tty"
	jp_match "map on a terminal: the progress line is cleared for the message" \
		"RE\\[Kjobpoolctl: line 4: job [0-9]+ failed: " "$tty"
	case $tty in
	*'RE[K') jp_pass "map on a terminal: the progress line is erased at the end" ;;
	*) jp_fail "map on a terminal: the output does not end by erasing the line: '$(printf '%s' "$tty" | tail -c 60)'" ;;
	esac
else
	echo "script(1) from util-linux is not installed: the progress line is not checked"
fi

# An unknown queue is fatal: exit 3 and a message naming it.
err=$(jp_ctl map -q nosuchqueue < "$JP_TMP/in" 2>&1 >/dev/null); rc=$?
jp_eq "map to an unknown queue: exit status" 3 "$rc"
jp_match "map to an unknown queue names it" "line 1: noqueue.*nosuchqueue" "$err"

# Usage errors.
jp_ctl map -j 0 < /dev/null >/dev/null 2>&1; rc=$?
jp_eq "map -j 0: exit status" 2 "$rc"
jp_ctl map extra < /dev/null >/dev/null 2>&1; rc=$?
jp_eq "map with an argument: exit status" 2 "$rc"

# The daemon is still fine after all that.
out=$(jp_ctl ping)
jp_eq "ping after map" "pong" "$out"

jp_stop
jp_done
