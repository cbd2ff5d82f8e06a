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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "frame.h"
#include "jobpool.h"
#include "jobpoold.h"
#include "journal.h"
#include "log.h"

#define DISPATCH_BATCH_US	2000	/* work to give one worker at once */
#define DISPATCH_AHEAD_US	20000	/* shorter jobs: one more in flight (bench/README.md) */
#define DISPATCH_REPORT_MS	1000	/* after grace: time for the worker to report */

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
	if (q->kicked)
		return;
	if (kick_ev == NULL &&
	    (kick_ev = event_new(master_base, -1, 0, dispatch_kick_cb, NULL)) == NULL) {
		dispatch_queue(q);
		return;
	}
	q->kicked = 1;
	q->kick_next = NULL;
	*kick_tail = q;
	kick_tail = &q->kick_next;
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
		next = q->kick_next;
		q->kicked = 0;
		dispatch_queue(q);
	}
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

/* Refill q's token bucket; returns the whole tokens available. */
static uint32_t
dispatch_tokens(struct queue *q)
{
	uint64_t	now = now_us();

	if (q->tokens_at == 0) {
		q->tokens = q->cf.burst;
		q->tokens_at = now;
	}
	q->tokens += q->cf.rate * (double)(now - q->tokens_at) / 1e6;
	if (q->tokens > q->cf.burst)
		q->tokens = q->cf.burst;
	q->tokens_at = now;
	return ((uint32_t)q->tokens);
}

