/*
 * jobpool-handler.h: the ABI for handler plugins.
 *
 * A plugin is a shared object named in a queue's config:
 *
 *     handler = "plugin:/usr/lib/jobpool/myhandler.so some argument string";
 *
 * jobpoold loads it in each of the queue's worker processes (never in the master) and
 * looks up one symbol, `jobpool_handler`, a struct jobpool_handler. init() runs once per
 * worker with the argument string (everything after the path, or "" if none), process()
 * once per job, fini() when the worker exits. A plugin needs no library to link against:
 * the functions below are provided by the worker process. Build one with
 *
 *     cc -shared -fPIC -o myhandler.so myhandler.c
 *
 * process() runs one job at a time, on the worker's main thread (the worker has one
 * other thread of its own, which only writes results to the master and blocks every
 * signal). It may block; for long work it should poll jobpool_cancelled() and return
 * soon after it turns true, because a cancelled or timed-out job that has not returned
 * within the queue's grace period is killed with its worker. A cancel arrives as
 * SIGUSR1, whose handler is installed without SA_RESTART: a blocking call (read, poll,
 * nanosleep...) returns EINTR, after which the plugin should check jobpool_cancelled()
 * and, if it is still 0, carry on. Once the job was cancelled or timed out, whatever
 * process() returns is discarded: the job ends cancelled (or as a timed-out attempt).
 *
 * Cleanup hooks pushed with jobpool_cleanup_push() run, last pushed first, after
 * process() returns, when the job was cancelled, timed out, or failed; they are dropped
 * without running when it succeeds. They never run asynchronously, so a handler that
 * never returns never runs its hooks.
 *
 * Batches (ABI version 2). A plugin may also fill process_batch, which takes several
 * jobs in one call: a queue that sets batch_size (jobpool.conf(5)) hands its worker up
 * to batch_size jobs at once, or fewer once the oldest has waited batch_wait_ms, and
 * calls process_batch() instead of process(). A queue without batch_size calls
 * process() as before, so one plugin may serve both kinds of queue; a queue with
 * batch_size whose plugin has no process_batch does not start (the worker says so,
 * naming the config file and line). process_batch() gets an array of n jobs, each with
 * its payload and its own output, and sets each job's status (JOBPOOL_HANDLER_OK,
 * _ERROR or _PERMANENT) and writes its result or error text with jobpool_output_*()
 * on that job's out. The jobs stay separate jobs: each has its own result, its own
 * retries (a batch where some jobs fail retries those, and only those, in a later
 * batch), its own timeout and its own events. What process_batch() returns is the
 * status of every job whose status it left at JOBPOOL_HANDLER_UNSET: return
 * JOBPOOL_HANDLER_ERROR to fail the whole batch (say, the database is gone) after
 * writing the reason into some or all of the jobs' outputs (a job without one gets a
 * generic text). The payloads and outputs are valid only during the call.
 *
 * All the jobs of a batch start together, when process_batch() is called, and their
 * results go back when it returns. jobpool_cancelled() turns nonzero once any job of
 * the batch has been cancelled or has run past its timeout, and jobpool_job_cancelled()
 * says which: return soon after (the jobs not cancelled keep the statuses you give
 * them; a cancelled job's result is discarded). If it does not return within the
 * queue's grace period, the worker is killed: the jobs that were cancelled or timed out
 * end so, and the batch's other jobs run again in a later batch, without that attempt
 * counted against them. Cleanup hooks are the batch's: they run after process_batch()
 * returns if any of its jobs was cancelled, timed out or failed, and are dropped when
 * every job succeeded.
 *
 * ABI versions: a plugin sets abi_version to JOBPOOL_HANDLER_ABI_VERSION as it was when
 * the plugin was built. jobpoold refuses a plugin whose version it does not support,
 * with a message naming both versions. Fields are only ever added at the end, so this
 * jobpoold also loads plugins built for an older version (1: without process_batch),
 * reading only the fields that version had.
 */

#ifndef JOBPOOL_HANDLER_H
#define JOBPOOL_HANDLER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JOBPOOL_HANDLER_ABI_VERSION	2

/* What process() returns. */
#define JOBPOOL_HANDLER_OK		0	/* success: the output is the result */
#define JOBPOOL_HANDLER_ERROR		1	/* failure: the output is the error text; retried */
#define JOBPOOL_HANDLER_PERMANENT	2	/* failure that retrying cannot fix: never retried */
#define JOBPOOL_HANDLER_UNSET		(-1)	/* a batch job's status before process_batch */

/* Where process() writes its result (or its error text). Owned by the worker. */
struct jobpool_output;

/* One job of a batch (ABI 2), as process_batch() sees it. */
struct jobpool_job {
	const void		*payload;
	size_t			 len;
	struct jobpool_output	*out;		/* its result, or its error text */
	int			 status;	/* set it: JOBPOOL_HANDLER_OK, _ERROR, _PERMANENT */
	unsigned		 index;		/* its place in the batch, from 0 */
};

struct jobpool_handler {
	unsigned	 abi_version;	/* JOBPOOL_HANDLER_ABI_VERSION */
	const char	*name;		/* for log messages */
	/*
	 * Once per worker, before any job. Return 0, or -1 after writing the reason into
	 * err (errlen bytes): the queue is then marked failed and its workers are not
	 * restarted in a loop. May be NULL.
	 */
	int		(*init)(const char *arg, void **state, char *err, size_t errlen);
	/* Once per job. Required. */
	int		(*process)(void *state, const void *payload, size_t len,
			    struct jobpool_output *out);
	/* Once when the worker exits normally. May be NULL. */
	void		(*fini)(void *state);
	/*
	 * ABI 2: once per batch of n jobs (1 <= n <= the queue's batch_size), in a queue
	 * that sets batch_size. Sets each jobs[i].status and writes each jobs[i].out;
	 * returns the status of the jobs it left JOBPOOL_HANDLER_UNSET. May be NULL: the
	 * plugin then serves only queues without batch_size.
	 */
	int		(*process_batch)(void *state, struct jobpool_job *jobs, size_t n);
};

/* Append to the job's output. 0, or -1 if out of memory. */
int	jobpool_output_write(struct jobpool_output *out, const void *data, size_t len);
int	jobpool_output_printf(struct jobpool_output *out, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Throw away what was written so far (to replace a partial result by an error). */
void	jobpool_output_reset(struct jobpool_output *out);

/*
 * Nonzero once the running job (in a batch: any job of it) has been cancelled or has
 * timed out. Cheap to call.
 */
int	jobpool_cancelled(void);
/* ABI 2: nonzero once this job of the running batch has been cancelled or timed out. */
int	jobpool_job_cancelled(const struct jobpool_job *job);

/* Push a cleanup hook for the running job. 0, or -1 if out of memory. */
int	jobpool_cleanup_push(void (*fn)(void *), void *arg);
/* Pop the last hook pushed, running it first if run is nonzero. */
void	jobpool_cleanup_pop(int run);

#ifdef __cplusplus
}
#endif

#endif /* JOBPOOL_HANDLER_H */
