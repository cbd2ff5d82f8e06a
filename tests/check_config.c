/*
 * check_config.c: unit tests for daemon/config.c: the embedded defaults and the shipped
 * conf/jobpool.conf load, every default, and every error with its exact file:line.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <check.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"

/* The uid a test drops to when run as root, to exercise the non-root rules. */
#define CHECK_NOBODY	65534

/* The end of the message for an unknown handler, after the built-ins. */
#define HANDLERS_TAIL \
	", plugin:/path/to/handler.so [ARG], exec:/path/to/program [ARGS]"

/* One queue that is enough for a config to load. */
#define Q_OK	"queues = ( { name = \"q\"; handler = \"echo\"; } );\n"

/* Write text to a new temporary file; the caller unlinks and frees the path. */
static char *
write_tmp(const char *text)
{
	const char	*dir = getenv("TMPDIR");
	char		*path;
	FILE		*fp;
	int		 fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	path = malloc(strlen(dir) + sizeof "/check_config.XXXXXX");
	ck_assert_ptr_nonnull(path);
	strcpy(path, dir);
	strcat(path, "/check_config.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	fp = fdopen(fd, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
	return (path);
}

/* Replace each '@' in pattern with path. */
static char *
subst(const char *pattern, const char *path)
{
	size_t	 n = 0, plen = strlen(path);
	char	*out, *o;
	const char *p;

	for (p = pattern; *p != '\0'; p++)
		n += *p == '@' ? plen : 1;
	out = malloc(n + 1);
	ck_assert_ptr_nonnull(out);
	for (p = pattern, o = out; *p != '\0'; p++) {
		if (*p == '@') {
			memcpy(o, path, plen);
			o += plen;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return (out);
}

/* Load text from a file; it must load. */
static struct config *
load_ok(const char *text)
{
	struct config	*cf;
	char		*path, *cause = NULL;

	path = write_tmp(text);
	cf = config_load(path, &cause);
	if (cf == NULL)
		ck_abort_msg("config did not load: %s", cause);
	ck_assert_ptr_null(cause);
	ck_assert_str_eq(cf->path, path);
	unlink(path);
	free(path);
	return (cf);
}

/* Load text from a file; it must fail with exactly want ('@' stands for the file). */
static void
load_fails(const char *text, const char *want)
{
	struct config	*cf;
	char		*path, *cause = NULL, *expect;

	path = write_tmp(text);
	cf = config_load(path, &cause);
	ck_assert_ptr_null(cf);
	ck_assert_ptr_nonnull(cause);
	expect = subst(want, path);
	ck_assert_str_eq(cause, expect);
	free(expect);
	free(cause);
	unlink(path);
	free(path);
}

/* Online CPUs as config.c resolves workers = 0. */
static int
nproc(void)
{
	long	n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > 1024)
		n = 1024;
	return ((int)n);
}

/* Check a queue has all the per-queue defaults but name, handler and workers. */
static void
check_queue_defaults(const struct queue_config *qc)
{
	ck_assert_uint_eq(qc->max_jobs, 100000);
	ck_assert_uint_eq(qc->max_bytes, 67108864);
	ck_assert_int_eq(qc->prio_min, -10);
	ck_assert_int_eq(qc->prio_max, 10);
	ck_assert_uint_eq(qc->batch, 64);
	ck_assert_uint_eq(qc->concurrency, 1);
	ck_assert_uint_eq(qc->retries, 3);
	ck_assert_uint_eq(qc->backoff_base_ms, 1000);
	ck_assert_uint_eq(qc->backoff_max_ms, 60000);
	ck_assert_double_eq(qc->backoff_jitter, 0.2);
	ck_assert_uint_eq(qc->grace_ms, 5000);
	ck_assert_uint_eq(qc->max_running, 0);
	ck_assert_double_eq(qc->rate, 0);
	ck_assert_uint_eq(qc->burst, 1);
	ck_assert_uint_eq(qc->max_jobs_per_worker, 0);
	ck_assert_uint_eq(qc->max_worker_rss, 0);
	ck_assert_uint_eq(qc->poison_after, 3);
	ck_assert_ptr_null(qc->user);
	ck_assert_ptr_null(qc->group);
	ck_assert_uint_eq(qc->rlimit_as, 0);
	ck_assert_uint_eq(qc->rlimit_cpu, 0);
	ck_assert_uint_eq(qc->rlimit_nofile, 0);
}

/* Check the top level defaults of issue 3 and 4, which no shipped config sets. */
static void
check_access_defaults(const struct config *cf)
{
	ck_assert_uint_eq(cf->dead_max, 10000);
	ck_assert_ptr_null(cf->socket_owner);
	/* As root the socket goes to group jobpool, if this machine has one. */
	if (geteuid() == 0 && getgrnam("jobpool") != NULL)
		ck_assert_str_eq(cf->socket_group, "jobpool");
	else
		ck_assert_ptr_null(cf->socket_group);
	ck_assert_ptr_null(cf->allow_users);
	ck_assert_int_eq(cf->nallow_users, 0);
	ck_assert_ptr_null(cf->allow_groups);
	ck_assert_int_eq(cf->nallow_groups, 0);
	ck_assert_ptr_null(cf->admin_users);
	ck_assert_int_eq(cf->nadmin_users, 0);
	ck_assert_ptr_null(cf->admin_groups);
	ck_assert_int_eq(cf->nadmin_groups, 0);
	ck_assert_ptr_null(cf->user);
	ck_assert_ptr_null(cf->group);
}

START_TEST(test_embedded)
{
	struct config			*cf;
	const struct queue_config	*qc;
	char				*cause = NULL;
	int				 i;

	ck_assert_ptr_null(strstr(config_embedded(), "socket ="));
	ck_assert_ptr_null(strstr(config_embedded(), "socket="));
	cf = config_load(NULL, &cause);
	if (cf == NULL)
		ck_abort_msg("embedded config did not load: %s", cause);
	ck_assert_str_eq(cf->path, CONFIG_EMBEDDED_NAME);
	ck_assert_int_eq(cf->nqueues, 4);

	qc = config_find_queue(cf, "default");
	ck_assert_ptr_nonnull(qc);
	ck_assert_str_eq(qc->handler, "echo");
	ck_assert_int_eq(qc->workers, 2);
	ck_assert_uint_eq(qc->timeout_ms, 0);

	qc = config_find_queue(cf, "cpu");
	ck_assert_ptr_nonnull(qc);
	ck_assert_str_eq(qc->handler, "spin");
	ck_assert_int_eq(qc->workers, nproc());

	qc = config_find_queue(cf, "hash");
	ck_assert_ptr_nonnull(qc);
	ck_assert_str_eq(qc->handler, "sha256");
	ck_assert_int_eq(qc->workers, 1);

	qc = config_find_queue(cf, "sleep");
	ck_assert_ptr_nonnull(qc);
	ck_assert_str_eq(qc->handler, "sleep");
	ck_assert_int_eq(qc->workers, 4);
	ck_assert_uint_eq(qc->timeout_ms, 60000);

	for (i = 0; i < cf->nqueues; i++)
		check_queue_defaults(&cf->queues[i]);
	ck_assert_ptr_null(config_find_queue(cf, "nosuch"));
	ck_assert_int_eq(cf->log_level, LOG_INFO);
	check_access_defaults(cf);
	/* No HTTP listener unless asked for. */
	ck_assert_ptr_null(cf->metrics_listen);
	config_free(cf);
}
END_TEST

START_TEST(test_conf_file)
{
	const char			*top = getenv("top_srcdir");
	const struct queue_config	*qc;
	struct config			*cf;
	char				 path[4096], *cause = NULL;
	int				 i;

	if (top == NULL || *top == '\0')
		top = ".";
	snprintf(path, sizeof path, "%s/conf/jobpool.conf", top);
	cf = config_load(path, &cause);
	if (cf == NULL)
		ck_abort_msg("%s did not load: %s", path, cause);
	ck_assert_str_eq(cf->socket_path, "/run/jobpool/jobpool.sock");
	ck_assert_uint_eq(cf->socket_mode, 0660);
	ck_assert_uint_eq(cf->max_payload, 1048576);
	ck_assert_uint_eq(cf->max_output, 4194304);
	ck_assert_uint_eq(cf->keep_results, 10000);
	ck_assert_uint_eq(cf->keep_results_bytes, 67108864);
	ck_assert_uint_eq(cf->shutdown_timeout_ms, 30000);
	ck_assert_uint_eq(cf->kill_timeout_ms, 5000);
	ck_assert_uint_eq(cf->output_timeout_ms, 10000);
	ck_assert_ptr_null(cf->warnings);
	ck_assert_int_eq(cf->log_level, LOG_INFO);
	check_access_defaults(cf);
	ck_assert_int_eq(cf->nqueues, 4);
	for (i = 0; i < cf->nqueues; i++)
		check_queue_defaults(&cf->queues[i]);
	qc = config_find_queue(cf, "default");
	ck_assert_ptr_nonnull(qc);
	ck_assert_str_eq(qc->handler, "echo");
	ck_assert_int_eq(qc->workers, 2);
	ck_assert_ptr_nonnull(config_find_queue(cf, "cpu"));
	ck_assert_int_eq(config_find_queue(cf, "cpu")->workers, nproc());
	ck_assert_ptr_nonnull(config_find_queue(cf, "hash"));
	ck_assert_uint_eq(config_find_queue(cf, "sleep")->timeout_ms, 60000);
	/* The installed config serves metrics, on loopback only. */
	ck_assert_ptr_nonnull(cf->metrics_listen);
	ck_assert_str_eq(cf->metrics_listen, "127.0.0.1:9466");
	config_free(cf);
}
END_TEST

START_TEST(test_defaults)
{
	struct config	*cf;
	char		*sock;

	cf = load_ok("# only what is required\n" Q_OK);
	sock = config_default_socket();
	ck_assert_str_eq(cf->socket_path, sock);
	free(sock);
	ck_assert_uint_eq(cf->socket_mode, geteuid() == 0 ? 0660 : 0600);
	ck_assert_uint_eq(cf->max_payload, 1048576);
	ck_assert_uint_eq(cf->max_output, 4194304);
	ck_assert_uint_eq(cf->keep_results, 10000);
	ck_assert_uint_eq(cf->keep_results_bytes, 67108864);
	ck_assert_uint_eq(cf->shutdown_timeout_ms, 30000);
	ck_assert_uint_eq(cf->kill_timeout_ms, 5000);
	ck_assert_int_eq(cf->log_level, LOG_INFO);
	check_access_defaults(cf);
	ck_assert_int_eq(cf->nqueues, 1);
	ck_assert_str_eq(cf->queues[0].name, "q");
	ck_assert_str_eq(cf->queues[0].handler, "echo");
	ck_assert_int_eq(cf->queues[0].line, 2);
	ck_assert_int_eq(cf->queues[0].workers, 2);
	ck_assert_uint_eq(cf->queues[0].timeout_ms, 0);
	check_queue_defaults(&cf->queues[0]);
	ck_assert_int_eq(cf->queues[0].paused, 0);
	config_free(cf);
	cf = load_ok("queues = ( { name = \"q\"; handler = \"echo\"; paused = true; } );\n");
	ck_assert_int_eq(cf->queues[0].paused, 1);
	config_free(cf);
}
END_TEST

START_TEST(test_values)
{
	struct config			*cf;
	const struct queue_config	*qc;

	cf = load_ok(
	    "socket = \"/tmp/x/jp.sock\";\n"
	    "socket_mode = \"0640\";\n"
	    "max_payload = 268435456;\n"
	    "max_output = 8589934592L;\n"
	    "keep_results = 0;\n"
	    "keep_results_bytes = 0;\n"
	    "shutdown_timeout = 1.5;\n"
	    "kill_timeout = 0;\n"
	    "log_level = \"debug\";\n"
	    "queues = (\n"
	    "  { name = \"a.b-c_D9\"; handler = \"sha256\"; workers = 1024;\n"
	    "    max_jobs = 1; max_bytes = 1; priority_min = -1000; priority_max = -1000;\n"
	    "    timeout = 0.0005; batch = 1024; retries = 0; },\n"
	    "  { name = \"b\"; handler = \"spin\"; workers = 0; retries = 100;\n"
	    "    timeout = 3000000; priority_min = 1000; priority_max = 1000; batch = 1; },\n"
	    "  { name = \"c\"; handler = \"sleep\"; timeout = 0.0004; }\n"
	    ");\n");
	ck_assert_str_eq(cf->socket_path, "/tmp/x/jp.sock");
	ck_assert_uint_eq(cf->socket_mode, 0640);
	ck_assert_uint_eq(cf->max_payload, 268435456);
	ck_assert_uint_eq(cf->max_output, 8589934592ULL);
	ck_assert_uint_eq(cf->keep_results, 0);
	ck_assert_uint_eq(cf->keep_results_bytes, 0);
	ck_assert_uint_eq(cf->shutdown_timeout_ms, 1500);
	ck_assert_uint_eq(cf->kill_timeout_ms, 0);
	ck_assert_int_eq(cf->log_level, LOG_DEBUG);
	ck_assert_int_eq(cf->nqueues, 3);

	qc = &cf->queues[0];
	ck_assert_str_eq(qc->name, "a.b-c_D9");
	ck_assert_int_eq(qc->line, 11);
	ck_assert_int_eq(qc->workers, 1024);
	ck_assert_uint_eq(qc->max_jobs, 1);
	ck_assert_uint_eq(qc->max_bytes, 1);
	ck_assert_int_eq(qc->prio_min, -1000);
	ck_assert_int_eq(qc->prio_max, -1000);
	ck_assert_uint_eq(qc->timeout_ms, 1);		/* 0.5 ms rounds up */
	ck_assert_uint_eq(qc->batch, 1024);
	ck_assert_uint_eq(qc->retries, 0);

	qc = config_find_queue(cf, "b");
	ck_assert_ptr_eq(qc, &cf->queues[1]);
	ck_assert_int_eq(qc->line, 14);
	ck_assert_int_eq(qc->workers, nproc());
	ck_assert_uint_eq(qc->retries, 100);
	ck_assert_uint_eq(qc->timeout_ms, 24U * 86400 * 1000);	/* capped */
	ck_assert_int_eq(qc->prio_min, 1000);
	ck_assert_uint_eq(qc->batch, 1);

	qc = config_find_queue(cf, "c");
	ck_assert_uint_eq(qc->timeout_ms, 0);		/* 0.4 ms rounds down */
	config_free(cf);
}
END_TEST

START_TEST(test_log_levels)
{
	static const struct {
		const char	*name;
		int		 level;
	} levels[] = {
		{ "error", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG }
	};
	struct config	*cf;
	char		 text[256];
	size_t		 i;

	for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		snprintf(text, sizeof text, "log_level = \"%s\";\n" Q_OK, levels[i].name);
		cf = load_ok(text);
		ck_assert_int_eq(cf->log_level, levels[i].level);
		config_free(cf);
	}
	load_fails("log_level = \"verbose\";\n" Q_OK,
	    "@:1: 'log_level' must be one of error, warning, notice, info, debug; "
	    "not 'verbose'");
	load_fails("log_level = 7;\n" Q_OK, "@:1: 'log_level' must be a string");
}
END_TEST

START_TEST(test_durations)
{
	struct config	*cf;

	cf = load_ok("shutdown_timeout = 2;\nkill_timeout = 0.25;\n" Q_OK);
	ck_assert_uint_eq(cf->shutdown_timeout_ms, 2000);
	ck_assert_uint_eq(cf->kill_timeout_ms, 250);
	config_free(cf);
	cf = load_ok("shutdown_timeout = 1e30;\nkill_timeout = 2073600;\n" Q_OK);
	ck_assert_uint_eq(cf->shutdown_timeout_ms, 2073600000U);
	ck_assert_uint_eq(cf->kill_timeout_ms, 2073600000U);
	config_free(cf);

	load_fails("\nshutdown_timeout = -1;\n" Q_OK,
	    "@:2: 'shutdown_timeout' must be 0 or more seconds, not -1");
	load_fails("kill_timeout = -0.5;\n" Q_OK,
	    "@:1: 'kill_timeout' must be 0 or more seconds, not -0.5");
	load_fails("kill_timeout = \"5s\";\n" Q_OK,
	    "@:1: 'kill_timeout' must be a number of seconds");
	load_fails("queues = ( { name = \"q\"; handler = \"echo\";\n timeout = true; } );\n",
	    "@:2: 'timeout' in queue 'q' must be a number of seconds");
	cf = load_ok("output_timeout = 0.5;\n" Q_OK);
	ck_assert_uint_eq(cf->output_timeout_ms, 500);
	config_free(cf);
	cf = load_ok(Q_OK);
	ck_assert_uint_eq(cf->output_timeout_ms, 10000);
	config_free(cf);
	load_fails("output_timeout = -1;\n" Q_OK,
	    "@:1: 'output_timeout' must be 0 or more seconds, not -1");
}
END_TEST

/*
 * A result is at most max_payload bytes: one larger than 4 x max_output reaches only a
 * client that keeps reading. A warning at max_payload's line (or max_output's), and the
 * config is valid; none up to the limit.
 */
START_TEST(test_payload_output_warning)
{
	struct config	*cf;
	char		*want;

	cf = load_ok("max_output = 65536;\nmax_payload = 262080;\n" Q_OK);
	ck_assert_ptr_null(cf->warnings);
	config_free(cf);
	cf = load_ok("max_output = 65536;\nmax_payload = 262081;\n" Q_OK);
	ck_assert_ptr_nonnull(cf->warnings);
	want = subst("@:2: warning: a result of max_payload (262081 bytes) is more than "
	    "4 x max_output (262144 bytes): a connection receiving one is closed if its "
	    "client pauses reading for output_timeout (10000 ms); for results that "
	    "large, set max_output to at least 65537", cf->path);
	ck_assert_str_eq(cf->warnings, want);
	free(want);
	config_free(cf);
	/* Only max_output set: its line. */
	cf = load_ok("\n\nmax_output = 65536;\n" Q_OK);
	ck_assert_ptr_nonnull(cf->warnings);
	ck_assert_ptr_nonnull(strstr(cf->warnings, ":3: warning: a result of max_payload "
	    "(1048576 bytes) is more than 4 x max_output (262144 bytes)"));
	config_free(cf);
	/* A config with errors has no warnings, only its errors. */
	load_fails("max_output = 65536;\nmax_payload = 1048576;\nbogus = 1;\n" Q_OK,
	    "@:3: unknown setting 'bogus'");
}
END_TEST

START_TEST(test_parse_error)
{
	load_fails("max_payload = 5;\nmax_output = ;\n" Q_OK, "@:2: syntax error");
	load_fails(Q_OK "max_payload = 1;\nmax_payload = 2;\n",
	    "@:3: duplicate setting name");
	load_fails("queues = (\n  { name = \"q\"; handler = \"echo\"; }\n;\n",
	    "@:3: syntax error");
}
END_TEST

START_TEST(test_file_errors)
{
	struct config	*cf;
	char		*cause = NULL;

	cf = config_load("/nonexistent/jobpool.conf", &cause);
	ck_assert_ptr_null(cf);
	ck_assert_str_eq(cause, "/nonexistent/jobpool.conf: No such file or directory");
	free(cause);

	cause = NULL;
	cf = config_load("/", &cause);
	ck_assert_ptr_null(cf);
	ck_assert_str_eq(cause, "/: Is a directory");
	free(cause);
}
END_TEST

START_TEST(test_unknown_key)
{
	load_fails("sockett = \"/tmp/x.sock\";\n" Q_OK, "@:1: unknown setting 'sockett'");
	load_fails(
	    "queues = (\n"
	    "  {\n"
	    "    name = \"default\";\n"
	    "    handler = \"echo\";\n"
	    "    wokers = 4;\n"
	    "  }\n"
	    ");\n",
	    "@:5: unknown setting 'wokers' in queue 'default'");
	/* Without a name the queue is named by its place in the list. */
	load_fails("queues = ( { handler = \"echo\"; wokers = 1; } );\n",
	    "@:1: unknown setting 'wokers' in queue #1\n"
	    "@:1: queue #1 has no 'name'");
}
END_TEST

START_TEST(test_duplicate_queue)
{
	load_fails(
	    "queues = (\n"
	    "  { name = \"a\"; handler = \"echo\"; },\n"
	    "  { name = \"b\"; handler = \"echo\"; },\n"
	    "  {\n"
	    "    handler = \"sha256\";\n"
	    "    name = \"a\";\n"
	    "  }\n"
	    ");\n",
	    "@:6: duplicate queue name 'a' (first defined at line 2)");
}
END_TEST

START_TEST(test_bad_handler)
{
	load_fails(
	    "queues = (\n"
	    "  { name = \"q\";\n"
	    "    handler = \"python\"; }\n"
	    ");\n",
	    "@:3: unknown handler 'python' in queue 'q': valid handlers are "
	    "echo, sha256, spin, sleep, http" HANDLERS_TAIL);
	load_fails("queues = ( { name = \"q\"; handler = \"\"; } );\n",
	    "@:1: unknown handler '' in queue 'q': valid handlers are "
	    "echo, sha256, spin, sleep, http" HANDLERS_TAIL);
	load_fails("queues = ( { name = \"q\"; handler = [ \"echo\" ]; } );\n",
	    "@:1: 'handler' in queue 'q' must be a string");
}
END_TEST

START_TEST(test_bad_types)
{
	load_fails(
	    "socket = 5;\n"
	    "socket_mode = 660;\n"
	    "max_payload = \"1M\";\n"
	    "max_output = 1.5;\n"
	    "keep_results = true;\n"
	    "keep_results_bytes = \"lots\";\n"
	    "queues = (\n"
	    "  { name = 7;\n"
	    "    handler = \"echo\";\n"
	    "    workers = 2.5;\n"
	    "    max_jobs = \"many\";\n"
	    "    max_bytes = { };\n"
	    "    priority_min = 0.5;\n"
	    "    priority_max = ( );\n"
	    "    batch = \"8\";\n"
	    "    retries = false;\n"
	    "    paused = 1;\n"
	    "  }\n"
	    ");\n",
	    "@:1: 'socket' must be a string\n"
	    "@:2: 'socket_mode' must be a string of octal digits no greater than "
	    "\"0777\", such as \"0660\"\n"
	    "@:3: 'max_payload' must be an integer\n"
	    "@:4: 'max_output' must be an integer\n"
	    "@:5: 'keep_results' must be an integer\n"
	    "@:6: 'keep_results_bytes' must be an integer\n"
	    "@:8: 'name' in queue #1 must be a string\n"
	    "@:10: 'workers' in queue #1 must be an integer\n"
	    "@:11: 'max_jobs' in queue #1 must be an integer\n"
	    "@:12: 'max_bytes' in queue #1 must be an integer\n"
	    "@:13: 'priority_min' in queue #1 must be an integer\n"
	    "@:14: 'priority_max' in queue #1 must be an integer\n"
	    "@:15: 'batch' in queue #1 must be an integer\n"
	    "@:16: 'retries' in queue #1 must be an integer\n"
	    "@:17: 'paused' in queue #1 must be true or false");
	load_fails("queues = { name = \"q\"; handler = \"echo\"; };\n",
	    "@:1: 'queues' must be a list of groups: "
	    "queues = ( { name = ...; handler = ...; }, ... );");
	load_fails("queues = ( { name = \"q\"; handler = \"echo\"; },\n  \"r\" );\n",
	    "@:2: queue #2 must be a group: { name = ...; handler = ...; }");
}
END_TEST

START_TEST(test_ranges)
{
	load_fails(
	    "max_payload = 0;\n"
	    "max_output = 65535;\n"
	    "keep_results = -1;\n"
	    "keep_results_bytes = -1;\n"
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "  workers = 1025;\n"
	    "  max_jobs = 0;\n"
	    "  max_bytes = 0;\n"
	    "  priority_min = -1001;\n"
	    "  priority_max = 1001;\n"
	    "  batch = 0;\n"
	    "  retries = 101;\n"
	    "} );\n",
	    "@:1: 'max_payload' must be between 1 and 268435456, not 0\n"
	    "@:2: 'max_output' must be at least 65536, not 65535\n"
	    "@:3: 'keep_results' must be between 0 and 2147483647, not -1\n"
	    "@:4: 'keep_results_bytes' must be at least 0, not -1\n"
	    "@:7: 'workers' in queue 'q' must be between 0 and 1024, not 1025\n"
	    "@:8: 'max_jobs' in queue 'q' must be between 1 and 2147483647, not 0\n"
	    "@:9: 'max_bytes' in queue 'q' must be at least 1, not 0\n"
	    "@:10: 'priority_min' in queue 'q' must be between -1000 and 1000, not -1001\n"
	    "@:11: 'priority_max' in queue 'q' must be between -1000 and 1000, not 1001\n"
	    "@:12: 'batch' in queue 'q' must be between 1 and 1024, not 0\n"
	    "@:13: 'retries' in queue 'q' must be between 0 and 100, not 101");
	load_fails("max_payload = 268435457;\n" Q_OK,
	    "@:1: 'max_payload' must be between 1 and 268435456, not 268435457");
	load_fails("queues = ( { name = \"q\"; handler = \"echo\"; workers = -1; } );\n",
	    "@:1: 'workers' in queue 'q' must be between 0 and 1024, not -1");
}
END_TEST

/* The connection limits and time limits: defaults, values, ranges at file:line. */
START_TEST(test_connection_limits)
{
	struct config	*cf;

	cf = load_ok(Q_OK);
	ck_assert_uint_eq(cf->max_connections, 1024);
	ck_assert_uint_eq(cf->max_connections_per_uid, 256);
	ck_assert_uint_eq(cf->reserved_connections, 8);
	ck_assert_uint_eq(cf->idle_timeout_ms, 300000);
	ck_assert_uint_eq(cf->request_timeout_ms, 30000);
	config_free(cf);
	cf = load_ok("max_connections_per_uid = 1;\nreserved_connections = 0;\n"
	    "idle_timeout = 0;\nrequest_timeout = 0.5;\n" Q_OK);
	ck_assert_uint_eq(cf->max_connections_per_uid, 1);
	ck_assert_uint_eq(cf->reserved_connections, 0);
	ck_assert_uint_eq(cf->idle_timeout_ms, 0);
	ck_assert_uint_eq(cf->request_timeout_ms, 500);
	config_free(cf);
	load_fails(
	    "max_connections_per_uid = 0;\n"
	    "reserved_connections = 1001;\n"
	    "idle_timeout = -1;\n"
	    "request_timeout = \"30s\";\n" Q_OK,
	    "@:1: 'max_connections_per_uid' must be between 1 and 1000000, not 0\n"
	    "@:2: 'reserved_connections' must be between 0 and 1000, not 1001\n"
	    "@:3: 'idle_timeout' must be 0 or more seconds, not -1\n"
	    "@:4: 'request_timeout' must be a number of seconds");
}
END_TEST

START_TEST(test_priorities)
{
	load_fails(
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "  priority_min = 5;\n"
	    "  priority_max = 4;\n"
	    "} );\n",
	    "@:3: 'priority_min' (5) is greater than 'priority_max' (4) in queue 'q'");
	/* Against the default maximum of 10: the setting given is the one named. */
	load_fails(
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "  priority_min = 11;\n"
	    "} );\n",
	    "@:3: 'priority_min' (11) is greater than 'priority_max' (10) in queue 'q'");
	load_fails(
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "\n"
	    "  priority_max = -11;\n"
	    "} );\n",
	    "@:4: 'priority_min' (-10) is greater than 'priority_max' (-11) in queue 'q'");
}
END_TEST

START_TEST(test_required)
{
	load_fails("max_payload = 5;\n", "@: no 'queues': at least one queue is needed");
	load_fails("queues = ( );\n",
	    "@:1: 'queues' is empty: at least one queue is needed");
	load_fails(
	    "queues = (\n"
	    "  { handler = \"echo\"; },\n"
	    "  { name = \"q\"; }\n"
	    ");\n",
	    "@:2: queue #1 has no 'name'\n"
	    "@:3: 'handler' is missing in queue 'q'");
	load_fails("queues = ( { workers = 1; } );\n",
	    "@:1: queue #1 has no 'name'\n"
	    "@:1: 'handler' is missing in queue #1");
}
END_TEST

START_TEST(test_queue_names)
{
	load_fails(
	    "queues = (\n"
	    "  { name = \"has space\"; handler = \"echo\"; },\n"
	    "  { name = \"\"; handler = \"echo\"; },\n"
	    "  { name = \"a234567890123456789012345678901234567890123456789012345678901234\";"
	    " handler = \"echo\"; }\n"
	    ");\n",
	    "@:2: invalid queue name 'has space': use 1 to 63 of A-Z a-z 0-9 _ . -\n"
	    "@:3: invalid queue name '': use 1 to 63 of A-Z a-z 0-9 _ . -\n"
	    "@:4: invalid queue name "
	    "'a23456789012345678901234567890123456789012345678901234567890123...': "
	    "use 1 to 63 of A-Z a-z 0-9 _ . -");
}
END_TEST

/* One error, one line: control characters in a quoted value become '?'. */
START_TEST(test_error_one_line)
{
	load_fails(
	    "queues = (\n"
	    "  { name = \"a\\nb\"; handler = \"echo\\tx\"; }\n"
	    ");\n",
	    "@:2: invalid queue name 'a?b': use 1 to 63 of A-Z a-z 0-9 _ . -\n"
	    "@:2: unknown handler 'echo?x' in queue 'a?b': valid handlers are "
	    "echo, sha256, spin, sleep, http" HANDLERS_TAIL);
}
END_TEST

START_TEST(test_many_errors)
{
	load_fails(
	    "socket = \"relative.sock\";\n"		/* 1 */
	    "wokers = 3;\n"				/* 2 */
	    "max_payload = 0;\n"			/* 3 */
	    "queues = (\n"				/* 4 */
	    "  { name = \"a\"; handler = \"echo\"; },\n"	/* 5 */
	    "  { name = \"a\"; handler = \"perl\";\n"	/* 6 */
	    "    timeout = -3; batch = 2000; }\n"		/* 7 */
	    ");\n"
	    "log_level = \"loud\";\n",			/* 9 */
	    "@:2: unknown setting 'wokers'\n"
	    "@:3: 'max_payload' must be between 1 and 268435456, not 0\n"
	    "@:6: unknown handler 'perl' in queue 'a': valid handlers are "
	    "echo, sha256, spin, sleep, http" HANDLERS_TAIL "\n"
	    "@:7: 'timeout' in queue 'a' must be 0 or more seconds, not -3\n"
	    "@:7: 'batch' in queue 'a' must be between 1 and 1024, not 2000\n"
	    "@:6: duplicate queue name 'a' (first defined at line 5)\n"
	    "@:9: 'log_level' must be one of error, warning, notice, info, debug; "
	    "not 'loud'\n"
	    "@:1: 'socket' must be an absolute path, not 'relative.sock'");
}
END_TEST

START_TEST(test_socket)
{
	char	text[512], want[512], longpath[120];

	load_fails("socket = \"\";\n" Q_OK, "@:1: 'socket' must be an absolute path, not ''");
	memset(longpath, 'x', sizeof longpath);
	longpath[0] = '/';
	longpath[108] = '\0';	/* 108 bytes: one too many for sun_path */
	snprintf(text, sizeof text, "\nsocket = \"%s\";\n" Q_OK, longpath);
	snprintf(want, sizeof want, "@:2: 'socket' is too long: 108 bytes, at most 107");
	load_fails(text, want);

	/* 107 bytes is the longest that fits. */
	longpath[107] = '\0';
	snprintf(text, sizeof text, "socket = \"%s\";\n" Q_OK, longpath);
	config_free(load_ok(text));
}
END_TEST

/* metrics_listen: numeric addresses with a port, "" for off, errors at file:line. */
START_TEST(test_metrics_listen)
{
	static const struct {
		const char	*value;
		const char	*why;	/* NULL: valid */
	} cases[] = {
		{ "127.0.0.1:9466", NULL },
		{ "0.0.0.0:1", NULL },
		{ "[::1]:65535", NULL },
		{ "[::]:9466", NULL },
		{ "127.0.0.1", "no port: write \"ADDRESS:PORT\", such as \"127.0.0.1:9466\"" },
		{ "127.0.0.1:0", "the port must be a number from 1 to 65535, not '0'" },
		{ "127.0.0.1:65536", "the port must be a number from 1 to 65535, not '65536'" },
		{ "127.0.0.1:-1", "the port must be a number from 1 to 65535, not '-1'" },
		{ "127.0.0.1:http", "the port must be a number from 1 to 65535, not 'http'" },
		{ "127.0.0.1:", "the port must be a number from 1 to 65535, not ''" },
		{ ":9466", "no address before the port: write \"ADDRESS:PORT\", such as "
		    "\"127.0.0.1:9466\" (\"0.0.0.0:9466\" for every interface)" },
		{ "localhost:9466", "'localhost' is not a numeric IPv4 address, or an IPv6 "
		    "one in brackets (names are not looked up: write 127.0.0.1 or [::1] for "
		    "this host)" },
		{ "::1:9466", "an IPv6 address is written \"[ADDRESS]:PORT\"" },
		{ "[::1]9466", "an IPv6 address is written \"[ADDRESS]:PORT\"" },
		{ "[::1", "an IPv6 address is written \"[ADDRESS]:PORT\"" },
		{ "[127.0.0.1]:80", "'127.0.0.1' between brackets is not a numeric IPv6 "
		    "address" },
		{ "256.0.0.1:80", "'256.0.0.1' is not a numeric IPv4 address, or an IPv6 "
		    "one in brackets (names are not looked up: write 127.0.0.1 or [::1] for "
		    "this host)" },
	};
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct config		*cf;
	char			 text[256], want[512], why[256];
	size_t			 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(text, sizeof text, "\nmetrics_listen = \"%s\";\n" Q_OK,
		    cases[i].value);
		if (cases[i].why == NULL) {
			cf = load_ok(text);
			ck_assert_str_eq(cf->metrics_listen, cases[i].value);
			ck_assert_int_eq(config_parse_listen(cf->metrics_listen, &ss, &sslen,
			    why, sizeof why), 0);
			ck_assert_int_eq(ss.ss_family, cases[i].value[0] == '[' ? AF_INET6 :
			    AF_INET);
			config_free(cf);
			continue;
		}
		snprintf(want, sizeof want, "@:2: 'metrics_listen' = \"%s\": %s",
		    cases[i].value, cases[i].why);
		load_fails(text, want);
	}
	/* "" is off, as if not set; a number is not a string. */
	cf = load_ok("metrics_listen = \"\";\n" Q_OK);
	ck_assert_ptr_null(cf->metrics_listen);
	config_free(cf);
	load_fails("metrics_listen = 9466;\n" Q_OK, "@:1: 'metrics_listen' must be a string");
}
END_TEST

