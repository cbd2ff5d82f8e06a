/*
 * check_metrics.c: unit tests for daemon/metrics.c: the /metrics and /status bodies.
 * Queues and workers are built by hand (tests/checkhandmade.h); metrics_write() goes into
 * an evbuffer and is read back as Prometheus' text format: every line well formed,
 * HELP and TYPE before a family's samples, each sample named after its family; then
 * the values: jobs by outcome from the queues' counters, cumulative histogram buckets
 * from known latencies, workers by state, label values escaped, drained removed queues
 * left out. /status is checked for its keys and its string escaping (the integration
 * test parses it with Python's json).
 */

#include "autoconf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"

#include "checkhandmade.h"

/* A body as a NUL-terminated string: metrics_write() or metrics_write_status(). */
static char *
body(int (*fn)(struct evbuffer *))
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 n;
	char		*s;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(fn(b), 0);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(evbuffer_remove(b, s, n), (int)n);
	s[n] = '\0';
	evbuffer_free(b);
	return (s);
}

/* Read a label value between quotes at p (escapes: \\ \" \n); past the closing quote. */
static const char *
label_value(const char *p, const char *line)
{
	ck_assert_msg(*p == '"', "no opening quote in: %s", line);
	for (p++; *p != '"'; p++) {
		ck_assert_msg(*p != '\0' && *p != '\n', "unterminated label in: %s", line);
		if (*p == '\\') {
			p++;
			ck_assert_msg(*p == '\\' || *p == '"' || *p == 'n', "bad escape in: %s",
			    line);
		}
	}
	return (p + 1);
}

/*
 * The text format, strictly: lines end with '\n'; "# HELP name text" then "# TYPE name
 * type" open a family, once each; a sample is name{k="v",...} value, its name the
 * family's (with _bucket, _sum or _count for a histogram), its value a number. Returns
 * how many families.
 */
static int
check_exposition(const char *text)
{
	char		 family[128] = "", type[32] = "", name[160], line[1024];
	const char	*p = text, *e, *q;
	char		*end;
	size_t		 n;
	int		 families = 0;

	ck_assert_int_eq(text[strlen(text) - 1], '\n');
	for (; *p != '\0'; p = e + 1) {
		e = strchr(p, '\n');
		n = (size_t)(e - p);
		ck_assert_uint_lt(n, sizeof line);
		memcpy(line, p, n);
		line[n] = '\0';
		if (strncmp(line, "# HELP ", 7) == 0) {
			q = line + 7;
			n = strcspn(q, " ");
			ck_assert_uint_lt(n, sizeof family);
			ck_assert_msg(strncmp(q, family, n) != 0 || family[n] != '\0',
			    "HELP twice: %s", line);
			memcpy(family, q, n);
			family[n] = '\0';
			ck_assert_msg(q[n] == ' ' && q[n + 1] != '\0', "no help: %s", line);
			type[0] = '\0';
			families++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			ck_assert_msg(type[0] == '\0', "TYPE twice: %s", line);
			ck_assert_int_eq(sscanf(line + 7, "%127s %31s", name, type), 2);
			ck_assert_str_eq(name, family);
			ck_assert_msg(strcmp(type, "counter") == 0 ||
			    strcmp(type, "gauge") == 0 || strcmp(type, "histogram") == 0,
			    "type %s", type);
			continue;
		}
		ck_assert_msg(line[0] != '#' && line[0] != '\0', "stray line: %s", line);
		ck_assert_msg(type[0] != '\0', "sample before HELP and TYPE: %s", line);
		n = strcspn(line, "{ ");
		ck_assert_uint_lt(n, sizeof name);
		memcpy(name, line, n);
		name[n] = '\0';
		if (strcmp(type, "histogram") == 0) {
			ck_assert_msg(strncmp(name, family, strlen(family)) == 0 &&
			    (strcmp(name + strlen(family), "_bucket") == 0 ||
			    strcmp(name + strlen(family), "_sum") == 0 ||
			    strcmp(name + strlen(family), "_count") == 0),
			    "%s in histogram %s", name, family);
		} else
			ck_assert_str_eq(name, family);
		if (strcmp(type, "counter") == 0)
			ck_assert_msg(strlen(name) > 6 &&
			    strcmp(name + strlen(name) - 6, "_total") == 0,
			    "counter %s without _total", name);
		q = line + n;
		if (*q == '{') {
			for (q++;;) {
				n = strspn(q, "abcdefghijklmnopqrstuvwxyz_");
				ck_assert_msg(n > 0 && q[n] == '=', "bad label in: %s", line);
				q = label_value(q + n + 1, line);
				if (*q == '}')
					break;
				ck_assert_msg(*q == ',', "bad labels in: %s", line);
				q++;
			}
			q++;
		}
		ck_assert_msg(*q == ' ', "no value in: %s", line);
		(void)strtod(q + 1, &end);
		ck_assert_msg(end != q + 1 && *end == '\0', "bad value in: %s", line);
	}
	return (families);
}

