#!/usr/bin/env bash
# it_systemd_units.sh: the installed units. `make install DESTDIR=` puts jobpool.service,
# jobpool.socket and the sysusers.d file where pkg-config's systemd.pc says for this
# prefix (not where it says for /usr); `systemd-analyze verify` has nothing at all to
# say about them (it exits 0 on a misspelled key, so any output fails the test);
# `systemd-analyze security --offline` rates the service at 2.5 or less; the Type=
# follows the systemd version (notify-reload from 253, else notify with an ExecReload=
# that runs `jobpoolctl reload`, which waits for the reload and fails on a broken file);
# `make install` never overwrites an edited jobpool.conf and `make uninstall` removes it
# only if unchanged; the installed jobpoold(8) and jobpool.conf(5) name the
# configuration file, unit and sysusers.d directories of this build, as `jobpoold -h`
# does; the service's network is loopback only (for metrics_listen, on loopback in the
# installed jobpool.conf). Runs offline, without systemd as PID 1.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 ||
	{ echo "SKIP: systemd-analyze is missing (package systemd)"; exit 77; }
MAX_EXPOSURE=25		# tenths: 2.5

# ----- make install into a private tree -----
ROOT="$JP_TMP/root"
# The pieces the units need (the whole `make install` comes last, for jobpool.conf).
if ! make -C "$top_builddir" -s DESTDIR="$ROOT" install-sbinPROGRAMS install-binPROGRAMS \
	install-systemdsystemunitDATA install-dist_systemdsystemunitDATA \
	install-sysusersDATA install-jobpoolconf install-man \
	>"$JP_TMP/install.out" 2>&1; then
	cat "$JP_TMP/install.out" >&2
	echo "make install DESTDIR failed" >&2
	exit 99
fi

# ----- the directories: what systemd.pc says under this build's prefix -----
mkvar() { sed -n "s/^$1 = //p" "$top_builddir/Makefile"; }
# A Makefile value like ${prefix}/lib/systemd/system, expanded as make would.
expand() {
	local v=$1 prefix exec_prefix
	prefix=$(mkvar prefix)
	exec_prefix=$(mkvar exec_prefix)
	exec_prefix=${exec_prefix//\$\{prefix\}/$prefix}
	v=${v//\$\{exec_prefix\}/$exec_prefix}
	printf '%s\n' "${v//\$\{prefix\}/$prefix}"
}
prefix=$(mkvar prefix)
cfgargs=$(cd "$top_builddir" && ./config.status --config 2>/dev/null)
# pkgvar VAR DEFAULT: systemd.pc's VAR with every prefix it knows of set to ours.
pkgvar() {
	local v
	v=$(${PKG_CONFIG:-pkg-config} --define-variable=prefix="$prefix" \
		--define-variable=rootprefix="$prefix" --define-variable=root_prefix="$prefix" \
		--variable="$1" systemd 2>/dev/null)
	printf '%s\n' "${v:-$2}"
}
# withdir VAR: the DIR of a --with-VAR=DIR given to configure, expanded, if any.
withdir() {
	local o
	o=$(printf '%s\n' "$cfgargs" | tr ' ' '\n' | sed -n "s/^'*--with-$1=\\(.*\\)'*$/\\1/p" | tail -1)
	[ -n "$o" ] && expand "${o%\'}"
}
# wantdir VAR DEFAULT: where VAR must be: --with-VAR=DIR wins, else pkg-config.
wantdir() { withdir "$1" || pkgvar "$1" "$2"; }
from() { withdir "$1" >/dev/null && echo "--with-$1" || echo "pkg-config's for prefix $prefix"; }
unitdir=$(wantdir systemdsystemunitdir "$prefix/lib/systemd/system")
usersdir=$(wantdir sysusersdir "$prefix/lib/sysusers.d")
echo "prefix $prefix: units in $unitdir, sysusers.d in $usersdir"
jp_eq "configure's unit directory is $(from systemdsystemunitdir)" "$unitdir" \
	"$(expand "$(mkvar systemdsystemunitdir)")"
jp_eq "configure's sysusers.d directory is $(from sysusersdir)" "$usersdir" \
	"$(expand "$(mkvar sysusersdir)")"
case $cfgargs in
*--with-systemdsystemunitdir=*) ;;
*) case $unitdir in
	"$prefix"/*) jp_pass "the unit directory is under the prefix" ;;
	*) jp_fail "the unit directory $unitdir is outside the prefix $prefix" ;;
	esac ;;
esac
svc="$ROOT$unitdir/jobpool.service"
sock="$ROOT$unitdir/jobpool.socket"
sysusers="$ROOT$usersdir/jobpool.conf"
for f in "$svc" "$sock" "$sysusers"; do
	if [ -f "$f" ]; then jp_pass "make install: ${f#"$ROOT"}"
	else jp_fail "make install: no ${f#"$ROOT"}; installed: $(cd "$ROOT" && find . -type f | tr '\n' ' ')"; fi
done
[ -f "$svc" ] && [ -f "$sock" ] || { jp_done; }
jp_match "sysusers.d: the user jobpool" '^u jobpool - "jobpool daemon"' "$(grep -v '^#' "$sysusers")"
jp_match "the service names the sysusers.d file" "^# $usersdir/jobpool.conf\\)" \
	"$(grep -F "$usersdir/jobpool.conf" "$svc")"
jp_match "make install: man pages" 'jobpoold\.8' "$(find "$ROOT" -name 'jobpoold.8*')"

# Every absolute program the service runs must exist in the tree.
exe=$(sed -n 's/^ExecStart=//p' "$svc" | awk '{ print $1 }')
jp_match "ExecStart runs jobpoold from sbindir" '/sbin/jobpoold$' "$exe"
if [ -x "$ROOT$exe" ]; then jp_pass "ExecStart's $exe is installed"
else jp_fail "ExecStart's $exe is not in the installed tree"; fi
jp_match "ExecStartPre checks the configuration" "^ExecStartPre=$exe -t -c /.*/jobpool/jobpool.conf$" \
	"$(grep '^ExecStartPre=' "$svc")"
