/*
 * metrics.c: the HTTP exporter (metrics_listen): GET /metrics in Prometheus' text
 * exposition format (version 0.0.4) and GET /status as JSON (doc/METRICS.md), served
 * by libevent's evhttp on the master's loop.
 *
 * Nothing here is on a job's path: a scrape reads what the other modules keep anyway
 * (stats.c's counters and histograms, supervisor.c's workers, the journal's fsync
 * times) when it comes, so the daemon pays for monitoring only when it is scraped. A
 * scrape is built in one pass of the loop: its cost is a walk of the queues and
 * workers and a read of /proc/PID/stat per worker. evhttp bounds what a client can
 * make the master hold (headers, body, a connection's idle time).
 *
 * Labels come from the configuration only (queue names, worker slots, fixed words),
 * never from job data, and label values are escaped all the same.
 *
 * A metric family is a line of metrics_families[]: its name, type and help, and a
 * getter for one value of the daemon, of a queue or of a worker, or a writer of its
 * own samples when it has other labels (outcomes, states, histogram buckets).
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "jobpoold.h"
#include "events.h"
#include "journal.h"
#include "log.h"
#include "proto.h"

#define METRICS_MAX_HEADERS	8192	/* a request's header bytes */
#define METRICS_MAX_BODY	1024	/* GET and HEAD carry none */
#define METRICS_TIMEOUT_S	10	/* a connection idle or slow this long is closed */
#define METRICS_BACKLOG		64
#define METRICS_STATUS_VERSION	1	/* /status's "version": bumped if a key changes meaning */

static struct evhttp			*metrics_http;
static struct evhttp_bound_socket	*metrics_bound;
static char				*metrics_addr;	/* what metrics_bound listens on */
static time_t				 metrics_start_wall;	/* the daemon's start */
static uint64_t				 metrics_start_ms;

/* A worker as one scrape sees it: /proc read once for every family that needs it. */
struct metrics_worker {
	const struct worker	*w;
	struct proc_usage	 u;
};

/* What one scrape reads once. */
struct metrics_scrape {
	struct evbuffer		*b;
	struct metrics_worker	*workers;
	size_t			 nworkers;
	struct proc_usage	 self;
};

struct metrics_family {
	const char	*name;
	const char	*type;		/* counter, gauge or histogram */
	const char	*help;
	/* One of these: */
	double		(*daemon)(const struct metrics_scrape *);	/* one sample */
	double		(*queue)(const struct queue *);		/* {queue} */
	double		(*worker)(const struct metrics_worker *);	/* {queue,worker} */
	void		(*write)(const struct metrics_scrape *, const struct metrics_family *);
	/* If set, the family is there only when this says so (the journal's). */
	int		(*when)(void);
};

/* ----- the text format ----- */

/* Where a value's text goes: at most this many bytes ("%.15g" needs 23). */
#define METRICS_NUMBER_MAX	32

/* A number as the format writes it, at p: integers exactly (up to 10^15), else 15 digits. */
static size_t
metrics_number(char *p, double v)
{
	int	n;

	/* The common case (every counter and gauge), without printf's float path. */
	if (v >= 0 && v < 1e15 && v == (double)(uint64_t)v)
		return (proto_fmt_u64(p, (uint64_t)v));
	n = snprintf(p, METRICS_NUMBER_MAX, "%.15g", v);
	return (n > 0 && n < METRICS_NUMBER_MAX ? (size_t)n : 0);
}

/* A label value between its quotes, at p: backslash, quote and newline escaped. */
static size_t
metrics_label_value(char *p, const char *s)
{
	char	*start = p;

	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			*p++ = '\\';
			*p++ = *s;
		} else if (*s == '\n') {
			*p++ = '\\';
			*p++ = 'n';
		} else
			*p++ = *s;
	}
	return ((size_t)(p - start));
}

/* Copy a string to p: its length. */
static size_t
metrics_copy(char *p, const char *s)
{
	size_t	n = strlen(s);

	memcpy(p, s, n);
	return (n);
}

/*
 * One sample: name and suffix, the queue's label if q, one more label k="v" if k, the
 * value. Written straight into the buffer's free space, one line at a time (a scrape
 * writes a few hundred lines; formatting them through printf was most of its cost).
 */
static void
metrics_sample(struct evbuffer *b, const char *name, const char *suffix,
    const struct queue *q, const char *k, const char *v, double val)
{
	struct evbuffer_iovec	 iov;
	size_t			 need;
	char			*p;

	/* Escaping at most doubles a label value. */
	need = strlen(name) + strlen(suffix) + METRICS_NUMBER_MAX + 32 +
	    (q != NULL ? 2 * strlen(q->name) : 0) +
	    (k != NULL ? strlen(k) + 2 * strlen(v) : 0);
	if (evbuffer_reserve_space(b, (ev_ssize_t)need, &iov, 1) < 1)
		return;
	p = iov.iov_base;
	p += metrics_copy(p, name);
	p += metrics_copy(p, suffix);
	if (q != NULL || k != NULL) {
		*p++ = '{';
		if (q != NULL) {
			p += metrics_copy(p, "queue=\"");
			p += metrics_label_value(p, q->name);
			*p++ = '"';
		}
		if (k != NULL) {
			if (q != NULL)
				*p++ = ',';
			p += metrics_copy(p, k);
			*p++ = '=';
			*p++ = '"';
			p += metrics_label_value(p, v);
			*p++ = '"';
		}
		*p++ = '}';
	}
	*p++ = ' ';
	p += metrics_number(p, val);
	*p++ = '\n';
	iov.iov_len = (size_t)(p - (char *)iov.iov_base);
	evbuffer_commit_space(b, &iov, 1);
}