/* Out of tokens: come back when the next one has accrued. */
static void
dispatch_arm_rate(struct queue *q)
{
	struct timeval	tv;
	double		wait_us;

	if (q->rate_ev == NULL &&
	    (q->rate_ev = evtimer_new(master_base, dispatch_rate_cb, q)) == NULL)
		return;
	if (evtimer_pending(q->rate_ev, NULL))
		return;
	wait_us = (1.0 - (q->tokens - (uint32_t)q->tokens)) / q->cf.rate * 1e6 + 1;
	tv.tv_sec = (long)(wait_us / 1e6);
	tv.tv_usec = (long)wait_us % 1000000;
	evtimer_add(q->rate_ev, &tv);
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
	if (q->svc_us == 0)
		cap = 1;
	else if (w->ninflight > 0 && now_us() - w->head_since >
	    4 * (uint64_t)q->svc_us + DISPATCH_BATCH_US)
		return (w->ninflight);
	if (cap > 1) {
		/* Short jobs only: cap the batch at DISPATCH_BATCH_US of expected work. */
		by_time = DISPATCH_BATCH_US / q->svc_us;
		/*
		 * The second pass: a job of up to DISPATCH_AHEAD_US waits behind the running
		 * one. A round trip through the master costs a worker about 100 us on a
		 * 2-vCPU VM, 2-5% of jobs of 2-5 ms; a job that is sent ahead and then waits
		 * while another worker falls idle waits at most one such job.
		 */
		if (ahead && by_time < 2 && q->svc_us < DISPATCH_AHEAD_US)
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
	if (w->retiring) {
		supervisor_close_jobs(w);
		return;
	}
	if (q->cf.max_jobs_per_worker == 0 ||
	    w->dispatched < q->cf.max_jobs_per_worker || w->state != WORKER_READY)
		return;
	log_job(LOG_INFO, 0, q->name, (long)w->pid,
	    "queue %s: worker %ld recycled after %llu job%s (max_jobs_per_worker)",
	    q->name, (long)w->pid, (unsigned long long)w->jobs_done,
	    w->jobs_done == 1 ? "" : "s");
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
	int		 n;
	uint32_t	 count = 0;

	n = snprintf(msg, sizeof msg, "queue %s cannot run its handler: %s", q->name,
	    q->failed_reason);
	if (n >= (int)sizeof msg)
		n = sizeof msg - 1;
	while ((j = queue_pop(q)) != NULL) {
		q->failed++;
		if (job_extra(j) != NULL)
			j->x->last_status = JOB_FAILED;
		job_finish(j, JOB_DEAD, msg, (uint32_t)n);
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
		if (w == NULL || w->state != WORKER_READY)
			continue;
		/* max_running: a semaphore over the queue's busy workers. */
		if (w->ninflight == 0 && q->cf.max_running > 0 &&
		    q->busy >= q->cf.max_running)
			continue;
		cap = dispatch_capacity(q, w, nready_workers, ahead);
		sent = 0;
		while (w->ninflight < cap && *tokens > 0 && (j = queue_pop(q)) != NULL) {
			supervisor_send(w, j);
			sent = 1;
			if (q->cf.rate > 0) {
				(*tokens)--;
				q->tokens -= 1;
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
			if (w != NULL && w->state == WORKER_READY)
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
			if (q->workers[i] != NULL && !q->workers[i]->retiring)
				supervisor_retire(q->workers[i]);
		}
	}
	if (q->nblocked > 0 && queue_depth(q) < q->low_jobs &&
	    q->bytes < q->low_bytes)
		server_unblock(q);
}

/* Accept a job into its queue: give it an id, index it, register the waiter. */
uint64_t
dispatch_submit(struct queue *q, struct job *j, struct conn *waiter)
{
	struct waiter	*w;

	j->id = job_next_id();
	job_table_add(j);
	if (waiter != NULL) {
		if ((w = malloc(sizeof *w)) == NULL)
			log_warnx("job %llu: no memory to register its waiter",
			    (unsigned long long)j->id);
		else {
			w->conn = waiter;
			w->next = NULL;
			waiter->refs++;
			j->waiters = w;
		}
	}
	q->submitted++;
	queue_push(q, j);
	journal_submit(j);
	if (j->state == JOB_QUEUED)
		dispatch_kick(q);
	return (j->id);
}

/*
 * An attempt failed: retry after a backoff while attempts are left, else the job is
 * dead: kept with its last error until retried or pushed out by dead_max.
 */
static void
dispatch_failed(struct queue *q, struct job *j, enum job_state st, int permanent,
    const char *why, uint32_t whylen, const char *dead_reason)
{
	uint64_t	delay;

	if (!permanent && dead_reason == NULL && !master_stopping &&
	    j->attempts <= q->cf.retries) {
		q->retried++;
		delay = jobpool_backoff_ms(q->cf.backoff_base_ms, q->cf.backoff_max_ms,
		    q->cf.backoff_jitter, j->attempts, dispatch_random());
		log_job(LOG_INFO, j->id, q->name, 0,
		    "queue %s: job %llu: attempt %u %s (%.*s); retrying in %llu ms",
		    q->name, (unsigned long long)j->id, j->attempts,
		    st == JOB_TIMEOUT ? "timed out" : "failed", (int)whylen, why,
		    (unsigned long long)delay);
		j->state = JOB_RETRY_WAIT;
		j->run_at = now_ms() + delay;
		queue_push(q, j);
		return;
	}
	q->failed++;
	if (job_extra(j) != NULL)
		j->x->last_status = (uint8_t)st;
	log_job(LOG_NOTICE, j->id, q->name, 0,
	    "queue %s: job %llu is dead after %u attempt%s: %s%s%.*s", q->name,
	    (unsigned long long)j->id, j->attempts, j->attempts == 1 ? "" : "s",
	    dead_reason != NULL ? dead_reason : "", dead_reason != NULL ? ": " : "",
	    (int)(whylen > 200 ? 200 : whylen), why);
	if (dead_reason != NULL) {
		/* Its waiters and the dead list say why it was quarantined. */
		char	msg[512];
		int	n = snprintf(msg, sizeof msg, "%s; last: %.*s", dead_reason,
		    (int)(whylen > 400 ? 400 : whylen), why);

		job_finish(j, JOB_DEAD, msg, (uint32_t)(n < (int)sizeof msg ? n :
		    (int)sizeof msg - 1));
		return;
	}
	job_finish(j, JOB_DEAD, why, whylen);
}

/* w's head job starts now (an event, logged at debug level). */
void
dispatch_head_started(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);

	if (j != NULL)
		log_job(LOG_DEBUG, j->id, w->queue->name, (long)w->pid,
		    "queue %s: job %llu: attempt %u started on worker %ld",
		    w->queue->name, (unsigned long long)j->id, j->attempts,
		    (long)w->pid);
}

/* The head job of w finished with a frame status and output. */
void
dispatch_result(struct worker *w, int status, const char *data, uint32_t len)
{
	struct queue	*q = w->queue;
	struct job	*j;
	uint64_t	 now, dt;
	uint32_t	 ran_ms;
	char		 msg[512];
	int		 n, reason;

	if ((j = TAILQ_FIRST(&w->inflight)) == NULL) {
		log_warnx("worker %ld (queue %s): result with no job in flight",
		    (long)w->pid, q->name);
		return;
	}
	TAILQ_REMOVE(&w->inflight, j, entry);
	w->ninflight--;
	q->running--;
	if (w->ninflight == 0)
		q->busy--;
	w->jobs_done++;
	w->child_pgid = 0;	/* an exec handler reaps its group before it answers */

	/* Service time: a moving average of the time each job held the head. */
	now = now_us();
	dt = now - w->head_since;
	ran_ms = (uint32_t)(dt / 1000);
	w->head_since = now;
	if (dt > 10000000)
		dt = 10000000;
	if (dt == 0)
		dt = 1;
	/* The first measurement sets the average; later ones move it by an eighth. */
	q->svc_us = q->svc_us == 0 ? (uint32_t)dt : (uint32_t)((q->svc_us * 7 + dt) / 8);
	/* The next job in line starts now; so do its timer and the grace of this one. */
	if (w->tev_armed)
		dispatch_arm_timeout(w);
	else if (w->ninflight > 0) {
		struct job *next = TAILQ_FIRST(&w->inflight);

		if (next->timeout_ms != 0 || next->cancel)
			dispatch_arm_timeout(w);
	}

	reason = j->cancel ? j->cancel - 1 : -1;
	j->cancel = 0;
	if (len > master_config->max_payload) {
		/* A worker forked before a reload lowered max_payload. */
		n = snprintf(msg, sizeof msg, "result of %u bytes is larger than "
		    "max_payload (%u)", len, master_config->max_payload);
		status = FRAME_PERMANENT;
		data = msg;
		len = (uint32_t)n;
	}
	switch (status) {
	case FRAME_OK:
		job_crashes_clear(j);
		q->done++;
		log_job(LOG_DEBUG, j->id, q->name, (long)w->pid, "queue %s: job %llu: "
		    "attempt %u succeeded in %u ms", q->name, (unsigned long long)j->id,
		    j->attempts, ran_ms);
		if (j->x != NULL)
			job_history_add(j, JOB_DONE, w->pid, ran_ms, "", 0);
		job_finish(j, JOB_DONE, data, len);
		break;
	case FRAME_SKIPPED:
		if (reason != FRAME_CANCEL_TIMEOUT) {
			/* Cancelled before it started: it never ran, so it was no attempt. */
			j->attempts--;
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, data, len);
			break;
		}
		/* Timed out before it started: as a timeout. */
		/* FALLTHROUGH */
	case FRAME_CANCELLED:
		job_crashes_clear(j);
		if (reason == FRAME_CANCEL_TIMEOUT) {
			n = snprintf(msg, sizeof msg, "timed out after %u ms; %.*s",
			    j->timeout_ms, (int)(len > 400 ? 400 : len), data);
			job_history_add(j, JOB_TIMEOUT, w->pid, ran_ms, msg, (uint32_t)n);
			dispatch_failed(q, j, JOB_TIMEOUT, 0, msg, (uint32_t)n, NULL);
			break;
		}
		n = snprintf(msg, sizeof msg, "%s: %.*s",
		    reason == -1 ? "cancelled" : master_stopping ?
		    "cancelled while running, at shutdown" : "cancelled while running",
		    (int)(len > 400 ? 400 : len), data);
		q->cancelled++;
		if (j->x != NULL)
			job_history_add(j, JOB_CANCELLED, w->pid, ran_ms, msg, (uint32_t)n);
		job_finish(j, JOB_CANCELLED, msg, (uint32_t)n);
		break;
	case FRAME_PERMANENT:
		job_crashes_clear(j);
		job_history_add(j, JOB_FAILED, w->pid, ran_ms, data, len);
		dispatch_failed(q, j, JOB_FAILED, 1, data, len, NULL);
		break;
	default:
		job_crashes_clear(j);
		job_history_add(j, JOB_FAILED, w->pid, ran_ms, data, len);
		dispatch_failed(q, j, JOB_FAILED, 0, data, len, NULL);
		break;
	}
	dispatch_head_started(w);
	dispatch_maybe_recycle(w);
	dispatch_kick(q);
}

