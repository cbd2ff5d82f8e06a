# tests/nspawn.sh: sourced by the tests that boot the project's Debian tree with
# systemd (it_nspawn.sh, it_deb.sh), right after tests/lib.sh. The tree is built once by
# tests/nspawn_prepare.sh; --volatile=overlay leaves it unchanged. Sourcing it skips the
# test, with the reason, without root, systemd-nspawn, nsenter or the bookworm tree
# (TREE, $JOBPOOL_NSPAWN_TREE or the cache's). The caller sets T0 (its start, for the
# timings it prints) and a trap that calls nspawn_down.
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to boot a container with systemd-nspawn"
command -v systemd-nspawn >/dev/null 2>&1 ||
	skip "systemd-nspawn is missing (apt-get install systemd-container)"
command -v nsenter >/dev/null 2>&1 || skip "nsenter is missing (util-linux)"
TREE=${JOBPOOL_NSPAWN_TREE:-/var/cache/jobpool-nspawn/bookworm}
msg=$(bash "$top_srcdir/tests/nspawn_prepare.sh" --check "$TREE") || skip "$msg"

NSPID=
WDPID=
P1=
# nspawn_up TREE INSTDIR: boot TREE with INSTDIR at /opt/jobpool-inst; sets NSPID and P1.
nspawn_up() {
	local c
	MACHINE="jobpool-test-$$-$(basename "$1")"
	P1=
	systemd-nspawn -q -D "$1" -b -M "$MACHINE" --register=no --keep-unit \
		--volatile=overlay --console=read-only --bind-ro="$2:/opt/jobpool-inst" \
		>"$JP_TMP/nspawn.log" 2>&1 &
	NSPID=$!
	# Whatever happens, the container does not outlive 4 minutes.
	( sleep 240; kill -KILL "$NSPID" 2>/dev/null ) >/dev/null 2>&1 &
	WDPID=$!
	# PID 1 of the container: the child of systemd-nspawn whose comm is systemd once
	# its private bus socket exists (the first child is a short-lived intermediate).
	jp_until 15 find_pid1
	if [ -z "$P1" ]; then
		echo "the container did not boot; nspawn said:" >&2
		tail -20 "$JP_TMP/nspawn.log" >&2
		exit 99
	fi
	state=$(ct systemctl is-system-running --wait 2>&1)
	echo "container $(basename "$1") booted: $state ($(( $(date +%s) - T0 )) s so far)"
	case "$state" in running|degraded) ;; *) echo "container state: $state" >&2; exit 99;; esac
}

# find_pid1: sets P1 once the container's systemd is up; true then, or once nspawn died.
find_pid1() {
	local c
	for c in $(pgrep -P "$NSPID" 2>/dev/null); do
		if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] &&
		    [ -e /proc/"$c"/root/run/systemd/private ]; then
			P1=$c
		fi
	done
	[ -n "$P1" ] || ! kill -0 "$NSPID" 2>/dev/null
}
nspawn_gone() { ! kill -0 "$NSPID" 2>/dev/null; }

nspawn_down() {
	[ -n "$NSPID" ] || return 0
	if [ -n "$P1" ] && kill -0 "$NSPID" 2>/dev/null; then
		timeout 10 nsenter -t "$P1" -a systemctl poweroff >/dev/null 2>&1
		jp_until 10 nspawn_gone
	fi
	if kill -0 "$NSPID" 2>/dev/null; then
		kill -TERM "$NSPID" 2>/dev/null
		jp_until 5 nspawn_gone
		kill -KILL "$NSPID" 2>/dev/null
	fi
	wait "$NSPID" 2>/dev/null
	[ -n "$WDPID" ] && kill "$WDPID" 2>/dev/null
	NSPID=
	P1=
}

# A command in the container, with a clean environment (lib.sh's JOBPOOL_SOCKET and the
# like belong to the host).
ct() {
	timeout 60 nsenter -t "$P1" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
