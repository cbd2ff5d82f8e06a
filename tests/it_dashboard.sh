#!/usr/bin/env bash
# it_dashboard.sh: the dashboard (GET / on metrics_listen) as its users see it.
#   1. The JSON endpoints and the event stream, live, against doc/dashboard.schema.json
#      (tests/dashboard_schema.py): a Last-Event-ID resumes after it, one of another
#      start gets a restart's gap; a reader that stops while 20,000 jobs run is
#      overtaken by the ring (counted in /metrics), and reading again gets one gap
#      and the events right after it.
#   2. Actions: with dashboard_actions the daemon writes a token file (0640); without
#      the token, with a wrong one, or from another origin a POST is refused (403) and
#      the dead job stays dead; GET is 405; with the token and the page's origin a
#      running job is cancelled (jobpoolctl says so).
#   3. In Debian's chromium (tests/dashboard_browser.py, the DevTools protocol over a
#      pipe): the page loads with no console error, shows the queues and workers, its
#      event list grows while jobs run, the chart is dygraphs (libjs-dygraphs); on a
#      phone it fits in one column, on a wall screen three; a dead job is retried from
#      the page (its Retry button, with the token from the address) and runs again
#      (jobpoolctl). Screenshots are kept in tests/it_dashboard.out/.
#   4. After a reload to an empty javascript directory and actions off: the same page
#      with its SVG chart, read-only (no buttons, the token refused), still no error.
#   5. dashboard = false: / is 404 again; the daemon stops cleanly with a stream open,
#      and removes its token file.
. "$top_srcdir/tests/lib.sh"

