/*
 * check_events.c: unit tests for daemon/events.c, the event ring and its subscribers.
 * The ring wraps and says what it still holds; texts are cut and an overwritten one
 * is said lost; the EVENT line and the JSON object are exactly as lib/PROTOCOL.md
 * says; type globs; the lifecycle's transitions map to the documented events, once;
 * and subscribers (a connection made by hand on a socketpair, whose output is read
 * straight from its bufferevent): since=all and since=SEQ, a gap with the right
 * range when the ring overtook a cursor, one stalled subscriber losing events while
 * another loses none, queue and type filters, another user's jobs hidden, until=now,
 * and a restart (another epoch) reported as a gap.
 */

#include "autoconf.h"

#include <sys/socket.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "events.h"
#include "proto.h"

#define MAX_QUEUES	4

static struct config	 test_cf;
static struct queue	*qarr[MAX_QUEUES];
static struct event_base *base;

static struct queue *
add_queue(const char *name)
{
	struct queue_config	qc;
	struct queue		*q;

	memset(&qc, 0, sizeof qc);
	qc.name = (char *)name;
	qc.handler = (char *)"echo";
	qc.max_jobs = 100;
	qc.max_bytes = 1 << 20;
	qc.batch = 1;
	q = queue_create(&qc);
	ck_assert_ptr_nonnull(q);
	q->idx = (uint16_t)nqueues;
	qarr[nqueues++] = q;
	queues = qarr;
	return (q);
}

static void
setup(void)
{
	memset(&test_cf, 0, sizeof test_cf);
	test_cf.max_output = 4 << 20;
	test_cf.keep_results = 100;
	test_cf.keep_results_bytes = 1 << 20;
	master_config = &test_cf;
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	add_queue("default");
	add_queue("other");
}

static void
teardown(void)
{
	int	i;

	events_free();
	for (i = 0; i < nqueues; i++)
		queue_free(qarr[i]);
	nqueues = 0;
	job_table_free();
	event_base_free(base);
}

/* A pool event of queue qi, with a pid to tell them apart. */
static void
pub(int qi, pid_t pid)
{
	events_publish_queue(EVENTS_WORKER_STARTED, qi, pid, 0, NULL);
}

/* A connection of uid on a socketpair; the other end is never read. */
static struct conn *
conn_make(uid_t uid)
{
	struct conn	*c = calloc(1, sizeof *c);
	int		 sv[2];

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	c->bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(c->bev);
	c->uid = uid;
	c->refs = 1;
	close(sv[1]);
	return (c);
}

static void
conn_drop(struct conn *c)
{
	events_unsubscribe(c);
	bufferevent_free(c->bev);
	free(c);
}

/* Subscribe c with the request line req (without its newline): events_subscribe's. */
static int
subscribe(struct conn *c, const char *line, int admin)
{
	struct proto_request	 req;
	char			 buf[512];
	const char		*cause;

	snprintf(buf, sizeof buf, "%s\n", line);
	ck_assert_int_eq(proto_request_decode(buf, strlen(buf), 1024, &req),
	    (int)strlen(buf));
	ck_assert_int_eq(req.cmd, PROTO_EVENTS);
	return (events_subscribe(c, &req, admin, &cause));
}

/* What c was sent, taken out of its output (NUL-terminated, malloc'd). */
static char *
taken(struct conn *c)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 n = evbuffer_get_length(out);
	char		*s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	/* A socket bufferevent keeps the front of its output frozen for itself. */
	evbuffer_unfreeze(out, 1);
	ck_assert_int_eq(evbuffer_remove(out, s, n), (int)n);
	evbuffer_freeze(out, 1);
	s[n] = '\0';
	return (s);
}

/* How many lines of s start with prefix. */
static int
count(const char *s, const char *prefix)
{
	const char	*p = s;
	int		 n = 0;

	while (*p != '\0') {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		if ((p = strchr(p, '\n')) == NULL)
			break;
		p++;
	}
	return (n);
}

