/*
 * master.c: the master process: one libevent loop, its signals, start-up and the
 * graceful shutdown.
 *
 * Shutdown (SIGTERM or SIGINT), in order:
 *   1. refuse new jobs (a socket of our own still accepts clients, to tell them so;
 *      systemd's is let go); answer every job still waiting in a queue as
 *      cancelled; idle workers are told to exit by closing their job pipe;
 *   2. workers with jobs finish them, up to shutdown_timeout; each exits as it empties;
 *   3. then the running jobs are cancelled cooperatively (cleanup hooks run; a worker
 *      whose job does not stop within its queue's grace period is killed);
 *   4. then TERM to any worker left, and KILL after kill_timeout;
 *   5. once every worker is gone, wait (briefly) for clients to read their answers,
 *      then remove the socket file and exit 0.
 * A second SIGTERM or SIGINT skips to step 4.
 */

#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "events.h"
#include "idem.h"
#include "journal.h"
#include "log.h"
#include "priv.h"

#define MASTER_FLUSH_MS		2000	/* at exit: how long clients get to read */

struct event_base	*master_base;
int			 master_debug;		/* -d: keep debug level across reloads */
pid_t			 master_pid;
struct config		*master_config;
int			 master_stopping;

static struct event	*sig_ev[5];
static struct event	*stop_ev;	/* shutdown deadline, then kill deadline */
static struct event	*flush_ev;	/* the last wait for clients */
static int		 stop_phase;	/* 0 running, 1 draining, 2 cancelling, 3 TERM, 4 KILL */
static int		 exiting;
static uint64_t		 start_ms;

static void	master_stop_cb(evutil_socket_t, short, void *);

uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

uint64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

static void
master_arm(struct event *ev, uint32_t ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

/* Step 3: TERM the workers still running, and arm the KILL. */
static void
master_terminate_workers(void)
{
	if (stop_phase >= 3)
		return;
	stop_phase = 3;
	if (supervisor_alive()) {
		log_warnx("shutdown: stopping the workers still running jobs (TERM)");
		supervisor_signal_all(SIGTERM);
	}
	master_arm(stop_ev, master_config->kill_timeout_ms);
}

static void
master_stop_cb(evutil_socket_t fd, short events, void *arg)
{
	if (stop_phase == 1) {
		/*
		 * Past the deadline, running jobs are cancelled as a client would: the
		 * handlers are told, cleanup hooks run, and a handler that does not stop
		 * within its queue's grace period has its worker killed.
		 */
		log_warnx("shutdown: jobs still running after %u ms; cancelling them%s",
		    master_config->shutdown_timeout_ms, journal_on ? " (they are kept in "
		    "the journal and run again after the restart)" : "");
		stop_phase = 2;
		master_arm(stop_ev, dispatch_cancel_running() + 1500);
	} else if (stop_phase == 2) {
		master_terminate_workers();
	} else if (stop_phase == 3) {
		stop_phase = 4;
		if (supervisor_alive()) {
			log_warnx("shutdown: workers still alive after TERM; KILL");
			supervisor_signal_all(SIGKILL);
		}
	}
}

/* Step 1 of the shutdown. */
static void
master_shutdown(const char *why)
{
	int	i;

	if (master_stopping) {
		log_notice("%s again: stopping workers now", why);
		master_terminate_workers();
		return;
	}
	master_stopping = 1;
	stop_phase = 1;
	log_notice("%s: shutting down", why);
	events_publish_queue(EVENTS_DAEMON_STOPPING, -1, 0, 0, why);
	notify_stopping();
	server_stop_listener();
	/* With a journal they are not lost: they stay in it for the next start. */
	if (journal_on) {
		uint64_t n = 0;

		for (i = 0; i < nqueues; i++)
			n += queue_depth(queues[i]);
		if (n > 0)
			log_notice("shutdown: %llu waiting job%s kept in the journal and "
			    "run%s after the restart", (unsigned long long)n,
			    n == 1 ? " is" : "s are", n == 1 ? "s" : "");
	}
	dispatch_cancel_waiting(journal_on ? "daemon is shutting down; the job is kept in "
	    "the journal and runs after the restart" : "daemon is shutting down");
	for (i = 0; i < nqueues; i++) {
		if (server_nblocked(queues[i]) > 0)
			server_unblock(queues[i]);
	}
	supervisor_drain();
	master_arm(stop_ev, master_config->shutdown_timeout_ms);
	master_check_done();
}

static void
master_flush_cb(evutil_socket_t fd, short events, void *arg)
{
	if (!server_idle())
		log_warnx("shutdown: some clients did not read their answers");
	event_base_loopexit(master_base, NULL);
}

/* During shutdown: exit once every worker is gone and clients have their answers. */
void
master_check_done(void)
{
	if (!master_stopping || exiting)
		return;
	supervisor_drain();
	if (supervisor_alive())
		return;
	if (!server_idle()) {
		if (!evtimer_pending(flush_ev, NULL))
			master_arm(flush_ev, MASTER_FLUSH_MS);
		return;
	}
	exiting = 1;
	event_base_loopexit(master_base, NULL);
}

static char	*reload_error;
static int	 reloading;	/* master_reload() is applying a configuration */
static uint32_t	 master_gen;	/* worker generations, never reused */

/* Do two optional strings differ? */
static int
str_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != b);
	return (strcmp(a, b) != 0);
}

