#!/usr/bin/env bash
# W7 fetch (issue 15): 20,000 GETs against a local HTTP server on loopback whose
# responses take 5 ms (bench/w7_httpd.c: C, epoll, one thread, its CPU measured), 100
# in flight, in alternating rounds:
#   - jobpool: jobpoold with an http queue of 2 workers x concurrency 50, fed by
#     `jobpoolctl map -j 100` (one URL a line, results in order);
#   - floor: a bare libcurl multi loop, 100 in flight (bench/w7_floor.c);
#   - peer: asyncio + aiohttp + Semaphore(100) (bench/w7_aiohttp.py, /usr/bin/python3
#     with Debian's python3-aiohttp).
# Each run reports requests/s and the CPU time per request of everything on the client
# side (jobpool: the daemon, its workers and jobpoolctl). Targets: jobpool >= 0.9 of
# the floor's requests/s and above aiohttp's; CPU per request <= half of aiohttp's.
#
#   bench/w7_fetch.sh [BUILD_DIR] [REPS] [REQUESTS]   (BENCH_QUICK=1: 2,000, 1 round)
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
[ $# -ge 2 ] && export BENCH_REPS=$2
. "$(dirname "$0")/lib.sh"
build_helpers

if [ "$QUICK" = 1 ]; then n=${3:-2000}; else n=${3:-20000}; fi
C=100
W="W7 fetch"
cc -O2 -g -Wall -o "$OBJ/w7_httpd" "$BENCH_DIR/w7_httpd.c"
cc -O2 -g -Wall -o "$OBJ/w7_floor" "$BENCH_DIR/w7_floor.c" -lcurl
echo "== $W: $n GETs, $C in flight, 5 ms responses, $REPS rounds" >&2

start_bg SRV "$OBJ/w7_httpd" "$TMP/port" 5 2>"$TMP/httpd.err"
for i in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$TMP/port")/"
for i in $(seq "$n"); do echo "$URL"; done >"$TMP/urls"

# cpu_of CMD...: run CMD; print its output and "child_cpu_s=S" (it and its children).
cpu_of() {
	"$PY" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.stdout.strip(), "child_cpu_s=%.3f" % (ru.ru_utime + ru.ru_stime))
sys.exit(r.returncode)' "$@"
}

# One jobpool run: a fresh daemon whose CPU (with its reaped workers') is counted.
jobpool_run() {
	local conf=$TMP/w7.conf t0 t1 out rate dcpu ccpu
	cat >"$conf" <<CONF
socket = "$TMP/w7.sock";
log_level = "warning";
shutdown_timeout = 1;
queues = ( { name = "fetch"; handler = "http"; workers = 2; concurrency = 50;
    max_jobs = 100000; retries = 0; } );
CONF
	rm -f "$TMP/w7.sock" "$TMP/dcpu"
	"$PY" -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f\n" % (ru.ru_utime + ru.ru_stime))' \
	    "$TMP/dcpu" "$JOBPOOLD" -c "$conf" 2>>"$TMP/jobpoold.log" &
	local dp=$!
	for i in $(seq 200); do
		"$JOBPOOLCTL" -s "$TMP/w7.sock" ping >/dev/null 2>&1 && break
		sleep 0.05
	done
	# The workers are up (READY) once a first request has gone through.
	"$JOBPOOLCTL" -s "$TMP/w7.sock" submit -w -q fetch "$URL" >/dev/null
	t0=$(date +%s%N)
	out=$(cpu_of "$JOBPOOLCTL" -s "$TMP/w7.sock" map -q fetch -j "$C" <"$TMP/urls" |
	    tail -1)
	t1=$(date +%s%N)
	ccpu=$(kv child_cpu_s "$out")
	kill -TERM "$(pgrep -P "$dp" -x jobpoold)" 2>/dev/null || true
	wait "$dp" || true
	dcpu=$(cat "$TMP/dcpu")
	rate=$(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
	echo "jobs_per_s=$rate cpu_s=$(awk -v a="$dcpu" -v b="$ccpu" 'BEGIN { print a + b }') per_req_us=$(awk -v a="$dcpu" -v b="$ccpu" -v n="$n" 'BEGIN { printf "%.1f", (a + b) * 1e6 / n }') daemon_cpu_s=$dcpu ctl_cpu_s=$ccpu"
}

record() {	# record SYSTEM OUTPUT
	emit "$W" "$1" "throughput" "req/s" "$(kv jobs_per_s "$2")"
	emit "$W" "$1" "CPU per request" "us" "$(kv per_req_us "$2")"
}
for r in $(seq "$REPS"); do
	record "jobpool http (2 workers x 50)" "$(jobpool_run)"
	record "libcurl multi floor" "$("$OBJ/w7_floor" "$URL" "$n" "$C")"
	record "asyncio + aiohttp, Semaphore(100)" "$("$PY" "$BENCH_DIR/w7_aiohttp.py" "$URL" "$n" "$C")"
done
stop_bg "$SRV"
note "$W" "server: $(cat "$TMP/httpd.err") for all the rounds ($(nproc) CPUs, shared); jobpool's CPU is the daemon's with its workers' plus jobpoolctl map's, start-up included."
finish_alone
