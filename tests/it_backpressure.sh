#!/bin/bash
# it_backpressure.sh: a producer much faster than its handler is held back, not
# buffered: the daemon stops reading it (STATS blocked=1), its memory stays flat, other
# clients are served, `nonblock` gets ERR busy on a full queue, a held SUBMIT goes on
# when room appears (also one followed by an incomplete request: then ERR proto), the
# room a held producer waits for is not taken by others (nonblock or not: first come,
# first served), and in the end every job submitted has its RESULT.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

# AddressSanitizer keeps up to 256 MiB of freed memory in quarantine, which would make
# the RSS of a sanitized daemon grow with every job it frees. Keep it small here, so
# what is measured is what the daemon holds. (Ignored by a build without ASan.)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"

job_state_is() { printf 'STATUS %s\n' "$1" | raw | grep -q "state=$2 "; }
stat_is() { [ "$(jp_stat queue "$1" "$2")" = "$3" ]; }

jp_start 'queues = (
	{ name = "slow"; handler = "sleep"; workers = 2; batch = 1; max_jobs = 50; },
	{ name = "held"; handler = "sleep"; workers = 1; batch = 1; max_jobs = 3; },
	{ name = "bytes"; handler = "sleep"; workers = 1; batch = 1; max_jobs = 100;
	  max_bytes = 1000; },
	{ name = "fcfs"; handler = "sleep"; workers = 1; batch = 1; max_jobs = 8; }
);
shutdown_timeout = 1;
kill_timeout = 1;
max_payload = 65536;
max_output = 65536;
keep_results = 20;'

DPID=$(jp_stat daemon "" pid)
jp_match "the daemon's pid from STATS" '^[0-9]+$' "$DPID"

# ----- a full queue, step by step -----
# The only worker busy (for longer than the test), then three jobs fill the queue.
occupy=$(jp_ctl submit -q held 60000)
jp_ok_until "held: the first job runs" 10 job_state_is "$occupy" running
printf 'SUBMIT held 2 nonblock\n10\nSUBMIT held 2 nonblock\n10\nSUBMIT held 2 nonblock\n10\nSUBMIT held 2 nonblock\n10\nSUBMIT held 2 nonblock wait\n10\n' |
	raw >"$JP_TMP/out"
jp_eq "held: nonblock on a full queue gets ERR busy" "OK *
OK *
OK *
ERR busy queue 'held' is full (3 jobs, 6 bytes)
ERR busy queue 'held' is full (3 jobs, 6 bytes)" "$(sed 's/^OK [0-9][0-9]*$/OK */' "$JP_TMP/out")"
victim=$(sed -n 's/^OK \([0-9][0-9]*\)$/\1/p' "$JP_TMP/out" | head -1)
jp_eq "held: depth 3 of max_jobs 3" 3 "$(jp_stat queue held depth)"
jp_eq "held: no producer blocked yet" 0 "$(jp_stat queue held blocked)"

# A SUBMIT without nonblock is held: no reply, and STATS says blocked=1.
printf 'SUBMIT held 2 prio=5\n10\n' | raw >"$JP_TMP/held.out" &
held=$!
BG="$BG $held"
jp_ok_until "held: STATS shows blocked=1" 10 stat_is held blocked 1
jp_eq "held: the held SUBMIT has no reply yet" "" "$(cat "$JP_TMP/held.out")"
jp_eq "held: other clients are served" "OK pong" "$(printf 'PING\n' | raw)"
jp_eq "held: the held job is not in the queue" 3 "$(jp_stat queue held depth)"

# Room appears (a CANCEL brings the depth under the low watermark): the SUBMIT goes on.
jp_match "held: a queued job to cancel" '^[0-9]+$' "$victim"
jp_eq "held: CANCEL a queued job" "OK cancelled" "$(printf 'CANCEL %s\n' "$victim" | raw)"
jp_ok_until "held: blocked=0 once there is room" 10 stat_is held blocked 0
jp_eq "held: ... which the CANCEL made: the first job still runs" 0 \
	"$(job_state_is "$occupy" running; echo $?)"
wait "$held"; rc=$?
BG=
jp_eq "held: the held SUBMIT is answered: exit status" 0 "$rc"
jp_match "held: the held SUBMIT is answered OK <id>" '^OK [0-9]+$' "$(cat "$JP_TMP/held.out")"
id=$(sed -n 's/^OK //p' "$JP_TMP/held.out")
jp_match "held: the held job is queued, with its priority" \
	"^OK id=$id queue=held state=queued prio=5 " "$(printf 'STATUS %s\n' "$id" | raw)"

