/*
 * worker.c: the worker process. Forked by the supervisor with its job pipe on fd 3 and
 * its result pipe on fd 4; it runs the queue's handler on each job frame and writes a
 * result frame back, in order. It never touches the master's event base: this is a
 * plain blocking loop, which is what a worker should be.
 *
 * Results are written in batches: after the last whole job in what one read brought,
 * or as soon as a job has taken a millisecond or more, so a slow job's result is never
 * held back behind the jobs queued after it. Nor is a fast job's result held behind a
 * slow job that follows it: before each job starts, the results waiting to be written
 * are handed to a flusher thread, which writes them if they are still there
 * WORKER_FLUSH_US later (worker_hold). The thread blocks every signal and touches
 * nothing but those results and the result pipe, under out_lock. While jobs flow it
 * looks on its own every WORKER_FLUSH_US, so a hand-over costs no wake-up (bench W1,
 * bench/README.md); idle, it sleeps.
 * Exec handlers have no flusher (handler.h's unheld): each result is written before
 * the next program starts, and the worker is one thread.
 *
 * A handler that carries several jobs at once (handler.h's start, an IO handler) gets
 * a loop of its own (worker_multi): up to the queue's concurrency jobs run at once, each
 * result frame names its job and goes back as soon as the job ends, in any order, and a
 * CANCEL for one of them drops that one only (the handler's cancel). Its READY says
 * how many it runs at once, which is how many the master treats as running.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/uio.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "handler.h"
#include "jobpoold.h"
#include "log.h"
#include "priv.h"

#define WORKER_READ_MIN		(256 * 1024)
#define WORKER_FLUSH_US		1000
#define WORKER_IDLE_US		100000	/* the flusher sleeps after this long idle */

/* Make room for n more bytes. */
int
obuf_reserve(struct jobpool_output *b, size_t n)
{
	size_t	 cap;
	char	*nbuf;

	if (b->cap - b->len >= n)
		return (0);
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n) {
		/* An impossible n (a negative length cast, say) must not wrap cap to 0. */
		if (cap > SIZE_MAX / 2)
			return (-1);
		cap *= 2;
	}
	if ((nbuf = realloc(b->buf, cap)) == NULL)
		return (-1);
	b->buf = nbuf;
	b->cap = cap;
	return (0);
}

int
obuf_add(struct jobpool_output *b, const void *data, size_t len)
{
	if (len == 0)
		return (0);	/* b->buf may still be NULL, which memcpy() must not see */
	if (obuf_reserve(b, len) != 0)
		return (-1);
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return (0);
}

int
obuf_printf(struct jobpool_output *b, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || obuf_reserve(b, (size_t)n + 1) != 0)
		return (-1);
	va_start(ap, fmt);
	vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return (0);
}

/*
 * The worker's state. One job runs at a time; the input buffer holds the frames the
 * master has sent and not yet been handled. While a job runs, the buffer is never
 * reallocated (the handler holds a pointer into it): reads during a job only fill the
 * room reserved before it started.
 */
#define WORKER_RESERVE		(2 * 1024 * 1024)
#define WORKER_RSS_EVERY	16

struct cancel {
	uint64_t	id;
	int		reason;		/* FRAME_CANCEL_USER or FRAME_CANCEL_TIMEOUT */
};

struct cleanup {
	void	(*fn)(void *);
	void	 *arg;
};

static volatile sig_atomic_t	 worker_signalled;	/* SIGUSR1: look at the pipe */
static int			 worker_in = -1;
static char			*ibuf;
static size_t			 icap, ilen;
static size_t			 ioff;		/* next frame to handle */
static size_t			 iscan;		/* frames before this were scanned for CANCEL */
static uint32_t			 imax;
static uint64_t			 current;	/* the job running now, 0 if none */
static int			 current_cancel = -1;	/* its cancel reason, -1 if none */
static struct cancel		*ahead;		/* cancels of jobs not yet started */
static size_t			 nahead, cahead;
static struct cleanup		*hooks;
static size_t			 nhooks, chooks;
static const struct queue_config *worker_qc;
/* The running batch (worker_batch): its jobs' ids and cancel reasons (-1: none). */
static uint64_t			*batch_ids;
static int			*batch_cancel;
static size_t			 batch_n;
static volatile sig_atomic_t	 child_pgid;	/* an exec handler's running program */
static char			 child_frame[FRAME_HDR_LEN + sizeof(int32_t)];
static uint64_t			 child_since;	/* child_frame waits since; 0: none */

/* A handler that carries several jobs at once (worker_multi); multi_h NULL: one. */
static const struct handler	*multi_h;
static void			*multi_state;
static uint64_t			*multi_run;	/* the ids of the jobs it runs */
static uint32_t			 multi_n, multi_slots;
static uint64_t			 multi_ended;	/* jobs answered */
static struct jobpool_output	*multi_ob;	/* results not yet written */
static uint32_t			 multi_max;	/* max_payload */

static void	worker_multi_result(uint64_t, int, uint32_t, const void *, size_t);

/* The result pipe: what the main loop and the flusher thread write, in order. */
static pthread_mutex_t		 out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 out_cond;
static int			 out_fd = -1;
static int			 flusher;	/* the thread runs */
static struct jobpool_output	 held;		/* results older than ob's, to write */
static uint64_t			 held_since;	/* monotonic us */
static int			 flusher_asleep; /* waits for a signal, not a time */

static void
worker_sigusr1(int sig)
{
	worker_signalled = 1;
}

/*
 * SIGTERM (shutdown's last resort, or the master died): an exec handler's program
 * leads a process group of its own, which would outlive us; take it along.
 */
