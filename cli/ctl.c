/*
 * ctl.c: what jobpoolctl's commands share.
 *
 * This file owns running a command from its table entry (ctl_run(): the options, the
 * operands, the connection, stdout), the options' table, errors with the
 * "jobpoolctl: " prefix, the JSON output helpers and the records of the daemon's
 * STATS, HISTORY and DEAD bodies. It talks to the daemon only through libjobpool
 * (jobpool.h).
 */

#include "autoconf.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "proto.h"

/* Long options without a short form. */
enum {
	OPT_JSON = 256,
	OPT_DELAY,
	OPT_TIMEOUT,
	OPT_REDIS,
	OPT_STREAM,
	OPT_KEY,
	OPT_TYPE,
	OPT_SINCE,
	OPT_IDEM
};

/* Every option of a command, and the CTL_O_ bit that lets a command take it. */
static const struct ctl_option {
	int		bit;		/* 0: every command takes it */
	struct option	o;
} ctl_options[] = {
	{ CTL_O_QUEUE, { "queue", required_argument, NULL, 'q' } },
	{ CTL_O_PRIO, { "prio", required_argument, NULL, 'p' } },
	{ CTL_O_PRIO, { "priority", required_argument, NULL, 'p' } },
	{ CTL_O_DELAY, { "delay", required_argument, NULL, OPT_DELAY } },
	{ CTL_O_TIMEOUT, { "timeout", required_argument, NULL, OPT_TIMEOUT } },
	{ CTL_O_NONBLOCK, { "nonblock", no_argument, NULL, 'n' } },
	{ CTL_O_WAIT, { "wait", no_argument, NULL, 'w' } },
	{ CTL_O_RAW, { "raw", no_argument, NULL, 'r' } },
	{ CTL_O_KEEP, { "keep-order", no_argument, NULL, 'k' } },
	{ CTL_O_WINDOW, { "window", required_argument, NULL, 'j' } },
	{ CTL_O_ALL, { "all", no_argument, NULL, 'a' } },
	{ CTL_O_REDIS, { "redis", required_argument, NULL, OPT_REDIS } },
	{ CTL_O_REDIS, { "stream", required_argument, NULL, OPT_STREAM } },
	{ CTL_O_TYPE, { "type", required_argument, NULL, OPT_TYPE } },
	{ CTL_O_SINCE, { "since", required_argument, NULL, OPT_SINCE } },
	{ CTL_O_FOLLOW, { "follow", no_argument, NULL, 'f' } },
	{ CTL_O_KEY, { "key", required_argument, NULL, OPT_KEY } },
	{ CTL_O_IDEM, { "idem", required_argument, NULL, OPT_IDEM } },
	{ 0, { "json", no_argument, NULL, OPT_JSON } },
	{ 0, { "help", no_argument, NULL, 'h' } },
};
#define CTL_NOPTIONS	(sizeof ctl_options / sizeof ctl_options[0])

/* The most --delay and --timeout can say: the protocol's 32-bit milliseconds. */
#define CTL_SECONDS_RANGE	"seconds from 0 to 4294967 (49.7 days)"

const char	*ctl_socket;
int		 ctl_json;
int		 ctl_progress_shown;

/* Clear the progress line from stderr, if one is shown. */
void
ctl_progress_clear(void)
{
	if (ctl_progress_shown) {
		fputs("\r\033[K", stderr);
		ctl_progress_shown = 0;
	}
}

