/*
 * config.c: jobpoold's configuration (config.h). Owns reading a libconfig file (or the
 * embedded defaults) into a struct config, in sshd's phases: every field unset, parse,
 * fill defaults, validate. Every error found is collected, not just the first, each as
 * "file:line: message", and handed back in *cause; nothing here logs or exits.
 *
 * A parsed value can never equal its field's "unset" marker: the ranges below keep
 * 32-bit counts at most INT32_MAX, 64-bit sizes at most INT64_MAX and durations at
 * most CONFIG_MAX_DURATION_MS, ints and modes away from INT_MIN and all ones, and
 * fractions and rates at 0 or more.
 *
 * Names of users and groups are looked up when the file is loaded, so that a typo is
 * an error with its line rather than a failure when the daemon or a worker starts; the
 * names are kept, not the ids, and whoever switches to them looks them up again.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "events.h"
#include "proto.h"
#include "redis_url.h"

#define CONFIG_UNSET_INT	INT_MIN
#define CONFIG_UNSET_U32	UINT32_MAX
#define CONFIG_UNSET_U64	UINT64_MAX
#define CONFIG_UNSET_MODE	((mode_t)-1)
#define CONFIG_UNSET_DBL	(-1.0)

/* Durations are capped at 24 days, which keeps milliseconds within an int. */
#define CONFIG_MAX_DURATION_MS	(24U * 86400U * 1000U)

#define CONFIG_MAX_WORKERS	1024
#define CONFIG_MAX_PRIORITY	1000

/* Defaults; the man page, conf/jobpool.conf and the tests repeat them. */
#define CONFIG_DEF_MAX_PAYLOAD		1048576U
#define CONFIG_DEF_MAX_OUTPUT		4194304U
#define CONFIG_MIN_MAX_OUTPUT		65536
#define CONFIG_DEF_MAX_CONNECTIONS	1024U
#define CONFIG_MAX_MAX_CONNECTIONS	1000000
#define CONFIG_DEF_MAX_CONNECTIONS_PER_UID 256U
#define CONFIG_DEF_RESERVED_CONNECTIONS	8U
#define CONFIG_MAX_RESERVED_CONNECTIONS	1000
#define CONFIG_DEF_IDLE_TIMEOUT_MS	300000U
#define CONFIG_DEF_REQUEST_TIMEOUT_MS	30000U
#define CONFIG_DEF_KEEP_RESULTS		10000U
#define CONFIG_DEF_KEEP_RESULTS_BYTES	67108864U
#define CONFIG_DEF_SHUTDOWN_MS		30000U
#define CONFIG_DEF_KILL_MS		5000U
#define CONFIG_DEF_OUTPUT_MS		10000U
#define CONFIG_DEF_WORKERS		2
#define CONFIG_DEF_MAX_JOBS		100000U
#define CONFIG_DEF_MAX_BYTES		67108864U
#define CONFIG_DEF_PRIO_MIN		-10
#define CONFIG_DEF_PRIO_MAX		10
#define CONFIG_DEF_BATCH		64U
#define CONFIG_MAX_BATCH		1024
#define CONFIG_MAX_CONCURRENCY		4096
#define CONFIG_CONCURRENT_HANDLERS	"sleep, http"
#define CONFIG_DEF_HTTP_CONCURRENCY	16U
#define CONFIG_DEF_HTTP_MAX_RESPONSE	1048576U
#define CONFIG_DEF_HTTP_MAX_REDIRECTS	5U
#define CONFIG_MAX_HTTP_REDIRECTS	50
#define CONFIG_DEF_HTTP_TIMEOUT_MS	30000U
#define CONFIG_DEF_HTTP_CONNECT_MS	10000U
#define CONFIG_DEF_BATCH_WAIT_MS	10U
#define CONFIG_MAX_BATCH_WAIT_MS	60000
#define CONFIG_DEF_RETRIES		3U
#define CONFIG_MAX_RETRIES		100
#define CONFIG_DEF_BACKOFF_BASE_MS	1000U
#define CONFIG_DEF_BACKOFF_MAX_MS	60000U
#define CONFIG_DEF_BACKOFF_JITTER	0.2
#define CONFIG_DEF_GRACE_MS		5000U
#define CONFIG_MAX_RATE			1000000.0	/* jobs per second */
#define CONFIG_DEF_POISON_AFTER		3U
#define CONFIG_MAX_POISON_AFTER		100
#define CONFIG_MIN_WORKER_RSS		1048576LL	/* 1 MiB */
#define CONFIG_MIN_RLIMIT_AS		16777216LL	/* 16 MiB */
#define CONFIG_MIN_RLIMIT_NOFILE	16LL
#define CONFIG_DEF_DEAD_MAX		10000U
#define CONFIG_DEF_EVENTS_RING		524288U	/* 40 MiB: jobpool.conf(5) */
#define CONFIG_MIN_EVENTS_RING		16
#define CONFIG_MAX_EVENTS_RING		(1U << 26)	/* 5 GiB */
#define CONFIG_DEF_FSYNC_INTERVAL_MS	1000U
#define CONFIG_DEF_COMPACT_SIZE		67108864U
#define CONFIG_MIN_COMPACT_SIZE		65536U
#define CONFIG_MAX_JOURNAL_DIR		(4096 - 32)	/* room for "/journal.N" */
#define CONFIG_DEF_SOCKET_GROUP		"jobpool"	/* as root, if the group exists */
#define CONFIG_MAX_ID			4294967294ULL	/* (uid_t)-1 is "no id" */

/* While loading: where messages point, and the messages so far. */
struct config_parse {
	const char	*path;		/* for messages when libconfig knows no file */
	char		*cause;		/* "file:line: message" lines joined by '\n' */
	size_t		 len;
	int		 nerrors;
	int		 oom;
	int		 flags;		/* CONFIG_LOAD_* */
	char		*warnings;	/* as cause, for a config that is valid */
	size_t		 wlen;
};

static const char config_embedded_text[] =
	"# jobpoold's embedded defaults: used without root and without -c.\n"
	"# No socket setting: the socket goes to $XDG_RUNTIME_DIR/jobpool/jobpool.sock,\n"
	"# or /tmp/jobpool-$UID/jobpool.sock.\n"
	"log_level = \"info\";\n"
	"queues = (\n"
	"\t{ name = \"default\"; handler = \"echo\";   workers = 2; },\n"
	"\t{ name = \"cpu\";     handler = \"spin\";   workers = 0; },\n"
	"\t{ name = \"hash\";    handler = \"sha256\"; workers = 1; },\n"
	"\t{ name = \"sleep\";   handler = \"sleep\";  workers = 4; timeout = 60; }\n"
	");\n";

static const char *const config_builtin_handlers[] = {
	"echo", "sha256", "spin", "sleep", "http"
};

static const struct {
	const char	*name;
	int		 level;
} config_log_levels[] = {
	{ "error", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

#define CONFIG_NITEMS(a)	(sizeof (a) / sizeof (a)[0])

/* Append one "file:line: message" line to the collected errors. */
static void
config_cause_append(struct config_parse *cp, const char *file, int line, const char *msg)
{
	char	 where[32];
	char	*p;
	size_t	 i;
	int	 n;

	cp->nerrors++;
	if (line > 0)
		snprintf(where, sizeof where, ":%d", line);
	else
		where[0] = '\0';
	n = snprintf(NULL, 0, "%s%s: %s", file, where, msg);
	if (n < 0) {
		cp->oom = 1;
		return;
	}
	/* Room for a separating newline and the terminating NUL. */
	p = realloc(cp->cause, cp->len + (size_t)n + 2);
	if (p == NULL) {
		cp->oom = 1;
		return;
	}
	cp->cause = p;
	if (cp->len != 0)
		cp->cause[cp->len++] = '\n';
	snprintf(cp->cause + cp->len, (size_t)n + 1, "%s%s: %s", file, where, msg);
	/*
	 * One error, one line: a value quoted in the message may hold a newline or another
	 * control character ("\n" in a string), which would split it in the log.
	 */
	for (i = cp->len; i < cp->len + (size_t)n; i++) {
		if ((unsigned char)cp->cause[i] < ' ' || cp->cause[i] == 0x7f)
			cp->cause[i] = '?';
	}
	cp->len += (size_t)n;
}

/* Record an error at setting s (NULL: the file as a whole). */
static void __attribute__((format(printf, 3, 4)))
config_cause_add(struct config_parse *cp, const config_setting_t *s, const char *fmt, ...)
{
	char		 msg[512];
	const char	*file = cp->path;
	int		 line = 0;
	va_list		 ap;

	if (s != NULL) {
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	config_cause_append(cp, file, line, msg);
}

/* Record a warning at setting s: the config stays valid, the line is kept for it. */
static void __attribute__((format(printf, 3, 4)))
config_warn_add(struct config_parse *cp, const config_setting_t *s, const char *fmt, ...)
{
	static const char warning[] = "warning: ";
	char		 msg[512];
	const char	*file = cp->path;
	char		*cause = cp->cause;
	size_t		 len = cp->len;
	int		 line = 0, nerrors = cp->nerrors;
	va_list		 ap;

	if (s != NULL) {
		if (config_setting_source_file(s) != NULL)
			file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	memcpy(msg, warning, sizeof warning - 1);
	va_start(ap, fmt);
	vsnprintf(msg + sizeof warning - 1, sizeof msg - (sizeof warning - 1), fmt, ap);
	va_end(ap);
	/* The same lines as errors, into the other list. */
	cp->cause = cp->warnings;
	cp->len = cp->wlen;
	config_cause_append(cp, file, line, msg);
	cp->warnings = cp->cause;
	cp->wlen = cp->len;
	cp->cause = cause;
	cp->len = len;
	cp->nerrors = nerrors;
}

/* Copy a string for the config, noting a failure to allocate. */
static char *
config_strdup(struct config_parse *cp, const char *s)
{
	char	*copy;

	if ((copy = strdup(s)) == NULL)
		cp->oom = 1;
	return (copy);
}

/* Read an integer setting within [min, max]. 0 ok, -1 after recording an error. */
static int
config_want_int(struct config_parse *cp, const config_setting_t *s, const char *where,
    long long min, long long max, long long *out)
{
	const char	*key = config_setting_name(s);
	long long	 v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		config_cause_add(cp, s, "'%s'%s must be an integer", key, where);
		return (-1);
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		if (max == INT64_MAX) {
			config_cause_add(cp, s, "'%s'%s must be at least %lld, not %lld",
			    key, where, min, v);
		} else {
			config_cause_add(cp, s, "'%s'%s must be between %lld and %lld, "
			    "not %lld", key, where, min, max, v);
		}
		return (-1);
	}
	*out = v;
	return (0);
}

/* Read an int or a float as a double; else record "must be <what>". */
static int
config_want_number(struct config_parse *cp, const config_setting_t *s, const char *where,
    const char *what, double *out)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		*out = (double)config_setting_get_int64(s);
		return (0);
	case CONFIG_TYPE_FLOAT:
		*out = config_setting_get_float(s);
		return (0);
	default:
		config_cause_add(cp, s, "'%s'%s must be %s", config_setting_name(s), where,
		    what);
		return (-1);
	}
}

/* Read a duration in seconds (int or float, >= 0) as milliseconds, capped at 24 days. */
static int
config_want_duration(struct config_parse *cp, const config_setting_t *s, const char *where,
    uint32_t *out_ms)
{
	const char	*key = config_setting_name(s);
	double		 v;

	if (config_want_number(cp, s, where, "a number of seconds", &v) != 0)
		return (-1);
	if (!(v >= 0)) {
		config_cause_add(cp, s, "'%s'%s must be 0 or more seconds, not %g",
		    key, where, v);
		return (-1);
	}
	/* Compare before converting: a huge double does not fit any integer. */
	if (v * 1000.0 >= (double)CONFIG_MAX_DURATION_MS)
		*out_ms = CONFIG_MAX_DURATION_MS;
	else
		*out_ms = (uint32_t)(v * 1000.0 + 0.5);
	return (0);
}

/* A duration of at least a millisecond: a limit that 0 would make meaningless. */
static int
config_want_positive_duration(struct config_parse *cp, const config_setting_t *s,
    const char *where, uint32_t *out_ms)
{
	uint32_t	ms;

	if (config_want_duration(cp, s, where, &ms) != 0)
		return (-1);
	if (ms == 0) {
		config_cause_add(cp, s, "'%s'%s must be at least 0.001 seconds",
		    config_setting_name(s), where);
		return (-1);
	}
	*out_ms = ms;
	return (0);
}

/* Read a string setting; the result points into libconfig's tree. */
static int
config_want_string(struct config_parse *cp, const config_setting_t *s, const char *where,
    const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		config_cause_add(cp, s, "'%s'%s must be a string", config_setting_name(s),
		    where);
		return (-1);
	}
	*out = config_setting_get_string(s);
	return (0);
}

