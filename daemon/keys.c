/*
 * keys.c: job keys and a queue's per-key limits (issue 15).
 *
 * A job may carry a key (SUBMIT ... key=NAME), kept after its payload (jobpoold.h,
 * job_key). A queue may limit each key as it limits itself: max_running_per_key jobs
 * held by its workers at once, rate_per_key jobs started per second with a bucket of
 * burst_per_key, and a key may be paused until a time (keys_pause: the http handler's
 * Retry-After pauses a host, not the queue). The limits hold across all the queue's
 * workers: dispatch asks here before it sends a keyed job.
 *
 * The structure. A job waits in its queue's ready lists as any other. When dispatch
 * pops a keyed job whose key is at a limit (or has older jobs parked), the job is
 * parked: appended to its key's FIFO, off the ready lists, so the jobs behind it, of
 * other keys, go on. A key whose parked jobs may run again (one of its jobs left a
 * worker, a token accrued, its pause ended) goes on the queue's ready-key list, and
 * dispatch takes from those keys, round robin, before the ready lists (keys_next): a
 * parked job was popped before anything still in the lists. A key that waits for a
 * time (a token, its pause) is in a min-heap with one timer per queue. A queue
 * without keyed jobs pays a test of an empty list per job popped, and a job without a
 * key a bit test: queue_pop is unchanged.
 *
 * Every keyed job a worker holds is counted in its key, whatever the limits, so a
 * reload that sets a limit finds the counts right, and a pause works on a queue with
 * no limits. The count drops when the job leaves its worker (keys_release, from
 * dispatch_take, where the job comes off the worker's in-flight list: the count
 * follows those lists as q->running does, at the cost of a bit test per job).
 *
 * Memory: a key is tracked only while it has jobs parked or running, is paused, or
 * its bucket is refilling; then it is freed (after the refill, by the heap's timer).
 * A key costs sizeof(struct key) (88 bytes on x86-64) plus its length, rounded up by
 * malloc, 8 to 16 bytes of the hash table (grown at load 1) and 8 of the heap, both
 * freed when no key is left;
 * a parked job costs nothing more (its list link is its ready-list link). So the keys
 * tracked are at most the jobs parked or running plus the keys that started a job
 * in the last burst_per_key / rate_per_key seconds, plus the keys paused.
 */

#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"

#define KEY_NOHEAP	UINT32_MAX

struct key {
	struct key		*hnext;		/* hash chain */
	TAILQ_ENTRY(key)	 rentry;	/* on the queue's ready-key list */
	struct joblist		 parked;	/* its jobs waiting for its limits, in order */
	uint32_t		 nparked;
	uint32_t		 running;	/* its jobs the queue's workers hold */
	uint32_t		 heap_idx;	/* in the queue's heap, or KEY_NOHEAP */
	uint8_t			 onready;
	uint8_t			 len;
	double			 tokens;	/* rate_per_key's bucket, as of tokens_at */
	uint64_t		 tokens_at;	/* us; 0: full (a new key) */
	uint64_t		 paused_until;	/* us; 0: not paused */
	uint64_t		 wake;		/* us: when the heap wakes it */
	char			 name[];
};

static void	keys_timer_cb(evutil_socket_t, short, void *);

/* The hash's seed, one per start: keys are the producers', chosen by them. */
static uint32_t	keys_seed;

void
keys_queue_init(struct queue *q)
{
	memset(&q->keys, 0, sizeof q->keys);
	TAILQ_INIT(&q->keys.ready);
	if (keys_seed == 0)
		keys_seed = ((uint32_t)now_us() ^ ((uint32_t)getpid() << 16)) | 1;
}

static uint32_t
keys_hash(const char *s, size_t len)
{
	uint32_t	h = 2166136261u ^ keys_seed;	/* FNV-1a, seeded */
	size_t		i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return (h);
}

static struct key *
keys_find(struct queue *q, const char *name, size_t len)
{
	struct key	*k;

	if (q->keys.buckets == NULL)
		return (NULL);
	for (k = q->keys.buckets[keys_hash(name, len) & q->keys.mask]; k != NULL;
	    k = k->hnext) {
		if (k->len == len && memcmp(k->name, name, len) == 0)
			return (k);
	}
	return (NULL);
}

