#!/bin/bash
# it_configtest.sh: `jobpoold -t -c FILE` accepts the shipped config and, for broken
# ones, exits 78 (EX_CONFIG) having printed every error with its file:line; 300 randomly
# broken copies of the annotated config never crash it.

. "$top_srcdir/tests/lib.sh"

if [ ! -x "$JOBPOOLD" ]; then
	echo "jobpoold is not built: $JOBPOOLD" >&2
	exit 99
fi

OUT="$JP_TMP/out"
ERR="$JP_TMP/err"

# Run jobpoold -t on $1; leave the exit status in RC, its output in $OUT and $ERR.
configtest() {
	RC=0
	"$JOBPOOLD" -t -c "$1" >"$OUT" 2>"$ERR" || RC=$?
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$ERR"; then
		jp_fail "sanitizer report from jobpoold -t -c $1"
		head -40 "$ERR" >&2
	fi
}

# Count the lines on stdin that hold "$1:<line>: ".
count_lined() {
	awk -v f="$1:" 'index($0, f) {
		rest = substr($0, index($0, f) + length(f))
		if (rest ~ /^[0-9]+: /) n++
	} END { print n + 0 }'
}

# Check that file $1 is valid.
expect_valid() {
	configtest "$1"
	jp_eq "$1: exit status" 0 "$RC"
	jp_match "$1: says it is valid" "configuration .*$(basename "$1") is valid" \
	    "$(cat "$OUT")"
}

# Check that file $1 is refused with exit 78 and that each of $2... is on stderr,
# as a whole line or after a prefix such as "jobpoold: ".
expect_errors() {
	local file=$1 want n
	shift
	configtest "$file"
	jp_eq "$file: exit status" 78 "$RC"
	for want in "$@"; do
		if grep -qF -- "$want" "$ERR"; then
			jp_pass "reports '$want'"
		else
			jp_fail "missing '$want'; stderr was:"
			cat "$ERR" >&2
		fi
	done
	# As many "file:line: " errors as expected: none left out, none made up.
	jp_eq "$file: number of errors with a line" \
	    "$(printf '%s\n' "$@" | count_lined "$file")" "$(count_lined "$file" <"$ERR")"
}

# The annotated default config, and a small one, are valid.
expect_valid "$top_srcdir/conf/jobpool.conf"
cat >"$JP_TMP/small.conf" <<CONF
socket = "$JP_SOCK";
queues = ( { name = "q"; handler = "echo"; } );
CONF
expect_valid "$JP_TMP/small.conf"
jp_eq "a small config: nothing on stderr" "" "$(cat "$ERR")"

# A result of max_payload larger than 4 x max_output: valid, with a warning at its line.
cat >"$JP_TMP/bigresult.conf" <<CONF
socket = "$JP_SOCK";
max_output = 65536;
max_payload = 1048576;
queues = ( { name = "q"; handler = "echo"; } );
CONF
expect_valid "$JP_TMP/bigresult.conf"
jp_eq "max_payload over 4 x max_output: a warning at max_payload's line" \
	"$JP_TMP/bigresult.conf:3: warning: a result of max_payload (1048576 bytes) is more than 4 x max_output (262144 bytes): a connection receiving one is closed if its client pauses reading for output_timeout (10000 ms); for results that large, set max_output to at least 262160" \
	"$(cat "$ERR")"

# Several errors at once, at top level and in queues, all reported.
F="$JP_TMP/many.conf"
cat >"$F" <<'CONF'
socket = "relative.sock";
wokers = 3;
max_payload = 0;
socket_mode = "0999";
queues = (
  { name = "a"; handler = "echo"; },
  {
    name = "a";
    handler = "perl";
    workers = 2.5;
    timeout = -3;
    batch = 2000;
  },
  { handler = "echo"; }
);
log_level = "loud";
CONF
expect_errors "$F" \
	"$F:2: unknown setting 'wokers'" \
	"$F:3: 'max_payload' must be between 1 and 268435456, not 0" \
	"$F:4: 'socket_mode' must be octal digits no greater than \"0777\", such as \"0660\", not \"0999\"" \
	"$F:9: unknown handler 'perl' in queue 'a': valid handlers are echo, sha256, spin, sleep, http, plugin:/path/to/handler.so [ARG], exec:/path/to/program [ARGS]" \
	"$F:10: 'workers' in queue 'a' must be an integer" \
	"$F:11: 'timeout' in queue 'a' must be 0 or more seconds, not -3" \
	"$F:12: 'batch' in queue 'a' must be between 1 and 1024, not 2000" \
	"$F:8: duplicate queue name 'a' (first defined at line 6)" \
	"$F:14: queue #3 has no 'name'" \
	"$F:16: 'log_level' must be one of error, warning, notice, info, debug; not 'loud'" \
	"$F:1: 'socket' must be an absolute path, not 'relative.sock'"

