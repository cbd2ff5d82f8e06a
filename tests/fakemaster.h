/*
 * fakemaster.h: a stand-in for the master, for the Check suites that drive a real
 * worker_main(): check_worker and check_handler_exec.
 *
 * fm_start() forks a worker the way supervisor.c does, through the daemon's own
 * worker_after_fork(): job pipe on fd 3, result pipe on fd 4, nothing else open,
 * default signal handling; master_pid set to the test process. The test then queues
 * frames (fm_put, fm_job), writes them (fm_flush, which keeps reading results
 * meanwhile, so a test cannot deadlock against a worker whose result pipe is full) and
 * reads result frames (fm_next, fm_expect). Every wait has a deadline and fails the
 * test when it passes. A worker still running when its test
 * ends is killed and reaped: by an atexit hook when the test passes, and otherwise by
 * PR_SET_PDEATHSIG (set by worker_main) and the runner (fm_runner_done), which reaps
 * whatever a failed test left.
 */

#ifndef FAKEMASTER_H
#define FAKEMASTER_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "frame.h"

/* How long any single wait may take before the test fails: generous, for loaded CI. */
#define FM_TIMEOUT_MS	30000

struct fm {
	struct config		 cf;
	struct queue_config	 qc;
	pid_t			 pid;		/* the worker, -1 once reaped */
	int			 to;		/* our end of its job pipe, -1 once closed */
	int			 from;		/* our end of its result pipe */
	int			 eof;		/* the result pipe is at EOF */
	pid_t			 master;	/* master_pid for the worker; 0: us */
	int			 inheritable;	/* leave fds 3 and 4 without FD_CLOEXEC */
	pid_t			 child_pgid;	/* the last FRAME_CHILD (fm_next skips them) */
	int			 nchild;		/* FRAME_CHILD frames seen */

	char			*out;		/* frames queued, not yet written */
	size_t			 olen, ocap;
	char			*in;		/* bytes read from the worker */
	size_t			 ilen, icap, ioff;
};

/* Defaults for a queue called "q" with handler (a copy is not taken: keep it alive). */
void	fm_init(struct fm *fm, const char *handler);
/* Fork the worker. */
void	fm_start(struct fm *fm);
/* Fork the worker and expect its READY frame with status 0. */
void	fm_start_ready(struct fm *fm);

/* Queue a frame (written by fm_flush). */
void	fm_put(struct fm *fm, uint8_t type, uint8_t status, uint64_t id,
	    const void *data, size_t len);
/* Queue a job frame with a string payload. */
void	fm_job(struct fm *fm, uint64_t id, const char *s);
/* Write every queued frame, reading results meanwhile. */
void	fm_flush(struct fm *fm);
/* Write queued frames for at most ms; how many bytes are left queued. */
size_t	fm_flush_for(struct fm *fm, int ms);
/* Write raw bytes now (partial frames), reading results meanwhile. */
void	fm_write(struct fm *fm, const void *data, size_t len);
/* What the master's cancel does: a CANCEL frame, flushed, then one SIGUSR1. */
void	fm_cancel(struct fm *fm, uint64_t id, int reason);

/*
 * The next frame: 1 (*h and *payload set; the payload stays valid until the next
 * call on fm), or 0 at EOF. Fails the test if nothing whole comes within timeout_ms.
 */
int	fm_next(struct fm *fm, struct frame_hdr *h, const char **payload,
	    int timeout_ms);
/*
 * 1 if a FRAME_CHILD comes within timeout_ms before any other frame (noted as fm_next
 * notes it), else 0: another frame is next (left for fm_next), EOF, or nothing came.
 */
int	fm_next_child(struct fm *fm, int timeout_ms);
/* The next frame must be exactly this (payload NULL: any payload). */
void	fm_expect(struct fm *fm, uint8_t type, uint8_t status, uint64_t id,
	    const char *payload);
/* The next frame must be this result, with a payload of len bytes equal to data. */
void	fm_expect_data(struct fm *fm, uint64_t id, uint8_t status, const void *data,
	    size_t len);
/* 1 if no whole frame (and no EOF) arrives within ms: for "must not answer yet". */
int	fm_quiet(struct fm *fm, int ms);
/* The result pipe must reach EOF with no more frames. */
void	fm_expect_eof(struct fm *fm);

/* Close the job pipe: the worker answers what it holds and exits. */
void	fm_close_jobs(struct fm *fm);
/* Reap the worker; its wait status. Kills it and fails the test after timeout_ms. */
int	fm_wait(struct fm *fm, int timeout_ms);
/* The worker must exit with code. */
void	fm_expect_exit(struct fm *fm, int code);
/* Kill the worker if it still runs, reap it and free everything. */
void	fm_free(struct fm *fm);

/*
 * Wait until pid is blocked in one of the system calls nr (from /proc/PID/syscall):
 * 1 when it is, 0 if the kernel does not say (then the caller cannot know). Fails the
 * test after the timeout.
 */
int	fm_wait_syscall(pid_t pid, const long *nr, size_t n);
/* fm_wait_syscall() for the sleep calls nanosleep(3) may make. */
int	fm_wait_sleeping(pid_t pid);

/* Make the test process the reaper of its orphaned descendants. */
void	fm_subreaper(void);
/*
 * Wait until no process of group pgid is left, reaping those that were reparented to
 * us (fm_subreaper). 1 if the group is gone; 0 after the timeout, once the group has
 * been killed so that nothing outlives the test.
 */
int	fm_group_gone(pid_t pgid, int timeout_ms);

/*
 * The path of a file make check builds (e.g. "examples/.libs/wordcount.so"), under
 * $top_builddir (set by AM_TESTS_ENVIRONMENT) or the build directory configured in;
 * malloc'd. Fails the test if the file is not there.
 */
char	*fm_built(const char *rel);

/*
 * For main(), around srunner_run_all(): the runner becomes the reaper of what its
 * tests leave (a failed check ends its test process with _exit(), so no atexit hook
 * runs) and owns the directory the tests' temporary directories are made in; done
 * kills and reaps every process left and removes that directory.
 */
void	fm_runner_init(void);
void	fm_runner_done(void);

/* A fresh temporary directory (removed, with what is in it, at exit). */
const char *fm_tmpdir(void);
/* A path in the temporary directory; malloc'd. */
char	*fm_path(const char *name);
/* Read a whole small file into a malloc'd string; NULL if it does not exist. */
char	*fm_read_file(const char *path);
/* Wait until path exists and holds a whole line; its contents, malloc'd. */
char	*fm_wait_file(const char *path);

/* Is s a prefix of (p, len)? */
int	fm_has_prefix(const char *p, size_t len, const char *s);
/* Does (p, len) contain s? */
int	fm_contains(const char *p, size_t len, const char *s);

#endif /* FAKEMASTER_H */
