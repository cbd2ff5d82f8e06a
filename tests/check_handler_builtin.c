/*
 * check_handler_builtin.c: unit tests for daemon/handler_builtin.c (handler.h): each
 * built-in through handler_builtin_find() and its run(), binary payloads, the error
 * text and status of malformed payloads, handler_spin()'s arithmetic and its wrap, and
 * the output buffer (obuf_*, worker.c) the handlers write into. The cancellation of
 * sleep and spin is driven through a real worker_main() in a forked child, since
 * jobpool_cancelled() only turns true there (a CANCEL frame on its pipe and SIGUSR1).
 */

#include "autoconf.h"

#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "handler.h"
#include "jobpoold.h"

/* The output of one run: status, and the output as a NUL-terminated copy. */
struct run {
	int	 status;
	char	*out;
	size_t	 len;
};

/* Run the built-in name on in[0..len) with an empty output buffer. */
static struct run
run_builtin(const char *name, const void *in, size_t len)
{
	const struct handler	*h = handler_builtin_find(name);
	struct jobpool_output	 ob = { NULL, 0, 0 };
	struct run		 r;

	ck_assert_ptr_nonnull(h);
	r.status = h->run(NULL, in, len, &ob);
	r.len = ob.len;
	r.out = malloc(ob.len + 1);
	ck_assert_ptr_nonnull(r.out);
	if (ob.len > 0)
		memcpy(r.out, ob.buf, ob.len);
	r.out[ob.len] = '\0';
	free(ob.buf);
	return (r);
}

static struct run
run_str(const char *name, const char *in)
{
	return (run_builtin(name, in, strlen(in)));
}

/* Run name on in and check the status and the whole output. */
static void
expect(const char *name, const char *in, int status, const char *out)
{
	struct run	r = run_str(name, in);

	ck_assert_msg(r.status == status, "%s '%s': status %d, not %d (%s)", name, in,
	    r.status, status, r.out);
	ck_assert_msg(r.len == strlen(out) && strcmp(r.out, out) == 0,
	    "%s '%s': output '%s', not '%s'", name, in, r.out, out);
	free(r.out);
}

START_TEST(test_find)
{
	static const char	*names[] = { "echo", "sha256", "spin", "sleep" };
	const struct handler	*h;
	size_t			 i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		h = handler_builtin_find(names[i]);
		ck_assert_ptr_nonnull(h);
		ck_assert_str_eq(h->name, names[i]);
		ck_assert_ptr_nonnull(h->run);
		/* Built-ins need no state: nothing to set up or tear down. */
		ck_assert_ptr_null(h->init);
		ck_assert_ptr_null(h->fini);
		ck_assert_ptr_eq(handler_builtin_find(names[i]), h);
	}
	ck_assert_ptr_null(handler_builtin_find("nope"));
	ck_assert_ptr_null(handler_builtin_find(""));
	ck_assert_ptr_null(handler_builtin_find("ECHO"));
	ck_assert_ptr_null(handler_builtin_find("echo "));
	ck_assert_ptr_null(handler_builtin_find("ech"));
	ck_assert_ptr_null(handler_builtin_find("sha256sum"));
	ck_assert_ptr_null(handler_builtin_find("plugin:/x.so"));
	ck_assert_ptr_null(handler_builtin_find("exec:/bin/cat"));
}
END_TEST

START_TEST(test_echo)
{
	static const unsigned char	bin[] = { 0, 1, 0xff, '\n', 0, 0x80, 'x', 0 };
	struct run			r;

	expect("echo", "hello", FRAME_OK, "hello");
	expect("echo", "", FRAME_OK, "");
	expect("echo", "two\nlines\n", FRAME_OK, "two\nlines\n");

	r = run_builtin("echo", bin, sizeof bin);
	ck_assert_int_eq(r.status, FRAME_OK);
	ck_assert_uint_eq(r.len, sizeof bin);
	ck_assert_int_eq(memcmp(r.out, bin, sizeof bin), 0);
	free(r.out);
}
END_TEST

/* A payload of several MiB: the output grows to hold all of it, byte for byte. */
START_TEST(test_echo_large)
{
	size_t		 n = 3 * 1024 * 1024 + 17, i;
	unsigned char	*in = malloc(n);
	struct run	 r;

	ck_assert_ptr_nonnull(in);
	for (i = 0; i < n; i++)
		in[i] = (unsigned char)(i * 131 + (i >> 12));
	r = run_builtin("echo", in, n);
	ck_assert_int_eq(r.status, FRAME_OK);
	ck_assert_uint_eq(r.len, n);
	ck_assert_int_eq(memcmp(r.out, in, n), 0);
	free(r.out);
	free(in);
}
END_TEST