START_TEST(test_ring_wraps)
{
	const struct events_rec	*r;
	int			 i;

	ck_assert_int_eq(events_init(16), 0);
	ck_assert_uint_eq(events_last_seq(), 0);
	ck_assert_uint_eq(events_oldest_seq(), 1);
	ck_assert_ptr_null(events_get(1));
	for (i = 1; i <= 40; i++)
		pub(0, i);
	ck_assert_uint_eq(events_last_seq(), 40);
	ck_assert_uint_eq(events_oldest_seq(), 25);
	ck_assert_ptr_null(events_get(24));
	ck_assert_ptr_null(events_get(41));
	for (i = 25; i <= 40; i++) {
		r = events_get((uint64_t)i);
		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r->seq, (uint64_t)i);
		ck_assert_int_eq(r->pid, i);
		ck_assert_int_eq(r->type, EVENTS_WORKER_STARTED);
	}
}
END_TEST

START_TEST(test_text_cut_and_lost)
{
	struct evbuffer		*b = evbuffer_new();
	const struct events_rec	*r;
	const char		*t;
	char			 big[300], line[512];
	uint32_t		 len;
	size_t			 n;
	int			 i;

	ck_assert_int_eq(events_init(512), 0);	/* 64 text slots */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	events_publish_queue(EVENTS_DAEMON_STOPPING, -1, 0, 0, big);
	r = events_get(1);
	t = events_text(r, &len);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(len, 116);
	/* 64 more texts take every slot: the first event's is gone, and it says so. */
	for (i = 0; i < 64; i++)
		events_publish_queue(EVENTS_WORKER_RECYCLED, 0, 1, 0, "rss");
	ck_assert_ptr_nonnull(events_get(1));
	ck_assert_ptr_null(events_text(events_get(1), &len));
	ck_assert_ptr_nonnull(events_text(events_get(65), &len));
	events_format(b, events_get(1));
	n = evbuffer_remove(b, line, sizeof line - 1);
	line[n] = '\0';
	ck_assert_ptr_nonnull(strstr(line, " type=daemon.stopping reason_lost=1\n"));
	events_format(b, events_get(65));
	n = evbuffer_remove(b, line, sizeof line - 1);
	line[n] = '\0';
	ck_assert_ptr_nonnull(strstr(line, " type=worker.recycled queue=default pid=1 "
	    "reason=rss\n"));
	evbuffer_free(b);
}
END_TEST

START_TEST(test_line_and_json)
{
	struct evbuffer		*b = evbuffer_new();
	struct events_rec	 r;
	char			 s[1024];
	size_t			 n;

	ck_assert_int_eq(events_init(64), 0);
	events_publish(EVENTS_JOB_FAILED, &(struct events_info){ .job = 42, .queue = 1,
	    .pid = 4123, .dur_ms = 17, .text = "exit 3: bad\n100% \"x\"", .textlen = 20 });
	r = *events_get(1);
	r.time_us = 1733480000123456ULL;
	r.attempt = 2;
	events_format(b, &r);
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	ck_assert_str_eq(s, "EVENT seq=1 time=1733480000.123456 type=job.failed "
	    "queue=other job=42 attempt=2 pid=4123 ms=17 error=exit 3: bad%0A100%25 "
	    "\"x\"\n");
	events_format_json(b, &r);
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	snprintf(s + 600, 400, "{\"epoch\":%llu,\"seq\":1,\"time\":1733480000.123456,"
	    "\"type\":\"job.failed\",\"queue\":\"other\",\"job\":42,\"attempt\":2,"
	    "\"pid\":4123,\"ms\":17,\"error\":\"exit 3: bad\\u000a100%% \\\"x\\\"\"}\n",
	    (unsigned long long)events_epoch());
	ck_assert_str_eq(s, s + 600);

	/* A worker killed by a signal, a retry's delay, a recovered job. */
	events_publish_queue(EVENTS_WORKER_EXITED, 0, 77, 9, NULL);
	events_format(b, events_get(2));
	events_publish(EVENTS_JOB_RETRYING, &(struct events_info){ .job = 5,
	    .queue = 0, .aux = 250 });
	events_format(b, events_get(3));
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	ck_assert_ptr_nonnull(strstr(s, "type=worker.exited queue=default pid=77 "
	    "signal=9\n"));
	ck_assert_ptr_nonnull(strstr(s, "type=job.retrying queue=default job=5 attempt=0 "
	    "delay_ms=250\n"));
	evbuffer_free(b);
}
END_TEST

