#!/bin/bash
# it_plugin.sh: handler plugins end to end (handler_plugin.c, lib/jobpool-handler.h):
# the example wordcount plugin's results in both formats; plugins that cannot load (not
# a shared object, no jobpool_handler, a bad ABI version, no process()) or whose init
# fails are reported once with the reason, their queue shows state=failed, and their
# workers are not restarted in a storm; a running job cancelled with `jobpoolctl
# cancel` runs its cleanup hook; a timeout runs it too; a plugin ignoring cancellation
# is killed after the grace period and its worker replaced; hooks are dropped when a job
# succeeds; a permanent error is not retried, a transient one is; an invalid status
# fails the job with a message.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

JP_RAW_TIMEOUT=20
# stats_line QUEUE: the queue's line in STATS.
stats_line() { badclient stats "$JP_SOCK" | awk -v q="$1" '$1 == "queue" && $2 == q'; }
# state_is ID STATE: STATUS says it.
state_is() {
	case $(printf 'STATUS %s\n' "$1" | raw) in *"state=$2 "*|*"state=$2") return 0 ;; esac
	return 1
}
start_wait() {
	printf 'WAIT %s\n' "$1" | raw >"$JP_TMP/wait.$1" 2>&1 &
	BG="$BG $!"
	WAITER=$!
}

WC=$(jp_example_plugin wordcount)
SLOW=$(jp_example_plugin slow_plugin)
T=$JP_TMP

