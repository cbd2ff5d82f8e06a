#!/bin/bash
# it_events.sh: the event stream as a user sees it (EVENTS, jobpoolctl events).
#   1. Under load (20,000 jobs through map), two followers (jobpoolctl events -f, one
#      of them --json) get every event, in order, each job's queued, started and
#      succeeded once; a failing job's failed, retrying, dead; the ring printed
#      without -f; --since resumes exactly after a sequence number; -q and --type.
#   2. A restart: the follower reconnects and is told of it as a gap (reason=restart,
#      the first sequence number it missed of the old epoch).
#   3. With a small ring, a subscriber that stalls gets a gap naming exactly the range
#      it lost, while a follower loses nothing; STATS counts the drop.
#   4. Hooks: a job.dead hook gets the event as one JSON object on stdin; a hook that
#      hangs is killed at its timeout (and logged) while jobs keep flowing; events of
#      the hooks' own queues run none; a reload changes hooks; errors at file:line.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

# check_stream FILE [--json]: the stream's sequence numbers go up by one from the first
# (a gap line's range counts as seen); prints "ok LAST" or what is wrong.
check_stream() {
	python3 - "$@" <<'PY'
import json, sys
path, js = sys.argv[1], len(sys.argv) > 2
prev = None
n = 0
for line in open(path):
    line = line.strip()
    if not line:
        continue
    if js:
        d = json.loads(line)
    else:
        d = dict(w.split('=', 1) for w in line.split(' ') if '=' in w)
    if d.get('type') == 'gap':
        if d.get('reason') == 'restart':
            prev = 0
            continue
        first, last = int(d['first']), int(d['last'])
        if prev is not None and first != prev + 1:
            print('gap first %d after %d' % (first, prev)); sys.exit(0)
        prev = last
        continue
    s = int(d['seq'])
    if prev is not None and s != prev + 1:
        print('seq %d after %d' % (s, prev)); sys.exit(0)
    prev = s
    n += 1
print('ok %d' % prev if n else 'no events')
PY
}

# jobs_complete FILE N: every job 1..N has queued, started, succeeded, in that order.
jobs_complete() {
	python3 - "$1" "$2" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
want = ['job.queued', 'job.started', 'job.succeeded']
seen = {}
for line in open(path):
    d = dict(w.split('=', 1) for w in line.strip().split(' ') if '=' in w)
    if 'job' in d and d.get('queue') == 'default':
        seen.setdefault(int(d['job']), []).append(d['type'])
bad = [j for j in range(1, n + 1) if seen.get(j) != want]
print('ok' if not bad and len(seen) == n else
      'jobs %s: %s' % (bad[:3], [seen.get(j) for j in bad[:3]]))
PY
}

count_lines() { wc -l <"$1" | tr -d ' '; }

CONF='
events_ring = 200000;
queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "fail"; handler = "exec:/bin/false"; workers = 1; retries = 1;
	  backoff_base = 0.01; backoff_max = 0.01; }
);'
jp_start "$CONF"

