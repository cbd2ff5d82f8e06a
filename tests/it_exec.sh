#!/bin/bash
# it_exec.sh: exec handlers end to end (handler_exec.c, examples/README.md): the example
# handler's result; quoting of the command line without a shell; exit status 0 / 3 /
# 65 / a signal with stderr in the error text, bounded; a 1 MB payload through stdin and
# stdout without deadlock, and output beyond max_payload refused; cancelling a running
# job: the shell's TERM trap runs and nothing of its process group remains; a program
# that ignores TERM is killed after the grace period; a timeout runs the trap too; a
# background child left behind by a successful job is killed.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

JP_RAW_TIMEOUT=20
# The live (not zombie) processes of a process group: pgrep -g counts zombies, which
# an init that does not reap (some containers) leaves behind.
alive_in_group() { ps -e -o pgid=,stat=,pid=,args= | awk -v g="$1" '$1 == g && $2 !~ /^Z/'; }
alive_pid() { ps -o stat= -p "$1" 2>/dev/null | grep -qv '^Z'; }
group_gone() { [ -z "$(alive_in_group "$1")" ]; }
pid_gone() { ! alive_pid "$1"; }
# start_wait ID: a background WAIT for job ID; its conversation goes to $JP_TMP/wait.ID.
start_wait() {
	printf 'WAIT %s\n' "$1" | raw >"$JP_TMP/wait.$1" 2>&1 &
	BG="$BG $!"
	WAITER=$!
}

EXAMPLE="$top_srcdir/examples/exec-handler.sh"
T=$JP_TMP

