/*
 * ctl-map.c: jobpoolctl map, the fast path.
 *
 * It streams stdin lines as pipelined SUBMITs with a bounded window of jobs in flight,
 * and streams the RESULTs to stdout, in completion order or (-k) in input order
 * through a reorder ring. Per job it does no syscall and, in the common case, no
 * allocation: stdin is read and stdout written in large blocks, and requests are
 * flushed to the socket in batches.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define MAP_WINDOW_DEFAULT	1024
#define MAP_INBUF		(1024 * 1024)
#define MAP_OUTBUF		(1024 * 1024)
#define MAP_LINE_MAX		((size_t)64 * 1024 * 1024)
#define MAP_FLUSH_AT		(256 * 1024)	/* flush requests once this much is queued */
#define MAP_PROGRESS_NS		100000000L	/* at most ten progress updates a second */

static int	map_exec(struct ctl_run *);

const struct ctl_cmd ctl_map_cmd = {
	.name = "map",
	.usage = { "[-k] [-q queue] [-j window] [-p prio] [--timeout s] [--key NAME]" },
	.help = "run a job for each line of stdin, print the results",
	.options = CTL_O_KEEP | CTL_O_QUEUE | CTL_O_WINDOW | CTL_O_PRIO | CTL_O_TIMEOUT |
	    CTL_O_KEY,
	.maxargs = 0,
	.toomany = "map reads its input from stdin",
	.flags = CTL_CONNECT,
	.exec = map_exec,
};

/* One result in the -k reorder ring, waiting for the lines before it. */
struct map_slot {
	int		 ready;
	uint64_t	 id;
	char		 status[16];
	char		*buf;
	size_t		 len;
	size_t		 cap;
};

/* A RESULT that arrived before the OK naming its job; kept until the OK comes. */
struct map_early {
	struct map_early	*next;
	uint64_t		 id;
	int			 ok;
	char			 status[16];
	char			*data;
	size_t			 len;
};

/* A job acknowledged but not finished: its id and input sequence number. */
struct map_ident {
	uint64_t	 id;		/* 0: empty slot */
	uint64_t	 seq;
};

struct map {
	struct jobpool			*jp;
	struct jobpool_submit_opts	 opts;
	const char			*key;		/* --key: every line's job's, or NULL */
	int				 keep;
	uint64_t			 window;
	uint64_t			 resume;	/* after a full window, go on at this */

	/* stdin: [start, end) is unsubmitted input, [start, scan) has no newline. */
	char				*in;
	size_t				 in_cap;
	size_t				 in_start;
	size_t				 in_scan;
	size_t				 in_end;
	int				 in_eof;

	uint64_t			 submitted;	/* lines sent */
	uint64_t			 acked;		/* OK replies received */
	uint64_t			 finished;	/* results received */
	uint64_t			 written;	/* -k: results written */
	uint64_t			 failed;
	int				 paused;	/* the window filled up */

	/* Jobs acknowledged, not finished: open addressing, linear probing. */
	struct map_ident		*ids;
	size_t				 ids_mask;
	unsigned			 ids_shift;

	struct map_slot			*ring;		/* -k: window slots */
	struct map_early		*early;

	int				 progress;
	struct timespec			 progress_at;
};

/* The home slot of a job id in the id table. */
static size_t
map_ident_hash(const struct map *m, uint64_t id)
{
	/* Fibonacci hashing: ids from one client are often strided. */
	return ((size_t)((id * 0x9e3779b97f4a7c15ULL) >> m->ids_shift) & m->ids_mask);
}

/* Remember that job id is input line seq. */
static void
map_ident_put(struct map *m, uint64_t id, uint64_t seq)
{
	size_t	i;

	i = map_ident_hash(m, id);
	while (m->ids[i].id != 0)
		i = (i + 1) & m->ids_mask;
	m->ids[i].id = id;
	m->ids[i].seq = seq;
}

/* Find and forget job id; 0 with *seq set, or -1 if it is not known. */
static int
map_ident_take(struct map *m, uint64_t id, uint64_t *seq)
{
	size_t	i, j, k;

	i = map_ident_hash(m, id);
	for (;;) {
		if (m->ids[i].id == 0)
			return (-1);
		if (m->ids[i].id == id)
			break;
		i = (i + 1) & m->ids_mask;
	}
	*seq = m->ids[i].seq;

	/*
	 * Backward-shift deletion: move later entries of the probe run into the hole
	 * when the hole lies between their home slot and where they are, so no lookup
	 * ever stops short at an empty slot. No tombstones to clean up.
	 */
	j = i;
	for (;;) {
		j = (j + 1) & m->ids_mask;
		if (m->ids[j].id == 0)
			break;
		k = map_ident_hash(m, m->ids[j].id);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->ids[i] = m->ids[j];
			i = j;
		}
	}
	m->ids[i].id = 0;
	return (0);
}

