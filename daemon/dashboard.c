/*
 * dashboard.c: the live dashboard on metrics_listen (doc/DASHBOARD.md). metrics.c's
 * evhttp hands it every request that is not /metrics or /status:
 *
 *   GET /, /dashboard.js, /dashboard.css	the page, files of dashboard_dir
 *   GET /javascript/dygraphs/...	Debian's libjs-dygraphs, from dashboard_javascript
 *   GET /api/info			what the page needs to know first
 *   GET /api/series			throughput and p99 latencies, a point every 2 s
 *   GET /api/dead			the dead jobs with their last error (bounded)
 *   GET /api/job?id=N			one job's state and attempts
 *   GET /api/events			the event ring as Server-Sent Events
 *   POST /api/retry?id=N, /api/cancel?id=N	actions, when dashboard_actions is on
 *   POST /api/pause?queue=Q, /api/resume?queue=Q	the same
 *
 * The queues and workers come from /status itself. Nothing here shows a payload or a
 * result: ids, queues, states, timings, and error texts cut at DASHBOARD_ERROR_MAX.
 *
 * The event stream is an events.c subscriber whose sink is an evhttp chunked reply:
 * each event is "id: epoch:seq" and its JSON, so a browser that reconnects sends
 * Last-Event-ID and resumes after it (a restart or an overrun shows as a gap event).
 * Its backlog is bounded as EVENTS' is (events.c: what the socket has not taken).
 *
 * Actions need three things: dashboard_actions in the config, the token the daemon
 * wrote at start to dashboard_token_file (0640, for administrators, as Jupyter's) in
 * an X-Jobpool-Token header, and an Origin (or Referer) naming the Host the request
 * was sent to: a page of another site cannot make a browser send them (CSRF).
 *
 * Not on a job's path: the series is one copy of two histograms per queue every
 * DASHBOARD_TICK_S seconds, and the rest runs when a browser asks.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "jobpoold.h"
#include "config.h"
#include "events.h"
#include "hist.h"
#include "log.h"
#include "priv.h"
#include "proto.h"

#define DASHBOARD_TICK_S	2	/* a point of the series */
#define DASHBOARD_POINTS	180	/* 6 minutes of them */
#define DASHBOARD_MAX_STREAMS	32	/* event streams at once */
#define DASHBOARD_KEEPALIVE_S	15	/* a comment on every stream (proxies, dead peers) */
#define DASHBOARD_STALL_S	60	/* a stream whose peer takes nothing this long: closed */
#define DASHBOARD_RECENT	50	/* events a new stream starts with */
#define DASHBOARD_DEAD_MAX	200	/* dead jobs listed, newest first */
#define DASHBOARD_ERROR_MAX	300	/* bytes of an error text shown */
#define DASHBOARD_FILE_MAX	(4 * 1024 * 1024)
#define DASHBOARD_TOKEN_BYTES	24	/* 192 random bits, 48 hex digits */
#define DASHBOARD_TOKEN_HEADER	"X-Jobpool-Token"
#define DASHBOARD_API_VERSION	1

/* One point of a queue's series. */
struct dashboard_point {
	uint64_t	t;		/* wall clock, s */
	double		tput;		/* jobs ended per second over the tick */
	uint64_t	wait_p99;	/* us, of the jobs started over the tick */
	uint64_t	run_p99;	/* us, of the attempts ended over the tick */
};

/* A queue's series (by its idx, which is never reused). */
struct dashboard_series {
	struct hist		wait, run;	/* the queue's at the last tick */
	uint64_t		ended;
	int			primed;
	uint32_t		n, next;	/* points held, where the next goes */
	struct dashboard_point	p[DASHBOARD_POINTS];
};

/* A browser following the events. */
struct dashboard_stream {
	struct evhttp_request		*req;
	struct events_sub		*sub;
	struct evbuffer			*buf;	/* what goes into the next chunk */
	TAILQ_ENTRY(dashboard_stream)	 entry;
};

static struct dashboard_series	**series;
static int			  nseries;
static struct event		 *tick_ev;
static uint64_t			  ticks;
static TAILQ_HEAD(, dashboard_stream) streams = TAILQ_HEAD_INITIALIZER(streams);
static uint32_t			  nstreams;
static char			  token[2 * DASHBOARD_TOKEN_BYTES + 1];	/* "": none */
static char			 *token_path;	/* the file it was written to */

