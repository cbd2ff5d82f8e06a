#!/usr/bin/env bash
# it_nspawn.sh: jobpool as a system service under a real systemd, end to end. Boots a
# Debian bookworm tree (tests/nspawn_prepare.sh builds it once) with systemd-nspawn
# (--volatile=overlay: the tree is never changed), installs a fresh non-sanitizer build
# into it as `make install` lays it out, and as an operator would:
#   systemctl start jobpool      active only once READY=1 came: every worker is idle
#   jobs flow through the socket jobpool.socket holds; systemctl status shows STATUS=;
#   /metrics on 127.0.0.1:9466 (the installed config) answers through the unit's
#   sandbox (IPAddressAllow=localhost) and counts them
#   the journal: a delayed job survives systemctl restart, in /var/lib/jobpool/journal
#   edit jobpool.conf + systemctl reload: applied by the time it returns (ExecReload=
#   runs jobpoolctl reload), and a map running across it loses nothing; a broken edit:
#   systemctl reload fails, the daemon runs on the old config, the error with file:line
#   in journalctl -u jobpool (at priority err)
#   journalctl JOB_ID=<id> finds a job's lines (a timeout, a retry), with QUEUE= and
#   WORKER_PID=
#   a stuck master (SIGSTOP) is killed by the watchdog and restarted
#   systemctl stop jobpool: a running job finishes, Result=success; the socket stays
#   and the next connection starts the daemon again
# Then, in a Debian trixie tree (systemd 257), the unit as rendered for systemd 253+:
#   Type=notify-reload: systemctl start waits for READY=1; systemctl reload sends SIGHUP
#   and returns once READY=1 ends the reload, applied; a reload signal jobpoold does not
#   answer keeps systemctl reload waiting until it times out; a broken edit leaves the
#   daemon on the old config with the error in the journal
# Needs root, systemd-nspawn (systemd-container), nsenter and the bookworm tree: skipped
# with the reason otherwise; without the trixie tree that part alone is skipped, with
# the reason. See ../shared/SYSTEMD-TESTING.md for the recipe's facts.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

. "$top_srcdir/tests/nspawn.sh"
TREE_TRIXIE=${JOBPOOL_NSPAWN_TREE_TRIXIE:-/var/cache/jobpool-nspawn/trixie}
trixie_msg=$(bash "$top_srcdir/tests/nspawn_prepare.sh" --check --suite trixie "$TREE_TRIXIE")
have_trixie=$?

T0=$(date +%s)
trap 'nspawn_down; jp_cleanup' EXIT

# ----- a non-sanitizer build, laid out by make install -----
B="$JP_TMP/build"
INST="$JP_TMP/inst"
mkdir -p "$B"
echo "building jobpool for the container (--prefix=/usr --sysconfdir=/etc)"
if ! (cd "$B" && timeout 300 "$top_srcdir/configure" --prefix=/usr --sysconfdir=/etc \
	--localstatedir=/var CFLAGS=-O2 >configure.out 2>&1 &&
	timeout 300 make -s -j"$(nproc 2>/dev/null || echo 2)" daemon/jobpoold cli/jobpoolctl \
		systemd/jobpool.service systemd/sysusers.d/jobpool.conf >make.out 2>&1 &&
	timeout 120 make -s DESTDIR="$INST" install-sbinPROGRAMS install-binPROGRAMS \
		install-systemdsystemunitDATA install-dist_systemdsystemunitDATA \
		install-sysusersDATA install-jobpoolconf install-man >install.out 2>&1); then
	tail -20 "$B"/configure.out "$B"/make.out "$B"/install.out 2>/dev/null
	echo "the build for the container failed" >&2
	exit 99
fi
echo "built in $(( $(date +%s) - T0 )) s"

