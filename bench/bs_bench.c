/*
 * bs_bench.c: the beanstalkd peer, speaking beanstalkd's text protocol directly.
 *
 *   bs_bench worker ADDR [echo|spin]
 *     watch tube "jobs", use tube "results"; loop: reserve a job, delete it, put its
 *     result (the payload for echo; the spin sum for "N X" with spin) into "results".
 *     Pipelined as far as the protocol allows: delete + put + the next reserve go out
 *     in one write.
 *   bs_bench tput ADDR N [WINDOW] [TEXT]
 *     put N jobs (64 bytes: job i's payload, or TEXT padded) into "jobs" on one
 *     connection, pipelined with at most WINDOW (default 4096) unfinished, and reserve +
 *     delete the N results from "results" on a second connection (a few reserves pipelined).
 *     Prints: jobs=N seconds=S jobs_per_s=R failed=0
 *   bs_bench fill ADDR N
 *     put N jobs of 64 bytes into "jobs" (pipelined, 128 unanswered at most: beanstalkd writes one small reply per put, and a Unix socket fills with them long before its byte limit) and exit
 *     once all are INSERTED (W4: beanstalkd's memory per queued job, no workers).
 *   bs_bench lat ADDR RATE SECONDS [WARMUP]
 *     the same, but job i is put at its scheduled time t0 + i/RATE (open loop); its
 *     latency runs from the write that carried its put (and, "from due", from that
 *     scheduled time) to the reserve of its result (matched by the index at the start
 *     of the payload). Prints benchutil.h's latency line, as jplat.
 *
 * ADDR is unix:/path or host:port (loopback only in the suite).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "benchutil.h"

static int
bs_connect(const char *addr)
{
	int	fd;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un	sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", addr + 5);
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
			die("connect");
	} else {
		struct sockaddr_in	sa = { .sin_family = AF_INET };
		const char		*c = strrchr(addr, ':');
		char			host[64];
		int			one = 1;

		snprintf(host, sizeof host, "%.*s", (int)(c - addr), addr);
		sa.sin_port = htons((uint16_t)atoi(c + 1));
		inet_pton(AF_INET, host, &sa.sin_addr);
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
			die("connect");
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return (fd);
}

/* Blocking: read one reply line (without \r\n) into line; the body, if any, stays in b. */
static char *
get_line(struct buf *b, int fd)
{
	for (;;) {
		char	*s = b->p + b->off, *e;

		if (buf_avail(b) > 0 && (e = memmem(s, buf_avail(b), "\r\n", 2)) != NULL) {
			*e = 0;
			b->off += (size_t)(e + 2 - s);
			return (s);
		}
		if (buf_read(b, fd) == 0) {
			fprintf(stderr, "bs_bench: server closed\n");
			exit(3);
		}
	}
}

static void
need(struct buf *b, int fd, size_t n)
{
	while (buf_avail(b) < n)
		if (buf_read(b, fd) == 0) {
			fprintf(stderr, "bs_bench: server closed\n");
			exit(3);
		}
}

static void
send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t	w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		s += w;
		n -= (size_t)w;
	}
}

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

static int
worker(const char *addr, int spin_mode)
{
	int		fd = bs_connect(addr);
	struct buf	in = { 0 }, out = { 0 };
	const char	*setup = "watch jobs\r\nignore default\r\nuse results\r\nreserve\r\n";
	int		k;

	send_all(fd, setup, strlen(setup));
	for (k = 0; k < 3; k++)
		get_line(&in, fd);
	for (;;) {
		char			*l = get_line(&in, fd), hdr[96], res[32];
		unsigned long long	 id;
		size_t			 len, olen;
		const char		*body;
		int			 h;

		if (sscanf(l, "RESERVED %llu %zu", &id, &len) != 2) {
			fprintf(stderr, "bs_bench worker: %s\n", l);
			return (3);
		}
		need(&in, fd, len + 2);
		body = in.p + in.off;
		if (spin_mode) {
			unsigned long long	n = 0, x = 0;
			char			s[64];

			snprintf(s, sizeof s, "%.*s", (int)(len < 63 ? len : 63), body);
			sscanf(s, "%llu %llu", &n, &x);
			olen = (size_t)snprintf(res, sizeof res, "%llu", spin(n, x));
			body = res;
		} else
			olen = len;
		h = snprintf(hdr, sizeof hdr, "delete %llu\r\nput 0 0 60 %zu\r\n", id, olen);
		out.off = out.len = 0;
		buf_add(&out, hdr, (size_t)h);
		buf_add(&out, body, olen);
		buf_add(&out, "\r\nreserve\r\n", 11);
		in.off += len + 2;
		send_all(fd, out.p, out.len);
		get_line(&in, fd);		/* DELETED */
		l = get_line(&in, fd);		/* INSERTED id */
		if (strncmp(l, "INSERTED", 8) != 0) {
			fprintf(stderr, "bs_bench worker: put: %s\n", l);
			return (3);
		}
	}
}