/* A family's HELP and TYPE lines (the help texts hold no backslash or newline). */
static void
metrics_head(struct evbuffer *b, const struct metrics_family *f)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
	    f->type);
}

/*
 * Histogram buckets, 100 us to 30 min in a 1-2.5-5 series, as the le label says them
 * and in us. A bucket counts the values at or below its bound to within a bucket of
 * struct hist (1.6%).
 */
static const char *const metrics_bounds_s[] = {
	"0.0001", "0.00025", "0.0005",
	"0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05",
	"0.1", "0.25", "0.5",
	"1", "2.5", "5",
	"10", "25", "50",
	"100", "250", "500",
	"1000", "1800"
};
static const uint64_t metrics_bounds_us[] = {
	100, 250, 500,
	1000, 2500, 5000,
	10000, 25000, 50000,
	100000, 250000, 500000,
	1000000, 2500000, 5000000,
	10000000, 25000000, 50000000,
	100000000, 250000000, 500000000,
	1000000000, 1800000000
};
#define METRICS_NBOUNDS	(sizeof metrics_bounds_us / sizeof metrics_bounds_us[0])
_Static_assert(sizeof metrics_bounds_s / sizeof metrics_bounds_s[0] == METRICS_NBOUNDS,
    "a bucket's bound in seconds and in us");

/*
 * What hist_count_le() says for each of the ascending bounds, in one walk of the
 * buckets instead of one per bound (a scrape has 23 bounds a histogram).
 */
static void
metrics_hist_le(const struct hist *h, uint64_t le[METRICS_NBOUNDS])
{
	uint64_t	cum = 0;
	unsigned	b = 0, last;
	size_t		i;

	for (i = 0; i < METRICS_NBOUNDS; i++) {
		if (metrics_bounds_us[i] >= h->max) {
			le[i] = h->n;
			continue;
		}
		/* The bucket holding the bound counts if the bound is its top. */
		last = hist_bucket(metrics_bounds_us[i]);
		if (hist_bucket_high(last) > metrics_bounds_us[i]) {
			if (last == 0) {
				le[i] = 0;
				continue;
			}
			last--;
		}
		for (; b <= last; b++)
			cum += h->b[b];
		le[i] = cum;
	}
}

/* A histogram's samples: cumulative buckets, +Inf, _sum and _count, in seconds. */
static void
metrics_hist(struct evbuffer *b, const char *name, const struct queue *q,
    const struct hist *h)
{
	uint64_t	le[METRICS_NBOUNDS];
	size_t		i;

	metrics_hist_le(h, le);
	for (i = 0; i < METRICS_NBOUNDS; i++)
		metrics_sample(b, name, "_bucket", q, "le", metrics_bounds_s[i],
		    (double)le[i]);
	metrics_sample(b, name, "_bucket", q, "le", "+Inf", (double)h->n);
	metrics_sample(b, name, "_sum", q, NULL, NULL, (double)h->sum / 1e6);
	metrics_sample(b, name, "_count", q, NULL, NULL, (double)h->n);
}

/* Queues shown: as in STATS, a removed queue until it has drained. */
static int
metrics_queue_shown(struct queue *q)
{
	return (!q->removed || queue_depth(q) > 0 || q->running > 0 ||
	    supervisor_alive_queue(q));
}

/* ----- the families ----- */

static double
metrics_start_time(const struct metrics_scrape *s)
{
	return ((double)metrics_start_wall);
}

static double
metrics_uptime(const struct metrics_scrape *s)
{
	return ((double)(now_ms() - metrics_start_ms) / 1000.0);
}

static double
metrics_self_rss(const struct metrics_scrape *s)
{
	return ((double)s->self.rss_bytes);
}

static double
metrics_self_cpu(const struct metrics_scrape *s)
{
	return ((double)s->self.cpu_us / 1e6);
}

static double
metrics_connections(const struct metrics_scrape *s)
{
	return ((double)server_nconns());
}

static double
metrics_events(const struct metrics_scrape *s)
{
	return ((double)events_last_seq());
}

static double
metrics_events_dropped(const struct metrics_scrape *s)
{
	return ((double)events_dropped());
}

static double
metrics_subscribers(const struct metrics_scrape *s)
{
	return ((double)events_subscribers());
}

static double
metrics_dashboard_streams(const struct metrics_scrape *s)
{
	return ((double)dashboard_streams());
}

static double
metrics_jobs_known(const struct metrics_scrape *s)
{
	return ((double)job_count());
}

static double
metrics_stopping(const struct metrics_scrape *s)
{
	return (master_stopping ? 1.0 : 0.0);
}

static int
metrics_journal_on(void)
{
	return (journal_on);
}

static double
metrics_journal_bytes(const struct metrics_scrape *s)
{
	struct journal_info	ji;

	return (journal_info(&ji) == 0 ? (double)ji.bytes : 0.0);
}

static double
metrics_journal_written(const struct metrics_scrape *s)
{
	struct journal_info	ji;

	return (journal_info(&ji) == 0 ? (double)ji.written : 0.0);
}

