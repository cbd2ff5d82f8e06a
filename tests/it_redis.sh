#!/bin/bash
# it_redis.sh: queues whose jobs come from a Redis stream (issue 17). A redis-server of
# the test's own, on a free loopback port in the test's directory with a password:
#   - a bad source is a config error at its line, and never quotes the password;
#   - two jobpoold share one stream: 100,000 entries all run exactly once (each daemon's
#     STATS: done and the source's read/acked add up to the entries, none left pending);
#   - an entry without a payload field is a dead job, and acked;
#   - a flood: each daemon reads only what its queue has room for (max_jobs), the rest
#     stays undelivered in Redis, and RSS stays flat;
#   - results as keys with a TTL; jobpoolctl submit --redis [-w] without a daemon;
#   - a reload moves a source to another stream;
#   - delivery count: an entry that three consumers died with is made dead when claimed;
#   - kill -9 of one daemon mid-run: the other claims its entries after `claim` and
#     finishes them, running at most the jobs that were running at the kill twice;
#   - with the journal on, a graceful stop with jobs from Redis waiting: the journal
#     brings none back, the restart resumes the pending entries, each runs once;
#   - redis-server restarted mid-run: both daemons show `paused: redis unreachable`,
#     say so once in the log, then resume and finish; nothing is lost (every payload is
#     in the file the handler appends to);
#   - redis-server killed (SIGTERM) and down for 10 s with jobs waiting in the stream:
#     both pause, it comes back on the same port and dir (its append-only file keeps
#     the stream and the groups), both resume and every job runs;
#   - libjobpool's jobpool_redis_submit() (tests/redis_submit): an entry id, a result
#     waited for, a wait that times out, a wrong password's error without it;
#   - the password is in no log line, no STATS and no status.
# Skipped, saying why, only when redis-server is not installed (quickstart.sh test
# installs it).

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v redis-server >/dev/null 2>&1 ||
	{ echo "redis-server is not installed (Debian: redis-server; quickstart.sh test installs it)"; exit 77; }
command -v redis-cli >/dev/null 2>&1 || { echo "redis-cli is not installed"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }

PASS=s3cret-pw-4711
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RDIR="$JP_TMP/redis"
mkdir -p "$RDIR"
RPID=
B_PID=
B_SOCK="$JP_TMP/b.sock"
B_LOG="$JP_TMP/b.log"
# RPID is timeout(1)'s pid: a SIGKILL to it would orphan redis-server, so its child
# goes first.
trap '[ -n "$B_PID" ] && kill -TERM "$B_PID" 2>/dev/null; [ -n "$RPID" ] && { pkill -KILL -P "$RPID"; kill -KILL "$RPID"; } 2>/dev/null; jp_cleanup' EXIT

rcli() { redis-cli -h 127.0.0.1 -p "$PORT" -a "$PASS" --no-auth-warning "$@"; }
xadd_n() {	# $1 stream, $2 payload prefix, $3 count: payloads <prefix>-1 .. -<count>
	for i in $(seq 1 "$3"); do printf 'XADD %s * payload %s-%d\n' "$1" "$2" "$i"; done |
		rcli >/dev/null
}
redis_start() {
	timeout -s KILL 600 redis-server --bind 127.0.0.1 --port "$PORT" --dir "$RDIR" \
		--requirepass "$PASS" --save '' --appendonly yes --daemonize no \
		>>"$RDIR/redis.log" 2>&1 &
	RPID=$!
	jp_until 10 eval 'rcli PING 2>/dev/null | grep -q PONG' ||
		{ echo "redis-server did not start:"; cat "$RDIR/redis.log"; exit 99; }
}
redis_start

# ----- configuration errors: at the line, without the password -----
cat >"$JP_TMP/bad.conf" <<CONF
socket = "$JP_TMP/bad.sock";
queues = ( { name = "r"; handler = "echo";
  source = { redis = "http://u:$PASS@127.0.0.1:$PORT"; stream = "s"; }; },
  { name = "q"; handler = "echo";
  source = { redis = "redis://:$PASS@127.0.0.1:99999/0"; }; } );
