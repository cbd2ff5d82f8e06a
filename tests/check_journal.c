/*
 * check_journal.c: unit tests for journal.c: the checksum, what a restart gets back
 * (queued, delayed, dead, retried, finished and cancelled jobs, the next id), damaged
 * files, jobs of queues the config no longer has, the lock, compaction, and that the
 * durable batch follows what was handed to the writer, at each fsync policy; jobs keep
 * their owner (and records from before owners are root's).
 */

#include "autoconf.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "jobpoold.h"
#include "journal.h"
#include "log.h"
#include "priv.h"

#define WAIT_MS	10000
#include "checkloop.h"

static struct config		 cf;
static struct queue_config	 qcs[2];
static struct queue		*qarr[2];
static char			 dir[64];

/* A fresh "daemon": the config, one or two queues, no workers, an empty job table. */
static void
daemon_up(int nq)
{
	int	i;

	for (i = 0; i < nq; i++) {
		memset(&qcs[i], 0, sizeof qcs[i]);
		qcs[i].name = (char *)(i == 0 ? "q" : "other");
		qcs[i].handler = (char *)"echo";
		qcs[i].max_jobs = 1000000;
		qcs[i].max_bytes = 1 << 30;
		qcs[i].prio_min = -5;
		qcs[i].prio_max = 5;
		qcs[i].batch = 1;
		qcs[i].retries = 3;
		ck_assert_ptr_nonnull(qarr[i] = queue_create(&qcs[i]));
		qarr[i]->idx = (uint16_t)i;
	}
	queues = qarr;
	nqueues = nq;
	master_config = &cf;
}

static void
daemon_down(void)
{
	int	i;

	journal_close();
	for (i = 0; i < nqueues; i++)
		queue_free(queues[i]);
	nqueues = 0;
	job_table_free();
	dispatch_free();
}

static void
journal_up(int nq)
{
	char	*cause = NULL;

	daemon_up(nq);
	ck_assert_msg(journal_open(&cf, &cause) == 0, "journal_open: %s", cause);
	ck_assert_int_eq(journal_on, 1);
}

/* One pass of the event loop: this pass's records go to the writer. */
static void
pass(void)
{
	event_base_loop(master_base, EVLOOP_NONBLOCK);
}

/* Hand the records over and wait until the writer says every batch is done. */
static void
settle(void)
{
	pass();
	run_until(journal_durable() + 1 >= journal_batch());
}

static struct job *
submit(struct queue *q, const char *data, uint64_t delay_ms)
{
	struct job	*j = job_new(q, data, strlen(data));

	ck_assert_ptr_nonnull(j);
	j->prio = 2;
	j->timeout_ms = 1234;
	if (delay_ms > 0)
		j->run_at = now_ms() + delay_ms;
	dispatch_submit(q, j, NULL);
	return (j);
}

/* Jobs kept for queues the config has not. */
static uint64_t
journal_info_unknown(void)
{
	struct journal_info	ji;

	return (journal_info(&ji) == 0 ? ji.unknown_queue : 0);
}

/*
 * Churn: rounds of 20 jobs that come and go; after each round a pass of the loop, or
 * with wait, the writer's answer too (so that a compaction can follow the last).
 */
static void
churn(int rounds, int wait)
{
	struct job	*j;
	int		 round, i;

	for (round = 0; round < rounds; round++) {
		for (i = 0; i < 20; i++) {
			j = submit(queues[0], "churn churn churn churn churn churn", 0);
			queue_remove(queues[0], j);
			job_finish(j, JOB_DONE, "", 0);
		}
		if (wait)
			settle();
		else
			pass();
	}
}

static int
count_files(const char *suffix)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;
	int		 n = 0;
	size_t		 l;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal.", 8) != 0)
			continue;
		l = strlen(de->d_name);
		if (suffix == NULL ? strchr(de->d_name + 8, '.') == NULL :
		    l > strlen(suffix) && strcmp(de->d_name + l - strlen(suffix), suffix) == 0)
			n++;
	}
	closedir(d);
	return (n);
}

/* The one journal.N file's path. */
static void
the_file(char *buf, size_t size)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;

	buf[0] = '\0';
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal.", 8) == 0 &&
		    strchr(de->d_name + 8, '.') == NULL &&
		    snprintf(buf, size, "%s/%s", dir, de->d_name) >= (int)size)
			buf[0] = '\0';
	}
	closedir(d);
	ck_assert(buf[0] != '\0');
}

