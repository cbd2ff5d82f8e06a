/*
 * check_chain.c: chained queues (chain.c): the lifecycle listener that makes a stage's
 * success the next stage's job, the waiter that follows the chain to its last stage,
 * a failing or cancelled stage ending it, STATUS's words, and the backpressure between
 * a stage and its next queue. Three queues a -> b -> c and no workers: a test plays
 * the workers' part by taking a job from its queue and ending it.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "events.h"

#include "checkqueue.h"
#include "checkconn.h"

#define NQ	3

static struct queue_config	 qcs[NQ];
static struct queue		*qs[NQ];
static struct conn		*tc;


/* The queues a -> b -> c, c with a narrower priority range and a timeout of its own. */
static void
setup(void)
{
	static const char *const names[NQ] = { "a", "b", "c" };
	static const char *const thens[NQ] = { "b", "c", "" };
	int	i;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkqueue_config("check_chain");
	tqc.prio_min = -5;
	tqc.prio_max = 5;
	for (i = 0; i < NQ; i++) {
		qcs[i] = tqc;
		qcs[i].name = (char *)names[i];
		snprintf(qcs[i].then, sizeof qcs[i].then, "%s", thens[i]);
	}
	qcs[1].timeout_ms = 1234;
	qcs[2].prio_min = 0;
	qcs[2].prio_max = 1;
	qcs[2].timeout_ms = 4321;
	ck_assert_ptr_nonnull(queues = calloc(NQ, sizeof *queues));
	for (i = 0; i < NQ; i++) {
		ck_assert_ptr_nonnull(qs[i] = queue_create(&qcs[i]));
		qs[i]->idx = (uint16_t)i;
		queues[i] = qs[i];
	}
	nqueues = NQ;
	chain_sync();
	ck_assert_ptr_eq(qs[0]->ch.next, qs[1]);
	ck_assert_ptr_eq(qs[1]->ch.next, qs[2]);
	ck_assert_ptr_null(qs[2]->ch.next);
	ck_assert_int_eq(events_init(1024), 0);
	tc = conn_make();
	tc_seen = 0;
}

static void
teardown(void)
{
	int	i;

	for (i = 0; i < NQ; i++)
		queue_free(qs[i]);
	free(queues);
	queues = NULL;
	nqueues = 0;
	job_table_free();
	dispatch_free();
	events_free();
	bufferevent_free(tc->bev);
	tc->closed = 1;
	conn_unref(tc);
	event_base_free(master_base);
	master_base = NULL;
	master_config = NULL;
}

/* Submit data to queue i, owner 7, prio 3; tc waits for it if wait. */
static struct job *
submit(int i, const char *data, int wait)
{
	struct job	*j;

	ck_assert_ptr_nonnull(j = job_new(qs[i], data, strlen(data)));
	j->owner = 7;
	j->prio = 3;
	j->timeout_ms = 99;
	(void)dispatch_submit(qs[i], j, wait ? tc : NULL);
	return (j);
}

/* Play a worker of queue i: take its next job and start it. */
static struct job *
take(int i)
{
	struct job	*j;

	ck_assert_ptr_nonnull(j = queue_pop(qs[i]));
	j->attempts++;
	job_change(j, JOB_RUNNING, NULL);
	return (j);
}

/* j's payload as a string, in a static buffer. */
static const char *
payload(const struct job *j)
{
	static char	buf[256];

	ck_assert_uint_lt(j->len, sizeof buf);
	memcpy(buf, j->data, j->len);
	buf[j->len] = '\0';
	return (buf);
}

/* STATUS's chain words for j. */
static char *
status_of(const struct job *j)
{
	struct evbuffer	*b = evbuffer_new();
	char		*s;
	size_t		 n;

	ck_assert_ptr_nonnull(b);
	chain_status(b, j);
	n = evbuffer_get_length(b);
	ck_assert_ptr_nonnull(s = malloc(n + 1));
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return (s);
}

#define ck_status(j, want) do {						\
	char *got_ = status_of(j);					\
	ck_assert_str_eq(got_, (want));					\
	free(got_);							\
} while (0)

/* The last event in the ring. */
static const struct events_rec *
last_event(void)
{
	const struct events_rec	*r = events_get(events_last_seq());

	ck_assert_ptr_nonnull(r);
	return (r);
}