static void
worker_sigterm(int sig)
{
	pid_t	pg = (pid_t)child_pgid;

	if (pg > 1)
		(void)kill(-pg, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

unsigned
worker_grace_ms(void)
{
	return (worker_qc != NULL ? worker_qc->grace_ms : 5000);
}

/* Does the BATCH frame h at off hold a job id? */
static int
worker_batch_holds(size_t off, const struct frame_hdr *h, uint64_t id)
{
	struct frame_hdr	j;
	size_t			p = off + FRAME_HDR_LEN, end = p + h->len;

	while (p < end && frame_get(ibuf + p, end - p, imax, &j) == 1) {
		if (j.type == FRAME_JOB && j.id == id)
			return (1);
		p += FRAME_HDR_LEN + j.len;
	}
	return (0);
}

/* Is there a JOB frame for id among the frames not yet handled, before end? */
static int
worker_pending(uint64_t id, size_t end)
{
	struct frame_hdr	h;
	size_t			off = ioff;

	while (off < end && frame_get(ibuf + off, end - off, imax, &h) == 1) {
		if (h.type == FRAME_JOB && h.id == id)
			return (1);
		if (h.type == FRAME_BATCH && worker_batch_holds(off, &h, id))
			return (1);
		off += FRAME_HDR_LEN + h.len;
	}
	return (0);
}

/* Is job id one of those a worker_multi handler runs? Then it is taken out: 1. */
static int
worker_multi_take(uint64_t id)
{
	uint32_t	i;

	for (i = 0; i < multi_n; i++) {
		if (multi_run[i] == id) {
			multi_run[i] = multi_run[--multi_n];
			return (1);
		}
	}
	return (0);
}

/* A CANCEL frame at pos: for the running job, or for one waiting in the buffer. */
static void
worker_record_cancel(uint64_t id, int reason, size_t pos)
{
	struct cancel	*n;
	size_t		 i;

	if (id == current && current != 0) {
		current_cancel = reason;
		return;
	}
	for (i = 0; i < batch_n; i++) {
		if (batch_ids[i] == id) {
			batch_cancel[i] = reason;
			current_cancel = reason;	/* jobpool_cancelled(): one of them */
			return;
		}
	}
	/* One of several running: the handler drops it alone, and it is answered now. */
	if (multi_h != NULL && worker_multi_take(id)) {
		multi_h->cancel(multi_state, id);
		worker_multi_result(id, FRAME_CANCELLED, 0,
		    "stopped: the handler dropped it", 31);
		return;
	}
	/* A cancel for a job already finished crossed its result: nothing to do. */
	if (!worker_pending(id, pos))
		return;
	if (nahead == cahead) {
		cahead = cahead ? cahead * 2 : 8;
		if ((n = reallocarray(ahead, cahead, sizeof *n)) == NULL)
			_exit(EX_OSERR);
		ahead = n;
	}
	ahead[nahead].id = id;
	ahead[nahead].reason = reason;
	nahead++;
}

/* Look at every whole frame not scanned yet for CANCELs. */
static void
worker_scan(void)
{
	struct frame_hdr	h;

	while (iscan < ilen && frame_get(ibuf + iscan, ilen - iscan, imax, &h) == 1 &&
	    ilen - iscan >= FRAME_HDR_LEN + (size_t)h.len) {
		if (h.type == FRAME_CANCEL)
			worker_record_cancel(h.id, h.status, iscan);
		iscan += FRAME_HDR_LEN + h.len;
	}
}

/* Was the job about to start cancelled already? Returns its reason or -1. */
static int
worker_take_ahead(uint64_t id)
{
	size_t	i;
	int	reason;

	for (i = 0; i < nahead; i++) {
		if (ahead[i].id == id) {
			reason = ahead[i].reason;
			ahead[i] = ahead[--nahead];
			return (reason);
		}
	}
	return (-1);
}

/* While a job runs: read what the master sent since, into the reserved room only. */
static void
worker_poll_input(void)
{
	struct pollfd	pfd = { worker_in, POLLIN, 0 };
	ssize_t		n;

	while (ilen < icap && poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN)) {
		n = read(worker_in, ibuf + ilen, icap - ilen);
		if (n <= 0)
			break;
		ilen += (size_t)n;
	}
	worker_scan();
}

int
jobpool_cancelled(void)
{
	if (worker_signalled) {
		worker_signalled = 0;
		worker_poll_input();
	}
	return (current_cancel != -1);
}

/* jobpool-handler.h: has this job of the running batch been cancelled (or timed out)? */
int
jobpool_job_cancelled(const struct jobpool_job *job)
{
	(void)jobpool_cancelled();
	return (job != NULL && job->index < batch_n && batch_cancel[job->index] != -1);
}

int
jobpool_cleanup_push(void (*fn)(void *), void *arg)
{
	struct cleanup	*n;

	if (nhooks == chooks) {
		size_t c = chooks ? chooks * 2 : 8;

		if ((n = reallocarray(hooks, c, sizeof *n)) == NULL)
			return (-1);
		hooks = n;
		chooks = c;
	}
	hooks[nhooks].fn = fn;
	hooks[nhooks].arg = arg;
	nhooks++;
	return (0);
}

void
jobpool_cleanup_pop(int run)
{
	struct cleanup	c;

	if (nhooks == 0)
		return;
	c = hooks[--nhooks];
	if (run)
		c.fn(c.arg);
}

/* Run every hook still pushed, last first; returns how many ran. */
static size_t
worker_run_hooks(void)
{
	size_t	n = 0;

	while (nhooks > 0) {
		jobpool_cleanup_pop(1);
		n++;
	}
	return (n);
}

static uint64_t
worker_clock_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

/*
 * Write a, then b, to the result pipe in one writev() where they fit, blocking; exit if
 * the master is gone. Both are emptied.
 */
static void
worker_write2(struct jobpool_output *a, struct jobpool_output *b)
{
	struct iovec	iov[2];
	int		n = 0;
	ssize_t		r;
	size_t		done;

	if (a->len > 0)
		iov[n++] = (struct iovec){ a->buf, a->len };
	if (b != NULL && b->len > 0)
		iov[n++] = (struct iovec){ b->buf, b->len };
	while (n > 0) {
		if ((r = writev(out_fd, iov, n)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(0);	/* EPIPE: the master has gone; nothing to report to */
		}
		for (done = (size_t)r; n > 0 && done >= iov[0].iov_len; n--) {
			done -= iov[0].iov_len;
			iov[0] = iov[1];
		}
		if (n > 0) {
			iov[0].iov_base = (char *)iov[0].iov_base + done;
			iov[0].iov_len -= done;
		}
	}
	a->len = 0;
	if (b != NULL)
		b->len = 0;
}

/* Write the held results, then b. */
static void
worker_flush(struct jobpool_output *b)
{
	pthread_mutex_lock(&out_lock);
	worker_write2(&held, b);
	pthread_mutex_unlock(&out_lock);
}

/*
 * The flusher thread: write held results once they have waited WORKER_FLUSH_US. While
 * the worker is busy it looks every WORKER_FLUSH_US on its own, so that handing it
 * results costs the main thread no wake-up; after WORKER_IDLE_US with nothing held it
 * sleeps until woken (flusher_asleep), so an idle worker costs nothing.
 */
static void *
worker_flusher(void *arg)
{
	struct timespec	ts;
	uint64_t	due, now, idle_since = 0;

	pthread_mutex_lock(&out_lock);
	for (;;) {
		now = worker_clock_us();
		if (held.len == 0) {
			if (idle_since == 0)
				idle_since = now;
			if (now - idle_since >= WORKER_IDLE_US) {
				flusher_asleep = 1;
				while (held.len == 0)
					pthread_cond_wait(&out_cond, &out_lock);
				flusher_asleep = 0;
				idle_since = 0;
				continue;
			}
			due = now + WORKER_FLUSH_US;
		} else {
			idle_since = 0;
			/* held_since moves only when held was emptied and filled again. */
			due = held_since + WORKER_FLUSH_US;
			if (now >= due) {
				worker_write2(&held, NULL);
				continue;
			}
		}
		ts.tv_sec = (time_t)(due / 1000000);
		ts.tv_nsec = (long)(due % 1000000) * 1000;
		pthread_cond_timedwait(&out_cond, &out_lock, &ts);
	}
	return (NULL);
}

/*
 * Start the flusher thread; without it (exec handlers, or no thread could be made),
 * results are written before each job.
 */
static void
worker_flusher_start(void)
{
	pthread_condattr_t	ca;
	pthread_attr_t		ta;
	pthread_t		t;
	sigset_t		all, old;

	if (pthread_condattr_init(&ca) != 0)
		return;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&out_cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		return;
	}
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, 256 * 1024);	/* it only calls write() */
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	/* Signals are the main thread's business (SIGUSR1 interrupts the handler). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	flusher = pthread_create(&t, &ta, worker_flusher, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&ta);
	if (!flusher)
		log_warnx("worker %ld: no flusher thread; results are written one by one",
		    (long)getpid());
}

/* With out_lock held: held is getting its first bytes; the flusher's clock starts. */
static void
worker_held_start(void)
{
	held_since = worker_clock_us();
	if (flusher_asleep)
		pthread_cond_signal(&out_cond);
}

/* A job is about to start: the results in ob must not wait for it to finish. */
static void
worker_hold(struct jobpool_output *ob)
{
	struct jobpool_output	t;

	if (ob->len == 0)
		return;
	if (!flusher) {
		worker_flush(ob);
		return;
	}
	pthread_mutex_lock(&out_lock);
	if (held.len == 0) {
		/* Swap the buffers: ob keeps the room held had. */
		t = held;
		held = *ob;
		*ob = t;
		worker_held_start();
	} else {
		if (obuf_add(&held, ob->buf, ob->len) != 0)
			_exit(EX_OSERR);
		ob->len = 0;
	}
	pthread_mutex_unlock(&out_lock);
}

/*
 * handler.h: an exec handler started the job's program as the leader of process
 * group pgid (0: it is gone and reaped). The master hears of it, so it can kill the
 * group if this worker dies first. The frame waits here until the program has run for
 * WORKER_FLUSH_US: the handler's own wait ends by then (worker_child_wait_ms) and sends
 * it (worker_child_due). A program reaped before that needs no frame at all, since
 * nothing of it is left to kill. So a quick program costs no write of its own, and
 * the master no wake-up (bench W5, bench/README.md). Until the frame is sent, a
 * worker killed by SIGTERM still takes the group along (worker_sigterm); only a
 * crash or SIGKILL in that first millisecond would leave it behind.
 */
void
worker_child(uint64_t id, pid_t pgid)
{
	int32_t	pg = (int32_t)pgid;

	child_pgid = (sig_atomic_t)pgid;
	child_since = 0;
	if (pgid == 0)
		return;		/* reaped: the job's RESULT tells the master */
	frame_put(child_frame, FRAME_CHILD, 0, id, sizeof pg);
	memcpy(child_frame + FRAME_HDR_LEN, &pg, sizeof pg);
	child_since = worker_clock_us();
}

/* handler.h: how long until the CHILD frame is due, in ms (0: now; -1: none waits). */
int
worker_child_wait_ms(void)
{
	uint64_t	now;

	if (child_since == 0)
		return (-1);
	now = worker_clock_us();
	if (now >= child_since + WORKER_FLUSH_US)
		return (0);
	return ((int)((child_since + WORKER_FLUSH_US - now + 999) / 1000));
}

/* handler.h: send the CHILD frame if it is due, after the results held before it. */
void
worker_child_due(void)
{
	if (worker_child_wait_ms() != 0)
		return;
	pthread_mutex_lock(&out_lock);
	if (obuf_add(&held, child_frame, sizeof child_frame) != 0)
		_exit(EX_OSERR);
	worker_write2(&held, NULL);
	pthread_mutex_unlock(&out_lock);
	child_since = 0;
}

/* The worker's queue, for log lines. */
const char *
worker_queue_name(void)
{
	return (worker_qc != NULL ? worker_qc->name : NULL);
}

/* The job running now (for worker_child), or 0. */
uint64_t
worker_current(void)
{
	return (current);
}

/* Append one frame with a payload to b. */
static void
worker_frame(struct jobpool_output *b, uint8_t type, uint8_t status, uint64_t id,
    const void *data, size_t len)
{
	if (obuf_reserve(b, FRAME_HDR_LEN + len) != 0)
		_exit(EX_OSERR);
	frame_put(b->buf + b->len, type, status, id, (uint32_t)len);
	if (len > 0)
		memcpy(b->buf + b->len + FRAME_HDR_LEN, data, len);
	b->len += FRAME_HDR_LEN + len;
}

/*
 * The result of one of a worker_multi handler's jobs, bounded by max_payload; a
 * failure's least wait before a retry (seconds) goes in the frame's flags.
 */
static void
worker_multi_result(uint64_t id, int status, uint32_t retry_after_s, const void *data,
    size_t len)
{
	char	msg[160];
	size_t	at = multi_ob->len;

	if (len > multi_max) {
		len = (size_t)snprintf(msg, sizeof msg, "result of %zu bytes is larger "
		    "than max_payload (%u)", len, multi_max);
		data = msg;
		status = FRAME_PERMANENT;
	}
	worker_frame(multi_ob, FRAME_RESULT, (uint8_t)status, id, data, len);
	if (status == FRAME_FAILED && retry_after_s > 0)
		frame_set_flags(multi_ob->buf + at, retry_after_s > UINT16_MAX ?
		    UINT16_MAX : (uint16_t)retry_after_s);
	multi_ended++;
}

/* handler.h: job id of a handler with start() ended. */
void
worker_done(uint64_t id, int status, const void *data, size_t len)
{
	worker_done_after(id, status, 0, data, len);
}

/* handler.h: job id's HTTP status, for the master's STATUS (a FRAME_HTTP). */
void
worker_http_status(uint64_t id, unsigned code)
{
	size_t	at;

	if (multi_h == NULL || code > UINT16_MAX)
		return;
	at = multi_ob->len;
	worker_frame(multi_ob, FRAME_HTTP, 0, id, NULL, 0);
	frame_set_flags(multi_ob->buf + at, (uint16_t)code);
}

/* handler.h: the same, with a failure's least wait before a retry. */
void
worker_done_after(uint64_t id, int status, uint32_t retry_after_s, const void *data,
    size_t len)
{
	/* Not one it runs: cancelled already (answered then), or a handler's bug. */
	if (multi_h == NULL || !worker_multi_take(id))
		return;
	worker_multi_result(id, status, retry_after_s, data, len);
}

/*
 * Run the handler on one job and append its result frame. A job cancelled before it
 * started is answered without running. Cleanup hooks run when the job is cancelled,
 * times out or fails, and are dropped when it succeeds.
 */
static void
worker_run(const struct handler *h, void *state, const struct config *cf,
    uint64_t id, const char *data, size_t len, struct jobpool_output *out)
{
	size_t		start = out->len, rlen, ran;
	int		status;
	char		msg[160];

	if (obuf_reserve(out, FRAME_HDR_LEN) != 0)
		_exit(EX_OSERR);
	out->len += FRAME_HDR_LEN;
	/*
	 * A cancel signalled while the worker was busy between jobs (blocked writing the
	 * last results, say) is still in the pipe: read it before this job starts, or a
	 * job cancelled before it started would run.
	 */
	(void)jobpool_cancelled();
	if (worker_take_ahead(id) != -1) {
		obuf_printf(out, "cancelled before it started");
		status = FRAME_SKIPPED;
		goto done;
	}
	current = id;
	current_cancel = -1;
	status = h->run(state, data, len, out);
	(void)jobpool_cancelled();	/* a cancel that arrived at the very end counts */
	if (current_cancel != -1) {
		/* Whatever the handler said, the job was cancelled (or timed out). */
		if (status != FRAME_CANCELLED)
			out->len = start + FRAME_HDR_LEN;
		ran = worker_run_hooks();
		/* A handler with its own cleanup (exec: the program's) says so itself. */
		if (!h->own_cleanup) {
			if (out->len > start + FRAME_HDR_LEN)
				obuf_add_lit(out, "; ");
			obuf_printf(out, "cleanup ran (%zu hook%s)", ran,
			    ran == 1 ? "" : "s");
		}
		status = FRAME_CANCELLED;
	} else if (status != FRAME_OK) {
		(void)worker_run_hooks();
	} else
		nhooks = 0;
	current = 0;
	current_cancel = -1;
	rlen = out->len - start - FRAME_HDR_LEN;
	if (rlen > cf->max_payload) {
		out->len = start + FRAME_HDR_LEN;
		rlen = (size_t)snprintf(msg, sizeof msg,
		    "result of %zu bytes is larger than max_payload (%u)", rlen,
		    cf->max_payload);
		obuf_add(out, msg, rlen);
		status = FRAME_PERMANENT;
	}
done:
	rlen = out->len - start - FRAME_HDR_LEN;
	frame_put(out->buf + start, FRAME_RESULT, (uint8_t)status, id, (uint32_t)rlen);
}

/* Append a batch job's result frame: its output, unless larger than max_payload. */
static void
worker_batch_result(struct jobpool_output *out, const struct config *cf, uint64_t id,
    int status, const struct jobpool_output *o)
{
	char	msg[160];
	int	n;

	if (o->len > cf->max_payload) {
		n = snprintf(msg, sizeof msg, "result of %zu bytes is larger than "
		    "max_payload (%u)", o->len, cf->max_payload);
		worker_frame(out, FRAME_RESULT, FRAME_PERMANENT, id, msg, (size_t)n);
	} else
		worker_frame(out, FRAME_RESULT, (uint8_t)status, id, o->buf, o->len);
}

/*
 * Run the jobs of a BATCH frame (payload p, plen bytes of whole JOB frames) in one
 * call of the handler's batch entry point, and append one result frame per job in the
 * frame's order. A job cancelled before the batch started is answered without running
 * (and is not in the call); one cancelled or timed out during it ends cancelled,
 * whatever the handler said of it. The cleanup hooks are the batch's: they run if any
 * job was cancelled or failed, and are dropped when every job succeeded. Returns the
 * number of jobs.
 */
static size_t
worker_batch(const struct handler *h, void *state, const struct config *cf,
    const char *p, size_t plen, struct jobpool_output *out)
{
	static struct jobpool_job	*jobs;
	static struct jobpool_output	*outs;
	static uint64_t			*ids;
	static size_t			*slot, cap;
	struct frame_hdr		 jh;
	size_t				 n = 0, k = 0, i, off, ran = 0, nc;
	int				 failed = 0;
	char				 msg[64];

	for (off = 0; off < plen && frame_get(p + off, plen - off, imax, &jh) == 1 &&
	    plen - off >= FRAME_HDR_LEN + (size_t)jh.len; off += FRAME_HDR_LEN + jh.len)
		n++;
	if (off != plen) {
		log_errx("worker %ld (queue %s): malformed batch frame from the master; "
		    "exiting", (long)getpid(), worker_qc->name);
		_exit(EX_SOFTWARE);
	}
	if (n > cap) {
		if ((jobs = reallocarray(jobs, n, sizeof *jobs)) == NULL ||
		    (ids = reallocarray(ids, n, sizeof *ids)) == NULL ||
		    (slot = reallocarray(slot, n, sizeof *slot)) == NULL ||
		    (batch_ids = reallocarray(batch_ids, n, sizeof *batch_ids)) == NULL ||
		    (batch_cancel = reallocarray(batch_cancel, n,
		    sizeof *batch_cancel)) == NULL ||
		    (outs = reallocarray(outs, n, sizeof *outs)) == NULL)
			_exit(EX_OSERR);
		memset(outs + cap, 0, (n - cap) * sizeof *outs);
		cap = n;
	}

	/* As worker_run: a cancel already in the pipe counts before the batch starts. */
	(void)jobpool_cancelled();
	for (off = 0, i = 0; i < n; off += FRAME_HDR_LEN + jh.len, i++) {
		(void)frame_get(p + off, plen - off, imax, &jh);
		ids[i] = jh.id;
		slot[i] = SIZE_MAX;
		if (jh.type != FRAME_JOB || worker_take_ahead(jh.id) != -1)
			continue;
		outs[k].len = 0;
		jobs[k] = (struct jobpool_job){ .payload = p + off + FRAME_HDR_LEN,
		    .len = jh.len, .out = &outs[k], .status = JOBPOOL_HANDLER_UNSET,
		    .index = (unsigned)k };
		batch_ids[k] = jh.id;
		batch_cancel[k] = -1;
		slot[i] = k++;
	}
	current_cancel = -1;
	batch_n = k;
	if (k > 0)
		h->run_batch(state, jobs, k);
	(void)jobpool_cancelled();	/* a cancel that arrived at the very end counts */
	for (i = 0; i < k; i++)
		failed |= batch_cancel[i] != -1 || jobs[i].status != FRAME_OK;
	if (failed)
		ran = worker_run_hooks();
	else
		nhooks = 0;

	for (i = 0; i < n; i++) {
		if (slot[i] == SIZE_MAX) {
			worker_frame(out, FRAME_RESULT, FRAME_SKIPPED, ids[i],
			    "cancelled before it started", 27);
		} else if (batch_cancel[slot[i]] != -1) {
			/* What the handler said of it is dropped, as worker_run does. */
			nc = (size_t)snprintf(msg, sizeof msg, "cleanup ran (%zu hook%s)",
			    ran, ran == 1 ? "" : "s");
			worker_frame(out, FRAME_RESULT, FRAME_CANCELLED, ids[i], msg, nc);
		} else
			worker_batch_result(out, cf, ids[i], jobs[slot[i]].status,
			    &outs[slot[i]]);
	}
	batch_n = 0;
	current_cancel = -1;
	return (n);
}

/* The worker's resident set size in bytes, or 0 if unknown. */
static uint64_t
worker_rss(void)
{
	unsigned long	size, resident;
	FILE		*f;
	int		 ok;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return (0);
	ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
	fclose(f);
	return (ok ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0);
}

/* Resolve the queue's handler spec and initialise it. */
int
handler_open(const struct config *cf, const struct queue_config *qc,
    struct handler *h, void **state, char **cause)
{
	const struct handler	*b;
	const char		*arg = "";

	*cause = NULL;
	*state = NULL;
	memset(h, 0, sizeof *h);
	if (strncmp(qc->handler, CONFIG_HANDLER_PLUGIN,
	    strlen(CONFIG_HANDLER_PLUGIN)) == 0) {
		if (handler_plugin_open(qc->handler, h, &arg, cause) != 0)
			return (-1);
	} else if (strncmp(qc->handler, CONFIG_HANDLER_EXEC,
	    strlen(CONFIG_HANDLER_EXEC)) == 0) {
		if (handler_exec_open(qc->handler, h, &arg, cause) != 0)
			return (-1);
	} else if (strcmp(qc->handler, "http") == 0)
		*h = *handler_http_find();
	else if ((b = handler_builtin_find(qc->handler)) != NULL)
		*h = *b;
	else {
		if (asprintf(cause, "no handler '%s'", qc->handler) == -1)
			*cause = NULL;
		return (-1);
	}
	if (h->init != NULL && h->init(cf, qc, arg, state, cause) != 0) {
		if (*cause == NULL)
			*cause = strdup("the handler's init failed");
		return (-1);
	}
	return (0);
}

/* Move fd to target, leaving it close-on-exec. */
static int
worker_move_fd(int fd, int target)
{
	if (fd != target) {
		if (dup2(fd, target) == -1)
			return (-1);
		close(fd);
	}
	return (fcntl(target, F_SETFD, FD_CLOEXEC));
}

/*
 * Give sig its default action in a new worker, also when the C library refuses: glibc
 * keeps SIGCANCEL and SIGSETXID (32, 33) to itself, so an ignored one inherited from
 * whoever started jobpoold (some `make`s ignore both) would stay ignored. The kernel's
 * struct sigaction for SIG_DFL, no flags and an empty mask is all zeroes on every
 * architecture; glibc installs its own handlers when it needs them.
 */
static void
worker_sig_default(int sig)
{
	if (signal(sig, SIG_DFL) != SIG_ERR || sig == SIGKILL || sig == SIGSTOP)
		return;
#if defined(__linux__) && defined(SYS_rt_sigaction)
	{
		unsigned long	ksa[8];

		memset(ksa, 0, sizeof ksa);
		(void)syscall(SYS_rt_sigaction, sig, ksa, NULL, (size_t)(_NSIG / 8));
	}
#endif
}

/*
 * In the child, right after fork() (with every signal blocked across it): default
 * signal handling and an empty mask, then only stdio and the two pipe ends, in as fd 3
 * and out as fd 4, both close-on-exec. Nothing of the master's survives into
 * worker_main(); exits EX_OSERR if the descriptors cannot be set up.
 */
void
worker_after_fork(int in, int out)
{
	sigset_t	none;
	int		sig;

	for (sig = 1; sig < NSIG; sig++)
		worker_sig_default(sig);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (out == 3) {
		if ((out = dup(out)) == -1)
			_exit(EX_OSERR);
	}
	if (worker_move_fd(in, 3) == -1 || worker_move_fd(out, 4) == -1)
		_exit(EX_OSERR);
#ifdef HAVE_CLOSE_RANGE
	if (close_range(5, ~0U, 0) == 0)
		return;
#endif
	for (int fd = 5; fd < 65536; fd++)
		close(fd);
}

/* What worker_main()'s phases share. */
struct worker_loop {
	const struct config		*cf;
	const struct queue_config	*qc;
	struct handler			 h;
	void				*state;	/* the handler's */
	struct jobpool_output		 ob;	/* results not yet written */
	uint64_t			 jobs;	/* run so far */
	uint64_t			 last;	/* the last job ended (us) */
};

/* The worker cannot start: READY with why, and EX_CONFIG (respawning will not help). */
static void __attribute__((noreturn))
worker_refuse(struct worker_loop *wl, char *cause, const char *otherwise)
{
	const char	*why = cause != NULL ? cause : otherwise;

	worker_frame(&wl->ob, FRAME_READY, 1, 0, why, strlen(why));
	worker_flush(&wl->ob);
	_exit(EX_CONFIG);
}

/*
 * A queue asks for batches of a handler without a batch entry point: which setting,
 * where, and what is missing (malloc'd, or NULL).
 */
static char *
worker_no_batch(const struct config *cf, const struct queue_config *qc)
{
	char	*cause;

	if (asprintf(&cause, "%s:%d: queue '%s' sets batch_size = %u, but its handler "
	    "'%s' has no batch entry point (a plugin of ABI 2 with process_batch, "
	    "jobpool-handler.h); remove batch_size or use such a plugin", cf->path,
	    qc->line, qc->name, qc->batch_size, qc->handler) == -1)
		return (NULL);
	return (cause);
}

/* The worker is done (the master closed its job pipe, or it retires). */
static void __attribute__((noreturn))
worker_exit(struct worker_loop *wl)
{
	if (wl->h.fini != NULL)
		wl->h.fini(wl->state);
	_exit(0);
}

/* systemd's variables speak to the master; handlers and their programs must not. */
static void
worker_unsetenv(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
}

/* After the uid change, which clears it: die with the master. And be named jp:QUEUE. */
static void
worker_name(const struct queue_config *qc)
{
#ifdef HAVE_SYS_PRCTL_H
	char	name[16];

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master_pid)
		_exit(0);	/* the master died before we got here */
	snprintf(name, sizeof name, "jp:%s", qc->name);
	(void)prctl(PR_SET_NAME, name);
#endif
}