START_TEST(test_type_glob)
{
	uint32_t	jobs = (1u << 8) - 1;

	ck_assert_uint_eq(events_type_mask("job.*"), jobs);
	ck_assert_uint_eq(events_type_mask("*"), (1u << EVENTS_NTYPES) - 1);
	ck_assert_uint_eq(events_type_mask("*.started"),
	    (1u << EVENTS_JOB_STARTED) | (1u << EVENTS_WORKER_STARTED));
	ck_assert_uint_eq(events_type_mask("job.[ft]*"), (1u << EVENTS_JOB_FAILED) |
	    (1u << EVENTS_JOB_TIMEOUT));
	ck_assert_uint_eq(events_type_mask("queue.full"), 1u << EVENTS_QUEUE_FULL);
	ck_assert_uint_eq(events_type_mask("nothing"), 0);
	ck_assert_int_eq(events_type_find("daemon.reloaded"), EVENTS_DAEMON_RELOADED);
	ck_assert_int_eq(events_type_find("gap"), -1);
}
END_TEST

/* Publish what job_change() would tell the listener. */
static void
change(struct job *j, int what, int from, int outcome)
{
	struct job_change	ch = { .j = j, .what = (uint8_t)what, .from = (uint8_t)from,
				    .outcome = (uint8_t)outcome, .pid = 9, .ran_ms = 3,
				    .err = "boom", .errlen = 4, .text = "boom; last", .len = 10,
				    .delay_ms = 100, .attempt = 1 };

	/* An accept's text is its idempotency token: none here (test_idem_in_events). */
	if (what == JOB_QUEUED || what == JOB_DELAYED) {
		ch.text = NULL;
		ch.len = 0;
	}
	events_job_changed(&ch);
}

/* A job accepted with an idempotency token: job.queued says idem=, last. */
START_TEST(test_idem_in_events)
{
	struct evbuffer	*b = evbuffer_new();
	struct job	*j = job_new(qarr[0], "x", 1);
	char		 s[1024];
	size_t		 n;

	ck_assert_ptr_nonnull(j);
	j->id = 5;
	ck_assert_int_eq(events_init(64), 0);
	events_job_changed(&(struct job_change){ .j = j, .what = JOB_QUEUED,
	    .from = JOB_NEW, .text = "order-5:a/b", .len = 11 });
	/* Queued again by RETRY: a dead job's text is not a token. */
	events_job_changed(&(struct job_change){ .j = j, .what = JOB_QUEUED,
	    .from = JOB_DEAD, .text = "exit 1", .len = 6 });
	events_format(b, events_get(1));
	events_format(b, events_get(2));
	events_format_json(b, events_get(1));
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	ck_assert_ptr_nonnull(strstr(s, "type=job.queued queue=default job=5 attempt=0 "
	    "idem=order-5:a/b\n"));
	ck_assert_ptr_nonnull(strstr(s, "type=job.queued queue=default job=5 "
	    "attempt=0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\"job\":5,\"attempt\":0,\"idem\":\"order-5:a/b\"}"));
	evbuffer_free(b);
	job_free(j);
}
END_TEST

