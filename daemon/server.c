/*
 * server.c: the listening socket and the client connections.
 *
 * Each connection is a bufferevent. Requests are decoded straight out of its input
 * buffer (proto.c) and answered in order into its output buffer. Two things stop a
 * connection from reading, and so push back on its producer through the kernel:
 *   - a SUBMIT to a full queue: the request stays unconsumed in the input buffer and the
 *     connection waits on the queue's blocked list until the queue drains below its low
 *     watermark (server_unblock);
 *   - more than max_output bytes of replies that the client has not read.
 * While producers wait on a queue, its room is theirs, oldest first: another
 * connection's SUBMIT waits behind them (with nonblock, ERR busy).
 *
 * A connection is closed for its replies only when it does not read them: past
 * SERVER_OUTPUT_HARD x max_output unwritten, and its socket has taken none of them for
 * output_timeout (conn_stall_cb). How much waits is not the client's doing: a
 * burst of results that fall due together, or one result larger than the limit, is
 * written as fast as the client reads it.
 *
 * A connection is reference-counted: each job it waits for holds a reference, so its
 * memory outlives the socket until those jobs are answered (into nowhere).
 *
 * Replies are written to the socket at the end of the event-loop pass that made them
 * (server_flush_cb), straight from the output buffer: one write for all of a pass's
 * replies, and no round through epoll to learn that an idle socket is writable
 * (bench/README.md, "The server's write path").
 * Only when the socket does not take it all does the bufferevent's write event wait for
 * room, and write the rest, as bufferevents do.
 *
 * Crowds. At most max_connections clients are connected at once, at most
 * max_connections_per_uid of them from one uid; root and the daemon's own user may use
 * reserved_connections more, so that other users' connections can never keep an
 * operator out. How many fit is also bounded by RLIMIT_NOFILE (server_limits): past
 * it a client gets ERR busy at once rather than waiting in the backlog, and when
 * accept() runs out of descriptors anyway a spare one is given up to say so. A
 * connection the daemon waits on is closed after a time: an incomplete request
 * after request_timeout from its first byte (slowloris), nothing at all (no bytes
 * read, no replies read) after idle_timeout. A connection that waits on the daemon
 * (a job it waits for, a full queue, replies held for the journal) is never idle.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/resource.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <systemd/sd-daemon.h>

#include "jobpoold.h"
#include "events.h"
#include "idem.h"
#include "journal.h"
#include "log.h"
#include "priv.h"
#include "proto.h"

#define SERVER_READ_MAX		(256 * 1024)
#define SERVER_BACKLOG		1024
#define SERVER_OUTPUT_HARD	4	/* unread replies beyond 4 x max_output, none taken
					   for output_timeout: close */
/*
 * A body more than this larger than max_payload is not read and thrown away (ERR
 * toolarge, the connection goes on): the connection is closed instead. Skipping 64 MiB
 * costs some tens of milliseconds, and jobpoolctl map sends lines of up to 64 MiB
 * (MAP_LINE_MAX), each a failed line when too large; a declared size of gigabytes is a
 * client that lost its way.
 */
#define SERVER_SKIP_MAX		(64 * 1024 * 1024)
/*
 * Descriptors the master needs besides its connections: stdio, the listener, the event
 * loop (epoll, signal pair), the journal (directory, lock, file, the next file while it
 * rotates, eventfd), the notify socket, the spare for refusals, and room for what comes
 * and goes (passwd lookups, a STATS read of /proc). Each worker takes two pipes, and a
 * worker being started or rolled two more.
 */
#define SERVER_FDS_FIXED	32
#define SERVER_FDS_WORKER	2
#define SERVER_BUSY		"ERR busy "	/* server_admit's refusals */

static struct evconnlistener	*listener;
static char			*listen_path;	/* unlinked at exit if we made it */
static char			*made_dir;	/* the socket's directory, if we created it */
static TAILQ_HEAD(, conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);
static uint32_t			 nconns;
static uint64_t			 next_conn_id = 1;

/*
 * The limits in force (server_limits): max_connections, cut to what RLIMIT_NOFILE
 * leaves, and the reserved slots; how many of the reserved are in use.
 */
static uint32_t			 conn_max;
static uint32_t			 conn_reserve;
static uint32_t			 nreserved;
static int			 spare_fd = -1;	/* given up to refuse a client out of descriptors */

/*
 * Connections per uid. A host has few users that may reach the socket, so a short
 * array searched from the front does; an entry goes when its last connection does.
 */
struct uid_count {
	uid_t		uid;
	uint32_t	n;
};
static struct uid_count		*uid_counts;
static uint32_t			 nuid_counts, capuid_counts;

/*
 * The queues whose blocked connections are being let go now, innermost first (on the
 * stack of server_unblock). Letting one queue's producers go can make room in another
 * queue (a CANCEL they had pipelined): that queue's producers go at once too, but a
 * queue already being unblocked is not entered again.
 */
struct unblocking {
	struct queue		*q;
	struct unblocking	*up;
};
static struct unblocking	*unblocking;

static TAILQ_HEAD(, conn)	 flush_conns = TAILQ_HEAD_INITIALIZER(flush_conns);
static struct event		*flush_ev;

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_process(struct conn *);
static void	conn_close(struct conn *);
static void	conn_stall_cb(evutil_socket_t, short, void *);
static void	conn_stall_arm(struct conn *);
static int	conn_stalling(struct conn *);
static void	server_flush_cb(evutil_socket_t, short, void *);
static void	conn_timer_cb(evutil_socket_t, short, void *);
static size_t	conn_unsent(struct conn *);

/*
 * mkdir -p for the socket's directory; private (0700) unless we are root. The directory
 * must be ours, root's, or (started as root) that of the user we drop to, which owns
 * the directory we made on an earlier start.
 */
static int
server_mkdirs(const char *path, const char *user, char **cause)
{
	char		*copy, *dir, *p;
	struct stat	 sb;
	mode_t		 mode = geteuid() == 0 ? 0755 : 0700;

	if ((copy = strdup(path)) == NULL)
		return (-1);
	dir = dirname(copy);
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(dir, mode) == -1) {
			if (errno != EEXIST) {
				if (asprintf(cause, "mkdir %s: %s", dir,
				    strerror(errno)) == -1)
					*cause = NULL;
				free(copy);
				return (-1);
			}
		} else if (c == '\0') {
			free(made_dir);
			made_dir = strdup(dir);
		}
		*p = c;
		if (c == '\0')
			break;
	}
	/* The directory that holds the socket must be ours, or root's. */
	if (lstat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    (sb.st_uid != geteuid() && sb.st_uid != 0 &&
	    !(geteuid() == 0 && user != NULL && priv_is_user(user, sb.st_uid)))) {
		if (asprintf(cause, "%s is not a directory owned by uid %ld",
		    dir, (long)geteuid()) == -1)
			*cause = NULL;
		free(copy);
		return (-1);
	}
	free(copy);
	return (0);
}

/* Bind the configured Unix socket, replacing a stale one but never a live one. */
static int
server_bind(const struct config *cf, char **cause)
{
	struct sockaddr_un	 sun;
	int			 fd = -1, probe;
	mode_t			 old;
	const char		*call = "socket";

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof sun.sun_path, "%s",
	    cf->socket_path) >= sizeof sun.sun_path) {
		if (asprintf(cause, "socket path %s is too long", cf->socket_path) == -1)
			*cause = NULL;
		return (-1);
	}
	if (server_mkdirs(cf->socket_path, cf->user, cause) != 0)
		return (-1);
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1) {
		if (connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
			close(probe);
			if (asprintf(cause, "socket %s is in use: another jobpoold is "
			    "running", cf->socket_path) == -1)
				*cause = NULL;
			return (-1);
		}
		close(probe);
	}
	(void)unlink(cf->socket_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		goto fail;
	call = "bind";
	/* Bind with a tight umask; the configured mode is applied right after. */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		umask(old);
		goto fail;
	}
	umask(old);
	call = "chmod";
	if (chmod(cf->socket_path, cf->socket_mode) == -1)
		goto fail;
	if (priv_socket_owner(cf, cf->socket_path, cause) != 0) {
		close(fd);
		(void)unlink(cf->socket_path);
		return (-1);
	}
	call = "listen";
	if (listen(fd, SERVER_BACKLOG) == -1)
		goto fail;
	listen_path = strdup(cf->socket_path);
	return (fd);
fail:
	if (asprintf(cause, "socket %s: %s: %s", cf->socket_path, call,
	    strerror(errno)) == -1)
		*cause = NULL;
	if (fd != -1)
		close(fd);
	return (-1);
}

/* A connection refused while it was being set up: nothing else knows of it yet. */
static void
conn_discard(struct conn *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	bufferevent_free(c->bev);
	if (c->hold != NULL)
		evbuffer_free(c->hold);
	free(c->marks);
	free(c);
}

/*
 * Replies were added to c's output: write them at the end of this pass. The list holds
 * a reference, so a connection closed meanwhile is still there to be skipped.
 */
static void
conn_out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn	*c = arg;

	(void)b;
	if (c->closed)
		return;
	/* Only a write takes bytes out of the output: the client is reading. */
	if (info->n_deleted > 0)
		c->wrote_ms = now_ms();
	if (info->n_added == 0 || c->flushq)
		return;
	c->flushq = 1;
	c->refs++;
	TAILQ_INSERT_TAIL(&flush_conns, c, fentry);
	event_active(flush_ev, EV_TIMEOUT, 0);
}