/*
 * Worker w is gone. What it held: its head job was running (unless the worker retired
 * cleanly, in which case nothing was), and the jobs behind it never started.
 */
void
dispatch_worker_lost(struct worker *w, const char *why)
{
	struct queue	*q = w->queue;
	struct job	*j, *head = TAILQ_FIRST(&w->inflight);
	char		 msg[256];
	uint32_t	 ran_ms;
	int		 n, had = w->ninflight > 0;

	if (w->said_retire)
		head = NULL;	/* it said it would run nothing more */
	else if (head != NULL && w->killed_for != 0 && head->id != w->killed_for)
		/*
		 * It was killed for a job that would not stop, whose result then crossed
		 * the kill: this one had only just begun, through no fault of its own.
		 */
		head = NULL;
	/* Requeue the ones that never started, last first, so they keep their order. */
	while ((j = TAILQ_LAST(&w->inflight, joblist)) != NULL && j != head) {
		TAILQ_REMOVE(&w->inflight, j, entry);
		w->ninflight--;
		q->running--;
		j->attempts--;
		if (j->cancel) {
			/* It was cancelled before it could start. */
			j->cancel = 0;
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, "cancelled before it started", 27);
		} else if (master_stopping) {
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, "daemon stopped before the job ran",
			    33);
		} else
			queue_push_front(q, j);
	}
	dispatch_kick(q);
	if (head == NULL) {
		if (had)
			q->busy--;
		return;
	}
	TAILQ_REMOVE(&w->inflight, head, entry);
	w->ninflight--;
	q->running--;
	q->busy--;
	ran_ms = (uint32_t)((now_us() - w->head_since) / 1000);

	if (head->cancel == 1 + FRAME_CANCEL_USER) {
		head->cancel = 0;
		if (w->killed_for == head->id)
			n = snprintf(msg, sizeof msg, "cancelled while running%s: the "
			    "handler did not stop within the grace period (%u ms); worker "
			    "%ld was killed, cleanup did not finish", master_stopping ?
			    ", at shutdown" : "", q->cf.grace_ms, (long)w->pid);
		else
			n = snprintf(msg, sizeof msg, "cancelled while running%s: worker "
			    "%ld died before cleanup finished: %s", master_stopping ?
			    ", at shutdown" : "", (long)w->pid, why);
		if (n >= (int)sizeof msg)
			n = sizeof msg - 1;
		q->cancelled++;
		job_history_add(head, JOB_CANCELLED, w->pid, ran_ms, msg, (uint32_t)n);
		job_finish(head, JOB_CANCELLED, msg, (uint32_t)n);
		return;
	}
	if (head->cancel == 1 + FRAME_CANCEL_TIMEOUT) {
		head->cancel = 0;
		if (w->killed_for == head->id)
			n = snprintf(msg, sizeof msg, "timed out after %u ms; the handler "
			    "did not stop within the grace period (%u ms): worker %ld was "
			    "killed", head->timeout_ms, q->cf.grace_ms, (long)w->pid);
		else
			n = snprintf(msg, sizeof msg, "timed out after %u ms; worker %ld "
			    "died before cleanup finished: %s", head->timeout_ms,
			    (long)w->pid, why);
		if (n >= (int)sizeof msg)
			n = sizeof msg - 1;
		job_history_add(head, JOB_TIMEOUT, w->pid, ran_ms, msg, (uint32_t)n);
		dispatch_failed(q, head, JOB_TIMEOUT, 0, msg, (uint32_t)n, NULL);
		return;
	}

	/* The worker died under the job: a failed attempt, or a poison job. */
	n = snprintf(msg, sizeof msg, "worker %ld died while running it: %s",
	    (long)w->pid, why);
	if (n >= (int)sizeof msg)
		n = sizeof msg - 1;
	log_job(LOG_WARNING, head->id, q->name, (long)w->pid,
	    "queue %s: job %llu: worker %ld died while running it (%s); "
	    "attempt %u of %u", q->name, (unsigned long long)head->id,
	    (long)w->pid, why, head->attempts, q->cf.retries + 1);
	job_history_add(head, JOB_FAILED, w->pid, ran_ms, msg, (uint32_t)n);
	/* The history made head->x, where crashes lives; without memory, no count. */
	if (head->x != NULL)
		head->x->crashes++;
	if (q->cf.poison_after > 0 && job_crashes(head) >= q->cf.poison_after) {
		char poison[96];

		snprintf(poison, sizeof poison, "poison job: it killed %u worker%s in a "
		    "row", job_crashes(head), job_crashes(head) == 1 ? "" : "s");
		q->poisoned++;
		dispatch_failed(q, head, JOB_FAILED, 0, msg, (uint32_t)n, poison);
		return;
	}
	dispatch_failed(q, head, JOB_FAILED, 0, msg, (uint32_t)n, NULL);
}

