#!/bin/bash
# it_badinput.sh: every kind of bad input PROTOCOL.md names, sent over the raw socket
# to the real jobpoold: well-framed errors (ERR, and the connection carries on), lost
# framing (ERR proto, then the daemon closes), oversized and truncated bodies, binary
# garbage, over-long lines, a client that pipelines thousands of waits and never reads
# (memory stays bounded, others are still served), and hundreds of connections dropped
# mid-request, or ended inside a request (ERR proto saying how far in). Afterwards the
# daemon still answers and stops cleanly. Then the output limits: 400 WAITs of a 1 MiB
# result and 3000 DEADs of 5000 dead jobs in one write, never read (RSS bounded, others
# served promptly), replies unread past 4 x max_output while the client reads nothing
# for output_timeout (the connection is closed and logged, its jobs still run), while a
# client that reads, however slowly, gets a burst of results 18 times that and one
# result of 16 times 4 x max_output whole; and max_connections (ERR busy, then served
# again). A declared size of gigabytes closes the connection; "\r\n" ends a body.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
FLOOD=
trap '[ -n "$FLOOD" ] && kill "$FLOOD" 2>/dev/null; jp_cleanup' EXIT

# AddressSanitizer keeps up to 256 MiB of freed memory in quarantine, which would make a
# sanitized daemon's RSS grow with every buffer it frees. Keep it small, so what the RSS
# checks below measure is what the daemon holds. (Ignored by a build without ASan.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"
# A connection the daemon keeps open is given up after 5 s.
JP_RAW_TIMEOUT=5

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

DPID=$(jp_stat daemon pid)
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
# A declared size more than 64 MiB over max_payload is not read through: the client is
# told, and the connection closed at once, though the client keeps its side open.
out=$(printf 'SUBMIT echo 9999999999 wait\nPING\n' | raw --keep-open); rc=$?
jp_eq "a size of 10 GB: the daemon closes the connection" 0 "$rc"
jp_eq "a size of 10 GB: ERR toolarge says so" \
	"ERR toolarge SUBMIT: size 9999999999 exceeds the limit of 4096 bytes; closing the connection (a body of more than 67112960 bytes is not read)" "$out"
out=$(printf 'SUBMIT echo 67112961\n' | raw --keep-open); rc=$?
jp_eq "a size one byte over max_payload + 64 MiB: closed" "0 ERR toolarge SUBMIT: size 67112961 exceeds the limit of 4096 bytes; closing the connection (a body of more than 67112960 bytes is not read)" "$rc $out"
out=$(printf 'SUBMIT echo 67112960\n' | raw --keep-open -t 0.5); rc=$?
jp_eq "a size of max_payload + 64 MiB: skipped, the connection stays" "3 ERR toolarge SUBMIT: size 67112960 exceeds the limit of 4096 bytes" "$rc $out"
daemon_alive "after oversized bodies"

# ----- "\r\n" after a body, as socat and telnet send it (PROTOCOL.md) -----
out=$(printf 'SUBMIT echo 5 wait\r\nhello\r\nPING\r\n' | raw); rc=$?
jp_eq "a body ending in \\r\\n: the connection stays up" 0 "$rc"
text_match "a body ending in \\r\\n: OK, its RESULT, and the next request answered" \
	'^OK [0-9]+
(RESULT [0-9]+ ok 5
hello
OK pong|OK pong
RESULT [0-9]+ ok 5
hello)$' "$out"
{ printf 'SUBMIT echo 5000\r\n'; head -c 5000 /dev/zero; printf '\r\nPING\r\n'; } |
	raw >"$JP_TMP/out"
jp_eq "an oversized body ending in \\r\\n: ERR toolarge, then the next request" \
"ERR toolarge SUBMIT: size 5000 exceeds the limit of 4096 bytes
OK pong" "$(printable <"$JP_TMP/out")"

