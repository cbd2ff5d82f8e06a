/*
 * check_stats.c: unit tests for daemon/stats.c: the STATS body of lib/PROTOCOL.md.
 * Queues and workers are built by hand as tests/check_queue.c does; stats_write() goes
 * into an evbuffer and every line is compared with what the protocol says it holds:
 * the daemon line, a queue line with each key in order, each queue and worker state,
 * percent-encoding of the handler, reason= at the end of the line, removed queues;
 * the monitoring keys: latency quantiles filled by the lifecycle listener, retry_wait,
 * the decayed throughput rates, the oldest wait, a worker's job, age and CPU time.
 */

#include "autoconf.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"

#include "checkhandmade.h"

/* stats_write() as a NUL-terminated string. */
static char *
stats_text(void)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 n;
	char		*s;

	ck_assert_ptr_nonnull(b);
	stats_write(b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(evbuffer_remove(b, s, n), (int)n);
	s[n] = '\0';
	evbuffer_free(b);
	/* The body is lines: it ends with a newline and holds no empty line. */
	ck_assert_int_eq(s[n - 1], '\n');
	ck_assert_ptr_null(strstr(s, "\n\n"));
	return (s);
}

/* The line number nth (from 0) of text, malloc'd without its newline; NULL past the end. */
static char *
line_n(const char *text, int nth)
{
	const char	*p = text, *e;
	char		*l;

	while (nth-- > 0) {
		if ((p = strchr(p, '\n')) == NULL || *++p == '\0')
			return (NULL);
	}
	if (*p == '\0')
		return (NULL);
	e = strchr(p, '\n');
	l = strndup(p, (size_t)(e - p));
	ck_assert_ptr_nonnull(l);
	return (l);
}

static int
count_lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return (n);
}

/* The line of text that starts with prefix (e.g. "queue q "), malloc'd; NULL if none. */
static char *
find_line(const char *text, const char *prefix)
{
	char	*l;
	int	 i;

	for (i = 0; (l = line_n(text, i)) != NULL; i++) {
		if (strncmp(l, prefix, strlen(prefix)) == 0)
			return (l);
		free(l);
	}
	return (NULL);
}

/* The value of key in a line of key=value words, into val; 0, or -1 if absent. */
static int
get_value(const char *line, const char *key, char *val, size_t len)
{
	char		 pat[64];
	const char	*p;
	size_t		 n;

	snprintf(pat, sizeof pat, " %s=", key);
	if ((p = strstr(line, pat)) == NULL)
		return (-1);
	p += strlen(pat);
	n = strcspn(p, " ");
	ck_assert_uint_lt(n, len);
	memcpy(val, p, n);
	val[n] = '\0';
	return (0);
}

static unsigned long long
get_ull(const char *line, const char *key)
{
	char	val[64], *end;
	unsigned long long v;

	ck_assert_msg(get_value(line, key, val, sizeof val) == 0, "no %s= in %s", key, line);
	v = strtoull(val, &end, 10);
	ck_assert_msg(*val != '\0' && *end == '\0', "%s=%s is not a number", key, val);
	return (v);
}

/* The daemon line alone, with nothing configured. */
START_TEST(test_daemon_line)
{
	uint64_t	 t0, t1;
	char		*s, *l, want[256];

	t0 = now_ms();
	stats_init();
	s = stats_text();
	t1 = now_ms();
	ck_assert_int_eq(count_lines(s), 1);
	l = line_n(s, 0);
	/* uptime is whole seconds since stats_init, at most what passed here. */
	ck_assert_uint_le(get_ull(l, "uptime"), (t1 - t0) / 1000);
	/*
	 * The event stream's words (events.c; no ring in this test), and the
	 * idempotency tokens' (idem.c; the default cap without a config).
	 */
	snprintf(want, sizeof want, "daemon jobpoold version=%s pid=%ld uptime=%llu "
	    "connections=0 jobs=0 stopping=0 events_epoch=0 events_seq=0 events_ring=0 "
	    "events_dropped=0 subscribers=0 idem_tokens=0 idem_max=%u", PACKAGE_VERSION,
	    (long)getpid(), get_ull(l, "uptime"), CONFIG_DEF_IDEMPOTENCY_MAX);
	ck_assert_str_eq(l, want);
	free(l);
	free(s);
}
END_TEST

