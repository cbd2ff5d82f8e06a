#!/bin/bash
# it_http.sh: handler = "http" (issue 15) against tests/http_server.py, an HTTP/1.1
# keep-alive server on loopback that the test starts and that counts what it sees:
#   - a GET by URL succeeds with the body; a JSON payload sends its method, headers
#     and body; a bad payload fails at once, naming the field;
#   - 503 with Retry-After: retried, no sooner than Retry-After, then succeeds;
#   - 404 fails at once (no retry), the status in the error;
#   - a slow server hits http_timeout: retried, then dead with "timed out";
#   - an oversized response fails at once, naming http_max_response;
#   - only http and https, also across redirects;
#   - keep-alive: 50 requests one after the other use one connection at the server;
#   - 200 requests in flight at once at the server, from 4 worker processes;
#   - a job's timeout and a CANCEL stop one request of several; the worker stays;
#   - per host (two servers, two ports): a job without --key takes its URL's host as
#     its key (STATUS shows it), as a chain's http stage does; max_running_per_key = 1 holds one request per host in
#     flight at each server, both hosts at once; a 429 with Retry-After: 2 from host A
#     pauses host A alone: from the times each server recorded, host B's requests came
#     during the pause, and no request came to host A before it ended;
#   - http_output = "response": status, headers and body as JSON reach a chained exec
#     stage; a body that is not UTF-8 comes in base64; STATUS shows content_type and
#     content_length; a bad http_output is refused with file:line.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }

SRV_PIDS=
trap 'for p in $SRV_PIDS; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT
server_start() {	# server_start NAME: a test server; its port in $JP_TMP/NAME.port
	timeout -s KILL 600 python3 "$top_srcdir/tests/http_server.py" "$JP_TMP/$1.port" \
		>"$JP_TMP/$1.log" 2>&1 &
	SRV_PIDS="$SRV_PIDS $!"
	jp_until 10 test -s "$JP_TMP/$1.port" ||
		{ echo "the test server $1 did not start"; cat "$JP_TMP/$1.log"; exit 99; }
}
server_start main
PORT=$(cat "$JP_TMP/main.port")
U="http://127.0.0.1:$PORT"
stat_at() {	# stat_at URL KEY: a counter of the server at URL
	python3 -c 'import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))[sys.argv[2]])' "$1" "$2"
}
stat_of() { stat_at "$U" "$1"; }	# stat_of KEY: the main server's

# The next stage of an http_output = "response" queue: what it sees of the response.
cat >"$JP_TMP/read.py" <<'EOF'
#!/usr/bin/python3
import json, sys
sys.stdout.reconfigure(encoding="utf-8")
r = json.load(sys.stdin)
h = r["headers"]
print(r["status"], h["x-rate"], h["x-tag"], h["content-type"], h["x-latin"], repr(r["body"]),
      end="")
EOF
chmod +x "$JP_TMP/read.py"

