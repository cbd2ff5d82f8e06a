/*
 * dispatch.c: moves jobs from queues to workers and results back to their jobs, and
 * carries the job lifecycle: timeouts, retries with backoff, dead and poison jobs,
 * cancellation, and the per-queue limits (max_running, rate).
 *
 * A worker holds an ordered in-flight list; it runs the jobs one at a time in that
 * order, so the head is the job running now. When a queue is deep and its jobs are
 * short, a worker is given several jobs at once (a batch), sized so it holds about
 * DISPATCH_BATCH_US of work: tiny jobs then cost one pipe round trip per batch instead
 * of one per job, and long jobs are still handed out one at a time so an idle worker
 * never waits behind a busy one. Jobs shorter than DISPATCH_AHEAD_US get one more in
 * flight once every worker has its own (dispatch_queue's second pass), so that a worker
 * starts its next job as soon as it finishes one instead of waiting a round trip
 * through the master for it.
 *
 * Each worker has one timer, for its head job: the job's timeout while it runs, then,
 * once the job has been asked to stop (cancelled or timed out), the grace period after
 * which the worker is killed.
 */

#include "autoconf.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "frame.h"
#include "jobpool.h"
#include "jobpoold.h"
#include "events.h"
#include "log.h"

#define DISPATCH_BATCH_US	2000	/* work to give one worker at once */
#define DISPATCH_AHEAD_US	20000	/* shorter jobs: one more in flight (bench/README.md) */
#define DISPATCH_REPORT_MS	1000	/* after grace: time for the worker to report */

/* dispatch_attempt_end()'s flags */
#define DISPATCH_PERMANENT	0x1	/* a failure not worth retrying */
#define DISPATCH_IF_HISTORY	0x2	/* record the attempt only in a history there is */

static void	dispatch_rate_cb(evutil_socket_t, short, void *);
static void	dispatch_kick_cb(evutil_socket_t, short, void *);

/*
 * Queues with something to dispatch, run once per pass of the event loop: a burst of
 * submits or results then costs one write per worker, not one per job.
 */
static struct event	*kick_ev;
static struct queue	*kick_head, **kick_tail = &kick_head;

/* Dispatch q later in this pass of the event loop. */
void
dispatch_kick(struct queue *q)
{
	if (q->dp.kicked)
		return;
	if (kick_ev == NULL &&
	    (kick_ev = event_new(master_base, -1, 0, dispatch_kick_cb, NULL)) == NULL) {
		dispatch_queue(q);
		return;
	}
	q->dp.kicked = 1;
	q->dp.kick_next = NULL;
	*kick_tail = q;
	kick_tail = &q->dp.kick_next;
	if (kick_head == q)
		event_active(kick_ev, EV_TIMEOUT, 0);
}

static void
dispatch_kick_cb(evutil_socket_t fd, short events, void *arg)
{
	struct queue	*q, *next;

	/*
	 * Take the whole list first: dispatching one queue can kick others (a producer it
	 * unblocks submits to them), and those start a new list for the next pass.
	 */
	q = kick_head;
	kick_head = NULL;
	kick_tail = &kick_head;
	for (; q != NULL; q = next) {
		next = q->dp.kick_next;
		q->dp.kicked = 0;
		dispatch_queue(q);
	}
}

/* A new queue's dispatch part: nothing measured (no batching until then), nothing kicked. */
void
dispatch_queue_init(struct queue *q)
{
	memset(&q->dp, 0, sizeof q->dp);
}

/* Free what dispatch holds for q. */
void
dispatch_queue_free(struct queue *q)
{
	if (q->dp.rate_ev != NULL)
		event_free(q->dp.rate_ev);
	q->dp.rate_ev = NULL;
}

/* At exit. */
void
dispatch_free(void)
{
	if (kick_ev != NULL)
		event_free(kick_ev);
	kick_ev = NULL;
	kick_head = NULL;
	kick_tail = &kick_head;
}

/* A uniform random number in [0, 1) for backoff jitter. */
static double
dispatch_random(void)
{
	static int	seeded;

	if (!seeded) {
		srand48((long)now_us() ^ (long)getpid());
		seeded = 1;
	}
	return (drand48());
}

/* What snprintf returned (n), cut to what its buffer of size bytes holds. */
static uint32_t
dispatch_cut(int n, size_t size)
{
	return (n < 0 ? 0 : (size_t)n >= size ? (uint32_t)size - 1 : (uint32_t)n);
}

