/*
 * notify.c: the systemd notify protocol (sd_notify) and the watchdog. Without
 * $NOTIFY_SOCKET nothing is sent and no timer runs (only the start-up line about failed
 * queues is logged), so jobpoold runs the same on a terminal.
 *
 * notify owns two timers on the master's event base: the status timer (every second:
 * STATUS= when its text changed; during shutdown a change counts as drain progress)
 * and, when $WATCHDOG_USEC asks for one, the watchdog timer (WATCHDOG=1 at half the
 * interval). Both run from the event loop: a master stuck anywhere stops pinging, and
 * systemd restarts it.
 *
 * Every message is one datagram on $NOTIFY_SOCKET; sd_notify() never waits for an
 * answer, and systemd reads its notify socket at once. A datagram that cannot be sent
 * is logged as a warning, with its text, once per distinct error (a later success
 * clears that): a vanished or full notify socket does not fill the log with one line
 * per watchdog ping.
 *
 * The first notify_ready() is the end of start-up, with or without systemd: it also
 * logs a warning naming the queues whose handler could not start, which STATUS= names
 * too, so neither `systemctl status` nor the log looks healthy while a queue runs
 * nothing.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "jobpoold.h"
#include "journal.h"
#include "log.h"
#include "notify.h"

#define NOTIFY_STATUS_MS	1000		/* how often STATUS= is brought up to date */
#define NOTIFY_EXTEND_MS	1000		/* at most one EXTEND_TIMEOUT_USEC per this */
#define NOTIFY_EXTEND_USEC	5000000ULL	/* how much each one asks for */

static int		 notify_on = -1;	/* -1: $NOTIFY_SOCKET not looked at yet */
static int		 notify_inited;
static int		 notify_was_ready;	/* start-up is over: STATUS= follows the counts */
static int		 notify_is_stopping;
static int		 notify_early_reload;	/* a reload before the first READY=1 */
static struct event	*status_ev;
static struct event	*watchdog_ev;
static char		 status_last[256];	/* the counts last sent */
static uint64_t		 extend_last_ms;
static int		 send_errno;		/* the error last logged; 0 after a success */

/* Is there a notify socket to talk to? Decided once: the environment does not change. */
static int
notify_enabled(void)
{
	if (notify_on == -1) {
		const char	*s = getenv("NOTIFY_SOCKET");

		notify_on = (s != NULL && *s != '\0');
	}
	return (notify_on);
}

/*
 * Send one datagram. A failure is logged as a warning with the message (its lines
 * joined by spaces), unless the last failure had the same error: a socket that went
 * away fails every ping the same way, and one line says it. A success starts afresh.
 */
static void
notify_send(const char *msg)
{
	const char	*sock;
	int		 r;

	if ((r = sd_notify(0, msg)) >= 0) {
		send_errno = 0;
		return;
	}
	if (-r == send_errno)
		return;
	send_errno = -r;
	sock = getenv("NOTIFY_SOCKET");
	log_warnx("notify: cannot send \"%s\" to %s: %s (not logged again until a "
	    "message gets through or the error changes)", msg,
	    sock != NULL ? sock : "$NOTIFY_SOCKET", strerror(-r));
}

/*
 * The queues whose handler cannot start ("bad", or "bad, worse"), cut to fit len with
 * " and N more"; removed queues are left out. Returns how many there are.
 */
static int
notify_failed_queues(char *buf, size_t len)
{
	const struct queue	*q;
	char			 more[32];
	size_t			 used = 0, need;
	int			 i, n = 0, shown = 0;

	if (len == 0)
		return (0);
	buf[0] = '\0';
	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->failed_reason == NULL || q->removed)
			continue;
		n++;
		if (shown < n - 1)
			continue;	/* already cut: only counted */
		/* Room for this name and, should the next not fit, " and N more". */
		need = strlen(q->name) + (shown > 0 ? 2 : 0) + sizeof " and 99999 more";
		if (used + need >= len)
			continue;
		used += snprintf(buf + used, len - used, "%s%s", shown > 0 ? ", " : "",
		    q->name);
		shown++;
	}
	if (shown < n) {
		snprintf(more, sizeof more, "%s%d more", shown > 0 ? " and " : "",
		    n - shown);
		snprintf(buf + used, len - used, "%s", more);
	}
	return (n);
}

