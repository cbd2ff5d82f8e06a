/*
 * jobpoold.h: the daemon's objects and the functions of each module.
 *
 * Ownership, in one place:
 *   - the master (master.c) owns the event base, the config in force, and the queues;
 *   - a queue (queue.c) owns its waiting jobs (ready lists and the delay heap, walked
 *     by others only through queue_foreach_waiting), its config and the previous one
 *     kept across a reload of its handler;
 *   - a queue's dispatch part (q->dp: kick list, token bucket, rate timer, service
 *     time) is dispatch.c's; its supervisor part (q->sv: the workers' callbacks, the
 *     respawn backoff) and its workers (q->workers, nworkers, gen) are supervisor.c's;
 *     its server part (q->srv: the connections blocked on it) is server.c's; its
 *     counters (submitted, done, ...) and its stats part (q->st: latencies,
 *     throughput) are stats.c's lifecycle listener's; each part has its module's init
 *     and free;
 *   - a worker (supervisor.c) owns the jobs dispatched to it (its in-flight list,
 *     walked by others only through supervisor_foreach_inflight) until their results
 *     come back; q->running and q->busy follow the in-flight lists, kept by
 *     supervisor.c's worker_held() alone;
 *   - the job table (queue.c) indexes every job the daemon knows by id, and owns the
 *     finished ones kept for WAIT and STATUS;
 *   - a connection (server.c) is reference-counted: every job it waits for holds a
 *     reference (server_wait), so a job never points at freed memory after a client
 *     goes away;
 *   - a job's state is written only by job_change() (below; its slow path is
 *     lifecycle.c's job_change_publish()), which tells the modules that care (the
 *     listener table) of every change;
 *   - a worker's life (w->life, w->leave) is supervisor.c's alone;
 *   - the event ring, its text slots and the subscribers (c->sub) are events.c's
 *     (events.h); a hook is a queue of its own (cf.hook), made from the config.
 * Only the master process touches any of this; a forked worker runs worker_main() and
 * never returns into the master's code.
 */

#ifndef JOBPOOLD_H
#define JOBPOOLD_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stdint.h>

#include "config.h"
#include "hist.h"
#include "log.h"

struct event_base;
struct event;
struct evbuffer;
struct bufferevent;
struct evconnlistener;
struct job_change;
struct chain;
struct events_sub;

enum job_state {
	JOB_DELAYED,
	JOB_QUEUED,
	JOB_RUNNING,		/* dispatched to a worker */
	JOB_DONE,
	JOB_FAILED,
	JOB_TIMEOUT,
	JOB_CANCELLED,
	JOB_RETRY_WAIT,		/* waiting for its backoff delay (in the delay heap) */
	JOB_DEAD,		/* out of attempts or poison: kept, can be retried */
	JOB_NEW			/* made, not accepted yet (job_new) */
};
#define JOB_FINAL(st)	((st) >= JOB_DONE && (st) <= JOB_DEAD && (st) != JOB_RETRY_WAIT)
_Static_assert(JOB_NEW < 16, "struct job's state is 4 bits");

/* Why a running job is being stopped (j->cancel). */
enum job_cancel {
	JOB_CANCEL_NONE,
	JOB_CANCEL_USER,	/* a client's CANCEL: final, its end is recorded at once */
	JOB_CANCEL_TIMEOUT,	/* its timeout: an attempt that failed */
	JOB_CANCEL_SHUTDOWN	/* the shutdown's deadline: final, runs again after a restart */
};
_Static_assert(JOB_CANCEL_SHUTDOWN < 4, "struct job's cancel is 2 bits");

/* One attempt in a job's history (kept only for jobs that failed an attempt). */
#define JOB_HIST_MAX	8
/* " content_type=<63 bytes> content_length=<20 digits>": an http job's, for STATUS. */
#define JOB_HTTP_META_MAX	112
struct attempt {
	uint32_t	ms;		/* how long it ran */
	int32_t		pid;		/* the worker */
	uint8_t		outcome;	/* enum job_state: DONE, FAILED, TIMEOUT, CANCELLED */
	uint8_t		n;		/* attempt number */
	char		err[90];	/* the start of the error text */
};

/*
 * What a job needs only once an attempt has ended, allocated lazily: its result (or
 * error text) inline, and the history of its attempts, allocated only when one failed.
 * A finished job costs its header, its payload and this with its result.
 */
struct job_extra {
	struct attempt	*hist;		/* JOB_HIST_MAX entries, a ring; NULL: none failed */
	uint64_t	 died_ms;	/* dead: when */
	uint64_t	 end_batch;	/* journal: the batch holding its end record */
	uint32_t	 rlen;
	/* One word of bit-fields, so that the http status costs no byte (bench W4). */
	uint32_t	 last_status:4;	/* dead: JOB_FAILED or JOB_TIMEOUT */
	uint32_t	 nhist:4;	/* attempts recorded, at most JOB_HIST_MAX */
	uint32_t	 hist_next:4;
	uint32_t	 crashes:8;	/* workers it killed in a row (struct job had no room) */
	uint32_t	 http_status:10; /* http: its last response's status (100-999); 0: none */
	uint32_t	 http_meta:1;	/* result[] is followed by STATUS's content_type= and
					   content_length= (job_http_meta): http jobs only */
	struct chain	*chain;		/* a stage of a chain: its record (chain.c), or NULL */
	char		 result[];	/* finished: output or error text */
};
_Static_assert(JOB_HIST_MAX < 16, "struct job_extra's nhist is 4 bits");

/*
 * Someone waiting for a job's result: the RESULT names the id it asked for, which is
 * an earlier stage's when the waiter followed a chain (chain.c) to this job.
 */
struct waiter {
	struct conn	*conn;
	struct waiter	*next;
	uint64_t	 id;
};

