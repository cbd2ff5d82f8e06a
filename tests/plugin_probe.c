/*
 * plugin_probe.c: a handler plugin for the unit suites (check_handler_plugin,
 * check_worker) that shows what the worker process gives a plugin. Built by `make
 * check` as tests/.libs/plugin_probe.so.
 *
 * init's argument: "" or any text (kept, and answered by the job "arg"), or
 *   "fail MSG"     fail with MSG as the reason
 *   "failsilent"   fail without writing a reason
 *   "failfull"     fail with err filled to the last byte and no terminating NUL
 * If $PLUGIN_PROBE_FINI names a file, fini() appends "fini\n" to it.
 *
 * The payload is a command:
 *   arg                  answer the init argument
 *   say TEXT             answer TEXT
 *   reset                write "partial", jobpool_output_reset(), then "after reset"
 *   write0               jobpool_output_write(out, NULL, 0) must return 0; answer "ok"
 *   cancelled            answer "cancelled=N", what jobpool_cancelled() says
 *   status N             return N with "status N" as the output
 *   hooks FILE N STATUS  push N cleanup hooks (hook k appends "k\n" to FILE), then
 *                        return STATUS: ok, error or permanent
 *   pop FILE RUN         push hooks 1 and 2, pop the last (running it if RUN is 1),
 *                        then fail: what is left runs in the worker
 *   wait FILE [ok]       create FILE, push a hook removing it, and poll
 *                        jobpool_cancelled() every 10 ms until it says so; then fail
 *                        (or, with "ok", succeed all the same)
 *   data BYTES           answer BYTES, read from the payload itself (any length)
 *   hold FILE            create FILE, then call jobpool_cancelled() (ignoring what it
 *                        says) every 10 ms until FILE.go exists; then answer "held "
 *                        and the payload, read from the payload only now
 * In a batch (process_batch, a queue with batch_size), each job is run as above, in
 * order, but for
 *   unset                leave its status unset, with output "unset" (the batch's
 *                        return value decides)
 *   mute                 leave its status unset, with no output
 *   failall              leave its status unset, with output "failing the batch", and
 *                        make process_batch() return JOBPOOL_HANDLER_ERROR
 *   badall               the same, returning 7 (no status at all)
 *   bad                  set the invalid status 42
 *   bwait FILE           create FILE, then poll jobpool_job_cancelled() for this job
 *                        every 10 ms until it says so; then fail with "stopped"
 *   size                 answer "size=N cancelled=C", the batch's size and
 *                        jobpool_cancelled() as this job runs
 *   nap FILE [N]         create FILE, sleep 2 ms, then wait for FILE.go to exist
 *                        without ever asking jobpool_cancelled(); succeed with
 *                        "napped" and N more bytes ('z')
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool-handler.h"

struct hook {
	char	*file;
	int	 k;
};

static char	*probe_arg;

static int
probe_init(const char *arg, void **state, char *err, size_t errlen)
{
	if (strncmp(arg, "fail ", 5) == 0) {
		snprintf(err, errlen, "%s", arg + 5);
		return (-1);
	}
	if (strcmp(arg, "failsilent") == 0)
		return (-1);
	if (strcmp(arg, "failfull") == 0) {
		memset(err, 'x', errlen);
		return (-1);
	}
	if ((probe_arg = strdup(arg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	*state = probe_arg;
	return (0);
}

static void
probe_fini(void *state)
{
	const char	*path = getenv("PLUGIN_PROBE_FINI");
	int		 fd;

	if (state != probe_arg)
		abort();	/* the worker must hand back what init returned */
	free(probe_arg);
	probe_arg = NULL;
	if (path != NULL &&
	    (fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) != -1) {
		if (write(fd, "fini\n", 5) != 5)
			abort();
		close(fd);
	}
}