/*
 * The text of STATUS=, summed over the queues: "queued 12, running 4/4, done 80,
 * failed 1", then "; queue bad failed" (or "; queues bad, worse failed") while queues
 * have a handler that cannot start, and "; journal failing, new jobs refused" while the
 * journal cannot be written.
 */
static void
notify_status_text(char *buf, size_t len)
{
	const struct queue	*q;
	unsigned long long	 queued = 0, done = 0, failed = 0;
	unsigned int		 running = 0, workers = 0;
	char			 names[sizeof status_last];
	size_t			 used;
	int			 i, k, n;

	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		queued += queue_depth(q);
		done += q->done;
		/* Jobs that ended failed; each is also on the dead list (q->ndead) until
		 * retried or dropped, so adding that would count it twice. */
		failed += q->failed;
		/* A busy worker runs exactly one job; the others of its batch wait. */
		running += q->busy;
		/* A failed queue's workers are on their way out: none takes a job. */
		if (q->failed_reason != NULL)
			continue;
		for (k = 0; k < q->nworkers; k++) {
			if (q->workers[k] != NULL && q->workers[k]->life != WORKER_GONE)
				workers++;
		}
	}
	snprintf(buf, len, "%squeued %llu, running %u/%u, done %llu, failed %llu",
	    notify_is_stopping ? "stopping: " : "", queued, running, workers, done,
	    failed);
	used = strlen(buf);
	if (used + sizeof "; queues  failed" >= len)
		return;
	/* names is cut to the room left, so this fits; snprintf truncates if not. */
	n = notify_failed_queues(names, len - used - (sizeof "; queues  failed" - 1));
	if (n > 0 && snprintf(buf + used, len - used, "; queue%s %s failed",
	    n == 1 ? "" : "s", names) >= (int)(len - used))
		log_debug("notify: status text cut");
	used = strlen(buf);
	if (journal_refusal() != NULL && snprintf(buf + used, len - used,
	    "; journal failing, new jobs refused") >= (int)(len - used))
		log_debug("notify: status text cut");
}

/* Every second: STATUS= if the text changed; while stopping, a change is progress. */
static void
notify_status_cb(evutil_socket_t fd, short events, void *arg)
{
	char	text[sizeof status_last], msg[sizeof status_last + 16];

	if (!notify_was_ready)
		return;
	notify_status_text(text, sizeof text);
	if (strcmp(text, status_last) == 0)
		return;
	snprintf(status_last, sizeof status_last, "%s", text);
	snprintf(msg, sizeof msg, "STATUS=%s", text);
	notify_send(msg);
	if (notify_is_stopping)
		notify_progress();
}

/* The watchdog timer: the event loop is alive. */
static void
notify_watchdog_cb(evutil_socket_t fd, short events, void *arg)
{
	notify_send("WATCHDOG=1");
}

/* Start the status timer, and the watchdog timer if systemd asked for pings. */
void
notify_init(struct event_base *base)
{
	struct timeval	 tv;
	uint64_t	 usec = 0;
	int		 r;

	if (notify_inited || base == NULL || !notify_enabled())
		return;
	notify_inited = 1;

	status_ev = event_new(base, -1, EV_PERSIST, notify_status_cb, NULL);
	tv.tv_sec = NOTIFY_STATUS_MS / 1000;
	tv.tv_usec = (NOTIFY_STATUS_MS % 1000) * 1000;
	if (status_ev == NULL || event_add(status_ev, &tv) != 0)
		log_warnx("notify: cannot start the status timer");

	/* > 0 only if $WATCHDOG_USEC is set and $WATCHDOG_PID, if set, is us. */
	if ((r = sd_watchdog_enabled(0, &usec)) < 0)
		log_warnx("notify: bad watchdog settings: %s", strerror(-r));
	if (r <= 0 || usec == 0)
		return;
	usec /= 2;
	if (usec < 1000)
		usec = 1000;	/* a WatchdogSec below 2 ms: ping every ms, never spin */
	watchdog_ev = event_new(base, -1, EV_PERSIST, notify_watchdog_cb, NULL);
	tv.tv_sec = usec / 1000000;
	tv.tv_usec = usec % 1000000;
	if (watchdog_ev == NULL || event_add(watchdog_ev, &tv) != 0) {
		log_warnx("notify: cannot start the watchdog timer");
		return;
	}
	log_info("watchdog: pinging systemd every %llu ms", (unsigned long long)usec / 1000);
	notify_send("WATCHDOG=1");
}

