#!/bin/bash
# it_crowd.sh: crowds of connections and the limits that keep the daemon reachable.
# 1,024 idle connections of another user fill max_connections, and root (the test's
# user) still gets in through reserved_connections; they are closed after idle_timeout,
# each told why, while a connection waiting for a job's result stays open; a request
# left incomplete is closed after request_timeout (slowloris); max_connections_per_uid
# refuses with ERR busy naming the uid; under `prlimit --nofile=256:256` the daemon warns
# with the numbers (at start and at a reload) and clients past what fits get ERR busy
# instead of hanging in the backlog. The parts with another user need root and setpriv.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
CROWD=
trap '[ -n "$CROWD" ] && kill "$CROWD" 2>/dev/null; jp_cleanup' EXIT

conns_at_least() { [ "$(jp_stat daemon connections)" -ge "$1" ] 2>/dev/null; }
conns_at_most() { [ "$(jp_stat daemon connections)" -le "$1" ] 2>/dev/null; }
file_has() { grep -q -- "$2" "$1" 2>/dev/null; }

# Another user: nobody, running a copy of badclient.py with a python3 it may run.
OTHER=
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	chmod 755 "$JP_TMP"
	cp "$BADCLIENT_PY" "$JP_TMP/badclient.py"
	chmod 644 "$JP_TMP/badclient.py"
	for py in python3 /usr/bin/python3; do
		if setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
		    "$py" -c '' 2>/dev/null; then
			OTHER="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups $py $JP_TMP/badclient.py"
			break
		fi
	done
fi
as_other() { $OTHER "$@"; }

# ----- idle connections of another user do not keep root out; they are closed -----
# (The daemon and the crowd each need more than 1,024 descriptors: a hard limit of a
# few thousand.)
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1000000
if [ -n "$OTHER" ] && [ "$hard" -lt 1200 ]; then
	echo "skipped: another user's crowd needs a hard descriptor limit of 1200 (it is $hard)"
	OTHER_CROWD=
else
	OTHER_CROWD=$OTHER
fi
if [ -n "$OTHER_CROWD" ]; then
	jp_start 'socket_mode = "0666";
max_connections_per_uid = 2000;
idle_timeout = 4;
queues = ( { name = "echo"; handler = "echo"; workers = 1; },
	{ name = "sleep"; handler = "sleep"; workers = 1; } );'
	as_other crowd "$JP_SOCK" 1024 --hold 30 >"$JP_TMP/crowd" 2>&1 &
	CROWD=$!
	# The crowd has connected, and the daemon has accepted all of it (the count
	# includes the STATS connection asking).
	jp_ok_until "1,024 idle connections of nobody are open" 20 eval \
		'file_has "$JP_TMP/crowd" "1024 open" && conns_at_least 1025'
	# A job that runs longer than idle_timeout, waited for by a connection that sends
	# nothing meanwhile: it waits on the daemon, and is not idle. Root's, and made once
	# the crowd is in: made first, it took one of max_connections' slots, and nobody's
	# 1,024th connection was refused.
	( printf 6000 | bc_submit sleep >"$JP_TMP/waited" ) &
	WAITER=$!
	jp_ok_until "... and root's waiting connection too (a reserved slot)" 20 conns_at_least 1026
	out=$(printf 'PING\n' | as_other raw -t 5 "$JP_SOCK")
	jp_eq "nobody's 1,025th connection is refused" \
		"ERR busy too many connections (max_connections)" "$out"
	jp_eq "root still gets in (reserved_connections)" pong "$(jp_ctl ping 2>&1)"
	jp_match "the refusal is logged with the uid" \
		"refusing a connection from pid [0-9]+ uid $(id -u nobody): too many connections" \
		"$(cat "$JP_LOG")"
	jp_ok_until "the idle connections are closed after idle_timeout" 20 \
		file_has "$JP_TMP/crowd" "closed by the daemon"
	wait "$CROWD"
	CROWD=
	jp_eq "every idle connection was closed, each told why" \
"crowd: 1024 open
crowd: 1024 of 1024 closed by the daemon
crowd: got ERR timeout idle for 4000 ms (idle_timeout); closing the connection" \
		"$(cat "$JP_TMP/crowd")"
	jp_ok_until "closures are logged at a rate limit, the rest summed when the window ends" 15 \
		file_has "$JP_LOG" 'more connections were closed for idle_timeout or request_timeout in the last 10 s'
	n=$(grep -c 'idle for 4000 ms (idle_timeout); closed' "$JP_LOG")
	jp_eq "at most 10 closures are logged one by one" 10 "$n"
	wait "$WAITER"
	jp_match "a connection waiting for a result longer than idle_timeout gets it" \
		'^RESULT [0-9]+ ok ' "$(cat "$JP_TMP/hdr")"
	jp_stop