# 1. Two followers, then load. They follow across restarts: never left behind.
F1= F2= F3= STALL=
trap 'kill $F1 $F2 $F3 $STALL 2>/dev/null; jp_cleanup' EXIT
"$JOBPOOLCTL" events -f >"$JP_TMP/f1" 2>"$JP_TMP/f1.err" &
F1=$!
"$JOBPOOLCTL" --json events -f >"$JP_TMP/f2" 2>/dev/null &
F2=$!
jp_eq_until "two subscribers" 2 10 jp_stat daemon subscribers
seq 1 20000 | jp_ctl map -q default >/dev/null
echo x | jp_ctl submit -q fail -w >/dev/null 2>&1
last=$(jp_stat daemon events_seq)
[ "$last" -ge 60004 ] && jp_pass "events_seq $last" || jp_fail "events_seq $last < 60004"
# Every event reached both followers: their last line is the last event.
jp_match_until "follower saw the last event" "^seq=$last " 30 tail -n1 "$JP_TMP/f1"
jp_match_until "--json follower saw the last event" "\"seq\":$last," 30 tail -n1 "$JP_TMP/f2"
jp_eq "follower: in order, none missing" "ok $last" "$(check_stream "$JP_TMP/f1")"
jp_eq "--json follower: in order, none missing" "ok $last" "$(check_stream "$JP_TMP/f2" --json)"
jp_eq "each job: queued, started, succeeded" ok "$(jobs_complete "$JP_TMP/f1" 20000)"
jp_match "a failing job: failed, retrying, started, failed, dead" \
	'type=job.failed queue=fail job=20001 attempt=1 pid=[0-9]+ ms=[0-9]+ error=exit status 1 type=job.retrying queue=fail job=20001 attempt=1 pid=[0-9]+ delay_ms=[0-9]+ type=job.started queue=fail job=20001 attempt=2 pid=[0-9]+ type=job.failed queue=fail job=20001 attempt=2 pid=[0-9]+ ms=[0-9]+ error=exit status 1 type=job.dead queue=fail job=20001 attempt=2 pid=[0-9]+ error=exit status 1' \
	"$(grep 'job=20001' "$JP_TMP/f1" | grep -v 'job.queued\|job.started queue=fail job=20001 attempt=1' | sed 's/^seq=[0-9]* time=[0-9.]* //' | tr '\n' ' ')"

# Without -f: the ring, and exit.
jp_ctl events >"$JP_TMP/ring"; rc=$?
jp_eq "events: exit status" 0 "$rc"
jp_eq "events prints the whole ring" "ok $last" "$(check_stream "$JP_TMP/ring")"
# --since resumes exactly after it.
jp_ctl events --since 55555 >"$JP_TMP/since"
jp_eq "--since 55555: from 55556" "seq=55556" "$(head -n1 "$JP_TMP/since" | cut -d' ' -f1)"
jp_eq "--since 55555: the same lines as the follower's" \
	"$(sed -n '/^seq=55556 /,$p' "$JP_TMP/f1" | md5sum)" "$(md5sum <"$JP_TMP/since")"
# Filters.
jp_eq "-q fail --type job.dead" "job.dead 20001" \
	"$(jp_ctl events -q fail --type job.dead | sed 's/.*type=\([^ ]*\).* job=\([0-9]*\).*/\1 \2/')"
jp_eq "--type 'worker.*': the three workers started" 3 \
	"$(jp_ctl events --type 'worker.*' | grep -c 'type=worker.started')"
jp_match "--json: one object per event" '^\{"epoch":[0-9]+,"seq":[0-9]+,"time":[0-9.]+,"type":"job.dead","queue":"fail","job":20001,"attempt":2,"pid":[0-9]+,"error":"exit status 1"\}$' \
	"$(jp_ctl --json events --type job.dead)"
err=$(jp_ctl events -q nosuch 2>&1); rc=$?
jp_eq "events -q nosuch: exit status" 3 "$rc"
jp_eq "events -q nosuch: the error" "jobpoolctl: events: noqueue: EVENTS: no queue 'nosuch'" "$err"
err=$(jp_ctl events --since soon 2>&1); rc=$?
jp_eq "events --since soon: exit status" 2 "$rc"
jp_match "events --since soon: said" "bad --since 'soon'" "$err"
jp_match "EVENTS since=-1: ERR naming the field" \
	"^ERR proto EVENTS: since: not a sequence number" "$(printf 'EVENTS since=-1\nQUIT\n' | raw)"

# 2. A restart: the follower reconnects and hears of it as a gap.
epoch=$(jp_stat daemon events_epoch)
jp_stop
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
jp_start '
metrics_listen = "127.0.0.1:'"$PORT"'";
events_ring = 1024;
max_output = 65536;
queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "paced"; handler = "echo"; workers = 1; rate = 2000; }
);'
jp_match_until "the follower reports the restart as a gap" \
	"^type=gap reason=restart epoch=$epoch first=[0-9]+\$" 30 \
	grep 'reason=restart' "$JP_TMP/f1"
# What it missed starts right after the last event it printed of the old epoch.
seen=$(grep -B1 'reason=restart' "$JP_TMP/f1" | head -n1 | sed 's/^seq=\([0-9]*\) .*/\1/')
jp_eq "the gap starts after the last event it had" "first=$((seen + 1))" \
	"$(grep 'reason=restart' "$JP_TMP/f1" | grep -o 'first=[0-9]*')"
