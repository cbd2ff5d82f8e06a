/*
 * check_server.c: unit tests for daemon/server.c: the listening socket and the request
 * handling of lib/PROTOCOL.md (whose jobs a peer may act on too), over real Unix
 * sockets in a private directory, with the master's event loop run until each reply is
 * there.
 *
 * The config comes from config_load() on a file written here, so every default is
 * config.c's own. No worker is started: jobs wait in their queue, which is what the
 * tests of SUBMIT, STATUS, CANCEL and backpressure need.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "journal.h"
#include "priv.h"

#define WAIT_MS		10000	/* the longest any wait may take; never reached normally */

#include "checkloop.h"
#include "checkmaster.h"
#define QUIET_MS	300	/* how long "no reply" is watched for */

/* A client: its socket and what it has received and not yet consumed. */
struct client {
	int	fd;
	char	buf[65536];
	size_t	len;
	int	eof;
};

static struct client	 cl[3];

/* Settings a test case adds to conf_text (setup_crowd). */
static const char	*conf_more = "";

static const char conf_text[] =
	"socket = \"%s\";\n"
	"%s"
	"max_payload = 1024;\n"
	"queues = (\n"
	"\t{ name = \"q\"; handler = \"echo\"; workers = 1; max_jobs = 2; },\n"
	"\t{ name = \"other\"; handler = \"echo\"; workers = 1; },\n"
	"\t{ name = \"a\"; handler = \"echo\"; workers = 1; max_jobs = 1; },\n"
	"\t{ name = \"b\"; handler = \"echo\"; workers = 1; max_jobs = 1; },\n"
	"\t{ name = \"c\"; handler = \"echo\"; workers = 1; },\n"
	"\t{ name = \"d\"; handler = \"echo\"; workers = 1; },\n"
	/* Full at 4 jobs, producers let go below 3: room they wait for at 3. */
	"\t{ name = \"e\"; handler = \"echo\"; workers = 1; max_jobs = 4; }\n"
	");\n";

/* The master's start-up, without workers: config, base, queues, listener. */
static void
setup(void)
{
	struct config	*cf;
	FILE		*fp;
	char		*cause = NULL;
	int		 k;

	checkmaster_dir("check_server");
	ck_assert_ptr_nonnull(fp = fopen(tconf, "w"));
	fprintf(fp, conf_text, tsock, conf_more);
	ck_assert_int_eq(fclose(fp), 0);
	cf = config_load(tconf, &cause);
	ck_assert_msg(cf != NULL, "config: %s", cause);

	master_config = cf;
	master_pid = getpid();
	master_stopping = 0;
	stats_init();
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	ck_assert_msg(queues_create(cf, &cause) == 0, "queues: %s", cause);
	ck_assert_msg(server_listen(cf, &cause) == 0, "server_listen: %s", cause);
	memset(cl, 0, sizeof cl);
	for (k = 0; k < 3; k++)
		cl[k].fd = -1;
}

static void
teardown(void)
{
	int	k;

	for (k = 0; k < 3; k++) {
		if (cl[k].fd != -1)
			close(cl[k].fd);
	}
	server_close_all();
	server_close_listener();
	queues_free();
	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
	config_free(master_config);
	master_config = NULL;
	master_stopping = 0;
	unlink(tconf);
	ck_assert_msg(access(tsock, F_OK) == -1, "the socket was not removed");
	ck_assert_int_eq(rmdir(tdir), 0);
}

/* ----- the client side ----- */

/* Connect client k; the server accepts it in the event loop. */
static struct client *
cl_connect(int k)
{
	struct sockaddr_un	sun;
	struct client		*c = &cl[k];

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", tsock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(c->fd, -1);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sun, sizeof sun), 0);
	c->len = 0;
	c->eof = 0;
	return (c);
}

static void
cl_send(struct client *c, const char *data, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = send(c->fd, data, len, MSG_NOSIGNAL);
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		data += n;
		len -= (size_t)n;
	}
}

#define cl_sends(c, s)	cl_send((c), (s), strlen(s))

/* Read what has arrived, without waiting. */
static void
cl_pump(struct client *c)
{
	ssize_t	n;

	while (!c->eof && c->len < sizeof c->buf) {
		n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
		if (n == 0)
			c->eof = 1;
		if (n <= 0)
			break;
		c->len += (size_t)n;
	}
}

/* Has c received n bytes (or the end)? */
static int
cl_has(struct client *c, size_t n)
{
	cl_pump(c);
	return (c->len >= n || c->eof);
}

/* Has c received a whole line? */
static int
cl_has_line(struct client *c)
{
	cl_pump(c);
	return (memchr(c->buf, '\n', c->len) != NULL || c->eof);
}

/* The next line c received, without its newline (in a static buffer). */
static const char *
cl_line(struct client *c)
{
	static char	 line[4096];
	char		*nl;
	size_t		 n;

	run_until(cl_has_line(c));
	nl = memchr(c->buf, '\n', c->len);
	ck_assert_msg(nl != NULL, "connection closed before a whole line: '%.*s'",
	    (int)c->len, c->buf);
	n = (size_t)(nl - c->buf);
	ck_assert_uint_lt(n, sizeof line);
	memcpy(line, c->buf, n);
	line[n] = '\0';
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	return (line);
}

#define cl_expect(c, want)	ck_assert_str_eq(cl_line(c), (want))

/* The next line must start with prefix. */
static void
cl_expect_prefix(struct client *c, const char *prefix)
{
	const char	*l = cl_line(c);

	ck_assert_msg(strncmp(l, prefix, strlen(prefix)) == 0, "got '%s', wanted '%s...'",
	    l, prefix);
}

/* Nothing more arrives for a while (and the connection stays open). */
static void
cl_expect_quiet(struct client *c)
{
	run_for(QUIET_MS);
	cl_pump(c);
	ck_assert_msg(c->len == 0 && !c->eof, "unexpected: '%.*s'%s", (int)c->len,
	    c->buf, c->eof ? " and EOF" : "");
}

/* The server closes the connection (after what was already read). */
static void
cl_expect_eof(struct client *c)
{
	run_until(cl_has(c, sizeof c->buf));
	ck_assert_msg(c->eof && c->len == 0, "no EOF; got '%.*s'", (int)c->len, c->buf);
}

/* SUBMIT and read its OK <id>. */
static uint64_t
cl_submit(struct client *c, const char *queue, const char *body, const char *opts)
{
	char			 req[256];
	const char		*l;
	unsigned long long	 id;

	snprintf(req, sizeof req, "SUBMIT %s %zu%s%s\n%s\n", queue, strlen(body),
	    opts[0] != '\0' ? " " : "", opts, body);
	cl_sends(c, req);
	l = cl_line(c);
	ck_assert_msg(sscanf(l, "OK %llu", &id) == 1, "SUBMIT: got '%s'", l);
	ck_assert_uint_gt(id, 0);
	return (id);
}

/* ----- tests ----- */

START_TEST(test_ping)
{
	struct client	*c = cl_connect(0);

	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
	/* A \r before the newline is ignored; requests may be pipelined. */
	cl_sends(c, "PING\r\nPING\n");
	cl_expect(c, "OK pong");
	cl_expect(c, "OK pong");
	ck_assert_uint_eq(server_nconns(), 1);
	ck_assert(server_idle());
}
END_TEST

/*
 * A reply goes out in the loop pass that read its request: no pass waits for the
 * socket to say it is writable first (bench W3: that cost two epoll_ctl calls and a
 * pass per reply). One pass, woken by the request, must leave the answer in the socket.
 */