# Plugins that cannot load. A text file is no shared object; with a C compiler, also
# one without the symbol, one with an unsupported ABI version and one without process().
printf 'not a shared object\n' >"$T/text.so"
BAD_QUEUES="{ name = \"text\"; handler = \"plugin:$T/text.so\"; workers = 2; },
	{ name = \"initfail\"; handler = \"plugin:$SLOW initfail\"; workers = 2; },
	{ name = \"badarg\"; handler = \"plugin:$WC xml\"; workers = 1; },"
BAD="text initfail badarg"
CC_OK=0
if command -v "${CC:-cc}" >/dev/null 2>&1; then
	printf 'int jobpool_handler_is_not_here;\n' >"$T/nosym.c"
	cat >"$T/badabi.c" <<'EOF'
#include <jobpool-handler.h>
static int p(void *s, const void *d, size_t l, struct jobpool_output *o) { return 0; }
const struct jobpool_handler jobpool_handler = { 42, "bad", 0, p, 0 };
EOF
	cat >"$T/noproc.c" <<'EOF'
#include <jobpool-handler.h>
const struct jobpool_handler jobpool_handler = { JOBPOOL_HANDLER_ABI_VERSION, "noproc", 0, 0, 0 };
EOF
	CC_OK=1
	for b in nosym badabi noproc; do
		"${CC:-cc}" -shared -fPIC -I"$top_srcdir/lib" -o "$T/$b.so" "$T/$b.c" ||
			CC_OK=0
	done
fi
if [ "$CC_OK" = 1 ]; then
	BAD_QUEUES="$BAD_QUEUES
	{ name = \"nosym\"; handler = \"plugin:$T/nosym.so\"; workers = 2; },
	{ name = \"badabi\"; handler = \"plugin:$T/badabi.so\"; workers = 2; },
	{ name = \"noproc\"; handler = \"plugin:$T/noproc.so\"; workers = 1; },"
	BAD="$BAD nosym badabi noproc"
else
	echo "no C compiler: the missing-symbol and ABI-version cases are skipped"
fi

jp_start "queues = (
	$BAD_QUEUES
	{ name = \"wc\"; handler = \"plugin:$WC\"; workers = 2; },
	{ name = \"wcjson\"; handler = \"plugin:$WC   json\"; workers = 1; },
	{ name = \"slow\"; handler = \"plugin:$SLOW\"; workers = 1; grace = 5; retries = 0; },
	{ name = \"retry\"; handler = \"plugin:$SLOW\"; workers = 1; retries = 2;
	  backoff_base = 0.02; backoff_max = 0.05; },
	{ name = \"tmo\"; handler = \"plugin:$SLOW\"; workers = 1; timeout = 0.3; grace = 5;
	  retries = 0; },
	{ name = \"ignore\"; handler = \"plugin:$SLOW ignore\"; workers = 1; grace = 0.5;
	  retries = 0; }
);" -d

# ----- the example plugin -----
printf 'hello big world\nsecond line here\n\n  spaced\tout  \n' >"$T/text"
want=$(wc -l <"$T/text" | tr -d ' ')" "$(wc -w <"$T/text" | tr -d ' ')" "$(wc -c <"$T/text" | tr -d ' ')
out=$(bc_submit wc <"$T/text")
jp_match "wordcount: RESULT ok" '^RESULT [0-9]+ ok ' "$(hdr)"
jp_eq "wordcount: lines words bytes, as wc counts them" "$want" "$out"
out=$(bc_submit wcjson <"$T/text")
jp_eq "wordcount json (the init argument)" \
	"{\"lines\":${want%% *},\"words\":$(echo "$want" | cut -d' ' -f2),\"bytes\":${want##* }}" "$out"
out=$(printf '' | bc_submit wc)
jp_eq "wordcount of nothing" "0 0 0" "$out"
head -c 700000 /dev/urandom | base64 >"$T/mid"
want=$(wc -l <"$T/mid" | tr -d ' ')" "$(wc -w <"$T/mid" | tr -d ' ')" "$(wc -c <"$T/mid" | tr -d ' ')
jp_eq "wordcount of 900 KB" "$want" "$(bc_submit wc <"$T/mid")"

# ----- plugins that cannot load or init: reported once, queue failed, no storm -----
# A queue is failed once its worker has said so: wait for that (a slow machine takes
# longer than any fixed sleep), then give a respawn storm 2 s to show itself.
for q in $BAD; do
	jp_match_until "$q: STATS says state=failed" "^queue $q state=failed " 10 stats_line "$q"
done
sleep 2	# let any respawn storm show itself in the log
for q in $BAD; do
	line=$(stats_line "$q")
	n=$(grep -c "queue $q: worker [0-9]* started" "$JP_LOG")
	w=$(printf '%s' "$line" | sed -n 's/.* workers=\([0-9]*\) .*/\1/p')
	if [ "$n" -le "${w:-1}" ]; then jp_pass "$q: $n worker start(s) in 2 s, no respawn storm"
	else jp_fail "$q: $n worker starts in 2 s (workers=$w)"; fi
	n=$(grep -c "queue $q: handler .* failed to start" "$JP_LOG")
	jp_eq "$q: the failure is logged once" 1 "$n"
done
reason() { grep "queue $1: handler .* failed to start" "$JP_LOG" | head -1; }
jp_match "text: the log names the path and the dlopen error" \
	"plugin $T/text.so: cannot load: .*$T/text.so" "$(reason text)"
jp_match "initfail: the log has init's own message" \
	"plugin $SLOW: init failed: slow_plugin: told to fail \\(argument 'initfail'\\)" \
	"$(reason initfail)"
jp_match "badarg: the example's init refuses an unknown format" \
	"init failed: unknown output format 'xml'" "$(reason badarg)"
jp_match "initfail: STATS gives the reason too" "init failed" "$(stats_line initfail)"
if [ "$CC_OK" = 1 ]; then
	jp_match "nosym: the log says the symbol is missing" \
		"plugin $T/nosym.so: no symbol jobpool_handler: .*undefined symbol: jobpool_handler" \
		"$(reason nosym)"
	jp_match "badabi: the log names both ABI versions" \
		"plugin $T/badabi.so: ABI version 42 is not supported: this jobpoold supports versions 1 to 2" \
		"$(reason badabi)"
	jp_match "noproc: the log says process is missing" \
		"plugin $T/noproc.so: jobpool_handler.process is NULL" "$(reason noproc)"
fi
out=$(jp_ctl --json status)
jp_match "jobpoolctl --json status: the queue is failed" \
	'"name":"text","state":"failed"' "$out"
out=$(printf 'SUBMIT wc 2 wait\nhi\nPING\n' | raw)
jp_match "the other queues keep working" 'RESULT [0-9]+ ok' "$out"

# ----- cancel a running job: its cleanup hook runs -----
id=$(jp_ctl submit -q slow "20000 $T/c1")
start_wait "$id"
jp_until 10 test -e "$T/c1" && jp_pass "cancel: the job created its file" ||
	jp_fail "cancel: the job did not start"
jp_until 10 state_is "$id" running || jp_fail "cancel: job $id is not running"
out=$(printf 'CANCEL %s\n' "$id" | raw)
jp_eq "cancel: OK cancelling" "OK cancelling" "$out"
wait "$WAITER"
res=$(cat "$JP_TMP/wait.$id")
jp_match "cancel: the waiter gets RESULT cancelled" "RESULT $id cancelled " "$res"
jp_match "cancel: the result says the plugin stopped and cleanup ran" \
	'slow_plugin: cancelled after [0-9]+ ms.*cleanup ran \(1 hook\)' "$res"
if [ -e "$T/c1" ]; then jp_fail "cancel: the cleanup hook did not remove $T/c1"
else jp_pass "cancel: the cleanup hook removed the file"; fi
out=$(jp_ctl cancel "$id" 2>&1); rc=$?
jp_match "cancel again: refused, the job has finished" 'finished' "$out"

# ----- a timeout runs the hook too -----
t0=$(now_ms)
out=$(printf '%s' "20000 $T/t1" | bc_submit tmo)
dt=$(( $(now_ms) - t0 ))
jp_match "timeout: RESULT timeout" '^RESULT [0-9]+ timeout ' "$(hdr)"
jp_match "timeout: cleanup ran" 'cleanup ran \(1 hook\)' "$out"
if [ -e "$T/t1" ]; then jp_fail "timeout: the cleanup hook did not run"
else jp_pass "timeout: the cleanup hook removed the file"; fi
if [ "$dt" -ge 300 ] && [ "$dt" -lt 3000 ]; then jp_pass "timeout: after $dt ms (timeout 300)"
else jp_fail "timeout: after $dt ms (timeout 300)"; fi

# ----- success: the hooks are dropped without running -----
out=$(printf '%s' "30 $T/s1" | bc_submit slow)
jp_eq "success: the result" "slept 30" "$out"
if [ -e "$T/s1" ]; then jp_pass "success: the hook did not run (the file stays)"
else jp_fail "success: the hook ran on a successful job"; fi

# ----- ignoring cancellation: killed after the grace period, worker replaced -----
w1=$(worker_pid ignore)
id=$(jp_ctl submit -q ignore "20000 $T/i1")
start_wait "$id"
jp_until 10 test -e "$T/i1" || jp_fail "ignore: the job did not start"
jp_until 10 state_is "$id" running
t0=$(now_ms)
out=$(printf 'CANCEL %s\n' "$id" | raw)
jp_eq "ignore: OK cancelling" "OK cancelling" "$out"
wait "$WAITER"
dt=$(( $(now_ms) - t0 ))
res=$(cat "$JP_TMP/wait.$id")
jp_match "ignore: RESULT cancelled" "RESULT $id cancelled " "$res"
jp_match "ignore: the result says the worker was killed" 'grace.*killed' "$res"
# The master allows the grace period plus a second for the worker to report.
if [ "$dt" -ge 450 ] && [ "$dt" -lt 3000 ]; then jp_pass "ignore: killed after $dt ms (grace 500)"
else jp_fail "ignore: result after $dt ms (grace 500)"; fi
replaced() { w2=$(worker_pid ignore); [ -n "$w2" ] && [ "$w2" != "$w1" ]; }
jp_until 5 replaced
if [ -n "$w2" ] && [ "$w2" != "$w1" ]; then jp_pass "ignore: worker $w1 replaced by $w2"
else jp_fail "ignore: worker $w1 not replaced"; fi
out=$(printf '10' | bc_submit ignore)
jp_eq "ignore: the new worker runs jobs" "slept 10" "$out"

# ----- errors: permanent not retried, transient retried, invalid status -----
out=$(printf 'permanent' | bc_submit retry)
jp_match "permanent: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_eq "permanent: the plugin's message" "slow_plugin: permanent failure" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "permanent: not retried (attempts=1)" 'attempts=1( |$)' "$st"
out=$(printf 'fail' | bc_submit retry)
jp_match "transient: failed in the end" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_eq "transient: the plugin's message" "slow_plugin: transient failure" "$out"
st=$(printf 'STATUS %s\n' "$(hdr | cut -d' ' -f2)" | raw)
jp_match "transient: retried (retries = 2: attempts=3)" 'attempts=3( |$)' "$st"
out=$(printf 'invalid' | bc_submit slow)
jp_match "invalid status: failed" '^RESULT [0-9]+ failed ' "$(hdr)"
jp_match "invalid status: the message says so" \
	"plugin $SLOW: process\\(\\) returned an invalid status 7" "$out"

jp_stop
jp_done
