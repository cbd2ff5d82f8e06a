/*
 * checkqueue.h: the fixture of the suites that run one queue of the daemon under a
 * real event base (check_dispatch, check_supervisor): the daemon's configuration and
 * the queue's, set to defaults that each suite's setup then adjusts, and the queue made
 * from them as the daemon's only one. Include after jobpoold.h.
 */

#ifndef CHECKQUEUE_H
#define CHECKQUEUE_H

#include <string.h>
#include <syslog.h>
#include <unistd.h>

static struct config		 tcf;
static struct queue_config	 tqc;
static struct queue		*tq;
static struct queue		*qarr[1];

/* tcf and tqc to the defaults, tcf in force (master_config); suite names the config. */
static inline void
checkqueue_config(const char *suite)
{
	memset(&tcf, 0, sizeof tcf);
	tcf.path = (char *)suite;
	tcf.max_payload = 1 << 20;
	tcf.max_output = 1 << 24;
	tcf.keep_results = 1000;
	tcf.keep_results_bytes = 1 << 24;
	tcf.dead_max = 1000;
	tcf.log_level = LOG_ERR;
	master_config = &tcf;
	master_stopping = 0;
	/* A worker checks that its parent is the master. */
	master_pid = getpid();

	memset(&tqc, 0, sizeof tqc);
	tqc.name = (char *)"q";
	tqc.handler = (char *)"echo";
	tqc.workers = 1;
	tqc.max_jobs = 1000;
	tqc.max_bytes = 1 << 20;
	tqc.batch = 1;
	tqc.retries = 1;
	tqc.backoff_base_ms = 1000;
	tqc.backoff_max_ms = 60000;
	tqc.backoff_jitter = 0;
	tqc.grace_ms = 5000;
	tqc.poison_after = 3;
	tqc.burst = 1;
}

/* Make tq from tqc (tests adjust tqc first): the daemon's only queue. */
static inline void
checkqueue_make(void)
{
	ck_assert_ptr_nonnull(tq = queue_create(&tqc));
	tq->idx = 0;
	qarr[0] = tq;
	queues = qarr;
	nqueues = 1;
}

/* Free tq, the job table and dispatch's state: the daemon has no queue again. */
static inline void
checkqueue_free(void)
{
	if (tq != NULL)
		queue_free(tq);
	tq = NULL;
	queues = NULL;
	nqueues = 0;
	job_table_free();
	dispatch_free();
}

#endif