/* The dashboard's settings: defaults, values, and errors at file:line. */
START_TEST(test_dashboard)
{
	struct config	*cf;

	cf = load_ok("socket = \"/run/x/jp.sock\";\n" Q_OK);
	ck_assert_int_eq(cf->dashboard, 1);
	ck_assert_int_eq(cf->dashboard_actions, 0);
	ck_assert_str_eq(cf->dashboard_token_file, "/run/x/dashboard.token");
	ck_assert_str_eq(cf->dashboard_dir, PKGDATADIR "/dashboard");
	ck_assert_str_eq(cf->dashboard_javascript, "/usr/share/javascript");
	config_free(cf);
	cf = load_ok("dashboard = false;\ndashboard_actions = true;\n"
	    "dashboard_token_file = \"/etc/t\";\ndashboard_dir = \"/srv/d\";\n"
	    "dashboard_javascript = \"/srv/js\";\n" Q_OK);
	ck_assert_int_eq(cf->dashboard, 0);
	ck_assert_int_eq(cf->dashboard_actions, 1);
	ck_assert_str_eq(cf->dashboard_token_file, "/etc/t");
	ck_assert_str_eq(cf->dashboard_dir, "/srv/d");
	ck_assert_str_eq(cf->dashboard_javascript, "/srv/js");
	config_free(cf);
	load_fails("\ndashboard = 1;\n" Q_OK, "@:2: 'dashboard' must be true or false");
	load_fails("dashboard_actions = \"yes\";\n" Q_OK,
	    "@:1: 'dashboard_actions' must be true or false");
	load_fails("dashboard_dir = \"share/d\";\n" Q_OK,
	    "@:1: 'dashboard_dir' must be an absolute path, not 'share/d'");
	load_fails("dashboard_token_file = 3;\n" Q_OK,
	    "@:1: 'dashboard_token_file' must be a string");
}
END_TEST