/* The page's files and where they are: the config's directories, by name. */
struct dashboard_file {
	const char	*path;		/* as asked */
	const char	*name;		/* under its directory */
	const char	*type;
	int		 js;		/* under dashboard_javascript, not dashboard_dir */
};
static const struct dashboard_file dashboard_files[] = {
	{ "/", "index.html", "text/html; charset=utf-8", 0 },
	{ "/index.html", "index.html", "text/html; charset=utf-8", 0 },
	{ "/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8", 0 },
	{ "/dashboard.css", "dashboard.css", "text/css; charset=utf-8", 0 },
	{ "/javascript/dygraphs/dygraph.min.js", "dygraphs/dygraph.min.js",
	  "text/javascript; charset=utf-8", 1 },
	{ "/javascript/dygraphs/dygraph.min.css", "dygraphs/dygraph.min.css",
	  "text/css; charset=utf-8", 1 },
};
#define DASHBOARD_NFILES	(sizeof dashboard_files / sizeof dashboard_files[0])
#define DASHBOARD_CHART_FILE	"dygraphs/dygraph.min.js"

static void	dashboard_keepalive(void);
static void	dashboard_error(struct evhttp_request *, int, const char *, const char *,
		    ...) __attribute__((format(printf, 4, 5)));

/* ----- the series ----- */

/* h minus was, bucket by bucket (was: the same histogram earlier), into d. */
static void
dashboard_hist_since(struct hist *d, const struct hist *h, const struct hist *was)
{
	unsigned	b;

	/* Counts only grow; a histogram that shrank was made anew: all of it is new. */
	if (h->n < was->n) {
		*d = *h;
		return;
	}
	d->n = h->n - was->n;
	d->sum = h->sum - was->sum;
	d->max = h->max;
	for (b = 0; b < HIST_NBUCKETS; b++)
		d->b[b] = h->b[b] - was->b[b];
}

/* q's series, made the first time (NULL out of memory). */
static struct dashboard_series *
dashboard_series_get(const struct queue *q)
{
	struct dashboard_series	**more;
	int			  n;

	if (q->idx >= nseries) {
		n = q->idx + 8;
		if ((more = reallocarray(series, (size_t)n, sizeof *series)) == NULL)
			return (NULL);
		memset(more + nseries, 0, (size_t)(n - nseries) * sizeof *more);
		series = more;
		nseries = n;
	}
	if (series[q->idx] == NULL)
		series[q->idx] = calloc(1, sizeof **series);
	return (series[q->idx]);
}

/* Every DASHBOARD_TICK_S: a point per queue. */
static void
dashboard_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dashboard_series	*s;
	struct dashboard_point	*p;
	struct queue		*q;
	struct hist		 d;
	uint64_t		 ended, t = (uint64_t)time(NULL);
	int			 i;

	(void)fd;
	(void)what;
	(void)arg;
	ticks++;
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->removed || (s = dashboard_series_get(q)) == NULL)
			continue;
		ended = q->done + q->failed + q->cancelled;
		if (s->primed) {
			p = &s->p[s->next];
			s->next = (s->next + 1) % DASHBOARD_POINTS;
			if (s->n < DASHBOARD_POINTS)
				s->n++;
			p->t = t;
			p->tput = (double)(ended >= s->ended ? ended - s->ended : ended) /
			    DASHBOARD_TICK_S;
			dashboard_hist_since(&d, &q->st.wait, &s->wait);
			p->wait_p99 = hist_quantile(&d, 0.99);
			dashboard_hist_since(&d, &q->st.run, &s->run);
			p->run_p99 = hist_quantile(&d, 0.99);
		}
		s->wait = q->st.wait;
		s->run = q->st.run;
		s->ended = ended;
		s->primed = 1;
	}
	/* Streams: a comment now and then keeps proxies from closing them. */
	if (ticks % (DASHBOARD_KEEPALIVE_S / DASHBOARD_TICK_S) == 0)
		dashboard_keepalive();
}

/* ----- replies ----- */

/* Headers every answer has: no caching, no framing by other sites, no sniffing. */
static void
dashboard_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq	*hdr = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdr, "Content-Type", type);
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	evhttp_add_header(hdr, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(hdr, "X-Frame-Options", "DENY");
	evhttp_add_header(hdr, "Referrer-Policy", "same-origin");
	evhttp_add_header(hdr, "Content-Security-Policy", "default-src 'self'; "
	    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
	    "frame-ancestors 'none'");
}

