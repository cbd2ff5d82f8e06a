#!/usr/bin/env bash
# it_deb.sh: the Debian packages (debian/), end to end, as an administrator meets them.
# Builds them with `dpkg-buildpackage -us -uc -b` (DEB_BUILD_OPTIONS=nocheck) from a copy
# of the source tree, so no build directory is touched; lintian finds no error in them.
# Then, in the project's bookworm tree (tests/nspawn_prepare.sh, booted with systemd by
# tests/nspawn.sh, --volatile=overlay: the tree is never changed):
#   dpkg -i: the system user jobpool exists, jobpool.socket and jobpool.service are
#   enabled and active, /etc/jobpool/jobpool.conf is a conffile, a job goes through with
#   jobpoolctl, and a C producer built with pkg-config against libjobpool-dev (its
#   resend with an idempotency token gets the first job) runs on
#   libjobpool0; python3 -m jobpool from python3-jobpool runs a job; the metrics
#   reference the man page names is where it says; a reinstall restarts the daemon and
#   a delayed job survives it
#   dpkg --purge: no jobpoold runs, the units are gone, and every file or directory the
#   install and the daemon made is gone (/etc/jobpool, /var/lib/jobpool, /run/jobpool,
#   the units' enablement links); the user jobpool stays, by design (debian/jobpool.postrm)
# Needs root, dpkg-dev and debhelper (quickstart.sh test installs them), the packages'
# Build-Depends, systemd-nspawn and the bookworm tree: skipped with the reason otherwise.
# About a minute, most of it the package build (20-40 s on 2 shared cores).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

. "$top_srcdir/tests/nspawn.sh"
command -v dpkg-buildpackage >/dev/null 2>&1 || skip "dpkg-buildpackage is missing (dpkg-dev)"
command -v dh >/dev/null 2>&1 || skip "dh is missing (debhelper)"

T0=$(date +%s)
trap 'nspawn_down; jp_cleanup' EXIT

# ----- a copy of the source tree -----
# From a git checkout, the files git knows of or would (tracked, and untracked but not
# ignored) as they are in the work tree: a developer's uncommitted change is built.
# From a release tarball's tree, what make distdir puts in one.
SRC="$JP_TMP/src/jobpool"
mkdir -p "$SRC"
if git -C "$top_srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top_srcdir" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$SRC" -xf - ||
		{ echo "copying the source tree failed" >&2; exit 99; }
	echo "source: the git work tree $top_srcdir"
else
	make -s -C "$top_builddir" distdir distdir="$SRC" top_distdir="$SRC" \
		>"$JP_TMP/distdir.out" 2>&1 || { cat "$JP_TMP/distdir.out" >&2; exit 99; }
	echo "source: make distdir"
fi
[ -f "$SRC/debian/control" ] || { echo "no debian/control in the source copy" >&2; exit 99; }
if ! unmet=$(cd "$SRC" && dpkg-checkbuilddeps -P nocheck 2>&1); then
	skip "the packages' Build-Depends are not installed: ${unmet##*: }"
fi

# ----- build and lint -----
echo "dpkg-buildpackage -us -uc -b (nocheck)"
if ! (cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc 2>/dev/null || echo 2)" \
	DEB_BUILD_PROFILES=nocheck timeout 900 dpkg-buildpackage -us -uc -b \
	>"$JP_TMP/build.out" 2>&1); then
	tail -30 "$JP_TMP/build.out" >&2
	jp_fail "dpkg-buildpackage failed"
	jp_done
fi
echo "built in $(( $(date +%s) - T0 )) s"
DEBS="$JP_TMP/debs"
mkdir -p "$DEBS"
for p in jobpool libjobpool0 libjobpool-dev python3-jobpool; do
	f=$(ls "$JP_TMP"/src/"${p}"_*.deb 2>/dev/null)
	if [ -f "$f" ]; then
		cp "$f" "$DEBS/"
		jp_pass "the package $p was built"
	else
		jp_fail "the package $p was not built"
	fi
done
[ "$JP_FAILS" -eq 0 ] || jp_done

if command -v lintian >/dev/null 2>&1; then
	lint=$(lintian --fail-on error "$JP_TMP"/src/jobpool_*.changes 2>&1); rc=$?
	lint=$(printf '%s\n' "$lint" | grep -v '^running with root privileges')
	[ -n "$lint" ] && printf 'lintian: %s\n' "$lint"
	jp_eq "lintian finds no error" 0 "$rc"
else
	echo "SKIP (part): lintian is missing (apt-get install lintian)"
fi

# libjobpool-dev as a producer uses it: compiled with what its jobpool.pc says, linked
# with the libjobpool.so link it ships (to libjobpool0's library).
DEV="$JP_TMP/devroot"
for p in libjobpool0 libjobpool-dev; do dpkg-deb -x "$DEBS/${p}"_*.deb "$DEV"; done
pcdir=$(dirname "$(find "$DEV" -name jobpool.pc | head -1)")
cat >"$JP_TMP/producer.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <jobpool.h>