# ----- boot a tree, install into it -----
# make install's files into the (overlay) root; the user from sysusers.d, as a package
# would create it. A library jobpoold needs that the tree lacks (trixie has
# libconfig.so.11, not bookworm's .9) is copied from this machine into /usr/local/lib.
install_in() {
	local lib path
	if ! ct sh -c 'tar -C /opt/jobpool-inst -cf - . | tar -C / -xf - --keep-directory-symlink &&
		systemd-sysusers && systemctl daemon-reload' >"$JP_TMP/install-in.out" 2>&1; then
		cat "$JP_TMP/install-in.out" >&2
		exit 99
	fi
	for lib in $(ct ldd /usr/sbin/jobpoold | awk '$2 == "=>" && $3 == "not" { print $1 }'); do
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l && $NF ~ /^\// { print $NF; exit }')
		[ -n "$path" ] || { echo "jobpoold needs $lib, which neither tree nor host has" >&2; exit 99; }
		echo "the tree lacks $lib: copying this machine's $path"
		ct sh -c "mkdir -p /usr/local/lib && cat >/usr/local/lib/$lib" <"$path" || exit 99
	done
	ct ldconfig
	if ct ldd /usr/sbin/jobpoold | grep -q 'not found'; then
		echo "jobpoold cannot run in the container:" >&2
		ct ldd /usr/sbin/jobpoold >&2
		exit 99
	fi
	jp_match "systemd-sysusers made the user jobpool" '^uid=[0-9]+\(jobpool\) gid=[0-9]+\(jobpool\)' \
		"$(ct id jobpool 2>&1)"
	jp_eq "the units are known" "jobpool.service jobpool.socket" \
		"$(ct systemctl list-unit-files --no-legend 'jobpool.*' | awk '{ print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')"
}

# ----- bookworm: systemd 252, Type=notify with ExecReload=jobpoolctl reload -----
nspawn_up "$TREE" "$INST"
install_in

show() { ct systemctl show -p "$1" --value jobpool; }
journal() { ct journalctl -b --no-pager "$@"; }
# What systemd and the daemon log reaches the journal through journald, which may not
# have stored it yet when the command that caused it returns: the checks on the journal
# (and on anything else still changing) wait for it, with a deadline (jp_*_until).
unit_log() { journal -u jobpool -o cat; }
unit_errs() { journal -u jobpool -p err -o cat; }
# Worker states from `jobpoolctl status`, one per line.
worker_states() {
	ct jobpoolctl status | awk '/^QUEUE +PID/ { w = 1; next } w && NF >= 5 { print $1, $3 }'
}

# ----- start: active only once READY=1, i.e. with every worker up -----
out=$(ct systemctl start jobpool 2>&1); rc=$?
jp_eq "systemctl start jobpool succeeds" "0" "$rc${out:+: $out}"
jp_eq "active (running) when systemctl start returns" "active running" \
	"$(show ActiveState) $(show SubState)"
states=$(worker_states)
n=$(printf '%s\n' "$states" | grep -c .)
idle=$(printf '%s\n' "$states" | grep -c ' idle$')
jp_eq "at that moment every worker is up and idle ($n)" "$n" "$idle"
jp_eq "... and there are workers" 1 "$([ "$n" -gt 0 ] && echo 1 || echo 0)"
# In the journal: the daemon's "all workers ready" comes before systemd's "Started".
ready_order() { unit_log | grep -E 'all workers ready|^Started jobpool' | head -2 | tr '\n' '|'; }
jp_match_until "the journal: all workers ready, then Started" '^all workers ready\|Started jobpool' \
	10 ready_order
jp_match_until "jobpoold was handed the socket" 'listening on the socket passed by systemd' \
	10 unit_log
jp_eq "the watchdog is armed" "30s" "$(show WatchdogUSec)"
jp_eq "the daemon runs as jobpool" "jobpool" "$(ct ps -o user= -p "$(show MainPID)" | tr -d ' ')"
jp_eq "the socket belongs to jobpool, mode 0660" "jobpool:jobpool 660" \
	"$(ct stat -c '%U:%G %a' /run/jobpool/jobpool.sock)"