# The programs the queues run, written here so the test says what they do.
cat >"$T/codes.sh" <<'EOF'
#!/bin/sh
# Payload "CODE TEXT": TEXT to stderr (and "out" to stdout), exit CODE; "kill": SIGKILL.
read -r code text
echo out
[ "$code" = kill ] && kill -KILL $$
[ -n "$text" ] && echo "$text" >&2
exit "$code"
EOF
cat >"$T/errbig.sh" <<'EOF'
#!/bin/sh
# 100000 bytes of x on stderr, then a last line, then fail.
head -c 100000 /dev/zero | tr '\0' x >&2
echo >&2
echo "the last line" >&2
exit 1
EOF
cat >"$T/trap.sh" <<'EOF'
#!/bin/sh
# Payload: a tag. Record our pgid, start a background and a foreground sleep; on TERM
# write the trap file and exit 143.
read -r tag
echo $$ >"$1/pgid.$tag.tmp" && mv "$1/pgid.$tag.tmp" "$1/pgid.$tag"
trap 'echo "trap ran" >"$1/trapped.$tag"; exit 143' TERM
sleep 300 &
sleep 300
echo "not cancelled"
EOF
cat >"$T/ignore.sh" <<'EOF'
#!/bin/sh
# Ignore TERM (the sleeps inherit that), record the pgid, sleep.
read -r tag
trap '' TERM
sleep 300 &
echo $$ >"$1/pgid.$tag.tmp" && mv "$1/pgid.$tag.tmp" "$1/pgid.$tag"
sleep 300
EOF
cat >"$T/orphan.sh" <<'EOF'
#!/bin/sh
# Leave a child running in the background (holding stdout open) and succeed.
read -r tag
sleep 300 &
echo $! >"$1/bg.$tag"
echo $$ >"$1/pgid.$tag"
echo "done $tag"
EOF
chmod +x "$T"/*.sh

jp_start "queues = (
	{ name = \"sort\"; handler = \"exec:$EXAMPLE\"; workers = 1; },
	{ name = \"args\"; handler = \"exec:/bin/printf '[%s]' \\\"a b\\\" 'c  d' e\\\\ f '' \\\"x\\\\\\\"y\\\"\"; workers = 1; },
	{ name = \"codes\"; handler = \"exec:$T/codes.sh\"; workers = 1; retries = 2;
	  backoff_base = 0.02; backoff_max = 0.05; },
	{ name = \"errbig\"; handler = \"exec:$T/errbig.sh\"; workers = 1; },
	{ name = \"cat\"; handler = \"exec:/bin/cat\"; workers = 1; },
	{ name = \"flood\"; handler = \"exec:/bin/sh -c 'head -c 2000000 /dev/zero'\"; workers = 1; },
	{ name = \"trap\"; handler = \"exec:$T/trap.sh $T\"; workers = 1; grace = 5; },
	{ name = \"ttrap\"; handler = \"exec:$T/trap.sh $T\"; workers = 1; grace = 5;
	  timeout = 0.3; retries = 0; },
	{ name = \"ignore\"; handler = \"exec:$T/ignore.sh $T\"; workers = 1; grace = 0.6; },
	{ name = \"orphan\"; handler = \"exec:$T/orphan.sh $T\"; workers = 1; },
	{ name = \"fds\"; handler = \"exec:/bin/ls /proc/self/fd\"; workers = 1; }
);" -d

# ----- the example handler -----
out=$(printf 'pear\napple\npear\nfig\n' | bc_submit sort)
jp_match "example: RESULT ok" '^RESULT [0-9]+ ok ' "$(hdr)"
jp_eq "example: lines sorted, duplicates dropped" "apple
fig
pear" "$out"
out=$(printf '' | bc_submit sort)
jp_match "example: an empty payload fails" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_eq "example: exit 65 and its stderr in the error" \
	"exit status 65: the payload is empty: nothing to sort" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "example: exit 65 is permanent: one attempt" 'attempts=1( |$)' "$st"
jp_eq "example: its temporary files are gone" "" \
	"$(ls "${TMPDIR:-/tmp}" | grep '^jobpool-example\.' | head -3)"

# ----- the command line is split without a shell -----
out=$(printf '' | bc_submit args)
jp_eq "quotes and backslashes, no shell" '[a b][c  d][e f][][x"y]' "$out"

# ----- exit statuses and stderr -----
out=$(printf '0 fine' | bc_submit codes)
jp_match "exit 0: ok" '^RESULT [0-9]+ ok ' "$(hdr)"
jp_eq "exit 0: the result is stdout" "out" "$out"
out=$(printf '3 something broke' | bc_submit codes)
jp_match "exit 3: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_eq "exit 3: the status and stderr in the error" "exit status 3: something broke" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "exit 3: retried (retries = 2: attempts=3)" 'attempts=3( |$)' "$st"
jp_match "exit 3: the log names the program and the first line of stderr" \
	"exec $T/codes.sh: job [0-9]+ failed: exit status 3: something broke" "$(cat "$JP_LOG")"
out=$(printf '75 try later' | bc_submit codes)
jp_eq "exit 75: failed with its message" "exit status 75: try later" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "exit 75 (EX_TEMPFAIL): retried, attempts=3" 'attempts=3( |$)' "$st"
out=$(printf '65 bad input' | bc_submit codes)
jp_match "exit 65: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_eq "exit 65: its message" "exit status 65: bad input" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "exit 65 (EX_DATAERR): permanent, attempts=1" 'attempts=1( |$)' "$st"
jp_match "exit 65: logged as permanent" \
	"exec $T/codes.sh: job [0-9]+ failed permanently: exit status 65: bad input" "$(cat "$JP_LOG")"
out=$(printf 'kill' | bc_submit codes)
jp_eq "killed by a signal: the error says which" "killed by signal 9 (Killed)" "$out"

out=$(printf '' | bc_submit errbig)
jp_match "big stderr: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
len=$(printf '%s' "$out" | wc -c)
if [ "$len" -le 4400 ] && [ "$len" -ge 4000 ]; then
	jp_pass "big stderr: the error is bounded ($len bytes of 100000+)"
else
	jp_fail "big stderr: the error is $len bytes"
fi
jp_match "big stderr: truncation is noted" \
	'^exit status 1: \[stderr truncated: [0-9]+ bytes dropped' "$out"
jp_eq "big stderr: the last line is kept" "the last line" "$(printf '%s' "$out" | tail -1)"
line=$(grep -E "exec $T/errbig.sh: job [0-9]+ failed" "$JP_LOG" | head -1)
if [ -n "$line" ] && [ "${#line}" -le 400 ]; then
	jp_pass "big stderr: one bounded log line (${#line} bytes)"
else
	jp_fail "big stderr: log line of ${#line} bytes: '${line:0:100}...'"
fi

# ----- 1 MB through stdin and stdout, both ways at once -----
head -c 1000000 /dev/urandom >"$T/big"
t0=$(now_ms)
bc_submit cat <"$T/big" >"$T/big.out"
jp_match "1 MB through cat: RESULT ok" '^RESULT [0-9]+ ok 1000000$' "$(hdr)"
if cmp -s "$T/big" "$T/big.out"; then jp_pass "1 MB through cat is byte-exact ($(( $(now_ms) - t0 )) ms)"
else jp_fail "1 MB through cat differs"; fi
out=$(printf '' | bc_submit flood)
jp_match "output beyond max_payload: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_match "output beyond max_payload: says so" 'larger than max_payload' "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "output beyond max_payload: permanent" 'attempts=1( |$)' "$st"

# ----- cancel a running job: the trap runs, the group is gone -----
id=$(printf 'c1' | jp_ctl submit -q trap -)
start_wait "$id"
if jp_until 10 test -s "$T/pgid.c1"; then jp_pass "cancel: the program started"
else jp_fail "cancel: the program did not start"; fi
pg=$(cat "$T/pgid.c1" 2>/dev/null)
jp_match "cancel: it leads its own process group" "^ *$pg +[A-Za-z+]+ +$pg " \
	"$(alive_in_group "$pg" | head -1)"
jp_eq "cancel: three processes in the group (sh and two sleeps)" 3 \
	"$(alive_in_group "$pg" | wc -l)"
out=$(printf 'CANCEL %s\n' "$id" | raw)
jp_eq "cancel: OK cancelling" "OK cancelling" "$out"
wait "$WAITER"
res=$(cat "$JP_TMP/wait.$id")
jp_match "cancel: the waiter gets RESULT cancelled" "RESULT $id cancelled " "$res"
jp_match "cancel: the result says the program exited on SIGTERM" \
	'exited on SIGTERM \(exit status 143\)' "$res"
jp_eq "cancel: the shell's TERM trap ran" "trap ran" "$(cat "$T/trapped.c1" 2>/dev/null)"
if jp_until 5 group_gone "$pg"; then jp_pass "cancel: nothing of process group $pg remains"
else jp_fail "cancel: left in group $pg: $(alive_in_group "$pg")"; fi
jp_match "cancel: STATUS says cancelled" 'state=cancelled' "$(printf 'STATUS %s\n' "$id" | raw)"
out=$(printf 'x' | jp_ctl submit -w -q sort -); rc=$?
jp_eq "cancel: the sort queue still works" "0 x" "$rc $out"

# ----- a timeout: the same path -----
t0=$(now_ms)
out=$(printf 't1' | bc_submit ttrap)
dt=$(( $(now_ms) - t0 ))
jp_match "timeout: RESULT timeout" '^RESULT [0-9]+ timeout ' "$(hdr)"
jp_eq "timeout: the trap ran" "trap ran" "$(cat "$T/trapped.t1" 2>/dev/null)"
if [ "$dt" -ge 300 ] && [ "$dt" -lt 3000 ]; then jp_pass "timeout: after $dt ms (timeout 300)"
else jp_fail "timeout: after $dt ms (timeout 300)"; fi
pg=$(cat "$T/pgid.t1" 2>/dev/null)
if [ -n "$pg" ] && jp_until 5 group_gone "$pg"; then jp_pass "timeout: nothing of its group remains"
else jp_fail "timeout: left in group '$pg': $(alive_in_group "${pg:-none}")"; fi

# ----- a program that ignores TERM is killed after the grace period -----
w1=$(worker_pid ignore)
id=$(printf 'i1' | jp_ctl submit -q ignore -)
start_wait "$id"
jp_until 10 test -s "$T/pgid.i1" || jp_fail "ignore: the program did not start"
pg=$(cat "$T/pgid.i1" 2>/dev/null)
t0=$(now_ms)
out=$(printf 'CANCEL %s\n' "$id" | raw)
jp_eq "ignore: OK cancelling" "OK cancelling" "$out"
wait "$WAITER"
dt=$(( $(now_ms) - t0 ))
res=$(cat "$JP_TMP/wait.$id")
jp_match "ignore: RESULT cancelled" "RESULT $id cancelled " "$res"
jp_match "ignore: the result says it was killed after the grace period" \
	'did not exit within the grace period \(600 ms\) after SIGTERM and was killed' "$res"
# The handler kills the group itself at the grace period (the worker survives, below);
# the bound leaves room for a loaded machine.
if [ "$dt" -ge 550 ] && [ "$dt" -lt 3000 ]; then jp_pass "ignore: killed after $dt ms (grace 600)"
else jp_fail "ignore: result after $dt ms (grace 600)"; fi
if [ -n "$pg" ] && jp_until 5 group_gone "$pg"; then jp_pass "ignore: nothing of its group remains"
else jp_fail "ignore: left in group '$pg': $(alive_in_group "${pg:-none}")"; fi
jp_eq "ignore: the worker itself was not killed" "$w1" "$(worker_pid ignore)"

# ----- a background child left by a successful job does not survive it -----
out=$(printf 'o1' | bc_submit orphan)
jp_match "orphan: RESULT ok" '^RESULT [0-9]+ ok ' "$(hdr)"
jp_eq "orphan: the result, without waiting for the child holding stdout" "done o1" "$out"
bg=$(cat "$T/bg.o1" 2>/dev/null)
jp_until 2 pid_gone "$bg"
if [ -n "$bg" ] && ! alive_pid "$bg"; then jp_pass "orphan: the background child $bg is gone"
else jp_fail "orphan: the background child '$bg' is still running"; fi
jp_eq "orphan: nothing of its group remains" "" "$(alive_in_group "$(cat "$T/pgid.o1")")"

# ----- the worker's own descriptors never reach a program -----
# ls opens the directory it lists as its fd 3: with nothing inherited, that is all.
out=$(printf '' | bc_submit fds | tr '\n' ' ')
jp_eq "a program has only stdin, stdout and stderr of ours" "0 1 2 3 " "$out"
out=$(printf 'x' | jp_ctl submit -w -q sort -)
jp_eq "the daemon still serves after all of it" "x" "$out"

jp_stop
jp_done