/* Print "jobpoolctl: message" on stderr, first clearing any progress line. */
void
ctl_warnx(const char *fmt, ...)
{
	va_list	ap;

	ctl_progress_clear();
	fputs("jobpoolctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Print a command's usage line to f: each of its forms, after the global options. */
void
ctl_usage_line(FILE *f, const struct ctl_cmd *cmd)
{
	fprintf(f, "usage: " CTL_SYNOPSIS " %s", cmd->name);
	if (cmd->usage[0] != NULL)
		fprintf(f, " %s", cmd->usage[0]);
	if (cmd->usage[1] != NULL)
		fprintf(f, " | %s %s", cmd->name, cmd->usage[1]);
	putc('\n', f);
}

/* Report a bad command line: the command's usage; the usage exit status. */
int
ctl_usage_error(const struct ctl_run *r)
{
	ctl_usage_line(stderr, r->cmd);
	return (EXIT_USAGE);
}

/* Report a failed library call on jp; what names the operation. */
void
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
void
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
void
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
struct jobpool *
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
int
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

/* --key NAME: what the daemon takes (PROTOCOL.md, key=); 0, or -1 after saying why. */
static int
ctl_check_key(const char *name, const char *key)
{
	size_t	i, n = strlen(key);

	if (n == 0 || n > 255) {
		ctl_warnx("%s: bad --key: %zu bytes (1 to 255)", name, n);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f) {
			ctl_warnx("%s: bad --key: byte 0x%02x at %zu is not printable "
			    "ASCII (no space)", name, (unsigned char)key[i], i);
			return (-1);
		}
	}
	return (0);
}

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

/* Take one option of a command into r. 0, or -1 after saying what is wrong with it. */
static int
ctl_option(struct ctl_run *r, int ch, const char *arg)
{
	const char	*name = r->cmd->name;
	long		 v;

	switch (ch) {
	case 'q':
		r->opts.queue = arg;
		break;
	case 'p':
		if (ctl_parse_int(arg, INT_MIN, INT_MAX, &v) != 0) {
			ctl_warnx("%s: bad priority '%s'", name, arg);
			return (-1);
		}
		r->opts.priority = (int)v;
		break;
	case OPT_DELAY:
		if (ctl_parse_seconds(arg, &r->opts.delay_ms) != 0) {
			ctl_warnx("%s: bad --delay '%s': " CTL_SECONDS_RANGE, name, arg);
			return (-1);
		}
		break;
	case OPT_TIMEOUT:
		if (ctl_parse_seconds(arg, &r->opts.timeout_ms) != 0) {
			ctl_warnx("%s: bad --timeout '%s': " CTL_SECONDS_RANGE, name, arg);
			return (-1);
		}
		break;
	case 'j':
		if (ctl_parse_int(arg, 1, CTL_WINDOW_MAX, &v) != 0) {
			ctl_warnx("%s: bad window '%s' (1 to %d)", name, arg,
			    CTL_WINDOW_MAX);
			return (-1);
		}
		r->window = (uint64_t)v;
		break;
	case 'n':
		r->opts.flags |= JOBPOOL_NONBLOCK;
		break;
	case 'w':
		r->wait = 1;
		break;
	case 'r':
		r->raw = 1;
		break;
	case 'k':
		r->keep = 1;
		break;
	case 'a':
		r->all = 1;
		break;
	case OPT_TYPE:
		r->type = arg;
		break;
	case OPT_SINCE:
		r->since = arg;
		break;
	case 'f':
		r->follow = 1;
		break;
	case OPT_JSON:
		ctl_json = 1;
		break;
	case OPT_REDIS:
		r->redis = arg;
		break;
	case OPT_STREAM:
		r->stream = arg;
		break;
	case OPT_KEY:
		if (ctl_check_key(name, arg) != 0)
			return (-1);
		r->key = arg;
		break;
	case OPT_IDEM:
		if (!proto_valid_idem(arg, strlen(arg))) {
			ctl_warnx("%s: --idem: bad token '%.80s': 1 to %d of "
			    PROTO_IDEM_CHARS, r->cmd->name, arg, PROTO_MAX_IDEM);
			return (-1);
		}
		r->idem = arg;
		break;
	default:	/* '?': getopt has said what is wrong */
		return (-1);
	}
	return (0);
}

/*
 * Parse the options the command takes (its CTL_O_ bits, --json and -h) into r; the
 * operands follow at optind. Returns -1 to go on, or an exit status.
 */
static int
ctl_options_parse(struct ctl_run *r, int argc, char **argv)
{
	const struct option	*o;
	struct option		 longopts[CTL_NOPTIONS + 1];
	char			 shortopts[2 * CTL_NOPTIONS + 1] = "", *s = shortopts;
	size_t			 i, n = 0;
	int			 bit, ch;

	for (i = 0; i < CTL_NOPTIONS; i++) {
		bit = ctl_options[i].bit;
		if (bit != 0 && (r->cmd->options & bit) == 0)
			continue;
		o = &ctl_options[i].o;
		longopts[n++] = *o;
		/* A letter once, though two long names (--prio, --priority) share it. */
		if (o->val < 256 && strchr(shortopts, o->val) == NULL) {
			*s++ = (char)o->val;
			if (o->has_arg == required_argument)
				*s++ = ':';
			*s = '\0';
		}
	}
	memset(&longopts[n], 0, sizeof longopts[n]);

	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch == 'h') {
			ctl_usage_line(stdout, r->cmd);
			return (0);
		}
		if (ctl_option(r, ch, optarg) != 0)
			return (ctl_usage_error(r));
	}
	return (-1);
}

