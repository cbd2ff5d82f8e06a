/*
 * supervisor.c: forks each queue's workers, talks to them over two pipes each (jobs
 * down, results up), reaps them, and replaces the ones that die.
 *
 * A worker's life is one enum (w->life, jobpoold.h), written here alone: it goes
 * from STARTING to READY, then towards its end, and is finished only when it is both
 * reaped and its result pipe is at EOF, in either order (as in tmux): only then are its
 * in-flight jobs requeued and its slot refilled. Why it leaves (w->leave) says whether
 * that end was a crash. A slot whose workers keep dying young is refilled with
 * exponential backoff, so a broken handler cannot make the master fork in a tight loop.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/wait.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "frame.h"
#include "jobpoold.h"
#include "events.h"
#include "log.h"

#define SUPERVISOR_READ_MAX	(256 * 1024)
#define SUPERVISOR_YOUNG_MS	1000		/* a worker dying younger is a crash loop */
#define SUPERVISOR_BACKOFF_MS	100
#define SUPERVISOR_BACKOFF_MAX	30000
#define SUPERVISOR_PIPE_SIZE	(1024 * 1024)

static int	supervisor_ready_notified;

static void	worker_read_cb(evutil_socket_t, short, void *);
static void	worker_write_cb(evutil_socket_t, short, void *);
static void	supervisor_respawn_cb(evutil_socket_t, short, void *);
static void	worker_timeout_cb(evutil_socket_t, short, void *);
static void	worker_gone(struct worker *);

/* w's life moves on to life, never back (its two halves of the end: worker_ended). */
static void
worker_to(struct worker *w, enum worker_life life)
{
	if (life > w->life)
		w->life = life;
}

/* w leaves, for why (or a stronger reason it had already). */
static void
worker_leaves(struct worker *w, enum worker_leave why)
{
	if (why > w->leave)
		w->leave = why;
}

/* One half of w's end came (reaped, or EOF): it is gone once both have. */
static void
worker_ended(struct worker *w, enum worker_life half)
{
	if (w->life == WORKER_GONE || w->life == half)
		return;
	if (w->life == WORKER_EXITED || w->life == WORKER_CLOSED)
		w->life = WORKER_GONE;		/* the other half came before */
	else
		w->life = half;
	worker_gone(w);
}

/* Fork a worker for slot of q. */
static int
worker_spawn(struct queue *q, int slot)
{
	struct worker	*w;
	int		 down[2] = { -1, -1 }, up[2] = { -1, -1 };
	sigset_t	 all, old;
	pid_t		 pid;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return (-1);
	w->queue = q;
	w->slot = slot;
	w->gen = q->gen;
	w->slots = 1;		/* until its READY says how many jobs it runs at once */
	w->to_fd = w->from_fd = -1;
	TAILQ_INIT(&w->inflight);
	if (pipe2(down, O_CLOEXEC) == -1 || pipe2(up, O_CLOEXEC) == -1) {
		log_warn("queue %s: pipe", q->name);
		goto fail;
	}
	/* Bigger pipes: fewer wake-ups when jobs are small and many. */
	(void)fcntl(down[1], F_SETPIPE_SZ, SUPERVISOR_PIPE_SIZE);
	(void)fcntl(up[1], F_SETPIPE_SZ, SUPERVISOR_PIPE_SIZE);

	/* Block everything across fork, so no handler of ours runs in the child. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == -1) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		log_warn("queue %s: fork", q->name);
		goto fail;
	}
	if (pid == 0) {
		/* The child: default signal handling, none of the master's events. */
		close(down[1]);
		close(up[0]);
		worker_after_fork(down[0], up[1]);
		free(w);	/* the master's; worker_main never returns to it */
		worker_main(master_config, &q->cf, 3, 4);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(down[0]);
	close(up[1]);
	w->pid = pid;
	w->to_fd = down[1];
	w->from_fd = up[0];
	evutil_make_socket_nonblocking(w->to_fd);
	evutil_make_socket_nonblocking(w->from_fd);
	w->in = evbuffer_new();
	w->out = evbuffer_new();
	w->rev = event_new(master_base, w->from_fd, EV_READ | EV_PERSIST,
	    worker_read_cb, w);
	w->wev = event_new(master_base, w->to_fd, EV_WRITE, worker_write_cb, w);
	w->tev = evtimer_new(master_base, worker_timeout_cb, w);
	if (w->in == NULL || w->out == NULL || w->rev == NULL || w->wev == NULL ||
	    w->tev == NULL)
		fatalx("queue %s: out of memory for worker %ld", q->name, (long)pid);
	event_add(w->rev, NULL);
	w->life = WORKER_STARTING;
	q->workers[slot] = w;
	log_job(LOG_DEBUG, 0, q->name, (long)pid, "queue %s: worker %ld started in slot %d",
	    q->name, (long)pid, slot);
	return (0);
fail:
	if (down[0] != -1) {
		close(down[0]);
		close(down[1]);
	}
	if (up[0] != -1) {
		close(up[0]);
		close(up[1]);
	}
	free(w);
	return (-1);
}

