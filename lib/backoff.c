/*
 * backoff.c: retry delays, exponential with a cap and jitter (jobpool.h).
 */

#include <stdint.h>

#include "jobpool.h"

/*
 * The delay before the next attempt after `failed` failed attempts (failed >= 1):
 * min(max_ms, base_ms * 2^(failed - 1)), then spread uniformly over +-jitter of itself
 * by r, a uniform random number in [0, 1). Never more than max_ms: what the spread
 * would put above the cap is mirrored below it, so that delays at the cap still spread
 * (over [max_ms * (1 - jitter), max_ms]) instead of piling up on max_ms, which would
 * make the retries of many jobs that failed together fall due together again.
 */
uint64_t
jobpool_backoff_ms(uint32_t base_ms, uint32_t max_ms, double jitter, unsigned failed,
    double r)
{
	double	d;

	if (failed == 0)
		failed = 1;
	if (failed > 40)
		failed = 40;	/* 2^39 ms is far beyond any cap */
	d = (double)base_ms * (double)((uint64_t)1 << (failed - 1));
	if (d > max_ms)
		d = max_ms;
	if (jitter < 0)
		jitter = 0;
	if (jitter > 1)
		jitter = 1;
	if (r < 0)
		r = 0;
	if (r >= 1)
		r = 0.999999;
	d += d * jitter * (2 * r - 1);
	if (d > max_ms)
		d = 2.0 * max_ms - d;
	if (d < 0)
		d = 0;
	return ((uint64_t)(d + 0.5));
}