/* Refill q's token bucket; returns the whole tokens available. */
static uint32_t
dispatch_tokens(struct queue *q)
{
	uint64_t	now = now_us();

	if (q->dp.tokens_at == 0 || q->dp.rate != q->cf.rate || q->dp.burst != q->cf.burst) {
		/* At first, and after a reload changed the rate: from a full bucket. */
		q->dp.tokens = q->cf.burst;
		q->dp.tokens_at = now;
		q->dp.rate = q->cf.rate;
		q->dp.burst = q->cf.burst;
	}
	q->dp.tokens += q->cf.rate * (double)(now - q->dp.tokens_at) / 1e6;
	if (q->dp.tokens > q->cf.burst)
		q->dp.tokens = q->cf.burst;
	q->dp.tokens_at = now;
	return ((uint32_t)q->dp.tokens);
}

/* Out of tokens: come back when the next one has accrued. */
static void
dispatch_arm_rate(struct queue *q)
{
	struct timeval	tv;
	double		wait_us;

	if (q->dp.rate_ev == NULL &&
	    (q->dp.rate_ev = evtimer_new(master_base, dispatch_rate_cb, q)) == NULL)
		return;
	if (evtimer_pending(q->dp.rate_ev, NULL))
		return;
	wait_us = (1.0 - (q->dp.tokens - (uint32_t)q->dp.tokens)) / q->cf.rate * 1e6 + 1;
	tv.tv_sec = (long)(wait_us / 1e6);
	tv.tv_usec = (long)wait_us % 1000000;
	evtimer_add(q->dp.rate_ev, &tv);
}

static void
dispatch_rate_cb(evutil_socket_t fd, short events, void *arg)
{
	dispatch_queue(arg);
}

/* How many jobs worker w of q may hold now (ahead: in dispatch_queue's second pass). */
static uint32_t
dispatch_capacity(struct queue *q, struct worker *w, int nready_workers, int ahead)
{
	uint32_t	cap = q->cf.batch, share, by_time;

	if (q->cf.rate > 0)
		cap = 1;	/* rate-limited: a job is sent when it may start */
	/*
	 * Until the queue's jobs are known to be short, one at a time. And never add to a
	 * worker whose running job has already taken much longer than the average: what
	 * is sent to it waits behind that job, whatever its priority.
	 */
	if (q->dp.svc_us == 0)
		cap = 1;
	else if (w->ninflight > 0 && now_us() - w->head_since >
	    4 * (uint64_t)q->dp.svc_us + DISPATCH_BATCH_US)
		return (w->ninflight);
	if (cap > 1) {
		/* Short jobs only: cap the batch at DISPATCH_BATCH_US of expected work. */
		by_time = DISPATCH_BATCH_US / q->dp.svc_us;
		/*
		 * The second pass: a job of up to DISPATCH_AHEAD_US waits behind the running
		 * one. A round trip through the master costs a worker about 100 us on a
		 * 2-vCPU VM, 2-5% of jobs of 2-5 ms; a job that is sent ahead and then waits
		 * while another worker falls idle waits at most one such job.
		 */
		if (ahead && by_time < 2 && q->dp.svc_us < DISPATCH_AHEAD_US)
			by_time = 2;
		if (by_time < cap)
			cap = by_time;
		/* Deep queues only: never give one worker more than its share. */
		share = q->nready / (nready_workers > 0 ? nready_workers : 1) + 1;
		if (share < cap)
			cap = share;
	}
	if (cap == 0)
		cap = 1;
	/* Recycling by count: never send a worker more than it may run. */
	if (q->cf.max_jobs_per_worker > 0) {
		uint64_t left = w->dispatched < q->cf.max_jobs_per_worker ?
		    q->cf.max_jobs_per_worker - w->dispatched : 0;

		if (left < cap)
			cap = (uint32_t)left;
	}
	return (cap);
}

