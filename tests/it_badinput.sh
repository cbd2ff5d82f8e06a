#!/bin/bash
# it_badinput.sh: every kind of bad input PROTOCOL.md names, sent over the raw socket
# to the real jobpoold: well-framed errors (ERR, and the connection carries on), lost
# framing (ERR proto, then the daemon closes), oversized and truncated bodies, binary
# garbage, over-long lines, a client that pipelines thousands of waits and never reads
# (memory stays bounded, others are still served), and hundreds of connections dropped
# mid-request. Afterwards the daemon still answers and stops cleanly.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
FLOOD=
trap '[ -n "$FLOOD" ] && kill "$FLOOD" 2>/dev/null; jp_cleanup' EXIT

# raw [OPTION ...]: stdin to a new connection; the daemon's bytes on stdout. The exit
# status is 0 when the daemon closed the connection, 3 when it kept it open.
# AddressSanitizer keeps up to 256 MiB of freed memory in quarantine, which would make a
# sanitized daemon's RSS grow with every buffer it frees. Keep it small, so what the RSS
# checks below measure is what the daemon holds. (Ignored by a build without ASan.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"

raw() { badclient raw -t 5 "$JP_SOCK" "$@"; }
# stat_get TYPE KEY: a value from STATS (the first line of that type).
stat_get() {
	badclient stats "$JP_SOCK" | awk -v t="$1" -v k="$2" '$1 == t {
		for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) {
			print substr($i, length(k) + 2); exit } }'
}
daemon_alive() {
	jp_eq "$1: the daemon still answers PING" "OK pong" "$(printf 'PING\n' | raw)"
}
printable() { tr -c '[:print:]\n' '.'; }
# text_match WHAT REGEX TEXT: like jp_match, but REGEX is matched against the whole
# text, newlines included (jp_match's grep takes each line of a pattern as a pattern).
text_match() {
	if [[ $3 =~ $2 ]]; then jp_pass "$1"; else jp_fail "$1: '$3' does not match /$2/"; fi
}

jp_start 'queues = (
	{ name = "echo"; handler = "echo"; workers = 2; }
);
max_payload = 4096;
max_output = 65536;'

DPID=$(stat_get daemon pid)
jp_match "the daemon's pid from STATS" '^[0-9]+$' "$DPID"

# ----- well framed but wrong: ERR naming the field, and the connection carries on -----
out=$(printf 'FROB\nping\nPING\r\n\nPING extra\nSTATS now\nQUIT please\nPING\n' | raw); rc=$?
jp_eq "unknown commands: the connection stays up until the client closes" 0 "$rc"
jp_eq "unknown commands, CRLF, empty lines, extra arguments" \
"ERR proto unknown command 'FROB'
ERR proto unknown command 'ping'
OK pong
ERR proto empty request line
ERR proto PING: unexpected argument 'extra'
ERR proto STATS: unexpected argument 'now'
ERR proto QUIT: unexpected argument 'please'
OK pong" "$out"

out=$(printf '%s\n' WAIT 'WAIT abc' 'WAIT +5' 'WAIT -5' 'STATUS 0' \
	'STATUS 12345678901234567890' 'CANCEL 1.5' 'CANCEL 1 2' 'WAIT 9999999999999999999' \
	PING | raw)
jp_eq "bad numbers" \
"ERR proto WAIT: missing job id
ERR proto WAIT: bad job id 'abc'
ERR proto WAIT: bad job id '+5'
ERR proto WAIT: bad job id '-5'
ERR proto STATUS: bad job id '0'
ERR proto STATUS: bad job id '12345678901234567890'
ERR proto CANCEL: bad job id '1.5'
ERR proto CANCEL: unexpected argument '2'
ERR notfound no job 9999999999999999999
OK pong" "$out"

# A SUBMIT that fails still has its body read: the body is never taken as a request.
out=$(printf '%s\n' SUBMIT 'SUBMIT echo' 'SUBMIT b/d 4' PING \
	'SUBMIT echo 4 frob' PING 'SUBMIT echo 4 wait wait' PING \
	'SUBMIT echo 4 prio=high' PING 'SUBMIT echo 4 prio=99999999999999999999' PING \
	'SUBMIT echo 4 delay=-5' PING 'SUBMIT echo 4 timeout=99999999999' PING \
	'SUBMIT echo 4 prio=11' PING 'SUBMIT echo 4 prio=-11' PING \
	'SUBMIT nosuch 4 wait' PING 'SUBMIT echo 4' PING PING | raw)