command -v curl >/dev/null 2>&1 || { echo "curl is missing (quickstart.sh test installs it)"; exit 99; }
command -v chromium >/dev/null 2>&1 || { echo "chromium is missing (quickstart.sh test installs it)"; exit 99; }
[ -r /usr/share/javascript/dygraphs/dygraph.min.js ] ||
	{ echo "libjs-dygraphs is missing (quickstart.sh test installs it)"; exit 99; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
OUT="$top_builddir/tests/it_dashboard.out"
rm -rf "$OUT"
mkdir -p "$OUT"
TOKEN_FILE="$JP_TMP/dashboard.token"
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
state() { jp_ctl status "$1" 2>&1 | awk '$1 == "state:" { print $2 }'; }

# A job of "flaky" fails until the file ok exists; "sleep" jobs run until cancelled.
cat >"$JP_TMP/flaky.sh" <<SH
#!/bin/sh
[ -e "$JP_TMP/ok" ] || { echo "not yet: $JP_TMP/ok is missing" >&2; exit 3; }
cat
SH
chmod +x "$JP_TMP/flaky.sh"
conf() {
	echo "metrics_listen = \"127.0.0.1:$PORT\";
events_ring = 1024;
dashboard_dir = \"$top_srcdir/dashboard\";
$1
queues = (
	{ name = \"ok\"; handler = \"echo\"; workers = 2; },
	{ name = \"flaky\"; handler = \"exec:$JP_TMP/flaky.sh\"; workers = 1; retries = 0; },
	{ name = \"sleep\"; handler = \"sleep\"; workers = 1; batch = 1; }
);"
}
# adm: a group Debian always has, as the administrators' (root can give it the file).
jp_start "$(conf 'dashboard_actions = true; admin_groups = [ "adm" ];')"

# ----- 2 (first part). The token file -----
jp_ok_until "the token file is written" 5 test -s "$TOKEN_FILE"
TOKEN=$(cat "$TOKEN_FILE")
jp_match "the token is 48 hex digits" '^[0-9a-f]{48}$' "$TOKEN"
jp_eq "the token file is 0640" 640 "$(stat -c %a "$TOKEN_FILE")"
if [ "$(id -u)" = 0 ]; then
	jp_eq "its group is the first of admin_groups" adm "$(stat -c %G "$TOKEN_FILE")"
fi
jp_match "the log says where the token is" "dashboard: actions on; the token is in $TOKEN_FILE" "$(jp_log)"

# A job with an idempotency token: its job.queued carries idem (early in the ring).
jp_ctl submit -q ok --idem dash-1 x0 >/dev/null
DEAD=$(jp_ctl submit -q flaky payload1)
jp_eq_until "a flaky job is dead" dead 10 state "$DEAD"
RUNNING=$(jp_ctl submit -q sleep 60000)
jp_eq_until "a sleep job runs" running 10 state "$RUNNING"
for i in $(seq 10); do jp_ctl submit -q ok "x$i" >/dev/null; done

# ----- 1. JSON and events against the schema -----
if "$PY" "$top_srcdir/tests/dashboard_schema.py" "$top_srcdir/doc/dashboard.schema.json" \
	"$URL" --job "$DEAD" --job "$RUNNING" --events 20 >"$JP_TMP/schema.out" 2>&1; then
	jp_pass "the dashboard's JSON and events match doc/dashboard.schema.json"
else
	jp_fail "dashboard_schema.py:"
	cat "$JP_TMP/schema.out" >&2
fi
# A reader that stops: the ring (events_ring 1024) overtakes it; read again, one gap.
if "$PY" "$top_srcdir/tests/dashboard_schema.py" "$top_srcdir/doc/dashboard.schema.json" \
	"$URL" --stall "$JOBPOOLCTL" ok 20000 >"$JP_TMP/stall.out" 2>&1; then
	jp_pass "a stalled stream: its loss counted, then one overrun gap and the events after it"
else
	jp_fail "a stalled stream:"
	cat "$JP_TMP/stall.out" >&2
fi
jp_match "/api/dead lists the dead job with its error, not its payload" \
	"\"id\":$DEAD,\"queue\":\"flaky\".*\"error\":\"exit status 3: not yet: " "$(curl -s "$URL/api/dead")"
if curl -s "$URL/api/dead" "$URL/api/job?id=$DEAD" | grep -q payload1; then
	jp_fail "a payload is shown"
else
	jp_pass "no payload is shown"
fi

# ----- 2. Actions refused, then allowed -----
jp_eq "POST without the token is 403" 403 "$(code -X POST -H "Origin: $URL" "$URL/api/retry?id=$DEAD")"
jp_eq "POST with a wrong token is 403" 403 \
	"$(code -X POST -H "Origin: $URL" -H "X-Jobpool-Token: 00$TOKEN" "$URL/api/retry?id=$DEAD")"
jp_eq "POST from another origin is 403" 403 \
	"$(code -X POST -H "Origin: http://evil.example" -H "X-Jobpool-Token: $TOKEN" "$URL/api/retry?id=$DEAD")"
jp_eq "POST with no Origin or Referer is 403" 403 \
	"$(code -X POST -H "X-Jobpool-Token: $TOKEN" "$URL/api/retry?id=$DEAD")"
jp_match "the 403 says why" 'cross-site' \
	"$(curl -s -X POST -H "Origin: http://evil.example" -H "X-Jobpool-Token: $TOKEN" "$URL/api/retry?id=$DEAD")"
jp_eq "GET of an action is 405" 405 "$(code "$URL/api/retry?id=$DEAD")"
jp_eq "pause without the token is 403" 403 "$(code -X POST -H "Origin: $URL" "$URL/api/pause?queue=ok")"
jp_eq "pause from another origin is 403" 403 \
	"$(code -X POST -H "Origin: http://evil.example" -H "X-Jobpool-Token: $TOKEN" "$URL/api/pause?queue=ok")"
jp_eq "GET of a pause is 405" 405 "$(code "$URL/api/pause?queue=ok")"
jp_eq "the refused pause paused nothing" 0 "$(jp_stat queue ok paused)"
jp_match "pause names a missing queue" '"error":"no queue .nope."' \
	"$(curl -s -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/pause?queue=nope")"
jp_match "and a bad name" '"error":"queue: a queue name is needed' \
	"$(curl -s -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/resume?queue=a/b")"
# valid NAME JSON: the body matches doc/dashboard.schema.json's NAME.
valid() {
	"$PY" -c 'import json, sys; sys.path.insert(0, sys.argv[1]); import dashboard_schema as d
root = json.load(open(sys.argv[2])); bad = d.validate(root[sys.argv[3]], json.loads(sys.argv[4]), root)
print("; ".join(bad) if bad else "valid")' "$top_srcdir/tests" "$top_srcdir/doc/dashboard.schema.json" "$1" "$2"
}
body=$(curl -s -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/pause?queue=sleep")
jp_eq "pause with the token: its reply" '{"ok":true,"queue":"sleep","paused":true}' "$body"
jp_eq "which the schema describes" valid "$(valid queue_action "$body")"
jp_eq "STATS says it" 1 "$(jp_stat queue sleep paused)"
body=$(curl -s -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/resume?queue=sleep")
jp_eq "resume with the token" '{"ok":true,"queue":"sleep","paused":false}' "$body"
jp_eq "STATS says it" 0 "$(jp_stat queue sleep paused)"
jp_match_until "the events say who: the daemon's uid" "type=queue.unpaused queue=sleep uid=$(id -u)" 10 \
	jp_ctl events --type 'queue.*paused'
ev=$(jp_ctl --json events --type queue.paused | tail -1)
jp_eq "a queue.paused event matches the schema" valid "$(valid event "$ev")"
jp_eq "POST of the page is 405" 405 "$(code -X POST "$URL/")"
jp_eq "HEAD of the event stream: its headers, no stream" 200 "$(code -I "$URL/api/events")"
jp_eq "and no stream is left open" 0 "$(curl -s "$URL/api/info" | sed 's/.*"streams":\([0-9]*\).*/\1/')"
jp_eq "the refused job is still dead" dead "$(state "$DEAD")"
jp_match "cancel with the token and the page's origin" '"state":"cancell' \
	"$(curl -s -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/cancel?id=$RUNNING")"
jp_eq_until "jobpoolctl: the running job is cancelled" cancelled 10 state "$RUNNING"

# browser WHAT NAME URL ARGS...: tests/dashboard_browser.py's checks of the page at URL,
# the queues of this daemon and the event list growing under jobs of "ok"; its
# screenshots and its checks kept in $OUT/NAME.
browser() {
	local what=$1 name=$2 url=$3
	shift 3
	if "$PY" "$top_srcdir/tests/dashboard_browser.py" check "$url" "$OUT/$name" \
		--queues ok,flaky,sleep --ctl "$JOBPOOLCTL" --grow ok "$@" \
		>"$JP_TMP/browser.out" 2>&1; then
		jp_pass "in chromium, $what: $(grep -c '^ok' "$JP_TMP/browser.out") checks"
	else
		jp_fail "in chromium, $what:"
		cat "$JP_TMP/browser.out" >&2
	fi
	cp "$JP_TMP/browser.out" "$OUT/$name/checks.txt" 2>/dev/null
}

# ----- 3. In the browser, with dygraphs and the token -----
touch "$JP_TMP/ok"
browser "with dygraphs" dygraphs "$URL/#token=$TOKEN" --chart dygraphs --retry "$DEAD" \
	--pause ok --witness flaky
jp_eq "the job retried from the page is done" done "$(state "$DEAD")"
jp_match "the log names the action" "dashboard: job $DEAD queued again from 127.0.0.1" "$(jp_log)"
jp_match "and the pause" "dashboard: queue ok paused from 127.0.0.1" "$(jp_log)"
jp_eq "the queue paused from the page was resumed from it" 0 "$(jp_stat queue ok paused)"

# ----- 4. No chart library, read-only -----
rm -f "$JP_TMP/ok"
mkdir -p "$JP_TMP/nojs"
DEAD2=$(jp_ctl submit -q flaky payload2)
jp_eq_until "another flaky job is dead" dead 10 state "$DEAD2"
jp_config "$(conf "dashboard_javascript = \"$JP_TMP/nojs\";")" >/dev/null
jp_ctl reload >/dev/null
jp_match_until "after the reload: no chart library, actions off" '"actions":false.*"chart":null' 10 \
	curl -s "$URL/api/info"
jp_eq "the token is refused now" 403 \
	"$(code -X POST -H "Origin: $URL" -H "X-Jobpool-Token: $TOKEN" "$URL/api/retry?id=$DEAD2")"
browser "without dygraphs (SVG), read-only" svg "$URL/" --chart svg --readonly
jp_eq "the read-only page retried nothing" dead "$(state "$DEAD2")"
for f in dygraphs/desktop dygraphs/phone dygraphs/wall svg/desktop svg/phone; do
	jp_eq "screenshot $f.png kept" PNG "$(head -c 4 "$OUT/$f.png" 2>/dev/null | tail -c 3)"
done

# ----- 5. A stream open at the stop; the dashboard off -----
curl -sN "$URL/api/events" >"$JP_TMP/stream.out" 2>/dev/null &
BG="$BG $!"
jp_match_until "a stream is counted" '^jobpool_dashboard_streams 1$' 10 \
	eval "curl -s '$URL/metrics' | grep '^jobpool_dashboard_streams'"
jp_match_until "and is an event subscriber" 'from=dashboard' 10 badclient stats "$JP_SOCK"
jp_ctl submit -q ok after >/dev/null
jp_match_until "it hears the jobs" '"type":"job.succeeded"' 10 cat "$JP_TMP/stream.out"
jp_config "$(conf 'dashboard = false;')" >/dev/null
jp_ctl reload >/dev/null
jp_eq_until "dashboard = false: / is 404" 404 10 code "$URL/"
jp_eq "and /api/info too" 404 "$(code "$URL/api/info")"
jp_eq "/status still serves" 200 "$(code "$URL/status")"
jp_stop
jp_eq "the token file is removed at exit" gone "$([ -e "$TOKEN_FILE" ] && echo there || echo gone)"
jp_done
