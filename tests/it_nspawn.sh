#!/usr/bin/env bash
# it_nspawn.sh: jobpool as a system service under a real systemd, end to end. Boots a
# Debian bookworm tree (tests/nspawn_prepare.sh builds it once) with systemd-nspawn
# (--volatile=overlay: the tree is never changed), installs a fresh non-sanitizer build
# into it as `make install` lays it out, and as an operator would:
#   systemctl start jobpool      active only once READY=1 came: every worker is idle
#   jobs flow through the socket jobpool.socket holds; systemctl status shows STATUS=
#   edit jobpool.conf + systemctl reload: applied, and a map running across it loses
#   nothing; a broken edit: still running on the old config, the error with file:line
#   in journalctl -u jobpool (at priority err)
#   journalctl JOB_ID=<id> finds a job's lines, with QUEUE= and WORKER_PID=
#   a stuck master (SIGSTOP) is killed by the watchdog and restarted
#   systemctl stop jobpool: a running job finishes, Result=success; the socket stays
#   and the next connection starts the daemon again
# Needs root, systemd-nspawn (systemd-container), nsenter and the tree: skipped with
# the reason otherwise. See ../shared/SYSTEMD-TESTING.md for the recipe's facts.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to boot a container with systemd-nspawn"
command -v systemd-nspawn >/dev/null 2>&1 ||
	skip "systemd-nspawn is missing (apt-get install systemd-container)"
command -v nsenter >/dev/null 2>&1 || skip "nsenter is missing (util-linux)"
TREE=${JOBPOOL_NSPAWN_TREE:-/var/cache/jobpool-nspawn/bookworm}
msg=$(bash "$top_srcdir/tests/nspawn_prepare.sh" --check "$TREE") || skip "$msg"

T0=$(date +%s)
NSPID=
WDPID=
P1=
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
		install-sysusersDATA install-dist_jobpoolconfDATA install-man >install.out 2>&1); then
	tail -20 "$B"/configure.out "$B"/make.out "$B"/install.out 2>/dev/null
	echo "the build for the container failed" >&2
	exit 99
fi
echo "built in $(( $(date +%s) - T0 )) s"

# ----- boot -----
MACHINE="jobpool-test-$$"
systemd-nspawn -q -D "$TREE" -b -M "$MACHINE" --register=no --keep-unit \
	--volatile=overlay --console=read-only --bind-ro="$INST:/opt/jobpool-inst" \
	>"$JP_TMP/nspawn.log" 2>&1 &
NSPID=$!
# Whatever happens, the container does not outlive 4 minutes.
( sleep 240; kill -KILL "$NSPID" 2>/dev/null ) >/dev/null 2>&1 &
WDPID=$!

nspawn_down() {
	local i
	[ -n "$NSPID" ] || return 0
	if [ -n "$P1" ] && kill -0 "$NSPID" 2>/dev/null; then
		timeout 10 nsenter -t "$P1" -a systemctl poweroff >/dev/null 2>&1
		for i in $(seq 100); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
	fi
	if kill -0 "$NSPID" 2>/dev/null; then
		kill -TERM "$NSPID" 2>/dev/null
		for i in $(seq 50); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$NSPID" 2>/dev/null
	fi
	wait "$NSPID" 2>/dev/null
	[ -n "$WDPID" ] && kill "$WDPID" 2>/dev/null
	NSPID=
}

# PID 1 of the container: the child of systemd-nspawn whose comm is systemd once its
# private bus socket exists (the first child is a short-lived intermediate).
for _ in $(seq 300); do
	for c in $(pgrep -P "$NSPID" 2>/dev/null); do
		if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] &&
		    [ -e /proc/"$c"/root/run/systemd/private ]; then
			P1=$c
		fi
	done
	[ -n "$P1" ] && break
	kill -0 "$NSPID" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$P1" ]; then
	echo "the container did not boot; nspawn said:" >&2
	tail -20 "$JP_TMP/nspawn.log" >&2
	exit 99
fi
# A command in the container, with a clean environment (lib.sh's JOBPOOL_SOCKET and the
# like belong to the host).
ct() {
	timeout 60 nsenter -t "$P1" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
state=$(ct systemctl is-system-running --wait 2>&1)
echo "container booted: $state ($(( $(date +%s) - T0 )) s so far)"
case "$state" in running|degraded) ;; *) echo "container state: $state" >&2; exit 99;; esac

