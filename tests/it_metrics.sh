#!/usr/bin/env bash
# it_metrics.sh: the HTTP exporter as Prometheus and a dashboard see it. jobpoold with
# metrics_listen on 127.0.0.1 and a free port runs jobs that succeed, fail (retried,
# then dead), kill their worker, and are cancelled while running; /metrics is scraped
# with curl while they run, each scrape passing `promtool check metrics`; then the
# counters equal the jobs run (and STATS), /status parses as JSON with the documented
# keys and the same counts, other paths are 404 and other methods 405 (with Allow),
# HEAD has no body, oversized headers are refused and an idle connection is closed,
# with the daemon still serving. A reload moves the listener; a reload to an address
# that cannot be bound keeps the old one and the log says why; "" turns it off. With a
# journal, its fdatasync histogram counts the journal's fsyncs. A start on a port in use
# fails with the reason (exit 71).
. "$top_srcdir/tests/lib.sh"

command -v curl >/dev/null 2>&1 || { echo "curl is missing (quickstart.sh test installs it)"; exit 99; }
if ! command -v promtool >/dev/null 2>&1; then
	echo "promtool is missing: install Debian's prometheus package (quickstart.sh test does)"
	exit 99
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

# A free port on 127.0.0.1 (the kernel's pick; free again once this returns).
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"