/* A retiring worker goes once idle; so does one that ran max_jobs_per_worker. */
static void
dispatch_maybe_recycle(struct worker *w)
{
	struct queue	*q = w->queue;

	if (w->ninflight > 0)
		return;
	if (w->life == WORKER_RETIRING) {
		supervisor_close_jobs(w);
		return;
	}
	if (q->cf.max_jobs_per_worker == 0 ||
	    w->dispatched < q->cf.max_jobs_per_worker || w->life != WORKER_READY)
		return;
	log_job(LOG_INFO, 0, q->name, (long)w->pid,
	    "queue %s: worker %ld recycled after %llu job%s (max_jobs_per_worker)",
	    q->name, (long)w->pid, (unsigned long long)w->jobs_done,
	    w->jobs_done == 1 ? "" : "s");
	events_publish_queue(EVENTS_WORKER_RECYCLED, q->idx, w->pid, 0,
	    "max_jobs_per_worker");
	supervisor_retire(w);
}

/*
 * q's handler cannot start: its ready jobs would wait forever. They become dead, with
 * the reason, so their producers hear it and an operator can RETRY them once a reload
 * has fixed the handler. Delayed jobs wait for their time as usual.
 */
static void
dispatch_fail_ready(struct queue *q)
{
	struct job	*j;
	char		 msg[512];
	uint32_t	 n, count = 0;

	n = dispatch_cut(snprintf(msg, sizeof msg, "queue %s cannot run its handler: %s",
	    q->name, q->failed_reason), sizeof msg);
	while ((j = queue_pop(q)) != NULL) {
		if (job_extra(j) != NULL)
			j->x->last_status = JOB_FAILED;
		job_finish(j, JOB_DEAD, msg, n);
		count++;
	}
	log_job(LOG_NOTICE, 0, q->name, 0, "queue %s: %u waiting job%s made dead: the "
	    "handler cannot start (RETRY them once a reload has fixed it)", q->name,
	    count, count == 1 ? "" : "s");
}

/*
 * One pass of dispatch_queue over q's workers: each is sent jobs up to its capacity
 * (ahead: the second pass's, one job more for short jobs), within max_running and the
 * rate's tokens.
 */
static void
dispatch_pass(struct queue *q, int nready_workers, int ahead, uint32_t *tokens)
{
	struct worker	*w;
	struct job	*j;
	uint32_t	 cap;
	int		 i, sent;

	for (i = 0; i < q->nworkers && q->nready > 0 && q->failed_reason == NULL; i++) {
		w = q->workers[i];
		if (w == NULL || w->life != WORKER_READY)
			continue;
		/* max_running: a semaphore over the queue's busy workers. */
		if (w->ninflight == 0 && q->cf.max_running > 0 &&
		    q->busy >= q->cf.max_running)
			continue;
		cap = dispatch_capacity(q, w, nready_workers, ahead);
		sent = 0;
		while (w->ninflight < cap && *tokens > 0 && (j = queue_pop(q)) != NULL) {
			j->attempts++;
			job_change(j, JOB_RUNNING, &(struct job_change){ .pid = w->pid });
			supervisor_send(w, j);
			sent = 1;
			if (q->cf.rate > 0) {
				(*tokens)--;
				q->dp.tokens -= 1;
			}
		}
		if (sent)
			supervisor_flush(w);
		if (*tokens == 0)
			break;
	}
}

/* Hand ready jobs to workers that have room, within max_running and rate. */
void
dispatch_queue(struct queue *q)
{
	struct worker	*w;
	uint32_t	 tokens = UINT32_MAX;
	int		 i, nready_workers = 0;

	if (q->failed_reason != NULL && q->nready > 0)
		dispatch_fail_ready(q);
	if (q->failed_reason == NULL && q->nready > 0) {
		for (i = 0; i < q->nworkers; i++) {
			w = q->workers[i];
			if (w != NULL && w->life == WORKER_READY)
				nready_workers++;
		}
		if (q->cf.rate > 0)
			tokens = dispatch_tokens(q);
	}
	dispatch_pass(q, nready_workers, 0, &tokens);
	/*
	 * A second pass sends a worker a job ahead where dispatch_capacity allows it (short
	 * jobs), once every worker has had its batch, so an idle worker never goes without
	 * while another is given a job to wait behind its running one.
	 */
	if (q->nready > 0)
		dispatch_pass(q, nready_workers, 1, &tokens);
	if (q->cf.rate > 0 && tokens == 0 && q->nready > 0)
		dispatch_arm_rate(q);
	/* A queue a reload removed goes once its last job is done. */
	if (q->removed && queue_depth(q) == 0 && q->running == 0) {
		for (i = 0; i < q->nworkers; i++) {
			if (q->workers[i] != NULL &&
			    q->workers[i]->life < WORKER_RETIRING)
				supervisor_retire(q->workers[i]);
		}
	}
	if (server_nblocked(q) > 0 && queue_depth(q) < q->low_jobs &&
	    q->bytes < q->low_bytes)
		server_unblock(q);
}

