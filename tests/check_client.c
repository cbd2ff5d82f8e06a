/*
 * check_client.c: unit tests for client.c, libjobpool, against a fake daemon.
 *
 * The fake daemon is a child process listening on a Unix socket in a private
 * directory. It either follows a script (read exactly these request bytes, then write
 * these reply bytes) or, for the pipelining tests, decodes requests with proto.c and
 * answers each one. It exits nonzero if the client sent anything it did not expect,
 * and the test checks that.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"
#include "proto.h"

/* One exchange of a script: read req (if any), wait, write rep, maybe hang up. */
struct step {
	const char	*req;
	size_t		 reqlen;
	const char	*rep;
	size_t		 replen;
	int		 delay_ms;
	int		 hangup;
};

#define S(q, r)		{ q, sizeof(q) - 1, r, sizeof(r) - 1, 0, 0 }
#define SD(q, r, d)	{ q, sizeof(q) - 1, r, sizeof(r) - 1, d, 0 }
#define SH(q, r)	{ q, sizeof(q) - 1, r, sizeof(r) - 1, 0, 1 }
#define NSTEPS(a)	(sizeof (a) / sizeof (a)[0])

struct fake {
	char	dir[64];
	char	path[96];
	pid_t	pid;
};

/* Sleep for ms milliseconds. */
static void
sleep_ms(int ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Write all of buf or exit. */
static void
fake_write(int fd, const void *buf, size_t len)
{
	const char	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(3);
		p += n;
		len -= (size_t)n;
	}
}

/* Follow a script on connection fd; exit 0 if the client did as expected. */
static void
fake_script(int fd, const struct step *steps, size_t nsteps)
{
	char	buf[65536];
	size_t	i, got;
	ssize_t	n;

	for (i = 0; i < nsteps; i++) {
		for (got = 0; got < steps[i].reqlen; got += (size_t)n) {
			n = read(fd, buf + got, steps[i].reqlen - got);
			if (n <= 0) {
				fprintf(stderr, "fake: step %zu: EOF after %zu bytes\n",
				    i, got);
				_exit(1);
			}
		}
		if (memcmp(buf, steps[i].req, steps[i].reqlen) != 0) {
			fprintf(stderr, "fake: step %zu: got '%.*s'\n", i, (int)got,
			    buf);
			_exit(1);
		}
		if (steps[i].delay_ms > 0)
			sleep_ms(steps[i].delay_ms);
		fake_write(fd, steps[i].rep, steps[i].replen);
		if (steps[i].hangup)
			_exit(0);
	}
	/* Nothing more may come before the client closes. */
	n = read(fd, buf, sizeof buf);
	if (n != 0) {
		fprintf(stderr, "fake: unexpected '%.*s'\n", (int)(n > 0 ? n : 0), buf);
		_exit(2);
	}
	_exit(0);
}

/* Answer every request like a daemon whose jobs finish at once. */
static void
fake_auto(int fd)
{
	static char		in[1 << 20];
	struct proto_request	req;
	char			out[4096], num[24];
	size_t			have = 0, off, len;
	uint64_t		next_id = 1;
	ssize_t			n;

	for (;;) {
		n = read(fd, in + have, sizeof in - have);
		if (n == 0)
			_exit(have == 0 ? 0 : 4);
		if (n < 0)
			_exit(5);
		have += (size_t)n;
		off = 0;
		while ((n = proto_request_decode(in + off, have - off, 65536, &req)) > 0) {
			switch (req.cmd) {
			case PROTO_SUBMIT:
				proto_fmt_u64(num, next_id);
				len = (size_t)snprintf(out, sizeof out, "OK %s\n", num);
				fake_write(fd, out, len);
				if (req.flags & PROTO_F_WAIT) {
					len = (size_t)snprintf(out, sizeof out,
					    "RESULT %s ok %u\n", num, (unsigned)req.size);
					fake_write(fd, out, len);
					fake_write(fd, req.body, req.size);
					fake_write(fd, "\n", 1);
				}
				next_id++;
				break;
			case PROTO_WAIT:
				len = (size_t)snprintf(out, sizeof out,
				    "OK\nRESULT %" PRIu64 " cancelled 4\ngone\n", req.id);
				fake_write(fd, out, len);
				break;
			case PROTO_PING:
				fake_write(fd, "OK pong\n", 8);
				break;
			case PROTO_QUIT:
				fake_write(fd, "OK bye\n", 7);
				_exit(0);
			default:
				fake_write(fd, "ERR proto what\n", 15);
				break;
			}
			off += (size_t)n;
		}
		if (n < 0)
			_exit(6);
		memmove(in, in + off, have - off);
		have -= off;
	}
}

