/*
 * source_redis.c: a queue whose jobs come from a Redis stream, read through a consumer
 * group (issue 17), so that many jobpoold share one stream.
 *
 * On the master's loop, with hiredis's libevent adapter, each source has two
 * connections: one for the blocking XREADGROUP alone (a blocked connection answers
 * nothing else until its read returns), one for everything else (XGROUP CREATE, XACK).
 * A read asks for no more entries than the queue has room for, so a full queue pushes
 * back on Redis, not on memory. Each entry becomes a job through the one accept path
 * (dispatch_accept); it is XACKed only once its job has ended (done, dead, or cancelled
 * by a user), which this module hears as a listener in lifecycle.c's table. Until then
 * it stays pending in the group: a host that dies leaves it there, and this host, when
 * it starts again, first reads its own pending entries (XREADGROUP with id 0) and runs
 * them again. At least once, never silently lost.
 *
 * Only jobs from Redis are in the job id -> entry id map, so it is bounded by the jobs
 * such queues hold. When Redis goes away the queue is paused (STATS: state=paused
 * reason=redis unreachable ...), the log says so once, and the source reconnects with a
 * growing delay; local SUBMITs to the queue and other queues go on meanwhile.
 *
 * The password in a URL is never logged nor shown: the source shows its URL without it.
 */

#include "autoconf.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "jobpool.h"
#include "jobpoold.h"
#include "priv.h"
#include "redis_url.h"

#define SOURCE_REDIS_BLOCK_MS		1000	/* XREADGROUP BLOCK */
#define SOURCE_REDIS_WATCH_MS		5000	/* a read unanswered past BLOCK + this: gone */
#define SOURCE_REDIS_MAX_COUNT		1000	/* entries one read may bring */
#define SOURCE_REDIS_ACK_MAX		1000	/* ids in one XACK */
#define SOURCE_REDIS_ROOM_MS		50	/* a full queue: look for room again after */
#define SOURCE_REDIS_RETRY_BASE_MS	100	/* reconnect: 100 ms doubling ... */
#define SOURCE_REDIS_RETRY_MAX_MS	5000	/* ... up to 5 s */

/* The payload of a job is this field of its entry; the others are ignored. */
#define SOURCE_REDIS_FIELD		"payload"

enum source_state {
	SOURCE_CONNECTING,	/* connections made, the group not confirmed yet */
	SOURCE_UP,		/* reading */
	SOURCE_DOWN,		/* failed: to be torn down (retry_ev) */
	SOURCE_WAITING		/* torn down: retry_ev connects again */
};

/* An entry id, "<ms>-<seq>". */
struct redis_id {
	uint64_t	 ms;
	uint64_t	 seq;
};

struct source {
	struct queue		*q;
	struct source_config	 cf;		/* as it was when made: a reload compares */
	struct redis_url	 url;
	char			 shown[320];	/* the URL without its password */
	redisAsyncContext	*rd;		/* XREADGROUP only */
	redisAsyncContext	*cmd;		/* the rest */
	enum source_state	 state;
	int			 reading;	/* an XREADGROUP is out */
	int			 resuming;	/* reading our own pending entries, after */
	struct redis_id		 resume_from;
	struct event		*retry_ev;	/* tear down, then reconnect */
	struct event		*watch_ev;	/* the read's deadline */
	struct event		*room_ev;	/* the queue was full: look again */
	struct event		*ack_ev;	/* send the acks gathered in this pass */
	struct event		*claim_ev;	/* every claim_ms / 2: XPENDING, XCLAIM */
	int			 claiming;	/* an XPENDING or XCLAIM is out */
	struct source_claim {
		struct redis_id	 id;
		long long	 deliveries;	/* before our claim */
	}			*claims;	/* what XPENDING found, for XCLAIM */
	uint32_t		 nclaims;
	uint64_t		 nclaimed;	/* entries taken from other consumers */
	int			 fails;		/* reconnects in a row that failed */
	int			 paused;	/* said so in the log; STATS shows it */
	char			 why[512];
	struct source_ack {
		struct redis_id	 id;
		char		*res;		/* result_ttl: "<status>\n<result>", or NULL */
		uint32_t	 reslen;
	}			*acks;		/* entries whose jobs ended, to XACK */
	uint32_t		 nacks;
	uint32_t		 capacks;
	uint32_t		 acks_out;	/* XACKs sent, not answered */
	uint64_t		 nread;		/* entries made jobs */
	uint64_t		 nacked;	/* XACKs Redis confirmed */
	uint64_t		 nheld;		/* jobs of ours not ended yet */
	LIST_ENTRY(source)	 entry;
};
static LIST_HEAD(, source) source_list = LIST_HEAD_INITIALIZER(source_list);

/*
 * The jobs from Redis, by job id and by entry id (two chains in one node): the ends
 * listener finds a job's entry, and a resumed read skips entries already held.
 */
struct source_held {
	uint64_t		 job;
	struct redis_id		 id;
	struct source		*src;
	struct source_held	*jnext;
	struct source_held	*enext;
};
static struct source_held	**held_byjob, **held_byid;
static uint32_t			  held_cap;	/* buckets, a power of 2 */
uint64_t			  source_redis_nheld;	/* the listener's test (lifecycle.c) */