# LimitNOFILE=1024:65536: the master raises its soft limit to the hard one, its workers
# keep the soft one the unit gave. (systemd lowers the hard limit to what it may set:
# in a container under a host limit below 65536, that one.)
main=$(show MainPID)
mlim=$(ct awk '/^Max open files/ { print $4, $5 }' "/proc/$main/limits")
hard=${mlim#* }
jp_eq "the master's descriptor limit is raised to its hard limit" "$hard $hard" "$mlim"
wpid=$(ct ps -o pid= --ppid "$main" | head -1 | tr -d ' ')
jp_eq "a worker keeps the soft limit the unit gave" "1024 $hard" \
	"$(ct awk '/^Max open files/ { print $4, $5 }' "/proc/$wpid/limits")"
jp_match "the raise is logged" "descriptor limit \\(RLIMIT_NOFILE\\) raised from 1024 to $hard" \
	"$(journal -u jobpool -o cat)"

# ----- jobs flow; systemctl status tells the story -----
jp_eq "a job through the system socket" \
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" \
	"$(ct jobpoolctl submit -w -q hash hello 2>&1)"
out=$(seq 1 2000 | ct jobpoolctl map -k -q default 2>&1 | md5sum)
jp_eq "a map of 2000 jobs comes back whole and in order" "$(seq 1 2000 | md5sum)" "$out"
# STATUS= is sent at most once a second.
jp_match_until "systemctl status shows the STATUS= line" \
	'Status: "queued 0, running 0/[0-9]+, done 2001, failed 0"' 10 \
	ct systemctl status jobpool --no-pager

# ----- /metrics through the unit's sandbox (IPAddressAllow=localhost) -----
# The installed jobpool.conf serves it on 127.0.0.1:9466; the tree has no curl, so
# bash's /dev/tcp asks, from the container's host side of the sandbox.
scrape() {
	ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/9466 &&
		printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && cat <&3' |
		tr -d '\r' | sed '1,/^$/d'
}
succeeded() {
	scrape | awk '$1 == "jobpool_jobs_total{queue=\"default\",outcome=\"succeeded\"}" { print $2 }'
}
jp_eq_until "a scrape of /metrics through the unit counts the 2000 jobs of default" 2000 10 succeeded
scrape >"$JP_TMP/scrape"
if command -v promtool >/dev/null 2>&1; then
	if promtool check metrics <"$JP_TMP/scrape" >"$JP_TMP/promtool.out" 2>&1; then
		jp_pass "the scrape through the unit passes promtool check metrics"
	else
		jp_fail "promtool check metrics: $(head -5 "$JP_TMP/promtool.out")"
	fi
fi
jp_match_until "the journal says where metrics are served" \
	'metrics: serving /metrics and /status on http://127.0.0.1:9466' 10 unit_log

# ----- reload: an edit takes effect, no job lost -----
ct sed -i '0,/workers = 2;/s//workers = 3;/' /etc/jobpool/jobpool.conf
# A producer runs maps of 2000 jobs back to back, each checked whole and in order, while
# the daemon reloads.
seq 1 2000 >"$JP_TMP/in"
(
	n=0
	while [ ! -e "$JP_TMP/stop" ]; do
		n=$((n + 1))
		if ! ct jobpoolctl map -k -q default <"$JP_TMP/in" >"$JP_TMP/out" 2>"$JP_TMP/err"; then
			echo "map $n failed: $(head -2 "$JP_TMP/err")" >>"$JP_TMP/producer.errors"
		elif ! cmp -s "$JP_TMP/in" "$JP_TMP/out"; then
			echo "map $n: output differs from input" >>"$JP_TMP/producer.errors"
		fi
		echo "$n" >"$JP_TMP/maps"
	done
) &
producer=$!
maps() { cat "$JP_TMP/maps" 2>/dev/null || echo 0; }
maps_at_least() { [ "$(maps)" -ge "$1" ]; }
jp_until 5 maps_at_least 2
main=$(show MainPID)
out=$(ct systemctl reload jobpool 2>&1); rc=$?
jp_eq "systemctl reload jobpool succeeds" "0" "$rc${out:+: $out}"
# ExecReload= waited for the daemon's answer: the new pool is there already.
jp_eq "when systemctl reload returns, the reload is applied (3 workers in default)" 3 \
	"$(worker_states | grep -c '^default ')"
m=$(maps)
jp_until 5 maps_at_least $((m + 2))
touch "$JP_TMP/stop"
wait "$producer"
if [ -s "$JP_TMP/producer.errors" ]; then
	jp_fail "producer: $(head -3 "$JP_TMP/producer.errors")"
else
	jp_pass "$(maps) maps of 2000 jobs before, across and after the reload: every job back, in order"
fi
default_workers() { worker_states | grep -c '^default '; }
jp_eq_until "the reload took effect: queue default has 3 workers" 3 5 default_workers
jp_eq "same main process after the reload" "$main" "$(show MainPID)"
jp_eq "active (running) after the reload" "active running" "$(show ActiveState) $(show SubState)"
jp_match_until "the journal says it reloaded" 'reloaded /etc/jobpool/jobpool.conf' 10 unit_log

# ----- a broken edit: keeps running on the old config, the journal says why -----
ct sh -c 'printf "bogus = ;\n" >>/etc/jobpool/jobpool.conf'
out=$(ct systemctl reload jobpool 2>&1); rc=$?
if [ "$rc" -ne 0 ]; then
	jp_pass "broken config: systemctl reload fails (exit $rc)"
else
	jp_fail "broken config: systemctl reload exited 0${out:+: $out}"
fi
jp_eq "broken config: ReloadResult=exit-code" "exit-code" "$(show ReloadResult)"
jp_match_until "broken config: the journal has jobpoolctl's error, with file:line" \
	'jobpoolctl: reload: .*/etc/jobpool/jobpool.conf:[0-9]+: ' 10 unit_log
jp_eq "broken config: still active (running), same main process" "active running $main" \
	"$(show ActiveState) $(show SubState) $(show MainPID)"
jp_eq "broken config: the old configuration stays (3 workers)" 3 "$(worker_states | grep -c '^default ')"
jp_eq "broken config: jobs still run" "still" "$(ct jobpoolctl submit -w -q default still 2>&1)"
jp_match_until "broken config: journalctl -u jobpool -p err has file:line" \
	'^/etc/jobpool/jobpool.conf:[0-9]+: ' 10 unit_errs
jp_match_until "broken config: ... and says the old configuration stays" \
	'reload failed: still running on the previous configuration' 10 unit_errs
ct sed -i '/^bogus = ;$/d' /etc/jobpool/jobpool.conf

# ----- journalctl JOB_ID= -----
# A job that times out and is retried: log_job() sends those lines to the journal
# (sd_journal_sendv) with JOB_ID=, QUEUE= and WORKER_PID=. A hard check: a daemon that
# lost its structured fields fails here.
id=$(ct jobpoolctl submit -q sleep --timeout 0.2 2000 2>&1)
retry_logged() {
	lines=$(journal JOB_ID="$1" -o cat 2>&1)
	printf '%s\n' "$lines" | grep -q 'retrying in'
}
jp_until 5 retry_logged "$id"
ct jobpoolctl cancel "$id" >/dev/null 2>&1
jp_match "journalctl JOB_ID=$id finds the job's timeout" "job $id: timed out after 200 ms" "$lines"
jp_match "... and its retry" "job $id: attempt 1 timed out .*; retrying in [0-9]+ ms" "$lines"
json=$(journal JOB_ID="$id" -o json | grep 'timed out after' | head -1)
jp_match "... with QUEUE= and WORKER_PID=" '"QUEUE":"sleep".*"WORKER_PID":"[0-9]+"|"WORKER_PID":"[0-9]+".*"QUEUE":"sleep"' "$json"
jp_match "... and a priority: the timeout is a warning" '"PRIORITY":"4"' "$json"

# ----- the watchdog: a stuck master is killed and restarted -----
ct sh -c 'mkdir -p /run/systemd/system/jobpool.service.d &&
	printf "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n" >/run/systemd/system/jobpool.service.d/test-watchdog.conf &&
	systemctl daemon-reload && systemctl restart jobpool'
main=$(show MainPID)
restarts=$(show NRestarts)
ct kill -STOP "$main"
restarted() {
	new=$(show MainPID)
	[ "$new" != "$main" ] && [ "$new" != 0 ] && [ "$(show ActiveState)" = active ]
}
jp_until 10 restarted
jp_match_until "a stopped master misses its watchdog" 'Watchdog timeout \(limit 2s\)' 10 unit_log
jp_eq "... and is restarted (once, with a new main process)" "$((restarts + 1)) yes" \
	"$(show NRestarts) $([ "$new" != "$main" ] && [ "$new" != 0 ] && echo yes || echo no)"
ct sh -c 'rm -r /run/systemd/system/jobpool.service.d && systemctl daemon-reload'
jp_eq "after the restart, jobs flow" "back" "$(ct jobpoolctl submit -w -q default back 2>&1)"

# ----- the journal (installed config): an acknowledged job survives a restart -----
kept=$(ct jobpoolctl submit -q default --delay 3600 kept 2>&1)
ct systemctl restart jobpool >/dev/null 2>&1
jp_eq "a delayed job survives systemctl restart" delayed \
	"$(ct jobpoolctl status "$kept" 2>&1 | awk -F': ' '$1 == "state" { print $2 }')"
jp_match_until "the start says what the journal gave back" \
	'journal: /var/lib/jobpool/journal, fsync interval; [0-9]+ records read from 1 file in [0-9]+ ms: [1-9][0-9]* jobs? queued again' \
	10 unit_log
jp_eq "the journal belongs to jobpool, mode 0700" "jobpool 700" \
	"$(ct stat -c '%U %a' /var/lib/jobpool/journal)"
ct jobpoolctl cancel "$kept" >/dev/null 2>&1

# ----- stop: a running job finishes, Result=success -----
ct jobpoolctl submit -w -q sleep 2000 >"$JP_TMP/long.out" 2>&1 &
long=$!
jp_until 5 eval "worker_states | grep -q '^sleep busy\$'"
t=$(date +%s%N)
ct systemctl stop jobpool >/dev/null 2>&1
echo "systemctl stop took $(( ($(date +%s%N) - t) / 1000000 )) ms"
wait "$long"
jp_eq "the job running at stop finished" 2000 "$(cat "$JP_TMP/long.out")"
jp_eq "systemctl stop: inactive, Result=success, exit status 0" "inactive success 0" \
	"$(show ActiveState) $(show Result) $(show ExecMainStatus)"
jp_match_until "the journal says it stopped" 'stopped after [0-9]+ s' 10 unit_log

# ----- the socket stays: the next connection starts the daemon again -----
jp_eq "jobpool.socket is still listening" "active" "$(ct systemctl is-active jobpool.socket)"
jp_eq "a job sent to the stopped service starts it and is answered" "woken" \
	"$(ct jobpoolctl submit -w -q default woken 2>&1)"
# The job is answered once the daemon is up, which may be before systemd has
# processed its READY=1 (the unit is still "activating" then): wait for the state.
jp_eq_until "socket activation started it" "active" 10 show ActiveState
ct systemctl stop jobpool jobpool.socket >/dev/null 2>&1
jp_eq "stopped again: Result=success" "inactive success" "$(show ActiveState) $(show Result)"

if [ "$JP_FAILS" -ne 0 ]; then
	echo "---- journalctl -u jobpool (tail) ----" >&2
	journal -u jobpool -o short-monotonic | tail -40 >&2
fi
nspawn_down
echo "bookworm done: $(( $(date +%s) - T0 )) s so far"

# ----- trixie: systemd 257, Type=notify-reload -----
if [ "$have_trixie" -ne 0 ]; then
	echo "SKIP (part): Type=notify-reload under systemd 257: $trixie_msg"
	echo "it_nspawn: $(( $(date +%s) - T0 )) s in all"
	jp_done
fi
fails0=$JP_FAILS
# The same install, with the unit rendered as for systemd 253 and later.
INST_T="$JP_TMP/inst-trixie"
cp -a "$INST" "$INST_T"
rm -f "$B/systemd/jobpool.service"
if ! make -C "$B" -s SYSTEMD_VERSION=257 DESTDIR="$INST_T" install-systemdsystemunitDATA \
	>"$B/install-trixie.out" 2>&1; then
	cat "$B/install-trixie.out" >&2
	exit 99
fi
nspawn_up "$TREE_TRIXIE" "$INST_T"
install_in
jp_match "trixie: systemd 253 or later" '^systemd (25[3-9]|2[6-9][0-9]|[3-9][0-9][0-9]) ' \
	"$(ct systemctl --version | head -1)"
jp_eq "trixie: the unit is Type=notify-reload, without ExecReload=" "notify-reload " \
	"$(show Type) $(ct systemctl cat jobpool | grep '^ExecReload=')"

out=$(ct systemctl start jobpool 2>&1); rc=$?
jp_eq "trixie: systemctl start jobpool succeeds" "0" "$rc${out:+: $out}"
jp_eq "trixie: active (running) when systemctl start returns" "active running" \
	"$(show ActiveState) $(show SubState)"
states=$(worker_states)
jp_eq "trixie: at that moment every worker is up and idle" \
	"$(printf '%s\n' "$states" | grep -c .)" "$(printf '%s\n' "$states" | grep -c ' idle$')"
jp_eq "trixie: a job through the system socket" "up" "$(ct jobpoolctl submit -w -q default up 2>&1)"

# A good reload: SIGHUP, RELOADING=1 with MONOTONIC_USEC=, READY=1; applied on return.
main=$(show MainPID)
ct sed -i '0,/workers = 2;/s//workers = 3;/' /etc/jobpool/jobpool.conf
t=$(date +%s%N)
out=$(ct systemctl reload jobpool 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t) / 1000000 ))
echo "trixie: systemctl reload took $ms ms"
jp_eq "trixie: systemctl reload jobpool succeeds" "0" "$rc${out:+: $out}"
jp_eq "trixie: when it returns, the reload is applied (3 workers in default)" 3 \
	"$(worker_states | grep -c '^default ')"