/* Does the change from old to new need the queue's workers restarted? */
static int
queue_needs_restart(const struct queue_config *o, const struct queue_config *n)
{
	return (strcmp(o->handler, n->handler) != 0 || str_differ(o->user, n->user) ||
	    str_differ(o->group, n->group) || o->rlimit_as != n->rlimit_as ||
	    o->rlimit_cpu != n->rlimit_cpu || o->rlimit_nofile != n->rlimit_nofile ||
	    o->max_worker_rss != n->max_worker_rss || o->grace_ms != n->grace_ms ||
	    o->concurrency != n->concurrency || o->batch_size != n->batch_size ||
	    o->http_max_response != n->http_max_response ||
	    o->http_max_redirects != n->http_max_redirects ||
	    o->http_timeout_ms != n->http_timeout_ms ||
	    o->http_connect_timeout_ms != n->http_connect_timeout_ms ||
	    o->http_max_host_connections != n->http_max_host_connections ||
	    o->http_output != n->http_output);
}

/* Does any setting of a queue differ? (Strings by value; they live in other configs.) */
static int
queue_config_differs(const struct queue_config *o, const struct queue_config *n)
{
	struct queue_config	a = *o, b = *n;

	if (strcmp(o->name, n->name) != 0 || strcmp(o->handler, n->handler) != 0 ||
	    str_differ(o->user, n->user) || str_differ(o->group, n->group))
		return (1);
	a.name = b.name = NULL;
	a.handler = b.handler = NULL;
	a.user = b.user = NULL;
	a.group = b.group = NULL;
	a.line = b.line = 0;
	return (memcmp(&a, &b, sizeof a) != 0);
}

/* What config.c found doubtful in a valid config, a line each ("file:line: warning: ..."). */
static void
master_config_warnings(const struct config *cf)
{
	static const char sep[] = ": warning: ";
	const size_t	 seplen = sizeof sep - 1;
	const char	*p;
	size_t		 n;

	const char	*w;
	size_t		 k;

	for (p = cf->warnings; p != NULL && *p != '\0'; p += n + (p[n] == '\n')) {
		n = strcspn(p, "\n");
		/* The log line says "warning:" already: "file:line: message". */
		w = memmem(p, n, sep, seplen);
		k = w != NULL ? (size_t)(w - p) : n;
		log_warnx("%.*s%s%.*s", (int)k, p, w != NULL ? ": " : "",
		    w != NULL ? (int)(n - k - seplen) : 0, w != NULL ? w + seplen : "");
	}
}

