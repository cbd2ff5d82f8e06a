/*
 * check_log.c: unit tests for daemon/log.c: level names and filtering, the journal form
 * ("<N>" prefix, when $JOURNAL_STREAM names stderr's device and inode) and the terminal
 * form (timestamp, ident[pid], level name), strerror on log_warn, one line per message
 * even with embedded newlines or an overlong message, errno kept, and log_job's plain
 * line when stderr is not the journal. stderr goes to a file in a temporary directory.
 */

#include "autoconf.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"

#include "checkcapture.h"

static char	tmpdir[64];

/* Send stderr to a fresh file in a new temporary directory. */
static void
capture_start(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check_log.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	capture_into(tmpdir);
}

/* Put stderr back and remove the file and the directory. */
static void
capture_end(void)
{
	capture_stop();
	rmdir(tmpdir);
}

/* Tell log.c that stderr (the capture file) is the journal stream. */
static void
pretend_journal(void)
{
	struct stat	sb;
	char		js[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &sb), 0);
	snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", js, 1), 0);
}

/* Does s match the extended regular expression re (whole string)? */
static int
matches(const char *s, const char *re)
{
	regex_t	r;
	int	rc;

	ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&r, s, 0, NULL, 0);
	regfree(&r);
	return (rc == 0);
}

static int
count_lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return (n);
}

START_TEST(test_level_parse)
{
	ck_assert_int_eq(log_level_parse("error"), LOG_ERR);
	ck_assert_int_eq(log_level_parse("warning"), LOG_WARNING);
	ck_assert_int_eq(log_level_parse("warn"), LOG_WARNING);
	ck_assert_int_eq(log_level_parse("notice"), LOG_NOTICE);
	ck_assert_int_eq(log_level_parse("info"), LOG_INFO);
	ck_assert_int_eq(log_level_parse("debug"), LOG_DEBUG);
	/* Only the five documented names (and "warn"): not the ones above error. */
	ck_assert_int_eq(log_level_parse("emerg"), -1);
	ck_assert_int_eq(log_level_parse("alert"), -1);
	ck_assert_int_eq(log_level_parse("crit"), -1);
	ck_assert_int_eq(log_level_parse(""), -1);
	ck_assert_int_eq(log_level_parse("DEBUG"), -1);
	ck_assert_int_eq(log_level_parse("debug "), -1);
	ck_assert_int_eq(log_level_parse("err"), -1);
	ck_assert_int_eq(log_level_parse("7"), -1);
}
END_TEST

START_TEST(test_set_level)
{
	/* The default before log_init is info. */
	ck_assert_int_eq(log_get_level(), LOG_INFO);
	log_set_level(LOG_DEBUG);
	ck_assert_int_eq(log_get_level(), LOG_DEBUG);
	log_init(LOG_ERR, NULL);
	ck_assert_int_eq(log_get_level(), LOG_ERR);
	log_set_level(LOG_NOTICE);
	ck_assert_int_eq(log_get_level(), LOG_NOTICE);
}
END_TEST

/* Messages above the level are dropped; at or below it they are written. */
START_TEST(test_filtering)
{
	char	*out;

	capture_start();
	unsetenv("JOURNAL_STREAM");
	pretend_journal();	/* the short form makes the lines easy to compare */
	log_init(LOG_NOTICE, "t");
	log_debug("d1");
	log_info("i1");
	log_notice("n1");
	log_warnx("w1");
	log_errx("e1");
	log_msg(LOG_CRIT, "c1");
	log_msg(LOG_INFO, "i2");
	log_set_level(LOG_DEBUG);
	log_debug("d2");
	log_info("i3");
	log_set_level(LOG_ERR);
	log_warnx("w2");
	errno = ENOENT;
	log_warn("w3");
	log_errx("e2");
	out = capture_read();
	ck_assert_str_eq(out, "<5>n1\n<4>w1\n<3>e1\n<2>c1\n<7>d2\n<6>i3\n<3>e2\n");
	free(out);
	capture_end();
}
END_TEST