static double
metrics_journal_failing(const struct metrics_scrape *s)
{
	struct journal_info	ji;

	return (journal_info(&ji) == 0 && ji.refusal != NULL ? 1.0 : 0.0);
}

static void
metrics_journal_fsync(const struct metrics_scrape *s, const struct metrics_family *f)
{
	struct hist	h;

	if (journal_fsync_hist(&h) != 0)
		return;
	metrics_head(s->b, f);
	metrics_hist(s->b, f->name, NULL, &h);
}

static void
metrics_build_info(const struct metrics_scrape *s, const struct metrics_family *f)
{
	metrics_head(s->b, f);
	metrics_sample(s->b, f->name, "", NULL, "version", PACKAGE_VERSION, 1.0);
}

static double
metrics_q_submitted(const struct queue *q)
{
	return ((double)q->submitted);
}

static double
metrics_q_poisoned(const struct queue *q)
{
	return ((double)q->poisoned);
}

static double
metrics_q_worker_deaths(const struct queue *q)
{
	return ((double)q->worker_deaths);
}

static double
metrics_q_bytes(const struct queue *q)
{
	return ((double)q->bytes);
}

static double
metrics_q_max_jobs(const struct queue *q)
{
	return ((double)q->cf.max_jobs);
}

static double
metrics_q_max_bytes(const struct queue *q)
{
	return ((double)q->cf.max_bytes);
}

static double
metrics_q_blocked(const struct queue *q)
{
	return ((double)server_nblocked(q));
}

static double
metrics_q_keys(const struct queue *q)
{
	return ((double)q->keys.nkeys);
}

static double
metrics_q_failed(const struct queue *q)
{
	return (q->failed_reason != NULL ? 1.0 : 0.0);
}

static double
metrics_q_paused(const struct queue *q)
{
	return (q->paused ? 1.0 : 0.0);
}

static double
metrics_q_oldest(const struct queue *q)
{
	return ((double)queue_oldest_wait_us(q, now_us()) / 1e6);
}

/*
 * How jobs ended, and failed attempts that will be retried. A failed attempt is either
 * retried or, out of attempts (or poison, or a permanent error), makes its job dead.
 */
static void
metrics_jobs_total(const struct metrics_scrape *s, const struct metrics_family *f)
{
	struct queue	*q;
	int		 i;

	metrics_head(s->b, f);
	for (i = 0; i < nqueues; i++) {
		if (!metrics_queue_shown(q = queues[i]))
			continue;
		metrics_sample(s->b, f->name, "", q, "outcome", "succeeded",
		    (double)q->done);
		metrics_sample(s->b, f->name, "", q, "outcome", "retried",
		    (double)q->retried);
		metrics_sample(s->b, f->name, "", q, "outcome", "dead", (double)q->failed);
		metrics_sample(s->b, f->name, "", q, "outcome", "cancelled",
		    (double)q->cancelled);
	}
}

/* The jobs a queue holds, by where they are. */
static void
metrics_queue_jobs(const struct metrics_scrape *s, const struct metrics_family *f)
{
	struct queue	*q;
	int		 i;

	metrics_head(s->b, f);
	for (i = 0; i < nqueues; i++) {
		if (!metrics_queue_shown(q = queues[i]))
			continue;
		metrics_sample(s->b, f->name, "", q, "state", "queued", (double)q->nready);
		metrics_sample(s->b, f->name, "", q, "state", "delayed",
		    (double)(q->nheap - q->st.retry_wait));
		metrics_sample(s->b, f->name, "", q, "state", "retry_wait",
		    (double)q->st.retry_wait);
		metrics_sample(s->b, f->name, "", q, "state", "running",
		    (double)q->running);
		metrics_sample(s->b, f->name, "", q, "state", "dead", (double)q->ndead);
		metrics_sample(s->b, f->name, "", q, "state", "parked",
		    (double)q->keys.nparked);
	}
}

static void
metrics_wait_hist(const struct metrics_scrape *s, const struct metrics_family *f)
{
	int	i;

	metrics_head(s->b, f);
	for (i = 0; i < nqueues; i++) {
		if (metrics_queue_shown(queues[i]))
			metrics_hist(s->b, f->name, queues[i], &queues[i]->st.wait);
	}
}

static void
metrics_run_hist(const struct metrics_scrape *s, const struct metrics_family *f)
{
	int	i;

	metrics_head(s->b, f);
	for (i = 0; i < nqueues; i++) {
		if (metrics_queue_shown(queues[i]))
			metrics_hist(s->b, f->name, queues[i], &queues[i]->st.run);
	}
}

/* Every state stats.c names, so that each series is there (at 0) from the start. */
static const char *const metrics_worker_states[] = {
	"starting", "idle", "busy", "stopping", "retiring", "dead"
};
#define METRICS_NSTATES	\
	(sizeof metrics_worker_states / sizeof metrics_worker_states[0])

