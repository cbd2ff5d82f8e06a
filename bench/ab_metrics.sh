#!/usr/bin/env bash
# bench/ab_metrics.sh: what scraping /metrics costs W1. One build, one daemon with
# metrics_listen on a free loopback port (its 2 echo workers, max_jobs 100,000, batch
# 64); rounds alternate W1 through the C library (jpbench, 2,000,000 64-byte jobs, 4096
# in flight, one producer: about 2 s) with nobody scraping and with a client fetching
# /metrics every 100 ms (the first scrape before the jobs start), which goes first
# alternating. Prints
# each round's jobs/s, the medians, the ratio scraped/quiet, in how many rounds the
# scraped run was faster, the master's CPU time per job either way (from /proc: steadier
# than jobs/s on a shared host), and what one scrape costs the master: its CPU time
# over 500 scrapes of an idle daemon (process_cpu_seconds_total), and the body's size.
#
#   bench/ab_metrics.sh BUILD_DIR          AB_ROUNDS (default 9), AB_JOBS (2,000,000),
#                                          AB_SCRAPE_MS (100), AB_PATH (/metrics; /none
#                                          asks for a 404: the HTTP alone)
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 64; }
export BUILD=$1
. "$(dirname "$0")/lib.sh"
build_helpers
command -v curl >/dev/null || { echo "bench: needs curl" >&2; exit 1; }
ROUNDS=${AB_ROUNDS:-9}
JOBS=${AB_JOBS:-2000000}
EVERY=${AB_SCRAPE_MS:-100}
PORT=$(free_port)
URL="http://127.0.0.1:$PORT/metrics"

jp_start abm '{ name = "default"; handler = "echo"; workers = 2; max_jobs = 100000; batch = 64; }' \
	"metrics_listen = \"127.0.0.1:$PORT\";"
curl -sf -o /dev/null "$URL" || { echo "bench: no /metrics at $URL" >&2; exit 1; }

# scraper: GET /metrics every $EVERY ms until killed, on one kept-alive connection as
# Prometheus does (a curl process each time cost this 2-core host more CPU than the
# scrape itself); counts its scrapes in $TMP/scrapes.
scraper() {
	exec "$PY" -c '
import http.client, sys, time
port, every, out, path = int(sys.argv[1]), float(sys.argv[2]) / 1000, sys.argv[3], sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
n, t = 0, time.monotonic()
while True:
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    if r.status in (200, 404):
        n += 1
        with open(out, "w") as f:
            f.write("%d\n" % n)
    t += every
    time.sleep(max(0.0, t - time.monotonic()))
' "$PORT" "$EVERY" "$TMP/scrapes" "${AB_PATH:-/metrics}"
}

# The master's CPU time so far, in clock ticks (utime + stime, proc(5)).
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$JP_PID/stat"; }

# run MODE: jobs/s of one W1 run, quiet or scraped; the master's CPU ticks it took are
# added to $TMP/ticks.MODE.
run() {
	local out sp= t0
	if [ "$1" = scraped ]; then
		rm -f "$TMP/scrapes"
		scraper &
		sp=$!
		while [ ! -s "$TMP/scrapes" ]; do sleep 0.01; done
	fi
	t0=$(ticks)
	out=$("$JPBENCH" -s "$JP_SOCK" -n "$JOBS" -b 64 -j 4096)
	echo $(( $(ticks) - t0 )) >>"$TMP/ticks.$1"
	if [ -n "$sp" ]; then
		kill "$sp" 2>/dev/null
		wait "$sp" 2>/dev/null || true
	fi
	kv jobs_per_s "$out"
}

rq='' rs='' wins=0 total_scrapes=0
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then
		a=$(run quiet); b=$(run scraped)
	else
		b=$(run scraped); a=$(run quiet)
	fi
	total_scrapes=$((total_scrapes + $(cat "$TMP/scrapes")))
	rq="$rq $a" rs="$rs $b"
	awk -v a="$a" -v b="$b" 'BEGIN { exit !(b > a) }' && wins=$((wins + 1))
done
mq=$(echo "$rq" | med) ms=$(echo "$rs" | med)
echo "W1, $JOBS jobs: quiet$rq (median $mq); scraped every $EVERY ms$rs (median $ms);" \
	"scraped/quiet $(awk -v a="$mq" -v b="$ms" 'BEGIN { printf "%.3f", b / a }');" \
	"scraped faster in $wins of $ROUNDS; $total_scrapes scrapes during the scraped runs"
# The master's CPU per job: less at the mercy of the host's other load than jobs/s.
hz=$(getconf CLK_TCK)
cpj() { awk -v hz="$hz" -v n="$JOBS" '{ t += $1; r++ } END { printf "%.3f", t / hz * 1e6 / (n * r) }' "$TMP/ticks.$1"; }
echo "the master's CPU per job: quiet $(cpj quiet) us, scraped $(cpj scraped) us;" \
	"scraped/quiet $(awk -v a="$(cpj quiet)" -v b="$(cpj scraped)" 'BEGIN { printf "%.3f", b / a }')"

# One scrape's cost to the master, on the idle daemon.
cpu() { curl -sf "$URL" | awk '$1 == "process_cpu_seconds_total" { print $2 }'; }
c0=$(cpu)
for i in $(seq 500); do curl -sf -o /dev/null "$URL"; done
c1=$(cpu)
bytes=$(curl -sf "$URL" | wc -c)
echo "one scrape: $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.0f", (b - a) * 1e6 / 501 }') us of" \
	"the master's CPU (500 scrapes, clock-tick resolution), $bytes bytes (1 queue, 2 workers)"
stop_bg "$JP_PID"