/* $JOURNAL_STREAM that names stderr: "<N>" and the message, nothing else. */
START_TEST(test_journal_form)
{
	char	*out;

	capture_start();
	pretend_journal();
	log_init(LOG_DEBUG, "jobpoold");
	log_errx("queue %s: %d workers", "q", 3);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	log_msg(LOG_ALERT, "a");
	out = capture_read();
	ck_assert_str_eq(out, "<3>queue q: 3 workers\n<4>w\n<5>n\n<6>i\n<7>d\n<1>a\n");
	free(out);
	capture_end();
}
END_TEST

/* A $JOURNAL_STREAM that names some other file, or is malformed, is not the journal. */
START_TEST(test_journal_other_stream)
{
	static const char	*bad[] = { "", "x", "12", "12:", ":34", "a:b" };
	struct stat		 sb;
	char			 js[64], *out;
	size_t			 i;

	capture_start();
	ck_assert_int_eq(fstat(STDERR_FILENO, &sb), 0);
	/* The right device, another inode; then the right inode, another device. */
	snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)sb.st_dev,
	    (unsigned long long)sb.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	log_init(LOG_INFO, "t");
	log_info("one");
	snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)sb.st_dev + 1,
	    (unsigned long long)sb.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init(LOG_INFO, "t");
	log_info("two");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		setenv("JOURNAL_STREAM", bad[i], 1);
		log_init(LOG_INFO, "t");
		log_info("bad");
	}
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 2 + (int)(sizeof bad / sizeof bad[0]));
	ck_assert_msg(strstr(out, "<6>") == NULL, "journal form used: %s", out);
	ck_assert_ptr_nonnull(strstr(out, " t["));
	free(out);

	/* log_init decides: the stream matching later changes nothing until it runs. */
	capture_end();
	capture_start();
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "t");
	pretend_journal();
	log_info("still plain");
	log_init(LOG_INFO, NULL);
	log_info("journal now");
	out = capture_read();
	ck_assert_msg(matches(out, "^[0-9-]+ [0-9:.]+ t\\[[0-9]+\\] info: still plain\n"
	    "<6>journal now\n$"), "%s", out);
	free(out);
	capture_end();
}
END_TEST

/* Not the journal: "YYYY-MM-DD HH:MM:SS.mmm ident[pid] level: message". */
START_TEST(test_plain_form)
{
	char	*out, re[256];

	capture_start();
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_DEBUG, "jobpoold-test");
	log_errx("e %d", 1);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
	log_msg(LOG_CRIT, "c");
	out = capture_read();
	snprintf(re, sizeof re,
	    "^(20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3} "
	    "jobpoold-test\\[%ld\\] [a-z]+: [a-z0-9 ]+\n){6}$", (long)getpid());
	ck_assert_msg(matches(out, re), "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "] error: e 1\n"));
	ck_assert_ptr_nonnull(strstr(out, "] warning: w\n"));
	ck_assert_ptr_nonnull(strstr(out, "] notice: n\n"));
	ck_assert_ptr_nonnull(strstr(out, "] info: i\n"));
	ck_assert_ptr_nonnull(strstr(out, "] debug: d\n"));
	ck_assert_ptr_nonnull(strstr(out, "] crit: c\n"));
	free(out);
	capture_end();
}
END_TEST

/* The ident is kept to what fits (63 bytes); NULL keeps the previous one. */
START_TEST(test_ident)
{
	char	 ident[100], k63[70], k64[70], *out, *l2, *l3;

	capture_start();
	unsetenv("JOURNAL_STREAM");
	/* Before any log_init the ident is jobpoold. */
	log_info("x");
	memset(ident, 'k', sizeof ident - 1);
	ident[sizeof ident - 1] = '\0';
	log_init(LOG_INFO, ident);
	log_info("y");
	log_init(LOG_INFO, NULL);
	log_info("z");
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 3);
	l2 = strchr(out, '\n') + 1;
	l3 = strchr(l2, '\n') + 1;
	l2[-1] = l3[-1] = '\0';
	ck_assert_msg(matches(out, " jobpoold\\[[0-9]+\\] info: x$"), "%s", out);
	snprintf(k63, sizeof k63, " %.63s[", ident);
	snprintf(k64, sizeof k64, "%.64s", ident);
	ck_assert_ptr_nonnull(strstr(l2, k63));
	ck_assert_ptr_null(strstr(l2, k64));
	ck_assert_ptr_nonnull(strstr(l3, k63));
	ck_assert_ptr_nonnull(strstr(l3, "] info: z\n"));
	free(out);
	capture_end();
}
END_TEST

