/*
 * check_dispatch.c: unit tests for daemon/dispatch.c: ids and pushing on submit,
 * handing jobs to idle workers within max_running, batch and rate, results, retries
 * with backoff, dead and poison jobs, RETRY, cancellation, timeouts and grace, a lost
 * worker's jobs, the shutdown helpers, and the per-key limits beside the queue's
 * (keys.c: a job parked behind its key, pauses, many keys in bounded memory).
 *
 * The workers are structs built here, as supervisor.c would build them, but without a
 * process behind their pipes: the test reads the frames the worker would see from the
 * other end of its job pipe, and plays the worker by calling dispatch_result(). Signals
 * the master sends to a worker go to a dummy child that reports each SIGUSR1 on a pipe.
 * Waiters are connections whose bufferevent never writes: their replies stay in the
 * output buffer, where the test reads them.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "frame.h"
#include "jobpoold.h"

#define NW		3	/* worker slots of the test queue */
#define WAIT_MS		10000	/* the longest any wait may take; never reached normally */

#include "checkcapture.h"
#include "checkloop.h"
#include "checkqueue.h"
#include "checkconn.h"

/* A worker slot: the worker and the far end of its job pipe. */
struct tworker {
	struct worker	*w;
	int		 rd;
	char		 buf[65536];
	size_t		 len;
};

static struct tworker		 tw[NW];
static struct conn		*tc;
static pid_t			 dummy = -1;	/* stands in for the worker processes */
static int			 sigpipe_rd = -1;	/* a byte per SIGUSR1 it got */

/* The worker answers for the head of its in-flight list (0: it holds none). */
static void
head_result(struct worker *w, int status, const char *data, uint32_t len)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);

	dispatch_result(w, j != NULL ? j->id : 0, status, 0, data, len);
}

/* ----- the dummy worker process ----- */

static int	dummy_wr = -1;

static void
dummy_usr1(int sig)
{
	if (write(dummy_wr, "u", 1) == -1)
		_exit(1);
}

static void
dummy_start(void)
{
	int	p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	dummy = fork();
	ck_assert_int_ne(dummy, -1);
	if (dummy == 0) {
		struct sigaction sa;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		dummy_wr = p[1];
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = dummy_usr1;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		/* Ready: a SIGUSR1 from now on is reported, not fatal. */
		if (write(dummy_wr, "r", 1) == -1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	sigpipe_rd = p[0];
	{
		char	c;

		ck_assert_int_eq(read(sigpipe_rd, &c, 1), 1);
		ck_assert_int_eq(c, 'r');
	}
}

/* Did the dummy get a SIGUSR1 (waiting up to WAIT_MS)? */
static int
dummy_got_usr1(void)
{
	struct pollfd	pfd = { sigpipe_rd, POLLIN, 0 };
	char		c;

	if (poll(&pfd, 1, WAIT_MS) != 1)
		return (0);
	return (read(sigpipe_rd, &c, 1) == 1);
}

/* ----- fixture ----- */

static void
flush_cb(evutil_socket_t fd, short events, void *arg)
{
	supervisor_flush(arg);
}

static void
timer_cb(evutil_socket_t fd, short events, void *arg)
{
	dispatch_timer(arg);
}

/* A ready worker in slot i of tq, as worker_spawn() leaves it once READY. */
static struct worker *
worker_make(int i)
{
	struct worker	*w;
	int		 p[2];

	ck_assert_ptr_nonnull(w = calloc(1, sizeof *w));
	w->queue = tq;
	w->slot = i;
	w->pid = dummy;
	w->gen = tq->gen;
	w->slots = 1;
	TAILQ_INIT(&w->inflight);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	w->to_fd = p[1];
	w->from_fd = -1;
	tw[i].rd = p[0];
	tw[i].len = 0;
	tw[i].w = w;
	w->in = evbuffer_new();
	w->out = evbuffer_new();
	w->wev = event_new(master_base, w->to_fd, EV_WRITE, flush_cb, w);
	w->tev = evtimer_new(master_base, timer_cb, w);
	ck_assert(w->in != NULL && w->out != NULL && w->wev != NULL && w->tev != NULL);
	w->life = WORKER_READY;
	tq->workers[i] = w;
	return (w);
}

static void
worker_destroy(struct tworker *t)
{
	struct worker	*w = t->w;
	struct job	*j;

	if (w == NULL)
		return;
	/* Jobs still in flight are in the job table only: free them here. */
	while ((j = TAILQ_FIRST(&w->inflight)) != NULL) {
		TAILQ_REMOVE(&w->inflight, j, entry);
		job_table_remove(j);
		job_free(j);
	}
	if (w->to_fd != -1)
		close(w->to_fd);
	event_free(w->wev);
	event_free(w->tev);
	evbuffer_free(w->in);
	evbuffer_free(w->out);
	free(w->stops);
	free(w);
	close(t->rd);
	t->w = NULL;
}

static void
setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("NOTIFY_SOCKET");
	dummy_start();
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	checkqueue_config("check_dispatch");
	tqc.workers = NW;
	tqc.prio_min = -2;
	tqc.prio_max = 2;
	tqc.batch = 64;
	tqc.retries = 2;
	tqc.grace_ms = 60000;
	memset(tw, 0, sizeof tw);
	tc = conn_make();
}

/* Create the queue from tqc (tests adjust tqc first), with no worker yet. */
static void
queue_make(void)
{
	checkqueue_make();
	ck_assert_ptr_nonnull(tq->workers = calloc(NW, sizeof *tq->workers));
	tq->nworkers = NW;
}

static void
teardown(void)
{
	int	i, st;

	for (i = 0; i < NW; i++)
		worker_destroy(&tw[i]);
	checkqueue_free();
	bufferevent_free(tc->bev);
	tc->closed = 1;
	conn_unref(tc);
	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
	master_config = NULL;
	if (dummy > 0) {
		kill(dummy, SIGKILL);
		(void)waitpid(dummy, &st, 0);
	}
	close(sigpipe_rd);
}

/* ----- helpers ----- */

/* Run what is ready in the event loop (the dispatch kick), without waiting. */
static void
run_pending(void)
{
	event_base_loop(master_base, EVLOOP_NONBLOCK);
}

/* The next whole frame the worker in slot i has been sent: 1, or 0 if none is there. */
static int
frame_next(int i, struct frame_hdr *h, char *payload, size_t cap)
{
	struct tworker	*t = &tw[i];
	ssize_t		 n;
	size_t		 whole;

	for (;;) {
		n = read(t->rd, t->buf + t->len, sizeof t->buf - t->len);
		if (n <= 0)
			break;
		t->len += (size_t)n;
	}
	if (frame_get(t->buf, t->len, 1 << 20, h) != 1)
		return (0);
	whole = FRAME_HDR_LEN + h->len;
	if (t->len < whole)
		return (0);
	ck_assert_uint_lt(h->len, cap);
	memcpy(payload, t->buf + FRAME_HDR_LEN, h->len);
	payload[h->len] = '\0';
	memmove(t->buf, t->buf + whole, t->len - whole);
	t->len -= whole;
	return (1);
}

/* The worker in slot i must have been sent exactly this JOB frame next. */
static void
expect_job(int i, const struct job *j)
{
	struct frame_hdr	h;
	char			payload[1024];

	ck_assert_msg(frame_next(i, &h, payload, sizeof payload) == 1,
	    "worker %d: no frame, expected job %llu", i, (unsigned long long)j->id);
	ck_assert_int_eq(h.type, FRAME_JOB);
	ck_assert_uint_eq(h.id, j->id);
	ck_assert_uint_eq(h.len, j->len);
	ck_assert_int_eq(memcmp(payload, j->data, j->len), 0);
}

/* The worker in slot i must have been sent a CANCEL frame for j. */
static void
expect_cancel(int i, const struct job *j, int reason)
{
	struct frame_hdr	h;
	char			payload[64];

	ck_assert_msg(frame_next(i, &h, payload, sizeof payload) == 1,
	    "worker %d: no frame, expected a cancel", i);
	ck_assert_int_eq(h.type, FRAME_CANCEL);
	ck_assert_int_eq(h.status, reason);
	ck_assert_uint_eq(h.id, j->id);
	ck_assert_uint_eq(h.len, 0);
}

static void
expect_no_frame(int i)
{
	struct frame_hdr	h;
	char			payload[1024];

	ck_assert_msg(frame_next(i, &h, payload, sizeof payload) == 0,
	    "worker %d: unexpected frame type %d id %llu", i, h.type,
	    (unsigned long long)h.id);
}

/* A new job submitted to tq (waited for by tc if wait), not yet dispatched. */
static struct job *
submit(const char *data, int wait)
{
	struct job	*j = job_new(tq, data, strlen(data));
	uint64_t	 id;

	ck_assert_ptr_nonnull(j);
	id = dispatch_submit(tq, j, wait ? tc : NULL);
	ck_assert_uint_eq(id, j->id);
	return (j);
}

/* The expected RESULT text for job j. */
static char *
result_text(const struct job *j, const char *word, const char *body)
{
	char	*s;

	ck_assert_int_ne(asprintf(&s, "RESULT %llu %s %zu\n%s\n",
	    (unsigned long long)j->id, word, strlen(body), body), -1);
	return (s);
}

#define ck_result(j, word, body) do {					\
	char *want_ = result_text((j), (word), (body));			\
	ck_conn_text(tc, want_);					\
	free(want_);							\
} while (0)

/* j's stored result (or error text), NUL-terminated in a static buffer. */
static const char *
result_of(const struct job *j)
{
	static char	buf[1024];
	uint32_t	n = job_rlen(j);

	ck_assert_uint_lt(n, sizeof buf);
	if (n > 0)
		memcpy(buf, job_result(j), n);
	buf[n] = '\0';
	return (buf);
}

/* The most recent attempt in j's history. */
static const struct attempt *
last_attempt(const struct job *j)
{
	ck_assert_ptr_nonnull(j->x);
	ck_assert_ptr_nonnull(j->x->hist);
	ck_assert_uint_gt(j->x->nhist, 0);
	return (&j->x->hist[(j->x->hist_next + JOB_HIST_MAX - 1) % JOB_HIST_MAX]);
}

/* A job waiting out its backoff: make it due now and let the queue promote it. */
static void
make_due(struct job *j)
{
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(tq->nheap, 1);
	j->run_at = now_us() - 1;
	queue_promote(tq);
}

/* ----- submit ----- */

/*
 * A kick never dispatches at once, however many queues are kicked in one pass (a fixed
 * list of 64 used to fall back to dispatching the rest in place, which let a reload
 * run the requests of producers it unblocked inside itself). Queues whose handler
 * cannot start show it: dispatching them makes their waiting jobs dead.
 */
START_TEST(test_kick_many_queues)
{
	static struct queue	*many[100];
	struct queue_config	 qc = tqc;
	struct job		*jobs[100];
	int			 i;

	qc.workers = 0;
	for (i = 0; i < 100; i++) {
		ck_assert_ptr_nonnull(many[i] = queue_create(&qc));
		many[i]->idx = (uint16_t)i;
		ck_assert_ptr_nonnull(many[i]->failed_reason = strdup("no handler"));
	}
	queues = many;
	nqueues = 100;
	for (i = 0; i < 100; i++) {
		ck_assert_ptr_nonnull(jobs[i] = job_new(many[i], "x", 1));
		dispatch_submit(many[i], jobs[i], NULL);
	}
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(jobs[i]->state, JOB_QUEUED);
	run_pending();
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(jobs[i]->state, JOB_DEAD);
		ck_assert_int_eq(many[i]->dp.kicked, 0);
	}
	queues = qarr;
	nqueues = 1;
	for (i = 0; i < 100; i++)
		queue_free(many[i]);
}
END_TEST

START_TEST(test_submit_ids)
{
	struct job	*a, *b, *d;

	tqc.workers = 0;
	queue_make();
	a = submit("a", 1);
	b = submit("b", 0);
	d = job_new(tq, "d", 1);
	ck_assert_ptr_nonnull(d);
	d->run_at = now_us() + 600000000;
	ck_assert_uint_eq(dispatch_submit(tq, d, tc), b->id + 1);

	ck_assert_uint_gt(a->id, 0);
	ck_assert_uint_eq(b->id, a->id + 1);
	ck_assert_ptr_eq(job_find(a->id), a);
	ck_assert_ptr_eq(job_find(b->id), b);
	ck_assert_ptr_eq(job_find(d->id), d);
	ck_assert_int_eq(a->state, JOB_QUEUED);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	ck_assert_int_eq(d->state, JOB_DELAYED);
	ck_assert_uint_eq(tq->nready, 2);
	ck_assert_uint_eq(tq->nheap, 1);
	ck_assert_ptr_eq(tq->heap[0], d);
	ck_assert_uint_eq(tq->submitted, 3);
	/* The waiter is registered and holds a reference to its connection. */
	ck_assert_ptr_nonnull(a->waiters);
	ck_assert_ptr_eq(a->waiters->conn, tc);
	ck_assert_ptr_null(b->waiters);
	ck_assert_int_eq(tc->refs, 3);
	/* No worker: the kick runs and nothing moves. */
	run_pending();
	ck_assert_int_eq(a->state, JOB_QUEUED);
	ck_assert_uint_eq(tq->running, 0);
	ck_conn_text(tc, "");
}
END_TEST

/* ----- dispatch_queue ----- */