/* The state of keyed job j's key, or NULL if it is not tracked. */
static struct key *
keys_of(struct queue *q, const struct job *j)
{
	const char	*name;
	size_t		 len;

	name = job_key(j, &len);
	return (keys_find(q, name, len));
}

/* Double the table (or make it): -1 if out of memory (the old one stays). */
static int
keys_grow(struct queue *q)
{
	struct keys_part	*kp = &q->keys;
	uint32_t		 nsize = kp->buckets != NULL ? (kp->mask + 1) * 2 : 16, i;
	struct key		**nb, *k, *next;

	if ((nb = calloc(nsize, sizeof *nb)) == NULL)
		return (-1);
	for (i = 0; kp->buckets != NULL && i <= kp->mask; i++) {
		for (k = kp->buckets[i]; k != NULL; k = next) {
			next = k->hnext;
			k->hnext = nb[keys_hash(k->name, k->len) & (nsize - 1)];
			nb[keys_hash(k->name, k->len) & (nsize - 1)] = k;
		}
	}
	free(kp->buckets);
	kp->buckets = nb;
	kp->mask = nsize - 1;
	return (0);
}

/* The key's state, made if it is not tracked; NULL if out of memory. */
static struct key *
keys_get(struct queue *q, const char *name, size_t len)
{
	struct keys_part	*kp = &q->keys;
	struct key		*k;
	uint32_t		 b;

	if ((k = keys_find(q, name, len)) != NULL)
		return (k);
	if ((kp->buckets == NULL || kp->nkeys > kp->mask) && keys_grow(q) != 0 &&
	    kp->buckets == NULL)
		return (NULL);
	if ((k = calloc(1, sizeof *k + len)) == NULL)
		return (NULL);
	TAILQ_INIT(&k->parked);
	k->heap_idx = KEY_NOHEAP;
	k->len = (uint8_t)len;
	memcpy(k->name, name, len);
	b = keys_hash(name, len) & kp->mask;
	k->hnext = kp->buckets[b];
	kp->buckets[b] = k;
	kp->nkeys++;
	return (k);
}

/* ----- the heap of keys waiting for a time ----- */

static void
keys_heap_set(struct keys_part *kp, uint32_t i, struct key *k)
{
	kp->heap[i] = k;
	k->heap_idx = i;
}

static void
keys_heap_up(struct keys_part *kp, uint32_t i)
{
	struct key	*k = kp->heap[i];
	uint32_t	 parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (kp->heap[parent]->wake <= k->wake)
			break;
		keys_heap_set(kp, i, kp->heap[parent]);
		i = parent;
	}
	keys_heap_set(kp, i, k);
}

static void
keys_heap_down(struct keys_part *kp, uint32_t i)
{
	struct key	*k = kp->heap[i];
	uint32_t	 child;

	for (;;) {
		child = 2 * i + 1;
		if (child >= kp->nheap)
			break;
		if (child + 1 < kp->nheap &&
		    kp->heap[child + 1]->wake < kp->heap[child]->wake)
			child++;
		if (k->wake <= kp->heap[child]->wake)
			break;
		keys_heap_set(kp, i, kp->heap[child]);
		i = child;
	}
	keys_heap_set(kp, i, k);
}

/* Arm q's timer for the heap's first key, or stop it. */
static void
keys_arm(struct queue *q)
{
	struct keys_part	*kp = &q->keys;
	struct timeval		 tv;
	uint64_t		 now, due;

	if (kp->nheap == 0) {
		if (kp->timer != NULL)
			evtimer_del(kp->timer);
		return;
	}
	if (kp->timer == NULL && (master_base == NULL ||
	    (kp->timer = evtimer_new(master_base, keys_timer_cb, q)) == NULL))
		return;
	now = now_us();
	due = kp->heap[0]->wake > now ? kp->heap[0]->wake - now : 0;
	tv.tv_sec = due / 1000000;
	tv.tv_usec = due % 1000000;
	evtimer_add(kp->timer, &tv);
}

