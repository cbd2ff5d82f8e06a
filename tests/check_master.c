/*
 * check_master.c: unit tests for daemon/master.c: the monotonic clocks, master_reload()
 * against config files in a temporary directory (a good file is applied queue by
 * queue, a broken one keeps the old config and master_reload_error() names file:line),
 * and master_main() itself: its start-up error path, and one whole run in this process
 * (start, a job, RELOAD, SIGTERM, exit 0) driven by a helper process as a client.
 *
 * The reload tests set up what master_main() would (the config in force, the event
 * base, the queues) without its event loop; workers are forked only where a reload
 * starts them, and the teardown kills and reaps them.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"
#include "priv.h"

#define WAIT_MS		20000	/* the longest any wait may take; never reached normally */

#include "checkloop.h"
#include "checkmaster.h"

static struct event	*sigchld_ev;

static void
sigchld_cb(evutil_socket_t sig, short events, void *arg)
{
	supervisor_reap();
}

/* Write the config file; '@' in text stands for the socket path. */
static void
write_conf(const char *text)
{
	FILE		*fp;
	const char	*p;

	ck_assert_ptr_nonnull(fp = fopen(tconf, "w"));
	for (p = text; *p != '\0'; p++) {
		if (*p == '@')
			fputs(tsock, fp);
		else
			fputc(*p, fp);
	}
	ck_assert_int_eq(fclose(fp), 0);
}

static void
remove_dir(void)
{
	unlink(tconf);
	unlink(tsock);
	ck_assert_int_eq(rmdir(tdir), 0);
}

/* ----- now_ms, now_us ----- */

static uint64_t
mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

START_TEST(test_now)
{
	uint64_t		a, b, c, t0, t1, last_ms = 0, last_us = 0, ms, us;
	struct timespec		ts = { 0, 20 * 1000000 };
	int			i;

	/* Both read CLOCK_MONOTONIC: bracketed by it, and consistent with each other. */
	t0 = mono_us();
	a = now_ms();
	b = now_us();
	c = now_ms();
	t1 = mono_us();
	ck_assert_uint_ge(a, t0 / 1000);
	ck_assert_uint_le(a, b / 1000);
	ck_assert_uint_le(b / 1000, c);
	ck_assert_uint_ge(b, t0);
	ck_assert_uint_le(b, t1);
	ck_assert_uint_le(c, t1 / 1000);
	/* Never backwards. */
	for (i = 0; i < 100000; i++) {
		ms = now_ms();
		us = now_us();
		ck_assert_uint_ge(ms, last_ms);
		ck_assert_uint_ge(us, last_us);
		last_ms = ms;
		last_us = us;
	}
	/* And they advance with time (at least as much as was slept). */
	a = now_ms();
	b = now_us();
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	ck_assert_uint_ge(now_ms() - a, 20);
	ck_assert_uint_ge(now_us() - b, 20000);
}
END_TEST

/* ----- master_reload ----- */

/* The master's state as master_main() sets it up, from the file, without workers. */
static void
reload_setup(void)
{
	checkmaster_dir("check_master");
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	sigchld_ev = evsignal_new(master_base, SIGCHLD, sigchld_cb, NULL);
	ck_assert_ptr_nonnull(sigchld_ev);
	ck_assert_int_eq(evsignal_add(sigchld_ev, NULL), 0);
	master_pid = getpid();
	master_stopping = 0;
	master_debug = 0;
}

/* Load the file as the config in force and create its queues. */
static void
reload_start(const char *text)
{
	struct config	*cf;
	char		*cause = NULL;

	write_conf(text);
	cf = config_load(tconf, &cause);
	ck_assert_msg(cf != NULL, "config: %s", cause);
	master_config = cf;
	priv_acl_set(cf);
	log_set_level(cf->log_level);
	ck_assert_msg(queues_create(cf, &cause) == 0, "queues: %s", cause);
}

static void
reload_teardown(void)
{
	/* Workers a reload started: killed and reaped, not respawned. */
	checkloop_reap_workers();
	queues_free();
	priv_acl_free();
	config_free(master_config);
	master_config = NULL;
	event_free(sigchld_ev);
	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
	master_stopping = 0;
	remove_dir();
}