START_TEST(test_dispatch_idle_workers)
{
	struct job	*j[4];
	int		 i;

	queue_make();
	worker_make(0);
	worker_make(1);
	worker_make(2)->life = WORKER_STARTING;	/* no READY yet: gets nothing */
	for (i = 0; i < 4; i++)
		j[i] = submit(i == 0 ? "j0" : i == 1 ? "j1" : i == 2 ? "j2" : "j3", 0);
	/* Nothing is sent before the kick runs. */
	expect_no_frame(0);
	run_pending();
	/* Job times unknown yet: one job per worker, in order. */
	expect_job(0, j[0]);
	expect_no_frame(0);
	expect_job(1, j[1]);
	expect_no_frame(1);
	expect_no_frame(2);
	ck_assert_int_eq(j[0]->state, JOB_RUNNING);
	ck_assert_int_eq(j[1]->state, JOB_RUNNING);
	ck_assert_uint_eq(j[0]->attempts, 1);
	ck_assert_int_eq(j[2]->state, JOB_QUEUED);
	ck_assert_int_eq(j[3]->state, JOB_QUEUED);
	ck_assert_uint_eq(tq->running, 2);
	ck_assert_uint_eq(tq->busy, 2);
	ck_assert_uint_eq(tq->nready, 2);
	ck_assert_uint_eq(tw[0].w->ninflight, 1);
	ck_assert_ptr_eq(TAILQ_FIRST(&tw[0].w->inflight), j[0]);
	ck_assert_uint_eq(tw[0].w->dispatched, 1);
	/* The worker that comes up gets the next one. */
	tw[2].w->life = WORKER_READY;
	dispatch_queue(tq);
	expect_job(2, j[2]);
	ck_assert_uint_eq(tq->busy, 3);
}
END_TEST

START_TEST(test_max_running)
{
	struct job	*a, *b, *c;

	tqc.max_running = 1;
	tqc.batch = 1;		/* one job per worker whatever the measured job time */
	queue_make();
	worker_make(0);
	worker_make(1);
	a = submit("a", 0);
	b = submit("b", 0);
	c = submit("c", 0);
	run_pending();
	expect_job(0, a);
	expect_no_frame(1);
	ck_assert_uint_eq(tq->busy, 1);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	dispatch_queue(tq);
	expect_no_frame(0);
	expect_no_frame(1);
	/* Its result frees the one running slot: the next job goes. */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	ck_assert_uint_eq(tq->busy, 0);
	run_pending();
	expect_job(0, b);
	expect_no_frame(1);
	ck_assert_uint_eq(tq->busy, 1);
	ck_assert_int_eq(c->state, JOB_QUEUED);
}
END_TEST

START_TEST(test_batch)
{
	struct job	*j[10];
	int		 i;

	tqc.batch = 4;
	queue_make();
	worker_make(0);
	/* Short jobs, measured: a deep queue is handed out in batches of `batch`. */
	tq->dp.svc_us = 10;
	for (i = 0; i < 10; i++)
		j[i] = submit("x", 0);
	run_pending();
	for (i = 0; i < 4; i++)
		expect_job(0, j[i]);
	expect_no_frame(0);
	ck_assert_uint_eq(tw[0].w->ninflight, 4);
	ck_assert_uint_eq(tq->running, 4);
	ck_assert_uint_eq(tq->busy, 1);	/* one worker runs one job at a time */
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
	/*
	 * A head that has run far longer than the average gets nothing behind it: what
	 * is sent would wait behind it. (Whether a worker with a short head gets topped
	 * up depends on how long the head has run, so it is not asserted here.)
	 */
	head_result(tw[0].w, FRAME_OK, "x", 1);
	tq->dp.svc_us = 10;
	TAILQ_FIRST(&tw[0].w->inflight)->run_at = now_us() - 10000000;
	dispatch_queue(tq);
	expect_no_frame(0);
	ck_assert_uint_eq(tw[0].w->ninflight, 3);
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
}
END_TEST

START_TEST(test_batch_one)
{
	struct job	*a;
	int		 i;

	tqc.batch = 1;
	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("a", 0);
	for (i = 0; i < 5; i++)
		submit("x", 0);
	run_pending();
	expect_job(0, a);
	expect_no_frame(0);
	ck_assert_uint_eq(tw[0].w->ninflight, 1);
}
END_TEST

START_TEST(test_batch_share)
{
	struct job	*j[3];
	int		 i;

	queue_make();
	worker_make(0);
	worker_make(1);
	tq->dp.svc_us = 10;
	for (i = 0; i < 3; i++)
		j[i] = submit("x", 0);
	/* Never more than a worker's share of the queue: 3 / 2 + 1. */
	run_pending();
	expect_job(0, j[0]);
	expect_job(0, j[1]);
	expect_no_frame(0);
	expect_job(1, j[2]);
	expect_no_frame(1);
}
END_TEST

START_TEST(test_batch_ahead)
{
	struct job	*j[6];
	int		 i;

	queue_make();
	worker_make(0);
	worker_make(1);
	/*
	 * Jobs of 5 ms: the batch is one job's worth, but each worker gets one more to
	 * start as soon as its first ends, once both have their own (the second pass).
	 */
	tq->dp.svc_us = 5000;
	for (i = 0; i < 6; i++)
		j[i] = submit("x", 0);
	run_pending();
	expect_job(0, j[0]);
	expect_job(0, j[2]);
	expect_no_frame(0);
	expect_job(1, j[1]);
	expect_job(1, j[3]);
	expect_no_frame(1);
	ck_assert_uint_eq(tw[0].w->ninflight, 2);
	ck_assert_uint_eq(tw[1].w->ninflight, 2);
	ck_assert_uint_eq(tq->busy, 2);
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
	/* A result: that worker is topped up to two again, no more. */
	head_result(tw[0].w, FRAME_OK, "x", 1);
	tq->dp.svc_us = 5000;
	TAILQ_FIRST(&tw[0].w->inflight)->run_at = now_us();
	dispatch_queue(tq);
	expect_job(0, j[4]);
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert_uint_eq(tw[0].w->ninflight, 2);
	/* A head that has run far longer than the average gets nothing ahead of it. */
	head_result(tw[1].w, FRAME_OK, "x", 1);
	tq->dp.svc_us = 5000;
	TAILQ_FIRST(&tw[1].w->inflight)->run_at = now_us() - 10000000;
	dispatch_queue(tq);
	expect_no_frame(1);
	ck_assert_int_eq(j[5]->state, JOB_QUEUED);
}
END_TEST

START_TEST(test_batch_ahead_not_before_idle)
{
	struct job	*a, *b, *c;

	queue_make();
	worker_make(0);
	worker_make(1);
	tq->dp.svc_us = 5000;
	/* Two jobs, two idle workers: one each, never both to the first. */
	a = submit("a", 0);
	b = submit("b", 0);
	run_pending();
	expect_job(0, a);
	expect_no_frame(0);
	expect_job(1, b);
	expect_no_frame(1);
	/* A third, while both run: not a worker's share yet (1 / 2 + 1), so it waits. */
	c = submit("c", 0);
	run_pending();
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert_int_eq(c->state, JOB_QUEUED);
}
END_TEST

/*
 * No job ahead, one at a time: jobs of 50 ms (a round trip is lost in them), jobs
 * not measured yet, batch = 1, and a rate limit, whatever the job time.
 */
static const struct {
	uint32_t	svc_us, batch, rate;
} no_ahead[] = { { 50000, 64, 0 }, { 0, 64, 0 }, { 5000, 1, 0 }, { 5000, 64, 1000 } };

START_TEST(test_batch_no_ahead)
{
	int	i;

	tqc.batch = no_ahead[_i].batch;
	tqc.rate = no_ahead[_i].rate;
	tqc.burst = 4;
	queue_make();
	worker_make(0);
	tq->dp.svc_us = no_ahead[_i].svc_us;
	for (i = 0; i < 4; i++)
		submit("x", 0);
	run_pending();
	ck_assert_uint_eq(tw[0].w->ninflight, 1);
}
END_TEST

START_TEST(test_rate)
{
	struct job	*a, *b;

	tqc.rate = 1;
	tqc.burst = 1;
	queue_make();
	worker_make(0);
	worker_make(1);
	tq->dp.svc_us = 10;
	a = submit("a", 0);
	b = submit("b", 0);
	submit("c", 0);
	/* One token: one job now, and a timer for the next token. */
	run_pending();
	expect_job(0, a);
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	ck_assert_ptr_nonnull(tq->dp.rate_ev);
	ck_assert(evtimer_pending(tq->dp.rate_ev, NULL));
	/* It comes: the next job goes, one only. */
	run_until(b->state == JOB_RUNNING);
	expect_job(1, b);
	expect_no_frame(0);
	expect_no_frame(1);
}
END_TEST

START_TEST(test_recycle_by_count)
{
	struct job	*a, *b;

	tqc.max_jobs_per_worker = 1;
	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("a", 0);
	b = submit("b", 0);
	run_pending();
	expect_job(0, a);
	expect_no_frame(0);	/* never more than it may run */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	/* It ran its share: retired, its job pipe closed, b waits for a new worker. */
	ck_assert_int_eq(tw[0].w->life, WORKER_STOPPING);
	ck_assert_int_eq(tw[0].w->to_fd, -1);
	ck_assert_int_eq(tw[0].w->leave, WORKER_RETIRED);
	run_pending();
	ck_assert_int_eq(b->state, JOB_QUEUED);
}
END_TEST

/* ----- results ----- */

START_TEST(test_result_done)
{
	struct job	*a, *b;

	queue_make();
	worker_make(0);
	a = submit("hello", 1);
	b = submit("world", 1);
	run_pending();
	expect_job(0, a);
	ck_conn_text(tc, "");
	head_result(tw[0].w, FRAME_OK, "HELLO", 5);
	ck_assert_int_eq(a->state, JOB_DONE);
	ck_assert_str_eq(result_of(a), "HELLO");
	ck_result(a, "ok", "HELLO");
	ck_assert_ptr_null(a->waiters);
	ck_assert_int_eq(tc->refs, 2);		/* b still holds one */
	ck_assert_uint_eq(tq->done, 1);
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_uint_eq(tq->busy, 0);
	ck_assert_uint_eq(tw[0].w->ninflight, 0);
	ck_assert_uint_eq(tw[0].w->jobs_done, 1);
	ck_assert_uint_gt(tq->dp.svc_us, 0);	/* measured now */
	/* A finished job is kept: still found. */
	ck_assert_ptr_eq(job_find(a->id), a);
	/* The worker is idle again: the next job goes to it. */
	run_pending();
	expect_job(0, b);
	head_result(tw[0].w, FRAME_OK, "", 0);
	ck_result(b, "ok", "");
	/* A result with nothing in flight is ignored. */
	head_result(tw[0].w, FRAME_OK, "stray", 5);
	ck_assert_uint_eq(tq->done, 2);
	ck_assert_uint_eq(tw[0].w->jobs_done, 2);
	ck_conn_text(tc, "");
}
END_TEST

/* One job through worker 0 with the log at level: its id. */
static uint64_t
run_one_at(int level)
{
	struct job	*j;

	log_set_level(level);
	j = submit("x", 0);
	run_pending();
	expect_job(0, j);
	head_result(tw[0].w, FRAME_OK, "X", 1);
	ck_assert_int_eq(j->state, JOB_DONE);
	return (j->id);
}

/*
 * A job's start and success are logged only at the debug level: below it, job_change()
 * publishes neither the start nor, to the log, the success (jobpoold.h).
 */