/* Start a fake daemon: a script, or with steps NULL the automatic one. */
static void
fake_start(struct fake *f, const struct step *steps, size_t nsteps)
{
	struct sockaddr_un	sun;
	int			lfd, fd;

	snprintf(f->dir, sizeof f->dir, "/tmp/check_client.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/jobpool.sock", f->dir);

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", f->path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof sun), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);

	f->pid = fork();
	ck_assert_int_ge(f->pid, 0);
	if (f->pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		alarm(60);
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			_exit(7);
		close(lfd);
		if (steps == NULL)
			fake_auto(fd);
		fake_script(fd, steps, nsteps);
	}
	close(lfd);
}

/* Wait for the fake daemon and check it saw what it expected. */
static void
fake_finish(struct fake *f)
{
	int	status;

	ck_assert_int_eq(waitpid(f->pid, &status, 0), f->pid);
	unlink(f->path);
	rmdir(f->dir);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "fake daemon status %d", status);
}

/* Start a scripted fake daemon and connect to it. */
static struct jobpool *
fake_connect(struct fake *f, const struct step *steps, size_t nsteps)
{
	struct jobpool	*jp;

	fake_start(f, steps, nsteps);
	jp = jobpool_connect(f->path);
	ck_assert_msg(jp != NULL, "%s", jobpool_error(NULL));
	return (jp);
}

