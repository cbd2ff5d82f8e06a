/*
 * events.h: the event bus (events.c): a ring of the daemon's recent events, and the
 * connections that follow it (EVENTS).
 *
 * Ownership: events.c owns the ring, its text slots and every subscriber (struct
 * events_sub). A subscriber writes into a sink (struct events_sink): an EVENTS
 * connection (c->sub; server.c drops it with events_unsubscribe() when the connection
 * closes) or the dashboard's Server-Sent Events stream (dashboard.c, events_sub_free()
 * when its HTTP connection closes).
 */

#ifndef EVENTS_H
#define EVENTS_H

#include <sys/types.h>

#include <stdint.h>

struct conn;
struct evbuffer;
struct job_change;
struct proto_request;

/*
 * What happened. Jobs' events come from the lifecycle (events_job_changed, once per
 * transition, see events.c); the others from one events_publish() where they happen.
 */
enum events_type {
	EVENTS_JOB_QUEUED,
	EVENTS_JOB_STARTED,
	EVENTS_JOB_SUCCEEDED,
	EVENTS_JOB_FAILED,
	EVENTS_JOB_RETRYING,
	EVENTS_JOB_TIMEOUT,
	EVENTS_JOB_CANCELLED,
	EVENTS_JOB_DEAD,
	EVENTS_WORKER_STARTED,
	EVENTS_WORKER_EXITED,
	EVENTS_WORKER_RECYCLED,
	EVENTS_QUEUE_FULL,
	EVENTS_QUEUE_RESUMED,
	EVENTS_QUEUE_BACKOFF,
	EVENTS_QUEUE_PAUSED,
	EVENTS_QUEUE_UNPAUSED,
	EVENTS_DAEMON_RELOADED,
	EVENTS_DAEMON_STOPPING,
	EVENTS_NTYPES
};
#define EVENTS_NO_QUEUE		0xffff

/* A job's key in its events: whole up to this many bytes, its start beyond (key_len=). */
#define EVENTS_KEY_MAX		12

/*
 * One event in the ring: 64 bytes, written in place, never formatted at publish time.
 * Text (an error, a reason) goes to a smaller ring of text slots (text: slot + 1).
 */
struct events_rec {
	uint64_t	 seq;		/* from 1 at each start (the epoch) */
	uint64_t	 time_us;	/* wall clock */
	uint64_t	 job;		/* job id, or 0 */
	uint64_t	 aux;		/* retrying, backoff: delay (ms); worker.exited: wait status */
	uint32_t	 dur_ms;	/* an attempt that ended: how long it ran */
	int32_t		 pid;		/* the worker, or 0 */
	uint32_t	 text;		/* its text slot + 1, or 0 */
	uint16_t	 queue;		/* the queue's idx (never reused), or EVENTS_NO_QUEUE */
	uint16_t	 owner;		/* a job's owner (priv.c's table), for non-admins */
	uint8_t		 type;		/* enum events_type */
	uint8_t		 attempt;
	uint8_t		 recovered;	/* job.queued: put back by the journal's recovery */
	uint8_t		 keylen;	/* the job's key's length; 0: none */
	char		 key[EVENTS_KEY_MAX];	/* its first EVENTS_KEY_MAX bytes */
};

/* What events_publish() records besides the type: fields that do not apply are 0. */
struct events_info {
	uint64_t	 job;
	uint64_t	 aux;
	uint32_t	 dur_ms;
	pid_t		 pid;
	int		 queue;		/* idx, or -1 */
	const char	*text;
	uint32_t	 textlen;
};

/*
 * Where a subscriber's events go, and how the sink's owner hears of the subscriber.
 * events.c writes into out() up to a backlog of unsent() bytes, calls flush() (if
 * any) after a feed, end() once until=now is written out (the owner then frees the
 * subscriber), and drop() when events_free() freed it under the owner.
 */