/*
 * A job is 72 bytes before its payload, so that a 64-byte job is one 144-byte malloc
 * chunk (bench W4): the queue is an index, and the list links and the heap index share
 * their space, since a job waiting in the delay heap is on no list. The owner is an
 * index too (priv.c's owner table), and what does not fit went to struct job_extra:
 * crashes changes only when an attempt ends, which allocates it.
 */
struct job {
	uint64_t		 id;
	union {
		TAILQ_ENTRY(job) entry;		/* ready list, worker in-flight, kept or dead list */
		uint32_t	 heap_idx;	/* delayed or retry_wait: index in the heap */
	};
	struct job		*hnext;		/* job table chain */
	struct waiter		*waiters;
	/*
	 * Monotonic us: delayed or retry_wait, when it is due; queued, or sent to a worker
	 * and waiting in its line, when it became ready (its due time, if it was delayed):
	 * the start of its wait (stats); running, when it started on its worker (its
	 * timeout counts from there). 0 before it is first queued: now.
	 */
	uint64_t		 run_at;
	struct job_extra	*x;		/* result and history, once there are any */
	uint32_t		 len;		/* payload bytes */
	uint32_t		 timeout_ms;
	uint16_t		 qidx;		/* its queue: queues[qidx] */
	int16_t			 prio;
	uint16_t		 owner;		/* who submitted it: priv_owner_uid(owner) */
	uint8_t			 attempts;
	unsigned int		 state:4;	/* enum job_state */
	unsigned int		 cancel:2;	/* enum job_cancel */
	unsigned int		 haskey:1;	/* a key follows the payload (job_key) */
	char			 data[];	/* payload (not NUL-terminated), then its key */
};
TAILQ_HEAD(joblist, job);
_Static_assert(sizeof(struct job) == 72, "struct job must stay 72 bytes (bench W4)");

/*
 * A job's key (SUBMIT ... key=NAME; keys.c): in the job's own allocation, after the
 * payload, only when j->haskey: data[len] its flags (JOB_KEY_PARKED), data[len + 1]
 * its length (1..JOB_KEY_MAX), then its bytes, printable ASCII, not NUL-terminated.
 * A job without a key costs nothing: the bit is in struct job's last byte.
 */
#define JOB_KEY_MAX		255
#define JOB_KEY_PARKED		0x01	/* waiting in its key's FIFO (keys.c) */
static inline const char *
job_key(const struct job *j, size_t *lenp)
{
	if (!j->haskey) {
		*lenp = 0;
		return (NULL);
	}
	*lenp = (unsigned char)j->data[j->len + 1];
	return (&j->data[j->len + 2]);
}
static inline unsigned char *
job_key_flags(struct job *j)
{
	return ((unsigned char *)&j->data[j->len]);
}

/*
 * A worker's life (w->life, written by supervisor.c alone). It only goes down this
 * list, but for its end, which comes in two halves in either order: a worker is
 * finished (GONE) only once it is both reaped and at EOF on its result pipe.
 */
enum worker_life {
	WORKER_STARTING,	/* forked, no READY yet */
	WORKER_READY,		/* takes jobs */
	WORKER_RETIRING,	/* takes none; its job pipe closes once it holds none */
	WORKER_STOPPING,	/* its job pipe is closed, or it was killed: it will exit */
	WORKER_EXITED,		/* reaped; its result pipe is not at EOF yet */
	WORKER_CLOSED,		/* its result pipe is at EOF; not reaped yet */
	WORKER_GONE		/* reaped and at EOF: to be freed and its slot refilled */
};

/*
 * Why a worker leaves (w->leave, supervisor.c's), which says whether its exit is a
 * crash. Each value is a stronger fact than the ones above it, and a worker's only
 * rises: a worker that said RETIRE and was then killed still never started what it held.
 */
enum worker_leave {
	WORKER_STAYS,		/* nothing asked it to go: an exit is a crash */
	WORKER_SIGNALLED,	/* the shutdown signalled it */
	WORKER_RETIRED,		/* we let it go: recycled, resized away, restarted for a
				   new handler, or its handler cannot start */
	WORKER_KILLED,		/* killed: its head job would not stop (killed_for) */
	WORKER_SAID_RETIRE	/* it sent FRAME_RETIRE: nothing it holds has started */
};

struct worker {
	struct queue		*queue;
	int			 slot;		/* index in the queue's worker array */
	pid_t			 pid;
	int			 to_fd;		/* jobs down (master writes) */
	int			 from_fd;	/* results up (master reads) */
	struct event		*rev;
	struct event		*wev;
	struct event		*tev;		/* the earliest deadline of its running jobs */
	struct evbuffer		*in;
	struct evbuffer		*out;
	/*
	 * Dispatched, in order: the first `slots` run (each since its j->run_at), the
	 * rest wait in line in the worker and start, in order, as running ones end.
	 */
	struct joblist		 inflight;
	uint32_t		 ninflight;
	uint32_t		 slots;		/* jobs it runs at once (its READY says); 1: CPU */
	struct worker_stop	*stops;		/* its running jobs asked to stop, and until when */
	uint32_t		 nstops;
	uint32_t		 capstops;
	uint64_t		 jobs_done;
	uint64_t		 ready_ms;	/* when it said READY, or 0 */
	enum worker_life	 life;
	enum worker_leave	 leave;
	int			 status;	/* wait status, once reaped */
	uint64_t		 killed_for;	/* killed because this job would not stop */
	pid_t			 child_pgid;	/* the head job's exec process group, or 0 */
	uint32_t		 gen;		/* the queue's gen when it was forked */
	int			 signal_after_flush; /* SIGUSR1 once a CANCEL is written */
	uint64_t		 dispatched;	/* jobs sent to it */
	uint64_t		 http_id;	/* dispatch: FRAME_HTTP said http_code for this job, */
	uint16_t		 http_code;	/* whose RESULT comes next */
	uint8_t			 http_metalen;	/* and http_meta, STATUS's " content_type=..." */
	char			 http_meta[JOB_HTTP_META_MAX];
};