/*
 * The one way into the daemon, for SUBMIT and the journal's recovery: index j (its id
 * is set), register its waiter, and put it in its queue (st JOB_QUEUED: ready or
 * delayed by its run_at) or, recovered dead, on the dead list (st JOB_DEAD, info's
 * text its reason). info goes with the change (NULL: a new job).
 */
void
dispatch_accept(struct queue *q, struct job *j, struct conn *waiter, enum job_state st,
    struct job_change *info)
{
	job_table_add(j);
	if (waiter != NULL && server_wait(waiter, j) != 0)
		log_warnx("job %llu: no memory to register its waiter",
		    (unsigned long long)j->id);
	if (st == JOB_DEAD)
		job_change(j, JOB_DEAD, info);
	else
		queue_push_as(q, j, info);
}

/* Accept a new job into its queue, with a new id (dispatch_submit: info NULL). */
uint64_t
dispatch_submit_as(struct queue *q, struct job *j, struct conn *waiter,
    struct job_change *info)
{
	j->id = job_next_id();
	dispatch_accept(q, j, waiter, JOB_QUEUED, info);
	return (j->id);
}

/* lifecycle listener: a job is ready to run, dispatch its queue later in this pass. */

/*
 * An attempt failed: retry after a backoff while attempts are left, else the job is
 * dead: kept with its last error until retried or pushed out by dead_max.
 */
static void
dispatch_failed(struct worker *w, struct job *j, uint64_t ran_us, enum job_state st,
    int permanent, const char *why, uint32_t whylen, const char *dead_reason)
{
	struct queue		*q = w->queue;
	struct job_change	 ch = { .outcome = st, .err = why, .errlen = whylen,
				    .text = why, .len = whylen, .cause = dead_reason,
				    .pid = w->pid, .ran_ms = (uint32_t)(ran_us / 1000),
				    .ran_us = ran_us };
	char			 msg[512];

	if (!permanent && dead_reason == NULL && !master_stopping &&
	    j->attempts <= q->cf.retries) {
		ch.delay_ms = jobpool_backoff_ms(q->cf.backoff_base_ms,
		    q->cf.backoff_max_ms, q->cf.backoff_jitter, j->attempts,
		    dispatch_random());
		j->run_at = now_us() + ch.delay_ms * 1000;
		job_change(j, JOB_RETRY_WAIT, &ch);
		queue_push(q, j);
		return;
	}
	if (job_extra(j) != NULL)
		j->x->last_status = (uint8_t)st;
	if (dead_reason != NULL) {
		/* Its waiters and the dead list say why it was quarantined. */
		ch.text = msg;
		ch.len = dispatch_cut(snprintf(msg, sizeof msg, "%s; last: %.*s",
		    dead_reason, (int)(whylen > 400 ? 400 : whylen), why), sizeof msg);
	}
	job_change(j, JOB_DEAD, &ch);
}

/*
 * An attempt of j on w ended (outcome: FAILED or TIMEOUT, retried or dead; CANCELLED,
 * final) with this error text: record the attempt (with DISPATCH_IF_HISTORY only in
 * a history j has already: a job that never failed gets none), then end or fail it.
 */
static void
dispatch_attempt_end(struct job *j, struct worker *w, uint64_t ran_us,
    enum job_state outcome, int flags, const char *cause, const char *text, uint32_t len)
{
	if (!(flags & DISPATCH_IF_HISTORY) || j->x != NULL)
		job_history_add(j, outcome, w->pid, (uint32_t)(ran_us / 1000), text,
		    len);
	if (outcome == JOB_CANCELLED)
		job_change(j, JOB_CANCELLED, &(struct job_change){ .pid = w->pid,
		    .ran_ms = (uint32_t)(ran_us / 1000), .ran_us = ran_us, .text = text,
		    .len = len });
	else
		dispatch_failed(w, j, ran_us, outcome, flags & DISPATCH_PERMANENT, text,
		    len, cause);
}

