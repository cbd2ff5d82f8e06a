/*
 * evsub.c: an EVENTS subscriber for the benchmarks (bench/ab_events.sh).
 *
 *   evsub -s SOCKET [-a] [-t SECONDS] [-x]
 *
 * Subscribes (since=now, or with -a since=all until=now: the whole ring, then END),
 * reads the stream through a 1 MiB buffer and, when the time is up, the stream ends or
 * it is sent SIGTERM, prints one line of key=value words: events, gaps (and the events
 * they lost), seconds, events_per_s, and the delivery latency (now, by the wall clock,
 * minus the event's time= stamp) p50_us, p99_us and max_us. -x: subscribe and never
 * read (a stalled subscriber), until SIGTERM.
 */

#define _GNU_SOURCE

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAT_MAX	(1 << 22)

static volatile sig_atomic_t	stop;
static uint32_t			*lat;
static size_t			 nlat;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t
wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

static double
mono_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	struct sigaction	 sa;
	const char		*path = NULL, *req = "EVENTS since=now\n";
	static char		 buf[1 << 20];
	size_t			 have = 0, i;
	uint64_t		 events = 0, gaps = 0, lost = 0, now, t;
	double			 secs = 10, t0, t1;
	ssize_t			 n;
	char			*p, *e, *q;
	int			 fd, ch, stall = 0, done = 0;

	while ((ch = getopt(argc, argv, "s:at:x")) != -1) {
		switch (ch) {
		case 's': path = optarg; break;
		case 'a': req = "EVENTS since=all until=now\n"; break;
		case 't': secs = atof(optarg); break;
		case 'x': stall = 1; break;
		default:
			fprintf(stderr, "usage: evsub -s SOCKET [-a] [-t SECONDS] [-x]\n");
			return (64);
		}
	}
	if (path == NULL || strlen(path) >= sizeof sun.sun_path)
		return (64);
	strcpy(sun.sun_path, path);
	/* No SA_RESTART: a signal must end a blocking read. */
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	if ((lat = malloc(LAT_MAX * sizeof *lat)) == NULL)
		return (71);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		perror("evsub");
		return (69);
	}
	if (stall) {
		while (!stop)
			pause();
		return (0);
	}
	alarm((unsigned int)secs + 1);
	t0 = mono_s();
	while (!stop && !done && mono_s() - t0 < secs) {
		n = read(fd, buf + have, sizeof buf - have);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		have += (size_t)n;
		now = wall_us();
		p = buf;
		while ((e = memchr(p, '\n', have - (size_t)(p - buf))) != NULL) {
			if (strncmp(p, "EVENT seq=", 10) == 0) {
				events++;
				if ((q = memmem(p, (size_t)(e - p), " time=", 6)) != NULL) {
					t = strtoull(q + 6, &q, 10) * 1000000;
					if (*q == '.')
						t += strtoull(q + 1, NULL, 10);
					if (nlat < LAT_MAX)
						lat[nlat++] = now > t ? (uint32_t)(now - t) : 0;
				}
			} else if (strncmp(p, "EVENT type=gap", 14) == 0) {
				gaps++;
				if ((q = memmem(p, (size_t)(e - p), " first=", 7)) != NULL) {
					uint64_t f = strtoull(q + 7, NULL, 10), l;

					if ((q = memmem(p, (size_t)(e - p), " last=", 6)) != NULL) {
						l = strtoull(q + 6, NULL, 10);
						lost += l - f + 1;
					}
				}
			} else if (strncmp(p, "END", 3) == 0)
				done = 1;
			p = e + 1;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
	}
	t1 = mono_s();
	qsort(lat, nlat, sizeof *lat, cmp_u32);
	i = nlat;
	printf("events=%llu gaps=%llu lost=%llu seconds=%.3f events_per_s=%.0f p50_us=%u "
	    "p99_us=%u max_us=%u\n", (unsigned long long)events, (unsigned long long)gaps,
	    (unsigned long long)lost, t1 - t0, (double)events / (t1 - t0),
	    i ? lat[i / 2] : 0, i ? lat[i * 99 / 100] : 0, i ? lat[i - 1] : 0);
	return (0);
}