START_TEST(test_lifecycle_map)
{
	struct job	*j = job_new(qarr[0], "x", 1);
	int		 types[32], n = 0;
	uint64_t	 s;

	ck_assert_ptr_nonnull(j);
	j->id = 7;
	ck_assert_int_eq(events_init(64), 0);
	change(j, JOB_QUEUED, JOB_NEW, 0);		/* job.queued */
	change(j, JOB_DELAYED, JOB_NEW, 0);		/* job.queued (delayed) */
	change(j, JOB_QUEUED, JOB_DELAYED, 0);		/* nothing: it fell due */
	change(j, JOB_EV_STARTED, JOB_RUNNING, 0);	/* job.started */
	change(j, JOB_RETRY_WAIT, JOB_RUNNING, JOB_FAILED); /* job.failed, job.retrying */
	change(j, JOB_QUEUED, JOB_RETRY_WAIT, 0);	/* nothing: backoff over */
	change(j, JOB_DEAD, JOB_RUNNING, JOB_TIMEOUT);	/* job.timeout, job.dead */
	change(j, JOB_QUEUED, JOB_DEAD, 0);		/* job.queued (RETRY) */
	change(j, JOB_DEAD, JOB_QUEUED, 0);		/* job.dead (failed queue) */
	change(j, JOB_DEAD, JOB_NEW, 0);		/* nothing: recovered dead */
	change(j, JOB_DONE, JOB_RUNNING, 0);		/* job.succeeded */
	change(j, JOB_CANCELLED, JOB_QUEUED, 0);	/* job.cancelled */
	for (s = 1; s <= events_last_seq(); s++) {
		ck_assert_uint_eq(events_get(s)->job, 7);
		types[n++] = events_get(s)->type;
	}
	ck_assert_int_eq(n, 11);
	ck_assert_int_eq(types[0], EVENTS_JOB_QUEUED);
	ck_assert_int_eq(types[1], EVENTS_JOB_QUEUED);
	ck_assert_int_eq(types[2], EVENTS_JOB_STARTED);
	ck_assert_int_eq(types[3], EVENTS_JOB_FAILED);
	ck_assert_int_eq(types[4], EVENTS_JOB_RETRYING);
	ck_assert_uint_eq(events_get(5)->aux, 100);
	ck_assert_int_eq(types[5], EVENTS_JOB_TIMEOUT);
	ck_assert_int_eq(types[6], EVENTS_JOB_DEAD);
	ck_assert_int_eq(types[7], EVENTS_JOB_QUEUED);
	ck_assert_int_eq(types[8], EVENTS_JOB_DEAD);
	ck_assert_int_eq(types[9], EVENTS_JOB_SUCCEEDED);
	ck_assert_int_eq(types[10], EVENTS_JOB_CANCELLED);
	ck_assert_int_eq(events_get(4)->pid, 9);
	ck_assert_uint_eq(events_get(4)->dur_ms, 3);
	ck_assert_int_eq(events_get(4)->attempt, 1);
	job_free(j);
}
END_TEST

/* A keyed job's events carry its key: whole up to 12 bytes, its start and length beyond. */
START_TEST(test_key_in_events)
{
	struct evbuffer	*b = evbuffer_new();
	struct job	*j = job_new_key(qarr[0], "x", 1, "example.org", 11);
	struct job	*l = job_new_key(qarr[0], "x", 1, "a\"very-long.example", 19);
	char		 s[2048];
	size_t		 n;

	ck_assert_ptr_nonnull(j);
	ck_assert_ptr_nonnull(l);
	j->id = 8;
	l->id = 9;
	ck_assert_int_eq(events_init(64), 0);
	change(j, JOB_QUEUED, JOB_NEW, 0);
	change(l, JOB_DONE, JOB_RUNNING, 0);
	events_format(b, events_get(1));
	events_format(b, events_get(2));
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	ck_assert_ptr_nonnull(strstr(s, "type=job.queued queue=default job=8 attempt=1 "
	    "pid=9 key=example.org\n"));
	ck_assert_ptr_nonnull(strstr(s, "type=job.succeeded queue=default job=9 "
	    "attempt=1 pid=9 ms=3 key=a\"very-long. key_len=19\n"));
	events_format_json(b, events_get(2));
	n = evbuffer_remove(b, s, sizeof s - 1);
	s[n] = '\0';
	ck_assert_ptr_nonnull(strstr(s, ",\"ms\":3,\"key\":\"a\\\"very-long.\","
	    "\"key_len\":19}\n"));
	evbuffer_free(b);
	job_free(j);
	job_free(l);
}
END_TEST

