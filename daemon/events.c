/*
 * events.c: the event bus. Every job transition and pool change is recorded once in
 * a ring of fixed-size records; subscribers (EVENTS connections) read the ring by
 * sequence number, each with its own cursor, and hooks are fed from it.
 *
 * Publishing is the master's cost on every job, so it is a store of 64 bytes into a
 * preallocated slot: no allocation, no formatting, no system call. The time is read
 * once per pass of the loop (the first publish of a pass reads the clock and arms
 * deliver_ev, which forgets it): events of one pass share the time the pass began
 * publishing. Text (an error, a reason) is copied, cut at EVENTS_TEXT_MAX bytes, into
 * a smaller ring of text slots; an event whose slot was taken again by a later text
 * says so (error_lost=1) rather than showing another event's text.
 *
 * Delivery: deliver_ev runs once per pass that published, after the pass's other
 * callbacks, and formats each subscriber's events from its cursor into its connection's
 * output, up to its backlog (EVENTS_BACKLOG bytes not yet taken by its socket). A
 * subscriber whose socket is full is skipped at the cost of a comparison; its cursor
 * waits in the ring. When the ring has overtaken a cursor (the ring holds the last
 * events_ring events), the subscriber gets a gap event naming the first and last
 * sequence numbers it lost, and goes on from the oldest one the ring holds: a slow
 * subscriber costs nothing but its cursor, and never hears less than the truth.
 *
 * Which transition is which event, once (events_job_changed, a lifecycle listener):
 *   queued or delayed, from new (accepted, or recovered) or dead (RETRY)  job.queued
 *     (the next stage of a chain: prev=, the stage it follows, in aux)
 *     (with SUBMIT's idempotency token, idem=, in its text slot)
 *   JOB_EV_STARTED (the head of a worker's batch starts)                  job.started
 *   done                                                                  job.succeeded
 *   retry_wait or dead after an attempt that failed: first the attempt's
 *     outcome, job.failed or job.timeout (worker, ms, error); then        job.retrying
 *     (delay_ms) or                                                       job.dead
 *   dead otherwise (its queue's handler cannot start; not a recovered one) job.dead
 *   cancelled                                                             job.cancelled
 * A job queued again after its backoff or after its worker died, and a delayed job
 * falling due, are not events: they add nothing a subscriber did not hear.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "events.h"
#include "log.h"
#include "priv.h"
#include "proto.h"

#define EVENTS_TEXT_MAX		116	/* bytes of text an event keeps */
#define EVENTS_TEXT_SHARE	8	/* one text slot per this many events */
#define EVENTS_TEXT_MIN		64
#define EVENTS_BACKLOG		(256 * 1024)	/* a subscriber's unsent bytes, at most */
#define EVENTS_LINE_MAX		(512 + 3 * EVENTS_TEXT_MAX)
#define EVENTS_CHUNK		(16 * 1024)

/* A text slot: the seq of the event it belongs to. */
struct events_textslot {
	uint64_t	 seq;
	uint32_t	 len;
	char		 s[EVENTS_TEXT_MAX];
};
_Static_assert(sizeof(struct events_rec) == 64, "an event is 64 bytes");
_Static_assert(sizeof(struct events_textslot) == 128, "a text slot is 128 bytes");

/* A follower of the ring: an EVENTS connection, or the dashboard's event stream. */
struct events_sub {
	const struct events_sink *sink;
	void			*arg;		/* the sink's */
	uint64_t		 cursor;	/* the next seq to look at */
	uint64_t		 until;		/* until=now: the last seq, then END */
	int			 ends;		/* until=now was asked */
	uint64_t		 dropped;	/* events it lost (gaps) */
	uint32_t		 types;		/* the types it wants, a bit each */
	char			 queue[PROTO_MAX_NAME + 1];	/* "" any */
	uid_t			 uid;
	int			 admin;		/* sees every job; else its own only */
	uint64_t		 id;		/* STATS: the connection's id, pid, where from */
	pid_t			 pid;
	const char		*from;
	TAILQ_ENTRY(events_sub)	 entry;
};

static struct events_rec	*ring;
static uint32_t			 ring_n;
static uint32_t			 ring_slot;	/* where the next event goes */
static struct events_textslot	*texts;
static uint32_t			 texts_n;
static uint32_t			 text_slot;
static uint64_t			 last_seq;	/* the last published, 0: none yet */
static uint64_t			 epoch;
static uint64_t			 dropped_total;	/* gaps reported to subscribers */
static uint64_t			 hooks_next = 1;	/* the next event hooks look at */
static uint64_t			 pass_time_us;	/* this pass's time, 0: not read yet */
static struct event		*deliver_ev;
static TAILQ_HEAD(, events_sub)	 subs = TAILQ_HEAD_INITIALIZER(subs);
static uint32_t			 nsubs;