START_TEST(test_log_debug_lines)
{
	char		 dir[] = "/tmp/check_dispatch.XXXXXX", want[128], *s;
	uint64_t	 ida, idb;

	queue_make();
	worker_make(0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	capture_into(dir);
	ida = run_one_at(LOG_INFO);
	idb = run_one_at(LOG_DEBUG);
	log_set_level(LOG_ERR);
	s = capture_read();
	capture_stop();
	ck_assert_int_eq(rmdir(dir), 0);
	snprintf(want, sizeof want, "job %llu: attempt 1 started on worker %ld",
	    (unsigned long long)idb, (long)tw[0].w->pid);
	ck_assert_msg(strstr(s, want) != NULL, "no '%s' in: %s", want, s);
	snprintf(want, sizeof want, "job %llu: attempt 1 succeeded in ",
	    (unsigned long long)idb);
	ck_assert_msg(strstr(s, want) != NULL, "no '%s' in: %s", want, s);
	snprintf(want, sizeof want, "job %llu: attempt", (unsigned long long)ida);
	ck_assert_msg(strstr(s, want) == NULL, "'%s' at the info level: %s", want, s);
	free(s);
}
END_TEST

START_TEST(test_retry_backoff)
{
	struct job	*j;
	uint64_t	 t0, t1;

	tqc.retries = 2;
	queue_make();
	worker_make(0);
	j = submit("p", 1);
	run_pending();
	expect_job(0, j);

	/* Attempt 1 fails: back off base (1000 ms, no jitter), nobody is told. */
	t0 = now_ms();
	head_result(tw[0].w, FRAME_FAILED, "boom1", 5);
	t1 = now_ms();
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(tq->nheap, 1);
	ck_assert_ptr_eq(tq->heap[0], j);
	ck_assert_uint_ge(j->run_at / 1000, t0 + 1000);
	ck_assert_uint_le(j->run_at / 1000, t1 + 1000);
	ck_assert_uint_eq(tq->retried, 1);
	ck_assert_uint_eq(tq->failed, 0);
	ck_assert_uint_eq(j->attempts, 1);
	ck_assert_int_eq(last_attempt(j)->outcome, JOB_FAILED);
	ck_assert_str_eq(last_attempt(j)->err, "boom1");
	ck_assert_uint_eq(last_attempt(j)->n, 1);
	ck_conn_text(tc, "");
	run_pending();
	expect_no_frame(0);		/* not before its time */

	/* Attempt 2 fails: the delay doubles. */
	make_due(j);
	expect_job(0, j);
	ck_assert_uint_eq(j->attempts, 2);
	t0 = now_ms();
	head_result(tw[0].w, FRAME_FAILED, "boom2", 5);
	t1 = now_ms();
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	ck_assert_uint_ge(j->run_at / 1000, t0 + 2000);
	ck_assert_uint_le(j->run_at / 1000, t1 + 2000);
	ck_assert_uint_eq(tq->retried, 2);
	ck_conn_text(tc, "");

	/* Attempt 3 of 3 fails: dead, on the dead list with its last error. */
	make_due(j);
	expect_job(0, j);
	head_result(tw[0].w, FRAME_FAILED, "boom3", 5);
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_uint_eq(j->attempts, 3);
	ck_assert_uint_eq(tq->nheap, 0);
	ck_assert_uint_eq(tq->retried, 2);
	ck_assert_uint_eq(tq->failed, 1);
	ck_assert_uint_eq(tq->ndead, 1);
	ck_assert_uint_eq(job_dead_count(), 1);
	ck_assert_ptr_eq(job_dead_first(), j);
	ck_assert_int_eq(j->x->last_status, JOB_FAILED);
	ck_assert_str_eq(result_of(j), "boom3");
	ck_assert_uint_eq(j->x->nhist, 3);
	ck_result(j, "failed", "boom3");
	ck_assert_ptr_eq(job_find(j->id), j);
}
END_TEST

START_TEST(test_backoff_cap_and_jitter)
{
	struct job	*j;
	uint64_t	 t0, t1;

	tqc.retries = 5;
	tqc.backoff_base_ms = 1000;
	tqc.backoff_max_ms = 1500;
	tqc.backoff_jitter = 0.5;
	queue_make();
	worker_make(0);
	j = submit("p", 0);
	run_pending();
	expect_job(0, j);
	/* Attempt 1: 1000 ms spread by +-50 %. */
	t0 = now_ms();
	head_result(tw[0].w, FRAME_FAILED, "x", 1);
	t1 = now_ms();
	ck_assert_uint_ge(j->run_at / 1000, t0 + 500);
	ck_assert_uint_le(j->run_at / 1000, t1 + 1500);
	/* Attempt 2: 2000 ms, capped at 1500 ms, and the jitter never passes the cap. */
	make_due(j);
	expect_job(0, j);
	t0 = now_ms();
	head_result(tw[0].w, FRAME_FAILED, "x", 1);
	t1 = now_ms();
	ck_assert_uint_ge(j->run_at / 1000, t0 + 750);
	ck_assert_uint_le(j->run_at / 1000, t1 + 1500);
}
END_TEST

START_TEST(test_permanent_failure)
{
	struct job	*j;

	tqc.retries = 3;
	queue_make();
	worker_make(0);
	j = submit("p", 1);
	run_pending();
	expect_job(0, j);
	head_result(tw[0].w, FRAME_PERMANENT, "bad input", 9);
	/* Not retried, whatever retries says. */
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_uint_eq(j->attempts, 1);
	ck_assert_uint_eq(tq->retried, 0);
	ck_assert_uint_eq(tq->nheap, 0);
	ck_assert_uint_eq(tq->ndead, 1);
	ck_assert_ptr_eq(job_dead_first(), j);
	ck_assert_str_eq(result_of(j), "bad input");
	ck_result(j, "failed", "bad input");
}
END_TEST

START_TEST(test_no_retry_while_stopping)
{
	struct job	*j;

	queue_make();
	worker_make(0);
	j = submit("p", 1);
	run_pending();
	expect_job(0, j);
	/* At shutdown a failed attempt is final: nothing would run the retry. */
	master_stopping = 1;
	head_result(tw[0].w, FRAME_FAILED, "late", 4);
	master_stopping = 0;
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_result(j, "failed", "late");
}
END_TEST

/* ----- RETRY ----- */

START_TEST(test_retry_dead)
{
	struct job	*j, *k;
	const char	*why;

	queue_make();
	worker_make(0);
	j = submit("p", 0);
	k = submit("k", 0);
	run_pending();
	expect_job(0, j);
	head_result(tw[0].w, FRAME_PERMANENT, "no", 2);
	ck_assert_int_eq(j->state, JOB_DEAD);
	run_pending();
	expect_job(0, k);		/* k runs now: not dead */

	ck_assert_int_eq(dispatch_retry(k, &why), -1);
	ck_assert_str_eq(why, "is not dead");

	/* Not while stopping, not on a removed queue. */
	master_stopping = 1;
	ck_assert_int_eq(dispatch_retry(j, &why), -1);
	ck_assert_str_eq(why, "cannot be retried: the daemon is shutting down");
	master_stopping = 0;
	tq->removed = 1;
	ck_assert_int_eq(dispatch_retry(j, &why), -1);
	ck_assert_str_eq(why, "cannot be retried: a reload removed its queue");
	tq->removed = 0;
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_uint_eq(job_dead_count(), 1);

	/* Back in the queue with fresh attempts. */
	head_result(tw[0].w, FRAME_OK, "k", 1);	/* the worker is idle again */
	ck_assert_int_eq(dispatch_retry(j, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_uint_eq(job_dead_count(), 0);
	ck_assert_ptr_null(job_dead_first());
	ck_assert_uint_eq(tq->ndead, 0);
	ck_assert_uint_eq(job_crashes(j), 0);
	/* An idle worker takes it at once, as attempt 1. */
	expect_job(0, j);
	ck_assert_int_eq(j->state, JOB_RUNNING);
	ck_assert_uint_eq(j->attempts, 1);
	head_result(tw[0].w, FRAME_OK, "yes", 3);
	ck_assert_int_eq(j->state, JOB_DONE);
	ck_assert_str_eq(result_of(j), "yes");
}
END_TEST

START_TEST(test_retry_dead_queued)
{
	struct job	*j;
	const char	*why;

	queue_make();
	worker_make(0);
	j = submit("p", 0);
	run_pending();
	expect_job(0, j);
	head_result(tw[0].w, FRAME_PERMANENT, "no", 2);
	/* No worker ready: it waits in the queue. */
	tw[0].w->life = WORKER_STARTING;
	ck_assert_int_eq(dispatch_retry(j, &why), 0);
	ck_assert_int_eq(j->state, JOB_QUEUED);
	ck_assert_uint_eq(j->attempts, 0);
	ck_assert_uint_eq(tq->nready, 1);
}
END_TEST

/* ----- cancellation ----- */

START_TEST(test_cancel_waiting_job)
{
	struct job	*q, *d, *r, *done;
	const char	*why;

	queue_make();
	q = submit("queued", 1);
	d = job_new(tq, "delayed", 7);
	d->run_at = now_us() + 600000000;
	dispatch_submit(tq, d, tc);
	ck_assert_int_eq(d->state, JOB_DELAYED);

	/* Queued: removed and answered at once. */
	ck_assert_int_eq(dispatch_cancel(q, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_int_eq(q->state, JOB_CANCELLED);
	ck_assert_str_eq(result_of(q), "cancelled");
	ck_result(q, "cancelled", "cancelled");
	ck_assert_uint_eq(tq->nready, 0);
	ck_assert_uint_eq(tq->bytes, 7);
	/* Delayed: out of the heap. */
	ck_assert_int_eq(dispatch_cancel(d, &why), 0);
	ck_assert_int_eq(d->state, JOB_CANCELLED);
	ck_result(d, "cancelled", "cancelled");
	ck_assert_uint_eq(tq->nheap, 0);
	ck_assert_uint_eq(tq->bytes, 0);
	ck_assert_uint_eq(tq->cancelled, 2);

	/* Waiting to be retried: the same. */
	worker_make(0);
	r = submit("retry", 1);
	run_pending();
	expect_job(0, r);
	head_result(tw[0].w, FRAME_FAILED, "x", 1);
	ck_assert_int_eq(r->state, JOB_RETRY_WAIT);
	ck_assert_int_eq(dispatch_cancel(r, &why), 0);
	ck_assert_int_eq(r->state, JOB_CANCELLED);
	ck_assert_uint_eq(tq->nheap, 0);
	ck_result(r, "cancelled", "cancelled");

	/* Finished jobs cannot be cancelled. */
	ck_assert_int_eq(dispatch_cancel(q, &why), -1);
	ck_assert_str_eq(why, "has finished");
	done = submit("done", 0);
	run_pending();
	expect_job(0, done);
	head_result(tw[0].w, FRAME_OK, "ok", 2);
	ck_assert_int_eq(dispatch_cancel(done, &why), -1);
	ck_assert_str_eq(why, "has finished");
	ck_assert_int_eq(done->state, JOB_DONE);
}
END_TEST

START_TEST(test_cancel_dead)
{
	struct job	*j;
	const char	*why;

	queue_make();
	worker_make(0);
	j = submit("p", 0);
	run_pending();
	expect_job(0, j);
	head_result(tw[0].w, FRAME_PERMANENT, "no", 2);
	ck_assert_int_eq(dispatch_cancel(j, &why), -1);
	ck_assert_str_eq(why, "is dead (out of attempts); RETRY it, or leave it");
	ck_assert_int_eq(j->state, JOB_DEAD);
}
END_TEST

START_TEST(test_cancel_running)
{
	struct job	*a, *b;
	const char	*why;

	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("a", 1);
	b = submit("b", 1);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);		/* batched behind a */

	/* Running: the worker is told with a CANCEL frame, then SIGUSR1. */
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	ck_assert_ptr_null(why);
	expect_cancel(0, a, FRAME_CANCEL_USER);
	ck_assert(dummy_got_usr1());
	ck_assert_int_eq(a->cancel, JOB_CANCEL_USER);
	ck_assert_int_eq(a->state, JOB_RUNNING);
	/* The grace timer for the head runs. */
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, a->id), 0);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	ck_conn_text(tc, "");
	/* Once is enough. */
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	expect_no_frame(0);
	/* A job batched behind the head is cancelled the same way. */
	ck_assert_int_eq(dispatch_cancel(b, &why), 1);
	expect_cancel(0, b, FRAME_CANCEL_USER);
	ck_assert(dummy_got_usr1());
	/* It waits in line: its grace starts when it does. */
	ck_assert_uint_eq(dispatch_stop_until(tw[0].w, b->id), 0);
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, a->id), 0);

	/* The worker answers with what its handler said. */
	head_result(tw[0].w, FRAME_CANCELLED, "stopped; cleanup ran (1 hook)", 29);
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_int_eq(a->cancel, 0);
	ck_assert_str_eq(result_of(a), "cancelled while running: stopped; cleanup ran "
	    "(1 hook)");
	ck_result(a, "cancelled", "cancelled while running: stopped; cleanup ran (1 hook)");
	ck_assert_uint_eq(tq->cancelled, 1);
	/* b is the head now, being cancelled: its grace period runs. */
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, b->id), 0);
	ck_assert_uint_eq(dispatch_stop_until(tw[0].w, a->id), 0);
	head_result(tw[0].w, FRAME_CANCELLED, "not started", 11);
	ck_assert_int_eq(b->state, JOB_CANCELLED);
	ck_assert_uint_eq(tq->cancelled, 2);
	ck_result(b, "cancelled", "cancelled while running: not started");
	ck_assert(!evtimer_pending(tw[0].w->tev, NULL));
}
END_TEST

START_TEST(test_cancel_running_unknown_worker)
{
	struct job	*j;
	const char	*why;

	queue_make();
	j = submit("p", 0);
	/* A running job that no worker holds: a broken invariant, refused. */
	ck_assert_ptr_eq(queue_pop(tq), j);
	j->state = JOB_RUNNING;
	ck_assert_int_eq(dispatch_cancel(j, &why), -1);
	ck_assert_str_eq(why, "is running on no known worker");
	job_table_remove(j);
	job_free(j);
}
END_TEST

START_TEST(test_timeout)
{
	struct job	*j;

	tqc.retries = 0;
	queue_make();
	worker_make(0);
	j = job_new(tq, "slow", 4);
	j->timeout_ms = 20;
	dispatch_submit(tq, j, tc);
	run_pending();
	expect_job(0, j);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	/* Past its timeout the worker is asked to stop it, with reason TIMEOUT. */
	run_until(j->cancel != 0);
	expect_cancel(0, j, FRAME_CANCEL_TIMEOUT);
	ck_assert(dummy_got_usr1());
	ck_assert_int_eq(j->cancel, JOB_CANCEL_TIMEOUT);
	/* Then its grace period. */
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, j->id), 0);
	head_result(tw[0].w, FRAME_CANCELLED, "stopped", 7);
	/* No retries: dead, and its waiter hears "timeout". */
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_int_eq(j->x->last_status, JOB_TIMEOUT);
	ck_assert_str_eq(result_of(j), "timed out after 20 ms; stopped");
	ck_assert_int_eq(last_attempt(j)->outcome, JOB_TIMEOUT);
	ck_result(j, "timeout", "timed out after 20 ms; stopped");
}
END_TEST