static void
metrics_workers_by_state(const struct metrics_scrape *s, const struct metrics_family *f)
{
	struct queue	*q;
	const char	*st;
	unsigned	 n[METRICS_NSTATES];
	size_t		 k;
	int		 i, j;

	metrics_head(s->b, f);
	for (i = 0; i < nqueues; i++) {
		if (!metrics_queue_shown(q = queues[i]))
			continue;
		memset(n, 0, sizeof n);
		for (j = 0; j < q->nworkers; j++) {
			if (q->workers[j] == NULL)
				continue;
			st = worker_state_name(q->workers[j]);
			for (k = 0; k < METRICS_NSTATES; k++) {
				if (strcmp(st, metrics_worker_states[k]) == 0) {
					n[k]++;
					break;
				}
			}
		}
		for (k = 0; k < METRICS_NSTATES; k++)
			metrics_sample(s->b, f->name, "", q, "state",
			    metrics_worker_states[k], (double)n[k]);
	}
}

static double
metrics_w_rss(const struct metrics_worker *mw)
{
	return ((double)mw->u.rss_bytes);
}

static double
metrics_w_cpu(const struct metrics_worker *mw)
{
	return ((double)mw->u.cpu_us / 1e6);
}

static double
metrics_w_jobs(const struct metrics_worker *mw)
{
	return ((double)mw->w->jobs_done);
}

/* How long its longest-running job has run (us); 0: idle. */
static uint64_t
metrics_w_age_us(const struct worker *w, uint64_t now)
{
	return (supervisor_busy_us(w, now));
}

static double
metrics_w_age(const struct metrics_worker *mw)
{
	return ((double)metrics_w_age_us(mw->w, now_us()) / 1e6);
}

/*
 * Every family, in the order of the output. One more family is a line here and its
 * getter above (doc/METRICS.md lists them all: keep it with this table).
 */
static const struct metrics_family metrics_families[] = {
	{ "jobpool_build_info", "gauge", "Always 1; the version of jobpoold in its "
	    "label.", .write = metrics_build_info },
	{ "process_start_time_seconds", "gauge", "When the daemon started, in seconds "
	    "since the epoch.", .daemon = metrics_start_time },
	{ "jobpool_uptime_seconds", "gauge", "Seconds since the daemon started.",
	    .daemon = metrics_uptime },
	{ "process_resident_memory_bytes", "gauge", "The master's resident set size.",
	    .daemon = metrics_self_rss },
	{ "process_cpu_seconds_total", "counter", "The master's user and system CPU "
	    "time.", .daemon = metrics_self_cpu },
	{ "jobpool_connections", "gauge", "Clients connected to the socket.",
	    .daemon = metrics_connections },
	{ "jobpool_jobs_known", "gauge", "Jobs the daemon holds: waiting, running, "
	    "finished and kept for WAIT and STATUS, and dead.",
	    .daemon = metrics_jobs_known },
	{ "jobpool_stopping", "gauge", "1 while the daemon shuts down.",
	    .daemon = metrics_stopping },
	{ "jobpool_dashboard_streams", "gauge", "Browsers following the events on the "
	    "dashboard (Server-Sent Events; each is an event subscriber too).",
	    .daemon = metrics_dashboard_streams },
	{ "jobpool_events_total", "counter", "Events published since the start (the "
	    "last sequence number of EVENTS).", .daemon = metrics_events },
	{ "jobpool_events_dropped_total", "counter", "Events EVENTS subscribers lost: "
	    "their gaps, and what the ring overtook and has not told them yet.",
	    .daemon = metrics_events_dropped },
	{ "jobpool_event_subscribers", "gauge", "Followers of the event stream: EVENTS "
	    "connections and the dashboard's streams.", .daemon = metrics_subscribers },
	{ "jobpool_jobs_submitted_total", "counter", "Jobs accepted (not counting those "
	    "the journal recovered at a start).", .queue = metrics_q_submitted },
	{ "jobpool_jobs_total", "counter", "Jobs ended (succeeded, dead, cancelled), "
	    "and failed attempts retried (retried).", .write = metrics_jobs_total },
	{ "jobpool_jobs_poisoned_total", "counter", "Jobs made dead for killing "
	    "poison_after workers in a row (counted in outcome dead too).",
	    .queue = metrics_q_poisoned },
	{ "jobpool_queue_jobs", "gauge", "Jobs a queue holds: queued (ready), delayed "
	    "(due later), retry_wait (waiting to retry), running (sent to a worker), dead.",
	    .write = metrics_queue_jobs },
	{ "jobpool_queue_oldest_wait_seconds", "gauge", "How long the oldest job ready "
	    "to run has waited for a worker; 0 when none waits.", .queue = metrics_q_oldest },
	{ "jobpool_queue_bytes", "gauge", "Payload bytes of the queued and delayed jobs.",
	    .queue = metrics_q_bytes },
	{ "jobpool_queue_max_jobs", "gauge", "max_jobs: queued and delayed jobs before "
	    "producers are held.", .queue = metrics_q_max_jobs },
	{ "jobpool_queue_max_bytes", "gauge", "max_bytes: their payload bytes before "
	    "producers are held.", .queue = metrics_q_max_bytes },
	{ "jobpool_queue_blocked_producers", "gauge", "Connections held until the queue "
	    "has room.", .queue = metrics_q_blocked },
	{ "jobpool_queue_failed", "gauge", "1 while the queue's handler cannot start.",
	    .queue = metrics_q_failed },
	{ "jobpool_queue_paused", "gauge", "1 while the queue is paused (PAUSE, or its "
	    "config): it takes jobs but starts none.", .queue = metrics_q_paused },
	{ "jobpool_queue_keys", "gauge", "Job keys the queue tracks: with jobs parked "
	    "or running, paused, or refilling their bucket.", .queue = metrics_q_keys },
	{ "jobpool_job_wait_seconds", "histogram", "Time from submission (or the due "
	    "time) to the start of an attempt.", .write = metrics_wait_hist },
	{ "jobpool_job_run_seconds", "histogram", "Time from the start to the end of an "
	    "attempt.", .write = metrics_run_hist },
	{ "jobpool_workers", "gauge", "Worker processes by state.",
	    .write = metrics_workers_by_state },
	{ "jobpool_worker_deaths_total", "counter", "Workers that died without being "
	    "asked to.", .queue = metrics_q_worker_deaths },
	{ "jobpool_worker_resident_memory_bytes", "gauge", "A worker's resident set "
	    "size.", .worker = metrics_w_rss },
	{ "jobpool_worker_cpu_seconds_total", "counter", "A worker's user and system CPU "
	    "time (the slot's worker: it restarts at 0 with a new one).",
	    .worker = metrics_w_cpu },
	{ "jobpool_worker_jobs_total", "counter", "Jobs a worker has finished (the "
	    "slot's worker: it restarts at 0 with a new one).", .worker = metrics_w_jobs },
	{ "jobpool_worker_job_age_seconds", "gauge", "How long the job a worker runs has "
	    "run; 0 when it runs none.", .worker = metrics_w_age },
	{ "jobpool_journal_fsync_seconds", "histogram", "How long the journal's "
	    "fdatasync calls took.", .write = metrics_journal_fsync },
	{ "jobpool_journal_bytes", "gauge", "Size of the journal file.",
	    .daemon = metrics_journal_bytes, .when = metrics_journal_on },
	{ "jobpool_journal_written_bytes_total", "counter", "Bytes the journal has "
	    "written.", .daemon = metrics_journal_written, .when = metrics_journal_on },
	{ "jobpool_journal_failing", "gauge", "1 while the journal cannot be written "
	    "(new jobs are refused).", .daemon = metrics_journal_failing,
	    .when = metrics_journal_on },
};