/* The value of the sample that starts with prefix (name and labels); -1 if none. */
static double
sample(const char *text, const char *prefix)
{
	const char	*p = text;
	size_t		 n = strlen(prefix);

	for (; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : p) {
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return (strtod(p + n + 1, NULL));
	}
	return (-1);
}

/* The counters of two queues, as jobpool_jobs_total and the others say them. */
START_TEST(test_counters)
{
	struct queue	*a = add_queue("a", "echo");
	struct queue	*b = add_queue("b", "sleep");
	char		*s;

	a->submitted = 120;
	a->done = 100;
	a->retried = 7;
	a->failed = 5;
	a->poisoned = 2;
	a->cancelled = 3;
	a->worker_deaths = 4;
	a->nready = 9;
	a->running = 2;
	a->ndead = 5;
	a->bytes = 4096;
	a->srv.nblocked = 1;
	a->keys.nkeys = 6;
	a->keys.nparked = 8;
	a->paused = 1;
	b->done = 1;
	s = body(metrics_write);
	check_exposition(s);
	ck_assert_double_eq(sample(s, "jobpool_jobs_submitted_total{queue=\"a\"}"), 120);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"a\",outcome=\"succeeded\"}"),
	    100);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"a\",outcome=\"retried\"}"),
	    7);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"a\",outcome=\"dead\"}"), 5);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"a\",outcome=\"cancelled\"}"),
	    3);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"b\",outcome=\"succeeded\"}"),
	    1);
	ck_assert_double_eq(sample(s, "jobpool_jobs_total{queue=\"b\",outcome=\"dead\"}"), 0);
	ck_assert_double_eq(sample(s, "jobpool_jobs_poisoned_total{queue=\"a\"}"), 2);
	ck_assert_double_eq(sample(s, "jobpool_worker_deaths_total{queue=\"a\"}"), 4);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"queued\"}"), 9);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"running\"}"), 2);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"dead\"}"), 5);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"delayed\"}"), 0);
	ck_assert_double_eq(sample(s, "jobpool_queue_bytes{queue=\"a\"}"), 4096);
	ck_assert_double_eq(sample(s, "jobpool_queue_blocked_producers{queue=\"a\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"parked\"}"), 8);
	ck_assert_double_eq(sample(s, "jobpool_queue_keys{queue=\"a\"}"), 6);
	ck_assert_double_eq(sample(s, "jobpool_queue_paused{queue=\"a\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_queue_paused{queue=\"b\"}"), 0);
	ck_assert_double_eq(sample(s, "jobpool_queue_max_jobs{queue=\"b\"}"), 100);
	ck_assert_double_eq(sample(s, "jobpool_build_info{version=\"" PACKAGE_VERSION "\"}"),
	    1);
	ck_assert_double_eq(sample(s, "jobpool_stopping"), 0);
	/* No event ring in this test: none published, none lost, nobody follows. */
	ck_assert_double_eq(sample(s, "jobpool_events_total"), 0);
	ck_assert_double_eq(sample(s, "jobpool_events_dropped_total"), 0);
	ck_assert_double_eq(sample(s, "jobpool_event_subscribers"), 0);
	/* Our own process: it uses memory. */
	ck_assert_double_gt(sample(s, "process_resident_memory_bytes"), 0);
	/* No journal here: none of its families. */
	ck_assert_ptr_null(strstr(s, "jobpool_journal_"));
	free(s);
	free_all();
}
END_TEST

