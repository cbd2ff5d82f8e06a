/*
 * check_notify.c: unit tests for daemon/notify.c against a fake systemd: an AF_UNIX
 * datagram socket bound in a temporary directory and named by $NOTIFY_SOCKET. Each
 * message is one datagram, compared whole: READY=1 with STATUS=, RELOADING=1 with
 * MONOTONIC_USEC=, STOPPING=1, EXTEND_TIMEOUT_USEC= while stopping (at most one a
 * second), STATUS= from the status timer only when the counts change, WATCHDOG=1 pings
 * when $WATCHDOG_USEC asks (and $WATCHDOG_PID is us), and nothing at all without
 * $NOTIFY_SOCKET. The timers run on a libevent base driven by the test.
 */

#include "autoconf.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"

#define IDLE_STATUS	"queued 0, running 0/0, done 0, failed 0"
#define RELOAD_MSG	"RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC="

static char			 sockdir[64];
static char			 sockpath[96];
static int			 sockfd = -1;
static struct event_base	*base;

/* Bind the fake notify socket and, if export, name it in $NOTIFY_SOCKET. */
static void
fake_systemd(int export)
{
	struct sockaddr_un	sun;

	snprintf(sockdir, sizeof sockdir, "/tmp/check_notify.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sockdir));
	snprintf(sockpath, sizeof sockpath, "%s/notify", sockdir);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sockpath);
	sockfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sockfd, 0);
	ck_assert_int_eq(bind(sockfd, (struct sockaddr *)&sun, sizeof sun), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (export)
		ck_assert_int_eq(setenv("NOTIFY_SOCKET", sockpath, 1), 0);
	else
		unsetenv("NOTIFY_SOCKET");
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	master_base = base;
}

/* Free notify's timers, the base and the socket. */
static void
fake_systemd_end(void)
{
	notify_free();
	if (base != NULL)
		event_base_free(base);
	base = NULL;
	master_base = NULL;
	close(sockfd);
	sockfd = -1;
	unlink(sockpath);
	rmdir(sockdir);
}

/* The next datagram if one is waiting (malloc'd, NUL-terminated), else NULL. */
static char *
try_recv(void)
{
	char	buf[4096];
	ssize_t	n;

	n = recv(sockfd, buf, sizeof buf - 1, MSG_DONTWAIT);
	if (n == -1) {
		ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s",
		    strerror(errno));
		return (NULL);
	}
	buf[n] = '\0';
	return (strdup(buf));
}

static int	deadline_passed;

static void
deadline_cb(evutil_socket_t fd, short events, void *arg)
{
	deadline_passed = 1;
}

static void
readable_cb(evutil_socket_t fd, short events, void *arg)
{
}

/*
 * Run the event loop (notify's timers) until a datagram arrives or ms pass; the
 * datagram, or NULL. Datagrams on a local socket are queued by the time sd_notify()
 * returns, so one sent before this call is already there.
 */
static char *
wait_msg(int ms)
{
	struct event	*rev, *tev;
	struct timeval	 tv;
	char		*m;

	if ((m = try_recv()) != NULL)
		return (m);
	rev = event_new(base, sockfd, EV_READ | EV_PERSIST, readable_cb, NULL);
	tev = evtimer_new(base, deadline_cb, NULL);
	ck_assert_ptr_nonnull(rev);
	ck_assert_ptr_nonnull(tev);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	ck_assert_int_eq(event_add(rev, NULL), 0);
	ck_assert_int_eq(evtimer_add(tev, &tv), 0);
	deadline_passed = 0;
	while (!deadline_passed && (m = try_recv()) == NULL)
		ck_assert_int_ne(event_base_loop(base, EVLOOP_ONCE), -1);
	event_free(rev);
	event_free(tev);
	return (m);
}

/* The next datagram must be want, within 10 s. */
static void
expect_msg(const char *want)
{
	char	*m = wait_msg(10000);

	ck_assert_msg(m != NULL, "no datagram; wanted '%s'", want);
	ck_assert_str_eq(m, want);
	free(m);
}

