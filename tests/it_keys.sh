#!/usr/bin/env bash
# it_keys.sh: job keys and per-key limits (issue 15) against the real daemon. An exec
# handler records when each job of each key starts and ends (nanoseconds, appended to
# one file); the checks read those records, never a wall clock: max_running_per_key
# held across all the queue's workers (no more than the limit of a key overlap), a slow
# key not holding up the others (every job of a fast key ends before the slow key's
# last job starts), rate_per_key held (in any span of starts of a key, at most burst +
# rate x span, plus one for the start's jitter after dispatch), many distinct keys in
# bounded memory (STATS keys= counts them, and falls back to 0 once their buckets are
# full), the key in STATUS, in events (map --key) and across a restart with a journal,
# key= errors naming the field, a reload raising the limit, and config errors with
# file:line.
. "$top_srcdir/tests/lib.sh"

REC="$JP_TMP/records"
: >"$REC"
# The handler: payload "KEY SECONDS"; one line at its start and one at its end.
cat >"$JP_TMP/rec.sh" <<EOF
#!/bin/sh
read -r key secs
echo "start \$key \$(date +%s%N)" >>"$REC"
sleep "\$secs"
echo "end \$key \$(date +%s%N)" >>"$REC"
echo "\$key"
EOF
chmod +x "$JP_TMP/rec.sh"

