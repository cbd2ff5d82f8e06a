#!/usr/bin/env bash
# Idempotency tokens (SUBMIT ... idem=TOKEN, jobpoolctl submit --idem) against the real
# daemon, as a producer that resends meets them: a resend while the first job waits,
# runs, or has finished gets the first job's id (--json says dup), and with -w the
# first job's result, never a second job; another token, another user's queue or no
# token is another job; the events say the token; a kill -9 and a restart with the
# journal keep the tokens (a finished job's result is not kept: -w says so), and a
# second one too (the recovery's snapshot holds them); after
# idempotency_window the token makes a new job; bad tokens are refused naming the
# field; at idempotency_max a new token is refused until one expires, and a submit
# without a token goes on.
. "$top_srcdir/tests/lib.sh"

J="$JP_TMP/journal"
mkdir -p "$J"
# gate: its jobs run until the test creates $JP_TMP/go, then print their payload.
cat >"$JP_TMP/gate.sh" <<SH
#!/bin/sh
while [ ! -e "$JP_TMP/go" ]; do sleep 0.05; done
cat
SH
chmod +x "$JP_TMP/gate.sh"
# conf WINDOW [MAX]
conf() {
	printf 'journal_dir = "%s";\njournal_fsync = "always";\nidempotency_window = %s;\n%s
queues = ( { name = "default"; handler = "echo"; workers = 1; },
  { name = "gate"; handler = "exec:%s"; workers = 1; } );\n' \
		"$J" "$1" "${2:+idempotency_max = $2;}" "$JP_TMP/gate.sh"
}

jp_start "$(conf 600)"

# --- a resend while the first job waits ------------------------------------------------
W=$(jp_ctl submit --idem wait-1 --delay 600 first)
jp_eq "a resend while it waits gets the first job's id" "$W" \
	"$(jp_ctl submit --idem wait-1 second)"
jp_eq "--json says it was a duplicate" "{\"id\":$W,\"dup\":true}" \
	"$(jp_ctl --json submit --idem wait-1 third)"
jp_eq "the first job is the one that waits" delayed "$(jp_state "$W")"
jp_eq "one job, not three" 1 "$(jp_stat queue default submitted)"
jp_eq "STATS counts the token" 1 "$(jp_stat daemon idem_tokens)"
OTHER=$(jp_ctl submit --idem wait-2 --delay 600 x)
NONE=$(jp_ctl submit --delay 600 x)
[ "$OTHER" != "$W" ] && [ "$NONE" != "$W" ] && [ "$OTHER" != "$NONE" ] &&
	jp_pass "another token, or none, is another job" ||
	jp_fail "another token or none gave job $W again ($OTHER, $NONE)"
jp_match "a first --json submit is no duplicate" '^\{"id":[0-9]+\}$' \
	"$(jp_ctl --json submit --idem wait-3 --delay 600 x)"
jp_match "job.queued says the token" "type=job.queued queue=default job=$W .*idem=wait-1\$" \
	"$(jp_ctl events --type job.queued)"
jp_match "and --json too" "\"job\":$W,.*\"idem\":\"wait-1\"" \
	"$(jp_ctl --json events --type job.queued)"

# --- while it runs, and -w gets the first job's result ---------------------------------
R=$(jp_ctl submit -q gate --idem run-1 first)
jp_eq_until "the gate job runs" running 10 jp_state "$R"
jp_eq "a resend while it runs gets its id" "$R" "$(jp_ctl submit -q gate --idem run-1 second)"
jp_ctl submit -w -q gate --idem run-1 third >"$JP_TMP/run.out" 2>&1 &
WPID=$!
# Its connection is there (with STATS's own) before the gate opens.
jp_ok_until "the waiting resend is connected" 10 \
	eval '[ "$(jp_stat daemon connections)" -ge 2 ]'
touch "$JP_TMP/go"
wait "$WPID"; rc=$?
jp_eq "submit -w of a resend exits 0" 0 "$rc"
jp_eq "submit -w of a resend prints the first job's result" first "$(cat "$JP_TMP/run.out")"
jp_eq "one gate job ran" 1 "$(jp_stat queue gate submitted)"

# --- after it finished ---------------------------------------------------------------
D=$(jp_ctl submit --idem done-1 hello)
jp_eq_until "the job is done" done 10 jp_state "$D"
jp_eq "a resend after the end gets its id" "$D" "$(jp_ctl submit --idem done-1 bye)"
jp_eq "submit -w of it prints the first job's result" hello \
	"$(jp_ctl submit -w --idem done-1 bye)"

