/*
 * jobpool.h: libjobpool, the C client of the jobpool daemon.
 *
 * A struct jobpool is one connection to jobpoold. It is not thread-safe: use one per
 * thread. Nothing here prints, logs or exits: every function returns a status, and
 * jobpool_error() says in words what went wrong with the last call that failed.
 *
 * Two ways to use it:
 *   - blocking calls (jobpool_submit, jobpool_wait, jobpool_cancel, ...), one request
 *     and its reply at a time;
 *   - pipelined: jobpool_send_*() queue requests in the connection's output buffer,
 *     jobpool_flush() writes them, jobpool_next() returns the next message from the
 *     daemon (a reply, in request order, or a RESULT). jobpool_flush() and jobpool_next()
 *     service both directions, so a producer that writes faster than it reads cannot
 *     deadlock against the daemon's backpressure.
 * Do not mix the two while pipelined replies are outstanding.
 *
 * The protocol itself is documented in PROTOCOL.md.
 *
 * And one call without a daemon: jobpool_redis_submit() adds a job to a Redis stream
 * that jobpoold queues read, and can wait for its result there.
 */

#ifndef JOBPOOL_H
#define JOBPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JOBPOOL_PROTOCOL_VERSION 1
#define JOBPOOL_MAX_LINE	1024

/* Return values. 0 is success; every failure is negative. */
#define JOBPOOL_OK		 0
#define JOBPOOL_ESYS		-1	/* a system call failed; errno is kept */
#define JOBPOOL_EPROTO		-2	/* the daemon sent something we cannot parse */
#define JOBPOOL_ESERVER		-3	/* the daemon answered ERR; see jobpool_error_code() */
#define JOBPOOL_ECLOSED		-4	/* the daemon closed the connection */
#define JOBPOOL_EAGAIN		-5	/* non-blocking: nothing available yet */
#define JOBPOOL_EINVAL		-6	/* a bad argument to this library */
#define JOBPOOL_ETIMEDOUT	-7	/* a timeout given to this library expired */
#define JOBPOOL_EREDIS		-8	/* Redis refused a command or broke the connection */

/* Submit flags. */
#define JOBPOOL_WAIT		0x1	/* deliver a RESULT on this connection */
#define JOBPOOL_NONBLOCK	0x2	/* fail with ERR busy instead of waiting for room */

/* Job result statuses, as in RESULT messages. */
enum jobpool_status {
	JOBPOOL_JOB_OK = 0,
	JOBPOOL_JOB_FAILED,
	JOBPOOL_JOB_TIMEOUT,
	JOBPOOL_JOB_CANCELLED,
	JOBPOOL_JOB_UNKNOWN		/* a status word this library does not know */
};

struct jobpool;

struct jobpool_submit_opts {
	const char	*queue;		/* NULL: "default" */
	int		 priority;
	uint32_t	 delay_ms;
	uint32_t	 timeout_ms;	/* 0: the queue's default */
	int		 flags;		/* JOBPOOL_WAIT, JOBPOOL_NONBLOCK */
};

/* A message from the daemon, as returned by jobpool_next(). */
enum jobpool_msg_type {
	JOBPOOL_MSG_OK,		/* reply: OK [words]; text holds the words */
	JOBPOOL_MSG_ERR,	/* reply: ERR code message; text holds "code message" */
	JOBPOOL_MSG_DATA,	/* reply: DATA size + body in data/len */
	JOBPOOL_MSG_RESULT	/* asynchronous: RESULT id status size + body */
};

struct jobpool_msg {
	enum jobpool_msg_type	 type;
	uint64_t		 id;		/* RESULT: the job id; OK: the number if the first word is one, else 0 */
	enum jobpool_status	 status;	/* RESULT */
	const char		*status_name;	/* RESULT: the status word as sent */
	const char		*text;		/* OK/ERR: the rest of the line, NUL-terminated */
	const void		*data;		/* DATA/RESULT body; NUL-terminated for convenience */
	size_t			 len;
};
/*
 * The pointers in a struct jobpool_msg point into the connection's buffer and stay
 * valid until the next call on the same connection.
 */

