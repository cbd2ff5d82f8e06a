/*
 * check_handler_exec.c: unit tests for daemon/handler_exec.c. Most run the handler in
 * this process, as a worker would: the command line split into words (quotes, no
 * expansion, no PATH search), stdin and stdout, exit statuses and signals, stderr
 * captured and bounded, the output bound, several megabytes both ways at once, a
 * program that stops reading or leaves children behind, what a program inherits.
 * Cancellation needs a real worker (jobpool_cancelled() is the worker's), so those
 * tests drive one through tests/fakemaster.c: TERM to the process group, then KILL
 * after the grace period, and no process of the group left afterwards.
 *
 * This process is made the reaper of its orphans (fm_subreaper), so that what a
 * program leaves behind can be waited for and nothing outlives a test.
 */

#include "autoconf.h"

#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkhandler.h"
#include "fakemaster.h"
#include "frame.h"

#define MB	(1024 * 1024)

/* Open and init an exec handler; 0, or -1 with *cause. */
static int
exec_open(const char *spec, struct handler *h, void **state, char **cause)
{
	const char	*arg = NULL;

	*cause = NULL;
	ck_assert_int_eq(handler_exec_open(spec, h, &arg, cause), 0);
	ck_assert_ptr_null(*cause);
	ck_assert_ptr_nonnull(arg);
	*state = NULL;
	return (h->init(&test_cf, &test_qc, arg, state, cause));
}

static void
exec_open_ok(const char *spec, struct handler *h, void **state)
{
	char	*cause = NULL;

	ck_assert_msg(exec_open(spec, h, state, &cause) == 0, "%s: %s", spec,
	    cause != NULL ? cause : "(no cause)");
	ck_assert_ptr_nonnull(*state);
}

/* init must fail with exactly want. */
static void
exec_open_fails(const char *spec, const char *want)
{
	struct handler	 h;
	void		*state = (void *)&h;
	char		*cause = NULL;

	ck_assert_int_eq(exec_open(spec, &h, &state, &cause), -1);
	ck_assert_ptr_null(state);
	ck_assert_ptr_nonnull(cause);
	ck_assert_str_eq(cause, want);
	free(cause);
}

static void
setup(void)
{
	memset(&test_cf, 0, sizeof test_cf);
	memset(&test_qc, 0, sizeof test_qc);
	test_cf.max_payload = 16 * MB;
	test_qc.name = (char *)"q";
	test_qc.grace_ms = 5000;
	fm_subreaper();
}

/* The spec: "exec:" and the command line, which init splits. */
START_TEST(test_open_and_cat)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	const char		*arg;
	char			*cause = NULL;
	void			*state;
	int			 i;

	ck_assert_int_eq(handler_exec_open("exec:/bin/cat -u", &h, &arg, &cause), 0);
	ck_assert_ptr_null(cause);
	ck_assert_str_eq(arg, "/bin/cat -u");
	ck_assert_str_eq(h.name, "exec");
	ck_assert_ptr_nonnull(h.init);
	ck_assert_ptr_nonnull(h.run);
	ck_assert_ptr_nonnull(h.fini);
	ck_assert_int_eq(handler_exec_open("/bin/cat", &h, &arg, &cause), 0);
	ck_assert_str_eq(arg, "/bin/cat");

	exec_open_ok("exec:/bin/cat", &h, &state);
	/* One process per job, the same handler for many. */
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(run(&h, state, "hello\nworld", &out), FRAME_OK);
		out_is(&out, "hello\nworld");
	}
	/* No payload: stdin is at EOF at once. */
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	out_is(&out, "");
	/* Binary, with NULs. */
	ck_assert_int_eq(h.run(state, "a\0b\377", 4, &out), FRAME_OK);
	ck_assert_uint_eq(out.len, 4);
	ck_assert_int_eq(memcmp(out.buf, "a\0b\377", 4), 0);
	out.len = 0;
	/* The result is appended to what the buffer held (earlier results). */
	ck_assert_int_eq(obuf_add(&out, "EARLIER", 7), 0);
	ck_assert_int_eq(run(&h, state, "+cat", &out), FRAME_OK);
	out_is(&out, "EARLIER+cat");
	h.fini(state);
	free(out.buf);
}
END_TEST