START_TEST(test_since_and_gap)
{
	struct conn	*c = conn_make(0), *d = conn_make(0), *e = conn_make(0);
	char		*s;
	int		 i;

	ck_assert_int_eq(events_init(16), 0);
	/* until=now before any event: END at once. */
	ck_assert_int_eq(subscribe(c, "EVENTS since=all until=now", 1), 0);
	s = taken(c);
	ck_assert_msg(strstr(s, " seq=0 oldest=1\nEND seq=0\n") != NULL, "%s", s);
	ck_assert_ptr_null(c->sub);
	free(s);
	c->closing = 0;
	for (i = 1; i <= 10; i++)
		pub(0, i);
	/* since=all: the whole ring; since=6: 7 on; both after the OK. */
	ck_assert_int_eq(subscribe(c, "EVENTS since=all until=now", 1), 0);
	s = taken(c);
	ck_assert_int_eq(count(s, "EVENT seq="), 10);
	ck_assert_ptr_nonnull(strstr(s, "OK events epoch="));
	ck_assert_ptr_nonnull(strstr(s, " seq=10 oldest=1\nEVENT seq=1 "));
	ck_assert_ptr_nonnull(strstr(s, "EVENT seq=10 time="));
	ck_assert_ptr_nonnull(strstr(s, "\nEND seq=10\n"));
	ck_assert_ptr_null(c->sub);
	ck_assert_int_eq(c->closing, 1);
	free(s);
	ck_assert_int_eq(subscribe(d, "EVENTS since=6", 1), 0);
	s = taken(d);
	ck_assert_int_eq(count(s, "EVENT seq="), 4);
	ck_assert_ptr_nonnull(strstr(s, "\nEVENT seq=7 "));
	free(s);
	/* The ring moves on 30 events: since=3 lost 4 to 24. */
	for (i = 11; i <= 40; i++)
		pub(0, i);
	ck_assert_int_eq(subscribe(e, "EVENTS since=3 until=now", 1), 0);
	s = taken(e);
	ck_assert_ptr_nonnull(strstr(s, "\nEVENT type=gap reason=overrun first=4 last=24\n"
	    "EVENT seq=25 "));
	ck_assert_int_eq(count(s, "EVENT seq="), 16);
	free(s);
	conn_drop(c);
	conn_drop(d);
	conn_drop(e);
}
END_TEST