jp_eq "trixie: same main process, active (running)" "$main active running" \
	"$(show MainPID) $(show ActiveState) $(show SubState)"
jp_match_until "trixie: the journal says it reloaded" 'reloaded /etc/jobpool/jobpool.conf' \
	10 unit_log

# systemctl reload waits for the daemon's READY=1: with a reload signal jobpoold does
# not answer with RELOADING=1 and READY=1 (SIGUSR1 only logs counts), it waits until
# the reload times out, and fails.
ct sh -c 'mkdir -p /run/systemd/system/jobpool.service.d &&
	printf "[Service]\nReloadSignal=SIGUSR1\nTimeoutStartSec=2s\n" >/run/systemd/system/jobpool.service.d/test-reload.conf &&
	systemctl daemon-reload'
t=$(date +%s%N)
out=$(ct systemctl reload jobpool 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t) / 1000000 ))
if [ "$rc" -ne 0 ] && [ "$ms" -ge 1900 ]; then
	jp_pass "trixie: without READY=1, systemctl reload waits for it and times out ($ms ms, exit $rc)"
else
	jp_fail "trixie: unanswered reload: exit $rc after $ms ms (want non-zero after 2 s)${out:+: $out}"
fi
jp_match_until "trixie: ... the journal says the reload timed out" 'Reload operation timed out' \
	10 unit_log
