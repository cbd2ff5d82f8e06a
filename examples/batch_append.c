/*
 * batch_append.c: an example jobpool handler plugin with a batch entry point, to copy.
 * It is a bulk insert: each job's payload is one record (a line of text), appended to a
 * file, and the file is flushed to disk (fdatasync) before the jobs succeed. One record
 * at a time, every job pays for a write and a flush; in a batch, the whole batch shares
 * one write and one flush (bench/README.md, "Batches").
 *
 * Build (with jobpool-handler.h installed, or -I pointing at jobpoold's lib/):
 *
 *     cc -shared -fPIC -o batch_append.so batch_append.c
 *
 * Configure a queue with it; the argument is the file, then optionally "nosync" (no
 * fdatasync: the records reach the kernel, not the disk):
 *
 *     { name = "records"; workers = 1; batch_size = 100; batch_wait_ms = 20;
 *       handler = "plugin:/usr/local/lib/jobpool/batch_append.so /var/lib/app/records"; }
 *
 * The same plugin serves a queue without batch_size through process(), one record a
 * call. Each job's result says how many records went in with it: "appended 1/37" is
 * the first record of a batch of 37. A record holding a newline or a NUL byte fails
 * permanently (only that job: the rest of its batch goes in); a write or flush that
 * fails fails the whole batch, which is retried as the queue's retries allow.
 *
 * What it shows: process_batch() setting each job's status and output, failing one job
 * of a batch alone, failing the whole batch by its return value, and one plugin serving
 * both kinds of queue.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jobpool-handler.h>

struct ba_state {
	int	 fd;
	int	 sync;		/* fdatasync after each write */
	char	*buf;		/* a batch's records, joined */
	size_t	 cap;
};

static int
ba_init(const char *arg, void **state, char *err, size_t errlen)
{
	struct ba_state	*st;
	char		 path[4096], opt[16] = "";
	int		 n;

	n = sscanf(arg, "%4095s %15s", path, opt);
	if (n < 1) {
		snprintf(err, errlen, "no file: give it after the path, e.g. "
		    "\"plugin:batch_append.so /var/lib/app/records\"");
		return (-1);
	}
	if (n == 2 && strcmp(opt, "nosync") != 0) {
		snprintf(err, errlen, "unknown option '%s' (want nosync)", opt);
		return (-1);
	}
	if ((st = calloc(1, sizeof *st)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	st->sync = n < 2;
	if ((st->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(st);
		return (-1);
	}
	*state = st;
	return (0);
}

static void
ba_fini(void *state)
{
	struct ba_state	*st = state;

	if (st == NULL)
		return;
	close(st->fd);
	free(st->buf);
	free(st);
}

/* Is this payload one record: no newline, no NUL? */
static int
ba_valid(const void *payload, size_t len)
{
	return (memchr(payload, '\n', len) == NULL && memchr(payload, '\0', len) == NULL);
}

/* Write len bytes of buf, then flush them: 0, or -1 with errno. */
static int
ba_write(struct ba_state *st, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(st->fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		buf += n;
		len -= (size_t)n;
	}
	return (st->sync ? fdatasync(st->fd) : 0);
}

/* Make room for n more bytes after used in st->buf. */
static int
ba_reserve(struct ba_state *st, size_t used, size_t n)
{
	size_t	 cap = st->cap ? st->cap : 4096;
	char	*nb;

	while (cap - used < n)
		cap *= 2;
	if (cap == st->cap)
		return (0);
	if ((nb = realloc(st->buf, cap)) == NULL)
		return (-1);
	st->buf = nb;
	st->cap = cap;
	return (0);
}

/* One record alone (a queue without batch_size). */
static int
ba_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	struct ba_state	*st = state;

	if (!ba_valid(payload, len)) {
		jobpool_output_printf(out, "a record is one line: no newline or NUL");
		return (JOBPOOL_HANDLER_PERMANENT);
	}
	if (ba_reserve(st, 0, len + 1) != 0) {
		jobpool_output_printf(out, "out of memory");
		return (JOBPOOL_HANDLER_ERROR);
	}
	memcpy(st->buf, payload, len);
	st->buf[len] = '\n';
	if (ba_write(st, st->buf, len + 1) != 0) {
		jobpool_output_printf(out, "append: %s", strerror(errno));
		return (JOBPOOL_HANDLER_ERROR);
	}
	jobpool_output_printf(out, "appended 1/1");
	return (JOBPOOL_HANDLER_OK);
}

/*
 * A batch: the valid records joined into one write and one flush. An invalid record
 * fails alone; a failed write fails every other job (the return value), each told why.
 */
static int
ba_process_batch(void *state, struct jobpool_job *jobs, size_t n)
{
	struct ba_state	*st = state;
	size_t		 i, used = 0, nvalid = 0, k = 0;

	for (i = 0; i < n; i++) {
		if (!ba_valid(jobs[i].payload, jobs[i].len)) {
			jobpool_output_printf(jobs[i].out, "a record is one line: no "
			    "newline or NUL");
			jobs[i].status = JOBPOOL_HANDLER_PERMANENT;
			continue;
		}
		if (ba_reserve(st, used, jobs[i].len + 1) != 0)
			break;
		memcpy(st->buf + used, jobs[i].payload, jobs[i].len);
		used += jobs[i].len;
		st->buf[used++] = '\n';
		nvalid++;
	}
	if (i < n || (used > 0 && ba_write(st, st->buf, used) != 0)) {
		const char *why = i < n ? "out of memory" : strerror(errno);

		/* Nothing of the batch is known to be on disk: every record is retried. */
		for (i = 0; i < n; i++) {
			if (jobs[i].status == JOBPOOL_HANDLER_UNSET)
				jobpool_output_printf(jobs[i].out, "append: %s", why);
		}
		return (JOBPOOL_HANDLER_ERROR);
	}
	for (i = 0; i < n; i++) {
		if (jobs[i].status != JOBPOOL_HANDLER_UNSET)
			continue;
		jobpool_output_printf(jobs[i].out, "appended %zu/%zu", ++k, nvalid);
		jobs[i].status = JOBPOOL_HANDLER_OK;
	}
	return (JOBPOOL_HANDLER_OK);
}

const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "batch_append",
	.init = ba_init,
	.process = ba_process,
	.fini = ba_fini,
	.process_batch = ba_process_batch,
};