START_TEST(test_reply_same_pass)
{
	struct client	*c = cl_connect(0);
	int		 k;

	run_until(server_nconns() == 1);
	for (k = 0; k < 3; k++) {
		cl_sends(c, k == 1 ? "PING\nPING\n" : "PING\n");
		/* Blocks until the request is readable; the tick is not armed. */
		event_base_loop(master_base, EVLOOP_ONCE);
		cl_pump(c);
		ck_assert_msg(c->len == (k == 1 ? 16u : 8u) &&
		    memcmp(c->buf, "OK pong\nOK pong\n", c->len) == 0,
		    "round %d: after one pass, the client has '%.*s'", k, (int)c->len, c->buf);
		c->len = 0;
	}
}
END_TEST

/*
 * A client that does not read: the replies the socket will not take wait in the output
 * and go out, in order, as it reads; then replies go out in their own pass again.
 */
START_TEST(test_reply_socket_full)
{
	struct client	*c = cl_connect(0);
	char		*req, line[8];
	size_t		 n = 150000, got = 0, k;
	int		 sz = 4096;

	run_until(server_nconns() == 1);
	/* A small receive buffer: the daemon's socket fills after a few KiB. */
	ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
	ck_assert_ptr_nonnull(req = malloc(n * 5));
	for (k = 0; k < n; k++)
		memcpy(req + k * 5, "PING\n", 5);
	/* 750,000 bytes of requests, 1,200,000 of replies: under max_output (4 MiB). */
	{
		size_t	off = 0;

		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		while (off < n * 5) {
			ssize_t	w = send(c->fd, req + off, n * 5 - off, MSG_NOSIGNAL);

			if (w > 0)
				off += (size_t)w;
			else {
				ck_assert_int_eq(errno, EAGAIN);
				run_for(5);
			}
		}
	}
	run_for(50);
	ck_assert(!server_idle());	/* replies wait in the daemon */
	while (got < n) {
		run_until(cl_has(c, 8));
		ck_assert(!c->eof);
		for (k = 0; k + 8 <= c->len; k += 8) {
			memcpy(line, c->buf + k, 8);
			ck_assert_msg(memcmp(line, "OK pong\n", 8) == 0, "reply %zu: '%.8s'",
			    got, line);
			got++;
		}
		memmove(c->buf, c->buf + k, c->len - k);
		c->len -= k;
	}
	ck_assert_uint_eq(c->len, 0);
	run_until(server_idle());
	free(req);
	/* The socket took it all: the next reply goes out in its own pass. */
	cl_sends(c, "PING\n");
	event_base_loop(master_base, EVLOOP_ONCE);
	cl_pump(c);
	ck_assert_msg(c->len == 8 && memcmp(c->buf, "OK pong\n", 8) == 0,
	    "after one pass, the client has '%.*s'", (int)c->len, c->buf);
}
END_TEST

START_TEST(test_submit_status_cancel)
{
	struct client	*c = cl_connect(0);
	struct queue	*q = queue_find("q");
	char		 want[256];
	uint64_t	 id, id2;

	id = cl_submit(c, "q", "hello", "");
	ck_assert_ptr_nonnull(job_find(id));
	ck_assert_uint_eq(queue_depth(q), 1);
	ck_assert_uint_eq(q->bytes, 5);
	ck_assert_int_eq(memcmp(job_find(id)->data, "hello", 5), 0);
	/* A queue with no worker: it waits, with config.c's defaults. */
	snprintf(want, sizeof want, "STATUS %llu\n", (unsigned long long)id);
	cl_sends(c, want);
	snprintf(want, sizeof want, "OK id=%llu queue=q state=queued prio=0 attempts=0 "
	    "max_attempts=4 timeout_ms=0", (unsigned long long)id);
	cl_expect(c, want);

	/* Options: a priority, a timeout and a delay. */
	id2 = cl_submit(c, "q", "abc", "prio=2 timeout=500 delay=600000");
	ck_assert_uint_eq(id2, id + 1);
	snprintf(want, sizeof want, "STATUS %llu\n", (unsigned long long)id2);
	cl_sends(c, want);
	snprintf(want, sizeof want, "OK id=%llu queue=q state=delayed prio=2 attempts=0 "
	    "max_attempts=4 timeout_ms=500 due_in_ms=", (unsigned long long)id2);
	{
		const char		*l = cl_line(c);
		unsigned long long	 due;

		ck_assert_msg(strncmp(l, want, strlen(want)) == 0, "got '%s'", l);
		due = strtoull(l + strlen(want), NULL, 10);
		ck_assert_msg(due > 590000 && due <= 600000, "due_in_ms=%llu", due);
	}

	/* CANCEL a waiting job: answered at once; then it has finished. */
	snprintf(want, sizeof want, "CANCEL %llu\n", (unsigned long long)id);
	cl_sends(c, want);
	cl_expect(c, "OK cancelled");
	ck_assert_int_eq(job_find(id)->state, JOB_CANCELLED);
	ck_assert_uint_eq(queue_depth(q), 1);
	snprintf(want, sizeof want, "STATUS %llu\n", (unsigned long long)id);
	cl_sends(c, want);
	cl_expect_prefix(c, "OK id=");
	snprintf(want, sizeof want, "CANCEL %llu\n", (unsigned long long)id);
	cl_sends(c, want);
	snprintf(want, sizeof want, "ERR state job %llu has finished",
	    (unsigned long long)id);
	cl_expect(c, want);
	snprintf(want, sizeof want, "CANCEL %llu\n", (unsigned long long)id2);
	cl_sends(c, want);
	cl_expect(c, "OK cancelled");
	ck_assert_uint_eq(queue_depth(q), 0);

	/* Unknown ids. */
	cl_sends(c, "STATUS 999999\nCANCEL 999999\nWAIT 999999\n");
	cl_expect(c, "ERR notfound no job 999999");
	cl_expect(c, "ERR notfound no job 999999");
	cl_expect(c, "ERR notfound no job 999999");
}
END_TEST

START_TEST(test_submit_wait)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1);
	char		 req[64], want[64];
	uint64_t	 id;

	id = cl_submit(a, "q", "hello", "wait");
	cl_expect_quiet(a);
	/* Cancelled from another connection: the waiter gets its RESULT. */
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)id);
	cl_sends(b, req);
	cl_expect(b, "OK cancelled");
	snprintf(want, sizeof want, "RESULT %llu cancelled 9", (unsigned long long)id);
	cl_expect(a, want);
	cl_expect(a, "cancelled");
	/* WAIT for a finished job: OK, then its RESULT at once. */
	snprintf(req, sizeof req, "WAIT %llu\n", (unsigned long long)id);
	cl_sends(b, req);
	cl_expect(b, "OK");
	cl_expect(b, want);
	cl_expect(b, "cancelled");
	/* And again for every WAIT while the result is kept (PROTOCOL.md). */
	cl_sends(b, req);
	cl_expect(b, "OK");
	cl_expect(b, want);
	cl_expect(b, "cancelled");
	cl_sends(a, req);
	cl_expect(a, "OK");
	cl_expect(a, want);
	cl_expect(a, "cancelled");
	/* WAIT for a waiting job: OK now, RESULT when it ends. */
	id = cl_submit(a, "q", "x", "");
	snprintf(req, sizeof req, "WAIT %llu\n", (unsigned long long)id);
	cl_sends(b, req);
	cl_expect(b, "OK");
	cl_expect_quiet(b);
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)id);
	cl_sends(a, req);
	cl_expect(a, "OK cancelled");
	snprintf(want, sizeof want, "RESULT %llu cancelled 9", (unsigned long long)id);
	cl_expect(b, want);
	cl_expect(b, "cancelled");
}
END_TEST

