/*
 * spawnfloor.c: W5's floor. posix_spawn()s PROGRAM (default /bin/true) N times with at
 * most P children alive, reaping each with waitpid(); no shell, no pipes, no queue.
 *
 *   spawnfloor [-n N] [-P P] [PROGRAM]
 * Prints: jobs=N seconds=S jobs_per_s=R failed=F
 */
#include <spawn.h>
#include <sys/wait.h>

#include "benchutil.h"

extern char	**environ;

int
main(int argc, char **argv)
{
	unsigned long	 n = 2000, started = 0, reaped = 0, failed = 0;
	int		 par = 2, ch, st;
	char		*prog = "/bin/true";
	double		 t0, t1;

	while ((ch = getopt(argc, argv, "n:P:")) != -1) {
		switch (ch) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'P': par = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: spawnfloor [-n N] [-P P] [PROGRAM]\n");
			return (64);
		}
	}
	if (optind < argc)
		prog = argv[optind];
	t0 = now_s();
	while (reaped < n) {
		while (started < n && started - reaped < (unsigned long)par) {
			char	*av[] = { prog, NULL };
			pid_t	 pid;

			if ((errno = posix_spawn(&pid, prog, NULL, NULL, av, environ)) != 0)
				die("posix_spawn");
			started++;
		}
		if (waitpid(-1, &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
		reaped++;
	}
	t1 = now_s();
	printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=%lu\n", n, t1 - t0,
	    n / (t1 - t0), failed);
	return (failed ? 1 : 0);
}
