/*
 * stats.c: the STATS body (PROTOCOL.md): one line per object, a type word, a name and
 * key=value words.
 */

#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "events.h"
#include "idem.h"
#include "journal.h"
#include "log.h"

static uint64_t		 stats_start_ms;
static struct event	*stats_tick_ev;

/*
 * The throughput rates: every STATS_TICK_S, the jobs that ended since the last tick,
 * per second, folded into exponentially decayed averages over 1, 5 and 15 minutes, as
 * the kernel's load average does: rate = rate * e + now * (1 - e), e = exp(-5 s /
 * window). A constant rate is reached to 63% after one window, to 95% after three.
 */
static const double	 stats_decay[3] = {
	0.920044414629323,	/* exp(-5 / 60) */
	0.983471453821617,	/* exp(-5 / 300) */
	0.994459848004897	/* exp(-5 / 900) */
};
_Static_assert(STATS_TICK_S == 5, "stats_decay is for a tick of 5 s");

void
stats_tick(struct queue *q)
{
	uint64_t	ends = q->done + q->failed + q->cancelled;
	double		now;
	int		i;

	now = (double)(ends - q->st.ends_seen) / STATS_TICK_S;
	q->st.ends_seen = ends;
	for (i = 0; i < 3; i++)
		q->st.tput[i] = q->st.tput[i] * stats_decay[i] + now * (1.0 - stats_decay[i]);
}

static void
stats_tick_cb(evutil_socket_t fd, short events, void *arg)
{
	int	i;

	for (i = 0; i < nqueues; i++)
		stats_tick(queues[i]);
}

/* What pid uses, from /proc/PID/stat (fields 14, 15 and 24 of proc(5)). */
int
stats_proc_usage(pid_t pid, struct proc_usage *u)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 ut, st;
	long			 rss, hz, page;
	ssize_t			 n;
	int			 fd;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return (-1);
	buf[n] = '\0';
	/* The command (field 2) may hold spaces and parentheses: start after its last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return (-1);
	/* Fields 3 to 13 skipped, then utime and stime, 16 to 23 skipped, then rss. */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
	    "%*d %*d %*d %*d %*d %*d %*u %*u %ld", &ut, &st, &rss) != 3)
		return (-1);
	hz = sysconf(_SC_CLK_TCK);
	page = sysconf(_SC_PAGESIZE);
	u->cpu_us = (ut + st) * (1000000ull / (unsigned long long)(hz > 0 ? hz : 100));
	u->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
	return (0);
}

/*
 * running, backoff (respawns are being delayed), failed (the handler cannot start), or
 * paused (PAUSE, or its Redis source is).
 */
const char *
queue_state_name(const struct queue *q)
{
	if (q->removed)
		return ("removing");
	if (q->failed_reason != NULL)
		return ("failed");
	if (q->paused || source_redis_paused(q) != NULL)
		return ("paused");
	if (q->sv.respawn_ev != NULL && evtimer_pending(q->sv.respawn_ev, NULL))
		return ("backoff");
	return ("running");
}

const char *
worker_state_name(const struct worker *w)
{
	switch (w->life) {
	case WORKER_STARTING:
		return ("starting");
	case WORKER_READY:
		return (w->ninflight > 0 ? "busy" : "idle");
	case WORKER_RETIRING:
		return ("retiring");
	case WORKER_STOPPING:
	case WORKER_EXITED:
	case WORKER_CLOSED:
		/* Half-ended is still on its way out; let go, its job pipe closed: retiring. */
		return (w->leave == WORKER_RETIRED || w->leave == WORKER_SAID_RETIRE ?
		    "retiring" : "stopping");
	default:
		return ("dead");
	}
}

/* A value that may hold spaces, percent-encoded so it stays one word. */
static void
stats_add_encoded(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s <= ' ' || *s == '%' || (unsigned char)*s >= 0x7f)
			evbuffer_add_printf(out, "%%%02X", (unsigned char)*s);
		else
			evbuffer_add(out, s, 1);
	}
}

/* Free text for the end of a line: newlines folded. */
static void
stats_add_line(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++)
		evbuffer_add(out, (*s == '\n' || *s == '\r') ? " " : s, 1);
}