START_TEST(test_request_errors)
{
	struct client	*c = cl_connect(0);
	struct queue	*q = queue_find("q");

	/* Well framed but wrong: ERR, and the connection carries on. */
	cl_sends(c, "FROB 1\n");
	cl_expect_prefix(c, "ERR proto ");
	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
	/* An unknown queue: its body is still read, not taken for a request. */
	cl_sends(c, "SUBMIT nope 4\nPING\nPING\n");
	cl_expect(c, "ERR noqueue SUBMIT: no queue 'nope'");
	cl_expect(c, "OK pong");
	/* A priority outside the queue's range. */
	cl_sends(c, "SUBMIT q 1 prio=11\nx\n");
	cl_expect(c, "ERR proto SUBMIT: prio=11 is outside queue 'q' range -10..10");
	cl_sends(c, "STATUS x\n");
	cl_expect_prefix(c, "ERR proto ");
	/* A queue whose handler cannot start. */
	q->failed_reason = strdup("the handler is broken");
	cl_sends(c, "SUBMIT q 1\nx\n");
	cl_expect(c, "ERR unavailable queue 'q' cannot run jobs: the handler is broken");
	free(q->failed_reason);
	q->failed_reason = NULL;
	/* A queue a reload removed is no queue. */
	q->removed = 1;
	cl_sends(c, "SUBMIT q 1\nx\n");
	cl_expect(c, "ERR noqueue SUBMIT: no queue 'q'");
	q->removed = 0;
	/* Shutting down: no new jobs. */
	master_stopping = 1;
	cl_sends(c, "SUBMIT q 1\nx\n");
	cl_expect(c, "ERR shutdown the daemon is shutting down");
	master_stopping = 0;
	ck_assert_uint_eq(queue_depth(q), 0);
	ck_assert_uint_eq(job_count(), 0);
	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
}
END_TEST

START_TEST(test_toolarge)
{
	struct client	*c = cl_connect(0);
	char		 body[2000];

	/* Larger than max_payload (1024): refused, read and thrown away. */
	memset(body, 'P', sizeof body);
	memcpy(body, "PING\n", 5);
	cl_sends(c, "SUBMIT q 2000\n");
	cl_send(c, body, sizeof body);
	cl_sends(c, "\nPING\n");
	cl_expect_prefix(c, "ERR toolarge ");
	cl_expect(c, "OK pong");
	cl_expect_quiet(c);
	ck_assert_uint_eq(job_count(), 0);
}
END_TEST

/*
 * A declared size beyond max_payload + 64 MiB is not skipped: ERR toolarge says the
 * connection closes, and it does, without waiting for the body. Up to that, the body
 * is skipped as usual and the connection waits for it.
 */
START_TEST(test_toolarge_huge)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1), *c = cl_connect(2);
	char		 req[64];

	cl_sends(a, "SUBMIT q 9999999999 wait\nPING\n");
	cl_expect(a, "ERR toolarge SUBMIT: size 9999999999 exceeds the limit of 1024 "
	    "bytes; closing the connection (a body of more than 67109888 bytes is not "
	    "read)");
	cl_expect_eof(a);
	snprintf(req, sizeof req, "SUBMIT q %d\n", 1024 + 64 * 1024 * 1024 + 1);
	cl_sends(b, req);
	cl_expect_prefix(b, "ERR toolarge SUBMIT: size 67109889 exceeds the limit of "
	    "1024 bytes; closing the connection");
	cl_expect_eof(b);
	snprintf(req, sizeof req, "SUBMIT q %d\nPING\n", 1024 + 64 * 1024 * 1024);
	cl_sends(c, req);
	cl_expect(c, "ERR toolarge SUBMIT: size 67109888 exceeds the limit of 1024 bytes");
	cl_expect_quiet(c);		/* the PING is part of the body being skipped */
	run_until(server_nconns() == 1);
	ck_assert_uint_eq(job_count(), 0);
}
END_TEST

/* PROTOCOL.md: a '\r' before a '\n' is ignored, also after a body, skipped or not. */
START_TEST(test_crlf_after_body)
{
	struct client	*c = cl_connect(0);
	char		 body[2000];

	cl_sends(c, "SUBMIT q 5 wait\r\nhello\r\nPING\r\n");
	cl_expect_prefix(c, "OK ");
	cl_expect(c, "OK pong");
	ck_assert_uint_eq(job_count(), 1);
	/* A refused body ending in "\r\n": no empty request after it. */
	memset(body, 'x', sizeof body);
	cl_sends(c, "SUBMIT q 2000\r\n");
	cl_send(c, body, sizeof body);
	cl_sends(c, "\r");
	cl_expect(c, "ERR toolarge SUBMIT: size 2000 exceeds the limit of 1024 bytes");
	run_for(50);		/* the '\n' comes in a later read */
	cl_sends(c, "\nPING\r\n");
	cl_expect(c, "OK pong");
	/* A '\r' and something else after a skipped body: that is the next request. */
	cl_sends(c, "SUBMIT q 2000\n");
	cl_send(c, body, sizeof body);
	cl_sends(c, "\rPING\n");
	cl_expect_prefix(c, "ERR toolarge ");
	cl_expect(c, "OK pong");
	cl_expect_quiet(c);
}
END_TEST

START_TEST(test_overlong_line)
{
	struct client	*c = cl_connect(0);
	char		 line[2001];

	/* A line longer than 1024 bytes loses the framing: ERR proto, then closed. */
	memset(line, 'A', sizeof line - 1);
	line[sizeof line - 1] = '\n';
	cl_send(c, line, sizeof line);
	cl_expect_prefix(c, "ERR proto ");
	cl_expect_eof(c);
	run_until(server_nconns() == 0);
}
END_TEST

START_TEST(test_body_without_newline)
{
	struct client	*c = cl_connect(0);

	/* A body not followed by its newline loses the framing too. */
	cl_sends(c, "SUBMIT q 3\nabcPING\n");
	cl_expect_prefix(c, "ERR proto ");
	cl_expect_eof(c);
	ck_assert_uint_eq(job_count(), 0);
}
END_TEST

START_TEST(test_backpressure)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1);
	struct queue	*q = queue_find("q");
	char		 req[64];
	uint64_t	 id1, id2;
	const char	*l;
	unsigned long long id3;

	id1 = cl_submit(a, "q", "1", "");
	id2 = cl_submit(a, "q", "2", "");
	ck_assert_uint_eq(id2, id1 + 1);
	/* Full (max_jobs = 2): the request is left unread, and so is what follows. */
	cl_sends(a, "SUBMIT q 1\n3\nPING\n");
	cl_expect_quiet(a);
	ck_assert_uint_eq(q->srv.nblocked, 1);
	ck_assert_uint_eq(queue_depth(q), 2);
	/* nonblock: busy at once. */
	cl_sends(b, "SUBMIT q 1 nonblock\nx\n");
	cl_expect(b, "ERR busy queue 'q' is full (2 jobs, 2 bytes)");
	/* Other queues and other requests are not held up. */
	cl_submit(b, "other", "y", "");
	cl_sends(b, "PING\n");
	cl_expect(b, "OK pong");
	cl_expect_quiet(a);
	/* Room again: the blocked request is accepted, then the rest. */
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)id1);
	cl_sends(b, req);
	cl_expect(b, "OK cancelled");
	l = cl_line(a);
	ck_assert_msg(sscanf(l, "OK %llu", &id3) == 1, "got '%s'", l);
	ck_assert_uint_gt(id3, id2);
	cl_expect(a, "OK pong");
	ck_assert_uint_eq(q->srv.nblocked, 0);
	ck_assert_uint_eq(queue_depth(q), 2);
}
END_TEST

