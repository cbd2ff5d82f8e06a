/*
 * benchutil.h: small helpers shared by the benchmark programs in bench/ (header-only,
 * so each program is one `cc -O2` away): clocks, growable buffers, latency summaries,
 * and the payload of job i (64 printable bytes, as in every workload).
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

static inline double
now_s(void)
{
	return (now_ns() / 1e9);
}

static inline void
die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(3);
}

static inline void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		die("malloc");
	return (p);
}

/*
 * The payload of job i: exactly len (64) printable bytes, starting with the decimal
 * index and a space, so a result can be matched back to its job by parsing its start.
 */
static inline void
job_payload(char *dst, size_t len, unsigned long i)
{
	static const char	fill[] = "abcdefghijklmnopqrstuvwxyz0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char			num[24];
	int			n = snprintf(num, sizeof num, "%lu ", i);
	size_t			k;

	for (k = 0; k < len; k++)
		dst[k] = k < (size_t)n ? num[k] : fill[(k + i) % (sizeof fill - 1)];
}

/* Parse the job index at the start of a payload. */
static inline unsigned long
job_index(const char *p, size_t len)
{
	unsigned long	v = 0;
	size_t		k;

	for (k = 0; k < len && p[k] >= '0' && p[k] <= '9'; k++)
		v = v * 10 + (unsigned long)(p[k] - '0');
	return (v);
}

/* A growable byte buffer with a read offset. */
struct buf {
	char	*p;
	size_t	 off, len, cap;
};

static inline void
buf_reserve(struct buf *b, size_t more)
{
	if (b->off > 0 && (b->off == b->len || b->off > b->cap / 2)) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + more > b->cap) {
		size_t	c = b->cap ? b->cap : 65536;

		while (c < b->len + more)
			c *= 2;
		if ((b->p = realloc(b->p, c)) == NULL)
			die("realloc");
		b->cap = c;
	}
}

static inline void
buf_add(struct buf *b, const void *d, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static inline void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static inline size_t
buf_avail(const struct buf *b)
{
	return (b->len - b->off);
}

/* Read what fd has into b. >0 bytes read, 0 EOF, -1 EAGAIN. Dies on other errors. */
static inline ssize_t
buf_read(struct buf *b, int fd)
{
	ssize_t	n;

	buf_reserve(b, 262144);
	for (;;) {
		n = read(fd, b->p + b->len, b->cap - b->len);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return (-1);
		die("read");
	}
	b->len += (size_t)n;
	return (n);
}

/* Write what b holds to fd. 0: all written, -1: some left (EAGAIN). Dies on errors. */
static inline int
buf_write(struct buf *b, int fd)
{
	ssize_t	n;

	while (buf_avail(b) > 0) {
		n = write(fd, b->p + b->off, buf_avail(b));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return (-1);
			die("write");
		}
		b->off += (size_t)n;
	}
	b->off = b->len = 0;
	return (0);
}

/*
 * The open-loop clients' wait for the next send. A sleeping thread wakes late: on this
 * kind of VM a ppoll() for 200 us ahead returns 30-50 us after its time even with the
 * timer slack at 1 ns (bench/wakeup.c timer), and every job sent then is charged that
 * lateness, whatever system it goes to. With spin_ns > 0 the client sleeps until
 * spin_ns before the due time and polls its fds without blocking from there (a job
 * then goes out 10-15 us after its time here, and a reply that arrives meanwhile is
 * read at once). spin_ns comes from BENCH_SPIN_US, which jplat, bs_bench and gm_bench
 * read (not py_peer.py); the suite runs with 0, sleeping the whole wait
 * (bench/README.md, "Where W3 at 5,000/s stands").
 * Returns what ppoll/poll returned (events in p[].revents), or 0 when the time is due.
 */
#ifdef _GNU_SOURCE		/* ppoll() */
static inline uint64_t
bench_spin_ns(void)
{
	const char	*e = getenv("BENCH_SPIN_US");

	return (e ? (uint64_t)strtoul(e, NULL, 10) * 1000 : 0);
}

static inline int
wait_due(struct pollfd *p, nfds_t np, uint64_t due, uint64_t spin_ns)
{
	uint64_t	now = now_ns();
	struct timespec	ts;
	int		r;

	if (due > now + spin_ns) {
		uint64_t	d = due - now - spin_ns;

		ts.tv_sec = (time_t)(d / 1000000000ull);
		ts.tv_nsec = (long)(d % 1000000000ull);
		if ((r = ppoll(p, np, &ts, NULL)) != 0)
			return (r);
	}
	while (now_ns() < due)
		if ((r = poll(p, np, 0)) != 0)
			return (r);
	return (0);
}
#endif

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

