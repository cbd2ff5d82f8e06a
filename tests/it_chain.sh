#!/bin/bash
# it_chain.sh: chained queues (issue 15) against the real daemon, with exec and
# built-in handlers: a three-stage chain answers `submit -w`, WAIT and the Python client
# with its last stage's result; `status` shows every stage; a failing middle stage
# reaches the waiter named; cancelling a chain stops its stage now (waiting or
# running); job.queued of a next stage says prev=; 5,000 items through a chain whose
# last stage is slow and small: the stage before it is held (STATS held=1), the last
# queue stays within its bound, the master's RSS stays flat, and every item is saved
# exactly once; a `then` cycle is refused at start and at reload with file:line; a
# reload that changes `then` applies to what ends after it; a stop and a restart with
# the journal lose nothing of a chain.

. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v python3 >/dev/null 2>&1 || { echo "python3 is missing"; exit 77; }
# ASan's quarantine would make the RSS grow with every job freed (see it_backpressure).
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"

BG=
trap 'for p in $BG; do kill "$p" 2>/dev/null; done; jp_cleanup' EXIT

# The stages' programs: upper-case, save (append a line to a file and answer it),
# fail, and a slow copy.
cat >"$JP_TMP/up.sh" <<'EOF'
#!/bin/sh
tr a-z A-Z
EOF
cat >"$JP_TMP/save.sh" <<EOF
#!/bin/sh
read -r line
printf '%s\n' "\$line" >>"$JP_TMP/\${1:-saved}.txt"
printf 'saved %s' "\$line"
EOF
cat >"$JP_TMP/fail.sh" <<'EOF'
#!/bin/sh
cat >/dev/null
echo "bad input" >&2
exit 1
EOF
cat >"$JP_TMP/slow.sh" <<'EOF'
#!/bin/sh
sleep 0.2
cat
EOF
chmod +x "$JP_TMP"/*.sh

QUEUES="queues = (
	{ name = \"up\"; handler = \"exec:$JP_TMP/up.sh\"; workers = 2; then = \"hash\"; },
	{ name = \"hash\"; handler = \"sha256\"; workers = 2; batch = 4; then = \"save\"; },
	{ name = \"save\"; handler = \"exec:$JP_TMP/save.sh\"; workers = 1; max_jobs = 20; },
	{ name = \"f1\"; handler = \"echo\"; then = \"f2\"; },
	{ name = \"f2\"; handler = \"exec:$JP_TMP/fail.sh\"; retries = 0; then = \"save\"; },
	{ name = \"c1\"; handler = \"echo\"; then = \"c2\"; },
	{ name = \"c2\"; handler = \"sleep\"; workers = 1; batch = 1; then = \"c3\"; },
	{ name = \"c3\"; handler = \"echo\"; }
);"
jp_start "$QUEUES
keep_results = 100;
shutdown_timeout = 1;"

sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# The id a `submit` printed.
id_of() { sed -n 's/^\([0-9][0-9]*\)$/\1/p' | head -1; }

# ----- three stages answer the producer, by the id it asked for -----
out=$(jp_ctl submit -w -q up hello 2>&1)
jp_eq "submit -w gets the last stage's result" "saved $(sha HELLO)" "$out"
jp_eq "the save stage appended it" "$(sha HELLO)" "$(cat "$JP_TMP/saved.txt")"
first=$(jp_ctl submit -q up world | id_of)
jp_match "submit without -w prints the first stage's id" '^[0-9]+$' "$first"
out=$(jp_ctl wait "$first" 2>&1)
jp_eq "WAIT on the first id gets the last stage's result" "saved $(sha WORLD)" "$out"
printf 'WAIT %s\n' "$first" | raw >"$JP_TMP/wait.raw"
jp_match "its RESULT names the id waited for" "^RESULT $first ok " \
	"$(sed -n 2p "$JP_TMP/wait.raw")"
st=$(jp_ctl status "$first")
jp_match "status shows the chain done" "chain: done" "$st"
jp_match "status shows stage 1" "stage 1: job $first, queue up, done" "$st"
jp_match "status shows stage 2" "stage 2: job [0-9]+, queue hash, done" "$st"
jp_match "status shows stage 3" "stage 3: job [0-9]+, queue save, done" "$st"
mid=$(printf '%s\n' "$st" | sed -n 's/^stage 2: job \([0-9]*\),.*/\1/p')
jp_match "status of the middle stage shows the same chain, where it is" \
	"stage: 2.*stage 1: job $first, queue up, done" "$(jp_ctl status "$mid" | tr '\n' ' ')"