/* log_warn appends ": strerror(errno)"; every call leaves errno as it was. */
START_TEST(test_warn_strerror)
{
	char	*out, want[256];

	capture_start();
	pretend_journal();
	log_init(LOG_INFO, "t");
	errno = ENOENT;
	log_warn("open %s", "/x");
	ck_assert_int_eq(errno, ENOENT);
	errno = EACCES;
	log_warnx("no errno here");
	ck_assert_int_eq(errno, EACCES);
	errno = EPIPE;
	log_info("info");
	ck_assert_int_eq(errno, EPIPE);
	errno = EINTR;
	log_debug("filtered out");
	ck_assert_int_eq(errno, EINTR);
	out = capture_read();
	snprintf(want, sizeof want, "<4>open /x: %s\n<4>no errno here\n<6>info\n",
	    strerror(ENOENT));
	ck_assert_str_eq(out, want);
	free(out);
	capture_end();
}
END_TEST

/* One message, one line: embedded newlines become spaces. */
START_TEST(test_one_line)
{
	char	*out;

	capture_start();
	pretend_journal();
	log_init(LOG_INFO, "t");
	log_info("first\nsecond\n");
	log_warnx("%s", "a\nb\nc");
	errno = EIO;
	log_warn("x\ny");
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 3);
	ck_assert_ptr_nonnull(strstr(out, "<6>first second \n"));
	ck_assert_ptr_nonnull(strstr(out, "<4>a b c\n"));
	ck_assert_ptr_nonnull(strstr(out, "<4>x y: "));
	free(out);
	capture_end();

	/* The same in the plain form. */
	capture_start();
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "t");
	log_info("first\nsecond");
	/* log_job's plain line too (under journald it would be fields, not a line). */
	log_job(LOG_INFO, 5, "q", 0, "job\nline");
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 2);
	ck_assert_ptr_nonnull(strstr(out, "info: first second\n"));
	ck_assert_ptr_nonnull(strstr(out, "info: job line\n"));
	free(out);
	capture_end();
}
END_TEST

/* A message longer than the line buffer is cut, and still ends in one newline. */
START_TEST(test_long_message)
{
	char	*big, *out;
	size_t	 n = 5000, len;

	big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'm', n);
	big[n] = '\0';

	capture_start();
	pretend_journal();
	log_init(LOG_INFO, "t");
	log_info("%s", big);
	log_info("after");
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 2);
	len = strcspn(out, "\n");
	/* The 2048-byte line: its last byte is the newline. */
	ck_assert_uint_eq(len, 2046);
	ck_assert_int_eq(strncmp(out, "<6>mmm", 6), 0);
	ck_assert_str_eq(out + len + 1, "<6>after\n");
	free(out);
	capture_end();

	capture_start();
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "t");
	log_info("%s", big);
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 1);
	ck_assert_uint_eq(strlen(out), 2047);
	ck_assert_int_eq(out[2045], 'm');
	free(out);
	capture_end();

	/* log_warn's text is cut first (1023 bytes); the strerror still comes last. */
	capture_start();
	pretend_journal();
	log_init(LOG_INFO, "t");
	errno = ENOENT;
	log_warn("%s", big);
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 1);
	len = strlen(out);
	ck_assert_uint_eq(len, 3 + 1023 + 2 + strlen(strerror(ENOENT)) + 1);
	{
		char	tail[128];

		snprintf(tail, sizeof tail, "m: %s\n", strerror(ENOENT));
		ck_assert_str_eq(out + len - strlen(tail), tail);
	}
	free(out);
	capture_end();
	free(big);
}
END_TEST

