/*
 * ctl-reload.c: jobpoolctl reload, the daemon rereads its configuration file.
 */

#include "autoconf.h"

#include <stdio.h>

#include "ctl.h"

static int	reload_exec(struct ctl_run *);

const struct ctl_cmd ctl_reload_cmd = {
	.name = "reload",
	.help = "reload the daemon's configuration file",
	.maxargs = 0,
	.flags = CTL_CONNECT,
	.exec = reload_exec,
};

/* reload: send RELOAD; print that the daemon did it. */
static int
reload_exec(struct ctl_run *r)
{
	struct jobpool_msg	 msg;
	int			 ret;

	if ((ret = ctl_request(r->jp, "RELOAD", "reload", &msg)) == 0)
		puts(ctl_json ? "{\"reload\":\"ok\"}" : "reloaded");
	return (ret);
}
