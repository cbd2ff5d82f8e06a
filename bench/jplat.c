/*
 * jplat.c: W3, open-loop latency through libjobpool's pipelined API.
 *
 * Job i is scheduled at t0 + i/RATE on CLOCK_MONOTONIC and sent as soon as the clock
 * passes that time (any jobs that fell due while the client was busy go out together).
 * Each job is measured to the time its RESULT was read, from two starts:
 *   - the moment its SUBMIT was in the socket (the flush that wrote it returned): the
 *     submit-to-result latency, send_p50_us ...;
 *   - its *scheduled* time: p50_us ..., coordinated-omission-aware (a stall anywhere,
 *     this client's included, is charged to the jobs that should have gone out during
 *     it). The difference, lag_p50_us and lag_p99_us, is how late the client sent.
 * Results are matched by id (the OK replies come in request order, and OK <id> always
 * precedes RESULT <id>). BENCH_SPIN_US: see benchutil.h's wait_due().
 *
 *   jplat [-s SOCKET] [-q QUEUE] -r RATE -d SECONDS [-w WARMUP_S] [-b BYTES]
 * Prints the summary line of benchutil.h's lat_log_print(); jobs sent during the
 * warm-up are not counted.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/prctl.h>

#include "benchutil.h"
#include "jobpool.h"

int
main(int argc, char **argv)
{
	struct jobpool_submit_opts	 o = { "default", 0, 0, 0, JOBPOOL_WAIT };
	struct jobpool			*jp;
	struct jobpool_msg		 m;
	const char			*sock = NULL;
	double				 rate = 5000, dur = 10, warm = 0.5;
	unsigned long			 bytes = 64, n, nwarm, sent = 0, acked = 0, done = 0;
	struct lat_log			 ll;
	uint64_t			 tlast = 0;
	uint64_t			 spin = bench_spin_ns();
	uint64_t			 first_id = 0, idcap;
	unsigned long			*idx_of;
	char				*payload;
	int				 ch, r;

	while ((ch = getopt(argc, argv, "s:q:r:d:w:b:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'q': o.queue = optarg; break;
		case 'r': rate = atof(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'w': warm = atof(optarg); break;
		case 'b': bytes = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: jplat [-s SOCKET] [-q QUEUE] -r RATE "
			    "-d SECONDS [-w WARMUP] [-b BYTES]\n");
			return (64);
		}
	}
	prctl(PR_SET_TIMERSLACK, 1UL);
	nwarm = (unsigned long)(rate * warm);
	n = nwarm + (unsigned long)(rate * dur);
	lat_log_init(&ll, n, nwarm, rate);
	/* id -> job index: ids from one daemon on one connection; a direct map of 2n slots. */
	idcap = 4 * (uint64_t)n + 1024;
	idx_of = xmalloc(idcap * sizeof *idx_of);
	payload = xmalloc(bytes);
	if ((jp = jobpool_connect(sock)) == NULL)
		die("jplat: connect");
	lat_log_start(&ll, now_ns() + 1000000);
	while (done < n) {
		uint64_t	now = now_ns();

		/* Send every job whose time has come. */
		while (sent < n) {
			uint64_t	ts = lat_due(&ll, sent);

			if (ts > now)
				break;
			ll.sched[sent] = ts;
			job_payload(payload, bytes, sent);
			if (jobpool_send_submit(jp, &o, payload, bytes) != 0) {
				fprintf(stderr, "jplat: %s\n", jobpool_error(jp));
				return (3);
			}
			sent++;
		}
		r = jobpool_flush(jp, 0);
		if (r != 0 && r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jplat: %s\n", jobpool_error(jp));
			return (3);
		}
		if (r == 0)
			lat_log_written(&ll, sent);
		while ((r = jobpool_next(jp, &m, 0)) == 0) {
			if (m.type == JOBPOOL_MSG_OK) {
				if (acked == 0)
					first_id = m.id;
				if (m.id - first_id < idcap)
					idx_of[m.id - first_id] = acked;
				acked++;
			} else if (m.type == JOBPOOL_MSG_RESULT) {
				uint64_t	t = now_ns();
				unsigned long	i;

				if (m.id - first_id >= idcap) {
					fprintf(stderr, "jplat: id %llu out of range\n",
					    (unsigned long long)m.id);
					return (3);
				}
				i = idx_of[m.id - first_id];
				lat_log_result(&ll, i, t);
				if (m.status != JOBPOOL_JOB_OK)
					fprintf(stderr, "jplat: job %lu %s\n", i, m.status_name);
				done++;
				tlast = t;
			} else {
				fprintf(stderr, "jplat: %s\n", m.text ? m.text : "?");
				return (3);
			}
		}
		if (r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jplat: %s\n", jobpool_error(jp));
			return (3);
		}
		/* Wait until the next send is due or something arrives. */
		{
			struct pollfd	 p = { jobpool_fd(jp), POLLIN, 0 };

			if (jobpool_pending(jp) > 0)
				p.events |= POLLOUT;
			if (sent < n)
				wait_due(&p, 1, lat_due(&ll, sent),
				    (p.events & POLLOUT) ? 0 : spin);
			else
				poll(&p, 1, 100);
		}
	}
	lat_log_print(&ll, tlast, n - done);
	jobpool_close(jp);
	lat_log_free(&ll);
	free(idx_of);
	free(payload);
	return (0);
}