# metrics [URL]: the /metrics body.
metrics() { curl -sf --max-time 5 "${1:-$URL}/metrics"; }
# m SAMPLE: one sample's value, e.g. m 'jobpool_jobs_total{queue="ok",outcome="succeeded"}'.
m() { metrics | awk -v k="$1" 'index($0, k " ") == 1 { print $2; f = 1; exit } END { if (!f) print "none" }'; }
# promtool_ok: one scrape passes promtool's parser and linter.
promtool_ok() {
	metrics >"$JP_TMP/scrape" || { echo "scrape failed" >"$JP_TMP/promtool.out"; return 1; }
	promtool check metrics <"$JP_TMP/scrape" >"$JP_TMP/promtool.out" 2>&1
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

cat >"$JP_TMP/die.sh" <<'SH'
#!/bin/sh
# Kill the worker running this program.
kill -KILL "$PPID"
sleep 5
SH
chmod +x "$JP_TMP/die.sh"

body="metrics_listen = \"127.0.0.1:$PORT\";
shutdown_timeout = 2;
queues = (
	{ name = \"ok\"; handler = \"echo\"; workers = 2; },
	{ name = \"fail\"; handler = \"exec:/bin/false\"; workers = 1; retries = 1;
	  backoff_base = 0.01; backoff_max = 0.01; },
	{ name = \"die\"; handler = \"exec:$JP_TMP/die.sh\"; workers = 1; retries = 0; batch = 1; },
	{ name = \"sleep\"; handler = \"sleep\"; workers = 2; batch = 1; }
);"
jp_start "$body"
jp_match "the log says where metrics are served" \
	"metrics: serving /metrics and /status on http://127.0.0.1:$PORT" "$(jp_log)"

# ----- before any job: valid, every queue there at 0 -----
jp_ok_until "promtool passes an idle daemon's /metrics" 10 promtool_ok || cat "$JP_TMP/promtool.out" >&2
jp_eq "succeeded at start" 0 "$(m 'jobpool_jobs_total{queue="ok",outcome="succeeded"}')"
jp_eq "sleep workers idle at start" 2 "$(m 'jobpool_workers{queue="sleep",state="idle"}')"
jp_match "Content-Type is the text format 0.0.4" 'text/plain; version=0\.0\.4' \
	"$(curl -s -D - -o /dev/null "$URL/metrics")"

# ----- jobs that fail, die and are cancelled while running -----
for i in 1 2 3 4 5; do jp_ctl submit -q fail "f$i" >/dev/null; done
for i in 1 2 3; do jp_ctl submit -q die "d$i" >/dev/null; done
ids=
for i in 1 2 3 4; do ids="$ids $(jp_ctl submit -q sleep 30000)"; done
jp_eq_until "two sleep jobs running, two queued" "2 2" 10 eval \
	"echo \$(m 'jobpool_queue_jobs{queue=\"sleep\",state=\"running\"}') \$(m 'jobpool_queue_jobs{queue=\"sleep\",state=\"queued\"}')"
jp_eq_until "both sleep workers busy" 2 10 m 'jobpool_workers{queue="sleep",state="busy"}'
# Their waits and ages grow: the oldest queued job's wait, each running job's age.
positive() { awk -v v="$(m "$1")" 'BEGIN { exit !(v + 0 > 0.2) }'; }
jp_ok_until "the oldest queued sleep job's wait passes 0.2 s" 10 \
	positive 'jobpool_queue_oldest_wait_seconds{queue="sleep"}'
jp_ok_until "a running sleep job's age passes 0.2 s" 10 \
	positive 'jobpool_worker_job_age_seconds{queue="sleep",worker="0"}'
# die's three jobs may still wait for a worker its crash-loop backoff holds back: once
# they are dead, nothing waits there.
jp_eq_until "an idle queue's oldest wait is 0" 0 10 m 'jobpool_queue_oldest_wait_seconds{queue="die"}'

# ----- scraped while a stream of jobs runs: every scrape passes promtool -----
seq 1 100000 >"$JP_TMP/in"
jp_ctl map -q ok <"$JP_TMP/in" >"$JP_TMP/map.out" 2>"$JP_TMP/map.err" &
mapper=$!
BG="$BG $mapper"
bad=0 scrapes=0 moving=0 last=
while kill -0 "$mapper" 2>/dev/null || [ "$scrapes" -lt 3 ]; do
	if ! promtool_ok; then
		bad=$((bad + 1))
		cp "$JP_TMP/scrape" "$JP_TMP/scrape.bad"
		cat "$JP_TMP/promtool.out" >&2
	fi
	v=$(awk '/^jobpool_jobs_total\{queue="ok",outcome="succeeded"\}/ { print $2 }' "$JP_TMP/scrape")
	[ -n "$last" ] && [ "$v" != "$last" ] && moving=$((moving + 1))
	last=$v
	scrapes=$((scrapes + 1))
	[ "$scrapes" -ge 200 ] && break
done
wait "$mapper"
jp_eq "map of 100,000 jobs while scraped" 0 $?
BG=
jp_eq "scrapes during the map failing promtool (of $scrapes)" 0 "$bad"
jp_eq "map's output is whole" 100000 "$(wc -l <"$JP_TMP/map.out")"
echo "ok: $scrapes scrapes during the map, the succeeded counter moved between $moving of them"

# A client's cancel of running and queued jobs.
jp_ctl cancel $ids >/dev/null 2>&1

# ----- the counters equal the jobs run -----
jp_eq_until "succeeded{ok}" 100000 30 m 'jobpool_jobs_total{queue="ok",outcome="succeeded"}'
jp_eq_until "submitted{ok}" 100000 10 m 'jobpool_jobs_submitted_total{queue="ok"}'
jp_eq_until "dead{fail}: out of attempts" 5 30 m 'jobpool_jobs_total{queue="fail",outcome="dead"}'
jp_eq "retried{fail}: one retry each" 5 "$(m 'jobpool_jobs_total{queue="fail",outcome="retried"}')"
jp_eq "succeeded{fail}" 0 "$(m 'jobpool_jobs_total{queue="fail",outcome="succeeded"}')"
jp_eq_until "dead{die}: their worker was killed" 3 30 m 'jobpool_jobs_total{queue="die",outcome="dead"}'
jp_eq_until "worker deaths{die}" 3 30 m 'jobpool_worker_deaths_total{queue="die"}'
jp_eq_until "cancelled{sleep}" 4 30 m 'jobpool_jobs_total{queue="sleep",outcome="cancelled"}'
jp_eq "submitted{sleep}" 4 "$(m 'jobpool_jobs_submitted_total{queue="sleep"}')"
jp_eq_until "nothing left running{sleep}" 0 10 m 'jobpool_queue_jobs{queue="sleep",state="running"}'
jp_eq "dead jobs held{fail}" 5 "$(m 'jobpool_queue_jobs{queue="fail",state="dead"}')"
jp_eq "the same as STATS: done{ok}" "$(jp_stat queue ok done)" \
	"$(m 'jobpool_jobs_total{queue="ok",outcome="succeeded"}')"
jp_eq "the same as STATS: failed{die}" "$(jp_stat queue die failed)" \
	"$(m 'jobpool_jobs_total{queue="die",outcome="dead"}')"
# The latency histograms count what ran: every job of ok started once and ran once;
# each of fail's 5 jobs ran twice.
jp_eq "wait histogram{ok}: a start per job" 100000 "$(m 'jobpool_job_wait_seconds_count{queue="ok"}')"
jp_eq "run histogram{ok}: an attempt per job" 100000 "$(m 'jobpool_job_run_seconds_count{queue="ok"}')"
jp_eq "run histogram{fail}: two attempts per job" 10 "$(m 'jobpool_job_run_seconds_count{queue="fail"}')"
jp_eq "run histogram{ok}: echo jobs are done within a second" 100000 \
	"$(m 'jobpool_job_run_seconds_bucket{queue="ok",le="1"}')"
jp_ok_until "promtool passes after the jobs" 10 promtool_ok || cat "$JP_TMP/promtool.out" >&2
jp_match "a worker's RSS is reported" '^[1-9][0-9]*$' \
	"$(m 'jobpool_worker_resident_memory_bytes{queue="ok",worker="0"}')"
# The wait and run histograms are consistent (+Inf is _count; buckets never decrease).
jp_eq "histograms are cumulative and end at _count" ok "$(metrics | awk '
	/^jobpool_job_(wait|run)_seconds_bucket/ {
		split($1, a, ",le="); k = a[1]
		if (k in last && $2 < last[k]) bad = 1
		last[k] = $2; if ($1 ~ /le="\+Inf"/) inf[k] = $2 }
	/^jobpool_job_(wait|run)_seconds_count/ {
		k = $1; sub(/_count\{/, "_bucket{", k); sub(/\}$/, "", k); cnt[k] = $2 }
	END { for (k in inf) if (inf[k] != cnt[k]) bad = 1
		n = 0; for (k in inf) n++
		print (bad || n != 8) ? "bad" : "ok" }')"

# ----- /status: JSON with the documented keys and the same counts -----
curl -sf "$URL/status" >"$JP_TMP/status.json"
jp_eq "/status parses as JSON, with the documented keys and counts" ok "$("$PY" - "$JP_TMP/status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1, d["version"]
dm = d["daemon"]
for k in ("version", "pid", "start_time", "uptime_seconds", "connections", "jobs",
          "dead_jobs", "stopping", "rss_bytes", "cpu_seconds", "journal"):
    assert k in dm, k
assert dm["stopping"] is False and dm["journal"] is None
qs = {q["name"]: q for q in d["queues"]}
assert sorted(qs) == ["die", "fail", "ok", "sleep"], sorted(qs)
for q in qs.values():
    for k in ("state", "reason", "handler", "workers", "queued", "delayed", "retry_wait",
              "running", "busy", "dead", "bytes", "blocked", "max_jobs", "max_bytes",
              "jobs", "worker_deaths", "oldest_wait", "throughput", "wait", "run"):
        assert k in q, k
    for k in ("count", "sum", "p50", "p90", "p99", "p999", "max"):
        assert k in q["wait"] and k in q["run"], k
assert qs["ok"]["jobs"]["succeeded"] == 100000, qs["ok"]["jobs"]
assert qs["ok"]["jobs"]["submitted"] == 100000
assert qs["fail"]["jobs"]["dead"] == 5 and qs["fail"]["jobs"]["retried"] == 5
assert qs["die"]["jobs"]["dead"] == 3 and qs["die"]["worker_deaths"] >= 3
assert qs["sleep"]["jobs"]["cancelled"] == 4
assert qs["fail"]["handler"] == "exec:/bin/false"
ws = d["workers"]
assert sum(1 for w in ws if w["queue"] == "ok") == 2
for w in ws:
    for k in ("queue", "slot", "pid", "state", "jobs", "inflight", "rss_bytes", "cpu_seconds",
              "job", "age"):
        assert k in w, k
    assert (w["job"] is None) == (w["inflight"] == 0), w
for k in ("1m", "5m", "15m"):
    assert k in qs["ok"]["throughput"], k
assert qs["ok"]["wait"]["count"] == 100000 and qs["ok"]["run"]["count"] == 100000
print("ok")
PY
)"
jp_match "/status is served as JSON" 'Content-Type: application/json' \
	"$(curl -s -D - -o /dev/null "$URL/status")"

# ----- paths, methods, bounds -----
jp_eq "another path is 404" 404 "$(code "$URL/nothing")"
jp_eq "a path under /metrics is 404" 404 "$(code "$URL/metrics/x")"
jp_eq "a query string is ignored" 200 "$(code "$URL/metrics?x=1")"
jp_eq "POST is 405" 405 "$(code -X POST "$URL/metrics")"
jp_eq "DELETE on /status is 405" 405 "$(code -X DELETE "$URL/status")"
jp_match "405 says what is allowed" 'Allow: GET, HEAD' "$(curl -s -D - -o /dev/null -X PUT "$URL/metrics")"
jp_eq "HEAD is 200" 200 "$(code -I "$URL/metrics")"
jp_eq "HEAD has no body" 0 "$(curl -s -I "$URL/metrics" | sed '1,/^\r$/d' | wc -c)"
big=$(head -c 20000 /dev/zero | tr '\0' 'x')
jp_match "20 KB of headers are refused" '^(4[0-9][0-9]|000)$' "$(code -H "X-Big: $big" "$URL/metrics")"
# An idle connection is closed by the daemon (evhttp's timeout), and it serves on.
"$PY" - "$PORT" >"$JP_TMP/idle.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(60)
t = time.time()
s.sendall(b"GET /metrics HTTP/1.1\r\n")   # and never the rest
try:
    data = s.recv(4096)
    while data:
        data = s.recv(4096)
    print("closed")
except OSError as e:
    print("error", e)
PY
idle=$!
BG="$BG $idle"
jp_eq "still serving with an idle connection open" 200 "$(code "$URL/metrics")"
wait "$idle"
BG=
jp_eq "the idle connection was closed by the daemon" closed "$(cat "$JP_TMP/idle.out")"

# ----- reload: move, keep on failure, turn off -----
PORT2=$(free_port)
jp_config "${body/127.0.0.1:$PORT/127.0.0.1:$PORT2}" >/dev/null
jp_ctl reload >/dev/null
jp_eq_until "a reload moves it to the new port" 200 10 code "http://127.0.0.1:$PORT2/metrics"
jp_eq "the old port is closed" 000 "$(code "$URL/metrics")"
URL="http://127.0.0.1:$PORT2"
jp_eq "counters survive the reload" 100000 "$(m 'jobpool_jobs_total{queue="ok",outcome="succeeded"}')"

# A port someone else holds: the reload keeps the old listener and says why. The holder
# keeps it until the test kills it, after the start on it at the end (a 60 s hold ran out
# first in a loaded package build's make check, and that start succeeded).
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$JP_TMP/holder.port" &
holder=$!
BG="$BG $holder"
jp_until 10 test -s "$JP_TMP/holder.port"
HELD=$(cat "$JP_TMP/holder.port")
jp_config "${body/127.0.0.1:$PORT/127.0.0.1:$HELD}" >/dev/null
jp_ctl reload >/dev/null
jp_match_until "a port in use: the log says why and what stays" \
	"reload: metrics_listen 127.0.0.1:$HELD: bind: Address already in use; still serving metrics on 127.0.0.1:$PORT2" \
	10 jp_log
jp_eq "the old listener still serves" 200 "$(code "$URL/metrics")"

# "" turns it off.
jp_config "${body/127.0.0.1:$PORT/}" >/dev/null
jp_ctl reload >/dev/null
jp_match_until "off: the log says so" "reload: metrics_listen is off: no longer serving on 127.0.0.1:$PORT2" 10 jp_log
jp_eq "off: nothing listens" 000 "$(code "$URL/metrics")"
jp_stop

# ----- with a journal: its fdatasync times, one observation per fsync -----
PORT3=$(free_port)
URL="http://127.0.0.1:$PORT3"
jp_start "metrics_listen = \"127.0.0.1:$PORT3\";
journal_dir = \"$JP_TMP/journal\";
journal_fsync = \"always\";
queues = ( { name = \"ok\"; handler = \"echo\"; workers = 2; } );"
seq 1 300 | jp_ctl map -q ok >/dev/null
fsyncs_agree() {
	local a b
	a=$(m 'jobpool_journal_fsync_seconds_count')
	b=$(jp_stat journal fsyncs)
	[ "$a" = "$b" ] && [ "$a" -gt 0 ] 2>/dev/null
}
jp_ok_until "jobpool_journal_fsync_seconds_count is the journal's fsyncs (STATS)" 10 fsyncs_agree
jp_match "... with a sum" '^[0-9.e+-]+$' "$(m 'jobpool_journal_fsync_seconds_sum')"
jp_eq "... and the +Inf bucket" "$(m 'jobpool_journal_fsync_seconds_count')" \
	"$(m 'jobpool_journal_fsync_seconds_bucket{le="+Inf"}')"
jp_eq "the journal's state" 0 "$(m 'jobpool_journal_failing')"
jp_ok_until "promtool passes with the journal's families" 10 promtool_ok || cat "$JP_TMP/promtool.out" >&2
jp_eq "/status has the journal" "always ok" "$(curl -sf "$URL/status" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)["daemon"]["journal"]
print(j["fsync"], j["state"])')"
jp_stop

# ----- a start on a port in use fails, saying why -----
jp_config "${body/127.0.0.1:$PORT/127.0.0.1:$HELD}" >/dev/null
timeout 20 "$JOBPOOLD" -c "$JP_TMP/jobpool.conf" >"$JP_TMP/busy.log" 2>&1
jp_eq "a start on a port in use exits 71 (EX_OSERR)" 71 $?
jp_match "and says why" "metrics_listen 127.0.0.1:$HELD: bind: Address already in use" \
	"$(cat "$JP_TMP/busy.log")"
kill "$holder" 2>/dev/null
BG=

jp_done