/* dispatch.c's: a running job was asked to stop; past until_us its worker is killed. */
struct worker_stop {
	uint64_t		 id;
	uint64_t		 until_us;
};

/* Has waitpid() collected w? Then no signal may go to its pid, which may be reused. */
static inline int
worker_reaped(const struct worker *w)
{
	return (w->life == WORKER_EXITED || w->life == WORKER_GONE);
}

/*
 * What a queue's workers report, and to whom: the supervisor calls these and knows
 * nothing else of what is done with the jobs (as tmux's job_run callbacks).
 */
struct worker_cb {
	/* j, sent to w or next in its line, starts now (it is among w's first slots). */
	void	(*started)(struct worker *, struct job *j);
	/*
	 * A result frame for job id, one of w's running jobs (in any order); a failure's
	 * least wait before a retry in seconds (the frame's flags: Retry-After), or 0.
	 */
	void	(*result)(struct worker *, uint64_t id, int status, uint32_t retry_after_s,
		    const char *data, uint32_t len);
	/* Its running job id's HTTP response had this status (FRAME_HTTP). */
	void	(*http_status)(struct worker *, uint64_t id, unsigned code,
		    const char *meta, uint32_t len);
	/* The worker is gone (reaped and at EOF): what it held must go somewhere. */
	void	(*lost)(struct worker *, const char *why);
	/* The worker's timer fired. */
	void	(*timer)(struct worker *);
	/* A worker became ready, or none can start: the queue's jobs may move. */
	void	(*changed)(struct queue *);
};

/* dispatch.c's part of a queue (dispatch_queue_init, dispatch_queue_free). */
struct dispatch_part {
	int			 kicked;	/* on dispatch.c's list to dispatch this pass */
	struct queue		*kick_next;	/* the next on that list */
	double			 tokens;	/* rate: the token bucket */
	uint64_t		 tokens_at;	/* us; 0: to fill */
	double			 rate;		/* the rate and burst it was filled for */
	uint32_t		 burst;
	struct event		*rate_ev;
	uint32_t		 svc_us;	/* moving average of service time per job */
	struct event		*batch_ev;	/* batch_size: a short batch is due then */
};

/* supervisor.c's part of a queue (supervisor_queue_init, supervisor_queue_free). */
struct supervisor_part {
	const struct worker_cb	*cb;		/* what its workers report to */
	int			 respawn_fails;	/* workers in a row that died young */
	struct event		*respawn_ev;
	uint64_t		 respawn_at;	/* backoff: when respawn_ev fires (ms) */
};

/*
 * chain.c's part of a queue (chain_sync, at start and after each reload): the queue its
 * jobs' results go on to (cf.then), and the backpressure between the two.
 */
struct chain_part {
	struct queue		*next;		/* cf.then's queue, or NULL */
	int			 held;		/* it did not dispatch: next was full */
	int			 holding;	/* a queue whose next it is waits for room */
};

/*
 * keys.c's part of a queue (keys_queue_init, keys_queue_free): the keys it tracks (a
 * hash table of struct key, keys.c's), the jobs parked behind their key's limits, the
 * keys whose parked jobs may run now, and the keys waiting for a time (a heap, one
 * timer).
 */
struct key;
struct keys_part {
	struct key		**buckets;
	uint32_t		 mask;		/* buckets - 1 */
	uint32_t		 nkeys;		/* keys tracked */
	uint32_t		 nparked;	/* jobs parked (queue_depth counts them) */
	TAILQ_HEAD(, key)	 ready;		/* keys with parked jobs they may run now */
	struct key		**heap;		/* keys waiting for a time, min-heap */
	uint32_t		 nheap;
	uint32_t		 heap_cap;
	struct event		*timer;		/* for the heap's first */
};

/* server.c's part of a queue (server_queue_init, server_queue_free). */
struct server_part {
	TAILQ_HEAD(, conn)	 blocked;	/* connections waiting for room, oldest first */
	uint32_t		 nblocked;
};

/*
 * stats.c's part of a queue: the latency distributions (us), added to by its lifecycle
 * listener; read by STATS, jobpoolctl status and top, and /metrics.
 */
struct stats_part {
	struct hist		 wait;		/* submit (or due, if delayed) to start */
	struct hist		 run;		/* start to end of an attempt */
	uint32_t		 retry_wait;	/* jobs in the delay heap in retry_wait */
	uint64_t		 ends_seen;	/* done + failed + cancelled at the last tick */
	double			 tput[3];	/* jobs ended per second: 1, 5, 15 min */
};
#define STATS_TICK_S		5	/* how often stats.c folds the counters in */

struct queue {
	char			*name;
	uint16_t		 idx;		/* its place in queues[]: stable, never reused */
	struct queue_config	 cf;		/* a copy; strings owned by master's config */
	struct joblist		*ready;		/* one FIFO per priority level */
	int			 nlevels;
	int			 top;		/* highest level that may be non-empty */
	struct job		**heap;		/* delayed jobs, min-heap on run_at */
	uint32_t		 nheap;
	uint32_t		 heap_cap;
	struct event		*delay_ev;

	uint32_t		 nready;	/* jobs in the ready lists */
	uint64_t		 bytes;		/* payload bytes of ready + delayed jobs */
	uint32_t		 low_jobs;	/* backpressure releases below these */
	uint64_t		 low_bytes;

