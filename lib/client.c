/*
 * client.c: libjobpool (jobpool.h), one connection to jobpoold.
 *
 * A struct jobpool owns its socket (non-blocking; every wait is a poll() on both
 * directions), an input and an output buffer, a run-length FIFO of the requests whose
 * replies are outstanding (so a reply can be matched to what asked for it), the set of
 * job ids whose RESULT will come on this connection and has not been handed out, and
 * the stash: RESULTs that arrived while a blocking call waited for something else.
 *
 * Messages are decoded in place in the input buffer and NUL-terminated there; the
 * message last returned is consumed at the start of the next call, and the buffer is
 * compacted only when a read needs room, so a stream of small messages costs no copies.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "jobpool.h"
#include "proto.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define CLIENT_BUF_INIT		(64 * 1024)
#define CLIENT_READ_MIN		(16 * 1024)	/* free room wanted before a read */
#define CLIENT_MAX_BODY		((uint64_t)1 << 30)	/* largest DATA/RESULT body taken */
#define CLIENT_SUBMIT_LINE	384	/* room for a SUBMIT line without its body */

/* What an outstanding request was, so its reply can be understood. */
enum client_req_kind {
	CLIENT_REQ_OTHER,	/* a reply that changes nothing here */
	CLIENT_REQ_SUBMIT_WAIT,	/* OK <id>: a RESULT for id will follow */
	CLIENT_REQ_WAIT		/* OK: a RESULT for the WAIT's id will follow */
};

/* A run of outstanding requests: n of the same kind, or one WAIT for job n. */
struct client_req {
	uint64_t	n;
	int		kind;
};

/* A byte buffer; the data is base[off, len). */
struct client_buf {
	char	*base;
	size_t	 size;
	size_t	 off;
	size_t	 len;
};

/* A RESULT kept for a later jobpool_wait() or jobpool_next(). */
struct client_stash {
	struct jobpool_result	 res;
	struct client_stash	*next;
};

struct jobpool {
	int			 fd;
	int			 eof;		/* the daemon closed its end */
	int			 wclosed;	/* writing failed with EPIPE */
	int			 dead;		/* a failure that ends the connection */

	struct client_buf	 in;
	struct client_buf	 out;
	size_t			 consumed;	/* span of the message last returned */

	struct client_req	*reqs;		/* ring of runs */
	size_t			 reqs_cap;
	size_t			 reqs_head;
	size_t			 reqs_count;
	size_t			 outstanding;	/* replies still to come */
	int			 last_kind;	/* what the last reply answered */
	uint64_t		 last_id;

	uint64_t		*ids;		/* open addressing, 0 is empty */
	size_t			 ids_cap;	/* a power of two */
	size_t			 ids_count;

	struct client_stash	*stash;
	struct client_stash	**stash_tail;
	struct client_stash	*given;		/* returned by jobpool_next, freed next call */

	char			 err[512];
	char			 dead_err[512];
	char			 code[32];
};

/*
 * Why jobpool_connect() or jobpool_redis_submit() last failed in this thread, for
 * jobpool_error(NULL).
 */
static _Thread_local char client_connect_err[512];

static int	client_fail(struct jobpool *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	client_die(struct jobpool *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	client_submit(struct jobpool *, const struct jobpool_submit_opts *,
		    const char *, const char *, const void *, size_t, uint64_t *, int *);
static int	client_send_submit(struct jobpool *, const struct jobpool_submit_opts *,
		    const char *, const char *, const void *, size_t);

/* Record the last failure and return its code. */
static int
client_fail(struct jobpool *jp, int rc, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(jp->err, sizeof jp->err, fmt, ap);
	va_end(ap);
	jp->code[0] = '\0';
	return (rc);
}

/* Record the failure of a call without a connection and return its code. */
int
client_fail_nojp(int rc, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(client_connect_err, sizeof client_connect_err, fmt, ap);
	va_end(ap);
	return (rc);
}

/* Record a failure after which the connection cannot be used, and return its code. */
static int
client_die(struct jobpool *jp, int rc, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(jp->err, sizeof jp->err, fmt, ap);
	va_end(ap);
	memcpy(jp->dead_err, jp->err, sizeof jp->dead_err);
	jp->code[0] = '\0';
	jp->dead = rc;
	return (rc);
}

/* Return the failure that ended the connection, saying it again. */
static int
client_dead(struct jobpool *jp)
{
	memcpy(jp->err, jp->dead_err, sizeof jp->err);
	jp->code[0] = '\0';
	return (jp->dead);
}

/* Milliseconds on the monotonic clock. */
static int64_t
client_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The deadline for a timeout in milliseconds; -1 is forever. */
static int64_t
client_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return (-1);
	return (client_now() + timeout_ms);
}

/* Make room for need more bytes at the end of b; 0 or -1 (ENOMEM). */
static int
client_buf_reserve(struct client_buf *b, size_t need)
{
	size_t	 live, size;
	char	*base;

	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->size - b->len >= need)
		return (0);
	live = b->len - b->off;
	/* Move only when that frees at least as much as it copies: amortised O(1). */
	if (b->off > 0 && b->off >= live) {
		memmove(b->base, b->base + b->off, live);
		b->off = 0;
		b->len = live;
		if (b->size - b->len >= need)
			return (0);
	}
	size = b->size == 0 ? CLIENT_BUF_INIT : b->size;
	while (size - b->len < need) {
		if (size > SIZE_MAX / 2) {
			errno = ENOMEM;
			return (-1);
		}
		size *= 2;
	}
	if ((base = realloc(b->base, size)) == NULL)
		return (-1);
	b->base = base;
	b->size = size;
	return (0);
}

