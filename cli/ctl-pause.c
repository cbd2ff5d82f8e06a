/*
 * ctl-pause.c: jobpoolctl pause and resume, an administrator holds a queue's dispatch
 * (it still takes jobs, up to its limits) and lets it go again.
 */

#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "proto.h"

static int	pause_check(struct ctl_run *);
static int	pause_exec(struct ctl_run *);

const struct ctl_cmd ctl_pause_cmd = {
	.name = "pause",
	.usage = { "queue ..." },
	.help = "stop starting the queues' jobs (they still take jobs; administrators)",
	.maxargs = -1,
	.flags = CTL_CONNECT,
	.check = pause_check,
	.exec = pause_exec,
};

const struct ctl_cmd ctl_resume_cmd = {
	.name = "resume",
	.usage = { "queue ..." },
	.help = "start the paused queues' jobs again (administrators)",
	.maxargs = -1,
	.flags = CTL_CONNECT,
	.check = pause_check,
	.exec = pause_exec,
};

/* At least one queue, each a name the daemon could have (before connecting). */
static int
pause_check(struct ctl_run *r)
{
	int	i;

	if (r->argc == 0) {
		ctl_warnx("%s: which queue?", r->cmd->name);
		return (ctl_usage_error(r));
	}
	for (i = 0; i < r->argc; i++) {
		if (!proto_valid_name(r->argv[i], strlen(r->argv[i]))) {
			ctl_warnx("%s: bad queue name '%s': use 1 to %d of A-Z a-z 0-9 "
			    "_ . -", r->cmd->name, r->argv[i], PROTO_MAX_NAME);
			return (ctl_usage_error(r));
		}
	}
	return (0);
}

/*
 * PAUSE or RESUME each queue, saying what became of it. An ERR for one queue (no such
 * queue) is reported and the others are still tried; "denied" ends it.
 */
static int
pause_exec(struct ctl_run *r)
{
	struct jobpool_msg	 msg;
	const char		*verb = r->cmd == &ctl_pause_cmd ? "PAUSE" : "RESUME";
	char			 line[16 + PROTO_MAX_NAME], what[16 + PROTO_MAX_NAME];
	int			 i, rc, ret = 0;

	for (i = 0; i < r->argc; i++) {
		snprintf(line, sizeof line, "%s %s", verb, r->argv[i]);
		snprintf(what, sizeof what, "%s %s", r->cmd->name, r->argv[i]);
		if ((rc = ctl_request(r->jp, line, what, &msg)) != 0) {
			ret = rc;
			if (msg.type != JOBPOOL_MSG_ERR ||
			    strncmp(msg.text, "noqueue ", 8) != 0)
				break;
			continue;
		}
		/* OK paused | OK resumed */
		if (ctl_json)
			printf("{\"queue\":\"%s\",\"paused\":%s}\n", r->argv[i],
			    r->cmd == &ctl_pause_cmd ? "true" : "false");
		else
			printf("%s %s\n", msg.text, r->argv[i]);
	}
	return (ret);
}