# make install's files into the (overlay) root; the user from sysusers.d, as a package
# would create it.
if ! ct sh -c 'tar -C /opt/jobpool-inst -cf - . | tar -C / -xf - --keep-directory-symlink &&
	systemd-sysusers && systemctl daemon-reload' >"$JP_TMP/install-in.out" 2>&1; then
	cat "$JP_TMP/install-in.out" >&2
	exit 99
fi
jp_match "systemd-sysusers made the user jobpool" '^uid=[0-9]+\(jobpool\) gid=[0-9]+\(jobpool\)' \
	"$(ct id jobpool 2>&1)"
jp_eq "the units are known" "jobpool.service jobpool.socket" \
	"$(ct systemctl list-unit-files --no-legend 'jobpool.*' | awk '{ print $1 }' | sort | tr '\n' ' ' | sed 's/ $//')"

show() { ct systemctl show -p "$1" --value jobpool; }
journal() { ct journalctl -b --no-pager "$@"; }
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
order=$(journal -u jobpool -o cat | grep -E 'all workers ready|^Started jobpool' | head -2 | tr '\n' '|')
jp_match "the journal: all workers ready, then Started" '^all workers ready\|Started jobpool' "$order"
jp_match "jobpoold was handed the socket" 'listening on the socket passed by systemd' \
	"$(journal -u jobpool -o cat)"
jp_eq "the watchdog is armed" "30s" "$(show WatchdogUSec)"
jp_eq "the daemon runs as jobpool" "jobpool" "$(ct ps -o user= -p "$(show MainPID)" | tr -d ' ')"
jp_eq "the socket belongs to jobpool, mode 0660" "jobpool:jobpool 660" \
	"$(ct stat -c '%U:%G %a' /run/jobpool/jobpool.sock)"

# ----- jobs flow; systemctl status tells the story -----
jp_eq "a job through the system socket" \
	"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" \
	"$(ct jobpoolctl submit -w -q hash hello 2>&1)"
out=$(seq 1 2000 | ct jobpoolctl map -k -q default 2>&1 | md5sum)
jp_eq "a map of 2000 jobs comes back whole and in order" "$(seq 1 2000 | md5sum)" "$out"
sleep 1.3
st=$(ct systemctl status jobpool --no-pager 2>&1)
jp_match "systemctl status shows the STATUS= line" \
	'Status: "queued 0, running 0/[0-9]+, done 2001, failed 0"' "$st"

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
for _ in $(seq 100); do [ "$(maps)" -ge 2 ] && break; sleep 0.05; done
main=$(show MainPID)
out=$(ct systemctl reload jobpool 2>&1); rc=$?
jp_eq "systemctl reload jobpool succeeds" "0" "$rc${out:+: $out}"
m=$(maps)
for _ in $(seq 100); do [ "$(maps)" -ge $((m + 2)) ] && break; sleep 0.05; done
touch "$JP_TMP/stop"
wait "$producer"
if [ -s "$JP_TMP/producer.errors" ]; then
	jp_fail "producer: $(head -3 "$JP_TMP/producer.errors")"
else
	jp_pass "$(maps) maps of 2000 jobs before, across and after the reload: every job back, in order"
fi
for _ in $(seq 50); do
	[ "$(worker_states | grep -c '^default ')" = 3 ] && break
	sleep 0.1
done
jp_eq "the reload took effect: queue default has 3 workers" 3 "$(worker_states | grep -c '^default ')"
jp_eq "same main process after the reload" "$main" "$(show MainPID)"
jp_eq "active (running) after the reload" "active running" "$(show ActiveState) $(show SubState)"
jp_match "the journal says it reloaded" 'reloaded /etc/jobpool/jobpool.conf' "$(journal -u jobpool -o cat)"

# ----- a broken edit: keeps running on the old config, the journal says why -----
ct sh -c 'printf "bogus = ;\n" >>/etc/jobpool/jobpool.conf'
ct systemctl reload jobpool >/dev/null 2>&1
sleep 0.5
jp_eq "broken config: still active (running), same main process" "active running $main" \
	"$(show ActiveState) $(show SubState) $(show MainPID)"
jp_eq "broken config: the old configuration stays (3 workers)" 3 "$(worker_states | grep -c '^default ')"
jp_eq "broken config: jobs still run" "still" "$(ct jobpoolctl submit -w -q default still 2>&1)"
errs=$(journal -u jobpool -p err -o cat)
jp_match "broken config: journalctl -u jobpool -p err has file:line" \
	'^/etc/jobpool/jobpool.conf:[0-9]+: ' "$errs"