/*
 * First come, first served: while a producer waits for room, the room that appears
 * (at 3 of 4, under the low watermark only at 2) is not taken by another's nonblock
 * SUBMIT, nor by another's SUBMIT that would wait: that one waits behind. Once let go,
 * producers go in turn, a SUBMIT each, oldest first.
 */
START_TEST(test_backpressure_fcfs)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1), *z = cl_connect(2);
	struct queue	*q = queue_find("e");
	uint64_t	 ids[4];
	char		 req[64];
	const char	*l;
	unsigned long long a1, b1, a2;
	int		 k;

	for (k = 0; k < 4; k++)
		ids[k] = cl_submit(z, "e", "0", "");
	cl_sends(a, "SUBMIT e 2\na1\nSUBMIT e 2\na2\nSUBMIT e 2\na3\n");
	cl_expect_quiet(a);
	ck_assert_uint_eq(q->srv.nblocked, 1);
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)ids[0]);
	cl_sends(z, req);
	cl_expect(z, "OK cancelled");
	ck_assert_uint_eq(queue_depth(q), 3);
	ck_assert(queue_has_room(q, 2));
	/* The room is a's: nonblock is refused, saying why. */
	cl_sends(z, "SUBMIT e 1 nonblock\nz\n");
	cl_expect(z, "ERR busy queue 'e' is full for now: 1 producer waits for room "
	    "before this one (3 jobs, 3 bytes)");
	/* b waits behind a, though there is room. */
	cl_sends(b, "SUBMIT e 2\nb1\nPING\n");
	cl_expect_quiet(b);
	ck_assert_uint_eq(q->srv.nblocked, 2);
	ck_assert_uint_eq(queue_depth(q), 3);
	cl_expect_quiet(a);
	/* Under the low watermark (3): room for two more, a's first, then b's. */
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)ids[1]);
	cl_sends(z, req);
	cl_expect(z, "OK cancelled");
	l = cl_line(a);
	ck_assert_msg(sscanf(l, "OK %llu", &a1) == 1, "a: got '%s'", l);
	l = cl_line(b);
	ck_assert_msg(sscanf(l, "OK %llu", &b1) == 1, "b: got '%s'", l);
	ck_assert_uint_gt(b1, a1);
	cl_expect(b, "OK pong");
	/* Full again: a's second SUBMIT came after b's first, and waits. */
	ck_assert_uint_eq(queue_depth(q), 4);
	cl_expect_quiet(a);
	ck_assert_uint_eq(q->srv.nblocked, 1);
	snprintf(req, sizeof req, "CANCEL %llu\nCANCEL %llu\n",
	    (unsigned long long)ids[2], (unsigned long long)ids[3]);
	cl_sends(z, req);
	cl_expect(z, "OK cancelled");
	cl_expect(z, "OK cancelled");
	l = cl_line(a);
	ck_assert_msg(sscanf(l, "OK %llu", &a2) == 1, "a: got '%s'", l);
	cl_expect_prefix(a, "OK ");
	ck_assert_uint_gt(a2, b1);
	ck_assert_uint_eq(q->srv.nblocked, 0);
	ck_assert_uint_eq(queue_depth(q), 4);
	/* Nobody waits: nonblock is refused only when the queue is full. */
	cl_sends(z, "SUBMIT e 1 nonblock\nz\n");
	cl_expect(z, "ERR busy queue 'e' is full (4 jobs, 8 bytes)");
}
END_TEST

START_TEST(test_blocked_client_goes)
{
	struct client	*a = cl_connect(0);
	struct queue	*q = queue_find("q");
	const char	*why;
	uint64_t	 id1;

	id1 = cl_submit(a, "q", "1", "");
	cl_submit(a, "q", "2", "");
	cl_sends(a, "SUBMIT q 1\n3\n");
	cl_expect_quiet(a);
	ck_assert_uint_eq(q->srv.nblocked, 1);
	/*
	 * A blocked client that goes away: not reading, the server cannot see it go;
	 * once there is room its request is handled, the reply fails, and it is closed
	 * and off the blocked list.
	 */
	close(a->fd);
	a->fd = -1;
	run_for(QUIET_MS);
	ck_assert_uint_eq(q->srv.nblocked, 1);
	ck_assert_int_eq(dispatch_cancel(job_find(id1), &why), 0);
	run_until(server_nconns() == 0);
	ck_assert_uint_eq(q->srv.nblocked, 0);
	ck_assert(TAILQ_EMPTY(&q->srv.blocked));
}
END_TEST

START_TEST(test_quit)
{
	struct client	*c = cl_connect(0);

	cl_sends(c, "QUIT\nPING\n");
	cl_expect(c, "OK bye");
	cl_expect_eof(c);
	run_until(server_nconns() == 0);
}
END_TEST

START_TEST(test_half_close)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1);
	char		 req[64], want[64];
	uint64_t	 id;

	/* A client that shuts down its side still gets every answer it asked for. */
	id = cl_submit(a, "q", "x", "wait");
	ck_assert_int_eq(shutdown(a->fd, SHUT_WR), 0);
	cl_expect_quiet(a);
	ck_assert_uint_eq(server_nconns(), 2);
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)id);
	cl_sends(b, req);
	cl_expect(b, "OK cancelled");
	snprintf(want, sizeof want, "RESULT %llu cancelled 9", (unsigned long long)id);
	cl_expect(a, want);
	cl_expect(a, "cancelled");
	/* Then it is closed. */
	cl_expect_eof(a);
	run_until(server_nconns() == 1);
}
END_TEST

START_TEST(test_stats)
{
	struct client	*c = cl_connect(0);
	const char	*l;
	size_t		 size;
	char		 body[8192];

	cl_sends(c, "STATS\n");
	l = cl_line(c);
	ck_assert_msg(sscanf(l, "DATA %zu", &size) == 1, "got '%s'", l);
	ck_assert_uint_lt(size, sizeof body);
	run_until(cl_has(c, size + 1));
	memcpy(body, c->buf, size);
	body[size] = '\0';
	ck_assert_int_eq(c->buf[size], '\n');
	ck_assert_ptr_nonnull(strstr(body, "daemon jobpoold "));
	ck_assert_ptr_nonnull(strstr(body, "\nqueue q "));
	ck_assert_ptr_nonnull(strstr(body, "\nqueue other "));
}
END_TEST

START_TEST(test_dead_retry_history)
{
	struct client	*c = cl_connect(0);
	char		 req[64], want[128];
	uint64_t	 id;

	id = cl_submit(c, "q", "x", "");
	/* HISTORY of a job that has not run: just its summary line. */
	snprintf(req, sizeof req, "HISTORY %llu\n", (unsigned long long)id);
	cl_sends(c, req);
	snprintf(want, sizeof want, "job %llu state=queued attempts=0",
	    (unsigned long long)id);
	snprintf(req, sizeof req, "DATA %zu", strlen(want) + 1);
	cl_expect(c, req);
	cl_expect(c, want);
	cl_expect(c, "");
	/* Only dead jobs can be retried. */
	snprintf(req, sizeof req, "RETRY %llu\n", (unsigned long long)id);
	cl_sends(c, req);
	snprintf(want, sizeof want, "ERR state job %llu is not dead", (unsigned long long)id);
	cl_expect(c, want);
	cl_sends(c, "RETRY all\nRETRY all q\nRETRY all nope\nRETRY 999999\n");
	cl_expect(c, "OK 0");
	cl_expect(c, "OK 0");
	cl_expect(c, "ERR noqueue RETRY: no queue 'nope'");
	cl_expect(c, "ERR notfound no job 999999");
	/* No dead jobs. */
	cl_sends(c, "DEAD\nDEAD q\nDEAD nope\n");
	cl_expect(c, "DATA 0");
	cl_expect(c, "");
	cl_expect(c, "DATA 0");
	cl_expect(c, "");
	cl_expect(c, "ERR noqueue DEAD: no queue 'nope'");
}
END_TEST