/*
 * Write what c's output holds, now. If the socket takes it all, c hears of it as the
 * bufferevent would tell it (conn_write_cb); if not (full, or an error), the
 * bufferevent waits for the socket and writes the rest, or reports the error.
 */
static void
conn_flush(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	int		 n;

	if (evbuffer_get_length(out) == 0 ||
	    (bufferevent_get_enabled(c->bev) & EV_WRITE))
		return;		/* nothing, or the bufferevent waits for room already */
	/* A socket bufferevent keeps the front of its output frozen for itself. */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(c->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) > 0) {
		/* The socket is full: from now on, it is the client that is behind. */
		c->wrote_ms = now_ms();
		bufferevent_enable(c->bev, EV_WRITE);
		if (conn_stalling(c))
			conn_stall_arm(c);
		return;
	}
	if (n > 0)
		conn_write_cb(c->bev, c);
}

static void
server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c;
	int		 closed;

	(void)fd;
	(void)what;
	(void)arg;
	while ((c = TAILQ_FIRST(&flush_conns)) != NULL) {
		TAILQ_REMOVE(&flush_conns, c, fentry);
		c->flushq = 0;
		/*
		 * The list's reference goes first (conn_maybe_close() counts every other
		 * one as a job still to answer); an open connection keeps its own.
		 */
		closed = c->closed;
		/* Never true; it also tells the static analyzer this is not the last one. */
		if (!closed && c->refs < 2)
			fatalx("connection %llu: flushed without its own reference",
			    (unsigned long long)c->id);
		conn_unref(c);
		if (!closed)
			conn_flush(c);
	}
}

/* The count of uid's connections, added if need be; NULL out of memory. */
static struct uid_count *
uid_count_get(uid_t uid, int add)
{
	struct uid_count	*u;
	uint32_t		 i, cap;

	for (i = 0; i < nuid_counts; i++) {
		if (uid_counts[i].uid == uid)
			return (&uid_counts[i]);
	}
	if (!add)
		return (NULL);
	if (nuid_counts == capuid_counts) {
		cap = capuid_counts != 0 ? capuid_counts * 2 : 8;
		if ((u = reallocarray(uid_counts, cap, sizeof *u)) == NULL)
			return (NULL);
		uid_counts = u;
		capuid_counts = cap;
	}
	u = &uid_counts[nuid_counts++];
	u->uid = uid;
	u->n = 0;
	return (u);
}

/* One connection of uid fewer. */
static void
uid_count_drop(uid_t uid)
{
	struct uid_count	*u;

	if ((u = uid_count_get(uid, 0)) == NULL || --u->n > 0)
		return;
	*u = uid_counts[--nuid_counts];
}

/*
 * Say why a client is refused, rate-limited: a crowd knocking costs one line a second
 * and a sum. The refusal itself is a line on the socket.
 */
static void	server_refused_sum(unsigned long, unsigned long long);
static struct log_limit	 refused_limit = { 1, 10000, server_refused_sum, 0, 0, 0, 0 };

static void
server_refused_sum(unsigned long held, unsigned long long span_ms)
{
	log_info("%lu more connections were refused in the last %llu s (not logged one "
	    "by one: at most one line in 10 s)", held, (span_ms + 999) / 1000);
}

/*
 * May a client of uid connect now? NULL if it may, in a reserved slot if *reserved;
 * or the ERR line to refuse it with. Root and the daemon's own user may go beyond
 * max_connections, and beyond their own max_connections_per_uid, into the reserved
 * slots: whatever other users hold, an operator gets in.
 */
static const char *
server_admit(uid_t uid, int *reserved)
{
	static char	 why[160];
	struct uid_count *u = uid_count_get(uid, 0);
	uint32_t	 per_uid = master_config->max_connections_per_uid;
	uint32_t	 n_uid = u != NULL ? u->n : 0;
	int		 privileged = uid == 0 || uid == geteuid();

	*reserved = 0;
	if (n_uid < per_uid && nconns - nreserved < conn_max)
		return (NULL);
	if (privileged && nreserved < conn_reserve) {
		*reserved = 1;
		return (NULL);
	}
	if (n_uid >= per_uid) {
		snprintf(why, sizeof why, SERVER_BUSY "too many connections from uid "
		    "%ld (max_connections_per_uid is %u)\n", (long)uid, per_uid);
	} else if (conn_max < master_config->max_connections) {
		snprintf(why, sizeof why, SERVER_BUSY "too many connections (the "
		    "daemon's descriptor limit leaves room for %u of max_connections "
		    "%u)\n", conn_max, master_config->max_connections);
	} else
		snprintf(why, sizeof why, SERVER_BUSY "too many connections "
		    "(max_connections)\n");
	return (why);
}

/*
 * Refuse a client with reply (one line, server_admit's), and say so in the log,
 * rate-limited.
 */
static void
server_refuse(int fd, const struct priv_peer *peer, const char *reply)
{
	if (log_limit_pass(&refused_limit))
		log_warnx("refusing a connection from pid %ld uid %ld: %.*s (%u open, %u "
		    "of them reserved)", (long)peer->pid, (long)peer->uid,
		    (int)strcspn(reply + sizeof SERVER_BUSY - 1, "\n"),
		    reply + sizeof SERVER_BUSY - 1, nconns, nreserved);
	(void)send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Arm c's timer to fire at ms (it may fire later: the timer callback looks again). */
static void
conn_timer_arm(struct conn *c, uint64_t at, uint64_t now)
{
	struct timeval	tv;
	uint64_t	in = at > now ? at - now : 0;

	if (c->timer == NULL)
		return;
	tv.tv_sec = (time_t)(in / 1000);
	tv.tv_usec = (suseconds_t)(in % 1000) * 1000;
	if (evtimer_add(c->timer, &tv) == 0)
		c->timer_at = at;
}

/* The sooner of c's two time limits from now, as a time to look again; 0: none. */
static uint64_t
conn_timer_next(uint64_t now)
{
	uint32_t	idle = master_config->idle_timeout_ms;
	uint32_t	req = master_config->request_timeout_ms;

	if (idle == 0 && req == 0)
		return (0);
	if (idle == 0 || (req != 0 && req < idle))
		return (now + req);
	return (now + idle);
}

/* A new client. */
static void
server_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct conn		*c;
	struct priv_peer	 peer;
	struct uid_count	*u;
	char			*why = NULL;
	const char		*full;
	int			 reserved;
	uint64_t		 now;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		log_warnx("accept: out of memory; refusing a connection");
		close(fd);
		return;
	}
	c->bev = bufferevent_socket_new(master_base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("accept: bufferevent_socket_new failed for fd %d; refusing a "
		    "connection", (int)fd);
		close(fd);
		free(c);
		return;
	}
	c->id = next_conn_id++;
	c->refs = 1;
	/* Room for a few marks from the start: the first never waits for memory. */
	if (journal_on && ((c->hold = evbuffer_new()) == NULL ||
	    (c->marks = calloc(4, sizeof *c->marks)) == NULL)) {
		log_warnx("accept: out of memory; refusing a connection");
		conn_discard(c);
		return;
	}
	c->capmarks = c->marks != NULL ? 4 : 0;
	/* The allow lists; priv_peer_check fails closed. The log is rate-limited. */
	if (priv_peer_check(fd, &peer, &why) != 0) {
		static const char denied[] = "ERR denied uid is not in allow_users "
		    "or allow_groups\n";
		static const char nocred[] = "ERR denied the daemon cannot read the "
		    "credentials of this connection\n";
		const char *reply = peer.uid == (uid_t)-1 ? nocred : denied;

		priv_peer_refused(&peer, why);
		free(why);
		(void)send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
		conn_discard(c);
		return;
	}
	c->pid = peer.pid;
	c->uid = peer.uid;
	/* The jobs it submits are this uid's (-1: the table is full; SUBMIT says so). */
	c->owner = priv_owner_index(peer.uid);
	/* Counted by uid: the credentials come first. */
	if ((full = server_admit(c->uid, &reserved)) != NULL) {
		server_refuse(fd, &peer, full);
		conn_discard(c);
		return;
	}
	if ((u = uid_count_get(c->uid, 1)) == NULL ||
	    evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_cb, c) == NULL ||
	    (conn_timer_next(0) != 0 &&
	    (c->timer = evtimer_new(master_base, conn_timer_cb, c)) == NULL)) {
		log_warnx("accept: out of memory; refusing a connection");
		conn_discard(c);
		return;
	}
	u->n++;
	c->reserved = reserved;
	nreserved += reserved;
	now = now_ms();
	c->active_ms = now;
	conn_timer_arm(c, conn_timer_next(now), now);
	bufferevent_set_max_single_read(c->bev, SERVER_READ_MAX);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, master_config->max_output / 2, 0);
	/* EV_WRITE only while the socket is full: server_flush_cb writes the rest. */
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	log_debug("connection %llu: pid %ld uid %ld%s", (unsigned long long)c->id,
	    (long)c->pid, (long)c->uid, reserved ? " (a reserved slot)" : "");
}

static struct event	*accept_pause_ev;	/* re-enables accepting after EMFILE */
static uint64_t		 accept_warned_ms;

