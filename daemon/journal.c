/*
 * journal.c: the write-ahead log. A job the daemon has acknowledged survives a restart,
 * a crash of the daemon and, with journal_fsync = always, a crash of the machine.
 *
 * On disk: DIR/journal.N, N counting up; the highest is the one being written, lower
 * ones exist only while a compaction finishes. A file is a 16-byte header, then records:
 *
 *	u32 size	bytes after the crc
 *	u32 crc		CRC-32C of those bytes
 *	u8  type	then the body, integers little-endian:
 *	SUBMIT	u64 id, u8 flags (1: dead), u8 attempts, i16 prio, u32 timeout_ms,
 *		u64 run_at (wall-clock ms, 0: now), u8 qlen, queue name, u32 len, payload;
 *		dead: u8 last_status, u64 died (wall-clock ms), u16 rlen, reason;
 *		then u32 owner (the submitter's uid; a body without it, from before
 *		owners, is read as root's); then, for a job with a key, u8 klen and
 *		the key (1..255 bytes; a body without them is a job without one)
 *	END	u64 id			finished, cancelled or dropped: forget it
 *	DEAD	u64 id, u8 last_status, u64 died, u16 rlen, reason, u8 attempts
 *		(attempts was added later: a DEAD record without it is read too)
 *	RETRY	u64 id			a dead job queued again, attempts from 0
 *	NEXT	u64 id			the next job id (first in every file; last too in a
 *					snapshot, should the first be damaged)
 *	IDEM	u64 id, u64 expires (wall-clock ms; 0: its job has not ended), u32 owner
 *		(uid), u8 qlen, queue name, u8 tlen, token: job id's idempotency token
 *		(idem.c), at the submit, at its job's end and when a dead job is queued
 *		again; the last one of a job is the truth, an END does not forget it
 *
 * Replaying the files in order gives the jobs that were live. A record that is cut
 * short, fails its crc or does not decode is damage: the replay skips it and goes on
 * from the next place where a whole record is found again (a size that fits, the crc,
 * a known type, a body that decodes), so one damaged record costs only itself and what
 * the damage covers. A damaged file is kept aside as journal.N.damaged, logged, and
 * counted in STATS.
 *
 * Threads: the master appends records to a buffer of its own during a pass of the event
 * loop, and hands them over once per pass (one batch). The writer thread writes each
 * batch and, as the policy says, fdatasyncs it; a group of batches that arrive during
 * one fdatasync share the next one (group commit). It then publishes the last batch
 * done and wakes the master through an eventfd; server.c releases the replies held
 * for it. Compaction: once the file is past journal_compact_size and more than half of
 * it is records of jobs that ended, the master writes a snapshot of the live jobs into
 * a batch of its own; the writer puts it in a new file, fdatasyncs it, and removes the
 * old one.
 */

#include "autoconf.h"

#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "idem.h"
#include "journal.h"
#include "log.h"
#include "priv.h"

#define JHDR		"JOBPOOL JRNL v1\n"	/* 16 bytes */
#define JHDR_LEN	16
#define JREC_HDR	8			/* size, crc */
#define JREC_MAX	(CONFIG_FRAME_MAX + 65536)
#define JREASON_MAX	1024			/* of a dead job's reason, journalled */

enum { JR_SUBMIT = 1, JR_END, JR_DEAD, JR_RETRY, JR_NEXT, JR_IDEM };

/* A live job read back from the journal (recovery, and jobs of unknown queues). */
struct jrec {
	uint64_t	 id;
	struct jrec	*hnext;
	uint64_t	 run_at;	/* wall-clock ms, 0: now */
	uint64_t	 died;		/* dead: wall-clock ms */
	uint32_t	 len;
	uint32_t	 timeout_ms;
	int16_t		 prio;
	uint32_t	 owner;		/* uid */
	uint8_t		 dead;
	uint8_t		 attempts;
	uint8_t		 last_status;
	uint8_t		 klen;		/* its key, after the payload in data; 0: none */
	uint16_t	 rlen;
	char		*reason;
	char		 qname[64];
	char		 data[];	/* payload, then key */
};

int		 journal_on;
uint64_t	 journal_seq;

static struct {
	/* The master's. */
	char		*dir;
	int		 dirfd;
	int		 lockfd;
	struct evbuffer	*buf;		/* records of this pass */
	uint64_t	 handed;	/* batches handed to the writer */
	uint64_t	 file_bytes;	/* of the file being written, as appended */
	uint64_t	 live_bytes;	/* SUBMIT records of live jobs */
	uint64_t	 compact_size;
	uint64_t	 compact_after;	/* no compaction below this (after a failed one) */
	uint64_t	 old_bytes;	/* compacting: the old file's size at the start */
	uint64_t	 snap_bytes;	/* and the new one's first part */
	int		 compacting;
	int		 flush_armed;
	struct event	*flush_ev;
	struct event	*note_ev;
	int		 efd;
	struct jrec	*orphans;	/* jobs of queues the config has not */
	uint32_t	 norphans;
	char		*refusal;	/* set while writes fail */
	uint64_t	 compactions;
	uint64_t	 recovered;
	uint64_t	 damaged;	/* regions skipped at the start */
	uint64_t	 damaged_bytes;
	uint64_t	 damaged_files;
	char		 damaged_file[80];	/* the last file kept aside */
	int		 policy_m;	/* the policy in force, the master's copy */

	/* Shared, under mu. */
	pthread_t	 thr;
	int		 thr_started;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct evbuffer	*shared;
	uint64_t	 shared_batch;
	struct evbuffer	*snap;		/* a compaction: the new file's first batch */
	struct evbuffer	*after;		/* batches handed over while it waits */
	int		 stop;
	int		 policy;
	uint32_t	 interval_ms;
	char		 err[512];	/* the writer's last failure, "" once it works */
	char		 rot_err[512];	/* why the last compaction failed, or "" */
	int		 err_changed;
	int		 rotated;	/* 1 a compaction finished, -1 failed */

	/* The writer's, read by the master for STATS. */
	int		 fd;
	_Atomic uint64_t fileno;
	_Atomic uint64_t durable;
	_Atomic uint64_t fsyncs;
	_Atomic uint64_t written;
	_Atomic int	 fatal;
	char		 fatal_msg[512];

	/*
	 * How long each fdatasync took (us), for /metrics: the writer adds, the master
	 * copies, under a lock of their own (never held across a system call).
	 */
	pthread_mutex_t	 hist_mu;
	struct hist	 fsync_hist;
} J = { .dirfd = -1, .lockfd = -1, .efd = -1, .fd = -1,
	.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	.hist_mu = PTHREAD_MUTEX_INITIALIZER };

/* ----- CRC-32C ----- */

static uint32_t	crc_table[8][256];
static uint32_t	crc_pow[64];		/* x^(8 * 2^k) modulo the polynomial */
static int	crc_hw = -1;

static uint32_t	crc_mul(uint32_t, uint32_t);

static void
crc_init(void)
{
	uint32_t	c;
	int		i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		for (k = 1; k < 8; k++)
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^
			    crc_table[0][crc_table[k - 1][i] & 0xff];
	}
	crc_pow[0] = 0x80000000U >> 8;		/* x^8: one byte */
	for (k = 1; k < 64; k++)
		crc_pow[k] = crc_mul(crc_pow[k - 1], crc_pow[k - 1]);
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#else
	crc_hw = 0;
#endif
}

/*
 * a * b modulo the CRC-32C polynomial, in the crc's bit-reflected form (bit 31 is the
 * coefficient of x^0, bit 0 that of x^31).
 */
static uint32_t
crc_mul(uint32_t a, uint32_t b)
{
	uint32_t	p = 0, bit;

	for (bit = 0x80000000U; bit != 0; bit >>= 1) {
		if (a & bit)
			p ^= b;
		b = b & 1 ? (b >> 1) ^ 0x82F63B78U : b >> 1;	/* b * x */
	}
	return (p);
}

/*
 * The crc of A carried over n more bytes: crc * x^(8n). CRC-32C is linear, so
 * crc(A B) = crc_shift(crc(A), |B|) ^ crc(B) whatever the bytes of B.
 */
static uint32_t
crc_shift(uint32_t crc, uint64_t n)
{
	int	k;

	if (crc_hw == -1)
		crc_init();
	for (k = 0; n != 0; k++, n >>= 1) {
		if (n & 1)
			crc = crc_mul(crc_pow[k], crc);
	}
	return (crc);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t	c = crc, v;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; len > 0; p++, len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return ((uint32_t)c);
}
#endif

/* Slicing by 8, for machines without the instruction. */
static uint32_t
crc_soft(uint32_t c, const unsigned char *p, size_t len)
{
	uint64_t	v;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, 8);
		v = htole64(v) ^ c;
		c = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
		    crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
		    crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
		    crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
	}
	for (; len > 0; p++, len--)
		c = (c >> 8) ^ crc_table[0][(c ^ *p) & 0xff];
	return (c);
}

uint32_t
journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	uint32_t	c = ~crc;

	if (crc_hw == -1)
		crc_init();
#if defined(__x86_64__)
	if (crc_hw)
		return (~crc_sse42(c, buf, len));
#endif
	return (~crc_soft(c, buf, len));
}

/* ----- encoding ----- */

static uint64_t
wall_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static unsigned char *
put8(unsigned char *p, uint8_t v)
{
	*p = v;
	return (p + 1);
}

static unsigned char *
put16(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
	return (p + 2);
}

static unsigned char *
put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
	return (p + 4);
}

static unsigned char *
put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
	return (p + 8);
}

/* Room for a record of body bytes in b; NULL if out of memory. */
static unsigned char *
rec_begin(struct evbuffer *b, size_t body, struct evbuffer_iovec *v)
{
	if (evbuffer_reserve_space(b, (ev_ssize_t)(JREC_HDR + body), v, 1) != 1)
		return (NULL);
	return ((unsigned char *)v->iov_base + JREC_HDR);
}