/* A success goes on through every stage; the waiter hears the last, by its own id. */
START_TEST(test_three_stages)
{
	struct job	*j1, *j2, *j3;
	char		 want[128];
	uint64_t	 id1, id2, seq;
	int		 found = 0;

	j1 = submit(0, "in", 1);
	id1 = j1->id;
	ck_status(j1, " then=b");
	j1 = take(0);
	job_finish_text(j1, JOB_DONE, "one");
	ck_conn_text(tc, "");		/* the waiter waits for the next stage */
	ck_assert_uint_eq(queue_depth(qs[1]), 1);
	j2 = take(1);
	id2 = j2->id;
	ck_assert_str_eq(payload(j2), "one");
	/* The submitter's owner and priority; the next queue's timeout. */
	ck_assert_uint_eq(j2->owner, 7);
	ck_assert_int_eq(j2->prio, 3);
	ck_assert_uint_eq(j2->timeout_ms, 1234);
	ck_assert_ptr_eq(chain_follow(job_find(id1)), j2);
	ck_status(job_find(id1), " chain=running stage=1 stages=1@a:done,2@b:running");
	ck_status(j2, " chain=running stage=2 stages=1@a:done,2@b:running");
	/* Its job.queued names the stage it follows, before that stage's success. */
	for (seq = events_oldest_seq(); seq <= events_last_seq(); seq++) {
		const struct events_rec *r = events_get(seq);

		if (r->type == EVENTS_JOB_QUEUED && r->job == id2) {
			ck_assert_uint_eq(r->aux, id1);
			found = 1;
		}
	}
	ck_assert_int_eq(found, 1);
	ck_assert_int_eq(last_event()->type, EVENTS_JOB_SUCCEEDED);
	ck_assert_uint_eq(last_event()->job, id1);

	job_finish_text(j2, JOB_DONE, "two");
	j3 = take(2);
	ck_assert_str_eq(payload(j3), "two");
	ck_assert_int_eq(j3->prio, 1);		/* clamped into c's range */
	ck_assert_uint_eq(j3->timeout_ms, 4321);
	ck_conn_text(tc, "");
	job_finish_text(j3, JOB_DONE, "three");
	snprintf(want, sizeof want, "RESULT %llu ok 5\nthree\n", (unsigned long long)id1);
	ck_conn_text(tc, want);
	ck_status(job_find(id1), " chain=done stage=1 stages=1@a:done,2@b:done,3@c:done");
	ck_assert_uint_eq(queue_depth(qs[0]) + queue_depth(qs[1]) + queue_depth(qs[2]), 0);
}
END_TEST

/* Every stage keeps the first job's key, so the per-key limits hold all along. */
START_TEST(test_key_kept)
{
	struct job	*j;
	const char	*k;
	size_t		 n;

	ck_assert_ptr_nonnull(j = job_new_key(qs[0], "in", 2, "host.example", 12));
	(void)dispatch_submit(qs[0], j, NULL);
	j = take(0);
	job_finish_text(j, JOB_DONE, "one");
	j = take(1);
	ck_assert_ptr_nonnull(k = job_key(j, &n));
	ck_assert_int_eq(n == 12 && memcmp(k, "host.example", 12) == 0, 1);
	job_finish_text(j, JOB_DONE, "two");
	j = take(2);
	ck_assert_ptr_nonnull(k = job_key(j, &n));
	ck_assert_int_eq(n == 12 && memcmp(k, "host.example", 12) == 0, 1);
	job_finish_text(j, JOB_DONE, "three");
}
END_TEST

/* A stage that fails ends the chain: the waiter hears its error, the stage named. */
START_TEST(test_failed_stage)
{
	struct job	*j;
	char		 want[256];
	const char	*err, *why;
	uint64_t	 id1, id2;

	j = submit(0, "in", 1);
	id1 = j->id;
	job_finish_text(take(0), JOB_DONE, "one");
	j = take(1);
	id2 = j->id;
	job_finish_text(j, JOB_DEAD, "exit status 1: bad input");
	err = "stage 2 (queue b, job 2): exit status 1: bad input";
	snprintf(want, sizeof want, "RESULT %llu failed %zu\n%s\n", (unsigned long long)id1,
	    strlen(err), err);
	ck_conn_text(tc, want);
	ck_assert_uint_eq(id2, 2);
	ck_assert_uint_eq(queue_depth(qs[2]), 0);
	ck_status(job_find(id1), " chain=failed stage=1 stages=1@a:done,2@b:dead");
	/* The stage keeps its own error. */
	ck_assert_uint_eq(job_rlen(job_find(id2)), strlen("exit status 1: bad input"));

	/* A RETRY of the dead stage that succeeds takes the chain on from there. */
	ck_assert_int_eq(dispatch_retry(job_find(id2), &why), 0);
	j = take(1);
	ck_assert_uint_eq(j->id, id2);
	job_finish_text(j, JOB_DONE, "two");
	ck_assert_uint_eq(queue_depth(qs[2]), 1);
	ck_status(job_find(id1), " chain=running stage=1 stages=1@a:done,2@b:done,3@c:queued");
	ck_assert_ptr_eq(chain_follow(job_find(id1)), job_find(3));
	job_finish_text(take(2), JOB_DONE, "three");
	ck_status(job_find(id1), " chain=done stage=1 stages=1@a:done,2@b:done,3@c:done");
}
END_TEST