START_TEST(test_grace_kill)
{
	struct job	*j;
	const char	*why;
	char		 want[256];
	int		 st;

	tqc.grace_ms = 0;
	queue_make();
	worker_make(0);
	j = submit("stuck", 0);
	run_pending();
	expect_job(0, j);
	ck_assert_int_eq(dispatch_cancel(j, &why), 1);
	expect_cancel(0, j, FRAME_CANCEL_USER);
	/* The handler does not stop: after grace (0) plus a second to report, KILL. */
	run_until(tw[0].w->leave == WORKER_KILLED);
	ck_assert_int_eq(waitpid(dummy, &st, 0), dummy);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
	dummy = -1;
	/* The worker's death then finishes it (supervisor.c calls this). */
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 9 (Killed)");
	ck_assert_int_eq(j->state, JOB_CANCELLED);
	snprintf(want, sizeof want, "cancelled while running: the handler did not stop "
	    "within the grace period (0 ms); worker %ld was killed, cleanup did not "
	    "finish", (long)tw[0].w->pid);
	ck_assert_str_eq(result_of(j), want);
}
END_TEST

/* ----- a worker of several slots (an IO handler's) ----- */

/* A worker whose READY said it runs n jobs at once. */
static struct worker *
worker_make_slots(int i, uint32_t n)
{
	struct worker	*w = worker_make(i);

	w->slots = n;
	return (w);
}

START_TEST(test_slots_dispatch)
{
	struct job	*j[5];
	int		 i;

	queue_make();
	worker_make_slots(0, 3);
	for (i = 0; i < 5; i++)
		j[i] = submit("x", 0);
	run_pending();
	/* As many as it runs at once, all started now, whatever the service time. */
	for (i = 0; i < 3; i++) {
		expect_job(0, j[i]);
		ck_assert_int_eq(j[i]->state, JOB_RUNNING);
		ck_assert(supervisor_running(tw[0].w, j[i]));
	}
	expect_no_frame(0);
	ck_assert_uint_eq(tw[0].w->ninflight, 3);
	ck_assert_uint_eq(tq->running, 3);
	ck_assert_uint_eq(tq->busy, 1);
	ck_assert_int_eq(j[3]->state, JOB_QUEUED);
	/* One ends: one more is sent, and starts at once. */
	dispatch_result(tw[0].w, j[1]->id, FRAME_OK, 0, "b", 1);
	run_pending();
	expect_job(0, j[3]);
	expect_no_frame(0);
	ck_assert(supervisor_running(tw[0].w, j[3]));
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
}
END_TEST

/* max_running counts a several-slot worker's jobs, not the worker. */
START_TEST(test_slots_max_running)
{
	struct job	*j[4];
	int		 i;

	tqc.max_running = 2;
	queue_make();
	worker_make_slots(0, 3);
	for (i = 0; i < 4; i++)
		j[i] = submit("x", 0);
	run_pending();
	expect_job(0, j[0]);
	expect_job(0, j[1]);
	expect_no_frame(0);
	ck_assert_uint_eq(tq->running, 2);
	dispatch_result(tw[0].w, j[0]->id, FRAME_OK, 0, "a", 1);
	run_pending();
	expect_job(0, j[2]);
	expect_no_frame(0);
	ck_assert_int_eq(j[3]->state, JOB_QUEUED);
}
END_TEST

/* Results name their jobs and may come in any order; each job gets its own. */
START_TEST(test_slots_out_of_order)
{
	struct job	*a, *b, *c;

	queue_make();
	worker_make_slots(0, 3);
	a = submit("a", 1);
	b = submit("b", 1);
	c = submit("c", 1);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	expect_job(0, c);
	dispatch_result(tw[0].w, c->id, FRAME_OK, 0, "C", 1);
	ck_assert_int_eq(c->state, JOB_DONE);
	ck_assert_str_eq(result_of(c), "C");
	ck_assert_int_eq(a->state, JOB_RUNNING);
	ck_assert_int_eq(b->state, JOB_RUNNING);
	ck_result(c, "ok", "C");
	dispatch_result(tw[0].w, a->id, FRAME_PERMANENT, 0, "bad a", 5);
	ck_assert_int_eq(a->state, JOB_DEAD);
	ck_assert_str_eq(result_of(a), "bad a");
	ck_assert_int_eq(b->state, JOB_RUNNING);
	ck_result(a, "failed", "bad a");
	/* A result for a job it does not run changes nothing. */
	dispatch_result(tw[0].w, a->id, FRAME_OK, 0, "again", 5);
	ck_assert_str_eq(result_of(a), "bad a");
	ck_assert_uint_eq(tw[0].w->ninflight, 1);
	dispatch_result(tw[0].w, b->id, FRAME_OK, 0, "B", 1);
	ck_assert_int_eq(b->state, JOB_DONE);
	ck_result(b, "ok", "B");
	ck_assert_uint_eq(tw[0].w->ninflight, 0);
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_uint_eq(tq->busy, 0);
	ck_assert_uint_eq(tw[0].w->jobs_done, 3);
}
END_TEST

/* Each running job has its own timeout: the one past it is stopped, alone. */
START_TEST(test_slots_timeouts)
{
	struct job	*a, *b, *c;

	tqc.retries = 0;
	queue_make();
	worker_make_slots(0, 3);
	a = job_new(tq, "a", 1);
	a->timeout_ms = 30;
	dispatch_submit(tq, a, NULL);
	b = submit("b", 0);		/* no timeout */
	c = job_new(tq, "c", 1);
	c->timeout_ms = 400;
	dispatch_submit(tq, c, NULL);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	expect_job(0, c);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	run_until(a->cancel != 0);
	expect_cancel(0, a, FRAME_CANCEL_TIMEOUT);
	expect_no_frame(0);
	ck_assert(dummy_got_usr1());
	ck_assert_int_eq(b->cancel, 0);
	ck_assert_int_eq(c->cancel, 0);
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, a->id), 0);
	/* Its handler drops it; the others run on. */
	dispatch_result(tw[0].w, a->id, FRAME_CANCELLED, 0, "dropped", 7);
	ck_assert_int_eq(a->state, JOB_DEAD);
	ck_assert_str_eq(result_of(a), "timed out after 30 ms; dropped");
	ck_assert_uint_eq(dispatch_stop_until(tw[0].w, a->id), 0);
	ck_assert_int_eq(b->state, JOB_RUNNING);
	ck_assert_int_eq(c->state, JOB_RUNNING);
	/* c's own timeout comes later, counted from its own start. */
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	run_until(c->cancel != 0);
	expect_cancel(0, c, FRAME_CANCEL_TIMEOUT);
	expect_no_frame(0);
	ck_assert_int_eq(b->cancel, 0);
	dispatch_result(tw[0].w, b->id, FRAME_OK, 0, "B", 1);
	ck_assert_int_eq(b->state, JOB_DONE);
	dispatch_result(tw[0].w, c->id, FRAME_CANCELLED, 0, "dropped", 7);
	ck_assert_str_eq(result_of(c), "timed out after 400 ms; dropped");
	ck_assert(!evtimer_pending(tw[0].w->tev, NULL));
	ck_assert_int_eq(tw[0].w->leave, WORKER_STAYS);
}
END_TEST

/* A CANCEL of one of several running stops that one; the worker and the rest go on. */
START_TEST(test_slots_cancel_one)
{
	struct job	*a, *b, *c;
	const char	*why;

	queue_make();
	worker_make_slots(0, 3);
	a = submit("a", 0);
	b = submit("b", 1);
	c = submit("c", 0);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	expect_job(0, c);
	ck_assert_int_eq(dispatch_cancel(b, &why), 1);
	expect_cancel(0, b, FRAME_CANCEL_USER);
	expect_no_frame(0);
	ck_assert(dummy_got_usr1());
	/* Its grace runs, the others' do not. */
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, b->id), 0);
	ck_assert_uint_eq(dispatch_stop_until(tw[0].w, a->id), 0);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	dispatch_result(tw[0].w, b->id, FRAME_CANCELLED, 0, "stopped: the handler "
	    "dropped it", 31);
	ck_assert_int_eq(b->state, JOB_CANCELLED);
	ck_result(b, "cancelled", "cancelled while running: stopped: the handler "
	    "dropped it");
	ck_assert(!evtimer_pending(tw[0].w->tev, NULL));
	ck_assert_int_eq(a->state, JOB_RUNNING);
	ck_assert_int_eq(c->state, JOB_RUNNING);
	dispatch_result(tw[0].w, a->id, FRAME_OK, 0, "A", 1);
	dispatch_result(tw[0].w, c->id, FRAME_OK, 0, "C", 1);
	ck_assert_int_eq(a->state, JOB_DONE);
	ck_assert_int_eq(c->state, JOB_DONE);
	ck_assert_int_eq(tw[0].w->leave, WORKER_STAYS);
}
END_TEST

/* One that does not stop gets the worker killed; the others ran: an attempt each. */
START_TEST(test_slots_grace_kill)
{
	struct job	*a, *b;
	const char	*why;
	char		 want[256];
	int		 st;

	tqc.grace_ms = 0;
	queue_make();
	worker_make_slots(0, 3);
	a = submit("a", 0);
	b = submit("b", 0);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	run_until(tw[0].w->leave == WORKER_KILLED);
	ck_assert_uint_eq(tw[0].w->killed_for, a->id);
	ck_assert_int_eq(waitpid(dummy, &st, 0), dummy);
	dummy = -1;
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 9 (Killed)");
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_int_eq(b->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(b->attempts, 1);
	ck_assert_uint_eq(job_crashes(b), 0);	/* not its fault: no step to poison */
	snprintf(want, sizeof want, "worker %ld was killed because job %llu would not "
	    "stop (grace 0 ms)", (long)tw[0].w->pid, (unsigned long long)a->id);
	ck_assert_str_eq(last_attempt(b)->err, want);
}
END_TEST

/* A several-slot worker that dies: each running job counts an attempt, the rest wait. */
START_TEST(test_slots_lost)
{
	struct job	*j[3];
	int		 i;

	tqc.retries = 1;
	queue_make();
	worker_make_slots(0, 2);
	for (i = 0; i < 3; i++)
		j[i] = submit("x", 0);
	run_pending();
	expect_job(0, j[0]);
	expect_job(0, j[1]);
	/* A job sent beyond its free slots (as a batch may be) waits in line. */
	ck_assert_ptr_eq(queue_pop(tq), j[2]);
	j[2]->attempts++;
	j[2]->state = JOB_RUNNING;
	supervisor_send(tw[0].w, j[2]);
	ck_assert(!supervisor_running(tw[0].w, j[2]));
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 11 (Segmentation fault)");
	ck_assert_uint_eq(tq->running, 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(j[i]->state, JOB_RETRY_WAIT);
		ck_assert_uint_eq(j[i]->attempts, 1);
		ck_assert_uint_eq(job_crashes(j[i]), 1);
	}
	ck_assert_int_eq(j[2]->state, JOB_QUEUED);
	ck_assert_uint_eq(j[2]->attempts, 0);
}
END_TEST

/* A failure that says Retry-After (the frame's flags) waits at least that long. */
START_TEST(test_retry_after)
{
	struct job	*j;
	uint64_t	 t0, t1;

	tqc.retries = 2;
	queue_make();
	worker_make_slots(0, 4);
	j = submit("p", 0);
	run_pending();
	expect_job(0, j);
	t0 = now_ms();
	dispatch_result(tw[0].w, j->id, FRAME_FAILED, 120, "HTTP 503", 8);
	t1 = now_ms();
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	/* Not the backoff's 1 s: the server's 120 s. */
	ck_assert_uint_ge(j->run_at / 1000, t0 + 120000);
	ck_assert_uint_le(j->run_at / 1000, t1 + 120000);
	/* A shorter one than the backoff leaves the backoff. */
	make_due(j);
	expect_job(0, j);
	t0 = now_ms();
	dispatch_result(tw[0].w, j->id, FRAME_FAILED, 1, "HTTP 429", 8);
	t1 = now_ms();
	ck_assert_uint_ge(j->run_at / 1000, t0 + 2000);
	ck_assert_uint_le(j->run_at / 1000, t1 + 2000);
	/* A permanent failure ignores it: dead at once. */
	make_due(j);
	expect_job(0, j);
	dispatch_result(tw[0].w, j->id, FRAME_PERMANENT, 60, "HTTP 404", 8);
	ck_assert_int_eq(j->state, JOB_DEAD);
}
END_TEST

/* FRAME_HTTP before a RESULT: the job keeps its response's status, for STATUS. */
START_TEST(test_http_status)
{
	struct job	*a, *b, *c;
	char		 meta[8 + 40];
	uint64_t	 blen = 1;

	tqc.retries = 0;
	queue_make();
	worker_make_slots(0, 4);
	a = submit("a", 0);
	b = submit("b", 0);
	c = submit("c", 0);
	run_pending();
	/* The worker's meta: the body's length, then a content type, blanks dropped. */
	memcpy(meta, &blen, sizeof blen);
	memcpy(meta + 8, "text/plain; charset=utf-8\n", 26);
	dispatch_worker_cb.http_status(tw[0].w, a->id, 201, meta, 8 + 26);
	dispatch_result(tw[0].w, a->id, FRAME_OK, 0, "A", 1);
	ck_assert_int_eq(a->state, JOB_DONE);
	ck_assert_uint_eq(a->x->http_status, 201);
	ck_assert_ptr_null(a->x->hist);		/* a success makes no history */
	ck_assert_str_eq(job_http_meta(a),
	    " content_type=text/plain;charset=utf-8 content_length=1");
	ck_assert_uint_eq(a->x->rlen, 1);	/* after the result, not in it */
	ck_assert_mem_eq(a->x->result, "A", 1);
	dispatch_worker_cb.http_status(tw[0].w, b->id, 404, meta, 8);
	dispatch_result(tw[0].w, b->id, FRAME_PERMANENT, 0, "HTTP 404", 8);
	ck_assert_int_eq(b->state, JOB_DEAD);
	ck_assert_uint_eq(b->x->http_status, 404);
	ck_assert_str_eq(job_http_meta(b), "");	/* a success's only */
	/* Said for another job than the one answered: not c's. */
	dispatch_worker_cb.http_status(tw[0].w, a->id, 500, meta, 8);
	dispatch_result(tw[0].w, c->id, FRAME_OK, 0, "C", 1);
	ck_assert_uint_eq(c->x->http_status, 0);
	ck_assert_str_eq(job_http_meta(c), "");
}
END_TEST

/* ----- a worker lost ----- */

START_TEST(test_worker_lost_requeue)
{
	struct job	*j[4], *p;
	char		 want[128];
	int		 i;

	tqc.batch = 3;
	tqc.retries = 1;
	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	for (i = 0; i < 4; i++)
		j[i] = submit(i == 0 ? "A" : i == 1 ? "B" : i == 2 ? "C" : "D", 0);
	run_pending();
	for (i = 0; i < 3; i++)
		expect_job(0, j[i]);
	ck_assert_int_eq(j[3]->state, JOB_QUEUED);

	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 9 (Killed)");
	ck_assert_uint_eq(tw[0].w->ninflight, 0);
	ck_assert(TAILQ_EMPTY(&tw[0].w->inflight));
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_uint_eq(tq->busy, 0);
	/* The head was running: a failed attempt, retried after its backoff. */
	ck_assert_int_eq(j[0]->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(job_crashes(j[0]), 1);
	ck_assert_uint_eq(j[0]->attempts, 1);
	snprintf(want, sizeof want, "worker %ld died while running it: killed by signal 9 "
	    "(Killed)", (long)dummy);
	ck_assert_str_eq(last_attempt(j[0])->err, want);
	ck_assert_uint_eq(tq->retried, 1);
	/* The ones behind it never started: back first in line, in order, unspent. */
	ck_assert_uint_eq(tq->nready, 3);
	for (i = 1; i < 4; i++) {
		ck_assert_int_eq(j[i]->state, JOB_QUEUED);
		ck_assert_uint_eq(j[i]->attempts, 0);
		ck_assert_ptr_null(j[i]->x);
		p = queue_pop(tq);
		ck_assert_ptr_eq(p, j[i]);
		job_table_remove(p);
		job_free(p);
	}
}
END_TEST

START_TEST(test_worker_lost_out_of_attempts)
{
	struct job	*j;
	char		 want[128];

	tqc.retries = 0;
	queue_make();
	worker_make(0);
	j = submit("A", 1);
	run_pending();
	expect_job(0, j);
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "exit status 3");
	ck_assert_int_eq(j->state, JOB_DEAD);
	snprintf(want, sizeof want, "worker %ld died while running it: exit status 3",
	    (long)dummy);
	ck_assert_str_eq(result_of(j), want);
	ck_result(j, "failed", want);
	ck_assert_uint_eq(tq->poisoned, 0);
	ck_assert_ptr_eq(job_dead_first(), j);
}
END_TEST

START_TEST(test_poison)
{
	struct job	*j;
	char		 want[256];

	tqc.retries = 5;
	tqc.poison_after = 2;
	queue_make();
	worker_make(0);
	worker_make(1);
	j = submit("P", 1);
	run_pending();
	expect_job(0, j);
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 11 (Segmentation fault)");
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(job_crashes(j), 1);
	/* It kills a second worker in a row: poison, dead with retries left. */
	make_due(j);
	expect_job(1, j);
	tw[1].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[1].w, "killed by signal 11 (Segmentation fault)");
	ck_assert_int_eq(j->state, JOB_DEAD);
	ck_assert_uint_eq(j->attempts, 2);
	ck_assert_uint_eq(tq->poisoned, 1);
	ck_assert_uint_eq(tq->ndead, 1);
	snprintf(want, sizeof want, "poison job: it killed 2 workers in a row; last: "
	    "worker %ld died while running it: killed by signal 11 (Segmentation fault)",
	    (long)dummy);
	ck_assert_str_eq(result_of(j), want);
	ck_result(j, "failed", want);
}
END_TEST