# An unknown key inside a queue.
F="$JP_TMP/unknown.conf"
cat >"$F" <<'CONF'
queues = (
  {
    name = "default";
    handler = "echo";
    wokers = 4;
  }
);
CONF
expect_errors "$F" "$F:5: unknown setting 'wokers' in queue 'default'"

# Wrong types name the setting and the type wanted.
F="$JP_TMP/types.conf"
cat >"$F" <<'CONF'
socket = 5;
max_output = "4M";
shutdown_timeout = "30s";
queues = ( { name = "q"; handler = "echo";
  max_jobs = 1.5; priority_max = 99999; } );
CONF
expect_errors "$F" \
	"$F:1: 'socket' must be a string" \
	"$F:2: 'max_output' must be an integer" \
	"$F:3: 'shutdown_timeout' must be a number of seconds" \
	"$F:5: 'max_jobs' in queue 'q' must be an integer" \
	"$F:5: 'priority_max' in queue 'q' must be between -1000 and 1000, not 99999"

# Lifecycle, access and privilege settings: a valid set, with plugin and exec handlers
# that exist (the files are checked, not run, by -t).
printf 'not a real plugin\n' >"$JP_TMP/h.so"
printf '#!/bin/sh\ncat\n' >"$JP_TMP/h.sh"
chmod 755 "$JP_TMP/h.sh"
F="$JP_TMP/lifecycle.conf"
cat >"$F" <<CONF
socket = "$JP_SOCK";
dead_max = 50;
allow_users = [ "root", "$(id -u)" ];
allow_groups = ( "$(id -gn)" );
queues = (
  { name = "p"; handler = "plugin:$JP_TMP/h.so an argument";
    retries = 5; backoff_base = 0.1; backoff_max = 2; backoff_jitter = 0.5;
    grace = 1; max_running = 1; rate = 2.5; burst = 4; poison_after = 2;
    max_jobs_per_worker = 100; max_worker_rss = 67108864;
    rlimit_as = 1073741824; rlimit_cpu = 600; rlimit_nofile = 256; },
  { name = "x"; handler = "exec:$JP_TMP/h.sh -n 1"; rate = 0.5; }
);
CONF
expect_valid "$F"

# ... and each kind of mistake in them, all reported with its line.
printf 'not executable\n' >"$JP_TMP/noexec.sh"
chmod 644 "$JP_TMP/noexec.sh"
F="$JP_TMP/lifecycle-bad.conf"
cat >"$F" <<CONF
dead_max = -1;
allow_users = [ ];
allow_groups = [ "nosuchgroup-jp" ];
socket_owner = "nosuchuser-jp";
queues = (
  { name = "a"; handler = "plugin:relative.so"; },
  { name = "b"; handler = "plugin:$JP_TMP/missing.so"; },
  { name = "c"; handler = "exec:$JP_TMP/noexec.sh arg"; },
  { name = "d"; handler = "echo"; burst = 3; },
  { name = "e"; handler = "echo";
    backoff_base = 10;
    backoff_max = 5;
    backoff_jitter = 2;
    max_worker_rss = 1000;
    user = "nosuchuser-jp";
  }
);
CONF
expect_errors "$F" \
	"$F:1: 'dead_max' must be between 0 and 2147483647, not -1" \
	"$F:2: 'allow_users' is empty; remove it to allow anyone" \
	"$F:3: 'allow_groups': no such group 'nosuchgroup-jp'" \
	"$F:4: 'socket_owner': no such user 'nosuchuser-jp'" \
	"$F:6: handler 'plugin:relative.so' in queue 'a' needs an absolute path: plugin:/path/to/handler.so [ARG]" \
	"$F:7: plugin '$JP_TMP/missing.so' in queue 'b': No such file or directory" \
	"$F:8: exec program '$JP_TMP/noexec.sh' in queue 'c': Permission denied" \
	"$F:9: 'burst' in queue 'd' needs 'rate'" \
	"$F:13: 'backoff_jitter' in queue 'e' must be between 0 and 1, not 2" \
	"$F:14: 'max_worker_rss' in queue 'e' must be 0 or at least 1048576, not 1000" \
	"$F:15: 'user' in queue 'e': no such user 'nosuchuser-jp'" \
	"$F:12: 'backoff_max' (5 s) is less than 'backoff_base' (10 s) in queue 'e'"