/* Read a boolean setting (true or false) into *out. 0 ok, -1 after recording an error. */
static int
config_want_bool(struct config_parse *cp, const config_setting_t *s, const char *where,
    int *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		config_cause_add(cp, s, "'%s'%s must be true or false",
		    config_setting_name(s), where);
		return (-1);
	}
	*out = config_setting_get_bool(s) ? 1 : 0;
	return (0);
}

/* An absolute path setting into *out (a copy). 0 ok, -1 after recording an error. */
static int
config_want_path(struct config_parse *cp, const config_setting_t *s, char **out)
{
	const char	*str;

	if (config_want_string(cp, s, "", &str) != 0)
		return (-1);
	if (str[0] != '/') {
		config_cause_add(cp, s, "'%s' must be an absolute path, not '%.200s'",
		    config_setting_name(s), str);
		return (-1);
	}
	free(*out);
	*out = config_strdup(cp, str);
	return (0);
}

/* Read a number (int or float) within [min, max]. 0 ok, -1 after recording an error. */
static int
config_want_float(struct config_parse *cp, const config_setting_t *s, const char *where,
    double min, double max, double *out)
{
	const char	*key = config_setting_name(s);
	double		 v;

	if (config_want_number(cp, s, where, "a number", &v) != 0)
		return (-1);
	if (!(v >= min && v <= max)) {
		config_cause_add(cp, s, "'%s'%s must be between %.15g and %.15g, not %.15g",
		    key, where, min, max, v);
		return (-1);
	}
	*out = v;
	return (0);
}

/* Read an integer that is 0 (off) or within [min, max]. 0 ok, -1 after an error. */
static int
config_want_off_or_min(struct config_parse *cp, const config_setting_t *s,
    const char *where, long long min, long long max, long long *out)
{
	long long	v;

	if (config_want_int(cp, s, where, 0, max, &v) != 0)
		return (-1);
	if (v != 0 && v < min) {
		config_cause_add(cp, s, "'%s'%s must be 0 or at least %lld, not %lld",
		    config_setting_name(s), where, min, v);
		return (-1);
	}
	*out = v;
	return (0);
}

/*
 * Parse a decimal uid or gid, as allow_users and allow_groups may hold. 1 if str is
 * all digits (with the id in *id, or -1 if it is out of range), else 0.
 */
static int
config_parse_id(const char *str, long long *id)
{
	unsigned long long	 v = 0;
	const char		*p;

	if (*str == '\0')
		return (0);
	for (p = str; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return (0);
	}
	for (p = str; *p != '\0'; p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > CONFIG_MAX_ID) {
			*id = -1;
			return (1);
		}
	}
	*id = (long long)v;
	return (1);
}

/*
 * Check that a user (or, if group, a group) of this name exists. 0 if so, else -1
 * after recording an error at s that says which setting named it.
 */
static int
config_check_account(struct config_parse *cp, const config_setting_t *s, const char *key,
    const char *where, int group, const char *name)
{
	const char	*error = NULL;
	int		 found;

	errno = 0;
	if (group)
		found = getgrnam(name) != NULL;
	else
		found = getpwnam(name) != NULL;
	if (found)
		return (0);
	/* Not found is NULL with errno 0 or one of these; anything else is a real failure. */
	if (errno != 0 && errno != ENOENT && errno != ESRCH && errno != EBADF &&
	    errno != EPERM)
		error = strerror(errno);
	config_cause_add(cp, s, "'%s'%s: no such %s '%.64s'%s%s", key, where,
	    group ? "group" : "user", name, error != NULL ? ": " : "",
	    error != NULL ? error : "");
	return (-1);
}

/* Read a string that names an existing user (or group) into a copy in *out. */
static void
config_want_account(struct config_parse *cp, const config_setting_t *s, const char *where,
    int group, char **out)
{
	const char	*str;

	if (config_want_string(cp, s, where, &str) != 0)
		return;
	if (config_check_account(cp, s, config_setting_name(s), where, group, str) != 0)
		return;
	*out = config_strdup(cp, str);
}

/*
 * Parse allow_users (or, if group, allow_groups; admin_users and admin_groups alike):
 * an array or list of strings, each a name that exists or a decimal id (which need
 * not). An empty list is an error: it would let nobody in (or, for admin_, name
 * nobody), which is never what was meant.
 */
static void
config_parse_allow(struct config_parse *cp, const config_setting_t *s, int group,
    char ***out, int *nout)
{
	const char		*key = config_setting_name(s);
	const char		*what = group ? "group" : "user";
	const char		*idname = group ? "gid" : "uid";
	const config_setting_t	*e;
	const char		*str;
	char			**list;
	long long		 id;
	int			 i, n;

	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		config_cause_add(cp, s, "'%s' must be a list of %s names or %ss, such as "
		    "[ \"%s\", \"1000\" ]", key, what, idname, group ? "staff" : "alice");
		return;
	}
	n = config_setting_length(s);
	if (n == 0) {
		if (strncmp(key, "admin_", strlen("admin_")) == 0)
			config_cause_add(cp, s, "'%s' is empty; remove it (root and the "
			    "daemon's user are administrators without it)", key);
		else
			config_cause_add(cp, s, "'%s' is empty; remove it to allow anyone",
			    key);
		return;
	}
	if ((list = calloc((size_t)n, sizeof *list)) == NULL) {
		cp->oom = 1;
		return;
	}
	*out = list;
	*nout = n;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			config_cause_add(cp, e, "'%s': element %d must be a string: a %s "
			    "name or a decimal %s", key, i + 1, what, idname);
			continue;
		}
		str = config_setting_get_string(e);
		if (config_parse_id(str, &id)) {
			if (id == -1) {
				config_cause_add(cp, e, "'%s': %s %.32s is out of range, "
				    "at most %llu", key, idname, str, CONFIG_MAX_ID);
				continue;
			}
		} else if (config_check_account(cp, e, key, "", group, str) != 0)
			continue;
		list[i] = config_strdup(cp, str);
	}
}

/* Parse a mode written as a string of octal digits, at most 0777. */
static int
config_parse_mode(const char *str, mode_t *out)
{
	unsigned int	 v = 0;
	const char	*p;

	if (*str == '\0')
		return (-1);
	for (p = str; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			return (-1);
		v = v * 8 + (unsigned int)(*p - '0');
		if (v > 0777)
			return (-1);
	}
	*out = (mode_t)v;
	return (0);
}

/* Map a log level name to its syslog priority, or -1. */
static int
config_parse_level(const char *str)
{
	size_t	i;

	for (i = 0; i < CONFIG_NITEMS(config_log_levels); i++) {
		if (strcmp(str, config_log_levels[i].name) == 0)
			return (config_log_levels[i].level);
	}
	return (-1);
}

/*
 * Check the path of a "plugin:" or "exec:" handler: absolute, an existing regular file,
 * readable (a plugin) or executable (a program) by us. 0, or -1 with a message in why.
 * The path ends at the first white space; what follows is the argument string.
 */
