/*
 * fakemaster.c: the master's side of the worker pipes, for unit suites (fakemaster.h).
 * It forks and talks to a worker as supervisor.c does, but blocking and with a deadline
 * on every wait, and it leaves nothing behind: workers are reaped, orphans of the
 * programs they ran can be reaped here (fm_subreaper), the temporary directory goes.
 */

#include "autoconf.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fakemaster.h"
#include "jobpoold.h"

#define FM_MAX_WORKERS	16

static pid_t	 fm_pids[FM_MAX_WORKERS];	/* workers not reaped yet */
static char	*fm_dir;
static int	 fm_registered;

static uint64_t
fm_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

static void
fm_sleep_ms(int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
fm_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return (0);
}

/* At exit, whether the test passed or failed: nothing of ours outlives it. */
static void
fm_atexit(void)
{
	int	i;

	for (i = 0; i < FM_MAX_WORKERS; i++) {
		if (fm_pids[i] > 0) {
			(void)kill(fm_pids[i], SIGKILL);
			while (waitpid(fm_pids[i], NULL, 0) == -1 && errno == EINTR)
				;
			fm_pids[i] = 0;
		}
	}
	/* Orphans that were reparented to us (fm_subreaper) and have died. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	if (fm_dir != NULL) {
		(void)nftw(fm_dir, fm_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(fm_dir);
		fm_dir = NULL;
	}
}

static void
fm_register(void)
{
	if (!fm_registered) {
		ck_assert_int_eq(atexit(fm_atexit), 0);
		fm_registered = 1;
	}
}

static void
fm_track(pid_t pid, pid_t replace)
{
	int	i;

	for (i = 0; i < FM_MAX_WORKERS; i++) {
		if (fm_pids[i] == replace) {
			fm_pids[i] = pid;
			return;
		}
	}
	ck_abort_msg("more than %d workers at once", FM_MAX_WORKERS);
}

const char *
fm_tmpdir(void)
{
	const char	*base = getenv("FM_TMPDIR");

	if (fm_dir != NULL)
		return (fm_dir);
	fm_register();
	if (base == NULL || *base == '\0')
		base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	ck_assert_int_ne(asprintf(&fm_dir, "%s/check_fm.XXXXXX", base), -1);
	ck_assert_ptr_nonnull(mkdtemp(fm_dir));
	return (fm_dir);
}

/*
 * A failed check exits its test process at once (_exit: no atexit hooks), and a timed
 * out one is killed: the runner, as the reaper of everything its tests leave, cleans
 * up after them.
 */
static char	*fm_runner_dir;

void
fm_runner_init(void)
{
	const char	*base = getenv("TMPDIR");

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		perror("fakemaster: PR_SET_CHILD_SUBREAPER");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&fm_runner_dir, "%s/check_fm.XXXXXX", base) == -1 ||
	    mkdtemp(fm_runner_dir) == NULL) {
		perror("fakemaster: mkdtemp");
		exit(1);
	}
	if (setenv("FM_TMPDIR", fm_runner_dir, 1) != 0) {
		perror("fakemaster: setenv");
		exit(1);
	}
}

/* Kill and reap the children we have (orphans of dead tests are ours); how many. */
static int
fm_runner_kill_children(void)
{
	char	 path[300], buf[4096], *p, *end;
	long	 pid;
	int	 fd, n = 0;
	ssize_t	 len;
	DIR	*d;
	struct dirent *de;

	if ((d = opendir("/proc/self/task")) == NULL)
		return (0);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (p = buf; (pid = strtol(p, &end, 10)) > 0 && end != p; p = end) {
			(void)kill((pid_t)pid, SIGKILL);
			while (waitpid((pid_t)pid, NULL, 0) == -1 && errno == EINTR)
				;
			n++;
		}
	}
	closedir(d);
	return (n);
}

