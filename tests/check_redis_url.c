/*
 * check_redis_url.c: unit tests for Redis URLs taken apart (lib/redis_url.c), used by
 * a queue's source and jobpoolctl submit --redis.
 */

#include "autoconf.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

static struct redis_url	u;
static char		why[256];

START_TEST(test_defaults)
{
	ck_assert_int_eq(redis_url_parse("redis://localhost", &u, why, sizeof why), 0);
	ck_assert_str_eq(u.host, "localhost");
	ck_assert_int_eq(u.port, 6379);
	ck_assert_int_eq(u.db, 0);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.pass, "");
	ck_assert_int_eq(redis_url_parse("redis://10.0.0.5:6380/", &u, why, sizeof why), 0);
	ck_assert_str_eq(u.host, "10.0.0.5");
	ck_assert_int_eq(u.port, 6380);
	ck_assert_int_eq(u.db, 0);
}
END_TEST

START_TEST(test_credentials)
{
	ck_assert_int_eq(redis_url_parse("redis://:s3cret@h:1/2", &u, why, sizeof why), 0);
	ck_assert_str_eq(u.user, "");
	ck_assert_str_eq(u.pass, "s3cret");
	ck_assert_str_eq(u.host, "h");
	ck_assert_int_eq(u.port, 1);
	ck_assert_int_eq(u.db, 2);
	/* ACL user; the last '@' ends the password, which may hold '@' and ':'. */
	ck_assert_int_eq(redis_url_parse("redis://bob:p@ss:w@rd@h/15", &u, why,
	    sizeof why), 0);
	ck_assert_str_eq(u.user, "bob");
	ck_assert_str_eq(u.pass, "p@ss:w@rd");
	ck_assert_str_eq(u.host, "h");
	ck_assert_int_eq(u.db, 15);
}
END_TEST

/* Each is refused, and the message never holds the password. */
START_TEST(test_refused)
{
	static const char *const bad[] = {
		"http://:pw-1@h", "rediss://:pw-1@h", "redis://", "redis://:pw-1@",
		"redis://:pw-1@h:0", "redis://:pw-1@h:65536", "redis://:pw-1@h:12x",
		"redis://:pw-1@h:", "redis://:pw-1@h/x", "redis://:pw-1@h/-1",
		"redis://pw-1@h", "redis://user:@h",
	};
	size_t	i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(redis_url_parse(bad[i], &u, why, sizeof why) == -1,
		    "%s accepted", bad[i]);
		ck_assert_msg(why[0] != '\0', "%s: no reason", bad[i]);
		ck_assert_msg(strstr(why, "pw-1") == NULL, "%s: %s", bad[i], why);
	}
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("redis_url");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_credentials);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