/* uptime counts from stats_init() in whole seconds. */
START_TEST(test_uptime)
{
	char	*s, *l;

	stats_init();
	usleep(1100 * 1000);
	s = stats_text();
	l = line_n(s, 0);
	ck_assert_uint_ge(get_ull(l, "uptime"), 1);
	free(l);
	free(s);
}
END_TEST

/* jobs= is every job the daemon knows; stopping= follows master_stopping. */
START_TEST(test_daemon_counts)
{
	struct queue	*q = add_queue("q", "echo");
	struct job	*j;
	char		*s, *l;
	int		 i;

	for (i = 0; i < 3; i++) {
		j = job_new(q, "x", 1);
		ck_assert_ptr_nonnull(j);
		j->id = job_next_id();
		job_table_add(j);
		queue_push(q, j);
	}
	master_stopping = 1;
	s = stats_text();
	l = line_n(s, 0);
	ck_assert_uint_eq(get_ull(l, "jobs"), 3);
	ck_assert_uint_eq(get_ull(l, "stopping"), 1);
	ck_assert_uint_eq(get_ull(l, "connections"), 0);
	ck_assert_uint_eq(get_ull(l, "pid"), (unsigned long long)getpid());
	free(l);
	/* The queue line counts the same three as ready, with their bytes. */
	l = find_line(s, "queue q ");
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(get_ull(l, "depth"), 3);
	ck_assert_uint_eq(get_ull(l, "bytes"), 3);
	free(l);
	free(s);
	master_stopping = 0;
	for (i = 0; i < 3; i++) {
		j = queue_pop(q);
		job_table_remove(j);
		job_free(j);
	}
	free_all();
}
END_TEST

/* Every key of the queue line, in the protocol's order, each from its own field. */
START_TEST(test_queue_line)
{
	struct queue	*q = add_queue("default", "echo");
	struct job	 due_later = { .run_at = UINT64_MAX };
	char		*s, *l;
	int		 i;

	add_slots(q, 2);
	q->nready = 3;
	/* Four delayed jobs, not due: the oldest wait looks at the first. */
	q->heap = calloc(4, sizeof *q->heap);
	ck_assert_ptr_nonnull(q->heap);
	for (i = 0; i < 4; i++)
		q->heap[i] = &due_later;
	q->nheap = 4;
	q->running = 5;
	q->busy = 6;
	q->bytes = 7;
	q->submitted = 8;
	q->done = 9;
	q->failed = 10;
	q->cancelled = 11;
	q->retried = 12;
	q->ndead = 13;
	q->poisoned = 14;
	q->srv.nblocked = 15;
	q->worker_deaths = 16;
	q->cf.max_jobs = 17;
	q->cf.max_bytes = 18;
	q->cf.max_running = 19;
	q->cf.rate = 2.5;
	q->cf.max_running_per_key = 20;
	q->cf.rate_per_key = 0.5;
	q->keys.nkeys = 21;
	q->keys.nparked = 22;
	s = stats_text();
	ck_assert_int_eq(count_lines(s), 2);
	l = line_n(s, 1);
	ck_assert_str_eq(l, "queue default state=running workers=2 depth=3 delayed=4 "
	    "running=5 busy=6 bytes=7 submitted=8 done=9 failed=10 cancelled=11 "
	    "retried=12 dead=13 poisoned=14 blocked=15 worker_deaths=16 max_jobs=17 "
	    "max_bytes=18 max_running=19 rate=2.5 max_running_per_key=20 "
	    "rate_per_key=0.5 keys=21 parked=22 paused=0 retry_wait=0 throughput_1m=0.000 "
	    "throughput_5m=0.000 throughput_15m=0.000 oldest_wait_us=0 wait_p50_us=0 "
	    "wait_p90_us=0 wait_p99_us=0 wait_p999_us=0 wait_max_us=0 wait_count=0 "
	    "run_p50_us=0 run_p90_us=0 run_p99_us=0 run_p999_us=0 run_max_us=0 "
	    "run_count=0 handler=echo");
	free(l);
	free(s);
	/* Big counters print in full; the ready/heap counters stay zero for free_all. */
	q->nready = q->nheap = 0;
	q->keys.nkeys = q->keys.nparked = 0;
	q->done = 18446744073709551615ULL;
	q->cf.max_bytes = 1ULL << 40;
	q->cf.rate = 0;
	s = stats_text();
	l = find_line(s, "queue default ");
	ck_assert_uint_eq(get_ull(l, "done"), 18446744073709551615ULL);
	ck_assert_uint_eq(get_ull(l, "max_bytes"), 1ULL << 40);
	{
		char	val[32];

		ck_assert_int_eq(get_value(l, "rate", val, sizeof val), 0);
		ck_assert_str_eq(val, "0");
	}
	free(l);
	free(s);
	free_all();
}
END_TEST