/* tput (rate == 0) and lat (rate > 0). */
static int
client(const char *addr, unsigned long n, unsigned long window, double rate,
    unsigned long nwarm, const char *text)
{
	int		 pf = bs_connect(addr), cf = bs_connect(addr);
	struct buf	 pin = { 0 }, pout = { 0 }, cin = { 0 }, cout = { 0 };
	unsigned long	 sent = 0, inserted = 0, reserves = 0, results = 0, deleted = 0;
	struct lat_log	 ll = { 0 };
	uint64_t	 t0, tlast = 0;
	uint64_t	 spin = bench_spin_ns();
	unsigned long	 maxres;
	char		 payload[64], line[128];
	int		 k;

	send_all(pf, "use jobs\r\n", 10);
	get_line(&pin, pf);
	send_all(cf, "watch results\r\nignore default\r\n", 31);
	get_line(&cin, cf);
	get_line(&cin, cf);
	fcntl(pf, F_SETFL, O_NONBLOCK);
	fcntl(cf, F_SETFL, O_NONBLOCK);
	if (rate > 0)
		lat_log_init(&ll, n, nwarm, rate);
	/*
	 * Reserves kept outstanding on the results connection. Each pipelined reserve waits
	 * in beanstalkd's command order, so the delete of a result queues behind them; with
	 * many outstanding (64+) latency at 5,000/s went to hundreds of ms, while throughput
	 * gains nothing past ~16. BS_RESERVES overrides.
	 */
	maxres = getenv("BS_RESERVES") ? strtoul(getenv("BS_RESERVES"), NULL, 10) :
	    rate > 0 ? 4 : 16;
	for (; reserves < n && reserves < maxres; reserves++)
		buf_add(&cout, "reserve\r\n", 9);
	t0 = now_ns() + 1000000;
	if (rate > 0)
		lat_log_start(&ll, t0);
	while (deleted < n) {
		struct pollfd	p[2];
		uint64_t	now = now_ns(), next = 0;
		int		to = -1;

		/* Producer: puts. */
		while (sent < n) {
			uint64_t	ts = 0;

			if (rate > 0) {
				ts = lat_due(&ll, sent);
				if (ts > now) {
					next = ts;
					break;
				}
				ll.sched[sent] = ts;
			} else if (sent - results >= window)
				break;
			if (text) {
				memset(payload, ' ', 64);
				memcpy(payload, text, strlen(text) < 64 ? strlen(text) : 64);
			} else
				job_payload(payload, 64, sent);
			buf_add(&pout, "put 0 0 60 64\r\n", 15);
			buf_add(&pout, payload, 64);
			buf_add(&pout, "\r\n", 2);
			sent++;
		}
		if (buf_write(&pout, pf) == 0 && rate > 0)
			lat_log_written(&ll, sent);
		buf_write(&cout, cf);
		p[0] = (struct pollfd){ pf, POLLIN | (buf_avail(&pout) ? POLLOUT : 0), 0 };
		p[1] = (struct pollfd){ cf, POLLIN | (buf_avail(&cout) ? POLLOUT : 0), 0 };
		if (next)
			wait_due(p, 2, next, buf_avail(&pout) || buf_avail(&cout) ? 0 : spin);
		else
			poll(p, 2, to);
		/* INSERTED replies. */
		while (buf_read(&pin, pf) > 0)
			;
		for (;;) {
			char	*s = pin.p + pin.off, *e;

			if (buf_avail(&pin) == 0 ||
			    (e = memmem(s, buf_avail(&pin), "\r\n", 2)) == NULL)
				break;
			if (strncmp(s, "INSERTED", 8) != 0) {
				fprintf(stderr, "bs_bench: put: %.*s\n", (int)(e - s), s);
				return (3);
			}
			inserted++;
			pin.off += (size_t)(e + 2 - s);
		}
		/* RESERVED / DELETED replies on the consumer connection. */
		while (buf_read(&cin, cf) > 0)
			;
		for (;;) {
			char			*s = cin.p + cin.off, *e;
			unsigned long long	 id;
			size_t			 len;

			if (buf_avail(&cin) == 0 ||
			    (e = memmem(s, buf_avail(&cin), "\r\n", 2)) == NULL)
				break;
			if (strncmp(s, "DELETED", 7) == 0) {
				deleted++;
				cin.off += (size_t)(e + 2 - s);
				continue;
			}
			if (sscanf(s, "RESERVED %llu %zu", &id, &len) != 2) {
				fprintf(stderr, "bs_bench: %.*s\n", (int)(e - s), s);
				return (3);
			}
			if ((size_t)(e + 2 - s) + len + 2 > buf_avail(&cin))
				break;
			if (rate > 0) {
				unsigned long	i = job_index(e + 2, len);
				uint64_t	t = now_ns();

				if (i < n)
					lat_log_result(&ll, i, t);
				tlast = t;
			}
			results++;
			cin.off += (size_t)(e + 2 - s) + len + 2;
			k = snprintf(line, sizeof line, "delete %llu\r\n", id);
			buf_add(&cout, line, (size_t)k);
			if (reserves < n) {
				buf_add(&cout, "reserve\r\n", 9);
				reserves++;
			}
		}
	}
	if (rate > 0) {
		lat_log_print(&ll, tlast, 0);
	} else {
		double	s = (now_ns() - t0) / 1e9;

		printf("jobs=%lu seconds=%.3f jobs_per_s=%.0f failed=0\n", n, s, n / s);
	}
	lat_log_free(&ll);
	buf_free(&pin);
	buf_free(&pout);
	buf_free(&cin);
	buf_free(&cout);
	close(pf);
	close(cf);
	return (0);
}

