/*
 * checkhandmade.h: queues and workers built by hand for the suites that read them
 * (check_stats, check_metrics), as tests/check_queue.c builds queues: no event loop,
 * no processes; a worker's pid may be the test's own or one that does not exist.
 * Included by one file of each suite.
 */

#ifndef CHECKHANDMADE_H
#define CHECKHANDMADE_H

#define MAX_QUEUES	4

static struct config	 test_cf;
static struct queue	*qarr[MAX_QUEUES];

/* Add a queue named name with handler; it gets the next index. */
static struct queue *
add_queue(const char *name, const char *handler)
{
	struct queue_config	qc;
	struct queue		*q;

	ck_assert_int_lt(nqueues, MAX_QUEUES);
	memset(&qc, 0, sizeof qc);
	qc.name = (char *)name;
	qc.handler = (char *)handler;
	qc.workers = 0;
	qc.max_jobs = 100;
	qc.max_bytes = 1 << 20;
	qc.prio_min = 0;
	qc.prio_max = 0;
	qc.batch = 1;
	q = queue_create(&qc);
	ck_assert_ptr_nonnull(q);
	q->idx = (uint16_t)nqueues;
	qarr[nqueues++] = q;
	queues = qarr;
	test_cf.keep_results = 100;
	test_cf.keep_results_bytes = 1 << 20;
	master_config = &test_cf;
	return (q);
}

/* Give q n worker slots, all empty. */
static void
add_slots(struct queue *q, int n)
{
	q->workers = calloc((size_t)n, sizeof *q->workers);
	ck_assert_ptr_nonnull(q->workers);
	q->nworkers = n;
}

/* Put a worker in slot k of q. */
static struct worker *
add_worker(struct queue *q, int k, pid_t pid, enum worker_life st)
{
	struct worker	*w = calloc(1, sizeof *w);

	ck_assert_ptr_nonnull(w);
	ck_assert_int_lt(k, q->nworkers);
	w->queue = q;
	w->slot = k;
	w->pid = pid;
	w->life = st;
	w->slots = 1;
	TAILQ_INIT(&w->inflight);
	q->workers[k] = w;
	return (w);
}

/* Free every queue and its hand-made workers, and the job table. */
static void
free_all(void)
{
	int	i, k;

	for (i = 0; i < nqueues; i++) {
		for (k = 0; k < qarr[i]->nworkers; k++)
			free(qarr[i]->workers[k]);
		queue_free(qarr[i]);
		qarr[i] = NULL;
	}
	nqueues = 0;
	job_table_free();
}

#endif /* CHECKHANDMADE_H */