jp_match_until "and it goes on with the new daemon's events" "^seq=1 .*type=worker.started" 30 \
	grep -A1 'reason=restart' "$JP_TMP/f1"

# 3. A small ring (1024), a subscriber that stalls, a follower that reads.
jp_eq_until "the two followers are back" 2 10 jp_stat daemon subscribers
kill "$F1" "$F2" 2>/dev/null
wait "$F1" "$F2" 2>/dev/null
jp_eq_until "the two followers gone" 0 10 jp_stat daemon subscribers
python3 - "$JP_SOCK" "$JP_TMP/stalled" "$JP_TMP/stalled.go" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'EVENTS\n')
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.settimeout(2)
with open(sys.argv[2], 'wb') as f:
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            f.write(b)
    except socket.timeout:
        pass
PY
STALL=$!
jp_eq_until "one subscriber, stalled" 1 10 jp_stat daemon subscribers
"$JOBPOOLCTL" events -f >"$JP_TMP/f3" 2>/dev/null &
F3=$!
jp_eq_until "and a follower" 2 10 jp_stat daemon subscribers
# Paced (6,000 events/s), so that the follower's reading is never the question; 9,000
# events are more than the stalled one's socket, backlog and the ring hold.
seq 1 3000 | jp_ctl map -q paced >/dev/null
last2=$(jp_stat daemon events_seq)
jp_match_until "the reading follower saw the last event" "^seq=$last2 " 30 tail -n1 "$JP_TMP/f3"
jp_eq "the reading follower lost nothing" "ok $last2" "$(check_stream "$JP_TMP/f3")"
jp_eq "the reading follower got no gap" 0 "$(grep -c 'type=gap' "$JP_TMP/f3")"
dropped=$(jp_stat daemon events_dropped)
[ "$dropped" -gt 0 ] && jp_pass "STATS events_dropped=$dropped" || jp_fail "events_dropped=$dropped"
touch "$JP_TMP/stalled.go"
wait "$STALL"
gap=$(grep -a 'type=gap' "$JP_TMP/stalled")
jp_match "the stalled subscriber got one gap" '^EVENT type=gap reason=overrun first=[0-9]+ last=[0-9]+$' "$gap"
grep -a '^EVENT' "$JP_TMP/stalled" | sed 's/^EVENT //' >"$JP_TMP/stalled.ev"
jp_eq "its events and its gap cover every seq, in order" "ok $last2" \
	"$(check_stream "$JP_TMP/stalled.ev")"
g_first=$(echo "$gap" | sed 's/.*first=\([0-9]*\).*/\1/')
g_last=$(echo "$gap" | sed 's/.*last=\([0-9]*\)/\1/')
jp_eq "STATS counts exactly its gap" "$((g_last - g_first + 1))" "$(jp_stat daemon events_dropped)"
if command -v curl >/dev/null 2>&1; then
	jp_eq "/metrics counts it too" "$((g_last - g_first + 1))" \
		"$(curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" |
		    awk '$1 == "jobpool_events_dropped_total" { print $2 }')"
	jp_eq "/metrics: the last sequence number" "$(jp_stat daemon events_seq)" \
		"$(curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" |
		    awk '$1 == "jobpool_events_total" { print $2 }')"
fi
jp_match "the ring held the last 1024 after the gap" "^EVENT seq=$((g_last + 1)) " \
	"$(grep -a -A1 'type=gap' "$JP_TMP/stalled" | tail -n1)"

kill "$F3" 2>/dev/null
wait "$F3" 2>/dev/null
jp_stop

