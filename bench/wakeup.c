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
 *
 *   wakeup stall [SECONDS]       one process pinned to each CPU reads CLOCK_MONOTONIC in
 *                                a loop for SECONDS (5) and counts the gaps between two
 *                                reads: a gap is time the CPU was taken from a process
 *                                that never blocks (the host running something else on
 *                                this vCPU, or the guest kernel). Prints, over both CPUs:
 *                                "gaps_100us_per_s=.. gaps_1ms_per_s=.. max_us=..
 *                                lost_pct=.." (lost: the share of the time in gaps of 20
 *                                us or more). Every job whose path is on a CPU in such a
 *                                gap waits it out, whatever system runs it.
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

struct stall {
	uint64_t	n100, n1000, max, lost;
};

static void
stall_spin(int cpu, uint64_t ns, struct stall *st)
{
	uint64_t	t, prev, end, d;

	pin(cpu);
	memset(st, 0, sizeof *st);
	prev = now_ns();
	end = prev + ns;
	do {
		t = now_ns();
		d = t - prev;
		if (d >= 20000) {
			st->lost += d;
			st->n100 += d >= 100000;
			st->n1000 += d >= 1000000;
			if (d > st->max)
				st->max = d;
		}
		prev = t;
	} while (t < end);
}

static int
stall_mode(double seconds)
{
	struct stall	a, b;
	uint64_t	ns = (uint64_t)(seconds * 1e9);
	int		p[2], status;
	pid_t		pid;

	if (pipe(p) == -1)
		return (1);
	if ((pid = fork()) == 0) {
		stall_spin(1, ns, &b);
		_exit(write(p[1], &b, sizeof b) == (ssize_t)sizeof b ? 0 : 1);
	}
	stall_spin(0, ns, &a);
	if (read(p[0], &b, sizeof b) != (ssize_t)sizeof b)
		return (1);
	waitpid(pid, &status, 0);
	printf("gaps_100us_per_s=%.1f gaps_1ms_per_s=%.2f max_us=%.1f lost_pct=%.2f\n",
	    (double)(a.n100 + b.n100) / (2 * seconds),
	    (double)(a.n1000 + b.n1000) / (2 * seconds),
	    (a.max > b.max ? a.max : b.max) / 1e3,
	    100.0 * (double)(a.lost + b.lost) / (2.0 * (double)ns));
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
	if (argc >= 2 && strcmp(argv[1], "stall") == 0) {
		double	sec = argc >= 3 ? atof(argv[2]) : 5;

		return (stall_mode(sec > 0 ? sec : 5));
	}
	fprintf(stderr, "usage: wakeup pipe same|cross [N] | wakeup timer [N] [US] | "
	    "wakeup stall [SECONDS]\n");
	return (64);
}