/* Keep a descriptor in hand for refusing clients when accept() has none (EMFILE). */
static void
server_spare_open(void)
{
	if (spare_fd == -1)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * accept() has no descriptor left: give up the spare, and with it accept each client
 * waiting in the backlog (up to a bound per call) to tell it ERR busy and close it,
 * instead of leaving it to hang there. Then take the spare back.
 */
static void
server_refuse_waiting(int lfd)
{
	static const char busy[] = "ERR busy the daemon is out of file descriptors "
	    "(RLIMIT_NOFILE); try again later\n";
	int	fd, n;

	close(spare_fd);
	spare_fd = -1;
	for (n = 0; n < 64; n++) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			break;
		(void)send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
	}
	server_spare_open();
}

static void
server_accept_resume_cb(evutil_socket_t fd, short events, void *arg)
{
	if (listener != NULL)
		evconnlistener_enable(listener);
}

/*
 * accept() failed. Out of descriptors or memory, the listening socket stays readable:
 * stop accepting for a moment instead of spinning, and say so (at most every 10 s).
 */
static void
server_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct timeval	tv = { 0, 100 * 1000 };
	int		err = EVUTIL_SOCKET_ERROR();
	uint64_t	now = now_ms();

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		log_warnx("accept: %s", strerror(err));
		return;
	}
	if (accept_warned_ms == 0 || now - accept_warned_ms >= 10000) {
		accept_warned_ms = now;
		log_warnx("accept: %s (%u connections open); not accepting for 100 ms%s",
		    strerror(err), nconns, err == EMFILE ? "; raise the descriptor limit "
		    "(LimitNOFILE= in the unit, ulimit -n) or lower max_connections" : "");
	}
	/* Out of descriptors: the spare one lets the waiting clients hear ERR busy. */
	if ((err == EMFILE || err == ENFILE) && spare_fd != -1)
		server_refuse_waiting(evconnlistener_get_fd(l));
	if (accept_pause_ev == NULL &&
	    (accept_pause_ev = evtimer_new(master_base, server_accept_resume_cb,
	    NULL)) == NULL)
		return;
	evconnlistener_disable(l);
	evtimer_add(accept_pause_ev, &tv);
}

/* Listen on the socket systemd passed us, or on the configured path. */
int
server_listen(const struct config *cf, char **cause)
{
	int	fd, n;

	*cause = NULL;
	n = sd_listen_fds(1);
	if (n > 1) {
		if (asprintf(cause, "systemd passed %d sockets; jobpoold takes one", n) == -1)
			*cause = NULL;
		return (-1);
	}
	if (n == 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			if (asprintf(cause, "the socket systemd passed is not a "
			    "listening Unix stream socket") == -1)
				*cause = NULL;
			return (-1);
		}
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
		log_info("listening on the socket passed by systemd");
	} else {
		if ((fd = server_bind(cf, cause)) == -1)
			return (-1);
		log_info("listening on %s", cf->socket_path);
	}
	listener = evconnlistener_new(master_base, server_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (listener == NULL) {
		close(fd);
		if (asprintf(cause, "cannot listen: %s", strerror(errno)) == -1)
			*cause = NULL;
		return (-1);
	}
	evconnlistener_set_error_cb(listener, server_accept_error_cb);
	server_spare_open();
	server_limits(cf);
	if (flush_ev == NULL &&
	    (flush_ev = event_new(master_base, -1, 0, server_flush_cb, NULL)) == NULL) {
		evconnlistener_free(listener);
		listener = NULL;
		if (asprintf(cause, "cannot listen: out of memory") == -1)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

/* The directory of the socket, if jobpoold created it (NULL otherwise). */
const char *
server_made_dir(void)
{
	return (made_dir);
}

/*
 * A graceful stop begins. A socket of our own keeps accepting until the exit, so that
 * a client connecting during the drain is answered (ERR shutdown for a SUBMIT, WAIT and
 * STATUS as before) rather than finding no socket file. systemd's socket is let go
 * now: it stays open in systemd, and new clients wait in it for the next start.
 */
void
server_stop_listener(void)
{
	if (listen_path == NULL)
		server_close_listener();
}

/* Stop accepting; remove the socket file if we made it. */
void
server_close_listener(void)
{
	if (listener != NULL) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	if (accept_pause_ev != NULL) {
		event_free(accept_pause_ev);
		accept_pause_ev = NULL;
	}
	if (spare_fd != -1) {
		close(spare_fd);
		spare_fd = -1;
	}
	if (listen_path != NULL) {
		/* After a privilege drop this may fail; the next start replaces it. */
		if (unlink(listen_path) == -1 && errno != ENOENT)
			log_notice("cannot remove socket %s: %s; the next start replaces "
			    "it", listen_path, strerror(errno));
		free(listen_path);
		listen_path = NULL;
	}
	free(made_dir);
	made_dir = NULL;
}

/* ----- replies ----- */

/*
 * Where c's replies go: its output, or with a journal, the hold buffer while replies
 * wait there for the journal (they must not overtake them) and during a request (which
 * may append a record its reply depends on: conn_seal() decides after it).
 */
static struct evbuffer *
conn_out(struct conn *c)
{
	if (c->hold != NULL && (c->nmarks > 0 || c->in_req))
		return (c->hold);
	return (bufferevent_get_output(c->bev));
}

struct evbuffer *
server_out(struct conn *c)
{
	return (conn_out(c));
}

size_t
server_unsent(struct conn *c)
{
	return (conn_unsent(c));
}

/* Reply bytes not yet written to the socket, held or not. */
static size_t
conn_unsent(struct conn *c)
{
	return (evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (c->hold != NULL ? evbuffer_get_length(c->hold) : 0));
}

static TAILQ_HEAD(, conn)	held_conns = TAILQ_HEAD_INITIALIZER(held_conns);

/*
 * With a journal: what c's hold buffer has now waits until batch is durable. Marks
 * stay in order of batch, so a later reply never overtakes an earlier one: a mark for
 * an older batch than the last joins the last.
 */
static void
conn_hold_until(struct conn *c, uint64_t batch)
{
	struct hold_mark	*m;
	size_t			 len = evbuffer_get_length(c->hold);

	if (c->nmarks > 0 && c->marks[c->nmarks - 1].batch >= batch) {
		c->marks[c->nmarks - 1].len = len;
		return;
	}
	if (c->nmarks == c->capmarks) {
		uint32_t cap = c->capmarks ? c->capmarks * 2 : 4;

		if ((m = reallocarray(c->marks, cap, sizeof *m)) == NULL) {
			/*
			 * Cannot wait precisely: the last mark (there is one, marks start
			 * with room for four) waits for this batch with all that is held.
			 */
			c->marks[c->nmarks - 1].batch = batch;
			c->marks[c->nmarks - 1].len = len;
			return;
		}
		c->marks = m;
		c->capmarks = cap;
	}
	c->marks[c->nmarks].batch = batch;
	c->marks[c->nmarks].len = len;
	c->nmarks++;
	if (!c->held) {
		c->held = 1;
		TAILQ_INSERT_TAIL(&held_conns, c, hentry);
	}
}

/*
 * After a request, with a journal: if it appended records, its replies wait in hold
 * until their batch is durable; if not, they go out now unless earlier ones wait.
 */
static void
conn_seal(struct conn *c, uint64_t seq0)
{
	size_t	len;

	c->in_req = 0;
	if (c->hold == NULL)
		return;		/* closed while the request was handled */
	len = evbuffer_get_length(c->hold);
	if (journal_seq == seq0) {
		if (c->nmarks == 0 && len > 0)
			evbuffer_add_buffer(bufferevent_get_output(c->bev), c->hold);
		return;
	}
	conn_hold_until(c, journal_batch());
}

/*
 * What a reply telling c that j ended (its RESULT, or a STATUS naming a final state)
 * must wait for: the journal batch holding the end's record (journal_job_changed
 * writes it before anyone hears of the end), or 0 without a journal or once that batch
 * is durable. The reply then goes to c's hold buffer and conn_hold_until() marks it.
 */
static uint64_t
conn_end_batch(const struct conn *c, const struct job *j)
{
	uint64_t	batch;

	if (c->hold == NULL || (batch = job_end_batch(j)) <= journal_durable())
		return (0);
	return (batch);
}

static void
conn_unhold(struct conn *c)
{
	if (c->held) {
		TAILQ_REMOVE(&held_conns, c, hentry);
		c->held = 0;
	}
	c->nmarks = 0;
}

static int	conn_maybe_close(struct conn *);

/* The journal has made batches up to batch durable: their replies go out. */
void
server_journal_durable(uint64_t batch)
{
	struct conn	*c, *next;
	struct evbuffer	*out;
	size_t		 n;
	uint32_t	 k, i;

	for (c = TAILQ_FIRST(&held_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, hentry);
		for (k = 0; k < c->nmarks && c->marks[k].batch <= batch; k++)
			;
		if (k == 0)
			continue;
		out = bufferevent_get_output(c->bev);
		if (k == c->nmarks) {
			evbuffer_add_buffer(out, c->hold);
			conn_unhold(c);
		} else {
			n = c->marks[k - 1].len;
			evbuffer_remove_buffer(c->hold, out, n);
			for (i = k; i < c->nmarks; i++) {
				c->marks[i - k] = c->marks[i];
				c->marks[i - k].len -= n;
			}
			c->nmarks -= k;
		}
		(void)conn_maybe_close(c);
	}
}

/*
 * c's socket is full with more than SERVER_OUTPUT_HARD x max_output waiting: judge it
 * once the socket will have taken nothing for output_timeout.
 */
static void
conn_stall_arm(struct conn *c)
{
	struct timeval	tv;
	uint64_t	now = now_ms(), ms = 0;

	if (c->stall_ev == NULL &&
	    (c->stall_ev = evtimer_new(master_base, conn_stall_cb, c)) == NULL)
		return;		/* out of memory: judged at its next reply */
	if (evtimer_pending(c->stall_ev, NULL))
		return;
	if (now - c->wrote_ms < master_config->output_timeout_ms)
		ms = c->wrote_ms + master_config->output_timeout_ms - now;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->stall_ev, &tv);
}

/* Is c's socket full (what it did not take waits for room) with too much unwritten? */
static int
conn_stalling(struct conn *c)
{
	return ((bufferevent_get_enabled(c->bev) & EV_WRITE) &&
	    conn_unsent(c) > SERVER_OUTPUT_HARD * master_config->max_output);
}

/*
 * Past SERVER_OUTPUT_HARD x max_output with a full socket: if the socket has taken
 * none of c's replies for output_timeout, the client has stopped reading; close it, so
 * that the daemon does not hold its replies without bound. A client that reads,
 * however slowly, stays. Runs from its own event, never inside a request, so it may
 * close c at once.
 */
static void
conn_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct evbuffer	*out;
	int		 n = 0;

	(void)fd;
	(void)what;
	if (c->closed || !conn_stalling(c))
		return;		/* caught up; a full socket arms it again */
	out = bufferevent_get_output(c->bev);
	if (now_ms() - c->wrote_ms >= master_config->output_timeout_ms) {
		/*
		 * The socket may take some though it does not poll writable (a Unix
		 * socket does once three quarters of it are free): try once.
		 */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, bufferevent_getfd(c->bev));
		evbuffer_freeze(out, 1);
		if (n <= 0) {
			log_warnx("connection %llu (pid %ld, uid %ld): %zu bytes of "
			    "replies unread, more than %d x max_output, and none taken "
			    "for %u ms (output_timeout); closing it",
			    (unsigned long long)c->id, (long)c->pid, (long)c->uid,
			    conn_unsent(c), SERVER_OUTPUT_HARD,
			    master_config->output_timeout_ms);
			conn_close(c);
			return;
		}
	}
	if (conn_stalling(c))
		conn_stall_arm(c);
	/* As if the bufferevent wrote: resume reading, or close. Last: c may go. */
	if (n > 0 && evbuffer_get_length(out) <= master_config->max_output / 2)
		conn_write_cb(c->bev, c);
}

