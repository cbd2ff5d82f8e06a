/*
 * chain.c: chained queues (issue 15). A queue's 'then' names the queue its jobs'
 * results go on to: when a job of it succeeds, the master makes its result a new job
 * of the next queue, the next stage, and the producer waiting for the first stage
 * waits for the last.
 *
 * What this file owns:
 *   - each queue's chain part (q->ch): its next queue, resolved from cf.then at start
 *     and after every reload (chain_sync), and the backpressure between the two: a
 *     queue does not dispatch while its next queue is full (dispatch asks
 *     chain_next_full), and the next queue, once down to its low watermark, kicks the
 *     queues it held (chain_room). A stage that was running when the next queue
 *     filled still goes on into it: the next queue holds at most its max_jobs plus
 *     what the queues feeding it had in flight (their workers' batches);
 *   - the chain records. A record is made when a job of a queue with a 'then'
 *     succeeds (a job that never gets that far costs nothing), and lists the stages:
 *     job id, queue, and the state each ended in. Every stage job points at it
 *     (x->chain, allocated with the job) and holds a reference; the last job freed
 *     (kept results trimmed, dead jobs dropped) frees it. So its memory follows the
 *     job table's rules and nothing else.
 *
 * The new stage is made by a lifecycle listener (chain_job_changed, the table's first),
 * not by dispatch: it hears the stage's end before the journal does, so the next
 * stage's SUBMIT record is written before the stage's END, and a journal cut anywhere
 * holds the one or the other. The waiters of the stage move to the next one before the
 * waiters' listener runs, keeping the id they asked for (struct waiter), so
 * a producer hears once, of the last stage. A stage that fails (dead) or is cancelled
 * ends the chain there; its waiters hear its error, naming the stage (chain_answer).
 *
 * Across a restart the journal keeps each job, not the records: a stage that was
 * waiting comes back as a job of its queue, and its queue's 'then' still sends its
 * result on, but the stages before it are forgotten (STATUS of the new stage starts a
 * new record at its success). See PROTOCOL.md, "Chains".
 */

#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "jobpoold.h"
#include "journal.h"
#include "log.h"

/* A chain longer than this ends (a reload can change 'then' under a running chain). */
#define CHAIN_MAX_STAGES	1024

enum chain_state {
	CHAIN_RUNNING,
	CHAIN_DONE,
	CHAIN_FAILED,
	CHAIN_CANCELLED
};

struct chain_stage {
	uint64_t	 id;
	uint16_t	 qidx;
	uint8_t		 state;		/* enum job_state it ended in; JOB_NEW: not yet */
};

struct chain {
	struct chain_stage	*stages;	/* in order; the last is the chain's now */
	uint32_t		 n;
	uint32_t		 cap;
	uint32_t		 refs;		/* jobs whose x->chain this is */
	uint8_t			 state;		/* enum chain_state */
	uint8_t			 cancel;	/* a client cancelled it: nothing follows */
};

/*
 * How many queues have a next one, plus how many chain records live: while it is 0 no
 * job can be a stage, and the job's path asks nothing more (chain_hears, server.c).
 */
uint32_t	 chain_active;
static uint32_t	 chain_nlinked;

static const char *const chain_state_names[] = {
	"running", "done", "failed", "cancelled"
};

/* At start and after a reload: each queue's next queue, and no queue held by the old. */
void
chain_sync(void)
{
	struct queue	*q;
	int		 i;

	chain_active -= chain_nlinked;
	chain_nlinked = 0;
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		q->ch.next = NULL;
		q->ch.holding = 0;
		if (!q->removed && q->cf.hook == 0 && q->cf.then[0] != '\0')
			q->ch.next = queue_find(q->cf.then);
		if (q->ch.next == q)
			q->ch.next = NULL;	/* config.c refuses it; never loop here */
		if (q->ch.next != NULL)
			chain_nlinked++;
		if (q->ch.held) {
			q->ch.held = 0;
			dispatch_kick(q);
		}
	}
	chain_active += chain_nlinked;
}

/* dispatch: q's next queue is full, so q holds its ready jobs; the next one lets go. */
int
chain_next_full(struct queue *q)
{
	struct queue	*next = q->ch.next;

	if (queue_has_room(next, 0))
		return (0);
	q->ch.held = 1;
	next->ch.holding = 1;
	return (1);
}

/*
 * dispatch: jobs left q. Down to the low watermark (as producers blocked on it), the
 * queues that held their jobs for room in q dispatch again, later in this pass.
 */
void
chain_room(struct queue *q)
{
	struct queue	*up;
	int		 i;

	if (queue_depth(q) >= q->low_jobs || q->bytes >= q->low_bytes)
		return;
	q->ch.holding = 0;
	for (i = 0; i < nqueues; i++) {
		up = queues[i];
		if (up->ch.next == q && up->ch.held) {
			up->ch.held = 0;
			dispatch_kick(up);
		}
	}
}