/* The workers of the queues shown, with what /proc says of each (0s if it is gone). */
static int
metrics_scrape_begin(struct metrics_scrape *s, struct evbuffer *b)
{
	struct metrics_worker	 mw;
	struct queue		*q;
	size_t			 n = 0;
	int			 i, k;

	memset(s, 0, sizeof *s);
	s->b = b;
	if (stats_proc_usage(getpid(), &s->self) != 0)
		s->self = (struct proc_usage){ 0 };
	for (i = 0; i < nqueues; i++)
		n += (size_t)queues[i]->nworkers;
	if (n == 0)
		return (0);
	if ((s->workers = calloc(n, sizeof *s->workers)) == NULL)
		return (-1);
	for (i = 0; i < nqueues; i++) {
		if (!metrics_queue_shown(q = queues[i]))
			continue;
		for (k = 0; k < q->nworkers && s->nworkers < n; k++) {
			if ((mw.w = q->workers[k]) == NULL)
				continue;
			if (stats_proc_usage(mw.w->pid, &mw.u) != 0)
				mw.u = (struct proc_usage){ 0 };
			s->workers[s->nworkers++] = mw;
		}
	}
	return (0);
}

/* The samples of a family with a getter. */
static void
metrics_write_family(const struct metrics_scrape *s, const struct metrics_family *f)
{
	const struct metrics_worker	*mw;
	char				 slot[16];
	size_t				 k;
	int				 i;

	metrics_head(s->b, f);
	if (f->daemon != NULL)
		metrics_sample(s->b, f->name, "", NULL, NULL, NULL, f->daemon(s));
	if (f->queue != NULL) {
		for (i = 0; i < nqueues; i++) {
			if (metrics_queue_shown(queues[i]))
				metrics_sample(s->b, f->name, "", queues[i], NULL, NULL,
				    f->queue(queues[i]));
		}
	}
	if (f->worker != NULL) {
		for (k = 0; k < s->nworkers; k++) {
			mw = &s->workers[k];
			snprintf(slot, sizeof slot, "%d", mw->w->slot);
			metrics_sample(s->b, f->name, "", mw->w->queue, "worker", slot,
			    f->worker(mw));
		}
	}
}

/* The whole /metrics body: 0, or -1 out of memory. */
int
metrics_write(struct evbuffer *b)
{
	struct metrics_scrape	 s;
	const struct metrics_family *f;
	size_t			 i;

	if (metrics_scrape_begin(&s, b) != 0)
		return (-1);
	for (i = 0; i < sizeof metrics_families / sizeof metrics_families[0]; i++) {
		f = &metrics_families[i];
		if (f->when != NULL && !f->when())
			continue;
		if (f->write != NULL)
			f->write(&s, f);
		else
			metrics_write_family(&s, f);
	}
	free(s.workers);
	return (0);
}

/* ----- /status ----- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
metrics_utf8_len(const unsigned char *s, size_t n)
{
	size_t		len, i;
	uint32_t	c;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return (0);
	if (len > n)
		return (0);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and past U+10FFFF are not UTF-8. */
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return (0);
	return (len);
}

/*
 * A JSON string of the n bytes at str: escaped, and a byte that is not UTF-8 replaced
 * by U+FFFD (the dashboard's texts too).
 */