/* Cancelling a chain cancels its stage now: waiting, or running whose result crosses. */
START_TEST(test_cancel)
{
	struct job	*j;
	const char	*why, *err;
	char		 want[256];
	uint64_t	 id1;

	/* Waiting in b: removed and answered now. */
	j = submit(0, "in", 1);
	id1 = j->id;
	job_finish_text(take(0), JOB_DONE, "one");
	j = chain_follow(job_find(id1));
	ck_assert_ptr_eq(job_queue(j), qs[1]);
	ck_assert_int_eq(dispatch_cancel(j, &why), 0);
	err = "stage 2 (queue b, job 2): cancelled";
	snprintf(want, sizeof want, "RESULT %llu cancelled %zu\n%s\n",
	    (unsigned long long)id1, strlen(err), err);
	ck_conn_text(tc, want);
	ck_status(job_find(id1), " chain=cancelled stage=1 stages=1@a:done,2@b:cancelled");

	/* Running in b, and its success crosses the cancel: nothing follows it. */
	j = submit(0, "in", 1);
	id1 = j->id;
	job_finish_text(take(0), JOB_DONE, "one");
	j = take(1);
	chain_cancel(j);
	job_finish_text(j, JOB_DONE, "two");
	ck_assert_uint_eq(queue_depth(qs[2]), 0);
	err = "cancelled: the chain stopped after stage 2 (queue b, job 4), whose result "
	    "crossed the cancel";
	snprintf(want, sizeof want, "RESULT %llu cancelled %zu\n%s\n",
	    (unsigned long long)id1, strlen(err), err);
	ck_conn_text(tc, want);

	/* A first stage cancelled while it runs, with a 'then': the same. */
	j = submit(0, "in", 1);
	id1 = j->id;
	j = take(0);
	chain_cancel(j);
	job_finish_text(j, JOB_DONE, "one");
	ck_assert_uint_eq(queue_depth(qs[1]), 0);
	ck_status(job_find(id1), " chain=cancelled stage=1 stages=5@a:done");
}
END_TEST

/*
 * A stage holds its jobs while its next queue is full; jobs already running go on
 * into it anyway; at its low watermark the next queue kicks the stage.
 */
START_TEST(test_backpressure)
{
	struct job	*running, *took[3];
	int		 i;

	qs[1]->cf.max_jobs = 4;
	qs[1]->low_jobs = 3;
	for (i = 0; i < 4; i++)
		(void)submit(1, "fill", 0);
	running = submit(0, "x", 0);
	running = take(0);
	(void)submit(0, "y", 0);
	dispatch_queue(qs[0]);
	ck_assert_int_eq(qs[0]->ch.held, 1);
	ck_assert_int_eq(qs[1]->ch.holding, 1);
	ck_assert_uint_eq(qs[0]->nready, 1);
	/* Running when b filled: b takes it beyond max_jobs. */
	job_finish_text(running, JOB_DONE, "x1");
	ck_assert_uint_eq(queue_depth(qs[1]), 5);
	/* b down to 3, not below its low watermark yet: a stays held. */
	took[0] = take(1);
	took[1] = take(1);
	event_base_loop(master_base, EVLOOP_NONBLOCK);	/* the kicks of the submits */
	ck_assert_int_eq(qs[0]->dp.kicked, 0);
	dispatch_queue(qs[1]);
	ck_assert_int_eq(qs[0]->ch.held, 1);
	ck_assert_int_eq(qs[0]->dp.kicked, 0);
	took[2] = take(1);
	dispatch_queue(qs[1]);
	ck_assert_int_eq(qs[0]->ch.held, 0);
	ck_assert_int_eq(qs[1]->ch.holding, 0);
	ck_assert_int_eq(qs[0]->dp.kicked, 1);
	for (i = 0; i < 3; i++)
		job_finish_text(took[i], JOB_CANCELLED, "test over");
}
END_TEST

/* A reload that changes 'then' applies to stages that end after it. */
START_TEST(test_resync)
{
	struct job	*j;

	j = submit(0, "in", 0);
	j = take(0);
	qs[0]->cf.then[0] = '\0';
	chain_sync();
	ck_assert_ptr_null(qs[0]->ch.next);
	job_finish_text(j, JOB_DONE, "one");
	ck_assert_uint_eq(queue_depth(qs[1]), 0);
	snprintf(qs[0]->cf.then, sizeof qs[0]->cf.then, "c");
	chain_sync();
	(void)submit(0, "in", 0);
	j = take(0);
	job_finish_text(j, JOB_DONE, "one");
	ck_assert_uint_eq(queue_depth(qs[1]), 0);
	ck_assert_uint_eq(queue_depth(qs[2]), 1);
}
END_TEST

static Suite *
chain_suite(void)
{
	Suite	*s = suite_create("chain");
	TCase	*tc_ = tcase_create("chain");

	tcase_add_checked_fixture(tc_, setup, teardown);
	tcase_add_test(tc_, test_three_stages);
	tcase_add_test(tc_, test_key_kept);
	tcase_add_test(tc_, test_failed_stage);
	tcase_add_test(tc_, test_cancel);
	tcase_add_test(tc_, test_backpressure);
	tcase_add_test(tc_, test_resync);
	suite_add_tcase(s, tc_);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(chain_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