static void
hook_run(void *arg)
{
	struct hook	*h = arg;
	char		 line[32];
	int		 fd, n;

	n = snprintf(line, sizeof line, "%d\n", h->k);
	if ((fd = open(h->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) != -1) {
		if (write(fd, line, (size_t)n) != n)
			abort();
		close(fd);
	}
	free(h->file);
	free(h);
}

static int
hook_push(const char *file, int k)
{
	struct hook	*h;

	if ((h = calloc(1, sizeof *h)) == NULL || (h->file = strdup(file)) == NULL) {
		free(h);
		return (-1);
	}
	h->k = k;
	if (jobpool_cleanup_push(hook_run, h) != 0) {
		free(h->file);
		free(h);
		return (-1);
	}
	return (0);
}

static void
remove_file(void *arg)
{
	unlink(arg);
	free(arg);
}

/* Create path holding one line. */
static int
touch(const char *path)
{
	int	fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1)
		return (-1);
	if (write(fd, "started\n", 8) != 8)
		abort();
	close(fd);
	return (0);
}

static int
status_of(const char *word)
{
	if (strcmp(word, "ok") == 0)
		return (JOBPOOL_HANDLER_OK);
	if (strcmp(word, "permanent") == 0)
		return (JOBPOOL_HANDLER_PERMANENT);
	return (JOBPOOL_HANDLER_ERROR);
}

static int
probe_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	char		 cmd[1024], word[32] = "", file[900] = "", st[32] = "ok", *path;
	struct timespec	 ts = { 0, 10 * 1000000 };
	int		 n = 0, i;

	if (state != probe_arg)
		abort();
	if (len >= 5 && memcmp(payload, "data ", 5) == 0) {
		jobpool_output_write(out, (const char *)payload + 5, len - 5);
		return (JOBPOOL_HANDLER_OK);
	}
	if (len >= sizeof cmd) {
		jobpool_output_printf(out, "probe: payload too long");
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	memcpy(cmd, payload, len);
	cmd[len] = '\0';
	sscanf(cmd, "%31s", word);

	if (strcmp(word, "arg") == 0) {
		jobpool_output_write(out, probe_arg, strlen(probe_arg));
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "say") == 0) {
		jobpool_output_write(out, cmd + 4, len > 4 ? len - 4 : 0);
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "reset") == 0) {
		jobpool_output_printf(out, "partial");
		jobpool_output_reset(out);
		jobpool_output_printf(out, "after %s", "reset");
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "write0") == 0) {
		if (jobpool_output_write(out, NULL, 0) != 0)
			return (JOBPOOL_HANDLER_ERROR);
		jobpool_output_write(out, "ok", 2);
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "cancelled") == 0) {
		jobpool_output_printf(out, "cancelled=%d", jobpool_cancelled());
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "status") == 0) {
		sscanf(cmd, "%*s %d", &n);
		jobpool_output_printf(out, "status %d", n);
		return (n);
	}
	if (strcmp(word, "hooks") == 0) {
		if (sscanf(cmd, "%*s %899s %d %31s", file, &n, st) != 3)
			return (JOBPOOL_HANDLER_PERMANENT);
		for (i = 1; i <= n; i++) {
			if (hook_push(file, i) != 0)
				return (JOBPOOL_HANDLER_ERROR);
		}
		jobpool_output_printf(out, "hooks %d %s", n, st);
		return (status_of(st));
	}
	if (strcmp(word, "pop") == 0) {
		if (sscanf(cmd, "%*s %899s %d", file, &n) != 2 ||
		    hook_push(file, 1) != 0 || hook_push(file, 2) != 0)
			return (JOBPOOL_HANDLER_PERMANENT);
		jobpool_cleanup_pop(n);
		jobpool_output_printf(out, "popped");
		return (JOBPOOL_HANDLER_ERROR);
	}
	if (strcmp(word, "wait") == 0) {
		st[0] = '\0';
		if (sscanf(cmd, "%*s %899s %31s", file, st) < 1)
			return (JOBPOOL_HANDLER_PERMANENT);
		if (touch(file) != 0)
			return (JOBPOOL_HANDLER_ERROR);
		if ((path = strdup(file)) == NULL ||
		    jobpool_cleanup_push(remove_file, path) != 0) {
			free(path);
			return (JOBPOOL_HANDLER_ERROR);
		}
		while (!jobpool_cancelled())
			nanosleep(&ts, NULL);
		if (strcmp(st, "ok") == 0) {
			jobpool_output_printf(out, "finished anyway");
			return (JOBPOOL_HANDLER_OK);
		}
		jobpool_output_printf(out, "probe: stopped");
		return (JOBPOOL_HANDLER_ERROR);
	}
	if (strcmp(word, "hold") == 0) {
		if (sscanf(cmd, "%*s %890s", file) != 1 || touch(file) != 0)
			return (JOBPOOL_HANDLER_PERMANENT);
		strcat(file, ".go");
		for (;;) {
			(void)jobpool_cancelled();	/* reads what the master sent */
			if (access(file, F_OK) == 0)
				break;
			nanosleep(&ts, NULL);
		}
		jobpool_output_printf(out, "held ");
		jobpool_output_write(out, payload, len);
		return (JOBPOOL_HANDLER_OK);
	}
	if (strcmp(word, "nap") == 0) {
		struct timespec	 two = { 0, 2 * 1000000 };
		char		*z;

		if (sscanf(cmd, "%*s %890s %d", file, &n) < 1 || n < 0 || touch(file) != 0)
			return (JOBPOOL_HANDLER_PERMANENT);
		nanosleep(&two, NULL);	/* a job of a millisecond or more, surely */
		strcat(file, ".go");
		while (access(file, F_OK) != 0)
			nanosleep(&ts, NULL);
		jobpool_output_printf(out, "napped");
		if (n > 0) {
			if ((z = malloc((size_t)n)) == NULL)
				return (JOBPOOL_HANDLER_ERROR);
			memset(z, 'z', (size_t)n);
			jobpool_output_write(out, z, (size_t)n);
			free(z);
		}
		return (JOBPOOL_HANDLER_OK);
	}
	jobpool_output_printf(out, "probe: unknown command '%s'", cmd);
	return (JOBPOOL_HANDLER_PERMANENT);
}