CONF
out=$("$JOBPOOLD" -t -c "$JP_TMP/bad.conf" 2>&1)
jp_match "a URL that is not redis:// is an error at its line" \
	"bad.conf:3: 'redis' in the source of queue 'r': the URL must begin with redis://" "$out"
jp_match "a bad port is an error at its line" "bad.conf:5: 'redis' in the source of queue 'q': the port must be" "$out"
jp_match "a source without a stream is an error" "'stream' is missing in the source of queue 'q'" "$out"
case $out in *"$PASS"*) jp_fail "a config error quotes the password: $out" ;;
	*) jp_pass "config errors do not quote the password" ;; esac

# ----- two daemons share one stream -----
N=100000
ran="$JP_TMP/ran"
slow="$JP_TMP/slow"
stop10="$JP_TMP/stop10"
: >"$ran"
: >"$slow"
: >"$stop10"
# An entry that three hosts took and died with (three deliveries, never acked): the
# next host to claim it makes it dead (poison_after = 3), not a fourth victim.
rcli XGROUP CREATE poison jobpool 0 MKSTREAM >/dev/null
pid=$(rcli XADD poison '*' payload deadly)
rcli XREADGROUP GROUP jobpool ghost-1 COUNT 1 STREAMS poison '>' >/dev/null
rcli XCLAIM poison jobpool ghost-2 0 "$pid" >/dev/null
rcli XCLAIM poison jobpool ghost-3 0 "$pid" >/dev/null
conf_body() {	# $1: the consumer name
	cat <<CONF
queues = (
	{ name = "bulk"; handler = "echo"; workers = 2; batch = 64;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "bulk";
	             consumer = "$1"; }; },
	{ name = "files"; handler = "exec:/bin/sh -c 'read -r p; echo \"\$p\" >> $ran'";
	  workers = 2; batch = 1;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "files";
	             group = "g2"; consumer = "$1"; }; },
	{ name = "slow"; handler = "exec:/bin/sh -c 'read -r p; sleep 0.02; echo \"\$p\" >> $slow'";
	  workers = 2; batch = 1; max_jobs = 50;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "slow";
	             consumer = "$1"; claim = 1; }; },
	{ name = "poison"; handler = "echo"; workers = 1;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "poison";
	             consumer = "$1"; claim = 0.5; }; },
	{ name = "res"; handler = "echo"; workers = 1;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "res";
	             consumer = "$1"; result_ttl = 60; }; },
	{ name = "flood"; handler = "sleep"; workers = 1; batch = 1; max_jobs = 20;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "flood";
	             consumer = "$1"; }; },
	{ name = "stop10"; handler = "exec:/bin/sh -c 'read -r p; sleep 0.05; echo \"\$p\" >> $stop10'";
	  workers = 2; batch = 1; max_jobs = 10;
	  source = { redis = "redis://:$PASS@127.0.0.1:$PORT/0"; stream = "stop10";
	             group = "g3"; consumer = "$1"; }; },
	{ name = "local"; handler = "echo"; workers = 1; }
);
shutdown_timeout = 5;
CONF
}
jp_start "$(conf_body host-a)"
sed "s|$JP_SOCK|$B_SOCK|" "$JP_TMP/jobpool.conf" | sed 's/host-a/host-b/' >"$JP_TMP/b.conf"
timeout --foreground -s KILL "$JP_DAEMON_TIMEOUT" "$JOBPOOLD" -c "$JP_TMP/b.conf" >>"$B_LOG" 2>&1 &
B_PID=$!
jp_until 10 eval '"$JOBPOOLCTL" -s "$B_SOCK" ping >/dev/null 2>&1' ||
	{ echo "the second jobpoold did not come up:"; cat "$B_LOG"; exit 99; }
b_stat() { JP_SOCK=$B_SOCK jp_stat "$@"; }

jp_eq_until "A's source is reading" reading 10 jp_stat source bulk state
jp_eq_until "B's source is reading" reading 10 b_stat source bulk state
jp_eq "A's consumer is its config's" host-a "$(jp_stat source bulk consumer)"

