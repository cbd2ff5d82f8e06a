#!/usr/bin/env bash
# bench/keys_fairness.sh: per-key fairness (issue 15). Four keys share one queue of 8
# workers running the built-in sleep handler; three are fast (10 ms jobs, each key held
# to rate_per_key = 50/s), the fourth is slow (2 s jobs, as a host that answers slowly).
# Measured: each fast key's jobs/s in its steady state (its results after the first,
# over the time from its first result to its last) in three runs:
#   alone     the three fast keys only: the rate they get with nobody in the way;
#   slow+key  with the slow key, max_running_per_key = 2: the slow key holds at most 2
#             workers, the others keep their rate (the claim);
#   slow+nokey the same jobs without per-key limits (no key given): the slow jobs take
#             every worker they reach and the fast jobs wait behind them.
# With an exec or built-in handler now; the http version (a host answering 429 with
# Retry-After, paused by keys_pause) comes with the http handler.
#
#   bench/keys_fairness.sh            BUILD (default build/), KF_JOBS (per fast key, 400),
#                                     KF_SLOW (slow jobs, 16), KF_ROUNDS (3)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${KF_JOBS:-400}
SLOW=${KF_SLOW:-16}
ROUNDS=${KF_ROUNDS:-3}
export PYTHONPATH="$SRC_DIR/bindings/python"

# drive MODE: one line per fast key, "KEY JOBS_PER_S".
drive() {
	"$PY" - "$JP_SOCK" "$1" "$N" "$SLOW" <<'PY'
import asyncio, sys, time
import jobpool

sock, mode, n, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fast = ["fast1", "fast2", "fast3"]

async def main():
    async with jobpool.connect(sock) as jp:
        first = {k: 0.0 for k in fast}
        done = {k: 0.0 for k in fast}

        async def one(k, payload, keyed):
            await jp.submit("kf", payload, key=k if keyed else None)
            if k in done:
                t = time.monotonic()
                first[k] = min(first[k], t) if first[k] else t
                done[k] = max(done[k], t)

        jobs = []
        # Interleaved as producers would send them: the slow key's jobs first in each
        # round, so without per-key limits they reach the workers first.
        for i in range(n):
            if mode != "alone" and i < slow:
                jobs.append(one("slow", b"2000", mode == "slow+key"))
            for k in fast:
                jobs.append(one(k, b"10", mode == "slow+key" or mode == "alone"))
        await asyncio.gather(*jobs)
        for k in fast:
            print(k, "%.1f" % ((n - 1) / (done[k] - first[k])))

asyncio.run(main())
PY
}

declare -A res
for mode in alone slow+key slow+nokey; do
	for r in $(seq "$ROUNDS"); do
		if [ "$mode" = slow+nokey ]; then
			q='{ name = "kf"; handler = "sleep"; workers = 8; batch = 1; rate = 150; burst = 15; }'
		else
			q='{ name = "kf"; handler = "sleep"; workers = 8; batch = 1; max_running_per_key = 2; rate_per_key = 50; burst_per_key = 5; }'
		fi
		jp_start kf "$q" 'max_payload = 65536;'
		out=$(drive "$mode")
		stop_bg "$JP_PID"
		while read -r k v; do
			res[$mode]+="$v "
			emit KF jobpool "$mode $k" jobs/s "$v"
		done <<<"$out"
	done
done
for mode in alone slow+key slow+nokey; do
	printf '%-11s fast keys, jobs/s each: median %s (min %s, max %s)\n' "$mode" \
		"$(echo "${res[$mode]}" | med)" \
		"$(echo "${res[$mode]}" | tr ' ' '\n' | grep . | sort -n | head -1)" \
		"$(echo "${res[$mode]}" | tr ' ' '\n' | grep . | sort -n | tail -1)"
done