	struct worker		**workers;
	int			 nworkers;	/* slots; above cf.workers while shrinking */
	uint32_t		 gen;		/* new, never reused, when the handler changes */
	struct queue_config	*prev_cf;	/* rolling: how workers were made before */
	uint32_t		 prev_gen;
	int			 removed;	/* a reload removed it: drains, takes no jobs */
	int			 paused;	/* PAUSE: takes jobs, sends none (queue_pause) */
	uid_t			 paused_by;	/* who paused it; (uid_t)-1: its config did */
	uint32_t		 running;	/* jobs its workers hold (supervisor.c's worker_held) */
	uint32_t		 busy;		/* workers holding any (the same) */
	char			*failed_reason;	/* the handler cannot start: no workers run */
	char			 last_death[192];
	uint64_t		 ndead;		/* jobs on the dead list now */
	uint64_t		 poisoned;

	struct dispatch_part	 dp;
	struct keys_part	 keys;
	struct supervisor_part	 sv;
	struct server_part	 srv;
	struct stats_part	 st;
	struct chain_part	 ch;

	uint64_t		 submitted;	/* the counters: stats.c's listener */
	uint64_t		 done;
	uint64_t		 failed;
	uint64_t		 cancelled;
	uint64_t		 retried;
	uint64_t		 worker_deaths;
};

struct conn {
	uint64_t		 id;
	TAILQ_ENTRY(conn)	 entry;		/* all connections */
	TAILQ_ENTRY(conn)	 bentry;	/* a queue's blocked list */
	struct bufferevent	*bev;
	struct queue		*blocked_on;
	uint64_t		 skip;		/* body bytes still to discard */
	int			 skip_lf;	/* a '\r' ended the skipped body: drop a '\n' */
	struct queue		*let_in;	/* server_unblock lets its SUBMIT into this queue */
	int			 refs;		/* jobs waiting to answer it, plus one while open */
	int			 closed;	/* closed: answers go nowhere */
	int			 closing;	/* close once the output is flushed */
	int			 rdeof;		/* the client shut down its sending side */
	int			 out_full;	/* stopped reading: too much output pending */
	uint64_t		 wrote_ms;	/* the socket last took bytes, or was found full */
	struct event		*stall_ev;	/* judges a client past 4 x max_output */
	int			 in_process;	/* its requests are being handled now */
	int			 flushq;	/* on the list of replies to write */
	TAILQ_ENTRY(conn)	 fentry;
	/*
	 * With a journal: replies that must wait until the records they depend on are
	 * durable (see journal.h). Replies go to hold while marks remain (and during a
	 * request); each mark says up to where hold may go out once its batch is done.
	 */
	struct evbuffer		*hold;
	struct hold_mark {
		uint64_t	 batch;
		size_t		 len;
	}			*marks;
	uint32_t		 nmarks;
	uint32_t		 capmarks;
	int			 held;		/* on the held list */
	int			 in_req;	/* a request is being handled */
	TAILQ_ENTRY(conn)	 hentry;
	pid_t			 pid;
	uid_t			 uid;
	int			 owner;		/* its uid in priv.c's owner table, or -1: full */
	int			 admin;		/* may act on every job (priv_peer_admin) */
	uint64_t		 admin_gen;	/* admin is as of these lists (0: not yet asked) */
	int			 reserved;	/* holds one of the reserved_connections */
	/*
	 * Time limits (server.c, conn_timer_cb): one timer, re-armed lazily. A read only
	 * stores the time; the timer looks at the connection when it fires.
	 */
	struct event		*timer;
	uint64_t		 timer_at;	/* when it fires (ms); 0: not armed */
	uint64_t		 active_ms;	/* last bytes read from the client */
	uint64_t		 req_ms;	/* an incomplete request began; 0: none */
	size_t			 unsent_seen;	/* replies unsent at the timer's last look */
	int			 waited;	/* waited on the daemon, or was sent a RESULT, since */
	struct events_sub	*sub;		/* EVENTS: it follows the event ring (events.c) */
};

/* master.c */
extern struct event_base	*master_base;
extern struct config		*master_config;
extern int			 master_stopping;
extern int			 master_debug;
extern pid_t			 master_pid;
int		 master_main(struct config *cf);
/* Reload the configuration file: 0, or -1 (the old one stays; see master_reload_error). */
int		 master_reload(const char *why);
const char	*master_reload_error(void);
/* Called when something changed that may let shutdown finish. */
void		 master_check_done(void);
/* At start: cf's queues in queues[]: 0, or -1 with *cause (none made; out of memory). */
int		 queues_create(const struct config *cf, char **cause);
/* At exit: free the queues, every job left and the job table. */
void		 queues_free(void);
uint64_t	 now_ms(void);
uint64_t	 now_us(void);

/* queue.c: queues and the job table */
extern struct queue	**queues;
extern int		  nqueues;
struct queue	*queue_create(const struct queue_config *qc);
void		 queue_free(struct queue *q);
struct queue	*queue_find(const char *name);
int		 queue_pause(struct queue *q, int on, uid_t uid);
/* prio, brought into qc's range of priorities (the one clamp). */
static inline int16_t
queue_prio_clamp(const struct queue_config *qc, long long prio)
{
	if (prio < qc->prio_min)
		return ((int16_t)qc->prio_min);
	if (prio > qc->prio_max)
		return ((int16_t)qc->prio_max);
	return ((int16_t)prio);
}
/* Take a reloaded config: 0, or -1 if out of memory (unchanged). */
int		 queue_reconfigure(struct queue *q, const struct queue_config *nqc);
/* Around a reload that changes how workers are made (see queue.c). */
int		 queue_keep_previous(struct queue *q);
void		 queue_forget_previous(struct queue *q);
void		 queue_revert_workers(struct queue *q);
/* Is there room for a job of len bytes? */
int		 queue_has_room(struct queue *q, uint32_t len);
/* New job (not yet in any list); NULL on allocation failure. */
struct job	*job_new(struct queue *q, const void *data, uint32_t len);
/*
 * The same with a key (klen at most JOB_KEY_MAX); key NULL or klen 0: none, but for a
 * job of an http queue, which takes its URL's host (handler_http_key). SUBMIT, Redis
 * and a chain's next stage come in here; a stored job (the journal) keeps its own.
 */