/* A new queue's supervisor part: its workers will report to cb. */
void
supervisor_queue_init(struct queue *q, const struct worker_cb *cb)
{
	memset(&q->sv, 0, sizeof q->sv);
	q->sv.cb = cb;
}

/* Free what the supervisor holds for q (its workers are gone). */
void
supervisor_queue_free(struct queue *q)
{
	if (q->sv.respawn_ev != NULL)
		event_free(q->sv.respawn_ev);
	q->sv.respawn_ev = NULL;
}

/* Fork every worker of q. */
int
supervisor_start(struct queue *q)
{
	int	i;

	if (supervisor_resize(q) != 0)
		return (-1);
	for (i = 0; i < q->nworkers; i++) {
		if (q->workers[i] == NULL)
			return (-1);
	}
	return (0);
}

/* Refill q's empty slots in ms (STATS says when). */
static void
supervisor_respawn_in(struct queue *q, int ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	q->sv.respawn_at = now_ms() + (uint64_t)ms;
	evtimer_add(q->sv.respawn_ev, &tv);
	events_publish_queue(EVENTS_QUEUE_BACKOFF, q->idx, 0, (uint64_t)ms, NULL);
}

/* Refill the empty slots of a queue. */
static void
supervisor_respawn_cb(evutil_socket_t fd, short events, void *arg)
{
	struct queue	*q = arg;
	int		 i;

	if (master_stopping || q->failed_reason != NULL)
		return;
	/* A removed queue keeps workers only while it holds jobs (a worker died). */
	if (q->removed && queue_depth(q) == 0 && q->running == 0)
		return;
	for (i = 0; i < q->nworkers && i < q->cf.workers; i++) {
		if (q->workers[i] == NULL && worker_spawn(q, i) != 0) {
			supervisor_respawn_in(q, 1000);
			return;
		}
	}
}

/*
 * Every worker of every queue has said READY: tell systemd, once. Queues that failed
 * or were removed, and slots a reload took away, are not waited for.
 */
void
supervisor_check_ready(void)
{
	struct queue	*q;
	int		 i, k, failed = 0;

	if (supervisor_ready_notified || master_stopping)
		return;
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->failed_reason != NULL)
			failed++;
		if (q->failed_reason != NULL || q->removed)
			continue;	/* settled: it will not get better by waiting */
		for (k = 0; k < q->nworkers && k < q->cf.workers; k++) {
			if (q->workers[k] == NULL ||
			    q->workers[k]->life != WORKER_READY)
				return;
		}
	}
	supervisor_ready_notified = 1;
	if (failed == 0)
		log_info("all workers ready");	/* else notify.c names the failed ones */
	notify_ready();
}

/*
 * The one place a worker's in-flight count changes (by one job, n is 1 or -1): the
 * queue's running (jobs held by its workers) and busy (workers holding any) follow.
 */
static void
worker_held(struct worker *w, int n)
{
	struct queue	*q = w->queue;

	q->running += n;
	if (n > 0 && w->ninflight++ == 0)
		q->busy++;
	else if (n < 0 && --w->ninflight == 0)
		q->busy--;
}

/* Take j out of w's in-flight list: its result came, or w is gone. */
void
supervisor_take(struct worker *w, struct job *j)
{
	TAILQ_REMOVE(&w->inflight, j, entry);
	worker_held(w, -1);
}

/* Buffer a job for w; supervisor_flush() writes it. It starts now if w has a free slot. */
void
supervisor_send(struct worker *w, struct job *j)
{
	char	hdr[FRAME_HDR_LEN];

	frame_put(hdr, FRAME_JOB, 0, j->id, j->len);
	evbuffer_add(w->out, hdr, sizeof hdr);
	evbuffer_add(w->out, j->data, j->len);
	TAILQ_INSERT_TAIL(&w->inflight, j, entry);
	w->dispatched++;
	worker_held(w, 1);
	if (w->ninflight <= w->slots)
		w->queue->sv.cb->started(w, j);
}

