/*
 * worker.c: the worker process. Forked by the supervisor with its job pipe on fd 3 and
 * its result pipe on fd 4; it runs the queue's handler on each job frame and writes a
 * result frame back, in order. It never touches the master's event base: this is a
 * plain blocking loop, which is what a worker should be.
 *
 * Results are written in batches: after the last whole job in what one read brought,
 * or as soon as a job has taken a millisecond or more, so a slow job's result is never
 * held back behind the jobs queued after it.
 */

#include "autoconf.h"

#include <sys/types.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "handler.h"
#include "jobpoold.h"
#include "log.h"

#define WORKER_READ_MIN		(256 * 1024)
#define WORKER_FLUSH_US		1000

/* Make room for n more bytes. */
int
obuf_reserve(struct obuf *b, size_t n)
{
	size_t	 cap;
	char	*nbuf;

	if (b->cap - b->len >= n)
		return (0);
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	if ((nbuf = realloc(b->buf, cap)) == NULL)
		return (-1);
	b->buf = nbuf;
	b->cap = cap;
	return (0);
}

int
obuf_add(struct obuf *b, const void *data, size_t len)
{
	if (obuf_reserve(b, len) != 0)
		return (-1);
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return (0);
}

int
obuf_printf(struct obuf *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || obuf_reserve(b, (size_t)n + 1) != 0)
		return (-1);
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return (0);
}

static uint64_t
worker_clock_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

/* Write all of b to fd, blocking; exit if the master is gone. */
static void
worker_flush(int fd, struct obuf *b)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < b->len) {
		n = write(fd, b->buf + off, b->len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			_exit(0);	/* EPIPE: the master has gone; nothing to report to */
		}
		off += (size_t)n;
	}
	b->len = 0;
}

/* Append one frame with a payload to b. */
static void
worker_frame(struct obuf *b, uint8_t type, uint8_t status, uint64_t id,
    const void *data, size_t len)
{
	if (obuf_reserve(b, FRAME_HDR_LEN + len) != 0)
		_exit(71);
	frame_put(b->buf + b->len, type, status, id, (uint32_t)len);
	if (len > 0)
		memcpy(b->buf + b->len + FRAME_HDR_LEN, data, len);
	b->len += FRAME_HDR_LEN + len;
}

/* Run the handler on one job and append its result frame. */
static void
worker_run(const struct handler *h, void *state, const struct config *cf,
    uint64_t id, const char *data, size_t len, struct obuf *out)
{
	size_t		start = out->len, rlen;
	int		status;
	char		msg[128];

	if (obuf_reserve(out, FRAME_HDR_LEN) != 0)
		_exit(71);
	out->len += FRAME_HDR_LEN;
	status = h->run(state, data, len, out);
	rlen = out->len - start - FRAME_HDR_LEN;
	if (rlen > cf->max_payload) {
		out->len = start + FRAME_HDR_LEN;
		rlen = (size_t)snprintf(msg, sizeof msg,
		    "result of %zu bytes is larger than max_payload (%u)", rlen,
		    cf->max_payload);
		obuf_add(out, msg, rlen);
		status = FRAME_PERMANENT;
	}
	frame_put(out->buf + start, FRAME_RESULT, (uint8_t)status, id, (uint32_t)rlen);
}

void
worker_main(const struct config *cf, const struct queue_config *qc, int in, int out)
{
	const struct handler	*h;
	struct frame_hdr	 hdr;
	struct obuf		 ob = { NULL, 0, 0 };
	char			*ibuf, *cause = NULL, name[16];
	size_t			 icap, ilen = 0, off;
	ssize_t			 n;
	void			*state = NULL;
	uint64_t		 last;
	uint32_t		 max = cf->max_payload + 4096;

	log_init(cf->log_level, "jobpoold-worker");
#ifdef HAVE_SYS_PRCTL_H
	snprintf(name, sizeof name, "jp:%s", qc->name);
	(void)prctl(PR_SET_NAME, name);
#else
	(void)name;
#endif
	icap = WORKER_READ_MIN;
	if ((ibuf = malloc(icap)) == NULL)
		_exit(71);

	h = handler_builtin_find(qc->handler);
	if (h == NULL) {
		cause = strdup("no such handler");
	} else if (h->init != NULL && h->init(NULL, &state, &cause) != 0) {
		if (cause == NULL)
			cause = strdup("init failed");
	}
	if (cause != NULL) {
		worker_frame(&ob, FRAME_READY, 1, 0, cause, strlen(cause));
		worker_flush(out, &ob);
		_exit(78);	/* EX_CONFIG: respawning will not help */
	}
	worker_frame(&ob, FRAME_READY, 0, 0, NULL, 0);
	worker_flush(out, &ob);

	for (;;) {
		if (icap - ilen < FRAME_HDR_LEN + 1024) {
			char *nb = realloc(ibuf, icap * 2);

			if (nb == NULL)
				_exit(71);
			ibuf = nb;
			icap *= 2;
		}
		n = read(in, ibuf + ilen, icap - ilen);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			_exit(71);
		}
		ilen += (size_t)n;

		off = 0;
		last = worker_clock_us();
		for (;;) {
			int r = frame_get(ibuf + off, ilen - off, max, &hdr);

			if (r == -1)
				_exit(70);	/* the master sent garbage: a bug */
			if (r == 0)
				break;
			if (ilen - off < FRAME_HDR_LEN + (size_t)hdr.len) {
				/* A partial job: make sure it will fit. */
				size_t need = FRAME_HDR_LEN + (size_t)hdr.len;

				if (need > icap) {
					char *nb = realloc(ibuf, need + 1024);

					if (nb == NULL)
						_exit(71);
					ibuf = nb;
					icap = need + 1024;
				}
				break;
			}
			if (hdr.type == FRAME_JOB) {
				uint64_t now;

				worker_run(h, state, cf, hdr.id,
				    ibuf + off + FRAME_HDR_LEN, hdr.len, &ob);
				now = worker_clock_us();
				if (now - last >= WORKER_FLUSH_US)
					worker_flush(out, &ob);
				last = now;
			}
			off += FRAME_HDR_LEN + hdr.len;
		}
		if (off > 0) {
			memmove(ibuf, ibuf + off, ilen - off);
			ilen -= off;
		}
		worker_flush(out, &ob);
	}
	if (h->fini != NULL)
		h->fini(state);
	_exit(0);
}