/* Fill in the size and crc and commit. */
static void
rec_end(struct evbuffer *b, struct evbuffer_iovec *v, size_t body)
{
	unsigned char	*p = v->iov_base;

	put32(p, (uint32_t)body);
	put32(p + 4, journal_crc32c(0, p + JREC_HDR, body));
	v->iov_len = JREC_HDR + body;
	evbuffer_commit_space(b, v, 1);
}

static size_t
submit_size(size_t qlen, uint32_t len, int dead, uint16_t rlen, size_t klen)
{
	return (1 + 8 + 1 + 1 + 2 + 4 + 8 + 1 + qlen + 4 + len +
	    (dead ? 1 + 8 + 2 + rlen : 0) + 4 + (klen > 0 ? 1 + klen : 0));
}

/* A SUBMIT record; -1 if out of memory. */
static int
rec_submit(struct evbuffer *b, uint64_t id, int dead, uint8_t attempts, int16_t prio,
    uint32_t timeout_ms, uint64_t run_at, const char *qname, const void *data,
    uint32_t len, uint8_t last_status, uint64_t died, const char *reason, uint16_t rlen,
    uint32_t owner, const char *key, size_t klen, size_t *sizep)
{
	struct evbuffer_iovec	 v;
	size_t			 qlen = strlen(qname);
	size_t			 body = submit_size(qlen, len, dead, rlen, klen);
	unsigned char		*p;

	if ((p = rec_begin(b, body, &v)) == NULL)
		return (-1);
	p = put8(p, JR_SUBMIT);
	p = put64(p, id);
	p = put8(p, dead ? 1 : 0);
	p = put8(p, attempts);
	p = put16(p, (uint16_t)prio);
	p = put32(p, timeout_ms);
	p = put64(p, run_at);
	p = put8(p, (uint8_t)qlen);
	memcpy(p, qname, qlen);
	p += qlen;
	p = put32(p, len);
	if (len > 0)
		memcpy(p, data, len);
	p += len;
	if (dead) {
		p = put8(p, last_status);
		p = put64(p, died);
		p = put16(p, rlen);
		if (rlen > 0)
			memcpy(p, reason, rlen);
		p += rlen;
	}
	p = put32(p, owner);
	if (klen > 0) {
		p = put8(p, (uint8_t)klen);
		memcpy(p, key, klen);
	}
	rec_end(b, &v, body);
	if (sizep != NULL)
		*sizep = JREC_HDR + body;
	return (0);
}

/* END, RETRY, NEXT: a type and a u64. */
static int
rec_id(struct evbuffer *b, int type, uint64_t id)
{
	struct evbuffer_iovec	 v;
	unsigned char		*p;

	if ((p = rec_begin(b, 9, &v)) == NULL)
		return (-1);
	p = put8(p, (uint8_t)type);
	put64(p, id);
	rec_end(b, &v, 9);
	return (0);
}

static int
rec_dead(struct evbuffer *b, uint64_t id, uint8_t last_status, uint64_t died,
    const char *reason, uint16_t rlen, uint8_t attempts)
{
	struct evbuffer_iovec	 v;
	size_t			 body = 1 + 8 + 1 + 8 + 2 + rlen + 1;
	unsigned char		*p;

	if ((p = rec_begin(b, body, &v)) == NULL)
		return (-1);
	p = put8(p, JR_DEAD);
	p = put64(p, id);
	p = put8(p, last_status);
	p = put64(p, died);
	p = put16(p, rlen);
	if (rlen > 0)
		memcpy(p, reason, rlen);
	p += rlen;
	put8(p, attempts);
	rec_end(b, &v, body);
	return (0);
}

/* IDEM: a token's life (expires: wall-clock ms, 0: live). */
static int
rec_idem(struct evbuffer *b, uint64_t id, uint64_t expires, uint32_t owner,
    const char *qname, const char *tok, uint8_t tlen, size_t *sizep)
{
	struct evbuffer_iovec	 v;
	size_t			 qlen = strlen(qname), body = 1 + 8 + 8 + 4 + 1 + qlen + 1 + tlen;
	unsigned char		*p;

	if ((p = rec_begin(b, body, &v)) == NULL)
		return (-1);
	p = put8(p, JR_IDEM);
	p = put64(p, id);
	p = put64(p, expires);
	p = put32(p, owner);
	p = put8(p, (uint8_t)qlen);
	memcpy(p, qname, qlen);
	p += qlen;
	p = put8(p, tlen);
	memcpy(p, tok, tlen);
	rec_end(b, &v, body);
	if (sizep != NULL)
		*sizep = JREC_HDR + body;
	return (0);
}

/* A token's expiry as the wall clock says it: 0 while its job lives. */
static uint64_t
idem_expires_wall(const struct idem_tok *t)
{
	uint64_t	now = now_ms();

	if (t->expires_ms == 0)
		return (0);
	return (wall_ms() + (t->expires_ms > now ? t->expires_ms - now : 0));
}

static int
rec_tok(struct evbuffer *b, const struct idem_tok *t, size_t *sizep)
{
	return (rec_idem(b, t->id, idem_expires_wall(t), priv_owner_uid(t->owner),
	    queues[t->qidx]->name, t->tok, t->len, sizep));
}

/* What a job's SUBMIT record holds, from the job. */
static uint64_t
job_run_at_wall(const struct job *j)
{
	uint64_t	now;

	if (j->run_at == 0 || (j->state != JOB_DELAYED && j->state != JOB_RETRY_WAIT))
		return (0);
	now = now_us();
	return (j->run_at > now ? wall_ms() + (j->run_at - now) / 1000 : 0);
}

static uint16_t
job_reason_len(const struct job *j)
{
	uint32_t	n = job_rlen(j);

	return ((uint16_t)(n > JREASON_MAX ? JREASON_MAX : n));
}

static uint64_t
job_died_wall(const struct job *j)
{
	uint64_t	now = now_ms();

	if (j->x == NULL || j->x->died_ms == 0 || j->x->died_ms > now)
		return (wall_ms());
	return (wall_ms() - (now - j->x->died_ms));
}

static int
rec_job(struct evbuffer *b, const struct job *j, size_t *sizep)
{
	int		 dead = j->state == JOB_DEAD;
	const char	*key;
	size_t		 klen;

	key = job_key(j, &klen);
	return (rec_submit(b, j->id, dead, j->attempts, j->prio, j->timeout_ms,
	    job_run_at_wall(j), job_queue(j)->name, j->data, j->len,
	    dead && j->x != NULL ? j->x->last_status : JOB_FAILED,
	    dead ? job_died_wall(j) : 0, job_result(j), dead ? job_reason_len(j) : 0,
	    priv_owner_uid(j->owner), key, klen, sizep));
}

static int
rec_orphan(struct evbuffer *b, const struct jrec *r, size_t *sizep)
{
	return (rec_submit(b, r->id, r->dead, r->attempts, r->prio, r->timeout_ms,
	    r->run_at, r->qname, r->data, r->len, r->last_status, r->died, r->reason,
	    r->rlen, r->owner, r->data + r->len, r->klen, sizep));
}

/* ----- appending (master) ----- */

static void	journal_flush_cb(evutil_socket_t, short, void *);

static void
journal_appended(void)
{
	journal_seq++;
	if (!J.flush_armed) {
		J.flush_armed = 1;
		event_active(J.flush_ev, EV_TIMEOUT, 0);
	}
}

static void
journal_oom(const char *what, uint64_t id)
{
	/* The job goes on in memory; a restart would not know of this change. */
	log_errx("journal: out of memory for the %s record of job %llu", what,
	    (unsigned long long)id);
}

void
journal_submit(const struct job *j)
{
	size_t	size;

	if (!journal_on)
		return;
	if (rec_job(J.buf, j, &size) != 0) {
		journal_oom("SUBMIT", j->id);
		return;
	}
	J.file_bytes += size;
	J.live_bytes += size;
	journal_appended();
}

void
journal_end(const struct job *j)
{
	size_t	size, klen;

	if (!journal_on)
		return;
	if (rec_id(J.buf, JR_END, j->id) != 0) {
		journal_oom("END", j->id);
		return;
	}
	(void)job_key(j, &klen);
	size = JREC_HDR + submit_size(strlen(job_queue(j)->name), j->len, 0, 0, klen);
	J.live_bytes = J.live_bytes > size ? J.live_bytes - size : 0;
	J.file_bytes += JREC_HDR + 9;
	journal_appended();
}

void
journal_dead(const struct job *j)
{
	uint16_t	rlen = job_reason_len(j);

	if (!journal_on)
		return;
	if (rec_dead(J.buf, j->id, j->x != NULL ? j->x->last_status : JOB_FAILED,
	    job_died_wall(j), job_result(j), rlen, j->attempts) != 0) {
		journal_oom("DEAD", j->id);
		return;
	}
	J.file_bytes += JREC_HDR + 21 + rlen;
	journal_appended();
}

/*
 * lifecycle listener, the first: a job accepted (SUBMIT; recovery writes none, its
 * snapshot holds every job), retried (RETRY), ended (END, DEAD), or cancelled by a
 * client while it runs (END at once: whatever the handler does now, a restart must
 * not run it again).
 *
 * A job's end is recorded before anyone hears of it, and server.c holds every reply
 * that tells of it until that record is as durable as the policy says
 * (job_end_batch()): a job runs again after a crash only if no client heard that it
 * ended. A job cancelled by the shutdown records no end: it stays in the journal and
 * runs after the restart, as its waiters are told; a client's CANCEL of a running job
 * recorded its end already, and records it again as it ends, which costs a few bytes
 * and keeps this rule in one place.
 */