/* The same, with the error text formatted (and cut at 512 bytes). */
static void
dispatch_endf(struct job *j, struct worker *w, uint64_t ran_us, enum job_state outcome,
    int flags, const char *cause, const char *fmt, ...)
{
	char		msg[512];
	va_list		ap;
	uint32_t	n;

	va_start(ap, fmt);
	n = dispatch_cut(vsnprintf(msg, sizeof msg, fmt, ap), sizeof msg);
	va_end(ap);
	dispatch_attempt_end(j, w, ran_us, outcome, flags, cause, msg, n);
}

/* w's head job starts now. */
static void
dispatch_head_started(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);

	if (j != NULL)
		job_change(j, JOB_EV_STARTED, &(struct job_change){ .pid = w->pid,
		    .at_us = w->head_since });
}

/* An idle worker was sent a job: it starts now, and so does its timeout. */
static void
dispatch_worker_started(struct worker *w)
{
	dispatch_head_started(w);
	dispatch_arm_timeout(w);
}

/* What a queue's workers report to dispatch (supervisor.c calls them; queue_create). */
const struct worker_cb dispatch_worker_cb = {
	.started = dispatch_worker_started,
	.result = dispatch_result,
	.lost = dispatch_worker_lost,
	.timer = dispatch_timer,
	.changed = dispatch_kick,
};

/*
 * The head job's result came: it leaves the head, the service time is measured, and
 * the next job in line starts now, with its timer (and the grace of this one).
 * Returns how long the job ran (us, at least 1).
 */
static uint64_t
dispatch_measure(struct worker *w, const struct job *done)
{
	struct queue	*q = w->queue;
	struct job	*next = TAILQ_FIRST(&w->inflight);
	uint64_t	 now = now_us(), dt = now - w->head_since;
	uint64_t	 ran_us = dt > 0 ? dt : 1;

	w->jobs_done++;
	w->child_pgid = 0;	/* an exec handler reaps its group before it answers */
	w->head_since = now;
	if (dt > 10000000)
		dt = 10000000;
	if (dt == 0)
		dt = 1;
	/* A moving average: the first measurement sets it, later ones move it by an eighth. */
	q->dp.svc_us = q->dp.svc_us == 0 ? (uint32_t)dt :
	    (uint32_t)((q->dp.svc_us * 7 + dt) / 8);
	/*
	 * w's timer is only ever armed for its head: for the job just done if it had a
	 * timeout or was being stopped (dispatch_arm_timeout), so that says whether it is
	 * pending without asking libevent on every result (bench W1).
	 */
	if (done->timeout_ms != 0 || done->cancel ||
	    (next != NULL && (next->timeout_ms != 0 || next->cancel)))
		dispatch_arm_timeout(w);
	return (ran_us);
}

/* It succeeded. */
static void
dispatch_ok(struct job *j, struct worker *w, uint64_t ran_us, const char *data,
    uint32_t len)
{
	job_crashes_clear(j);
	if (j->x != NULL)
		job_history_add(j, JOB_DONE, w->pid, (uint32_t)(ran_us / 1000), "",
		    0);
	job_change(j, JOB_DONE, &(struct job_change){ .pid = w->pid,
	    .ran_ms = (uint32_t)(ran_us / 1000), .ran_us = ran_us, .text = data,
	    .len = len });
}

/* The worker stopped it when asked: cancelled, or timed out (an attempt failed). */
static void
dispatch_stopped(struct job *j, struct worker *w, uint64_t ran_us, enum job_cancel why,
    const char *data, uint32_t len)
{
	int	n = len > 400 ? 400 : (int)len;

	job_crashes_clear(j);
	if (why == JOB_CANCEL_TIMEOUT)
		dispatch_endf(j, w, ran_us, JOB_TIMEOUT, 0, NULL,
		    "timed out after %u ms; %.*s", j->timeout_ms, n, data);
	else
		dispatch_endf(j, w, ran_us, JOB_CANCELLED, DISPATCH_IF_HISTORY, NULL,
		    "%s: %.*s", why == JOB_CANCEL_NONE ? "cancelled" : master_stopping ?
		    "cancelled while running, at shutdown" : "cancelled while running",
		    n, data);
}

