/*
 * dispatch.c: moves jobs from queues to workers and results back to their jobs, and
 * carries the job lifecycle: timeouts, retries with backoff, dead and poison jobs,
 * cancellation, and the per-queue limits (max_running, rate), beside which keys.c
 * holds the per-key ones (dispatch_next).
 *
 * A worker holds an ordered in-flight list; it runs up to w->slots of them at once
 * (one for CPU handlers, the queue's concurrency for IO handlers, as its READY said),
 * and the first w->slots of the list are the ones running, each since its j->run_at.
 * Their results come back in any order, each naming its job; as one ends, the next
 * in line starts. A worker of one slot runs its jobs in order: when a queue is deep and its jobs are
 * short, a worker is given several jobs at once (a batch), sized so it holds about
 * DISPATCH_BATCH_US of work: tiny jobs then cost one pipe round trip per batch instead
 * of one per job, and long jobs are still handed out one at a time so an idle worker
 * never waits behind a busy one. Jobs shorter than DISPATCH_AHEAD_US get one more in
 * flight once every worker has its own (dispatch_queue's second pass), so that a worker
 * starts its next job as soon as it finishes one instead of waiting a round trip
 * through the master for it.
 *
 * Each worker has one timer, for the earliest deadline of its running jobs: a job's
 * timeout while it runs, then, once the job has been asked to stop (cancelled or timed
 * out: a CANCEL frame names it, and only it stops), the grace period after which the
 * worker is killed (w->stops keeps those deadlines). A worker that dies takes only the
 * jobs it held: its running ones count an attempt, the ones in line never started.
 *
 * Batches (issue 15; the dispatch_batch_* functions): a queue with batch_size gives a
 * worker that holds nothing up to batch_size jobs in one FRAME_BATCH, which its handler
 * runs in one call; the worker's READY said batch_size slots, so they all start
 * together and each is one of its running jobs, with its own result, attempts, timeout
 * and events. Fewer than batch_size go only once the oldest ready job has waited
 * batch_wait_ms (q->dp.batch_ev comes back then). A batch killed because one of its
 * jobs would not stop puts the others back at the front of the queue, that attempt not
 * counted (dispatch_batch_spare): they did nothing wrong, and were not cut off midway
 * as an IO worker's other requests are, but all of a piece with the stubborn one.
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
static void	dispatch_batch_pass(struct queue *, uint32_t *);
static void	dispatch_batch_send(struct queue *, struct worker *, uint32_t *);
static void	dispatch_batch_spare(struct worker *);
static void	dispatch_lost_running(struct worker *, struct job *, uint64_t,
		    const char *);

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
	if (q->dp.batch_ev != NULL)
		event_free(q->dp.batch_ev);
	q->dp.batch_ev = NULL;
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

/*
 * Take j off w's in-flight list (its result came, or w is gone); a keyed job is one
 * fewer running for its key (keys.c), which may then run one it parked.
 */