static int
config_check_handler_path(const char *handler, size_t prefixlen, int exec,
    const char *where, char *why, size_t len)
{
	const char	*kind = exec ? "exec program" : "plugin";
	const char	*p = handler + prefixlen;
	char		 path[PATH_MAX];
	struct stat	 sb;
	size_t		 n;

	n = strcspn(p, " \t\n\v\f\r");
	if (n == 0 || *p != '/') {
		snprintf(why, len, "handler '%.200s'%s needs an absolute path: %s", handler,
		    where, exec ? "exec:/path/to/program [ARGS]" :
		    "plugin:/path/to/handler.so [ARG]");
		return (-1);
	}
	if (n >= sizeof path) {
		snprintf(why, len, "%s path%s is too long: %zu bytes, at most %zu", kind,
		    where, n, sizeof path - 1);
		return (-1);
	}
	memcpy(path, p, n);
	path[n] = '\0';
	if (stat(path, &sb) == -1) {
		snprintf(why, len, "%s '%.200s'%s: %s", kind, path, where, strerror(errno));
		return (-1);
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(why, len, "%s '%.200s'%s is not a regular file", kind, path, where);
		return (-1);
	}
	/* As the daemon is now; a queue's workers may run as another user. */
	if (faccessat(AT_FDCWD, path, exec ? X_OK : R_OK, AT_EACCESS) == -1) {
		snprintf(why, len, "%s '%.200s'%s: %s", kind, path, where, strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Check a queue's handler. 0 if valid; else -1 with a message in why. The one place
 * that knows what a handler may be; the string is kept as it is, for the worker.
 */
static int
config_check_handler(const char *handler, const char *where, char *why, size_t len)
{
	char	list[192];
	size_t	i, off = 0;

	for (i = 0; i < CONFIG_NITEMS(config_builtin_handlers); i++) {
		if (strcmp(handler, config_builtin_handlers[i]) == 0)
			return (0);
	}
	if (strncmp(handler, CONFIG_HANDLER_PLUGIN, strlen(CONFIG_HANDLER_PLUGIN)) == 0)
		return (config_check_handler_path(handler, strlen(CONFIG_HANDLER_PLUGIN), 0,
		    where, why, len));
	if (strncmp(handler, CONFIG_HANDLER_EXEC, strlen(CONFIG_HANDLER_EXEC)) == 0)
		return (config_check_handler_path(handler, strlen(CONFIG_HANDLER_EXEC), 1,
		    where, why, len));

	list[0] = '\0';
	for (i = 0; i < CONFIG_NITEMS(config_builtin_handlers); i++) {
		off += (size_t)snprintf(list + off, sizeof list - off, "%s, ",
		    config_builtin_handlers[i]);
		if (off >= sizeof list)
			break;
	}
	if (off < sizeof list)
		snprintf(list + off, sizeof list - off, "%s/path/to/handler.so [ARG], "
		    "%s/path/to/program [ARGS]", CONFIG_HANDLER_PLUGIN, CONFIG_HANDLER_EXEC);
	snprintf(why, len, "unknown handler '%.200s'%s: valid handlers are %s", handler,
	    where, list);
	return (-1);
}

/* Does handler carry several jobs at once in one worker (concurrency > 1)? */
int
config_handler_concurrent(const char *handler)
{
	return (strcmp(handler, "sleep") == 0 || strcmp(handler, "http") == 0);
}

/* Online CPUs, for workers = 0; at least 1 and at most the workers limit. */
static int
config_nproc(void)
{
	long	n;

	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > CONFIG_MAX_WORKERS)
		n = CONFIG_MAX_WORKERS;
	return ((int)n);
}

/* Mark every field of a queue unset. */
static void
config_queue_unset(struct queue_config *qc, int line)
{
	memset(qc, 0, sizeof *qc);
	qc->line = line;
	qc->workers = CONFIG_UNSET_INT;
	qc->max_jobs = CONFIG_UNSET_U32;
	qc->max_bytes = CONFIG_UNSET_U64;
	qc->prio_min = CONFIG_UNSET_INT;
	qc->prio_max = CONFIG_UNSET_INT;
	qc->timeout_ms = CONFIG_UNSET_U32;
	qc->batch = CONFIG_UNSET_U32;
	qc->concurrency = CONFIG_UNSET_U32;
	qc->batch_size = CONFIG_UNSET_U32;
	qc->batch_wait_ms = CONFIG_UNSET_U32;
	qc->http_max_response = CONFIG_UNSET_U32;
	qc->http_max_redirects = CONFIG_UNSET_U32;
	qc->http_timeout_ms = CONFIG_UNSET_U32;
	qc->http_connect_timeout_ms = CONFIG_UNSET_U32;
	qc->http_max_host_connections = CONFIG_UNSET_U32;
	qc->retries = CONFIG_UNSET_U32;
	qc->backoff_base_ms = CONFIG_UNSET_U32;
	qc->backoff_max_ms = CONFIG_UNSET_U32;
	qc->backoff_jitter = CONFIG_UNSET_DBL;
	qc->grace_ms = CONFIG_UNSET_U32;
	qc->max_running = CONFIG_UNSET_U32;
	qc->rate = CONFIG_UNSET_DBL;
	qc->burst = CONFIG_UNSET_U32;
	qc->max_running_per_key = CONFIG_UNSET_U32;
	qc->rate_per_key = CONFIG_UNSET_DBL;
	qc->burst_per_key = CONFIG_UNSET_U32;
	qc->max_jobs_per_worker = CONFIG_UNSET_U32;
	qc->max_worker_rss = CONFIG_UNSET_U64;
	qc->poison_after = CONFIG_UNSET_U32;
	qc->rlimit_as = CONFIG_UNSET_U64;
	qc->rlimit_cpu = CONFIG_UNSET_U64;
	qc->rlimit_nofile = CONFIG_UNSET_U64;
}

/* A bucket's default size for a rate: max(1, ceil(rate)), without libm. */
static uint32_t
config_burst_of(double rate)
{
	uint32_t	burst = (uint32_t)rate;	/* at most CONFIG_MAX_RATE */

	if ((double)burst < rate)
		burst++;
	return (burst < 1 ? 1 : burst);
}

/* Fill a queue's unset fields with defaults; resolve workers = 0 to the CPU count. */
static void
config_queue_defaults(struct queue_config *qc)
{
	if (qc->workers == CONFIG_UNSET_INT)
		qc->workers = CONFIG_DEF_WORKERS;
	if (qc->workers == 0)
		qc->workers = config_nproc();
	if (qc->max_jobs == CONFIG_UNSET_U32)
		qc->max_jobs = CONFIG_DEF_MAX_JOBS;
	if (qc->max_bytes == CONFIG_UNSET_U64)
		qc->max_bytes = CONFIG_DEF_MAX_BYTES;
	if (qc->prio_min == CONFIG_UNSET_INT)
		qc->prio_min = CONFIG_DEF_PRIO_MIN;
	if (qc->prio_max == CONFIG_UNSET_INT)
		qc->prio_max = CONFIG_DEF_PRIO_MAX;
	if (qc->timeout_ms == CONFIG_UNSET_U32)
		qc->timeout_ms = 0;
	if (qc->batch == CONFIG_UNSET_U32)
		qc->batch = CONFIG_DEF_BATCH;
	if (qc->concurrency == CONFIG_UNSET_U32)
		qc->concurrency = qc->handler != NULL && strcmp(qc->handler, "http") == 0 ?
		    CONFIG_DEF_HTTP_CONCURRENCY : 1;
	if (qc->batch_size == CONFIG_UNSET_U32)
		qc->batch_size = 0;
	if (qc->batch_wait_ms == CONFIG_UNSET_U32)
		qc->batch_wait_ms = qc->batch_size > 0 ? CONFIG_DEF_BATCH_WAIT_MS : 0;
	if (qc->http_max_response == CONFIG_UNSET_U32)
		qc->http_max_response = CONFIG_DEF_HTTP_MAX_RESPONSE;
	if (qc->http_max_redirects == CONFIG_UNSET_U32)
		qc->http_max_redirects = CONFIG_DEF_HTTP_MAX_REDIRECTS;
	if (qc->http_timeout_ms == CONFIG_UNSET_U32)
		qc->http_timeout_ms = CONFIG_DEF_HTTP_TIMEOUT_MS;
	if (qc->http_connect_timeout_ms == CONFIG_UNSET_U32)
		qc->http_connect_timeout_ms = CONFIG_DEF_HTTP_CONNECT_MS;
	if (qc->http_max_host_connections == CONFIG_UNSET_U32)
		qc->http_max_host_connections = 0;
	if (qc->retries == CONFIG_UNSET_U32)
		qc->retries = CONFIG_DEF_RETRIES;
	if (qc->backoff_base_ms == CONFIG_UNSET_U32)
		qc->backoff_base_ms = CONFIG_DEF_BACKOFF_BASE_MS;
	if (qc->backoff_max_ms == CONFIG_UNSET_U32)
		qc->backoff_max_ms = CONFIG_DEF_BACKOFF_MAX_MS;
	if (qc->backoff_jitter == CONFIG_UNSET_DBL)
		qc->backoff_jitter = CONFIG_DEF_BACKOFF_JITTER;
	if (qc->grace_ms == CONFIG_UNSET_U32)
		qc->grace_ms = CONFIG_DEF_GRACE_MS;
	if (qc->max_running == CONFIG_UNSET_U32)
		qc->max_running = 0;
	if (qc->rate == CONFIG_UNSET_DBL)
		qc->rate = 0;
	if (qc->burst == CONFIG_UNSET_U32)
		qc->burst = config_burst_of(qc->rate);
	if (qc->max_running_per_key == CONFIG_UNSET_U32)
		qc->max_running_per_key = 0;
	if (qc->rate_per_key == CONFIG_UNSET_DBL)
		qc->rate_per_key = 0;
	if (qc->burst_per_key == CONFIG_UNSET_U32)
		qc->burst_per_key = config_burst_of(qc->rate_per_key);
	if (qc->max_jobs_per_worker == CONFIG_UNSET_U32)
		qc->max_jobs_per_worker = 0;
	if (qc->max_worker_rss == CONFIG_UNSET_U64)
		qc->max_worker_rss = 0;
	if (qc->poison_after == CONFIG_UNSET_U32)
		qc->poison_after = CONFIG_DEF_POISON_AFTER;
	if (qc->rlimit_as == CONFIG_UNSET_U64)
		qc->rlimit_as = 0;
	if (qc->rlimit_cpu == CONFIG_UNSET_U64)
		qc->rlimit_cpu = 0;
	if (qc->rlimit_nofile == CONFIG_UNSET_U64)
		qc->rlimit_nofile = 0;
}

/*
 * Whether setting key of group g was given but refused: its field kept the unset
 * marker and a message has been recorded, so checks across settings skip it.
 */
static int
config_refused(const config_setting_t *g, const char *key, int unset)
{
	return (config_setting_get_member(g, key) != NULL && unset);
}

/*
 * batch_size asks for a handler's batch entry point, which only a plugin can have
 * (whether this one has is known only where it is loaded: its workers refuse to start
 * without one, naming this line); batch_wait_ms means nothing without batch_size.
 */
static void
config_batch_validate(struct config_parse *cp, struct queue_config *qc,
    const config_setting_t *g, const char *where)
{
	const config_setting_t	*s;

	if (qc->batch_size != CONFIG_UNSET_U32 && qc->handler != NULL &&
	    strncmp(qc->handler, CONFIG_HANDLER_PLUGIN,
	    strlen(CONFIG_HANDLER_PLUGIN)) != 0) {
		s = config_setting_get_member(g, "batch_size");
		config_cause_add(cp, s, "'batch_size'%s needs a plugin handler with a "
		    "batch entry point (process_batch, jobpool-handler.h): '%.200s' "
		    "takes one job at a time", where, qc->handler);
	}
	if (qc->batch_wait_ms != CONFIG_UNSET_U32 &&
	    !config_refused(g, "batch_size", qc->batch_size == CONFIG_UNSET_U32) &&
	    qc->batch_size == CONFIG_UNSET_U32) {
		s = config_setting_get_member(g, "batch_wait_ms");
		config_cause_add(cp, s, "'batch_wait_ms'%s needs 'batch_size': it bounds "
		    "how long a batch waits to fill", where);
	}
}

/* Checks across a queue's settings, before the defaults fill what was not given. */
static void
config_queue_validate(struct config_parse *cp, struct queue_config *qc,
    const config_setting_t *g, const char *where)
{
	const config_setting_t	*sbase, *smax, *sburst;
	uint32_t		 base, max;

	/* backoff_max >= backoff_base, either of them given or by default. */
	sbase = config_setting_get_member(g, "backoff_base");
	smax = config_setting_get_member(g, "backoff_max");
	if (!config_refused(g, "backoff_base", qc->backoff_base_ms == CONFIG_UNSET_U32) &&
	    !config_refused(g, "backoff_max", qc->backoff_max_ms == CONFIG_UNSET_U32)) {
		base = qc->backoff_base_ms != CONFIG_UNSET_U32 ? qc->backoff_base_ms :
		    CONFIG_DEF_BACKOFF_BASE_MS;
		max = qc->backoff_max_ms != CONFIG_UNSET_U32 ? qc->backoff_max_ms :
		    CONFIG_DEF_BACKOFF_MAX_MS;
		if (max < base) {
			config_cause_add(cp, smax != NULL ? smax : sbase,
			    "'backoff_max' (%g s) is less than 'backoff_base' (%g s)%s",
			    max / 1000.0, base / 1000.0, where);
		}
	}

	config_batch_validate(cp, qc, g, where);
	/* The http_* settings bound the http handler's requests, and nothing else. */
	if (config_setting_get_member(g, "handler") != NULL && qc->handler != NULL &&
	    strcmp(qc->handler, "http") != 0) {
		static const char *const http_keys[] = { "http_max_response",
		    "http_max_redirects", "http_timeout", "http_connect_timeout",
		    "http_max_host_connections", "http_output" };
		size_t	i;

		for (i = 0; i < CONFIG_NITEMS(http_keys); i++) {
			if (config_setting_get_member(g, http_keys[i]) != NULL)
				config_cause_add(cp, config_setting_get_member(g,
				    http_keys[i]), "'%s'%s is a setting of handler "
				    "\"http\", not of '%.200s'", http_keys[i], where,
				    qc->handler);
		}
	}

	/* An explicit burst means nothing without a rate to refill it. */
	sburst = config_setting_get_member(g, "burst");
	if (qc->burst != CONFIG_UNSET_U32 &&
	    (config_setting_get_member(g, "rate") == NULL || qc->rate == 0)) {
		config_cause_add(cp, sburst, "'burst'%s needs 'rate': a burst limits "
		    "nothing without a rate above 0", where);
	}
	sburst = config_setting_get_member(g, "burst_per_key");
	if (qc->burst_per_key != CONFIG_UNSET_U32 &&
	    (config_setting_get_member(g, "rate_per_key") == NULL ||
	    qc->rate_per_key == 0)) {
		config_cause_add(cp, sburst, "'burst_per_key'%s needs 'rate_per_key': a "
		    "burst limits nothing without a rate above 0", where);
	}
}

/* Copy a string setting of a queue's source into a fixed field; -1 after an error. */
static int
config_source_string(struct config_parse *cp, const config_setting_t *s,
    const char *where, char *dst, size_t size)
{
	const char	*str;

	if (config_want_string(cp, s, where, &str) != 0)
		return (-1);
	if (*str == '\0' || strlen(str) >= size) {
		config_cause_add(cp, s, "'%s'%s must be 1 to %zu bytes",
		    config_setting_name(s), where, size - 1);
		return (-1);
	}
	memcpy(dst, str, strlen(str) + 1);
	return (0);
}

/*
 * A queue's source: source = { redis = "redis://..."; stream = "..."; group = "...";
 * consumer = "..."; } (source_redis.c). The URL is checked here, so a bad one is an
 * error at its line; no message quotes it, since it may hold a password.
 */
static void
config_parse_source(struct config_parse *cp, struct queue_config *qc,
    const config_setting_t *g, const char *qwhere)
{
	struct source_config	*sc = &qc->source;
	struct redis_url	 u;
	const config_setting_t	*s;
	const char		*key;
	char			 where[160], why[256];
	int			 i, n;

	/* qwhere is " in queue 'name'" (or " in queue #n"). */
	snprintf(where, sizeof where, " in the source of%s", qwhere + 3);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		config_cause_add(cp, g, "'source'%s must be a group: source = { redis = "
		    "\"redis://host:port/db\"; stream = \"name\"; }", qwhere);
		return;
	}
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, i);
		key = config_setting_name(s);
		if (strcmp(key, "redis") == 0) {
			if (config_source_string(cp, s, where, sc->redis,
			    sizeof sc->redis) != 0)
				continue;
			if (redis_url_parse(sc->redis, &u, why, sizeof why) != 0) {
				config_cause_add(cp, s, "'redis'%s: %s", where, why);
				sc->redis[0] = '\0';
			}
		} else if (strcmp(key, "stream") == 0)
			config_source_string(cp, s, where, sc->stream, sizeof sc->stream);
		else if (strcmp(key, "group") == 0)
			config_source_string(cp, s, where, sc->group, sizeof sc->group);
		else if (strcmp(key, "consumer") == 0)
			config_source_string(cp, s, where, sc->consumer, sizeof sc->consumer);
		else if (strcmp(key, "claim") == 0) {
			if (config_want_duration(cp, s, where, &sc->claim_ms) == 0 &&
			    sc->claim_ms < 100) {
				config_cause_add(cp, s, "'claim'%s must be at least 0.1 s: an "
				    "entry idle less long may still be running", where);
			}
		} else if (strcmp(key, "result_ttl") == 0)
			config_want_duration(cp, s, where, &sc->result_ms);
		else if (strcmp(key, "password_file") == 0) {
			if (config_source_string(cp, s, where, sc->password_file,
			    sizeof sc->password_file) == 0 && sc->password_file[0] != '/') {
				config_cause_add(cp, s, "'password_file'%s must be an "
				    "absolute path", where);
			}
		} else
			config_cause_add(cp, s, "unknown setting '%s'%s", key, where);
	}
	if (config_setting_get_member(g, "redis") == NULL)
		config_cause_add(cp, g, "'redis' is missing%s", where);
	if (config_setting_get_member(g, "stream") == NULL)
		config_cause_add(cp, g, "'stream' is missing%s", where);
	if (sc->password_file[0] != '\0' && sc->redis[0] != '\0' &&
	    redis_url_parse(sc->redis, &u, why, sizeof why) == 0 && u.pass[0] != '\0') {
		config_cause_add(cp, config_setting_get_member(g, "password_file"),
		    "'password_file'%s and a password in 'redis': give one of them", where);
	}
	explicit_bzero(&u, sizeof u);
	if (sc->group[0] == '\0')
		snprintf(sc->group, sizeof sc->group, "jobpool");
	if (sc->claim_ms == 0)
		sc->claim_ms = 60000;
	/* The host name: stable across restarts, so a host finds its own pending entries. */
	if (sc->consumer[0] == '\0' &&
	    gethostname(sc->consumer, sizeof sc->consumer - 1) != 0)
		snprintf(sc->consumer, sizeof sc->consumer, "jobpoold");
}