/*
 * After adding to c's output: past max_output, stop reading its requests until the
 * client catches up. Past SERVER_OUTPUT_HARD times that (results of jobs submitted
 * earlier keep coming while it does not read), see whether the client reads at all
 * (conn_stall_cb). 1 if c stopped reading, 0 if it may go on.
 */
static int
conn_check_output(struct conn *c)
{
	size_t	len;

	if (c->closed)
		return (1);
	len = conn_unsent(c);
	if (len <= master_config->max_output)
		return (c->out_full);
	if (conn_stalling(c))
		conn_stall_arm(c);
	if (!c->out_full) {
		c->out_full = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
	return (1);
}

static void
reply(struct conn *c, const char *s, size_t len)
{
	evbuffer_add(conn_out(c), s, len);
}

/* A reply that is a string literal, whose length the compiler counts. */
#define reply_lit(c, s)	reply((c), "" s, sizeof (s) - 1)

static void
reply_err(struct conn *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ERR <code> <message>: the message on one line. */
static void
reply_err(struct conn *c, const char *code, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;
	char   *p;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* A reply line is printable ASCII: clients treat anything else as garbage. */
	for (p = msg; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
		else if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
	evbuffer_add_printf(conn_out(c), "ERR %s %s\n", code, msg);
}

static void
reply_ok_id(struct conn *c, uint64_t id)
{
	char	buf[32] = "OK ";
	size_t	n = sizeof "OK " - 1;	/* counted by the compiler, not on every SUBMIT */

	n += proto_fmt_u64(buf + n, id);
	buf[n++] = '\n';
	reply(c, buf, n);
}

static const char *
result_word(const struct job *j)
{
	enum job_state	st = j->state;

	if (st == JOB_DEAD)
		st = j->x != NULL && j->x->last_status == JOB_TIMEOUT ? JOB_TIMEOUT :
		    JOB_FAILED;
	switch (st) {
	case JOB_DONE:
		return ("ok");
	case JOB_TIMEOUT:
		return ("timeout");
	case JOB_CANCELLED:
		return ("cancelled");
	default:
		return ("failed");
	}
}

/*
 * RESULT <id> <status> <size>, the body and a newline. id is what the waiter asked
 * for: j's own, or an earlier stage's of j's chain (chain_answer names a stage that
 * failed, and tells a chain cancelled under a stage that succeeded).
 */
void
server_send_result(struct conn *c, struct job *j, uint64_t id)
{
	struct evbuffer	*out;
	char		 buf[96] = "RESULT ", pre[256];
	const char	*w = result_word(j), *cw;
	size_t		 n = sizeof "RESULT " - 1, wl, plen = 0;	/* not strlen(buf): W1 */
	uint32_t	 rlen = job_rlen(j);
	uint64_t	 wait;
	int		 keep = 1;

	if (c->closed)
		return;
	/* Only a stage of a chain, or a job of a queue with a 'then', tells more. */
	if (chain_active != 0 && (j->state != JOB_DONE || (j->x != NULL &&
	    j->x->chain != NULL)) &&
	    (plen = chain_answer(j, &cw, &keep, pre, sizeof pre)) != 0) {
		if (cw != NULL)
			w = cw;
		if (!keep)
			rlen = 0;
	}
	wl = strlen(w);
	c->waited = 1;		/* for the idle timer: the daemon spoke last */
	wait = conn_end_batch(c, j);
	out = wait != 0 ? c->hold : conn_out(c);
	n += proto_fmt_u64(buf + n, id);
	buf[n++] = ' ';
	memcpy(buf + n, w, wl);
	n += wl;
	buf[n++] = ' ';
	n += proto_fmt_u64(buf + n, plen + rlen);
	buf[n++] = '\n';
	evbuffer_add(out, buf, n);
	if (plen > 0)
		evbuffer_add(out, pre, plen);
	if (rlen > 0)
		evbuffer_add(out, job_result(j), rlen);
	evbuffer_add(out, "\n", 1);
	if (wait != 0)
		conn_hold_until(c, wait);
	(void)conn_check_output(c);
}

/* lifecycle listener: a job ended: answer everyone waiting for it. */
void
server_job_changed(const struct job_change *ch)
{
	struct job	*j = ch->j;
	struct waiter	*w, *next;

	for (w = j->waiters; w != NULL; w = next) {
		next = w->next;
		server_send_result(w->conn, j, w->id);
		conn_unref(w->conn);
		free(w);
	}
	j->waiters = NULL;
}

/*
 * A chain went on (chain.c): from's waiters wait for to, each keeping the id it asked
 * for and its reference on its connection.
 */
void
server_waiters_move(struct job *from, struct job *to)
{
	struct waiter	*w;

	while ((w = from->waiters) != NULL) {
		from->waiters = w->next;
		w->next = to->waiters;
		to->waiters = w;
	}
}

/* ----- requests ----- */

enum { REQ_DONE, REQ_BLOCKED };

/* Is c an administrator? Asked once per connection, and again after a reload. */
static int
conn_admin(struct conn *c)
{
	if (c->admin_gen != priv_admin_gen()) {
		c->admin = c->bev != NULL &&
		    priv_peer_admin(bufferevent_getfd(c->bev), c->uid);
		c->admin_gen = priv_admin_gen();
	}
	return (c->admin);
}

/*
 * The job id as c may see it: a job is its owner's, and an administrator's. Another
 * user's job is answered exactly as one that does not exist, so ids tell nothing.
 * NULL after the reply.
 */
static struct job *
conn_job(struct conn *c, uint64_t id)
{
	struct job	*j;

	if ((j = job_find(id)) == NULL ||
	    (priv_owner_uid(j->owner) != c->uid && !conn_admin(c))) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)id);
		return (NULL);
	}
	return (j);
}

static void
server_denied_sum(unsigned long held, unsigned long long span_ms)
{
	log_notice("%lu more request%s for administrators refused in the last %llu s",
	    held, held == 1 ? " was" : "s were", (span_ms + 999) / 1000);
}
static struct log_limit	 denied_limit = { 5, 10000, server_denied_sum, 0, 0, 0, 0 };

/* Refuse what only administrators may do: 1 if refused (after the reply). */
static int
conn_not_admin(struct conn *c, const char *what)
{
	if (conn_admin(c))
		return (0);
	/* An audit trail, which a client cannot turn into a flood: see denied_limit. */
	if (log_limit_pass(&denied_limit))
		log_notice("refused %s from pid %ld uid %ld: not an administrator", what,
		    (long)c->pid, (long)c->uid);
	reply_err(c, "denied", "%s is for administrators (root, the daemon's user, "
	    "admin_users, admin_groups); uid %ld is not one", what, (long)c->uid);
	return (1);
}

static int	server_wait_as(struct conn *, struct job *, uint64_t);

/*
 * SUBMIT ... idem=TOKEN with a token q holds for c's user: answer with the first job
 * (OK <id> dup, and with wait its RESULT, now or when it ends), as that job's own OK
 * would be: not before its records are durable. 0: not a duplicate.
 */
