/*
 * check_handler_plugin.c: unit tests for daemon/handler_plugin.c, in this process as
 * a worker would use it: handler_plugin_open() on the example plugins and on the
 * broken ones of tests/plugin_bad.c, the spec split into path and argument, init, run
 * and fini through struct handler, every status a plugin may return, the output
 * functions of the ABI, and a cause naming the file and the reason for every error.
 *
 * A plugin calls jobpool_* functions that the executable provides: this suite is
 * linked with daemon/jobpoold.sym as its dynamic list, as jobpoold is. Each test runs
 * in its own process (Check's fork mode), and a process loads one plugin only.
 */

#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkhandler.h"
#include "fakemaster.h"
#include "frame.h"

/* "plugin:" and the path of a plugin make check builds, and an optional argument. */
static char *
spec_of(const char *rel, const char *arg)
{
	char	*so = fm_built(rel), *spec;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s%s%s", so, arg != NULL ? " " : "",
	    arg != NULL ? arg : ""), -1);
	free(so);
	return (spec);
}

/* Open spec, which must load; *arg is what init gets. */
static void
open_ok(const char *spec, struct handler *h, const char **arg)
{
	char	*cause = (char *)"untouched";

	ck_assert_msg(handler_plugin_open(spec, h, arg, &cause) == 0, "%s: %s", spec,
	    cause != NULL ? cause : "(no cause)");
	ck_assert_ptr_null(cause);
	ck_assert_ptr_nonnull(*arg);
	ck_assert_ptr_nonnull(h->init);
	ck_assert_ptr_nonnull(h->run);
	ck_assert_ptr_nonnull(h->fini);
	ck_assert_ptr_nonnull(h->priv);
}

/* Open spec, which must fail with exactly want (or starting with it, if prefix). */
static void
open_fails(const char *spec, const char *want, int prefix)
{
	struct handler	 h;
	const char	*arg = "untouched";
	char		*cause = NULL;

	ck_assert_int_eq(handler_plugin_open(spec, &h, &arg, &cause), -1);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_null(arg);
	if (prefix)
		ck_assert_msg(strncmp(cause, want, strlen(want)) == 0,
		    "cause '%s', want '%s...'", cause, want);
	else
		ck_assert_str_eq(cause, want);
	free(cause);
}

/* wordcount: load, init with its argument, count, fini. */
START_TEST(test_wordcount)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*spec = spec_of("examples/.libs/wordcount.so", "json");
	char			*cause = NULL, *big, want[128];
	void			*state = NULL;
	size_t			 i, n = 1000000;

	open_ok(spec, &h, &arg);
	ck_assert_str_eq(h.name, "wordcount");
	ck_assert_str_eq(arg, "json");
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(run(&h, state, "one two\nthree\n", &out), FRAME_OK);
	out_is(&out, "{\"lines\":2,\"words\":3,\"bytes\":14}");
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	out_is(&out, "{\"lines\":0,\"words\":0,\"bytes\":0}");

	/* The buffer holds earlier results: this job's output is appended to them. */
	ck_assert_int_eq(obuf_add(&out, "EARLIER", 7), 0);
	ck_assert_int_eq(run(&h, state, "a b c", &out), FRAME_OK);
	out_is(&out, "EARLIER{\"lines\":0,\"words\":3,\"bytes\":5}");

	/* Longer than its chunk: counted across chunks. */
	big = malloc(n);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < n; i++)
		big[i] = i % 10 == 9 ? '\n' : (i % 2 ? ' ' : 'w');
	ck_assert_int_eq(h.run(state, big, n, &out), FRAME_OK);
	snprintf(want, sizeof want, "{\"lines\":%zu,\"words\":%zu,\"bytes\":%zu}",
	    n / 10, n / 2, n);
	out_is(&out, want);
	free(big);

	h.fini(state);
	free(out.buf);
	free(spec);
}
END_TEST