# N entries, pipelined in one go.
python3 - "$N" <<'PY' | rcli --pipe >/dev/null
import sys
out = sys.stdout
for i in range(int(sys.argv[1])):
    p = "job-%d" % i
    out.write("*5\r\n$4\r\nXADD\r\n$4\r\nbulk\r\n$1\r\n*\r\n$7\r\npayload\r\n$%d\r\n%s\r\n" % (len(p), p))
PY
jp_eq "the stream holds the entries" "$N" "$(rcli XLEN bulk)"
# And one that is not a job: no payload field.
rcli XADD bulk '*' other x >/dev/null

done_sum() { echo $(( $(jp_stat queue bulk done) + $(b_stat queue bulk done) )); }
jp_eq_until "both daemons ran all $N jobs between them" "$N" 120 done_sum
jp_eq_until "nothing is left pending in the group" 0 30 eval 'rcli XPENDING bulk jobpool | head -1'
read_sum=$(( $(jp_stat source bulk read) + $(b_stat source bulk read) ))
jp_eq "each entry was read once, by one daemon (and the bad one)" "$((N + 1))" "$read_sum"
acked_sum=$(( $(jp_stat source bulk acked) + $(b_stat source bulk acked) ))
jp_eq "each entry was acked once" "$((N + 1))" "$acked_sum"
jp_eq "no job was run twice" "$N" "$(done_sum)"
a_done=$(jp_stat queue bulk done)
if [ "$a_done" -gt 0 ] && [ "$a_done" -lt "$N" ]; then
	jp_pass "both daemons took a share (A ran $a_done)"
else
	jp_fail "one daemon ran everything (A ran $a_done of $N)"
fi
dead_sum=$(( $(jp_stat queue bulk dead) + $(b_stat queue bulk dead) ))
jp_eq "the entry without a payload is a dead job" 1 "$dead_sum"
jp_match "the log says why it is dead" "has no 'payload' field: made dead" "$(jp_log; cat "$B_LOG")"
jp_eq "a local SUBMIT to another queue works" "hello" "$(printf hello | jp_ctl submit -w -q local)"

# ----- redis-server restarted mid-run: both pause, then finish -----
M=600
xadd_n files f "$M"
jp_until 30 eval '[ "$(wc -l <"$ran")" -ge 20 ]' || jp_fail "the file jobs did not start"
# A graceful stop that keeps the stream and the group (dump.rdb), as a restart would.
rcli SHUTDOWN SAVE >/dev/null 2>&1
wait "$RPID" 2>/dev/null
RPID=
jp_eq_until "A: the queue is paused" paused 20 jp_stat queue files state
jp_eq_until "B: the queue is paused" paused 20 b_stat queue files state
jp_match "STATS says why" "^redis unreachable \\(redis://:\\*\\*\\*@127.0.0.1:$PORT/0: " \
	"$(badclient stats "$JP_SOCK" | sed -n 's/^queue files .* reason=//p')"
jp_match "status says why" "queue files: paused: redis unreachable" "$(jp_ctl status)"
jp_eq "a local queue works meanwhile" "still" "$(printf still | jp_ctl submit -w -q local)"
sleep 2		# reconnects fail meanwhile, and are not logged again
jp_eq "A's log says so once for the queue" 1 \
	"$(grep -c 'queue files: paused: redis unreachable' "$JP_LOG")"
jp_eq "B's log says so once for the queue" 1 \
	"$(grep -c 'queue files: paused: redis unreachable' "$B_LOG")"
redis_start
jp_eq_until "A resumes" running 20 jp_stat queue files state
jp_eq_until "B resumes" running 20 b_stat queue files state
jp_match "the log says it resumed" "queue files: redis .* reachable again; resuming" "$(jp_log)"
uniq_ran() { sort -u "$ran" | wc -l; }
jp_eq_until "every file job ran (at least once), after the restart" "$M" 60 uniq_ran
jp_eq_until "nothing is left pending in the files group" 0 30 eval 'rcli XPENDING files g2 | head -1'

