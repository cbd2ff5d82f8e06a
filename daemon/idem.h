/*
 * idem.h: idempotency tokens (SUBMIT ... idem=TOKEN), idem.c.
 *
 * Ownership: idem.c owns the token table, every token in it and its expiry timer. A
 * token names one job by id (struct job has no room for it, bench W4): the job table
 * finds the job, which may be gone (its result no longer kept) while the token lives.
 * A token lives while its job waits or runs, and for idempotency_window after the job
 * ended (done, cancelled, dead); at most idempotency_max are held.
 */

#ifndef IDEM_H
#define IDEM_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct job_change;

/*
 * One token: 61 bytes and the token, one malloc each (at most 144 bytes of heap with a
 * 64-byte token), and two hash chains (a bucket each, at most two buckets per token:
 * 32 bytes). IDEM_BYTES_MAX is what jobpool.conf(5) says a token costs at most, past
 * IDEM_BYTES_FIXED for the tables' first buckets (64 in each).
 */
struct idem_tok {
	struct idem_tok	*knext;		/* chain by (queue, owner, token) */
	struct idem_tok	*jnext;		/* chain by job id */
	TAILQ_ENTRY(idem_tok) entry;	/* expiry list (ended jobs), by expires_ms */
	uint64_t	 id;		/* the job */
	uint64_t	 expires_ms;	/* monotonic ms; 0: its job has not ended */
	uint64_t	 batch;		/* journal: the batch of its records; 0: durable */
	uint16_t	 qidx;		/* the queue (idx, never reused) */
	uint16_t	 owner;		/* the submitter (priv.c's owner table) */
	uint8_t		 len;
	char		 tok[];		/* not NUL-terminated */
};
#define IDEM_BYTES_MAX		176
#define IDEM_MIN_BUCKETS	64
#define IDEM_BYTES_FIXED	(2 * IDEM_MIN_BUCKETS * sizeof(void *))

/* Tokens held: the lifecycle listener's condition (lifecycle.c). */
extern uint32_t		 idem_n;

/*
 * The job that token tok names on queue qidx for owner, or 0 (none, or expired: gone
 * now). *batch: the journal batch a reply naming it must wait for (0: none).
 */
uint64_t	 idem_find(uint16_t qidx, uint16_t owner, const char *tok, size_t len,
		     uint64_t *batch);
/* Is there room for one more token (idempotency_max)? 1, or 0. */
int		 idem_room(void);
/* In how many ms the first token to expire does so; 0: none is expiring. */
uint64_t	 idem_next_expiry_ms(void);
/* SUBMIT accepted j with token tok: j has it from now on (out of memory: logged). */
void		 idem_give(const struct job *j, const char *tok, size_t len);
/*
 * lifecycle listener, while tokens are held: an ended job's token starts its window;
 * a dead job queued again makes it live again.
 */
void		 idem_job_changed(const struct job_change *);
/* Recovery: a token from the journal (expires_ms: monotonic, 0: live). 0, or -1 ENOMEM. */
int		 idem_restore(uint16_t qidx, uint16_t owner, const char *tok, size_t len,
		     uint64_t id, uint64_t expires_ms);
/* fn for each token; stops at fn's first nonzero, which it returns. */
int		 idem_foreach(int (*fn)(const struct idem_tok *, void *), void *arg);
/* Forget the tokens that expired by now. */
void		 idem_expire(uint64_t now);
/* Bytes the table takes (entries and buckets). */
size_t		 idem_bytes(void);
/* STATS: the daemon line's idem_* words. */
void		 idem_stats(struct evbuffer *out);
void		 idem_free(void);

#endif /* IDEM_H */