# ----- a truncated body, then the client closes: nothing runs, nothing breaks -----
before=$(jp_stat queue submitted)
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
jp_eq "no job was made of a truncated body" "$before" "$(jp_stat queue submitted)"
# More places a request can end: right after its line, a whole body but not the newline
# after it, a body cut short after several of the daemon's reads. What came before is
# answered first; the count is of the bytes of the incomplete request alone.
incomplete='the connection ended %s bytes into an incomplete request (a line without its newline, or a body shorter than its size)'
out=$(printf 'SUBMIT echo 10\n' | raw); rc=$?
jp_eq "a SUBMIT line and no body, then EOF: the daemon closes" 0 "$rc"
jp_eq "a SUBMIT line and no body, then EOF: ERR proto" \
	"ERR proto $(printf "$incomplete" 15)" "$out"
out=$(printf 'SUBMIT echo 3\nabc' | raw); rc=$?
jp_eq "a whole body without its newline, then EOF: the daemon closes" 0 "$rc"
jp_eq "a whole body without its newline, then EOF: ERR proto" \
	"ERR proto $(printf "$incomplete" 17)" "$out"
out=$( { printf 'PING\nSUBMIT echo 3 wait\nabc\nSUBMIT echo 4000 wait\n'
	head -c 3000 /dev/zero | tr '\0' 'b'; } | raw | sed 's/[0-9][0-9]* ok/N ok/; s/^OK [0-9][0-9]*$/OK N/'); rc=$?
jp_eq "3000 of 4000 body bytes, then EOF: the daemon closes" 0 "$rc"
# The RESULT of the job before it may come before or after the ERR (it is not a reply).
jp_eq "3000 of 4000 body bytes, then EOF: the replies before it, then ERR proto" \
"OK pong
OK N
ERR proto $(printf "$incomplete" 3022)" "$(printf '%s\n' "$out" | grep -v -e '^RESULT ' -e '^abc$')"
jp_eq "no job was made of the incomplete requests" "$((before + 1))" "$(jp_stat queue submitted)"
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
	'connection [0-9]+ \(pid [0-9]+, uid [0-9]+\): line longer than 1024 bytes; closed' \
	"$(cat "$JP_LOG")"
# Eleven of the connections above lost framing (the others closed without that)
# within a few seconds: at most 10 lines in 10 s, then one line with the rest.
framing_lines=$(grep -cE 'connection [0-9]+ \(pid .*; closed$' "$JP_LOG")
if [ "$framing_lines" -le 10 ]; then jp_pass "lost framing: $framing_lines lines logged one by one (at most 10 in 10 s)"
else jp_fail "lost framing: $framing_lines lines logged one by one in a few seconds"; fi
jp_until 13 grep -q 'more connections\? lost framing' "$JP_LOG"
sum=$(sed -n 's/.* \([0-9]*\) more connections\{0,1\} lost framing and \(was\|were\) closed in the last 10 s.*/\1/p' "$JP_LOG" | head -1)
jp_eq "lost framing: the rest are summed up in one line" 11 "$((framing_lines + ${sum:-0}))"

# ----- a client that pipelines thousands of waits and never reads its replies -----
# 500,000 requests are 13 MB; taking them all would cost the daemon far more than that
# in jobs and replies. max_output is 64 KiB. The jobs are delayed (past the end of the
# test), so only their OKs wait for the client: the results of jobs it took could go
# past 4 x max_output, when the daemon closes the connection (checked further down).
rss0=$(jp_rss "$DPID")
python3 "$BADCLIENT_PY" flood "$JP_SOCK" echo 500000 "delay=600000 wait" \
	>"$JP_TMP/flood.out" 2>&1 &
FLOOD=$!
jp_until 10 grep -q '^flood:' "$JP_TMP/flood.out"
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
conns=$(jp_stat daemon connections)
jp_eq "flood: STATS counts the stuck client (and the STATS connection)" 2 "$conns"
kill "$FLOOD"
wait "$FLOOD" 2>/dev/null
FLOOD=
jp_eq_until "flood: the stuck connection is gone once the client goes" 1 5 \
	jp_stat daemon connections
daemon_alive "after the flood"

# ----- hundreds of connections dropped mid-request, some with a reset -----
out=$(badclient abrupt "$JP_SOCK" echo 600); rc=$?
jp_eq "abrupt: 600 connections opened and dropped" "0 abrupt: 600" "$rc $out"
jp_eq_until "abrupt: every dropped connection is closed" 1 5 jp_stat daemon connections
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
jp_eq "no worker died" 0 "$(jp_stat queue worker_deaths)"
out=$(seq 1 1000 | jp_ctl map -k -q echo | md5sum)
jp_eq "a map of 1000 lines after all of it" "$(seq 1 1000 | md5sum)" "$out"