conf=$(sed -n 's/^ExecStart=.* -c //p' "$svc")
if [ -f "$ROOT$conf" ]; then jp_pass "the configuration $conf is installed"
else jp_fail "the configuration $conf is not installed"; fi

# ----- the man pages name the paths of this build, as `jobpoold -h` does -----
jp_match "jobpoold -h names $conf" "default: $conf when" "$("$top_builddir/daemon/jobpoold" -h)"
for m in jobpoold.8 jobpool.conf.5; do
	f=$(find "$ROOT" -name "$m" -type f | head -1)
	if [ -z "$f" ]; then jp_fail "make install: no $m"; continue; fi
	jp_eq "$m: no @variable@ left unsubstituted" "" \
		"$(grep -o '@[a-z_]*@' "$f" | grep -v '^@include' | sort -u | tr '\n' ' ')"
	jp_eq "$m: every configuration file it names is $conf" "$conf" \
		"$(grep -o '/[^ ]*/jobpool\.conf\b' "$f" | grep -v sysusers | sort -u | tr '\n' ' ' | sed 's/ $//')"
done
f=$(find "$ROOT" -name jobpoold.8 -type f | head -1)
jp_eq "jobpoold.8: the sysusers.d file where it is installed" 1 \
	"$(grep -cxF ".I $usersdir/jobpool.conf" "$f")"
jp_eq "jobpoold.8: the unit directory where the units are installed" 1 \
	"$(grep -cxF ".IR $unitdir ." "$f")"

# ----- Type= follows the systemd version -----
ver=$(mkvar SYSTEMD_VERSION)
ver=${ver%%[!0-9]*}
ctl="$(expand "$(mkvar bindir)")/jobpoolctl"
listen=$(sed -n 's/^ListenStream=//p' "$sock")
reload="ExecReload=$ctl -s $listen reload"
if [ "${ver:-0}" -ge 253 ]; then
	jp_eq "systemd $ver: Type=notify-reload" "Type=notify-reload" "$(grep '^Type=' "$svc")"
	jp_eq "systemd $ver: no ExecReload=" "" "$(grep '^ExecReload=' "$svc")"
else
	jp_eq "systemd $ver: Type=notify" "Type=notify" "$(grep '^Type=' "$svc")"
	jp_eq "systemd $ver: ExecReload= runs jobpoolctl reload on the socket unit's socket" \
		"$reload" "$(grep '^ExecReload=' "$svc")"
	if [ -x "$ROOT$ctl" ]; then jp_pass "ExecReload's $ctl is installed"
	else jp_fail "ExecReload's $ctl is not in the installed tree"; fi
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
		jp_eq "SYSTEMD_VERSION=252 renders Type=notify with ExecReload=jobpoolctl" \
			"Type=notify $reload" \
			"$(grep -E '^(Type|ExecReload)=' "$r" | tr '\n' ' ' | sed 's/ $//')"
	fi