/* Parse every operand as a job id into r->ids. 0, or the usage exit status. */
int
ctl_check_ids(struct ctl_run *r)
{
	const char	*cmd = r->cmd->name;
	int		 i;

	if (r->argc == 0) {
		ctl_warnx("%s: no job id given", cmd);
		return (ctl_usage_error(r));
	}
	if ((r->ids = calloc((size_t)r->argc, sizeof *r->ids)) == NULL) {
		ctl_warnx("%s: %s", cmd, strerror(errno));
		return (ctl_usage_error(r));
	}
	for (i = 0; i < r->argc; i++) {
		if (ctl_parse_id(r->argv[i], &r->ids[i]) != 0) {
			ctl_warnx("%s: bad job id '%s'", cmd, r->argv[i]);
			return (ctl_usage_error(r));
		}
	}
	return (0);
}

/*
 * Run a command: its options and operands, then its check, the connection, exec, and
 * stdout flushed. argv[0] is the command's name. Returns the exit status.
 */
int
ctl_run(const struct ctl_cmd *cmd, int argc, char **argv)
{
	struct ctl_run	 r;
	int		 ret;

	memset(&r, 0, sizeof r);
	r.cmd = cmd;
	if ((ret = ctl_options_parse(&r, argc, argv)) != -1)
		return (ret);
	r.argc = argc - optind;
	r.argv = argv + optind;
	if (cmd->maxargs >= 0 && r.argc > cmd->maxargs) {
		if (cmd->toomany != NULL)
			ctl_warnx("%s: too many arguments (%s)", cmd->name, cmd->toomany);
		else
			ctl_warnx("%s: too many arguments", cmd->name);
		return (ctl_usage_error(&r));
	}
	if ((cmd->flags & CTL_IDS) && (ret = ctl_check_ids(&r)) != 0)
		goto out;
	if (cmd->check != NULL && (ret = cmd->check(&r)) != 0)
		goto out;
	/* --redis: the job goes to a Redis stream, not to a daemon. */
	if ((cmd->flags & CTL_CONNECT) && r.redis == NULL &&
	    (r.jp = ctl_connect()) == NULL) {
		ret = EXIT_DAEMON;
		goto out;
	}

	ret = cmd->exec(&r);
	if (ctl_flush_stdout() != 0)
		ret = EXIT_DAEMON;
	ctl_progress_clear();

out:
	jobpool_close(r.jp);
	free(r.ids);
	free(r.data);
	return (ret);
}

/* Flush stdout; on failure say so (quietly for a closed pipe). 0 ok, -1 failed. */
int
ctl_flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return (0);
	if (errno != EPIPE)
		ctl_warnx("write to stdout: %s", strerror(errno));
	return (-1);
}

/* A finished job's result on stdout: JSON, its bytes and a newline, or (-r) its bytes. */
void
ctl_print_result(const struct ctl_run *r, uint64_t id, const struct jobpool_result *res)
{
	if (ctl_json)
		json_result(stdout, 0, id, res->status_name, res->data, res->len);
	else if (res->status == JOBPOOL_JOB_OK) {
		fwrite(res->data, 1, res->len, stdout);
		if (!r->raw)
			putchar('\n');
	}
}

/*
 * Send a raw request line and read its reply (skipping RESULTs for other jobs).
 * 0 with *msg filled, or an exit status after saying what went wrong.
 */
int
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

/*
 * Send "VERB id" (verb in lower case, sent in capitals) and read its reply as
 * ctl_request() does; errors name it "verb id", as what is left holding.
 */
int
ctl_request_id(struct jobpool *jp, const char *verb, uint64_t id,
    char what[CTL_WHAT_MAX], struct jobpool_msg *msg)
{
	char	line[64];

	snprintf(what, CTL_WHAT_MAX, "%s %" PRIu64, verb, id);
	snprintf(line, sizeof line, "%s %" PRIu64, verb, id);
	for (char *p = line; *p != ' '; p++)
		*p = (char)toupper((unsigned char)*p);
	return (ctl_request(jp, line, what, msg));
}

/*
 * Send "VERB id" for each job and print the daemon's word for it ("cancelled",
 * "cancelling", "queued") with the id. An ERR for one job is reported and the others
 * are still tried; a lost connection ends it. Returns the exit status.
 */
