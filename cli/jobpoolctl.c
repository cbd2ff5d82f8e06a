/*
 * jobpoolctl.c: the command-line client of jobpoold.
 *
 * This file owns argument parsing, the commands (submit, map, status, wait, cancel,
 * ping), their text and JSON output, and exit statuses. It talks to the daemon only
 * through libjobpool (jobpool.h).
 *
 * Exit statuses: 0 success; 1 a job ended failed, timed out or cancelled, or a cancel
 * was refused; 2 bad usage; 3 the command could not be carried out (the daemon cannot
 * be reached, answered an error, or input/output failed).
 *
 * `map` is the fast path: it streams stdin lines as pipelined SUBMITs with a bounded
 * window of jobs in flight, and streams the RESULTs to stdout, in completion order or
 * (-k) in input order through a reorder ring. Per job it does no syscall and, in the
 * common case, no allocation: stdin is read and stdout written in large blocks, and
 * requests are flushed to the socket in batches.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"

#define EXIT_JOBFAIL	1
#define EXIT_USAGE	2
#define EXIT_DAEMON	3

#define MAP_WINDOW_DEFAULT	1024
#define MAP_WINDOW_MAX		(1024 * 1024)
#define MAP_INBUF		(1024 * 1024)
#define MAP_OUTBUF		(1024 * 1024)
#define MAP_LINE_MAX		((size_t)64 * 1024 * 1024)
#define MAP_FLUSH_AT		(256 * 1024)	/* flush requests once this much is queued */
#define MAP_PROGRESS_NS		100000000L	/* at most ten progress updates a second */

/* Long options without a short form. */
enum {
	OPT_JSON = 256,
	OPT_DELAY,
	OPT_TIMEOUT
};

struct ctl_cmd {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*usage;
};

static const char	*ctl_socket;		/* -s, or NULL for the default */
static int		 ctl_json;		/* --json */
static int		 ctl_raw;		/* submit -w, wait: --raw */
static int		 ctl_progress_shown;	/* a progress line is on stderr */

static const char ctl_usage_text[] =
    "usage: jobpoolctl [-s socket] [--json] command [args]\n"
    "\n"
    "commands:\n"
    "  submit [-w [-r]] [-n] [-q queue] [-p prio] [--delay s] [--timeout s]\n"
    "         [data | -]       submit one job; print its id, or with -w its result\n"
    "                          (-r, --raw: the bytes only, no newline added)\n"
    "  map [-k] [-q queue] [-j window] [-p prio] [--timeout s]\n"
    "                          run a job for each line of stdin, print the results\n"
    "  status [id]             show the daemon's queues and workers, or one job\n"
    "  wait [-r] id ...        wait for jobs and print their results\n"
    "  cancel id ...           cancel jobs: queued ones at once, running ones\n"
    "                          cooperatively (cleanup hooks run), then by force\n"
    "  dead [-q queue]         list the dead jobs (out of attempts) and their errors\n"
    "  retry id ... | --all [-q queue]\n"
    "                          queue dead jobs again with fresh attempts\n"
    "  reload                  reload the daemon's configuration file\n"
    "  ping                    check that the daemon answers\n"
    "\n"
    "options:\n"
    "  -s, --socket path       the daemon's socket (default: $JOBPOOL_SOCKET, else\n"
    "                          the per-user or system socket)\n"
    "      --json              print JSON instead of text\n"
    "  -h, --help              print this help and exit\n"
    "  -V, --version           print the version and exit\n";

static int	cmd_submit(int, char **);
static int	cmd_map(int, char **);
static int	cmd_status(int, char **);
static int	cmd_wait(int, char **);
static int	cmd_cancel(int, char **);
static int	cmd_ping(int, char **);
static int	cmd_dead(int, char **);
static int	cmd_retry(int, char **);
static int	cmd_reload(int, char **);

static const struct ctl_cmd ctl_cmds[] = {
	{ "submit", cmd_submit, "submit [-w [-r]] [-n] [-q queue] [-p prio] "
	    "[--delay s] [--timeout s] [data | -]" },
	{ "map", cmd_map, "map [-k] [-q queue] [-j window] [-p prio] [--timeout s]" },
	{ "status", cmd_status, "status [id]" },
	{ "wait", cmd_wait, "wait [-r] id ..." },
	{ "cancel", cmd_cancel, "cancel id ..." },
	{ "dead", cmd_dead, "dead [-q queue]" },
	{ "retry", cmd_retry, "retry id ... | retry --all [-q queue]" },
	{ "reload", cmd_reload, "reload" },
	{ "ping", cmd_ping, "ping" },
};

static void	ctl_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Print "jobpoolctl: message" on stderr, first clearing any progress line. */
static void
ctl_warnx(const char *fmt, ...)
{
	va_list	ap;

	if (ctl_progress_shown) {
		fputs("\r\033[K", stderr);
		ctl_progress_shown = 0;
	}
	fputs("jobpoolctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The command table entry for name, or NULL. */
static const struct ctl_cmd *
ctl_cmd_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return (&ctl_cmds[i]);
	}
	return (NULL);
}

/* Print the usage line of the command called name to f. */
static void
ctl_cmd_usage(FILE *f, const char *name)
{
	const struct ctl_cmd	*cmd;

	if ((cmd = ctl_cmd_find(name)) != NULL)
		fprintf(f, "usage: jobpoolctl [-s socket] [--json] %s\n", cmd->usage);
}

/* Report a bad command line for the command called name; the usage exit status. */
static int
ctl_usage_error(const char *name)
{
	ctl_cmd_usage(stderr, name);
	return (EXIT_USAGE);
}

/* Report a failed library call on jp; what names the operation. */
static void
ctl_jperr(struct jobpool *jp, const char *what, int rc)
{
	const char	*code, *msg;
	size_t		 n;

	msg = jobpool_error(jp);
	if (msg == NULL || *msg == '\0')
		msg = "unknown error";
	if (rc == JOBPOOL_ESERVER) {
		code = jobpool_error_code(jp);
		n = code != NULL ? strlen(code) : 0;
		if (n != 0) {
			/* Do not say the code twice if the sentence starts with it. */
			if (strncmp(msg, code, n) == 0 &&
			    (msg[n] == ' ' || msg[n] == ':')) {
				msg += n;
				while (*msg == ' ' || *msg == ':')
					msg++;
			}
			ctl_warnx("%s: %s: %s", what, code, msg);
			return;
		}
	}
	ctl_warnx("%s: %s", what, msg);
}

/* Report an ERR reply whose text is "code message"; what names the operation. */
static void
ctl_err_reply(const char *what, const char *text)
{
	const char	*sp;

	sp = strchr(text, ' ');
	if (sp == NULL)
		ctl_warnx("%s: %s", what, text);
	else
		ctl_warnx("%s: %.*s: %s", what, (int)(sp - text), text, sp + 1);
}

/* Say on stderr that a job did not succeed; line is its map input line or 0. */
static void
ctl_job_failed(uint64_t line, uint64_t id, const char *status, const void *data,
    size_t len)
{
	const char	*body = data, *what;
	char		 where[64];

	if (strcmp(status, "timeout") == 0)
		what = "timed out";
	else
		what = status;
	while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
		len--;
	if (len > INT_MAX)
		len = INT_MAX;
	where[0] = '\0';
	if (line != 0)
		snprintf(where, sizeof where, "line %" PRIu64 ": ", line);
	if (id == 0)	/* the daemon refused it: no job was made */
		ctl_warnx("%snot submitted: %.*s", where, (int)len, body);
	else if (len == 0)
		ctl_warnx("%sjob %" PRIu64 " %s", where, id, what);
	else
		ctl_warnx("%sjob %" PRIu64 " %s: %.*s", where, id, what, (int)len, body);
}

/* Connect to the daemon, or say why not and return NULL. */
static struct jobpool *
ctl_connect(void)
{
	struct jobpool	*jp;
	const char	*path = ctl_socket;
	char		 buf[4096];

	if (path == NULL) {
		path = jobpool_default_socket(buf, sizeof buf);
		if (path == NULL) {
			ctl_warnx("cannot work out the socket path; "
			    "use -s or set JOBPOOL_SOCKET");
			return (NULL);
		}
	}
	jp = jobpool_connect(path);
	if (jp == NULL) {
		ctl_warnx("cannot connect to %s: %s (is jobpoold running?)", path,
		    strerror(errno));
	}
	return (jp);
}