/* Send b (a JSON body) with code, and free b. */
static void
dashboard_send_json(struct evhttp_request *req, int code, const char *reason,
    struct evbuffer *b)
{
	dashboard_headers(req, "application/json");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* An error as {"error": text}. */
static void
dashboard_error(struct evhttp_request *req, int code, const char *reason,
    const char *fmt, ...)
{
	struct evbuffer	*b;
	va_list		 ap;
	char		 text[512];

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	evbuffer_add(b, "{\"error\":", 9);
	metrics_json_str(b, text, strlen(text));
	evbuffer_add(b, "}\n", 2);
	dashboard_send_json(req, code, reason, b);
}

/* 405, saying which methods path takes. */
static void
dashboard_not_allowed(struct evhttp_request *req, const char *path, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	dashboard_error(req, 405, "Method Not Allowed", "%s takes %s", path, allow);
}

/* A file of the page: its bytes, or 404 naming the file that is not there. */
static void
dashboard_file(struct evhttp_request *req, const struct dashboard_file *f)
{
	const struct config	*cf = master_config;
	struct evbuffer		*b;
	struct stat		 st;
	char			 path[PATH_MAX];
	int			 fd;

	snprintf(path, sizeof path, "%s/%s", f->js ? cf->dashboard_javascript :
	    cf->dashboard_dir, f->name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1 ||
	    fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > DASHBOARD_FILE_MAX) {
		if (fd != -1)
			close(fd);
		dashboard_error(req, HTTP_NOTFOUND, "Not Found", "%s: %s", path,
		    fd == -1 ? strerror(errno) : "not a file of at most 4 MiB");
		return;
	}
	if ((b = evbuffer_new()) == NULL || evbuffer_add_file(b, fd, 0, st.st_size) != 0) {
		if (b != NULL)
			evbuffer_free(b);
		else
			close(fd);
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	dashboard_headers(req, f->type);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

/* Is Debian's dygraphs there to be served? */
static int
dashboard_chart(void)
{
	char	path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s", master_config->dashboard_javascript,
	    DASHBOARD_CHART_FILE);
	return (access(path, R_OK) == 0);
}

/* ----- the JSON endpoints ----- */

static void
dashboard_info(struct evbuffer *b)
{
	const struct config	*cf = master_config;

	evbuffer_add_printf(b, "{\"version\":%d,\"daemon\":", DASHBOARD_API_VERSION);
	metrics_json_str(b, PACKAGE_VERSION, strlen(PACKAGE_VERSION));
	evbuffer_add_printf(b, ",\"actions\":%s,\"token_file\":",
	    cf->dashboard_actions && token[0] != '\0' ? "true" : "false");
	if (cf->dashboard_actions && token_path != NULL)
		metrics_json_str(b, token_path, strlen(token_path));
	else
		evbuffer_add(b, "null", 4);
	evbuffer_add_printf(b, ",\"chart\":%s,\"interval\":%d,\"streams\":%u,"
	    "\"max_streams\":%d}\n", dashboard_chart() ? "\"dygraphs\"" : "null",
	    DASHBOARD_TICK_S, nstreams, DASHBOARD_MAX_STREAMS);
}

static void
dashboard_series_json(struct evbuffer *b)
{
	const struct dashboard_series	*s;
	const struct dashboard_point	*p;
	struct queue			*q;
	uint32_t			 k;
	int				 i, first = 1;

	evbuffer_add_printf(b, "{\"version\":%d,\"interval\":%d,\"queues\":[",
	    DASHBOARD_API_VERSION, DASHBOARD_TICK_S);
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->removed)
			continue;
		evbuffer_add_printf(b, "%s{\"name\":", first ? "" : ",");
		first = 0;
		metrics_json_str(b, q->name, strlen(q->name));
		evbuffer_add(b, ",\"points\":[", 11);
		s = q->idx < nseries ? series[q->idx] : NULL;
		for (k = 0; s != NULL && k < s->n; k++) {
			p = &s->p[(s->next + DASHBOARD_POINTS - s->n + k) % DASHBOARD_POINTS];
			evbuffer_add_printf(b, "%s[%llu,%.3f,%.6f,%.6f]", k > 0 ? "," : "",
			    (unsigned long long)p->t, p->tput, (double)p->wait_p99 / 1e6,
			    (double)p->run_p99 / 1e6);
		}
		evbuffer_add(b, "]}", 2);
	}
	evbuffer_add(b, "]}\n", 3);
}

/* A dead job's status word: how its last attempt ended. */
static const char *
dashboard_dead_status(const struct job *j)
{
	return (j->x != NULL && j->x->last_status == JOB_TIMEOUT ? "timeout" : "failed");
}