struct job	*job_new_key(struct queue *q, const void *data, uint32_t len,
		    const char *key, size_t klen);
/* Put a job in its queue: ready, or delayed until run_at. The queue owns it. */
void		 queue_push(struct queue *q, struct job *j);
void		 queue_push_as(struct queue *q, struct job *j, struct job_change *info);
/* Put a job back at the front of its priority level (requeued after a worker died). */
void		 queue_push_front(struct queue *q, struct job *j);
/* Take the next ready job, or NULL. The caller owns it. */
struct job	*queue_pop(struct queue *q);
/* Remove a waiting (ready or delayed) job; the caller owns it. */
void		 queue_remove(struct queue *q, struct job *j);
/* Move due delayed jobs to the ready lists and re-arm the timer. */
void		 queue_promote(struct queue *q);
uint32_t	 queue_depth(const struct queue *q);	/* ready + delayed */
/* How long the oldest ready job of q has waited at now (monotonic us); 0: none. */
uint64_t	 queue_oldest_wait_us(const struct queue *q, uint64_t now);
/* fn for each waiting job (ready, then delayed); stops at fn's first nonzero. */
int		 queue_foreach_waiting(struct queue *q, int (*fn)(struct job *, void *),
		    void *arg);
/* Take the earliest delayed job, or NULL. The caller owns it. */
struct job	*queue_pop_delayed(struct queue *q);
struct job	*job_find(uint64_t id);
static inline struct queue *job_queue(const struct job *j) { return (queues[j->qidx]); }
void		 job_table_add(struct job *j);
void		 job_table_remove(struct job *j);
uint64_t	 job_next_id(void);
uint64_t	 job_peek_next_id(void);
void		 job_set_next_id(uint64_t id);	/* recovery: ids go on from the journal's */
uint64_t	 job_count(void);
void		 job_free(struct job *j);
/* Set the job's result (or error) text, replacing any. */
void		 job_set_result(struct job *j, const void *res, uint32_t rlen);
void		 job_set_http_meta(struct job *j, const char *meta, size_t len);
const char	*job_http_meta(struct job *j);
/* The journal batch a reply telling of j's end must wait for; 0: none. */
uint64_t	 job_end_batch(const struct job *j);
struct job_extra *job_extra(struct job *j);
void		 job_history_add(struct job *j, enum job_state outcome, pid_t pid,
		    uint32_t ms, const char *err, uint32_t errlen);
static inline uint32_t job_rlen(const struct job *j) { return (j->x ? j->x->rlen : 0); }
static inline const char *job_result(const struct job *j) { return (j->x ? j->x->result : NULL); }
static inline uint8_t job_crashes(const struct job *j) { return (j->x ? (uint8_t)j->x->crashes : 0); }
static inline void job_crashes_clear(struct job *j) { if (j->x != NULL) j->x->crashes = 0; }
void		 job_dead_remove(struct job *j);
struct job	*job_dead_first(void);
struct job	*job_dead_next(struct job *j);
uint32_t	 job_dead_count(void);
const char	*job_state_name(enum job_state st);
void		 job_keep_trim(uint32_t keep, uint64_t keep_bytes);
void		 job_table_free(void);

/*
 * lifecycle.c: the only writer of a job's state. job_change() sets it and tells the
 * listeners of lifecycle.c's table, in its order (HACKING.md, "The lifecycle"). Besides
 * the states, listeners may hear two events of a running job, numbered after them.
 */
#define JOB_EV_STARTED		16	/* it takes one of its worker's slots: it starts */
#define JOB_EV_CANCELLING	17	/* it is asked to stop: j->cancel says why */
struct job_change {
	struct job	*j;
	/*
	 * final: the result or error it keeps; accepted (queued or delayed from new) by
	 * a SUBMIT: its idempotency token (idem=), or NULL. Not a field of its own: the
	 * struct is filled on every job's path (bench W1).
	 */
	const char	*text;
	const char	*err;		/* retry_wait, dead: the attempt's error */
	const char	*cause;		/* dead: why it was quarantined (poison), or NULL */
	uint64_t	 delay_ms;	/* retry_wait: its backoff */
	uint32_t	 len;
	uint32_t	 errlen;
	pid_t		 pid;		/* the worker, or 0 */
	uint32_t	 ran_ms;	/* an attempt that ended: how long it ran */
	uint64_t	 ran_us;	/* the same in us, at least 1 (stats); 0: no attempt */
	uint64_t	 at_us;		/* JOB_EV_STARTED: when it started (monotonic us) */
	uint8_t		 from;		/* enum job_state */
	uint8_t		 to;		/* enum job_state: the state it is in now */
	uint8_t		 what;		/* to, or a JOB_EV_*: what the listeners match */
	uint8_t		 attempt;	/* j->attempts */
	uint8_t		 outcome;	/* retry_wait, dead: the attempt's (FAILED, TIMEOUT) */
	uint8_t		 recovered;	/* accepted again by the journal's recovery */
	uint16_t	 http_status;	/* final: the http status it keeps (x->http_status) */
	uint8_t		 http_metalen;	/* done: its content type and length, for STATUS */
	const char	*http_meta;
};
/*
 * Which changes lifecycle.c's listeners may hear: JOB_CHANGE_HEARD, by some listener
 * (when it wants to, such as the journal's only with one); JOB_CHANGE_DEBUG, only by
 * the debug log lines. lifecycle.c checks both against its table at compile time. A
 * change neither names (a job sent to its worker) only
 * sets the state, here, inline: every job passes four times (bench W1).
 */