void
fm_runner_done(void)
{
	int	i, n, killed = 0;

	/* Zombies first: the orphans of a passing test's programs, already killed. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	for (i = 0; i < 100 && (n = fm_runner_kill_children()) > 0; i++)
		killed += n;
	if (killed > 0)
		printf("fakemaster: killed %d processes the tests left behind\n", killed);
	if (fm_runner_dir != NULL) {
		(void)nftw(fm_runner_dir, fm_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(fm_runner_dir);
		fm_runner_dir = NULL;
	}
}

char *
fm_built(const char *rel)
{
	const char	*top = getenv("top_builddir");
	char		*path;

	if (top == NULL || *top == '\0')
		top = TOP_BUILDDIR;
	ck_assert_int_ne(asprintf(&path, "%s/%s", top, rel), -1);
	ck_assert_msg(access(path, R_OK) == 0, "%s: %s (make check builds it)", path,
	    strerror(errno));
	return (path);
}

char *
fm_path(const char *name)
{
	char	*path;

	ck_assert_int_ne(asprintf(&path, "%s/%s", fm_tmpdir(), name), -1);
	return (path);
}

void
fm_init(struct fm *fm, const char *handler)
{
	memset(fm, 0, sizeof *fm);
	fm->cf.path = (char *)"<fakemaster>";
	fm->cf.max_payload = 16 * 1024 * 1024;
	fm->cf.log_level = LOG_INFO;
	fm->qc.name = (char *)"q";
	fm->qc.handler = (char *)handler;
	fm->qc.workers = 1;
	fm->qc.batch = 64;
	fm->qc.grace_ms = 5000;
	fm->pid = -1;
	fm->to = fm->from = -1;
}

void
fm_start(struct fm *fm)
{
	int		 down[2], up[2];
	sigset_t	 all, old;
	pid_t		 pid;

	fm_register();
	/* A write to a worker that has exited must fail with EPIPE, not kill the test. */
	(void)signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe2(down, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(up, O_CLOEXEC), 0);
	/* The worker checks that its parent is the master: we are. */
	master_pid = fm->master != 0 ? fm->master : getpid();

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* As supervisor.c's child: default signals, fds 3 and 4, nothing else. */
		close(down[1]);
		close(up[0]);
		worker_after_fork(down[0], up[1]);
		if (fm->inheritable && (fcntl(3, F_SETFD, 0) == -1 ||
		    fcntl(4, F_SETFD, 0) == -1))
			_exit(99);
		worker_main(&fm->cf, &fm->qc, 3, 4);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(down[0]);
	close(up[1]);
	fm->pid = pid;
	fm_track(pid, 0);
	fm->to = down[1];
	fm->from = up[0];
	/* As the supervisor does: bigger pipes (best effort, as there). */
	(void)fcntl(fm->to, F_SETPIPE_SZ, 1024 * 1024);
	(void)fcntl(fm->from, F_SETPIPE_SZ, 1024 * 1024);
	ck_assert_int_ne(fcntl(fm->to, F_SETFL, O_NONBLOCK), -1);
	ck_assert_int_ne(fcntl(fm->from, F_SETFL, O_NONBLOCK), -1);
}

void
fm_start_ready(struct fm *fm)
{
	fm_start(fm);
	fm_expect(fm, FRAME_READY, 0, 0, "");
}

static void
fm_grow(char **buf, size_t *cap, size_t need)
{
	size_t	 c = *cap ? *cap : 65536;
	char	*n;

	if (*cap >= need)
		return;
	while (c < need)
		c *= 2;
	n = realloc(*buf, c);
	ck_assert_ptr_nonnull(n);
	*buf = n;
	*cap = c;
}

void
fm_put(struct fm *fm, uint8_t type, uint8_t status, uint64_t id, const void *data,
    size_t len)
{
	fm_grow(&fm->out, &fm->ocap, fm->olen + FRAME_HDR_LEN + len);
	frame_put(fm->out + fm->olen, type, status, id, (uint32_t)len);
	if (len > 0)
		memcpy(fm->out + fm->olen + FRAME_HDR_LEN, data, len);
	fm->olen += FRAME_HDR_LEN + len;
}

void
fm_job(struct fm *fm, uint64_t id, const char *s)
{
	fm_put(fm, FRAME_JOB, 0, id, s, strlen(s));
}

/* Read what the result pipe holds now, or wait up to timeout_ms for something. */
static void
fm_read(struct fm *fm, int timeout_ms)
{
	struct pollfd	pfd = { fm->from, POLLIN, 0 };
	ssize_t		n;

	if (fm->eof)
		return;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return;
	/* The payload fm_next() returned last is no longer valid: compact. */
	if (fm->ioff > 0) {
		memmove(fm->in, fm->in + fm->ioff, fm->ilen - fm->ioff);
		fm->ilen -= fm->ioff;
		fm->ioff = 0;
	}
	for (;;) {
		fm_grow(&fm->in, &fm->icap, fm->ilen + 65536);
		n = read(fm->from, fm->in + fm->ilen, fm->icap - fm->ilen);
		if (n == 0) {
			fm->eof = 1;
			return;
		}
		if (n == -1) {
			ck_assert_msg(errno == EAGAIN || errno == EINTR,
			    "read from worker: %s", strerror(errno));
			return;
		}
		fm->ilen += (size_t)n;
	}
}