/* The dead jobs, oldest first as the list is, the newest DASHBOARD_DEAD_MAX of them. */
static void
dashboard_dead_json(struct evbuffer *b, const char *queue)
{
	struct job	*j;
	uint64_t	 now = now_ms();
	uint32_t	 total = 0, skip, k = 0, shown = 0;
	uint32_t	 len;

	for (j = job_dead_first(); j != NULL; j = job_dead_next(j)) {
		if (queue == NULL || strcmp(job_queue(j)->name, queue) == 0)
			total++;
	}
	skip = total > DASHBOARD_DEAD_MAX ? total - DASHBOARD_DEAD_MAX : 0;
	evbuffer_add_printf(b, "{\"version\":%d,\"total\":%u,\"dead\":[",
	    DASHBOARD_API_VERSION, total);
	for (j = job_dead_first(); j != NULL; j = job_dead_next(j)) {
		if (queue != NULL && strcmp(job_queue(j)->name, queue) != 0)
			continue;
		if (k++ < skip)
			continue;
		evbuffer_add_printf(b, "%s{\"id\":%llu,\"queue\":", shown++ > 0 ? "," : "",
		    (unsigned long long)j->id);
		metrics_json_str(b, job_queue(j)->name, strlen(job_queue(j)->name));
		evbuffer_add_printf(b, ",\"attempts\":%u,\"status\":\"%s\",\"age\":%.3f,"
		    "\"error\":", j->attempts, dashboard_dead_status(j),
		    (double)(now - (j->x != NULL ? j->x->died_ms : now)) / 1000.0);
		len = job_rlen(j) > DASHBOARD_ERROR_MAX ? DASHBOARD_ERROR_MAX : job_rlen(j);
		metrics_json_str(b, job_result(j) != NULL ? job_result(j) : "", len);
		evbuffer_add(b, "}", 1);
	}
	evbuffer_add(b, "]}\n", 3);
}

/* One job: its state and attempts, never its payload or result. */
static void
dashboard_job_json(struct evbuffer *b, const struct job *j)
{
	const struct attempt	*a;
	unsigned		 i, k;

	evbuffer_add_printf(b, "{\"version\":%d,\"id\":%llu,\"queue\":",
	    DASHBOARD_API_VERSION, (unsigned long long)j->id);
	metrics_json_str(b, job_queue(j)->name, strlen(job_queue(j)->name));
	evbuffer_add_printf(b, ",\"state\":\"%s\",\"prio\":%d,\"attempts\":%u,"
	    "\"max_attempts\":%u,\"cancelling\":%s,\"history\":[",
	    job_state_name(j->state), j->prio, j->attempts, job_queue(j)->cf.retries + 1,
	    j->cancel ? "true" : "false");
	for (i = 0; j->x != NULL && j->x->hist != NULL && i < j->x->nhist; i++) {
		k = (j->x->hist_next + JOB_HIST_MAX - j->x->nhist + i) % JOB_HIST_MAX;
		a = &j->x->hist[k];
		evbuffer_add_printf(b, "%s{\"attempt\":%u,\"worker\":%ld,\"outcome\":\"%s\","
		    "\"ms\":%u,\"error\":", i > 0 ? "," : "", a->n, (long)a->pid,
		    job_state_name((enum job_state)a->outcome), a->ms);
		metrics_json_str(b, a->err, strnlen(a->err, sizeof a->err));
		evbuffer_add(b, "}", 1);
	}
	evbuffer_add(b, "]}\n", 3);
}

/* The value of key in the query (copied into buf, of len bytes): 1, or 0 if none. */
static int
dashboard_query(struct evhttp_request *req, const char *key, char *buf, size_t len)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*qs = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq	 kv;
	const char		*v;
	int			 found = 0;

	TAILQ_INIT(&kv);
	if (qs == NULL || evhttp_parse_query_str(qs, &kv) != 0)
		return (0);
	if ((v = evhttp_find_header(&kv, key)) != NULL && *v != '\0') {
		snprintf(buf, len, "%s", v);
		found = 1;
	}
	evhttp_clear_headers(&kv);
	return (found);
}

/* The job id= of the query, or 0 (none or not a number). */
static uint64_t
dashboard_query_id(struct evhttp_request *req)
{
	char		buf[32];
	uint64_t	id;

	if (!dashboard_query(req, "id", buf, sizeof buf) ||
	    proto_parse_u64(buf, strlen(buf), &id) != 0)
		return (0);
	return (id);
}

/* ----- the event stream ----- */

static struct evbuffer *
dashboard_stream_out(void *arg)
{
	return (((struct dashboard_stream *)arg)->buf);
}

/* What the peer has not taken: the next chunk, and the connection's output. */
static size_t
dashboard_stream_unsent(void *arg)
{
	struct dashboard_stream		*st = arg;
	struct evhttp_connection	*evcon = evhttp_request_get_connection(st->req);

	if (evcon == NULL)
		return (SIZE_MAX / 2);	/* gone: feed it nothing */
	return (evbuffer_get_length(st->buf) +
	    evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(evcon))));
}

/* The peer took a chunk's worth: feed it more. */
static void
dashboard_stream_sent_cb(struct evhttp_connection *evcon, void *arg)
{
	struct dashboard_stream	*st = arg;

	(void)evcon;
	events_sub_writable(st->sub);
}