static inline double
pct_us(uint64_t *v, size_t n, double q)
{
	return (n ? v[(size_t)(q * (double)(n - 1) + 0.5)] / 1e3 : 0);
}

static inline void
print_pcts(const char *pre, uint64_t *v, size_t n)
{
	qsort(v, n, sizeof v[0], cmp_u64);
	printf(" %sp50_us=%.1f %sp90_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f",
	    pre, pct_us(v, n, 0.50), pre, pct_us(v, n, 0.90), pre, pct_us(v, n, 0.99),
	    pre, pct_us(v, n, 0.999), pre, pct_us(v, n, 1.0));
}

/*
 * The open-loop clients' record of W3's three measures, the same for every peer: each
 * job's scheduled time (set by the client) and the time the write that carried it
 * returned; each measured result's latency from both, and the lag between them.
 */
struct lat_log {
	uint64_t	*sched, *wrote;		/* per job, warm-up included */
	uint64_t	*lat, *sl, *lag;	/* per measured result */
	size_t		 n, nwarm, nres, flushed;
	uint64_t	 t0;			/* job i is due at t0 + i / rate */
	double		 rate;
};

/* n jobs (nwarm of them the warm-up) to offer at rate per second (lat_log_start). */
static inline void
lat_log_init(struct lat_log *l, size_t n, size_t nwarm, double rate)
{
	l->n = n;
	l->rate = rate;
	l->t0 = 0;
	l->sched = xmalloc(n * sizeof *l->sched);
	l->lat = xmalloc(n * sizeof *l->lat);
	l->sl = xmalloc(n * sizeof *l->sl);
	l->lag = xmalloc(n * sizeof *l->lag);
	if ((l->wrote = calloc(n, sizeof *l->wrote)) == NULL)
		die("calloc");
	l->nwarm = nwarm;
	l->nres = l->flushed = 0;
}

static inline void
lat_log_free(struct lat_log *l)
{
	free(l->sched);
	free(l->wrote);
	free(l->lat);
	free(l->sl);
	free(l->lag);
	memset(l, 0, sizeof *l);
}

/* The schedule starts: job 0 is due at t0 (the clients take 1 ms from now). */
static inline void
lat_log_start(struct lat_log *l, uint64_t t0)
{
	l->t0 = t0;
}

/* When job i is due. */
static inline uint64_t
lat_due(const struct lat_log *l, size_t i)
{
	return (l->t0 + (uint64_t)((double)i * 1e9 / l->rate));
}

/* Every job before sent is in the socket now. */
static inline void
lat_log_written(struct lat_log *l, size_t sent)
{
	uint64_t	tw = now_ns();

	for (; l->flushed < sent; l->flushed++)
		l->wrote[l->flushed] = tw;
}

/*
 * Job i's result was read at t. A job not marked written went out in a write that left
 * more behind (EAGAIN) and was answered before the rest: it is charged from its due time.
 */
static inline void
lat_log_result(struct lat_log *l, size_t i, uint64_t t)
{
	uint64_t	w;

	if (i < l->nwarm)
		return;
	w = l->wrote[i] ? l->wrote[i] : l->sched[i];
	l->lat[l->nres] = t - l->sched[i];
	l->sl[l->nres] = t - w;
	l->lag[l->nres++] = w - l->sched[i];
}

/*
 * Print the latency summary line that bench/lib.sh parses (py_peer.py prints the same):
 *   offered=R achieved=R jobs=N lost=L p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *   send_p50_us=.. send_p90_us=.. send_p99_us=.. send_p999_us=.. send_max_us=..
 *   lag_p50_us=.. lag_p99_us=..
 * (from the due time; submit-to-result; the lag). achieved: the measured results per
 * second of their own offered window, or until the last result (at tlast) if later.
 * Sorts the arrays.
 */
static inline void
lat_log_print(struct lat_log *l, uint64_t tlast, size_t lost)
{
	size_t		n = l->nres;
	uint64_t	mstart = lat_due(l, l->nwarm), tend = lat_due(l, l->n);
	double		span = (double)((tlast > tend ? tlast : tend) - mstart);

	printf("offered=%.0f achieved=%.0f jobs=%zu lost=%zu", l->rate, n / (span / 1e9), n,
	    lost);
	print_pcts("", l->lat, n);
	print_pcts("send_", l->sl, n);
	qsort(l->lag, n, sizeof l->lag[0], cmp_u64);
	printf(" lag_p50_us=%.1f lag_p99_us=%.1f\n", pct_us(l->lag, n, 0.50),
	    pct_us(l->lag, n, 0.99));
}

#endif