void
metrics_json_str(struct evbuffer *b, const char *str, size_t n)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 len;

	evbuffer_add(b, "\"", 1);
	while (n > 0) {
		if (*s == '"' || *s == '\\') {
			evbuffer_add_printf(b, "\\%c", *s);
			len = 1;
		} else if (*s < 0x20 || *s == 0x7f) {
			evbuffer_add_printf(b, "\\u%04x", *s);
			len = 1;
		} else if ((len = metrics_utf8_len(s, n)) == 0) {
			evbuffer_add(b, "\\ufffd", 6);
			len = 1;
		} else
			evbuffer_add(b, s, len);
		s += len;
		n -= len;
	}
	evbuffer_add(b, "\"", 1);
}

/* "key":"value" or "key":null, with a leading comma unless first. */
static void
metrics_json_kv(struct evbuffer *b, int first, const char *key, const char *val)
{
	evbuffer_add_printf(b, "%s\"%s\":", first ? "" : ",", key);
	if (val != NULL)
		metrics_json_str(b, val, strlen(val));
	else
		evbuffer_add(b, "null", 4);
}

/* A latency distribution: count, sum and quantiles in seconds. */
static void
metrics_json_hist(struct evbuffer *b, const char *key, const struct hist *h)
{
	evbuffer_add_printf(b, ",\"%s\":{\"count\":%llu,\"sum\":%.6f,\"p50\":%.6f,"
	    "\"p90\":%.6f,\"p99\":%.6f,\"p999\":%.6f,\"max\":%.6f}", key,
	    (unsigned long long)h->n, (double)h->sum / 1e6,
	    (double)hist_quantile(h, 0.5) / 1e6, (double)hist_quantile(h, 0.9) / 1e6,
	    (double)hist_quantile(h, 0.99) / 1e6, (double)hist_quantile(h, 0.999) / 1e6,
	    (double)h->max / 1e6);
}

static void
metrics_status_daemon(const struct metrics_scrape *s)
{
	struct evbuffer		*b = s->b;
	struct journal_info	 ji;

	evbuffer_add(b, "\"daemon\":{", 10);
	metrics_json_kv(b, 1, "version", PACKAGE_VERSION);
	evbuffer_add_printf(b, ",\"pid\":%ld,\"start_time\":%lld,\"uptime_seconds\":%.3f,"
	    "\"connections\":%u,\"jobs\":%llu,\"dead_jobs\":%u,\"stopping\":%s,"
	    "\"rss_bytes\":%llu,\"cpu_seconds\":%.3f,\"journal\":", (long)getpid(),
	    (long long)metrics_start_wall, metrics_uptime(s), server_nconns(),
	    (unsigned long long)job_count(), job_dead_count(),
	    master_stopping ? "true" : "false", (unsigned long long)s->self.rss_bytes,
	    (double)s->self.cpu_us / 1e6);
	if (journal_info(&ji) != 0) {
		evbuffer_add(b, "null}", 5);
		return;
	}
	evbuffer_add(b, "{", 1);
	metrics_json_kv(b, 1, "dir", ji.dir);
	metrics_json_kv(b, 0, "fsync", ji.fsync);
	metrics_json_kv(b, 0, "state", ji.refusal != NULL ? "failing" : "ok");
	metrics_json_kv(b, 0, "reason", ji.refusal);
	evbuffer_add_printf(b, ",\"file\":%llu,\"bytes\":%llu,\"live_bytes\":%llu,"
	    "\"fsyncs\":%llu,\"written\":%llu,\"compactions\":%llu,\"recovered\":%llu,"
	    "\"damaged\":%llu}}", (unsigned long long)ji.file,
	    (unsigned long long)ji.bytes, (unsigned long long)ji.live_bytes,
	    (unsigned long long)ji.fsyncs, (unsigned long long)ji.written,
	    (unsigned long long)ji.compactions, (unsigned long long)ji.recovered,
	    (unsigned long long)ji.damaged);
}

static void
metrics_status_queue(struct evbuffer *b, const struct queue *q)
{
	evbuffer_add(b, "{", 1);
	metrics_json_kv(b, 1, "name", q->name);
	metrics_json_kv(b, 0, "state", queue_state_name(q));
	metrics_json_kv(b, 0, "reason", q->failed_reason);
	metrics_json_kv(b, 0, "handler", q->cf.handler);
	evbuffer_add_printf(b, ",\"paused\":%s", q->paused ? "true" : "false");
	evbuffer_add_printf(b, ",\"workers\":%d,\"queued\":%u,\"delayed\":%u,"
	    "\"retry_wait\":%u,\"running\":%u,\"busy\":%u,\"dead\":%llu,\"bytes\":%llu,"
	    "\"blocked\":%u,"
	    "\"max_jobs\":%u,\"max_bytes\":%llu,\"jobs\":{\"submitted\":%llu,"
	    "\"succeeded\":%llu,\"retried\":%llu,\"dead\":%llu,\"cancelled\":%llu,"
	    "\"poisoned\":%llu},\"worker_deaths\":%llu", q->cf.workers, q->nready,
	    q->nheap - q->st.retry_wait, q->st.retry_wait, q->running, q->busy,
	    (unsigned long long)q->ndead,
	    (unsigned long long)q->bytes, server_nblocked(q), q->cf.max_jobs,
	    (unsigned long long)q->cf.max_bytes, (unsigned long long)q->submitted,
	    (unsigned long long)q->done, (unsigned long long)q->retried,
	    (unsigned long long)q->failed, (unsigned long long)q->cancelled,
	    (unsigned long long)q->poisoned, (unsigned long long)q->worker_deaths);
	evbuffer_add_printf(b, ",\"oldest_wait\":%.6f,\"throughput\":{\"1m\":%.3f,"
	    "\"5m\":%.3f,\"15m\":%.3f}",
	    (double)queue_oldest_wait_us(q, now_us()) / 1e6, q->st.tput[0], q->st.tput[1],
	    q->st.tput[2]);
	metrics_json_hist(b, "wait", &q->st.wait);
	metrics_json_hist(b, "run", &q->st.run);
	evbuffer_add(b, "}", 1);
}