/* Words: blanks, '...', "..." with \" and \\, backslash; nothing is expanded. */
START_TEST(test_word_splitting)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;

	exec_open_ok("exec:/usr/bin/printf [%s] plain 'single  quoted' "
	    "\"dq \\\"in\\\" \\\\ \\n 'x'\" back\\ slash \\'q '' '$HOME' * ~ $PATH "
	    "a'b'\"c\"d \"it's\"\t tab\nnewline", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	out_is(&out, "[plain][single  quoted][dq \"in\" \\ \\n 'x'][back slash]['q][]"
	    "[$HOME][*][~][$PATH][abcd][it's][tab][newline]");
	h.fini(state);

	/* No shell: the program's own view of | and ( ), not a pipeline. */
	exec_open_ok("exec:/usr/bin/printf %s| a|b (c) ;d &e", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	out_is(&out, "a|b|(c)|;d|&e|");
	h.fini(state);
	free(out.buf);
}
END_TEST

/* A command line that cannot be split, or a program that cannot be run. */
START_TEST(test_init_errors)
{
	char	*path, *spec, *want;
	int	 fd;

	exec_open_fails("exec:", "exec: no program after 'exec:'");
	exec_open_fails("exec: \t\n ", "exec: no program after 'exec:'");
	exec_open_fails("exec:/bin/echo 'abc", "exec: unterminated ' quote in the "
	    "command line '/bin/echo 'abc'");
	exec_open_fails("exec:/bin/echo \"a\\\"", "exec: unterminated \" quote in the "
	    "command line '/bin/echo \"a\\\"'");
	exec_open_fails("exec:/bin/echo abc\\", "exec: a backslash ends the command "
	    "line '/bin/echo abc\\'");
	exec_open_fails("exec:/nonexistent/jobpool-check -x",
	    "exec /nonexistent/jobpool-check: cannot run it: No such file or directory");
	/* No PATH search: a bare name is relative to the working directory. */
	exec_open_fails("exec:jobpool-check-no-such-program",
	    "exec jobpool-check-no-such-program: cannot run it: No such file or "
	    "directory");

	/* A file without execute permission (even root needs one x bit). */
	path = fm_path("noexec");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	ck_assert_int_ne(asprintf(&spec, "exec:%s", path), -1);
	ck_assert_int_ne(asprintf(&want, "exec %s: cannot run it: Permission denied",
	    path), -1);
	exec_open_fails(spec, want);
	free(spec);
	free(want);
	free(path);
}
END_TEST

/* Exit statuses: 0 succeeds, 65 fails for good, others (and signals) may be retried. */
START_TEST(test_exit_statuses)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;

	exec_open_ok("exec:/bin/sh -c 'read what; echo output; case $what in "
	    "ok) echo noise >&2; exit 0;; "
	    "three) echo something broke >&2; exit 3;; "
	    "data) echo bad input >&2; exit 65;; "
	    "temp) echo try later >&2; exit 75;; "
	    "quiet) exit 1;; "
	    "newlines) printf \"last words\\n\\n\\n\" >&2; exit 1;; "
	    "kill) kill -9 $$;; "
	    "term) kill -15 $$;; "
	    "esac'", &h, &state);
	/* stderr of a success is not the result. */
	ck_assert_int_eq(run(&h, state, "ok\n", &out), FRAME_OK);
	out_is(&out, "output\n");
	/* A failure's result is how it ended and its stderr, not its stdout. */
	ck_assert_int_eq(run(&h, state, "three\n", &out), FRAME_FAILED);
	out_is(&out, "exit status 3: something broke");
	ck_assert_int_eq(run(&h, state, "data\n", &out), FRAME_PERMANENT);
	out_is(&out, "exit status 65: bad input");
	ck_assert_int_eq(run(&h, state, "temp\n", &out), FRAME_FAILED);
	out_is(&out, "exit status 75: try later");
	ck_assert_int_eq(run(&h, state, "quiet\n", &out), FRAME_FAILED);
	out_is(&out, "exit status 1");
	ck_assert_int_eq(run(&h, state, "newlines\n", &out), FRAME_FAILED);
	out_is(&out, "exit status 1: last words");
	ck_assert_int_eq(run(&h, state, "kill\n", &out), FRAME_FAILED);
	out_is(&out, "killed by signal 9 (Killed)");
	ck_assert_int_eq(run(&h, state, "term\n", &out), FRAME_FAILED);
	out_is(&out, "killed by signal 15 (Terminated)");
	/* Earlier results in the buffer stay; only this job's part is replaced. */
	ck_assert_int_eq(obuf_add(&out, "EARLIER", 7), 0);
	ck_assert_int_eq(run(&h, state, "three\n", &out), FRAME_FAILED);
	out_is(&out, "EARLIERexit status 3: something broke");
	h.fini(state);
	free(out.buf);
}
END_TEST

