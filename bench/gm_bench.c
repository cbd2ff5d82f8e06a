/*
 * gm_bench.c: the Gearman peer, with libgearman (Debian's libgearman-dev).
 *
 *   gm_bench worker PORT [echo|spin]
 *     registers function "echo" (returns the workload) or "spin" ("N X" -> the sum of
 *     i*X for i < N, the same loop as jobpoold's) and works forever.
 *   gm_bench tput PORT N [BATCH] [TEXT]
 *     N foreground jobs of 64 bytes (job i's payload, or TEXT padded) whose results come
 *     back to this client: gearman_client_add_task() BATCH tasks (default 4096), then
 *     gearman_client_run_tasks() runs them concurrently over one connection, repeat.
 *     Foreground tasks because the result must come back to the producer, as in every
 *     other row; background jobs return nothing. Prints:
 *     jobs=N seconds=S jobs_per_s=R failed=F
 *   gm_bench lat PORT RATE SECONDS [WARMUP]
 *     W3's open loop: job i (64 bytes, job i's payload) is submitted as a foreground
 *     "echo" job at its scheduled time t0 + i/RATE, and measured from the write that
 *     carried its SUBMIT_JOB (and, "from due", from that scheduled time) to the read of
 *     its WORK_COMPLETE, matched by the index at the start of the payload. This client
 *     speaks Gearman's binary protocol itself (SUBMIT_JOB, JOB_CREATED, WORK_COMPLETE)
 *     on one TCP connection, as bs_bench does beanstalkd's: libgearman's client
 *     completes foreground tasks only inside gearman_client_run_tasks() and exposes no
 *     descriptor to poll, so it cannot send on a schedule. The workers are libgearman's.
 *     Prints benchutil.h's latency line, as jplat.
 * The server is 127.0.0.1:PORT (gearmand -t 1 -L 127.0.0.1 in the suite).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <libgearman/gearman.h>

#include "benchutil.h"

static unsigned long	completed, failed;

static unsigned long long
spin(unsigned long long n, unsigned long long x)
{
	unsigned long long	sum = 0, i;

	for (i = 0; i < n; i++) {
		sum += i * x;
		__asm__ volatile("" : "+r"(sum));
	}
	return (sum);
}

static void *
echo_fn(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	size_t	len = gearman_job_workload_size(job);
	void	*r = malloc(len ? len : 1);

	(void)ctx;
	memcpy(r, gearman_job_workload(job), len);
	*size = len;
	*ret = GEARMAN_SUCCESS;
	return (r);
}

static void *
spin_fn(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	size_t			len = gearman_job_workload_size(job);
	char			s[64], *r = malloc(32);
	unsigned long long	n = 0, x = 0;

	(void)ctx;
	snprintf(s, sizeof s, "%.*s", (int)(len < 63 ? len : 63),
	    (const char *)gearman_job_workload(job));
	sscanf(s, "%llu %llu", &n, &x);
	*size = (size_t)snprintf(r, 32, "%llu", spin(n, x));
	*ret = GEARMAN_SUCCESS;
	return (r);
}

static gearman_return_t
complete_cb(gearman_task_st *task)
{
	(void)task;
	completed++;
	return (GEARMAN_SUCCESS);
}

static gearman_return_t
fail_cb(gearman_task_st *task)
{
	(void)task;
	failed++;
	return (GEARMAN_SUCCESS);
}

/* Gearman's binary protocol (gearman.org/protocol): a 12-byte header, then the data. */
#define GM_HDR		12
#define GM_SUBMIT_JOB	7
#define GM_JOB_CREATED	8
#define GM_WORK_STATUS	12
#define GM_WORK_COMPLETE 13
#define GM_WORK_FAIL	14
#define GM_ERROR	19
#define GM_WORK_EXCEPTION 25
#define GM_WORK_DATA	28
#define GM_WORK_WARNING	29