static int
conn_submit_dup(struct conn *c, struct queue *q, const struct proto_request *req)
{
	struct job	*j;
	uint64_t	 id, batch;
	char		 buf[48];
	size_t		 n;

	if (c->owner < 0 || (id = idem_find(q->idx, (uint16_t)c->owner, req->idem,
	    req->idemlen, &batch)) == 0)
		return (0);
	j = job_find(id);
	if (req->flags & PROTO_F_WAIT) {
		if (j == NULL) {
			reply_err(c, "notfound", "SUBMIT: idem=%.*s is job %llu, which "
			    "ended and whose result is no longer kept", (int)req->idemlen,
			    req->idem, (unsigned long long)id);
			return (1);
		}
		/* As WAIT <id>: a chain's first stage answers for the chain's end. */
		j = chain_follow(j);
		if (!JOB_FINAL(j->state) && server_wait_as(c, j, id) != 0) {
			reply_err(c, "busy", "out of memory");
			return (1);
		}
	}
	memcpy(buf, "OK ", 3);
	n = 3 + proto_fmt_u64(buf + 3, id);
	memcpy(buf + n, " dup\n", 5);
	reply(c, buf, n + 5);
	if (batch != 0 && c->hold != NULL)
		conn_hold_until(c, batch);
	if ((req->flags & PROTO_F_WAIT) && JOB_FINAL(j->state))
		server_send_result(c, j, id);
	return (1);
}

/* Handle a SUBMIT; REQ_BLOCKED leaves it unconsumed until the queue has room. */
static int
conn_submit(struct conn *c, struct proto_request *req)
{
	struct queue	*q;
	struct job	*j;
	int		 let_in = c->let_in != NULL && c->let_in == queue_find(req->queue);

	c->let_in = NULL;	/* one SUBMIT per turn: the next waits its turn */
	if (master_stopping) {
		reply_err(c, "shutdown", "the daemon is shutting down");
		return (REQ_DONE);
	}
	if ((q = queue_find(req->queue)) == NULL) {
		reply_err(c, "noqueue", "SUBMIT: no queue '%s'", req->queue);
		return (REQ_DONE);
	}
	if (q->cf.hook != 0) {
		reply_err(c, "noqueue", "SUBMIT: queue '%s' is hook #%u's: only its "
		    "events go there", req->queue, q->cf.hook);
		return (REQ_DONE);
	}
	/* A resend of a job q has: it makes nothing, so it needs no room. */
	if ((req->flags & PROTO_F_IDEM) && conn_submit_dup(c, q, req))
		return (REQ_DONE);
	if (journal_refusal() != NULL) {
		reply_err(c, "unavailable", "%s", journal_refusal());
		return (REQ_DONE);
	}
	if (q->failed_reason != NULL) {
		reply_err(c, "unavailable", "queue '%s' cannot run jobs: %s", q->name,
		    q->failed_reason);
		return (REQ_DONE);
	}
	if ((req->flags & PROTO_F_PRIO) &&
	    (req->prio < q->cf.prio_min || req->prio > q->cf.prio_max)) {
		reply_err(c, "proto", "SUBMIT: prio=%lld is outside queue '%s' range "
		    "%d..%d", (long long)req->prio, q->name, q->cf.prio_min,
		    q->cf.prio_max);
		return (REQ_DONE);
	}
	/*
	 * First come, first served: while producers wait for room in q, the room that
	 * appears is theirs, oldest first (server_unblock lets each in with let_in).
	 */
	if ((q->srv.nblocked > 0 && !let_in) || !queue_has_room(q, req->size)) {
		if ((req->flags & PROTO_F_NONBLOCK) && !queue_has_room(q, req->size)) {
			reply_err(c, "busy", "queue '%s' is full (%u job%s, %llu bytes)",
			    q->name, queue_depth(q), queue_depth(q) == 1 ? "" : "s",
			    (unsigned long long)q->bytes);
			return (REQ_DONE);
		}
		if (req->flags & PROTO_F_NONBLOCK) {
			reply_err(c, "busy", "queue '%s' is full for now: %u producer%s "
			    "wait%s for room before this one (%u job%s, %llu bytes)", q->name,
			    q->srv.nblocked, q->srv.nblocked == 1 ? "" : "s", q->srv.nblocked == 1 ? "s" : "",
			    queue_depth(q), queue_depth(q) == 1 ? "" : "s",
			    (unsigned long long)q->bytes);
			return (REQ_DONE);
		}
		if (q->srv.nblocked == 0) {
			log_debug("queue %s: full; pushing back on producers", q->name);
			events_publish_queue(EVENTS_QUEUE_FULL, q->idx, 0, 0, NULL);
		}
		c->blocked_on = q;
		TAILQ_INSERT_TAIL(&q->srv.blocked, c, bentry);
		q->srv.nblocked++;
		bufferevent_disable(c->bev, EV_READ);
		return (REQ_BLOCKED);
	}
	if (c->owner < 0) {
		reply_err(c, "busy", "the daemon cannot record uid %ld as the owner of a "
		    "job: it has had 65536 users since it started (or is out of memory)",
		    (long)c->uid);
		return (REQ_DONE);
	}
	if ((req->flags & PROTO_F_IDEM) && !idem_room()) {
		reply_err(c, "busy", "SUBMIT: idem: the daemon holds %u idempotency "
		    "tokens (idempotency_max); the next expires in %llu ms", idem_n,
		    (unsigned long long)idem_next_expiry_ms());
		return (REQ_DONE);
	}
	/* Without key=, an http queue's job takes its URL's host (job_new_key). */
	if ((j = job_new_key(q, req->body, req->size, (req->flags & PROTO_F_KEY) ?
	    req->key : NULL, (req->flags & PROTO_F_KEY) ? req->keylen : 0)) == NULL) {
		reply_err(c, "busy", "out of memory for the job");
		return (REQ_DONE);
	}
	j->owner = (uint16_t)c->owner;
	j->prio = queue_prio_clamp(&q->cf, (req->flags & PROTO_F_PRIO) ? req->prio :
	    0);
	j->timeout_ms = (req->flags & PROTO_F_TIMEOUT) ? req->timeout_ms :
	    q->cf.timeout_ms;
	if ((req->flags & PROTO_F_DELAY) && req->delay_ms > 0)
		j->run_at = now_us() + (uint64_t)req->delay_ms * 1000;
	/*
	 * OK <id> always precedes the job's RESULT: a result can only come from a worker,
	 * and dispatch_submit() only marks the queue for dispatch later in this pass.
	 */
	/* A token goes with the change (job.queued's idem=), and to idem.c after. */
	reply_ok_id(c, dispatch_submit_as(q, j, (req->flags & PROTO_F_WAIT) ? c : NULL,
	    (req->flags & PROTO_F_IDEM) ? &(struct job_change){ .text = req->idem,
	    .len = (uint32_t)req->idemlen } : NULL));
	if (req->flags & PROTO_F_IDEM)
		idem_give(j, req->idem, req->idemlen);
	return (REQ_DONE);
}

static void
conn_status(struct conn *c, uint64_t id)
{
	struct job	*j;
	struct evbuffer	*out;
	char		 due[48] = "", http[24] = "";
	const char	*key;
	size_t		 klen;
	uint64_t	 now, wait;

	if ((j = conn_job(c, id)) == NULL)
		return;
	key = job_key(j, &klen);
	if (j->x != NULL && j->x->http_status != 0)
		snprintf(http, sizeof http, " http_status=%u", (unsigned)j->x->http_status);
	/* Delayed, or waiting out its backoff: when it is queued again. */
	if (j->state == JOB_DELAYED || j->state == JOB_RETRY_WAIT) {
		now = now_us();
		snprintf(due, sizeof due, " due_in_ms=%llu", (unsigned long long)
		    (j->run_at > now ? (j->run_at - now) / 1000 : 0));
	}
	wait = conn_end_batch(c, j);
	out = wait != 0 ? c->hold : conn_out(c);
	evbuffer_add_printf(out,
	    "OK id=%llu queue=%s state=%s prio=%d attempts=%u max_attempts=%u "
	    "timeout_ms=%u%s%s%s%s%.*s%s", (unsigned long long)j->id, job_queue(j)->name,
	    job_state_name(j->state), j->prio, j->attempts, job_queue(j)->cf.retries + 1,
	    j->timeout_ms, due, j->cancel ? " cancelling=1" : "",
	    job_queue(j)->paused && !JOB_FINAL(j->state) && j->state != JOB_RUNNING ?
	    " paused=1" : "", key != NULL ? " key=" : "", (int)klen, key != NULL ? key : "",
	    http);
	evbuffer_add_printf(out, "%s", job_http_meta(j));
	chain_status(out, j);
	evbuffer_add(out, "\n", 1);
	if (wait != 0)
		conn_hold_until(c, wait);
}

/* One line of text with newlines folded, for a key=value line's last field. */
static void
add_folded(struct evbuffer *b, const char *s, size_t n)
{
	size_t	i, start = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n' || s[i] == '\r') {
			evbuffer_add(b, s + start, i - start);
			evbuffer_add(b, " ", 1);
			start = i + 1;
		}
	}
	evbuffer_add(b, s + start, n - start);
}

/* Answer DATA with the body in b, and free b. */
static void
reply_data(struct conn *c, struct evbuffer *b)
{
	struct evbuffer	*out = conn_out(c);

	evbuffer_add_printf(out, "DATA %zu\n", evbuffer_get_length(b));
	evbuffer_add_buffer(out, b);
	evbuffer_add(out, "\n", 1);
	evbuffer_free(b);
}