static void
keys_heap_remove(struct queue *q, struct key *k)
{
	struct keys_part	*kp = &q->keys;
	uint32_t		 i = k->heap_idx;
	struct key		*last;

	if (i == KEY_NOHEAP)
		return;
	k->heap_idx = KEY_NOHEAP;
	last = kp->heap[--kp->nheap];
	if (i < kp->nheap) {
		keys_heap_set(kp, i, last);
		if (i > 0 && kp->heap[(i - 1) / 2]->wake > last->wake)
			keys_heap_up(kp, i);
		else
			keys_heap_down(kp, i);
	}
	if (i == 0)
		keys_arm(q);
}

/* k waits until wake (us); 0 if out of memory (then it waits for another event). */
static int
keys_heap_put(struct queue *q, struct key *k, uint64_t wake)
{
	struct keys_part	*kp = &q->keys;
	struct key		**nh;
	uint32_t		 cap;

	if (k->heap_idx != KEY_NOHEAP) {
		if (k->wake == wake)
			return (1);
		keys_heap_remove(q, k);
	}
	if (kp->nheap == kp->heap_cap) {
		cap = kp->heap_cap ? kp->heap_cap * 2 : 16;
		if ((nh = reallocarray(kp->heap, cap, sizeof *nh)) == NULL)
			return (0);
		kp->heap = nh;
		kp->heap_cap = cap;
	}
	k->wake = wake;
	kp->heap[kp->nheap] = k;
	keys_heap_up(kp, kp->nheap++);
	if (kp->heap[0] == k)
		keys_arm(q);
	return (1);
}

/* ----- the limits ----- */

/* Refill k's bucket to now. */
static void
keys_refill(const struct queue *q, struct key *k, uint64_t now)
{
	double	burst = q->cf.burst_per_key;

	if (k->tokens_at == 0)
		k->tokens = burst;
	else if (now > k->tokens_at)
		k->tokens += q->cf.rate_per_key * (double)(now - k->tokens_at) / 1e6;
	if (k->tokens > burst)
		k->tokens = burst;
	k->tokens_at = now;
}

/*
 * May k start a job now? If not and only time will tell, *wake says when (us); 0: an
 * event will (one of its jobs leaving a worker).
 */
static int
keys_may_run(const struct queue *q, struct key *k, uint64_t now, uint64_t *wake)
{
	*wake = 0;
	if (k->paused_until > now) {
		*wake = k->paused_until;
		return (0);
	}
	k->paused_until = 0;
	if (q->cf.max_running_per_key > 0 && k->running >= q->cf.max_running_per_key)
		return (0);
	if (q->cf.rate_per_key > 0) {
		keys_refill(q, k, now);
		if (k->tokens < 1.0) {
			*wake = now + (uint64_t)((1.0 - k->tokens) / q->cf.rate_per_key *
			    1e6) + 1;
			return (0);
		}
	}
	return (1);
}

/* k starts a job: count it, and take its token. */
static void
keys_take(const struct queue *q, struct key *k)
{
	k->running++;
	if (q->cf.rate_per_key > 0)
		k->tokens -= 1.0;
}

static void
keys_ready_add(struct queue *q, struct key *k)
{
	if (k->onready)
		return;
	k->onready = 1;
	TAILQ_INSERT_TAIL(&q->keys.ready, k, rentry);
	dispatch_kick(q);
}

static void
keys_ready_del(struct queue *q, struct key *k)
{
	if (!k->onready)
		return;
	k->onready = 0;
	TAILQ_REMOVE(&q->keys.ready, k, rentry);
}

static void
keys_free_one(struct queue *q, struct key *k)
{
	struct keys_part	*kp = &q->keys;
	struct key		**p;

	keys_ready_del(q, k);
	keys_heap_remove(q, k);
	for (p = &kp->buckets[keys_hash(k->name, k->len) & kp->mask]; *p != NULL;
	    p = &(*p)->hnext) {
		if (*p == k) {
			*p = k->hnext;
			break;
		}
	}
	free(k);
	/* Bounded memory: the table and the heap go with the last key. */
	if (--kp->nkeys == 0) {
		free(kp->buckets);
		kp->buckets = NULL;
		kp->mask = 0;
		free(kp->heap);
		kp->heap = NULL;
		kp->heap_cap = 0;
	}
}

/*
 * Put k where its state says: on the ready-key list (parked jobs it may run), in the
 * heap (parked jobs waiting for a time; or nothing parked nor running, but a pause or
 * a refill to remember), or nowhere (waiting for one of its jobs to leave a worker);
 * or free it, when there is nothing to remember. Returns 1 if k was freed.
 */