/*
 * As root: connect client k as uid (and gid, with the supplementary groups given), as
 * the kernel records a peer at connect; the test goes on as root.
 */
static struct client *
cl_connect_as(int k, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups)
{
	struct client	*c;

	ck_assert_int_eq(setgroups(ngroups, groups), 0);
	ck_assert_int_eq(setegid(gid), 0);
	ck_assert_int_eq(seteuid(uid), 0);
	c = cl_connect(k);
	ck_assert_int_eq(seteuid(0), 0);
	ck_assert_int_eq(setegid(0), 0);
	ck_assert_int_eq(setgroups(0, NULL), 0);
	return (c);
}

/*
 * Send a request for a job (VERB id; none if verb is "") and expect a line that starts
 * with want, in which "%llu" (if there) stands for the id.
 */
static void
cl_expect_for(struct client *c, const char *verb, uint64_t id, const char *want)
{
	char		 req[64], line[256];
	const char	*at = strstr(want, "%llu");

	if (verb[0] != '\0') {
		snprintf(req, sizeof req, "%s %llu\n", verb, (unsigned long long)id);
		cl_sends(c, req);
	}
	if (at == NULL)
		snprintf(line, sizeof line, "%s", want);
	else
		snprintf(line, sizeof line, "%.*s%llu%s", (int)(at - want), want,
		    (unsigned long long)id, at + 4);
	cl_expect_prefix(c, line);
}

/* Make a waiting job dead, as the lifecycle would. */
static void
make_dead(uint64_t id)
{
	struct job	*j = job_find(id);

	ck_assert_ptr_nonnull(j);
	queue_remove(job_queue(j), j);
	ck_assert_ptr_nonnull(job_extra(j));
	j->x->last_status = JOB_FAILED;
	job_finish(j, JOB_DEAD, "boom", 4);
}

/*
 * As root, with peers of other uids: jobs are their submitter's. Another user's job is
 * answered as an id never used, by every request that names it; its dead jobs are not
 * listed; RELOAD and RETRY all are refused; root, admin_users and admin_groups (a
 * supplementary group) see every job, and a new set of lists applies to a connection
 * that is already open.
 */
START_TEST(test_owner)
{
	static const char *const	 verbs[] = { "STATUS", "WAIT", "CANCEL", "HISTORY",
	    "RETRY" };
	char				*admins[] = { (char *)"4242" };
	char				*agroups[] = { (char *)"4343" };
	gid_t				 supp[] = { 4343 };
	struct config			 acf;
	struct client			*r, *a, *b;
	uint64_t			 rid, aid, adead, rdead;
	size_t				 i;

	if (geteuid() != 0) {
		fprintf(stderr, "check_server: skipping test_owner: needs root\n");
		return;
	}
	ck_assert_int_eq(chmod(tdir, 0755), 0);
	ck_assert_int_eq(chmod(tsock, 0666), 0);
	r = cl_connect(0);
	a = cl_connect_as(1, 4242, 4242, NULL, 0);
	b = cl_connect_as(2, 4243, 4243, supp, 1);
	rid = cl_submit(r, "other", "root's", "");
	rdead = cl_submit(r, "other", "root's, dead", "");
	aid = cl_submit(a, "other", "4242's", "");
	adead = cl_submit(a, "other", "4242's, dead", "");
	ck_assert_uint_eq(priv_owner_uid(job_find(aid)->owner), 4242);
	ck_assert_uint_eq(priv_owner_uid(job_find(rid)->owner), 0);
	make_dead(rdead);
	make_dead(adead);

	/* Its own jobs, and nobody else's: the answer of an id never used. */
	cl_expect_for(a, "STATUS", aid, "OK id=%llu queue=other state=queued");
	for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
		cl_expect_for(a, verbs[i], rid, "ERR notfound no job %llu");
		cl_expect_for(a, verbs[i], rdead, "ERR notfound no job %llu");
	}
	cl_sends(a, "DEAD\n");
	cl_expect_prefix(a, "DATA ");
	cl_expect_for(a, "", adead, "dead %llu queue=other");
	cl_expect(a, "");
	cl_sends(a, "RELOAD\nRETRY all\nRETRY all other\nPAUSE other\nRESUME other\n");
	cl_expect(a, "ERR denied RELOAD is for administrators (root, the daemon's user, "
	    "admin_users, admin_groups); uid 4242 is not one");
	cl_expect(a, "ERR denied RETRY all is for administrators (root, the daemon's "
	    "user, admin_users, admin_groups); uid 4242 is not one");
	cl_expect(a, "ERR denied RETRY all is for administrators (root, the daemon's "
	    "user, admin_users, admin_groups); uid 4242 is not one");
	cl_expect(a, "ERR denied PAUSE is for administrators (root, the daemon's "
	    "user, admin_users, admin_groups); uid 4242 is not one");
	cl_expect(a, "ERR denied RESUME is for administrators (root, the daemon's "
	    "user, admin_users, admin_groups); uid 4242 is not one");
	ck_assert_int_eq(queue_find("other")->paused, 0);
	ck_assert_int_eq(job_find(rid)->state, JOB_QUEUED);
	ck_assert_int_eq(job_find(rdead)->state, JOB_DEAD);
	cl_expect_for(b, "STATUS", aid, "ERR notfound no job %llu");

	/* Root sees all. */
	cl_expect_for(r, "STATUS", aid, "OK id=%llu queue=other state=queued");
	cl_sends(r, "DEAD\n");
	cl_expect_prefix(r, "DATA ");
	cl_expect_for(r, "", rdead, "dead %llu queue=other");
	cl_expect_for(r, "", adead, "dead %llu queue=other");
	cl_expect(r, "");

	/* admin_users, on connections already open. */
	memset(&acf, 0, sizeof acf);
	acf.admin_users = admins;
	acf.nadmin_users = 1;
	priv_acl_set(&acf);
	cl_expect_for(a, "STATUS", rid, "OK id=%llu queue=other state=queued");
	cl_expect_for(b, "STATUS", rid, "ERR notfound no job %llu");
	cl_expect_for(a, "CANCEL", rid, "OK cancelled");
	/* admin_groups, by a supplementary group; 4242 is no longer one. */
	memset(&acf, 0, sizeof acf);
	acf.admin_groups = agroups;
	acf.nadmin_groups = 1;
	priv_acl_set(&acf);
	cl_expect_for(a, "STATUS", rid, "ERR notfound no job %llu");
	cl_expect_for(b, "STATUS", rid, "OK id=%llu queue=other state=cancelled");
	cl_expect_for(b, "RETRY", rdead, "OK queued");
	cl_sends(b, "RETRY all\n");
	cl_expect(b, "OK 1");
	/* An administrator by a supplementary group pauses a queue, and resumes it. */
	cl_sends(b, "PAUSE other\nPAUSE nope\n");
	cl_expect(b, "OK paused");
	cl_expect(b, "ERR noqueue PAUSE: no queue 'nope'");
	ck_assert_int_eq(queue_find("other")->paused, 1);
	ck_assert_uint_eq(queue_find("other")->paused_by, 4243);
	cl_sends(b, "RESUME other\n");
	cl_expect(b, "OK resumed");
	ck_assert_int_eq(queue_find("other")->paused, 0);
	priv_acl_free();
}
END_TEST