/* The handler is one word: spaces, '%', control and non-ASCII bytes are %XX. */
START_TEST(test_handler_encoded)
{
	char	*s, *l, val[128];

	add_queue("ex", "exec:/usr/bin/x a%b\tc\xc3\xa9\x7f~");
	add_queue("pl", "plugin:/usr/lib/x.so");
	s = stats_text();
	l = find_line(s, "queue ex ");
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(get_value(l, "handler", val, sizeof val), 0);
	ck_assert_str_eq(val, "exec:/usr/bin/x%20a%25b%09c%C3%A9%7F~");
	/* handler= is the last word when there is no reason=. */
	ck_assert_int_eq(strcmp(l + strlen(l) - strlen(val), val), 0);
	free(l);
	l = find_line(s, "queue pl ");
	ck_assert_int_eq(get_value(l, "handler", val, sizeof val), 0);
	ck_assert_str_eq(val, "plugin:/usr/lib/x.so");
	free(l);
	/* Queues come in their order, after the daemon line. */
	l = line_n(s, 1);
	ck_assert_int_eq(strncmp(l, "queue ex ", 9), 0);
	free(l);
	l = line_n(s, 2);
	ck_assert_int_eq(strncmp(l, "queue pl ", 9), 0);
	free(l);
	free(s);
	free_all();
}
END_TEST

/* A handler that cannot start: state=failed, reason= last, to the end of the line. */
START_TEST(test_queue_failed)
{
	struct queue	*q = add_queue("fragile", "plugin:/x.so");
	char		*s, *l, val[32];
	const char	*r;

	q->failed_reason = strdup("plugin /x.so: init failed:\nno such\rfile");
	ck_assert_ptr_nonnull(q->failed_reason);
	s = stats_text();
	ck_assert_int_eq(count_lines(s), 2);
	l = find_line(s, "queue fragile ");
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "failed");
	r = strstr(l, " reason=");
	ck_assert_ptr_nonnull(r);
	/* Newlines folded, spaces kept as they are: it runs to the end of the line. */
	ck_assert_str_eq(r, " reason=plugin /x.so: init failed: no such file");
	ck_assert_ptr_nonnull(strstr(l, " handler=plugin:/x.so reason="));
	free(l);
	free(s);
	free_all();
}
END_TEST