jp_eq "bad SUBMITs: each gets its ERR and its body is skipped" \
"ERR proto SUBMIT: missing queue name
ERR proto SUBMIT: missing size
ERR proto SUBMIT: bad queue name 'b/d'
ERR proto SUBMIT: unknown option 'frob'
ERR proto SUBMIT: duplicate option 'wait'
ERR proto SUBMIT: prio: bad number 'high'
ERR proto SUBMIT: prio: bad number '99999999999999999999'
ERR proto SUBMIT: delay: bad number '-5'
ERR proto SUBMIT: timeout: out of range '99999999999'
ERR proto SUBMIT: prio=11 is outside queue 'echo' range -10..10
ERR proto SUBMIT: prio=-11 is outside queue 'echo' range -10..10
ERR noqueue SUBMIT: no queue 'nosuch'
OK *
OK pong" "$(printf '%s\n' "$out" | sed 's/^OK [0-9][0-9]*$/OK */')"

# Tabs and runs of blanks separate words.
out=$(printf 'SUBMIT\techo  \t 2 \twait\nhi\nPING\n' | raw | sort)
text_match "tabs and blanks between words" '^OK [0-9]+
OK pong
RESULT [0-9]+ ok 2
hi$' "$out"

# ----- oversized bodies: ERR toolarge, the body is discarded, the connection goes on ---
# 300 KiB, more than one read of the daemon's, full of newlines and request-like text.
python3 -c 'import sys; sys.stdout.buffer.write((b"PING\nSTATS\n\x00\xff" * 30000)[:307200])' \
	>"$JP_TMP/big"
{ printf 'SUBMIT echo 307200 wait\n'; cat "$JP_TMP/big"; printf '\nPING\n'
  printf 'SUBMIT echo 4097\n'; head -c 4097 "$JP_TMP/big"; printf '\nPING\n'; } |
	raw >"$JP_TMP/out"; rc=$?
out=$(printable <"$JP_TMP/out")
jp_eq "oversized bodies: the connection stays up" 0 "$rc"
jp_eq "oversized bodies: ERR toolarge, and the next request is answered" \
"ERR toolarge SUBMIT: size 307200 exceeds the limit of 4096 bytes
OK pong
ERR toolarge SUBMIT: size 4097 exceeds the limit of 4096 bytes
OK pong" "$out"
head -c 4096 "$JP_TMP/big" >"$JP_TMP/max"
badclient submit "$JP_SOCK" echo <"$JP_TMP/max" >"$JP_TMP/max.out" 2>"$JP_TMP/hdr"
jp_match "a body of exactly max_payload is accepted" '^RESULT [0-9]+ ok 4096$' \
	"$(cat "$JP_TMP/hdr")"
if cmp -s "$JP_TMP/max" "$JP_TMP/max.out"; then jp_pass "and comes back whole"
else jp_fail "a body of max_payload came back different"; fi

# The oversized body is discarded as it arrives, also when the client then goes away.
out=$( { printf 'SUBMIT echo 1000000 wait\n'; head -c 500000 /dev/zero; } | raw); rc=$?
jp_eq "half an oversized body, then EOF: the daemon closes" 0 "$rc"
jp_eq "half an oversized body, then EOF: ERR toolarge" \
	"ERR toolarge SUBMIT: size 1000000 exceeds the limit of 4096 bytes" "$out"
daemon_alive "after oversized bodies"

# ----- a truncated body, then the client closes: nothing runs, nothing breaks -----
before=$(stat_get queue submitted)
out=$(printf 'SUBMIT echo 100 wait\nonly a part' | raw); rc=$?
jp_eq "truncated body then EOF: the daemon closes the connection" 0 "$rc"
jp_eq "truncated body then EOF: ERR proto says where it ended" \
	"ERR proto the connection ended 32 bytes into an incomplete request (a line without its newline, or a body shorter than its size)" "$out"
out=$(printf 'PING\nSTATS' | raw); rc=$?
jp_eq "a line without its newline, then EOF: the request before it is answered" \
	"OK pong|ERR proto the connection ended 5 bytes into an incomplete request (a line without its newline, or a body shorter than its size)" \
	"$(printf '%s' "$out" | tr '\n' '|')"