static const char *const events_names[EVENTS_NTYPES] = {
	"job.queued", "job.started", "job.succeeded", "job.failed", "job.retrying",
	"job.timeout", "job.cancelled", "job.dead", "worker.started", "worker.exited",
	"worker.recycled", "queue.full", "queue.resumed", "queue.backoff",
	"queue.paused", "queue.unpaused", "daemon.reloaded", "daemon.stopping"
};

static void	events_deliver_cb(evutil_socket_t, short, void *);
static void	events_feed(struct events_sub *);

const char *
events_type_name(int type)
{
	if (type < 0 || type >= EVENTS_NTYPES)
		return ("unknown");
	return (events_names[type]);
}

int
events_type_find(const char *name)
{
	int	i;

	for (i = 0; i < EVENTS_NTYPES; i++) {
		if (strcmp(events_names[i], name) == 0)
			return (i);
	}
	return (-1);
}

uint32_t
events_type_mask(const char *glob)
{
	uint32_t	mask = 0;
	int		i;

	for (i = 0; i < EVENTS_NTYPES; i++) {
		if (fnmatch(glob, events_names[i], 0) == 0)
			mask |= 1u << i;
	}
	return (mask);
}

/* The wall clock in microseconds. */
static uint64_t
events_clock(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

int
events_init(uint32_t n)
{
	if (n < 16)
		n = 16;
	events_free();
	/*
	 * Touched now, all of it: a page first written by a publish would cost the job
	 * that published it a page fault (one in 64 events; W1 felt it), and the
	 * daemon's memory is what it will be from its start.
	 */
	/* A record is a cache line (events_store). */
	if (posix_memalign((void **)&ring, 64, (size_t)n * sizeof *ring) != 0) {
		ring = NULL;
		return (-1);
	}
	memset(ring, 0, (size_t)n * sizeof *ring);
	texts_n = n / EVENTS_TEXT_SHARE;
	if (texts_n < EVENTS_TEXT_MIN)
		texts_n = EVENTS_TEXT_MIN;
	if ((texts = reallocarray(NULL, texts_n, sizeof *texts)) == NULL) {
		free(ring);
		ring = NULL;
		return (-1);
	}
	memset(texts, 0, (size_t)texts_n * sizeof *texts);
	ring_n = n;
	ring_slot = text_slot = 0;
	last_seq = 0;
	hooks_next = 1;
	epoch = events_clock();
	if (master_base != NULL &&
	    (deliver_ev = event_new(master_base, -1, 0, events_deliver_cb, NULL)) == NULL)
		return (-1);
	return (0);
}

void
events_free(void)
{
	struct events_sub	*s;

	while ((s = TAILQ_FIRST(&subs)) != NULL) {
		TAILQ_REMOVE(&subs, s, entry);
		s->sink->drop(s->arg);
		free(s);
	}
	nsubs = 0;
	if (deliver_ev != NULL)
		event_free(deliver_ev);
	deliver_ev = NULL;
	free(ring);
	free(texts);
	ring = NULL;
	texts = NULL;
	ring_n = texts_n = 0;
}

uint64_t
events_epoch(void)
{
	return (epoch);
}

uint64_t
events_last_seq(void)
{
	return (last_seq);
}

/* The oldest seq the ring holds (last_seq + 1 when it holds none). */
uint64_t
events_oldest_seq(void)
{
	if (last_seq < ring_n)
		return (1);
	return (last_seq - ring_n + 1);
}

const struct events_rec *
events_get(uint64_t seq)
{
	if (seq == 0 || seq > last_seq || seq < events_oldest_seq())
		return (NULL);
	return (&ring[(seq - 1) % ring_n]);
}

const char *
events_text(const struct events_rec *rec, uint32_t *len)
{
	const struct events_textslot	*t;

	*len = 0;
	if (rec->text == 0)
		return (NULL);
	t = &texts[rec->text - 1];
	if (t->seq != rec->seq)
		return (NULL);
	*len = t->len;
	return (t->s);
}

/* The next slot of the ring, and in rec its seq and time (the rest is the caller's). */
static inline struct events_rec *
events_next(struct events_rec *rec)
{
	struct events_rec	*r;

	if (pass_time_us == 0) {
		pass_time_us = events_clock();
		if (deliver_ev != NULL)
			event_active(deliver_ev, EV_TIMEOUT, 0);
	}
	r = &ring[ring_slot];
	if (++ring_slot == ring_n)
		ring_slot = 0;
	rec->seq = ++last_seq;
	rec->time_us = pass_time_us;
	return (r);
}

/* Write rec into its slot: a whole cache line at once (the ring is line-aligned). */
static inline void
events_store(struct events_rec *slot, const struct events_rec *rec)
{
	*slot = *rec;
}

/* r's text: a copy, cut at EVENTS_TEXT_MAX, in the next text slot. */
static void
events_set_text(struct events_rec *r, const char *text, uint32_t len)
{
	struct events_textslot	*t = &texts[text_slot];

	r->text = text_slot + 1;
	if (++text_slot == texts_n)
		text_slot = 0;
	if (len > EVENTS_TEXT_MAX)
		len = EVENTS_TEXT_MAX;
	t->seq = r->seq;
	t->len = len;
	memcpy(t->s, text, len);
}

void
events_publish(enum events_type type, const struct events_info *info)
{
	struct events_rec	 rec, *slot;

	if (ring == NULL)
		return;
	slot = events_next(&rec);
	rec.job = info->job;
	rec.aux = info->aux;
	rec.dur_ms = info->dur_ms;
	rec.pid = info->pid;
	rec.text = 0;
	rec.queue = info->queue < 0 ? EVENTS_NO_QUEUE : (uint16_t)info->queue;
	rec.owner = 0;
	rec.type = (uint8_t)type;
	rec.attempt = 0;
	rec.recovered = 0;
	rec.keylen = 0;
	memset(rec.key, 0, sizeof rec.key);
	if (info->text != NULL)
		events_set_text(&rec, info->text, info->textlen);
	events_store(slot, &rec);
}

void
events_publish_queue(enum events_type type, int queue, pid_t pid, uint64_t aux,
    const char *text)
{
	events_publish(type, &(struct events_info){ .queue = queue, .pid = pid,
	    .aux = aux, .text = text, .textlen = text != NULL ? strlen(text) : 0 });
}

/* A keyed job's key into its event: whole, or its first EVENTS_KEY_MAX bytes. */
static void
events_set_key(struct events_rec *rec, const struct job *j)
{
	const char	*key;
	size_t		 len;

	key = job_key(j, &len);
	rec->keylen = (uint8_t)len;
	memcpy(rec->key, key, len < EVENTS_KEY_MAX ? len : EVENTS_KEY_MAX);
}

/*
 * A job's event, written in place: every job passes here three times (bench W1), so
 * no events_info in between. aux: retrying, its delay; queued, a chain's stage before.
 */
static void
events_job(enum events_type type, const struct job_change *ch, uint64_t aux,
    const char *text, uint32_t textlen)
{
	struct job		*j = ch->j;
	struct events_rec	 rec, *slot;

	if (ring == NULL)
		return;
	slot = events_next(&rec);
	rec.job = j->id;
	rec.aux = aux;
	rec.dur_ms = ch->ran_ms;
	rec.pid = ch->pid;
	rec.text = 0;
	rec.queue = j->qidx;
	rec.owner = j->owner;
	rec.type = (uint8_t)type;
	rec.attempt = ch->attempt;
	rec.recovered = ch->recovered;
	rec.keylen = 0;
	memset(rec.key, 0, sizeof rec.key);
	if (j->haskey)
		events_set_key(&rec, j);
	if (text != NULL)
		events_set_text(&rec, text, textlen);
	events_store(slot, &rec);
}

/* lifecycle listener: each transition's event (the table at the top). */
void
events_job_changed(const struct job_change *ch)
{
	switch (ch->what) {
	case JOB_QUEUED:
	case JOB_DELAYED:
		if (ch->from != JOB_NEW && ch->from != JOB_DEAD)
			break;
		/*
		 * A chain's next stage names the stage before it (chain.c); a job
		 * accepted by a SUBMIT with idem= has its token as its text.
		 */
		events_job(EVENTS_JOB_QUEUED, ch, chain_active != 0 ?
		    chain_prev(ch->j) : 0, ch->from == JOB_NEW ? ch->text : NULL, ch->len);
		break;
	case JOB_EV_STARTED:
		events_job(EVENTS_JOB_STARTED, ch, 0, NULL, 0);
		break;
	case JOB_DONE:
		events_job(EVENTS_JOB_SUCCEEDED, ch, 0, NULL, 0);
		break;
	case JOB_RETRY_WAIT:
	case JOB_DEAD:
		if (ch->from == JOB_NEW)
			break;		/* recovered dead: told before the restart */
		if (ch->from == JOB_RUNNING && ch->outcome != 0)
			events_job(ch->outcome == JOB_TIMEOUT ?
			    EVENTS_JOB_TIMEOUT : EVENTS_JOB_FAILED, ch, 0, ch->err,
			    ch->errlen);
		if (ch->what == JOB_RETRY_WAIT)
			events_job(EVENTS_JOB_RETRYING, ch, ch->delay_ms, NULL, 0);
		else
			events_job(EVENTS_JOB_DEAD, ch, 0, ch->text, ch->len);
		break;
	case JOB_CANCELLED:
		events_job(EVENTS_JOB_CANCELLED, ch, 0, ch->text, ch->len);
		break;
	}
}

/* ----- formatting ----- */

/* Append to a line being made in buf[0..room): the new length (room - 1 at most). */
static size_t
events_add(char *buf, size_t len, size_t room, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t
events_add(char *buf, size_t len, size_t room, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (len >= room - 1)
		return (len);
	va_start(ap, fmt);
	n = vsnprintf(buf + len, room - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return (len);
	if ((size_t)n >= room - len)
		return (room - 1);
	return (len + (size_t)n);
}

/* A text as the end of a line: outside printable ASCII, and %, percent-encoded. */
static size_t
events_add_text(char *buf, size_t len, size_t room, const char *s, uint32_t n)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		ch;
	uint32_t		i;

	for (i = 0; i < n && len + 4 < room; i++) {
		ch = (unsigned char)s[i];
		if (ch < ' ' || ch == '%' || ch >= 0x7f) {
			buf[len++] = '%';
			buf[len++] = hex[ch >> 4];
			buf[len++] = hex[ch & 15];
		} else
			buf[len++] = (char)ch;
	}
	buf[len] = '\0';
	return (len);
}

/* The queue's name, percent-free (queue names are [A-Za-z0-9_.-]). */
static const char *
events_queue_name(const struct events_rec *rec)
{
	if (rec->queue == EVENTS_NO_QUEUE || rec->queue >= nqueues)
		return (NULL);
	return (queues[rec->queue]->name);
}

/*
 * The name of the type's text: an error (error=), a job.queued's idempotency token
 * (idem=), or a reason (reason=).
 */
static const char *
events_text_key(int type)
{
	if (type == EVENTS_JOB_FAILED || type == EVENTS_JOB_TIMEOUT ||
	    type == EVENTS_JOB_DEAD || type == EVENTS_JOB_CANCELLED)
		return ("error");
	return (type == EVENTS_JOB_QUEUED ? "idem" : "reason");
}

/* The one field that depends on r's type, and its value; NULL if it has none. */
static const char *
events_extra(const struct events_rec *r, uint64_t *v)
{
	int	st = (int)r->aux;

	switch (r->type) {
	case EVENTS_JOB_SUCCEEDED:
	case EVENTS_JOB_FAILED:
	case EVENTS_JOB_TIMEOUT:
	case EVENTS_JOB_CANCELLED:
		*v = r->dur_ms;
		return (r->pid != 0 ? "ms" : NULL);
	case EVENTS_JOB_RETRYING:
	case EVENTS_QUEUE_BACKOFF:
		*v = r->aux;
		return ("delay_ms");
	case EVENTS_QUEUE_PAUSED:
	case EVENTS_QUEUE_UNPAUSED:
		*v = r->aux;
		return ("uid");		/* the administrator's (queue_pause) */
	case EVENTS_WORKER_EXITED:
		*v = (uint64_t)(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		return (WIFSIGNALED(st) ? "signal" : "exit");
	case EVENTS_JOB_QUEUED:
		if (r->aux != 0) {
			*v = r->aux;
			return ("prev");	/* the next stage of a chain */
		}
		*v = 1;
		return (r->recovered ? "recovered" : NULL);
	}
	return (NULL);
}

/* Appending to a line without printf (a subscriber's lines are the master's work). */
static char *
events_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return (p + n);
}
#define events_lit(p, s)	events_put((p), "" s, sizeof (s) - 1)

static char *
events_u64(char *p, uint64_t v)
{
	return (p + proto_fmt_u64(p, v));
}

/* key=value with a number: " key=" then v. */
static char *
events_kv(char *p, const char *key, size_t klen, uint64_t v)
{
	*p++ = ' ';
	p = events_put(p, key, klen);
	*p++ = '=';
	return (events_u64(p, v));
}
#define events_num(p, k, v)	events_kv((p), "" k, sizeof (k) - 1, (v))

/*
 * One EVENT line (with its newline) into buf, which has room for EVENTS_LINE_MAX: its
 * length.
 */
static size_t
events_line(char *buf, size_t room, const struct events_rec *r)
{
	const char	*qn = events_queue_name(r), *text, *name, *key;
	char		*p = buf, frac[8];
	uint32_t	 tlen;
	uint64_t	 v;
	size_t		 n;

	(void)room;
	p = events_lit(p, "EVENT seq=");
	p = events_u64(p, r->seq);
	p = events_num(p, "time", r->time_us / 1000000);
	/* Six digits of microseconds, zeros kept. */
	n = proto_fmt_u64(frac, 1000000 + r->time_us % 1000000);
	*p++ = '.';
	p = events_put(p, frac + 1, n - 1);
	p = events_lit(p, " type=");
	name = events_type_name(r->type);
	p = events_put(p, name, strlen(name));
	if (qn != NULL) {
		p = events_lit(p, " queue=");
		p = events_put(p, qn, strlen(qn));
	}
	if (r->job != 0) {
		p = events_num(p, "job", r->job);
		p = events_num(p, "attempt", r->attempt);
	}
	if (r->pid != 0)
		p = events_num(p, "pid", (uint64_t)r->pid);
	if ((key = events_extra(r, &v)) != NULL)
		p = events_kv(p, key, strlen(key), v);
	if (r->keylen != 0) {
		/* A key is printable ASCII without a space: a word as it is. */
		p = events_lit(p, " key=");
		p = events_put(p, r->key, r->keylen < EVENTS_KEY_MAX ? r->keylen :
		    EVENTS_KEY_MAX);
		if (r->keylen > EVENTS_KEY_MAX)
			p = events_num(p, "key_len", r->keylen);
	}
	if (r->text != 0) {
		name = events_text_key(r->type);
		*p++ = ' ';
		p = events_put(p, name, strlen(name));
		if ((text = events_text(r, &tlen)) == NULL)
			p = events_lit(p, "_lost=1");
		else {
			*p++ = '=';
			p = buf + events_add_text(buf, (size_t)(p - buf),
			    (size_t)(p - buf) + 3 * EVENTS_TEXT_MAX + 4, text, tlen);
		}
	}
	*p++ = '\n';
	*p = '\0';
	return ((size_t)(p - buf));
}

void
events_format(struct evbuffer *out, const struct events_rec *rec)
{
	char	line[EVENTS_LINE_MAX];

	evbuffer_add(out, line, events_line(line, sizeof line, rec));
}

/* A JSON string's body: text escaped. */
static void
events_json_text(struct evbuffer *out, const char *s, uint32_t n)
{
	unsigned char	ch;
	uint32_t	i;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(out, "\\%c", ch);
		else if (ch < ' ' || ch >= 0x7f)
			evbuffer_add_printf(out, "\\u%04x", ch);
		else
			evbuffer_add(out, s + i, 1);
	}
}

void
events_format_json(struct evbuffer *out, const struct events_rec *r)
{
	const char	*qn = events_queue_name(r), *text, *key;
	uint32_t	 tlen;
	uint64_t	 v;

	evbuffer_add_printf(out, "{\"epoch\":%llu,\"seq\":%llu,\"time\":%llu.%06llu,"
	    "\"type\":\"%s\"", (unsigned long long)epoch, (unsigned long long)r->seq,
	    (unsigned long long)(r->time_us / 1000000),
	    (unsigned long long)(r->time_us % 1000000), events_type_name(r->type));
	if (qn != NULL)
		evbuffer_add_printf(out, ",\"queue\":\"%s\"", qn);
	if (r->job != 0)
		evbuffer_add_printf(out, ",\"job\":%llu,\"attempt\":%u",
		    (unsigned long long)r->job, r->attempt);
	if (r->pid != 0)
		evbuffer_add_printf(out, ",\"pid\":%ld", (long)r->pid);
	if ((key = events_extra(r, &v)) != NULL)
		evbuffer_add_printf(out, ",\"%s\":%llu", key, (unsigned long long)v);
	if (r->keylen != 0) {
		evbuffer_add(out, ",\"key\":\"", 8);
		events_json_text(out, r->key, r->keylen < EVENTS_KEY_MAX ? r->keylen :
		    EVENTS_KEY_MAX);
		evbuffer_add(out, "\"", 1);
		if (r->keylen > EVENTS_KEY_MAX)
			evbuffer_add_printf(out, ",\"key_len\":%u", r->keylen);
	}
	if (r->text != 0) {
		if ((text = events_text(r, &tlen)) == NULL)
			evbuffer_add_printf(out, ",\"%s_lost\":true",
			    events_text_key(r->type));
		else {
			evbuffer_add_printf(out, ",\"%s\":\"",
			    events_text_key(r->type));
			events_json_text(out, text, tlen);
			evbuffer_add(out, "\"", 1);
		}
	}
	evbuffer_add(out, "}\n", 2);
}

/* ----- subscribers ----- */

/* Does s want rec? */
static int
events_wanted(const struct events_sub *s, const struct events_rec *r)
{
	const char	*qn;

	if (!(s->types & (1u << r->type)))
		return (0);
	if (s->queue[0] != '\0' &&
	    ((qn = events_queue_name(r)) == NULL || strcmp(qn, s->queue) != 0))
		return (0);
	if (!s->admin && r->job != 0 && priv_owner_uid(r->owner) != s->uid)
		return (0);
	return (1);
}

/*
 * The sink of an EVENTS connection (server.c): its output, what its socket has not
 * taken, and its close once END is written.
 */
static struct evbuffer *
events_conn_out(void *arg)
{
	return (server_out(arg));
}

static size_t
events_conn_unsent(void *arg)
{
	return (server_unsent(arg));
}

static void
events_conn_end(void *arg)
{
	server_stream_end(arg);		/* frees its sub */
}

static void
events_conn_drop(void *arg)
{
	((struct conn *)arg)->sub = NULL;
}

static const struct events_sink events_conn_sink = {
	events_conn_out, events_conn_unsent, NULL, events_conn_end, events_conn_drop, 0
};

int
events_subscribe(struct conn *c, const struct proto_request *req, int admin,
    const char **cause)
{
	struct events_want	 want;
	char			 glob[PROTO_MAX_NAME + 1], line[256];
	size_t			 len;

	*cause = NULL;
	if (req->queue[0] != '\0' && queue_find(req->queue) == NULL) {
		*cause = "noqueue";
		return (-1);
	}
	memset(&want, 0, sizeof want);
	want.types = (1u << EVENTS_NTYPES) - 1;
	if (req->glob != NULL) {
		memcpy(glob, req->glob, req->globlen);
		glob[req->globlen] = '\0';
		want.types = events_type_mask(glob);
	}
	want.queue = req->queue;
	want.admin = admin;
	want.uid = c->uid;
	want.id = c->id;
	want.pid = c->pid;
	want.until = (req->flags & PROTO_F_UNTIL) != 0;
	if (req->flags & PROTO_F_SINCE_ALL)
		want.since = EVENTS_SINCE_ALL;
	else if (req->flags & PROTO_F_SINCE) {
		want.since = EVENTS_SINCE_SEQ;
		want.seq = req->id;
		if (req->flags & PROTO_F_EPOCH)
			want.epoch = req->epoch;
	}

	/* The OK first, through the connection's replies. */
	len = (size_t)snprintf(line, sizeof line, "OK events epoch=%llu seq=%llu "
	    "oldest=%llu\n", (unsigned long long)epoch, (unsigned long long)last_seq,
	    (unsigned long long)events_oldest_seq());
	evbuffer_add(server_out(c), line, len);
	if ((c->sub = events_sub_new(&events_conn_sink, c, &want)) == NULL) {
		*cause = "busy";
		return (-1);
	}
	events_feed(c->sub);	/* until=now may end it: c->sub is then NULL */
	return (0);
}

/* A restart's gap: what came after seq in epoch e is gone. */
static void
events_restart_gap(struct events_sub *s, uint64_t e, uint64_t first)
{
	struct evbuffer	*out = s->sink->out(s->arg);

	if (s->sink->sse)
		evbuffer_add_printf(out, "data: {\"type\":\"gap\",\"reason\":\"restart\","
		    "\"epoch\":%llu,\"first\":%llu}\n\n", (unsigned long long)e,
		    (unsigned long long)first);
	else
		evbuffer_add_printf(out, "EVENT type=gap reason=restart epoch=%llu "
		    "first=%llu\n", (unsigned long long)e, (unsigned long long)first);
}

struct events_sub *
events_sub_new(const struct events_sink *sink, void *arg,
    const struct events_want *want)
{
	struct events_sub	*s;
	uint64_t		 first;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return (NULL);
	s->sink = sink;
	s->arg = arg;
	s->uid = want->uid;
	s->admin = want->admin;
	s->types = want->types;
	s->id = want->id;
	s->pid = want->pid;
	s->from = want->from;
	if (want->queue != NULL)
		snprintf(s->queue, sizeof s->queue, "%s", want->queue);
	if (want->until) {
		s->ends = 1;
		s->until = last_seq;
	}
	switch (want->since) {
	case EVENTS_SINCE_ALL:
		first = events_oldest_seq();
		break;
	case EVENTS_SINCE_SEQ:
		first = want->seq + 1;
		if (want->epoch != 0 && want->epoch != epoch) {
			/* The daemon restarted: what came after since is gone. */
			events_restart_gap(s, want->epoch, first);
			first = 1;
		}
		break;
	default:
		first = last_seq + 1;
		break;
	}
	if (first > last_seq + 1)
		first = last_seq + 1;	/* a seq not published yet: from now */
	s->cursor = first;
	TAILQ_INSERT_TAIL(&subs, s, entry);
	nsubs++;
	return (s);
}

void
events_sub_free(struct events_sub *s)
{
	if (s == NULL)
		return;
	TAILQ_REMOVE(&subs, s, entry);
	nsubs--;
	free(s);
}

void
events_unsubscribe(struct conn *c)
{
	struct events_sub	*s = c->sub;

	c->sub = NULL;
	events_sub_free(s);
}

/* s lost the events from its cursor to last: counted, and the cursor moves past. */
static void
events_lost(struct events_sub *s, uint64_t last)
{
	s->dropped += last - s->cursor + 1;
	dropped_total += last - s->cursor + 1;
	s->cursor = last + 1;
}

/* Add a gap to s's stream, up to last. */
static size_t
events_gap(struct events_sub *s, char *buf, size_t len, uint64_t last)
{
	len = events_add(buf, len, EVENTS_CHUNK, "EVENT type=gap reason=overrun "
	    "first=%llu last=%llu\n", (unsigned long long)s->cursor,
	    (unsigned long long)last);
	events_lost(s, last);
	return (len);
}

/*
 * Lines formatted once for every subscriber that takes every event (no filter, an
 * administrator) at the same cursor: followers that keep up all stand at the same
 * one, and the master formats each event once, not once per follower. Made afresh at
 * each pass that delivers (the ring under it does not move within one).
 */
static struct {
	uint64_t	 first;		/* the seq of its first line; 0: none */
	uint64_t	 next;		/* the seq after its last line */
	size_t		 len;
	char		 buf[4 * EVENTS_CHUNK];
} shared;

/* Does s take every event? */
static int
events_takes_all(const struct events_sub *s)
{
	return (s->admin && s->queue[0] == '\0' && !s->ends &&
	    s->types == (1u << EVENTS_NTYPES) - 1);
}

/* Format the shared lines from seq on. */
static void
events_share(uint64_t seq)
{
	shared.first = seq;
	shared.len = 0;
	for (; seq <= last_seq && shared.len + EVENTS_LINE_MAX < sizeof shared.buf;
	    seq++)
		shared.len += events_line(shared.buf + shared.len, EVENTS_LINE_MAX,
		    &ring[(seq - 1) % ring_n]);
	shared.next = seq;
}

/*
 * Server-Sent Events (the dashboard): each event as its JSON with its id, epoch:seq,
 * which a browser sends back as Last-Event-ID when it reconnects. Not the path of
 * EVENTS' followers: formatted per stream with printf.
 */
static void
events_feed_sse(struct events_sub *s, struct evbuffer *out, size_t unsent,
    size_t budget)
{
	const struct events_rec	*r;
	size_t			 start = evbuffer_get_length(out);
	uint64_t		 oldest, first;

	while (s->cursor <= last_seq &&
	    unsent + evbuffer_get_length(out) - start < budget) {
		oldest = events_oldest_seq();
		if (s->cursor < oldest) {
			first = s->cursor;
			events_lost(s, oldest - 1);
			evbuffer_add_printf(out, "id: %llu:%llu\ndata: {\"type\":\"gap\","
			    "\"reason\":\"overrun\",\"first\":%llu,\"last\":%llu}\n\n",
			    (unsigned long long)epoch, (unsigned long long)(oldest - 1),
			    (unsigned long long)first, (unsigned long long)(oldest - 1));
		}
		r = &ring[(s->cursor - 1) % ring_n];
		if (events_wanted(s, r)) {
			evbuffer_add_printf(out, "id: %llu:%llu\ndata: ",
			    (unsigned long long)epoch, (unsigned long long)r->seq);
			events_format_json(out, r);	/* ends with its newline */
			evbuffer_add(out, "\n", 1);
		}
		s->cursor++;
	}
}

/* Send s what it has not had, up to its backlog. */
static void
events_feed(struct events_sub *s)
{
	struct evbuffer		*out;
	const struct events_rec	*r;
	char			 buf[EVENTS_CHUNK];
	size_t			 len = 0, unsent, budget;
	uint64_t		 oldest;

	budget = master_config->max_output < EVENTS_BACKLOG ?
	    master_config->max_output : EVENTS_BACKLOG;
	unsent = s->sink->unsent(s->arg);
	out = s->sink->out(s->arg);
	/* A subscriber whose backlog is full costs this comparison and no more. */
	if (unsent + EVENTS_LINE_MAX >= budget)
		return;
	if (s->sink->sse) {
		events_feed_sse(s, out, unsent, budget);
		goto flush;
	}
	if (s->cursor <= last_seq && events_takes_all(s) &&
	    s->cursor >= events_oldest_seq()) {
		if (shared.first == 0 || shared.first < events_oldest_seq())
			events_share(s->cursor);
		if (shared.first == s->cursor && unsent + shared.len < budget) {
			evbuffer_add(out, shared.buf, shared.len);
			unsent += shared.len;
			s->cursor = shared.next;
		}
	}
	while (s->cursor <= last_seq && unsent + len < budget) {
		if (s->ends && s->cursor > s->until)
			break;
		oldest = events_oldest_seq();
		if (s->cursor < oldest)
			len = events_gap(s, buf, len, oldest - 1);
		r = &ring[(s->cursor - 1) % ring_n];
		if (events_wanted(s, r))
			len += events_line(buf + len, sizeof buf - len, r);
		s->cursor++;
		if (sizeof buf - len < EVENTS_LINE_MAX + 128) {
			evbuffer_add(out, buf, len);
			unsent += len;
			len = 0;
		}
	}
	if (s->ends && s->cursor > s->until) {
		len = events_add(buf, len, sizeof buf, "END seq=%llu\n",
		    (unsigned long long)s->until);
		evbuffer_add(out, buf, len);
		s->sink->end(s->arg);	/* frees s */
		return;
	}
	if (len > 0)
		evbuffer_add(out, buf, len);
flush:
	if (s->sink->flush != NULL)
		s->sink->flush(s->arg);
}

void
events_sub_writable(struct events_sub *s)
{
	if (s != NULL)
		events_feed(s);
}

void
events_writable(struct conn *c)
{
	events_sub_writable(c->sub);
}

/* ----- hooks ----- */

static void		 events_hooks_sum(unsigned long, unsigned long long);
static struct log_limit	 hooks_limit = { 5, 10000, events_hooks_sum, 0, 0, 0, 0 };

static void
events_hooks_sum(unsigned long held, unsigned long long span_ms)
{
	log_warnx("hooks: %lu more events not handed to a hook in %llu ms (their queues "
	    "were full)", held, span_ms);
}

/* Does hook queue h run on r? Events of the hooks' own queues never do. */
static int
events_hook_wants(const struct queue *h, const struct events_rec *r)
{
	const char	*qn;

	if (!(h->cf.hook_types & (1u << r->type)))
		return (0);
	if ((qn = events_queue_name(r)) == NULL)
		return (strcmp(h->cf.hook_queue, "*") == 0);
	return (fnmatch(h->cf.hook_queue, qn, 0) == 0);
}

/* A job of hook queue h: the event as one JSON object on its program's stdin. */
static void
events_hook_fire(struct queue *h, const struct events_rec *r, struct evbuffer *b)
{
	struct job	*j;
	size_t		 len;

	evbuffer_drain(b, evbuffer_get_length(b));
	events_format_json(b, r);
	len = evbuffer_get_length(b);
	if (master_stopping || !queue_has_room(h, (uint32_t)len) ||
	    (j = job_new(h, evbuffer_pullup(b, -1), (uint32_t)len)) == NULL) {
		if (log_limit_pass(&hooks_limit))
			log_warnx("queue %s: event %llu (%s) not handed to its hook: %s",
			    h->name, (unsigned long long)r->seq,
			    events_type_name(r->type), master_stopping ?
			    "the daemon is stopping" : "its queue is full (max_queued)");
		return;
	}
	j->timeout_ms = h->cf.timeout_ms;
	j->prio = queue_prio_clamp(&h->cf, 0);
	(void)dispatch_submit(h, j, NULL);
}

/* Hand the events published since the last pass to the hooks that want them. */
static void
events_hooks_run(void)
{
	const struct events_rec	*r;
	struct evbuffer		*b = NULL;
	struct queue		*q;
	uint64_t		 seq, end = last_seq;
	uint32_t		 types = 0;
	int			 i;

	for (i = 0; i < nqueues; i++) {
		if (queues[i]->cf.hook != 0 && !queues[i]->removed)
			types |= queues[i]->cf.hook_types;
	}
	seq = hooks_next < events_oldest_seq() ? events_oldest_seq() : hooks_next;
	hooks_next = end + 1;
	if (types == 0)
		return;
	for (; seq <= end; seq++) {
		r = &ring[(seq - 1) % ring_n];
		if (!(types & (1u << r->type)))
			continue;
		if (r->queue != EVENTS_NO_QUEUE && r->queue < nqueues &&
		    queues[r->queue]->cf.hook != 0)
			continue;
		for (i = 0; i < nqueues; i++) {
			q = queues[i];
			if (q->cf.hook == 0 || q->removed || !events_hook_wants(q, r))
				continue;
			if (b == NULL && (b = evbuffer_new()) == NULL)
				return;
			events_hook_fire(q, r, b);
		}
	}
	if (b != NULL)
		evbuffer_free(b);
}

/* Once per pass that published: feed the subscribers; the next publish reads the clock. */
static void
events_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct events_sub	*s, *next;

	(void)fd;
	(void)what;
	(void)arg;
	pass_time_us = 0;
	shared.first = 0;
	events_hooks_run();
	for (s = TAILQ_FIRST(&subs); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		events_feed(s);
	}
}