/* Parse a job id: a positive decimal. 0 ok, -1 bad. */
static int
ctl_parse_id(const char *s, uint64_t *id)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return (-1);
	*id = v;
	return (0);
}

/* Parse a decimal int in [min, max]. 0 ok, -1 bad. */
static int
ctl_parse_int(const char *s, long min, long max, long *out)
{
	long	 v;
	char	*end;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return (-1);
	*out = v;
	return (0);
}

/* The most --delay and --timeout can say: the protocol's 32-bit milliseconds. */
#define CTL_SECONDS_RANGE	"seconds from 0 to 4294967 (49.7 days)"

/* Parse seconds, possibly fractional ("1.5"), into milliseconds. 0 ok, -1 bad. */
static int
ctl_parse_seconds(const char *s, uint32_t *ms)
{
	double	 v;
	char	*end;

	if ((*s < '0' || *s > '9') && *s != '.')
		return (-1);
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0')
		return (-1);
	if (!(v >= 0.0) || v * 1000.0 + 0.5 > (double)UINT32_MAX)
		return (-1);
	*ms = (uint32_t)(v * 1000.0 + 0.5);
	return (0);
}

/* Read all of fd into a malloc'd buffer. 0 ok, -1 with errno. */
static int
ctl_read_all(int fd, char **out, size_t *outlen)
{
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;

	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if ((nbuf = realloc(buf, cap)) == NULL)
				goto fail;
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return (0);

fail:
	free(buf);
	return (-1);
}

/* Write len bytes as a JSON string, escaping quote, backslash and bytes below 0x20. */
static void
json_string(FILE *f, const void *data, size_t len)
{
	const unsigned char	*p = data;
	size_t			 i;

	putc('"', f);
	for (i = 0; i < len; i++) {
		switch (p[i]) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (p[i] < 0x20)
				fprintf(f, "\\u%04x", p[i]);
			else
				putc(p[i], f);
			break;
		}
	}
	putc('"', f);
}

/* Write a NUL-terminated string as a JSON string. */
static void
json_cstring(FILE *f, const char *s)
{
	json_string(f, s, strlen(s));
}

/* Is s a number as JSON spells one (-?int(.digits)?)? */
static int
json_is_number(const char *s)
{
	const char	*p = s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9') {
		while (*p >= '0' && *p <= '9')
			p++;
	} else
		return (0);
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return (0);
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return (*p == '\0');
}

/* Write a protocol value: as a JSON number if it is one, else as a string. */
static void
json_value(FILE *f, const char *v)
{
	if (json_is_number(v))
		fputs(v, f);
	else
		json_cstring(f, v);
}

/* Write a job's result as one JSON object and a newline. */
static void
json_result(FILE *f, uint64_t line, uint64_t id, const char *status, const void *data,
    size_t len)
{
	putc('{', f);
	if (line != 0)
		fprintf(f, "\"line\":%" PRIu64 ",", line);
	fprintf(f, "\"id\":%" PRIu64 ",\"status\":", id);
	json_cstring(f, status);
	fputs(",\"result\":", f);
	json_string(f, data, len);
	fputs("}\n", f);
}

/* Split off the next space- or tab-separated token of *sp, NUL-terminating it. */
static char *
ctl_token(char **sp)
{
	char	*s = *sp, *t;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0') {
		*sp = s;
		return (NULL);
	}
	t = s;
	while (*s != '\0' && *s != ' ' && *s != '\t')
		s++;
	if (*s != '\0')
		*s++ = '\0';
	*sp = s;
	return (t);
}

/* Flush stdout; on failure say so (quietly for a closed pipe). 0 ok, -1 failed. */
static int
ctl_flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return (0);
	if (errno != EPIPE)
		ctl_warnx("write to stdout: %s", strerror(errno));
	return (-1);
}

/*
 * Parse the options every command takes (--json, -h) and none else; returns -1 to go
 * on, or an exit status.
 */
static int
ctl_plain_options(int argc, char **argv, const char *name)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	 ch, raw_ok = strcmp(name, "wait") == 0;

	while ((ch = getopt_long(argc, argv, raw_ok ? "hr" : "h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'r':
			if (!raw_ok)
				return (ctl_usage_error(name));
			ctl_raw = 1;
			break;
		case 'h':
			ctl_cmd_usage(stdout, name);
			return (0);
		default:
			return (ctl_usage_error(name));
		}
	}
	return (-1);
}

/* A finished job's result on stdout: JSON, its bytes and a newline, or (--raw) its bytes. */
static void
ctl_print_result(uint64_t id, const struct jobpool_result *res)
{
	if (ctl_json)
		json_result(stdout, 0, id, res->status_name, res->data, res->len);
	else if (res->status == JOBPOOL_JOB_OK) {
		fwrite(res->data, 1, res->len, stdout);
		if (!ctl_raw)
			putchar('\n');
	}
}

/* submit: submit one job, print its id, or with -w wait and print its result. */
static int
cmd_submit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "prio", required_argument, NULL, 'p' },
		{ "priority", required_argument, NULL, 'p' },
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "wait", no_argument, NULL, 'w' },
		{ "raw", no_argument, NULL, 'r' },
		{ "nonblock", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct jobpool_submit_opts	 opts;
	struct jobpool_result		 res;
	struct jobpool			*jp = NULL;
	char				*input = NULL;
	const char			*data;
	size_t				 len;
	uint64_t			 id;
	long				 prio;
	int				 ch, rc, wait = 0, ret = EXIT_DAEMON;

	memset(&opts, 0, sizeof opts);
	memset(&res, 0, sizeof res);
	while ((ch = getopt_long(argc, argv, "hnp:q:rw", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			opts.queue = optarg;
			break;
		case 'p':
			if (ctl_parse_int(optarg, INT_MIN, INT_MAX, &prio) != 0) {
				ctl_warnx("submit: bad priority '%s'", optarg);
				return (ctl_usage_error("submit"));
			}
			opts.priority = (int)prio;
			break;
		case OPT_DELAY:
			if (ctl_parse_seconds(optarg, &opts.delay_ms) != 0) {
				ctl_warnx("submit: bad --delay '%s': "
				    CTL_SECONDS_RANGE, optarg);
				return (ctl_usage_error("submit"));
			}
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &opts.timeout_ms) != 0) {
				ctl_warnx("submit: bad --timeout '%s': "
				    CTL_SECONDS_RANGE, optarg);
				return (ctl_usage_error("submit"));
			}
			break;
		case 'w':
			wait = 1;
			break;
		case 'r':
			ctl_raw = 1;
			break;
		case 'n':
			opts.flags |= JOBPOOL_NONBLOCK;
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			ctl_cmd_usage(stdout, "submit");
			return (0);
		default:
			return (ctl_usage_error("submit"));
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1) {
		ctl_warnx("submit: too many arguments (quote the data, or use - for stdin)");
		return (ctl_usage_error("submit"));
	}
	if (wait)
		opts.flags |= JOBPOOL_WAIT;

	if (argc == 0 || strcmp(argv[0], "-") == 0) {
		if (ctl_read_all(STDIN_FILENO, &input, &len) != 0) {
			ctl_warnx("submit: read stdin: %s", strerror(errno));
			return (EXIT_DAEMON);
		}
		data = input != NULL ? input : "";
	} else {
		data = argv[0];
		len = strlen(data);
	}

	if ((jp = ctl_connect()) == NULL)
		goto out;
	if ((rc = jobpool_submit(jp, &opts, data, len, &id)) != JOBPOOL_OK) {
		ctl_jperr(jp, "submit", rc);
		goto out;
	}
	if (!wait) {
		if (ctl_json)
			printf("{\"id\":%" PRIu64 "}\n", id);
		else
			printf("%" PRIu64 "\n", id);
		ret = 0;
		goto out;
	}
	if ((rc = jobpool_wait(jp, id, -1, &res)) != JOBPOOL_OK) {
		ctl_jperr(jp, "submit: wait", rc);
		goto out;
	}
	ctl_print_result(id, &res);
	if (res.status == JOBPOOL_JOB_OK)
		ret = 0;
	else {
		ctl_job_failed(0, id, res.status_name, res.data, res.len);
		ret = EXIT_JOBFAIL;
	}
	jobpool_result_free(&res);

out:
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	free(input);
	return (ret);
}

