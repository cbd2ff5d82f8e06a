/*
 * master.c: the master process: one libevent loop, its signals, start-up and the
 * graceful shutdown.
 *
 * Shutdown (SIGTERM or SIGINT), in order:
 *   1. stop accepting; refuse new jobs; answer every job still waiting in a queue as
 *      cancelled; idle workers are told to exit by closing their job pipe;
 *   2. workers with jobs finish them, up to shutdown_timeout; each exits as it empties;
 *   3. then TERM to the workers left, and KILL after kill_timeout; the jobs they held
 *      are answered as failed;
 *   4. once every worker is gone, wait (briefly) for clients to read their answers,
 *      then exit 0.
 * A second SIGTERM or SIGINT skips to step 3.
 */

#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "log.h"

#define MASTER_FLUSH_MS		2000	/* at exit: how long clients get to read */

struct event_base	*master_base;
struct config		*master_config;
int			 master_stopping;

static struct event	*sig_ev[5];
static struct event	*stop_ev;	/* shutdown deadline, then kill deadline */
static struct event	*flush_ev;	/* the last wait for clients */
static int		 stop_phase;	/* 0 running, 1 draining, 2 TERM sent, 3 KILL sent */
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
	if (stop_phase >= 2)
		return;
	stop_phase = 2;
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
		log_warnx("shutdown: jobs still running after %u ms",
		    master_config->shutdown_timeout_ms);
		master_terminate_workers();
	} else if (stop_phase == 2) {
		stop_phase = 3;
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
	notify_stopping();
	server_close_listener();
	dispatch_cancel_waiting("daemon is shutting down");
	for (i = 0; i < nqueues; i++) {
		if (queues[i]->nblocked > 0)
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

/* Reload the configuration (issue 4 completes this). */
int
master_reload(const char *why)
{
	free(reload_error);
	reload_error = strdup("configuration reload is not supported yet; restart "
	    "jobpoold to apply a new configuration");
	log_notice("%s: %s", why, reload_error);
	return (-1);
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
		log_info("SIGUSR1: %u connections, %llu jobs known",
		    server_nconns(), (unsigned long long)job_count());
		break;
	}
}

/* Run the daemon on cf until it is told to stop. Returns the exit status. */
int
master_main(struct config *cf)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1 };
	struct queue		*q;
	char			*cause = NULL;
	size_t			 i;
	int			 k;

	master_config = cf;
	start_ms = now_ms();
	stats_init();
	signal(SIGPIPE, SIG_IGN);
	if ((master_base = event_base_new()) == NULL)
		fatalx("cannot create the event base");
	log_info("jobpoold %s starting: config %s, libevent %s (%s backend)",
	    PACKAGE_VERSION, cf->path, event_get_version(),
	    event_base_get_method(master_base));

	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sig_ev[i] = evsignal_new(master_base, sigs[i], master_signal_cb, NULL);
		if (sig_ev[i] == NULL || evsignal_add(sig_ev[i], NULL) != 0)
			fatalx("cannot handle signal %d", sigs[i]);
	}
	stop_ev = evtimer_new(master_base, master_stop_cb, NULL);
	flush_ev = evtimer_new(master_base, master_flush_cb, NULL);
	if (stop_ev == NULL || flush_ev == NULL)
		fatalx("out of memory");

	if ((queues = calloc(cf->nqueues, sizeof *queues)) == NULL)
		fatalx("out of memory");
	for (k = 0; k < cf->nqueues; k++) {
		if ((q = queue_create(&cf->queues[k])) == NULL)
			fatalx("queue %s: out of memory", cf->queues[k].name);
		queues[nqueues++] = q;
	}

	if (server_listen(cf, &cause) != 0) {
		log_errx("%s", cause != NULL ? cause : "cannot listen");
		free(cause);
		return (71);	/* EX_OSERR */
	}
	for (k = 0; k < nqueues; k++) {
		q = queues[k];
		if (supervisor_start(q) != 0)
			fatalx("queue %s: cannot start its workers", q->name);
		log_info("queue %s: handler %s, %d workers, max %u jobs / %llu bytes, "
		    "priorities %d..%d", q->name, q->cf.handler, q->nworkers,
		    q->cf.max_jobs, (unsigned long long)q->cf.max_bytes,
		    q->cf.prio_min, q->cf.prio_max);
	}

	event_base_dispatch(master_base);

	/* Every worker is gone and every job answered: free what is left. */
	server_close_listener();
	server_close_all();
	for (k = 0; k < nqueues; k++)
		queue_free(queues[k]);
	free(queues);
	queues = NULL;
	nqueues = 0;
	job_table_free();
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		event_free(sig_ev[i]);
	event_free(stop_ev);
	event_free(flush_ev);
	event_base_free(master_base);
	master_base = NULL;
	log_notice("stopped after %llu s", (unsigned long long)(now_ms() - start_ms) / 1000);
	return (0);
}