# ----- redis-server down for 10 s with jobs waiting in the stream -----
# Killed, not asked to save: what it keeps is its append-only file (appendonly yes,
# fsynced at SIGTERM). The stop10 queues (max_jobs 10) leave most entries in Redis.
S=400
xadd_n stop10 t "$S"
jp_until 30 eval '[ "$(wc -l <"$stop10")" -ge 20 ]' || jp_fail "the stop10 jobs did not start"
kill -TERM "$RPID"
wait "$RPID" 2>/dev/null
RPID=
stopped_at=$(date +%s)
jp_eq_until "A: the stop10 queue is paused" paused 20 jp_stat queue stop10 state
jp_eq_until "B: the stop10 queue is paused" paused 20 b_stat queue stop10 state
# The outage itself: 10 s from the kill, both staying paused throughout.
while [ $(( $(date +%s) - stopped_at )) -lt 10 ]; do
	[ "$(jp_stat queue stop10 state)" = paused ] && [ "$(b_stat queue stop10 state)" = paused ] ||
		{ jp_fail "a queue left paused while redis-server was down"; break; }
	sleep 0.5
done
n=$(wc -l <"$stop10")
if [ "$n" -lt "$S" ]; then
	jp_pass "after 10 s down, jobs still wait in the stream ($n of $S ran)"
else
	jp_fail "every stop10 job ran before redis-server came back: the stop tested nothing"
fi
redis_start
jp_eq "redis-server kept the stream across the stop" "$S" "$(rcli XLEN stop10)"
jp_eq_until "A resumes after 10 s down" running 20 jp_stat queue stop10 state
jp_eq_until "B resumes after 10 s down" running 20 b_stat queue stop10 state
uniq_stop10() { sort -u "$stop10" | wc -l; }
jp_eq_until "every stop10 job ran (at least once), after the 10 s stop" "$S" 60 uniq_stop10
jp_eq_until "nothing is left pending in the stop10 group" 0 30 eval 'rcli XPENDING stop10 g3 | head -1'

# ----- a reload changes the source like the rest of a queue's config -----
conf_body host-a | sed 's/stream = "bulk"/stream = "bulk2"/' >"$JP_TMP/new.conf"
{ echo "socket = \"$JP_SOCK\";"; cat "$JP_TMP/new.conf"; } >"$JP_TMP/jobpool.conf"
jp_ctl reload >/dev/null || jp_fail "reload with a new stream failed"
jp_eq_until "after a reload, A reads the new stream" bulk2 10 jp_stat source bulk stream
rcli XADD bulk2 '*' payload moved >/dev/null
jp_eq_until "an entry of the new stream runs on A, and is acked" 1 20 jp_stat source bulk acked
jp_log | grep -q "queue bulk: no longer reading redis redis://:\*\*\*@" &&
	jp_pass "the log says the old source stopped" || jp_fail "no log line for the old source"

# ----- delivery count: the poison entry is claimed and made dead -----
jp_eq_until "the entry delivered 3 times is dead where it was claimed" 1 20 eval \
	'echo $(( $(jp_stat queue poison dead) + $(b_stat queue poison dead) ))'
jp_match "the log says why" "was delivered more than poison_after times" "$(jp_log; cat "$B_LOG")"
jp_eq_until "and it is acked: no longer pending" 0 10 eval 'rcli XPENDING poison jobpool | head -1'

# ----- a flood: backpressure reaches Redis, not memory -----
# 5,000 entries of 100 ms jobs on two daemons of one worker and max_jobs 20 each: each
# reads only as much as it has room for, and the rest stays undelivered in Redis.
python3 - <<'PY' | rcli --pipe >/dev/null
import sys
for i in range(5000):
    sys.stdout.write("*5\r\n$4\r\nXADD\r\n$5\r\nflood\r\n$1\r\n*\r\n$7\r\npayload\r\n$3\r\n100\r\n")