# --- bad tokens ------------------------------------------------------------------------
out=$(jp_ctl submit --idem 'a b' x 2>&1); rc=$?
jp_eq "jobpoolctl refuses a token with a space (exit 2)" 2 "$rc"
jp_match "and says why" "--idem: bad token 'a b': 1 to 64 of" "$out"
LONG=$(printf 'x%.0s' $(seq 65))
out=$(printf 'SUBMIT default 1 idem=a%%b\nx\nSUBMIT default 1 idem=%s\nx\nSUBMIT default 1 idem=\nx\nSUBMIT default 1 idem=a idem=a\nx\nPING\n' "$LONG" | raw)
jp_match "a bad byte is refused, naming the field" \
	"^ERR proto SUBMIT: idem: bad token \(1 to 64 of A-Z a-z 0-9 . _ - : @ / \+ = ~\) 'a%b'" \
	"$(printf '%s\n' "$out" | sed -n 1p)"
jp_eq "65 bytes are too many" \
	"ERR proto SUBMIT: idem: a token of 65 bytes is too long (at most 64)" \
	"$(printf '%s\n' "$out" | sed -n 2p)"
jp_match "an empty token is refused" "^ERR proto SUBMIT: idem: bad token .*''" \
	"$(printf '%s\n' "$out" | sed -n 3p)"
jp_match "two tokens are refused" "^ERR proto SUBMIT: duplicate option 'idem=a'" \
	"$(printf '%s\n' "$out" | sed -n 4p)"
jp_eq "the connection carries on" "OK pong" "$(printf '%s\n' "$out" | sed -n 5p)"

# --- kill -9 and a restart with the journal ---------------------------------------------
C=$(jp_ctl submit --idem crash-1 --delay 600 x)
F=$(jp_ctl submit --idem crash-2 y)
jp_eq_until "crash-2's job is done" done 10 jp_state "$F"
jp_kill9
jp_start "$(conf 600)"
jp_eq "after kill -9: a resend of a waiting job's token gets its id" "$C" \
	"$(jp_ctl submit --idem crash-1 z)"
jp_eq "the job itself was recovered" delayed "$(jp_state "$C")"
jp_eq "after kill -9: a resend of a finished job's token gets its id" "$F" \
	"$(jp_ctl submit --idem crash-2 z)"
out=$(jp_ctl submit -w --idem crash-2 z 2>&1); rc=$?
jp_match "with -w: its result went with the restart, and it says so" \
	"idem=crash-2 is job $F, which ended and whose result is no longer kept" "$out"
[ "$rc" -ne 0 ] && jp_pass "and exits non-zero ($rc)" || jp_fail "submit -w exited 0"
jp_eq "the earlier tokens too" "$W" "$(jp_ctl submit --idem wait-1 again)"
jp_eq "no job was made by the resends" 0 "$(jp_stat queue default submitted)"
jp_match "the log counts the tokens restored" "idempotency tokens?" "$(jp_log)"
# The recovery wrote them into its snapshot: a second crash finds them there.
jp_kill9
jp_start "$(conf 600)"
jp_eq "after a second kill -9 (the snapshot's tokens): the same ids" "$C $F $W" \
	"$(jp_ctl submit --idem crash-1 z) $(jp_ctl submit --idem crash-2 z) $(jp_ctl submit --idem wait-1 z)"

# --- after the window ------------------------------------------------------------------
jp_config "$(conf 0.3)" >/dev/null
jp_ctl reload >/dev/null || jp_fail "reload failed"
E=$(jp_ctl submit --idem win-1 a)
jp_eq_until "the job is done" done 10 jp_state "$E"
# Within the window the resend is a duplicate; past it, a new job: wait for that.
newjob() { local id; id=$(jp_ctl submit --idem win-1 b); [ "$id" != "$E" ]; }
jp_ok_until "past idempotency_window the token makes a new job" 10 newjob
jp_stop

# --- idempotency_max ----------------------------------------------------------------------
rm -rf "$J"; mkdir -p "$J"
jp_start "$(conf 0.3 2)"
T1=$(jp_ctl submit --idem cap-1 --delay 600 x)
T2=$(jp_ctl submit --idem cap-2 --delay 600 x)
out=$(jp_ctl submit --idem cap-3 x 2>&1); rc=$?
jp_match "at idempotency_max a new token is refused" \
	"busy.*SUBMIT: idem: the daemon holds 2 idempotency tokens \(idempotency_max\)" "$out"
[ "$rc" -ne 0 ] && jp_pass "and submit exits non-zero" || jp_fail "submit exited 0"
jp_eq "a resend of a held token is still answered" "$T1" "$(jp_ctl submit --idem cap-1 x)"
jp_match "a submit without a token goes on" '^[0-9]+$' "$(jp_ctl submit x)"
jp_ctl cancel "$T1" >/dev/null
# Its token expires after the window: then there is room.
room() { jp_ctl submit --idem cap-3 x >/dev/null 2>&1; }
jp_ok_until "once a token expires, a new one is taken" 10 room
jp_eq "STATS says the cap" 2 "$(jp_stat daemon idem_max)"
jp_stop
jp_done