static void
setup(void)
{
	strcpy(dir, "/tmp/check_journal.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&cf, 0, sizeof cf);
	cf.journal_dir = dir;
	cf.journal_fsync = CONFIG_FSYNC_ALWAYS;
	cf.journal_fsync_interval_ms = 1000;
	cf.journal_compact_size = 64 << 20;
	cf.keep_results = 100;
	cf.keep_results_bytes = 1 << 20;
	cf.dead_max = 100;
	ck_assert_ptr_nonnull(master_base = event_base_new());
	checkloop_init();
	log_init(LOG_ERR, "check_journal");
}

static void
teardown(void)
{
	char	cmd[128];

	event_free(tick);
	event_base_free(master_base);
	master_base = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_crc32c)
{
	unsigned char	buf[1000];
	uint32_t	c;
	int		i;

	/* The check value of CRC-32C. */
	ck_assert_uint_eq(journal_crc32c(0, "123456789", 9), 0xE3069283U);
	ck_assert_uint_eq(journal_crc32c(0, "", 0), 0);
	/* In pieces as in one go, at every alignment. */
	for (i = 0; i < (int)sizeof buf; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	for (i = 0; i < 17; i++) {
		c = journal_crc32c(0, buf, (size_t)i);
		c = journal_crc32c(c, buf + i, sizeof buf - (size_t)i);
		ck_assert_uint_eq(c, journal_crc32c(0, buf, sizeof buf));
	}
}
END_TEST

START_TEST(test_restart_gets_jobs_back)
{
	struct job	*a, *b, *d, *k;
	uint64_t	 ida, idb, idd, next;

	journal_up(1);
	a = submit(queues[0], "first", 0);
	b = submit(queues[0], "delayed", 60000);
	d = submit(queues[0], "done", 0);
	ida = a->id;
	idb = b->id;
	idd = d->id;
	/* One finishes: it must not come back. */
	queue_remove(queues[0], d);
	job_finish(d, JOB_DONE, "r", 1);
	settle();
	next = job_peek_next_id();
	daemon_down();

	journal_up(1);
	ck_assert_ptr_nonnull(k = job_find(ida));
	ck_assert_int_eq(k->state, JOB_QUEUED);
	ck_assert_uint_eq(k->len, 5);
	ck_assert(memcmp(k->data, "first", 5) == 0);
	ck_assert_int_eq(k->prio, 2);
	ck_assert_uint_eq(k->timeout_ms, 1234);
	ck_assert_ptr_nonnull(k = job_find(idb));
	ck_assert_int_eq(k->state, JOB_DELAYED);
	ck_assert_uint_gt(k->run_at, now_ms() + 50000);
	ck_assert_ptr_null(job_find(idd));
	ck_assert_uint_eq(queue_depth(queues[0]), 2);
	/* Ids go on from where they were: an old id never names a new job. */
	ck_assert_uint_ge(job_peek_next_id(), next);
	/* Only the fresh file is left. */
	ck_assert_int_eq(count_files(NULL), 1);
	daemon_down();
}
END_TEST

START_TEST(test_dead_and_retry)
{
	struct job	*a, *b, *k;
	uint64_t	 ida, idb;

	journal_up(1);
	a = submit(queues[0], "dies", 0);
	b = submit(queues[0], "dies then retried", 0);
	ida = a->id;
	idb = b->id;
	queue_remove(queues[0], a);
	queue_remove(queues[0], b);
	ck_assert_ptr_nonnull(job_extra(a));
	a->x->last_status = JOB_TIMEOUT;
	job_finish(a, JOB_DEAD, "timed out after 5 ms", 20);
	ck_assert_ptr_nonnull(job_extra(b));
	b->x->last_status = JOB_FAILED;
	job_finish(b, JOB_DEAD, "boom", 4);
	settle();
	const char *why;
	ck_assert_int_eq(dispatch_retry(b, &why), 0);
	settle();
	daemon_down();

	journal_up(1);
	ck_assert_ptr_nonnull(k = job_find(ida));
	ck_assert_int_eq(k->state, JOB_DEAD);
	ck_assert_uint_eq(job_rlen(k), 20);
	ck_assert(memcmp(job_result(k), "timed out after 5 ms", 20) == 0);
	ck_assert_int_eq(k->x->last_status, JOB_TIMEOUT);
	ck_assert_uint_eq(job_dead_count(), 1);
	ck_assert_ptr_nonnull(k = job_find(idb));
	ck_assert_int_eq(k->state, JOB_QUEUED);
	ck_assert_uint_eq(k->attempts, 0);
	daemon_down();
}
END_TEST

START_TEST(test_shutdown_cancel_keeps_jobs)
{
	struct job	*a, *b;
	uint64_t	 ida, idb;

	journal_up(1);
	a = submit(queues[0], "kept over the restart", 0);
	b = submit(queues[0], "cancelled by a client", 0);
	ida = a->id;
	idb = b->id;
	queue_remove(queues[0], b);
	job_finish(b, JOB_CANCELLED, "cancelled", 9);
	/* The shutdown answers waiting jobs as cancelled, but they are not ended. */
	master_stopping = 1;
	dispatch_cancel_waiting("daemon is shutting down");
	ck_assert_uint_eq(queue_depth(queues[0]), 0);
	settle();
	master_stopping = 0;
	daemon_down();

	journal_up(1);
	ck_assert_ptr_nonnull(job_find(ida));
	ck_assert_ptr_null(job_find(idb));
	daemon_down();
}
END_TEST

/* Append bytes to the journal file, as a crash in the middle of a write would leave. */
static void
append_garbage(const char *bytes, size_t n)
{
	char	path[128];
	int	fd;

	the_file(path, sizeof path);
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_APPEND), -1);
	ck_assert_int_eq(write(fd, bytes, n), (ssize_t)n);
	close(fd);
}