/* SIGUSR1 interrupts blocking calls (no SA_RESTART): cancellation is prompt. */
static void
worker_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = worker_sigusr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = worker_sigterm;
	sigaction(SIGTERM, &sa, NULL);
}

/*
 * Become the queue's worker: limits, user and group first, so that the handler starts
 * as what it will run as; then its name, signals and input buffer. 0, or -1 with
 * *cause.
 */
static int
worker_setup(const struct config *cf, const struct queue_config *qc, int in,
    char **cause)
{
	log_init(cf->log_level, "jobpoold-worker");
	worker_unsetenv();
	if (priv_worker(qc, cause) != 0)
		return (-1);
	worker_name(qc);
	worker_qc = qc;
	worker_in = in;
	imax = CONFIG_FRAME_MAX;
	worker_signals();
	icap = WORKER_READ_MIN + WORKER_RESERVE;
	if ((ibuf = malloc(icap)) == NULL)
		_exit(EX_OSERR);
	return (0);
}

/*
 * Read what the master sent, and note its CANCELs: 1, or 0 at EOF (the master closed
 * the job pipe). Keeps room for a whole frame to arrive, and the reserve for reads
 * during a job.
 */
static int
worker_read(void)
{
	ssize_t	 n;
	char	*nb;

	for (;;) {
		if (icap - ilen < WORKER_READ_MIN / 2 + WORKER_RESERVE) {
			if ((nb = realloc(ibuf, icap * 2)) == NULL)
				_exit(EX_OSERR);
			ibuf = nb;
			icap *= 2;
		}
		n = read(worker_in, ibuf + ilen, icap - ilen - WORKER_RESERVE);
		if (n > 0)
			break;
		if (n == 0)
			return (0);
		if (errno != EINTR)
			_exit(EX_OSERR);
		worker_signalled = 0;
	}
	ilen += (size_t)n;
	worker_scan();
	return (1);
}