/*
 * Buffer n jobs for w as one FRAME_BATCH whose payload is their JOB frames (at most
 * CONFIG_FRAME_MAX bytes: dispatch sees to it). The worker runs them in one call, and a
 * batch worker's READY said batch_size slots: sent to a worker that holds nothing, they
 * all start now; sent ahead, behind a whole batch, as that one's results free the slots.
 */
void
supervisor_send_batch(struct worker *w, struct job **jobs, uint32_t n)
{
	char		hdr[FRAME_HDR_LEN];
	uint64_t	len = 0;
	uint32_t	i;

	for (i = 0; i < n; i++)
		len += FRAME_HDR_LEN + (uint64_t)jobs[i]->len;
	frame_put(hdr, FRAME_BATCH, 0, jobs[0]->id, (uint32_t)len);
	evbuffer_add(w->out, hdr, sizeof hdr);
	for (i = 0; i < n; i++)
		supervisor_send(w, jobs[i]);
}

/* Ask w to stop job j: a CANCEL frame, then SIGUSR1 once the frame is in the pipe. */
void
supervisor_cancel(struct worker *w, struct job *j, int reason)
{
	char	hdr[FRAME_HDR_LEN];

	if (w->to_fd == -1) {
		/* Its job pipe is closed (stopping): the signal alone must do. */
		if (!worker_reaped(w))
			kill(w->pid, SIGUSR1);
		return;
	}
	frame_put(hdr, FRAME_CANCEL, (uint8_t)reason, j->id, 0);
	evbuffer_add(w->out, hdr, sizeof hdr);
	w->signal_after_flush = 1;
	supervisor_flush(w);
}

/* Close w's job pipe: it exits after answering what it holds. */
void
supervisor_close_jobs(struct worker *w)
{
	if (w->to_fd == -1)
		return;
	close(w->to_fd);
	w->to_fd = -1;
	event_del(w->wev);
	evbuffer_drain(w->out, evbuffer_get_length(w->out));
	worker_to(w, WORKER_STOPPING);
}

/* The timer of w's running jobs: a timeout, or a grace period, is due. */
static void
worker_timeout_cb(evutil_socket_t fd, short events, void *arg)
{
	struct worker	*w = arg;

	w->queue->sv.cb->timer(w);
}

/* Write as much as the pipe takes; the rest when it is writable. */
void
supervisor_flush(struct worker *w)
{
	if (w->to_fd == -1)
		return;
	while (evbuffer_get_length(w->out) > 0) {
		if (evbuffer_write(w->out, w->to_fd) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* EPIPE: it died; its EOF and SIGCHLD will tell. */
			evbuffer_drain(w->out, evbuffer_get_length(w->out));
			return;
		}
	}
	if (evbuffer_get_length(w->out) > 0) {
		event_add(w->wev, NULL);
		return;
	}
	/* Every CANCEL frame is in the pipe now: make the worker look. */
	if (w->signal_after_flush) {
		w->signal_after_flush = 0;
		if (!worker_reaped(w))
			kill(w->pid, SIGUSR1);
	}
}

static void
worker_write_cb(evutil_socket_t fd, short events, void *arg)
{
	supervisor_flush(arg);
}

