/*
 * queue.c: bounded priority queues with delays, and the job table.
 *
 * A queue owns its waiting jobs: one FIFO per priority level (higher level first, FIFO
 * within a level) and a min-heap of delayed jobs with one timer for the earliest. The
 * job table indexes every job the daemon knows by id; finished jobs stay in it, on the
 * kept list, until keep_results or keep_results_bytes pushes them out, oldest first.
 */

#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "handler.h"
#include "jobpoold.h"
#include "events.h"
#include "journal.h"
#include "log.h"

struct queue	**queues;
int		  nqueues;

/* The job table: chained hash on id, power-of-two buckets, grown at load 1. */
static struct job	**jt_buckets;
static uint64_t		  jt_mask;
static uint64_t		  jt_count;
static uint64_t		  jt_next_id = 1;

/* Finished jobs kept for WAIT and STATUS, oldest first. */
static struct joblist	  kept = TAILQ_HEAD_INITIALIZER(kept);
static uint32_t		  nkept;
static uint64_t		  kept_bytes;

static void	queue_delay_cb(evutil_socket_t, short, void *);
static void	job_dead_add(struct job *);

/* Backpressure releases at three quarters, so producers resume in bursts. */
static void
queue_set_watermarks(struct queue *q)
{
	q->low_jobs = q->cf.max_jobs - q->cf.max_jobs / 4;
	q->low_bytes = q->cf.max_bytes - q->cf.max_bytes / 4;
}

/* Free the strings of a queue's own copy of its config. */
static void
queue_config_clear(struct queue_config *qc)
{
	free(qc->name);
	free(qc->handler);
	free(qc->user);
	free(qc->group);
	memset(qc, 0, sizeof *qc);
}

/* A deep copy of qc, so the queue outlives the config it came from. */
static int
queue_config_copy(struct queue_config *dst, const struct queue_config *src)
{
	*dst = *src;
	dst->name = strdup(src->name);
	dst->handler = strdup(src->handler);
	dst->user = src->user != NULL ? strdup(src->user) : NULL;
	dst->group = src->group != NULL ? strdup(src->group) : NULL;
	if (dst->name == NULL || dst->handler == NULL ||
	    (src->user != NULL && dst->user == NULL) ||
	    (src->group != NULL && dst->group == NULL)) {
		queue_config_clear(dst);
		return (-1);
	}
	return (0);
}

/* Create a queue from its config; it has no workers yet. */
struct queue *
queue_create(const struct queue_config *qc)
{
	struct queue	*q;
	int		 i;

	if ((q = calloc(1, sizeof *q)) == NULL)
		return (NULL);
	if (queue_config_copy(&q->cf, qc) != 0) {
		free(q);
		return (NULL);
	}
	/* Its own copy: a reload matches queues by name, so it never changes. */
	if ((q->name = strdup(qc->name)) == NULL)
		goto fail;
	q->nlevels = qc->prio_max - qc->prio_min + 1;
	if ((q->ready = calloc(q->nlevels, sizeof *q->ready)) == NULL)
		goto fail;
	for (i = 0; i < q->nlevels; i++)
		TAILQ_INIT(&q->ready[i]);
	q->top = -1;
	/* `paused = true;`: made paused (at start, or by the reload that adds it). */
	q->paused = qc->paused;
	q->paused_by = (uid_t)-1;
	dispatch_queue_init(q);
	keys_queue_init(q);
	supervisor_queue_init(q, &dispatch_worker_cb);	/* its workers report to dispatch */
	server_queue_init(q);
	queue_set_watermarks(q);
	if (master_base != NULL &&
	    (q->delay_ev = evtimer_new(master_base, queue_delay_cb, q)) == NULL)
		goto fail;
	return (q);
fail:
	queue_free(q);
	return (NULL);
}

/* Free a queue and every job still waiting in it (the caller answered them). */
void
queue_free(struct queue *q)
{
	struct job	*j;
	int		 i;

	if (q == NULL)
		return;
	for (i = 0; q->ready != NULL && i < q->nlevels; i++) {
		while ((j = TAILQ_FIRST(&q->ready[i])) != NULL) {
			TAILQ_REMOVE(&q->ready[i], j, entry);
			job_free(j);
		}
	}
	for (i = 0; i < (int)q->nheap; i++)
		job_free(q->heap[i]);
	keys_queue_free(q);
	free(q->heap);
	free(q->ready);
	if (q->delay_ev != NULL)
		event_free(q->delay_ev);
	dispatch_queue_free(q);
	supervisor_queue_free(q);
	server_queue_free(q);
	free(q->failed_reason);
	free(q->workers);
	queue_forget_previous(q);
	queue_config_clear(&q->cf);
	free(q->name);
	free(q);
}

