#!/bin/bash
# it_handlers.sh: every built-in handler end to end through the real jobpoold (echo
# byte-exact also for binary payloads, sha256 against sha256sum, spin with and without
# wrapping against python3, spin's bad payload, a long spin takes time, sleep's
# duration), per-job and queue timeouts, priorities, delays, STATUS and WAIT of
# finished jobs, 300 WAITs on one connection (one RESULT), and CANCEL (of a delayed
# job, of a running one, of a dead one) as its waiter sees it.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }

# bc_submit QUEUE [OPTION ...] < payload: the RESULT body on stdout, its header in
# $JP_TMP/hdr.

jp_start 'queues = (
	{ name = "echo"; handler = "echo"; workers = 2; },
	{ name = "sha"; handler = "sha256"; workers = 1; },
	{ name = "spin"; handler = "spin"; workers = 1; retries = 3; },
	{ name = "sleep"; handler = "sleep"; workers = 1; },
	{ name = "tmo"; handler = "sleep"; workers = 1; batch = 1; retries = 1; timeout = 1; }
);
shutdown_timeout = 1;
kill_timeout = 1;'

# ----- echo -----
out=$(jp_ctl submit -w -q echo "hello world"); rc=$?
jp_eq "echo via jobpoolctl: exit status" 0 "$rc"
jp_eq "echo via jobpoolctl" "hello world" "$out"

# Every byte value, NULs, CRs and newlines, and a body ending in a newline.
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) + b"\0\n\r\n\0a\nb\n\n")' \
	>"$JP_TMP/bin"
bc_submit echo <"$JP_TMP/bin" >"$JP_TMP/bin.out"
jp_match "binary echo: RESULT header" '^RESULT [0-9]+ ok 266$' "$(hdr)"
if cmp -s "$JP_TMP/bin" "$JP_TMP/bin.out"; then
	jp_pass "binary echo is byte-exact"
else
	jp_fail "binary echo differs: $(cmp "$JP_TMP/bin" "$JP_TMP/bin.out" 2>&1)"
fi

# The same through the raw protocol, the whole conversation compared byte for byte.
{ printf 'SUBMIT echo 266 wait\n'; cat "$JP_TMP/bin"; printf '\n'; } >"$JP_TMP/req"
badclient raw "$JP_SOCK" <"$JP_TMP/req" >"$JP_TMP/conv"; rc=$?
jp_eq "raw binary echo: the daemon closes after answering" 0 "$rc"
id=$(head -1 "$JP_TMP/conv" | sed -n 's/^OK \([0-9][0-9]*\)$/\1/p')
jp_match "raw binary echo: OK <id>" '^[0-9]+$' "$id"
{ printf 'OK %s\nRESULT %s ok 266\n' "$id" "$id"; cat "$JP_TMP/bin"; printf '\n'; } \
	>"$JP_TMP/conv.want"
if cmp -s "$JP_TMP/conv.want" "$JP_TMP/conv"; then
	jp_pass "raw binary echo: the conversation is byte-exact"
else
	jp_fail "raw binary echo: $(cmp "$JP_TMP/conv.want" "$JP_TMP/conv" 2>&1)"
fi

# An empty payload, and one of 512 KiB.
out=$(printf '' | bc_submit echo | wc -c)
jp_match "empty echo: RESULT header" '^RESULT [0-9]+ ok 0$' "$(hdr)"
jp_eq "empty echo returns nothing" 0 "$out"
head -c 524288 /dev/urandom >"$JP_TMP/big"
bc_submit echo <"$JP_TMP/big" >"$JP_TMP/big.out"
jp_match "512 KiB echo: RESULT header" '^RESULT [0-9]+ ok 524288$' "$(hdr)"
if cmp -s "$JP_TMP/big" "$JP_TMP/big.out"; then jp_pass "512 KiB echo is byte-exact"
else jp_fail "512 KiB echo differs"; fi

# ----- sha256 -----
want=$(printf 'abc' | sha256sum | cut -d' ' -f1)
jp_eq "sha256sum of abc is the known digest" \
	ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad "$want"
out=$(printf 'abc' | bc_submit sha)
jp_match "sha256 abc: RESULT header" '^RESULT [0-9]+ ok 64$' "$(hdr)"
jp_eq "sha256 of abc" "$want" "$out"
want=$(printf '' | sha256sum | cut -d' ' -f1)
jp_eq "sha256sum of nothing is the known digest" \
	e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "$want"
out=$(printf '' | bc_submit sha)
jp_eq "sha256 of the empty payload" "$want" "$out"
out=$(bc_submit sha <"$JP_TMP/bin")
jp_eq "sha256 of the binary payload" "$(sha256sum <"$JP_TMP/bin" | cut -d' ' -f1)" "$out"
out=$(bc_submit sha <"$JP_TMP/big")
jp_eq "sha256 of 512 KiB" "$(sha256sum <"$JP_TMP/big" | cut -d' ' -f1)" "$out"

