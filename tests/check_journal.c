/*
 * check_journal.c: unit tests for journal.c: the checksum, what a restart gets back
 * (queued, delayed, dead, retried, finished and cancelled jobs, the next id, dead jobs'
 * attempts), damaged files and the records recovered around the damage (and that the
 * resync stays linear), jobs of queues the config no longer has, the lock, compaction,
 * and that the durable batch follows what was handed to the writer, at each policy;
 * jobs keep their owner (and records from before owners are root's).
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
#include "checkcapture.h"

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
		j->run_at = now_us() + (uint64_t)delay_ms * 1000;
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
	ck_assert_uint_gt(k->run_at, now_us() + 50000000);
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

START_TEST(test_bad_checksum_costs_its_record)
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
 * reader and the resync) and recover no job that was never submitted.
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
 * or another version's records, would leave. Each malformed record is skipped whole
 * and the rest replayed; the daemon starts every time (ASan and UBSan watch the reader)
 * and brings back no more jobs than the file's SUBMIT records.
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
	b->run_at = now_us() + 60000000;
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

/* j's key, NUL-terminated in a static buffer ("" for none). */
static const char *
key_of(uint64_t id)
{
	static char	 buf[JOB_KEY_MAX + 1];
	struct job	*j = job_find(id);
	const char	*k;
	size_t		 n;

	ck_assert_ptr_nonnull(j);
	k = job_key(j, &n);
	memcpy(buf, k != NULL ? k : "", n);
	buf[n] = '\0';
	return (buf);
}

/*
 * Jobs keep their key across restarts (issue 15): queued, delayed, dead, kept aside for
 * a queue the config lost, through the snapshots of three starts; a job without one
 * comes back without one.
 */