/* Write one result line to stdout; line is 1-based. */
static void
map_output(uint64_t line, uint64_t id, const char *status, int ok, const void *data,
    size_t len)
{
	if (ctl_json)
		json_result(stdout, line, id, status, data, len);
	else {
		/* A failed job leaves an empty line, so output lines match input lines. */
		if (ok && len != 0)
			fwrite(data, 1, len, stdout);
		putc('\n', stdout);
	}
}

/* Show "done/submitted done, failed failed" on stderr, at most ten times a second. */
static void
map_progress(struct map *m, int force)
{
	struct timespec	 now;
	long		 ns;

	if (!m->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (now.tv_sec - m->progress_at.tv_sec) * 1000000000L +
	    (now.tv_nsec - m->progress_at.tv_nsec);
	if (!force && ns < MAP_PROGRESS_NS)
		return;
	m->progress_at = now;
	fprintf(stderr, "\r%" PRIu64 "/%" PRIu64 " done, %" PRIu64 " failed",
	    m->finished, m->submitted, m->failed);
	ctl_progress_shown = 1;
}

/* A job finished: count it, report a failure, write or hold its result. 0 or -1. */
static int
map_result(struct map *m, uint64_t seq, uint64_t id, const char *status, int ok,
    const void *data, size_t len)
{
	struct map_slot	*slot;
	char		*nbuf;

	m->finished++;
	if (!ok) {
		m->failed++;
		ctl_job_failed(seq + 1, id, status, data, len);
		if (!ctl_json)
			len = 0;
	}
	if (!m->keep) {
		map_output(seq + 1, id, status, ok, data, len);
		return (0);
	}

	if (seq == m->written) {
		map_output(seq + 1, id, status, ok, data, len);
		m->written++;
		for (;;) {
			slot = &m->ring[m->written % m->window];
			if (!slot->ready)
				break;
			map_output(m->written + 1, slot->id, slot->status,
			    strcmp(slot->status, "ok") == 0, slot->buf, slot->len);
			slot->ready = 0;
			m->written++;
		}
		return (0);
	}

	/* Out of order: hold a copy. Slot buffers are reused, so this rarely allocates. */
	slot = &m->ring[seq % m->window];
	if (len > slot->cap) {
		if ((nbuf = realloc(slot->buf, len)) == NULL) {
			ctl_warnx("map: %s", strerror(errno));
			return (-1);
		}
		slot->buf = nbuf;
		slot->cap = len;
	}
	if (len != 0)
		memcpy(slot->buf, data, len);
	slot->len = len;
	slot->id = id;
	snprintf(slot->status, sizeof slot->status, "%s", status);
	slot->ready = 1;
	return (0);
}

/* Keep a copy of a RESULT whose OK has not come yet. 0 or -1. */
static int
map_early_add(struct map *m, const struct jobpool_msg *msg)
{
	struct map_early	*e;

	if ((e = calloc(1, sizeof *e)) == NULL)
		goto fail;
	if ((e->data = malloc(msg->len + 1)) == NULL) {
		free(e);
		goto fail;
	}
	if (msg->len != 0)
		memcpy(e->data, msg->data, msg->len);
	e->len = msg->len;
	e->id = msg->id;
	e->ok = msg->status == JOBPOOL_JOB_OK;
	snprintf(e->status, sizeof e->status, "%s",
	    msg->status_name != NULL ? msg->status_name : "unknown");
	e->next = m->early;
	m->early = e;
	return (0);

fail:
	ctl_warnx("map: %s", strerror(errno));
	return (-1);
}

/* Handle one message from the daemon. 0, or -1 to give up. */
static int
map_handle(struct map *m, const struct jobpool_msg *msg)
{
	struct map_early	**ep, *e;
	const char		 *status;
	uint64_t		  seq;
	char			  what[64];
	int			  rc;

	switch (msg->type) {
	case JOBPOOL_MSG_OK:
		if (m->acked == m->submitted || msg->id == 0) {
			ctl_warnx("map: unexpected reply 'OK %s'", msg->text);
			return (-1);
		}
		seq = m->acked++;
		for (ep = &m->early; (e = *ep) != NULL; ep = &e->next) {
			if (e->id == msg->id)
				break;
		}
		if (e == NULL) {
			map_ident_put(m, msg->id, seq);
			return (0);
		}
		*ep = e->next;
		rc = map_result(m, seq, e->id, e->status, e->ok, e->data, e->len);
		free(e->data);
		free(e);
		return (rc);
	case JOBPOOL_MSG_ERR:
		/*
		 * Replies come in request order: the n-th reply is about line n. A line
		 * the daemon refuses for what it holds (too large) is a failed line; any
		 * other refusal (no such queue, shutting down, ...) holds for every line.
		 */
		if (strncmp(msg->text, "toolarge ", 9) == 0) {
			seq = m->acked++;
			return (map_result(m, seq, 0, "refused", 0, msg->text,
			    strlen(msg->text)));
		}
		snprintf(what, sizeof what, "map: line %" PRIu64, m->acked + 1);
		ctl_err_reply(what, msg->text);
		return (-1);
	case JOBPOOL_MSG_RESULT:
		if (map_ident_take(m, msg->id, &seq) != 0)
			return (map_early_add(m, msg));
		status = msg->status_name != NULL ? msg->status_name : "unknown";
		return (map_result(m, seq, msg->id, status,
		    msg->status == JOBPOOL_JOB_OK, msg->data, msg->len));
	case JOBPOOL_MSG_DATA:
		break;
	}
	ctl_warnx("map: unexpected message from jobpoold");
	return (-1);
}

/* The next whole input line, or the unterminated last one at EOF: 1, or 0 if none. */
static int
map_next_line(struct map *m, const char **line, size_t *len)
{
	char	*nl;

	nl = memchr(m->in + m->in_scan, '\n', m->in_end - m->in_scan);
	if (nl != NULL) {
		*line = m->in + m->in_start;
		*len = (size_t)(nl - *line);
		m->in_start = m->in_scan = (size_t)(nl - m->in) + 1;
		return (1);
	}
	m->in_scan = m->in_end;
	if (m->in_eof && m->in_start < m->in_end) {
		*line = m->in + m->in_start;
		*len = m->in_end - m->in_start;
		m->in_start = m->in_scan = m->in_end;
		return (1);
	}
	return (0);
}

/* Read more of stdin into the input buffer. 0, or -1 on error. */
static int
map_read(struct map *m)
{
	size_t	 keep, ncap;
	ssize_t	 n;
	char	*nin;

	if (m->in_start != 0) {
		keep = m->in_end - m->in_start;
		memmove(m->in, m->in + m->in_start, keep);
		m->in_scan -= m->in_start;
		m->in_end = keep;
		m->in_start = 0;
	}
	if (m->in_end == m->in_cap) {
		ncap = m->in_cap * 2;
		if (ncap > MAP_LINE_MAX) {
			ctl_warnx("map: line %" PRIu64 " is longer than %zu bytes",
			    m->submitted + 1, MAP_LINE_MAX);
			return (-1);
		}
		if ((nin = realloc(m->in, ncap)) == NULL) {
			ctl_warnx("map: %s", strerror(errno));
			return (-1);
		}
		m->in = nin;
		m->in_cap = ncap;
	}
	for (;;) {
		n = read(STDIN_FILENO, m->in + m->in_end, m->in_cap - m->in_end);
		if (n >= 0)
			break;
		if (errno != EINTR) {
			ctl_warnx("map: read stdin: %s", strerror(errno));
			return (-1);
		}
	}
	if (n == 0)
		m->in_eof = 1;
	m->in_end += (size_t)n;
	return (0);
}

/* Jobs that count against the window. */
static uint64_t
map_inflight(const struct map *m)
{
	/* With -k a finished job holds its ring slot until it is written. */
	return (m->submitted - (m->keep ? m->written : m->finished));
}

/* Submit as many input lines as the window allows. The count sent, or -1. */
static int
map_submit(struct map *m)
{
	const char	*line;
	size_t		 len;
	int		 rc, sent = 0;

	/*
	 * Once the window fills, wait until a quarter of it is free again, so requests
	 * go out in batches and not one write per finished job.
	 */
	if (m->paused && map_inflight(m) <= m->resume)
		m->paused = 0;
	while (!m->paused) {
		if (map_inflight(m) >= m->window) {
			m->paused = 1;
			break;
		}
		if (!map_next_line(m, &line, &len))
			break;
		rc = jobpool_send_submit_key(m->jp, &m->opts, m->key, line, len);
		if (rc != JOBPOOL_OK) {
			ctl_jperr(m->jp, "map: submit", rc);
			return (-1);
		}
		m->submitted++;
		sent++;
		if (jobpool_pending(m->jp) >= MAP_FLUSH_AT) {
			rc = jobpool_flush(m->jp, 0);
			if (rc != JOBPOOL_OK && rc != JOBPOOL_EAGAIN) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
			/* Let the daemon's backpressure reach us rather than buffer without end. */
			if (jobpool_pending(m->jp) >= 16 * MAP_FLUSH_AT &&
			    (rc = jobpool_flush(m->jp, -1)) != JOBPOOL_OK) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
		}
	}
	return (sent);
}

/* Wait until stdin or the daemon has something for us. 0, or -1 on error. */
static int
map_block(struct map *m)
{
	struct jobpool_msg	 msg;
	struct pollfd		 pfd[2];
	int			 rc, want_input;

	if (ctl_flush_stdout() != 0)
		return (-1);
	map_progress(m, 0);

	want_input = !m->in_eof && !m->paused && map_inflight(m) < m->window;
	if (!want_input) {
		rc = jobpool_next(m->jp, &msg, -1);
		if (rc != JOBPOOL_OK) {
			ctl_jperr(m->jp, "map", rc);
			return (-1);
		}
		return (map_handle(m, &msg));
	}
	if (map_inflight(m) == 0 && jobpool_pending(m->jp) == 0)
		return (map_read(m));

	/*
	 * jobpool_flush() may have read replies into the library's buffer since the
	 * last drain; poll() would not wake for those, so take one first.
	 */
	rc = jobpool_next(m->jp, &msg, 0);
	if (rc == JOBPOOL_OK)
		return (map_handle(m, &msg));
	if (rc != JOBPOOL_EAGAIN) {
		ctl_jperr(m->jp, "map", rc);
		return (-1);
	}

	pfd[0].fd = STDIN_FILENO;
	pfd[0].events = POLLIN;
	pfd[1].fd = jobpool_fd(m->jp);
	pfd[1].events = POLLIN;
	if (jobpool_pending(m->jp) != 0)
		pfd[1].events |= POLLOUT;
	for (;;) {
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) != -1)
			break;
		if (errno != EINTR) {
			ctl_warnx("map: poll: %s", strerror(errno));
			return (-1);
		}
	}
	/* The daemon's side is serviced by the caller's next round. */
	if (pfd[0].revents != 0)
		return (map_read(m));
	return (0);
}