START_TEST(test_torn_tail)
{
	uint64_t	id;

	journal_up(1);
	id = submit(queues[0], "survives", 0)->id;
	settle();
	daemon_down();
	/* A record header promising more than is there. */
	append_garbage("\x40\x00\x00\x00\x11\x22\x33\x44\x01\x02", 10);

	journal_up(1);
	ck_assert_ptr_nonnull(job_find(id));
	ck_assert_int_eq(count_files(".damaged"), 1);
	ck_assert_int_eq(count_files(NULL), 1);
	daemon_down();
	/* The damaged file is not read again. */
	journal_up(1);
	ck_assert_ptr_nonnull(job_find(id));
	daemon_down();
}
END_TEST

START_TEST(test_bad_checksum_stops_replay)
{
	char		 path[128];
	struct stat	 sb;
	uint64_t	 id1, id2;
	unsigned char	 c;
	int		 fd;

	journal_up(1);
	id1 = submit(queues[0], "before", 0)->id;
	settle();
	daemon_down();
	journal_up(1);
	id2 = submit(queues[0], "the damaged one", 0)->id;
	settle();
	daemon_down();
	/* Flip the last payload byte of the file: the last record (id2's) is damaged. */
	the_file(path, sizeof path);
	ck_assert_int_ne(fd = open(path, O_RDWR), -1);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(pread(fd, &c, 1, sb.st_size - 1), 1);
	c ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &c, 1, sb.st_size - 1), 1);
	close(fd);

	journal_up(1);
	ck_assert_ptr_nonnull(job_find(id1));
	ck_assert_ptr_null(job_find(id2));
	ck_assert_int_eq(count_files(".damaged"), 1);
	daemon_down();
}
END_TEST