/* Free a buffer's memory. */
static void
client_buf_free(struct client_buf *b)
{
	free(b->base);
	b->base = NULL;
	b->size = b->off = b->len = 0;
}

/* Note a request whose reply is to come. */
static int
client_req_push(struct jobpool *jp, int kind, uint64_t id)
{
	struct client_req	*tail, *reqs;
	size_t			 i, cap;

	if (jp->reqs_count > 0 && kind != CLIENT_REQ_WAIT) {
		tail = &jp->reqs[(jp->reqs_head + jp->reqs_count - 1) % jp->reqs_cap];
		if (tail->kind == kind) {
			tail->n++;
			jp->outstanding++;
			return (0);
		}
	}
	if (jp->reqs_count == jp->reqs_cap) {
		cap = jp->reqs_cap == 0 ? 16 : jp->reqs_cap * 2;
		if ((reqs = calloc(cap, sizeof *reqs)) == NULL)
			return (-1);
		for (i = 0; i < jp->reqs_count; i++)
			reqs[i] = jp->reqs[(jp->reqs_head + i) % jp->reqs_cap];
		free(jp->reqs);
		jp->reqs = reqs;
		jp->reqs_cap = cap;
		jp->reqs_head = 0;
	}
	tail = &jp->reqs[(jp->reqs_head + jp->reqs_count) % jp->reqs_cap];
	tail->kind = kind;
	tail->n = kind == CLIENT_REQ_WAIT ? id : 1;
	jp->reqs_count++;
	jp->outstanding++;
	return (0);
}

/* Take the oldest outstanding request; -1 if there is none. */
static int
client_req_pop(struct jobpool *jp, int *kind, uint64_t *id)
{
	struct client_req	*head;

	if (jp->reqs_count == 0)
		return (-1);
	head = &jp->reqs[jp->reqs_head];
	*kind = head->kind;
	*id = head->kind == CLIENT_REQ_WAIT ? head->n : 0;
	if (head->kind == CLIENT_REQ_WAIT || --head->n == 0) {
		jp->reqs_head = (jp->reqs_head + 1) % jp->reqs_cap;
		jp->reqs_count--;
	}
	jp->outstanding--;
	return (0);
}