/* What a feed added, as one chunk. */
static void
dashboard_stream_flush(void *arg)
{
	struct dashboard_stream	*st = arg;

	if (evbuffer_get_length(st->buf) > 0)
		evhttp_send_reply_chunk_with_cb(st->req, st->buf, dashboard_stream_sent_cb,
		    st);
}

/* A stream never ends on its own (no until=now): nothing to do. */
static void
dashboard_stream_end(void *arg)
{
	(void)arg;
}

/* events_free() freed its subscriber (at exit). */
static void
dashboard_stream_drop(void *arg)
{
	((struct dashboard_stream *)arg)->sub = NULL;
}

static const struct events_sink dashboard_sink = {
	dashboard_stream_out, dashboard_stream_unsent, dashboard_stream_flush,
	dashboard_stream_end, dashboard_stream_drop, 1
};

static void
dashboard_stream_free(struct dashboard_stream *st)
{
	TAILQ_REMOVE(&streams, st, entry);
	nstreams--;
	events_sub_free(st->sub);
	evbuffer_free(st->buf);
	free(st);
}

/*
 * The connection closed: the peer went away (evhttp let go of the request, which we
 * end, so it is freed), or evhttp_free() at exit (it frees the request itself).
 */
static void
dashboard_stream_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct dashboard_stream	*st = arg;
	struct evhttp_request	*req = st->req;

	(void)evcon;
	dashboard_stream_free(st);
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_send_reply_end(req);
}

/* Every stream a comment line: proxies keep it, a dead peer shows. */
static void
dashboard_keepalive(void)
{
	struct dashboard_stream	*st;

	TAILQ_FOREACH(st, &streams, entry) {
		if (dashboard_stream_unsent(st) > 0)
			continue;
		evbuffer_add(st->buf, ": keepalive\n\n", 13);
		dashboard_stream_flush(st);
	}
}

/*
 * Where to resume: Last-Event-ID (a browser reconnecting) or since= (a page opened
 * again), "epoch:seq"; else the last DASHBOARD_RECENT events.
 */