uint64_t
events_dropped(void)
{
	struct events_sub	*s;
	uint64_t		 behind = 0, oldest = events_oldest_seq();

	/* Subscribers the ring overtook lose those events: counted before told. */
	TAILQ_FOREACH(s, &subs, entry) {
		if (s->cursor < oldest)
			behind += oldest - s->cursor;
	}
	return (dropped_total + behind);
}

uint32_t
events_subscribers(void)
{
	return (nsubs);
}

/* STATS: a line per subscriber, with where it is and what it lost. */
void
events_stats_lines(struct evbuffer *out)
{
	struct events_sub	*s;
	uint64_t		 oldest = events_oldest_seq(), behind;

	TAILQ_FOREACH(s, &subs, entry) {
		behind = s->cursor < oldest ? oldest - s->cursor : 0;
		evbuffer_add_printf(out, "subscriber %llu pid=%ld uid=%ld seq=%llu "
		    "waiting=%llu dropped=%llu%s%s\n", (unsigned long long)s->id,
		    (long)s->pid, (long)s->uid, (unsigned long long)(s->cursor - 1),
		    (unsigned long long)(last_seq + 1 - s->cursor),
		    (unsigned long long)(s->dropped + behind),
		    s->from != NULL ? " from=" : "", s->from != NULL ? s->from : "");
	}
}

void
events_stats(struct evbuffer *out)
{
	evbuffer_add_printf(out, " events_epoch=%llu events_seq=%llu events_ring=%u "
	    "events_dropped=%llu subscribers=%u", (unsigned long long)epoch,
	    (unsigned long long)last_seq, ring_n, (unsigned long long)events_dropped(),
	    nsubs);
}