jp_stop

# ===== output limits: many requests with big replies in one write, never read =====
# max_output at its default (4 MiB), so the limit to closing (16 MiB) is not reached:
# the daemon stops reading such a client, holding about max_output of its replies, and
# serves everybody else. Without the limit per request, one read of these requests
# would make all their replies at once (400 MiB of WAITs, about 2 GB of DEADs).
jp_start 'queues = (
	{ name = "echo"; handler = "echo"; workers = 2; },
	{ name = "doomed"; handler = "sleep"; workers = 2; retries = 0; }
);
max_payload = 2097152;
max_output = 4194304;
dead_max = 5000;'
DEAF=
trap '[ -n "$DEAF" ] && kill "$DEAF" 2>/dev/null; jp_cleanup' EXIT

# deaf WHAT FILE: send the requests in FILE on a connection that never reads, in the
# background (DEAF); wait until they are sent and note the daemon's RSS before (RSS0).
deaf() {
	RSS0=$(jp_rss)
	python3 "$BADCLIENT_PY" deaf "$JP_SOCK" --hold 120 <"$2" >"$JP_TMP/deaf.out" 2>&1 &
	DEAF=$!
	# The daemon must read it all first: 3000 DEADs of 600 KB each take it a while
	# under valgrind (make check-valgrind).
	jp_until 60 grep -q '^deaf: sent' "$JP_TMP/deaf.out" || true
	jp_match "$1: every request is sent (the kernel buffers them)" \
		'^deaf: sent ([1-9][0-9]*) of \1 bytes$' "$(head -1 "$JP_TMP/deaf.out")"
}
# bounded WHAT: the daemon's RSS, sampled for a second, stays under RSS0 + 64 MiB;
# jobpoolctl ping from another client is answered (within a generous 2 s); then the
# deaf client goes, its connection still open (under 4 x max_output of unread replies).
bounded() {
	local i r max=0 t0 dt out rc
	for i in $(seq 1 20); do
		r=$(jp_rss)
		[ "${r:-0}" -gt "$max" ] && max=$r
		sleep 0.05
	done
	echo "$1: daemon RSS ${RSS0} KiB before, at most ${max} KiB with the client stuck"
	if [ "$max" -lt $((RSS0 + 65536)) ]; then
		jp_pass "$1: the daemon's RSS stays under ${RSS0} KiB + 64 MiB"
	else
		jp_fail "$1: the daemon's RSS went from ${RSS0} to ${max} KiB"
	fi
	t0=$(now_ms)
	out=$(timeout 10 "$JOBPOOLCTL" ping 2>&1); rc=$?
	dt=$(( $(now_ms) - t0 ))
	jp_eq "$1: jobpoolctl ping from another client" "0 pong" "$rc $out"
	if [ "$dt" -lt 2000 ]; then jp_pass "$1: ... answered in $dt ms"
	else jp_fail "$1: ping took $dt ms while the client was stuck"; fi
	kill "$DEAF"
	wait "$DEAF"
	DEAF=
	jp_eq "$1: the stuck connection was not closed" "deaf: still open" \
		"$(tail -1 "$JP_TMP/deaf.out")"
}

# (a) 400 WAITs for a job with a 1 MiB result.
head -c 1048576 /dev/urandom >"$JP_TMP/mib"
id=$(jp_ctl submit -q echo - <"$JP_TMP/mib")
jp_ctl wait --raw "$id" >"$JP_TMP/mib.out"
if cmp -s "$JP_TMP/mib" "$JP_TMP/mib.out"; then jp_pass "a 1 MiB echo job is done"
else jp_fail "the 1 MiB echo job's result differs: $(cmp "$JP_TMP/mib" "$JP_TMP/mib.out" 2>&1)"; fi
for i in $(seq 1 400); do printf 'WAIT %s\n' "$id"; done >"$JP_TMP/in"
deaf "400 WAITs of 1 MiB" "$JP_TMP/in"
bounded "400 WAITs of 1 MiB"