/* The head job of w finished with a frame status and output. */
void
dispatch_result(struct worker *w, int status, const char *data, uint32_t len)
{
	struct queue	*q = w->queue;
	struct job	*j;
	enum job_cancel	 why;
	uint64_t	 ran_us;

	if ((j = TAILQ_FIRST(&w->inflight)) == NULL) {
		log_warnx("worker %ld (queue %s): result with no job in flight",
		    (long)w->pid, q->name);
		return;
	}
	supervisor_take(w, j);
	ran_us = dispatch_measure(w, j);
	why = j->cancel;
	j->cancel = JOB_CANCEL_NONE;
	if (len > master_config->max_payload)
		status = -1;	/* a worker forked before a reload lowered max_payload */
	switch (status) {
	case -1:
		job_crashes_clear(j);
		dispatch_endf(j, w, ran_us, JOB_FAILED, DISPATCH_PERMANENT, NULL,
		    "result of %u bytes is larger than max_payload (%u)", len,
		    master_config->max_payload);
		break;
	case FRAME_OK:
		dispatch_ok(j, w, ran_us, data, len);
		break;
	case FRAME_SKIPPED:
		if (why != JOB_CANCEL_TIMEOUT) {
			/* Cancelled before it started: it never ran, so it was no attempt. */
			j->attempts--;
			job_finish(j, JOB_CANCELLED, data, len);
			break;
		}
		/* Timed out before it started: as a timeout. */
		/* FALLTHROUGH */
	case FRAME_CANCELLED:
		dispatch_stopped(j, w, ran_us, why, data, len);
		break;
	default:
		job_crashes_clear(j);
		dispatch_attempt_end(j, w, ran_us, JOB_FAILED, status == FRAME_PERMANENT ?
		    DISPATCH_PERMANENT : 0, NULL, data, len);
		break;
	}
	dispatch_head_started(w);
	dispatch_maybe_recycle(w);
	dispatch_kick(q);
}

/*
 * w is gone: the jobs behind its head never started. They go back to the front of
 * their levels, last first so they keep their order, or end if they were cancelled or
 * the daemon stops.
 */
static void
dispatch_requeue_unstarted(struct worker *w, struct job *head)
{
	struct job	*j;

	while ((j = TAILQ_LAST(&w->inflight, joblist)) != NULL && j != head) {
		supervisor_take(w, j);
		j->attempts--;
		if (j->cancel) {
			j->cancel = JOB_CANCEL_NONE;
			job_finish_text(j, JOB_CANCELLED, "cancelled before it started");
		} else if (master_stopping)
			job_finish_text(j, JOB_CANCELLED,
			    "daemon stopped before the job ran");
		else
			queue_push_front(w->queue, j);
	}
}

/* w died while running head, which had not been asked to stop: a crash, or poison. */
static void
dispatch_crashed(struct job *head, struct worker *w, uint64_t ran_us, const char *why)
{
	struct queue	*q = w->queue;
	char		 poison[96];
	const char	*cause = NULL;

	log_job(LOG_WARNING, head->id, q->name, (long)w->pid,
	    "queue %s: job %llu: worker %ld died while running it (%s); "
	    "attempt %u of %u", q->name, (unsigned long long)head->id,
	    (long)w->pid, why, head->attempts, q->cf.retries + 1);
	/* The count lives in head->x; without memory, no count. */
	if (job_extra(head) != NULL)
		head->x->crashes++;
	if (q->cf.poison_after > 0 && job_crashes(head) >= q->cf.poison_after) {
		snprintf(poison, sizeof poison, "poison job: it killed %u worker%s in a "
		    "row", job_crashes(head), job_crashes(head) == 1 ? "" : "s");
		cause = poison;
	}
	dispatch_endf(head, w, ran_us, JOB_FAILED, 0, cause,
	    "worker %ld died while running it: %s", (long)w->pid, why);
}

/*
 * Worker w is gone. What it held: its head job was running (unless the worker retired
 * cleanly, in which case nothing was), and the jobs behind it never started.
 */
