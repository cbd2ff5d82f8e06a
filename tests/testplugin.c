/*
 * testplugin.c: a handler plugin for the lifecycle and notify tests
 * (tests/it_lifecycle.sh, tests/it_notify.sh). Its argument (after the path in the
 * handler string):
 *   (none)              init does nothing
 *   initsleep MS FILE   init takes MS ms, then writes the CLOCK_MONOTONIC ms to FILE
 *   initfail            init fails: the queue is marked failed
 * Payload: a command word and arguments.
 *   ok                  succeed, output "ok <pid>"
 *   fail FILE           append the time (ms) and pid to FILE, fail (retryable)
 *   permanent           fail permanently
 *   crash               abort(): the worker dies
 *   run MS FILE         append "start end pid" times (ms) to FILE around a MS sleep
 *   ignore MS           sleep MS ms ignoring cancellation
 *   leak MB             allocate and touch MB megabytes, never freed; output the pid
 */

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
tp_init(const char *arg, void **state, char *err, size_t errlen)
{
	char	word[32] = "", file[400] = "";
	long	ms = 0;
	FILE	*f;

	*state = NULL;
	sscanf(arg, "%31s %ld %399s", word, &ms, file);
	if (strcmp(word, "initfail") == 0) {
		snprintf(err, errlen, "testplugin: init told to fail");
		return (-1);
	}
	if (strcmp(word, "initsleep") == 0) {
		sleep_ms(ms, 0);
		if (file[0] != '\0' && (f = fopen(file, "a")) != NULL) {
			fprintf(f, "%lld\n", mono_ms());
			fclose(f);
		}
	}
	return (0);
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
		sleep_ms(ms, 0);
		jobpool_output_printf(out, "ignored");
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "leak") == 0) {
		mb = (size_t)atol(arg);
		if ((p = malloc(mb << 20)) != NULL) {
			for (i = 0; i < (mb << 20); i += 4096)
				p[i] = 1;
		}
		jobpool_output_printf(out, "%ld", (long)getpid());
		return (JOBPOOL_HANDLER_OK);
	}
	jobpool_output_printf(out, "unknown command '%s'", word);
	return (JOBPOOL_HANDLER_PERMANENT);
}

const struct jobpool_handler jobpool_handler = {
	JOBPOOL_HANDLER_ABI_VERSION, "testplugin", tp_init, tp_process, NULL
};