static inline void
dispatch_take(struct worker *w, struct job *j)
{
	supervisor_take(w, j);
	if (j->haskey)
		keys_release(w->queue, j);
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

	/* An IO handler's worker: as many as it runs at once, each started when sent. */
	if (w->slots > 1) {
		cap = w->slots;
		goto recycle;
	}
	if (q->cf.rate > 0 || q->cf.rate_per_key > 0)
		cap = 1;	/* rate-limited: a job is sent when it may start */
	/*
	 * Until the queue's jobs are known to be short, one at a time. And never add to a
	 * worker whose running job has already taken much longer than the average: what
	 * is sent to it waits behind that job, whatever its priority.
	 */
	if (q->dp.svc_us == 0)
		cap = 1;
	else if (w->ninflight > 0 && now_us() - TAILQ_FIRST(&w->inflight)->run_at >
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
recycle:
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
 * Has q jobs that may be sent now: ready ones, or parked ones whose key may run them?
 * (Parked jobs whose key is at its limit wait; queue_depth still counts them.)
 */
static inline int
dispatch_runnable(const struct queue *q)
{
	return (q->nready > 0 || keys_has_ready(q));
}

/*
 * The next job to send: first a parked one whose key may run it now (it was popped
 * before anything still in the ready lists), then the ready lists, where a keyed job
 * whose key is at its limit is parked (keys.c) and the next one is looked at. A queue
 * without keyed jobs pays an empty-list test and a bit test per job.
 */
static inline struct job *
dispatch_next(struct queue *q)
{
	struct job	*j;

	if (keys_has_ready(q) && (j = keys_next(q)) != NULL)
		return (j);
	while ((j = queue_pop(q)) != NULL) {
		if (!j->haskey || keys_admit(q, j))
			return (j);
	}
	return (NULL);
}

/* keys_drain_parked's: a parked job of a queue whose handler cannot start is dead. */
static void
dispatch_fail_parked(struct job *j, void *arg)
{
	const char	*msg = arg;

	if (job_extra(j) != NULL)
		j->x->last_status = JOB_FAILED;
	job_finish(j, JOB_DEAD, msg, strlen(msg));
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
	if (q->keys.nparked > 0) {
		count += q->keys.nparked;
		keys_drain_parked(q, dispatch_fail_parked, msg);
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

	for (i = 0; i < q->nworkers && dispatch_runnable(q) && q->failed_reason == NULL;
	    i++) {
		w = q->workers[i];
		if (w == NULL || w->life != WORKER_READY)
			continue;
		/*
		 * max_running: a semaphore over the queue's busy workers, or, for workers
		 * of several slots, over its running jobs.
		 */
		if (w->ninflight == 0 && q->cf.max_running > 0 && w->slots == 1 &&
		    q->busy >= q->cf.max_running)
			continue;
		cap = dispatch_capacity(q, w, nready_workers, ahead);
		if (w->slots > 1 && q->cf.max_running > 0) {
			uint32_t room = q->running < q->cf.max_running ?
			    q->cf.max_running - q->running + w->ninflight : w->ninflight;

			if (room < cap)
				cap = room;
		}
		sent = 0;
		while (w->ninflight < cap && *tokens > 0 && (j = dispatch_next(q)) != NULL) {
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
	int		 i, nready_workers = 0, paused;

	if (q->failed_reason != NULL && (q->nready > 0 || q->keys.nparked > 0))
		dispatch_fail_ready(q);
	/*
	 * An administrator's PAUSE sends nothing until RESUME kicks q (queue_pause); a
	 * queue a reload removed drains all the same, since nothing can RESUME it.
	 * A chain's stage sends nothing while its next queue is full (chain.c): its jobs
	 * wait here, and its producers are pushed back once it fills in turn.
	 */
	if ((paused = q->paused && !q->removed))
		tokens = 0;
	else if (q->ch.next != NULL && dispatch_runnable(q) && chain_next_full(q))
		tokens = 0;
	else if (q->failed_reason == NULL && dispatch_runnable(q)) {
		for (i = 0; i < q->nworkers; i++) {
			w = q->workers[i];
			if (w != NULL && w->life == WORKER_READY)
				nready_workers++;
		}
		if (q->cf.rate > 0)
			tokens = dispatch_tokens(q);
	}
	if (q->cf.batch_size > 0)
		dispatch_batch_pass(q, &tokens);
	else {
		dispatch_pass(q, nready_workers, 0, &tokens);
		/*
		 * A second pass sends a worker a job ahead where dispatch_capacity allows it
		 * (short jobs), once every worker has had its batch, so an idle worker never
		 * goes without while another is given a job to wait behind its running one.
		 */
		if (dispatch_runnable(q))
			dispatch_pass(q, nready_workers, 1, &tokens);
	}
	if (q->cf.rate > 0 && tokens == 0 && dispatch_runnable(q) && !q->ch.held &&
	    !paused)
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
	/* Room in a chain's next queue: the stages it held go on. */
	if (q->ch.holding)
		chain_room(q);
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
 * An attempt failed: retry after a backoff (at least after_s seconds, a server's
 * Retry-After) while attempts are left, else the job is dead: kept with its last
 * error until retried or pushed out by dead_max.
 */
static void
dispatch_failed(struct worker *w, struct job *j, uint64_t ran_us, enum job_state st,
    int permanent, uint32_t after_s, const char *why, uint32_t whylen,
    const char *dead_reason)
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
		if (ch.delay_ms < (uint64_t)after_s * 1000)
			ch.delay_ms = (uint64_t)after_s * 1000;
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
    enum job_state outcome, int flags, uint32_t after_s, const char *cause,
    const char *text, uint32_t len)
{
	if (!(flags & DISPATCH_IF_HISTORY) || j->x != NULL)
		job_history_add(j, outcome, w->pid, (uint32_t)(ran_us / 1000), text,
		    len);
	if (outcome == JOB_CANCELLED)
		job_change(j, JOB_CANCELLED, &(struct job_change){ .pid = w->pid,
		    .ran_ms = (uint32_t)(ran_us / 1000), .ran_us = ran_us, .text = text,
		    .len = len });
	else
		dispatch_failed(w, j, ran_us, outcome, flags & DISPATCH_PERMANENT, after_s,
		    text, len, cause);
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
	dispatch_attempt_end(j, w, ran_us, outcome, flags, 0, cause, msg, n);
}

/* Until when (monotonic us) w's running job id may take to stop; 0: not asked. */
uint64_t
dispatch_stop_until(const struct worker *w, uint64_t id)
{
	uint32_t	i;

	for (i = 0; i < w->nstops; i++) {
		if (w->stops[i].id == id)
			return (w->stops[i].until_us);
	}
	return (0);
}

/* Running job id was asked to stop: w is killed past until_us (0 on no memory: now). */
static uint64_t
dispatch_stop_add(struct worker *w, uint64_t id, uint64_t until_us)
{
	struct worker_stop	*n;
	uint32_t		 cap;

	if (w->nstops == w->capstops) {
		cap = w->capstops ? w->capstops * 2 : 4;
		if ((n = reallocarray(w->stops, cap, sizeof *n)) == NULL) {
			log_warnx("worker %ld: no memory to time job %llu's grace; "
			    "its grace ends now", (long)w->pid, (unsigned long long)id);
			return (now_us());
		}
		w->stops = n;
		w->capstops = cap;
	}
	w->stops[w->nstops].id = id;
	w->stops[w->nstops].until_us = until_us;
	w->nstops++;
	return (until_us);
}

/* Job id has left w: its grace, if it had one, is over. */
static void
dispatch_stop_del(struct worker *w, uint64_t id)
{
	uint32_t	i;

	for (i = 0; i < w->nstops; i++) {
		if (w->stops[i].id == id) {
			w->stops[i] = w->stops[--w->nstops];
			return;
		}
	}
}

/*
 * j starts on w now (at_us): listeners hear it with its wait (from its run_at), and
 * from here its run_at is when it started, which its timeout counts from.
 */
static void
dispatch_started_at(struct worker *w, struct job *j, uint64_t at_us)
{
	job_change(j, JOB_EV_STARTED, &(struct job_change){ .pid = w->pid,
	    .at_us = at_us });
	j->run_at = at_us;
}

/* A job sent to w starts now (w had a free slot), and so does its timeout. */
static void
dispatch_worker_started(struct worker *w, struct job *j)
{
	dispatch_started_at(w, j, now_us());
	/* One slot: w was idle. Several: only a deadline of j's can be the earliest. */
	if (w->slots == 1 || j->timeout_ms != 0 || j->cancel)
		dispatch_arm_timeout(w);
}

/*
 * A running job of w ended at now: the first one in line, if any, takes its slot and
 * starts now. Returns it, or NULL.
 */
static struct job *
dispatch_next_started(struct worker *w, uint64_t now)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);
	uint32_t	 i;

	if (w->ninflight < w->slots)
		return (NULL);
	for (i = 1; i < w->slots; i++)
		j = TAILQ_NEXT(j, entry);
	dispatch_started_at(w, j, now);
	return (j);
}

/*
 * w's running job id got an HTTP response with status code, the body's length (8
 * bytes) and content type in meta: kept for its RESULT, which comes next (the http
 * handler sends the two together), for STATUS. The worker's text is checked again
 * here, a key=value field: printable, no blank.
 */
static void
dispatch_http_status(struct worker *w, uint64_t id, unsigned code, const char *meta,
    uint32_t len)
{
	char		ctype[64];
	uint64_t	blen;
	uint32_t	i, n = 0;
	int		r;

	w->http_id = id;
	w->http_code = code >= 100 && code <= 999 ? (uint16_t)code : 0;
	w->http_metalen = 0;
	if (len < sizeof blen)
		return;
	memcpy(&blen, meta, sizeof blen);
	for (i = sizeof blen; i < len && n < sizeof ctype - 1; i++) {
		if (meta[i] > ' ' && meta[i] < 0x7f)
			ctype[n++] = meta[i];
	}
	ctype[n] = '\0';
	r = snprintf(w->http_meta, sizeof w->http_meta, "%s%s content_length=%llu",
	    n > 0 ? " content_type=" : "", ctype, (unsigned long long)blen);
	if (r > 0 && (size_t)r < sizeof w->http_meta)
		w->http_metalen = (uint8_t)r;
}

/* What a queue's workers report to dispatch (supervisor.c calls them; queue_create). */
const struct worker_cb dispatch_worker_cb = {
	.started = dispatch_worker_started,
	.result = dispatch_result,
	.http_status = dispatch_http_status,
	.lost = dispatch_worker_lost,
	.timer = dispatch_timer,
	.changed = dispatch_kick,
};

/*
 * A running job's result came at now, and it has left w's list: measure how long it
 * ran (us, at least 1) and, for a worker of one slot, the service time. *rearm says
 * whether w's timer may have been for it: it had a timeout or was being stopped.
 */
static uint64_t
dispatch_measure(struct worker *w, struct job *done, uint64_t now, int *rearm)
{
	struct queue	*q = w->queue;
	uint64_t	 dt = now > done->run_at ? now - done->run_at : 0;
	uint64_t	 ran_us = dt > 0 ? dt : 1;

	w->jobs_done++;
	w->child_pgid = 0;	/* an exec handler reaps its group before it answers */
	/*
	 * w's timer is only ever armed for its running jobs' deadlines: this one's if it
	 * had a timeout or was being stopped (dispatch_arm_timeout), so that says whether
	 * it may be pending without asking libevent on every result (bench W1).
	 */
	*rearm = done->timeout_ms != 0 || done->cancel;
	if (w->nstops > 0)
		dispatch_stop_del(w, done->id);
	if (w->slots > 1)
		return (ran_us);	/* its jobs overlap: no service time per job */
	if (dt > 10000000)
		dt = 10000000;
	if (dt == 0)
		dt = 1;
	/* A moving average: the first measurement sets it, later ones move it by an eighth. */
	q->dp.svc_us = q->dp.svc_us == 0 ? (uint32_t)dt :
	    (uint32_t)((q->dp.svc_us * 7 + dt) / 8);
	return (ran_us);
}

/* w's running job with this id (its head, for a worker of one slot), or NULL. */
static struct job *
dispatch_find_running(struct worker *w, uint64_t id)
{
	struct job	*j;
	uint32_t	 i = 0;

	TAILQ_FOREACH(j, &w->inflight, entry) {
		if (j->id == id)
			return (j);
		if (++i >= w->slots)
			break;
	}
	return (NULL);
}

/* It succeeded (with an http status to keep, or 0). */
static void
dispatch_ok(struct job *j, struct worker *w, uint64_t ran_us, const char *data,
    uint32_t len, uint16_t http_status, const char *meta, uint8_t metalen)
{
	job_crashes_clear(j);
	if (j->x != NULL)
		job_history_add(j, JOB_DONE, w->pid, (uint32_t)(ran_us / 1000), "",
		    0);
	job_change(j, JOB_DONE, &(struct job_change){ .pid = w->pid,
	    .ran_ms = (uint32_t)(ran_us / 1000), .ran_us = ran_us, .text = data,
	    .len = len, .http_status = http_status, .http_meta = meta,
	    .http_metalen = metalen });
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

/*
 * Job id, running on w, finished with a frame status and output; a failure may say
 * how long its retry must wait at least (retry_after_s, the frame's flags).
 */
void
dispatch_result(struct worker *w, uint64_t id, int status, uint32_t retry_after_s,
    const char *data, uint32_t len)
{
	struct queue	*q = w->queue;
	struct job	*j, *next;
	enum job_cancel	 why;
	uint64_t	 ran_us, now;
	uint16_t	 http = 0;
	const char	*meta = NULL;
	uint8_t		 metalen = 0;
	int		 rearm;
	const char	*key;
	size_t		 klen;

	if ((j = dispatch_find_running(w, id)) == NULL) {
		log_warnx("worker %ld (queue %s): result for job %llu, which it does not "
		    "run; ignored", (long)w->pid, q->name, (unsigned long long)id);
		return;
	}
	dispatch_take(w, j);
	now = now_us();
	ran_us = dispatch_measure(w, j, now, &rearm);
	why = j->cancel;
	j->cancel = JOB_CANCEL_NONE;
	if (w->http_id == id) {
		http = w->http_code;
		w->http_id = 0;
		if (status == FRAME_OK && w->http_metalen != 0) {
			meta = w->http_meta;
			metalen = w->http_metalen;
		}
		/* A failure records its attempt (and makes j->x) anyway; a success may not. */
		if (http != 0 && status != FRAME_OK && job_extra(j) != NULL)
			j->x->http_status = http;
	}
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
		dispatch_ok(j, w, ran_us, data, len, http, meta, metalen);
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
		/*
		 * A Retry-After (retry_after_s) is the server's word on its own load, not
		 * on this job: it pauses the job's key (an http job's is its URL's host
		 * unless it was given one), so no job of that host starts before it while
		 * the others go on. The job's own retry waits for it as well.
		 */
		if (retry_after_s > 0 && j->haskey) {
			key = job_key(j, &klen);
			keys_pause(q, key, klen, now_ms() + (uint64_t)retry_after_s * 1000);
		}
		dispatch_attempt_end(j, w, ran_us, JOB_FAILED, status == FRAME_PERMANENT ?
		    DISPATCH_PERMANENT : 0, retry_after_s, NULL, data, len);
		break;
	}
	/* Its slot goes to the next in line, which may bring a deadline of its own. */
	if ((next = dispatch_next_started(w, now)) != NULL &&
	    (next->timeout_ms != 0 || next->cancel))
		rearm = 1;
	if (rearm)
		dispatch_arm_timeout(w);
	dispatch_maybe_recycle(w);
	dispatch_kick(q);
}

/*
 * w is gone: the jobs behind its first started ones never started. They go back to
 * the front of their levels, last first so they keep their order, or end if they were
 * cancelled or the daemon stops.
 */
static void
dispatch_requeue_unstarted(struct worker *w, uint32_t started)
{
	struct job	*j;

	while (w->ninflight > started &&
	    (j = TAILQ_LAST(&w->inflight, joblist)) != NULL) {
		dispatch_take(w, j);
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
 * Worker w is gone. What it held: its first w->slots jobs were running (unless the
 * worker retired cleanly, in which case none was), and the jobs behind them never
 * started.
 */
void
dispatch_worker_lost(struct worker *w, const char *why)
{
	struct queue	*q = w->queue;
	struct job	*head = TAILQ_FIRST(&w->inflight);
	uint32_t	 started = w->ninflight < w->slots ? w->ninflight : w->slots;
	uint64_t	 now = now_us();

	if (w->leave == WORKER_SAID_RETIRE)
		started = 0;	/* it said it would run nothing more */
	else if (w->slots == 1 && head != NULL && w->killed_for != 0 &&
	    head->id != w->killed_for)
		/*
		 * It was killed for a job that would not stop, whose result then crossed
		 * the kill: this one had only just begun, through no fault of its own.
		 */
		started = 0;
	dispatch_requeue_unstarted(w, started);
	if (w->killed_for != 0 && q->cf.batch_size > 0)
		dispatch_batch_spare(w);
	dispatch_kick(q);
	while ((head = TAILQ_FIRST(&w->inflight)) != NULL) {
		dispatch_take(w, head);
		dispatch_lost_running(w, head, now > head->run_at ? now - head->run_at : 1,
		    why);
	}
}

/* w died while running head (for ran_us): how that attempt ends. */
static void
dispatch_lost_running(struct worker *w, struct job *head, uint64_t ran_us,
    const char *why)
{
	struct queue	*q = w->queue;
	int		 killed = w->killed_for == head->id;

	switch (head->cancel) {
	case JOB_CANCEL_NONE:
		if (w->killed_for != 0) {
			/* It ran beside the job w was killed for: an attempt, not a crash. */
			dispatch_endf(head, w, ran_us, JOB_FAILED, 0, NULL, "worker %ld "
			    "was killed because job %llu would not stop (grace %u ms)",
			    (long)w->pid, (unsigned long long)w->killed_for,
			    q->cf.grace_ms);
			break;
		}
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
	if (supervisor_running(w, j))
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
 * When running job j of w must have ended (monotonic us), at now: its timeout since it
 * started or, once it has been asked to stop, its grace period (plus time to report)
 * from when it was asked, which is recorded then. 0: no limit.
 */
static uint64_t
dispatch_deadline(struct worker *w, struct job *j, uint64_t now)
{
	uint64_t	until;

	if (j->cancel) {
		if ((until = dispatch_stop_until(w, j->id)) == 0)
			until = dispatch_stop_add(w, j->id, now +
			    ((uint64_t)w->queue->cf.grace_ms + DISPATCH_REPORT_MS) * 1000);
		return (until);
	}
	if (j->timeout_ms == 0)
		return (0);
	return (j->run_at + (uint64_t)j->timeout_ms * 1000);
}

/* Arm w's timer for the earliest deadline of its running jobs, or disarm it. */
void
dispatch_arm_timeout(struct worker *w)
{
	struct job	*j;
	struct timeval	 tv;
	uint64_t	 now = now_us(), first = UINT64_MAX, d, left;
	uint32_t	 i = 0;

	TAILQ_FOREACH(j, &w->inflight, entry) {
		if (i++ >= w->slots)
			break;
		if ((d = dispatch_deadline(w, j, now)) != 0 && d < first)
			first = d;
	}
	if (first == UINT64_MAX) {
		evtimer_del(w->tev);
		return;
	}
	left = first > now ? first - now : 0;
	tv.tv_sec = (time_t)(left / 1000000);
	tv.tv_usec = (suseconds_t)(left % 1000000);
	evtimer_add(w->tev, &tv);
}

/*
 * w's timer fired: each running job past its timeout is asked to stop (it alone: a
 * CANCEL frame names it); one past its grace period gets w killed.
 */
void
dispatch_timer(struct worker *w)
{
	struct job	*j;
	uint64_t	 now = now_us(), until;
	uint32_t	 i = 0;

	if (worker_reaped(w))
		return;
	TAILQ_FOREACH(j, &w->inflight, entry) {
		if (i++ >= w->slots)
			break;
		if (j->cancel) {
			if ((until = dispatch_stop_until(w, j->id)) == 0 || now < until)
				continue;
			/* The timer ran the grace period and the time to report after it. */
			log_job(LOG_WARNING, j->id, w->queue->name, (long)w->pid,
			    "queue %s: job %llu: still running %u ms after it was asked "
			    "to stop (grace %u ms, then %u ms to report); killing worker "
			    "%ld", w->queue->name, (unsigned long long)j->id,
			    w->queue->cf.grace_ms + DISPATCH_REPORT_MS,
			    w->queue->cf.grace_ms, DISPATCH_REPORT_MS, (long)w->pid);
			supervisor_kill(w, j->id);
			return;
		}
		if (j->timeout_ms == 0 || now < j->run_at + (uint64_t)j->timeout_ms * 1000)
			continue;
		j->cancel = JOB_CANCEL_TIMEOUT;
		job_change(j, JOB_EV_CANCELLING, &(struct job_change){ .pid = w->pid });
		supervisor_cancel(w, j, FRAME_CANCEL_TIMEOUT);
	}
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

/* keys_drain_parked's: a parked job is cancelled by the shutdown. */
static void
dispatch_cancel_parked(struct job *j, void *arg)
{
	const char	*reason = arg;

	job_finish(j, JOB_CANCELLED, reason, strlen(reason));
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
		keys_drain_parked(q, dispatch_cancel_parked, (void *)reason);
		while ((j = queue_pop_delayed(q)) != NULL)
			job_finish(j, JOB_CANCELLED, reason, len);
	}
}

/* ----- batches (issue 15): a queue with batch_size ----- */

static void
dispatch_batch_cb(evutil_socket_t fd, short events, void *arg)
{
	dispatch_queue(arg);
}

/*
 * May a batch go now? A full one may; a short one once the oldest ready job has waited
 * batch_wait_ms, or once a parked job's key lets it run (it was taken off the ready
 * lists for an earlier batch, before anything still in them, and queue_oldest_wait_us
 * does not see it). Otherwise q's batch timer comes back when it will have.
 */
static int
dispatch_batch_due(struct queue *q)
{
	struct timeval	tv;
	uint64_t	now, waited, wait_us = (uint64_t)q->cf.batch_wait_ms * 1000;

	if (q->nready >= q->cf.batch_size || master_stopping || keys_has_ready(q))
		return (1);
	now = now_us();
	if ((waited = queue_oldest_wait_us(q, now)) >= wait_us)
		return (1);
	if (q->dp.batch_ev == NULL &&
	    (q->dp.batch_ev = evtimer_new(master_base, dispatch_batch_cb, q)) == NULL)
		return (1);	/* no timer: better a short batch than none */
	tv.tv_sec = (long)((wait_us - waited) / 1000000);
	tv.tv_usec = (long)((wait_us - waited) % 1000000);
	evtimer_add(q->dp.batch_ev, &tv);
	return (0);
}

/*
 * Give each ready worker that holds nothing one batch: up to batch_size jobs, within
 * the rate's tokens, what it may still run (max_jobs_per_worker) and one frame's bytes.
 * Then, while a whole batch is ready, one more to each worker running a whole batch,
 * to wait in its pipe: it starts that one as soon as it has answered the first, not a
 * round trip through the master later (tiny jobs; bench/README.md, "Batches"). Never
 * more than two a worker, nor a short one behind another.
 */
static void
dispatch_batch_pass(struct queue *q, uint32_t *tokens)
{
	struct worker	*w;
	int		 i, ahead;

	for (ahead = 0; ahead < 2; ahead++) {
		for (i = 0; i < q->nworkers && dispatch_runnable(q) &&
		    q->failed_reason == NULL && *tokens > 0; i++) {
			w = q->workers[i];
			/*
			 * Only a worker of the queue's current kind: one a reload is
			 * replacing may have no batch entry point (or run several jobs
			 * at once, and take no FRAME_BATCH at all).
			 */
			if (w == NULL || w->life != WORKER_READY || w->gen != q->gen)
				continue;
			if (!ahead && w->ninflight == 0) {
				if (q->cf.max_running > 0 &&
				    q->busy >= q->cf.max_running)
					break;
				if (!dispatch_batch_due(q))
					break;
			} else if (!ahead || w->ninflight != q->cf.batch_size ||
			    w->slots != q->cf.batch_size || q->nready < q->cf.batch_size)
				continue;
			dispatch_batch_send(q, w, tokens);
		}
	}
}

/* Send w one batch of what q has ready (see dispatch_batch_pass). */
static void
dispatch_batch_send(struct queue *q, struct worker *w, uint32_t *tokens)
{
	struct job	*jobs[CONFIG_MAX_BATCH_SIZE], *j;
	uint64_t	 bytes, left;
	uint32_t	 n, cap;

	cap = q->cf.batch_size < CONFIG_MAX_BATCH_SIZE ? q->cf.batch_size :
	    CONFIG_MAX_BATCH_SIZE;
	if (*tokens < cap)
		cap = *tokens;
	if (q->cf.max_jobs_per_worker > 0) {
		left = w->dispatched < q->cf.max_jobs_per_worker ?
		    q->cf.max_jobs_per_worker - w->dispatched : 0;
		if (left < cap)
			cap = (uint32_t)left;
	}
	for (n = 0, bytes = 0; n < cap && (j = dispatch_next(q)) != NULL; n++) {
		if (n > 0 && bytes + FRAME_HDR_LEN + j->len > CONFIG_FRAME_MAX) {
			/* Not sent: its key counts it no more (keys_admit or keys_next did). */
			if (j->haskey)
				keys_release(q, j);
			queue_push_front(q, j);
			break;
		}
		bytes += FRAME_HDR_LEN + (uint64_t)j->len;
		j->attempts++;
		job_change(j, JOB_RUNNING, &(struct job_change){ .pid = w->pid });
		jobs[n] = j;
	}
	if (n == 0)
		return;
	supervisor_send_batch(w, jobs, n);
	supervisor_flush(w);
	if (q->cf.rate > 0) {
		*tokens -= n;
		q->dp.tokens -= n;
	}
}

/*
 * w, running a batch, was killed because a job of it would not stop: the batch's jobs
 * that were not asked to stop go back to the front of the queue, last first so they
 * keep their order, that attempt not counted (or end, if the daemon stops). The jobs
 * being stopped are left for dispatch_worker_lost to end.
 */
static void
dispatch_batch_spare(struct worker *w)
{
	struct job	*j, *prev;

	for (j = TAILQ_LAST(&w->inflight, joblist); j != NULL; j = prev) {
		prev = TAILQ_PREV(j, joblist, entry);
		if (j->cancel != JOB_CANCEL_NONE)
			continue;
		dispatch_take(w, j);
		j->attempts--;
		if (master_stopping)
			job_finish_text(j, JOB_CANCELLED, "daemon stopped before the job ran");
		else
			queue_push_front(w->queue, j);
	}
}
