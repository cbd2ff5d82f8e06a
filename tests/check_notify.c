/*
 * check_notify.c: unit tests for daemon/notify.c against a fake systemd: an AF_UNIX
 * datagram socket bound in a temporary directory and named by $NOTIFY_SOCKET. Each
 * message is one datagram, compared whole: READY=1 with STATUS=, RELOADING=1 with
 * MONOTONIC_USEC=, STOPPING=1, EXTEND_TIMEOUT_USEC= while stopping (at most one a
 * second), STATUS= from the status timer only when the counts change, WATCHDOG=1 pings
 * when $WATCHDOG_USEC asks (and $WATCHDOG_PID is us), and nothing at all without
 * $NOTIFY_SOCKET. Queues whose handler cannot start are named in STATUS= (cut to fit)
 * and by the start-up warning, which is logged with or without $NOTIFY_SOCKET; a
 * datagram that cannot be sent is a warning with its text, once per distinct error.
 * The timers run on a libevent base driven by the test; stderr (the log) goes to a
 * file when a test reads it.
 */

#include "autoconf.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"

#include "checkcapture.h"

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

/* Queues with counts the status text sums; their workers are freed by free_queues. */
static struct queue	*qarr[16];

/* Another queue called name, with nworkers workers in state st. */
static struct queue *
add_queue(const char *name, int nworkers, enum worker_life st)
{
	struct queue_config	qc;
	struct queue		*q;
	int			 k;

	ck_assert_int_lt(nqueues, (int)(sizeof qarr / sizeof qarr[0]));
	memset(&qc, 0, sizeof qc);
	qc.name = (char *)name;
	qc.handler = (char *)"echo";
	qc.max_jobs = 100;
	qc.max_bytes = 1 << 20;
	qc.batch = 1;
	q = queue_create(&qc);
	ck_assert_ptr_nonnull(q);
	if (nworkers > 0) {
		q->workers = calloc(nworkers, sizeof *q->workers);
		ck_assert_ptr_nonnull(q->workers);
		q->nworkers = nworkers;
		for (k = 0; k < nworkers; k++) {
			q->workers[k] = calloc(1, sizeof *q->workers[k]);
			ck_assert_ptr_nonnull(q->workers[k]);
			q->workers[k]->life = st;
		}
	}
	q->idx = (uint16_t)nqueues;
	qarr[nqueues++] = q;
	queues = qarr;
	return (q);
}

/* Mark q failed, as the supervisor does when its handler cannot start. */
static void
fail_queue(struct queue *q)
{
	q->failed_reason = strdup("init failed");
	ck_assert_ptr_nonnull(q->failed_reason);
}

static struct queue *
make_queue(void)
{
	return (add_queue("q", 0, WORKER_READY));
}

static void
free_queues(void)
{
	struct queue	*q;
	int		 i, k;

	for (i = 0; i < nqueues; i++) {
		q = qarr[i];
		for (k = 0; k < q->nworkers; k++)
			free(q->workers[k]);
		q->nready = q->nheap = 0;
		queue_free(q);
	}
	nqueues = 0;
}

static void
free_queue(struct queue *q)
{
	ck_assert_ptr_eq(q, qarr[0]);
	free_queues();
}

/* stderr to a file in sockdir while a test reads the log (checkcapture.h). */
static void
capture_start(void)
{
	capture_into(sockdir);
}

/* Put stderr back; before fake_systemd_end(), which removes the directory. */
static void
capture_end(void)
{
	capture_stop();
}

/* How many times needle occurs in s. */
static int
count_of(const char *s, const char *needle)
{
	int	n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return (n);
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
	q->ndead = 2;		/* the same two: not counted twice */
	q->workers = calloc(3, sizeof *q->workers);
	ck_assert_ptr_nonnull(q->workers);
	q->nworkers = 3;
	for (k = 0; k < 2; k++) {
		q->workers[k] = calloc(1, sizeof *q->workers[k]);
		ck_assert_ptr_nonnull(q->workers[k]);
		q->workers[k]->life = k == 0 ? WORKER_READY : WORKER_GONE;
	}
	/* A healthy queue adds no "failed" part. */
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 5, running 1/1, done 40, failed 2");
	free_queue(q);
	fake_systemd_end();
}
END_TEST

/*
 * A queue whose handler cannot start: STATUS= names it and leaves its (exiting)
 * workers out of the count; the first READY=1 logs a warning naming it, later ones do
 * not; a removed queue is not named; once a reload fixes it, STATUS= says so.
 */
START_TEST(test_status_failed)
{
	struct queue	*bad, *worse, *gone;
	char		*log;

	fake_systemd(1);
	capture_start();
	(void)add_queue("default", 2, WORKER_READY);
	bad = add_queue("bad", 1, WORKER_STARTING);
	fail_queue(bad);
	gone = add_queue("gone", 0, WORKER_READY);
	fail_queue(gone);
	gone->removed = 1;
	notify_init(base);
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 0, running 0/2, done 0, failed 0; "
	    "queue bad failed");
	log = capture_read();
	ck_assert_msg(strstr(log, " warning: ready; 1 queue failed: bad\n") != NULL,
	    "log: %s", log);
	free(log);

	/* A second failure shows up at the next tick; a reload's READY=1 logs nothing. */
	worse = add_queue("worse", 1, WORKER_READY);
	fail_queue(worse);
	expect_msg("STATUS=queued 0, running 0/2, done 0, failed 0; "
	    "queues bad, worse failed");
	notify_reloading();
	free(wait_msg(10000));
	notify_ready();
	expect_msg("READY=1\nSTATUS=queued 0, running 0/2, done 0, failed 0; "
	    "queues bad, worse failed");
	log = capture_read();
	ck_assert_int_eq(count_of(log, "ready;"), 1);
	free(log);

	/* A reload gave them a new chance, and their workers came up. */
	free(bad->failed_reason);
	bad->failed_reason = NULL;
	bad->workers[0]->life = WORKER_READY;
	free(worse->failed_reason);
	worse->failed_reason = NULL;
	expect_msg("STATUS=queued 0, running 0/4, done 0, failed 0");
	notify_stopping();
	expect_msg("STOPPING=1\nSTATUS=stopping: queued 0, running 0/4, done 0, failed 0");
	capture_end();
	free_queues();
	fake_systemd_end();
}
END_TEST