/* stderr is kept bounded: its last 4 KiB, with how much was dropped. */
START_TEST(test_stderr_bounded)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	char			*want;
	const char		*head = "exit status 2: [stderr truncated: 195907 bytes "
				    "dropped, the last 4096 follow] ";
	size_t			 n = strlen(head);

	exec_open_ok("exec:/bin/sh -c 'head -c 200000 /dev/zero | tr \"\\0\" a >&2; "
	    "printf END >&2; exit 2'", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_FAILED);
	want = malloc(n + 4096 + 1);
	ck_assert_ptr_nonnull(want);
	memcpy(want, head, n);
	memset(want + n, 'a', 4093);
	memcpy(want + n + 4093, "END", 4);
	out_is(&out, want);
	free(want);

	/* Exactly the bound: nothing dropped, nothing said about it. */
	h.fini(state);
	exec_open_ok("exec:/bin/sh -c 'head -c 4096 /dev/zero | tr \"\\0\" b >&2; "
	    "exit 4'", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_FAILED);
	ck_assert_uint_eq(out.len, strlen("exit status 4: ") + 4096);
	ck_assert(fm_has_prefix(out.buf, out.len, "exit status 4: bbbb"));
	ck_assert_int_eq(out.buf[out.len - 1], 'b');
	out.len = 0;
	h.fini(state);
	free(out.buf);
}
END_TEST

/* stdout beyond max_payload: the program is killed and the job fails for good. */
START_TEST(test_stdout_bounded)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	char			 zeros[1000];

	test_cf.max_payload = 1000;
	exec_open_ok("exec:/bin/sh -c 'read n; head -c $n /dev/zero'", &h, &state);
	ck_assert_int_eq(run(&h, state, "1000\n", &out), FRAME_OK);
	memset(zeros, 0, sizeof zeros);
	ck_assert_uint_eq(out.len, 1000);
	ck_assert_int_eq(memcmp(out.buf, zeros, 1000), 0);
	out.len = 0;
	ck_assert_int_eq(run(&h, state, "1001\n", &out), FRAME_PERMANENT);
	out_is(&out, "exec /bin/sh: its output is larger than max_payload (1000 bytes); "
	    "the program was killed");
	h.fini(state);

	/* A program that would never stop writing is stopped. */
	exec_open_ok("exec:/usr/bin/yes", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_PERMANENT);
	out_is(&out, "exec /usr/bin/yes: its output is larger than max_payload (1000 "
	    "bytes); the program was killed");
	h.fini(state);
	free(out.buf);
}
END_TEST