static void	source_fail(struct source *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	source_read(struct source *);
static void	source_ack_flush(struct source *);

/* ----- entry ids and the held map ----- */

static int
source_id_parse(const char *s, size_t len, struct redis_id *id)
{
	char	 buf[48], *ep;

	if (len == 0 || len >= sizeof buf)
		return (-1);
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	id->ms = strtoull(buf, &ep, 10);
	if (*ep != '-' || errno != 0)
		return (-1);
	id->seq = strtoull(ep + 1, &ep, 10);
	return (*ep != '\0' || errno != 0 ? -1 : 0);
}

static uint32_t
held_hash_job(uint64_t job)
{
	return ((uint32_t)((job * 0x9e3779b97f4a7c15ULL) >> 32) & (held_cap - 1));
}

static uint32_t
held_hash_id(const struct source *s, const struct redis_id *id)
{
	uint64_t	h = (id->ms * 31 + id->seq) ^ (uintptr_t)s;

	return ((uint32_t)((h * 0x9e3779b97f4a7c15ULL) >> 32) & (held_cap - 1));
}

/* Grow the tables to keep chains short: 0, or -1 out of memory (unchanged). */
static int
held_grow(void)
{
	struct source_held	**bj, **bi, *h, *next;
	uint32_t		  ncap = held_cap == 0 ? 1024 : held_cap * 2, old = held_cap, i;
	struct source_held	**oj = held_byjob;

	if ((bj = calloc(ncap, sizeof *bj)) == NULL)
		return (-1);
	if ((bi = calloc(ncap, sizeof *bi)) == NULL) {
		free(bj);
		return (-1);
	}
	free(held_byid);
	held_byjob = bj;
	held_byid = bi;
	held_cap = ncap;
	for (i = 0; i < old; i++) {
		for (h = oj[i]; h != NULL; h = next) {
			next = h->jnext;
			h->jnext = bj[held_hash_job(h->job)];
			bj[held_hash_job(h->job)] = h;
			h->enext = bi[held_hash_id(h->src, &h->id)];
			bi[held_hash_id(h->src, &h->id)] = h;
		}
	}
	free(oj);
	return (0);
}

static int
held_add(struct source *s, uint64_t job, const struct redis_id *id)
{
	struct source_held	*h;
	uint32_t		 b;

	if (source_redis_nheld >= held_cap && held_grow() != 0 && held_cap == 0)
		return (-1);
	if ((h = malloc(sizeof *h)) == NULL)
		return (-1);
	h->job = job;
	h->id = *id;
	h->src = s;
	b = held_hash_job(job);
	h->jnext = held_byjob[b];
	held_byjob[b] = h;
	b = held_hash_id(s, id);
	h->enext = held_byid[b];
	held_byid[b] = h;
	source_redis_nheld++;
	s->nheld++;
	return (0);
}

static struct source_held *
held_find_id(const struct source *s, const struct redis_id *id)
{
	struct source_held	*h;

	if (held_cap == 0)
		return (NULL);
	for (h = held_byid[held_hash_id(s, id)]; h != NULL; h = h->enext)
		if (h->src == s && h->id.ms == id->ms && h->id.seq == id->seq)
			return (h);
	return (NULL);
}

/* Unlink h from both chains and free it. */
static void
held_remove(struct source_held *h)
{
	struct source_held	**pp;

	for (pp = &held_byjob[held_hash_job(h->job)]; *pp != h; pp = &(*pp)->jnext)
		;
	*pp = h->jnext;
	for (pp = &held_byid[held_hash_id(h->src, &h->id)]; *pp != h; pp = &(*pp)->enext)
		;
	*pp = h->enext;
	source_redis_nheld--;
	h->src->nheld--;
	free(h);
}

static struct source_held *
held_find_job(uint64_t job)
{
	struct source_held	*h;

	if (held_cap == 0)
		return (NULL);
	for (h = held_byjob[held_hash_job(job)]; h != NULL; h = h->jnext)
		if (h->job == job)
			return (h);
	return (NULL);
}

int
source_redis_holds(uint64_t id)
{
	return (held_find_job(id) != NULL);
}

/* ----- connections ----- */

static struct source *
source_of(const redisAsyncContext *ac)
{
	struct source	*s = ac->data;

	/* A context we let go of (source_drop) is no longer ours to hear. */
	if (s == NULL || (ac != s->rd && ac != s->cmd))
		return (NULL);
	return (s);
}

/* Forget ac as s's: hiredis frees it once the callback that told us returns. */
static void
source_forget(struct source *s, const redisAsyncContext *ac)
{
	if (ac == s->rd)
		s->rd = NULL;
	if (ac == s->cmd)
		s->cmd = NULL;
}

/* Free both connections now (never from inside a hiredis callback). */
static void
source_drop(struct source *s)
{
	redisAsyncContext	*ac;

	if ((ac = s->rd) != NULL) {
		s->rd = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	if ((ac = s->cmd) != NULL) {
		s->cmd = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	s->reading = 0;
	s->claiming = 0;
	s->acks_out = 0;
	evtimer_del(s->watch_ev);
}

/*
 * Something failed: pause (saying so once, until it works again), and let retry_ev
 * tear the connections down and reconnect later, outside hiredis's callbacks.
 */
static void
source_fail(struct source *s, const char *fmt, ...)
{
	struct timeval	 tv = { 0, 0 };
	char		 why[sizeof s->why];
	va_list		 ap;

	if (s->state == SOURCE_DOWN)
		return;
	s->state = SOURCE_DOWN;
	s->reading = 0;
	s->claiming = 0;
	evtimer_del(s->watch_ev);
	/* Through a copy: the reason may be s->why itself (source_connect). */
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	memcpy(s->why, why, sizeof s->why);
	if (!s->paused) {
		s->paused = 1;
		log_warnx("queue %s: paused: redis unreachable (%s: %s); reconnecting",
		    s->q->name, s->shown, s->why);
	}
	evtimer_add(s->retry_ev, &tv);
}

static void
source_connect_cb(const redisAsyncContext *ac, int status)
{
	struct source	*s;

	if (status == REDIS_OK || (s = source_of(ac)) == NULL)
		return;
	source_forget(s, ac);
	source_fail(s, "%s", ac->errstr[0] != '\0' ? ac->errstr : "cannot connect");
}

static void
source_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct source	*s;

	if ((s = source_of(ac)) == NULL)
		return;
	source_forget(s, ac);
	source_fail(s, "%s", ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
}

/* AUTH, SELECT: an error reply means the connection is of no use. */
static void
source_setup_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	struct source	*s;

	if (reply == NULL || (s = source_of(ac)) == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR)
		source_fail(s, "%s: %s", (const char *)arg, reply->str);
}

/* The group exists (made now, or BUSYGROUP): read, our own pending entries first. */
static void
source_group_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	struct source	*s;

	if (reply == NULL || (s = source_of(ac)) == NULL || s->state != SOURCE_CONNECTING)
		return;
	if (reply->type == REDIS_REPLY_ERROR &&
	    strncmp(reply->str, "BUSYGROUP", 9) != 0) {
		source_fail(s, "XGROUP CREATE: %s", reply->str);
		return;
	}
	s->state = SOURCE_UP;
	s->fails = 0;
	if (s->paused) {
		s->paused = 0;
		log_notice("queue %s: redis %s reachable again; resuming", s->q->name,
		    s->shown);
	} else
		log_info("queue %s: reading redis %s stream %s as %s of group %s",
		    s->q->name, s->shown, s->cf.stream, s->cf.consumer, s->cf.group);
	s->resuming = 1;
	s->resume_from = (struct redis_id){ 0, 0 };
	source_ack_flush(s);
	source_read(s);
}

/* One connection, attached to the master's loop, authenticated, on its database. */
static redisAsyncContext *
source_connect_one(struct source *s)
{
	redisAsyncContext	*ac;

	if ((ac = redisAsyncConnect(s->url.host, s->url.port)) == NULL) {
		snprintf(s->why, sizeof s->why, "out of memory");
		return (NULL);
	}
	if (ac->err) {
		snprintf(s->why, sizeof s->why, "%s", ac->errstr);
		redisAsyncFree(ac);
		return (NULL);
	}
	ac->data = s;
	if (redisLibeventAttach(ac, master_base) != REDIS_OK) {
		snprintf(s->why, sizeof s->why, "cannot attach to the event loop");
		redisAsyncFree(ac);
		return (NULL);
	}
	redisAsyncSetConnectCallback(ac, source_connect_cb);
	redisAsyncSetDisconnectCallback(ac, source_disconnect_cb);
	/* Queued now, written once connected, answered in order. */
	if (s->url.pass[0] != '\0' && s->url.user[0] != '\0')
		redisAsyncCommand(ac, source_setup_cb, "AUTH", "AUTH %s %s", s->url.user,
		    s->url.pass);
	else if (s->url.pass[0] != '\0')
		redisAsyncCommand(ac, source_setup_cb, "AUTH", "AUTH %s", s->url.pass);
	if (s->url.db != 0)
		redisAsyncCommand(ac, source_setup_cb, "SELECT", "SELECT %d", s->url.db);
	return (ac);
}

/*
 * password_file: its first line is the password, read at every connection (so a new
 * one takes effect at the next), as the daemon's user. 0, or -1 with s->why.
 */
static int
source_read_password(struct source *s)
{
	FILE	*f;
	char	*nl;

	if (s->cf.password_file[0] == '\0')
		return (0);
	memset(s->url.pass, 0, sizeof s->url.pass);
	if ((f = fopen(s->cf.password_file, "re")) == NULL) {
		snprintf(s->why, sizeof s->why, "password_file %s: %s",
		    s->cf.password_file, strerror(errno));
		return (-1);
	}
	if (fgets(s->url.pass, sizeof s->url.pass, f) == NULL)
		s->url.pass[0] = '\0';
	fclose(f);
	if ((nl = strpbrk(s->url.pass, "\r\n")) != NULL)
		*nl = '\0';
	if (s->url.pass[0] == '\0') {
		snprintf(s->why, sizeof s->why, "password_file %s: empty",
		    s->cf.password_file);
		return (-1);
	}
	return (0);
}

static void
source_connect(struct source *s)
{
	s->state = SOURCE_CONNECTING;
	if (source_read_password(s) != 0) {
		source_fail(s, "%s", s->why);
		return;
	}
	if ((s->cmd = source_connect_one(s)) == NULL ||
	    (s->rd = source_connect_one(s)) == NULL) {
		source_fail(s, "%s", s->why);
		return;
	}
	/* From the stream's start: entries added before the group are jobs too. */
	redisAsyncCommand(s->cmd, source_group_cb, NULL, "XGROUP CREATE %s %s 0 MKSTREAM",
	    s->cf.stream, s->cf.group);
}

/* retry_ev: tear down what failed, then wait (growing delays), then connect again. */
static void
source_retry_cb(evutil_socket_t fd, short events, void *arg)
{
	struct source	*s = arg;
	struct timeval	 tv;
	uint64_t	 ms;

	switch (s->state) {
	case SOURCE_DOWN:
		source_drop(s);
		s->state = SOURCE_WAITING;
		ms = jobpool_backoff_ms(SOURCE_REDIS_RETRY_BASE_MS,
		    SOURCE_REDIS_RETRY_MAX_MS, 0.2, (uint32_t)++s->fails,
		    (double)random() / RAND_MAX);
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
		evtimer_add(s->retry_ev, &tv);
		break;
	case SOURCE_WAITING:
		source_connect(s);
		break;
	default:
		break;
	}
}

/* A read unanswered long past its BLOCK: the server is gone or stuck. */
static void
source_watch_cb(evutil_socket_t fd, short events, void *arg)
{
	struct source	*s = arg;

	source_fail(s, "no reply to XREADGROUP within %d ms",
	    SOURCE_REDIS_BLOCK_MS + SOURCE_REDIS_WATCH_MS);
}

/* ----- reading ----- */

/* How many entries the queue has room for now. */
static uint32_t
source_room(const struct source *s)
{
	struct queue	*q = s->q;
	uint32_t	 depth = queue_depth(q), room;

	if (!queue_has_room(q, 0) || depth >= q->cf.max_jobs)
		return (0);
	room = q->cf.max_jobs - depth;
	return (room > SOURCE_REDIS_MAX_COUNT ? SOURCE_REDIS_MAX_COUNT : room);
}

static void
source_room_cb(evutil_socket_t fd, short events, void *arg)
{
	source_read(arg);
}

/* One entry, a job: accepted, or dead if it is not one (it is XACKed once dead). */
static void
source_entry(struct source *s, const redisReply *e, long long deliveries)
{
	struct queue		*q = s->q;
	const redisReply	*f, *payload = NULL;
	struct redis_id		 id;
	struct job		*j;
	const char		*bad = NULL;
	char			 why[CONFIG_SOURCE_NAME_MAX + 128];
	int			 owner;
	size_t			 i;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    source_id_parse(e->element[0]->str, e->element[0]->len, &id) != 0) {
		log_warnx("queue %s: redis: an entry of stream %s that is not one "
		    "(no id); skipped", q->name, s->cf.stream);
		return;
	}
	if (s->resuming)
		s->resume_from = id;
	if (held_find_id(s, &id) != NULL)
		return;		/* a resumed read: its job is still here */
	f = e->element[1];
	if (f->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i + 1 < f->elements; i += 2) {
			if (f->element[i]->type == REDIS_REPLY_STRING &&
			    strcmp(f->element[i]->str, SOURCE_REDIS_FIELD) == 0 &&
			    f->element[i + 1]->type == REDIS_REPLY_STRING) {
				payload = f->element[i + 1];
				break;
			}
		}
	}
	if (payload == NULL)
		bad = f->type == REDIS_REPLY_ARRAY ? "has no '" SOURCE_REDIS_FIELD
		    "' field" : "was deleted from the stream";
	else if (q->cf.poison_after > 0 && deliveries > (long long)q->cf.poison_after)
		bad = "was delivered more than poison_after times without its job "
		    "ending: hosts died running it";
	else if (payload->len > master_config->max_payload)
		bad = "has a payload larger than max_payload";
	/* No key: an http queue's job takes its URL's host (job_new_key). */
	if ((j = job_new_key(q, bad == NULL ? payload->str : NULL,
	    bad == NULL ? (uint32_t)payload->len : 0, NULL, 0)) == NULL) {
		log_warnx("queue %s: redis: out of memory for entry %llu-%llu; it stays "
		    "pending", q->name, (unsigned long long)id.ms,
		    (unsigned long long)id.seq);
		return;
	}
	if ((owner = priv_owner_index(geteuid())) >= 0)
		j->owner = (uint16_t)owner;
	j->prio = queue_prio_clamp(&q->cf, 0);
	j->timeout_ms = q->cf.timeout_ms;
	j->id = job_next_id();
	if (held_add(s, j->id, &id) != 0) {
		job_free(j);
		return;
	}
	s->nread++;
	if (bad != NULL) {
		snprintf(why, sizeof why, "redis entry %llu-%llu of stream %s %s",
		    (unsigned long long)id.ms, (unsigned long long)id.seq,
		    s->cf.stream, bad);
		if (job_extra(j) == NULL) {
			held_remove(held_find_job(j->id));
			job_free(j);
			return;
		}
		j->x->last_status = JOB_FAILED;
		log_warnx("queue %s: %s: made dead", q->name, why);
		dispatch_accept(q, j, NULL, JOB_DEAD, &(struct job_change){
		    .text = why, .len = (uint32_t)strlen(why) });
		return;
	}
	dispatch_accept(q, j, NULL, JOB_QUEUED, NULL);
}