START_TEST(test_not_a_journal)
{
	char	path[128];
	char	*cause = NULL;
	FILE	*f;

	snprintf(path, sizeof path, "%s/journal.7", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("something else entirely\n", f);
	fclose(f);
	daemon_up(1);
	ck_assert_int_eq(journal_open(&cf, &cause), 0);
	ck_assert_int_eq(count_files(".damaged"), 1);
	/* The new file comes after it. */
	snprintf(path, sizeof path, "%s/journal.8", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	daemon_down();
}
END_TEST

START_TEST(test_unknown_queue_kept)
{
	uint64_t	id;

	journal_up(2);
	id = submit(queues[1], "for the other queue", 0)->id;
	settle();
	daemon_down();

	/* The config lost the queue: the job is kept, through restarts... */
	journal_up(1);
	ck_assert_ptr_null(job_find(id));
	daemon_down();
	journal_up(1);
	ck_assert_ptr_null(job_find(id));
	/* ...until the queue is back (a reload adds it). */
	memset(&qcs[1], 0, sizeof qcs[1]);
	qcs[1].name = (char *)"other";
	qcs[1].handler = (char *)"echo";
	qcs[1].max_jobs = 100;
	qcs[1].max_bytes = 1 << 20;
	qcs[1].batch = 1;
	ck_assert_ptr_nonnull(qarr[1] = queue_create(&qcs[1]));
	qarr[1]->idx = 1;
	nqueues = 2;
	journal_adopt();
	ck_assert_ptr_nonnull(job_find(id));
	ck_assert_uint_eq(queue_depth(queues[1]), 1);
	daemon_down();
}
END_TEST

START_TEST(test_lock)
{
	char	 path[128], *cause = NULL;
	int	 fd;

	snprintf(path, sizeof path, "%s/lock", dir);
	ck_assert_int_ne(fd = open(path, O_RDWR | O_CREAT, 0600), -1);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	daemon_up(1);
	ck_assert_int_eq(journal_open(&cf, &cause), -1);
	ck_assert_ptr_nonnull(cause);
	ck_assert_ptr_nonnull(strstr(cause, "in use by another jobpoold"));
	free(cause);
	close(fd);
	daemon_down();
}
END_TEST

START_TEST(test_compaction)
{
	struct job	*j, *keep[10];
	char		 data[64];
	uint64_t	 ids[10];
	int		 i;

	cf.journal_compact_size = 16384;
	journal_up(1);
	for (i = 0; i < 10; i++) {
		snprintf(data, sizeof data, "live %d", i);
		keep[i] = submit(queues[0], data, 0);
		ids[i] = keep[i]->id;
	}
	churn(200, 0);
	settle();
	run_until(count_files(NULL) == 1);
	daemon_down();

	journal_up(1);
	ck_assert_uint_eq(queue_depth(queues[0]), 10);
	for (i = 0; i < 10; i++) {
		ck_assert_ptr_nonnull(j = job_find(ids[i]));
		snprintf(data, sizeof data, "live %d", i);
		ck_assert_uint_eq(j->len, strlen(data));
		ck_assert(memcmp(j->data, data, j->len) == 0);
	}
	daemon_down();
}
END_TEST

/* The file stays small under churn: compaction ran (STATS says how often). */
START_TEST(test_compaction_bounds_the_file)
{
	struct journal_info ji;
	struct stat	 sb;
	char		 path[128];

	cf.journal_compact_size = 16384;
	journal_up(1);
	churn(300, 1);
	settle();
	run_until(count_files(NULL) == 1);
	the_file(path, sizeof path);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_lt(sb.st_size, 4 * 16384);
	ck_assert_int_eq(journal_info(&ji), 0);
	ck_assert_str_eq(ji.fsync, "always");
	ck_assert_ptr_null(ji.refusal);
	ck_assert_uint_gt(ji.compactions, 0);
	ck_assert_uint_eq(ji.records, 300 * 20 * 2);
	ck_assert_uint_ge(ji.durable + 1, ji.batches);
	daemon_down();
}
END_TEST

/*
 * A compaction that cannot make its new file (here a directory is in the way) leaves
 * everything in the old file, records handed over meanwhile included, and refuses no
 * job: it is not a write error.
 */
START_TEST(test_compaction_fails_safely)
{
	struct journal_info ji;
	char		 path[128];
	uint64_t	 ids[10], file;
	int		 i;

	cf.journal_compact_size = 16384;
	journal_up(1);
	ck_assert_int_eq(journal_info(&ji), 0);
	file = ji.file;
	snprintf(path, sizeof path, "%s/journal.%llu", dir, (unsigned long long)file + 1);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	for (i = 0; i < 10; i++)
		ids[i] = submit(queues[0], "live", 0)->id;
	/* Without waiting: batches pile up behind the compaction. */
	churn(100, 0);
	settle();
	run_for(50);
	ck_assert_int_eq(journal_info(&ji), 0);
	ck_assert_uint_eq(ji.file, file);
	ck_assert_uint_eq(ji.compactions, 0);
	/* Compactions were due (and tried): past the size, mostly ended jobs. */
	ck_assert_uint_gt(ji.bytes, 4 * 16384);
	ck_assert_uint_gt(ji.bytes, 4 * ji.live_bytes);
	ck_assert_ptr_null(ji.refusal);
	ck_assert_ptr_null(journal_refusal());
	daemon_down();
	ck_assert_int_eq(rmdir(path), 0);

	journal_up(1);
	ck_assert_uint_eq(queue_depth(queues[0]), 10);
	for (i = 0; i < 10; i++)
		ck_assert_ptr_nonnull(job_find(ids[i]));
	daemon_down();
}
END_TEST

/* Remove every file of the journal directory but the lock. */
static void
clear_dir(void)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "journal.", 8) == 0)
			ck_assert_int_eq(unlinkat(dirfd(d), de->d_name, 0), 0);
	}
	closedir(d);
}