/*
 * A worker for queue q in slot 0, as supervisor.c builds one but with no process: its
 * job pipe's far end is returned in *rd. Its pid is ours: a CANCEL's SIGUSR1 is ignored.
 */
static struct worker *
fake_worker(struct queue *q, int *rd)
{
	struct worker	*w;
	int		 p[2];

	ck_assert_ptr_nonnull(q->workers = calloc(1, sizeof *q->workers));
	q->nworkers = 1;
	ck_assert_ptr_nonnull(w = calloc(1, sizeof *w));
	w->queue = q;
	w->pid = getpid();
	signal(SIGUSR1, SIG_IGN);
	w->slots = 1;
	TAILQ_INIT(&w->inflight);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	w->to_fd = p[1];
	w->from_fd = -1;
	*rd = p[0];
	w->in = evbuffer_new();
	w->out = evbuffer_new();
	w->wev = event_new(master_base, w->to_fd, EV_WRITE, tick_cb, NULL);
	w->tev = evtimer_new(master_base, tick_cb, NULL);
	ck_assert(w->in != NULL && w->out != NULL && w->wev != NULL && w->tev != NULL);
	w->life = WORKER_READY;
	q->workers[0] = w;
	return (w);
}

static void
fake_worker_free(struct queue *q, int rd)
{
	struct worker	*w = q->workers[0];
	struct job	*j;

	while ((j = TAILQ_FIRST(&w->inflight)) != NULL) {
		TAILQ_REMOVE(&w->inflight, j, entry);
		job_table_remove(j);
		job_free(j);
	}
	close(w->to_fd);
	close(rd);
	event_free(w->wev);
	event_free(w->tev);
	evbuffer_free(w->in);
	evbuffer_free(w->out);
	free(w);
	q->workers[0] = NULL;
}

/*
 * Queues marked for dispatch in one pass of the event loop are all dispatched, also
 * when dispatching one of them lets a blocked producer go on and its pipelined SUBMITs
 * mark more queues: none may be lost (and then never dispatched again).
 */
START_TEST(test_kick_during_kick)
{
	struct client	*x = cl_connect(0), *y = cl_connect(1);
	struct queue	*a = queue_find("a"), *b = queue_find("b");
	struct worker	*wa, *wb;
	struct job	*j;
	uint64_t	 id;
	int		 rda, rdb;

	wa = fake_worker(a, &rda);
	wb = fake_worker(b, &rdb);
	wa->life = WORKER_STARTING;
	/* a is full; x blocks on it with SUBMITs to a, c and d pipelined behind. */
	cl_submit(x, "a", "1", "");
	cl_sends(x, "SUBMIT a 1\n2\nSUBMIT c 1\n3\nSUBMIT d 1\n4\n");
	cl_expect_quiet(x);
	ck_assert_uint_eq(a->srv.nblocked, 1);
	/* In one pass: a's worker comes up, and b has something to do. */
	wa->life = WORKER_READY;
	dispatch_kick(a);
	dispatch_kick(b);
	cl_expect_prefix(x, "OK ");
	cl_expect_prefix(x, "OK ");
	cl_expect_prefix(x, "OK ");
	run_for(100);
	ck_assert_uint_eq(a->srv.nblocked, 0);
	ck_assert_msg(!b->dp.kicked, "queue b is still marked for a dispatch that never runs");
	/* b must still be dispatched when a job comes. */
	id = cl_submit(y, "b", "5", "");
	ck_assert_ptr_nonnull(j = job_find(id));
	run_until(j->state == JOB_RUNNING);
	ck_assert_ptr_eq(TAILQ_FIRST(&wb->inflight), j);
	fake_worker_free(a, rda);
	fake_worker_free(b, rdb);
}
END_TEST

/*
 * Letting the producers blocked on one queue go can make room in another (a CANCEL
 * they pipelined): the producers blocked on that one must go on too, not wait for
 * something else to happen to their queue.
 */
START_TEST(test_unblock_unblocks_another)
{
	struct client	*p = cl_connect(0), *c = cl_connect(1), *z = cl_connect(2);
	struct queue	*a = queue_find("a"), *b = queue_find("b");
	char		 req[128];
	uint64_t	 ja, jb;

	/* p is blocked on b, full of a job delayed for an hour. */
	jb = cl_submit(p, "b", "1", "delay=3600000");
	cl_sends(p, "SUBMIT b 1\n2\n");
	cl_expect_quiet(p);
	ck_assert_uint_eq(b->srv.nblocked, 1);
	/* c is blocked on a, with a CANCEL of b's job behind its SUBMIT. */
	ja = cl_submit(c, "a", "1", "");
	snprintf(req, sizeof req, "SUBMIT a 1\n2\nCANCEL %llu\n", (unsigned long long)jb);
	cl_sends(c, req);
	cl_expect_quiet(c);
	ck_assert_uint_eq(a->srv.nblocked, 1);
	/* Room in a: c goes on, its CANCEL makes room in b, and p goes on. */
	snprintf(req, sizeof req, "CANCEL %llu\n", (unsigned long long)ja);
	cl_sends(z, req);
	cl_expect(z, "OK cancelled");
	cl_expect_prefix(c, "OK ");
	cl_expect(c, "OK cancelled");
	cl_expect_prefix(p, "OK ");
	ck_assert_uint_eq(a->srv.nblocked, 0);
	ck_assert_uint_eq(b->srv.nblocked, 0);
	ck_assert_uint_eq(queue_depth(b), 1);
}
END_TEST

START_TEST(test_close_all)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1);
	struct job	*j;
	const char	*why;
	uint64_t	 id;

	id = cl_submit(a, "q", "x", "wait");
	cl_sends(b, "PING\n");
	cl_expect(b, "OK pong");
	ck_assert_uint_eq(server_nconns(), 2);
	server_close_all();
	ck_assert_uint_eq(server_nconns(), 0);
	ck_assert(server_idle());
	cl_expect_eof(a);
	cl_expect_eof(b);
	/* The job a waited for still holds its connection: answering it goes nowhere. */
	ck_assert_ptr_nonnull(j = job_find(id));
	ck_assert_ptr_nonnull(j->waiters);
	ck_assert(j->waiters->conn->closed);
	ck_assert_int_eq(dispatch_cancel(j, &why), 0);
	ck_assert_ptr_null(j->waiters);
}
END_TEST

START_TEST(test_listen_errors)
{
	struct config	*cf = master_config;
	char		*cause = NULL, *saved = cf->socket_path;
	char		 longpath[200];

	/* A live socket is never taken over. */
	ck_assert_int_eq(server_listen(cf, &cause), -1);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "is in use: another jobpoold is running") != NULL,
	    "cause: %s", cause);
	free(cause);
	/* A path that does not fit a sockaddr_un. */
	memset(longpath, 'x', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	cf->socket_path = longpath;
	cause = NULL;
	ck_assert_int_eq(server_listen(cf, &cause), -1);
	cf->socket_path = saved;
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, "is too long") != NULL, "cause: %s", cause);
	free(cause);
	/* The first listener still works. */
	cl_sends(cl_connect(0), "PING\n");
	cl_expect(&cl[0], "OK pong");
}
END_TEST