jp_match "broken config: ... and says the old configuration stays" \
	'reload failed: still running on the previous configuration' "$errs"
ct sed -i '/^bogus = ;$/d' /etc/jobpool/jobpool.conf

# ----- journalctl JOB_ID= -----
id=$(ct jobpoolctl submit -q sleep --timeout 0.2 2000 2>&1)
sleep 0.6
ct jobpoolctl cancel "$id" >/dev/null 2>&1
sleep 0.2
lines=$(journal JOB_ID="$id" -o cat 2>&1)
if [ -z "$lines" ] && ! grep -q 'JOB_ID=' "$INST/usr/sbin/jobpoold"; then
	echo "SKIP (part): jobpoold sends no structured JOB_ID= fields yet"
else
	jp_match "journalctl JOB_ID=$id finds the job's lines" "job $id: timed out after 200 ms" "$lines"
	json=$(journal JOB_ID="$id" -o json | head -1)
	jp_match "... with QUEUE= and WORKER_PID=" '"QUEUE":"sleep".*"WORKER_PID":"[0-9]+"|"WORKER_PID":"[0-9]+".*"QUEUE":"sleep"' "$json"
	jp_match "... and a priority: the timeout is a warning" '"PRIORITY":"4"' "$json"
fi

# ----- the watchdog: a stuck master is killed and restarted -----
ct sh -c 'mkdir -p /run/systemd/system/jobpool.service.d &&
	printf "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n" >/run/systemd/system/jobpool.service.d/test-watchdog.conf &&
	systemctl daemon-reload && systemctl restart jobpool'
main=$(show MainPID)
restarts=$(show NRestarts)
ct kill -STOP "$main"
new=
for _ in $(seq 100); do
	new=$(show MainPID)
	[ "$new" != "$main" ] && [ "$new" != 0 ] && [ "$(show ActiveState)" = active ] && break
	sleep 0.1
done
jp_match "a stopped master misses its watchdog" 'Watchdog timeout \(limit 2s\)' "$(journal -u jobpool -o cat)"
jp_eq "... and is restarted (once, with a new main process)" "$((restarts + 1)) yes" \
	"$(show NRestarts) $([ "$new" != "$main" ] && [ "$new" != 0 ] && echo yes || echo no)"
ct sh -c 'rm -r /run/systemd/system/jobpool.service.d && systemctl daemon-reload'
jp_eq "after the restart, jobs flow" "back" "$(ct jobpoolctl submit -w -q default back 2>&1)"

# ----- stop: a running job finishes, Result=success -----
ct jobpoolctl submit -w -q sleep 2000 >"$JP_TMP/long.out" 2>&1 &
long=$!
for _ in $(seq 50); do worker_states | grep -q '^sleep busy$' && break; sleep 0.1; done
t=$(date +%s%N)
ct systemctl stop jobpool >/dev/null 2>&1
echo "systemctl stop took $(( ($(date +%s%N) - t) / 1000000 )) ms"
wait "$long"
jp_eq "the job running at stop finished" 2000 "$(cat "$JP_TMP/long.out")"
jp_eq "systemctl stop: inactive, Result=success, exit status 0" "inactive success 0" \
	"$(show ActiveState) $(show Result) $(show ExecMainStatus)"
jp_match "the journal says it stopped" 'stopped after [0-9]+ s' "$(journal -u jobpool -o cat)"

# ----- the socket stays: the next connection starts the daemon again -----
jp_eq "jobpool.socket is still listening" "active" "$(ct systemctl is-active jobpool.socket)"
jp_eq "a job sent to the stopped service starts it and is answered" "woken" \
	"$(ct jobpoolctl submit -w -q default woken 2>&1)"
jp_eq "socket activation started it" "active" "$(show ActiveState)"
ct systemctl stop jobpool jobpool.socket >/dev/null 2>&1
jp_eq "stopped again: Result=success" "inactive success" "$(show ActiveState) $(show Result)"

if [ "$JP_FAILS" -ne 0 ]; then
	echo "---- journalctl -u jobpool (tail) ----" >&2
	journal -u jobpool -o short-monotonic | tail -40 >&2
fi
nspawn_down
echo "it_nspawn: $(( $(date +%s) - T0 )) s in all"
jp_done
