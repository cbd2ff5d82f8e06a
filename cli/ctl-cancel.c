/*
 * ctl-cancel.c: jobpoolctl cancel. Waiting jobs end at once; running ones are asked to
 * stop (their cleanup hooks run), then stopped by force (the daemon's grace).
 */

#include "autoconf.h"

#include "ctl.h"

static int	cancel_exec(struct ctl_run *);

const struct ctl_cmd ctl_cancel_cmd = {
	.name = "cancel",
	.usage = { "id ..." },
	.help = "cancel jobs: queued ones at once, running ones cooperatively "
	    "(cleanup hooks run), then by force",
	.maxargs = -1,
	.flags = CTL_CONNECT | CTL_IDS,
	.exec = cancel_exec,
};

/* cancel ID...: cancel jobs, waiting ones at once, running ones cooperatively. */
static int
cancel_exec(struct ctl_run *r)
{
	return (ctl_per_id(r->jp, "cancel", r->ids, r->argc));
}