/* The map loop: until input is used up and every job has finished. 0 or -1. */
static int
map_run(struct map *m)
{
	struct jobpool_msg	 msg;
	int			 rc, got, sent;

	for (;;) {
		got = 0;
		while ((rc = jobpool_next(m->jp, &msg, 0)) == JOBPOOL_OK) {
			if (map_handle(m, &msg) != 0)
				return (-1);
			got++;
		}
		if (rc != JOBPOOL_EAGAIN) {
			ctl_jperr(m->jp, "map", rc);
			return (-1);
		}

		if ((sent = map_submit(m)) < 0)
			return (-1);
		if (jobpool_pending(m->jp) != 0) {
			rc = jobpool_flush(m->jp, 0);
			if (rc != JOBPOOL_OK && rc != JOBPOOL_EAGAIN) {
				ctl_jperr(m->jp, "map", rc);
				return (-1);
			}
		}

		if (m->in_eof && m->in_start == m->in_end &&
		    m->finished == m->submitted)
			return (0);
		map_progress(m, 0);
		if (got == 0 && sent == 0 && map_block(m) != 0)
			return (-1);
	}
}

/* Free what a struct map owns (not its connection: ctl_run() closes that). */
static void
map_free(struct map *m)
{
	struct map_early	*e;
	uint64_t		 i;

	free(m->in);
	free(m->ids);
	if (m->ring != NULL) {
		for (i = 0; i < m->window; i++)
			free(m->ring[i].buf);
		free(m->ring);
	}
	while ((e = m->early) != NULL) {
		m->early = e->next;
		free(e->data);
		free(e);
	}
}