/* No argument: the default, and "plugin:" may be followed by blanks. */
START_TEST(test_wordcount_default)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*so = fm_built("examples/.libs/wordcount.so"), *spec;
	char			*cause = NULL;
	void			*state = NULL;

	ck_assert_int_ne(asprintf(&spec, "plugin: \t%s", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_str_eq(arg, "");
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	ck_assert_int_eq(run(&h, state, "one two\nthree\n", &out), FRAME_OK);
	out_is(&out, "2 3 14");
	h.fini(state);
	free(out.buf);
	free(spec);
	free(so);
}
END_TEST

/* The argument is everything after the blanks that follow the path, as written. */
START_TEST(test_argument_split)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*so = fm_built("tests/.libs/plugin_probe.so"), *spec;
	char			*cause = NULL;
	void			*state = NULL;

	/* Without the "plugin:" prefix too (handler_open has matched it already). */
	ck_assert_int_ne(asprintf(&spec, "%s \t two  words 'and' \"more\" ", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_str_eq(h.name, "probe");
	ck_assert_str_eq(arg, "two  words 'and' \"more\" ");
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	ck_assert_int_eq(run(&h, state, "arg", &out), FRAME_OK);
	out_is(&out, "two  words 'and' \"more\" ");
	h.fini(state);
	free(out.buf);
	free(spec);
	free(so);
}
END_TEST

/* What process() returns becomes a frame status; anything else is a failure. */
START_TEST(test_statuses)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*so = fm_built("examples/.libs/slow_plugin.so"), *spec;
	char			*cause = NULL, *want;
	void			*state = NULL;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_str_eq(h.name, "slow");
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	ck_assert_int_eq(run(&h, state, "10", &out), FRAME_OK);
	out_is(&out, "slept 10");
	ck_assert_int_eq(run(&h, state, "fail", &out), FRAME_FAILED);
	out_is(&out, "slow_plugin: transient failure");
	ck_assert_int_eq(run(&h, state, "permanent", &out), FRAME_PERMANENT);
	out_is(&out, "slow_plugin: permanent failure");
	/* An invalid status: its output is replaced, earlier results are kept. */
	ck_assert_int_eq(obuf_add(&out, "EARLIER", 7), 0);
	ck_assert_int_eq(run(&h, state, "invalid", &out), FRAME_FAILED);
	ck_assert_int_ne(asprintf(&want, "EARLIERplugin %s: process() returned an "
	    "invalid status 7 (want JOBPOOL_HANDLER_OK, _ERROR or _PERMANENT)", so), -1);
	out_is(&out, want);
	free(want);
	h.fini(state);
	free(out.buf);
	free(spec);
	free(so);
}
END_TEST

/* The ABI's output functions and jobpool_cancelled(), as a plugin sees them. */
START_TEST(test_output_functions)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*spec = spec_of("tests/.libs/plugin_probe.so", NULL);
	char			*cause = NULL, *fini = fm_path("fini"), *s;
	void			*state = NULL;

	ck_assert_int_eq(setenv("PLUGIN_PROBE_FINI", fini, 1), 0);
	open_ok(spec, &h, &arg);
	/* The plugin's own state stays in handler_plugin.c; the probe checks it. */
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);

	/* Reset drops only what the running job wrote. */
	ck_assert_int_eq(obuf_add(&out, "EARLIER", 7), 0);
	ck_assert_int_eq(run(&h, state, "reset", &out), FRAME_OK);
	out_is(&out, "EARLIERafter reset");
	/* Outside process() it is not this job's output: untouched. */
	ck_assert_int_eq(jobpool_output_printf(&out, "%s %d", "kept", 1), 0);
	jobpool_output_reset(&out);
	out_is(&out, "kept 1");

	ck_assert_int_eq(run(&h, state, "write0", &out), FRAME_OK);
	out_is(&out, "ok");
	ck_assert_int_eq(run(&h, state, "say binary\001\377", &out), FRAME_OK);
	out_is(&out, "binary\001\377");
	/* Outside a worker's cancelled job: never cancelled. */
	ck_assert_int_eq(run(&h, state, "cancelled", &out), FRAME_OK);
	out_is(&out, "cancelled=0");

	ck_assert_int_eq(run(&h, state, "status 0", &out), FRAME_OK);
	out_is(&out, "status 0");
	ck_assert_int_eq(run(&h, state, "status 1", &out), FRAME_FAILED);
	out_is(&out, "status 1");
	ck_assert_int_eq(run(&h, state, "status 2", &out), FRAME_PERMANENT);
	out_is(&out, "status 2");
	ck_assert_int_eq(run(&h, state, "status -1", &out), FRAME_FAILED);
	ck_assert(fm_contains(out.buf, out.len, "returned an invalid status -1"));
	out.len = 0;

	/* fini gets the state back (the probe aborts otherwise) and runs once. */
	ck_assert_ptr_null(fm_read_file(fini));
	h.fini(state);
	ck_assert_str_eq((s = fm_read_file(fini)), "fini\n");
	free(s);
	free(out.buf);
	free(fini);
	free(spec);
}
END_TEST