static void
dashboard_stream_since(struct evhttp_request *req, struct events_want *want)
{
	const char		*v;
	unsigned long long	 e, s;
	char			 id[64] = "";
	int			 n = 0;

	if ((v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Last-Event-ID")) != NULL)
		snprintf(id, sizeof id, "%s", v);
	else
		(void)dashboard_query(req, "since", id, sizeof id);
	if (id[0] != '\0' && sscanf(id, "%llu:%llu%n", &e, &s, &n) == 2 &&
	    id[n] == '\0') {
		want->since = EVENTS_SINCE_SEQ;
		want->epoch = e;
		want->seq = s;
		return;
	}
	want->since = EVENTS_SINCE_SEQ;
	want->epoch = events_epoch();
	want->seq = events_last_seq() > DASHBOARD_RECENT ?
	    events_last_seq() - DASHBOARD_RECENT : 0;
}

static void
dashboard_events(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon = evhttp_request_get_connection(req);
	struct dashboard_stream		*st;
	struct events_want		 want;
	struct timeval			 stall = { DASHBOARD_STALL_S, 0 };

	if (nstreams >= DASHBOARD_MAX_STREAMS) {
		dashboard_error(req, HTTP_SERVUNAVAIL, "Too many streams", "%d event "
		    "streams are open already", DASHBOARD_MAX_STREAMS);
		return;
	}
	if ((st = calloc(1, sizeof *st)) == NULL ||
	    (st->buf = evbuffer_new()) == NULL) {
		free(st);
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	memset(&want, 0, sizeof want);
	want.types = (1u << EVENTS_NTYPES) - 1;
	want.admin = 1;
	want.uid = geteuid();
	want.from = "dashboard";
	dashboard_stream_since(req, &want);
	st->req = req;
	if ((st->sub = events_sub_new(&dashboard_sink, st, &want)) == NULL) {
		evbuffer_free(st->buf);
		free(st);
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	TAILQ_INSERT_TAIL(&streams, st, entry);
	nstreams++;
	dashboard_headers(req, "text/event-stream");
	/* nginx: pass each event on as it comes. */
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Accel-Buffering",
	    "no");
	evhttp_send_reply_start(req, HTTP_OK, "OK");
	/*
	 * No idle limit (it is quiet when the daemon is); one on a peer taking nothing.
	 * evhttp reads on only to see the peer close: what a peer sends meanwhile is not
	 * read past 4 KiB.
	 */
	bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL, &stall);
	bufferevent_setwatermark(evhttp_connection_get_bufferevent(evcon), EV_READ, 0,
	    4096);
	evhttp_connection_set_closecb(evcon, dashboard_stream_close_cb, st);
	evbuffer_add(st->buf, "retry: 2000\n\n", 13);
	events_sub_writable(st->sub);
}

/* ----- actions ----- */

/* Do a and b hold the same bytes? In time that does not depend on where they differ. */
static int
dashboard_same(const char *a, const char *b)
{
	size_t		la = strlen(a), lb = strlen(b), i;
	unsigned char	d = la != lb;

	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return (d == 0);
}

/* Does origin (a URL) name host, the Host the request was sent to? */
static int
dashboard_same_host(const char *origin, const char *host)
{
	size_t	n = strlen(host);

	if (strncmp(origin, "http://", 7) == 0)
		origin += 7;
	else if (strncmp(origin, "https://", 8) == 0)
		origin += 8;
	else
		return (0);
	return (strncmp(origin, host, n) == 0 &&
	    (origin[n] == '\0' || origin[n] == '/'));
}

/* May req act? NULL, or why not (for the 403). */
static const char *
dashboard_may_act(struct evhttp_request *req)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	const char		*host, *origin, *t;

	if (!master_config->dashboard_actions)
		return ("actions are off (dashboard_actions in jobpool.conf)");
	if (token[0] == '\0')
		return ("no token was written at start (see the log)");
	if ((t = evhttp_find_header(in, DASHBOARD_TOKEN_HEADER)) == NULL)
		return ("no " DASHBOARD_TOKEN_HEADER " header");
	if (!dashboard_same(t, token))
		return ("wrong " DASHBOARD_TOKEN_HEADER);
	if ((host = evhttp_find_header(in, "Host")) == NULL)
		return ("no Host header");
	if ((origin = evhttp_find_header(in, "Origin")) == NULL &&
	    (origin = evhttp_find_header(in, "Referer")) == NULL)
		return ("neither Origin nor Referer: a cross-site request is refused");
	if (!dashboard_same_host(origin, host))
		return ("Origin (or Referer) is not this Host: a cross-site request is "
		    "refused");
	return (NULL);
}

/* POST /api/retry?id=N and /api/cancel?id=N: as RETRY and CANCEL do. */
static void
dashboard_action(struct evhttp_request *req, int cancel)
{
	struct evbuffer	*b;
	struct job	*j;
	const char	*why, *state;
	char		*peer = NULL;
	uint64_t	 id;
	ev_uint16_t	 port = 0;
	int		 r;

	if ((why = dashboard_may_act(req)) != NULL) {
		dashboard_error(req, 403, "Forbidden", "%s", why);
		return;
	}
	if ((id = dashboard_query_id(req)) == 0) {
		dashboard_error(req, HTTP_BADREQUEST, "Bad Request", "id: a job id is "
		    "needed (?id=N)");
		return;
	}
	if ((j = job_find(id)) == NULL) {
		dashboard_error(req, HTTP_NOTFOUND, "Not Found", "no job %llu",
		    (unsigned long long)id);
		return;
	}
	if (!cancel && master_stopping) {
		dashboard_error(req, HTTP_SERVUNAVAIL, "Stopping", "the daemon is "
		    "shutting down");
		return;
	}
	r = cancel ? dispatch_cancel(j, &why) : dispatch_retry(j, &why);
	if (r < 0 || (!cancel && r != 0)) {
		dashboard_error(req, 409, "Conflict", "job %llu %s",
		    (unsigned long long)id, why != NULL ? why : "cannot be changed");
		return;
	}
	state = !cancel ? "queued" : r == 1 ? "cancelling" : "cancelled";
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
	log_info("dashboard: job %llu %s from %s port %u", (unsigned long long)id,
	    cancel ? "cancelled" : "queued again", peer != NULL ? peer : "?",
	    (unsigned)port);
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	evbuffer_add_printf(b, "{\"ok\":true,\"id\":%llu,\"state\":\"%s\"}\n",
	    (unsigned long long)id, state);
	dashboard_send_json(req, HTTP_OK, "OK", b);
}

/* POST /api/pause?queue=Q and /api/resume?queue=Q: as PAUSE and RESUME do. */
static void
dashboard_pause(struct evhttp_request *req, int on)
{
	struct evbuffer	*b;
	struct queue	*q;
	const char	*why;
	char		 name[PROTO_MAX_NAME + 2], *peer = NULL;
	ev_uint16_t	 port = 0;

	if ((why = dashboard_may_act(req)) != NULL) {
		dashboard_error(req, 403, "Forbidden", "%s", why);
		return;
	}
	/* One byte more than a name may have: a longer one is refused, not cut. */
	if (!dashboard_query(req, "queue", name, sizeof name) ||
	    !proto_valid_name(name, strlen(name))) {
		dashboard_error(req, HTTP_BADREQUEST, "Bad Request", "queue: a queue "
		    "name is needed (?queue=NAME, 1 to %d of A-Z a-z 0-9 _ . -)",
		    PROTO_MAX_NAME);
		return;
	}
	if ((q = queue_find(name)) == NULL) {
		dashboard_error(req, HTTP_NOTFOUND, "Not Found", "no queue '%s'", name);
		return;
	}
	/* The token holder acts as the daemon itself: its uid in STATS and the event. */
	queue_pause(q, on, geteuid());
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
	log_info("dashboard: queue %s %s from %s port %u", q->name, on ? "paused" :
	    "resumed", peer != NULL ? peer : "?", (unsigned)port);
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	evbuffer_add_printf(b, "{\"ok\":true,\"queue\":\"%s\",\"paused\":%s}\n", q->name,
	    q->paused ? "true" : "false");
	dashboard_send_json(req, HTTP_OK, "OK", b);
}

/* ----- routing ----- */

/* A GET of a JSON endpoint: the body, or an error already sent (NULL). */
static int
dashboard_api(struct evhttp_request *req, const char *path)
{
	struct evbuffer	*b;
	struct job	*j;
	char		 queue[PROTO_MAX_NAME + 1];
	uint64_t	 id;

	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return (1);
	}
	if (strcmp(path, "/api/info") == 0)
		dashboard_info(b);
	else if (strcmp(path, "/api/series") == 0)
		dashboard_series_json(b);
	else if (strcmp(path, "/api/dead") == 0)
		dashboard_dead_json(b, dashboard_query(req, "queue", queue, sizeof queue) ?
		    queue : NULL);
	else if (strcmp(path, "/api/job") == 0) {
		if ((id = dashboard_query_id(req)) == 0 || (j = job_find(id)) == NULL) {
			evbuffer_free(b);
			if (id == 0)
				dashboard_error(req, HTTP_BADREQUEST, "Bad Request", "id: a "
				    "job id is needed (?id=N)");
			else
				dashboard_error(req, HTTP_NOTFOUND, "Not Found", "no job "
				    "%llu (finished jobs are kept up to keep_results)",
				    (unsigned long long)id);
			return (1);
		}
		dashboard_job_json(b, j);
	} else {
		evbuffer_free(b);
		return (0);
	}
	dashboard_send_json(req, HTTP_OK, "OK", b);
	return (1);
}

