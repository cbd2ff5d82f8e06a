#!/usr/bin/env bash
# PAUSE and RESUME (issue 20's last action): a paused queue takes jobs, up to its limits
# (backpressure as usual), and starts none; RESUME runs what waited. Through the
# protocol (errors naming the field) and jobpoolctl pause/resume; administrators only
# (another user is refused, and jobpoolctl says why); STATS paused=1 and state=paused
# with its reason, STATUS paused=1, jobpoolctl status; the events queue.paused and
# queue.unpaused with the uid; /metrics' jobpool_queue_paused and /status' "paused";
# `paused = true;` in a queue's config; and a pause survives a reload.
. "$top_srcdir/tests/lib.sh"

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v curl >/dev/null 2>&1 || { echo "curl is missing (quickstart.sh test installs it)"; exit 99; }
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
m() { curl -sf --max-time 5 "$URL/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { print $2; f = 1; exit } END { if (!f) print "none" }'; }
state_of() { jp_ctl status "$1" 2>&1 | awk -F': ' '$1 == "state" { print $2 }'; }
status_line() { printf 'STATUS %s\nQUIT\n' "$1" | raw | head -1; }

chmod 755 "$JP_TMP"
CONF="socket_mode = \"0666\";
metrics_listen = \"127.0.0.1:$PORT\";
queues = (
  { name = \"default\"; handler = \"echo\"; workers = 2; },
  { name = \"other\"; handler = \"echo\"; workers = 1; },
  { name = \"held\"; handler = \"echo\"; workers = 1; paused = true; },
  { name = \"small\"; handler = \"echo\"; workers = 1; max_jobs = 2; },
  { name = \"slow\"; handler = \"sleep\"; workers = 1; batch = 1; }
);"
jp_start "$CONF"

# --- the protocol's errors name the field ----------------------------------------------
jp_eq "PAUSE and RESUME refuse bad requests, naming what is wrong" \
"ERR proto PAUSE: missing queue name
ERR proto PAUSE: unexpected argument 'b'
ERR proto PAUSE: bad queue name 'no/such'
ERR noqueue PAUSE: no queue 'nosuch'
ERR proto RESUME: missing queue name
ERR noqueue RESUME: no queue 'nosuch'
OK bye" "$(printf 'PAUSE\nPAUSE a b\nPAUSE no/such\nPAUSE nosuch\nRESUME\nRESUME nosuch\nQUIT\n' | raw)"
jp_eq "nothing was paused by them" 0 "$(jp_stat queue default paused)"

# --- administrators only --------------------------------------------------------------
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	out=$(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
		"$JOBPOOLCTL" pause default 2>&1); rc=$?
	jp_match "another user's pause is refused, and jobpoolctl says why" \
		"denied.*PAUSE is for administrators.*uid $(id -u nobody) is not one" "$out"
	jp_eq "and exits non-zero" 1 "$([ "$rc" -ne 0 ] && echo 1)"
	out=$(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
		"$JOBPOOLCTL" resume held 2>&1)
	jp_match "so is a resume" "denied.*RESUME is for administrators" "$out"
	jp_eq "the queue is not paused" 0 "$(jp_stat queue default paused)"
	jp_eq "the held queue still is" 1 "$(jp_stat queue held paused)"
else
	echo "skipped the other user's refusal: no setpriv or no user nobody"
fi

# --- pause: jobs are taken, none starts ------------------------------------------------
jp_eq "jobpoolctl pause says it" "paused default" "$(jp_ctl pause default)"
jp_eq "STATS: paused=1" 1 "$(jp_stat queue default paused)"
jp_eq "STATS: state=paused" paused "$(jp_stat queue default state)"
jp_eq "a second pause is no error" "paused default" "$(jp_ctl pause default)"
A=$(jp_ctl submit -q default alpha)
B=$(jp_ctl submit -q default beta)
# Another queue's job runs to its end: passes of the loop went by with A and B ready.
jp_eq "other queues go on" "gamma" "$(jp_ctl submit -w -q other gamma)"
jp_eq "a job of the paused queue stays queued" queued "$(state_of "$A")"
jp_match "STATUS says its queue is paused" "^OK id=$A queue=default state=queued .*paused=1" \
	"$(status_line "$A")"
jp_eq "nothing of the paused queue ran" "2 0 0" \
	"$(jp_stat queue default depth) $(jp_stat queue default running) $(jp_stat queue default done)"
jp_match "jobpoolctl status shows it paused" "default +paused" "$(jp_ctl status)"
jp_match "and why, under the table" "queue default: paused: paused by uid 0 \(RESUME to go on\)" \
	"$(jp_ctl status)"
jp_match "the log says who" "queue default: paused by uid 0" "$(jp_log)"
jp_eq "/metrics: jobpool_queue_paused 1" 1 "$(m 'jobpool_queue_paused{queue="default"}')"
jp_eq "and 0 for a running queue" 0 "$(m 'jobpool_queue_paused{queue="other"}')"
jp_match "/status: \"paused\":true" '"name":"default","state":"paused",([^}]*,)?"paused":true' \
	"$(curl -sf --max-time 5 "$URL/status")"

# --- a reload keeps it ----------------------------------------------------------------
jp_eq "reload" reloaded "$(jp_ctl reload)"
jp_eq "the pause survives a reload" 1 "$(jp_stat queue default paused)"
jp_eq "other queues go on after it" "delta" "$(jp_ctl submit -w -q other delta)"
jp_eq "and the jobs still wait" queued "$(state_of "$B")"

# --- resume: what waited runs ---------------------------------------------------------
jp_eq "jobpoolctl resume says it" "resumed default" "$(jp_ctl resume default)"
jp_eq "the jobs that waited run" "alpha
beta" "$(jp_ctl wait "$A" "$B")"
jp_eq "STATS: paused=0" 0 "$(jp_stat queue default paused)"
jp_eq "STATS: state=running" running "$(jp_stat queue default state)"
jp_eq "/metrics: jobpool_queue_paused 0" 0 "$(m 'jobpool_queue_paused{queue="default"}')"
jp_eq "new jobs run at once" "epsilon" "$(jp_ctl submit -w -q default epsilon)"
jp_match "STATUS of a job of a running queue has no paused=" "^OK id=$A .*state=done" \
	"$(status_line "$A")"
jp_eq "... and no paused=1" "" "$(status_line "$A" | grep -o 'paused=1')"

# --- a running job finishes; its STATUS says nothing of the pause ----------------------
R=$(jp_ctl submit -q slow 1500)
jp_eq_until "a slow job runs" running 10 state_of "$R"
jp_ctl pause slow >/dev/null
W=$(jp_ctl submit -q slow 1)
jp_eq "STATUS of the running job: no paused=1" "" "$(status_line "$R" | grep -o 'paused=1')"
jp_match "STATUS of the one waiting: paused=1" "state=queued .*paused=1" "$(status_line "$W")"
jp_eq_until "the running job finishes while its queue is paused" done 10 state_of "$R"
jp_eq "the one behind it waits" queued "$(state_of "$W")"
jp_ctl resume slow >/dev/null
jp_eq_until "and runs once resumed" done 10 state_of "$W"

# --- the events -----------------------------------------------------------------------
jp_match_until "queue.paused is an event, with the uid" \
	"type=queue.paused queue=default uid=0" 10 jp_ctl events --type 'queue.*'
jp_match "queue.unpaused too" "type=queue.unpaused queue=default uid=0" \
	"$(jp_ctl events --type 'queue.*')"
jp_match "in JSON" '"type":"queue.unpaused","queue":"default"' \
	"$(jp_ctl --json events --type 'queue.unpaused')"

# --- paused = true; in the config -----------------------------------------------------
jp_eq "paused = true: made paused" "paused 1" \
	"$(jp_stat queue held state) $(jp_stat queue held paused)"
jp_match "and says so" "queue held: paused: paused by its config" "$(jp_ctl status)"
H=$(jp_ctl submit -q held zeta)
jp_eq "other queues go on" "eta" "$(jp_ctl submit -w -q other eta)"
jp_eq "its job waits" queued "$(state_of "$H")"
jp_eq "resume" "resumed held" "$(jp_ctl resume held)"
jp_eq "and it runs" zeta "$(jp_ctl wait "$H")"
jp_eq "a reload does not pause it again (the pause is the queue's, not the config's)" \
	"reloaded 0" "$(jp_ctl reload) $(jp_stat queue held paused)"

# --- backpressure as usual ------------------------------------------------------------
jp_ctl pause small >/dev/null
S1=$(jp_ctl submit -q small one)
S2=$(jp_ctl submit -q small two)
jp_match "a full paused queue pushes back" "^ERR busy queue 'small' is full" \
	"$(printf 'SUBMIT small 5 nonblock\nthree\nQUIT\n' | raw | head -1)"
jp_eq "several queues in one jobpoolctl resume" "resumed small
resumed default" "$(jp_ctl resume small default)"
jp_eq "what waited runs" "one
two" "$(jp_ctl wait "$S1" "$S2")"
out=$(jp_ctl pause nosuch other 2>&1); rc=$?
jp_match "jobpoolctl names a queue that is not there" "no queue 'nosuch'" "$out"
jp_match "and goes on with the others" "paused other" "$out"
jp_eq "exit status 1" 1 "$([ "$rc" -ne 0 ] && echo 1)"
jp_ctl resume other >/dev/null
out=$(jp_ctl pause 'bad/name' 2>&1); rc=$?
jp_match "a bad name is refused before connecting" "bad queue name 'bad/name'" "$out"
jp_eq "as a usage error" 2 "$rc"
out=$(jp_ctl pause 2>&1); rc=$?
jp_eq "pause needs a queue" "2" "$rc"

jp_stop
jp_done