START_TEST(test_poison_in_a_row)
{
	struct job	*j;

	tqc.retries = 5;
	tqc.poison_after = 2;
	queue_make();
	worker_make(0);
	worker_make(1);
	j = submit("P", 0);
	run_pending();
	expect_job(0, j);
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "crash");
	ck_assert_uint_eq(job_crashes(j), 1);
	/* An attempt that fails without killing its worker breaks the row. */
	make_due(j);
	expect_job(1, j);
	head_result(tw[1].w, FRAME_FAILED, "plain failure", 13);
	ck_assert_uint_eq(job_crashes(j), 0);
	make_due(j);
	expect_job(1, j);
	tw[1].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[1].w, "crash");
	ck_assert_int_eq(j->state, JOB_RETRY_WAIT);
	ck_assert_uint_eq(job_crashes(j), 1);
	ck_assert_uint_eq(tq->poisoned, 0);
}
END_TEST

START_TEST(test_worker_lost_after_retire)
{
	struct job	*a, *b;

	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("A", 0);
	b = submit("B", 0);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	/* It said it would run nothing more (RSS recycling): nothing it held started. */
	tw[0].w->leave = WORKER_SAID_RETIRE;
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "exit status 0");
	ck_assert_int_eq(a->state, JOB_QUEUED);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	ck_assert_uint_eq(a->attempts, 0);
	ck_assert_uint_eq(job_crashes(a), 0);
	ck_assert_ptr_null(a->x);
	ck_assert_uint_eq(tq->retried, 0);
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_uint_eq(tq->busy, 0);
	ck_assert_ptr_eq(queue_pop(tq), a);
	ck_assert_ptr_eq(queue_pop(tq), b);
	job_table_remove(a);
	job_free(a);
	job_table_remove(b);
	job_free(b);
}
END_TEST

START_TEST(test_worker_lost_cancelled)
{
	struct job	*a, *b;
	const char	*why;

	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("A", 1);
	b = submit("B", 1);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	ck_assert_int_eq(dispatch_cancel(b, &why), 1);
	tw[0].w->life = WORKER_GONE;
	tw[0].w->killed_for = a->id;	/* as dispatch_timer does after the grace */
	dispatch_worker_lost(tw[0].w, "killed by signal 9 (Killed)");
	/* Both are answered as cancelled, saying whether they had started. */
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_int_eq(b->state, JOB_CANCELLED);
	ck_assert_str_eq(result_of(b), "cancelled before it started");
	ck_assert_ptr_nonnull(strstr(result_of(a), "did not stop within the grace "
	    "period (60000 ms)"));
	ck_assert_uint_eq(tq->cancelled, 2);
	ck_assert_uint_eq(tq->retried, 0);
	ck_assert_uint_eq(job_dead_count(), 0);
}
END_TEST

/* A worker that dies by itself while its job is being cancelled is not "killed". */
START_TEST(test_worker_died_during_cancel)
{
	struct job	*a;
	const char	*why;

	queue_make();
	worker_make(0);
	a = submit("A", 1);
	run_pending();
	expect_job(0, a);
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 6 (Aborted)");
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_ptr_nonnull(strstr(result_of(a), "died before cleanup finished: "
	    "killed by signal 6 (Aborted)"));
	ck_assert_ptr_null(strstr(result_of(a), "grace"));
}
END_TEST

/* A user cancel while a timed-out job is being stopped makes the end final. */
START_TEST(test_cancel_during_timeout_grace)
{
	struct job	*a;
	const char	*why;

	queue_make();
	worker_make(0);
	a = submit("A", 1);
	run_pending();
	expect_job(0, a);
	a->cancel = JOB_CANCEL_TIMEOUT;	/* as dispatch_timer leaves it */
	ck_assert_int_eq(dispatch_cancel(a, &why), 1);
	ck_assert_int_eq(a->cancel, JOB_CANCEL_USER);
	head_result(tw[0].w, FRAME_CANCELLED, "stopped", 7);
	ck_assert_int_eq(a->state, JOB_CANCELLED);
	ck_assert_uint_eq(tq->retried, 0);
}
END_TEST

START_TEST(test_worker_lost_while_stopping)
{
	struct job	*a, *b;

	queue_make();
	worker_make(0);
	tq->dp.svc_us = 10;
	a = submit("A", 0);
	b = submit("B", 1);
	run_pending();
	expect_job(0, a);
	expect_job(0, b);
	master_stopping = 1;
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 15 (Terminated)");
	master_stopping = 0;
	/* Nothing will run them now: the unstarted one is answered, the head is final. */
	ck_assert_int_eq(b->state, JOB_CANCELLED);
	ck_assert_str_eq(result_of(b), "daemon stopped before the job ran");
	ck_result(b, "cancelled", "daemon stopped before the job ran");
	ck_assert_int_eq(a->state, JOB_DEAD);
}
END_TEST

/* ----- shutdown ----- */

START_TEST(test_cancel_waiting)
{
	static const char reason[] = "daemon is shutting down";
	struct job	*run, *q1, *q2, *d, *r;
	char		*got, *p;
	int		 n;

	queue_make();
	worker_make(0);
	r = submit("r", 1);
	run_pending();
	expect_job(0, r);
	head_result(tw[0].w, FRAME_FAILED, "x", 1);
	ck_assert_int_eq(r->state, JOB_RETRY_WAIT);
	run = submit("run", 1);
	run_pending();
	expect_job(0, run);
	q1 = submit("q1", 1);
	q2 = submit("q2", 0);
	d = job_new(tq, "d", 1);
	d->run_at = now_us() + 600000000;
	dispatch_submit(tq, d, tc);

	dispatch_cancel_waiting(reason);
	ck_assert_uint_eq(queue_depth(tq), 0);
	ck_assert_uint_eq(tq->bytes, 0);
	ck_assert_int_eq(q1->state, JOB_CANCELLED);
	ck_assert_int_eq(q2->state, JOB_CANCELLED);
	ck_assert_int_eq(d->state, JOB_CANCELLED);
	ck_assert_int_eq(r->state, JOB_CANCELLED);
	ck_assert_str_eq(result_of(q1), reason);
	ck_assert_str_eq(result_of(d), reason);
	ck_assert_uint_eq(tq->cancelled, 4);
	/* The running job is left to finish. */
	ck_assert_int_eq(run->state, JOB_RUNNING);
	/* Every waiter got its answer: q1, d and r (q2 had none). */
	got = conn_text(tc);
	for (n = 0, p = got; (p = strstr(p, " cancelled 23\ndaemon is shutting down\n")) !=
	    NULL; p++)
		n++;
	ck_assert_int_eq(n, 3);
	free(got);
	ck_assert_int_eq(tc->refs, 2);		/* run's waiter */
}
END_TEST

START_TEST(test_cancel_running_all)
{
	struct job	*a, *b;

	queue_make();
	worker_make(0);
	worker_make(1);
	a = submit("a", 0);
	b = submit("b", 0);
	run_pending();
	expect_job(0, a);
	expect_job(1, b);
	/* The longest grace involved, plus a second to report. */
	ck_assert_uint_eq(dispatch_cancel_running(), 60000 + 1000);
	expect_cancel(0, a, FRAME_CANCEL_USER);
	expect_cancel(1, b, FRAME_CANCEL_USER);
	ck_assert_int_eq(a->cancel, JOB_CANCEL_SHUTDOWN);
	ck_assert_int_eq(b->cancel, JOB_CANCEL_SHUTDOWN);
}
END_TEST

/* ----- keys (keys.c): the per-key limits beside the queue's ----- */

/* A new job with key k submitted to tq, not yet dispatched. */
static struct job *
submit_key(const char *data, const char *k)
{
	struct job	*j = job_new_key(tq, data, strlen(data), k, strlen(k));

	ck_assert_ptr_nonnull(j);
	ck_assert_uint_eq(dispatch_submit(tq, j, NULL), j->id);
	return (j);
}

/* tq from tqc, one job per worker at a time, with n ready workers. */
static void
keys_queue_make(int n)
{
	int	i;

	tqc.batch = 1;
	queue_make();
	for (i = 0; i < n; i++)
		worker_make(i);
}

static int
job_parked(struct job *j)
{
	return (j->haskey && (*job_key_flags(j) & JOB_KEY_PARKED) != 0);
}