int
ctl_per_id(struct jobpool *jp, const char *verb, const uint64_t *ids, int n)
{
	struct jobpool_msg	 msg;
	char			 what[CTL_WHAT_MAX];
	int			 i, ret = 0;

	for (i = 0; i < n; i++) {
		fflush(stdout);
		if (ctl_request_id(jp, verb, ids[i], what, &msg) != 0) {
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

/* Split off the next space- or tab-separated token of *sp, NUL-terminating it. */
char *
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

/* Write len bytes as a JSON string, escaping quote, backslash and bytes below 0x20. */
void
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
void
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
void
json_value(FILE *f, const char *v)
{
	if (json_is_number(v))
		fputs(v, f);
	else
		json_cstring(f, v);
}

/* Write "key":value (a protocol value), after a comma unless it is the first. */
void
json_member(FILE *f, int first, const char *key, const char *v)
{
	if (!first)
		putc(',', f);
	json_cstring(f, key);
	putc(':', f);
	json_value(f, v);
}

/* Write a job's result as one JSON object and a newline. */
void
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

/* The value of key in a record, or NULL. */
const char *
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
void
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
int
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

/*
 * The records of a reply's body, parsed from a copy (*text, to free with the records).
 * 0, or an exit status after saying why not; what names the request.
 */
int
stats_reply(const struct jobpool_msg *msg, const char *what, char **text,
    struct stats_rec **recs, size_t *n)
{
	if ((*text = strndup(msg->data, msg->len)) == NULL ||
	    stats_parse(*text, recs, n) != 0) {
		ctl_warnx("%s: %s", what, strerror(errno));
		free(*text);
		return (EXIT_DAEMON);
	}
	return (0);
}

/* Print the records of one type as a table with aligned columns, to f. */
void
table_fprint(FILE *f, const struct table_col *cols, size_t ncols,
    const struct stats_rec *recs, size_t nrecs, const char *type)
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
				fputs("  ", f);
			if (cols[c].right)
				fprintf(f, "%*s", (int)width[c], v);
			else if (c == ncols - 1)
				fputs(v, f);
			else
				fprintf(f, "%-*s", (int)width[c], v);
		}
		putc('\n', f);
	}
}

/* The same on stdout. */
void
table_print(const struct table_col *cols, size_t ncols, const struct stats_rec *recs,
    size_t nrecs, const char *type)
{
	table_fprint(stdout, cols, ncols, recs, nrecs, type);
}

/* A duration, short and readable: 850us, 12.3ms, 250ms, 1.25s, 3m05s, 2h10m. */
void
ctl_fmt_us(char *buf, size_t len, uint64_t us)
{
	if (us < 1000)
		snprintf(buf, len, "%" PRIu64 "us", us);
	else if (us < 100000)
		snprintf(buf, len, "%.1fms", (double)us / 1000);
	else if (us < 1000000)
		snprintf(buf, len, "%" PRIu64 "ms", us / 1000);
	else if (us < 60000000)
		snprintf(buf, len, "%.2fs", (double)us / 1000000);
	else if (us < UINT64_C(3600000000))
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", us / 60000000,
		    us / 1000000 % 60);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", us / UINT64_C(3600000000),
		    us / 60000000 % 60);
}

/* A size in KiB, short: 900K, 12.5M, 1.25G. */
void
ctl_fmt_kib(char *buf, size_t len, uint64_t kib)
{
	if (kib < 1024)
		snprintf(buf, len, "%" PRIu64 "K", kib);
	else if (kib < 1024 * 1024)
		snprintf(buf, len, "%.1fM", (double)kib / 1024);
	else
		snprintf(buf, len, "%.2fG", (double)kib / (1024 * 1024));
}

/*
 * The monitoring views of a STATS body, for status and top: records made from the
 * queue and worker records, with their numbers made readable, each shown by the
 * columns of a stats_view_*_cols table. A view's record holds at most VIEW_KEYS values, written in the
 * block after its vals pointers (freed with them by stats_free), or pointing into the
 * STATS records' text.
 */
#define VIEW_KEYS	16
#define VIEW_VAL	32

const struct table_col stats_view_queue_cols[] = {
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
	/* Last: the columns before it are where scripts have found them. */
	{ "RETRY_WAIT", "retry_wait", 1 },
};
const size_t stats_view_queue_ncols = sizeof stats_view_queue_cols /
    sizeof stats_view_queue_cols[0];

