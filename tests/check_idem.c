/*
 * check_idem.c: unit tests for idem.c, the idempotency tokens, through the lifecycle
 * as the daemon drives them: a token names the first job for its queue and owner only;
 * it lives while its job waits and for idempotency_window after the job ended, then
 * the timer forgets it; a shutdown's cancel keeps it live; a dead job queued again
 * makes it live again; at idempotency_max no room is left until one expires; what a
 * token costs stays under IDEM_BYTES_MAX; restored tokens and idem_foreach.
 */

#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "jobpoold.h"
#include "idem.h"
#include "log.h"
#include "proto.h"

#define WAIT_MS	10000
#include "checkloop.h"
#include "checkqueue.h"

static void
setup(void)
{
	log_init(LOG_ERR, "check_idem");
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	checkqueue_config("check_idem");
	tcf.idempotency_window_ms = 600000;
	tcf.idempotency_max = 1000;
	checkqueue_make();
}

static void
teardown(void)
{
	master_stopping = 0;
	idem_free();
	checkqueue_free();
	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
}

/* A job of tq for owner, accepted with token tok (NULL: none), as SUBMIT does. */
static struct job *
submit(const char *tok, uint16_t owner)
{
	struct job	*j = job_new(tq, "x", 1);

	ck_assert_ptr_nonnull(j);
	j->owner = owner;
	if (tok == NULL) {
		dispatch_submit(tq, j, NULL);
		return (j);
	}
	dispatch_submit_as(tq, j, NULL, &(struct job_change){ .text = tok,
	    .len = (uint32_t)strlen(tok) });
	idem_give(j, tok, strlen(tok));
	return (j);
}

static uint64_t
find(const char *tok, uint16_t owner)
{
	uint64_t	batch;

	return (idem_find(tq->idx, owner, tok, strlen(tok), &batch));
}

/* A waiting job cancelled by a client: its end. */
static void
cancel(struct job *j)
{
	const char	*why;

	ck_assert_int_eq(dispatch_cancel(j, &why), 0);
}

START_TEST(test_names_first_job)
{
	struct job	*a, *b;
	uint64_t	 id;

	a = submit("order-1", 0);
	id = a->id;
	ck_assert_uint_eq(idem_n, 1);
	ck_assert_uint_eq(find("order-1", 0), id);
	/* Another token, owner or queue is another token; no token, none at all. */
	ck_assert_uint_eq(find("order-2", 0), 0);
	ck_assert_uint_eq(find("order-1", 1), 0);
	ck_assert_uint_eq(idem_find(7, 0, "order-1", 7, &(uint64_t){ 0 }), 0);
	b = submit(NULL, 0);
	ck_assert_uint_ne(b->id, id);
	ck_assert_uint_eq(idem_n, 1);
	/* The same token from another owner is a token of its own. */
	b = submit("order-1", 1);
	ck_assert_uint_eq(idem_n, 2);
	ck_assert_uint_eq(find("order-1", 1), b->id);
	ck_assert_uint_eq(find("order-1", 0), id);
}
END_TEST

START_TEST(test_window_after_end)
{
	struct job	*j;
	uint64_t	 id;

	tcf.idempotency_window_ms = 100;
	j = submit("t", 0);
	id = j->id;
	/* Waiting: no window runs, however long it waits. */
	run_for(250);
	ck_assert_uint_eq(find("t", 0), id);
	ck_assert_uint_eq(idem_next_expiry_ms(), 0);
	/* Ended: still there, now for the window, and then forgotten by the timer. */
	cancel(j);
	ck_assert_uint_eq(find("t", 0), id);
	ck_assert_uint_gt(idem_next_expiry_ms(), 0);
	ck_assert_uint_le(idem_next_expiry_ms(), 100);
	run_until(idem_n == 0);
	ck_assert_uint_eq(find("t", 0), 0);
	/* A new job may take the token then. */
	j = submit("t", 0);
	ck_assert_uint_ne(j->id, id);
	ck_assert_uint_eq(find("t", 0), j->id);
}
END_TEST

START_TEST(test_shutdown_cancel_keeps_it)
{
	struct job	*j = submit("kept", 0);
	uint64_t	 id = j->id;

	/* The shutdown's cancel is no end: the job runs after the restart. */
	master_stopping = 1;
	dispatch_cancel_waiting("stopping");
	ck_assert_uint_eq(find("kept", 0), id);
	ck_assert_uint_eq(idem_next_expiry_ms(), 0);
}
END_TEST

