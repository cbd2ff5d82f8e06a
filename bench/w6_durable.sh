#!/usr/bin/env bash
# W6, durable: W1 with the journal at each fsync policy. jobpool has no journal yet, so
# this only records that; rerun once the journal exists (issue 5).
#
#   bench/w6_durable.sh [BUILD_DIR]
set -euo pipefail
[ $# -ge 1 ] && export BUILD=$1
. "$(dirname "$0")/lib.sh"
echo "== W6 durable: n/a (no journal yet)" >&2
emit "W6 durable" "jobpool journal (each fsync policy)" throughput jobs/s "n/a (no journal yet)"
note "W6 durable" "n/a (no journal yet); beanstalkd with its binlog (-b, fsync at most every 50 ms) is in W1 for reference."
finish_alone