/* The slot where id is or would go. */
static size_t
client_ids_slot(const struct jobpool *jp, uint64_t id)
{
	size_t	mask = jp->ids_cap - 1, i;

	i = (size_t)((id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;
	while (jp->ids[i] != 0 && jp->ids[i] != id)
		i = (i + 1) & mask;
	return (i);
}

/* Is id in the set of results to come? */
static int
client_ids_has(const struct jobpool *jp, uint64_t id)
{
	if (jp->ids_count == 0)
		return (0);
	return (jp->ids[client_ids_slot(jp, id)] == id);
}

/* Add id to the set of results to come; 0 or -1 (ENOMEM). */
static int
client_ids_add(struct jobpool *jp, uint64_t id)
{
	uint64_t	*old = jp->ids;
	size_t		 oldcap = jp->ids_cap, i, slot;

	if ((jp->ids_count + 1) * 4 > jp->ids_cap * 3) {
		jp->ids_cap = oldcap == 0 ? 64 : oldcap * 2;
		if ((jp->ids = calloc(jp->ids_cap, sizeof *jp->ids)) == NULL) {
			jp->ids = old;
			jp->ids_cap = oldcap;
			return (-1);
		}
		for (i = 0; i < oldcap; i++) {
			if (old[i] != 0)
				jp->ids[client_ids_slot(jp, old[i])] = old[i];
		}
		free(old);
	}
	slot = client_ids_slot(jp, id);
	if (jp->ids[slot] == 0) {
		jp->ids[slot] = id;
		jp->ids_count++;
	}
	return (0);
}

/* Remove id from the set, shifting back the entries probed past it. */
static void
client_ids_del(struct jobpool *jp, uint64_t id)
{
	size_t	mask, hole, i, home;

	if (jp->ids_count == 0)
		return;
	mask = jp->ids_cap - 1;
	hole = client_ids_slot(jp, id);
	if (jp->ids[hole] != id)
		return;
	jp->ids[hole] = 0;
	jp->ids_count--;
	for (i = (hole + 1) & mask; jp->ids[i] != 0; i = (i + 1) & mask) {
		home = (size_t)((jp->ids[i] * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
		    mask;
		/* Move the entry into the hole unless its home lies in (hole, i]. */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			jp->ids[hole] = jp->ids[i];
			jp->ids[i] = 0;
			hole = i;
		}
	}
}

/* Find the stash entry for id; NULL if none. Unlinks it if found. */
static struct client_stash *
client_stash_take(struct jobpool *jp, uint64_t id)
{
	struct client_stash	**pp, *s;

	for (pp = &jp->stash; (s = *pp) != NULL; pp = &s->next) {
		if (s->res.id != id)
			continue;
		*pp = s->next;
		if (jp->stash_tail == &s->next)
			jp->stash_tail = pp;
		s->next = NULL;
		return (s);
	}
	return (NULL);
}

/* Fill res with an owned copy of a RESULT message; 0 or -1 (ENOMEM). */
static int
client_result_copy(struct jobpool_result *res, const struct jobpool_msg *msg)
{
	memset(res, 0, sizeof *res);
	if ((res->data = malloc(msg->len + 1)) == NULL)
		return (-1);
	if (msg->len > 0)
		memcpy(res->data, msg->data, msg->len);
	((char *)res->data)[msg->len] = '\0';
	res->len = msg->len;
	res->id = msg->id;
	res->status = msg->status;
	snprintf(res->status_name, sizeof res->status_name, "%s", msg->status_name);
	return (0);
}

/* Keep a RESULT for later. */
static int
client_stash_add(struct jobpool *jp, const struct jobpool_msg *msg)
{
	struct client_stash	*s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		goto fail;
	if (client_result_copy(&s->res, msg) != 0) {
		free(s);
		goto fail;
	}
	if (jp->stash == NULL)
		jp->stash_tail = &jp->stash;
	*jp->stash_tail = s;
	jp->stash_tail = &s->next;
	return (0);

fail:
	return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
}

/* Free a stash entry and what it owns. */
static void
client_stash_free(struct client_stash *s)
{
	if (s == NULL)
		return;
	jobpool_result_free(&s->res);
	free(s);
}

/* Write what the socket takes now. */
static int
client_write(struct jobpool *jp)
{
	struct client_buf	*b = &jp->out;
	ssize_t			 n;

	while (b->off < b->len) {
		n = send(jp->fd, b->base + b->off, b->len - b->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (JOBPOOL_OK);
			if (errno == EPIPE || errno == ECONNRESET) {
				jp->wclosed = 1;
				return (client_fail(jp, JOBPOOL_ECLOSED,
				    "connection closed by the daemon"));
			}
			return (client_die(jp, JOBPOOL_ESYS, "write: %s",
			    strerror(errno)));
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return (JOBPOOL_OK);
}

/* Read what has arrived: JOBPOOL_OK (data or EOF), JOBPOOL_EAGAIN, or a failure. */
static int
client_read(struct jobpool *jp)
{
	struct client_buf	*b = &jp->in;
	ssize_t			 n;

	if (client_buf_reserve(b, CLIENT_READ_MIN) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	for (;;) {
		n = recv(jp->fd, b->base + b->len, b->size - b->len, 0);
		if (n > 0) {
			b->len += (size_t)n;
			return (JOBPOOL_OK);
		}
		if (n == 0) {
			jp->eof = 1;
			return (JOBPOOL_OK);
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return (JOBPOOL_EAGAIN);
		if (errno == ECONNRESET) {
			jp->eof = 1;
			return (JOBPOOL_OK);
		}
		return (client_die(jp, JOBPOOL_ESYS, "read: %s", strerror(errno)));
	}
}

/* Wait until the socket is ready for events or the deadline passes. */
static int
client_poll(struct jobpool *jp, short events, int64_t deadline)
{
	struct pollfd	pfd;
	int64_t		left;
	int		timeout;

	if (deadline < 0)
		timeout = -1;
	else {
		left = deadline - client_now();
		if (left <= 0)
			return (client_fail(jp, JOBPOOL_ETIMEDOUT, "timed out"));
		timeout = left > INT_MAX ? INT_MAX : (int)left;
	}
	pfd.fd = jp->fd;
	pfd.events = events;
	pfd.revents = 0;
	if (poll(&pfd, 1, timeout) == -1 && errno != EINTR)
		return (client_die(jp, JOBPOOL_ESYS, "poll: %s", strerror(errno)));
	return (JOBPOOL_OK);
}

/* Make a decoded reply into a message, NUL-terminating its parts in the buffer. */
static void
client_msg_fill(char *base, const struct proto_reply *rep, struct jobpool_msg *msg)
{
	size_t	o;

	memset(msg, 0, sizeof *msg);
	msg->id = rep->id;
	switch (rep->type) {
	case PROTO_REPLY_OK:
	case PROTO_REPLY_ERR:
		msg->type = rep->type == PROTO_REPLY_OK ? JOBPOOL_MSG_OK :
		    JOBPOOL_MSG_ERR;
		o = (size_t)(rep->text - base);
		base[o + rep->textlen] = '\0';
		msg->text = base + o;
		return;
	case PROTO_REPLY_RESULT:
		msg->type = JOBPOOL_MSG_RESULT;
		o = (size_t)(rep->status - base);
		base[o + rep->statuslen] = '\0';
		msg->status_name = base + o;
		msg->status = jobpool_status_parse(msg->status_name);
		break;
	case PROTO_REPLY_DATA:
		msg->type = JOBPOOL_MSG_DATA;
		break;
	}
	o = (size_t)(rep->body - base);
	base[o + rep->size] = '\0';
	msg->data = base + o;
	msg->len = rep->size;
}

/* Note what a message means for the outstanding requests and the set of results. */
static int
client_msg_account(struct jobpool *jp, const struct jobpool_msg *msg)
{
	struct client_stash	*s;
	int			 kind;
	uint64_t		 id;

	if (msg->type == JOBPOOL_MSG_RESULT) {
		client_ids_del(jp, msg->id);
		return (JOBPOOL_OK);
	}
	if (client_req_pop(jp, &kind, &id) != 0)
		return (client_die(jp, JOBPOOL_EPROTO,
		    "protocol error: a reply to no request"));
	jp->last_kind = kind;
	jp->last_id = id;
	if (msg->type != JOBPOOL_MSG_OK)
		return (JOBPOOL_OK);
	if (kind == CLIENT_REQ_SUBMIT_WAIT) {
		if (msg->id == 0)
			return (client_die(jp, JOBPOOL_EPROTO,
			    "protocol error: no job id in 'OK %s'", msg->text));
		id = msg->id;
	} else if (kind != CLIENT_REQ_WAIT)
		return (JOBPOOL_OK);
	/* A RESULT that already arrived is in the stash; do not wait for it twice. */
	for (s = jp->stash; s != NULL; s = s->next) {
		if (s->res.id == id)
			return (JOBPOOL_OK);
	}
	if (client_ids_add(jp, id) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	return (JOBPOOL_OK);
}

/*
 * Get the next message from the socket (not the stash), writing pending output
 * meanwhile. nowait: JOBPOOL_EAGAIN if none is there; else wait until deadline.
 */
static int
client_get(struct jobpool *jp, struct jobpool_msg *msg, int64_t deadline, int nowait)
{
	struct proto_reply	 rep;
	struct client_buf	*b = &jp->in;
	ssize_t			 n;
	short			 events;
	int			 rc;

	b->off += jp->consumed;
	jp->consumed = 0;
	if (b->off == b->len)
		b->off = b->len = 0;
#ifdef __clang_analyzer__
	/*
	 * make analyze: the analyzer does not follow client_die() (variadic), so it takes
	 * its return for JOBPOOL_OK and then reads msg as unset in client_call().
	 */
	memset(msg, 0, sizeof *msg);
#endif

	for (;;) {
		if (jp->dead)
			return (client_dead(jp));
		n = proto_reply_decode(b->base + b->off, b->len - b->off,
		    CLIENT_MAX_BODY, &rep);
		if (n > 0) {
			client_msg_fill(b->base + b->off, &rep, msg);
			jp->consumed = (size_t)n;
			return (client_msg_account(jp, msg));
		}
		if (n < 0)
			return (client_die(jp, JOBPOOL_EPROTO, "protocol error: %s",
			    rep.err));
		/* Nothing whole is left and nothing more can come. */
		if (jp->eof) {
			if (b->len > b->off)
				return (client_die(jp, JOBPOOL_ECLOSED, "connection "
				    "closed by the daemon in the middle of a message"));
			return (client_die(jp, JOBPOOL_ECLOSED,
			    "connection closed by the daemon"));
		}

		/* A write that fails with EPIPE is not the end: a reply may be due. */
		if (jp->out.len > jp->out.off && !jp->wclosed) {
			rc = client_write(jp);
			if (rc != JOBPOOL_OK && rc != JOBPOOL_ECLOSED)
				return (rc);
		}
		rc = client_read(jp);
		if (rc == JOBPOOL_OK)
			continue;
		if (rc != JOBPOOL_EAGAIN)
			return (rc);
		if (nowait)
			return (client_fail(jp, JOBPOOL_EAGAIN, "no message yet"));
		events = POLLIN;
		if (jp->out.len > jp->out.off && !jp->wclosed)
			events |= POLLOUT;
		if ((rc = client_poll(jp, events, deadline)) != JOBPOOL_OK)
			return (rc);
	}
}

/* Turn an ERR message into JOBPOOL_ESERVER with its code and sentence. */
static int
client_server_err(struct jobpool *jp, const struct jobpool_msg *msg)
{
	const char	*text = msg->text, *rest;
	size_t		 n;

	n = strcspn(text, " \t");
	rest = text + n + strspn(text + n, " \t");
	if (*rest != '\0')
		snprintf(jp->err, sizeof jp->err, "%.*s: %s", (int)n, text, rest);
	else
		snprintf(jp->err, sizeof jp->err, "%s", text);
	if (n >= sizeof jp->code)
		n = sizeof jp->code - 1;
	memcpy(jp->code, text, n);
	jp->code[n] = '\0';
	return (JOBPOOL_ESERVER);
}

/* Check a blocking call can start: the connection works and no reply is outstanding. */
static int
client_idle(struct jobpool *jp)
{
	if (jp->dead)
		return (client_dead(jp));
	if (jp->outstanding > 0)
		return (client_fail(jp, JOBPOOL_EINVAL,
		    "pipelined replies are outstanding"));
	return (JOBPOOL_OK);
}

/* Wait for the reply to a blocking request, stashing RESULTs that come first. */
static int
client_call(struct jobpool *jp, struct jobpool_msg *msg)
{
	int	rc;

	for (;;) {
		if ((rc = client_get(jp, msg, -1, 0)) != JOBPOOL_OK)
			return (rc);
		if (msg->type == JOBPOOL_MSG_RESULT) {
			if ((rc = client_stash_add(jp, msg)) != JOBPOOL_OK)
				return (rc);
			continue;
		}
		if (msg->type == JOBPOOL_MSG_ERR)
			return (client_server_err(jp, msg));
		return (JOBPOOL_OK);
	}
}

/* Append a line "<cmd> <id>\n" and note its kind. */
static int
client_send_id(struct jobpool *jp, const char *cmd, uint64_t id, int kind)
{
	struct client_buf	*b = &jp->out;
	size_t			 n = strlen(cmd);
	char			*p;

	if (id == 0)
		return (client_fail(jp, JOBPOOL_EINVAL, "job id 0"));
	if (client_buf_reserve(b, n + 24) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	p = b->base + b->len;
	memcpy(p, cmd, n);
	p += n;
	*p++ = ' ';
	p += proto_fmt_u64(p, id);
	*p++ = '\n';
	if (client_req_push(jp, kind, id) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	b->len = (size_t)(p - b->base);
	return (JOBPOOL_OK);
}

/* Write the default socket path into buf. */
char *
jobpool_default_socket(char *buf, size_t len)
{
	const char	*env;
	int		 n;

	if (buf == NULL || len == 0)
		return (NULL);
	if ((env = getenv("JOBPOOL_SOCKET")) != NULL && *env != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "%s", "/run/jobpool/jobpool.sock");
	else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && *env != '\0')
		n = snprintf(buf, len, "%s/jobpool/jobpool.sock", env);
	else
		n = snprintf(buf, len, "/tmp/jobpool-%lu/jobpool.sock",
		    (unsigned long)getuid());
	if (n < 0 || (size_t)n >= len)
		return (NULL);
	return (buf);
}

/* Connect to the daemon. */
struct jobpool *
jobpool_connect(const char *path)
{
	struct sockaddr_un	 sun;
	struct jobpool		*jp = NULL;
	char			 def[sizeof sun.sun_path];
	int			 fd = -1, flags, saved;
	const char		*what = "connect";

	client_connect_err[0] = '\0';
	if (path == NULL && (path = jobpool_default_socket(def, sizeof def)) == NULL) {
		errno = ENAMETOOLONG;
		path = "(default socket)";
		goto fail;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	strcpy(sun.sun_path, path);

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1) {
		what = "socket";
		goto fail;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		goto fail;
	/* Connect blocking: a full backlog makes a non-blocking connect fail. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		goto fail;
	what = "fcntl";
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
#ifdef SO_NOSIGPIPE
	flags = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &flags, sizeof flags) == -1)
		goto fail;
#endif
	what = "malloc";
	if ((jp = calloc(1, sizeof *jp)) == NULL)
		goto fail;
	jp->fd = fd;
	return (jp);

fail:
	saved = errno;
	snprintf(client_connect_err, sizeof client_connect_err, "%s %s: %s", what,
	    path, strerror(saved));
	if (fd != -1)
		close(fd);
	errno = saved;
	return (NULL);
}

/* Close the connection and free everything. */
void
jobpool_close(struct jobpool *jp)
{
	struct client_stash	*s, *next;

	if (jp == NULL)
		return;
	if (jp->fd != -1)
		close(jp->fd);
	client_buf_free(&jp->in);
	client_buf_free(&jp->out);
	free(jp->reqs);
	free(jp->ids);
	for (s = jp->stash; s != NULL; s = next) {
		next = s->next;
		client_stash_free(s);
	}
	client_stash_free(jp->given);
	free(jp);
}

/* The connection's descriptor. */
int
jobpool_fd(struct jobpool *jp)
{
	return (jp == NULL ? -1 : jp->fd);
}

/*
 * The last failure as a sentence; for NULL, why jobpool_connect() or
 * jobpool_redis_submit() last failed.
 */
const char *
jobpool_error(struct jobpool *jp)
{
	if (jp == NULL)
		return (client_connect_err[0] != '\0' ? client_connect_err :
		    "not connected");
	return (jp->err);
}

/* The daemon's error code after JOBPOOL_ESERVER. */
const char *
jobpool_error_code(struct jobpool *jp)
{
	return (jp == NULL ? "" : jp->code);
}

/* Parse a status word. */
enum jobpool_status
jobpool_status_parse(const char *word)
{
	if (word == NULL)
		return (JOBPOOL_JOB_UNKNOWN);
	if (strcmp(word, "ok") == 0)
		return (JOBPOOL_JOB_OK);
	if (strcmp(word, "failed") == 0)
		return (JOBPOOL_JOB_FAILED);
	if (strcmp(word, "timeout") == 0)
		return (JOBPOOL_JOB_TIMEOUT);
	if (strcmp(word, "cancelled") == 0)
		return (JOBPOOL_JOB_CANCELLED);
	return (JOBPOOL_JOB_UNKNOWN);
}

/* The word for a status. */
const char *
jobpool_status_name(enum jobpool_status status)
{
	switch (status) {
	case JOBPOOL_JOB_OK:
		return ("ok");
	case JOBPOOL_JOB_FAILED:
		return ("failed");
	case JOBPOOL_JOB_TIMEOUT:
		return ("timeout");
	case JOBPOOL_JOB_CANCELLED:
		return ("cancelled");
	case JOBPOOL_JOB_UNKNOWN:
		break;
	}
	return ("unknown");
}

/* Send PING and read its reply. */
int
jobpool_ping(struct jobpool *jp)
{
	struct jobpool_msg	msg;
	int			rc;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if ((rc = client_idle(jp)) != JOBPOOL_OK)
		return (rc);
	if ((rc = jobpool_send_line(jp, "PING")) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_call(jp, &msg)) != JOBPOOL_OK)
		return (rc);
	if (msg.type != JOBPOOL_MSG_OK)
		return (client_die(jp, JOBPOOL_EPROTO, "protocol error: PING "
		    "answered with DATA"));
	return (JOBPOOL_OK);
}

/* Submit one job and read its id. */
int
jobpool_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const void *data, size_t len, uint64_t *id)
{
	return (client_submit(jp, opts, NULL, NULL, data, len, id, NULL));
}

/* The same, with a key (NULL: none). */
int
jobpool_submit_key(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const void *data, size_t len, uint64_t *id)
{
	return (client_submit(jp, opts, key, NULL, data, len, id, NULL));
}

/* The same, with a key and an idempotency token (each NULL: none). */
int
jobpool_submit_idem(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const char *idem, const void *data, size_t len, uint64_t *id,
    int *dup)
{
	return (client_submit(jp, opts, key, idem, data, len, id, dup));
}

/* Does an OK's text (the words after the id) hold the word w? */
static int
client_ok_has(const char *text, const char *w)
{
	size_t	n = strlen(w), k;

	while (text != NULL && *text != '\0') {
		while (*text == ' ' || *text == '\t')
			text++;
		k = strcspn(text, " \t");
		if (k == n && memcmp(text, w, n) == 0)
			return (1);
		text += k;
	}
	return (0);
}

/* Submit one job with a key and a token (NULL: none) and read its id. */
static int
client_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const char *idem, const void *data, size_t len, uint64_t *id,
    int *dup)
{
	struct jobpool_msg	msg;
	int			rc;

	if (id != NULL)
		*id = 0;
	if (dup != NULL)
		*dup = 0;
	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if ((rc = client_idle(jp)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_send_submit(jp, opts, key, idem, data, len)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_call(jp, &msg)) != JOBPOOL_OK)
		return (rc);
	if (msg.type != JOBPOOL_MSG_OK || msg.id == 0)
		return (client_die(jp, JOBPOOL_EPROTO, "protocol error: SUBMIT "
		    "answered without a job id"));
	if (id != NULL)
		*id = msg.id;
	if (dup != NULL)
		*dup = client_ok_has(msg.text, "dup");
	return (JOBPOOL_OK);
}

/* Wait for a job's result. */
int
jobpool_wait(struct jobpool *jp, uint64_t id, int timeout_ms,
    struct jobpool_result *res)
{
	struct jobpool_msg	 msg;
	struct client_stash	*s;
	int64_t			 deadline;
	int			 rc, mine;

	if (res != NULL)
		memset(res, 0, sizeof *res);
	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (res == NULL || id == 0)
		return (client_fail(jp, JOBPOOL_EINVAL, "no result or job id 0"));
	/* A result already here is handed out even if the connection has died since. */
	if ((s = client_stash_take(jp, id)) != NULL) {
		*res = s->res;
		free(s);
		return (JOBPOOL_OK);
	}
	if (jp->dead)
		return (client_dead(jp));
	deadline = client_deadline(timeout_ms);

	/*
	 * The only reply that may be outstanding is that of a WAIT for this job, sent by
	 * an earlier call that timed out.
	 */
	mine = jp->outstanding == 1 && jp->reqs[jp->reqs_head].kind ==
	    CLIENT_REQ_WAIT && jp->reqs[jp->reqs_head].n == id;
	if (jp->outstanding > 0 && !mine)
		return (client_fail(jp, JOBPOOL_EINVAL,
		    "pipelined replies are outstanding"));
	if (!mine && !client_ids_has(jp, id)) {
		if ((rc = client_send_id(jp, "WAIT", id, CLIENT_REQ_WAIT)) != 0)
			return (rc);
	}

	for (;;) {
		rc = client_get(jp, &msg, deadline, 0);
		if (rc == JOBPOOL_ETIMEDOUT)
			return (client_fail(jp, rc, "timed out waiting for job %llu",
			    (unsigned long long)id));
		if (rc != JOBPOOL_OK)
			return (rc);
		if (msg.type == JOBPOOL_MSG_RESULT && msg.id == id) {
			if (client_result_copy(res, &msg) != 0)
				return (client_die(jp, JOBPOOL_ESYS, "malloc: %s",
				    strerror(errno)));
			return (JOBPOOL_OK);
		}
		if (msg.type == JOBPOOL_MSG_RESULT) {
			if ((rc = client_stash_add(jp, &msg)) != JOBPOOL_OK)
				return (rc);
			continue;
		}
		/* A reply: the only one possible is to our WAIT. */
		if (msg.type == JOBPOOL_MSG_ERR)
			return (client_server_err(jp, &msg));
		if (msg.type != JOBPOOL_MSG_OK)
			return (client_die(jp, JOBPOOL_EPROTO, "protocol error: WAIT "
			    "answered with DATA"));
	}
}

/* Free what a result owns. */
void
jobpool_result_free(struct jobpool_result *res)
{
	if (res == NULL)
		return;
	free(res->data);
	res->data = NULL;
	res->len = 0;
}

/* Cancel a job. */
int
jobpool_cancel(struct jobpool *jp, uint64_t id)
{
	struct jobpool_msg	msg;
	int			rc;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if ((rc = client_idle(jp)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_send_id(jp, "CANCEL", id, CLIENT_REQ_OTHER)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_call(jp, &msg)) != JOBPOOL_OK)
		return (rc);
	if (msg.type != JOBPOOL_MSG_OK)
		return (client_die(jp, JOBPOOL_EPROTO, "protocol error: CANCEL "
		    "answered with DATA"));
	return (JOBPOOL_OK);
}

/* Copy the word [s, e) into dst of size n, truncating. */
static void
client_word(char *dst, size_t n, const char *s, const char *e)
{
	size_t	len = (size_t)(e - s);

	if (len >= n)
		len = n - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* Ask for a job's state. */
int
jobpool_job_status(struct jobpool *jp, uint64_t id, struct jobpool_job_info *info)
{
	struct jobpool_msg	 msg;
	const char		*p, *e, *eq;
	uint64_t		 u;
	int64_t			 i;
	int			 rc;

	if (info != NULL)
		memset(info, 0, sizeof *info);
	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (info == NULL)
		return (client_fail(jp, JOBPOOL_EINVAL, "no job info"));
	if ((rc = client_idle(jp)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_send_id(jp, "STATUS", id, CLIENT_REQ_OTHER)) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_call(jp, &msg)) != JOBPOOL_OK)
		return (rc);
	if (msg.type != JOBPOOL_MSG_OK)
		return (client_die(jp, JOBPOOL_EPROTO, "protocol error: STATUS "
		    "answered with DATA"));

	info->id = id;
	/* key=value words; unknown keys are for later versions and ignored. */
	for (p = msg.text; *p != '\0'; p = e) {
		p += strspn(p, " \t");
		e = p + strcspn(p, " \t");
		if (p == e)
			break;
		if ((eq = memchr(p, '=', (size_t)(e - p))) == NULL)
			continue;
		if (eq - p == 2 && memcmp(p, "id", 2) == 0) {
			if (proto_parse_u64(eq + 1, (size_t)(e - eq - 1), &u) == 0)
				info->id = u;
		} else if (eq - p == 5 && memcmp(p, "queue", 5) == 0)
			client_word(info->queue, sizeof info->queue, eq + 1, e);
		else if (eq - p == 5 && memcmp(p, "state", 5) == 0)
			client_word(info->state, sizeof info->state, eq + 1, e);
		else if (eq - p == 4 && memcmp(p, "prio", 4) == 0) {
			if (proto_parse_i64(eq + 1, (size_t)(e - eq - 1), &i) == 0)
				info->priority = i > INT_MAX ? INT_MAX :
				    i < INT_MIN ? INT_MIN : (int)i;
		} else if (eq - p == 8 && memcmp(p, "attempts", 8) == 0) {
			if (proto_parse_u64(eq + 1, (size_t)(e - eq - 1), &u) == 0)
				info->attempts = u > UINT_MAX ? UINT_MAX :
				    (unsigned)u;
		}
	}
	return (JOBPOOL_OK);
}

/* Fetch the STATS body. */
int
jobpool_stats(struct jobpool *jp, char **text, size_t *len)
{
	struct jobpool_msg	msg;
	int			rc;

	if (text != NULL)
		*text = NULL;
	if (len != NULL)
		*len = 0;
	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (text == NULL)
		return (client_fail(jp, JOBPOOL_EINVAL, "no text"));
	if ((rc = client_idle(jp)) != JOBPOOL_OK)
		return (rc);
	if ((rc = jobpool_send_line(jp, "STATS")) != JOBPOOL_OK)
		return (rc);
	if ((rc = client_call(jp, &msg)) != JOBPOOL_OK)
		return (rc);
	if (msg.type != JOBPOOL_MSG_DATA)
		return (client_die(jp, JOBPOOL_EPROTO, "protocol error: STATS "
		    "answered without DATA"));
	if ((*text = malloc(msg.len + 1)) == NULL)
		return (client_fail(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	memcpy(*text, msg.data, msg.len + 1);
	if (len != NULL)
		*len = msg.len;
	return (JOBPOOL_OK);
}

/* Append a SUBMIT and its body to the output buffer. */
int
jobpool_send_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const void *data, size_t len)
{
	return (client_send_submit(jp, opts, NULL, NULL, data, len));
}

/* The same with a key (NULL: none), which goes as key=. */
int
jobpool_send_submit_key(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const void *data, size_t len)
{
	return (client_send_submit(jp, opts, key, NULL, data, len));
}

/* The same with a key and an idempotency token (each NULL: none). */
int
jobpool_send_submit_idem(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const char *idem, const void *data, size_t len)
{
	return (client_send_submit(jp, opts, key, idem, data, len));
}

/* Is key a job key the daemon takes: 1 to PROTO_MAX_KEY bytes of printable ASCII? */
static int
client_valid_key(const char *key, size_t klen)
{
	size_t	i;

	if (klen == 0 || klen > PROTO_MAX_KEY)
		return (0);
	for (i = 0; i < klen; i++) {
		if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
			return (0);
	}
	return (1);
}

/* A SUBMIT with a key and a token (NULL: none) into the output buffer. */
static int
client_send_submit(struct jobpool *jp, const struct jobpool_submit_opts *opts,
    const char *key, const char *idem, const void *data, size_t len)
{
	struct client_buf	*b;
	const char		*queue = "default";
	size_t			 qlen, klen = 0, ilen = 0;
	int			 flags = 0, kind;
	char			*p;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (jp->dead)
		return (client_dead(jp));
	if (opts != NULL) {
		if (opts->queue != NULL)
			queue = opts->queue;
		flags = opts->flags;
	}
	qlen = strnlen(queue, PROTO_MAX_NAME + 1);
	if (!proto_valid_name(queue, qlen))
		return (client_fail(jp, JOBPOOL_EINVAL, "bad queue name"));
	if (flags & ~(JOBPOOL_WAIT | JOBPOOL_NONBLOCK))
		return (client_fail(jp, JOBPOOL_EINVAL, "unknown submit flags"));
	if (key != NULL) {
		klen = strnlen(key, PROTO_MAX_KEY + 1);
		if (!client_valid_key(key, klen))
			return (client_fail(jp, JOBPOOL_EINVAL, "bad key: 1 to %d bytes "
			    "of printable ASCII, no space", PROTO_MAX_KEY));
	}
	if (idem != NULL && !proto_valid_idem(idem,
	    (ilen = strnlen(idem, PROTO_MAX_IDEM + 1))))
		return (client_fail(jp, JOBPOOL_EINVAL, "bad idempotency token: 1 to "
		    "%d of " PROTO_IDEM_CHARS, PROTO_MAX_IDEM));
	if (data == NULL && len > 0)
		return (client_fail(jp, JOBPOOL_EINVAL, "no data"));
	if ((uint64_t)len > UINT64_C(9999999999999999999) ||
	    len > SIZE_MAX - CLIENT_SUBMIT_LINE)
		return (client_fail(jp, JOBPOOL_EINVAL, "data too large"));

	b = &jp->out;
	if (client_buf_reserve(b, CLIENT_SUBMIT_LINE + 5 + klen + len) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	p = b->base + b->len;
	memcpy(p, "SUBMIT ", 7);
	p += 7;
	memcpy(p, queue, qlen);
	p += qlen;
	*p++ = ' ';
	p += proto_fmt_u64(p, len);
	if (opts != NULL && opts->priority != 0) {
		memcpy(p, " prio=", 6);
		p += 6;
		if (opts->priority < 0) {
			*p++ = '-';
			p += proto_fmt_u64(p, (uint64_t)(-(int64_t)opts->priority));
		} else
			p += proto_fmt_u64(p, (uint64_t)opts->priority);
	}
	if (opts != NULL && opts->delay_ms != 0) {
		memcpy(p, " delay=", 7);
		p += 7;
		p += proto_fmt_u64(p, opts->delay_ms);
	}
	if (opts != NULL && opts->timeout_ms != 0) {
		memcpy(p, " timeout=", 9);
		p += 9;
		p += proto_fmt_u64(p, opts->timeout_ms);
	}
	if (klen > 0) {
		memcpy(p, " key=", 5);
		p += 5;
		memcpy(p, key, klen);
		p += klen;
	}
	if (flags & JOBPOOL_WAIT) {
		memcpy(p, " wait", 5);
		p += 5;
	}
	if (flags & JOBPOOL_NONBLOCK) {
		memcpy(p, " nonblock", 9);
		p += 9;
	}
	if (ilen > 0) {
		memcpy(p, " idem=", 6);
		p += 6;
		memcpy(p, idem, ilen);
		p += ilen;
	}
	*p++ = '\n';
	if (len > 0)
		memcpy(p, data, len);
	p += len;
	*p++ = '\n';

	kind = (flags & JOBPOOL_WAIT) ? CLIENT_REQ_SUBMIT_WAIT : CLIENT_REQ_OTHER;
	if (client_req_push(jp, kind, 0) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	b->len = (size_t)(p - b->base);
	return (JOBPOOL_OK);
}

/* Append a WAIT to the output buffer. */
int
jobpool_send_wait(struct jobpool *jp, uint64_t id)
{
	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (jp->dead)
		return (client_dead(jp));
	return (client_send_id(jp, "WAIT", id, CLIENT_REQ_WAIT));
}

/* Append a raw request line to the output buffer. */
int
jobpool_send_line(struct jobpool *jp, const char *line)
{
	struct proto_request	 req;
	struct client_buf	*b;
	size_t			 n;
	ssize_t			 rc;
	int			 kind = CLIENT_REQ_OTHER;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (jp->dead)
		return (client_dead(jp));
	if (line == NULL)
		return (client_fail(jp, JOBPOOL_EINVAL, "no line"));
	n = strnlen(line, PROTO_MAX_LINE + 1);
	if (n > PROTO_MAX_LINE)
		return (client_fail(jp, JOBPOOL_EINVAL, "line longer than %d bytes",
		    PROTO_MAX_LINE));
	if (memchr(line, '\n', n) != NULL)
		return (client_fail(jp, JOBPOOL_EINVAL, "newline in line"));

	b = &jp->out;
	if (client_buf_reserve(b, n + 1) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	memcpy(b->base + b->len, line, n);
	b->base[b->len + n] = '\n';

	/* Decode it as the daemon will, to refuse garbage and to notice a WAIT. */
	rc = proto_request_decode(b->base + b->len, n + 1, 0, &req);
	if (rc < 0)
		return (client_fail(jp, JOBPOOL_EINVAL, "bad line: %s", req.err));
	if (rc > 0 && req.cmd == PROTO_WAIT)
		kind = CLIENT_REQ_WAIT;
	if (client_req_push(jp, kind, req.id) != 0)
		return (client_die(jp, JOBPOOL_ESYS, "malloc: %s", strerror(errno)));
	b->len += n + 1;
	return (JOBPOOL_OK);
}

/* Bytes waiting in the output buffer. */
size_t
jobpool_pending(struct jobpool *jp)
{
	return (jp == NULL ? 0 : jp->out.len - jp->out.off);
}

/* Write the output buffer, reading what arrives meanwhile. */
int
jobpool_flush(struct jobpool *jp, int timeout_ms)
{
	int64_t	deadline;
	short	events;
	int	rc;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (jp->dead)
		return (client_dead(jp));
	deadline = client_deadline(timeout_ms);
	for (;;) {
		if (jp->out.off == jp->out.len)
			return (JOBPOOL_OK);
		if (jp->wclosed)
			return (client_fail(jp, JOBPOOL_ECLOSED,
			    "connection closed by the daemon"));
		if ((rc = client_write(jp)) != JOBPOOL_OK)
			return (rc);
		if (jp->out.off == jp->out.len)
			return (JOBPOOL_OK);
		/* The daemon may be waiting for us to read before it reads again. */
		if (!jp->eof) {
			rc = client_read(jp);
			if (rc == JOBPOOL_OK)
				continue;
			if (rc != JOBPOOL_EAGAIN)
				return (rc);
		}
		if (timeout_ms == 0)
			return (client_fail(jp, JOBPOOL_EAGAIN,
			    "the socket takes no more now"));
		events = POLLOUT;
		if (!jp->eof)
			events |= POLLIN;
		if ((rc = client_poll(jp, events, deadline)) != JOBPOOL_OK)
			return (rc);
	}
}

/* The next message from the daemon. */
int
jobpool_next(struct jobpool *jp, struct jobpool_msg *msg, int timeout_ms)
{
	struct client_stash	*s;

	if (jp == NULL)
		return (JOBPOOL_EINVAL);
	if (msg == NULL)
		return (client_fail(jp, JOBPOOL_EINVAL, "no message"));
	memset(msg, 0, sizeof *msg);
	client_stash_free(jp->given);
	jp->given = NULL;

	/* RESULTs a blocking call put aside come first. */
	if ((s = jp->stash) != NULL) {
		if ((jp->stash = s->next) == NULL)
			jp->stash_tail = &jp->stash;
		s->next = NULL;
		jp->given = s;
		msg->type = JOBPOOL_MSG_RESULT;
		msg->id = s->res.id;
		msg->status = s->res.status;
		msg->status_name = s->res.status_name;
		msg->data = s->res.data;
		msg->len = s->res.len;
		return (JOBPOOL_OK);
	}
	return (client_get(jp, msg, client_deadline(timeout_ms), timeout_ms == 0));
}