/*
 * A reload is about to give q workers of a new kind (handler, user, limits): remember
 * how its workers were made until one of the new kind is up, so that if none can start
 * the queue goes back to what worked. Kept from the first of several such reloads.
 */
int
queue_keep_previous(struct queue *q)
{
	if (q->prev_cf != NULL)
		return (0);
	if ((q->prev_cf = malloc(sizeof *q->prev_cf)) == NULL)
		return (-1);
	if (queue_config_copy(q->prev_cf, &q->cf) != 0) {
		free(q->prev_cf);
		q->prev_cf = NULL;
		return (-1);
	}
	q->prev_gen = q->gen;
	return (0);
}

/* A worker of the new kind is up: the previous kind is not needed any more. */
void
queue_forget_previous(struct queue *q)
{
	if (q->prev_cf == NULL)
		return;
	queue_config_clear(q->prev_cf);
	free(q->prev_cf);
	q->prev_cf = NULL;
}

/*
 * No worker of the new kind can start: make workers the previous way again (limits and
 * the other settings stay as reloaded), and the workers still running that way are
 * current again.
 */
void
queue_revert_workers(struct queue *q)
{
	struct queue_config	*p = q->prev_cf;

	if (p == NULL)
		return;
	free(q->cf.handler);
	free(q->cf.user);
	free(q->cf.group);
	q->cf.handler = p->handler;
	q->cf.user = p->user;
	q->cf.group = p->group;
	p->handler = p->user = p->group = NULL;
	q->cf.rlimit_as = p->rlimit_as;
	q->cf.rlimit_cpu = p->rlimit_cpu;
	q->cf.rlimit_nofile = p->rlimit_nofile;
	q->cf.max_worker_rss = p->max_worker_rss;
	q->cf.grace_ms = p->grace_ms;
	/* Batches need the new kind's batch entry point. */
	q->cf.batch_size = p->batch_size;
	q->cf.batch_wait_ms = p->batch_wait_ms;
	q->gen = q->prev_gen;
	queue_forget_previous(q);
}

/*
 * Take a new config for a running queue (reload). Jobs stay where they are; if the
 * priority range changed, waiting jobs move to the new levels (clamped into the range),
 * keeping their order. 0, or -1 if out of memory (the queue is unchanged).
 */
int
queue_reconfigure(struct queue *q, const struct queue_config *nqc)
{
	struct queue_config	 cf;
	struct joblist		*levels, *old = q->ready;
	struct job		*j;
	int			 i, n, oldn = q->nlevels, lvl;

	if (queue_config_copy(&cf, nqc) != 0)
		return (-1);
	if (nqc->prio_min != q->cf.prio_min || nqc->prio_max != q->cf.prio_max) {
		n = nqc->prio_max - nqc->prio_min + 1;
		if ((levels = calloc(n, sizeof *levels)) == NULL) {
			queue_config_clear(&cf);
			return (-1);
		}
		for (i = 0; i < n; i++)
			TAILQ_INIT(&levels[i]);
		q->top = -1;
		/* Highest old level first, so each new level keeps FIFO order. */
		for (i = oldn - 1; i >= 0; i--) {
			while ((j = TAILQ_FIRST(&old[i])) != NULL) {
				TAILQ_REMOVE(&old[i], j, entry);
				j->prio = queue_prio_clamp(nqc, j->prio);
				lvl = j->prio - nqc->prio_min;
				TAILQ_INSERT_TAIL(&levels[lvl], j, entry);
				if (lvl > q->top)
					q->top = lvl;
			}
		}
		/* Delayed jobs get their level when they become ready: clamp them now. */
		for (i = 0; i < (int)q->nheap; i++)
			q->heap[i]->prio = queue_prio_clamp(nqc, q->heap[i]->prio);
		free(old);
		q->ready = levels;
		q->nlevels = n;
	}
	queue_config_clear(&q->cf);
	q->cf = cf;
	queue_set_watermarks(q);
	keys_reconfigure(q);
	return (0);
}