/* Parse queue number idx (from 1) into the next free slot of cf->queues. */
static void
config_parse_queue(struct config_parse *cp, struct config *cf, const config_setting_t *g,
    int idx)
{
	struct queue_config	*qc = &cf->queues[cf->nqueues];
	const config_setting_t	*s, *sname, *shandler, *smin, *smax;
	const char		*key, *str;
	char			 where[96], why[512];
	long long		 v;
	int			 i, n;

	config_queue_unset(qc, config_setting_source_line(g));
	cf->nqueues++;

	/* The name first, so every other message can say which queue it is about. */
	sname = config_setting_get_member(g, "name");
	if (sname != NULL && config_setting_type(sname) == CONFIG_TYPE_STRING)
		snprintf(where, sizeof where, " in queue '%.63s'",
		    config_setting_get_string(sname));
	else
		snprintf(where, sizeof where, " in queue #%d", idx);

	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, i);
		key = config_setting_name(s);
		if (strcmp(key, "name") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (!proto_valid_name(str, strlen(str))) {
				config_cause_add(cp, s, "invalid queue name '%.63s%s': use 1 to "
				    "%d of A-Z a-z 0-9 _ . -", str,
				    strlen(str) > 63 ? "..." : "", PROTO_MAX_NAME);
				continue;
			}
			qc->name = config_strdup(cp, str);
		} else if (strcmp(key, "handler") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (config_check_handler(str, where, why, sizeof why) != 0) {
				config_cause_add(cp, s, "%s", why);
				continue;
			}
			qc->handler = config_strdup(cp, str);
		} else if (strcmp(key, "workers") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_WORKERS, &v) == 0)
				qc->workers = (int)v;
		} else if (strcmp(key, "max_jobs") == 0) {
			if (config_want_int(cp, s, where, 1, INT32_MAX, &v) == 0)
				qc->max_jobs = (uint32_t)v;
		} else if (strcmp(key, "max_bytes") == 0) {
			if (config_want_int(cp, s, where, 1, INT64_MAX, &v) == 0)
				qc->max_bytes = (uint64_t)v;
		} else if (strcmp(key, "priority_min") == 0) {
			if (config_want_int(cp, s, where, -CONFIG_MAX_PRIORITY,
			    CONFIG_MAX_PRIORITY, &v) == 0)
				qc->prio_min = (int)v;
		} else if (strcmp(key, "priority_max") == 0) {
			if (config_want_int(cp, s, where, -CONFIG_MAX_PRIORITY,
			    CONFIG_MAX_PRIORITY, &v) == 0)
				qc->prio_max = (int)v;
		} else if (strcmp(key, "timeout") == 0) {
			config_want_duration(cp, s, where, &qc->timeout_ms);
		} else if (strcmp(key, "batch") == 0) {
			if (config_want_int(cp, s, where, 1, CONFIG_MAX_BATCH, &v) == 0)
				qc->batch = (uint32_t)v;
		} else if (strcmp(key, "concurrency") == 0) {
			if (config_want_int(cp, s, where, 1, CONFIG_MAX_CONCURRENCY, &v) == 0)
				qc->concurrency = (uint32_t)v;
		} else if (strcmp(key, "batch_size") == 0) {
			if (config_want_int(cp, s, where, 1, CONFIG_MAX_BATCH_SIZE,
			    &v) == 0)
				qc->batch_size = (uint32_t)v;
		} else if (strcmp(key, "batch_wait_ms") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_BATCH_WAIT_MS,
			    &v) == 0)
				qc->batch_wait_ms = (uint32_t)v;
		} else if (strcmp(key, "http_max_response") == 0) {
			if (config_want_int(cp, s, where, 1, CONFIG_MAX_MAX_PAYLOAD, &v) == 0)
				qc->http_max_response = (uint32_t)v;
		} else if (strcmp(key, "http_max_redirects") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_HTTP_REDIRECTS,
			    &v) == 0)
				qc->http_max_redirects = (uint32_t)v;
		} else if (strcmp(key, "http_timeout") == 0) {
			config_want_positive_duration(cp, s, where, &qc->http_timeout_ms);
		} else if (strcmp(key, "http_connect_timeout") == 0) {
			config_want_positive_duration(cp, s, where,
			    &qc->http_connect_timeout_ms);
		} else if (strcmp(key, "http_output") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (strcmp(str, "body") == 0)
				qc->http_output = CONFIG_HTTP_OUTPUT_BODY;
			else if (strcmp(str, "response") == 0)
				qc->http_output = CONFIG_HTTP_OUTPUT_RESPONSE;
			else
				config_cause_add(cp, s, "'http_output'%s must be \"body\" "
				    "or \"response\", not \"%.63s\"", where, str);
		} else if (strcmp(key, "http_max_host_connections") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_CONCURRENCY, &v) == 0)
				qc->http_max_host_connections = (uint32_t)v;
		} else if (strcmp(key, "paused") == 0) {
			config_want_bool(cp, s, where, &qc->paused);
		} else if (strcmp(key, "retries") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_RETRIES, &v) == 0)
				qc->retries = (uint32_t)v;
		} else if (strcmp(key, "backoff_base") == 0) {
			config_want_duration(cp, s, where, &qc->backoff_base_ms);
		} else if (strcmp(key, "backoff_max") == 0) {
			config_want_duration(cp, s, where, &qc->backoff_max_ms);
		} else if (strcmp(key, "backoff_jitter") == 0) {
			config_want_float(cp, s, where, 0, 1, &qc->backoff_jitter);
		} else if (strcmp(key, "grace") == 0) {
			config_want_duration(cp, s, where, &qc->grace_ms);
		} else if (strcmp(key, "max_running") == 0) {
			if (config_want_int(cp, s, where, 0, INT32_MAX, &v) == 0)
				qc->max_running = (uint32_t)v;
		} else if (strcmp(key, "rate") == 0) {
			config_want_float(cp, s, where, 0, CONFIG_MAX_RATE, &qc->rate);
		} else if (strcmp(key, "burst") == 0) {
			if (config_want_int(cp, s, where, 1, INT32_MAX, &v) == 0)
				qc->burst = (uint32_t)v;
		} else if (strcmp(key, "max_running_per_key") == 0) {
			if (config_want_int(cp, s, where, 0, INT32_MAX, &v) == 0)
				qc->max_running_per_key = (uint32_t)v;
		} else if (strcmp(key, "rate_per_key") == 0) {
			config_want_float(cp, s, where, 0, CONFIG_MAX_RATE,
			    &qc->rate_per_key);
		} else if (strcmp(key, "burst_per_key") == 0) {
			if (config_want_int(cp, s, where, 1, INT32_MAX, &v) == 0)
				qc->burst_per_key = (uint32_t)v;
		} else if (strcmp(key, "max_jobs_per_worker") == 0) {
			if (config_want_int(cp, s, where, 0, INT32_MAX, &v) == 0)
				qc->max_jobs_per_worker = (uint32_t)v;
		} else if (strcmp(key, "max_worker_rss") == 0) {
			if (config_want_off_or_min(cp, s, where, CONFIG_MIN_WORKER_RSS,
			    INT64_MAX, &v) == 0)
				qc->max_worker_rss = (uint64_t)v;
		} else if (strcmp(key, "poison_after") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_POISON_AFTER,
			    &v) == 0)
				qc->poison_after = (uint32_t)v;
		} else if (strcmp(key, "user") == 0) {
			config_want_account(cp, s, where, 0, &qc->user);
		} else if (strcmp(key, "group") == 0) {
			config_want_account(cp, s, where, 1, &qc->group);
		} else if (strcmp(key, "rlimit_as") == 0) {
			if (config_want_off_or_min(cp, s, where, CONFIG_MIN_RLIMIT_AS,
			    INT64_MAX, &v) == 0)
				qc->rlimit_as = (uint64_t)v;
		} else if (strcmp(key, "rlimit_cpu") == 0) {
			if (config_want_int(cp, s, where, 0, INT64_MAX, &v) == 0)
				qc->rlimit_cpu = (uint64_t)v;
		} else if (strcmp(key, "rlimit_nofile") == 0) {
			if (config_want_off_or_min(cp, s, where, CONFIG_MIN_RLIMIT_NOFILE,
			    INT32_MAX, &v) == 0)
				qc->rlimit_nofile = (uint64_t)v;
		} else if (strcmp(key, "source") == 0) {
			config_parse_source(cp, qc, s, where);
		} else if (strcmp(key, "then") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (!proto_valid_name(str, strlen(str))) {
				config_cause_add(cp, s, "'then'%s: '%.63s' is not a queue "
				    "name: use 1 to %d of A-Z a-z 0-9 _ . -", where, str,
				    PROTO_MAX_NAME);
				continue;
			}
			snprintf(qc->then, sizeof qc->then, "%s", str);
		} else
			config_cause_add(cp, s, "unknown setting '%s'%s", key, where);
	}

	/* Required settings; a present but bad one has had its message already. */
	if (sname == NULL)
		config_cause_add(cp, g, "queue #%d has no 'name'", idx);
	shandler = config_setting_get_member(g, "handler");
	if (shandler == NULL)
		config_cause_add(cp, g, "'handler' is missing%s", where);

	config_queue_validate(cp, qc, g, where);
	config_queue_defaults(qc);

	/* Only a handler that carries several jobs at once can use more than one slot. */
	if (qc->concurrency > 1 && qc->handler != NULL &&
	    !config_handler_concurrent(qc->handler))
		config_cause_add(cp, config_setting_get_member(g, "concurrency"),
		    "'concurrency' is %u%s, but handler '%.200s' runs one job at a time "
		    "(handlers that carry several: %s; use workers for more)",
		    qc->concurrency, where,
		    qc->handler, CONFIG_CONCURRENT_HANDLERS);

	if (qc->prio_min > qc->prio_max) {
		smin = config_setting_get_member(g, "priority_min");
		smax = config_setting_get_member(g, "priority_max");
		config_cause_add(cp, smin != NULL ? smin : (smax != NULL ? smax : g),
		    "'priority_min' (%d) is greater than 'priority_max' (%d)%s",
		    qc->prio_min, qc->prio_max, where);
	}

	/*
	 * A daemon that gave up switching users at start cannot run this queue's workers
	 * as another user or group: say so at the setting, not when the queue fails.
	 */
	if ((cp->flags & CONFIG_LOAD_NO_SWITCH) != 0 &&
	    (qc->user != NULL || qc->group != NULL)) {
		key = qc->user != NULL ? "user" : "group";
		config_cause_add(cp, config_setting_get_member(g, key), "'%s'%s needs a "
		    "restart of jobpoold: it gave up switching users when it started, "
		    "since no queue had a user or group of its own then", key, where);
	}

	/* Names are unique: compare with the queues before this one. */
	if (qc->name != NULL) {
		for (i = 0; i < cf->nqueues - 1; i++) {
			if (cf->queues[i].name != NULL &&
			    strcmp(cf->queues[i].name, qc->name) == 0) {
				config_cause_add(cp, sname, "duplicate queue name '%s' "
				    "(first defined at line %d)", qc->name,
				    cf->queues[i].line);
				break;
			}
		}
	}
}