/* One result in the -k reorder ring, waiting for the lines before it. */
struct map_slot {
	int		 ready;
	uint64_t	 id;
	char		 status[16];
	char		*buf;
	size_t		 len;
	size_t		 cap;
};

/* A RESULT that arrived before the OK naming its job; kept until the OK comes. */
struct map_early {
	struct map_early	*next;
	uint64_t		 id;
	int			 ok;
	char			 status[16];
	char			*data;
	size_t			 len;
};

/* A job acknowledged but not finished: its id and input sequence number. */
struct map_ident {
	uint64_t	 id;		/* 0: empty slot */
	uint64_t	 seq;
};

struct map {
	struct jobpool			*jp;
	struct jobpool_submit_opts	 opts;
	int				 keep;
	uint64_t			 window;
	uint64_t			 resume;	/* after a full window, go on at this */

	/* stdin: [start, end) is unsubmitted input, [start, scan) has no newline. */
	char				*in;
	size_t				 in_cap;
	size_t				 in_start;
	size_t				 in_scan;
	size_t				 in_end;
	int				 in_eof;

	uint64_t			 submitted;	/* lines sent */
	uint64_t			 acked;		/* OK replies received */
	uint64_t			 finished;	/* results received */
	uint64_t			 written;	/* -k: results written */
	uint64_t			 failed;
	int				 paused;	/* the window filled up */

	/* Jobs acknowledged, not finished: open addressing, linear probing. */
	struct map_ident		*ids;
	size_t				 ids_mask;
	unsigned			 ids_shift;

	struct map_slot			*ring;		/* -k: window slots */
	struct map_early		*early;

	int				 progress;
	struct timespec			 progress_at;
};

/* The home slot of a job id in the id table. */
static size_t
map_ident_hash(const struct map *m, uint64_t id)
{
	/* Fibonacci hashing: ids from one client are often strided. */
	return ((size_t)((id * 0x9e3779b97f4a7c15ULL) >> m->ids_shift) & m->ids_mask);
}

/* Remember that job id is input line seq. */
static void
map_ident_put(struct map *m, uint64_t id, uint64_t seq)
{
	size_t	i;

	i = map_ident_hash(m, id);
	while (m->ids[i].id != 0)
		i = (i + 1) & m->ids_mask;
	m->ids[i].id = id;
	m->ids[i].seq = seq;
}

/* Find and forget job id; 0 with *seq set, or -1 if it is not known. */
static int
map_ident_take(struct map *m, uint64_t id, uint64_t *seq)
{
	size_t	i, j, k;

	i = map_ident_hash(m, id);
	for (;;) {
		if (m->ids[i].id == 0)
			return (-1);
		if (m->ids[i].id == id)
			break;
		i = (i + 1) & m->ids_mask;
	}
	*seq = m->ids[i].seq;

	/*
	 * Backward-shift deletion: move later entries of the probe run into the hole
	 * when the hole lies between their home slot and where they are, so no lookup
	 * ever stops short at an empty slot. No tombstones to clean up.
	 */
	j = i;
	for (;;) {
		j = (j + 1) & m->ids_mask;
		if (m->ids[j].id == 0)
			break;
		k = map_ident_hash(m, m->ids[j].id);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->ids[i] = m->ids[j];
			i = j;
		}
	}
	m->ids[i].id = 0;
	return (0);
}

/* Write one result line to stdout; line is 1-based. */
static void
map_output(uint64_t line, uint64_t id, const char *status, int ok, const void *data,
    size_t len)
{
	if (ctl_json)
		json_result(stdout, line, id, status, data, len);
	else {
		/* A failed job leaves an empty line, so output lines match input lines. */
		if (ok && len != 0)
			fwrite(data, 1, len, stdout);
		putc('\n', stdout);
	}
}