int
dashboard_request(struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type	cmd = evhttp_request_get_command(req);
	int			get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
	size_t			i;

	if (master_config == NULL || !master_config->dashboard)
		return (0);
	if (strcmp(path, "/api/retry") == 0 || strcmp(path, "/api/cancel") == 0 ||
	    strcmp(path, "/api/pause") == 0 || strcmp(path, "/api/resume") == 0) {
		if (cmd != EVHTTP_REQ_POST)
			dashboard_not_allowed(req, path, "POST");
		else if (strcmp(path, "/api/pause") == 0 || strcmp(path, "/api/resume") == 0)
			dashboard_pause(req, strcmp(path, "/api/pause") == 0);
		else
			dashboard_action(req, strcmp(path, "/api/cancel") == 0);
		return (1);
	}
	for (i = 0; i < DASHBOARD_NFILES; i++) {
		if (strcmp(path, dashboard_files[i].path) != 0)
			continue;
		if (!get)
			dashboard_not_allowed(req, path, "GET, HEAD");
		else
			dashboard_file(req, &dashboard_files[i]);
		return (1);
	}
	if (strncmp(path, "/api/", 5) != 0)
		return (0);
	if (!get) {
		dashboard_not_allowed(req, path, "GET, HEAD");
		return (1);
	}
	if (strcmp(path, "/api/events") == 0) {
		if (cmd == EVHTTP_REQ_HEAD) {
			/* The headers alone: a stream that can send nothing is not opened. */
			dashboard_headers(req, "text/event-stream");
			evhttp_send_reply(req, HTTP_OK, "OK", NULL);
		} else
			dashboard_events(req);
		return (1);
	}
	return (dashboard_api(req, path));
}

/* ----- the token, start and stop ----- */

/* A group's id by name or number: 0, or -1 if there is none. */
static int
dashboard_gid(const char *name, gid_t *gid)
{
	struct group	*gr;
	uint64_t	 n;

	if (proto_parse_u64(name, strlen(name), &n) == 0 && n < (gid_t)-1) {
		*gid = (gid_t)n;
		return (0);
	}
	if ((gr = getgrnam(name)) == NULL)
		return (-1);
	*gid = gr->gr_gid;
	return (0);
}