/* Parse the queues list: a list of groups, at least one. */
static void
config_parse_queues(struct config_parse *cp, struct config *cf, const config_setting_t *s)
{
	const config_setting_t	*g;
	int			 i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		config_cause_add(cp, s, "'queues' must be a list of groups: "
		    "queues = ( { name = ...; handler = ...; }, ... );");
		return;
	}
	n = config_setting_length(s);
	if (n == 0) {
		config_cause_add(cp, s, "'queues' is empty: at least one queue is needed");
		return;
	}
	if ((cf->queues = calloc((size_t)n, sizeof *cf->queues)) == NULL) {
		cp->oom = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			config_cause_add(cp, g, "queue #%d must be a group: "
			    "{ name = ...; handler = ...; }", i + 1);
			continue;
		}
		config_parse_queue(cp, cf, g, i + 1);
	}
}

/* An address to listen on (config.h); metrics.c parses the kept text with it again. */
int
config_parse_listen(const char *str, struct sockaddr_storage *ss, socklen_t *sslen,
    char *why, size_t whylen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN + 1];
	const char		*colon, *end, *port;
	unsigned long		 n;
	size_t			 len;
	char			*ep;
	int			 bracket = str[0] == '[';

	memset(ss, 0, sizeof *ss);
	if (bracket) {
		if ((end = strchr(str, ']')) == NULL || end[1] != ':') {
			snprintf(why, whylen, "an IPv6 address is written \"[ADDRESS]:PORT\"");
			return (-1);
		}
		len = (size_t)(end - str - 1);
		str++;
		port = end + 2;
	} else {
		if ((colon = strrchr(str, ':')) == NULL) {
			snprintf(why, whylen, "no port: write \"ADDRESS:PORT\", such as "
			    "\"127.0.0.1:9466\"");
			return (-1);
		}
		if (memchr(str, ':', (size_t)(colon - str)) != NULL) {
			snprintf(why, whylen, "an IPv6 address is written \"[ADDRESS]:PORT\"");
			return (-1);
		}
		len = (size_t)(colon - str);
		port = colon + 1;
	}
	if (len == 0 || len >= sizeof host) {
		snprintf(why, whylen, "no address before the port: write \"ADDRESS:PORT\", "
		    "such as \"127.0.0.1:9466\" (\"0.0.0.0:9466\" for every interface)");
		return (-1);
	}
	memcpy(host, str, len);
	host[len] = '\0';
	errno = 0;
	n = strtoul(port, &ep, 10);
	if (port[0] < '0' || port[0] > '9' || *ep != '\0' || errno != 0 || n == 0 ||
	    n > 65535) {
		snprintf(why, whylen, "the port must be a number from 1 to 65535, not "
		    "'%.16s'", port);
		return (-1);
	}
	if (!bracket && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)n);
		*sslen = sizeof *sin;
		return (0);
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 && bracket) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)n);
		*sslen = sizeof *sin6;
		return (0);
	}
	/* Names would need a resolver at every reload, and could change under us. */
	if (bracket)
		snprintf(why, whylen, "'%.64s' between brackets is not a numeric IPv6 "
		    "address", host);
	else
		snprintf(why, whylen, "'%.64s' is not a numeric IPv4 address, or an IPv6 "
		    "one in brackets (names are not looked up: write 127.0.0.1 or [::1] "
		    "for this host)", host);
	return (-1);
}

/* metrics_listen: "" is off; anything else must be an address to listen on. */
static void
config_parse_metrics_listen(struct config_parse *cp, struct config *cf,
    const config_setting_t *s)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	const char		*str;
	char			 why[256];

	if (config_want_string(cp, s, "", &str) != 0 || str[0] == '\0')
		return;
	if (config_parse_listen(str, &ss, &sslen, why, sizeof why) != 0) {
		config_cause_add(cp, s, "'metrics_listen' = \"%.80s\": %s", str, why);
		return;
	}
	cf->metrics_listen = config_strdup(cp, str);
}