/* map: a job for every line of stdin, results to stdout. */
static int
map_exec(struct ctl_run *r)
{
	static char	 outbuf[MAP_OUTBUF];
	struct map	 m;
	size_t		 size;
	int		 ret = EXIT_DAEMON;

	memset(&m, 0, sizeof m);
	m.jp = r->jp;
	m.opts = r->opts;
	m.key = r->key;
	m.opts.flags = JOBPOOL_WAIT;
	m.keep = r->keep;
	m.window = r->window != 0 ? r->window : MAP_WINDOW_DEFAULT;
	m.resume = m.window - (m.window / 4 > 0 ? m.window / 4 : 1);
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

	/* An id table at most half full. */
	for (size = 16, m.ids_shift = 60; size < 2 * m.window; size *= 2)
		m.ids_shift--;
	m.ids_mask = size - 1;
	m.in_cap = MAP_INBUF;
	m.ids = calloc(size, sizeof *m.ids);
	m.in = malloc(m.in_cap);
	if (m.keep)
		m.ring = calloc(m.window, sizeof *m.ring);
	if (m.ids == NULL || m.in == NULL || (m.keep && m.ring == NULL)) {
		ctl_warnx("map: %s", strerror(errno));
		goto out;
	}
	if (isatty(STDERR_FILENO)) {
		m.progress = 1;
		clock_gettime(CLOCK_MONOTONIC, &m.progress_at);
	}

	if (map_run(&m) != 0)
		goto out;
	ret = m.failed != 0 ? EXIT_JOBFAIL : 0;

out:
	map_free(&m);
	return (ret);
}