# ----- spin -----
out=$(printf '1000000 3' | bc_submit spin)
jp_match "spin 1000000 3: RESULT header" '^RESULT [0-9]+ ok ' "$(hdr)"
jp_eq "spin 1000000 3" 1499998500000 "$out"
for args in "1000000 18446744073709551615" "777777 98765432109876543" "0 5" "1 5"; do
	# shellcheck disable=SC2086 # $args is two numbers, one argument each
	want=$(python3 -c "import sys; n, x = map(int, sys.argv[1:]); \
print(sum(i * x for i in range(n)) % 2**64)" $args)
	out=$(printf '%s' "$args" | bc_submit spin)
	jp_eq "spin $args (wrapping u64, against python3)" "$want" "$out"
done
# The loop cannot be optimised away: a large N takes measurably long (300 million
# steps take about 0.3 s; 20 ms is a floor that only a loop folded away would miss).
t0=$(now_ms)
out=$(printf '300000000 7' | bc_submit spin)
dt=$(( $(now_ms) - t0 ))
jp_eq "spin 300000000 7" "$(python3 -c 'n, x = 300000000, 7; print(x * n * (n - 1) // 2 % 2**64)')" "$out"
if [ "$dt" -gt 20 ]; then jp_pass "spin 300000000 took $dt ms (more than 20)"
else jp_fail "spin 300000000 took only $dt ms: the loop was optimised away"; fi
out=$(printf ' 10\t4 \n' | bc_submit spin)
jp_eq "spin with blanks around the numbers" 180 "$out"
for bad in "hello" "1000" "1 2 3" "-1 2" "18446744073709551616 1" ""; do
	out=$(printf '%s' "$bad" | bc_submit spin)
	jp_match "spin '$bad': RESULT failed" '^RESULT [0-9]+ failed [1-9][0-9]*$' "$(hdr)"
	jp_match "spin '$bad': the message says why" "spin: .*N X" "$out"
done
# A bad payload fails permanently: it is not retried, the job is dead at once
# (PROTOCOL.md: STATUS state=dead), and a dead job cannot be cancelled.
id=$(hdr | cut -d' ' -f2)
st=$(printf 'STATUS %s\n' "$id" | badclient raw "$JP_SOCK")
jp_match "spin bad payload: dead after one attempt" \
	'^OK id=[0-9]+ queue=spin state=dead prio=0 attempts=1 ' "$st"
out=$(printf 'CANCEL %s\n' "$id" | badclient raw "$JP_SOCK")
jp_match "CANCEL of a dead job: ERR state" "^ERR state job $id is dead" "$out"

# ----- sleep -----
t0=$(now_ms)
out=$(printf '200' | bc_submit sleep)
dt=$(( $(now_ms) - t0 ))
jp_eq "sleep 200 returns its payload" 200 "$out"
if [ "$dt" -ge 200 ]; then jp_pass "sleep 200 took $dt ms (>= 200)"
else jp_fail "sleep 200 took only $dt ms"; fi
out=$(printf 'soon' | bc_submit sleep)
jp_match "sleep 'soon': RESULT failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_match "sleep 'soon': the message says why" "sleep: .*milliseconds" "$out"

# ----- timeouts: per job, or the queue's default; each attempt is timed -----
t0=$(now_ms)
out=$(printf '5000' | bc_submit tmo timeout=200)
dt=$(( $(now_ms) - t0 ))
jp_match "timeout=200 on a 5 s job: RESULT timeout" '^RESULT [0-9]+ timeout [1-9][0-9]*$' "$(hdr)"
jp_match "timeout=200: the message says so" '^timed out after 200 ms' "$out"
if [ "$dt" -ge 400 ] && [ "$dt" -lt 4000 ]; then
	jp_pass "timeout=200 with retries = 1: two attempts took $dt ms"
else
	jp_fail "timeout=200 with retries = 1: took $dt ms (want two attempts of 200 ms)"
fi
# Out of attempts: the job is dead (PROTOCOL.md), with its per-job timeout.
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | badclient raw "$JP_SOCK")
jp_match "timeout: STATUS says dead after 2 attempts" \
	'^OK id=[0-9]+ queue=tmo state=dead prio=0 attempts=2 .*timeout_ms=200' "$st"
out=$(printf '100' | bc_submit tmo timeout=3000)
jp_eq "a job within its timeout completes" "100" "$out"
out=$(printf '1300' | bc_submit tmo timeout=0)
jp_eq "timeout=0 lifts the queue's timeout of 1 s" "1300" "$out"
t0=$(now_ms)
out=$(printf '5000' | bc_submit tmo)
dt=$(( $(now_ms) - t0 ))
jp_match "the queue's timeout = 1 applies by default" '^timed out after 1000 ms' "$out"
if [ "$dt" -ge 2000 ]; then jp_pass "the queue's timeout: two attempts took $dt ms"
else jp_fail "the queue's timeout: two attempts took only $dt ms"; fi

# ----- priorities: the worker busy, low then high queued; high runs first -----
# With the default batching too: a worker busy with a long job is given nothing more.
out=$(badclient prio "$JP_SOCK" sleep)
jp_eq "priorities: the higher runs first" "order: occupy:ok high:ok low:ok" "$out"
out=$(printf 'SUBMIT sleep 1 prio=11\n1\nSUBMIT sleep 1 prio=-11\n1\nPING\n' |
	badclient raw "$JP_SOCK")