/* Parse the top level settings. */
static void
config_parse_root(struct config_parse *cp, struct config *cf, const config_setting_t *root)
{
	const config_setting_t	*s;
	const char		*key, *str;
	long long		 v;
	int			 i, n, level;

	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(root, i);
		key = config_setting_name(s);
		if (strcmp(key, "socket") == 0) {
			if (config_want_string(cp, s, "", &str) == 0)
				cf->socket_path = config_strdup(cp, str);
		} else if (strcmp(key, "socket_mode") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_STRING) {
				config_cause_add(cp, s, "'socket_mode' must be a string of "
				    "octal digits no greater than \"0777\", such as \"0660\"");
			} else if (config_parse_mode(config_setting_get_string(s),
			    &cf->socket_mode) != 0) {
				config_cause_add(cp, s, "'socket_mode' must be octal digits no "
				    "greater than \"0777\", such as \"0660\", not \"%.40s\"",
				    config_setting_get_string(s));
			}
		} else if (strcmp(key, "max_payload") == 0) {
			if (config_want_int(cp, s, "", 1, CONFIG_MAX_MAX_PAYLOAD, &v) == 0)
				cf->max_payload = (uint32_t)v;
		} else if (strcmp(key, "max_output") == 0) {
			if (config_want_int(cp, s, "", CONFIG_MIN_MAX_OUTPUT, INT64_MAX,
			    &v) == 0)
				cf->max_output = (uint64_t)v;
		} else if (strcmp(key, "max_connections") == 0) {
			if (config_want_int(cp, s, "", 1, CONFIG_MAX_MAX_CONNECTIONS,
			    &v) == 0)
				cf->max_connections = (uint32_t)v;
		} else if (strcmp(key, "max_connections_per_uid") == 0) {
			if (config_want_int(cp, s, "", 1, CONFIG_MAX_MAX_CONNECTIONS,
			    &v) == 0)
				cf->max_connections_per_uid = (uint32_t)v;
		} else if (strcmp(key, "reserved_connections") == 0) {
			if (config_want_int(cp, s, "", 0, CONFIG_MAX_RESERVED_CONNECTIONS,
			    &v) == 0)
				cf->reserved_connections = (uint32_t)v;
		} else if (strcmp(key, "idle_timeout") == 0) {
			config_want_duration(cp, s, "", &cf->idle_timeout_ms);
		} else if (strcmp(key, "request_timeout") == 0) {
			config_want_duration(cp, s, "", &cf->request_timeout_ms);
		} else if (strcmp(key, "keep_results") == 0) {
			if (config_want_int(cp, s, "", 0, INT32_MAX, &v) == 0)
				cf->keep_results = (uint32_t)v;
		} else if (strcmp(key, "keep_results_bytes") == 0) {
			if (config_want_int(cp, s, "", 0, INT64_MAX, &v) == 0)
				cf->keep_results_bytes = (uint64_t)v;
		} else if (strcmp(key, "shutdown_timeout") == 0) {
			config_want_duration(cp, s, "", &cf->shutdown_timeout_ms);
		} else if (strcmp(key, "kill_timeout") == 0) {
			config_want_duration(cp, s, "", &cf->kill_timeout_ms);
		} else if (strcmp(key, "output_timeout") == 0) {
			config_want_duration(cp, s, "", &cf->output_timeout_ms);
		} else if (strcmp(key, "log_level") == 0) {
			if (config_want_string(cp, s, "", &str) != 0)
				continue;
			if ((level = config_parse_level(str)) == -1) {
				config_cause_add(cp, s, "'log_level' must be one of error, "
				    "warning, notice, info, debug; not '%.64s'", str);
				continue;
			}
			cf->log_level = level;
		} else if (strcmp(key, "dead_max") == 0) {
			if (config_want_int(cp, s, "", 0, INT32_MAX, &v) == 0)
				cf->dead_max = (uint32_t)v;
		} else if (strcmp(key, "events_ring") == 0) {
			if (config_want_int(cp, s, "", CONFIG_MIN_EVENTS_RING,
			    CONFIG_MAX_EVENTS_RING, &v) == 0)
				cf->events_ring = (uint32_t)v;
		} else if (strcmp(key, "idempotency_window") == 0) {
			config_want_duration(cp, s, "", &cf->idempotency_window_ms);
		} else if (strcmp(key, "idempotency_max") == 0) {
			if (config_want_int(cp, s, "", 0, CONFIG_MAX_IDEMPOTENCY_MAX,
			    &v) == 0)
				cf->idempotency_max = (uint32_t)v;
		} else if (strcmp(key, "journal_dir") == 0) {
			if (config_want_string(cp, s, "", &str) != 0)
				continue;
			if (str[0] == '\0')
				continue;	/* "": no journal */
			if (str[0] != '/') {
				config_cause_add(cp, s, "'journal_dir' must be an absolute "
				    "path, not '%.200s'", str);
				continue;
			}
			if (strlen(str) > CONFIG_MAX_JOURNAL_DIR) {
				config_cause_add(cp, s, "'journal_dir' is too long: %zu "
				    "bytes, at most %d", strlen(str), CONFIG_MAX_JOURNAL_DIR);
				continue;
			}
			cf->journal_dir = config_strdup(cp, str);
		} else if (strcmp(key, "journal_fsync") == 0) {
			if (config_want_string(cp, s, "", &str) != 0)
				continue;
			if (strcmp(str, "never") == 0)
				cf->journal_fsync = CONFIG_FSYNC_NEVER;
			else if (strcmp(str, "interval") == 0)
				cf->journal_fsync = CONFIG_FSYNC_INTERVAL;
			else if (strcmp(str, "always") == 0)
				cf->journal_fsync = CONFIG_FSYNC_ALWAYS;
			else
				config_cause_add(cp, s, "'journal_fsync' must be one of "
				    "never, interval, always; not '%.64s'", str);
		} else if (strcmp(key, "journal_fsync_interval") == 0) {
			if (config_want_duration(cp, s, "", &cf->journal_fsync_interval_ms) == 0 &&
			    cf->journal_fsync_interval_ms == 0)
				config_cause_add(cp, s, "'journal_fsync_interval' must be more "
				    "than 0 seconds (for an fsync before every reply, set "
				    "journal_fsync = \"always\")");
		} else if (strcmp(key, "journal_compact_size") == 0) {
			if (config_want_int(cp, s, "", CONFIG_MIN_COMPACT_SIZE, INT64_MAX,
			    &v) == 0)
				cf->journal_compact_size = (uint64_t)v;
		} else if (strcmp(key, "socket_owner") == 0) {
			config_want_account(cp, s, "", 0, &cf->socket_owner);
		} else if (strcmp(key, "socket_group") == 0) {
			config_want_account(cp, s, "", 1, &cf->socket_group);
		} else if (strcmp(key, "allow_users") == 0) {
			config_parse_allow(cp, s, 0, &cf->allow_users, &cf->nallow_users);
		} else if (strcmp(key, "allow_groups") == 0) {
			config_parse_allow(cp, s, 1, &cf->allow_groups, &cf->nallow_groups);
		} else if (strcmp(key, "admin_users") == 0) {
			config_parse_allow(cp, s, 0, &cf->admin_users, &cf->nadmin_users);
		} else if (strcmp(key, "admin_groups") == 0) {
			config_parse_allow(cp, s, 1, &cf->admin_groups, &cf->nadmin_groups);
		} else if (strcmp(key, "user") == 0) {
			config_want_account(cp, s, "", 0, &cf->user);
		} else if (strcmp(key, "group") == 0) {
			config_want_account(cp, s, "", 1, &cf->group);
		} else if (strcmp(key, "hooks") == 0) {
			/* After the queues (config_validate): hooks are queues too. */
		} else if (strcmp(key, "metrics_listen") == 0) {
			config_parse_metrics_listen(cp, cf, s);
		} else if (strcmp(key, "dashboard") == 0) {
			config_want_bool(cp, s, "", &cf->dashboard);
		} else if (strcmp(key, "dashboard_actions") == 0) {
			config_want_bool(cp, s, "", &cf->dashboard_actions);
		} else if (strcmp(key, "dashboard_token_file") == 0) {
			config_want_path(cp, s, &cf->dashboard_token_file);
		} else if (strcmp(key, "dashboard_dir") == 0) {
			config_want_path(cp, s, &cf->dashboard_dir);
		} else if (strcmp(key, "dashboard_javascript") == 0) {
			config_want_path(cp, s, &cf->dashboard_javascript);
		} else if (strcmp(key, "queues") == 0) {
			config_parse_queues(cp, cf, s);
		} else
			config_cause_add(cp, s, "unknown setting '%s'", key);
	}
}

/* The dashboard's: on, read-only, its token beside the socket, its files installed. */
static void
config_defaults_dashboard(struct config_parse *cp, struct config *cf)
{
	const char	*slash;

	if (cf->dashboard == CONFIG_UNSET_INT)
		cf->dashboard = 1;
	if (cf->dashboard_actions == CONFIG_UNSET_INT)
		cf->dashboard_actions = 0;
	if (cf->dashboard_dir == NULL)
		cf->dashboard_dir = config_strdup(cp, CONFIG_DEF_DASHBOARD_DIR);
	if (cf->dashboard_javascript == NULL)
		cf->dashboard_javascript = config_strdup(cp, CONFIG_DEF_JAVASCRIPT);
	if (cf->dashboard_token_file == NULL && cf->socket_path != NULL &&
	    (slash = strrchr(cf->socket_path, '/')) != NULL &&
	    asprintf(&cf->dashboard_token_file, "%.*s/dashboard.token",
	    (int)(slash - cf->socket_path), cf->socket_path) == -1) {
		cf->dashboard_token_file = NULL;
		cp->oom = 1;
	}
}