/*
 * Damage of every kind, at many places: the file cut short anywhere, a byte changed
 * anywhere, a size field made huge. The daemon must start every time (ASan watches the
 * reader) and recover no job that was never submitted.
 */
START_TEST(test_damage_anywhere)
{
	struct job	*j;
	char		 path[128];
	unsigned char	*orig, *buf;
	struct stat	 sb;
	uint64_t	 rnd = 0x9E3779B97F4A7C15ULL, live;
	size_t		 len, off;
	int		 fd, i, kind;
	char		*cause = NULL;

	journal_up(2);
	submit(queues[0], "queued", 0);
	submit(queues[1], "other queue", 0);
	submit(queues[0], "delayed", 60000);
	j = submit(queues[0], "dead", 0);
	queue_remove(queues[0], j);
	ck_assert_ptr_nonnull(job_extra(j));
	j->x->last_status = JOB_FAILED;
	job_finish(j, JOB_DEAD, "a reason", 8);
	j = submit(queues[0], "dead then retried", 0);
	queue_remove(queues[0], j);
	ck_assert_ptr_nonnull(job_extra(j));
	j->x->last_status = JOB_FAILED;
	job_finish(j, JOB_DEAD, "why", 3);
	const char *why;
	ck_assert_int_eq(dispatch_retry(j, &why), 0);
	j = submit(queues[0], "ended", 0);
	queue_remove(queues[0], j);
	job_finish(j, JOB_DONE, "", 0);
	settle();
	/*
	 * At most every job ever submitted comes back: damage that ends the replay before
	 * a job's END brings that job back (to run again: delivery is at least once).
	 */
	live = job_count();
	daemon_down();

	the_file(path, sizeof path);
	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	len = (size_t)sb.st_size;
	ck_assert_ptr_nonnull(orig = malloc(len));
	ck_assert_ptr_nonnull(buf = malloc(len));
	ck_assert_int_eq(read(fd, orig, len), (ssize_t)len);
	close(fd);

	for (i = 0; i < 240; i++) {
		memcpy(buf, orig, len);
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		off = (size_t)(rnd >> 33) % len;
		kind = i % 3;
		if (kind == 1)
			buf[off] ^= (unsigned char)(1 + (rnd >> 24) % 255);
		else if (kind == 2 && off + 4 <= len)
			memset(buf + off, 0xff, 4);
		clear_dir();
		ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
		ck_assert_int_eq(write(fd, buf, kind == 0 ? off : len),
		    (ssize_t)(kind == 0 ? off : len));
		close(fd);
		daemon_up(2);
		ck_assert_msg(journal_open(&cf, &cause) == 0, "damage %d at %zu: %s", kind,
		    off, cause);
		ck_assert_uint_le(job_count() + journal_info_unknown(), live);
		daemon_down();
	}
	free(orig);
	free(buf);
}
END_TEST

/* The on-disk format (jobpool.conf(5), JOURNAL; HACKING.md), for records made here. */
enum { T_SUBMIT = 1, T_END, T_DEAD, T_RETRY, T_NEXT };

static uint64_t
next_rnd(uint64_t *r)
{
	*r = *r * 6364136223846793005ULL + 1442695040888963407ULL;
	return (*r >> 17);
}

static size_t
put_le(unsigned char *p, uint64_t v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
	return ((size_t)n);
}

/*
 * One record body in b: a well-formed one of a random type for one of 6 ids (SUBMIT to
 * queue "q", "other" or one the config has not, live or dead), then perhaps changed:
 * bytes overwritten, the body cut short or lengthened. Returns its length.
 */
