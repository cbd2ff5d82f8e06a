/*
 * checkconn.h: a connection for the suites that run the daemon's server side without a
 * peer (check_dispatch, check_chain): its replies stay in its output, and conn_text()
 * reads what it was sent since the last call. Include after jobpoold.h, once
 * master_base exists.
 */

#ifndef CHECKCONN_H
#define CHECKCONN_H

#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

/* A connection whose replies stay in its output (no peer reads them). */
static struct conn *
conn_make(void)
{
	struct conn	*c;
	int		 sv[2];

	ck_assert_ptr_nonnull(c = calloc(1, sizeof *c));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	c->bev = bufferevent_socket_new(master_base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(c->bev);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	c->refs = 1;
	c->id = 1;
	return (c);
}

/*
 * What the connection has been sent since the last call (the caller frees it). The
 * front of a bufferevent's output buffer is frozen (only the bufferevent may drain it,
 * and evbuffer_copyout refuses it): the text is peeked at, and the part already seen
 * is remembered (one connection per test: reset tc_seen in setup).
 */
static size_t	tc_seen;

static char *
conn_text(struct conn *c)
{
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec	 v[64];
	size_t			 n = evbuffer_get_length(out), off = 0;
	char			*s = malloc(n + 1);
	int			 i, nv;

	ck_assert_ptr_nonnull(s);
	nv = evbuffer_peek(out, -1, NULL, v, 64);
	ck_assert_int_le(nv, 64);
	for (i = 0; i < nv; i++) {
		memcpy(s + off, v[i].iov_base, v[i].iov_len);
		off += v[i].iov_len;
	}
	ck_assert_uint_eq(off, n);
	s[n] = '\0';
	ck_assert_uint_ge(n, tc_seen);
	memmove(s, s + tc_seen, n - tc_seen + 1);
	tc_seen = n;
	return (s);
}

#define ck_conn_text(c, want) do {					\
	char *got_ = conn_text(c);					\
	ck_assert_str_eq(got_, (want));					\
	free(got_);							\
} while (0)

#endif
