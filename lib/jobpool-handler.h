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
 * ABI versions: a plugin sets abi_version to JOBPOOL_HANDLER_ABI_VERSION as it was when
 * the plugin was built. jobpoold refuses a plugin whose version it does not support,
 * with a message naming both versions. Fields are only ever added at the end.
 */

#ifndef JOBPOOL_HANDLER_H
#define JOBPOOL_HANDLER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JOBPOOL_HANDLER_ABI_VERSION	1

/* What process() returns. */
#define JOBPOOL_HANDLER_OK		0	/* success: the output is the result */
#define JOBPOOL_HANDLER_ERROR		1	/* failure: the output is the error text; retried */
#define JOBPOOL_HANDLER_PERMANENT	2	/* failure that retrying cannot fix: never retried */

/* Where process() writes its result (or its error text). Owned by the worker. */
struct jobpool_output;

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
};

/* Append to the job's output. 0, or -1 if out of memory. */
int	jobpool_output_write(struct jobpool_output *out, const void *data, size_t len);
int	jobpool_output_printf(struct jobpool_output *out, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Throw away what was written so far (to replace a partial result by an error). */
void	jobpool_output_reset(struct jobpool_output *out);

/* Nonzero once the running job has been cancelled or has timed out. Cheap to call. */
int	jobpool_cancelled(void);

/* Push a cleanup hook for the running job. 0, or -1 if out of memory. */
int	jobpool_cleanup_push(void (*fn)(void *), void *arg);
/* Pop the last hook pushed, running it first if run is nonzero. */
void	jobpool_cleanup_pop(int run);

#ifdef __cplusplus
}
#endif

#endif /* JOBPOOL_HANDLER_H */