void
journal_job_changed(const struct job_change *ch)
{
	struct job	*j = ch->j;

	if (!journal_on)
		return;		/* and job_end_batch() says there is nothing to wait for */
	/* A job from a Redis stream is kept there, pending, until it ends: not here. */
	if (source_redis_nheld != 0 && source_redis_holds(j->id))
		return;
	switch (ch->what) {
	case JOB_QUEUED:
	case JOB_DELAYED:
		if (ch->from == JOB_NEW && !ch->recovered)
			journal_submit(j);
		else if (ch->from == JOB_DEAD)
			journal_retry(j);
		return;
	case JOB_EV_CANCELLING:
		if (j->cancel == JOB_CANCEL_USER)
			journal_end(j);
		return;
	case JOB_DEAD:
		if (j->x != NULL)
			journal_dead(j);
		else
			journal_end(j);		/* cannot be kept: job_dead_add() drops it */
		break;
	case JOB_CANCELLED:
		if (!master_stopping)
			journal_end(j);
		break;
	default:
		journal_end(j);
		break;
	}
	if (j->x != NULL)
		j->x->end_batch = journal_last_batch();
}

/* idem.c: a token was given, its job ended, or it lives again. */
void
journal_idem(const struct idem_tok *t)
{
	size_t	size;

	if (!journal_on)
		return;
	if (rec_tok(J.buf, t, &size) != 0) {
		journal_oom("IDEM", t->id);
		return;
	}
	J.file_bytes += size;
	journal_appended();
}

void
journal_retry(const struct job *j)
{
	if (!journal_on)
		return;
	if (rec_id(J.buf, JR_RETRY, j->id) != 0) {
		journal_oom("RETRY", j->id);
		return;
	}
	J.file_bytes += JREC_HDR + 9;
	journal_appended();
}

uint64_t
journal_batch(void)
{
	return (J.handed + 1);
}

/*
 * The batch holding the last record appended: the one being filled while this pass's
 * records wait for journal_flush_cb(), the last one handed to the writer after that.
 */
uint64_t
journal_last_batch(void)
{
	return (J.flush_armed ? J.handed + 1 : J.handed);
}

uint64_t
journal_durable(void)
{
	return (atomic_load(&J.durable));
}

const char *
journal_refusal(void)
{
	return (J.refusal);
}

/* A snapshot's SUBMIT record of one job (queue_foreach_waiting and the like). */
struct snap {
	struct evbuffer	*b;
	uint64_t	 live;
};

static int
journal_snap_job(struct job *j, void *arg)
{
	struct snap	*sn = arg;
	size_t		 size;

	if (source_redis_nheld != 0 && source_redis_holds(j->id))
		return (0);	/* Redis keeps it (journal_job_changed) */
	if (rec_job(sn->b, j, &size) != 0)
		return (-1);
	sn->live += size;
	return (0);
}

static int
journal_snap_tok(const struct idem_tok *t, void *arg)
{
	return (rec_tok(arg, t, NULL));
}

/* Every job the daemon must not forget, as SUBMIT records: a new file's contents. */
static int
journal_snapshot(struct evbuffer *b, uint64_t *live)
{
	struct snap	 sn = { b, 0 };
	struct job	*j;
	struct jrec	*r;
	size_t		 size;
	int		 i;

	*live = 0;
	if (rec_id(b, JR_NEXT, job_peek_next_id()) != 0)
		return (-1);
	for (i = 0; i < nqueues; i++) {
		if (queue_foreach_waiting(queues[i], journal_snap_job, &sn) != 0 ||
		    supervisor_foreach_inflight(queues[i], journal_snap_job, &sn) != 0)
			return (-1);
	}
	for (j = job_dead_first(); j != NULL; j = job_dead_next(j)) {
		if (journal_snap_job(j, &sn) != 0)
			return (-1);
	}
	*live = sn.live;
	/* Tokens are not counted live: they expire without a record saying so. */
	if (idem_foreach(journal_snap_tok, b) != 0)
		return (-1);
	for (r = J.orphans; r != NULL; r = r->hnext) {
		if (rec_orphan(b, r, &size) != 0)
			return (-1);
		*live += size;
	}
	/* NEXT again: damage to the first would otherwise let old ids be given again. */
	return (rec_id(b, JR_NEXT, job_peek_next_id()));
}

/* Once per pass of the event loop: hand this pass's records to the writer. */
static void
journal_flush_cb(evutil_socket_t fd, short events, void *arg)
{
	struct evbuffer	*snap = NULL;
	uint64_t	 live;

	J.flush_armed = 0;
	if (evbuffer_get_length(J.buf) == 0)
		return;
	if (!J.compacting && J.file_bytes > J.compact_size &&
	    J.file_bytes > 2 * J.live_bytes && J.file_bytes > J.compact_after) {
		if ((snap = evbuffer_new()) == NULL || journal_snapshot(snap, &live) != 0) {
			log_warnx("journal: out of memory for a compaction; the file keeps "
			    "growing");
			if (snap != NULL)
				evbuffer_free(snap);
			snap = NULL;
			J.compact_after = J.file_bytes * 2;
		} else {
			log_info("journal: compacting %llu bytes (%llu of live jobs)",
			    (unsigned long long)J.file_bytes, (unsigned long long)live);
			J.compacting = 1;
			J.live_bytes = live;
			J.old_bytes = J.file_bytes;
			J.snap_bytes = JHDR_LEN + evbuffer_get_length(snap);
			J.file_bytes = J.snap_bytes;
		}
	}
	pthread_mutex_lock(&J.mu);
	/*
	 * While a compaction waits for the writer, later records follow the snapshot
	 * into the new file: in the old one they would be lost with it.
	 */
	if (J.snap != NULL)
		evbuffer_add_buffer(J.after, J.buf);
	else
		evbuffer_add_buffer(J.shared, J.buf);
	J.shared_batch = ++J.handed;
	if (snap != NULL)
		J.snap = snap;
	pthread_cond_signal(&J.cv);
	pthread_mutex_unlock(&J.mu);
}

/*
 * Give back the heap that a recovery or a compaction left free. The replay's records and
 * the snapshot's buffer are about as big as the jobs themselves and are freed below
 * them, so the heap cannot shrink from its top (bench W6's recovery, bench/README.md).
 */
static void
journal_trim(void)
{
#ifdef HAVE_MALLOC_TRIM
	malloc_trim(0);
#endif
}

/* The writer says something: batches are durable, a compaction ended, an error. */
static void
journal_note_cb(evutil_socket_t fd, short events, void *arg)
{
	uint64_t	 v;
	int		 rotated, changed;
	char		 err[sizeof J.err];

	if (read(J.efd, &v, sizeof v) == -1 && errno != EAGAIN)
		log_warn("journal: read eventfd");
	if (atomic_load(&J.fatal))
		fatalx("journal: %s; stopping now: what is on disk is uncertain after a "
		    "failed fsync, and a restart recovers from it", J.fatal_msg);
	pthread_mutex_lock(&J.mu);
	rotated = J.rotated;
	J.rotated = 0;
	if (J.rot_err[0] != '\0') {
		log_warnx("journal: compaction: %s; %s", J.rot_err, rotated < 0 ?
		    "the file goes on growing until a later compaction succeeds" :
		    "the old file stays (it is harmless)");
		J.rot_err[0] = '\0';
	}
	changed = J.err_changed;
	J.err_changed = 0;
	memcpy(err, J.err, sizeof err);
	pthread_mutex_unlock(&J.mu);
	if (rotated != 0) {
		J.compacting = 0;
		journal_trim();		/* the writer has freed the snapshot */
		if (rotated > 0)
			J.compactions++;
		else {
			/* The old file goes on: what was appended since went there. */
			J.file_bytes = J.old_bytes + (J.file_bytes - J.snap_bytes);
			J.compact_after = J.file_bytes * 2;
		}
	}
	if (changed) {
		free(J.refusal);
		J.refusal = NULL;
		if (err[0] != '\0') {
			log_errx("journal: %s; new jobs are refused until it can be written "
			    "(retrying every second)", err);
			if (asprintf(&J.refusal, "the journal cannot be written: %s", err) == -1)
				J.refusal = NULL;
		} else
			log_notice("journal: writing again");
	}
	server_journal_durable(atomic_load(&J.durable));
}

/* ----- the writer thread ----- */

static void
writer_note(void)
{
	uint64_t	one = 1;

	if (write(J.efd, &one, sizeof one) == -1 && errno != EAGAIN)
		return;
}

static void
journal_path(char *buf, size_t size, uint64_t n)
{
	snprintf(buf, size, "journal.%llu", (unsigned long long)n);
}