# 4. Hooks.
printf '#!/bin/sh\ncat >"%s/hook.$$.json"\n' "$JP_TMP" >"$JP_TMP/hook.sh"
printf '#!/bin/sh\necho $$ >>"%s/hang.pids"\nexec sleep 600\n' "$JP_TMP" >"$JP_TMP/hang.sh"
chmod +x "$JP_TMP/hook.sh" "$JP_TMP/hang.sh"
HQ='queues = (
	{ name = "default"; handler = "echo"; workers = 2; },
	{ name = "fail"; handler = "exec:/bin/false"; workers = 1; retries = 0; }
);'
jp_start "$HQ
hooks = (
	{ on = \"job.dead\"; queue = \"f*\"; run = \"$JP_TMP/hook.sh\"; },
	{ on = \"job.succeeded\"; queue = \"default\"; run = \"$JP_TMP/hang.sh\";
	  timeout = 0.5; retries = 0; concurrency = 1; max_queued = 5; }
);"
echo payload | jp_ctl submit -q fail -w >/dev/null 2>&1
hook_json() { cat "$JP_TMP"/hook.*.json 2>/dev/null; }
jp_match_until "the job.dead hook got the event as one JSON object" \
	'^\{"epoch":[0-9]+,"seq":[0-9]+,"time":[0-9.]+,"type":"job.dead","queue":"fail","job":1,"attempt":1,"pid":[0-9]+,"error":"exit status 1"\}$' \
	10 hook_json
jp_eq "it parses as JSON" "job.dead fail 1" \
	"$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["type"], d["queue"], d["job"])' "$(hook_json)")"
# The hanging hook: every success of default runs it; it is killed at its timeout
# (0.5 s), its queue holds at most 5, and jobs flow meanwhile.
seq 1 2000 | jp_ctl map -q default >/dev/null; rc=$?
jp_eq "2,000 jobs while a hook hangs" 0 "$rc"
jp_ok_until "the hanging hook is killed at its timeout, logged" 15 eval \
	"jp_log | grep -q 'queue hook.2: job [0-9]*: timed out after 500 ms'"
jp_ok_until "and its job is dead, logged" 15 eval \
	"jp_log | grep -q 'queue hook.2: job [0-9]* is dead after 1 attempt: timed out after 500 ms'"
first=$(head -n1 "$JP_TMP/hang.pids")
jp_ok_until "its program is gone" 10 eval "! kill -0 $first 2>/dev/null"
jp_match "a full hook queue drops events, and says so" \
	'event [0-9]+ \(job.succeeded\) not handed to its hook: its queue is full \(max_queued\)' \
	"$(jp_log)"
jp_eq "the hooks' own events ran no hook: one job.dead hook run" 1 \
	"$(ls "$JP_TMP"/hook.*.json | wc -l)"
jp_eq "SUBMIT to a hook's queue is refused" \
	"jobpoolctl: submit: noqueue: SUBMIT: queue 'hook.1' is hook #1's: only its events go there" \
	"$(echo x | jp_ctl submit -q hook.1 2>&1)"
# A reload: the hanging hook goes; job.succeeded on default goes to hook.sh instead.
jp_config "$HQ
hooks = ( { on = \"job.succeeded\"; queue = \"default\"; run = \"$JP_TMP/hook.sh\"; } );" >/dev/null
jp_eq "reload" "" "$(jp_ctl reload 2>&1 >/dev/null)"
id=$(echo hi | jp_ctl submit -q default)
jp_match_until "after the reload, the new hook runs" \
	"\"type\":\"job.succeeded\",\"queue\":\"default\",\"job\":$id," 10 hook_json
jp_stop 40

# Config errors at file:line.
jp_config "$HQ
hooks = (
	{ on = \"job.nope\"; run = \"/bin/true\"; },
	{ on = \"job.dead\"; run = \"$JP_TMP/nothere\"; },
	{ run = \"/bin/true\"; frob = 1; }
);" >/dev/null
err=$("$JOBPOOLD" -t -c "$JP_TMP/jobpool.conf" 2>&1); rc=$?
jp_eq "a bad hook: exit 78" 78 "$rc"
jp_match "on= matching nothing, at its line" "jobpool.conf:7: 'on' in hook #1: 'job.nope' matches no event type" "$err"
jp_match "a program that is not there, at its line" "jobpool.conf:8: 'run': exec program '$JP_TMP/nothere' in hook #2: No such file" "$err"
jp_match "an unknown setting, at its line" "jobpool.conf:9: unknown setting 'frob' in hook #3" "$err"
jp_match "a missing on, at its line" "jobpool.conf:9: hook #3 has no 'on'" "$err"
jp_done
