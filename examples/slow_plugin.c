/*
 * slow_plugin.c: a handler plugin for jobpool's tests of cancellation, timeouts and
 * errors (tests/it_plugin.sh). Not an example of useful work, but of the rules.
 *
 *     cc -shared -fPIC -o slow_plugin.so slow_plugin.c
 *     handler = "plugin:/path/slow_plugin.so [ignore|initfail]";
 *
 * The payload is one of
 *   "MS [FILE]"  sleep MS milliseconds in 10 ms steps, polling jobpool_cancelled(), then
 *                answer "slept MS". With FILE, create it first and push a cleanup hook
 *                that removes it. The hook is never popped: jobpoold runs it when the
 *                job is cancelled, times out or fails, and drops it (the file stays)
 *                when the job succeeds.
 *   "fail"       fail with JOBPOOL_HANDLER_ERROR (retried per the queue's `retries`)
 *   "permanent"  fail with JOBPOOL_HANDLER_PERMANENT (never retried)
 *   "invalid"    return 7, which is no valid status (jobpoold fails the job)
 * The argument: "ignore" sleeps through cancellation (to test the kill after the grace
 * period); "initfail" makes init() fail (to test the queue's failed state).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jobpool-handler.h>

static int	ignore_cancel;

static int
slow_init(const char *arg, void **state, char *err, size_t errlen)
{
	if (strcmp(arg, "initfail") == 0) {
		snprintf(err, errlen, "slow_plugin: told to fail (argument '%s')", arg);
		return (-1);
	}
	ignore_cancel = strcmp(arg, "ignore") == 0;
	*state = NULL;
	return (0);
}

static void
remove_file(void *path)
{
	unlink(path);
	free(path);
}

static int
slow_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	char		 buf[1024], file[1024] = "", *path;
	unsigned long	 ms, done = 0;
	struct timespec	 ts = { 0, 10 * 1000000 }, rem;
	int		 fd;

	(void)state;
	if (len >= sizeof buf) {
		jobpool_output_printf(out, "slow_plugin: payload too long");
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	memcpy(buf, payload, len);
	buf[len] = '\0';
	if (strcmp(buf, "fail") == 0) {
		jobpool_output_printf(out, "slow_plugin: transient failure");
		return (JOBPOOL_HANDLER_ERROR);
	}
	if (strcmp(buf, "permanent") == 0) {
		jobpool_output_printf(out, "slow_plugin: permanent failure");
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	if (strcmp(buf, "invalid") == 0)
		return (7);
	if (sscanf(buf, "%lu %1023s", &ms, file) < 1) {
		jobpool_output_printf(out, "slow_plugin: want 'MS [FILE]', got '%s'", buf);
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	if (file[0] != '\0') {
		if ((fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1) {
			jobpool_output_printf(out, "slow_plugin: %s: %s", file,
			    strerror(errno));
			return (JOBPOOL_HANDLER_ERROR);
		}
		close(fd);
		if ((path = strdup(file)) == NULL ||
		    jobpool_cleanup_push(remove_file, path) != 0) {
			unlink(file);
			free(path);
			return (JOBPOOL_HANDLER_ERROR);
		}
	}
	while (done < ms) {
		if (!ignore_cancel && jobpool_cancelled()) {
			jobpool_output_printf(out, "slow_plugin: cancelled after %lu ms", done);
			return (JOBPOOL_HANDLER_ERROR);
		}
		/* Ignoring cancellation means sleeping on through SIGUSR1, too. */
		rem = ts;
		while (nanosleep(&rem, &rem) == -1 && errno == EINTR && ignore_cancel)
			;
		done += 10;
	}
	jobpool_output_printf(out, "slept %lu", ms);
	return (JOBPOOL_HANDLER_OK);
}

const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "slow",
	.init = slow_init,
	.process = slow_process,
};
