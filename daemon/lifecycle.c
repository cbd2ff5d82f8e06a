/*
 * lifecycle.c: the one place where a job's state changes, and who hears of it.
 *
 * job_change() (inline, in jobpoold.h) is the only writer of j->state. A change some
 * listener hears comes here: job_change_publish() sets the state (and, for an end, the
 * result the job keeps), then tells each listener of the table below that asked for
 * this kind of change, in the table's order. A module that cares about a job's life is
 * an entry in that table, never a call from the module that made the change: the
 * changes flow down to the listeners, and no listener is called any other way.
 *
 * Every job takes this path a few times (accepted, sent, started, ended), so a change
 * no listener hears costs a mask test where it is made, and the table is expanded
 * into direct calls, each behind a bit test (bench W1).
 */

#include "autoconf.h"

#include <stddef.h>
#include <string.h>

#include "jobpoold.h"
#include "events.h"
#include "idem.h"
#include "journal.h"
#include "log.h"

#define ON(what)	(1u << (what))
#define ON_END		(ON(JOB_DONE) | ON(JOB_CANCELLED) | ON(JOB_DEAD))
#define ON_WAITING	(ON(JOB_QUEUED) | ON(JOB_DELAYED))

static void	lifecycle_log(const struct job_change *)
		    __attribute__((cold, noinline));
static void	lifecycle_log_debug(const struct job_change *)
		    __attribute__((cold, noinline));

/*
 * The listeners, called in this order; the order is the rules:
 *   - chain (chain.c) before everyone: a stage that succeeded makes the next stage's
 *     job, whose SUBMIT the journal then records before this stage's END (a journal
 *     cut anywhere keeps the one or the other), and moves this stage's waiters to it
 *     before the waiters' listener would answer them; its job.queued event comes
 *     just before this stage's job.succeeded;
 *   - the journal next, before the rest: a job's end is recorded, and x->end_batch
 *     set, before anyone else hears of it, so a reply telling of the end waits until
 *     the record is as durable as the policy says (server.c's conn_end_batch): a job
 *     runs again after a crash only if no client heard that it ended;
 *   - stats and the log next, so that a client told of a change finds it counted;
 *   - the event ring (events.c) before the waiters: an EVENTS subscriber may be told
 *     of an end no later than a waiter; it only records, and delivers later in the
 *     pass;
 *   - waiters (server.c) after the journal, for the rule above;
 *   - notify, then dispatch, which only kicks a queue for later in this pass;
 *   - idem (idempotency tokens), called only while tokens are held (SUBMIT gives a
 *     job its token with idem_give() once it is accepted): after the journal, whose
 *     END or RETRY its own record follows, and before the queue, which may free j;
 *   - queue last: it keeps the ended job for WAIT and STATUS, or drops it, and may
 *     free it at once.
 * Each is a function, the ON() of each state or JOB_EV_* it hears, and when it wants
 * to hear at all (the journal only with one, notify only during a stop, the log only
 * for the changes it has a line for). DEBUG() is a listener that hears only while the
 * log level is debug: jobpoold.h's inline job_change() tests that before it calls
 * here, and JOB_CHANGE_HEARD there must name every change the others hear (checked
 * below). The table is expanded into direct calls, each behind a test of a constant
 * mask; the log's listeners are cold, out of the way of the job's path. A job changes
 * four times on its fast path (accepted, sent, started, done), and W1 must not feel
 * it (bench/README.md).
 */
#define LIFECYCLE_LISTENERS(L, DEBUG)					\
	L(chain_job_changed,	ON_END, chain_hears(ch->j))			\
	L(journal_job_changed,	ON_WAITING | ON_END | ON(JOB_EV_CANCELLING),	\
				journal_on)					\
	L(stats_job_changed,	ON_WAITING | ON(JOB_RETRY_WAIT) | ON_END |	\
				ON(JOB_EV_STARTED), 1)				\
	L(lifecycle_log,	ON(JOB_QUEUED) | ON(JOB_RETRY_WAIT) | ON(JOB_DEAD) | \
				ON(JOB_EV_CANCELLING),				\
				ch->what != JOB_QUEUED || ch->from == JOB_DEAD)	\
	DEBUG(lifecycle_log_debug, ON(JOB_EV_STARTED) | ON(JOB_DONE))		\
	L(events_job_changed,	ON_WAITING | ON(JOB_EV_STARTED) |		\
				ON(JOB_RETRY_WAIT) | ON_END, 1)			\
	L(server_job_changed,	ON_END, 1)					\
	L(notify_job_changed,	ON_END, master_stopping)			\
	L(source_redis_job_changed, ON_END, source_redis_nheld != 0)		\
	L(idem_job_changed,	ON_WAITING | ON_END, idem_n != 0)		\
	L(dispatch_job_changed,	ON(JOB_QUEUED), 1)				\
	L(queue_job_changed,	ON_END, 1)

