/*
 * hist.c: log-linear latency histograms (see hist.h).
 */

#include "autoconf.h"

#include <stdint.h>

#include "hist.h"

uint64_t
hist_bucket_low(unsigned b)
{
	unsigned	e;

	if (b < HIST_SUB)
		return (b);
	e = b / HIST_SUB - 1 + HIST_SUB_BITS;
	return (((uint64_t)HIST_SUB + b % HIST_SUB) << (e - HIST_SUB_BITS));
}

uint64_t
hist_bucket_high(unsigned b)
{
	if (b + 1 >= HIST_NBUCKETS)
		return (HIST_MAX_US);
	return (hist_bucket_low(b + 1) - 1);
}

uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	rank, seen = 0, lo, hi, mid;
	double		x;
	unsigned	b;

	if (h->n == 0)
		return (0);
	if (q >= 1.0)
		return (h->max);
	if (q < 0.0)
		q = 0.0;
	/*
	 * The smallest value with at least ceil(q * n) values at or below it. q * n is
	 * rounded: 0.7 * 10 is 7.000000000000001, whose ceiling would be one rank too far.
	 */
	x = q * (double)h->n;
	rank = (uint64_t)x;
	if ((double)rank < x * (1 - 1e-12))
		rank++;
	if (rank == 0)
		rank = 1;
	for (b = 0; b < HIST_NBUCKETS; b++) {
		seen += h->b[b];
		if (seen >= rank)
			break;
	}
	if (b == HIST_NBUCKETS)
		return (h->max);
	lo = hist_bucket_low(b);
	hi = hist_bucket_high(b);
	mid = lo + (hi - lo) / 2;
	return (mid > h->max ? h->max : mid);
}

uint64_t
hist_count_le(const struct hist *h, uint64_t us)
{
	uint64_t	n = 0;
	unsigned	b, last;

	if (us >= h->max)
		return (h->n);
	last = hist_bucket(us);
	/* The bucket holding us counts if us is its top: otherwise it straddles. */
	if (hist_bucket_high(last) > us) {
		if (last == 0)
			return (0);
		last--;
	}
	for (b = 0; b <= last; b++)
		n += h->b[b];
	return (n);
}
