/*
 * hist.h: latency distributions in constant memory with a bounded relative error.
 *
 * Values are microseconds. A histogram has HIST_NBUCKETS log-linear buckets: values
 * below 2^HIST_SUB_BITS us have a bucket each; above, each power of two is cut in
 * 2^HIST_SUB_BITS equal buckets, so a bucket is at most 1/2^HIST_SUB_BITS of its
 * lower bound wide and a quantile read from it (its midpoint) is within half that of
 * the true value: 1.6% with 5 bits. Values past HIST_MAX_US land in the last bucket
 * (max keeps the true largest). 4 KiB each; adding is a few instructions, no
 * allocation.
 */

#ifndef HIST_H
#define HIST_H

#include <stdint.h>

#define HIST_SUB_BITS	5
#define HIST_SUB	(1u << HIST_SUB_BITS)
/* 2^36 us is 19 hours: beyond any job's timeout. */
#define HIST_TOP_BITS	36
#define HIST_NBUCKETS	((HIST_TOP_BITS - HIST_SUB_BITS + 1) * HIST_SUB)
#define HIST_MAX_US	((UINT64_C(1) << HIST_TOP_BITS) - 1)
/* The relative error of a quantile (half a bucket's width at most). */
#define HIST_REL_ERROR	(1.0 / (2 * HIST_SUB))

struct hist {
	uint64_t	n;		/* values added */
	uint64_t	sum;		/* their sum (us) */
	uint64_t	max;		/* the largest (us) */
	uint32_t	b[HIST_NBUCKETS];
};

/* The bucket of a value (inline: hist_add's, twice per job, bench W1). */
static inline unsigned
hist_bucket(uint64_t us)
{
	unsigned	e;

	if (us > HIST_MAX_US)
		us = HIST_MAX_US;
	if (us < HIST_SUB)
		return ((unsigned)us);
	/* e: the position of the top bit, at least HIST_SUB_BITS. */
	e = 63u - (unsigned)__builtin_clzll(us);
	return ((e - HIST_SUB_BITS + 1) * HIST_SUB +
	    (unsigned)((us >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1)));
}

static inline void
hist_add(struct hist *h, uint64_t us)
{
	h->n++;
	h->sum += us;
	if (us > h->max)
		h->max = us;
	h->b[hist_bucket(us)]++;
}

/* The q-quantile (0 <= q <= 1) in us; 0 if empty. q = 1 gives max. */
uint64_t	hist_quantile(const struct hist *h, double q);
/* How many values are <= us, to within a bucket (for Prometheus' cumulative buckets). */
uint64_t	hist_count_le(const struct hist *h, uint64_t us);
/* A bucket's lowest and highest value (for tests and /metrics' bucket bounds). */
uint64_t	hist_bucket_low(unsigned b);
uint64_t	hist_bucket_high(unsigned b);

#endif /* HIST_H */