/* Megabytes both ways at once, in any order of reading and writing: no deadlock. */
START_TEST(test_big_both_ways)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	size_t			 n = 8 * MB + 11, i;
	char			*in = malloc(n), *zeros;

	ck_assert_ptr_nonnull(in);
	for (i = 0; i < n; i++)
		in[i] = (char)(i * 7 + (i >> 16));
	exec_open_ok("exec:/bin/cat", &h, &state);
	ck_assert_int_eq(h.run(state, in, n, &out), FRAME_OK);
	ck_assert_uint_eq(out.len, n);
	ck_assert_int_eq(memcmp(out.buf, in, n), 0);
	out.len = 0;
	h.fini(state);

	/* It writes 4 MB before reading any of its 8 MB of stdin. */
	exec_open_ok("exec:/bin/sh -c 'head -c 4194304 /dev/zero; exec cat >/dev/null'",
	    &h, &state);
	ck_assert_int_eq(h.run(state, in, n, &out), FRAME_OK);
	ck_assert_uint_eq(out.len, 4194304);
	zeros = calloc(1, 4194304);
	ck_assert_ptr_nonnull(zeros);
	ck_assert_int_eq(memcmp(out.buf, zeros, 4194304), 0);
	out.len = 0;
	free(zeros);
	h.fini(state);
	free(in);
	free(out.buf);
}
END_TEST

/* A program that stops reading its stdin early is not an error, nor the worker's end. */
START_TEST(test_stdin_not_read)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	size_t			 n = 4 * MB;
	char			*in = malloc(n);

	ck_assert_ptr_nonnull(in);
	memset(in, 'x', n);
	exec_open_ok("exec:/usr/bin/head -c 10", &h, &state);
	ck_assert_int_eq(h.run(state, in, n, &out), FRAME_OK);
	out_is(&out, "xxxxxxxxxx");
	h.fini(state);
	exec_open_ok("exec:/bin/sh -c 'exit 0'", &h, &state);
	ck_assert_int_eq(h.run(state, in, n, &out), FRAME_OK);
	out_is(&out, "");
	h.fini(state);
	free(in);
	free(out.buf);
}
END_TEST

/* What it leaves running is killed with its group when it exits, even on success. */
START_TEST(test_background_child_killed)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	long			 pgid;
	char			 tail[16];

	exec_open_ok("exec:/bin/sh -c 'echo $$; sleep 60 & echo started'", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	/* The background sleep holds stdout open: the result is what was there. */
	ck_assert_int_eq(obuf_add(&out, "", 1), 0);
	ck_assert_int_eq(sscanf(out.buf, "%ld\n%15s", &pgid, tail), 2);
	ck_assert_str_eq(tail, "started");
	ck_assert_msg(fm_group_gone((pid_t)pgid, FM_TIMEOUT_MS),
	    "process group %ld outlived its job", pgid);
	out.len = 0;
	h.fini(state);
	free(out.buf);
}
END_TEST

/* The program leads its own group, with default signals and an empty mask. */
START_TEST(test_process_group_and_signals)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	sigset_t		 set;
	long			 pid, pgid;
	unsigned long long	 blk, ign;
	int			 sig;

	/* What this process has that a program must not inherit. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	(void)signal(SIGHUP, SIG_IGN);
	(void)signal(SIGINT, SIG_IGN);

	exec_open_ok("exec:/bin/grep -E ^Sig(Blk|Ign): /proc/self/status", &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	ck_assert_int_eq(obuf_add(&out, "", 1), 0);
	ck_assert_int_eq(sscanf(out.buf, "SigBlk: %llx SigIgn: %llx", &blk, &ign), 2);
	ck_assert_msg(blk == 0, "blocked in the program: %llx", blk);
	/*
	 * glibc's posix_spawn leaves its own two internal signals (32 and 33, below
	 * SIGRTMIN, which no glibc program can name) ignored in the child; every other
	 * signal must be at its default.
	 */
	for (sig = 32; sig < SIGRTMIN; sig++)
		ign &= ~(1ULL << (sig - 1));
	ck_assert_msg(ign == 0, "ignored in the program: %llx", ign);
	out.len = 0;
	h.fini(state);

	exec_open_ok("exec:/bin/sh -c 'echo $$ $(cut -d\" \" -f5 /proc/$$/stat)'", &h,
	    &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	ck_assert_int_eq(obuf_add(&out, "", 1), 0);
	ck_assert_int_eq(sscanf(out.buf, "%ld %ld", &pid, &pgid), 2);
	ck_assert_int_eq(pid, pgid);
	ck_assert_int_ne(pgid, (long)getpgrp());
	out.len = 0;
	h.fini(state);
	free(out.buf);
}
END_TEST

