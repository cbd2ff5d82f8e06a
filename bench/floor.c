/*
 * floor.c: the floor for jobpool's figures. A minimal relay of the same messages
 * through the same process shape as jobpoold, with no queueing logic:
 *
 *   client --Unix socket, PROTOCOL.md subset--> master --pipes, 16-byte frames--> N workers
 *          <----- OK / RESULT ------------------ master <----- result frames --------
 *
 * The master speaks just enough of the client protocol for libjobpool's pipelined API
 * (SUBMIT ... wait, PING, QUIT), hands every job at once to the next worker round-robin
 * (no queue, no priorities, no batching policy, no job table beyond id -> connection),
 * and relays results back. Reads and writes are batched the simple way: everything a
 * read brought is parsed, and every buffer is written once per poll round. Workers run
 * the echo handler (or spin, "N X", the same loop as jobpoold's) and write their
 * results after each read's worth of jobs, like jobpoold's workers.
 *
 * So jpbench and jplat run against it unchanged, and every jobpool figure can be read
 * as a fraction of what the machine does through this shape.
 *
 *   floor SOCKET [WORKERS] [echo|spin]
 * Runs until SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "benchutil.h"

#define HDR	16
#define MAXCONN	64
#define MAXW	64
#define IDMASK	((1u << 22) - 1)	/* in-flight jobs are far fewer than 4M */

struct fhdr {
	uint32_t	len;
	uint8_t		type, status;
	uint16_t	flags;
	uint64_t	id;
};

static volatile sig_atomic_t	stop;
static int			spin_mode;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
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

static void
put_hdr(struct buf *b, uint8_t type, uint8_t status, uint64_t id, uint32_t len)
{
	struct fhdr	h = { len, type, status, 0, id };

	buf_add(b, &h, HDR);
}

/* The worker: a blocking loop over its job pipe (in) and result pipe (out). */
static void
worker_main(int in, int out)
{
	struct buf	ib = { 0 }, ob = { 0 };
	char		tmp[64];

	for (;;) {
		ssize_t	n = buf_read(&ib, in);

		if (n == 0)
			_exit(0);
		while (buf_avail(&ib) >= HDR) {
			struct fhdr	h;

			memcpy(&h, ib.p + ib.off, HDR);
			if (buf_avail(&ib) < HDR + h.len)
				break;
			if (spin_mode) {
				unsigned long long	nn = 0, x = 0;
				char			s[64];
				size_t			l = h.len < 63 ? h.len : 63;
				int			k;

				memcpy(s, ib.p + ib.off + HDR, l);
				s[l] = 0;
				sscanf(s, "%llu %llu", &nn, &x);
				k = snprintf(tmp, sizeof tmp, "%llu", spin(nn, x));
				put_hdr(&ob, 4, 0, h.id, (uint32_t)k);
				buf_add(&ob, tmp, (size_t)k);
			} else {
				put_hdr(&ob, 4, 0, h.id, h.len);
				buf_add(&ob, ib.p + ib.off + HDR, h.len);
			}
			ib.off += HDR + h.len;
		}
		if (buf_write(&ob, out) != 0)
			_exit(3);
	}
}

struct conn {
	int		fd;
	struct buf	in, out;
	int		closing;
};