/* A plugin without name, init or fini: the path names it, and it works. */
START_TEST(test_minimal_plugin)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*so = fm_built("tests/.libs/plugin_minimal.so"), *spec;
	char			*cause = NULL;
	void			*state = (void *)&h;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_str_eq(h.name, so);
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	ck_assert_ptr_null(state);
	ck_assert_ptr_null(cause);
	ck_assert_int_eq(run(&h, state, "echoed", &out), FRAME_OK);
	out_is(&out, "echoed");
	h.fini(state);
	free(out.buf);
	free(spec);
	free(so);
}
END_TEST

/*
 * The batch entry point (ABI 2): adopted as run_batch when the plugin has one; a plugin
 * of ABI 1 loads, and what lies past its struct is never taken for process_batch.
 */
START_TEST(test_batch_entry_point)
{
	struct handler		 h;
	struct jobpool_output	 outs[3];
	struct jobpool_job	 jobs[3];
	const char		*arg, *p[] = { "one", "two\nlines", "three" };
	char			*spec, *path, *cause = NULL, *rec;
	void			*state = NULL;
	size_t			 i;

	/* batch_append: a bulk insert, one bad record failing alone. */
	path = fm_path("records");
	spec = spec_of("examples/.libs/batch_append.so", path);
	open_ok(spec, &h, &arg);
	ck_assert_ptr_nonnull(h.run_batch);
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), 0);
	memset(outs, 0, sizeof outs);
	for (i = 0; i < 3; i++)
		jobs[i] = (struct jobpool_job){ p[i], strlen(p[i]), &outs[i],
		    JOBPOOL_HANDLER_UNSET, (unsigned)i };
	h.run_batch(state, jobs, 3);
	ck_assert_int_eq(jobs[0].status, FRAME_OK);
	ck_assert_int_eq(jobs[1].status, FRAME_PERMANENT);
	ck_assert_int_eq(jobs[2].status, FRAME_OK);
	out_is(&outs[0], "appended 1/2");
	out_is(&outs[1], "a record is one line: no newline or NUL");
	out_is(&outs[2], "appended 2/2");
	ck_assert_str_eq((rec = fm_read_file(path)), "one\nthree\n");
	free(rec);
	/* One record through process(): the same plugin without batches. */
	ck_assert_int_eq(run(&h, state, "four", &outs[0]), FRAME_OK);
	out_is(&outs[0], "appended 1/1");
	ck_assert_str_eq((rec = fm_read_file(path)), "one\nthree\nfour\n");
	free(rec);
	h.fini(state);
	for (i = 0; i < 3; i++)
		free(outs[i].buf);
	free(spec);
	free(path);
}
END_TEST