jp_eq "priorities outside -10..10 are refused, the connection goes on" \
	"ERR proto SUBMIT: prio=11 is outside queue 'sleep' range -10..10
ERR proto SUBMIT: prio=-11 is outside queue 'sleep' range -10..10
OK pong" "$out"

# ----- delay -----
out=$(badclient delay "$JP_SOCK" echo 300)
jp_match "delay=300: STATUS right after the submit says delayed" \
	'^status: OK id=[0-9]+ queue=echo state=delayed prio=0 attempts=0' "$out"
jp_match "delay=300: the waiter gets its RESULT" '^result: True ok x$' "$out"
dt=$(printf '%s\n' "$out" | sed -n 's/^elapsed_ms: //p')
if [ "${dt:-0}" -ge 300 ]; then jp_pass "delay=300: done after $dt ms (>= 300)"
else jp_fail "delay=300: done after ${dt:-?} ms"; fi
jp_match "STATUS of a finished job" \
	'status_after: OK id=[0-9]+ queue=echo state=done prio=0 attempts=1' "$out"
jp_match "WAIT of a finished job answers at once" '^wait_after: OK True ok x$' "$out"

# A finished job by id, from a new connection.
id=$(jp_ctl submit -q echo kept); rc=$?
jp_eq "submit without -w: exit status" 0 "$rc"
is_done() {
	st=$(printf 'STATUS %s\n' "$1" | badclient raw "$JP_SOCK")
	case $st in *state=done*) return 0 ;; esac
	return 1
}
jp_until 2 is_done "$id"
jp_match "STATUS of a finished job from another connection" \
	"^OK id=$id queue=echo state=done prio=0 attempts=1" "$st"
out=$(printf 'WAIT %s\n' "$id" | badclient raw "$JP_SOCK")
jp_eq "WAIT of a finished job from another connection" "OK
RESULT $id ok 4
kept" "$out"
# A connection waits for a job once (PROTOCOL.md): 300 WAITs for a delayed job in one
# write get 300 OKs and one RESULT; so do 300 WAITs for a job submitted with wait.
out=$(badclient waitonce "$JP_SOCK" echo 300); rc=$?
jp_eq "300 WAITs on one connection: the client ran" 0 "$rc"
for how in plain submitted_with_wait; do
	jp_match "300 WAITs ($how): 300 OKs" "^$how: replies: 300 x OK\$" "$out"
	jp_match "300 WAITs ($how): exactly one RESULT" \
		"^$how: results: 1, first: ok $how\$" "$out"
	jp_match "300 WAITs ($how): the job is done" "^$how: status: OK id=[0-9]+ queue=echo state=done " "$out"
	jp_eq "300 WAITs ($how): the connection carries on" "$how: ping after them: OK pong" \
		"$(printf '%s\n' "$out" | grep "^$how: ping")"
done
out=$(printf 'WAIT 999999\nSTATUS 999999\nCANCEL 999999\n' | badclient raw "$JP_SOCK")
jp_eq "WAIT, STATUS and CANCEL of an unknown job" "ERR notfound no job 999999
ERR notfound no job 999999
ERR notfound no job 999999" "$out"

# ----- CANCEL of a delayed job -----
out=$(badclient cancel "$JP_SOCK" echo)
jp_match "cancel: the job was delayed" 'status_before: OK .*state=delayed' "$out"
jp_match "cancel: OK cancelled" '^cancel: OK cancelled$' "$out"
jp_match "cancel: the waiter gets RESULT cancelled" '^waiter_result: True cancelled ' "$out"
jp_match "cancel: STATUS says cancelled" 'status_after: OK .*state=cancelled' "$out"
jp_match "cancel twice: ERR state" '^cancel_again: ERR state job [0-9]+ has finished$' "$out"
jp_match "cancel: WAIT afterwards answers cancelled" '^wait_after: OK True cancelled' "$out"

# CANCEL of a running job is cooperative (PROTOCOL.md): OK cancelling, and its waiter
# gets RESULT cancelled saying so, long before the job would have ended.
out=$(badclient cancelrun "$JP_SOCK" sleep 5000)
jp_match "cancel running: the job ran" '^status_before: OK .*state=running' "$out"
jp_match "cancel running: OK cancelling" '^cancel: OK cancelling$' "$out"
jp_match "cancel running: the waiter gets RESULT cancelled, saying so" \
	'^waiter_result: True cancelled cancelled while running' "$out"
jp_match "cancel running: STATUS says cancelled" '^status_after: OK .*state=cancelled' "$out"
dt=$(printf '%s\n' "$out" | sed -n 's/^elapsed_ms: //p')
if [ "${dt:-5000}" -lt 4000 ]; then jp_pass "cancel running: over after $dt ms, not 5000"
else jp_fail "cancel running: over after ${dt:-?} ms"; fi

jp_stop
jp_done