static void
source_read_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply		*reply = r;
	const redisReply	*st, *entries;
	struct source		*s;
	size_t			 i;

	if (reply == NULL || (s = source_of(ac)) == NULL)
		return;
	s->reading = 0;
	evtimer_del(s->watch_ev);
	if (reply->type == REDIS_REPLY_ERROR) {
		/* NOGROUP: the stream or group was deleted; reconnecting makes them. */
		source_fail(s, "XREADGROUP: %s", reply->str);
		return;
	}
	entries = NULL;
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	    (st = reply->element[0])->type == REDIS_REPLY_ARRAY && st->elements == 2)
		entries = st->element[1];
	if (entries != NULL && entries->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < entries->elements; i++)
			source_entry(s, entries->element[i], 0);
	}
	/* Our own pending entries are all back once a read of them brings none. */
	if (s->resuming && (entries == NULL || entries->type != REDIS_REPLY_ARRAY ||
	    entries->elements == 0))
		s->resuming = 0;
	source_read(s);
}

/* Ask for as many entries as there is room for; none while full (room_ev looks again). */
static void
source_read(struct source *s)
{
	struct timeval	 tv;
	char		 from[48], count[16], block[16];
	const char	*argv[12];
	uint32_t	 room;
	int		 argc = 0;

	if (s->state != SOURCE_UP || s->reading || s->rd == NULL || master_stopping ||
	    s->q->removed)
		return;
	/*
	 * Our own pending entries are read only once the acks sent are answered: those
	 * went on the other connection, and an entry whose job ended must not run again.
	 */
	if (s->resuming && s->acks_out > 0)
		return;
	if ((room = source_room(s)) == 0) {
		tv.tv_sec = 0;
		tv.tv_usec = SOURCE_REDIS_ROOM_MS * 1000;
		if (!evtimer_pending(s->room_ev, NULL))
			evtimer_add(s->room_ev, &tv);
		return;
	}
	snprintf(count, sizeof count, "%u", room);
	snprintf(block, sizeof block, "%d", SOURCE_REDIS_BLOCK_MS);
	argv[argc++] = "XREADGROUP";
	argv[argc++] = "GROUP";
	argv[argc++] = s->cf.group;
	argv[argc++] = s->cf.consumer;
	argv[argc++] = "COUNT";
	argv[argc++] = count;
	if (!s->resuming) {
		argv[argc++] = "BLOCK";
		argv[argc++] = block;
	}
	argv[argc++] = "STREAMS";
	argv[argc++] = s->cf.stream;
	if (s->resuming) {
		/* Our pending entries after the last one seen: history, no blocking. */
		snprintf(from, sizeof from, "%llu-%llu",
		    (unsigned long long)s->resume_from.ms,
		    (unsigned long long)s->resume_from.seq);
		argv[argc++] = from;
	} else
		argv[argc++] = ">";
	if (redisAsyncCommandArgv(s->rd, source_read_cb, NULL, argc, argv, NULL) !=
	    REDIS_OK) {
		source_fail(s, "cannot send XREADGROUP");
		return;
	}
	s->reading = 1;
	tv.tv_sec = (SOURCE_REDIS_BLOCK_MS + SOURCE_REDIS_WATCH_MS) / 1000;
	tv.tv_usec = 0;
	evtimer_add(s->watch_ev, &tv);
}