/* The key is stored after the payload, in the job's own allocation. */
START_TEST(test_keys_stored)
{
	struct job	*j, *u;
	const char	*k;
	size_t		 n;

	queue_make();
	j = submit_key("payload", "example.org");
	u = submit("plain", 0);
	k = job_key(j, &n);
	ck_assert_uint_eq(n, 11);
	ck_assert_int_eq(memcmp(k, "example.org", 11), 0);
	ck_assert_int_eq(memcmp(j->data, "payload", 7), 0);
	ck_assert_ptr_null(job_key(u, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(u->haskey, 0);
	/* Longer than JOB_KEY_MAX: refused. */
	ck_assert_ptr_null(job_new_key(tq, "x", 1, "k", JOB_KEY_MAX + 1));
}
END_TEST

/*
 * max_running_per_key = 1 over 3 workers: the second job of key a is parked, and the
 * jobs behind it (key b, no key) still go; a's result lets its next one go, in order.
 */
START_TEST(test_keys_max_running)
{
	struct job	*a1, *a2, *a3, *b1, *u;

	tqc.max_running_per_key = 1;
	keys_queue_make(3);
	a1 = submit_key("a1", "a");
	a2 = submit_key("a2", "a");
	a3 = submit_key("a3", "a");
	b1 = submit_key("b1", "b");
	u = submit("u", 0);
	run_pending();
	expect_job(0, a1);
	expect_job(1, b1);
	expect_job(2, u);
	ck_assert_int_eq(a2->state, JOB_QUEUED);
	ck_assert(job_parked(a2) && job_parked(a3));
	ck_assert_uint_eq(tq->keys.nparked, 2);
	ck_assert_uint_eq(tq->keys.nkeys, 2);
	ck_assert_uint_eq(queue_depth(tq), 2);		/* parked jobs still wait */
	ck_assert_uint_eq(tq->bytes, 4);
	ck_assert_uint_eq(tq->nready, 0);
	/* b's and u's ends let no a go: a1 still runs. */
	head_result(tw[1].w, FRAME_OK, "b1", 2);
	head_result(tw[2].w, FRAME_OK, "u", 1);
	run_pending();
	expect_no_frame(1);
	expect_no_frame(2);
	ck_assert_uint_eq(tq->keys.nkeys, 1);		/* b has nothing left: freed */
	/* a1 ends: a2 goes (the first idle worker), not a3. */
	head_result(tw[0].w, FRAME_OK, "a1", 2);
	run_pending();
	expect_job(0, a2);
	expect_no_frame(1);
	ck_assert(!job_parked(a2) && job_parked(a3));
	ck_assert_uint_eq(tq->keys.nparked, 1);
	head_result(tw[0].w, FRAME_OK, "a2", 2);
	run_pending();
	expect_job(0, a3);
	head_result(tw[0].w, FRAME_OK, "a3", 2);
	run_pending();
	/* Nothing parked, nothing running: no key is tracked, and no table is kept. */
	ck_assert_uint_eq(tq->keys.nkeys, 0);
	ck_assert_ptr_null(tq->keys.buckets);
	ck_assert_uint_eq(queue_depth(tq), 0);
	ck_assert_uint_eq(tq->bytes, 0);
}
END_TEST

/* rate_per_key = 1/s, burst 1: a's second job waits for a token; b's goes at once. */
START_TEST(test_keys_rate)
{
	struct job	*a1, *a2, *b1;

	tqc.rate_per_key = 1;
	tqc.burst_per_key = 1;
	keys_queue_make(3);
	a1 = submit_key("a1", "a");
	a2 = submit_key("a2", "a");
	b1 = submit_key("b1", "b");
	run_pending();
	expect_job(0, a1);
	expect_job(1, b1);
	expect_no_frame(2);
	ck_assert(job_parked(a2));
	ck_assert_ptr_nonnull(tq->keys.timer);
	ck_assert(evtimer_pending(tq->keys.timer, NULL));
	ck_assert_uint_eq(tq->keys.nheap, 1);
	/* The token comes (the key's timer): a2 goes, to the idle worker. */
	run_until(a2->state == JOB_RUNNING);
	expect_job(2, a2);
	/* Once their jobs end, the keys stay only until their buckets are full. */
	head_result(tw[0].w, FRAME_OK, "a1", 2);
	head_result(tw[1].w, FRAME_OK, "b1", 2);
	head_result(tw[2].w, FRAME_OK, "a2", 2);
	ck_assert_uint_ge(tq->keys.nkeys, 1);		/* a's bucket refills */
	run_until(tq->keys.nkeys == 0);
	ck_assert_uint_eq(tq->keys.nheap, 0);
	ck_assert_ptr_null(tq->keys.heap);		/* freed with the last key */
	ck_assert_ptr_null(tq->keys.buckets);
}
END_TEST

/* keys_pause: the key's jobs wait until the time, the queue's others go on. */
START_TEST(test_keys_pause)
{
	struct job	*a1, *b1, *a2, *z1;

	keys_queue_make(2);
	keys_pause(tq, "a", 1, now_ms() + 200);
	keys_pause(tq, "a", 1, now_ms() + 100);	/* an earlier end does not shorten it */
	ck_assert_uint_eq(tq->keys.nkeys, 1);
	a1 = submit_key("a1", "a");
	b1 = submit_key("b1", "b");
	run_pending();
	expect_job(0, b1);
	expect_no_frame(1);
	ck_assert(job_parked(a1));
	run_until(a1->state == JOB_RUNNING);
	expect_job(1, a1);
	/* Paused again while a1 runs: a2 waits, though no limit is set. */
	keys_pause(tq, "a", 1, now_ms() + 100);
	a2 = submit_key("a2", "a");
	head_result(tw[0].w, FRAME_OK, "b1", 2);
	run_pending();
	ck_assert(job_parked(a2));
	expect_no_frame(0);
	run_until(a2->state == JOB_RUNNING);
	expect_job(0, a2);
	/* A pause that has already ended, or of no key, does nothing. */
	keys_pause(tq, "c", 1, now_ms() - 1);
	keys_pause(tq, "", 0, now_ms() + 1000);
	ck_assert_uint_eq(tq->keys.nkeys, 1);
	/* A pause without end (a far date) does not wrap around into the past. */
	keys_pause(tq, "z", 1, UINT64_MAX);
	z1 = submit_key("z1", "z");
	head_result(tw[1].w, FRAME_OK, "a1", 2);
	run_pending();
	ck_assert(job_parked(z1));
	expect_no_frame(1);
	ck_assert_uint_eq(tq->keys.nkeys, 2);
}
END_TEST

/*
 * A failure with a Retry-After (an http 429 or 503) pauses the job's key: the key's
 * next job waits for it, another key's goes at once, and so does the unkeyed.
 */
START_TEST(test_keys_retry_after)
{
	struct job	*a1, *a2, *b1, *u;
	uint64_t	 t0;

	tqc.retries = 3;
	tqc.backoff_base_ms = 10;
	keys_queue_make(2);
	a1 = submit_key("a1", "a");
	run_pending();
	expect_job(0, a1);
	t0 = now_ms();
	dispatch_result(tw[0].w, a1->id, FRAME_FAILED, 1, "http 429", 8);
	ck_assert_int_eq(a1->state, JOB_RETRY_WAIT);	/* its retry waits too */
	a2 = submit_key("a2", "a");
	b1 = submit_key("b1", "b");
	u = submit("u", 0);
	run_pending();
	expect_job(0, b1);
	expect_job(1, u);
	ck_assert(job_parked(a2));
	ck_assert_uint_eq(tq->keys.nkeys, 2);
	head_result(tw[0].w, FRAME_OK, "b1", 2);
	head_result(tw[1].w, FRAME_OK, "u", 1);
	run_pending();
	expect_no_frame(0);
	expect_no_frame(1);
	/* Once the second is over, a's jobs go: none before it. */
	run_until(a2->state == JOB_RUNNING || a1->state == JOB_RUNNING);
	ck_assert_uint_ge(now_ms() - t0, 1000);
	run_until(a2->state == JOB_RUNNING && a1->state == JOB_RUNNING);
	/* Without a key, a Retry-After delays its job alone. */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[1].w, FRAME_OK, "a", 1);
	u = submit("u2", 0);
	run_pending();
	ck_assert_int_eq(u->state, JOB_RUNNING);
	dispatch_result(TAILQ_FIRST(&tw[0].w->inflight) == u ? tw[0].w : tw[1].w,
	    u->id, FRAME_FAILED, 1, "503", 3);
	ck_assert_int_eq(u->state, JOB_RETRY_WAIT);
	run_until(tq->keys.nkeys == 0);
	ck_assert_uint_eq(tq->keys.nheap, 0);
}
END_TEST

/*
 * A job of an http queue submitted without a key takes its URL's host: lowercased,
 * with its port, without userinfo; from a JSON payload's "url" too. One without a
 * readable URL, or of another handler's queue, has none; a given key stays.
 */
START_TEST(test_keys_http_default)
{
	static const struct {
		const char	*payload, *key;
	} t[] = {
		{ "http://Example.ORG/a?b", "example.org" },
		{ "  https://user:pw@Host.example:8443/x  ", "host.example:8443" },
		{ "http://a@b@127.0.0.1:80#f", "127.0.0.1:80" },
		{ "http://h:?q", "h" },
		{ "http://[::1]:8080/", "[::1]:8080" },
		{ "{\"method\": \"POST\", \"url\": \"http://API.example/v1\", "
		  "\"body\": \"x\"}", "api.example" },
		{ "http:///nohost", NULL },
		{ "ftp://example.org/", NULL },
		{ "not a url", NULL },
		{ "{\"url\": 1}", NULL },
		{ "", NULL },
	};
	struct job	*j;
	const char	*k;
	char		*h;
	size_t		 i, n;

	tqc.handler = (char *)"http";
	queue_make();
	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		j = job_new_key(tq, t[i].payload, strlen(t[i].payload), NULL, 0);
		ck_assert_ptr_nonnull(j);
		k = job_key(j, &n);
		if (t[i].key == NULL)
			ck_assert_msg(k == NULL, "%s: key %.*s", t[i].payload, (int)n, k);
		else {
			ck_assert_msg(k != NULL && n == strlen(t[i].key) &&
			    memcmp(k, t[i].key, n) == 0, "%s: key %.*s, not %s",
			    t[i].payload, (int)n, k != NULL ? k : "", t[i].key);
			ck_assert_int_eq(memcmp(j->data, t[i].payload, j->len), 0);
		}
		job_free(j);
	}
	/* A key given stays; and on another handler's queue a URL is no key. */
	j = job_new_key(tq, "http://a.example/", 17, "mine", 4);
	k = job_key(j, &n);
	ck_assert(n == 4 && memcmp(k, "mine", 4) == 0);
	job_free(j);
	h = tq->cf.handler;
	tq->cf.handler = (char *)"echo";
	j = job_new_key(tq, "http://a.example/", 17, NULL, 0);
	ck_assert_int_eq(j->haskey, 0);
	job_free(j);
	tq->cf.handler = h;
}
END_TEST

/* A parked job cancelled, a worker lost, a shutdown, a handler that cannot start. */
START_TEST(test_keys_cancel_and_lost)
{
	static const char reason[] = "daemon is shutting down";
	struct job	*a1, *a2, *a3, *a4;
	const char	*why;

	tqc.max_running_per_key = 1;
	keys_queue_make(2);
	a1 = submit_key("a1", "a");
	a2 = submit_key("a2", "a");
	a3 = submit_key("a3", "a");
	run_pending();
	expect_job(0, a1);
	expect_no_frame(1);
	/* Cancelled while parked: out of its key's FIFO, answered. */
	ck_assert_int_eq(dispatch_cancel(a2, &why), 0);
	ck_assert_int_eq(a2->state, JOB_CANCELLED);
	ck_assert_uint_eq(tq->keys.nparked, 1);
	ck_assert_uint_eq(queue_depth(tq), 1);
	ck_assert_uint_eq(tq->bytes, 2);
	/* a1's worker is lost: a1 waits out its backoff, a3 may go. */
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 9");
	ck_assert_int_eq(a1->state, JOB_RETRY_WAIT);
	run_pending();
	expect_job(1, a3);
	/* a1 is due again while a3 runs: an idle worker, but a1 is parked behind a3. */
	worker_make(2);
	make_due(a1);
	run_pending();
	ck_assert(job_parked(a1));
	expect_no_frame(2);
	/* The shutdown answers parked jobs too. */
	a4 = submit_key("a4", "a");
	run_pending();
	ck_assert(job_parked(a4));
	dispatch_cancel_waiting(reason);
	ck_assert_int_eq(a1->state, JOB_CANCELLED);
	ck_assert_int_eq(a4->state, JOB_CANCELLED);
	ck_assert_str_eq(result_of(a4), reason);
	ck_assert_uint_eq(queue_depth(tq), 0);
	ck_assert_uint_eq(tq->bytes, 0);
	ck_assert_uint_eq(tq->keys.nparked, 0);
	ck_assert_uint_eq(tq->keys.nkeys, 1);		/* a3 runs */
}
END_TEST

/* A reload that raises the limit lets parked jobs go; one that lifts it, all. */
START_TEST(test_keys_reload)
{
	struct queue_config	 nqc;
	struct job		*a[4];
	int			 i;

	tqc.max_running_per_key = 1;
	keys_queue_make(3);
	for (i = 0; i < 4; i++)
		a[i] = submit_key("a", "a");
	run_pending();
	expect_job(0, a[0]);
	expect_no_frame(1);
	nqc = tqc;
	nqc.max_running_per_key = 2;
	ck_assert_int_eq(queue_reconfigure(tq, &nqc), 0);
	run_pending();
	expect_job(1, a[1]);
	expect_no_frame(2);
	nqc.max_running_per_key = 0;
	ck_assert_int_eq(queue_reconfigure(tq, &nqc), 0);
	run_pending();
	expect_job(2, a[2]);
	ck_assert(job_parked(a[3]));
	ck_assert_uint_eq(tq->keys.nparked, 1);	/* no worker free for it */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	run_pending();
	expect_job(0, a[3]);
	ck_assert_uint_eq(tq->keys.nparked, 0);
}
END_TEST