static int
keys_update(struct queue *q, struct key *k, uint64_t now)
{
	uint64_t	wake, full;

	if (k->nparked > 0) {
		if (keys_may_run(q, k, now, &wake)) {
			keys_heap_remove(q, k);
			keys_ready_add(q, k);
			return (0);
		}
		keys_ready_del(q, k);
		if (wake == 0 || !keys_heap_put(q, k, wake))
			keys_heap_remove(q, k);
		return (0);
	}
	keys_ready_del(q, k);
	if (k->running > 0) {
		keys_heap_remove(q, k);
		return (0);
	}
	/* Nothing parked, nothing running: what is left to remember? */
	wake = k->paused_until > now ? k->paused_until : 0;
	if (q->cf.rate_per_key > 0 && k->tokens_at != 0) {
		keys_refill(q, k, now);
		if (k->tokens < (double)q->cf.burst_per_key) {
			full = now + (uint64_t)(((double)q->cf.burst_per_key - k->tokens) /
			    q->cf.rate_per_key * 1e6) + 1;
			if (full > wake)
				wake = full;
		}
	}
	if (wake != 0 && keys_heap_put(q, k, wake))
		return (0);
	keys_free_one(q, k);
	return (1);
}

static void
keys_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct queue		*q = arg;
	struct keys_part	*kp = &q->keys;
	struct key		*k;
	uint64_t		 now = now_us();

	while (kp->nheap > 0 && kp->heap[0]->wake <= now) {
		k = kp->heap[0];
		keys_heap_remove(q, k);
		keys_update(q, k, now);
	}
	keys_arm(q);
}

/* ----- what dispatch asks ----- */

/* Park j behind its key's limits: off the ready lists, still waiting in q. */
static void
keys_park(struct queue *q, struct key *k, struct job *j, uint64_t now)
{
	*job_key_flags(j) |= JOB_KEY_PARKED;
	TAILQ_INSERT_TAIL(&k->parked, j, entry);
	k->nparked++;
	q->keys.nparked++;
	q->bytes += j->len;	/* queue_pop took it off; it still waits */
	keys_update(q, k, now);
}

int
keys_admit(struct queue *q, struct job *j)
{
	struct key	*k;
	const char	*name;
	size_t		 len;
	uint64_t	 now = now_us(), wake;

	name = job_key(j, &len);
	if ((k = keys_get(q, name, len)) == NULL) {
		/* Out of memory: it runs, unlimited, rather than wait for memory. */
		log_warnx("queue %s: job %llu: no memory to track its key; it runs "
		    "without the key's limits", q->name, (unsigned long long)j->id);
		return (1);
	}
	/* Older jobs of its key wait: behind them, so a key's jobs keep their order. */
	if (k->nparked > 0 || !keys_may_run(q, k, now, &wake)) {
		keys_park(q, k, j, now);
		return (0);
	}
	keys_take(q, k);
	keys_heap_remove(q, k);		/* a refill it waited for is moot now */
	return (1);
}

struct job *
keys_next(struct queue *q)
{
	struct key	*k;
	struct job	*j;
	uint64_t	 now = now_us(), wake;

	while ((k = TAILQ_FIRST(&q->keys.ready)) != NULL) {
		if (!keys_may_run(q, k, now, &wake)) {
			keys_update(q, k, now);
			continue;
		}
		j = TAILQ_FIRST(&k->parked);
		TAILQ_REMOVE(&k->parked, j, entry);
		k->nparked--;
		q->keys.nparked--;
		q->bytes -= j->len;
		*job_key_flags(j) &= ~JOB_KEY_PARKED;
		keys_take(q, k);
		/* Round robin: the next job comes from the next key. */
		TAILQ_REMOVE(&q->keys.ready, k, rentry);
		k->onready = 0;
		if (k->nparked > 0 && keys_may_run(q, k, now, &wake)) {
			k->onready = 1;
			TAILQ_INSERT_TAIL(&q->keys.ready, k, rentry);
		} else
			keys_update(q, k, now);
		return (j);
	}
	return (NULL);
}