/* Fill the unset top level fields with their defaults. */
static void
config_defaults(struct config_parse *cp, struct config *cf,
    const config_setting_t *root)
{
	if (cf->socket_path == NULL) {
		if ((cf->socket_path = config_default_socket()) == NULL)
			cp->oom = 1;
	}
	if (cf->socket_mode == CONFIG_UNSET_MODE)
		cf->socket_mode = geteuid() == 0 ? 0660 : 0600;
	if (cf->max_payload == CONFIG_UNSET_U32)
		cf->max_payload = CONFIG_DEF_MAX_PAYLOAD;
	if (cf->max_output == CONFIG_UNSET_U64)
		cf->max_output = CONFIG_DEF_MAX_OUTPUT;
	if (cf->max_connections == CONFIG_UNSET_U32)
		cf->max_connections = CONFIG_DEF_MAX_CONNECTIONS;
	if (cf->max_connections_per_uid == CONFIG_UNSET_U32)
		cf->max_connections_per_uid = CONFIG_DEF_MAX_CONNECTIONS_PER_UID;
	if (cf->reserved_connections == CONFIG_UNSET_U32)
		cf->reserved_connections = CONFIG_DEF_RESERVED_CONNECTIONS;
	if (cf->idle_timeout_ms == CONFIG_UNSET_U32)
		cf->idle_timeout_ms = CONFIG_DEF_IDLE_TIMEOUT_MS;
	if (cf->request_timeout_ms == CONFIG_UNSET_U32)
		cf->request_timeout_ms = CONFIG_DEF_REQUEST_TIMEOUT_MS;
	if (cf->keep_results == CONFIG_UNSET_U32)
		cf->keep_results = CONFIG_DEF_KEEP_RESULTS;
	if (cf->idempotency_window_ms == CONFIG_UNSET_U32)
		cf->idempotency_window_ms = CONFIG_DEF_IDEMPOTENCY_WINDOW_MS;
	if (cf->idempotency_max == CONFIG_UNSET_U32)
		cf->idempotency_max = CONFIG_DEF_IDEMPOTENCY_MAX;
	if (cf->keep_results_bytes == CONFIG_UNSET_U64)
		cf->keep_results_bytes = CONFIG_DEF_KEEP_RESULTS_BYTES;
	if (cf->shutdown_timeout_ms == CONFIG_UNSET_U32)
		cf->shutdown_timeout_ms = CONFIG_DEF_SHUTDOWN_MS;
	if (cf->kill_timeout_ms == CONFIG_UNSET_U32)
		cf->kill_timeout_ms = CONFIG_DEF_KILL_MS;
	if (cf->output_timeout_ms == CONFIG_UNSET_U32)
		cf->output_timeout_ms = CONFIG_DEF_OUTPUT_MS;
	if (cf->log_level == CONFIG_UNSET_INT)
		cf->log_level = LOG_INFO;
	if (cf->dead_max == CONFIG_UNSET_U32)
		cf->dead_max = CONFIG_DEF_DEAD_MAX;
	if (cf->events_ring == CONFIG_UNSET_U32)
		cf->events_ring = CONFIG_DEF_EVENTS_RING;
	if (cf->journal_fsync == CONFIG_UNSET_INT)
		cf->journal_fsync = CONFIG_FSYNC_INTERVAL;
	if (cf->journal_fsync_interval_ms == CONFIG_UNSET_U32 ||
	    cf->journal_fsync_interval_ms == 0)
		cf->journal_fsync_interval_ms = CONFIG_DEF_FSYNC_INTERVAL_MS;
	if (cf->journal_compact_size == CONFIG_UNSET_U64)
		cf->journal_compact_size = CONFIG_DEF_COMPACT_SIZE;
	config_defaults_dashboard(cp, cf);
	/* Root hands the socket to the jobpool group where there is one. */
	if (cf->socket_group == NULL &&
	    config_setting_get_member(root, "socket_group") == NULL &&
	    geteuid() == 0 && getgrnam(CONFIG_DEF_SOCKET_GROUP) != NULL)
		cf->socket_group = config_strdup(cp, CONFIG_DEF_SOCKET_GROUP);
}

/*
 * A result is at most max_payload bytes (a worker's larger one fails its job), sent as
 * "RESULT <id> <status> <size>\n", the body and "\n". One larger than 4 x max_output
 * puts its connection past the limit beyond which server.c closes a client that reads
 * nothing for output_timeout: it reaches only a client that keeps reading. Not an
 * error (such a client gets it whole), but the operator should know.
 */
static void
config_validate_output(struct config_parse *cp, const struct config *cf,
    const config_setting_t *root)
{
	const config_setting_t	*s;
	uint64_t		 result = (uint64_t)cf->max_payload + 64;

	if (cf->max_output >= UINT64_MAX / 4 || result <= 4 * cf->max_output)
		return;
	if ((s = config_setting_get_member(root, "max_payload")) == NULL)
		s = config_setting_get_member(root, "max_output");
	config_warn_add(cp, s, "a result of max_payload (%u bytes) is more than 4 x "
	    "max_output (%llu bytes): a connection receiving one is closed if its "
	    "client pauses reading for output_timeout (%u ms); for results that "
	    "large, set max_output to at least %llu", cf->max_payload,
	    (unsigned long long)(4 * cf->max_output), cf->output_timeout_ms,
	    (unsigned long long)(result + 3) / 4);
}

/* A hook's defaults: its queue's settings when the hook does not say. */
#define CONFIG_DEF_HOOK_TIMEOUT_MS	30000U
#define CONFIG_DEF_HOOK_RETRIES		2U
#define CONFIG_DEF_HOOK_QUEUED		1000U
#define CONFIG_MAX_HOOKS		64

/*
 * Hook number idx (from 1): a queue of its own, "hook.N", appended to cf->queues, whose
 * jobs run its program with an event on stdin (events.c). Hooks are jobs: the queue's
 * workers, timeout, retries and backoff are the hook's.
 */
static void
config_parse_hook(struct config_parse *cp, struct config *cf, const config_setting_t *g,
    int idx)
{
	struct queue_config	*qc = &cf->queues[cf->nqueues];
	const config_setting_t	*s;
	const char		*key, *str, *run = NULL;
	char			 where[32], why[512], *handler;
	long long		 v;
	int			 i, n;

	config_queue_unset(qc, config_setting_source_line(g));
	snprintf(where, sizeof where, " in hook #%d", idx);
	snprintf(qc->hook_queue, sizeof qc->hook_queue, "*");
	qc->hook = (uint32_t)idx;
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(g, i);
		key = config_setting_name(s);
		if (strcmp(key, "on") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if ((qc->hook_types = events_type_mask(str)) == 0)
				config_cause_add(cp, s, "'on'%s: '%.63s' matches no event "
				    "type (job.queued, job.started, job.succeeded, job.failed, "
				    "job.retrying, job.timeout, job.cancelled, job.dead, "
				    "worker.*, queue.*, daemon.*)", where, str);
		} else if (strcmp(key, "queue") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (strlen(str) == 0 || strlen(str) >= sizeof qc->hook_queue)
				config_cause_add(cp, s, "'queue'%s must be a queue name or "
				    "a pattern of 1 to 63 characters", where);
			else
				snprintf(qc->hook_queue, sizeof qc->hook_queue, "%s", str);
		} else if (strcmp(key, "run") == 0) {
			if (config_want_string(cp, s, where, &str) != 0)
				continue;
			if (asprintf(&handler, "%s%s", CONFIG_HANDLER_EXEC, str) == -1) {
				cp->oom = 1;
				continue;
			}
			if (config_check_handler(handler, where, why, sizeof why) != 0) {
				config_cause_add(cp, s, "'run': %s", why);
				free(handler);
				continue;
			}
			qc->handler = handler;
			run = str;
		} else if (strcmp(key, "timeout") == 0) {
			config_want_duration(cp, s, where, &qc->timeout_ms);
		} else if (strcmp(key, "retries") == 0) {
			if (config_want_int(cp, s, where, 0, CONFIG_MAX_RETRIES, &v) == 0)
				qc->retries = (uint32_t)v;
		} else if (strcmp(key, "concurrency") == 0) {
			if (config_want_int(cp, s, where, 1, CONFIG_MAX_WORKERS, &v) == 0)
				qc->workers = (int)v;
		} else if (strcmp(key, "max_queued") == 0) {
			if (config_want_int(cp, s, where, 1, INT32_MAX, &v) == 0)
				qc->max_jobs = (uint32_t)v;
		} else
			config_cause_add(cp, s, "unknown setting '%s'%s (a hook takes on, "
			    "queue, run, timeout, retries, concurrency, max_queued)", key,
			    where);
	}
	if (config_setting_get_member(g, "on") == NULL)
		config_cause_add(cp, g, "hook #%d has no 'on' (the event types it runs "
		    "on, such as \"job.dead\")", idx);
	if (config_setting_get_member(g, "run") == NULL)
		config_cause_add(cp, g, "hook #%d has no 'run' (the program it runs)", idx);
	if (run == NULL || qc->hook_types == 0) {
		free(qc->handler);
		memset(qc, 0, sizeof *qc);
		return;
	}
	if (asprintf(&qc->name, "hook.%d", idx) == -1) {
		cp->oom = 1;
		free(qc->handler);
		memset(qc, 0, sizeof *qc);
		return;
	}
	if (qc->workers == CONFIG_UNSET_INT)
		qc->workers = 1;
	if (qc->timeout_ms == CONFIG_UNSET_U32)
		qc->timeout_ms = CONFIG_DEF_HOOK_TIMEOUT_MS;
	if (qc->retries == CONFIG_UNSET_U32)
		qc->retries = CONFIG_DEF_HOOK_RETRIES;
	if (qc->max_jobs == CONFIG_UNSET_U32)
		qc->max_jobs = CONFIG_DEF_HOOK_QUEUED;
	config_queue_defaults(qc);
	for (i = 0; i < cf->nqueues; i++) {
		if (strcmp(cf->queues[i].name, qc->name) == 0) {
			config_cause_add(cp, g, "hook #%d runs as queue '%s', which line %d "
			    "defines too: rename that queue", idx, qc->name,
			    cf->queues[i].line);
			free(qc->name);
			free(qc->handler);
			memset(qc, 0, sizeof *qc);
			return;
		}
	}
	cf->nqueues++;
}

/* hooks = ( { on = ...; run = ...; }, ... ): after the queues, as queues of their own. */
static void
config_parse_hooks(struct config_parse *cp, struct config *cf, const config_setting_t *s)
{
	struct queue_config	*nq;
	const config_setting_t	*g;
	int			 i, n;

	if (config_setting_type(s) != CONFIG_TYPE_LIST) {
		config_cause_add(cp, s, "'hooks' must be a list of groups: hooks = "
		    "( { on = \"job.dead\"; run = \"/path/to/program\"; }, ... );");
		return;
	}
	if ((n = config_setting_length(s)) > CONFIG_MAX_HOOKS) {
		config_cause_add(cp, s, "'hooks' has %d hooks; at most %d", n,
		    CONFIG_MAX_HOOKS);
		return;
	}
	if (n == 0 || cp->nerrors != 0)
		return;		/* queues that did not parse: say nothing more */
	nq = reallocarray(cf->queues, (size_t)(cf->nqueues + n), sizeof *nq);
	if (nq == NULL) {
		cp->oom = 1;
		return;
	}
	cf->queues = nq;
	for (i = 0; i < n; i++) {
		g = config_setting_get_elem(s, i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			config_cause_add(cp, g, "hook #%d must be a group: "
			    "{ on = ...; run = ...; }", i + 1);
			continue;
		}
		config_parse_hook(cp, cf, g, i + 1);
	}
}

/* The queue named name among cf's, or NULL (names that did not parse are NULL). */
static const struct queue_config *
config_then_queue(const struct config *cf, const char *name)
{
	int	i;

	for (i = 0; i < cf->nqueues; i++) {
		if (cf->queues[i].name != NULL && strcmp(cf->queues[i].name, name) == 0)
			return (&cf->queues[i]);
	}
	return (NULL);
}

/*
 * The 'then' setting of user queue i, for its file and line: queues are parsed in the
 * file's order (one that is not a group is skipped: then the names tell).
 */
static const config_setting_t *
config_then_setting(const config_setting_t *root, int i)
{
	const config_setting_t	*s, *g;
	const char		*name;

	if ((s = config_setting_get_member(root, "queues")) == NULL)
		return (NULL);
	while ((g = config_setting_get_elem(s, (unsigned int)i)) != NULL) {
		if (config_setting_lookup_string(g, "then", &name) == CONFIG_TRUE)
			return (config_setting_get_member(g, "then"));
		i++;
	}
	return (NULL);
}

