/*
 * testplugin.c: a handler plugin for the lifecycle and notify tests
 * (tests/it_lifecycle.sh, tests/it_lifecycle_edges.sh, tests/it_notify.sh).
 * Payload: a command word and arguments.
 *   ok                  succeed, output "ok <pid>"
 *   fail FILE           append the time (ms) and pid to FILE, fail (retryable)
 *   permanent           fail permanently
 *   crash               abort(): the worker dies
 *   run MS FILE         append "start end pid" times (ms) to FILE around a MS sleep
 *   ignore MS [FILE]    sleep MS ms ignoring cancellation (appending "start pid" to
 *                       FILE first, if given)
 *   leak MB             allocate and touch MB megabytes, never freed; output the pid
 *   hooks N FILE MODE   push N cleanup hooks (at most 16), hook i appending "hook i" to
 *                       FILE when it runs; then MODE: ok (succeed), fail (retryable),
 *                       permanent, or wait (sleep until cancelled)
 *   failunless FLAG     fail (retryable) while the file FLAG does not exist, else succeed
 *                       with "ok <pid>"
 *
 * In a queue with batch_size, process_batch() runs each job of the batch as above, in
 * order, but for
 *   wait                wait until this job is cancelled or times out
 *                       (jobpool_job_cancelled), then fail it
 * and "ok" answers "ok <pid> batch=N".
 *
 * The init argument: words, each one of
 *   sizes=FILE          process_batch() appends each batch's size ("N\n") to FILE
 *   fini=FILE           fini() appends "fini <pid>" to FILE when the worker exits
 *   flag=FILE           init fails unless FILE exists
 *   abort               init calls abort(): the worker dies before it is ready
 *   initfail            init fails: the queue is marked failed
 *   initsleep MS FILE   init takes MS ms, then appends the CLOCK_MONOTONIC ms to FILE
 */

#include <sys/resource.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool-handler.h"

static long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static long long
mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static char	fini_file[400];
static char	sizes_file[400];
static char	hook_file[400];
static int	hook_ids[16];
static void	*tp_kept;	/* "leak": the blocks, each holding the one before */

/* A cleanup hook: append "hook i" to hook_file. */
static void
tp_hook(void *arg)
{
	FILE	*f;

	if ((f = fopen(hook_file, "a")) != NULL) {
		fprintf(f, "hook %d\n", *(int *)arg);
		fclose(f);
	}
}

static int
tp_init(const char *arg, void **state, char *err, size_t errlen)
{
	char		 word[420];
	const char	*p = arg;
	int		 n;
	struct rlimit	 no_core = { 0, 0 };

	(void)state;
	while (sscanf(p, "%419s%n", word, &n) == 1) {
		p += n;
		if (strncmp(word, "fini=", 5) == 0)
			snprintf(fini_file, sizeof fini_file, "%s", word + 5);
		else if (strncmp(word, "sizes=", 6) == 0)
			snprintf(sizes_file, sizeof sizes_file, "%s", word + 6);
		else if (strncmp(word, "flag=", 5) == 0) {
			if (access(word + 5, F_OK) != 0) {
				snprintf(err, errlen, "testplugin: flag file %s is missing",
				    word + 5);
				return (-1);
			}
		} else if (strcmp(word, "initfail") == 0) {
			snprintf(err, errlen, "testplugin: init told to fail");
			return (-1);
		} else if (strcmp(word, "initsleep") == 0) {
			long	 ms = 0;
			char	 file[400] = "";
			FILE	*f;
			struct timespec ts = { 0, 10 * 1000000 };

			if (sscanf(p, "%ld %399s%n", &ms, file, &n) != 2) {
				snprintf(err, errlen, "testplugin: initsleep MS FILE");
				return (-1);
			}
			p += n;
			for (; ms > 0; ms -= 10)
				nanosleep(&ts, NULL);
			if ((f = fopen(file, "a")) != NULL) {
				fprintf(f, "%lld\n", mono_ms());
				fclose(f);
			}
		} else if (strcmp(word, "abort") == 0) {
			setrlimit(RLIMIT_CORE, &no_core);
			signal(SIGABRT, SIG_DFL);
			abort();
		} else {
			snprintf(err, errlen, "testplugin: unknown init word '%s'", word);
			return (-1);
		}
	}
	return (0);
}

static void
tp_fini(void *state)
{
	FILE	*f;

	(void)state;
	if (fini_file[0] != '\0' && (f = fopen(fini_file, "a")) != NULL) {
		fprintf(f, "fini %ld\n", (long)getpid());
		fclose(f);
	}
}

static void
sleep_ms(long ms, int cancellable)
{
	struct timespec	ts = { 0, 10 * 1000000 };

	for (; ms > 0; ms -= 10) {
		if (cancellable && jobpool_cancelled())
			return;
		nanosleep(&ts, NULL);
	}
}