/* Which worker holds j (running or batched), or NULL. */
static struct worker *
dispatch_holder(struct job *j)
{
	struct queue	*q = job_queue(j);
	struct worker	*w;
	struct job	*k;
	int		 i;

	for (i = 0; i < q->nworkers; i++) {
		if ((w = q->workers[i]) == NULL)
			continue;
		TAILQ_FOREACH(k, &w->inflight, entry) {
			if (k == j)
				return (w);
		}
	}
	return (NULL);
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
	struct worker	*w;

	*why = NULL;
	switch (j->state) {
	case JOB_QUEUED:
	case JOB_DELAYED:
	case JOB_RETRY_WAIT:
		queue_remove(q, j);
		q->cancelled++;
		job_finish(j, JOB_CANCELLED, "cancelled", 9);
		dispatch_queue(q);
		return (0);
	case JOB_RUNNING:
		if (j->cancel == 1 + FRAME_CANCEL_TIMEOUT) {
			/*
			 * It timed out and is being stopped already (its grace timer runs):
			 * the user's cancel makes that final, so it is not retried.
			 */
			j->cancel = 1 + FRAME_CANCEL_USER;
			return (1);
		}
		if (j->cancel)
			return (1);	/* already being cancelled */
		if ((w = dispatch_holder(j)) == NULL) {
			*why = "is running on no known worker";
			return (-1);
		}
		j->cancel = 1 + FRAME_CANCEL_USER;
		supervisor_cancel(w, j, FRAME_CANCEL_USER);
		if (TAILQ_FIRST(&w->inflight) == j)
			dispatch_arm_timeout(w);
		return (1);
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
	log_job(LOG_INFO, j->id, q->name, 0, "queue %s: dead job %llu queued again", q->name,
	    (unsigned long long)j->id);
	queue_push(q, j);
	journal_retry(j);
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
		if (w->tev_armed)
			evtimer_del(w->tev);
		w->tev_armed = 0;
		return;
	}
	if (j->cancel) {
		if (w->grace_for == j->id && w->tev_armed)
			return;
		w->grace_for = j->id;
		left = (uint64_t)w->queue->cf.grace_ms + DISPATCH_REPORT_MS;
	} else if (j->timeout_ms == 0) {
		if (w->tev_armed)
			evtimer_del(w->tev);
		w->tev_armed = 0;
		return;
	} else {
		w->grace_for = 0;
		ran = (now_us() - w->head_since) / 1000;
		left = ran < j->timeout_ms ? j->timeout_ms - ran : 0;
	}
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	evtimer_add(w->tev, &tv);
	w->tev_armed = 1;
}