/* Nothing is waiting now. */
static void
expect_none(void)
{
	char	*m = try_recv();

	ck_assert_msg(m == NULL, "unexpected datagram '%s'", m);
}

/* Nothing arrives while the loop runs for ms. */
static void
expect_quiet(int ms)
{
	char	*m = wait_msg(ms);

	ck_assert_msg(m == NULL, "unexpected datagram '%s'", m);
}

static int
events_added(void)
{
	return (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED));
}

/* One queue with counts the status text sums; its workers are freed by free_queue. */
static struct queue	*qarr[1];

static struct queue *
make_queue(void)
{
	struct queue_config	qc;
	struct queue		*q;

	memset(&qc, 0, sizeof qc);
	qc.name = (char *)"q";
	qc.handler = (char *)"echo";
	qc.max_jobs = 100;
	qc.max_bytes = 1 << 20;
	qc.batch = 1;
	q = queue_create(&qc);
	ck_assert_ptr_nonnull(q);
	qarr[0] = q;
	queues = qarr;
	nqueues = 1;
	return (q);
}

static void
free_queue(struct queue *q)
{
	int	k;

	for (k = 0; k < q->nworkers; k++)
		free(q->workers[k]);
	q->nready = q->nheap = 0;
	queue_free(q);
	nqueues = 0;
}

/* Without $NOTIFY_SOCKET nothing is sent and no timer is started. */
START_TEST(test_disabled)
{
	fake_systemd(0);
	notify_init(base);
	ck_assert_int_eq(events_added(), 0);
	notify_ready();
	ck_assert_int_eq(events_added(), 0);
	/*
	 * Decided once: a $NOTIFY_SOCKET that appears later changes nothing, so nothing
	 * here reaches sd_notify() (which would read it and send to our socket).
	 */
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", sockpath, 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "100000", 1), 0);
	notify_init(base);
	notify_ready();
	notify_reloading();
	notify_ready();
	notify_stopping();
	notify_progress();
	notify_status("hello %d", 1);
	ck_assert_int_eq(events_added(), 0);
	expect_none();
	fake_systemd_end();
}
END_TEST