/*
 * The frame at ioff: 1 if it is whole (*hdr set), 0 if none is, having made room for
 * the rest of a partial one.
 */
static int
worker_next_frame(struct frame_hdr *hdr)
{
	size_t	 need;
	char	*nb;
	int	 r;

	if ((r = frame_get(ibuf + ioff, ilen - ioff, imax, hdr)) == -1) {
		/* The master sent garbage: a bug. Say so, then leave. */
		log_errx("worker %ld (queue %s): malformed frame from the master (type "
		    "%u, %u bytes); exiting", (long)getpid(), worker_qc->name, hdr->type,
		    hdr->len);
		_exit(EX_SOFTWARE);
	}
	if (r == 0)
		return (0);
	if (ilen - ioff >= FRAME_HDR_LEN + (size_t)hdr->len)
		return (1);
	/* A partial job: make sure it will fit. */
	need = FRAME_HDR_LEN + (size_t)hdr->len + WORKER_RESERVE + WORKER_READ_MIN;
	if (need > icap - ioff) {
		if ((nb = realloc(ibuf, ioff + need)) == NULL)
			_exit(EX_OSERR);
		ibuf = nb;
		icap = ioff + need;
	}
	return (0);
}

/*
 * Recycling by memory: checked between jobs, never during one, every WORKER_RSS_EVERY
 * jobs or after a slow one. Above max_worker_rss, say why (FRAME_RETIRE) and leave.
 */