jp_eq "trixie: ... and the daemon runs on" "$main active running" \
	"$(show MainPID) $(show ActiveState) $(show SubState)"
ct sh -c 'rm -r /run/systemd/system/jobpool.service.d && systemctl daemon-reload'

# A broken edit: the daemon stays on the old config and says why. systemd 257 has no
# way for a notify-reload service to report a failed reload (READY=1 ends it either
# way), so systemctl reload exits 0 here; jobpoolctl reload is the one that fails.
ct sh -c 'printf "bogus = ;\n" >>/etc/jobpool/jobpool.conf'
out=$(ct systemctl reload jobpool 2>&1); rc=$?
echo "trixie: systemctl reload with a broken config: exit $rc (notify-reload cannot report failure)"
jp_eq "trixie: broken config: same main process, active (running)" "$main active running" \
	"$(show MainPID) $(show ActiveState) $(show SubState)"
jp_eq "trixie: broken config: the old configuration stays (3 workers)" 3 \
	"$(worker_states | grep -c '^default ')"
jp_match_until "trixie: broken config: journalctl -u jobpool -p err has file:line" \
	'^/etc/jobpool/jobpool.conf:[0-9]+: ' 10 unit_errs
ct jobpoolctl -s /run/jobpool/jobpool.sock reload >/dev/null 2>&1; rc=$?
jp_eq "trixie: broken config: jobpoolctl reload fails (exit 3)" 3 "$rc"
ct sed -i '/^bogus = ;$/d' /etc/jobpool/jobpool.conf

ct systemctl stop jobpool jobpool.socket >/dev/null 2>&1
jp_eq "trixie: systemctl stop: Result=success" "inactive success" "$(show ActiveState) $(show Result)"
if [ "$JP_FAILS" -ne "$fails0" ]; then
	echo "---- trixie: journalctl -u jobpool (tail) ----" >&2
	journal -u jobpool -o short-monotonic | tail -40 >&2
fi
nspawn_down
echo "it_nspawn: $(( $(date +%s) - T0 )) s in all"
jp_done