/* ----- claims: entries of consumers that died ----- */

static int
source_argv_id(char *buf, size_t len, const struct redis_id *id)
{
	return (snprintf(buf, len, "%llu-%llu", (unsigned long long)id->ms,
	    (unsigned long long)id->seq));
}

/* XCLAIM's reply: the entries now ours, each a job (dead if delivered too often). */
static void
source_xclaim_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply		*reply = r;
	const redisReply	*e;
	struct source		*s;
	struct redis_id		 id;
	long long		 deliveries;
	size_t			 i;
	uint32_t		 k;

	if (reply == NULL || (s = source_of(ac)) == NULL)
		return;
	s->claiming = 0;
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warnx("queue %s: redis: XCLAIM: %s", s->q->name, reply->str);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
		return;
	log_info("queue %s: claimed %zu entr%s of stream %s idle over %u ms (their "
	    "consumer is gone)", s->q->name, reply->elements,
	    reply->elements == 1 ? "y" : "ies", s->cf.stream, s->cf.claim_ms);
	for (i = 0; i < reply->elements; i++) {
		e = reply->element[i];
		deliveries = 0;
		if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
		    e->element[0]->type == REDIS_REPLY_STRING &&
		    source_id_parse(e->element[0]->str, e->element[0]->len, &id) == 0) {
			for (k = 0; k < s->nclaims; k++) {
				if (s->claims[k].id.ms == id.ms &&
				    s->claims[k].id.seq == id.seq) {
					deliveries = s->claims[k].deliveries + 1;
					break;
				}
			}
		}
		s->nclaimed++;
		source_entry(s, e, deliveries);
	}
}