/* Show "done/submitted done, failed failed" on stderr, at most ten times a second. */
static void
map_progress(struct map *m, int force)
{
	struct timespec	 now;
	long		 ns;

	if (!m->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (now.tv_sec - m->progress_at.tv_sec) * 1000000000L +
	    (now.tv_nsec - m->progress_at.tv_nsec);
	if (!force && ns < MAP_PROGRESS_NS)
		return;
	m->progress_at = now;
	fprintf(stderr, "\r%" PRIu64 "/%" PRIu64 " done, %" PRIu64 " failed",
	    m->finished, m->submitted, m->failed);
	ctl_progress_shown = 1;
}

/* A job finished: count it, report a failure, write or hold its result. 0 or -1. */
static int
map_result(struct map *m, uint64_t seq, uint64_t id, const char *status, int ok,
    const void *data, size_t len)
{
	struct map_slot	*slot;
	char		*nbuf;

	m->finished++;
	if (!ok) {
		m->failed++;
		ctl_job_failed(seq + 1, id, status, data, len);
		if (!ctl_json)
			len = 0;
	}
	if (!m->keep) {
		map_output(seq + 1, id, status, ok, data, len);
		return (0);
	}

	if (seq == m->written) {
		map_output(seq + 1, id, status, ok, data, len);
		m->written++;
		for (;;) {
			slot = &m->ring[m->written % m->window];
			if (!slot->ready)
				break;
			map_output(m->written + 1, slot->id, slot->status,
			    strcmp(slot->status, "ok") == 0, slot->buf, slot->len);
			slot->ready = 0;
			m->written++;
		}
		return (0);
	}

	/* Out of order: hold a copy. Slot buffers are reused, so this rarely allocates. */
	slot = &m->ring[seq % m->window];
	if (len > slot->cap) {
		if ((nbuf = realloc(slot->buf, len)) == NULL) {
			ctl_warnx("map: %s", strerror(errno));
			return (-1);
		}
		slot->buf = nbuf;
		slot->cap = len;
	}
	if (len != 0)
		memcpy(slot->buf, data, len);
	slot->len = len;
	slot->id = id;
	snprintf(slot->status, sizeof slot->status, "%s", status);
	slot->ready = 1;
	return (0);
}

/* Keep a copy of a RESULT whose OK has not come yet. 0 or -1. */
static int
map_early_add(struct map *m, const struct jobpool_msg *msg)
{
	struct map_early	*e;

	if ((e = calloc(1, sizeof *e)) == NULL)
		goto fail;
	if ((e->data = malloc(msg->len + 1)) == NULL) {
		free(e);
		goto fail;
	}
	if (msg->len != 0)
		memcpy(e->data, msg->data, msg->len);
	e->len = msg->len;
	e->id = msg->id;
	e->ok = msg->status == JOBPOOL_JOB_OK;
	snprintf(e->status, sizeof e->status, "%s",
	    msg->status_name != NULL ? msg->status_name : "unknown");
	e->next = m->early;
	m->early = e;
	return (0);

fail:
	ctl_warnx("map: %s", strerror(errno));
	return (-1);
}

/* Handle one message from the daemon. 0, or -1 to give up. */
static int
map_handle(struct map *m, const struct jobpool_msg *msg)
{
	struct map_early	**ep, *e;
	const char		 *status;
	uint64_t		  seq;
	char			  what[64];
	int			  rc;

	switch (msg->type) {
	case JOBPOOL_MSG_OK:
		if (m->acked == m->submitted || msg->id == 0) {
			ctl_warnx("map: unexpected reply 'OK %s'", msg->text);
			return (-1);
		}
		seq = m->acked++;
		for (ep = &m->early; (e = *ep) != NULL; ep = &e->next) {
			if (e->id == msg->id)
				break;
		}
		if (e == NULL) {
			map_ident_put(m, msg->id, seq);
			return (0);
		}
		*ep = e->next;
		rc = map_result(m, seq, e->id, e->status, e->ok, e->data, e->len);
		free(e->data);
		free(e);
		return (rc);
	case JOBPOOL_MSG_ERR:
		/*
		 * Replies come in request order: the n-th reply is about line n. A line
		 * the daemon refuses for what it holds (too large) is a failed line; any
		 * other refusal (no such queue, shutting down, ...) holds for every line.
		 */
		if (strncmp(msg->text, "toolarge ", 9) == 0) {
			seq = m->acked++;
			return (map_result(m, seq, 0, "refused", 0, msg->text,
			    strlen(msg->text)));
		}
		snprintf(what, sizeof what, "map: line %" PRIu64, m->acked + 1);
		ctl_err_reply(what, msg->text);
		return (-1);
	case JOBPOOL_MSG_RESULT:
		if (map_ident_take(m, msg->id, &seq) != 0)
			return (map_early_add(m, msg));
		status = msg->status_name != NULL ? msg->status_name : "unknown";
		return (map_result(m, seq, msg->id, status,
		    msg->status == JOBPOOL_JOB_OK, msg->data, msg->len));
	case JOBPOOL_MSG_DATA:
		break;
	}
	ctl_warnx("map: unexpected message from jobpoold");
	return (-1);
}

/* The next whole input line, or the unterminated last one at EOF: 1, or 0 if none. */
static int
map_next_line(struct map *m, const char **line, size_t *len)
{
	char	*nl;

	nl = memchr(m->in + m->in_scan, '\n', m->in_end - m->in_scan);
	if (nl != NULL) {
		*line = m->in + m->in_start;
		*len = (size_t)(nl - *line);
		m->in_start = m->in_scan = (size_t)(nl - m->in) + 1;
		return (1);
	}
	m->in_scan = m->in_end;
	if (m->in_eof && m->in_start < m->in_end) {
		*line = m->in + m->in_start;
		*len = m->in_end - m->in_start;
		m->in_start = m->in_scan = m->in_end;
		return (1);
	}
	return (0);
}

/* Read more of stdin into the input buffer. 0, or -1 on error. */
static int
map_read(struct map *m)
{
	size_t	 keep, ncap;
	ssize_t	 n;
	char	*nin;

	if (m->in_start != 0) {
		keep = m->in_end - m->in_start;
		memmove(m->in, m->in + m->in_start, keep);
		m->in_scan -= m->in_start;
		m->in_end = keep;
		m->in_start = 0;
	}
	if (m->in_end == m->in_cap) {
		ncap = m->in_cap * 2;
		if (ncap > MAP_LINE_MAX) {
			ctl_warnx("map: line %" PRIu64 " is longer than %zu bytes",
			    m->submitted + 1, MAP_LINE_MAX);
			return (-1);
		}
		if ((nin = realloc(m->in, ncap)) == NULL) {
			ctl_warnx("map: %s", strerror(errno));
			return (-1);
		}
		m->in = nin;
		m->in_cap = ncap;
	}
	for (;;) {
		n = read(STDIN_FILENO, m->in + m->in_end, m->in_cap - m->in_end);
		if (n >= 0)
			break;
		if (errno != EINTR) {
			ctl_warnx("map: read stdin: %s", strerror(errno));
			return (-1);
		}
	}
	if (n == 0)
		m->in_eof = 1;
	m->in_end += (size_t)n;
	return (0);
}

/* Jobs that count against the window. */
static uint64_t
map_inflight(const struct map *m)
{
	/* With -k a finished job holds its ring slot until it is written. */
	return (m->submitted - (m->keep ? m->written : m->finished));
}

/* Submit as many input lines as the window allows. The count sent, or -1. */
static int
map_submit(struct map *m)
{
	const char	*line;
	size_t		 len;
	int		 rc, sent = 0;

	/*
	 * Once the window fills, wait until a quarter of it is free again, so requests
	 * go out in batches and not one write per finished job.
	 */
	if (m->paused && map_inflight(m) <= m->resume)
		m->paused = 0;
	while (!m->paused) {
		if (map_inflight(m) >= m->window) {
			m->paused = 1;
			break;
		}
		if (!map_next_line(m, &line, &len))
			break;
		rc = jobpool_send_submit(m->jp, &m->opts, line, len);
		if (rc != JOBPOOL_OK) {
			ctl_jperr(m->jp, "map: submit", rc);
			return (-1);
		}
		m->submitted++;
		sent++;
		if (jobpool_pending(m->jp) >= MAP_FLUSH_AT) {
			rc = jobpool_flush(m->jp, 0);
			if (rc != JOBPOOL_OK && rc != JOBPOOL_EAGAIN) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
			/* Let the daemon's backpressure reach us rather than buffer without end. */
			if (jobpool_pending(m->jp) >= 16 * MAP_FLUSH_AT &&
			    (rc = jobpool_flush(m->jp, -1)) != JOBPOOL_OK) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
		}
	}
	return (sent);
}

/* Wait until stdin or the daemon has something for us. 0, or -1 on error. */
static int
map_block(struct map *m)
{
	struct jobpool_msg	 msg;
	struct pollfd		 pfd[2];
	int			 rc, want_input;

	if (ctl_flush_stdout() != 0)
		return (-1);
	map_progress(m, 0);

	want_input = !m->in_eof && !m->paused && map_inflight(m) < m->window;
	if (!want_input) {
		rc = jobpool_next(m->jp, &msg, -1);
		if (rc != JOBPOOL_OK) {
			ctl_jperr(m->jp, "map", rc);
			return (-1);
		}
		return (map_handle(m, &msg));
	}
	if (map_inflight(m) == 0 && jobpool_pending(m->jp) == 0)
		return (map_read(m));

	/*
	 * jobpool_flush() may have read replies into the library's buffer since the
	 * last drain; poll() would not wake for those, so take one first.
	 */
	rc = jobpool_next(m->jp, &msg, 0);
	if (rc == JOBPOOL_OK)
		return (map_handle(m, &msg));
	if (rc != JOBPOOL_EAGAIN) {
		ctl_jperr(m->jp, "map", rc);
		return (-1);
	}

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[1].fd = jobpool_fd(m->jp);
	pfd[1].events = POLLIN;
	if (jobpool_pending(m->jp) != 0)
		pfd[1].events |= POLLOUT;
	for (;;) {
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) != -1)
			break;
		if (errno != EINTR) {
			ctl_warnx("map: poll: %s", strerror(errno));
			return (-1);
		}
	}
	/* The daemon's side is serviced by the caller's next round. */
	if (pfd[0].revents != 0)
		return (map_read(m));
	return (0);
}

/* The map loop: until input is used up and every job has finished. 0 or -1. */
static int
map_run(struct map *m)
{
	struct jobpool_msg	 msg;
	int			 rc, got, sent;

	for (;;) {
		got = 0;
		while ((rc = jobpool_next(m->jp, &msg, 0)) == JOBPOOL_OK) {
			if (map_handle(m, &msg) != 0)
				return (-1);
			got++;
		}
		if (rc != JOBPOOL_EAGAIN) {
			ctl_jperr(m->jp, "map", rc);
			return (-1);
		}

		if ((sent = map_submit(m)) < 0)
			return (-1);
		if (jobpool_pending(m->jp) != 0) {
			rc = jobpool_flush(m->jp, 0);
			if (rc != JOBPOOL_OK && rc != JOBPOOL_EAGAIN) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
		}

		if (m->in_eof && m->in_start == m->in_end &&
		    m->finished == m->submitted)
			return (0);
		map_progress(m, 0);
		if (got == 0 && sent == 0 && map_block(m) != 0)
			return (-1);
	}
}

/* Free what a struct map owns and close its connection. */
static void
map_free(struct map *m)
{
	struct map_early	*e;
	uint64_t		 i;

	jobpool_close(m->jp);
	free(m->in);
	free(m->ids);
	if (m->ring != NULL) {
		for (i = 0; i < m->window; i++)
			free(m->ring[i].buf);
		free(m->ring);
	}
	while ((e = m->early) != NULL) {
		m->early = e->next;
		free(e->data);
		free(e);
	}
}

