#!/bin/sh
# exec-handler.sh: an example jobpool exec handler, to copy. It sorts the payload's lines
# and drops duplicates (sort -u), through a temporary file.
#
#     handler = "exec:/usr/local/libexec/jobpool/exec-handler.sh";
#
# The contract (see examples/README.md):
#   - the payload arrives on stdin, then EOF; the result is what goes to stdout;
#   - exit 0: success. Exit 65 (EX_DATAERR): a permanent failure, never retried. Any
#     other status (by convention 75, EX_TEMPFAIL), or death by a signal: a failure
#     that is retried if the queue allows it. What goes to stderr (its last 4 KiB) is
#     the job's error text, and its first line is logged;
#   - a cancelled or timed-out job gets SIGTERM, sent to its whole process group (this
#     script and whatever it started), then SIGKILL after the queue's grace. A trap
#     on TERM is the place to clean up;
#   - when the script exits, anything left in its process group is killed: do not
#     leave work running in the background.
# jobpoold runs this file directly, with no shell of its own: the #! line decides.

set -u

tmp=$(mktemp "${TMPDIR:-/tmp}/jobpool-example.XXXXXX") || exit 75

# Clean up on every way out. TERM (a cancel or a timeout) exits 143 after cleaning up.
trap 'rm -f "$tmp"' EXIT
trap 'rm -f "$tmp"; exit 143' TERM INT HUP

cat >"$tmp" || { echo "cannot read the payload" >&2; exit 75; }
if [ ! -s "$tmp" ]; then
	echo "the payload is empty: nothing to sort" >&2
	exit 65		# retrying the same payload cannot help
fi
# Run the work in the foreground: a TERM to the group reaches sort too, then the trap.
LC_ALL=C sort -u "$tmp" || { echo "sort failed" >&2; exit 75; }