/* Handle one frame from a worker. */
static void
worker_frame(struct worker *w, const struct frame_hdr *h, const char *payload)
{
	struct queue	*q = w->queue;

	switch (h->type) {
	case FRAME_READY:
		if (h->status != 0) {
			if (w->gen == q->gen && q->prev_cf != NULL) {
				/*
				 * A reload's new handler (or user, limits) cannot start: go
				 * back to what worked rather than take the queue down.
				 */
				log_job(LOG_ERR, 0, q->name, (long)w->pid, "queue %s: the "
				    "reloaded handler '%s' cannot start: %.*s; keeping the "
				    "previous one ('%s')", q->name, q->cf.handler,
				    (int)h->len, payload, q->prev_cf->handler);
				queue_revert_workers(q);
				/* Replaced at once, the old way. */
				worker_leaves(w, WORKER_RETIRED);
				worker_to(w, WORKER_RETIRING);
				supervisor_check_ready();
				return;
			}
			/* Said once: the queue stays failed until a reload fixes it. */
			if (q->failed_reason == NULL) {
				if (asprintf(&q->failed_reason, "%.*s", (int)h->len,
				    payload) == -1)
					q->failed_reason = strdup("the handler failed to start");
				log_errx("queue %s: handler '%s' failed to start: %s; its "
				    "workers will not be restarted before the next reload",
				    q->name, q->cf.handler, q->failed_reason);
			}
			worker_leaves(w, WORKER_RETIRED);
			worker_to(w, WORKER_RETIRING);
			supervisor_check_ready();
			q->sv.cb->changed(q);	/* its waiting jobs cannot run now */
			return;
		}
		if (w->life == WORKER_STARTING)
			w->life = WORKER_READY;
		/* Its payload, if any: how many jobs it runs at once (an IO handler). */
		if (h->len == sizeof(uint32_t)) {
			uint32_t slots;

			memcpy(&slots, payload, sizeof slots);
			w->slots = slots > 0 ? slots : 1;
		}
		w->ready_ms = now_ms();
		events_publish_queue(EVENTS_WORKER_STARTED, q->idx, w->pid, 0, NULL);
		if (w->gen == q->gen)
			queue_forget_previous(q);	/* the new kind works */
		supervisor_check_ready();
		supervisor_roll(q);	/* a restarted worker is up: the next one may go */
		q->sv.cb->changed(q);
		break;
	case FRAME_RESULT:
		q->sv.cb->result(w, h->id, h->status, h->flags, payload, h->len);
		/* While stopping, a worker with nothing left is told to exit. */
		if (master_stopping && w->ninflight == 0)
			supervisor_close_jobs(w);
		break;
	case FRAME_CHILD:
		/* The head job's program leads this process group until its RESULT. */
		if (h->len == sizeof(int32_t)) {
			int32_t pg;

			memcpy(&pg, payload, sizeof pg);
			w->child_pgid = pg > 1 ? (pid_t)pg : 0;
		}
		break;
	case FRAME_HTTP:
		q->sv.cb->http_status(w, h->id, h->flags);
		break;
	case FRAME_RETIRE:
		log_job(LOG_INFO, 0, q->name, (long)w->pid,
		    "queue %s: worker %ld recycled: %.*s", q->name, (long)w->pid,
		    (int)h->len, payload);
		/* It exits now: what it holds never started (requeued once it is gone). */
		worker_leaves(w, WORKER_SAID_RETIRE);
		worker_to(w, WORKER_STOPPING);
		events_publish(EVENTS_WORKER_RECYCLED, &(struct events_info){
		    .queue = q->idx, .pid = w->pid, .text = payload, .textlen = h->len });
		break;
	default:
		log_job(LOG_WARNING, 0, q->name, (long)w->pid, "queue %s: worker %ld sent "
		    "a frame of unexpected type %d; ignored", q->name, (long)w->pid,
		    h->type);
		break;
	}
}

/* Results from a worker: read all there is, handle every whole frame. */
static void
worker_read_cb(evutil_socket_t fd, short events, void *arg)
{
	struct worker		*w = arg;
	struct frame_hdr	 h;
	unsigned char		*p;
	size_t			 avail, off;
	int			 n, eof = 0;
	uint32_t		 max = CONFIG_FRAME_MAX;

	for (;;) {
		n = evbuffer_read(w->in, fd, SUPERVISOR_READ_MAX);
		if (n == 0) {
			eof = 1;
			break;
		}
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			log_warn("worker %ld: read", (long)w->pid);
			eof = 1;
			break;
		}
		if (n < SUPERVISOR_READ_MAX)
			break;
	}

	avail = evbuffer_get_length(w->in);
	p = evbuffer_pullup(w->in, -1);
	off = 0;
	while (w->life != WORKER_GONE &&
	    frame_get(p + off, avail - off, max, &h) == 1) {
		if (avail - off < FRAME_HDR_LEN + (size_t)h.len)
			break;
		worker_frame(w, &h, (const char *)p + off + FRAME_HDR_LEN);
		off += FRAME_HDR_LEN + h.len;
	}
	if (off > 0)
		evbuffer_drain(w->in, off);
	if (off < avail && frame_get(p + off, avail - off, max, &h) == -1) {
		log_job(LOG_ERR, 0, w->queue->name, (long)w->pid, "queue %s: worker %ld "
		    "sent a malformed frame (type %u, %u bytes); killing it",
		    w->queue->name, (long)w->pid, h.type, h.len);
		kill(w->pid, SIGKILL);
		eof = 1;
	}
	if (eof) {
		event_del(w->rev);
		worker_ended(w, WORKER_CLOSED);
	}
}