void
fm_write(struct fm *fm, const void *data, size_t len)
{
	fm_grow(&fm->out, &fm->ocap, fm->olen + len);
	memcpy(fm->out + fm->olen, data, len);
	fm->olen += len;
	fm_flush(fm);
}

/*
 * Write queued frames until done or until ms have passed; what is left stays queued.
 * Results are read only while the job pipe is full (the worker may be blocked writing
 * them), so writing a CANCEL never lets a blocked worker go on by itself.
 */
static size_t
fm_flush_ms(struct fm *fm, int ms, int must)
{
	struct pollfd	 pfd[2];
	uint64_t	 deadline = fm_now_ms() + (uint64_t)ms, now;
	size_t		 off = 0;
	ssize_t		 n;
	nfds_t		 nfd;

	ck_assert_int_ne(fm->to, -1);
	while (off < fm->olen) {
		n = write(fm->to, fm->out + off, fm->olen - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		ck_assert_msg(n == -1 && (errno == EAGAIN || errno == EINTR),
		    "write to worker %ld: %s", (long)fm->pid, strerror(errno));
		now = fm_now_ms();
		if (now >= deadline) {
			ck_assert_msg(!must, "worker %ld took no job bytes for %d ms "
			    "(%zu of %zu written)", (long)fm->pid, ms, off, fm->olen);
			break;
		}
		pfd[0] = (struct pollfd){ fm->to, POLLOUT, 0 };
		pfd[1] = (struct pollfd){ fm->from, POLLIN, 0 };
		nfd = fm->eof ? 1 : 2;
		if (poll(pfd, nfd, (int)(deadline - now)) > 0 && nfd == 2 &&
		    pfd[1].revents != 0)
			fm_read(fm, 0);
	}
	memmove(fm->out, fm->out + off, fm->olen - off);
	fm->olen -= off;
	return (fm->olen);
}

void
fm_flush(struct fm *fm)
{
	(void)fm_flush_ms(fm, FM_TIMEOUT_MS, 1);
}

size_t
fm_flush_for(struct fm *fm, int ms)
{
	return (fm_flush_ms(fm, ms, 0));
}

void
fm_cancel(struct fm *fm, uint64_t id, int reason)
{
	fm_put(fm, FRAME_CANCEL, (uint8_t)reason, id, NULL, 0);
	fm_flush(fm);
	ck_assert_int_eq(kill(fm->pid, SIGUSR1), 0);
}

/* A whole frame at the read position? */
static int
fm_whole(struct fm *fm, struct frame_hdr *h)
{
	int	r;

	r = frame_get(fm->in + fm->ioff, fm->ilen - fm->ioff, CONFIG_FRAME_MAX, h);
	ck_assert_msg(r != -1, "worker %ld sent a malformed frame", (long)fm->pid);
	return (r == 1 && fm->ilen - fm->ioff >= FRAME_HDR_LEN + (size_t)h->len);
}

/* An exec program's process group: noted, as the master does. */
static void
fm_note_child(struct fm *fm, const char *payload, uint32_t len)
{
	int32_t	pg = 0;

	if (len == sizeof pg)
		memcpy(&pg, payload, sizeof pg);
	fm->child_pgid = pg;
	fm->nchild++;
}

int
fm_next_child(struct fm *fm, int timeout_ms)
{
	uint64_t		deadline = fm_now_ms() + (uint64_t)timeout_ms, now;
	struct frame_hdr	h;

	for (;;) {
		if (fm_whole(fm, &h)) {
			if (h.type != FRAME_CHILD)
				return (0);
			fm_note_child(fm, fm->in + fm->ioff + FRAME_HDR_LEN, h.len);
			fm->ioff += FRAME_HDR_LEN + h.len;
			return (1);
		}
		if (fm->eof || (now = fm_now_ms()) >= deadline)
			return (0);
		fm_read(fm, (int)(deadline - now));
	}
}

int
fm_next(struct fm *fm, struct frame_hdr *h, const char **payload, int timeout_ms)
{
	uint64_t	deadline = fm_now_ms() + (uint64_t)timeout_ms, now;

	for (;;) {
		if (fm_whole(fm, h)) {
			*payload = fm->in + fm->ioff + FRAME_HDR_LEN;
			fm->ioff += FRAME_HDR_LEN + h->len;
			if (h->type == FRAME_CHILD) {
				fm_note_child(fm, *payload, h->len);
				continue;
			}
			return (1);
		}
		if (fm->eof) {
			ck_assert_msg(fm->ilen == fm->ioff, "EOF from worker %ld in the "
			    "middle of a frame (%zu bytes left)", (long)fm->pid,
			    fm->ilen - fm->ioff);
			return (0);
		}
		now = fm_now_ms();
		ck_assert_msg(now < deadline, "no frame from worker %ld within %d ms",
		    (long)fm->pid, timeout_ms);
		fm_read(fm, (int)(deadline - now));
	}
}

static const char *
fm_type_name(int type)
{
	switch (type) {
	case FRAME_JOB:
		return ("JOB");
	case FRAME_CANCEL:
		return ("CANCEL");
	case FRAME_READY:
		return ("READY");
	case FRAME_RESULT:
		return ("RESULT");
	case FRAME_RETIRE:
		return ("RETIRE");
	}
	return ("?");
}

void
fm_expect(struct fm *fm, uint8_t type, uint8_t status, uint64_t id, const char *payload)
{
	struct frame_hdr	 h;
	const char		*p;

	ck_assert_msg(fm_next(fm, &h, &p, FM_TIMEOUT_MS) == 1,
	    "EOF from worker %ld, want %s %llu", (long)fm->pid, fm_type_name(type),
	    (unsigned long long)id);
	ck_assert_msg(h.type == type && h.status == status && h.id == id &&
	    (payload == NULL || (h.len == strlen(payload) &&
	    memcmp(p, payload, h.len) == 0)),
	    "want %s status %d id %llu '%s', got %s status %d id %llu '%.*s'",
	    fm_type_name(type), status, (unsigned long long)id,
	    payload != NULL ? payload : "*", fm_type_name(h.type), h.status,
	    (unsigned long long)h.id, (int)(h.len > 300 ? 300 : h.len), p);
}

void
fm_expect_data(struct fm *fm, uint64_t id, uint8_t status, const void *data, size_t len)
{
	struct frame_hdr	 h;
	const char		*p;

	ck_assert_msg(fm_next(fm, &h, &p, FM_TIMEOUT_MS) == 1,
	    "EOF from worker %ld, want RESULT %llu", (long)fm->pid,
	    (unsigned long long)id);
	ck_assert_msg(h.type == FRAME_RESULT && h.status == status && h.id == id,
	    "want RESULT status %d id %llu, got %s status %d id %llu '%.*s'", status,
	    (unsigned long long)id, fm_type_name(h.type), h.status,
	    (unsigned long long)h.id, (int)(h.len > 300 ? 300 : h.len), p);
	ck_assert_uint_eq(h.len, len);
	ck_assert_msg(memcmp(p, data, len) == 0, "result %llu: wrong bytes",
	    (unsigned long long)id);
}

int
fm_quiet(struct fm *fm, int ms)
{
	struct frame_hdr	h;
	uint64_t		deadline = fm_now_ms() + (uint64_t)ms, now;

	for (;;) {
		if (fm_whole(fm, &h) || fm->eof)
			return (0);
		now = fm_now_ms();
		if (now >= deadline)
			return (1);
		fm_read(fm, (int)(deadline - now));
	}
}

void
fm_expect_eof(struct fm *fm)
{
	struct frame_hdr	 h;
	const char		*p;

	ck_assert_msg(fm_next(fm, &h, &p, FM_TIMEOUT_MS) == 0,
	    "want EOF from worker %ld, got %s status %d id %llu '%.*s'", (long)fm->pid,
	    fm_type_name(h.type), h.status, (unsigned long long)h.id,
	    (int)(h.len > 300 ? 300 : h.len), p);
}

void
fm_close_jobs(struct fm *fm)
{
	if (fm->to != -1) {
		close(fm->to);
		fm->to = -1;
	}
}

int
fm_wait(struct fm *fm, int timeout_ms)
{
	uint64_t	deadline = fm_now_ms() + (uint64_t)timeout_ms;
	pid_t		pid = fm->pid, r;
	int		status = 0;

	ck_assert_int_gt(pid, 0);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		ck_assert_msg(r == 0 || errno == EINTR, "waitpid %ld: %s", (long)pid,
		    strerror(errno));
		if (fm_now_ms() >= deadline) {
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
				;
			fm->pid = -1;
			fm_track(0, pid);
			ck_abort_msg("worker %ld did not exit within %d ms", (long)pid,
			    timeout_ms);
		}
		fm_sleep_ms(5);
	}
	fm->pid = -1;
	fm_track(0, pid);
	return (status);
}