START_TEST(test_socket_mode)
{
	struct config	*cf;

	cf = load_ok("socket_mode = \"777\";\n" Q_OK);
	ck_assert_uint_eq(cf->socket_mode, 0777);
	config_free(cf);
	cf = load_ok("socket_mode = \"0\";\n" Q_OK);
	ck_assert_uint_eq(cf->socket_mode, 0);
	config_free(cf);
	cf = load_ok("socket_mode = \"0000600\";\n" Q_OK);
	ck_assert_uint_eq(cf->socket_mode, 0600);
	config_free(cf);

	load_fails(
	    "socket_mode = \"0680\";\n"
	    Q_OK
	    "# and again\n",
	    "@:1: 'socket_mode' must be octal digits no greater than "
	    "\"0777\", such as \"0660\", not \"0680\"");
	load_fails("socket_mode = \"01000\";\n" Q_OK,
	    "@:1: 'socket_mode' must be octal digits no greater than "
	    "\"0777\", such as \"0660\", not \"01000\"");
	load_fails("socket_mode = \"\";\n" Q_OK,
	    "@:1: 'socket_mode' must be octal digits no greater than "
	    "\"0777\", such as \"0660\", not \"\"");
}
END_TEST

/* Drop root for good, so the non-root rules apply: each test runs in its own fork. */
static void
become_user(void)
{
	if (geteuid() != 0)
		return;
	/*
	 * All of real, effective and saved uid, and dumpable again: LeakSanitizer ptraces
	 * the process at exit, which mixed uids or an undumpable process refuse.
	 */
	ck_assert_int_eq(setreuid(CHECK_NOBODY, CHECK_NOBODY), 0);
	ck_assert_int_eq(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}

START_TEST(test_default_socket_root)
{
	char	*sock;

	if (geteuid() != 0)
		return;		/* only root can test the root rule */
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	sock = config_default_socket();
	ck_assert_str_eq(sock, "/run/jobpool/jobpool.sock");
	free(sock);
}
END_TEST

START_TEST(test_default_socket_xdg)
{
	struct config	*cf;
	char		*sock, *cause = NULL;

	become_user();
	setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
	sock = config_default_socket();
	ck_assert_str_eq(sock, "/run/user/4242/jobpool/jobpool.sock");
	free(sock);

	cf = config_load(NULL, &cause);
	ck_assert_ptr_nonnull(cf);
	ck_assert_str_eq(cf->socket_path, "/run/user/4242/jobpool/jobpool.sock");
	ck_assert_uint_eq(cf->socket_mode, 0600);
	config_free(cf);
}
END_TEST

START_TEST(test_default_socket_tmp)
{
	char	*sock, want[64];

	become_user();
	snprintf(want, sizeof want, "/tmp/jobpool-%lu/jobpool.sock",
	    (unsigned long)geteuid());

	unsetenv("XDG_RUNTIME_DIR");
	sock = config_default_socket();
	ck_assert_str_eq(sock, want);
	free(sock);

	setenv("XDG_RUNTIME_DIR", "", 1);
	sock = config_default_socket();
	ck_assert_str_eq(sock, want);
	free(sock);
}
END_TEST

START_TEST(test_default_socket_bad_xdg)
{
	struct config	*cf;
	char		*cause = NULL;

	become_user();
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	cf = config_load(NULL, &cause);
	ck_assert_ptr_null(cf);
	ck_assert_str_eq(cause, CONFIG_EMBEDDED_NAME ": the default socket path "
	    "must be an absolute path, not 'relative/jobpool/jobpool.sock'");
	free(cause);
}
END_TEST

/* A formatted string; the caller frees it. */
static char * __attribute__((format(printf, 1, 2)))
fmt(const char *f, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, f);
	n = vasprintf(&s, f, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	return (s);
}

/* One queue with extra settings (a string of "key = value;") on a line of its own. */
#define Q_WITH(settings) \
	"queues = ( { name = \"q\"; handler = \"echo\";\n" settings "\n} );\n"

START_TEST(test_lifecycle_values)
{
	struct config			*cf;
	const struct queue_config	*qc;

	cf = load_ok(
	    "queues = (\n"
	    "  { name = \"a\"; handler = \"echo\";\n"
	    "    backoff_base = 0.5; backoff_max = 0.5; backoff_jitter = 0;\n"
	    "    grace = 0; max_running = 3; rate = 2.5;\n"
	    "    max_jobs_per_worker = 1000; max_worker_rss = 1048576;\n"
	    "    poison_after = 0; rlimit_as = 16777216; rlimit_cpu = 60;\n"
	    "    rlimit_nofile = 16; },\n"
	    "  { name = \"b\"; handler = \"echo\";\n"
	    "    backoff_base = 0; backoff_max = 2073600; backoff_jitter = 1;\n"
	    "    grace = 1.25; rate = 0.1; max_worker_rss = 8589934592L;\n"
	    "    poison_after = 100; rlimit_as = 17179869184L; rlimit_cpu = 8589934592L;\n"
	    "    rlimit_nofile = 1048576; max_running = 0; max_jobs_per_worker = 0; },\n"
	    "  { name = \"c\"; handler = \"echo\"; rate = 4; },\n"
	    "  { name = \"d\"; handler = \"echo\"; rate = 1000000; burst = 1; },\n"
	    "  { name = \"e\"; handler = \"echo\"; rate = 0.5; burst = 2147483647;\n"
	    "    backoff_max = 0.25; backoff_base = 0.25; backoff_jitter = 0.75; }\n"
	    ");\n");
	ck_assert_int_eq(cf->nqueues, 5);

	qc = config_find_queue(cf, "a");
	ck_assert_uint_eq(qc->backoff_base_ms, 500);
	ck_assert_uint_eq(qc->backoff_max_ms, 500);	/* equal to the base is fine */
	ck_assert_double_eq(qc->backoff_jitter, 0);
	ck_assert_uint_eq(qc->grace_ms, 0);
	ck_assert_uint_eq(qc->max_running, 3);
	ck_assert_double_eq(qc->rate, 2.5);
	ck_assert_uint_eq(qc->burst, 3);		/* ceil(2.5) */
	ck_assert_uint_eq(qc->max_jobs_per_worker, 1000);
	ck_assert_uint_eq(qc->max_worker_rss, 1048576);
	ck_assert_uint_eq(qc->poison_after, 0);
	ck_assert_uint_eq(qc->rlimit_as, 16777216);
	ck_assert_uint_eq(qc->rlimit_cpu, 60);
	ck_assert_uint_eq(qc->rlimit_nofile, 16);

	qc = config_find_queue(cf, "b");
	ck_assert_uint_eq(qc->backoff_base_ms, 0);
	ck_assert_uint_eq(qc->backoff_max_ms, 2073600000U);
	ck_assert_double_eq(qc->backoff_jitter, 1);
	ck_assert_uint_eq(qc->grace_ms, 1250);
	ck_assert_double_eq(qc->rate, 0.1);
	ck_assert_uint_eq(qc->burst, 1);		/* max(1, ceil(0.1)) */
	ck_assert_uint_eq(qc->max_worker_rss, 8589934592ULL);
	ck_assert_uint_eq(qc->poison_after, 100);
	ck_assert_uint_eq(qc->rlimit_as, 17179869184ULL);
	ck_assert_uint_eq(qc->rlimit_cpu, 8589934592ULL);
	ck_assert_uint_eq(qc->rlimit_nofile, 1048576);
	ck_assert_uint_eq(qc->max_running, 0);
	ck_assert_uint_eq(qc->max_jobs_per_worker, 0);

	qc = config_find_queue(cf, "c");
	ck_assert_double_eq(qc->rate, 4);
	ck_assert_uint_eq(qc->burst, 4);

	qc = config_find_queue(cf, "d");
	ck_assert_double_eq(qc->rate, 1000000);
	ck_assert_uint_eq(qc->burst, 1);

	qc = config_find_queue(cf, "e");
	ck_assert_uint_eq(qc->burst, 2147483647U);
	ck_assert_uint_eq(qc->backoff_base_ms, 250);
	ck_assert_uint_eq(qc->backoff_max_ms, 250);
	ck_assert_double_eq(qc->backoff_jitter, 0.75);
	config_free(cf);
}
END_TEST

START_TEST(test_lifecycle_ranges)
{
	struct config	*cf;

	load_fails(
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "  backoff_base = -1;\n"
	    "  backoff_max = -0.5;\n"
	    "  backoff_jitter = 1.5;\n"
	    "  grace = -2;\n"
	    "  max_running = -1;\n"
	    "  rate = -0.5;\n"
	    "  burst = 0;\n"
	    "  max_jobs_per_worker = -1;\n"
	    "  max_worker_rss = 1048575;\n"
	    "  poison_after = 101;\n"
	    "  rlimit_as = 16777215;\n"
	    "  rlimit_cpu = -1;\n"
	    "  rlimit_nofile = 15;\n"
	    "} );\n",
	    "@:3: 'backoff_base' in queue 'q' must be 0 or more seconds, not -1\n"
	    "@:4: 'backoff_max' in queue 'q' must be 0 or more seconds, not -0.5\n"
	    "@:5: 'backoff_jitter' in queue 'q' must be between 0 and 1, not 1.5\n"
	    "@:6: 'grace' in queue 'q' must be 0 or more seconds, not -2\n"
	    "@:7: 'max_running' in queue 'q' must be between 0 and 2147483647, not -1\n"
	    "@:8: 'rate' in queue 'q' must be between 0 and 1000000, not -0.5\n"
	    "@:9: 'burst' in queue 'q' must be between 1 and 2147483647, not 0\n"
	    "@:10: 'max_jobs_per_worker' in queue 'q' must be between 0 and 2147483647, "
	    "not -1\n"
	    "@:11: 'max_worker_rss' in queue 'q' must be 0 or at least 1048576, "
	    "not 1048575\n"
	    "@:12: 'poison_after' in queue 'q' must be between 0 and 100, not 101\n"
	    "@:13: 'rlimit_as' in queue 'q' must be 0 or at least 16777216, not 16777215\n"
	    "@:14: 'rlimit_cpu' in queue 'q' must be at least 0, not -1\n"
	    "@:15: 'rlimit_nofile' in queue 'q' must be 0 or at least 16, not 15");
	load_fails(Q_WITH("backoff_jitter = -0.01;"),
	    "@:2: 'backoff_jitter' in queue 'q' must be between 0 and 1, not -0.01");
	load_fails(Q_WITH("rate = 1000000.5;"),
	    "@:2: 'rate' in queue 'q' must be between 0 and 1000000, not 1000000.5");
	load_fails(Q_WITH("max_worker_rss = -1;"),
	    "@:2: 'max_worker_rss' in queue 'q' must be at least 0, not -1");
	load_fails(Q_WITH("rlimit_nofile = 2147483648L;"),
	    "@:2: 'rlimit_nofile' in queue 'q' must be between 0 and 2147483647, "
	    "not 2147483648");
	load_fails(Q_WITH("burst = 2147483648L; rate = 1;"),
	    "@:2: 'burst' in queue 'q' must be between 1 and 2147483647, not 2147483648");
	load_fails(Q_WITH("concurrency = 0;"),
	    "@:2: 'concurrency' in queue 'q' must be between 1 and 4096, not 0");
	/* Only a handler that carries several jobs at once may have more than one. */
	load_fails(Q_WITH("concurrency = 8;"),
	    "@:2: 'concurrency' is 8 in queue 'q', but handler 'echo' runs one job at a "
	    "time (handlers that carry several: sleep, http; use workers for more)");
	cf = load_ok("queues = ( { name = \"s\"; handler = \"sleep\"; concurrency = 64; "
	    "} );\n");
	ck_assert_uint_eq(config_find_queue(cf, "s")->concurrency, 64);
	config_free(cf);
	/* http: several at once by default, and its bounds' defaults. */
	cf = load_ok("queues = ( { name = \"h\"; handler = \"http\"; } );\n");
	ck_assert_uint_eq(config_find_queue(cf, "h")->concurrency, 16);
	ck_assert_uint_eq(config_find_queue(cf, "h")->http_max_response, 1048576);
	ck_assert_uint_eq(config_find_queue(cf, "h")->http_max_redirects, 5);
	ck_assert_uint_eq(config_find_queue(cf, "h")->http_timeout_ms, 30000);
	ck_assert_uint_eq(config_find_queue(cf, "h")->http_connect_timeout_ms, 10000);
	config_free(cf);
	load_fails(Q_WITH("http_timeout = 5;"),
	    "@:2: 'http_timeout' in queue 'q' is a setting of handler \"http\", not of "
	    "'echo'");
	load_fails("queues = ( { name = \"h\"; handler = \"http\";\n"
	    "http_timeout = 0; http_max_redirects = 51; } );\n",
	    "@:2: 'http_timeout' in queue 'h' must be at least 0.001 seconds\n"
	    "@:2: 'http_max_redirects' in queue 'h' must be between 0 and 50, not 51");
}
END_TEST

START_TEST(test_lifecycle_types)
{
	load_fails(
	    "queues = ( {\n"
	    "  name = \"q\"; handler = \"echo\";\n"
	    "  backoff_base = \"1s\";\n"
	    "  backoff_max = [ 1 ];\n"
	    "  backoff_jitter = \"0.2\";\n"
	    "  grace = true;\n"
	    "  max_running = 1.5;\n"
	    "  rate = \"fast\";\n"
	    "  burst = 2.5;\n"
	    "  max_jobs_per_worker = \"10\";\n"
	    "  max_worker_rss = \"1G\";\n"
	    "  poison_after = false;\n"
	    "  user = 0;\n"
	    "  group = ( \"root\" );\n"
	    "  rlimit_as = 1e9;\n"
	    "  rlimit_cpu = \"60\";\n"
	    "  rlimit_nofile = { };\n"
	    "} );\n",
	    "@:3: 'backoff_base' in queue 'q' must be a number of seconds\n"
	    "@:4: 'backoff_max' in queue 'q' must be a number of seconds\n"
	    "@:5: 'backoff_jitter' in queue 'q' must be a number\n"
	    "@:6: 'grace' in queue 'q' must be a number of seconds\n"
	    "@:7: 'max_running' in queue 'q' must be an integer\n"
	    "@:8: 'rate' in queue 'q' must be a number\n"
	    "@:9: 'burst' in queue 'q' must be an integer\n"
	    "@:10: 'max_jobs_per_worker' in queue 'q' must be an integer\n"
	    "@:11: 'max_worker_rss' in queue 'q' must be an integer\n"
	    "@:12: 'poison_after' in queue 'q' must be an integer\n"
	    "@:13: 'user' in queue 'q' must be a string\n"
	    "@:14: 'group' in queue 'q' must be a string\n"
	    "@:15: 'rlimit_as' in queue 'q' must be an integer\n"
	    "@:16: 'rlimit_cpu' in queue 'q' must be an integer\n"
	    "@:17: 'rlimit_nofile' in queue 'q' must be an integer");
	load_fails(
	    "dead_max = \"many\";\n"
	    "socket_owner = 0;\n"
	    "socket_group = 0;\n"
	    "user = 0;\n"
	    "group = [ \"root\" ];\n"
	    "allow_users = \"root\";\n"
	    "allow_groups = 0;\n"
	    Q_OK,
	    "@:1: 'dead_max' must be an integer\n"
	    "@:2: 'socket_owner' must be a string\n"
	    "@:3: 'socket_group' must be a string\n"
	    "@:4: 'user' must be a string\n"
	    "@:5: 'group' must be a string\n"
	    "@:6: 'allow_users' must be a list of user names or uids, such as "
	    "[ \"alice\", \"1000\" ]\n"
	    "@:7: 'allow_groups' must be a list of group names or gids, such as "
	    "[ \"staff\", \"1000\" ]");
}
END_TEST

START_TEST(test_burst_needs_rate)
{
	load_fails(Q_WITH("burst = 5;"),
	    "@:2: 'burst' in queue 'q' needs 'rate': a burst limits nothing without "
	    "a rate above 0");
	load_fails(Q_WITH("rate = 0;\nburst = 1;"),
	    "@:3: 'burst' in queue 'q' needs 'rate': a burst limits nothing without "
	    "a rate above 0");
	/* A rate that was refused has its own message; burst adds none. */
	load_fails(Q_WITH("rate = -1; burst = 5;"),
	    "@:2: 'rate' in queue 'q' must be between 0 and 1000000, not -1");
}
END_TEST

START_TEST(test_backoff_order)
{
	load_fails(Q_WITH("backoff_base = 10;\nbackoff_max = 5;"),
	    "@:3: 'backoff_max' (5 s) is less than 'backoff_base' (10 s) in queue 'q'");
	/* Against the defaults: the setting given is the one named. */
	load_fails(Q_WITH("backoff_base = 61;"),
	    "@:2: 'backoff_max' (60 s) is less than 'backoff_base' (61 s) in queue 'q'");
	load_fails(Q_WITH("\nbackoff_max = 0.5;"),
	    "@:3: 'backoff_max' (0.5 s) is less than 'backoff_base' (1 s) in queue 'q'");
	/* A refused setting is not compared. */
	load_fails(Q_WITH("backoff_base = 100; backoff_max = -1;"),
	    "@:2: 'backoff_max' in queue 'q' must be 0 or more seconds, not -1");
	load_fails(Q_WITH("backoff_base = \"x\"; backoff_max = 0.5;"),
	    "@:2: 'backoff_base' in queue 'q' must be a number of seconds");
}
END_TEST

/* A temporary file with mode; the caller unlinks and frees the path. */
static char *
tmp_file(const char *text, mode_t mode)
{
	char	*path = write_tmp(text);

	ck_assert_int_eq(chmod(path, mode), 0);
	return (path);
}

/* A config with one queue whose handler is handler. */
static char *
handler_conf(const char *handler)
{
	return (fmt("queues = (\n  { name = \"q\";\n    handler = \"%s\"; }\n);\n",
	    handler));
}

/* The handler must load, and be kept exactly as written. */
static void
handler_ok(const char *handler)
{
	struct config	*cf;
	char		*text = handler_conf(handler);

	cf = load_ok(text);
	ck_assert_str_eq(cf->queues[0].handler, handler);
	config_free(cf);
	free(text);
}

/* The handler must fail with the message want (at line 3, where the handler is). */
static void
handler_fails(const char *handler, const char *want)
{
	char	*text = handler_conf(handler), *expect = fmt("@:3: %s", want);

	load_fails(text, expect);
	free(expect);
	free(text);
}

START_TEST(test_handler_plugin)
{
	struct config	*cf;
	char		*so, *h, *want, *text;

	so = tmp_file("not really ELF\n", 0644);
	handler_ok(h = fmt("plugin:%s", so));
	free(h);
	handler_ok(h = fmt("plugin:%s some argument  string", so));
	free(h);
	/* libconfig reads the escape \t as a tab, which also ends the path. */
	text = fmt("queues = ( { name = \"q\"; handler = \"plugin:%s\\targ\"; } );\n",
	    so);
	cf = load_ok(text);
	free(text);
	h = fmt("plugin:%s\targ", so);
	ck_assert_str_eq(cf->queues[0].handler, h);
	free(h);
	config_free(cf);

	handler_fails("plugin:myhandler.so",
	    "handler 'plugin:myhandler.so' in queue 'q' needs an absolute path: "
	    "plugin:/path/to/handler.so [ARG]");
	handler_fails("plugin:",
	    "handler 'plugin:' in queue 'q' needs an absolute path: "
	    "plugin:/path/to/handler.so [ARG]");
	handler_fails("plugin: /x.so",
	    "handler 'plugin: /x.so' in queue 'q' needs an absolute path: "
	    "plugin:/path/to/handler.so [ARG]");
	handler_fails("plugin:/nonexistent/handler.so arg",
	    "plugin '/nonexistent/handler.so' in queue 'q': No such file or directory");
	handler_fails("plugin:/", "plugin '/' in queue 'q' is not a regular file");
	h = fmt("plugin:%s/x.so", so);
	want = fmt("plugin '%s/x.so' in queue 'q': Not a directory", so);
	handler_fails(h, want);
	free(want);
	free(h);
	/* The prefix is case-sensitive, like every handler name. */
	handler_fails("Plugin:/x.so", "unknown handler 'Plugin:/x.so' in queue 'q': "
	    "valid handlers are echo, sha256, spin, sleep, http" HANDLERS_TAIL);
	unlink(so);
	free(so);
}
END_TEST

/* batch_size and batch_wait_ms (issue 15): a plugin's, checked at their lines. */
START_TEST(test_batch)
{
	struct config	*cf;
	char		*so, *text;

	so = tmp_file("not really ELF\n", 0644);
	text = fmt("queues = (\n"
	    "  { name = \"b\"; handler = \"plugin:%s\"; batch_size = 64; },\n"
	    "  { name = \"w\"; handler = \"plugin:%s\"; batch_size = 1024;\n"
	    "    batch_wait_ms = 0; },\n"
	    "  { name = \"n\"; handler = \"plugin:%s\"; }\n"
	    ");\n", so, so, so);
	cf = load_ok(text);
	ck_assert_uint_eq(cf->queues[0].batch_size, 64);
	ck_assert_uint_eq(cf->queues[0].batch_wait_ms, 10);	/* the default */
	ck_assert_uint_eq(cf->queues[1].batch_size, 1024);
	ck_assert_uint_eq(cf->queues[1].batch_wait_ms, 0);
	ck_assert_uint_eq(cf->queues[2].batch_size, 0);		/* no batches */
	ck_assert_uint_eq(cf->queues[2].batch_wait_ms, 0);
	config_free(cf);
	free(text);

	load_fails(Q_WITH("batch_size = 8;"),
	    "@:2: 'batch_size' in queue 'q' needs a plugin handler with a batch entry "
	    "point (process_batch, jobpool-handler.h): 'echo' takes one job at a time");
	load_fails(Q_WITH("batch_wait_ms = 5;"),
	    "@:2: 'batch_wait_ms' in queue 'q' needs 'batch_size': it bounds how long "
	    "a batch waits to fill");
	text = fmt("queues = ( { name = \"q\"; handler = \"plugin:%s\";\n"
	    "  batch_size = 0;\n  batch_wait_ms = 60001; },\n"
	    "  { name = \"r\"; handler = \"plugin:%s\"; batch_size = 2000; } );\n",
	    so, so);
	load_fails(text,
	    "@:2: 'batch_size' in queue 'q' must be between 1 and 1024, not 0\n"
	    "@:3: 'batch_wait_ms' in queue 'q' must be between 0 and 60000, not 60001\n"
	    "@:4: 'batch_size' in queue 'r' must be between 1 and 1024, not 2000");
	free(text);
	/* A batch_size that was refused has its own message; batch_wait_ms adds none. */
	text = fmt("queues = ( { name = \"q\"; handler = \"plugin:%s\";\n"
	    "  batch_size = \"many\"; batch_wait_ms = 5; } );\n", so);
	load_fails(text, "@:2: 'batch_size' in queue 'q' must be an integer");
	free(text);
	unlink(so);
	free(so);
}
END_TEST

START_TEST(test_handler_exec)
{
	char	*prog, *plain, *h, *want;

	prog = tmp_file("#!/bin/sh\ncat\n", 0755);
	plain = tmp_file("#!/bin/sh\ncat\n", 0644);
	handler_ok(h = fmt("exec:%s", prog));
	free(h);
	handler_ok(h = fmt("exec:%s --flag value", prog));
	free(h);

	handler_fails("exec:bin/prog",
	    "handler 'exec:bin/prog' in queue 'q' needs an absolute path: "
	    "exec:/path/to/program [ARGS]");
	handler_fails("exec:", "handler 'exec:' in queue 'q' needs an absolute path: "
	    "exec:/path/to/program [ARGS]");
	handler_fails("exec:/nonexistent/prog -v",
	    "exec program '/nonexistent/prog' in queue 'q': No such file or directory");
	/* A directory is searchable, not executable. */
	handler_fails("exec:/tmp", "exec program '/tmp' in queue 'q' is not a regular file");
	/* Not executable by anyone, root included. */
	h = fmt("exec:%s arg", plain);
	want = fmt("exec program '%s' in queue 'q': Permission denied", plain);
	handler_fails(h, want);
	free(want);
	free(h);
	unlink(prog);
	free(prog);
	unlink(plain);
	free(plain);
}
END_TEST

START_TEST(test_handler_unreadable)
{
	char	*so, *h, *want;

	/* Root reads anything: drop to a user for whom mode 0 means no access. */
	become_user();
	so = tmp_file("x\n", 0);
	h = fmt("plugin:%s", so);
	want = fmt("plugin '%s' in queue 'q': Permission denied", so);
	handler_fails(h, want);
	free(want);
	free(h);
	unlink(so);
	free(so);
}
END_TEST

START_TEST(test_accounts)
{
	struct config	*cf;

	/* root (uid and gid 0) exists everywhere. */
	cf = load_ok(
	    "socket_owner = \"root\";\n"
	    "socket_group = \"root\";\n"
	    "user = \"root\";\n"
	    "group = \"root\";\n"
	    "dead_max = 0;\n"
	    "queues = ( { name = \"q\"; handler = \"echo\"; user = \"root\";\n"
	    "    group = \"root\"; },\n"
	    "  { name = \"r\"; handler = \"echo\"; user = \"root\"; } );\n");
	ck_assert_str_eq(cf->socket_owner, "root");
	ck_assert_str_eq(cf->socket_group, "root");
	ck_assert_str_eq(cf->user, "root");
	ck_assert_str_eq(cf->group, "root");
	ck_assert_uint_eq(cf->dead_max, 0);
	ck_assert_str_eq(cf->queues[0].user, "root");
	ck_assert_str_eq(cf->queues[0].group, "root");
	ck_assert_str_eq(cf->queues[1].user, "root");
	ck_assert_ptr_null(cf->queues[1].group);
	config_free(cf);

	cf = load_ok("dead_max = 2147483647;\n" Q_OK);
	ck_assert_uint_eq(cf->dead_max, 2147483647U);
	config_free(cf);

	load_fails(
	    "socket_owner = \"nosuchuser-jp\";\n"
	    "socket_group = \"nosuchgroup-jp\";\n"
	    "user = \"\";\n"
	    "group = \"nosuchgroup-jp\";\n"
	    "dead_max = -1;\n"
	    "queues = ( { name = \"q\"; handler = \"echo\";\n"
	    "  user = \"nosuchuser-jp\";\n"
	    "  group = \"nosuchgroup-jp\";\n"
	    "} );\n",
	    "@:1: 'socket_owner': no such user 'nosuchuser-jp'\n"
	    "@:2: 'socket_group': no such group 'nosuchgroup-jp'\n"
	    "@:3: 'user': no such user ''\n"
	    "@:4: 'group': no such group 'nosuchgroup-jp'\n"
	    "@:5: 'dead_max' must be between 0 and 2147483647, not -1\n"
	    "@:7: 'user' in queue 'q': no such user 'nosuchuser-jp'\n"
	    "@:8: 'group' in queue 'q': no such group 'nosuchgroup-jp'");
}
END_TEST

/*
 * CONFIG_LOAD_NO_SWITCH (a reload in a master that gave up switching users): a queue's
 * user, or group without one, is an error at that setting that asks for a restart;
 * without the flag the same file loads.
 */
START_TEST(test_no_switch)
{
	static const char text[] =
	    "user = \"root\";\n"
	    "queues = ( { name = \"a\"; handler = \"echo\"; },\n"
	    "  { name = \"b\"; handler = \"echo\";\n"
	    "    user = \"root\"; group = \"root\"; },\n"
	    "  { name = \"c\"; handler = \"echo\";\n"
	    "    group = \"root\"; } );\n";
	struct config	*cf;
	char		*path, *cause = NULL, *want;

	path = write_tmp(text);
	cf = config_load_flags(path, CONFIG_LOAD_NO_SWITCH, &cause);
	ck_assert_ptr_null(cf);
	want = subst("@:4: 'user' in queue 'b' needs a restart of jobpoold: it gave up "
	    "switching users when it started, since no queue had a user or group of "
	    "its own then\n"
	    "@:6: 'group' in queue 'c' needs a restart of jobpoold: it gave up "
	    "switching users when it started, since no queue had a user or group of "
	    "its own then", path);
	ck_assert_str_eq(cause, want);
	free(want);
	free(cause);
	cause = NULL;
	cf = config_load_flags(path, 0, &cause);
	ck_assert_ptr_nonnull(cf);
	config_free(cf);
	/* The daemon's own user is not a queue's: that file loads with the flag. */
	unlink(path);
	free(path);
	path = write_tmp("user = \"root\";\n" Q_OK);
	cf = config_load_flags(path, CONFIG_LOAD_NO_SWITCH, &cause);
	ck_assert_ptr_nonnull(cf);
	config_free(cf);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_socket_group_default)
{
	struct config	*cf;

	/* Without root there is no default group. */
	become_user();
	cf = load_ok(Q_OK);
	ck_assert_ptr_null(cf->socket_group);
	config_free(cf);
}
END_TEST

START_TEST(test_allow_lists)
{
	struct config	*cf;

	cf = load_ok(
	    "allow_users = [ \"root\", \"0\", \"1000\", \"4294967294\" ];\n"
	    "allow_groups = ( \"root\", \"65534\" );\n"
	    Q_OK);
	ck_assert_int_eq(cf->nallow_users, 4);
	ck_assert_str_eq(cf->allow_users[0], "root");
	ck_assert_str_eq(cf->allow_users[1], "0");
	ck_assert_str_eq(cf->allow_users[2], "1000");
	ck_assert_str_eq(cf->allow_users[3], "4294967294");
	ck_assert_int_eq(cf->nallow_groups, 2);
	ck_assert_str_eq(cf->allow_groups[0], "root");
	ck_assert_str_eq(cf->allow_groups[1], "65534");
	config_free(cf);

	load_fails("allow_users = [ ];\n" Q_OK,
	    "@:1: 'allow_users' is empty; remove it to allow anyone");
	load_fails("\nallow_groups = ( );\n" Q_OK,
	    "@:2: 'allow_groups' is empty; remove it to allow anyone");
	/* Every bad element is reported, the good ones around them kept till the end. */
	load_fails(
	    "allow_users = [\n"
	    "  \"root\",\n"
	    "  \"nosuchuser-jp\",\n"
	    "  \"4294967295\",\n"
	    "  \"\", \"1000\" ];\n"
	    "allow_groups = ( \"root\", 1000, \"nosuchgroup-jp\" );\n"
	    Q_OK,
	    "@:3: 'allow_users': no such user 'nosuchuser-jp'\n"
	    "@:4: 'allow_users': uid 4294967295 is out of range, at most 4294967294\n"
	    "@:5: 'allow_users': no such user ''\n"
	    "@:6: 'allow_groups': element 2 must be a string: a group name or a "
	    "decimal gid\n"
	    "@:6: 'allow_groups': no such group 'nosuchgroup-jp'");
	load_fails("allow_users = [ 1000 ];\n" Q_OK,
	    "@:1: 'allow_users': element 1 must be a string: a user name or a decimal uid");
	load_fails("allow_groups = [ \"99999999999999999999\" ];\n" Q_OK,
	    "@:1: 'allow_groups': gid 99999999999999999999 is out of range, "
	    "at most 4294967294");
}
END_TEST

/* admin_users and admin_groups: read as the allow lists are, with their own names. */
START_TEST(test_admin_lists)
{
	struct config	*cf;

	cf = load_ok(
	    "admin_users = [ \"root\", \"1000\" ];\n"
	    "admin_groups = ( \"root\", \"65534\" );\n"
	    Q_OK);
	ck_assert_int_eq(cf->nadmin_users, 2);
	ck_assert_str_eq(cf->admin_users[0], "root");
	ck_assert_str_eq(cf->admin_users[1], "1000");
	ck_assert_int_eq(cf->nadmin_groups, 2);
	ck_assert_str_eq(cf->admin_groups[0], "root");
	ck_assert_str_eq(cf->admin_groups[1], "65534");
	ck_assert_int_eq(cf->nallow_users, 0);
	ck_assert_int_eq(cf->nallow_groups, 0);
	config_free(cf);

	load_fails("admin_users = [ ];\n" Q_OK,
	    "@:1: 'admin_users' is empty; remove it (root and the daemon's user are "
	    "administrators without it)");
	load_fails("\nadmin_groups = ( );\n" Q_OK,
	    "@:2: 'admin_groups' is empty; remove it (root and the daemon's user are "
	    "administrators without it)");
	load_fails(
	    "admin_users = [\n"
	    "  \"nosuchuser-jp\",\n"
	    "  \"4294967295\" ];\n"
	    "admin_groups = ( 7, \"nosuchgroup-jp\" );\n"
	    Q_OK,
	    "@:2: 'admin_users': no such user 'nosuchuser-jp'\n"
	    "@:3: 'admin_users': uid 4294967295 is out of range, at most 4294967294\n"
	    "@:4: 'admin_groups': element 1 must be a string: a group name or a "
	    "decimal gid\n"
	    "@:4: 'admin_groups': no such group 'nosuchgroup-jp'");
	load_fails("admin_users = \"root\";\n" Q_OK,
	    "@:1: 'admin_users' must be a list of user names or uids, such as "
	    "[ \"alice\", \"1000\" ]");
}
END_TEST

START_TEST(test_new_many_errors)
{
	char	*prog, *text, *want;

	/* Errors of every new kind at once, all reported in order. */
	prog = tmp_file("x\n", 0600);
	text = fmt(
	    "dead_max = -5;\n"					/* 1 */
	    "allow_users = [ ];\n"				/* 2 */
	    "queues = (\n"					/* 3 */
	    "  { name = \"a\"; handler = \"exec:%s\";\n"	/* 4 */
	    "    rate = 0; burst = 3;\n"			/* 5 */
	    "    backoff_base = 9; backoff_max = 3; },\n"	/* 6 */
	    "  { name = \"b\"; handler = \"plugin:rel.so\";\n"	/* 7 */
	    "    user = \"nosuchuser-jp\"; grase = 1; }\n"	/* 8 */
	    ");\n", prog);
	want = fmt(
	    "@:1: 'dead_max' must be between 0 and 2147483647, not -5\n"
	    "@:2: 'allow_users' is empty; remove it to allow anyone\n"
	    "@:4: exec program '%s' in queue 'a': Permission denied\n"
	    "@:6: 'backoff_max' (3 s) is less than 'backoff_base' (9 s) in queue 'a'\n"
	    "@:5: 'burst' in queue 'a' needs 'rate': a burst limits nothing without "
	    "a rate above 0\n"
	    "@:7: handler 'plugin:rel.so' in queue 'b' needs an absolute path: "
	    "plugin:/path/to/handler.so [ARG]\n"
	    "@:8: 'user' in queue 'b': no such user 'nosuchuser-jp'\n"
	    "@:8: unknown setting 'grase' in queue 'b'", prog);
	load_fails(text, want);
	free(want);
	free(text);
	unlink(prog);
	free(prog);
}
END_TEST

/* Chains (issue 15): 'then' names a user's queue, and following them ends. */
START_TEST(test_then)
{
	struct config	*cf;
	char		*path, *cause = NULL;

	cf = load_ok(
	    "queues = (\n"
	    "  { name = \"fetch\"; handler = \"echo\"; then = \"compute\"; },\n"
	    "  { name = \"compute\"; handler = \"sha256\"; then = \"save\"; },\n"
	    "  { name = \"save\"; handler = \"echo\"; },\n"
	    "  { name = \"other\"; handler = \"echo\"; then = \"save\"; }\n"
	    ");\n");
	ck_assert_str_eq(cf->queues[0].then, "compute");
	ck_assert_str_eq(cf->queues[1].then, "save");
	ck_assert_str_eq(cf->queues[2].then, "");
	ck_assert_str_eq(cf->queues[3].then, "save");
	config_free(cf);

	load_fails(
	    "queues = (\n"
	    "  { name = \"a\"; handler = \"echo\";\n"
	    "    then = \"nosuch\"; }\n"
	    ");\n",
	    "@:3: 'then' in queue 'a': no queue 'nosuch'");
	load_fails(
	    "queues = ( { name = \"a\"; handler = \"echo\"; then = \"a b\"; } );\n",
	    "@:1: 'then' in queue 'a': 'a b' is not a queue name: use 1 to 63 of "
	    "A-Z a-z 0-9 _ . -");
	/* A queue naming itself is the shortest cycle. */
	load_fails(
	    "queues = (\n"
	    "  { name = \"a\"; handler = \"echo\"; },\n"
	    "  { name = \"self\"; handler = \"echo\"; then = \"self\"; }\n"
	    ");\n",
	    "@:3: 'then' in queue 'self' makes a cycle: self -> self (a chain must end)");
	/* A cycle is told once, at the queue defined first, whatever leads into it. */
	load_fails(
	    "queues = (\n"
	    "  { name = \"in\"; handler = \"echo\"; then = \"b\"; },\n"
	    "  { name = \"b\"; handler = \"echo\";\n"
	    "    then = \"c\"; },\n"
	    "  { name = \"c\"; handler = \"echo\"; then = \"d\"; },\n"
	    "  { name = \"d\"; handler = \"echo\"; then = \"b\"; }\n"
	    ");\n",
	    "@:4: 'then' in queue 'b' makes a cycle: b -> c -> d -> b (a chain must end)");
	/* Hooks' queues take only events; a hook has no 'then'. */
	load_fails(
	    "queues = ( { name = \"a\"; handler = \"echo\"; then = \"hook.1\"; } );\n"
	    "hooks = ( { on = \"job.dead\"; run = \"/bin/true\"; } );\n",
	    "@:1: 'then' in queue 'a': 'hook.1' is hook #1's queue: only its events go "
	    "there");
	path = write_tmp(Q_OK "hooks = ( { on = \"job.dead\"; run = \"/bin/true\"; "
	    "then = \"q\"; } );\n");
	ck_assert_ptr_null(config_load(path, &cause));
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, ":2: unknown setting 'then' in hook #1") != NULL,
	    "%s", cause);
	free(cause);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(test_free_null)
{
	config_free(NULL);
}
END_TEST

