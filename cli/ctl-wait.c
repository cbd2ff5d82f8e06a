/*
 * ctl-wait.c: jobpoolctl wait, the results of jobs already submitted.
 */

#include "autoconf.h"

#include <sys/types.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int	wait_exec(struct ctl_run *);

const struct ctl_cmd ctl_wait_cmd = {
	.name = "wait",
	.usage = { "[-r] id ..." },
	.help = "wait for jobs and print their results",
	.options = CTL_O_RAW,
	.maxargs = -1,
	.flags = CTL_CONNECT | CTL_IDS,
	.exec = wait_exec,
};

/* wait ID...: wait for each job and print its result. */
static int
wait_exec(struct ctl_run *r)
{
	struct jobpool_result	 res;
	char			 what[64];
	int			 i, rc, ret = 0;

	for (i = 0; i < r->argc; i++) {
		snprintf(what, sizeof what, "wait %" PRIu64, r->ids[i]);
		memset(&res, 0, sizeof res);
		rc = jobpool_wait(r->jp, r->ids[i], -1, &res);
		if (rc == JOBPOOL_ESERVER) {
			/* notfound and the like: say so, and go on with the others. */
			ctl_jperr(r->jp, what, rc);
			ret = EXIT_DAEMON;
			continue;
		}
		if (rc != JOBPOOL_OK) {
			ctl_jperr(r->jp, what, rc);
			ret = EXIT_DAEMON;
			break;
		}
		ctl_print_result(r, r->ids[i], &res);
		if (res.status != JOBPOOL_JOB_OK) {
			/* The results before this one should appear before its complaint. */
			fflush(stdout);
			ctl_job_failed(0, r->ids[i], res.status_name, res.data, res.len);
			if (ret == 0)
				ret = EXIT_JOBFAIL;
		}
		jobpool_result_free(&res);
	}
	return (ret);
}