#define JOB_CHANGE_ON(what)	(1u << (what))
#define JOB_CHANGE_HEARD	(JOB_CHANGE_ON(JOB_QUEUED) | JOB_CHANGE_ON(JOB_DELAYED) | \
				JOB_CHANGE_ON(JOB_RETRY_WAIT) | JOB_CHANGE_ON(JOB_DONE) | \
				JOB_CHANGE_ON(JOB_CANCELLED) | JOB_CHANGE_ON(JOB_DEAD) | \
				JOB_CHANGE_ON(JOB_EV_STARTED) | JOB_CHANGE_ON(JOB_EV_CANCELLING))
#define JOB_CHANGE_DEBUG	0u
/* Set j's state (what < JOB_EV_STARTED) and tell the listeners: job_change's slow path. */
void		 job_change_publish(struct job *j, int what, struct job_change *info);
/*
 * j enters state what (or, for a JOB_EV_*, stays where it is): set it and publish the
 * change with info (NULL: nothing more to say), which is filled in. An end may free j.
 */
static inline void
job_change(struct job *j, int what, struct job_change *info)
{
	if ((JOB_CHANGE_HEARD & JOB_CHANGE_ON(what)) ||
	    ((JOB_CHANGE_DEBUG & JOB_CHANGE_ON(what)) && log_level >= LOG_DEBUG))
		job_change_publish(j, what, info);
	else if (what < JOB_EV_STARTED)
		j->state = what;
}
/* A job reached its final state (done, cancelled, dead) with this result or error. */
void		 job_finish(struct job *j, enum job_state st, const void *res, uint32_t rlen);
void		 job_finish_text(struct job *j, enum job_state st, const char *text);
/* The listeners, each in its own module. */
void		 journal_job_changed(const struct job_change *);
/*
 * stats: a queue's counters and latencies. submitted: accepted (not recovered);
 * retried: an attempt failed and the job waits for another; failed: made dead,
 * poisoned among them (a dead job recovered was counted before the restart). wait:
 * from j->run_at (ready, or due) to its start; run: an attempt, start to end.
 * Inline: every job passes here four times (bench W1).
 */
static inline void
stats_job_changed(const struct job_change *ch)
{
	struct queue	*q = job_queue(ch->j);

	if (ch->from == JOB_RETRY_WAIT && ch->what != JOB_RETRY_WAIT)
		q->st.retry_wait--;
	/* Only the end of an attempt that ran says how long (at least 1 us). */
	if (ch->ran_us != 0)
		hist_add(&q->st.run, ch->ran_us);
	switch (ch->what) {
	case JOB_EV_STARTED:
		hist_add(&q->st.wait, ch->at_us > ch->j->run_at ?
		    ch->at_us - ch->j->run_at : 0);
		break;
	case JOB_QUEUED:
	case JOB_DELAYED:
		if (ch->from == JOB_NEW && !ch->recovered)
			q->submitted++;
		break;
	case JOB_RETRY_WAIT:
		q->st.retry_wait++;
		q->retried++;
		break;
	case JOB_DONE:
		q->done++;
		break;
	case JOB_CANCELLED:
		q->cancelled++;
		break;
	case JOB_DEAD:
		if (ch->from == JOB_NEW)
			break;
		q->failed++;
		if (ch->cause != NULL)
			q->poisoned++;
		break;
	}
}
void		 server_job_changed(const struct job_change *);
void		 notify_job_changed(const struct job_change *);
/* source_redis: a job from a Redis stream ended; heard only while there are any. */
extern uint64_t	 source_redis_nheld;
void		 source_redis_job_changed(const struct job_change *);
/* Is job id one from Redis, not ended yet? (Its entry, pending, is what keeps it.) */
int		 source_redis_holds(uint64_t id);
/* dispatch: a job is ready to run, dispatch its queue later in this pass. */
void		 dispatch_kick(struct queue *q);
static inline void
dispatch_job_changed(const struct job_change *ch)
{
	dispatch_kick(job_queue(ch->j));
}
void		 queue_job_changed(const struct job_change *);
/*
 * chain: a stage of a chain ended, or a job whose queue has a 'then' succeeded. Inline:
 * every job's end asks (bench W1), and without chains it is one load and test.
 */
extern uint32_t	 chain_active;	/* queues with a next one + chain records: 0, no chains */
static inline int
chain_hears(const struct job *j)
{
	return (chain_active != 0 && (job_queue(j)->ch.next != NULL ||
	    (j->x != NULL && j->x->chain != NULL)));
}
void		 chain_job_changed(const struct job_change *);

/*
 * chain.c: chained queues (issue 15). A queue's 'then' sends each job's result on as a
 * new job to the next queue; the record of a chain (its stages, its state) is made at
 * the first stage's success, shared by its jobs (x->chain) and freed with the last.
 */
/* At start and after a reload: each queue's next queue, from cf.then. */
void		 chain_sync(void);
/* dispatch: is q's next queue full? Then q does not dispatch (chain_room lets it go). */
int		 chain_next_full(struct queue *q);
/* dispatch: jobs left q; at its low watermark, the queues it held dispatch again. */
void		 chain_room(struct queue *q);
/* WAIT, CANCEL: the stage j's chain is at now (or ended at); j itself if none. */
struct job	*chain_follow(struct job *j);
/* CANCEL: j, the chain's stage now, is being cancelled: no stage may follow it. */
void		 chain_cancel(struct job *j);
/* STATUS: the chain's words ( chain= stage= stages=, or then=) for j. */
void		 chain_status(struct evbuffer *b, const struct job *j);
/*
 * A waiter's RESULT for j, a stage: the status word (*word, NULL: j's own), a text
 * put before j's result (its length), and whether j's result follows (*keep).
 */
size_t		 chain_answer(const struct job *j, const char **word, int *keep,
		    char *buf, size_t size);