/* w's timer fired: its head job timed out, or its grace period is over. */
void
dispatch_timer(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);

	w->tev_armed = 0;
	if (j == NULL || w->reaped)
		return;
	if (j->cancel && w->grace_for == j->id) {
		/* The timer ran the grace period and the time to report after it. */
		log_job(LOG_WARNING, j->id, w->queue->name, (long)w->pid,
		    "queue %s: job %llu: still running %u ms after it was asked to "
		    "stop (grace %u ms, then %u ms to report); killing worker %ld",
		    w->queue->name, (unsigned long long)j->id,
		    w->queue->cf.grace_ms + DISPATCH_REPORT_MS, w->queue->cf.grace_ms,
		    DISPATCH_REPORT_MS, (long)w->pid);
		w->signalled = 2;
		w->killed_for = j->id;
		if (w->state == WORKER_READY || w->state == WORKER_STARTING)
			w->state = WORKER_STOPPING;	/* nothing more is sent to it */
		kill(w->pid, SIGKILL);
		return;
	}
	log_job(LOG_WARNING, j->id, w->queue->name, (long)w->pid,
	    "queue %s: job %llu: timed out after %u ms; cancelling it",
	    w->queue->name, (unsigned long long)j->id, j->timeout_ms);
	j->cancel = 1 + FRAME_CANCEL_TIMEOUT;
	supervisor_cancel(w, j, FRAME_CANCEL_TIMEOUT);
	dispatch_arm_timeout(w);
}

/*
 * Shutdown past its deadline: cancel every job held by a worker, cooperatively.
 * Returns the longest grace period involved, in ms.
 */
uint32_t
dispatch_cancel_running(void)
{
	struct queue	*q;
	struct worker	*w;
	struct job	*j, *next;
	const char	*why;
	uint32_t	 grace = 0;
	int		 i, k;

	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		for (k = 0; k < q->nworkers; k++) {
			if ((w = q->workers[k]) == NULL)
				continue;
			for (j = TAILQ_FIRST(&w->inflight); j != NULL; j = next) {
				next = TAILQ_NEXT(j, entry);
				(void)dispatch_cancel(j, &why);
			}
			if (w->ninflight > 0 && q->cf.grace_ms > grace)
				grace = q->cf.grace_ms;
		}
	}
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
		while ((j = queue_pop(q)) != NULL) {
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, reason, len);
		}
		while (q->nheap > 0) {
			j = q->heap[0];
			queue_remove(q, j);
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, reason, len);
		}
	}
}