/* Find a live queue by name (not one a reload removed). */
struct queue *
queue_find(const char *name)
{
	int	i;

	for (i = 0; i < nqueues; i++) {
		if (!queues[i]->removed && strcmp(queues[i]->name, name) == 0)
			return (queues[i]);
	}
	return (NULL);
}

/*
 * An administrator's PAUSE (on) or RESUME of q. A paused queue takes jobs up to its
 * limits (backpressure as usual) but dispatch_queue sends none; what its workers hold
 * runs on. It is the queue's state, not its config: a reload keeps it, a restart
 * forgets it (the queue starts as its config's `paused` says). 0, or 1 when q was
 * already so (nothing said again).
 */
int
queue_pause(struct queue *q, int on, uid_t uid)
{
	on = on != 0;
	if (q->paused == on)
		return (1);
	q->paused = on;
	q->paused_by = uid;
	log_notice("queue %s: %s by uid %ld", q->name, on ? "paused" : "resumed",
	    (long)uid);
	events_publish_queue(on ? EVENTS_QUEUE_PAUSED : EVENTS_QUEUE_UNPAUSED, q->idx, 0,
	    (uint64_t)uid, NULL);
	if (!on)
		dispatch_kick(q);	/* what waited goes now */
	return (0);
}

/*
 * Call fn for every job waiting in q: the ready ones level by level, those parked
 * behind their key's limits, then the delayed ones. Stops at the first nonzero fn
 * returns, and returns it. fn must not change q.
 */
int
queue_foreach_waiting(struct queue *q, int (*fn)(struct job *, void *), void *arg)
{
	struct job	*j;
	uint32_t	 k;
	int		 l, rc;

	for (l = 0; l < q->nlevels; l++) {
		TAILQ_FOREACH(j, &q->ready[l], entry) {
			if ((rc = fn(j, arg)) != 0)
				return (rc);
		}
	}
	if (q->keys.nparked > 0 && (rc = keys_foreach_parked(q, fn, arg)) != 0)
		return (rc);
	for (k = 0; k < q->nheap; k++) {
		if ((rc = fn(q->heap[k], arg)) != 0)
			return (rc);
	}
	return (0);
}

/* Take the earliest delayed job, or NULL. The caller owns it. */
struct job *
queue_pop_delayed(struct queue *q)
{
	struct job	*j;

	if (q->nheap == 0)
		return (NULL);
	j = q->heap[0];
	queue_remove(q, j);
	return (j);
}

uint32_t
queue_depth(const struct queue *q)
{
	return (q->nready + q->nheap + q->keys.nparked);
}

/* Is there room for one more job of len bytes? An empty queue takes any job. */
int
queue_has_room(struct queue *q, uint32_t len)
{
	uint32_t	depth = queue_depth(q);

	if (depth >= q->cf.max_jobs)
		return (0);
	if (depth > 0 && q->bytes + len > q->cf.max_bytes)
		return (0);
	return (1);
}

/* A job holding a copy of the payload, with room for extra bytes after it. */
static inline struct job *
job_alloc(struct queue *q, const void *data, uint32_t len, size_t extra)
{
	struct job	*j;

	if ((j = malloc(sizeof *j + len + extra)) == NULL)
		return (NULL);
	memset(j, 0, sizeof *j);
	j->state = JOB_NEW;
	j->qidx = q->idx;
	j->len = len;
	if (len > 0)
		memcpy(j->data, data, len);
	return (j);
}

/* Allocate a job holding a copy of the payload. */
struct job *
job_new(struct queue *q, const void *data, uint32_t len)
{
	return (job_alloc(q, data, len, 0));
}

static struct job	*job_new_host(struct queue *, const void *, uint32_t)
		    __attribute__((noinline));

/*
 * The same with a key, copied after the payload (jobpoold.h, job_key): one allocation,
 * 2 bytes more than the key. Without one, a job of an http queue takes its URL's host
 * (issue 15: one slow or rate-limited site holds up no other), and any other is
 * job_new's: the first letter of the handler's name keeps that test off W1's path.
 */
struct job *
job_new_key(struct queue *q, const void *data, uint32_t len, const char *key,
    size_t klen)
{
	struct job	*j;

	if (key == NULL || klen == 0) {
		if (__builtin_expect(q->cf.handler[0] == 'h', 0) &&
		    strcmp(q->cf.handler, "http") == 0)
			return (job_new_host(q, data, len));
		return (job_alloc(q, data, len, 0));
	}
	if (klen > JOB_KEY_MAX || (j = job_alloc(q, data, len, 2 + klen)) == NULL)
		return (NULL);
	j->haskey = 1;
	j->data[len] = 0;
	j->data[len + 1] = (char)(unsigned char)klen;
	memcpy(&j->data[len + 2], key, klen);
	return (j);
}