/*
 * With a journal, OK <id> goes out only once its record is durable, and the replies
 * after it on the connection (here a PING and an error, which need no record) wait
 * with it: they never overtake it.
 */
START_TEST(test_journal_holds_replies)
{
	struct client	*c;
	char		 jdir[128], cmd[160], *cause = NULL;
	const char	*l;
	unsigned long long id;

	snprintf(jdir, sizeof jdir, "%s/journal", tdir);
	master_config->journal_dir = strdup(jdir);
	master_config->journal_fsync = CONFIG_FSYNC_ALWAYS;
	ck_assert_int_eq(journal_prepare(master_config, &cause), 0);
	ck_assert_msg(journal_open(master_config, &cause) == 0, "journal_open: %s", cause);
	c = cl_connect(0);
	cl_sends(c, "SUBMIT q 5\nhello\nPING\nSTATUS 999999\n");
	l = cl_line(c);
	ck_assert_msg(sscanf(l, "OK %llu", &id) == 1, "got '%s'", l);
	/* Its record's batch was durable before the reply left. */
	ck_assert_uint_ge(journal_durable(), 1);
	cl_expect(c, "OK pong");
	cl_expect_prefix(c, "ERR notfound");
	/* A request that records nothing, with nothing held before it, goes out at once. */
	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");

	/*
	 * A journal that cannot be written (a file size limit: EFBIG): the OK and the
	 * replies behind it wait; new jobs are refused (that answer waits its turn too);
	 * once the writer gets through, they come in order.
	 */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit	 rl = { 0, RLIM_INFINITY };
	struct stat	 sb;
	snprintf(cmd, sizeof cmd, "%s/journal.1", jdir);
	ck_assert_int_eq(stat(cmd, &sb), 0);
	rl.rlim_cur = (rlim_t)sb.st_size;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	cl_sends(c, "SUBMIT q 5\nheld!\nPING\n");
	run_until(journal_refusal() != NULL);
	cl_expect_quiet(c);
	cl_sends(c, "SUBMIT q 3\nbye\n");
	cl_expect_quiet(c);
	rl.rlim_cur = RLIM_INFINITY;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	run_until(journal_refusal() == NULL);
	l = cl_line(c);
	ck_assert_msg(sscanf(l, "OK %llu", &id) == 1, "got '%s'", l);
	cl_expect(c, "OK pong");
	l = cl_line(c);
	ck_assert_msg(strncmp(l, "ERR unavailable the journal cannot be written: write ", 53) == 0 &&
	    strstr(l, "/journal.1: File too large") != NULL, "got '%s'", l);
	ck_assert(server_idle());
	server_close_all();
	journal_close();
	snprintf(cmd, sizeof cmd, "rm -rf %s", jdir);
	ck_assert_int_eq(system(cmd), 0);
	cl[0].fd = (close(cl[0].fd), -1);
}
END_TEST

/*
 * With a journal, nobody hears that a job ended before its end is durable: a RESULT
 * to its waiter (the job ends outside any request, as when a worker answers), a later
 * WAIT's RESULT and a STATUS naming its final state all wait for the end's record,
 * here kept from the disk by a file size limit. Otherwise a crash in that gap runs
 * again a job whose result was delivered.
 */
START_TEST(test_journal_holds_results)
{
	struct client	*a, *b;
	struct queue	*q = queue_find("q");
	struct job	*j;
	struct rlimit	 rl = { 0, RLIM_INFINITY };
	struct stat	 sb;
	char		 jdir[128], path[160], req[64], want[64], *cause = NULL;
	uint64_t	 id, dead_id;

	snprintf(jdir, sizeof jdir, "%s/journal", tdir);
	master_config->journal_dir = strdup(jdir);
	master_config->journal_fsync = CONFIG_FSYNC_ALWAYS;
	ck_assert_int_eq(journal_prepare(master_config, &cause), 0);
	ck_assert_msg(journal_open(master_config, &cause) == 0, "journal_open: %s", cause);
	a = cl_connect(0);
	b = cl_connect(1);
	id = cl_submit(a, "q", "hello", "wait");
	dead_id = cl_submit(b, "other", "x", "wait");

	signal(SIGXFSZ, SIG_IGN);
	snprintf(path, sizeof path, "%s/journal.1", jdir);
	ck_assert_int_eq(stat(path, &sb), 0);
	rl.rlim_cur = (rlim_t)sb.st_size;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);

	/* The job ends as dispatch_result() ends one: not inside a request. */
	j = job_find(id);
	queue_remove(q, j);
	job_finish(j, JOB_DONE, "HELLO", 5);
	j = job_find(dead_id);
	queue_remove(queue_find("other"), j);
	job_finish(j, JOB_DEAD, "gave up", 7);
	run_until(journal_refusal() != NULL);
	cl_expect_quiet(a);
	cl_expect_quiet(b);
	/* Another client asks: the OK may go, what tells of the end waits with it. */
	snprintf(req, sizeof req, "WAIT %llu\nSTATUS %llu\nPING\n",
	    (unsigned long long)id, (unsigned long long)id);
	cl_sends(b, req);
	cl_expect_quiet(b);

	rl.rlim_cur = RLIM_INFINITY;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	run_until(journal_refusal() == NULL);
	snprintf(want, sizeof want, "RESULT %llu ok 5", (unsigned long long)id);
	cl_expect(a, want);
	cl_expect(a, "HELLO");
	snprintf(want, sizeof want, "RESULT %llu failed 7", (unsigned long long)dead_id);
	cl_expect(b, want);
	cl_expect(b, "gave up");
	cl_expect(b, "OK");
	snprintf(want, sizeof want, "RESULT %llu ok 5", (unsigned long long)id);
	cl_expect(b, want);
	cl_expect(b, "HELLO");
	snprintf(want, sizeof want, "OK id=%llu queue=q state=done", (unsigned long long)id);
	cl_expect_prefix(b, want);
	cl_expect(b, "OK pong");
	ck_assert_uint_ge(journal_durable(), job_end_batch(job_find(id)));

	/* Once the end is durable, a WAIT is answered at once. */
	snprintf(req, sizeof req, "WAIT %llu\n", (unsigned long long)id);
	cl_sends(a, req);
	cl_expect(a, "OK");
	snprintf(want, sizeof want, "RESULT %llu ok 5", (unsigned long long)id);
	cl_expect(a, want);
	cl_expect(a, "HELLO");
	ck_assert(server_idle());
	server_close_all();
	journal_close();
	snprintf(path, sizeof path, "rm -rf %s", jdir);
	ck_assert_int_eq(system(path), 0);
	cl[0].fd = (close(cl[0].fd), -1);
	cl[1].fd = (close(cl[1].fd), -1);
}
END_TEST

START_TEST(test_stale_socket)
{
	struct config	*cf = master_config;
	char		*cause = NULL;
	struct client	*c;

	/* A socket file nobody listens on is replaced. */
	server_close_listener();
	ck_assert_int_eq(access(tsock, F_OK), -1);
	{
		struct sockaddr_un	sun;
		int			fd = socket(AF_UNIX, SOCK_STREAM, 0);

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s", tsock);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
		close(fd);
	}
	ck_assert_int_eq(access(tsock, F_OK), 0);
	ck_assert_msg(server_listen(cf, &cause) == 0, "server_listen: %s", cause);
	c = cl_connect(0);
	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
	{
		struct stat	sb;

		ck_assert_int_eq(stat(tsock, &sb), 0);
		ck_assert_int_eq(sb.st_mode & 0777, cf->socket_mode);
	}
}
END_TEST