/* Settings a reload cannot change in a running daemon: say so, keep the old value. */
static void
master_reload_warn(const struct config *o, const struct config *n)
{
	if (strcmp(o->socket_path, n->socket_path) != 0 ||
	    o->socket_mode != n->socket_mode ||
	    str_differ(o->socket_owner, n->socket_owner) ||
	    str_differ(o->socket_group, n->socket_group))
		log_warnx("reload: socket settings changed; they take effect at the "
		    "next restart (still listening on %s)", o->socket_path);
	if (str_differ(o->user, n->user) || str_differ(o->group, n->group))
		log_warnx("reload: the daemon's user and group take effect at the "
		    "next restart");
	if (o->events_ring != n->events_ring)
		log_warnx("reload: events_ring changed; it takes effect at the next "
		    "restart (still %u events)", o->events_ring);
	if (str_differ(o->journal_dir, n->journal_dir))
		log_warnx("reload: journal_dir changed; it takes effect at the next "
		    "restart (%s)", o->journal_dir != NULL ? o->journal_dir :
		    "still without a journal");
}

/* Append a new queue for qc to queues[]; NULL if out of memory. */
static struct queue *
queues_add(const struct queue_config *qc)
{
	struct queue	**nq, *q;

	if ((q = queue_create(qc)) == NULL)
		return (NULL);
	if ((nq = reallocarray(queues, nqueues + 1, sizeof *nq)) == NULL) {
		queue_free(q);
		return (NULL);
	}
	queues = nq;
	q->idx = (uint16_t)nqueues;
	queues[nqueues++] = q;
	return (q);
}

/* At start: the queues of cf, in its order, without workers. */
int
queues_create(const struct config *cf, char **cause)
{
	int	k;

	*cause = NULL;
	for (k = 0; k < cf->nqueues; k++) {
		if (queues_add(&cf->queues[k]) == NULL) {
			if (asprintf(cause, "queue %s: out of memory",
			    cf->queues[k].name) == -1)
				*cause = NULL;
			queues_free();
			return (-1);
		}
	}
	chain_sync();
	return (0);
}

/*
 * At exit, once every worker is gone and every job answered: the queues with the jobs
 * still in them, then the kept and dead jobs, which point at them, and dispatch's list
 * of kicked queues.
 */
void
queues_free(void)
{
	int	k;

	for (k = 0; k < nqueues; k++)
		queue_free(queues[k]);
	free(queues);
	queues = NULL;
	nqueues = 0;
	job_table_free();
	dispatch_free();
}

/* Append a queue a reload added. */
static int
master_add_queue(const struct queue_config *qc)
{
	struct queue	*q;

	if (nqueues >= UINT16_MAX) {
		log_warnx("reload: queue %s not added: %d queues have existed since the "
		    "start; restart jobpoold", qc->name, nqueues);
		return (-1);
	}
	if ((q = queues_add(qc)) == NULL)
		return (-1);
	if (supervisor_resize(q) != 0)
		log_warnx("queue %s: cannot start all its workers", q->name);
	log_info("reload: queue %s added: handler %s, %d worker%s", q->name,
	    q->cf.handler, q->cf.workers, q->cf.workers == 1 ? "" : "s");
	return (0);
}

/* What master_reload_error() says: a copy of why (NULL: no error). */
static void
reload_error_set(const char *why)
{
	free(reload_error);
	reload_error = why != NULL ? strdup(why) : NULL;
}

/* What a reload did, for its last log line. */
struct reload_tally {
	int	changed;
	int	added;
	int	removed;
	int	restarted;
};

/*
 * Load the file in force again. On any error, NULL: every error is logged, and the
 * first is what master_reload_error() says.
 */
