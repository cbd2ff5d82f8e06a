# tests/lib.sh: sourced by the integration tests. Starts the real jobpoold in the
# foreground on a private socket under `timeout`, and offers small assertions.
#
# Each test: . "$top_srcdir/tests/lib.sh"; jp_start [CONFIG_TEXT]; ...; jp_stop; jp_done
# Exit codes follow automake: 0 pass, 77 skip, 99 hard error, anything else fail.

set -u
: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
JOBPOOLD="$top_builddir/daemon/jobpoold"
JOBPOOLCTL="$top_builddir/cli/jobpoolctl"
JP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/jptest.XXXXXX")
JP_SOCK="$JP_TMP/jobpool.sock"
JP_LOG="$JP_TMP/jobpoold.log"
JP_PID=		# the `timeout` wrapper; it forwards TERM to the daemon
JP_DPID=	# the daemon itself
JP_FAILS=0
export JOBPOOL_SOCKET="$JP_SOCK"
# A daemon that outlives its test is killed by timeout; a test never hangs CI.
# --foreground: signals we send reach the daemon alone, never its workers directly.
: "${JP_DAEMON_TIMEOUT:=300}"
# JP_VALGRIND=1 (make check-valgrind, in a build without sanitizers): jp_start runs the
# daemon under valgrind's memcheck, the master and every worker it forks (valgrind
# always follows fork). It does not follow exec (--trace-children=no): jobpoold execs
# nothing of ours, only exec handlers' programs (shell scripts, system tools), which
# under valgrind would exit with its --error-exitcode for their own errors and run 50
# times slower. Each process writes its own log, $JP_TMP/vg/valgrind.PID; jp_stop fails
# the test on any error in one of them (a definite or possible leak is an error, unless
# a signal killed the process; memory still reachable at exit is not).
# tests/valgrind.supp holds what is not ours, each entry with its reason.
JP_VALGRIND=${JP_VALGRIND:-0}
JP_WRAP=()
if [ "$JP_VALGRIND" = 1 ]; then
	JP_WRAP=(valgrind --tool=memcheck --trace-children=no --child-silent-after-fork=no
		--leak-check=full --show-leak-kinds=definite,possible
		--errors-for-leak-kinds=definite,possible --error-exitcode=97
		--suppressions="$top_srcdir/tests/valgrind.supp" --num-callers=30
		--log-file="$JP_TMP/vg/valgrind.%p")
	# Open to all: a worker opens its log after the fork, as whichever user the master
	# dropped to.
	mkdir -m 1777 "$JP_TMP/vg"
	# Everything takes 20 to 50 times longer.
	JP_DAEMON_TIMEOUT=$((JP_DAEMON_TIMEOUT * 3))
fi

JP_SHELL=$BASHPID
jp_cleanup() {
	# Only the test's own shell cleans up: a subshell that inherited this trap (the
	# watchdog jp_stop kills, a process substitution) once removed JP_TMP under a
	# test that was still running.
	[ "$BASHPID" = "$JP_SHELL" ] || return 0
	if [ -n "$JP_PID" ] && kill -0 "$JP_PID" 2>/dev/null; then
		# TERM reaches the daemon through timeout; KILL would orphan it.
		kill -TERM "$JP_PID" 2>/dev/null
		jp_until 3 eval '! kill -0 "$JP_PID" 2>/dev/null'
		[ -n "$JP_DPID" ] && kill -KILL "$JP_DPID" 2>/dev/null
		kill -KILL "$JP_PID" 2>/dev/null
	fi
	if [ "${JP_KEEP:-0}" = 1 ]; then echo "kept $JP_TMP"; else rm -rf "$JP_TMP"; fi
}
trap jp_cleanup EXIT

# Write a config file with the test socket. $1: the queues and other settings.
jp_config() {
	cat >"$JP_TMP/jobpool.conf" <<CONF
socket = "$JP_SOCK";
$1
CONF
	echo "$JP_TMP/jobpool.conf"
}

# Start jobpoold. $1: config body (optional; default: one echo queue). Extra args follow.
jp_start() {
	local body=${1:-'queues = ( { name = "default"; handler = "echo"; workers = 2; } );'}
	shift || true
	jp_config "$body" >/dev/null
	timeout --foreground -s KILL "$JP_DAEMON_TIMEOUT" ${JP_WRAP[@]+"${JP_WRAP[@]}"} \
		"$JOBPOOLD" -c "$JP_TMP/jobpool.conf" "$@" >>"$JP_LOG" 2>&1 &
	JP_PID=$!
	local secs=10
	[ "$JP_VALGRIND" = 1 ] && secs=60
	JP_UP=0
	jp_until "$secs" _jp_up
	if [ "$JP_UP" = 1 ]; then
		JP_DPID=$(pgrep -o -P "$JP_PID")
		return 0
	fi
	echo "jobpoold did not come up; log:" >&2
	cat "$JP_LOG" >&2
	exit 99
}