/* The token file's group: the first of admin_groups, else the daemon's (or gid). */
static gid_t
dashboard_token_gid(const struct config *cf, gid_t gid)
{
	uid_t	u;
	gid_t	g;

	if (cf->nadmin_groups > 0 && dashboard_gid(cf->admin_groups[0], &g) == 0)
		return (g);
	if (cf->group != NULL && dashboard_gid(cf->group, &g) == 0)
		return (g);
	if (cf->user != NULL && priv_uid(cf->user, &u, &g) == 0 && g != (gid_t)-1)
		return (g);
	return (gid);
}

/*
 * A new token, in a new file at cf's dashboard_token_file: 0640, the daemon's user
 * (the one it drops to) and the administrators' group. 0, or -1 with *cause.
 */
static int
dashboard_token_write(const struct config *cf, char **cause)
{
	unsigned char	 raw[DASHBOARD_TOKEN_BYTES];
	char		 line[sizeof token + 1];
	uid_t		 uid = geteuid();
	gid_t		 gid = getegid(), g;
	size_t		 i;
	int		 fd = -1;
	const char	*call = "getrandom";

	*cause = NULL;
	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
		goto fail;
	for (i = 0; i < sizeof raw; i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	if (uid == 0 && cf->user != NULL && priv_uid(cf->user, &uid, &g) != 0)
		uid = 0;
	gid = dashboard_token_gid(cf, gid);
	/* A new file: never one a link or an old owner points somewhere else. */
	call = "unlink";
	if (unlink(cf->dashboard_token_file) == -1 && errno != ENOENT)
		goto fail;
	call = "open";
	if ((fd = open(cf->dashboard_token_file, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1)
		goto fail;
	/*
	 * As root: the daemon's user and the group. Started as that user (the unit), the
	 * group only if the user is in it; else the file keeps the user's own group.
	 */
	call = "fchown";
	if (geteuid() == 0 ? fchown(fd, uid, gid) == -1 :
	    gid != getegid() && fchown(fd, (uid_t)-1, gid) == -1 && errno != EPERM)
		goto fail;
	call = "fchmod";
	if (fchmod(fd, 0640) == -1)
		goto fail;
	call = "write";
	snprintf(line, sizeof line, "%s\n", token);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		goto fail;
	close(fd);
	free(token_path);
	if ((token_path = strdup(cf->dashboard_token_file)) == NULL) {
		token[0] = '\0';
		*cause = strdup("dashboard: out of memory");
		return (-1);
	}
	return (0);
fail:
	if (asprintf(cause, "dashboard_token_file %s: %s: %s", cf->dashboard_token_file,
	    call, errno != 0 ? strerror(errno) : "short") == -1)
		*cause = NULL;
	if (fd != -1) {
		close(fd);
		(void)unlink(cf->dashboard_token_file);
	}
	explicit_bzero(token, sizeof token);
	return (-1);
}

/* Actions on and no token yet: write one (at start, or a reload that turned them on). */
static void
dashboard_token_make(const struct config *cf)
{
	char	*cause = NULL;

	if (!cf->dashboard || !cf->dashboard_actions || token[0] != '\0' ||
	    cf->metrics_listen == NULL)
		return;
	if (cf->dashboard_token_file == NULL) {
		log_warnx("dashboard: no dashboard_token_file: actions are refused");
		return;
	}
	if (dashboard_token_write(cf, &cause) != 0) {
		log_warnx("%s; dashboard actions are refused",
		    cause != NULL ? cause : "dashboard: out of memory");
		free(cause);
		return;
	}
	log_info("dashboard: actions on; the token is in %s", token_path);
}

int
dashboard_start(const struct config *cf)
{
	struct timeval	tv = { DASHBOARD_TICK_S, 0 };

	dashboard_token_make(cf);
	if (tick_ev != NULL)
		return (0);
	if ((tick_ev = event_new(master_base, -1, EV_PERSIST, dashboard_tick_cb,
	    NULL)) == NULL)
		return (-1);
	event_add(tick_ev, &tv);
	return (0);
}

void
dashboard_reconfigure(const struct config *cf)
{
	dashboard_token_make(cf);
}

void
dashboard_stop(void)
{
	struct dashboard_stream	*st;
	int			 i;

	/* evhttp_free() closed them, each through its close callback; in case not: */
	while ((st = TAILQ_FIRST(&streams)) != NULL)
		dashboard_stream_free(st);
	if (tick_ev != NULL)
		event_free(tick_ev);
	tick_ev = NULL;
	for (i = 0; i < nseries; i++)
		free(series[i]);
	free(series);
	series = NULL;
	nseries = 0;
	/* The token dies with the daemon (a file left behind would name an old one). */
	if (token_path != NULL)
		(void)unlink(token_path);
	free(token_path);
	token_path = NULL;
	explicit_bzero(token, sizeof token);
}

uint32_t
dashboard_streams(void)
{
	return (nstreams);
}