/* Write all of b to fd; 0, or -1 with errno (what was written is drained). */
static int
writer_write(int fd, struct evbuffer *b)
{
	int	n;

	while (evbuffer_get_length(b) > 0) {
		if ((n = evbuffer_write(b, fd)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		atomic_fetch_add(&J.written, (uint64_t)n);
	}
	return (0);
}

static void
writer_error(const char *call, uint64_t file)
{
	char	name[64];

	journal_path(name, sizeof name, file);
	pthread_mutex_lock(&J.mu);
	snprintf(J.err, sizeof J.err, "%s %s/%s: %s", call, J.dir, name, strerror(errno));
	J.err_changed = 1;
	pthread_mutex_unlock(&J.mu);
	writer_note();
}

static void
writer_ok(void)
{
	pthread_mutex_lock(&J.mu);
	if (J.err[0] != '\0') {
		J.err[0] = '\0';
		J.err_changed = 1;
	}
	pthread_mutex_unlock(&J.mu);
}

/* What is on disk is uncertain now: the master exits, and the restart recovers. */
static void
writer_fatal(const char *call, uint64_t file)
{
	char	name[64];

	journal_path(name, sizeof name, file);
	snprintf(J.fatal_msg, sizeof J.fatal_msg, "%s %s/%s: %s", call, J.dir, name,
	    strerror(errno));
	atomic_store(&J.fatal, 1);
	writer_note();
}

/* fdatasync, timed into J.fsync_hist. */
static int
journal_fdatasync(int fd)
{
	uint64_t	t0 = now_us();
	int		r;

	r = fdatasync(fd);
	pthread_mutex_lock(&J.hist_mu);
	hist_add(&J.fsync_hist, now_us() - t0);
	pthread_mutex_unlock(&J.hist_mu);
	return (r);
}

static int
writer_sync(int fd, uint64_t file)
{
	if (journal_fdatasync(fd) == 0) {
		atomic_fetch_add(&J.fsyncs, 1);
		return (0);
	}
	writer_fatal("fdatasync", file);
	return (-1);
}

/*
 * Make journal.N holding the header and b, fdatasync'd, its directory entry fsync'd:
 * the descriptor, or -1 with *call naming what failed (errno says why; the file is gone).
 */
static int
journal_new_file(uint64_t n, struct evbuffer *b, const char **call)
{
	char	name[64];
	int	fd, e;

	journal_path(name, sizeof name, n);
	*call = "open";
	if ((fd = openat(J.dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
	    0600)) == -1)
		return (-1);
	*call = "write";
	if (write(fd, JHDR, JHDR_LEN) != JHDR_LEN || writer_write(fd, b) != 0)
		goto fail;
	*call = "fdatasync";
	if (journal_fdatasync(fd) == -1)
		goto fail;
	atomic_fetch_add(&J.fsyncs, 1);
	*call = "fsync the directory of";
	if (fsync(J.dirfd) == -1)
		goto fail;
	return (fd);
fail:
	e = errno;
	close(fd);
	(void)unlinkat(J.dirfd, name, 0);
	errno = e;
	return (-1);
}

/* A compaction failed: the old file goes on; the master logs why. Not a write error. */
static void
rotate_error(const char *call, uint64_t file)
{
	char	name[64];

	journal_path(name, sizeof name, file);
	pthread_mutex_lock(&J.mu);
	snprintf(J.rot_err, sizeof J.rot_err, "%s %s/%s: %s", call, J.dir, name,
	    strerror(errno));
	pthread_mutex_unlock(&J.mu);
}

/* Start a new file holding snap; on success the old one is removed. */
static int
writer_rotate(struct evbuffer *snap)
{
	uint64_t	 old = atomic_load(&J.fileno), n = old + 1;
	char		 oname[64];
	const char	*call;
	int		 fd;

	if ((fd = journal_new_file(n, snap, &call)) == -1) {
		if (strcmp(call, "fdatasync") == 0)
			writer_fatal(call, n);	/* as for any failed fdatasync */
		else
			rotate_error(call, n);
		return (-1);
	}
	close(J.fd);
	J.fd = fd;
	atomic_store(&J.fileno, n);
	/* Left behind, it would be read before the new one at the next start: harmless. */
	journal_path(oname, sizeof oname, old);
	if (unlinkat(J.dirfd, oname, 0) == -1)
		rotate_error("unlink", old);
	return (0);
}

/*
 * Write b to the file: 1 written, 0 nothing to write, -1 failed (said once while it
 * goes on; what is left of b waits at the end of retry for the next try).
 */
static int
writer_put(struct evbuffer *b, struct evbuffer *retry, int *failing)
{
	if (evbuffer_get_length(b) == 0)
		return (0);
	if (writer_write(J.fd, b) == 0)
		return (1);
	if (!*failing)
		writer_error("write", atomic_load(&J.fileno));
	*failing = 1;
	if (b != retry)
		evbuffer_add_buffer(retry, b);
	return (-1);
}

/* An absolute CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static void
deadline_in(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *
journal_writer(void *arg)
{
	struct evbuffer	*local, *after, *snap;
	struct timespec	 ts;
	uint64_t	 batch, last_sync, now;
	int		 stop, policy, compacted, dirty = 0, failing = 0, r;
	uint32_t	 interval;

	local = evbuffer_new();
	after = evbuffer_new();
	if (local == NULL || after == NULL) {
		snprintf(J.fatal_msg, sizeof J.fatal_msg, "out of memory for the writer");
		atomic_store(&J.fatal, 1);
		writer_note();
		return (NULL);
	}
	last_sync = now_ms();
	for (;;) {
		pthread_mutex_lock(&J.mu);
		for (;;) {
			if (J.stop || J.snap != NULL || evbuffer_get_length(J.shared) > 0)
				break;
			if (failing && evbuffer_get_length(local) > 0) {
				/* Try the failed write again in a second. */
				deadline_in(&ts, 1000);
				if (pthread_cond_timedwait(&J.cv, &J.mu, &ts) == ETIMEDOUT)
					break;
				continue;
			}
			if (dirty && J.policy == CONFIG_FSYNC_INTERVAL) {
				now = now_ms();
				if (now >= last_sync + J.interval_ms)
					break;
				deadline_in(&ts, last_sync + J.interval_ms - now);
				(void)pthread_cond_timedwait(&J.cv, &J.mu, &ts);
				continue;
			}
			pthread_cond_wait(&J.cv, &J.mu);
		}
		evbuffer_add_buffer(local, J.shared);
		evbuffer_add_buffer(after, J.after);
		batch = J.shared_batch;
		snap = J.snap;
		J.snap = NULL;
		stop = J.stop;
		policy = J.policy;
		interval = J.interval_ms;
		pthread_mutex_unlock(&J.mu);

		compacted = snap != NULL;
		if ((r = writer_put(local, local, &failing)) < 0) {
			if (snap != NULL) {
				/* No compaction: everything stays in the old file. */
				evbuffer_free(snap);
				evbuffer_add_buffer(local, after);
				pthread_mutex_lock(&J.mu);
				J.rotated = -1;
				pthread_mutex_unlock(&J.mu);
				writer_note();
			}
			if (stop)
				break;
			continue;
		}
		dirty |= r > 0;
		if (snap != NULL) {
			r = writer_rotate(snap);
			evbuffer_free(snap);
			if (atomic_load(&J.fatal))
				break;
			if (r == 0) {
				dirty = 0;
				last_sync = now_ms();
			}
			pthread_mutex_lock(&J.mu);
			J.rotated = r == 0 ? 1 : -1;
			pthread_mutex_unlock(&J.mu);
		}
		/* What came after the snapshot: into the new file, or the old one if none. */
		if ((r = writer_put(after, local, &failing)) < 0) {
			if (stop)
				break;
			continue;
		}
		dirty |= r > 0;
		if (failing) {
			failing = 0;
			writer_ok();
		}
		now = now_ms();
		if (dirty && (policy == CONFIG_FSYNC_ALWAYS || stop ||
		    (policy == CONFIG_FSYNC_INTERVAL && now >= last_sync + interval))) {
			if (writer_sync(J.fd, atomic_load(&J.fileno)) != 0)
				break;
			dirty = 0;
			last_sync = now;
		}
		if (batch > atomic_load(&J.durable) || compacted) {
			if (batch > atomic_load(&J.durable))
				atomic_store(&J.durable, batch);
			writer_note();
		}
		if (stop)
			break;
	}
	evbuffer_free(local);
	evbuffer_free(after);
	return (NULL);
}

/* ----- reading back ----- */

struct jset {
	struct jrec	**b;
	uint64_t	  mask;
	uint64_t	  n;
	uint64_t	  next_id;
	struct jset	 *idem;		/* the tokens (IDEM: id, run_at the expiry, data
					   the token), by job id; NULL: not kept */
};

static uint64_t
jset_hash(uint64_t id)
{
	return ((id * 0x9E3779B97F4A7C15ULL) >> 17);
}

static struct jrec **
jset_slot(struct jset *s, uint64_t id)
{
	struct jrec	**p;

	for (p = &s->b[jset_hash(id) & s->mask]; *p != NULL; p = &(*p)->hnext) {
		if ((*p)->id == id)
			break;
	}
	return (p);
}

static int
jset_grow(struct jset *s)
{
	uint64_t	  nsize = s->b != NULL ? (s->mask + 1) * 2 : 1024, i;
	struct jrec	**nb, *r, *next;

	if ((nb = calloc(nsize, sizeof *nb)) == NULL)
		return (-1);
	for (i = 0; s->b != NULL && i <= s->mask; i++) {
		for (r = s->b[i]; r != NULL; r = next) {
			next = r->hnext;
			r->hnext = nb[jset_hash(r->id) & (nsize - 1)];
			nb[jset_hash(r->id) & (nsize - 1)] = r;
		}
	}
	free(s->b);
	s->b = nb;
	s->mask = nsize - 1;
	return (0);
}

static void
jrec_free(struct jrec *r)
{
	if (r != NULL) {
		free(r->reason);
		free(r);
	}
}

static void
jset_free(struct jset *s)
{
	struct jrec	*r, *next;
	uint64_t	 i;

	for (i = 0; s->b != NULL && i <= s->mask; i++) {
		for (r = s->b[i]; r != NULL; r = next) {
			next = r->hnext;
			jrec_free(r);
		}
	}
	free(s->b);
	memset(s, 0, sizeof *s);
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t	v;

	memcpy(&v, p, 8);
	return (le64toh(v));
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return (le32toh(v));
}

static uint16_t
get16(const unsigned char *p)
{
	uint16_t	v;

	memcpy(&v, p, 2);
	return (le16toh(v));
}

/*
 * The dead part of a record: u8 last_status, u64 died, u16 rlen, reason; with attempts
 * (a DEAD record's), an u8 attempts may follow, which older DEAD records lack. With r
 * NULL, only whether it decodes. 0, or -1 with *why if it does not fit or memory ran out.
 */