static void
gm_put32(char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t
gm_get32(const char *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return (ntohl(v));
}

/* Append one request packet: "\0REQ", type, size, then the NUL-separated arguments. */
static void
gm_request(struct buf *b, uint32_t type, const char *fn, const char *uniq,
    const char *data, size_t dlen)
{
	char	hdr[GM_HDR];
	size_t	fl = strlen(fn), ul = strlen(uniq);

	memcpy(hdr, "\0REQ", 4);
	gm_put32(hdr + 4, type);
	gm_put32(hdr + 8, (uint32_t)(fl + 1 + ul + 1 + dlen));
	buf_add(b, hdr, GM_HDR);
	buf_add(b, fn, fl + 1);
	buf_add(b, uniq, ul + 1);
	buf_add(b, data, dlen);
}

static int
lat(in_port_t port, double rate, double seconds, double warm)
{
	struct sockaddr_in	 sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	unsigned long		 nwarm = (unsigned long)(rate * warm);
	unsigned long		 n = nwarm + (unsigned long)(rate * seconds);
	unsigned long		 sent = 0, created = 0, done = 0;
	struct buf		 in = { 0 }, out = { 0 };
	struct lat_log		 ll = { 0 };
	uint64_t		 tlast = 0, spin = bench_spin_ns();
	char			 payload[64], uniq[24];
	int			 fd, one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	lat_log_init(&ll, n, nwarm, rate);
	lat_log_start(&ll, now_ns() + 1000000);
	while (done < n) {
		struct pollfd	p;
		uint64_t	now = now_ns(), next = 0;
		ssize_t		r;

		for (; sent < n; sent++) {
			uint64_t	ts = lat_due(&ll, sent);

			if (ts > now) {
				next = ts;
				break;
			}
			ll.sched[sent] = ts;
			job_payload(payload, 64, sent);
			/* A distinct unique per job, or gearmand merges them into one. */
			snprintf(uniq, sizeof uniq, "%lu", sent);
			gm_request(&out, GM_SUBMIT_JOB, "echo", uniq, payload, 64);
		}
		if (buf_write(&out, fd) == 0)
			lat_log_written(&ll, sent);
		p = (struct pollfd){ fd, POLLIN | (buf_avail(&out) ? POLLOUT : 0), 0 };
		if (next)
			wait_due(&p, 1, next, buf_avail(&out) ? 0 : spin);
		else
			poll(&p, 1, -1);
		while ((r = buf_read(&in, fd)) > 0)
			;
		if (r == 0) {
			fprintf(stderr, "gm_bench lat: gearmand closed the connection\n");
			return (3);
		}
		while (buf_avail(&in) >= GM_HDR) {
			const char	*h = in.p + in.off, *d = h + GM_HDR, *z;
			uint32_t	 type = gm_get32(h + 4), len = gm_get32(h + 8);

			if (memcmp(h, "\0RES", 4) != 0) {
				fprintf(stderr, "gm_bench lat: not a response packet\n");
				return (3);
			}
			if (buf_avail(&in) < GM_HDR + (size_t)len)
				break;
			switch (type) {
			case GM_JOB_CREATED:
				created++;
				break;
			case GM_WORK_COMPLETE:
				/* "handle\0result": the echo's result is the job's payload. */
				if ((z = memchr(d, 0, len)) == NULL) {
					fprintf(stderr, "gm_bench lat: WORK_COMPLETE without a handle\n");
					return (3);
				} else {
					unsigned long	i = job_index(z + 1, len - (size_t)(z + 1 - d));
					uint64_t	t = now_ns();

					if (i < n)
						lat_log_result(&ll, i, t);
					tlast = t;
					done++;
				}
				break;
			case GM_WORK_STATUS:
			case GM_WORK_DATA:
			case GM_WORK_WARNING:
				break;
			case GM_WORK_FAIL:
			case GM_WORK_EXCEPTION:
			case GM_ERROR:
			default:
				fprintf(stderr, "gm_bench lat: response type %u: %.*s\n", type,
				    (int)len, d);
				return (3);
			}
			in.off += GM_HDR + len;
		}
	}
	if (created != n) {
		fprintf(stderr, "gm_bench lat: %lu JOB_CREATED for %lu jobs\n", created, n);
		return (3);
	}
	lat_log_print(&ll, tlast, 0);
	lat_log_free(&ll);
	buf_free(&in);
	buf_free(&out);
	close(fd);
	return (0);
}

int
main(int argc, char **argv)
{
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (argc >= 3 && strcmp(argv[1], "worker") == 0) {
		gearman_worker_st	*w = gearman_worker_create(NULL);
		int			 sp = argc > 3 && strcmp(argv[3], "spin") == 0;

		if (w == NULL || gearman_worker_add_server(w, "127.0.0.1",
		    (in_port_t)atoi(argv[2])) != GEARMAN_SUCCESS)
			return (3);
		if (gearman_worker_add_function(w, sp ? "spin" : "echo", 0,
		    sp ? spin_fn : echo_fn, NULL) != GEARMAN_SUCCESS)
			return (3);
		for (;;) {
			gearman_return_t	r = gearman_worker_work(w);

			if (r != GEARMAN_SUCCESS) {
				fprintf(stderr, "gm_bench worker: %s\n",
				    gearman_worker_error(w));
				return (3);
			}
		}
	}
	if (argc >= 4 && strcmp(argv[1], "tput") == 0) {
		gearman_client_st	*c = gearman_client_create(NULL);
		unsigned long		 n = strtoul(argv[3], NULL, 10), i, b;
		unsigned long		 batch = argc > 4 ? strtoul(argv[4], NULL, 10) : 4096;
		const char		*text = argc > 5 ? argv[5] : NULL;
		const char		*fn = text ? "spin" : "echo";
		char			*pl, (*uniq)[24];
		double			 t0, t;

		if (c == NULL || gearman_client_add_server(c, "127.0.0.1",
		    (in_port_t)atoi(argv[2])) != GEARMAN_SUCCESS)
			return (3);
		gearman_client_add_options(c, GEARMAN_CLIENT_FREE_TASKS);
		gearman_client_set_complete_fn(c, complete_cb);
		gearman_client_set_fail_fn(c, fail_cb);
		pl = xmalloc(batch * 64);
		uniq = xmalloc(batch * sizeof *uniq);
		t0 = now_s();
		for (i = 0; i < n; i += b) {
			gearman_return_t	r;

			for (b = 0; b < batch && i + b < n; b++) {
				char	*p = pl + b * 64;

				if (text) {
					memset(p, ' ', 64);
					memcpy(p, text, strlen(text) < 64 ? strlen(text) : 64);
				} else
					job_payload(p, 64, i + b);
				/* A distinct unique per job (else gearmand merges them). */
				snprintf(uniq[b], sizeof uniq[b], "%lu", i + b);
				if (gearman_client_add_task(c, NULL, NULL, fn, uniq[b], p, 64,
				    &r) == NULL || r != GEARMAN_SUCCESS) {
					fprintf(stderr, "gm_bench: add_task: %s\n",
					    gearman_client_error(c));
					return (3);
				}
			}
			if ((r = gearman_client_run_tasks(c)) != GEARMAN_SUCCESS) {
				fprintf(stderr, "gm_bench: run_tasks: %s\n",
				    gearman_client_error(c));
				return (3);
			}
		}
		t = now_s() - t0;
		printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=%lu\n", completed, t,
		    completed / t, failed);
		gearman_client_free(c);
		free(pl);
		free(uniq);
		return (completed == n && failed == 0 ? 0 : 1);
	}
	if (argc >= 5 && strcmp(argv[1], "lat") == 0)
		return (lat((in_port_t)atoi(argv[2]), atof(argv[3]), atof(argv[4]),
		    argc > 5 ? atof(argv[5]) : 0.5));
	fprintf(stderr, "usage: gm_bench worker PORT [echo|spin] | tput PORT N [BATCH] [TEXT]"
	    " | lat PORT RATE SECONDS [WARMUP]\n");
	return (64);
}