/* HISTORY: one line per recorded attempt, oldest first. */
static void
conn_history(struct conn *c, uint64_t id)
{
	struct job		*j;
	struct evbuffer		*b;
	struct attempt		*a;
	static const char	*const outcome[] = {
		"delayed", "queued", "running", "ok", "failed", "timeout", "cancelled",
		"retry_wait", "dead"
	};
	unsigned		 i, k;

	if ((j = conn_job(c, id)) == NULL)
		return;
	if ((b = evbuffer_new()) == NULL) {
		reply_err(c, "busy", "out of memory");
		return;
	}
	if (j->x != NULL && j->x->hist != NULL) {
		for (i = 0; i < j->x->nhist; i++) {
			k = (j->x->hist_next + JOB_HIST_MAX - j->x->nhist + i) % JOB_HIST_MAX;
			a = &j->x->hist[k];
			evbuffer_add_printf(b, "attempt %u worker=%ld outcome=%s ms=%u "
			    "error=%s\n", a->n, (long)a->pid,
			    a->outcome < 9 ? outcome[a->outcome] : "?", a->ms, a->err);
		}
	}
	evbuffer_add_printf(b, "job %llu state=%s attempts=%u\n",
	    (unsigned long long)j->id, job_state_name(j->state), j->attempts);
	reply_data(c, b);
}

/* DEAD [queue]: the dead jobs, oldest first, with their last error. */
static void
conn_dead(struct conn *c, const char *queue)
{
	struct job	*j;
	struct evbuffer	*b;
	uint64_t	 now = now_ms();

	if (queue[0] != '\0' && queue_find(queue) == NULL) {
		reply_err(c, "noqueue", "DEAD: no queue '%s'", queue);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		reply_err(c, "busy", "out of memory");
		return;
	}
	for (j = job_dead_first(); j != NULL; j = job_dead_next(j)) {
		if (queue[0] != '\0' && strcmp(job_queue(j)->name, queue) != 0)
			continue;
		/* Another user's dead job is not there for a user (as in conn_job). */
		if (priv_owner_uid(j->owner) != c->uid && !conn_admin(c))
			continue;
		evbuffer_add_printf(b, "dead %llu queue=%s attempts=%u status=%s "
		    "age=%llu error=", (unsigned long long)j->id, job_queue(j)->name,
		    j->attempts, result_word(j),
		    (unsigned long long)(now - j->x->died_ms) / 1000);
		add_folded(b, job_result(j), job_rlen(j) > 300 ? 300 : job_rlen(j));
		evbuffer_add(b, "\n", 1);
	}
	reply_data(c, b);
}

/* RETRY <id> | RETRY all [queue] */
static void
conn_retry(struct conn *c, struct proto_request *req)
{
	struct job	*j, *next;
	const char	*why;
	unsigned	 n = 0;

	if (req->flags & PROTO_F_ALL) {
		if (conn_not_admin(c, "RETRY all"))
			return;
		if (req->queue[0] != '\0' && queue_find(req->queue) == NULL) {
			reply_err(c, "noqueue", "RETRY: no queue '%s'", req->queue);
			return;
		}
		if (master_stopping) {
			reply_err(c, "shutdown", "the daemon is shutting down");
			return;
		}
		for (j = job_dead_first(); j != NULL; j = next) {
			next = job_dead_next(j);
			if (req->queue[0] != '\0' && strcmp(job_queue(j)->name, req->queue) != 0)
				continue;
			if (dispatch_retry(j, &why) == 0)
				n++;
		}
		evbuffer_add_printf(conn_out(c), "OK %u\n", n);
		return;
	}
	if ((j = conn_job(c, req->id)) == NULL)
		return;
	if (dispatch_retry(j, &why) != 0) {
		reply_err(c, "state", "job %llu %s", (unsigned long long)req->id, why);
		return;
	}
	reply_lit(c, "OK queued\n");
}

/* PAUSE <queue> | RESUME <queue>: an administrator holds or lets go a queue's dispatch. */
static void
conn_pause(struct conn *c, struct proto_request *req)
{
	const char	*cmd = req->cmd == PROTO_PAUSE ? "PAUSE" : "RESUME";
	struct queue	*q;

	if (conn_not_admin(c, cmd))
		return;
	if ((q = queue_find(req->queue)) == NULL) {
		reply_err(c, "noqueue", "%s: no queue '%s'", cmd, req->queue);
		return;
	}
	queue_pause(q, req->cmd == PROTO_PAUSE, c->uid);
	if (req->cmd == PROTO_PAUSE)
		reply_lit(c, "OK paused\n");
	else
		reply_lit(c, "OK resumed\n");
}

/*
 * c waits for j's end (WAIT, SUBMIT ... wait): once per connection and job, so that a
 * repeated WAIT gets one RESULT. The waiter holds a reference on c. 0, or -1 when out
 * of memory.
 */
static int
server_wait_as(struct conn *c, struct job *j, uint64_t id)
{
	struct waiter	*w;

	for (w = j->waiters; w != NULL; w = w->next) {
		if (w->conn == c && w->id == id)
			return (0);
	}
	if ((w = malloc(sizeof *w)) == NULL)
		return (-1);
	w->conn = c;
	w->id = id;
	w->next = j->waiters;
	j->waiters = w;
	c->refs++;
	return (0);
}

int
server_wait(struct conn *c, struct job *j)
{
	return (server_wait_as(c, j, j->id));
}

/* WAIT id: of a chain's stage, for the chain's end (its stage now, or the last). */
static void
conn_wait(struct conn *c, uint64_t id)
{
	struct job	*j;

	if ((j = conn_job(c, id)) == NULL)
		return;
	j = chain_follow(j);
	if (JOB_FINAL(j->state)) {
		reply_lit(c, "OK\n");
		server_send_result(c, j, id);
		return;
	}
	if (server_wait_as(c, j, id) != 0) {
		reply_err(c, "busy", "out of memory");
		return;
	}
	reply_lit(c, "OK\n");
}

static void
conn_cancel(struct conn *c, uint64_t id)
{
	struct job	*j;
	const char	*why;

	if ((j = conn_job(c, id)) == NULL)
		return;
	/* Of a chain: its stage now (chain_cancel keeps a late success from going on). */
	j = chain_follow(j);
	switch (dispatch_cancel(j, &why)) {
	case 0:
		reply_lit(c, "OK cancelled\n");
		break;
	case 1:
		chain_cancel(j);
		reply_lit(c, "OK cancelling\n");
		break;
	default:
		if (j->id != id)
			reply_err(c, "state", "job %llu: its chain's stage now, job %llu "
			    "(queue %s), %s", (unsigned long long)id,
			    (unsigned long long)j->id, job_queue(j)->name, why);
		else
			reply_err(c, "state", "job %llu %s", (unsigned long long)id, why);
		break;
	}
}

static void
conn_stats(struct conn *c)
{
	struct evbuffer	*body;

	if ((body = evbuffer_new()) == NULL) {
		reply_err(c, "busy", "out of memory");
		return;
	}
	stats_write(body);
	reply_data(c, body);
}

/*
 * EVENTS: the connection follows the event ring from now on (events.c); what the
 * client sends after it is read and thrown away. A non-administrator sees the events
 * of its own jobs and the pool's.
 */
static void
conn_events(struct conn *c, struct proto_request *req)
{
	const char	*code;

	if (events_subscribe(c, req, conn_admin(c), &code) == 0) {
		/* Written in bursts up to its backlog: refilled once half is read. */
		bufferevent_setwatermark(c->bev, EV_WRITE, 64 * 1024, 0);
		return;
	}
	if (strcmp(code, "noqueue") == 0)
		reply_err(c, code, "EVENTS: no queue '%s'", req->queue);
	else
		reply_err(c, code, "EVENTS: out of memory");
}

/* Handle one decoded request. */
static int
conn_request(struct conn *c, struct proto_request *req)
{
	switch (req->cmd) {
	case PROTO_PING:
		reply_lit(c, "OK pong\n");
		break;
	case PROTO_SUBMIT:
		return (conn_submit(c, req));
	case PROTO_WAIT:
		conn_wait(c, req->id);
		break;
	case PROTO_STATUS:
		conn_status(c, req->id);
		break;
	case PROTO_CANCEL:
		conn_cancel(c, req->id);
		break;
	case PROTO_STATS:
		conn_stats(c);
		break;
	case PROTO_QUIT:
		reply_lit(c, "OK bye\n");
		c->closing = 1;
		break;
	case PROTO_DEAD:
		conn_dead(c, req->queue);
		break;
	case PROTO_RETRY:
		conn_retry(c, req);
		break;
	case PROTO_HISTORY:
		conn_history(c, req->id);
		break;
	case PROTO_RELOAD:
		if (conn_not_admin(c, "RELOAD"))
			break;
		log_notice("RELOAD requested by connection %llu (pid %ld, uid %ld)",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid);
		if (master_reload("RELOAD request") == 0)
			reply_lit(c, "OK reloaded\n");
		else
			reply_err(c, "config", "reload failed; still running on the old "
			    "configuration: %s", master_reload_error());
		break;
	case PROTO_EVENTS:
		conn_events(c, req);
		break;
	case PROTO_PAUSE:
	case PROTO_RESUME:
		conn_pause(c, req);
		break;
	case PROTO_INVALID:
		if (req->skip > (uint64_t)master_config->max_payload + SERVER_SKIP_MAX + 1) {
			/* Not worth reading: the client is told, and the connection goes. */
			reply_err(c, req->err_code, "%s; closing the connection (a body "
			    "of more than %llu bytes is not read)", req->err,
			    (unsigned long long)master_config->max_payload +
			    SERVER_SKIP_MAX);
			log_debug("connection %llu (pid %ld): %s; closed",
			    (unsigned long long)c->id, (long)c->pid, req->err);
			c->closing = 1;
			break;
		}
		reply_err(c, req->err_code, "%s", req->err);
		c->skip = req->skip;
		break;
	}
	return (REQ_DONE);
}