/* Cumulative buckets from 100 us to 30 min, +Inf, _sum and _count, in seconds. */
START_TEST(test_histogram)
{
	static const char *const bounds[] = {
		"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
		"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "25", "50", "100",
		"250", "500", "1000", "1800", "+Inf"
	};
	/* Values in us, and how many are at or below each bound above. */
	static const uint64_t	 us[] = { 50, 90, 150, 300, 2000, 40000, 3000000,
	    2400000000ull };
	static const double	 le[] = { 2, 3, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7, 7, 7,
	    7, 7, 7, 7, 7, 7, 8 };
	struct queue		*q = add_queue("h", "echo");
	char			*s, prefix[128];
	double			 sum = 0;
	size_t			 i;

	for (i = 0; i < sizeof us / sizeof us[0]; i++) {
		hist_add(&q->st.run, us[i]);
		sum += (double)us[i] / 1e6;
	}
	hist_add(&q->st.wait, 1000000);
	s = body(metrics_write);
	check_exposition(s);
	for (i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
		snprintf(prefix, sizeof prefix,
		    "jobpool_job_run_seconds_bucket{queue=\"h\",le=\"%s\"}", bounds[i]);
		ck_assert_msg(sample(s, prefix) == le[i], "%s: %g, not %g", prefix,
		    sample(s, prefix), le[i]);
	}
	ck_assert_double_eq(sample(s, "jobpool_job_run_seconds_count{queue=\"h\"}"), 8);
	ck_assert_double_eq_tol(sample(s, "jobpool_job_run_seconds_sum{queue=\"h\"}"), sum,
	    1e-6);
	ck_assert_double_eq(sample(s,
	    "jobpool_job_wait_seconds_bucket{queue=\"h\",le=\"0.5\"}"), 0);
	ck_assert_double_eq(sample(s,
	    "jobpool_job_wait_seconds_bucket{queue=\"h\",le=\"1\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_job_wait_seconds_count{queue=\"h\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_job_wait_seconds_sum{queue=\"h\"}"), 1);
	free(s);
	free_all();
}
END_TEST

/* Every bucket is what hist_count_le() says of its bound, whatever the values. */
START_TEST(test_histogram_matches_hist)
{
	static const uint64_t	 bounds_us[] = { 100, 250, 500, 1000, 2500, 5000, 10000,
	    25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
	    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 1800000000 };
	struct queue		*q = add_queue("r", "echo");
	char			*s, prefix[128];
	unsigned		 seed = 19;
	size_t			 i;
	int			 round;

	for (round = 0; round < 20; round++) {
		/* Values from 0 us to 70 minutes, as many of each magnitude, bounds too. */
		for (i = 0; i < 200; i++) {
			hist_add(&q->st.run, ((uint64_t)rand_r(&seed) << 31 |
			    (uint64_t)rand_r(&seed)) >> (30 + rand_r(&seed) % 32));
			if (rand_r(&seed) % 10 == 0)
				hist_add(&q->st.run, bounds_us[(unsigned)rand_r(&seed) %
				    (sizeof bounds_us / sizeof bounds_us[0])]);
		}
		s = body(metrics_write);
		for (i = 0; i < sizeof bounds_us / sizeof bounds_us[0]; i++) {
			snprintf(prefix, sizeof prefix,
			    "jobpool_job_run_seconds_bucket{queue=\"r\",le=\"%.15g\"}",
			    (double)bounds_us[i] / 1e6);
			ck_assert_msg(sample(s, prefix) ==
			    (double)hist_count_le(&q->st.run, bounds_us[i]), "%s: %g, not %llu",
			    prefix, sample(s, prefix),
			    (unsigned long long)hist_count_le(&q->st.run, bounds_us[i]));
		}
		free(s);
	}
	free_all();
}
END_TEST

