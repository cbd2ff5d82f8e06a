/*
 * jpfill.c: W4's producer. Submits jobs without waiting for results, pipelined, as fast
 * as the daemon takes them (its backpressure holds us back when the queue is full).
 * Payload: BYTES bytes, the text TEXT (default "0") padded with spaces.
 *
 *   jpfill [-s SOCKET] [-q QUEUE] [-n JOBS (0: until killed)] [-t TEXT] [-b BYTES]
 * Prints: submitted=N seconds=S
 */
#include <signal.h>

#include "benchutil.h"
#include "jobpool.h"

int
main(int argc, char **argv)
{
	struct jobpool_submit_opts	 o = { "default", 0, 0, 0, 0 };
	struct jobpool			*jp;
	struct jobpool_msg		 m;
	const char			*sock = NULL, *text = "0";
	unsigned long			 n = 1000000, bytes = 64, sent = 0, acked = 0;
	unsigned long			 window = 8192;
	char				*payload;
	double				 t0;
	int				 ch, r;

	while ((ch = getopt(argc, argv, "s:q:n:t:b:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'q': o.queue = optarg; break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 't': text = optarg; break;
		case 'b': bytes = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: jpfill [-s SOCKET] [-q QUEUE] [-n JOBS] "
			    "[-t TEXT] [-b BYTES]\n");
			return (64);
		}
	}
	payload = xmalloc(bytes);
	memset(payload, ' ', bytes);
	memcpy(payload, text, strlen(text) < bytes ? strlen(text) : bytes);
	if ((jp = jobpool_connect(sock)) == NULL)
		die("jpfill: connect");
	t0 = now_s();
	while (n == 0 || acked < n) {
		while ((n == 0 || sent < n) && sent - acked < window) {
			if (jobpool_send_submit(jp, &o, payload, bytes) != 0) {
				fprintf(stderr, "jpfill: %s\n", jobpool_error(jp));
				return (3);
			}
			sent++;
		}
		r = jobpool_next(jp, &m, -1);
		while (r == 0) {
			if (m.type != JOBPOOL_MSG_OK) {
				fprintf(stderr, "jpfill: %s\n", m.text ? m.text : "?");
				return (3);
			}
			acked++;
			r = jobpool_next(jp, &m, 0);
		}
		if (r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jpfill: %s\n", jobpool_error(jp));
			return (3);
		}
	}
	printf("submitted=%lu seconds=%.3f\n", acked, now_s() - t0);
	fflush(stdout);
	jobpool_close(jp);
	free(payload);
	return (0);
}