START_TEST(test_stalled_subscriber)
{
	struct conn	*slow = conn_make(0), *fast = conn_make(0);
	struct evbuffer	*all = evbuffer_new();
	char		*s, want[128];
	uint64_t	 first, last;
	unsigned long long seen, waiting, lost;
	int		 i;

	/* A backlog of 4 KiB: about 40 lines. */
	test_cf.max_output = 4096;
	ck_assert_int_eq(events_init(256), 0);
	/* STATS names a subscriber by its connection's id, taken when it subscribes. */
	slow->id = 7;
	fast->id = 8;
	ck_assert_int_eq(subscribe(slow, "EVENTS", 1), 0);
	ck_assert_int_eq(subscribe(fast, "EVENTS", 1), 0);
	free(taken(slow));
	free(taken(fast));
	/* The fast one reads after each event; the slow one reads nothing. */
	for (i = 1; i <= 1000; i++) {
		pub(0, i);
		events_writable(fast);
		events_writable(slow);
		s = taken(fast);
		evbuffer_add(all, s, strlen(s));
		free(s);
	}
	s = (char *)evbuffer_pullup(all, -1);
	evbuffer_add(all, "", 1);
	ck_assert_int_eq(count(s, "EVENT seq="), 1000);
	ck_assert_int_eq(count(s, "EVENT type=gap"), 0);
	/* The slow one holds at most its backlog; its cursor waits. */
	ck_assert_uint_le(evbuffer_get_length(bufferevent_get_output(slow->bev)), 4096 + 600);
	s = taken(slow);
	ck_assert_int_gt(count(s, "EVENT seq="), 10);
	/* The lines it got run from 1 without a hole. */
	ck_assert_ptr_nonnull(strstr(s, "EVENT seq=1 "));
	first = (uint64_t)count(s, "EVENT seq=") + 1;
	free(s);
	/* Read now: the ring (256) was overtaken; the gap names exactly what is gone. */
	last = 1000 - 256;
	events_writable(slow);
	s = taken(slow);
	snprintf(want, sizeof want, "EVENT type=gap reason=overrun first=%llu last=%llu\n"
	    "EVENT seq=%llu ", (unsigned long long)first, (unsigned long long)last,
	    (unsigned long long)last + 1);
	ck_assert_msg(strncmp(s, want, strlen(want)) == 0, "got %.200s", s);
	free(s);
	/* STATS counts what it lost. */
	evbuffer_drain(all, evbuffer_get_length(all));
	events_stats(all);
	evbuffer_add(all, "", 1);
	snprintf(want, sizeof want, " events_dropped=%llu subscribers=2",
	    (unsigned long long)(last - first + 1));
	ck_assert_msg(strstr((char *)evbuffer_pullup(all, -1), want) != NULL, "%s",
	    (char *)evbuffer_pullup(all, -1));
	/* And a line per subscriber: the slow one's loss is its own. */
	evbuffer_drain(all, evbuffer_get_length(all));
	events_stats_lines(all);
	evbuffer_add(all, "", 1);
	s = (char *)evbuffer_pullup(all, -1);
	/* The slow one has read as far as its backlog took it: seq + waiting is all. */
	ck_assert_msg(sscanf(s, "subscriber 7 pid=0 uid=0 seq=%llu waiting=%llu "
	    "dropped=%llu\n", &seen, &waiting, &lost) == 3, "%s", s);
	ck_assert_uint_eq(seen + waiting, 1000);
	ck_assert_uint_eq(lost, last - first + 1);
	ck_assert_ptr_nonnull(strstr(s, "\nsubscriber 8 pid=0 uid=0 seq=1000 waiting=0 "
	    "dropped=0\n"));
	evbuffer_free(all);
	conn_drop(slow);
	conn_drop(fast);
}
END_TEST

START_TEST(test_filters_and_owner)
{
	struct conn	*q = conn_make(0), *t = conn_make(0), *other = conn_make(4242);
	struct job	*j = job_new(qarr[1], "x", 1);
	char		*s;

	ck_assert_ptr_nonnull(j);
	j->id = 99;
	j->owner = 0;		/* root's */
	ck_assert_int_eq(events_init(64), 0);
	ck_assert_int_eq(subscribe(q, "EVENTS queue=other", 1), 0);
	ck_assert_int_eq(subscribe(t, "EVENTS type=*.started", 1), 0);
	ck_assert_int_eq(subscribe(other, "EVENTS", 0), 0);
	free(taken(q));
	free(taken(t));
	free(taken(other));
	pub(0, 1);					/* worker.started, default */
	pub(1, 2);					/* worker.started, other */
	change(j, JOB_QUEUED, JOB_NEW, 0);		/* job.queued, other */
	change(j, JOB_EV_STARTED, JOB_RUNNING, 0);	/* job.started, other */
	events_writable(q);
	events_writable(t);
	events_writable(other);
	s = taken(q);
	ck_assert_int_eq(count(s, "EVENT "), 3);
	ck_assert_int_eq(count(s, "EVENT seq=2 "), 1);
	ck_assert_ptr_null(strstr(s, "queue=default"));
	free(s);
	s = taken(t);
	ck_assert_int_eq(count(s, "EVENT "), 3);
	ck_assert_ptr_null(strstr(s, "job.queued"));
	free(s);
	/* Another user: the pool's events, none of root's jobs. */
	s = taken(other);
	ck_assert_int_eq(count(s, "EVENT "), 2);
	ck_assert_ptr_null(strstr(s, "job="));
	free(s);
	job_free(j);
	conn_drop(q);
	conn_drop(t);
	conn_drop(other);
}
END_TEST