/* XPENDING's reply: [id, consumer, idle, deliveries] of entries idle too long. */
static void
source_xpending_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply		*reply = r;
	const redisReply	*e;
	struct source		*s;
	struct redis_id		 id;
	const char		*argv[5 + SOURCE_REDIS_MAX_COUNT];
	char			 idle[16], (*ids)[48];
	size_t			 i;
	int			 argc;

	if (reply == NULL || (s = source_of(ac)) == NULL)
		return;
	s->claiming = 0;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || s->cmd == NULL)
		return;
	if ((ids = malloc(SOURCE_REDIS_MAX_COUNT * sizeof *ids)) == NULL)
		return;
	free(s->claims);
	s->nclaims = 0;
	if ((s->claims = calloc(reply->elements, sizeof *s->claims)) == NULL) {
		free(ids);
		return;
	}
	snprintf(idle, sizeof idle, "%u", s->cf.claim_ms);
	argv[0] = "XCLAIM";
	argv[1] = s->cf.stream;
	argv[2] = s->cf.group;
	argv[3] = s->cf.consumer;
	argv[4] = idle;
	argc = 5;
	for (i = 0; i < reply->elements && s->nclaims < SOURCE_REDIS_MAX_COUNT; i++) {
		e = reply->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_STRING ||
		    source_id_parse(e->element[0]->str, e->element[0]->len, &id) != 0)
			continue;
		/* Ours: held here, or pending from before a restart (the resume reads them). */
		if (strcmp(e->element[1]->str, s->cf.consumer) == 0)
			continue;
		s->claims[s->nclaims].id = id;
		s->claims[s->nclaims].deliveries = e->element[3]->type ==
		    REDIS_REPLY_INTEGER ? e->element[3]->integer : 0;
		source_argv_id(ids[s->nclaims], sizeof ids[0], &id);
		argv[argc++] = ids[s->nclaims++];
	}
	/* XCLAIM checks the idle time again: an entry its consumer acked meanwhile stays. */
	if (s->nclaims > 0 && redisAsyncCommandArgv(s->cmd, source_xclaim_cb, NULL, argc,
	    argv, NULL) == REDIS_OK)
		s->claiming = 1;
	free(ids);
}

