/*
 * ctl-submit.c: jobpoolctl submit, one job from an argument or stdin.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static int	submit_check(struct ctl_run *);
static int	submit_exec(struct ctl_run *);

const struct ctl_cmd ctl_submit_cmd = {
	.name = "submit",
	.usage = { "[-w [-r]] [-n] [-q queue] [-p prio] [--delay s] [--timeout s] "
	    "[--key NAME] [--idem token] [data | -]",
	    "--redis URL --stream S [-w [-r]] [data | -]" },
	.help = "submit one job; print its id, or with -w its result "
	    "(-r, --raw: the bytes only, no newline added); --idem: a resend with the "
	    "token gets the first job (its id, its result); with --redis, add it to a "
	    "Redis stream that jobpoold queues read, and print its entry id",
	.options = CTL_O_WAIT | CTL_O_RAW | CTL_O_NONBLOCK | CTL_O_QUEUE | CTL_O_PRIO |
	    CTL_O_DELAY | CTL_O_TIMEOUT | CTL_O_REDIS | CTL_O_KEY | CTL_O_IDEM,
	.maxargs = 1,
	.toomany = "quote the data, or use - for stdin",
	.flags = CTL_CONNECT,
	.check = submit_check,
	.exec = submit_exec,
};

/* The data to submit: the operand, or stdin read in whole (r->data). */
static const char	*submit_data;
static size_t		 submit_len;

/* Read all of fd into a malloc'd buffer. 0 ok, -1 with errno. */
static int
submit_read_all(int fd, char **out, size_t *outlen)
{
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;

	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			if ((nbuf = realloc(buf, cap)) == NULL)
				goto fail;
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return (0);

fail:
	free(buf);
	return (-1);
}

/* Take the data before connecting: a slow stdin must not hold a connection open. */
static int
submit_check(struct ctl_run *r)
{
	char	*input = NULL;

	if (r->redis != NULL && r->key != NULL) {
		ctl_warnx("submit: --key is for the daemon's queues, not --redis");
		return (EXIT_USAGE);
	}
	if (r->idem != NULL && r->redis != NULL) {
		ctl_warnx("submit: --idem is the daemon's; a Redis stream has no tokens "
		    "(leave out --idem or --redis)");
		return (EXIT_USAGE);
	}
	if (r->argc == 1 && strcmp(r->argv[0], "-") != 0) {
		submit_data = r->argv[0];
		submit_len = strlen(submit_data);
		return (0);
	}
	if (submit_read_all(STDIN_FILENO, &input, &submit_len) != 0) {
		ctl_warnx("submit: read stdin: %s", strerror(errno));
		return (EXIT_DAEMON);
	}
	r->data = input;
	submit_data = input != NULL ? input : "";
	return (0);
}

/* submit: submit one job, print its id, or with -w wait and print its result. */
static int
submit_exec(struct ctl_run *r)
{
	struct jobpool_result	 res;
	uint64_t		 id;
	int			 rc, ret, dup;

	if (r->redis != NULL)
		return (ctl_redis_submit(r, submit_data, submit_len));
	if (r->wait)
		r->opts.flags |= JOBPOOL_WAIT;
	if ((rc = jobpool_submit_idem(r->jp, &r->opts, r->key, r->idem, submit_data,
	    submit_len, &id, &dup)) != JOBPOOL_OK) {
		ctl_jperr(r->jp, "submit", rc);
		return (EXIT_DAEMON);
	}
	if (!r->wait) {
		if (ctl_json)
			printf("{\"id\":%" PRIu64 "%s}\n", id, dup ? ",\"dup\":true" : "");
		else
			printf("%" PRIu64 "\n", id);
		return (0);
	}
	memset(&res, 0, sizeof res);
	if ((rc = jobpool_wait(r->jp, id, -1, &res)) != JOBPOOL_OK) {
		ctl_jperr(r->jp, "submit: wait", rc);
		return (EXIT_DAEMON);
	}
	ctl_print_result(r, id, &res);
	if (res.status == JOBPOOL_JOB_OK)
		ret = 0;
	else {
		ctl_job_failed(0, id, res.status_name, res.data, res.len);
		ret = EXIT_JOBFAIL;
	}
	jobpool_result_free(&res);
	return (ret);
}
