/*
 * stats.c: the STATS body (PROTOCOL.md): one line per object, a type word, a name and
 * key=value words.
 */

#include "autoconf.h"

#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "jobpoold.h"

static uint64_t	stats_start_ms;

static const char *
worker_state_name(const struct worker *w)
{
	switch (w->state) {
	case WORKER_STARTING:
		return ("starting");
	case WORKER_READY:
		return (w->ninflight > 0 ? "busy" : "idle");
	case WORKER_STOPPING:
		return ("stopping");
	default:
		return ("dead");
	}
}

/* Append the daemon, queue and worker lines to out. */
void
stats_write(struct evbuffer *out)
{
	struct queue	*q;
	struct worker	*w;
	int		 i, k;

	if (stats_start_ms == 0)
		stats_start_ms = now_ms();
	evbuffer_add_printf(out, "daemon jobpoold version=%s pid=%ld uptime=%llu "
	    "connections=%u jobs=%llu stopping=%d\n", PACKAGE_VERSION, (long)getpid(),
	    (unsigned long long)(now_ms() - stats_start_ms) / 1000, server_nconns(),
	    (unsigned long long)job_count(), master_stopping);
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		evbuffer_add_printf(out, "queue %s handler=%s workers=%d depth=%u "
		    "delayed=%u running=%u bytes=%llu submitted=%llu done=%llu "
		    "failed=%llu cancelled=%llu retried=%llu blocked=%u "
		    "worker_deaths=%llu max_jobs=%u max_bytes=%llu\n", q->name,
		    q->cf.handler, q->nworkers, q->nready, q->nheap, q->running,
		    (unsigned long long)q->bytes, (unsigned long long)q->submitted,
		    (unsigned long long)q->done, (unsigned long long)q->failed,
		    (unsigned long long)q->cancelled, (unsigned long long)q->retried,
		    q->nblocked, (unsigned long long)q->worker_deaths,
		    q->cf.max_jobs, (unsigned long long)q->cf.max_bytes);
	}
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		for (k = 0; k < q->nworkers; k++) {
			if ((w = q->workers[k]) == NULL)
				continue;
			evbuffer_add_printf(out, "worker %s pid=%ld state=%s jobs=%llu "
			    "inflight=%u\n", q->name, (long)w->pid,
			    worker_state_name(w), (unsigned long long)w->jobs_done,
			    w->ninflight);
		}
	}
}

/* Remember when the daemon started, for uptime. */
void
stats_init(void)
{
	stats_start_ms = now_ms();
}
