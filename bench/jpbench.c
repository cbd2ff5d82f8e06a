/*
 * jpbench.c: W1 through libjobpool: submit N jobs of 64 printable bytes, pipelined
 * with at most WINDOW in flight, and wait for every result. Prints one line:
 *   jobs=N seconds=S jobs_per_s=R failed=F
 *
 *   jpbench [-s SOCKET] [-q QUEUE] [-n JOBS] [-j WINDOW] [-b BYTES] [-p PRODUCERS]
 *
 * -p PRODUCERS (default 1): fork that many processes, each with its own connection
 * doing its share of the N jobs (N / PRODUCERS, the first N % PRODUCERS one more) with
 * the same window of WINDOW per connection. Each connects, says it is ready and waits
 * for the start (the parent closes a pipe); the time runs from the start to the last
 * producer's report that all its results are in. The line is the total of all of them.
 */

#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobpool.h"

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/*
 * Submit n jobs (indexes base .. base + n - 1) on jp with at most window in flight and
 * wait for all their results. 0, or 3 after printing the error.
 */
static int
produce(struct jobpool *jp, const struct jobpool_submit_opts *o, unsigned long base,
    unsigned long n, unsigned long window, char *payload, unsigned long bytes,
    unsigned long *failedp)
{
	struct jobpool_msg	m;
	unsigned long		sent = 0, acked = 0, done = 0, failed = 0;
	int			r;

	while (done < n) {
		while (sent < n && sent - done < window) {
			/* Payload of job i: printable, distinct per job. */
			memset(payload, 'a' + (base + sent) % 26, bytes);
			snprintf(payload, bytes, "%lu", base + sent);
			payload[strlen(payload)] = ' ';
			if (jobpool_send_submit(jp, o, payload, bytes) != 0) {
				fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
				return (3);
			}
			sent++;
		}
		r = jobpool_flush(jp, 0);
		if (r != 0 && r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
			return (3);
		}
		/* Block for one message, then take whatever else has arrived. */
		r = jobpool_next(jp, &m, -1);
		while (r == 0) {
			if (m.type == JOBPOOL_MSG_RESULT) {
				done++;
				if (m.status != JOBPOOL_JOB_OK)
					failed++;
			} else if (m.type == JOBPOOL_MSG_OK)
				acked++;
			else {
				fprintf(stderr, "jpbench: %s\n", m.text);
				return (3);
			}
			r = jobpool_next(jp, &m, 0);
		}
		if (r != JOBPOOL_EAGAIN) {
			fprintf(stderr, "jpbench: %s\n", jobpool_error(jp));
			return (3);
		}
	}
	(void)acked;
	*failedp = failed;
	return (0);
}

/* What a producer process reports on the result pipe (one write, < PIPE_BUF). */
struct report {
	unsigned long	done, failed;
	int		rc;
};

