/*
 * check_supervisor.c: unit tests for daemon/supervisor.c with real forked workers
 * (the built-in echo and sleep handlers) under a real event base: start-up and READY,
 * reaping and respawning a killed worker (its end in either order), growing and shrinking a pool, the shutdown
 * drain, handlers that cannot start, and the crash-loop backoff.
 *
 * SIGCHLD is a libevent signal event routed to supervisor_reap(), as master.c does.
 * Every wait is bounded (WAIT_MS) and polls for its condition; the teardown kills and
 * reaps every worker still there.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"

#define WAIT_MS		20000	/* the longest any wait may take; never reached normally */

#include "checkloop.h"
#include "checkqueue.h"

static struct event		*sigchld_ev;

static void
sigchld_cb(evutil_socket_t sig, short events, void *arg)
{
	supervisor_reap();
}

static void
setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("NOTIFY_SOCKET");
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	sigchld_ev = evsignal_new(master_base, SIGCHLD, sigchld_cb, NULL);
	ck_assert_ptr_nonnull(sigchld_ev);
	ck_assert_int_eq(evsignal_add(sigchld_ev, NULL), 0);
	checkqueue_config("check_supervisor");
	tcf.log_level = LOG_INFO;
	tqc.workers = 2;
	tqc.backoff_base_ms = 600000;	/* a retried job stays in retry_wait */
	tqc.backoff_max_ms = 600000;
}

static void
teardown(void)
{
	struct job	*j;
	int		 k;

	if (tq != NULL && tq->workers != NULL)
		checkloop_reap_workers();
	if (tq != NULL) {
		for (k = 0; k < tq->nworkers; k++) {
			while (tq->workers[k] != NULL &&
			    (j = TAILQ_FIRST(&tq->workers[k]->inflight)) != NULL) {
				TAILQ_REMOVE(&tq->workers[k]->inflight, j, entry);
				job_table_remove(j);
				job_free(j);
			}
		}
	}
	checkqueue_free();
	event_free(sigchld_ev);
	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
	master_config = NULL;
	master_stopping = 0;
}

/* Is every slot of q filled with a READY worker? */
static int
all_ready(const struct queue *q)
{
	int	k;

	if (q->nworkers != q->cf.workers)
		return (0);
	for (k = 0; k < q->nworkers; k++) {
		if (q->workers[k] == NULL || q->workers[k]->life != WORKER_READY)
			return (0);
	}
	return (1);
}

/* Slot k holds a READY worker that is not pid. */
static int
slot_ready_other(const struct queue *q, int k, pid_t pid)
{
	return (q->workers[k] != NULL && q->workers[k]->pid != pid &&
	    q->workers[k]->life == WORKER_READY);
}

/* Make the queue from tqc, start its workers and wait until every one is READY. */
static void
start_ready(void)
{
	checkqueue_make();
	ck_assert_int_eq(supervisor_start(tq), 0);
	run_until(all_ready(tq));
}

/* Is pid gone (reaped by supervisor_reap, so no longer our child)? */
static int
reaped(pid_t pid)
{
	int	st;

	return (waitpid(pid, &st, WNOHANG) == -1 && errno == ECHILD);
}

static struct job *
submit(const char *data)
{
	struct job	*j = job_new(tq, data, strlen(data));

	ck_assert_ptr_nonnull(j);
	dispatch_submit(tq, j, NULL);
	return (j);
}

START_TEST(test_start_ready)
{
	struct job	*j;
	pid_t		 p0, p1;

	checkqueue_make();
	ck_assert_int_eq(supervisor_start(tq), 0);
	ck_assert_int_eq(tq->nworkers, 2);
	ck_assert_ptr_nonnull(tq->workers[0]);
	ck_assert_ptr_nonnull(tq->workers[1]);
	p0 = tq->workers[0]->pid;
	p1 = tq->workers[1]->pid;
	ck_assert_int_gt(p0, 0);
	ck_assert_int_gt(p1, 0);
	ck_assert_int_ne(p0, p1);
	ck_assert_int_eq(tq->workers[0]->slot, 0);
	ck_assert_int_eq(tq->workers[1]->slot, 1);
	ck_assert(supervisor_alive());
	ck_assert(supervisor_alive_queue(tq));
	/* Forked, then READY once the handler is up. */
	run_until(all_ready(tq));
	ck_assert_int_eq(tq->workers[0]->pid, p0);
	ck_assert_int_eq(tq->worker_deaths, 0);
	ck_assert_ptr_null(tq->failed_reason);
	/* A job goes down the pipe and its result comes back up. */
	j = submit("hello, worker");
	run_until(j->state == JOB_DONE);
	ck_assert_uint_eq(job_rlen(j), 13);
	ck_assert_int_eq(memcmp(job_result(j), "hello, worker", 13), 0);
	ck_assert_uint_eq(tq->done, 1);
	ck_assert_uint_eq(tq->running, 0);
}
END_TEST