static const char conf_v1[] =
	"socket = \"@\";\n"
	"keep_results = 100;\n"
	"log_level = \"warning\";\n"
	"queues = (\n"
	"  { name = \"q\"; handler = \"echo\"; workers = 1; max_jobs = 100; retries = 1; },\n"
	"  { name = \"gone\"; handler = \"echo\"; workers = 1; }\n"
	");\n";

START_TEST(test_reload_applied)
{
	struct config	*old;
	struct queue	*q, *gone;
	struct job	*j;

	reload_start(conf_v1);
	old = master_config;
	q = queue_find("q");
	gone = queue_find("gone");
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_nonnull(gone);
	/* A job waiting in the removed queue stays there. */
	ck_assert_ptr_nonnull(j = job_new(gone, "x", 1));
	dispatch_submit(gone, j, NULL);

	/* Limits change in place; "gone" is removed; the socket cannot change. */
	write_conf(
	    "socket = \"/nonexistent/other.sock\";\n"
	    "keep_results = 7;\n"
	    "log_level = \"debug\";\n"
	    "queues = (\n"
	    "  { name = \"q\"; handler = \"echo\"; workers = 1; max_jobs = 40;\n"
	    "    retries = 5; priority_min = -1; priority_max = 1; }\n"
	    ");\n");
	ck_assert_int_eq(master_reload("test"), 0);
	ck_assert_str_eq(master_reload_error(), "");
	ck_assert_ptr_ne(master_config, old);
	ck_assert_uint_eq(master_config->keep_results, 7);
	ck_assert_str_eq(master_config->socket_path, tsock);
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
	ck_assert_ptr_eq(queue_find("q"), q);
	ck_assert_uint_eq(q->cf.max_jobs, 40);
	ck_assert_uint_eq(q->cf.retries, 5);
	ck_assert_uint_eq(q->low_jobs, 30);
	ck_assert_int_eq(q->nlevels, 3);
	ck_assert_uint_eq(q->gen, 0);		/* same handler: no restart */
	ck_assert_ptr_null(q->workers);		/* same size: nothing forked */
	ck_assert(gone->removed);
	ck_assert_ptr_null(queue_find("gone"));
	ck_assert_int_eq(nqueues, 2);
	ck_assert_int_eq(j->state, JOB_QUEUED);
	ck_assert_uint_eq(queue_depth(gone), 1);
}
END_TEST

START_TEST(test_reload_broken)
{
	struct config	*old;
	struct queue	*q;
	char		 want[160];

	reload_start(conf_v1);
	old = master_config;
	q = queue_find("q");

	/* A syntax error: the old config stays, and the error says where. */
	write_conf(
	    "socket = \"@\";\n"
	    "keep_results = 7;\n"
	    "max_output = ;\n"
	    "queues = ( { name = \"q\"; handler = \"echo\"; workers = 1; max_jobs = 40; } );\n");
	ck_assert_int_eq(master_reload("test"), -1);
	snprintf(want, sizeof want, "%s:3: syntax error", tconf);
	ck_assert_str_eq(master_reload_error(), want);
	ck_assert_ptr_eq(master_config, old);
	ck_assert_uint_eq(master_config->keep_results, 100);
	ck_assert_uint_eq(q->cf.max_jobs, 100);

	/* A bad value: the first error, with its file and line. */
	write_conf(
	    "socket = \"@\";\n"
	    "queues = (\n"
	    "  { name = \"q\"; handler = \"echo\"; workers = 1; max_jobs = 40; },\n"
	    "  { name = \"new\";\n"
	    "    handler = \"echo\"; wokers = 2; }\n"
	    ");\n");
	ck_assert_int_eq(master_reload("test"), -1);
	snprintf(want, sizeof want, "%s:5: unknown setting 'wokers' in queue 'new'", tconf);
	ck_assert_str_eq(master_reload_error(), want);
	ck_assert_ptr_eq(master_config, old);
	ck_assert_uint_eq(q->cf.max_jobs, 100);
	ck_assert_ptr_null(queue_find("new"));
	ck_assert_int_eq(nqueues, 2);

	/* The file gone altogether. */
	unlink(tconf);
	ck_assert_int_eq(master_reload("test"), -1);
	snprintf(want, sizeof want, "%s: No such file or directory", tconf);
	ck_assert_str_eq(master_reload_error(), want);
	ck_assert_ptr_eq(master_config, old);

	/* Fixed: it applies, and the error is cleared. */
	write_conf(conf_v1);
	ck_assert_int_eq(master_reload("test"), 0);
	ck_assert_str_eq(master_reload_error(), "");
	ck_assert_ptr_ne(master_config, old);
}
END_TEST