/* The worker puts a frame header first: a handler appends, it never overwrites. */
START_TEST(test_appends)
{
	const struct handler	*h;
	struct jobpool_output	 ob = { NULL, 0, 0 };

	ck_assert_int_eq(obuf_add(&ob, "HEADER", 6), 0);
	h = handler_builtin_find("echo");
	ck_assert_int_eq(h->run(NULL, "abc", 3, &ob), FRAME_OK);
	h = handler_builtin_find("spin");
	ck_assert_int_eq(h->run(NULL, "3 1", 3, &ob), FRAME_OK);
	h = handler_builtin_find("sha256");
	ck_assert_int_eq(h->run(NULL, "", 0, &ob), FRAME_OK);
	ck_assert_uint_eq(ob.len, 6 + 3 + 1 + 64);
	ck_assert_int_eq(memcmp(ob.buf, "HEADERabc3"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ob.len), 0);
	free(ob.buf);
}
END_TEST

START_TEST(test_sha256)
{
	static const unsigned char	bin[4] = { 0, 0xff, 0, 0x80 };
	struct run			r;

	expect("sha256", "abc", FRAME_OK,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect("sha256", "", FRAME_OK,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Binary: the NULs count (printf '\0\377\0\200' | sha256sum). */
	r = run_builtin("sha256", bin, sizeof bin);
	ck_assert_int_eq(r.status, FRAME_OK);
	ck_assert_uint_eq(r.len, 64);
	ck_assert_str_eq(r.out,
	    "787a4bce1c8b1ef7f111820f3840c98b4ddf51d55f5e7a9b007fb6224bb563bc");
	free(r.out);
}
END_TEST

/* The sum of i*x for i below n, by the closed form, wrapping in 64 bits. */
static unsigned long long
spin_closed(unsigned long long n, unsigned long long x)
{
	unsigned long long	a = n, b = n - 1;

	if (n == 0)
		return (0);
	/* n(n-1)/2 without overflowing first: halve whichever factor is even. */
	if (a % 2 == 0)
		a /= 2;
	else
		b /= 2;
	return (a * b * x);
}

START_TEST(test_handler_spin)
{
	unsigned long long	n;

	ck_assert_uint_eq(handler_spin(0, 5), 0);
	ck_assert_uint_eq(handler_spin(1, 5), 0);
	ck_assert_uint_eq(handler_spin(2, 5), 5);
	ck_assert_uint_eq(handler_spin(5, 2), 20);
	ck_assert_uint_eq(handler_spin(10, 3), 135);
	ck_assert_uint_eq(handler_spin(1000, 0), 0);
	for (n = 0; n < 300; n++)
		ck_assert_uint_eq(handler_spin(n, 12345), spin_closed(n, 12345));
	/* Wrapping: 0 + 2^63 + 2*2^63 is 2^63 modulo 2^64. */
	ck_assert_uint_eq(handler_spin(3, 1ULL << 63), 1ULL << 63);
	/* x = 2^64 - 1 is -1: the sum is -(0+1+2+3) = 2^64 - 6. */
	ck_assert_uint_eq(handler_spin(4, ~0ULL), ~0ULL - 5);
	ck_assert_uint_eq(handler_spin(100000, 0x9e3779b97f4a7c15ULL),
	    spin_closed(100000, 0x9e3779b97f4a7c15ULL));
}
END_TEST

START_TEST(test_spin_run)
{
	char			want[32];
	unsigned long long	n;

	expect("spin", "10 3", FRAME_OK, "135");
	expect("spin", "0 7", FRAME_OK, "0");
	expect("spin", "1 7", FRAME_OK, "0");
	/* Blanks around and between the numbers are fine. */
	expect("spin", "  10\t 3 \n", FRAME_OK, "135");
	expect("spin", "4 18446744073709551615", FRAME_OK, "18446744073709551610");
	expect("spin", "3 9223372036854775808", FRAME_OK, "9223372036854775808");

	/*
	 * Over several of the slices between cancellation checks (2^22 each): the sum
	 * pieced together from the slices is the sum all at once, wrap included.
	 */
	n = 3 * (1ULL << 22) + 17;
	snprintf(want, sizeof want, "%llu", spin_closed(n, 0x9e3779b97f4a7c15ULL));
	{
		char	in[64];

		snprintf(in, sizeof in, "%llu %llu", n, 0x9e3779b97f4a7c15ULL);
		expect("spin", in, FRAME_OK, want);
	}
	snprintf(want, sizeof want, "%llu", spin_closed(1ULL << 22, 3));
	expect("spin", "4194304 3", FRAME_OK, want);
}
END_TEST

#define SPIN_ERR	"spin: the payload must be 'N X', two decimal integers, got '"

START_TEST(test_spin_malformed)
{
	static const char	*bad[] = {
		"", " ", "10", "10 ", "x", "10 x", "a b", "10 3 4", "10 3x", "-1 3",
		"1 -3", "+1 3", "1.5 3", "0x10 3",
		"18446744073709551616 1",	/* 2^64: does not fit */
		"1 99999999999999999999",
	};
	char			 want[128];
	struct run		 r;
	size_t			 i;

	/* Malformed is permanent: retrying the same payload cannot help. */
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(want, sizeof want, SPIN_ERR "%s'", bad[i]);
		r = run_str("spin", bad[i]);
		ck_assert_msg(r.status == FRAME_PERMANENT, "'%s': status %d", bad[i],
		    r.status);
		ck_assert_msg(strcmp(r.out, want) == 0, "'%s': %s", bad[i], r.out);
		free(r.out);
	}
	/* Unprintable bytes are quoted as '?', NULs included. */
	r = run_builtin("spin", "1\n\0\x7f" "2", 5);
	ck_assert_int_eq(r.status, FRAME_PERMANENT);
	ck_assert_str_eq(r.out, SPIN_ERR "1???2'");
	free(r.out);
	/* Long payloads are cut at 40 bytes. */
	expect("spin", "1 2 345678901234567890123456789012345678", FRAME_PERMANENT,
	    SPIN_ERR "1 2 345678901234567890123456789012345678'");
	expect("spin", "1 2 3456789012345678901234567890123456789", FRAME_PERMANENT,
	    SPIN_ERR "1 2 345678901234567890123456789012345678...'");
}
END_TEST

/* sleep answers with its payload, unchanged. */
START_TEST(test_sleep_run)
{
	struct timespec	t0, t1;
	long		ms;

	expect("sleep", "0", FRAME_OK, "0");
	expect("sleep", " 0\n", FRAME_OK, " 0\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect("sleep", "50", FRAME_OK, "50");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_ge(ms, 50);	/* at least: a sleep never ends early */
}
END_TEST

#define SLEEP_ERR	"sleep: the payload must be milliseconds, 0 to 2073600000, got '"

START_TEST(test_sleep_malformed)
{
	static const char	*bad[] = {
		"", " ", "x", "-5", "1.5", "5ms", "5 5", "0x10",
		"2073600001",		/* one more than 24 days */
		"99999999999999999999",
		"18446744073709551616",
	};
	char			 want[128];
	struct run		 r;
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(want, sizeof want, SLEEP_ERR "%s'", bad[i]);
		r = run_str("sleep", bad[i]);
		ck_assert_msg(r.status == FRAME_PERMANENT, "'%s': status %d", bad[i],
		    r.status);
		ck_assert_msg(strcmp(r.out, want) == 0, "'%s': %s", bad[i], r.out);
		free(r.out);
	}
	r = run_builtin("sleep", "\0" "5", 2);
	ck_assert_int_eq(r.status, FRAME_PERMANENT);
	ck_assert_str_eq(r.out, SLEEP_ERR "?5'");
	free(r.out);
}
END_TEST

static volatile sig_atomic_t	alarms;

static void
alarm_handler(int sig)
{
	alarms++;
}

/*
 * A signal that is not a cancel (jobpool_cancelled() says no) interrupts nanosleep;
 * sleep goes on with what was left and still answers OK, having slept the whole time.
 */
START_TEST(test_sleep_signal_not_cancel)
{
	struct sigaction	sa;
	struct itimerval	it;
	struct timespec		t0, t1;
	long			ms;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = alarm_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: nanosleep returns EINTR */
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	memset(&it, 0, sizeof it);
	it.it_value.tv_usec = 20000;
	it.it_interval.tv_usec = 20000;
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect("sleep", "300", FRAME_OK, "300");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_ge(alarms, 1);
	/* nanosleep's remainder is exact to the microsecond: allow for rounding only. */
	ck_assert_int_ge(ms, 295);
}
END_TEST

START_TEST(test_obuf_growth)
{
	struct jobpool_output	ob = { NULL, 0, 0 };
	char			big[5000];
	char			*p;

	/* Nothing is allocated until something is asked for. */
	ck_assert_int_eq(obuf_reserve(&ob, 0), 0);
	ck_assert_ptr_null(ob.buf);
	ck_assert_uint_eq(ob.cap, 0);
	/* The first allocation is 4 KiB, then it doubles as needed. */
	ck_assert_int_eq(obuf_reserve(&ob, 1), 0);
	ck_assert_ptr_nonnull(ob.buf);
	ck_assert_uint_eq(ob.cap, 4096);
	ck_assert_uint_eq(ob.len, 0);
	ck_assert_int_eq(obuf_add(&ob, "abc", 3), 0);
	ck_assert_uint_eq(ob.len, 3);
	/* Room enough: the buffer stays where it is. */
	p = ob.buf;
	ck_assert_int_eq(obuf_reserve(&ob, 4093), 0);
	ck_assert_ptr_eq(ob.buf, p);
	ck_assert_uint_eq(ob.cap, 4096);
	memset(big, 'z', sizeof big);
	ck_assert_int_eq(obuf_add(&ob, big, sizeof big), 0);
	ck_assert_uint_eq(ob.len, 5003);
	ck_assert_uint_eq(ob.cap, 8192);
	ck_assert_int_eq(memcmp(ob.buf, "abc", 3), 0);
	ck_assert_int_eq(memcmp(ob.buf + 3, big, sizeof big), 0);
	/* A big request doubles as often as it takes, in one reallocation. */
	ck_assert_int_eq(obuf_reserve(&ob, 100000), 0);
	ck_assert_uint_eq(ob.cap, 131072);
	ck_assert_uint_eq(ob.len, 5003);
	ck_assert_int_eq(memcmp(ob.buf + 3, big, sizeof big), 0);
	free(ob.buf);
}
END_TEST

START_TEST(test_obuf_printf)
{
	struct jobpool_output	ob = { NULL, 0, 0 };
	char			long_s[9000];

	ck_assert_int_eq(obuf_printf(&ob, "%s=%d", "n", 42), 0);
	ck_assert_uint_eq(ob.len, 4);
	ck_assert_int_eq(memcmp(ob.buf, "n=42", 4), 0);
	/* The NUL vsnprintf writes is past len: the next write goes over it. */
	ck_assert_int_eq(ob.buf[ob.len], '\0');
	ck_assert_int_eq(obuf_printf(&ob, "%s", ""), 0);
	ck_assert_uint_eq(ob.len, 4);
	ck_assert_int_eq(obuf_add(&ob, "!", 1), 0);
	ck_assert_int_eq(memcmp(ob.buf, "n=42!", 5), 0);
	/* Longer than the first allocation. */
	memset(long_s, 'q', sizeof long_s - 1);
	long_s[sizeof long_s - 1] = '\0';
	ck_assert_int_eq(obuf_printf(&ob, "[%s]", long_s), 0);
	ck_assert_uint_eq(ob.len, 5 + 2 + sizeof long_s - 1);
	ck_assert_int_eq(ob.buf[5], '[');
	ck_assert_int_eq(ob.buf[ob.len - 1], ']');
	ck_assert_int_eq(ob.buf[ob.len - 2], 'q');
	ck_assert_uint_ge(ob.cap, ob.len + 1);
	free(ob.buf);
}
END_TEST

/*
 * An impossible size (a plugin passing a negative length cast to size_t, say) fails
 * with -1 and leaves the buffer as it was, rather than doubling the capacity past
 * SIZE_MAX to 0.
 */
START_TEST(test_obuf_too_big)
{
	struct jobpool_output	ob = { NULL, 0, 0 };

	/* The old code looped here forever (cap doubled to 0, and 0 - 0 < n). */
	ck_assert_int_eq(obuf_reserve(&ob, SIZE_MAX), -1);
	ck_assert_ptr_null(ob.buf);
	ck_assert_uint_eq(ob.cap, 0);
	ck_assert_int_eq(obuf_add(&ob, "abc", 3), 0);
	ck_assert_int_eq(obuf_reserve(&ob, SIZE_MAX - 1), -1);
	ck_assert_int_eq(obuf_reserve(&ob, SIZE_MAX / 2 + 1), -1);
	ck_assert_int_eq(obuf_add(&ob, "abc", (size_t)-1), -1);
	ck_assert_uint_eq(ob.len, 3);
	ck_assert_uint_eq(ob.cap, 4096);
	ck_assert_int_eq(memcmp(ob.buf, "abc", 3), 0);
	/* Still usable. */
	ck_assert_int_eq(obuf_add(&ob, "def", 3), 0);
	ck_assert_int_eq(memcmp(ob.buf, "abcdef", 6), 0);
	free(ob.buf);
}
END_TEST

/* ------------------------------------------------------------------------------- */
/* Cancellation, through a real worker process. */

struct child {
	pid_t	pid;
	int	to;		/* job frames down */
	int	from;		/* result frames up */
};

static struct config		child_cf;
static struct queue_config	child_qc;

/* Read exactly len bytes from fd within 30 s. */
static void
read_full(int fd, void *buf, size_t len)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	size_t		off = 0;
	ssize_t		n;

	while (off < len) {
		ck_assert_int_eq(poll(&pfd, 1, 30000), 1);
		n = read(fd, (char *)buf + off, len - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
}

/* Read one frame; its payload into a malloc'd NUL-terminated *data. */
static void
read_frame(int fd, struct frame_hdr *h, char **data)
{
	unsigned char	hdr[FRAME_HDR_LEN];

	read_full(fd, hdr, sizeof hdr);
	ck_assert_int_eq(frame_get(hdr, sizeof hdr, 1 << 20, h), 1);
	*data = malloc((size_t)h->len + 1);
	ck_assert_ptr_nonnull(*data);
	read_full(fd, *data, h->len);
	(*data)[h->len] = '\0';
}

static void
write_frame(int fd, uint8_t type, uint8_t status, uint64_t id, const char *data)
{
	size_t		 len = data != NULL ? strlen(data) : 0;
	unsigned char	 buf[FRAME_HDR_LEN + 64];

	ck_assert_uint_le(len, 64);
	frame_put(buf, type, status, id, (uint32_t)len);
	if (len > 0)
		memcpy(buf + FRAME_HDR_LEN, data, len);
	ck_assert_int_eq(write(fd, buf, FRAME_HDR_LEN + len), (ssize_t)(FRAME_HDR_LEN + len));
}

/* Fork a worker running handler; wait for its READY. */
static void
child_start(struct child *c, const char *handler)
{
	struct frame_hdr	 h;
	int			 down[2], up[2];
	char			*data;

	memset(&child_cf, 0, sizeof child_cf);
	child_cf.max_payload = 1 << 20;
	child_cf.log_level = LOG_ERR;
	memset(&child_qc, 0, sizeof child_qc);
	child_qc.name = (char *)"t";
	child_qc.handler = (char *)handler;
	child_qc.grace_ms = 5000;
	ck_assert_int_eq(pipe(down), 0);
	ck_assert_int_eq(pipe(up), 0);
	/* The worker exits at once unless its parent is the master. */
	master_pid = getpid();
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		close(down[1]);
		close(up[0]);
		alarm(60);
		worker_main(&child_cf, &child_qc, down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	c->to = down[1];
	c->from = up[0];
	read_frame(c->from, &h, &data);
	ck_assert_int_eq(h.type, FRAME_READY);
	ck_assert_msg(h.status == 0, "worker not ready: %s", data);
	free(data);
}

/* Close the job pipe: the worker exits 0 once it has nothing left. */
static void
child_finish(struct child *c)
{
	int	status;

	close(c->to);
	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	close(c->from);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "worker status 0x%x", status);
}

/* Wait until the worker has read everything written to its job pipe. */
static void
child_drained(struct child *c)
{
	int	i, n = -1;

	for (i = 0; i < 3000; i++) {
		ck_assert_int_eq(ioctl(c->to, FIONREAD, &n), 0);
		if (n == 0)
			return;
		usleep(10000);
	}
	ck_abort_msg("the worker did not read its job (%d bytes left)", n);
}

/*
 * Start a job that runs until cancelled, cancel it with reason, and return its result.
 * Once the worker has read the job it is running it (or about to): the CANCEL then
 * arrives while it runs. SIGUSR1 is repeated until the result comes, because one that
 * lands between the worker's read and the handler's first check would wake nothing.
 */
static void
cancel_running(const char *handler, const char *payload, int reason,
    struct frame_hdr *h, char **data)
{
	struct child	c;
	struct pollfd	pfd;
	int		i;

	child_start(&c, handler);
	write_frame(c.to, FRAME_JOB, 0, 7, payload);
	child_drained(&c);
	write_frame(c.to, FRAME_CANCEL, (uint8_t)reason, 7, NULL);
	pfd.fd = c.from;
	pfd.events = POLLIN;
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(kill(c.pid, SIGUSR1), 0);
		if (poll(&pfd, 1, 100) == 1)
			break;
	}
	ck_assert_msg(i < 300, "no result 30 s after the cancel");
	read_frame(c.from, h, data);
	child_finish(&c);
}

START_TEST(test_sleep_cancelled)
{
	struct frame_hdr	 h;
	char			*data;

	cancel_running("sleep", "600000", FRAME_CANCEL_USER, &h, &data);
	ck_assert_int_eq(h.type, FRAME_RESULT);
	ck_assert_uint_eq(h.id, 7);
	ck_assert_int_eq(h.status, FRAME_CANCELLED);
	ck_assert_str_eq(data, "sleep interrupted; cleanup ran (0 hooks)");
	free(data);
}
END_TEST

START_TEST(test_spin_cancelled)
{
	struct frame_hdr	 h;
	char			*data;

	/* 2^64 - 1 iterations: it never ends on its own. */
	cancel_running("spin", "18446744073709551615 3", FRAME_CANCEL_TIMEOUT, &h, &data);
	ck_assert_int_eq(h.type, FRAME_RESULT);
	ck_assert_uint_eq(h.id, 7);
	ck_assert_int_eq(h.status, FRAME_CANCELLED);
	ck_assert_str_eq(data, "spin stopped; cleanup ran (0 hooks)");
	free(data);
}
END_TEST

/* The same worker, not cancelled: sleep and spin answer normally. */
START_TEST(test_worker_not_cancelled)
{
	struct frame_hdr	 h;
	struct child		 c;
	char			*data;

	child_start(&c, "sleep");
	write_frame(c.to, FRAME_JOB, 0, 1, "20");
	read_frame(c.from, &h, &data);
	ck_assert_int_eq(h.type, FRAME_RESULT);
	ck_assert_uint_eq(h.id, 1);
	ck_assert_int_eq(h.status, FRAME_OK);
	ck_assert_str_eq(data, "20");
	free(data);
	/* A SIGUSR1 with no CANCEL behind it does not stop a job. */
	write_frame(c.to, FRAME_JOB, 0, 2, "300");
	child_drained(&c);
	ck_assert_int_eq(kill(c.pid, SIGUSR1), 0);
	read_frame(c.from, &h, &data);
	ck_assert_uint_eq(h.id, 2);
	ck_assert_int_eq(h.status, FRAME_OK);
	ck_assert_str_eq(data, "300");
	free(data);
	write_frame(c.to, FRAME_JOB, 0, 3, "bad");
	read_frame(c.from, &h, &data);
	ck_assert_uint_eq(h.id, 3);
	ck_assert_int_eq(h.status, FRAME_PERMANENT);
	ck_assert_str_eq(data, SLEEP_ERR "bad'");
	free(data);
	child_finish(&c);

	child_start(&c, "spin");
	write_frame(c.to, FRAME_JOB, 0, 4, "10 3");
	read_frame(c.from, &h, &data);
	ck_assert_uint_eq(h.id, 4);
	ck_assert_int_eq(h.status, FRAME_OK);
	ck_assert_str_eq(data, "135");
	free(data);
	child_finish(&c);
}
END_TEST

static Suite *
handler_builtin_suite(void)
{
	Suite	*s = suite_create("handler_builtin");
	TCase	*tc = tcase_create("core");
	TCase	*tw = tcase_create("worker");

	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_echo);
	tcase_add_test(tc, test_echo_large);
	tcase_add_test(tc, test_appends);
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_handler_spin);
	tcase_add_test(tc, test_spin_run);
	tcase_add_test(tc, test_spin_malformed);
	tcase_add_test(tc, test_sleep_run);
	tcase_add_test(tc, test_sleep_malformed);
	tcase_add_test(tc, test_sleep_signal_not_cancel);
	tcase_add_test(tc, test_obuf_growth);
	tcase_add_test(tc, test_obuf_printf);
	tcase_add_test(tc, test_obuf_too_big);
	suite_add_tcase(s, tc);
	tcase_add_test(tw, test_sleep_cancelled);
	tcase_add_test(tw, test_spin_cancelled);
	tcase_add_test(tw, test_worker_not_cancelled);
	suite_add_tcase(s, tw);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(handler_builtin_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