static void
worker_check_rss(struct worker_loop *wl, uint64_t now)
{
	uint64_t	rss;
	char		why[128];
	int		n;

	if (wl->qc->max_worker_rss == 0 || (wl->jobs % WORKER_RSS_EVERY != 0 &&
	    now - wl->last < WORKER_FLUSH_US) ||
	    (rss = worker_rss()) <= wl->qc->max_worker_rss)
		return;
	n = snprintf(why, sizeof why, "RSS %llu bytes is above max_worker_rss %llu",
	    (unsigned long long)rss, (unsigned long long)wl->qc->max_worker_rss);
	worker_frame(&wl->ob, FRAME_RETIRE, 0, 0, why, (size_t)n);
	worker_flush(&wl->ob);
	worker_exit(wl);
}

/* After a job or a batch: its results go at once if it took a millisecond or more. */
static void
worker_ran(struct worker_loop *wl)
{
	uint64_t	now = worker_clock_us();

	if (now - wl->last >= WORKER_FLUSH_US)
		worker_flush(&wl->ob);
	worker_check_rss(wl, now);
	wl->last = now;
}

/* Run one job; its result is written at once if it took a millisecond or more. */
static void
worker_job(struct worker_loop *wl, const struct frame_hdr *hdr)
{
	worker_hold(&wl->ob);
	worker_run(&wl->h, wl->state, wl->cf, hdr->id, ibuf + ioff + FRAME_HDR_LEN,
	    hdr->len, &wl->ob);
	wl->jobs++;
	worker_ran(wl);
}