START_TEST(test_dead_queued_again_lives)
{
	struct job	*j = submit("d", 0);
	const char	*why;

	queue_remove(tq, j);
	job_finish_text(j, JOB_DEAD, "it failed");
	ck_assert_uint_eq(j->state, JOB_DEAD);
	ck_assert_uint_gt(idem_next_expiry_ms(), 0);
	ck_assert_int_eq(dispatch_retry(j, &why), 0);
	ck_assert_uint_eq(find("d", 0), j->id);
	ck_assert_uint_eq(idem_next_expiry_ms(), 0);
}
END_TEST

START_TEST(test_cap)
{
	struct job	*j[3];
	char		 tok[8];
	int		 i;

	tcf.idempotency_max = 3;
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(idem_room(), 1);
		snprintf(tok, sizeof tok, "c%d", i);
		j[i] = submit(tok, 0);
	}
	ck_assert_uint_eq(idem_n, 3);
	ck_assert_int_eq(idem_room(), 0);
	/* An ended job's token holds its place for the window... */
	cancel(j[0]);
	ck_assert_int_eq(idem_room(), 0);
	/* ...and gives it back once expired (with no window: at once). */
	tcf.idempotency_window_ms = 0;
	cancel(j[1]);
	ck_assert_int_eq(idem_room(), 1);
	ck_assert_uint_eq(idem_n, 2);
	ck_assert_uint_eq(find("c1", 0), 0);
	ck_assert_uint_eq(find("c0", 0), j[0]->id);
	/* c1 ended after c0 but with a shorter window (a reload): it expired first. */
	ck_assert_uint_eq(find("c2", 0), j[2]->id);
}
END_TEST

START_TEST(test_memory_bound)
{
	char	tok[PROTO_MAX_IDEM + 1];
	int	i, n = 5000;

	tcf.idempotency_max = (uint32_t)n;
	tqc.max_jobs = (uint32_t)n;
	for (i = 0; i < n; i++) {
		/* The longest tokens: what jobpool.conf(5) promises is for these. */
		snprintf(tok, sizeof tok, "%064d", i);
		submit(tok, 0);
		ck_assert_uint_le(idem_bytes(), IDEM_BYTES_FIXED +
		    (size_t)idem_n * IDEM_BYTES_MAX);
	}
	ck_assert_uint_eq(idem_n, (uint32_t)n);
	ck_assert_int_eq(idem_room(), 0);
}
END_TEST

static int
count_tok(const struct idem_tok *t, void *arg)
{
	(*(int *)arg)++;
	ck_assert_uint_ge(t->len, 1);
	return (0);
}

START_TEST(test_restore_and_foreach)
{
	struct job	*j = submit("live", 0);
	int		 n = 0;

	/* From the journal: one still in its window, one whose job waits. */
	ck_assert_int_eq(idem_restore(tq->idx, 0, "old", 3, 999, now_ms() + 60000), 0);
	ck_assert_int_eq(idem_restore(tq->idx, 2, "again", 5, j->id, 0), 0);
	ck_assert_uint_eq(find("old", 0), 999);
	ck_assert_uint_eq(idem_find(tq->idx, 2, "again", 5, &(uint64_t){ 0 }), j->id);
	ck_assert_int_eq(idem_foreach(count_tok, &n), 0);
	ck_assert_int_eq(n, 3);
	/* The same token restored again (a newer record): the newer wins. */
	ck_assert_int_eq(idem_restore(tq->idx, 0, "old", 3, 1000, now_ms() + 60000), 0);
	ck_assert_uint_eq(find("old", 0), 1000);
	ck_assert_uint_eq(idem_n, 3);
}
END_TEST

static Suite *
idem_suite(void)
{
	Suite	*s = suite_create("idem");
	TCase	*tc = tcase_create("tokens");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_names_first_job);
	tcase_add_test(tc, test_window_after_end);
	tcase_add_test(tc, test_shutdown_cancel_keeps_it);
	tcase_add_test(tc, test_dead_queued_again_lives);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_memory_bound);
	tcase_add_test(tc, test_restore_and_foreach);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(idem_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