/* map: a job for every line of stdin, results to stdout. */
static int
cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "keep-order", no_argument, NULL, 'k' },
		{ "window", required_argument, NULL, 'j' },
		{ "prio", required_argument, NULL, 'p' },
		{ "priority", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static char	 outbuf[MAP_OUTBUF];
	struct map	 m;
	size_t		 size;
	long		 v;
	int		 ch, ret = EXIT_DAEMON;

	memset(&m, 0, sizeof m);
	m.window = MAP_WINDOW_DEFAULT;
	while ((ch = getopt_long(argc, argv, "hj:kp:q:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			m.opts.queue = optarg;
			break;
		case 'k':
			m.keep = 1;
			break;
		case 'j':
			if (ctl_parse_int(optarg, 1, MAP_WINDOW_MAX, &v) != 0) {
				ctl_warnx("map: bad window '%s' (1 to %d)", optarg,
				    MAP_WINDOW_MAX);
				return (ctl_usage_error("map"));
			}
			m.window = (uint64_t)v;
			break;
		case 'p':
			if (ctl_parse_int(optarg, INT_MIN, INT_MAX, &v) != 0) {
				ctl_warnx("map: bad priority '%s'", optarg);
				return (ctl_usage_error("map"));
			}
			m.opts.priority = (int)v;
			break;
		case OPT_TIMEOUT:
			if (ctl_parse_seconds(optarg, &m.opts.timeout_ms) != 0) {
				ctl_warnx("map: bad --timeout '%s': "
				    CTL_SECONDS_RANGE, optarg);
				return (ctl_usage_error("map"));
			}
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			ctl_cmd_usage(stdout, "map");
			return (0);
		default:
			return (ctl_usage_error("map"));
		}
	}
	if (optind != argc) {
		ctl_warnx("map: too many arguments (map reads its input from stdin)");
		return (ctl_usage_error("map"));
	}
	m.opts.flags = JOBPOOL_WAIT;
	m.resume = m.window - (m.window / 4 > 0 ? m.window / 4 : 1);
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

	/* An id table at most half full. */
	for (size = 16, m.ids_shift = 60; size < 2 * m.window; size *= 2)
		m.ids_shift--;
	m.ids_mask = size - 1;
	m.in_cap = MAP_INBUF;
	m.ids = calloc(size, sizeof *m.ids);
	m.in = malloc(m.in_cap);
	if (m.keep)
		m.ring = calloc(m.window, sizeof *m.ring);
	if (m.ids == NULL || m.in == NULL || (m.keep && m.ring == NULL)) {
		ctl_warnx("map: %s", strerror(errno));
		goto out;
	}
	if (isatty(STDERR_FILENO)) {
		m.progress = 1;
		clock_gettime(CLOCK_MONOTONIC, &m.progress_at);
	}

	if ((m.jp = ctl_connect()) == NULL)
		goto out;
	if (map_run(&m) != 0)
		goto out;
	ret = m.failed != 0 ? EXIT_JOBFAIL : 0;

out:
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	if (ctl_progress_shown) {
		fputs("\r\033[K", stderr);
		ctl_progress_shown = 0;
	}
	map_free(&m);
	return (ret);
}

/* One line of a STATS body: a type, a name and key=value words. */
struct stats_rec {
	const char	*type;
	const char	*name;
	size_t		 n;
	char		**keys;
	char		**vals;
};

/* A column of a table: its title, the key it shows (NULL: the name), alignment. */
struct table_col {
	const char	*title;
	const char	*key;
	int		 right;
};

/* The value of key in a record, or NULL. */
static const char *
stats_get(const struct stats_rec *r, const char *key)
{
	size_t	i;

	if (key == NULL)
		return (r->name);
	for (i = 0; i < r->n; i++) {
		if (strcmp(r->keys[i], key) == 0)
			return (r->vals[i]);
	}
	return (NULL);
}

/* Free records from stats_parse. */
static void
stats_free(struct stats_rec *recs, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(recs[i].keys);
		free(recs[i].vals);
	}
	free(recs);
}

static int
ctl_hex(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/* Decode %XX escapes in place (the daemon encodes spaces in values that have them). */
static void
ctl_pct_decode(char *s)
{
	char	*d = s;
	int	 hi, lo;

	for (; *s != '\0'; s++) {
		if (s[0] == '%' && (hi = ctl_hex(s[1])) >= 0 && (lo = ctl_hex(s[2])) >= 0) {
			*d++ = (char)(hi * 16 + lo);
			s += 2;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/* Is key one whose value runs to the end of its line (free text)? */
static int
ctl_rest_key(const char *key)
{
	return (strcmp(key, "reason") == 0 || strcmp(key, "error") == 0);
}

/* Split a STATS body into records, in place. 0, or -1 if out of memory. */
static int
stats_parse(char *text, struct stats_rec **out, size_t *nout)
{
	struct stats_rec	*recs = NULL, *nrecs, *r;
	size_t			 n = 0, cap = 0;
	char			*line, *next, *tok, *eq, **nk, **nv;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if ((tok = ctl_token(&line)) == NULL)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nrecs = realloc(recs, cap * sizeof *recs)) == NULL)
				goto fail;
			recs = nrecs;
		}
		r = &recs[n++];
		memset(r, 0, sizeof *r);
		r->type = tok;
		r->name = "";
		while ((tok = ctl_token(&line)) != NULL) {
			if ((eq = strchr(tok, '=')) == NULL) {
				if (r->n == 0 && *r->name == '\0')
					r->name = tok;
				continue;
			}
			*eq = '\0';
			if (ctl_rest_key(tok) && *line != '\0') {
				/* Free text: the rest of the line belongs to it. */
				line[-1] = ' ';
				line += strlen(line);
			} else
				ctl_pct_decode(eq + 1);
			nk = realloc(r->keys, (r->n + 1) * sizeof *r->keys);
			if (nk == NULL)
				goto fail;
			r->keys = nk;
			nv = realloc(r->vals, (r->n + 1) * sizeof *r->vals);
			if (nv == NULL)
				goto fail;
			r->vals = nv;
			r->keys[r->n] = tok;
			r->vals[r->n] = eq + 1;
			r->n++;
		}
	}
	*out = recs;
	*nout = n;
	return (0);

fail:
	stats_free(recs, n);
	return (-1);
}

/* Print the records of one type as a table with aligned columns. */
static void
table_print(const struct table_col *cols, size_t ncols, const struct stats_rec *recs,
    size_t nrecs, const char *type)
{
	const char	*v;
	size_t		 c, i, w, width[16];

	for (c = 0; c < ncols; c++) {
		width[c] = strlen(cols[c].title);
		for (i = 0; i < nrecs; i++) {
			if (strcmp(recs[i].type, type) != 0)
				continue;
			v = stats_get(&recs[i], cols[c].key);
			w = strlen(v != NULL ? v : "-");
			if (w > width[c])
				width[c] = w;
		}
	}
	for (i = 0; i <= nrecs; i++) {
		/* Row 0 is the header; rows 1.. are the records of this type. */
		if (i != 0 && strcmp(recs[i - 1].type, type) != 0)
			continue;
		for (c = 0; c < ncols; c++) {
			if (i == 0)
				v = cols[c].title;
			else if ((v = stats_get(&recs[i - 1], cols[c].key)) == NULL)
				v = "-";
			if (c != 0)
				fputs("  ", stdout);
			if (cols[c].right)
				printf("%*s", (int)width[c], v);
			else if (c == ncols - 1)
				fputs(v, stdout);
			else
				printf("%-*s", (int)width[c], v);
		}
		putchar('\n');
	}
}

