/*
 * spincal.c: W2's calibration and CPU-time reference. The loop is the same as jobpoold's
 * spin handler (handler_builtin.c): the sum of i*X for i < N, with an empty asm that
 * keeps the compiler from replacing it by its closed form.
 *
 *   spincal -c MS        print N such that one job takes about MS ms here (best of 5)
 *   spincal -p P N K     run K jobs of N in P processes forked at once (job k in
 *                        process k % P), no IPC; print "jobs=K procs=P seconds=S",
 *                        the wall time from the fork to the last exit: with P = 1
 *                        and P = 2, the machine's own CPU scaling (W2's yardstick)
 *   spincal N X          run one job and print the sum, like the handler (for xargs)
 */
#include <sys/wait.h>

#include "benchutil.h"

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

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "-c") == 0) {
		double			ms = atof(argv[2]), best = 1e9;
		unsigned long long	probe = 20000000ull;
		int			k;

		for (k = 0; k < 5; k++) {
			double	t = now_s();

			if (spin(probe, 3) == 1)
				putchar(' ');
			t = now_s() - t;
			if (t < best)
				best = t;
		}
		printf("%llu\n", (unsigned long long)(probe * (ms / 1e3) / best));
		return (0);
	}
	if (argc == 5 && strcmp(argv[1], "-p") == 0) {
		int			p, k, st, procs = atoi(argv[2]), kk = atoi(argv[4]);
		unsigned long long	n = strtoull(argv[3], NULL, 10);
		double			t = now_s();

		if (procs < 1 || kk < 0)
			goto usage;
		for (p = 0; p < procs; p++) {
			pid_t	pid = fork();

			if (pid == -1)
				die("fork");
			if (pid == 0) {
				for (k = p; k < kk; k += procs)
					if (spin(n, (unsigned long long)k + 1) == 1)
						putchar(' ');
				_exit(0);
			}
		}
		for (p = 0; p < procs; p++)
			if (wait(&st) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				die("a spinning process failed");
		t = now_s() - t;
		printf("jobs=%d procs=%d seconds=%.4f\n", kk, procs, t);
		return (0);
	}
	if (argc == 3) {
		printf("%llu\n", spin(strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10)));
		return (0);
	}
usage:
	fprintf(stderr, "usage: spincal -c MS | -p P N K | N X\n");
	return (64);
}