# A syntax error stops the parse at its line.
F="$JP_TMP/syntax.conf"
printf 'max_payload = 5;\n\nmax_output = ;\nqueues = ( );\n' >"$F"
expect_errors "$F" "$F:3: syntax error"

# No queues at all: an error with no line.
F="$JP_TMP/noqueues.conf"
printf 'log_level = "debug";\n' >"$F"
expect_errors "$F" "$F: no 'queues': at least one queue is needed"

# A file that does not exist.
F="$JP_TMP/nosuch.conf"
expect_errors "$F" "$F: No such file or directory"

# 300 copies of the annotated config, each with one to three settings given a wrong value
# (a negative, a huge number, a string for a number, a list, an empty string...) or a
# line broken: jobpoold -t exits 0 or 78, never crashes (ASan, UBSan), and each error
# line names the file and a line, or is one of the few errors about the file as a whole.
SHIPPED="$top_srcdir/conf/jobpool.conf"
python3 - "$SHIPPED" "$JP_TMP/mut" 300 <<'PY'
import random, re, sys
src, out, n = open(sys.argv[1]).read().split("\n"), sys.argv[2], int(sys.argv[3])
rng = random.Random(5)
bad = ['-1', '0', '99999999999999999999', '1e300', '""', '"x"', '"/nonexistent/dir"',
       '1.5', 'true', '( )', '[ 1, 2 ]', '{ }', '"\\n"', '-0.001', '65535', '2147483648',
       '"never never"', '"a b"']
settable = [i for i, l in enumerate(src) if re.match(r'\s*[a-z_]+\s*=\s*[^;]*;', l)]
for k in range(n):
    lines = list(src)
    for _ in range(rng.randint(1, 3)):
        i = rng.choice(settable)
        what = rng.random()
        if what < 0.8:
            lines[i] = re.sub(r'=\s*[^;]*;', '= %s;' % rng.choice(bad), lines[i], count=1)
        elif what < 0.9:
            lines[i] = lines[i].replace(';', '', 1)
        else:
            lines.insert(i, lines[i])
    open("%s.%d.conf" % (out, k), "w").write("\n".join(lines))
PY
crashed=0
unlined=0
for F in "$JP_TMP"/mut.*.conf; do
	configtest "$F"
	case $RC in
	0|78) ;;
	*) crashed=$((crashed + 1)); echo "exit $RC on $F:" >&2; head -5 "$ERR" >&2 ;;
	esac
	# Every error line: FILE:LINE: ..., or about the file as a whole (FILE: ...).
	n=$(grep -v -E "^$F(:[0-9]+)?: " "$ERR" | grep -v -E '^$' | wc -l)
	if [ "$n" -gt 0 ]; then
		unlined=$((unlined + 1))
		echo "an error line without the file in $F:" >&2
		grep -v -E "^$F(:[0-9]+)?: " "$ERR" | head -3 >&2
	fi
done
jp_eq "300 mutated configs: jobpoold -t exits 0 or 78 every time" 0 "$crashed"
jp_eq "... and every error line names the file (and a line)" 0 "$unlined"

# jobpoold's own command line: version, help, and usage errors (exit 64).
out=$("$JOBPOOLD" -V); rc=$?
jp_eq "jobpoold -V exits 0" 0 "$rc"
jp_match "jobpoold -V prints the version" '^jobpoold [0-9]+\.[0-9]+\.[0-9]+$' "$out"
out=$("$JOBPOOLD" -h); rc=$?
jp_eq "jobpoold -h exits 0" 0 "$rc"
jp_match "jobpoold -h shows the usage" '^usage: jobpoold \[-c FILE\] \[-t\] \[-d\] \[-V\] \[-h\]' "$out"
out=$("$JOBPOOLD" -x 2>&1); rc=$?
jp_eq "an unknown option exits 64" 64 "$rc"
jp_match "... with the usage" 'usage: jobpoold' "$out"
out=$("$JOBPOOLD" extra 2>&1); rc=$?
jp_eq "an extra argument exits 64" 64 "$rc"
jp_match "... naming it" "unexpected argument 'extra'" "$out"

jp_done