/*
 * Every claim_ms / 2: first our own entries are touched (XCLAIM ... JUSTID to
 * ourselves resets their idle time without counting a delivery), so that a live
 * host's long jobs and waiting entries are not taken; then entries idle longer than
 * claim_ms, which only a consumer that is gone leaves, are claimed, as many as there
 * is room for.
 */
static void
source_claim_cb(evutil_socket_t fd, short events, void *arg)
{
	struct source		*s = arg;
	struct source_held	*h;
	const char		*argv[6 + SOURCE_REDIS_ACK_MAX];
	char			(*ids)[48], count[16], idle[16];
	uint32_t		 i, n = 0, room;

	if (s->state != SOURCE_UP || s->cmd == NULL || master_stopping)
		return;
	if (s->nheld > 0 &&
	    (ids = malloc(SOURCE_REDIS_ACK_MAX * sizeof *ids)) != NULL) {
		argv[0] = "XCLAIM";
		argv[1] = s->cf.stream;
		argv[2] = s->cf.group;
		argv[3] = s->cf.consumer;
		argv[4] = "0";
		for (i = 0; i < held_cap; i++) {
			for (h = held_byjob[i]; h != NULL; h = h->jnext) {
				if (h->src != s)
					continue;
				source_argv_id(ids[n], sizeof ids[0], &h->id);
				argv[5 + n] = ids[n];
				if (++n == SOURCE_REDIS_ACK_MAX) {
					argv[5 + n] = "JUSTID";
					redisAsyncCommandArgv(s->cmd, NULL, NULL,
					    (int)(6 + n), argv, NULL);
					n = 0;
				}
			}
		}
		if (n > 0) {
			argv[5 + n] = "JUSTID";
			redisAsyncCommandArgv(s->cmd, NULL, NULL, (int)(6 + n), argv, NULL);
		}
		free(ids);
	}
	if (s->claiming || (room = source_room(s)) == 0)
		return;
	snprintf(idle, sizeof idle, "%u", s->cf.claim_ms);
	snprintf(count, sizeof count, "%u", room);
	argv[0] = "XPENDING";
	argv[1] = s->cf.stream;
	argv[2] = s->cf.group;
	argv[3] = "IDLE";
	argv[4] = idle;
	argv[5] = "-";
	argv[6] = "+";
	argv[7] = count;
	if (redisAsyncCommandArgv(s->cmd, source_xpending_cb, NULL, 8, argv, NULL) ==
	    REDIS_OK)
		s->claiming = 1;
}

/* ----- acks ----- */

static void
source_ack_cb(redisAsyncContext *ac, void *r, void *arg)
{
	redisReply	*reply = r;
	struct source	*s;

	if (reply == NULL || (s = source_of(ac)) == NULL)
		return;
	if (reply->type == REDIS_REPLY_INTEGER)
		s->nacked += (uint64_t)reply->integer;
	else if (reply->type == REDIS_REPLY_ERROR)
		log_warnx("queue %s: redis: XACK: %s", s->q->name, reply->str);
	if (s->acks_out > 0 && --s->acks_out == 0 && s->resuming)
		source_read(s);
}

/* The key of an entry's result: <stream>:result:<id>. */
static void
source_result_key(const struct source *s, const struct redis_id *id, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s:result:%llu-%llu", s->cf.stream, (unsigned long long)id->ms,
	    (unsigned long long)id->seq);
}

/* SET the result of a, for result_ttl, on ac (or, at exit, the blocking c). */
static void
source_result_send(const struct source *s, redisAsyncContext *ac, redisContext *c,
    const struct source_ack *a)
{
	char		 key[CONFIG_SOURCE_NAME_MAX + 64], px[16];
	const char	*argv[5] = { "SET", key, a->res, "PX", px };
	size_t		 argvlen[5];
	int		 i;

	source_result_key(s, &a->id, key, sizeof key);
	snprintf(px, sizeof px, "%u", s->cf.result_ms);
	for (i = 0; i < 5; i++)
		argvlen[i] = strlen(argv[i]);
	argvlen[2] = a->reslen;
	if (ac != NULL)
		redisAsyncCommandArgv(ac, NULL, NULL, 5, argv, argvlen);
	else
		freeReplyObject(redisCommandArgv(c, 5, argv, argvlen));
}

static void
source_acks_clear(struct source *s)
{
	uint32_t	i;

	for (i = 0; i < s->nacks; i++)
		free(s->acks[i].res);
	s->nacks = 0;
}

/*
 * XACK stream group <the acks from i>, at most SOURCE_REDIS_ACK_MAX of them, into argv
 * (3 + that many), the ids formatted into ids: how many.
 */