START_TEST(test_kill_respawn)
{
	pid_t	pid;

	tqc.workers = 1;
	start_ready();
	pid = tq->workers[0]->pid;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* Reaped on SIGCHLD, at EOF, and its slot refilled (maybe after a backoff). */
	run_until(slot_ready_other(tq, 0, pid));
	ck_assert(reaped(pid));
	ck_assert_uint_eq(tq->worker_deaths, 1);
	ck_assert_ptr_nonnull(strstr(tq->last_death, "killed by signal 9"));
	ck_assert_int_eq(tq->nworkers, 1);
	ck_assert_ptr_null(tq->failed_reason);
}
END_TEST

START_TEST(test_kill_with_job)
{
	struct job	*j;
	pid_t		 pid;
	char		 want[128];

	tqc.workers = 1;
	tqc.handler = (char *)"sleep";
	start_ready();
	j = submit("600000");
	run_until(j->state == JOB_RUNNING);
	pid = tq->workers[0]->pid;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* Its running job is a failed attempt, to be retried. */
	run_until(j->state == JOB_RETRY_WAIT);
	ck_assert_uint_eq(j->attempts, 1);
	ck_assert_uint_eq(job_crashes(j), 1);
	ck_assert_ptr_nonnull(j->x);
	snprintf(want, sizeof want, "worker %ld died while running it: killed by signal 9",
	    (long)pid);
	ck_assert_ptr_nonnull(strstr(j->x->hist[0].err, want));
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_uint_eq(tq->busy, 0);
	run_until(slot_ready_other(tq, 0, pid));
}
END_TEST

/* Wait for pid to exit, without reaping it: it stays our zombie. */
static void
wait_exited(pid_t pid)
{
	siginfo_t	si;

	memset(&si, 0, sizeof si);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(si.si_pid, pid);
}

/*
 * A worker is finished only once it is both reaped and at EOF, in either order: after
 * one half it keeps its slot (and what it holds), after the other it is replaced.
 */
START_TEST(test_end_either_order)
{
	struct worker	*w;
	pid_t		 pid;

	tqc.workers = 1;
	start_ready();

	/* Reaped first: SIGCHLD handled before the result pipe is read. */
	w = tq->workers[0];
	pid = w->pid;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	wait_exited(pid);
	supervisor_reap();
	ck_assert(reaped(pid));
	ck_assert_ptr_eq(tq->workers[0], w);
	ck_assert_int_eq(w->life, WORKER_EXITED);
	ck_assert_uint_eq(tq->worker_deaths, 0);
	run_until(slot_ready_other(tq, 0, pid));
	ck_assert_uint_eq(tq->worker_deaths, 1);

	/* At EOF first: the pipe is read while SIGCHLD is not listened to. */
	w = tq->workers[0];
	pid = w->pid;
	ck_assert_int_eq(evsignal_del(sigchld_ev), 0);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	wait_exited(pid);
	run_until(w->life == WORKER_CLOSED);
	ck_assert_ptr_eq(tq->workers[0], w);
	wait_exited(pid);	/* still our zombie: not reaped */
	ck_assert_uint_eq(tq->worker_deaths, 1);
	ck_assert_int_eq(evsignal_add(sigchld_ev, NULL), 0);
	supervisor_reap();
	ck_assert(reaped(pid));
	ck_assert_uint_eq(tq->worker_deaths, 2);
	run_until(slot_ready_other(tq, 0, pid));
}
END_TEST

START_TEST(test_resize)
{
	pid_t	p0, p1;
	int	k;

	tqc.workers = 1;
	start_ready();
	p0 = tq->workers[0]->pid;

	/* Grow: new slots, new workers; the old one stays. */
	tq->cf.workers = 3;
	ck_assert_int_eq(supervisor_resize(tq), 0);
	ck_assert_int_eq(tq->nworkers, 3);
	run_until(all_ready(tq));
	ck_assert_int_eq(tq->workers[0]->pid, p0);
	p1 = tq->workers[1]->pid;
	ck_assert_int_ne(p1, p0);
	ck_assert_int_ne(tq->workers[2]->pid, p0);

	/* Shrink: the extra slots' workers leave once idle and are not replaced. */
	tq->cf.workers = 1;
	ck_assert_int_eq(supervisor_resize(tq), 0);
	for (k = 1; k < 3; k++) {
		ck_assert_int_eq(tq->workers[k]->leave, WORKER_RETIRED);
		ck_assert_int_eq(tq->workers[k]->to_fd, -1);
	}
	run_until(tq->nworkers == 1);
	ck_assert(reaped(p1));
	ck_assert_int_eq(tq->workers[0]->pid, p0);
	ck_assert_int_eq(tq->workers[0]->life, WORKER_READY);
	/* They left cleanly: not deaths. */
	ck_assert_uint_eq(tq->worker_deaths, 0);
	run_for(200);
	ck_assert_int_eq(tq->nworkers, 1);
	ck_assert_int_eq(tq->workers[0]->pid, p0);
}
END_TEST