static struct config *
master_reload_load(const struct config *old)
{
	struct config	*ncf;
	char		*cause = NULL, *line, *save = NULL;
	const char	*path;

	path = strcmp(old->path, CONFIG_EMBEDDED_NAME) == 0 ? NULL : old->path;
	/* Queue users the master can no longer switch to are errors, with their line. */
	if ((ncf = config_load_flags(path, priv_can_switch() ? 0 :
	    CONFIG_LOAD_NO_SWITCH, &cause)) != NULL)
		return (ncf);
	reload_error_set(NULL);
	for (line = strtok_r(cause, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		log_errx("%s", line);
		if (reload_error == NULL)
			reload_error = strdup(line);
	}
	log_errx("reload failed: still running on the previous configuration");
	free(cause);
	return (NULL);
}

/* The running socket and journal stay: keep their settings in the new config. */
static void
master_reload_keep(const struct config *old, struct config *ncf)
{
	free(ncf->socket_path);
	ncf->socket_path = strdup(old->socket_path);
	ncf->socket_mode = old->socket_mode;
	free(ncf->journal_dir);
	ncf->journal_dir = old->journal_dir != NULL ? strdup(old->journal_dir) : NULL;
}

/* A reload restarts q's workers: a new generation, rolled in one worker at a time. */
static void
master_queue_restart(struct queue *q, int was_failed, int payload_changed)
{
	q->gen = ++master_gen;
	/* Its workers get a new chance. */
	free(q->failed_reason);
	q->failed_reason = NULL;
	if (was_failed)
		log_info("reload: queue %s: starting its workers again (handler %s)",
		    q->name, q->cf.handler);
	else if (!payload_changed)
		log_info("reload: queue %s: restarting its workers one at a time for "
		    "their new settings (handler %s)", q->name, q->cf.handler);
	(void)supervisor_resize(q);
	supervisor_roll(q);
}

/* Apply a queue's new settings, or add it if it is new. */
static void
master_reload_queue(const struct queue_config *nqc, int payload_changed,
    struct reload_tally *t)
{
	struct queue	*q;
	int		 was_failed, restart, resized;

	if ((q = queue_find(nqc->name)) == NULL) {
		if (master_add_queue(nqc) == 0)
			t->added++;
		return;
	}
	/* A queue whose handler could not start gets a new chance at every reload. */
	was_failed = q->failed_reason != NULL;
	restart = queue_needs_restart(&q->cf, nqc) || was_failed || payload_changed;
	resized = nqc->workers != q->cf.workers;
	if (queue_config_differs(&q->cf, nqc))
		t->changed++;
	/* What worked is kept until a worker of the new kind is up. */
	if ((restart && !was_failed && queue_keep_previous(q) != 0) ||
	    queue_reconfigure(q, nqc) != 0) {
		log_warnx("reload: queue %s: out of memory; unchanged", q->name);
		return;
	}
	if (restart) {
		t->restarted++;
		master_queue_restart(q, was_failed, payload_changed);
	} else if (resized)
		(void)supervisor_resize(q);
	dispatch_kick(q);	/* after the reload: it may let producers go on */
}

/* Queues the new config does not have: no new jobs; they go once they hold none. */
static void
master_reload_removed(const struct config *ncf, struct reload_tally *t)
{
	struct queue	*q;
	int		 i;

	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (q->removed || config_find_queue(ncf, q->name) != NULL)
			continue;
		q->removed = 1;
		t->removed++;
		log_info("reload: queue %s removed: it takes no new jobs and stops once "
		    "the jobs it holds are done (%u waiting, %u running)", q->name,
		    queue_depth(q), q->running);
		dispatch_kick(q);
	}
}

/* Put ncf in force, for every module that keeps a part of it. */
static void
master_reload_commit(struct config *ncf, const struct reload_tally *t)
{
	struct config	*old = master_config;

	master_config = ncf;
	config_free(old);
	priv_acl_set(ncf);
	server_limits(ncf);
	if (!master_debug)
		log_set_level(ncf->log_level);
	job_keep_trim(ncf->keep_results, ncf->keep_results_bytes);
	journal_reconfigure(ncf);
	metrics_reconfigure(ncf);
	if (t->added > 0)
		journal_adopt();
	reload_error_set(NULL);
	events_publish_queue(EVENTS_DAEMON_RELOADED, -1, 0, 0, NULL);
	log_notice("reloaded %s: %d queue%s changed (%d restarting), %d added, %d "
	    "removed", ncf->path, t->changed, t->changed == 1 ? "" : "s", t->restarted,
	    t->added, t->removed);
}