/* Print the daemon line of STATS as a readable summary. */
static void
stats_print_daemon(const struct stats_rec *r)
{
	const char	*v;
	uint64_t	 t;

	fputs(*r->name != '\0' ? r->name : "jobpoold", stdout);
	if ((v = stats_get(r, "version")) != NULL)
		printf(" %s", v);
	if ((v = stats_get(r, "pid")) != NULL)
		printf(", pid %s", v);
	if ((v = stats_get(r, "uptime")) != NULL) {
		if (ctl_parse_id(v, &t) != 0)
			printf(", up %ss", v);
		else if (t >= 86400)
			printf(", up %" PRIu64 "d%02" PRIu64 "h", t / 86400, t / 3600 % 24);
		else if (t >= 3600)
			printf(", up %" PRIu64 "h%02" PRIu64 "m", t / 3600, t / 60 % 60);
		else if (t >= 60)
			printf(", up %" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
		else
			printf(", up %" PRIu64 "s", t);
	}
	if ((v = stats_get(r, "connections")) != NULL)
		printf(", connections %s", v);
	if ((v = stats_get(r, "jobs")) != NULL)
		printf(", jobs %s", v);
	putchar('\n');
}

/* The journal line of STATS, readable: where, how durable, how big, and trouble. */
static void
stats_print_journal(const struct stats_rec *r)
{
	const char	*v, *dir = stats_get(r, "dir"), *fsync = stats_get(r, "fsync");
	const char	*why = stats_get(r, "reason");

	printf("journal: %s, fsync %s", dir != NULL ? dir : "?", fsync != NULL ? fsync : "?");
	if ((v = stats_get(r, "bytes")) != NULL)
		printf(", %s bytes", v);
	if ((v = stats_get(r, "live_bytes")) != NULL)
		printf(" (%s of waiting and dead jobs)", v);
	if ((v = stats_get(r, "unknown_queue")) != NULL && strcmp(v, "0") != 0)
		printf(", %s jobs kept for queues not configured", v);
	if ((v = stats_get(r, "state")) != NULL && strcmp(v, "ok") != 0)
		printf(", %s: %s", v, why != NULL ? why : "");
	putchar('\n');
	/* Damage the start skipped: a line of its own, so that it is not missed. */
	if ((v = stats_get(r, "damaged")) != NULL && strcmp(v, "0") != 0) {
		const char *bytes = stats_get(r, "damaged_bytes");
		const char *file = stats_get(r, "damaged_file");

		printf("journal_damaged: %s region%s (%s bytes) skipped at the start",
		    v, strcmp(v, "1") == 0 ? "" : "s", bytes != NULL ? bytes : "?");
		if (file != NULL)
			printf(", kept as %s/%s", dir != NULL ? dir : "?", file);
		fputs("; the daemon's log says where\n", stdout);
	}
}

/* Print one record as a JSON object; namekey is what its name is called. */
static void
stats_json_rec(const struct stats_rec *r, const char *namekey)
{
	size_t	i;

	putchar('{');
	json_cstring(stdout, namekey);
	putchar(':');
	/* A queue's name is a string even when it looks like a number; an id is not. */
	if (strcmp(namekey, "id") == 0)
		json_value(stdout, r->name);
	else
		json_cstring(stdout, r->name);
	for (i = 0; i < r->n; i++) {
		putchar(',');
		json_cstring(stdout, r->keys[i]);
		putchar(':');
		json_value(stdout, r->vals[i]);
	}
	putchar('}');
}

/* Print the STATS records as {"daemon":{},"queues":[],"workers":[]}. */
static void
stats_print_json(const struct stats_rec *recs, size_t n)
{
	const struct stats_rec	*daemon = NULL;
	size_t			 i;
	int			 first;

	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "daemon") == 0)
			daemon = &recs[i];
	}
	fputs("{\"daemon\":", stdout);
	if (daemon != NULL)
		stats_json_rec(daemon, "name");
	else
		fputs("{}", stdout);
	fputs(",\"journal\":", stdout);
	for (i = 0; i < n && strcmp(recs[i].type, "journal") != 0; i++)
		;
	if (i < n)
		stats_json_rec(&recs[i], "name");
	else
		fputs("null", stdout);
	fputs(",\"queues\":[", stdout);
	for (i = 0, first = 1; i < n; i++) {
		if (strcmp(recs[i].type, "queue") != 0)
			continue;
		if (!first)
			putchar(',');
		stats_json_rec(&recs[i], "name");
		first = 0;
	}
	fputs("],\"workers\":[", stdout);
	for (i = 0, first = 1; i < n; i++) {
		if (strcmp(recs[i].type, "worker") != 0)
			continue;
		if (!first)
			putchar(',');
		stats_json_rec(&recs[i], "queue");
		first = 0;
	}
	fputs("]}\n", stdout);
}

/* status without an id: the daemon, its queues and its workers. */
static int
status_daemon(struct jobpool *jp)
{
	static const struct table_col queue_cols[] = {
		{ "QUEUE", NULL, 0 },
		{ "STATE", "state", 0 },
		{ "HANDLER", "handler", 0 },
		{ "WORKERS", "workers", 1 },
		{ "DEPTH", "depth", 1 },
		{ "DELAYED", "delayed", 1 },
		{ "RUNNING", "running", 1 },
		{ "DONE", "done", 1 },
		{ "FAILED", "failed", 1 },
		{ "DEAD", "dead", 1 },
		{ "CANCELLED", "cancelled", 1 },
	};
	static const struct table_col worker_cols[] = {
		{ "QUEUE", NULL, 0 },
		{ "PID", "pid", 1 },
		{ "STATE", "state", 0 },
		{ "JOBS", "jobs", 1 },
		{ "RSS_KIB", "rss_kib", 1 },
	};
	struct stats_rec	*recs;
	size_t			 len, n, i;
	char			*text;
	int			 rc;

	if ((rc = jobpool_stats(jp, &text, &len)) != JOBPOOL_OK) {
		ctl_jperr(jp, "status", rc);
		return (EXIT_DAEMON);
	}
	if (stats_parse(text, &recs, &n) != 0) {
		ctl_warnx("status: %s", strerror(errno));
		free(text);
		return (EXIT_DAEMON);
	}
	if (ctl_json)
		stats_print_json(recs, n);
	else {
		for (i = 0; i < n; i++) {
			if (strcmp(recs[i].type, "daemon") == 0)
				stats_print_daemon(&recs[i]);
		}
		for (i = 0; i < n; i++) {
			if (strcmp(recs[i].type, "journal") == 0)
				stats_print_journal(&recs[i]);
		}
		putchar('\n');
		table_print(queue_cols, sizeof queue_cols / sizeof queue_cols[0],
		    recs, n, "queue");
		/* Why a queue is not running, under the table. */
		for (i = 0; i < n; i++) {
			const char *why = stats_get(&recs[i], "reason");

			if (strcmp(recs[i].type, "queue") == 0 && why != NULL)
				printf("queue %s: %s: %s\n", recs[i].name,
				    stats_get(&recs[i], "state"), why);
		}
		putchar('\n');
		table_print(worker_cols, sizeof worker_cols / sizeof worker_cols[0],
		    recs, n, "worker");
	}
	stats_free(recs, n);
	free(text);
	return (0);
}

/*
 * Send a raw request line and read its reply (skipping RESULTs for other jobs).
 * 0 with *msg filled, or an exit status after saying what went wrong.
 */
static int
ctl_request(struct jobpool *jp, const char *line, const char *what,
    struct jobpool_msg *msg)
{
	int	rc;

	msg->type = JOBPOOL_MSG_OK;	/* not ERR: a transport failure says so */
	if ((rc = jobpool_send_line(jp, line)) != JOBPOOL_OK ||
	    (rc = jobpool_flush(jp, -1)) != JOBPOOL_OK) {
		ctl_jperr(jp, what, rc);
		return (EXIT_DAEMON);
	}
	do {
		if ((rc = jobpool_next(jp, msg, -1)) != JOBPOOL_OK) {
			ctl_jperr(jp, what, rc);
			return (EXIT_DAEMON);
		}
	} while (msg->type == JOBPOOL_MSG_RESULT);
	if (msg->type == JOBPOOL_MSG_ERR) {
		ctl_err_reply(what, msg->text);
		return (EXIT_DAEMON);
	}
	return (0);
}