# A held producer that then shuts down its side in the middle of a request: while held
# it gets nothing; once there is room its held SUBMIT is answered, then ERR proto for the
# incomplete request after it, and the daemon closes the connection.
jp_eq "held again: the queue is full" 3 "$(jp_stat queue held depth)"
printf 'SUBMIT held 2 wait\n10\nSUBMIT held 100\npartial' | raw >"$JP_TMP/held2.out" &
held=$!
BG="$BG $held"
jp_ok_until "held, then EOF inside a request: STATS shows blocked=1" 10 stat_is held blocked 1
jp_eq "held, then EOF inside a request: no reply while held" "" "$(cat "$JP_TMP/held2.out")"
jp_eq "held, then EOF inside a request: CANCEL a queued job" "OK cancelled" \
	"$(printf 'CANCEL %s\n' "$id" | raw)"
wait "$held"; rc=$?
BG=
jp_eq "held, then EOF inside a request: the daemon closes the connection" 0 "$rc"
jp_eq "held, then EOF inside a request: OK for the held SUBMIT, then ERR proto" \
"OK *
ERR proto the connection ended 23 bytes into an incomplete request (a line without its newline, or a body shorter than its size)" \
	"$(sed 's/^OK [0-9][0-9]*$/OK */' "$JP_TMP/held2.out")"
jp_eq "held, then EOF inside a request: the held job is queued" 3 "$(jp_stat queue held depth)"
jp_eq "held, then EOF inside a request: nothing left blocked" 0 "$(jp_stat queue held blocked)"

# ----- first come, first served: the room a held producer waits for is its own -----
# Full at 8, held producers let go below 6 (three quarters). Between the two, the room
# that appears is theirs: another client's nonblock SUBMIT gets ERR busy, and another's
# SUBMIT that may wait waits behind them. Once under 6, they go in, oldest first.
occupy=$(jp_ctl submit -q fcfs 60000)
jp_ok_until "fcfs: the first job runs" 10 job_state_is "$occupy" running
for i in $(seq 1 8); do printf 'SUBMIT fcfs 2\n10\n'; done | raw >"$JP_TMP/fill.out"
jp_eq "fcfs: eight jobs fill the queue" 8 "$(grep -c '^OK [0-9]*$' "$JP_TMP/fill.out")"
set -- $(sed -n 's/^OK //p' "$JP_TMP/fill.out")
printf 'SUBMIT fcfs 2 prio=1\n10\n' | raw >"$JP_TMP/first.out" &
first=$!
BG="$BG $first"
jp_ok_until "fcfs: the first producer is held" 10 stat_is fcfs blocked 1
jp_eq "fcfs: CANCEL one: room for one, above three quarters" "OK cancelled" \
	"$(printf 'CANCEL %s\n' "$1" | raw)"
jp_eq "fcfs: depth 7" 7 "$(jp_stat queue fcfs depth)"
jp_eq "fcfs: another client's nonblock SUBMIT does not take the held producer's room" \
	"ERR busy queue 'fcfs' is full for now: 1 producer waits for room before this one (7 jobs, 14 bytes)" \
	"$(printf 'SUBMIT fcfs 2 nonblock\n10\n' | raw)"
printf 'SUBMIT fcfs 2 prio=2\n10\n' | raw >"$JP_TMP/second.out" &
second=$!
BG="$BG $second"
jp_ok_until "fcfs: another client's SUBMIT waits behind the first producer" 10 stat_is fcfs blocked 2
jp_eq "fcfs: the room is still there" 7 "$(jp_stat queue fcfs depth)"
jp_eq "fcfs: nothing for the first producer yet" "" "$(cat "$JP_TMP/first.out")"
jp_eq "fcfs: CANCEL two more: under three quarters" "OK cancelled
OK cancelled" "$(printf 'CANCEL %s\nCANCEL %s\n' "$2" "$3" | raw)"
wait "$first" "$second"
BG=
jp_match "fcfs: the first producer is answered" '^OK [0-9]+$' "$(cat "$JP_TMP/first.out")"
jp_match "fcfs: the second producer is answered" '^OK [0-9]+$' "$(cat "$JP_TMP/second.out")"
id1=$(sed -n 's/^OK //p' "$JP_TMP/first.out")
id2=$(sed -n 's/^OK //p' "$JP_TMP/second.out")
if [ "${id1:-0}" -gt 0 ] && [ "${id2:-0}" -gt "${id1:-0}" ]; then
	jp_pass "fcfs: in the order they came ($id1, then $id2)"
