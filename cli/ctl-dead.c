/*
 * ctl-dead.c: the dead jobs (out of attempts): jobpoolctl dead lists them, jobpoolctl
 * retry queues them again with fresh attempts.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int	dead_exec(struct ctl_run *);
static int	retry_check(struct ctl_run *);
static int	retry_exec(struct ctl_run *);

const struct ctl_cmd ctl_dead_cmd = {
	.name = "dead",
	.usage = { "[-q queue]" },
	.help = "list the dead jobs (out of attempts) and their errors",
	.options = CTL_O_QUEUE,
	.maxargs = 0,
	.flags = CTL_CONNECT,
	.exec = dead_exec,
};

const struct ctl_cmd ctl_retry_cmd = {
	.name = "retry",
	.usage = { "id ...", "--all [-q queue]" },
	.help = "queue dead jobs again with fresh attempts",
	.options = CTL_O_ALL | CTL_O_QUEUE,
	.maxargs = -1,
	.flags = CTL_CONNECT,
	.check = retry_check,
	.exec = retry_exec,
};

/* dead [-q queue]: the dead jobs, oldest first, with their last error. */
static int
dead_exec(struct ctl_run *r)
{
	static const struct table_col cols[] = {
		{ "ID", NULL, 1 },
		{ "QUEUE", "queue", 0 },
		{ "ATTEMPTS", "attempts", 1 },
		{ "STATUS", "status", 0 },
		{ "AGE_S", "age", 1 },
		{ "ERROR", "error", 0 },
	};
	struct jobpool_msg	 msg;
	struct stats_rec	*recs;
	const char		*queue = r->opts.queue;
	char			 line[128], *text;
	size_t			 n;
	int			 ret;

	snprintf(line, sizeof line, "DEAD%s%s", queue != NULL ? " " : "",
	    queue != NULL ? queue : "");
	if ((ret = ctl_request(r->jp, line, "dead", &msg)) != 0)
		return (ret);
	if ((ret = stats_reply(&msg, "dead", &text, &recs, &n)) != 0)
		return (ret);
	if (ctl_json) {
		stats_json_array(recs, n, "dead", "id");
		putchar('\n');
	} else if (n > 0)
		table_print(cols, sizeof cols / sizeof cols[0], recs, n, "dead");
	stats_free(recs, n);
	free(text);
	return (0);
}

/* retry: job ids, or --all with perhaps a queue. */
static int
retry_check(struct ctl_run *r)
{
	if (r->all && r->argc > 0) {
		ctl_warnx("retry: give job ids or --all, not both");
		return (ctl_usage_error(r));
	}
	if (!r->all && r->opts.queue != NULL) {
		ctl_warnx("retry: -q goes with --all");
		return (ctl_usage_error(r));
	}
	return (r->all ? 0 : ctl_check_ids(r));
}

/* retry ID... | retry --all [-q queue]: queue dead jobs again. */
static int
retry_exec(struct ctl_run *r)
{
	struct jobpool_msg	 msg;
	const char		*queue = r->opts.queue;
	char			 line[128];
	int			 ret;

	if (!r->all)
		return (ctl_per_id(r->jp, "retry", r->ids, r->argc));
	snprintf(line, sizeof line, "RETRY all%s%s", queue != NULL ? " " : "",
	    queue != NULL ? queue : "");
	if ((ret = ctl_request(r->jp, line, "retry", &msg)) == 0) {
		if (ctl_json)
			printf("{\"retried\":%s}\n", msg.text);
		else
			printf("%s dead job%s queued again\n", msg.text,
			    strcmp(msg.text, "1") == 0 ? "" : "s");
	}
	return (ret);
}