# _jp_up: the daemon answers (JP_UP=1), or it has exited (jp_start need not wait on).
_jp_up() {
	"$JOBPOOLCTL" ping >/dev/null 2>&1 && { JP_UP=1; return 0; }
	! kill -0 "$JP_PID" 2>/dev/null
}

# Stop jobpoold with SIGTERM and check it exits 0 within $1 seconds (default 30).
jp_stop() {
	local limit=${1:-30} rc wd
	[ -n "$JP_PID" ] || return 0
	kill -TERM "$JP_PID" 2>/dev/null
	# A watchdog: a daemon that does not stop in time is killed, and the test fails.
	( trap - EXIT; sleep "$limit"; echo "jobpoold did not stop within ${limit}s" >>"$JP_LOG";
	  kill -KILL "$JP_DPID" 2>/dev/null ) &
	wd=$!
	wait "$JP_PID"
	rc=$?
	kill "$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	JP_PID=
	JP_DPID=
	if [ "$rc" -ne 0 ]; then
		jp_fail "jobpoold exited $rc on SIGTERM (want 0)"
		tail -20 "$JP_LOG" >&2
	fi
	jp_check_sanitizers
}

# Fail if a sanitizer reported anything in the daemon's log, or valgrind in the log of
# one of its processes (each log read once: a restarted daemon's are new files).
jp_check_sanitizers() {
	local f
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$JP_LOG"; then
		jp_fail "sanitizer report in jobpoold's log"
		grep -A20 -E 'Sanitizer|runtime error' "$JP_LOG" | head -60 >&2
	fi
	[ "$JP_VALGRIND" = 1 ] || return 0
	if ! ls "$JP_TMP"/vg/valgrind.* >/dev/null 2>&1; then
		jp_fail "valgrind: no log in $JP_TMP/vg: did valgrind run?"
		return 0
	fi
	for f in "$JP_TMP"/vg/valgrind.*; do
		[ -e "$f" ] || continue
		case $f in *.checked) continue ;; esac
		if grep -q 'Process terminating with default action of signal' "$f"; then
			# Killed by a signal (a test's, or an abort it asked a plugin for):
			# what it held then is not leaked, but its memory errors count.
			if grep -qE '^==[0-9]+== (Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap)' "$f"; then
				jp_fail "valgrind: errors in process ${f##*.}, killed by a signal"
				grep -E '^==[0-9]+== ' "$f" | head -80 >&2
			fi
		elif grep -q 'ERROR SUMMARY: [1-9]' "$f"; then
			jp_fail "valgrind: errors in process ${f##*.} (${f##*/})"
			grep -E '^==[0-9]+== ' "$f" | head -80 >&2
		fi
		mv "$f" "$f.checked"
	done
}

jp_ctl() { "$JOBPOOLCTL" "$@"; }

# Milliseconds of wall-clock time, for measuring what a user waits.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# tests/badclient.py speaks the raw protocol (see its header). bc_submit QUEUE [OPTION ...]
# < payload: the RESULT body on stdout, its header line in $JP_TMP/hdr (hdr prints it).
BADCLIENT_PY="$top_srcdir/tests/badclient.py"
badclient() { python3 "$BADCLIENT_PY" "$@"; }
bc_submit() { badclient submit "$JP_SOCK" "$@" 2>"$JP_TMP/hdr"; }
hdr() { cat "$JP_TMP/hdr"; }
# raw [--keep-open]: stdin to a new connection as it is, the daemon's bytes on stdout;
# exit 0 when the daemon closed the connection, 3 when it still held it open after
# JP_RAW_TIMEOUT seconds (a test may set it before it calls raw).
JP_RAW_TIMEOUT=10
raw() { badclient raw -t "$JP_RAW_TIMEOUT" "$JP_SOCK" "$@"; }
# jp_stat TYPE [NAME] KEY: KEY's value on the first STATS line of TYPE (and NAME, if not
# empty): `jp_stat daemon connections`, `jp_stat queue default running`.
jp_stat() {
	local t=$1 n= k=$2
	[ $# -ge 3 ] && { n=$2; k=$3; }
	badclient stats "$JP_SOCK" | awk -v t="$t" -v n="$n" -v k="$k" '
		$1 == t && (n == "" || $2 == n) {
			for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) {
				print substr($i, length(k) + 2); exit } }'
}
# jp_state ID: the job's state as `jobpoolctl status` says it, or notfound.
jp_state() { jp_ctl status "$1" 2>&1 | awk -F': ' '$1 == "state" { print $2 } /notfound/ { print "notfound" }'; }
# jp_kill9: the daemon dies at once, as in a crash; its workers see their pipes close.
jp_kill9() {
	kill -KILL "$JP_DPID"
	wait "$JP_PID" 2>/dev/null
	JP_PID=
	JP_DPID=
}
# jp_example_plugin NAME: the path of examples/NAME.c's plugin, as libtool builds it for
# `make check` (exit 99 if it is not built).
jp_example_plugin() {
	local f
	for f in "$top_builddir/examples/.libs/$1.so" "$top_builddir/examples/$1.so"; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	echo "$1.so is not built (make check builds it)" >&2
	exit 99
}
# worker_pid QUEUE [STATE]: the pid of the queue's first worker (in that state).
worker_pid() {
	badclient stats "$JP_SOCK" | awk -v q="$1" -v s="${2:-}" '
		$1 == "worker" && $2 == q && (s == "" || $4 == "state=" s) {
			sub(/^pid=/, "", $3); print $3; exit }'
}