static int
parse_dead(struct jrec *r, const unsigned char *p, size_t n, int attempts,
    const char **why)
{
	uint16_t	rlen;
	size_t		end;

	if (n < 11)
		return (-1);
	rlen = get16(p + 9);
	end = 11 + (size_t)rlen;
	if (n != end && !(attempts && n == end + 1))
		return (-1);
	if (r == NULL)
		return (0);
	free(r->reason);
	r->reason = NULL;
	r->rlen = 0;
	if (rlen > 0 && (r->reason = malloc(rlen)) == NULL) {
		*why = "out of memory";
		return (-1);
	}
	r->dead = 1;
	r->last_status = p[0];
	r->died = get64(p + 1);
	r->rlen = rlen;
	if (rlen > 0)
		memcpy(r->reason, p + 11, rlen);
	if (n > end)
		r->attempts = p[end];
	return (0);
}

/* An id the journal has seen was given out: new jobs get higher ones. */
static void
jset_saw(struct jset *s, uint64_t id)
{
	if (id >= s->next_id && id != UINT64_MAX)
		s->next_id = id + 1;
}

/* An IDEM record into s->idem (the newest of a job's is the truth); s NULL: decode only. */
static int
jset_apply_idem(struct jset *s, const unsigned char *p, size_t n, const char **why)
{
	struct jset	 *t;
	struct jrec	**slot, *r;
	uint64_t	  id = get64(p + 1);
	uint8_t		  qlen, tlen;

	if (n < 23)
		return (-1);
	qlen = p[21];
	if (qlen == 0 || qlen >= sizeof r->qname || n < 23 + (size_t)qlen)
		return (-1);
	tlen = p[22 + qlen];
	if (tlen == 0 || n != 23 + (size_t)qlen + tlen)
		return (-1);
	if (s == NULL)
		return (0);
	jset_saw(s, id);
	if ((t = s->idem) == NULL)
		return (0);
	if (t->b == NULL || t->n > 2 * t->mask) {
		if (jset_grow(t) != 0 && t->b == NULL) {
			*why = "out of memory";
			return (-1);
		}
	}
	if ((r = calloc(1, sizeof *r + tlen)) == NULL) {
		*why = "out of memory";
		return (-1);
	}
	r->id = id;
	r->run_at = get64(p + 9);
	r->owner = get32(p + 17);
	memcpy(r->qname, p + 22, qlen);
	r->len = tlen;
	memcpy(r->data, p + 23 + qlen, tlen);
	slot = jset_slot(t, id);
	if (*slot != NULL) {
		r->hnext = (*slot)->hnext;
		jrec_free(*slot);
		t->n--;
	}
	*slot = r;
	t->n++;
	return (0);
}

/*
 * Apply one record. 0, or -1 with *why if it is malformed. With s NULL, only whether it
 * decodes, without copying anything: the resync asks that of every candidate.
 */
static int
jset_apply(struct jset *s, const unsigned char *p, size_t n, const char **why)
{
	struct jrec	**slot = NULL, *r;
	uint64_t	  id;
	uint32_t	  len;
	uint8_t		  qlen, flags;
	size_t		  need, end, klen;

	*why = "malformed record";
	if (n < 9)
		return (-1);
	id = get64(p + 1);
	if (p[0] == JR_IDEM)
		return (jset_apply_idem(s, p, n, why));
	if (p[0] == JR_NEXT) {
		if (n != 9)
			return (-1);
		if (s != NULL && id > s->next_id)
			s->next_id = id;
		return (0);
	}
	if (s != NULL) {
		if (s->b == NULL || s->n > 2 * s->mask) {
			if (jset_grow(s) != 0 && s->b == NULL) {
				*why = "out of memory";
				return (-1);
			}
		}
		slot = jset_slot(s, id);
	}
	switch (p[0]) {
	case JR_SUBMIT:
		if (n < 26)
			return (-1);
		flags = p[9];
		qlen = p[25];
		if (qlen == 0 || qlen >= sizeof r->qname || n < 26 + (size_t)qlen + 4)
			return (-1);
		len = get32(p + 26 + qlen);
		need = 26 + (size_t)qlen + 4 + len;
		if (len > JREC_MAX || n < need)
			return (-1);
		/* Where the dead part ends; the owner's uid may follow (4 bytes), or not. */
		end = need;
		if (flags & 1) {
			if (n < need + 11)
				return (-1);
			end = need + 11 + get16(p + need + 9);
		}
		/* Then the owner, or not; after the owner a key, or not. */
		klen = n > end + 4 ? p[end + 4] : 0;
		if (n != end && n != end + 4 && (klen == 0 || n != end + 5 + klen))
			return (-1);
		if (s == NULL && (flags & 1))
			return (parse_dead(NULL, p + need, end - need, 0, why));
		if (s == NULL)
			return (0);
		if ((r = calloc(1, sizeof *r + len + klen)) == NULL) {
			*why = "out of memory";
			return (-1);
		}
		r->id = id;
		r->attempts = p[10];
		r->prio = (int16_t)get16(p + 11);
		r->timeout_ms = get32(p + 13);
		r->run_at = get64(p + 17);
		memcpy(r->qname, p + 26, qlen);
		r->len = len;
		if (len > 0)
			memcpy(r->data, p + 26 + qlen + 4, len);
		r->klen = (uint8_t)klen;
		if (klen > 0)
			memcpy(r->data + len, p + end + 5, klen);
		if ((flags & 1) && parse_dead(r, p + need, end - need, 0, why) != 0) {
			jrec_free(r);
			return (-1);
		}
		r->owner = n >= end + 4 ? get32(p + end) : 0;
		if (*slot != NULL) {
			/* Carried into a newer file: the newer record is the truth. */
			r->hnext = (*slot)->hnext;
			jrec_free(*slot);
			s->n--;
		}
		else
			r->hnext = NULL;
		*slot = r;
		s->n++;
		if (id >= s->next_id)
			s->next_id = id + 1;
		return (0);
	case JR_END:
		if (n != 9)
			return (-1);
		if (s == NULL)
			return (0);
		jset_saw(s, id);
		if ((r = *slot) != NULL) {
			*slot = r->hnext;
			jrec_free(r);
			s->n--;
		}
		return (0);
	case JR_DEAD:
		if (parse_dead(NULL, p + 9, n - 9, 1, why) != 0)
			return (-1);
		if (s == NULL)
			return (0);
		jset_saw(s, id);
		if ((r = *slot) == NULL)
			return (0);
		return (parse_dead(r, p + 9, n - 9, 1, why));
	case JR_RETRY:
		if (n != 9)
			return (-1);
		if (s == NULL)
			return (0);
		jset_saw(s, id);
		if ((r = *slot) != NULL) {
			r->dead = 0;
			r->attempts = 0;
			free(r->reason);
			r->reason = NULL;
			r->rlen = 0;
		}
		return (0);
	default:
		*why = "unknown record type";
		return (-1);
	}
}

/*
 * After damage, the scan for the next place where a whole record starts. Every offset
 * is a candidate; most fail at once (a size that cannot be, an unknown type, a body
 * that does not decode, all without reading the body); the rest need the crc of their
 * body, which may claim up to JREC_MAX bytes. Hashing each candidate's body from
 * scratch would make a file of junk with huge sizes in it quadratic, so the crc of a
 * span comes from checkpoints instead: CRC-32C is linear (crc_shift), so the crc of
 * m[a, b) is C(b) ^ crc_shift(C(a), b - a), with C(x) the crc of m[base, x). C is
 * computed once going forward at every JSYNC_STEP bytes, and anywhere else from the
 * checkpoint before it and fewer than JSYNC_STEP bytes. The checkpoints serve the
 * whole file (and the replay's own frames, once those have wasted too much: see
 * jset_frame_crc), so they hash it at most once, plus JOURNAL_RESYNC_COST bytes and a
 * few dozen multiplications per crc checked: linear in the file, whatever it holds.
 * Candidates come in offset order, so
 * checkpoints before the current one are dropped; a body is at most JREC_MAX bytes, so
 * the ring holds at most JREC_MAX / JSYNC_STEP + 3 of them (4 MiB), and never more than
 * the file has steps.
 */
#define JSYNC_STEP	(JOURNAL_RESYNC_COST / 2)

struct jsync {
	const unsigned char	*m;
	uint64_t		 len;
	uint64_t		 base;		/* 0: C(x) is the crc of m[0, x) */
	uint32_t		*ck;		/* ck[k % cap]: C(base + k * JSYNC_STEP) */
	uint64_t		 cap;
	uint64_t		 lo, hi;	/* checkpoints lo..hi-1 are there */
	struct journal_replay	*jr;
};

/* C(x), with checkpoints from k on kept; 0, or -1 if the ring cannot hold them. */
static int
jsync_prefix(struct jsync *y, uint64_t x, int keep_from_here, uint32_t *c)
{
	uint64_t	k = (x - y->base) / JSYNC_STEP, at, first;

	if (keep_from_here && k > y->lo)
		y->lo = k;
	if (k < y->lo)
		return (-1);
	while (y->hi <= k) {
		/* Making hi needs hi - 1; nothing below lo is needed. */
		first = y->lo < y->hi - 1 ? y->lo : y->hi - 1;
		if (y->hi - first >= y->cap)
			return (-1);	/* never: see above */
		at = y->base + (y->hi - 1) * JSYNC_STEP;
		y->ck[y->hi % y->cap] = journal_crc32c(y->ck[(y->hi - 1) % y->cap],
		    y->m + at, JSYNC_STEP);
		y->jr->hashed += JSYNC_STEP;
		y->hi++;
	}
	at = y->base + k * JSYNC_STEP;
	*c = journal_crc32c(y->ck[k % y->cap], y->m + at, (size_t)(x - at));
	y->jr->hashed += x - at;
	return (0);
}

/*
 * The crc of m[a, b), for every frame the replay checks, in the records and in the
 * resync's scan alike: a never goes back.
 */