START_TEST(test_ping)
{
	static const struct step steps[] = {
		S("PING\n", "OK pong\n"),
		S("PING\n", "ERR shutdown the daemon is stopping\n"),
		S("PING\n", "OK pong\r\n"),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_ge(jobpool_fd(jp), 0);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "shutdown");
	ck_assert_str_eq(jobpool_error(jp), "shutdown: the daemon is stopping");
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_submit)
{
	static const struct step steps[] = {
		S("SUBMIT default 5\nhello\n", "OK 17\n"),
		S("SUBMIT q.x 3 prio=-3 delay=100 timeout=2000 wait nonblock\na\0c\n",
		    "OK 18\n"),
		S("SUBMIT q 0 prio=2147483647\n\n", "OK 19 extra words\n"),
		S("SUBMIT q 0 prio=-2147483648\n\n", "OK 20\n"),
	};
	struct jobpool_submit_opts	 o;
	struct fake			 f;
	struct jobpool			*jp = fake_connect(&f, steps, NSTEPS(steps));
	uint64_t			 id = 0;

	ck_assert_int_eq(jobpool_submit(jp, NULL, "hello", 5, &id), JOBPOOL_OK);
	ck_assert_uint_eq(id, 17);

	memset(&o, 0, sizeof o);
	o.queue = "q.x";
	o.priority = -3;
	o.delay_ms = 100;
	o.timeout_ms = 2000;
	o.flags = JOBPOOL_WAIT | JOBPOOL_NONBLOCK;
	ck_assert_int_eq(jobpool_submit(jp, &o, "a\0c", 3, &id), JOBPOOL_OK);
	ck_assert_uint_eq(id, 18);

	memset(&o, 0, sizeof o);
	o.queue = "q";
	o.priority = 2147483647;
	ck_assert_int_eq(jobpool_submit(jp, &o, NULL, 0, &id), JOBPOOL_OK);
	ck_assert_uint_eq(id, 19);
	o.priority = -2147483647 - 1;
	ck_assert_int_eq(jobpool_submit(jp, &o, "", 0, NULL), JOBPOOL_OK);

	/* Bad arguments are refused without a word to the daemon. */
	o.queue = "a/b";
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_EINVAL);
	ck_assert_uint_eq(id, 0);
	ck_assert_str_eq(jobpool_error_code(jp), "");
	o.queue = "";
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_EINVAL);
	o.queue = "q";
	o.flags = 0x100;
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_EINVAL);
	o.flags = 0;
	ck_assert_int_eq(jobpool_submit(jp, &o, NULL, 1, &id), JOBPOOL_EINVAL);
	ck_assert_uint_eq(jobpool_pending(jp), 0);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_submit_errors)
{
	static const struct step steps[] = {
		S("SUBMIT q 1 nonblock\nx\n", "ERR busy queue 'q' is full\n"),
		S("SUBMIT x 1\nx\n", "ERR noqueue no queue 'x'\n"),
		S("SUBMIT q 1\nx\n", "OK notanumber\n"),
	};
	struct jobpool_submit_opts	 o;
	struct fake			 f;
	struct jobpool			*jp = fake_connect(&f, steps, NSTEPS(steps));
	uint64_t			 id = 5;

	memset(&o, 0, sizeof o);
	o.queue = "q";
	o.flags = JOBPOOL_NONBLOCK;
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_ESERVER);
	ck_assert_uint_eq(id, 0);
	ck_assert_str_eq(jobpool_error_code(jp), "busy");
	ck_assert_str_eq(jobpool_error(jp), "busy: queue 'q' is full");

	o.queue = "x";
	o.flags = 0;
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "noqueue");
	ck_assert_str_eq(jobpool_error(jp), "noqueue: no queue 'x'");

	o.queue = "q";
	ck_assert_int_eq(jobpool_submit(jp, &o, "x", 1, &id), JOBPOOL_EPROTO);
	ck_assert_str_eq(jobpool_error_code(jp), "");
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_wait_stash)
{
	static const struct step steps[] = {
		S("SUBMIT default 1 wait\na\n", "OK 1\n"),
		S("SUBMIT default 1 wait\nb\n", "OK 2\n"),
		S("SUBMIT default 1 wait\nc\n",
		    "OK 3\nRESULT 3 failed 4\noops\nRESULT 2 ok 2\nbb\n"
		    "RESULT 1 ok 3\na\0a\n"),
		S("WAIT 99\n", "OK\nRESULT 99 cancelled 8\nshutdown\n"),
		S("WAIT 100\n", "ERR notfound no job 100\n"),
		/* RESULT before the reply to the WAIT is fine too. */
		S("WAIT 101\n", "RESULT 101 weird 0\n\nOK\n"),
	};
	struct jobpool_submit_opts	 o;
	struct jobpool_result		 res;
	struct fake			 f;
	struct jobpool			*jp = fake_connect(&f, steps, NSTEPS(steps));
	uint64_t			 id;

	memset(&o, 0, sizeof o);
	o.flags = JOBPOOL_WAIT;
	ck_assert_int_eq(jobpool_submit(jp, &o, "a", 1, &id), JOBPOOL_OK);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(jobpool_submit(jp, &o, "b", 1, &id), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_submit(jp, &o, "c", 1, &id), JOBPOOL_OK);
	ck_assert_uint_eq(id, 3);

	/* 3 and 2 arrive first and are kept; no WAIT goes out for any of them. */
	ck_assert_int_eq(jobpool_wait(jp, 1, -1, &res), JOBPOOL_OK);
	ck_assert_uint_eq(res.id, 1);
	ck_assert_int_eq(res.status, JOBPOOL_JOB_OK);
	ck_assert_str_eq(res.status_name, "ok");
	ck_assert_uint_eq(res.len, 3);
	ck_assert(memcmp(res.data, "a\0a", 4) == 0);
	jobpool_result_free(&res);
	ck_assert_ptr_null(res.data);

	ck_assert_int_eq(jobpool_wait(jp, 3, 0, &res), JOBPOOL_OK);
	ck_assert_int_eq(res.status, JOBPOOL_JOB_FAILED);
	ck_assert_str_eq((char *)res.data, "oops");
	jobpool_result_free(&res);
	ck_assert_int_eq(jobpool_wait(jp, 2, 0, &res), JOBPOOL_OK);
	ck_assert_str_eq((char *)res.data, "bb");
	jobpool_result_free(&res);

	/* Not submitted with wait here: WAIT goes out first. */
	ck_assert_int_eq(jobpool_wait(jp, 99, -1, &res), JOBPOOL_OK);
	ck_assert_int_eq(res.status, JOBPOOL_JOB_CANCELLED);
	ck_assert_str_eq(res.status_name, "cancelled");
	ck_assert_str_eq((char *)res.data, "shutdown");
	jobpool_result_free(&res);

	ck_assert_int_eq(jobpool_wait(jp, 100, -1, &res), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "notfound");
	ck_assert_ptr_null(res.data);

	ck_assert_int_eq(jobpool_wait(jp, 101, -1, &res), JOBPOOL_OK);
	ck_assert_int_eq(res.status, JOBPOOL_JOB_UNKNOWN);
	ck_assert_str_eq(res.status_name, "weird");
	ck_assert_uint_eq(res.len, 0);
	ck_assert_str_eq((char *)res.data, "");
	jobpool_result_free(&res);

	ck_assert_int_eq(jobpool_wait(jp, 0, -1, &res), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_wait(jp, 1, -1, NULL), JOBPOOL_EINVAL);
	jobpool_result_free(NULL);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_wait_timeout)
{
	static const struct step steps[] = {
		S("WAIT 5\n", "OK\n"),
		SD("", "RESULT 5 timeout 0\n\n", 300),
		/* The reply to the WAIT itself comes late. */
		SD("WAIT 6\n", "OK\nRESULT 6 ok 3\nsix\n", 300),
	};
	struct jobpool_result	 res;
	struct fake		 f;
	struct jobpool		*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_wait(jp, 5, 100, &res), JOBPOOL_ETIMEDOUT);
	ck_assert_str_eq(jobpool_error(jp), "timed out waiting for job 5");
	ck_assert_int_eq(jobpool_wait(jp, 5, -1, &res), JOBPOOL_OK);
	ck_assert_int_eq(res.status, JOBPOOL_JOB_TIMEOUT);
	jobpool_result_free(&res);

	ck_assert_int_eq(jobpool_wait(jp, 6, 50, &res), JOBPOOL_ETIMEDOUT);
	/* Only a wait for the same job may go on while that reply is outstanding. */
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_wait(jp, 7, 0, &res), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_wait(jp, 6, 5000, &res), JOBPOOL_OK);
	ck_assert_str_eq((char *)res.data, "six");
	jobpool_result_free(&res);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_stats_status_cancel)
{
	static const char stats[] =
	    "daemon jobpoold version=0.1.0 pid=1 uptime=2 connections=1 jobs=0\n"
	    "queue default handler=echo workers=2 depth=0\n";
	static const struct step steps[] = {
		S("STATS\n", "DATA 111\n"
		    "daemon jobpoold version=0.1.0 pid=1 uptime=2 connections=1 jobs=0\n"
		    "queue default handler=echo workers=2 depth=0\n\n"),
		S("STATUS 4\n", "OK id=4 queue=default state=running prio=-2 attempts=3 "
		    "future=x\n"),
		S("STATUS 5\n", "OK state=queued\n"),
		S("STATUS 6\n", "ERR notfound no job 6\n"),
		S("CANCEL 4\n", "OK cancelled\n"),
		S("CANCEL 5\n", "ERR state job 5 is running\n"),
		S("STATS\n", "OK what\n"),
	};
	struct jobpool_job_info	 info;
	struct fake		 f;
	struct jobpool		*jp = fake_connect(&f, steps, NSTEPS(steps));
	char			*text = NULL;
	size_t			 len = 0;

	ck_assert_uint_eq(sizeof stats - 1, 111);
	ck_assert_int_eq(jobpool_stats(jp, &text, &len), JOBPOOL_OK);
	ck_assert_uint_eq(len, 111);
	ck_assert_str_eq(text, stats);
	free(text);

	ck_assert_int_eq(jobpool_job_status(jp, 4, &info), JOBPOOL_OK);
	ck_assert_uint_eq(info.id, 4);
	ck_assert_str_eq(info.queue, "default");
	ck_assert_str_eq(info.state, "running");
	ck_assert_int_eq(info.priority, -2);
	ck_assert_uint_eq(info.attempts, 3);
	ck_assert_int_eq(jobpool_job_status(jp, 5, &info), JOBPOOL_OK);
	ck_assert_uint_eq(info.id, 5);
	ck_assert_str_eq(info.state, "queued");
	ck_assert_str_eq(info.queue, "");
	ck_assert_int_eq(jobpool_job_status(jp, 6, &info), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "notfound");

	ck_assert_int_eq(jobpool_cancel(jp, 4), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_cancel(jp, 5), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "state");
	ck_assert_str_eq(jobpool_error(jp), "state: job 5 is running");
	ck_assert_int_eq(jobpool_cancel(jp, 0), JOBPOOL_EINVAL);

	ck_assert_int_eq(jobpool_stats(jp, &text, &len), JOBPOOL_EPROTO);
	ck_assert_ptr_null(text);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_result_during_call)
{
	static const struct step steps[] = {
		S("PING\n", "RESULT 9 ok 1\nz\nOK pong\n"),
		S("PING\n", "RESULT 10 ok 1\ny\nOK pong\n"),
	};
	struct jobpool_msg	 msg;
	struct jobpool_result	 res;
	struct fake		 f;
	struct jobpool		*jp = fake_connect(&f, steps, NSTEPS(steps));

	/* A RESULT that comes before a reply is kept for whoever asks. */
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_next(jp, &msg, 0), JOBPOOL_OK);
	ck_assert_int_eq(msg.type, JOBPOOL_MSG_RESULT);
	ck_assert_uint_eq(msg.id, 9);
	ck_assert_str_eq(msg.status_name, "ok");
	ck_assert_str_eq((const char *)msg.data, "z");
	ck_assert_int_eq(jobpool_wait(jp, 10, 0, &res), JOBPOOL_OK);
	ck_assert_str_eq((char *)res.data, "y");
	jobpool_result_free(&res);
	ck_assert_int_eq(jobpool_next(jp, &msg, 0), JOBPOOL_EAGAIN);
	ck_assert_int_eq(jobpool_next(jp, &msg, 50), JOBPOOL_ETIMEDOUT);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_pipeline)
{
	struct jobpool_submit_opts	 o;
	struct jobpool_msg		 msg;
	struct jobpool_result		 res;
	struct fake			 f;
	struct jobpool			*jp;
	char				 body[200];
	uint64_t			 next_ok = 1, results = 0, seen_wait = 0;
	const int			 n = 20000;
	int				 i, rc, oks = 0;

	fake_start(&f, NULL, 0);
	jp = jobpool_connect(f.path);
	ck_assert_ptr_nonnull(jp);

	ck_assert_int_eq(jobpool_next(jp, &msg, 0), JOBPOOL_EAGAIN);

	/*
	 * Far more than the socket buffers hold, both ways, all written before anything
	 * is read: this deadlocks unless flushing also reads.
	 */
	memset(&o, 0, sizeof o);
	o.queue = "bulk";
	o.flags = JOBPOOL_WAIT;
	for (i = 0; i < n; i++) {
		memset(body, 'a' + i % 26, sizeof body);
		snprintf(body, sizeof body, "%d", i);
		ck_assert_int_eq(jobpool_send_submit(jp, &o, body, sizeof body),
		    JOBPOOL_OK);
	}
	ck_assert_uint_gt(jobpool_pending(jp), (size_t)n * sizeof body);
	rc = jobpool_flush(jp, 0);
	ck_assert(rc == JOBPOOL_OK || rc == JOBPOOL_EAGAIN);
	ck_assert_int_eq(jobpool_flush(jp, -1), JOBPOOL_OK);
	ck_assert_uint_eq(jobpool_pending(jp), 0);

	while (oks < n || results < (uint64_t)n) {
		ck_assert_int_eq(jobpool_next(jp, &msg, 10000), JOBPOOL_OK);
		if (msg.type == JOBPOOL_MSG_OK) {
			ck_assert_uint_eq(msg.id, next_ok);
			next_ok++;
			oks++;
			continue;
		}
		ck_assert_int_eq(msg.type, JOBPOOL_MSG_RESULT);
		ck_assert_int_eq(msg.status, JOBPOOL_JOB_OK);
		ck_assert_uint_eq(msg.len, sizeof body);
		ck_assert_int_eq(atoi(msg.data), (int)(msg.id - 1));
		ck_assert_int_eq(((const char *)msg.data)[sizeof body - 1],
		    'a' + (int)((msg.id - 1) % 26));
		ck_assert_int_eq(((const char *)msg.data)[sizeof body], '\0');
		results++;
	}

	/* Raw lines and WAIT, pipelined; then a blocking call is fine again. */
	ck_assert_int_eq(jobpool_send_line(jp, "PING"), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_send_wait(jp, 7), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_send_line(jp, "STATS"), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_next(jp, &msg, -1), JOBPOOL_OK);
	ck_assert_int_eq(msg.type, JOBPOOL_MSG_OK);
	ck_assert_str_eq(msg.text, "pong");
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(jobpool_next(jp, &msg, -1), JOBPOOL_OK);
		if (msg.type == JOBPOOL_MSG_RESULT) {
			ck_assert_uint_eq(msg.id, 7);
			ck_assert_str_eq(msg.status_name, "cancelled");
			seen_wait++;
		} else if (msg.type == JOBPOOL_MSG_ERR)
			ck_assert_str_eq(msg.text, "proto what");
		else
			ck_assert_str_eq(msg.text, "");
	}
	ck_assert_uint_eq(seen_wait, 1);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);

	/* A blocking submit-and-wait after pipelining. */
	ck_assert_int_eq(jobpool_submit(jp, &o, "last", 4, &next_ok), JOBPOOL_OK);
	ck_assert_uint_eq(next_ok, (uint64_t)n + 1);
	ck_assert_int_eq(jobpool_wait(jp, next_ok, 10000, &res), JOBPOOL_OK);
	ck_assert_str_eq((char *)res.data, "last");
	jobpool_result_free(&res);

	/* Garbage lines are refused before they are sent. */
	ck_assert_int_eq(jobpool_send_line(jp, "PI\nNG"), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_send_line(jp, "PI\001NG"), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_send_line(jp, NULL), JOBPOOL_EINVAL);
	ck_assert_int_eq(jobpool_send_wait(jp, 0), JOBPOOL_EINVAL);
	ck_assert_uint_eq(jobpool_pending(jp), 0);

	/* QUIT: the daemon answers and hangs up. */
	ck_assert_int_eq(jobpool_send_line(jp, "QUIT"), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_next(jp, &msg, 10000), JOBPOOL_OK);
	ck_assert_str_eq(msg.text, "bye");
	ck_assert_int_eq(jobpool_next(jp, &msg, 10000), JOBPOOL_ECLOSED);
	ck_assert_int_eq(jobpool_next(jp, &msg, 0), JOBPOOL_ECLOSED);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_pipeline_big_bodies)
{
	struct jobpool_submit_opts	 o;
	struct jobpool_msg		 msg;
	struct fake			 f;
	struct jobpool			*jp;
	static char			 body[60000];
	int				 i, got = 0, rc;

	fake_start(&f, NULL, 0);
	jp = jobpool_connect(f.path);
	ck_assert_ptr_nonnull(jp);
	memset(&o, 0, sizeof o);
	o.flags = JOBPOOL_WAIT;
	/* Interleave sending and reading, non-blocking, like an event loop would. */
	for (i = 0; i < 200; i++) {
		memset(body, 'A' + i % 26, sizeof body);
		ck_assert_int_eq(jobpool_send_submit(jp, &o, body, sizeof body), 0);
		rc = jobpool_flush(jp, 0);
		ck_assert(rc == JOBPOOL_OK || rc == JOBPOOL_EAGAIN);
		while ((rc = jobpool_next(jp, &msg, 0)) == JOBPOOL_OK) {
			if (msg.type == JOBPOOL_MSG_RESULT) {
				ck_assert_uint_eq(msg.len, sizeof body);
				ck_assert_int_eq(((const char *)msg.data)[100],
				    'A' + (int)((msg.id - 1) % 26));
			}
			got++;
		}
		ck_assert_int_eq(rc, JOBPOOL_EAGAIN);
	}
	while (got < 400) {
		ck_assert_int_eq(jobpool_next(jp, &msg, 10000), JOBPOOL_OK);
		got++;
	}
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_closed)
{
	static const struct step steps[] = {
		S("PING\n", "OK pong\n"),
		SH("STATS\n", "DATA 100\nabc"),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));
	char		*text = (char *)1;

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_stats(jp, &text, NULL), JOBPOOL_ECLOSED);
	ck_assert_ptr_null(text);
	ck_assert_str_eq(jobpool_error(jp),
	    "connection closed by the daemon in the middle of a message");
	/* Closed stays closed. */
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_ECLOSED);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_closed_keeps_stash)
{
	static const struct step steps[] = {
		SH("PING\n", "RESULT 9 ok 1\nz\nOK pong\n"),
	};
	struct jobpool_result	 res;
	struct fake		 f;
	struct jobpool		*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_ECLOSED);
	/* What arrived before the daemon hung up is still there. */
	ck_assert_int_eq(jobpool_wait(jp, 9, 0, &res), JOBPOOL_OK);
	ck_assert_str_eq((char *)res.data, "z");
	jobpool_result_free(&res);
	ck_assert_int_eq(jobpool_wait(jp, 10, 0, &res), JOBPOOL_ECLOSED);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_closed_before_reply)
{
	static const struct step steps[] = {
		SH("PING\n", ""),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_ECLOSED);
	ck_assert_str_eq(jobpool_error(jp), "connection closed by the daemon");
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_closed_with_error)
{
	/* The daemon says why before it hangs up; the client hears it. */
	static const struct step steps[] = {
		SH("PING\n", "ERR proto line longer than 1024 bytes\n"),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_ESERVER);
	ck_assert_str_eq(jobpool_error_code(jp), "proto");
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_garbage)
{
	static const struct step steps[] = {
		S("PING\n", "HELLO there\n"),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_EPROTO);
	ck_assert_str_eq(jobpool_error(jp), "protocol error: unknown reply 'HELLO'");
	/* The connection is done for; nothing more is sent. */
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_EPROTO);
	ck_assert_str_eq(jobpool_error(jp), "protocol error: unknown reply 'HELLO'");
	ck_assert_int_eq(jobpool_send_line(jp, "PING"), JOBPOOL_EPROTO);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_garbage_binary)
{
	static const struct step steps[] = {
		S("STATS\n", "\x00\x01\x02\xff\xfe"),
	};
	struct fake	 f;
	struct jobpool	*jp = fake_connect(&f, steps, NSTEPS(steps));
	char		*text;

	ck_assert_int_eq(jobpool_stats(jp, &text, NULL), JOBPOOL_EPROTO);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_unsolicited_reply)
{
	static const struct step steps[] = {
		S("PING\n", "OK pong\nOK stray\n"),
	};
	struct jobpool_msg	 msg;
	struct fake		 f;
	struct jobpool		*jp = fake_connect(&f, steps, NSTEPS(steps));

	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	ck_assert_int_eq(jobpool_next(jp, &msg, 1000), JOBPOOL_EPROTO);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_connect_fail)
{
	char	dir[64], path[128];

	errno = 0;
	ck_assert_ptr_null(jobpool_connect("/nonexistent/jobpool/jobpool.sock"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_eq(jobpool_error(NULL),
	    "connect /nonexistent/jobpool/jobpool.sock: No such file or directory");

	snprintf(dir, sizeof dir, "/tmp/check_client.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/none.sock", dir);
	ck_assert_ptr_null(jobpool_connect(path));
	ck_assert_int_eq(errno, ENOENT);
	rmdir(dir);

	memset(path, 'x', sizeof path);
	path[sizeof path - 1] = '\0';
	ck_assert_ptr_null(jobpool_connect(path));
	ck_assert_int_eq(errno, ENAMETOOLONG);

	jobpool_close(NULL);
	ck_assert_int_eq(jobpool_ping(NULL), JOBPOOL_EINVAL);
	ck_assert_str_eq(jobpool_error_code(NULL), "");
	ck_assert_int_eq(jobpool_fd(NULL), -1);
}
END_TEST

START_TEST(test_default_socket)
{
	char	buf[256], small[8];

	setenv("JOBPOOL_SOCKET", "/x/y.sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	ck_assert_str_eq(jobpool_default_socket(buf, sizeof buf), "/x/y.sock");
	ck_assert_ptr_null(jobpool_default_socket(small, sizeof small));
	ck_assert_ptr_null(jobpool_default_socket(buf, 0));

	/* Empty counts as unset. */
	setenv("JOBPOOL_SOCKET", "", 1);
	if (geteuid() == 0)
		ck_assert_str_eq(jobpool_default_socket(buf, sizeof buf),
		    "/run/jobpool/jobpool.sock");
	else
		ck_assert_str_eq(jobpool_default_socket(buf, sizeof buf),
		    "/run/user/1000/jobpool/jobpool.sock");

	unsetenv("JOBPOOL_SOCKET");
	unsetenv("XDG_RUNTIME_DIR");
	if (geteuid() == 0)
		ck_assert_str_eq(jobpool_default_socket(buf, sizeof buf),
		    "/run/jobpool/jobpool.sock");
	else {
		char want[64];

		snprintf(want, sizeof want, "/tmp/jobpool-%lu/jobpool.sock",
		    (unsigned long)getuid());
		ck_assert_str_eq(jobpool_default_socket(buf, sizeof buf), want);
	}
}
END_TEST

START_TEST(test_default_socket_connect)
{
	static const struct step steps[] = {
		S("PING\n", "OK pong\n"),
	};
	struct fake	 f;
	struct jobpool	*jp;

	fake_start(&f, steps, NSTEPS(steps));
	setenv("JOBPOOL_SOCKET", f.path, 1);
	jp = jobpool_connect(NULL);
	ck_assert_ptr_nonnull(jp);
	ck_assert_int_eq(jobpool_ping(jp), JOBPOOL_OK);
	jobpool_close(jp);
	fake_finish(&f);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_int_eq(jobpool_status_parse("ok"), JOBPOOL_JOB_OK);
	ck_assert_int_eq(jobpool_status_parse("failed"), JOBPOOL_JOB_FAILED);
	ck_assert_int_eq(jobpool_status_parse("timeout"), JOBPOOL_JOB_TIMEOUT);
	ck_assert_int_eq(jobpool_status_parse("cancelled"), JOBPOOL_JOB_CANCELLED);
	ck_assert_int_eq(jobpool_status_parse("OK"), JOBPOOL_JOB_UNKNOWN);
	ck_assert_int_eq(jobpool_status_parse(NULL), JOBPOOL_JOB_UNKNOWN);
	ck_assert_str_eq(jobpool_status_name(JOBPOOL_JOB_OK), "ok");
	ck_assert_str_eq(jobpool_status_name(JOBPOOL_JOB_FAILED), "failed");
	ck_assert_str_eq(jobpool_status_name(JOBPOOL_JOB_TIMEOUT), "timeout");
	ck_assert_str_eq(jobpool_status_name(JOBPOOL_JOB_CANCELLED), "cancelled");
	ck_assert_str_eq(jobpool_status_name(JOBPOOL_JOB_UNKNOWN), "unknown");
}
END_TEST

/* The suite. */
static Suite *
client_suite(void)
{
	Suite	*s = suite_create("client");
	TCase	*tc;

	tc = tcase_create("blocking");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_ping);
	tcase_add_test(tc, test_submit);
	tcase_add_test(tc, test_submit_errors);
	tcase_add_test(tc, test_wait_stash);
	tcase_add_test(tc, test_wait_timeout);
	tcase_add_test(tc, test_stats_status_cancel);
	tcase_add_test(tc, test_result_during_call);
	suite_add_tcase(s, tc);

	tc = tcase_create("pipelined");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pipeline);
	tcase_add_test(tc, test_pipeline_big_bodies);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_closed);
	tcase_add_test(tc, test_closed_keeps_stash);
	tcase_add_test(tc, test_closed_before_reply);
	tcase_add_test(tc, test_closed_with_error);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_garbage_binary);
	tcase_add_test(tc, test_unsolicited_reply);
	tcase_add_test(tc, test_connect_fail);
	suite_add_tcase(s, tc);

	tc = tcase_create("misc");
	tcase_add_test(tc, test_default_socket);
	tcase_add_test(tc, test_default_socket_connect);
	tcase_add_test(tc, test_status_names);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(client_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