/*
 * Run one batch; its results are written at once if it took a millisecond or more. A
 * handler without a batch entry point (a worker of the previous kind, still running
 * while a reload that set batch_size rolls the pool) runs its jobs one by one.
 */
static void
worker_batch_frame(struct worker_loop *wl, const struct frame_hdr *hdr)
{
	struct frame_hdr	 jh;
	const char		*p = ibuf + ioff + FRAME_HDR_LEN;
	size_t			 off;

	worker_hold(&wl->ob);
	if (wl->h.run_batch != NULL)
		wl->jobs += worker_batch(&wl->h, wl->state, wl->cf, p, hdr->len,
		    &wl->ob);
	else {
		for (off = 0; off < hdr->len && frame_get(p + off, hdr->len - off, imax,
		    &jh) == 1 && hdr->len - off >= FRAME_HDR_LEN + (size_t)jh.len;
		    off += FRAME_HDR_LEN + jh.len) {
			worker_run(&wl->h, wl->state, wl->cf, jh.id, p + off +
			    FRAME_HDR_LEN, jh.len, &wl->ob);
			wl->jobs++;
		}
	}
	worker_ran(wl);
}

/* Drop the frames handled (before ioff) from the input buffer. */
static void
worker_compact(void)
{
	if (ioff == 0)
		return;
	memmove(ibuf, ibuf + ioff, ilen - ioff);
	ilen -= ioff;
	iscan -= ioff;
	ioff = 0;
}