void
dispatch_worker_lost(struct worker *w, const char *why)
{
	struct queue	*q = w->queue;
	struct job	*head = TAILQ_FIRST(&w->inflight);
	uint64_t	 ran_us;
	int		 killed;

	if (w->leave == WORKER_SAID_RETIRE)
		head = NULL;	/* it said it would run nothing more */
	else if (head != NULL && w->killed_for != 0 && head->id != w->killed_for)
		/*
		 * It was killed for a job that would not stop, whose result then crossed
		 * the kill: this one had only just begun, through no fault of its own.
		 */
		head = NULL;
	dispatch_requeue_unstarted(w, head);
	dispatch_kick(q);
	if (head == NULL)
		return;
	supervisor_take(w, head);
	ran_us = now_us() - w->head_since;
	if (ran_us == 0)
		ran_us = 1;
	killed = w->killed_for == head->id;

	switch (head->cancel) {
	case JOB_CANCEL_NONE:
		dispatch_crashed(head, w, ran_us, why);
		break;
	case JOB_CANCEL_TIMEOUT:
		head->cancel = JOB_CANCEL_NONE;
		if (killed)
			dispatch_endf(head, w, ran_us, JOB_TIMEOUT, 0, NULL, "timed out "
			    "after %u ms; the handler did not stop within the grace "
			    "period (%u ms): worker %ld was killed", head->timeout_ms,
			    q->cf.grace_ms, (long)w->pid);
		else
			dispatch_endf(head, w, ran_us, JOB_TIMEOUT, 0, NULL, "timed out "
			    "after %u ms; worker %ld died before cleanup finished: %s",
			    head->timeout_ms, (long)w->pid, why);
		break;
	default:
		head->cancel = JOB_CANCEL_NONE;
		if (killed)
			dispatch_endf(head, w, ran_us, JOB_CANCELLED, 0, NULL, "cancelled "
			    "while running%s: the handler did not stop within the grace "
			    "period (%u ms); worker %ld was killed, cleanup did not finish",
			    master_stopping ? ", at shutdown" : "", q->cf.grace_ms,
			    (long)w->pid);
		else
			dispatch_endf(head, w, ran_us, JOB_CANCELLED, 0, NULL, "cancelled "
			    "while running%s: worker %ld died before cleanup finished: %s",
			    master_stopping ? ", at shutdown" : "", (long)w->pid, why);
		break;
	}
}

/*
 * Ask the worker running j to stop it (by: a client, or the shutdown), cooperatively;
 * it is killed after the grace period. 1, or -1 with *why.
 */
static int
dispatch_stop(struct job *j, enum job_cancel by, const char **why)
{
	struct worker	*w;

	switch (j->cancel) {
	case JOB_CANCEL_NONE:
		break;
	case JOB_CANCEL_TIMEOUT:
		/*
		 * It timed out and is being stopped already (its grace timer runs): this
		 * cancel makes that final, so it is not retried.
		 */
		j->cancel = by;
		job_change(j, JOB_EV_CANCELLING, NULL);
		return (1);
	default:
		/* Already being cancelled; a client's cancel still records the end. */
		if (by == JOB_CANCEL_USER && j->cancel != JOB_CANCEL_USER) {
			j->cancel = by;
			job_change(j, JOB_EV_CANCELLING, NULL);
		}
		return (1);
	}
	if ((w = supervisor_holder(j)) == NULL) {
		*why = "is running on no known worker";
		return (-1);
	}
	j->cancel = by;
	job_change(j, JOB_EV_CANCELLING, &(struct job_change){ .pid = w->pid });
	supervisor_cancel(w, j, FRAME_CANCEL_USER);
	if (TAILQ_FIRST(&w->inflight) == j)
		dispatch_arm_timeout(w);
	return (1);
}

/*
 * Cancel a job. Waiting: removed and answered now (returns 0). Running: the worker is
 * asked to stop it cooperatively, and killed after the grace period (returns 1; the
 * answer comes with the result). -1 with *why when the state does not allow it.
 */
int
dispatch_cancel(struct job *j, const char **why)
{
	struct queue	*q = job_queue(j);

	*why = NULL;
	switch (j->state) {
	case JOB_QUEUED:
	case JOB_DELAYED:
	case JOB_RETRY_WAIT:
		queue_remove(q, j);
		job_finish_text(j, JOB_CANCELLED, "cancelled");
		dispatch_queue(q);
		return (0);
	case JOB_RUNNING:
		return (dispatch_stop(j, JOB_CANCEL_USER, why));
	case JOB_DEAD:
		*why = "is dead (out of attempts); RETRY it, or leave it";
		return (-1);
	default:
		*why = "has finished";
		return (-1);
	}
}