jp_match "status --json carries the stages" "\"stages\":\"$first@up:done,$mid@hash:done," \
	"$(jp_ctl --json status "$first")"
# The next stage's job.queued names the stage it follows.
ev=$(printf 'EVENTS since=all until=now\n' | raw)
jp_match "job.queued of stage 2 says prev=" \
	"type=job.queued queue=hash job=$mid attempt=0 prev=$first" "$ev"

# The Python client's submit waits for the last stage too.
if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
	out=$(PYTHONPATH="$top_srcdir/bindings/python" /usr/bin/python3 -c '
import asyncio, jobpool
async def main():
    async with jobpool.connect() as jp:
        print((await jp.submit("up", b"py")).decode())
asyncio.run(main())' 2>&1)
	jp_eq "the Python client gets the last stage's result" "saved $(sha PY)" "$out"
else
	echo "skip: the Python client needs python3 >= 3.11"
fi

# ----- a failing middle stage reaches the waiter, named -----
nsaved=$(grep -c . "$JP_TMP/saved.txt")
out=$(jp_ctl submit -w -q f1 x 2>&1)
rc=$?
jp_eq "a failed chain: submit -w exits 1" 1 "$rc"
jp_match "the waiter hears the failing stage, named" \
	"failed: stage 2 \(queue f2, job [0-9]+\): exit status 1: bad input" "$out"
fid=$(printf '%s\n' "$out" | sed -n 's/^jobpoolctl: job \([0-9]*\) failed.*/\1/p')
st=$(jp_ctl status "$fid" 2>&1)
jp_match "status: the chain failed" "chain: failed" "$st"
jp_match "status: stage 2 is dead" "stage 2: job [0-9]+, queue f2, dead" "$st"
jp_eq "nothing went on to save" "$nsaved" "$(grep -c . "$JP_TMP/saved.txt")"

# ----- cancelling a chain: its stage running now, then one waiting -----
jp_ctl submit -w -q c1 30000 >"$JP_TMP/c.out" 2>&1 &
cpid=$!
BG="$BG $cpid"
jp_until 10 eval '[ -n "$(jp_stat queue c2 running | grep -v "^0$")" ]'
cid=$(printf 'EVENTS since=all until=now queue=c1\n' | raw |
	sed -n 's/.*type=job.queued queue=c1 job=\([0-9]*\).*/\1/p' | tail -1)
jp_match_until "the chain is at stage 2, running" "stage 2: job [0-9]+, queue c2, running" \
	10 jp_ctl status "$cid"
# A second chain waits behind it in c2.
w2=$(jp_ctl submit -q c1 30000 | id_of)
jp_match_until "the second chain waits in c2" "stage 2: job [0-9]+, queue c2, queued" \
	10 jp_ctl status "$w2"
out=$(jp_ctl cancel "$w2" 2>&1)
jp_match "CANCEL of a chain waiting in its stage 2: cancelled at once" "cancelled" "$out"
jp_match "status: that chain is cancelled" "chain: cancelled.*stage 2: job [0-9]+, queue c2, cancelled" \
	"$(jp_ctl status "$w2" | tr '\n' ' ')"
out=$(jp_ctl cancel "$cid" 2>&1)
jp_match "CANCEL of the first id: its running stage is cancelled" "cancelling" "$out"
wait "$cpid"
rc=$?
jp_match "the waiter hears the chain cancelled at stage 2" \
	"cancelled: stage 2 \(queue c2, job [0-9]+\): cancelled while running" "$(cat "$JP_TMP/c.out")"
jp_eq "submit -w exits 1 for it" 1 "$rc"
jp_match_until "status: the chain is cancelled" "chain: cancelled" 10 jp_ctl status "$cid"
jp_eq "no stage 3 was made" "" "$(jp_ctl status "$cid" | grep 'queue c3')"
out=$(jp_ctl cancel "$w2" 2>&1)
jp_match "CANCEL of an ended chain says which stage it ended at" \
	"job $w2: its chain's stage now, job [0-9]+ \(queue c2\), has finished" "$out"

# ----- 5,000 items, the last stage slow and small: backpressure, nothing lost -----
: >"$JP_TMP/saved.txt"
rss0=$(jp_rss)
( trap - EXIT
  max=0 dmax=0 held=0
  while :; do
	r=$(jp_rss); [ -n "$r" ] && [ "$r" -gt "$max" ] && max=$r
	s=$(badclient stats "$JP_SOCK" 2>/dev/null)
	d=$(printf '%s\n' "$s" | awk '$1 == "queue" && $2 == "save" {
		for (i = 3; i <= NF; i++) if ($i ~ /^depth=/) print substr($i, 7) }')
	[ -n "$d" ] && [ "$d" -gt "$dmax" ] && dmax=$d
	printf '%s\n' "$s" | grep -q '^queue hash .*then=save held=1 ' && held=1
	echo "$max $dmax $held" >"$JP_TMP/watch.tmp"
	mv "$JP_TMP/watch.tmp" "$JP_TMP/watch"
	sleep 0.1
  done ) &
wpid=$!
BG="$BG $wpid"
seq 1 5000 | sed 's/^/item-/' >"$JP_TMP/items"
jp_ctl map -k -q up <"$JP_TMP/items" >"$JP_TMP/results"
rc=$?
sleep 0.3
kill "$wpid" 2>/dev/null
read -r rssmax dmax held <"$JP_TMP/watch"
jp_eq "map over 5,000 items exits 0" 0 "$rc"
jp_eq "5,000 results came back" 5000 "$(grep -c '^saved ' "$JP_TMP/results")"
python3 - "$JP_TMP/items" "$JP_TMP/saved.txt" "$JP_TMP/results" >"$JP_TMP/verify" <<'EOF'
import hashlib, sys
items = [l.rstrip("\n") for l in open(sys.argv[1])]
want = sorted(hashlib.sha256(i.upper().encode()).hexdigest() for i in items)
saved = sorted(l.rstrip("\n") for l in open(sys.argv[2]))
res = [l.rstrip("\n") for l in open(sys.argv[3]) if l.startswith("saved ")]
print("saved", "same" if saved == want else "differ: %d saved" % len(saved))
print("results", "same" if res == ["saved " + hashlib.sha256(i.upper().encode()).hexdigest() for i in items] else "differ")
EOF
jp_eq "every item saved exactly once" "saved same" "$(sed -n 1p "$JP_TMP/verify")"
jp_eq "map's results in order, each the last stage's" "results same" "$(sed -n 2p "$JP_TMP/verify")"
jp_eq "hash was held while save was full (STATS held=1)" 1 "$held"
# save: max_jobs 20, plus what hash had in flight when it filled (2 workers, batch 4).
jp_le "save's depth stayed within max_jobs + hash's in-flight" "$dmax" 28
echo "master RSS: ${rss0} KiB before, at most ${rssmax} KiB during the run"
jp_le "master RSS flat (KiB, within 16 MiB of the start)" "$rssmax" $((rss0 + 16384))
jp_eq_until "nothing left in the chain's queues" "0 0 0" 10 eval \
	'echo $(jp_stat queue up depth) $(jp_stat queue hash depth) $(jp_stat queue save depth)'

# ----- reload: a cycle is refused with file:line; a changed then applies -----
CONF="$JP_TMP/jobpool.conf"
cp "$CONF" "$JP_TMP/good.conf"
sed -i 's|name = "save"; handler|name = "save"; then = "up"; handler|' "$CONF"
line=$(grep -n 'name = "up"' "$CONF" | cut -d: -f1)
out=$(jp_ctl reload 2>&1)
jp_match "a reload with a cycle is refused at file:line" \
	"$CONF:$line: 'then' in queue 'up' makes a cycle: up -> hash -> save -> up" "$out"
jp_eq "the old chain still runs" "saved $(sha AGAIN)" "$(jp_ctl submit -w -q up again 2>&1)"
cp "$JP_TMP/good.conf" "$CONF"
sed -i 's|then = "hash"; }|then = "save"; }|' "$CONF"
jp_ctl reload >/dev/null 2>&1
jp_eq "after a reload, up goes straight to save" "saved SKIP" "$(jp_ctl submit -w -q up skip 2>&1)"
jp_stop

# ----- a cycle at start: exit 78, file:line -----
cat >"$JP_TMP/cycle.conf" <<EOF
socket = "$JP_TMP/cycle.sock";
queues = (
	{ name = "a"; handler = "echo"; then = "b"; },
	{ name = "b"; handler = "echo";
	  then = "a"; }
);
EOF
out=$("$JOBPOOLD" -t -c "$JP_TMP/cycle.conf" 2>&1)
jp_eq "jobpoold -t: a cycle is a config error (78)" 78 "$?"
jp_match "jobpoold -t names file:line" "$JP_TMP/cycle.conf:3: 'then' in queue 'a' makes a cycle: a -> b -> a" "$out"
out=$(timeout 20 "$JOBPOOLD" -c "$JP_TMP/cycle.conf" 2>&1)
jp_eq "jobpoold does not start with a cycle (78)" 78 "$?"
jp_match "and says where" "cycle.conf:3: 'then' in queue 'a' makes a cycle" "$out"
sed -i 's|then = "a";|then = "nosuch";|' "$JP_TMP/cycle.conf"
jp_match "an unknown queue: file:line" "cycle.conf:5: 'then' in queue 'b': no queue 'nosuch'" \
	"$("$JOBPOOLD" -t -c "$JP_TMP/cycle.conf" 2>&1)"

# ----- examples/pipeline: its config, compute plugin and save stage -----
mkdir -p "$JP_TMP/pl"
sed -e '/^socket = /d' \
    -e "s|examples/pipeline/.libs/compute.so 20|$top_builddir/examples/pipeline/.libs/compute.so 1|" \
    -e "s|examples/pipeline/save.sh|$top_srcdir/examples/pipeline/save.sh|" \
    -e "s|/tmp/jobpool-pipeline|$JP_TMP/pl|g" \
    "$top_srcdir/examples/pipeline/pipeline.conf" >"$JP_TMP/pipeline.body"
jp_start "$(cat "$JP_TMP/pipeline.body")"
out=$(printf 'page 3 1 2 3\n' | jp_ctl submit -w -q compute - 2>&1)
jp_match "the example: one page through compute and save" \
	'^saved bytes=13 words=5 fnv=[0-9a-f]{16}$' "$out"
jp_eq "the example's save stage appended its line" "${out#saved }" "$(cat "$JP_TMP/pl/out.txt")"
seq 1 50 | sed 's/^/page /' | jp_ctl map -k -j 8 -q compute >"$JP_TMP/pl/results"
jp_eq "the example: 50 pages, 50 results" 50 "$(grep -c '^saved bytes=' "$JP_TMP/pl/results")"
jp_eq "each saved once" 51 "$(sort -u "$JP_TMP/pl/out.txt" | grep -c .)"
jp_stop

# ----- the journal: a stop mid-chain, a restart, nothing lost -----
mkdir -p "$JP_TMP/journal"
JQ="journal_dir = \"$JP_TMP/journal\";
shutdown_timeout = 5;
queues = (
	{ name = \"j1\"; handler = \"echo\"; then = \"j2\"; },
	{ name = \"j2\"; handler = \"exec:$JP_TMP/slow.sh\"; workers = 1; batch = 1; then = \"j3\"; },
	{ name = \"j3\"; handler = \"exec:$JP_TMP/save.sh jsaved\"; workers = 1; }
);"
jp_start "$JQ"
for i in $(seq 1 20); do jp_ctl submit -q j1 "j-$i" >/dev/null; done
jp_until 20 eval '[ "$(grep -c . "$JP_TMP/jsaved.txt" 2>/dev/null)" -ge 3 ]'
jp_stop
n=$(grep -c . "$JP_TMP/jsaved.txt")
if [ "$n" -lt 20 ]; then
	jp_pass "stopped mid-chain: $n of 20 saved"
else
	jp_fail "the stop came too late to test anything: $n saved"
fi
jp_start "$JQ"
jp_eq_until "after the restart, all 20 saved" 20 30 eval 'grep -c . "$JP_TMP/jsaved.txt"'
jp_eq "each exactly once" "" "$(sort "$JP_TMP/jsaved.txt" | uniq -d)"
jp_eq "the items themselves" "$(seq 1 20 | sed 's/^/j-/' | sort)" "$(sort "$JP_TMP/jsaved.txt")"
jp_stop
jp_done