/* Built for ABI 1: loads, with no batch entry point (a process loads one plugin). */
START_TEST(test_abi1_plugin)
{
	struct handler	 h;
	const char	*arg;
	char		*spec, *cause = NULL, *s;

	s = fm_built("tests/.libs/plugin_abi1.so");
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", s), -1);
	memset(&h, 0, sizeof h);
	h.run_batch = (void (*)(void *, struct jobpool_job *, size_t))1;
	ck_assert_int_eq(handler_plugin_open(spec, &h, &arg, &cause), 0);
	ck_assert_str_eq(h.name, "abi1");
	ck_assert_ptr_null(h.run_batch);
	free(spec);
	free(s);
}
END_TEST

/* A plugin without process_batch has no batch entry point. */
START_TEST(test_no_batch_entry_point)
{
	struct handler	 h;
	const char	*arg;
	char		*spec = spec_of("examples/.libs/wordcount.so", NULL);

	open_ok(spec, &h, &arg);
	ck_assert_ptr_null(h.run_batch);
	free(spec);
}
END_TEST

/* Every way loading fails, each naming the file and why; nothing is kept after. */
START_TEST(test_load_errors)
{
	struct handler	 h;
	const char	*arg;
	char		*path, *spec, *want, *cause = NULL;
	FILE		*f;

	open_fails("plugin:", "plugin: no path after 'plugin:'", 0);
	open_fails("plugin: \t ", "plugin: no path after 'plugin:'", 0);
	open_fails("plugin:/nonexistent/jobpool-check.so arg",
	    "plugin /nonexistent/jobpool-check.so: cannot load: ", 1);
	ck_assert_int_eq(handler_plugin_open("plugin:/nonexistent/jobpool-check.so",
	    &h, &arg, &cause), -1);
	ck_assert_msg(strstr(cause, "No such file or directory") != NULL, "%s", cause);
	free(cause);

	/* A file that is not a shared object. */
	path = fm_path("notelf.so");
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not an ELF file, however it is named\n", f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: cannot load: %s: ", path, path), -1);
	open_fails(spec, want, 1);
	free(spec);
	free(want);
	free(path);

	/* A shared object, but not a plugin: no jobpool_handler. */
	path = fm_built("tests/.libs/plugin_nosym.so");
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: no symbol jobpool_handler: ", path),
	    -1);
	open_fails(spec, want, 1);
	ck_assert_int_eq(handler_plugin_open(spec, &h, &arg, &cause), -1);
	ck_assert_msg(strstr(cause, "undefined symbol: jobpool_handler") != NULL, "%s",
	    cause);
	free(cause);
	free(spec);
	free(want);
	free(path);

	/* Built against another ABI: both versions in the message. */
	path = fm_built("tests/.libs/plugin_abi.so");
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: ABI version 99 is not supported: "
	    "this jobpoold supports versions 1 to %d (rebuild the plugin against its "
	    "jobpool-handler.h)", path, JOBPOOL_HANDLER_ABI_VERSION), -1);
	open_fails(spec, want, 0);
	free(spec);
	free(want);
	free(path);

	/* No process(). */
	path = fm_built("tests/.libs/plugin_noprocess.so");
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: jobpool_handler.process is NULL",
	    path), -1);
	open_fails(spec, want, 0);
	free(spec);
	free(want);
	free(path);

	/* None of those failures was kept: a good plugin loads now, but only one. */
	spec = spec_of("tests/.libs/plugin_probe.so", NULL);
	open_ok(spec, &h, &arg);
	free(spec);
	path = fm_built("examples/.libs/wordcount.so");
	ck_assert_int_ne(asprintf(&spec, "plugin:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: a worker loads one plugin only",
	    path), -1);
	open_fails(spec, want, 0);
	free(spec);
	free(want);
	free(path);
}
END_TEST

