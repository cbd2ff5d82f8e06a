/*
 * spincal.c: W2's calibration and CPU-time reference. The loop is the same as jobpoold's
 * spin handler (handler_builtin.c): the sum of i*X for i < N, with an empty asm that
 * keeps the compiler from replacing it by its closed form.
 *
 *   spincal -c MS        print N such that one job takes about MS ms here (best of 5)
 *   spincal -s N K       run K jobs of N serially in this process; print
 *                        "jobs=K seconds=S per_job_ms=M" (the sum of single-job times)
 *   spincal N X          run one job and print the sum, like the handler (for xargs)
 */
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
	if (argc == 4 && strcmp(argv[1], "-s") == 0) {
		unsigned long long	n = strtoull(argv[2], NULL, 10);
		int			k, kk = atoi(argv[3]);
		double			t = now_s();

		for (k = 0; k < kk; k++)
			if (spin(n, (unsigned long long)k + 1) == 1)
				putchar(' ');
		t = now_s() - t;
		printf("jobs=%d seconds=%.4f per_job_ms=%.2f\n", kk, t, t * 1e3 / kk);
		return (0);
	}
	if (argc == 3) {
		printf("%llu\n", spin(strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10)));
		return (0);
	}
	fprintf(stderr, "usage: spincal -c MS | -s N K | N X\n");
	return (64);
}