START_TEST(test_keys_kept)
{
	struct job	*a, *b, *c, *d, *o;
	uint64_t	 ida, idb, idc, idd, ido;
	int		 round;

	journal_up(2);
	a = job_new_key(queues[0], "queued", 6, "example.org", 11);
	dispatch_submit(queues[0], a, NULL);
	b = job_new_key(queues[0], "delayed", 7, "b", 1);
	b->run_at = now_us() + 60000000;
	dispatch_submit(queues[0], b, NULL);
	c = job_new_key(queues[0], "dies", 4, "c-key", 5);
	dispatch_submit(queues[0], c, NULL);
	queue_remove(queues[0], c);
	ck_assert_ptr_nonnull(job_extra(c));
	c->x->last_status = JOB_FAILED;
	job_finish(c, JOB_DEAD, "boom", 4);
	d = submit(queues[0], "no key", 0);
	o = job_new_key(queues[1], "other", 5, "o", 1);
	dispatch_submit(queues[1], o, NULL);
	ida = a->id;
	idb = b->id;
	idc = c->id;
	idd = d->id;
	ido = o->id;
	settle();
	daemon_down();

	for (round = 0; round < 3; round++) {
		journal_up(round == 1 ? 1 : 2);
		ck_assert_str_eq(key_of(ida), "example.org");
		ck_assert_uint_eq(job_find(ida)->len, 6);
		ck_assert(memcmp(job_find(ida)->data, "queued", 6) == 0);
		ck_assert_str_eq(key_of(idb), "b");
		ck_assert_int_eq(job_find(idb)->state, JOB_DELAYED);
		ck_assert_str_eq(key_of(idc), "c-key");
		ck_assert_int_eq(job_find(idc)->state, JOB_DEAD);
		ck_assert_uint_eq(job_rlen(job_find(idc)), 4);
		ck_assert_str_eq(key_of(idd), "");
		ck_assert_int_eq(job_find(idd)->haskey, 0);
		if (round == 1)
			ck_assert_ptr_null(job_find(ido));
		else
			ck_assert_str_eq(key_of(ido), "o");
		daemon_down();
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

/* ----- damage recovered around ----- */

/* A file's bytes (malloc'd) and its length. */
static unsigned char *
slurp(const char *path, size_t *lenp)
{
	unsigned char	*buf;
	struct stat	 sb;
	int		 fd;

	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_ptr_nonnull(buf = malloc((size_t)sb.st_size + 1));
	ck_assert_int_eq(read(fd, buf, (size_t)sb.st_size), (ssize_t)sb.st_size);
	close(fd);
	*lenp = (size_t)sb.st_size;
	return (buf);
}

/* Make the journal directory hold just path, with these bytes. */
static void
spit(const char *path, const unsigned char *buf, size_t len)
{
	int	fd;

	clear_dir();
	ck_assert_int_ne(fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), -1);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* The records of a journal file: where each starts, its size, type and id. */
struct trec {
	size_t		off, size;
	int		type;
	uint64_t	id;
};

static size_t
walk(const unsigned char *b, size_t len, struct trec *out, size_t max)
{
	size_t	off = 16, n = 0, size;
	int	k;

	while (off + 17 <= len && n < max) {
		size = b[off] | b[off + 1] << 8 | (size_t)b[off + 2] << 16 |
		    (size_t)b[off + 3] << 24;
		out[n].off = off;
		out[n].size = 8 + size;
		out[n].type = b[off + 8];
		out[n].id = 0;
		for (k = 0; k < 8; k++)
			out[n].id |= (uint64_t)b[off + 9 + k] << (8 * k);
		n++;
		off += 8 + size;
	}
	ck_assert_uint_eq(off, len);
	return (n);
}

static struct journal_info
info(void)
{
	struct journal_info	ji;

	ck_assert_int_eq(journal_info(&ji), 0);
	return (ji);
}

/*
 * issue 14: a flipped byte in the middle of a file of 1,000 jobs recovered 499. Now it
 * costs the one record it hits: a job's SUBMIT (999 back), an ended job's SUBMIT (its END
 * then ends nothing: 1,000) or its END (it comes back to run again: 1,001); every other
 * job is back, the damage is logged once at error level, and STATS counts it.
 */
START_TEST(test_flipped_byte_costs_one_record)
{
	static struct trec	 recs[1300];
	struct job		*j;
	struct journal_info	 ji;
	char			 path[128], data[64], want[160], *log;
	unsigned char		*orig, *buf;
	uint64_t		 first_id = 0, hit_id;
	size_t			 len, nrec, off, r;
	int			 i, round, expect, hit_type;
	char			*cause = NULL;

	journal_up(1);
	for (i = 0; i < 1100; i++) {
		snprintf(data, sizeof data, "job %d", i);
		j = submit(queues[0], data, 0);
		if (i == 0)
			first_id = j->id;
		if (i % 11 == 5) {		/* 100 of them end */
			queue_remove(queues[0], j);
			job_finish(j, JOB_DONE, "", 0);
		}
	}
	settle();
	daemon_down();
	the_file(path, sizeof path);
	orig = slurp(path, &len);
	nrec = walk(orig, len, recs, 1300);
	ck_assert_uint_eq(nrec, 2 + 1100 + 100);	/* NEXT twice: an empty snapshot */
	ck_assert_ptr_nonnull(buf = malloc(len));

	for (round = 0; round < 24; round++) {
		/* Offsets across the middle third, the header and the crc of each too. */
		off = len / 3 + (len / 3) * (size_t)round / 24 + (size_t)round % 9;
		for (r = 0; r + 1 < nrec && recs[r + 1].off <= off; r++)
			;
		hit_type = recs[r].type;
		hit_id = recs[r].id;
		memcpy(buf, orig, len);
		buf[off] ^= 0x10;
		spit(path, buf, len);
		capture_into(dir);
		daemon_up(1);
		ck_assert_msg(journal_open(&cf, &cause) == 0, "journal_open: %s", cause);
		log = capture_read();
		capture_stop();
		if (hit_type == T_END)
			expect = 1001;
		else if ((hit_id - first_id) % 11 == 5)
			expect = 1000;
		else
			expect = 999;
		ck_assert_msg(job_count() == (uint64_t)expect, "byte %zu of a %s record: "
		    "%llu jobs back, want %d", off, hit_type == T_END ? "END" : "SUBMIT",
		    (unsigned long long)job_count(), expect);
		/* The job whose record was hit is the one missing, or back. */
		if (hit_type == T_SUBMIT)
			ck_assert_ptr_null(job_find(hit_id));
		else
			ck_assert_ptr_nonnull(job_find(hit_id));
		ji = info();
		ck_assert_uint_eq(ji.damaged, 1);
		ck_assert_uint_eq(ji.damaged_bytes, recs[r].size);
		ck_assert_uint_eq(ji.damaged_files, 1);
		ck_assert_ptr_nonnull(ji.damaged_file);
		ck_assert_int_eq(count_files(".damaged"), 1);
		snprintf(want, sizeof want, "error: journal: %s is damaged: ", path);
		ck_assert_msg(strstr(log, want) != NULL, "log: %s", log);
		snprintf(want, sizeof want, "at offset %zu; 1 damaged region (%zu bytes) "
		    "skipped, %zu records recovered around it; the file is kept as %s",
		    recs[r].off, recs[r].size, nrec - 1, ji.damaged_file);
		ck_assert_msg(strstr(log, want) != NULL, "want '%s' in: %s", want, log);
		ck_assert_ptr_null(strstr(strstr(log, "is damaged") + 1, "is damaged"));
		free(log);
		if (round == 0) {
			/* STATS' journal line counts it and names the file. */
			struct evbuffer	*out = evbuffer_new();
			char		*text;

			ck_assert_ptr_nonnull(out);
			stats_write(out);
			evbuffer_add(out, "", 1);
			text = (char *)evbuffer_pullup(out, -1);
			snprintf(want, sizeof want, " damaged=1 damaged_bytes=%zu dir=",
			    recs[r].size);
			ck_assert_msg(strstr(text, want) != NULL, "STATS: %s", text);
			snprintf(want, sizeof want, " damaged_file=%s\n", ji.damaged_file);
			ck_assert_msg(strstr(text, want) != NULL, "STATS: %s", text);
			evbuffer_free(out);
		}
		daemon_down();
	}
	free(orig);
	free(buf);
}
END_TEST

/*
 * Several damaged regions in one file: records changed here and there, junk put between
 * two records, a big record (its crc found through the checkpoints) right after damage,
 * and a torn tail. Everything not hit comes back; each region is counted.
 */
START_TEST(test_several_damaged_regions)
{
	static struct trec	 recs[400];
	static unsigned char	 big[5000];
	struct journal_info	 ji;
	struct job		*j;
	char			 path[128], data[64];
	unsigned char		*orig, *buf;
	uint64_t		 bigid = 0, lost[3], rnd = 7;
	size_t			 len, nrec, n, k, junk = 700, r;
	int			 i;

	memset(big, 'B', sizeof big);
	journal_up(1);
	for (i = 0; i < 300; i++) {
		if (i == 150) {
			j = job_new(queues[0], big, sizeof big);
			ck_assert_ptr_nonnull(j);
			dispatch_submit(queues[0], j, NULL);
			bigid = j->id;
			continue;
		}
		snprintf(data, sizeof data, "job %d", i);
		submit(queues[0], data, 0);
	}
	settle();
	daemon_down();
	the_file(path, sizeof path);
	orig = slurp(path, &len);
	nrec = walk(orig, len, recs, 400);
	ck_assert_uint_eq(nrec, 302);	/* NEXT, NEXT, 300 SUBMITs */
	ck_assert_ptr_nonnull(buf = malloc(len + junk));

	/* Records 52 (its size), 151 (its crc: just before the big one), 252 (its body). */
	lost[0] = recs[52].id;
	lost[1] = recs[151].id;
	lost[2] = recs[252].id;
	ck_assert_uint_eq(recs[152].id, bigid);
	n = recs[202].off;
	memcpy(buf, orig, n);
	buf[recs[52].off + 1] ^= 0x01;
	buf[recs[151].off + 5] ^= 0x80;
	/* Junk between records 201 and 202, with a size field or two that look huge. */
	for (k = 0; k < junk; k++)
		buf[n + k] = (unsigned char)(next_rnd(&rnd) >> 7);
	buf[n + 100] = 0xf0;
	buf[n + 103] = 0x0f;
	memcpy(buf + n + junk, orig + n, len - n);
	n = len + junk;
	buf[recs[252].off + junk + 30] ^= 0x55;
	/* A torn tail: the last record cut short. */
	n -= 3;
	spit(path, buf, n);

	journal_up(1);
	ck_assert_uint_eq(job_count(), 300 - 4);
	for (k = 0; k < 3; k++)
		ck_assert_ptr_null(job_find(lost[k]));
	ck_assert_ptr_null(job_find(recs[301].id));
	ck_assert_ptr_nonnull(j = job_find(bigid));
	ck_assert_uint_eq(j->len, sizeof big);
	ck_assert(memcmp(j->data, big, sizeof big) == 0);
	for (r = 2; r < 301; r++) {
		if (r != 52 && r != 151 && r != 252)
			ck_assert_ptr_nonnull(job_find(recs[r].id));
	}
	ji = info();
	ck_assert_uint_eq(ji.damaged, 5);
	ck_assert_uint_eq(ji.damaged_bytes, recs[52].size + recs[151].size + junk +
	    recs[252].size + recs[301].size - 3);
	daemon_down();
	free(orig);
	free(buf);
}
END_TEST

/*
 * Damage at the very start: the header, the NEXT record, the first job's SUBMIT. What
 * follows is found again, and ids still go on past every id given out (a snapshot ends
 * with NEXT too).
 */
START_TEST(test_damage_at_the_start)
{
	static struct trec	 recs[40];
	struct journal_info	 ji;
	char			 path[128], data[64];
	unsigned char		*orig, *buf;
	uint64_t		 last = 0, next;
	size_t			 len, nrec;
	int			 i, where;

	journal_up(1);
	for (i = 0; i < 30; i++) {
		snprintf(data, sizeof data, "job %d", i);
		last = submit(queues[0], data, 0)->id;
	}
	/* The newest job ends: once compacted, only NEXT says its id was given. */
	ck_assert_uint_eq(submit(queues[0], "ends", 0)->id, last + 1);
	queue_remove(queues[0], job_find(last + 1));
	job_finish(job_find(last + 1), JOB_DONE, "", 0);
	settle();
	next = job_peek_next_id();
	daemon_down();
	journal_up(1);		/* a snapshot: NEXT, the 30 jobs, NEXT again */
	daemon_down();
	the_file(path, sizeof path);
	orig = slurp(path, &len);
	nrec = walk(orig, len, recs, 40);
	ck_assert_uint_eq(nrec, 32);
	ck_assert_int_eq(recs[0].type, T_NEXT);
	ck_assert_int_eq(recs[31].type, T_NEXT);
	ck_assert_ptr_nonnull(buf = malloc(len));

	for (where = 0; where < 3; where++) {
		memcpy(buf, orig, len);
		if (where == 0)
			buf[3] ^= 0x20;			/* the header */
		else
			buf[recs[where - 1].off + 10] ^= 0x20;	/* NEXT's id, a SUBMIT's */
		spit(path, buf, len);
		journal_up(1);
		ck_assert_uint_eq(job_count(), where == 2 ? 29 : 30);
		ck_assert_uint_ge(job_peek_next_id(), next);
		ji = info();
		ck_assert_uint_eq(ji.damaged, 1);
		ck_assert_uint_eq(ji.damaged_bytes, where == 0 ? 16 : recs[where - 1].size);
		daemon_down();
	}
	free(orig);
	free(buf);
}
END_TEST

/*
 * A file of junk that looks like records: every 48 bytes a SUBMIT header whose size, queue
 * and payload length agree and claim most of what is left of the file, with a crc that is
 * wrong. Checking each from scratch hashes the file quadratically; the resync hashes it
 * about once plus a bounded cost per check, and finds the same records (the two real
 * ones at the end) as the naive way.
 */
START_TEST(test_resync_is_linear)
{
	struct journal_replay	 fast, naive;
	unsigned char		*f, *p;
	size_t			 len = 1 << 18, tail, off, size, body;
	uint64_t		 id = 77;

	ck_assert_ptr_nonnull(f = calloc(1, len));
	memcpy(f, "JOBPOOL JRNL v1\n", 16);
	tail = len - 2 * (8 + 9);
	for (off = 16; off + 48 <= tail; off += 48) {
		p = f + off;
		size = (tail - off - 8) / 2 + 100;
		body = size;
		put_le(p, size, 4);
		put_le(p + 4, 0x12345678, 4);
		p[8] = T_SUBMIT;
		put_le(p + 9, id, 8);
		p[8 + 25] = 1;
		p[8 + 26] = 'q';
		put_le(p + 8 + 27, body - 31, 4);
	}
	/* Two real records at the end: found by both. */
	for (off = tail; off < len; off += 17) {
		p = f + off;
		put_le(p, 9, 4);
		p[8] = off == tail ? T_NEXT : T_RETRY;
		put_le(p + 9, 1000, 8);
		put_le(p + 4, journal_crc32c(0, p + 8, 9), 4);
	}
	memset(&fast, 0, sizeof fast);
	memset(&naive, 0, sizeof naive);
	naive.naive = 1;
	ck_assert_int_eq(journal_replay(f, len, &fast), 0);
	ck_assert_int_eq(journal_replay(f, len, &naive), 0);
	ck_assert_uint_eq(fast.records, 2);
	ck_assert_uint_eq(fast.next_id, 1001);
	ck_assert_uint_eq(fast.regions, 1);
	ck_assert_uint_eq(fast.damaged_bytes, tail - 16);
	ck_assert_uint_eq(fast.first_damage, 16);
	ck_assert_uint_eq(naive.records, fast.records);
	ck_assert_uint_eq(naive.regions, fast.regions);
	ck_assert_uint_eq(naive.damaged_bytes, fast.damaged_bytes);
	ck_assert_uint_eq(naive.checks, fast.checks);
	ck_assert_uint_gt(fast.checks, 2000);
	ck_assert_uint_le(fast.hashed, 4 * len + fast.checks * JOURNAL_RESYNC_COST);
	/* The naive way hashes about 1,400 times the file. */
	ck_assert_uint_gt(naive.hashed, 1000 * (uint64_t)len);

	/*
	 * The frames the replay reads go the same way: here every real record (an END)
	 * comes after a header claiming the rest of the file, which the replay checks
	 * first, finds wrong, and resyncs past: once that has wasted the file's size, the
	 * checkpoints check them. All 10,485 records are found (the naive way hashes
	 * about 5,000 times the file).
	 */
	memset(f, 0, len);
	memcpy(f, "JOBPOOL JRNL v1\n", 16);
	tail = 16 + (len - 16) / 25 * 25;
	for (off = 16; off < tail; off += 25) {
		p = f + off;
		put_le(p, tail - off - 8, 4);
		put_le(p + 4, 0x12345678, 4);
		p += 8;
		put_le(p, 9, 4);
		p[8] = T_END;
		put_le(p + 9, off, 8);
		put_le(p + 4, journal_crc32c(0, p + 8, 9), 4);
	}
	memset(&fast, 0, sizeof fast);
	memset(&naive, 0, sizeof naive);
	naive.naive = 1;
	ck_assert_int_eq(journal_replay(f, off, &fast), 0);
	ck_assert_int_eq(journal_replay(f, off, &naive), 0);
	ck_assert_uint_eq(fast.records, (off - 16) / 25);
	ck_assert_uint_eq(fast.regions, fast.records);
	ck_assert_uint_eq(naive.records, fast.records);
	ck_assert_uint_le(fast.hashed, 4 * off + fast.checks * JOURNAL_RESYNC_COST);
	ck_assert_uint_gt(naive.hashed, 1000 * (uint64_t)off);
	free(f);
}
END_TEST

/*
 * issue 14: dead jobs showed attempts 0 after a restart. The DEAD record carries them now
 * (appended to its body), over any number of restarts; a DEAD record without them, as
 * older versions wrote, is still read.
 */
START_TEST(test_dead_attempts_survive)
{
	unsigned char	 file[256], *p;
	struct job	*j, *k;
	char		 path[128];
	uint64_t	 id;
	size_t		 off, n;
	int		 round, old;

	journal_up(1);
	j = submit(queues[0], "fails five times", 0);
	id = j->id;
	queue_remove(queues[0], j);
	j->attempts = 5;
	ck_assert_ptr_nonnull(job_extra(j));
	j->x->last_status = JOB_FAILED;
	job_finish(j, JOB_DEAD, "exit 3", 6);
	settle();
	daemon_down();
	for (round = 0; round < 2; round++) {
		journal_up(1);
		ck_assert_ptr_nonnull(k = job_find(id));
		ck_assert_int_eq(k->state, JOB_DEAD);
		ck_assert_uint_eq(k->attempts, 5);
		daemon_down();
	}

	/* By hand: NEXT, SUBMIT (attempts 2), DEAD with or without attempts (4). */
	snprintf(path, sizeof path, "%s/journal.1", dir);
	for (old = 0; old < 2; old++) {
		memcpy(file, "JOBPOOL JRNL v1\n", 16);
		off = 16;
		p = file + off + 8;
		p[0] = T_NEXT;
		put_le(p + 1, 10, 8);
		n = 9;
		put_le(file + off, n, 4);
		put_le(file + off + 4, journal_crc32c(0, p, n), 4);
		off += 8 + n;
		p = file + off + 8;
		memset(p, 0, 40);
		p[0] = T_SUBMIT;
		put_le(p + 1, 9, 8);
		p[10] = 2;			/* attempts */
		p[25] = 1;
		p[26] = 'q';
		put_le(p + 27, 1, 4);
		p[31] = 'x';
		n = 32;
		put_le(file + off, n, 4);
		put_le(file + off + 4, journal_crc32c(0, p, n), 4);
		off += 8 + n;
		p = file + off + 8;
		p[0] = T_DEAD;
		put_le(p + 1, 9, 8);
		p[9] = JOB_FAILED;
		put_le(p + 10, 0, 8);
		put_le(p + 18, 3, 2);
		memcpy(p + 20, "why", 3);
		p[23] = 4;
		n = old ? 23 : 24;
		put_le(file + off, n, 4);
		put_le(file + off + 4, journal_crc32c(0, p, n), 4);
		off += 8 + n;
		spit(path, file, off);
		journal_up(1);
		ck_assert_ptr_nonnull(k = job_find(9));
		ck_assert_int_eq(k->state, JOB_DEAD);
		ck_assert_uint_eq(k->attempts, old ? 2 : 4);
		ck_assert_uint_eq(job_rlen(k), 3);
		ck_assert_uint_eq(info().damaged, 0);
		daemon_down();
	}
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
	tcase_add_test(tc, test_bad_checksum_costs_its_record);
	tcase_add_test(tc, test_not_a_journal);
	tcase_add_test(tc, test_unknown_queue_kept);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_compaction);
	tcase_add_test(tc, test_compaction_bounds_the_file);
	tcase_add_test(tc, test_compaction_fails_safely);
	tcase_add_test(tc, test_damage_anywhere);
	tcase_add_test(tc, test_checksummed_garbage);
	tcase_add_test(tc, test_owner_kept);
	tcase_add_test(tc, test_keys_kept);
	tcase_add_test(tc, test_owner_old_records);
	tcase_add_test(tc, test_flipped_byte_costs_one_record);
	tcase_add_test(tc, test_several_damaged_regions);
	tcase_add_test(tc, test_damage_at_the_start);
	tcase_add_test(tc, test_resync_is_linear);
	tcase_add_test(tc, test_dead_attempts_survive);
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