/* PAUSE: state=paused, paused=1, and reason= says who (or the config). */
START_TEST(test_queue_paused)
{
	struct queue	*q = add_queue("held", "echo");
	char		*s, *l, val[32];

	q->paused = 1;
	q->paused_by = 1000;
	s = stats_text();
	l = find_line(s, "queue held ");
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "paused");
	ck_assert_int_eq(get_value(l, "paused", val, sizeof val), 0);
	ck_assert_str_eq(val, "1");
	ck_assert_str_eq(strstr(l, " reason="), " reason=paused by uid 1000 (RESUME to "
	    "go on)");
	free(l);
	free(s);
	q->paused_by = (uid_t)-1;
	s = stats_text();
	l = find_line(s, "queue held ");
	ck_assert_str_eq(strstr(l, " reason="), " reason=paused by its config (RESUME "
	    "to go on)");
	free(l);
	free(s);
	/* A failed queue says so first: no worker could run its jobs anyway. */
	q->failed_reason = strdup("cannot start");
	s = stats_text();
	l = find_line(s, "queue held ");
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "failed");
	free(l);
	free(s);
	free_all();
}
END_TEST

/* The respawn timer is only ever looked at here, never run. */
static void
never_cb(evutil_socket_t fd, short events, void *arg)
{
	abort();
}

/* Workers restarted with growing delays: state=backoff with the last death as reason. */
START_TEST(test_queue_backoff)
{
	struct event_base	*base = event_base_new();
	struct queue		*q = add_queue("crashy", "echo");
	struct timeval		 tv = { 60, 0 };
	char			*s, *l, val[32];

	ck_assert_ptr_nonnull(base);
	q->sv.respawn_ev = evtimer_new(base, never_cb, NULL);
	ck_assert_ptr_nonnull(q->sv.respawn_ev);
	snprintf(q->last_death, sizeof q->last_death, "worker 4242: killed by signal 9\n");

	/* Not pending: still running. */
	s = stats_text();
	l = find_line(s, "queue crashy ");
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "running");
	ck_assert_ptr_null(strstr(l, "reason="));
	free(l);
	free(s);

	ck_assert_int_eq(evtimer_add(q->sv.respawn_ev, &tv), 0);
	q->sv.respawn_fails = 3;
	q->sv.respawn_at = now_ms() + 60000;
	s = stats_text();
	l = find_line(s, "queue crashy ");
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "backoff");
	ck_assert_ptr_nonnull(strstr(l, " reason=workers keep dying young (3 in a row; "
	    "next start in "));
	ck_assert_ptr_nonnull(strstr(l, " ms); last: worker 4242: killed by signal 9 "));
	free(l);
	free(s);

	/* failed wins over backoff, with its own reason. */
	q->failed_reason = strdup("cannot start");
	s = stats_text();
	l = find_line(s, "queue crashy ");
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "failed");
	ck_assert_str_eq(strstr(l, " reason="), " reason=cannot start");
	free(l);
	free(s);

	free_all();	/* frees respawn_ev, before its base */
	event_base_free(base);
}
END_TEST

/* A removed queue shows as removing while it holds anything, then disappears. */
START_TEST(test_queue_removed)
{
	struct queue	*q = add_queue("old", "echo");
	struct queue	*keep = add_queue("new", "echo");
	struct job	*j;
	struct worker	*w;
	char		*s, *l, val[32];

	(void)keep;
	q->removed = 1;
	add_slots(q, 2);
	/* Empty, nothing running, no worker: gone from STATS. */
	s = stats_text();
	ck_assert_int_eq(count_lines(s), 2);
	ck_assert_ptr_null(find_line(s, "queue old "));
	ck_assert_ptr_nonnull((l = find_line(s, "queue new ")));
	free(l);
	free(s);

	/* A waiting job keeps it. */
	j = job_new(q, "abc", 3);
	ck_assert_ptr_nonnull(j);
	j->id = job_next_id();
	job_table_add(j);
	queue_push(q, j);
	s = stats_text();
	l = find_line(s, "queue old ");
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(get_value(l, "state", val, sizeof val), 0);
	ck_assert_str_eq(val, "removing");
	free(l);
	free(s);
	j = queue_pop(q);
	job_table_remove(j);
	job_free(j);

	/* So does a job running. */
	q->running = 1;
	s = stats_text();
	ck_assert_ptr_nonnull((l = find_line(s, "queue old ")));
	free(l);
	free(s);
	q->running = 0;

	/* And a worker still there, which is listed too. */
	w = add_worker(q, 1, getpid(), WORKER_STOPPING);
	s = stats_text();
	ck_assert_ptr_nonnull((l = find_line(s, "queue old ")));
	free(l);
	ck_assert_ptr_nonnull((l = find_line(s, "worker old ")));
	free(l);
	free(s);
	q->workers[1] = NULL;
	free(w);
	s = stats_text();
	ck_assert_ptr_null(find_line(s, "queue old "));
	free(s);
	free_all();
}
END_TEST