/* A job's result, owned by the caller after jobpool_wait(): free with jobpool_result_free(). */
struct jobpool_result {
	uint64_t		 id;
	enum jobpool_status	 status;
	char			 status_name[16];
	void			*data;		/* NUL-terminated copy of the body */
	size_t			 len;
};

/* A job's status, from jobpool_job_status(). */
struct jobpool_job_info {
	uint64_t	 id;
	char		 queue[64];
	char		 state[16];
	int		 priority;
	unsigned	 attempts;
};

/*
 * The socket path a client should use when none is given: $JOBPOOL_SOCKET if set, else
 * /run/jobpool/jobpool.sock for root, else $XDG_RUNTIME_DIR/jobpool/jobpool.sock, else
 * /tmp/jobpool-$UID/jobpool.sock. Writes it into buf and returns buf, or NULL if it does
 * not fit.
 */
char		*jobpool_default_socket(char *buf, size_t len);

/*
 * Connect to the daemon at path (NULL: jobpool_default_socket()). NULL on failure with
 * errno set; jobpool_error(NULL) then says what failed ("connect /path: ...") for the
 * calling thread.
 */
struct jobpool	*jobpool_connect(const char *path);
/* Close the connection and free everything. NULL is fine. */
void		 jobpool_close(struct jobpool *jp);
/* The connection's descriptor, for poll(); do not read or write it. */
int		 jobpool_fd(struct jobpool *jp);
/*
 * A sentence describing the last failure on this connection; NULL: why the last
 * jobpool_connect() or jobpool_redis_submit() that failed in this thread failed.
 */
const char	*jobpool_error(struct jobpool *jp);
/* The daemon's error code word ("busy", "noqueue", ...) after JOBPOOL_ESERVER, else "". */
const char	*jobpool_error_code(struct jobpool *jp);
/* Parse a status word ("ok", "failed", ...). */
enum jobpool_status jobpool_status_parse(const char *word);
/* The word for a status. */
const char	*jobpool_status_name(enum jobpool_status status);

/* Blocking calls: send one request and read its reply. */
int		 jobpool_ping(struct jobpool *jp);
/* Submit one job; on success *id is its id. With JOBPOOL_WAIT, collect the result with jobpool_wait(). */
int		 jobpool_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
		     const void *data, size_t len, uint64_t *id);
/*
 * The same with the job's key (NULL: none): 1 to 255 bytes of printable ASCII, no
 * space. A queue may limit each key (max_running_per_key, rate_per_key: jobpool.conf(5)).
 */
int		 jobpool_submit_key(struct jobpool *jp, const struct jobpool_submit_opts *opts,
		     const char *key, const void *data, size_t len, uint64_t *id);
/*
 * The same with a key (as jobpool_submit_key's) and an idempotency token, idem (each
 * NULL: none): 1 to 64 bytes of A-Z a-z 0-9 and . _ - : @ / + = ~. While the daemon
 * holds the token for this queue and user (the
 * first job waits or runs, or ended less than idempotency_window ago), a submit with
 * it makes no job: *id is the first job's, and *dup (if not NULL) is 1. With
 * JOBPOOL_WAIT, jobpool_wait() then gives the first job's result. A resend after a lost
 * connection is safe.
 */
int		 jobpool_submit_idem(struct jobpool *jp,
		     const struct jobpool_submit_opts *opts, const char *key,
		     const char *idem, const void *data, size_t len, uint64_t *id,
		     int *dup);
/*
 * Wait for a job's result. If the job was submitted on this connection with
 * JOBPOOL_WAIT its RESULT is awaited directly; otherwise a WAIT request is sent first.
 * RESULTs for other jobs that arrive meanwhile are kept and returned by later calls.
 * timeout_ms < 0 waits forever.
 */
int		 jobpool_wait(struct jobpool *jp, uint64_t id, int timeout_ms,
		     struct jobpool_result *res);
void		 jobpool_result_free(struct jobpool_result *res);
int		 jobpool_cancel(struct jobpool *jp, uint64_t id);
int		 jobpool_job_status(struct jobpool *jp, uint64_t id, struct jobpool_job_info *info);
/* The STATS body, NUL-terminated, malloc'd for the caller. */
int		 jobpool_stats(struct jobpool *jp, char **text, size_t *len);