jp_fail() { echo "FAIL: $*" >&2; JP_FAILS=$((JP_FAILS + 1)); }
jp_pass() { echo "ok: $*"; }

# jp_eq WHAT EXPECTED ACTUAL
jp_eq() {
	if [ "$2" = "$3" ]; then jp_pass "$1"; else jp_fail "$1: expected '$2', got '$3'"; fi
}
# jp_le WHAT GOT MAX: GOT (a whole number) is at most MAX.
jp_le() {
	if [ "$2" -le "$3" ]; then jp_pass "$1 ($2 <= $3)"; else jp_fail "$1: $2 > $3"; fi
}
# jp_match WHAT REGEX TEXT
jp_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then jp_pass "$1"; else jp_fail "$1: '$3' does not match /$2/"; fi
}

# State that is still changing (a unit's state, a STATS counter, a log line, a file, a
# process) is waited for with a deadline, never read once: read once, it races what it
# tests, and a slow machine (or valgrind) turns the race into a failure.
# jp_until SECS CMD...: run CMD every 50 ms until it succeeds; 1 once SECS (a whole
# number) have passed without it. The deadline is the clock's, not a count of tries.
jp_until() {
	local end=$(( $(now_ms) + $1 * 1000 ))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$end" ] || return 1
		sleep 0.05
	done
}
# jp_ok_until WHAT SECS CMD...: jp_pass once CMD succeeds, jp_fail if SECS pass first.
jp_ok_until() {
	local what=$1 secs=$2
	shift 2
	if jp_until "$secs" "$@"; then jp_pass "$what"; return 0; fi
	jp_fail "$what: not so within ${secs}s"
	return 1
}
# jp_eq_until WHAT EXPECTED SECS CMD...: jp_eq on CMD's output, once it is EXPECTED or
# SECS have passed (then with the last output read).
jp_eq_until() {
	local what=$1 want=$2 secs=$3
	shift 3
	jp_until "$secs" jp_out_eq "$want" "$@"
	jp_eq "$what" "$want" "$JP_UNTIL_OUT"
}
# jp_match_until WHAT REGEX SECS CMD...: jp_match on CMD's output, the same way.
jp_match_until() {
	local what=$1 re=$2 secs=$3
	shift 3
	jp_until "$secs" jp_out_match "$re" "$@"
	jp_match "$what" "$re" "$JP_UNTIL_OUT"
}
# jp_out_eq WANT CMD... and jp_out_match REGEX CMD...: CMD's output (in $JP_UNTIL_OUT)
# is WANT, or matches REGEX; to be waited for with jp_until.
jp_out_eq() { local want=$1; shift; JP_UNTIL_OUT=$("$@" 2>&1); [ "$JP_UNTIL_OUT" = "$want" ]; }
jp_out_match() {
	local re=$1
	shift
	JP_UNTIL_OUT=$("$@" 2>&1)
	printf '%s' "$JP_UNTIL_OUT" | grep -qE -- "$re"
}
# The daemon's log as a command, for the *_until helpers.
jp_log() { cat "$JP_LOG"; }

# A process's resident set size in KiB (default: the daemon's).
jp_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/${1:-$JP_DPID}/status" 2>/dev/null; }

jp_done() {
	if [ "$JP_FAILS" -ne 0 ]; then
		echo "$JP_FAILS check(s) failed; daemon log tail:" >&2
		tail -30 "$JP_LOG" >&2 2>/dev/null
		exit 1
	fi
	exit 0
}
