#!/usr/bin/env bash
# it_top.sh: jobpoolctl top in a real terminal (a tmux pane of 120x40, on a tmux server
# of its own): it draws the queues, their latencies and the workers, refreshes every
# second (a job's end shows up without a key pressed), shows a running job and its
# age, quits on q and on ^C, leaving the terminal as it was (main screen, echo and line
# mode back); --json prints a snapshot a line; without a terminal it says so.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"

command -v tmux >/dev/null || { echo "SKIP: no tmux (quickstart.sh test installs it)"; exit 77; }

TMUX_SOCK="$JP_TMP/tmux.sock"
tm() { tmux -S "$TMUX_SOCK" "$@"; }
trap 'tm kill-server 2>/dev/null; jp_cleanup' EXIT

jp_start '
queues = (
  { name = "default"; handler = "echo"; workers = 2; },
  { name = "slow"; handler = "sleep"; workers = 1; }
);'

# screen SESSION: what the pane shows now.
screen() { tm capture-pane -p -t "$1"; }

# start_top SESSION: jobpoolctl top in a new 120x40 session; when it ends, the shell
# prints its exit status and the terminal's modes, and stays for us to read them.
start_top() {
	tm new-session -d -x 120 -y 40 -s "$1" \
		"JOBPOOL_SOCKET='$JP_SOCK' '$JOBPOOLCTL' top; echo \"top exited \$?\";
		 stty -a | tr ' ;' '\n\n' | grep -E '^-?(icanon|echo)\$' | tr '\n' ' '; echo;
		 sleep 600"
}

# --- it draws, and refreshes without a key ---------------------------------------------
start_top t1
jp_match_until "top shows its title" 'jobpoolctl top +[0-9:]+ +every 1 s +\(q quits\)' 10 screen t1
jp_match_until "top shows the queue table" '^QUEUE +STATE +HANDLER +WORKERS +DEPTH' 5 screen t1
jp_match "top shows the flow table" '^QUEUE +JOBS/S_1M +JOBS/S_5M +JOBS/S_15M +OLDEST_WAIT$' "$JP_UNTIL_OUT"
jp_match "top shows the latency table" '^QUEUE +LATENCY +P50 +P90 +P99 +P99\.9 +MAX +COUNT' "$JP_UNTIL_OUT"
jp_match "top shows the worker table" '^QUEUE +PID +STATE +JOB +AGE +JOBS +INFLIGHT +RSS +CPU' "$JP_UNTIL_OUT"
jp_match "top shows the queues" '^slow +running +sleep +1 ' "$JP_UNTIL_OUT"
# Jobs that end while top runs show up on their own: DONE goes to 7.
seq 7 | jp_ctl map -q default >/dev/null
jp_match_until "top refreshes: default's 7 jobs are done" '^default +running +echo +2( +0){3} +7 ' 5 screen t1
jp_match "top: default's run latencies, 7 counted" '^default +run +.* 7$' "$JP_UNTIL_OUT"
# A running job and its age, growing on screen.
id=$(jp_ctl submit -q slow 3000)
jp_match_until "top shows the worker's running job" "^slow +[0-9]+ +busy +$id +[0-9.]+(ms|s) " 5 screen t1
jp_match_until "top: its age passes a second" "^slow +[0-9]+ +busy +$id +[1-9]\\.[0-9]+s " 5 screen t1

# --- q quits, and the terminal is as it was ------------------------------------------
tm send-keys -t t1 q
jp_match_until "q quits top: line mode and echo are back" '^icanon echo *$' 5 screen t1
jp_match "q quits top with status 0" '^top exited 0$' "$JP_UNTIL_OUT"
jp_eq "top's screen is gone (the main screen is back)" "" \
	"$(screen t1 | grep -E '^QUEUE|jobpoolctl top')"

# --- ^C quits too, restoring the terminal ---------------------------------------------
start_top t2
jp_match_until "top runs again" '^QUEUE +STATE' 10 screen t2
tm send-keys -t t2 C-c
jp_match_until "^C ends top: line mode and echo are back" '^icanon echo *$' 5 screen t2
jp_match "^C ends top, and says nothing is wrong" '^top exited 0$' "$JP_UNTIL_OUT"
jp_eq "^C: top's screen is gone" "" "$(screen t2 | grep -E '^QUEUE|jobpoolctl top')"

# --- --json: a snapshot a line, each a whole STATS ---------------------------------------
out=$(timeout 20 "$JOBPOOLCTL" --json top | head -2 | python3 -c '
import json, sys
lines = sys.stdin.read().splitlines()
snaps = [json.loads(l) for l in lines]
print(len(snaps), sorted(q["name"] for q in snaps[1]["queues"]),
      all("wait_p99_us" in q and "throughput_1m" in q for s in snaps for q in s["queues"]),
      all("age_us" in w and "cpu_us" in w for s in snaps for w in s["workers"]))')
jp_eq "top --json: two snapshots, with the queues, latencies and workers" \
	"2 ['default', 'slow'] True True" "$out"

# --- no terminal ---------------------------------------------------------------------
err=$(jp_ctl top </dev/null 2>&1 >/dev/null); rc=$?
jp_eq "top without a terminal: a usage error" 2 "$rc"
jp_match "top without a terminal says so" '^jobpoolctl: top: needs a terminal' "$err"

jp_stop
jp_done
