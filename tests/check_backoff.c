/*
 * check_backoff.c: unit tests for the retry delay (lib/backoff.c).
 */

#include "autoconf.h"

#include <check.h>
#include <stdlib.h>

#include "jobpool.h"

START_TEST(test_doubling)
{
	/* No jitter: base, 2 base, 4 base, ... */
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0, 1, 0.5), 100);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0, 2, 0.5), 200);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0, 3, 0.5), 400);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0, 8, 0.5), 12800);
	/* failed = 0 is treated as the first failure. */
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0, 0, 0.5), 100);
}
END_TEST

START_TEST(test_cap)
{
	ck_assert_uint_eq(jobpool_backoff_ms(100, 1000, 0, 5, 0.5), 1000);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 1000, 0, 64, 0.5), 1000);
	ck_assert_uint_eq(jobpool_backoff_ms(1000, 60000, 0, 1000, 0.0), 60000);
	/* Jitter never pushes a delay past the cap. */
	ck_assert_uint_le(jobpool_backoff_ms(100, 1000, 0.5, 10, 0.999), 1000);
}
END_TEST

START_TEST(test_jitter_bounds)
{
	double		r;
	uint64_t	d, lo = UINT64_MAX, hi = 0;

	/* +-20% of 400 ms: within [320, 480], and both ends are reached. */
	for (r = 0; r < 1; r += 0.001) {
		d = jobpool_backoff_ms(100, 60000, 0.2, 3, r);
		ck_assert_uint_ge(d, 320);
		ck_assert_uint_le(d, 480);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	ck_assert_uint_le(lo, 321);
	ck_assert_uint_ge(hi, 479);
	/* r = 0.5 is the middle. */
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0.2, 3, 0.5), 400);
}
END_TEST

/* At the cap, jitter still spreads the delays: they do not pile up on max. */
START_TEST(test_jitter_at_cap)
{
	unsigned	i, at_max = 0;
	uint64_t	d, lo = UINT64_MAX, hi = 0;

	for (i = 0; i < 1000; i++) {
		d = jobpool_backoff_ms(1000, 60000, 0.2, 10, i / 1000.0);
		ck_assert_uint_le(d, 60000);
		ck_assert_uint_ge(d, 48000);
		if (d == 60000)
			at_max++;
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	ck_assert_uint_le(at_max, 5);
	ck_assert_uint_le(lo, 48100);
	ck_assert_uint_ge(hi, 59900);
	/* Just under the cap: what would go above is mirrored below it. */
	ck_assert_uint_eq(jobpool_backoff_ms(100, 1000, 0.5, 4, 0.9), 880);
}
END_TEST

START_TEST(test_out_of_range_inputs)
{
	/* Jitter and r are clamped. */
	ck_assert_uint_le(jobpool_backoff_ms(100, 60000, 5.0, 1, 0.99), 200);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, -1.0, 1, 0.99), 100);
	ck_assert_uint_eq(jobpool_backoff_ms(100, 60000, 0.0, 1, -3), 100);
	ck_assert_uint_eq(jobpool_backoff_ms(0, 60000, 0.2, 5, 0.3), 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("backoff");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_doubling);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_jitter_bounds);
	tcase_add_test(tc, test_jitter_at_cap);
	tcase_add_test(tc, test_out_of_range_inputs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
