#!/bin/bash
# it_map.sh: `jobpoolctl map` against the real jobpoold: order with and without -k,
# windows from 1 up, edge cases of the input (empty, no final newline, empty lines),
# --json, failed jobs, an unknown queue, and a slow producer on a pipe.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# The sleep handler fails a payload that is not a number of milliseconds.
jp_start 'queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "sleep"; handler = "sleep"; workers = 2; retries = 0; }
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
