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
 * A connection is reference-counted: each job it waits for holds a reference, so its
 * memory outlives the socket until those jobs are answered (into nowhere).
 *
 * Replies are written to the socket at the end of the event-loop pass that made them
 * (server_flush_cb), straight from the output buffer: one write for all of a pass's
 * replies, and no round through epoll to learn that an idle socket is writable (each
 * reply used to cost two epoll_ctl calls and a loop pass before its write; bench W3).
 * Only when the socket does not take it all does the bufferevent's write event wait for
 * room, and write the rest, as bufferevents do.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
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
#include "journal.h"
#include "log.h"
#include "priv.h"
#include "proto.h"

#define SERVER_READ_MAX		(256 * 1024)
#define SERVER_BACKLOG		1024
#define SERVER_OUTPUT_HARD	4	/* unread replies beyond 4 x max_output: close */

static struct evconnlistener	*listener;
static char			*listen_path;	/* unlinked at exit if we made it */
static char			*made_dir;	/* the socket's directory, if we created it */
static TAILQ_HEAD(, conn)	 conns = TAILQ_HEAD_INITIALIZER(conns);
static uint32_t			 nconns;
static uint64_t			 next_conn_id = 1;

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
static void	server_flush_cb(evutil_socket_t, short, void *);

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
	if (info->n_added == 0 || c->flushq || c->dead)
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
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	if (n > 0)
		conn_write_cb(c->bev, c);
}

static void
server_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c;
	int		 dead;

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
		dead = c->dead;
		/* Never true; it also tells the static analyzer this is not the last one. */
		if (!dead && c->refs < 2)
			fatalx("connection %llu: flushed without its own reference",
			    (unsigned long long)c->id);
		conn_unref(c);
		if (!dead)
			conn_flush(c);
	}
}

/* A new client. */
static void
server_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct conn		*c;
	struct priv_peer	 peer;
	char			*why = NULL;

	if (nconns >= master_config->max_connections) {
		static const char full[] = "ERR busy too many connections (max_connections)\n";
		static uint64_t   warned_ms;
		uint64_t	  now = now_ms();

		if (warned_ms == 0 || now - warned_ms >= 10000) {
			warned_ms = now;
			log_warnx("refusing connections: %u open, max_connections is %u",
			    nconns, master_config->max_connections);
		}
		(void)send(fd, full, sizeof full - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
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
	if (evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_cb, c) == NULL) {
		log_warnx("accept: out of memory; refusing a connection");
		conn_discard(c);
		return;
	}
	bufferevent_set_max_single_read(c->bev, SERVER_READ_MAX);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, master_config->max_output / 2, 0);
	/* EV_WRITE only while the socket is full: server_flush_cb writes the rest. */
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	nconns++;
	log_debug("connection %llu: pid %ld uid %ld", (unsigned long long)c->id,
	    (long)c->pid, (long)c->uid);
}

static struct event	*accept_pause_ev;	/* re-enables accepting after EMFILE */
static uint64_t		 accept_warned_ms;

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
		log_warnx("accept: %s (%u connections open); not accepting for 100 ms",
		    strerror(err), nconns);
	}
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

/* Reply bytes not yet written to the socket, held or not. */
static size_t
conn_unsent(struct conn *c)
{
	return (evbuffer_get_length(bufferevent_get_output(c->bev)) +
	    (c->hold != NULL ? evbuffer_get_length(c->hold) : 0));
}

static TAILQ_HEAD(, conn)	held_conns = TAILQ_HEAD_INITIALIZER(held_conns);

/*
 * After a request, with a journal: if it appended records, its replies wait in hold
 * until their batch is durable; if not, they go out now unless earlier ones wait.
 */
