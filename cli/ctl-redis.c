/*
 * ctl-redis.c: jobpoolctl submit --redis URL --stream S: one job added to a Redis stream
 * that jobpoold queues read (jobpool.conf(5), REDIS STREAMS), without a local daemon;
 * with -w, its result, which the reading daemon writes with the source's result_ttl.
 * libjobpool's jobpool_redis_submit() does both; this prints.
 */

#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* submit --redis: print the entry id, or with -w the output (a job that failed: why). */
int
ctl_redis_submit(const struct ctl_run *r, const void *data, size_t len)
{
	struct jobpool_redis_result	 res;
	int				 rc, ret;

	if (r->stream == NULL) {
		ctl_warnx("submit: --redis needs --stream");
		return (ctl_usage_error(r));
	}
	rc = jobpool_redis_submit(r->redis, r->stream, data, len, r->wait ? -1 : 0, &res);
	if (rc != JOBPOOL_OK) {
		ctl_warnx("submit: %s", jobpool_error(NULL));
		jobpool_redis_result_free(&res);
		return (EXIT_DAEMON);
	}
	if (!r->wait) {
		if (ctl_json)
			printf("{\"entry\":\"%s\"}\n", res.entry);
		else
			printf("%s\n", res.entry);
		ret = 0;
	} else if (strcmp(res.end, "done") == 0) {
		fwrite(res.data, 1, res.len, stdout);
		if (!r->raw)
			putchar('\n');
		ret = 0;
	} else {
		ctl_warnx("entry %s %s: %s", res.entry, res.end, (char *)res.data);
		ret = EXIT_JOBFAIL;
	}
	jobpool_redis_result_free(&res);
	return (ret);
}