START_TEST(test_reload_stopping)
{
	struct config	*old;

	reload_start(conf_v1);
	old = master_config;
	master_stopping = 1;
	ck_assert_int_eq(master_reload("test"), -1);
	ck_assert_str_eq(master_reload_error(), "the daemon is shutting down");
	ck_assert_ptr_eq(master_config, old);
	master_stopping = 0;
}
END_TEST

/* Every slot of q holds a READY worker. */
static int
queue_ready(const struct queue *q)
{
	int	k;

	if (q->workers == NULL || q->nworkers != q->cf.workers)
		return (0);
	for (k = 0; k < q->nworkers; k++) {
		if (q->workers[k] == NULL || q->workers[k]->life != WORKER_READY)
			return (0);
	}
	return (1);
}

START_TEST(test_reload_starts_workers)
{
	struct queue	*q, *added;

	reload_start(conf_v1);
	q = queue_find("q");
	q->failed_reason = strdup("the old handler failed");

	/* A new handler restarts q's workers (a new generation, a new chance). */
	write_conf(
	    "socket = \"@\";\n"
	    "queues = (\n"
	    "  { name = \"q\"; handler = \"sha256\"; workers = 1; },\n"
	    "  { name = \"gone\"; handler = \"echo\"; workers = 1; },\n"
	    "  { name = \"added\"; handler = \"echo\"; workers = 2; }\n"
	    ");\n");
	ck_assert_int_eq(master_reload("test"), 0);
	ck_assert_str_eq(q->cf.handler, "sha256");
	ck_assert_uint_eq(q->gen, 1);
	ck_assert_ptr_null(q->failed_reason);
	/* A new queue starts, with its workers, after the others. */
	ck_assert_int_eq(nqueues, 3);
	ck_assert_ptr_nonnull(added = queue_find("added"));
	ck_assert_int_eq(added->idx, 2);
	ck_assert_ptr_eq(queues[2], added);
	ck_assert_int_eq(added->nworkers, 2);
	run_until(queue_ready(added) && queue_ready(q));
	ck_assert_uint_eq(q->workers[0]->gen, 1);
	ck_assert_ptr_null(queue_find("gone")->workers);
}
END_TEST

/* ----- master_main ----- */

START_TEST(test_main_cannot_listen)
{
	struct config	*cf;
	char		*cause = NULL, file[96];
	FILE		*fp;

	/* The socket's directory is a file: jobpoold exits EX_OSERR, freeing all. */
	checkmaster_dir("check_master");
	snprintf(file, sizeof file, "%s/file", tdir);
	ck_assert_ptr_nonnull(fp = fopen(file, "w"));
	fclose(fp);
	snprintf(tsock, sizeof tsock, "%s/file/jobpool.sock", tdir);
	write_conf("socket = \"@\";\n"
	    "queues = ( { name = \"q\"; handler = \"echo\"; workers = 1; } );\n");
	cf = config_load(tconf, &cause);
	ck_assert_msg(cf != NULL, "config: %s", cause);
	ck_assert_int_eq(master_main(cf), EX_OSERR);
	ck_assert_ptr_null(master_base);
	ck_assert_ptr_null(master_config);
	ck_assert_ptr_null(queues);
	ck_assert_int_eq(nqueues, 0);
	unlink(file);
	snprintf(tsock, sizeof tsock, "%s/jobpool.sock", tdir);
	remove_dir();
}
END_TEST