int
main(void)
{
	struct jobpool_submit_opts opts = { .queue = "default", .flags = JOBPOOL_WAIT };
	struct jobpool_submit_opts later = { .queue = "default", .delay_ms = 600000 };
	struct jobpool_result res;
	struct jobpool *jp;
	uint64_t id, first, again;
	int dup1, dup2;

	if ((jp = jobpool_connect(NULL)) == NULL) {
		perror("jobpool_connect");
		return 1;
	}
	if (jobpool_submit(jp, &opts, "from libjobpool", 15, &id) != JOBPOOL_OK ||
	    jobpool_wait(jp, id, 10000, &res) != JOBPOOL_OK) {
		fprintf(stderr, "producer: %s\n", jobpool_error(jp));
		return 1;
	}
	/* An idempotency token (0.1.0's second interface): a resend is the first job. */
	if (jobpool_submit_idem(jp, &later, NULL, "deb-1", "a", 1, &first, &dup1) != JOBPOOL_OK ||
	    jobpool_submit_idem(jp, &later, NULL, "deb-1", "b", 1, &again, &dup2) != JOBPOOL_OK ||
	    dup1 != 0 || dup2 != 1 || again != first) {
		fprintf(stderr, "producer: idem: %s (dup %d %d, ids %llu %llu)\n",
		    jobpool_error(jp), dup1, dup2, (unsigned long long)first,
		    (unsigned long long)again);
		return 1;
	}
	printf("%s %s\n", res.status_name, (char *)res.data);
	jobpool_result_free(&res);
	jobpool_close(jp);
	return 0;
}
C
if ! flags=$(PKG_CONFIG_SYSROOT_DIR="$DEV" PKG_CONFIG_LIBDIR="$pcdir" \
	pkg-config --cflags --libs jobpool 2>&1) ||
    ! cc -o "$DEBS/producer" "$JP_TMP/producer.c" $flags 2>"$JP_TMP/cc.out"; then
	cat "$JP_TMP/cc.out" >&2 2>/dev/null
	jp_fail "a producer does not build against libjobpool-dev (pkg-config: $flags)"
else
	jp_pass "a producer builds against libjobpool-dev with pkg-config ($flags)"
fi

# ----- install in the bookworm tree -----
nspawn_up "$TREE" "$DEBS"
# What is on the system before, to compare with what is left after the purge: every
# path under these, less what dpkg, logging and systemd's own state change anyway.
paths() {
	ct find /etc /usr /var /run -xdev 2>/dev/null | grep -vE \
		'^/var/lib/dpkg/|^/var/log/|^/var/cache/|^/run/systemd/|^/run/user/|^/run/log/|^/var/lib/systemd/(catalog|random-seed|timers|timesync)|^/etc/(passwd|group|shadow|gshadow)-$|^/run/(utmp|mount|lock|agetty\.reload)' |
		sort
}
paths >"$JP_TMP/paths.before"
pkgs="$(cd "$DEBS" && ls libjobpool0_*.deb libjobpool-dev_*.deb jobpool_*.deb python3-jobpool_*.deb | sed 's|^|/opt/jobpool-inst/|' | tr '\n' ' ')"
out=$(ct dpkg -i $pkgs 2>&1); rc=$?
[ "$rc" -eq 0 ] || printf '%s\n' "$out" >&2
jp_eq "dpkg -i $(for f in $pkgs; do f=${f##*/}; printf '%s ' "${f%%_*}"; done)succeeds" 0 "$rc"

ent=$(ct getent passwd jobpool)
jp_match "the system user jobpool exists (uid below 1000, home /var/lib/jobpool)" \
	'^jobpool:x:[0-9]{1,3}:[0-9]+:.*:/var/lib/jobpool:' "$ent"
jp_match "... with its group" '^jobpool:x:[0-9]+:' "$(ct getent group jobpool)"
active() { ct systemctl is-active "$1"; }
jp_eq_until "jobpool.socket is active" active 30 active jobpool.socket
jp_eq_until "jobpool.service is active" active 30 active jobpool.service
jp_eq "both are enabled" "enabled enabled" \
	"$(ct systemctl is-enabled jobpool.socket jobpool.service | tr '\n' ' ' | sed 's/ $//')"
jp_eq "the daemon runs as jobpool" "jobpool" \
	"$(ct ps -o user= -p "$(ct systemctl show -p MainPID --value jobpool)" | tr -d ' ')"
jp_match "/etc/jobpool/jobpool.conf is a conffile" '^ /etc/jobpool/jobpool.conf [0-9a-f]{32}$' \
	"$(ct dpkg-query -W -f='${Conffiles}\n' jobpool)"
jp_eq "a job goes through with jobpoolctl" \
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" \
	"$(ct jobpoolctl submit -w -q hash hello 2>&1)"
jp_eq "the producer built against libjobpool-dev runs on libjobpool0 (a token resent: the first job)" "ok from libjobpool" \
	"$(ct /opt/jobpool-inst/producer 2>&1)"