/* Send state ("READY=1", "STOPPING=1") with the status text, kept as the last one sent. */
static void
notify_state(const char *state)
{
	char	msg[sizeof status_last + 32];

	notify_status_text(status_last, sizeof status_last);
	snprintf(msg, sizeof msg, "%s\nSTATUS=%s", state, status_last);
	notify_send(msg);
}

/*
 * The socket listens and every worker is up (or its queue failed), at start-up or
 * after a reload. The first one ends start-up: queues that failed are logged.
 */
void
notify_ready(void)
{
	char	names[512];
	int	n;

	/*
	 * The end of a reload that came before start-up finished (jobpoolctl reload while
	 * workers start): not ready yet; the first READY=1 still waits for the workers.
	 */
	if (notify_early_reload) {
		notify_early_reload = 0;
		return;
	}
	if (!notify_was_ready) {
		notify_was_ready = 1;
		if ((n = notify_failed_queues(names, sizeof names)) > 0)
			log_warnx("ready; %d queue%s failed: %s", n, n == 1 ? "" : "s",
			    names);
	}
	if (!notify_enabled())
		return;
	/* The timers need the event base; a master that did not call notify_init yet. */
	if (!notify_inited)
		notify_init(master_base);
	notify_state("READY=1");
}

/*
 * A reload starts. systemd 253+ (Type=notify-reload) wants MONOTONIC_USEC= with it, to
 * tell this reload from an earlier one; READY=1 (notify_ready) ends it.
 */
void
notify_reloading(void)
{
	char	msg[128];

	if (!notify_was_ready) {
		/* systemd still waits for the first READY=1: nothing to bracket. */
		notify_early_reload = 1;
		return;
	}
	if (!notify_enabled())
		return;
	snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading the configuration\n"
	    "MONOTONIC_USEC=%llu", (unsigned long long)now_us());
	notify_send(msg);
}

/* The shutdown starts: systemd's stop timeout runs from here. */
void
notify_stopping(void)
{
	if (!notify_enabled())
		return;
	notify_is_stopping = 1;
	notify_state("STOPPING=1");
}

/*
 * The drain made progress (a job finished, a worker exited): ask systemd for a few more
 * seconds, at most once a second. A drain that stops making progress stops asking, and
 * TimeoutStopSec= applies again.
 */
void
notify_progress(void)
{
	char		msg[64];
	uint64_t	now;

	if (!notify_enabled() || !notify_is_stopping)
		return;
	now = now_ms();
	if (extend_last_ms != 0 && now - extend_last_ms < NOTIFY_EXTEND_MS)
		return;
	extend_last_ms = now;
	snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu", NOTIFY_EXTEND_USEC);
	notify_send(msg);
}

/* lifecycle listener: a job that ends while the daemon stops is the drain's progress. */
void
notify_job_changed(const struct job_change *ch)
{
	if (master_stopping)
		notify_progress();
}

/* A one-line STATUS= for systemctl status; the counts replace it once they change. */
void
notify_status(const char *fmt, ...)
{
	char	buf[sizeof status_last], msg[sizeof status_last + 16];
	va_list	ap;

	if (!notify_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof msg, "STATUS=%s", buf);
	notify_send(msg);
}

/* Free notify's timers (at exit, before the event base goes). */
void
notify_free(void)
{
	if (status_ev != NULL)
		event_free(status_ev);
	if (watchdog_ev != NULL)
		event_free(watchdog_ev);
	status_ev = NULL;
	watchdog_ev = NULL;
	notify_inited = 0;
	notify_was_ready = 0;
	notify_is_stopping = 0;
	notify_early_reload = 0;
	extend_last_ms = 0;
	send_errno = 0;
	status_last[0] = '\0';
}