CONF="journal_dir = \"$JP_TMP/journal\";
shutdown_timeout = 0.5;
queues = (
  { name = \"limited\"; handler = \"exec:$JP_TMP/rec.sh\"; workers = 6; max_running_per_key = 2; },
  { name = \"slowfast\"; handler = \"exec:$JP_TMP/rec.sh\"; workers = 2; max_running_per_key = 1; },
  { name = \"rated\"; handler = \"exec:$JP_TMP/rec.sh\"; workers = 4; rate_per_key = 5; burst_per_key = 2; },
  { name = \"many\"; handler = \"echo\"; workers = 2; rate_per_key = 0.2; },
  { name = \"paused\"; handler = \"sleep\"; workers = 2; max_running_per_key = 1; }
);"
mkdir -p "$JP_TMP/journal"
jp_start "$CONF"

# The most jobs of key $1 that overlap in the records (starts and ends swept in order).
max_overlap() {
	awk -v k="$1" '$2 == k { print $3, ($1 == "start" ? 1 : -1) }' "$REC" |
		sort -n -k1,1 -k2,2n | awk '{ n += $2; if (n > m) m = n } END { print m + 0 }'
}
# How many records of kind $1 ("start", "end") key $2 has.
count() { awk -v t="$1" -v k="$2" '$1 == t && $2 == k' "$REC" | wc -l; }

# --- max_running_per_key = 2 over 6 workers -------------------------------------------
ids=()
for i in 1 2 3 4 5 6 7 8; do ids+=("$(jp_ctl submit -q limited --key a "a 0.2")"); done
for i in 1 2 3 4; do ids+=("$(jp_ctl submit -q limited --key b "b 0.2")"); done
ids+=("$(jp_ctl submit -q limited "u 0.2")")
jp_eq_until "the 8 jobs of key a ran" 8 30 count end a
jp_eq_until "the 4 jobs of key b ran" 4 30 count end b
jp_eq_until "the job without a key ran" 1 30 count end u
jp_eq "key a: at most 2 ran at once, over 6 workers" 2 "$(max_overlap a)"
jp_eq "key b: at most 2 ran at once" 1 "$([ "$(max_overlap b)" -le 2 ] && echo 1 || echo 0)"
jp_match "status ID shows the key" '^key: a$' "$(jp_ctl status "${ids[0]}")"
jp_eq "a job without a key has no key line" "" "$(jp_ctl status "${ids[12]}" | grep '^key:')"

# --- map --key: every line's job has the key, and its events say so --------------------
jp_eq "map --key runs each line" "m1 m2 " \
	"$(printf 'm1 0\nm2 0\n' | jp_ctl map -k -q limited --key mapped | grep . | tr '\n' ' ')"
jp_eq "each job of map --key carries the key (job.queued events)" 2 \
	"$(jp_ctl events --type job.queued | grep -c ' key=mapped$')"
long_key="host-with-a-long-name.example"
id=$(jp_ctl submit -q limited --key "$long_key" "l 0")
jp_ctl wait "$id" >/dev/null
jp_match "an event cuts a long key at 12 bytes and says its length" \
	" job=$id .* key=host-with-a- key_len=29" \
	"$(jp_ctl events --type job.succeeded)"

# --- a slow key does not hold up the others ----------------------------------------------
for i in 1 2 3 4; do jp_ctl submit -q slowfast --key slow "slow 0.6" >/dev/null; done
for i in 1 2 3 4 5 6; do jp_ctl submit -q slowfast --key fast "fast 0.01" >/dev/null; done
jp_eq_until "the slow key's 4 jobs ran" 4 30 count end slow
jp_eq "the fast key's 6 jobs ran" 6 "$(count end fast)"
jp_eq "the slow key never ran two at once" 1 "$(max_overlap slow)"
last_fast_end=$(awk '$1 == "end" && $2 == "fast" { print $3 }' "$REC" | sort -n | tail -1)
last_slow_start=$(awk '$1 == "start" && $2 == "slow" { print $3 }' "$REC" | sort -n | tail -1)
jp_eq "every fast job ended before the slow key's last one started" 1 \
	"$([ "$last_fast_end" -lt "$last_slow_start" ] && echo 1 || echo 0)"

# --- rate_per_key = 5/s, burst 2 --------------------------------------------------------
for i in $(seq 12); do jp_ctl submit -q rated --key r "r 0"; jp_ctl submit -q rated --key s "s 0"; done >/dev/null
jp_eq_until "key r's 12 jobs ran" 12 30 count end r
jp_eq_until "key s's 12 jobs ran" 12 30 count end s
# Over every pair of starts of a key: the starts between them, inclusive, against
# burst + rate x span; the worst excess over that bound, which must be at most 1.
rate_excess() {
	awk -v k="$1" '$1 == "start" && $2 == k { print $3 }' "$REC" | sort -n |
		awk -v rate=5 -v burst=2 '{ t[NR] = $1 } END {
			w = -1e9
			for (i = 1; i <= NR; i++) for (j = i; j <= NR; j++) {
				e = (j - i + 1) - (burst + rate * (t[j] - t[i]) / 1e9)
				if (e > w) w = e }
			print (w <= 1 ? "held" : "exceeded by " w) }'
}
jp_eq "rate_per_key held for key r" held "$(rate_excess r)"
jp_eq "rate_per_key held for key s" held "$(rate_excess s)"

# --- many distinct keys: tracked while they matter, then freed --------------------------
for i in $(seq 300); do printf 'SUBMIT many 1 key=host%d.example\nx\n' "$i"; done |
	raw >"$JP_TMP/many.out"
jp_eq "300 jobs of distinct keys accepted" 300 "$(grep -c '^OK ' "$JP_TMP/many.out")"
jp_eq_until "they all ran" 300 30 jp_stat queue many done
k=$(jp_stat queue many keys)
jp_match "STATS shows the keys tracked while their buckets refill ($k)" '^[1-9][0-9]*$' "$k"
jp_eq "never more than the distinct keys" 1 "$([ "$k" -le 300 ] && echo 1 || echo 0)"
jp_eq_until "the keys fall back to 0 once their buckets are full" 0 30 jp_stat queue many keys
jp_eq "nothing parked" 0 "$(jp_stat queue many parked)"

# --- key= errors name the field ---------------------------------------------------------
out=$(printf 'SUBMIT limited 1 key=\nx\nPING\n' | raw)
jp_match "an empty key is refused, naming the field" \
	'^ERR proto SUBMIT: key: empty' "$out"
jp_match "... and the connection carries on" 'OK pong' "$out"
long=$(head -c 256 /dev/zero | tr '\0' k)
jp_match "a key of 256 bytes is refused" 'SUBMIT: key: 256 bytes, more than 255' \
	"$(printf 'SUBMIT limited 1 key=%s\nx\n' "$long" | raw)"
out=$(jp_ctl submit -q limited --key 'a b' x 2>&1); rc=$?
jp_eq "jobpoolctl refuses a key with a space: exit 2" 2 "$rc"
jp_match "... saying why" 'bad --key: byte 0x20 at 1' "$out"

# --- the key survives a restart (journal) -------------------------------------------------
held=$(jp_ctl submit -q paused --key p 10000)
waiting=$(jp_ctl submit -q paused --key p 1)
jp_eq_until "the second job of key p is parked behind the first" 1 10 jp_stat queue paused parked
jp_stop
jp_start "$CONF"
jp_match "a job replayed after a restart keeps its key" '^key: p$' "$(jp_ctl status "$waiting")"
jp_eq "... and the one that was running too" 1 "$(jp_ctl status "$held" | grep -c '^key: p$')"
jp_ctl cancel "$held" >/dev/null
jp_eq "once the running one ends, the parked one runs" 1 "$(jp_ctl wait "$waiting")"

# --- a reload that raises the limit lets a parked job go ----------------------------------
h1=$(jp_ctl submit -q paused --key r 10000)
h2=$(jp_ctl submit -q paused --key r 10000)
jp_eq_until "the second job of key r is parked (max_running_per_key = 1)" 1 10 jp_stat queue paused parked
jp_config "${CONF/\"sleep\"; workers = 2; max_running_per_key = 1;/\"sleep\"; workers = 2; max_running_per_key = 2;}" >/dev/null
jp_eq "reload with max_running_per_key = 2" reloaded "$(jp_ctl reload)"
jp_eq_until "the parked job runs at once" 2 10 jp_stat queue paused running
jp_eq "nothing parked" 0 "$(jp_stat queue paused parked)"
jp_ctl cancel "$h1" "$h2" >/dev/null

# --- config errors name file:line ----------------------------------------------------------
cat >"$JP_TMP/bad.conf" <<EOF
socket = "$JP_SOCK.bad";
queues = (
  { name = "q"; handler = "echo";
    burst_per_key = 3; }
);
EOF
out=$("$JOBPOOLD" -t -c "$JP_TMP/bad.conf" 2>&1); rc=$?
jp_eq "burst_per_key without rate_per_key: -t fails" 78 "$rc"
jp_match "... with file:line" "bad.conf:4: 'burst_per_key'.* needs 'rate_per_key'" "$out"
sed -i 's/burst_per_key = 3;/max_running_per_key = -1;/' "$JP_TMP/bad.conf"
out=$("$JOBPOOLD" -t -c "$JP_TMP/bad.conf" 2>&1)
jp_match "a negative max_running_per_key is refused at its line" "bad.conf:4: .*max_running_per_key" "$out"

jp_stop
jp_done