/* An empty $NOTIFY_SOCKET is the same as none. */
START_TEST(test_disabled_empty)
{
	fake_systemd(0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", "", 1), 0);
	notify_init(base);
	notify_ready();
	notify_stopping();
	notify_progress();
	notify_status("x");
	ck_assert_int_eq(events_added(), 0);
	ck_assert_int_eq(setenv("NOTIFY_SOCKET", sockpath, 1), 0);
	notify_status("y");
	expect_none();
	fake_systemd_end();
}
END_TEST

START_TEST(test_ready)
{
	fake_systemd(1);
	notify_init(base);
	/* The status timer, and no watchdog without $WATCHDOG_USEC. */
	ck_assert_int_eq(events_added(), 1);
	expect_none();
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	expect_none();
	fake_systemd_end();
}
END_TEST

/* notify_ready() before notify_init() starts the timers on master_base itself. */
START_TEST(test_ready_inits)
{
	fake_systemd(1);
	ck_assert_int_eq(events_added(), 0);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	ck_assert_int_eq(events_added(), 1);
	/* A second notify_init() starts nothing more. */
	notify_init(base);
	ck_assert_int_eq(events_added(), 1);
	fake_systemd_end();
}
END_TEST

/* STATUS= sums the queues: queued, busy workers of live ones, done, failed. */
START_TEST(test_status_counts)
{
	struct queue	*q;
	int		 k;

	fake_systemd(1);
	q = make_queue();
	q->nready = 3;
	q->nheap = 2;
	q->busy = 1;
	q->done = 40;
	q->failed = 2;
	q->dead = 2;		/* the same two: not counted twice */
	q->workers = calloc(3, sizeof *q->workers);
	ck_assert_ptr_nonnull(q->workers);
	q->nworkers = 3;
	for (k = 0; k < 2; k++) {
		q->workers[k] = calloc(1, sizeof *q->workers[k]);
		ck_assert_ptr_nonnull(q->workers[k]);
		q->workers[k]->state = k == 0 ? WORKER_READY : WORKER_DEAD;
	}
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 5, running 1/1, done 40, failed 2");
	free_queue(q);
	fake_systemd_end();
}
END_TEST

/* The status timer sends STATUS= after READY=1, and only when the text changed. */
START_TEST(test_status_timer)
{
	struct queue	*q;

	fake_systemd(1);
	q = make_queue();
	notify_init(base);
	/* Not ready yet: the timer stays silent whatever changes. */
	q->done = 1;
	expect_quiet(1500);
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 0, running 0/0, done 1, failed 0");
	/* Unchanged: a tick or two pass without a word. */
	expect_quiet(2200);
	q->done = 7;
	q->failed = 1;
	expect_msg("STATUS=queued 0, running 0/0, done 7, failed 1");
	expect_quiet(1500);
	free_queue(q);
	fake_systemd_end();
}
END_TEST

START_TEST(test_status_text)
{
	char	long_s[400], want[300];

	fake_systemd(1);
	notify_status("starting %d queues", 3);
	expect_msg("STATUS=starting 3 queues");
	/* Cut to what fits (255 bytes of text), never more than one datagram. */
	memset(long_s, 's', sizeof long_s - 1);
	long_s[sizeof long_s - 1] = '\0';
	notify_status("%s", long_s);
	snprintf(want, sizeof want, "STATUS=%.255s", long_s);
	expect_msg(want);
	expect_none();
	fake_systemd_end();
}
END_TEST

/* RELOADING=1 carries MONOTONIC_USEC= (CLOCK_MONOTONIC); READY=1 ends the reload. */
START_TEST(test_reloading)
{
	unsigned long long	 usec;
	uint64_t		 before, after;
	char			*m, *end;

	fake_systemd(1);
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	before = now_us();
	notify_reloading();
	after = now_us();
	m = wait_msg(10000);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(strncmp(m, RELOAD_MSG, strlen(RELOAD_MSG)), 0);
	usec = strtoull(m + strlen(RELOAD_MSG), &end, 10);
	ck_assert_int_eq(*end, '\0');
	ck_assert_uint_ge(usec, before);
	ck_assert_uint_le(usec, after);
	free(m);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	expect_none();
	fake_systemd_end();
}
END_TEST

/*
 * A reload before the first READY=1: systemd is still waiting for start-up, so there
 * is nothing to bracket. The READY at the end of that reload is not sent either; the
 * next one (start-up finished) is.
 */
START_TEST(test_early_reload)
{
	fake_systemd(1);
	notify_init(base);
	notify_reloading();
	expect_none();
	notify_ready();
	expect_none();
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	/* Reloads after that are bracketed as usual. */
	notify_reloading();
	{
		char	*m = wait_msg(10000);

		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(strncmp(m, "RELOADING=1\n", 12), 0);
		free(m);
	}
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	fake_systemd_end();
}
END_TEST

START_TEST(test_stopping)
{
	fake_systemd(1);
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	notify_stopping();
	expect_msg("STOPPING=1\nSTATUS=stopping: " IDLE_STATUS);
	expect_none();
	fake_systemd_end();
}
END_TEST

/* EXTEND_TIMEOUT_USEC= only while stopping, and at most once a second. */
START_TEST(test_progress)
{
	uint64_t	t0;

	fake_systemd(1);
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	/* Progress before the shutdown is not news to systemd. */
	notify_progress();
	expect_none();
	notify_stopping();
	expect_msg("STOPPING=1\nSTATUS=stopping: " IDLE_STATUS);
	t0 = now_ms();
	notify_progress();
	notify_progress();
	notify_progress();
	expect_msg("EXTEND_TIMEOUT_USEC=5000000");
	/* The other two came within the second (unless this machine stalled that long). */
	if (now_ms() - t0 < 1000)
		expect_none();
	else
		free(try_recv());
	usleep(1100 * 1000);
	notify_progress();
	expect_msg("EXTEND_TIMEOUT_USEC=5000000");
	fake_systemd_end();
}
END_TEST

/* While stopping, a change the status timer sees counts as progress. */
START_TEST(test_progress_from_status)
{
	struct queue	*q;

	fake_systemd(1);
	q = make_queue();
	q->nready = 4;
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 4, running 0/0, done 0, failed 0");
	notify_stopping();
	expect_msg("STOPPING=1\nSTATUS=stopping: queued 4, running 0/0, done 0, failed 0");
	q->nready = 0;
	q->done = 4;
	expect_msg("STATUS=stopping: queued 0, running 0/0, done 4, failed 0");
	expect_msg("EXTEND_TIMEOUT_USEC=5000000");
	/* Nothing changes any more: no more extensions; TimeoutStopSec= applies again. */
	expect_quiet(2200);
	free_queue(q);
	fake_systemd_end();
}
END_TEST

/* $WATCHDOG_USEC: a ping at once, then every half interval from the event loop. */
START_TEST(test_watchdog)
{
	int	i;

	fake_systemd(1);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "200000", 1), 0);
	notify_init(base);
	ck_assert_int_eq(events_added(), 2);
	expect_msg("WATCHDOG=1");
	/* Then from the timer: only while the loop runs, so a stuck master stops pinging. */
	for (i = 0; i < 3; i++)
		expect_msg("WATCHDOG=1");
	notify_free();
	ck_assert_int_eq(events_added(), 0);
	fake_systemd_end();
}
END_TEST