/* j's chain, or NULL. */
static struct chain *
chain_of(const struct job *j)
{
	return (j->x != NULL ? j->x->chain : NULL);
}

/* The stage of c that job id is, or NULL. */
static struct chain_stage *
chain_stage(struct chain *c, uint64_t id)
{
	uint32_t	i;

	for (i = c->n; i > 0; i--) {
		if (c->stages[i - 1].id == id)
			return (&c->stages[i - 1]);
	}
	return (NULL);
}

/* Append j to c as its next stage; j holds a reference. 0, or -1 out of memory. */
static int
chain_add(struct chain *c, struct job *j)
{
	struct chain_stage	*st;
	uint32_t		 cap;

	if (job_extra(j) == NULL)
		return (-1);
	if (c->n == c->cap) {
		cap = c->cap != 0 ? c->cap * 2 : 4;
		if ((st = reallocarray(c->stages, cap, sizeof *st)) == NULL)
			return (-1);
		c->stages = st;
		c->cap = cap;
	}
	c->stages[c->n++] = (struct chain_stage){ .id = j->id, .qidx = j->qidx,
	    .state = JOB_NEW };
	j->x->chain = c;
	c->refs++;
	return (0);
}

/* A record for a chain whose first stage is j. NULL out of memory. */
static struct chain *
chain_new(struct job *j)
{
	struct chain	*c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return (NULL);
	if (chain_add(c, j) != 0) {
		free(c->stages);
		free(c);
		return (NULL);
	}
	chain_active++;
	return (c);
}

/* job_free: j lets go of its chain's record; the last job frees it. */
void
chain_job_free(struct job *j)
{
	struct chain	*c = chain_of(j);

	if (c == NULL)
		return;
	j->x->chain = NULL;
	if (--c->refs > 0)
		return;
	chain_active--;
	free(c->stages);
	free(c);
}

/*
 * The daemon is stopping: the next stage is in the journal (its SUBMIT record came
 * first) and runs after the restart, like every job still waiting; now it is answered
 * as they were (dispatch_cancel_waiting).
 */
static void
chain_stopping(struct queue *q, struct job *n)
{
	queue_remove(q, n);
	job_finish_text(n, JOB_CANCELLED, journal_on ? "daemon is shutting down; the "
	    "job is kept in the journal and runs after the restart" :
	    "daemon is shutting down");
}

/*
 * j, the last stage of c, succeeded: its result becomes a job of the next queue, with
 * j's key, owner and priority (clamped into that queue's range) and that queue's
 * timeout.
 * The next queue takes it even if full (chain_room's bound). j's waiters wait for it.
 */
static void
chain_next_stage(struct chain *c, struct job *j)
{
	struct queue	*q = job_queue(j), *nq = q->ch.next;
	struct job	*n;
	const char	*key;
	size_t		 klen;

	if (c->n >= CHAIN_MAX_STAGES) {
		log_job(LOG_WARNING, j->id, q->name, 0, "queue %s: job %llu: its chain "
		    "has %u stages, the most there may be: it ends here", q->name,
		    (unsigned long long)j->id, c->n);
		c->state = CHAIN_DONE;
		return;
	}
	/*
	 * The next stage keeps j's key (issue 15), so its per-key limits hold all along;
	 * without one, an http queue's stage takes its URL's host (job_new_key).
	 */
	key = job_key(j, &klen);
	if ((n = job_new_key(nq, job_result(j), job_rlen(j), key, klen)) == NULL ||
	    job_extra(n) == NULL) {
		job_free(n);
		goto oom;
	}
	n->owner = j->owner;
	n->prio = queue_prio_clamp(&nq->cf, j->prio);
	n->timeout_ms = nq->cf.timeout_ms;
	n->id = job_next_id();
	if (chain_add(c, n) != 0) {
		job_free(n);
		goto oom;
	}
	c->state = CHAIN_RUNNING;
	server_waiters_move(j, n);
	dispatch_accept(nq, n, NULL, JOB_QUEUED, NULL);
	if (master_stopping && (n->state == JOB_QUEUED || n->state == JOB_DELAYED))
		chain_stopping(nq, n);
	return;
oom:
	log_job(LOG_ERR, j->id, q->name, 0, "queue %s: job %llu: out of memory for the "
	    "next stage in queue %s: its chain ends here", q->name,
	    (unsigned long long)j->id, nq->name);
	c->state = CHAIN_FAILED;
}

/*
 * lifecycle listener, the first (before the journal, see the top): a stage of a chain
 * ended, or a job of a queue with a 'then' did. Success goes on to the next stage; a
 * failure (dead) or a cancellation ends the chain there.
 */