jp_start "queues = (
  { name = \"web\"; handler = \"http\"; workers = 1; concurrency = 8; retries = 2;
    backoff_base = 0.05; backoff_max = 0.1; http_timeout = 0.5;
    http_max_response = 100000; http_max_redirects = 2; },
  { name = \"wide\"; handler = \"http\"; workers = 4; concurrency = 60; max_jobs = 1000; },
  { name = \"alive\"; handler = \"http\"; workers = 1; concurrency = 1; },
  { name = \"one\"; handler = \"http\"; workers = 1; concurrency = 4; retries = 0; },
  { name = \"resp\"; handler = \"http\"; http_output = \"response\"; then = \"read\"; },
  { name = \"respraw\"; handler = \"http\"; http_output = \"response\"; },
  { name = \"read\"; handler = \"exec:$JP_TMP/read.py\"; },
  { name = \"hosts\"; handler = \"http\"; workers = 1; concurrency = 8; retries = 2;
    backoff_base = 0.05; backoff_max = 0.1; max_running_per_key = 1; },
  { name = \"tohosts\"; handler = \"echo\"; then = \"hosts\"; }
);"

status_of() { jp_ctl status "$1" | awk -F': ' -v k="$2" '$1 == k { print $2 }'; }

# --- success, and what a JSON payload sends ------------------------------------------
jp_eq "a GET of a URL: the body" "hello" "$(jp_ctl submit -w -q web "$U/ok")"
id=$(jp_ctl submit -q web "$U/ok")
jp_eq_until "status shows the response's status" 200 10 status_of "$id" http_status
jp_eq "a URL with blanks around it" "hello" "$(jp_ctl submit -w -q web "  $U/ok
")"
jp_eq "JSON: method and body" "PUT data" \
	"$(jp_ctl submit -w -q web "{\"method\": \"PUT\", \"url\": \"$U/echo\", \"body\": \"data\"}")"
jp_eq "JSON: a body alone makes a POST" "POST a\"b" \
	"$(jp_ctl submit -w -q web "{\"url\": \"$U/echo\", \"body\": \"a\\\"b\"}")"
jp_eq "JSON: headers are sent" "v1" \
	"$(jp_ctl submit -w -q web "{\"url\": \"$U/header?name=X-Test\", \"headers\": {\"X-Test\": \"v1\"}}")"
out=$(jp_ctl submit -w -q web '{"url": "'"$U"'/ok", "mehtod": "GET"}' 2>&1); rc=$?
jp_eq "JSON: an unknown key fails" 1 "$rc"
jp_match "... naming it" 'http: payload: unknown key "mehtod"' "$out"
jp_eq "JSON: escapes decoded, \\u as UTF-8" "POST é/☃" \
	"$(jp_ctl submit -w -q web "{\"url\": \"$U/echo\", \"body\": \"\\u00e9\\/\\u2603\"}")"
out=$(jp_ctl submit -w -q web "{\"url\": \"$U/ok\", \"url\": \"$U/ok\"}" 2>&1)
jp_match "JSON: a key twice fails" 'http: payload: "url" given twice' "$out"
out=$(jp_ctl submit -w -q web "{\"url\": \"$U/ok\"} x" 2>&1)
jp_match "JSON: text after the object fails" 'http: payload: text after the object' "$out"
out=$(jp_ctl submit -w -q web "{\"url\": \"$U/ok\\u0000x\"}" 2>&1)
jp_match "JSON: a NUL in the url fails" 'http: payload: "url" has a NUL' "$out"
out=$(jp_ctl submit -w -q web '{"url": 5}' 2>&1)
jp_match "JSON: a url that is not a string, named" 'http: payload: "url" must be a string' "$out"
out=$(jp_ctl submit -w -q web "ftp://127.0.0.1:$PORT/x" 2>&1)
jp_match "only http and https" "is not http:// or https://" "$out"
id=$(jp_ctl dead -q web | awk '/ftp:/ { print $1 }' | tail -1)
jp_eq "a bad payload is not retried" 1 "$(status_of "$id" attempts)"

# --- 503 with Retry-After, then success ----------------------------------------------
out=$(jp_ctl submit -w -q web "$U/flaky?key=ra&fail=1&after=1")
jp_eq "503 with Retry-After, then success" "recovered ra" "$out"
gap=$(python3 -c 'import json, sys, urllib.request
t = json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["flaky"]["ra"]
print(int((t[1] - t[0]) * 1000))' "$U")
if [ "$gap" -ge 1000 ]; then
	jp_pass "the retry waited Retry-After (1 s) and not the backoff (50 ms): ${gap} ms"
else
	jp_fail "the retry came ${gap} ms after the 503, before its Retry-After of 1 s"
fi
out=$(jp_ctl submit -w -q web "$U/flaky?key=busy&fail=9&after=0" 2>&1); rc=$?
jp_eq "503 every time: failed after its retries" 1 "$rc"
jp_match "... with the status in the error" 'HTTP 503 Service Unavailable' "$out"
jp_eq "... after 3 attempts" 3 "$(python3 -c 'import json, sys, urllib.request
print(len(json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["flaky"]["busy"]))' "$U")"

# --- 404 fails at once ---------------------------------------------------------------
before=$(stat_of requests)
out=$(jp_ctl submit -w -q web "$U/status?code=404" 2>&1); rc=$?
jp_eq "404 fails" 1 "$rc"
jp_match "... with the status in the error" "GET $U/status\\?code=404: HTTP 404 Not Found" "$out"
jp_eq "... at once: one request" 1 $(( $(stat_of requests) - before ))
id=$(jp_ctl dead -q web | awk '/code=404/ { print $1 }' | tail -1)
jp_eq "... and its status shows 404" 404 "$(status_of "$id" http_status)"

# --- a slow server: http_timeout -----------------------------------------------------
out=$(jp_ctl submit -w -q web "$U/slow?ms=3000" 2>&1); rc=$?
jp_eq "a slow server times out" 1 "$rc"
jp_match "... saying so" 'timed out \(http_timeout 500 ms' "$out"
id=$(jp_ctl dead -q web | awk '/slow/ { print $1 }' | tail -1)
jp_eq "... retried like a failure" 3 "$(status_of "$id" attempts)"

# --- an oversized response -----------------------------------------------------------
out=$(jp_ctl submit -w -q web "$U/big?bytes=200000" 2>&1); rc=$?
jp_eq "a response above http_max_response fails" 1 "$rc"
jp_match "... clearly" 'the response is larger than http_max_response \(100000 bytes\)' "$out"
jp_eq "... once: it would not get smaller" 1 "$(status_of "$(jp_ctl dead -q web | awk '/big/ { print $1 }' | tail -1)" attempts)"
jp_eq "a response within it is whole" 99999 "$(jp_ctl submit -w -r -q web "$U/big?bytes=99999" | wc -c)"

# --- redirects: followed within http_max_redirects, and only to http(s) ---------------
jp_eq "a redirect is followed" hello "$(jp_ctl submit -w -q web "$U/redirect?to=/ok")"
out=$(jp_ctl submit -w -q web "$U/redirect?to=file:///etc/passwd" 2>&1)
jp_match "a redirect to file:// is refused" 'Protocol "file" not supported|not supported' "$out"

# --- keep-alive: one connection for requests one after the other ---------------------
before=$(stat_of connections)
for i in $(seq 1 50); do echo "$U/ok"; done | jp_ctl map -q alive >"$JP_TMP/alive.out"
jp_eq "50 requests in a row all succeed" 50 "$(grep -c '^hello$' "$JP_TMP/alive.out")"
jp_eq "... over one kept-alive connection" 1 $(( $(stat_of connections) - before ))

# --- 200 in flight from 4 processes --------------------------------------------------
for i in $(seq 1 200); do echo "$U/hold?ms=1500"; done |
	jp_ctl map -q wide -j 400 >"$JP_TMP/wide.out" &
mapper=$!
jp_eq_until "200 requests in flight at the server at once" 200 30 stat_of max_inflight
wait $mapper
jp_eq "... all succeeded" 200 "$(grep -c '^slow$' "$JP_TMP/wide.out")"
jp_eq "... from 4 worker processes" 4 "$(badclient stats "$JP_SOCK" | grep -c '^worker wide ')"

# --- a timeout or a cancel stops one request of several; the worker stays -----------
wpid=$(worker_pid one)
long=$(jp_ctl submit -q one "$U/slow?ms=20000")
quick=$(jp_ctl submit -q one "$U/slow?ms=4000")
late=$(jp_ctl submit -q one --timeout 2 "$U/slow?ms=20000")
jp_eq_until "three requests run at once in one worker" 3 10 jp_stat queue one running
jp_ctl cancel "$long" >/dev/null
jp_eq_until "a cancel ends one running request" cancelled 10 status_of "$long" state
jp_match "... dropped by the handler" 'cancelled while running: stopped: the handler dropped it' \
	"$(jp_ctl wait "$long" 2>&1)"
jp_eq_until "a job's timeout ends another" dead 10 status_of "$late" state
jp_match "... as a timeout" 'timed out after 2000 ms; stopped: the handler dropped it' \
	"$(jp_ctl status "$late")"
jp_eq_until "the third is not touched: it succeeds" done 10 status_of "$quick" state
jp_eq "the same worker carries on" "$wpid" "$(worker_pid one)"
jp_eq "no worker died" 0 "$(jp_stat queue one worker_deaths)"

# --- http_output = "response": status and headers for the next stage, and STATUS ----
jp_eq "the next stage reads status, headers (repeated joined, Latin-1 decoded), body" \
	"200 7 a, b\"c text/plain; charset=utf-8 café 'hi \"there\"\\n'" \
	"$(jp_ctl submit -w -q resp "$U/headers")"
id=$(jp_ctl submit -q resp "$U/headers")
jp_eq_until "the fetch stage is done" done 10 status_of "$id" state
jp_eq "STATUS: the response's content type, blanks dropped" "text/plain;charset=utf-8" \
	"$(status_of "$id" content_type)"
jp_eq "STATUS: its body's length" 11 "$(status_of "$id" content_length)"
jp_eq "STATUS: its status" 200 "$(status_of "$id" http_status)"
out=$(jp_ctl submit -w -q respraw "$U/binary")
jp_eq "a body that is not UTF-8 comes in base64, the JSON valid" "/wBhYg== 200 no body" \
	"$(printf '%s' "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin); print(r["body_base64"], r["status"], "body" in r and "body" or "no body")')"
id=$(jp_ctl submit -q web "$U/ok")
jp_eq_until "http_output = body (the default): status has the type too" 5 10 \
	status_of "$id" content_length
jp_eq "... and the result is the body alone" hello "$(jp_ctl wait "$id")"
id=$(jp_ctl submit -q one "$U/status?code=404")
jp_eq_until "a failed request" dead 10 status_of "$id" state
jp_eq "... shows its status" 404 "$(status_of "$id" http_status)"
cat >"$JP_TMP/bad.conf" <<EOF
socket = "$JP_TMP/bad.sock";
queues = (
  { name = "h"; handler = "http";
    http_output = "headers"; }
);
EOF
out=$("$JOBPOOLD" -t -c "$JP_TMP/bad.conf" 2>&1)
jp_match "a bad http_output is refused at its file:line" \
	"bad.conf:4: 'http_output' in queue 'h' must be \"body\" or \"response\", not \"headers\"" "$out"

# --- per host: the key defaults to the URL's host; a Retry-After pauses that host -----
server_start a
server_start b
PA=$(cat "$JP_TMP/a.port") PB=$(cat "$JP_TMP/b.port")
UA="http://127.0.0.1:$PA" UB="http://127.0.0.1:$PB"
id=$(jp_ctl submit -q hosts "$UA/ok")
jp_eq_until "a job without --key: its URL's host is its key" "127.0.0.1:$PA" 10 \
	status_of "$id" key
id=$(jp_ctl submit -q hosts "{\"url\": \"http://user:pw@127.0.0.1:$PB/ok\"}")
jp_eq_until "... from a JSON payload's url, without userinfo" "127.0.0.1:$PB" 10 \
	status_of "$id" key
id=$(jp_ctl submit -q hosts --key mine "$UA/ok")
jp_eq_until "... and --key still names its own" mine 10 status_of "$id" key
jp_eq_until "(those three done)" done 10 status_of "$id" state
id=$(jp_ctl submit -q tohosts "$UB/ok")
jp_eq "a chain's http stage" hello "$(jp_ctl wait "$id")"
stage=$(jp_ctl status "$id" | sed -n 's/^stage 2: job \([0-9]*\), queue hosts, .*/\1/p')
jp_eq "... takes its URL's host as its key" "127.0.0.1:$PB" "$(status_of "$stage" key)"

for i in 1 2 3 4 5 6; do echo "$UA/hold?ms=300"; echo "$UB/hold?ms=300"; done |
	jp_ctl map -q hosts -j 12 >"$JP_TMP/hosts.out" &
mapper=$!
jp_eq_until "max_running_per_key = 1: the two hosts run at once" 2 30 \
	jp_stat queue hosts running
wait $mapper
jp_eq "... all 12 succeed" 12 "$(grep -c '^slow$' "$JP_TMP/hosts.out")"
jp_eq "... one request at a time in flight at host A" 1 "$(stat_at "$UA" max_inflight)"
jp_eq "... and at host B" 1 "$(stat_at "$UB" max_inflight)"

flaky_asks() {	# flaky_asks URL KEY: how many times the server at URL was asked for KEY
	python3 -c 'import json, sys, urllib.request
print(len(json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["flaky"].get(sys.argv[2], [])))' "$1" "$2"
}
a1=$(jp_ctl submit -q hosts "$UA/flaky?key=a&fail=1&after=2&code=429")
jp_eq_until "host A answers 429 with Retry-After: 2" 1 10 flaky_asks "$UA" a
a2=$(jp_ctl submit -q hosts "$UA/flaky?key=a2&fail=0")
bs=()
for i in 1 2 3 4 5; do bs+=("$(jp_ctl submit -q hosts "$UB/flaky?key=b&fail=0")"); done
for id in "${bs[@]}" "$a1" "$a2"; do jp_ctl wait "$id" >/dev/null; done
jp_eq "host A's jobs succeed once the pause is over" "done done" \
	"$(status_of "$a1" state) $(status_of "$a2" state)"
# The servers' times (one monotonic clock): the 429, then every request to each host.
out=$(python3 -c 'import json, sys, urllib.request
fa = json.load(urllib.request.urlopen(sys.argv[1] + "/stats"))["flaky"]
fb = json.load(urllib.request.urlopen(sys.argv[2] + "/stats"))["flaky"]
t429 = fa["a"][0]
b = fb["b"]
print(len(b), sum(1 for t in b if t429 < t < t429 + 2),
      int((min(fa["a"][1], fa["a2"][0]) - t429) * 1000))' "$UA" "$UB")
read -r nb during gap <<<"$out"
jp_eq "host B's 5 requests all came during host A's pause" "5 5" "$nb $during"
if [ "$gap" -ge 2000 ]; then
	jp_pass "no request to host A before its pause ended: the first came ${gap} ms after the 429"
else
	jp_fail "a request came to host A ${gap} ms after its 429, before Retry-After (2 s) was over"
fi

jp_stop
jp_done