struct events_sink {
	struct evbuffer	*(*out)(void *arg);
	size_t		 (*unsent)(void *arg);	/* added to out, not yet taken by the peer */
	void		 (*flush)(void *arg);
	void		 (*end)(void *arg);
	void		 (*drop)(void *arg);
	int		 sse;	/* Server-Sent Events (id: epoch:seq, data: JSON), not EVENT lines */
};

/* What a subscriber wants: EVENTS' arguments, and who it is for STATS. */
#define EVENTS_SINCE_NOW	0	/* the events published from now on */
#define EVENTS_SINCE_SEQ	1	/* those after seq (of epoch, if not 0) */
#define EVENTS_SINCE_ALL	2	/* every event the ring holds, then on */
struct events_want {
	uint32_t	 types;		/* a bit per enum events_type */
	const char	*queue;		/* NULL or "": any */
	int		 admin;		/* sees every job's events, else uid's own */
	uid_t		 uid;
	int		 since;		/* EVENTS_SINCE_* */
	uint64_t	 seq;
	uint64_t	 epoch;
	int		 until;		/* stop after the last event now, with END */
	uint64_t	 id;		/* STATS' subscriber line: the connection */
	pid_t		 pid;
	const char	*from;		/* and where from (a static string), or NULL */
};

/* At start, before anything is published: the ring of n events. 0, or -1 (ENOMEM). */
int		 events_init(uint32_t n);
void		 events_free(void);
/* Record one event (cheap: no allocation, no formatting). */
void		 events_publish(enum events_type type, const struct events_info *info);
/* The same for a queue, with a text (NULL: none). */
void		 events_publish_queue(enum events_type type, int queue, pid_t pid,
		     uint64_t aux, const char *text);
/* lifecycle listener: jobs' events. */
void		 events_job_changed(const struct job_change *);
/*
 * EVENTS on c (admin: it sees every job's events, else its own): 0, c streams from
 * now on (the OK is written); or -1 with *cause, the ERR code (noqueue, busy).
 */
int		 events_subscribe(struct conn *c, const struct proto_request *req,
		     int admin, const char **cause);
void		 events_unsubscribe(struct conn *c);
/* c's socket took its backlog: send it more. */
void		 events_writable(struct conn *c);
/*
 * Any sink: a subscriber, or NULL out of memory. Its owner keeps the pointer, then
 * calls events_sub_writable() for what want->since asks (and again whenever the peer
 * took its backlog); it frees it with events_sub_free() (or end() says it is done).
 */
struct events_sub *events_sub_new(const struct events_sink *sink, void *arg,
		    const struct events_want *want);
void		 events_sub_free(struct events_sub *s);
void		 events_sub_writable(struct events_sub *s);
/* The daemon line's events_* words (STATS), and a line per subscriber. */
void		 events_stats(struct evbuffer *out);
void		 events_stats_lines(struct evbuffer *out);
const char	*events_type_name(int type);
/* The type whose name is name, or -1. */
int		 events_type_find(const char *name);
/* The mask of types matching glob (fnmatch): 0 if none. */
uint32_t	 events_type_mask(const char *glob);
/* Format rec as an EVENT line (as sent to subscribers) into out. */
void		 events_format(struct evbuffer *out, const struct events_rec *rec);
/* Format rec as one JSON object (hooks' stdin, jobpoolctl events --json). */
void		 events_format_json(struct evbuffer *out, const struct events_rec *rec);
/* The ring's state (tests, STATS). */
uint64_t	 events_epoch(void);
uint64_t	 events_last_seq(void);
uint64_t	 events_oldest_seq(void);
/* Events subscribers lost (gaps told, and what the ring overtook); subscribers now. */
uint64_t	 events_dropped(void);
uint32_t	 events_subscribers(void);
/* The event of seq still in the ring, or NULL. */
const struct events_rec *events_get(uint64_t seq);
/* Its text (NULL: none or overwritten), with its length. */
const char	*events_text(const struct events_rec *rec, uint32_t *len);

#endif /* EVENTS_H */