static int
tp_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	char	cmd[512], word[32] = "", arg[400] = "", arg2[400] = "";
	FILE	*f;
	long	ms;
	size_t	mb, i;
	char	*p;

	if (len >= sizeof cmd)
		len = sizeof cmd - 1;
	memcpy(cmd, payload, len);
	cmd[len] = '\0';
	sscanf(cmd, "%31s %399s %399s", word, arg, arg2);
	if (strcmp(word, "ok") == 0) {
		jobpool_output_printf(out, "ok %ld", (long)getpid());
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "fail") == 0) {
		if ((f = fopen(arg, "a")) != NULL) {
			fprintf(f, "%lld %ld\n", now_ms(), (long)getpid());
			fclose(f);
		}
		jobpool_output_printf(out, "failing on purpose");
		return (JOBPOOL_HANDLER_ERROR);
	}
	if (strcmp(word, "permanent") == 0) {
		jobpool_output_printf(out, "this cannot work");
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	if (strcmp(word, "crash") == 0) {
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	if (strcmp(word, "run") == 0) {
		long long start = now_ms();

		sleep_ms(atol(arg), 1);
		if ((f = fopen(arg2, "a")) != NULL) {
			fprintf(f, "%lld %lld %ld\n", start, now_ms(), (long)getpid());
			fclose(f);
		}
		jobpool_output_printf(out, "%ld", (long)getpid());
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "ignore") == 0) {
		ms = atol(arg);
		if (arg2[0] != '\0' && (f = fopen(arg2, "a")) != NULL) {
			fprintf(f, "%lld %ld\n", now_ms(), (long)getpid());
			fclose(f);
		}
		sleep_ms(ms, 0);
		jobpool_output_printf(out, "ignored");
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "leak") == 0) {
		mb = (size_t)atol(arg);
		if (mb > 0 && (p = malloc(mb << 20)) != NULL) {
			for (i = 0; i < (mb << 20); i += 4096)
				p[i] = 1;
			/* Never freed, but reachable: valgrind is not to call it lost. */
			memcpy(p, &tp_kept, sizeof tp_kept);
			tp_kept = p;
		}
		jobpool_output_printf(out, "%ld", (long)getpid());
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "hooks") == 0) {
		char	mode[32] = "";
		int	nh = 0, k;

		sscanf(cmd, "%*s %d %*s %31s", &nh, mode);
		if (nh > (int)(sizeof hook_ids / sizeof hook_ids[0]))
			nh = (int)(sizeof hook_ids / sizeof hook_ids[0]);
		snprintf(hook_file, sizeof hook_file, "%s", arg2);
		for (k = 0; k < nh; k++) {
			hook_ids[k] = k + 1;
			if (jobpool_cleanup_push(tp_hook, &hook_ids[k]) != 0) {
				jobpool_output_printf(out, "cleanup_push failed");
				return (JOBPOOL_HANDLER_ERROR);
			}
		}
		if (strcmp(mode, "ok") == 0) {
			jobpool_output_printf(out, "ok %ld", (long)getpid());
			return (JOBPOOL_HANDLER_OK);
		}
		if (strcmp(mode, "permanent") == 0) {
			jobpool_output_printf(out, "hooks: failing permanently");
			return (JOBPOOL_HANDLER_PERMANENT);
		}
		if (strcmp(mode, "wait") == 0) {
			while (!jobpool_cancelled())
				sleep_ms(10, 0);
			jobpool_output_printf(out, "hooks: cancelled");
			return (JOBPOOL_HANDLER_ERROR);
		}
		jobpool_output_printf(out, "hooks: failing on purpose");
		return (JOBPOOL_HANDLER_ERROR);
	}
	if (strcmp(word, "failunless") == 0) {
		if (access(arg, F_OK) != 0) {
			jobpool_output_printf(out, "the flag file is missing");
			return (JOBPOOL_HANDLER_ERROR);
		}
		jobpool_output_printf(out, "ok %ld", (long)getpid());
		return (JOBPOOL_HANDLER_OK);
	}
	jobpool_output_printf(out, "unknown command '%s'", word);
	return (JOBPOOL_HANDLER_PERMANENT);
}

/* A batch: its size recorded, then each job as process() would run it, in order. */
static int
tp_process_batch(void *state, struct jobpool_job *jobs, size_t n)
{
	FILE	*f;
	size_t	 i;

	if (sizes_file[0] != '\0' && (f = fopen(sizes_file, "a")) != NULL) {
		fprintf(f, "%zu\n", n);
		fclose(f);
	}
	for (i = 0; i < n; i++) {
		if (jobs[i].len == 4 && memcmp(jobs[i].payload, "wait", 4) == 0) {
			while (!jobpool_job_cancelled(&jobs[i]))
				sleep_ms(10, 0);
			jobpool_output_printf(jobs[i].out, "stopped");
			jobs[i].status = JOBPOOL_HANDLER_ERROR;
			continue;
		}
		jobs[i].status = tp_process(state, jobs[i].payload, jobs[i].len,
		    jobs[i].out);
		if (jobs[i].len == 2 && memcmp(jobs[i].payload, "ok", 2) == 0)
			jobpool_output_printf(jobs[i].out, " batch=%zu", n);
	}
	return (JOBPOOL_HANDLER_OK);
}

const struct jobpool_handler jobpool_handler = {
	JOBPOOL_HANDLER_ABI_VERSION, "testplugin", tp_init, tp_process, tp_fini,
	tp_process_batch
};