static uint32_t
source_xack_argv(const struct source *s, uint32_t i, const char **argv, char (*ids)[48])
{
	uint32_t	n, k;

	n = s->nacks - i > SOURCE_REDIS_ACK_MAX ? SOURCE_REDIS_ACK_MAX : s->nacks - i;
	argv[0] = "XACK";
	argv[1] = s->cf.stream;
	argv[2] = s->cf.group;
	for (k = 0; k < n; k++) {
		source_argv_id(ids[k], sizeof ids[k], &s->acks[i + k].id);
		argv[3 + k] = ids[k];
	}
	return (n);
}

/* Send the acks gathered, in XACKs of up to SOURCE_REDIS_ACK_MAX ids; kept while down. */
static void
source_ack_flush(struct source *s)
{
	const char	*argv[3 + SOURCE_REDIS_ACK_MAX];
	char		(*ids)[48];
	uint32_t	 i, n;

	if (s->nacks == 0 || s->state != SOURCE_UP || s->cmd == NULL)
		return;
	if ((ids = malloc(SOURCE_REDIS_ACK_MAX * sizeof *ids)) == NULL)
		return;
	/* The results first, on the same connection: once acked, a result is there. */
	for (i = 0; i < s->nacks; i++) {
		if (s->acks[i].res != NULL)
			source_result_send(s, s->cmd, NULL, &s->acks[i]);
	}
	for (i = 0; i < s->nacks; i += n) {
		n = source_xack_argv(s, i, argv, ids);
		if (redisAsyncCommandArgv(s->cmd, source_ack_cb, NULL, (int)(3 + n), argv,
		    NULL) == REDIS_OK)
			s->acks_out++;
	}
	free(ids);
	source_acks_clear(s);
}

static void
source_ack_cb_ev(evutil_socket_t fd, short events, void *arg)
{
	struct source	*s = arg;

	source_ack_flush(s);
	source_read(s);		/* an end may have made room */
}

/*
 * lifecycle listener (lifecycle.c's table, ends; only while jobs from Redis are held):
 * the entry of a job from Redis that ended is acked, in one XACK with the others of
 * this pass. A job the shutdown cancelled did not run: its entry stays pending, and
 * runs after a restart (or on another host).
 */
void
source_redis_job_changed(const struct job_change *ch)
{
	struct source_held	*h;
	struct source		*s;
	struct source_ack	*na, *a;
	const char		*st;
	struct timeval		 tv = { 0, 0 };

	if ((h = held_find_job(ch->j->id)) == NULL)
		return;
	s = h->src;
	if (ch->what == JOB_CANCELLED && master_stopping) {
		held_remove(h);
		return;
	}
	if (s->nacks == s->capacks) {
		if ((na = reallocarray(s->acks, s->capacks ? s->capacks * 2 : 64,
		    sizeof *na)) == NULL) {
			/* Not acked: it stays pending and runs again (at least once). */
			held_remove(h);
			return;
		}
		s->acks = na;
		s->capacks = s->capacks ? s->capacks * 2 : 64;
	}
	a = &s->acks[s->nacks++];
	a->id = h->id;
	a->res = NULL;
	a->reslen = 0;
	held_remove(h);
	/* result_ttl: "done\n<output>", "dead\n<error>" or "cancelled\n<why>". */
	if (s->cf.result_ms > 0) {
		st = job_state_name(ch->what);
		a->reslen = (uint32_t)strlen(st) + 1 + job_rlen(ch->j);
		if ((a->res = malloc(a->reslen + 1)) != NULL) {
			memcpy(a->res, st, strlen(st));
			a->res[strlen(st)] = '\n';
			if (job_rlen(ch->j) > 0)
				memcpy(a->res + strlen(st) + 1, job_result(ch->j),
				    job_rlen(ch->j));
			a->res[a->reslen] = '\0';
		} else
			a->reslen = 0;
	}
	if (!evtimer_pending(s->ack_ev, NULL))
		evtimer_add(s->ack_ev, &tv);
}

/* ----- sources: made, compared at a reload, freed ----- */

static void
source_free(struct source *s)
{
	struct source_held	*h, *next;
	uint32_t		 i;

	LIST_REMOVE(s, entry);
	/* Its jobs run on; their entries stay pending (claimed or resumed later). */
	for (i = 0; i < held_cap && s->nheld > 0; i++) {
		for (h = held_byjob[i]; h != NULL; h = next) {
			next = h->jnext;
			if (h->src == s)
				held_remove(h);
		}
	}
	source_drop(s);
	event_free(s->retry_ev);
	event_free(s->watch_ev);
	event_free(s->room_ev);
	event_free(s->ack_ev);
	event_free(s->claim_ev);
	free(s->claims);
	source_acks_clear(s);
	free(s->acks);
	explicit_bzero(&s->url, sizeof s->url);
	free(s);
}

/* The URL as logs and STATS show it: the password never. */
static void
source_show(struct source *s)
{
	const struct redis_url	*u = &s->url;

	snprintf(s->shown, sizeof s->shown, "redis://%s%s%s%s:%d/%d", u->user,
	    u->pass[0] != '\0' ? ":***" : "", u->pass[0] != '\0' ? "@" : "", u->host,
	    u->port, u->db);
}