static uint32_t
jsync_crc(struct jsync *y, uint64_t a, uint64_t b)
{
	uint64_t	room;
	uint32_t	ca, cb;

	y->jr->checks++;
	if (!y->jr->naive && b - a > JOURNAL_RESYNC_COST) {
		if (y->ck == NULL) {
			room = y->len - y->base;
			if (room > JREC_MAX + JREC_HDR)
				room = JREC_MAX + JREC_HDR;
			y->cap = room / JSYNC_STEP + 3;
			if ((y->ck = calloc(y->cap, sizeof *y->ck)) == NULL)
				y->cap = 0;
			y->lo = 0;
			y->hi = 1;	/* ck[0] = 0: the crc of nothing */
		}
		if (y->ck != NULL && jsync_prefix(y, a, 1, &ca) == 0 &&
		    jsync_prefix(y, b, 0, &cb) == 0)
			return (cb ^ crc_shift(ca, b - a));
	}
	/* Small (or out of memory, or the tests' naive way): from scratch. */
	y->jr->hashed += b - a;
	return (journal_crc32c(0, y->m + a, (size_t)(b - a)));
}

/* The first offset from off on where a whole record starts (struct jsync), or len. */
static uint64_t
jsync_next(struct jsync *y, uint64_t off)
{
	const unsigned char	*p;
	const char		*why;
	uint32_t		 size;

	for (; off < y->len && y->len - off >= JREC_HDR + 9; off++) {
		p = y->m + off;
		size = get32(p);
		/* jset_apply() alone knows the types: an unknown one does not decode. */
		if (size < 9 || size > JREC_MAX || size > y->len - off - JREC_HDR ||
		    jset_apply(NULL, p + JREC_HDR, size, &why) != 0)
			continue;
		if (jsync_crc(y, off + JREC_HDR, off + JREC_HDR + size) == get32(p + 4))
			return (off);
	}
	return (y->len);
}

/*
 * The crc of the body of the frame at off, as the replay reads it. A record is hashed
 * whole, the cheapest way, but a frame that does not check out wastes what it claimed:
 * once that has come to the file's size, bigger frames go through the checkpoints (a
 * huge size claimed before each of many small records would otherwise be quadratic).
 * The replay hashes the file at most four times: its records, the waste up to the
 * file and one frame, the checkpoints; plus JOURNAL_RESYNC_COST bytes a crc checked.
 */
static uint32_t
jset_frame_crc(struct jsync *y, uint64_t off, uint32_t size, uint64_t *wasted)
{
	const unsigned char	*p = y->m + off;
	uint32_t		 crc;

	if (*wasted > y->len && size > JOURNAL_RESYNC_COST)
		return (jsync_crc(y, off + JREC_HDR, off + JREC_HDR + size));
	y->jr->checks++;
	y->jr->hashed += size;
	crc = journal_crc32c(0, p + JREC_HDR, size);
	if (crc != get32(p + 4))
		*wasted += size;
	return (crc);
}

/* Bytes from off on are damage, what was wrong there is why (unless in one already). */
static void
jset_damage(struct journal_replay *jr, int *open, uint64_t *start, uint64_t off,
    const char *why)
{
	if (*open)
		return;
	if (jr->regions == 0) {
		jr->first_damage = off;
		jr->why = why;
	}
	*open = 1;
	*start = off;
}

/* A record applied at off ends the damaged region before it, if any. */
static void
jset_damage_end(struct journal_replay *jr, int *open, uint64_t start, uint64_t off)
{
	if (!*open)
		return;
	jr->regions++;
	jr->damaged_bytes += off - start;
	*open = 0;
}

/*
 * Replay a file's bytes into s, around damage. A record whose frame is bad (cut short,
 * a size that cannot be, a crc that does not match) starts a damaged region, which ends
 * where a whole record is found again (jsync_next); one whose frame checks out but whose
 * body does not decode is skipped whole, since its crc vouches for its size. The header
 * is checked the same way: a bad one is damage, and the records after it are looked for.
 * 0, or -1 if out of memory.
 */
static int
jset_replay(struct jset *s, const unsigned char *m, uint64_t len,
    struct journal_replay *jr)
{
	struct jsync	 y = { .m = m, .len = len, .jr = jr };
	const unsigned char *p;
	const char	*why;
	uint64_t	 off, start = 0, wasted = 0;
	uint32_t	 size = 0;
	int		 open = 0, rc = 0, naive = jr->naive;

	memset(jr, 0, sizeof *jr);
	jr->naive = naive;
	if (len == 0)
		return (0);	/* made, then a crash before its header */
	off = JHDR_LEN;
	if (len < JHDR_LEN || memcmp(m, JHDR, JHDR_LEN) != 0) {
		jset_damage(jr, &open, &start, 0, "not a jobpool journal (bad header)");
		off = jsync_next(&y, 1);
	}
	while (off < len) {
		p = m + off;
		why = NULL;
		if (len - off < JREC_HDR)
			why = "a record cut short";
		else if ((size = get32(p)) == 0 || size > JREC_MAX)
			why = "a record whose size cannot be";
		else if (size > len - off - JREC_HDR)
			why = "a record cut short";
		else if (jset_frame_crc(&y, off, size, &wasted) != get32(p + 4))
			why = "a record whose checksum does not match";
		if (why == NULL) {
			if (jset_apply(s, p + JREC_HDR, size, &why) == 0) {
				jset_damage_end(jr, &open, start, off);
				jr->records++;
				jr->record_bytes += JREC_HDR + size;
				off += JREC_HDR + size;
				continue;
			}
			if (strcmp(why, "out of memory") == 0) {
				rc = -1;
				break;
			}
			jset_damage(jr, &open, &start, off, why);
			off += JREC_HDR + size;
			continue;
		}
		jset_damage(jr, &open, &start, off, why);
		off = jsync_next(&y, off + 1);
	}
	jset_damage_end(jr, &open, start, len);
	free(y.ck);
	return (rc);
}

/*
 * Replay one file into s: 0, with jr saying what it found; -1 when it could not be read
 * or memory ran out (*why says which).
 */
static int
jset_read_file(struct jset *s, int dirfd, const char *name, struct journal_replay *jr,
    const char **why)
{
	const unsigned char	*m;
	struct stat		 sb;
	int			 fd, rc;

	memset(jr, 0, sizeof *jr);
	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		*why = strerror(errno);
		if (fd != -1)
			close(fd);
		return (-1);
	}
	if (sb.st_size == 0) {
		close(fd);
		return (0);	/* made, then a crash before its header */
	}
	if ((m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
	    MAP_FAILED) {
		*why = strerror(errno);
		close(fd);
		return (-1);
	}
	close(fd);
	if ((rc = jset_replay(s, m, (uint64_t)sb.st_size, jr)) != 0)
		*why = "out of memory";
	munmap((void *)m, (size_t)sb.st_size);
	return (rc);
}

int
journal_replay(const void *buf, size_t len, struct journal_replay *jr)
{
	struct jset	 s = { 0 }, toks = { 0 };
	struct jrec	*r;
	uint64_t	 i;
	int		 rc;

	s.idem = &toks;
	rc = jset_replay(&s, buf, len, jr);
	for (i = 0; s.b != NULL && i <= s.mask; i++) {
		for (r = s.b[i]; r != NULL; r = r->hnext) {
			jr->jobs++;
			jr->dead += r->dead;
			jr->payload_bytes += r->len + r->rlen;
		}
	}
	jr->next_id = s.next_id;
	jr->tokens = toks.n;
	jset_free(&s);
	jset_free(&toks);
	return (rc);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

static int
cmp_jrec_id(const void *a, const void *b)
{
	const struct jrec	*x = *(const struct jrec *const *)a;
	const struct jrec	*y = *(const struct jrec *const *)b;

	return (x->id < y->id ? -1 : x->id > y->id);
}

/* The journal.N files of the directory, sorted; -1 with errno. */
static int
journal_list(int dirfd, uint64_t **out, size_t *nout)
{
	DIR		*d;
	struct dirent	*de;
	uint64_t	*v = NULL, *nv, n;
	size_t		 nv_len = 0, cap = 0;
	char		*end;
	int		 fd;

	if ((fd = dup(dirfd)) == -1)
		return (-1);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return (-1);
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal.", 8) != 0 || de->d_name[8] < '0' ||
		    de->d_name[8] > '9')
			continue;
		errno = 0;
		n = strtoull(de->d_name + 8, &end, 10);
		if (*end != '\0' || errno != 0)
			continue;
		if (nv_len == cap) {
			cap = cap ? cap * 2 : 8;
			if ((nv = reallocarray(v, cap, sizeof *v)) == NULL) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return (-1);
			}
			v = nv;
		}
		v[nv_len++] = n;
	}
	closedir(d);
	if (nv_len > 1)
		qsort(v, nv_len, sizeof *v, cmp_u64);
	*out = v;
	*nout = nv_len;
	return (0);
}

/* ----- recovery ----- */