/* The same records, how fast jobs end and how long the oldest has waited. */
const struct table_col stats_view_flow_cols[] = {
	{ "QUEUE", NULL, 0 },
	{ "JOBS/S_1M", "tput1", 1 },
	{ "JOBS/S_5M", "tput5", 1 },
	{ "JOBS/S_15M", "tput15", 1 },
	{ "OLDEST_WAIT", "oldest", 1 },
};
const size_t stats_view_flow_ncols = sizeof stats_view_flow_cols /
    sizeof stats_view_flow_cols[0];

const struct table_col stats_view_latency_cols[] = {
	{ "QUEUE", NULL, 0 },
	{ "LATENCY", "what", 0 },
	{ "P50", "p50", 1 },
	{ "P90", "p90", 1 },
	{ "P99", "p99", 1 },
	{ "P99.9", "p999", 1 },
	{ "MAX", "max", 1 },
	{ "COUNT", "count", 1 },
};
const size_t stats_view_latency_ncols = sizeof stats_view_latency_cols /
    sizeof stats_view_latency_cols[0];

const struct table_col stats_view_worker_cols[] = {
	{ "QUEUE", NULL, 0 },
	{ "PID", "pid", 1 },
	{ "STATE", "state", 0 },
	{ "JOB", "job", 1 },
	{ "AGE", "age", 1 },
	{ "JOBS", "jobs", 1 },
	{ "INFLIGHT", "inflight", 1 },
	{ "RSS", "rss", 1 },
	{ "CPU", "cpu", 1 },
};
const size_t stats_view_worker_ncols = sizeof stats_view_worker_cols /
    sizeof stats_view_worker_cols[0];

/* A key's value as a number (0 if absent or not one: a daemon older than the key). */
static uint64_t
stats_u64(const struct stats_rec *r, const char *key)
{
	const char	*v = stats_get(r, key);
	uint64_t	 n;

	return (v != NULL && ctl_parse_id(v, &n) == 0 ? n : 0);
}

/* Start a view record of type and name: 0, or -1 out of memory. */
static int
view_start(struct stats_rec *v, const char *type, const char *name)
{
	memset(v, 0, sizeof *v);
	v->type = type;
	v->name = name;
	v->keys = calloc(VIEW_KEYS, sizeof *v->keys);
	v->vals = malloc(VIEW_KEYS * (sizeof *v->vals + VIEW_VAL));
	if (v->keys == NULL || v->vals == NULL) {
		free(v->keys);
		free(v->vals);
		v->keys = NULL;
		v->vals = NULL;
		return (-1);
	}
	return (0);
}

/* The next value of a view record, key (static), to fill; NULL once full. */
static char *
view_val(struct stats_rec *v, const char *key)
{
	char	*p;

	if (v->n == VIEW_KEYS)
		return (NULL);
	p = (char *)(v->vals + VIEW_KEYS) + v->n * VIEW_VAL;
	*p = '\0';
	v->keys[v->n] = (char *)key;
	v->vals[v->n] = p;
	v->n++;
	return (p);
}

/*
 * key: r's value of from as it is (or "-"), pointed at, not copied (a handler's path
 * may be longer than a slot); a count, a duration, a size, a rate.
 */
static void
view_copy(struct stats_rec *v, const char *key, const struct stats_rec *r,
    const char *from)
{
	const char	*s = stats_get(r, from);

	if (view_val(v, key) != NULL)
		v->vals[v->n - 1] = (char *)(s != NULL ? s : "-");
}

static void
view_us(struct stats_rec *v, const char *key, uint64_t us)
{
	char	*p;

	if ((p = view_val(v, key)) != NULL)
		ctl_fmt_us(p, VIEW_VAL, us);
}

static void
view_rate(struct stats_rec *v, const char *key, const struct stats_rec *r,
    const char *from)
{
	const char	*s = stats_get(r, from);
	char		*p;

	if ((p = view_val(v, key)) != NULL)
		snprintf(p, VIEW_VAL, "%.1f", s != NULL ? strtod(s, NULL) : 0.0);
}