/*
 * Last, with the new configuration wholly in force: producers blocked on a queue that
 * now has room, or that was removed (their SUBMITs get "no queue"), go on. Their next
 * requests run now, and one of them may be another RELOAD.
 */
static void
master_reload_unblock(void)
{
	struct queue	*q;
	int		 i;

	for (i = 0; i < nqueues; i++) {
		q = queues[i];
		if (server_nblocked(q) > 0 && (q->removed || queue_has_room(q, 0)))
			server_unblock(q);
	}
}

/*
 * Reload the configuration file. The whole new file is parsed and validated first; on
 * any error the daemon keeps running on the old configuration and logs every error.
 * On success it is applied without losing or repeating a job: limits change in place,
 * pools grow or shrink (a worker leaves only once idle), a changed handler restarts the
 * queue's workers one at a time, new queues start, and removed queues take no new jobs
 * but finish the ones they hold.
 */
int
master_reload(const char *why)
{
	struct config		*ncf, *old = master_config;
	struct reload_tally	 t = { 0, 0, 0, 0 };
	int			 k, payload_changed;

	if (master_stopping) {
		reload_error_set("the daemon is shutting down");
		return (-1);
	}
	if (reloading) {
		/*
		 * A reload only kicks dispatch (dispatch_kick() runs it later in the pass)
		 * and lets producers go on once it is done, so this is reached only when
		 * dispatch_kick() could not make its event (out of memory) and dispatched
		 * in place, letting a producer's RELOAD run inside this one.
		 */
		reload_error_set("another reload is under way");
		return (-1);
	}
	notify_reloading();
	reloading = 1;
	log_notice("%s: reloading %s", why, old->path);
	if ((ncf = master_reload_load(old)) == NULL) {
		reloading = 0;
		notify_ready();
		return (-1);
	}
	master_reload_warn(old, ncf);
	master_config_warnings(ncf);
	/* Workers check frames and results against the max_payload they started with. */
	payload_changed = old->max_payload != ncf->max_payload;
	if (payload_changed)
		log_info("reload: max_payload %u -> %u: restarting every queue's workers one "
		    "at a time", old->max_payload, ncf->max_payload);
	master_reload_keep(old, ncf);

	for (k = 0; k < ncf->nqueues; k++)
		master_reload_queue(&ncf->queues[k], payload_changed, &t);
	master_reload_removed(ncf, &t);
	master_reload_commit(ncf, &t);
	chain_sync();		/* 'then' applies to stages that end from now on */
	source_redis_sync();
	supervisor_check_ready();	/* a reload before start-up finished may settle it */
	notify_ready();
	reloading = 0;
	master_reload_unblock();
	return (0);
}

const char *
master_reload_error(void)
{
	return (reload_error != NULL ? reload_error : "");
}

/* Every signal the master handles comes here, as a libevent event. */
static void
master_signal_cb(evutil_socket_t sig, short events, void *arg)
{
	switch (sig) {
	case SIGTERM:
		master_shutdown("SIGTERM");
		break;
	case SIGINT:
		master_shutdown("SIGINT");
		break;
	case SIGCHLD:
		supervisor_reap();
		break;
	case SIGHUP:
		(void)master_reload("SIGHUP");
		break;
	case SIGUSR1:
		log_info("SIGUSR1: %u connection%s, %llu job%s known", server_nconns(),
		    server_nconns() == 1 ? "" : "s", (unsigned long long)job_count(),
		    job_count() == 1 ? "" : "s");
		break;
	}
}