PY
jp_eq_until "A's flood queue fills up to max_jobs" 20 20 jp_stat queue flood depth
jp_eq_until "B's too" 20 20 b_stat queue flood depth
rss_a0=$(jp_rss); rss_b0=$(jp_rss "$(pgrep -o -P "$B_PID")")
flood_ok=1
for i in 1 2 3 4 5 6 7 8 9 10; do
	for who in jp_stat b_stat; do
		h=$($who source flood held)
		[ "${h:-99}" -le 21 ] || { flood_ok=0; echo "held=$h by $who" >&2; }
	done
	sleep 0.2
done
[ "$flood_ok" = 1 ] && jp_pass "each daemon holds at most max_jobs + its one running job, throughout" ||
	jp_fail "a daemon held more entries than it had room for"
pending=$(rcli XPENDING flood jobpool | head -1)
if [ "$pending" -le 42 ]; then
	jp_pass "Redis has delivered only what both had room for ($pending pending)"
else
	jp_fail "Redis delivered $pending entries, more than the 42 both had room for"
fi
rss_a1=$(jp_rss); rss_b1=$(jp_rss "$(pgrep -o -P "$B_PID")")
if [ $((rss_a1 - rss_a0)) -lt 4096 ] && [ $((rss_b1 - rss_b0)) -lt 4096 ]; then
	jp_pass "both daemons' RSS stays flat (A $rss_a0 -> $rss_a1 KiB, B $rss_b0 -> $rss_b1 KiB)"
else
	jp_fail "RSS grew: A $rss_a0 -> $rss_a1 KiB, B $rss_b0 -> $rss_b1 KiB"
fi

# ----- results: a key per entry, with a TTL, where any host can read it -----
rid=$(rcli XADD res '*' payload 'hello result')
bid=$(rcli XADD res '*' nopayload x)
jp_eq_until "the result of a done job is its key's value" "done
hello result" 20 rcli GET "res:result:$rid"
jp_match "and the key expires (result_ttl = 60)" '^[1-6][0-9]{4}$' "$(rcli PTTL "res:result:$rid")"
jp_eq_until "a dead entry's key says why" "dead
redis entry $bid of stream res has no 'payload' field" 20 rcli GET "res:result:$bid"
jp_eq "the bulk queue (no result_ttl) wrote no keys" "" "$(rcli --scan --pattern 'bulk:result:*' | head -1)"

# ----- jobpoolctl submit --redis: no local daemon needed -----
URL="redis://:$PASS@127.0.0.1:$PORT/0"
jp_eq "submit --redis -w prints the result a daemon wrote" "via the cli" \
	"$(JOBPOOL_SOCKET=/nonexistent jp_ctl submit --redis "$URL" --stream res -w 'via the cli')"
jp_match "submit --redis prints the entry id" '^[0-9]+-[0-9]+$' \
	"$(printf 'from stdin' | JOBPOOL_SOCKET=/nonexistent jp_ctl submit --redis "$URL" --stream res -)"
out=$(jp_ctl submit --redis "redis://:wrong-$PASS@127.0.0.1:$PORT/0" --stream res x 2>&1)
jp_eq "a wrong password: exit 3" 3 "$?"
jp_match "and the error says AUTH failed" "^jobpoolctl: submit: redis 127.0.0.1:$PORT: AUTH: " "$out"
case $out in *"$PASS"*) jp_fail "submit --redis shows the password: $out" ;;
	*) jp_pass "submit --redis does not show the password" ;; esac
out=$(jp_ctl submit --redis "$URL" x 2>&1)
jp_eq "--redis without --stream is a usage error" 2 "$?"

# ----- libjobpool: jobpool_redis_submit(), a producer without a daemon -----
RS="$top_builddir/tests/redis_submit"
out=$("$RS" "$URL" res 'via the library' 30000)
jp_match "the library submits and gets the result a daemon wrote" \
	"^entry [0-9]+-[0-9]+