/* events: the id of the stage before j in its chain (j queued as its next); 0: none. */
uint64_t	 chain_prev(const struct job *j);
/* job_free: j lets go of its chain's record. */
void		 chain_job_free(struct job *j);

/* dispatch.c: jobs to workers, results back, retries, cancellation */
/* Hand ready jobs of q to its idle workers. */
void		 dispatch_queue(struct queue *q);
/* The same, once, later in this pass of the event loop. */
void		 dispatch_kick(struct queue *q);
void		 dispatch_free(void);
void		 dispatch_queue_init(struct queue *q);
void		 dispatch_queue_free(struct queue *q);
/* What a queue's workers report to it, given to the supervisor (queue_create). */
extern const struct worker_cb	dispatch_worker_cb;
/* A worker sent a result frame for job id, one of those it runs (retry_after_s: 0). */
void		 dispatch_result(struct worker *w, uint64_t id, int status,
		    uint32_t retry_after_s, const char *data, uint32_t len);
/* A worker is gone: requeue what it held. */
void		 dispatch_worker_lost(struct worker *w, const char *why);
/* Submit a new job (already checked for room), with what its change says (info: SUBMIT's
 * idempotency token, or NULL); returns its id. */
uint64_t	 dispatch_submit_as(struct queue *q, struct job *j, struct conn *waiter,
		    struct job_change *info);
static inline uint64_t
dispatch_submit(struct queue *q, struct job *j, struct conn *waiter)
{
	return (dispatch_submit_as(q, j, waiter, NULL));
}
/* The one accept path (SUBMIT, recovery): j's id is set; st JOB_QUEUED or JOB_DEAD. */
void		 dispatch_accept(struct queue *q, struct job *j, struct conn *waiter,
		    enum job_state st, struct job_change *info);
/* Cancel a job: 0 answered, 1 being cancelled (running), -1 with *why. */
int		 dispatch_cancel(struct job *j, const char **why);
/* Queue a dead job again: 0, or -1 with *why. */
int		 dispatch_retry(struct job *j, const char **why);
/* A worker's timer: one of its running jobs timed out, or its grace period is over. */
void		 dispatch_timer(struct worker *w);
/* (Re)arm w's timer for the earliest timeout or grace of its running jobs. */
void		 dispatch_arm_timeout(struct worker *w);
/* Until when (monotonic us) w's running job id may take to stop; 0: not asked. */
uint64_t	 dispatch_stop_until(const struct worker *w, uint64_t id);
/* Shutdown past its deadline: cancel running jobs cooperatively; the longest grace (ms). */
uint32_t	 dispatch_cancel_running(void);
/* Shutdown: answer every job that will not run. */
void		 dispatch_cancel_waiting(const char *reason);

/*
 * keys.c: job keys and the per-key limits of a queue (max_running_per_key,
 * rate_per_key, burst_per_key, and pauses), beside the queue's own in dispatch.
 */
void		 keys_queue_init(struct queue *q);
/* Free q's keys and the jobs parked in them (the caller answered them). */
void		 keys_queue_free(struct queue *q);
/* A reload changed q's limits: look at every key again. */
void		 keys_reconfigure(struct queue *q);
/* dispatch: may j (popped, keyed) run now? 1: counted as running; 0: parked. */
int		 keys_admit(struct queue *q, struct job *j);
/* dispatch: a parked job whose key may run it now, counted as running; or NULL. */
struct job	*keys_next(struct queue *q);
/* dispatch: keyed job j left its worker (its result came, or the worker is gone). */
void		 keys_release(struct queue *q, struct job *j);
/* Take every parked job, each to fn (shutdown, a handler that cannot start). */
void		 keys_drain_parked(struct queue *q, void (*fn)(struct job *, void *),
		    void *arg);
/* Take parked job j out of its key's FIFO (cancelled). */
void		 keys_remove(struct queue *q, struct job *j);
/* fn for each parked job; stops at fn's first nonzero. */
int		 keys_foreach_parked(struct queue *q, int (*fn)(struct job *, void *),
		    void *arg);
/*
 * Pause key (len bytes) of q until until_ms (monotonic, now_ms()): its jobs wait, the
 * queue's others go on (the http handler's Retry-After). A later pause extends it,
 * an earlier one does not shorten it.
 */
void		 keys_pause(struct queue *q, const char *key, size_t len,
		    uint64_t until_ms);
/* Has q a key whose parked jobs may run now? */
static inline int
keys_has_ready(const struct queue *q)
{
	return (!TAILQ_EMPTY(&q->keys.ready));
}

/* supervisor.c: forked workers */
/* q's workers will report to cb (dispatch's). */
void		 supervisor_queue_init(struct queue *q, const struct worker_cb *cb);
void		 supervisor_queue_free(struct queue *q);
int		 supervisor_start(struct queue *q);
/* Tell systemd READY=1 once every worker that should run is up (once). */
void		 supervisor_check_ready(void);
void		 supervisor_reap(void);
/* Take j out of w's in-flight list (its result came, or w is gone). */
void		 supervisor_take(struct worker *w, struct job *j);
/* Write a job to a worker's pipe buffer. */
void		 supervisor_send(struct worker *w, struct job *j);
/* Buffer n jobs for w as one batch (FRAME_BATCH), which its handler runs in one call. */
void		 supervisor_send_batch(struct worker *w, struct job **jobs, uint32_t n);
/* Start writing what supervisor_send() buffered. */
void		 supervisor_flush(struct worker *w);
/* Ask w to stop job j (FRAME_CANCEL_USER or FRAME_CANCEL_TIMEOUT). */
void		 supervisor_cancel(struct worker *w, struct job *j, int reason);
/* Close w's job pipe: it exits once it has answered what it holds. */
void		 supervisor_close_jobs(struct worker *w);
/* Let w go once it holds no jobs. */
void		 supervisor_retire(struct worker *w);
/* Kill w: its head job (job_id) would not stop when asked. */
void		 supervisor_kill(struct worker *w, uint64_t job_id);
/* Restart q's workers of an older generation, one at a time. */
void		 supervisor_roll(struct queue *q);
/* Grow or shrink q's pool to q->cf.workers. */
int		 supervisor_resize(struct queue *q);
/* Shutdown: close job pipes of idle workers; 1 once every worker is gone. */
int		 supervisor_drain(void);
void		 supervisor_signal_all(int sig);
int		 supervisor_alive(void);
int		 supervisor_alive_queue(const struct queue *q);
/* fn for each job q's workers hold, in order; stops at fn's first nonzero. */
int		 supervisor_foreach_inflight(struct queue *q,
		    int (*fn)(struct job *, void *), void *arg);