/* One line per worker, after all queue lines, with each worker state named. */
START_TEST(test_workers)
{
	struct queue	*a = add_queue("a", "echo");
	struct queue	*b = add_queue("b", "sleep");
	struct worker	*w;
	char		*s, *l, want[256];
	const pid_t	 nopid = 2147483600;	/* above any pid_max: no /proc entry */
	int		 i;

	add_slots(a, 4);
	add_slots(b, 6);
	w = add_worker(a, 0, getpid(), WORKER_READY);
	w->jobs_done = 12;
	w = add_worker(a, 2, nopid, WORKER_READY);
	w->ninflight = 2;
	w->jobs_done = 3;
	add_worker(a, 3, nopid, WORKER_STARTING);
	add_worker(b, 0, nopid, WORKER_STOPPING);
	w = add_worker(b, 1, nopid, WORKER_RETIRING);
	w->leave = WORKER_RETIRED;
	w = add_worker(b, 2, nopid, WORKER_GONE);
	w->leave = WORKER_RETIRED;
	/* Half-ended (reaped, or at EOF), or let go with its job pipe closed since. */
	add_worker(b, 3, nopid, WORKER_EXITED);
	w = add_worker(b, 4, nopid, WORKER_CLOSED);
	w->leave = WORKER_SIGNALLED;
	w = add_worker(b, 5, nopid, WORKER_STOPPING);
	w->leave = WORKER_RETIRED;
	s = stats_text();
	/* The daemon, two queues, nine workers (the empty slot a[1] has no line). */
	ck_assert_int_eq(count_lines(s), 1 + 2 + 9);
	l = line_n(s, 3);
	ck_assert_int_eq(strncmp(l, "worker a pid=", 13), 0);
	ck_assert_uint_eq(get_ull(l, "pid"), (unsigned long long)getpid());
	ck_assert_int_eq(strstr(l, " state=idle jobs=12 inflight=0 rss_kib=") != NULL, 1);
	/* Our own resident set is not empty, and this test has used some CPU. */
	ck_assert_uint_gt(get_ull(l, "rss_kib"), 0);
	ck_assert_ptr_nonnull(strstr(l, " job=0 age_us=0"));
	free(l);
	{
		/* The others have no /proc entry: rss_kib=0. */
		static const char	*rest[] = {
			"a state=busy jobs=3 inflight=2",
			"a state=starting jobs=0 inflight=0",
			"b state=stopping jobs=0 inflight=0",
			"b state=retiring jobs=0 inflight=0",
			"b state=dead jobs=0 inflight=0",
			"b state=stopping jobs=0 inflight=0",
			"b state=stopping jobs=0 inflight=0",
			"b state=retiring jobs=0 inflight=0",
		};
		char			 q[2];

		for (i = 0; i < (int)(sizeof rest / sizeof rest[0]); i++) {
			l = line_n(s, 4 + i);
			q[0] = rest[i][0];
			q[1] = '\0';
			snprintf(want, sizeof want, "worker %s pid=%ld %s rss_kib=0 "
			    "cpu_us=0 job=0 age_us=0", q, (long)nopid, rest[i] + 2);
			ck_assert_str_eq(l, want);
			free(l);
		}
	}
	free(s);
	/* A queue's workers= is its number of slots. */
	s = stats_text();
	l = find_line(s, "queue a ");
	ck_assert_uint_eq(get_ull(l, "workers"), 4);
	free(l);
	l = find_line(s, "queue b ");
	ck_assert_uint_eq(get_ull(l, "workers"), 6);
	free(l);
	free(s);
	free_all();
}
END_TEST