static ssize_t
read_full(int fd, void *p, size_t len)
{
	size_t	got = 0;
	ssize_t	k;

	while (got < len) {
		k = read(fd, (char *)p + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return (k < 0 ? -1 : (ssize_t)got);
		got += (size_t)k;
	}
	return ((ssize_t)got);
}

/* One producer process; never returns. */
static void
producer(const char *sock, const struct jobpool_submit_opts *o, unsigned long base,
    unsigned long n, unsigned long window, unsigned long bytes, int ready, int start,
    int result)
{
	struct report	 rep = { 0, 0, 3 };
	struct jobpool	*jp;
	char		*payload, c;
	ssize_t		 k;

	if ((jp = jobpool_connect(sock)) == NULL) {
		perror("jpbench: connect");
		(void)write(ready, "e", 1);
		_exit(3);
	}
	if ((payload = malloc(bytes ? bytes : 1)) == NULL) {
		(void)write(ready, "e", 1);
		_exit(1);
	}
	(void)write(ready, "r", 1);
	close(ready);
	/* The start: the parent closes its end (EOF); a byte means give up. */
	while ((k = read(start, &c, 1)) < 0 && errno == EINTR)
		;
	if (k != 0)
		_exit(3);
	rep.rc = produce(jp, o, base, n, window, payload, bytes, &rep.failed);
	if (rep.rc == 0)
		rep.done = n;
	(void)write(result, &rep, sizeof rep);
	jobpool_close(jp);
	_exit(rep.rc);
}

/* -p PRODUCERS > 1: fork them, start them together, total their reports. */
static int
run_producers(const char *sock, const struct jobpool_submit_opts *o, unsigned long n,
    unsigned long window, unsigned long bytes, unsigned long np)
{
	struct report	 rep;
	unsigned long	 i, base = 0, share, nready = 0, nrep = 0, done = 0, failed = 0;
	pid_t		*pids;
	double		 t0, t1 = 0;
	int		 ready[2], start[2], result[2], bad = 0, st;
	char		 c;
	ssize_t		 k;

	if ((pids = calloc(np, sizeof *pids)) == NULL)
		return (1);
	if (pipe(ready) != 0 || pipe(start) != 0 || pipe(result) != 0) {
		perror("jpbench: pipe");
		return (3);
	}
	for (i = 0; i < np; i++) {
		share = n / np + (i < n % np);
		if ((pids[i] = fork()) == -1) {
			perror("jpbench: fork");
			bad = 1;
			break;
		}
		if (pids[i] == 0) {
			close(ready[0]);
			close(start[1]);
			close(result[0]);
			producer(sock, o, base, share, window, bytes, ready[1], start[0],
			    result[1]);
		}
		base += share;
	}
	close(ready[1]);
	close(start[0]);
	close(result[1]);
	signal(SIGPIPE, SIG_IGN);	/* the "give up" byte to producers that are gone */
	/* Every producer connected (or failed, or died: then EOF). */
	while (nready < np && (k = read(ready[0], &c, 1)) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (c != 'r')
			bad = 1;
		nready++;
	}
	if (nready < np)
		bad = 1;
	if (bad) {
		fprintf(stderr, "jpbench: a producer could not start\n");
		(void)write(start[1], "x", 1);
		close(start[1]);
		for (i = 0; i < np && pids[i] > 0; i++)
			waitpid(pids[i], &st, 0);
		return (3);
	}
	t0 = now_s();
	close(start[1]);
	while (nrep < np && read_full(result[0], &rep, sizeof rep) == (ssize_t)sizeof rep) {
		t1 = now_s();
		nrep++;
		done += rep.done;
		failed += rep.failed;
		if (rep.rc != 0)
			bad = 1;
	}
	for (i = 0; i < np; i++)
		if (waitpid(pids[i], &st, 0) == pids[i] && !(WIFEXITED(st) &&
		    (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 1)))
			bad = 1;
	free(pids);
	if (bad || nrep < np || done != n) {
		fprintf(stderr, "jpbench: %lu of %lu producers reported, %lu of %lu jobs "
		    "done\n", nrep, np, done, n);
		return (3);
	}
	printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=%lu\n", n, t1 - t0,
	    n / (t1 - t0), failed);
	return (failed ? 1 : 0);
}

int
main(int argc, char **argv)
{
	struct jobpool_submit_opts	 o = { "default", 0, 0, 0, JOBPOOL_WAIT };
	struct jobpool			*jp;
	const char			*sock = NULL;
	unsigned long			 n = 200000, window = 4096, bytes = 64, np = 1;
	unsigned long			 failed = 0;
	char				*payload;
	double				 t0, t1;
	int				 ch, r;

	while ((ch = getopt(argc, argv, "s:q:n:j:b:p:")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'q': o.queue = optarg; break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'j': window = strtoul(optarg, NULL, 10); break;
		case 'b': bytes = strtoul(optarg, NULL, 10); break;
		case 'p': np = strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: jpbench [-s SOCKET] [-q QUEUE] [-n JOBS] "
			    "[-j WINDOW] [-b BYTES] [-p PRODUCERS]\n");
			return (64);
		}
	}
	if (np == 0 || np > 1024) {
		fprintf(stderr, "jpbench: -p must be 1 to 1024\n");
		return (64);
	}
	if (np > 1)
		return (run_producers(sock, &o, n, window, bytes, np));
	if ((jp = jobpool_connect(sock)) == NULL) {
		perror("jpbench: connect");
		return (3);
	}
	if ((payload = malloc(bytes)) == NULL)
		return (1);
	t0 = now_s();
	if ((r = produce(jp, &o, 0, n, window, payload, bytes, &failed)) != 0)
		return (r);
	t1 = now_s();
	printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=%lu\n", n, t1 - t0,
	    n / (t1 - t0), failed);
	jobpool_close(jp);
	free(payload);
	return (failed ? 1 : 0);
}