static void
metrics_status_worker(struct evbuffer *b, const struct metrics_worker *mw)
{
	const struct worker	*w = mw->w;
	const struct job	*head;

#ifdef __clang_analyzer__
	/*
	 * metrics_scrape_begin() sets w in every entry below nworkers; the analyzer
	 * loses that in the calloc'd array (it assumes nqueues may change in between).
	 */
	if (w == NULL)
		return;
#endif
	evbuffer_add(b, "{", 1);
	metrics_json_kv(b, 1, "queue", w->queue->name);
	evbuffer_add_printf(b, ",\"slot\":%d,\"pid\":%ld", w->slot, (long)w->pid);
	metrics_json_kv(b, 0, "state", worker_state_name(w));
	evbuffer_add_printf(b, ",\"jobs\":%llu,\"inflight\":%u,\"rss_bytes\":%llu,"
	    "\"cpu_seconds\":%.3f,\"job\":", (unsigned long long)w->jobs_done,
	    w->ninflight, (unsigned long long)mw->u.rss_bytes,
	    (double)mw->u.cpu_us / 1e6);
	/* The head of its in-flight list: the first of the jobs it runs (as STATS says). */
	if (w->ninflight > 0 && (head = TAILQ_FIRST(&w->inflight)) != NULL)
		evbuffer_add_printf(b, "%llu", (unsigned long long)head->id);
	else
		evbuffer_add(b, "null", 4);
	evbuffer_add_printf(b, ",\"age\":%.6f}",
	    (double)metrics_w_age_us(w, now_us()) / 1e6);
}

/* The whole /status body (doc/METRICS.md has its shape): 0, or -1 out of memory. */
int
metrics_write_status(struct evbuffer *b)
{
	struct metrics_scrape	s;
	size_t			k;
	int			i, first = 1;

	if (metrics_scrape_begin(&s, b) != 0)
		return (-1);
	evbuffer_add_printf(b, "{\"version\":%d,", METRICS_STATUS_VERSION);
	metrics_status_daemon(&s);
	evbuffer_add(b, ",\"queues\":[", 11);
	for (i = 0; i < nqueues; i++) {
		if (!metrics_queue_shown(queues[i]))
			continue;
		if (!first)
			evbuffer_add(b, ",", 1);
		first = 0;
		metrics_status_queue(b, queues[i]);
	}
	evbuffer_add(b, "],\"workers\":[", 13);
	for (k = 0; k < s.nworkers; k++) {
		if (k > 0)
			evbuffer_add(b, ",", 1);
		metrics_status_worker(b, &s.workers[k]);
	}
	evbuffer_add(b, "]}\n", 3);
	free(s.workers);
	return (0);
}

/* ----- HTTP ----- */

static void	metrics_reply_error(struct evhttp_request *, int, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

/* An error with a line of text saying it (evhttp_send_error would drop our headers). */
static void
metrics_reply_error(struct evhttp_request *req, int code, const char *reason,
    const char *fmt, ...)
{
	struct evkeyvalq	*hdr = evhttp_request_get_output_headers(req);
	struct evbuffer		*b;
	va_list			 ap;
	char			 text[256];

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);

	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, code, reason);
		return;
	}
	evbuffer_add_printf(b, "%d %s: %s\n", code, reason, text);
	evhttp_add_header(hdr, "Content-Type", "text/plain; charset=utf-8");
	if (code == 405)
		evhttp_add_header(hdr, "Allow", "GET, HEAD");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* Every request: /metrics and /status by GET or HEAD; 404 and 405 otherwise. */
static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*hdr = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	const char		*path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer		*b;
	int			 is_metrics, r;

	if (path == NULL)
		path = "";
	is_metrics = strcmp(path, "/metrics") == 0;
	if (!is_metrics && strcmp(path, "/status") != 0) {
		/* The dashboard's page and its /api/ (dashboard.c), when it is on. */
		if (dashboard_request(req, path))
			return;
		metrics_reply_error(req, HTTP_NOTFOUND, "Not Found", "jobpoold serves "
		    "/metrics and /status%s", master_config != NULL &&
		    master_config->dashboard ? ", and the dashboard at /" : "");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		metrics_reply_error(req, 405, "Method Not Allowed", "only GET and HEAD");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
		return;
	}
	if (is_metrics) {
		r = metrics_write(b);
		evhttp_add_header(hdr, "Content-Type", "text/plain; version=0.0.4; "
		    "charset=utf-8");
	} else {
		r = metrics_write_status(b);
		evhttp_add_header(hdr, "Content-Type", "application/json");
	}
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	if (r != 0)
		evhttp_send_error(req, HTTP_SERVUNAVAIL, "Out of memory");
	else
		evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

