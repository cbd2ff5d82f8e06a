/*
 * handler.h: what a worker runs for each job. A queue's `handler` setting names one:
 * a built-in ("echo", "sha256", "spin", "sleep", "http"), a plugin ("plugin:/path.so [ARG]",
 * handler_plugin.c) or a program ("exec:/path [ARGS]", handler_exec.c). handler_open()
 * runs in the worker, after the fork: handlers never run in the master.
 */

#ifndef HANDLER_H
#define HANDLER_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "jobpool-handler.h"

struct config;
struct queue_config;

/* The output buffer behind jobpool-handler.h's struct jobpool_output. */
struct jobpool_output {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

int	obuf_reserve(struct jobpool_output *b, size_t n);
int	obuf_add(struct jobpool_output *b, const void *data, size_t len);
int	obuf_printf(struct jobpool_output *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Append a string literal, whose length the compiler counts. */
#define obuf_add_lit(b, s)	obuf_add((b), "" s, sizeof (s) - 1)

struct handler {
	const char	*name;
	/* 0, or -1 with *cause (malloc'd) saying why this worker cannot run it. */
	int		(*init)(const struct config *cf, const struct queue_config *qc,
			    const char *arg, void **state, char **cause);
	/*
	 * Run one job: returns an enum frame_status (FRAME_OK, FRAME_FAILED,
	 * FRAME_PERMANENT, or FRAME_CANCELLED when it stopped because
	 * jobpool_cancelled() said so); out holds the result or the error text.
	 */
	int		(*run)(void *state, const char *in, size_t len,
			    struct jobpool_output *out);
	void		(*fini)(void *state);
	/*
	 * Run a batch of n jobs at once (a queue with batch_size; NULL: this handler has
	 * no batch entry point). Each jobs[i].out is that job's own buffer, empty at the
	 * call; sets each jobs[i].status to an enum frame_status (FRAME_OK, FRAME_FAILED
	 * or FRAME_PERMANENT), the worker deciding which were cancelled.
	 */
	void		(*run_batch)(void *state, struct jobpool_job *jobs, size_t n);
	void		*priv;		/* the loader's own data (plugin: dlopen handle) */
	int		 own_cleanup;	/* its cancel text says how cleanup went (exec);
					   otherwise the worker adds the hooks it ran */
	int		 unheld;	/* each job costs a process (exec): results are
					   never held, and the worker starts no flusher */
	/*
	 * A handler that carries several jobs at once (IO: http), used when its queue's
	 * concurrency is above 1 or it has no run(): the worker then runs up to
	 * `concurrency` jobs at once, one thread, no flusher. start() begins job id; in
	 * is the worker's until start() returns (copy what is kept). A job ends, in any
	 * order, when the handler calls worker_done() for it, in start() already (bad
	 * input) or later in wait(). cancel() drops job id, which the worker answers
	 * itself: the handler must not call worker_done() for it after. wait() blocks
	 * until fd is readable (the master's frames; -1: none to watch) or a job of its
	 * has ended, and calls worker_done() for each job that has.
	 */
	void		(*start)(void *state, uint64_t id, const char *in, size_t len);
	void		(*cancel)(void *state, uint64_t id);
	void		(*wait)(void *state, int fd);
};

/*
 * Resolve a queue's handler spec in the worker: fill *h and run its init. 0, or -1
 * with *cause (malloc'd) for the log and the queue's failed state.
 */
int	handler_open(const struct config *cf, const struct queue_config *qc,
	    struct handler *h, void **state, char **cause);

/* The built-in handler called name, or NULL. */
const struct handler	*handler_builtin_find(const char *name);
/* "plugin:PATH [ARG]": dlopen PATH and adopt its jobpool_handler. */
int	handler_plugin_open(const char *spec, struct handler *h, const char **arg,
	    char **cause);
/* handler = "http": an HTTP request per job, several at once (handler_http.c). */
const struct handler	*handler_http_find(void);
/*
 * The master's: an http job's default key, its URL's host ("host[:port]", lowercased)
 * in buf; its length, or 0 (no readable URL, or no host that fits size).
 */
size_t			 handler_http_key(const void *data, size_t len, char *buf,
			    size_t size);
/* "exec:PATH [ARGS]": run PATH per job. */
int	handler_exec_open(const char *spec, struct handler *h, const char **arg,
	    char **cause);

/* spin's arithmetic: the sum of i*x for i below n, wrapping in 64 bits. */
unsigned long long	 handler_spin(unsigned long long n, unsigned long long x);

/* worker.c: the grace period of the running job's queue, for handlers that escalate. */
unsigned	worker_grace_ms(void);
/*
 * worker.c, for handlers with start(): job id (one it started, not cancelled) ended
 * with status (enum frame_status) and its output or error text.
 */
void		worker_done(uint64_t id, int status, const void *data, size_t len);
/*
 * worker.c: job id's HTTP response had status code, Content-Type ctype ("": none)
 * and a body of bodylen bytes (before its worker_done).
 */
void		worker_http_status(uint64_t id, unsigned code, const char *ctype,
		    uint64_t bodylen);
/* The same, for FRAME_FAILED: not to be retried for retry_after_s seconds (Retry-After). */
void		worker_done_after(uint64_t id, int status, uint32_t retry_after_s,
		    const void *data, size_t len);
/* worker.c: the job running now, or 0, and the worker's queue (for log lines). */
uint64_t	worker_current(void);
const char	*worker_queue_name(void);
/*
 * worker.c: job id's program leads process group pgid (0: reaped). The worker kills
 * that group if it is terminated, and the master if the worker dies: the handler
 * waits at most worker_child_wait_ms() (-1: no limit) at a time while the program
 * runs, and calls worker_child_due() after each wait, which tells the master once the
 * program has run for a millisecond.
 */
void		worker_child(uint64_t id, pid_t pgid);
int		worker_child_wait_ms(void);
void		worker_child_due(void);

#endif /* HANDLER_H */