/*
 * An http queue's job without a key: its URL's host is its key, or it has none (no
 * readable URL). Apart, so that its buffer costs job_new_key's other callers nothing.
 */
static struct job *
job_new_host(struct queue *q, const void *data, uint32_t len)
{
	char	host[JOB_KEY_MAX];
	size_t	klen;

	if ((klen = handler_http_key(data, len, host, sizeof host)) == 0)
		return (job_alloc(q, data, len, 0));
	return (job_new_key(q, data, len, host, klen));
}

/* Free a job that is in no list and no table. */
void
job_free(struct job *j)
{
	struct waiter	*w, *next;

	if (j == NULL)
		return;
	for (w = j->waiters; w != NULL; w = next) {
		next = w->next;
		conn_unref(w->conn);
		free(w);
	}
	if (j->x != NULL) {
		if (j->x->chain != NULL)
			chain_job_free(j);
		free(j->x->hist);
		free(j->x);
	}
	free(j);
}

/* The job's extra part, allocated on first use; NULL only when out of memory. */
struct job_extra *
job_extra(struct job *j)
{
	if (j->x == NULL)
		j->x = calloc(1, sizeof *j->x);
	return (j->x);
}

/* Set the job's result (or error) text, replacing any. */
void
job_set_result(struct job *j, const void *res, uint32_t rlen)
{
	struct job_extra	*x;

	if (j->x == NULL && rlen == 0)
		return;
	if (j->x == NULL) {
		if ((x = calloc(1, sizeof *x + rlen)) == NULL)
			return;
	} else if ((x = realloc(j->x, sizeof *x + rlen)) == NULL) {
		j->x->rlen = 0;
		return;
	}
	j->x = x;
	if (rlen > 0)
		memcpy(x->result, res, rlen);
	x->rlen = rlen;
	x->http_meta = 0;
}

/*
 * An http job's content type and length for STATUS, after its result (set first): in
 * the same allocation, so that they cost the jobs of other handlers nothing (bench W4).
 */
void
job_set_http_meta(struct job *j, const char *meta, size_t len)
{
	struct job_extra	*x;

	if (j->x == NULL || len == 0 ||
	    (x = realloc(j->x, sizeof *x + j->x->rlen + len + 1)) == NULL)
		return;
	j->x = x;
	memcpy(x->result + x->rlen, meta, len);
	x->result[x->rlen + len] = '\0';
	x->http_meta = 1;
}

/* What job_set_http_meta() kept, or "". */
const char *
job_http_meta(struct job *j)
{
	if (j->x == NULL || !j->x->http_meta)
		return ("");
	return (j->x->result + j->x->rlen);
}

/* Record an attempt that ended: outcome, worker, how long, the start of its error. */
void
job_history_add(struct job *j, enum job_state outcome, pid_t pid, uint32_t ms,
    const char *err, uint32_t errlen)
{
	struct job_extra	*x;
	struct attempt		*a;
	uint32_t		 i, n;

	if ((x = job_extra(j)) == NULL)
		return;
	if (x->hist == NULL && (x->hist = calloc(JOB_HIST_MAX, sizeof *x->hist)) == NULL)
		return;
	a = &x->hist[x->hist_next];
	x->hist_next = (x->hist_next + 1) % JOB_HIST_MAX;
	if (x->nhist < JOB_HIST_MAX)
		x->nhist++;
	a->ms = ms;
	a->pid = pid;
	a->outcome = (uint8_t)outcome;
	a->n = j->attempts;
	n = errlen < sizeof a->err - 1 ? errlen : (uint32_t)sizeof a->err - 1;
	for (i = 0; i < n; i++)
		a->err[i] = (err[i] == '\n' || err[i] == '\r') ? ' ' : err[i];
	a->err[n] = '\0';
}

/* Priority level index of a job. */
static int
queue_level(struct queue *q, struct job *j)
{
	return (j->prio - q->cf.prio_min);
}

/* Heap helpers: the delayed jobs ordered by run_at, then id. */
static int
heap_less(struct job *a, struct job *b)
{
	if (a->run_at != b->run_at)
		return (a->run_at < b->run_at);
	return (a->id < b->id);
}

