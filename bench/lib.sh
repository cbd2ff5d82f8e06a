# bench/lib.sh: sourced by bench/run and every bench/w*.sh. Not executable on its own.
#
# Gives: BUILD (jobpool's build dir), OBJ (bench/.build, or $BENCH_OBJ: the helpers
# compiled here),
# TMP (this script's private temp dir, removed on exit), QUICK, REPS, and
#   build_helpers            compile bench/*.c into $OBJ when newer than the binary
#   emit W SYSTEM METRIC UNIT VALUE   record one measurement (one run)
#   note W TEXT              record a note for the results
#   jp_start NAME QUEUES     start jobpoold on a private socket; sets JP_PID, JP_SOCK
#   start_bg VAR CMD...      start a server/worker in the background, stopped on exit
#   stop_pid PID             SIGTERM, then SIGKILL after 5 s, and reap
#   rss_kb PID               VmRSS of a process, in KiB
#   summarize TSV            the markdown table of median, min and max
#   med                      the median of the numbers on stdin
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BUILD:-$SRC_DIR/build}
BUILD=$(cd "$BUILD" && pwd) || { echo "bench: no build dir $BUILD" >&2; exit 1; }
OBJ=${BENCH_OBJ:-$BENCH_DIR/.build}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then REPS=${BENCH_REPS:-1}; else REPS=${BENCH_REPS:-3}; fi
PY=${BENCH_PYTHON:-/usr/bin/python3}
JOBPOOLD=$BUILD/daemon/jobpoold
JOBPOOLCTL=$BUILD/cli/jobpoolctl
JPBENCH=$BUILD/bench/jpbench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jpbench.XXXXXX")
BENCH_TSV=${BENCH_TSV:-$TMP/results.tsv}
BENCH_NOTES=${BENCH_NOTES:-$TMP/notes.txt}
touch "$BENCH_TSV" "$BENCH_NOTES"
BG_PIDS=()

