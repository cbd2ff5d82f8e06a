/*
 * idem.c: idempotency tokens. A producer that names a job with a token (SUBMIT ...
 * idem=TOKEN) may send it again, after a lost connection say, and get the first job's
 * id (and with wait its result) instead of a second job.
 *
 * A token is the triple (queue, owner, token): another user's token is another token,
 * so a token never tells one user of another's job. Each names a job by id; struct job
 * is full (bench W4), so the table maps token -> id and the job table finds the job.
 * Two hash tables index the tokens: by triple (SUBMIT's question) and by job id (the
 * lifecycle listener's, at a job's end). A token lives while its job waits or runs,
 * and for idempotency_window after the job ended; the tokens of ended jobs are on one
 * list in order of expiry (the window is one for every queue, so an end is appended,
 * or inserted from the tail after a reload shortened the window), which one timer
 * empties from its head. At most idempotency_max tokens are held: past that a SUBMIT
 * with a new token is refused (server.c says so), never a token dropped early, which
 * would make a resend run the job twice.
 *
 * SUBMIT gives an accepted job its token (idem_give); the lifecycle listener, called
 * only while tokens are held, hears ends and dead jobs queued again.
 *
 * With a journal, each token's life is recorded (journal_idem: at the submit, when
 * its job ends, when a dead job is queued again) and restored by the recovery
 * (idem_restore), so tokens outlive a restart for their window.
 */

#include "autoconf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "idem.h"
#include "journal.h"
#include "log.h"

uint32_t			 idem_n;

static struct idem_tok		**by_key;
static struct idem_tok		**by_job;
static uint32_t			  nbuckets;	/* of each table, a power of two */
static TAILQ_HEAD(idem_toks, idem_tok) expiring = TAILQ_HEAD_INITIALIZER(expiring);
static struct event		 *expire_ev;
static size_t			  heap_bytes;	/* the entries' */

static void	idem_arm(void);

/* What malloc takes for a token of len bytes: glibc's chunk (8 bytes of header, 16-aligned). */
static size_t
idem_chunk(size_t len)
{
	return ((offsetof(struct idem_tok, tok) + len + 8 + 15) & ~(size_t)15);
}

static uint64_t
idem_window_ms(void)
{
	return (master_config != NULL ? master_config->idempotency_window_ms :
	    CONFIG_DEF_IDEMPOTENCY_WINDOW_MS);
}

static uint32_t
idem_max(void)
{
	return (master_config != NULL ? master_config->idempotency_max :
	    CONFIG_DEF_IDEMPOTENCY_MAX);
}

/* FNV-1a over the token, the queue and the owner. */
static uint32_t
idem_hash_key(uint16_t qidx, uint16_t owner, const char *tok, size_t len)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)tok[i]) * 16777619u;
	h = (h ^ qidx) * 16777619u;
	h = (h ^ owner) * 16777619u;
	return (h);
}

static uint32_t
idem_hash_job(uint64_t id)
{
	return ((uint32_t)((id * 0x9E3779B97F4A7C15ULL) >> 32));
}

/* Double both tables (or make them): 0, or -1 out of memory (they stay). */
static int
idem_grow(void)
{
	uint32_t	  n = nbuckets ? nbuckets * 2 : IDEM_MIN_BUCKETS, i;
	struct idem_tok	**nk, **nj, *t, *next;

	if ((nk = calloc(n, sizeof *nk)) == NULL)
		return (-1);
	if ((nj = calloc(n, sizeof *nj)) == NULL) {
		free(nk);
		return (-1);
	}
	for (i = 0; i < nbuckets; i++) {
		for (t = by_key[i]; t != NULL; t = next) {
			next = t->knext;
			t->knext = nk[idem_hash_key(t->qidx, t->owner, t->tok, t->len) &
			    (n - 1)];
			nk[idem_hash_key(t->qidx, t->owner, t->tok, t->len) & (n - 1)] = t;
		}
		for (t = by_job[i]; t != NULL; t = next) {
			next = t->jnext;
			t->jnext = nj[idem_hash_job(t->id) & (n - 1)];
			nj[idem_hash_job(t->id) & (n - 1)] = t;
		}
	}
	free(by_key);
	free(by_job);
	by_key = nk;
	by_job = nj;
	nbuckets = n;
	return (0);
}