/* The journal's line, when there is one. */
static void
stats_write_journal(struct evbuffer *out)
{
	struct journal_info	ji;

	if (journal_info(&ji) != 0)
		return;
	evbuffer_add_printf(out, "journal journal.%llu state=%s fsync=%s bytes=%llu "
	    "live_bytes=%llu records=%llu batches=%llu durable=%llu fsyncs=%llu "
	    "written=%llu compactions=%llu recovered=%llu unknown_queue=%u damaged=%llu "
	    "damaged_bytes=%llu dir=",
	    (unsigned long long)ji.file, ji.refusal != NULL ? "failing" : "ok", ji.fsync,
	    (unsigned long long)ji.bytes, (unsigned long long)ji.live_bytes,
	    (unsigned long long)ji.records, (unsigned long long)ji.batches,
	    (unsigned long long)ji.durable, (unsigned long long)ji.fsyncs,
	    (unsigned long long)ji.written, (unsigned long long)ji.compactions,
	    (unsigned long long)ji.recovered, ji.unknown_queue,
	    (unsigned long long)ji.damaged, (unsigned long long)ji.damaged_bytes);
	stats_add_encoded(out, ji.dir);
	/* The file the start found damaged and kept aside (the last, if several). */
	if (ji.damaged_file != NULL) {
		evbuffer_add_printf(out, " damaged_file=");
		stats_add_encoded(out, ji.damaged_file);
	}
	if (ji.refusal != NULL) {
		evbuffer_add_printf(out, " reason=");
		stats_add_line(out, ji.refusal);
	}
	evbuffer_add(out, "\n", 1);
}

/* A distribution's keys: name_p50_us= ... name_max_us= name_count=. */
static void
stats_write_hist(struct evbuffer *out, const char *name, const struct hist *h)
{
	evbuffer_add_printf(out, "%s_p50_us=%llu %s_p90_us=%llu %s_p99_us=%llu "
	    "%s_p999_us=%llu %s_max_us=%llu %s_count=%llu ",
	    name, (unsigned long long)hist_quantile(h, 0.5),
	    name, (unsigned long long)hist_quantile(h, 0.9),
	    name, (unsigned long long)hist_quantile(h, 0.99),
	    name, (unsigned long long)hist_quantile(h, 0.999),
	    name, (unsigned long long)h->max, name, (unsigned long long)h->n);
}

/* The monitoring keys of a queue line (each followed by a space). */
static void
stats_write_latency(struct evbuffer *out, const struct queue *q, uint64_t now)
{
	evbuffer_add_printf(out, "retry_wait=%u throughput_1m=%.3f throughput_5m=%.3f "
	    "throughput_15m=%.3f oldest_wait_us=%llu ", q->st.retry_wait, q->st.tput[0],
	    q->st.tput[1], q->st.tput[2],
	    (unsigned long long)queue_oldest_wait_us(q, now));
	stats_write_hist(out, "wait", &q->st.wait);
	stats_write_hist(out, "run", &q->st.run);
}

