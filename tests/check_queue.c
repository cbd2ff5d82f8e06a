/*
 * check_queue.c: unit tests for queue.c: priority order, FIFO within a priority,
 * the delay heap, removal, room accounting, the job table and kept results.
 */

#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobpoold.h"

static struct config	test_cf;

static struct queue *
make_queue(int pmin, int pmax, uint32_t max_jobs, uint64_t max_bytes)
{
	static struct queue_config	qc;
	struct queue			*q;

	memset(&qc, 0, sizeof qc);
	qc.name = (char *)"q";
	qc.handler = (char *)"echo";
	qc.workers = 0;
	qc.max_jobs = max_jobs;
	qc.max_bytes = max_bytes;
	qc.prio_min = pmin;
	qc.prio_max = pmax;
	qc.batch = 1;
	static struct queue		*qarr[1];

	q = queue_create(&qc);
	ck_assert_ptr_nonnull(q);
	q->idx = 0;
	qarr[0] = q;
	queues = qarr;
	nqueues = 1;
	test_cf.keep_results = 100;
	test_cf.keep_results_bytes = 1 << 20;
	master_config = &test_cf;
	return (q);
}

static struct job *
make_job(struct queue *q, const char *data, int prio)
{
	struct job	*j = job_new(q, data, strlen(data));

	ck_assert_ptr_nonnull(j);
	j->id = job_next_id();
	j->prio = (int16_t)prio;
	job_table_add(j);
	return (j);
}

START_TEST(test_priority_then_fifo)
{
	struct queue	*q = make_queue(-2, 2, 100, 1 << 20);
	struct job	*j;
	const char	*want[] = { "h1", "h2", "m1", "m2", "l1" };
	int		 i;

	queue_push(q, make_job(q, "m1", 0));
	queue_push(q, make_job(q, "l1", -2));
	queue_push(q, make_job(q, "h1", 2));
	queue_push(q, make_job(q, "m2", 0));
	queue_push(q, make_job(q, "h2", 2));
	ck_assert_uint_eq(queue_depth(q), 5);
	ck_assert_uint_eq(q->bytes, 10);
	for (i = 0; i < 5; i++) {
		j = queue_pop(q);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(j->len, 2);
		ck_assert_int_eq(memcmp(j->data, want[i], 2), 0);
		job_table_remove(j);
		job_free(j);
	}
	ck_assert_ptr_null(queue_pop(q));
	ck_assert_uint_eq(q->bytes, 0);
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_push_front)
{
	struct queue	*q = make_queue(0, 0, 100, 1 << 20);
	struct job	*a = make_job(q, "a", 0), *b = make_job(q, "b", 0), *j;

	queue_push(q, a);
	queue_push(q, b);
	j = queue_pop(q);
	ck_assert_ptr_eq(j, a);
	queue_push_front(q, a);
	ck_assert_ptr_eq(queue_pop(q), a);
	ck_assert_ptr_eq(queue_pop(q), b);
	job_table_remove(a);
	job_table_remove(b);
	job_free(a);
	job_free(b);
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_delay_heap)
{
	struct queue	*q = make_queue(0, 0, 100, 1 << 20);
	struct job	*j[8];
	uint64_t	 now = now_us();
	int		 order[8] = { 5, 3, 7, 1, 0, 6, 2, 4 }, i;

	/* Jobs due in the past are promoted in run_at order; future ones wait. */
	for (i = 0; i < 8; i++) {
		j[i] = make_job(q, "d", 0);
		j[i]->run_at = now + 100000000 + (uint64_t)order[i] * 10;
		queue_push(q, j[i]);
		ck_assert_int_eq(j[i]->state, JOB_DELAYED);
	}
	ck_assert_uint_eq(q->nheap, 8);
	ck_assert_uint_eq(q->nready, 0);
	ck_assert_ptr_null(queue_pop(q));
	/* Remove one from the middle of the heap. */
	queue_remove(q, j[1]);
	ck_assert_uint_eq(q->nheap, 7);
	/* Make them all due: promotion moves them in run_at order. */
	for (i = 0; i < 8; i++)
		j[i]->run_at -= 200000000;
	queue_promote(q);
	ck_assert_uint_eq(q->nheap, 0);
	ck_assert_uint_eq(q->nready, 7);
	{
		uint64_t	 last = 0;
		struct job	*p;

		while ((p = queue_pop(q)) != NULL) {
			ck_assert_ptr_ne(p, j[1]);
			ck_assert_uint_ge(p->run_at, last);
			last = p->run_at;
			job_table_remove(p);
			job_free(p);
		}
	}
	job_table_remove(j[1]);
	job_free(j[1]);
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_delay_promote_order)
{
	struct queue	*q = make_queue(0, 0, 100, 1 << 20);
	struct job	*j;
	uint64_t	 now = now_us();
	int		 order[6] = { 5, 3, 1, 0, 2, 4 }, i;
	char		 name[8];

	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof name, "%d", order[i]);
		j = make_job(q, name, 0);
		j->run_at = now + 50000 + (uint64_t)order[i] * 1000;
		queue_push(q, j);
	}
	ck_assert_uint_eq(q->nheap, 6);
	while (now_us() < now + 60000)
		;
	queue_promote(q);
	ck_assert_uint_eq(q->nheap, 0);
	ck_assert_uint_eq(q->nready, 6);
	for (i = 0; i < 6; i++) {
		j = queue_pop(q);
		snprintf(name, sizeof name, "%d", i);
		ck_assert_int_eq(memcmp(j->data, name, j->len), 0);
		job_table_remove(j);
		job_free(j);
	}
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_room)
{
	struct queue	*q = make_queue(0, 0, 3, 10);
	struct job	*j;

	/* An empty queue takes a job of any size. */
	ck_assert_int_eq(queue_has_room(q, 1000), 1);
	queue_push(q, make_job(q, "123456", 0));
	ck_assert_int_eq(queue_has_room(q, 4), 1);
	ck_assert_int_eq(queue_has_room(q, 5), 0);
	queue_push(q, make_job(q, "1", 0));
	queue_push(q, make_job(q, "2", 0));
	ck_assert_int_eq(queue_has_room(q, 0), 0);	/* 3 jobs: full by count */
	j = queue_pop(q);
	ck_assert_int_eq(queue_has_room(q, 0), 1);
	ck_assert_uint_eq(q->low_jobs, 3 - 3 / 4);
	job_table_remove(j);
	job_free(j);
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_job_table)
{
	struct queue	*q = make_queue(0, 0, 100000, 1 << 30);
	struct job	*j;
	uint64_t	 first = 0, i;

	/* Enough jobs to grow the table several times. */
	for (i = 0; i < 5000; i++) {
		j = make_job(q, "x", 0);
		if (first == 0)
			first = j->id;
	}
	ck_assert_uint_eq(job_count(), 5000);
	for (i = first; i < first + 5000; i++) {
		j = job_find(i);
		ck_assert_ptr_nonnull(j);
		ck_assert_uint_eq(j->id, i);
	}
	ck_assert_ptr_null(job_find(first + 5000));
	ck_assert_ptr_null(job_find(0));
	for (i = first; i < first + 5000; i += 2) {
		j = job_find(i);
		job_table_remove(j);
		job_free(j);
	}
	ck_assert_uint_eq(job_count(), 2500);
	ck_assert_ptr_null(job_find(first));
	ck_assert_ptr_nonnull(job_find(first + 1));
	for (i = first + 1; i < first + 5000; i += 2) {
		j = job_find(i);
		job_table_remove(j);
		job_free(j);
	}
	ck_assert_uint_eq(job_count(), 0);
	queue_free(q);
	job_table_free();
}
END_TEST