/* $WATCHDOG_PID names us: pings; names another process: none. */
START_TEST(test_watchdog_pid)
{
	char	pid[32];

	fake_systemd(1);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "200000", 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	notify_init(base);
	expect_msg("WATCHDOG=1");
	expect_msg("WATCHDOG=1");
	fake_systemd_end();

	fake_systemd(1);
	snprintf(pid, sizeof pid, "%ld", (long)getppid());
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "200000", 1), 0);
	ck_assert_int_eq(setenv("WATCHDOG_PID", pid, 1), 0);
	notify_init(base);
	ck_assert_int_eq(events_added(), 1);	/* the status timer only */
	expect_quiet(600);
	fake_systemd_end();
}
END_TEST

/* A malformed $WATCHDOG_USEC is warned about and starts no watchdog. */
START_TEST(test_watchdog_bad)
{
	fake_systemd(1);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "soon", 1), 0);
	notify_init(base);
	ck_assert_int_eq(events_added(), 1);
	expect_quiet(300);
	fake_systemd_end();

	fake_systemd(1);
	ck_assert_int_eq(setenv("WATCHDOG_USEC", "0", 1), 0);
	notify_init(base);
	ck_assert_int_eq(events_added(), 1);
	expect_quiet(300);
	fake_systemd_end();
}
END_TEST

/* notify_free() stops the timers and forgets READY: a new start begins afresh. */
START_TEST(test_free)
{
	fake_systemd(1);
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	notify_stopping();
	expect_msg("STOPPING=1\nSTATUS=stopping: " IDLE_STATUS);
	notify_free();
	ck_assert_int_eq(events_added(), 0);
	/* Not stopping any more: no extension; not ready: a reload is an early one. */
	notify_progress();
	expect_none();
	notify_reloading();
	expect_none();
	notify_free();
	notify_free();		/* twice is fine */
	notify_init(base);
	ck_assert_int_eq(events_added(), 1);
	notify_ready();
	expect_msg("READY=1\nSTATUS=" IDLE_STATUS);
	fake_systemd_end();
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite	*s = suite_create("notify");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_disabled);
	tcase_add_test(tc, test_disabled_empty);
	tcase_add_test(tc, test_ready);
	tcase_add_test(tc, test_ready_inits);
	tcase_add_test(tc, test_status_counts);
	tcase_add_test(tc, test_status_timer);
	tcase_add_test(tc, test_status_text);
	tcase_add_test(tc, test_reloading);
	tcase_add_test(tc, test_early_reload);
	tcase_add_test(tc, test_stopping);
	tcase_add_test(tc, test_progress);
	tcase_add_test(tc, test_progress_from_status);
	tcase_add_test(tc, test_watchdog);
	tcase_add_test(tc, test_watchdog_pid);
	tcase_add_test(tc, test_watchdog_bad);
	tcase_add_test(tc, test_free);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(notify_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
