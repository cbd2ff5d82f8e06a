#!/bin/sh
# save.sh: the save stage of examples/pipeline (fetch -> compute -> save), an exec
# handler: it appends its payload, one line, to the file named by its argument and
# answers "saved" with the line, which is the chain's result.
#
#     handler = "exec:/usr/local/libexec/jobpool/save.sh /var/lib/pipeline/out.txt";
#
# Appends of a line this short are atomic (O_APPEND, well under PIPE_BUF), so several
# workers may save at once. Exit 75 (EX_TEMPFAIL) lets the queue retry a failed write.
set -u
out=${1:?usage: save.sh FILE}
IFS= read -r line || [ -n "$line" ] || { echo "empty payload: nothing to save" >&2; exit 65; }
printf '%s\n' "$line" >>"$out" || { echo "cannot append to $out" >&2; exit 75; }
printf 'saved %s' "$line"
