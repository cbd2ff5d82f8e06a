/*
 * handler.h: what a worker runs for each job. A handler is looked up by the queue's
 * `handler` setting; init runs once in the worker, run once per job, fini at exit.
 * Handlers run only in workers, never in the master.
 */

#ifndef HANDLER_H
#define HANDLER_H

#include <stddef.h>

/* A growable output buffer: run() appends its result or error text here. */
struct obuf {
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

int	obuf_reserve(struct obuf *b, size_t n);
int	obuf_add(struct obuf *b, const void *data, size_t len);
int	obuf_printf(struct obuf *b, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

struct handler {
	const char	*name;
	/* 0, or -1 with *cause (malloc'd) saying why the worker cannot run it. */
	int		(*init)(const char *arg, void **state, char **cause);
	/* Returns an enum frame_status; out holds the result, or the error text. */
	int		(*run)(void *state, const char *in, size_t len, struct obuf *out);
	void		(*fini)(void *state);
};

/* The built-in handler called name, or NULL. */
const struct handler	*handler_builtin_find(const char *name);

/* spin's arithmetic: the sum of i*x for i below n, wrapping in 64 bits. */
unsigned long long	 handler_spin(unsigned long long n, unsigned long long x);

#endif /* HANDLER_H */