# (b) 3000 DEADs while 5000 jobs are dead (each DEAD reply is about 600 KB).
seq 1 5000 | sed 's/^/not a number /' | jp_ctl map -q doomed >/dev/null 2>&1; rc=$?
jp_eq "5000 jobs that fail permanently: map's exit status" 1 "$rc"
jp_eq "5000 dead jobs" 5000 "$(jp_ctl dead | grep -c " doomed ")"
for i in $(seq 1 3000); do printf 'DEAD\n'; done >"$JP_TMP/in"
deaf "3000 DEADs of 5000 dead jobs" "$JP_TMP/in"
bounded "3000 DEADs of 5000 dead jobs"
out=$(printf 'DEAD\n' | raw | head -1)
jp_match "afterwards a DEAD is answered in full" '^DATA [0-9]{6,}$' "$out"
jp_stop

# ----- (c) unread replies past 4 x max_output: the daemon closes the connection -----
# 40 jobs of 30,000 bytes with wait, delayed by 2 s (time for the client to send them
# and read its 40 OKs), on a queue that takes 50 ms a job; then the client reads
# nothing. The results keep coming: past 4 x 64 KiB, once the client has read nothing
# for output_timeout (1 s), the daemon closes the connection. The jobs are not lost.
jp_start 'queues = ( { name = "slow"; handler = "sleep"; workers = 1; batch = 1; } );
max_payload = 65536;
max_output = 65536;
output_timeout = 1;'
pad=$(printf '%-30000s' 50)
for i in $(seq 1 40); do printf 'SUBMIT slow 30000 delay=2000 wait\n%s\n' "$pad"; done >"$JP_TMP/in"
python3 "$BADCLIENT_PY" deaf "$JP_SOCK" --read-oks 40 --hold 60 <"$JP_TMP/in" \
	>"$JP_TMP/deaf.out" 2>&1; rc=$?
jp_eq "unread results: the client ran" 0 "$rc"
out=$(cut -c 1-200 "$JP_TMP/deaf.out")
ids=$(sed -n 's/^deaf: ids //p' "$JP_TMP/deaf.out")
jp_eq "unread results: 40 jobs submitted" 40 "$(printf '%s\n' $ids | grep -c '^[0-9][0-9]*$')"
jp_match "unread results: the daemon closes the connection" \
	'^deaf: closed by the daemon after [0-9]+ ms$' "$out"
jp_match "unread results: the log says why" \
	'warning: connection [0-9]+ \(pid [0-9]+, uid [0-9]+\): [0-9]+ bytes of replies unread, more than 4 x max_output, and none taken for 1000 ms \(output_timeout\); closing it' \
	"$(cat "$JP_LOG")"
ms=$(sed -n 's/^deaf: closed by the daemon after \([0-9]*\) ms$/\1/p' "$JP_TMP/deaf.out")
if [ "${ms:-0}" -ge 1000 ]; then jp_pass "unread results: closed no sooner than output_timeout ($ms ms)"
else jp_fail "unread results: closed after ${ms:-?} ms, before output_timeout (1000 ms)"; fi
st=$(for id in $ids; do printf 'STATUS %s\n' "$id"; done | raw)
left=$(printf '%s\n' "$st" | grep -vc 'state=done ')
echo "unread results: $left of 40 jobs not done yet when the connection was closed"
ndone() { for id in $ids; do printf 'STATUS %s\n' "$id"; done | raw | grep -c 'state=done '; }
jp_eq_until "unread results: every job of the closed connection still runs to done" 40 30 ndone
daemon_alive "after closing a connection for unread replies"
jp_stop

# The same with output_timeout = 0: closed as soon as that much waits on a full socket.
jp_start 'queues = ( { name = "slow"; handler = "sleep"; workers = 1; batch = 1; } );
max_payload = 65536;
max_output = 65536;
output_timeout = 0;'
python3 "$BADCLIENT_PY" deaf "$JP_SOCK" --read-oks 40 --hold 60 <"$JP_TMP/in" \
	>"$JP_TMP/deaf0.out" 2>&1; rc=$?
jp_eq "output_timeout = 0: the client ran" 0 "$rc"
jp_match "output_timeout = 0: the daemon closes the connection" \
	'^deaf: closed by the daemon after [0-9]+ ms$' "$(cut -c 1-200 "$JP_TMP/deaf0.out")"
