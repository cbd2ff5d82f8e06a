#!/usr/bin/env bash
# bench/keys_http.sh: per-key fairness with the http handler (issue 15). Four hosts
# (tests/http_server.py on four loopback ports) behind one queue, handler = "http", jobs
# submitted without a key, so each job's key is its URL's host. Three hosts answer at
# once (GET /ok), each held to rate_per_key = 50/s; the fourth (host D) answers its
# first KH_FAIL requests 429 with Retry-After: 1 (GET /flaky...&code=429), then 200.
# Measured, in three runs:
#   alone     the three fast hosts only: the rate they get with nobody in the way;
#   429       with host D: its Retry-After pauses host D (keys_pause), the three others
#             keep their rate (the claim);
#   unpaused  the same, but host D's jobs each given a key of their own (--key d<i>):
#             a Retry-After then delays only the job that got it, as before issue 15.
# For each: the fast hosts' jobs/s (each one's results after the first over the time
# from its first result to its last), and at host D the requests it answered 429 and
# those that came while a Retry-After it had sent was still running ("early"; not
# counting the first 50 ms after a 429, when requests sent before it are on their way).
#
#   bench/keys_http.sh      BUILD (default build/), KH_JOBS (per fast host, 200),
#                           KH_D (host D's jobs, 40), KH_FAIL (its 429s, 20), KH_ROUNDS (3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${KH_JOBS:-200}
ND=${KH_D:-40}
FAIL=${KH_FAIL:-20}
ROUNDS=${KH_ROUNDS:-3}
export PYTHONPATH="$SRC_DIR/bindings/python"

# server NAME: a test server, its port in $TMP/NAME.port.
server() {
	local i
	rm -f "$TMP/$1.port"
	start_bg SRV_PID "$PY" "$SRC_DIR/tests/http_server.py" "$TMP/$1.port" \
		>/dev/null 2>&1
	SRVS+=("$SRV_PID")
	for i in $(seq 200); do [ -s "$TMP/$1.port" ] && return 0; sleep 0.05; done
	echo "bench: the test server $1 did not start" >&2
	return 1
}

# drive MODE PORT_A PORT_B PORT_C PORT_D: "host JOBS_PER_S" per fast host, then
# "D asks N 429 N early N".
drive() {
	"$PY" - "$JP_SOCK" "$@" "$N" "$ND" "$FAIL" <<'PY'
import asyncio, json, sys, time, urllib.request
import jobpool

sock, mode = sys.argv[1], sys.argv[2]
ports = sys.argv[3:7]
n, nd, fail = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
fast = ports[:3]

async def main():
    async with jobpool.connect(sock) as jp:
        first = {p: 0.0 for p in fast}
        done = {p: 0.0 for p in fast}

        async def one(p, url, key=None):
            try:
                await jp.submit("kh", url.encode(), key=key)
            except jobpool.JobDead:
                pass
            if p in done:
                t = time.monotonic()
                first[p] = min(first[p], t) if first[p] else t
                done[p] = max(done[p], t)

        jobs = []
        for i in range(n):
            if mode != "alone" and i < nd:
                url = "http://127.0.0.1:%s/flaky?key=d&fail=%d&after=1&code=429" % (
                    ports[3], fail)
                jobs.append(one("d", url, "d%d" % i if mode == "unpaused" else None))
            for p in fast:
                jobs.append(one(p, "http://127.0.0.1:%s/ok" % p))
        await asyncio.gather(*jobs)
        for i, p in enumerate(fast):
            print("host%c" % "ABC"[i], "%.1f" % ((n - 1) / (done[p] - first[p])))
    if mode == "alone":
        return
    asks = json.load(urllib.request.urlopen(
        "http://127.0.0.1:%s/stats" % ports[3]))["flaky"].get("d", [])
    early = 0
    for i in range(1, len(asks)):
        last429 = max(asks[j] for j in range(min(i, fail)))
        if last429 + 0.05 < asks[i] < last429 + 1.0:
            early += 1
    print("D", len(asks), min(fail, len(asks)), early)

asyncio.run(main())
PY
}

declare -A res dres
for mode in alone 429 unpaused; do
	for r in $(seq "$ROUNDS"); do
		SRVS=()
		server a; server b; server c; server d
		pa=$(cat "$TMP/a.port") pb=$(cat "$TMP/b.port")
		pc=$(cat "$TMP/c.port") pd=$(cat "$TMP/d.port")
		jp_start kh '{ name = "kh"; handler = "http"; workers = 2; concurrency = 32;
		    retries = 40; backoff_base = 0.05; backoff_max = 0.1;
		    rate_per_key = 50; burst_per_key = 5; max_jobs = 100000; }'
		out=$(drive "$mode" "$pa" "$pb" "$pc" "$pd")
		stop_bg "$JP_PID"
		for p in "${SRVS[@]}"; do stop_bg "$p"; done
		while read -r k a b c; do
			if [ "$k" = D ]; then
				dres[$mode]+="$a/$b/$c "
				emit KH jobpool "$mode D early" requests "$c"
			else
				res[$mode]+="$a "
				emit KH jobpool "$mode $k" jobs/s "$a"
			fi
		done <<<"$out"
	done
done
for mode in alone 429 unpaused; do
	printf '%-9s fast hosts, jobs/s each: median %s (min %s, max %s)' "$mode" \
		"$(echo "${res[$mode]}" | med)" \
		"$(echo "${res[$mode]}" | tr ' ' '\n' | grep . | sort -n | head -1)" \
		"$(echo "${res[$mode]}" | tr ' ' '\n' | grep . | sort -n | tail -1)"
	[ "$mode" = alone ] && echo || echo "; host D requests/429s/early per run: ${dres[$mode]}"
done