/* A value of a line as a double. */
static double
get_double(const char *line, const char *key)
{
	char	val[64], *end;
	double	v;

	ck_assert_msg(get_value(line, key, val, sizeof val) == 0, "no %s= in %s", key, line);
	v = strtod(val, &end);
	ck_assert_msg(*val != '\0' && *end == '\0', "%s=%s is not a number", key, val);
	return (v);
}

/*
 * The lifecycle listener fills the distributions: a start adds its wait (from run_at
 * to the start), an attempt's end its run time; the queue line prints their quantiles.
 */
START_TEST(test_latency)
{
	struct queue		*q = add_queue("lat", "sleep");
	struct job		*j = job_new(q, "x", 1);
	struct job_change	 ch;
	char			*s, *l;
	int			 i;

	ck_assert_ptr_nonnull(j);
	/* 90 jobs wait 20 ms and run 200 ms, 10 wait 2 s and run 3 s. */
	for (i = 0; i < 100; i++) {
		j->run_at = 1000000;
		ch = (struct job_change){ .j = j, .what = JOB_EV_STARTED,
		    .from = JOB_RUNNING, .at_us = 1000000 + (i < 90 ? 20000 : 2000000) };
		stats_job_changed(&ch);
		ch = (struct job_change){ .j = j, .what = JOB_DONE, .from = JOB_RUNNING,
		    .ran_us = i < 90 ? 200000 : 3000000 };
		stats_job_changed(&ch);
	}
	/* A start before its run_at (a delayed job run early by a lost heap) waits 0. */
	j->run_at = 5000000;
	ch = (struct job_change){ .j = j, .what = JOB_EV_STARTED, .at_us = 4000000 };
	stats_job_changed(&ch);
	/* Changes that are no attempt's end (ran_us 0) add no run time. */
	ch = (struct job_change){ .j = j, .what = JOB_CANCELLED, .from = JOB_RUNNING };
	stats_job_changed(&ch);
	ck_assert_uint_eq(q->st.wait.n, 101);
	ck_assert_uint_eq(q->st.run.n, 100);
	ck_assert_uint_eq(q->done, 100);
	s = stats_text();
	l = find_line(s, "queue lat ");
	ck_assert_ptr_nonnull(l);
	ck_assert_uint_eq(get_ull(l, "wait_count"), 101);
	ck_assert_uint_eq(get_ull(l, "run_count"), 100);
	ck_assert_uint_eq(get_ull(l, "wait_p50_us"), hist_quantile(&q->st.wait, 0.5));
	ck_assert_uint_eq(get_ull(l, "wait_p90_us"), hist_quantile(&q->st.wait, 0.9));
	ck_assert_uint_eq(get_ull(l, "wait_p99_us"), hist_quantile(&q->st.wait, 0.99));
	ck_assert_uint_eq(get_ull(l, "wait_p999_us"), hist_quantile(&q->st.wait, 0.999));
	ck_assert_uint_eq(get_ull(l, "wait_max_us"), 2000000);
	ck_assert_uint_eq(get_ull(l, "run_max_us"), 3000000);
	/* Within the histogram's error of the values put in. */
	ck_assert_uint_ge(get_ull(l, "wait_p50_us"), 20000 * (1 - HIST_REL_ERROR));
	ck_assert_uint_le(get_ull(l, "wait_p50_us"), 20000 * (1 + HIST_REL_ERROR));
	ck_assert_uint_ge(get_ull(l, "run_p50_us"), 200000 * (1 - HIST_REL_ERROR));
	ck_assert_uint_le(get_ull(l, "run_p50_us"), 200000 * (1 + HIST_REL_ERROR));
	ck_assert_uint_ge(get_ull(l, "run_p99_us"), 3000000 * (1 - HIST_REL_ERROR));
	ck_assert_uint_le(get_ull(l, "run_p99_us"), 3000000);
	free(l);
	free(s);
	job_free(j);
	free_all();
}
END_TEST

