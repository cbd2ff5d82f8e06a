#!/usr/bin/env bash
# Access and privileges, as root: the socket's owner, group and mode; SO_PEERCRED
# allow lists (a refused peer is told and logged with its uid and pid, supplementary
# groups count, the log is rate-limited); the master drops to its configured user after
# binding and keeps only what per-queue worker users need, with a bounding set cut to
# match, locked securebits and no_new_privs; workers run as their queue's user with its
# rlimits and no capabilities; a reload cannot add a queue user the master gave up;
# started as root without 'user', the master warns and its workers still drop every
# capability; the journal a root master left is handed to the user it later runs as.
. "$top_srcdir/tests/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: needs setpriv (util-linux)"; exit 77; }
id daemon >/dev/null 2>&1 && id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null ||
	{ echo "SKIP: needs the users daemon and nobody and the group nogroup"; exit 77; }
# A user in neither list, to be refused; and the temp dir must be reachable by others.
OTHER_UID=4242
chmod 755 "$JP_TMP"
# A socket directory the daemon creates: it hands it to its user, who can clean up.
JP_SOCK="$JP_TMP/run/jobpool.sock"
export JOBPOOL_SOCKET="$JP_SOCK"
sanitized=0
ldd "$JOBPOOLD" 2>/dev/null | grep -q libasan && sanitized=1