/* The worker holding j, or NULL. */
struct worker	*supervisor_holder(const struct job *j);
/* Is j one of the jobs w runs now (among the first w->slots of its in-flight list)? */
int		 supervisor_running(const struct worker *w, const struct job *j);
/* How long w's longest-running job has run at now (us); 0: idle (STATS, /metrics). */
uint64_t	 supervisor_busy_us(const struct worker *w, uint64_t now);

/* worker.c: the worker process */
/* In a new worker: default signals, in and out as fds 3 and 4, no other fd but stdio. */
void		 worker_after_fork(int in, int out);
/* The worker's life; never returns. */
void		 worker_main(const struct config *cf, const struct queue_config *qc,
		    int from_master, int to_master)
		    __attribute__((noreturn));

/* server.c: the listening socket and client connections */
int		 server_listen(const struct config *cf, char **cause);
void		 server_close_listener(void);
/* A graceful stop begins: let systemd's socket go; keep our own until exit. */
void		 server_stop_listener(void);
const char	*server_made_dir(void);
void		 server_queue_init(struct queue *q);
void		 server_queue_free(struct queue *q);
/* Room appeared in q: let its blocked connections go on. */
void		 server_unblock(struct queue *q);
/* How many connections wait for room in q. */
static inline uint32_t
server_nblocked(const struct queue *q)
{
	return (q->srv.nblocked);
}
/* c waits for j's end (once per connection and job): 0, or -1 out of memory. */
int		 server_wait(struct conn *c, struct job *j);
/* Send a RESULT for j to c (a waiter), naming id (what it asked for). */
void		 server_send_result(struct conn *c, struct job *j, uint64_t id);
/* A chain went on from one stage to the next: its waiters wait for the next. */
void		 server_waiters_move(struct job *from, struct job *to);
void		 conn_unref(struct conn *c);
int		 server_idle(void);	/* every connection's output is flushed */
void		 server_close_all(void);
uint32_t	 server_nconns(void);
/* Apply cf's connection limits and timeouts, checked against RLIMIT_NOFILE (start, reload). */
void		 server_limits(const struct config *cf);
/* The journal made batches up to batch durable: send the replies that waited for them. */
void		 server_journal_durable(uint64_t batch);
/* Where c's replies go now, and how many of its bytes its socket has not taken. */
struct evbuffer	*server_out(struct conn *c);
size_t		 server_unsent(struct conn *c);
/* c's event stream ended (until=now): it closes once its output is written. */
void		 server_stream_end(struct conn *c);

/* stats.c */
/* Remember the start; with an event base, start the tick of the throughput rates. */
void		 stats_init(void);
void		 stats_free(void);
/* Fold the counters into q's throughput rates: every STATS_TICK_S (the timer). */
void		 stats_tick(struct queue *q);
/* What a process uses, from /proc: 0, or -1 if it is gone. */
struct proc_usage {
	uint64_t	 rss_bytes;	/* resident set */
	uint64_t	 cpu_us;	/* user + system time */
};
int		 stats_proc_usage(pid_t pid, struct proc_usage *u);
void		 stats_write(struct evbuffer *out);
/* The states STATS, /status and /metrics name: running, backoff, failed, removing. */
const char	*queue_state_name(const struct queue *q);
/* starting, idle, busy, stopping, retiring, dead. */
const char	*worker_state_name(const struct worker *w);

/* metrics.c: /metrics (Prometheus) and /status (JSON) over HTTP, metrics_listen */
/* At start, before the privilege drop: listen if cf says so; 0, or -1 with *cause. */
int		 metrics_start(const struct config *cf, char **cause);
/* At a reload: listen where cf says if that changed (a failure keeps the old). */
void		 metrics_reconfigure(const struct config *cf);
void		 metrics_stop(void);
/* The bodies of /metrics and /status: 0, or -1 out of memory. */
int		 metrics_write(struct evbuffer *b);
int		 metrics_write_status(struct evbuffer *b);
/* The n bytes at s as a JSON string (escaped, UTF-8 checked) into b. */
void		 metrics_json_str(struct evbuffer *b, const char *s, size_t n);

/*
 * dashboard.c: the page, its JSON and its event stream on metrics_listen (issue 20).
 * dashboard_request: 1 if it answered req (a path of the dashboard's), else 0.
 */
struct evhttp_request;
int		 dashboard_start(const struct config *cf);
void		 dashboard_reconfigure(const struct config *cf);
void		 dashboard_stop(void);
int		 dashboard_request(struct evhttp_request *req, const char *path);
uint32_t	 dashboard_streams(void);

/* source_redis.c: a queue's jobs from a Redis stream (issue 17) */
/* At start and after a reload: read for the queues that have a source, and only them. */
void		 source_redis_sync(void);
/* Why q takes no entries now ("redis unreachable (...)"), or NULL. */
const char	*source_redis_paused(const struct queue *q);
void		 source_redis_stats(struct evbuffer *out);
void		 source_redis_free(void);

/* notify.c: sd_notify, see notify.h */
#include "notify.h"

#endif /* JOBPOOLD_H */