/* retry_wait= follows jobs into and out of their backoff. */
START_TEST(test_retry_wait_count)
{
	struct queue		*q = add_queue("rw", "echo");
	struct job		*j = job_new(q, "x", 1);
	struct job_change	 ch;
	char			*s, *l;

	ck_assert_ptr_nonnull(j);
	ch = (struct job_change){ .j = j, .what = JOB_RETRY_WAIT, .from = JOB_RUNNING,
	    .ran_us = 10 };
	stats_job_changed(&ch);
	stats_job_changed(&ch);
	s = stats_text();
	l = find_line(s, "queue rw ");
	ck_assert_uint_eq(get_ull(l, "retry_wait"), 2);
	ck_assert_uint_eq(get_ull(l, "retried"), 2);
	ck_assert_uint_eq(get_ull(l, "run_count"), 2);
	free(l);
	free(s);
	/* One is queued again when due, one is cancelled while it waits. */
	ch = (struct job_change){ .j = j, .what = JOB_QUEUED, .from = JOB_RETRY_WAIT };
	stats_job_changed(&ch);
	ch = (struct job_change){ .j = j, .what = JOB_CANCELLED, .from = JOB_RETRY_WAIT };
	stats_job_changed(&ch);
	s = stats_text();
	l = find_line(s, "queue rw ");
	ck_assert_uint_eq(get_ull(l, "retry_wait"), 0);
	free(l);
	free(s);
	job_free(j);
	free_all();
}
END_TEST

/* The throughput rates: the jobs ended per second, decayed over 1, 5 and 15 minutes. */
START_TEST(test_throughput)
{
	struct queue	*q = add_queue("tp", "echo");
	char		*s, *l;
	double		 r1, r5, r15, want1;
	int		 i;

	/* 100 jobs/s for a minute (12 ticks of 5 s). */
	for (i = 0; i < 12; i++) {
		q->done += 400;
		q->failed += 50;
		q->cancelled += 50;
		stats_tick(q);
	}
	s = stats_text();
	l = find_line(s, "queue tp ");
	r1 = get_double(l, "throughput_1m");
	r5 = get_double(l, "throughput_5m");
	r15 = get_double(l, "throughput_15m");
	/* After one window a constant rate is reached to 1 - 1/e (the load average's). */
	want1 = 100 * (1 - exp(-1.0));
	ck_assert_msg(r1 > want1 - 0.5 && r1 < want1 + 0.5, "1m %g, want %g", r1, want1);
	ck_assert_msg(r5 > 100 * (1 - exp(-0.2)) - 0.5 && r5 < 100 * (1 - exp(-0.2)) + 0.5,
	    "5m %g", r5);
	ck_assert(r15 < r5 && r5 < r1);
	free(l);
	free(s);
	/* Nothing more ends: the rates decay. */
	stats_tick(q);
	s = stats_text();
	l = find_line(s, "queue tp ");
	ck_assert(get_double(l, "throughput_1m") < r1);
	free(l);
	free(s);
	free_all();
}
END_TEST

/* oldest_wait_us: the longest a ready job has waited, from its run_at. */
START_TEST(test_oldest_wait)
{
	struct queue	*q = add_queue("old", "echo");
	struct job	*a, *b;
	uint64_t	 t0, t1, got;
	char		*s, *l;

	ck_assert_uint_eq(queue_oldest_wait_us(q, now_us()), 0);
	a = job_new(q, "a", 1);
	b = job_new(q, "b", 1);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	a->id = job_next_id();
	b->id = job_next_id();
	job_table_add(a);
	job_table_add(b);
	/* b became ready 3 s ago (it was due then), a just now, behind it. */
	t0 = now_us();
	b->run_at = t0 - 3000000;
	queue_push(q, b);
	queue_push(q, a);
	ck_assert_int_eq(b->state, JOB_QUEUED);
	ck_assert_uint_ge(a->run_at, t0);
	s = stats_text();
	t1 = now_us();
	l = find_line(s, "queue old ");
	got = get_ull(l, "oldest_wait_us");
	ck_assert_uint_ge(got, 3000000);
	ck_assert_uint_le(got, t1 - t0 + 3000000);
	free(l);
	free(s);
	ck_assert_uint_eq(queue_oldest_wait_us(q, t0 + 1000), 3001000);
	ck_assert_ptr_eq(queue_pop(q), b);
	/* a alone: its own wait. */
	ck_assert_uint_eq(queue_oldest_wait_us(q, a->run_at + 5), 5);
	ck_assert_ptr_eq(queue_pop(q), a);
	ck_assert_uint_eq(queue_oldest_wait_us(q, t0), 0);
	job_table_remove(a);
	job_table_remove(b);
	job_free(a);
	job_free(b);
	free_all();
}
END_TEST