/* Has c's client closed both directions (not only shut down its sending side)? */
static int
conn_hung_up(struct conn *c)
{
	struct pollfd	pfd = { .fd = bufferevent_getfd(c->bev), .events = POLLOUT };

	return (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)));
}

/*
 * Close c if it is done: after QUIT or lost framing once its replies are written; after
 * the client shut down its side once, in addition, every job it waits for is answered.
 */
static int
conn_maybe_close(struct conn *c)
{
	if (!c->closing && !c->rdeof)
		return (0);
	/* A subscriber that shut down its sending side may still read its events. */
	if (!c->closing && c->sub != NULL && !conn_hung_up(c))
		return (0);
	if (conn_unsent(c) > 0)
		return (0);
	/* Each conn_process() under way holds a reference of its own. */
	if (!c->closing && (c->blocked_on != NULL || c->refs > 1 + c->in_process))
		return (0);
	conn_close(c);
	return (1);
}

static void	conn_process_input(struct conn *);
static void	conn_request_started(struct conn *, size_t);
static void	conn_timer_arm(struct conn *, uint64_t, uint64_t);

/* Connections closed for time: at most 10 lines in 10 s, then a sum. */
static void	server_expired_sum(unsigned long, unsigned long long);
static struct log_limit	 expired_limit = { 10, 10000, server_expired_sum, 0, 0, 0, 0 };

static void
server_expired_sum(unsigned long held, unsigned long long span_ms)
{
	log_info("%lu more connections were closed for idle_timeout or request_timeout "
	    "in the last 10 s (not logged one by one: at most 10 lines in 10 s)", held);
}

/* The byte at off in b (which holds more than off bytes). */
static int
conn_byte_at(struct evbuffer *b, size_t off)
{
	struct evbuffer_ptr	p;
	unsigned char		ch;

	if (evbuffer_ptr_set(b, &p, off, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(b, &p, &ch, 1) != 1)
		return (-1);
	return (ch);
}

/*
 * A client lost framing: say so, but at most 10 times in each 10 s, so that a local
 * client reconnecting in a loop cannot flood the journal; one line sums up the rest.
 */
static void	server_framing_sum(unsigned long, unsigned long long);
static struct log_limit	 framing_limit = { 10, 10000, server_framing_sum, 0, 0, 0, 0 };

static void
server_framing_sum(unsigned long held, unsigned long long span_ms)
{
	log_info("%lu more connection%s lost framing and %s closed in the last 10 s "
	    "(not logged one by one: at most 10 lines in 10 s)", held,
	    held == 1 ? "" : "s", held == 1 ? "was" : "were");
}

static void
server_log_framing(struct conn *c, const char *err)
{
	if (log_limit_pass(&framing_limit))
		log_info("connection %llu (pid %ld, uid %ld): %s; closed",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid, err);
}

/*
 * Handle what c has sent. A reference is held meanwhile: handling may close c
 * (conn_maybe_close), which frees it when nothing else refers to it.
 */
static void
conn_process(struct conn *c)
{
	size_t	before;

	if (c->closed)
		return;
	c->refs++;
	c->in_process++;
	before = evbuffer_get_length(bufferevent_get_input(c->bev));
	conn_process_input(c);
	c->in_process--;
	if (!c->closed)
		conn_request_started(c, before);
	conn_unref(c);
}

/*
 * Is c's client in the middle of sending a request, with the daemon reading? Not when
 * the daemon stopped reading: a full queue (the whole request is there), or replies
 * the client does not read (judged as idle instead).
 */
static int
conn_partial(struct conn *c)
{
	if (c->blocked_on != NULL || c->out_full || c->closing || c->rdeof)
		return (0);
	return (c->skip > 0 ||
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0);
}

/*
 * After c's input was handled (before bytes of it): note when an incomplete request
 * began. If input was consumed, what is left is a new request, begun now; if not, the
 * same one goes on. The timer is re-armed only when it would fire
 * after the request is due, so a streaming client costs no timer work per read.
 */
static void
conn_request_started(struct conn *c, size_t before)
{
	uint32_t	limit = master_config->request_timeout_ms;
	size_t		after;

	if (c->blocked_on != NULL)
		c->waited = 1;		/* its idle time starts again once let go */
	if (!conn_partial(c)) {
		c->req_ms = 0;
		return;
	}
	/*
	 * Now, not the last read: after a wait on a full queue (or for the client to
	 * read), the bytes left were read long ago, and the client could send no more.
	 */
	after = evbuffer_get_length(bufferevent_get_input(c->bev));
	if (c->req_ms == 0 || after < before)
		c->req_ms = now_ms();
	if (limit != 0 && (c->timer_at == 0 || c->timer_at > c->req_ms + limit))
		conn_timer_arm(c, c->req_ms + limit, c->req_ms);
}

/*
 * Does the daemon owe c something? A job it waits for (each holds a reference besides
 * its own and the flush list's), a full queue it is blocked on, replies held for the
 * journal. Such a connection is never closed for time: it waits on the daemon.
 */
static int
conn_waits_on_daemon(struct conn *c)
{
	return (c->blocked_on != NULL || c->nmarks > 0 || c->refs > 1 + c->flushq ||
	    c->sub != NULL);
}

/* Close c for time: say why on the socket when nothing else waits to be sent. */
static void
conn_expire(struct conn *c, const char *what, uint32_t limit_ms, const char *key)
{
	char	msg[256];
	int	n;

	n = snprintf(msg, sizeof msg, "ERR timeout %s for %u ms (%s); closing the "
	    "connection\n", what, limit_ms, key);
	if (conn_unsent(c) == 0 && n > 0 && (size_t)n < sizeof msg)
		(void)send(bufferevent_getfd(c->bev), msg, (size_t)n,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (log_limit_pass(&expired_limit))
		log_info("connection %llu (pid %ld, uid %ld): %s for %u ms (%s); closed",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid, what,
		    limit_ms, key);
	conn_close(c);
}

/*
 * c's time limits. Reads only store the time, so the timer looks now at what c is
 * doing: waiting on the daemon (looked at again later, and the wait counts as
 * activity); in the middle of a request (due request_timeout after it began); or
 * idle (due idle_timeout after the last read, or after its replies were last seen
 * being read). Not yet due: the timer is armed for when it will be.
 */
static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	uint64_t	 now = now_ms(), due;
	uint32_t	 idle = master_config->idle_timeout_ms;
	uint32_t	 req = master_config->request_timeout_ms;
	size_t		 unsent;

	c->timer_at = 0;
	if (c->closed)
		return;
	if (conn_waits_on_daemon(c)) {
		c->waited = 1;
		conn_timer_arm(c, conn_timer_next(now), now);
		return;
	}
	unsent = conn_unsent(c);
	/* Waited on the daemon until lately, or its replies are being read: active. */
	if (c->waited || unsent < c->unsent_seen) {
		c->waited = 0;
		c->active_ms = now;
	}
	c->unsent_seen = unsent;
	if (req != 0 && conn_partial(c) && c->req_ms != 0) {
		due = c->req_ms + req;
		if (now >= due) {
			conn_expire(c, "a request left incomplete", req,
			    "request_timeout");
			return;
		}
	} else if (idle != 0) {
		due = c->active_ms + idle;
		if (now >= due) {
			conn_expire(c, "idle", idle, "idle_timeout");
			return;
		}
	} else
		return;		/* re-armed when a request begins */
	conn_timer_arm(c, due, now);
}

/* Decode and handle every whole request in the input buffer, unless held back. */
static void
conn_process_input(struct conn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->bev);
	struct proto_request	 req;
	const char		*buf;
	size_t			 avail, off, n;
	ssize_t			 r;
	int			 r2;

	while (!c->blocked_on && !c->out_full && !c->closing && c->sub == NULL) {
		avail = evbuffer_get_length(in);
		if (c->skip > 0) {
			/* The rest of an oversized body: read and thrown away. */
			n = avail < c->skip ? avail : (size_t)c->skip;
			if (n > 0 && n == c->skip)
				c->skip_lf = conn_byte_at(in, n - 1) == '\r';
			evbuffer_drain(in, n);
			c->skip -= n;
			if (c->skip > 0)
				break;
			continue;
		}
		if (avail == 0)
			break;
		if (c->skip_lf) {
			/* The body ended in "\r\n", as a line may. */
			c->skip_lf = 0;
			if (conn_byte_at(in, 0) == '\n') {
				evbuffer_drain(in, 1);
				continue;
			}
		}
		buf = (const char *)evbuffer_pullup(in, -1);
		off = 0;
		while (off < avail && !c->blocked_on && !c->closing && !c->skip &&
		    c->sub == NULL) {
			r = proto_request_decode(buf + off, avail - off,
			    master_config->max_payload, &req);
			if (r == 0)
				break;
			if (r < 0) {
				reply_err(c, "proto", "%s; closing the connection",
				    req.err);
				server_log_framing(c, req.err);
				c->closing = 1;
				break;
			}
			if (c->hold != NULL) {
				uint64_t seq0 = journal_seq;

				c->in_req = 1;
				r2 = conn_request(c, &req);
				conn_seal(c, seq0);
			} else
				r2 = conn_request(c, &req);
			if (r2 == REQ_BLOCKED)
				break;
			off += (size_t)r;
			/* Each reply counts: a burst of requests must not outrun the limit. */
			if (conn_check_output(c))
				break;
		}
		evbuffer_drain(in, off);
		if (c->skip == 0)
			break;
	}
	/* A subscriber's further input is read and thrown away. */
	if (c->sub != NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		c->skip = 0;
	}
	/* The client shut down its side in the middle of a request: say so. */
	if (c->rdeof && c->sub == NULL && !c->blocked_on && !c->closing && !c->out_full && c->skip == 0 &&
	    (avail = evbuffer_get_length(in)) > 0) {
		reply_err(c, "proto", "the connection ended %zu bytes into an incomplete "
		    "request (a line without its newline, or a body shorter than its size)",
		    avail);
		log_debug("connection %llu (pid %ld): ended inside a request; closed",
		    (unsigned long long)c->id, (long)c->pid);
		evbuffer_drain(in, avail);
		c->closing = 1;
	}
	if (c->closing) {
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	}
	if (conn_maybe_close(c))
		return;
	(void)conn_check_output(c);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	c->active_ms = now_ms();	/* all the timer needs of a read */
	conn_process(c);
}