stop_pid() {
	local p=$1 i
	kill -TERM "$p" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

bench_cleanup() {
	local i
	for ((i = ${#BG_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${BG_PIDS[$i]}"
	done
	BG_PIDS=()
	rm -rf "$TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# start_bg VAR CMD...: run CMD in the background, remember it for the exit trap, and
# store its pid in VAR.
start_bg() {
	local var=$1
	shift
	"$@" &
	BG_PIDS+=($!)
	printf -v "$var" '%s' "$!"
}

# Stop one pid started by start_bg and forget it.
stop_bg() {
	local p=$1 i
	stop_pid "$p"
	for i in "${!BG_PIDS[@]}"; do
		[ "${BG_PIDS[$i]}" = "$p" ] && unset "BG_PIDS[$i]"
	done
	BG_PIDS=("${BG_PIDS[@]}")
}

emit() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$BENCH_TSV"
	printf '  %s %-28s %-22s %s %s\n' "$1" "$2" "$3" "$5" "$4" >&2
}

note() {
	grep -qxF "$1: $2" "$BENCH_NOTES" 2>/dev/null || printf '%s: %s\n' "$1" "$2" >>"$BENCH_NOTES"
}

# kv KEY LINE: the value of KEY=value in a line of key=value words.
kv() {
	printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1
}

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

build_helpers() {
	local lib=$BUILD/lib/.libs/libjpcommon.a p san
	mkdir -p "$OBJ"
	[ -x "$JOBPOOLD" ] && [ -x "$JOBPOOLCTL" ] && [ -x "$JPBENCH" ] && [ -f "$lib" ] || {
		echo "bench: build jobpool first (./quickstart.sh, or configure && make in $BUILD)" >&2
		exit 1
	}
	# A sanitizer build's libjpcommon.a links only with the same flags; the helpers then
	# run under the sanitizers too (tests/it_bench.sh). Helpers built with other flags
	# than these are built again.
	san=$(sed -n 's/^CFLAGS = //p' "$BUILD/Makefile" 2>/dev/null | tr ' ' '\n' |
	    grep -E -- '^-f(no-)?(sanitize|omit-frame-pointer)' | tr '\n' ' ' || true)
	if [ -n "$san" ]; then
		echo "bench: warning: $BUILD was configured with sanitizers; figures are not meaningful" >&2
	fi
	if [ "$(cat "$OBJ/.cflags" 2>/dev/null)" != "$san" ]; then
		(cd "$OBJ" && rm -f floor spawnfloor spincal bs_bench wakeup jplat jpfill gm_bench)
		printf '%s' "$san" >"$OBJ/.cflags"
	fi
	# name:extra flags
	for p in floor: spawnfloor: spincal: bs_bench: wakeup: \
	    "jplat:-I$SRC_DIR/lib -I$BUILD $lib" "jpfill:-I$SRC_DIR/lib -I$BUILD $lib"; do
		local name=${p%%:*} flags=${p#*:}
		if [ ! -x "$OBJ/$name" ] || [ "$BENCH_DIR/$name.c" -nt "$OBJ/$name" ] ||
		    [ "$BENCH_DIR/benchutil.h" -nt "$OBJ/$name" ] ||
		    { [ -f "$lib" ] && [ "$lib" -nt "$OBJ/$name" ] && [ -n "$flags" ]; }; then
			# shellcheck disable=SC2086
			cc -O2 -g -Wall $san -o "$OBJ/$name" "$BENCH_DIR/$name.c" $flags
		fi
	done
	if [ -f /usr/include/libgearman-1.0/gearman.h ] || [ -f /usr/include/libgearman/gearman.h ]; then
		if [ ! -x "$OBJ/gm_bench" ] || [ "$BENCH_DIR/gm_bench.c" -nt "$OBJ/gm_bench" ] ||
		    [ "$BENCH_DIR/benchutil.h" -nt "$OBJ/gm_bench" ]; then
			# shellcheck disable=SC2086
			cc -O2 -g -Wall $san -o "$OBJ/gm_bench" "$BENCH_DIR/gm_bench.c" -lgearman
		fi
	fi
}

# jp_start NAME QUEUES [EXTRA_CONFIG]: a jobpoold of our own on a socket in $TMP.
jp_start() {
	local name=$1 queues=$2 extra=${3:-} i
	JP_SOCK=$TMP/$name.sock
	cat >"$TMP/$name.conf" <<CONF
socket = "$JP_SOCK";
log_level = "warning";
shutdown_timeout = 1;
kill_timeout = 1;
$extra
queues = ( $queues );
CONF
	start_bg JP_PID "$JOBPOOLD" -c "$TMP/$name.conf"
	for i in $(seq 200); do
		"$JOBPOOLCTL" -s "$JP_SOCK" ping >/dev/null 2>&1 && return 0
		kill -0 "$JP_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: jobpoold did not start ($TMP/$name.conf)" >&2
	return 1
}

# wait_sock PATH: wait for a Unix socket to appear.
wait_sock() {
	local i
	for i in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	echo "bench: $1 did not appear" >&2
	return 1
}

# med: the median of the numbers on stdin (separated by spaces or newlines).
med() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs of a command that prints "... jobs_per_s=R ...": emit jobs_per_s.
# tput_runs W SYSTEM CMD...
tput_runs() {
	local w=$1 sys=$2 r out
	shift 2
	for r in $(seq "$REPS"); do
		if ! out=$("$@" 2>"$TMP/err"); then
			echo "bench: $w $sys failed: $(tail -3 "$TMP/err")" >&2
			note "$w" "$sys failed in a run: $(tail -1 "$TMP/err")"
			continue
		fi
		emit "$w" "$sys" "throughput" "jobs/s" "$(kv jobs_per_s "$out")"
	done
}

# summarize TSV [NOTES]: the markdown table (median, min, max, runs), with each
# throughput's fraction of its workload's floor.
summarize() {
	awk -F'\t' '
	function fmt(v, u) {
		if (u == "ratio") return sprintf("%.3f", v)
		if (u == "us" || u == "B/job" || u == "MiB" || u == "%") return sprintf("%.1f", v)
		if (u == "s") return sprintf("%.3f", v)
		if (v >= 1000 || v == int(v)) return sprintf("%.0f", v)
		return sprintf("%.3g", v)
	}
	{
		k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
		if (!(k in n) && !(k in na)) { order[++nk] = k; W[k] = $1; S[k] = $2; M[k] = $3; U[k] = $4 }
		if ($5 !~ /^-?[0-9.]+$/) { na[k] = $5; next }
		n[k]++; v[k, n[k]] = $5 + 0
	}
	END {
		if (nk == 0) exit
		print "| workload | system | metric | median | min | max | runs | of floor |"
		print "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
		for (i = 1; i <= nk; i++) {
			k = order[i]; m = n[k]
			if (m == 0) continue
			for (a = 1; a <= m; a++) x[a] = v[k, a]
			for (a = 2; a <= m; a++) { t = x[a]; b = a - 1
				while (b >= 1 && x[b] > t) { x[b + 1] = x[b]; b-- } x[b + 1] = t }
			med[k] = (m % 2) ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2
			lo[k] = x[1]; hi[k] = x[m]
			if (S[k] ~ /^floor/ && M[k] == "throughput") fl[W[k], M[k]] = med[k]
		}
		for (i = 1; i <= nk; i++) {
			k = order[i]; f = ""
			if (n[k] == 0) {
				printf "| %s | %s | %s (%s) | %s | | | 0 | |\n", W[k], S[k], M[k], U[k], na[k]
				continue
			}
			if (M[k] == "throughput" && ((W[k], M[k]) in fl) && fl[W[k], M[k]] > 0)
				{ f = 100 * med[k] / fl[W[k], M[k]]; f = sprintf(f >= 10 ? "%.0f%%" : "%.1f%%", f) }
			printf "| %s | %s | %s (%s) | %s | %s | %s | %d | %s |\n", W[k], S[k], M[k], U[k],
			    fmt(med[k], U[k]), fmt(lo[k], U[k]), fmt(hi[k], U[k]), n[k], f
		}
	}' "$1"
	if [ -n "${2:-}" ] && [ -s "$2" ]; then
		echo
		echo "Notes:"
		echo
		sed 's/^/- /' "$2"
	fi
}

# At the end of a w*.sh run on its own: print its table.
finish_alone() {
	if [ -z "${BENCH_FROM_RUN:-}" ]; then
		echo
		summarize "$BENCH_TSV" "$BENCH_NOTES"
	fi
}

# bs_start [BINLOG_DIR] [echo|spin] [WORKERS] [BEANSTALKD_ARGS...]: beanstalkd on a Unix
# socket in $TMP and its workers (2), with more options if given (W6: -f 0). Sets
# BS_ADDR. bs_stop stops them.
bs_start() {
	local binlog=${1:-} handler=${2:-echo} nw=${3:-2} args i
	args=(-l "unix:$TMP/bs.sock")
	[ -n "$binlog" ] && { rm -rf "$binlog"; mkdir -p "$binlog"; args+=(-b "$binlog"); }
	[ $# -gt 3 ] && args+=("${@:4}")
	rm -f "$TMP/bs.sock"
	# beanstalkd complains on stderr about clients that go away: keep that out of sight.
	start_bg BS_PID beanstalkd "${args[@]}" 2>>"$TMP/beanstalkd.log"
	wait_sock "$TMP/bs.sock"
	BS_ADDR=unix:$TMP/bs.sock
	BS_WPIDS=()
	for i in $(seq "$nw"); do
		start_bg BS_W "$OBJ/bs_bench" worker "$BS_ADDR" "$handler"
		BS_WPIDS+=("$BS_W")
	done
	sleep 0.1
}
bs_stop() {
	local p
	for p in "${BS_WPIDS[@]}"; do stop_bg "$p"; done
	stop_bg "$BS_PID"
}
bs_version() { beanstalkd -v 2>&1 | awk '{ print $2 }'; }

# gm_start [echo|spin] [WORKERS]: gearmand -t 1 on 127.0.0.1 and its workers. Sets GM_PORT.
gm_start() {
	local handler=${1:-echo} nw=${2:-2} i
	GM_PORT=$(free_port)
	start_bg GM_PID gearmand -t 1 -L 127.0.0.1 -p "$GM_PORT" -l "$TMP/gearmand.log" \
	    -P "$TMP/gearmand.pid" --verbose=ERROR
	for i in $(seq 100); do
		"$PY" -c "import socket; socket.create_connection(('127.0.0.1', $GM_PORT), 0.2)" \
		    2>/dev/null && break
		sleep 0.05
	done
	GM_WPIDS=()
	for i in $(seq "$nw"); do
		start_bg GM_W "$OBJ/gm_bench" worker "$GM_PORT" "$handler"
		GM_WPIDS+=("$GM_W")
	done
	sleep 0.2
}
gm_stop() {
	local p
	for p in "${GM_WPIDS[@]}"; do stop_bg "$p"; done
	stop_bg "$GM_PID"
}
gm_version() { gearmand --version 2>&1 | awk 'NF { print $2; exit }'; }
have_gearman() { command -v gearmand >/dev/null && [ -x "$OBJ/gm_bench" ]; }
