#!/usr/bin/env bash
# it_systemd_units.sh: the installed units. `make install DESTDIR=` puts jobpool.service,
# jobpool.socket and the sysusers.d file where configure said; `systemd-analyze verify`
# has nothing at all to say about them (it exits 0 on a misspelled key, so any output
# fails the test); `systemd-analyze security --offline` rates the service at 2.5 or
# less; the Type= follows the systemd version (notify-reload from 253, else notify with
# an ExecReload= that sends SIGHUP). Runs offline, without systemd as PID 1.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 ||
	{ echo "SKIP: systemd-analyze is missing (package systemd)"; exit 77; }
MAX_EXPOSURE=25		# tenths: 2.5

# ----- make install into a private tree -----
ROOT="$JP_TMP/root"
# Only the pieces the units need: a whole `make install` would relink libraries while
# other tests run.
if ! make -C "$top_builddir" -s DESTDIR="$ROOT" install-sbinPROGRAMS \
	install-systemdsystemunitDATA install-dist_systemdsystemunitDATA \
	install-sysusersDATA install-dist_jobpoolconfDATA install-man \
	>"$JP_TMP/install.out" 2>&1; then
	cat "$JP_TMP/install.out" >&2
	echo "make install DESTDIR failed" >&2
	exit 99
fi
svc=$(find "$ROOT" -name jobpool.service -path '*/system/*' | head -1)
sock=$(find "$ROOT" -name jobpool.socket -path '*/system/*' | head -1)
sysusers=$(find "$ROOT" -path '*/sysusers.d/jobpool.conf' | head -1)
jp_match "make install: jobpool.service in the unit directory" '/lib/systemd/system/jobpool.service$' "$svc"
jp_match "make install: jobpool.socket next to it" '/lib/systemd/system/jobpool.socket$' "$sock"
jp_match "make install: the sysusers.d file" '/lib/sysusers.d/jobpool.conf$' "$sysusers"
[ -n "$svc" ] && [ -n "$sock" ] || { jp_done; }
jp_match "sysusers.d: the user jobpool" '^u jobpool - "jobpool daemon"' "$(grep -v '^#' "$sysusers")"
jp_match "make install: man pages" 'jobpoold\.8' "$(find "$ROOT" -name 'jobpoold.8*')"

# Every absolute program the service runs must exist in the tree (or, like /bin/kill,
# on this machine).
exe=$(sed -n 's/^ExecStart=//p' "$svc" | awk '{ print $1 }')
jp_match "ExecStart runs jobpoold from sbindir" '/sbin/jobpoold$' "$exe"
if [ -x "$ROOT$exe" ]; then jp_pass "ExecStart's $exe is installed"
else jp_fail "ExecStart's $exe is not in the installed tree"; fi
jp_match "ExecStartPre checks the configuration" "^ExecStartPre=$exe -t -c /.*/jobpool/jobpool.conf$" \
	"$(grep '^ExecStartPre=' "$svc")"
conf=$(sed -n 's/^ExecStart=.* -c //p' "$svc")
if [ -f "$ROOT$conf" ]; then jp_pass "the configuration $conf is installed"
else jp_fail "the configuration $conf is not installed"; fi

# ----- Type= follows the systemd version -----
ver=$(sed -n 's/^SYSTEMD_VERSION = //p' "$top_builddir/Makefile")
ver=${ver%%[!0-9]*}
if [ "${ver:-0}" -ge 253 ]; then
	jp_eq "systemd $ver: Type=notify-reload" "Type=notify-reload" "$(grep '^Type=' "$svc")"
	jp_eq "systemd $ver: no ExecReload=" "" "$(grep '^ExecReload=' "$svc")"
else
	jp_eq "systemd $ver: Type=notify" "Type=notify" "$(grep '^Type=' "$svc")"
	jp_eq "systemd $ver: ExecReload= sends SIGHUP" 'ExecReload=/bin/kill -HUP $MAINPID' \
		"$(grep '^ExecReload=' "$svc")"
fi
# The other branch of the Makefile rule, rendered in a scratch directory.
mkdir -p "$JP_TMP/render" && touch "$JP_TMP/render/Makefile"
other=252
[ "${ver:-0}" -ge 253 ] || other=257
if (cd "$JP_TMP/render" && make -s -f "$top_builddir/Makefile" -o Makefile \
	srcdir="$top_srcdir" SYSTEMD_VERSION=$other systemd/jobpool.service) >/dev/null 2>&1; then
	r="$JP_TMP/render/systemd/jobpool.service"
	if [ $other = 257 ]; then
		jp_eq "SYSTEMD_VERSION=257 renders Type=notify-reload, no ExecReload" \
			"Type=notify-reload" "$(grep -E '^(Type|ExecReload)=' "$r")"
	else
		jp_eq "SYSTEMD_VERSION=252 renders Type=notify with ExecReload" \
			"Type=notify ExecReload=/bin/kill -HUP \$MAINPID" \
			"$(grep -E '^(Type|ExecReload)=' "$r" | tr '\n' ' ' | sed 's/ $//')"
	fi