jp_match "output_timeout = 0: the log says so" \
	'none taken for 0 ms \(output_timeout\); closing it' "$(cat "$JP_LOG")"
daemon_alive "after output_timeout = 0 closed a connection"
jp_stop

# ----- (d) a client that reads is not closed, however much waits for it -----
# max_output 64 KiB (the limit 256 KiB), results up to 1 MiB: valid, with a warning.
log0=$(wc -l <"$JP_LOG")
jp_start 'queues = ( { name = "echo"; handler = "echo"; workers = 2; } );
max_payload = 1048576;
max_output = 65536;'
jp_match "max_payload over 4 x max_output: the log warns at its line" \
	"warning: $JP_TMP/jobpool.conf:3: a result of max_payload \\(1048576 bytes\\) is more than 4 x max_output" \
	"$(cat "$JP_LOG")"
# One result of 1 MiB, four times the limit, to a client that reads it.
head -c 1048576 /dev/urandom >"$JP_TMP/mib"
bc_submit echo <"$JP_TMP/mib" >"$JP_TMP/mib.out"; rc=$?
jp_eq "a result of 4 x (4 x max_output): the client's exit status" 0 "$rc"
jp_match "a result of 4 x (4 x max_output): RESULT ok" '^RESULT [0-9]+ ok 1048576$' "$(hdr)"
if cmp -s "$JP_TMP/mib" "$JP_TMP/mib.out"; then jp_pass "... and it comes whole"
else jp_fail "the 1 MiB result differs: $(cmp "$JP_TMP/mib" "$JP_TMP/mib.out" 2>&1)"; fi
# 80 results of 60 KB that fall due together (4.8 MB, 18 x the limit), to a client
# that reads 4 KiB a millisecond, after a pause of 2 s (under output_timeout).
pad=$(printf '%-61440s' x)
for i in $(seq 1 80); do printf 'SUBMIT echo 61440 delay=500 wait\n%s\n' "$pad"; done >"$JP_TMP/in"
badclient slowread "$JP_SOCK" 80 --chunk 4096 --sleep-ms 1 --pause-ms 2000 \
	<"$JP_TMP/in" >"$JP_TMP/slow.out"; rc=$?
jp_eq "a burst of 80 x 60 KB to a slow reader: the client ran" 0 "$rc"
jp_eq "a burst of 80 x 60 KB to a slow reader: every result, whole, on an open connection" \
"slowread: 80 results (80 ok, 4915200 bytes of bodies), 80 replies
slowread: open" "$(cat "$JP_TMP/slow.out")"
jp_eq "no connection was closed for its replies" 0 \
	"$(tail -n +$((log0 + 1)) "$JP_LOG" | grep -c 'bytes of replies unread')"
jp_stop

# ----- max_connections: the one too many gets ERR busy and is closed -----
# (Without reserved_connections: this test's user is root or the daemon's, for whom
# they are kept. it_crowd.sh tests those.)
jp_start 'queues = ( { name = "echo"; handler = "echo"; workers = 1; } );
max_connections = 5;
reserved_connections = 0;'
# jp_start's ping has gone; wait until the daemon has seen it go.
jp_until 5 jp_out_eq 1 jp_stat daemon connections
out=$(badclient maxconn "$JP_SOCK" 5); rc=$?
jp_eq "max_connections = 5: the client ran" 0 "$rc"
jp_eq "max_connections = 5: five are served, the sixth refused; two go, new ones are served" \
"conn 1: OK pong
conn 2: OK pong
conn 3: OK pong
conn 4: OK pong
conn 5: OK pong
extra: ERR busy too many connections (max_connections) | closed
after closing two: served
another one: served
open now: 5
extra again: ERR busy too many connections (max_connections) | closed" "$out"
jp_match "max_connections: the log says it refuses connections" \
	'warning: refusing a connection from pid [0-9]+ uid [0-9]+: too many connections \(max_connections\) \(5 open' \
	"$(cat "$JP_LOG")"
jp_eq_until "max_connections: once they are closed, jobpoolctl ping works" pong 5 jp_ctl ping
jp_stop
jp_done