/* Put a recovered job in its queue: 1 done, 0 no such queue, -1 out of memory. */
static int
journal_restore(const struct jrec *r, uint64_t now_wall)
{
	struct queue	*q;
	struct job	*j;
	uint64_t	 now = now_ms();
	int		 owner;

	if ((q = queue_find(r->qname)) == NULL || q->removed)
		return (0);
	/* It keeps what was stored: its key (an http job's default too), or none. */
	if ((j = r->klen > 0 ? job_new_key(q, r->data, r->len, r->data + r->len,
	    r->klen) : job_new(q, r->data, r->len)) == NULL)
		return (-1);
	j->id = r->id;
	j->prio = queue_prio_clamp(&q->cf, r->prio);
	j->timeout_ms = r->timeout_ms;
	j->attempts = r->attempts;
	/* The table is full only after 65,536 users: then root's, for administrators. */
	if ((owner = priv_owner_index((uid_t)r->owner)) >= 0)
		j->owner = (uint16_t)owner;
	if (r->dead) {
		if (job_extra(j) == NULL) {
			job_free(j);
			return (-1);
		}
		j->x->last_status = r->last_status;
		dispatch_accept(q, j, NULL, JOB_DEAD, &(struct job_change){
		    .recovered = 1, .text = r->reason, .len = r->rlen });
		if (j->x != NULL && r->died <= now_wall && now_wall - r->died < now)
			j->x->died_ms = now - (now_wall - r->died);
		return (1);
	}
	/* Due later (ms; beyond 2^40 ms, 34 years, is as good as never): in us. */
	if (r->run_at > now_wall)
		j->run_at = now_us() + (r->run_at - now_wall > (UINT64_C(1) << 40) ?
		    (UINT64_C(1) << 40) : r->run_at - now_wall) * 1000;
	dispatch_accept(q, j, NULL, JOB_QUEUED, &(struct job_change){ .recovered = 1 });
	return (1);
}

/*
 * Put every recovered job back, in id order (the order they were accepted); the ones
 * whose queue does not exist stay in J.orphans. Takes the records out of s.
 */
/*
 * Take every record out of s, in id order (the order jobs were accepted): a malloc'd
 * array of *n (NULL when s is empty), or -1 if out of memory (s is left as it was).
 */
static int
jset_take_sorted(struct jset *s, struct jrec ***allp, uint64_t *n)
{
	struct jrec	**all, *r, *next;
	uint64_t	  i;

	*allp = NULL;
	*n = 0;
	if (s->n == 0)
		return (0);
	if ((all = calloc(s->n, sizeof *all)) == NULL)
		return (-1);
	for (i = 0; i <= s->mask; i++) {
		for (r = s->b[i]; r != NULL; r = next) {
			next = r->hnext;
			all[(*n)++] = r;
		}
		s->b[i] = NULL;
	}
	s->n = 0;
	qsort(all, *n, sizeof *all, cmp_jrec_id);
	*allp = all;
	return (0);
}

static int
journal_restore_all(struct jset *s, uint64_t *nqueued, uint64_t *ndead)
{
	struct jrec	**all, *r;
	uint64_t	  i, n, now_wall = wall_ms();
	int		  rc;

	*nqueued = *ndead = 0;
	if (jset_take_sorted(s, &all, &n) != 0)
		return (-1);
	for (i = 0; i < n; i++) {
		r = all[i];
		if ((rc = journal_restore(r, now_wall)) < 0) {
			for (; i < n; i++)
				jrec_free(all[i]);
			free(all);
			return (-1);
		}
		if (rc == 0) {
			r->hnext = J.orphans;
			J.orphans = r;
			J.norphans++;
			continue;
		}
		if (r->dead)
			(*ndead)++;
		else
			(*nqueued)++;
		jrec_free(r);
	}
	free(all);
	return (0);
}

/*
 * Give idem.c the tokens read back, in id order (a token given again, to a newer job,
 * wins), less the expired ones and those of queues the config has not. A token whose
 * job had not ended but is not waiting now (its end's record was lost in a crash)
 * starts its window now. Takes the records out of t.
 */
static int
journal_restore_tokens(struct jset *t, uint32_t window_ms, uint64_t *ntok)
{
	struct jrec	**all, *r;
	struct queue	 *q;
	struct job	 *j;
	uint64_t	  i, n, now_wall = wall_ms(), now = now_ms(), exp;
	int		  owner, rc = 0;

	*ntok = 0;
	if (jset_take_sorted(t, &all, &n) != 0)
		return (-1);
	for (i = 0; i < n; i++) {
		r = all[i];
		if (rc != 0 || (q = queue_find(r->qname)) == NULL || q->removed ||
		    (owner = priv_owner_index((uid_t)r->owner)) < 0 ||
		    (r->run_at != 0 && r->run_at <= now_wall)) {
			jrec_free(r);
			continue;
		}
		if (r->run_at != 0)
			exp = now + (r->run_at - now_wall > (UINT64_C(1) << 40) ?
			    (UINT64_C(1) << 40) : r->run_at - now_wall);
		else if ((j = job_find(r->id)) != NULL && !JOB_FINAL(j->state))
			exp = 0;
		else
			exp = now + window_ms;
		if (idem_restore(q->idx, (uint16_t)owner, r->data, r->len, r->id, exp) != 0)
			rc = -1;
		else
			(*ntok)++;
		jrec_free(r);
	}
	free(all);
	return (rc);
}

/* Say which queues the orphans wait for (one line a queue). */
static void
journal_log_orphans(void)
{
	struct jrec	*r, *k;
	uint32_t	 n;
	int		 seen;

	for (r = J.orphans; r != NULL; r = r->hnext) {
		seen = 0;
		for (k = J.orphans; k != r; k = k->hnext) {
			if (strcmp(k->qname, r->qname) == 0) {
				seen = 1;
				break;
			}
		}
		if (seen)
			continue;
		for (n = 0, k = r; k != NULL; k = k->hnext)
			n += strcmp(k->qname, r->qname) == 0;
		log_warnx("journal: %u job%s of queue '%s', which the configuration does "
		    "not have, %s kept in the journal; add the queue back and reload to "
		    "run %s", n, n == 1 ? "" : "s", r->qname, n == 1 ? "is" : "are",
		    n == 1 ? "it" : "them");
	}
}

