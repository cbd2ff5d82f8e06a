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
 * The server is 127.0.0.1:PORT (gearmand -t 1 -L 127.0.0.1 in the suite).
 */
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

int
main(int argc, char **argv)
{
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
		return (completed == n && failed == 0 ? 0 : 1);
	}
	fprintf(stderr, "usage: gm_bench worker PORT [echo|spin] | tput PORT N [BATCH] [TEXT]\n");
	return (64);
}
