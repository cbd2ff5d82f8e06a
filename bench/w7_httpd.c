/*
 * w7_httpd.c: W7's HTTP server (bench/w7_fetch.sh). HTTP/1.1 on 127.0.0.1, kept
 * alive, each response ("ok") sent a fixed delay after its request arrived: a server
 * that takes DELAY_MS to answer, as a remote API would, and that costs next to no CPU
 * itself, so that it is never what bounds the clients measured against it.
 *
 *   w7_httpd PORTFILE [DELAY_MS]     (default 5)
 *
 * One thread, epoll, and one timerfd: every response waits the same delay, so those
 * due are a FIFO in arrival order. SIGTERM or SIGINT ends it, printing
 * "requests=N connections=N cpu_s=S" on stderr.
 */

#define _GNU_SOURCE

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXFD		65536
#define BUF		8192
#define QMAX		(1 << 20)

struct conn {
	char		buf[BUF];
	size_t		len;
	uint32_t	gen;	/* bumped at close: a response due for an old one is dropped */
	int		open;
};

struct due {
	uint64_t	at_ns;
	int		fd;
	uint32_t	gen;
};

static struct conn		*conns;
static struct due		*q;
static size_t			 qhead, qtail;	/* ring */
static volatile sig_atomic_t	 stop;
static unsigned long long	 nreq, nconn;

static void
on_signal(int sig)
{
	stop = 1;
}

static uint64_t
mono_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void
arm(int tfd)
{
	struct itimerspec	its;

	memset(&its, 0, sizeof its);
	if (qhead != qtail) {
		its.it_value.tv_sec = (time_t)(q[qhead].at_ns / 1000000000ULL);
		its.it_value.tv_nsec = (long)(q[qhead].at_ns % 1000000000ULL);
	}
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
close_conn(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	conns[fd].open = 0;
	conns[fd].len = 0;
	conns[fd].gen++;
}

/* Read what fd sent; each whole request gets a response due after delay. */
static void
on_read(int ep, int tfd, int fd, uint64_t delay_ns)
{
	struct conn	*c = &conns[fd];
	char		*end;
	ssize_t		 n;
	size_t		 used;
	int		 was_empty;

	for (;;) {
		n = read(fd, c->buf + c->len, BUF - c->len);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			close_conn(ep, fd);
			return;
		}
		if (n < 0)
			break;
		c->len += (size_t)n;
		if (c->len == BUF)
			break;
	}
	used = 0;
	while ((end = memmem(c->buf + used, c->len - used, "\r\n\r\n", 4)) != NULL) {
		was_empty = qhead == qtail;
		if (((qtail + 1) & (QMAX - 1)) == qhead) {
			fprintf(stderr, "w7_httpd: too many pending responses\n");
			exit(1);
		}
		q[qtail] = (struct due){ mono_ns() + delay_ns, fd, c->gen };
		qtail = (qtail + 1) & (QMAX - 1);
		nreq++;
		if (was_empty)
			arm(tfd);
		used = (size_t)(end + 4 - c->buf);
	}
	if (used > 0) {
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	} else if (c->len == BUF)
		close_conn(ep, fd);	/* a request header too large */
}

/* Send every response that is due. */
static void
on_timer(int tfd)
{
	static const char	resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				    "Content-Type: text/plain\r\n\r\nok";
	uint64_t		now = mono_ns(), x;

	(void)read(tfd, &x, sizeof x);
	while (qhead != qtail && q[qhead].at_ns <= now) {
		if (conns[q[qhead].fd].open && conns[q[qhead].fd].gen == q[qhead].gen)
			(void)write(q[qhead].fd, resp, sizeof resp - 1);
		qhead = (qhead + 1) & (QMAX - 1);
	}
	arm(tfd);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sa;
	struct epoll_event	 ev, evs[256];
	struct rusage		 ru;
	socklen_t		 sl = sizeof sa;
	uint64_t		 delay_ns;
	FILE			*f;
	int			 ls, ep, tfd, n, i, fd, one = 1;
	char			 tmp[4096];

	if (argc < 2) {
		fprintf(stderr, "usage: w7_httpd PORTFILE [DELAY_MS]\n");
		return (64);
	}
	delay_ns = (uint64_t)(argc > 2 ? atof(argv[2]) : 5.0) * 1000000ULL;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if ((conns = calloc(MAXFD, sizeof *conns)) == NULL ||
	    (q = calloc(QMAX, sizeof *q)) == NULL)
		return (1);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 4096) != 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
		perror("w7_httpd: listen");
		return (1);
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
	if ((f = fopen(tmp, "w")) == NULL)
		return (1);
	fprintf(f, "%d\n", ntohs(sa.sin_port));
	fclose(f);
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = ls;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	rename(tmp, argv[1]);
	while (!stop) {
		if ((n = epoll_wait(ep, evs, 256, -1)) < 0)
			continue;
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == ls) {
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK |
				    SOCK_CLOEXEC)) >= 0) {
					if (fd >= MAXFD) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					    sizeof one);
					conns[fd].open = 1;
					conns[fd].len = 0;
					nconn++;
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
			} else if (fd == tfd)
				on_timer(tfd);
			else
				on_read(ep, tfd, fd, delay_ns);
		}
	}
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "requests=%llu connections=%llu cpu_s=%.3f\n", nreq, nconn,
	    ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return (0);
}