START_TEST(test_drain)
{
	struct job	*j;
	int		 busy, idle;

	tqc.handler = (char *)"sleep";
	start_ready();
	j = submit("300");
	run_until(j->state == JOB_RUNNING);
	busy = TAILQ_FIRST(&tq->workers[0]->inflight) == j ? 0 : 1;
	idle = 1 - busy;

	/* Shutdown: the idle worker's job pipe is closed now, the busy one's later. */
	master_stopping = 1;
	ck_assert_int_eq(supervisor_drain(), 0);
	ck_assert_int_eq(tq->workers[idle]->to_fd, -1);
	ck_assert_int_eq(tq->workers[idle]->life, WORKER_STOPPING);
	ck_assert_int_ne(tq->workers[busy]->to_fd, -1);
	run_until(supervisor_drain() == 1);
	/* Every worker is gone, none replaced, and the running job finished. */
	ck_assert(!supervisor_alive());
	ck_assert(!supervisor_alive_queue(tq));
	ck_assert_ptr_null(tq->workers[0]);
	ck_assert_ptr_null(tq->workers[1]);
	ck_assert_int_eq(j->state, JOB_DONE);
	ck_assert_uint_eq(tq->worker_deaths, 0);
	run_for(200);
	ck_assert(!supervisor_alive());
}
END_TEST

/* Handlers whose workers cannot start, and what the queue then says. */
static const struct {
	const char	*handler;
	const char	*user;
	const char	*reason;
} broken[] = {
	{ "exec:/nonexistent/jobpool-check/prog", NULL,
	    "exec /nonexistent/jobpool-check/prog: cannot run it" },
	{ "plugin:/nonexistent/jobpool-check/x.so", NULL, "cannot load" },
	{ "no-such-handler", NULL, "no handler 'no-such-handler'" },
	{ "echo", "no-such-user-jobpool-check", "user: no user 'no-such-user-jobpool-check'" },
};

START_TEST(test_handler_fails)
{
	struct job	*j;

	tqc.handler = (char *)broken[_i].handler;
	tqc.user = (char *)broken[_i].user;
	checkqueue_make();
	/* The forks succeed; each worker reports READY with an error and exits 78. */
	ck_assert_int_eq(supervisor_start(tq), 0);
	run_until(tq->failed_reason != NULL && !supervisor_alive_queue(tq));
	ck_assert_msg(strstr(tq->failed_reason, broken[_i].reason) != NULL,
	    "reason '%s' lacks '%s'", tq->failed_reason, broken[_i].reason);
	/* Failed for good: no respawn, no respawn timer, no storm. */
	ck_assert(!evtimer_pending(tq->sv.respawn_ev, NULL));
	ck_assert_int_eq(tq->sv.respawn_fails, 0);
	run_for(300);
	ck_assert(!supervisor_alive_queue(tq));
	ck_assert(!evtimer_pending(tq->sv.respawn_ev, NULL));
	/* A failed queue runs nothing: its waiting jobs become dead, with the reason. */
	j = submit("x");
	run_for(50);
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_ptr_nonnull(strstr(job_result(j), "cannot run its handler"));
}
END_TEST