/* Run every whole job frame read so far, in order; the rest waits for more bytes. */
static void
worker_take_frames(struct worker_loop *wl)
{
	struct frame_hdr	hdr;

	wl->last = worker_clock_us();
	while (worker_next_frame(&hdr)) {
		if (hdr.type == FRAME_JOB)
			worker_job(wl, &hdr);
		else if (hdr.type == FRAME_BATCH)
			worker_batch_frame(wl, &hdr);
		ioff += FRAME_HDR_LEN + hdr.len;
	}
	worker_compact();
}

/* worker_multi: start the job of the frame at ioff, unless it was cancelled already. */
static void
worker_multi_start(const struct frame_hdr *hdr)
{
	if (worker_take_ahead(hdr->id) != -1) {
		worker_frame(multi_ob, FRAME_RESULT, FRAME_SKIPPED, hdr->id,
		    "cancelled before it started", 27);
		return;
	}
	multi_run[multi_n++] = hdr->id;
	multi_h->start(multi_state, hdr->id, ibuf + ioff + FRAME_HDR_LEN, hdr->len);
}

/* Is the master's pipe readable now? */
static int
worker_readable(void)
{
	struct pollfd	pfd = { worker_in, POLLIN, 0 };

	return (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLIN | POLLHUP)));
}