rlimit_as=
[ $sanitized -eq 0 ] && rlimit_as="rlimit_as = 1073741824L;"
# An exec handler that reports what it runs as: its securebits are its worker's, and
# those the master's (locked bits pass through fork and exec unchanged).
SETPRIV=$(command -v setpriv)
jp_start "
socket_mode = \"0666\";
socket_group = \"nogroup\";
user = \"daemon\";
group = \"nogroup\";
allow_users = [ \"nobody\" ];
allow_groups = [ \"nogroup\" ];
queues = (
  { name = \"default\"; handler = \"echo\"; workers = 1; user = \"nobody\";
    rlimit_nofile = 64; rlimit_cpu = 3600; $rlimit_as },
  { name = \"plain\"; handler = \"echo\"; workers = 1; },
  { name = \"probe\"; handler = \"exec:$SETPRIV -d -d\"; workers = 1; },
  { name = \"probeu\"; handler = \"exec:$SETPRIV -d -d\"; workers = 1; user = \"nobody\"; }
);"

field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# A line of `setpriv -d` output ($1), after its label ($2).
dumped() { printf '%s\n' "$1" | sed -n "s/^$2: //p"; }
# The securebits of something that gave up root, every one locked (priv.c); older
# setpriv prints the two no_cap_ambient_raise bits as 0xc0.
LOCKED_BITS='^noroot,noroot_locked,no_setuid_fixup,no_setuid_fixup_locked,keep_caps_locked,(0xc0|no_cap_ambient_raise,no_cap_ambient_raise_locked)$'

# The socket.
jp_eq "the socket's group" nogroup "$(stat -c %G "$JP_SOCK")"
jp_eq "the socket's mode" 666 "$(stat -c %a "$JP_SOCK")"

# The master.
jp_eq "the master runs as daemon" "$(id -u daemon)" "$(field "$JP_DPID" Uid)"
jp_eq "the master's group is the configured one (nogroup)" "$(getent group nogroup | cut -d: -f3)" "$(field "$JP_DPID" Gid)"
# CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7): 0xe0, and nothing else.
jp_eq "the master keeps only CAP_KILL, CAP_SETGID and CAP_SETUID" \
	00000000000000e0 "$(field "$JP_DPID" CapEff)"
jp_eq "... its bounding set holds those three and nothing else" \
	00000000000000e0 "$(field "$JP_DPID" CapBnd)"
jp_eq "... and no_new_privs is set" 1 "$(field "$JP_DPID" NoNewPrivs)"
jp_match "the drop is logged" 'running as user daemon' "$(cat "$JP_LOG")"
# /proc has no securebits: a worker of a queue without its own user (which could not
# change them: they are locked, and it has no CAP_SETPCAP) runs setpriv -d.
dump=$(jp_ctl submit -w -q probe x)
jp_match "the master's securebits are set and locked (seen through its worker)" \
	"$LOCKED_BITS" "$(dumped "$dump" Securebits)"
jp_eq "... and the program it runs has no capabilities" "[none] [none]" \
	"$(dumped "$dump" 'Effective capabilities') $(dumped "$dump" 'Permitted capabilities')"
jp_eq "... and the master's bounding set" kill,setgid,setuid \
	"$(dumped "$dump" 'Capability bounding set')"
jp_eq "... runs as the daemon's user" "$(id -u daemon)" "$(dumped "$dump" uid)"
jp_eq "... with no_new_privs" 1 "$(dumped "$dump" no_new_privs)"

# The workers.
stats=$(jp_ctl status)
wdef=$(printf '%s\n' "$stats" | awk '$1 == "default" && $2 ~ /^[0-9]+$/ { print $2 }')
wplain=$(printf '%s\n' "$stats" | awk '$1 == "plain" && $2 ~ /^[0-9]+$/ { print $2 }')
jp_eq "the default queue's worker runs as nobody" "$(id -u nobody)" "$(field "$wdef" Uid)"
jp_eq "... with no capabilities" 0000000000000000 "$(field "$wdef" CapEff)"
jp_eq "... none permitted" 0000000000000000 "$(field "$wdef" CapPrm)"
# It cannot cut the bounding set further (no CAP_SETPCAP): it has the master's.
jp_eq "... the master's bounding set" 00000000000000e0 "$(field "$wdef" CapBnd)"
jp_eq "... and no_new_privs" 1 "$(field "$wdef" NoNewPrivs)"
jp_eq "... with rlimit_nofile" "64 64" "$(awk '/^Max open files/ { print $4, $5 }' "/proc/$wdef/limits")"
jp_eq "... with rlimit_cpu" "3600 3600" "$(awk '/^Max cpu time/ { print $4, $5 }' "/proc/$wdef/limits")"
if [ $sanitized -eq 0 ]; then
	jp_eq "... with rlimit_as" "1073741824 1073741824" \
		"$(awk '/^Max address space/ { print $4, $5 }' "/proc/$wdef/limits")"
else
	echo "note: rlimit_as not checked: AddressSanitizer reserves more address space than any such limit"
fi
jp_eq "a queue without user runs as the daemon's user" "$(id -u daemon)" "$(field "$wplain" Uid)"
jp_eq "... also without capabilities" 0000000000000000 "$(field "$wplain" CapEff)"
jp_eq "jobs run on the nobody worker" hello "$(jp_ctl submit -w hello)"
dump=$(jp_ctl submit -w -q probeu x)
jp_eq "an exec handler of a queue with its own user runs as it" "$(id -u nobody)" \
	"$(dumped "$dump" uid)"
jp_eq "... without capabilities of any kind" "[none] [none] [none] [none]" \
	"$(for k in Effective Permitted Inheritable Ambient; do dumped "$dump" "$k capabilities"; done | xargs)"
jp_match "... with the worker's securebits" "$LOCKED_BITS" "$(dumped "$dump" Securebits)"
jp_eq "... and no_new_privs" 1 "$(dumped "$dump" no_new_privs)"

# Peer credentials.
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$JOBPOOLCTL" ping 2>&1)
jp_eq "an allowed user (nobody) gets in" pong "$out"
out=$(setpriv --reuid=$OTHER_UID --regid=nogroup --clear-groups "$JOBPOOLCTL" ping 2>&1)
jp_eq "a user whose group is on allow_groups gets in" pong "$out"
NOGROUP=$(getent group nogroup | cut -d: -f3)
out=$(setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --groups="$NOGROUP" "$JOBPOOLCTL" ping 2>&1)
jp_eq "a user whose only allowed group is a supplementary one gets in" pong "$out"
out=$(setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --groups=4343,4344 "$JOBPOOLCTL" ping 2>&1); rc=$?
jp_eq "... one whose supplementary groups are not on the list is refused" 3 "$rc"
out=$(setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$JOBPOOLCTL" ping 2>&1); rc=$?
jp_eq "a user not on the lists is refused (exit 3)" 3 "$rc"
jp_match "... and told why" 'denied: uid is not in allow_users or allow_groups' "$out"
jp_match "the refusal is logged with the uid and pid" \
	"refused a connection from uid $OTHER_UID gid $OTHER_UID \\(pid [0-9]+\\)" "$(cat "$JP_LOG")"
jp_eq "root always gets in" pong "$(jp_ctl ping)"

# This master kept what it takes: a reload may add a queue with a user of its own.
sed -i 's/^);$/, { name = "late"; handler = "echo"; workers = 1; user = "nobody"; }\n);/' "$JP_TMP/jobpool.conf"
jp_eq "a reload adds a queue user to a master that kept CAP_SETUID" reloaded "$(jp_ctl reload 2>&1)"
jp_eq "... and the queue works" late "$(jp_ctl submit -w -q late late)"
wlate=$(jp_ctl status | awk '$1 == "late" && $2 ~ /^[0-9]+$/ { print $2 }')
jp_eq "... as that user" "$(id -u nobody)" "$(field "$wlate" Uid)"

# A refused client connecting in a loop does not flood the log: at most a line a second,
# and the rest counted. It needs a python3 that uid $OTHER_UID can run (not /root's).
PY=
for p in /usr/bin/python3 /usr/local/bin/python3 $(command -v python3); do
	if setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$p" -c pass 2>/dev/null; then
		PY=$p
		break
	fi
done
if [ -z "$PY" ]; then
	echo "note: the refusal log's rate limit not checked: no python3 that uid $OTHER_UID can run"
else
	# Wait out the second of the refusals above, and the line that sums them up.
	sleep 2.1
	off=$(stat -c %s "$JP_LOG")
	t0=$(now_ms)
	setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$PY" -c '
import socket, sys
for i in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.recv(100)
    s.close()
' "$JP_SOCK"
	secs=$(( ($(now_ms) - t0) / 1000 + 1 ))
	# The last count comes on a timer once its second is over: wait until all 200
	# are in the log (with a deadline), not a fixed time.
	refusals() {
		new=$(tail -c +$((off + 1)) "$JP_LOG")
		full=$(printf '%s\n' "$new" | grep -c "refused a connection from uid $OTHER_UID")
		summary=$(printf '%s\n' "$new" | grep -c 'refused [0-9]* more connection')
		summed=$(printf '%s\n' "$new" |
			sed -n 's/.*refused \([0-9]*\) more connections\{0,1\} in .*/\1/p' |
			awk '{ n += $1 } END { print n + 0 }')
		[ $((full + summed)) -ge 200 ]
	}
	jp_until 10 refusals || true
	if [ "$full" -ge 1 ] && [ $((full + summary)) -le $((secs + 1)) ]; then
		jp_pass "200 refusals in ${secs}s log $full line(s) of their own and $summary sum(s)"
	else
		jp_fail "200 refusals in ${secs}s logged $full lines of their own and $summary sums (want at most $((secs + 1)))"
	fi
	jp_match "... a sum says how many and who was last" \
		"refused [0-9]+ more connections in [0-9.]+ s, not logged one by one \\(at most one a second is\\); the last from uid $OTHER_UID gid $OTHER_UID \\(pid [0-9]+\\)" "$new"
	jp_eq "... and every other one is counted" 200 "$((full + summed))"
fi

jp_stop
jp_eq "the socket is removed at exit by the unprivileged master" "" "$(ls "$JP_SOCK" 2>/dev/null)"

# A master that kept nothing (no queue had a user of its own) cannot start workers as
# other users: a reload that adds one is refused, at the setting's line, asking for a
# restart; the daemon stays on the old configuration.
: >"$JP_LOG"
# The same socket directory: the first daemon made it and handed it to daemon; a
# daemon started again as root with the same user takes it as its own.
jp_eq "the socket's directory belongs to the daemon's user" daemon "$(stat -c %U "$JP_TMP/run")"
jp_start "
user = \"daemon\";
queues = ( { name = \"default\"; handler = \"echo\"; workers = 1; } );"
jp_eq "a master with no queue user keeps no capability" 0000000000000000 "$(field "$JP_DPID" CapEff)"
jp_eq "... none in its bounding set" 0000000000000000 "$(field "$JP_DPID" CapBnd)"
jp_eq "... and has no_new_privs" 1 "$(field "$JP_DPID" NoNewPrivs)"
jp_config "
user = \"daemon\";
queues = ( { name = \"default\"; handler = \"echo\"; workers = 1; },
  { name = \"other\"; handler = \"echo\"; workers = 1;
    user = \"nobody\"; } );" >/dev/null
out=$(jp_ctl reload 2>&1); rc=$?
want="$JP_TMP/jobpool.conf:6: 'user' in queue 'other' needs a restart of jobpoold: it gave up switching users when it started, since no queue had a user or group of its own then"
if [ "$rc" -ne 0 ]; then jp_pass "a reload adding a queue user fails (exit $rc)"
else jp_fail "a reload adding a queue user succeeded"; fi
jp_match "... telling the client why" "needs a restart of jobpoold" "$out"
if grep -qF -- "$want" "$JP_LOG"; then jp_pass "... logged with file and line"
else jp_fail "... not logged as '$want'"; fi
jp_match "... and the old configuration stays" 'reload failed: still running on the previous configuration' "$(cat "$JP_LOG")"
jp_eq "... without the new queue" "" "$(jp_ctl status | awk '$1 == "other"')"
jp_eq "... and the daemon still works" hi "$(jp_ctl submit -w hi)"
jp_stop

# Started as root without 'user': the master says what to set, and its workers run as
# root with no capabilities, no bounding set, locked securebits and no_new_privs.
: >"$JP_LOG"
JP_SOCK="$JP_TMP/run3/jobpool.sock"
export JOBPOOL_SOCKET="$JP_SOCK"
jp_start "
queues = ( { name = \"default\"; handler = \"echo\"; workers = 1; },
  { name = \"probe\"; handler = \"exec:$SETPRIV -d -d\"; workers = 1; } );"
jp_match "root without user is warned about, naming the setting" \
	"warning: running as root with every capability: set 'user' in $JP_TMP/jobpool.conf" "$(cat "$JP_LOG")"
jp_eq "the master stays root" 0 "$(field "$JP_DPID" Uid | cut -f1)"
stats=$(jp_ctl status)
wdef=$(printf '%s\n' "$stats" | awk '$1 == "default" && $2 ~ /^[0-9]+$/ { print $2 }')
jp_eq "its worker stays uid 0" 0 "$(field "$wdef" Uid | cut -f1)"
jp_eq "... with no effective capabilities" 0000000000000000 "$(field "$wdef" CapEff)"
jp_eq "... none permitted" 0000000000000000 "$(field "$wdef" CapPrm)"
jp_eq "... an empty bounding set" 0000000000000000 "$(field "$wdef" CapBnd)"
jp_eq "... and no_new_privs" 1 "$(field "$wdef" NoNewPrivs)"
dump=$(jp_ctl submit -w -q probe x)
jp_eq "an exec handler there runs as uid 0" 0 "$(dumped "$dump" uid)"
jp_eq "... whose exec gave it nothing back" "[none] [none] [none]" \
	"$(for k in 'Effective capabilities' 'Permitted capabilities' 'Capability bounding set'; do dumped "$dump" "$k"; done | xargs)"
jp_match "... with locked securebits" "$LOCKED_BITS" "$(dumped "$dump" Securebits)"
jp_eq "jobs still run" hi "$(jp_ctl submit -w hi)"
jp_stop

# The journal: made by root without 'user', its files are root's; started again with
# user = daemon, jobpoold hands the directory and the files to daemon before dropping
# root, and recovers what root left.
: >"$JP_LOG"
JDIR="$JP_TMP/journal"
jp_start "
journal_dir = \"$JDIR\";
queues = ( { name = \"default\"; handler = \"echo\"; workers = 1; } );"
kept=$(jp_ctl submit --delay 3600 kept)
jp_stop
jp_eq "a root master's journal file is root's" root "$(stat -c %U "$JDIR"/journal.*)"
jp_start "
user = \"daemon\";
journal_dir = \"$JDIR\";
queues = ( { name = \"default\"; handler = \"echo\"; workers = 1; } );"
jp_eq "with user, the journal directory is handed to daemon, mode 0700" "daemon 700" \
	"$(stat -c '%U %a' "$JDIR")"
jp_eq "... its files too" daemon "$(stat -c %U "$JDIR"/journal.* "$JDIR"/lock | sort -u | xargs)"
jp_eq "... and the job root left is back" delayed \
	"$(jp_ctl status "$kept" | awk -F': ' '$1 == "state" { print $2 }')"
jp_stop
jp_done