/*
 * Output drained to the low watermark (by the bufferevent, or by conn_flush): resume
 * reading, or finish closing. Drained to nothing, the socket's write event goes: the
 * next replies are written at the end of their pass again.
 */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;
	int		 stopping = master_stopping;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
	if (conn_maybe_close(c))
		goto out;
	if (c->out_full) {
		c->out_full = 0;
		if (!c->blocked_on && !c->rdeof)
			bufferevent_enable(c->bev, EV_READ);
		conn_process(c);
	}
	/* Its socket took its events: more (may close c, which is not touched after). */
	if (!c->closed && c->sub != NULL)
		events_writable(c);
out:
	if (stopping)
		master_check_done();
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		/* The client shut down its side: answer what it asked, then close. */
		c->rdeof = 1;
		bufferevent_disable(bev, EV_READ);
		conn_process(c);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		log_debug("connection %llu: %s", (unsigned long long)c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_close(c);
}

/* Drop a connection; its memory goes when the last job waiting for it is answered. */
static void
conn_close(struct conn *c)
{
	if (c->closed)
		return;
	if (c->blocked_on != NULL) {
		TAILQ_REMOVE(&c->blocked_on->srv.blocked, c, bentry);
		c->blocked_on->srv.nblocked--;
		c->blocked_on = NULL;
	}
	events_unsubscribe(c);
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->stall_ev != NULL) {
		event_free(c->stall_ev);
		c->stall_ev = NULL;
	}
	conn_unhold(c);
	if (c->hold != NULL)
		evbuffer_free(c->hold);
	c->hold = NULL;
	free(c->marks);
	c->marks = NULL;
	c->capmarks = 0;
	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	uid_count_drop(c->uid);
	nreserved -= c->reserved;
	c->reserved = 0;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	c->closed = 1;
	conn_unref(c);
	if (master_stopping)
		master_check_done();
}

void
conn_unref(struct conn *c)
{
	if (--c->refs == 0)
		free(c);
}

/* A new queue's server part: no connection is blocked on it. */
void
server_queue_init(struct queue *q)
{
	TAILQ_INIT(&q->srv.blocked);
	q->srv.nblocked = 0;
}

/* q goes: a connection still blocked on it (only at exit) must not point at it. */
void
server_queue_free(struct queue *q)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&q->srv.blocked)) != NULL) {
		TAILQ_REMOVE(&q->srv.blocked, c, bentry);
		c->blocked_on = NULL;
	}
	q->srv.nblocked = 0;
}

/*
 * Room in q: let the connections blocked on it go on, oldest first, one SUBMIT each
 * (let_in), in rounds while room lasts: a producer's next SUBMIT waits behind the
 * others' first ones, which were refused room before it came.
 */
void
server_unblock(struct queue *q)
{
	struct conn		*c;
	struct unblocking	 self, *u;
	uint32_t		 n, had = q->srv.nblocked;
	uint64_t		 before;

	for (u = unblocking; u != NULL; u = u->up) {
		if (u->q == q)
			return;
	}
	self.q = q;
	self.up = unblocking;
	unblocking = &self;
	do {
		before = q->submitted;
		for (n = q->srv.nblocked; n > 0 && (c = TAILQ_FIRST(&q->srv.blocked)) != NULL;
		    n--) {
			if (!master_stopping && !q->removed && !queue_has_room(q, 0))
				goto out;
			TAILQ_REMOVE(&q->srv.blocked, c, bentry);
			q->srv.nblocked--;
			c->blocked_on = NULL;
			c->let_in = q;
			if (!c->out_full && !c->rdeof)
				bufferevent_enable(c->bev, EV_READ);
			conn_process(c);
		}
		/* A round that let no job in (each too large for the room) is the last. */
	} while (q->srv.nblocked > 0 && q->submitted != before);
out:
	if (q->srv.nblocked == 0 && had > 0) {
		log_debug("queue %s: producers resumed", q->name);
		events_publish_queue(EVENTS_QUEUE_RESUMED, q->idx, 0, 0, NULL);
	}
	unblocking = self.up;
}

/* c's event stream ended (events.c wrote END): close once it is written. */
void
server_stream_end(struct conn *c)
{
	events_unsubscribe(c);
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

/* Has every connection written all it has to say? */
int
server_idle(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &conns, entry) {
		/* A subscriber's events do not hold a stop: it hears of the next epoch. */
		if (c->sub == NULL && conn_unsent(c) > 0)
			return (0);
	}
	return (1);
}

/* At exit: close every connection. */
void
server_close_all(void)
{
	struct conn	*c;

	while ((c = TAILQ_FIRST(&conns)) != NULL) {
		conn_close(c);
		/* Never true (conn_close unlinks it); the static analyzer cannot see that. */
		if (TAILQ_FIRST(&conns) == c)
			fatalx("%s: a closed connection is still listed", __func__);
	}
	server_flush_cb(-1, 0, NULL);	/* drops the list's references */
	if (flush_ev != NULL) {
		event_free(flush_ev);
		flush_ev = NULL;
	}
	log_limit_reset(&framing_limit);	/* say what the last window held back */
	log_limit_reset(&refused_limit);
	log_limit_reset(&expired_limit);
	free(uid_counts);
	uid_counts = NULL;
	nuid_counts = capuid_counts = 0;
}

uint32_t
server_nconns(void)
{
	return (nconns);
}

/*
 * Apply cf's connection limits (start-up and reload). Each connection takes a
 * descriptor: max_connections and reserved_connections must fit under RLIMIT_NOFILE
 * with what the daemon needs itself, or accept() would fail first and clients would
 * wait in the backlog unanswered. If they do not fit, say so with the numbers and
 * what to change, and cut the limits to what fits: the rest get ERR busy. Changed
 * timeouts apply to open connections too.
 */
void
server_limits(const struct config *cf)
{
	static uint32_t	 idle_ms = UINT32_MAX, req_ms = UINT32_MAX;
	struct rlimit	 rl;
	struct conn	*c;
	uint64_t	 lim, need, want, fit, now;
	uint32_t	 workers = 0;
	int		 k;

	for (k = 0; k < cf->nqueues; k++)
		workers += (uint32_t)cf->queues[k].workers;
	/* A pipe pair per worker; one more per queue for a worker started or rolled. */
	need = SERVER_FDS_FIXED + (uint64_t)SERVER_FDS_WORKER * (workers +
	    (uint32_t)cf->nqueues);
	want = (uint64_t)cf->max_connections + cf->reserved_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		lim = UINT64_MAX;
	else
		lim = (uint64_t)rl.rlim_cur;
	fit = lim > need ? lim - need : 0;
	conn_max = cf->max_connections;
	conn_reserve = cf->reserved_connections;
	if (fit < want) {
		/* The reserve is kept whole while it can be: it is what lets root in. */
		if (conn_reserve > fit / 2)
			conn_reserve = (uint32_t)(fit / 2);
		conn_max = (uint32_t)fit - conn_reserve;
		log_warnx("the descriptor limit (RLIMIT_NOFILE) is %llu: max_connections "
		    "%u and reserved_connections %u need %llu descriptors with the %llu "
		    "the daemon needs itself (the pipes of %u workers, the journal, the "
		    "listener); only %u + %u connections fit, and clients past them get "
		    "ERR busy. Raise the limit to %llu (LimitNOFILE= in jobpool.service, "
		    "ulimit -n) or lower max_connections to %u",
		    (unsigned long long)lim, cf->max_connections,
		    cf->reserved_connections, (unsigned long long)(want + need),
		    (unsigned long long)need, workers, conn_max, conn_reserve,
		    (unsigned long long)(want + need), conn_max);
	}
	if (cf->idle_timeout_ms == idle_ms && cf->request_timeout_ms == req_ms)
		return;
	idle_ms = cf->idle_timeout_ms;
	req_ms = cf->request_timeout_ms;
	now = now_ms();
	TAILQ_FOREACH(c, &conns, entry) {
		if (c->timer == NULL && conn_timer_next(0) != 0 &&
		    (c->timer = evtimer_new(master_base, conn_timer_cb, c)) == NULL)
			continue;
		if (c->timer == NULL)
			continue;
		evtimer_del(c->timer);
		c->timer_at = 0;
		conn_timer_arm(c, conn_timer_next(now), now);
	}
}
