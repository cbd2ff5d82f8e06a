#!/bin/bash
# it_pipeline.sh: examples/pipeline/ for real, as its README runs it: a local HTTP
# server (python3 -m http.server on loopback, serving a directory of pages), and the
# example's config (paths made absolute): fetch (handler "http") -> compute (the CPU
# plugin, compute.c) -> save (exec, save.sh, appends to a file).
#   - one URL through the three stages: the result is save's, the summary that
#     compute makes of the page itself (the body went through), appended once;
#   - 50 URLs through `map -k`: 50 results in input order, each saved once;
#   - status of the fetch job: every stage, and the response's status and type;
#   - a page that is not there: the waiter hears fetch's 404, named; nothing saved.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
[ -e "$top_builddir/examples/pipeline/.libs/compute.so" ] ||
	{ echo "compute.so is not built"; exit 77; }

SRV_PID=
trap '[ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null; jp_cleanup' EXIT
mkdir -p "$JP_TMP/www" "$JP_TMP/pl"
for i in $(seq 1 50); do
	printf '<p>page %s %s</p>\n' "$i" "$(seq -s ' ' "$i")" >"$JP_TMP/www/p$i.html"
done
# Port 0: a free one, which the server prints first ("Serving HTTP on ... port N").
timeout -s KILL 300 python3 -u -m http.server 0 --bind 127.0.0.1 \
	--directory "$JP_TMP/www" >"$JP_TMP/server.log" 2>&1 &
SRV_PID=$!
jp_until 10 grep -q 'port [0-9]' "$JP_TMP/server.log" ||
	{ echo "the HTTP server did not start"; cat "$JP_TMP/server.log"; exit 99; }
PORT=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$JP_TMP/server.log" | head -1)
U="http://127.0.0.1:$PORT"

sed -e '/^socket = /d' \
    -e "s|examples/pipeline/.libs/compute.so 20|$top_builddir/examples/pipeline/.libs/compute.so 1|" \
    -e "s|examples/pipeline/save.sh|$top_srcdir/examples/pipeline/save.sh|" \
    -e "s|/tmp/jobpool-pipeline|$JP_TMP/pl|g" \
    "$top_srcdir/examples/pipeline/pipeline.conf" >"$JP_TMP/pipeline.body"
jp_start "$(cat "$JP_TMP/pipeline.body")"
status_of() { jp_ctl status "$1" | awk -F': ' -v k="$2" '$1 == k { print $2 }'; }

# What compute makes of page 3 itself, straight (and saved, as the first line).
direct=$(jp_ctl submit -w -q compute - <"$JP_TMP/www/p3.html")
jp_match "compute and save, straight: a summary" '^saved bytes=[0-9]+ words=[0-9]+ fnv=[0-9a-f]{16}$' \
	"$direct"
id=$(jp_ctl submit -q fetch "$U/p3.html")
jp_eq "one URL through fetch, compute and save: page 3's summary" "$direct" \
	"$(jp_ctl wait "$id")"
jp_eq "... appended to the file once more" 2 "$(grep -c "^${direct#saved }\$" "$JP_TMP/pl/out.txt")"
st=$(jp_ctl status "$id" | tr '\n' ' ')
jp_match "status of the fetch job: every stage" \
	"stage 1: job $id, queue fetch, done.*queue compute, done.*queue save, done" "$st"
jp_eq "... the response's status" 200 "$(status_of "$id" http_status)"
jp_eq "... its type" text/html "$(status_of "$id" content_type)"
jp_eq "... its length" "$(wc -c <"$JP_TMP/www/p3.html")" "$(status_of "$id" content_length)"

: >"$JP_TMP/pl/out.txt"
seq 1 50 | sed "s|.*|$U/p&.html|" | jp_ctl map -k -j 16 -q fetch >"$JP_TMP/pl/results"
jp_eq "50 URLs: 50 results" 50 "$(grep -c '^saved bytes=' "$JP_TMP/pl/results")"
jp_eq "... each saved once" 50 "$(sort -u "$JP_TMP/pl/out.txt" | grep -c .)"
jp_eq "... 50 lines in the file" 50 "$(grep -c . "$JP_TMP/pl/out.txt")"
jp_eq "... in input order: page 3's third" "$direct" "$(sed -n 3p "$JP_TMP/pl/results")"
jp_eq "... the summaries are of the pages: all different" 50 \
	"$(sort -u "$JP_TMP/pl/results" | grep -c .)"

out=$(jp_ctl submit -w -q fetch "$U/nosuch.html" 2>&1); rc=$?
jp_eq "a missing page fails its producer" 1 "$rc"
jp_match "... with fetch's error, named" \
	"stage 1 \\(queue fetch, job [0-9]+\\): http: GET $U/nosuch.html: HTTP 404 Not Found" "$out"
jp_eq "... and nothing more saved" 50 "$(grep -c . "$JP_TMP/pl/out.txt")"
jp_stop
jp_done
