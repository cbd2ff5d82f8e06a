/*
 * handler_builtin.c: the handlers compiled into jobpoold: echo, sha256, spin, sleep.
 * They run in workers like any other handler. sleep also carries several jobs at once
 * (handler.h's start): with a queue's concurrency above 1, one worker sleeps for that
 * many jobs at a time, each with its own end, which is what an IO handler looks like.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "handler.h"
#include "sha256.h"

/* Parse an unsigned decimal from [*p, end), skipping leading blanks. */
static int
parse_ull(const char **p, const char *end, unsigned long long *out)
{
	const char		*s = *p;
	unsigned long long	 v = 0;
	int			 digits = 0;

	while (s < end && isspace((unsigned char)*s))
		s++;
	while (s < end && *s >= '0' && *s <= '9') {
		if (v > (~0ULL - (unsigned)(*s - '0')) / 10)
			return (-1);
		v = v * 10 + (unsigned)(*s - '0');
		s++;
		digits++;
	}
	if (digits == 0)
		return (-1);
	*p = s;
	*out = v;
	return (0);
}

/* Only blanks may follow. */
static int
only_space(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return (p == end);
}

/* Quote a payload into an error message, short and printable. */
static void
bad_payload(struct jobpool_output *out, const char *what, const char *in, size_t len)
{
	size_t	i;

	obuf_printf(out, "%s, got '", what);
	for (i = 0; i < len && i < 40; i++)
		obuf_printf(out, "%c", isprint((unsigned char)in[i]) ? in[i] : '?');
	obuf_printf(out, "%s'", len > 40 ? "..." : "");
}

static int
echo_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	return (obuf_add(out, in, len) == 0 ? FRAME_OK : FRAME_FAILED);
}

static int
sha256_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	static const char	hex[] = "0123456789abcdef";
	struct sha256		s;
	unsigned char		d[SHA256_DIGEST_LEN];
	char			text[2 * SHA256_DIGEST_LEN];
	int			i;

	sha256_init(&s);
	sha256_update(&s, in, len);
	sha256_final(&s, d);
	for (i = 0; i < SHA256_DIGEST_LEN; i++) {
		text[2 * i] = hex[d[i] >> 4];
		text[2 * i + 1] = hex[d[i] & 15];
	}
	return (obuf_add(out, text, sizeof text) == 0 ? FRAME_OK : FRAME_FAILED);
}

/*
 * The sum of i*x for i below n, wrapping. The empty asm makes sum opaque to the
 * optimiser at every step, so the compiler cannot replace the loop by its closed form.
 */
unsigned long long
handler_spin(unsigned long long n, unsigned long long x)
{
	unsigned long long	sum = 0, i;

	for (i = 0; i < n; i++) {
		sum += i * x;
		__asm__ volatile("" : "+r"(sum));
	}
	return (sum);
}

/* spin in slices, asking between slices whether the job was cancelled. */
static int
spin_cancellable(unsigned long long n, unsigned long long x, unsigned long long *sum)
{
	const unsigned long long	slice = 1ULL << 22;
	unsigned long long		i, k, s = 0;

	for (i = 0; i < n; i += slice) {
		k = n - i < slice ? n - i : slice;
		/* The sum over [i, i+k) is the sum over [0, k) shifted by i*k*x. */
		s += handler_spin(k, x) + i * k * x;
		if (jobpool_cancelled())
			return (-1);
	}
	*sum = s;
	return (0);
}

static int
spin_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	const char		*p = in, *end = in + len;
	unsigned long long	 n, x, sum;

	if (parse_ull(&p, end, &n) != 0 || parse_ull(&p, end, &x) != 0 ||
	    !only_space(p, end)) {
		bad_payload(out, "spin: the payload must be 'N X', two decimal integers",
		    in, len);
		return (FRAME_PERMANENT);
	}
	if (spin_cancellable(n, x, &sum) != 0) {
		obuf_printf(out, "spin stopped");
		return (FRAME_CANCELLED);
	}
	return (obuf_printf(out, "%llu", sum) == 0 ? FRAME_OK : FRAME_FAILED);
}

/* CLOCK_MONOTONIC in ns. */
static unsigned long long
mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((unsigned long long)ts.tv_sec * 1000000000ULL +
	    (unsigned long long)ts.tv_nsec);
}

