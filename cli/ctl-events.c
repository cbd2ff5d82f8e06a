/*
 * ctl-events.c: jobpoolctl events, the daemon's event stream (EVENTS).
 *
 * Without -f it prints the events the daemon's ring holds (or those after --since)
 * and exits at the END the daemon sends (until=now). With -f it follows the stream
 * and, when the connection is lost (the daemon stopped or restarted), connects again
 * every half second and resumes after the last event it printed, with the epoch it
 * had: the daemon then reports what was lost as a gap (reason=restart), so a restart
 * is never silent. Lines are printed as the daemon sends them without the EVENT word;
 * with --json, one JSON object per event (error= and reason= decoded).
 */

#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define EVENTS_RETRY_MS	500

static int	events_check(struct ctl_run *);
static int	events_exec(struct ctl_run *);

const struct ctl_cmd ctl_events_cmd = {
	.name = "events",
	.usage = { "[-f] [-q queue] [--type glob] [--since seq|now]", NULL },
	.help = "print the daemon's events (-f: follow them, across restarts)",
	.options = CTL_O_QUEUE | CTL_O_TYPE | CTL_O_SINCE | CTL_O_FOLLOW,
	.maxargs = 0,
	.check = events_check,
	.exec = events_exec,
};

/* Where the stream is: resumed from after seq of epoch. */
struct events_pos {
	uint64_t	 epoch;		/* 0: none heard yet */
	uint64_t	 seq;
	int		 have;		/* seq is a resume point */
};

/* --since: a sequence number or "now". */
static int
events_check(struct ctl_run *r)
{
	uint64_t	seq;

	if (r->since != NULL && strcmp(r->since, "now") != 0 &&
	    ctl_parse_id(r->since, &seq) != 0 && strcmp(r->since, "0") != 0) {
		ctl_warnx("events: bad --since '%s' (a sequence number or 'now')",
		    r->since);
		return (ctl_usage_error(r));
	}
	return (0);
}

/* The value of key= in an EVENT or OK line, as a number; 0 if absent. */
static uint64_t
events_word(const char *line, const char *key)
{
	const char	*p = line;
	size_t		 n = strlen(key);

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[n] == '=')
			return (strtoull(p + n + 1, NULL, 10));
		p += n;
	}
	return (0);
}

/* A percent-encoded text, decoded in place: its length. */
static size_t
events_decode(char *s)
{
	char	*start = s, *d = s, hex[3] = "";

	for (; *s != '\0'; s++) {
		if (s[0] == '%' && s[1] != '\0' && s[2] != '\0') {
			hex[0] = s[1];
			hex[1] = s[2];
			*d++ = (char)strtoul(hex, NULL, 16);
			s += 2;
		} else
			*d++ = *s;
	}
	*d = '\0';
	return ((size_t)(d - start));
}

/* One event (the line after "EVENT ") as a JSON object. */
static void
events_json(char *line, uint64_t epoch)
{
	char	*w, *eq, *text = NULL;
	int	 first = 1;

	/* error= and reason= run to the end of the line. */
	if ((w = strstr(line, " error=")) != NULL || (w = strstr(line, " reason=")) != NULL) {
		*w++ = '\0';
		text = w;
	}
	putchar('{');
	if (epoch != 0) {
		printf("\"epoch\":%llu", (unsigned long long)epoch);
		first = 0;
	}
	while ((w = ctl_token(&line)) != NULL) {
		if ((eq = strchr(w, '=')) == NULL)
			continue;
		*eq = '\0';
		json_member(stdout, first, w, eq + 1);
		first = 0;
	}
	if (text != NULL && (eq = strchr(text, '=')) != NULL) {
		*eq++ = '\0';
		if (!first)
			putchar(',');
		json_cstring(stdout, text);
		putchar(':');
		json_string(stdout, eq, events_decode(eq));
	}
	puts("}");
}