static void
heap_set(struct queue *q, uint32_t i, struct job *j)
{
	q->heap[i] = j;
	j->heap_idx = i;
}

static void
heap_up(struct queue *q, uint32_t i)
{
	struct job	*j = q->heap[i];
	uint32_t	 parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!heap_less(j, q->heap[parent]))
			break;
		heap_set(q, i, q->heap[parent]);
		i = parent;
	}
	heap_set(q, i, j);
}

static void
heap_down(struct queue *q, uint32_t i)
{
	struct job	*j = q->heap[i];
	uint32_t	 child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= q->nheap)
			break;
		if (child + 1 < q->nheap && heap_less(q->heap[child + 1], q->heap[child]))
			child++;
		if (!heap_less(q->heap[child], j))
			break;
		heap_set(q, i, q->heap[child]);
		i = child;
	}
	heap_set(q, i, j);
}

/* Remove heap entry i. */
static void
heap_remove(struct queue *q, uint32_t i)
{
	struct job	*last;

	q->nheap--;
	if (i == q->nheap)
		return;
	last = q->heap[q->nheap];
	heap_set(q, i, last);
	if (i > 0 && heap_less(last, q->heap[(i - 1) / 2]))
		heap_up(q, i);
	else
		heap_down(q, i);
}

/* Arm the delay timer for the earliest delayed job. */
static void
queue_arm_delay(struct queue *q)
{
	struct timeval	tv;
	uint64_t	now, due;

	if (q->delay_ev == NULL)
		return;
	if (q->nheap == 0) {
		evtimer_del(q->delay_ev);
		return;
	}
	now = now_us();
	due = q->heap[0]->run_at;
	due = due > now ? due - now : 0;
	tv.tv_sec = due / 1000000;
	tv.tv_usec = due % 1000000;
	evtimer_add(q->delay_ev, &tv);
}

/*
 * Put a job in the ready list of its level; info goes with the change (may be NULL).
 * Its wait starts now, or kept: when it was due, or, put back in front because its
 * worker died before it started, when it first became ready.
 */
static void
queue_ready(struct queue *q, struct job *j, int front, struct job_change *info)
{
	int	level = queue_level(q, j);

	if (j->run_at == 0)
		j->run_at = now_us();

	if (front)
		TAILQ_INSERT_HEAD(&q->ready[level], j, entry);
	else
		TAILQ_INSERT_TAIL(&q->ready[level], j, entry);
	q->nready++;
	if (level > q->top)
		q->top = level;
	job_change(j, JOB_QUEUED, info);
}

/* Put a job in its queue, ready or delayed. */
void
queue_push(struct queue *q, struct job *j)
{
	queue_push_as(q, j, NULL);
}

/*
 * The same, with what the change says (the accept path's). A job waiting out its
 * backoff (retry_wait) stays in that state in the heap.
 */
void
queue_push_as(struct queue *q, struct job *j, struct job_change *info)
{
	struct job	**nheap;
	uint32_t	  cap;

	q->bytes += j->len;
	if (j->run_at == 0 || j->run_at <= now_us()) {
		queue_ready(q, j, 0, info);
		return;
	}
	if (q->nheap == q->heap_cap) {
		cap = q->heap_cap ? q->heap_cap * 2 : 16;
		if ((nheap = reallocarray(q->heap, cap, sizeof *nheap)) == NULL) {
			/* Out of memory for the heap: run it now rather than lose it. */
			log_warnx("queue %s: job %llu: no memory to delay it; "
			    "running it now", q->name, (unsigned long long)j->id);
			queue_ready(q, j, 0, info);
			return;
		}
		q->heap = nheap;
		q->heap_cap = cap;
	}
	q->heap[q->nheap++] = j;
	heap_up(q, q->nheap - 1);
	if (q->heap[0] == j)
		queue_arm_delay(q);
	if (j->state != JOB_RETRY_WAIT)
		job_change(j, JOB_DELAYED, info);
}

/* Put a job back first in line at its level: it was taken from a worker that died. */
void
queue_push_front(struct queue *q, struct job *j)
{
	q->bytes += j->len;
	queue_ready(q, j, 1, NULL);
}