static int
sleep_run(void *state, const char *in, size_t len, struct jobpool_output *out)
{
	const char		*p = in, *end = in + len;
	unsigned long long	 ms, until, now;
	struct timespec		 ts;
	sigset_t		 usr1, orig;

	if (parse_ull(&p, end, &ms) != 0 || !only_space(p, end) ||
	    ms > 24ULL * 86400 * 1000) {
		bad_payload(out, "sleep: the payload must be milliseconds, "
		    "0 to 2073600000", in, len);
		return (FRAME_PERMANENT);
	}
	/*
	 * A cancel arrives as SIGUSR1. It is blocked except inside ppoll(), which
	 * unblocks it atomically: a cancel that came before the sleep began is seen by
	 * jobpool_cancelled(), and one that comes during it ends it.
	 */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &orig);
	until = mono_ns() + ms * 1000000ULL;
	for (;;) {
		if (jobpool_cancelled()) {
			sigprocmask(SIG_SETMASK, &orig, NULL);
			obuf_printf(out, "sleep interrupted");
			return (FRAME_CANCELLED);
		}
		if ((now = mono_ns()) >= until)
			break;
		ts.tv_sec = (time_t)((until - now) / 1000000000ULL);
		ts.tv_nsec = (long)((until - now) % 1000000000ULL);
		(void)ppoll(NULL, 0, &ts, &orig);
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return (obuf_add(out, in, len) == 0 ? FRAME_OK : FRAME_FAILED);
}

/* sleep with several jobs at once: each job's end and its payload (the result). */
struct sleep_job {
	uint64_t		 id;
	unsigned long long	 until;		/* mono_ns */
	char			*data;
	size_t			 len;
};
/* The worker's sleeping jobs: one handler per worker process, so no state to pass. */
static struct sleep_state {
	struct sleep_job	*jobs;
	size_t			 n, cap;
} sleep_jobs;

/* Begin sleeping for job id; a bad payload ends it at once. */
static void
sleep_start(void *state, uint64_t id, const char *in, size_t len)
{
	struct sleep_state	*ss = &sleep_jobs;
	struct jobpool_output	 err = { NULL, 0, 0 };
	struct sleep_job	*n;
	const char		*p = in, *end = in + len;
	unsigned long long	 ms;

	if (parse_ull(&p, end, &ms) != 0 || !only_space(p, end) ||
	    ms > 24ULL * 86400 * 1000) {
		bad_payload(&err, "sleep: the payload must be milliseconds, "
		    "0 to 2073600000", in, len);
		worker_done(id, FRAME_PERMANENT, err.buf, err.len);
		free(err.buf);
		return;
	}
	if (ss->n == ss->cap) {
		size_t cap = ss->cap ? ss->cap * 2 : 16;

		if ((n = reallocarray(ss->jobs, cap, sizeof *n)) == NULL)
			goto oom;
		ss->jobs = n;
		ss->cap = cap;
	}
	n = &ss->jobs[ss->n];
	if ((n->data = malloc(len > 0 ? len : 1)) == NULL)
		goto oom;
	memcpy(n->data, in, len);
	n->len = len;
	n->id = id;
	n->until = mono_ns() + ms * 1000000ULL;
	ss->n++;
	return;
oom:
	worker_done(id, FRAME_FAILED, "sleep: out of memory", 20);
}

/* Forget job i (its end was answered, or it was cancelled). */
static void
sleep_forget(struct sleep_state *ss, size_t i)
{
	free(ss->jobs[i].data);
	ss->jobs[i] = ss->jobs[--ss->n];
}

static void
sleep_cancel(void *state, uint64_t id)
{
	struct sleep_state	*ss = &sleep_jobs;
	size_t			 i;

	for (i = 0; i < ss->n; i++) {
		if (ss->jobs[i].id == id) {
			sleep_forget(ss, i);
			return;
		}
	}
}

/* Wait for fd or the first job's end; answer every job whose time has come. */
static void
sleep_wait(void *state, int fd)
{
	struct sleep_state	*ss = &sleep_jobs;
	struct pollfd		 pfd = { fd, POLLIN, 0 };
	unsigned long long	 now = mono_ns(), first = ~0ULL;
	struct timespec		 ts;
	size_t			 i;

	for (i = 0; i < ss->n; i++) {
		if (ss->jobs[i].until < first)
			first = ss->jobs[i].until;
	}
	if (first > now) {
		ts.tv_sec = (time_t)((first - now) / 1000000000ULL);
		ts.tv_nsec = (long)((first - now) % 1000000000ULL);
		/* SIGUSR1 (a CANCEL) ends it too; the frame is in the pipe by then. */
		(void)ppoll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0,
		    first == ~0ULL ? NULL : &ts, NULL);
	}
	now = mono_ns();
	for (i = 0; i < ss->n; ) {
		if (ss->jobs[i].until <= now) {
			worker_done(ss->jobs[i].id, FRAME_OK, ss->jobs[i].data,
			    ss->jobs[i].len);
			sleep_forget(ss, i);
		} else
			i++;
	}
}

static const struct handler builtins[] = {
	{ "echo", NULL, echo_run, NULL },
	{ "sha256", NULL, sha256_run, NULL },
	{ "spin", NULL, spin_run, NULL },
	{ "sleep", NULL, sleep_run, NULL, .start = sleep_start,
	    .cancel = sleep_cancel, .wait = sleep_wait },
};

/* Find a built-in handler by name. */
const struct handler *
handler_builtin_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
		if (strcmp(builtins[i].name, name) == 0)
			return (&builtins[i]);
	}
	return (NULL);
}