START_TEST(test_keep_trim)
{
	struct queue	*q = make_queue(0, 0, 100, 1 << 20);
	struct job	*j;
	uint64_t	 ids[5];
	int		 i;

	test_cf.keep_results = 3;
	for (i = 0; i < 5; i++) {
		j = make_job(q, "abc", 0);
		ids[i] = j->id;
		job_finish(j, JOB_DONE, "out", 3);
	}
	/* The two oldest were dropped. */
	ck_assert_ptr_null(job_find(ids[0]));
	ck_assert_ptr_null(job_find(ids[1]));
	j = job_find(ids[4]);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(j->state, JOB_DONE);
	ck_assert_uint_eq(job_rlen(j), 3);
	ck_assert_int_eq(memcmp(job_result(j), "out", 3), 0);
	/* The byte bound drops more. */
	job_keep_trim(3, 6);
	ck_assert_ptr_null(job_find(ids[3]));
	ck_assert_ptr_nonnull(job_find(ids[4]));
	queue_free(q);
	job_table_free();
}
END_TEST

/*
 * At exit the master frees the queues (and the jobs waiting in them) first, then the
 * table with the kept and dead jobs: with waiting and finished jobs sharing the table's
 * chains, freeing the finished ones must not walk through the freed waiting ones (ASan
 * saw a use-after-free there, found by check_journal's checksummed garbage).
 */
START_TEST(test_table_free_after_queues)
{
	struct queue	*q = make_queue(0, 0, 100000, 1 << 30);
	struct job	*j;
	int		 i;

	test_cf.keep_results = 100000;
	test_cf.dead_max = 100000;
	for (i = 0; i < 3000; i++) {
		j = make_job(q, "job", 0);
		if (i % 3 == 0)
			queue_push(q, j);
		else
			job_finish(j, i % 3 == 1 ? JOB_DONE : JOB_DEAD, "r", 1);
	}
	ck_assert_uint_eq(job_count(), 3000);
	queue_free(q);
	job_table_free();
	ck_assert_uint_eq(job_count(), 0);
}
END_TEST

/* A 64-byte job is one 144-byte malloc chunk: 72 bytes of header (bench W4). */
START_TEST(test_job_size)
{
	ck_assert_uint_eq(sizeof(struct job), 72);
}
END_TEST

START_TEST(test_state_names)
{
	ck_assert_str_eq(job_state_name(JOB_QUEUED), "queued");
	ck_assert_str_eq(job_state_name(JOB_CANCELLED), "cancelled");
	ck_assert_str_eq(job_state_name((enum job_state)99), "unknown");
}
END_TEST

static Suite *
queue_suite(void)
{
	Suite	*s = suite_create("queue");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_priority_then_fifo);
	tcase_add_test(tc, test_push_front);
	tcase_add_test(tc, test_delay_heap);
	tcase_add_test(tc, test_delay_promote_order);
	tcase_add_test(tc, test_room);
	tcase_add_test(tc, test_job_table);
	tcase_add_test(tc, test_keep_trim);
	tcase_add_test(tc, test_table_free_after_queues);
	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_job_size);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(queue_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