/* The suite: loading, defaults and every error path. */
static Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc;

	tc = tcase_create("load");
	tcase_add_test(tc, test_embedded);
	tcase_add_test(tc, test_conf_file);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_log_levels);
	tcase_add_test(tc, test_durations);
	tcase_add_test(tc, test_payload_output_warning);
	tcase_add_test(tc, test_connection_limits);
	tcase_add_test(tc, test_free_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_parse_error);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_duplicate_queue);
	tcase_add_test(tc, test_bad_handler);
	tcase_add_test(tc, test_bad_types);
	tcase_add_test(tc, test_ranges);
	tcase_add_test(tc, test_priorities);
	tcase_add_test(tc, test_required);
	tcase_add_test(tc, test_queue_names);
	tcase_add_test(tc, test_error_one_line);
	tcase_add_test(tc, test_many_errors);
	tcase_add_test(tc, test_then);
	tcase_add_test(tc, test_socket);
	tcase_add_test(tc, test_metrics_listen);
	tcase_add_test(tc, test_socket_mode);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_test(tc, test_lifecycle_values);
	tcase_add_test(tc, test_lifecycle_ranges);
	tcase_add_test(tc, test_lifecycle_types);
	tcase_add_test(tc, test_burst_needs_rate);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_backoff_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("handlers");
	tcase_add_test(tc, test_handler_plugin);
	tcase_add_test(tc, test_handler_exec);
	tcase_add_test(tc, test_handler_unreadable);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_test(tc, test_accounts);
	tcase_add_test(tc, test_no_switch);
	tcase_add_test(tc, test_socket_group_default);
	tcase_add_test(tc, test_allow_lists);
	tcase_add_test(tc, test_admin_lists);
	tcase_add_test(tc, test_new_many_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket");
	tcase_add_test(tc, test_default_socket_root);
	tcase_add_test(tc, test_default_socket_xdg);
	tcase_add_test(tc, test_default_socket_tmp);
	tcase_add_test(tc, test_default_socket_bad_xdg);
	tcase_add_test(tc, test_dashboard);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
