/*
 * wakeup.c: W3's yardsticks: what a wake-up costs on this machine, so that latency
 * figures can be read against it (bench/README.md, "Where W3 at 5,000/s stands").
 *
 *   wakeup pipe same|cross [N]   a writer sends its CLOCK_MONOTONIC time through a pipe
 *                                every 200 us to a reader blocked in read(); the reader
 *                                records now - sent. "same": both on CPU 0; "cross": the
 *                                reader on CPU 1, the writer on CPU 0.
 *   wakeup timer [N] [US]        ppoll() until a time US (200) us ahead, N times (timer
 *                                slack 1 ns, as jplat): how late it wakes. The longer
 *                                the sleep, the later (an idle vCPU sleeps deeper):
 *                                W3 measures 40 and 160 us, about how long the client
 *                                sleeps before a send with beanstalkd and with jobpool.
 * Prints "p50_us=.. p90_us=.. p99_us=.." over N samples (default 20000).
 */
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/wait.h>

#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GAP_NS	200000

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

static void
report(uint64_t *d, size_t n)
{
	qsort(d, n, sizeof *d, cmp_u64);
	printf("p50_us=%.1f p90_us=%.1f p99_us=%.1f\n", d[n / 2] / 1e3,
	    d[n * 9 / 10] / 1e3, d[n * 99 / 100] / 1e3);
	fflush(stdout);
}

static void
pin(int cpu)
{
	cpu_set_t	set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof set, &set);
}

static int
pipe_mode(int cross, size_t n)
{
	struct timespec	 gap = { 0, GAP_NS };
	uint64_t	 t, *d;
	int		 p[2], status;
	size_t		 i;
	pid_t		 pid;

	if (pipe(p) == -1 || (d = calloc(n, sizeof *d)) == NULL)
		return (1);
	if ((pid = fork()) == 0) {
		pin(cross ? 1 : 0);
		for (i = 0; i < n; i++) {
			if (read(p[0], &t, sizeof t) != (ssize_t)sizeof t)
				_exit(1);
			d[i] = now_ns() - t;
		}
		report(d, n);
		_exit(0);
	}
	pin(0);
	for (i = 0; i < n; i++) {
		t = now_ns();
		if (write(p[1], &t, sizeof t) != (ssize_t)sizeof t)
			return (1);
		nanosleep(&gap, NULL);
	}
	waitpid(pid, &status, 0);
	return (WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static int
timer_mode(size_t n, uint64_t gap)
{
	struct timespec	 to;
	uint64_t	 due, now, *d;
	size_t		 i;

	if ((d = calloc(n, sizeof *d)) == NULL)
		return (1);
	prctl(PR_SET_TIMERSLACK, 1UL);
	for (i = 0; i < n; i++) {
		due = now_ns() + gap;
		now = now_ns();
		to.tv_sec = 0;
		to.tv_nsec = (long)(due - now);
		ppoll(NULL, 0, &to, NULL);
		d[i] = now_ns() - due;
	}
	report(d, n);
	return (0);
}

int
main(int argc, char **argv)
{
	size_t	n = 20000;

	if (argc >= 2 && strcmp(argv[1], "pipe") == 0 && argc >= 3) {
		if (argc >= 4)
			n = strtoul(argv[3], NULL, 10);
		return (pipe_mode(strcmp(argv[2], "cross") == 0, n ? n : 1));
	}
	if (argc >= 2 && strcmp(argv[1], "timer") == 0) {
		uint64_t	gap = GAP_NS;

		if (argc >= 3)
			n = strtoul(argv[2], NULL, 10);
		if (argc >= 4)
			gap = strtoull(argv[3], NULL, 10) * 1000;
		return (timer_mode(n ? n : 1, gap ? gap : GAP_NS));
	}
	fprintf(stderr, "usage: wakeup pipe same|cross [N] | wakeup timer [N] [US]\n");
	return (64);
}
