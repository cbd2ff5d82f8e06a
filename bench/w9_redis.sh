#!/usr/bin/env bash
# W9, through Redis (issue 17): N 64-byte echo jobs (default 200,000) preloaded into a
# stream of a redis-server of its own (loopback, no persistence), then 1 and then 2
# jobpoold (2 echo workers each, one consumer group) started on it: jobs/s from the
# daemons' start until every entry's job is done (the STATS done counts add up to N),
# and the Redis server's CPU per job (its utime + stime from /proc, over the run).
# Each run starts on a fresh stream. Prints one line per run and the medians, then the
# end-to-end latency at 1,000 jobs/s (bench/w9_latency.py), and the peers' rates
# (bench/w9_peers.py: Celery with its Redis broker, RQ), if installed.
#
#   bench/w9_redis.sh [BUILD_DIR]      W9_JOBS=N, BENCH_REPS=R (default 3), W9_PEER_JOBS
# Needs redis-server and redis-cli. Not part of bench/run (yet): its figures are in
# bench/README.md by hand.
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null || { echo "bench: W9 needs redis-server" >&2; exit 1; }

N=${W9_JOBS:-200000}
PORT=$(free_port)
mkdir -p "$TMP/redis"
start_bg RPID redis-server --bind 127.0.0.1 --port "$PORT" --dir "$TMP/redis" --save '' \
	--appendonly no --daemonize no --logfile "$TMP/redis/log"
rcli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
for i in $(seq 100); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# preload STREAM: N entries of a 64-byte payload.
preload() {
	"$PY" - "$N" "$1" <<'PY' | rcli --pipe >/dev/null
import sys
n, s = int(sys.argv[1]), sys.argv[2]
p = "x" * 64
cmd = "*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$7\r\npayload\r\n$64\r\n%s\r\n" % (len(s), s, p)
w = sys.stdout.write
for _ in range(n):
    w(cmd)
PY
}

# run NDAEMONS ROUND: one run on a fresh stream; prints jobs/s and Redis CPU us/job.
run() {
	local nd=$1 round=$2 stream="w9-$1-$2" d pids=() socks=() t0 t1 c0 c1 done_n s
	preload "$stream"
	c0=$(cpu_ticks "$RPID")
	t0=$(date +%s%N)
	for d in $(seq "$nd"); do
		s=$TMP/w9-$d.sock
		cat >"$TMP/w9-$d.conf" <<CONF
socket = "$s";
log_level = "warning";
queues = ( { name = "w9"; handler = "echo"; workers = 2;
	source = { redis = "redis://127.0.0.1:$PORT/0"; stream = "$stream";
	           consumer = "bench-$d"; }; } );
CONF
		start_bg pid "$JOBPOOLD" -c "$TMP/w9-$d.conf"
		pids+=("$pid")
		socks+=("$s")
	done
	while :; do
		done_n=0
		for s in "${socks[@]}"; do
			v=$("$JOBPOOLCTL" -s "$s" --json status 2>/dev/null |
			    "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sum(int(q.get("done",0)) for q in d["queues"]))' 2>/dev/null || echo 0)
			done_n=$((done_n + v))
		done
		[ "$done_n" -ge "$N" ] && break
		sleep 0.02
	done
	t1=$(date +%s%N)
	c1=$(cpu_ticks "$RPID")
	for pid in "${pids[@]}"; do stop_bg "$pid"; done
	rcli DEL "$stream" >/dev/null
	awk -v n="$N" -v ns=$((t1 - t0)) -v c=$((c1 - c0)) -v hz="$hz" -v nd="$nd" \
	    'BEGIN { printf "daemons=%d jobs=%d jobs_per_s=%.0f redis_cpu_us_per_job=%.2f\n",
	        nd, n, n / (ns / 1e9), c * 1e6 / hz / n }'
}

for nd in 1 2; do
	for r in $(seq "$REPS"); do
		run "$nd" "$r"
	done
done | tee "$TMP/w9.out"
awk '{ split($3, a, "="); split($4, b, "="); d = $1; v[d] = v[d] " " a[2]; c[d] = c[d] " " b[2] }
     END { for (d in v) print d, "jobs/s:" v[d] " | redis CPU us/job:" c[d] }' "$TMP/w9.out" | sort

# End-to-end latency at W9_RATE jobs/s (default 1,000) for 10 s, one daemon with
# result_ttl: bench/w9_latency.py, from just before each XADD to the notification of the
# result key the daemon SETs.
cat >"$TMP/w9-lat.conf" <<CONF
socket = "$TMP/w9-lat.sock";
log_level = "warning";
queues = ( { name = "w9"; handler = "echo"; workers = 2;
	source = { redis = "redis://127.0.0.1:$PORT/0"; stream = "w9lat";
	           consumer = "bench-lat"; result_ttl = 30; }; } );
CONF
start_bg LPID "$JOBPOOLD" -c "$TMP/w9-lat.conf"
sleep 1
echo "latency at ${W9_RATE:-1000} jobs/s: $("$PY" "$BENCH_DIR/w9_latency.py" "$PORT" w9lat "${W9_RATE:-1000}" 10)"
stop_bg "$LPID"

# The peers on the same server, when Debian's python3-celery and python3-rq are
# installed: fewer jobs (W9_PEER_JOBS, default 20,000; RQ a quarter of that), since
# they run two to three orders of magnitude slower.
PN=${W9_PEER_JOBS:-20000}
if "$PY" -c 'import celery, redis' 2>/dev/null; then
	"$PY" "$BENCH_DIR/w9_peers.py" celery "$PORT" "$PN" || echo "celery: failed"
else
	echo "celery: not installed (python3-celery)"
fi
if "$PY" -c 'import rq, redis' 2>/dev/null; then
	"$PY" "$BENCH_DIR/w9_peers.py" rq "$PORT" $((PN / 4)) || echo "rq: failed"
else
	echo "rq: not installed (python3-rq)"
fi