/* Describe a wait status. */
static void
status_string(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
		    strsignal(WTERMSIG(status)),
		    WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "wait status %#x", status);
}

/*
 * w died while an exec handler's program ran: that process group would outlive it. A
 * group id is not reused while any member lives, so while something is left to kill,
 * -pgid is that group; once nothing is, the id could be reused only after the pid
 * space has wrapped around.
 */
static void
worker_kill_group(struct worker *w)
{
	if (w->child_pgid == 0)
		return;
	if (kill(-w->child_pgid, SIGKILL) == 0)
		log_job(LOG_INFO, 0, w->queue->name, (long)w->pid, "queue %s: killed "
		    "process group %ld, left behind by worker %ld", w->queue->name,
		    (long)w->child_pgid, (long)w->pid);
	w->child_pgid = 0;
}

/*
 * Say how w ended (why: its wait status in words), counted as a worker death unless
 * we let it go or expected it. Returns 1 when we let it go (retired, or killed for a
 * job that would not stop): no crash.
 */
static int
worker_judge(struct worker *w, const char *why)
{
	struct queue	*q = w->queue;
	int		 ours, expected;

	ours = w->leave >= WORKER_RETIRED;
	expected = ours || (master_stopping &&
	    ((WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0) ||
	    w->leave == WORKER_SIGNALLED));
	if (expected)
		log_job(LOG_DEBUG, 0, q->name, (long)w->pid, "queue %s: worker %ld exited: %s",
		    q->name, (long)w->pid, why);
	else {
		log_job(LOG_WARNING, 0, q->name, (long)w->pid,
		    "queue %s: worker %ld exited unexpectedly: %s", q->name,
		    (long)w->pid, why);
		q->worker_deaths++;
		snprintf(q->last_death, sizeof q->last_death, "worker %ld %s",
		    (long)w->pid, why);
	}
	return (ours);
}

/* Free w and its slot. Returns how long it was of use (ms): 0 if it never got ready. */
static uint64_t
worker_free(struct worker *w)
{
	struct queue	*q = w->queue;
	uint64_t	 lived = w->ready_ms != 0 ? now_ms() - w->ready_ms : 0;

	if (w->to_fd != -1)
		close(w->to_fd);
	close(w->from_fd);
	event_free(w->rev);
	event_free(w->wev);
	event_free(w->tev);
	evbuffer_free(w->in);
	evbuffer_free(w->out);
	free(w->stops);
	q->workers[w->slot] = NULL;
	/* Slots above the configured count were being removed: shrink the array. */
	while (q->nworkers > q->cf.workers && q->workers[q->nworkers - 1] == NULL)
		q->nworkers--;
	free(w);
	return (lived);
}

/*
 * Refill q's slot after a worker went: at once after a healthy run (READY for
 * SUPERVISOR_YOUNG_MS), with growing delays while the queue's workers keep dying
 * young. A worker we let go (ours: retired, recycled, killed for a job) neither counts
 * nor resets the count.
 */
static void
supervisor_refill(struct queue *q, uint64_t lived, int ours)
{
	int	delay;

	if (lived >= SUPERVISOR_YOUNG_MS)
		q->sv.respawn_fails = 0;
	else if (!ours)
		q->sv.respawn_fails++;
	if (q->sv.respawn_fails == 0 || ours) {
		if (!evtimer_pending(q->sv.respawn_ev, NULL))
			supervisor_respawn_cb(-1, 0, q);
		return;
	}
	if (evtimer_pending(q->sv.respawn_ev, NULL))
		return;		/* a delayed start is due already; it refills every slot */
	delay = SUPERVISOR_BACKOFF_MS << (q->sv.respawn_fails < 9 ?
	    q->sv.respawn_fails - 1 : 9);
	if (delay > SUPERVISOR_BACKOFF_MAX)
		delay = SUPERVISOR_BACKOFF_MAX;
	log_job(LOG_WARNING, 0, q->name, 0, "queue %s: workers keep dying young (%d in a "
	    "row); next start in %d ms", q->name, q->sv.respawn_fails, delay);
	supervisor_respawn_in(q, delay);
}