static struct idem_tok **
idem_key_slot(uint16_t qidx, uint16_t owner, const char *tok, size_t len)
{
	struct idem_tok	**p;

	for (p = &by_key[idem_hash_key(qidx, owner, tok, len) & (nbuckets - 1)];
	    *p != NULL; p = &(*p)->knext) {
		if ((*p)->qidx == qidx && (*p)->owner == owner && (*p)->len == len &&
		    memcmp((*p)->tok, tok, len) == 0)
			break;
	}
	return (p);
}

static struct idem_tok **
idem_job_slot(uint64_t id)
{
	struct idem_tok	**p;

	for (p = &by_job[idem_hash_job(id) & (nbuckets - 1)]; *p != NULL;
	    p = &(*p)->jnext) {
		if ((*p)->id == id)
			break;
	}
	return (p);
}

/* Put t on the expiry list at its place: the tail, unless the window was shortened. */
static void
idem_expiring(struct idem_tok *t)
{
	struct idem_tok	*after;

	for (after = TAILQ_LAST(&expiring, idem_toks); after != NULL &&
	    after->expires_ms > t->expires_ms; after = TAILQ_PREV(after, idem_toks, entry))
		;
	if (after == NULL)
		TAILQ_INSERT_HEAD(&expiring, t, entry);
	else
		TAILQ_INSERT_AFTER(&expiring, after, t, entry);
	if (TAILQ_FIRST(&expiring) == t)
		idem_arm();
}

/* Take t out of both tables and the expiry list, and free it. */
static void
idem_drop(struct idem_tok *t)
{
	struct idem_tok	**p;

	p = idem_key_slot(t->qidx, t->owner, t->tok, t->len);
	if (*p == t)
		*p = t->knext;
	for (p = &by_job[idem_hash_job(t->id) & (nbuckets - 1)]; *p != NULL;
	    p = &(*p)->jnext) {
		if (*p == t) {
			*p = t->jnext;
			break;
		}
	}
	if (t->expires_ms != 0)
		TAILQ_REMOVE(&expiring, t, entry);
	heap_bytes -= idem_chunk(t->len);
	idem_n--;
	free(t);
}

void
idem_expire(uint64_t now)
{
	struct idem_tok	*t;

	while ((t = TAILQ_FIRST(&expiring)) != NULL && t->expires_ms <= now)
		idem_drop(t);
}

static void
idem_expire_cb(evutil_socket_t fd, short events, void *arg)
{
	idem_expire(now_ms());
	idem_arm();
}

/* The timer, for the first token to expire (none: off). */
static void
idem_arm(void)
{
	struct idem_tok	*t = TAILQ_FIRST(&expiring);
	struct timeval	 tv;
	uint64_t	 now, in;

	if (master_base == NULL)
		return;		/* a test without a loop: idem_find() expires them */
	if (expire_ev == NULL &&
	    (expire_ev = evtimer_new(master_base, idem_expire_cb, NULL)) == NULL) {
		log_warnx("idem: out of memory for the expiry timer; tokens expire as "
		    "SUBMITs come");
		return;
	}
	if (t == NULL) {
		evtimer_del(expire_ev);
		return;
	}
	now = now_ms();
	in = t->expires_ms > now ? t->expires_ms - now : 0;
	tv.tv_sec = (time_t)(in / 1000);
	tv.tv_usec = (suseconds_t)(in % 1000) * 1000;
	evtimer_add(expire_ev, &tv);
}

uint64_t
idem_find(uint16_t qidx, uint16_t owner, const char *tok, size_t len, uint64_t *batch)
{
	struct idem_tok	*t;

	*batch = 0;
	if (idem_n == 0)
		return (0);
	idem_expire(now_ms());
	if (idem_n == 0 || (t = *idem_key_slot(qidx, owner, tok, len)) == NULL)
		return (0);
	if (t->batch > journal_durable())
		*batch = t->batch;
	return (t->id);
}

int
idem_room(void)
{
	if (idem_n > 0)
		idem_expire(now_ms());
	return (idem_n < idem_max());
}

uint64_t
idem_next_expiry_ms(void)
{
	struct idem_tok	*t = TAILQ_FIRST(&expiring);
	uint64_t	 now = now_ms();

	if (t == NULL)
		return (0);
	return (t->expires_ms > now ? t->expires_ms - now : 1);
}