static void
conn_seal(struct conn *c, uint64_t seq0)
{
	struct hold_mark	*m;
	size_t			 len;
	uint64_t		 batch;

	c->in_req = 0;
	if (c->hold == NULL)
		return;		/* closed while the request was handled */
	len = evbuffer_get_length(c->hold);
	if (journal_seq == seq0) {
		if (c->nmarks == 0 && len > 0)
			evbuffer_add_buffer(bufferevent_get_output(c->bev), c->hold);
		return;
	}
	batch = journal_batch();
	if (c->nmarks > 0 && c->marks[c->nmarks - 1].batch == batch) {
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
 * After adding to c's output: past max_output, stop reading its requests until the
 * client catches up; past SERVER_OUTPUT_HARD times that (replies to jobs submitted
 * earlier keep coming while it does not read), close it, so that a client that never
 * reads cannot make the daemon hold its replies without bound. 1 if c stopped reading
 * or was closed, 0 if it may go on.
 */
static int
conn_check_output(struct conn *c)
{
	size_t	len;

	if (c->dead)
		return (1);
	len = conn_unsent(c);
	if (len <= master_config->max_output)
		return (c->out_full);
	if (len > SERVER_OUTPUT_HARD * master_config->max_output && !c->overflow) {
		log_warnx("connection %llu (pid %ld, uid %ld): %zu bytes of replies "
		    "unread, more than %d x max_output; closing it",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid, len,
		    SERVER_OUTPUT_HARD);
		c->overflow = 1;
		/* A request being handled may still reply: close once it is done. */
		if (c->in_process == 0)
			conn_close(c);
		return (1);
	}
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
	size_t	n = 3;

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

/* RESULT <id> <status> <size>, the body and a newline. */
void
server_send_result(struct conn *c, struct job *j)
{
	struct evbuffer	*out;
	char		 buf[96] = "RESULT ";
	const char	*w = result_word(j);
	size_t		 n = 7, wl = strlen(w);

	if (c->dead)
		return;
	out = conn_out(c);
	n += proto_fmt_u64(buf + n, j->id);
	buf[n++] = ' ';
	memcpy(buf + n, w, wl);
	n += wl;
	buf[n++] = ' ';
	n += proto_fmt_u64(buf + n, job_rlen(j));
	buf[n++] = '\n';
	evbuffer_add(out, buf, n);
	if (job_rlen(j) > 0)
		evbuffer_add(out, job_result(j), job_rlen(j));
	evbuffer_add(out, "\n", 1);
	(void)conn_check_output(c);
}

/* ----- requests ----- */

enum { REQ_DONE, REQ_BLOCKED };

/* Handle a SUBMIT; REQ_BLOCKED leaves it unconsumed until the queue has room. */
static int
conn_submit(struct conn *c, struct proto_request *req)
{
	struct queue	*q;
	struct job	*j;

	if (master_stopping) {
		reply_err(c, "shutdown", "the daemon is shutting down");
		return (REQ_DONE);
	}
	if ((q = queue_find(req->queue)) == NULL) {
		reply_err(c, "noqueue", "SUBMIT: no queue '%s'", req->queue);
		return (REQ_DONE);
	}
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
	if (!queue_has_room(q, req->size)) {
		if (req->flags & PROTO_F_NONBLOCK) {
			reply_err(c, "busy", "queue '%s' is full (%u jobs, %llu bytes)",
			    q->name, queue_depth(q), (unsigned long long)q->bytes);
			return (REQ_DONE);
		}
		if (q->nblocked == 0)
			log_debug("queue %s: full; pushing back on producers", q->name);
		c->blocked_on = q;
		TAILQ_INSERT_TAIL(&q->blocked, c, bentry);
		q->nblocked++;
		bufferevent_disable(c->bev, EV_READ);
		return (REQ_BLOCKED);
	}
	if ((j = job_new(q, req->body, req->size)) == NULL) {
		reply_err(c, "busy", "out of memory for the job");
		return (REQ_DONE);
	}
	j->prio = (req->flags & PROTO_F_PRIO) ? (int16_t)req->prio : 0;
	if (j->prio < q->cf.prio_min)
		j->prio = (int16_t)q->cf.prio_min;
	if (j->prio > q->cf.prio_max)
		j->prio = (int16_t)q->cf.prio_max;
	j->timeout_ms = (req->flags & PROTO_F_TIMEOUT) ? req->timeout_ms :
	    q->cf.timeout_ms;
	if ((req->flags & PROTO_F_DELAY) && req->delay_ms > 0)
		j->run_at = now_ms() + req->delay_ms;
	/*
	 * OK <id> always precedes the job's RESULT: a result can only come from a worker,
	 * and dispatch_submit() only marks the queue for dispatch later in this pass.
	 */
	reply_ok_id(c, dispatch_submit(q, j, (req->flags & PROTO_F_WAIT) ? c : NULL));
	return (REQ_DONE);
}

static void
conn_status(struct conn *c, uint64_t id)
{
	struct job	*j;
	char		 due[48] = "";
	uint64_t	 now;

	if ((j = job_find(id)) == NULL) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)id);
		return;
	}
	/* Delayed, or waiting out its backoff: when it is queued again. */
	if (j->state == JOB_DELAYED || j->state == JOB_RETRY_WAIT) {
		now = now_ms();
		snprintf(due, sizeof due, " due_in_ms=%llu", (unsigned long long)
		    (j->run_at > now ? j->run_at - now : 0));
	}
	evbuffer_add_printf(conn_out(c),
	    "OK id=%llu queue=%s state=%s prio=%d attempts=%u max_attempts=%u "
	    "timeout_ms=%u%s%s\n", (unsigned long long)j->id, job_queue(j)->name,
	    job_state_name(j->state), j->prio, j->attempts, job_queue(j)->cf.retries + 1,
	    j->timeout_ms, due, j->cancel ? " cancelling=1" : "");
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

	if ((j = job_find(id)) == NULL) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)id);
		return;
	}
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
	if ((j = job_find(req->id)) == NULL) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)req->id);
		return;
	}
	if (dispatch_retry(j, &why) != 0) {
		reply_err(c, "state", "job %llu %s", (unsigned long long)req->id, why);
		return;
	}
	reply(c, "OK queued\n", 10);
}