START_TEST(test_restart_gap)
{
	struct conn	*c = conn_make(0);
	char		 line[128], *s;

	ck_assert_int_eq(events_init(64), 0);
	pub(0, 1);
	pub(0, 2);
	snprintf(line, sizeof line, "EVENTS since=812 epoch=%llu until=now",
	    (unsigned long long)events_epoch() - 1);
	ck_assert_int_eq(subscribe(c, line, 1), 0);
	s = taken(c);
	snprintf(line, sizeof line, "EVENT type=gap reason=restart epoch=%llu "
	    "first=813\nEVENT seq=1 ", (unsigned long long)events_epoch() - 1);
	ck_assert_msg(strstr(s, line) != NULL, "%s", s);
	ck_assert_int_eq(count(s, "EVENT seq="), 2);
	free(s);
	conn_drop(c);
}
END_TEST

START_TEST(test_decode_errors)
{
	struct proto_request	req;
	const char		*bad[] = { "EVENTS since=x\n", "EVENTS since=1 since=2\n",
				    "EVENTS epoch=3\n", "EVENTS until=later\n", "EVENTS foo\n",
				    "EVENTS queue=a/b\n", "EVENTS type=\n", "EVENTS bar=1\n" };
	const char		*good = "EVENTS since=5 epoch=7 queue=q type=job.* until=now\n";
	size_t			i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(proto_request_decode(bad[i], strlen(bad[i]), 1024, &req),
		    (int)strlen(bad[i]));
		ck_assert_msg(req.cmd == PROTO_INVALID, "%s", bad[i]);
		ck_assert_ptr_nonnull(strstr(req.err, "EVENTS"));
	}
	ck_assert_int_eq(proto_request_decode(good, strlen(good), 1024, &req),
	    (int)strlen(good));
	ck_assert_int_eq(req.cmd, PROTO_EVENTS);
	ck_assert_uint_eq(req.id, 5);
	ck_assert_uint_eq(req.epoch, 7);
	ck_assert_str_eq(req.queue, "q");
	ck_assert_int_eq((int)req.globlen, 5);
	ck_assert_int_eq(req.flags, PROTO_F_SINCE | PROTO_F_EPOCH | PROTO_F_QUEUE |
	    PROTO_F_UNTIL);
}
END_TEST

/* A sink of another kind (the dashboard's): Server-Sent Events into a plain buffer. */
static struct evbuffer *
sse_out(void *arg)
{
	return (arg);
}

static size_t
sse_unsent(void *arg)
{
	return (evbuffer_get_length(arg));
}

static int	sse_flushes, sse_dropped;

static void
sse_flush(void *arg)
{
	(void)arg;
	sse_flushes++;
}

static void
sse_drop(void *arg)
{
	(void)arg;
	sse_dropped++;
}

static const struct events_sink sse_sink = {
	sse_out, sse_unsent, sse_flush, NULL, sse_drop, 1
};

/* Take what b holds as a string (malloc'd). */
static char *
sse_take(struct evbuffer *b)
{
	size_t	 n = evbuffer_get_length(b);
	char	*s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return (s);
}