/* The server object, made the first time something is to be served. */
static int
metrics_http_make(char **cause)
{
	if (metrics_http != NULL)
		return (0);
	if ((metrics_http = evhttp_new(master_base)) == NULL) {
		*cause = strdup("metrics: cannot make the HTTP server (out of memory)");
		return (-1);
	}
	evhttp_set_max_headers_size(metrics_http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(metrics_http, METRICS_MAX_BODY);
	evhttp_set_timeout(metrics_http, METRICS_TIMEOUT_S);
	/* Every method reaches the callback, which answers 405 but to GET and HEAD. */
	evhttp_set_allowed_methods(metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(metrics_http, metrics_request_cb, NULL);
	return (0);
}

/* Listen on addr: the bound socket, or NULL with *cause naming the call that failed. */
static struct evhttp_bound_socket *
metrics_bind(const char *addr, char **cause)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_storage		 ss;
	socklen_t			 sslen;
	const char			*call;
	char				 why[256];
	int				 fd, on = 1;

	*cause = NULL;
	if (config_parse_listen(addr, &ss, &sslen, why, sizeof why) != 0) {
		if (asprintf(cause, "metrics_listen %s: %s", addr, why) == -1)
			*cause = NULL;
		return (NULL);
	}
	if (metrics_http_make(cause) != 0)
		return (NULL);
	call = "socket";
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto fail;
	/* A restart must not wait for the last scrape's TIME_WAIT. */
	call = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
		goto fail;
	/* [::] means IPv6 only: the same on every host, whatever its sysctl says. */
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == -1)
		goto fail;
	call = "bind";
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1)
		goto fail;
	call = "listen";
	if (listen(fd, METRICS_BACKLOG) == -1)
		goto fail;
	if ((bs = evhttp_accept_socket_with_handle(metrics_http, fd)) == NULL) {
		close(fd);
		if (asprintf(cause, "metrics_listen %s: out of memory", addr) == -1)
			*cause = NULL;
		return (NULL);
	}
	return (bs);
fail:
	if (asprintf(cause, "metrics_listen %s: %s: %s", addr, call,
	    strerror(errno)) == -1)
		*cause = NULL;
	if (fd != -1)
		close(fd);
	return (NULL);
}

/* Serve on addr (the bound socket bs) from now on, instead of what was before. */
static int
metrics_use(struct evhttp_bound_socket *bs, const char *addr)
{
	char	*copy = NULL;

	if (addr != NULL && (copy = strdup(addr)) == NULL) {
		if (bs != NULL)
			evhttp_del_accept_socket(metrics_http, bs);
		return (-1);
	}
	if (metrics_bound != NULL)
		evhttp_del_accept_socket(metrics_http, metrics_bound);
	metrics_bound = bs;
	free(metrics_addr);
	metrics_addr = copy;
	return (0);
}

/*
 * At start, before the privileges are dropped: note the start time and, if cf has
 * metrics_listen, listen there. 0, or -1 with *cause.
 */
int
metrics_start(const struct config *cf, char **cause)
{
	struct evhttp_bound_socket	*bs;

	*cause = NULL;
	metrics_start_wall = time(NULL);
	metrics_start_ms = now_ms();
	if (dashboard_start(cf) != 0) {
		*cause = strdup("dashboard: out of memory");
		return (-1);
	}
	if (cf->metrics_listen == NULL)
		return (0);
	if ((bs = metrics_bind(cf->metrics_listen, cause)) == NULL)
		return (-1);
	if (metrics_use(bs, cf->metrics_listen) != 0) {
		*cause = strdup("metrics: out of memory");
		return (-1);
	}
	log_info("metrics: serving /metrics and /status on http://%s", metrics_addr);
	return (0);
}

/*
 * At a reload: listen where cf says if it changed. A new address that cannot be bound
 * (in use, a port below 1024 after the privileges were dropped) keeps the old
 * listener, and the log says why; the next reload tries again.
 */
void
metrics_reconfigure(const struct config *cf)
{
	struct evhttp_bound_socket	*bs;
	const char			*want = cf->metrics_listen;
	char				*cause = NULL;

	dashboard_reconfigure(cf);
	if ((want == NULL && metrics_addr == NULL) ||
	    (want != NULL && metrics_addr != NULL && strcmp(want, metrics_addr) == 0))
		return;
	if (want == NULL) {
		log_info("reload: metrics_listen is off: no longer serving on %s",
		    metrics_addr);
		(void)metrics_use(NULL, NULL);
		return;
	}
	if ((bs = metrics_bind(want, &cause)) == NULL) {
		if (metrics_addr != NULL)
			log_warnx("reload: %s; still serving metrics on %s",
			    cause != NULL ? cause : "out of memory", metrics_addr);
		else
			log_warnx("reload: %s; not serving metrics",
			    cause != NULL ? cause : "out of memory");
		free(cause);
		return;
	}
	if (metrics_use(bs, want) != 0) {
		log_warnx("reload: metrics_listen %s: out of memory", want);
		return;
	}
	log_info("reload: metrics: serving /metrics and /status on http://%s",
	    metrics_addr);
}

/* At exit: close the listener and every connection. */
void
metrics_stop(void)
{
	if (metrics_http != NULL)
		evhttp_free(metrics_http);	/* with its bound sockets, and streams */
	metrics_http = NULL;
	dashboard_stop();
	metrics_bound = NULL;
	free(metrics_addr);
	metrics_addr = NULL;
}