/* Append the daemon, queue and worker lines to out. */
void
stats_write(struct evbuffer *out)
{
	struct queue	*q;
	struct worker	*w;
	struct job	*head;
	struct proc_usage u;
	uint64_t	 now = now_us();
	int		 i, k;

	if (stats_start_ms == 0)
		stats_start_ms = now_ms();
	evbuffer_add_printf(out, "daemon jobpoold version=%s pid=%ld uptime=%llu "
	    "connections=%u jobs=%llu stopping=%d", PACKAGE_VERSION, (long)getpid(),
	    (unsigned long long)(now_ms() - stats_start_ms) / 1000, server_nconns(),
	    (unsigned long long)job_count(), master_stopping);
	events_stats(out);
	idem_stats(out);
	evbuffer_add(out, "\n", 1);
	stats_write_journal(out);
	events_stats_lines(out);
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		/* A removed queue shows while it drains, and disappears once it is empty. */
		if (q->removed && queue_depth(q) == 0 && q->running == 0 &&
		    !supervisor_alive_queue(q))
			continue;
		evbuffer_add_printf(out, "queue %s state=%s workers=%d depth=%u "
		    "delayed=%u running=%u busy=%u bytes=%llu submitted=%llu done=%llu "
		    "failed=%llu cancelled=%llu retried=%llu dead=%llu poisoned=%llu "
		    "blocked=%u worker_deaths=%llu max_jobs=%u max_bytes=%llu "
		    "max_running=%u rate=%g ", q->name, queue_state_name(q),
		    q->nworkers, q->nready, q->nheap, q->running, q->busy,
		    (unsigned long long)q->bytes, (unsigned long long)q->submitted,
		    (unsigned long long)q->done, (unsigned long long)q->failed,
		    (unsigned long long)q->cancelled, (unsigned long long)q->retried,
		    (unsigned long long)q->ndead, (unsigned long long)q->poisoned,
		    server_nblocked(q), (unsigned long long)q->worker_deaths,
		    q->cf.max_jobs, (unsigned long long)q->cf.max_bytes,
		    q->cf.max_running, q->cf.rate);
		evbuffer_add_printf(out, "max_running_per_key=%u rate_per_key=%g "
		    "keys=%u parked=%u paused=%d ", q->cf.max_running_per_key,
		    q->cf.rate_per_key, q->keys.nkeys, q->keys.nparked, q->paused);
		stats_write_latency(out, q, now);
		/* A chain's stage: where its results go, and whether that holds it now. */
		if (q->ch.next != NULL)
			evbuffer_add_printf(out, "then=%s held=%d ", q->ch.next->name,
			    q->ch.held);
		evbuffer_add_printf(out, "handler=");
		stats_add_encoded(out, q->cf.handler);
		/* reason= runs to the end of the line: it is always last. */
		if (q->failed_reason != NULL) {
			evbuffer_add_printf(out, " reason=");
			stats_add_line(out, q->failed_reason);
		} else if (strcmp(queue_state_name(q), "backoff") == 0) {
			uint64_t ms = now / 1000;

			evbuffer_add_printf(out, " reason=workers keep dying young (%d in "
			    "a row; next start in %llu ms); last: ", q->sv.respawn_fails,
			    (unsigned long long)(q->sv.respawn_at > ms ? q->sv.respawn_at - ms :
			    0));
			stats_add_line(out, q->last_death);
		} else if (q->paused && !q->removed) {
			if (q->paused_by == (uid_t)-1)
				evbuffer_add_printf(out, " reason=paused by its config "
				    "(RESUME to go on)");
			else
				evbuffer_add_printf(out, " reason=paused by uid %ld (RESUME "
				    "to go on)", (long)q->paused_by);
		} else if (source_redis_paused(q) != NULL) {
			evbuffer_add_printf(out, " reason=");
			stats_add_line(out, source_redis_paused(q));
		}
		evbuffer_add(out, "\n", 1);
	}
	source_redis_stats(out);
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		for (k = 0; k < q->nworkers; k++) {
			if ((w = q->workers[k]) == NULL)
				continue;
			if (stats_proc_usage(w->pid, &u) != 0)
				u = (struct proc_usage){ 0 };
			/* The head of its in-flight list: the first of the jobs it runs. */
			head = TAILQ_FIRST(&w->inflight);
			evbuffer_add_printf(out, "worker %s pid=%ld state=%s jobs=%llu "
			    "inflight=%u rss_kib=%llu cpu_us=%llu job=%llu age_us=%llu\n",
			    q->name, (long)w->pid, worker_state_name(w),
			    (unsigned long long)w->jobs_done, w->ninflight,
			    (unsigned long long)(u.rss_bytes / 1024),
			    (unsigned long long)u.cpu_us,
			    (unsigned long long)(head != NULL ? head->id : 0),
			    (unsigned long long)supervisor_busy_us(w, now));
		}
	}
}

/* Remember when the daemon started, for uptime; start the rates' tick. */
void
stats_init(void)
{
	struct timeval	tv = { STATS_TICK_S, 0 };

	stats_start_ms = now_ms();
	if (master_base == NULL || stats_tick_ev != NULL)
		return;
	stats_tick_ev = event_new(master_base, -1, EV_PERSIST, stats_tick_cb, NULL);
	if (stats_tick_ev == NULL || event_add(stats_tick_ev, &tv) != 0)
		log_warnx("stats: no memory for the throughput timer; rates stay 0");
}

void
stats_free(void)
{
	if (stats_tick_ev != NULL)
		event_free(stats_tick_ev);
	stats_tick_ev = NULL;
}