/* Print one line of the stream; 1 at its END, -1 on an error reply, else 0. */
static int
events_line(char *line, struct events_pos *pos, int follow)
{
	uint64_t	v;

	if (strncmp(line, "OK events ", 10) == 0) {
		v = events_word(line, "epoch");
		/* A new epoch: the stream is that daemon's from now on. */
		if (pos->epoch != v || !pos->have) {
			pos->epoch = v;
			if (!pos->have) {
				pos->seq = events_word(line, "seq");
				pos->have = follow;
			}
		}
		return (0);
	}
	if (strncmp(line, "END", 3) == 0)
		return (1);
	if (strncmp(line, "ERR ", 4) == 0) {
		ctl_err_reply("events", line + 4);
		return (-1);
	}
	if (strncmp(line, "EVENT ", 6) != 0)
		return (0);	/* later versions may send more: ignored */
	line += 6;
	if ((v = events_word(line, "seq")) != 0)
		pos->seq = v;
	else if ((v = events_word(line, "last")) != 0)
		pos->seq = v;
	pos->have = 1;
	if (ctl_json)
		events_json(line, pos->epoch);
	else
		puts(line);
	if (follow)
		fflush(stdout);
	return (0);
}

/* The EVENTS request for r at pos. */
static void
events_request(struct ctl_run *r, const struct events_pos *pos, char *buf, size_t len)
{
	int	n;

	if (pos->have && pos->epoch != 0)
		n = snprintf(buf, len, "EVENTS since=%llu epoch=%llu",
		    (unsigned long long)pos->seq, (unsigned long long)pos->epoch);
	else if (r->since != NULL)
		n = snprintf(buf, len, "EVENTS since=%s", r->since);
	else
		n = snprintf(buf, len, "EVENTS since=%s", r->follow ? "now" : "all");
	if (r->opts.queue != NULL)
		n += snprintf(buf + n, len - (size_t)n, " queue=%s", r->opts.queue);
	if (r->type != NULL)
		n += snprintf(buf + n, len - (size_t)n, " type=%s", r->type);
	if (!r->follow)
		n += snprintf(buf + n, len - (size_t)n, " until=now");
	snprintf(buf + n, len - (size_t)n, "\n");
}

/*
 * One connection's stream: 0 at its END (or, following, when it was lost: connect
 * again), or an exit status.
 */
static int
events_stream(struct ctl_run *r, struct jobpool *jp, struct events_pos *pos)
{
	FILE	*f;
	char	 req[1024], *line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 fd, rc = 0, got;

	events_request(r, pos, req, sizeof req);
	/* The connection is non-blocking for libjobpool's poll loop; a stream blocks. */
	if ((fd = dup(jobpool_fd(jp))) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1 ||
	    (f = fdopen(fd, "r+")) == NULL) {
		ctl_warnx("events: %s", strerror(errno));
		return (EXIT_DAEMON);
	}
	if (fputs(req, f) == EOF || fflush(f) == EOF) {
		fclose(f);
		if (r->follow)
			return (0);
		ctl_warnx("events: cannot send the request: %s", strerror(errno));
		return (EXIT_DAEMON);
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if ((got = events_line(line, pos, r->follow)) == 1)
			break;
		if (got == -1) {
			rc = EXIT_DAEMON;
			break;
		}
	}
	if (n <= 0 && !r->follow) {
		ctl_warnx("events: the daemon closed the connection before the end");
		rc = EXIT_DAEMON;
	}
	free(line);
	fclose(f);
	return (rc);
}

/* A connection; quietly (no message) while following a daemon that is away. */
static struct jobpool *
events_connect(int quiet)
{
	const char	*path = ctl_socket;
	char		 buf[4096];

	if (!quiet)
		return (ctl_connect());
	if (path == NULL && (path = jobpool_default_socket(buf, sizeof buf)) == NULL)
		return (NULL);
	return (jobpool_connect(path));
}

/* events: one stream, or with -f, streams for as long as it runs. */
static int
events_exec(struct ctl_run *r)
{
	struct events_pos	 pos = { 0, 0, 0 };
	struct jobpool		*jp;
	struct timespec		 ts = { 0, EVENTS_RETRY_MS * 1000000L };
	int			 rc, away = 0;

	for (;;) {
		if ((jp = events_connect(away)) == NULL) {
			if (!r->follow)
				return (EXIT_DAEMON);
			away = 1;
		} else {
			if (away)
				ctl_warnx("events: connected again");
			away = 0;
			rc = events_stream(r, jp, &pos);
			jobpool_close(jp);
			if (!r->follow || rc != 0)
				return (rc);
			ctl_warnx("events: the connection was lost; connecting again");
			away = 1;
		}
		nanosleep(&ts, NULL);
	}
}