void
chain_job_changed(const struct job_change *ch)
{
	struct job		*j = ch->j;
	struct chain		*c = chain_of(j);
	struct chain_stage	*st;

	if (c == NULL) {
		if (ch->to != JOB_DONE || job_queue(j)->ch.next == NULL)
			return;
		if ((c = chain_new(j)) == NULL) {
			log_job(LOG_ERR, j->id, job_queue(j)->name, 0, "queue %s: job %llu: "
			    "out of memory for its chain: it ends here",
			    job_queue(j)->name, (unsigned long long)j->id);
			return;
		}
	}
	if ((st = chain_stage(c, j->id)) != NULL)
		st->state = ch->to;
	/* Only the chain's stage now moves it (an earlier one ended long ago). */
	if (c->stages[c->n - 1].id != j->id)
		return;
	switch (ch->to) {
	case JOB_DONE:
		if (c->cancel)
			c->state = CHAIN_CANCELLED;
		else if (job_queue(j)->ch.next == NULL)
			c->state = CHAIN_DONE;
		else
			chain_next_stage(c, j);
		break;
	case JOB_DEAD:
		c->state = CHAIN_FAILED;
		break;
	case JOB_CANCELLED:
		c->state = CHAIN_CANCELLED;
		break;
	}
}

/* events: the stage before j in its chain, for job.queued's prev=; 0: none. */
uint64_t
chain_prev(const struct job *j)
{
	struct chain	*c = chain_of(j);
	uint32_t	 i;

	for (i = 1; c != NULL && i < c->n; i++) {
		if (c->stages[i].id == j->id)
			return (c->stages[i - 1].id);
	}
	return (0);
}

/* WAIT, CANCEL: the chain's stage now (or the one it ended at); j if it has none. */
struct job *
chain_follow(struct job *j)
{
	struct chain	*c = chain_of(j);
	struct job	*last;

	if (c == NULL || (last = job_find(c->stages[c->n - 1].id)) == NULL)
		return (j);
	return (last);
}

/*
 * CANCEL: j, the stage now, is being stopped while it runs. Its result may still come
 * back as a success (it crossed the cancel): then no stage follows, and the waiters
 * hear that the chain was cancelled. A job of a queue with a 'then' gets its record now.
 */
void
chain_cancel(struct job *j)
{
	struct chain	*c = chain_of(j);

	if (c == NULL) {
		if (job_queue(j)->ch.next == NULL || (c = chain_new(j)) == NULL)
			return;
	}
	c->cancel = 1;
}

/* A stage's state for STATUS: the job's own while it is kept, else the one it ended in. */
static const char *
chain_stage_state(const struct chain_stage *st)
{
	struct job	*j;

	if ((j = job_find(st->id)) != NULL)
		return (job_state_name(j->state));
	return (st->state != JOB_NEW ? job_state_name(st->state) : "gone");
}

/*
 * STATUS: " chain=STATE stage=N stages=ID@QUEUE:STATE,..." for a stage of a chain, in
 * order; " then=QUEUE" for a job of a queue with a 'then' that has none yet.
 */
void
chain_status(struct evbuffer *b, const struct job *j)
{
	struct chain		*c = chain_of(j);
	struct chain_stage	*st;
	uint32_t		 i, at = 0;

	if (c == NULL) {
		if (job_queue(j)->ch.next != NULL)
			evbuffer_add_printf(b, " then=%s", job_queue(j)->ch.next->name);
		return;
	}
	for (i = 0; i < c->n; i++) {
		if (c->stages[i].id == j->id)
			at = i + 1;
	}
	evbuffer_add_printf(b, " chain=%s stage=%u stages=", chain_state_names[c->state],
	    at);
	for (i = 0; i < c->n; i++) {
		st = &c->stages[i];
		evbuffer_add_printf(b, "%s%llu@%s:%s", i > 0 ? "," : "",
		    (unsigned long long)st->id, queues[st->qidx]->name,
		    chain_stage_state(st));
	}
}

/*
 * A waiter's RESULT for j, a stage of a chain (or a job of a queue with a 'then'). A
 * stage that failed, timed out or was cancelled is named before its error: "stage 2
 * (queue resize, job 7): ...". A success whose chain a client cancelled meanwhile is
 * told as cancelled, without its result (it is no chain's result).
 */
size_t
chain_answer(const struct job *j, const char **word, int *keep, char *buf, size_t size)
{
	struct chain	*c = chain_of(j);
	uint32_t	 i, at = 1;
	int		 n;

	*word = NULL;
	*keep = 1;
	if (c == NULL && job_queue(j)->ch.next == NULL)
		return (0);
	for (i = 0; c != NULL && i < c->n; i++) {
		if (c->stages[i].id == j->id)
			at = i + 1;
	}
	if (j->state == JOB_DONE) {
		if (c == NULL || !c->cancel)
			return (0);
		*word = "cancelled";
		*keep = 0;
		n = snprintf(buf, size, "cancelled: the chain stopped after stage %u "
		    "(queue %s, job %llu), whose result crossed the cancel", at,
		    job_queue(j)->name, (unsigned long long)j->id);
	} else
		n = snprintf(buf, size, "stage %u (queue %s, job %llu): ", at,
		    job_queue(j)->name, (unsigned long long)j->id);
	if (n < 0)
		return (0);
	return ((size_t)n < size ? (size_t)n : size - 1);
}
