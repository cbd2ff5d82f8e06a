/*
 * jpbench.c: W1 through libjobpool: submit N jobs of 64 printable bytes, pipelined
 * with at most WINDOW in flight, and wait for every result. Prints one line:
 *   jobs=N seconds=S jobs_per_s=R failed=F
 *
 *   jpbench [-s SOCKET] [-q QUEUE] [-n JOBS] [-j WINDOW] [-b BYTES]
 */

#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

int
main(int argc, char **argv)
{
	struct jobpool_submit_opts	 o = { "default", 0, 0, 0, JOBPOOL_WAIT };
	struct jobpool_msg		 m;
	struct jobpool			*jp;
	const char			*sock = NULL;
	unsigned long			 n = 200000, window = 4096, bytes = 64;
	unsigned long			 sent = 0, acked = 0, done = 0, failed = 0;
	char				*payload;
	double				 t0, t1;
	int				 ch, r;

	while ((ch = getopt(argc, argv, "s:q:n:j:b:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'q': o.queue = optarg; break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'j': window = strtoul(optarg, NULL, 10); break;
		case 'b': bytes = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: jpbench [-s SOCKET] [-q QUEUE] [-n JOBS] "
			    "[-j WINDOW] [-b BYTES]\n");
			return (64);
		}
	}
	if ((jp = jobpool_connect(sock)) == NULL) {
		perror("jpbench: connect");
		return (3);
	}
	if ((payload = malloc(bytes)) == NULL)
		return (1);
	t0 = now_s();
	while (done < n) {
		while (sent < n && sent - done < window) {
			/* Payload of job i: printable, distinct per job. */
			memset(payload, 'a' + sent % 26, bytes);
			snprintf(payload, bytes, "%lu", sent);
			payload[strlen(payload)] = ' ';
			if (jobpool_send_submit(jp, &o, payload, bytes) != 0) {
				fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
				return (3);
			}
			sent++;
		}
		r = jobpool_flush(jp, 0);
		if (r != 0 && r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
			return (3);
		}
		/* Block for one message, then take whatever else has arrived. */
		r = jobpool_next(jp, &m, -1);
		while (r == 0) {
			if (m.type == JOBPOOL_MSG_RESULT) {
				done++;
				if (m.status != JOBPOOL_JOB_OK)
					failed++;
			} else if (m.type == JOBPOOL_MSG_OK)
				acked++;
			else {
				fprintf(stderr, "jpbench: %s\n", m.text);
				return (3);
			}
			r = jobpool_next(jp, &m, 0);
		}
		if (r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
			return (3);
		}
	}
	t1 = now_s();
	printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=%lu\n", n, t1 - t0,
	    n / (t1 - t0), failed);
	jobpool_close(jp);
	free(payload);
	return (failed ? 1 : 0);
}