static int
fill(const char *addr, unsigned long n)
{
	int		 fd = bs_connect(addr);
	struct buf	 in = { 0 }, out = { 0 };
	unsigned long	 sent = 0, ok = 0;
	char		 payload[64];

	send_all(fd, "use jobs\r\n", 10);
	get_line(&in, fd);
	while (ok < n) {
		char	*s, *e;

		for (; sent < n && sent - ok < 128; sent++) {
			job_payload(payload, 64, sent);
			buf_add(&out, "put 0 0 60 64\r\n", 15);
			buf_add(&out, payload, 64);
			buf_add(&out, "\r\n", 2);
		}
		send_all(fd, out.p + out.off, buf_avail(&out));
		out.off = out.len = 0;
		if (buf_read(&in, fd) == 0)
			return (3);
		while (buf_avail(&in) > 0 && (e = memmem(s = in.p + in.off, buf_avail(&in),
		    "\r\n", 2)) != NULL) {
			if (strncmp(s, "INSERTED", 8) != 0) {
				fprintf(stderr, "bs_bench fill: %.*s\n", (int)(e - s), s);
				return (3);
			}
			ok++;
			in.off += (size_t)(e + 2 - s);
		}
	}
	printf("submitted=%lu\n", ok);
	buf_free(&in);
	buf_free(&out);
	close(fd);
	return (0);
}

int
main(int argc, char **argv)
{
	prctl(PR_SET_TIMERSLACK, 1UL);
	if (argc >= 3 && strcmp(argv[1], "worker") == 0)
		return (worker(argv[2], argc > 3 && strcmp(argv[3], "spin") == 0));
	if (argc >= 4 && strcmp(argv[1], "tput") == 0)
		return (client(argv[2], strtoul(argv[3], NULL, 10),
		    argc > 4 ? strtoul(argv[4], NULL, 10) : 4096, 0, 0,
		    argc > 5 ? argv[5] : NULL));
	if (argc >= 4 && strcmp(argv[1], "fill") == 0)
		return (fill(argv[2], strtoul(argv[3], NULL, 10)));
	if (argc >= 5 && strcmp(argv[1], "lat") == 0) {
		double		rate = atof(argv[3]), warm = argc > 5 ? atof(argv[5]) : 0.5;
		unsigned long	nwarm = (unsigned long)(rate * warm);

		return (client(argv[2], nwarm + (unsigned long)(rate * atof(argv[4])), 0,
		    rate, nwarm, NULL));
	}
	fprintf(stderr, "usage: bs_bench worker ADDR [echo|spin] | tput ADDR N [WINDOW] "
	    "[TEXT] | fill ADDR N | lat ADDR RATE SECONDS [WARMUP]\n");
	return (64);
}