/* Many failed queues: as many names as fit, then "and N more"; never over 255 bytes. */
START_TEST(test_status_failed_many)
{
	static char	 names[12][64];
	struct queue	*q;
	char		*m, *log;
	int		 i;

	fake_systemd(1);
	capture_start();
	for (i = 0; i < 12; i++) {
		snprintf(names[i], sizeof names[i], "queue-with-a-long-name-%02d-%s", i,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		q = add_queue(names[i], 0, WORKER_READY);
		q->done = 99999999999ULL;
		fail_queue(q);
	}
	notify_init(base);
	notify_ready();
	m = wait_msg(10000);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_le(strlen(m), strlen("READY=1\nSTATUS=") + 255);
#define MANY_START "READY=1\nSTATUS=queued 0, running 0/0, done 1199999999988, " \
	"failed 0; queues queue-with-a-long-name-00-"
	ck_assert_msg(strncmp(m, MANY_START, strlen(MANY_START)) == 0, "got: %s", m);
#undef MANY_START
	ck_assert_msg(strstr(m, " and 10 more failed") != NULL &&
	    strcmp(strstr(m, " and 10 more failed"), " and 10 more failed") == 0,
	    "got: %s", m);
	free(m);
	/* The log has more room: it names more of them. */
	log = capture_read();
	ck_assert_msg(strstr(log, "ready; 12 queues failed: queue-with-a-long-name-00-") !=
	    NULL, "log: %s", log);
	ck_assert_msg(strstr(log, "queue-with-a-long-name-05-") != NULL, "log: %s", log);
	ck_assert_msg(strstr(log, " more\n") != NULL, "log: %s", log);
	free(log);
	capture_end();
	free_queues();
	fake_systemd_end();
}
END_TEST

/*
 * Without $NOTIFY_SOCKET the start-up line is still logged, once; the READY at the end
 * of a reload that came before start-up finished is not the end of start-up.
 */
START_TEST(test_ready_log_disabled)
{
	struct queue	*bad;
	char		*log;

	fake_systemd(0);
	capture_start();
	(void)add_queue("default", 1, WORKER_READY);
	bad = add_queue("bad", 0, WORKER_READY);
	fail_queue(bad);
	notify_init(base);
	notify_reloading();
	notify_ready();
	log = capture_read();
	ck_assert_int_eq(count_of(log, "ready;"), 0);
	free(log);
	notify_ready();
	notify_ready();
	log = capture_read();
	ck_assert_int_eq(count_of(log, " warning: ready; 1 queue failed: bad\n"), 1);
	free(log);
	ck_assert_int_eq(events_added(), 0);
	expect_none();
	capture_end();
	free_queues();
	fake_systemd_end();
}
END_TEST

/* Bind a socket of type at sockpath in place of the fake systemd's. */
static int
rebind(int type)
{
	struct sockaddr_un	sun;
	int			fd;

	unlink(sockpath);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sockpath);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 1), 0);
	return (fd);
}

/*
 * A datagram that cannot be sent: a warning with the message and the error, not
 * repeated while the same error goes on; a different error is logged again, and so is
 * the same error after a message got through.
 */
START_TEST(test_send_errors)
{
	char	*log, want[256];
	int	 fd;

	fake_systemd(1);
	capture_start();
	notify_init(base);
	/* The socket is gone. */
	close(sockfd);
	unlink(sockpath);
	notify_ready();
	notify_status("one");
	notify_status("two");
	notify_stopping();
	log = capture_read();
	snprintf(want, sizeof want, " warning: notify: cannot send \"READY=1 STATUS="
	    IDLE_STATUS "\" to %s: %s (not logged again", sockpath, strerror(ENOENT));
	ck_assert_msg(strstr(log, want) != NULL, "log: %s", log);
	ck_assert_int_eq(count_of(log, "notify: cannot send"), 1);
	free(log);

	/* Something else is there: another error, logged once. */
	fd = rebind(SOCK_STREAM);
	notify_status("three");
	notify_status("four");
	log = capture_read();
	snprintf(want, sizeof want, "cannot send \"STATUS=three\" to %s: %s", sockpath,
	    strerror(EPROTOTYPE));
	ck_assert_msg(strstr(log, want) != NULL, "log: %s", log);
	ck_assert_int_eq(count_of(log, "notify: cannot send"), 2);
	free(log);
	close(fd);

	/* systemd is back: messages get through, and the next failure is news again. */
	sockfd = rebind(SOCK_DGRAM);
	notify_status("five");
	expect_msg("STATUS=five");
	close(sockfd);
	unlink(sockpath);
	notify_status("six");
	notify_status("seven");
	log = capture_read();
	ck_assert_int_eq(count_of(log, "notify: cannot send"), 3);
	ck_assert_int_eq(count_of(log, "cannot send \"STATUS=six\""), 1);
	free(log);
	sockfd = rebind(SOCK_DGRAM);
	capture_end();
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
	tcase_add_test(tc, test_status_failed);
	tcase_add_test(tc, test_status_failed_many);
	tcase_add_test(tc, test_ready_log_disabled);
	tcase_add_test(tc, test_send_errors);
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