else
	echo "skipped: another user's crowd needs root, setpriv and the user nobody"
fi

# ----- a request left incomplete (slowloris) -----
jp_start 'request_timeout = 1;
queues = ( { name = "echo"; handler = "echo"; workers = 1; } );'
out=$(printf 'PING\nSUBMIT echo 10\nhel' | raw --keep-open); rc=$?
jp_eq "an incomplete request: closed (not left open)" 0 "$rc"
jp_eq "an incomplete request: the replies before it, then why" \
"OK pong
ERR timeout a request left incomplete for 1000 ms (request_timeout); closing the connection" "$out"
# A byte at a time keeps the connection busy, but not past request_timeout.
out=$( (for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	printf P; sleep 0.2; done) | raw --keep-open); rc=$?
jp_eq "a line sent a byte at a time: closed after request_timeout" 0 "$rc"
jp_match "a line sent a byte at a time: told why" "^ERR timeout a request left incomplete" "$out"
# Whole requests, however slow, are not timed: idle_timeout is 300 s by default.
out=$( (printf 'PING\n'; sleep 1.5; printf 'PING\n'; sleep 1.5; printf 'QUIT\n') | raw --keep-open)
jp_eq "slow but whole requests are served" "OK pong
OK pong
OK bye" "$out"
jp_stop

# ----- max_connections_per_uid -----
jp_start 'max_connections_per_uid = 3;
reserved_connections = 2;
socket_mode = "0666";
queues = ( { name = "echo"; handler = "echo"; workers = 1; } );'
if [ -n "$OTHER" ]; then
	out=$(as_other crowd "$JP_SOCK" 5 --ping)
	jp_eq "max_connections_per_uid = 3: nobody's fourth and fifth get ERR busy naming it" \
"crowd: 3 served, 2 busy, 0 silent
crowd: got ERR busy too many connections from uid $(id -u nobody) (max_connections_per_uid is 3)" "$out"
fi
# Root or the daemon's user may go past it into the reserved slots, and no further.
out=$(badclient crowd "$JP_SOCK" 6 --ping)
jp_eq "max_connections_per_uid = 3: the daemon's user gets 2 reserved more, then ERR busy" \
"crowd: 5 served, 1 busy, 0 silent
crowd: got ERR busy too many connections from uid $(id -u) (max_connections_per_uid is 3)" "$out"
jp_stop

# ----- the descriptor limit: a warning with the numbers, ERR busy past it -----
cat >"$JP_TMP/prlimited" <<SH
#!/bin/sh
exec prlimit --nofile=256:256 "$top_builddir/daemon/jobpoold" "\$@"
SH
chmod +x "$JP_TMP/prlimited"
if command -v prlimit >/dev/null; then
	REAL=$JOBPOOLD
	JOBPOOLD=$JP_TMP/prlimited
	jp_start 'queues = ( { name = "echo"; handler = "echo"; workers = 2; } );'
	JOBPOOLD=$REAL
	jp_match "under a descriptor limit of 256 the daemon warns with the numbers" \
		'warning: the descriptor limit \(RLIMIT_NOFILE\) is 256: max_connections 1024 and reserved_connections 8 need [0-9]+ descriptors .*Raise the limit to [0-9]+ \(LimitNOFILE= in jobpool.service, ulimit -n\) or lower max_connections to [0-9]+' \
		"$(cat "$JP_LOG")"
	out=$(badclient crowd "$JP_SOCK" 300 --ping)
	jp_match "clients past the descriptor limit get ERR busy, none hangs" \
		'^crowd: [0-9]+ served, [0-9]+ busy, 0 silent' "$out"
	jp_match "the refusal says why" \
		"crowd: got ERR busy too many connections \(the daemon's descriptor limit leaves room for [0-9]+ of max_connections 1024\)" \
		"$out"
	served=$(printf '%s\n' "$out" | sed -n 's/^crowd: \([0-9]*\) served.*/\1/p')
	[ "${served:-0}" -ge 150 ] && jp_pass "most of the descriptors serve clients ($served)" ||
		jp_fail "only $served clients served under a limit of 256"
	jp_eq "a reload checks the limit again" OK "$(jp_ctl reload >/dev/null 2>&1 && echo OK)"
	jp_eq "the reload warns again" 2 \
		"$(grep -c 'the descriptor limit (RLIMIT_NOFILE) is 256' "$JP_LOG")"
	jp_stop
else
	echo "skipped: the descriptor limit needs prlimit"
fi
jp_done