done via the library\$" "$out"
lid=$(printf '%s\n' "$out" | sed -n 's/^entry //p')
jp_eq_until "the daemon ran the library's entry (its result key)" "done
via the library" 20 rcli GET "res:result:$lid"
jp_match "without waiting: the entry id alone" '^entry [0-9]+-[0-9]+$' "$("$RS" "$URL" res 'no wait' 0)"
out=$("$RS" "$URL" nobody 'never read' 300)
jp_eq "a wait with no result in time fails" 1 "$?"
jp_match "with JOBPOOL_ETIMEDOUT, saying which entry" \
	"^error -7: no result for entry [0-9]+-[0-9]+ of stream nobody after 300 ms" "$out"
out=$("$RS" "redis://:wrong-$PASS@127.0.0.1:$PORT/0" res x 0)
jp_eq "a wrong password fails" 1 "$?"
jp_match "with JOBPOOL_EREDIS and AUTH's error" "^error -8: redis 127.0.0.1:$PORT: AUTH: " "$out"
case $out in *"$PASS"*) jp_fail "the library's error shows the password: $out" ;;
	*) jp_pass "the library's error does not show the password" ;; esac
out=$("$RS" "http://:$PASS@127.0.0.1:$PORT" res x 0)
jp_match "a bad URL: JOBPOOL_EINVAL" "^error -6: redis URL: " "$out"
case $out in *"$PASS"*) jp_fail "the library's URL error shows the password: $out" ;;
	*) jp_pass "the library's URL error does not show the password" ;; esac

# ----- the password is nowhere to be seen -----
stats_all="$(badclient stats "$JP_SOCK"; JP_SOCK=$B_SOCK badclient stats "$B_SOCK"; jp_ctl status)"
case $stats_all in *"$PASS"*) jp_fail "STATS or status shows the password" ;;
	*) jp_pass "STATS and status do not show the password" ;; esac
jp_match "STATS shows the URL without it" "url=redis://:\\*\\*\\*@127.0.0.1:$PORT/0" "$stats_all"

# ----- kill -9 one daemon mid-run: the other claims its entries and finishes -----
K=300
xadd_n slow s "$K"
jp_until 30 eval '[ "$(wc -l <"$slow")" -ge 40 ]' || jp_fail "the slow jobs did not start"
kill -KILL "$JP_DPID"
wait "$JP_PID" 2>/dev/null
JP_PID=
uniq_slow() { sort -u "$slow" | wc -l; }
jp_eq_until "every slow job ran, B claiming what A held" "$K" 60 uniq_slow
jp_match "B's log says it claimed them" "queue slow: claimed [0-9]+ entr" "$(cat "$B_LOG")"
dups=$(( $(wc -l <"$slow") - K ))
if [ "$dups" -le 2 ]; then
	jp_pass "duplicates ($dups) are only what A was running (2 workers, batch 1)"
else
	jp_fail "$dups duplicates: more than the 2 jobs A could have been running"
	sort "$slow" | uniq -d >&2
fi
jp_eq_until "nothing is left pending in the slow group" 0 20 eval 'rcli XPENDING slow jobpool | head -1'

kill -TERM "$B_PID"
wait "$B_PID"
jp_eq "the second daemon stops cleanly" 0 "$?"
B_PID=
jp_check_sanitizers
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$B_LOG"; then
	jp_fail "sanitizer report in the second daemon's log"
	grep -A20 -E 'Sanitizer|runtime error' "$B_LOG" | head -40 >&2