/* Workers counted by state (every state present, at 0 too), and each one's figures. */
START_TEST(test_workers)
{
	struct queue	*q = add_queue("w", "echo");
	struct worker	*w;
	const pid_t	 nopid = 2147483600;	/* above any pid_max: no /proc entry */
	char		*s;

	add_slots(q, 5);
	w = add_worker(q, 0, getpid(), WORKER_READY);
	w->jobs_done = 12;
	w = add_worker(q, 1, nopid, WORKER_READY);
	w->ninflight = 1;
	add_worker(q, 2, nopid, WORKER_STARTING);
	add_worker(q, 4, nopid, WORKER_RETIRING);
	s = body(metrics_write);
	check_exposition(s);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"idle\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"busy\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"starting\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"retiring\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"stopping\"}"), 0);
	ck_assert_double_eq(sample(s, "jobpool_workers{queue=\"w\",state=\"dead\"}"), 0);
	/* Slot 0 is this process: it has a resident set; the others have no /proc. */
	ck_assert_double_gt(sample(s,
	    "jobpool_worker_resident_memory_bytes{queue=\"w\",worker=\"0\"}"), 0);
	ck_assert_double_eq(sample(s,
	    "jobpool_worker_resident_memory_bytes{queue=\"w\",worker=\"1\"}"), 0);
	ck_assert_double_eq(sample(s, "jobpool_worker_jobs_total{queue=\"w\",worker=\"0\"}"),
	    12);
	ck_assert_double_ge(sample(s,
	    "jobpool_worker_cpu_seconds_total{queue=\"w\",worker=\"0\"}"), 0);
	/* The empty slot has no samples. */
	ck_assert_double_eq(sample(s, "jobpool_worker_jobs_total{queue=\"w\",worker=\"3\"}"),
	    -1);
	free(s);
	free_all();
}
END_TEST

/*
 * What waits and what runs, and for how long: the oldest ready job's wait, jobs waiting
 * to retry apart from the other delayed ones, a busy worker's job and its age, in
 * /metrics and /status alike.
 */
START_TEST(test_waits_and_ages)
{
	struct queue		*q = add_queue("a", "sleep");
	struct job		*j = job_new(q, "x", 1), *r = job_new(q, "y", 1);
	struct job		*h = job_new(q, "z", 1);
	struct job_change	 ch;
	struct worker		*w;
	uint64_t		 t0;
	double			 v;
	char			*s;

	ck_assert_ptr_nonnull(j);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(h);
	h->id = 4242;
	j->id = job_next_id();
	job_table_add(j);
	/* Ready 3 s ago. */
	t0 = now_us();
	j->run_at = t0 - 3000000;
	queue_push(q, j);
	/* Another in its backoff, due in an hour: delayed, and retry_wait for stats. */
	r->id = job_next_id();
	job_table_add(r);
	r->run_at = t0 + 3600000000ull;
	queue_push(q, r);
	ck_assert_uint_eq(q->nheap, 1);
	ch = (struct job_change){ .j = r, .what = JOB_RETRY_WAIT, .from = JOB_RUNNING };
	stats_job_changed(&ch);
	/* A busy worker, on job 4242 for 1.5 s. */
	add_slots(q, 1);
	w = add_worker(q, 0, 2147483600, WORKER_READY);
	TAILQ_INSERT_TAIL(&w->inflight, h, entry);
	w->ninflight = 1;
	h->run_at = now_us() - 1500000;	/* running: since when */
	s = body(metrics_write);
	check_exposition(s);
	v = sample(s, "jobpool_queue_oldest_wait_seconds{queue=\"a\"}");
	ck_assert_msg(v >= 3.0 && v < 13.0, "oldest wait %g", v);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"queued\"}"), 1);
	ck_assert_double_eq(sample(s, "jobpool_queue_jobs{queue=\"a\",state=\"delayed\"}"), 0);
	ck_assert_double_eq(sample(s,
	    "jobpool_queue_jobs{queue=\"a\",state=\"retry_wait\"}"), 1);
	v = sample(s, "jobpool_worker_job_age_seconds{queue=\"a\",worker=\"0\"}");
	ck_assert_msg(v >= 1.5 && v < 11.5, "age %g", v);
	free(s);
	s = body(metrics_write_status);
	ck_assert_ptr_nonnull(strstr(s, "\"queued\":1,\"delayed\":0,\"retry_wait\":1,"));
	ck_assert_ptr_nonnull(strstr(s, ",\"oldest_wait\":"));
	ck_assert_ptr_nonnull(strstr(s, ",\"throughput\":{\"1m\":0.000,\"5m\":0.000,"
	    "\"15m\":0.000}"));
	ck_assert_ptr_nonnull(strstr(s, ",\"job\":4242,\"age\":1."));
	free(s);
	/* Idle: no job, age 0. */
	TAILQ_REMOVE(&w->inflight, h, entry);
	w->ninflight = 0;
	s = body(metrics_write);
	ck_assert_double_eq(sample(s,
	    "jobpool_worker_job_age_seconds{queue=\"a\",worker=\"0\"}"), 0);
	free(s);
	s = body(metrics_write_status);
	ck_assert_ptr_nonnull(strstr(s, ",\"job\":null,\"age\":0.000000}"));
	free(s);
	ck_assert_ptr_eq(queue_pop(q), j);
	queue_remove(q, r);
	job_table_remove(j);
	job_table_remove(r);
	job_free(j);
	job_free(r);
	job_free(h);
	free_all();
}
END_TEST