/* The program was there at start-up but is gone when a job runs. */
START_TEST(test_program_removed)
{
	struct handler		 h;
	struct jobpool_output	 out = { NULL, 0, 0 };
	void			*state;
	char			*path = fm_path("gone.sh"), *spec, *want;
	int			 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0755);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, "#!/bin/sh\necho here\n", 20), 20);
	close(fd);
	ck_assert_int_ne(asprintf(&spec, "exec:%s", path), -1);
	exec_open_ok(spec, &h, &state);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_OK);
	out_is(&out, "here\n");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(run(&h, state, "", &out), FRAME_FAILED);
	ck_assert_int_ne(asprintf(&want, "exec %s: cannot run it: No such file or "
	    "directory", path), -1);
	out_is(&out, want);
	h.fini(state);
	free(want);
	free(spec);
	free(path);
	free(out.buf);
}
END_TEST

/* A worker's pipes (fds 3 and 4) never reach a program, even if inheritable. */
START_TEST(test_worker_fds_not_inherited)
{
	struct fm	fm;

	fm_init(&fm, "exec:/bin/ls /proc/self/fd");
	fm.inheritable = 1;
	fm_start_ready(&fm);
	fm_job(&fm, 1, "");
	fm_flush(&fm);
	/* ls's own directory descriptor is the lowest free one: 3. */
	fm_expect(&fm, FRAME_RESULT, FRAME_OK, 1, "0\n1\n2\n3\n");
	fm_close_jobs(&fm);
	fm_expect_eof(&fm);
	fm_expect_exit(&fm, 0);
	fm_free(&fm);
}
END_TEST

/* A spec for a program that writes its pid to pidfile and then sleeps. */
static char *
sleeper_spec(const char *pidfile, int ignore_term)
{
	char	*spec;

	ck_assert_int_ne(asprintf(&spec, "exec:/bin/sh -c 'read what; "
	    "if [ \"$what\" = quick ]; then echo quick; exit 0; fi; %s"
	    "echo $$ > %s; sleep 60 & sleep 60; echo not cancelled'",
	    ignore_term ? "trap \"\" TERM; " : "", pidfile), -1);
	return (spec);
}

/* Cancelled: SIGTERM to the group, which honours it; nothing of it is left. */
START_TEST(test_cancel_term)
{
	struct fm	 fm;
	char		*pidfile = fm_path("pid"), *spec = sleeper_spec(pidfile, 0), *s;
	long		 pgid;

	fm_init(&fm, spec);
	fm.qc.grace_ms = 20000;	/* it honours TERM: a slow machine must not matter */
	fm_start_ready(&fm);
	fm_job(&fm, 1, "sleep\n");
	fm_flush(&fm);
	s = fm_wait_file(pidfile);
	pgid = strtol(s, NULL, 10);
	free(s);
	ck_assert_int_gt(pgid, 1);
	fm_cancel(&fm, 1, FRAME_CANCEL_USER);
	fm_expect(&fm, FRAME_RESULT, FRAME_CANCELLED, 1, "/bin/sh exited on "
	    "SIGTERM (killed by signal 15 (Terminated))");
	ck_assert_msg(fm_group_gone((pid_t)pgid, FM_TIMEOUT_MS),
	    "process group %ld outlived its cancelled job", pgid);
	/* The worker goes on. */
	fm_job(&fm, 2, "quick\n");
	fm_flush(&fm);
	fm_expect(&fm, FRAME_RESULT, FRAME_OK, 2, "quick\n");
	fm_close_jobs(&fm);
	fm_expect_eof(&fm);
	fm_expect_exit(&fm, 0);
	fm_free(&fm);
	free(spec);
	free(pidfile);
}
END_TEST

