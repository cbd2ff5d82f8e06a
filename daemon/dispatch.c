/*
 * dispatch.c: moves jobs from queues to workers and results back to their jobs.
 *
 * A worker holds an ordered in-flight list; it runs the jobs one at a time in that
 * order, so the head is the job running now. When a queue is deep and its jobs are
 * short, a worker is given several jobs at once (a batch), sized so it holds about
 * DISPATCH_BATCH_US of work: tiny jobs then cost one pipe round trip per batch instead
 * of one per job, and long jobs are still handed out one at a time so an idle worker
 * never waits behind a busy one.
 */

#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "frame.h"
#include "jobpoold.h"
#include "log.h"

#define DISPATCH_BATCH_US	2000	/* work to give one worker at once */

/* How many jobs worker w of q may hold now. */
static uint32_t
dispatch_capacity(struct queue *q, int nready_workers)
{
	uint32_t	cap = q->cf.batch, share, by_time;

	if (cap <= 1)
		return (1);
	/* Short jobs only: cap the batch at DISPATCH_BATCH_US of expected work. */
	by_time = q->svc_us > 0 ? DISPATCH_BATCH_US / q->svc_us : cap;
	if (by_time < cap)
		cap = by_time;
	/* Deep queues only: never give one worker more than its share. */
	share = q->nready / (nready_workers > 0 ? nready_workers : 1) + 1;
	if (share < cap)
		cap = share;
	return (cap > 0 ? cap : 1);
}

/* Arm w's timer for its head job: the time left of its timeout since it started. */
void
dispatch_arm_timeout(struct worker *w)
{
	struct job	*j = TAILQ_FIRST(&w->inflight);
	struct timeval	 tv;
	uint64_t	 ran, left;

	if (j == NULL || j->timeout_ms == 0) {
		evtimer_del(w->tev);
		return;
	}
	ran = (now_us() - w->head_since) / 1000;
	left = ran < j->timeout_ms ? j->timeout_ms - ran : 0;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	evtimer_add(w->tev, &tv);
}

/* Hand ready jobs to workers that have room. */
void
dispatch_queue(struct queue *q)
{
	struct worker	*w;
	struct job	*j;
	uint32_t	 cap;
	int		 i, nready_workers = 0, sent;

	for (i = 0; i < q->nworkers; i++) {
		w = q->workers[i];
		if (w != NULL && w->state == WORKER_READY)
			nready_workers++;
	}
	for (i = 0; i < q->nworkers && q->nready > 0; i++) {
		w = q->workers[i];
		if (w == NULL || w->state != WORKER_READY)
			continue;
		if (w->ninflight > 0 && q->cf.batch <= 1)
			continue;
		cap = dispatch_capacity(q, nready_workers);
		sent = 0;
		while (w->ninflight < cap && (j = queue_pop(q)) != NULL) {
			supervisor_send(w, j);
			sent = 1;
		}
		if (sent)
			supervisor_flush(w);
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
	if (j->state == JOB_QUEUED)
		dispatch_queue(q);
	return (j->id);
}

/* A failed attempt: retry while attempts are left, else the job fails for good. */
static void
dispatch_failed(struct queue *q, struct job *j, enum job_state st, int permanent,
    const char *why, uint32_t whylen)
{
	if (!permanent && !master_stopping && j->attempts <= q->cf.retries) {
		q->retried++;
		log_debug("queue %s: job %llu: attempt %u failed (%.*s); retrying",
		    q->name, (unsigned long long)j->id, j->attempts, (int)whylen, why);
		queue_push(q, j);
		return;
	}
	q->failed++;
	job_finish(j, st, why, whylen);
}

/* The head job of w finished with a frame status and output. */
void
dispatch_result(struct worker *w, int status, const char *data, uint32_t len)
{
	struct queue	*q = w->queue;
	struct job	*j;
	uint64_t	 now, dt;

	if ((j = TAILQ_FIRST(&w->inflight)) == NULL) {
		log_warnx("worker %ld (queue %s): result with no job in flight",
		    (long)w->pid, q->name);
		return;
	}
	TAILQ_REMOVE(&w->inflight, j, entry);
	w->ninflight--;
	q->running--;
	w->jobs_done++;

	/* Service time: a moving average of the time each job held the head. */
	now = now_us();
	dt = now - w->head_since;
	w->head_since = now;
	if (dt > 10000000)
		dt = 10000000;
	q->svc_us = (uint32_t)((q->svc_us * 7 + dt) / 8);
	/* The next job in line starts now; so does its timeout. */
	if (w->ninflight > 0 || evtimer_pending(w->tev, NULL))
		dispatch_arm_timeout(w);

	switch (status) {
	case FRAME_OK:
		q->done++;
		job_finish(j, JOB_DONE, data, len);
		break;
	case FRAME_CANCELLED:
		q->cancelled++;
		job_finish(j, JOB_CANCELLED, data, len);
		break;
	case FRAME_PERMANENT:
		dispatch_failed(q, j, JOB_FAILED, 1, data, len);
		break;
	default:
		dispatch_failed(q, j, JOB_FAILED, 0, data, len);
		break;
	}
	dispatch_queue(q);
}

/* Worker w is gone: its running job failed an attempt, the rest never started. */
void
dispatch_worker_lost(struct worker *w, const char *why)
{
	struct queue	*q = w->queue;
	struct job	*j, *head = TAILQ_FIRST(&w->inflight);
	char		 msg[256];
	int		 n;

	/* Requeue the ones that never started, last first, so they keep their order. */
	while ((j = TAILQ_LAST(&w->inflight, joblist)) != NULL && j != head) {
		TAILQ_REMOVE(&w->inflight, j, entry);
		w->ninflight--;
		q->running--;
		j->attempts--;
		if (master_stopping) {
			q->cancelled++;
			job_finish(j, JOB_CANCELLED, "daemon stopped before the job ran",
			    33);
		} else
			queue_push_front(q, j);
	}
	if (head == NULL)
		return;
	TAILQ_REMOVE(&w->inflight, head, entry);
	w->ninflight--;
	q->running--;
	if (w->timed_out) {
		n = snprintf(msg, sizeof msg, "timed out after %u ms", head->timeout_ms);
		if (n >= (int)sizeof msg)
			n = sizeof msg - 1;
		dispatch_failed(q, head, JOB_TIMEOUT, 0, msg, (uint32_t)n);
		return;
	}
	n = snprintf(msg, sizeof msg, "worker %ld died while running it: %s",
	    (long)w->pid, why);
	if (n >= (int)sizeof msg)
		n = sizeof msg - 1;
	log_warnx("queue %s: job %llu: worker %ld died while running it (%s); "
	    "attempt %u of %u", q->name, (unsigned long long)head->id,
	    (long)w->pid, why, head->attempts, q->cf.retries + 1);
	dispatch_failed(q, head, JOB_FAILED, 0, msg, (uint32_t)n);
}

/* Cancel a job that has not started. */
int
dispatch_cancel(struct job *j, const char **why)
{
	struct queue	*q = j->queue;

	*why = NULL;
	switch (j->state) {
	case JOB_QUEUED:
	case JOB_DELAYED:
		queue_remove(q, j);
		q->cancelled++;
		job_finish(j, JOB_CANCELLED, "cancelled", 9);
		dispatch_queue(q);
		return (0);
	case JOB_RUNNING:
		*why = "is running";
		return (-1);
	default:
		*why = "has finished";
		return (-1);
	}
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
