/*
 * ctl-ping.c: jobpoolctl ping, whether the daemon answers.
 */

#include "autoconf.h"

#include <stdio.h>

#include "ctl.h"

static int	ping_exec(struct ctl_run *);

const struct ctl_cmd ctl_ping_cmd = {
	.name = "ping",
	.help = "check that the daemon answers",
	.maxargs = 0,
	.flags = CTL_CONNECT,
	.exec = ping_exec,
};

/* ping: PING, and pong back. */
static int
ping_exec(struct ctl_run *r)
{
	int	rc;

	if ((rc = jobpool_ping(r->jp)) != JOBPOOL_OK) {
		ctl_jperr(r->jp, "ping", rc);
		return (EXIT_DAEMON);
	}
	puts(ctl_json ? "{\"ping\":\"pong\"}" : "pong");
	return (0);
}