/* A new token for job id (expires_ms 0: live): the entry, or NULL out of memory. */
static struct idem_tok *
idem_add(uint16_t qidx, uint16_t owner, const char *tok, size_t len, uint64_t id,
    uint64_t expires_ms)
{
	struct idem_tok	*t, **p;

	if (len == 0 || len > UINT8_MAX)
		return (NULL);
	if ((nbuckets == 0 || idem_n >= nbuckets) && idem_grow() != 0 && nbuckets == 0)
		return (NULL);
	/* The same token again (recovery reads the newest last): the newer wins. */
	if ((t = *idem_key_slot(qidx, owner, tok, len)) != NULL)
		idem_drop(t);
	if ((t = malloc(offsetof(struct idem_tok, tok) + len)) == NULL)
		return (NULL);
	t->id = id;
	t->expires_ms = expires_ms;
	t->batch = 0;
	t->qidx = qidx;
	t->owner = owner;
	t->len = (uint8_t)len;
	memcpy(t->tok, tok, len);
	p = &by_key[idem_hash_key(qidx, owner, tok, len) & (nbuckets - 1)];
	t->knext = *p;
	*p = t;
	p = &by_job[idem_hash_job(id) & (nbuckets - 1)];
	t->jnext = *p;
	*p = t;
	if (expires_ms != 0)
		idem_expiring(t);
	heap_bytes += idem_chunk(len);
	idem_n++;
	return (t);
}

/* Record t's life in the journal; the batch a reply naming it waits for. */
static void
idem_record(struct idem_tok *t)
{
	if (!journal_on)
		return;
	journal_idem(t);
	t->batch = journal_last_batch();
}

void
idem_give(const struct job *j, const char *tok, size_t len)
{
	struct idem_tok	*t;

	if ((t = idem_add(j->qidx, j->owner, tok, len, j->id, 0)) == NULL) {
		log_warnx("queue %s: job %llu: out of memory for its idempotency token; "
		    "a resend makes another job", job_queue(j)->name,
		    (unsigned long long)j->id);
		return;
	}
	idem_record(t);
}

void
idem_job_changed(const struct job_change *ch)
{
	struct job	*j = ch->j;
	struct idem_tok	*t;

	switch (ch->what) {
	case JOB_QUEUED:
	case JOB_DELAYED:
		/* A dead job queued again is live again: its token too. */
		if (ch->from != JOB_DEAD || (t = *idem_job_slot(j->id)) == NULL ||
		    t->expires_ms == 0)
			return;
		TAILQ_REMOVE(&expiring, t, entry);
		t->expires_ms = 0;
		idem_record(t);
		return;
	default:
		/* Cancelled by the shutdown: it runs after the restart, its token lives. */
		if (ch->what == JOB_CANCELLED && master_stopping)
			return;
		if ((t = *idem_job_slot(j->id)) == NULL || t->expires_ms != 0)
			return;
		t->expires_ms = now_ms() + idem_window_ms();
		if (t->expires_ms == 0)
			t->expires_ms = 1;
		idem_expiring(t);
		idem_record(t);
		return;
	}
}

int
idem_restore(uint16_t qidx, uint16_t owner, const char *tok, size_t len, uint64_t id,
    uint64_t expires_ms)
{
	return (idem_add(qidx, owner, tok, len, id, expires_ms) != NULL ? 0 : -1);
}

int
idem_foreach(int (*fn)(const struct idem_tok *, void *), void *arg)
{
	struct idem_tok	*t;
	uint32_t	 i;
	int		 rc;

	for (i = 0; i < nbuckets; i++) {
		for (t = by_key[i]; t != NULL; t = t->knext) {
			if ((rc = fn(t, arg)) != 0)
				return (rc);
		}
	}
	return (0);
}

size_t
idem_bytes(void)
{
	return (heap_bytes + 2 * (size_t)nbuckets * sizeof *by_key);
}

void
idem_stats(struct evbuffer *out)
{
	evbuffer_add_printf(out, " idem_tokens=%u idem_max=%u", idem_n, idem_max());
}

void
idem_free(void)
{
	struct idem_tok	*t, *next;
	uint32_t	 i;

	for (i = 0; i < nbuckets; i++) {
		for (t = by_key[i]; t != NULL; t = next) {
			next = t->knext;
			free(t);
		}
	}
	free(by_key);
	free(by_job);
	by_key = by_job = NULL;
	nbuckets = 0;
	idem_n = 0;
	heap_bytes = 0;
	TAILQ_INIT(&expiring);
	if (expire_ev != NULL)
		event_free(expire_ev);
	expire_ev = NULL;
}