/* Many distinct keys: each tracked while its job runs, none left after. */
START_TEST(test_keys_many_bounded)
{
	struct job	*j;
	char		 k[16];
	int		 i, n;

	tqc.max_running_per_key = 1;
	keys_queue_make(1);
	for (i = 0; i < 2000; i++) {
		n = snprintf(k, sizeof k, "k%d", i);
		ck_assert_ptr_nonnull(j = job_new_key(tq, "x", 1, k, (size_t)n));
		dispatch_submit(tq, j, NULL);
	}
	run_pending();
	for (i = 0; i < 2000; i++) {
		ck_assert_uint_le(tq->keys.nkeys, 1);
		ck_assert_uint_eq(tw[0].w->ninflight, 1);
		head_result(tw[0].w, FRAME_OK, "x", 1);
		run_pending();
	}
	ck_assert_uint_eq(tq->done, 2000);
	ck_assert_uint_eq(tq->keys.nkeys, 0);
	ck_assert_ptr_null(tq->keys.buckets);
}
END_TEST

/* ----- batches (batch_size) ----- */

/* The worker in slot i must have been sent one FRAME_BATCH of exactly these n jobs. */
static void
expect_batch(int i, struct job **j, int n)
{
	struct frame_hdr	 h, jh;
	char			 payload[4096];
	size_t			 off = 0;
	int			 k;

	ck_assert_msg(frame_next(i, &h, payload, sizeof payload) == 1,
	    "worker %d: no frame, expected a batch of %d", i, n);
	ck_assert_int_eq(h.type, FRAME_BATCH);
	ck_assert_uint_eq(h.id, j[0]->id);
	for (k = 0; k < n; k++) {
		ck_assert_int_eq(frame_get(payload + off, h.len - off, 1 << 20, &jh), 1);
		ck_assert_int_eq(jh.type, FRAME_JOB);
		ck_assert_uint_eq(jh.id, j[k]->id);
		ck_assert_uint_eq(jh.len, j[k]->len);
		ck_assert_int_eq(memcmp(payload + off + FRAME_HDR_LEN, j[k]->data,
		    j[k]->len), 0);
		off += FRAME_HDR_LEN + jh.len;
	}
	ck_assert_uint_eq(off, h.len);
}

/* n new jobs "x" submitted to tq (into j), and dispatch run. */
static void
submit_xs(struct job **j, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		j[i] = submit("x", 0);
	run_pending();
}

/* A worker of tq, whose READY said batch_size slots (worker.c does). */
static struct worker *
worker_make_batch(int i)
{
	struct worker	*w = worker_make(i);

	w->slots = tq->cf.batch_size;
	return (w);
}

/*
 * tq with batch_size n (its oldest job may wait a minute) and one worker, sent a batch of
 * n new jobs "x" (into j), which it holds now.
 */
static void
batch_started(struct job **j, int n)
{
	tqc.batch_size = (uint32_t)n;
	tqc.batch_wait_ms = 60000;
	queue_make();
	worker_make_batch(0);
	submit_xs(j, n);
	expect_batch(0, j, n);
}

/*
 * A batch takes its jobs through the key limits as one job at a time does: with
 * max_running_per_key = 1, a second job of a key in the batch's reach is parked, the
 * batch goes on with the jobs of other keys, and the key lets it go once its first ends.
 */
START_TEST(test_batch_keys)
{
	struct job	*a1, *a2, *b1, *c1, *sent[3];

	tqc.batch_size = 4;
	tqc.batch_wait_ms = 60000;
	tqc.max_running_per_key = 1;
	queue_make();
	worker_make_batch(0);
	a1 = submit_key("a1", "a");
	a2 = submit_key("a2", "a");
	b1 = submit_key("b1", "b");
	c1 = submit_key("c1", "c");
	run_pending();
	sent[0] = a1;
	sent[1] = b1;
	sent[2] = c1;
	expect_batch(0, sent, 3);
	ck_assert(job_parked(a2));
	ck_assert_int_eq(a2->state, JOB_QUEUED);
	ck_assert_uint_eq(tq->keys.nparked, 1);
	/* The batch's ends count its keys off: a is down to a2, parked, b and c freed. */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[0].w, FRAME_OK, "b", 1);
	head_result(tw[0].w, FRAME_OK, "c", 1);
	ck_assert_uint_eq(tq->keys.nkeys, 1);
	ck_assert_uint_eq(tq->done, 3);
	/*
	 * a2 may run now: a batch of it alone goes at once, though the ready lists are
	 * empty and batch_wait_ms is a minute (it waited behind its key already).
	 */
	run_pending();
	expect_batch(0, &a2, 1);
	ck_assert(!job_parked(a2));
	head_result(tw[0].w, FRAME_OK, "a2", 2);
	ck_assert_uint_eq(tq->done, 4);
	ck_assert_uint_eq(tq->keys.nkeys, 0);
}
END_TEST

/*
 * A queue with batch_size sends nothing short of a full batch while its oldest job has
 * not waited batch_wait_ms; a full one goes at once, to one idle worker, all its jobs
 * started together; their results end each alone, with the batch's run time.
 */
START_TEST(test_batch_size_full)
{
	struct job	*j[5];
	uint64_t	 t0;
	int		 i;

	tqc.batch_size = 4;
	tqc.batch_wait_ms = 60000;
	queue_make();
	worker_make_batch(0);
	worker_make(1);
	submit_xs(j, 3);
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert(evtimer_pending(tq->dp.batch_ev, NULL));
	ck_assert_int_eq(j[0]->state, JOB_QUEUED);
	j[3] = submit("yy", 0);
	j[4] = submit("z", 0);
	run_pending();
	expect_batch(0, j, 4);
	expect_no_frame(0);
	expect_no_frame(1);	/* one job left: not a full batch, and not due */
	ck_assert_uint_eq(tw[0].w->ninflight, 4);
	ck_assert_uint_eq(tq->running, 4);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(j[i]->state, JOB_RUNNING);
		ck_assert_uint_eq(j[i]->attempts, 1);
	}
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
	/* They all started at once (one after the other in the same pass), each running. */
	t0 = j[0]->run_at;
	for (i = 0; i < 4; i++) {
		ck_assert(supervisor_running(tw[0].w, j[i]));
		ck_assert_uint_lt(j[i]->run_at - t0, 100000);
	}
	/* Results in order; each ran as long as the batch. */
	head_result(tw[0].w, FRAME_OK, "a", 1);
	ck_assert_uint_eq(tw[0].w->ninflight, 3);
	ck_assert_uint_lt(j[1]->run_at - t0, 100000);	/* still its start */
	ck_assert_int_eq(j[0]->state, JOB_DONE);
	head_result(tw[0].w, FRAME_OK, "b", 1);
	head_result(tw[0].w, FRAME_OK, "c", 1);
	run_pending();
	expect_no_frame(0);	/* a worker gets its next batch once idle */
	head_result(tw[0].w, FRAME_OK, "d", 1);
	ck_assert_uint_eq(tw[0].w->ninflight, 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(j[i]->state, JOB_DONE);
	ck_assert_str_eq(result_of(j[3]), "d");
	ck_assert_uint_eq(tq->done, 4);
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
}
END_TEST

/*
 * While a whole batch is ready, a worker running a whole one is sent the next to wait in
 * its pipe (never a short one, never a third); it starts as the first is answered.
 */
START_TEST(test_batch_size_ahead)
{
	struct job	*j[7];
	int		 i;

	tqc.batch_size = 2;
	tqc.batch_wait_ms = 60000;
	queue_make();
	worker_make_batch(0);
	submit_xs(j, 7);
	expect_batch(0, j, 2);
	expect_batch(0, j + 2, 2);
	expect_no_frame(0);
	ck_assert_uint_eq(tw[0].w->ninflight, 4);
	ck_assert(supervisor_running(tw[0].w, j[1]));
	ck_assert(!supervisor_running(tw[0].w, j[2]));
	ck_assert_int_eq(j[4]->state, JOB_QUEUED);
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[0].w, FRAME_OK, "b", 1);
	/* The second batch runs now, and the third waits behind it. */
	ck_assert(supervisor_running(tw[0].w, j[2]));
	ck_assert(supervisor_running(tw[0].w, j[3]));
	run_pending();
	expect_batch(0, j + 4, 2);
	expect_no_frame(0);
	/* One job left: no short batch ahead, nor alone before batch_wait_ms. */
	head_result(tw[0].w, FRAME_OK, "c", 1);
	head_result(tw[0].w, FRAME_OK, "d", 1);
	head_result(tw[0].w, FRAME_OK, "e", 1);
	head_result(tw[0].w, FRAME_OK, "f", 1);
	run_pending();
	expect_no_frame(0);
	ck_assert_int_eq(j[6]->state, JOB_QUEUED);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(j[i]->state, JOB_DONE);
}
END_TEST

/* A short batch goes once its oldest job has waited batch_wait_ms: a lone job runs. */
START_TEST(test_batch_wait)
{
	struct job	*j;
	uint64_t	 t0;

	tqc.batch_size = 8;
	tqc.batch_wait_ms = 30;
	queue_make();
	worker_make_batch(0);
	t0 = now_us();
	j = submit("alone", 0);
	run_pending();
	expect_no_frame(0);
	ck_assert_int_eq(j->state, JOB_QUEUED);
	run_until(j->state == JOB_RUNNING);
	ck_assert_uint_ge(j->run_at - t0, 30000);	/* its start */
	expect_batch(0, &j, 1);
	ck_assert_uint_eq(tw[0].w->ninflight, 1);
	head_result(tw[0].w, FRAME_OK, "ok", 2);
	ck_assert_int_eq(j->state, JOB_DONE);
}
END_TEST

/* Within max_jobs_per_worker and the rate's tokens: a batch is cut short by either. */
START_TEST(test_batch_limits)
{
	struct job	*j[6];

	tqc.batch_size = 4;
	tqc.batch_wait_ms = 0;
	tqc.max_jobs_per_worker = 3;
	queue_make();
	worker_make_batch(0);
	submit_xs(j, 6);
	expect_batch(0, j, 3);
	expect_no_frame(0);
	ck_assert_int_eq(j[3]->state, JOB_QUEUED);
}
END_TEST

/* A batch whose handler fails one job retries that one, not the rest. */
START_TEST(test_batch_partial_failure)
{
	struct job	*j[3];

	tqc.retries = 2;
	batch_started(j, 3);
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[0].w, FRAME_FAILED, "no", 2);
	head_result(tw[0].w, FRAME_OK, "c", 1);
	ck_assert_int_eq(j[0]->state, JOB_DONE);
	ck_assert_int_eq(j[1]->state, JOB_RETRY_WAIT);
	ck_assert_int_eq(j[2]->state, JOB_DONE);
	ck_assert_uint_eq(j[1]->attempts, 1);
	ck_assert_str_eq(last_attempt(j[1])->err, "no");
	ck_assert_uint_eq(tq->retried, 1);
	ck_assert_uint_eq(tq->done, 2);
	/* Its retry goes alone, in a batch of one once due and waited for. */
	make_due(j[1]);
	tq->cf.batch_wait_ms = 0;
	run_pending();
	expect_batch(0, &j[1], 1);
	head_result(tw[0].w, FRAME_OK, "b", 1);
	ck_assert_int_eq(j[1]->state, JOB_DONE);
	ck_assert_uint_eq(j[1]->attempts, 2);
	ck_assert_uint_eq(j[0]->attempts, 1);
	ck_assert_uint_eq(j[2]->attempts, 1);
}
END_TEST

/*
 * Each job of a batch has its own timeout from the batch's start: the one past it is
 * asked to stop alone, then the batch has the grace period.
 */
START_TEST(test_batch_timeout)
{
	struct job	*j[3];
	int		 i;

	tqc.batch_size = 3;
	tqc.batch_wait_ms = 60000;
	tqc.retries = 0;
	queue_make();
	worker_make_batch(0);
	for (i = 0; i < 3; i++) {
		j[i] = job_new(tq, "x", 1);
		j[i]->timeout_ms = i == 1 ? 20 : 60000;
		dispatch_submit(tq, j[i], NULL);
	}
	run_pending();
	expect_batch(0, j, 3);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	run_until(j[1]->cancel != 0);
	expect_cancel(0, j[1], FRAME_CANCEL_TIMEOUT);
	expect_no_frame(0);
	ck_assert(dummy_got_usr1());
	ck_assert_int_eq(j[0]->cancel, JOB_CANCEL_NONE);
	ck_assert_int_eq(j[2]->cancel, JOB_CANCEL_NONE);
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, j[1]->id), 0);
	ck_assert_uint_eq(dispatch_stop_until(tw[0].w, j[0]->id), 0);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[0].w, FRAME_CANCELLED, "cleanup ran (0 hooks)", 21);
	head_result(tw[0].w, FRAME_OK, "c", 1);
	ck_assert_int_eq(j[0]->state, JOB_DONE);
	ck_assert_int_eq(j[1]->state, JOB_DEAD);
	ck_assert_int_eq(j[1]->x->last_status, JOB_TIMEOUT);
	ck_assert_str_eq(result_of(j[1]), "timed out after 20 ms; cleanup ran (0 hooks)");
	ck_assert_int_eq(j[2]->state, JOB_DONE);
	ck_assert(!evtimer_pending(tw[0].w->tev, NULL));
}
END_TEST

/*
 * A batch that does not return within the grace period: the worker is killed for the
 * job that timed out, which ends so; the rest go back to the front, unspent, in order.
 */