/* The attempts of a job, after its status: text lines, or a "history" JSON array. */
static int
status_history(struct jobpool *jp, uint64_t id, int first)
{
	struct jobpool_msg	 msg;
	struct stats_rec	*recs;
	char			 line[64], what[64], *text;
	size_t			 n, i, k, kept;
	int			 rc, shown = 0;

	snprintf(what, sizeof what, "history %" PRIu64, id);
	snprintf(line, sizeof line, "HISTORY %" PRIu64, id);
	if ((rc = ctl_request(jp, line, what, &msg)) != 0)
		return (rc);
	if (msg.type != JOBPOOL_MSG_DATA) {
		ctl_warnx("%s: unexpected reply from jobpoold", what);
		return (EXIT_DAEMON);
	}
	if ((text = strndup(msg.data, msg.len)) == NULL ||
	    stats_parse(text, &recs, &n) != 0) {
		ctl_warnx("%s: %s", what, strerror(errno));
		free(text);
		return (EXIT_DAEMON);
	}
	if (ctl_json)
		printf("%s\"history\":[", first ? "" : ",");
	for (i = 0, kept = 0; i < n; i++)
		kept += strcmp(recs[i].type, "attempt") == 0;
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "attempt") != 0)
			continue;
		/* The daemon keeps a job's last attempts only: say what is missing. */
		if (shown == 0 && !ctl_json && strtoul(recs[i].name, NULL, 10) > 1)
			printf("attempts 1-%lu: not kept (the daemon keeps the last %zu)\n",
			    strtoul(recs[i].name, NULL, 10) - 1, kept);
		if (ctl_json) {
			printf("%s{\"attempt\":%s", shown ? "," : "", recs[i].name);
			for (k = 0; k < recs[i].n; k++) {
				putchar(',');
				json_cstring(stdout, recs[i].keys[k]);
				putchar(':');
				json_value(stdout, recs[i].vals[k]);
			}
			putchar('}');
		} else {
			const char *err = stats_get(&recs[i], "error");

			printf("attempt %s: worker %s, %s after %s ms%s%s\n", recs[i].name,
			    stats_get(&recs[i], "worker"), stats_get(&recs[i], "outcome"),
			    stats_get(&recs[i], "ms"), err != NULL && *err ? ": " : "",
			    err != NULL ? err : "");
		}
		shown++;
	}
	if (ctl_json)
		putchar(']');
	stats_free(recs, n);
	free(text);
	return (0);
}

/* status ID: the job's key=value words, as "key: value" lines or a JSON object. */
static int
status_job(struct jobpool *jp, uint64_t id)
{
	struct jobpool_msg	 msg;
	char			 line[64], what[64], *copy, *s, *tok, *eq;
	int			 rc, first = 1;

	snprintf(what, sizeof what, "status %" PRIu64, id);
	/* The raw reply, so keys this client does not know are shown too. */
	snprintf(line, sizeof line, "STATUS %" PRIu64, id);
	if ((rc = jobpool_send_line(jp, line)) != JOBPOOL_OK ||
	    (rc = jobpool_flush(jp, -1)) != JOBPOOL_OK) {
		ctl_jperr(jp, what, rc);
		return (EXIT_DAEMON);
	}
	do {
		if ((rc = jobpool_next(jp, &msg, -1)) != JOBPOOL_OK) {
			ctl_jperr(jp, what, rc);
			return (EXIT_DAEMON);
		}
	} while (msg.type == JOBPOOL_MSG_RESULT);
	if (msg.type == JOBPOOL_MSG_ERR) {
		ctl_err_reply(what, msg.text);
		return (EXIT_DAEMON);
	}
	if (msg.type != JOBPOOL_MSG_OK) {
		ctl_warnx("%s: unexpected reply from jobpoold", what);
		return (EXIT_DAEMON);
	}
	if ((copy = strdup(msg.text != NULL ? msg.text : "")) == NULL) {
		ctl_warnx("%s: %s", what, strerror(errno));
		return (EXIT_DAEMON);
	}
	if (ctl_json)
		putchar('{');
	for (s = copy; (tok = ctl_token(&s)) != NULL; /* nothing */) {
		if ((eq = strchr(tok, '=')) == NULL)
			continue;
		*eq++ = '\0';
		if (ctl_json) {
			if (!first)
				putchar(',');
			json_cstring(stdout, tok);
			putchar(':');
			json_value(stdout, eq);
		} else
			printf("%s: %s\n", tok, eq);
		first = 0;
	}
	free(copy);
	rc = status_history(jp, id, first);
	if (ctl_json)
		fputs("}\n", stdout);
	return (rc);
}

/* status [ID]: the daemon's queues and workers, or one job. */
static int
cmd_status(int argc, char **argv)
{
	struct jobpool	*jp;
	uint64_t	 id = 0;
	int		 ret;

	if ((ret = ctl_plain_options(argc, argv, "status")) != -1)
		return (ret);
	argc -= optind;
	argv += optind;
	if (argc > 1) {
		ctl_warnx("status: too many arguments");
		return (ctl_usage_error("status"));
	}
	if (argc == 1 && ctl_parse_id(argv[0], &id) != 0) {
		ctl_warnx("status: bad job id '%s'", argv[0]);
		return (ctl_usage_error("status"));
	}
	if ((jp = ctl_connect()) == NULL)
		return (EXIT_DAEMON);
	if (argc == 0)
		ret = status_daemon(jp);
	else
		ret = status_job(jp, id);
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	return (ret);
}

/* Parse every argument as a job id into a malloc'd array; NULL on a bad one. */
static uint64_t *
ctl_parse_ids(int argc, char **argv, const char *cmd)
{
	uint64_t	*ids;
	int		 i;

	if (argc == 0) {
		ctl_warnx("%s: no job id given", cmd);
		return (NULL);
	}
	if ((ids = calloc((size_t)argc, sizeof *ids)) == NULL) {
		ctl_warnx("%s: %s", cmd, strerror(errno));
		return (NULL);
	}
	for (i = 0; i < argc; i++) {
		if (ctl_parse_id(argv[i], &ids[i]) != 0) {
			ctl_warnx("%s: bad job id '%s'", cmd, argv[i]);
			free(ids);
			return (NULL);
		}
	}
	return (ids);
}

/* Parse the ids of a per-job command and connect. 0, or an exit status. */
static int
ctl_ids_connect(int argc, char **argv, const char *name, uint64_t **ids,
    struct jobpool **jp)
{
	if ((*ids = ctl_parse_ids(argc, argv, name)) == NULL)
		return (ctl_usage_error(name));
	if ((*jp = ctl_connect()) == NULL) {
		free(*ids);
		*ids = NULL;
		return (EXIT_DAEMON);
	}
	return (0);
}

/* wait ID...: wait for each job and print its result. */
static int
cmd_wait(int argc, char **argv)
{
	struct jobpool_result	 res;
	struct jobpool		*jp;
	uint64_t		*ids;
	char			 what[64];
	int			 i, rc, ret;

	if ((ret = ctl_plain_options(argc, argv, "wait")) != -1)
		return (ret);
	argc -= optind;
	argv += optind;
	if ((ret = ctl_ids_connect(argc, argv, "wait", &ids, &jp)) != 0)
		return (ret);
	for (i = 0; i < argc; i++) {
		snprintf(what, sizeof what, "wait %" PRIu64, ids[i]);
		memset(&res, 0, sizeof res);
		rc = jobpool_wait(jp, ids[i], -1, &res);
		if (rc == JOBPOOL_ESERVER) {
			/* notfound and the like: say so, and go on with the others. */
			ctl_jperr(jp, what, rc);
			ret = EXIT_DAEMON;
			continue;
		}
		if (rc != JOBPOOL_OK) {
			ctl_jperr(jp, what, rc);
			ret = EXIT_DAEMON;
			break;
		}
		ctl_print_result(ids[i], &res);
		if (res.status != JOBPOOL_JOB_OK) {
			/* The results before this one should appear before its complaint. */
			fflush(stdout);
			ctl_job_failed(0, ids[i], res.status_name, res.data, res.len);
			if (ret == 0)
				ret = EXIT_JOBFAIL;
		}
		jobpool_result_free(&res);
	}
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	free(ids);
	return (ret);
}

/*
 * Send "VERB id" for each job and print the daemon's word for it ("cancelled",
 * "cancelling", "queued") with the id. An ERR for one job is reported and the others
 * are still tried; a lost connection ends it. Returns the exit status.
 */
static int
ctl_per_id(struct jobpool *jp, const char *verb, const uint64_t *ids, int n)
{
	struct jobpool_msg	 msg;
	char			 line[64], what[64];
	int			 i, ret = 0;

	for (i = 0; i < n; i++) {
		snprintf(what, sizeof what, "%s %" PRIu64, verb, ids[i]);
		snprintf(line, sizeof line, "%s %" PRIu64, verb, ids[i]);
		for (char *p = line; *p != ' '; p++)
			*p = (char)toupper((unsigned char)*p);
		fflush(stdout);
		if (ctl_request(jp, line, what, &msg) != 0) {
			if (msg.type != JOBPOOL_MSG_ERR)
				return (EXIT_DAEMON);
			ret = EXIT_JOBFAIL;
			continue;
		}
		if (ctl_json) {
			printf("{\"id\":%" PRIu64 ",\"status\":", ids[i]);
			json_cstring(stdout, msg.text != NULL ? msg.text : "");
			fputs("}\n", stdout);
		} else
			printf("%s %" PRIu64 "\n", msg.text != NULL ? msg.text : "ok", ids[i]);
	}
	return (ret);
}