/* Take the next ready job: the highest level, oldest first. */
struct job *
queue_pop(struct queue *q)
{
	struct job	*j;

	while (q->top >= 0) {
		if ((j = TAILQ_FIRST(&q->ready[q->top])) != NULL) {
			TAILQ_REMOVE(&q->ready[q->top], j, entry);
			q->nready--;
			q->bytes -= j->len;
			return (j);
		}
		q->top--;
	}
	return (NULL);
}

/* Remove a waiting job from wherever it waits. */
void
queue_remove(struct queue *q, struct job *j)
{
	if (j->state == JOB_DELAYED || j->state == JOB_RETRY_WAIT) {
		int	first = (j->heap_idx == 0);

		heap_remove(q, j->heap_idx);
		if (first)
			queue_arm_delay(q);
	} else if (j->haskey && (*job_key_flags(j) & JOB_KEY_PARKED)) {
		keys_remove(q, j);	/* it takes the bytes off */
		return;
	} else {
		TAILQ_REMOVE(&q->ready[queue_level(q, j)], j, entry);
		q->nready--;
	}
	q->bytes -= j->len;
}

/* Move every delayed job that is due to the ready lists. */
void
queue_promote(struct queue *q)
{
	uint64_t	 now = now_us();
	struct job	*j;
	int		 moved = 0;

	while (q->nheap > 0 && q->heap[0]->run_at <= now) {
		j = q->heap[0];
		heap_remove(q, 0);
		queue_ready(q, j, 0, NULL);
		moved = 1;
	}
	queue_arm_delay(q);
	if (moved)
		dispatch_queue(q);
}

/*
 * How long the job that has waited longest for a worker has waited: the first of each
 * priority level (a level is in the order its jobs became ready; one put back in front
 * became ready before the others), and a delayed job already due that the timer has
 * not moved yet.
 */
uint64_t
queue_oldest_wait_us(const struct queue *q, uint64_t now)
{
	struct job	*j;
	uint64_t	 since = now;
	int		 i;

	for (i = 0; i < q->nlevels; i++) {
		if ((j = TAILQ_FIRST(&q->ready[i])) != NULL && j->run_at < since)
			since = j->run_at;
	}
	if (q->nheap > 0 && q->heap[0]->run_at < since)
		since = q->heap[0]->run_at;
	return (now - since);
}

static void
queue_delay_cb(evutil_socket_t fd, short events, void *arg)
{
	queue_promote(arg);
}

/* ----- the job table ----- */

uint64_t
job_next_id(void)
{
	return (jt_next_id++);
}

uint64_t
job_peek_next_id(void)
{
	return (jt_next_id);
}

void
job_set_next_id(uint64_t id)
{
	jt_next_id = id;
}

uint64_t
job_count(void)
{
	return (jt_count);
}

static uint64_t
jt_hash(uint64_t id)
{
	/* Ids are sequential: a multiplicative mix spreads them over the buckets. */
	return ((id * 0x9E3779B97F4A7C15ULL) >> 17);
}

/* Double the bucket array. */
static int
jt_grow(void)
{
	uint64_t	  nsize = jt_mask ? (jt_mask + 1) * 2 : 1024, i;
	struct job	**nb, *j, *next;

	if ((nb = calloc(nsize, sizeof *nb)) == NULL)
		return (-1);
	for (i = 0; jt_buckets != NULL && i <= jt_mask; i++) {
		for (j = jt_buckets[i]; j != NULL; j = next) {
			next = j->hnext;
			j->hnext = nb[jt_hash(j->id) & (nsize - 1)];
			nb[jt_hash(j->id) & (nsize - 1)] = j;
		}
	}
	free(jt_buckets);
	jt_buckets = nb;
	jt_mask = nsize - 1;
	return (0);
}

/* Index a job by its id. */
void
job_table_add(struct job *j)
{
	uint64_t	b;

	/* Chains of two on average: 4 to 8 bytes of buckets per job. */
	if (jt_buckets == NULL || jt_count > 2 * jt_mask) {
		if (jt_grow() != 0 && jt_buckets == NULL)
			fatalx("job table: out of memory");
	}
	b = jt_hash(j->id) & jt_mask;
	j->hnext = jt_buckets[b];
	jt_buckets[b] = j;
	jt_count++;
}

void
job_table_remove(struct job *j)
{
	struct job	**p;

	if (jt_buckets == NULL)
		return;
	for (p = &jt_buckets[jt_hash(j->id) & jt_mask]; *p != NULL; p = &(*p)->hnext) {
		if (*p == j) {
			*p = j->hnext;
			jt_count--;
			return;
		}
	}
}