START_TEST(test_batch_kill)
{
	struct job	*j[4], *p;
	char		 want[256];
	int		 i, st;

	tqc.batch_size = 3;
	tqc.batch_wait_ms = 60000;
	tqc.retries = 0;
	tqc.grace_ms = 0;
	queue_make();
	worker_make_batch(0);
	for (i = 0; i < 4; i++) {
		j[i] = job_new(tq, "x", 1);
		j[i]->timeout_ms = i == 1 ? 20 : 0;
		dispatch_submit(tq, j[i], NULL);
	}
	run_pending();
	expect_batch(0, j, 3);
	run_until(tw[0].w->leave == WORKER_KILLED);
	ck_assert_uint_eq(tw[0].w->killed_for, j[1]->id);
	ck_assert_int_eq(waitpid(dummy, &st, 0), dummy);
	dummy = -1;
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 9 (Killed)");
	ck_assert_uint_eq(tw[0].w->ninflight, 0);
	ck_assert_uint_eq(tq->running, 0);
	ck_assert_int_eq(j[1]->state, JOB_DEAD);
	snprintf(want, sizeof want, "timed out after 20 ms; the handler did not stop "
	    "within the grace period (0 ms): worker %ld was killed", (long)tw[0].w->pid);
	ck_assert_str_eq(result_of(j[1]), want);
	/* The others: first in line again, in their order, the attempt not counted. */
	ck_assert_uint_eq(tq->nready, 3);
	for (i = 0; i < 4; i++) {
		if (i == 1)
			continue;
		ck_assert_int_eq(j[i]->state, JOB_QUEUED);
		ck_assert_uint_eq(j[i]->attempts, 0);
		p = queue_pop(tq);
		ck_assert_ptr_eq(p, j[i]);
		job_table_remove(p);
		job_free(p);
	}
}
END_TEST

/* A worker that dies running a batch: each of its jobs ran, and each counts the crash. */
START_TEST(test_batch_crash)
{
	struct job	*j[2];
	int		 i;

	tqc.retries = 1;
	batch_started(j, 2);
	tw[0].w->life = WORKER_GONE;
	dispatch_worker_lost(tw[0].w, "killed by signal 11 (Segmentation fault)");
	ck_assert_uint_eq(tq->running, 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(j[i]->state, JOB_RETRY_WAIT);
		ck_assert_uint_eq(j[i]->attempts, 1);
		ck_assert_uint_eq(job_crashes(j[i]), 1);
	}
}
END_TEST

/* A client's cancel of a job in a running batch stops that job alone. */
START_TEST(test_batch_cancel)
{
	struct job	*j[3];
	const char	*why;

	batch_started(j, 3);
	ck_assert_int_eq(dispatch_cancel(j[2], &why), 1);
	expect_cancel(0, j[2], FRAME_CANCEL_USER);
	ck_assert_uint_ne(dispatch_stop_until(tw[0].w, j[2]->id), 0);
	ck_assert(evtimer_pending(tw[0].w->tev, NULL));
	head_result(tw[0].w, FRAME_OK, "a", 1);
	head_result(tw[0].w, FRAME_FAILED, "b", 1);
	head_result(tw[0].w, FRAME_CANCELLED, "cleanup ran (0 hooks)", 21);
	ck_assert_int_eq(j[0]->state, JOB_DONE);
	ck_assert_int_eq(j[1]->state, JOB_RETRY_WAIT);
	ck_assert_int_eq(j[2]->state, JOB_CANCELLED);
	ck_assert(!evtimer_pending(tw[0].w->tev, NULL));
}
END_TEST

/* ----- PAUSE (queue_pause): a queue that takes jobs and sends none ----- */

/*
 * A paused queue sends nothing, not even to a worker freed by a result; its rate's
 * timer is not armed for nothing; RESUME kicks it and what waited goes.
 */
START_TEST(test_pause)
{
	struct job	*x, *a, *b;

	tqc.batch = 1;
	tqc.rate = 1000;
	tqc.burst = 1000;
	queue_make();
	worker_make(0);
	worker_make(1);
	x = submit("x", 0);
	run_pending();
	expect_job(0, x);
	ck_assert_int_eq(queue_pause(tq, 1, 1000), 0);
	ck_assert_int_eq(queue_pause(tq, 1, 1000), 1);	/* already: nothing said again */
	ck_assert_int_eq(tq->paused, 1);
	a = submit("a", 0);
	b = submit("b", 0);
	run_pending();
	expect_no_frame(0);
	expect_no_frame(1);
	/* The running job ends as usual; its worker gets nothing. */
	head_result(tw[0].w, FRAME_OK, "x", 1);
	ck_assert_int_eq(x->state, JOB_DONE);
	run_pending();
	dispatch_queue(tq);
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert_int_eq(a->state, JOB_QUEUED);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	ck_assert_uint_eq(tq->nready, 2);
	ck_assert(tq->dp.rate_ev == NULL || !evtimer_pending(tq->dp.rate_ev, NULL));
	/* RESUME: kicked, both go. */
	ck_assert_int_eq(queue_pause(tq, 0, 1000), 0);
	ck_assert_int_eq(queue_pause(tq, 0, 1000), 1);
	run_pending();
	expect_job(0, a);
	expect_job(1, b);
	ck_assert_int_eq(a->state, JOB_RUNNING);
	ck_assert_int_eq(b->state, JOB_RUNNING);
}
END_TEST

/* A queue a reload removed drains though paused: nothing could RESUME it. */
START_TEST(test_pause_removed_drains)
{
	struct job	*a;

	tqc.batch = 1;
	queue_make();
	worker_make(0);
	queue_pause(tq, 1, 0);
	a = submit("a", 0);
	run_pending();
	expect_no_frame(0);
	tq->removed = 1;
	dispatch_queue(tq);
	expect_job(0, a);
	tq->removed = 0;
}
END_TEST

/* Keyed jobs of a paused queue wait too, parked or not; RESUME sends them. */
START_TEST(test_pause_keys)
{
	struct job	*a1, *a2, *b1;

	tqc.max_running_per_key = 1;
	keys_queue_make(2);
	a1 = submit_key("a1", "a");
	a2 = submit_key("a2", "a");
	run_pending();
	expect_job(0, a1);
	ck_assert(job_parked(a2));
	queue_pause(tq, 1, 0);
	b1 = submit_key("b1", "b");
	/* a1's end makes a2 runnable by its key, not by the queue. */
	head_result(tw[0].w, FRAME_OK, "a1", 1);
	run_pending();
	expect_no_frame(0);
	expect_no_frame(1);
	ck_assert_int_eq(a2->state, JOB_QUEUED);
	ck_assert_int_eq(b1->state, JOB_QUEUED);
	queue_pause(tq, 0, 0);
	run_pending();
	ck_assert_int_eq(a2->state, JOB_RUNNING);
	ck_assert_int_eq(b1->state, JOB_RUNNING);
	ck_assert_uint_eq(tq->running, 2);
}
END_TEST

/* A batch queue sends no batch while paused, even a full one, and arms no timer. */
START_TEST(test_pause_batch)
{
	struct job	*j[4];

	tqc.batch_size = 4;
	tqc.batch_wait_ms = 0;
	queue_make();
	worker_make_batch(0);
	queue_pause(tq, 1, 0);
	submit_xs(j, 4);
	expect_no_frame(0);
	ck_assert(tq->dp.batch_ev == NULL || !evtimer_pending(tq->dp.batch_ev, NULL));
	queue_pause(tq, 0, 0);
	run_pending();
	expect_batch(0, j, 4);
}
END_TEST

static Suite *
dispatch_suite(void)
{
	Suite	*s = suite_create("dispatch");
	TCase	*tc_sub = tcase_create("submit");
	TCase	*tc_disp = tcase_create("dispatch");
	TCase	*tc_res = tcase_create("results");
	TCase	*tc_can = tcase_create("cancel");
	TCase	*tc_lost = tcase_create("lost");
	TCase	*tc_keys = tcase_create("keys");
	TCase	*tc_bat = tcase_create("batches");
	TCase	*tc_slots;

	tcase_add_checked_fixture(tc_sub, setup, teardown);
	tcase_add_test(tc_sub, test_submit_ids);
	suite_add_tcase(s, tc_sub);

	tcase_add_checked_fixture(tc_disp, setup, teardown);
	tcase_add_test(tc_disp, test_dispatch_idle_workers);
	tcase_add_test(tc_disp, test_kick_many_queues);
	tcase_add_test(tc_disp, test_max_running);
	tcase_add_test(tc_disp, test_batch);
	tcase_add_test(tc_disp, test_batch_one);
	tcase_add_test(tc_disp, test_batch_share);
	tcase_add_test(tc_disp, test_batch_ahead);
	tcase_add_test(tc_disp, test_batch_ahead_not_before_idle);
	tcase_add_loop_test(tc_disp, test_batch_no_ahead, 0,
	    (int)(sizeof no_ahead / sizeof no_ahead[0]));
	tcase_add_test(tc_disp, test_rate);
	tcase_add_test(tc_disp, test_recycle_by_count);
	tcase_add_test(tc_disp, test_pause);
	tcase_add_test(tc_disp, test_pause_removed_drains);
	suite_add_tcase(s, tc_disp);

	tcase_add_checked_fixture(tc_res, setup, teardown);
	tcase_add_test(tc_res, test_result_done);
	tcase_add_test(tc_res, test_log_debug_lines);
	tcase_add_test(tc_res, test_retry_backoff);
	tcase_add_test(tc_res, test_backoff_cap_and_jitter);
	tcase_add_test(tc_res, test_permanent_failure);
	tcase_add_test(tc_res, test_no_retry_while_stopping);
	tcase_add_test(tc_res, test_retry_dead);
	tcase_add_test(tc_res, test_retry_dead_queued);
	suite_add_tcase(s, tc_res);

	tcase_add_checked_fixture(tc_can, setup, teardown);
	tcase_add_test(tc_can, test_cancel_waiting_job);
	tcase_add_test(tc_can, test_cancel_dead);
	tcase_add_test(tc_can, test_cancel_running);
	tcase_add_test(tc_can, test_cancel_running_unknown_worker);
	tcase_add_test(tc_can, test_timeout);
	tcase_add_test(tc_can, test_grace_kill);
	tcase_add_test(tc_can, test_cancel_waiting);
	tcase_add_test(tc_can, test_cancel_running_all);
	suite_add_tcase(s, tc_can);

	tcase_add_checked_fixture(tc_bat, setup, teardown);
	tcase_add_test(tc_bat, test_batch_size_full);
	tcase_add_test(tc_bat, test_batch_keys);
	tcase_add_test(tc_bat, test_pause_batch);
	tcase_add_test(tc_bat, test_batch_wait);
	tcase_add_test(tc_bat, test_batch_size_ahead);
	tcase_add_test(tc_bat, test_batch_limits);
	tcase_add_test(tc_bat, test_batch_partial_failure);
	tcase_add_test(tc_bat, test_batch_timeout);
	tcase_add_test(tc_bat, test_batch_kill);
	tcase_add_test(tc_bat, test_batch_crash);
	tcase_add_test(tc_bat, test_batch_cancel);
	suite_add_tcase(s, tc_bat);

	tcase_add_checked_fixture(tc_lost, setup, teardown);
	tcase_add_test(tc_lost, test_worker_lost_requeue);
	tcase_add_test(tc_lost, test_worker_lost_out_of_attempts);
	tcase_add_test(tc_lost, test_poison);
	tcase_add_test(tc_lost, test_poison_in_a_row);
	tcase_add_test(tc_lost, test_worker_lost_after_retire);
	tcase_add_test(tc_lost, test_worker_lost_cancelled);
	tcase_add_test(tc_lost, test_worker_died_during_cancel);
	tcase_add_test(tc_lost, test_cancel_during_timeout_grace);
	tcase_add_test(tc_lost, test_worker_lost_while_stopping);
	suite_add_tcase(s, tc_lost);

	tcase_add_checked_fixture(tc_keys, setup, teardown);
	tcase_add_test(tc_keys, test_keys_stored);
	tcase_add_test(tc_keys, test_keys_max_running);
	tcase_add_test(tc_keys, test_keys_rate);
	tcase_add_test(tc_keys, test_keys_pause);
	tcase_add_test(tc_keys, test_pause_keys);
	tcase_add_test(tc_keys, test_keys_retry_after);
	tcase_add_test(tc_keys, test_keys_http_default);
	tcase_add_test(tc_keys, test_keys_cancel_and_lost);
	tcase_add_test(tc_keys, test_keys_reload);
	tcase_add_test(tc_keys, test_keys_many_bounded);
	suite_add_tcase(s, tc_keys);
	tc_slots = tcase_create("slots");
	tcase_add_checked_fixture(tc_slots, setup, teardown);
	tcase_add_test(tc_slots, test_slots_dispatch);
	tcase_add_test(tc_slots, test_slots_max_running);
	tcase_add_test(tc_slots, test_slots_out_of_order);
	tcase_add_test(tc_slots, test_slots_timeouts);
	tcase_add_test(tc_slots, test_slots_cancel_one);
	tcase_add_test(tc_slots, test_slots_grace_kill);
	tcase_add_test(tc_slots, test_slots_lost);
	tcase_add_test(tc_slots, test_retry_after);
	tcase_add_test(tc_slots, test_http_status);
	suite_add_tcase(s, tc_slots);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(dispatch_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