/* w is reaped and at EOF (worker_ended): judge it, hand on what it held, free it. */
static void
worker_gone(struct worker *w)
{
	struct queue	*q = w->queue;
	char		 why[128];
	uint64_t	 lived;
	int		 ours, failed;

	if (w->life != WORKER_GONE)
		return;
	status_string(w->status, why, sizeof why);
	events_publish_queue(EVENTS_WORKER_EXITED, q->idx, w->pid, (uint64_t)w->status,
	    why);
	worker_kill_group(w);
	ours = worker_judge(w, why);
	q->sv.cb->lost(w, why);
	/* It exited EX_CONFIG because the handler cannot start. */
	failed = q->failed_reason != NULL && WIFEXITED(w->status) &&
	    WEXITSTATUS(w->status) == EX_CONFIG;
	lived = worker_free(w);

	if (master_stopping) {
		notify_progress();
		master_check_done();
		return;
	}
	supervisor_check_ready();	/* it may have been the one start-up waited for */
	if (failed)
		return;		/* the handler cannot start */
	if (q->removed && queue_depth(q) == 0 && q->running == 0)
		return;		/* the queue is going away and holds nothing */
	supervisor_refill(q, lived, ours);
}

/* Let w go once it holds no jobs: no new jobs are sent to it meanwhile. */
void
supervisor_retire(struct worker *w)
{
	worker_leaves(w, WORKER_RETIRED);
	worker_to(w, WORKER_RETIRING);
	if (w->ninflight == 0)
		supervisor_close_jobs(w);
}

/* Kill w: its running job job_id would not stop when asked. Nothing more goes to it. */
void
supervisor_kill(struct worker *w, uint64_t job_id)
{
	worker_leaves(w, WORKER_KILLED);
	w->killed_for = job_id;
	worker_to(w, WORKER_STOPPING);
	kill(w->pid, SIGKILL);
}

/*
 * A handler change restarts the queue's workers one at a time: a worker of an older
 * generation is retired (it finishes what it holds, never killed for this), its slot
 * is refilled with the new handler, and the next goes once that one is up.
 */
void
supervisor_roll(struct queue *q)
{
	struct worker	*w;
	int		 i, pass;

	if (master_stopping)
		return;
	/*
	 * One at a time: while a restarted worker is not up yet, or an older one is on
	 * its way out of a slot that will be refilled, the next waits.
	 */
	for (i = 0; i < q->nworkers; i++) {
		if ((w = q->workers[i]) == NULL)
			continue;
		if (w->gen == q->gen && w->life == WORKER_STARTING)
			return;
		if (w->gen != q->gen && w->leave >= WORKER_RETIRED && i < q->cf.workers)
			return;
	}
	/* An idle one first: a busy one would hold the roll up until its job is done. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < q->nworkers && i < q->cf.workers; i++) {
			w = q->workers[i];
			if (w == NULL || w->gen == q->gen || w->life >= WORKER_RETIRING ||
			    (pass == 0 && w->ninflight > 0))
				continue;
			log_info("queue %s: restarting worker %ld for the new settings",
			    q->name, (long)w->pid);
			supervisor_retire(w);
			return;
		}
	}
}

/* Reload: grow or shrink q's pool to its configured size. */
int
supervisor_resize(struct queue *q)
{
	struct worker	**nw;
	int		  i, n = q->cf.workers;

	if (q->workers == NULL) {
		if ((q->workers = calloc(n, sizeof *q->workers)) == NULL)
			return (-1);
		q->nworkers = n;
		if (q->sv.respawn_ev == NULL &&
		    (q->sv.respawn_ev = evtimer_new(master_base, supervisor_respawn_cb, q)) == NULL)
			return (-1);
	} else if (n > q->nworkers) {
		if ((nw = reallocarray(q->workers, n, sizeof *nw)) == NULL)
			return (-1);
		for (i = q->nworkers; i < n; i++)
			nw[i] = NULL;
		q->workers = nw;
		q->nworkers = n;
	}
	/* Extra slots: their workers finish what they hold and are not replaced. */
	for (i = n; i < q->nworkers; i++) {
		if (q->workers[i] != NULL && q->workers[i]->life < WORKER_RETIRING) {
			log_info("queue %s: stopping worker %ld (workers = %d)", q->name,
			    (long)q->workers[i]->pid, n);
			supervisor_retire(q->workers[i]);
		}
	}
	supervisor_respawn_cb(-1, 0, q);
	return (0);
}

/* Find the worker with this pid. */
static struct worker *
supervisor_find(pid_t pid)
{
	int	i, k;

	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < queues[i]->nworkers; k++) {
			if (queues[i]->workers[k] != NULL &&
			    queues[i]->workers[k]->pid == pid)
				return (queues[i]->workers[k]);
		}
	}
	return (NULL);
}