/* Not under journald, log_job writes the message as an ordinary line. */
START_TEST(test_log_job_plain)
{
	char	*out;

	capture_start();
	unsetenv("JOURNAL_STREAM");
	log_init(LOG_INFO, "jobpoold");
	errno = EAGAIN;
	log_job(LOG_WARNING, 42, "default", 4121, "job %llu: timed out after %u ms",
	    42ULL, 500U);
	ck_assert_int_eq(errno, EAGAIN);
	log_job(LOG_INFO, 0, NULL, 0, "no job, no queue");
	log_job(LOG_DEBUG, 1, "q", 1, "filtered out");
	/* A % in the text is text. */
	log_job(LOG_ERR, 7, "q", 0, "%s", "100% done");
	out = capture_read();
	ck_assert_int_eq(count_lines(out), 3);
	ck_assert_msg(matches(out,
	    "^[0-9-]+ [0-9:.]+ jobpoold\\[[0-9]+\\] warning: job 42: timed out after 500 ms\n"
	    "[0-9-]+ [0-9:.]+ jobpoold\\[[0-9]+\\] info: no job, no queue\n"
	    "[0-9-]+ [0-9:.]+ jobpoold\\[[0-9]+\\] error: 100% done\n$"), "%s", out);
	free(out);
	capture_end();
}
END_TEST

/* fatal and fatalx log at crit and exit 1; fatal appends strerror. */
/* The rate limit for lines clients can cause: burst lines, then one sum per window. */
static unsigned long	limit_held;
static int		limit_sums;

static void
limit_sum(unsigned long held, unsigned long long span_ms)
{
	limit_held += held;
	limit_sums++;
}

START_TEST(test_limit)
{
	struct log_limit	 l = { 3, 200, limit_sum, 0, 0, 0, 0 };
	struct event_base	*b;
	int			 i, passed = 0;

	ck_assert_ptr_nonnull(b = event_base_new());
	master_base = b;
	for (i = 0; i < 10; i++)
		passed += log_limit_pass(&l);
	ck_assert_int_eq(passed, 3);
	ck_assert_int_eq(limit_sums, 0);
	/* The window's end (a timer) says how many were held back, once. */
	(void)event_base_dispatch(b);	/* returns once the timer has run */
	ck_assert_int_eq(limit_sums, 1);
	ck_assert_uint_eq(limit_held, 7);
	/* A new window lets lines through again; a reset sums what it held. */
	for (i = 0, passed = 0; i < 5; i++)
		passed += log_limit_pass(&l);
	ck_assert_int_eq(passed, 3);
	log_limit_reset(&l);
	ck_assert_int_eq(limit_sums, 2);
	ck_assert_uint_eq(limit_held, 9);
	/* And nothing more when nothing was held back. */
	log_limit_reset(&l);
	ck_assert_int_eq(limit_sums, 2);
	ck_assert_int_eq(log_limit_pass(&l), 1);
	master_base = NULL;
	event_base_free(b);
}
END_TEST

START_TEST(test_fatal)
{
	char	*out, want[128];
	pid_t	 pid;
	int	 status;

	capture_start();
	pretend_journal();
	log_init(LOG_ERR, "t");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		errno = ENOMEM;
		fatal("setup %d", 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		fatalx("broken invariant");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	out = capture_read();
	snprintf(want, sizeof want, "<2>setup 1: %s\n<2>broken invariant\n",
	    strerror(ENOMEM));
	ck_assert_str_eq(out, want);
	free(out);
	capture_end();
}
END_TEST

static Suite *
log_suite(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_level_parse);
	tcase_add_test(tc, test_set_level);
	tcase_add_test(tc, test_filtering);
	tcase_add_test(tc, test_journal_form);
	tcase_add_test(tc, test_journal_other_stream);
	tcase_add_test(tc, test_plain_form);
	tcase_add_test(tc, test_ident);
	tcase_add_test(tc, test_warn_strerror);
	tcase_add_test(tc, test_one_line);
	tcase_add_test(tc, test_long_message);
	tcase_add_test(tc, test_log_job_plain);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_fatal);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(log_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