else
	jp_fail "cannot render the unit with SYSTEMD_VERSION=$other"
fi

# ----- systemd-analyze verify: exit 0 and not a word -----
# A copy whose Exec*= point into the tree, so verify finds the programs.
U="$JP_TMP/units"
mkdir -p "$U"
sed -E "s|^(Exec[A-Za-z]*)=/|\\1=$ROOT/|" "$svc" >"$U/jobpool.service"
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
# The network: loopback only, so that Prometheus on this host reaches metrics_listen
# (on loopback in the installed jobpool.conf) and nothing else is reachable.
jp_eq "service: IP on loopback only" "PrivateNetwork=no RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 IPAddressAllow=localhost IPAddressDeny=any" \
	"$(grep -E '^(PrivateNetwork|RestrictAddressFamilies|IPAddressAllow|IPAddressDeny)=' "$svc" | tr '\n' ' ' | sed 's/ $//')"
jp_match "the installed jobpool.conf serves metrics on loopback" '^metrics_listen = "127\.0\.0\.1:[0-9]+";$' \
	"$(grep '^metrics_listen' "$ROOT$conf")"
# TimeoutStopSec must stay above the default shutdown_timeout + kill_timeout.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$svc")
st=$(sed -n 's/^shutdown_timeout = \([0-9]*\);/\1/p' "$top_srcdir/conf/jobpool.conf")
kt=$(sed -n 's/^kill_timeout = \([0-9]*\);/\1/p' "$top_srcdir/conf/jobpool.conf")
if [ -n "$stop" ] && [ "$stop" -ge $((st + kt + 10)) ]; then
	jp_pass "TimeoutStopSec=$stop leaves room for shutdown_timeout $st + kill_timeout $kt"
else
	jp_fail "TimeoutStopSec='$stop' is too close to shutdown_timeout $st + kill_timeout $kt"
fi

# ----- make install keeps an edited jobpool.conf; make uninstall removes only the shipped one -----
# The whole `make install` and `make uninstall`, as a user runs them, into a tree of
# their own (the build is complete by now, and nothing here links against an
# uninstalled shared library, so nothing is rebuilt or relinked).
R2="$JP_TMP/root2"
dmake() { make -C "$top_builddir" -s DESTDIR="$R2" "$@" >>"$JP_TMP/install2.out" 2>&1; }
dconf="$R2$conf"
dmake install || { cat "$JP_TMP/install2.out" >&2; echo "make install failed" >&2; exit 99; }
if cmp -s "$top_srcdir/conf/jobpool.conf" "$dconf"; then
	jp_pass "make install: a fresh tree gets the shipped jobpool.conf"
else
	jp_fail "make install: $conf is not the shipped file"
fi
printf '# edited by the administrator\n' >>"$dconf"
cp "$dconf" "$JP_TMP/edited.conf"
dmake install || { cat "$JP_TMP/install2.out" >&2; exit 99; }
if cmp -s "$JP_TMP/edited.conf" "$dconf"; then
	jp_pass "make install again: the edited jobpool.conf is left as it is"
else
	jp_fail "make install overwrote the edited $conf"
fi
jp_match "make install says it left the file alone" "jobpool.conf exists: left as it is" \
	"$(cat "$JP_TMP/install2.out")"
dmake uninstall || { cat "$JP_TMP/install2.out" >&2; exit 99; }
if cmp -s "$JP_TMP/edited.conf" "$dconf"; then
	jp_pass "make uninstall: the edited jobpool.conf stays"
else
	jp_fail "make uninstall removed or changed the edited $conf"
fi
jp_eq "make uninstall: the rest is gone" "${conf#/}" \
	"$(cd "$R2" && find . -type f | sed 's|^\./||')"
rm -f "$dconf"
dmake install && dmake uninstall || { cat "$JP_TMP/install2.out" >&2; exit 99; }
jp_eq "make uninstall: an unchanged jobpool.conf goes with the rest" "" \
	"$(cd "$R2" && find . -type f)"

jp_done