void
journal_adopt(void)
{
	struct jrec	**p, *r;
	uint64_t	  now_wall = wall_ms(), n = 0;

	if (!journal_on)
		return;
	for (p = &J.orphans; (r = *p) != NULL; ) {
		if (journal_restore(r, now_wall) <= 0) {
			p = &r->hnext;
			continue;
		}
		*p = r->hnext;
		J.norphans--;
		n++;
		jrec_free(r);
	}
	if (n > 0)
		log_notice("journal: %llu job%s kept for queues that exist now %s queued",
		    (unsigned long long)n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
}

/* mkdir -p, private; as root, for the user the daemon will run as. */
int
journal_prepare(const struct config *cf, char **cause)
{
	char		*copy, *p;
	struct stat	 sb;
	uid_t		 uid;
	gid_t		 gid;

	*cause = NULL;
	if (cf->journal_dir == NULL)
		return (0);
	if ((copy = strdup(cf->journal_dir)) == NULL)
		return (-1);
	for (p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(copy, 0700) == -1 && errno != EEXIST) {
			if (asprintf(cause, "journal_dir: mkdir %s: %s", copy,
			    strerror(errno)) == -1)
				*cause = NULL;
			free(copy);
			return (-1);
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	if (stat(cf->journal_dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		if (asprintf(cause, "journal_dir: %s is not a directory", cf->journal_dir) == -1)
			*cause = NULL;
		return (-1);
	}
	/*
	 * Started as root to run as user: the directory and its files are theirs (files
	 * an earlier run as root left would otherwise be unreadable to the daemon).
	 */
	if (geteuid() == 0 && cf->user != NULL && priv_uid(cf->user, &uid, &gid) == 0) {
		DIR		*d;
		struct dirent	*de;

		if (sb.st_uid != uid && chown(cf->journal_dir, uid, (gid_t)-1) == -1) {
			if (asprintf(cause, "journal_dir: chown %s to %s: %s",
			    cf->journal_dir, cf->user, strerror(errno)) == -1)
				*cause = NULL;
			return (-1);
		}
		if ((d = opendir(cf->journal_dir)) != NULL) {
			while ((de = readdir(d)) != NULL) {
				if ((strncmp(de->d_name, "journal.", 8) == 0 ||
				    strcmp(de->d_name, "lock") == 0) &&
				    fchownat(dirfd(d), de->d_name, uid, (gid_t)-1,
				    AT_SYMLINK_NOFOLLOW) == -1)
					log_warn("journal_dir: chown %s/%s to %s",
					    cf->journal_dir, de->d_name, cf->user);
			}
			closedir(d);
		}
	}
	return (0);
}

void
journal_reconfigure(const struct config *cf)
{
	if (!journal_on)
		return;
	J.compact_size = cf->journal_compact_size;
	J.policy_m = cf->journal_fsync;
	pthread_mutex_lock(&J.mu);
	J.policy = cf->journal_fsync;
	J.interval_ms = cf->journal_fsync_interval_ms;
	pthread_cond_signal(&J.cv);
	pthread_mutex_unlock(&J.mu);
}

static const char *
policy_name(int p)
{
	return (p == CONFIG_FSYNC_ALWAYS ? "always" : p == CONFIG_FSYNC_NEVER ? "never" :
	    "interval");
}

static int
journal_fail(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
journal_fail(char **cause, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
	return (-1);
}

/*
 * A file had damage: say so, loudly and once, keep it aside (never read again: what it
 * held is in the fresh file) and count it for STATS. The daemon starts with every
 * record found around the damage. 0, or -1 if it cannot be kept aside.
 */
static int
journal_damaged(const char *name, const struct journal_replay *jr)
{
	char	dname[80];

	snprintf(dname, sizeof dname, "%s.damaged", name);
	log_errx("journal: %s/%s is damaged: %s at offset %llu; %llu damaged region%s "
	    "(%llu byte%s) skipped, %llu record%s recovered around %s; the file is kept as "
	    "%s", J.dir, name, jr->why, (unsigned long long)jr->first_damage,
	    (unsigned long long)jr->regions, jr->regions == 1 ? "" : "s",
	    (unsigned long long)jr->damaged_bytes, jr->damaged_bytes == 1 ? "" : "s",
	    (unsigned long long)jr->records, jr->records == 1 ? "" : "s",
	    jr->regions == 1 ? "it" : "them", dname);
	if (renameat(J.dirfd, name, J.dirfd, dname) == -1)
		return (-1);
	J.damaged += jr->regions;
	J.damaged_bytes += jr->damaged_bytes;
	J.damaged_files++;
	snprintf(J.damaged_file, sizeof J.damaged_file, "%s", dname);
	return (0);
}

int
journal_open(const struct config *cf, char **cause)
{
	struct jset	 s = { 0 }, toks = { 0 };
	struct journal_replay jr;
	struct evbuffer	*snap = NULL;
	uint64_t	*files = NULL, total = 0, nq, nd, ntok, live, t0 = now_ms();
	size_t		 nfiles = 0, i;
	char		 name[64];
	const char	*why, *call;
	int		 fd = -1, r, err;

	*cause = NULL;
	if (cf->journal_dir == NULL)
		return (0);
	J.dir = strdup(cf->journal_dir);
	if (J.dir == NULL)
		return (journal_fail(cause, "journal: out of memory"));
	if ((J.dirfd = open(J.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return (journal_fail(cause, "journal_dir: open %s: %s", J.dir,
		    strerror(errno)));
	if ((J.lockfd = openat(J.dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return (journal_fail(cause, "journal_dir: open %s/lock: %s", J.dir,
		    strerror(errno)));
	if (flock(J.lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			return (journal_fail(cause, "journal_dir: %s is in use by another "
			    "jobpoold (its lock file is held); two daemons cannot share "
			    "one journal", J.dir));
		return (journal_fail(cause, "journal_dir: flock %s/lock: %s", J.dir,
		    strerror(errno)));
	}
	if (journal_list(J.dirfd, &files, &nfiles) != 0)
		return (journal_fail(cause, "journal_dir: read %s: %s", J.dir,
		    strerror(errno)));
	s.idem = &toks;

	/* Replay every file in order. */
	for (i = 0; i < nfiles; i++) {
		journal_path(name, sizeof name, files[i]);
		r = jset_read_file(&s, J.dirfd, name, &jr, &why);
		total += jr.records;
		if (r != 0) {
			err = journal_fail(cause, "journal: read %s/%s: %s", J.dir, name, why);
			goto fail;
		}
		if (jr.regions > 0 && journal_damaged(name, &jr) != 0) {
			err = journal_fail(cause, "journal: rename %s/%s to %s.damaged: %s",
			    J.dir, name, name, strerror(errno));
			goto fail;
		}
	}
	if (s.next_id > job_peek_next_id())
		job_set_next_id(s.next_id);
	if (journal_restore_all(&s, &nq, &nd) != 0) {
		err = journal_fail(cause, "journal: out of memory restoring the jobs");
		goto fail;
	}
	jset_free(&s);
	if (journal_restore_tokens(&toks, cf->idempotency_window_ms, &ntok) != 0) {
		err = journal_fail(cause, "journal: out of memory restoring the "
		    "idempotency tokens");
		goto fail;
	}
	jset_free(&toks);
	J.recovered = nq + nd;

	/* A fresh file with just the live jobs; then the old ones go. */
	atomic_store(&J.fileno, nfiles > 0 ? files[nfiles - 1] + 1 : 1);
	journal_path(name, sizeof name, atomic_load(&J.fileno));
	if ((snap = evbuffer_new()) == NULL || journal_snapshot(snap, &live) != 0) {
		err = journal_fail(cause, "journal: out of memory");
		goto fail;
	}
	J.file_bytes = JHDR_LEN + evbuffer_get_length(snap);
	if ((fd = journal_new_file(atomic_load(&J.fileno), snap, &call)) == -1) {
		err = journal_fail(cause, "journal: %s %s/%s: %s", call, J.dir, name,
		    strerror(errno));
		goto fail;
	}
	J.live_bytes = live;
	evbuffer_free(snap);
	snap = NULL;
	for (i = 0; i < nfiles; i++) {
		journal_path(name, sizeof name, files[i]);
		if (unlinkat(J.dirfd, name, 0) == -1 && errno != ENOENT)
			log_warn("journal: unlink %s/%s", J.dir, name);
	}
	free(files);
	files = NULL;
	J.fd = fd;
	fd = -1;
	journal_trim();

	J.policy = J.policy_m = cf->journal_fsync;
	J.interval_ms = cf->journal_fsync_interval_ms;
	J.compact_size = cf->journal_compact_size;
	if ((J.buf = evbuffer_new()) == NULL || (J.shared = evbuffer_new()) == NULL ||
	    (J.after = evbuffer_new()) == NULL ||
	    (J.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (J.flush_ev = event_new(master_base, -1, 0, journal_flush_cb, NULL)) == NULL ||
	    (J.note_ev = event_new(master_base, J.efd, EV_READ | EV_PERSIST,
	    journal_note_cb, NULL)) == NULL || event_add(J.note_ev, NULL) != 0) {
		err = journal_fail(cause, "journal: cannot set up the writer: %s",
		    strerror(errno));
		goto fail;
	}
	if ((errno = pthread_create(&J.thr, NULL, journal_writer, NULL)) != 0) {
		err = journal_fail(cause, "journal: cannot start the writer thread: %s",
		    strerror(errno));
		goto fail;
	}
	J.thr_started = 1;
	journal_on = 1;
	log_info("journal: %s, fsync %s; %llu record%s read from %zu file%s in %llu ms: "
	    "%llu job%s queued again, %llu dead job%s kept, %llu idempotency token%s",
	    J.dir, policy_name(J.policy_m), (unsigned long long)total,
	    total == 1 ? "" : "s", nfiles, nfiles == 1 ? "" : "s",
	    (unsigned long long)(now_ms() - t0), (unsigned long long)nq,
	    nq == 1 ? "" : "s", (unsigned long long)nd, nd == 1 ? "" : "s",
	    (unsigned long long)ntok, ntok == 1 ? "" : "s");
	journal_log_orphans();
	return (0);
fail:
	if (fd != -1)
		close(fd);
	if (snap != NULL)
		evbuffer_free(snap);
	free(files);
	jset_free(&s);
	jset_free(&toks);
	return (err);
}

void
journal_close(void)
{
	struct jrec	*r;

	if (J.thr_started) {
		if (J.flush_armed || evbuffer_get_length(J.buf) > 0)
			journal_flush_cb(-1, 0, NULL);
		pthread_mutex_lock(&J.mu);
		J.stop = 1;
		pthread_cond_signal(&J.cv);
		pthread_mutex_unlock(&J.mu);
		pthread_join(J.thr, NULL);
		J.thr_started = 0;
		if (atomic_load(&J.fatal))
			log_errx("journal: %s", J.fatal_msg);
		else if (evbuffer_get_length(J.shared) > 0 || J.err[0] != '\0')
			log_errx("journal: stopped with records not written: %s", J.err);
	}
	journal_on = 0;
	if (J.note_ev != NULL)
		event_free(J.note_ev);
	if (J.flush_ev != NULL)
		event_free(J.flush_ev);
	J.note_ev = J.flush_ev = NULL;
	if (J.buf != NULL)
		evbuffer_free(J.buf);
	if (J.shared != NULL)
		evbuffer_free(J.shared);
	if (J.snap != NULL)
		evbuffer_free(J.snap);
	if (J.after != NULL)
		evbuffer_free(J.after);
	J.buf = J.shared = J.snap = J.after = NULL;
	while ((r = J.orphans) != NULL) {
		J.orphans = r->hnext;
		jrec_free(r);
	}
	J.norphans = 0;
	if (J.fd != -1)
		close(J.fd);
	if (J.efd != -1)
		close(J.efd);
	if (J.lockfd != -1)
		close(J.lockfd);	/* and with it the lock */
	if (J.dirfd != -1)
		close(J.dirfd);
	J.fd = J.efd = J.lockfd = J.dirfd = -1;
	free(J.dir);
	J.dir = NULL;
	free(J.refusal);
	J.refusal = NULL;
	J.handed = J.file_bytes = J.live_bytes = J.compactions = J.recovered = 0;
	J.damaged = J.damaged_bytes = J.damaged_files = 0;
	J.damaged_file[0] = '\0';
	J.compacting = J.flush_armed = J.stop = J.rotated = 0;
	J.compact_after = 0;
	J.err[0] = '\0';
	J.rot_err[0] = '\0';
	J.err_changed = 0;
	atomic_store(&J.durable, 0);
	atomic_store(&J.fatal, 0);
	atomic_store(&J.fsyncs, 0);
	atomic_store(&J.written, 0);
	pthread_mutex_lock(&J.hist_mu);
	memset(&J.fsync_hist, 0, sizeof J.fsync_hist);
	pthread_mutex_unlock(&J.hist_mu);
}

int
journal_fsync_hist(struct hist *h)
{
	if (!journal_on)
		return (-1);
	pthread_mutex_lock(&J.hist_mu);
	*h = J.fsync_hist;
	pthread_mutex_unlock(&J.hist_mu);
	return (0);
}

int
journal_info(struct journal_info *ji)
{
	if (!journal_on)
		return (-1);
	ji->dir = J.dir;
	ji->fsync = policy_name(J.policy_m);
	ji->refusal = J.refusal;
	ji->file = atomic_load(&J.fileno);
	ji->bytes = J.file_bytes;
	ji->live_bytes = J.live_bytes;
	ji->records = journal_seq;
	ji->batches = J.handed;
	ji->durable = atomic_load(&J.durable);
	ji->fsyncs = atomic_load(&J.fsyncs);
	ji->written = atomic_load(&J.written);
	ji->compactions = J.compactions;
	ji->recovered = J.recovered;
	ji->unknown_queue = J.norphans;
	ji->damaged = J.damaged;
	ji->damaged_bytes = J.damaged_bytes;
	ji->damaged_files = J.damaged_files;
	ji->damaged_file = J.damaged_file[0] != '\0' ? J.damaged_file : NULL;
	return (0);
}