/* Pipelined calls. The send functions only append to the output buffer. */
int		 jobpool_send_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
		     const void *data, size_t len);
int		 jobpool_send_submit_key(struct jobpool *jp,
		     const struct jobpool_submit_opts *opts, const char *key,
		     const void *data, size_t len);
/*
 * The same with a key and an idempotency token (each NULL: none); a duplicate's OK has
 * the word "dup" in its text.
 */
int		 jobpool_send_submit_idem(struct jobpool *jp,
		     const struct jobpool_submit_opts *opts, const char *key,
		     const char *idem, const void *data, size_t len);
int		 jobpool_send_wait(struct jobpool *jp, uint64_t id);
/* Send a raw request line (without the newline), for commands this library does not wrap. */
int		 jobpool_send_line(struct jobpool *jp, const char *line);
/* Bytes waiting in the output buffer. */
size_t		 jobpool_pending(struct jobpool *jp);
/*
 * Write the output buffer. timeout_ms: 0 writes what the socket takes now and returns
 * JOBPOOL_EAGAIN if something is left; < 0 blocks until all is written. Incoming data
 * is read into the input buffer meanwhile.
 */
int		 jobpool_flush(struct jobpool *jp, int timeout_ms);
/*
 * The next message from the daemon. timeout_ms: 0 returns JOBPOOL_EAGAIN when no whole
 * message has arrived; < 0 blocks. Pending output is written meanwhile.
 */
int		 jobpool_next(struct jobpool *jp, struct jobpool_msg *msg, int timeout_ms);

/*
 * A job submitted through Redis: its stream entry and, when waited for, how it ended, as
 * the jobpoold that ran it wrote it under <stream>:result:<entry> (the source's
 * result_ttl, jobpool.conf(5), REDIS STREAMS). Free with jobpool_redis_result_free().
 */
struct jobpool_redis_result {
	char		 entry[64];	/* the entry id XADD gave, "1733480000000-0" */
	char		 end[16];	/* waited: "done", "dead" or "cancelled"; else "" */
	void		*data;		/* waited: a done job's output, else why it did
					 * not run to the end; NUL-terminated; else NULL */
	size_t		 len;
};

/*
 * Add a job to the Redis stream a jobpoold queue reads (its source), without a local
 * daemon: XADD <stream> * payload <data> on url, redis://[[user]:password@]host[:port][/db].
 * On success res->entry is the entry id. wait_ms 0 returns then; otherwise the result key
 * is polled (every 20 ms) until a daemon writes it, for at most wait_ms (< 0: forever),
 * and res->end and res->data say how the job ended (JOBPOOL_OK whatever the end: check
 * res->end). Only a source with result_ttl writes results: without it a wait times out.
 * Fails with JOBPOOL_EINVAL (a bad URL or argument), JOBPOOL_ESYS (connecting), JOBPOOL_EREDIS
 * (AUTH, SELECT, XADD or GET refused), JOBPOOL_ETIMEDOUT (no result in time; res->entry
 * is set) or JOBPOOL_EPROTO (the key is not a result); jobpool_error(NULL) says why,
 * naming the host and the command, never the password. Blocking; one connection per call.
 */
int		 jobpool_redis_submit(const char *url, const char *stream, const void *data,
		     size_t len, int wait_ms, struct jobpool_redis_result *res);
void		 jobpool_redis_result_free(struct jobpool_redis_result *res);

/*
 * Retry delay, as jobpoold computes it for a queue's backoff settings: after `failed`
 * failed attempts (>= 1), min(max_ms, base_ms * 2^(failed - 1)) spread uniformly over
 * +-jitter (0..1) of itself by r, a uniform random number in [0, 1). Never above
 * max_ms: what the spread puts above it is mirrored below it.
 */
uint64_t	 jobpool_backoff_ms(uint32_t base_ms, uint32_t max_ms, double jitter,
		     unsigned failed, double r);

#ifdef __cplusplus
}
#endif

#endif /* JOBPOOL_H */