/* Put a dead job back in its queue with fresh attempts. 0, or -1 with *why. */
int
dispatch_retry(struct job *j, const char **why)
{
	struct queue	*q = job_queue(j);

	*why = NULL;
	if (j->state != JOB_DEAD) {
		*why = "is not dead";
		return (-1);
	}
	if (master_stopping) {
		*why = "cannot be retried: the daemon is shutting down";
		return (-1);
	}
	if (q->removed) {
		*why = "cannot be retried: a reload removed its queue";
		return (-1);
	}
	if (q->failed_reason != NULL) {
		*why = "cannot be retried: its queue's handler cannot start (fix the "
		    "configuration and reload)";
		return (-1);
	}
	job_dead_remove(j);
	j->attempts = 0;
	job_crashes_clear(j);
	j->run_at = 0;
	queue_push(q, j);
	dispatch_queue(q);
	return (0);
}

/*
 * Arm w's timer for its head job: the time left of its timeout since it started or,
 * once it has been asked to stop, the grace period (plus time to report) from now.
 */
void
dispatch_arm_timeout(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);
	struct timeval	 tv;
	uint64_t	 ran, left;

	if (j == NULL) {
		evtimer_del(w->tev);
		return;
	}
	if (j->cancel) {
		if (w->grace_for == j->id && evtimer_pending(w->tev, NULL))
			return;
		w->grace_for = j->id;
		left = (uint64_t)w->queue->cf.grace_ms + DISPATCH_REPORT_MS;
	} else if (j->timeout_ms == 0) {
		evtimer_del(w->tev);
		return;
	} else {
		w->grace_for = 0;
		ran = (now_us() - w->head_since) / 1000;
		left = ran < j->timeout_ms ? j->timeout_ms - ran : 0;
	}
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	evtimer_add(w->tev, &tv);
}

/* w's timer fired: its head job timed out, or its grace period is over. */
void
dispatch_timer(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);

	if (j == NULL || worker_reaped(w))
		return;
	if (j->cancel && w->grace_for == j->id) {
		/* The timer ran the grace period and the time to report after it. */
		log_job(LOG_WARNING, j->id, w->queue->name, (long)w->pid,
		    "queue %s: job %llu: still running %u ms after it was asked to "
		    "stop (grace %u ms, then %u ms to report); killing worker %ld",
		    w->queue->name, (unsigned long long)j->id,
		    w->queue->cf.grace_ms + DISPATCH_REPORT_MS, w->queue->cf.grace_ms,
		    DISPATCH_REPORT_MS, (long)w->pid);
		supervisor_kill(w, j->id);
		return;
	}
	j->cancel = JOB_CANCEL_TIMEOUT;
	job_change(j, JOB_EV_CANCELLING, &(struct job_change){ .pid = w->pid });
	supervisor_cancel(w, j, FRAME_CANCEL_TIMEOUT);
	dispatch_arm_timeout(w);
}

/* Shutdown past its deadline: one job a worker holds is cancelled, cooperatively. */
static int
dispatch_stop_for_shutdown(struct job *j, void *arg)
{
	uint32_t	*grace = arg;
	const char	*why;

	(void)dispatch_stop(j, JOB_CANCEL_SHUTDOWN, &why);
	if (job_queue(j)->cf.grace_ms > *grace)
		*grace = job_queue(j)->cf.grace_ms;
	return (0);
}

/*
 * Shutdown past its deadline: cancel every job held by a worker, cooperatively.
 * Returns the longest grace period involved, in ms.
 */
uint32_t
dispatch_cancel_running(void)
{
	uint32_t	grace = 0;
	int		i;

	for (i = 0; i < nqueues; i++)
		(void)supervisor_foreach_inflight(queues[i], dispatch_stop_for_shutdown,
		    &grace);
	return (grace + DISPATCH_REPORT_MS);
}

/* Shutdown: every job still waiting in a queue is answered as cancelled. */
void
dispatch_cancel_waiting(const char *reason)
{
	struct queue	*q;
	struct job	*j;
	uint32_t	 len = strlen(reason);
	int		 i;

	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		while ((j = queue_pop(q)) != NULL)
			job_finish(j, JOB_CANCELLED, reason, len);
		while ((j = queue_pop_delayed(q)) != NULL)
			job_finish(j, JOB_CANCELLED, reason, len);
	}
}
