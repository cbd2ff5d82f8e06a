#!/usr/bin/env bash
# Access and privileges, as root: the socket's owner, group and mode; SO_PEERCRED
# allow lists (a refused peer is told and logged with its uid and pid); the master
# drops to its configured user after binding and keeps only what per-queue worker users
# need; workers run as their queue's user with its rlimits and no capabilities.
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
  { name = \"plain\"; handler = \"echo\"; workers = 1; }
);"

field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# The socket.
jp_eq "the socket's group" nogroup "$(stat -c %G "$JP_SOCK")"
jp_eq "the socket's mode" 666 "$(stat -c %a "$JP_SOCK")"

# The master.
jp_eq "the master runs as daemon" "$(id -u daemon)" "$(field "$JP_DPID" Uid)"
jp_eq "the master's group is the configured one (nogroup)" "$(getent group nogroup | cut -d: -f3)" "$(field "$JP_DPID" Gid)"
# CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7): 0xe0, and nothing else.
jp_eq "the master keeps only CAP_KILL, CAP_SETGID and CAP_SETUID" \
	00000000000000e0 "$(field "$JP_DPID" CapEff)"
jp_match "the drop is logged" 'running as user daemon' "$(cat "$JP_LOG")"

# The workers.
stats=$(jp_ctl status)
wdef=$(printf '%s\n' "$stats" | awk '$1 == "default" && $2 ~ /^[0-9]+$/ { print $2 }')
wplain=$(printf '%s\n' "$stats" | awk '$1 == "plain" && $2 ~ /^[0-9]+$/ { print $2 }')
jp_eq "the default queue's worker runs as nobody" "$(id -u nobody)" "$(field "$wdef" Uid)"
jp_eq "... with no capabilities" 0000000000000000 "$(field "$wdef" CapEff)"
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

# Peer credentials.
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$JOBPOOLCTL" ping 2>&1)
jp_eq "an allowed user (nobody) gets in" pong "$out"
out=$(setpriv --reuid=$OTHER_UID --regid=nogroup --clear-groups "$JOBPOOLCTL" ping 2>&1)
jp_eq "a user whose group is on allow_groups gets in" pong "$out"
out=$(setpriv --reuid=$OTHER_UID --regid=$OTHER_UID --clear-groups "$JOBPOOLCTL" ping 2>&1); rc=$?
jp_eq "a user not on the lists is refused (exit 3)" 3 "$rc"
jp_match "... and told why" 'denied: uid is not in allow_users or allow_groups' "$out"
jp_match "the refusal is logged with the uid and pid" \
	"refused a connection from uid $OTHER_UID gid $OTHER_UID \\(pid [0-9]+\\)" "$(cat "$JP_LOG")"
jp_eq "root always gets in" pong "$(jp_ctl ping)"

jp_stop
jp_eq "the socket is removed at exit by the unprivileged master" "" "$(ls "$JP_SOCK" 2>/dev/null)"
jp_done