out=$(printf 'SUBMIT echo 100 wait\nonly a part' | raw --keep-open -t 0.5); rc=$?
jp_eq "truncated body, client still there: the daemon waits for the rest" 3 "$rc"
jp_eq "no job was made of a truncated body" "$before" "$(stat_get queue submitted)"
daemon_alive "after truncated bodies"

# ----- lost framing: ERR proto with the reason, then the daemon closes -----
# --keep-open: the client never closes its side; the daemon must.
# lostframing WHAT REGEX: send $JP_TMP/in; the whole reply matches REGEX and then the
# daemon closes the connection, though the client keeps its side open.
lostframing() {
	local rc
	raw --keep-open <"$JP_TMP/in" >"$JP_TMP/out"; rc=$?
	jp_eq "$1: the daemon closes the connection" 0 "$rc"
	text_match "$1: ERR proto with the reason" "$2" "$(printable <"$JP_TMP/out")"
}
printf '\x00\x01\x02\xff\xfe\x7f\nPING\n' >"$JP_TMP/in"
lostframing "binary garbage" \
	'^ERR proto (binary data|control byte 0x00).*; closing the connection$'
printf '\x00\x01\x02\xff\xfe\x7f' >"$JP_TMP/in"
lostframing "binary garbage, no newline" \
	'^ERR proto binary data where a request line should be; closing the connection$'
{ printf '\x01'; head -c 3000 /dev/urandom; } >"$JP_TMP/in"
# (Any reason will do: 3000 random bytes may hold no newline in their first 1025.)
lostframing "random bytes" '^ERR proto [^
]*; closing the connection$'
printf 'PI\x01NG\nPING\n' >"$JP_TMP/in"
lostframing "a control byte in a line" \
	'^ERR proto control byte 0x01 in request line; closing the connection$'
# PROTOCOL.md: a line is printable ASCII, and a byte that cannot start a line loses
# framing. A byte of 0x80 or more is not printable ASCII.
printf 'PING\n\xff\xfePING\nPING\n' >"$JP_TMP/in"
lostframing "a line starting with byte 0xff" \
	'^OK pong
ERR proto [^
]*; closing the connection$'
{ printf 'PING\n'; head -c 2000 /dev/zero | tr '\0' A; printf '\nPING\n'; } >"$JP_TMP/in"
lostframing "a line of 2000 bytes" \
	'^OK pong
ERR proto line longer than 1024 bytes; closing the connection$'
head -c 100000 /dev/zero | tr '\0' A >"$JP_TMP/in"
lostframing "100000 bytes and no newline" \
	'^ERR proto line longer than 1024 bytes; closing the connection$'
{ printf 'PING'; head -c 1020 /dev/zero | tr '\0' ' '; printf '\nPING'
  head -c 1021 /dev/zero | tr '\0' ' '; printf '\nPING\n'; } >"$JP_TMP/in"
lostframing "a line of 1024 bytes passes, one of 1025 does not" \
	'^OK pong
ERR proto line longer than 1024 bytes; closing the connection$'
printf 'SUBMIT echo abc\nPING\n' >"$JP_TMP/in"
lostframing "SUBMIT with a bad size" \
	"^ERR proto SUBMIT: bad size 'abc'; closing the connection$"
printf 'SUBMIT echo 99999999999999999999\nPING\n' >"$JP_TMP/in"
lostframing "SUBMIT with a 20-digit size" \
	"^ERR proto SUBMIT: bad size '99999999999999999999'; closing the connection$"
printf 'SUBMIT echo 3\nabcXPING\n' >"$JP_TMP/in"
lostframing "a body not followed by a newline" \
	'^ERR proto SUBMIT: body of 3 bytes not followed by newline; closing the connection$'
printf 'QUIT\nPING\n' >"$JP_TMP/in"
lostframing "QUIT" '^OK bye$'
daemon_alive "after lost framing"
jp_match "the log names a connection closed for lost framing" \
	'connection [0-9]+ \(pid [0-9]+\): line longer than 1024 bytes; closed' \
	"$(cat "$JP_LOG")"