/* What jobpoold.h's inline job_change() takes for heard must be what the table hears. */
#define LIFECYCLE_ANY(fn, on, when)	| (on)
#define LIFECYCLE_ANY_DEBUG(fn, on)	| (on)
#define LIFECYCLE_NONE(fn, on, ...)
_Static_assert((0 LIFECYCLE_LISTENERS(LIFECYCLE_ANY, LIFECYCLE_NONE)) == JOB_CHANGE_HEARD,
    "jobpoold.h's JOB_CHANGE_HEARD must be every change lifecycle.c's listeners hear");
_Static_assert(((0 LIFECYCLE_LISTENERS(LIFECYCLE_NONE, LIFECYCLE_ANY_DEBUG)) &
    ~JOB_CHANGE_HEARD) == JOB_CHANGE_DEBUG,
    "jobpoold.h's JOB_CHANGE_DEBUG must be the changes only the debug log hears");

/*
 * job_change()'s slow path, for a change some listener may hear: set the state (and,
 * for an end, the result the job keeps) and publish the change with ch (NULL: nothing
 * more to say), which is filled in. An end may free j.
 */
void
job_change_publish(struct job *j, int what, struct job_change *ch)
{
	struct job_change	 none;

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
			if (ch->http_status != 0 && job_extra(j) != NULL)
				j->x->http_status = ch->http_status;
			if (ch->http_metalen != 0)
				job_set_http_meta(j, ch->http_meta, ch->http_metalen);
			if (what == JOB_DEAD && job_extra(j) != NULL)
				j->x->died_ms = now_ms();
		}
	}
	ch->to = j->state;
	ch->attempt = j->attempts;
#define LIFECYCLE_CALL(fn, on, when)	if (((on) & ON(what)) && (when)) fn(ch);
#define LIFECYCLE_CALL_DEBUG(fn, on)	LIFECYCLE_CALL(fn, on, log_level >= LOG_DEBUG)
	LIFECYCLE_LISTENERS(LIFECYCLE_CALL, LIFECYCLE_CALL_DEBUG)
#undef LIFECYCLE_CALL_DEBUG
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

/* The lifecycle's log lines at the debug level: a job's start and success. */
static void
lifecycle_log_debug(const struct job_change *ch)
{
	struct job	*j = ch->j;
	struct queue	*q = job_queue(j);

	switch (ch->what) {
	case JOB_EV_STARTED:
		log_job(LOG_DEBUG, j->id, q->name, (long)ch->pid,
		    "queue %s: job %llu: attempt %u started on worker %ld",
		    q->name, (unsigned long long)j->id, ch->attempt, (long)ch->pid);
		break;
	case JOB_DONE:
		if (ch->from == JOB_RUNNING)
			log_job(LOG_DEBUG, j->id, q->name, (long)ch->pid, "queue %s: job "
			    "%llu: attempt %u succeeded in %u ms", q->name,
			    (unsigned long long)j->id, ch->attempt, ch->ran_ms);
		break;
	}
}

/* The lifecycle's other log lines: retries, deaths, timeouts, dead jobs queued again. */
static void
lifecycle_log(const struct job_change *ch)
{
	struct job	*j = ch->j;
	struct queue	*q = job_queue(j);
	uint32_t	 n;

	switch (ch->what) {
	case JOB_EV_CANCELLING:
		if (j->cancel == JOB_CANCEL_TIMEOUT)
			log_job(LOG_WARNING, j->id, q->name, (long)ch->pid,
			    "queue %s: job %llu: timed out after %u ms; cancelling it",
			    q->name, (unsigned long long)j->id, j->timeout_ms);
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