static void
conn_wait(struct conn *c, uint64_t id)
{
	struct job	*j;
	struct waiter	*w;

	if ((j = job_find(id)) == NULL) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)id);
		return;
	}
	if (JOB_FINAL(j->state)) {
		reply(c, "OK\n", 3);
		server_send_result(c, j);
		return;
	}
	/* One waiter per connection and job: a repeated WAIT gets one RESULT. */
	for (w = j->waiters; w != NULL; w = w->next) {
		if (w->conn == c) {
			reply(c, "OK\n", 3);
			return;
		}
	}
	if ((w = malloc(sizeof *w)) == NULL) {
		reply_err(c, "busy", "out of memory");
		return;
	}
	reply(c, "OK\n", 3);
	w->conn = c;
	w->next = j->waiters;
	j->waiters = w;
	c->refs++;
}

static void
conn_cancel(struct conn *c, uint64_t id)
{
	struct job	*j;
	const char	*why;

	if ((j = job_find(id)) == NULL) {
		reply_err(c, "notfound", "no job %llu", (unsigned long long)id);
		return;
	}
	switch (dispatch_cancel(j, &why)) {
	case 0:
		reply(c, "OK cancelled\n", 13);
		break;
	case 1:
		/* Whatever the handler does now, a restart must not run it again. */
		journal_end(j);
		reply(c, "OK cancelling\n", 14);
		break;
	default:
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

/* Handle one decoded request. */
static int
conn_request(struct conn *c, struct proto_request *req)
{
	switch (req->cmd) {
	case PROTO_PING:
		reply(c, "OK pong\n", 8);
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
		reply(c, "OK bye\n", 7);
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
		log_notice("RELOAD requested by connection %llu (pid %ld, uid %ld)",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid);
		if (master_reload("RELOAD request") == 0)
			reply(c, "OK reloaded\n", 12);
		else
			reply_err(c, "config", "reload failed; still running on the old "
			    "configuration: %s", master_reload_error());
		break;
	case PROTO_INVALID:
		reply_err(c, req->err_code, "%s", req->err);
		c->skip = req->skip;
		break;
	}
	return (REQ_DONE);
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
	if (conn_unsent(c) > 0)
		return (0);
	/* Each conn_process() under way holds a reference of its own. */
	if (!c->closing && (c->blocked_on != NULL || c->refs > 1 + c->in_process))
		return (0);
	conn_close(c);
	return (1);
}

static void	conn_process_input(struct conn *);

/*
 * A client lost framing: say so, but at most 10 times in each 10 s, so that a local
 * client reconnecting in a loop cannot flood the journal; one line sums up the rest.
 */
static void	server_framing_sum(unsigned long, unsigned long long);
static struct log_limit	 framing_limit = { 10, 10000, server_framing_sum, 0, 0, 0, 0 };

static void
server_framing_sum(unsigned long held, unsigned long long span_ms)
{
	log_info("%lu more connections lost framing and were closed in the last 10 s "
	    "(not logged one by one: at most 10 lines in 10 s)", held);
}

static void
server_log_framing(struct conn *c, const char *err)
{
	if (log_limit_pass(&framing_limit))
		log_info("connection %llu (pid %ld, uid %ld): %s; closed",
		    (unsigned long long)c->id, (long)c->pid, (long)c->uid, err);
}

/*
 * Handle what c has sent; close it afterwards if its replies overflowed meanwhile. A
 * reference is held meanwhile: handling may close c (conn_maybe_close), which frees it
 * when nothing else refers to it.
 */
static void
conn_process(struct conn *c)
{
	if (c->dead)
		return;
	c->refs++;
	c->in_process++;
	conn_process_input(c);
	c->in_process--;
	if (c->overflow && !c->dead)
		conn_close(c);
	conn_unref(c);
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

	while (!c->blocked_on && !c->out_full && !c->closing && !c->overflow) {
		avail = evbuffer_get_length(in);
		if (c->skip > 0) {
			/* The rest of an oversized body: read and thrown away. */
			n = avail < c->skip ? avail : (size_t)c->skip;
			evbuffer_drain(in, n);
			c->skip -= n;
			if (c->skip > 0)
				break;
			continue;
		}
		if (avail == 0)
			break;
		buf = (const char *)evbuffer_pullup(in, -1);
		off = 0;
		while (off < avail && !c->blocked_on && !c->closing && !c->skip) {
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
	/* The client shut down its side in the middle of a request: say so. */
	if (c->rdeof && !c->blocked_on && !c->closing && !c->out_full && c->skip == 0 &&
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
	conn_process(arg);
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
	if (c->dead)
		return;
	if (c->blocked_on != NULL) {
		TAILQ_REMOVE(&c->blocked_on->blocked, c, bentry);
		c->blocked_on->nblocked--;
		c->blocked_on = NULL;
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	conn_unhold(c);
	if (c->hold != NULL)
		evbuffer_free(c->hold);
	c->hold = NULL;
	free(c->marks);
	c->marks = NULL;
	c->capmarks = 0;
	TAILQ_REMOVE(&conns, c, entry);
	nconns--;
	c->dead = 1;
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

/* Room in q: let the connections blocked on it go on, each once, oldest first. */
void
server_unblock(struct queue *q)
{
	struct conn		*c;
	struct unblocking	 self, *u;
	uint32_t		 n;

	for (u = unblocking; u != NULL; u = u->up) {
		if (u->q == q)
			return;
	}
	self.q = q;
	self.up = unblocking;
	unblocking = &self;
	for (n = q->nblocked; n > 0 && (c = TAILQ_FIRST(&q->blocked)) != NULL; n--) {
		if (!master_stopping && !q->removed && !queue_has_room(q, 0))
			break;
		TAILQ_REMOVE(&q->blocked, c, bentry);
		q->nblocked--;
		c->blocked_on = NULL;
		if (!c->out_full && !c->rdeof)
			bufferevent_enable(c->bev, EV_READ);
		conn_process(c);
	}
	if (q->nblocked == 0)
		log_debug("queue %s: producers resumed", q->name);
	unblocking = self.up;
}

/* Has every connection written all it has to say? */
int
server_idle(void)
{
	struct conn	*c;

	TAILQ_FOREACH(c, &conns, entry) {
		if (conn_unsent(c) > 0)
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
}

uint32_t
server_nconns(void)
{
	return (nconns);
}