fi
# ----- with the journal on: a restarted host resumes its own pending entries -----
# Jobs from Redis are kept by Redis (pending entries), not by the journal: after a
# graceful stop with jobs still waiting, the next start runs each of them once, from
# its pending entry (XREADGROUP with id 0), not twice (journal and entry).
jr="$JP_TMP/jr"
: >"$jr"
mkdir -p "$JP_TMP/journal"
printf '#!/bin/sh\nread -r p; sleep 0.01; echo "$p" >> %s\n' "$jr" >"$JP_TMP/jr.sh"
chmod +x "$JP_TMP/jr.sh"
jr_conf="journal_dir = \"$JP_TMP/journal\";
shutdown_timeout = 5;
queues = (
	{ name = \"jr\"; handler = \"exec:$JP_TMP/jr.sh\";
	  workers = 1; batch = 1;
	  source = { redis = \"redis://:$PASS@127.0.0.1:$PORT/0\"; stream = \"jr\";
	             consumer = \"host-c\"; }; },
	{ name = \"pwf\"; handler = \"echo\"; workers = 1;
	  source = { redis = \"redis://127.0.0.1:$PORT/0\"; stream = \"pwf\";
	             password_file = \"$JP_TMP/redis.pw\"; result_ttl = 60; }; },
	{ name = \"local\"; handler = \"echo\"; workers = 1; }
);"
printf '%s\n' "$PASS" >"$JP_TMP/redis.pw"
jp_start "$jr_conf"
J=200
xadd_n jr j "$J"
jp_until 30 eval '[ "$(wc -l <"$jr")" -ge 20 ]' || jp_fail "the jr jobs did not start"
jp_stop
left=$(rcli XPENDING jr jobpool | head -1)
if [ "$left" -gt 0 ] && [ "$(wc -l <"$jr")" -lt "$J" ]; then
	jp_pass "a graceful stop left $left entries pending for host-c"
else
	jp_fail "nothing was left to resume ($left pending, $(wc -l <"$jr") ran)"
fi
jp_start "$jr_conf"
jp_eq "the journal brought back no job from Redis" 0 "$(jp_stat journal recovered)"
uniq_jr() { sort -u "$jr" | wc -l; }
jp_eq_until "after the restart every jr job ran" "$J" 60 uniq_jr
# At most the one job the worker was running at the stop runs twice: on a loaded host
# the stop can reach it past shutdown_timeout, and a job the shutdown cancels did not
# end, so its entry stays pending (at least once). Every other job ran once.
dups=$(( $(wc -l <"$jr") - J ))
if [ "$dups" -le 1 ]; then
	jp_pass "each exactly once, but for the job running at the stop ($dups ran twice)"
else
	jp_fail "$dups jobs ran twice across a graceful stop (at most 1: the running one)"
	sort "$jr" | uniq -d | head >&2
fi
jp_eq_until "nothing is left pending" 0 20 eval 'rcli XPENDING jr jobpool | head -1'

# ----- the password from a file, read at each connection -----
jp_eq "password_file: a job through a source whose URL has no password" "from the file" \
	"$(jp_ctl submit --redis "redis://:$PASS@127.0.0.1:$PORT/0" --stream pwf -w 'from the file')"
rm -f "$JP_TMP/redis.pw"
rcli CLIENT KILL TYPE normal >/dev/null	# every connection drops: the sources reconnect
jp_eq_until "password_file gone: the queue is paused" paused 20 jp_stat queue pwf state
jp_match "and STATS says which file and why" \
	"redis unreachable \\(redis://127.0.0.1:$PORT/0: password_file $JP_TMP/redis.pw: No such file" \
	"$(badclient stats "$JP_SOCK" | sed -n 's/^queue pwf .* reason=//p')"
printf '%s\n' "$PASS" >"$JP_TMP/redis.pw"
jp_eq_until "the file back: it resumes" running 20 jp_stat queue pwf state
jp_stop
printf 'socket = "%s";\nqueues = ( { name = "x"; handler = "echo";\n  source = { redis = "redis://:%s@h"; stream = "s";\n    password_file = "rel/pw"; }; } );\n' \
	"$JP_SOCK" "$PASS" >"$JP_TMP/pw.conf"
out=$("$JOBPOOLD" -t -c "$JP_TMP/pw.conf" 2>&1)
jp_match "password_file must be absolute" "pw.conf:4: 'password_file' in the source of queue 'x' must be an absolute path" "$out"
jp_match "and not with a password in the URL" "pw.conf:4: 'password_file' in the source of queue 'x' and a password in 'redis'" "$out"
case $out in *"$PASS"*) jp_fail "the error quotes the password" ;; *) jp_pass "neither quotes the password" ;; esac

case "$(cat "$JP_LOG" "$B_LOG")" in *"$PASS"*) jp_fail "a log shows the password" ;;
	*) jp_pass "no log line shows the password" ;; esac
jp_done