struct job *
job_find(uint64_t id)
{
	struct job	*j;

	if (jt_buckets == NULL)
		return (NULL);
	for (j = jt_buckets[jt_hash(id) & jt_mask]; j != NULL; j = j->hnext) {
		if (j->id == id)
			return (j);
	}
	return (NULL);
}

const char *
job_state_name(enum job_state st)
{
	static const char *const names[] = {
		"delayed", "queued", "running", "done", "failed", "timeout",
		"cancelled", "retry_wait", "dead"
	};

	if ((unsigned)st >= sizeof names / sizeof names[0])
		return ("unknown");
	return (names[st]);
}

/* Drop the oldest kept jobs until within both bounds. */
void
job_keep_trim(uint32_t keep, uint64_t keep_bytes)
{
	struct job	*j;

	while ((j = TAILQ_FIRST(&kept)) != NULL &&
	    (nkept > keep || kept_bytes > keep_bytes)) {
		TAILQ_REMOVE(&kept, j, entry);
		nkept--;
		kept_bytes -= (uint64_t)j->len + job_rlen(j);
		job_table_remove(j);
		job_free(j);
	}
}

/*
 * lifecycle listener, the last (it may free the job): a job that ended is kept for
 * later WAIT and STATUS requests, a dead one on the dead list.
 */
void
queue_job_changed(const struct job_change *ch)
{
	struct job		*j = ch->j;
	const struct config	*cf = master_config;

	if (ch->to == JOB_DEAD) {
		job_dead_add(j);
		return;
	}
	TAILQ_INSERT_TAIL(&kept, j, entry);
	nkept++;
	kept_bytes += (uint64_t)j->len + job_rlen(j);
	job_keep_trim(cf->keep_results, cf->keep_results_bytes);
}

/*
 * The journal batch that holds the record of j's end, which a reply telling of the end
 * must wait for; 0 when there is nothing to wait for. A job whose end was recorded
 * with no room for job_extra waits for the last batch there is, which is later.
 */
uint64_t
job_end_batch(const struct job *j)
{
	if (!journal_on || !JOB_FINAL(j->state))
		return (0);
	if (j->x != NULL)
		return (j->x->end_batch);
	return (journal_last_batch());
}

/* ----- dead jobs: out of attempts, kept until retried or pushed out ----- */

static struct joblist	dead = TAILQ_HEAD_INITIALIZER(dead);
static uint32_t		ndead;

/* Keep a dead job (its record is written), dropping the oldest beyond dead_max. */
static void
job_dead_add(struct job *j)
{
	struct job	*old;

	if (j->x == NULL) {
		job_table_remove(j);
		job_free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&dead, j, entry);
	ndead++;
	job_queue(j)->ndead++;
	while (ndead > master_config->dead_max && (old = TAILQ_FIRST(&dead)) != NULL) {
		job_dead_remove(old);
		log_warnx("queue %s: dead job %llu dropped: more than dead_max (%u) dead "
		    "jobs", job_queue(old)->name, (unsigned long long)old->id,
		    master_config->dead_max);
		journal_end(old);
		job_table_remove(old);
		job_free(old);
	}
}

/* Take a dead job off the dead list (to retry or drop it). */
void
job_dead_remove(struct job *j)
{
	TAILQ_REMOVE(&dead, j, entry);
	ndead--;
	job_queue(j)->ndead--;
}

/* The dead jobs, oldest first. */
struct job *
job_dead_first(void)
{
	return (TAILQ_FIRST(&dead));
}

struct job *
job_dead_next(struct job *j)
{
	return (TAILQ_NEXT(j, entry));
}

uint32_t
job_dead_count(void)
{
	return (ndead);
}

/*
 * Free every kept and dead job and the table (at exit, after the queues are freed). The
 * queues freed their waiting jobs without taking them out of the table, so its chains
 * must not be walked again: the buckets go first, which makes job_table_remove() a
 * no-op for the jobs freed here.
 */
void
job_table_free(void)
{
	struct job	*j;

	free(jt_buckets);
	jt_buckets = NULL;
	jt_mask = 0;
	jt_count = 0;
	job_keep_trim(0, 0);
	/* The queues are gone already: unlink without their counts. */
	while ((j = TAILQ_FIRST(&dead)) != NULL) {
		TAILQ_REMOVE(&dead, j, entry);
		ndead--;
		job_free(j);
	}
}