int
main(int argc, char **argv)
{
	struct sockaddr_un	 sa = { .sun_family = AF_UNIX };
	struct conn		 conns[MAXCONN];
	struct buf		 wout[MAXW], win[MAXW];
	int			 wjob[MAXW], wres[MAXW];
	uint8_t			*owner;
	struct pollfd		 pfd[1 + MAXW + MAXCONN];
	int			 nw = argc > 2 ? atoi(argv[2]) : 2, lfd, i, rr = 0;
	uint64_t		 next_id = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: floor SOCKET [WORKERS] [echo|spin]\n");
		return (64);
	}
	spin_mode = argc > 3 && strcmp(argv[3], "spin") == 0;
	if (nw < 1 || nw > MAXW)
		nw = 2;
	signal(SIGPIPE, SIG_IGN);
	owner = xmalloc(IDMASK + 1);
	memset(conns, 0, sizeof conns);
	for (i = 0; i < MAXCONN; i++)
		conns[i].fd = -1;
	for (i = 0; i < nw; i++) {
		int	jp[2], rp[2];
		pid_t	pid;

		if (pipe2(jp, O_CLOEXEC) != 0 || pipe2(rp, O_CLOEXEC) != 0)
			die("pipe");
		fcntl(jp[1], F_SETPIPE_SZ, 1 << 20);
		fcntl(rp[1], F_SETPIPE_SZ, 1 << 20);
		if ((pid = fork()) < 0)
			die("fork");
		if (pid == 0) {
			int	k;

			for (k = 0; k <= i; k++)
				if (k < i) {
					close(wjob[k]);
					close(wres[k]);
				}
			close(jp[1]);
			close(rp[0]);
			worker_main(jp[0], rp[1]);
		}
		close(jp[0]);
		close(rp[1]);
		wjob[i] = jp[1];
		wres[i] = rp[0];
		fcntl(wjob[i], F_SETFL, O_NONBLOCK);
		fcntl(wres[i], F_SETFL, O_NONBLOCK);
		memset(&wout[i], 0, sizeof wout[i]);
		memset(&win[i], 0, sizeof win[i]);
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
	unlink(sa.sun_path);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0)
		die("listen");
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	while (!stop) {
		int	np = 0, wbase, cbase, ci;

		pfd[np++] = (struct pollfd){ lfd, POLLIN, 0 };
		wbase = np;
		for (i = 0; i < nw; i++)
			pfd[np++] = (struct pollfd){ wres[i], POLLIN |
			    (buf_avail(&wout[i]) ? 0 : 0), 0 };
		cbase = np;
		for (i = 0; i < MAXCONN; i++) {
			if (conns[i].fd < 0)
				continue;
			pfd[np++] = (struct pollfd){ conns[i].fd, POLLIN |
			    (buf_avail(&conns[i].out) ? POLLOUT : 0), 0 };
		}
		/* Worker job pipes with pending output. */
		for (i = 0; i < nw; i++)
			if (buf_avail(&wout[i]))
				pfd[np++] = (struct pollfd){ wjob[i], POLLOUT, 0 };
		if (poll(pfd, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (pfd[0].revents & POLLIN) {
			int	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			for (i = 0; fd >= 0 && i < MAXCONN; i++)
				if (conns[i].fd < 0) {
					conns[i].fd = fd;
					conns[i].closing = 0;
					fd = -1;
				}
			if (fd >= 0)
				close(fd);
		}
		/* Results from workers -> RESULT to the owning connection. */
		for (i = 0; i < nw; i++) {
			struct buf	*b = &win[i];

			if (!(pfd[wbase + i].revents & (POLLIN | POLLHUP)))
				continue;
			while (buf_read(b, wres[i]) > 0)
				;
			while (buf_avail(b) >= HDR) {
				struct fhdr	h;
				struct conn	*c;
				char		line[80];
				int		k;

				memcpy(&h, b->p + b->off, HDR);
				if (buf_avail(b) < HDR + h.len)
					break;
				c = &conns[owner[h.id & IDMASK]];
				if (c->fd >= 0) {
					k = snprintf(line, sizeof line, "RESULT %llu ok %u\n",
					    (unsigned long long)h.id, h.len);
					buf_reserve(&c->out, (size_t)k + h.len + 1);
					memcpy(c->out.p + c->out.len, line, (size_t)k);
					memcpy(c->out.p + c->out.len + k, b->p + b->off + HDR, h.len);
					c->out.len += (size_t)k + h.len;
					c->out.p[c->out.len++] = '\n';
				}
				b->off += HDR + h.len;
			}
		}
		/* Requests from clients -> frames to workers, OK to the client. */
		for (ci = cbase; ci < np; ci++) {
			struct conn	*c = NULL;
			ssize_t		 n;

			for (i = 0; i < MAXCONN; i++)
				if (conns[i].fd == pfd[ci].fd) {
					c = &conns[i];
					break;
				}
			if (c == NULL || !(pfd[ci].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = buf_read(&c->in, c->fd);
			if (n == 0) {
				close(c->fd);
				c->fd = -1;
				free(c->in.p);
				free(c->out.p);
				memset(&c->in, 0, sizeof c->in);
				memset(&c->out, 0, sizeof c->out);
				continue;
			}
			for (;;) {
				char		*s = c->in.p + c->in.off;
				char		*nl = memchr(s, '\n', buf_avail(&c->in));
				unsigned long	 size;
				char		 line[48], *q;
				int		 k;

				if (nl == NULL)
					break;
				if (strncmp(s, "SUBMIT ", 7) == 0) {
					q = memchr(s + 7, ' ', (size_t)(nl - s - 7));
					if (q == NULL)
						break;
					size = strtoul(q + 1, NULL, 10);
					if ((size_t)(nl + 1 - s) + size + 1 > buf_avail(&c->in))
						break;
					owner[next_id & IDMASK] = (uint8_t)(c - conns);
					put_hdr(&wout[rr], 1, 0, next_id, (uint32_t)size);
					buf_add(&wout[rr], nl + 1, size);
					rr = (rr + 1) % nw;
					k = snprintf(line, sizeof line, "OK %llu\n",
					    (unsigned long long)next_id++);
					buf_add(&c->out, line, (size_t)k);
					c->in.off += (size_t)(nl + 1 - s) + size + 1;
				} else {
					if (strncmp(s, "PING", 4) == 0)
						buf_add(&c->out, "OK pong\n", 8);
					else if (strncmp(s, "QUIT", 4) == 0)
						buf_add(&c->out, "OK bye\n", 7);
					else
						buf_add(&c->out, "ERR proto unsupported by floor\n", 31);
					c->in.off += (size_t)(nl + 1 - s);
				}
			}
		}
		for (i = 0; i < nw; i++)
			if (buf_avail(&wout[i]))
				buf_write(&wout[i], wjob[i]);
		for (i = 0; i < MAXCONN; i++)
			if (conns[i].fd >= 0 && buf_avail(&conns[i].out))
				buf_write(&conns[i].out, conns[i].fd);
	}
	for (i = 0; i < nw; i++)
		close(wjob[i]);
	while (wait(NULL) > 0)
		;
	unlink(sa.sun_path);
	for (i = 0; i < nw; i++) {
		buf_free(&wout[i]);
		buf_free(&win[i]);
	}
	for (i = 0; i < MAXCONN; i++)
		if (conns[i].fd >= 0) {
			close(conns[i].fd);
			buf_free(&conns[i].in);
			buf_free(&conns[i].out);
		}
	free(owner);
	return (0);
}