static size_t
random_record(unsigned char *b, uint64_t *r, int *submits)
{
	static const char *const	 qnames[] = { "q", "other", "gone" };
	const char			*qn = qnames[next_rnd(r) % 3];
	size_t				 n = 0, qlen = strlen(qn), k;
	uint32_t			 len = (uint32_t)(next_rnd(r) % 40);
	int				 type = 1 + (int)(next_rnd(r) % 5), dead;

	if (next_rnd(r) % 16 == 0)
		type = (int)(next_rnd(r) % 256);
	b[n++] = (unsigned char)type;
	n += put_le(b + n, 1 + next_rnd(r) % 6, 8);
	switch (type) {
	case T_SUBMIT:
		dead = next_rnd(r) % 4 == 0;
		b[n++] = (unsigned char)dead;
		b[n++] = (unsigned char)next_rnd(r);			/* attempts */
		n += put_le(b + n, next_rnd(r), 2);			/* prio */
		n += put_le(b + n, next_rnd(r) % 100000, 4);		/* timeout */
		n += put_le(b + n, next_rnd(r) % 2 ? 0 : next_rnd(r), 8); /* run_at */
		b[n++] = (unsigned char)qlen;
		memcpy(b + n, qn, qlen);
		n += qlen;
		n += put_le(b + n, len, 4);
		memset(b + n, 'x', len);
		n += len;
		if (dead) {
			b[n++] = (unsigned char)next_rnd(r);		/* last status */
			n += put_le(b + n, next_rnd(r), 8);		/* died */
			k = next_rnd(r) % 20;
			n += put_le(b + n, k, 2);
			memset(b + n, 'r', k);
			n += k;
		}
		(*submits)++;
		break;
	case T_DEAD:
		b[n++] = (unsigned char)next_rnd(r);
		n += put_le(b + n, next_rnd(r), 8);
		k = next_rnd(r) % 20;
		n += put_le(b + n, k, 2);
		memset(b + n, 'r', k);
		n += k;
		break;
	default:
		break;
	}
	switch (next_rnd(r) % 4) {
	case 0:		/* bytes overwritten, anywhere after the type */
		for (k = next_rnd(r) % 3 + 1; k > 0; k--)
			b[1 + next_rnd(r) % (n - 1)] = (unsigned char)next_rnd(r);
		break;
	case 1:		/* cut short */
		n = 1 + next_rnd(r) % n;
		break;
	case 2:		/* lengthened */
		for (k = next_rnd(r) % 8 + 1; k > 0; k--)
			b[n++] = (unsigned char)next_rnd(r);
		break;
	default:	/* as made */
		break;
	}
	return (n);
}

/*
 * Records whose checksums are right and whose contents are not: what a bug in a writer,
 * or another version's records, would leave. Each file replays up to its first
 * malformed record; the daemon starts every time (ASan and UBSan watch the reader) and
 * brings back no more jobs than the file's SUBMIT records.
 */
START_TEST(test_checksummed_garbage)
{
	unsigned char	 file[16 + 16 * (8 + 160)], *p;
	uint64_t	 rnd = 0x2545F4914F6CDD1DULL;
	size_t		 off, body;
	int		 i, nrec, k, fd, submits;
	char		 path[128], *cause = NULL;

	snprintf(path, sizeof path, "%s/journal.1", dir);
	for (i = 0; i < 400; i++) {
		memcpy(file, "JOBPOOL JRNL v1\n", 16);
		off = 16;
		submits = 0;
		nrec = 1 + (int)(next_rnd(&rnd) % 16);
		for (k = 0; k < nrec; k++) {
			p = file + off;
			body = random_record(p + 8, &rnd, &submits);
			put_le(p, body, 4);
			put_le(p + 4, journal_crc32c(0, p + 8, body), 4);
			off += 8 + body;
		}
		clear_dir();
		ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
		ck_assert_int_eq(write(fd, file, off), (ssize_t)off);
		close(fd);
		daemon_up(2);
		ck_assert_msg(journal_open(&cf, &cause) == 0, "file %d: %s", i, cause);
		ck_assert_uint_le(job_count() + journal_info_unknown(), (uint64_t)submits);
		daemon_down();
	}
}
END_TEST

/* The uid that owns a job. */
static uid_t
owner_of(uint64_t id)
{
	struct job	*j = job_find(id);

	ck_assert_ptr_nonnull(j);
	return (priv_owner_uid(j->owner));
}

/*
 * Jobs keep their owner across restarts: queued, delayed, dead (the uid after the dead
 * part), through the snapshot a start writes and a compaction, and jobs kept for a
 * queue the config lost. The owner table starts empty each time, as in a new daemon.
 */
