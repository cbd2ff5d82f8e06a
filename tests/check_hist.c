/*
 * check_hist.c: unit tests for daemon/hist.c: the buckets tile the whole range without
 * gap or overlap and are never wider than the error allows; quantiles of known
 * distributions (uniform, log-uniform, two-point, a small set where q * n is a whole
 * number that floating point puts above it) are within HIST_REL_ERROR of the exact
 * ones from a sorted copy; count_le is exact at every bucket's top; max, values past
 * the range, and an empty histogram.
 */

#include "autoconf.h"

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

static const double	quantiles[] = {
	0, 0.01, 0.07, 0.1, 0.25, 0.5, 0.55, 0.7, 0.9, 0.99, 0.999, 1
};
#define NQUANTILES	(sizeof quantiles / sizeof quantiles[0])

/* A fixed generator: every run sees the same values. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (*s);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* The exact q-quantile of sorted v[n]: the smallest with ceil(q * n) values at or below. */
static uint64_t
exact_quantile(const uint64_t *v, size_t n, double q)
{
	size_t	rank;

	/* q * n in exact arithmetic: q is a short decimal, so scale by 1000 first. */
	rank = (size_t)((llround(q * 1000) * (long long)n + 999) / 1000);
	if (rank == 0)
		rank = 1;
	return (v[rank - 1]);
}

/* Every quantile of v[n] (added to a fresh histogram) within the error. */
static void
check_quantiles(uint64_t *v, size_t n, const char *what)
{
	struct hist	*h = calloc(1, sizeof *h);
	uint64_t	 want, got, max = 0, sum = 0;
	double		 err;
	size_t		 i, k;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < n; i++) {
		hist_add(h, v[i]);
		sum += v[i];
		if (v[i] > max)
			max = v[i];
	}
	ck_assert_uint_eq(h->n, n);
	ck_assert_uint_eq(h->sum, sum);
	ck_assert_uint_eq(h->max, max);
	qsort(v, n, sizeof *v, cmp_u64);
	for (k = 0; k < NQUANTILES; k++) {
		want = exact_quantile(v, n, quantiles[k]);
		got = hist_quantile(h, quantiles[k]);
		err = fabs((double)got - (double)want);
		ck_assert_msg(err <= (double)want * HIST_REL_ERROR,
		    "%s: p%g is %llu, exactly %llu: %.3f%% off (at most %.3f%%)", what,
		    quantiles[k] * 100, (unsigned long long)got, (unsigned long long)want,
		    want ? 100 * err / (double)want : 100.0, 100 * HIST_REL_ERROR);
		ck_assert_uint_le(got, max);
	}
	ck_assert_uint_eq(hist_quantile(h, 1), max);
	free(h);
}

/* Buckets cover 0 to HIST_MAX_US in order, each value in its own, none too wide. */
START_TEST(test_bucket_bounds)
{
	uint64_t	lo, hi;
	unsigned	b;

	ck_assert_uint_eq(hist_bucket_low(0), 0);
	ck_assert_uint_eq(hist_bucket_high(HIST_NBUCKETS - 1), HIST_MAX_US);
	for (b = 0; b < HIST_NBUCKETS; b++) {
		lo = hist_bucket_low(b);
		hi = hist_bucket_high(b);
		ck_assert_msg(lo <= hi, "bucket %u: %llu > %llu", b,
		    (unsigned long long)lo, (unsigned long long)hi);
		if (b + 1 < HIST_NBUCKETS)
			ck_assert_uint_eq(hi + 1, hist_bucket_low(b + 1));
		ck_assert_uint_eq(hist_bucket(lo), b);
		ck_assert_uint_eq(hist_bucket(hi), b);
		ck_assert_uint_eq(hist_bucket(lo + (hi - lo) / 2), b);
		/* Below HIST_SUB, a bucket per value; above, at most lo / HIST_SUB wide. */
		if (b < HIST_SUB)
			ck_assert_uint_eq(lo, hi);
		else
			ck_assert_msg(hi - lo + 1 <= lo / HIST_SUB, "bucket %u [%llu, %llu] "
			    "is wider than 1/%u of its start", b, (unsigned long long)lo,
			    (unsigned long long)hi, HIST_SUB);
	}
	/* Beyond the range: the last bucket. */
	ck_assert_uint_eq(hist_bucket(HIST_MAX_US + 1), HIST_NBUCKETS - 1);
	ck_assert_uint_eq(hist_bucket(UINT64_MAX), HIST_NBUCKETS - 1);
	/* 4 KiB of buckets, as hist.h says. */
	ck_assert_uint_eq(sizeof ((struct hist *)0)->b, 4096);
}
END_TEST

/* An empty histogram: no values, quantiles and counts 0. */
START_TEST(test_empty)
{
	struct hist	*h = calloc(1, sizeof *h);

	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(hist_quantile(h, 0), 0);
	ck_assert_uint_eq(hist_quantile(h, 0.5), 0);
	ck_assert_uint_eq(hist_quantile(h, 1), 0);
	ck_assert_uint_eq(hist_count_le(h, 0), 0);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), 0);
	free(h);
}
END_TEST

/* Uniform 1 .. 1,000,000 us. */
START_TEST(test_quantiles_uniform)
{
	size_t		 n = 1000000, i;
	uint64_t	*v = malloc(n * sizeof *v), s = 88172645463325252ULL;

	ck_assert_ptr_nonnull(v);
	for (i = 0; i < n; i++)
		v[i] = i + 1;
	check_quantiles(v, n, "1..1e6");
	/* The same values in a random order: the same answers. */
	for (i = 0; i < n; i++)
		v[i] = rnd(&s) % 1000000 + 1;
	check_quantiles(v, n, "random 1..1e6");
	free(v);
}
END_TEST