/* ----- crowds: time limits and connection limits ----- */

/*
 * Short time limits and few connections: 2 in all, 1 per uid, 1 reserved. The tests
 * run as the daemon's own user, who may use the reserved slot.
 */
static void
setup_crowd(void)
{
	conf_more = "idle_timeout = 0.4;\nrequest_timeout = 0.3;\n"
	    "max_connections = 2;\nmax_connections_per_uid = 1;\n"
	    "reserved_connections = 1;\n";
	setup();
}

/* An idle connection is closed after idle_timeout, told why. */
START_TEST(test_idle_closed)
{
	struct client	*c = cl_connect(0);

	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
	run_until(server_nconns() == 1);
	cl_expect(c, "ERR timeout idle for 400 ms (idle_timeout); closing the connection");
	cl_expect_eof(c);
	ck_assert_uint_eq(server_nconns(), 0);
}
END_TEST

/* A request left incomplete is closed after request_timeout, whole ones still served. */
START_TEST(test_request_incomplete_closed)
{
	struct client	*c = cl_connect(0);

	cl_sends(c, "PING\nSUBMIT q 5\nhel");
	cl_expect(c, "OK pong");
	cl_expect(c, "ERR timeout a request left incomplete for 300 ms (request_timeout); "
	    "closing the connection");
	cl_expect_eof(c);
	/* A line's first bytes start the clock; more of it does not restart it. */
	c = cl_connect(0);
	cl_sends(c, "PI");
	run_for(150);
	cl_sends(c, "N");
	run_for(100);
	/*
	 * 250 ms of the 300: a loaded host can let the loop run past 300 before this, and
	 * the daemon has closed; the ERR is there either way.
	 */
	(void)send(c->fd, "G", 1, MSG_NOSIGNAL);
	cl_expect_prefix(c, "ERR timeout a request left incomplete");
	cl_expect_eof(c);
}
END_TEST

/*
 * Connections that wait on the daemon are not idle: one waiting for a job's result,
 * one blocked on a full queue. (The queues here have no workers.) Once answered, the
 * first is idle again and closed in time.
 */
START_TEST(test_waiting_not_idle)
{
	struct client	*a = cl_connect(0), *b = cl_connect(1);
	char		 want[64];
	uint64_t	 id;

	id = cl_submit(a, "q", "x", "wait");
	cl_submit(b, "q", "y", "");
	cl_sends(b, "SUBMIT q 1\nz\n");	/* q is full (max_jobs 2): b is blocked */
	run_for(1200);			/* three idle_timeouts, four request_timeouts */
	cl_pump(a);
	cl_pump(b);
	ck_assert_msg(a->len == 0 && !a->eof, "waiter: '%.*s'", (int)a->len, a->buf);
	ck_assert_msg(b->len == 0 && !b->eof, "blocked: '%.*s'", (int)b->len, b->buf);
	ck_assert_uint_eq(server_nconns(), 2);
	ck_assert_uint_eq(queue_find("q")->srv.nblocked, 1);
	/* The job ends: the RESULT comes, and later the idle close. */
	ck_assert_int_eq(dispatch_cancel(job_find(id), &(const char *){ NULL }), 0);
	snprintf(want, sizeof want, "RESULT %llu cancelled 9", (unsigned long long)id);
	cl_expect(a, want);
	cl_expect(a, "cancelled");
	cl_expect(b, "OK 3");
	cl_expect(a, "ERR timeout idle for 400 ms (idle_timeout); closing the connection");
	cl_expect_eof(a);
}
END_TEST

/*
 * max_connections_per_uid, then the reserved slot (the daemon's own user), then
 * ERR busy naming the limit. A slot that frees is taken again.
 */
START_TEST(test_per_uid_and_reserved)
{
	struct client	*a = cl_connect(0), *b, *c;
	char		 want[128];

	cl_sends(a, "PING\n");
	cl_expect(a, "OK pong");
	b = cl_connect(1);
	cl_sends(b, "PING\n");
	cl_expect(b, "OK pong");	/* past its per-uid limit: the reserved slot */
	c = cl_connect(2);
	snprintf(want, sizeof want, "ERR busy too many connections from uid %ld "
	    "(max_connections_per_uid is 1)", (long)geteuid());
	cl_expect(c, want);
	cl_expect_eof(c);
	ck_assert_uint_eq(server_nconns(), 2);
	close(b->fd);
	b->fd = -1;
	run_until(server_nconns() == 1);
	close(c->fd);
	c = cl_connect(2);
	cl_sends(c, "PING\n");
	cl_expect(c, "OK pong");
}
END_TEST

/*
 * Out of descriptors anyway (accept() fails with EMFILE): the client waiting in the
 * backlog is not left hanging there. The spare descriptor is given up to accept it and
 * answer ERR busy. The test shares the server's process, so its own client sockets use
 * up the room a lowered RLIMIT_NOFILE leaves.
 */
START_TEST(test_out_of_descriptors)
{
	struct client	*a, *b;
	struct rlimit	 rl, low;
	int		 nfree = 0;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	/* The lowest limit that leaves three descriptors free: a, its accept, b. */
	for (low.rlim_cur = 0; nfree < 3; low.rlim_cur++) {
		if (fcntl((int)low.rlim_cur, F_GETFD) == -1)
			nfree++;
	}
	low.rlim_max = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	a = cl_connect(0);
	cl_sends(a, "PING\n");
	cl_expect(a, "OK pong");
	b = cl_connect(1);
	cl_expect(b, "ERR busy the daemon is out of file descriptors (RLIMIT_NOFILE); "
	    "try again later");
	cl_expect_eof(b);
	ck_assert_uint_eq(server_nconns(), 1);
	/* The spare is back in hand: the next one hears the same. */
	close(b->fd);
	b = cl_connect(1);
	cl_expect_prefix(b, "ERR busy the daemon is out of file descriptors");
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}
END_TEST

static Suite *
server_suite(void)
{
	Suite	*s = suite_create("server");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_reply_same_pass);
	tcase_add_test(tc, test_reply_socket_full);
	tcase_add_test(tc, test_submit_status_cancel);
	tcase_add_test(tc, test_submit_wait);
	tcase_add_test(tc, test_request_errors);
	tcase_add_test(tc, test_toolarge);
	tcase_add_test(tc, test_toolarge_huge);
	tcase_add_test(tc, test_crlf_after_body);
	tcase_add_test(tc, test_overlong_line);
	tcase_add_test(tc, test_body_without_newline);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_backpressure_fcfs);
	tcase_add_test(tc, test_blocked_client_goes);
	tcase_add_test(tc, test_quit);
	tcase_add_test(tc, test_half_close);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_dead_retry_history);
	tcase_add_test(tc, test_owner);
	tcase_add_test(tc, test_kick_during_kick);
	tcase_add_test(tc, test_unblock_unblocks_another);
	tcase_add_test(tc, test_close_all);
	tcase_add_test(tc, test_listen_errors);
	tcase_add_test(tc, test_stale_socket);
	tcase_add_test(tc, test_journal_holds_replies);
	tcase_add_test(tc, test_journal_holds_results);
	tcase_add_test(tc, test_out_of_descriptors);
	suite_add_tcase(s, tc);
	tc = tcase_create("crowd");
	tcase_add_checked_fixture(tc, setup_crowd, teardown);
	tcase_add_test(tc, test_idle_closed);
	tcase_add_test(tc, test_request_incomplete_closed);
	tcase_add_test(tc, test_waiting_not_idle);
	tcase_add_test(tc, test_per_uid_and_reserved);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(server_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