START_TEST(test_owner_kept)
{
	struct job	*a, *b, *c, *d, *o;
	uint64_t	 ida, idb, idc, idd, ido;
	int		 round;

	journal_up(2);
	a = submit(queues[0], "alice's", 0);
	a->owner = (uint16_t)priv_owner_index(4242);
	journal_submit(a);	/* again, now with its owner, as SUBMIT does at once */
	b = job_new(queues[0], "bob's, delayed", 14);
	b->owner = (uint16_t)priv_owner_index(4243);
	b->run_at = now_ms() + 60000;
	dispatch_submit(queues[0], b, NULL);
	c = job_new(queues[0], "carol's, dies", 13);
	c->owner = (uint16_t)priv_owner_index(70000);
	dispatch_submit(queues[0], c, NULL);
	queue_remove(queues[0], c);
	ck_assert_ptr_nonnull(job_extra(c));
	c->x->last_status = JOB_FAILED;
	job_finish(c, JOB_DEAD, "boom", 4);
	d = submit(queues[0], "root's", 0);
	o = job_new(queues[1], "for the other queue", 19);
	o->owner = (uint16_t)priv_owner_index(4243);
	dispatch_submit(queues[1], o, NULL);
	ida = a->id;
	idb = b->id;
	idc = c->id;
	idd = d->id;
	ido = o->id;
	settle();
	daemon_down();
	priv_acl_free();

	for (round = 0; round < 3; round++) {
		/* Round 1: the other queue is gone, its job kept aside; round 2: back. */
		journal_up(round == 1 ? 1 : 2);
		ck_assert_uint_eq(owner_of(ida), 4242);
		ck_assert_uint_eq(owner_of(idb), 4243);
		ck_assert_int_eq(job_find(idb)->state, JOB_DELAYED);
		ck_assert_uint_eq(owner_of(idc), 70000);
		ck_assert_int_eq(job_find(idc)->state, JOB_DEAD);
		ck_assert_uint_eq(job_rlen(job_find(idc)), 4);
		ck_assert_uint_eq(owner_of(idd), 0);
		if (round == 1)
			ck_assert_ptr_null(job_find(ido));
		else
			ck_assert_uint_eq(owner_of(ido), 4243);
		daemon_down();
		priv_acl_free();
	}
}
END_TEST

/* One SUBMIT record's body for queue "q", old (no owner) or new (owner >= 0). */
static size_t
owner_record(unsigned char *b, uint64_t id, int dead, long long owner)
{
	size_t	n = 0;

	b[n++] = T_SUBMIT;
	n += put_le(b + n, id, 8);
	b[n++] = (unsigned char)dead;
	b[n++] = 1;				/* attempts */
	n += put_le(b + n, 0, 2);		/* prio */
	n += put_le(b + n, 0, 4);		/* timeout */
	n += put_le(b + n, 0, 8);		/* run_at */
	b[n++] = 1;
	b[n++] = 'q';
	n += put_le(b + n, 3, 4);
	memcpy(b + n, "abc", 3);
	n += 3;
	if (dead) {
		b[n++] = JOB_FAILED;
		n += put_le(b + n, 1, 8);	/* died */
		n += put_le(b + n, 2, 2);
		memcpy(b + n, "no", 2);
		n += 2;
	}
	if (owner >= 0)
		n += put_le(b + n, (uint64_t)owner, 4);
	return (n);
}

/*
 * Journals written before owners: a SUBMIT without the uid is root's (live and dead),
 * one with it is that uid's, and a body with a part of a uid is damage.
 */
START_TEST(test_owner_old_records)
{
	unsigned char	 file[1024], *p;
	size_t		 off = 16, body;
	char		 path[128], *cause = NULL;
	int		 fd, i;
	const struct {
		int		dead;
		long long	owner;
		int		cut;	/* bytes of the uid left out: damage */
	} recs[] = {
		{ 0, -1, 0 }, { 1, -1, 0 }, { 0, 4242, 0 }, { 1, 4243, 0 }, { 0, 4244, 1 }
	};

	memcpy(file, "JOBPOOL JRNL v1\n", 16);
	for (i = 0; i < (int)(sizeof recs / sizeof recs[0]); i++) {
		p = file + off;
		body = owner_record(p + 8, (uint64_t)i + 1, recs[i].dead, recs[i].owner) -
		    (size_t)recs[i].cut;
		put_le(p, body, 4);
		put_le(p + 4, journal_crc32c(0, p + 8, body), 4);
		off += 8 + body;
	}
	snprintf(path, sizeof path, "%s/journal.1", dir);
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
	ck_assert_int_eq(write(fd, file, off), (ssize_t)off);
	close(fd);
	daemon_up(1);
	ck_assert_msg(journal_open(&cf, &cause) == 0, "journal_open: %s", cause);
	ck_assert_uint_eq(owner_of(1), 0);
	ck_assert_uint_eq(owner_of(2), 0);
	ck_assert_int_eq(job_find(2)->state, JOB_DEAD);
	ck_assert_uint_eq(owner_of(3), 4242);
	ck_assert_uint_eq(owner_of(4), 4243);
	ck_assert_int_eq(job_find(4)->state, JOB_DEAD);
	ck_assert_ptr_null(job_find(5));
	ck_assert_int_eq(count_files(".damaged"), 1);
	daemon_down();
	priv_acl_free();
}
END_TEST

