/*
 * benchutil.h: small helpers shared by the benchmark programs in bench/ (header-only,
 * so each program is one `cc -O2` away): clocks, growable buffers, latency summaries,
 * and the payload of job i (64 printable bytes, as in every workload).
 */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <errno.h>
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

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/*
 * Print the latency summary line that bench/lib.sh parses:
 *   offered=R achieved=R jobs=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 * lat[] (nanoseconds) is sorted in place.
 */
static inline void
print_latency(double offered, double achieved, uint64_t *lat, size_t n, size_t lost)
{
	double	q[5] = { 0.50, 0.90, 0.99, 0.999, 1.0 };
	double	v[5];
	int	k;

	qsort(lat, n, sizeof lat[0], cmp_u64);
	for (k = 0; k < 5; k++) {
		size_t	i = n ? (size_t)(q[k] * (double)(n - 1) + 0.5) : 0;

		v[k] = n ? lat[i] / 1e3 : 0;
	}
	printf("offered=%.0f achieved=%.0f jobs=%zu lost=%zu p50_us=%.1f p90_us=%.1f "
	    "p99_us=%.1f p999_us=%.1f max_us=%.1f\n", offered, achieved, n, lost,
	    v[0], v[1], v[2], v[3], v[4]);
}

#endif