/* init fails: "plugin PATH: init failed: " and the plugin's reason. */
START_TEST(test_init_fails_with_reason)
{
	struct handler	 h;
	const char	*arg;
	char		*so = fm_built("examples/.libs/wordcount.so"), *spec, *want;
	char		*cause = NULL;
	void		*state = (void *)&h;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s yaml", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), -1);
	ck_assert_ptr_null(state);
	ck_assert_int_ne(asprintf(&want, "plugin %s: init failed: unknown output format "
	    "'yaml' (want text or json)", so), -1);
	ck_assert_str_eq(cause, want);
	free(cause);
	free(want);
	free(spec);
	free(so);
}
END_TEST

START_TEST(test_init_fails_silently)
{
	struct handler	 h;
	const char	*arg;
	char		*so = fm_built("tests/.libs/plugin_probe.so"), *spec, *want;
	char		*cause = NULL;
	void		*state = NULL;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s failsilent", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: init failed: (the plugin gave no "
	    "reason)", so), -1);
	ck_assert_str_eq(cause, want);
	free(cause);
	free(want);
	free(spec);
	free(so);
}
END_TEST

/* A reason that fills the plugin's buffer without a NUL is cut, not overrun. */
START_TEST(test_init_fails_unterminated)
{
	struct handler	 h;
	const char	*arg;
	char		*so = fm_built("tests/.libs/plugin_probe.so"), *spec, *prefix;
	char		*cause = NULL;
	void		*state = NULL;
	size_t		 i, n;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s failfull", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), -1);
	ck_assert_int_ne(asprintf(&prefix, "plugin %s: init failed: ", so), -1);
	n = strlen(prefix);
	ck_assert_int_eq(strncmp(cause, prefix, n), 0);
	ck_assert_uint_eq(strlen(cause), n + 511);
	for (i = n; cause[i] != '\0'; i++)
		ck_assert_int_eq(cause[i], 'x');
	free(cause);
	free(prefix);
	free(spec);
	free(so);
}
END_TEST

/* The example's own failure mode: slow_plugin's "initfail". */
START_TEST(test_init_fails_slow_plugin)
{
	struct handler	 h;
	const char	*arg;
	char		*so = fm_built("examples/.libs/slow_plugin.so"), *spec, *want;
	char		*cause = NULL;
	void		*state = NULL;

	ck_assert_int_ne(asprintf(&spec, "plugin:%s initfail", so), -1);
	open_ok(spec, &h, &arg);
	ck_assert_str_eq(arg, "initfail");
	ck_assert_int_eq(h.init(&test_cf, &test_qc, arg, &state, &cause), -1);
	ck_assert_int_ne(asprintf(&want, "plugin %s: init failed: slow_plugin: told to "
	    "fail (argument 'initfail')", so), -1);
	ck_assert_str_eq(cause, want);
	free(cause);
	free(want);
	free(spec);
	free(so);
}
END_TEST

static Suite *
handler_plugin_suite(void)
{
	Suite	*s = suite_create("handler_plugin");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_wordcount);
	tcase_add_test(tc, test_wordcount_default);
	tcase_add_test(tc, test_argument_split);
	tcase_add_test(tc, test_statuses);
	tcase_add_test(tc, test_output_functions);
	tcase_add_test(tc, test_minimal_plugin);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_batch_entry_point);
	tcase_add_test(tc, test_abi1_plugin);
	tcase_add_test(tc, test_no_batch_entry_point);
	tcase_add_test(tc, test_init_fails_with_reason);
	tcase_add_test(tc, test_init_fails_silently);
	tcase_add_test(tc, test_init_fails_unterminated);
	tcase_add_test(tc, test_init_fails_slow_plugin);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(handler_plugin_suite());
	int	 failed;

	test_cf.max_payload = 1024 * 1024;
	fm_runner_init();
	srunner_run_all(sr, CK_NORMAL);
	fm_runner_done();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