/* Run the daemon on cf (which it then owns) until told to stop. Returns the exit status. */
int
master_main(struct config *cf)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1 };
	struct queue		*q;
	char			*cause = NULL;
	unsigned long long	 nofile_was, nofile_now;
	size_t			 i;
	int			 k, rc = 0;

	master_config = cf;
	master_pid = getpid();
	start_ms = now_ms();
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit, a journal write fails with EFBIG (and says so). */
	signal(SIGXFSZ, SIG_IGN);
	if ((master_base = event_base_new()) == NULL)
		fatalx("cannot create the event base");
	stats_init();
	notify_init(master_base);
	/* Before queues and the journal's recovery, which publish. */
	if (events_init(cf->events_ring) != 0)
		fatalx("out of memory for events_ring (%u events)", cf->events_ring);
	log_info("jobpoold %s starting: config %s, libevent %s (%s backend)",
	    PACKAGE_VERSION, cf->path, event_get_version(),
	    event_base_get_method(master_base));
	master_config_warnings(cf);

	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sig_ev[i] = evsignal_new(master_base, sigs[i], master_signal_cb, NULL);
		if (sig_ev[i] == NULL || evsignal_add(sig_ev[i], NULL) != 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	stop_ev = evtimer_new(master_base, master_stop_cb, NULL);
	flush_ev = evtimer_new(master_base, master_flush_cb, NULL);
	if (stop_ev == NULL || flush_ev == NULL)
		fatalx("out of memory");

	if (queues_create(cf, &cause) != 0)
		fatalx("%s", cause != NULL ? cause : "out of memory");

	/* Before listening: server_listen() checks max_connections against it. */
	if (priv_nofile_raise(&nofile_was, &nofile_now) != 0)
		log_warnx("cannot raise the descriptor limit (RLIMIT_NOFILE) from %llu: %s",
		    nofile_was, strerror(errno));
	else if (nofile_was != nofile_now)
		log_info("descriptor limit (RLIMIT_NOFILE) raised from %llu to %llu "
		    "(workers keep %llu)", nofile_was, nofile_now, nofile_was);
	if (server_listen(cf, &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "cannot listen");
		free(cause);
		rc = EX_OSERR;
		goto out;
	}
	priv_acl_set(cf);
	/* Before the drop, like the socket: a port below 1024 is the operator's choice. */
	if (metrics_start(cf, &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "metrics: out of memory");
		free(cause);
		rc = EX_OSERR;
		goto out;
	}
	if (journal_prepare(cf, &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "journal: out of memory");
		free(cause);
		rc = EX_CANTCREAT;
		goto out;
	}
	if (priv_drop_master(cf, server_made_dir(), &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "cannot drop privileges");
		free(cause);
		rc = EX_OSERR;
		goto out;
	}
	/* Jobs recovered from the journal wait in their queues for the workers. */
	if (journal_open(cf, &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "journal: out of memory");
		free(cause);
		rc = EX_IOERR;
		goto out;
	}
	for (k = 0; k < nqueues; k++) {
		q = queues[k];
		if (supervisor_start(q) != 0)
			fatalx("queue %s: cannot start its workers", q->name);
		log_info("queue %s: handler %s, %d worker%s, max %u job%s / %llu bytes, "
		    "priorities %d..%d", q->name, q->cf.handler, q->nworkers,
		    q->nworkers == 1 ? "" : "s", q->cf.max_jobs,
		    q->cf.max_jobs == 1 ? "" : "s", (unsigned long long)q->cf.max_bytes,
		    q->cf.prio_min, q->cf.prio_max);
	}
	source_redis_sync();

	event_base_dispatch(master_base);
	/* Freeing the signal events restores default actions: a late TERM must not kill. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	log_notice("stopped after %llu s", (unsigned long long)(now_ms() - start_ms) / 1000);

out:
	/* Every worker is gone and every job answered: free what is left. */
	journal_close();
	metrics_stop();
	server_close_listener();
	server_close_all();
	source_redis_free();
	events_free();
	idem_free();
	queues_free();
	stats_free();
	notify_free();
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		event_free(sig_ev[i]);
	event_free(stop_ev);
	event_free(flush_ev);
	event_base_free(master_base);
	master_base = NULL;
	priv_acl_free();
	config_free(master_config);
	master_config = NULL;
	reload_error_set(NULL);
	return (rc);
}