static struct source *
source_new(struct queue *q)
{
	struct source	*s;
	struct timeval	 tv;
	char		 why[256];

	if ((s = calloc(1, sizeof *s)) == NULL)
		return (NULL);
	s->q = q;
	s->cf = q->cf.source;
	if (redis_url_parse(s->cf.redis, &s->url, why, sizeof why) != 0) {
		/* config.c checked it: not reached. */
		log_warnx("queue %s: redis: %s", q->name, why);
		free(s);
		return (NULL);
	}
	source_show(s);
	s->retry_ev = evtimer_new(master_base, source_retry_cb, s);
	s->watch_ev = evtimer_new(master_base, source_watch_cb, s);
	s->room_ev = evtimer_new(master_base, source_room_cb, s);
	s->ack_ev = evtimer_new(master_base, source_ack_cb_ev, s);
	s->claim_ev = event_new(master_base, -1, EV_PERSIST, source_claim_cb, s);
	LIST_INSERT_HEAD(&source_list, s, entry);
	if (s->retry_ev == NULL || s->watch_ev == NULL || s->room_ev == NULL ||
	    s->ack_ev == NULL || s->claim_ev == NULL) {
		source_free(s);
		return (NULL);
	}
	tv.tv_sec = s->cf.claim_ms / 2 / 1000;
	tv.tv_usec = (suseconds_t)(s->cf.claim_ms / 2 % 1000) * 1000;
	evtimer_add(s->claim_ev, &tv);
	source_connect(s);
	return (s);
}

static struct source *
source_find(const struct queue *q)
{
	struct source	*s;

	LIST_FOREACH(s, &source_list, entry)
		if (s->q == q)
			return (s);
	return (NULL);
}

/*
 * At start and after each reload: a source for every queue that has one in its config,
 * made again if its settings changed; none for a queue removed or without one.
 */
void
source_redis_sync(void)
{
	struct source	*s, *next;
	struct queue	*q;
	int		 i;

	for (s = LIST_FIRST(&source_list); s != NULL; s = next) {
		next = LIST_NEXT(s, entry);
		if (s->q->removed || memcmp(&s->cf, &s->q->cf.source, sizeof s->cf) != 0) {
			log_info("queue %s: no longer reading redis %s stream %s",
			    s->q->name, s->shown, s->cf.stream);
			source_free(s);
		}
	}
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->removed || q->cf.source.redis[0] == '\0' || source_find(q) != NULL)
			continue;
		if (source_new(q) == NULL)
			log_warnx("queue %s: out of memory for its redis source", q->name);
	}
}

/* Why q takes no entries from Redis now ("redis unreachable (...)"), or NULL. */
const char *
source_redis_paused(const struct queue *q)
{
	static char	 reason[1024];
	struct source	*s;

	if (LIST_EMPTY(&source_list) || (s = source_find(q)) == NULL || !s->paused)
		return (NULL);
	snprintf(reason, sizeof reason, "redis unreachable (%s: %s)", s->shown, s->why);
	return (reason);
}

/* STATS: a line per source. */
void
source_redis_stats(struct evbuffer *out)
{
	struct source	*s;

	LIST_FOREACH(s, &source_list, entry) {
		evbuffer_add_printf(out, "source %s type=redis state=%s url=%s stream=%s "
		    "group=%s consumer=%s claim_ms=%u read=%llu acked=%llu held=%llu "
		    "claimed=%llu\n", s->q->name,
		    s->paused ? "paused" : s->state == SOURCE_UP ? "reading" :
		    "connecting", s->shown, s->cf.stream, s->cf.group, s->cf.consumer,
		    s->cf.claim_ms, (unsigned long long)s->nread,
		    (unsigned long long)s->nacked, (unsigned long long)s->nheld,
		    (unsigned long long)s->nclaimed);
	}
}

/*
 * At exit: the acks not sent yet go in a last blocking XACK (1 s at most), so that
 * jobs that ended just before a stop do not run again; then everything is freed.
 */
void
source_redis_free(void)
{
	struct source	*s;
	redisContext	*c;
	redisReply	*reply;
	struct timeval	 tv = { 1, 0 };
	const char	*argv[3 + SOURCE_REDIS_ACK_MAX];
	char		(*ids)[48];
	uint32_t	 i, n;

	ids = malloc(SOURCE_REDIS_ACK_MAX * sizeof *ids);
	while ((s = LIST_FIRST(&source_list)) != NULL) {
		source_drop(s);
		if (s->nacks > 0 && ids != NULL &&
		    (c = redisConnectWithTimeout(s->url.host, s->url.port, tv)) != NULL) {
			if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
				if (s->url.pass[0] != '\0') {
					reply = s->url.user[0] != '\0' ? redisCommand(c,
					    "AUTH %s %s", s->url.user, s->url.pass) :
					    redisCommand(c, "AUTH %s", s->url.pass);
					freeReplyObject(reply);
				}
				if (s->url.db != 0)
					freeReplyObject(redisCommand(c, "SELECT %d",
					    s->url.db));
				for (i = 0; i < s->nacks && c->err == 0; i++) {
					if (s->acks[i].res != NULL)
						source_result_send(s, NULL, c, &s->acks[i]);
				}
				for (i = 0; i < s->nacks && c->err == 0; i += n) {
					n = source_xack_argv(s, i, argv, ids);
					freeReplyObject(redisCommandArgv(c, (int)(3 + n),
					    argv, NULL));
				}
			}
			redisFree(c);
		}
		source_free(s);
	}
	free(ids);
	free(held_byjob);
	free(held_byid);
	held_byjob = held_byid = NULL;
	held_cap = 0;
}