/* A group that ignores SIGTERM is killed after the grace period, all of it. */
START_TEST(test_cancel_kill_after_grace)
{
	struct fm	 fm;
	char		*pidfile = fm_path("pid"), *spec = sleeper_spec(pidfile, 1), *s;
	long		 pgid;

	fm_init(&fm, spec);
	fm.qc.grace_ms = 300;
	fm_start_ready(&fm);
	fm_job(&fm, 1, "sleep\n");
	fm_flush(&fm);
	s = fm_wait_file(pidfile);
	pgid = strtol(s, NULL, 10);
	free(s);
	ck_assert_int_gt(pgid, 1);
	/* A timeout takes the same path as a cancel. */
	fm_cancel(&fm, 1, FRAME_CANCEL_TIMEOUT);
	fm_expect(&fm, FRAME_RESULT, FRAME_CANCELLED, 1, "/bin/sh did not "
	    "exit within the grace period (300 ms) after SIGTERM and was killed");
	ck_assert_msg(fm_group_gone((pid_t)pgid, FM_TIMEOUT_MS),
	    "process group %ld outlived its cancelled job", pgid);
	/* The handler killed the group itself: the worker lives and goes on. */
	fm_job(&fm, 2, "quick\n");
	fm_flush(&fm);
	fm_expect(&fm, FRAME_RESULT, FRAME_OK, 2, "quick\n");
	fm_close_jobs(&fm);
	fm_expect_eof(&fm);
	fm_expect_exit(&fm, 0);
	fm_free(&fm);
	free(spec);
	free(pidfile);
}
END_TEST

/*
 * SIGTERM goes to the whole group, so a child's trap runs too: here a background
 * subshell's, which the leader waits for before it exits.
 */
START_TEST(test_cancel_term_reaches_group)
{
	struct fm	 fm;
	char		*pidfile = fm_path("pid"), *termed = fm_path("termed"), *spec, *s;
	long		 pgid;

	ck_assert_int_ne(asprintf(&spec, "exec:/bin/sh -c 'trap \"wait; exit 0\" TERM; "
	    "(trap \"echo termed > %s; exit 0\" TERM; echo $$ > %s; sleep 60 & wait) & "
	    "wait'", termed, pidfile), -1);
	fm_init(&fm, spec);
	fm.qc.grace_ms = 20000;
	fm_start_ready(&fm);
	fm_job(&fm, 1, "");
	fm_flush(&fm);
	s = fm_wait_file(pidfile);
	pgid = strtol(s, NULL, 10);
	free(s);
	ck_assert_int_gt(pgid, 1);
	fm_cancel(&fm, 1, FRAME_CANCEL_USER);
	fm_expect(&fm, FRAME_RESULT, FRAME_CANCELLED, 1, "/bin/sh exited on "
	    "SIGTERM (exit status 0)");
	ck_assert_str_eq((s = fm_read_file(termed)), "termed\n");
	free(s);
	ck_assert_msg(fm_group_gone((pid_t)pgid, FM_TIMEOUT_MS),
	    "process group %ld outlived its cancelled job", pgid);
	fm_free(&fm);
	free(spec);
	free(termed);
	free(pidfile);
}
END_TEST

static Suite *
handler_exec_suite(void)
{
	Suite	*s = suite_create("handler_exec");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_open_and_cat);
	tcase_add_test(tc, test_word_splitting);
	tcase_add_test(tc, test_init_errors);
	tcase_add_test(tc, test_exit_statuses);
	tcase_add_test(tc, test_stderr_bounded);
	tcase_add_test(tc, test_stdout_bounded);
	tcase_add_test(tc, test_big_both_ways);
	tcase_add_test(tc, test_stdin_not_read);
	tcase_add_test(tc, test_background_child_killed);
	tcase_add_test(tc, test_process_group_and_signals);
	tcase_add_test(tc, test_program_removed);
	tcase_add_test(tc, test_worker_fds_not_inherited);
	tcase_add_test(tc, test_cancel_term);
	tcase_add_test(tc, test_cancel_term_reaches_group);
	tcase_add_test(tc, test_cancel_kill_after_grace);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(handler_exec_suite());
	int	 failed;

	fm_runner_init();
	srunner_run_all(sr, CK_NORMAL);
	fm_runner_done();
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