START_TEST(test_sse_sink)
{
	struct evbuffer		*b = evbuffer_new();
	struct events_sub	*sub;
	struct events_want	 want;
	char			*s, line[128];
	int			 i;

	ck_assert_int_eq(events_init(16), 0);
	for (i = 1; i <= 5; i++)
		pub(0, i);
	/* Resumed after seq 2 of this epoch (Last-Event-ID): 3, 4 and 5, with their ids. */
	memset(&want, 0, sizeof want);
	want.types = (1u << EVENTS_NTYPES) - 1;
	want.admin = 1;
	want.since = EVENTS_SINCE_SEQ;
	want.seq = 2;
	want.epoch = events_epoch();
	want.from = "http";
	sub = events_sub_new(&sse_sink, b, &want);
	ck_assert_ptr_nonnull(sub);
	events_sub_writable(sub);
	ck_assert_int_gt(sse_flushes, 0);
	s = sse_take(b);
	snprintf(line, sizeof line, "id: %llu:3\ndata: {\"epoch\":%llu,\"seq\":3,",
	    (unsigned long long)events_epoch(), (unsigned long long)events_epoch());
	ck_assert_msg(strncmp(s, line, strlen(line)) == 0, "%s", s);
	ck_assert_msg(strstr(s, "\"type\":\"worker.started\",\"queue\":\"default\","
	    "\"pid\":5}\n\n") != NULL, "%s", s);
	ck_assert_msg(strstr(s, ":2\n") == NULL, "%s", s);
	free(s);
	/* The ring (16) overtakes it while it is not fed: a gap, then what is held. */
	for (i = 0; i < 40; i++)
		pub(0, 100 + i);
	events_sub_writable(sub);
	s = sse_take(b);
	snprintf(line, sizeof line, "id: %llu:29\ndata: {\"type\":\"gap\",\"reason\":"
	    "\"overrun\",\"first\":6,\"last\":29}\n\n", (unsigned long long)events_epoch());
	ck_assert_msg(strncmp(s, line, strlen(line)) == 0, "%s", s);
	ck_assert_msg(strstr(s, ":45\ndata: ") != NULL, "%s", s);
	free(s);
	ck_assert_uint_eq(events_dropped(), 24);
	/* STATS names it with where it came from. */
	events_stats_lines(b);
	s = sse_take(b);
	ck_assert_msg(strstr(s, "seq=45 waiting=0 dropped=24 from=http\n") != NULL, "%s", s);
	free(s);
	events_sub_free(sub);
	ck_assert_uint_eq(events_subscribers(), 0);

	/* Resumed from another start: a restart's gap first. */
	want.epoch = 12345;
	want.seq = 9;
	sub = events_sub_new(&sse_sink, b, &want);
	events_sub_writable(sub);
	s = sse_take(b);
	snprintf(line, sizeof line, "data: {\"type\":\"gap\",\"reason\":\"restart\","
	    "\"epoch\":12345,\"first\":10}\n\n");
	ck_assert_msg(strncmp(s, line, strlen(line)) == 0, "%s", s);
	free(s);
	/* events_free() frees it under its owner, and says so. */
	events_free();
	ck_assert_int_eq(sse_dropped, 1);
	evbuffer_free(b);
}
END_TEST

static Suite *
events_suite(void)
{
	Suite	*s = suite_create("events");
	TCase	*tc = tcase_create("events");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ring_wraps);
	tcase_add_test(tc, test_text_cut_and_lost);
	tcase_add_test(tc, test_line_and_json);
	tcase_add_test(tc, test_type_glob);
	tcase_add_test(tc, test_lifecycle_map);
	tcase_add_test(tc, test_key_in_events);
	tcase_add_test(tc, test_idem_in_events);
	tcase_add_test(tc, test_since_and_gap);
	tcase_add_test(tc, test_stalled_subscriber);
	tcase_add_test(tc, test_filters_and_owner);
	tcase_add_test(tc, test_restart_gap);
	tcase_add_test(tc, test_sse_sink);
	tcase_add_test(tc, test_decode_errors);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(events_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
