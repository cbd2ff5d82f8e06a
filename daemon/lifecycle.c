/*
 * lifecycle.c: the one place where a job's state changes, and who hears of it.
 *
 * job_change() is the only writer of j->state. It sets the state (and, for an end,
 * the result the job keeps), then tells each listener of listeners[] that asked for
 * this kind of change, in the table's order. A module that cares about a job's life is
 * an entry in that table, never a call from the module that made the change: the
 * changes flow down to the listeners, and no listener is called any other way.
 *
 * Every job takes this path a few times (accepted, sent, started, ended), so the
 * table is a static array scanned with a bit test per entry (bench W1).
 */

#include "autoconf.h"

#include <stddef.h>
#include <string.h>

#include "jobpoold.h"
#include "events.h"
#include "journal.h"
#include "log.h"

#define ON(what)	(1u << (what))
#define ON_END		(ON(JOB_DONE) | ON(JOB_CANCELLED) | ON(JOB_DEAD))
#define ON_WAITING	(ON(JOB_QUEUED) | ON(JOB_DELAYED))

static void	lifecycle_log(const struct job_change *);

/*
 * The listeners, called in this order; the order is the rules:
 *   - journal first: a job's end is recorded, and x->end_batch set, before anyone
 *     hears of it, so a reply telling of the end waits until the record is as
 *     durable as the policy says (server.c's conn_end_batch): a job runs again after a
 *     crash only if no client heard that it ended;
 *   - stats and log next, so that a client told of a change finds it counted;
 *   - the event ring (events.c) before the waiters: an EVENTS subscriber may be told
 *     of an end no later than a waiter; it only records, and delivers later in the
 *     pass;
 *   - waiters (server.c) after the journal, for the rule above;
 *   - notify, then dispatch, which only kicks a queue for later in this pass;
 *   - queue last: it keeps the ended job for WAIT and STATUS, or drops it, and may
 *     free it at once.
 * Each is a function, the ON() of each state or JOB_EV_* it hears, and when it wants
 * to hear at all (the journal only with one, notify only during a stop). The table is
 * expanded into direct calls, each behind a test of a constant mask, and a change no
 * listener hears only sets the state: a job changes
 * four times on its fast path (accepted, sent, started, done), and W1 must not feel
 * it (bench/README.md).
 */
#define LIFECYCLE_LISTENERS(L)						\
	L(journal_job_changed,	ON_WAITING | ON_END | ON(JOB_EV_CANCELLING),	\
				journal_on)					\
	L(stats_job_changed,	ON_WAITING | ON(JOB_RETRY_WAIT) | ON_END, 1)	\
	L(lifecycle_log,	ON(JOB_QUEUED) | ON(JOB_RETRY_WAIT) | ON(JOB_DONE) | \
				ON(JOB_DEAD) | ON(JOB_EV_STARTED) |		\
				ON(JOB_EV_CANCELLING), 1)			\
	L(events_job_changed,	ON_WAITING | ON(JOB_EV_STARTED) |		\
				ON(JOB_RETRY_WAIT) | ON_END, 1)			\
	L(server_job_changed,	ON_END, 1)					\
	L(notify_job_changed,	ON_END, master_stopping)			\
	L(dispatch_job_changed,	ON(JOB_QUEUED), 1)				\
	L(queue_job_changed,	ON_END, 1)
/* Every change some listener hears; the others only set the state. */
#define LIFECYCLE_ANY(fn, on, when)	| (on)
#define LIFECYCLE_HEARD			(0 LIFECYCLE_LISTENERS(LIFECYCLE_ANY))

/*
 * j enters state what (or, for a JOB_EV_*, stays where it is): set it and publish
 * the change with ch (NULL: nothing more to say), which is filled in. An end may free
 * j.
 */
void
job_change(struct job *j, int what, struct job_change *ch)
{
	struct job_change	 none;

	if (!(LIFECYCLE_HEARD & ON(what))) {
		if (what < JOB_EV_STARTED)
			j->state = what;
		return;
	}
	if (ch == NULL) {
		none = (struct job_change){ .j = j };
		ch = &none;
	}
	ch->j = j;
	ch->from = j->state;
	ch->what = what;
	if (what < JOB_EV_STARTED) {
		j->state = what;
		if (JOB_FINAL(what)) {
			job_set_result(j, ch->text, ch->len);
			if (what == JOB_DEAD && job_extra(j) != NULL)
				j->x->died_ms = now_ms();
		}
	}
	ch->to = j->state;
	ch->attempt = j->attempts;
#define LIFECYCLE_CALL(fn, on, when)	if (((on) & ON(what)) && (when)) fn(ch);
	LIFECYCLE_LISTENERS(LIFECYCLE_CALL)
#undef LIFECYCLE_CALL
}

/* A job reached its final state with res (copied): an end with nothing more to say. */
void
job_finish(struct job *j, enum job_state st, const void *res, uint32_t rlen)
{
	job_change(j, st, &(struct job_change){ .text = res, .len = rlen });
}

/* The same with a C string. */
void
job_finish_text(struct job *j, enum job_state st, const char *text)
{
	job_finish(j, st, text, (uint32_t)strlen(text));
}

/* The lifecycle's log lines. */
static void
lifecycle_log(const struct job_change *ch)
{
	struct job	*j = ch->j;
	struct queue	*q = job_queue(j);
	uint32_t	 n;

	switch (ch->what) {
	case JOB_EV_STARTED:
		log_job(LOG_DEBUG, j->id, q->name, (long)ch->pid,
		    "queue %s: job %llu: attempt %u started on worker %ld",
		    q->name, (unsigned long long)j->id, ch->attempt, (long)ch->pid);
		break;
	case JOB_EV_CANCELLING:
		if (j->cancel == JOB_CANCEL_TIMEOUT)
			log_job(LOG_WARNING, j->id, q->name, (long)ch->pid,
			    "queue %s: job %llu: timed out after %u ms; cancelling it",
			    q->name, (unsigned long long)j->id, j->timeout_ms);
		break;
	case JOB_DONE:
		if (ch->from == JOB_RUNNING)
			log_job(LOG_DEBUG, j->id, q->name, (long)ch->pid, "queue %s: job "
			    "%llu: attempt %u succeeded in %u ms", q->name,
			    (unsigned long long)j->id, ch->attempt, ch->ran_ms);
		break;
	case JOB_RETRY_WAIT:
		log_job(LOG_INFO, j->id, q->name, 0,
		    "queue %s: job %llu: attempt %u %s (%.*s); retrying in %llu ms",
		    q->name, (unsigned long long)j->id, ch->attempt,
		    ch->outcome == JOB_TIMEOUT ? "timed out" : "failed", (int)ch->errlen,
		    ch->err, (unsigned long long)ch->delay_ms);
		break;
	case JOB_DEAD:
		if (ch->from != JOB_RUNNING)
			break;
		n = ch->errlen > 200 ? 200 : ch->errlen;
		log_job(LOG_NOTICE, j->id, q->name, 0,
		    "queue %s: job %llu is dead after %u attempt%s: %s%s%.*s", q->name,
		    (unsigned long long)j->id, ch->attempt, ch->attempt == 1 ? "" : "s",
		    ch->cause != NULL ? ch->cause : "", ch->cause != NULL ? ": " : "",
		    (int)n, ch->err);
		break;
	case JOB_QUEUED:
		if (ch->from == JOB_DEAD)
			log_job(LOG_INFO, j->id, q->name, 0, "queue %s: dead job %llu "
			    "queued again", q->name, (unsigned long long)j->id);
		break;
	}
}
