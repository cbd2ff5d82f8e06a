/*
 * check_frame.c: unit tests for frame.c, the master-worker frame header.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

START_TEST(test_round_trip)
{
	unsigned char		buf[FRAME_HDR_LEN + 8];
	struct frame_hdr	h;
	static const struct {
		uint8_t		type, status;
		uint64_t	id;
		uint32_t	len;
	} c[] = {
		{ FRAME_JOB, FRAME_OK, 1, 0 },
		{ FRAME_CANCEL, FRAME_OK, UINT64_MAX, 0 },
		{ FRAME_READY, 1, 0, 17 },
		{ FRAME_RESULT, FRAME_FAILED, 42, 1000 },
		{ FRAME_RESULT, FRAME_PERMANENT, 43, 1048576 },
		{ FRAME_RESULT, FRAME_CANCELLED, UINT64_C(0x0102030405060708), 5 },
	};
	size_t			i;

	for (i = 0; i < sizeof c / sizeof c[0]; i++) {
		memset(buf, 0xaa, sizeof buf);
		frame_put(buf, c[i].type, c[i].status, c[i].id, c[i].len);
		/* Nothing is written past the header. */
		ck_assert_uint_eq(buf[FRAME_HDR_LEN], 0xaa);
		memset(&h, 0, sizeof h);
		ck_assert_int_eq(frame_get(buf, FRAME_HDR_LEN, 1048576, &h), 1);
		ck_assert_uint_eq(h.type, c[i].type);
		ck_assert_uint_eq(h.status, c[i].status);
		ck_assert_uint_eq(h.id, c[i].id);
		ck_assert_uint_eq(h.len, c[i].len);
		ck_assert_uint_eq(h.flags, 0);
		/* More bytes than a header are fine. */
		ck_assert_int_eq(frame_get(buf, sizeof buf, 1048576, &h), 1);
	}
}
END_TEST

START_TEST(test_unaligned)
{
	unsigned char		buf[FRAME_HDR_LEN + 3];
	struct frame_hdr	h;

	/* Frames sit at any offset in a read buffer. */
	frame_put(buf + 3, FRAME_JOB, 0, 99, 7);
	ck_assert_int_eq(frame_get(buf + 3, FRAME_HDR_LEN, 100, &h), 1);
	ck_assert_uint_eq(h.id, 99);
	ck_assert_uint_eq(h.len, 7);
}
END_TEST

START_TEST(test_short)
{
	unsigned char		buf[FRAME_HDR_LEN];
	struct frame_hdr	h;
	size_t			i;

	frame_put(buf, FRAME_JOB, 0, 1, 1);
	for (i = 0; i < FRAME_HDR_LEN; i++)
		ck_assert_int_eq(frame_get(buf, i, 100, &h), 0);
	ck_assert_int_eq(frame_get(buf, FRAME_HDR_LEN, 100, &h), 1);
}
END_TEST

START_TEST(test_bad_type)
{
	unsigned char		buf[FRAME_HDR_LEN];
	struct frame_hdr	h;

	frame_put(buf, 0, 0, 1, 1);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 100, &h), -1);
	frame_put(buf, FRAME_TYPE_MAX + 1, 0, 1, 1);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 100, &h), -1);
	frame_put(buf, 0xff, 0, 1, 1);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 100, &h), -1);
	/* Garbage is caught only once a whole header is there. */
	memset(buf, 0xff, sizeof buf);
	ck_assert_int_eq(frame_get(buf, sizeof buf - 1, 100, &h), 0);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 100, &h), -1);
}
END_TEST

START_TEST(test_len_max)
{
	unsigned char		buf[FRAME_HDR_LEN];
	struct frame_hdr	h;

	frame_put(buf, FRAME_RESULT, 0, 1, 100);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 100, &h), 1);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 99, &h), -1);
	frame_put(buf, FRAME_JOB, 0, 1, UINT32_MAX);
	ck_assert_int_eq(frame_get(buf, sizeof buf, UINT32_MAX - 1, &h), -1);
	ck_assert_int_eq(frame_get(buf, sizeof buf, UINT32_MAX, &h), 1);
	frame_put(buf, FRAME_JOB, 0, 1, 0);
	ck_assert_int_eq(frame_get(buf, sizeof buf, 0, &h), 1);
}
END_TEST

/* The suite. */
static Suite *
frame_suite(void)
{
	Suite	*s = suite_create("frame");
	TCase	*tc = tcase_create("header");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_unaligned);
	tcase_add_test(tc, test_short);
	tcase_add_test(tc, test_bad_type);
	tcase_add_test(tc, test_len_max);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr;
	int	 failed;

	sr = srunner_create(frame_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