void
fm_expect_exit(struct fm *fm, int code)
{
	int	status = fm_wait(fm, FM_TIMEOUT_MS);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == code,
	    "want exit %d, got wait status 0x%x (exit %d, signal %d)", code,
	    (unsigned)status, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void
fm_free(struct fm *fm)
{
	if (fm->pid > 0) {
		(void)kill(fm->pid, SIGKILL);
		while (waitpid(fm->pid, NULL, 0) == -1 && errno == EINTR)
			;
		fm_track(0, fm->pid);
		fm->pid = -1;
	}
	fm_close_jobs(fm);
	if (fm->from != -1)
		close(fm->from);
	fm->from = -1;
	free(fm->out);
	free(fm->in);
	fm->out = fm->in = NULL;
	fm->olen = fm->ocap = fm->ilen = fm->icap = fm->ioff = 0;
}

int
fm_wait_syscall(pid_t pid, const long *nr, size_t n)
{
	uint64_t	 deadline = fm_now_ms() + FM_TIMEOUT_MS;
	char		 path[64], buf[256];
	ssize_t		 len;
	long		 cur;
	size_t		 i;
	int		 fd;

	snprintf(path, sizeof path, "/proc/%ld/syscall", (long)pid);
	for (;;) {
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			return (0);
		len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			return (0);
		buf[len] = '\0';
		if (strncmp(buf, "running", strlen("running")) != 0) {
			cur = strtol(buf, NULL, 10);
			for (i = 0; i < n; i++) {
				if (cur == nr[i])
					return (1);
			}
		}
		ck_assert_msg(fm_now_ms() < deadline, "process %ld not in the expected "
		    "system call within %d ms (now: %.40s)", (long)pid, FM_TIMEOUT_MS,
		    buf);
		fm_sleep_ms(2);
	}
}

int
fm_wait_sleeping(pid_t pid)
{
	static const long	nr[] = {
#ifdef SYS_nanosleep
		SYS_nanosleep,
#endif
#ifdef SYS_clock_nanosleep
		SYS_clock_nanosleep,
#endif
#ifdef SYS_ppoll
		SYS_ppoll,	/* the sleep built-in waits in ppoll() */
#endif
		-2
	};

	return (fm_wait_syscall(pid, nr, sizeof nr / sizeof nr[0]));
}

void
fm_subreaper(void)
{
	fm_register();
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

int
fm_group_gone(pid_t pgid, int timeout_ms)
{
	uint64_t	deadline = fm_now_ms() + (uint64_t)timeout_ms;
	siginfo_t	si;

	ck_assert_int_gt(pgid, 1);
	for (;;) {
		/* Reap the members that were reparented to us: zombies still count. */
		for (;;) {
			memset(&si, 0, sizeof si);
			if (waitid(P_PGID, (id_t)pgid, &si, WEXITED | WNOHANG) == -1 ||
			    si.si_pid == 0)
				break;
		}
		if (kill(-pgid, 0) == -1 && errno == ESRCH)
			return (1);
		if (fm_now_ms() >= deadline) {
			(void)kill(-pgid, SIGKILL);
			fm_sleep_ms(100);
			for (;;) {
				memset(&si, 0, sizeof si);
				if (waitid(P_PGID, (id_t)pgid, &si, WEXITED | WNOHANG) ==
				    -1 || si.si_pid == 0)
					break;
			}
			return (0);
		}
		fm_sleep_ms(10);
	}
}

char *
fm_read_file(const char *path)
{
	char	*buf = NULL;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		ck_assert_msg(errno == ENOENT, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	for (;;) {
		fm_grow(&buf, &cap, len + 4097);
		n = read(fd, buf + len, cap - len - 1);
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (buf);
}

char *
fm_wait_file(const char *path)
{
	uint64_t	 deadline = fm_now_ms() + FM_TIMEOUT_MS;
	char		*s;
	size_t		 len;

	for (;;) {
		if ((s = fm_read_file(path)) != NULL) {
			len = strlen(s);
			if (len > 0 && s[len - 1] == '\n')
				return (s);
			free(s);
		}
		ck_assert_msg(fm_now_ms() < deadline, "%s: not written within %d ms",
		    path, FM_TIMEOUT_MS);
		fm_sleep_ms(5);
	}
}

int
fm_has_prefix(const char *p, size_t len, const char *s)
{
	size_t	n = strlen(s);

	return (len >= n && memcmp(p, s, n) == 0);
}

int
fm_contains(const char *p, size_t len, const char *s)
{
	return (memmem(p, len, s, strlen(s)) != NULL);
}
