/*
 * compute.c: the compute stage of examples/pipeline (fetch -> compute -> save): a
 * handler plugin that summarises a fetched page, on a CPU budget. Its result is one
 * line, "bytes=B words=W fnv=H", the next stage's payload.
 *
 *     cc -shared -fPIC -O2 -o compute.so compute.c -I/usr/local/include
 *     handler = "plugin:/usr/local/lib/jobpool/compute.so 20";
 *
 * The argument is the CPU time each job takes, in milliseconds (default 20; 0: only
 * the summary): the stand-in for real work (parsing, scoring, resizing) that asyncio
 * would hand to run_in_executor(ProcessPoolExecutor). The budget is spent stirring the
 * page's hash, measured on the worker's own CPU clock, and polls jobpool_cancelled()
 * as it goes, so a cancelled chain stops here within a millisecond.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jobpool-handler.h>

struct compute_state {
	uint64_t	budget_ns;	/* CPU time per job */
};

static int
compute_init(const char *arg, void **state, char *err, size_t errlen)
{
	struct compute_state	*st;
	char			*end;
	unsigned long		 ms = 20;

	if (*arg != '\0') {
		ms = strtoul(arg, &end, 10);
		if (*end != '\0' || ms > 60000) {
			snprintf(err, errlen, "the argument is milliseconds of CPU per job, "
			    "0 to 60000, not '%s'", arg);
			return (-1);
		}
	}
	if ((st = calloc(1, sizeof *st)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	st->budget_ns = (uint64_t)ms * 1000000;
	*state = st;
	return (0);
}

static void
compute_fini(void *state)
{
	free(state);
}

/* This thread's CPU time in ns. */
static uint64_t
cpu_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec);
}

static int
compute_process(void *state, const void *payload, size_t len, struct jobpool_output *out)
{
	struct compute_state	*st = state;
	const unsigned char	*p = payload;
	uint64_t		 h = 14695981039346656037ULL, stir, until;
	unsigned long long	 words = 0;
	size_t			 i;
	int			 inword = 0, n;

	for (i = 0; i < len; i++) {
		h = (h ^ p[i]) * 1099511628211ULL;
		if (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')
			inword = 0;
		else if (!inword) {
			inword = 1;
			words++;
		}
	}
	/* The budget: work whose result the summary does not depend on. */
	until = cpu_ns() + st->budget_ns;
	for (stir = h; cpu_ns() < until; ) {
		for (n = 0; n < 4096; n++)
			stir = (stir ^ (stir >> 29)) * 0xbf58476d1ce4e5b9ULL;
		if (jobpool_cancelled()) {
			jobpool_output_printf(out, "compute: cancelled");
			return (JOBPOOL_HANDLER_ERROR);
		}
	}
	if (stir == 0)		/* keeps the loop from being optimised away */
		words++;
	if (jobpool_output_printf(out, "bytes=%zu words=%llu fnv=%016llx", len, words,
	    (unsigned long long)h) != 0)
		return (JOBPOOL_HANDLER_ERROR);
	return (JOBPOOL_HANDLER_OK);
}

/* The one symbol jobpoold looks up. */
const struct jobpool_handler jobpool_handler = {
	.abi_version = JOBPOOL_HANDLER_ABI_VERSION,
	.name = "compute",
	.init = compute_init,
	.process = compute_process,
	.fini = compute_fini,
};
