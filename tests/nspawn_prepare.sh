#!/usr/bin/env bash
# nspawn_prepare.sh: build, once, a Debian tree that tests/it_nspawn.sh boots with
# systemd-nspawn (see it_nspawn.sh). `./quickstart.sh test` runs it for both suites.
#
#   tests/nspawn_prepare.sh [--suite SUITE] [DIR]
#   tests/nspawn_prepare.sh --check [--suite SUITE] [DIR]   only say whether it is ready
#                                                          (0, else 77)
#
# SUITE is bookworm (the default: systemd 252, Type=notify with ExecReload=) or trixie
# (systemd 257, Type=notify-reload). DIR defaults to $JOBPOOL_NSPAWN_TREE (bookworm) or
# $JOBPOOL_NSPAWN_TREE_TRIXIE (trixie), else /var/cache/jobpool-nspawn/SUITE. A tree that
# is already complete is left alone. Needs root, debootstrap and the Debian mirror this
# machine's apt uses (35-90 s, ~250 MB each). Exit 0: the tree is ready; 77: it cannot be
# built here (not root, no debootstrap), with the reason on stdout; 1: building failed.
set -u

check=0
suite=bookworm
while [ $# -gt 0 ]; do
	case $1 in
	--check) check=1; shift ;;
	--suite) suite=${2:-}; shift 2 || shift ;;
	*) break ;;
	esac
done
# systemd as PID 1, procps for /bin/kill, and jobpoold's run-time libraries (those of
# the build host: it_nspawn.sh copies in any the tree lacks, such as bookworm's
# libconfig.so.9 into trixie, which has libconfig.so.11). In bookworm, exactly the
# Depends of the jobpool and python3-jobpool packages that tests/it_deb.sh installs
# with dpkg -i (python3 for python3-jobpool).
case $suite in
bookworm)
	dir=${1:-${JOBPOOL_NSPAWN_TREE:-/var/cache/jobpool-nspawn/bookworm}}
	include=systemd,systemd-sysv,dbus,procps,libevent-core-2.1-7,libevent-extra-2.1-7,libconfig9,libhiredis0.14,python3
	;;
trixie)
	dir=${1:-${JOBPOOL_NSPAWN_TREE_TRIXIE:-/var/cache/jobpool-nspawn/trixie}}
	include=systemd,systemd-sysv,dbus,procps,libevent-core-2.1-7t64,libevent-extra-2.1-7t64
	;;
*)
	echo "nspawn tree: unknown suite '$suite' (bookworm or trixie)"
	exit 1
	;;
esac
mark="$dir/.jobpool-nspawn-tree"

# Complete, and built with this package list.
ready() {
	[ -x "$dir/usr/lib/systemd/systemd" ] && [ -x "$dir/usr/bin/kill" ] &&
		[ "$(cat "$mark" 2>/dev/null)" = "$include" ]
}

if ready; then
	echo "nspawn tree ready: $dir"
	exit 0
fi
if [ $check = 1 ]; then
	echo "no $suite nspawn tree at $dir (./quickstart.sh test or tests/nspawn_prepare.sh --suite $suite builds it, as root)"
	exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "nspawn tree: not built: debootstrap needs root"
	exit 77
fi
if ! command -v debootstrap >/dev/null 2>&1; then
	echo "nspawn tree: not built: debootstrap is missing (apt-get install debootstrap)"
	exit 77
fi

# The mirror apt already uses here: a one-line "deb URI SUITE main" or a deb822 .sources
# stanza listing SUITE; for a suite this machine does not run (trixie on a bookworm
# host), the mirror of the one it does run: a Debian mirror carries every release.
mirror_of() {
	local f uri
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$1" '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i < NF; i++) if ($(i + 1) == s && $i ~ /^(https?|file):/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$1" '
			/^[ \t]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
			tolower($1) == "uris:" && $2 !~ /security/ { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok) print u }' "$f" | head -1)
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
}
mirror() {
	local s uri host
	host=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	for s in "$suite" $host; do
		uri=$(mirror_of "$s")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	echo "http://deb.debian.org/debian"
}

mkdir -p "$(dirname "$dir")" || exit 1
# One builder at a time; a second one waits and then finds the tree ready.
exec 9>"$dir.lock"
if ! flock -w 600 9; then
	echo "nspawn tree: another build holds $dir.lock"
	exit 1
fi
ready && { echo "nspawn tree ready: $dir"; exit 0; }

m=$(mirror)
echo "nspawn tree: debootstrap $suite from $m into $dir (about a minute)"
rm -rf "$dir.tmp"
start=$(date +%s)
if ! timeout 300 debootstrap --variant=minbase --include="$include" \
	"$suite" "$dir.tmp" "$m" >"$dir.log" 2>&1; then
	echo "nspawn tree: debootstrap failed; the end of $dir.log:"
	tail -15 "$dir.log"
	rm -rf "$dir.tmp"
	exit 1
fi
echo "$include" >"$dir.tmp/.jobpool-nspawn-tree"
rm -rf "$dir"
mv "$dir.tmp" "$dir" || exit 1
echo "nspawn tree ready: $dir ($(( $(date +%s) - start )) s)"
exit 0