else
	jp_fail "fcfs: the first producer got ${id1:-nothing}, the second ${id2:-nothing}"
fi
jp_eq "fcfs: nothing left blocked" 0 "$(jp_stat queue fcfs blocked)"
jp_eq "fcfs: depth 7 again" 7 "$(jp_stat queue fcfs depth)"
jp_eq "fcfs: with nobody waiting, nonblock takes the room" "OK" \
	"$(printf 'SUBMIT fcfs 2 nonblock\n10\n' | raw | sed 's/ [0-9]*$//')"
jp_eq "fcfs: CANCEL the running job" "OK cancelling" "$(printf 'CANCEL %s\n' "$occupy" | raw)"

# ----- bytes: max_bytes also holds producers back; an empty queue takes any job -----
pad() { printf '%-*s' "$2" "$1"; }	# MS padded with blanks to N bytes
occupy=$(pad 60000 2000 | jp_ctl submit -q bytes -)
jp_match "bytes: a job larger than max_bytes is taken by an empty queue" '^[0-9]+$' "$occupy"
jp_ok_until "bytes: it runs" 10 job_state_is "$occupy" running
{ printf 'SUBMIT bytes 400 nonblock\n'; pad 10 400; printf '\n'
  printf 'SUBMIT bytes 400 nonblock\n'; pad 10 400; printf '\n'
  printf 'SUBMIT bytes 400 nonblock\n'; pad 10 400; printf '\n'; } >"$JP_TMP/in"
out=$(raw <"$JP_TMP/in" | sed 's/^OK [0-9][0-9]*$/OK */')
jp_eq "bytes: the third 400-byte job is over max_bytes 1000" "OK *
OK *
ERR busy queue 'bytes' is full (2 jobs, 800 bytes)" "$out"

# ----- a fast producer against a slow queue: bounded memory, and every job done -----
# 2000 jobs of 32 KiB each (64 MiB of payload) into a queue of 50, two workers that
# take 2 ms a job. Taking them all in would cost at least 64 MiB more memory.
N=2000
SIZE=32768
sleep 0.2
rss0=$(jp_rss "$DPID")
sub0=$(jp_stat queue slow submitted)
badclient produce "$JP_SOCK" slow $N $SIZE --sleep-ms 2 --watch "$DPID" \
	>"$JP_TMP/produce.out" 2>&1; rc=$?
jp_eq "produce: exit status" 0 "$rc"
sed 's/^/produce: /' "$JP_TMP/produce.out" | grep -E 'written|watch|error'
watch=$(sed -n 's/^watch: //p' "$JP_TMP/produce.out")
nblocked=$(printf '%s\n' "$watch" | sed -n 's/.* samples, \([0-9]*\) blocked.*/\1/p')
rssmax=$(printf '%s\n' "$watch" | sed -n 's/.*RSS at most \([0-9]*\) KiB while blocked.*/\1/p')
echo "produce: RSS ${rss0} KiB before, at most ${rssmax:-?} KiB while held"
if [ "${nblocked:-0}" -gt 0 ]; then jp_pass "produce: STATS showed blocked=1 while held"
else jp_fail "produce: STATS never showed blocked=1 ($watch)"; fi
if [ "${rssmax:-999999999}" -lt $((rss0 + 16384)) ]; then
	jp_pass "produce: RSS stays under ${rss0} KiB + 16 MiB while held"
else
	jp_fail "produce: RSS reached ${rssmax:-?} KiB (from ${rss0}) while the producer was held"
fi
out=$(cat "$JP_TMP/produce.out")
jp_match "produce: every SUBMIT got OK" "^ok: $N\$" "$out"
jp_match "produce: no ERR" '^err: 0$' "$out"
jp_match "produce: every job got RESULT ok" "^result_ok: $N\$" "$out"
jp_match "produce: no other RESULT" '^result_other: 0$' "$out"
jp_match "produce: every RESULT carries the payload back" '^bad_body: 0$' "$out"
jp_eq "produce: STATS counts every job submitted" $((sub0 + N)) "$(jp_stat queue slow submitted)"
jp_eq "produce: nothing left blocked" 0 "$(jp_stat queue slow blocked)"
jp_eq "produce: nothing left queued" 0 "$(jp_stat queue slow depth)"

jp_stop
jp_done