/*
 * Recycling by memory for worker_multi, checked as its jobs end: above max_worker_rss
 * it starts nothing more, and says RETIRE once its running jobs are answered.
 */
static int
worker_multi_over_rss(struct worker_loop *wl, char *why, size_t len)
{
	uint64_t	rss;

	if (wl->qc->max_worker_rss == 0 || multi_ended - wl->jobs < WORKER_RSS_EVERY)
		return (0);
	wl->jobs = multi_ended;
	if ((rss = worker_rss()) <= wl->qc->max_worker_rss)
		return (0);
	snprintf(why, len, "RSS %llu bytes is above max_worker_rss %llu",
	    (unsigned long long)rss, (unsigned long long)wl->qc->max_worker_rss);
	return (1);
}

/*
 * The life of a worker whose handler carries several jobs at once: start the jobs of
 * whole frames while a slot is free, write the results that came, and wait in the
 * handler for its jobs and for the master's pipe; until the master closes the pipe
 * and every job is answered.
 */
static void __attribute__((noreturn))
worker_multi(struct worker_loop *wl)
{
	struct frame_hdr	hdr;
	char			why[128] = "";
	int			eof = 0;

	multi_ob = &wl->ob;
	for (;;) {
		while (multi_n < multi_slots && why[0] == '\0' &&
		    worker_next_frame(&hdr)) {
			if (hdr.type == FRAME_JOB)
				worker_multi_start(&hdr);
			ioff += FRAME_HDR_LEN + hdr.len;
		}
		worker_compact();
		if (why[0] == '\0' && worker_multi_over_rss(wl, why, sizeof why))
			continue;	/* start nothing more */
		if (multi_n == 0 && why[0] != '\0') {
			worker_frame(&wl->ob, FRAME_RETIRE, 0, 0, why, strlen(why));
			worker_flush(&wl->ob);
			worker_exit(wl);
		}
		worker_flush(&wl->ob);
		if (multi_n == 0 && eof)
			worker_exit(wl);
		multi_h->wait(multi_state, eof ? -1 : worker_in);
		if (!eof && worker_readable() && !worker_read())
			eof = 1;
	}
}

/*
 * Does this worker run several jobs at once? A handler with start() does when its
 * queue's concurrency is above 1, or when it has no run().
 */
static int
worker_multi_setup(struct worker_loop *wl)
{
	if (wl->h.start == NULL || (wl->h.run != NULL && wl->qc->concurrency <= 1))
		return (0);
	multi_slots = wl->qc->concurrency > 0 ? wl->qc->concurrency : 1;
	if ((multi_run = calloc(multi_slots, sizeof *multi_run)) == NULL)
		_exit(EX_OSERR);
	multi_max = wl->cf->max_payload;
	multi_state = wl->state;
	multi_h = &wl->h;
	return (1);
}

/*
 * The worker's life: set up, open the handler, say READY; then read jobs, run them and
 * write their results until the master closes the job pipe.
 */
void
worker_main(const struct config *cf, const struct queue_config *qc, int in, int out)
{
	struct worker_loop	 wl = { .cf = cf, .qc = qc };
	char			*cause = NULL;

	out_fd = out;
	if (worker_setup(cf, qc, in, &cause) != 0)
		worker_refuse(&wl, cause, "cannot set the worker's user or limits");
	if (handler_open(cf, qc, &wl.h, &wl.state, &cause) != 0)
		worker_refuse(&wl, cause, "cannot start the handler");
	if (qc->batch_size > 0 && wl.h.run_batch == NULL)
		worker_refuse(&wl, worker_no_batch(cf, qc), "no batch entry point");
	/*
	 * An exec handler's job is a process, hundreds of microseconds at the least: its
	 * result is written as the next job starts (worker_hold without a flusher), one
	 * write per program. Holding it for a batch costs more than it saves: the
	 * flusher's look every millisecond takes a CPU the programs need, and the master
	 * hears of a finished program only when the worker's pipe runs dry, so the
	 * worker waits a round trip for its next job (bench W5, bench/README.md).
	 */
	if (worker_multi_setup(&wl)) {
		/* Its READY says how many jobs it runs at once. */
		worker_frame(&wl.ob, FRAME_READY, 0, 0, &multi_slots, sizeof multi_slots);
		worker_flush(&wl.ob);
		worker_multi(&wl);
	}
	if (!wl.h.unheld)
		worker_flusher_start();
	if (qc->batch_size > 0)
		/* A batch's jobs run at once: as many slots as a batch has jobs. */
		worker_frame(&wl.ob, FRAME_READY, 0, 0, &qc->batch_size,
		    sizeof qc->batch_size);
	else
		worker_frame(&wl.ob, FRAME_READY, 0, 0, NULL, 0);
	worker_flush(&wl.ob);

	while (worker_read()) {
		worker_take_frames(&wl);
		worker_flush(&wl.ob);
	}
	worker_exit(&wl);
}