/* Is the job's payload the word w (and maybe arguments)? */
static int
is_cmd(const struct jobpool_job *j, const char *w)
{
	size_t	n = strlen(w);

	return (j->len >= n && memcmp(j->payload, w, n) == 0 &&
	    (j->len == n || ((const char *)j->payload)[n] == ' '));
}

static int
probe_process_batch(void *state, struct jobpool_job *jobs, size_t n)
{
	struct timespec	 ts = { 0, 10 * 1000000 };
	char		 file[900];
	size_t		 i, l;
	int		 rc = JOBPOOL_HANDLER_OK;

	if (state != probe_arg)
		abort();
	for (i = 0; i < n; i++) {
		if (jobs[i].status != JOBPOOL_HANDLER_UNSET || jobs[i].index != i ||
		    jobs[i].out == NULL)
			abort();	/* the worker sets them so */
		if (is_cmd(&jobs[i], "unset"))
			jobpool_output_printf(jobs[i].out, "unset");
		else if (is_cmd(&jobs[i], "mute"))
			;
		else if (is_cmd(&jobs[i], "failall")) {
			jobpool_output_printf(jobs[i].out, "failing the batch");
			rc = JOBPOOL_HANDLER_ERROR;
		} else if (is_cmd(&jobs[i], "badall")) {
			jobpool_output_printf(jobs[i].out, "bad batch");
			rc = 7;
		} else if (is_cmd(&jobs[i], "bad")) {
			jobpool_output_printf(jobs[i].out, "bad");
			jobs[i].status = 42;
		} else if (is_cmd(&jobs[i], "size")) {
			jobpool_output_printf(jobs[i].out, "size=%zu cancelled=%d", n,
			    jobpool_cancelled());
			jobs[i].status = JOBPOOL_HANDLER_OK;
		} else if (is_cmd(&jobs[i], "bwait")) {
			l = jobs[i].len - 6 < sizeof file - 1 ? jobs[i].len - 6 :
			    sizeof file - 1;
			memcpy(file, (const char *)jobs[i].payload + 6, l);
			file[l] = '\0';
			if (touch(file) != 0)
				abort();
			while (!jobpool_job_cancelled(&jobs[i]))
				nanosleep(&ts, NULL);
			jobpool_output_printf(jobs[i].out, "stopped");
			jobs[i].status = JOBPOOL_HANDLER_ERROR;
		} else
			jobs[i].status = probe_process(state, jobs[i].payload, jobs[i].len,
			    jobs[i].out);
	}
	return (rc);
}

const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "probe",
	.init = probe_init,
	.process = probe_process,
	.fini = probe_fini,
	.process_batch = probe_process_batch,
};
