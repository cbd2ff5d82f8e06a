#!/usr/bin/env bash
# Jobs belong to the uid that submitted them, with real second users on a socket open to
# everyone (socket_mode 0666), as root: user A cannot WAIT for, see (STATUS, DEAD),
# CANCEL or RETRY user B's jobs, and is answered exactly as for a job that does not
# exist; A acts on its own; administrators (by admin_users, by admin_groups, root) act
# on every job; RELOAD and RETRY all are refused to others with a clear error that
# jobpoolctl prints; a reload that takes a user off admin_users takes that away; STATS
# is the same for everyone; and with the journal on, jobs keep their owner across a
# restart. The users and the group are made here if missing, and removed again.
. "$top_srcdir/tests/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (it runs clients as other users)"; exit 77; }
for t in setpriv useradd usermod userdel groupadd groupdel; do
	command -v $t >/dev/null || { echo "SKIP: needs $t"; exit 77; }
done

UA=jp-test-a UB=jp-test-b UC=jp-test-c UD=jp-test-d GADM=jp-test-adm
MADE_USERS= MADE_GROUP=
owner_cleanup() {
	local u
	jp_cleanup
	for u in $MADE_USERS; do userdel "$u" >/dev/null 2>&1; done
	[ -n "$MADE_GROUP" ] && groupdel "$GADM" >/dev/null 2>&1
	return 0
}
trap owner_cleanup EXIT
if ! getent group "$GADM" >/dev/null; then
	groupadd "$GADM" || { echo "SKIP: groupadd $GADM failed"; exit 77; }
	MADE_GROUP=1
fi
for u in $UA $UB $UC $UD; do
	id "$u" >/dev/null 2>&1 && continue
	useradd --no-create-home --shell /usr/sbin/nologin --user-group "$u" ||
		{ echo "SKIP: useradd $u failed"; exit 77; }
	MADE_USERS="$MADE_USERS $u"
done
# D is an administrator by a supplementary group only.
usermod -a -G "$GADM" "$UD" || { echo "SKIP: usermod -a -G $GADM $UD failed"; exit 77; }

# as USER CMD...: run CMD as USER with its own groups (and so its supplementary ones).
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups "$@"; }
# ctl_as USER ARGS...: jobpoolctl as USER, stderr to stdout, then "rc=N".
ctl_as() { local u=$1 out rc; shift; out=$(as "$u" "$JOBPOOLCTL" "$@" 2>&1); rc=$?; printf '%s\nrc=%d' "$out" "$rc"; }
# The same answer for two ids: what one says with its id made X.
same_as() { printf '%s' "$1" | sed "s/\\b$2\\b/X/g"; }
state_of() { as "$1" "$JOBPOOLCTL" status "$2" 2>&1 | awk -F': ' '$1 == "state" { print $2 } /notfound/ { print "notfound" }'; }

# dead_ids USER: the ids on USER's dead list, in order.
dead_ids() { as "$1" "$JOBPOOLCTL" dead 2>&1 | awk 'NR > 1 { print $1 }' | xargs; }

