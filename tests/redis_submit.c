/*
 * redis_submit.c: jobpool_redis_submit() from the command line, for it_redis.sh: a
 * producer linked with libjobpool alone, no daemon at hand.
 *   redis_submit URL STREAM PAYLOAD WAIT_MS
 * prints "entry <id>" and, when it waited, "<end> <output or why>"; on a failure
 * "error <code>: <jobpool_error(NULL)>" and exits 1.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobpool.h"

int
main(int argc, char **argv)
{
	struct jobpool_redis_result	 res;
	int				 rc;

	if (argc != 5) {
		fprintf(stderr, "usage: redis_submit URL STREAM PAYLOAD WAIT_MS\n");
		return (2);
	}
	rc = jobpool_redis_submit(argv[1], argv[2], argv[3], strlen(argv[3]),
	    atoi(argv[4]), &res);
	if (rc != JOBPOOL_OK) {
		printf("error %d: %s\n", rc, jobpool_error(NULL));
		if (res.entry[0] != '\0')
			printf("entry %s\n", res.entry);
		jobpool_redis_result_free(&res);
		return (1);
	}
	printf("entry %s\n", res.entry);
	if (res.end[0] != '\0')
		printf("%s %s\n", res.end, (const char *)res.data);
	jobpool_redis_result_free(&res);
	return (0);
}
