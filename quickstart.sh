#!/usr/bin/env bash
# quickstart.sh: set up a fresh Debian 12 machine, build jobpool, and either run the
# daemon in the foreground on its embedded defaults or run the whole test suite.
#
#   ./quickstart.sh          install what is missing, build, start jobpoold
#   ./quickstart.sh test     install what is missing, build with sanitizers, make check;
#                            the last line is "N passed, N failed"
#
# Only packages that are not installed yet are installed (apt-get, as root or via sudo).
set -euo pipefail

cd "$(dirname "$0")"
top=$(pwd)
mode=${1:-run}
jobs=$(nproc 2>/dev/null || echo 2)

# Build tools and libraries, and what the tests use (socat, python3, systemd tools).
packages=(
	gcc make autoconf automake libtool pkg-config
	libevent-dev libconfig-dev libsystemd-dev libhiredis-dev libcurl4-openssl-dev check
	socat python3 systemd procps
	systemd-container debootstrap
)
# The tests alone: tmux, the real terminal that tests/it_top.sh drives jobpoolctl top
# in; promtool (Debian's prometheus package), which checks /metrics
# (tests/it_metrics.sh), and curl, which scrapes it; redis-server, which
# tests/it_redis.sh starts on a loopback port of its own. The prometheus package also
# enables a Prometheus server (prometheus.service, port 9090) where systemd runs; the
# tests do not use it: `systemctl disable --now prometheus` if it is not wanted.
# debhelper, dpkg-dev and lintian, with which tests/it_deb.sh builds and checks the
# Debian packages (their other Build-Depends are in the list above). chromium and
# libjs-dygraphs: tests/it_dashboard.sh loads the dashboard in headless chromium,
# with Debian's dygraphs for its chart and without.
[ "$mode" = test ] && packages+=(tmux prometheus curl redis-server debhelper dpkg-dev lintian
	chromium libjs-dygraphs)

say() { printf '%s\n' "quickstart: $*" >&2; }

install_missing() {
	local missing=() p
	for p in "${packages[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]}"
	local sudo=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
		sudo=sudo
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure into build dir $1 with the remaining arguments, unless it already is.
configure_into() {
	local dir=$1; shift
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf"
		autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/config.status" ] ||
	    [ "$(cat "$dir/.quickstart-args" 2>/dev/null)" != "$*" ]; then
		say "configure $* (in $dir)"
		(cd "$dir" && "$top/configure" "$@" >configure.out 2>&1) || {
			tail -30 "$dir/configure.out"; exit 1; }
		echo "$*" >"$dir/.quickstart-args"
	fi
}

# The Debian trees that tests/it_nspawn.sh boots with systemd-nspawn, built once (about
# a minute each) and reused: bookworm (systemd 252), and trixie (systemd 257, for
# Type=notify-reload). Never fails the run: without root, debootstrap or the mirror the
# test (or its trixie part) skips and says why.
prepare_nspawn_tree() {
	local out rc suite
	if [ "$(id -u)" -ne 0 ]; then
		say "nspawn trees: not prepared (needs root); tests/it_nspawn.sh will skip"
		return 0
	fi
	for suite in bookworm trixie; do
		rc=0
		out=$(bash tests/nspawn_prepare.sh --suite "$suite" 2>&1) || rc=$?
		if [ "$rc" -eq 0 ]; then
			say "$(printf '%s\n' "$out" | tail -1)"
		else
			printf '%s\n' "$out" | sed 's/^/quickstart: /' >&2
			say "nspawn tree $suite: not prepared; tests/it_nspawn.sh will skip $([ "$suite" = bookworm ] && echo it || echo its trixie part)"
		fi
	done
	return 0
}

install_missing

case "$mode" in
run)
	configure_into build
	say "make"
	make -C build -j"$jobs" -s >/dev/null
	sock_hint="build/cli/jobpoolctl"
	# Where jobpoold puts its socket on the embedded defaults (config.c), and so where
	# jobpoolctl run by the same user looks for it.
	if [ "$(id -u)" -eq 0 ]; then
		where="/run/jobpool/jobpool.sock (root's, mode 0660), where jobpoolctl run as
root finds it by itself: run these as root too (sudo -i). It warns that it keeps root;
the system service (README.md) runs it as a user of its own"
	elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
		where="$XDG_RUNTIME_DIR/jobpool/jobpool.sock, where jobpoolctl finds it by itself"
	else
		where="/tmp/jobpool-$(id -u)/jobpool.sock, where jobpoolctl finds it by itself"
	fi
	cat >&2 <<MSG

jobpoold is starting in the foreground on its embedded defaults (Ctrl-C stops it).
Its socket is $where.
In another terminal, try:

    printf '%s\n' a b c | $top/$sock_hint map -k
    $top/$sock_hint submit -w -q hash 'hello'
    $top/$sock_hint status

MSG
	exec build/daemon/jobpoold
	;;
test)
	configure_into build-check --enable-werror --enable-sanitizers
	say "make"
	make -C build-check -j"$jobs" -s >/dev/null
	prepare_nspawn_tree
	say "make check"
	rc=0
	make -C build-check -j"$jobs" check >build-check/check.out 2>&1 || rc=$?
	log=build-check/test-suite.log
	if [ ! -f "$log" ]; then
		tail -40 build-check/check.out
		echo "0 passed, 1 failed"
		exit 1
	fi
	grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' build-check/check.out || true
	if [ "$rc" -ne 0 ]; then
		# Show what failed, from each failing test's own log.
		sed -n '/^FAIL: \|^ERROR: /,/^$/p' "$log" | head -200
	fi
	count() { awk -v k="# $1:" '$1" "$2 == k { print $3; found=1 } END { if (!found) print 0 }' "$log"; }
	pass=$(( $(count PASS) + $(count XFAIL) ))
	fail=$(( $(count FAIL) + $(count ERROR) + $(count XPASS) ))
	skip=$(count SKIP)
	[ "$rc" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1
	if [ "$skip" -gt 0 ]; then
		echo "$pass passed, $fail failed, $skip skipped"
	else
		echo "$pass passed, $fail failed"
	fi
	[ "$fail" -eq 0 ]
	;;
*)
	echo "usage: $0 [test]" >&2
	exit 64
	;;
esac