lib=$(ct ldd /opt/jobpool-inst/producer | awk '$1 == "libjobpool.so.0" { print $3 }')
jp_match "... which it finds where libjobpool0 put it" '^libjobpool0(:[a-z0-9]+)?: /usr/lib/[^/]+/libjobpool\.so\.0\.[0-9]+\.[0-9]+$' \
	"$(ct sh -c "dpkg -S \"\$(realpath '$lib')\"" 2>&1)"
# python3-jobpool: where dh_python3 put it, for the tree's python3.
jp_match "python3-jobpool depends on python3 3.11 or later" '(^|, )python3(:any)? \(>= 3\.11' \
	"$(dpkg-deb -f "$DEBS"/python3-jobpool_*.deb Depends)"
jp_eq "python3 -m jobpool, from python3-jobpool, runs a job" \
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" \
	"$(ct python3 -m jobpool submit -w hash hello 2>&1)"
jp_match "... from /usr/lib/python3/dist-packages" '^/usr/lib/python3/dist-packages/jobpool/__init__\.py$' \
	"$(ct python3 -c 'import jobpool; print(jobpool.__file__)' 2>&1)"
jp_match "jobpoold's man page is installed" '^/usr/share/man/man8/jobpoold\.8\.gz$' \
	"$(ct dpkg -L jobpool | grep 'man8/jobpoold')"

mpath=$(ct sh -c 'zcat /usr/share/man/man8/jobpoold.8.gz' | grep -o '/[^ ]*/METRICS\.md' | head -1)
jp_eq "the metrics reference jobpoold(8) names is there (${mpath:-none named})" yes \
	"$(ct sh -c "[ -n '$mpath' ] && [ -f '$mpath' ] && echo yes || echo no")"
# The dashboard's page, from /usr/share/jobpool/dashboard, on the installed config's
# loopback listener (bash's /dev/tcp: the tree has no curl).
jp_match "the installed daemon serves the dashboard's page" '<title>jobpool</title>' \
	"$(ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/9466 &&
		printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' 2>&1)"

# A reinstall (as an upgrade does) restarts the daemon: an acknowledged delayed job is in
# the journal, under /var/lib/jobpool, and comes back.
main=$(ct systemctl show -p MainPID --value jobpool)
kept=$(ct jobpoolctl submit -q default --delay 3600 kept 2>&1)
out=$(ct dpkg -i $pkgs 2>&1); rc=$?
[ "$rc" -eq 0 ] || printf '%s\n' "$out" >&2
jp_eq "a reinstall succeeds" 0 "$rc"
restarted() { local m; m=$(ct systemctl show -p MainPID --value jobpool); [ "$m" != "$main" ] && [ "$m" != 0 ]; }
jp_ok_until "... and restarts jobpool.service" 30 restarted
jp_eq_until "... which is active again" active 30 active jobpool.service
jp_eq "the delayed job survives it" delayed \
	"$(ct jobpoolctl status "$kept" 2>&1 | awk -F': ' '$1 == "state" { print $2 }')"
jp_eq "the journal is there, the user's" "jobpool" "$(ct stat -c %U /var/lib/jobpool/journal 2>&1)"
echo "installed and checked: $(( $(date +%s) - T0 )) s so far"

# ----- purge -----
purge="python3-jobpool jobpool libjobpool-dev libjobpool0"
out=$(ct dpkg --purge $purge 2>&1); rc=$?
[ "$rc" -eq 0 ] || printf '%s\n' "$out" >&2
jp_eq "dpkg --purge succeeds" 0 "$rc"
jp_eq "no package is left" "" \
	"$(ct dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'jobpool' 'libjobpool*' 'python3-jobpool' 2>/dev/null | grep -v '^un ')"
no_daemon() { ! ct pgrep -x jobpoold >/dev/null; }
jp_ok_until "no jobpoold runs" 10 no_daemon
jp_eq "systemd knows no jobpool unit file" "" \
	"$(ct systemctl list-unit-files --no-legend 'jobpool.*')"
jp_eq "jobpool.socket and jobpool.service are inactive" "inactive inactive" \
	"$(ct systemctl is-active jobpool.socket jobpool.service | tr '\n' ' ' | sed 's/ $//')"
paths >"$JP_TMP/paths.after"
left=$(comm -13 "$JP_TMP/paths.before" "$JP_TMP/paths.after")
jp_eq "nothing the install or the daemon made is left" "" "$left"
for d in /etc/jobpool /var/lib/jobpool /run/jobpool; do
	jp_eq "... $d is gone" "no" "$(ct sh -c "[ -e $d ] && echo yes || echo no")"
done
# Debian keeps a package's system user on purge: files owned by its uid may be left
# anywhere (an administrator's copy of the journal), and a new account reusing the uid
# would own them. systemd-sysusers never removes one either.
jp_match "the user jobpool stays (by design)" '^uid=[0-9]+\(jobpool\)' "$(ct id jobpool 2>&1)"

nspawn_down
echo "it_deb: $(( $(date +%s) - T0 )) s in all"
jp_done