/* The helper client: read until buf holds want or WAIT_MS passes; 0 if it does. */
static int
helper_expect(int fd, const char *want)
{
	char		buf[1024];
	size_t		len = 0, n = strlen(want);
	struct pollfd	pfd = { fd, POLLIN, 0 };
	uint64_t	deadline = now_ms() + WAIT_MS;
	ssize_t		r;

	while (len < n && now_ms() < deadline) {
		if (poll(&pfd, 1, 100) != 1)
			continue;
		if ((r = read(fd, buf + len, n - len)) <= 0)
			return (-1);
		len += (size_t)r;
	}
	return (len == n && memcmp(buf, want, n) == 0 ? 0 : -1);
}

/* The helper client: connect (the daemon is starting), run a job, RELOAD, TERM it. */
static void __attribute__((noreturn))
helper(int report)
{
	static const char	 req[] = "SUBMIT q 5 wait\nhello\n", reload[] = "RELOAD\n";
	struct sockaddr_un	 sun;
	uint64_t		 deadline = now_ms() + WAIT_MS;
	struct timespec		 ts = { 0, 20 * 1000000 };
	int			 fd = -1, ok = 0;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", tsock);
	while (now_ms() < deadline) {
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
			break;
		close(fd);
		fd = -1;
		nanosleep(&ts, NULL);
	}
	if (fd != -1 && write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
	    helper_expect(fd, "OK 1\nRESULT 1 ok 5\nhello\n") == 0 &&
	    write(fd, reload, sizeof reload - 1) == (ssize_t)(sizeof reload - 1) &&
	    helper_expect(fd, "OK reloaded\n") == 0)
		ok = 1;
	if (write(report, ok ? "Y" : "N", 1) != 1)
		ok = 0;
	kill(getppid(), SIGTERM);
	_exit(0);
}

START_TEST(test_main_run)
{
	struct config	*cf;
	char		*cause = NULL, c = '?';
	int		 p[2];
	pid_t		 pid;

	checkmaster_dir("check_master");
	write_conf("socket = \"@\";\n"
	    "shutdown_timeout = 5;\n"
	    "kill_timeout = 1;\n"
	    "queues = ( { name = \"q\"; handler = \"echo\"; workers = 1; } );\n");
	cf = config_load(tconf, &cause);
	ck_assert_msg(cf != NULL, "config: %s", cause);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[0]);
		helper(p[1]);
	}
	close(p[1]);
	/* Runs until the helper's SIGTERM; a graceful stop is exit status 0. */
	ck_assert_int_eq(master_main(cf), 0);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_msg(c == 'Y', "the client did not get its answers");
	close(p[0]);
	/* The master's SIGCHLD loop may have reaped the helper already. */
	(void)waitpid(pid, NULL, 0);
	/* Everything is freed and the socket is gone. */
	ck_assert_ptr_null(master_base);
	ck_assert_ptr_null(master_config);
	ck_assert_ptr_null(queues);
	ck_assert_int_eq(access(tsock, F_OK), -1);
	remove_dir();
}
END_TEST

static Suite *
master_suite(void)
{
	Suite	*s = suite_create("master");
	TCase	*tc_now = tcase_create("now");
	TCase	*tc_reload = tcase_create("reload");
	TCase	*tc_main = tcase_create("main");

	tcase_add_test(tc_now, test_now);
	suite_add_tcase(s, tc_now);

	tcase_add_checked_fixture(tc_reload, reload_setup, reload_teardown);
	tcase_add_test(tc_reload, test_reload_applied);
	tcase_add_test(tc_reload, test_reload_broken);
	tcase_add_test(tc_reload, test_reload_stopping);
	tcase_add_test(tc_reload, test_reload_starts_workers);
	suite_add_tcase(s, tc_reload);

	tcase_add_test(tc_main, test_main_cannot_listen);
	tcase_add_test(tc_main, test_main_run);
	suite_add_tcase(s, tc_main);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(master_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