# ----- a client that pipelines thousands of waits and never reads its replies -----
# 500,000 requests are 10 MB; taking them all would cost the daemon far more than that
# in jobs, kept results and replies (about 40 MB of replies alone). max_output is 64 KiB.
rss0=$(jp_rss "$DPID")
python3 "$BADCLIENT_PY" flood "$JP_SOCK" echo 500000 >"$JP_TMP/flood.out" 2>&1 &
FLOOD=$!
for i in $(seq 1 200); do
	grep -q '^flood:' "$JP_TMP/flood.out" && break
	sleep 0.05
done
out=$(cat "$JP_TMP/flood.out")
jp_match "flood: the daemon stopped reading before taking every request" \
	'^flood: sent [0-9]+ of 500000 requests$' "$out"
sent=$(printf '%s\n' "$out" | sed -n 's/^flood: sent \([0-9]*\) of.*/\1/p')
if [ "${sent:-500000}" -lt 500000 ]; then jp_pass "flood: held back after $sent requests"
else jp_fail "flood: the daemon took all 500000 requests from a client that never reads"; fi
rss1=$(jp_rss "$DPID")
# While the first client is stuck, others are served.
jp_eq "flood: another connection's PING" "OK pong" "$(printf 'PING\n' | raw)"
out=$(jp_ctl submit -w -q echo "still here"); rc=$?
jp_eq "flood: another connection's SUBMIT -w: exit status" 0 "$rc"
jp_eq "flood: another connection's SUBMIT -w" "still here" "$out"
out=$(printf 'SUBMIT echo 3 wait\nabc\n' | raw | sed 's/[0-9][0-9]*/N/')
jp_eq "flood: a raw SUBMIT wait on another connection" "OK N
RESULT N ok 3
abc" "$out"
sleep 1
rss2=$(jp_rss "$DPID")
echo "flood: daemon RSS ${rss0} KiB before, ${rss1} KiB once stuck, ${rss2} KiB a second later"
if [ "$rss2" -lt $((rss0 + 32768)) ]; then
	jp_pass "flood: RSS stays bounded (${rss2} KiB < ${rss0} + 32 MiB)"
else
	jp_fail "flood: RSS grew from ${rss0} to ${rss2} KiB"
fi
if [ "$rss2" -le $((rss1 + 4096)) ]; then
	jp_pass "flood: RSS is flat while the client is stuck"
else
	jp_fail "flood: RSS still growing while the client is stuck: ${rss1} -> ${rss2} KiB"
fi
conns=$(stat_get daemon connections)
jp_eq "flood: STATS counts the stuck client (and the STATS connection)" 2 "$conns"
kill "$FLOOD"
wait "$FLOOD" 2>/dev/null
FLOOD=
for i in $(seq 1 100); do
	conns=$(stat_get daemon connections)
	[ "$conns" = 1 ] && break
	sleep 0.05
done
jp_eq "flood: the stuck connection is gone once the client goes" 1 "$conns"
daemon_alive "after the flood"

# ----- hundreds of connections dropped mid-request, some with a reset -----
out=$(badclient abrupt "$JP_SOCK" echo 600); rc=$?
jp_eq "abrupt: 600 connections opened and dropped" "0 abrupt: 600" "$rc $out"
for i in $(seq 1 100); do
	conns=$(stat_get daemon connections)
	[ "$conns" = 1 ] && break
	sleep 0.05
done
jp_eq "abrupt: every dropped connection is closed" 1 "$conns"
daemon_alive "after abrupt connections"

# ----- afterwards: the daemon works as before -----
out=$(jp_ctl status); rc=$?
jp_eq "jobpoolctl status: exit status" 0 "$rc"
jp_match "jobpoolctl status names the queue" 'echo' "$out"
out=$(badclient stats "$JP_SOCK")
jp_match "STATS: the daemon line" "^daemon jobpoold .*pid=$DPID " "$out"
text_match "STATS: two idle workers" \
	'worker echo pid=[0-9]+ state=idle.*
worker echo pid=[0-9]+ state=idle' "$out"
jp_eq "no worker died" 0 "$(stat_get queue worker_deaths)"
out=$(seq 1 1000 | jp_ctl map -k -q echo | md5sum)
jp_eq "a map of 1000 lines after all of it" "$(seq 1 1000 | md5sum)" "$out"

jp_stop
jp_done