chmod 755 "$JP_TMP"
J="$JP_TMP/journal"
CONF="socket_mode = \"0666\";
journal_dir = \"$J\";
shutdown_timeout = 0.5;
admin_users = [ \"$UC\" ];
admin_groups = [ \"$GADM\" ];
queues = (
  { name = \"default\"; handler = \"echo\"; workers = 1; },
  { name = \"slow\"; handler = \"sleep\"; workers = 1; grace = 0.2; },
  { name = \"short\"; handler = \"sleep\"; workers = 1; timeout = 0.1; retries = 0; grace = 0.2; }
);"
jp_start "$CONF"

# --- each user's own jobs -------------------------------------------------------------
jp_eq "A submits and waits for its own job" "hello" "$(as $UA "$JOBPOOLCTL" submit -w hello)"
B_DONE=$(as $UB "$JOBPOOLCTL" submit "bob's secret")
jp_eq "B waits for its own job" "bob's secret" "$(as $UB "$JOBPOOLCTL" wait "$B_DONE")"
B_RUN=$(as $UB "$JOBPOOLCTL" submit -q slow 30000)	# runs: the slow queue's one worker
B_Q=$(as $UB "$JOBPOOLCTL" submit -q slow 30000)	# waits behind it
B_Q2=$(as $UB "$JOBPOOLCTL" submit -q slow 30000)	# and this one
B_DEAD=$(as $UB "$JOBPOOLCTL" submit -q short 5000)
as $UB "$JOBPOOLCTL" wait "$B_DEAD" >/dev/null 2>&1
jp_eq "B sees its queued job" queued "$(state_of $UB "$B_Q")"
jp_eq "B sees its dead job" dead "$(state_of $UB "$B_DEAD")"
A_Q=$(as $UA "$JOBPOOLCTL" submit -q slow 30000)
A_DEAD=$(as $UA "$JOBPOOLCTL" submit -q short 5000)
as $UA "$JOBPOOLCTL" wait "$A_DEAD" >/dev/null 2>&1

# --- A and B's jobs: as if there were none ---------------------------------------------
NOID=999999
for cmd in wait status cancel retry; do
	mine=$(ctl_as $UA $cmd "$B_Q")
	none=$(ctl_as $UA $cmd $NOID)
	jp_match "A cannot $cmd B's job: not found" "notfound: no job $B_Q" "$mine"
	jp_eq "... the same answer as for a job that does not exist" \
		"$(same_as "$none" $NOID)" "$(same_as "$mine" "$B_Q")"
done
jp_match "A cannot wait for B's finished job (its result is B's)" "notfound: no job $B_DONE" \
	"$(ctl_as $UA wait "$B_DONE")"
jp_match "A cannot retry B's dead job" "notfound: no job $B_DEAD" "$(ctl_as $UA retry "$B_DEAD")"
jp_match "A cannot cancel B's running job" "notfound: no job $B_RUN" "$(ctl_as $UA cancel "$B_RUN")"
jp_eq "B's queued job is still queued" queued "$(state_of $UB "$B_Q")"
jp_eq "B's running job still runs" running "$(state_of $UB "$B_RUN")"
jp_eq "B's dead job is still dead" dead "$(state_of $UB "$B_DEAD")"
jp_eq "A's dead list has A's dead job, not B's" "$A_DEAD" "$(dead_ids $UA)"
jp_eq "B's dead list has B's, not A's" "$B_DEAD" "$(dead_ids $UB)"
out=$(ctl_as $UA status)
jp_match "A may read STATS (counts of everyone's jobs, no ids)" 'rc=0$' "$out"

# --- administrators only -------------------------------------------------------------
out=$(ctl_as $UA reload)
jp_match "A cannot RELOAD: exit 3" 'rc=3$' "$out"
jp_match "... and jobpoolctl prints the daemon's reason" \
	"^jobpoolctl: reload: denied: RELOAD is for administrators \\(root, the daemon's user, admin_users, admin_groups\\); uid $(id -u $UA) is not one" "$out"
jp_match "... and the refusal is logged with who asked" \
	"refused RELOAD from pid [0-9]+ uid $(id -u $UA): not an administrator" "$(cat "$JP_LOG")"
out=$(ctl_as $UA retry --all)
jp_match "A cannot RETRY all" "^jobpoolctl: retry: denied: RETRY all is for administrators .*uid $(id -u $UA) is not one" "$out"
jp_match "... exit 3" 'rc=3$' "$out"
jp_eq "... and A's dead job is still dead" dead "$(state_of $UA "$A_DEAD")"
out=$(ctl_as $UB retry --all -q short)
jp_match "B cannot RETRY all of a queue either" "denied: RETRY all is for administrators" "$out"

# --- each acts on its own ------------------------------------------------------------
jp_eq "A retries its own dead job" "queued $A_DEAD" "$(as $UA "$JOBPOOLCTL" retry "$A_DEAD" 2>&1)"
as $UA "$JOBPOOLCTL" wait "$A_DEAD" >/dev/null 2>&1
jp_eq "A cancels its own queued job" "cancelled $A_Q" "$(as $UA "$JOBPOOLCTL" cancel "$A_Q" 2>&1)"

# --- administrators: by admin_users, by admin_groups, root ---------------------------
jp_eq "an admin by admin_users sees B's job" queued "$(state_of $UC "$B_Q")"
jp_eq "... waits for B's finished job" "bob's secret" "$(as $UC "$JOBPOOLCTL" wait "$B_DONE" 2>&1)"
jp_eq "... lists every dead job" "$B_DEAD $A_DEAD" "$(dead_ids $UC)"
jp_eq "... reloads" reloaded "$(as $UC "$JOBPOOLCTL" reload 2>&1)"
jp_eq "an admin by admin_groups (a supplementary group) sees B's job" queued "$(state_of $UD "$B_Q")"
jp_eq "... retries all (A's and B's dead jobs)" "2 dead jobs queued again" \
	"$(as $UD "$JOBPOOLCTL" retry --all 2>&1)"
jp_eq "... B's dead job was queued again" 1 "$(as $UB "$JOBPOOLCTL" status "$B_DEAD" | grep -c '^state: \(queued\|running\|dead\)')"
as $UB "$JOBPOOLCTL" wait "$B_DEAD" >/dev/null 2>&1
jp_eq "... cancels B's queued job" "cancelled $B_Q2" "$(as $UD "$JOBPOOLCTL" cancel "$B_Q2" 2>&1)"
jp_eq "root sees A's and B's jobs" "done queued" "$(state_of root "$B_DONE") $(state_of root "$B_Q")"

# A reload that takes C off admin_users: C is a user like any other.
sed -i "s/^admin_users = .*/admin_users = [ \"$UA\" ];/" "$JP_TMP/jobpool.conf"
jp_eq "root reloads" reloaded "$(jp_ctl reload 2>&1)"
jp_eq "C, no longer an administrator, does not see B's job" notfound "$(state_of $UC "$B_Q")"
jp_match "... nor may RELOAD" "denied: RELOAD is for administrators" "$(ctl_as $UC reload)"
jp_eq "A, now one, sees B's job" queued "$(state_of $UA "$B_Q")"
sed -i "s/^admin_users = .*/admin_users = [ \"$UC\" ];/" "$JP_TMP/jobpool.conf"
jp_eq "root reloads again" reloaded "$(jp_ctl reload 2>&1)"

# --- jobs keep their owner across a restart (journal on) -----------------------------
A_DELAY=$(as $UA "$JOBPOOLCTL" submit --delay 600 "alice later")
jp_stop
jp_start "$CONF"
jp_eq "after a restart B's queued job is B's" queued "$(state_of $UB "$B_Q")"
jp_eq "... A does not see it" notfound "$(state_of $UA "$B_Q")"
jp_eq "... nor cancel it" "notfound" "$(as $UA "$JOBPOOLCTL" cancel "$B_Q" 2>&1 | grep -o notfound)"
jp_eq "... B's dead job is B's" dead "$(state_of $UB "$B_DEAD")"
jp_eq "... on B's dead list alone" "$B_DEAD" "$(dead_ids $UB)"
jp_eq "... as A's is on A's" "$A_DEAD" "$(dead_ids $UA)"
jp_eq "... and not A's" notfound "$(state_of $UA "$B_DEAD")"
jp_eq "A's delayed job is A's" delayed "$(state_of $UA "$A_DELAY")"
jp_eq "... not B's" notfound "$(state_of $UB "$A_DELAY")"
jp_eq "... an administrator sees both" "queued delayed" "$(state_of $UC "$B_Q") $(state_of $UC "$A_DELAY")"
jp_eq "B cancels its own job after the restart" "cancelled $B_Q" "$(as $UB "$JOBPOOLCTL" cancel "$B_Q" 2>&1)"
jp_stop
jp_done