/* cancel ID...: cancel jobs, waiting ones at once, running ones cooperatively. */
static int
cmd_cancel(int argc, char **argv)
{
	struct jobpool	*jp;
	uint64_t	*ids;
	int		 ret;

	if ((ret = ctl_plain_options(argc, argv, "cancel")) != -1)
		return (ret);
	argc -= optind;
	argv += optind;
	if ((ret = ctl_ids_connect(argc, argv, "cancel", &ids, &jp)) != 0)
		return (ret);
	ret = ctl_per_id(jp, "cancel", ids, argc);
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	free(ids);
	return (ret);
}

/* dead [-q queue]: the dead jobs, oldest first, with their last error. */
static int
cmd_dead(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "queue", required_argument, NULL, 'q' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct table_col cols[] = {
		{ "ID", NULL, 1 },
		{ "QUEUE", "queue", 0 },
		{ "ATTEMPTS", "attempts", 1 },
		{ "STATUS", "status", 0 },
		{ "AGE_S", "age", 1 },
		{ "ERROR", "error", 0 },
	};
	struct jobpool_msg	 msg;
	struct jobpool		*jp;
	struct stats_rec	*recs;
	const char		*queue = NULL;
	char			 line[128], *text;
	size_t			 n, i;
	int			 ch, ret, first = 1;

	while ((ch = getopt_long(argc, argv, "q:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			queue = optarg;
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			ctl_cmd_usage(stdout, "dead");
			return (0);
		default:
			return (ctl_usage_error("dead"));
		}
	}
	if (optind != argc) {
		ctl_warnx("dead: too many arguments");
		return (ctl_usage_error("dead"));
	}
	snprintf(line, sizeof line, "DEAD%s%s", queue != NULL ? " " : "",
	    queue != NULL ? queue : "");
	if ((jp = ctl_connect()) == NULL)
		return (EXIT_DAEMON);
	if ((ret = ctl_request(jp, line, "dead", &msg)) != 0) {
		jobpool_close(jp);
		return (ret);
	}
	if ((text = strndup(msg.data, msg.len)) == NULL ||
	    stats_parse(text, &recs, &n) != 0) {
		ctl_warnx("dead: %s", strerror(errno));
		free(text);
		jobpool_close(jp);
		return (EXIT_DAEMON);
	}
	if (ctl_json) {
		putchar('[');
		for (i = 0; i < n; i++) {
			if (strcmp(recs[i].type, "dead") != 0)
				continue;
			if (!first)
				putchar(',');
			stats_json_rec(&recs[i], "id");
			first = 0;
		}
		fputs("]\n", stdout);
	} else if (n > 0)
		table_print(cols, sizeof cols / sizeof cols[0], recs, n, "dead");
	stats_free(recs, n);
	free(text);
	ret = ctl_flush_stdout() != 0 ? EXIT_DAEMON : 0;
	jobpool_close(jp);
	return (ret);
}

/* retry ID... | retry --all [-q queue]: queue dead jobs again. */
static int
cmd_retry(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "queue", required_argument, NULL, 'q' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct jobpool_msg	 msg;
	struct jobpool		*jp;
	const char		*queue = NULL;
	uint64_t		*ids = NULL;
	char			 line[128];
	int			 ch, all = 0, ret = 0;

	while ((ch = getopt_long(argc, argv, "aq:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			all = 1;
			break;
		case 'q':
			queue = optarg;
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			ctl_cmd_usage(stdout, "retry");
			return (0);
		default:
			return (ctl_usage_error("retry"));
		}
	}
	argc -= optind;
	argv += optind;
	if (all && argc > 0) {
		ctl_warnx("retry: give job ids or --all, not both");
		return (ctl_usage_error("retry"));
	}
	if (!all && queue != NULL) {
		ctl_warnx("retry: -q goes with --all");
		return (ctl_usage_error("retry"));
	}
	if (!all) {
		if ((ret = ctl_ids_connect(argc, argv, "retry", &ids, &jp)) != 0)
			return (ret);
		ret = ctl_per_id(jp, "retry", ids, argc);
	} else {
		if ((jp = ctl_connect()) == NULL)
			return (EXIT_DAEMON);
		snprintf(line, sizeof line, "RETRY all%s%s", queue != NULL ? " " : "",
		    queue != NULL ? queue : "");
		if ((ret = ctl_request(jp, line, "retry", &msg)) == 0) {
			if (ctl_json)
				printf("{\"retried\":%s}\n", msg.text);
			else
				printf("%s dead job%s queued again\n", msg.text,
				    strcmp(msg.text, "1") == 0 ? "" : "s");
		}
	}
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	free(ids);
	return (ret);
}

/* reload: the daemon rereads its configuration file. */
static int
cmd_reload(int argc, char **argv)
{
	struct jobpool_msg	 msg;
	struct jobpool		*jp;
	int			 ret;

	if ((ret = ctl_plain_options(argc, argv, "reload")) != -1)
		return (ret);
	if (optind != argc) {
		ctl_warnx("reload: too many arguments");
		return (ctl_usage_error("reload"));
	}
	if ((jp = ctl_connect()) == NULL)
		return (EXIT_DAEMON);
	if ((ret = ctl_request(jp, "RELOAD", "reload", &msg)) == 0)
		puts(ctl_json ? "{\"reload\":\"ok\"}" : "reloaded");
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	return (ret);
}

/* ping: check that the daemon answers. */
static int
cmd_ping(int argc, char **argv)
{
	struct jobpool	*jp;
	int		 rc, ret;

	if ((ret = ctl_plain_options(argc, argv, "ping")) != -1)
		return (ret);
	if (optind != argc) {
		ctl_warnx("ping: too many arguments");
		return (ctl_usage_error("ping"));
	}
	if ((jp = ctl_connect()) == NULL)
		return (EXIT_DAEMON);
	if ((rc = jobpool_ping(jp)) != JOBPOOL_OK) {
		ctl_jperr(jp, "ping", rc);
		ret = EXIT_DAEMON;
	} else {
		puts(ctl_json ? "{\"ping\":\"pong\"}" : "pong");
		ret = 0;
	}
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	jobpool_close(jp);
	return (ret);
}

/* Parse the global options and run the command. */
int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct ctl_cmd	*cmd;
	char			 prog[64];
	int			 ch;

	/* A daemon that goes away must give an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	argv[0] = (char *)"jobpoolctl";		/* getopt's complaints, as ours */

	/* "+": stop at the command; each command parses its own options. */
	while ((ch = getopt_long(argc, argv, "+hs:V", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (*optarg == '\0') {
				ctl_warnx("-s: empty socket path");
				return (EXIT_USAGE);
			}
			ctl_socket = optarg;
			break;
		case OPT_JSON:
			ctl_json = 1;
			break;
		case 'h':
			fputs(ctl_usage_text, stdout);
			return (0);
		case 'V':
			printf("jobpoolctl %s\n", PACKAGE_VERSION);
			return (0);
		default:
			fputs(ctl_usage_text, stderr);
			return (EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		ctl_warnx("no command given");
		fputs(ctl_usage_text, stderr);
		return (EXIT_USAGE);
	}
	if ((cmd = ctl_cmd_find(argv[0])) == NULL) {
		ctl_warnx("unknown command '%s'", argv[0]);
		fputs(ctl_usage_text, stderr);
		return (EXIT_USAGE);
	}

	/*
	 * Restart getopt on the command's arguments; argv[0] is the command name.
	 * optind = 0 (not 1) makes glibc and musl drop their saved scanning state.
	 * getopt names argv[0] in its complaints: make them read like ours.
	 */
	snprintf(prog, sizeof prog, "jobpoolctl: %s", cmd->name);
	argv[0] = prog;
	optind = 0;
	return (cmd->fn(argc, argv));
}