START_TEST(test_crash_loop_backoff)
{
	pid_t	pid;
	int	n;

	tqc.workers = 1;
	checkqueue_make();
	ck_assert_int_eq(supervisor_start(tq), 0);
	for (n = 1; n <= 3; n++) {
		run_until(tq->workers[0] != NULL);
		pid = tq->workers[0]->pid;
		/*
		 * As if it had just been forked: its death counts as young. (Only the
		 * time from this kill to its reaping counts, far below the one second
		 * that makes a worker healthy.)
		 */
		tq->workers[0]->ready_ms = now_ms();
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		run_until(tq->workers[0] == NULL || tq->workers[0]->pid != pid);
		/* Not refilled at once: a timer, 100 ms doubling each time. */
		ck_assert_ptr_null(tq->workers[0]);
		ck_assert_int_eq(tq->sv.respawn_fails, n);
		ck_assert(evtimer_pending(tq->sv.respawn_ev, NULL));
		ck_assert_uint_eq(tq->worker_deaths, (unsigned)n);
	}
	/* The timer refills it. */
	run_until(tq->workers[0] != NULL && tq->workers[0]->life == WORKER_READY);
	ck_assert(!evtimer_pending(tq->sv.respawn_ev, NULL));
	/* One healthy run resets the backoff: the next death is refilled at once. */
	pid = tq->workers[0]->pid;
	tq->workers[0]->ready_ms = now_ms() - 5000;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	run_until(tq->workers[0] == NULL || tq->workers[0]->pid != pid);
	ck_assert_ptr_nonnull(tq->workers[0]);
	ck_assert_int_eq(tq->sv.respawn_fails, 0);
	ck_assert(!evtimer_pending(tq->sv.respawn_ev, NULL));
	run_until(tq->workers[0]->life == WORKER_READY);
}
END_TEST

START_TEST(test_retire_idle)
{
	pid_t	pid;

	tqc.workers = 1;
	start_ready();
	pid = tq->workers[0]->pid;
	/* A retired idle worker goes at once and, being ours, is replaced at once. */
	supervisor_retire(tq->workers[0]);
	ck_assert_int_eq(tq->workers[0]->life, WORKER_STOPPING);
	ck_assert_int_eq(tq->workers[0]->to_fd, -1);
	run_until(slot_ready_other(tq, 0, pid));
	ck_assert(reaped(pid));
	ck_assert_uint_eq(tq->worker_deaths, 0);
	ck_assert_int_eq(tq->sv.respawn_fails, 0);
}
END_TEST


/*
 * A worker of a handler that carries several jobs (sleep, concurrency 3): its READY
 * says 3, it is sent three jobs at once, their results come back as each ends, in any
 * order, each to its own job, and a timeout stops the one job past it.
 */
START_TEST(test_slots_real_worker)
{
	struct job	*slow, *quick, *mid, *late;
	pid_t		 pid;

	tqc.workers = 1;
	tqc.handler = (char *)"sleep";
	tqc.concurrency = 3;
	tqc.retries = 0;
	start_ready();
	ck_assert_uint_eq(tq->workers[0]->slots, 3);
	pid = tq->workers[0]->pid;
	slow = job_new(tq, "600000", 6);
	ck_assert_ptr_nonnull(slow);
	slow->timeout_ms = 1500;
	dispatch_submit(tq, slow, NULL);
	mid = submit("800");
	quick = submit("0");
	late = submit("0");
	run_until(quick->state == JOB_DONE);
	/* Three were sent at once; the fourth waited for a slot and ran in the same worker. */
	run_until(late->state == JOB_DONE);
	ck_assert_int_eq(mid->state, JOB_RUNNING);
	run_until(mid->state == JOB_DONE);
	ck_assert_int_eq(memcmp(job_result(mid), "800", 3), 0);
	ck_assert_int_eq(slow->state, JOB_RUNNING);
	/* The slow one times out alone: dropped by its handler, the worker stays. */
	run_until(slow->state == JOB_DEAD);
	ck_assert_int_eq(slow->x->last_status, JOB_TIMEOUT);
	ck_assert_uint_eq(job_rlen(slow), strlen("timed out after 1500 ms; stopped: "
	    "the handler dropped it"));
	ck_assert_int_eq(memcmp(job_result(slow), "timed out after 1500 ms; stopped: "
	    "the handler dropped it", job_rlen(slow)), 0);
	ck_assert_int_eq(tq->workers[0]->pid, pid);
	ck_assert_uint_eq(tq->worker_deaths, 0);
	ck_assert_uint_eq(tq->done, 3);
	ck_assert_uint_eq(tq->running, 0);
}
END_TEST

static Suite *
supervisor_suite(void)
{
	Suite	*s = suite_create("supervisor");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_start_ready);
	tcase_add_test(tc, test_kill_respawn);
	tcase_add_test(tc, test_kill_with_job);
	tcase_add_test(tc, test_end_either_order);
	tcase_add_test(tc, test_resize);
	tcase_add_test(tc, test_drain);
	tcase_add_loop_test(tc, test_handler_fails, 0, sizeof broken / sizeof broken[0]);
	tcase_add_test(tc, test_crash_loop_backoff);
	tcase_add_test(tc, test_retire_idle);
	tcase_add_test(tc, test_slots_real_worker);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(supervisor_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