/*
 * Chains (issue 15): each 'then' names a user's queue that exists, and following them
 * never comes back to a queue (a queue naming itself included): a chain ends. Each
 * queue has one 'then' at most, so from any queue the walk is a path or runs into a
 * cycle; a cycle is told once, at the 'then' of its queue defined first, naming every
 * queue on it. Hooks have no 'then' (config_parse_hook refuses it).
 */
static void
config_validate_then(struct config_parse *cp, struct config *cf,
    const config_setting_t *root)
{
	const struct queue_config	*qc, *next;
	char				 path[512];
	size_t				 len;
	int				 i, k, steps, first, bad = 0;

	for (i = 0; i < cf->nqueues; i++) {
		qc = &cf->queues[i];
		if (qc->then[0] == '\0' || qc->name == NULL)
			continue;
		if ((next = config_then_queue(cf, qc->then)) == NULL) {
			config_cause_add(cp, config_then_setting(root, i), "'then' in queue "
			    "'%s': no queue '%s'", qc->name, qc->then);
			bad = 1;
		} else if (next->hook != 0) {
			config_cause_add(cp, config_then_setting(root, i), "'then' in queue "
			    "'%s': '%s' is hook #%u's queue: only its events go there",
			    qc->name, qc->then, next->hook);
			bad = 1;
		}
	}
	if (bad)
		return;
	for (i = 0; i < cf->nqueues; i++) {
		qc = &cf->queues[i];
		if (qc->then[0] == '\0' || qc->name == NULL)
			continue;
		/* At most nqueues steps: a path has ended by then, a cycle has not. */
		next = config_then_queue(cf, qc->then);
		for (steps = 0; next != qc && steps < cf->nqueues; steps++) {
			if (next == NULL || next->then[0] == '\0')
				break;
			next = config_then_queue(cf, next->then);
		}
		if (next != qc)
			continue;
		/* qc is on a cycle: told at the queue of the cycle defined first. */
		first = 1;
		for (next = config_then_queue(cf, qc->then); next != qc;
		    next = config_then_queue(cf, next->then)) {
			if (next < qc)
				first = 0;
		}
		if (!first)
			continue;
		len = (size_t)snprintf(path, sizeof path, "%s", qc->name);
		next = qc;
		for (k = 0; k < cf->nqueues && len < sizeof path; k++) {
			next = config_then_queue(cf, next->then);
			len += (size_t)snprintf(path + len, sizeof path - len, " -> %s",
			    next->name);
			if (next == qc)
				break;
		}
		config_cause_add(cp, config_then_setting(root, i), "'then' in queue '%s' "
		    "makes a cycle: %s (a chain must end)", qc->name, path);
	}
}

/* Check what only the whole config can tell: the socket path and that queues exist. */
static void
config_validate(struct config_parse *cp, struct config *cf, const config_setting_t *root)
{
	const config_setting_t	*s;
	struct sockaddr_un	 sun;
	const char		*what;

	/* A socket setting of the wrong type has had its message; the default is used. */
	s = config_setting_get_member(root, "socket");
	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_STRING)
		s = NULL;
	what = s != NULL ? "'socket'" : "the default socket path";
	if (cf->socket_path != NULL) {
		if (cf->socket_path[0] != '/') {
			config_cause_add(cp, s, "%s must be an absolute path, not '%.200s'",
			    what, cf->socket_path);
		} else if (strlen(cf->socket_path) >= sizeof sun.sun_path) {
			config_cause_add(cp, s, "%s is too long: %zu bytes, at most %zu",
			    what, strlen(cf->socket_path), sizeof sun.sun_path - 1);
		}
	}
	if (config_setting_get_member(root, "queues") == NULL)
		config_cause_add(cp, NULL, "no 'queues': at least one queue is needed");
	else if ((s = config_setting_get_member(root, "hooks")) != NULL)
		config_parse_hooks(cp, cf, s);
	config_validate_then(cp, cf, root);
	config_validate_output(cp, cf, root);
}

/* A config with every field unset. */
static struct config *
config_new(const char *path)
{
	struct config	*cf;

	if ((cf = calloc(1, sizeof *cf)) == NULL)
		return (NULL);
	if ((cf->path = strdup(path)) == NULL) {
		free(cf);
		return (NULL);
	}
	cf->socket_mode = CONFIG_UNSET_MODE;
	cf->max_payload = CONFIG_UNSET_U32;
	cf->max_output = CONFIG_UNSET_U64;
	cf->max_connections = CONFIG_UNSET_U32;
	cf->max_connections_per_uid = CONFIG_UNSET_U32;
	cf->reserved_connections = CONFIG_UNSET_U32;
	cf->idle_timeout_ms = CONFIG_UNSET_U32;
	cf->request_timeout_ms = CONFIG_UNSET_U32;
	cf->keep_results = CONFIG_UNSET_U32;
	cf->idempotency_window_ms = CONFIG_UNSET_U32;
	cf->idempotency_max = CONFIG_UNSET_U32;
	cf->keep_results_bytes = CONFIG_UNSET_U64;
	cf->shutdown_timeout_ms = CONFIG_UNSET_U32;
	cf->kill_timeout_ms = CONFIG_UNSET_U32;
	cf->output_timeout_ms = CONFIG_UNSET_U32;
	cf->log_level = CONFIG_UNSET_INT;
	cf->dead_max = CONFIG_UNSET_U32;
	cf->events_ring = CONFIG_UNSET_U32;
	cf->journal_fsync = CONFIG_UNSET_INT;
	cf->journal_fsync_interval_ms = CONFIG_UNSET_U32;
	cf->journal_compact_size = CONFIG_UNSET_U64;
	cf->dashboard = CONFIG_UNSET_INT;
	cf->dashboard_actions = CONFIG_UNSET_INT;
	return (cf);
}

/* Load and check a config file, or the embedded defaults if path is NULL. */
struct config *
config_load(const char *path, char **cause)
{
	return (config_load_flags(path, 0, cause));
}

/* config_load, with CONFIG_LOAD_* flags for what the running daemon can apply. */
struct config *
config_load_flags(const char *path, int flags, char **cause)
{
	struct config_parse	 cp;
	struct config		*cf = NULL;
	config_t		 lc;
	struct stat		 sb;
	FILE			*fp;
	const char		*file;
	int			 ok;

	*cause = NULL;
	memset(&cp, 0, sizeof cp);
	cp.flags = flags;
	cp.path = path != NULL ? path : CONFIG_EMBEDDED_NAME;
	config_init(&lc);
	config_set_options(&lc, config_get_options(&lc) | CONFIG_OPTION_AUTOCONVERT);

	if (path != NULL) {
		/* libconfig says only "file I/O error"; find out what went wrong. */
		if ((fp = fopen(path, "r")) == NULL) {
			config_cause_append(&cp, path, 0, strerror(errno));
			goto out;
		}
		if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
			fclose(fp);
			config_cause_append(&cp, path, 0, strerror(EISDIR));
			goto out;
		}
		fclose(fp);
		ok = config_read_file(&lc, path);
	} else
		ok = config_read_string(&lc, config_embedded());
	if (!ok) {
		file = config_error_file(&lc) != NULL ? config_error_file(&lc) : cp.path;
		config_cause_append(&cp, file, config_error_line(&lc),
		    config_error_text(&lc) != NULL ? config_error_text(&lc) : "read error");
		goto out;
	}

	if ((cf = config_new(cp.path)) == NULL) {
		cp.oom = 1;
		goto out;
	}
	config_parse_root(&cp, cf, config_root_setting(&lc));
	config_defaults(&cp, cf, config_root_setting(&lc));
	config_validate(&cp, cf, config_root_setting(&lc));

out:
	config_destroy(&lc);
	if (cp.oom) {
		free(cp.cause);
		cp.cause = NULL;
		cp.len = 0;
		config_cause_append(&cp, cp.path, 0, "out of memory");
	}
	/* No config is made without an error recorded (cf NULL says so too). */
	if (cp.nerrors != 0 || cp.oom || cf == NULL) {
		config_free(cf);
		free(cp.warnings);
		*cause = cp.cause;
		return (NULL);
	}
	cf->warnings = cp.warnings;
	return (cf);
}

/* The embedded default config text. */
const char *
config_embedded(void)
{
	return (config_embedded_text);
}

/* The socket path when the config names none; NULL if out of memory. */
char *
config_default_socket(void)
{
	const char	*dir;
	char		*path;
	int		 n;

	if (geteuid() == 0)
		return (strdup("/run/jobpool/jobpool.sock"));
	dir = getenv("XDG_RUNTIME_DIR");
	if (dir != NULL && *dir != '\0')
		n = snprintf(NULL, 0, "%s/jobpool/jobpool.sock", dir);
	else
		n = snprintf(NULL, 0, "/tmp/jobpool-%lu/jobpool.sock",
		    (unsigned long)geteuid());
	if (n < 0 || (path = malloc((size_t)n + 1)) == NULL)
		return (NULL);
	if (dir != NULL && *dir != '\0')
		snprintf(path, (size_t)n + 1, "%s/jobpool/jobpool.sock", dir);
	else
		snprintf(path, (size_t)n + 1, "/tmp/jobpool-%lu/jobpool.sock",
		    (unsigned long)geteuid());
	return (path);
}

/* Find a queue by name. */
const struct queue_config *
config_find_queue(const struct config *cf, const char *name)
{
	int	i;

	for (i = 0; i < cf->nqueues; i++) {
		if (strcmp(cf->queues[i].name, name) == 0)
			return (&cf->queues[i]);
	}
	return (NULL);
}

/* Free a config and everything it owns. */
void
config_free(struct config *cf)
{
	int	i;

	if (cf == NULL)
		return;
	for (i = 0; i < cf->nqueues; i++) {
		free(cf->queues[i].name);
		free(cf->queues[i].handler);
		free(cf->queues[i].user);
		free(cf->queues[i].group);
	}
	free(cf->queues);
	for (i = 0; i < cf->nallow_users; i++)
		free(cf->allow_users[i]);
	free(cf->allow_users);
	for (i = 0; i < cf->nallow_groups; i++)
		free(cf->allow_groups[i]);
	free(cf->allow_groups);
	for (i = 0; i < cf->nadmin_users; i++)
		free(cf->admin_users[i]);
	free(cf->admin_users);
	for (i = 0; i < cf->nadmin_groups; i++)
		free(cf->admin_groups[i]);
	free(cf->admin_groups);
	free(cf->socket_owner);
	free(cf->socket_group);
	free(cf->user);
	free(cf->group);
	free(cf->socket_path);
	free(cf->journal_dir);
	free(cf->metrics_listen);
	free(cf->dashboard_token_file);
	free(cf->dashboard_dir);
	free(cf->dashboard_javascript);
	free(cf->warnings);
	free(cf->path);
	free(cf);
}