/* A busy worker names the job it runs (the head of its in-flight list) and its age. */
START_TEST(test_worker_job)
{
	struct queue	*q = add_queue("wj", "sleep");
	struct worker	*w;
	struct job	*j = job_new(q, "x", 1);
	uint64_t	 t0, t1, age;
	char		*s, *l, want[64];

	ck_assert_ptr_nonnull(j);
	j->id = 4242;
	add_slots(q, 1);
	w = add_worker(q, 0, 2147483600, WORKER_READY);
	TAILQ_INSERT_TAIL(&w->inflight, j, entry);
	w->ninflight = 1;
	t0 = now_us();
	j->run_at = t0 - 1500000;	/* running: since when */
	s = stats_text();
	t1 = now_us();
	l = find_line(s, "worker wj ");
	ck_assert_ptr_nonnull(l);
	snprintf(want, sizeof want, " state=busy jobs=0 inflight=1 ");
	ck_assert_ptr_nonnull(strstr(l, want));
	ck_assert_uint_eq(get_ull(l, "job"), 4242);
	age = get_ull(l, "age_us");
	ck_assert_uint_ge(age, 1500000);
	ck_assert_uint_le(age, t1 - t0 + 1500000);
	free(l);
	free(s);
	TAILQ_REMOVE(&w->inflight, j, entry);
	job_free(j);
	free_all();
}
END_TEST

/* A worker that is this process shows its CPU time. */
START_TEST(test_worker_cpu)
{
	struct queue	*q = add_queue("cpu", "echo");
	volatile uint64_t x = 0;
	uint64_t	 i;
	char		*s, *l;

	/* Burn at least a clock tick (10 ms). */
	for (i = 0; i < 300000000 && x < 1; i++) {
		struct proc_usage	u;

		if (i % 1000000 == 0 && stats_proc_usage(getpid(), &u) == 0 &&
		    u.cpu_us >= 20000)
			break;
	}
	add_slots(q, 1);
	add_worker(q, 0, getpid(), WORKER_READY);
	s = stats_text();
	l = find_line(s, "worker cpu ");
	ck_assert_uint_ge(get_ull(l, "cpu_us"), 10000);
	free(l);
	free(s);
	free_all();
}
END_TEST

static Suite *
stats_suite(void)
{
	Suite	*s = suite_create("stats");
	TCase	*tc = tcase_create("core");

	tcase_add_test(tc, test_daemon_line);
	tcase_add_test(tc, test_uptime);
	tcase_add_test(tc, test_daemon_counts);
	tcase_add_test(tc, test_queue_line);
	tcase_add_test(tc, test_handler_encoded);
	tcase_add_test(tc, test_queue_failed);
	tcase_add_test(tc, test_queue_paused);
	tcase_add_test(tc, test_queue_backoff);
	tcase_add_test(tc, test_queue_removed);
	tcase_add_test(tc, test_workers);
	tcase_add_test(tc, test_latency);
	tcase_add_test(tc, test_retry_wait_count);
	tcase_add_test(tc, test_throughput);
	tcase_add_test(tc, test_oldest_wait);
	tcase_add_test(tc, test_worker_job);
	tcase_add_test(tc, test_worker_cpu);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(stats_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? 0 : 1);
}