/* Take j out of k's FIFO; the caller owns it. */
static void
keys_unpark(struct queue *q, struct key *k, struct job *j)
{
	TAILQ_REMOVE(&k->parked, j, entry);
	k->nparked--;
	q->keys.nparked--;
	q->bytes -= j->len;
	*job_key_flags(j) &= ~JOB_KEY_PARKED;
}

void
keys_remove(struct queue *q, struct job *j)
{
	struct key	*k;

	if ((k = keys_of(q, j)) == NULL)
		return;		/* cannot be: a parked job's key is tracked */
	keys_unpark(q, k, j);
	keys_update(q, k, now_us());
}

void
keys_drain_parked(struct queue *q, void (*fn)(struct job *, void *), void *arg)
{
	struct keys_part	*kp = &q->keys;
	struct key		*k, *next;
	struct job		*j;
	uint32_t		 i;

	for (i = 0; kp->nparked > 0 && kp->buckets != NULL && i <= kp->mask; i++) {
		for (k = kp->buckets[i]; k != NULL; k = next) {
			next = k->hnext;
			if (k->nparked == 0)
				continue;
			while ((j = TAILQ_FIRST(&k->parked)) != NULL) {
				keys_unpark(q, k, j);
				fn(j, arg);
			}
			if (keys_update(q, k, now_us()) && kp->buckets == NULL)
				return;	/* the last key went, and the table with it */
		}
	}
}

int
keys_foreach_parked(struct queue *q, int (*fn)(struct job *, void *), void *arg)
{
	struct keys_part	*kp = &q->keys;
	struct key		*k;
	struct job		*j;
	uint32_t		 i;
	int			 rc;

	for (i = 0; kp->buckets != NULL && i <= kp->mask; i++) {
		for (k = kp->buckets[i]; k != NULL; k = k->hnext) {
			TAILQ_FOREACH(j, &k->parked, entry) {
				if ((rc = fn(j, arg)) != 0)
					return (rc);
			}
		}
	}
	return (0);
}

/*
 * Keyed job j left its worker (dispatch_take: its result came, or the worker is gone):
 * one running job fewer for its key, which may then run a parked one.
 */
void
keys_release(struct queue *q, struct job *j)
{
	struct key	*k;

	if ((k = keys_of(q, j)) == NULL || k->running == 0)
		return;		/* it ran untracked (out of memory) */
	k->running--;
	keys_update(q, k, now_us());
}

void
keys_pause(struct queue *q, const char *name, size_t len, uint64_t until_ms)
{
	struct key	*k;
	uint64_t	 now = now_us(), until;

	if (len == 0 || len > JOB_KEY_MAX || until_ms <= now / 1000)
		return;
	if (until_ms > UINT64_MAX / 1000)
		until_ms = UINT64_MAX / 1000;	/* as good as never, and no overflow */
	if ((k = keys_get(q, name, len)) == NULL) {
		log_warnx("queue %s: no memory to pause a key", q->name);
		return;
	}
	until = until_ms * 1000;
	if (until > k->paused_until)
		k->paused_until = until;
	keys_update(q, k, now);
}

/* A reload may have changed the limits: every key is looked at again. */
void
keys_reconfigure(struct queue *q)
{
	struct keys_part	*kp = &q->keys;
	struct key		*k, *next;
	uint64_t		 now = now_us();
	uint32_t		 i;

	for (i = 0; kp->buckets != NULL && i <= kp->mask; i++) {
		for (k = kp->buckets[i]; k != NULL; k = next) {
			next = k->hnext;
			if (keys_update(q, k, now) && kp->buckets == NULL)
				return;	/* the last key went, and the table with it */
		}
	}
}

void
keys_queue_free(struct queue *q)
{
	struct keys_part	*kp = &q->keys;
	struct key		*k, *next;
	struct job		*j;
	uint32_t		 i;

	for (i = 0; kp->buckets != NULL && i <= kp->mask; i++) {
		for (k = kp->buckets[i]; k != NULL; k = next) {
			next = k->hnext;
			while ((j = TAILQ_FIRST(&k->parked)) != NULL) {
				TAILQ_REMOVE(&k->parked, j, entry);
				job_free(j);
			}
			free(k);
		}
	}
	free(kp->buckets);
	free(kp->heap);
	if (kp->timer != NULL)
		event_free(kp->timer);
	memset(kp, 0, sizeof *kp);
	TAILQ_INIT(&kp->ready);
}