START_TEST(test_policies_make_batches_durable)
{
	static const int	policies[] = {
		CONFIG_FSYNC_NEVER, CONFIG_FSYNC_INTERVAL, CONFIG_FSYNC_ALWAYS
	};
	uint64_t		id;

	cf.journal_fsync = policies[_i];
	journal_up(1);
	ck_assert_uint_eq(journal_durable(), 0);
	id = submit(queues[0], "x", 0)->id;
	ck_assert_uint_eq(journal_batch(), 1);
	settle();
	ck_assert_uint_eq(journal_durable(), 1);
	ck_assert_uint_eq(journal_batch(), 2);
	daemon_down();
	journal_up(1);
	ck_assert_ptr_nonnull(job_find(id));
	daemon_down();
}
END_TEST

/*
 * When the data reaches the disk: never (no fdatasync, ever), interval (one comes by
 * itself within the interval, with no further record), always (done before the batch
 * counts as durable).
 */
START_TEST(test_fsync_follows_policy)
{
	static const int	policies[] = {
		CONFIG_FSYNC_NEVER, CONFIG_FSYNC_INTERVAL, CONFIG_FSYNC_ALWAYS
	};
	struct journal_info	ji;
	uint64_t		f0;

	cf.journal_fsync = policies[_i];
	cf.journal_fsync_interval_ms = 100;
	journal_up(1);
	ck_assert_int_eq(journal_info(&ji), 0);
	f0 = ji.fsyncs;		/* the fresh file's, at start-up */
	submit(queues[0], "x", 0);
	settle();
	ck_assert_int_eq(journal_info(&ji), 0);
	switch (policies[_i]) {
	case CONFIG_FSYNC_NEVER:
		run_for(400);
		ck_assert_int_eq(journal_info(&ji), 0);
		ck_assert_uint_eq(ji.fsyncs, f0);
		break;
	case CONFIG_FSYNC_INTERVAL:
		run_until(journal_info(&ji) == 0 && ji.fsyncs > f0);
		/* And not again while nothing new is written. */
		f0 = ji.fsyncs;
		run_for(400);
		ck_assert_int_eq(journal_info(&ji), 0);
		ck_assert_uint_eq(ji.fsyncs, f0);
		break;
	default:
		ck_assert_uint_gt(ji.fsyncs, f0);
		break;
	}
	daemon_down();
}
END_TEST

START_TEST(test_off_is_a_noop)
{
	struct job	*j;

	struct journal_info ji;
	char		*cause = NULL;

	cf.journal_dir = NULL;
	daemon_up(1);
	ck_assert_int_eq(journal_open(&cf, &cause), 0);
	ck_assert_int_eq(journal_on, 0);
	j = submit(queues[0], "x", 0);
	ck_assert_uint_eq(journal_seq, 0);
	ck_assert_int_eq(journal_info(&ji), -1);
	ck_assert_ptr_nonnull(j);
	daemon_down();
}
END_TEST

static Suite *
journal_suite(void)
{
	Suite	*s = suite_create("journal");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_restart_gets_jobs_back);
	tcase_add_test(tc, test_dead_and_retry);
	tcase_add_test(tc, test_shutdown_cancel_keeps_jobs);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_bad_checksum_stops_replay);
	tcase_add_test(tc, test_not_a_journal);
	tcase_add_test(tc, test_unknown_queue_kept);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_compaction);
	tcase_add_test(tc, test_compaction_bounds_the_file);
	tcase_add_test(tc, test_compaction_fails_safely);
	tcase_add_test(tc, test_damage_anywhere);
	tcase_add_test(tc, test_checksummed_garbage);
	tcase_add_test(tc, test_owner_kept);
	tcase_add_test(tc, test_owner_old_records);
	tcase_add_loop_test(tc, test_policies_make_batches_durable, 0, 3);
	tcase_add_loop_test(tc, test_fsync_follows_policy, 0, 3);
	tcase_add_test(tc, test_off_is_a_noop);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner	*sr = srunner_create(journal_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