/* Label values are escaped (a queue name cannot hold these; the exporter does not rely on it). */
START_TEST(test_label_escaping)
{
	struct queue	*q = add_queue("x", "echo");
	char		*s;

	free(q->name);
	q->name = strdup("a\"b\\c\nd");
	ck_assert_ptr_nonnull(q->name);
	q->done = 6;
	s = body(metrics_write);
	check_exposition(s);
	ck_assert_double_eq(sample(s,
	    "jobpool_jobs_total{queue=\"a\\\"b\\\\c\\nd\",outcome=\"succeeded\"}"), 6);
	free(s);
	free_all();
}
END_TEST

/* A removed queue shows while it holds jobs, and goes once drained. */
START_TEST(test_removed_queue)
{
	struct queue	*q = add_queue("old", "echo");
	char		*s;

	add_queue("new", "echo");
	q->removed = 1;
	q->running = 1;
	s = body(metrics_write);
	ck_assert_double_eq(sample(s, "jobpool_jobs_submitted_total{queue=\"old\"}"), 0);
	free(s);
	q->running = 0;
	s = body(metrics_write);
	check_exposition(s);
	ck_assert_ptr_null(strstr(s, "queue=\"old\""));
	ck_assert_double_eq(sample(s, "jobpool_jobs_submitted_total{queue=\"new\"}"), 0);
	s = (free(s), body(metrics_write_status));
	ck_assert_ptr_null(strstr(s, "\"old\""));
	free(s);
	free_all();
}
END_TEST

/* /status: its keys, and strings escaped as JSON (controls, quotes, bytes not UTF-8). */
START_TEST(test_status)
{
	static const char head[] = "{\"version\":1,\"daemon\":{\"version\":\""
	    PACKAGE_VERSION "\",\"pid\":";
	struct queue	*q = add_queue("s", "echo");
	struct worker	*w;
	char		*s;

	free(q->cf.handler);
	q->cf.handler = strdup("exec:/bin/x \"q\" \\ \x01 \xff caf\xc3\xa9");
	ck_assert_ptr_nonnull(q->cf.handler);
	q->failed_reason = strdup("line one\nline two");
	ck_assert_ptr_nonnull(q->failed_reason);
	q->submitted = 3;
	q->done = 2;
	hist_add(&q->st.wait, 1500);
	add_slots(q, 1);
	w = add_worker(q, 0, getpid(), WORKER_READY);
	w->jobs_done = 2;
	s = body(metrics_write_status);
	ck_assert_int_eq(strncmp(s, head, strlen(head)), 0);
	ck_assert_ptr_nonnull(strstr(s, "\"journal\":null}"));
	ck_assert_ptr_nonnull(strstr(s, ",\"queues\":[{\"name\":\"s\",\"state\":\"failed\","
	    "\"reason\":\"line one\\u000aline two\",\"handler\":\"exec:/bin/x \\\"q\\\" \\\\ "
	    "\\u0001 \\ufffd caf\xc3\xa9\",\"paused\":false,\"workers\":0,"));
	ck_assert_ptr_nonnull(strstr(s, "\"jobs\":{\"submitted\":3,\"succeeded\":2,"
	    "\"retried\":0,\"dead\":0,\"cancelled\":0,\"poisoned\":0}"));
	ck_assert_ptr_nonnull(strstr(s, "\"wait\":{\"count\":1,\"sum\":0.001500,"));
	ck_assert_ptr_nonnull(strstr(s, "\"workers\":[{\"queue\":\"s\",\"slot\":0,\"pid\":"));
	ck_assert_ptr_nonnull(strstr(s, "\"state\":\"idle\",\"jobs\":2,\"inflight\":0,"));
	ck_assert_int_eq(strcmp(s + strlen(s) - 4, "}]}\n"), 0);
	free(s);
	free_all();
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite	*s = suite_create("metrics");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_counters);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_histogram_matches_hist);
	tcase_add_test(tc, test_workers);
	tcase_add_test(tc, test_waits_and_ages);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_removed_queue);
	tcase_add_test(tc, test_status);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(metrics_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