else
	jp_fail "cannot render the unit with SYSTEMD_VERSION=$other"
fi

# ----- systemd-analyze verify: exit 0 and not a word -----
# A copy whose ExecStart= points into the tree, so verify finds the program.
U="$JP_TMP/units"
mkdir -p "$U"
sed "s|=$exe |=$ROOT$exe |" "$svc" >"$U/jobpool.service"
cp "$sock" "$U/jobpool.socket"
verify() { (cd "$U" && systemd-analyze verify --man=no "$@" 2>&1); }
out=$(verify jobpool.service jobpool.socket); rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	jp_pass "systemd-analyze verify: jobpool.service and jobpool.socket are clean"
else
	jp_fail "systemd-analyze verify (exit $rc): $out"
fi
# The check itself: a misspelled key must show up (verify still exits 0).
mkdir -p "$U/bad"
sed 's/^KillMode=/KilMode=/' "$U/jobpool.service" >"$U/bad/jobpool.service"
cp "$sock" "$U/bad/jobpool.socket"
out=$(verify bad/jobpool.service)
jp_match "verify reports a misspelled key (so an empty output means something)" \
	"Unknown key 'KilMode'" "$out"

# ----- systemd-analyze security: exposure at most 2.5 -----
# --offline takes a boolean; older releases documented it as "yes".
sec() { (cd "$U" && systemd-analyze security --offline="$1" --threshold=$MAX_EXPOSURE \
	--no-pager jobpool.service 2>&1); }
out=$(sec true); rc=$?
if printf '%s' "$out" | grep -q 'Failed to parse'; then out=$(sec yes); rc=$?; fi
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for jobpool.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $level (threshold $MAX_EXPOSURE tenths)"
if [ $rc -eq 0 ] && [ -n "$level" ]; then
	jp_pass "systemd-analyze security --offline --threshold=$MAX_EXPOSURE passes ($level)"
else
	jp_fail "systemd-analyze security (exit $rc, exposure '${level:-?}'):"
	printf '%s\n' "$out" | grep '✗' >&2
fi
# The threshold bites: the same unit without its hardening fails it.
grep -vE '^(Protect|Private|Restrict|SystemCall|Capability|NoNew|MemoryDeny|LockPers|IPAddress|ProcSubset|RemoveIPC|Keyring|DevicePolicy)' \
	"$U/jobpool.service" >"$U/bad/jobpool.service"
if (cd "$U/bad" && systemd-analyze security --offline=yes --threshold=$MAX_EXPOSURE \
	jobpool.service >/dev/null 2>&1); then
	jp_fail "security: an unhardened unit passes the threshold too"
else
	jp_pass "security: the unit without its hardening fails the threshold"
fi

# ----- the pieces that make socket activation and a clean stop work -----
jp_eq "the socket: one ListenStream" "ListenStream=/run/jobpool/jobpool.sock" "$(grep '^ListenStream=' "$sock")"
jp_eq "the socket: owner, group, mode" "SocketUser=jobpool SocketGroup=jobpool SocketMode=0660" \
	"$(grep -E '^Socket(User|Group|Mode)=' "$sock" | tr '\n' ' ' | sed 's/ $//')"
jp_eq "the service requires its socket" "Requires=jobpool.socket After=jobpool.socket" \
	"$(grep -E '^(Requires|After)=' "$svc" | tr '\n' ' ' | sed 's/ $//')"
for kv in User=jobpool Group=jobpool RuntimeDirectory=jobpool RuntimeDirectoryPreserve=yes \
	StateDirectory=jobpool KillMode=mixed Restart=on-failure RestartPreventExitStatus=78 \
	WatchdogSec=30s; do
	if grep -qx "$kv" "$svc"; then jp_pass "service: $kv"; else jp_fail "service: no $kv"; fi
done
# TimeoutStopSec must stay above the default shutdown_timeout + kill_timeout.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$svc")
st=$(sed -n 's/^shutdown_timeout = \([0-9]*\);/\1/p' "$top_srcdir/conf/jobpool.conf")
kt=$(sed -n 's/^kill_timeout = \([0-9]*\);/\1/p' "$top_srcdir/conf/jobpool.conf")
if [ -n "$stop" ] && [ "$stop" -ge $((st + kt + 10)) ]; then
	jp_pass "TimeoutStopSec=$stop leaves room for shutdown_timeout $st + kill_timeout $kt"
else
	jp_fail "TimeoutStopSec='$stop' is too close to shutdown_timeout $st + kill_timeout $kt"
fi

jp_done