/* The views of one queue record: its counts and flow, then wait and run latencies. */
static int
view_queue(struct stats_rec *out, const struct stats_rec *r)
{
	static const char	*lat[] = { "wait", "run" };
	static const char	*qs[] = { "p50", "p90", "p99", "p999", "max" };
	char			 key[32], ckey[32], *p;
	size_t			 i, k;

	if (view_start(&out[0], "queue", r->name) != 0)
		return (-1);
	view_copy(&out[0], "state", r, "state");
	view_copy(&out[0], "workers", r, "workers");
	view_copy(&out[0], "depth", r, "depth");
	/* Every job in the delay heap, as before retry_wait=: those of them in backoff. */
	view_copy(&out[0], "delayed", r, "delayed");
	view_copy(&out[0], "retry_wait", r, "retry_wait");
	view_copy(&out[0], "running", r, "running");
	view_copy(&out[0], "done", r, "done");
	view_copy(&out[0], "failed", r, "failed");
	view_copy(&out[0], "dead", r, "dead");
	view_copy(&out[0], "cancelled", r, "cancelled");
	view_rate(&out[0], "tput1", r, "throughput_1m");
	view_rate(&out[0], "tput5", r, "throughput_5m");
	view_rate(&out[0], "tput15", r, "throughput_15m");
	view_us(&out[0], "oldest", stats_u64(r, "oldest_wait_us"));
	view_copy(&out[0], "handler", r, "handler");
	for (i = 0; i < 2; i++) {
		if (view_start(&out[1 + i], "latency", r->name) != 0)
			return (-1);
		if ((p = view_val(&out[1 + i], "what")) != NULL)
			snprintf(p, VIEW_VAL, "%s", lat[i]);
		snprintf(ckey, sizeof ckey, "%s_count", lat[i]);
		view_copy(&out[1 + i], "count", r, ckey);
		/* None yet: no quantiles ("-"), rather than zeros that look measured. */
		for (k = 0; k < sizeof qs / sizeof qs[0] && stats_u64(r, ckey) != 0; k++) {
			snprintf(key, sizeof key, "%s_%s_us", lat[i], qs[k]);
			view_us(&out[1 + i], qs[k], stats_u64(r, key));
		}
	}
	return (0);
}

/* The view of one worker record. */
static int
view_worker(struct stats_rec *out, const struct stats_rec *r)
{
	uint64_t	 job = stats_u64(r, "job");
	char		*p;

	if (view_start(out, "worker", r->name) != 0)
		return (-1);
	view_copy(out, "pid", r, "pid");
	view_copy(out, "state", r, "state");
	if ((p = view_val(out, "job")) != NULL) {
		if (job != 0)
			snprintf(p, VIEW_VAL, "%" PRIu64, job);
		else
			snprintf(p, VIEW_VAL, "-");
	}
	if (job != 0)
		view_us(out, "age", stats_u64(r, "age_us"));
	else
		view_copy(out, "age", r, "no such key");
	view_copy(out, "jobs", r, "jobs");
	view_copy(out, "inflight", r, "inflight");
	if ((p = view_val(out, "rss")) != NULL)
		ctl_fmt_kib(p, VIEW_VAL, stats_u64(r, "rss_kib"));
	view_us(out, "cpu", stats_u64(r, "cpu_us"));
	return (0);
}

/*
 * The views of recs: per queue a "queue" record and two "latency" records (wait, run),
 * per worker a "worker" record; names point into recs. 0, or -1 out of memory.
 */
int
stats_view(const struct stats_rec *recs, size_t n, struct stats_rec **out,
    size_t *nout)
{
	struct stats_rec	*v;
	size_t			 i, k = 0;

	if ((v = calloc(3 * n + 1, sizeof *v)) == NULL)
		return (-1);
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "queue") == 0) {
			if (view_queue(&v[k], &recs[i]) != 0) {
				stats_free(v, k + 3);
				return (-1);
			}
			k += 3;
		} else if (strcmp(recs[i].type, "worker") == 0) {
			if (view_worker(&v[k], &recs[i]) != 0) {
				stats_free(v, k + 1);
				return (-1);
			}
			k++;
		}
	}
	*out = v;
	*nout = k;
	return (0);
}

/* Print one record as a JSON object; namekey is what its name is called. */
void
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
	for (i = 0; i < r->n; i++)
		json_member(stdout, 0, r->keys[i], r->vals[i]);
	putchar('}');
}

/* Print the records of one type as a JSON array of objects (stats_json_rec). */
void
stats_json_array(const struct stats_rec *recs, size_t n, const char *type,
    const char *namekey)
{
	size_t	i;
	int	first = 1;

	putchar('[');
	for (i = 0; i < n; i++) {
		if (strcmp(recs[i].type, type) != 0)
			continue;
		if (!first)
			putchar(',');
		stats_json_rec(&recs[i], namekey);
		first = 0;
	}
	putchar(']');
}