/* SIGCHLD: collect every child that has exited. */
void
supervisor_reap(void)
{
	struct worker	*w;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((w = supervisor_find(pid)) == NULL) {
			log_debug("reaped unknown child %ld", (long)pid);
			continue;
		}
		w->status = status;
		worker_ended(w, WORKER_EXITED);
	}
}

/* Shutdown: tell idle workers to exit by closing their job pipe. 1 when none is left. */
int
supervisor_drain(void)
{
	struct worker	*w;
	int		 i, k;

	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < queues[i]->nworkers; k++) {
			w = queues[i]->workers[k];
			if (w == NULL || w->ninflight > 0 || w->to_fd == -1)
				continue;
			supervisor_close_jobs(w);
		}
	}
	return (!supervisor_alive());
}

/* Send sig to every live worker. */
void
supervisor_signal_all(int sig)
{
	struct worker	*w;
	int		 i, k;

	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < queues[i]->nworkers; k++) {
			w = queues[i]->workers[k];
			if (w == NULL || worker_reaped(w))
				continue;
			kill(w->pid, sig);
			worker_leaves(w, WORKER_SIGNALLED);
		}
	}
}

/*
 * Call fn for every job q's workers hold, worker by worker, in order (the first
 * w->slots of each are running). Stops at the first nonzero fn returns, and returns
 * it. fn may end the job it is given, not another.
 */
int
supervisor_foreach_inflight(struct queue *q, int (*fn)(struct job *, void *), void *arg)
{
	struct worker	*w;
	struct job	*j, *next;
	int		 k, rc;

	for (k = 0; k < q->nworkers; k++) {
		if ((w = q->workers[k]) == NULL)
			continue;
		for (j = TAILQ_FIRST(&w->inflight); j != NULL; j = next) {
			next = TAILQ_NEXT(j, entry);
			if ((rc = fn(j, arg)) != 0)
				return (rc);
		}
	}
	return (0);
}

/* The worker that holds j (running it, or with it in line), or NULL. */
struct worker *
supervisor_holder(const struct job *j)
{
	struct queue	*q = job_queue(j);
	struct worker	*w;
	struct job	*k;
	int		 i;

	for (i = 0; i < q->nworkers; i++) {
		if ((w = q->workers[i]) == NULL)
			continue;
		TAILQ_FOREACH(k, &w->inflight, entry) {
			if (k == j)
				return (w);
		}
	}
	return (NULL);
}

/* Is j one of the jobs w runs now: among the first w->slots of its in-flight list? */
int
supervisor_running(const struct worker *w, const struct job *j)
{
	const struct job	*k;
	uint32_t		 i = 0;

	TAILQ_FOREACH(k, &w->inflight, entry) {
		if (i++ >= w->slots)
			break;
		if (k == j)
			return (1);
	}
	return (0);
}

/* How long w's longest-running job has run at now (us); 0: idle. */
uint64_t
supervisor_busy_us(const struct worker *w, uint64_t now)
{
	const struct job	*k;
	uint64_t		 since = UINT64_MAX;
	uint32_t		 i = 0;

	TAILQ_FOREACH(k, &w->inflight, entry) {
		if (i++ >= w->slots)
			break;
		if (k->run_at < since)
			since = k->run_at;
	}
	return (since != UINT64_MAX && now > since ? now - since : 0);
}

/* Has q any worker left? */
int
supervisor_alive_queue(const struct queue *q)
{
	int	k;

	for (k = 0; k < q->nworkers; k++) {
		if (q->workers[k] != NULL)
			return (1);
	}
	return (0);
}

/* Is any worker still there? */
int
supervisor_alive(void)
{
	int	i, k;

	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < queues[i]->nworkers; k++) {
			if (queues[i]->workers[k] != NULL)
				return (1);
		}
	}
	return (0);
}