/* Log-uniform from 1 us to 2^35 us (nine hours). */
START_TEST(test_quantiles_log)
{
	size_t		 n = 200000, i;
	uint64_t	*v = malloc(n * sizeof *v), s = 0x9E3779B97F4A7C15ULL;

	ck_assert_ptr_nonnull(v);
	for (i = 0; i < n; i++)
		v[i] = (uint64_t)exp2((double)(rnd(&s) % 3500) / 100.0);
	check_quantiles(v, n, "log-uniform 1..2^35");
	free(v);
}
END_TEST

/* 20 ms and 200 ms jobs, 9 to 1 (it_monitor's shape), and the small exact cases. */
START_TEST(test_quantiles_two_point)
{
	uint64_t	v[1000], small[100];
	size_t		i;

	for (i = 0; i < 1000; i++)
		v[i] = i % 10 == 9 ? 200000 : 20000;
	check_quantiles(v, 1000, "20 ms x 900, 200 ms x 100");
	/* q * n whole, but not so in floating point (0.07 * 100 > 7): the 7th value. */
	for (i = 0; i < 100; i++)
		small[i] = (i + 1) * 1000;
	check_quantiles(small, 100, "1..100 ms");
	{
		struct hist	h;

		memset(&h, 0, sizeof h);
		for (i = 0; i < 100; i++)
			hist_add(&h, (i + 1) * 1000);
		ck_assert_uint_le(hist_quantile(&h, 0.07), 7000 + 7000 * HIST_REL_ERROR);
		ck_assert_uint_ge(hist_quantile(&h, 0.07), 7000 - 7000 * HIST_REL_ERROR);
	}
	/* One value: every quantile is it (to within its bucket), max exactly. */
	v[0] = 123456;
	check_quantiles(v, 1, "one value");
}
END_TEST

/* Values below HIST_SUB have buckets of their own: exact. */
START_TEST(test_quantiles_small_exact)
{
	struct hist	h;
	uint64_t	i;

	memset(&h, 0, sizeof h);
	for (i = 0; i < HIST_SUB; i++)
		hist_add(&h, i);
	ck_assert_uint_eq(hist_quantile(&h, 0), 0);
	ck_assert_uint_eq(hist_quantile(&h, 0.5), HIST_SUB / 2 - 1);
	ck_assert_uint_eq(hist_quantile(&h, 1), HIST_SUB - 1);
}
END_TEST

/* count_le: exact at each bucket's top, n from max up, within a bucket between. */
START_TEST(test_count_le)
{
	struct hist	*h = calloc(1, sizeof *h);
	uint64_t	*v, s = 0x2545F4914F6CDD1DULL, exact, got, top;
	size_t		 n = 50000, i, k;
	unsigned	 b;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull((v = malloc(n * sizeof *v)));
	for (i = 0; i < n; i++) {
		v[i] = (uint64_t)exp2((double)(rnd(&s) % 3000) / 100.0);
		hist_add(h, v[i]);
	}
	qsort(v, n, sizeof *v, cmp_u64);
	for (b = 0, k = 0; b < HIST_NBUCKETS; b++) {
		top = hist_bucket_high(b);
		while (k < n && v[k] <= top)
			k++;
		ck_assert_msg(hist_count_le(h, top) == k, "count_le(%llu) is %llu, "
		    "exactly %zu", (unsigned long long)top,
		    (unsigned long long)hist_count_le(h, top), k);
	}
	/* Between tops: never more than the exact count, short by at most its bucket. */
	for (i = 0; i < 2000; i++) {
		top = rnd(&s) % (v[n - 1] + 10);
		for (exact = 0; exact < n && v[exact] <= top; exact++)
			;
		got = hist_count_le(h, top);
		ck_assert_uint_le(got, exact);
		ck_assert_uint_ge(got + h->b[hist_bucket(top)], exact);
	}
	ck_assert_uint_eq(hist_count_le(h, v[n - 1]), n);
	ck_assert_uint_eq(hist_count_le(h, UINT64_MAX), n);
	free(v);
	free(h);
}
END_TEST

/* max is the true largest, also past the range; quantiles never exceed it. */
START_TEST(test_max)
{
	struct hist	h;

	memset(&h, 0, sizeof h);
	hist_add(&h, 5);
	hist_add(&h, 992);
	ck_assert_uint_eq(h.max, 992);
	/* 992 starts the bucket [992, 1007]: its midpoint would pass the max. */
	ck_assert_uint_eq(hist_bucket_low(hist_bucket(992)), 992);
	ck_assert_uint_eq(hist_quantile(&h, 0.99), 992);
	ck_assert_uint_eq(hist_quantile(&h, 1), 992);
	hist_add(&h, HIST_MAX_US * 4);
	ck_assert_uint_eq(h.max, HIST_MAX_US * 4);
	ck_assert_uint_eq(h.b[HIST_NBUCKETS - 1], 1);
	ck_assert_uint_eq(hist_quantile(&h, 1), HIST_MAX_US * 4);
	ck_assert_uint_eq(hist_count_le(&h, 1007), 2);
	ck_assert_uint_eq(hist_count_le(&h, 991), 1);
	ck_assert_uint_eq(hist_count_le(&h, HIST_MAX_US * 4), 3);
}
END_TEST

static Suite *
hist_suite(void)
{
	Suite	*s = suite_create("hist");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bucket_bounds);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_quantiles_uniform);
	tcase_add_test(tc, test_quantiles_log);
	tcase_add_test(tc, test_quantiles_two_point);
	tcase_add_test(tc, test_quantiles_small_exact);
	tcase_add_test(tc, test_count_le);
	tcase_add_test(tc, test_max);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(hist_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
